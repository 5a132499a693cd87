/*
 * The results file's lock: one run at a time on a results file.  Rank 0
 * holds it for the run's whole life.
 *
 * The lock is a sibling file, RESULTS.lock, holding "HOST PID\n" of its
 * holder, created with O_CREAT|O_EXCL (atomic on local file systems and on
 * NFSv3 and later) and, in addition, flock()ed.  Two guards, because
 * neither is enough everywhere:
 *
 *  - the O_EXCL file is seen on every node of a shared file system, but a
 *    run killed with SIGKILL (or a node that died) leaves it behind;
 *  - flock() is released by the kernel when its holder dies, but on some
 *    file systems (Lustre mounted with localflock, some NFS setups) it is
 *    local to one node, and on others (Lustre with noflock) it fails.
 *
 * So an existing RESULTS.lock is taken over only when it is certain that its
 * holder is gone: it names this host, the flock is free, and no process with
 * its pid is alive, or the flock works and is free and the pid is gone.  A
 * lock file that names another host is never taken over: the run refuses
 * (exit 2) and says which host and pid hold it, and that removing the lock
 * file is the way out when no run is alive there.  Unsafe never; at worst
 * a stale lock file to remove by hand after a node crashed.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "../proctree.h"

static void host_name(char *h, size_t n)
{
	if (gethostname(h, n) || !h[0])
		snprintf(h, n, "unknown-host");
	h[n - 1] = '\0';
}

/* Read "HOST PID" from a lock file; \return 0 if both were there. */
static int read_holder(int fd, char *host, size_t hn, long *pid)
{
	char buf[512];
	ssize_t k = pread(fd, buf, sizeof(buf) - 1, 0);
	char *sp;

	host[0] = '\0';
	*pid = 0;
	if (k <= 0)
		return -1;
	buf[k] = '\0';
	buf[strcspn(buf, "\n")] = '\0';
	sp = strrchr(buf, ' ');
	if (!sp)
		return -1;
	*sp = '\0';
	size_t len = strlen(buf) < hn - 1 ? strlen(buf) : hn - 1;
	memcpy(host, buf, len);
	host[len] = '\0';
	*pid = strtol(sp + 1, NULL, 10);
	return host[0] && *pid > 0 ? 0 : -1;
}

static int pid_alive(long pid)
{
	return pid > 0 && gd__proc_alive((pid_t)pid);
}

int cli_results_lock(cli_lock *l, const char *results, char *err, size_t errlen)
{
	char me[256], holder[256], line[300];
	long pid;

	memset(l, 0, sizeof(*l));
	l->fd = -1;
	if (snprintf(l->path, sizeof(l->path), "%s.lock", results) >= (int)sizeof(l->path)) {
		snprintf(err, errlen, "results file name %s is too long", results);
		return -1;
	}
	host_name(me, sizeof(me));
	for (int tries = 0; tries < 3; tries++) {
		int fd = open(l->path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644), flocked;

		if (fd >= 0) {
			int n = snprintf(line, sizeof(line), "%s %ld\n", me, (long)getpid());

			/* a file system without flock(): the O_EXCL file guards alone */
			(void)!flock(fd, LOCK_EX | LOCK_NB);
			if (write(fd, line, (size_t)n) != n || fsync(fd)) {
				snprintf(err, errlen, "cannot write the lock file %s: %s", l->path,
				         strerror(errno));
				unlink(l->path);
				close(fd);
				return -1;
			}
			l->fd = fd;
			return 0;
		}
		if (errno != EEXIST) {
			snprintf(err, errlen,
			         "cannot open results file %s: cannot create its lock file %s: %s",
			         results, l->path, strerror(errno));
			return -1;
		}
		fd = open(l->path, O_RDWR | O_CLOEXEC);
		if (fd < 0) {
			if (errno == ENOENT)
				continue; /* its holder just removed it */
			snprintf(err, errlen, "cannot open the lock file %s: %s", l->path,
			         strerror(errno));
			return -1;
		}
		flocked = flock(fd, LOCK_EX | LOCK_NB) == 0;
		int busy = !flocked && errno == EWOULDBLOCK;
		int known = read_holder(fd, holder, sizeof(holder), &pid) == 0;

		/* on this host flock() is coherent where it works at all: free means
		 * its holder is gone (its pid may have been reused since) */
		if (!busy && known && !strcmp(holder, me) && (flocked || !pid_alive(pid))) {
			/* left by a run on this host that died: take it over, unless
			 * it was removed meanwhile (then start again) */
			struct stat a, b;

			if (fstat(fd, &a) || stat(l->path, &b) || a.st_ino != b.st_ino ||
			    a.st_dev != b.st_dev) {
				close(fd);
				continue;
			}
			int n = snprintf(line, sizeof(line), "%s %ld\n", me, (long)getpid());

			if (ftruncate(fd, 0) || pwrite(fd, line, (size_t)n, 0) != n) {
				snprintf(err, errlen, "cannot write the lock file %s: %s", l->path,
				         strerror(errno));
				close(fd);
				return -1;
			}
			fsync(fd);
			l->fd = fd;
			return 0;
		}
		close(fd);
		if (known)
			snprintf(err, errlen,
			         "results file %s is in use by another run (host %s, pid %ld, "
			         "lock file %s)%s",
			         results, holder, pid, l->path,
			         strcmp(holder, me)
			                 ? "; if no gpudispatch run is alive there, remove the "
			                   "lock file"
			                 : "");
		else if (busy)
			snprintf(err, errlen,
			         "results file %s is in use by another run (lock file %s)", results,
			         l->path);
		else
			snprintf(err, errlen,
			         "results file %s is locked by %s, which does not say by whom; if "
			         "no gpudispatch run uses the file, remove it",
			         results, l->path);
		return -1;
	}
	snprintf(err, errlen, "results file %s: its lock file %s keeps changing", results, l->path);
	return -1;
}

void cli_results_unlock(cli_lock *l)
{
	if (l->fd < 0)
		return;
	/* removed while still held: the next run creates a fresh one */
	unlink(l->path);
	close(l->fd);
	l->fd = -1;
}
