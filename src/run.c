/*
 * gd_run(): argument checks, the configuration broadcast, the split into
 * dispatcher and workers, and the final statistics broadcast.
 */
#define _GNU_SOURCE
#include "config.h"
#include "termination.h"
#include "placement.h"
#include "roles.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

int gd_init(int *argc, char ***argv)
{
	int flag = 0, provided;

	MPI_Initialized(&flag);
	if (flag)
		return 0;
	if (gd__mpi(MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided), "MPI_Init_thread"))
		return GD_EMPI;
	return 0;
}

int gd_finalize(void)
{
	int init = 0, fin = 0;

	MPI_Initialized(&init);
	MPI_Finalized(&fin);
	if (init && !fin && gd__mpi(MPI_Finalize(), "MPI_Finalize"))
		return GD_EMPI;
	return 0;
}

/* Checks that need nothing but the arguments. */
static int check_local(int rank, const gd_worker_class *cls, gd_generator_fn gen,
                       const gd_callbacks *cb, const gd_config *cfg)
{
	if (!cls || !cls->process)
		return GD_ENOCLASS;
	if (!cfg || !cb)
		return GD_EINVAL;
	if (rank == 0) {
		if (!gen)
			return GD_ENOGEN;
		if (cfg->window == 0)
			return GD_EWINDOW;
		if (!(cfg->task_timeout >= 0) || !(cfg->setup_timeout >= 0) ||
		    !(cfg->grace_s >= 0) || !(cfg->heartbeat_timeout >= 0))
			return GD_ETIMEOUT;
		if (!(cfg->deadline >= 0) || !(cfg->deadline_margin >= 0) ||
		    !(cfg->task_time >= 0) || isinf(cfg->deadline) || isinf(cfg->deadline_margin) ||
		    isinf(cfg->task_time))
			return GD_ETIMEOUT;
		if (cfg->n_setup_args && !cfg->setup_args)
			return GD_EINVAL;
		if (cfg->n_gpu_ids && !cfg->gpu_ids)
			return GD_EINVAL;
		if (cfg->window > 65536)
			return GD_EWINDOW;
		if (gd__term_halt_check(cfg))
			return GD_EINVAL;
	}
	return 0;
}

/*
 * Every rank must agree on whether the run starts, or one would wait for the
 * others forever: the first error any rank found (the lowest code) wins.
 */
static int check_all(MPI_Comm comm, const gd_worker_class *cls, gd_generator_fn gen,
                     const gd_callbacks *cb, const gd_config *cfg)
{
	int init = 0, rank, size, rc, all;

	MPI_Initialized(&init);
	if (!init)
		return GD_ENOTINIT;
	if (comm == MPI_COMM_NULL)
		return GD_EINVAL;
	if (gd__mpi(MPI_Comm_rank(comm, &rank), "MPI_Comm_rank") ||
	    gd__mpi(MPI_Comm_size(comm, &size), "MPI_Comm_size"))
		return GD_EMPI;
	if (size < 2)
		return GD_ENOWORKER;
	rc = check_local(rank, cls, gen, cb, cfg);
	if (gd__mpi(MPI_Allreduce(&rc, &all, 1, MPI_INT, MPI_MIN, comm), "MPI_Allreduce"))
		return GD_EMPI;
	return all;
}

/* Rank 0 sends the configuration; a worker receives it. */
static int share_config(MPI_Comm comm, int rank, const gd_config *cfg, gd__wcfg *w)
{
	gd__bytes b = {0};
	int len = 0, rc = 0;

	if (rank == 0) {
		rc = gd__cfg_pack(cfg, &b);
		len = rc ? -1 : (int)b.len;
	}
	if (gd__mpi(MPI_Bcast(&len, 1, MPI_INT, 0, comm), "MPI_Bcast"))
		rc = GD_EMPI;
	else if (len < 0)
		rc = GD_ENOMEM;
	else if (rank != 0 && gd__bytes_reserve(&b, (size_t)len + 1))
		rc = GD_ENOMEM; /* this rank cannot take part; still join the broadcast */
	if (len >= 0 &&
	    gd__mpi(MPI_Bcast(rc ? NULL : b.p, rc ? 0 : len, MPI_BYTE, 0, comm), "MPI_Bcast"))
		rc = GD_EMPI;
	if (!rc && rank != 0)
		rc = gd__cfg_unpack(b.p, (size_t)len, w);
	gd__bytes_free(&b);
	return rc;
}

