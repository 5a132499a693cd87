/*
 * Rank 0: the dispatcher.
 *
 * Memory is a fixed pool of workers x window task slots.  The generator is
 * called only when a worker has a free credit, and writes straight into a
 * free slot's buffer (behind room for the record header), so a task goes out
 * without a copy and stays in its slot until its result is in: that is what
 * lets a task be re-queued (retry, or a worker that retires) and what bounds
 * memory by workers x window x task size, however many tasks there are.
 * Small tasks for one worker are batched into one message under the eager
 * limit; a large one is written into one of its worker's drops when the
 * worker runs on this node (wire.h), else sent from its slot.
 */
#define _GNU_SOURCE
#include "journal.h"
#include "ring.h"
#include "backoff.h"
#include "roles.h"
#include "termination.h"
#include "window.h"

#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

enum { W_INIT, W_READY, W_RETIRED, W_GONE };

#define HIST_MAX 1024 /* bytes of error history kept per retried task */

typedef struct slot {
	gd__bytes b; /* [record header | payload] */
	uint64_t task_id;
	uint16_t attempt;
	int worker;      /* holder, -1 = none */
	int last_worker; /* where the last attempt ran, -1 = none */
	MPI_Request req; /* a send straight from b */
	int in_sfly;     /* listed in disp.sfly */
	double dispatched_at;
	int next_free;
	char *hist; /* "attempt 1 on worker 2: ...; " for retries, NULL = none */
	int drop;   /* the drop of its worker that holds the payload, -1 = none */
	uint8_t dmsg[GD_REC_HDR + GD_SHM_DESC]; /* then what is sent: TASK_DROP */
} slot;

typedef struct wk {
	int state;
	int stop_sent;    /* STOP went out (the end) */
	int abort_sent;   /* ABORT went out (stop now); may follow a STOP */
	gd__ring held;    /* slots held, oldest first (at most W) */
	unsigned big;     /* of which past the eager limit */
	unsigned big_max; /* how many of those it may hold */
	double last_done;
	/* the worker's drops, mapped here when it shares this node */
	gd__shm drop[GD_DROPS];  /* fd -1 = none */
	int drop_slot[GD_DROPS]; /* the slot whose payload it holds, -1 = free */
} wk;

typedef struct batch {
	uint8_t *p;
	MPI_Request req;
} batch;

typedef struct disp {
	MPI_Comm comm;
	int nw;
	const gd_config *cfg;
	const gd_callbacks *cb;
	gd_generator_fn gen;
	void *gen_state;
	gd_stats *st;

	slot *slots;
	int nslots;
	int free_head;
	gd__ring rq; /* re-queued slots */
	wk *w;
	batch *batches; /* buffers made on first use */
	int nbatches;
	int *bfree; /* free batch buffers (made), a stack */
	int nbfree;
	int nalloc;    /* batches[0 .. nalloc) have their buffer */
	gd__ring bfly; /* batches being sent, oldest first */
	int big_full;  /* workers holding as many large tasks as they may */
	gd__ring sfly; /* slots sent on their own (large tasks) not known done */
	double now;    /* the clock, read once per loop */
	gd__window win;

	int gen_done;
	int gen_err;
	uint64_t next_id;
	gd__term term;
	int live;    /* workers READY */
	int pending; /* workers INIT */
	int gone;
	uint64_t inflight;
	int starved;     /* a worker with credit found no free slot */
	gd__ring hungry; /* workers that may have a free credit */
	char *in_hungry;
	int cpu_note_shown;
	int drops_ok;     /* large tasks may go through drops (cfg->shm) */
	double next_tick; /* when on_tick is due */
	gd__logger log;   /* the application's on_log, or stderr */
	char host[64];
	int rc;

	gd__journal *j;
	gd__bytes rbuf;
	char err[256];
} disp;

/* ------------------------------------------------------------ events */

static void emit(disp *d, gd_event_fn fn, gd_event *ev)
{
	if (!fn)
		return;
	ev->stats = d->st;
	if (!ev->message)
		ev->message = "";
	fn(d->cb->user, ev);
}

static void update_row(disp *d, int i)
{
	gd_worker_stats *row = &d->st->workers[i];
	wk *w = &d->w[i];

	row->in_flight = w->held.count;
	if (w->held.count) {
		slot *s = &d->slots[gd__ring_at(&w->held, 0)];

		row->current_task = s->task_id;
		row->current_since = GD__MAX(s->dispatched_at, w->last_done);
	}
	if (w->state == W_READY)
		row->state = w->held.count ? GD_WS_BUSY : GD_WS_IDLE;
}

