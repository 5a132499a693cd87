/*
 * A worker rank: the supervisor.  It receives tasks from rank 0, forwards
 * them to its executor process over a socket, sends the results back, and
 * replaces the executor when a task times out or crashes it.  It keeps every
 * task it holds (at most `window`) until that task's result is reported, so
 * the tasks queued behind a crashed one are re-sent to the new executor.
 *
 * This file: the loop, the rank's start and end, and in-process runs
 * (GD_ISOLATE_NONE); the rest is listed in sup.h.
 */
#define _GNU_SOURCE
#include "sup.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* What rank 0 sent; a malformed message retires the worker. */
static int recv_rank0(sup *s)
{
	int got = gd__sup_recv_rank0(s);

	if (s->rank0_bad[0]) {
		gd__sup_retire(s, s->rank0_bad);
		s->rank0_bad[0] = '\0';
	}
	return got;
}

/* ------------------------------------------------------------ in-process */

/* GD_ISOLATE_NONE: run held tasks here, one after another. */
static void run_inline(sup *s)
{
	char err[64];
	unsigned since_flush = 0, batch = GD__MAX(1u, s->cap / 2);

	while (s->count && !s->abort) {
		pend *p = RING(s, 0);
		gd__rec r;
		size_t used;
		double took = 0;

		gd__rec_parse(wire_ptr(p), wire_len(p), &r, &used, err, sizeof(err));
		if (r.type == GD_REC_TASK_SHM && gd__exec_shm_task(&s->x, &r) < 0)
			gd__sup_send_msg(s, GD_REC_ERROR, p->task_id, p->attempt, 0, 0,
			                 "cannot map the shared buffer holding the task");
		else if (gd__exec_task(&s->x, &r, gd__sup_outbuf(s), &took))
			s->err = GD_ENOMEM;
		if (s->x.w.retire) {
			/* gd_worker_retire(): the SETUP_FAIL record is out with
			 * the results before it; the task goes back untried */
			gd__sup_flush(s);
			gd__held_drop_all(s);
			s->retired = 1;
			return;
		}
		gd__held_pop(s);
		if (gd__sup_heartbeat(s, 0))
			return; /* cannot be reached: the main loop ends the rank */
		/* long tasks report at once, and look for an ABORT; tiny ones
		 * report in batches and run on without polling rank 0: a poll
		 * that finds nothing gives the core away on a shared node */
		if (++since_flush >= batch || took > 100e-6 ||
		    s->out[s->cur].len > GD_BATCH_BYTES) {
			gd__sup_flush(s);
			since_flush = 0;
			if (took > 100e-6)
				recv_rank0(s);
		}
	}
	gd__sup_flush(s);
}

/* ------------------------------------------------------------ main loop */

static void say_hello(sup *s, const char *note, const char *warning)
{
	gd__hello h = {.pid = (int32_t)getpid()};
	gd__bytes b = {0};

	gethostname(h.host, sizeof(h.host) - 1);
	if (s->placed) {
		h.gpu = s->place.gpu;
		h.n_gpus = s->place.n_wgpus;
		for (int k = 0; k < h.n_gpus; k++)
			h.gpu_indices[k] = s->place.gpus[k].index;
		s->x.w.n_gpus = s->place.n_wgpus;
		memcpy(s->x.w.gpus, s->place.gpus, sizeof(s->x.w.gpus));
	} else
		h.gpu.index = h.gpu.numa_node = -1;
	gd__strlcpy(h.note, note, sizeof(h.note));
	gd__strlcpy(h.warning, warning, sizeof(h.warning));
	for (unsigned k = 0; k < GD_DROPS; k++)
		h.drop_fd[k] = s->drop_token ? s->shm[s->nrbuf + k].fd : -1;
	h.drop_token = s->drop_token;
	gd__strlcpy(s->x.w.host, h.host, sizeof(s->x.w.host));
	s->x.w.gpu = h.gpu;
	if (gd__hello_pack(&h, &b) == 0)
		gd__sup_send_rec(s, GD_REC_HELLO, 0, 0, 0, b.p, b.len, 0);
	else
		s->err = GD_ENOMEM;
	gd__sup_flush(s);
	gd__bytes_free(&b);
}

