/*
 * A persistent worker program (--worker-cmd): started once per worker, fed
 * task after task, started again when it dies.  It runs in the executor
 * process of its worker.
 *
 * Two protocols (docs/protocol.md).  Every program is offered protocol 2:
 * a request pipe (its fd 3) and an answer pipe (its fd 4), named in its
 * environment.  Which one it speaks is learnt from the first task: the
 * task's line goes to its standard input and
 *   - a HELLO frame on the answer pipe means protocol 2 (frames; standard
 *     output is only its log), whatever it printed before;
 *   - a line on standard output means protocol 1 (lines), but only once the
 *     program has read the whole task line from its standard input: a line
 *     that shows up while the task still sits in the pipe was written before
 *     the program read its task, so it is no answer.  A protocol-2 program
 *     never reads standard input, so nothing it prints is ever taken for an
 *     answer.
 * What the worker's program speaks is then known for good.
 *
 * All I/O is non-blocking through one poll loop (pump()), so a program that
 * writes a lot to its standard output while a large task is being written
 * to it never deadlocks against gpudispatch.
 */
#define _GNU_SOURCE /* pipe2, pidfd */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

/* ------------------------------------------------------------ the frames */

#define FR_HDR       24
#define FR_VERSION   2
#define FR_FLAG_JSON 0x01
/* Longest answer: the results file keeps results up to 64 MiB of JSON
 * (base64 makes 48 MiB of bytes 64 MiB). */
#define FR_MAX_ANSWER ((size_t)48 << 20)

enum fr_type {
	FR_HELLO = 1,
	FR_READY = 2,
	FR_SETUP_FAIL = 3,
	FR_TASK = 4,
	FR_RESULT = 5,
	FR_CLEANUP_FAIL = 6,
};

static const char *fr_name(unsigned t)
{
	static const char *const n[] = {"?",    "HELLO",  "READY",       "SETUP_FAIL",
	                                "TASK", "RESULT", "CLEANUP_FAIL"};

	return t < sizeof(n) / sizeof(n[0]) ? n[t] : "?";
}

typedef struct frame {
	uint8_t type, status, flags;
	uint32_t attempt, len;
	uint64_t task_id;
	const char *payload; /* inside the answer buffer until it is consumed */
} frame;

static void put_u32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void put_u64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t get_u32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t get_u64(const uint8_t *p)
{
	return (uint64_t)get_u32(p) | (uint64_t)get_u32(p + 4) << 32;
}

static void fr_pack(uint8_t h[FR_HDR], unsigned type, uint64_t id, uint32_t attempt, uint32_t len)
{
	h[0] = 'G';
	h[1] = 'D';
	h[2] = FR_VERSION;
	h[3] = (uint8_t)type;
	h[4] = h[5] = h[6] = h[7] = 0; /* status, flags, reserved */
	put_u32(h + 8, attempt);
	put_u32(h + 12, len);
	put_u64(h + 16, id);
}

/* ------------------------------------------------------------ the state */

enum { PROTO_UNKNOWN = 0, PROTO_LINE = 1, PROTO_FRAMED = 2 };

struct cli_prog {
	cli_prog_cfg c;
	int proto; /* what this worker's program speaks, once known */

	/* the program running now */
	pid_t pid;
	int pidfd;          /* readable once it has exited; -1 without pidfds */
	int to_fd, from_fd; /* its standard input (we write) and output (we read) */
	int req_fd, ans_fd; /* protocol 2: requests (we write), answers (we read) */
	int exited;         /* pidfd said so */
	int out_eof, ans_eof;
	int hello, ready; /* protocol 2: frames seen from this program */
	int answered;     /* it answered a task (protocol 1) */
	int held;         /* a line on stdout came while the task was unread */
	cli_buf out;      /* bytes from its stdout not yet used (protocol 1 / unknown) */
	cli_buf ans;      /* bytes from its answer pipe not yet used */
	size_t ans_off;
	cli_buf wq, rq; /* bytes still to write to stdin, to the request pipe */
	size_t wq_off, rq_off;
	int wbroken; /* writing its standard input failed (EPIPE) */

	int log_fd;              /* its stderr (protocol 2: and stdout); -1 with --quiet */
	off_t log_start;         /* where the log of the program running now starts */
	char log_path[4096];     /* "" when log_fd is an unlinked file */
	unsigned starts;         /* programs started */
	unsigned start_failures; /* in a row: programs that never became ready/answered */
	uint64_t last_id;        /* the task answered last */
	char why[1024];          /* what the last pump() event was about */
};

