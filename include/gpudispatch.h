/*
 * gpudispatch - spread a stream of tasks over the GPUs of a cluster with MPI.
 *
 * One public header.  Rank 0 of the communicator given to gd_run() is the
 * dispatcher: it pulls tasks lazily from a generator and hands them out under
 * a credit window (a worker holds at most `window` tasks).  Every other rank
 * is a worker bound to one GPU: it runs the worker class's setup() once,
 * process() once per task and cleanup() once, in an executor process that the
 * worker rank supervises, so that a task that hangs or crashes is reported
 * and the run goes on.
 *
 * Naming: `gd_` is public; `gd__` and `static` are internal.  Every function
 * that can fail returns 0 or a negative GD_E* code; gd_strerror() names it.
 * If a call that takes callbacks fails before the run starts (bad arguments),
 * no callback is ever called; once a run has started, on_exit is called
 * exactly once on rank 0, whatever happens.
 *
 * The library keeps no process-wide state and never calls MPI_Abort.  It
 * MPI_Comm_dup()s the communicator it is given, so its messages never mix
 * with the application's.
 */
#ifndef GPUDISPATCH_H
#define GPUDISPATCH_H

#include <mpi.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* GD_VERSION_MAJOR/_MINOR/_PATCH and GD_VERSION_STRING, written by CMake
 * from the project's version: the one source of the version. */
#include "gpudispatch_version.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Only what is declared GD_EXPORT leaves the shared library: the library is
 * built with -fvisibility=hidden, so no internal symbol is part of its ABI. */
#if defined(__GNUC__) || defined(__clang__)
#define GD_EXPORT __attribute__((visibility("default")))
#else
#define GD_EXPORT
#endif

/**
 * \return the version of the library the program runs with,
 * "MAJOR.MINOR.PATCH" (GD_VERSION_STRING is the one it was built against).
 */
GD_EXPORT const char *gd_version(void);

/* ------------------------------------------------------------------ errors */

/* X-macro: one table of every error code and its message. */
#define GD_ERRNO_MAP(XX)                                                                           \
	XX(EINVAL, -1, "invalid argument")                                                         \
	XX(ENOWORKER, -2, "the communicator has no worker rank (run with at least 2 MPI ranks)")   \
	XX(EWINDOW, -3, "the credit window must be at least 1")                                    \
	XX(ETIMEOUT, -4, "a timeout must be >= 0 seconds")                                         \
	XX(ENOCLASS, -5, "the worker class is NULL or has no process function")                    \
	XX(ENOGEN, -6, "the task generator is NULL")                                               \
	XX(ENOMEM, -7, "out of memory")                                                            \
	XX(EMPI, -8, "an MPI call failed")                                                         \
	XX(EPROTO, -9, "a malformed or truncated message was received")                            \
	XX(EGENERATOR, -10, "the task generator returned an error")                                \
	XX(EALLSETUP, -11, "setup failed on every worker; no task could run")                      \
	XX(EINTR, -12, "interrupted: the run stopped before every task finished (resumable)")      \
	XX(ETOOBIG, -13, "a task or result is larger than the wire format allows")                 \
	XX(ESYS, -14, "a system call failed")                                                      \
	XX(EPLACEMENT, -15, "GPU placement failed")                                                \
	XX(EJOURNAL, -16, "the journal could not be read or written")                              \
	XX(EDIGEST, -17, "a task differs from the one recorded in the journal")                    \
	XX(ENOTINIT, -18, "MPI is not initialised")                                                \
	XX(ELOST, -19,                                                                             \
	   "a rank fell silent for longer than the heartbeat timeout (a node or link was lost); "  \
	   "the run stopped (resumable)")

typedef enum gd_errno {
	GD_OK = 0,
#define GD__ERRNO_ENUM(name, val, msg) GD_##name = (val),
	GD_ERRNO_MAP(GD__ERRNO_ENUM)
#undef GD__ERRNO_ENUM
} gd_errno;

/** \return a static message for a gd_errno value ("unknown error" else). */
GD_EXPORT const char *gd_strerror(int err);

