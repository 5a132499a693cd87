/*
 * The dashboard's view: see ui_render.h.
 *
 * Layout, top to bottom (every line clipped to the width, never wrapped):
 *   0  title: name, workers, elapsed, the keys
 *   1  progress: a bar and done/total when the total is known, else done
 *   2  ✓ ✗ ⏱ counts, throughput over the recent window, ETA
 *   3  the per-status summary of the workers (always visible)
 *   4  the table's header
 *   5.. one row per worker, scrolled
 *   last  footer: rows shown, or the stop state
 * Columns are dropped, least useful first, when the terminal is narrow.
 */
#define _GNU_SOURCE /* wcwidth (ncurses' flags set _XOPEN_SOURCE) */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <wchar.h>

#include "ui_keys.h"
#include "ui_render.h"

#define HEADER_LINES 5 /* lines above the first worker row */

int gd__ui_colors_init(int monochrome)
{
	if (monochrome || !has_colors() || start_color() == ERR)
		return 0;
	short bg = COLOR_BLACK;
	if (use_default_colors() == OK)
		bg = -1;
	init_pair(GD__PAIR_INIT, COLOR_BLUE, bg);
	init_pair(GD__PAIR_IDLE, COLOR_GREEN, bg);
	init_pair(GD__PAIR_BUSY, COLOR_YELLOW, bg);
	init_pair(GD__PAIR_ERROR, COLOR_RED, bg);
	init_pair(GD__PAIR_DONE, COLOR_GREEN, bg);
	return 1;
}

attr_t gd__ui_status_attr(gd_worker_state s, int color)
{
	/*
	 * Monochrome: every status still looks different, by attributes only:
	 * initializing dim, idle plain, processing bold, finished underlined,
	 * error reverse bold.
	 */
	switch (s) {
	case GD_WS_INIT:
		return color ? COLOR_PAIR(GD__PAIR_INIT) : A_DIM;
	case GD_WS_IDLE:
		return color ? COLOR_PAIR(GD__PAIR_IDLE) : A_NORMAL;
	case GD_WS_BUSY:
		return color ? COLOR_PAIR(GD__PAIR_BUSY) : A_BOLD;
	case GD_WS_DONE:
		return color ? COLOR_PAIR(GD__PAIR_DONE) | A_BOLD : A_UNDERLINE;
	case GD_WS_ERROR:
	case GD_WS_QUARANTINED:
		return color ? COLOR_PAIR(GD__PAIR_ERROR) | A_BOLD : A_REVERSE | A_BOLD;
	}
	return A_NORMAL;
}

/*
 * Write s at (y, x) with attributes a, clipped to `cols` display columns
 * (multibyte aware, so ✓ counts as one).  \return the columns written.
 */
static int put(WINDOW *w, int y, int x, int cols, attr_t a, const char *s)
{
	int maxx = getmaxx(w);
	if (x + cols > maxx)
		cols = maxx - x;
	if (cols <= 0 || y < 0 || y >= getmaxy(w))
		return 0;
	mbstate_t st;
	memset(&st, 0, sizeof(st));
	int used = 0;
	wmove(w, y, x);
	wattr_on(w, a, NULL);
	while (*s) {
		wchar_t wc;
		size_t len = mbrtowc(&wc, s, MB_CUR_MAX, &st);
		int cw = 1;
		if (len == (size_t)-1 || len == (size_t)-2 || len == 0) {
			memset(&st, 0, sizeof(st));
			len = 1; /* not valid here: write it as a byte */
			wc = (unsigned char)*s;
		} else {
			cw = wcwidth(wc);
			if (cw < 0)
				cw = 1;
		}
		if (used + cw > cols)
			break;
		waddnstr(w, s, (int)len);
		used += cw;
		s += len;
	}
	wattr_off(w, a, NULL);
	return used;
}

static int putf(WINDOW *w, int y, int x, int cols, attr_t a, const char *fmt, ...)
        __attribute__((format(printf, 6, 7)));
