/*
 * Custom callbacks that collect results and save them from on_exit: every
 * task computes the sum of the first `id` squares; on_success stores the
 * result by task id, on_error and on_timeout record what went wrong, and
 * on_exit (called exactly once on rank 0, however the run ends) writes a CSV
 * file.  The dashboard (or the progress lines) runs alongside: the
 * callbacks are the user's own, the UI layer calls them after its update.
 *
 *   mpirun -n 3 ./collect_results [TASKS [OUT.csv]]
 */
#include <gpudispatch_ui.h>
#include <locale.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int process(gd_worker *w, const gd_task *t, gd_result *r)
{
	(void)w;
	uint64_t n, sum = 0;
	if (t->len != sizeof(n))
		return gd_result_error(r, "bad task of %zu bytes", t->len);
	memcpy(&n, t->data, sizeof(n));
	if (n % 50 == 49)
		return gd_result_error(r, "refusing %llu", (unsigned long long)n);
	for (uint64_t i = 1; i <= n; i++)
		sum += i * i;
	return gd_result_set(r, &sum, sizeof(sum));
}

struct gen {
	uint64_t next, n;
};

static int generate(void *state, gd_buf *task)
{
	struct gen *g = state;
	if (g->next >= g->n)
		return 0;
	uint64_t n = g->next++;
	return gd_buf_set(task, &n, sizeof(n)) ? -1 : 1;
}

/* What the callbacks collect, on rank 0. */
struct results {
	uint64_t n;
	uint64_t *value; /* by task id */
	char *status;    /* 0 none yet, 'o' ok, 'e' error, 't' timeout */
	const char *path;
	int saved;
};

static void on_success(void *user, const gd_event *ev)
{
	struct results *res = user;
	if (ev->task_id < res->n && ev->len == sizeof(uint64_t)) {
		memcpy(&res->value[ev->task_id], ev->data, sizeof(uint64_t));
		res->status[ev->task_id] = 'o';
	}
}

static void on_error(void *user, const gd_event *ev)
{
	struct results *res = user;
	if (ev->task_id < res->n)
		res->status[ev->task_id] = ev->type == GD_EV_TIMEOUT ? 't' : 'e';
}

static void on_exit_save(void *user, const gd_stats *stats, int rc)
{
	struct results *res = user;
	FILE *f = fopen(res->path, "w");
	if (!f) {
		perror(res->path);
		return;
	}
	fprintf(f, "task,status,value\n");
	for (uint64_t i = 0; i < res->n; i++) {
		if (res->status[i] == 'o')
			fprintf(f, "%llu,ok,%llu\n", (unsigned long long)i,
			        (unsigned long long)res->value[i]);
		else if (res->status[i])
			fprintf(f, "%llu,%s,\n", (unsigned long long)i,
			        res->status[i] == 't' ? "timeout" : "error");
	}
	fclose(f);
	res->saved = 1;
	fprintf(stderr, "saved %llu results (%llu failed, rc %d) to %s\n",
	        (unsigned long long)stats->completed, (unsigned long long)stats->failed, rc,
	        res->path);
}

int main(int argc, char **argv)
{
	setlocale(LC_ALL, "");
	if (gd_init(&argc, &argv))
		return 1;
	int rank;
	MPI_Comm_rank(MPI_COMM_WORLD, &rank);
	struct gen g = {0, argc > 1 ? strtoull(argv[1], NULL, 10) : 1000};
	struct results res = {.n = g.n, .path = argc > 2 ? argv[2] : "results.csv"};
	if (rank == 0) {
		res.value = calloc(g.n ? g.n : 1, sizeof(*res.value));
		res.status = calloc(g.n ? g.n : 1, 1);
		if (!res.value || !res.status)
			return 1;
	}
	gd_worker_class cls = {.name = "squares", .process = process};
	gd_config cfg;
	gd_config_init(&cfg, sizeof(cfg));
	cfg.total_hint = g.n;
	cfg.placement = 0;
	gd_callbacks cb = {.size = sizeof(cb),
	                   .on_success = on_success,
	                   .on_error = on_error,
	                   .on_timeout = on_error,
	                   .on_exit = on_exit_save,
	                   .user = &res};
	gd_stats stats = GD_STATS_INIT;
	int rc = gd_ui_run(MPI_COMM_WORLD, &cls, generate, &g, &cb, &cfg, NULL, &stats);
	if (rank == 0)
		printf("rc=%d saved=%d\n", rc, res.saved);
	gd_stats_free(&stats);
	free(res.value);
	free(res.status);
	gd_finalize();
	return rc ? 1 : 0;
}
