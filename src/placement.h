/*
 * GPU placement by hwloc locality (internal).
 *
 * The worker rank computes its placement once at start (gd__place_compute),
 * sends the resulting gd_gpu to rank 0, and each executor it forks applies it
 * (gd__place_apply) before setup(): CPU and memory binding plus the GPU
 * visibility variables.
 */
#ifndef GD_PLACEMENT_H
#define GD_PLACEMENT_H

#include "gpudispatch.h"

#include <stddef.h>

/** What the worker knows when it asks for a placement. */
typedef struct gd__place_req {
	int local_index;    /* node-local index of this worker rank (dispatcher not counted) */
	int local_workers;  /* worker ranks on this node */
	const int *gpu_ids; /* explicit GPU list (cfg.gpu_ids), NULL = all visible */
	size_t n_gpu_ids;
	unsigned workers_per_gpu; /* >1: several workers may share a GPU (or GPU group) */
	unsigned gpus_per_worker; /* GPUs each worker gets, 0 counts as 1 */
	const char *xml_path;     /* topology XML, NULL = $HWLOC_XMLFILE or this system */
	/* environment lookup (tests pass their own), NULL = getenv */
	const char *(*getenv_fn)(void *ctx, const char *name);
	void *getenv_ctx;
} gd__place_req;

#define GD__PLACE_MAX_ENV 6

/* The usable GPUs could not hold the node's worker ranks (a usage error). */
#define GD__PLACE_NOFIT 1

/** The outcome; plain data, safe to copy. */
typedef struct gd__placement {
	gd_gpu gpu;  /* index -1: CPU worker; the first of gpus[], cpuset = the union */
	int n_wgpus; /* GPUs of this worker (gpus[]), 0 for a CPU worker */
	gd_gpu gpus[GD_MAX_WORKER_GPUS]; /* in PCI order, each with its own locality */
	int nofit;                       /* GD__PLACE_NOFIT with a GD_EPLACEMENT return */
	int n_gpus;                      /* compute GPUs usable on the node after restrictions */
	int cpu_worker;                  /* 1 when the node has no usable GPU */
	char nodeset[64];                /* memory binding, hwloc list string, "" = none */
	char warning[256];               /* e.g. cores not local to the GPU, "" = none */
	char note[256]; /* e.g. "no GPU found: running as CPU workers", "" = none */
	int n_env;      /* variables the executor must set */
	char env_name[GD__PLACE_MAX_ENV][32];
	char env_value[GD__PLACE_MAX_ENV][GD_MAX_WORKER_GPUS * 48];
} gd__placement;

/**
 * Compute the placement of one worker.
 * \return 0, or GD_EPLACEMENT with a message in err (e.g. more workers than
 *         GPUs on the node without workers_per_gpu > 1; an unknown id in
 *         CUDA_VISIBLE_DEVICES).
 */
int gd__place_compute(const gd__place_req *req, gd__placement *out, char *err, size_t errlen);

/**
 * Apply a placement to the calling process (the executor): bind CPUs (the
 * intersection with the binding the process already has; never wider) and
 * memory where possible, and set the environment variables.
 * \return 0, or GD_EPLACEMENT with a message in err.  Binding that the OS
 *         refuses is a warning in err with a 0 return.
 */
int gd__place_apply(const gd__placement *p, char *err, size_t errlen);

/**
 * Collective over comm: each worker rank (rank != 0) learns its index among
 * the worker ranks on its node and how many there are (rank 0 gets -1 / the
 * count of its node's workers).  Uses MPI_Comm_split_type(SHARED).
 * \return 0 or GD_EMPI.
 */
int gd__place_local_index(MPI_Comm comm, int *local_index, int *local_workers);
#endif
