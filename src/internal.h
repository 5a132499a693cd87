/*
 * Internal helpers shared by the core's files: growable byte buffers, the
 * clock and diagnostics.  Nothing here is public.
 */
#ifndef GD_INTERNAL_H
#define GD_INTERNAL_H

#include "gpudispatch.h"

#include <stddef.h>
#include <stdint.h>

#define GD__MIN(a, b) ((a) < (b) ? (a) : (b))
#define GD__MAX(a, b) ((a) > (b) ? (a) : (b))

/* A growable byte buffer.  It only grows: buffers are reused across tasks so
 * that the hot path allocates nothing once the largest task has been seen. */
typedef struct gd__bytes {
	uint8_t *p;
	size_t len;
	size_t cap;
} gd__bytes;

int gd__bytes_reserve(gd__bytes *b, size_t cap);
int gd__bytes_append(gd__bytes *b, const void *data, size_t n);
/* \return a pointer to n new bytes at the end (len grows by n), NULL on ENOMEM. */
uint8_t *gd__bytes_grow(gd__bytes *b, size_t n);
void gd__bytes_free(gd__bytes *b);

/* The generator's view of a slot buffer: `room` bytes of record header are
 * kept in front of the payload so that the record goes out without a copy. */
struct gd_buf {
	gd__bytes *bytes;
	size_t room;
};

/* printf into a fixed buffer, always NUL-terminated, truncating. */
void gd__strlcpy(char *dst, const char *src, size_t size);

/* Diagnostics go to stderr, prefixed with the rank: "gpudispatch[3]: ...". */
void gd__log(int rank, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* "killed by signal 11 (Segmentation fault)" / "exited with status 3". */
void gd__describe_status(int status, char *buf, size_t size);

#endif
