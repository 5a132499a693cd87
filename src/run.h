/* Internal entry points of the core's three roles. */
#ifndef GD_RUN_H
#define GD_RUN_H

#include "gpudispatch.h"
#include "wire.h"

/* The one tag of every message on the library's duplicated communicator. */
#define GD__TAG 1

/** gd_run() without any user interface (the core); its arguments have
 * been checked (collectively) by gd_run(). */
int gd__run_core(MPI_Comm comm, const gd_worker_class *cls, gd_generator_fn gen, void *gen_state,
                 const gd_callbacks *cb, const gd_config *cfg, gd_stats *stats);

/* Rank 0: hand out tasks until they are all reported; fills st.  \return rc of the run. */
int gd__dispatch(MPI_Comm comm, gd_generator_fn gen, void *gen_state, const gd_callbacks *cb,
                 const gd_config *cfg, gd_stats *st);

/* A worker rank: supervise executors until rank 0 says STOP or ABORT. */
int gd__worker_main(MPI_Comm comm, const gd_worker_class *cls, const gd__wcfg *cfg, int local_index,
                    int local_workers);

/* Wait a little when nothing happened: return at once `spins` times (the
 * caller polls again), then yield `spins` times, then sleep longer each
 * time (10 us .. 1 ms), or hint_s at once when it is >= 20 us.  *idle
 * counts the idle rounds; the caller resets it on activity. */
void gd__backoff(unsigned *idle, unsigned spins, double hint_s);

/* Wait for the next message from `source` (or MPI_ANY_SOURCE) on the
 * library's tag, polling with gd__backoff() rather than spinning in a
 * blocking probe.  \return 0 with it matched in *m (its size in *st), or
 * GD_EMPI. */
int gd__probe_wait(MPI_Comm comm, int source, MPI_Message *m, MPI_Status *st);

#endif