/** \return the symbolic name of a gd_errno value, e.g. "GD_EPROTO". */
GD_EXPORT const char *gd_err_name(int err);

/* ------------------------------------------------------------------- MPI */

/**
 * Initialise MPI (MPI_Init_thread with MPI_THREAD_FUNNELED) unless the
 * application already did.  Either way of initialising MPI is supported: the
 * library only needs MPI_THREAD_FUNNELED (only the thread that calls gd_run
 * calls MPI; the dashboard thread never does).
 * \return 0, or GD_EMPI.
 */
GD_EXPORT int gd_init(int *argc, char ***argv);

/**
 * Finalise MPI if it is initialised and not yet finalised.  Call it only if
 * MPI was initialised by gd_init() (or you want the library to finalise it).
 * \return 0, or GD_EMPI.
 */
GD_EXPORT int gd_finalize(void);

/* ----------------------------------------------------------------- types */

/** The most GPUs one worker can have (cfg.gpus_per_worker). */
#define GD_MAX_WORKER_GPUS 16

/** A GPU as placement chose it for a worker.  index is -1 for a CPU worker. */
typedef struct gd_gpu {
	int index;        /**< index among the node's compute GPUs in PCI bus order, -1 = none */
	int numa_node;    /**< OS index of the GPU's NUMA node, -1 when unknown */
	char bus_id[20];  /**< PCI bus id "0000:07:00.0", "" for none */
	char vendor[16];  /**< "NVIDIA", "AMD", "" */
	char model[64];   /**< e.g. "NVIDIA A100-SXM4-80GB" when known, else "" */
	char uuid[48];    /**< "GPU-..." when the topology has it, else "" */
	char cpuset[128]; /**< the executor's CPUs as a list, e.g. "0-7,16-23" */
} gd_gpu;

/** A setup argument: a key/value pair of strings. */
typedef struct gd_kv {
	const char *key;
	const char *value;
} gd_kv;

/** Setup arguments, as rank 0 was given them in gd_config. */
typedef struct gd_args {
	const gd_kv *kv;
	size_t n;
} gd_args;

/** \return the value for key, or NULL when args has no such key. */
GD_EXPORT const char *gd_args_get(const gd_args *args, const char *key);

/** A task as process() sees it.  data is valid until process() returns. */
typedef struct gd_task {
	uint64_t id;      /**< 0, 1, 2, ... in generator order */
	uint32_t attempt; /**< 1 for the first run, 2 for the first retry ... */
	const void *data;
	size_t len;
} gd_task;

/** The worker's context inside the executor (opaque). */
typedef struct gd_worker gd_worker;
/** Where process() puts its result bytes or error message (opaque). */
typedef struct gd_result gd_result;
/** Where the generator puts the next task's bytes (opaque, owned by the library). */
typedef struct gd_buf gd_buf;

/** \return the worker's id: 0 .. number of workers - 1 (rank - 1). */
GD_EXPORT int gd_worker_id(const gd_worker *w);
/** \return the worker's seed: cfg.base_seed + worker id. */
GD_EXPORT uint64_t gd_worker_seed(const gd_worker *w);
/** \return the GPU this worker was placed on (index -1: a CPU worker); with
 * cfg.gpus_per_worker > 1 the first of its GPUs, its cpuset their union. */
GD_EXPORT const gd_gpu *gd_worker_gpu(const gd_worker *w);
/** \return how many GPUs this worker has (cfg.gpus_per_worker; 0: a CPU worker). */
GD_EXPORT int gd_worker_gpu_count(const gd_worker *w);
/** \return GPU i of this worker (0 <= i < gd_worker_gpu_count(), PCI order;
 * its own locality as cpuset), NULL when out of range. */
