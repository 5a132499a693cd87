/*
 * Unit tests of the dashboard layer without MPI: the model fed with hand-made
 * events, the key parser, the text output, and the renderer drawing fixed
 * statistics into an ncurses screen (newterm on /dev/null, resized with
 * resizeterm) whose cells are read back with winnstr / winch.
 */
#include <CUnit/Basic.h>
#include <locale.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ui_keys.h"
#include "ui_model.h"
#include "ui_render.h"
#include "ui_text.h"

/* ------------------------------------------------------------- fixtures */

/* Fixed statistics: n workers, states cycling through all five. */
static gd__ui_snap make_snap(int n)
{
	gd__ui_snap s;
	memset(&s, 0, sizeof(s));
	s.st.n_workers = n;
	s.st.workers = calloc((size_t)n, sizeof(gd_worker_stats));
	s.cap = n;
	s.have_stats = 1;
	s.st.total_hint = 100;
	s.st.total = 50;
	s.st.completed = 30;
	s.st.failed = 5;
	s.st.timed_out = 5;
	s.st.start_time = 1000;
	s.now = 1000 + 83; /* elapsed 01:23 */
	s.rate = 4.0;      /* ETA: 60 left / 4 = 15 s */
	s.timeout_s = 60;
	static const gd_worker_state cycle[] = {GD_WS_BUSY, GD_WS_IDLE, GD_WS_INIT, GD_WS_DONE,
	                                        GD_WS_ERROR};
	for (int i = 0; i < n; i++) {
		gd_worker_stats *w = &s.st.workers[i];
		w->worker_id = i;
		w->rank = i + 1;
		snprintf(w->host, sizeof(w->host), "node%02d", i / 8);
		w->gpu.index = i % 8;
		snprintf(w->gpu.model, sizeof(w->gpu.model), "A100");
		w->state = cycle[i % 5];
		w->completed = 10 + (uint64_t)i;
		w->failed = (uint64_t)i % 3;
		w->timed_out = (uint64_t)i % 2;
		if (w->state == GD_WS_BUSY) {
			w->in_flight = 1;
			w->current_task = 700 + (uint64_t)i;
			w->current_since = s.now - 12.5;
		}
	}
	return s;
}

static FILE *sink_out, *sink_in;
static SCREEN *screen;

/* stdscr resized to rows x cols, with colours (or not). */
static WINDOW *screen_of(int rows, int cols)
{
	resizeterm(rows, cols);
	return stdscr;
}

/* Line y of w, trailing blanks removed (static buffer). */
static const char *line(WINDOW *w, int y)
{
	static char buf[1024];
	int n = mvwinnstr(w, y, 0, buf, (int)sizeof(buf) - 1);
	if (n < 0)
		n = 0;
	buf[n] = 0;
	while (n > 0 && buf[n - 1] == ' ')
		buf[--n] = 0;
	return buf;
}

/* Row y of the worker table whose text has `what`; -1 if none. */
static int find_line(WINDOW *w, const char *what)
{
	for (int y = 0; y < getmaxy(w); y++)
		if (strstr(line(w, y), what))
			return y;
	return -1;
}

/* The column where `what` starts on line y, -1 if not there. */
static int find_col(WINDOW *w, int y, const char *what)
{
	const char *l = line(w, y), *p = strstr(l, what);
	return p ? (int)(p - l) : -1;
}

/* -------------------------------------------------------------- model */

static void test_rate(void)
{
	gd__ui_rate r;
	gd__ui_rate_init(&r, 10);
	CU_ASSERT_EQUAL(gd__ui_rate_get(&r), -1);
	gd__ui_rate_add(&r, 0, 0);
	CU_ASSERT_EQUAL(gd__ui_rate_get(&r), -1);
	for (int i = 1; i <= 40; i++)
		gd__ui_rate_add(&r, i * 0.5, (uint64_t)i * 5); /* 10 tasks/s */
	CU_ASSERT_DOUBLE_EQUAL(gd__ui_rate_get(&r), 10.0, 1e-9);
	/* The window forgets the past: a stall of 20 s reads as 0 tasks/s. */
	gd__ui_rate_add(&r, 40, 200);
	gd__ui_rate_add(&r, 45, 200);
	CU_ASSERT_DOUBLE_EQUAL(gd__ui_rate_get(&r), 0.0, 1e-9);
	/* More samples than the ring holds. */
	for (int i = 0; i < 1000; i++)
		gd__ui_rate_add(&r, 100 + i * 0.01, (uint64_t)i * 2); /* 200/s */
	CU_ASSERT_DOUBLE_EQUAL(gd__ui_rate_get(&r), 200.0, 1e-6);
}

/* The UI thread's side of test_model_busy: hold the lock until told. */
typedef struct holder {
	gd__ui_model *m;
	sem_t held, release;
} holder;

static void *hold_lock(void *arg)
{
	holder *h = arg;
	pthread_mutex_lock(&h->m->lock);
	sem_post(&h->held);
	sem_wait(&h->release);
	pthread_mutex_unlock(&h->m->lock);
	return NULL;
}

/* The dispatcher's thread never waits for the model's lock: while the UI
 * thread holds it (and may have been preempted there), a tick leaves the news
 * for the next call.  Waiting would hang this test: the holder lets go
 * only after the tick has returned. */
