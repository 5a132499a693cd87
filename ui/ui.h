/*
 * The dashboard layer (internal).  It wraps the core run: rank 0's callbacks
 * are replaced by ones that update the UI's model and then call the user's
 * own, a UI thread draws snapshots of that model, and gd__run_core() does the
 * work.  The core (src/) never includes this file's implementation.
 */
#ifndef GD_UI_H
#define GD_UI_H

#include "gpudispatch.h"

/**
 * Same contract as gd_run().  Called on rank 0 when cfg->ui != GD_UI_NONE;
 * it calls gd__run_core() with wrapped callbacks and prints the final
 * summary table to stdout when the run ends.
 */
int gd__ui_run(MPI_Comm comm, const gd_worker_class *cls, gd_generator_fn gen, void *gen_state,
               const gd_callbacks *cb, const gd_config *cfg, gd_stats *stats);

#endif
