/*
 * Reading a failed task's error message on rank 0: its first line.  (How
 * its command ended is no text to parse: it comes as the event's exit.)
 */
#include <string.h>

#include "cli.h"

size_t cli_first_line(const char *msg, size_t max)
{
	size_t n = 0;

	if (!msg)
		return 0;
	while (n < max && msg[n] && msg[n] != '\n')
		n++;
	return n;
}
