/*
 * MPI integration tests of the core, a start that fails: mpi_setup SCENARIO
 * under mpiexec.  setup_fail_one: one worker's setup() fails, the others
 * run every task; setup_fail_all: every setup() fails, the run ends with
 * GD_EALLSETUP before any task is made; enomem_start: rank 0 cannot
 * allocate its task slots, gd_run() returns GD_ENOMEM on every rank.  Rank
 * 0 checks what the callbacks and statistics say; the exit status is
 * non-zero when a check failed.
 */
#define _GNU_SOURCE
#include "mpi_common.h"

#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

static void sc_setup_fail_one(seen *s, gd_config *cfg)
{
	gd_kv kv[] = {{"fail_worker", "0"}};
	gen g = {.n = 200};
	TEST_STATS(st);
	int rc;

	cfg->setup_args = kv;
	cfg->n_setup_args = 1;
	rc = run(s, &g, cfg, &st);
	if (g_rank == 0) {
		CHECK(rc == 0);
		every_task_once(s, g.n);
		CHECK(s->setup_fails == 1);
		CHECK(st.n_setup_failed == 1);
		CHECK(st.workers[0].state == GD_WS_ERROR);
		CHECK(strstr(st.workers[0].message, "no model for worker 0") != NULL);
		CHECK(st.workers[0].completed == 0);
		for (int i = 0; i < g.n; i++)
			CHECK(s->worker_of[i] != 0);
	}
	gd_stats_free(&st);
}

static void sc_setup_fail_all(seen *s, gd_config *cfg)
{
	gd_kv kv[] = {{"fail_worker", "all"}};
	gen g = {.n = 50};
	TEST_STATS(st);
	int rc;

	cfg->setup_args = kv;
	cfg->n_setup_args = 1;
	rc = run(s, &g, cfg, &st);
	CHECK(rc == GD_EALLSETUP);
	if (g_rank == 0) {
		CHECK(s->exits == 1 && s->exit_rc == GD_EALLSETUP);
		CHECK(s->setup_fails == nworkers());
		CHECK(g.made == 0); /* nobody could take a task: none was made */
		printf("setup_fail_all: %s\n", gd_strerror(rc));
	}
	gd_stats_free(&st);
}

/*
 * Rank 0 cannot allocate its task slots (a window of 65536 with an address
 * space capped just above what the process uses): gd_run() fails with
 * GD_ENOMEM on every rank, and returns; no rank waits for the others.
 */
static void sc_enomem_start(seen *s, gd_config *cfg)
{
	gen g = {.n = 100};
	struct rlimit old, cap;
	unsigned long pages = 0;
	int rc, capped = 0;

	cfg->window = 65536; /* 2 x 65536 slots: tens of MB */
	if (g_rank == 0) {
		FILE *f = fopen("/proc/self/statm", "r");

		CHECK(f && fscanf(f, "%lu", &pages) == 1);
		if (f)
			fclose(f);
		getrlimit(RLIMIT_AS, &old);
		cap = old;
		cap.rlim_cur = (rlim_t)pages * (rlim_t)sysconf(_SC_PAGESIZE) + (8u << 20);
		capped = pages > 0 && setrlimit(RLIMIT_AS, &cap) == 0;
		CHECK(capped);
	}
	rc = run(s, &g, cfg, NULL);
	if (capped)
		setrlimit(RLIMIT_AS, &old);
	CHECK(rc == GD_ENOMEM);
	if (g_rank == 0) {
		CHECK(g.made == 0);
		/* on_exit says why; no worker is blamed for rank 0's failure */
		CHECK(s->exits == 1 && s->exit_rc == GD_ENOMEM);
		CHECK(s->setup_fails == 0);
		printf("enomem_start: gd_run returned '%s' on rank 0\n", gd_strerror(rc));
	}
}

static const struct mpi_scenario scenarios[] = {
        {"setup_fail_one", sc_setup_fail_one},
        {"setup_fail_all", sc_setup_fail_all},
        {"enomem_start", sc_enomem_start},
};

int main(int argc, char **argv)
{
	return mpi_main(argc, argv, MPI_SCENARIOS(scenarios));
}
