/*
 * The dashboard layer: gd_ui_run() is one more observer of gd_run() (see
 * gpudispatch_ui.h).  It uses nothing of the core but its public API.
 *
 * Threads: the caller's thread runs gd_run() with wrapped callbacks; each
 * wrapped callback updates the model, then calls the user's callback, and
 * on_tick folds the live statistics into it when the UI thread asked.  The
 * UI thread starts on on_start (rank 0, once the run's arguments were
 * good).  One UI thread draws snapshots of
 * the model (ncurses dashboard) or prints plain progress lines (text mode).
 * The UI thread never calls MPI; it is the only thread that touches ncurses
 * and the terminal.
 *
 * Terminal (see shared/NOTES.md): under mpirun rank 0's stdout is a pty even
 * when the output goes to a file, with a wrong size and no SIGWINCH.  So the
 * dashboard is drawn on /dev/tty (it exists only when the job was started
 * from a terminal), its size is polled at each refresh, and keys are read
 * from standard input (where mpirun forwards them once /dev/tty is in raw
 * mode) and parsed here.  Without /dev/tty or a usable TERM: text mode.
 */
#define _GNU_SOURCE /* pipe2, gettid (ncurses' flags set _XOPEN_SOURCE) */
#include <errno.h>
#include <fcntl.h>
#include <langinfo.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include <curses.h>

#include "gpudispatch_ui.h"
#include "ui_keys.h"
#include "ui_model.h"
#include "ui_render.h"
#include "ui_text.h"

/*
 * Set by our SIGINT/SIGTERM/SIGHUP handler while the dashboard owns the
 * terminal.  A signal handler can only communicate through a static
 * volatile sig_atomic_t, hence this one process-wide variable; it is only
 * read (poll_stop, UI thread) and reset when a dashboard starts.
 */
static volatile sig_atomic_t gd__ui_signalled;

static void on_signal(int sig)
{
	(void)sig;
	gd__ui_signalled = 1;
}

static const int caught_signals[] = {SIGINT, SIGTERM, SIGHUP};
#define N_CAUGHT (sizeof(caught_signals) / sizeof(caught_signals[0]))

/* Log lines held while the dashboard owns the terminal. */
#define HELD_MAX 64

struct ui_run {
	gd__ui_model model;
	gd_callbacks user; /* the user's callbacks (all of ours: zero beyond its size) */
	int ui_mode;       /* ui->mode */
	int monochrome;
	double refresh_hz, text_interval_s;
	double tick_s;                               /* the core's tick as asked for */
	uint64_t reasons_shown[GD__REASONS_MAX + 1]; /* text mode: printed so far */
	int text;                                    /* text mode ran */
	FILE *out;                                   /* progress lines and the summary */
	int started;                                 /* on_start came: the UI thread runs */
	pthread_t thread;                            /* valid when started */
	int tui; /* atomic: the dashboard is drawn (log lines are held) */
	char *held[HELD_MAX];
	int n_held, n_dropped;
	int wake[2];                    /* self-pipe: the run's thread wakes the UI thread */
	int quit;                       /* set (atomically) when the run has ended */
	int caught[N_CAUGHT];           /* our handler is installed for that signal */
	struct sigaction old[N_CAUGHT]; /* what it replaced */
};

/* ------------------------------------------------------ wrapped callbacks */

/* One wrapper per slot: update the model, then call the user's own. */
#define GD__WRAP(slot)                                                                             \
	static void wrap_##slot(void *user, const gd_event *ev)                                    \
	{                                                                                          \
		struct ui_run *r = user;                                                           \
		gd__ui_model_event(&r->model, ev);                                                 \
		if (r->user.slot)                                                                  \
			r->user.slot(r->user.user, ev);                                            \
	}
GD__WRAP(on_success)
GD__WRAP(on_error)
GD__WRAP(on_timeout)
GD__WRAP(on_setup_fail)
GD__WRAP(on_cleanup_fail)
GD__WRAP(on_dispatch)
GD__WRAP(on_worker)
GD__WRAP(on_retry)
GD__WRAP(on_not_done)
#undef GD__WRAP