static void set_state(disp *d, int i, int state)
{
	gd_event ev = {.type = GD_EV_WORKER, .worker_id = i};

	d->w[i].state = state;
	if (state == W_READY)
		d->st->workers[i].state = GD_WS_IDLE;
	else if (state == W_RETIRED)
		d->st->workers[i].state = GD_WS_ERROR;
	else if (state == W_GONE && d->st->workers[i].state != GD_WS_ERROR)
		d->st->workers[i].state = GD_WS_DONE;
	update_row(d, i);
	emit(d, d->cb->on_worker, &ev);
}

/* ------------------------------------------------------------ slots */

/* Past the eager limit: written into a drop, or sent on its own (rendezvous).
 * A worker holds w->big_max of them at most: GD_BIG_MAX, or GD_DROPS once
 * its drops are open (shm.h says why). */
#define BIG(s) gd__shm_large((s)->b.len)

/* Credits per worker now (window.h). */
static unsigned credit_window(const disp *d)
{
	return gd__window_credit(&d->win, d->cfg->total_hint, d->next_id, d->live);
}

/* Worker i may take another task (a credit, and room for a large one). */
static int has_credit(const disp *d, int i)
{
	const wk *w = &d->w[i];

	return w->held.count < credit_window(d) && w->big < w->big_max;
}

/* What goes out for a slot: its TASK_DROP record, or the task itself. */
static const uint8_t *slot_wire(const slot *s)
{
	return s->drop >= 0 ? s->dmsg : s->b.p;
}

static size_t slot_wire_len(const slot *s)
{
	return s->drop >= 0 ? sizeof(s->dmsg) : s->b.len;
}

/* Write slot si's payload into a free drop of worker i (grown as needed)
 * and make its TASK_DROP record from r.  \return 1 if it is in a drop, 0 if
 * it goes through MPI (no drop here, or the drop could not grow). */
static int drop_put(disp *d, int i, int si, const gd__rec *r)
{
	wk *w = &d->w[i];
	slot *s = &d->slots[si];
	size_t len = s->b.len - GD_REC_HDR;
	unsigned k;

	for (k = 0; k < GD_DROPS && (w->drop[k].fd < 0 || w->drop_slot[k] >= 0); k++)
		;
	if (k == GD_DROPS)
		return 0;
	/* a drop that cannot grow is given up: its tasks take MPI */
	if (gd__shm_grow(&w->drop[k], GD_DROP_OFF + len)) {
		gd__shm_close(&w->drop[k]);
		return 0;
	}
	memcpy(w->drop[k].map + GD_DROP_OFF, s->b.p + GD_REC_HDR, len);

	gd__rec_desc_put(s->dmsg, r, GD_REC_TASK_DROP, k, GD_DROP_OFF, len);
	s->drop = (int)k;
	w->drop_slot[k] = si;
	return 1;
}

/* Slot si has left worker i (a result, or taken back): so has its drop. */
static void drop_release(disp *d, int i, int si)
{
	slot *s = &d->slots[si];

	if (BIG(s) && d->w[i].big-- == d->w[i].big_max)
		d->big_full--;
	if (s->drop >= 0)
		d->w[i].drop_slot[s->drop] = -1;
	s->drop = -1;
}

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

static void slot_wait(slot *s)
{
	/* a send that failed is given up: the run stops on the error that
	 * gd__mpi() logged, and the slot is free either way */
	if (s->req != MPI_REQUEST_NULL && gd__mpi(MPI_Wait(&s->req, MPI_STATUS_IGNORE), "MPI_Wait"))
		s->req = MPI_REQUEST_NULL;
}

/* An event about the task in slot si. */
static gd_event slot_event(disp *d, int si, gd_event_type type, int worker)
{
	slot *s = &d->slots[si];
	gd_event ev = {.type = type,
	               .exit = {.status = -1},
	               .worker_id = worker,
	               .task_id = s->task_id,
	               .attempt = s->attempt,
	               .task_data = s->b.p + GD_REC_HDR,
	               .task_len = s->b.len - GD_REC_HDR};

	return ev;
}

static void mark_hungry(disp *d, int i);

static void slot_free(disp *d, int si)
{
	slot *s = &d->slots[si];

	/* a worker left the hungry list for want of a slot: give it another
	 * chance (rare: slots are held by tasks waiting for a retry) */
	if (d->starved) {
		d->starved = 0;
		for (int i = 0; i < d->nw; i++)
			mark_hungry(d, i);
	}

	s->worker = -1;
	s->last_worker = -1;
	if (s->hist)
		s->hist[0] = '\0';
	s->next_free = d->free_head;
	d->free_head = si;
}

