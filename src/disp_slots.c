/*
 * Rank 0's slots and credits: which worker holds which task, who may take
 * another (the credit window, large-task limits, the hungry list), the
 * re-queue of tasks to run again, a worker's drops as its tasks come and go,
 * and the observers' events and rows that follow each change.
 */
#define _GNU_SOURCE
#include "disp.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void gd__disp_emit(disp *d, gd_event_fn fn, gd_event *ev)
{
	if (!fn)
		return;
	ev->stats = d->st;
	if (!ev->message)
		ev->message = "";
	fn(d->cb->user, ev);
}

void gd__disp_update_row(disp *d, int i)
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

void gd__disp_set_state(disp *d, int i, int state)
{
	gd_event ev = {.type = GD_EV_WORKER, .worker_id = i};

	d->w[i].state = state;
	if (state == W_READY)
		d->st->workers[i].state = GD_WS_IDLE;
	else if (state == W_RETIRED)
		d->st->workers[i].state = GD_WS_ERROR;
	else if (state == W_GONE && d->st->workers[i].state != GD_WS_ERROR)
		d->st->workers[i].state = GD_WS_DONE;
	gd__disp_update_row(d, i);
	gd__disp_emit(d, d->cb->on_worker, &ev);
}

/* Credits per worker now (window.h). */
unsigned gd__disp_credit_window(const disp *d)
{
	return gd__window_credit(&d->win, d->cfg->total_hint, d->next_id, d->live);
}

/* Worker i may take another task (a credit, and room for a large one). */
int gd__disp_has_credit(const disp *d, int i)
{
	const wk *w = &d->w[i];

	return w->held.count < gd__disp_credit_window(d) && w->big < w->big_max;
}

/* What goes out for a slot: its TASK_DROP record, or the task itself. */
const uint8_t *gd__disp_slot_wire(const slot *s)
{
	return s->drop >= 0 ? s->dmsg : s->b.p;
}

size_t gd__disp_slot_wire_len(const slot *s)
{
	return s->drop >= 0 ? sizeof(s->dmsg) : s->b.len;
}

/* Write slot si's payload into a free drop of worker i (grown as needed)
 * and make its TASK_DROP record from r.  \return 1 if it is in a drop, 0 if
 * it goes through MPI (no drop here, or the drop could not grow). */
int gd__disp_drop_put(disp *d, int i, int si, const gd__rec *r)
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
void gd__disp_drop_release(disp *d, int i, int si)
{
	slot *s = &d->slots[si];

	if (BIG(s) && d->w[i].big-- == d->w[i].big_max)
		d->big_full--;
	if (s->drop >= 0)
		d->w[i].drop_slot[s->drop] = -1;
	s->drop = -1;
}

void gd__disp_slot_wait(slot *s)
{
	/* a send that failed is given up: the run stops on the error that
	 * gd__mpi() logged, and the slot is free either way */
	if (s->req != MPI_REQUEST_NULL && gd__mpi(MPI_Wait(&s->req, MPI_STATUS_IGNORE), "MPI_Wait"))
		s->req = MPI_REQUEST_NULL;
}

/* An event about the task in slot si. */
gd_event gd__disp_slot_event(disp *d, int si, gd_event_type type, int worker)
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

void gd__disp_slot_free(disp *d, int si)
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

/* Worker i may take tasks: queue it for gd__disp_dispatch().  Keeping this list
 * makes rank 0's work per message independent of the number of workers. */
void gd__disp_mark_hungry(disp *d, int i)
{
	if (d->in_hungry[i] || d->w[i].state != W_READY || !gd__disp_has_credit(d, i))
		return;
	d->in_hungry[i] = 1;
	gd__ring_push(&d->hungry, i);
}

void gd__disp_requeue(disp *d, int si)
{
	gd__ring_push(&d->rq, si);
	d->slots[si].worker = -1;
	/* rare (retries, a retired worker): any worker with a credit may take it */
	for (int i = 0; i < d->nw; i++)
		gd__disp_mark_hungry(d, i);
}

/* Take the oldest re-queued slot that may run on worker i: not where it
 * last ran, unless no other worker is left.  \return -1 if none. */
int gd__disp_take_requeued(disp *d, int i)
{
	for (unsigned k = 0; k < d->rq.count; k++)
		if (d->slots[gd__ring_at(&d->rq, k)].last_worker != i || d->live <= 1)
			return gd__ring_take(&d->rq, k); /* FIFO order kept */
	return -1;
}

void gd__disp_abandon(disp *d, int si, int worker)
{
	gd_event ev = gd__disp_slot_event(d, si, GD_EV_NOT_DONE, worker);

	d->st->not_done++;
	gd__disp_emit(d, d->cb->on_not_done, &ev);
	gd__disp_slot_free(d, si);
}
