/*
 * Whole MPI runs of placement on a fake node: run under mpiexec with
 * HWLOC_XMLFILE set to one of ../shared/topologies (every rank's hwloc then
 * sees the fake node).  Checks, on rank 0:
 *   - gd__place_local_index(): the dispatcher is not counted, workers are
 *     numbered in rank order;
 *   - gd__place_compute() on every worker: distinct GPUs, the right bus id
 *     and cpuset per worker;
 *   - gd_placement_report(): the JSON and the table carry the same, and an
 *     error (more workers than GPUs) comes back as GD_EPLACEMENT on every
 *     rank without a hang.
 *
 * usage: mpi_placement PRESET [MODE]
 *   PRESET: 1s-2gpu | 2s-8gpu (must match $HWLOC_XMLFILE)
 *   MODE:   ok (default) | toomany (expects GD_EPLACEMENT, then tries
 *           workers_per_gpu = 2)
 * Exit status 0 when every check passed.
 */
#define _GNU_SOURCE
#include "placement.h"

#include <hwloc.h>

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int failures;

#define CHECK(cond, ...)                                                                           \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			failures++;                                                                \
			fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);            \
			fprintf(stderr, __VA_ARGS__);                                              \
			fputc('\n', stderr);                                                       \
		}                                                                                  \
	} while (0)

typedef struct expect {
	int n_gpus;
	const char *bus[8];
	const char *cpuset[8];
} expect;

static const expect exp_2s = {
        8,
        {"0000:07:00.0", "0000:0f:00.0", "0000:47:00.0", "0000:4e:00.0", "0000:87:00.0",
         "0000:90:00.0", "0000:b7:00.0", "0000:bd:00.0"},
        {"0-7,16-23", "0-7,16-23", "0-7,16-23", "0-7,16-23", "8-15,24-31", "8-15,24-31",
         "8-15,24-31", "8-15,24-31"},
};
static const expect exp_1s = {
        2,
        {"0000:19:00.0", "0000:33:00.0"},
        {"0-15", "0-15"},
};

/* The fake topology's name, from the root object's FakeTopology info. */
static const char *fake_preset(char *buf, size_t len)
{
	hwloc_topology_t t;
	const char *v;

	buf[0] = '\0';
	if (hwloc_topology_init(&t) || hwloc_topology_load(t))
		return buf;
	v = hwloc_obj_get_info_by_name(hwloc_get_root_obj(t), "FakeTopology");
	snprintf(buf, len, "%s", v ? v : "");
	hwloc_topology_destroy(t);
	return buf;
}

/* The whole content of a stream, from its start. */
static char *slurp(FILE *f)
{
	long n;
	char *s;

	fflush(f);
	n = ftell(f);
	s = calloc(1, (size_t)(n > 0 ? n : 0) + 1);
	if (!s)
		return NULL;
	rewind(f);
	if (n > 0 && fread(s, 1, (size_t)n, f) != (size_t)n)
		s[0] = '\0';
	return s;
}

/* The JSON line of worker w (one object per line, as the report writes). */
static const char *json_line(const char *json, int w, char *line, size_t len)
{
	char key[48];
	const char *p, *e;

	snprintf(key, sizeof(key), "{\"worker\": %d,", w);
	p = strstr(json, key);
	if (!p)
		return NULL;
	e = strchr(p, '\n');
	snprintf(line, len, "%.*s", (int)(e ? e - p : (long)strlen(p)), p);
	return line;
}

/* Placement of every worker, computed on the workers and gathered. */
typedef struct result {
	int rc;
	int local_index;
	int local_workers;
	gd__placement p;
	char err[256];
} result;

