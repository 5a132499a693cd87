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

/* The final summary: totals, then one row per worker.  rc: gd_run's result. */
void gd__ui_summary(FILE *f, const gd_stats *st, int rc);

#endif
