/* Waiting for MPI without spinning, for rank 0 and the workers (backoff.c). */
#ifndef GD_BACKOFF_H
#define GD_BACKOFF_H

#include <mpi.h>

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
