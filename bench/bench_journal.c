/*
 * bench_journal: the journal's hot path, gd__journal_add() of a finished
 * task's record (the command's extra members included), timed alone and
 * with its flushes to a file.  Prints ns per record.  Built by
 * bench/bench_journal.sh from the core's sources (the function is internal).
 *   bench_journal [records, default 1000000] [file, default /dev/shm/...]
 */
#include "journal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* what the command adds: exit status, signal, the task line */
static size_t extra(void *user, const gd_event *ev, char *buf, size_t size)
{
	int n = snprintf(buf, size, "\"exit_status\":0,\"signal\":null,\"task\":\"%.*s\"",
	                 (int)ev->task_len - 1, (const char *)ev->task_data + 1);

	(void)user;
	return n < 0 ? 0 : (size_t)n;
}

int main(int argc, char **argv)
{
	unsigned long n = argc > 1 ? strtoul(argv[1], NULL, 10) : 1000000;
	char path[256], err[256], task[64];
	const char *file = argc > 2 ? argv[2] : NULL;
	gd_worker_stats row;
	gd__journal *j;
	double t0, t1;

	if (file)
		snprintf(path, sizeof(path), "%s", file);
	else
		snprintf(path, sizeof(path), "/dev/shm/bench_journal.%d", (int)getpid());
	unlink(path);
	if (gd__journal_open(path, 0, 0, NULL, &j, err, sizeof(err))) {
		fprintf(stderr, "bench_journal: %s\n", err);
		return 1;
	}
	memset(&row, 0, sizeof(row));
	strcpy(row.host, "node042");
	row.gpu.index = 3;
	strcpy(row.gpu.bus_id, "0000:47:00.0");
	t0 = now();
	for (unsigned long i = 0; i < n; i++) {
		gd_event ev = {.type = GD_EV_SUCCESS,
		               .worker_id = (int)(i % 8),
		               .task_id = i,
		               .attempt = 1,
		               .message = "",
		               .elapsed_s = 0.0123};
		int tl = snprintf(task, sizeof(task), "Linput/image_%08lu.png", i);

		ev.task_data = task;
		ev.task_len = (size_t)tl;
		if (gd__journal_add(j, &ev, GD_JS_OK, &row, extra, NULL)) {
			fprintf(stderr, "bench_journal: add failed\n");
			return 1;
		}
	}
	t1 = now();
	if (gd__journal_close(j)) {
		fprintf(stderr, "bench_journal: close failed\n");
		return 1;
	}
	printf("journal_add: %lu records, %.1f ns/record (with flushes), %.0f records/s\n", n,
	       (t1 - t0) * 1e9 / (double)n, (double)n / (t1 - t0));
	unlink(path);
	return 0;
}
