/*
 * MPI integration tests of the core, large tasks: mpi_large SCENARIO under
 * mpiexec.  On one node rank 0 writes a large task into a shared-memory
 * drop the executor reads; the *_mpi scenarios turn drops off
 * (cfg.shm = 0) so the bytes go through MPI.  big, big_mpi: tasks of
 * 0 bytes to 64 MiB echo back intact; big_crash, big_crash_mpi: the same
 * across executor crashes; big_abort, big_abort_mpi: a stop while every
 * worker holds large tasks that hang; big_path, big_path_mpi,
 * big_path_inline: which mapping process() reads a task's bytes from;
 * big_retry: large tasks whose first attempt fails.  Rank 0 checks what the
 * callbacks and statistics say; the exit status is non-zero when a check
 * failed.
 */
#define _GNU_SOURCE
#include "mpi_common.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* cfg.shm = 0 (read by rank 0): large tasks take MPI, not drops. */
static void no_drops(gd_config *cfg)
{
	if (g_rank == 0)
		cfg->shm = 0;
}

static void sc_big(seen *s, gd_config *cfg)
{
	size_t sizes[] = {0, 1, 4, 4000, 4096, 65536, 1 << 20, 64u << 20, 5, 3 << 20};
	gen g = {.n = 10, .sizes = sizes};
	TEST_STATS(st);
	int rc;

	cfg->window = 2;
	rc = run(s, &g, cfg, &st);
	if (g_rank == 0) {
		CHECK(rc == 0);
		every_task_once(s, g.n);
		CHECK(st.completed == 10);
		CHECK(s->size_bad == 0);
	}
	gd_stats_free(&st);
}

/* Large tasks (shared memory to the executor) across executor crashes: the
 * new executor maps the buffers again and every echo comes back intact. */
static void sc_big_crash(seen *s, gd_config *cfg)
{
	static size_t sizes[24];
	gen g = {.n = 24, .sizes = sizes, .segv_every = 4};
	TEST_STATS(st);
	int rc;

	for (int i = 0; i < 24; i++)
		sizes[i] = (size_t)(100000 + 70000 * (i % 5)); /* above the shared-memory size */
	cfg->window = 3;
	rc = run(s, &g, cfg, &st);
	if (g_rank == 0) {
		CHECK(rc == 0);
		every_task_once(s, g.n);
		for (int i = 0; i < g.n; i++)
			CHECK(s->kind[i] == (i % 4 == 1 ? 'e' : 's'));
		CHECK(strstr(s->msg[1], "killed by signal 11") != NULL);
		CHECK(s->size_bad == 0);
		CHECK(st.completed == 18 && st.failed == 6);
	}
	gd_stats_free(&st);
}

static volatile sig_atomic_t *alarm_stop;

static void on_alarm(int sig)
{
	(void)sig;
	*alarm_stop = 2;
}

/* Stop now while every worker holds large tasks that hang, with no task
 * timeout.  A worker holding two large tasks looks at MPI only every few
 * ms: it must still see the ABORT.  Rank 0 gives a worker at most two
 * large tasks at a time, whatever the window.  The first task of each
 * worker returns at once: until a first result a worker holds one task. */
static void sc_big_abort(seen *s, gd_config *cfg, int per_worker)
{
	static size_t sizes[64];
	gen g = {.n = 64, .sizes = sizes, .hang = 1, .quick_first = nworkers()};
	TEST_STATS(st);
	int rc;

	for (int i = 0; i < 64; i++)
		sizes[i] = 100000; /* above the shared-memory size */
	cfg->window = 4;
	cfg->stop_flag = &s->stop;
	if (g_rank == 0) {
		alarm_stop = &s->stop;
		signal(SIGALRM, on_alarm);
		alarm(1);
	}
	rc = run(s, &g, cfg, &st);
	CHECK(rc == GD_EINTR);
	if (g_rank == 0) {
		every_task_once(s, g.made);
		/* large tasks each: one per drop (3), or 2 through MPI; not W = 4 */
		CHECK(g.made == nworkers() * (1 + per_worker));
		CHECK(st.not_done == (uint64_t)(nworkers() * per_worker));
		CHECK(st.completed == (uint64_t)nworkers());
		CHECK(st.elapsed_s < 30);
		printf("big_abort: %d tasks not done, %.2f s\n", g.made, st.elapsed_s);
	}
	gd_stats_free(&st);
}