/* pump() events */
enum {
	P_NOTHING = 0, /* a wait ran out, or I/O without a complete unit */
	P_FRAME,       /* a complete frame at the front of the answer buffer */
	P_LINE,        /* a complete line in p->out, written after the task was read */
	P_STRAY,       /* a line on stdout written before the task was read */
	P_DIED,        /* the program has gone */
	P_BAD,         /* a protocol error: p->why says what */
};

/* ------------------------------------------------------------ helpers */

static void set_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);

	if (fl >= 0)
		fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

static void close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

static size_t unread_input(const cli_prog *p)
{
	int n = 0;

	if (p->wq.len > p->wq_off)
		return p->wq.len - p->wq_off;
	if (p->to_fd >= 0 && ioctl(p->to_fd, FIONREAD, &n) == 0 && n > 0)
		return (size_t)n;
	return 0;
}

static void log_bytes(cli_prog *p, const void *data, size_t n)
{
	const char *s = data;

	while (p->log_fd >= 0 && n) {
		ssize_t k = write(p->log_fd, s, n);

		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			return; /* a full disk loses log lines, never an answer */
		s += k;
		n -= (size_t)k;
	}
}

/* The last lines of the log, joined with " | ", for an error message. */
static void log_quote(const cli_prog *p, char *out, size_t outlen)
{
	out[0] = '\0';
	if (p->log_fd >= 0)
		cli_last_lines(p->log_fd, p->log_start, 3, out, outlen);
}

/* ------------------------------------------------------------ start, stop */

static void prog_stop(cli_prog *p, int sig, int *status)
{
	int st = 0;

	close_fd(&p->to_fd);
	close_fd(&p->from_fd);
	close_fd(&p->req_fd);
	close_fd(&p->ans_fd);
	if (p->pid > 0) {
		if (sig)
			cli_kill_tree(p->pid, sig); /* /bin/sh and what it started */
		cli_wait_child(p->pid, &st);
	}
	close_fd(&p->pidfd);
	if (status)
		*status = st;
	p->pid = 0;
	p->out.len = p->ans.len = p->ans_off = 0;
	p->wq.len = p->wq_off = p->rq.len = p->rq_off = 0;
}

static int prog_start(cli_prog *p, char *err, size_t errlen)
{
	int in[2] = {-1, -1}, out[2] = {-1, -1}, req[2] = {-1, -1}, ans[2] = {-1, -1};
	int devnull = -1, fds[5];
	char *argv[] = {"/bin/sh", "-c", p->c.cmd, NULL};
	pid_t pid;

	if (pipe2(in, O_CLOEXEC) || pipe2(out, O_CLOEXEC) || pipe2(req, O_CLOEXEC) ||
	    pipe2(ans, O_CLOEXEC)) {
		snprintf(err, errlen, "pipe: %s", strerror(errno));
		goto close_pipes;
	}
	if (p->log_fd < 0)
		devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
	else
		p->log_start = lseek(p->log_fd, 0, SEEK_END);
	fds[0] = in[0];
	fds[1] = out[1];
	fds[2] = p->log_fd >= 0 ? p->log_fd : devnull;
	fds[3] = req[0];
	fds[4] = ans[1];
	pid = cli_spawn(argv, p->c.envp, fds, err, errlen);
	if (devnull >= 0)
		close(devnull);
	close(in[0]);
	close(out[1]);
	close(req[0]);
	close(ans[1]);
	if (pid < 0) {
		close(in[1]);
		close(out[0]);
		close(req[1]);
		close(ans[0]);
		return -1;
	}
	p->pid = pid;
	p->pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	p->to_fd = in[1];
	p->from_fd = out[0];
	p->req_fd = req[1];
	p->ans_fd = ans[0];
	set_nonblock(p->to_fd);
	set_nonblock(p->from_fd);
	set_nonblock(p->req_fd);
	set_nonblock(p->ans_fd);
	if (p->proto == PROTO_LINE) { /* known: no frames will come */
		close_fd(&p->req_fd);
		close_fd(&p->ans_fd);
	} else if (p->proto == PROTO_FRAMED) {
		close_fd(&p->to_fd); /* it never reads standard input */
	}
	p->exited = p->out_eof = p->ans_eof = 0;
	p->hello = p->ready = p->answered = p->held = p->wbroken = 0;
	p->out.len = p->ans.len = p->ans_off = 0;
	p->wq.len = p->wq_off = p->rq.len = p->rq_off = 0;
	p->starts++;
	return 0;
close_pipes:
	for (int i = 0; i < 2; i++) {
		if (in[i] >= 0)
			close(in[i]);
		if (out[i] >= 0)
			close(out[i]);
		if (req[i] >= 0)
			close(req[i]);
		if (ans[i] >= 0)
			close(ans[i]);
	}
	return -1;
}

