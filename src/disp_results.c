/*
 * Rank 0 hears the workers: every record they send (HELLO, READY,
 * SETUP_FAIL, results, CLEANUP_FAIL, BYE), checked against what each holds;
 * a result is journaled, counted, retried or reported, and its slot freed.
 */
#define _GNU_SOURCE
#include "disp.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct mctx {
	disp *d;
	int i;
} mctx;

/* Open worker i's drops, named in its HELLO, when it runs on this node:
 * through /proc, and only what is a gpudispatch drop holding the worker's
 * token.  Anything else leaves its large tasks to MPI. */
static void drops_open(disp *d, int i, const gd__hello *h)
{
	wk *w = &d->w[i];

	if (!d->drops_ok || !h->drop_token || strcmp(h->host, d->host) || w->drop[0].fd >= 0)
		return;
	if (gd__shm_drops_open(w->drop, (int)h->pid, h->drop_fd, h->drop_token) == 0)
		w->big_max = GD_DROPS; /* before it holds any task: READY comes later */
}

/* Take task_id out of worker i's ring.  Results come in order, except that
 * a task that timed out or crashed its executor is reported at once while
 * tasks before it, whose results died with the executor, run again. */
static int pop_task(disp *d, int i, uint64_t task_id, int *si_out)
{
	wk *w = &d->w[i];
	unsigned k;

	for (k = 0; k < w->held.count; k++)
		if (d->slots[gd__ring_at(&w->held, k)].task_id == task_id)
			break;
	if (k == w->held.count) {
		snprintf(d->err, sizeof(d->err), "a result for task %llu, which it does not hold",
		         (unsigned long long)task_id);
		return GD_EPROTO;
	}
	*si_out = gd__ring_take(&w->held, k); /* the oldest stay in order */
	gd__disp_drop_release(d, i, *si_out);
	d->inflight--;
	w->last_done = d->now;
	gd__disp_mark_hungry(d, i);
	return 0;
}

/* Worker i holds nothing any more: give its tasks back to the queue, or
 * abandon them when the run is stopping now. */
void gd__disp_take_back(disp *d, int i)
{
	wk *w = &d->w[i];

	while (w->held.count) {
		int si = gd__ring_pop(&w->held);

		gd__disp_drop_release(d, i, si);
		d->inflight--;
		d->slots[si].last_worker = i; /* run it elsewhere; NOT_DONE names i */
		if (d->term.level)
			gd__disp_abandon(d, si, i);
		else
			gd__disp_requeue(d, si);
	}
	gd__disp_update_row(d, i);
}

static void add_hist(slot *s, uint32_t attempt, int worker, const char *msg)
{
	size_t n;

	if (!s->hist) {
		s->hist = calloc(1, HIST_MAX);
		if (!s->hist)
			return;
	}
	n = strlen(s->hist);
	snprintf(s->hist + n, HIST_MAX - n, "attempt %u on worker %d: %s; ", attempt, worker, msg);
}

/* Record a final outcome; the journal is written before the user hears of
 * it, so a result the user saw is never missing from the journal after a
 * clean stop. */
static void journal(disp *d, const gd_event *ev, int status, const gd_worker_stats *row)
{
	gd_event e = *ev;

	if (!d->j)
		return;
	if (!e.message)
		e.message = "";
	if (gd__journal_add(d->j, &e, status, row, d->cfg->journal_extra,
	                    d->cfg->journal_extra_user) == GD_ENOMEM)
		d->rc = d->rc ? d->rc : GD_ENOMEM;
}

/* A task ended: is cfg.halt's condition met?  (The loop acts on it.) */
static void check_halt(disp *d)
{
	int want;

	if (!d->cfg->halt || d->halt == GD_STOP_NOW)
		return;
	want = gd__term_halt(d->cfg, d->st);
	if (want > d->halt) {
		d->halt = want;
		d->st->halted = want;
	}
}

/*
 * cfg.quarantine: worker i's last K attempts failed.  While no other worker
 * has succeeded it is not the worker's fault (all failing is the tasks'); once
 * one has, worker i takes no new task.  Tasks it holds still report; their
 * failures are retried on other workers as cfg.retries allows.
 */
