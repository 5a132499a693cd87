/*
 * The dashboard's view (internal): draws a snapshot into an ncurses window of
 * whatever size it has.  No terminal, thread or MPI code: tests render into a
 * screen made with newterm() and read the cells back.
 */
#ifndef GD_UI_RENDER_H
#define GD_UI_RENDER_H

#include <curses.h>

#include "ui_model.h"

/* Colour pairs the renderer uses (set up by gd__ui_colors_init). */
enum {
	GD__PAIR_INIT = 1, /* blue */
	GD__PAIR_IDLE,     /* green */
	GD__PAIR_BUSY,     /* yellow */
	GD__PAIR_ERROR,    /* red */
	GD__PAIR_DONE      /* green (bold) */
};

/* Failure reasons shown above the footer at most. */
#define GD__UI_REASON_ROWS 3

/* Smallest screen the dashboard draws into; below it a one-line notice. */
#define GD__UI_MIN_COLS 30
#define GD__UI_MIN_ROWS 8

/* What the user controls, plus what the last render measured. */
typedef struct gd__ui_view {
	int scroll;       /* index of the first worker row shown */
	int help;         /* the help box is shown */
	int utf8;         /* draw ✓ ✗ ⏱ ↑↓ (else ASCII) */
	int color;        /* colour pairs are set up (else the monochrome scheme) */
	int rows_visible; /* out: worker rows that fit the last render */
} gd__ui_view;

/*
 * Set up the colour pairs on the current screen unless monochrome is asked or
 * the terminal has no colours.  \return 1 when colours are in use.
 */
int gd__ui_colors_init(int monochrome);

/* The attributes of a status cell: its colour pair, or the monochrome scheme. */
attr_t gd__ui_status_attr(gd_worker_state s, int color);

/* Draw the whole dashboard into w (erases it first; no refresh). */
void gd__ui_render(WINDOW *w, const gd__ui_snap *s, gd__ui_view *v);

/* Apply a scrolling key (enum gd__ui_key) to the view; n: worker rows. */
void gd__ui_view_scroll(gd__ui_view *v, int key, int n);

#endif
