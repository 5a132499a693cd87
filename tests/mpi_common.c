/*
 * The shared part of the MPI integration tests: the test worker, the task
 * generator, the callbacks, run() and the table-driven mpi_main().
 *
 * A task is a text command the test worker obeys, matched by its first
 * bytes: "ok N" (or anything else not below: "done ID by WORKER"), "err"
 * (an error result), "hang" (blocks in pause()), "spin" (a busy loop),
 * "segv", "abort", "exitcode" (an error whose program exited with status 7,
 * by gd_result_set_exit()), "exit" (exit(3)), "forkcrash" (forks a child that keeps
 * the executor's socket open, then SIGSEGV), "flaky" (fails its first
 * attempt), "seed" ("WORKER SEED"), "echo <bytes>" (the task's bytes back),
 * "where <bytes>" (the name of the mapping the task's bytes are in),
 * "flakyecho <bytes>" (fails its first attempt, then echoes), "ms" (sleeps
 * 1 ms first), "long" (sleeps 200 ms first), "nap" (sleeps 20 ms first).
 *
 * Setup arguments: fail_worker=ID|all makes that worker's setup() fail;
 * print_to=DIR makes each task print a line through stdio into a file of
 * DIR.
 */
#define _GNU_SOURCE
#include "mpi_common.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int failures;
int g_rank;

/* ------------------------------------------------------------ the worker */

typedef struct wstate {
	uint64_t seed;
	int id;
	FILE *out; /* "print_to": a line per task, never closed by the task code */
} wstate;

static int t_setup(gd_worker *w, const gd_args *args)
{
	const char *fail = gd_args_get(args, "fail_worker");
	const char *print_to = gd_args_get(args, "print_to");
	static wstate st;

	if (fail && (strcmp(fail, "all") == 0 || atoi(fail) == gd_worker_id(w))) {
		gd_worker_set_error(w, "no model for worker %d", gd_worker_id(w));
		return 1;
	}
	st.seed = gd_worker_seed(w);
	st.id = gd_worker_id(w);
	if (print_to) {
		char path[512];

		snprintf(path, sizeof(path), "%s/w%d.%d", print_to, st.id, (int)getpid());
		st.out = fopen(path, "a"); /* fully buffered */
		if (!st.out) {
			gd_worker_set_error(w, "cannot open %s", path);
			return 1;
		}
	}
	gd_worker_set_data(w, &st);
	return 0;
}

unsigned *runs;

static int t_process(gd_worker *w, const gd_task *t, gd_result *r)
{
	wstate *st = gd_worker_data(w);
	const char *s = t->data;
	char out[128];

	if (runs && t->id < MAXT)
		__atomic_fetch_add(&runs[t->id], 1, __ATOMIC_RELAXED);
	if (t->len >= 2 && memcmp(s, "ms", 2) == 0)
		usleep(1000);
	if (t->len >= 4 && memcmp(s, "long", 4) == 0)
		usleep(200000);
	if (st->out)
		fprintf(st->out, "task %llu\n", (unsigned long long)t->id);
	if (t->len >= 4 && memcmp(s, "echo", 4) == 0)
		return gd_result_set(r, t->data, t->len);
	if (t->len >= 9 && memcmp(s, "flakyecho", 9) == 0)
		return t->attempt == 1 ? gd_result_error(r, "first attempt fails")
		                       : gd_result_set(r, t->data, t->len);
	if (t->len >= 5 && memcmp(s, "where", 5) == 0) {
		/* which mapping of this process holds the task's bytes */
		FILE *f = fopen("/proc/self/maps", "r");
		char line[512], name[128] = "?";
		uintptr_t a = (uintptr_t)t->data;

		while (f && fgets(line, sizeof(line), f)) {
			unsigned long lo, hi;
			int at = 0;

			if (sscanf(line, "%lx-%lx %*s %*s %*s %*s %n", &lo, &hi, &at) >= 2 &&
			    a >= lo && a + t->len <= hi) {
				snprintf(name, sizeof(name), "%s", at ? line + at : "");
				name[strcspn(name, "\n")] = '\0';
				if (!name[0])
					strcpy(name, "anonymous");
				break;
			}
		}
		if (f)
			fclose(f);
		return gd_result_set(r, name, strlen(name));
	}
	if (t->len >= 3 && memcmp(s, "err", 3) == 0)
		return gd_result_error(r, "bad input in task %llu", (unsigned long long)t->id);
	if (t->len >= 4 && memcmp(s, "hang", 4) == 0) {
		pause(); /* blocked in a syscall, never returns */
		return 0;
	}
	if (t->len >= 4 && memcmp(s, "spin", 4) == 0) {
		for (volatile unsigned long i = 0;; i++)
			;
	}
	if (t->len >= 9 && memcmp(s, "forkcrash", 9) == 0) {
		/* a child forked without exec keeps the executor's socket open */
		if (fork() == 0) {
			sleep(60);
			_exit(0);
		}
		raise(SIGSEGV);
	}
	if (t->len >= 4 && memcmp(s, "segv", 4) == 0)
		raise(SIGSEGV);
	if (t->len >= 5 && memcmp(s, "abort", 5) == 0)
		abort();
	if (t->len >= 8 && memcmp(s, "exitcode", 8) == 0) {
		/* what a task that ran a program says of it */
		gd_result_set_exit(r, 7, 0);
		return gd_result_error(r, "its program exited with status 7");
	}
	if (t->len >= 4 && memcmp(s, "exit", 4) == 0)
		exit(3);
	if (t->len >= 3 && memcmp(s, "nap", 3) == 0)
		usleep(20000);
	if (t->len >= 5 && memcmp(s, "flaky", 5) == 0 && t->attempt == 1)
		return gd_result_error(r, "first attempt fails");
	if (t->len >= 4 && memcmp(s, "seed", 4) == 0) {
		snprintf(out, sizeof(out), "%d %llu", st->id, (unsigned long long)st->seed);
		return gd_result_set(r, out, strlen(out));
	}
	snprintf(out, sizeof(out), "done %llu by %d", (unsigned long long)t->id, st->id);
	return gd_result_set(r, out, strlen(out));
}

