/*
 * Hashing and checking the audit trail's chain (see audit.h).  Owns the
 * row hash and the check; must not read or write the store: the store keeps
 * the rows, records.c and coldgatectl decide what goes in them.
 */
#include "audit.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

/*
 * OpenSSL's SHA256_Init/Update/Final, not EVP: EVP's first use loads the
 * provider machinery, 140 kB of private memory and 2 MB of RSS measured
 * here, for a hash we take a few times a day.  The low-level calls are
 * deprecated in OpenSSL 3 but present and the same code.
 */
#define OPENSSL_SUPPRESS_DEPRECATED
#include <openssl/sha.h>

static void
put_be(uint8_t *p, uint64_t v, int bytes)
{
	for (int i = bytes - 1; i >= 0; i--, v >>= 8)
		p[i] = (uint8_t)v;
}

int
audit_hash(const uint8_t prev[AUDIT_HASH_LEN], int64_t n, int64_t ts, const char *kind,
    const char *detail, uint8_t out[AUDIT_HASH_LEN])
{
	uint8_t head[16], klen[4], dlen[4];
	size_t kl = strlen(kind), dl = strlen(detail);
	SHA256_CTX ctx;
	int ok;

	put_be(head, (uint64_t)n, 8);
	put_be(head + 8, (uint64_t)ts, 8);
	put_be(klen, kl, 4);
	put_be(dlen, dl, 4);
	ok = SHA256_Init(&ctx) && SHA256_Update(&ctx, prev, AUDIT_HASH_LEN) &&
	    SHA256_Update(&ctx, head, 16) &&
	    SHA256_Update(&ctx, klen, 4) && SHA256_Update(&ctx, kind, kl) &&
	    SHA256_Update(&ctx, dlen, 4) && SHA256_Update(&ctx, detail, dl) &&
	    SHA256_Final(out, &ctx);
	return ok ? 0 : -EIO;
}

void
audit_check_init(struct audit_check *c)
{
	memset(c, 0, sizeof(*c));
	c->next_n = 1;
}

bool
audit_check_row(struct audit_check *c, const struct audit_row *r)
{
	uint8_t h[AUDIT_HASH_LEN];

	if (c->bad_n != 0)
		return false;
	if (r->n != c->next_n) {
		c->bad_n = r->n;
		snprintf(c->why, sizeof(c->why), r->n > c->next_n ?
		    "row %lld is missing before it" : "out of order after row %lld",
		    (long long)(r->n > c->next_n ? c->next_n : c->next_n - 1));
		return false;
	}
	if (audit_hash(c->prev, r->n, r->ts, r->kind, r->detail, h) < 0) {
		c->bad_n = r->n;
		snprintf(c->why, sizeof(c->why), "cannot compute SHA-256");
		return false;
	}
	if (memcmp(h, r->hash, AUDIT_HASH_LEN) != 0) {
		c->bad_n = r->n;
		snprintf(c->why, sizeof(c->why),
		    "its hash does not match its content and the row before it");
		return false;
	}
	memcpy(c->prev, h, AUDIT_HASH_LEN);
	c->next_n++;
	return true;
}

int
audit_file_sha256(const char *path, char *hex)
{
	uint8_t buf[4096], h[AUDIT_HASH_LEN];
	SHA256_CTX ctx;
	FILE *f;
	size_t n;
	int ok;

	if ((f = fopen(path, "rb")) == NULL)
		return -errno;
	ok = SHA256_Init(&ctx);
	while (ok && (n = fread(buf, 1, sizeof(buf), f)) > 0)
		ok = SHA256_Update(&ctx, buf, n);
	ok = ok && !ferror(f) && SHA256_Final(h, &ctx);
	fclose(f);
	if (!ok)
		return -EIO;
	audit_hex(h, hex);
	return 0;
}

void
audit_hex(const uint8_t hash[AUDIT_HASH_LEN], char *buf)
{
	for (int i = 0; i < AUDIT_HASH_LEN; i++)
		snprintf(buf + 2 * i, 3, "%02x", hash[i]);
}