GD_EXPORT const gd_gpu *gd_worker_gpu_at(const gd_worker *w, int i);
/** \return the host name the worker runs on. */
GD_EXPORT const char *gd_worker_host(const gd_worker *w);
/** Attach the user's state to the worker (e.g. the loaded model). */
GD_EXPORT void gd_worker_set_data(gd_worker *w, void *data);
/** \return what gd_worker_set_data() stored, NULL before. */
GD_EXPORT void *gd_worker_data(const gd_worker *w);
/**
 * Say why setup() or cleanup() failed; the message reaches on_setup_fail /
 * on_cleanup_fail.  Call it before returning non-zero.
 */
GD_EXPORT void gd_worker_set_error(gd_worker *w, const char *fmt, ...)
        __attribute__((format(printf, 2, 3)));

/**
 * Called from process(): the task's run time, and its timeout, count from
 * now rather than from the call of process() -- for a process() that first
 * waits for something that is not the task's own work (e.g. a worker
 * program that is still loading its model).
 */
GD_EXPORT void gd_worker_task_started(gd_worker *w);
/**
 * Called from process(): count one restart of what this worker runs (e.g.
 * its worker program, started again after it died) in its statistics
 * (gd_worker_stats.restarts, the dashboard's RESTARTS column).
 */
GD_EXPORT void gd_worker_restarted(gd_worker *w);
/**
 * Called from process(): this worker cannot run tasks (e.g. its worker
 * program exits before it is ready, again and again).  Once process()
 * returns, the task is handed back untried, to run on another worker, and
 * the worker retires as a setup failure with this message (on_setup_fail);
 * cleanup() is not called.  \return GD_EINVAL always, so that
 * `return gd_worker_retire(w, ...);` reads naturally.
 */
GD_EXPORT int gd_worker_retire(gd_worker *w, const char *fmt, ...)
        __attribute__((format(printf, 2, 3)));

/**
 * Set the result bytes of the task (copied).  \return 0 or GD_ENOMEM /
 * GD_ETOOBIG.
 */
GD_EXPORT int gd_result_set(gd_result *r, const void *data, size_t len);
/**
 * \return a pointer to len bytes of result to fill in place (valid until
 * process() returns), or NULL when out of memory or too big.
 */
GD_EXPORT void *gd_result_reserve(gd_result *r, size_t len);
/**
 * Mark the task failed with a message (process() should then return
 * non-zero).  The message reaches on_error.  \return GD_EINVAL always, so
 * that `return gd_result_error(r, ...);` reads naturally.
 */
GD_EXPORT int gd_result_error(gd_result *r, const char *fmt, ...)
        __attribute__((format(printf, 2, 3)));
/**
 * Say how a process that the task ran ended (a failed task): its exit
 * status, or the signal that killed it (then pass status -1).  It reaches
 * on_error as ev->exit, never as text to parse.  \return 0 or GD_EINVAL.
 */
GD_EXPORT int gd_result_set_exit(gd_result *r, int status, int signal);

/**
 * Set the next task's bytes (copied into a buffer the library owns and
 * reuses).  \return 0 or GD_ENOMEM / GD_ETOOBIG.
 */
GD_EXPORT int gd_buf_set(gd_buf *b, const void *data, size_t len);
/** \return a pointer to len bytes to fill in place, NULL when out of memory. */
GD_EXPORT void *gd_buf_reserve(gd_buf *b, size_t len);

/**
 * The worker class: what runs on every worker.
 * setup:   once per executor, before its first task.  Return 0, or non-zero
 *          (after gd_worker_set_error()) to refuse tasks.  May be NULL.
 * process: once per task.  Return 0 with the result set by gd_result_set()
 *          (or none: an empty result), or non-zero for a failed task.
 * cleanup: once at the end.  Return non-zero (after gd_worker_set_error())
 *          to report a failure; it is reported, never fatal.  May be NULL.
 * After a timeout or crash the executor is replaced and setup runs again.
 */
typedef struct gd_worker_class {
	const char *name;
	int (*setup)(gd_worker *w, const gd_args *args);
	int (*process)(gd_worker *w, const gd_task *t, gd_result *r);
	int (*cleanup)(gd_worker *w);
} gd_worker_class;

