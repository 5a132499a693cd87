/*
 * cuda_worker - a worker class that runs a CUDA kernel, as a template for
 * real GPU work with gpudispatch.  Built when the CUDA toolkit is found.
 *
 *   mpirun -n 5 ./cuda_worker [N_TASKS] [ELEMENTS]
 *
 * Placement has set CUDA_VISIBLE_DEVICES in each worker's executor before
 * setup(), so the worker's GPU is device 0 there.  setup() picks it and
 * allocates once; process() runs y = a*x + y over ELEMENTS floats with a = the
 * task id and returns the sum; cleanup() frees.  Rank 0 checks each sum.
 */
#include <cuda_runtime.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gpudispatch.h"

struct gpu_state {
	float *x, *y, *host;
	unsigned n;
	int device;
};

__global__ void saxpy(unsigned n, float a, const float *x, float *y)
{
	unsigned i = blockIdx.x * blockDim.x + threadIdx.x;

	if (i < n)
		y[i] = a * x[i] + y[i];
}

#define CUDA_OK(call, w, what)                                                                     \
	do {                                                                                       \
		cudaError_t e_ = (call);                                                           \
		if (e_ != cudaSuccess) {                                                           \
			gd_worker_set_error(w, "%s: %s", what, cudaGetErrorString(e_));            \
			return -1;                                                                 \
		}                                                                                  \
	} while (0)

static int setup(gd_worker *w, const gd_args *args)
{
	struct gpu_state *s = (struct gpu_state *)calloc(1, sizeof(*s));
	const char *n = gd_args_get(args, "elements");
	int count = 0;

	if (!s) {
		gd_worker_set_error(w, "out of memory");
		return -1;
	}
	gd_worker_set_data(w, s);
	s->n = n ? (unsigned)strtoul(n, NULL, 10) : (1u << 20);
	CUDA_OK(cudaGetDeviceCount(&count), w, "cudaGetDeviceCount");
	if (count < 1) {
		gd_worker_set_error(w, "no CUDA device visible (CUDA_VISIBLE_DEVICES=%s)",
		                    getenv("CUDA_VISIBLE_DEVICES") ? getenv("CUDA_VISIBLE_DEVICES")
		                                                   : "unset");
		return -1;
	}
	CUDA_OK(cudaSetDevice(0), w, "cudaSetDevice");
	CUDA_OK(cudaMalloc((void **)&s->x, s->n * sizeof(float)), w, "cudaMalloc x");
	CUDA_OK(cudaMalloc((void **)&s->y, s->n * sizeof(float)), w, "cudaMalloc y");
	s->host = (float *)malloc(s->n * sizeof(float));
	if (!s->host) {
		gd_worker_set_error(w, "out of memory");
		return -1;
	}
	for (unsigned i = 0; i < s->n; i++)
		s->host[i] = 1.0f;
	CUDA_OK(cudaMemcpy(s->x, s->host, s->n * sizeof(float), cudaMemcpyHostToDevice), w,
	        "cudaMemcpy x");
	return 0;
}

static int process(gd_worker *w, const gd_task *t, gd_result *r)
{
	struct gpu_state *s = (struct gpu_state *)gd_worker_data(w);
	cudaError_t e;
	double sum = 0;
	char out[128];
	int n;

	/* y = 0; y = id * x + y  ->  sum = id * n */
	if ((e = cudaMemset(s->y, 0, s->n * sizeof(float))) != cudaSuccess)
		return gd_result_error(r, "cudaMemset: %s", cudaGetErrorString(e));
	saxpy<<<(s->n + 255) / 256, 256>>>(s->n, (float)t->id, s->x, s->y);
	if ((e = cudaGetLastError()) != cudaSuccess ||
	    (e = cudaMemcpy(s->host, s->y, s->n * sizeof(float), cudaMemcpyDeviceToHost)) !=
	            cudaSuccess)
		return gd_result_error(r, "saxpy: %s", cudaGetErrorString(e));
	for (unsigned i = 0; i < s->n; i++)
		sum += s->host[i];
	n = snprintf(out, sizeof(out), "%.0f", sum);
	return gd_result_set(r, out, (size_t)n);
}

static int cleanup(gd_worker *w)
{
	struct gpu_state *s = (struct gpu_state *)gd_worker_data(w);

	if (s) {
		cudaFree(s->x);
		cudaFree(s->y);
		free(s->host);
		free(s);
	}
	return 0;
}

struct run_state {
	uint64_t next, n_tasks;
	unsigned elements;
	uint64_t bad;
};

static int gen(void *state, gd_buf *b)
{
	struct run_state *rs = (struct run_state *)state;

	if (rs->next >= rs->n_tasks)
		return 0;
	rs->next++;
	return gd_buf_set(b, "", 0) ? -1 : 1;
}

static void on_success(void *user, const gd_event *ev)
{
	struct run_state *rs = (struct run_state *)user;
	char buf[64];
	double want = (double)ev->task_id * rs->elements;

	snprintf(buf, sizeof(buf), "%.*s", (int)ev->len, (const char *)ev->data);
	if (strtod(buf, NULL) != want) {
		rs->bad++;
		fprintf(stderr, "task %llu: sum %s, expected %.0f\n",
		        (unsigned long long)ev->task_id, buf, want);
	}
}

int main(int argc, char **argv)
{
	static const gd_worker_class cls = {"cuda-saxpy", setup, process, cleanup};
	struct run_state rs = {0, argc > 1 ? strtoull(argv[1], NULL, 10) : 64,
	                       argc > 2 ? (unsigned)strtoul(argv[2], NULL, 10) : (1u << 20), 0};
	char elements[32];
	gd_kv kv[1] = {{"elements", elements}};
	gd_config cfg;
	gd_callbacks cb;
	gd_stats stats;
	int rank, rc;

	/* C++: no designated initialisers, so the init calls */
	gd_callbacks_init(&cb, sizeof(cb));
	memset(&stats, 0, sizeof(stats));
	stats.size = sizeof(stats);
	snprintf(elements, sizeof(elements), "%u", rs.elements);
	if (gd_init(&argc, &argv))
		return 1;
	MPI_Comm_rank(MPI_COMM_WORLD, &rank);
	gd_config_init(&cfg, sizeof(cfg));
	cfg.setup_args = kv;
	cfg.n_setup_args = 1;
	cfg.total_hint = rs.n_tasks;
	cb.on_success = on_success;
	cb.user = &rs;
	rc = gd_run(MPI_COMM_WORLD, &cls, gen, &rs, &cb, &cfg, &stats);
	if (rank == 0)
		printf("cuda_worker: %s; %llu ok, %llu failed, %llu wrong sums, %.2f s\n",
		       rc ? gd_strerror(rc) : "done", (unsigned long long)stats.completed,
		       (unsigned long long)stats.failed, (unsigned long long)rs.bad,
		       stats.elapsed_s);
	gd_stats_free(&stats);
	gd_finalize();
	return rank == 0 && (rc || stats.failed || rs.bad) ? 1 : 0;
}