static void maybe_quarantine(disp *d, int i, const char *last_error)
{
	gd_worker_stats *row = &d->st->workers[i];
	wk *w = &d->w[i];

	if (!d->cfg->quarantine || w->quarantined || w->state != W_READY ||
	    w->fails_in_row < d->cfg->quarantine || d->st->completed <= row->completed)
		return;
	w->quarantined = 1;
	d->live--;
	d->st->n_quarantined++;
	snprintf(row->message, sizeof(row->message), "quarantined: its last %u tasks failed: %s",
	         w->fails_in_row, last_error && last_error[0] ? last_error : "?");
	if (last_error)
		gd__strlcpy(w->last_error, last_error, sizeof(w->last_error));
	gd__logf(&d->log, GD_LOG_WARNING, "worker %d on %s %s", i, row->host, row->message);
	gd__disp_set_state(d, i, W_RETIRED);
	/* what it was given back may run elsewhere */
	for (int k = 0; k < d->nw; k++)
		gd__disp_mark_hungry(d, k);
}

/* Another worker succeeded: workers past the limit are quarantined now. */
static void quarantine_others(disp *d, int ok_worker)
{
	for (int k = 0; k < d->nw; k++)
		if (k != ok_worker && d->w[k].fails_in_row >= d->cfg->quarantine)
			maybe_quarantine(d, k, d->w[k].last_error);
}

static void on_result(disp *d, int i, const gd__rec *r, int si)
{
	slot *s = &d->slots[si];
	gd_worker_stats *row = &d->st->workers[i];
	char msg[4096 + HIST_MAX];
	gd_event ev = gd__disp_slot_event(d, si, 0, i);
	gd_event_fn fn;

	ev.elapsed_s = (double)r->aux * 1e-6;
	row->busy_s += ev.elapsed_s;
	gd__window_result(&d->win, ev.elapsed_s);
	if (d->dl > 0) {
		gd__dur_add(&d->w[i].dur, ev.elapsed_s);
		gd__dur_add(&d->dl_all, ev.elapsed_s);
	}
	if (r->type == GD_REC_SUCCESS) {
		row->completed++;
		d->st->completed++;
		d->w[i].fails_in_row = 0;
		if (d->cfg->quarantine)
			quarantine_others(d, i);
		ev.type = GD_EV_SUCCESS;
		ev.data = r->payload;
		ev.len = r->len;
		gd__disp_update_row(d, i);
		journal(d, &ev, GD_JS_OK, row);
		gd__disp_emit(d, d->cb->on_success, &ev);
		gd__disp_slot_free(d, si);
		if (d->cfg->halt)
			check_halt(d);
		return;
	}
	const uint8_t *text;
	uint32_t text_len;
	gd__exit_get(r, &ev.exit, &text, &text_len); /* checked by on_record() */
	snprintf(msg, sizeof(msg), "%.*s", (int)GD__MIN(text_len, 4095u), (const char *)text);
	if (d->cfg->quarantine) {
		d->w[i].fails_in_row++;
		if (r->type == GD_REC_TIMEOUT && !msg[0])
			gd__strlcpy(d->w[i].last_error, "timed out", sizeof(d->w[i].last_error));
		else
			gd__strlcpy(d->w[i].last_error, msg, sizeof(d->w[i].last_error));
		maybe_quarantine(d, i, d->w[i].last_error);
	}
	if (s->attempt <= d->cfg->retries && !d->term.level) {
		add_hist(s, s->attempt, i, msg);
		d->st->retried++;
		ev.type = GD_EV_RETRY;
		ev.message = msg;
		gd__disp_update_row(d, i);
		gd__disp_emit(d, d->cb->on_retry, &ev);
		s->attempt++;
		s->last_worker = i;
		gd__disp_requeue(d, si);
		return;
	}
	if (s->hist && s->hist[0]) {
		/* every attempt's error, the last one last */
		size_t n = strlen(msg);
		char last[4096];

		memcpy(last, msg, n + 1);
		snprintf(msg, sizeof(msg), "%sattempt %u on worker %d: %s", s->hist, s->attempt, i,
		         last);
	}
	ev.message = msg;
	if (r->type == GD_REC_TIMEOUT) {
		row->timed_out++;
		d->st->timed_out++;
		ev.type = GD_EV_TIMEOUT;
		ev.timeout_s = d->cfg->task_timeout;
		fn = d->cb->on_timeout;
	} else {
		row->failed++;
		d->st->failed++;
		ev.type = GD_EV_ERROR;
		fn = d->cb->on_error;
	}
	gd__disp_update_row(d, i);
	journal(d, &ev, r->type == GD_REC_TIMEOUT ? GD_JS_TIMEOUT : GD_JS_ERROR, row);
	gd__disp_emit(d, fn, &ev);
	gd__disp_slot_free(d, si);
	if (d->cfg->halt)
		check_halt(d);
}

