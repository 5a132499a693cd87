/*
 * The command's worker class.  It runs in the executor process the library
 * forks on every worker rank (never touches MPI), with the GPU variables and
 * the CPU binding already set by placement.
 *
 * Command mode: process() forks and execs the command for one task and
 * waits for it; the exit status decides success.  The child stays in the
 * executor's process group, so that on a timeout the library's SIGKILL of
 * that group also kills the command's own children.
 *
 * Persistent-worker mode: setup() starts `/bin/sh -c WORKER_CMD` once;
 * process() writes the task line to its standard input and reads exactly one
 * line from its standard output; cleanup() closes its input and waits.  If
 * the program dies, the task is reported and the program is started again
 * for the next task.
 */
#define _GNU_SOURCE /* pipe2, execvpe, close_range, memrchr, O_TMPFILE */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif

extern char **environ;

/* Stderr of a persistent program kept for error messages is cut above this. */
#define ERR_KEEP_MAX (1 << 20)
/* The part of a program's stderr quoted in an error message. */
#define ERR_QUOTE_MAX 200

typedef struct cw_state {
	int persistent, shell, quiet;
	char *out_dir;
	size_t max_line;
	char **words; /* the command template */
	int n_words;
	char *worker_cmd;
	int worker_id;
	/* the environment of the children: base entries, then task id and attempt */
	char **envp;
	size_t n_env;
	/* persistent program */
	pid_t prog;
	int to_fd, from_fd, err_fd;
	cli_buf rbuf;     /* bytes read from its stdout, not yet used */
	uint64_t last_id; /* the task it answered last */
} cw_state;

/* ---------------------------------------------------------------- helpers */

static int mkdir_p(const char *path)
{
	char *p = strdup(path);
	int rc = 0;

	if (!p)
		return -1;
	for (char *s = p + 1; *s; s++) {
		if (*s != '/')
			continue;
		*s = '\0';
		if (mkdir(p, 0777) && errno != EEXIST)
			rc = -1;
		*s = '/';
	}
	if (mkdir(p, 0777) && errno != EEXIST)
		rc = -1;
	free(p);
	return rc;
}

/* Variables of the MPI job that must not reach a task: a task that itself
 * uses MPI must start as its own job, not as a clone of the worker rank. */
static int strip_env(const char *e)
{
	if (!strncmp(e, "PMIX_", 5) || !strncmp(e, "PMI_", 4))
		return 1;
	if (!strncmp(e, "OMPI_MCA_", 9))
		return !strncmp(e + 9, "ess", 3) || !strncmp(e + 9, "orte", 4) ||
		       !strncmp(e + 9, "pmix", 4);
	if (!strncmp(e, "OMPI_", 5))
		return strncmp(e, "OMPI_ALLOW_", 11) != 0;
	return !strncmp(e, "GPUDISPATCH_", 12);
}

static int build_env(cw_state *cw, const gd_worker *w)
{
	size_t n = 0, k = 0;
	const gd_gpu *gpu = gd_worker_gpu(w);

	for (char **e = environ; *e; e++)
		n++;
	cw->envp = calloc(n + 5, sizeof(char *));
	if (!cw->envp)
		return -1;
	for (char **e = environ; *e; e++)
		if (!strip_env(*e) && !(cw->envp[k++] = strdup(*e)))
			return -1;
	if (asprintf(&cw->envp[k++], "GPUDISPATCH_WORKER_ID=%d", cw->worker_id) < 0)
		return -1;
	if (asprintf(&cw->envp[k++], "GPUDISPATCH_GPU=%d", gpu ? gpu->index : -1) < 0)
		return -1;
	cw->n_env = k; /* envp[k], envp[k+1]: task id and attempt, set per task */
	return 0;
}

static void set_task_env(cw_state *cw, const gd_task *t)
{
	char **slot = cw->envp + cw->n_env;

	free(slot[0]);
	free(slot[1]);
	if (asprintf(&slot[0], "GPUDISPATCH_TASK_ID=%" PRIu64, t->id) < 0)
		slot[0] = NULL;
	if (asprintf(&slot[1], "GPUDISPATCH_ATTEMPT=%" PRIu32, t->attempt) < 0)
		slot[1] = NULL;
	if (!slot[0]) { /* keep the vector terminated */
		free(slot[1]);
		slot[1] = NULL;
	}
}

