/*
 * Rank 0, the dispatcher: its state, and the internal API of the files that
 * make it up, each using only those listed below it:
 *
 *   dispatcher.c    the loop (gd__dispatch), start and end, stopping
 *   disp_results.c  what the workers report
 *   disp_send.c     handing tasks out
 *   disp_slots.c    slots, credits and the observers' events
 *
 * Memory is a fixed pool of workers x window task slots.  The generator is
 * called only when a worker has a free credit, and writes straight into a
 * free slot's buffer (behind room for the record header), so a task goes out
 * without a copy and stays in its slot until its result is in: that is what
 * lets a task be re-queued (retry, or a worker that retires) and what bounds
 * memory by workers x window x task size, however many tasks there are.
 * Small tasks for one worker are batched into one message under the eager
 * limit; a large one is written into one of its worker's drops when the
 * worker runs on this node (shm.h), else sent from its slot.
 */
#ifndef GD_DISP_H
#define GD_DISP_H

#include "journal.h"
#include "ring.h"
#include "termination.h"
#include "window.h"
#include "wire.h"

#include <stdio.h>
#include <string.h>

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
	unsigned fails_in_row; /* attempts failed since its last success (cfg.quarantine) */
	int quarantined;
	char last_error[160]; /* its last failed attempt's message */
	int stop_sent;        /* STOP went out (the end) */
	int abort_sent;       /* ABORT went out (stop now); may follow a STOP */
	gd__ring held;        /* slots held, oldest first (at most W) */
	unsigned big;         /* of which past the eager limit */
	unsigned big_max;     /* how many of those it may hold */
	double last_done;
	double last_heard;    /* when its last message came (heartbeats) */
	MPI_Request ping_req; /* the last heartbeat sent to it */
	/* the worker's drops, mapped here when it shares this node */
	gd__shm drop[GD_DROPS];  /* fd -1 = none */
	int drop_slot[GD_DROPS]; /* the slot whose payload it holds, -1 = free */
	gd__durations dur;       /* its last tasks' run times (cfg.deadline) */
	int dl_held;             /* the deadline held its next task back */
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
	int halt;    /* the stop level cfg.halt's condition asked for, 0 = none */
	int live;    /* workers READY */
	int pending; /* workers INIT */
	int gone;
	uint64_t inflight;
	int starved;     /* a worker with credit found no free slot */
	gd__ring hungry; /* workers that may have a free credit */
	char *in_hungry;
	int cpu_note_shown;
	int hellos; /* workers that said HELLO */
	/* a placement warning the workers share, said once with a count
	 * when every worker has said HELLO (or the run ends) */
	char warn[160];
	char warn_host[64];
	int warn_n;       /* workers with it */
	int warn_first;   /* the first of them */
	int warn_hosts;   /* on more than one host */
	int drops_ok;     /* large tasks may go through drops (cfg->shm) */
	double next_tick; /* when on_tick is due */
	gd__logger log;   /* the application's on_log, or stderr */
	double next_ping; /* when the next heartbeats go out */
	int lost;         /* workers declared lost: the run ends GD_ELOST */
	char host[64];
	int rc;

	/* the deadline (cfg.deadline), on the gd_now() clock; 0 = none */
	double dl;
	double dl_margin;
	gd__durations dl_all; /* the run's last tasks' run times */
	int dl_all_held;      /* every worker ready is held back */
	int dl_stop;          /* the deadline stopped the run */
	uint64_t jskipped;    /* tasks the journal skipped */

	gd__journal *j;
	gd__bytes rbuf;
	char err[256];
} disp;

/* Past the eager limit: written into a drop, or sent on its own (rendezvous).
 * A worker holds w->big_max of them at most: GD_BIG_MAX, or GD_DROPS once
 * its drops are open (shm.h says why). */
#define BIG(s) gd__shm_large((s)->b.len)

/* ------------------------------------------------- the hot path, inline */

/* Called for every task from every file of the dispatcher: kept inline so
 * that splitting the dispatcher into files costs rank 0 no calls (the
 * benchmark counts its instructions per task). */