static void test_model_busy(void)
{
	gd_config cfg;
	gd_config_init(&cfg, sizeof(cfg));
	gd__ui_model m;
	CU_ASSERT_EQUAL_FATAL(gd__ui_model_init(&m, &cfg, 5.0), 0);
	gd__ui_snap live = make_snap(2), snap = {0};
	gd_event ev = {.type = GD_EV_WORKER, .worker_id = 0, .stats = &live.st};
	gd__ui_model_event(&m, &ev);
	CU_ASSERT_EQUAL(gd__ui_model_snapshot(&m, &snap, 10.0), 0); /* asks for news */
	CU_ASSERT_EQUAL(snap.st.completed, 30);

	holder h = {.m = &m};
	pthread_t th;
	sem_init(&h.held, 0, 0);
	sem_init(&h.release, 0, 0);
	CU_ASSERT_EQUAL_FATAL(pthread_create(&th, NULL, hold_lock, &h), 0);
	sem_wait(&h.held);
	live.st.completed = 31;
	gd__ui_model_tick(&m, &live.st); /* the lock is taken: returns at once */
	gd__ui_model_event(&m, &ev);     /* a worker event too */
	sem_post(&h.release);
	pthread_join(th, NULL);
	CU_ASSERT_EQUAL(__atomic_load_n(&m.want, __ATOMIC_RELAXED), 1); /* still wanted */
	CU_ASSERT_EQUAL(m.cur.st.completed, 30);                        /* not taken yet */
	gd__ui_model_tick(&m, &live.st);                                /* free now: taken */
	CU_ASSERT_EQUAL(gd__ui_model_snapshot(&m, &snap, 11.0), 0);
	CU_ASSERT_EQUAL(snap.st.completed, 31);

	sem_destroy(&h.held);
	sem_destroy(&h.release);
	gd__ui_snap_free(&snap);
	gd__ui_snap_free(&live);
	gd__ui_model_destroy(&m);
}

static void test_duration_eta(void)
{
	char b[16];
	CU_ASSERT_STRING_EQUAL(gd__ui_fmt_duration(b, sizeof(b), 0), "00:00");
	CU_ASSERT_STRING_EQUAL(gd__ui_fmt_duration(b, sizeof(b), 83), "01:23");
	CU_ASSERT_STRING_EQUAL(gd__ui_fmt_duration(b, sizeof(b), 3723), "1:02:03");
	CU_ASSERT_STRING_EQUAL(gd__ui_fmt_duration(b, sizeof(b), -1), "--:--");
	gd__ui_snap s = make_snap(1);
	CU_ASSERT_DOUBLE_EQUAL(gd__ui_eta(&s), 15.0, 1e-9);
	s.rate = -1;
	CU_ASSERT_EQUAL(gd__ui_eta(&s), -1);
	s.rate = 4;
	s.st.total_hint = 0;
	CU_ASSERT_EQUAL(gd__ui_eta(&s), -1);
	CU_ASSERT_DOUBLE_EQUAL(gd__ui_elapsed(&s), 83.0, 1e-9);
	gd__ui_snap_free(&s);
}

static void test_model_events(void)
{
	gd_config cfg;
	gd_config_init(&cfg, sizeof(cfg));
	cfg.total_hint = 10;
	cfg.task_timeout = 30;
	gd__ui_model m;
	CU_ASSERT_EQUAL_FATAL(gd__ui_model_init(&m, &cfg, 5.0), 0);

	gd__ui_snap live = make_snap(3), snap = {0};
	gd_event ev = {.type = GD_EV_WORKER, .worker_id = 1, .stats = &live.st};
	/* Before any event: our own start time, the hint, no workers. */
	CU_ASSERT_EQUAL(gd__ui_model_snapshot(&m, &snap, 6.0), 0);
	CU_ASSERT_EQUAL(snap.have_stats, 0);
	CU_ASSERT_EQUAL(snap.st.n_workers, 0);
	CU_ASSERT_EQUAL(snap.st.total_hint, 10);
	CU_ASSERT_DOUBLE_EQUAL(snap.timeout_s, 30, 1e-9);
	CU_ASSERT_DOUBLE_EQUAL(gd__ui_elapsed(&snap), 1.0, 1e-9);

	/* First event: every row is taken. */
	gd__ui_model_event(&m, &ev);
	CU_ASSERT_EQUAL(gd__ui_model_snapshot(&m, &snap, 2000.0), 0);
	CU_ASSERT_EQUAL(snap.have_stats, 1);
	CU_ASSERT_EQUAL(snap.st.n_workers, 3);
	CU_ASSERT_STRING_EQUAL(snap.st.workers[2].host, "node00");
	CU_ASSERT_EQUAL(snap.st.completed, 30);

	/* The snapshot is a copy: later changes do not reach it. */
	live.st.completed = 31;
	live.st.workers[0].completed = 99;
	live.st.workers[2].completed = 77;
	CU_ASSERT_EQUAL(snap.st.workers[0].completed, 10);

	/* A worker event takes everything at once, every row. */
	ev.worker_id = 0;
	live.st.workers[2].completed = 78; /* changed without an event of its own */
	live.st.workers[0].completed = 100;
	gd__ui_model_event(&m, &ev);
	CU_ASSERT_EQUAL(gd__ui_model_snapshot(&m, &snap, 2001.0), 0);
	CU_ASSERT_EQUAL(snap.st.completed, 31);
	CU_ASSERT_EQUAL(snap.st.workers[0].completed, 100);
	CU_ASSERT_EQUAL(snap.st.workers[2].completed, 78);

	/* Task events: the first after a snapshot is folded in; the next ones
	 * wait until the UI thread asks again (a snapshot), then the next event
	 * or tick (the dispatcher's on_tick) folds them. */
	ev.type = GD_EV_SUCCESS;
	live.st.workers[0].completed = 101;
	gd__ui_model_event(&m, &ev); /* the snapshot above asked: folded */
	live.st.workers[0].completed = 102;
	live.st.completed = 32;
	gd__ui_model_event(&m, &ev);     /* not asked since: not folded */
	gd__ui_model_tick(&m, &live.st); /* still not asked: nothing */
	CU_ASSERT_EQUAL(gd__ui_model_snapshot(&m, &snap, 2001.5), 0);
	CU_ASSERT_EQUAL(snap.st.workers[0].completed, 101);
	CU_ASSERT_EQUAL(snap.st.completed, 31);
	gd__ui_model_tick(&m, &live.st); /* asked now: the live statistics are taken */
	CU_ASSERT_EQUAL(gd__ui_model_snapshot(&m, &snap, 2001.55), 0);
	CU_ASSERT_EQUAL(snap.st.workers[0].completed, 102);
	CU_ASSERT_EQUAL(snap.st.completed, 32);
	/* No task event at all (none is wrapped without a user callback): once
	 * asked, a tick takes the live statistics all the same. */
	live.st.completed = 33;
	gd__ui_model_tick(&m, &live.st); /* asked by the snapshot above */
	CU_ASSERT_EQUAL(gd__ui_model_snapshot(&m, &snap, 2001.56), 0);
	CU_ASSERT_EQUAL(snap.st.completed, 33);
	ev.type = GD_EV_WORKER;
	snprintf(live.st.workers[0].host, sizeof(live.st.workers[0].host), "renamed");
	gd__ui_model_event(&m, &ev);
	CU_ASSERT_EQUAL(gd__ui_model_snapshot(&m, &snap, 2001.6), 0);
	CU_ASSERT_STRING_EQUAL(snap.st.workers[0].host, "renamed");

	/* Stop requests only go up. */
	CU_ASSERT_EQUAL(gd__ui_model_stop_level(&m), 0);
	CU_ASSERT_EQUAL(gd__ui_model_request_stop(&m, GD__UI_DRAIN), 1);
	CU_ASSERT_EQUAL(gd__ui_model_request_stop(&m, GD__UI_RUN), 1);
	CU_ASSERT_EQUAL(gd__ui_model_request_stop(&m, GD__UI_STOP_NOW), 2);
	CU_ASSERT_EQUAL(gd__ui_model_stop_level(&m), 2);

	/* on_exit: the final statistics, every row. */
	live.st.elapsed_s = 12.5;
	gd__ui_model_exit(&m, &live.st, GD_EINTR);
	CU_ASSERT_EQUAL(gd__ui_model_snapshot(&m, &snap, 2002.0), 0);
	CU_ASSERT_EQUAL(snap.ended, 1);
	CU_ASSERT_EQUAL(snap.rc, GD_EINTR);
	CU_ASSERT_EQUAL(snap.stop, 2);
	CU_ASSERT_EQUAL(snap.st.workers[2].completed, 78);
	CU_ASSERT_DOUBLE_EQUAL(gd__ui_elapsed(&snap), 12.5, 1e-9);

	/* A growing worker count is followed. */
	gd__ui_snap big = make_snap(50);
	ev.stats = &big.st;
	ev.worker_id = 49;
	gd__ui_model_event(&m, &ev);
	CU_ASSERT_EQUAL(gd__ui_model_snapshot(&m, &snap, 2003.0), 0);
	CU_ASSERT_EQUAL(snap.st.n_workers, 50);
	CU_ASSERT_STRING_EQUAL(snap.st.workers[49].host, "node06");

	gd__ui_snap_free(&big);
	gd__ui_snap_free(&live);
	gd__ui_snap_free(&snap);
	gd__ui_model_destroy(&m);
}