/* A file for stderr that nobody else sees: kept only to quote its end. */
static int open_tmp(void)
{
	const char *dir = getenv("TMPDIR");
	char path[4096];
	int fd;

	if (!dir || !*dir)
		dir = "/tmp";
	fd = open(dir, O_TMPFILE | O_RDWR | O_APPEND | O_CLOEXEC, 0600);
	if (fd >= 0)
		return fd;
	snprintf(path, sizeof(path), "%s/gpudispatch-err-XXXXXX", dir);
	fd = mkostemp(path, O_APPEND | O_CLOEXEC);
	if (fd >= 0)
		unlink(path);
	return fd;
}

/* The last non-empty line of the file open at fd (at most ERR_QUOTE_MAX bytes). */
static void last_line(int fd, char *out, size_t outlen)
{
	char buf[4096];
	off_t size = lseek(fd, 0, SEEK_END), from;
	ssize_t n;
	size_t end, start;

	out[0] = '\0';
	if (size <= 0)
		return;
	from = size > (off_t)sizeof(buf) ? size - (off_t)sizeof(buf) : 0;
	n = pread(fd, buf, sizeof(buf), from);
	if (n <= 0)
		return;
	end = (size_t)n;
	while (end && (buf[end - 1] == '\n' || buf[end - 1] == '\r' || buf[end - 1] == ' '))
		end--;
	start = end;
	while (start && buf[start - 1] != '\n')
		start--;
	if (end - start > outlen - 1)
		end = start + outlen - 1;
	memcpy(out, buf + start, end - start);
	out[end - start] = '\0';
	for (size_t i = 0; i < end - start; i++) /* the quote lives in a C string */
		if (out[i] == '\0')
			out[i] = ' ';
}

/* Describe a wait status with the phrases rank 0 parses (cli_parse_status). */
static void describe_status(int st, char *out, size_t n)
{
	if (WIFEXITED(st))
		snprintf(out, n, "exited with status %d", WEXITSTATUS(st));
	else if (WIFSIGNALED(st))
		snprintf(out, n, "killed by signal %d (%s)", WTERMSIG(st), strsignal(WTERMSIG(st)));
	else
		snprintf(out, n, "stopped (wait status 0x%x)", st);
}

static pid_t wait_child(pid_t pid, int *st)
{
	pid_t r;

	do
		r = waitpid(pid, st, 0);
	while (r < 0 && errno == EINTR);
	return r;
}

/*
 * Fork and exec argv with fds in/out/err as 0/1/2 and envp.  The child keeps
 * the executor's process group (a timeout kills the whole group) and dies
 * with the executor.  \return the pid, or -1 with a message in err (e.g. the
 * program does not exist).
 */
static pid_t spawn(char *const argv[], char *const envp[], int in, int out, int errfd, char *err,
                   size_t errlen)
{
	int p[2], e = 0;
	pid_t parent = getpid(), pid;
	ssize_t n;

	if (pipe2(p, O_CLOEXEC)) {
		snprintf(err, errlen, "pipe: %s", strerror(errno));
		return -1;
	}
	/* vfork: the executor carries the MPI rank's address space, and copying
	 * its page tables for every task was most of a short task's cost.  The
	 * child only makes system calls before exec. */
	pid = vfork();
	if (pid < 0) {
		snprintf(err, errlen, "fork: %s", strerror(errno));
		close(p[0]);
		close(p[1]);
		return -1;
	}
	if (pid == 0) {
		sigset_t all;

		/* Default dispositions: the worker rank ignores the stop signals
		 * and Open MPI catches SIGSEGV & co; the task must not inherit that. */
		for (int s = 1; s < NSIG; s++)
			if (s != SIGKILL && s != SIGSTOP)
				signal(s, SIG_DFL);
		sigemptyset(&all);
		sigprocmask(SIG_SETMASK, &all, NULL);
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(127);
		if ((in != 0 && dup2(in, 0) < 0) || (out != 1 && dup2(out, 1) < 0) ||
		    (errfd != 2 && dup2(errfd, 2) < 0)) {
			e = errno;
			goto fail;
		}
		/* no fd of the MPI library or of other tasks may leak into the task */
		if (close_range(3, ~0U, CLOSE_RANGE_CLOEXEC))
			for (int fd = 3; fd < 1024; fd++)
				if (fd != p[1])
					close(fd);
		execvpe(argv[0], argv, envp);
		e = errno;
	fail:
		if (write(p[1], &e, sizeof(e)) < 0) {
			/* nothing more to say */
		}
		_exit(127);
	}
	close(p[1]);
	do
		n = read(p[0], &e, sizeof(e));
	while (n < 0 && errno == EINTR);
	close(p[0]);
	if (n == (ssize_t)sizeof(e)) {
		int st;

		wait_child(pid, &st);
		snprintf(err, errlen, "cannot run '%s': %s", argv[0], strerror(e));
		return -1;
	}
	return pid;
}

