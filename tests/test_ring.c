/* Unit tests of the dispatcher's one ring (src/ring.h). */
#include "unit.h"

#include "ring.h"

static void test_fifo_wraps(void)
{
	gd__ring r;

	CU_ASSERT_EQUAL_FATAL(gd__ring_init(&r, 3), 0);
	for (int round = 0; round < 5; round++) { /* head walks round the array */
		gd__ring_push(&r, round);
		gd__ring_push(&r, round + 10);
		CU_ASSERT_EQUAL(r.count, 2);
		CU_ASSERT_EQUAL(gd__ring_at(&r, 1), round + 10);
		CU_ASSERT_EQUAL(gd__ring_pop(&r), round);
		CU_ASSERT_EQUAL(gd__ring_pop(&r), round + 10);
	}
	CU_ASSERT_EQUAL(r.count, 0);
	gd__ring_free(&r);
	CU_ASSERT_PTR_NULL(r.v);
}

/* Taking from the middle keeps the others in order, across the wrap. */
static void test_take_keeps_order(void)
{
	gd__ring r;

	CU_ASSERT_EQUAL_FATAL(gd__ring_init(&r, 4), 0);
	gd__ring_push(&r, 0);
	gd__ring_push(&r, 0);
	gd__ring_pop(&r);
	gd__ring_pop(&r); /* head = 2: the next four wrap */
	for (int i = 1; i <= 4; i++)
		gd__ring_push(&r, i);
	CU_ASSERT_EQUAL(gd__ring_take(&r, 2), 3);
	CU_ASSERT_EQUAL(r.count, 3);
	CU_ASSERT_EQUAL(gd__ring_at(&r, 0), 1);
	CU_ASSERT_EQUAL(gd__ring_at(&r, 1), 2);
	CU_ASSERT_EQUAL(gd__ring_at(&r, 2), 4);
	CU_ASSERT_EQUAL(gd__ring_take(&r, 0), 1);
	CU_ASSERT_EQUAL(gd__ring_take(&r, 1), 4);
	CU_ASSERT_EQUAL(gd__ring_pop(&r), 2);
	gd__ring_free(&r);
}

static const unit_test tests[] = {
        {"FIFO across the wrap", test_fifo_wraps},
        {"take keeps order", test_take_keeps_order},
};

int main(void)
{
	return unit_main("ring", UNIT_TESTS(tests));
}