/* ---------------------------------------------------------------- keys */

static int feed(gd__ui_keyparser *p, const char *bytes, int *keys, int max)
{
	int n = 0;
	for (const char *c = bytes; *c && n < max; c++) {
		int k = gd__ui_key_feed(p, (unsigned char)*c);
		if (k != GD__KEY_NONE)
			keys[n++] = k;
	}
	return n;
}

static void test_keys(void)
{
	gd__ui_keyparser p = {0};
	int k[16];
	CU_ASSERT_EQUAL(feed(&p, "q?\003", k, 16), 3);
	CU_ASSERT_EQUAL(k[0], GD__KEY_QUIT);
	CU_ASSERT_EQUAL(k[1], GD__KEY_HELP);
	CU_ASSERT_EQUAL(k[2], GD__KEY_INTR);
	CU_ASSERT_EQUAL(feed(&p, "\033[A\033[B\033[5~\033[6~\033OA\033[H\033[4~", k, 16), 7);
	CU_ASSERT_EQUAL(k[0], GD__KEY_UP);
	CU_ASSERT_EQUAL(k[1], GD__KEY_DOWN);
	CU_ASSERT_EQUAL(k[2], GD__KEY_PGUP);
	CU_ASSERT_EQUAL(k[3], GD__KEY_PGDN);
	CU_ASSERT_EQUAL(k[4], GD__KEY_UP);
	CU_ASSERT_EQUAL(k[5], GD__KEY_HOME);
	CU_ASSERT_EQUAL(k[6], GD__KEY_END);
	/* A sequence split across reads, then an unknown one, then a lone ESC. */
	CU_ASSERT_EQUAL(feed(&p, "\033[", k, 16), 0);
	CU_ASSERT_EQUAL(feed(&p, "6~", k, 16), 1);
	CU_ASSERT_EQUAL(k[0], GD__KEY_PGDN);
	CU_ASSERT_EQUAL(feed(&p, "\033[1;5C", k, 16), 1);
	CU_ASSERT_EQUAL(k[0], GD__KEY_OTHER);
	CU_ASSERT_EQUAL(feed(&p, "\033q", k, 16), 1);
	CU_ASSERT_EQUAL(k[0], GD__KEY_QUIT);
}

/* ------------------------------------------------------------- render */

