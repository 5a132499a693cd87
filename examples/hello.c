/*
 * hello: the smallest complete gpudispatch program.
 *
 *   mpirun -n 3 ./hello [ntasks]
 *
 * Rank 0 generates tasks "1", "2", ... ; each worker squares the number in
 * process() and rank 0 sums the squares in on_success.  setup() shows where
 * per-worker state (a model, a CUDA context) would be made once.
 */
#include <gpudispatch.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct model {
	long offset; /* stands for whatever setup() loads */
} model;

static int my_setup(gd_worker *w, const gd_args *args)
{
	static model m;
	const char *off = gd_args_get(args, "offset");

	m.offset = off ? atol(off) : 0;
	gd_worker_set_data(w, &m);
	return 0;
}

static int my_process(gd_worker *w, const gd_task *t, gd_result *r)
{
	const model *m = gd_worker_data(w);
	char in[32], out[32];
	long x;

	snprintf(in, sizeof(in), "%.*s", (int)t->len, (const char *)t->data);
	x = atol(in) + m->offset;
	snprintf(out, sizeof(out), "%ld", x * x);
	return gd_result_set(r, out, strlen(out));
}

static int my_cleanup(gd_worker *w)
{
	(void)w;
	return 0;
}

static const gd_worker_class squares = {"squares", my_setup, my_process, my_cleanup};

typedef struct gen {
	long next, last;
} gen;

static int next_task(void *state, gd_buf *task)
{
	gen *g = state;
	char s[32];

	if (g->next > g->last)
		return 0;
	snprintf(s, sizeof(s), "%ld", g->next++);
	return gd_buf_set(task, s, strlen(s)) == 0 ? 1 : -1;
}

typedef struct total {
	long long sum;
} total;

static void save(void *user, const gd_event *ev)
{
	char s[32];

	snprintf(s, sizeof(s), "%.*s", (int)ev->len, (const char *)ev->data);
	((total *)user)->sum += atoll(s);
}

static void log_err(void *user, const gd_event *ev)
{
	(void)user;
	fprintf(stderr, "task %llu failed on worker %d: %s\n", (unsigned long long)ev->task_id,
	        ev->worker_id, ev->message);
}

int main(int argc, char **argv)
{
	gd_config cfg;
	gd_config_init(&cfg, sizeof(cfg));
	gd_kv args[] = {{"offset", "0"}};
	total t = {0};
	gd_callbacks cb = {.size = sizeof(cb), .on_success = save, .on_error = log_err, .user = &t};
	gd_stats stats = GD_STATS_INIT;
	gen g = {1, 100};
	int rank, rc;

	if (gd_init(&argc, &argv))
		return 1;
	if (argc > 1)
		g.last = atol(argv[1]);
	cfg.setup_args = args;
	cfg.n_setup_args = 1;
	rc = gd_run(MPI_COMM_WORLD, &squares, next_task, &g, &cb, &cfg, &stats);
	MPI_Comm_rank(MPI_COMM_WORLD, &rank);
	if (rank == 0) {
		long long n = g.last, want = n * (n + 1) * (2 * n + 1) / 6;

		printf("%s: %llu tasks on %d workers, sum of squares %lld (%s)\n",
		       rc ? gd_strerror(rc) : "ok", (unsigned long long)stats.completed,
		       stats.n_workers, t.sum, t.sum == want ? "correct" : "WRONG");
		if (t.sum != want)
			rc = 1;
	}
	gd_stats_free(&stats);
	gd_finalize();
	return rc ? 1 : 0;
}