/**
 * The generator, called on rank 0 only when some worker has a free credit.
 * \return 1 with the task's bytes in `task`, 0 when there are no more tasks,
 * or a negative value on error (the run then drains and gd_run returns
 * GD_EGENERATOR).
 */
typedef int (*gd_generator_fn)(void *state, gd_buf *task);

/* ------------------------------------------------------------ statistics */

typedef enum gd_worker_state {
	GD_WS_INIT = 0,   /**< started, setup not finished */
	GD_WS_IDLE,       /**< ready, holds no task */
	GD_WS_BUSY,       /**< holds at least one task */
	GD_WS_DONE,       /**< cleaned up and left */
	GD_WS_ERROR,      /**< setup failed: takes no task */
	GD_WS_QUARANTINED /**< its last cfg.quarantine tasks failed while others
	                       succeeded: takes no new task (message says why) */
} gd_worker_state;

/** \return "initializing", "idle", "processing", "finished", "error" or
 * "quarantined". */
GD_EXPORT const char *gd_worker_state_name(gd_worker_state s);

typedef struct gd_worker_stats {
	int worker_id;
	int rank; /**< rank in the communicator given to gd_run */
	int pid;  /**< the worker rank's process id */
	char host[64];
	gd_gpu gpu;
	gd_worker_state state;
	uint64_t completed; /**< tasks that succeeded on this worker */
	uint64_t failed;    /**< tasks that failed (error or crash) */
	uint64_t timed_out;
	uint32_t in_flight;                  /**< tasks held now (<= window) */
	uint32_t restarts;                   /**< executors replaced after a crash or timeout */
	uint64_t current_task;               /**< valid when in_flight > 0 */
	double current_since;                /**< when current_task started (gd_now() clock) */
	double busy_s;                       /**< seconds spent on tasks, as the worker measured */
	char message[160];                   /**< last setup/cleanup error, "" when none */
	int n_gpus;                          /**< GPUs of the worker (gpus_per_worker), 0 = none */
	int gpu_indices[GD_MAX_WORKER_GPUS]; /**< their node indices, PCI order */
} gd_worker_stats;

/**
 * Statistics of a run.  Totals are disjoint: every task that was produced
 * ends as exactly one of completed, failed, timed_out or not_done.
 *
 * ABI: members are only ever added at the end.  An application declares
 * the struct it passes to gd_run() with GD_STATS_INIT, which records its
 * size: the library fills that many bytes, never more.  Rows are
 * worker_size bytes apart; gd_stats_worker() indexes them whatever version
 * of the library wrote them.
 */
typedef struct gd_stats {
	size_t size;    /**< bytes of this struct as the application was built (GD_STATS_INIT) */
	uint64_t total; /**< tasks produced by the generator and sent (not skipped) */
	uint64_t completed;  /**< succeeded */
	uint64_t failed;     /**< failed: error or crash, after every retry */
	uint64_t timed_out;  /**< timed out, after every retry */
	uint64_t not_done;   /**< in flight when an interrupt stopped the run */
	uint64_t skipped;    /**< refused by cfg.skip (already done, e.g. on resume) */
	uint64_t retried;    /**< attempts that were retried */
	uint64_t total_hint; /**< cfg.total_hint, 0 when unknown */
	double start_time;   /**< gd_now() at start */
	double elapsed_s;
	int n_workers;
	int n_setup_failed;
	gd_worker_stats *workers; /**< n_workers rows, owned by the library */
	size_t worker_size;       /**< bytes from one row to the next */
	/** The stop level (GD_STOP_DRAIN or GD_STOP_NOW) that a cfg.halt
	 * condition raised, 0 when none did. */
	int halted;
	int n_quarantined; /**< workers retired by cfg.quarantine */
	/** Tasks not started because they would not have ended before
	 * cfg.deadline: those waiting for a retry (also in not_done) and,
	 * when cfg.total_hint is known, those the generator had not produced.
	 * Non-zero only when the deadline stopped the run. */
	uint64_t held_back;
	int deadline_stop; /**< 1 when cfg.deadline stopped the run */
	int n_lost;        /**< workers declared lost (cfg.heartbeat_timeout) */
} gd_stats;

