/*
 * The credit window: how many tasks rank 0 lets a worker hold, and how
 * long rank 0 may nap when nothing happened.  Pure functions of what the
 * dispatcher measured, so that tests/test_window.c checks the policy
 * without MPI.
 *
 * A worker holds at most W tasks (cfg.window), fewer where more would only
 * unbalance the run.  A task queued behind the running one hides the round
 * trip of a result (1-2 ms on a busy node); tasks queued beyond what that
 * needs make nothing faster, but at the end of a run some workers still
 * have them to run while others have nothing left: with W = 4 and tasks of
 * an hour, up to three hours.  So:
 *   - one each until a first result says how long tasks take: a run of a
 *     few long tasks starts them on every worker, not W on the first one
 *     that is ready;
 *   - one for tasks of GD__LONG_TASK_S or more: the round trip (about 2 ms)
 *     costs them 0.2 % at most, and no task waits behind another while a
 *     worker is free;
 *   - else the running one and enough to cover GD__REFILL_S of work;
 *   - one when the tasks left (by cfg.total_hint) are no more than the
 *     workers: the last ones go to workers that are free.
 */
#ifndef GD_WINDOW_H
#define GD_WINDOW_H

#include <stdint.h>

#define GD__LONG_TASK_S 1.0
#define GD__REFILL_S    10e-3

typedef struct gd__window {
	unsigned W;        /* cfg.window */
	unsigned eff;      /* tasks a worker may hold now, before the end rule */
	double avg_task_s; /* running mean of the tasks' run time */
	uint64_t timed;    /* results that went into it */
} gd__window;

void gd__window_init(gd__window *w, unsigned W);

/* A result came in that ran elapsed_s: the first starts the mean, every
 * later one moves it by 5 %; the window follows the mean every 16th. */
void gd__window_result(gd__window *w, double elapsed_s);

/* Credits per worker now: the end rule over eff.  hint: cfg.total_hint
 * (0 = unknown; a hint the generator has gone past is wrong and ignored),
 * next_id: tasks produced so far, live: workers ready. */
unsigned gd__window_credit(const gd__window *w, uint64_t hint, uint64_t next_id, int live);

/* What the dispatcher loop saw when it found nothing to do. */
typedef struct gd__idle_view {
	int large_moving;   /* a large task's send is still on its way */
	int all_out;        /* every credit of every live worker is out */
	int big_full;       /* some worker holds as many large tasks as it may */
	uint64_t inflight;  /* tasks out */
	double since_stops; /* seconds since STOP went out, < 0 = not yet */
	unsigned credit;    /* gd__window_credit() now */
} gd__idle_view;

/* How to nap (see gd__backoff): the spins before sleeping and a sleep
 * hint in seconds (0 = the growing back-off). */
void gd__window_nap(const gd__window *w, const gd__idle_view *v, unsigned *spins, double *hint_s);

#endif