/* The program's log from now on holds its standard output too: with
 * --output-dir it is worker-W.log (worker-W.err is the line protocol's name). */
static void become_framed(cli_prog *p)
{
	p->proto = PROTO_FRAMED;
	log_bytes(p, p->out.p, p->out.len); /* what it printed before: its log */
	p->out.len = 0;
	close_fd(&p->to_fd);
	p->wq.len = p->wq_off = 0;
	if (p->log_path[0]) {
		char to[4096];
		size_t n = strlen(p->log_path);

		if (n > 4 && !strcmp(p->log_path + n - 4, ".err")) {
			snprintf(to, sizeof(to), "%.*s.log", (int)(n - 4), p->log_path);
			if (!rename(p->log_path, to))
				snprintf(p->log_path, sizeof(p->log_path), "%s", to);
		}
	}
}

/* ------------------------------------------------------------ the pump */

/* Is a complete frame (or a bad header) at the front of the answers? */
static int have_frame(cli_prog *p, frame *f)
{
	const uint8_t *h = (const uint8_t *)p->ans.p + p->ans_off;
	size_t have = p->ans.len - p->ans_off;

	if (have < FR_HDR)
		return P_NOTHING;
	if (h[0] != 'G' || h[1] != 'D') {
		snprintf(
		        p->why, sizeof(p->why),
		        "sent a frame that does not start with \"GD\" (bytes 0x%02x 0x%02x) on its "
		        "answer pipe",
		        h[0], h[1]);
		return P_BAD;
	}
	if (h[2] != FR_VERSION) {
		snprintf(p->why, sizeof(p->why), "sent a frame of protocol version %u, not %u",
		         h[2], FR_VERSION);
		return P_BAD;
	}
	f->type = h[3];
	f->status = h[4];
	f->flags = h[5];
	f->attempt = get_u32(h + 8);
	f->len = get_u32(h + 12);
	f->task_id = get_u64(h + 16);
	if (f->type < FR_HELLO || f->type > FR_CLEANUP_FAIL || f->type == FR_TASK) {
		snprintf(p->why, sizeof(p->why), "sent a frame of unknown type %u", f->type);
		return P_BAD;
	}
	if (h[6] || h[7] || (f->type != FR_RESULT && (f->status || f->flags))) {
		snprintf(p->why, sizeof(p->why), "sent a %s frame whose reserved fields are not 0",
		         fr_name(f->type));
		return P_BAD;
	}
	if (f->type == FR_RESULT && (f->status > 1 || (f->flags & ~FR_FLAG_JSON))) {
		snprintf(p->why, sizeof(p->why),
		         "sent a RESULT frame with status %u and flags 0x%02x (status must be 0 or "
		         "1, "
		         "flags 0 or 1)",
		         f->status, f->flags);
		return P_BAD;
	}
	if (f->len > FR_MAX_ANSWER) {
		snprintf(p->why, sizeof(p->why),
		         "sent a %s frame of %" PRIu32
		         " bytes, more than the %zu MiB an answer may "
		         "hold",
		         fr_name(f->type), f->len, FR_MAX_ANSWER >> 20);
		return P_BAD;
	}
	if (have < FR_HDR + (size_t)f->len)
		return P_NOTHING;
	f->payload = p->ans.p + p->ans_off + FR_HDR;
	return P_FRAME;
}

static void consume_frame(cli_prog *p, const frame *f)
{
	p->ans_off += FR_HDR + f->len;
	if (p->ans_off == p->ans.len) {
		p->ans.len = p->ans_off = 0;
	} else if (p->ans_off > (1u << 16)) {
		memmove(p->ans.p, p->ans.p + p->ans_off, p->ans.len - p->ans_off);
		p->ans.len -= p->ans_off;
		p->ans_off = 0;
	}
}

