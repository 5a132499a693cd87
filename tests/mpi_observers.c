/*
 * MPI integration tests of how the core reports: the observers (on_start,
 * on_tick, on_log, on_exit and the events), how a failed task's process
 * ended (ev->exit, never text), and the sizes of the application's structs
 * (the ABI): a size the library cannot use is refused before anything
 * runs, a larger one from a newer application is filled only as far as
 * the library knows.
 */
#include "mpi_common.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>

typedef struct watch {
	int order; /* events seen, any kind */
	int starts, start_at, ticks, first_tick_at, exits, exit_at, events;
	int tick_rows_bad;  /* a tick whose rows or totals did not add up */
	uint64_t last_done; /* done at the last tick: never falls */
	int done_fell;
	int logs, log_level;
	char log[256];
	int exit_bad; /* an ERROR whose exit did not match its task */
	int errors;
} watch;

static void w_start(void *u, const gd_stats *st)
{
	watch *w = u;
	w->starts++;
	w->start_at = w->order++;
	CHECK(st != NULL && st->start_time > 0);
	/* the rows exist already, each in its first state */
	CHECK(st->n_workers == nworkers());
	for (int i = 0; i < st->n_workers; i++)
		CHECK(gd_stats_worker(st, i) && gd_stats_worker(st, i)->state == GD_WS_INIT);
}

static void w_tick(void *u, const gd_stats *st)
{
	watch *w = u;
	uint64_t done = st->completed + st->failed + st->timed_out, rows = 0;

	if (!w->ticks)
		w->first_tick_at = w->order;
	w->ticks++;
	w->order++;
	for (int i = 0; i < st->n_workers; i++)
		rows += gd_stats_worker(st, i)->completed;
	if (st->n_workers != nworkers() || rows != st->completed || done > st->total)
		w->tick_rows_bad++;
	if (done < w->last_done)
		w->done_fell = 1;
	w->last_done = done;
}

static void w_event(void *u, const gd_event *ev)
{
	watch *w = u;
	(void)ev;
	w->events++;
	w->order++;
}

/* ERROR events name how the task's process ended: the test worker's
 * "segv" dies of SIGSEGV, "exit" exits 3, "exitcode" says 7, "err" ran no
 * process. */
static void w_error(void *u, const gd_event *ev)
{
	watch *w = u;
	const char *t = ev->task_data;
	int ok;

	w_event(u, ev);
	w->errors++;
	if (ev->task_len >= 4 && !memcmp(t, "segv", 4))
		ok = ev->exit.status == -1 && ev->exit.signal == SIGSEGV;
	else if (ev->task_len >= 8 && !memcmp(t, "exitcode", 8))
		ok = ev->exit.status == 7 && ev->exit.signal == 0;
	else if (ev->task_len >= 4 && !memcmp(t, "exit", 4))
		ok = ev->exit.status == 3 && ev->exit.signal == 0;
	else
		ok = ev->exit.status == -1 && ev->exit.signal == 0;
	if (!ok) {
		fprintf(stderr, "task %.*s: exit %d signal %d\n", (int)ev->task_len, t,
		        ev->exit.status, ev->exit.signal);
		w->exit_bad++;
	}
}

static void w_exit(void *u, const gd_stats *st, int rc)
{
	watch *w = u;
	(void)st, (void)rc;
	w->exits++;
	w->exit_at = w->order++;
}

static void w_log(void *u, gd_log_level level, const char *msg)
{
	watch *w = u;
	w->logs++;
	w->log_level = level;
	snprintf(w->log, sizeof(w->log), "%s", msg);
}

static gd_callbacks watch_cb(watch *w)
{
	gd_callbacks cb;

	gd_callbacks_init(&cb, sizeof(cb));
	cb.on_start = w_start;
	cb.on_tick = w_tick;
	cb.on_log = w_log;
	cb.on_success = w_event;
	cb.on_error = w_error;
	cb.on_worker = w_event;
	cb.on_dispatch = w_event;
	cb.on_exit = w_exit;
	cb.user = w;
	return cb;
}

/* on_start first and once, ticks with consistent statistics while tasks
 * run, on_exit last and once. */
static void sc_observers(seen *s, gd_config *cfg)
{
	static const char *kinds[] = {"nap"};
	gen g = {.n = 40, .kinds = kinds, .nkinds = 1};
	watch w = {0};
	gd_callbacks cb = watch_cb(&w);
	TEST_STATS(st);

	(void)s;
	cfg->tick_s = 0.01;
	int rc = gd_run(MPI_COMM_WORLD, &test_class, next_task, &g, &cb, cfg, &st);
	CHECK(rc == 0);
	if (g_rank == 0) {
		CHECK(w.starts == 1 && w.start_at == 0);
		CHECK(w.exits == 1 && w.exit_at == w.order - 1);
		CHECK(w.ticks >= 3); /* 40 x 20 ms over the workers, a tick every 10 ms */
		CHECK(w.first_tick_at > 0);
		CHECK(w.tick_rows_bad == 0);
		CHECK(!w.done_fell);
		CHECK(w.logs == 0); /* nothing to say */
		CHECK(st.completed == 40);
	} else {
		CHECK(w.starts == 0 && w.ticks == 0 && w.exits == 0); /* rank 0 only */
	}
	gd_stats_free(&st);
}

