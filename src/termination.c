/* How a run ends: see termination.h. */
#include "termination.h"

#include "gpudispatch.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

int gd__term_want(const gd__term *t, int requested, int failed, double now, double grace_s)
{
	int level = t->level;

	if (failed)
		return GD_STOP_NOW;
	if (requested > level)
		level = requested > GD_STOP_NOW ? GD_STOP_NOW : requested;
	if (level == GD_STOP_DRAIN && t->level == GD_STOP_DRAIN && grace_s > 0 &&
	    now - t->stop_at > grace_s)
		level = GD_STOP_NOW;
	return level;
}

void gd__term_raise(gd__term *t, int level, double now)
{
	if (level <= t->level)
		return;
	if (t->level == GD_STOP_NONE)
		t->stop_at = now;
	t->level = level;
}

int gd__term_end_due(const gd__term *t, const gd__term_view *v)
{
	int more = t->level == GD_STOP_NONE && (v->requeued || (!v->gen_done && !v->gen_err));

	if (t->stops_sent)
		return 0;
	return (!more && v->inflight == 0) || (v->live == 0 && v->pending == 0);
}

void gd__term_ended(gd__term *t, double now)
{
	t->stops_sent = 1;
	t->stops_at = now;
}

int gd__term_result(const gd__term *t, const gd__term_outcome *o)
{
	if (o->rc)
		return o->rc;
	if (o->gen_err)
		return o->gen_err;
	if (o->live == 0 && o->n_setup_failed == o->nw && (!o->gen_done || o->not_done))
		return GD_EALLSETUP;
	if (t->level != GD_STOP_NONE || o->not_done)
		return o->gen_done && !o->not_done ? 0 : GD_EINTR;
	if (!o->gen_done)
		return GD_EALLSETUP; /* every worker left before the generator ended */
	return 0;
}

int gd__term_halt_check(const gd_config *cfg)
{
	if (cfg->halt == GD_HALT_NEVER)
		return 0;
	if (cfg->halt != GD_HALT_SOON && cfg->halt != GD_HALT_NOW)
		return GD_EINVAL;
	if (cfg->halt_on == GD_HALT_ON_SUCCESS)
		return cfg->halt_count ? 0 : GD_EINVAL;
	if (cfg->halt_on != GD_HALT_ON_FAIL)
		return GD_EINVAL;
	if (cfg->halt_count)
		return 0;
	return cfg->halt_percent > 0 && cfg->halt_percent <= 100 ? 0 : GD_EINVAL;
}

int gd__term_halt(const gd_config *cfg, const gd_stats *st)
{
	uint64_t bad, ended;

	if (cfg->halt == GD_HALT_NEVER)
		return GD_STOP_NONE;
	if (cfg->halt_on == GD_HALT_ON_SUCCESS)
		return st->completed >= cfg->halt_count ? cfg->halt : GD_STOP_NONE;
	bad = st->failed + st->timed_out;
	if (cfg->halt_count)
		return bad >= cfg->halt_count ? cfg->halt : GD_STOP_NONE;
	ended = bad + st->completed;
	if (ended < GD_HALT_PERCENT_MIN)
		return GD_STOP_NONE;
	return 100.0 * (double)bad >= cfg->halt_percent * (double)ended ? cfg->halt : GD_STOP_NONE;
}

void gd__dur_add(gd__durations *d, double s)
{
	if (!(s >= 0))
		return;
	d->v[d->next] = s;
	d->next = (d->next + 1) % GD__DUR_KEEP;
	if (d->n < GD__DUR_KEEP)
		d->n++;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

double gd__dur_quantile(const gd__durations *d, double q)
{
	double v[GD__DUR_KEEP];
	unsigned k;

	if (!d->n)
		return 0;
	memcpy(v, d->v, d->n * sizeof(v[0]));
	qsort(v, d->n, sizeof(v[0]), cmp_double);
	k = (unsigned)ceil(q * d->n);
	return v[k ? k - 1 : 0];
}

double gd__dl_estimate(const gd__durations *mine, const gd__durations *all, double hint,
                       double timeout)
{
	double est = gd__dur_quantile(mine->n ? mine : all, 0.9);

	if (hint > est)
		est = hint;
	if (timeout > 0 && est > timeout)
		est = timeout;
	return est;
}

double gd__dl_margin(double span_s, double margin_s)
{
	double m = 0.02 * span_s;

	if (margin_s > 0)
		return margin_s;
	return m < 5 ? 5 : m > 300 ? 300 : m;
}

double gd__dl_task_end(double now, unsigned held, double since, double est)
{
	double free_at = now;

	if (held) {
		free_at = since + est > now ? since + est : now;
		free_at += (held - 1) * est;
	}
	return free_at + est;
}

int gd__dl_request(double now, double deadline, double margin, int all_held)
{
	if (deadline <= 0)
		return GD_STOP_NONE;
	if (now >= deadline - margin / 2)
		return GD_STOP_NOW;
	return all_held ? GD_STOP_DRAIN : GD_STOP_NONE;
}
