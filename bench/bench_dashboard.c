/*
 * The dispatcher's throughput with the dashboard on (GD_UI_TUI at 10
 * refreshes per second) against the same run with no UI (GD_UI_NONE).
 * Tasks are empty and run in the worker rank (GD_ISOLATE_NONE), so the
 * dispatcher's event rate, and with it the cost of the UI's wrapped
 * callbacks, is as high as it gets.  The two modes alternate, their order
 * swapped every repetition; the report gives every rate, the medians and
 * their ratio, and the median of the ratios of the pairs, "ratio on/off"
 * (target: >= 0.97): a pair's two runs are next to each other in time, so
 * their ratio is free of the drift that moves both.
 *
 *   mpirun -n 3 ./bench_dashboard [TASKS [REPS [REPORT [aa]]]]
 *
 * "aa" runs both arms without the dashboard: the ratio it reports is this
 * machine's noise floor for the same measurement.
 *
 * The dashboard needs a terminal (/dev/tty); without one it falls back to
 * text mode and the report says so: run bench_dashboard.sh, which uses tmux.
 */
#include <fcntl.h>
#include <gpudispatch_ui.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int process(gd_worker *w, const gd_task *t, gd_result *r)
{
	(void)w, (void)t, (void)r;
	return 0;
}

static int generate(void *state, gd_buf *task)
{
	uint64_t *left = state;
	if (!*left)
		return 0;
	--*left;
	return gd_buf_set(task, "t", 1) ? -1 : 1;
}

/* One run, with the dashboard if `on`; \return tasks per second on rank 0
 * (0 elsewhere), -1 on error. */
static double one_run(int on, uint64_t tasks)
{
	gd_worker_class cls = {.name = "empty", .process = process};
	gd_config cfg;
	gd_config_init(&cfg, sizeof(cfg));
	cfg.isolation = GD_ISOLATE_NONE;
	cfg.placement = 0;
	cfg.window = 16;
	cfg.total_hint = tasks;
	gd_ui_options ui;
	gd_ui_options_init(&ui, sizeof(ui));
	ui.mode = on ? GD_UI_TUI : GD_UI_NONE;
	ui.refresh_hz = 10;
	gd_callbacks cb = {.size = sizeof(cb)};
	gd_stats stats = GD_STATS_INIT;
	uint64_t left = tasks;
	MPI_Barrier(MPI_COMM_WORLD);
	double t0 = MPI_Wtime();
	int rc = gd_ui_run(MPI_COMM_WORLD, &cls, generate, &left, &cb, &cfg, &ui, &stats);
	double dt = MPI_Wtime() - t0;
	uint64_t done = stats.completed;
	gd_stats_free(&stats);
	if (rc) {
		fprintf(stderr, "gd_run: %s\n", gd_strerror(rc));
		return -1;
	}
	return dt > 0 ? (double)done / dt : 0;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

static double median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

int main(int argc, char **argv)
{
	if (gd_init(&argc, &argv))
		return 1;
	int rank;
	MPI_Comm_rank(MPI_COMM_WORLD, &rank);
	uint64_t tasks = argc > 1 ? strtoull(argv[1], NULL, 10) : 2000000;
	int reps = argc > 2 ? atoi(argv[2]) : 5;
	if (reps < 1 || reps > 100)
		reps = 5;
	int aa = argc > 4 && !strcmp(argv[4], "aa"); /* the "on" arm without the dashboard */
	double on[100], off[100], pair[100];

	/* A warm-up run of each kind, not counted. */
	if (one_run(0, tasks / 10) < 0 || one_run(1, tasks / 10) < 0)
		goto fail;
	for (int i = 0; i < reps; i++) {
		/* Swap the order every repetition so drift hits both alike: the
		 * second run of a pair was about 1 % slower than the first, so
		 * an even number of repetitions leaves neither arm favoured. */
		int first = i % 2;
		double a = one_run(first && !aa, tasks), b = one_run(!first && !aa, tasks);
		if (a < 0 || b < 0)
			goto fail;
		on[i] = first ? a : b;
		off[i] = first ? b : a;
		pair[i] = off[i] > 0 ? on[i] / off[i] : 0;
	}
	if (rank == 0) {
		FILE *out = argc > 3 ? fopen(argv[3], "w") : stdout;
		if (!out)
			out = stdout;
		int tty = open("/dev/tty", O_RDWR | O_NOCTTY);
		if (tty >= 0)
			close(tty);
		fprintf(out, "bench_dashboard: %llu empty tasks per run, %d repetitions\n",
		        (unsigned long long)tasks, reps);
		fprintf(out, "terminal: %s\n",
		        tty >= 0 ? "/dev/tty (the dashboard was drawn)"
		                 : "none: the dashboard fell back to text mode (use "
		                   "bench_dashboard.sh)");
		if (aa)
			fprintf(out,
			        "mode: aa, both arms without the dashboard (the noise floor)\n");
		for (int i = 0; i < reps; i++)
			fprintf(out, "rep %d: off %.0f tasks/s, on %.0f tasks/s\n", i, off[i],
			        on[i]);
		double mon = median(on, reps), moff = median(off, reps);
		fprintf(out, "median: off %.0f tasks/s, on %.0f tasks/s\n", moff, mon);
		fprintf(out, "ratio of the medians: %.3f\n", moff > 0 ? mon / moff : 0);
		fprintf(out,
		        "ratio on/off: %.3f (the median of the %d pairs' ratios; target >= 0.97)\n",
		        median(pair, reps), reps);
		if (out != stdout)
			fclose(out);
	}
	gd_finalize();
	return 0;
fail:
	gd_finalize();
	return 1;
}