static void check_compute(MPI_Comm comm, const expect *ex, int rank, int size)
{
	result mine, *all = NULL;

	memset(&mine, 0, sizeof(mine));
	mine.rc = gd__place_local_index(comm, &mine.local_index, &mine.local_workers);
	CHECK(mine.rc == 0, "gd__place_local_index on rank %d: %d", rank, mine.rc);
	if (rank != 0) {
		gd__place_req req = {.local_index = mine.local_index,
		                     .local_workers = mine.local_workers,
		                     .workers_per_gpu = 1};

		mine.rc = gd__place_compute(&req, &mine.p, mine.err, sizeof(mine.err));
	}
	if (rank == 0)
		all = calloc((size_t)size, sizeof(*all));
	MPI_Gather(&mine, sizeof(mine), MPI_BYTE, all, sizeof(mine), MPI_BYTE, 0, comm);
	if (rank != 0)
		return;
	/* One node: the dispatcher is -1, workers 0.. in rank order. */
	CHECK(all[0].local_index == -1, "rank 0 local index %d", all[0].local_index);
	for (int r = 0; r < size; r++)
		CHECK(all[r].local_workers == size - 1, "rank %d: local_workers %d", r,
		      all[r].local_workers);
	for (int r = 1; r < size; r++) {
		const result *x = &all[r];
		int w = r - 1;

		CHECK(x->local_index == w, "rank %d local index %d", r, x->local_index);
		CHECK(x->rc == 0, "worker %d: %d %s", w, x->rc, x->err);
		if (x->rc || w >= ex->n_gpus)
			continue;
		CHECK(x->p.n_gpus == ex->n_gpus, "worker %d sees %d GPUs", w, x->p.n_gpus);
		CHECK(x->p.gpu.index == w, "worker %d got GPU %d", w, x->p.gpu.index);
		CHECK(!strcmp(x->p.gpu.bus_id, ex->bus[w]), "worker %d bus %s, want %s", w,
		      x->p.gpu.bus_id, ex->bus[w]);
		CHECK(!strcmp(x->p.gpu.cpuset, ex->cpuset[w]), "worker %d cpuset %s, want %s", w,
		      x->p.gpu.cpuset, ex->cpuset[w]);
		for (int s = 1; s < r; s++)
			CHECK(strcmp(all[s].p.gpu.bus_id, x->p.gpu.bus_id),
			      "workers %d and %d share %s", s - 1, w, x->p.gpu.bus_id);
	}
	free(all);
}

static void check_report_ok(MPI_Comm comm, const expect *ex, int rank, int size)
{
	gd_config cfg;
	gd_config_init(&cfg, sizeof(cfg));
	FILE *js = rank == 0 ? tmpfile() : NULL, *tx = rank == 0 ? tmpfile() : NULL;
	int rc;

	CHECK(rank != 0 || (js && tx), "tmpfile");
	rc = gd_placement_report(comm, &cfg, 1, js);
	CHECK(rc == 0, "JSON report on rank %d: %d", rank, rc);
	rc = gd_placement_report(comm, &cfg, 0, tx);
	CHECK(rc == 0, "text report on rank %d: %d", rank, rc);
	if (rank == 0 && js && tx) {
		char *j = slurp(js), *t = slurp(tx), line[2048];

		CHECK(j && j[0] == '[', "JSON starts with [: %s", j ? j : "(null)");
		for (int w = 0; j && w < size - 1; w++) {
			char want[160];

			if (!json_line(j, w, line, sizeof(line))) {
				CHECK(0, "no JSON row for worker %d in:\n%s", w, j);
				continue;
			}
			snprintf(want, sizeof(want), "\"rank\": %d, \"local_index\": %d,", w + 1,
			         w);
			CHECK(strstr(line, want), "worker %d: %s", w, line);
			snprintf(want, sizeof(want), "\"gpu_index\": %d, \"bus_id\": \"%s\"", w,
			         ex->bus[w]);
			CHECK(strstr(line, want), "worker %d: want %s in %s", w, want, line);
			snprintf(want, sizeof(want), "\"cpuset\": \"%s\"", ex->cpuset[w]);
			CHECK(strstr(line, want), "worker %d: want %s in %s", w, want, line);
			CHECK(strstr(line, "\"error\": null"), "worker %d: %s", w, line);
			CHECK(strstr(line, "\"warning\": null"), "worker %d: %s", w, line);
			CHECK(strstr(line, "\"CUDA_DEVICE_ORDER\": \"PCI_BUS_ID\""),
			      "worker %d: %s", w, line);
		}
		CHECK(t && strstr(t, "worker") && strstr(t, "bus id") && strstr(t, "cpuset"),
		      "table header: %s", t ? t : "(null)");
		for (int w = 0; t && w < size - 1; w++)
			CHECK(strstr(t, ex->bus[w]) && strstr(t, ex->cpuset[w]),
			      "table lacks worker %d's %s %s:\n%s", w, ex->bus[w], ex->cpuset[w],
			      t);
		CHECK(t && !strstr(t, "warning") && !strstr(t, "ERROR"), "table:\n%s", t);
		free(j);
		free(t);
	}
	if (js)
		fclose(js);
	if (tx)
		fclose(tx);
}

