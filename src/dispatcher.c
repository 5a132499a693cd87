/*
 * Rank 0: the dispatcher's loop, its start and end, and stopping; disp.h
 * lists the rest.
 */
#define _GNU_SOURCE
#include "backoff.h"
#include "disp.h"
#include "roles.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

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

		gd__disp_abandon(d, si, d->slots[si].last_worker);
	}
	if (how == GD_STOP_NOW) {
		/* also to workers told to STOP: a hung cleanup() is cut short */
		for (int i = 0; i < d->nw; i++)
			if (d->w[i].state != W_GONE && !d->w[i].abort_sent)
				gd__disp_send_ctl(d, i, GD_REC_ABORT);
	}
}

/* cfg->deadline (the wall clock) on the gd_now() clock, and its margin. */
static void deadline_start(disp *d)
{
	struct timespec ts;
	double left;
	time_t at = (time_t)d->cfg->deadline;
	struct tm tm;
	char when[32] = "?";

	clock_gettime(CLOCK_REALTIME, &ts);
	left = d->cfg->deadline - ((double)ts.tv_sec + (double)ts.tv_nsec * 1e-9);
	d->now = gd_now();
	d->dl = d->now + left;
	d->dl_margin = gd__dl_margin(left, d->cfg->deadline_margin);
	if (localtime_r(&at, &tm))
		strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
	gd__logf(&d->log, GD_LOG_INFO,
	         "deadline %s (in %.0f s): no task starts that would end less than %.0f s "
	         "before it",
	         when, left, d->dl_margin);
}

/* ------------------------------------------------------------ heartbeats */

/* The heartbeat's period: a quarter of the timeout, so that three can be
 * lost or late before a rank is declared silent. */
static double ping_every(double timeout)
{
	return timeout / 4;
}

/* Whether rank 0 can expect worker i to speak: one that runs process() in
 * its own rank (GD_ISOLATE_NONE) is silent while it runs it. */
static int watched(const disp *d, int i)
{
	const wk *w = &d->w[i];

	if (w->state == W_GONE)
		return 0;
	if (d->cfg->isolation == GD_ISOLATE_NONE)
		return w->state == W_READY && w->held.count == 0;
	return 1;
}

/* Worker i is lost: what it held is not done, it is gone. */
static void lose(disp *d, int i)
{
	gd_worker_stats *row = &d->st->workers[i];
	wk *w = &d->w[i];

	if (w->state == W_READY)
		d->live--;
	else if (w->state == W_INIT)
		d->pending--;
	gd__disp_take_back(d, i); /* the stop is raised: abandoned (not_done) */
	snprintf(row->message, sizeof(row->message), "lost: silent for %.1f s",
	         d->now - w->last_heard);
	row->state = GD_WS_ERROR; /* gd__disp_set_state() keeps it */
	d->gone++;
	d->lost++;
	d->st->n_lost++;
	gd__disp_set_state(d, i, W_GONE);
}

/* Workers silent past the timeout are lost, with every worker on the same
 * host (one node, one fate): name them, and drain the rest of the run. */
