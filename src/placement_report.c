/*
 * gd_placement_report(): show where every worker rank would run.
 *
 * Collective over comm.  Rank 0's cfg decides (its placement fields are
 * broadcast, as gd_run() sends cfg to the workers); every worker rank
 * computes its own placement on its own node, and rank 0 gathers the rows
 * and prints a table or a JSON array.  Errors (e.g. more workers than GPUs
 * on a node) are printed naming the worker and host, and every rank returns
 * the same code, so no rank is left waiting.
 */
#include "config.h"
#include "internal.h"
#include "jsonw.h"
#include "placement.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* cfg.gpu_ids longer than this is an argument error (no node has that many GPUs). */
#define GD__MAX_GPU_IDS 1024

/* One worker's row, sent to rank 0 as bytes (same binary on every rank). */
typedef struct gd__place_row {
	int rank;
	int rc;
	int local_index;
	int local_workers;
	char host[64];
	char err[256];
	gd__placement p;
} gd__place_row;

/* What rank 0 tells everyone before placement starts. */
typedef struct gd__place_hdr {
	int ok;        /* 0: bad arguments or out of memory on rank 0 */
	int placement; /* cfg.placement */
	unsigned wpg;  /* cfg.workers_per_gpu */
	unsigned gpw;  /* cfg.gpus_per_worker */
	int n_ids;     /* cfg.n_gpu_ids */
} gd__place_hdr;

/* jsonw's sink: a FILE. */
static int gd__put_file(void *sink, const void *data, size_t n)
{
	return fwrite(data, 1, n, sink) != n;
}

/* Join two warnings into dst with "; ". */
static void gd__join(char *dst, size_t len, const char *a, const char *b)
{
	if (a[0] && b[0])
		snprintf(dst, len, "%s; %s", a, b);
	else
		snprintf(dst, len, "%s", a[0] ? a : b);
}

/*
 * Workers sharing a GPU beyond what was asked: more than wpg rows with the
 * same host and bus id.  Writes a warning for row i into buf ("" if none).
 */
static void gd__share_warning(const gd__place_row *rows, int n, int i, unsigned wpg, char *buf,
                              size_t len)
{
	const gd__place_row *r = &rows[i];
	int cnt = 0, used = 0;

	buf[0] = '\0';
	if (r->rc || r->p.gpu.index < 0 || !r->p.gpu.bus_id[0])
		return;
	for (int j = 1; j < n; j++)
		cnt += !rows[j].rc && rows[j].p.gpu.index >= 0 && !strcmp(rows[j].host, r->host) &&
		       !strcmp(rows[j].p.gpu.bus_id, r->p.gpu.bus_id);
	if (cnt <= (int)(wpg ? wpg : 1))
		return;
	used = snprintf(buf, len, "GPU %d (%s) on %s is shared by %d workers (workers",
	                r->p.gpu.index, r->p.gpu.bus_id, r->host, cnt);
	for (int j = 1; j < n && used > 0 && (size_t)used < len; j++)
		if (!rows[j].rc && !strcmp(rows[j].host, r->host) &&
		    !strcmp(rows[j].p.gpu.bus_id, r->p.gpu.bus_id))
			used += snprintf(buf + used, len - (size_t)used, " %d", rows[j].rank - 1);
	if (used > 0 && (size_t)used < len)
		snprintf(buf + used, len - (size_t)used, ") but workers_per_gpu is %u",
		         wpg ? wpg : 1);
}

/* Was this note already printed for an earlier row? (once per host) */
static int gd__note_seen(const gd__place_row *rows, int i)
{
	for (int j = 1; j < i; j++)
		if (!strcmp(rows[j].p.note, rows[i].p.note))
			return 1;
	return 0;
}

