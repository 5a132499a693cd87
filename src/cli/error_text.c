/*
 * Reading a failed task's error message on rank 0: the final exit status or
 * signal in it (the phrases cli_describe_status writes), and its first line.
 */
#include <stdlib.h>
#include <string.h>

#include "cli.h"

/* The last occurrence of needle in hay, NULL when none. */
static const char *last_of(const char *hay, const char *needle)
{
	const char *p, *last = NULL;

	for (p = strstr(hay, needle); p; p = strstr(p + 1, needle))
		last = p;
	return last;
}

/* After retries the message lists every attempt, the last one last: the
 * last phrase is the final status. */
void cli_parse_status(const char *msg, int *exit_status, int *signo)
{
	static const char ex[] = "exited with status ", sig[] = "killed by signal ";
	const char *e, *k;

	*exit_status = -1;
	*signo = -1;
	if (!msg)
		return;
	e = last_of(msg, ex);
	k = last_of(msg, sig);
	if (e && (!k || e > k))
		*exit_status = atoi(e + sizeof(ex) - 1);
	else if (k)
		*signo = atoi(k + sizeof(sig) - 1);
}

size_t cli_first_line(const char *msg, size_t max)
{
	size_t n = 0;

	if (!msg)
		return 0;
	while (n < max && msg[n] && msg[n] != '\n')
		n++;
	return n;
}