static void test_render_wide(void)
{
	WINDOW *w = screen_of(30, 120);
	gd__ui_snap s = make_snap(5);
	gd__ui_view v = {.color = 1};
	gd__ui_render(w, &s, &v);
	CU_ASSERT_PTR_NOT_NULL(strstr(line(w, 0), "gpudispatch | 5 workers | elapsed 01:23"));
	CU_ASSERT_PTR_NOT_NULL(strstr(line(w, 1), "40/100  40.0%"));
	/* The bar: 40% of it filled. */
	const char *bar = line(w, 1);
	CU_ASSERT_EQUAL(bar[0], '[');
	int fill = (int)strspn(bar + 1, "#"), rest = (int)strspn(bar + 1 + fill, ".");
	CU_ASSERT(fill > 0);
	CU_ASSERT_EQUAL(fill, (fill + rest) * 40 / 100);
	CU_ASSERT_EQUAL(bar[1 + fill + rest], ']');
	CU_ASSERT_PTR_NOT_NULL(strstr(line(w, 2), "ok 30  err 5  t/o 5"));
	CU_ASSERT_PTR_NOT_NULL(strstr(line(w, 2), "4.0 tasks/s"));
	CU_ASSERT_PTR_NOT_NULL(strstr(line(w, 2), "ETA 00:15"));
	CU_ASSERT_PTR_NOT_NULL(strstr(
	        line(w, 3), "Workers 5: 1 processing 1 idle 1 initializing 1 finished 1 error"));
	CU_ASSERT_PTR_NOT_NULL(strstr(line(w, 3), "1 host"));
	const char *titles[] = {"ID",   "HOST",   "GPU", "STATUS",  "TASK",
	                        "DONE", "FAILED", "T/O", "RUN TIME"};
	for (size_t i = 0; i < sizeof(titles) / sizeof(titles[0]); i++)
		CU_ASSERT_PTR_NOT_NULL(strstr(line(w, 4), titles[i]));
	/* Worker 0: processing task 700 for 12.5 s of its 60 s. */
	const char *r0 = line(w, 5);
	CU_ASSERT_PTR_NOT_NULL(strstr(r0, "node00"));
	CU_ASSERT_PTR_NOT_NULL(strstr(r0, "0 A100"));
	CU_ASSERT_PTR_NOT_NULL(strstr(r0, "processing"));
	CU_ASSERT_PTR_NOT_NULL(strstr(r0, "700"));
	CU_ASSERT_PTR_NOT_NULL(strstr(r0, "12.5/60s"));
	CU_ASSERT_PTR_NOT_NULL(strstr(line(w, 6), "idle"));
	CU_ASSERT_PTR_NOT_NULL(strstr(line(w, 9), "error"));
	CU_ASSERT_PTR_NOT_NULL(strstr(line(w, 29), "q: stop"));
	gd__ui_snap_free(&s);
}

static void test_render_utf8_unknown_total(void)
{
	WINDOW *w = screen_of(20, 100);
	gd__ui_snap s = make_snap(2);
	s.st.total_hint = 0;
	gd__ui_view v = {.utf8 = 1};
	gd__ui_render(w, &s, &v);
	CU_ASSERT_PTR_NOT_NULL(strstr(line(w, 1), "40 done (total unknown)"));
	CU_ASSERT_PTR_NULL(strstr(line(w, 1), "["));
	CU_ASSERT_PTR_NOT_NULL(strstr(line(w, 2), "✓ 30  ✗ 5  ⏱ 5"));
	CU_ASSERT_PTR_NOT_NULL(strstr(line(w, 2), "ETA --:--"));
	s.st.total_hint = 100;
	gd__ui_render(w, &s, &v);
	CU_ASSERT_PTR_NOT_NULL(strstr(line(w, 1), "[████"));
	CU_ASSERT_PTR_NOT_NULL(strstr(line(w, 1), "··] 40/100"));
	gd__ui_snap_free(&s);
}

static void test_render_narrow(void)
{
	WINDOW *w = screen_of(12, 40);
	gd__ui_snap s = make_snap(5);
	gd__ui_view v = {.color = 1};
	gd__ui_render(w, &s, &v);
	const char *hdr = line(w, 4);
	CU_ASSERT_PTR_NOT_NULL(strstr(hdr, "ID"));
	CU_ASSERT_PTR_NOT_NULL(strstr(hdr, "STATUS"));
	CU_ASSERT_PTR_NOT_NULL(strstr(hdr, "DONE"));
	CU_ASSERT_PTR_NULL(strstr(hdr, "GPU"));
	CU_ASSERT_PTR_NULL(strstr(hdr, "T/O"));
	/* Rows are not wrapped: each starts with its id and has its status. */
	static const char *st[] = {"processing", "idle", "initializing", "finished", "error"};
	for (int i = 0; i < 5; i++) {
		char id[8];
		snprintf(id, sizeof(id), "%4d", i);
		CU_ASSERT_EQUAL(strncmp(line(w, 5 + i), id, 4), 0);
		CU_ASSERT_PTR_NOT_NULL(strstr(line(w, 5 + i), st[i]));
	}
	/* 12 rows: 6 table rows fit, the 5 workers need no scrolling. */
	CU_ASSERT_EQUAL(v.rows_visible, 6);
	CU_ASSERT_PTR_NOT_NULL(strstr(line(w, 11), "q: stop"));

	/* Smaller than the minimum: a notice, no table. */
	w = screen_of(5, 25);
	gd__ui_render(w, &s, &v);
	CU_ASSERT_PTR_NOT_NULL(strstr(line(w, 0), "too small"));
	CU_ASSERT_PTR_NOT_NULL(strstr(line(w, 1), "40/100 done"));
	CU_ASSERT_EQUAL(find_line(w, "STATUS"), -1);
	gd__ui_snap_free(&s);
}

