/*
 * The supervisor's link with rank 0: the tasks it sends, received into the
 * held-task ring (large messages straight into a shared receive buffer,
 * shm.h), and the results going back, double-buffered.
 */
#define _GNU_SOURCE
#include "sup.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

gd__bytes *gd__sup_outbuf(sup *s)
{
	MPI_Request *req = &s->req[s->cur];
	double timeout = s->cfg->heartbeat_timeout, since = 0;
	unsigned idle = 0;

	/* rank 0 takes a large result only while it calls MPI: one that is
	 * not taken for the heartbeat timeout is not taken at all */
	while (*req != MPI_REQUEST_NULL && !s->lost) {
		int flag = 0;

		if (!(timeout > 0)) {
			if (gd__mpi(MPI_Wait(req, MPI_STATUS_IGNORE), "MPI_Wait"))
				s->err = GD_EMPI;
			break;
		}
		if (gd__mpi(MPI_Test(req, &flag, MPI_STATUS_IGNORE), "MPI_Test")) {
			s->err = GD_EMPI;
			break;
		}
		if (flag)
			break;
		double now = gd_now();
		if (!since)
			since = now;
		else if (now - since > timeout) {
			gd__log(s->rank,
			        "worker %d: rank 0 has not taken a result for %.1f s: leaving",
			        s->wid, now - since);
			s->lost = 1;
		}
		gd__backoff(&idle, 20, 0);
	}
	if (s->lost)
		*req = MPI_REQUEST_NULL; /* left to MPI; nothing more is sent */
	return &s->out[s->cur];
}

int gd__sup_heartbeat(sup *s, int judge)
{
	double timeout = s->cfg->heartbeat_timeout, now;
	int flag = 1;

	if (!(timeout > 0) || s->lost)
		return s->lost;
	now = gd_now();
	if (now >= s->next_ping) {
		s->next_ping = now + timeout / 4;
		if (s->ping_req != MPI_REQUEST_NULL &&
		    gd__mpi(MPI_Test(&s->ping_req, &flag, MPI_STATUS_IGNORE), "MPI_Test"))
			flag = 0;
		if (flag && gd__mpi(MPI_Isend(s->ping, GD_REC_HDR, MPI_BYTE, 0, GD__TAG, s->comm,
		                              &s->ping_req),
		                    "MPI_Isend"))
			s->ping_req = MPI_REQUEST_NULL;
	}
	if (judge && now - s->last_heard > timeout) {
		char host[64] = "";

		gethostname(host, sizeof(host) - 1);
		gd__log(s->rank,
		        "worker %d on %s: no word from rank 0 for %.1f s (heartbeat timeout %g s): "
		        "leaving",
		        s->wid, host, now - s->last_heard, timeout);
		s->lost = 1;
	}
	return s->lost;
}

void gd__sup_flush(sup *s)
{
	gd__bytes *b = &s->out[s->cur];

	if (!b->len)
		return;
	if (gd__mpi(MPI_Isend(b->p, (int)b->len, MPI_BYTE, 0, GD__TAG, s->comm, &s->req[s->cur]),
	            "MPI_Isend"))
		s->err = GD_EMPI;
	s->cur ^= 1;
	gd__sup_outbuf(s)->len = 0;
}

void gd__sup_send_rec(sup *s, uint8_t type, uint64_t task_id, uint16_t attempt, uint64_t aux,
                      const void *payload, size_t len, uint8_t flags)
{
	gd__rec r = {.type = type,
	             .flags = flags,
	             .attempt = attempt,
	             .worker = (uint32_t)s->wid,
	             .task_id = task_id,
	             .aux = aux,
	             .len = (uint32_t)len};

	if (gd__rec_append(gd__sup_outbuf(s), &r, payload))
		s->err = GD_ENOMEM;
}

void gd__sup_send_msg(sup *s, uint8_t type, uint64_t task_id, uint16_t attempt, uint64_t aux,
                      uint8_t flags, const char *msg)
{
	gd__sup_send_rec(s, type, task_id, attempt, aux, msg, strlen(msg), flags);
}

typedef struct rctx {
	sup *s;
	int buf;
	const uint8_t *shm; /* the shared buffer the message is in, NULL = heap */
	char err[160];
} rctx;

/* The executor's TASK_SHM descriptor of a TASK_DROP record from rank 0,
 * into p->desc.  \return 0, or -1 with c->err set. */
static int drop_desc(sup *s, const gd__rec *r, pend *p, rctx *c)
{
	uint32_t k;
	uint64_t off, len;

	if (gd__rec_desc_get(r, &k, &off, &len) || k >= GD_DROPS || s->shm[s->nrbuf + k].fd < 0 ||
	    off < GD_DROP_OFF) {
		snprintf(c->err, sizeof(c->err), "a bad TASK_DROP record (task %llu)",
		         (unsigned long long)r->task_id);
		return -1;
	}
	gd__rec_desc_put(p->desc, r, GD_REC_TASK_SHM, s->nrbuf + k, off, len);
	return 0;
}