/* ------------------------------------------------------------- persistent */

static void prog_stop(cw_state *cw, int sig, int *status)
{
	int st = 0;

	if (cw->to_fd >= 0)
		close(cw->to_fd);
	if (cw->from_fd >= 0)
		close(cw->from_fd);
	cw->to_fd = cw->from_fd = -1;
	if (cw->prog > 0) {
		if (sig)
			kill(cw->prog, sig);
		wait_child(cw->prog, &st);
	}
	if (status)
		*status = st;
	cw->prog = 0;
	cw->rbuf.len = 0;
}

static int prog_start(cw_state *cw, char *err, size_t errlen)
{
	int in[2], out[2], devnull = -1;
	char *argv[] = {"/bin/sh", "-c", cw->worker_cmd, NULL};
	char *saved = cw->envp[cw->n_env];
	pid_t pid;

	if (pipe2(in, O_CLOEXEC)) {
		snprintf(err, errlen, "pipe: %s", strerror(errno));
		return -1;
	}
	if (pipe2(out, O_CLOEXEC)) {
		snprintf(err, errlen, "pipe: %s", strerror(errno));
		close(in[0]);
		close(in[1]);
		return -1;
	}
	if (cw->err_fd < 0)
		devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
	cw->envp[cw->n_env] = NULL; /* no task id in a persistent program's environment */
	pid = spawn(argv, cw->envp, in[0], out[1], cw->err_fd >= 0 ? cw->err_fd : devnull, err,
	            errlen);
	cw->envp[cw->n_env] = saved;
	close(in[0]);
	close(out[1]);
	if (devnull >= 0)
		close(devnull);
	if (pid < 0) {
		close(in[1]);
		close(out[0]);
		return -1;
	}
	cw->prog = pid;
	cw->to_fd = in[1];
	cw->from_fd = out[0];
	cw->rbuf.len = 0;
	return 0;
}

/* The program went away or broke the protocol: stop it, fail the task. */
static int prog_fail(cw_state *cw, gd_result *r, int sig, const char *what)
{
	char st[96], quote[ERR_QUOTE_MAX + 1] = "";
	int status;

	prog_stop(cw, sig, &status);
	describe_status(status, st, sizeof(st));
	if (cw->err_fd >= 0)
		last_line(cw->err_fd, quote, sizeof(quote));
	if (sig)
		return gd_result_error(r, "worker program %s; it was restarted%s%s", what,
		                       quote[0] ? "; stderr: " : "", quote);
	return gd_result_error(r, "worker program %s: %s%s%s", what, st,
	                       quote[0] ? "; stderr: " : "", quote);
}

