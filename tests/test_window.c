/*
 * Unit tests of the credit window and the dispatcher's naps (src/window.c):
 * the policy alone, from hand-made run times, without MPI.
 */
#include "unit.h"

#include "window.h"

/* Feed n results of elapsed_s each. */
static void feed(gd__window *w, int n, double elapsed_s)
{
	for (int i = 0; i < n; i++)
		gd__window_result(w, elapsed_s);
}

static void test_one_until_measured(void)
{
	gd__window w;

	gd__window_init(&w, 8);
	/* no result yet: one each, however large W is */
	CU_ASSERT_EQUAL(gd__window_credit(&w, 0, 0, 4), 1);
	CU_ASSERT_EQUAL(w.timed, 0);
}

static void test_short_tasks_fill_the_window(void)
{
	gd__window w;

	gd__window_init(&w, 8);
	feed(&w, 1, 1e-6); /* the first result sets the window */
	CU_ASSERT_EQUAL(gd__window_credit(&w, 0, 100, 4), 8);
	CU_ASSERT_DOUBLE_EQUAL(w.avg_task_s, 1e-6, 1e-12);
}

static void test_long_tasks_one_each(void)
{
	gd__window w;

	gd__window_init(&w, 8);
	feed(&w, 1, 2.0); /* >= GD__LONG_TASK_S */
	CU_ASSERT_EQUAL(gd__window_credit(&w, 0, 10, 4), 1);
}

/* Between the two: the running task and enough to cover GD__REFILL_S. */
static void test_refill_covers_10ms(void)
{
	gd__window w;

	gd__window_init(&w, 8);
	feed(&w, 1, 5e-3); /* 10 ms / 5 ms = 2 more: 3 */
	CU_ASSERT_EQUAL(gd__window_credit(&w, 0, 10, 4), 3);
	gd__window_init(&w, 8);
	feed(&w, 1, 4e-3); /* 2.5 -> ceil 3, + 1 */
	CU_ASSERT_EQUAL(gd__window_credit(&w, 0, 10, 4), 4);
}

/* The mean moves 5 % per result and the window follows every 16th. */
static void test_follows_the_mean(void)
{
	gd__window w;

	gd__window_init(&w, 8);
	feed(&w, 1, 2.0);
	CU_ASSERT_EQUAL(w.eff, 1);
	feed(&w, 15, 1e-6); /* the mean fell, but the window waits for the 17th */
	CU_ASSERT_EQUAL(w.eff, 1);
	CU_ASSERT(w.avg_task_s < 1.0);
	feed(&w, 1, 1e-6);
	CU_ASSERT(w.eff > 1);
}

/* The last tasks (by total_hint) go one each to workers that are free; a
 * hint the generator has gone past is ignored. */
static void test_end_of_run(void)
{
	gd__window w;

	gd__window_init(&w, 8);
	feed(&w, 1, 1e-6);
	CU_ASSERT_EQUAL(gd__window_credit(&w, 100, 50, 4), 8);
	CU_ASSERT_EQUAL(gd__window_credit(&w, 100, 96, 4), 1);  /* 4 left, 4 workers */
	CU_ASSERT_EQUAL(gd__window_credit(&w, 100, 95, 4), 8);  /* 5 left */
	CU_ASSERT_EQUAL(gd__window_credit(&w, 100, 120, 4), 8); /* the hint was wrong */
	CU_ASSERT_EQUAL(gd__window_credit(&w, 0, 120, 4), 8);   /* no hint */
}

static void test_naps(void)
{
	gd__window w;
	unsigned spins;
	double hint;

	gd__window_init(&w, 4);
	feed(&w, 1, 0.4);
	gd__idle_view v = {.since_stops = -1, .credit = 1};
	gd__window_nap(&w, &v, &spins, &hint);
	CU_ASSERT_EQUAL(spins, 200);
	CU_ASSERT_EQUAL(hint, 0); /* nothing known: the growing back-off */

	v.large_moving = 1; /* a large send on its way: poll longer first */
	gd__window_nap(&w, &v, &spins, &hint);
	CU_ASSERT_EQUAL(spins, 2000);
	CU_ASSERT_EQUAL(hint, 0);

	v.large_moving = 0;
	v.inflight = 4;
	v.all_out = 1; /* every credit out: a quarter of what they hold */
	gd__window_nap(&w, &v, &spins, &hint);
	CU_ASSERT_DOUBLE_EQUAL(hint, 0.25 * 1 * 0.4, 1e-12);

	v.all_out = 0;
	v.big_full = 1; /* at the large-task limit: a quarter of one task */
	gd__window_nap(&w, &v, &spins, &hint);
	CU_ASSERT_DOUBLE_EQUAL(hint, 0.1, 1e-12);

	v = (gd__idle_view){.since_stops = 1e-3, .credit = 1}; /* just after STOP */
	gd__window_nap(&w, &v, &spins, &hint);
	CU_ASSERT_DOUBLE_EQUAL(hint, 20e-6, 1e-12);
	v.since_stops = 1.0; /* long after: back to the back-off */
	gd__window_nap(&w, &v, &spins, &hint);
	CU_ASSERT_EQUAL(hint, 0);
}

static const unit_test tests[] = {
        {"one each until a result", test_one_until_measured},
        {"short tasks fill W", test_short_tasks_fill_the_window},
        {"long tasks one each", test_long_tasks_one_each},
        {"refill covers 10 ms", test_refill_covers_10ms},
        {"follows the mean", test_follows_the_mean},
        {"end of the run", test_end_of_run},
        {"naps", test_naps},
};

int main(void)
{
	return unit_main("window", UNIT_TESTS(tests));
}