/** How an application declares the gd_stats it passes to gd_run(). */
#define GD_STATS_INIT                                                                              \
	{                                                                                          \
		.size = sizeof(gd_stats)                                                           \
	}

/** \return row i of stats (0 <= i < n_workers), NULL when out of range. */
GD_EXPORT const gd_worker_stats *gd_stats_worker(const gd_stats *stats, int i);

/** Free what gd_run() allocated in stats (safe on a zeroed struct); keeps size. */
GD_EXPORT void gd_stats_free(gd_stats *stats);

/** \return a monotonic clock in seconds (the clock of current_since). */
GD_EXPORT double gd_now(void);

/* -------------------------------------------------------------- callbacks */

typedef enum gd_event_type {
	GD_EV_SUCCESS = 1,  /**< data/len: the result bytes */
	GD_EV_ERROR,        /**< message: what went wrong, e.g. "killed by signal 11" */
	GD_EV_TIMEOUT,      /**< timeout_s: the limit that was passed */
	GD_EV_SETUP_FAIL,   /**< message; task_id is meaningless */
	GD_EV_CLEANUP_FAIL, /**< message */
	GD_EV_DISPATCH,     /**< a task was sent to worker_id */
	GD_EV_WORKER,       /**< worker_id changed state (stats->workers[worker_id].state) */
	GD_EV_RETRY,        /**< a failed attempt will run again; message says why */
	GD_EV_NOT_DONE      /**< a task in flight was abandoned by an interrupt */
} gd_event_type;

/** Where a process that a task ran ended, for GD_EV_ERROR (see gd_result_set_exit()). */
typedef struct gd_exit {
	int status; /**< its exit status, -1 when it did not exit (or nothing was run) */
	int signal; /**< the signal that killed it, 0 when none */
} gd_exit;

typedef struct gd_event {
	gd_event_type type;
	int worker_id;
	uint64_t task_id;
	uint32_t attempt;
	const void *data; /**< SUCCESS: result bytes, valid during the callback */
	size_t len;
	const char *message;   /**< ERROR, TIMEOUT, SETUP_FAIL, CLEANUP_FAIL, RETRY, else "" */
	double timeout_s;      /**< TIMEOUT */
	double elapsed_s;      /**< run time of the task as the worker measured it */
	const void *task_data; /**< the task's bytes (SUCCESS, ERROR, TIMEOUT, DISPATCH, RETRY,
	                          NOT_DONE) */
	size_t task_len;
	const gd_stats *stats; /**< live statistics, this event counted */
	gd_exit exit;          /**< ERROR: how the executor or the program process() ran ended */
} gd_event;

typedef void (*gd_event_fn)(void *user, const gd_event *ev);

/** What poll_stop and cfg.stop_flag ask for. */
typedef enum gd_stop_level {
	GD_STOP_NONE = 0,  /**< keep going */
	GD_STOP_DRAIN = 1, /**< hand out no more tasks; those in flight finish */
	GD_STOP_NOW = 2    /**< stop now: tasks in flight are abandoned (not_done) */
} gd_stop_level;

typedef enum gd_log_level {
	GD_LOG_ERROR = 0, /**< the run cannot go on as asked (it stops) */
	GD_LOG_WARNING,   /**< something the user should know: a placement warning */
	GD_LOG_INFO       /**< a note: resuming from a journal, CPU workers */
} gd_log_level;

/**
 * Observers of a run, all called on rank 0 in the thread that called
 * gd_run(), each with the worker_id the event came from.  Any may be NULL.
 * The core reports only through these: a dashboard or a progress printer is
 * one more observer (libgpudispatch_ui, gpudispatch_ui.h).
 *
 * ABI: members are only ever added at the end; set size to
 * sizeof(gd_callbacks) (gd_callbacks_init() or `.size = sizeof(cb)`).
 */