static void find_lost(disp *d)
{
	double timeout = d->cfg->heartbeat_timeout;
	char names[512], host[64] = "";
	size_t n = 0;
	uint64_t before = d->st->not_done;
	int count = 0, first = -1;

	for (int i = 0; i < d->nw; i++)
		if (watched(d, i) && d->now - d->w[i].last_heard > timeout) {
			first = i;
			break;
		}
	if (first < 0)
		return;
	gd__strlcpy(host, d->st->workers[first].host, sizeof(host));
	double silent = d->now - d->w[first].last_heard;
	begin_stop(d, GD_STOP_DRAIN); /* before the take-back: tasks are abandoned */
	names[0] = '\0';
	for (int i = 0; i < d->nw; i++) {
		int same = host[0] && !strcmp(d->st->workers[i].host, host);

		if (d->w[i].state == W_GONE ||
		    !(i == first || same ||
		      (watched(d, i) && d->now - d->w[i].last_heard > timeout)))
			continue;
		if (n < sizeof(names))
			n += (size_t)snprintf(names + n, sizeof(names) - n, "%s%d (rank %d%s%s)",
			                      count ? ", " : "", i, i + 1, same ? "" : " on ",
			                      same ? "" : d->st->workers[i].host);
		count++;
		lose(d, i);
	}
	gd__logf(&d->log, GD_LOG_ERROR,
	         "lost host %s: no word from worker %d for %.1f s (heartbeat timeout %g s); "
	         "lost worker(s) %s; %llu task(s) they held are not done; the others finish "
	         "what they hold and the run stops",
	         host[0] ? host : "(unknown)", first, silent, timeout, names,
	         (unsigned long long)(d->st->not_done - before));
}

/* Send heartbeats when due (never waiting on a send: a lost worker's may
 * never complete), and with `judge` (nothing is waiting to be read, so what
 * a worker sent has been seen) look for silent workers. */
static void heartbeat(disp *d, int judge)
{
	static uint8_t ping[GD_REC_HDR];
	double timeout = d->cfg->heartbeat_timeout;

	if (!(timeout > 0))
		return;
	if (d->now >= d->next_ping) {
		if (!ping[0]) {
			gd__rec r = {.type = GD_REC_PING};
			gd__rec_put_hdr(ping, &r);
		}
		d->next_ping = d->now + ping_every(timeout);
		for (int i = 0; i < d->nw; i++) {
			wk *w = &d->w[i];
			int flag = 1;

			if (w->state == W_GONE)
				continue;
			if (w->ping_req != MPI_REQUEST_NULL &&
			    gd__mpi(MPI_Test(&w->ping_req, &flag, MPI_STATUS_IGNORE), "MPI_Test"))
				flag = 0;
			if (flag && gd__mpi(MPI_Isend(ping, GD_REC_HDR, MPI_BYTE, i + 1, GD__TAG,
			                              d->comm, &w->ping_req),
			                    "MPI_Isend"))
				w->ping_req = MPI_REQUEST_NULL;
		}
	}
	if (judge)
		find_lost(d);
}

/* A request at teardown: waited for, unless a worker was lost (its sends
 * may never complete).  \return 0 when done; else the buffer must stay. */
