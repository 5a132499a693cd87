/*
 * How a run ends: the stop level (none -> drain -> now, never back), when
 * the workers are told to STOP, and what gd_run() returns.  A small state
 * machine of pure functions over what the dispatcher counts, so that
 * tests/test_termination.c checks every way a run ends without MPI.
 *
 *   NONE  --request 1--> DRAIN --request 2 / grace passed--> NOW
 *   NONE  --request 2 / an error--> NOW
 *
 * DRAIN hands out nothing more; what is in flight finishes (what waits for
 * a retry is not done).  NOW also tells every worker to ABORT: tasks in
 * flight are abandoned.  Either way the run ends when nothing is left out.
 */
#ifndef GD_TERMINATION_H
#define GD_TERMINATION_H

#include <stdint.h>

#include "gpudispatch.h"

typedef struct gd__term {
	int level;       /* gd_stop_level reached; it only rises */
	double stop_at;  /* when it left GD_STOP_NONE */
	int stops_sent;  /* the end: STOP went to every worker */
	double stops_at; /* when */
} gd__term;

/* The level the run must go to now: the strongest of the current one, the
 * request (poll_stop / stop_flag, ignored after an error: the error
 * decides), an error (NOW), and the grace period after a drain (NOW once
 * grace_s > 0 has passed).  \return it; a caller acts when it is above
 * t->level, and then calls gd__term_raise(). */
int gd__term_want(const gd__term *t, int requested, int failed, double now, double grace_s);
void gd__term_raise(gd__term *t, int level, double now);

/* What the dispatcher holds, for the end. */
typedef struct gd__term_view {
	unsigned requeued; /* tasks waiting to run again */
	int gen_done;      /* the generator said there is no more */
	int gen_err;       /* it (or the journal, or the skip hook) failed */
	uint64_t inflight; /* tasks out on workers */
	int live;          /* workers ready */
	int pending;       /* workers still in setup */
} gd__term_view;

/* \return 1 when the STOPs must go out now: nothing more to hand out and
 * nothing out, or nobody left to run anything.  Once only. */
int gd__term_end_due(const gd__term *t, const gd__term_view *v);
void gd__term_ended(gd__term *t, double now);

/* How the run came out. */
typedef struct gd__term_outcome {
	int rc;             /* the first error of the loop (MPI, memory, journal), 0 = none */
	int gen_done;       /* the generator ended */
	int gen_err;        /* GD_EGENERATOR, or the journal's / skip hook's code */
	int live;           /* workers ready at the end */
	int n_setup_failed; /* workers that retired */
	int nw;             /* workers */
	uint64_t not_done;  /* tasks abandoned */
} gd__term_outcome;

/* What gd_run() returns: the loop's error; else the generator's; else
 * GD_EALLSETUP when every worker retired before the work was done; else
 * GD_EINTR when a stop left tasks undone or unproduced; else 0. */
int gd__term_result(const gd__term *t, const gd__term_outcome *o);

/* cfg.halt (GNU parallel's --halt): \return the stop level the halt
 * condition asks for now that the run's totals are st, GD_STOP_NONE while
 * it is not met (or there is none). */
int gd__term_halt(const gd_config *cfg, const gd_stats *st);
/* \return 0 when cfg's halt members make sense, else GD_EINVAL. */
int gd__term_halt_check(const gd_config *cfg);

#endif