static int sup_init(sup *s, MPI_Comm comm, const gd_worker_class *cls, const gd__wcfg *cfg)
{
	memset(s, 0, sizeof(*s));
	if (gd__mpi(MPI_Comm_rank(comm, &s->rank), "MPI_Comm_rank"))
		return GD_EMPI;
	s->comm = comm;
	s->wid = s->rank - 1;
	s->cfg = cfg;
	s->cap = cfg->window;
	s->nrbuf = cfg->window + 2;
	s->fd = -1;
	s->pidfd = -1;
	s->req[0] = s->req[1] = MPI_REQUEST_NULL;
	s->ping_req = MPI_REQUEST_NULL;
	s->last_heard = gd_now();
	gd__rec ping = {.type = GD_REC_PING, .worker = (uint32_t)s->wid};
	gd__rec_put_hdr(s->ping, &ping);
	s->x.cls = cls;
	s->x.args = &cfg->args;
	s->x.w.id = s->wid;
	s->x.w.seed = cfg->base_seed + (uint64_t)s->wid;
	if (cfg->isolation != GD_ISOLATE_NONE) {
		void *p = mmap(NULL, sizeof(gd__progress), PROT_READ | PROT_WRITE,
		               MAP_SHARED | MAP_ANONYMOUS, -1, 0);

		if (p == MAP_FAILED)
			return GD_ESYS;
		s->prog = p;
		s->x.prog = p;
	}
	s->nshm = s->nrbuf + GD_DROPS;
	s->shm = malloc(s->nshm * sizeof(*s->shm));
	s->xshm = malloc(s->nshm * sizeof(*s->xshm));
	for (unsigned b = 0; s->shm && s->xshm && b < s->nshm; b++) {
		gd__shm_init(&s->shm[b]);
		gd__shm_init(&s->xshm[b]);
	}
	if (!s->shm || !s->xshm) {
		free(s->shm); /* nothing in them yet */
		free(s->xshm);
		s->shm = s->xshm = NULL;
		return GD_ENOMEM;
	}
	if (cfg->isolation != GD_ISOLATE_NONE) {
		s->x.keep = malloc((s->nshm + 1) * sizeof(int));
		if (!s->x.keep)
			return GD_ENOMEM;
		/* without memfds (an old kernel), large tasks take the socket */
		for (unsigned b = 0; b < s->nrbuf; b++)
			gd__shm_create(&s->shm[b], GD_SHM_TASK_NAME);
	}
	/* without drops (no memfds, no randomness) every large task comes
	 * through MPI: drop_token stays 0 */
	gd__shm_drops_make(&s->shm[s->nrbuf], &s->drop_token);
	for (unsigned b = 0; b < s->nshm; b++)
		s->xshm[b].fd = s->shm[b].fd;
	s->x.shm = s->xshm;
	s->x.n_shm = s->nshm;
	s->ring = calloc(s->cap, sizeof(*s->ring));
	s->rbuf = calloc(s->nrbuf, sizeof(*s->rbuf));
	s->rrefs = calloc(s->nrbuf, sizeof(*s->rrefs));
	if (!s->ring || !s->rbuf || !s->rrefs)
		return GD_ENOMEM;
	return 0;
}

static void sup_free(sup *s)
{
	/* statuses, not MPI_STATUSES_IGNORE: with MPICH's mpi.h, gcc 12 takes
	 * that (MPI_Status *)1 for a buffer too small (-Wstringop-overflow) */
	MPI_Status st[2];

	gd__sup_reap_leaving(s);
	/* rank 0 lost: a send to it may never complete, its buffer is left */
	if (!s->lost) {
		(void)gd__mpi(MPI_Waitall(2, s->req, st), "MPI_Waitall");
		if (s->ping_req != MPI_REQUEST_NULL)
			(void)gd__mpi(MPI_Wait(&s->ping_req, MPI_STATUS_IGNORE), "MPI_Wait");
		gd__bytes_free(&s->out[0]);
		gd__bytes_free(&s->out[1]);
	}
	for (unsigned i = 0; s->rbuf && i < s->nrbuf; i++)
		gd__bytes_free(&s->rbuf[i]);
	gd__bytes_free(&s->in);
	for (unsigned b = 0; s->shm && b < s->nshm; b++)
		gd__shm_close(&s->shm[b]);
	/* inline runs map the buffers through the executor's views */
	for (unsigned b = 0; !s->prog && s->xshm && b < s->nshm; b++)
		gd__shm_unmap(&s->xshm[b]);
	free(s->x.keep);
	free(s->shm);
	free(s->xshm);
	free(s->ring);
	free(s->rbuf);
	free(s->rrefs);
	if (s->prog)
		munmap(s->prog, sizeof(gd__progress));
}