/* Where a large task's bytes are when process() reads them: on one node,
 * in a drop rank 0 wrote them into (no MPI transfer); with drops turned
 * off, in the buffer MPI received them into.  `want` is part of the name
 * of that mapping, `isolation` where process() runs. */
static void sc_big_path(seen *s, gd_config *cfg, gd_isolation isolation, const char *want)
{
	static size_t sizes[8];
	gen g = {.n = 8, .sizes = sizes, .prefix = "where"};
	TEST_STATS(st);
	int rc;

	for (int i = 0; i < 8; i++)
		sizes[i] = i % 2 ? (size_t)(2u << 20) + 17 : 100000; /* the drops grow, stay */
	cfg->isolation = isolation;
	cfg->window = 3;
	rc = run(s, &g, cfg, &st);
	if (g_rank == 0) {
		CHECK(rc == 0);
		every_task_once(s, g.n);
		for (int i = 0; i < g.n; i++)
			if (!strstr(s->res[i], want)) {
				fprintf(stderr, "task %d read from '%s', not '%s'\n", i, s->res[i],
				        want);
				failures++;
			}
	}
	gd_stats_free(&st);
}

/* Large tasks whose first attempt fails run again on the other worker,
 * from a drop rank 0 filled again, and come back intact. */
static void sc_big_retry(seen *s, gd_config *cfg)
{
	static size_t sizes[12];
	gen g = {.n = 12, .sizes = sizes, .prefix = "flakyecho"};
	TEST_STATS(st);
	int rc;

	for (int i = 0; i < 12; i++)
		sizes[i] = (size_t)(70000 + 150000 * (i % 4));
	cfg->retries = 1;
	cfg->window = 2;
	rc = run(s, &g, cfg, &st);
	if (g_rank == 0) {
		CHECK(rc == 0);
		every_task_once(s, g.n);
		CHECK(st.completed == 12 && st.retried == 12);
		CHECK(s->size_bad == 0);
	}
	gd_stats_free(&st);
}

static void sc_big_mpi(seen *s, gd_config *cfg)
{
	no_drops(cfg);
	sc_big(s, cfg);
}

static void sc_big_crash_mpi(seen *s, gd_config *cfg)
{
	no_drops(cfg);
	sc_big_crash(s, cfg);
}

static void sc_big_abort_drops(seen *s, gd_config *cfg)
{
	sc_big_abort(s, cfg, 3);
}

static void sc_big_abort_mpi(seen *s, gd_config *cfg)
{
	no_drops(cfg);
	sc_big_abort(s, cfg, 2);
}

static void sc_big_path_drops(seen *s, gd_config *cfg)
{
	sc_big_path(s, cfg, GD_ISOLATE_PROCESS, "memfd:gpudispatch-drop");
}

static void sc_big_path_mpi(seen *s, gd_config *cfg)
{
	no_drops(cfg);
	sc_big_path(s, cfg, GD_ISOLATE_PROCESS, "memfd:gpudispatch-task");
}

static void sc_big_path_inline(seen *s, gd_config *cfg)
{
	sc_big_path(s, cfg, GD_ISOLATE_NONE, "memfd:gpudispatch-drop");
}

static const struct mpi_scenario scenarios[] = {
        {"big", sc_big},
        {"big_mpi", sc_big_mpi},
        {"big_crash", sc_big_crash},
        {"big_crash_mpi", sc_big_crash_mpi},
        {"big_abort", sc_big_abort_drops},
        {"big_abort_mpi", sc_big_abort_mpi},
        {"big_path", sc_big_path_drops},
        {"big_path_mpi", sc_big_path_mpi},
        {"big_path_inline", sc_big_path_inline},
        {"big_retry", sc_big_retry},
};

int main(int argc, char **argv)
{
	return mpi_main(argc, argv, MPI_SCENARIOS(scenarios));
}