static void test_render_200_workers(void)
{
	WINDOW *w = screen_of(30, 100);
	gd__ui_snap s = make_snap(200);
	gd__ui_view v = {.color = 1};
	gd__ui_render(w, &s, &v);
	int visible = 30 - 6;
	CU_ASSERT_EQUAL(v.rows_visible, visible);
	CU_ASSERT_PTR_NOT_NULL(
	        strstr(line(w, 3),
	               "Workers 200: 40 processing 40 idle 40 initializing 40 finished 40 error"));
	CU_ASSERT_PTR_NOT_NULL(strstr(line(w, 3), "25 hosts"));
	CU_ASSERT_PTR_NOT_NULL(strstr(line(w, 29), "rows 1-24 of 200"));
	CU_ASSERT_EQUAL(strncmp(line(w, 5), "   0 ", 5), 0);
	CU_ASSERT_EQUAL(strncmp(line(w, 5 + visible - 1), "  23 ", 5), 0);

	/* PgDn: a page minus one row of overlap. */
	gd__ui_view_scroll(&v, GD__KEY_PGDN, 200);
	gd__ui_render(w, &s, &v);
	CU_ASSERT_EQUAL(strncmp(line(w, 5), "  23 ", 5), 0);
	CU_ASSERT_PTR_NOT_NULL(strstr(line(w, 29), "rows 24-47 of 200"));
	CU_ASSERT_PTR_NOT_NULL(strstr(line(w, 3), "Workers 200:"));
	gd__ui_view_scroll(&v, GD__KEY_DOWN, 200);
	gd__ui_render(w, &s, &v);
	CU_ASSERT_EQUAL(strncmp(line(w, 5), "  24 ", 5), 0);

	/* End: the last worker on the last table row; the summary stays. */
	gd__ui_view_scroll(&v, GD__KEY_END, 200);
	gd__ui_render(w, &s, &v);
	CU_ASSERT_EQUAL(strncmp(line(w, 5 + visible - 1), " 199 ", 5), 0);
	CU_ASSERT_PTR_NOT_NULL(strstr(line(w, 29), "rows 177-200 of 200"));
	CU_ASSERT_PTR_NOT_NULL(strstr(line(w, 3), "Workers 200:"));
	gd__ui_view_scroll(&v, GD__KEY_DOWN, 200); /* clamped */
	gd__ui_render(w, &s, &v);
	CU_ASSERT_EQUAL(strncmp(line(w, 5 + visible - 1), " 199 ", 5), 0);

	/* Home / PgUp past the top clamp at 0. */
	gd__ui_view_scroll(&v, GD__KEY_HOME, 200);
	gd__ui_view_scroll(&v, GD__KEY_PGUP, 200);
	gd__ui_render(w, &s, &v);
	CU_ASSERT_EQUAL(v.scroll, 0);
	CU_ASSERT_EQUAL(strncmp(line(w, 5), "   0 ", 5), 0);

	/* A shrinking terminal keeps the scroll position valid. */
	v.scroll = 190;
	w = screen_of(50, 100);
	gd__ui_render(w, &s, &v);
	CU_ASSERT_EQUAL(v.scroll, 200 - 44);
	gd__ui_snap_free(&s);
}

/* The attributes of the status cell of worker i's row (table row y). */
static chtype status_cell(WINDOW *w, int y, const char *name)
{
	int x = find_col(w, y, name);
	CU_ASSERT_FATAL(x >= 0);
	return mvwinch(w, y, x);
}

static void test_render_colours(void)
{
	WINDOW *w = screen_of(20, 120);
	CU_ASSERT_FATAL(has_colors());
	gd__ui_snap s = make_snap(5);
	gd__ui_view v = {.color = 1};
	gd__ui_render(w, &s, &v);
	static const struct {
		const char *name;
		short fg;
		int bold;
	} want[] = {
	        {"processing", COLOR_YELLOW, 0}, {"idle", COLOR_GREEN, 0},
	        {"initializing", COLOR_BLUE, 0}, {"finished", COLOR_GREEN, 1},
	        {"error", COLOR_RED, 1},
	};
	for (int i = 0; i < 5; i++) {
		chtype c = status_cell(w, 5 + i, want[i].name);
		short fg, bg;
		int pair = PAIR_NUMBER(c & A_COLOR);
		CU_ASSERT(pair > 0);
		CU_ASSERT_EQUAL(pair_content((short)pair, &fg, &bg), OK);
		CU_ASSERT_EQUAL(fg, want[i].fg);
		CU_ASSERT_EQUAL(!!(c & A_BOLD), want[i].bold);
	}
	gd__ui_snap_free(&s);
}

static void test_render_monochrome(void)
{
	WINDOW *w = screen_of(20, 120);
	gd__ui_snap s = make_snap(5);
	gd__ui_view v = {.color = 0};
	gd__ui_render(w, &s, &v);
	static const struct {
		const char *name;
		attr_t attr;
	} want[] = {
	        {"processing", A_BOLD},        {"idle", A_NORMAL},
	        {"initializing", A_DIM},       {"finished", A_UNDERLINE},
	        {"error", A_REVERSE | A_BOLD},
	};
	for (int i = 0; i < 5; i++) {
		chtype c = status_cell(w, 5 + i, want[i].name);
		CU_ASSERT_EQUAL(PAIR_NUMBER(c & A_COLOR), 0);
		CU_ASSERT_EQUAL(c & (A_ATTRIBUTES & ~A_COLOR), want[i].attr);
	}
	/* And the whole screen has no colour at all. */
	int coloured = 0;
	for (int y = 0; y < 20; y++)
		for (int x = 0; x < 120; x++)
			coloured += PAIR_NUMBER(mvwinch(w, y, x) & A_COLOR) != 0;
	CU_ASSERT_EQUAL(coloured, 0);
	gd__ui_snap_free(&s);
}