static void gd__print_json(FILE *f, const gd__place_row *rows, int n, unsigned wpg)
{
	char share[256], warn[600];

	fputs("[\n", f);
	for (int i = 1; i < n; i++) {
		const gd__place_row *r = &rows[i];
		const gd_gpu *g = &r->p.gpu;
		int has_gpu = !r->rc && g->index >= 0;
		gd__jsonw w;

		gd__share_warning(rows, n, i, wpg, share, sizeof(share));
		gd__join(warn, sizeof(warn), r->p.warning, share);
		fputs("  ", f);
		gd__jsonw_init(&w, gd__put_file, f, 1);
		gd__jsonw_obj(&w);
		gd__jsonw_key(&w, "worker");
		gd__jsonw_int(&w, r->rank - 1);
		gd__jsonw_key(&w, "host");
		gd__jsonw_cstr(&w, r->host);
		gd__jsonw_key(&w, "rank");
		gd__jsonw_int(&w, r->rank);
		gd__jsonw_key(&w, "local_index");
		gd__jsonw_int(&w, r->local_index);
		gd__jsonw_key(&w, "gpu_index");
		if (has_gpu)
			gd__jsonw_int(&w, g->index);
		else
			gd__jsonw_null(&w);
		gd__jsonw_key(&w, "bus_id");
		gd__jsonw_cstr(&w, has_gpu ? g->bus_id : NULL);
		gd__jsonw_key(&w, "numa_node");
		if (!r->rc && g->numa_node >= 0)
			gd__jsonw_int(&w, g->numa_node);
		else
			gd__jsonw_null(&w);
		gd__jsonw_key(&w, "cpuset");
		gd__jsonw_cstr(&w, r->rc ? NULL : g->cpuset);
		gd__jsonw_key(&w, "vendor");
		gd__jsonw_cstr(&w, has_gpu ? g->vendor : NULL);
		gd__jsonw_key(&w, "model");
		gd__jsonw_cstr(&w, has_gpu && g->model[0] ? g->model : NULL);
		gd__jsonw_key(&w, "uuid");
		gd__jsonw_cstr(&w, has_gpu && g->uuid[0] ? g->uuid : NULL);
		gd__jsonw_key(&w, "gpus");
		gd__jsonw_arr(&w);
		for (int k = 0; has_gpu && k < r->p.n_wgpus && k < GD_MAX_WORKER_GPUS; k++) {
			const gd_gpu *q = &r->p.gpus[k];

			gd__jsonw_obj(&w);
			gd__jsonw_key(&w, "index");
			gd__jsonw_int(&w, q->index);
			gd__jsonw_key(&w, "bus_id");
			gd__jsonw_cstr(&w, q->bus_id);
			gd__jsonw_key(&w, "numa_node");
			if (q->numa_node >= 0)
				gd__jsonw_int(&w, q->numa_node);
			else
				gd__jsonw_null(&w);
			gd__jsonw_key(&w, "cpuset");
			gd__jsonw_cstr(&w, q->cpuset);
			gd__jsonw_key(&w, "uuid");
			gd__jsonw_cstr(&w, q->uuid[0] ? q->uuid : NULL);
			gd__jsonw_obj_end(&w);
		}
		gd__jsonw_arr_end(&w);
		gd__jsonw_key(&w, "cpu_worker");
		gd__jsonw_bool(&w, r->p.cpu_worker);
		gd__jsonw_key(&w, "env");
		gd__jsonw_obj(&w);
		for (int k = 0; !r->rc && k < r->p.n_env && k < GD__PLACE_MAX_ENV; k++) {
			gd__jsonw_key(&w, r->p.env_name[k]);
			gd__jsonw_cstr(&w, r->p.env_value[k]);
		}
		gd__jsonw_obj_end(&w);
		gd__jsonw_key(&w, "warning");
		gd__jsonw_cstr(&w, warn[0] ? warn : NULL);
		gd__jsonw_key(&w, "note");
		gd__jsonw_cstr(&w, r->p.note[0] ? r->p.note : NULL);
		gd__jsonw_key(&w, "error");
		gd__jsonw_cstr(&w, r->rc ? r->err : NULL);
		gd__jsonw_obj_end(&w);
		gd__jsonw_flush(&w);
		fputs(i + 1 < n ? ",\n" : "\n", f);
	}
	fputs("]\n", f);
}

/* "0,1" and "0000:07:00.0,0000:0f:00.0" for a row's GPUs ("-" for none). */
static void gd__row_gpus(const gd__place_row *r, char *idx, size_t il, char *bus, size_t bl)
{
	size_t iu = 0, bu = 0;
	int n = r->p.n_wgpus;

	snprintf(idx, il, "-");
	snprintf(bus, bl, "-");
	if (r->rc || r->p.gpu.index < 0)
		return;
	if (n <= 0) { /* one GPU */
		snprintf(idx, il, "%d", r->p.gpu.index);
		snprintf(bus, bl, "%s", r->p.gpu.bus_id);
		return;
	}
	for (int k = 0; k < n && k < GD_MAX_WORKER_GPUS; k++) {
		if (iu < il)
			iu += (size_t)snprintf(idx + iu, il - iu, "%s%d", k ? "," : "",
			                       r->p.gpus[k].index);
		if (bu < bl)
			bu += (size_t)snprintf(bus + bu, bl - bu, "%s%s", k ? "," : "",
			                       r->p.gpus[k].bus_id);
	}
}

