/* proctree.c: see proctree.h. */
#include "proctree.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

size_t gd__descendants(pid_t root, pid_t *out, size_t max)
{
	size_t n = 0, next = 0;
	pid_t cur = root;

	for (;;) {
		char path[64], buf[4096];
		DIR *d;
		struct dirent *e;

		snprintf(path, sizeof(path), "/proc/%d/task", (int)cur);
		if ((d = opendir(path))) {
			while ((e = readdir(d)) && n < max) {
				int fd;
				ssize_t k;

				if (e->d_name[0] == '.')
					continue;
				snprintf(path, sizeof(path), "/proc/%d/task/%.20s/children",
				         (int)cur, e->d_name);
				fd = open(path, O_RDONLY | O_CLOEXEC);
				if (fd < 0)
					continue;
				k = read(fd, buf, sizeof(buf) - 1);
				close(fd);
				if (k <= 0)
					continue;
				buf[k] = '\0';
				for (char *p = buf, *q; *p && n < max; p = q) {
					long c = strtol(p, &q, 10);

					if (q == p)
						break;
					if (c > 0)
						out[n++] = (pid_t)c;
				}
			}
			closedir(d);
		}
		if (next == n)
			return n;
		cur = out[next++];
	}
}

int gd__proc_alive(pid_t pid)
{
	char path[64], buf[256], *rp;
	int fd;
	ssize_t k;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return 0;
	k = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (k <= 0)
		return 0;
	buf[k] = '\0';
	rp = strrchr(buf, ')'); /* the name may hold anything */
	return rp && rp[1] == ' ' && rp[2] != 'Z' && rp[2] != 'X';
}

int gd__kill_descendants(pid_t root)
{
	pid_t pids[4096];
	int killed = 0;

	/* A process killed here hands its own children to the nearest
	 * subreaper (the executor is one), where the next round finds them;
	 * a process that forks meanwhile is caught the same way. */
	for (int round = 0; round < 200; round++) {
		size_t n = gd__descendants(root, pids, sizeof(pids) / sizeof(pids[0]));
		int any = 0;

		for (size_t i = 0; i < n; i++)
			if (gd__proc_alive(pids[i])) {
				kill(pids[i], SIGKILL);
				any = 1;
				killed++;
			}
		if (!any)
			break;
		struct timespec ts = {0, 1000000}; /* 1 ms: let them die */
		nanosleep(&ts, NULL);
	}
	return killed;
}
