/*
 * The processes the command's workers start: spawning one with the fds a
 * worker program gets, waiting for it, killing it with everything below it,
 * describing how it ended, its log's last lines, and a temporary file for
 * that log.  Used by command mode (cmdworker.c) and by persistent worker
 * programs (persistent.c); it knows neither.
 */
#define _GNU_SOURCE /* pipe2, execvpe, close_range, O_TMPFILE */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "../proctree.h"

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif

double cli_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* A file for stderr that nobody else sees: kept only to quote its end. */
int cli_open_tmp(void)
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

void cli_tail_lines(int fd, off_t since, int n, const char *sep, char *out, size_t outlen)
{
	char buf[8192];
	off_t size = lseek(fd, 0, SEEK_END), from;
	ssize_t got;
	size_t end, start, len = 0, sl = strlen(sep);
	int lines = 0;

	out[0] = '\0';
	if (size <= 0 || outlen < 2 || n <= 0)
		return;
	if (since > size)
		since = 0; /* the file was cut meanwhile */
	from = size - since > (off_t)sizeof(buf) ? size - (off_t)sizeof(buf) : since;
	got = pread(fd, buf, sizeof(buf), from);
	if (got <= 0)
		return;
	/* find the start of the n-th non-empty line from the end */
	end = (size_t)got;
	start = end;
	while (start && lines < n) {
		size_t e = start;

		while (e && (buf[e - 1] == '\n' || buf[e - 1] == '\r' || buf[e - 1] == ' '))
			e--;
		if (!e)
			break;
		start = e;
		while (start && buf[start - 1] != '\n')
			start--;
		lines++;
	}
	while (end > start && (buf[end - 1] == '\n' || buf[end - 1] == '\r' || buf[end - 1] == ' '))
		end--;
	/* the end matters most: when the lines do not fit, drop whole lines
	 * from their start (or the start of the one line that is too long) */
	if (end - start >= outlen) {
		size_t cut = end - (outlen - 1);
		const char *nl = memchr(buf + cut, '\n', end - cut);

		start = nl && (size_t)(nl - buf) + 1 < end ? (size_t)(nl - buf) + 1 : cut;
	}
	/* copy them, sep between lines, no control bytes */
	for (size_t i = start; i < end && len + 1 < outlen; i++) {
		char c = buf[i];

		if (c == '\n' || c == '\r') {
			size_t j = i;

			while (j < end && (buf[j] == '\n' || buf[j] == '\r' || buf[j] == ' '))
				j++;
			if (j == end)
				break;
			if (len + sl + 1 >= outlen)
				break;
			memcpy(out + len, sep, sl);
			len += sl;
			i = j - 1;
			continue;
		}
		out[len++] = (c == '\0' || c == '\t' || (unsigned char)c < 0x20) ? ' ' : c;
	}
	out[len] = '\0';
}

void cli_last_lines(int fd, off_t since, int n, char *out, size_t outlen)
{
	cli_tail_lines(fd, since, n, " | ", out, outlen);
}

void cli_kill_tree(pid_t pid, int sig)
{
	pid_t todo[1024];
	size_t n;

	/* the whole tree first, then the signal: a child killed first would
	 * hand its own children to a reaper where they are no longer found */
	todo[0] = pid;
	n = 1 + gd__descendants(pid, todo + 1, sizeof(todo) / sizeof(todo[0]) - 1);
	for (size_t i = 0; i < n; i++)
		kill(todo[i], sig);
}

int cli_end_leftovers(int kill_them)
{
	int killed = 0, st;

	/* The executor is a subreaper: whatever a finished command left
	 * behind (a background job, a daemon that called setsid()) is its
	 * child by now or below one.  None at all, the common case, costs one
	 * system call. */
	if (waitpid(-1, &st, WNOHANG) < 0)
		return 0;
	if (kill_them)
		killed = gd__kill_descendants(getpid());
	/* reap what ended (with --keep-children, only that) */
	while (waitpid(-1, &st, WNOHANG) > 0)
		;
	return killed;
}

/* Describe a wait status with the phrases rank 0 parses (cli_parse_status). */
void cli_result_exit(gd_result *r, int st)
{
	gd_result_set_exit(r, WIFEXITED(st) ? WEXITSTATUS(st) : -1,
	                   WIFSIGNALED(st) ? WTERMSIG(st) : 0);
}

void cli_describe_status(int st, char *out, size_t n)
{
	if (WIFEXITED(st))
		snprintf(out, n, "exited with status %d", WEXITSTATUS(st));
	else if (WIFSIGNALED(st))
		snprintf(out, n, "killed by signal %d (%s)", WTERMSIG(st), strsignal(WTERMSIG(st)));
	else
		snprintf(out, n, "stopped (wait status 0x%x)", st);
}

pid_t cli_wait_child(pid_t pid, int *st)
{
	pid_t r;

	do
		r = waitpid(pid, st, 0);
	while (r < 0 && errno == EINTR);
	return r;
}

pid_t cli_spawn(char *const argv[], char *const envp[], const int fds[5], char *err, size_t errlen)
{
	int p[2], e = 0, in = fds[0], out = fds[1], errfd = fds[2];
	int extra = fds[3] >= 0 && fds[4] >= 0, child_errfd;
	pid_t parent = getpid(), pid;
	ssize_t n;

	if (pipe2(p, O_CLOEXEC)) {
		snprintf(err, errlen, "pipe: %s", strerror(errno));
		return -1;
	}
	/* vfork: the executor carries the MPI rank's address space, and copying
	 * its page tables for every task was most of a short task's cost.  The
	 * child only makes system calls before exec. */
	/* the child writes only to what the parent does not read again: with
	 * vfork() it runs on the parent's stack */
	child_errfd = p[1];
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
		if (extra) {
			/* out of the way first: any of them may be 3 or 4 */
			int a = fcntl(fds[3], F_DUPFD_CLOEXEC, 10),
			    b = fcntl(fds[4], F_DUPFD_CLOEXEC, 10);
			int ep = fcntl(p[1], F_DUPFD_CLOEXEC, 10);

			if (a < 0 || b < 0 || ep < 0 || dup2(a, 3) < 0 || dup2(b, 4) < 0) {
				e = errno;
				goto fail;
			}
			child_errfd = ep;
		}
		/* no fd of the MPI library or of other tasks may leak into the task */
		if (close_range(extra ? 5 : 3, ~0U, CLOSE_RANGE_CLOEXEC))
			for (int fd = extra ? 5 : 3; fd < 1024; fd++)
				if (fd != child_errfd)
					close(fd);
		execvpe(argv[0], argv, envp);
		e = errno;
	fail:
		if (write(child_errfd, &e, sizeof(e)) < 0) {
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

		cli_wait_child(pid, &st);
		snprintf(err, errlen, "cannot run '%s': %s", argv[0], strerror(e));
		return -1;
	}
	return pid;
}
