/*
 * MPI integration tests of the core, gd_run()'s checks of its arguments:
 * mpi_args SCENARIO under mpiexec.  bad_args: a bad window, timeout, class
 * or generator fails on every rank with no callback, and a good run works
 * afterwards; no_worker: a single rank has no worker, GD_ENOWORKER.  Every
 * rank checks; the exit status is non-zero when a check failed.
 */
#define _GNU_SOURCE
#include "mpi_common.h"

#include <stdio.h>

static void sc_bad_args(seen *s, gd_config *cfg)
{
	gen g = {.n = 5};
	gd_callbacks cb = {.size = sizeof(cb), .on_exit = cb_exit, .user = s};
	gd_config c = *cfg;
	gd_worker_class noproc = {"x", NULL, NULL, NULL};

	s->g = &g;
	c.window = 0;
	CHECK(gd_run(MPI_COMM_WORLD, &test_class, next_task, &g, &cb, &c, NULL) == GD_EWINDOW);
	c = *cfg;
	c.task_timeout = -1;
	CHECK(gd_run(MPI_COMM_WORLD, &test_class, next_task, &g, &cb, &c, NULL) == GD_ETIMEOUT);
	c.task_timeout = 0;
	CHECK(gd_run(MPI_COMM_WORLD, NULL, next_task, &g, &cb, &c, NULL) == GD_ENOCLASS);
	CHECK(gd_run(MPI_COMM_WORLD, &noproc, next_task, &g, &cb, &c, NULL) == GD_ENOCLASS);
	CHECK(gd_run(MPI_COMM_WORLD, &test_class, NULL, &g, &cb, &c, NULL) == GD_ENOGEN);
	CHECK(s->exits == 0); /* no callback for a call that failed its checks */
	CHECK(g.made == 0);
	/* and a real run still works afterwards on the same communicator */
	CHECK(gd_run(MPI_COMM_WORLD, &test_class, next_task, &g, &cb, &c, NULL) == 0);
	if (g_rank == 0)
		CHECK(s->exits == 1 && g.made == 5);
}

static void sc_no_worker(seen *s, gd_config *cfg)
{
	gen g = {.n = 5};
	int rc = run(s, &g, cfg, NULL);

	CHECK(rc == GD_ENOWORKER);
	CHECK(s->exits == 0);
	printf("no_worker: %s\n", gd_strerror(rc));
}

static const struct mpi_scenario scenarios[] = {
        {"bad_args", sc_bad_args},
        {"no_worker", sc_no_worker},
};

int main(int argc, char **argv)
{
	return mpi_main(argc, argv, MPI_SCENARIOS(scenarios));
}
