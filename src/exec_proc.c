/*
 * The executor process of a worker rank: starting it (fork, socket, pidfd),
 * writing it the held tasks, reading its records, reaping it, replacing it
 * when a task times out or crashes it, and waiting for it: the supervisor
 * blocks in poll() on its socket while it works and looks at MPI in
 * between, so a worker rank does not spin on a shared core.
 */
#define _GNU_SOURCE
#include "sup.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* Longest a supervisor waits in poll() before looking at MPI again; the
 * shorter cap applies while a large task is expected from rank 0. */
#define POLL_CAP_MS    20
#define POLL_CAP_BIG_S 100e-6

/* Unhurried collection of results (see gd__sup_wait_executor): the
 * longest sleep, the shortest tasks it applies to, the tasks the executor
 * must have at hand, and the run of small results (not gd__shm_large()) it
 * needs first. */
#define LAZY_MAX_S      2e-3
#define LAZY_MIN_TASK_S 50e-6
#define LAZY_MIN_QUEUED 3
#define LAZY_MIN_SMALL  8

/* An executor that finished its cleanup and was let go: reap it now. */
void gd__sup_reap_leaving(sup *s)
{
	if (!s->leaving)
		return;
	s->leaving = 0;
	s->ex = EX_CLEANING; /* gd__sup_reap_executor() reaps only an executor it knows */
	gd__sup_reap_executor(s, 0);
}

int gd__sup_start_executor(sup *s)
{
	int rc;

	gd__sup_reap_leaving(s); /* not expected after a cleanup, but never two at once */
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
	gd__held_rewind(s);
	return 0;
}

/* Reap the executor and what it started; \return its wait status. */
int gd__sup_reap_executor(sup *s, int force)
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
	/* stopped, it starts nothing more; what its tasks started, even in a
	 * session of their own, is its child by now (it is a subreaper) or a
	 * descendant: all of it goes before the executor does */
	kill(s->pid, SIGSTOP);
	gd__kill_descendants(s->pid);
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

/* After a crash or timeout: a fresh executor, unless it keeps failing. */
static void restart(sup *s)
{
	char why[160];

	s->restarts++;
	if (s->cfg->max_restarts && s->restarts > s->cfg->max_restarts) {
		snprintf(why, sizeof(why), "retired after %u executor restarts",
		         s->cfg->max_restarts);
		gd__sup_retire(s, why);
		return;
	}
	if (gd__sup_start_executor(s)) {
		snprintf(why, sizeof(why), "cannot start an executor: %s", strerror(errno));
		gd__sup_retire(s, why);
	}
}

static void executor_died(sup *s, int status)
{
	char what[160], msg[256];
	double start = 0;
	int k = gd__held_running(s, &start); /* read before anything restarts */

	gd__describe_status(status, what, sizeof(what));
	switch (s->ex) {
	case EX_STARTING:
		s->ex = EX_NONE;
		snprintf(msg, sizeof(msg), "setup: executor %s", what);
		gd__sup_retire(s, msg);
		return;
	case EX_CLEANING:
		s->ex = EX_NONE;
		snprintf(msg, sizeof(msg), "cleanup: executor %s", what);
		gd__sup_send_msg(s, GD_REC_CLEANUP_FAIL, 0, 0, 0, 0, msg);
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
		gd__sup_send_rec(s, GD_REC_ERROR, t->task_id, t->attempt,
		                 (uint64_t)GD__MAX(0.0, (gd_now() - start) * 1e6), p,
		                 GD_EXIT_BYTES + n, GD_RF_CRASH | GD_RF_EXIT);
		gd__held_remove(s, (unsigned)k);
		gd__sup_flush(s);
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
	gd__sup_reap_executor(s, 1);
	gd__sup_send_msg(s, GD_REC_TIMEOUT, t->task_id, t->attempt,
	                 (uint64_t)GD__MAX(0.0, (gd_now() - start) * 1e6), 0, msg);
	gd__held_remove(s, k);
	gd__sup_flush(s);
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
				gd__sup_send_rec(s, GD_REC_READY, 0, 0, 0, NULL, 0, 0);
				gd__sup_flush(s);
				s->ready_sent = 1;
			}
			return;
		}
		if (r->type == GD_REC_SETUP_FAIL) {
			snprintf(msg, sizeof(msg), "%.*s", (int)GD__MIN(r->len, sizeof(msg) - 1),
			         (const char *)r->payload);
			gd__sup_retire(s, msg);
			return;
		}
		break;
	case EX_RUNNING:
		if (r->type == GD_REC_SETUP_FAIL) {
			/* gd_worker_retire(): its tasks go back to rank 0 untried */
			snprintf(msg, sizeof(msg), "%.*s", (int)GD__MIN(r->len, sizeof(msg) - 1),
			         (const char *)r->payload);
			gd__sup_flush(s);
			gd__sup_retire(s, msg);
			return;
		}
		if ((r->type == GD_REC_SUCCESS || r->type == GD_REC_ERROR) && s->count > 0 &&
		    r->task_id == RING(s, 0)->task_id) {
			double took = (double)r->aux * 1e-6;

			s->avg_task_s =
			        s->avg_task_s > 0 ? 0.875 * s->avg_task_s + 0.125 * took : took;
			s->small_results = !gd__shm_large(raw_len) ? s->small_results + 1 : 0;
			/* forward the record as it is: same format both ways */
			if (gd__bytes_append(gd__sup_outbuf(s), raw, raw_len))
				s->err = GD_ENOMEM;
			gd__held_pop(s);
			return;
		}
		break;
	case EX_CLEANING:
		if (r->type == GD_REC_CLEANUP_OK || r->type == GD_REC_CLEANUP_FAIL) {
			if (r->type == GD_REC_CLEANUP_FAIL &&
			    gd__bytes_append(gd__sup_outbuf(s), raw, raw_len))
				s->err = GD_ENOMEM;
			/* it has nothing more to say.  It exits at the EOF of
			 * this socket, which gd__sup_reap_executor() closes after BYE
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
	executor_died(s, gd__sup_reap_executor(s, 1));
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
			executor_died(s, gd__sup_reap_executor(s, 1));
			return;
		}
		from_executor(s, &r, s->in.p + start, used);
		start += used;
		if (s->gen != gen)
			break; /* replaced: the rest was the old executor's */
	}
	if (s->ex == EX_NONE || s->gen != gen) {
		s->in.len = 0;
		gd__sup_flush(s);
		return;
	}
	memmove(s->in.p, s->in.p + start, s->in.len - start);
	s->in.len -= start;
	gd__sup_flush(s);
	if (eof)
		executor_died(s, gd__sup_reap_executor(s, 0));
}