/* What has happened, from what was already read. */
static int evaluate(cli_prog *p, frame *f)
{
	int ev;

	if (p->ans_fd >= 0 || p->ans.len > p->ans_off) {
		ev = have_frame(p, f);
		if (ev != P_NOTHING)
			return ev;
		if (p->ans_eof && p->ans.len > p->ans_off) {
			snprintf(p->why, sizeof(p->why),
			         "closed its answer pipe in the middle of a frame (%zu bytes of it "
			         "came)",
			         p->ans.len - p->ans_off);
			return P_BAD;
		}
	}
	if (p->proto != PROTO_FRAMED && p->out.len && memchr(p->out.p, '\n', p->out.len)) {
		if (!unread_input(p))
			return p->held ? P_STRAY : P_LINE;
		p->held = 1;
	}
	if (p->proto != PROTO_FRAMED && p->out.len > p->c.max_line + 2) {
		snprintf(p->why, sizeof(p->why),
		         "wrote a result line longer than --max-line %zu for task %" PRIu64,
		         p->c.max_line, p->last_id);
		return P_BAD;
	}
	if (p->exited || (p->proto == PROTO_LINE && p->out_eof) ||
	    (p->proto != PROTO_LINE && p->ans_eof))
		return P_DIED;
	return P_NOTHING;
}

/* Write what is queued for fd; \return -1 when the pipe is broken. */
static int flush_queue(int fd, cli_buf *q, size_t *off)
{
	while (*off < q->len) {
		ssize_t k = write(fd, q->p + *off, q->len - *off);

		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0 && errno == EAGAIN)
			return 0;
		if (k < 0) {
			q->len = *off = 0;
			return -1;
		}
		*off += (size_t)k;
	}
	q->len = *off = 0;
	return 0;
}

/* Read what fd has now into b; \return 1 at EOF. */
static int drain(int fd, cli_buf *b, cli_prog *p, int to_log)
{
	char chunk[65536];

	for (int i = 0; i < 64; i++) {
		ssize_t k = read(fd, chunk, sizeof(chunk));

		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			return 0; /* EAGAIN: nothing more now */
		if (k == 0)
			return 1;
		if (to_log)
			log_bytes(p, chunk, (size_t)k);
		else if (cli_buf_add(b, chunk, (size_t)k))
			return 1; /* out of memory: treated as the program's end */
		if ((size_t)k < sizeof(chunk))
			return 0;
	}
	return 0;
}

/*
 * One round: report what already happened, else wait up to timeout_ms (-1:
 * no limit) for the program, do the I/O that is ready and report.
 */
static int pump(cli_prog *p, int timeout_ms, frame *f)
{
	struct pollfd pfd[5];
	int n = 0, i_to = -1, i_req = -1, i_out = -1, i_ans = -1, i_pid = -1, ev;

	ev = evaluate(p, f);
	if (ev != P_NOTHING)
		return ev;
	if (p->held && (timeout_ms < 0 || timeout_ms > 5))
		timeout_ms = 5; /* look again whether it has read its task */
	if (p->to_fd >= 0 && p->wq.len > p->wq_off) {
		i_to = n;
		pfd[n++] = (struct pollfd){.fd = p->to_fd, .events = POLLOUT};
	}
	if (p->req_fd >= 0 && p->rq.len > p->rq_off) {
		i_req = n;
		pfd[n++] = (struct pollfd){.fd = p->req_fd, .events = POLLOUT};
	}
	if (p->from_fd >= 0) {
		i_out = n;
		pfd[n++] = (struct pollfd){.fd = p->from_fd, .events = POLLIN};
	}
	if (p->ans_fd >= 0) {
		i_ans = n;
		pfd[n++] = (struct pollfd){.fd = p->ans_fd, .events = POLLIN};
	}
	if (p->pidfd >= 0 && !p->exited) {
		i_pid = n;
		pfd[n++] = (struct pollfd){.fd = p->pidfd, .events = POLLIN};
	}
	if (poll(pfd, (nfds_t)n, timeout_ms) < 0 && errno != EINTR)
		return P_NOTHING;
	if (i_to >= 0 && pfd[i_to].revents && flush_queue(p->to_fd, &p->wq, &p->wq_off))
		p->wbroken = 1; /* it does not read its input: closed, or gone */
	if (i_req >= 0 && pfd[i_req].revents && flush_queue(p->req_fd, &p->rq, &p->rq_off))
		p->ans_eof = 1; /* its end of the request pipe is closed: gone */
	if (i_pid >= 0 && pfd[i_pid].revents)
		p->exited = 1; /* read what it left, below, before reporting it */
	if (i_out >= 0 && (pfd[i_out].revents || p->exited) &&
	    drain(p->from_fd, &p->out, p, p->proto == PROTO_FRAMED)) {
		p->out_eof = 1;
		close_fd(&p->from_fd);
	}
	if (i_ans >= 0 && (pfd[i_ans].revents || p->exited) && drain(p->ans_fd, &p->ans, p, 0)) {
		p->ans_eof = 1;
		close_fd(&p->ans_fd);
	}
	return evaluate(p, f);
}

