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

void gd__disp_set_state(disp *d, int i, int state)
{
	gd_event ev = {.type = GD_EV_WORKER, .worker_id = i};

	d->w[i].state = state;
	if (state == W_READY)
		d->st->workers[i].state = GD_WS_IDLE;
	else if (state == W_RETIRED)
		d->st->workers[i].state = d->w[i].quarantined ? GD_WS_QUARANTINED : GD_WS_ERROR;
	else if (state == W_GONE && d->st->workers[i].state != GD_WS_ERROR &&
	         d->st->workers[i].state != GD_WS_QUARANTINED)
		d->st->workers[i].state = GD_WS_DONE;
	gd__disp_update_row(d, i);
	gd__disp_emit(d, d->cb->on_worker, &ev);
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

void gd__disp_requeue(disp *d, int si)
{
	gd__ring_push(&d->rq, si);
	d->slots[si].worker = -1;
	/* rare (retries, a retired worker): any worker with a credit may take it */
	for (int i = 0; i < d->nw; i++)
		gd__disp_mark_hungry(d, i);
}

/* Take the oldest re-queued slot that may run on worker i: not where it
 * last ran, unless no other worker is left (one still starting counts: a
 * worker that is ready first must not take back its own failure).
 * \return -1 if none. */
int gd__disp_take_requeued(disp *d, int i)
{
	for (unsigned k = 0; k < d->rq.count; k++)
		if (d->slots[gd__ring_at(&d->rq, k)].last_worker != i || d->live + d->pending <= 1)
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
