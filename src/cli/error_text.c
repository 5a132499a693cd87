/*
 * A failed task's error message: reading its first line on rank 0, and
 * writing a failed command's error with the end of its standard error.
 * (How its command ended is no text to parse: it comes as the event's exit.)
 */
#include <stdio.h>
#include <string.h>

#include "cli.h"

/* The part of the last stderr line quoted in the error's first line. */
#define QUOTE_MAX 300

size_t cli_first_line(const char *msg, size_t max)
{
	size_t n = 0;

	if (!msg)
		return 0;
	while (n < max && msg[n] && msg[n] != '\n')
		n++;
	return n;
}

size_t cli_stderr_message(char *out, size_t n, const char *what, const char *tail)
{
	const char *last = tail ? strrchr(tail, '\n') : NULL;
	size_t ll;
	int k;

	if (!n)
		return 0;
	if (!tail || !*tail) {
		k = snprintf(out, n, "%s", what);
	} else {
		last = last ? last + 1 : tail;
		ll = strlen(last);
		if (ll > QUOTE_MAX)
			ll = QUOTE_MAX;
		if (last == tail)
			k = snprintf(out, n, "%s; stderr: %.*s", what, (int)ll, last);
		else
			k = snprintf(out, n, "%s; stderr: %.*s\n%s", what, (int)ll, last, tail);
	}
	if (k < 0)
		return 0;
	return (size_t)k < n ? (size_t)k : n - 1;
}
