/*
 * A worker rank: the supervisor.  It receives tasks from rank 0, forwards
 * them to its executor process over a socket, sends the results back, and
 * replaces the executor when a task times out or crashes it.  It keeps every
 * task it holds (at most `window`) until that task's result is reported, so
 * the tasks queued behind a crashed one are re-sent to the new executor.
 *
 * It blocks in poll() on the executor's socket while the executor works and
 * looks at MPI in between, so a worker rank does not spin on a shared core.
 */
#define _GNU_SOURCE
#include "executor.h"
#include "placement.h"
#include "run.h"

#include <errno.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

enum { EX_NONE, EX_STARTING, EX_RUNNING, EX_CLEANING };

/* Longest a supervisor waits in poll() before looking at MPI again; the
 * shorter cap applies while a large task is expected from rank 0. */
#define POLL_CAP_MS    20
#define POLL_CAP_BIG_S 100e-6

/* Unhurried collection of results (see wait_executor): the longest sleep,
 * the shortest tasks it applies to, the tasks the executor must have at
 * hand, and the run of small results (not gd__shm_large()) it needs first. */
#define LAZY_MAX_S      2e-3
#define LAZY_MIN_TASK_S 50e-6
#define LAZY_MIN_QUEUED 3
#define LAZY_MIN_SMALL  8

typedef struct pend {
	const uint8_t *rec; /* header + payload, inside receive buffer `buf` */
	uint32_t rec_len;
	int buf;
	uint64_t task_id;
	uint16_t attempt;
	int shm; /* in a shared buffer: the executor gets `desc`, not `rec` */
	uint8_t desc[GD_REC_HDR + GD_SHM_DESC];
} pend;

/* What goes down the socket for a held task. */
static const uint8_t *wire_ptr(const pend *p)
{
	return p->shm ? p->desc : p->rec;
}

static size_t wire_len(const pend *p)
{
	return p->shm ? sizeof(p->desc) : p->rec_len;
}

typedef struct sup {
	MPI_Comm comm;
	int rank;
	int wid;
	const gd__wcfg *cfg;
	gd__exec x;
	gd__placement place;
	int placed;

	/* receive buffers: each holds one MPI message and is free once every
	 * task in it is reported */
	gd__bytes *rbuf;
	int *rrefs;
	unsigned nrbuf;
	/* large messages go to shared buffers (memfds, shm.h) the executor maps:
	 * shm[0 .. nrbuf) receive them from MPI (process isolation only),
	 * shm[nrbuf .. nshm) are the drops rank 0 writes into itself */
	unsigned nshm;
	uint64_t drop_token;
	gd__shm *shm;  /* this rank's: fd -1 = none */
	gd__shm *xshm; /* the executor's views of them (its copy after fork) */

	/* tasks held, oldest first */
	pend *ring;
	unsigned cap, head, count;
	unsigned wr;        /* ring offset of the first task not fully written */
	size_t wr_off;      /* bytes of that task already written */
	gd__progress *prog; /* shared with the executor: what it runs */

	/* the executor */
	int ex;
	pid_t pid;
	int fd;
	int pidfd;          /* readable once the executor has exited; -1 without pidfds */
	int leaving;        /* cleanup done: it exits by itself, reaped after BYE */
	double ex_deadline; /* setup / cleanup deadline, 0 = none */
	gd__bytes in;
	uint32_t restarts;
	unsigned gen; /* counts executors started, to notice a replacement */

	/* results to rank 0, double-buffered */
	gd__bytes out[2];
	MPI_Request req[2];
	int cur;

	/* what recent results were like: the mean run time (moving average)
	 * and how many small results came in a row */
	double avg_task_s;
	unsigned small_results;

	int ready_sent;
	int big;           /* the last task message from rank 0 was large */
	unsigned big_held; /* large tasks held through MPI; rank 0 sends GD_BIG_MAX at most */
	unsigned shm_held; /* tasks held in shared memory (a drop or a receive buffer) */
	int stop, abort, retired;
	int err;
} sup;

#define RING(s, i) (&(s)->ring[((s)->head + (i)) % (s)->cap])

/* ------------------------------------------------------------ to rank 0 */

static gd__bytes *outbuf(sup *s)
{
	if (s->req[s->cur] != MPI_REQUEST_NULL)
		MPI_Wait(&s->req[s->cur], MPI_STATUS_IGNORE);
	return &s->out[s->cur];
}

static void flush_out(sup *s)
{
	gd__bytes *b = &s->out[s->cur];

	if (!b->len)
		return;
	if (MPI_Isend(b->p, (int)b->len, MPI_BYTE, 0, GD__TAG, s->comm, &s->req[s->cur]) !=
	    MPI_SUCCESS)
		s->err = GD_EMPI;
	s->cur ^= 1;
	outbuf(s)->len = 0;
}

static void send_rec(sup *s, uint8_t type, uint64_t task_id, uint16_t attempt, uint64_t aux,
                     const void *payload, size_t len, uint8_t flags)
{
	gd__rec r = {.type = type,
	             .flags = flags,
	             .attempt = attempt,
	             .worker = (uint32_t)s->wid,
	             .task_id = task_id,
	             .aux = aux,
	             .len = (uint32_t)len};

	if (gd__rec_append(outbuf(s), &r, payload))
		s->err = GD_ENOMEM;
}

static void send_msg(sup *s, uint8_t type, uint64_t task_id, uint16_t attempt, uint64_t aux,
                     uint8_t flags, const char *msg)
{
	send_rec(s, type, task_id, attempt, aux, msg, strlen(msg), flags);
}

