/*
 * The JSON writer (see json.h).  Owns escaping and number formatting;
 * must not know any payload's keys: what a message holds is the caller's.
 */
#include "json.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void
jb_reset(struct jbuf *b)
{
	b->len = 0;
	b->oom = false;
	b->comma = false;
	if (b->p)
		b->p[0] = '\0';
}

void
jb_free(struct jbuf *b)
{
	free(b->p);
	memset(b, 0, sizeof(*b));
}

static void
jb_append(struct jbuf *b, const char *s, size_t n)
{
	if (b->oom)
		return;
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 256;
		char *p;

		while (cap < b->len + n + 1)
			cap *= 2;
		if ((p = realloc(b->p, cap)) == NULL) {
			b->oom = true;
			return;
		}
		b->p = p;
		b->cap = cap;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static void
jb_sep(struct jbuf *b)
{
	if (b->comma)
		jb_append(b, ",", 1);
	b->comma = true;
}

void
jb_begin(struct jbuf *b, char open)
{
	jb_sep(b);
	jb_append(b, &open, 1);
	b->comma = false;
}

void
jb_end(struct jbuf *b, char close)
{
	jb_append(b, &close, 1);
	b->comma = true;
}

void
jb_key(struct jbuf *b, const char *key)
{
	jb_vstr(b, key);
	jb_append(b, ":", 1);
	b->comma = false;
}

void
jb_vstr(struct jbuf *b, const char *s)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t run = 0;

	jb_sep(b);
	jb_append(b, "\"", 1);
	/* UTF-8 passes through untouched; only '"', '\\' and controls are escaped. */
	for (size_t i = 0; u[i] != '\0'; i++) {
		char esc[8];

		if (u[i] >= 0x20 && u[i] != '"' && u[i] != '\\') {
			run++;
			continue;
		}
		jb_append(b, s + i - run, run);
		run = 0;
		if (u[i] == '"' || u[i] == '\\')
			snprintf(esc, sizeof(esc), "\\%c", u[i]);
		else
			snprintf(esc, sizeof(esc), "\\u%04x", u[i]);
		jb_append(b, esc, strlen(esc));
	}
	jb_append(b, s + strlen(s) - run, run);
	jb_append(b, "\"", 1);
}

void
jb_vnum(struct jbuf *b, double v)
{
	char num[32];
	int n;

	jb_sep(b);
	if (!isfinite(v)) {
		jb_append(b, "null", 4);
		return;
	}
	/*
	 * Three decimals are finer than any sensor we read (a DS18B20 resolves
	 * 0.0625 C) and keep 21.3 from printing as 21.300000000000001.
	 */
	if (fabs(v) < 1e12) {
		n = snprintf(num, sizeof(num), "%.3f", v);
		while (num[n - 1] == '0')
			num[--n] = '\0';
		if (num[n - 1] == '.')
			num[--n] = '\0';
		if (strcmp(num, "-0") == 0)
			n = snprintf(num, sizeof(num), "0");
	} else {
		n = snprintf(num, sizeof(num), "%.10g", v);
	}
	jb_append(b, num, (size_t)n);
}

void
jb_vint(struct jbuf *b, int64_t v)
{
	char num[24];
	int n;

	jb_sep(b);
	n = snprintf(num, sizeof(num), "%lld", (long long)v);
	jb_append(b, num, (size_t)n);
}

void
jb_vbool(struct jbuf *b, bool v)
{
	jb_sep(b);
	jb_append(b, v ? "true" : "false", v ? 4 : 5);
}

void jb_str(struct jbuf *b, const char *k, const char *s) { jb_key(b, k); jb_vstr(b, s); }
void jb_num(struct jbuf *b, const char *k, double v) { jb_key(b, k); jb_vnum(b, v); }
void jb_int(struct jbuf *b, const char *k, int64_t v) { jb_key(b, k); jb_vint(b, v); }

const char *
jb_text(struct jbuf *b)
{
	if (b->oom)
		return NULL;
	if (b->p == NULL)
		jb_append(b, "", 0);
	return b->oom ? NULL : b->p;
}
