/*
 * MPI integration tests of the core, retries: mpi_retry SCENARIO under
 * mpiexec.  retry: tasks whose first attempt fails succeed on a retry;
 * retry_w1: with W = 1, the worker whose task failed keeps getting tasks.
 * Rank 0 checks what the callbacks and statistics say; the exit status is
 * non-zero when a check failed.
 */
#define _GNU_SOURCE
#include "mpi_common.h"

#include <stdio.h>

static void sc_retry(seen *s, gd_config *cfg)
{
	static const char *kinds[] = {"flaky", "ok"};
	gen g = {.n = 40, .kinds = kinds, .nkinds = 2};
	TEST_STATS(st);
	int rc;

	cfg->retries = 1;
	rc = run(s, &g, cfg, &st);
	if (g_rank == 0) {
		CHECK(rc == 0);
		every_task_once(s, g.n);
		CHECK(st.completed == 40 && st.failed == 0 && st.retried == 20);
	}
	gd_stats_free(&st);
}

/* W = 1 and a retry: the worker whose task failed must not starve (it once
 * left the hungry list when the retry held the only free slot). */
static void sc_retry_w1(seen *s, gd_config *cfg)
{
	static const char *kinds[31] = {"flaky"};
	gen g = {.n = 31, .kinds = kinds, .nkinds = 31};
	TEST_STATS(st);
	int rc;

	for (int i = 1; i < 31; i++)
		kinds[i] = "nap";
	cfg->window = 1;
	cfg->retries = 1;
	rc = run(s, &g, cfg, &st);
	if (g_rank == 0) {
		CHECK(rc == 0);
		every_task_once(s, g.n);
		for (int i = 0; i < st.n_workers; i++)
			CHECK(st.workers[i].completed >= 5); /* both keep working */
		printf("retry_w1: completed per worker %llu / %llu\n",
		       (unsigned long long)st.workers[0].completed,
		       (unsigned long long)st.workers[1].completed);
	}
	gd_stats_free(&st);
}

static const struct mpi_scenario scenarios[] = {
        {"retry", sc_retry},
        {"retry_w1", sc_retry_w1},
};

int main(int argc, char **argv)
{
	return mpi_main(argc, argv, MPI_SCENARIOS(scenarios));
}
