/*
 * MPI integration tests of the core: mpi_core SCENARIO, run under mpiexec
 * with 2, 3 or 5 ranks.  Rank 0 checks what the callbacks and statistics
 * say; the exit status is non-zero when a check failed.
 *
 * A task is a text command the test worker obeys: "ok N", "err", "hang",
 * "spin", "segv", "abort", "exit", "flaky", "seed", "echo <bytes>",
 * "where <bytes>" (the name of the mapping the task's bytes are in),
 * "flakyecho <bytes>" (fails its first attempt, then echoes), "ms" (sleeps
 * 1 ms).
 */
#define _GNU_SOURCE
#include "gpudispatch.h"

#include <ctype.h>
#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>

#define MAXT 4096 /* task ids the checks follow */

static int failures;
static int g_rank;

#define CHECK(cond)                                                                                \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "rank %d: CHECK failed at %s:%d: %s\n", g_rank, __FILE__,  \
			        __LINE__, #cond);                                                  \
			failures++;                                                                \
		}                                                                                  \
	} while (0)

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

/* How many times each task ran, over every executor this rank forks: a
 * shared mapping made before gd_run() (NULL: not counted). */
static unsigned *runs;

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

static int slow_cleanup;

static int t_cleanup(gd_worker *w)
{
	(void)w;
	if (slow_cleanup)
		sleep(15); /* a hung cleanup(): only ABORT ends it */
	return 0;
}

static const gd_worker_class test_class = {"test", t_setup, t_process, t_cleanup};

/* ------------------------------------------------------------ generator */

typedef struct gen {
	int n; /* tasks to make */
	int made;
	const char **kinds; /* cycled; NULL = "ok" */
	int nkinds;
	int fail_after;     /* return -1 after this many, 0 = never */
	size_t *sizes;      /* echo payload sizes, NULL = text tasks */
	const char *prefix; /* with sizes: what the payload starts with, NULL = "echo" */
	int segv_every;     /* with sizes: every Nth task (from the 2nd) crashes its executor */
	int hang;           /* with sizes: every task hangs ... */
	int quick_first;    /* ... but the first quick_first ones */
	int untouched;      /* leave the task buffer alone: an empty task */
	/* the credit window: produced - reported <= workers * W at every call */
	long max_ahead;
	long reported;
} gen;

static void fill_pattern(uint8_t *p, size_t n, uint64_t id, const char *prefix)
{
	size_t k = strlen(prefix);

	memcpy(p, prefix, n < k ? n : k);
	for (size_t i = k; i < n; i++)
		p[i] = (uint8_t)(i * 31 + id);
}

static int next_task(void *state, gd_buf *task)
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

typedef struct seen {
	gen *g;
	unsigned char count[MAXT]; /* reports per task id */
	int worker_of[MAXT];
	char kind[MAXT]; /* 's'uccess, 'e'rror, 't'imeout, 'n'ot done */
	char msg[MAXT][96];
	char res[MAXT][96]; /* short results, as text */
	int setup_fails, exits, exit_rc, successes_before_stop;
	int stop_after;
	volatile sig_atomic_t stop;
	int seed_bad;
	int size_bad;
	int dispatches;
} seen;

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

static void cb_success(void *u, const gd_event *ev)
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

static void cb_exit(void *u, const gd_stats *st, int rc)
{
	seen *s = u;

	(void)st;
	s->exits++;
	s->exit_rc = rc;
}

/* ------------------------------------------------------------ scenarios */

static int run(seen *s, gen *g, gd_config *cfg, gd_stats *st)
{
	gd_callbacks cb = {.on_success = cb_success,
	                   .on_error = cb_error,
	                   .on_timeout = cb_timeout,
	                   .on_not_done = cb_not_done,
	                   .on_setup_fail = cb_setup_fail,
	                   .on_dispatch = cb_dispatch,
	                   .on_exit = cb_exit,
	                   .user = s};

	s->g = g;
	cfg->ui = GD_UI_NONE;
	cfg->base_seed = 1000;
	return gd_run(MPI_COMM_WORLD, &test_class, next_task, g, &cb, cfg, st);
}

static void every_task_once(seen *s, int n)
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
static double hang_timeout(void)
{
#ifdef __SANITIZE_ADDRESS__
	/* LeakSanitizer checks at exit(): with slow unwinding that alone can
	 * take longer than half a second */
	return 3;
#else
	return 0.5;
#endif
}