typedef struct gd_callbacks {
	size_t size; /**< sizeof(gd_callbacks) as the application was built */
	gd_event_fn on_success;
	gd_event_fn on_error;
	gd_event_fn on_timeout;
	gd_event_fn on_setup_fail;
	gd_event_fn on_cleanup_fail;
	gd_event_fn on_dispatch;
	gd_event_fn on_worker;
	gd_event_fn on_retry;
	gd_event_fn on_not_done;
	/** Exactly once on rank 0 when the run ends (rc: what gd_run returns). */
	void (*on_exit)(void *user, const gd_stats *stats, int rc);
	/** Polled by the dispatcher on every loop: a gd_stop_level. */
	int (*poll_stop)(void *user);
	void *user;
	/** Once on rank 0 when the run has started (its arguments were good),
	 * before any other event: stats has a row per worker (none when the
	 * run failed before it could make them; on_exit follows at once). */
	void (*on_start)(void *user, const gd_stats *stats);
	/** Every cfg.tick_s seconds while the run lasts, with the live
	 * statistics: consistent (the dispatcher's own thread) and valid during
	 * the call only.  What a dashboard or a status file samples. */
	void (*on_tick)(void *user, const gd_stats *stats);
	/** The core's diagnostics on rank 0 (one line, no newline).  NULL:
	 * "gpudispatch[0]: message" on stderr.  Worker ranks write their own
	 * to stderr. */
	void (*on_log)(void *user, gd_log_level level, const char *message);
} gd_callbacks;

/** Zero cb and set its size.  \return 0, or GD_EINVAL (cb NULL, size too small). */
GD_EXPORT int gd_callbacks_init(gd_callbacks *cb, size_t size);

/* ----------------------------------------------------------------- config */

typedef enum gd_isolation {
	GD_ISOLATE_PROCESS = 0, /**< executor process: timeouts and crashes are isolated */
	GD_ISOLATE_NONE         /**< process() runs in the worker rank: fastest, but a
	                              crash kills the job and task_timeout is not enforced */
} gd_isolation;

/**
 * Skip hook (resume): called on rank 0 for each task the generator produced.
 * \return 1 to skip the task (not sent, counted in stats.skipped), 0 to run
 * it, negative to stop the run with that error (e.g. GD_EDIGEST).
 */
typedef int (*gd_skip_fn)(void *user, uint64_t task_id, const void *data, size_t len);

/**
 * The run's configuration.  Fill it with gd_config_init(), which sets size
 * and every default (the defaults live in the library, not in the
 * application), then change what you need.
 *
 * ABI: members are only ever added at the end; the library reads size bytes
 * and takes its defaults for the rest.
 */