static void wrap_on_exit(void *user, const gd_stats *stats, int rc)
{
	struct ui_run *r = user;
	gd__ui_model_exit(&r->model, stats, rc);
	if (r->user.on_exit)
		r->user.on_exit(r->user.user, stats, rc);
}

static void *ui_thread(void *arg);

/* The run has started: so does the UI thread. */
static void wrap_on_start(void *user, const gd_stats *stats)
{
	struct ui_run *r = user;
	gd__ui_model_start(&r->model, stats);
	r->started = !pthread_create(&r->thread, NULL, ui_thread, r);
	if (r->user.on_start)
		r->user.on_start(r->user.user, stats);
}

/* The core's sample: the model takes it when the UI thread wants news. */
static void wrap_on_tick(void *user, const gd_stats *stats)
{
	struct ui_run *r = user;
	gd__ui_model_tick(&r->model, stats);
	if (r->user.on_tick)
		r->user.on_tick(r->user.user, stats);
}

/* The core's log lines: to the application's on_log when it has one;
 * else to stderr, except while the dashboard is drawn, which they would
 * scribble over: then errors are held for after it (warnings and notes
 * show in the workers' rows). */
static void wrap_on_log(void *user, gd_log_level level, const char *msg)
{
	struct ui_run *r = user;
	if (r->user.on_log) {
		r->user.on_log(r->user.user, level, msg);
		return;
	}
	if (!__atomic_load_n(&r->tui, __ATOMIC_ACQUIRE)) {
		fprintf(stderr, "gpudispatch[0]: %s\n", msg);
		return;
	}
	if (level != GD_LOG_ERROR)
		return;
	if (r->n_held == HELD_MAX || !(r->held[r->n_held] = strdup(msg)))
		r->n_dropped++;
	else
		r->n_held++;
}

/* The strongest of: the UI's request (q, Ctrl-C, a signal) and the user's. */
static int wrap_poll_stop(void *user)
{
	struct ui_run *r = user;
	int level = gd__ui_model_stop_level(&r->model);
	/* only while our handlers are in place: the flag is theirs */
	if (__atomic_load_n(&r->tui, __ATOMIC_ACQUIRE) && gd__ui_signalled)
		level = GD__UI_STOP_NOW;
	if (r->user.poll_stop) {
		int u = r->user.poll_stop(r->user.user);
		if (u > level)
			level = u;
	}
	return level;
}

/* ---------------------------------------------------------------- signals */

/*
 * Catch SIGINT/SIGTERM/SIGHUP while the terminal is in raw mode, so that the
 * run stops and the terminal is restored instead of the process dying with
 * it raw.  Only signals still at their default action: an application that
 * handles one itself keeps its handler (and stops the run through
 * cfg.stop_flag or poll_stop).  Installed before newterm(), so ncurses sees
 * a handler and installs none of its own.
 */
static void catch_signals(struct ui_run *r)
{
	gd__ui_signalled = 0;
	for (size_t i = 0; i < N_CAUGHT; i++) {
		struct sigaction sa;
		r->caught[i] = 0;
		if (sigaction(caught_signals[i], NULL, &r->old[i]) ||
		    r->old[i].sa_handler != SIG_DFL || (r->old[i].sa_flags & SA_SIGINFO))
			continue;
		memset(&sa, 0, sizeof(sa));
		sa.sa_handler = on_signal;
		sigemptyset(&sa.sa_mask);
		if (!sigaction(caught_signals[i], &sa, NULL))
			r->caught[i] = 1;
	}
}

static void release_signals(struct ui_run *r)
{
	for (size_t i = 0; i < N_CAUGHT; i++)
		if (r->caught[i])
			sigaction(caught_signals[i], &r->old[i], NULL);
}

/* --------------------------------------------------------------- UI thread */

static int run_ended(struct ui_run *r)
{
	return __atomic_load_n(&r->quit, __ATOMIC_ACQUIRE);
}

/* Empty the self-pipe. */
static void drain_wake(int fd)
{
	char buf[64];
	while (read(fd, buf, sizeof(buf)) > 0)
		;
}

/* Wait (at most max_s, less when the run ends) for the run's thread to
 * take fresh statistics after a request: a line shows the run as it is,
 * not as it was one interval ago. */
