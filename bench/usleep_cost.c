/*
 * usleep_cost: what usleep(US) really takes on this machine (timer slack and
 * wake-up latency included), the yardstick for the "% of ideal" rows.
 *
 *   usleep_cost [--us US] [--n N]
 *
 * Prints one JSON line with the mean and the median cost in microseconds.
 */
#define _GNU_SOURCE
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

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
	unsigned us = 1000, n = 500;

	for (int i = 1; i + 1 < argc; i += 2) {
		if (!strcmp(argv[i], "--us"))
			us = (unsigned)strtoul(argv[i + 1], NULL, 10);
		else if (!strcmp(argv[i], "--n"))
			n = (unsigned)strtoul(argv[i + 1], NULL, 10);
	}
	if (n < 1)
		n = 1;
	double *v = malloc(sizeof(*v) * n), t0 = now(), sum = 0;

	if (!v)
		return 1;
	for (unsigned i = 0; i < n; i++) {
		double a = now();

		usleep(us);
		v[i] = (now() - a) * 1e6;
		sum += v[i];
	}
	double total = now() - t0;
	qsort(v, n, sizeof(*v), cmp);
	printf("{\"bench\":\"usleep_cost\",\"us\":%u,\"n\":%u,\"mean_us\":%.3f,\"median_us\":%.3f,"
	       "\"min_us\":%.3f,\"max_us\":%.3f,\"elapsed_s\":%.6f}\n",
	       us, n, sum / n, v[n / 2], v[0], v[n - 1], total);
	free(v);
	return 0;
}
