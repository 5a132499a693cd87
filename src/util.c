/* Buffers, the clock, diagnostics. */
#define _GNU_SOURCE
#include "internal.h"

#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

int gd__bytes_reserve(gd__bytes *b, size_t cap)
{
	size_t ncap;
	uint8_t *np;

	if (cap <= b->cap)
		return 0;
	ncap = b->cap ? b->cap : 256;
	while (ncap < cap)
		ncap = ncap > SIZE_MAX / 2 ? cap : ncap * 2;
	np = realloc(b->p, ncap);
	if (!np)
		return GD_ENOMEM;
	b->p = np;
	b->cap = ncap;
	return 0;
}

uint8_t *gd__bytes_grow(gd__bytes *b, size_t n)
{
	uint8_t *p;

	if (n > SIZE_MAX - b->len || gd__bytes_reserve(b, b->len + n))
		return NULL;
	p = b->p + b->len;
	b->len += n;
	return p;
}

int gd__bytes_append(gd__bytes *b, const void *data, size_t n)
{
	uint8_t *p = gd__bytes_grow(b, n);

	if (!p)
		return GD_ENOMEM;
	if (n)
		memcpy(p, data, n);
	return 0;
}

void gd__bytes_free(gd__bytes *b)
{
	free(b->p);
	b->p = NULL;
	b->len = b->cap = 0;
}

void gd__strlcpy(char *dst, const char *src, size_t size)
{
	size_t n;

	if (!size)
		return;
	n = src ? strnlen(src, size - 1) : 0;
	if (n)
		memcpy(dst, src, n);
	dst[n] = '\0';
}

double gd_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

void gd__log(int rank, const char *fmt, ...)
{
	char line[1024];
	va_list ap;
	int n;

	n = snprintf(line, sizeof(line), "gpudispatch[%d]: ", rank);
	va_start(ap, fmt);
	vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
	va_end(ap);
	/* one write per line, so lines of several ranks do not interleave */
	fprintf(stderr, "%s\n", line);
}

void gd__logf(const gd__logger *lg, gd_log_level level, const char *fmt, ...)
{
	char line[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (lg && lg->fn)
		lg->fn(lg->user, level, line);
	else
		gd__log(0, "%s", line);
}

int gd__mpi_fail(int mpi_rc, const char *call)
{
	char msg[MPI_MAX_ERROR_STRING + 1] = "";
	int len = 0, rank = -1, init = 0, fin = 0;

	MPI_Initialized(&init);
	MPI_Finalized(&fin);
	/* MPI's own words when MPI can still give them */
	if (!init || fin || MPI_Error_string(mpi_rc, msg, &len) != MPI_SUCCESS)
		len = snprintf(msg, sizeof(msg), "MPI error code %d", mpi_rc);
	msg[len >= 0 && len < (int)sizeof(msg) ? len : (int)sizeof(msg) - 1] = '\0';
	if (init && !fin)
		MPI_Comm_rank(MPI_COMM_WORLD, &rank);
	gd__log(rank, "%s failed: %s", call, msg);
	return GD_EMPI;
}

int gd__mpi_discard(MPI_Message *m)
{
	int rc = MPI_Mrecv(NULL, 0, MPI_BYTE, m, MPI_STATUS_IGNORE), cls = MPI_ERR_TRUNCATE;

	if (rc == MPI_SUCCESS ||
	    (MPI_Error_class(rc, &cls) == MPI_SUCCESS && cls == MPI_ERR_TRUNCATE))
		return 0;
	return gd__mpi_fail(rc, "MPI_Mrecv");
}

void gd__describe_status(int status, char *buf, size_t size)
{
	if (WIFSIGNALED(status))
		snprintf(buf, size, "killed by signal %d (%s)", WTERMSIG(status),
		         strsignal(WTERMSIG(status)));
	else if (WIFEXITED(status))
		snprintf(buf, size, "exited with status %d", WEXITSTATUS(status));
	else
		snprintf(buf, size, "stopped (wait status 0x%x)", status);
}
