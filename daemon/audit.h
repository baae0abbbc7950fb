/*
 * The tamper-evident audit trail (cold-chain records): every row carries
 * SHA-256 over the previous row's hash and its own content, so an edited,
 * deleted or reordered row breaks the chain at that row.  Rows live in the
 * store; this module only hashes and checks.  Only this module includes
 * OpenSSL's headers (libcrypto comes with libmosquitto anyway).
 *
 * What a local chain cannot show is rows cut off its end: the daemon
 * publishes the head (row number and hash) so the dashboard holds anchors.
 */
#ifndef COLDGATE_AUDIT_H
#define COLDGATE_AUDIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define AUDIT_HASH_LEN	32

struct audit_row {
	int64_t		 n;		/* 1, 2, 3, ... with no gap */
	int64_t		 ts;		/* epoch ms */
	const char	*kind;		/* "start", "config", "alarm", "ack", ... */
	const char	*detail;	/* JSON text */
	const uint8_t	*hash;		/* AUDIT_HASH_LEN bytes */
};

/*
 * out = SHA-256(prev || n || ts || len(kind) || kind || len(detail) ||
 * detail), integers big-endian, so no two rows encode alike.  prev is
 * all zeros for row 1.  0, or -EIO if libcrypto fails.
 */
int	 audit_hash(const uint8_t prev[AUDIT_HASH_LEN], int64_t n, int64_t ts, const char *kind,
	     const char *detail, uint8_t out[AUDIT_HASH_LEN]);

/* Walks a chain row by row, in the order the store gives them (by n). */
struct audit_check {
	int64_t		 next_n;	/* the row number expected next */
	uint8_t		 prev[AUDIT_HASH_LEN];
	int64_t		 bad_n;		/* the first bad row, 0 while all is well */
	char		 why[96];
};

void	 audit_check_init(struct audit_check *);
/* false (and bad_n, why set) at the first row that does not follow. */
bool	 audit_check_row(struct audit_check *, const struct audit_row *);

/* SHA-256 of a file's bytes as lower-case hex into hex (65 bytes); 0 or -errno. */
int	 audit_file_sha256(const char *path, char *hex);

/* Lower-case hex of a hash into buf (2 * AUDIT_HASH_LEN + 1 bytes). */
void	 audit_hex(const uint8_t hash[AUDIT_HASH_LEN], char *buf);

#endif