/* ------------------------------------------------------------ held tasks */

static void release(sup *s, pend *p)
{
	if (--s->rrefs[p->buf] < 0)
		s->rrefs[p->buf] = 0;
	if (gd__shm_large(p->rec_len) && s->big_held)
		s->big_held--;
	if (p->shm && s->shm_held)
		s->shm_held--;
}

static void pop_head(sup *s)
{
	release(s, RING(s, 0));
	s->head = (s->head + 1) % s->cap;
	s->count--;
	if (s->wr > 0)
		s->wr--;
	else
		s->wr_off = 0;
}

/* Index in the ring of the task the executor is running, or -1; its start
 * in *start. */
static int running_task(sup *s, double *start)
{
	uint64_t id;

	if (!s->prog || !gd__progress_read(s->prog, &id, start))
		return -1;
	for (unsigned i = 0; i < s->count; i++)
		if (RING(s, i)->task_id == id)
			return (int)i;
	return -1;
}

/* Take task k out of the ring (it timed out or crashed its executor); the
 * tasks before it finished but their results may not have left the dead
 * executor: they are all written again to the next one. */
static void remove_task(sup *s, unsigned k)
{
	release(s, RING(s, k));
	for (unsigned i = k; i + 1 < s->count; i++)
		*RING(s, i) = *RING(s, i + 1);
	s->count--;
}

static void drop_all(sup *s)
{
	while (s->count)
		pop_head(s);
	s->wr = 0;
	s->wr_off = 0;
}

/* Start over with a fresh executor: everything held is written again. */
static void rewind_writes(sup *s)
{
	s->wr = 0;
	s->wr_off = 0;
}

/* ------------------------------------------------------------ executor */

static int reap_executor(sup *s, int force);

/* An executor that finished its cleanup and was let go: reap it now. */
static void reap_leaving(sup *s)
{
	if (!s->leaving)
		return;
	s->leaving = 0;
	s->ex = EX_CLEANING; /* reap_executor() reaps only an executor it knows */
	reap_executor(s, 0);
}

static int start_executor(sup *s)
{
	int rc;

	reap_leaving(s); /* not expected after a cleanup, but never two at once */
	if (s->prog)
		__atomic_store_n(&s->prog->running, 0, __ATOMIC_RELEASE);
	for (unsigned b = 0; s->xshm && b < s->nshm; b++) { /* it has mapped nothing yet */
		s->xshm[b].map = NULL;
		s->xshm[b].cap = 0;
	}
	rc = gd__exec_spawn(&s->x, s->placed ? &s->place : NULL, &s->pid, &s->fd);

	if (rc)
		return rc;
	s->ex = EX_STARTING;
	s->gen++;
	/* its exit is seen even when a process it forked keeps the socket open */
	s->pidfd = (int)syscall(SYS_pidfd_open, s->pid, 0);
	s->in.len = 0;
	s->ex_deadline = s->cfg->setup_timeout > 0 ? gd_now() + s->cfg->setup_timeout : 0;
	rewind_writes(s);
	return 0;
}

/* Reap the executor and what it started; \return its wait status. */
static int reap_executor(sup *s, int force)
{
	int status = 0;

	if (s->ex == EX_NONE)
		return 0;
	if (s->fd >= 0)
		close(s->fd);
	s->fd = -1;
	if (!force && s->pidfd >= 0) {
		/* it is done: give it 200 ms to exit by itself, told the moment
		 * it has (its exit tears down a copy of this rank's mappings,
		 * which takes a millisecond or two) */
		struct pollfd pfd = {.fd = s->pidfd, .events = POLLIN};

		while (poll(&pfd, 1, 200) < 0 && errno == EINTR)
			;
		if (waitpid(s->pid, &status, WNOHANG) == s->pid)
			goto reaped;
	} else if (!force) {
		/* no pidfd: 10 us, doubling to 10 ms, about 200 ms in all */
		for (long ns = 10000, waited = 0; waited < 200000000; waited += ns) {
			if (waitpid(s->pid, &status, WNOHANG) == s->pid)
				goto reaped;
			struct timespec ts = {0, ns};
			nanosleep(&ts, NULL);
			if (ns < 10000000)
				ns *= 2;
		}
	}
	kill(-s->pid, SIGKILL);
	while (waitpid(s->pid, &status, 0) < 0 && errno == EINTR)
		;
reaped:
	/* grandchildren left in its process group go too */
	kill(-s->pid, SIGKILL);
	if (s->pidfd >= 0) {
		close(s->pidfd);
		s->pidfd = -1;
	}
	s->ex = EX_NONE;
	return status;
}

static void retire(sup *s, const char *why)
{
	if (s->ex != EX_NONE)
		reap_executor(s, 1);
	send_msg(s, GD_REC_SETUP_FAIL, 0, 0, 0, 0, why);
	flush_out(s);
	drop_all(s);
	s->retired = 1;
}

/* After a crash or timeout: a fresh executor, unless it keeps failing. */
static void restart(sup *s)
{
	char why[160];

	s->restarts++;
	if (s->cfg->max_restarts && s->restarts > s->cfg->max_restarts) {
		snprintf(why, sizeof(why), "retired after %u executor restarts",
		         s->cfg->max_restarts);
		retire(s, why);
		return;
	}
	if (start_executor(s)) {
		snprintf(why, sizeof(why), "cannot start an executor: %s", strerror(errno));
		retire(s, why);
	}
}

