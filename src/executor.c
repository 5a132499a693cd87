/*
 * The executor: runs setup/process/cleanup of the worker class and turns
 * their outcome into records.  gd__exec_spawn() forks it as a process that
 * never touches MPI (see docs/design.md, "Executor and supervisor").
 */
#define _GNU_SOURCE
#include "executor.h"
#include "placement.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>

#define GD__MSG_MAX 4096 /* error messages are cut to this many bytes */

/* ------------------------------------------------------------ worker API */

int gd_worker_id(const gd_worker *w)
{
	return w->id;
}

uint64_t gd_worker_seed(const gd_worker *w)
{
	return w->seed;
}

const gd_gpu *gd_worker_gpu(const gd_worker *w)
{
	return &w->gpu;
}

int gd_worker_gpu_count(const gd_worker *w)
{
	return w ? w->n_gpus : 0;
}

const gd_gpu *gd_worker_gpu_at(const gd_worker *w, int i)
{
	if (!w || i < 0 || i >= w->n_gpus)
		return NULL;
	return &w->gpus[i];
}

const char *gd_worker_host(const gd_worker *w)
{
	return w->host;
}

void gd_worker_set_data(gd_worker *w, void *data)
{
	w->data = data;
}

void *gd_worker_data(const gd_worker *w)
{
	return w->data;
}

void gd_worker_set_error(gd_worker *w, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(w->error, sizeof(w->error), fmt, ap);
	va_end(ap);
}

void gd_worker_task_started(gd_worker *w)
{
	w->task_start = gd_now();
	/* the supervisor times the task from start_ns: from now on */
	if (w->prog)
		__atomic_store_n(&w->prog->start_ns, (uint64_t)(w->task_start * 1e9),
		                 __ATOMIC_RELEASE);
}

void gd_worker_restarted(gd_worker *w)
{
	w->restarted = 1;
}

int gd_worker_retire(gd_worker *w, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(w->error, sizeof(w->error), fmt, ap);
	va_end(ap);
	w->retire = 1;
	return GD_EINVAL;
}

/* ------------------------------------------------------------ result API */

void *gd_result_reserve(gd_result *r, size_t len)
{
	if (len > GD_REC_MAX_PAYLOAD) {
		r->too_big = 1;
		return NULL;
	}
	r->out->len = r->hdr + GD_REC_HDR;
	return gd__bytes_grow(r->out, len);
}

int gd_result_set(gd_result *r, const void *data, size_t len)
{
	void *p = gd_result_reserve(r, len);

	if (!p)
		return r->too_big ? GD_ETOOBIG : GD_ENOMEM;
	if (len)
		memcpy(p, data, len);
	return 0;
}

/* printf into msg (GD__MSG_MAX bytes); \return the length kept. */
static size_t vmsg(char *msg, const char *fmt, va_list ap)
{
	int n = vsnprintf(msg, GD__MSG_MAX, fmt, ap);

	return n < 0 ? 0 : GD__MIN((size_t)n, (size_t)GD__MSG_MAX - 1);
}

int gd_result_error(gd_result *r, const char *fmt, ...)
{
	char msg[GD__MSG_MAX];
	va_list ap;
	size_t n;

	va_start(ap, fmt);
	n = vmsg(msg, fmt, ap);
	va_end(ap);
	r->failed = 1;
	r->out->len = r->hdr + GD_REC_HDR;
	gd__bytes_append(r->out, msg, n);
	return GD_EINVAL;
}

int gd_result_set_exit(gd_result *r, int status, int signal)
{
	if (!r || status < -1 || signal < 0 || (status >= 0 && signal))
		return GD_EINVAL;
	r->has_exit = 1;
	r->exit_status = status;
	r->exit_signal = signal;
	return 0;
}

/* ------------------------------------------------------------ records */

