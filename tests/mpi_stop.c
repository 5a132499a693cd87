/*
 * MPI integration tests of the core, stopping a run: mpi_stop SCENARIO under
 * mpiexec.  stop: the stop flag drains the run, GD_EINTR; stop_in_cleanup:
 * a stop now while the workers are in a cleanup() that hangs.  Rank 0
 * checks what the callbacks and statistics say; the exit status is non-zero
 * when a check failed.
 */
#define _GNU_SOURCE
#include "mpi_common.h"

#include <stdio.h>

static void sc_stop(seen *s, gd_config *cfg)
{
	gen g = {.n = 100000};
	TEST_STATS(st);
	int rc;

	s->stop_after = 50;
	cfg->stop_flag = &s->stop;
	rc = run(s, &g, cfg, &st);
	CHECK(rc == GD_EINTR);
	if (g_rank == 0) {
		/* drained: everything sent was reported, nothing after the stop was made */
		CHECK(s->exits == 1 && s->exit_rc == GD_EINTR);
		every_task_once(s, g.made);
		CHECK(st.total == (uint64_t)g.made);
		CHECK(st.completed == (uint64_t)g.made);
		CHECK(g.made < 50 + nworkers() * (int)cfg->window + 1);
	}
	gd_stats_free(&st);
}

/* Stop now while the workers are in a cleanup() that hangs: ABORT follows
 * the STOP and ends it (15 s otherwise). */
static int stop_when_done(void *user)
{
	static double done_at;
	seen *s = user;

	if (s->g->reported < s->g->n)
		return 0;
	if (!done_at)
		done_at = gd_now();
	/* late enough that STOP went out and cleanup() is running */
	return gd_now() - done_at > 0.3 ? 2 : 0;
}

static void sc_stop_in_cleanup(seen *s, gd_config *cfg)
{
	gen g = {.n = 4};
	gd_callbacks cb = {.size = sizeof(cb),
	                   .on_success = cb_success,
	                   .on_exit = cb_exit,
	                   .poll_stop = stop_when_done,
	                   .user = s};
	TEST_STATS(st);
	int rc;

	slow_cleanup = 1;
	s->g = &g;
	rc = gd_run(MPI_COMM_WORLD, &test_class, next_task, &g, &cb, cfg, &st);
	if (g_rank == 0) {
		CHECK(s->exits == 1);
		every_task_once(s, 4);
		/* far below the 15 s a cleanup() would take: it was cut short */
		CHECK(st.elapsed_s < 10);
		printf("stop_in_cleanup: rc %d after %.2f s, %llu completed, %llu not done\n", rc,
		       st.elapsed_s, (unsigned long long)st.completed,
		       (unsigned long long)st.not_done);
	}
	gd_stats_free(&st);
}

static const struct mpi_scenario scenarios[] = {
        {"stop", sc_stop},
        {"stop_in_cleanup", sc_stop_in_cleanup},
};

int main(int argc, char **argv)
{
	return mpi_main(argc, argv, MPI_SCENARIOS(scenarios));
}