/* ------------------------------------------------------------ failures */

/* The program broke the protocol or died running task t: fail t. */
static int fail_task(cli_prog *p, gd_result *r, int sig, const char *what)
{
	char st[96], quote[600];
	int status;

	prog_stop(p, sig, &status);
	cli_describe_status(status, st, sizeof(st));
	log_quote(p, quote, sizeof(quote));
	if (!sig)
		cli_result_exit(r, status); /* it died by itself: how is the task's end */
	if (sig)
		return gd_result_error(r, "worker program %s; it was restarted%s%s", what,
		                       quote[0] ? "; stderr: " : "", quote);
	return gd_result_error(r, "worker program %s: %s%s%s", what, st,
	                       quote[0] ? "; stderr: " : "", quote);
}

/* A start that never got ready: retire the worker after K in a row. */
static int start_failed(cli_prog *p, gd_worker *w, const char *what)
{
	char quote[600];

	p->start_failures++;
	if (p->start_failures < p->c.max_start_failures)
		return 0;
	log_quote(p, quote, sizeof(quote));
	return gd_worker_retire(w, "worker program %s, %u times in a row%s%s", what,
	                        p->start_failures, quote[0] ? "; stderr: " : "", quote);
}

/* ------------------------------------------------------------ protocol 2 */

static int send_frame(cli_prog *p, unsigned type, const gd_task *t, const void *data, size_t len)
{
	uint8_t h[FR_HDR];

	fr_pack(h, type, t->id, t->attempt, (uint32_t)len);
	if (cli_buf_add(&p->rq, h, FR_HDR) || cli_buf_add(&p->rq, data, len))
		return -1;
	return flush_queue(p->req_fd, &p->rq, &p->rq_off) ? -1 : 0;
}

enum { R_READY = 0, R_DIED, R_SETUP_FAIL, R_BAD, R_TIMEOUT };

/*
 * Wait for READY.  Its setup is not the task's time: the task's clock is
 * held at zero meanwhile.  \return R_*, with the message in p->why.
 */
static int wait_ready(cli_prog *p, gd_worker *w)
{
	double t0 = cli_now(), limit = p->c.setup_timeout;
	frame f;

	while (!p->ready) {
		int ev = pump(p, 100, &f);

		gd_worker_task_started(w);
		if (ev == P_BAD)
			return R_BAD;
		if (ev == P_DIED)
			return R_DIED;
		if (ev == P_FRAME) {
			if (f.type == FR_HELLO && !p->hello) {
				p->hello = 1;
			} else if (f.type == FR_READY && p->hello) {
				p->ready = 1;
			} else if (f.type == FR_SETUP_FAIL) {
				snprintf(p->why, sizeof(p->why), "%.*s", (int)f.len, f.payload);
				consume_frame(p, &f);
				return R_SETUP_FAIL;
			} else {
				snprintf(p->why, sizeof(p->why), "sent a %s frame %s",
				         fr_name(f.type),
				         p->hello ? "before READY" : "before HELLO");
				return R_BAD;
			}
			consume_frame(p, &f);
		}
		if (limit > 0 && cli_now() - t0 > limit) {
			snprintf(p->why, sizeof(p->why),
			         "was not READY within --setup-timeout %g s", limit);
			return R_TIMEOUT;
		}
	}
	return R_READY;
}

/*
 * Bring a protocol-2 program to READY.  \return 0 when it is ready, 1 to
 * start it again, -1 when the worker retires (gd_worker_retire() called).
 */
static int get_ready(cli_prog *p, gd_worker *w)
{
	char msg[sizeof(p->why) + 64], st[96];
	int status;

	switch (wait_ready(p, w)) {
	case R_READY:
		p->start_failures = 0;
		gd_worker_task_started(w); /* the task's time starts now */
		return 0;
	case R_SETUP_FAIL:
		prog_stop(p, SIGKILL, NULL);
		/* the first line says it; a traceback follows */
		gd_worker_retire(w, "setup failed: %.*s", (int)cli_first_line(p->why, 400), p->why);
		return -1;
	case R_TIMEOUT:
		prog_stop(p, SIGKILL, NULL);
		gd_worker_retire(w, "worker program %s", p->why);
		return -1;
	case R_BAD:
		snprintf(msg, sizeof(msg), "broke the protocol before READY (%s)", p->why);
		prog_stop(p, SIGKILL, NULL);
		break;
	default: /* R_DIED */
		prog_stop(p, 0, &status);
		cli_describe_status(status, st, sizeof(st));
		snprintf(msg, sizeof(msg), "ended before it was READY (%s)", st);
	}
	return start_failed(p, w, msg) ? -1 : 1;
}

