/*
 * Unit tests of how a run ends (src/termination.c): the stop levels, the
 * grace period, when STOP goes out and what gd_run() returns, without MPI.
 */
#include "unit.h"

#include "gpudispatch.h"
#include "termination.h"

static void test_levels_only_rise(void)
{
	gd__term t = {0};

	CU_ASSERT_EQUAL(gd__term_want(&t, GD_STOP_NONE, 0, 1.0, 0), GD_STOP_NONE);
	CU_ASSERT_EQUAL(gd__term_want(&t, GD_STOP_DRAIN, 0, 1.0, 0), GD_STOP_DRAIN);
	gd__term_raise(&t, GD_STOP_DRAIN, 1.0);
	CU_ASSERT_EQUAL(t.stop_at, 1.0);
	/* asking less changes nothing; a value past NOW is NOW */
	CU_ASSERT_EQUAL(gd__term_want(&t, GD_STOP_NONE, 0, 2.0, 0), GD_STOP_DRAIN);
	CU_ASSERT_EQUAL(gd__term_want(&t, 7, 0, 2.0, 0), GD_STOP_NOW);
	gd__term_raise(&t, GD_STOP_NOW, 3.0);
	CU_ASSERT_EQUAL(t.stop_at, 1.0); /* when the stop began */
	gd__term_raise(&t, GD_STOP_DRAIN, 4.0);
	CU_ASSERT_EQUAL(t.level, GD_STOP_NOW);
}

static void test_error_stops_now(void)
{
	gd__term t = {0};

	CU_ASSERT_EQUAL(gd__term_want(&t, GD_STOP_NONE, 1, 0, 0), GD_STOP_NOW);
}

static void test_grace(void)
{
	gd__term t = {0};

	gd__term_raise(&t, GD_STOP_DRAIN, 10.0);
	CU_ASSERT_EQUAL(gd__term_want(&t, 0, 0, 14.0, 5.0), GD_STOP_DRAIN);
	CU_ASSERT_EQUAL(gd__term_want(&t, 0, 0, 15.5, 5.0), GD_STOP_NOW);
	CU_ASSERT_EQUAL(gd__term_want(&t, 0, 0, 1e9, 0), GD_STOP_DRAIN); /* 0: no limit */
}

static void test_end_due(void)
{
	gd__term t = {0};
	gd__term_view v = {.live = 2, .inflight = 3};

	CU_ASSERT_FALSE(gd__term_end_due(&t, &v)); /* the generator has more */
	v.gen_done = 1;
	CU_ASSERT_FALSE(gd__term_end_due(&t, &v)); /* tasks out */
	v.inflight = 0;
	v.requeued = 1;
	CU_ASSERT_FALSE(gd__term_end_due(&t, &v)); /* a retry waits */
	v.requeued = 0;
	CU_ASSERT_TRUE(gd__term_end_due(&t, &v));
	gd__term_ended(&t, 5.0);
	CU_ASSERT_FALSE(gd__term_end_due(&t, &v)); /* once */

	/* a drain: what the generator has left does not count */
	gd__term d = {0};
	gd__term_view w = {.live = 1, .requeued = 2};
	gd__term_raise(&d, GD_STOP_DRAIN, 1.0);
	CU_ASSERT_TRUE(gd__term_end_due(&d, &w));

	/* nobody left to run anything */
	gd__term n = {0};
	gd__term_view x = {.live = 0, .pending = 0, .inflight = 0};
	CU_ASSERT_TRUE(gd__term_end_due(&n, &x));
	x.pending = 1; /* one still in setup: wait for it */
	CU_ASSERT_FALSE(gd__term_end_due(&n, &x));
}

