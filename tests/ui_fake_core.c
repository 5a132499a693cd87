/*
 * A stand-in for the core, to test the dashboard's terminal handling without
 * MPI: gd_run() here simulates workers that take tasks of task_ms each
 * (every 10th fails), sends the events the real core sends (on_start,
 * events, on_tick, on_exit), and honours poll_stop (1: drain, 2: stop now).
 * main() runs it through gd_ui_run(), which sees the core only through
 * gd_run(), so linking this one in its place is the whole seam.
 *
 * usage: ui_fake_core WORKERS TASKS TASK_MS [tui|text|auto] [refresh_hz]
 * Prints "rc=N" after gd_ui_run returns.  No MPI call is made: the
 * communicator is a dummy.  With UI_FAKE_NICE=1 in the environment it also
 * prints the highest nice value it saw on another thread of the process
 * during the run (the UI thread's) and whether the calling thread's own
 * nice value stayed as it was.  With UI_FAKE_RESIGNAL=1 the first run sends
 * itself SIGINT (the dashboard's handler stops it), and a second run in text
 * mode follows in the same process: "rc=..." is printed for each.
 */
#define _GNU_SOURCE /* gettid */
#include <dirent.h>
#include <errno.h>
#include <locale.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "gpudispatch_ui.h"

static void emit(const gd_callbacks *cb, gd_event_fn fn, gd_event *ev)
{
	if (fn)
		fn(cb->user, ev);
}

static void set_state(const gd_callbacks *cb, gd_stats *st, int w, gd_worker_state s)
{
	st->workers[w].state = s;
	gd_event ev = {.type = GD_EV_WORKER, .worker_id = w, .message = "", .stats = st};
	emit(cb, cb->on_worker, &ev);
}

/* The highest nice value among the process's other threads (-100: none). */
static int others_nice(void)
{
	int best = -100;
	pid_t self = gettid();
	DIR *d = opendir("/proc/self/task");
	if (!d)
		return best;
	for (struct dirent *e; (e = readdir(d));) {
		pid_t tid = (pid_t)atoi(e->d_name);
		if (tid <= 0 || tid == self)
			continue;
		errno = 0;
		int n = getpriority(PRIO_PROCESS, (id_t)tid);
		if (!errno && n > best)
			best = n;
	}
	closedir(d);
	return best;
}

static void nap(double s)
{
	struct timespec ts = {(time_t)s, (long)((s - (time_t)s) * 1e9)};
	nanosleep(&ts, NULL);
}

