/*
 * Rank 0, the dispatcher: its state, and the internal API of the files that
 * make it up, each using only those listed below it:
 *
 *   dispatcher.c    the loop (gd__dispatch), start and end, stopping
 *   disp_results.c  what the workers report
 *   disp_send.c     handing tasks out
 *   disp_slots.c    slots, credits and the observers' events
 *
 * Memory is a fixed pool of workers x window task slots.  The generator is
 * called only when a worker has a free credit, and writes straight into a
 * free slot's buffer (behind room for the record header), so a task goes out
 * without a copy and stays in its slot until its result is in: that is what
 * lets a task be re-queued (retry, or a worker that retires) and what bounds
 * memory by workers x window x task size, however many tasks there are.
 * Small tasks for one worker are batched into one message under the eager
 * limit; a large one is written into one of its worker's drops when the
 * worker runs on this node (shm.h), else sent from its slot.
 */
#ifndef GD_DISP_H
#define GD_DISP_H

#include "journal.h"
#include "ring.h"
#include "termination.h"
#include "window.h"
#include "wire.h"

enum { W_INIT, W_READY, W_RETIRED, W_GONE };

#define HIST_MAX 1024 /* bytes of error history kept per retried task */

typedef struct slot {
	gd__bytes b; /* [record header | payload] */
	uint64_t task_id;
	uint16_t attempt;
	int worker;      /* holder, -1 = none */
	int last_worker; /* where the last attempt ran, -1 = none */
	MPI_Request req; /* a send straight from b */
	int in_sfly;     /* listed in disp.sfly */
	double dispatched_at;
	int next_free;
	char *hist; /* "attempt 1 on worker 2: ...; " for retries, NULL = none */
	int drop;   /* the drop of its worker that holds the payload, -1 = none */
	uint8_t dmsg[GD_REC_HDR + GD_SHM_DESC]; /* then what is sent: TASK_DROP */
} slot;

typedef struct wk {
	int state;
	int stop_sent;    /* STOP went out (the end) */
	int abort_sent;   /* ABORT went out (stop now); may follow a STOP */
	gd__ring held;    /* slots held, oldest first (at most W) */
	unsigned big;     /* of which past the eager limit */
	unsigned big_max; /* how many of those it may hold */
	double last_done;
	/* the worker's drops, mapped here when it shares this node */
	gd__shm drop[GD_DROPS];  /* fd -1 = none */
	int drop_slot[GD_DROPS]; /* the slot whose payload it holds, -1 = free */
} wk;

typedef struct batch {
	uint8_t *p;
	MPI_Request req;
} batch;

typedef struct disp {
	MPI_Comm comm;
	int nw;
	const gd_config *cfg;
	const gd_callbacks *cb;
	gd_generator_fn gen;
	void *gen_state;
	gd_stats *st;

	slot *slots;
	int nslots;
	int free_head;
	gd__ring rq; /* re-queued slots */
	wk *w;
	batch *batches; /* buffers made on first use */
	int nbatches;
	int *bfree; /* free batch buffers (made), a stack */
	int nbfree;
	int nalloc;    /* batches[0 .. nalloc) have their buffer */
	gd__ring bfly; /* batches being sent, oldest first */
	int big_full;  /* workers holding as many large tasks as they may */
	gd__ring sfly; /* slots sent on their own (large tasks) not known done */
	double now;    /* the clock, read once per loop */
	gd__window win;

	int gen_done;
	int gen_err;
	uint64_t next_id;
	gd__term term;
	int live;    /* workers READY */
	int pending; /* workers INIT */
	int gone;
	uint64_t inflight;
	int starved;     /* a worker with credit found no free slot */
	gd__ring hungry; /* workers that may have a free credit */
	char *in_hungry;
	int cpu_note_shown;
	int drops_ok;     /* large tasks may go through drops (cfg->shm) */
	double next_tick; /* when on_tick is due */
	gd__logger log;   /* the application's on_log, or stderr */
	char host[64];
	int rc;

	gd__journal *j;
	gd__bytes rbuf;
	char err[256];
} disp;

/* Past the eager limit: written into a drop, or sent on its own (rendezvous).
 * A worker holds w->big_max of them at most: GD_BIG_MAX, or GD_DROPS once
 * its drops are open (shm.h says why). */
#define BIG(s) gd__shm_large((s)->b.len)

/* ---------------------------------------------------------- disp_slots.c */

void gd__disp_emit(disp *d, gd_event_fn fn, gd_event *ev);
void gd__disp_update_row(disp *d, int i);
void gd__disp_set_state(disp *d, int i, int state);
unsigned gd__disp_credit_window(const disp *d);
int gd__disp_has_credit(const disp *d, int i);
const uint8_t *gd__disp_slot_wire(const slot *s);
size_t gd__disp_slot_wire_len(const slot *s);
int gd__disp_drop_put(disp *d, int i, int si, const gd__rec *r);
void gd__disp_drop_release(disp *d, int i, int si);
void gd__disp_slot_wait(slot *s);
gd_event gd__disp_slot_event(disp *d, int si, gd_event_type type, int worker);
void gd__disp_slot_free(disp *d, int si);
void gd__disp_mark_hungry(disp *d, int i);
void gd__disp_requeue(disp *d, int si);
int gd__disp_take_requeued(disp *d, int i);
void gd__disp_abandon(disp *d, int si, int worker);

/* ---------------------------------------------------------- disp_send.c */

int gd__disp_sends_moving(disp *d);
int gd__disp_dispatch(disp *d);
void gd__disp_send_ctl(disp *d, int i, uint8_t type);

/* ---------------------------------------------------------- disp_results.c */

int gd__disp_receive(disp *d);

#endif
