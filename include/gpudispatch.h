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

#ifdef __cplusplus
extern "C" {
#endif

#define GD_VERSION_MAJOR 0
#define GD_VERSION_MINOR 1
#define GD_VERSION_PATCH 0

/** \return the library version, "MAJOR.MINOR.PATCH". */
const char *gd_version(void);

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
	XX(ENOTINIT, -18, "MPI is not initialised")

typedef enum gd_errno {
	GD_OK = 0,
#define GD__ERRNO_ENUM(name, val, msg) GD_##name = (val),
	GD_ERRNO_MAP(GD__ERRNO_ENUM)
#undef GD__ERRNO_ENUM
} gd_errno;

/** \return a static message for a gd_errno value ("unknown error" else). */
const char *gd_strerror(int err);

/** \return the symbolic name of a gd_errno value, e.g. "GD_EPROTO". */
const char *gd_err_name(int err);

/* ------------------------------------------------------------------- MPI */

/**
 * Initialise MPI (MPI_Init_thread with MPI_THREAD_FUNNELED) unless the
 * application already did.  Either way of initialising MPI is supported: the
 * library only needs MPI_THREAD_FUNNELED (only the thread that calls gd_run
 * calls MPI; the dashboard thread never does).
 * \return 0, or GD_EMPI.
 */
int gd_init(int *argc, char ***argv);

/**
 * Finalise MPI if it is initialised and not yet finalised.  Call it only if
 * MPI was initialised by gd_init() (or you want the library to finalise it).
 * \return 0, or GD_EMPI.
 */
int gd_finalize(void);

/* ----------------------------------------------------------------- types */

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
const char *gd_args_get(const gd_args *args, const char *key);

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
int gd_worker_id(const gd_worker *w);
/** \return the worker's seed: cfg.base_seed + worker id. */
uint64_t gd_worker_seed(const gd_worker *w);
/** \return the GPU this worker was placed on (index -1: a CPU worker). */
const gd_gpu *gd_worker_gpu(const gd_worker *w);
/** \return the host name the worker runs on. */
const char *gd_worker_host(const gd_worker *w);
/** Attach the user's state to the worker (e.g. the loaded model). */
void gd_worker_set_data(gd_worker *w, void *data);
/** \return what gd_worker_set_data() stored, NULL before. */
void *gd_worker_data(const gd_worker *w);
/**
 * Say why setup() or cleanup() failed; the message reaches on_setup_fail /
 * on_cleanup_fail.  Call it before returning non-zero.
 */
void gd_worker_set_error(gd_worker *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/**
 * Called from process(): the task's run time, and its timeout, count from
 * now rather than from the call of process() -- for a process() that first
 * waits for something that is not the task's own work (e.g. a worker
 * program that is still loading its model).
 */
void gd_worker_task_started(gd_worker *w);
/**
 * Called from process(): count one restart of what this worker runs (e.g.
 * its worker program, started again after it died) in its statistics
 * (gd_worker_stats.restarts, the dashboard's RESTARTS column).
 */
void gd_worker_restarted(gd_worker *w);
/**
 * Called from process(): this worker cannot run tasks (e.g. its worker
 * program exits before it is ready, again and again).  Once process()
 * returns, the task is handed back untried, to run on another worker, and
 * the worker retires as a setup failure with this message (on_setup_fail);
 * cleanup() is not called.  \return GD_EINVAL always, so that
 * `return gd_worker_retire(w, ...);` reads naturally.
 */
int gd_worker_retire(gd_worker *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/**
 * Set the result bytes of the task (copied).  \return 0 or GD_ENOMEM /
 * GD_ETOOBIG.
 */
int gd_result_set(gd_result *r, const void *data, size_t len);
/**
 * \return a pointer to len bytes of result to fill in place (valid until
 * process() returns), or NULL when out of memory or too big.
 */
void *gd_result_reserve(gd_result *r, size_t len);
/**
 * Mark the task failed with a message (process() should then return
 * non-zero).  The message reaches on_error.  \return GD_EINVAL always, so
 * that `return gd_result_error(r, ...);` reads naturally.
 */
int gd_result_error(gd_result *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/**
 * Set the next task's bytes (copied into a buffer the library owns and
 * reuses).  \return 0 or GD_ENOMEM / GD_ETOOBIG.
 */
int gd_buf_set(gd_buf *b, const void *data, size_t len);
/** \return a pointer to len bytes to fill in place, NULL when out of memory. */
void *gd_buf_reserve(gd_buf *b, size_t len);

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
	GD_WS_INIT = 0, /**< started, setup not finished */
	GD_WS_IDLE,     /**< ready, holds no task */
	GD_WS_BUSY,     /**< holds at least one task */
	GD_WS_DONE,     /**< cleaned up and left */
	GD_WS_ERROR     /**< setup failed: takes no task */
} gd_worker_state;

/** \return "initializing", "idle", "processing", "finished" or "error". */
const char *gd_worker_state_name(gd_worker_state s);

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
	uint32_t in_flight;    /**< tasks held now (<= window) */
	uint32_t restarts;     /**< executors replaced after a crash or timeout */
	uint64_t current_task; /**< valid when in_flight > 0 */
	double current_since;  /**< when current_task started (gd_now() clock) */
	double busy_s;         /**< seconds spent on tasks, as the worker measured */
	char message[160];     /**< last setup/cleanup error, "" when none */
} gd_worker_stats;

/**
 * Statistics of a run.  Totals are disjoint: every task that was produced
 * ends as exactly one of completed, failed, timed_out or not_done.
 */
typedef struct gd_stats {
	uint64_t total;      /**< tasks produced by the generator and sent (not skipped) */
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
} gd_stats;

/** Free what gd_run() allocated in stats (safe on a zeroed struct). */
void gd_stats_free(gd_stats *stats);

/** \return a monotonic clock in seconds (the clock of current_since). */
double gd_now(void);

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
} gd_event;

typedef void (*gd_event_fn)(void *user, const gd_event *ev);

/**
 * Callbacks, all called on rank 0 in the thread that called gd_run(), each
 * with the worker_id the event came from.  Any may be NULL.
 */
typedef struct gd_callbacks {
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
	/** Polled by the dispatcher: 1 = stop handing out tasks (drain), 2 = stop now. */
	int (*poll_stop)(void *user);
	void *user;
} gd_callbacks;

/* ----------------------------------------------------------------- config */

typedef enum gd_ui_mode {
	GD_UI_NONE = 0, /**< no output at all; statistics are still returned */
	GD_UI_AUTO,     /**< dashboard on a terminal, plain progress lines otherwise */
	GD_UI_TUI,      /**< the ncurses dashboard (falls back to text without a terminal) */
	GD_UI_TEXT      /**< plain progress lines and a summary */
} gd_ui_mode;

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

typedef struct gd_config {
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
	/* user interface (rank 0) */
	gd_ui_mode ui;
	double refresh_hz;      /**< dashboard refreshes per second (default 2) */
	double text_interval_s; /**< seconds between plain progress lines (default 5) */
	int monochrome;         /**< dashboard without colours */
	uint64_t total_hint;    /**< number of tasks when known, 0 = unknown
	                             (the dashboard's progress; the last tasks go
	                             to workers that are free) */
	/* stopping */
	const volatile sig_atomic_t
	        *stop_flag; /**< set by the user's signal handler: 1 drain, 2 now */
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
} gd_config;

/** cfg.resume: 0 = a fresh run (the journal must not exist or be empty). */
#define GD_RESUME_RETRY_FAILED 1 /**< skip tasks journaled ok; run failed/timed-out ones again */
#define GD_RESUME_SKIP_FAILED  2 /**< skip every journaled task */

/** Fill cfg with the defaults. */
void gd_config_init(gd_config *cfg);

#define GD_CONFIG_DEFAULT                                                                          \
	((gd_config){.window = 4,                                                                  \
	             .placement = 1,                                                               \
	             .workers_per_gpu = 1,                                                         \
	             .ui = GD_UI_AUTO,                                                             \
	             .refresh_hz = 2.0,                                                            \
	             .text_interval_s = 5.0})

/* -------------------------------------------------------------------- run */

/**
 * Run the tasks.  Collective over comm: rank 0 dispatches, every other rank
 * works.  cls must be the same on every rank; gen, gen_state, cb and cfg are
 * read on rank 0 only (cfg is sent to the workers), but must be valid
 * (non-NULL) everywhere.
 *
 * \param stats  filled on every rank with the final statistics (the same on
 *               every rank); free with gd_stats_free().  May be NULL.
 * \return 0 when every task was produced and reported (some may have failed:
 *         see stats), else a negative GD_E* code, the same on every rank:
 *         GD_EALLSETUP, GD_EGENERATOR, GD_EINTR, GD_ENOWORKER, ...
 * \note Argument errors (GD_EINVAL, GD_EWINDOW, GD_ETIMEOUT, GD_ENOCLASS,
 *       GD_ENOGEN, GD_ENOWORKER) are returned before anything runs, and no
 *       callback is called.  Otherwise on_exit runs exactly once on rank 0.
 * \note A task larger than 4000 bytes bound for a worker on rank 0's own
 *       node is written by rank 0 into shared memory the worker made (three
 *       buffers per worker, as large as the largest such task), not sent
 *       through MPI; process() reads it there, page-aligned.  Set
 *       GPUDISPATCH_SHM=0 in rank 0's environment to send every task
 *       through MPI.
 */
int gd_run(MPI_Comm comm, const gd_worker_class *cls, gd_generator_fn gen, void *gen_state,
           const gd_callbacks *cb, const gd_config *cfg, gd_stats *stats);

/**
 * Print the placement every worker rank of comm would get under cfg, one row
 * per worker (worker id, host, rank, GPU index, PCI bus id, NUMA node,
 * cpuset), or a JSON array with json != 0, to `out` on rank 0.  Collective.
 * \return 0 or a negative GD_E* code.
 */
int gd_placement_report(MPI_Comm comm, const gd_config *cfg, int json, void *out_file);

#ifdef __cplusplus
}
#endif
#endif /* GPUDISPATCH_H */