static int putf(WINDOW *w, int y, int x, int cols, attr_t a, const char *fmt, ...)
{
	char buf[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	return put(w, y, x, cols, a, buf);
}

/* ---------------------------------------------------------------- table */

enum col_id { C_ID, C_HOST, C_GPU, C_STATUS, C_TASK, C_DONE, C_FAIL, C_TOUT, C_TIME, C_N };

struct col {
	const char *title;
	int min, max; /* width range: max > min for the flexible ones */
	int right;    /* right-aligned */
	int keep;     /* priority: the lowest is dropped first */
};

static const struct col cols[C_N] = {
        [C_ID] = {"ID", 4, 4, 1, 10},          [C_HOST] = {"HOST", 6, 24, 0, 7},
        [C_GPU] = {"GPU", 4, 28, 0, 5},        [C_STATUS] = {"STATUS", 12, 12, 0, 9},
        [C_TASK] = {"TASK", 7, 10, 1, 6},      [C_DONE] = {"DONE", 7, 8, 1, 8},
        [C_FAIL] = {"FAILED", 6, 6, 1, 4},     [C_TOUT] = {"T/O", 5, 5, 1, 2},
        [C_TIME] = {"RUN TIME", 11, 13, 1, 3},
};

struct layout {
	int on[C_N];
	int width[C_N];
	int x[C_N];
};

/* Choose the columns that fit `width` and their widths; gpu_w: the widest
 * GPU cell (the column grows no wider: "cpu" needs 3). */
static void layout_columns(struct layout *L, int width, int gpu_w)
{
	int used = 0;
	for (int c = 0; c < C_N; c++) {
		L->on[c] = 1;
		L->width[c] = cols[c].min;
		used += cols[c].min + (c ? 1 : 0);
	}
	/* Drop the lowest priority column until the rest fits. */
	while (used > width) {
		int drop = -1;
		for (int c = 0; c < C_N; c++)
			if (L->on[c] && (drop < 0 || cols[c].keep < cols[drop].keep))
				drop = c;
		if (drop < 0 || drop == C_ID)
			break;
		L->on[drop] = 0;
		used -= cols[drop].min + 1;
	}
	/* Give what is left to the flexible columns, host and GPU first. */
	static const int grow[] = {C_HOST, C_GPU, C_TIME, C_TASK, C_DONE};
	for (size_t i = 0; i < sizeof(grow) / sizeof(grow[0]); i++) {
		int c = grow[i];
		if (!L->on[c])
			continue;
		int max = cols[c].max;
		if (c == C_GPU && gpu_w < max)
			max = gpu_w > cols[c].min ? gpu_w : cols[c].min;
		int more = max - L->width[c];
		if (more > width - used)
			more = width - used;
		if (more > 0) {
			L->width[c] += more;
			used += more;
		}
	}
	int x = 0;
	for (int c = 0; c < C_N; c++) {
		if (!L->on[c])
			continue;
		L->x[c] = x;
		x += L->width[c] + 1;
	}
}

static void put_cell(WINDOW *w, int y, const struct layout *L, int c, attr_t a, const char *s)
{
	if (!L->on[c])
		return;
	char buf[128];
	int wd = L->width[c];
	if (cols[c].right && (int)strlen(s) <= wd)
		snprintf(buf, sizeof(buf), "%*s", wd, s);
	else
		snprintf(buf, sizeof(buf), "%-*s", wd, s);
	put(w, y, L->x[c], wd, a, buf);
}

static void gpu_text(char *buf, size_t n, const gd_worker_stats *ws)
{
	char ids[GD_MAX_WORKER_GPUS * 4];

	gd__ui_gpus(ids, sizeof(ids), ws);
	/* truncation is fine: the cell is narrower */
	if (ws->gpu.index >= 0 && ws->gpu.model[0] && strlen(ids) + 1 < n)
		snprintf(buf, n, "%s %.*s", ids, (int)(n - strlen(ids) - 2), ws->gpu.model);
	else
		snprintf(buf, n, "%s", ids);
}

static void worker_row(WINDOW *w, int y, const struct layout *L, const gd__ui_snap *s,
                       const gd_worker_stats *ws, const gd__ui_view *v)
{
	char buf[96];
	snprintf(buf, sizeof(buf), "%d", ws->worker_id);
	put_cell(w, y, L, C_ID, A_NORMAL, buf);
	put_cell(w, y, L, C_HOST, A_NORMAL, ws->host[0] ? ws->host : "?");
	gpu_text(buf, sizeof(buf), ws);
	put_cell(w, y, L, C_GPU, A_NORMAL, buf);
	put_cell(w, y, L, C_STATUS, gd__ui_status_attr(ws->state, v->color),
	         gd_worker_state_name(ws->state));
	int busy = ws->in_flight > 0 && ws->state == GD_WS_BUSY;
	if (busy && ws->in_flight > 1)
		snprintf(buf, sizeof(buf), "%llu+%u", (unsigned long long)ws->current_task,
		         ws->in_flight - 1);
	else if (busy)
		snprintf(buf, sizeof(buf), "%llu", (unsigned long long)ws->current_task);
	else
		snprintf(buf, sizeof(buf), "-");
	put_cell(w, y, L, C_TASK, A_NORMAL, buf);
	snprintf(buf, sizeof(buf), "%llu", (unsigned long long)ws->completed);
	put_cell(w, y, L, C_DONE, A_NORMAL, buf);
	snprintf(buf, sizeof(buf), "%llu", (unsigned long long)ws->failed);
	put_cell(w, y, L, C_FAIL, ws->failed ? A_BOLD : A_NORMAL, buf);
	snprintf(buf, sizeof(buf), "%llu", (unsigned long long)ws->timed_out);
	put_cell(w, y, L, C_TOUT, ws->timed_out ? A_BOLD : A_NORMAL, buf);

	attr_t ta = A_NORMAL;
	if (busy && !s->ended) {
		/* as long as it had run when these statistics were true: the
		 * task shown may have ended since (short tasks) */
		double run = gd__ui_stats_time(s) - ws->current_since;
		if (run < 0)
			run = 0;
		if (s->timeout_s > 0) {
			snprintf(buf, sizeof(buf), "%.1f/%.0fs", run, s->timeout_s);
			/* Close to its timeout: make it stand out. */
			if (run >= 0.8 * s->timeout_s)
				ta = v->color ? COLOR_PAIR(GD__PAIR_ERROR) | A_BOLD : A_BOLD;
		} else {
			snprintf(buf, sizeof(buf), "%.1fs", run);
		}
	} else {
		snprintf(buf, sizeof(buf), "-");
	}
	put_cell(w, y, L, C_TIME, ta, buf);
}

static void table_header(WINDOW *w, int y, const struct layout *L, int width)
{
	wmove(w, y, 0);
	wattr_on(w, A_REVERSE, NULL);
	for (int i = 0; i < width; i++)
		waddch(w, ' ');
	wattr_off(w, A_REVERSE, NULL);
	for (int c = 0; c < C_N; c++)
		put_cell(w, y, L, c, A_REVERSE | A_BOLD, cols[c].title);
}

/* ------------------------------------------------------------ top lines */

static int count_hosts(const gd_stats *st)
{
	int n = 0;
	for (int i = 0; i < st->n_workers; i++) {
		int seen = 0;
		for (int j = 0; j < i && !seen; j++)
			seen = !strcmp(st->workers[i].host, st->workers[j].host);
		n += !seen;
		if (i > 4096) /* quadratic: stop counting exactly at this scale */
			return -1;
	}
	return n;
}

static void status_summary(WINDOW *w, int y, int width, const gd__ui_snap *s, const gd__ui_view *v)
{
	int n[GD_WS_QUARANTINED + 1] = {0};
	for (int i = 0; i < s->st.n_workers; i++) {
		unsigned st = s->st.workers[i].state;
		if (st <= GD_WS_QUARANTINED)
			n[st]++;
	}
	static const gd_worker_state order[] = {GD_WS_BUSY, GD_WS_IDLE,  GD_WS_INIT,
	                                        GD_WS_DONE, GD_WS_ERROR, GD_WS_QUARANTINED};
	int x = putf(w, y, 0, width, A_BOLD, "Workers %d:", s->st.n_workers);
	for (size_t i = 0; i < sizeof(order) / sizeof(order[0]); i++) {
		gd_worker_state st = order[i];
		/* Only statuses that some worker has, plus always processing/idle. */
		if (!n[st] && st != GD_WS_BUSY && st != GD_WS_IDLE)
			continue;
		x += putf(w, y, x, width - x, A_NORMAL, " %d ", n[st]);
		x += put(w, y, x, width - x, gd__ui_status_attr(st, v->color),
		         gd_worker_state_name(st));
	}
	int hosts = count_hosts(&s->st);
	if (hosts > 0)
		putf(w, y, x, width - x, A_NORMAL, "  | %d host%s", hosts, hosts == 1 ? "" : "s");
}

static void progress_line(WINDOW *w, int y, int width, const gd__ui_snap *s, const gd__ui_view *v)
{
	uint64_t done = gd__ui_done(&s->st), total = s->st.total_hint;
	char text[96];
	if (total) {
		double pct = 100.0 * (double)done / (double)total;
		snprintf(text, sizeof(text), "%llu/%llu %5.1f%%", (unsigned long long)done,
		         (unsigned long long)total, pct > 100 ? 100 : pct);
	} else {
		snprintf(text, sizeof(text), "%llu done (total unknown)", (unsigned long long)done);
	}
	int tl = (int)strlen(text);
	int bar = width - tl - 3;
	if (!total || bar < 10) {
		put(w, y, 0, width, A_BOLD, text);
		return;
	}
	if (bar > 60)
		bar = 60;
	int fill = (int)((double)bar * (double)(done > total ? total : done) / (double)total);
	int x = put(w, y, 0, width, A_NORMAL, "[");
	attr_t fa = v->color ? COLOR_PAIR(GD__PAIR_IDLE) | A_BOLD : A_BOLD;
	for (int i = 0; i < bar; i++)
		x += put(w, y, x, 1, i < fill ? fa : A_DIM,
		         i < fill ? (v->utf8 ? "█" : "#") : (v->utf8 ? "·" : "."));
	x += put(w, y, x, 1, A_NORMAL, "]");
	put(w, y, x + 1, width - x - 1, A_BOLD, text);
}

static void counts_line(WINDOW *w, int y, int width, const gd__ui_snap *s, const gd__ui_view *v)
{
	const gd_stats *st = &s->st;
	char rate[32], eta[16];
	if (s->rate >= 0)
		snprintf(rate, sizeof(rate), "%.1f tasks/s", s->rate);
	else
		snprintf(rate, sizeof(rate), "- tasks/s");
	gd__ui_fmt_duration(eta, sizeof(eta), gd__ui_eta(s));
	int x = 0;
	x += putf(w, y, x, width - x, v->color ? COLOR_PAIR(GD__PAIR_IDLE) : A_NORMAL, "%s %llu",
	          v->utf8 ? "✓" : "ok", (unsigned long long)st->completed);
	x += putf(w, y, x, width - x, v->color ? COLOR_PAIR(GD__PAIR_ERROR) : A_NORMAL, "  %s %llu",
	          v->utf8 ? "✗" : "err", (unsigned long long)st->failed);
	x += putf(w, y, x, width - x, v->color ? COLOR_PAIR(GD__PAIR_BUSY) : A_NORMAL, "  %s %llu",
	          v->utf8 ? "⏱" : "t/o", (unsigned long long)st->timed_out);
	x += putf(w, y, x, width - x, A_NORMAL, "  | %s | ETA %s", rate, eta);
	if (st->retried || st->skipped || st->not_done)
		putf(w, y, x, width - x, A_NORMAL, " | retried %llu skipped %llu not done %llu",
		     (unsigned long long)st->retried, (unsigned long long)st->skipped,
		     (unsigned long long)st->not_done);
}

static void footer(WINDOW *w, int y, int width, const gd__ui_snap *s, const gd__ui_view *v,
                   int first, int shown)
{
	int n = s->st.n_workers;
	uint32_t inflight = 0;
	for (int i = 0; i < n; i++)
		inflight += s->st.workers[i].in_flight;
	if (s->stop == GD__UI_DRAIN && !s->ended) {
		putf(w, y, 0, width, A_REVERSE | A_BOLD,
		     " Stopping: no new tasks, %u in flight finishing. q again or Ctrl-C: stop "
		     "now ",
		     inflight);
		return;
	}
	if (s->stop >= GD__UI_STOP_NOW && !s->ended) {
		put(w, y, 0, width, A_REVERSE | A_BOLD, " Stopping now... ");
		return;
	}
	if (n > shown)
		putf(w, y, 0, width, A_DIM, "rows %d-%d of %d  %s PgUp PgDn: scroll   ?: help",
		     shown ? first + 1 : 0, first + shown, n, v->utf8 ? "↑↓" : "up/down");
	else
		put(w, y, 0, width, A_DIM, "q: stop   ?: help");
}

static void help_box(WINDOW *w, int rows, int width)
{
	static const char *lines[] = {
	        "Keys",
	        "",
	        "q          stop handing out tasks; the",
	        "           tasks in flight finish",
	        "q again    stop now (Ctrl-C too)",
	        "up/down    scroll one worker (j/k)",
	        "PgUp/PgDn  scroll one page (b/space)",
	        "Home/End   first/last worker (g/G)",
	        "Ctrl-L     redraw",
	        "?          show/hide this help",
	};
	int n = (int)(sizeof(lines) / sizeof(lines[0]));
	int bw = 42, bh = n + 2;
	if (bw > width)
		bw = width;
	if (bh > rows)
		bh = rows;
	int y0 = (rows - bh) / 2, x0 = (width - bw) / 2;
	for (int y = 0; y < bh; y++) {
		wmove(w, y0 + y, x0);
		for (int x = 0; x < bw; x++) {
			int edge_y = y == 0 || y == bh - 1, edge_x = x == 0 || x == bw - 1;
			waddch(w, edge_y && edge_x ? '+' : edge_y ? '-' : edge_x ? '|' : ' ');
		}
	}
	for (int i = 0; i < n && i + 1 < bh - 1; i++)
		put(w, y0 + 1 + i, x0 + 2, bw - 4, i == 0 ? A_BOLD : A_NORMAL, lines[i]);
}

/* --------------------------------------------------------------- render */

static int clamp_scroll(int scroll, int n, int visible)
{
	int max = n - visible;
	if (max < 0)
		max = 0;
	if (scroll > max)
		scroll = max;
	return scroll < 0 ? 0 : scroll;
}

void gd__ui_view_scroll(gd__ui_view *v, int key, int n)
{
	int page = v->rows_visible > 1 ? v->rows_visible - 1 : 1;
	switch (key) {
	case GD__KEY_UP:
		v->scroll--;
		break;
	case GD__KEY_DOWN:
		v->scroll++;
		break;
	case GD__KEY_PGUP:
		v->scroll -= page;
		break;
	case GD__KEY_PGDN:
		v->scroll += page;
		break;
	case GD__KEY_HOME:
		v->scroll = 0;
		break;
	case GD__KEY_END:
		v->scroll = n;
		break;
	default:
		return;
	}
	v->scroll = clamp_scroll(v->scroll, n, v->rows_visible > 0 ? v->rows_visible : 1);
}

void gd__ui_render(WINDOW *w, const gd__ui_snap *s, gd__ui_view *v)
{
	int rows = getmaxy(w), width = getmaxx(w);
	werase(w);
	if (rows < GD__UI_MIN_ROWS || width < GD__UI_MIN_COLS) {
		putf(w, 0, 0, width, A_BOLD, "too small (%dx%d): gpudispatch", width, rows);
		if (rows > 1)
			putf(w, 1, 0, width, A_NORMAL, "%llu/%llu done",
			     (unsigned long long)gd__ui_done(&s->st),
			     (unsigned long long)s->st.total_hint);
		v->rows_visible = 0;
		return;
	}
	char el[16];
	gd__ui_fmt_duration(el, sizeof(el), gd__ui_elapsed(s));
	int x = put(w, 0, 0, width, A_BOLD, "gpudispatch");
	if (s->ended)
		putf(w, 0, x, width - x, A_NORMAL, " | %d workers | elapsed %s | run ended (%d)",
		     s->st.n_workers, el, s->rc);
	else
		putf(w, 0, x, width - x, A_NORMAL, " | %d workers | elapsed %s | q: stop  ?: help",
		     s->st.n_workers, el);
	progress_line(w, 1, width, s, v);
	counts_line(w, 2, width, s, v);
	status_summary(w, 3, width, s, v);

	struct layout L;
	int gpu_w = 3;
	for (int i = 0; i < s->st.n_workers; i++) {
		char g[96];
		gpu_text(g, sizeof(g), &s->st.workers[i]);
		if ((int)strlen(g) > gpu_w)
			gpu_w = (int)strlen(g);
	}
	layout_columns(&L, width, gpu_w);
	table_header(w, 4, &L, width);

	/* the failure reasons, most frequent first, above the footer: up to
	 * GD__UI_REASON_ROWS of them while 3 worker rows still fit */
	int ridx[GD__UI_REASON_ROWS];
	int nr = gd__reasons_sorted(&s->reasons, ridx, GD__UI_REASON_ROWS);
	while (nr > 0 && rows - HEADER_LINES - 1 - nr < 3)
		nr--;
	for (int k = 0; k < nr; k++) {
		char buf[GD__REASON_LEN + 160];
		gd__reason_format(buf, sizeof(buf), gd__reasons_at(&s->reasons, ridx[k]),
		                  v->utf8 ? "×" : "x");
		put(w, rows - 1 - nr + k, 0, width,
		    v->color ? COLOR_PAIR(GD__PAIR_ERROR) : A_NORMAL, buf);
	}

	int visible = rows - HEADER_LINES - 1 - nr, n = s->st.n_workers;
	v->rows_visible = visible;
	v->scroll = clamp_scroll(v->scroll, n, visible);
	int shown = 0;
	for (int i = v->scroll; i < n && shown < visible; i++, shown++)
		worker_row(w, HEADER_LINES + shown, &L, s, &s->st.workers[i], v);
	if (!n)
		put(w, HEADER_LINES, 0, width, A_DIM, "waiting for the workers...");
	footer(w, rows - 1, width, s, v, v->scroll, shown);
	if (v->help)
		help_box(w, rows, width);
}