/* Worker i may take tasks: queue it for dispatch().  Keeping this list
 * makes rank 0's work per message independent of the number of workers. */
static void mark_hungry(disp *d, int i)
{
	if (d->in_hungry[i] || d->w[i].state != W_READY || !has_credit(d, i))
		return;
	d->in_hungry[i] = 1;
	gd__ring_push(&d->hungry, i);
}

static void requeue(disp *d, int si)
{
	gd__ring_push(&d->rq, si);
	d->slots[si].worker = -1;
	/* rare (retries, a retired worker): any worker with a credit may take it */
	for (int i = 0; i < d->nw; i++)
		mark_hungry(d, i);
}

/* Take the oldest re-queued slot that may run on worker i: not where it
 * last ran, unless no other worker is left.  \return -1 if none. */
static int take_requeued(disp *d, int i)
{
	for (unsigned k = 0; k < d->rq.count; k++)
		if (d->slots[gd__ring_at(&d->rq, k)].last_worker != i || d->live <= 1)
			return gd__ring_take(&d->rq, k); /* FIFO order kept */
	return -1;
}

/* Ask the generator for the next task that is not skipped.  \return the
 * slot, or -1 (no free slot, generator done or failed). */
static int generate(disp *d)
{
	while (!d->gen_done && !d->gen_err && d->free_head >= 0) {
		int si = d->free_head;
		slot *s = &d->slots[si];
		gd_buf buf = {.bytes = &s->b, .room = GD_REC_HDR};
		int rc;

		slot_wait(s);
		/* room for the header even when the generator writes nothing:
		 * once per slot, on its first use */
		if (gd__bytes_reserve(&s->b, GD_REC_HDR)) {
			d->gen_err = GD_ENOMEM;
			return -1;
		}
		s->b.len = GD_REC_HDR;
		rc = d->gen(d->gen_state, &buf);
		if (rc == 0) {
			d->gen_done = 1;
			return -1;
		}
		if (rc < 0) {
			d->gen_err = GD_EGENERATOR;
			gd__logf(&d->log, GD_LOG_ERROR,
			         "the task generator returned %d after %llu tasks", rc,
			         (unsigned long long)d->next_id);
			return -1;
		}
		if (s->b.len < GD_REC_HDR)
			s->b.len = GD_REC_HDR; /* generator set nothing: an empty task */
		s->task_id = d->next_id++;
		s->attempt = 1;
		if (d->j) {
			char why[256];

			rc = gd__journal_check(d->j, s->task_id, s->b.p + GD_REC_HDR,
			                       s->b.len - GD_REC_HDR, why, sizeof(why));
			if (rc < 0) {
				gd__logf(&d->log, GD_LOG_ERROR, "%s", why);
				d->gen_err = rc;
				return -1;
			}
			if (rc > 0) {
				d->st->skipped++;
				continue;
			}
		}
		if (d->cfg->skip) {
			rc = d->cfg->skip(d->cfg->skip_user, s->task_id, s->b.p + GD_REC_HDR,
			                  s->b.len - GD_REC_HDR);
			if (rc < 0) {
				/* the hook's own code stands */
				d->gen_err = rc;
				gd__logf(&d->log, GD_LOG_ERROR,
				         "the skip hook returned %d for task %llu", rc,
				         (unsigned long long)s->task_id);
				return -1;
			}
			if (rc > 0) {
				d->st->skipped++;
				continue;
			}
		}
		d->free_head = s->next_free;
		d->st->total++;
		return si;
	}
	return -1;
}

/* ------------------------------------------------------------ sending */

/* A free batch buffer, or NULL.  Sends are tested only when no buffer is
 * free (a test that fails runs MPI's progress engine, and with many workers
 * the oldest send is often to a worker that has not taken it yet); a new
 * buffer is made only when none of the sent ones has completed. */
static batch *get_batch(disp *d)
{
	if (!d->nbfree) {
		while (d->bfly.count) {
			int b = gd__ring_at(&d->bfly, 0), flag = 0;

			if (gd__mpi(MPI_Test(&d->batches[b].req, &flag, MPI_STATUS_IGNORE),
			            "MPI_Test"))
				return NULL;
			if (!flag)
				break;
			gd__ring_pop(&d->bfly);
			d->bfree[d->nbfree++] = b;
		}
	}
	if (!d->nbfree && d->nalloc < d->nbatches) {
		batch *bt = &d->batches[d->nalloc];

		if (!(bt->p = malloc(GD_BATCH_BYTES)))
			return NULL;
		d->bfree[d->nbfree++] = d->nalloc++;
	}
	if (!d->nbfree)
		return NULL;
	return &d->batches[d->bfree[--d->nbfree]];
}