static int settle(disp *d, MPI_Request *req)
{
	int flag = 0;

	if (*req == MPI_REQUEST_NULL)
		return 0;
	if (!d->lost)
		return gd__mpi(MPI_Wait(req, MPI_STATUS_IGNORE), "MPI_Wait"), 0;
	if (gd__mpi(MPI_Test(req, &flag, MPI_STATUS_IGNORE), "MPI_Test") || !flag) {
		*req = MPI_REQUEST_NULL; /* left to MPI, with its buffer */
		return -1;
	}
	return 0;
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
	for (int i = 0; d->w && i < d->nw; i++) {
		d->w[i].ping_req = MPI_REQUEST_NULL;
		for (unsigned k = 0; k < GD_DROPS; k++) {
			gd__shm_init(&d->w[i].drop[k]);
			d->w[i].drop_slot[k] = -1;
		}
	}
	if (!d->slots || rings || !d->w || !d->batches || !d->st->workers || !d->in_hungry)
		return GD_ENOMEM;
	d->free_head = 0;
	for (int i = 0; i < d->nw; i++) {
		if (gd__ring_init(&d->w[i].held, d->win.W))
			return GD_ENOMEM;
		d->w[i].last_heard = gd_now();
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
	/* a buffer MPI may still read (a send to a lost worker) is left */
	for (int i = 0; d->slots && i < d->nslots; i++) {
		if (settle(d, &d->slots[i].req) == 0)
			gd__bytes_free(&d->slots[i].b);
		free(d->slots[i].hist);
	}
	for (int i = 0; d->batches && i < d->nbatches; i++)
		if (settle(d, &d->batches[i].req) == 0)
			free(d->batches[i].p);
	for (int i = 0; d->w && i < d->nw; i++) {
		(void)settle(d, &d->w[i].ping_req); /* its buffer is static */
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
                 const gd_config *cfg, gd_stats *st, int *started)
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
	rc = setup(&d);   /* start_time and total_hint: set by gd_run() */
	if (cb->on_start) /* a row per worker now (none when setup() failed) */
		cb->on_start(cb->user, st);
	*started = 1;
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
			gd__disp_send_ctl(&d, i, GD_REC_ABORT);
		d.rc = rc;
	}
	if (cfg->deadline > 0)
		deadline_start(&d);
	while (d.gone < d.nw) {
		int work = 0, want, asked, dl = 0;

		d.now = gd_now();
		/* a stop asked for, a halt condition, the deadline, or the grace after a drain
		 * passed */
		asked = d.rc ? 0 : GD__MAX(poll_stop(&d), d.halt);
		if (d.dl > 0 && !d.rc)
			dl = gd__dl_request(d.now, d.dl, d.dl_margin, d.dl_all_held);
		want = gd__term_want(&d.term, GD__MAX(asked, dl), 0, d.now, cfg->grace_s);
		if (!d.rc && want > d.term.level) {
			if (dl > asked && !d.term.level)
				d.dl_stop = 1; /* the deadline, not a signal, stopped it */
			if (dl == GD_STOP_NOW && d.inflight)
				gd__logf(&d.log, GD_LOG_WARNING,
				         "deadline in %.0f s: abandoning the %llu task(s) still "
				         "running",
				         d.dl - d.now, (unsigned long long)d.inflight);
			if (d.dl_stop && !d.term.level)
				st->held_back += d.rq.count; /* waiting for a retry */
			begin_stop(&d, want);
		}
		if (!d.rc) { /* after a generator error too: re-queued tasks still run */
			rc = gd__disp_dispatch(&d);
			if (rc < 0)
				d.rc = rc;
			work += rc > 0;
		}
		int got = gd__disp_receive(&d);
		work += got;
		/* silence is judged only with nothing left to read */
		if (!d.rc)
			heartbeat(&d, !got);
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
					gd__disp_send_ctl(&d, i, GD_REC_STOP);
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
		unsigned credit = gd__disp_credit_window(&d), spins;
		double hint;
		gd__idle_view iv = {
		        .large_moving = d.sfly.count && gd__disp_sends_moving(&d),
		        .all_out = d.inflight == (uint64_t)d.live * credit,
		        .big_full = d.big_full,
		        .inflight = d.inflight,
		        .since_stops = d.term.stops_sent ? d.now - d.term.stops_at : -1,
		        .credit = credit,
		};
		gd__window_nap(&d.win, &iv, &spins, &hint);
		gd__backoff(&idle, spins, hint);
	}
	gd__disp_warn_flush(&d); /* some worker never said HELLO */
	/* tasks still waiting for a retry when nobody was left to run them */
	while (d.rq.count) {
		int si = gd__ring_pop(&d.rq);

		gd__disp_abandon(&d, si, d.slots[si].last_worker);
	}
	st->deadline_stop = d.dl_stop;
	/* what the generator had left, by the hint: less what it produced
	 * and what the journal has done */
	if (d.dl_stop && !d.gen_done && !d.gen_err) {
		uint64_t seen =
		        st->total + d.jskipped + (d.j ? gd__journal_skips_from(d.j, d.next_id) : 0);

		if (cfg->total_hint > seen)
			st->held_back += cfg->total_hint - seen;
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
	/* whatever else went wrong, the lost ranks decide how the run ends */
	if (d.lost)
		rc = GD_ELOST;
	teardown(&d);
	return rc;
}
