/*
 * MPI integration tests of the core, how tasks spread over the workers:
 * mpi_spread SCENARIO under mpiexec.  spread_start: a few long tasks go one
 * to each worker; spread_end: with total_hint, the last ones go to workers
 * that are free.  Rank 0 checks what the callbacks and statistics say; the
 * exit status is non-zero when a check failed.
 */
#define _GNU_SOURCE
#include "mpi_common.h"

#include <stdint.h>
#include <stdio.h>

/* CHECK that every worker ran `want` tasks. */
static void each_worker_ran(const gd_stats *st, uint64_t want)
{
	for (int i = 0; i < st->n_workers; i++)
		if (st->workers[i].completed != want) {
			fprintf(stderr, "worker %d ran %llu tasks, not %llu\n", i,
			        (unsigned long long)st->workers[i].completed,
			        (unsigned long long)want);
			failures++;
		}
}

/* per_worker long tasks for each worker, W = 4, with or without
 * total_hint: CHECK that every worker ran per_worker of them. */
static void spread(seen *s, gd_config *cfg, int per_worker, int hint)
{
	static const char *kinds[] = {"long"};
	gen g = {.n = per_worker * nworkers(), .kinds = kinds, .nkinds = 1};
	TEST_STATS(st);

	cfg->window = 4;
	cfg->total_hint = hint ? (uint64_t)g.n : 0;
	int rc = run(s, &g, cfg, &st);
	if (g_rank == 0) {
		CHECK(rc == 0);
		every_task_once(s, g.n);
		each_worker_ran(&st, (uint64_t)per_worker);
	}
	gd_stats_free(&st);
}

/* A few long tasks, no total_hint: one goes to each worker, not four to
 * the first one that is ready (until a result says how long tasks take, a
 * worker holds one). */
static void sc_spread_start(seen *s, gd_config *cfg)
{
	spread(s, cfg, 1, 0);
}

/* Three long tasks per worker, with total_hint: the last ones go to
 * workers that are free, so every worker runs three (a worker that held
 * four would run 200 ms longer than the others). */
static void sc_spread_end(seen *s, gd_config *cfg)
{
	spread(s, cfg, 3, 1);
}

static const struct mpi_scenario scenarios[] = {
        {"spread_start", sc_spread_start},
        {"spread_end", sc_spread_end},
};

int main(int argc, char **argv)
{
	return mpi_main(argc, argv, MPI_SCENARIOS(scenarios));
}
