/*
 * The executor: what runs the worker class.  In the default isolation it is
 * a process forked by the worker rank (the supervisor) that never touches
 * MPI; it talks to the supervisor over a socket with the records of wire.h.
 * With GD_ISOLATE_NONE the supervisor calls the same functions in-process.
 */
#ifndef GD_EXECUTOR_H
#define GD_EXECUTOR_H

#include "wire.h"

#include <sys/types.h>

struct gd__progress;

struct gd_worker {
	int id;
	uint64_t seed;
	gd_gpu gpu;
	int n_gpus; /* gpus[]: every GPU of the worker */
	gd_gpu gpus[GD_MAX_WORKER_GPUS];
	char host[64];
	void *data;
	char error[512];
	/* the task in process(), for gd_worker_task_started() & co */
	struct gd__progress *prog;
	double task_start; /* gd_now() when its time started */
	int restarted;     /* gd_worker_restarted() was called */
	int retire;        /* gd_worker_retire() was called; the message is in error */
};

struct gd_result {
	gd__bytes *out; /* the result record is built here */
	size_t hdr;     /* offset of the record's header in out */
	int failed;
	int too_big;
	int has_exit; /* gd_result_set_exit() was called */
	int exit_status, exit_signal;
};

/*
 * What the executor is running, in memory it shares with its supervisor
 * (MAP_SHARED, made before the fork).  The executor writes start_ns, then
 * running; running goes back to 0 when process() returns.  Task ids are
 * unique, so a reader that sees the same `running` before and after reading
 * start_ns has that task's start.  It lets the executor send results in
 * batches while the supervisor still times out, and blames for a crash,
 * exactly the task that was running.
 */
typedef struct gd__progress {
	uint64_t running;  /* task id + 1 of the task in process(), 0 = none */
	uint64_t start_ns; /* CLOCK_MONOTONIC when it started */
} gd__progress;

/* \return 1 with the running task's id and start (gd_now() clock), else 0. */
int gd__progress_read(const gd__progress *p, uint64_t *task_id, double *start);

typedef struct gd__exec {
	const gd_worker_class *cls;
	const gd_args *args;
	gd_worker w;
	int set_up;
	gd__progress *prog; /* NULL when process() runs in the worker rank */
	/* its views of the buffers that large tasks arrive in (shm.h): the
	 * supervisor's receive buffers, then its drops.  The fds are the
	 * supervisor's (inherited, never closed here), the mappings its own */
	gd__shm *shm;
	unsigned n_shm;
	int *keep; /* n_shm + 1 ints, made before the fork: the fds a child keeps */
} gd__exec;

/* Run setup; append a READY or SETUP_FAIL record to out.  \return 0 or GD_ENOMEM. */
int gd__exec_setup(gd__exec *x, gd__bytes *out);
/* Run one task; append its SUCCESS or ERROR record to out and set
 * *elapsed_s to its run time.  \return 0 or GD_ENOMEM. */
int gd__exec_task(gd__exec *x, const gd__rec *task, gd__bytes *out, double *elapsed_s);
/* Point a TASK_SHM record at its payload, in this process's mapping of the
 * buffer it names (mapped again when that buffer has grown), and make it a
 * TASK record.  \return 0, GD_EPROTO for a bad buffer or range, or GD_ESYS
 * when it cannot be mapped. */
int gd__exec_shm_task(gd__exec *x, gd__rec *r);
/* Run cleanup; append CLEANUP_OK or CLEANUP_FAIL.  \return 0 or GD_ENOMEM. */
int gd__exec_cleanup(gd__exec *x, gd__bytes *out);

struct gd__placement;

/*
 * Fork an executor process connected to the caller by a socket.
 * The child resets signal handlers, leads its own process group, dies with
 * its parent, applies the placement, runs setup and then serves records from
 * the socket until CLEANUP or EOF; it never returns.
 * \return 0 with *pid and *fd (non-blocking, close-on-exec), or GD_ESYS.
 */
int gd__exec_spawn(gd__exec *x, const struct gd__placement *place, pid_t *pid, int *fd);

#endif