static int send_one(disp *d, int i, slot *s)
{
	if (gd__mpi(MPI_Isend(slot_wire(s), (int)slot_wire_len(s), MPI_BYTE, i + 1, GD__TAG,
	                      d->comm, &s->req),
	            "MPI_Isend"))
		return GD_EMPI;
	if (slot_wire_len(s) > GD_BATCH_BYTES && !s->in_sfly) {
		/* past the eager limit, the bytes move only while both sides
		 * call MPI (without single-copy transports): see sends_moving() */
		gd__ring_push(&d->sfly, (int)(s - d->slots));
		s->in_sfly = 1;
	}
	return 0;
}

/* Whether a large task is still on its way.  A rendezvous send progresses
 * only inside MPI calls on rank 0, so while one is moving rank 0 polls a
 * few ms before it sleeps: a worker waiting in its receive would wait as
 * long as rank 0 sleeps.  The oldest are tested first and the test stops
 * at the first one still moving. */
static int sends_moving(disp *d)
{
	while (d->sfly.count) {
		slot *s = &d->slots[gd__ring_at(&d->sfly, 0)];
		int flag = 1;

		if (s->req != MPI_REQUEST_NULL &&
		    gd__mpi(MPI_Test(&s->req, &flag, MPI_STATUS_IGNORE), "MPI_Test")) {
			d->rc = d->rc ? d->rc : GD_EMPI;
			return 0;
		}
		if (!flag)
			return 1;
		s->in_sfly = 0;
		gd__ring_pop(&d->sfly);
	}
	return 0;
}

/* Send slots sel[0..n) to worker i in order, batching small ones. */
static int send_tasks(disp *d, int i, const int *sel, int n)
{
	int k = 0;

	while (k < n) {
		slot *s = &d->slots[sel[k]];
		size_t total = 0;
		int j = k;

		/* the longest run of small tasks that fits one eager message */
		while (j < n && total + slot_wire_len(&d->slots[sel[j]]) <= GD_BATCH_BYTES)
			total += slot_wire_len(&d->slots[sel[j++]]);
		batch *bt = j - k > 1 ? get_batch(d) : NULL;
		if (!bt) {
			if (send_one(d, i, s))
				return GD_EMPI;
			k++;
			continue;
		}
		size_t off = 0;
		for (int m = k; m < j; m++) {
			slot *t = &d->slots[sel[m]];

			memcpy(bt->p + off, slot_wire(t), slot_wire_len(t));
			off += slot_wire_len(t);
		}
		if (gd__mpi(MPI_Isend(bt->p, (int)off, MPI_BYTE, i + 1, GD__TAG, d->comm, &bt->req),
		            "MPI_Isend"))
			return GD_EMPI;
		gd__ring_push(&d->bfly, (int)(bt - d->batches));
		k = j;
	}
	return 0;
}

/* Fill worker i's free credits.  \return tasks sent, or a negative error. */
static int fill_worker(disp *d, int i)
{
	wk *w = &d->w[i];
	int sel[64], n = 0, sent = 0, rc;

	while (has_credit(d, i)) {
		int si = take_requeued(d, i);

		if (si < 0)
			si = generate(d);
		if (si < 0) {
			if (d->free_head < 0 && !d->gen_done && !d->gen_err)
				d->starved = 1;
			break;
		}
		slot *s = &d->slots[si];
		gd__rec r = {.type = GD_REC_TASK,
		             .attempt = s->attempt,
		             .worker = (uint32_t)i,
		             .task_id = s->task_id,
		             .len = (uint32_t)(s->b.len - GD_REC_HDR)};

		slot_wait(s); /* a re-queued slot may still be going out */
		gd__rec_put_hdr(s->b.p, &r);
		if (BIG(s))
			drop_put(d, i, si, &r);
		s->worker = i;
		s->dispatched_at = d->now;
		gd__ring_push(&w->held, si);
		if (BIG(s) && ++w->big == w->big_max)
			d->big_full++;
		d->inflight++;
		sel[n++] = si;
		gd_event ev = slot_event(d, si, GD_EV_DISPATCH, i);
		update_row(d, i);
		emit(d, d->cb->on_dispatch, &ev);
		if (n == 64) {
			if ((rc = send_tasks(d, i, sel, n)))
				return rc;
			sent += n;
			n = 0;
		}
	}
	if (n && (rc = send_tasks(d, i, sel, n)))
		return rc;
	return sent + n;
}