static int nworkers(void)
{
	int size;

	MPI_Comm_size(MPI_COMM_WORLD, &size);
	return size - 1;
}

static void sc_basic(seen *s, gd_config *cfg)
{
	static const char *kinds[] = {"ok", "seed"};
	gen g = {.n = 1000, .kinds = kinds, .nkinds = 2};
	gd_stats st;
	int rc = run(s, &g, cfg, &st);

	if (g_rank == 0) {
		CHECK(rc == 0);
		every_task_once(s, g.n);
		CHECK(s->exit_rc == 0);
		CHECK(st.total == 1000 && st.completed == 1000 && st.failed == 0);
		CHECK(s->seed_bad == 0);
		CHECK(s->dispatches == 1000);
		/* the generator never ran more than workers x W ahead */
		CHECK(g.max_ahead <= (long)nworkers() * (long)cfg->window);
		uint64_t sum = 0;
		for (int i = 0; i < st.n_workers; i++)
			sum += st.workers[i].completed;
		CHECK(sum == 1000);
		printf("basic: %d workers, W=%u, generator at most %ld ahead\n", nworkers(),
		       cfg->window, g.max_ahead);
	}
	/* every rank gets the same statistics */
	CHECK(rc == 0);
	CHECK(st.completed == 1000 && st.n_workers == nworkers());
	gd_stats_free(&st);
}

static void sc_faults(seen *s, gd_config *cfg)
{
	static const char *kinds[] = {"ok",   "err", "hang",  "ok",   "segv",
	                              "spin", "ok",  "abort", "exit", "ok"};
	gen g = {.n = 20, .kinds = kinds, .nkinds = 10};
	gd_stats st;
	int rc;

	cfg->task_timeout = hang_timeout();
	rc = run(s, &g, cfg, &st);
	if (g_rank == 0) {
		CHECK(rc == 0);
		every_task_once(s, g.n);
		for (int i = 0; i < g.n; i++) {
			const char *k = kinds[i % 10];
			if (!strcmp(k, "ok"))
				CHECK(s->kind[i] == 's');
			else if (!strcmp(k, "hang") || !strcmp(k, "spin"))
				CHECK(s->kind[i] == 't');
			else
				CHECK(s->kind[i] == 'e');
		}
		CHECK(strstr(s->msg[1], "bad input in task 1") != NULL);
		CHECK(strstr(s->msg[4], "killed by signal 11") != NULL);
		CHECK(strstr(s->msg[7], "killed by signal 6") != NULL);
		CHECK(strstr(s->msg[8], "exited with status 3") != NULL);
		CHECK(strstr(s->msg[2], "timed out after") != NULL);
		for (int i = 0; i < g.n; i++)
			if (s->kind[i] !=
			    (!strcmp(kinds[i % 10], "ok") ? 's'
			     : (!strcmp(kinds[i % 10], "hang") || !strcmp(kinds[i % 10], "spin"))
			             ? 't'
			             : 'e'))
				fprintf(stderr, "task %d (%s): %c %s\n", i, kinds[i % 10],
				        s->kind[i], s->msg[i]);
		CHECK(st.completed == 8 && st.failed == 8 && st.timed_out == 4);
		uint32_t restarts = 0;
		for (int i = 0; i < st.n_workers; i++)
			restarts += st.workers[i].restarts;
		CHECK(restarts == 10); /* 4 timeouts + 6 crashes (segv, abort, exit x 2) */
		printf("faults: %s / %s / %s\n", s->msg[4], s->msg[8], s->msg[2]);
	}
	gd_stats_free(&st);
}

static void sc_setup_fail_one(seen *s, gd_config *cfg)
{
	gd_kv kv[] = {{"fail_worker", "0"}};
	gen g = {.n = 200};
	gd_stats st;
	int rc;

	cfg->setup_args = kv;
	cfg->n_setup_args = 1;
	rc = run(s, &g, cfg, &st);
	if (g_rank == 0) {
		CHECK(rc == 0);
		every_task_once(s, g.n);
		CHECK(s->setup_fails == 1);
		CHECK(st.n_setup_failed == 1);
		CHECK(st.workers[0].state == GD_WS_ERROR);
		CHECK(strstr(st.workers[0].message, "no model for worker 0") != NULL);
		CHECK(st.workers[0].completed == 0);
		for (int i = 0; i < g.n; i++)
			CHECK(s->worker_of[i] != 0);
	}
	gd_stats_free(&st);
}