int slow_cleanup;

static int t_cleanup(gd_worker *w)
{
	(void)w;
	if (slow_cleanup)
		sleep(15); /* a hung cleanup(): only ABORT ends it */
	return 0;
}

const gd_worker_class test_class = {"test", t_setup, t_process, t_cleanup};

/* ------------------------------------------------------------ generator */

static void fill_pattern(uint8_t *p, size_t n, uint64_t id, const char *prefix)
{
	size_t k = strlen(prefix);

	memcpy(p, prefix, n < k ? n : k);
	for (size_t i = k; i < n; i++)
		p[i] = (uint8_t)(i * 31 + id);
}

int next_task(void *state, gd_buf *task)
{
	gen *g = state;
	long ahead = g->made - g->reported;

	if (ahead > g->max_ahead)
		g->max_ahead = ahead;
	if (g->fail_after && g->made == g->fail_after)
		return -1;
	if (g->made == g->n)
		return 0;
	if (g->untouched) {
		/* nothing reserved, nothing set */
	} else if (g->sizes) {
		size_t n = g->sizes[g->made];
		uint8_t *p = gd_buf_reserve(task, n);
		if (!p)
			return -1;
		fill_pattern(p, n, (uint64_t)g->made, g->prefix ? g->prefix : "echo");
		if (g->segv_every && g->made % g->segv_every == 1 && n >= 4)
			memcpy(p, "segv", 4);
		if (g->hang && g->made >= g->quick_first && n >= 4)
			memcpy(p, "hang", 4);
	} else {
		const char *k = g->kinds ? g->kinds[g->made % g->nkinds] : "ok";
		gd_buf_set(task, k, strlen(k));
	}
	g->made++;
	return 1;
}

/* ------------------------------------------------------------ callbacks */

static void mark(seen *s, const gd_event *ev, char kind)
{
	if (ev->task_id < MAXT) {
		s->count[ev->task_id]++;
		s->kind[ev->task_id] = kind;
		s->worker_of[ev->task_id] = ev->worker_id;
		snprintf(s->msg[ev->task_id], sizeof(s->msg[0]), "%s", ev->message);
	}
	s->g->reported++;
}