static void test_render_help_stop_end(void)
{
	WINDOW *w = screen_of(24, 80);
	gd__ui_snap s = make_snap(5);
	gd__ui_view v = {.help = 1};
	gd__ui_render(w, &s, &v);
	CU_ASSERT(find_line(w, "Keys") >= 0);
	CU_ASSERT(find_line(w, "PgUp/PgDn") >= 0);
	v.help = 0;
	s.stop = GD__UI_DRAIN;
	gd__ui_render(w, &s, &v);
	CU_ASSERT_EQUAL(find_line(w, "Keys"), -1);
	CU_ASSERT_PTR_NOT_NULL(strstr(line(w, 23), "Stopping: no new tasks, 1 in flight"));
	s.stop = GD__UI_STOP_NOW;
	gd__ui_render(w, &s, &v);
	CU_ASSERT_PTR_NOT_NULL(strstr(line(w, 23), "Stopping now"));
	s.ended = 1;
	s.rc = GD_EINTR;
	gd__ui_render(w, &s, &v);
	CU_ASSERT_PTR_NOT_NULL(strstr(line(w, 0), "run ended (-12)"));
	/* No worker yet. */
	gd__ui_snap none = make_snap(0);
	gd__ui_render(w, &none, &v);
	CU_ASSERT(find_line(w, "waiting for the workers") >= 0);
	gd__ui_snap_free(&none);
	gd__ui_snap_free(&s);
}

/* ----------------------------------------------------------------- text */

static char *capture_line(const gd__ui_snap *s)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	gd__ui_text_line(f, s);
	fclose(f);
	return buf;
}

static void test_text_line(void)
{
	gd__ui_snap s = make_snap(5);
	char *l = capture_line(&s);
	CU_ASSERT_STRING_EQUAL(l, "[gpudispatch 01:23] 40/100 (40.0%) ok 30 err 5 timeout 5 | "
	                          "4.0 tasks/s | ETA 00:15 | workers: 1 processing, 1 idle, "
	                          "1 initializing, 1 finished, 1 error\n");
	free(l);
	s.st.total_hint = 0;
	s.rate = -1;
	s.stop = GD__UI_DRAIN;
	s.st.n_workers = 0;
	l = capture_line(&s);
	CU_ASSERT_STRING_EQUAL(l, "[gpudispatch 01:23] 40 done ok 30 err 5 timeout 5 | - tasks/s | "
	                          "workers: none yet | stopping\n");
	free(l);
	gd__ui_snap_free(&s);
}

static void test_summary(void)
{
	gd__ui_snap s = make_snap(3);
	s.st.elapsed_s = 10;
	s.st.n_setup_failed = 1;
	snprintf(s.st.workers[2].message, sizeof(s.st.workers[2].message), "no GPU memory");
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	gd__reasons rs = {0};
	gd__reasons_add(&rs, 3, "command exited with status 3; stderr: CUDA error: out of memory");
	gd__reasons_add(&rs, 9, "command exited with status 3; stderr: CUDA error: out of memory");
	gd__ui_summary(f, &s.st, 0, &rs);
	fclose(f);
	CU_ASSERT_PTR_NOT_NULL(strstr(buf, "== gpudispatch summary =="));
	/* 10 of the 40 that ended failed or timed out: not "ok" */
	CU_ASSERT_PTR_NOT_NULL(strstr(buf, "result     some failed (10 of 40 tasks)\n"));
	CU_ASSERT_PTR_NOT_NULL(strstr(buf, "failures   2x command exited with status 3; stderr: "
	                                   "CUDA error: out of memory (tasks 3, 9)\n"));
	CU_ASSERT_PTR_NOT_NULL(
	        strstr(buf, "tasks      50 run, 30 succeeded, 5 failed, 5 timed out\n"));
	CU_ASSERT_PTR_NOT_NULL(strstr(buf, "success    60.0%\n"));
	CU_ASSERT_PTR_NOT_NULL(strstr(buf, "elapsed    00:10 (10.000 s), 4.0 tasks/s\n"));
	CU_ASSERT_PTR_NOT_NULL(strstr(buf, "workers    3 (1 setup failed)\n"));
	CU_ASSERT_PTR_NOT_NULL(strstr(buf, "  ID  HOST    GPU    STATUS"));
	CU_ASSERT_PTR_NOT_NULL(strstr(buf, "\n   0  node00  0      processing"));
	CU_ASSERT_PTR_NOT_NULL(strstr(buf, "\n   2  node00  2      initializing"));
	CU_ASSERT_PTR_NOT_NULL(strstr(buf, "      no GPU memory\n"));
	free(buf);
	buf = NULL;
	f = open_memstream(&buf, &len);
	gd__ui_summary(f, &s.st, GD_EINTR, NULL);
	fclose(f);
	CU_ASSERT_PTR_NOT_NULL(strstr(buf, "result     interrupted (stopped before"));
	CU_ASSERT_PTR_NULL(strstr(buf, "failures"));
	free(buf);

	/* the verdicts */
	char v[192];
	gd_stats st = GD_STATS_INIT;
	gd__ui_result_text(v, sizeof(v), &st, 0);
	CU_ASSERT_STRING_EQUAL(v, "ok");
	st.completed = 4;
	gd__ui_result_text(v, sizeof(v), &st, 0);
	CU_ASSERT_STRING_EQUAL(v, "ok");
	st.completed = 0, st.failed = 5, st.timed_out = 1;
	gd__ui_result_text(v, sizeof(v), &st, 0);
	CU_ASSERT_STRING_EQUAL(v, "all failed (6 of 6 tasks)");
	st.halted = GD_STOP_DRAIN;
	gd__ui_result_text(v, sizeof(v), &st, GD_EINTR);
	CU_ASSERT_PTR_NOT_NULL(strstr(v, "halted (a halt condition was met: no new tasks"));
	st.halted = GD_STOP_NOW;
	gd__ui_result_text(v, sizeof(v), &st, 0);
	CU_ASSERT_PTR_NOT_NULL(strstr(v, "halted (a halt condition was met: tasks in flight"));
	st.halted = 0;
	gd__ui_result_text(v, sizeof(v), &st, GD_EALLSETUP);
	CU_ASSERT_PTR_NOT_NULL(strstr(v, "GD_EALLSETUP: "));
	gd__ui_snap_free(&s);
}

/* ------------------------------------------------------------- reasons */