int gd_run(MPI_Comm comm, const gd_worker_class *cls, gd_generator_fn gen, void *gen_state,
           const gd_callbacks *cb, const gd_config *cfg, gd_stats *stats)
{
	(void)comm, (void)cls, (void)gen, (void)gen_state, (void)stats;
	int nw = (int)cfg->window; /* abused: the number of workers */
	uint64_t ntasks = cfg->total_hint;
	double task_s = cfg->task_timeout / 1000.0; /* abused: task ms */
	gd_stats st = GD_STATS_INIT;
	st.start_time = gd_now();
	st.total_hint = ntasks;
	st.n_workers = nw;
	st.workers = calloc((size_t)nw, sizeof(*st.workers));
	double *end = calloc((size_t)nw, sizeof(double));
	double next_tick = 0;
	if (cb->on_start)
		cb->on_start(cb->user, &st);
	for (int w = 0; w < nw; w++) {
		st.workers[w].worker_id = w;
		st.workers[w].rank = w + 1;
		snprintf(st.workers[w].host, sizeof(st.workers[w].host), "host%d", w / 4);
		st.workers[w].gpu.index = w % 4;
		set_state(cb, &st, w, GD_WS_INIT);
	}
	for (int w = 0; w < nw; w++)
		set_state(cb, &st, w, GD_WS_IDLE);
	uint64_t next = 0;
	int rc = 0, busy;
	int watch_nice = getenv("UI_FAKE_NICE") != NULL;
	int own_nice = getpriority(PRIO_PROCESS, (id_t)gettid()), ui_nice = -100;
	static int runs;
	int resignal = getenv("UI_FAKE_RESIGNAL") && runs++ == 0, loops = 0;
	do {
		if (resignal && ++loops == 100)
			raise(SIGINT); /* caught by the dashboard: stop now */
		int stop = cb->poll_stop ? cb->poll_stop(cb->user) : 0;
		if (watch_nice) {
			int n = others_nice();
			if (n > ui_nice)
				ui_nice = n;
		}
		if (stop >= 2) {
			for (int w = 0; w < nw; w++)
				if (st.workers[w].in_flight) {
					st.workers[w].in_flight = 0;
					st.not_done++;
					gd_event ev = {.type = GD_EV_NOT_DONE,
					               .worker_id = w,
					               .task_id = st.workers[w].current_task,
					               .message = "",
					               .stats = &st};
					emit(cb, cb->on_not_done, &ev);
				}
			rc = GD_EINTR;
			break;
		}
		if (stop == 1 && next < ntasks)
			rc = GD_EINTR;
		double now = gd_now();
		busy = 0;
		for (int w = 0; w < nw; w++) {
			gd_worker_stats *ws = &st.workers[w];
			if (ws->in_flight && now >= end[w]) {
				ws->in_flight = 0;
				gd_event ev = {.worker_id = w,
				               .task_id = ws->current_task,
				               .attempt = 1,
				               .message = "",
				               .stats = &st,
				               .elapsed_s = task_s};
				if (ws->current_task % 10 == 9) {
					ws->failed++, st.failed++;
					ev.type = GD_EV_ERROR;
					ev.message = "simulated failure";
					emit(cb, cb->on_error, &ev);
				} else {
					ws->completed++, st.completed++;
					ev.type = GD_EV_SUCCESS;
					emit(cb, cb->on_success, &ev);
				}
				ws->busy_s += task_s;
				set_state(cb, &st, w, GD_WS_IDLE);
			}
			if (!ws->in_flight && next < ntasks && !stop) {
				ws->in_flight = 1;
				ws->current_task = next++;
				ws->current_since = now;
				st.total++;
				end[w] = now + task_s;
				gd_event ev = {.type = GD_EV_DISPATCH,
				               .worker_id = w,
				               .task_id = ws->current_task,
				               .attempt = 1,
				               .message = "",
				               .stats = &st};
				emit(cb, cb->on_dispatch, &ev);
				set_state(cb, &st, w, GD_WS_BUSY);
			}
			busy += ws->in_flight > 0;
		}
		if (cb->on_tick && cfg->tick_s > 0 && now >= next_tick) {
			next_tick = now + cfg->tick_s;
			cb->on_tick(cb->user, &st);
		}
		nap(0.002);
	} while (busy || (next < ntasks && !(cb->poll_stop && cb->poll_stop(cb->user))));
	for (int w = 0; w < nw; w++)
		set_state(cb, &st, w, GD_WS_DONE);
	st.elapsed_s = gd_now() - st.start_time;
	if (watch_nice)
		printf("ui_thread_nice=%d caller_nice_kept=%d\n", ui_nice,
		       getpriority(PRIO_PROCESS, (id_t)gettid()) == own_nice);
	if (cb->on_exit)
		cb->on_exit(cb->user, &st, rc);
	free(end);
	free(st.workers);
	return rc;
}

static void count_success(void *user, const gd_event *ev)
{
	(void)ev;
	++*(int *)user;
}

int main(int argc, char **argv)
{
	if (argc < 4) {
		fprintf(stderr, "usage: %s WORKERS TASKS TASK_MS [tui|text|auto] [hz]\n", argv[0]);
		return 2;
	}
	setlocale(LC_ALL, ""); /* UTF-8 symbols when the environment has them */
	gd_config cfg;
	gd_config_init(&cfg, sizeof(cfg));
	cfg.window = (unsigned)atoi(argv[1]);
	cfg.total_hint = strtoull(argv[2], NULL, 10);
	cfg.task_timeout = atof(argv[3]);
	gd_ui_options ui;
	gd_ui_options_init(&ui, sizeof(ui));
	if (argc > 4 && !strcmp(argv[4], "tui"))
		ui.mode = GD_UI_TUI;
	else if (argc > 4 && !strcmp(argv[4], "text"))
		ui.mode = GD_UI_TEXT;
	if (argc > 5)
		ui.refresh_hz = atof(argv[5]);
	ui.text_interval_s = 0.5;
	int successes = 0;
	gd_callbacks cb = {.size = sizeof(cb), .on_success = count_success, .user = &successes};
	gd_worker_class cls = {0};
	int rc = gd_ui_run((MPI_Comm)0, &cls, NULL, NULL, &cb, &cfg, &ui, NULL);
	printf("rc=%d user_successes=%d\n", rc, successes);
	if (getenv("UI_FAKE_RESIGNAL")) {
		/* the signal was the first run's: this one runs to its end */
		successes = 0;
		ui.mode = GD_UI_TEXT;
		rc = gd_ui_run((MPI_Comm)0, &cls, NULL, NULL, &cb, &cfg, &ui, NULL);
		printf("second rc=%d user_successes=%d\n", rc, successes);
	}
	return 0;
}
