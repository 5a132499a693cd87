/*
 * MPI integration tests of the core, a generator that fails: mpi_generator
 * SCENARIO under mpiexec.  generator_error: the run ends with GD_EGENERATOR
 * and every task made before the error is reported; generator_error_retry:
 * a task waiting for its retry still runs.  Rank 0 checks what the
 * callbacks and statistics say; the exit status is non-zero when a check
 * failed.
 */
#define _GNU_SOURCE
#include "mpi_common.h"

static void sc_generator_error(seen *s, gd_config *cfg)
{
	gen g = {.n = 100, .fail_after = 30};
	TEST_STATS(st);
	int rc = run(s, &g, cfg, &st);

	CHECK(rc == GD_EGENERATOR);
	if (g_rank == 0) {
		every_task_once(s, 30); /* what was made before the error is all reported */
		CHECK(s->count[30] == 0);
		CHECK(s->exit_rc == GD_EGENERATOR);
		CHECK(st.completed == 30);
	}
	gd_stats_free(&st);
}

/* A generator error: tasks waiting for a retry still run. */
static void sc_generator_error_retry(seen *s, gd_config *cfg)
{
	static const char *kinds[] = {"flaky"};
	gen g = {.n = 10, .kinds = kinds, .nkinds = 1, .fail_after = 1};
	TEST_STATS(st);
	int rc;

	cfg->retries = 1;
	rc = run(s, &g, cfg, &st);
	CHECK(rc == GD_EGENERATOR);
	if (g_rank == 0) {
		every_task_once(s, 1);
		CHECK(st.completed == 1 && st.retried == 1 && st.not_done == 0);
	}
	gd_stats_free(&st);
}

static const struct mpi_scenario scenarios[] = {
        {"generator_error", sc_generator_error},
        {"generator_error_retry", sc_generator_error_retry},
};

int main(int argc, char **argv)
{
	return mpi_main(argc, argv, MPI_SCENARIOS(scenarios));
}
