/*
 * No user interface: cfg.ui = GD_UI_NONE draws nothing and prints nothing
 * (no ncurses at all), yet gd_run() still returns the full statistics, from
 * which rank 0 prints the success rate.  One task in 10 fails on purpose.
 *
 *   mpirun -n 3 ./no_ui [TASKS]
 */
#include <gpudispatch.h>
#include <stdio.h>
#include <stdlib.h>

static int process(gd_worker *w, const gd_task *t, gd_result *r)
{
	(void)w;
	if (t->id % 10 == 3)
		return gd_result_error(r, "task %llu fails on purpose", (unsigned long long)t->id);
	return 0; /* an empty result */
}

static int generate(void *state, gd_buf *task)
{
	uint64_t *left = state;
	if (!*left)
		return 0;
	--*left;
	return gd_buf_set(task, "x", 1) ? -1 : 1;
}

int main(int argc, char **argv)
{
	if (gd_init(&argc, &argv))
		return 1;
	int rank;
	MPI_Comm_rank(MPI_COMM_WORLD, &rank);
	uint64_t left = argc > 1 ? strtoull(argv[1], NULL, 10) : 500;

	gd_worker_class cls = {.name = "quiet", .process = process};
	gd_config cfg;
	gd_config_init(&cfg, sizeof(cfg));
	cfg.placement = 0;
	gd_callbacks cb = {.size = sizeof(cb)};
	gd_stats stats = GD_STATS_INIT;
	int rc = gd_run(MPI_COMM_WORLD, &cls, generate, &left, &cb, &cfg, &stats);
	if (rank == 0) {
		double rate =
		        stats.total ? 100.0 * (double)stats.completed / (double)stats.total : 0;
		printf("%llu tasks, %llu succeeded, %llu failed: success rate %.1f%% (rc %d)\n",
		       (unsigned long long)stats.total, (unsigned long long)stats.completed,
		       (unsigned long long)stats.failed, rate, rc);
	}
	gd_stats_free(&stats);
	gd_finalize();
	return rc ? 1 : 0;
}
