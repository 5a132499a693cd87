/*
 * gpudispatch_ui - the dashboard and the plain progress lines, as an
 * observer of a run (libgpudispatch_ui; link it with -lgpudispatch_ui).
 *
 * The core (libgpudispatch) knows nothing of a user interface: it reports
 * through the observers of gd_callbacks (events, on_start, on_tick,
 * on_exit, on_log).  gd_ui_run() is gd_run() with one more observer in
 * front of the application's own: on rank 0 it draws the ncurses dashboard
 * on the job's terminal, or prints a progress line every few seconds
 * without one, and a summary table at the end.  It is the only part of
 * gpudispatch that links ncurses.
 */
#ifndef GPUDISPATCH_UI_H
#define GPUDISPATCH_UI_H

#include "gpudispatch.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum gd_ui_mode {
	GD_UI_NONE = 0, /**< no output at all: gd_ui_run() is gd_run() */
	GD_UI_AUTO,     /**< dashboard on a terminal, plain progress lines otherwise */
	GD_UI_TUI,      /**< the ncurses dashboard (falls back to text without a terminal) */
	GD_UI_TEXT      /**< plain progress lines and a summary */
} gd_ui_mode;

/**
 * How the run is shown (rank 0).  Fill it with gd_ui_options_init().
 * ABI: members are only ever added at the end.
 */
typedef struct gd_ui_options {
	size_t size;            /**< sizeof(gd_ui_options) as the application was built */
	gd_ui_mode mode;        /**< default GD_UI_AUTO */
	double refresh_hz;      /**< dashboard refreshes per second (default 2) */
	double text_interval_s; /**< seconds between plain progress lines (default 5) */
	int monochrome;         /**< dashboard without colours */
	FILE *out;              /**< progress lines and the summary; NULL = stdout */
} gd_ui_options;

/** Fill o with the defaults.  \return 0, or GD_EINVAL (o NULL, size too small). */
GD_EXPORT int gd_ui_options_init(gd_ui_options *o, size_t size);

/**
 * gd_run() with the dashboard or progress lines on rank 0: same arguments,
 * same result, same callbacks (the application's own are called after the
 * dashboard has seen each event).  ui may be NULL (the defaults).  On other
 * ranks, and with mode GD_UI_NONE, it is gd_run().
 * \note The dashboard starts only once the run has started (on_start): a
 *       call that fails on its arguments shows nothing and calls no
 *       callback.  While the dashboard owns the terminal, the core's log
 *       lines are held and written to stderr after it closes; an
 *       application's own on_log, when set, gets them as they come.
 * \note SIGINT, SIGTERM and SIGHUP still at their default action are caught
 *       while the dashboard draws (stop now, terminal restored), and given
 *       back after.
 */
GD_EXPORT int gd_ui_run(MPI_Comm comm, const gd_worker_class *cls, gd_generator_fn gen,
                        void *gen_state, const gd_callbacks *cb, const gd_config *cfg,
                        const gd_ui_options *ui, gd_stats *stats);

#ifdef __cplusplus
}
#endif
#endif /* GPUDISPATCH_UI_H */
