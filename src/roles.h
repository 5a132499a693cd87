/*
 * The two roles gd_run() (run.c) splits a run into: rank 0's dispatcher
 * (dispatcher.c) and every other rank's supervisor (supervisor.c).  Their
 * arguments have been checked, collectively, by gd_run().
 */
#ifndef GD_ROLES_H
#define GD_ROLES_H

#include "gpudispatch.h"
#include "wire.h"

/* Rank 0: hand out tasks until they are all reported; fills st and calls
 * on_start once its rows exist (*started = 1).  \return rc of the run. */
int gd__dispatch(MPI_Comm comm, gd_generator_fn gen, void *gen_state, const gd_callbacks *cb,
                 const gd_config *cfg, gd_stats *st, int *started);

/* A worker rank: supervise executors until rank 0 says STOP or ABORT. */
int gd__worker_main(MPI_Comm comm, const gd_worker_class *cls, const gd__wcfg *cfg, int local_index,
                    int local_workers);

#endif
