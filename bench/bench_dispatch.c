/*
 * bench_dispatch: gpudispatch's throughput on a stream of synthetic tasks.
 *
 *   mpirun -n 4 bench_dispatch [--tasks N] [--payload BYTES] [--window W]
 *          [--isolation process|none] [--sleep-us US] [--ui none|tui]
 *          [--placement 0|1] [--label TEXT]
 *
 * Rank 0's generator hands out N tasks of BYTES bytes (the same buffer every
 * time: what is measured is the dispatcher, not the generator); process()
 * returns an empty result at once, or after usleep(US).  Rank 0 prints one
 * JSON line: the rate, rank 0's peak RSS and CPU time, and every worker
 * rank's peak RSS and CPU time (and, in process isolation, its executor's
 * peak RSS, read with RUSAGE_CHILDREN once the executor has been reaped).
 *
 * The time is taken from an MPI_Barrier just before gd_run() to its return
 * on rank 0: it includes starting the executors and setup(), which is what a
 * user waits for.
 */
#define _GNU_SOURCE
#include <gpudispatch_ui.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

typedef struct opts {
	uint64_t tasks;
	size_t payload;
	unsigned window;
	int isolation;
	unsigned sleep_us;
	int ui;
	int placement;
	double refresh_hz;
	const char *label;
} opts;

typedef struct gen {
	uint64_t left;
	size_t payload;
} gen;

static unsigned sleep_us;

static int process(gd_worker *w, const gd_task *t, gd_result *r)
{
	(void)w, (void)t, (void)r;
	if (sleep_us)
		usleep(sleep_us);
	return 0;
}

static int generate(void *state, gd_buf *task)
{
	gen *g = state;

	if (!g->left)
		return 0;
	g->left--;
	/* the slot buffer is reused: its bytes need not be written again */
	if (g->payload && !gd_buf_reserve(task, g->payload))
		return -1;
	return 1;
}

static void usage(void)
{
	fprintf(stderr, "usage: bench_dispatch [--tasks N] [--payload BYTES] [--window W]\n"
	                "       [--isolation process|none] [--sleep-us US] [--ui none|tui]\n"
	                "       [--refresh HZ] [--placement 0|1] [--label TEXT]\n");
}

static int parse(int argc, char **argv, opts *o)
{
	*o = (opts){.tasks = 100000, .payload = 16, .window = 16, .refresh_hz = 10, .label = ""};
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (!v) {
			usage();
			return -1;
		}
		i++;
		if (!strcmp(a, "--tasks"))
			o->tasks = strtoull(v, NULL, 10);
		else if (!strcmp(a, "--payload"))
			o->payload = strtoull(v, NULL, 10);
		else if (!strcmp(a, "--window"))
			o->window = (unsigned)strtoul(v, NULL, 10);
		else if (!strcmp(a, "--isolation"))
			o->isolation = strcmp(v, "none") ? GD_ISOLATE_PROCESS : GD_ISOLATE_NONE;
		else if (!strcmp(a, "--sleep-us"))
			o->sleep_us = (unsigned)strtoul(v, NULL, 10);
		else if (!strcmp(a, "--ui"))
			o->ui = strcmp(v, "tui") ? GD_UI_NONE : GD_UI_TUI;
		else if (!strcmp(a, "--refresh"))
			o->refresh_hz = atof(v);
		else if (!strcmp(a, "--placement"))
			o->placement = atoi(v);
		else if (!strcmp(a, "--label"))
			o->label = v;
		else {
			usage();
			return -1;
		}
	}
	return 0;
}

/* What every rank reports: peak RSS (KiB) and CPU seconds, its own and its
 * reaped children's (the executor), and its context switches during the run
 * (voluntary + involuntary: a sched_yield() that gives the core away counts). */
typedef struct usage_row {
	double maxrss_kb, cpu_s, child_maxrss_kb, child_cpu_s, csw;
} usage_row;

static double cpu_of(const struct rusage *ru)
{
	return (double)ru->ru_utime.tv_sec + (double)ru->ru_utime.tv_usec * 1e-6 +
	       (double)ru->ru_stime.tv_sec + (double)ru->ru_stime.tv_usec * 1e-6;
}