/* The answer in f becomes the task's result or error. */
static int take_result(cli_prog *p, const frame *f, gd_result *r)
{
	size_t bad = 0;
	char *res;

	if (f->status == 1) {
		/* an error message: it lives in a C string */
		char *m = strndup(f->payload, f->len);
		int rc;

		if (!m)
			return gd_result_error(r,
			                       "out of memory reading the worker program's answer");
		for (size_t i = 0; i < f->len; i++)
			if (!m[i])
				m[i] = ' ';
		rc = gd_result_error(r, "%s", f->len ? m : "the worker program reported an error");
		free(m);
		return rc;
	}
	if ((f->flags & FR_FLAG_JSON) && !cli_json_valid(f->payload, f->len, &bad)) {
		char what[200];

		snprintf(what, sizeof(what),
		         "sent a RESULT for task %" PRIu64
		         " flagged JSON that is not valid JSON (at byte %zu)",
		         f->task_id, bad);
		return fail_task(p, r, SIGKILL, what);
	}
	res = gd_result_reserve(r, (size_t)f->len + 1);
	if (!res)
		return gd_result_error(r, "out of memory storing the worker program's answer");
	res[0] = (f->flags & FR_FLAG_JSON) ? CLI_RESULT_JSON : CLI_RESULT_BYTES;
	memcpy(res + 1, f->payload, f->len);
	return 0;
}

static int task_framed(cli_prog *p, const gd_task *t, const char *data, size_t len, gd_result *r)
{
	frame f;
	char what[300];

	if (send_frame(p, FR_TASK, t, data, len))
		return fail_task(p, r, 0, "closed its request pipe");
	for (;;) {
		int ev = pump(p, -1, &f);

		if (ev == P_BAD)
			return fail_task(p, r, SIGKILL, p->why);
		if (ev == P_DIED) {
			snprintf(what, sizeof(what), "ended while it ran task %" PRIu64, t->id);
			return fail_task(p, r, 0, what);
		}
		if (ev != P_FRAME)
			continue;
		if (f.type != FR_RESULT) {
			snprintf(what, sizeof(what), "sent a %s frame while task %" PRIu64 " ran",
			         fr_name(f.type), t->id);
			return fail_task(p, r, SIGKILL, what);
		}
		if (f.task_id != t->id || f.attempt != t->attempt) {
			snprintf(what, sizeof(what),
			         "answered task %" PRIu64 " attempt %" PRIu32 " while task %" PRIu64
			         " attempt %" PRIu32 " ran",
			         f.task_id, f.attempt, t->id, t->attempt);
			return fail_task(p, r, SIGKILL, what);
		}
		p->last_id = t->id;
		{
			int rc = take_result(p, &f, r);

			if (p->pid) /* take_result() may have stopped it */
				consume_frame(p, &f);
			return rc;
		}
	}
}

/* ------------------------------------------------------------ protocol 1 */

enum { L_DONE = 0, L_SWITCHED, L_UNREAD, L_GONE };

/* The line protocol, or the first task of a program not known yet.
 * \return L_DONE with the task's outcome in *rc, L_SWITCHED when the program
 * turned out to speak protocol 2, L_UNREAD when it ended without reading
 * its task (not the task's fault), L_GONE when it had exited after its last
 * answer (it is started again). */