static void sc_setup_fail_all(seen *s, gd_config *cfg)
{
	gd_kv kv[] = {{"fail_worker", "all"}};
	gen g = {.n = 50};
	gd_stats st;
	int rc;

	cfg->setup_args = kv;
	cfg->n_setup_args = 1;
	rc = run(s, &g, cfg, &st);
	CHECK(rc == GD_EALLSETUP);
	if (g_rank == 0) {
		CHECK(s->exits == 1 && s->exit_rc == GD_EALLSETUP);
		CHECK(s->setup_fails == nworkers());
		CHECK(g.made == 0); /* nobody could take a task: none was made */
		printf("setup_fail_all: %s\n", gd_strerror(rc));
	}
	gd_stats_free(&st);
}

static void sc_zero(seen *s, gd_config *cfg)
{
	gen g = {.n = 0};
	gd_stats st;
	int rc = run(s, &g, cfg, &st);

	CHECK(rc == 0);
	if (g_rank == 0) {
		CHECK(s->exits == 1);
		CHECK(st.total == 0 && st.completed == 0);
		for (int i = 0; i < st.n_workers; i++)
			CHECK(st.workers[i].state == GD_WS_DONE);
	}
	gd_stats_free(&st);
}

static void sc_big(seen *s, gd_config *cfg)
{
	size_t sizes[] = {0, 1, 4, 4000, 4096, 65536, 1 << 20, 64u << 20, 5, 3 << 20};
	gen g = {.n = 10, .sizes = sizes};
	gd_stats st;
	int rc;

	cfg->window = 2;
	rc = run(s, &g, cfg, &st);
	if (g_rank == 0) {
		CHECK(rc == 0);
		every_task_once(s, g.n);
		CHECK(st.completed == 10);
		CHECK(s->size_bad == 0);
	}
	gd_stats_free(&st);
}

/* Large tasks (shared memory to the executor) across executor crashes: the
 * new executor maps the buffers again and every echo comes back intact. */
static void sc_big_crash(seen *s, gd_config *cfg)
{
	static size_t sizes[24];
	gen g = {.n = 24, .sizes = sizes, .segv_every = 4};
	gd_stats st;
	int rc;

	for (int i = 0; i < 24; i++)
		sizes[i] = (size_t)(100000 + 70000 * (i % 5)); /* above the shared-memory size */
	cfg->window = 3;
	rc = run(s, &g, cfg, &st);
	if (g_rank == 0) {
		CHECK(rc == 0);
		every_task_once(s, g.n);
		for (int i = 0; i < g.n; i++)
			CHECK(s->kind[i] == (i % 4 == 1 ? 'e' : 's'));
		CHECK(strstr(s->msg[1], "killed by signal 11") != NULL);
		CHECK(s->size_bad == 0);
		CHECK(st.completed == 18 && st.failed == 6);
	}
	gd_stats_free(&st);
}

/* What tasks write through stdio reaches its file although the executor
 * ends with _exit() (which flushes nothing): it once lost every line that
 * was still in a buffer. */
static void sc_stdio_flush(seen *s, gd_config *cfg)
{
	char dir[] = "/tmp/gd_stdio.XXXXXX";
	gd_kv kv[] = {{"print_to", dir}};
	gen g = {.n = 60};
	gd_stats st;
	int rc, lines = 0;

	if (g_rank == 0)
		CHECK(mkdtemp(dir) != NULL);
	cfg->setup_args = kv;
	cfg->n_setup_args = 1;
	rc = run(s, &g, cfg, &st);
	MPI_Barrier(MPI_COMM_WORLD); /* every executor has been reaped */
	if (g_rank == 0) {
		DIR *d = opendir(dir);
		struct dirent *e;

		CHECK(rc == 0);
		every_task_once(s, g.n);
		CHECK(d != NULL);
		while (d && (e = readdir(d))) {
			char path[600], line[128];
			FILE *f;

			if (e->d_name[0] == '.')
				continue;
			snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
			if ((f = fopen(path, "r"))) {
				while (fgets(line, sizeof(line), f))
					lines += strncmp(line, "task ", 5) == 0;
				fclose(f);
			}
			unlink(path);
		}
		if (d)
			closedir(d);
		rmdir(dir);
		if (lines != g.n)
			fprintf(stderr, "stdio_flush: %d of %d lines\n", lines, g.n);
		CHECK(lines == g.n);
	}
	gd_stats_free(&st);
}

/* A generator that writes nothing into the buffer makes an empty task (it
 * once crashed rank 0: a slot's buffer was never allocated). */