static void retire_worker(disp *d, int i, const char *why)
{
	gd_worker_stats *row = &d->st->workers[i];
	gd_event ev = {.type = GD_EV_SETUP_FAIL, .worker_id = i, .message = why};

	if (d->w[i].state == W_READY)
		d->live--;
	else if (d->w[i].state == W_INIT)
		d->pending--;
	gd__strlcpy(row->message, why, sizeof(row->message));
	d->st->n_setup_failed++;
	gd__disp_take_back(d, i);
	gd__disp_set_state(d, i, W_RETIRED);
	gd__disp_emit(d, d->cb->on_setup_fail, &ev);
}

void gd__disp_warn_flush(disp *d)
{
	if (!d->warn_n)
		return;
	if (d->warn_n == 1)
		gd__logf(&d->log, GD_LOG_WARNING, "worker %d on %s: %s", d->warn_first,
		         d->warn_host, d->warn);
	else
		gd__logf(&d->log, GD_LOG_WARNING, "%d workers (worker %d on %s%s): %s", d->warn_n,
		         d->warn_first, d->warn_host, d->warn_hosts ? " and others" : "", d->warn);
	d->warn_n = 0;
}

/* The workers of a node share its placement warning ("worker shares its
 * CPU"): one line for all of them, not one each. */
static void hold_warning(disp *d, int i, const char *host, const char *warning)
{
	if (d->warn_n && strcmp(d->warn, warning))
		gd__disp_warn_flush(d); /* a different one: say the held one first */
	if (!d->warn_n) {
		gd__strlcpy(d->warn, warning, sizeof(d->warn));
		gd__strlcpy(d->warn_host, host, sizeof(d->warn_host));
		d->warn_first = i;
		d->warn_hosts = 0;
	} else if (strcmp(d->warn_host, host)) {
		d->warn_hosts = 1;
	}
	d->warn_n++;
}