static inline void gd__disp_slot_wait(slot *s)
{
	/* a send that failed is given up: the run stops on the error that
	 * gd__mpi() logged, and the slot is free either way */
	if (s->req != MPI_REQUEST_NULL && gd__mpi(MPI_Wait(&s->req, MPI_STATUS_IGNORE), "MPI_Wait"))
		s->req = MPI_REQUEST_NULL;
}

/* What goes out for a slot: its TASK_DROP record, or the task itself. */
static inline const uint8_t *gd__disp_slot_wire(const slot *s)
{
	return s->drop >= 0 ? s->dmsg : s->b.p;
}

static inline size_t gd__disp_slot_wire_len(const slot *s)
{
	return s->drop >= 0 ? sizeof(s->dmsg) : s->b.len;
}

/* Credits per worker now (window.h). */
static inline unsigned gd__disp_credit_window(const disp *d)
{
	return gd__window_credit(&d->win, d->cfg->total_hint, d->next_id, d->live);
}

/* Worker i may take another task (a credit, and room for a large one). */
static inline int gd__disp_has_credit(const disp *d, int i)
{
	const wk *w = &d->w[i];

	return w->held.count < gd__disp_credit_window(d) && w->big < w->big_max;
}

/* Worker i may take tasks: queue it for gd__disp_dispatch().  Keeping this list
 * makes rank 0's work per message independent of the number of workers. */
static inline void gd__disp_mark_hungry(disp *d, int i)
{
	if (d->in_hungry[i] || d->w[i].state != W_READY || !gd__disp_has_credit(d, i))
		return;
	d->in_hungry[i] = 1;
	gd__ring_push(&d->hungry, i);
}

static inline void gd__disp_emit(disp *d, gd_event_fn fn, gd_event *ev)
{
	if (!fn)
		return;
	ev->stats = d->st;
	if (!ev->message)
		ev->message = "";
	fn(d->cb->user, ev);
}

static inline void gd__disp_update_row(disp *d, int i)
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

/* An event about the task in slot si. */
static inline gd_event gd__disp_slot_event(disp *d, int si, gd_event_type type, int worker)
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

static inline void gd__disp_slot_free(disp *d, int si)
{
	slot *s = &d->slots[si];

	/* a worker left the hungry list for want of a slot: give it another
	 * chance (rare: slots are held by tasks waiting for a retry) */
	if (d->starved) {
		d->starved = 0;
		for (int i = 0; i < d->nw; i++)
			gd__disp_mark_hungry(d, i);
	}

	s->worker = -1;
	s->last_worker = -1;
	if (s->hist)
		s->hist[0] = '\0';
	s->next_free = d->free_head;
	d->free_head = si;
}

/* Slot si has left worker i (a result, or taken back): so has its drop. */
static inline void gd__disp_drop_release(disp *d, int i, int si)
{
	slot *s = &d->slots[si];

	if (BIG(s) && d->w[i].big-- == d->w[i].big_max)
		d->big_full--;
	if (s->drop >= 0)
		d->w[i].drop_slot[s->drop] = -1;
	s->drop = -1;
}

/* ---------------------------------------------------------- disp_slots.c */

void gd__disp_set_state(disp *d, int i, int state);
int gd__disp_drop_put(disp *d, int i, int si, const gd__rec *r);
void gd__disp_requeue(disp *d, int si);
int gd__disp_take_requeued(disp *d, int i);
void gd__disp_abandon(disp *d, int si, int worker);

/* ---------------------------------------------------------- disp_send.c */

int gd__disp_sends_moving(disp *d);
int gd__disp_dispatch(disp *d);
void gd__disp_send_ctl(disp *d, int i, uint8_t type);

/* ---------------------------------------------------------- disp_results.c */

int gd__disp_receive(disp *d);
/* Say the held placement warning now (once with its count). */
void gd__disp_warn_flush(disp *d);
/* Worker i holds nothing any more: its tasks go back to the queue, or are
 * abandoned when the run is stopping. */
void gd__disp_take_back(disp *d, int i);

#endif