static void sc_empty(seen *s, gd_config *cfg)
{
	gen g = {.n = 40, .untouched = 1};
	gd_stats st;
	int rc;

	rc = run(s, &g, cfg, &st);
	CHECK(rc == 0);
	if (g_rank == 0) {
		every_task_once(s, g.n);
		CHECK(st.completed == 40);
		for (int i = 0; i < g.n; i++)
			CHECK(s->kind[i] == 's');
	}
	gd_stats_free(&st);
}

static volatile sig_atomic_t *alarm_stop;

static void on_alarm(int sig)
{
	(void)sig;
	*alarm_stop = 2;
}

/* Stop now while every worker holds large tasks that hang, with no task
 * timeout.  A worker holding two large tasks looks at MPI only every few
 * ms: it must still see the ABORT.  Rank 0 gives a worker at most two
 * large tasks at a time, whatever the window.  The first task of each
 * worker returns at once: until a first result a worker holds one task. */
static void sc_big_abort(seen *s, gd_config *cfg, int per_worker)
{
	static size_t sizes[64];
	gen g = {.n = 64, .sizes = sizes, .hang = 1, .quick_first = nworkers()};
	gd_stats st;
	int rc;

	for (int i = 0; i < 64; i++)
		sizes[i] = 100000; /* above the shared-memory size */
	cfg->window = 4;
	cfg->stop_flag = &s->stop;
	if (g_rank == 0) {
		alarm_stop = &s->stop;
		signal(SIGALRM, on_alarm);
		alarm(1);
	}
	rc = run(s, &g, cfg, &st);
	CHECK(rc == GD_EINTR);
	if (g_rank == 0) {
		every_task_once(s, g.made);
		/* large tasks each: one per drop (3), or 2 through MPI; not W = 4 */
		CHECK(g.made == nworkers() * (1 + per_worker));
		CHECK(st.not_done == (uint64_t)(nworkers() * per_worker));
		CHECK(st.completed == (uint64_t)nworkers());
		CHECK(st.elapsed_s < 30);
		printf("big_abort: %d tasks not done, %.2f s\n", g.made, st.elapsed_s);
	}
	gd_stats_free(&st);
}

/* A crash while a child of the task holds the executor's socket: no EOF
 * comes, the executor's exit is seen all the same, and no timeout is set. */
static void sc_fork_crash(seen *s, gd_config *cfg)
{
	static const char *kinds[] = {"ok", "forkcrash", "ok", "ok"};
	gen g = {.n = 8, .kinds = kinds, .nkinds = 4};
	gd_stats st;
	int rc;

	rc = run(s, &g, cfg, &st);
	if (g_rank == 0) {
		CHECK(rc == 0);
		every_task_once(s, g.n);
		CHECK(s->kind[1] == 'e' && strstr(s->msg[1], "killed by signal 11") != NULL);
		CHECK(s->kind[5] == 'e' && strstr(s->msg[5], "killed by signal 11") != NULL);
		CHECK(st.completed == 6);
		/* far below the 60 s the forked child would keep the socket */
		CHECK(st.elapsed_s < 30);
	}
	gd_stats_free(&st);
}

static void sc_generator_error(seen *s, gd_config *cfg)
{
	gen g = {.n = 100, .fail_after = 30};
	gd_stats st;
	int rc = run(s, &g, cfg, &st);

	CHECK(rc == GD_EGENERATOR);
	if (g_rank == 0) {
		every_task_once(s, 30); /* what was made before the error is all reported */
		CHECK(s->count[30] == 0);
		CHECK(s->exit_rc == GD_EGENERATOR);
		CHECK(st.completed == 30);
	}
	gd_stats_free(&st);
}

static void sc_retry(seen *s, gd_config *cfg)
{
	static const char *kinds[] = {"flaky", "ok"};
	gen g = {.n = 40, .kinds = kinds, .nkinds = 2};
	gd_stats st;
	int rc;

	cfg->retries = 1;
	rc = run(s, &g, cfg, &st);
	if (g_rank == 0) {
		CHECK(rc == 0);
		every_task_once(s, g.n);
		CHECK(st.completed == 40 && st.failed == 0 && st.retried == 20);
	}
	gd_stats_free(&st);
}

