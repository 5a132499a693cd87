/*
 * The dashboard's model (internal): a copy of rank 0's statistics that the
 * wrapped callbacks update under a lock, and the consistent snapshots that the
 * UI thread takes from it.  Pure data, no ncurses, no MPI, so tests can drive
 * it with hand-made events.
 */
#ifndef GD_UI_MODEL_H
#define GD_UI_MODEL_H

#include <pthread.h>
#include <stdint.h>

#include "gpudispatch.h"
#include "ui_reasons.h"

/* How far back the throughput is measured, and how many samples cover it. */
#define GD__UI_RATE_WINDOW_S 10.0
#define GD__UI_RATE_SAMPLES  128

/* Stop levels, as poll_stop returns them. */
enum { GD__UI_RUN = GD_STOP_NONE, GD__UI_DRAIN = GD_STOP_DRAIN, GD__UI_STOP_NOW = GD_STOP_NOW };

/* Throughput over a recent window: samples of (time, tasks done). */
typedef struct gd__ui_rate {
	double t[GD__UI_RATE_SAMPLES];
	uint64_t done[GD__UI_RATE_SAMPLES];
	int head; /* index of the newest sample */
	int n;    /* samples held */
	double window_s;
} gd__ui_rate;

void gd__ui_rate_init(gd__ui_rate *r, double window_s);
/* Record that `done` tasks had ended at time t (t must not decrease). */
void gd__ui_rate_add(gd__ui_rate *r, double t, uint64_t done);
/* \return tasks/s between the oldest sample inside the window and the
 * newest, or -1 when fewer than two samples span a positive time. */
double gd__ui_rate_get(const gd__ui_rate *r);

/*
 * One consistent view of the run.  st.workers points to rows (owned by the
 * snapshot, st.n_workers of them); everything else is a plain copy.
 */
typedef struct gd__ui_snap {
	gd_stats st;
	int cap;             /* rows allocated in st.workers */
	int have_stats;      /* 0 until the first event: st is only our zeroes */
	double now;          /* gd_now() when the snapshot was taken */
	double rate;         /* tasks/s over the recent window, -1 unknown */
	double timeout_s;    /* the configured task timeout, 0 = none */
	int stop;            /* GD__UI_RUN / _DRAIN / _STOP_NOW as requested */
	int ended;           /* on_exit was seen: st is final */
	int rc;              /* gd_run's result, valid when ended */
	double taken;        /* gd_now() when st was taken from the run, 0 = never */
	uint64_t folds;      /* how many times st was taken: a newer one differs */
	gd__reasons reasons; /* why tasks failed, grouped */
} gd__ui_snap;

/* Free the rows of a snapshot (safe on a zeroed one). */
void gd__ui_snap_free(gd__ui_snap *s);
/* Copy src into dst, growing dst's rows. \return 0 or GD_ENOMEM. */
int gd__ui_snap_copy(gd__ui_snap *dst, const gd__ui_snap *src);

/* A worker's GPUs as "3", "0,1,2,3" (gpus_per_worker), or "cpu". \return buf. */
const char *gd__ui_gpus(char *buf, size_t n, const gd_worker_stats *ws);

/* Tasks that have ended one way or another (the progress numerator). */
uint64_t gd__ui_done(const gd_stats *st);
/* When the snapshot's statistics were true: when they were taken from the
 * run (its clock for running times), else the snapshot's own time. */
double gd__ui_stats_time(const gd__ui_snap *s);
/* Seconds since the run started, from the snapshot's clock. */
double gd__ui_elapsed(const gd__ui_snap *s);
/* \return the estimated seconds left, or -1 when unknown (no total, no rate):
 * the tasks left at the recent rate, but never less than what the running
 * tasks still need at the mean task time so far, and never below 1 s while
 * a task runs or is left (00:00 only when all is done). */
double gd__ui_eta(const gd__ui_snap *s);
/* Format seconds as "MM:SS" or "H:MM:SS" ("--:--" when s < 0). */
char *gd__ui_fmt_duration(char *buf, size_t n, double s);

/* The live model, shared by the run's thread (writer) and the UI thread. */
typedef struct gd__ui_model {
	pthread_mutex_t lock;
	gd__ui_snap cur;  /* the copy the UI thread reads */
	gd__ui_rate rate; /* fed by snapshots */
	int want;         /* atomic: the UI thread took a snapshot and wants news */
	/* the dispatcher thread's side, never touched by the UI thread */
	const gd_stats *live; /* the statistics the last event pointed at */
	gd__reasons reasons;  /* counted at each failure, folded with the statistics */
} gd__ui_model;

/* \return 0 or GD_ESYS.  now: the start time used until the first event. */
int gd__ui_model_init(gd__ui_model *m, const gd_config *cfg, double now);
void gd__ui_model_destroy(gd__ui_model *m);
/* Take an event's statistics into the model (called from a wrapped callback). */
void gd__ui_model_event(gd__ui_model *m, const gd_event *ev);
/* The dispatcher thread (on_tick): take st into the model if the UI
 * thread asked for news since the last fold.  Never waits: while the UI
 * thread holds the lock, the news wait for the next tick (events
 * likewise). */
void gd__ui_model_tick(gd__ui_model *m, const gd_stats *st);
/* The run's first statistics (on_start). */
void gd__ui_model_start(gd__ui_model *m, const gd_stats *st);
/* The final statistics, from on_exit. */
void gd__ui_model_exit(gd__ui_model *m, const gd_stats *st, int rc);
/* Raise the stop request to at least `level`; \return the new level. */
int gd__ui_model_request_stop(gd__ui_model *m, int level);
int gd__ui_model_stop_level(gd__ui_model *m);
/* Ask the run's thread for fresh statistics (taken at its next event or
 * tick: snap.folds grows). */
void gd__ui_model_ask(gd__ui_model *m);
/* \return how many times the model took the run's statistics so far. */
uint64_t gd__ui_model_folds(gd__ui_model *m);
/* Copy the model into out and sample the throughput at `now`. \return 0 or GD_ENOMEM. */
int gd__ui_model_snapshot(gd__ui_model *m, gd__ui_snap *out, double now);

#endif