/* Send one small record now, without the supervisor's buffers (which may
 * be what failed). */
static void send_now(MPI_Comm comm, int wid, uint8_t type, const char *msg)
{
	uint8_t buf[GD_REC_HDR + 256];
	size_t n = msg ? GD__MIN(strlen(msg), (size_t)256) : 0;
	gd__rec r = {.type = type, .worker = (uint32_t)wid, .len = (uint32_t)n};

	gd__rec_put_hdr(buf, &r);
	if (n)
		memcpy(buf + GD_REC_HDR, msg, n);
	/* nothing more to do when even this fails: gd__mpi() said why */
	(void)gd__mpi(MPI_Send(buf, (int)(GD_REC_HDR + n), MPI_BYTE, 0, GD__TAG, comm), "MPI_Send");
}

/* A worker that cannot go on still leaves only when rank 0 says so: rank 0
 * may have sends to it in flight that complete only when received, and it
 * counts on a BYE.  Drop everything until STOP or ABORT. */
static void linger(MPI_Comm comm)
{
	for (;;) {
		MPI_Message m;
		MPI_Status st;
		int count = 0;
		uint8_t small[GD_REC_HDR], *p;

		if (gd__probe_wait(comm, 0, &m, &st))
			return;
		if (gd__mpi(MPI_Get_count(&st, MPI_BYTE, &count), "MPI_Get_count"))
			count = 0;
		p = count > (int)sizeof(small) ? malloc((size_t)count) : small;
		/* without memory, a short receive still takes the message off,
		 * and its first bytes (the type): MPI_ERR_TRUNCATE is expected */
		int rc = MPI_Mrecv(p ? p : small, p ? count : (int)sizeof(small), MPI_BYTE, &m,
		                   MPI_STATUS_IGNORE);
		if (p && gd__mpi(rc, "MPI_Mrecv")) {
			if (p != small)
				free(p);
			return; /* MPI is broken: nobody to wait for */
		}
		int type = count > 0 ? (p ? p[0] : small[0]) : 0;
		if (p && p != small)
			free(p);
		if (type == GD_REC_STOP || type == GD_REC_ABORT)
			return;
	}
}