/* Fill the credits of the workers that returned some.  A worker that got
 * less than it could take leaves the list: the next result it returns, or
 * the next re-queued task, brings it back. */
static int dispatch(disp *d)
{
	int total = 0, n = (int)d->hungry.count;

	if (d->term.level)
		return 0;
	while (n-- > 0) {
		int i = gd__ring_pop(&d->hungry), rc;

		d->in_hungry[i] = 0;
		if (d->w[i].state != W_READY || !has_credit(d, i))
			continue;
		rc = fill_worker(d, i);
		if (rc < 0)
			return rc;
		total += rc;
	}
	return total;
}

static void send_ctl(disp *d, int i, uint8_t type)
{
	uint8_t hdr[GD_REC_HDR];
	gd__rec r = {.type = type, .worker = (uint32_t)i};

	gd__rec_put_hdr(hdr, &r);
	/* a blocking send of 28 bytes: eager, the worker need not be waiting */
	if (gd__mpi(MPI_Send(hdr, GD_REC_HDR, MPI_BYTE, i + 1, GD__TAG, d->comm), "MPI_Send"))
		d->rc = d->rc ? d->rc : GD_EMPI;
	if (type == GD_REC_ABORT)
		d->w[i].abort_sent = 1;
	d->w[i].stop_sent = 1;
}

/* ------------------------------------------------------------ results */

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
	drop_release(d, i, *si_out);
	d->inflight--;
	w->last_done = d->now;
	mark_hungry(d, i);
	return 0;
}

static void abandon(disp *d, int si, int worker)
{
	gd_event ev = slot_event(d, si, GD_EV_NOT_DONE, worker);

	d->st->not_done++;
	emit(d, d->cb->on_not_done, &ev);
	slot_free(d, si);
}

/* Worker i holds nothing any more: give its tasks back to the queue, or
 * abandon them when the run is stopping now. */
static void take_back(disp *d, int i)
{
	wk *w = &d->w[i];

	while (w->held.count) {
		int si = gd__ring_pop(&w->held);

		drop_release(d, i, si);
		d->inflight--;
		d->slots[si].last_worker = i; /* run it elsewhere; NOT_DONE names i */
		if (d->term.level)
			abandon(d, si, i);
		else
			requeue(d, si);
	}
	update_row(d, i);
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

static void on_result(disp *d, int i, const gd__rec *r, int si)
{
	slot *s = &d->slots[si];
	gd_worker_stats *row = &d->st->workers[i];
	char msg[4096 + HIST_MAX];
	gd_event ev = slot_event(d, si, 0, i);
	gd_event_fn fn;

	ev.elapsed_s = (double)r->aux * 1e-6;
	row->busy_s += ev.elapsed_s;
	gd__window_result(&d->win, ev.elapsed_s);
	if (r->type == GD_REC_SUCCESS) {
		row->completed++;
		d->st->completed++;
		ev.type = GD_EV_SUCCESS;
		ev.data = r->payload;
		ev.len = r->len;
		update_row(d, i);
		journal(d, &ev, GD_JS_OK, row);
		emit(d, d->cb->on_success, &ev);
		slot_free(d, si);
		return;
	}
	const uint8_t *text;
	uint32_t text_len;
	gd__exit_get(r, &ev.exit, &text, &text_len); /* checked by on_record() */
	snprintf(msg, sizeof(msg), "%.*s", (int)GD__MIN(text_len, 4095u), (const char *)text);
	if (s->attempt <= d->cfg->retries && !d->term.level) {
		add_hist(s, s->attempt, i, msg);
		d->st->retried++;
		ev.type = GD_EV_RETRY;
		ev.message = msg;
		update_row(d, i);
		emit(d, d->cb->on_retry, &ev);
		s->attempt++;
		s->last_worker = i;
		requeue(d, si);
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
	update_row(d, i);
	journal(d, &ev, r->type == GD_REC_TIMEOUT ? GD_JS_TIMEOUT : GD_JS_ERROR, row);
	emit(d, fn, &ev);
	slot_free(d, si);
}

typedef struct mctx {
	disp *d;
	int i;
} mctx;

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
	take_back(d, i);
	set_state(d, i, W_RETIRED);
	emit(d, d->cb->on_setup_fail, &ev);
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
		drops_open(d, i, &h);
		if (h.note[0])
			gd__strlcpy(row->message, h.note, sizeof(row->message));
		if (h.warning[0]) {
			gd__strlcpy(row->message, h.warning, sizeof(row->message));
			gd__logf(&d->log, GD_LOG_WARNING, "worker %d on %s: %s", i, h.host,
			         h.warning);
		}
		/* once: every CPU worker has the same note */
		if (h.note[0] && !d->cpu_note_shown) {
			gd__logf(&d->log, GD_LOG_INFO, "%s", h.note);
			d->cpu_note_shown = 1;
		}
		set_state(d, i, W_INIT);
		return 0;
	}
	case GD_REC_READY:
		if (d->w[i].state != W_INIT)
			break;
		d->pending--;
		d->live++;
		set_state(d, i, W_READY);
		mark_hungry(d, i);
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
		emit(d, d->cb->on_cleanup_fail, &ev);
		return 0;
	}
	case GD_REC_BYE:
		if (d->w[i].state == W_READY)
			d->live--;
		else if (d->w[i].state == W_INIT)
			d->pending--;
		take_back(d, i);
		d->gone++;
		set_state(d, i, W_GONE);
		return 0;
	default:
		break;
	}
	snprintf(d->err, sizeof(d->err), "an unexpected %s record", gd__rec_type_name(r->type));
	return GD_EPROTO;
}