/* Final statistics: rank 0's, to every rank. */
static int share_stats(MPI_Comm comm, int rank, int *rc, gd_stats *st)
{
	int hdr[2] = {*rc, st->n_workers};

	if (gd__mpi(MPI_Bcast(hdr, 2, MPI_INT, 0, comm), "MPI_Bcast"))
		return GD_EMPI;
	if (rank != 0) {
		*rc = hdr[0];
		free(st->workers);
		st->workers = calloc((size_t)hdr[1] + 1, sizeof(*st->workers));
	}
	/* one layout everywhere: every rank runs the same binary */
	gd_stats copy = *st;
	if (gd__mpi(MPI_Bcast(&copy, (int)sizeof(copy), MPI_BYTE, 0, comm), "MPI_Bcast"))
		return GD_EMPI;
	if (rank != 0) {
		gd_worker_stats *rows = st->workers;
		*st = copy;
		st->workers = rows;
		if (!rows)
			st->n_workers = 0; /* out of memory: the totals, no rows */
	}
	/* the rows in one broadcast, unless a rank has no room for them: then
	 * one by one, which such a rank takes into a row of its own stack */
	int have = rank == 0 || st->workers, all = have;
	if (gd__mpi(MPI_Allreduce(&have, &all, 1, MPI_INT, MPI_MIN, comm), "MPI_Allreduce"))
		return GD_EMPI;
	if (all)
		return gd__mpi(MPI_Bcast(st->workers, hdr[1] * (int)sizeof(*st->workers), MPI_BYTE,
		                         0, comm),
		               "MPI_Bcast");
	for (int i = 0; i < hdr[1]; i++) {
		gd_worker_stats spare, *row = st->workers ? &st->workers[i] : &spare;
		if (gd__mpi(MPI_Bcast(row, (int)sizeof(*row), MPI_BYTE, 0, comm), "MPI_Bcast"))
			return GD_EMPI;
	}
	return 0;
}

/* The run, its arguments checked (collectively) by gd_run(): cfg and cb are
 * full structs of this version. */
static int run_checked(MPI_Comm user_comm, const gd_worker_class *cls, gd_generator_fn gen,
                       void *gen_state, const gd_callbacks *cb, const gd_config *cfg, gd_stats *st)
{
	gd__wcfg wcfg;
	MPI_Comm comm;
	int rank, rc, local_index = -1, local_workers = 0, placement, started = 0;

	memset(&wcfg, 0, sizeof(wcfg));
	/* the arguments were good: the run has started, and on rank 0 on_start
	 * and on_exit are called whatever happens from here (the dispatcher
	 * calls on_start once its rows exist; else it is called below) */
	st->start_time = gd_now();
	st->total_hint = cfg->total_hint;
	if (gd__mpi(MPI_Comm_rank(user_comm, &rank), "MPI_Comm_rank"))
		return GD_EMPI; /* not even that: no rank knows it is rank 0 */
	if ((rc = gd__mpi(MPI_Comm_dup(user_comm, &comm), "MPI_Comm_dup")))
		goto report;
	/* the library reports errors through return codes, never by aborting */
	if (gd__mpi(MPI_Comm_set_errhandler(comm, MPI_ERRORS_RETURN), "MPI_Comm_set_errhandler")) {
		rc = GD_EMPI;
		goto free_comm;
	}

	rc = share_config(comm, rank, cfg, &wcfg);
	/* agree on it: a worker that could not read the configuration stops all */
	int all = rc;
	if (gd__mpi(MPI_Allreduce(&rc, &all, 1, MPI_INT, MPI_MIN, comm), "MPI_Allreduce"))
		all = GD_EMPI;
	rc = all;
	placement = rank == 0 ? cfg->placement : (int)wcfg.placement;
	if (!rc && placement)
		rc = gd__place_local_index(comm, &local_index, &local_workers);
	if (!rc) {
		if (rank == 0)
			rc = gd__dispatch(comm, gen, gen_state, cb, cfg, st, &started);
		else
			rc = gd__worker_main(comm, cls, &wcfg, local_index, local_workers);
	}
	/* a lost rank would never join the collective: rank 0 and the workers
	 * that drained return GD_ELOST without it */
	if (rc != GD_ELOST && share_stats(comm, rank, &rc, st) && !rc)
		rc = GD_EMPI;
free_comm:
	gd__cfg_free(&wcfg);
	MPI_Comm_free(&comm);
report:
	if (rank == 0 && !started && cb->on_start)
		cb->on_start(cb->user, st); /* the dispatcher never ran */
	if (rank == 0 && cb->on_exit)
		cb->on_exit(cb->user, st, rc);
	return rc;
}

int gd_run(MPI_Comm comm, const gd_worker_class *cls, gd_generator_fn gen, void *gen_state,
           const gd_callbacks *cb, const gd_config *cfg, gd_stats *stats)
{
	gd_config c;
	gd_callbacks b;
	gd_stats st;
	int rc;

	/* every rank takes the application's structs the same way, so that
	 * every rank agrees on a bad size in check_all() */
	int bad = gd__stats_check(stats) || (cfg && gd__config_take(cfg, &c)) ||
	          (cb && gd__callbacks_take(cb, &b));
	if (stats && !bad) {
		/* filled on every rank, whatever it held (it is not ours to free) */
		size_t size = stats->size;
		memset(stats, 0, size < sizeof(*stats) ? size : sizeof(*stats));
		stats->size = size;
	}
	rc = check_all(comm, cls, gen, bad ? NULL : cb ? &b : NULL, bad ? NULL : cfg ? &c : NULL);
	if (rc)
		return rc;
	memset(&st, 0, sizeof(st));
	st.size = sizeof(st);
	st.worker_size = sizeof(gd_worker_stats);
	rc = run_checked(comm, cls, gen, gen_state, &b, &c, &st);
	if (stats)
		gd__stats_give(stats, &st);
	else
		gd_stats_free(&st);
	return rc;
}
