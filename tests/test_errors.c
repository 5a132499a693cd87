/*
 * Unit tests of the library's conventions for errors and diagnostics
 * (src/util.c): every MPI return code goes through gd__mpi(), which maps a
 * failure to GD_EMPI and says which call failed with MPI's own words; rank
 * 0's lines go to the application's on_log when it has one.
 */
#define _GNU_SOURCE
#include "unit.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"

#include <mpi.h>

/* Run fn with stderr going to a file; \return what it wrote (static). */
static const char *stderr_of(void (*fn)(void))
{
	static char buf[2048];
	FILE *tmp = tmpfile();
	int saved = dup(2);

	fflush(stderr);
	dup2(fileno(tmp), 2);
	fn();
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	rewind(tmp);
	size_t n = fread(buf, 1, sizeof(buf) - 1, tmp);
	buf[n] = '\0';
	fclose(tmp);
	return buf;
}

static int mpi_rc;
static void call_mpi(void)
{
	mpi_rc = gd__mpi(MPI_ERR_TRUNCATE, "MPI_Mrecv");
}

static void test_mpi_error(void)
{
	CU_ASSERT_EQUAL(gd__mpi(MPI_SUCCESS, "MPI_Send"), 0);
	const char *said = stderr_of(call_mpi);
	CU_ASSERT_EQUAL(mpi_rc, GD_EMPI);
	CU_ASSERT_PTR_NOT_NULL(strstr(said, "MPI_Mrecv failed: "));
	/* MPI's own string for the code, whatever its wording */
	char want[MPI_MAX_ERROR_STRING + 1];
	int len = 0;
	MPI_Error_string(MPI_ERR_TRUNCATE, want, &len);
	want[len] = '\0';
	CU_ASSERT_PTR_NOT_NULL(strstr(said, want));
}

static char got[256];
static gd_log_level got_level;
static void sink(void *user, gd_log_level level, const char *msg)
{
	*(int *)user += 1;
	got_level = level;
	snprintf(got, sizeof(got), "%s", msg);
}

static void log_default(void)
{
	gd__logf(NULL, GD_LOG_WARNING, "to stderr %d", 7);
}

static void test_logger(void)
{
	int calls = 0;
	gd__logger lg = {.fn = sink, .user = &calls};

	gd__logf(&lg, GD_LOG_INFO, "resuming from %s", "j.jsonl");
	CU_ASSERT_EQUAL(calls, 1);
	CU_ASSERT_EQUAL(got_level, GD_LOG_INFO);
	CU_ASSERT_STRING_EQUAL(got, "resuming from j.jsonl"); /* no prefix, no newline */
	CU_ASSERT_STRING_EQUAL(stderr_of(log_default), "gpudispatch[0]: to stderr 7\n");
}

static const unit_test tests[] = {
        {"an MPI failure names the call and MPI's error", test_mpi_error},
        {"rank 0's log lines", test_logger},
};

int main(int argc, char **argv)
{
	/* MPI_Error_string needs MPI: a singleton, no mpiexec */
	if (MPI_Init(&argc, &argv) != MPI_SUCCESS)
		return 1;
	int rc = unit_main("errors", UNIT_TESTS(tests));
	MPI_Finalize();
	return rc;
}