static void test_result(void)
{
	gd__term t = {0}, stopped = {.level = GD_STOP_DRAIN};
	gd__term_outcome ok = {.gen_done = 1, .live = 2, .nw = 2};
	gd__term_outcome o;

	CU_ASSERT_EQUAL(gd__term_result(&t, &ok), 0);
	o = ok, o.rc = GD_EMPI;
	CU_ASSERT_EQUAL(gd__term_result(&t, &o), GD_EMPI); /* the loop's error first */
	o = ok, o.gen_err = GD_EGENERATOR;
	CU_ASSERT_EQUAL(gd__term_result(&t, &o), GD_EGENERATOR);
	o = ok, o.gen_err = GD_EDIGEST; /* the journal's own code stands */
	CU_ASSERT_EQUAL(gd__term_result(&t, &o), GD_EDIGEST);
	/* every worker retired with work left */
	o = (gd__term_outcome){.gen_done = 0, .live = 0, .n_setup_failed = 2, .nw = 2};
	CU_ASSERT_EQUAL(gd__term_result(&t, &o), GD_EALLSETUP);
	/* every worker retired, but after the last task: done */
	o = (gd__term_outcome){.gen_done = 1, .live = 0, .n_setup_failed = 2, .nw = 2};
	CU_ASSERT_EQUAL(gd__term_result(&t, &o), 0);
	/* a stop that left tasks undone, or the generator unfinished */
	o = ok, o.not_done = 1;
	CU_ASSERT_EQUAL(gd__term_result(&stopped, &o), GD_EINTR);
	o = ok, o.gen_done = 0;
	CU_ASSERT_EQUAL(gd__term_result(&stopped, &o), GD_EINTR);
	/* a stop after the last task: nothing lost */
	CU_ASSERT_EQUAL(gd__term_result(&stopped, &ok), 0);
	/* workers gone (BYE) before the generator ended, no stop */
	o = ok, o.gen_done = 0, o.live = 0;
	CU_ASSERT_EQUAL(gd__term_result(&t, &o), GD_EALLSETUP);
}

/* cfg.halt: GNU parallel's --halt conditions */
static void test_halt(void)
{
	gd_config c;
	gd_stats st = GD_STATS_INIT;

	gd_config_init(&c, sizeof(c));
	CU_ASSERT_EQUAL(gd__term_halt_check(&c), 0); /* never */
	st.failed = 1000;
	CU_ASSERT_EQUAL(gd__term_halt(&c, &st), GD_STOP_NONE);

	/* soon,fail=2: a timeout counts as a failure */
	c.halt = GD_HALT_SOON, c.halt_on = GD_HALT_ON_FAIL, c.halt_count = 2;
	CU_ASSERT_EQUAL(gd__term_halt_check(&c), 0);
	st = (gd_stats)GD_STATS_INIT, st.completed = 50, st.failed = 1;
	CU_ASSERT_EQUAL(gd__term_halt(&c, &st), GD_STOP_NONE);
	st.timed_out = 1;
	CU_ASSERT_EQUAL(gd__term_halt(&c, &st), GD_STOP_DRAIN);
	c.halt = GD_HALT_NOW;
	CU_ASSERT_EQUAL(gd__term_halt(&c, &st), GD_STOP_NOW);

	/* now,success=3 */
	c.halt_on = GD_HALT_ON_SUCCESS, c.halt_count = 3;
	st = (gd_stats)GD_STATS_INIT, st.completed = 2, st.failed = 9;
	CU_ASSERT_EQUAL(gd__term_halt(&c, &st), GD_STOP_NONE);
	st.completed = 3;
	CU_ASSERT_EQUAL(gd__term_halt(&c, &st), GD_STOP_NOW);

	/* soon,fail=50%: of the tasks ended, once 3 have */
	c.halt = GD_HALT_SOON, c.halt_on = GD_HALT_ON_FAIL, c.halt_count = 0;
	c.halt_percent = 50;
	CU_ASSERT_EQUAL(gd__term_halt_check(&c), 0);
	st = (gd_stats)GD_STATS_INIT, st.failed = 2;
	CU_ASSERT_EQUAL(gd__term_halt(&c, &st), GD_STOP_NONE); /* 2 ended */
	st.completed = 3;
	CU_ASSERT_EQUAL(gd__term_halt(&c, &st), GD_STOP_NONE); /* 40% */
	st.timed_out = 1;
	CU_ASSERT_EQUAL(gd__term_halt(&c, &st), GD_STOP_DRAIN); /* 50% */

	/* what makes no sense */
	c.halt_percent = 0;
	CU_ASSERT_EQUAL(gd__term_halt_check(&c), GD_EINVAL);
	c.halt_percent = 101;
	CU_ASSERT_EQUAL(gd__term_halt_check(&c), GD_EINVAL);
	c.halt_percent = 10, c.halt_on = 7;
	CU_ASSERT_EQUAL(gd__term_halt_check(&c), GD_EINVAL);
	c.halt_on = GD_HALT_ON_SUCCESS, c.halt_count = 0;
	CU_ASSERT_EQUAL(gd__term_halt_check(&c), GD_EINVAL);
	c.halt_count = 1, c.halt = 3;
	CU_ASSERT_EQUAL(gd__term_halt_check(&c), GD_EINVAL);
}