int main(int argc, char **argv)
{
	opts o;
	int rank, size, rc;
	struct rusage ru0, ru1, rc1;

	if (gd_init(&argc, &argv))
		return 1;
	MPI_Comm_rank(MPI_COMM_WORLD, &rank);
	MPI_Comm_size(MPI_COMM_WORLD, &size);
	if (parse(argc, argv, &o)) {
		gd_finalize();
		return 2;
	}
	sleep_us = o.sleep_us;

	gd_worker_class cls = {.name = "bench", .process = process};
	gd_config cfg;
	gd_config_init(&cfg, sizeof(cfg));
	gd_callbacks cb = {.size = sizeof(cb)};
	gd_stats stats = GD_STATS_INIT;
	gen g = {.left = o.tasks, .payload = o.payload};

	cfg.window = o.window;
	cfg.isolation = o.isolation;
	cfg.placement = o.placement;
	cfg.total_hint = o.tasks;
	/* GPUDISPATCH_SHM=0: large tasks through MPI, not shared memory */
	if (getenv("GPUDISPATCH_SHM") && !strcmp(getenv("GPUDISPATCH_SHM"), "0"))
		cfg.shm = 0;
	gd_ui_options ui;
	gd_ui_options_init(&ui, sizeof(ui));
	ui.mode = o.ui;
	ui.refresh_hz = o.refresh_hz;

	getrusage(RUSAGE_SELF, &ru0);
	MPI_Barrier(MPI_COMM_WORLD);
	double t0 = MPI_Wtime();
	rc = gd_ui_run(MPI_COMM_WORLD, &cls, generate, &g, &cb, &cfg, &ui, &stats);
	double dt = MPI_Wtime() - t0;
	getrusage(RUSAGE_SELF, &ru1);
	getrusage(RUSAGE_CHILDREN, &rc1);

	usage_row mine = {(double)ru1.ru_maxrss, cpu_of(&ru1) - cpu_of(&ru0), (double)rc1.ru_maxrss,
	                  cpu_of(&rc1),
	                  (double)(ru1.ru_nvcsw + ru1.ru_nivcsw - ru0.ru_nvcsw - ru0.ru_nivcsw)};
	usage_row *all = rank == 0 ? calloc((size_t)size, sizeof(*all)) : NULL;

	MPI_Gather(&mine, 5, MPI_DOUBLE, all, 5, MPI_DOUBLE, 0, MPI_COMM_WORLD);
	if (rank == 0) {
		double busy = 0;

		for (int i = 0; i < stats.n_workers; i++)
			busy += stats.workers[i].busy_s;
		printf("{\"bench\":\"dispatch\",\"label\":\"%s\",\"rc\":%d,\"error\":\"%s\","
		       "\"ranks\":%d,\"workers\":%d,\"tasks\":%llu,\"completed\":%llu,"
		       "\"failed\":%llu,\"payload\":%zu,\"window\":%u,\"isolation\":\"%s\","
		       "\"sleep_us\":%u,\"ui\":\"%s\",\"placement\":%d,\"elapsed_s\":%.6f,"
		       "\"tasks_per_s\":%.1f,\"busy_s\":%.6f,\"rank0_maxrss_kb\":%.0f,"
		       "\"rank0_cpu_s\":%.6f,\"rank0_csw\":%.0f,\"worker_maxrss_kb\":[",
		       o.label, rc, rc ? gd_err_name(rc) : "", size, stats.n_workers,
		       (unsigned long long)o.tasks, (unsigned long long)stats.completed,
		       (unsigned long long)(stats.failed + stats.timed_out), o.payload, o.window,
		       o.isolation == GD_ISOLATE_NONE ? "none" : "process", o.sleep_us,
		       o.ui == GD_UI_TUI ? "tui" : "none", o.placement, dt,
		       dt > 0 ? (double)stats.completed / dt : 0.0, busy, all[0].maxrss_kb,
		       all[0].cpu_s, all[0].csw);
		for (int i = 1; i < size; i++)
			printf("%s%.0f", i > 1 ? "," : "", all[i].maxrss_kb);
		printf("],\"worker_cpu_s\":[");
		for (int i = 1; i < size; i++)
			printf("%s%.4f", i > 1 ? "," : "", all[i].cpu_s);
		printf("],\"worker_csw\":[");
		for (int i = 1; i < size; i++)
			printf("%s%.0f", i > 1 ? "," : "", all[i].csw);
		printf("],\"worker_completed\":[");
		for (int i = 0; i < stats.n_workers; i++)
			printf("%s%llu", i ? "," : "",
			       (unsigned long long)stats.workers[i].completed);
		printf("],\"executor_maxrss_kb\":[");
		for (int i = 1; i < size; i++)
			printf("%s%.0f", i > 1 ? "," : "",
			       o.isolation == GD_ISOLATE_NONE ? 0.0 : all[i].child_maxrss_kb);
		printf("],\"executor_cpu_s\":[");
		for (int i = 1; i < size; i++)
			printf("%s%.4f", i > 1 ? "," : "",
			       o.isolation == GD_ISOLATE_NONE ? 0.0 : all[i].child_cpu_s);
		printf("]}\n");
		fflush(stdout);
	}
	free(all);
	gd_stats_free(&stats);
	gd_finalize();
	return rc ? 1 : 0;
}
