/*
 * The tasks a supervisor holds, oldest first, until each one's result is
 * reported: what is re-sent to a new executor after a crash or timeout.
 */
#define _GNU_SOURCE
#include "sup.h"

static void release(sup *s, pend *p)
{
	if (--s->rrefs[p->buf] < 0)
		s->rrefs[p->buf] = 0;
	if (gd__shm_large(p->rec_len) && s->big_held)
		s->big_held--;
	if (p->shm && s->shm_held)
		s->shm_held--;
}

void gd__held_pop(sup *s)
{
	release(s, RING(s, 0));
	s->head = (s->head + 1) % s->cap;
	s->count--;
	if (s->wr > 0)
		s->wr--;
	else
		s->wr_off = 0;
}

/* Index in the ring of the task the executor is running, or -1; its start
 * in *start. */
int gd__held_running(sup *s, double *start)
{
	uint64_t id;

	if (!s->prog || !gd__progress_read(s->prog, &id, start))
		return -1;
	for (unsigned i = 0; i < s->count; i++)
		if (RING(s, i)->task_id == id)
			return (int)i;
	return -1;
}

/* Take task k out of the ring (it timed out or crashed its executor); the
 * tasks before it finished but their results may not have left the dead
 * executor: they are all written again to the next one. */
void gd__held_remove(sup *s, unsigned k)
{
	release(s, RING(s, k));
	for (unsigned i = k; i + 1 < s->count; i++)
		*RING(s, i) = *RING(s, i + 1);
	s->count--;
}

void gd__held_drop_all(sup *s)
{
	while (s->count)
		gd__held_pop(s);
	s->wr = 0;
	s->wr_off = 0;
}

/* Start over with a fresh executor: everything held is written again. */
void gd__held_rewind(sup *s)
{
	s->wr = 0;
	s->wr_off = 0;
}