/* tick_s = 0: no ticks at all. */
static void sc_no_ticks(seen *s, gd_config *cfg)
{
	gen g = {.n = 20};
	watch w = {0};
	gd_callbacks cb = watch_cb(&w);

	(void)s;
	cfg->tick_s = 0;
	CHECK(gd_run(MPI_COMM_WORLD, &test_class, next_task, &g, &cb, cfg, NULL) == 0);
	CHECK(w.ticks == 0);
}

/* The core's diagnostics reach on_log, with their level, not stderr. */
static int skip_fails(void *user, uint64_t id, const void *data, size_t len)
{
	(void)user, (void)data, (void)len;
	return id == 5 ? -100 : 0;
}

static void sc_log(seen *s, gd_config *cfg)
{
	gen g = {.n = 20};
	watch w = {0};
	gd_callbacks cb = watch_cb(&w);

	(void)s;
	cfg->skip = skip_fails;
	int rc = gd_run(MPI_COMM_WORLD, &test_class, next_task, &g, &cb, cfg, NULL);
	CHECK(rc == -100); /* the hook's own code stands */
	if (g_rank == 0) {
		CHECK(w.logs == 1);
		CHECK(w.log_level == GD_LOG_ERROR);
		CHECK(strstr(w.log, "skip hook returned -100 for task 5") != NULL);
	}
}

/* A failed task's process: its exit status or signal as fields. */
static void sc_exit_fields(seen *s, gd_config *cfg)
{
	static const char *kinds[] = {"segv", "exit", "exitcode", "err", "ok"};
	gen g = {.n = 10, .kinds = kinds, .nkinds = 5};
	watch w = {0};
	gd_callbacks cb = watch_cb(&w);

	(void)s;
	CHECK(gd_run(MPI_COMM_WORLD, &test_class, next_task, &g, &cb, cfg, NULL) == 0);
	if (g_rank == 0) {
		CHECK(w.errors == 8);
		CHECK(w.exit_bad == 0);
	}
}

/* Sizes: 0 is refused on every rank with no callback; a newer
 * application's larger structs work, and nothing past our size is
 * written. */
static void sc_sizes(seen *s, gd_config *cfg)
{
	gen g = {.n = 6};
	watch w = {0};
	gd_callbacks cb = watch_cb(&w);
	struct {
		gd_stats st;
		unsigned char tail[32];
	} big;
	struct {
		gd_config cfg;
		unsigned char tail[32];
	} bigcfg;

	(void)s;
	gd_config c = *cfg;
	c.size = 0;
	CHECK(gd_run(MPI_COMM_WORLD, &test_class, next_task, &g, &cb, &c, NULL) == GD_EINVAL);
	gd_callbacks nocb = cb;
	nocb.size = 0;
	CHECK(gd_run(MPI_COMM_WORLD, &test_class, next_task, &g, &nocb, cfg, NULL) == GD_EINVAL);
	gd_stats zero = {0};
	CHECK(gd_run(MPI_COMM_WORLD, &test_class, next_task, &g, &cb, cfg, &zero) == GD_EINVAL);
	CHECK(w.order == 0); /* no callback at all */
	CHECK(g.made == 0);  /* nor the generator */

	memset(&big, 0xab, sizeof(big));
	big.st.size = sizeof(big); /* as if built against a later release */
	CHECK(gd_config_init(&bigcfg.cfg, sizeof(bigcfg)) == 0);
	CHECK(bigcfg.tail[0] == 0 && bigcfg.tail[31] == 0); /* its unknown members: zero */
	bigcfg.cfg.placement = 0;
	CHECK(gd_run(MPI_COMM_WORLD, &test_class, next_task, &g, &cb, &bigcfg.cfg, &big.st) == 0);
	CHECK(big.st.size == sizeof(big)); /* kept */
	CHECK(big.st.completed == 6);
	CHECK(big.st.worker_size == sizeof(gd_worker_stats));
	CHECK(gd_stats_worker(&big.st, 0) != NULL && gd_stats_worker(&big.st, nworkers()) == NULL);
	int intact = 1;
	for (size_t i = 0; i < sizeof(big.tail); i++)
		intact &= big.tail[i] == 0xab;
	CHECK(intact);
	gd_stats_free(&big.st);
}

int main(int argc, char **argv)
{
	static const struct mpi_scenario scenarios[] = {
	        {"observers", sc_observers},     {"no_ticks", sc_no_ticks}, {"log", sc_log},
	        {"exit_fields", sc_exit_fields}, {"sizes", sc_sizes},
	};
	return mpi_main(argc, argv, MPI_SCENARIOS(scenarios));
}