/* The NUMA nodes of a row's GPUs, "0" or "0,1" ("-" when unknown). */
static void gd__row_numa(const gd__place_row *r, char *buf, size_t len)
{
	size_t u = 0;
	int seen[GD_MAX_WORKER_GPUS], ns = 0;

	snprintf(buf, len, "-");
	if (r->p.gpu.index < 0 || r->p.n_wgpus <= 1) {
		if (r->p.gpu.numa_node >= 0)
			snprintf(buf, len, "%d", r->p.gpu.numa_node);
		return;
	}
	for (int k = 0; k < r->p.n_wgpus && k < GD_MAX_WORKER_GPUS; k++) {
		int m = r->p.gpus[k].numa_node, dup = 0;

		for (int j = 0; j < ns; j++)
			dup |= seen[j] == m;
		if (dup || m < 0)
			continue;
		seen[ns++] = m;
		if (u < len)
			u += (size_t)snprintf(buf + u, len - u, "%s%d", u ? "," : "", m);
	}
	if (!ns)
		snprintf(buf, len, "-");
}

static void gd__print_text(FILE *f, const gd__place_row *rows, int n, unsigned wpg)
{
	int hw = 4, cw = 6, gw = 4, bw = 12, nw = 4;
	char share[256], idx[GD_MAX_WORKER_GPUS * 4], bus[GD_MAX_WORKER_GPUS * 21], numa[64];

	for (int i = 1; i < n; i++) {
		int l = (int)strlen(rows[i].host), c = (int)strlen(rows[i].p.gpu.cpuset);

		hw = l > hw ? l : hw;
		cw = c > cw ? c : cw;
		gd__row_gpus(&rows[i], idx, sizeof(idx), bus, sizeof(bus));
		gd__row_numa(&rows[i], numa, sizeof(numa));
		gw = (int)strlen(idx) > gw ? (int)strlen(idx) : gw;
		bw = (int)strlen(bus) > bw ? (int)strlen(bus) : bw;
		nw = (int)strlen(numa) > nw ? (int)strlen(numa) : nw;
	}
	fprintf(f, "%6s  %-*s  %5s  %*s  %-*s  %*s  %-*s  %s\n", "worker", hw, "host", "rank", gw,
	        "gpu", bw, "bus id", nw, "numa", cw, "cpuset", "model");
	for (int i = 1; i < n; i++) {
		const gd__place_row *r = &rows[i];
		const gd_gpu *g = &r->p.gpu;

		if (r->rc) {
			fprintf(f, "%6d  %-*s  %5d  ERROR: %s\n", r->rank - 1, hw, r->host, r->rank,
			        r->err);
			continue;
		}
		gd__row_gpus(r, idx, sizeof(idx), bus, sizeof(bus));
		gd__row_numa(r, numa, sizeof(numa));
		fprintf(f, "%6d  %-*s  %5d  %*s  %-*s  %*s  %-*s  %s\n", r->rank - 1, hw, r->host,
		        r->rank, gw, idx, bw, bus, nw, numa, cw, g->cpuset[0] ? g->cpuset : "-",
		        g->index >= 0 ? (g->model[0] ? g->model : "?") : "(CPU worker)");
	}
	for (int i = 1; i < n; i++) {
		const gd__place_row *r = &rows[i];

		if (r->p.note[0] && !gd__note_seen(rows, i))
			fprintf(f, "note: %s\n", r->p.note);
		if (!r->rc && r->p.warning[0])
			fprintf(f, "warning: worker %d (rank %d) on %s: %s\n", r->rank - 1, r->rank,
			        r->host, r->p.warning);
		gd__share_warning(rows, n, i, wpg, share, sizeof(share));
		if (share[0])
			fprintf(f, "warning: worker %d (rank %d): %s\n", r->rank - 1, r->rank,
			        share);
	}
}