static void wait_fresh(struct ui_run *r, double max_s)
{
	uint64_t before = gd__ui_model_folds(&r->model);
	double until = gd_now() + max_s;

	gd__ui_model_ask(&r->model);
	while (!run_ended(r) && gd__ui_model_folds(&r->model) == before && gd_now() < until) {
		struct pollfd p = {.fd = r->wake[0], .events = POLLIN};

		if (poll(&p, 1, 5) > 0)
			drain_wake(r->wake[0]);
	}
}

/* Plain progress lines on stdout every text_interval_s until the run ends,
 * and every second the failure reasons that grew on stderr
 * (gd__ui_text_reasons: bounded); the rest after the run. */
static void text_loop(struct ui_run *r)
{
	gd__ui_snap snap = {0};
	double interval = r->text_interval_s < 0.1 ? 0.1 : r->text_interval_s;
	double step = interval < 1.0 ? interval : 1.0;
	double next_line = gd_now() + interval, next = gd_now() + step;
	/* A first throughput sample, so that the first line has a rate. */
	gd__ui_model_snapshot(&r->model, &snap, gd_now());
	while (!run_ended(r)) {
		double left = next - gd_now();
		struct pollfd p = {.fd = r->wake[0], .events = POLLIN};
		if (left > 0 && poll(&p, 1, (int)(left * 1000) + 1) > 0)
			drain_wake(r->wake[0]);
		if (run_ended(r))
			break;
		if (gd_now() < next)
			continue;
		next += step;
		int line = gd_now() >= next_line;
		if (line)
			next_line += interval;
		wait_fresh(r, 4 * r->tick_s + 0.2);
		if (run_ended(r))
			break;
		if (gd__ui_model_snapshot(&r->model, &snap, gd_now()))
			continue;
		if (line)
			gd__ui_text_line(r->out, &snap);
		gd__ui_text_reasons(stderr, &snap.reasons, r->reasons_shown);
	}
	gd__ui_snap_free(&snap);
}

/* Is standard input where keys arrive (a terminal, or mpirun's pipe)? */
static int stdin_has_keys(void)
{
	struct stat st;
	if (isatty(0))
		return 1;
	return !fstat(0, &st) && (S_ISFIFO(st.st_mode) || S_ISSOCK(st.st_mode));
}

struct tui {
	int fd;               /* /dev/tty */
	struct termios saved; /* its modes before we touched it */
	FILE *out, *in;       /* ncurses' streams on it */
	SCREEN *screen;
	gd__ui_view view;
	gd__ui_keyparser keys;
};