static void sc_stop(seen *s, gd_config *cfg)
{
	gen g = {.n = 100000};
	gd_stats st;
	int rc;

	s->stop_after = 50;
	cfg->stop_flag = &s->stop;
	rc = run(s, &g, cfg, &st);
	CHECK(rc == GD_EINTR);
	if (g_rank == 0) {
		/* drained: everything sent was reported, nothing after the stop was made */
		CHECK(s->exits == 1 && s->exit_rc == GD_EINTR);
		every_task_once(s, g.made);
		CHECK(st.total == (uint64_t)g.made);
		CHECK(st.completed == (uint64_t)g.made);
		CHECK(g.made < 50 + nworkers() * (int)cfg->window + 1);
	}
	gd_stats_free(&st);
}

static void sc_bad_args(seen *s, gd_config *cfg)
{
	gen g = {.n = 5};
	gd_callbacks cb = {.on_exit = cb_exit, .user = s};
	gd_config c = *cfg;
	gd_worker_class noproc = {"x", NULL, NULL, NULL};

	s->g = &g;
	c.ui = GD_UI_NONE;
	c.window = 0;
	CHECK(gd_run(MPI_COMM_WORLD, &test_class, next_task, &g, &cb, &c, NULL) == GD_EWINDOW);
	c = *cfg;
	c.ui = GD_UI_NONE;
	c.task_timeout = -1;
	CHECK(gd_run(MPI_COMM_WORLD, &test_class, next_task, &g, &cb, &c, NULL) == GD_ETIMEOUT);
	c.task_timeout = 0;
	CHECK(gd_run(MPI_COMM_WORLD, NULL, next_task, &g, &cb, &c, NULL) == GD_ENOCLASS);
	CHECK(gd_run(MPI_COMM_WORLD, &noproc, next_task, &g, &cb, &c, NULL) == GD_ENOCLASS);
	CHECK(gd_run(MPI_COMM_WORLD, &test_class, NULL, &g, &cb, &c, NULL) == GD_ENOGEN);
	CHECK(s->exits == 0); /* no callback for a call that failed its checks */
	CHECK(g.made == 0);
	/* and a real run still works afterwards on the same communicator */
	CHECK(gd_run(MPI_COMM_WORLD, &test_class, next_task, &g, &cb, &c, NULL) == 0);
	if (g_rank == 0)
		CHECK(s->exits == 1 && g.made == 5);
}

static void sc_no_worker(seen *s, gd_config *cfg)
{
	gen g = {.n = 5};
	int rc = run(s, &g, cfg, NULL);

	CHECK(rc == GD_ENOWORKER);
	CHECK(s->exits == 0);
	printf("no_worker: %s\n", gd_strerror(rc));
}

/* journal_run: slow tasks into a journal (the test kills the job midway);
 * journal_resume: resume from it and check that every task ended ok exactly
 * once across both runs and that nothing journaled ok ran again. */