static void executor_died(sup *s, int status)
{
	char what[160], msg[256];
	double start = 0;
	int k = running_task(s, &start); /* read before anything restarts */

	gd__describe_status(status, what, sizeof(what));
	switch (s->ex) {
	case EX_STARTING:
		s->ex = EX_NONE;
		snprintf(msg, sizeof(msg), "setup: executor %s", what);
		retire(s, msg);
		return;
	case EX_CLEANING:
		s->ex = EX_NONE;
		snprintf(msg, sizeof(msg), "cleanup: executor %s", what);
		send_msg(s, GD_REC_CLEANUP_FAIL, 0, 0, 0, 0, msg);
		return;
	default:
		break;
	}
	s->ex = EX_NONE;
	/* the task it was running is to blame; none when it died between tasks */
	if (k >= 0) {
		pend *t = RING(s, (unsigned)k);

		uint8_t p[GD_EXIT_BYTES + sizeof(what)];
		size_t n = strlen(what);

		gd__exit_put(p, WIFEXITED(status) ? WEXITSTATUS(status) : -1,
		             WIFSIGNALED(status) ? WTERMSIG(status) : 0);
		memcpy(p + GD_EXIT_BYTES, what, n);
		send_rec(s, GD_REC_ERROR, t->task_id, t->attempt,
		         (uint64_t)GD__MAX(0.0, (gd_now() - start) * 1e6), p, GD_EXIT_BYTES + n,
		         GD_RF_CRASH | GD_RF_EXIT);
		remove_task(s, (unsigned)k);
		flush_out(s);
	}
	restart(s);
}

static void read_executor(sup *s);

static void on_timeout(sup *s, uint64_t task_id, double start)
{
	unsigned gen = s->gen, k;
	char msg[96];

	/* results already in the socket are not thrown away with the executor */
	read_executor(s);
	if (s->gen != gen || s->ex != EX_RUNNING)
		return; /* it died meanwhile: handled there */
	for (k = 0; k < s->count && RING(s, k)->task_id != task_id; k++)
		;
	if (k == s->count)
		return; /* it finished after all */
	pend *t = RING(s, k);
	snprintf(msg, sizeof(msg), "timed out after %g s", s->cfg->task_timeout);
	reap_executor(s, 1);
	send_msg(s, GD_REC_TIMEOUT, t->task_id, t->attempt,
	         (uint64_t)GD__MAX(0.0, (gd_now() - start) * 1e6), 0, msg);
	remove_task(s, k);
	flush_out(s);
	restart(s);
}

/* One record from the executor. */
static void from_executor(sup *s, const gd__rec *r, const uint8_t *raw, size_t raw_len)
{
	char msg[1024];

	switch (s->ex) {
	case EX_STARTING:
		if (r->type == GD_REC_READY) {
			s->ex = EX_RUNNING;
			s->ex_deadline = 0;
			if (!s->ready_sent) {
				send_rec(s, GD_REC_READY, 0, 0, 0, NULL, 0, 0);
				flush_out(s);
				s->ready_sent = 1;
			}
			return;
		}
		if (r->type == GD_REC_SETUP_FAIL) {
			snprintf(msg, sizeof(msg), "%.*s", (int)GD__MIN(r->len, sizeof(msg) - 1),
			         (const char *)r->payload);
			retire(s, msg);
			return;
		}
		break;
	case EX_RUNNING:
		if (r->type == GD_REC_SETUP_FAIL) {
			/* gd_worker_retire(): its tasks go back to rank 0 untried */
			snprintf(msg, sizeof(msg), "%.*s", (int)GD__MIN(r->len, sizeof(msg) - 1),
			         (const char *)r->payload);
			flush_out(s);
			retire(s, msg);
			return;
		}
		if ((r->type == GD_REC_SUCCESS || r->type == GD_REC_ERROR) && s->count > 0 &&
		    r->task_id == RING(s, 0)->task_id) {
			double took = (double)r->aux * 1e-6;

			s->avg_task_s =
			        s->avg_task_s > 0 ? 0.875 * s->avg_task_s + 0.125 * took : took;
			s->small_results = !gd__shm_large(raw_len) ? s->small_results + 1 : 0;
			/* forward the record as it is: same format both ways */
			if (gd__bytes_append(outbuf(s), raw, raw_len))
				s->err = GD_ENOMEM;
			pop_head(s);
			return;
		}
		break;
	case EX_CLEANING:
		if (r->type == GD_REC_CLEANUP_OK || r->type == GD_REC_CLEANUP_FAIL) {
			if (r->type == GD_REC_CLEANUP_FAIL &&
			    gd__bytes_append(outbuf(s), raw, raw_len))
				s->err = GD_ENOMEM;
			/* it has nothing more to say.  It exits at the EOF of
			 * this socket, which reap_executor() closes after BYE
			 * went out: its exit tears down its copy of this rank
			 * (a millisecond or two of CPU), which on a shared core
			 * delayed BYE when it ran first; sup_free() reaps it */
			s->leaving = 1;
			s->ex = EX_NONE;
			return;
		}
		break;
	}
	/* anything else is a broken executor: treat it as a crash */
	snprintf(msg, sizeof(msg), "executor sent an unexpected %s record (task %llu)",
	         gd__rec_type_name(r->type), (unsigned long long)r->task_id);
	gd__log(s->rank, "worker %d: %s", s->wid, msg);
	executor_died(s, reap_executor(s, 1));
}

