/*
 * jrec: one results-file record as the journal writes it, read back (the
 * line format is documented in journal.h).  Internal, never exported, and
 * depending on nothing but libc, so that the command compiles its own copy
 * (as it does jsonw.c): resume (journal.c), gpudispatch results and
 * gpudispatch status all take a record by the same test.
 */
#ifndef GD_JREC_H
#define GD_JREC_H

#include <stddef.h>
#include <stdint.h>

enum { GD_JS_OK = 1, GD_JS_ERROR, GD_JS_TIMEOUT };

typedef struct gd__jrec {
	uint64_t id;
	uint64_t digest;
	int status; /* GD_JS_* */
} gd__jrec;

/* FNV-1a 64: a task's digest and a record's checksum. */
uint64_t gd__fnv1a(const void *data, size_t len);

/*
 * Parse one line (without its newline).  \return 1 with *out filled, or 0
 * when the line is not a complete, intact record (its checksum fails, it is
 * torn, or its head is not {"id":N,"status":"S","digest":"H").
 */
int gd__journal_parse_line(const char *line, size_t len, gd__jrec *out);

#endif
