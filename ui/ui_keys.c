/* Parse the dashboard's keys from raw bytes: see ui_keys.h. */
#include <string.h>

#include "ui_keys.h"

/* A complete CSI / SS3 sequence (without the ESC) -> key. */
static int decode(const unsigned char *s, int n)
{
	static const struct {
		const char *seq;
		int key;
	} map[] = {
	        {"[A", GD__KEY_UP},    {"OA", GD__KEY_UP},    {"[B", GD__KEY_DOWN},
	        {"OB", GD__KEY_DOWN},  {"[5~", GD__KEY_PGUP}, {"[6~", GD__KEY_PGDN},
	        {"[H", GD__KEY_HOME},  {"OH", GD__KEY_HOME},  {"[1~", GD__KEY_HOME},
	        {"[7~", GD__KEY_HOME}, {"[F", GD__KEY_END},   {"OF", GD__KEY_END},
	        {"[4~", GD__KEY_END},  {"[8~", GD__KEY_END},
	};
	for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
		if ((int)strlen(map[i].seq) == n && !memcmp(map[i].seq, s, (size_t)n))
			return map[i].key;
	return GD__KEY_OTHER;
}

static int plain(unsigned char c)
{
	switch (c) {
	case 'q':
	case 'Q':
		return GD__KEY_QUIT;
	case 3:
		return GD__KEY_INTR;
	case '?':
	case 'h':
		return GD__KEY_HELP;
	case 'k':
		return GD__KEY_UP;
	case 'j':
		return GD__KEY_DOWN;
	case 'b':
		return GD__KEY_PGUP;
	case ' ':
	case 'f':
		return GD__KEY_PGDN;
	case 'g':
		return GD__KEY_HOME;
	case 'G':
		return GD__KEY_END;
	case 12:
		return GD__KEY_REDRAW;
	case 27:
		return GD__KEY_NONE; /* handled by the caller */
	default:
		return GD__KEY_OTHER;
	}
}

int gd__ui_key_feed(gd__ui_keyparser *p, unsigned char c)
{
	if (p->n == 0) {
		if (c == 27) {
			p->n = 1; /* ESC: a sequence may follow */
			return GD__KEY_NONE;
		}
		return plain(c);
	}
	if (p->n == 1) {
		if (c == '[' || c == 'O') {
			p->seq[p->n++] = c;
			return GD__KEY_NONE;
		}
		/* A lone ESC followed by a plain key: drop the ESC. */
		p->n = 0;
		return gd__ui_key_feed(p, c);
	}
	/* Inside CSI/SS3: parameters until a final byte 0x40..0x7e. */
	if (p->n < (int)sizeof(p->seq))
		p->seq[p->n++] = c;
	if ((c >= 0x40 && c <= 0x7e) || p->n >= (int)sizeof(p->seq)) {
		/* seq[0] is unused (stood for ESC); decode from '[' / 'O'. */
		int key = decode(p->seq + 1, p->n - 1);
		p->n = 0;
		return key;
	}
	return GD__KEY_NONE;
}