static int write_all(int fd, const void *data, size_t n)
{
	const char *p = data;

	while (n) {
		ssize_t k = write(fd, p, n);

		if (k < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += k;
		n -= (size_t)k;
	}
	return 0;
}

static int process_persistent(cw_state *cw, const gd_task *t, const char *line, size_t len,
                              gd_result *r)
{
	char err[512];
	char *nl;
	size_t ll;

	/* Output that arrived after the last answer breaks the protocol (one
	 * line per task); EOF there means the program exited between tasks.
	 * Either way it starts afresh; only the first is an error. */
	if (cw->prog) {
		struct pollfd pfd = {.fd = cw->from_fd, .events = POLLIN};

		if (!cw->rbuf.len && poll(&pfd, 1, 0) == 1) {
			char chunk[4096];
			ssize_t n = read(cw->from_fd, chunk, sizeof(chunk));

			if (n > 0)
				cli_buf_add(&cw->rbuf, chunk, (size_t)n);
			else
				prog_stop(cw, SIGKILL, NULL);
		}
		if (cw->rbuf.len) {
			char what[200];

			snprintf(what, sizeof(what),
			         "wrote more than one line for task %" PRIu64
			         " (the protocol is one "
			         "result line per task line; write logs to standard error)",
			         cw->last_id);
			return prog_fail(cw, r, SIGKILL, what);
		}
	}
	if (!cw->prog && prog_start(cw, err, sizeof(err)))
		return gd_result_error(r, "cannot start worker program: %s", err);
	if (cw->err_fd >= 0 && lseek(cw->err_fd, 0, SEEK_END) > ERR_KEEP_MAX && !cw->out_dir &&
	    ftruncate(cw->err_fd, 0)) {
		/* only a quote is lost */
	}
	if (write_all(cw->to_fd, line, len) || write_all(cw->to_fd, "\n", 1))
		return prog_fail(cw, r, 0, "closed its standard input");
	for (;;) {
		char chunk[65536];
		ssize_t n;

		nl = cw->rbuf.len ? memchr(cw->rbuf.p, '\n', cw->rbuf.len) : NULL;
		if (nl)
			break;
		if (cw->rbuf.len > cw->max_line) {
			char what[160];

			snprintf(what, sizeof(what),
			         "wrote a result line longer than --max-line %zu for task %" PRIu64,
			         cw->max_line, t->id);
			return prog_fail(cw, r, SIGKILL, what);
		}
		n = read(cw->from_fd, chunk, sizeof(chunk));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return prog_fail(cw, r, 0, "closed its standard output before answering");
		if (cli_buf_add(&cw->rbuf, chunk, (size_t)n))
			return gd_result_error(r,
			                       "out of memory reading the worker program's output");
	}
	ll = (size_t)(nl - cw->rbuf.p);
	cw->last_id = t->id;
	if (ll + 1 < cw->rbuf.len) /* more than one line for one task */
		return prog_fail(
		        cw, r, SIGKILL,
		        "wrote more than one line for one task (the protocol is one result "
		        "line per task line; write logs to standard error)");
	cw->rbuf.len = 0;
	if (ll && cw->rbuf.p[ll - 1] == '\r')
		ll--;
	if (ll > cw->max_line)
		return gd_result_error(r,
		                       "worker program wrote a result line of %zu bytes, longer "
		                       "than --max-line %zu",
		                       ll, cw->max_line);
	if (ll >= 6 && !memcmp(cw->rbuf.p, "ERROR:", 6)) {
		const char *m = cw->rbuf.p + 6;
		size_t ml = ll - 6;

		while (ml && *m == ' ') {
			m++;
			ml--;
		}
		return gd_result_error(r, "%.*s", (int)ml, m);
	}
	return gd_result_set(r, cw->rbuf.p, ll);
}

/* ---------------------------------------------------------------- command */

static int open_out(const cw_state *cw, uint64_t id, const char *ext)
{
	char path[4096];

	snprintf(path, sizeof(path), "%s/%" PRIu64 ".%s", cw->out_dir, id, ext);
	return open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0666); /* read back for quotes */
}