/* Append a record whose payload is a printf'd message. */
static int append_msg(gd__bytes *out, gd__rec *rec, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

static int append_msg(gd__bytes *out, gd__rec *rec, const char *fmt, ...)
{
	char msg[GD__MSG_MAX];
	va_list ap;

	va_start(ap, fmt);
	rec->len = (uint32_t)vmsg(msg, fmt, ap);
	va_end(ap);
	return gd__rec_append(out, rec, msg);
}

int gd__exec_setup(gd__exec *x, gd__bytes *out)
{
	gd__rec rec = {.type = GD_REC_READY, .worker = (uint32_t)x->w.id};
	int rc = 0;

	x->w.error[0] = '\0';
	if (x->cls->setup)
		rc = x->cls->setup(&x->w, x->args);
	if (rc == 0) {
		x->set_up = 1;
		return gd__rec_append(out, &rec, NULL);
	}
	rec.type = GD_REC_SETUP_FAIL;
	if (x->w.error[0])
		return append_msg(out, &rec, "%s", x->w.error);
	return append_msg(out, &rec, "setup() returned %d", rc);
}

int gd__exec_task(gd__exec *x, const gd__rec *task, gd__bytes *out, double *elapsed_s)
{
	gd_task t = {.id = task->task_id,
	             .attempt = task->attempt,
	             .data = task->payload,
	             .len = task->len};
	gd__rec rec = {.type = GD_REC_SUCCESS,
	               .attempt = task->attempt,
	               .worker = (uint32_t)x->w.id,
	               .task_id = task->task_id};
	gd_result r = {.out = out, .hdr = out->len};
	double t0;
	int rc;

	/* the header is written once the payload's length is known */
	if (!gd__bytes_grow(out, GD_REC_HDR))
		return GD_ENOMEM;
	t0 = gd_now();
	if (x->prog) {
		/* release: the previous task's running = 0 is seen first */
		__atomic_store_n(&x->prog->start_ns, (uint64_t)(t0 * 1e9), __ATOMIC_RELEASE);
		__atomic_store_n(&x->prog->running, task->task_id + 1, __ATOMIC_RELEASE);
	}
	x->w.prog = x->prog;
	x->w.task_start = t0;
	x->w.restarted = 0;
	rc = x->cls->process(&x->w, &t, &r);
	if (x->prog)
		__atomic_store_n(&x->prog->running, 0, __ATOMIC_RELEASE);
	*elapsed_s = gd_now() - x->w.task_start;
	rec.aux = (uint64_t)(*elapsed_s * 1e6);
	if (x->w.restarted)
		rec.flags |= GD_RF_RESTART;
	if (x->w.retire) {
		/* the task goes back untried: the worker retires instead */
		out->len = r.hdr;
		rec.type = GD_REC_SETUP_FAIL;
		return append_msg(out, &rec, "%s", x->w.error[0] ? x->w.error : "retired");
	}
	if (r.too_big) {
		out->len = r.hdr;
		rec.type = GD_REC_ERROR;
		return append_msg(out, &rec, "result larger than %u bytes", GD_REC_MAX_PAYLOAD);
	}
	if (rc != 0 || r.failed) {
		rec.type = GD_REC_ERROR;
		if (!r.failed) {
			/* result bytes without gd_result_error(): not a message */
			out->len = r.hdr;
			return append_msg(out, &rec, "process() returned %d", rc);
		}
	}
	if (out->len < r.hdr + GD_REC_HDR)
		out->len = r.hdr + GD_REC_HDR; /* process() set nothing: empty result */
	if (rec.type == GD_REC_ERROR && r.has_exit) {
		/* the exit status goes in front of the message (GD_RF_EXIT) */
		size_t at = r.hdr + GD_REC_HDR, n = out->len - at;
		if (!gd__bytes_grow(out, GD_EXIT_BYTES))
			return GD_ENOMEM;
		memmove(out->p + at + GD_EXIT_BYTES, out->p + at, n);
		gd__exit_put(out->p + at, r.exit_status, r.exit_signal);
		rec.flags |= GD_RF_EXIT;
	}
	rec.len = (uint32_t)(out->len - r.hdr - GD_REC_HDR);
	gd__rec_put_hdr(out->p + r.hdr, &rec);
	return 0;
}

int gd__exec_cleanup(gd__exec *x, gd__bytes *out)
{
	gd__rec rec = {.type = GD_REC_CLEANUP_OK, .worker = (uint32_t)x->w.id};
	int rc = 0;

	x->w.error[0] = '\0';
	if (x->set_up && x->cls->cleanup)
		rc = x->cls->cleanup(&x->w);
	x->set_up = 0;
	if (rc == 0)
		return gd__rec_append(out, &rec, NULL);
	rec.type = GD_REC_CLEANUP_FAIL;
	if (x->w.error[0])
		return append_msg(out, &rec, "%s", x->w.error);
	return append_msg(out, &rec, "cleanup() returned %d", rc);
}

int gd__progress_read(const gd__progress *p, uint64_t *task_id, double *start)
{
	for (int tries = 0; tries < 100; tries++) {
		uint64_t r1 = __atomic_load_n(&p->running, __ATOMIC_ACQUIRE);
		uint64_t ns = __atomic_load_n(&p->start_ns, __ATOMIC_ACQUIRE);
		uint64_t r2 = __atomic_load_n(&p->running, __ATOMIC_ACQUIRE);

		if (r1 != r2)
			continue; /* it moved on while we looked */
		if (!r1)
			return 0;
		*task_id = r1 - 1;
		*start = (double)ns * 1e-9;
		return 1;
	}
	return 0;
}

/* ------------------------------------------------------------ the process */

/* The executor's end after its setup: what it started goes with it. */
static void __attribute__((noreturn)) leave(int code)
{
	gd__kill_descendants(getpid());
	_exit(code);
}

static void write_all(int fd, const uint8_t *p, size_t n)
{
	while (n) {
		ssize_t k = write(fd, p, n);

		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			leave(0); /* the supervisor is gone: nobody to report to */
		p += k;
		n -= (size_t)k;
	}
}

/*
 * After its cleanup: wait until the supervisor closes the socket.  The exit
 * tears down this copy of the rank's mappings, a millisecond or two of CPU;
 * the supervisor closes the socket once its BYE is out, so that on a core
 * shared with it the teardown comes after the BYE rather than before.
 * Whatever else arrives is dropped.  A supervisor that dies closes it too.
 */
static void wait_eof(int fd)
{
	char buf[256];

	for (;;) {
		ssize_t k = read(fd, buf, sizeof(buf));

		if (k == 0 || (k < 0 && errno != EINTR))
			return;
	}
}

/* Undo what the MPI process set up that a plain child must not keep: Open
 * MPI's handlers for SIGSEGV & co. (they would print its backtrace for a
 * crash of the user's code), blocked signals, and every inherited fd but
 * stdio and the socket. */
static int cmp_int(const void *a, const void *b)
{
	return *(const int *)a - *(const int *)b;
}

static int child_reset(const gd__exec *x, int fd, pid_t parent)
{
	int one, *keep = x->keep ? x->keep : &one, n = 0, from = 3;
	sigset_t none;

	for (int sig = 1; sig < NSIG; sig++)
		if (sig != SIGKILL && sig != SIGSTOP)
			signal(sig, SIG_DFL);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	/* our own process group: a timeout kills the executor and every process
	 * it started in one kill(-pgid) */
	setpgid(0, 0);
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	/* a subreaper: what a task leaves behind, even after setsid() (a new
	 * session and process group), becomes our child when its parent
	 * exits, so that it is found and killed (gd__kill_descendants) */
	prctl(PR_SET_CHILD_SUBREAPER, 1);
	if (getppid() != parent)
		_exit(0);
	/* close every inherited fd but the socket and the task buffers (all
	 * close-on-exec: a program a task runs gets none of them) */
	keep[n++] = fd;
	for (unsigned i = 0; x->keep && i < x->n_shm; i++)
		if (x->shm[i].fd >= 0)
			keep[n++] = x->shm[i].fd;
	qsort(keep, (size_t)n, sizeof(int), cmp_int);
	for (int i = 0; i < n; i++) {
		if (keep[i] > from)
			close_range((unsigned)from, (unsigned)keep[i] - 1, 0);
		from = keep[i] + 1;
	}
	close_range((unsigned)from, ~0U, 0);
	fcntl(fd, F_SETFD, FD_CLOEXEC);
	return fd;
}

int gd__exec_shm_task(gd__exec *x, gd__rec *r)
{
	uint32_t b;
	uint64_t off, len;

	if (gd__rec_desc_get(r, &b, &off, &len) || b >= x->n_shm || off > SIZE_MAX - len)
		return GD_EPROTO;
	if (gd__shm_map_ro(&x->shm[b], (size_t)(off + len)))
		return GD_ESYS;
	r->payload = x->shm[b].map + off;
	r->len = (uint32_t)len;
	r->type = GD_REC_TASK;
	return 0;
}

static void __attribute__((noreturn)) child_main(gd__exec *x, const gd__placement *place, int fd)
{
	gd__bytes in = {0}, out = {0};
	char err[512] = "";
	size_t start = 0;

	if (place && gd__place_apply(place, err, sizeof(err)) < 0) {
		gd__rec rec = {.type = GD_REC_SETUP_FAIL, .worker = (uint32_t)x->w.id};

		append_msg(&out, &rec, "placement: %s", err);
		write_all(fd, out.p, out.len);
		_exit(0);
	}
	/* dprintf: no stdio lock, which another thread may have held at fork */
	if (err[0])
		dprintf(2, "gpudispatch: worker %d: placement: %s\n", x->w.id, err);
	if (gd__bytes_reserve(&in, 65536) || gd__exec_setup(x, &out))
		leave(1);
	write_all(fd, out.p, out.len);
	out.len = 0;
	if (!x->set_up)
		leave(0);
	for (;;) {
		gd__rec rec, next;
		size_t used = 0, used2;
		int rc = gd__rec_parse(in.p + start, in.len - start, &rec, &used, err, sizeof(err));

		if (rc < 0) {
			dprintf(2, "gpudispatch: worker %d executor: %s\n", x->w.id, err);
			leave(2);
		}
		if (rc == 1) {
			start += used;
			if (rec.type == GD_REC_CLEANUP) {
				if (gd__exec_cleanup(x, &out))
					leave(1);
				/* nothing a task or worker program started outlives
				 * the executor */
				gd__kill_descendants(getpid());
				/* _exit() flushes no stdio buffer: what the tasks
				 * printed to a pipe or a file would be lost */
				fflush(NULL);
				write_all(fd, out.p, out.len);
				wait_eof(fd);
				leave(0);
			}
			if (rec.type == GD_REC_TASK_SHM && gd__exec_shm_task(x, &rec) < 0) {
				dprintf(2,
				        "gpudispatch: worker %d executor: a bad shared-memory "
				        "task\n",
				        x->w.id);
				leave(2);
			}
			if (rec.type != GD_REC_TASK)
				continue;
			double took;
			if (gd__exec_task(x, &rec, &out, &took))
				leave(1);
			if (x->w.retire) {
				/* runs nothing more: the supervisor ends it */
				write_all(fd, out.p, out.len);
				wait_eof(fd);
				leave(0);
			}
			/* Results of tiny tasks go out in batches: one write (and one
			 * wake-up of the supervisor) for many.  Only while the next
			 * task is already here, so nothing waits on a read; the
			 * supervisor follows the running task in the shared page. */
			if (took < 100e-6 && out.len < GD_BATCH_BYTES &&
			    gd__rec_parse(in.p + start, in.len - start, &next, &used2, err,
			                  sizeof(err)) == 1 &&
			    (next.type == GD_REC_TASK || next.type == GD_REC_TASK_SHM))
				continue;
			write_all(fd, out.p, out.len);
			out.len = 0;
			continue;
		}
		/* need more bytes: first send what is done, then keep the
		 * partial record at the front */
		if (out.len) {
			write_all(fd, out.p, out.len);
			out.len = 0;
		}
		if (start) {
			memmove(in.p, in.p + start, in.len - start);
			in.len -= start;
			start = 0;
		}
		size_t want = 65536;
		if (in.len >= GD_REC_HDR) {
			size_t need = GD_REC_HDR + (size_t)gd__get_u32(in.p + 24);
			if (need > in.len)
				want = GD__MAX(want, need - in.len);
		}
		if (gd__bytes_reserve(&in, in.len + want))
			_exit(1);
		ssize_t k = read(fd, in.p + in.len, in.cap - in.len);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0) {
			fflush(NULL);
			leave(0);
		}
		in.len += (size_t)k;
	}
}

int gd__exec_spawn(gd__exec *x, const gd__placement *place, pid_t *pid, int *fd)
{
	pid_t parent = getpid(), p;
	int sv[2];

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		return GD_ESYS;
	/* anything buffered now would be written twice: once by each process */
	fflush(stdout);
	fflush(stderr);
	p = fork();
	if (p < 0) {
		close(sv[0]);
		close(sv[1]);
		return GD_ESYS;
	}
	if (p == 0) {
		close(sv[0]);
		child_main(x, place, child_reset(x, sv[1], parent));
	}
	close(sv[1]);
	/* also from the parent's side, so that kill(-pid) works at once */
	setpgid(p, p);
	fcntl(sv[0], F_SETFL, fcntl(sv[0], F_GETFL) | O_NONBLOCK);
	*pid = p;
	*fd = sv[0];
	return 0;
}