/* Receive one message if there is one.  \return 1 if one was handled. */
static int receive(disp *d)
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
			send_ctl(d, i, GD_REC_ABORT);
	}
	return 1;
}

/* ------------------------------------------------------------ the loop */

static int poll_stop(disp *d)
{
	int s = 0;

	if (d->cfg->stop_flag)
		s = (int)*d->cfg->stop_flag;
	if (d->cb->poll_stop)
		s = GD__MAX(s, d->cb->poll_stop(d->cb->user));
	return s;
}

/* Raise the stop level (termination.h) and do what the new one means. */
static void begin_stop(disp *d, int how)
{
	if (how <= d->term.level)
		return;
	gd__term_raise(&d->term, how, gd_now());
	/* nothing more runs: what waits for a retry is not done */
	while (d->rq.count) {
		int si = gd__ring_pop(&d->rq);

		abandon(d, si, d->slots[si].last_worker);
	}
	if (how == GD_STOP_NOW) {
		/* also to workers told to STOP: a hung cleanup() is cut short */
		for (int i = 0; i < d->nw; i++)
			if (d->w[i].state != W_GONE && !d->w[i].abort_sent)
				send_ctl(d, i, GD_REC_ABORT);
	}
}

/* The pools and tables of the run.  \return 0, or GD_ENOMEM with whatever
 * was made in a state teardown() can free. */
static int setup(disp *d)
{
	int rings;

	d->nslots = d->nw * (int)d->win.W;
	d->slots = calloc((size_t)d->nslots, sizeof(*d->slots));
	d->w = calloc((size_t)d->nw, sizeof(*d->w));
	d->nbatches = d->nslots;
	d->batches = calloc((size_t)d->nbatches, sizeof(*d->batches));
	rings = gd__ring_init(&d->rq, (unsigned)d->nslots) |
	        gd__ring_init(&d->hungry, (unsigned)d->nw) |
	        gd__ring_init(&d->bfly, (unsigned)d->nbatches) |
	        gd__ring_init(&d->sfly, (unsigned)d->nslots);
	d->in_hungry = calloc((size_t)d->nw, 1);
	d->st->workers = calloc((size_t)d->nw, sizeof(*d->st->workers));
	/* what teardown() looks at, first: it waits on requests, closes fds */
	for (int i = 0; d->slots && i < d->nslots; i++) {
		d->slots[i].req = MPI_REQUEST_NULL;
		d->slots[i].worker = d->slots[i].last_worker = -1;
		d->slots[i].next_free = i + 1 < d->nslots ? i + 1 : -1;
		d->slots[i].drop = -1;
	}
	for (int i = 0; d->batches && i < d->nbatches; i++)
		d->batches[i].req = MPI_REQUEST_NULL;
	for (int i = 0; d->w && i < d->nw; i++)
		for (unsigned k = 0; k < GD_DROPS; k++) {
			gd__shm_init(&d->w[i].drop[k]);
			d->w[i].drop_slot[k] = -1;
		}
	if (!d->slots || rings || !d->w || !d->batches || !d->st->workers || !d->in_hungry)
		return GD_ENOMEM;
	d->free_head = 0;
	for (int i = 0; i < d->nw; i++) {
		if (gd__ring_init(&d->w[i].held, d->win.W))
			return GD_ENOMEM;
		d->w[i].big_max = GD_BIG_MAX;
		gd_worker_stats *row = &d->st->workers[i];
		row->worker_id = i;
		row->rank = i + 1;
		row->gpu.index = row->gpu.numa_node = -1;
		row->state = GD_WS_INIT;
	}
	d->bfree = calloc((size_t)d->nbatches, sizeof(int));
	if (!d->bfree)
		return GD_ENOMEM;
	d->st->n_workers = d->nw;
	d->pending = d->nw;
	return 0;
}

