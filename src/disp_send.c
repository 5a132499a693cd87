/*
 * Rank 0 hands tasks out: the generator (with the journal's and the skip
 * hook's say), filling a worker's free credits, batching small tasks into
 * one eager message, large ones into a drop or on their own, and the
 * control records (STOP, ABORT).
 */
#define _GNU_SOURCE
#include "disp.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Ask the generator for the next task that is not skipped.  \return the
 * slot, or -1 (no free slot, generator done or failed). */
static int generate(disp *d)
{
	while (!d->gen_done && !d->gen_err && d->free_head >= 0) {
		int si = d->free_head;
		slot *s = &d->slots[si];
		gd_buf buf = {.bytes = &s->b, .room = GD_REC_HDR};
		int rc;

		gd__disp_slot_wait(s);
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
				d->jskipped++;
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
	if (gd__mpi(MPI_Isend(gd__disp_slot_wire(s), (int)gd__disp_slot_wire_len(s), MPI_BYTE,
	                      i + 1, GD__TAG, d->comm, &s->req),
	            "MPI_Isend"))
		return GD_EMPI;
	if (gd__disp_slot_wire_len(s) > GD_BATCH_BYTES && !s->in_sfly) {
		/* past the eager limit, the bytes move only while both sides
		 * call MPI (without single-copy transports): see gd__disp_sends_moving() */
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
int gd__disp_sends_moving(disp *d)
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
		while (j < n && total + gd__disp_slot_wire_len(&d->slots[sel[j]]) <= GD_BATCH_BYTES)
			total += gd__disp_slot_wire_len(&d->slots[sel[j++]]);
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

			memcpy(bt->p + off, gd__disp_slot_wire(t), gd__disp_slot_wire_len(t));
			off += gd__disp_slot_wire_len(t);
		}
		if (gd__mpi(MPI_Isend(bt->p, (int)off, MPI_BYTE, i + 1, GD__TAG, d->comm, &bt->req),
		            "MPI_Isend"))
			return GD_EMPI;
		gd__ring_push(&d->bfly, (int)(bt - d->batches));
		k = j;
	}
	return 0;
}

/* Whether worker i may start one more task before the deadline; if not,
 * it is held back for the rest of the run (the deadline only comes
 * nearer), and once every worker ready is, the run drains. */
static int deadline_fits(disp *d, int i)
{
	wk *w = &d->w[i];
	double est, since = 0, end;
	int held = 0, ready = 0;

	if (w->dl_held)
		return 0;
	est = gd__dl_estimate(&w->dur, &d->dl_all, d->cfg->task_time, d->cfg->task_timeout);
	if (w->held.count) {
		slot *s = &d->slots[gd__ring_at(&w->held, 0)];

		since = GD__MAX(s->dispatched_at, w->last_done);
	}
	end = gd__dl_task_end(d->now, w->held.count, since, est);
	if (end <= d->dl - d->dl_margin)
		return 1;
	w->dl_held = 1;
	for (int k = 0; k < d->nw; k++)
		if (d->w[k].state == W_READY) {
			ready++;
			held += d->w[k].dl_held;
		}
	if (held >= ready && !d->dl_all_held) {
		d->dl_all_held = 1;
		gd__logf(&d->log, GD_LOG_INFO,
		         "deadline in %.0f s: no worker can end another task (about %.3g s "
		         "each) %.0f s before it; finishing the tasks in flight",
		         d->dl - d->now, est, d->dl_margin);
	}
	return 0;
}

/* Fill worker i's free credits.  \return tasks sent, or a negative error. */
static int fill_worker(disp *d, int i)
{
	wk *w = &d->w[i];
	int sel[64], n = 0, sent = 0, rc;

	while (gd__disp_has_credit(d, i)) {
		if (d->dl > 0 && !deadline_fits(d, i))
			break;
		int si = gd__disp_take_requeued(d, i);

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

		gd__disp_slot_wait(s); /* a re-queued slot may still be going out */
		gd__rec_put_hdr(s->b.p, &r);
		if (BIG(s))
			gd__disp_drop_put(d, i, si, &r);
		s->worker = i;
		s->dispatched_at = d->now;
		gd__ring_push(&w->held, si);
		if (BIG(s) && ++w->big == w->big_max)
			d->big_full++;
		d->inflight++;
		sel[n++] = si;
		gd_event ev = gd__disp_slot_event(d, si, GD_EV_DISPATCH, i);
		gd__disp_update_row(d, i);
		gd__disp_emit(d, d->cb->on_dispatch, &ev);
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
int gd__disp_dispatch(disp *d)
{
	int total = 0, n = (int)d->hungry.count;

	if (d->term.level)
		return 0;
	while (n-- > 0) {
		int i = gd__ring_pop(&d->hungry), rc;

		d->in_hungry[i] = 0;
		if (d->w[i].state != W_READY || !gd__disp_has_credit(d, i))
			continue;
		rc = fill_worker(d, i);
		if (rc < 0)
			return rc;
		total += rc;
	}
	return total;
}

void gd__disp_send_ctl(disp *d, int i, uint8_t type)
{
	uint8_t hdr[GD_REC_HDR];
	/* aux 1: a node was lost, the run ends without its final collectives */
	gd__rec r = {.type = type, .worker = (uint32_t)i, .aux = d->lost ? GD_CTL_LOST : 0};

	gd__rec_put_hdr(hdr, &r);
	/* a blocking send of 28 bytes: eager, the worker need not be waiting */
	if (gd__mpi(MPI_Send(hdr, GD_REC_HDR, MPI_BYTE, i + 1, GD__TAG, d->comm), "MPI_Send"))
		d->rc = d->rc ? d->rc : GD_EMPI;
	if (type == GD_REC_ABORT)
		d->w[i].abort_sent = 1;
	d->w[i].stop_sent = 1;
}
