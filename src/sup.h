/*
 * The supervisor of one worker rank: its state, and the internal API of the
 * files that make it up, each using only those listed below it:
 *
 *   supervisor.c  the loop (gd__worker_main), start and end of the rank
 *                 (buffers, placement, HELLO), in-process runs
 *   exec_proc.c   the executor process: start, socket, pidfd, reap,
 *                 restart, timeouts, waiting for it; retiring the worker
 *   sup_rank0.c   the link with rank 0: tasks in, results out
 *   held.c        the tasks held until their results are reported (a ring)
 *   backoff.c     waiting for MPI without spinning (rank 0 uses it too)
 */
#ifndef GD_SUP_H
#define GD_SUP_H

#include "executor.h"
#include "placement.h"
#include "backoff.h"
#include "roles.h"

/* The executor's state (sup.ex). */
enum { EX_NONE, EX_STARTING, EX_RUNNING, EX_CLEANING };

typedef struct pend {
	const uint8_t *rec; /* header + payload, inside receive buffer `buf` */
	uint32_t rec_len;
	int buf;
	uint64_t task_id;
	uint16_t attempt;
	int shm; /* in a shared buffer: the executor gets `desc`, not `rec` */
	uint8_t desc[GD_REC_HDR + GD_SHM_DESC];
} pend;

/* What goes down the socket for a held task. */
static inline const uint8_t *wire_ptr(const pend *p)
{
	return p->shm ? p->desc : p->rec;
}

static inline size_t wire_len(const pend *p)
{
	return p->shm ? sizeof(p->desc) : p->rec_len;
}

typedef struct sup {
	MPI_Comm comm;
	int rank;
	int wid;
	const gd__wcfg *cfg;
	gd__exec x;
	gd__placement place;
	int placed;

	/* receive buffers: each holds one MPI message and is free once every
	 * task in it is reported */
	gd__bytes *rbuf;
	int *rrefs;
	unsigned nrbuf;
	/* large messages go to shared buffers (memfds, shm.h) the executor maps:
	 * shm[0 .. nrbuf) receive them from MPI (process isolation only),
	 * shm[nrbuf .. nshm) are the drops rank 0 writes into itself */
	unsigned nshm;
	uint64_t drop_token;
	gd__shm *shm;  /* this rank's: fd -1 = none */
	gd__shm *xshm; /* the executor's views of them (its copy after fork) */

	/* tasks held, oldest first */
	pend *ring;
	unsigned cap, head, count;
	unsigned wr;        /* ring offset of the first task not fully written */
	size_t wr_off;      /* bytes of that task already written */
	gd__progress *prog; /* shared with the executor: what it runs */

	/* the executor */
	int ex;
	pid_t pid;
	int fd;
	int pidfd;          /* readable once the executor has exited; -1 without pidfds */
	int leaving;        /* cleanup done: it exits by itself, reaped after BYE */
	double ex_deadline; /* setup / cleanup deadline, 0 = none */
	gd__bytes in;
	uint32_t restarts;
	unsigned gen; /* counts executors started, to notice a replacement */

	/* results to rank 0, double-buffered */
	gd__bytes out[2];
	MPI_Request req[2];
	int cur;

	/* what recent results were like: the mean run time (moving average)
	 * and how many small results came in a row */
	double avg_task_s;
	unsigned small_results;

	int ready_sent;
	int big;           /* the last task message from rank 0 was large */
	unsigned big_held; /* large tasks held through MPI; rank 0 sends GD_BIG_MAX at most */
	unsigned shm_held; /* tasks held in shared memory (a drop or a receive buffer) */
	int stop, abort, retired;
	/* heartbeats (gd_config.heartbeat_timeout): when rank 0 was last heard,
	 * when the next ping goes; lost: rank 0 is silent, leave now;
	 * lost_run: rank 0 lost a node, the run ends GD_ELOST */
	double last_heard, next_ping;
	MPI_Request ping_req;
	uint8_t ping[GD_REC_HDR];
	int lost, lost_run;
	char rank0_bad[256]; /* a malformed message from rank 0: why (the loop retires) */
	int err;
} sup;

#define RING(s, i) (&(s)->ring[((s)->head + (i)) % (s)->cap])

/* ---------------------------------------------------------- sup_rank0.c */

/* The results buffer being filled (the other one may be in flight). */
gd__bytes *gd__sup_outbuf(sup *s);
/* Send what gd__sup_outbuf() holds, and switch buffers. */
void gd__sup_flush(sup *s);
/* Append a record for rank 0. */
void gd__sup_send_rec(sup *s, uint8_t type, uint64_t task_id, uint16_t attempt, uint64_t aux,
                      const void *payload, size_t len, uint8_t flags);
void gd__sup_send_msg(sup *s, uint8_t type, uint64_t task_id, uint16_t attempt, uint64_t aux,
                      uint8_t flags, const char *msg);
/* Receive what rank 0 has sent.  \return 0 if nothing arrived, 1 if
 * something did, 2 if it stopped after a large message.  A malformed
 * message leaves why in s->rank0_bad: the caller retires the worker. */
int gd__sup_recv_rank0(sup *s);

/* Send a heartbeat when due; with `judge` (nothing waits to be read) decide
 * whether rank 0 is lost (s->lost).  \return s->lost. */
int gd__sup_heartbeat(sup *s, int judge);

/* --------------------------------------------------------------- held.c */

/* The oldest task is reported: let it go. */
void gd__held_pop(sup *s);
/* Index of the task the executor is running, or -1; its start in *start. */
int gd__held_running(sup *s, double *start);
/* Take task k out (it timed out or crashed its executor). */
void gd__held_remove(sup *s, unsigned k);
/* Let every held task go (retired, aborted). */
void gd__held_drop_all(sup *s);
/* A fresh executor: everything held is written again. */
void gd__held_rewind(sup *s);

/* ---------------------------------------------------------- exec_proc.c */

/* Fork a new executor (EX_STARTING).  \return 0 or GD_ESYS (errno set). */
int gd__sup_start_executor(sup *s);
/* Reap the executor and what it started; \return its wait status. */
int gd__sup_reap_executor(sup *s, int force);
/* An executor that finished its cleanup and was let go: reap it now. */
void gd__sup_reap_leaving(sup *s);
/* Write held tasks to the executor without blocking. */
void gd__sup_write_executor(sup *s);
/* Wait for the executor or the next deadline (and handle what happened).
 * \return 1 if something may have happened. */
int gd__sup_wait_executor(sup *s);
/* Tell an idle executor to run cleanup (EX_CLEANING). */
void gd__sup_begin_cleanup(sup *s);

/* --------------------------------------------------------- supervisor.c */

/* This worker leaves the run: SETUP_FAIL with why, its tasks go back. */
void gd__sup_retire(sup *s, const char *why);

#endif