static int from_rank0(void *ctx, const gd__rec *r)
{
	rctx *c = ctx;
	sup *s = c->s;

	switch (r->type) {
	case GD_REC_TASK_DROP:
	case GD_REC_TASK: {
		pend *p;

		if (s->retired)
			return 0; /* rank 0 takes them back when it reads SETUP_FAIL */
		if (s->count == s->cap) {
			snprintf(c->err, sizeof(c->err), "rank 0 sent more than %u tasks", s->cap);
			return GD_EPROTO;
		}
		if (r->type == GD_REC_TASK_DROP && drop_desc(s, r, RING(s, s->count), c))
			return GD_EPROTO;
		p = RING(s, s->count);
		p->rec = r->payload - GD_REC_HDR;
		p->rec_len = GD_REC_HDR + r->len;
		p->buf = c->buf;
		p->task_id = r->task_id;
		p->attempt = r->attempt;
		if (r->type == GD_REC_TASK_DROP) {
			p->shm = 1; /* drop_desc() wrote the descriptor */
		} else if ((p->shm = c->shm != NULL && gd__shm_large(p->rec_len))) {
			gd__rec_desc_put(p->desc, r, GD_REC_TASK_SHM, (uint32_t)c->buf,
			                 (uint64_t)(r->payload - c->shm), r->len);
		}
		s->count++;
		s->rrefs[c->buf]++;
		s->big_held += gd__shm_large(p->rec_len);
		s->shm_held += p->shm != 0;
		return 0;
	}
	case GD_REC_STOP:
		s->stop = 1;
		s->lost_run |= (r->aux & GD_CTL_LOST) != 0;
		return 0;
	case GD_REC_ABORT:
		s->abort = 1;
		s->lost_run |= (r->aux & GD_CTL_LOST) != 0;
		return 0;
	case GD_REC_PING:
		return 0; /* gd__sup_recv_rank0() noted when it came */
	default:
		snprintf(c->err, sizeof(c->err), "unexpected %s record",
		         gd__rec_type_name(r->type));
		return GD_EPROTO;
	}
}

/* Receive what rank 0 has sent: every message, but stop after a large one
 * so that it is handed on before the next is copied in (one buffer stays
 * hot in cache, as in a plain receive loop).  \return 0 if nothing
 * arrived, 1 if something did, 2 if it stopped after a large message (more
 * may be waiting: do not block before calling again). */
int gd__sup_recv_rank0(sup *s)
{
	int got = 0;

	for (;;) {
		MPI_Message msg;
		MPI_Status st;
		int flag = 0, count = 0;
		unsigned b;

		if (gd__mpi(MPI_Improbe(0, GD__TAG, s->comm, &flag, &msg, &st), "MPI_Improbe")) {
			s->err = GD_EMPI;
			return got;
		}
		if (!flag)
			return got;
		got = 1;
		s->last_heard = gd_now();
		if (gd__mpi(MPI_Get_count(&st, MPI_BYTE, &count), "MPI_Get_count")) {
			s->err = GD_EMPI;
			gd__mpi_discard(&msg);
			return got;
		}
		for (b = 0; b < s->nrbuf && s->rrefs[b]; b++)
			;
		/* a large one goes to shared buffer b, grown to fit while it is
		 * free (nothing points into it); else the socket carries it */
		if (b < s->nrbuf && gd__shm_large((size_t)count) &&
		    gd__shm_grow(&s->shm[b], (size_t)count) == 0) {
			if (gd__mpi(MPI_Mrecv(s->shm[b].map, count, MPI_BYTE, &msg,
			                      MPI_STATUS_IGNORE),
			            "MPI_Mrecv")) {
				s->err = GD_EMPI;
				return got;
			}
			rctx c = {.s = s, .buf = (int)b, .shm = s->shm[b].map};
			if (gd__msg_foreach(s->shm[b].map, (size_t)count, from_rank0, &c, c.err,
			                    sizeof(c.err))) {
				char why[256];

				snprintf(why, sizeof(why), "malformed message from rank 0: %s",
				         c.err);
				gd__log(s->rank, "worker %d: %s", s->wid, why);
				gd__strlcpy(s->rank0_bad, why, sizeof(s->rank0_bad));
			}
			s->big = 1;
			return 2;
		}
		if (b == s->nrbuf || gd__bytes_reserve(&s->rbuf[b], (size_t)count + 1)) {
			/* cannot happen while rank 0 keeps to the window */
			gd__log(s->rank, "worker %d: no receive buffer for a %d-byte message",
			        s->wid, count);
			s->err = GD_ENOMEM;
			gd__mpi_discard(&msg);
			return got;
		}
		if (gd__mpi(MPI_Mrecv(s->rbuf[b].p, count, MPI_BYTE, &msg, MPI_STATUS_IGNORE),
		            "MPI_Mrecv")) {
			s->err = GD_EMPI;
			return got;
		}
		s->rbuf[b].len = (size_t)count;
		rctx c = {.s = s, .buf = (int)b};
		int rc = gd__msg_foreach(s->rbuf[b].p, (size_t)count, from_rank0, &c, c.err,
		                         sizeof(c.err));
		if (rc) {
			char why[256];

			snprintf(why, sizeof(why), "malformed message from rank 0: %s", c.err);
			gd__log(s->rank, "worker %d: %s", s->wid, why);
			gd__strlcpy(s->rank0_bad, why, sizeof(s->rank0_bad));
			return got; /* the caller retires the worker */
		}
		s->big = gd__shm_large((size_t)count);
		if (s->big)
			return 2;
	}
}
