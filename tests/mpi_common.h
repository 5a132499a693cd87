/*
 * The shared part of the MPI integration tests (tests/mpi_*.c): the CHECK
 * macro and its failure counter, the test worker class, the task
 * generator, the callbacks that record what each task reported (`seen`),
 * run(), and mpi_main(), which runs the scenario named on the command line
 * from a feature file's table.  mpi_common.c describes the task commands
 * the test worker obeys.
 */
#ifndef GD_TESTS_MPI_COMMON_H
#define GD_TESTS_MPI_COMMON_H

#include "gpudispatch.h"

#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define MAXT 4096 /* task ids the checks follow */

extern int failures; /* failed checks on this rank */
extern int g_rank;

#define CHECK(cond)                                                                                \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "rank %d: CHECK failed at %s:%d: %s\n", g_rank, __FILE__,  \
			        __LINE__, #cond);                                                  \
			failures++;                                                                \
		}                                                                                  \
	} while (0)

/* Every statistics variable of the tests is declared through this. */
#define TEST_STATS(name) gd_stats name = GD_STATS_INIT

/* ------------------------------------------------------------ the worker */

extern const gd_worker_class test_class;

/* How many times each task ran, over every executor this rank forks: a
 * shared mapping made before gd_run() (NULL: not counted). */
extern unsigned *runs;

/* Non-zero: the worker's cleanup() sleeps 15 s (a hung cleanup(): only
 * ABORT ends it). */
extern int slow_cleanup;

/* ------------------------------------------------------------ generator */

typedef struct gen {
	int n; /* tasks to make */
	int made;
	const char **kinds; /* cycled; NULL = "ok" */
	int nkinds;
	int fail_after;     /* return -1 after this many, 0 = never */
	size_t *sizes;      /* echo payload sizes, NULL = text tasks */
	const char *prefix; /* with sizes: what the payload starts with, NULL = "echo" */
	int segv_every;     /* with sizes: every Nth task (from the 2nd) crashes its executor */
	int hang;           /* with sizes: every task hangs ... */
	int quick_first;    /* ... but the first quick_first ones */
	int untouched;      /* leave the task buffer alone: an empty task */
	/* the credit window: produced - reported <= workers * W at every call */
	long max_ahead;
	long reported;
} gen;

/* The generator of every scenario: its state is a gen. */
int next_task(void *state, gd_buf *task);

/* ------------------------------------------------------------ callbacks */

typedef struct seen {
	gen *g;
	unsigned char count[MAXT]; /* reports per task id */
	int worker_of[MAXT];
	char kind[MAXT]; /* 's'uccess, 'e'rror, 't'imeout, 'n'ot done */
	char msg[MAXT][96];
	char res[MAXT][96]; /* short results, as text */
	int setup_fails, exits, exit_rc, successes_before_stop;
	int stop_after;
	volatile sig_atomic_t stop;
	int seed_bad;
	int size_bad;
	int dispatches;
} seen;

void cb_success(void *u, const gd_event *ev);
void cb_exit(void *u, const gd_stats *st, int rc);

/* ------------------------------------------------------------ helpers */

/* The one place a test builds a configuration: the defaults, placement off. */
void test_config(gd_config *cfg);

/* gd_run() on MPI_COMM_WORLD with the test class, g and every callback
 * recording into s; no UI, base seed 1000. */
int run(seen *s, gen *g, gd_config *cfg, gd_stats *st);

/* CHECK that tasks 0..n-1 were each reported once and on_exit ran once. */
void every_task_once(seen *s, int n);

/* The task_timeout of scenarios with hanging tasks: long enough for a task
 * that does not hang. */
double hang_timeout(void);

/* The worker ranks: every rank but rank 0. */
int nworkers(void);

/* ------------------------------------------------------------ main */

struct mpi_scenario {
	const char *name;
	void (*fn)(seen *s, gd_config *cfg);
};

/*
 * The main() of a feature file: `PROGRAM [SCENARIO [WINDOW]]` runs the
 * scenario of that name (the table's first without one) on every rank,
 * WINDOW setting cfg->window.  Returns 0 when no check failed on any rank,
 * 1 when one did, 2 when MPI could not start or the scenario is unknown.
 */
int mpi_main(int argc, char **argv, const struct mpi_scenario *scenarios, size_t n);

#define MPI_SCENARIOS(table) (table), (sizeof(table) / sizeof((table)[0]))

#endif