int gd__worker_main(MPI_Comm comm, const gd_worker_class *cls, const gd__wcfg *cfg, int local_index,
                    int local_workers)
{
	char note[256] = "", warning[256] = "", err[256] = "";
	unsigned idle = 0;
	sup s;
	int rc;

	/* rank 0 decides how a run stops: mpirun forwards SIGTERM, SIGUSR1 and
	 * SIGUSR2 to every rank, and a worker that died of one would take its
	 * tasks with it.  Ignored for the run, restored after. */
	static const int stop_sigs[] = {SIGINT, SIGTERM, SIGUSR1, SIGUSR2};
	struct sigaction ign = {.sa_handler = SIG_IGN}, old[4];

	for (int k = 0; k < 4; k++)
		sigaction(stop_sigs[k], &ign, &old[k]);
	rc = sup_init(&s, comm, cls, cfg);
	if (rc) {
		char why[128];

		snprintf(why, sizeof(why), "worker cannot start: %s", gd_strerror(rc));
		send_now(comm, s.wid, GD_REC_SETUP_FAIL, why);
		linger(comm);
		send_now(comm, s.wid, GD_REC_BYE, NULL);
		goto out_free;
	}
	if (cfg->placement) {
		gd__place_req req = {.local_index = local_index,
		                     .local_workers = local_workers,
		                     .gpu_ids = cfg->gpu_ids,
		                     .n_gpu_ids = cfg->n_gpu_ids,
		                     .workers_per_gpu = cfg->workers_per_gpu,
		                     .gpus_per_worker = cfg->gpus_per_worker};

		if (gd__place_compute(&req, &s.place, err, sizeof(err)) == 0) {
			s.placed = 1;
			gd__strlcpy(note, s.place.note, sizeof(note));
			gd__strlcpy(warning, s.place.warning, sizeof(warning));
		}
	}
	say_hello(&s, note, warning);
	if (cfg->placement && !s.placed) {
		char why[320];

		snprintf(why, sizeof(why), "placement: %s", err);
		gd__sup_retire(&s, why);
	} else if (cfg->isolation == GD_ISOLATE_NONE) {
		gd__bytes *b = gd__sup_outbuf(&s);
		size_t before = b->len;

		if (s.placed && gd__place_apply(&s.place, err, sizeof(err)) < 0) {
			char why[320];

			snprintf(why, sizeof(why), "placement: %s", err);
			gd__sup_retire(&s, why);
		} else if (gd__exec_setup(&s.x, b)) {
			s.err = GD_ENOMEM;
		} else if (b->p[before] == GD_REC_SETUP_FAIL) {
			s.retired = 1;
		}
		s.ready_sent = 1;
		gd__sup_flush(&s);
	} else if (gd__sup_start_executor(&s)) {
		snprintf(err, sizeof(err), "cannot start an executor: %s", strerror(errno));
		gd__sup_retire(&s, err);
	}

	while (!s.err) {
		int busy = recv_rank0(&s);

		/* rank 0 is lost (silent, or not taking results): leave now */
		if (gd__sup_heartbeat(&s, !busy) || s.lost) {
			if (s.ex != EX_NONE)
				gd__sup_reap_executor(&s, 1);
			gd__held_drop_all(&s);
			break;
		}
		if (s.abort) {
			if (s.ex != EX_NONE)
				gd__sup_reap_executor(&s, 1);
			gd__held_drop_all(&s);
			break;
		}
		if (cfg->isolation == GD_ISOLATE_NONE && !s.retired) {
			if (s.count) {
				run_inline(&s);
				idle = 0;
				continue;
			}
			if (s.stop) {
				gd__bytes *b = gd__sup_outbuf(&s);
				size_t before = b->len;

				if (gd__exec_cleanup(&s.x, b))
					s.err = GD_ENOMEM;
				else if (b->p[before] == GD_REC_CLEANUP_OK)
					b->len = before; /* only a failure is reported */
				break;
			}
		} else {
			if (s.stop && s.count == 0 && s.ex == EX_RUNNING)
				gd__sup_begin_cleanup(&s);
			if (s.stop && s.ex == EX_NONE)
				break;
			if (s.ex != EX_NONE) {
				gd__sup_write_executor(&s);
				/* the executor has work, or is starting / cleaning;
				 * after a large task, look for the next one first so
				 * that its copy overlaps the executor's run */
				if (busy < 2 && (s.count || s.ex != EX_RUNNING)) {
					gd__sup_wait_executor(&s);
					idle = 0;
					continue;
				}
			}
		}
		if (busy)
			idle = 0;
		else
			/* while large tasks flow, the next one moves only when
			 * this rank is in MPI: poll a few ms before sleeping */
			gd__backoff(&idle, s.big && s.count < s.cap ? 2000 : 20, 0);
	}
	if (s.ex != EX_NONE)
		gd__sup_reap_executor(&s, 1);
	if (s.lost) {
		rc = GD_ELOST;
		goto out_free;
	}
	if (s.err && !s.stop && !s.abort) {
		char why[128];
		MPI_Status st[2]; /* see sup_free() */

		(void)gd__mpi(MPI_Waitall(2, s.req, st), "MPI_Waitall");
		snprintf(why, sizeof(why), "worker failed: %s", gd_strerror(s.err));
		gd__log(s.rank, "worker %d: %s", s.wid, why);
		if (!s.retired)
			send_now(comm, s.wid, GD_REC_SETUP_FAIL, why);
		linger(comm);
		send_now(comm, s.wid, GD_REC_BYE, NULL);
	} else {
		gd__sup_send_rec(&s, GD_REC_BYE, 0, 0, 0, NULL, 0, 0);
		gd__sup_flush(&s);
	}
	rc = s.err ? s.err : s.lost_run ? GD_ELOST : 0;
out_free:
	sup_free(&s);
	for (int k = 0; k < 4; k++)
		sigaction(stop_sigs[k], &old[k], NULL);
	return rc;
}
