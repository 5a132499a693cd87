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

struct gd_worker {
	int id;
	uint64_t seed;
	gd_gpu gpu;
	char host[64];
	void *data;
	char error[512];
};

struct gd_result {
	gd__bytes *out; /* the result record is built here */
	size_t hdr;     /* offset of the record's header in out */
	int failed;
	int too_big;
};

typedef struct gd__exec {
	const gd_worker_class *cls;
	const gd_args *args;
	gd_worker w;
	int set_up;
} gd__exec;

/* Run setup; append a READY or SETUP_FAIL record to out.  \return 0 or GD_ENOMEM. */
int gd__exec_setup(gd__exec *x, gd__bytes *out);
/* Run one task; append its SUCCESS or ERROR record to out.  \return 0 or GD_ENOMEM. */
int gd__exec_task(gd__exec *x, const gd__rec *task, gd__bytes *out);
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