static int process_command(cw_state *cw, const gd_task *t, const char *line, size_t len,
                           gd_result *r)
{
	char **argv = NULL, err[512], st[96], quote[ERR_QUOTE_MAX + 1] = "";
	int out = -1, errfd = -1, status = 0, rc;
	const char *nul = memchr(line, '\0', len);
	pid_t pid;

	if (nul)
		return gd_result_error(r,
		                       "task line has a NUL byte at byte %zu: a command "
		                       "argument cannot hold one",
		                       (size_t)(nul - line));
	if (cli_expand(cw->words, cw->n_words, cw->shell, line, len, t->id, cw->worker_id, &argv))
		return gd_result_error(r, "out of memory expanding the command");
	set_task_env(cw, t);
	if (cw->out_dir) {
		out = open_out(cw, t->id, "out");
		errfd = open_out(cw, t->id, "err");
	} else {
		out = open("/dev/null", O_RDWR | O_CLOEXEC);
		errfd = cw->quiet ? open("/dev/null", O_RDWR | O_CLOEXEC) : open_tmp();
	}
	if (out < 0 || errfd < 0) {
		rc = gd_result_error(r, "cannot open the output files%s%s: %s",
		                     cw->out_dir ? " in " : "", cw->out_dir ? cw->out_dir : "",
		                     strerror(errno));
		goto out;
	}
	{
		int in = open("/dev/null", O_RDONLY | O_CLOEXEC);

		pid = spawn(argv, cw->envp, in, out, errfd, err, sizeof(err));
		if (in >= 0)
			close(in);
	}
	if (pid < 0) {
		rc = gd_result_error(r, "%s", err);
		goto out;
	}
	if (wait_child(pid, &status) < 0) {
		rc = gd_result_error(r, "waitpid: %s", strerror(errno));
		goto out;
	}
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
		rc = 0;
		goto out;
	}
	describe_status(status, st, sizeof(st));
	if (!cw->quiet)
		last_line(errfd, quote, sizeof(quote));
	rc = gd_result_error(r, "command %s%s%s", st, quote[0] ? "; stderr: " : "", quote);
out:
	if (out >= 0)
		close(out);
	if (errfd >= 0)
		close(errfd);
	free(argv);
	return rc;
}

/* ------------------------------------------------------------ the class */

static void cw_free(cw_state *cw)
{
	if (!cw)
		return;
	if (cw->prog > 0)
		prog_stop(cw, SIGKILL, NULL);
	if (cw->err_fd >= 0)
		close(cw->err_fd);
	for (int i = 0; i < cw->n_words; i++)
		free(cw->words[i]);
	free(cw->words);
	if (cw->envp)
		for (size_t i = 0; i < cw->n_env + 2; i++)
			free(cw->envp[i]);
	free(cw->envp);
	free(cw->out_dir);
	free(cw->worker_cmd);
	cli_buf_free(&cw->rbuf);
	free(cw);
}

