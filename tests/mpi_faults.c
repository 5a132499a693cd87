/*
 * MPI integration tests of the core, tasks that fail: mpi_faults SCENARIO
 * under mpiexec.  faults: error results, hangs and busy loops past the task
 * timeout, crashes (SIGSEGV, abort, exit), each reported as what it is and
 * the executor replaced; fork_crash: a crash while a forked child holds the
 * executor's socket; lazy_crash: crashes and a hang in a stream of 1 ms
 * tasks, every task run exactly once.  Rank 0 checks what the callbacks and
 * statistics say; the exit status is non-zero when a check failed.
 */
#define _GNU_SOURCE
#include "mpi_common.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>

static void sc_faults(seen *s, gd_config *cfg)
{
	static const char *kinds[] = {"ok",   "err", "hang",  "ok",   "segv",
	                              "spin", "ok",  "abort", "exit", "ok"};
	gen g = {.n = 20, .kinds = kinds, .nkinds = 10};
	TEST_STATS(st);
	int rc;

	cfg->task_timeout = hang_timeout();
	rc = run(s, &g, cfg, &st);
	if (g_rank == 0) {
		CHECK(rc == 0);
		every_task_once(s, g.n);
		for (int i = 0; i < g.n; i++) {
			const char *k = kinds[i % 10];
			if (!strcmp(k, "ok"))
				CHECK(s->kind[i] == 's');
			else if (!strcmp(k, "hang") || !strcmp(k, "spin"))
				CHECK(s->kind[i] == 't');
			else
				CHECK(s->kind[i] == 'e');
		}
		CHECK(strstr(s->msg[1], "bad input in task 1") != NULL);
		CHECK(strstr(s->msg[4], "killed by signal 11") != NULL);
		CHECK(strstr(s->msg[7], "killed by signal 6") != NULL);
		CHECK(strstr(s->msg[8], "exited with status 3") != NULL);
		CHECK(strstr(s->msg[2], "timed out after") != NULL);
		for (int i = 0; i < g.n; i++)
			if (s->kind[i] !=
			    (!strcmp(kinds[i % 10], "ok") ? 's'
			     : (!strcmp(kinds[i % 10], "hang") || !strcmp(kinds[i % 10], "spin"))
			             ? 't'
			             : 'e'))
				fprintf(stderr, "task %d (%s): %c %s\n", i, kinds[i % 10],
				        s->kind[i], s->msg[i]);
		CHECK(st.completed == 8 && st.failed == 8 && st.timed_out == 4);
		uint32_t restarts = 0;
		for (int i = 0; i < st.n_workers; i++)
			restarts += st.workers[i].restarts;
		CHECK(restarts == 10); /* 4 timeouts + 6 crashes (segv, abort, exit x 2) */
		printf("faults: %s / %s / %s\n", s->msg[4], s->msg[8], s->msg[2]);
	}
	gd_stats_free(&st);
}

/* A crash while a child of the task holds the executor's socket: no EOF
 * comes, the executor's exit is seen all the same, and no timeout is set. */
static void sc_fork_crash(seen *s, gd_config *cfg)
{
	static const char *kinds[] = {"ok", "forkcrash", "ok", "ok"};
	gen g = {.n = 8, .kinds = kinds, .nkinds = 4};
	TEST_STATS(st);
	int rc;

	rc = run(s, &g, cfg, &st);
	if (g_rank == 0) {
		CHECK(rc == 0);
		every_task_once(s, g.n);
		CHECK(s->kind[1] == 'e' && strstr(s->msg[1], "killed by signal 11") != NULL);
		CHECK(s->kind[5] == 'e' && strstr(s->msg[5], "killed by signal 11") != NULL);
		CHECK(st.completed == 6);
		/* far below the 60 s the forked child would keep the socket */
		CHECK(st.elapsed_s < 30);
	}
	gd_stats_free(&st);
}

/*
 * A steady stream of 1 ms tasks, with crashes and a hang in it.  The
 * supervisor collects the results of such a stream without being woken by
 * each; when it replaces an executor it must still take every result that
 * executor wrote, or those tasks would run a second time.  Each task runs
 * exactly once.
 */
static void sc_lazy_crash(seen *s, gd_config *cfg)
{
	enum { N = 600 };
	static const char *kinds[N];
	static unsigned total[MAXT], none[MAXT];
	gen g = {.n = N, .kinds = kinds, .nkinds = N};
	TEST_STATS(st);
	int rc;

	for (int i = 0; i < N; i++)
		kinds[i] = i == 150 || i == 451 ? "segv" : i == 300 ? "hang" : "ms";
	runs = mmap(NULL, MAXT * sizeof(*runs), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
	            -1, 0);
	CHECK(runs != MAP_FAILED);
	if (runs == MAP_FAILED)
		runs = NULL;
	cfg->window = 16;
	cfg->task_timeout = hang_timeout();
	rc = run(s, &g, cfg, &st);
	MPI_Reduce(runs ? runs : none, total, MAXT, MPI_UNSIGNED, MPI_SUM, 0, MPI_COMM_WORLD);
	if (g_rank == 0) {
		int again = 0;

		CHECK(rc == 0);
		every_task_once(s, N);
		CHECK(s->kind[150] == 'e' && s->kind[451] == 'e' && s->kind[300] == 't');
		CHECK(st.completed == N - 3);
		for (int i = 0; i < N; i++)
			if (total[i] != 1 && again++ < 5)
				fprintf(stderr, "task %d (%s) ran %u times\n", i, kinds[i],
				        total[i]);
		CHECK(again == 0);
		printf("lazy_crash: %d tasks, %d ran more than once\n", N, again);
	}
	gd_stats_free(&st);
}

static const struct mpi_scenario scenarios[] = {
        {"faults", sc_faults},
        {"fork_crash", sc_fork_crash},
        {"lazy_crash", sc_lazy_crash},
};

int main(int argc, char **argv)
{
	return mpi_main(argc, argv, MPI_SCENARIOS(scenarios));
}