static void teardown(disp *d)
{
	for (int i = 0; d->slots && i < d->nslots; i++) {
		slot_wait(&d->slots[i]);
		gd__bytes_free(&d->slots[i].b);
		free(d->slots[i].hist);
	}
	for (int i = 0; d->batches && i < d->nbatches; i++) {
		if (d->batches[i].req != MPI_REQUEST_NULL)
			(void)gd__mpi(MPI_Wait(&d->batches[i].req, MPI_STATUS_IGNORE), "MPI_Wait");
		free(d->batches[i].p);
	}
	for (int i = 0; d->w && i < d->nw; i++) {
		gd__ring_free(&d->w[i].held);
		for (unsigned k = 0; k < GD_DROPS; k++)
			gd__shm_close(&d->w[i].drop[k]);
	}
	free(d->slots);
	gd__ring_free(&d->rq);
	free(d->w);
	free(d->batches);
	free(d->bfree);
	gd__ring_free(&d->bfly);
	gd__ring_free(&d->sfly);
	gd__ring_free(&d->hungry);
	free(d->in_hungry);
	gd__bytes_free(&d->rbuf);
}

static int count_bye(void *ctx, const gd__rec *r)
{
	*(int *)ctx += r->type == GD_REC_BYE;
	return 0;
}

/*
 * setup() failed: the loop has nothing to run on.  Tell every worker to
 * leave, and wait for each one's BYE (what else it sends is read and
 * dropped), so that no rank is left waiting in gd_run().
 */
static void leave_all(disp *d)
{
	int byes = 0;

	for (int i = 0; i < d->nw; i++) {
		uint8_t hdr[GD_REC_HDR];
		gd__rec ab = {.type = GD_REC_ABORT, .worker = (uint32_t)i};

		gd__rec_put_hdr(hdr, &ab);
		if (gd__mpi(MPI_Send(hdr, GD_REC_HDR, MPI_BYTE, i + 1, GD__TAG, d->comm),
		            "MPI_Send"))
			byes++; /* it cannot be told: do not wait for it */
	}
	while (byes < d->nw) {
		MPI_Message m;
		MPI_Status st;
		int count = 0;

		if (gd__probe_wait(d->comm, MPI_ANY_SOURCE, &m, &st))
			return;
		if (gd__mpi(MPI_Get_count(&st, MPI_BYTE, &count), "MPI_Get_count"))
			count = 0;
		/* what a worker says before it leaves is small: no allocation,
		 * which is what just failed */
		uint8_t small[1024], *p = small;
		if (count > (int)sizeof(small))
			p = gd__bytes_reserve(&d->rbuf, (size_t)count) ? NULL : d->rbuf.p;
		/* without room it is taken off unread */
		if (p ? gd__mpi(MPI_Mrecv(p, count, MPI_BYTE, &m, MPI_STATUS_IGNORE), "MPI_Mrecv")
		      : gd__mpi_discard(&m))
			return; /* MPI is broken: nobody can be waited for */
		if (p)
			gd__msg_foreach(p, (size_t)count, count_bye, &byes, d->err, sizeof(d->err));
	}
}

