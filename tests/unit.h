/*
 * The main() of a CUnit test file: one suite, its tests from a table.
 *
 *   static const unit_test tests[] = {{"what it checks", test_fn}, ...};
 *   int main(void) { return unit_main("suite", UNIT_TESTS(tests)); }
 *
 * \return 0 when every assertion held, 1 otherwise.
 */
#ifndef GD_TESTS_UNIT_H
#define GD_TESTS_UNIT_H

#include <CUnit/Basic.h>
#include <stddef.h>

typedef struct unit_test {
	const char *name;
	void (*fn)(void);
} unit_test;

#define UNIT_TESTS(table) (table), (sizeof(table) / sizeof((table)[0]))

static inline int unit_main(const char *suite, const unit_test *tests, size_t n)
{
	CU_pSuite s;

	if (CU_initialize_registry() != CUE_SUCCESS)
		return 1;
	s = CU_add_suite(suite, NULL, NULL);
	for (size_t i = 0; s && i < n; i++)
		CU_add_test(s, tests[i].name, tests[i].fn);
	CU_basic_set_mode(CU_BRM_VERBOSE);
	CU_basic_run_tests();
	unsigned failed = CU_get_number_of_failures();
	CU_cleanup_registry();
	return failed || !s ? 1 : 0;
}

#endif