typedef struct gd_config {
	size_t size; /**< sizeof(gd_config) as the application was built */
	/** W: tasks a worker holds at most (default 4).  Rank 0 gives it fewer
	 * where more would only unbalance the run: one until a first result,
	 * one for tasks of 1 s or more, else the running task and enough to
	 * cover 10 ms of work, and one for the last tasks by total_hint. */
	unsigned window;
	double task_timeout;     /**< seconds, 0 = none */
	double setup_timeout;    /**< seconds for setup(), 0 = none */
	uint64_t base_seed;      /**< worker seed = base_seed + worker id */
	const gd_kv *setup_args; /**< passed to every setup() */
	size_t n_setup_args;
	gd_isolation isolation;
	unsigned retries; /**< re-runs of a failed/timed-out task (default 0) */
	unsigned
	        max_restarts; /**< executor restarts after which a worker retires (0 = unlimited) */
	/* placement */
	int placement;      /**< 1 = bind each worker to a GPU (default), 0 = do nothing */
	const int *gpu_ids; /**< explicit GPU indices (PCI order) to use, NULL = all */
	size_t n_gpu_ids;
	unsigned workers_per_gpu; /**< >1 allows several workers to share a GPU */
	uint64_t total_hint;      /**< number of tasks when known, 0 = unknown
	                               (the dashboard's progress; the last tasks go
	                               to workers that are free) */
	/* stopping */
	const volatile sig_atomic_t
	        *stop_flag; /**< set by the user's signal handler: a gd_stop_level */
	double grace_s;     /**< seconds tasks in flight may finish after a stop (0 = no limit) */
	/* journal and resume (rank 0) */
	const char *journal; /**< append-only journal of finished tasks, NULL = none */
	int resume;          /**< GD_RESUME_*: what a journal from an earlier run skips */
	int resume_force;    /**< run a task that changed since the journal instead of failing */
	/**
	 * Extra JSON members for a task's journal record, e.g. `"exit":3`:
	 * write at most size bytes to buf (no leading comma) and \return the
	 * length, 0 for none.  Like snprintf, a return >= size means "too
	 * small": it is called once more with a buffer of that length + 1.
	 * Called on rank 0 for each finished task.
	 */
	size_t (*journal_extra)(void *user, const gd_event *ev, char *buf, size_t size);
	void *journal_extra_user;
	gd_skip_fn skip; /**< the user's own skip hook (after the journal's) */
	void *skip_user;
	double tick_s; /**< seconds between on_tick calls (default 0.25, 0 = never) */
	/** 1 (default): a task larger than the eager limit bound for a worker
	 * on rank 0's node goes through shared memory; 0: through MPI. */
	int shm;
	/* halting on a condition (GNU parallel's --halt), rank 0 */
	/** GD_HALT_NEVER (default), GD_HALT_SOON (hand out nothing more; the
	 * tasks in flight finish) or GD_HALT_NOW (the tasks in flight are
	 * abandoned, as by a stop now): what the run does once the condition
	 * of halt_on is met.  stats.halted says that it happened. */
	int halt;
	int halt_on;         /**< GD_HALT_ON_FAIL or GD_HALT_ON_SUCCESS */
	uint64_t halt_count; /**< halt when this many tasks failed (a timeout is a
	                          failure) or succeeded; 0 = use halt_percent */
	/** GD_HALT_ON_FAIL with halt_count 0: halt when at least this percentage
	 * (0 < P <= 100) of the tasks ended so far failed, once 3 have ended. */
	double halt_percent;
	/** GPUs per worker (default 1): each worker gets this many GPUs of its
	 * node that are close to each other (docs/placement.md), at most
	 * GD_MAX_WORKER_GPUS. */
	unsigned gpus_per_worker;
	/** K > 0: a worker whose last K attempts all failed (error, crash or
	 * timeout) while other workers have succeeded is quarantined: it takes
	 * no new task; its failed tasks are retried elsewhere as cfg.retries
	 * allows.  0 (default): never. */
	unsigned quarantine;
	/* walltime (rank 0) */
	/** The wall-clock time (seconds since the epoch, as time() counts)
	 * by which the run must have ended, 0 = none.  Rank 0 starts a task on
	 * a worker only when it is expected to end (see task_time) before
	 * deadline - deadline_margin; when no worker can take one, the run
	 * drains and gd_run() returns GD_EINTR with the rest undone
	 * (stats.held_back).  A task still running at deadline -
	 * deadline_margin / 2 is abandoned (not_done), so that the run has
	 * ended by the deadline. */
	double deadline;
	/** Seconds before the deadline by which the last task should end;
	 * 0 = the default: 2 % of the time from the start to the deadline,
	 * at least 5 s, at most 300 s. */
	double deadline_margin;
	/** Expected run time of a task in seconds, 0 = unknown.  Rank 0
	 * measures it on each worker (the 90th percentile of its last 16
	 * tasks, the run's when the worker has none yet); this is the
	 * estimate before any task has ended, and a lower bound after. */
	double task_time;
	/**
	 * Seconds a rank may stay silent before it is declared lost (default
	 * 20, 0 = never).  Rank 0 and every worker exchange a heartbeat every
	 * quarter of it.  Rank 0 declares a silent worker lost with every
	 * worker on its host: their tasks in flight are not done, the others
	 * drain, and gd_run() returns GD_ELOST on rank 0 and on the workers
	 * that drained; a worker that hears nothing from rank 0 for that long
	 * kills its task and returns GD_ELOST.  After GD_ELOST the final
	 * statistics are not shared (a collective would wait for the lost
	 * ranks) and MPI_Finalize() may never return: end with
	 * MPI_Abort(MPI_COMM_WORLD, code) from rank 0.  With GD_ISOLATE_NONE a
	 * worker cannot answer while process() runs: it is watched only while
	 * it holds no task.
	 */
	double heartbeat_timeout;
} gd_config;