static void sc_journal(seen *s, gd_config *cfg, int resume)
{
	static const char *kinds[] = {"nap"};
	const char *path = getenv("GD_TEST_JOURNAL");
	gen g = {.n = 400, .kinds = kinds, .nkinds = 1};
	gd_stats st;
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

/* W = 1 and a retry: the worker whose task failed must not starve (it once
 * left the hungry list when the retry held the only free slot). */
static void sc_retry_w1(seen *s, gd_config *cfg)
{
	static const char *kinds[31] = {"flaky"};
	gen g = {.n = 31, .kinds = kinds, .nkinds = 31};
	gd_stats st;
	int rc;

	for (int i = 1; i < 31; i++)
		kinds[i] = "nap";
	cfg->window = 1;
	cfg->retries = 1;
	rc = run(s, &g, cfg, &st);
	if (g_rank == 0) {
		CHECK(rc == 0);
		every_task_once(s, g.n);
		for (int i = 0; i < st.n_workers; i++)
			CHECK(st.workers[i].completed >= 5); /* both keep working */
		printf("retry_w1: completed per worker %llu / %llu\n",
		       (unsigned long long)st.workers[0].completed,
		       (unsigned long long)st.workers[1].completed);
	}
	gd_stats_free(&st);
}

/* A generator error: tasks waiting for a retry still run. */
static void sc_generator_error_retry(seen *s, gd_config *cfg)
{
	static const char *kinds[] = {"flaky"};
	gen g = {.n = 10, .kinds = kinds, .nkinds = 1, .fail_after = 1};
	gd_stats st;
	int rc;

	cfg->retries = 1;
	rc = run(s, &g, cfg, &st);
	CHECK(rc == GD_EGENERATOR);
	if (g_rank == 0) {
		every_task_once(s, 1);
		CHECK(st.completed == 1 && st.retried == 1 && st.not_done == 0);
	}
	gd_stats_free(&st);
}

/* Stop now while the workers are in a cleanup() that hangs: ABORT follows
 * the STOP and ends it (15 s otherwise). */
static int stop_when_done(void *user)
{
	static double done_at;
	seen *s = user;

	if (s->g->reported < s->g->n)
		return 0;
	if (!done_at)
		done_at = gd_now();
	/* late enough that STOP went out and cleanup() is running */
	return gd_now() - done_at > 0.3 ? 2 : 0;
}

static void sc_stop_in_cleanup(seen *s, gd_config *cfg)
{
	gen g = {.n = 4};
	gd_callbacks cb = {.on_success = cb_success,
	                   .on_exit = cb_exit,
	                   .poll_stop = stop_when_done,
	                   .user = s};
	gd_stats st;
	int rc;

	slow_cleanup = 1;
	s->g = &g;
	cfg->ui = GD_UI_NONE;
	rc = gd_run(MPI_COMM_WORLD, &test_class, next_task, &g, &cb, cfg, &st);
	if (g_rank == 0) {
		CHECK(s->exits == 1);
		every_task_once(s, 4);
		/* far below the 15 s a cleanup() would take: it was cut short */
		CHECK(st.elapsed_s < 10);
		printf("stop_in_cleanup: rc %d after %.2f s, %llu completed, %llu not done\n", rc,
		       st.elapsed_s, (unsigned long long)st.completed,
		       (unsigned long long)st.not_done);
	}
	gd_stats_free(&st);
}

/* GPUDISPATCH_SHM=0 (read by rank 0): large tasks take MPI, not drops. */
static void no_drops(void)
{
	if (g_rank == 0)
		setenv("GPUDISPATCH_SHM", "0", 1);
}

/* Where a large task's bytes are when process() reads them: on one node,
 * in a drop rank 0 wrote them into (no MPI transfer); with drops turned
 * off, in the buffer MPI received them into.  `want` is part of the name
 * of that mapping, `isolation` where process() runs. */
static void sc_big_path(seen *s, gd_config *cfg, gd_isolation isolation, const char *want)
{
	static size_t sizes[8];
	gen g = {.n = 8, .sizes = sizes, .prefix = "where"};
	gd_stats st;
	int rc;

	for (int i = 0; i < 8; i++)
		sizes[i] = i % 2 ? (size_t)(2u << 20) + 17 : 100000; /* the drops grow, stay */
	cfg->isolation = isolation;
	cfg->window = 3;
	rc = run(s, &g, cfg, &st);
	if (g_rank == 0) {
		CHECK(rc == 0);
		every_task_once(s, g.n);
		for (int i = 0; i < g.n; i++)
			if (!strstr(s->res[i], want)) {
				fprintf(stderr, "task %d read from '%s', not '%s'\n", i, s->res[i],
				        want);
				failures++;
			}
	}
	gd_stats_free(&st);
}

/* Large tasks whose first attempt fails run again on the other worker,
 * from a drop rank 0 filled again, and come back intact. */
static void sc_big_retry(seen *s, gd_config *cfg)
{
	static size_t sizes[12];
	gen g = {.n = 12, .sizes = sizes, .prefix = "flakyecho"};
	gd_stats st;
	int rc;

	for (int i = 0; i < 12; i++)
		sizes[i] = (size_t)(70000 + 150000 * (i % 4));
	cfg->retries = 1;
	cfg->window = 2;
	rc = run(s, &g, cfg, &st);
	if (g_rank == 0) {
		CHECK(rc == 0);
		every_task_once(s, g.n);
		CHECK(st.completed == 12 && st.retried == 12);
		CHECK(s->size_bad == 0);
	}
	gd_stats_free(&st);
}

/*
 * A steady stream of 1 ms tasks, with crashes and a hang in it.  The
 * supervisor collects the results of such a stream without being woken by
 * each; when it replaces an executor it must still take every result that
 * executor wrote, or those tasks would run a second time.  Each task runs
 * exactly once.
 */
static void sc_lazy_crash(seen *s, gd_config *cfg)
{
	enum { N = 600 };
	static const char *kinds[N];
	static unsigned total[MAXT], none[MAXT];
	gen g = {.n = N, .kinds = kinds, .nkinds = N};
	gd_stats st;
	int rc;

	for (int i = 0; i < N; i++)
		kinds[i] = i == 150 || i == 451 ? "segv" : i == 300 ? "hang" : "ms";
	runs = mmap(NULL, MAXT * sizeof(*runs), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
	            -1, 0);
	CHECK(runs != MAP_FAILED);
	if (runs == MAP_FAILED)
		runs = NULL;
	cfg->window = 16;
	cfg->task_timeout = hang_timeout();
	rc = run(s, &g, cfg, &st);
	MPI_Reduce(runs ? runs : none, total, MAXT, MPI_UNSIGNED, MPI_SUM, 0, MPI_COMM_WORLD);
	if (g_rank == 0) {
		int again = 0;

		CHECK(rc == 0);
		every_task_once(s, N);
		CHECK(s->kind[150] == 'e' && s->kind[451] == 'e' && s->kind[300] == 't');
		CHECK(st.completed == N - 3);
		for (int i = 0; i < N; i++)
			if (total[i] != 1 && again++ < 5)
				fprintf(stderr, "task %d (%s) ran %u times\n", i, kinds[i],
				        total[i]);
		CHECK(again == 0);
		printf("lazy_crash: %d tasks, %d ran more than once\n", N, again);
	}
	gd_stats_free(&st);
}

/*
 * Rank 0 cannot allocate its task slots (a window of 65536 with an address
 * space capped just above what the process uses): gd_run() fails with
 * GD_ENOMEM on every rank, and returns; no rank waits for the others.
 */
static void sc_enomem_start(seen *s, gd_config *cfg)
{
	gen g = {.n = 100};
	struct rlimit old, cap;
	unsigned long pages = 0;
	int rc, capped = 0;

	cfg->window = 65536; /* 2 x 65536 slots: tens of MB */
	if (g_rank == 0) {
		FILE *f = fopen("/proc/self/statm", "r");

		CHECK(f && fscanf(f, "%lu", &pages) == 1);
		if (f)
			fclose(f);
		getrlimit(RLIMIT_AS, &old);
		cap = old;
		cap.rlim_cur = (rlim_t)pages * (rlim_t)sysconf(_SC_PAGESIZE) + (8u << 20);
		capped = pages > 0 && setrlimit(RLIMIT_AS, &cap) == 0;
		CHECK(capped);
	}
	rc = run(s, &g, cfg, NULL);
	if (capped)
		setrlimit(RLIMIT_AS, &old);
	CHECK(rc == GD_ENOMEM);
	if (g_rank == 0) {
		CHECK(g.made == 0);
		/* on_exit says why; no worker is blamed for rank 0's failure */
		CHECK(s->exits == 1 && s->exit_rc == GD_ENOMEM);
		CHECK(s->setup_fails == 0);
		printf("enomem_start: gd_run returned '%s' on rank 0\n", gd_strerror(rc));
	}
}

/* CHECK that every worker ran `want` tasks. */
static void each_worker_ran(const gd_stats *st, uint64_t want)
{
	for (int i = 0; i < st->n_workers; i++)
		if (st->workers[i].completed != want) {
			fprintf(stderr, "worker %d ran %llu tasks, not %llu\n", i,
			        (unsigned long long)st->workers[i].completed,
			        (unsigned long long)want);
			failures++;
		}
}

/* per_worker long tasks for each worker, W = 4, with or without
 * total_hint: CHECK that every worker ran per_worker of them. */
static void spread(seen *s, gd_config *cfg, int per_worker, int hint)
{
	static const char *kinds[] = {"long"};
	gen g = {.n = per_worker * nworkers(), .kinds = kinds, .nkinds = 1};
	gd_stats st;

	cfg->window = 4;
	cfg->total_hint = hint ? (uint64_t)g.n : 0;
	int rc = run(s, &g, cfg, &st);
	if (g_rank == 0) {
		CHECK(rc == 0);
		every_task_once(s, g.n);
		each_worker_ran(&st, (uint64_t)per_worker);
	}
	gd_stats_free(&st);
}

/* A few long tasks, no total_hint: one goes to each worker, not four to
 * the first one that is ready (until a result says how long tasks take, a
 * worker holds one). */
static void sc_spread_start(seen *s, gd_config *cfg)
{
	spread(s, cfg, 1, 0);
}

/* Three long tasks per worker, with total_hint: the last ones go to
 * workers that are free, so every worker runs three (a worker that held
 * four would run 200 ms longer than the others). */
static void sc_spread_end(seen *s, gd_config *cfg)
{
	spread(s, cfg, 3, 1);
}

static void sc_inline(seen *s, gd_config *cfg)
{
	cfg->isolation = GD_ISOLATE_NONE;
	cfg->window = 8;
	sc_basic(s, cfg);
}

int main(int argc, char **argv)
{
	static seen s;
	gd_config cfg = GD_CONFIG_DEFAULT;
	const char *sc = argc > 1 ? argv[1] : "basic";

	if (gd_init(&argc, &argv))
		return 2;
	MPI_Comm_rank(MPI_COMM_WORLD, &g_rank);
	cfg.placement = 0;
	if (argc > 2)
		cfg.window = (unsigned)atoi(argv[2]);
	if (!strcmp(sc, "basic"))
		sc_basic(&s, &cfg);
	else if (!strcmp(sc, "faults"))
		sc_faults(&s, &cfg);
	else if (!strcmp(sc, "setup_fail_one"))
		sc_setup_fail_one(&s, &cfg);
	else if (!strcmp(sc, "setup_fail_all"))
		sc_setup_fail_all(&s, &cfg);
	else if (!strcmp(sc, "zero"))
		sc_zero(&s, &cfg);
	else if (!strcmp(sc, "big"))
		sc_big(&s, &cfg);
	else if (!strcmp(sc, "generator_error"))
		sc_generator_error(&s, &cfg);
	else if (!strcmp(sc, "retry"))
		sc_retry(&s, &cfg);
	else if (!strcmp(sc, "stop"))
		sc_stop(&s, &cfg);
	else if (!strcmp(sc, "bad_args"))
		sc_bad_args(&s, &cfg);
	else if (!strcmp(sc, "no_worker"))
		sc_no_worker(&s, &cfg);
	else if (!strcmp(sc, "journal_run"))
		sc_journal(&s, &cfg, 0);
	else if (!strcmp(sc, "journal_resume"))
		sc_journal(&s, &cfg, 1);
	else if (!strcmp(sc, "fork_crash"))
		sc_fork_crash(&s, &cfg);
	else if (!strcmp(sc, "big_crash"))
		sc_big_crash(&s, &cfg);
	else if (!strcmp(sc, "stdio_flush"))
		sc_stdio_flush(&s, &cfg);
	else if (!strcmp(sc, "empty"))
		sc_empty(&s, &cfg);
	else if (!strcmp(sc, "big_abort"))
		sc_big_abort(&s, &cfg, 3);
	else if (!strcmp(sc, "big_abort_mpi"))
		no_drops(), sc_big_abort(&s, &cfg, 2);
	else if (!strcmp(sc, "retry_w1"))
		sc_retry_w1(&s, &cfg);
	else if (!strcmp(sc, "generator_error_retry"))
		sc_generator_error_retry(&s, &cfg);
	else if (!strcmp(sc, "stop_in_cleanup"))
		sc_stop_in_cleanup(&s, &cfg);
	else if (!strcmp(sc, "inline"))
		sc_inline(&s, &cfg);
	else if (!strcmp(sc, "big_mpi"))
		no_drops(), sc_big(&s, &cfg);
	else if (!strcmp(sc, "big_crash_mpi"))
		no_drops(), sc_big_crash(&s, &cfg);
	else if (!strcmp(sc, "big_path"))
		sc_big_path(&s, &cfg, GD_ISOLATE_PROCESS, "memfd:gpudispatch-drop");
	else if (!strcmp(sc, "big_path_mpi"))
		no_drops(), sc_big_path(&s, &cfg, GD_ISOLATE_PROCESS, "memfd:gpudispatch-task");
	else if (!strcmp(sc, "big_path_inline"))
		sc_big_path(&s, &cfg, GD_ISOLATE_NONE, "memfd:gpudispatch-drop");
	else if (!strcmp(sc, "big_retry"))
		sc_big_retry(&s, &cfg);
	else if (!strcmp(sc, "lazy_crash"))
		sc_lazy_crash(&s, &cfg);
	else if (!strcmp(sc, "enomem_start"))
		sc_enomem_start(&s, &cfg);
	else if (!strcmp(sc, "spread_start"))
		sc_spread_start(&s, &cfg);
	else if (!strcmp(sc, "spread_end"))
		sc_spread_end(&s, &cfg);
	else {
		fprintf(stderr, "unknown scenario %s\n", sc);
		failures++;
	}
	int all = 0;
	MPI_Allreduce(&failures, &all, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
	if (g_rank == 0)
		printf("%s: %s (%d failed checks)\n", sc, all ? "FAILED" : "passed", all);
	gd_finalize();
	return all ? 1 : 0;
}