static void test_reasons(void)
{
	char b[GD__REASON_LEN];
	gd__reason_normalise(b, sizeof(b),
	                     "command exited with status 3; stderr: boom: task 17 "
	                     "failed at 0x7ffd1234\nTraceback line 2");
	CU_ASSERT_STRING_EQUAL(b,
	                       "command exited with status 3; stderr: boom: task # failed at 0x#");
	gd__reason_normalise(b, sizeof(b), "command killed by signal 11 (Segmentation fault)");
	CU_ASSERT_STRING_EQUAL(b, "command killed by signal 11 (Segmentation fault)");
	gd__reason_normalise(b, sizeof(b), "timed out after 2.5 s");
	CU_ASSERT_STRING_EQUAL(b, "timed out after 2.5 s");
	gd__reason_normalise(b, sizeof(b), "bad size 12.75 MB on line 3");
	CU_ASSERT_STRING_EQUAL(b, "bad size # MB on line #");
	/* retried: the last attempt's message */
	gd__reason_normalise(b, sizeof(b),
	                     "attempt 1 on worker 2: exited with status 1; "
	                     "attempt 2 on worker 0: exited with status 4");
	CU_ASSERT_STRING_EQUAL(b, "exited with status 4");
	gd__reason_normalise(b, sizeof(b), "");
	CU_ASSERT_STRING_EQUAL(b, "(no message)");
	gd__reason_normalise(b, 8, "abcdefghijkl");
	CU_ASSERT_STRING_EQUAL(b, "abcdefg");

	/* grouped, the first ids kept, bounded */
	gd__reasons rs = {0};
	for (uint64_t id = 8; id-- > 0;) /* the lowest ids are kept, whatever the order */
		gd__reasons_add(&rs, id, id == 3 ? "other thing" : "CUDA error: out of memory");
	CU_ASSERT_EQUAL(rs.n, 2);
	CU_ASSERT_EQUAL(rs.total, 8);
	gd__reason_format(b, sizeof(b), &rs.r[0], "x");
	CU_ASSERT_STRING_EQUAL(b, "7x CUDA error: out of memory (tasks 0, 1, 2, 4, 5, ...)");
	gd__reason_format(b, sizeof(b), &rs.r[1], "x");
	CU_ASSERT_STRING_EQUAL(b, "1x other thing (task 3)");
	gd__reasons_add(&rs, 9, "CUDA error: out of memory");
	gd__reason_format(b, sizeof(b), &rs.r[0], "x");
	CU_ASSERT_STRING_EQUAL(b, "8x CUDA error: out of memory (tasks 0, 1, 2, 4, 5, ...)");
	for (int k = 0; k < 100000; k++) {
		char m[64];
		snprintf(m, sizeof(m), "distinct %c%c%c", 'a' + k % 26, 'a' + k / 26 % 26,
		         'a' + k / 676 % 26);
		gd__reasons_add(&rs, 100 + (uint64_t)k, m);
	}
	CU_ASSERT_EQUAL(rs.n, GD__REASONS_MAX);
	CU_ASSERT_EQUAL(rs.total, 100009);
	CU_ASSERT(rs.other.count > 90000);
	int idx[GD__REASONS_MAX + 1];
	int n = gd__reasons_sorted(&rs, idx, GD__REASONS_MAX + 1);
	CU_ASSERT_EQUAL(n, GD__REASONS_MAX + 1);
	CU_ASSERT_EQUAL(idx[0], GD__REASONS_MAX); /* `other`, the most frequent */
	gd__reason_format(b, sizeof(b), gd__reasons_at(&rs, idx[0]), "x");
	CU_ASSERT_PTR_NOT_NULL(strstr(b, "x other reasons (tasks "));

	/* text mode: what grew, bounded per call */
	uint64_t shown[GD__REASONS_MAX + 1] = {0};
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	CU_ASSERT_EQUAL(gd__ui_text_reasons(f, &rs, shown), GD__UI_REASON_LINES + 1);
	fclose(f);
	CU_ASSERT_PTR_NOT_NULL(
	        strstr(buf, "gpudispatch: 8x CUDA error: out of memory (tasks 0, 1,"));
	CU_ASSERT_PTR_NOT_NULL(strstr(buf, "more reasons"));
	free(buf);
	buf = NULL;
	f = open_memstream(&buf, &len);
	gd__reasons_add(&rs, 999, "CUDA error: out of memory");
	/* the lines not shown yet, then the one that grew */
	int lines = gd__ui_text_reasons(f, &rs, shown);
	CU_ASSERT(lines >= 1 && lines <= GD__UI_REASON_LINES + 1);
	fclose(f);
	free(buf);
	FILE *null = fopen("/dev/null", "w");
	for (int k = 0; k < 20; k++) /* show the rest */
		gd__ui_text_reasons(null, &rs, shown);
	fclose(null);
	buf = NULL;
	f = open_memstream(&buf, &len);
	CU_ASSERT_EQUAL(gd__ui_text_reasons(f, &rs, shown), 0); /* nothing new */
	gd__reasons_add(&rs, 1000, "CUDA error: out of memory");
	CU_ASSERT_EQUAL(gd__ui_text_reasons(f, &rs, shown), 1);
	fclose(f);
	CU_ASSERT_PTR_NOT_NULL(strstr(buf, "gpudispatch: 10x CUDA error: out of memory"));
	free(buf);
}

/* ETA while the last tasks run: never 00:00; the running tasks' need */
static void test_eta_running(void)
{
	gd__ui_snap s = make_snap(1); /* worker 0 busy since now - 12.5 */
	s.st.total_hint = 41;         /* 40 done, 1 left: the one running */
	s.rate = 100;                 /* 1 / 100 = 0.01 s */
	s.st.workers[0].busy_s = 0;
	CU_ASSERT_DOUBLE_EQUAL(gd__ui_eta(&s), 1.0, 1e-9);
	/* a mean task of 20 s: the running one needs 7.5 s more */
	s.st.workers[0].busy_s = 20.0 * 40;
	CU_ASSERT_DOUBLE_EQUAL(gd__ui_eta(&s), 7.5, 1e-9);
	/* all done, nothing runs */
	s.st.total_hint = 40;
	s.st.workers[0].in_flight = 0;
	CU_ASSERT_EQUAL(gd__ui_eta(&s), 0);
	gd__ui_snap_free(&s);
}