/* Write held tasks to the executor without blocking. */
void gd__sup_write_executor(sup *s)
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
	k = gd__held_running(s, &start);
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
int gd__sup_wait_executor(sup *s)
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
	if (s->ex == EX_RUNNING && s->cfg->task_timeout > 0 &&
	    (k = gd__held_running(s, &start)) >= 0)
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
			gd__sup_write_executor(s);
		if (pfd[0].revents & (POLLIN | POLLHUP | POLLERR))
			read_executor(s);
		/* the executor exited, but no EOF came: a process it forked
		 * without exec holds the socket.  Take what it wrote, then
		 * handle its death (the reap kills its process group). */
		if (nfds == 2 && (pfd[1].revents & POLLIN) && s->gen == gen && s->ex != EX_NONE) {
			read_executor(s);
			if (s->gen == gen && s->ex != EX_NONE)
				executor_died(s, gd__sup_reap_executor(s, 0));
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
		if (k >= 0 && gd__held_running(s, &now) == k && now == start)
			on_timeout(s, RING(s, (unsigned)k)->task_id, start);
	} else if (s->ex == EX_STARTING) {
		char msg[96];

		snprintf(msg, sizeof(msg), "setup timed out after %g s", s->cfg->setup_timeout);
		gd__sup_retire(s, msg);
	} else if (s->ex == EX_CLEANING) {
		gd__sup_reap_executor(s, 1);
		gd__sup_send_msg(s, GD_REC_CLEANUP_FAIL, 0, 0, 0, 0, "cleanup timed out");
	}
	return 1;
}

void gd__sup_begin_cleanup(sup *s)
{
	gd__rec r = {.type = GD_REC_CLEANUP, .worker = (uint32_t)s->wid};
	uint8_t hdr[GD_REC_HDR];
	double limit = GD__MAX(s->cfg->setup_timeout, s->cfg->task_timeout);

	gd__rec_put_hdr(hdr, &r);
	/* 28 bytes into an empty socket buffer: this does not block */
	if (send(s->fd, hdr, sizeof(hdr), MSG_NOSIGNAL) != (ssize_t)sizeof(hdr)) {
		/* it died while idle: nothing to clean up, nothing to restart */
		char what[160], msg[200];

		gd__describe_status(gd__sup_reap_executor(s, 0), what, sizeof(what));
		snprintf(msg, sizeof(msg), "cleanup: executor %s before cleanup", what);
		gd__sup_send_msg(s, GD_REC_CLEANUP_FAIL, 0, 0, 0, 0, msg);
		gd__sup_flush(s);
		return;
	}
	s->ex = EX_CLEANING;
	s->ex_deadline = limit > 0 ? gd_now() + limit : 0;
}

/* Retire the worker: its executor is killed, rank 0 is told why (a
 * setup failure), and the tasks it held go back untried. */
void gd__sup_retire(sup *s, const char *why)
{
	if (s->ex != EX_NONE)
		gd__sup_reap_executor(s, 1);
	gd__sup_send_msg(s, GD_REC_SETUP_FAIL, 0, 0, 0, 0, why);
	gd__sup_flush(s);
	gd__held_drop_all(s);
	s->retired = 1;
}