static int task_line(cli_prog *p, const gd_task *t, const char *line, size_t len, gd_result *r,
                     int *rc)
{
	frame f;
	char what[300];
	size_t ll;
	char *nl;

	/* Output after the last answer breaks the protocol (one line per
	 * task); EOF there means the program exited between tasks.  Either
	 * way it starts afresh; only the first is an error. */
	if (p->answered) {
		pump(p, 0, &f);
		if (p->out.len) {
			snprintf(what, sizeof(what),
			         "wrote more than one line for task %" PRIu64
			         " (the protocol is one result line per task line; write logs to "
			         "standard error, or speak protocol 2: docs/protocol.md)",
			         p->last_id);
			*rc = fail_task(p, r, SIGKILL, what);
			return L_DONE;
		}
		if (p->out_eof || p->exited) {
			prog_stop(p, SIGKILL, NULL);
			return L_GONE;
		}
	}
	p->held = 0;
	if (cli_buf_add(&p->wq, line, len) || cli_buf_add(&p->wq, "\n", 1)) {
		*rc = gd_result_error(r, "out of memory writing the task");
		return L_DONE;
	}
	if (flush_queue(p->to_fd, &p->wq, &p->wq_off))
		p->wbroken = 1;
	for (;;) {
		int ev = pump(p, -1, &f);

		if (ev == P_FRAME) {
			if (f.type == FR_HELLO && p->proto == PROTO_UNKNOWN) {
				consume_frame(p, &f);
				p->hello = 1;
				become_framed(p);
				return L_SWITCHED;
			}
			snprintf(what, sizeof(what), "sent a %s frame before HELLO",
			         fr_name(f.type));
			*rc = fail_task(p, r, SIGKILL, what);
			return L_DONE;
		}
		if (ev == P_BAD) {
			*rc = fail_task(p, r, SIGKILL, p->why);
			return L_DONE;
		}
		if (ev == P_STRAY) {
			snprintf(what, sizeof(what),
			         "wrote to its standard output before it read task %" PRIu64
			         " (the line protocol takes the line after the task as its answer; "
			         "write logs to standard error, or speak protocol 2: "
			         "docs/protocol.md)",
			         t->id);
			*rc = fail_task(p, r, SIGKILL, what);
			return L_DONE;
		}
		if (ev == P_DIED) {
			if (unread_input(p) || p->wbroken) {
				int st;

				prog_stop(p, 0, &st);
				cli_describe_status(st, p->why, sizeof(p->why));
				return L_UNREAD;
			}
			*rc = fail_task(p, r, 0, "closed its standard output before answering");
			return L_DONE;
		}
		if (ev == P_LINE)
			break;
	}
	/* the answer */
	p->proto = PROTO_LINE;
	close_fd(&p->req_fd);
	close_fd(&p->ans_fd);
	p->answered = 1;
	p->start_failures = 0;
	p->last_id = t->id;
	nl = memchr(p->out.p, '\n', p->out.len);
	ll = (size_t)(nl - p->out.p);
	if (ll + 1 < p->out.len) { /* more than one line for one task */
		*rc = fail_task(p, r, SIGKILL,
		                "wrote more than one line for one task (the protocol is one result "
		                "line per task line; write logs to standard error, or speak "
		                "protocol 2: docs/protocol.md)");
		return L_DONE;
	}
	p->out.len = 0;
	if (ll && p->out.p[ll - 1] == '\r')
		ll--;
	if (ll > p->c.max_line) {
		*rc = gd_result_error(r,
		                      "worker program wrote a result line of %zu bytes, longer "
		                      "than --max-line %zu",
		                      ll, p->c.max_line);
		return L_DONE;
	}
	if (ll >= 6 && !memcmp(p->out.p, "ERROR:", 6)) {
		const char *m = p->out.p + 6;
		size_t ml = ll - 6;

		while (ml && *m == ' ') {
			m++;
			ml--;
		}
		*rc = gd_result_error(r, "%.*s", (int)ml, m);
		return L_DONE;
	}
	{
		char *res = gd_result_reserve(r, ll + 1);

		if (!res) {
			*rc = gd_result_error(r, "out of memory storing the answer");
			return L_DONE;
		}
		res[0] = CLI_RESULT_LINE;
		memcpy(res + 1, p->out.p, ll);
	}
	*rc = 0;
	return L_DONE;
}

/* ------------------------------------------------------------ the API */

int cli_prog_open(cli_prog **out, const cli_prog_cfg *cfg, char *err, size_t errlen)
{
	cli_prog *p = calloc(1, sizeof(*p));

	*out = NULL;
	if (!p) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	p->c = *cfg;
	p->to_fd = p->from_fd = p->req_fd = p->ans_fd = p->pidfd = p->log_fd = -1;
	if (!p->c.max_start_failures)
		p->c.max_start_failures = CLI_DEFAULT_START_FAILURES;
	if (cfg->out_dir) {
		snprintf(p->log_path, sizeof(p->log_path), "%s/worker-%d.err", cfg->out_dir,
		         cfg->worker_id);
		/* read-write: error messages quote its last lines */
		p->log_fd = open(p->log_path, O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0666);
		if (p->log_fd < 0) {
			snprintf(err, errlen, "cannot open %s: %s", p->log_path, strerror(errno));
			free(p);
			return -1;
		}
	} else if (!cfg->quiet) {
		p->log_fd = cli_open_tmp();
	}
	if (prog_start(p, err, errlen)) {
		close_fd(&p->log_fd);
		free(p);
		return -1;
	}
	*out = p;
	return 0;
}