/* Open the dashboard on /dev/tty.  \return 0, or -1 (nothing left open). */
static int tui_open(struct tui *t, int monochrome)
{
	memset(t, 0, sizeof(*t));
	const char *term = getenv("TERM");
	if (!term || !*term || !strcmp(term, "dumb") || !strcmp(term, "unknown"))
		return -1;
	t->fd = open("/dev/tty", O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (t->fd < 0)
		return -1;
	if (tcgetattr(t->fd, &t->saved))
		goto close_tty;
	int ofd = fcntl(t->fd, F_DUPFD_CLOEXEC, 3), ifd = fcntl(t->fd, F_DUPFD_CLOEXEC, 3);
	t->out = ofd >= 0 ? fdopen(ofd, "w") : NULL;
	t->in = ifd >= 0 ? fdopen(ifd, "r") : NULL;
	if (!t->out || !t->in) {
		if (!t->out && ofd >= 0)
			close(ofd);
		if (!t->in && ifd >= 0)
			close(ifd);
		goto close_streams;
	}
	t->screen = newterm(term, t->out, t->in);
	if (!t->screen)
		goto close_streams;
	set_term(t->screen);
	raw(); /* no ISIG: Ctrl-C arrives as byte 3; no ICANON: keys at once */
	noecho();
	nonl();
	typeahead(-1); /* never poll /dev/tty for input: mpirun owns its reads */
	curs_set(0);
	leaveok(stdscr, TRUE);
	t->view.color = gd__ui_colors_init(monochrome);
	/*
	 * The application's locale decides: ncursesw draws UTF-8 only when the
	 * process's locale is UTF-8 (setlocale(LC_ALL, "") in main), and the
	 * library does not change process-wide state behind its back.
	 */
	t->view.utf8 = !strcmp(nl_langinfo(CODESET), "UTF-8");
	return 0;

close_streams:
	if (t->out)
		fclose(t->out);
	if (t->in)
		fclose(t->in);
close_tty:
	close(t->fd);
	return -1;
}

/* Restore the terminal exactly as it was and free ncurses' screen. */
static void tui_close(struct tui *t)
{
	endwin();
	delscreen(t->screen);
	fclose(t->out);
	fclose(t->in);
	/* ncurses restored its idea of the modes; make sure they are ours. */
	tcsetattr(t->fd, TCSADRAIN, &t->saved);
	close(t->fd);
}

/* Follow the terminal's real size (no SIGWINCH reaches a rank). */
static void tui_follow_size(struct tui *t)
{
	struct winsize ws;
	if (ioctl(t->fd, TIOCGWINSZ, &ws) || !ws.ws_row || !ws.ws_col)
		return;
	if (ws.ws_row != LINES || ws.ws_col != COLS) {
		resizeterm(ws.ws_row, ws.ws_col);
		clearok(curscr, TRUE);
	}
}

/* Act on one key. */
static void tui_key(struct ui_run *r, struct tui *t, int key, int n_workers)
{
	switch (key) {
	case GD__KEY_NONE:
		return;
	case GD__KEY_QUIT:
		/* First q: drain; second: stop now. */
		gd__ui_model_request_stop(&r->model, gd__ui_model_stop_level(&r->model)
		                                             ? GD__UI_STOP_NOW
		                                             : GD__UI_DRAIN);
		return;
	case GD__KEY_INTR:
		gd__ui_model_request_stop(&r->model, GD__UI_STOP_NOW);
		return;
	case GD__KEY_HELP:
		t->view.help = !t->view.help;
		return;
	case GD__KEY_REDRAW:
		clearok(curscr, TRUE);
		return;
	case GD__KEY_OTHER:
		t->view.help = 0;
		return;
	default:
		t->view.help = 0;
		gd__ui_view_scroll(&t->view, key, n_workers);
	}
}

static void tui_loop(struct ui_run *r, struct tui *t)
{
	gd__ui_snap snap = {0};
	int keys_fd = stdin_has_keys() ? 0 : -1;
	int ms = (int)(1000 / r->refresh_hz);
	if (ms < 10)
		ms = 10;
	while (!run_ended(r)) {
		if (gd__ui_signalled)
			gd__ui_model_request_stop(&r->model, GD__UI_STOP_NOW);
		tui_follow_size(t);
		if (gd__ui_model_snapshot(&r->model, &snap, gd_now()) == 0) {
			gd__ui_render(stdscr, &snap, &t->view);
			wnoutrefresh(stdscr);
			doupdate();
		}
		struct pollfd p[2] = {{.fd = r->wake[0], .events = POLLIN},
		                      {.fd = keys_fd, .events = POLLIN}};
		int n = poll(p, keys_fd >= 0 ? 2 : 1, ms);
		if (n <= 0)
			continue;
		if (p[0].revents)
			drain_wake(r->wake[0]);
		if (keys_fd >= 0 && p[1].revents) {
			unsigned char buf[64];
			ssize_t got = read(keys_fd, buf, sizeof(buf));
			if (got == 0 || (got < 0 && errno != EINTR && errno != EAGAIN))
				keys_fd = -1; /* EOF or unreadable: no keys from now on */
			for (ssize_t i = 0; i < got; i++)
				tui_key(r, t, gd__ui_key_feed(&t->keys, buf[i]), snap.st.n_workers);
		}
	}
	gd__ui_snap_free(&snap);
}

/*
 * The UI thread runs at nice 19.  It needs a fraction of a percent of a
 * core (a refresh costs a few hundred microseconds), but at its normal
 * weight it cost the run about 2.5 % on a node whose ranks share the cores,
 * and so did a bare thread that only slept through the run: the kernel
 * counts a new thread's load as a busy one's and lets a sleeping thread's
 * load decay over some 100 ms, and with that load on a core its ranks were
 * moved between cores (about once a second; never without it).  At nice 19
 * the thread's load weighs 15/1024 of a normal one's, and it still gets
 * about 1.5 % of a core busy with one other thread, more than it needs.
 * On Linux the nice value is per thread, and a raise needs no privilege; a
 * refusal changes nothing but the cost.  Set by the thread itself, first
 * thing: the kernel rescales a thread's load when its weight changes while
 * it runs (SCHED_IDLE set through pthread attributes, before the thread
 * ran, left the cost as it was).  See docs/dashboard.md, "Cost".
 */
static void lower_priority(void)
{
	if (setpriority(PRIO_PROCESS, (id_t)gettid(), 19)) {
		/* Not fatal: the dashboard works the same, at its normal weight. */
	}
}

static void *ui_thread(void *arg)
{
	struct ui_run *r = arg;
	lower_priority();
	/*
	 * A rank is in the terminal's background process group: tcsetattr on
	 * /dev/tty would stop it with SIGTTOU unless the signal is blocked.
	 * Only this thread touches the terminal, so block it here.
	 */
	sigset_t ttou;
	sigemptyset(&ttou);
	sigaddset(&ttou, SIGTTOU);
	pthread_sigmask(SIG_BLOCK, &ttou, NULL);

	int tui = 0;
	struct tui t;
	if (r->ui_mode != GD_UI_TEXT) {
		catch_signals(r);
		if (tui_open(&t, r->monochrome) == 0)
			tui = 1;
		else
			release_signals(r);
	}
	if (tui) {
		__atomic_store_n(&r->tui, 1, __ATOMIC_RELEASE);
		tui_loop(r, &t);
		tui_close(&t);
		release_signals(r);
		__atomic_store_n(&r->tui, 0, __ATOMIC_RELEASE);
	} else {
		r->text = 1;
		text_loop(r);
	}
	return NULL;
}

/* --------------------------------------------------------------------- run */

int gd_ui_options_init(gd_ui_options *o, size_t size)
{
	if (!o || size < offsetof(gd_ui_options, out) + sizeof(FILE *))
		return GD_EINVAL;
	memset(o, 0, size);
	o->size = size;
	o->mode = GD_UI_AUTO;
	o->refresh_hz = 2.0;
	o->text_interval_s = 5.0;
	return 0;
}

/* The first release's sizes of the structs the core takes, as the core
 * checks them (src/config.c): below them the core refuses the call. */
#define CONFIG_V1 ((offsetof(gd_config, shm) + sizeof(int) + 7) & ~(size_t)7)
#define CB_V1     (offsetof(gd_callbacks, on_log) + sizeof(void (*)(void)))

/* The application's struct, as much of it as it has (the rest zero). */
static void take(void *dst, size_t dst_size, const void *src, size_t src_size)
{
	memset(dst, 0, dst_size);
	memcpy(dst, src, src_size < dst_size ? src_size : dst_size);
}

int gd_ui_run(MPI_Comm comm, const gd_worker_class *cls, gd_generator_fn gen, void *gen_state,
              const gd_callbacks *cb, const gd_config *cfg, const gd_ui_options *ui,
              gd_stats *stats)
{
	gd_ui_options o;
	gd_config c;
	struct ui_run *r;
	int rc;

	gd_ui_options_init(&o, sizeof(o));
	if (ui && ui->size >= offsetof(gd_ui_options, out) + sizeof(FILE *))
		take(&o, sizeof(o), ui, ui->size);
	/* Let the core report bad arguments, with no UI and no callback.  The
	 * sizes are the core's to judge: with one it would refuse, pass the
	 * application's structs through untouched. */
	if (o.mode == GD_UI_NONE || !cb || !cfg || cb->size < CB_V1 || cfg->size < CONFIG_V1 ||
	    gd_config_init(&c, sizeof(c)))
		return gd_run(comm, cls, gen, gen_state, cb, cfg, stats);
	/* over the library's defaults: what an older application lacks keeps them */
	memcpy(&c, cfg, cfg->size < sizeof(c) ? cfg->size : sizeof(c));
	c.size = sizeof(c);

	r = calloc(1, sizeof(*r));
	if (!r)
		return gd_run(comm, cls, gen, gen_state, cb, cfg, stats);
	if (gd__ui_model_init(&r->model, &c, gd_now()))
		goto free_run;
	take(&r->user, sizeof(r->user), cb, cb->size);
	r->ui_mode = o.mode;
	r->monochrome = o.monochrome;
	r->refresh_hz = o.refresh_hz > 0 ? o.refresh_hz : 2.0;
	r->text_interval_s = o.text_interval_s > 0 ? o.text_interval_s : 5.0;
	r->out = o.out ? o.out : stdout;
	if (pipe2(r->wake, O_CLOEXEC | O_NONBLOCK))
		goto destroy_model;
	/* Samples often enough for the refresh (two per period), never so
	 * often that they cost the dispatcher (a copy of every row each). */
	double period = r->ui_mode == GD_UI_TEXT ? r->text_interval_s : 1.0 / r->refresh_hz;
	double tick = period / 2 < 0.01 ? 0.01 : period / 2;
	/* text lines ask for fresh statistics just before they print (a tick
	 * that finds no request costs an atomic load) */
	if (tick > 0.25)
		tick = 0.25;
	if (!(c.tick_s > 0) || c.tick_s > tick)
		c.tick_s = tick;
	r->tick_s = c.tick_s;

	/* Task events are wrapped only where the application has a callback:
	 * the model takes the statistics at each tick, and an empty task in
	 * fast mode costs rank 0 a few hundred ns, so two calls per task
	 * (dispatch, result) showed in the dashboard's benchmark. */
	gd_callbacks w = {
	        .size = sizeof(w),
	        .on_success = r->user.on_success ? wrap_on_success : NULL,
	        /* failures always: their reasons are counted (a failure
	         * costs a call; a success none) */
	        .on_error = wrap_on_error,
	        .on_timeout = wrap_on_timeout,
	        .on_setup_fail = wrap_on_setup_fail,
	        .on_cleanup_fail = wrap_on_cleanup_fail,
	        .on_dispatch = r->user.on_dispatch ? wrap_on_dispatch : NULL,
	        .on_worker = wrap_on_worker,
	        .on_retry = r->user.on_retry ? wrap_on_retry : NULL,
	        .on_not_done = r->user.on_not_done ? wrap_on_not_done : NULL,
	        .on_exit = wrap_on_exit,
	        .poll_stop = wrap_poll_stop,
	        .user = r,
	        .on_start = wrap_on_start,
	        .on_tick = wrap_on_tick,
	        .on_log = wrap_on_log,
	};
	/* a signal caught by an earlier dashboard of this process is not this
	 * run's (the UI thread's catch_signals() resets it too, later) */
	gd__ui_signalled = 0;
	rc = gd_run(comm, cls, gen, gen_state, &w, &c, stats);

	/* Stop the UI thread: it restores the terminal before it returns. */
	__atomic_store_n(&r->quit, 1, __ATOMIC_RELEASE);
	if (write(r->wake[1], "x", 1) < 0) {
		/* The pipe is full or broken; the thread still wakes at its next tick. */
	}
	if (r->started)
		pthread_join(r->thread, NULL);
	for (int i = 0; i < r->n_held; i++) {
		fprintf(stderr, "gpudispatch[0]: %s\n", r->held[i]);
		free(r->held[i]);
	}
	if (r->n_dropped)
		fprintf(stderr, "gpudispatch[0]: (%d more message(s) not kept)\n", r->n_dropped);
	/* the failures the text lines have not shown yet (a short run) */
	if (r->text && r->model.cur.ended)
		gd__ui_text_reasons(stderr, &r->model.cur.reasons, r->reasons_shown);
	/* Only a run that started has statistics (and called on_exit). */
	if (r->model.cur.ended)
		gd__ui_summary(r->out, &r->model.cur.st, r->model.cur.rc, &r->model.cur.reasons);

	close(r->wake[0]);
	close(r->wake[1]);
	gd__ui_model_destroy(&r->model);
	free(r);
	return rc;

destroy_model:
	gd__ui_model_destroy(&r->model);
free_run:
	free(r);
	return gd_run(comm, cls, gen, gen_state, cb, cfg, stats);
}
