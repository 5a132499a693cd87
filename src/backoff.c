/* Waiting without spinning: rank 0 and the workers poll MPI through these. */
#define _GNU_SOURCE
#include "backoff.h"
#include "wire.h"

#include <sched.h>
#include <time.h>

int gd__probe_wait(MPI_Comm comm, int source, MPI_Message *m, MPI_Status *st)
{
	unsigned idle = 0;
	int flag = 0;

	for (;;) {
		if (gd__mpi(MPI_Improbe(source, GD__TAG, comm, &flag, m, st), "MPI_Improbe"))
			return GD_EMPI;
		if (flag)
			return 0;
		gd__backoff(&idle, 20, 0);
	}
}

void gd__backoff(unsigned *idle, unsigned spins, double hint_s)
{
	/* First poll again at once: an MPI poll that finds nothing already
	 * yields the core when the node is oversubscribed (Open MPI's
	 * mpi_yield_when_idle), so a yield of ours would be a second context
	 * switch for nothing, and on a core of its own a rank may spin.  Then
	 * yield: on shared cores that runs whoever has work (an executor,
	 * another rank) and comes back within microseconds.  Then sleep, from
	 * 10 us up to 1 ms: a sleep costs at least the timer slack (50 us by
	 * default), too much while tiny tasks flow.  A caller that knows nothing
	 * can arrive for a while (hint_s) sleeps that long at once. */
	unsigned n = (*idle)++;
	struct timespec ts = {0, 0};

	if (hint_s >= 20e-6 && n >= 3) {
		ts.tv_nsec = (long)(GD__MIN(hint_s, 1e-3) * 1e9);
		nanosleep(&ts, NULL);
		return;
	}
	if (n < spins)
		return;
	if (n < 2 * spins) {
		sched_yield();
		return;
	}
	n = (n - 2 * spins) / 16;
	ts.tv_nsec = n >= 7 ? 1000000L : 10000L << n;
	nanosleep(&ts, NULL);
}