static void test_durations(void)
{
	gd__durations d = {0}, none = {0};

	CU_ASSERT_EQUAL(gd__dur_quantile(&d, 0.9), 0);
	for (int k = 0; k < 5; k++)
		gd__dur_add(&d, 1.0 + k);
	CU_ASSERT_EQUAL(gd__dur_quantile(&d, 0.9), 5.0); /* few: the largest */
	gd__dur_add(&d, -1);                             /* ignored */
	CU_ASSERT_EQUAL(d.n, 5);
	/* 16 kept; one outlier does not set the estimate */
	for (int k = 0; k < 15; k++)
		gd__dur_add(&d, 2.0);
	gd__dur_add(&d, 100.0);
	CU_ASSERT_EQUAL(d.n, GD__DUR_KEEP);
	CU_ASSERT_EQUAL(gd__dur_quantile(&d, 0.9), 2.0);
	/* the oldest leave */
	for (int k = 0; k < 16; k++)
		gd__dur_add(&d, 3.0);
	CU_ASSERT_EQUAL(gd__dur_quantile(&d, 0.9), 3.0);
	/* the worker's own, else the run's; the hint a floor, the timeout a cap */
	CU_ASSERT_EQUAL(gd__dl_estimate(&none, &d, 0, 0), 3.0);
	CU_ASSERT_EQUAL(gd__dl_estimate(&d, &none, 0, 0), 3.0);
	CU_ASSERT_EQUAL(gd__dl_estimate(&none, &none, 0, 0), 0); /* unknown */
	CU_ASSERT_EQUAL(gd__dl_estimate(&none, &none, 7, 0), 7.0);
	CU_ASSERT_EQUAL(gd__dl_estimate(&d, &none, 1, 0), 3.0);
	CU_ASSERT_EQUAL(gd__dl_estimate(&d, &none, 0, 2.5), 2.5);
}

static void test_deadline(void)
{
	/* the margin: given, or 2 % in [5 s, 300 s] */
	CU_ASSERT_EQUAL(gd__dl_margin(100, 0), 5.0);
	CU_ASSERT_DOUBLE_EQUAL(gd__dl_margin(3600, 0), 72.0, 1e-9);
	CU_ASSERT_EQUAL(gd__dl_margin(86400, 0), 300.0);
	CU_ASSERT_EQUAL(gd__dl_margin(86400, 2), 2.0);
	/* a free worker ends a task of 3 s at now + 3; one running since 8
	 * with one queued ends the new one at 8 + 3 + 3 + 3 */
	CU_ASSERT_EQUAL(gd__dl_task_end(10, 0, 0, 3), 13.0);
	CU_ASSERT_EQUAL(gd__dl_task_end(10, 2, 8, 3), 17.0);
	/* a running task past its estimate: from now */
	CU_ASSERT_EQUAL(gd__dl_task_end(10, 1, 1, 3), 13.0);
	/* what the deadline asks for */
	CU_ASSERT_EQUAL(gd__dl_request(50, 0, 5, 1), GD_STOP_NONE); /* none */
	CU_ASSERT_EQUAL(gd__dl_request(50, 100, 10, 0), GD_STOP_NONE);
	CU_ASSERT_EQUAL(gd__dl_request(50, 100, 10, 1), GD_STOP_DRAIN);
	CU_ASSERT_EQUAL(gd__dl_request(95, 100, 10, 0), GD_STOP_NOW);
}

static const unit_test tests[] = {
        {"task durations", test_durations},          {"the deadline", test_deadline},
        {"levels only rise", test_levels_only_rise}, {"an error stops now", test_error_stops_now},
        {"grace after a drain", test_grace},         {"when STOP goes out", test_end_due},
        {"what gd_run returns", test_result},        {"halt conditions", test_halt},
};

int main(void)
{
	return unit_main("termination", UNIT_TESTS(tests));
}
