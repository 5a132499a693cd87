/*
 * MPI integration tests of the core, the journal: mpi_journal SCENARIO under
 * mpiexec, with GD_TEST_JOURNAL naming the journal file; journal_kill.sh
 * runs journal_run, kills the job midway, then journal_resume.  The exit
 * status is non-zero when a check failed.
 */
#define _GNU_SOURCE
#include "mpi_common.h"

#include <stdio.h>
#include <stdlib.h>

/* journal_run: slow tasks into a journal (the test kills the job midway);
 * journal_resume: resume from it and check that every task ended ok exactly
 * once across both runs and that nothing journaled ok ran again. */
static void sc_journal(seen *s, gd_config *cfg, int resume)
{
	static const char *kinds[] = {"nap"};
	const char *path = getenv("GD_TEST_JOURNAL");
	gen g = {.n = 400, .kinds = kinds, .nkinds = 1};
	TEST_STATS(st);
	int rc;

	CHECK(path != NULL);
	if (!path)
		return;
	cfg->journal = path;
	cfg->resume = resume ? GD_RESUME_RETRY_FAILED : 0;
	rc = run(s, &g, cfg, &st);
	CHECK(rc == 0);
	if (g_rank == 0 && resume) {
		static unsigned char okc[400];
		char line[4096];
		FILE *f = fopen(path, "r");
		int lines = 0;

		CHECK(f != NULL);
		while (f && fgets(line, sizeof(line), f)) {
			unsigned id;
			lines++;
			if (sscanf(line, "{\"id\":%u,\"status\":\"ok\"", &id) == 1 && id < 400)
				okc[id]++;
		}
		if (f)
			fclose(f);
		for (int i = 0; i < 400; i++)
			if (okc[i] != 1) {
				fprintf(stderr, "task %d journaled ok %d times\n", i, okc[i]);
				failures++;
				break;
			}
		CHECK(lines == 400);
		CHECK(st.skipped > 0 && st.skipped < 400); /* the first run did some, not all */
		CHECK(st.skipped + st.completed == 400);
		printf("journal_resume: %llu skipped, %llu run now\n",
		       (unsigned long long)st.skipped, (unsigned long long)st.completed);
	}
	gd_stats_free(&st);
}

static void sc_journal_run(seen *s, gd_config *cfg)
{
	sc_journal(s, cfg, 0);
}

static void sc_journal_resume(seen *s, gd_config *cfg)
{
	sc_journal(s, cfg, 1);
}

static const struct mpi_scenario scenarios[] = {
        {"journal_run", sc_journal_run},
        {"journal_resume", sc_journal_resume},
};

int main(int argc, char **argv)
{
	return mpi_main(argc, argv, MPI_SCENARIOS(scenarios));
}
