/*
 * jsonw: the one JSON writer of the project (internal, never exported).
 * The journal's records (journal.c), the placement report (placement_report.c)
 * and the command's results members (src/cli/json.c, which compiles its own
 * copy of this file) all write JSON through it.
 *
 * It writes to any sink through one function, put(sink, bytes, n), that
 * appends and returns 0 (or non-zero when it cannot: the writer keeps that
 * as its error and writes nothing more).  It depends on nothing but libc.
 * Strings are always valid JSON: '"', '\\' and control characters are
 * escaped (\n \r \t \b \f, else \u00XX, also for DEL), valid UTF-8 is copied
 * and each byte that is not part of valid UTF-8 becomes \ufffd.
 */
#ifndef GD_JSONW_H
#define GD_JSONW_H

#include <stddef.h>
#include <stdint.h>

typedef int (*gd__jsonw_put)(void *sink, const void *data, size_t n);

#define GD__JSONW_MAX_DEPTH 32

typedef struct gd__jsonw {
	gd__jsonw_put put;
	void *sink;
	int err;       /* the first non-zero put(), then nothing more is written */
	int spaced;    /* ", " and ": " between members (a report), else none */
	int after_key; /* a key was written: its value comes next */
	unsigned depth;
	unsigned char first[GD__JSONW_MAX_DEPTH]; /* no member yet at this depth */
	size_t n;                                 /* bytes in buf, not yet put */
	char buf[512];                            /* small pieces are gathered here */
} gd__jsonw;

/* Length of the valid UTF-8 sequence at s (RFC 3629, at most n bytes), 0 if
 * invalid. */
size_t gd__jsonw_utf8_len(const unsigned char *s, size_t n);

/* Write bytes as a JSON string with its quotes straight to put.  \return 0
 * or put's error. */
int gd__jsonw_escape(gd__jsonw_put put, void *sink, const void *s, size_t n);

void gd__jsonw_init(gd__jsonw *w, gd__jsonw_put put, void *sink, int spaced);
/* Put what is gathered (the writer gathers small pieces: call this before
 * reading the sink, and at the end).  \return 0 or the writer's error. */
int gd__jsonw_flush(gd__jsonw *w);
/* Containers; a key before each member of an object. */
void gd__jsonw_obj(gd__jsonw *w);
void gd__jsonw_obj_end(gd__jsonw *w);
void gd__jsonw_arr(gd__jsonw *w);
void gd__jsonw_arr_end(gd__jsonw *w);
void gd__jsonw_key(gd__jsonw *w, const char *key);
/* Values. */
void gd__jsonw_str(gd__jsonw *w, const void *s, size_t n);
void gd__jsonw_cstr(gd__jsonw *w, const char *s); /* NULL: null */
void gd__jsonw_int(gd__jsonw *w, int64_t v);
void gd__jsonw_uint(gd__jsonw *w, uint64_t v);
void gd__jsonw_fixed(gd__jsonw *w, double v, int decimals); /* %.Nf; not finite: null */
void gd__jsonw_hex64(gd__jsonw *w, uint64_t v);             /* "%016x" as a string */
void gd__jsonw_bool(gd__jsonw *w, int v);
void gd__jsonw_null(gd__jsonw *w);
/* A valid JSON text as the value, on one line (CR/LF between its tokens
 * become blanks).  The caller has checked that it is JSON. */
void gd__jsonw_json(gd__jsonw *w, const void *json, size_t n);
/* Go on as inside an object that has no member yet, without writing its
 * brace: what follows are members text ("a":1,"b":2) for someone else's object. */
void gd__jsonw_members_open(gd__jsonw *w);
/* Members already written as text ("a":1,"b":2) into the open object. */
void gd__jsonw_members(gd__jsonw *w, const void *text, size_t n);

#endif