int gd_placement_report(MPI_Comm comm, const gd_config *cfg, int json, FILE *out)
{
	gd__place_hdr hdr = {0};
	gd__place_row row, *rows = NULL;
	int ids[GD__MAX_GPU_IDS], rank, size, rc = 0, first_bad = -1, nbad = 0;

	if (gd__mpi(MPI_Comm_rank(comm, &rank), "MPI_Comm_rank") ||
	    gd__mpi(MPI_Comm_size(comm, &size), "MPI_Comm_size"))
		return GD_EMPI;
	if (size < 2)
		return GD_ENOWORKER;

	if (rank == 0) {
		gd_config c_full;
		const gd_config *c = &c_full;

		/* NULL: the defaults; a bad size: refused like an invalid list */
		if (cfg ? gd__config_take(cfg, &c_full) : gd_config_init(&c_full, sizeof(c_full)))
			hdr.ok = 0;

		hdr.ok = !(c->n_gpu_ids && !c->gpu_ids) && c->n_gpu_ids <= GD__MAX_GPU_IDS;
		hdr.placement = c->placement;
		hdr.wpg = c->workers_per_gpu ? c->workers_per_gpu : 1;
		hdr.gpw = c->gpus_per_worker ? c->gpus_per_worker : 1;
		hdr.n_ids = hdr.ok ? (int)c->n_gpu_ids : 0;
		rows = calloc((size_t)size, sizeof(*rows));
		if (!rows)
			hdr.ok = -1;
	}
	if (gd__mpi(MPI_Bcast(&hdr, sizeof(hdr), MPI_BYTE, 0, comm), "MPI_Bcast")) {
		free(rows);
		return GD_EMPI;
	}
	if (hdr.ok != 1) {
		free(rows);
		return hdr.ok ? GD_ENOMEM : GD_EINVAL;
	}
	if (hdr.n_ids) {
		if (rank == 0)
			memcpy(ids, cfg->gpu_ids, (size_t)hdr.n_ids * sizeof(*ids));
		if (gd__mpi(MPI_Bcast(ids, hdr.n_ids, MPI_INT, 0, comm), "MPI_Bcast")) {
			free(rows);
			return GD_EMPI;
		}
	}

	memset(&row, 0, sizeof(row));
	row.rank = rank;
	if (gethostname(row.host, sizeof(row.host)) != 0)
		snprintf(row.host, sizeof(row.host), "?");
	row.host[sizeof(row.host) - 1] = '\0';
	rc = gd__place_local_index(comm, &row.local_index, &row.local_workers);
	if (rc) {
		row.rc = rc;
		snprintf(row.err, sizeof(row.err),
		         "host %s: cannot find the node-local worker index", row.host);
	} else if (rank != 0 && hdr.placement) {
		gd__place_req req = {.local_index = row.local_index,
		                     .local_workers = row.local_workers,
		                     .gpu_ids = hdr.n_ids ? ids : NULL,
		                     .n_gpu_ids = (size_t)hdr.n_ids,
		                     .workers_per_gpu = hdr.wpg,
		                     .gpus_per_worker = hdr.gpw};

		row.rc = gd__place_compute(&req, &row.p, row.err, sizeof(row.err));
	} else if (rank != 0) {
		row.p.gpu.index = -1;
		row.p.gpu.numa_node = -1;
		snprintf(row.p.note, sizeof(row.p.note),
		         "placement disabled (cfg.placement = 0): workers are not bound and see "
		         "every GPU");
	}
	if (gd__mpi(MPI_Gather(&row, sizeof(row), MPI_BYTE, rows, sizeof(row), MPI_BYTE, 0, comm),
	            "MPI_Gather")) {
		free(rows);
		return GD_EMPI;
	}
	if (rank == 0) {
		rc = 0;
		for (int i = 1; i < size; i++) {
			if (!rows[i].rc)
				continue;
			nbad++;
			if (first_bad < 0) {
				first_bad = i;
				rc = rows[i].rc == GD_EMPI || rows[i].rc == GD_ENOMEM
				             ? rows[i].rc
				             : GD_EPLACEMENT;
			}
		}
		if (json)
			gd__print_json(out, rows, size, hdr.wpg);
		else
			gd__print_text(out, rows, size, hdr.wpg);
		fflush(out);
		for (int i = 1; i < size; i++)
			if (rows[i].rc)
				fprintf(stderr,
				        "gpudispatch: placement error: worker %d (rank %d): %s\n",
				        i - 1, i, rows[i].err);
		if (nbad)
			fprintf(stderr, "gpudispatch: placement failed for %d of %d workers\n",
			        nbad, size - 1);
		fflush(stderr);
	}
	free(rows);
	/* The same answer on every rank. */
	if (gd__mpi(MPI_Bcast(&rc, 1, MPI_INT, 0, comm), "MPI_Bcast"))
		return GD_EMPI;
	return rc;
}
