/*
 * The dashboard's model: see ui_model.h.
 *
 * Cost on the dispatcher's thread is what matters (the benchmark holds it to
 * a few percent).  A task event only remembers that something changed; the
 * model takes a copy of the live statistics (totals and every row) when the
 * UI thread has asked for news, at most once per refresh: in the next event
 * or at the next tick (on_tick, which the UI asks for twice per refresh).
 * So the dashboard shows the run as it was at most one refresh period ago,
 * and the dispatcher pays one memcpy per refresh rather than a lock per
 * event.  Worker events (host, GPU, state) are taken at once.  The ticks
 * take the statistics even without a task event: the dashboard wraps no
 * task callback the application did not set, so that a task costs the
 * dispatcher no call.
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ui_model.h"

void gd__ui_rate_init(gd__ui_rate *r, double window_s)
{
	memset(r, 0, sizeof(*r));
	r->head = -1;
	r->window_s = window_s > 0 ? window_s : GD__UI_RATE_WINDOW_S;
}

void gd__ui_rate_add(gd__ui_rate *r, double t, uint64_t done)
{
	r->head = (r->head + 1) % GD__UI_RATE_SAMPLES;
	r->t[r->head] = t;
	r->done[r->head] = done;
	if (r->n < GD__UI_RATE_SAMPLES)
		r->n++;
}

double gd__ui_rate_get(const gd__ui_rate *r)
{
	if (r->n < 2)
		return -1;
	int newest = r->head;
	double t1 = r->t[newest];
	/* Walk back to the oldest sample still inside the window. */
	int oldest = newest;
	for (int k = 1; k < r->n; k++) {
		int i = (newest - k + GD__UI_RATE_SAMPLES) % GD__UI_RATE_SAMPLES;
		if (t1 - r->t[i] > r->window_s)
			break;
		oldest = i;
	}
	double dt = t1 - r->t[oldest];
	if (oldest == newest || dt <= 0)
		return -1;
	uint64_t d0 = r->done[oldest], d1 = r->done[newest];
	return d1 >= d0 ? (double)(d1 - d0) / dt : 0;
}

void gd__ui_snap_free(gd__ui_snap *s)
{
	free(s->st.workers);
	s->st.workers = NULL;
	s->st.n_workers = 0;
	s->cap = 0;
}

/* Make room for n rows (new rows zeroed). \return 0 or GD_ENOMEM. */
static int snap_reserve(gd__ui_snap *s, int n)
{
	if (n <= s->cap)
		return 0;
	gd_worker_stats *w = realloc(s->st.workers, (size_t)n * sizeof(*w));
	if (!w)
		return GD_ENOMEM;
	memset(w + s->cap, 0, (size_t)(n - s->cap) * sizeof(*w));
	s->st.workers = w;
	s->cap = n;
	return 0;
}

/* Copy the totals of src into dst, keeping dst's rows. */
static void copy_totals(gd_stats *dst, const gd_stats *src)
{
	gd_worker_stats *rows = dst->workers;
	int n = dst->n_workers;
	*dst = *src;
	dst->workers = rows;
	dst->n_workers = n;
}

int gd__ui_snap_copy(gd__ui_snap *dst, const gd__ui_snap *src)
{
	if (snap_reserve(dst, src->st.n_workers))
		return GD_ENOMEM;
	gd_worker_stats *rows = dst->st.workers;
	int cap = dst->cap;
	*dst = *src;
	dst->st.workers = rows;
	dst->cap = cap;
	if (src->st.n_workers > 0)
		memcpy(rows, src->st.workers, (size_t)src->st.n_workers * sizeof(*rows));
	return 0;
}

uint64_t gd__ui_done(const gd_stats *st)
{
	return st->completed + st->failed + st->timed_out;
}

double gd__ui_elapsed(const gd__ui_snap *s)
{
	if (s->ended && s->st.elapsed_s > 0)
		return s->st.elapsed_s;
	double e = s->now - s->st.start_time;
	return e > 0 ? e : 0;
}

