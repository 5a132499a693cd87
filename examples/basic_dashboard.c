/*
 * The basic run with the dashboard: every worker "processes" tasks by
 * sleeping a while (about task_ms, varied per task), and one task in 25
 * fails, so the dashboard has something to show.  On a terminal, rank 0
 * draws the live dashboard (q: stop, ?: help); in a batch log it prints a
 * progress line every few seconds.  Either way a summary ends the run.
 *
 *   mpirun -n 5 ./basic_dashboard [TASKS [TASK_MS]]
 */
#include <gpudispatch_ui.h>
#include <locale.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static void sleep_ms(double ms)
{
	struct timespec ts = {(time_t)(ms / 1000), (long)((ms - (time_t)(ms / 1000) * 1000) * 1e6)};
	nanosleep(&ts, NULL);
}

/* setup: pretend to load a model, so that "initializing" shows for a while. */
static int setup(gd_worker *w, const gd_args *args)
{
	const char *ms = gd_args_get(args, "task_ms");
	gd_worker_set_data(w, (void *)(long)(ms ? atoi(ms) : 200));
	sleep_ms(300 + 100 * (gd_worker_id(w) % 4));
	return 0;
}

static int process(gd_worker *w, const gd_task *t, gd_result *r)
{
	long ms = (long)gd_worker_data(w);
	/* 50% .. 150% of task_ms, the same for a task wherever it runs. */
	sleep_ms((double)ms * (0.5 + (double)((t->id * 2654435761u) % 1000) / 1000.0));
	if (t->id % 25 == 24)
		return gd_result_error(r, "task %llu: simulated failure",
		                       (unsigned long long)t->id);
	uint64_t answer = t->id * t->id;
	return gd_result_set(r, &answer, sizeof(answer));
}

struct gen {
	uint64_t next, n;
};

static int generate(void *state, gd_buf *task)
{
	struct gen *g = state;
	if (g->next >= g->n)
		return 0;
	uint64_t id = g->next++;
	return gd_buf_set(task, &id, sizeof(id)) ? -1 : 1;
}

int main(int argc, char **argv)
{
	setlocale(LC_ALL, ""); /* ✓ ✗ ⏱ on a UTF-8 terminal */
	if (gd_init(&argc, &argv))
		return 1;
	struct gen g = {0, argc > 1 ? strtoull(argv[1], NULL, 10) : 200};
	const char *task_ms = argc > 2 ? argv[2] : "200";

	gd_worker_class cls = {.name = "sleeper", .setup = setup, .process = process};
	gd_kv args[] = {{"task_ms", task_ms}};
	gd_config cfg;
	gd_config_init(&cfg, sizeof(cfg));
	cfg.window = 2;
	cfg.setup_args = args;
	cfg.n_setup_args = 1;
	cfg.total_hint = g.n;  /* lets the dashboard show done/total and an ETA */
	cfg.task_timeout = 30; /* shown against each task's run time */
	cfg.placement = 0;     /* this demo needs no GPU */
	gd_callbacks cb = {.size = sizeof(cb)};

	int rank;
	MPI_Comm_rank(MPI_COMM_WORLD, &rank);
	/* the dashboard on a terminal, progress lines in a log (ui NULL: the
	 * defaults, GD_UI_AUTO) */
	int rc = gd_ui_run(MPI_COMM_WORLD, &cls, generate, &g, &cb, &cfg, NULL, NULL);
	if (rank == 0)
		printf("rc=%d (%s)\n", rc, gd_strerror(rc));
	gd_finalize();
	return rc ? 1 : 0;
}
