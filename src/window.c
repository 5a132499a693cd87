/* The credit window and the dispatcher's naps: see window.h. */
#include "window.h"

#include <math.h>

/* After STOP, how long rank 0 looks for BYEs often, and how often. */
#define STOP_WATCH_S 20e-3
#define STOP_POLL_S  20e-6

void gd__window_init(gd__window *w, unsigned W)
{
	w->W = W;
	w->eff = 1;
	w->avg_task_s = 0;
	w->timed = 0;
}

static void update(gd__window *w)
{
	double q;

	if (!w->timed || w->avg_task_s >= GD__LONG_TASK_S) {
		w->eff = 1;
		return;
	}
	q = w->avg_task_s > 0 ? GD__REFILL_S / w->avg_task_s : w->W;
	w->eff = q >= w->W - 1 ? w->W : 1 + (unsigned)ceil(q);
}

void gd__window_result(gd__window *w, double elapsed_s)
{
	w->avg_task_s += (w->timed ? 0.05 : 1.0) * (elapsed_s - w->avg_task_s);
	if (w->timed++ % 16 == 0)
		update(w);
}

unsigned gd__window_credit(const gd__window *w, uint64_t hint, uint64_t next_id, int live)
{
	if (hint && next_id <= hint && hint - next_id <= (uint64_t)live)
		return 1;
	return w->eff;
}

void gd__window_nap(const gd__window *w, const gd__idle_view *v, unsigned *spins, double *hint_s)
{
	*spins = 200;
	*hint_s = 0;
	if (v->large_moving) {
		/* a large task is on its way: poll for a few ms before sleeping
		 * (its worker may hold it back on purpose) */
		*spins = 2000;
	} else if (v->inflight && v->all_out) {
		/* every credit is out: nothing to do before a result, which
		 * with tasks this long is not due for a while */
		*hint_s = 0.25 * v->credit * w->avg_task_s;
	} else if (v->inflight && v->big_full) {
		/* a worker at its large-task limit may hold only one task
		 * besides the running one: the next is due within about one
		 * task's run, so sleep a quarter of that, not the growing
		 * back-off (up to 1 ms), which could leave it idle */
		*hint_s = 0.25 * w->avg_task_s;
	} else if (v->since_stops >= 0 && v->since_stops < STOP_WATCH_S) {
		/* the workers clean up and say BYE within a few ms: look every
		 * STOP_POLL_S rather than sleep up to 1 ms */
		*hint_s = STOP_POLL_S;
	}
}