/* RUN TIME counts to when the statistics were taken; the GPU column of CPU
 * workers is narrow; failure reasons show above the footer */
static void test_render_runtime_cpu_reasons(void)
{
	WINDOW *w = screen_of(20, 120);
	gd__ui_snap s = make_snap(2);
	gd__ui_view v = {0};
	for (int i = 0; i < 2; i++) {
		s.st.workers[i].gpu.index = -1;
		s.st.workers[i].gpu.model[0] = '\0';
	}
	s.taken = s.now - 3.0;                          /* taken 3 s ago */
	s.st.workers[0].current_since = s.taken - 0.02; /* a short task */
	gd__reasons_add(&s.reasons, 4,
	                "command exited with status 3; stderr: CUDA error: out of memory");
	gd__reasons_add(&s.reasons, 7,
	                "command exited with status 3; stderr: CUDA error: out of memory");
	gd__ui_render(w, &s, &v);
	int y = find_line(w, " 700 ");
	CU_ASSERT(y > 0);
	CU_ASSERT_PTR_NOT_NULL(strstr(line(w, y), "0.0/60s"));
	int g = find_col(w, 4, "GPU"), st = find_col(w, 4, "STATUS");
	CU_ASSERT(g > 0 && st > g && st - g <= 5);
	CU_ASSERT_PTR_NOT_NULL(strstr(line(w, 18),
	                              "2x command exited with status 3; stderr: CUDA error: "
	                              "out of memory (tasks 4, 7)"));
	CU_ASSERT_PTR_NOT_NULL(strstr(line(w, 19), "q: stop"));
	gd__ui_snap_free(&s);
}

/* Fresh statistics on request: what the text lines wait for */
static void test_model_ask(void)
{
	gd_config cfg;
	gd_config_init(&cfg, sizeof(cfg));
	gd__ui_model m;
	CU_ASSERT_EQUAL_FATAL(gd__ui_model_init(&m, &cfg, 5.0), 0);
	gd__ui_snap live = make_snap(2), snap = {0};
	gd__ui_model_tick(&m, &live.st); /* wanted at start: taken */
	uint64_t f0 = gd__ui_model_folds(&m);
	CU_ASSERT(f0 >= 1);
	live.st.completed = 33;
	gd__ui_model_tick(&m, &live.st); /* nobody asked: not taken */
	CU_ASSERT_EQUAL(gd__ui_model_folds(&m), f0);
	gd__ui_model_ask(&m);
	gd_event ev = {
	        .type = GD_EV_ERROR, .task_id = 12, .message = "bad input 12", .stats = &live.st};
	gd__ui_model_event(&m, &ev); /* taken, with the failure's reason */
	CU_ASSERT_EQUAL(gd__ui_model_folds(&m), f0 + 1);
	CU_ASSERT_EQUAL(gd__ui_model_snapshot(&m, &snap, 11.0), 0);
	CU_ASSERT_EQUAL(snap.st.completed, 33);
	CU_ASSERT(snap.taken > 0);
	CU_ASSERT_EQUAL(snap.reasons.total, 1);
	CU_ASSERT_STRING_EQUAL(snap.reasons.r[0].text, "bad input #");
	gd__ui_snap_free(&snap);
	gd__ui_snap_free(&live);
	gd__ui_model_destroy(&m);
}

int main(void)
{
	/* UTF-8 so that ✓ ✗ ⏱ are single cells; an xterm with colours. */
	setlocale(LC_ALL, "C.UTF-8");
	sink_out = fopen("/dev/null", "w");
	sink_in = fopen("/dev/null", "r");
	screen = newterm("xterm-256color", sink_out, sink_in);
	if (!screen) {
		fprintf(stderr, "newterm(xterm-256color) failed: no terminfo?\n");
		return 1;
	}
	set_term(screen);
	gd__ui_colors_init(0);

	if (CU_initialize_registry() != CUE_SUCCESS)
		return 1;
	CU_pSuite s = CU_add_suite("ui", NULL, NULL);
	CU_add_test(s, "rate", test_rate);
	CU_add_test(s, "duration_eta", test_duration_eta);
	CU_add_test(s, "model_events", test_model_events);
	CU_add_test(s, "model_busy", test_model_busy);
	CU_add_test(s, "keys", test_keys);
	CU_add_test(s, "render_wide", test_render_wide);
	CU_add_test(s, "render_utf8_unknown_total", test_render_utf8_unknown_total);
	CU_add_test(s, "render_narrow", test_render_narrow);
	CU_add_test(s, "render_200_workers", test_render_200_workers);
	CU_add_test(s, "render_colours", test_render_colours);
	CU_add_test(s, "render_monochrome", test_render_monochrome);
	CU_add_test(s, "render_help_stop_end", test_render_help_stop_end);
	CU_add_test(s, "text_line", test_text_line);
	CU_add_test(s, "summary", test_summary);
	CU_add_test(s, "reasons", test_reasons);
	CU_add_test(s, "eta_running", test_eta_running);
	CU_add_test(s, "render_runtime_cpu_reasons", test_render_runtime_cpu_reasons);
	CU_add_test(s, "model_ask", test_model_ask);
	CU_basic_set_mode(CU_BRM_VERBOSE);
	CU_basic_run_tests();
	unsigned failed = CU_get_number_of_failures();
	CU_cleanup_registry();
	endwin();
	delscreen(screen);
	fclose(sink_out);
	fclose(sink_in);
	return failed ? 1 : 0;
}
