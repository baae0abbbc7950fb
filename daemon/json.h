/*
 * A small JSON writer for the payloads we publish.  Payloads are flat and
 * built once per window, so an append-only buffer that escapes strings and
 * prints numbers compactly is all we need; parsing (commands) is a separate
 * concern.  The buffer is reused between messages to keep the heap quiet.
 */
#ifndef COLDGATE_JSON_H
#define COLDGATE_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct jbuf {
	char	*p;
	size_t	 len, cap;
	bool	 oom;		/* an append failed; the content is unusable */
	bool	 comma;		/* the next member needs a ',' first */
};

void	 jb_reset(struct jbuf *);
void	 jb_free(struct jbuf *);
void	 jb_begin(struct jbuf *, char open);	/* '{' or '[' */
void	 jb_end(struct jbuf *, char close);
/* A key (in an object); the value follows with one of the jb_v* calls. */
void	 jb_key(struct jbuf *, const char *key);
void	 jb_vstr(struct jbuf *, const char *s);
void	 jb_vnum(struct jbuf *, double v);
void	 jb_vint(struct jbuf *, int64_t v);
void	 jb_vbool(struct jbuf *, bool v);
/* Shorthands for key + value. */
void	 jb_str(struct jbuf *, const char *key, const char *s);
void	 jb_num(struct jbuf *, const char *key, double v);
void	 jb_int(struct jbuf *, const char *key, int64_t v);
/* NUL-terminated text, or NULL if an allocation failed. */
const char *jb_text(struct jbuf *);

#endif