int gd__dispatch(MPI_Comm comm, gd_generator_fn gen, void *gen_state, const gd_callbacks *cb,
                 const gd_config *cfg, gd_stats *st)
{
	disp d = {.comm = comm, .cfg = cfg, .cb = cb, .gen = gen, .gen_state = gen_state, .st = st};
	unsigned idle = 0;
	int size, rc;

	gd__window_init(&d.win, cfg->window);
	if (gd__mpi(MPI_Comm_size(comm, &size), "MPI_Comm_size"))
		return GD_EMPI;
	d.nw = size - 1;
	/* cfg->shm = 0: every large task through MPI (a check, or a node
	 * whose /proc or memfds misbehave) */
	d.drops_ok = cfg->shm != 0;
	d.log.fn = cb->on_log;
	d.log.user = cb->user;
	gethostname(d.host, sizeof(d.host) - 1);
	st->start_time = gd_now();
	st->total_hint = cfg->total_hint;
	rc = setup(&d);
	if (rc) {
		gd__logf(&d.log, GD_LOG_ERROR, "out of memory for %d workers x window %u", d.nw,
		         d.win.W);
		leave_all(&d);
		d.rc = rc;
		d.gone = d.nw; /* the loop has nothing to do */
	} else if (cfg->journal) {
		rc = gd__journal_open(cfg->journal, cfg->resume, cfg->resume_force, &d.log, &d.j,
		                      d.err, sizeof(d.err));
		if (rc)
			gd__logf(&d.log, GD_LOG_ERROR, "%s", d.err);
		else if (cfg->resume)
			gd__logf(&d.log, GD_LOG_INFO, "resuming from %s: %llu task(s) journaled",
			         cfg->journal, (unsigned long long)gd__journal_loaded(d.j));
	}
	if (rc && !d.rc) {
		/* no worker can be told what to do: tell them all to leave */
		for (int i = 0; i < d.nw; i++)
			send_ctl(&d, i, GD_REC_ABORT);
		d.rc = rc;
	}
	while (d.gone < d.nw) {
		int work = 0, want;

		d.now = gd_now();
		/* a stop asked for, or the grace after a drain passed */
		want = gd__term_want(&d.term, d.rc ? 0 : poll_stop(&d), 0, d.now, cfg->grace_s);
		if (!d.rc && want > d.term.level)
			begin_stop(&d, want);
		if (!d.rc) { /* after a generator error too: re-queued tasks still run */
			rc = dispatch(&d);
			if (rc < 0)
				d.rc = rc;
			work += rc > 0;
		}
		work += receive(&d);
		if (d.rc && !d.term.level)
			begin_stop(&d, gd__term_want(&d.term, 0, 1, d.now, cfg->grace_s));
		gd__term_view tv = {.requeued = d.rq.count,
		                    .gen_done = d.gen_done,
		                    .gen_err = d.gen_err,
		                    .inflight = d.inflight,
		                    .live = d.live,
		                    .pending = d.pending};
		if (gd__term_end_due(&d.term, &tv)) {
			for (int i = 0; i < d.nw; i++)
				if (d.w[i].state != W_GONE && !d.w[i].stop_sent)
					send_ctl(&d, i, GD_REC_STOP);
			gd__term_ended(&d.term, d.now);
			work = 1;
		}
		if (d.j && gd__journal_flush(d.j, 0) && !d.rc)
			d.rc = GD_EJOURNAL;
		if (cb->on_tick && cfg->tick_s > 0 && d.now >= d.next_tick) {
			/* the observers' sample: between two loops, so consistent */
			d.next_tick = d.now + cfg->tick_s;
			st->elapsed_s = d.now - st->start_time;
			cb->on_tick(cb->user, st);
		}
		if (work) {
			idle = 0;
			continue;
		}
		unsigned credit = credit_window(&d), spins;
		double hint;
		gd__idle_view iv = {
		        .large_moving = d.sfly.count && sends_moving(&d),
		        .all_out = d.inflight == (uint64_t)d.live * credit,
		        .big_full = d.big_full,
		        .inflight = d.inflight,
		        .since_stops = d.term.stops_sent ? d.now - d.term.stops_at : -1,
		        .credit = credit,
		};
		gd__window_nap(&d.win, &iv, &spins, &hint);
		gd__backoff(&idle, spins, hint);
	}
	/* tasks still waiting for a retry when nobody was left to run them */
	while (d.rq.count) {
		int si = gd__ring_pop(&d.rq);

		abandon(&d, si, d.slots[si].last_worker);
	}
	st->elapsed_s = gd_now() - st->start_time;
	if (d.j && gd__journal_close(d.j) && !d.rc)
		d.rc = GD_EJOURNAL;
	gd__term_outcome out = {.rc = d.rc,
	                        .gen_done = d.gen_done,
	                        .gen_err = d.gen_err,
	                        .live = d.live,
	                        .n_setup_failed = st->n_setup_failed,
	                        .nw = d.nw,
	                        .not_done = st->not_done};
	rc = gd__term_result(&d.term, &out);
	teardown(&d);
	return rc;
}
