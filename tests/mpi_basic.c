/*
 * MPI integration tests of the core, the plain runs: mpi_basic SCENARIO
 * [WINDOW] under mpiexec with 2, 3 or 5 ranks.  basic: 1000 tasks, each
 * reported once, the same statistics on every rank, the generator never
 * more than workers x W ahead; inline: the same with process() in the
 * worker rank itself; zero: no task at all; empty: tasks the generator
 * left empty; stdio_flush: what tasks print through stdio reaches its
 * file.  Rank 0 checks what the callbacks and statistics say; the exit
 * status is non-zero when a check failed.
 */
#define _GNU_SOURCE
#include "mpi_common.h"

#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void sc_basic(seen *s, gd_config *cfg)
{
	static const char *kinds[] = {"ok", "seed"};
	gen g = {.n = 1000, .kinds = kinds, .nkinds = 2};
	TEST_STATS(st);
	int rc = run(s, &g, cfg, &st);

	if (g_rank == 0) {
		CHECK(rc == 0);
		every_task_once(s, g.n);
		CHECK(s->exit_rc == 0);
		CHECK(st.total == 1000 && st.completed == 1000 && st.failed == 0);
		CHECK(s->seed_bad == 0);
		CHECK(s->dispatches == 1000);
		/* the generator never ran more than workers x W ahead */
		CHECK(g.max_ahead <= (long)nworkers() * (long)cfg->window);
		uint64_t sum = 0;
		for (int i = 0; i < st.n_workers; i++)
			sum += st.workers[i].completed;
		CHECK(sum == 1000);
		printf("basic: %d workers, W=%u, generator at most %ld ahead\n", nworkers(),
		       cfg->window, g.max_ahead);
	}
	/* every rank gets the same statistics */
	CHECK(rc == 0);
	CHECK(st.completed == 1000 && st.n_workers == nworkers());
	gd_stats_free(&st);
}

static void sc_inline(seen *s, gd_config *cfg)
{
	cfg->isolation = GD_ISOLATE_NONE;
	cfg->window = 8;
	sc_basic(s, cfg);
}

static void sc_zero(seen *s, gd_config *cfg)
{
	gen g = {.n = 0};
	TEST_STATS(st);
	int rc = run(s, &g, cfg, &st);

	CHECK(rc == 0);
	if (g_rank == 0) {
		CHECK(s->exits == 1);
		CHECK(st.total == 0 && st.completed == 0);
		for (int i = 0; i < st.n_workers; i++)
			CHECK(st.workers[i].state == GD_WS_DONE);
	}
	gd_stats_free(&st);
}

/* A generator that writes nothing into the buffer makes an empty task (it
 * once crashed rank 0: a slot's buffer was never allocated). */
static void sc_empty(seen *s, gd_config *cfg)
{
	gen g = {.n = 40, .untouched = 1};
	TEST_STATS(st);
	int rc;

	rc = run(s, &g, cfg, &st);
	CHECK(rc == 0);
	if (g_rank == 0) {
		every_task_once(s, g.n);
		CHECK(st.completed == 40);
		for (int i = 0; i < g.n; i++)
			CHECK(s->kind[i] == 's');
	}
	gd_stats_free(&st);
}

/* What tasks write through stdio reaches its file although the executor
 * ends with _exit() (which flushes nothing): it once lost every line that
 * was still in a buffer. */
static void sc_stdio_flush(seen *s, gd_config *cfg)
{
	char dir[] = "/tmp/gd_stdio.XXXXXX";
	gd_kv kv[] = {{"print_to", dir}};
	gen g = {.n = 60};
	TEST_STATS(st);
	int rc, lines = 0;

	if (g_rank == 0)
		CHECK(mkdtemp(dir) != NULL);
	cfg->setup_args = kv;
	cfg->n_setup_args = 1;
	rc = run(s, &g, cfg, &st);
	MPI_Barrier(MPI_COMM_WORLD); /* every executor has been reaped */
	if (g_rank == 0) {
		DIR *d = opendir(dir);
		struct dirent *e;

		CHECK(rc == 0);
		every_task_once(s, g.n);
		CHECK(d != NULL);
		while (d && (e = readdir(d))) {
			char path[600], line[128];
			FILE *f;

			if (e->d_name[0] == '.')
				continue;
			snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
			if ((f = fopen(path, "r"))) {
				while (fgets(line, sizeof(line), f))
					lines += strncmp(line, "task ", 5) == 0;
				fclose(f);
			}
			unlink(path);
		}
		if (d)
			closedir(d);
		rmdir(dir);
		if (lines != g.n)
			fprintf(stderr, "stdio_flush: %d of %d lines\n", lines, g.n);
		CHECK(lines == g.n);
	}
	gd_stats_free(&st);
}

static const struct mpi_scenario scenarios[] = {
        {"basic", sc_basic}, {"inline", sc_inline},           {"zero", sc_zero},
        {"empty", sc_empty}, {"stdio_flush", sc_stdio_flush},
};

int main(int argc, char **argv)
{
	return mpi_main(argc, argv, MPI_SCENARIOS(scenarios));
}