/* More workers than GPUs: an error on every rank, naming the worker. */
static void check_report_toomany(MPI_Comm comm, int rank, int size)
{
	gd_config cfg;
	gd_config_init(&cfg, sizeof(cfg));
	FILE *js = rank == 0 ? tmpfile() : NULL;
	int rc, mn, mx;

	rc = gd_placement_report(comm, &cfg, 1, js);
	MPI_Allreduce(&rc, &mn, 1, MPI_INT, MPI_MIN, comm);
	MPI_Allreduce(&rc, &mx, 1, MPI_INT, MPI_MAX, comm);
	CHECK(mn == GD_EPLACEMENT && mx == GD_EPLACEMENT, "rank %d: rc %d (min %d, max %d)", rank,
	      rc, mn, mx);
	if (rank == 0 && js) {
		char *j = slurp(js), line[2048];
		char want[96];

		for (int w = 0; j && w < size - 1; w++) {
			CHECK(json_line(j, w, line, sizeof(line)), "no row for worker %d", w);
			snprintf(want, sizeof(want), "\"error\": \"node-local worker %d on host ",
			         w);
			CHECK(strstr(line, want), "worker %d: want %s in %s", w, want, line);
			snprintf(want, sizeof(want),
			         "%d worker ranks on this node but only 2 usable GPUs", size - 1);
			CHECK(strstr(line, want), "worker %d: want %s in %s", w, want, line);
		}
		free(j);
		fclose(js);
	}

	/* With two workers per GPU allowed it fits: 0,0,1 (or 0,0,1,1). */
	cfg.workers_per_gpu = 2;
	js = rank == 0 ? tmpfile() : NULL;
	rc = gd_placement_report(comm, &cfg, 1, js);
	CHECK(rc == 0, "rank %d with workers_per_gpu 2: %d", rank, rc);
	if (rank == 0 && js) {
		char *j = slurp(js), line[2048], want[64];

		for (int w = 0; j && w < size - 1; w++) {
			int need = (size - 1 + 1) / 2; /* workers per GPU: ceil(n / 2) */

			snprintf(want, sizeof(want), "\"gpu_index\": %d,", w / need);
			CHECK(json_line(j, w, line, sizeof(line)) && strstr(line, want),
			      "worker %d: want %s in %s", w, want, line);
			CHECK(strstr(line, "\"warning\": null"), "worker %d: %s", w, line);
		}
		free(j);
		fclose(js);
	}
}

int main(int argc, char **argv)
{
	const char *preset = argc > 1 ? argv[1] : "";
	const char *mode = argc > 2 ? argv[2] : "ok";
	const expect *ex = !strcmp(preset, "2s-8gpu")   ? &exp_2s
	                   : !strcmp(preset, "1s-2gpu") ? &exp_1s
	                                                : NULL;
	int rank, size, total = 0;
	char seen[64];

	/* See test_placement.c: keep libpciaccess reachable for LeakSanitizer. */
	dlopen("libpciaccess.so.0", RTLD_NOW | RTLD_NODELETE);
	MPI_Init(&argc, &argv);
	MPI_Comm_rank(MPI_COMM_WORLD, &rank);
	MPI_Comm_size(MPI_COMM_WORLD, &size);

	CHECK(ex, "unknown preset \"%s\"", preset);
	CHECK(getenv("HWLOC_XMLFILE"), "HWLOC_XMLFILE is not set");
	CHECK(!strcmp(fake_preset(seen, sizeof(seen)), preset),
	      "rank %d sees topology \"%s\", want \"%s\"", rank, seen, preset);
	/* Go on together or not at all: the checks below are collective. */
	MPI_Allreduce(&failures, &total, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
	if (ex && !total) {
		if (!strcmp(mode, "toomany")) {
			check_report_toomany(MPI_COMM_WORLD, rank, size);
		} else {
			CHECK(size - 1 <= ex->n_gpus, "%d workers for %d GPUs", size - 1,
			      ex->n_gpus);
			check_compute(MPI_COMM_WORLD, ex, rank, size);
			check_report_ok(MPI_COMM_WORLD, ex, rank, size);
		}
	}
	MPI_Allreduce(&failures, &total, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
	if (rank == 0)
		printf("mpi_placement %s %s, %d ranks: %s (%d failed checks)\n", preset, mode, size,
		       total ? "FAILED" : "passed", total);
	MPI_Finalize();
	return total ? 1 : 0;
}