double gd__ui_stats_time(const gd__ui_snap *s)
{
	return s->taken > 0 ? s->taken : s->now;
}

double gd__ui_eta(const gd__ui_snap *s)
{
	uint64_t total = s->st.total_hint, done = gd__ui_done(&s->st);
	uint64_t left = done >= total ? 0 : total - done, inflight = 0;
	double busy = 0, eta = -1, bound = 0, t = gd__ui_stats_time(s);

	if (!total || s->ended)
		return -1;
	for (int i = 0; s->st.workers && i < s->st.n_workers; i++) {
		const gd_worker_stats *w = &s->st.workers[i];

		busy += w->busy_s;
		inflight += w->in_flight;
	}
	if (!left && !inflight)
		return 0;
	if (left && s->rate > 0)
		eta = (double)left / s->rate;
	/* the running tasks: each needs about the mean task time so far */
	if (done && inflight) {
		double mean = busy / (double)done;

		for (int i = 0; i < s->st.n_workers; i++) {
			const gd_worker_stats *w = &s->st.workers[i];
			double need = mean - (t - w->current_since);

			if (w->in_flight && w->state == GD_WS_BUSY && need > bound)
				bound = need;
		}
		if (eta < bound && (eta >= 0 || left <= inflight))
			eta = bound;
	}
	if (eta < 0)
		return -1;
	return eta < 1 ? 1 : eta; /* something still runs: not 00:00 */
}

char *gd__ui_fmt_duration(char *buf, size_t n, double s)
{
	if (s < 0 || s > 1e9) {
		snprintf(buf, n, "--:--");
		return buf;
	}
	unsigned long t = (unsigned long)(s + 0.5);
	if (t >= 3600)
		snprintf(buf, n, "%lu:%02lu:%02lu", t / 3600, t / 60 % 60, t % 60);
	else
		snprintf(buf, n, "%02lu:%02lu", t / 60, t % 60);
	return buf;
}

int gd__ui_model_init(gd__ui_model *m, const gd_config *cfg, double now)
{
	memset(m, 0, sizeof(*m));
	if (pthread_mutex_init(&m->lock, NULL))
		return GD_ESYS;
	m->cur.st.start_time = now;
	m->cur.st.total_hint = cfg ? cfg->total_hint : 0;
	m->cur.timeout_s = cfg ? cfg->task_timeout : 0;
	m->cur.rate = -1;
	m->want = 1;
	gd__ui_rate_init(&m->rate, GD__UI_RATE_WINDOW_S);
	return 0;
}

void gd__ui_model_destroy(gd__ui_model *m)
{
	gd__ui_snap_free(&m->cur);
	pthread_mutex_destroy(&m->lock);
}

/* Take every row and the totals of st into the model. */
static void take_stats(gd__ui_model *m, const gd_stats *st)
{
	gd__ui_snap *c = &m->cur;
	int n = st->n_workers;
	if (n < 0 || !st->workers)
		n = 0;
	if (n != c->st.n_workers && snap_reserve(c, n) == 0)
		c->st.n_workers = n; /* out of memory: keep the rows we have */
	copy_totals(&c->st, st);
	c->have_stats = 1;
	c->taken = gd_now();
	c->folds++;
	if (m->reasons.total != c->reasons.total)
		c->reasons = m->reasons;
	if (c->st.n_workers > 0)
		memcpy(c->st.workers, st->workers,
		       (size_t)c->st.n_workers * sizeof(*c->st.workers));
}

/*
 * The dispatcher's thread never waits for the lock.  The UI thread holds it
 * while it copies a snapshot, and on a node where busy ranks share the
 * cores it can be preempted there: the dispatcher, which hands out every
 * task, would sleep until the UI thread ran again.  When the lock is taken
 * the news wait for the next poll, which takes the whole statistics anyway.
 */