void cb_success(void *u, const gd_event *ev)
{
	seen *s = u;

	mark(s, ev, 's');
	if (ev->task_id < MAXT && ev->len < sizeof(s->res[0]))
		memcpy(s->res[ev->task_id], ev->data, ev->len);
	if ((ev->len >= 4 && memcmp(ev->data, "echo", 4) == 0) ||
	    (ev->len >= 9 && memcmp(ev->data, "flakyecho", 9) == 0)) {
		/* the result must be the task's bytes, intact */
		if (ev->len != ev->task_len || memcmp(ev->data, ev->task_data, ev->len))
			s->size_bad++;
	}
	if (ev->len > 5 && ev->len < 64 && isdigit(((const char *)ev->data)[0])) {
		char txt[64];
		int id;
		unsigned long long seed;

		memcpy(txt, ev->data, ev->len);
		txt[ev->len] = '\0';
		if (sscanf(txt, "%d %llu", &id, &seed) != 2 || id != ev->worker_id ||
		    seed != 1000 + (unsigned long long)ev->worker_id) {
			fprintf(stderr, "seed result '%s' from worker %d\n", txt, ev->worker_id);
			s->seed_bad++;
		}
	}
	if (s->stop_after && ++s->successes_before_stop == s->stop_after)
		s->stop = 1;
}

static void cb_error(void *u, const gd_event *ev)
{
	mark(u, ev, 'e');
}

static void cb_timeout(void *u, const gd_event *ev)
{
	mark(u, ev, 't');
}

static void cb_not_done(void *u, const gd_event *ev)
{
	mark(u, ev, 'n');
}

static void cb_setup_fail(void *u, const gd_event *ev)
{
	seen *s = u;

	s->setup_fails++;
	CHECK(strstr(ev->message, "no model for worker") != NULL);
}

static void cb_dispatch(void *u, const gd_event *ev)
{
	(void)ev;
	((seen *)u)->dispatches++;
}

void cb_exit(void *u, const gd_stats *st, int rc)
{
	seen *s = u;

	(void)st;
	s->exits++;
	s->exit_rc = rc;
}

/* ------------------------------------------------------------ helpers */

void test_config(gd_config *cfg)
{
	gd_config_init(cfg, sizeof(*cfg));
	cfg->placement = 0;
}

int run(seen *s, gen *g, gd_config *cfg, gd_stats *st)
{
	gd_callbacks cb = {.size = sizeof(cb),
	                   .on_success = cb_success,
	                   .on_error = cb_error,
	                   .on_timeout = cb_timeout,
	                   .on_not_done = cb_not_done,
	                   .on_setup_fail = cb_setup_fail,
	                   .on_dispatch = cb_dispatch,
	                   .on_exit = cb_exit,
	                   .user = s};

	s->g = g;
	cfg->base_seed = 1000;
	return gd_run(MPI_COMM_WORLD, &test_class, next_task, g, &cb, cfg, st);
}

void every_task_once(seen *s, int n)
{
	for (int i = 0; i < n; i++)
		if (s->count[i] != 1) {
			fprintf(stderr, "task %d reported %d times\n", i, s->count[i]);
			failures++;
			return;
		}
	CHECK(s->exits == 1);
}

/* The task_timeout of scenarios with hanging tasks: long enough for a task
 * that does not hang. */
double hang_timeout(void)
{
#ifdef __SANITIZE_ADDRESS__
	/* LeakSanitizer checks at exit(): with slow unwinding that alone can
	 * take longer than half a second */
	return 3;
#else
	return 0.5;
#endif
}

int nworkers(void)
{
	int size;

	MPI_Comm_size(MPI_COMM_WORLD, &size);
	return size - 1;
}

/* ------------------------------------------------------------ main */

int mpi_main(int argc, char **argv, const struct mpi_scenario *scenarios, size_t n)
{
	static seen s;
	gd_config cfg;
	const char *sc = argc > 1 ? argv[1] : scenarios[0].name;
	const struct mpi_scenario *found = NULL;

	if (gd_init(&argc, &argv))
		return 2;
	MPI_Comm_rank(MPI_COMM_WORLD, &g_rank);
	for (size_t i = 0; i < n && !found; i++)
		if (!strcmp(sc, scenarios[i].name))
			found = &scenarios[i];
	if (!found) {
		if (g_rank == 0) {
			fprintf(stderr, "unknown scenario %s; known:", sc);
			for (size_t i = 0; i < n; i++)
				fprintf(stderr, " %s", scenarios[i].name);
			fprintf(stderr, "\n");
		}
		gd_finalize();
		return 2;
	}
	test_config(&cfg);
	if (argc > 2)
		cfg.window = (unsigned)atoi(argv[2]);
	found->fn(&s, &cfg);
	int all = 0;
	MPI_Allreduce(&failures, &all, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
	if (g_rank == 0)
		printf("%s: %s (%d failed checks)\n", sc, all ? "FAILED" : "passed", all);
	gd_finalize();
	return all ? 1 : 0;
}
