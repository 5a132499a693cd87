/*
 * Internal helpers shared by the core's files: growable byte buffers, the
 * clock and diagnostics.  Nothing here is public.
 *
 * One convention for results inside the library, as outside it: a function
 * that can fail returns 0 or a negative GD_E* code (gd_strerror() names
 * it), with any detail in an err buffer its caller passes or logged where
 * it happened; a function that looks something up returns an index or -1;
 * a predicate returns 1 or 0.  Every MPI call's code goes through
 * gd__mpi().
 */
#ifndef GD_INTERNAL_H
#define GD_INTERNAL_H

#include "gpudispatch.h"
#include "proctree.h"

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

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

/* Diagnostics go to stderr, prefixed with the rank: "gpudispatch[3]: ...".
 * Worker ranks write theirs so; rank 0 writes through a logger. */
void gd__log(int rank, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Where rank 0's diagnostics go: the application's on_log, or (fn NULL)
 * stderr as gd__log() writes it. */
typedef struct gd__logger {
	void (*fn)(void *user, gd_log_level level, const char *message);
	void *user;
} gd__logger;

/* One line to lg (NULL: stderr as rank 0). */
void gd__logf(const gd__logger *lg, gd_log_level level, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

/* Every MPI call's return code goes through gd__mpi(): MPI_SUCCESS is 0,
 * anything else is logged with MPI's own error string ("MPI_Isend failed:
 * MPI_ERR_TRUNCATE: message truncated") and becomes GD_EMPI. */
int gd__mpi_fail(int mpi_rc, const char *call);
#define gd__mpi(rc, call) ((rc) == MPI_SUCCESS ? 0 : gd__mpi_fail((rc), (call)))

/* Take a matched message off unread (no room for it, or nobody to read it):
 * a receive of 0 bytes, whose truncation is the point.  \return 0, or
 * GD_EMPI for any other failure (logged by gd__mpi_fail). */
int gd__mpi_discard(MPI_Message *m);

/* "killed by signal 11 (Segmentation fault)" / "exited with status 3". */
void gd__describe_status(int status, char *buf, size_t size);

#endif