static int cw_setup(gd_worker *w, const gd_args *args)
{
	cw_state *cw = calloc(1, sizeof(*cw));
	const char *mode = gd_args_get(args, "mode"), *v;
	char err[512];

	if (!cw) {
		gd_worker_set_error(w, "out of memory");
		return -1;
	}
	cw->to_fd = cw->from_fd = cw->err_fd = -1;
	gd_worker_set_data(w, cw);
	/* a persistent program that dies must not take the executor with it */
	signal(SIGPIPE, SIG_IGN);
	cw->worker_id = gd_worker_id(w);
	cw->persistent = mode && !strcmp(mode, "persistent");
	cw->shell = (v = gd_args_get(args, "shell")) && !strcmp(v, "1");
	cw->quiet = (v = gd_args_get(args, "quiet")) && !strcmp(v, "1");
	cw->max_line = (v = gd_args_get(args, "max_line")) ? strtoull(v, NULL, 10) : 0;
	if (!cw->max_line)
		cw->max_line = CLI_DEFAULT_MAX_LINE;
	if ((v = gd_args_get(args, "output_dir")) && !(cw->out_dir = strdup(v)))
		goto oom;
	if (cw->out_dir && mkdir_p(cw->out_dir)) {
		gd_worker_set_error(w, "cannot create --output-dir %s: %s", cw->out_dir,
		                    strerror(errno));
		return -1;
	}
	v = gd_args_get(args, "argc");
	cw->n_words = v ? atoi(v) : 0;
	if (cw->n_words < 0 || cw->n_words > 100000)
		cw->n_words = 0;
	if (cw->n_words && !(cw->words = calloc((size_t)cw->n_words, sizeof(char *))))
		goto oom;
	for (int i = 0; i < cw->n_words; i++) {
		char key[32];

		snprintf(key, sizeof(key), "arg%d", i);
		v = gd_args_get(args, key);
		if (!(cw->words[i] = strdup(v ? v : "")))
			goto oom;
	}
	if (build_env(cw, w))
		goto oom;
	if (!cw->persistent) {
		if (!cw->n_words && !cw->shell) {
			gd_worker_set_error(w, "no command given (setup argument argc is 0)");
			return -1;
		}
		return 0;
	}
	v = gd_args_get(args, "worker_cmd");
	if (!v || !(cw->worker_cmd = strdup(v)))
		goto oom;
	if (cw->out_dir) {
		char path[4096];

		snprintf(path, sizeof(path), "%s/worker-%d.err", cw->out_dir, cw->worker_id);
		/* read-write: error messages quote its last line */
		cw->err_fd = open(path, O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0666);
		if (cw->err_fd < 0) {
			gd_worker_set_error(w, "cannot open %s: %s", path, strerror(errno));
			return -1;
		}
	} else if (!cw->quiet) {
		cw->err_fd = open_tmp();
	}
	if (prog_start(cw, err, sizeof(err))) {
		gd_worker_set_error(w, "cannot start worker program '%s': %s", cw->worker_cmd, err);
		return -1;
	}
	return 0;
oom:
	gd_worker_set_error(w, "out of memory in setup");
	return -1;
}

static int cw_process(gd_worker *w, const gd_task *t, gd_result *r)
{
	cw_state *cw = gd_worker_data(w);
	const char *data = t->data;

	if (!cw)
		return gd_result_error(r, "the worker was not set up");
	if (t->len < 1)
		return gd_result_error(r, "empty task (no kind byte)");
	switch (data[0]) {
	case CLI_TASK_LINE:
		break;
	case CLI_TASK_BAD:
		return gd_result_error(r, "%.*s", (int)(t->len - 1), data + 1);
	case CLI_TASK_SKIP:
		return 0; /* never sent: cfg.skip refuses them */
	default:
		return gd_result_error(r, "unknown task kind byte 0x%02x",
		                       (unsigned)(unsigned char)data[0]);
	}
	if (cw->persistent)
		return process_persistent(cw, t, data + 1, t->len - 1, r);
	return process_command(cw, t, data + 1, t->len - 1, r);
}

static int cw_cleanup(gd_worker *w)
{
	cw_state *cw = gd_worker_data(w);
	int rc = 0;

	if (!cw)
		return 0;
	if (cw->prog > 0) {
		pid_t pid = cw->prog;
		int st = 0, waited = 0;
		pid_t got = 0;

		/* end of input: the program should finish and exit 0 */
		close(cw->to_fd);
		cw->to_fd = -1;
		for (int i = 0; i < 200 && !(got = waitpid(pid, &st, WNOHANG)); i++)
			nanosleep(&(struct timespec){.tv_nsec = 50 * 1000 * 1000}, NULL);
		if (got == 0) {
			kill(pid, SIGKILL);
			wait_child(pid, &st);
			gd_worker_set_error(w, "worker program did not exit within 10 s of the end "
			                       "of its input; killed");
			rc = -1;
		} else if (got == pid) {
			waited = 1;
		}
		if (waited && !(WIFEXITED(st) && WEXITSTATUS(st) == 0)) {
			char s[96];

			describe_status(st, s, sizeof(s));
			gd_worker_set_error(w, "worker program %s at the end of its input", s);
			rc = -1;
		}
		cw->prog = 0;
	}
	cw_free(cw);
	gd_worker_set_data(w, NULL);
	return rc;
}

const gd_worker_class cli_worker_class = {
        .name = "gpudispatch-cli",
        .setup = cw_setup,
        .process = cw_process,
        .cleanup = cw_cleanup,
};
