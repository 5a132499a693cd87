/*
 * Plain output (internal): the progress line printed every text_interval_s
 * when there is no terminal to draw on (a batch log), and the summary table
 * printed to stdout when a run ends.  Pure functions writing to a FILE*.
 * ASCII only: logs are read with tools that may not expect UTF-8.
 */
#ifndef GD_UI_TEXT_H
#define GD_UI_TEXT_H

#include <stdio.h>

#include "ui_model.h"

/* One progress line, e.g.
 * "[gpudispatch 01:23] 123/1000 (12.3%) ok 120 err 2 timeout 1 | 4.1 tasks/s | ETA 03:34 | workers:
 * 3 processing, 1 idle" */
void gd__ui_text_line(FILE *f, const gd__ui_snap *s);

/* The failure reasons that grew since the last call (shown[] holds each
 * one's count as last printed, GD__REASONS_MAX + 1 of them, zeroed first),
 * one line each, the most frequent first, at most GD__UI_REASON_LINES
 * lines and then one line counting the rest:
 * "gpudispatch: 4x command exited with status 3; stderr: ... (tasks 0, 1, 2, 5)".
 * \return the lines written. */
#define GD__UI_REASON_LINES 5
int gd__ui_text_reasons(FILE *f, const gd__reasons *rs, uint64_t *shown);

/* The summary's verdict: "ok", "some failed (2 of 10 tasks)", "all failed
 * (10 of 10 tasks)", "halted (...)", "interrupted (...)", or the error. */
void gd__ui_result_text(char *buf, size_t n, const gd_stats *st, int rc);

/* The final summary: the verdict, totals, the failure reasons (reasons may
 * be NULL), then one row per worker.  rc: gd_run's result. */
void gd__ui_summary(FILE *f, const gd_stats *st, int rc, const gd__reasons *reasons);

#endif
