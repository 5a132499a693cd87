/*
 * Failure reasons grouped (internal): the distinct reasons why tasks failed
 * or timed out, with a count and the first few task ids of each, bounded
 * whatever the number of failures.  Pure data, no ncurses, no threads, no
 * MPI: the dashboard and the text lines (libgpudispatch_ui) and the status
 * file of the command (which compiles this file too) each keep their own.
 *
 * A reason is the message's first line, normalised so that failures that
 * differ only by a number fall together (see gd__reason_normalise()).
 */
#ifndef GD_UI_REASONS_H
#define GD_UI_REASONS_H

#include <stddef.h>
#include <stdint.h>

#define GD__REASONS_MAX 32  /* distinct reasons kept; the rest go to `other` */
#define GD__REASON_LEN  200 /* bytes of a reason kept, NUL included */
#define GD__REASON_IDS  5   /* task ids kept per reason: the lowest */

typedef struct gd__reason {
	uint64_t count;               /* tasks that ended with it */
	uint64_t ids[GD__REASON_IDS]; /* the lowest min(count, GD__REASON_IDS), in order */
	char text[GD__REASON_LEN];    /* normalised, "" for `other` */
} gd__reason;

typedef struct gd__reasons {
	gd__reason r[GD__REASONS_MAX]; /* in the order first seen: an index stays */
	int n;
	gd__reason other; /* failures whose reason found no room */
	uint64_t total;   /* every failure counted: sum of the counts */
} gd__reasons;

/*
 * The reason of a failure message, into out (n bytes): the last attempt's
 * message when it holds every attempt's ("attempt K on worker W: ...; "),
 * its first line, every run of digits replaced by '#' (task ids, sizes,
 * line numbers, addresses: "0x#") except the exit status and the signal
 * number the command reports ("exited with status 3", "killed by signal
 * 11") and a timeout's limit ("timed out after 2 s"), and cut at n - 1
 * bytes.  An empty message is "(no message)".
 */
void gd__reason_normalise(char *out, size_t n, const char *msg);

/* Count one failure of task_id with message msg. */
void gd__reasons_add(gd__reasons *rs, uint64_t task_id, const char *msg);

/*
 * One line for reason r, e.g. "4x command exited with status 3; stderr: CUDA
 * error: out of memory (tasks 0, 1, 2, 5)" (`times` is "x" or "×"; the ids
 * end with ", ..." when there are more).  \return the length snprintf
 * would write.
 */
int gd__reason_format(char *buf, size_t n, const gd__reason *r, const char *times);

/* The indexes of the reasons (0..n-1, GD__REASONS_MAX for `other` when it
 * has any), the most frequent first (ties: first seen first), at most max.
 * \return how many. */
int gd__reasons_sorted(const gd__reasons *rs, int *idx, int max);

/* Reason i of rs as gd__reasons_sorted() numbers them. */
const gd__reason *gd__reasons_at(const gd__reasons *rs, int i);

#endif