/* Read what the executor wrote; handle complete records. */
static void read_executor(sup *s)
{
	char err[160];
	size_t start = 0;
	unsigned gen = s->gen;
	int eof = 0;

	for (;;) {
		if (gd__bytes_reserve(&s->in, s->in.len + 65536)) {
			s->err = GD_ENOMEM;
			return;
		}
		ssize_t k = read(s->fd, s->in.p + s->in.len, s->in.cap - s->in.len);
		if (k > 0) {
			s->in.len += (size_t)k;
			if (s->in.len < s->in.cap)
				break;
			continue;
		}
		if (k < 0 && errno == EINTR)
			continue;
		if (k == 0 || (errno != EAGAIN && errno != EWOULDBLOCK))
			eof = 1;
		break;
	}
	while (s->ex != EX_NONE) {
		gd__rec r;
		size_t used = 0;
		int rc = gd__rec_parse(s->in.p + start, s->in.len - start, &r, &used, err,
		                       sizeof(err));

		if (rc == 0)
			break;
		if (rc < 0) {
			gd__log(s->rank, "worker %d: malformed record from the executor: %s",
			        s->wid, err);
			executor_died(s, reap_executor(s, 1));
			return;
		}
		from_executor(s, &r, s->in.p + start, used);
		start += used;
		if (s->gen != gen)
			break; /* replaced: the rest was the old executor's */
	}
	if (s->ex == EX_NONE || s->gen != gen) {
		s->in.len = 0;
		flush_out(s);
		return;
	}
	memmove(s->in.p, s->in.p + start, s->in.len - start);
	s->in.len -= start;
	flush_out(s);
	if (eof)
		executor_died(s, reap_executor(s, 0));
}