static void fold(gd__ui_model *m)
{
	if (pthread_mutex_trylock(&m->lock)) {
		__atomic_store_n(&m->want, 1, __ATOMIC_RELAXED);
		return;
	}
	take_stats(m, m->live);
	__atomic_store_n(&m->want, 0, __ATOMIC_RELAXED);
	pthread_mutex_unlock(&m->lock);
}

void gd__ui_model_event(gd__ui_model *m, const gd_event *ev)
{
	if (!ev || !ev->stats)
		return;
	m->live = ev->stats;
	if (ev->type == GD_EV_ERROR || ev->type == GD_EV_TIMEOUT)
		gd__reasons_add(&m->reasons, ev->task_id, ev->message);
	if (ev->type == GD_EV_WORKER || ev->type == GD_EV_SETUP_FAIL ||
	    ev->type == GD_EV_CLEANUP_FAIL || __atomic_load_n(&m->want, __ATOMIC_RELAXED))
		fold(m);
}

void gd__ui_model_tick(gd__ui_model *m, const gd_stats *st)
{
	if (!st)
		return;
	m->live = st;
	if (__atomic_load_n(&m->want, __ATOMIC_RELAXED))
		fold(m);
}

void gd__ui_model_start(gd__ui_model *m, const gd_stats *st)
{
	if (!st)
		return;
	pthread_mutex_lock(&m->lock);
	take_stats(m, st);
	pthread_mutex_unlock(&m->lock);
}

void gd__ui_model_exit(gd__ui_model *m, const gd_stats *st, int rc)
{
	pthread_mutex_lock(&m->lock);
	if (st)
		take_stats(m, st);
	m->cur.ended = 1;
	m->cur.rc = rc;
	pthread_mutex_unlock(&m->lock);
}

int gd__ui_model_request_stop(gd__ui_model *m, int level)
{
	pthread_mutex_lock(&m->lock);
	if (level > m->cur.stop)
		__atomic_store_n(&m->cur.stop, level, __ATOMIC_RELAXED);
	level = m->cur.stop;
	pthread_mutex_unlock(&m->lock);
	return level;
}

/*
 * Lock-free: the dispatcher polls this often.  Writers store under the lock
 * with an atomic store, so a relaxed atomic load is enough here.
 */
int gd__ui_model_stop_level(gd__ui_model *m)
{
	return __atomic_load_n(&m->cur.stop, __ATOMIC_RELAXED);
}

void gd__ui_model_ask(gd__ui_model *m)
{
	__atomic_store_n(&m->want, 1, __ATOMIC_RELAXED);
}

uint64_t gd__ui_model_folds(gd__ui_model *m)
{
	pthread_mutex_lock(&m->lock);
	uint64_t n = m->cur.folds;
	pthread_mutex_unlock(&m->lock);
	return n;
}

int gd__ui_model_snapshot(gd__ui_model *m, gd__ui_snap *out, double now)
{
	pthread_mutex_lock(&m->lock);
	m->cur.now = now;
	gd__ui_rate_add(&m->rate, now, gd__ui_done(&m->cur.st));
	m->cur.rate = gd__ui_rate_get(&m->rate);
	int rc = gd__ui_snap_copy(out, &m->cur);
	__atomic_store_n(&m->want, 1, __ATOMIC_RELAXED);
	pthread_mutex_unlock(&m->lock);
	return rc;
}

const char *gd__ui_gpus(char *buf, size_t n, const gd_worker_stats *ws)
{
	size_t used = 0;

	if (ws->gpu.index < 0) {
		snprintf(buf, n, "cpu");
		return buf;
	}
	if (ws->n_gpus <= 1) {
		snprintf(buf, n, "%d", ws->gpu.index);
		return buf;
	}
	buf[0] = '\0';
	for (int k = 0; k < ws->n_gpus && k < GD_MAX_WORKER_GPUS && used < n; k++)
		used += (size_t)snprintf(buf + used, n - used, "%s%d", k ? "," : "",
		                         ws->gpu_indices[k]);
	return buf;
}