static int on_record(void *ctx, const gd__rec *r)
{
	mctx *c = ctx;
	disp *d = c->d;
	int i = c->i, si, rc;
	gd_worker_stats *row = &d->st->workers[i];
	char msg[4096];

	if (r->worker != (uint32_t)i) {
		snprintf(d->err, sizeof(d->err), "a %s record signed by worker %u",
		         gd__rec_type_name(r->type), r->worker);
		return GD_EPROTO;
	}
	if (d->w[i].state == W_GONE) {
		snprintf(d->err, sizeof(d->err), "a %s record after BYE",
		         gd__rec_type_name(r->type));
		return GD_EPROTO;
	}
	switch (r->type) {
	case GD_REC_HELLO: {
		gd__hello h;

		if (gd__hello_unpack(r->payload, r->len, &h)) {
			snprintf(d->err, sizeof(d->err), "a malformed HELLO record");
			return GD_EPROTO;
		}
		row->pid = h.pid;
		gd__strlcpy(row->host, h.host, sizeof(row->host));
		row->gpu = h.gpu;
		row->n_gpus = h.n_gpus;
		memcpy(row->gpu_indices, h.gpu_indices, sizeof(row->gpu_indices));
		drops_open(d, i, &h);
		if (h.note[0])
			gd__strlcpy(row->message, h.note, sizeof(row->message));
		if (h.warning[0]) {
			gd__strlcpy(row->message, h.warning, sizeof(row->message));
			hold_warning(d, i, h.host, h.warning);
		}
		if (++d->hellos == d->nw)
			gd__disp_warn_flush(d);
		/* once: every CPU worker has the same note */
		if (h.note[0] && !d->cpu_note_shown) {
			gd__logf(&d->log, GD_LOG_INFO, "%s", h.note);
			d->cpu_note_shown = 1;
		}
		gd__disp_set_state(d, i, W_INIT);
		return 0;
	}
	case GD_REC_READY:
		if (d->w[i].state != W_INIT)
			break;
		d->pending--;
		d->live++;
		gd__disp_set_state(d, i, W_READY);
		gd__disp_mark_hungry(d, i);
		return 0;
	case GD_REC_SETUP_FAIL:
		if (d->w[i].state != W_INIT && d->w[i].state != W_READY)
			break;
		snprintf(msg, sizeof(msg), "%.*s", (int)GD__MIN(r->len, 4095u),
		         (const char *)r->payload);
		retire_worker(d, i, msg);
		return 0;
	case GD_REC_SUCCESS:
	case GD_REC_ERROR:
	case GD_REC_TIMEOUT:
		if (r->type == GD_REC_ERROR && r->len < GD_EXIT_BYTES && (r->flags & GD_RF_EXIT)) {
			snprintf(d->err, sizeof(d->err),
			         "an ERROR record too short for its exit status");
			return GD_EPROTO;
		}
		if ((rc = pop_task(d, i, r->task_id, &si)))
			return rc;
		/* the worker replaced its executor (or its program) for each of these */
		if (r->type == GD_REC_TIMEOUT || (r->flags & (GD_RF_CRASH | GD_RF_RESTART)))
			row->restarts++;
		on_result(d, i, r, si);
		return 0;
	case GD_REC_CLEANUP_FAIL: {
		gd_event ev = {.type = GD_EV_CLEANUP_FAIL, .worker_id = i, .message = msg};

		snprintf(msg, sizeof(msg), "%.*s", (int)GD__MIN(r->len, 4095u),
		         (const char *)r->payload);
		gd__strlcpy(row->message, msg, sizeof(row->message));
		gd__disp_emit(d, d->cb->on_cleanup_fail, &ev);
		return 0;
	}
	case GD_REC_PING:
		return 0; /* gd__disp_receive() noted when it came */
	case GD_REC_BYE:
		if (d->w[i].state == W_READY)
			d->live--;
		else if (d->w[i].state == W_INIT)
			d->pending--;
		gd__disp_take_back(d, i);
		d->gone++;
		gd__disp_set_state(d, i, W_GONE);
		return 0;
	default:
		break;
	}
	snprintf(d->err, sizeof(d->err), "an unexpected %s record", gd__rec_type_name(r->type));
	return GD_EPROTO;
}

/* Receive one message if there is one.  \return 1 if one was handled. */
int gd__disp_receive(disp *d)
{
	MPI_Message msg;
	MPI_Status st;
	int flag = 0, count = 0, i, rc, lost = 0;

	if (gd__mpi(MPI_Improbe(MPI_ANY_SOURCE, GD__TAG, d->comm, &flag, &msg, &st),
	            "MPI_Improbe")) {
		d->rc = GD_EMPI;
		return 0;
	}
	if (!flag)
		return 0;
	if (gd__mpi(MPI_Get_count(&st, MPI_BYTE, &count), "MPI_Get_count"))
		lost = GD_EMPI;
	else if (gd__bytes_reserve(&d->rbuf, (size_t)count + 1))
		lost = GD_ENOMEM;
	if (lost ? gd__mpi_discard(&msg)
	         : gd__mpi(MPI_Mrecv(d->rbuf.p, count, MPI_BYTE, &msg, MPI_STATUS_IGNORE),
	                   "MPI_Mrecv"))
		lost = GD_EMPI;
	if (lost) {
		/* the run stops: this message is lost, the next ones are read */
		d->rc = d->rc ? d->rc : lost;
		return 1;
	}
	i = st.MPI_SOURCE - 1;
	d->now = gd_now();
	d->w[i].last_heard = d->now;
	d->st->elapsed_s = d->now - d->st->start_time;
	mctx c = {d, i};
	d->err[0] = '\0';
	rc = gd__msg_foreach(d->rbuf.p, (size_t)count, on_record, &c, d->err, sizeof(d->err));
	if (rc == GD_EPROTO && d->w[i].state != W_GONE) {
		/* what was decoded before the bad record stands; the worker is
		 * not trusted with more work */
		char why[320];

		snprintf(why, sizeof(why), "malformed message from worker %d (rank %d): %s", i,
		         i + 1, d->err);
		gd__logf(&d->log, GD_LOG_ERROR, "%s", why);
		if (d->w[i].state == W_INIT || d->w[i].state == W_READY)
			retire_worker(d, i, why);
		if (!d->w[i].abort_sent)
			gd__disp_send_ctl(d, i, GD_REC_ABORT);
	}
	return 1;
}
