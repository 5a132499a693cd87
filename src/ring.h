/*
 * A FIFO of ints (slot, worker or batch indices) in a fixed array: the one
 * ring the dispatcher keeps its queues in (re-queued tasks, a worker's held
 * tasks, hungry workers, batches and large sends in flight).  The caller
 * sizes it for the most it can hold; push never checks for room (every
 * queue has a bound it keeps by construction: slots, workers, W).
 */
#ifndef GD_RING_H
#define GD_RING_H

#include <stdlib.h>

typedef struct gd__ring {
	int *v;
	unsigned cap, head, count;
} gd__ring;

/* \return 0, or -1 when out of memory (the ring is then empty, cap 0). */
static inline int gd__ring_init(gd__ring *r, unsigned cap)
{
	r->head = r->count = 0;
	r->v = calloc(cap ? cap : 1, sizeof(int));
	r->cap = r->v ? cap : 0;
	return r->v ? 0 : -1;
}

static inline void gd__ring_free(gd__ring *r)
{
	free(r->v);
	r->v = NULL;
	r->cap = r->head = r->count = 0;
}

/* The k-th oldest (0 = the oldest); k < count. */
static inline int gd__ring_at(const gd__ring *r, unsigned k)
{
	return r->v[(r->head + k) % r->cap];
}

static inline void gd__ring_push(gd__ring *r, int x)
{
	r->v[(r->head + r->count++) % r->cap] = x;
}

/* Take the oldest; count > 0. */
static inline int gd__ring_pop(gd__ring *r)
{
	int x = r->v[r->head];

	r->head = (r->head + 1) % r->cap;
	r->count--;
	return x;
}

/* Take the k-th oldest out, keeping the others in order; k < count.  The
 * gap is closed from the front: the ones before it move up one. */
static inline int gd__ring_take(gd__ring *r, unsigned k)
{
	int x = gd__ring_at(r, k);

	for (; k > 0; k--)
		r->v[(r->head + k) % r->cap] = r->v[(r->head + k - 1) % r->cap];
	r->head = (r->head + 1) % r->cap;
	r->count--;
	return x;
}

#endif
