/*
 * Keys for the dashboard (internal).  Under mpirun the keys reach rank 0's
 * standard input as raw bytes (see shared/NOTES.md), not through ncurses, so
 * the escape sequences of arrows and PgUp/PgDn are parsed here.
 */
#ifndef GD_UI_KEYS_H
#define GD_UI_KEYS_H

enum gd__ui_key {
	GD__KEY_NONE = 0, /* nothing yet (inside an escape sequence) or ignored */
	GD__KEY_QUIT,     /* q / Q */
	GD__KEY_INTR,     /* Ctrl-C (byte 3: ISIG is off while the dashboard runs) */
	GD__KEY_HELP,     /* ? / h */
	GD__KEY_UP,       /* ESC [ A, ESC O A, k */
	GD__KEY_DOWN,     /* ESC [ B, ESC O B, j */
	GD__KEY_PGUP,     /* ESC [ 5 ~, b */
	GD__KEY_PGDN,     /* ESC [ 6 ~, space, f */
	GD__KEY_HOME,     /* ESC [ H, ESC [ 1 ~, ESC O H, g */
	GD__KEY_END,      /* ESC [ F, ESC [ 4 ~, ESC O F, G */
	GD__KEY_REDRAW,   /* Ctrl-L */
	GD__KEY_OTHER     /* any other key (closes the help) */
};

typedef struct gd__ui_keyparser {
	unsigned char seq[16]; /* the escape sequence read so far */
	int n;
} gd__ui_keyparser;

/* Feed one byte. \return the key it completes, or GD__KEY_NONE. */
int gd__ui_key_feed(gd__ui_keyparser *p, unsigned char c);

#endif