/** cfg.halt: when a halt condition is met (the values of gd_stop_level). */
#define GD_HALT_NEVER 0
#define GD_HALT_SOON  GD_STOP_DRAIN
#define GD_HALT_NOW   GD_STOP_NOW
/** cfg.halt_on: which tasks the condition counts. */
#define GD_HALT_ON_FAIL    1 /**< failed or timed out (after every retry) */
#define GD_HALT_ON_SUCCESS 2 /**< succeeded */
/** Tasks that must have ended before a percentage condition is judged. */
#define GD_HALT_PERCENT_MIN 3

/** cfg.resume: 0 = a fresh run (the journal must not exist or be empty). */
#define GD_RESUME_RETRY_FAILED 1 /**< skip tasks journaled ok; run failed/timed-out ones again */
#define GD_RESUME_SKIP_FAILED  2 /**< skip every journaled task */

/**
 * Fill cfg with the library's defaults: window 4, placement on, one worker
 * per GPU, tick 0.25 s, shared memory on, the rest 0/NULL.  Pass
 * sizeof(*cfg) as size.
 * \return 0, or GD_EINVAL (cfg NULL, or size smaller than the first
 *         release's struct).
 */
GD_EXPORT int gd_config_init(gd_config *cfg, size_t size);

/* -------------------------------------------------------------------- run */

/**
 * Run the tasks.  Collective over comm: rank 0 dispatches, every other rank
 * works.  cls must be the same on every rank; gen, gen_state, cb and cfg are
 * read on rank 0 only (cfg is sent to the workers), but must be valid
 * (non-NULL) everywhere.
 *
 * \param stats  filled on every rank with the final statistics (the same on
 *               every rank); free with gd_stats_free().  May be NULL;
 *               else declared with GD_STATS_INIT (its size is set).
 * \return 0 when every task was produced and reported (some may have failed:
 *         see stats), else a negative GD_E* code, the same on every rank:
 *         GD_EALLSETUP, GD_EGENERATOR, GD_EINTR, GD_ENOWORKER, ...
 * \note Argument errors (GD_EINVAL, GD_EWINDOW, GD_ETIMEOUT, GD_ENOCLASS,
 *       GD_ENOGEN, GD_ENOWORKER; a size of 0 in cfg, cb or stats is
 *       GD_EINVAL) are returned before anything runs, and no callback is
 *       called.  Otherwise on_start, then on_exit, each run exactly once on
 *       rank 0.
 * \note A task larger than 4000 bytes bound for a worker on rank 0's own
 *       node is written by rank 0 into shared memory the worker made (three
 *       buffers per worker, as large as the largest such task), not sent
 *       through MPI; process() reads it there, page-aligned.  cfg.shm = 0
 *       sends every task through MPI.
 */
GD_EXPORT int gd_run(MPI_Comm comm, const gd_worker_class *cls, gd_generator_fn gen,
                     void *gen_state, const gd_callbacks *cb, const gd_config *cfg,
                     gd_stats *stats);

/**
 * Print the placement every worker rank of comm would get under cfg, one row
 * per worker (worker id, host, rank, GPU index, PCI bus id, NUMA node,
 * cpuset), or a JSON array with json != 0, to `out` on rank 0.  Collective.
 * \return 0 or a negative GD_E* code.
 */
GD_EXPORT int gd_placement_report(MPI_Comm comm, const gd_config *cfg, int json, FILE *out);

#ifdef __cplusplus
}
#endif
#endif /* GPUDISPATCH_H */