int cli_prog_task(cli_prog *p, gd_worker *w, const gd_task *t, const char *data, size_t len,
                  gd_result *r)
{
	char err[512];

	if (p->log_fd >= 0 && !p->log_path[0] && lseek(p->log_fd, 0, SEEK_END) > CLI_LOG_KEEP_MAX &&
	    ftruncate(p->log_fd, 0)) {
		/* only a quote is lost */
	}
	for (;;) {
		int rc = 0, how;

		if (!p->pid) {
			if (prog_start(p, err, sizeof(err))) {
				if (start_failed(p, w, err))
					return GD_EINVAL;
				continue;
			}
			if (p->starts > 1)
				gd_worker_restarted(w);
		}
		if (p->proto == PROTO_FRAMED) {
			int ready = p->ready ? 0 : get_ready(p, w);

			if (ready < 0)
				return GD_EINVAL; /* retired */
			if (ready > 0)
				continue; /* start it again */
			return task_framed(p, t, data, len, r);
		}
		how = task_line(p, t, data, len, r, &rc);
		if (how == L_DONE) {
			/* it read the task and went away without ever answering:
			 * the task is charged, and the start counts as failed */
			if (!p->pid && !p->answered &&
			    start_failed(p, w, "ended before its first answer"))
				return GD_EINVAL;
			return rc;
		}
		if (how == L_UNREAD) {
			char msg[1200];

			snprintf(msg, sizeof(msg), "ended before it read a task (%s)", p->why);
			if (start_failed(p, w, msg))
				return GD_EINVAL;
		}
		/* L_SWITCHED: protocol 2 from now on; L_UNREAD, L_GONE: start again */
	}
}

int cli_prog_close(cli_prog *p, gd_worker *w)
{
	int rc = 0, st = 0;
	double t0 = cli_now();
	frame f;
	char msg[sizeof(p->why)] = "";

	if (!p)
		return 0;
	if (p->pid > 0) {
		/* end of input: it should clean up and exit 0 within 10 s */
		close_fd(&p->to_fd);
		close_fd(&p->req_fd);
		while (cli_now() - t0 < 10) {
			int ev = pump(p, 50, &f);

			if (ev == P_FRAME) {
				if (f.type == FR_CLEANUP_FAIL || f.type == FR_SETUP_FAIL)
					snprintf(msg, sizeof(msg), "%s%.*s",
					         f.type == FR_SETUP_FAIL ? "setup failed: " : "",
					         (int)f.len, f.payload);
				consume_frame(p, &f);
				continue;
			}
			if (ev == P_BAD)
				p->ans.len = p->ans_off = 0; /* nothing more to learn from it */
			if (ev == P_DIED || p->exited)
				break;
			if (ev == P_LINE || ev == P_STRAY)
				p->out.len = 0; /* output after the last task: its log */
			if (p->pidfd < 0 && waitpid(p->pid, &st, WNOHANG) == p->pid) {
				p->pid = 0;
				break;
			}
		}
		if (p->pid > 0) {
			pid_t got;

			/* its pipes close a moment before it can be reaped */
			while (!(got = waitpid(p->pid, &st, WNOHANG)) && cli_now() - t0 < 10) {
				struct pollfd pfd = {.fd = p->pidfd, .events = POLLIN};

				if (p->pidfd < 0 || poll(&pfd, 1, 10) == 1)
					nanosleep(&(struct timespec){.tv_nsec = 1000000}, NULL);
			}

			if (got == 0) {
				kill(p->pid, SIGKILL);
				cli_wait_child(p->pid, &st);
				gd_worker_set_error(
				        w, "worker program did not exit within 10 s of the "
				           "end of its input; killed");
				rc = -1;
			}
			p->pid = 0;
		}
		if (!rc && msg[0]) {
			gd_worker_set_error(w, "worker program: %s", msg);
			rc = -1;
		} else if (!rc && !(WIFEXITED(st) && WEXITSTATUS(st) == 0)) {
			char s[96];

			cli_describe_status(st, s, sizeof(s));
			gd_worker_set_error(w, "worker program %s at the end of its input", s);
			rc = -1;
		}
	}
	cli_prog_free(p);
	return rc;
}

void cli_prog_free(cli_prog *p)
{
	if (!p)
		return;
	if (p->pid > 0)
		prog_stop(p, SIGKILL, NULL);
	close_fd(&p->to_fd);
	close_fd(&p->from_fd);
	close_fd(&p->req_fd);
	close_fd(&p->ans_fd);
	close_fd(&p->pidfd);
	close_fd(&p->log_fd);
	cli_buf_free(&p->out);
	cli_buf_free(&p->ans);
	cli_buf_free(&p->wq);
	cli_buf_free(&p->rq);
	free(p);
}
