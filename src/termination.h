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
/*
 * The deadline (cfg.deadline): a task starts on a worker only when it is
 * expected to end before the deadline minus a margin.  How long a task
 * takes is learned per worker from its last GD__DUR_KEEP run times: their
 * 90th percentile (the largest while it has 10 or fewer, the second
 * largest of 16: one task that ran long does not hold the rest back, and
 * a fast one never makes the estimate optimistic).
 */
#define GD__DUR_KEEP 16

typedef struct gd__durations {
	double v[GD__DUR_KEEP];
	unsigned n;    /* kept, <= GD__DUR_KEEP */
	unsigned next; /* where the next one goes */
} gd__durations;

void gd__dur_add(gd__durations *d, double s);

/* The q-quantile (nearest rank) of what d keeps; 0 when it keeps none. */
double gd__dur_quantile(const gd__durations *d, double q);

/* A task's expected run time on a worker: the 90th percentile of its own
 * (else of the run's, all: else unknown), never below hint (cfg.task_time)
 * and never above timeout (cfg.task_timeout; 0 = none).  0 = unknown. */
double gd__dl_estimate(const gd__durations *mine, const gd__durations *all, double hint,
                       double timeout);

/* The margin before the deadline: margin_s when > 0, else 2 % of span_s
 * (the time from the run's start to its deadline), in [5 s, 300 s]. */
double gd__dl_margin(double span_s, double margin_s);

/* When a task given now to a worker would end: the worker holds `held`
 * tasks, the oldest running since `since`, each taking est seconds. */
double gd__dl_task_end(double now, unsigned held, double since, double est);

/* The stop level the deadline asks for: NOW from deadline - margin / 2 on
 * (what still runs then would overrun it), DRAIN when every worker ready
 * has been held back (all_held), else NONE.  deadline 0 = none. */
int gd__dl_request(double now, double deadline, double margin, int all_held);

#endif