/* Write held tasks to the executor without blocking. */
static void write_executor(sup *s)
{
	struct iovec iov[64];
	int n = 0;

	if (s->ex != EX_RUNNING)
		return;
	for (unsigned i = s->wr; i < s->count && n < 64; i++) {
		pend *p = RING(s, i);
		size_t off = i == s->wr ? s->wr_off : 0;

		iov[n].iov_base = (void *)(wire_ptr(p) + off);
		iov[n].iov_len = wire_len(p) - off;
		n++;
	}
	if (!n)
		return;
	/* a socket send without SIGPIPE: the executor may have just died */
	struct msghdr mh = {.msg_iov = iov, .msg_iovlen = (size_t)n};
	ssize_t k = sendmsg(s->fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
	if (k < 0)
		return; /* EAGAIN; a dead executor shows up as EOF on read */
	size_t left = (size_t)k;
	while (left && s->wr < s->count) {
		pend *p = RING(s, s->wr);
		size_t rest = wire_len(p) - s->wr_off;

		if (left < rest) {
			s->wr_off += left;
			break;
		}
		left -= rest;
		s->wr++;
		s->wr_off = 0;
	}
}

/* ------------------------------------------------------------ from rank 0 */

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

	if (gd__shm_desc_get(r, &k, &off, &len) || k >= GD_DROPS || s->shm[s->nrbuf + k].fd < 0 ||
	    off < GD_DROP_OFF) {
		snprintf(c->err, sizeof(c->err), "a bad TASK_DROP record (task %llu)",
		         (unsigned long long)r->task_id);
		return -1;
	}
	gd__shm_desc_put(p->desc, r, GD_REC_TASK_SHM, s->nrbuf + k, off, len);
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
			gd__shm_desc_put(p->desc, r, GD_REC_TASK_SHM, (uint32_t)c->buf,
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
		return 0;
	case GD_REC_ABORT:
		s->abort = 1;
		return 0;
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
static int recv_rank0(sup *s)
{
	int got = 0;

	for (;;) {
		MPI_Message msg;
		MPI_Status st;
		int flag = 0, count = 0;
		unsigned b;

		if (MPI_Improbe(0, GD__TAG, s->comm, &flag, &msg, &st) != MPI_SUCCESS) {
			s->err = GD_EMPI;
			return got;
		}
		if (!flag)
			return got;
		got = 1;
		MPI_Get_count(&st, MPI_BYTE, &count);
		for (b = 0; b < s->nrbuf && s->rrefs[b]; b++)
			;
		/* a large one goes to shared buffer b, grown to fit while it is
		 * free (nothing points into it); else the socket carries it */
		if (b < s->nrbuf && gd__shm_large((size_t)count) &&
		    gd__shm_grow(&s->shm[b], (size_t)count) == 0) {
			MPI_Mrecv(s->shm[b].map, count, MPI_BYTE, &msg, MPI_STATUS_IGNORE);
			rctx c = {.s = s, .buf = (int)b, .shm = s->shm[b].map};
			if (gd__msg_foreach(s->shm[b].map, (size_t)count, from_rank0, &c, c.err,
			                    sizeof(c.err))) {
				char why[256];

				snprintf(why, sizeof(why), "malformed message from rank 0: %s",
				         c.err);
				gd__log(s->rank, "worker %d: %s", s->wid, why);
				retire(s, why);
			}
			s->big = 1;
			return 2;
		}
		if (b == s->nrbuf || gd__bytes_reserve(&s->rbuf[b], (size_t)count + 1)) {
			/* cannot happen while rank 0 keeps to the window */
			gd__log(s->rank, "worker %d: no receive buffer for a %d-byte message",
			        s->wid, count);
			s->err = GD_ENOMEM;
			MPI_Mrecv(NULL, 0, MPI_BYTE, &msg, MPI_STATUS_IGNORE);
			return got;
		}
		MPI_Mrecv(s->rbuf[b].p, count, MPI_BYTE, &msg, MPI_STATUS_IGNORE);
		s->rbuf[b].len = (size_t)count;
		rctx c = {.s = s, .buf = (int)b};
		int rc = gd__msg_foreach(s->rbuf[b].p, (size_t)count, from_rank0, &c, c.err,
		                         sizeof(c.err));
		if (rc) {
			char why[256];

			snprintf(why, sizeof(why), "malformed message from rank 0: %s", c.err);
			gd__log(s->rank, "worker %d: %s", s->wid, why);
			retire(s, why);
		}
		s->big = gd__shm_large((size_t)count);
		if (s->big)
			return 2;
	}
}

/* ------------------------------------------------------------ in-process */

/* GD_ISOLATE_NONE: run held tasks here, one after another. */
static void run_inline(sup *s)
{
	char err[64];
	unsigned since_flush = 0, batch = GD__MAX(1u, s->cap / 2);

	while (s->count && !s->abort) {
		pend *p = RING(s, 0);
		gd__rec r;
		size_t used;
		double took = 0;

		gd__rec_parse(wire_ptr(p), wire_len(p), &r, &used, err, sizeof(err));
		if (r.type == GD_REC_TASK_SHM && gd__exec_shm_task(&s->x, &r) < 0)
			send_msg(s, GD_REC_ERROR, p->task_id, p->attempt, 0, 0,
			         "cannot map the shared buffer holding the task");
		else if (gd__exec_task(&s->x, &r, outbuf(s), &took))
			s->err = GD_ENOMEM;
		if (s->x.w.retire) {
			/* gd_worker_retire(): the SETUP_FAIL record is out with
			 * the results before it; the task goes back untried */
			flush_out(s);
			drop_all(s);
			s->retired = 1;
			return;
		}
		pop_head(s);
		/* long tasks report at once, and look for an ABORT; tiny ones
		 * report in batches and run on without polling rank 0: a poll
		 * that finds nothing gives the core away on a shared node */
		if (++since_flush >= batch || took > 100e-6 ||
		    s->out[s->cur].len > GD_BATCH_BYTES) {
			flush_out(s);
			since_flush = 0;
			if (took > 100e-6)
				recv_rank0(s);
		}
	}
	flush_out(s);
}

/* ------------------------------------------------------------ main loop */

static void say_hello(sup *s, const char *note, const char *warning)
{
	gd__hello h = {.pid = (int32_t)getpid()};
	gd__bytes b = {0};

	gethostname(h.host, sizeof(h.host) - 1);
	if (s->placed)
		h.gpu = s->place.gpu;
	else
		h.gpu.index = h.gpu.numa_node = -1;
	gd__strlcpy(h.note, note, sizeof(h.note));
	gd__strlcpy(h.warning, warning, sizeof(h.warning));
	for (unsigned k = 0; k < GD_DROPS; k++)
		h.drop_fd[k] = s->drop_token ? s->shm[s->nrbuf + k].fd : -1;
	h.drop_token = s->drop_token;
	gd__strlcpy(s->x.w.host, h.host, sizeof(s->x.w.host));
	s->x.w.gpu = h.gpu;
	if (gd__hello_pack(&h, &b) == 0)
		send_rec(s, GD_REC_HELLO, 0, 0, 0, b.p, b.len, 0);
	else
		s->err = GD_ENOMEM;
	flush_out(s);
	gd__bytes_free(&b);
}

static int sup_init(sup *s, MPI_Comm comm, const gd_worker_class *cls, const gd__wcfg *cfg)
{
	memset(s, 0, sizeof(*s));
	MPI_Comm_rank(comm, &s->rank);
	s->comm = comm;
	s->wid = s->rank - 1;
	s->cfg = cfg;
	s->cap = cfg->window;
	s->nrbuf = cfg->window + 2;
	s->fd = -1;
	s->pidfd = -1;
	s->req[0] = s->req[1] = MPI_REQUEST_NULL;
	s->x.cls = cls;
	s->x.args = &cfg->args;
	s->x.w.id = s->wid;
	s->x.w.seed = cfg->base_seed + (uint64_t)s->wid;
	if (cfg->isolation != GD_ISOLATE_NONE) {
		void *p = mmap(NULL, sizeof(gd__progress), PROT_READ | PROT_WRITE,
		               MAP_SHARED | MAP_ANONYMOUS, -1, 0);

		if (p == MAP_FAILED)
			return GD_ESYS;
		s->prog = p;
		s->x.prog = p;
	}
	s->nshm = s->nrbuf + GD_DROPS;
	s->shm = malloc(s->nshm * sizeof(*s->shm));
	s->xshm = malloc(s->nshm * sizeof(*s->xshm));
	for (unsigned b = 0; s->shm && s->xshm && b < s->nshm; b++) {
		gd__shm_init(&s->shm[b]);
		gd__shm_init(&s->xshm[b]);
	}
	if (!s->shm || !s->xshm) {
		free(s->shm); /* nothing in them yet */
		free(s->xshm);
		s->shm = s->xshm = NULL;
		return GD_ENOMEM;
	}
	if (cfg->isolation != GD_ISOLATE_NONE) {
		s->x.keep = malloc((s->nshm + 1) * sizeof(int));
		if (!s->x.keep)
			return GD_ENOMEM;
		/* without memfds (an old kernel), large tasks take the socket */
		for (unsigned b = 0; b < s->nrbuf; b++)
			gd__shm_create(&s->shm[b], GD_SHM_TASK_NAME);
	}
	/* without drops (no memfds, no randomness) every large task comes
	 * through MPI: drop_token stays 0 */
	gd__shm_drops_make(&s->shm[s->nrbuf], &s->drop_token);
	for (unsigned b = 0; b < s->nshm; b++)
		s->xshm[b].fd = s->shm[b].fd;
	s->x.shm = s->xshm;
	s->x.n_shm = s->nshm;
	s->ring = calloc(s->cap, sizeof(*s->ring));
	s->rbuf = calloc(s->nrbuf, sizeof(*s->rbuf));
	s->rrefs = calloc(s->nrbuf, sizeof(*s->rrefs));
	if (!s->ring || !s->rbuf || !s->rrefs)
		return GD_ENOMEM;
	return 0;
}

static void sup_free(sup *s)
{
	reap_leaving(s);
	MPI_Waitall(2, s->req, MPI_STATUSES_IGNORE);
	for (unsigned i = 0; s->rbuf && i < s->nrbuf; i++)
		gd__bytes_free(&s->rbuf[i]);
	gd__bytes_free(&s->out[0]);
	gd__bytes_free(&s->out[1]);
	gd__bytes_free(&s->in);
	for (unsigned b = 0; s->shm && b < s->nshm; b++)
		gd__shm_close(&s->shm[b]);
	/* inline runs map the buffers through the executor's views */
	for (unsigned b = 0; !s->prog && s->xshm && b < s->nshm; b++)
		gd__shm_unmap(&s->xshm[b]);
	free(s->x.keep);
	free(s->shm);
	free(s->xshm);
	free(s->ring);
	free(s->rbuf);
	free(s->rrefs);
	if (s->prog)
		munmap(s->prog, sizeof(gd__progress));
}

/*
 * How long the supervisor may leave the executor's results in the socket,
 * or 0 to be woken by each one.  Waking on every result of a steady stream
 * of tasks costs the executor its next task's start: the write that wakes
 * the supervisor (a synchronous wake-up, on the writer's core) gives the
 * core away, about 7-10 us per task on a busy 2-core node.  While the
 * executor has LAZY_MIN_QUEUED tasks at hand, each of them long enough that
 * it reports them one by one, and their results are small (a socket full of
 * large ones would stop the executor), it writes without a waiter and the
 * supervisor picks the results up on a timer: at the latest when half of
 * the queued work is done, and within LAZY_MAX_S.  Results reach rank 0 that
 * much later, in batches; none is held inside the executor, so a crash
 * loses none.  Not while a task in shared memory is held: rank 0 sends the
 * next large task only once a drop or buffer is free, and a late result
 * would leave the executor waiting for it.
 */
static double lazy_wait(sup *s)
{
	double start;
	int k;

	if (s->ex != EX_RUNNING || s->big || s->shm_held || s->wr < s->count ||
	    s->avg_task_s < LAZY_MIN_TASK_S || s->small_results < LAZY_MIN_SMALL)
		return 0;
	k = running_task(s, &start);
	if (k < 0 || s->count - (unsigned)k < LAZY_MIN_QUEUED)
		return 0;
	return GD__MIN(LAZY_MAX_S, 0.5 * (double)(s->count - (unsigned)k - 1) * s->avg_task_s);
}

/* Wait for the executor or the next deadline, looking at MPI every
 * POLL_CAP_MS.  While large tasks flow and the window has room, rank 0's
 * next one may be waiting for this rank to take it (a rendezvous moves only
 * while both sides call MPI): look every POLL_CAP_BIG_S instead, so that it
 * is copied in while the executor runs.  While results may wait
 * (lazy_wait()), sleep that long without watching the socket, then take
 * them.  \return 1 if something may have happened. */
static int wait_executor(sup *s)
{
	double deadline = s->ex_deadline, now = gd_now(), start = 0;
	struct pollfd pfd[2] = {{.fd = s->fd, .events = POLLIN},
	                        {.fd = s->pidfd, .events = POLLIN}};
	double wait = s->big && s->count < s->cap && s->big_held < GD_BIG_MAX ? POLL_CAP_BIG_S
	                                                                      : POLL_CAP_MS * 1e-3;
	int k = -1, nfds = s->pidfd >= 0 ? 2 : 1;
	unsigned gen = s->gen;
	struct timespec ts;

	if (s->ex == EX_RUNNING && s->wr < s->count)
		pfd[0].events |= POLLOUT;
	if (s->ex == EX_RUNNING && s->cfg->task_timeout > 0 && (k = running_task(s, &start)) >= 0)
		deadline = start + s->cfg->task_timeout;
	if (deadline > 0) {
		if (now >= deadline)
			goto expired;
		wait = GD__MIN(wait, deadline - now + 1e-4);
	}
	double lazy = lazy_wait(s);
	if (lazy > 0) {
		pfd[0].fd = -1; /* ppoll() skips it; the executor's death still wakes us */
		wait = GD__MIN(wait, lazy);
	}
	ts.tv_sec = (time_t)wait;
	ts.tv_nsec = (long)((wait - (double)ts.tv_sec) * 1e9);
	if (ppoll(pfd, (nfds_t)nfds, &ts, NULL) > 0) {
		if (pfd[0].revents & POLLOUT)
			write_executor(s);
		if (pfd[0].revents & (POLLIN | POLLHUP | POLLERR))
			read_executor(s);
		/* the executor exited, but no EOF came: a process it forked
		 * without exec holds the socket.  Take what it wrote, then
		 * handle its death (the reap kills its process group). */
		if (nfds == 2 && (pfd[1].revents & POLLIN) && s->gen == gen && s->ex != EX_NONE) {
			read_executor(s);
			if (s->gen == gen && s->ex != EX_NONE)
				executor_died(s, reap_executor(s, 0));
		}
		return 1;
	}
	if (lazy > 0) {
		read_executor(s);
		if (s->gen != gen || s->ex != EX_RUNNING)
			return 1;
	}
	if (deadline == 0 || gd_now() < deadline)
		return lazy > 0;
expired:
	if (s->ex == EX_RUNNING) {
		/* still the same task? (it may have finished just now) */
		if (k >= 0 && running_task(s, &now) == k && now == start)
			on_timeout(s, RING(s, (unsigned)k)->task_id, start);
	} else if (s->ex == EX_STARTING) {
		char msg[96];

		snprintf(msg, sizeof(msg), "setup timed out after %g s", s->cfg->setup_timeout);
		retire(s, msg);
	} else if (s->ex == EX_CLEANING) {
		reap_executor(s, 1);
		send_msg(s, GD_REC_CLEANUP_FAIL, 0, 0, 0, 0, "cleanup timed out");
	}
	return 1;
}

static void begin_cleanup(sup *s)
{
	gd__rec r = {.type = GD_REC_CLEANUP, .worker = (uint32_t)s->wid};
	uint8_t hdr[GD_REC_HDR];
	double limit = GD__MAX(s->cfg->setup_timeout, s->cfg->task_timeout);

	gd__rec_put_hdr(hdr, &r);
	/* 28 bytes into an empty socket buffer: this does not block */
	if (send(s->fd, hdr, sizeof(hdr), MSG_NOSIGNAL) != (ssize_t)sizeof(hdr)) {
		/* it died while idle: nothing to clean up, nothing to restart */
		char what[160], msg[200];

		gd__describe_status(reap_executor(s, 0), what, sizeof(what));
		snprintf(msg, sizeof(msg), "cleanup: executor %s before cleanup", what);
		send_msg(s, GD_REC_CLEANUP_FAIL, 0, 0, 0, 0, msg);
		flush_out(s);
		return;
	}
	s->ex = EX_CLEANING;
	s->ex_deadline = limit > 0 ? gd_now() + limit : 0;
}

/* Send one small record now, without the supervisor's buffers (which may
 * be what failed). */
static void send_now(MPI_Comm comm, int wid, uint8_t type, const char *msg)
{
	uint8_t buf[GD_REC_HDR + 256];
	size_t n = msg ? GD__MIN(strlen(msg), (size_t)256) : 0;
	gd__rec r = {.type = type, .worker = (uint32_t)wid, .len = (uint32_t)n};

	gd__rec_put_hdr(buf, &r);
	if (n)
		memcpy(buf + GD_REC_HDR, msg, n);
	MPI_Send(buf, (int)(GD_REC_HDR + n), MPI_BYTE, 0, GD__TAG, comm);
}

/* A worker that cannot go on still leaves only when rank 0 says so: rank 0
 * may have sends to it in flight that complete only when received, and it
 * counts on a BYE.  Drop everything until STOP or ABORT. */
static void linger(MPI_Comm comm)
{
	for (;;) {
		MPI_Message m;
		MPI_Status st;
		int count = 0;
		uint8_t small[GD_REC_HDR], *p;

		if (gd__probe_wait(comm, 0, &m, &st))
			return;
		MPI_Get_count(&st, MPI_BYTE, &count);
		p = count > (int)sizeof(small) ? malloc((size_t)count) : small;
		/* without memory, a short receive still takes the message off */
		MPI_Mrecv(p ? p : small, p ? count : (int)sizeof(small), MPI_BYTE, &m,
		          MPI_STATUS_IGNORE);
		int type = count > 0 ? (p ? p[0] : small[0]) : 0;
		if (p && p != small)
			free(p);
		if (type == GD_REC_STOP || type == GD_REC_ABORT)
			return;
	}
}

int gd__worker_main(MPI_Comm comm, const gd_worker_class *cls, const gd__wcfg *cfg, int local_index,
                    int local_workers)
{
	char note[256] = "", warning[256] = "", err[256] = "";
	unsigned idle = 0;
	sup s;
	int rc;

	/* rank 0 decides how a run stops: mpirun forwards SIGTERM, SIGUSR1 and
	 * SIGUSR2 to every rank, and a worker that died of one would take its
	 * tasks with it.  Ignored for the run, restored after. */
	static const int stop_sigs[] = {SIGINT, SIGTERM, SIGUSR1, SIGUSR2};
	struct sigaction ign = {.sa_handler = SIG_IGN}, old[4];

	for (int k = 0; k < 4; k++)
		sigaction(stop_sigs[k], &ign, &old[k]);
	rc = sup_init(&s, comm, cls, cfg);
	if (rc) {
		char why[128];

		snprintf(why, sizeof(why), "worker cannot start: %s", gd_strerror(rc));
		send_now(comm, s.wid, GD_REC_SETUP_FAIL, why);
		linger(comm);
		send_now(comm, s.wid, GD_REC_BYE, NULL);
		goto out_free;
	}
	if (cfg->placement) {
		gd__place_req req = {.local_index = local_index,
		                     .local_workers = local_workers,
		                     .gpu_ids = cfg->gpu_ids,
		                     .n_gpu_ids = cfg->n_gpu_ids,
		                     .workers_per_gpu = cfg->workers_per_gpu};

		if (gd__place_compute(&req, &s.place, err, sizeof(err)) == 0) {
			s.placed = 1;
			gd__strlcpy(note, s.place.note, sizeof(note));
			gd__strlcpy(warning, s.place.warning, sizeof(warning));
		}
	}
	say_hello(&s, note, warning);
	if (cfg->placement && !s.placed) {
		char why[320];

		snprintf(why, sizeof(why), "placement: %s", err);
		retire(&s, why);
	} else if (cfg->isolation == GD_ISOLATE_NONE) {
		gd__bytes *b = outbuf(&s);
		size_t before = b->len;

		if (s.placed && gd__place_apply(&s.place, err, sizeof(err)) < 0) {
			char why[320];

			snprintf(why, sizeof(why), "placement: %s", err);
			retire(&s, why);
		} else if (gd__exec_setup(&s.x, b)) {
			s.err = GD_ENOMEM;
		} else if (b->p[before] == GD_REC_SETUP_FAIL) {
			s.retired = 1;
		}
		s.ready_sent = 1;
		flush_out(&s);
	} else if (start_executor(&s)) {
		snprintf(err, sizeof(err), "cannot start an executor: %s", strerror(errno));
		retire(&s, err);
	}

	while (!s.err) {
		int busy = recv_rank0(&s);

		if (s.abort) {
			if (s.ex != EX_NONE)
				reap_executor(&s, 1);
			drop_all(&s);
			break;
		}
		if (cfg->isolation == GD_ISOLATE_NONE && !s.retired) {
			if (s.count) {
				run_inline(&s);
				idle = 0;
				continue;
			}
			if (s.stop) {
				gd__bytes *b = outbuf(&s);
				size_t before = b->len;

				if (gd__exec_cleanup(&s.x, b))
					s.err = GD_ENOMEM;
				else if (b->p[before] == GD_REC_CLEANUP_OK)
					b->len = before; /* only a failure is reported */
				break;
			}
		} else {
			if (s.stop && s.count == 0 && s.ex == EX_RUNNING)
				begin_cleanup(&s);
			if (s.stop && s.ex == EX_NONE)
				break;
			if (s.ex != EX_NONE) {
				write_executor(&s);
				/* the executor has work, or is starting / cleaning;
				 * after a large task, look for the next one first so
				 * that its copy overlaps the executor's run */
				if (busy < 2 && (s.count || s.ex != EX_RUNNING)) {
					wait_executor(&s);
					idle = 0;
					continue;
				}
			}
		}
		if (busy)
			idle = 0;
		else
			/* while large tasks flow, the next one moves only when
			 * this rank is in MPI: poll a few ms before sleeping */
			gd__backoff(&idle, s.big && s.count < s.cap ? 2000 : 20, 0);
	}
	if (s.ex != EX_NONE)
		reap_executor(&s, 1);
	if (s.err && !s.stop && !s.abort) {
		char why[128];

		MPI_Waitall(2, s.req, MPI_STATUSES_IGNORE);
		snprintf(why, sizeof(why), "worker failed: %s", gd_strerror(s.err));
		gd__log(s.rank, "worker %d: %s", s.wid, why);
		if (!s.retired)
			send_now(comm, s.wid, GD_REC_SETUP_FAIL, why);
		linger(comm);
		send_now(comm, s.wid, GD_REC_BYE, NULL);
	} else {
		send_rec(&s, GD_REC_BYE, 0, 0, 0, NULL, 0, 0);
		flush_out(&s);
	}
	rc = s.err;
out_free:
	sup_free(&s);
	for (int k = 0; k < 4; k++)
		sigaction(stop_sigs[k], &old[k], NULL);
	return rc;
}

int gd__probe_wait(MPI_Comm comm, int source, MPI_Message *m, MPI_Status *st)
{
	unsigned idle = 0;
	int flag = 0;

	for (;;) {
		if (MPI_Improbe(source, GD__TAG, comm, &flag, m, st) != MPI_SUCCESS)
			return GD_EMPI;
		if (flag)
			return 0;
		gd__backoff(&idle, 20, 0);
	}
}

void gd__backoff(unsigned *idle, unsigned spins, double hint_s)
{
	/* First poll again at once: an MPI poll that finds nothing already
	 * yields the core when the node is oversubscribed (Open MPI's
	 * mpi_yield_when_idle), so a yield of ours would be a second context
	 * switch for nothing, and on a core of its own a rank may spin.  Then
	 * yield: on shared cores that runs whoever has work (an executor,
	 * another rank) and comes back within microseconds.  Then sleep, from
	 * 10 us up to 1 ms: a sleep costs at least the timer slack (50 us by
	 * default), too much while tiny tasks flow.  A caller that knows nothing
	 * can arrive for a while (hint_s) sleeps that long at once. */
	unsigned n = (*idle)++;
	struct timespec ts = {0, 0};

	if (hint_s >= 20e-6 && n >= 3) {
		ts.tv_nsec = (long)(GD__MIN(hint_s, 1e-3) * 1e9);
		nanosleep(&ts, NULL);
		return;
	}
	if (n < spins)
		return;
	if (n < 2 * spins) {
		sched_yield();
		return;
	}
	n = (n - 2 * spins) / 16;
	ts.tv_nsec = n >= 7 ? 1000000L : 10000L << n;
	nanosleep(&ts, NULL);
}
