/*
 * Reading the tasks: the streaming line reader over a task file or standard
 * input (flat memory, --max-line), blank and comment lines, and encoding a
 * line as the task bytes the generator sends (CLI_TASK_*).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

#define READ_CHUNK (64 * 1024)

int cli_reader_open(cli_reader *r, const char *path, size_t max_line)
{
	memset(r, 0, sizeof(*r));
	r->max_line = max_line ? max_line : CLI_DEFAULT_MAX_LINE;
	if (!strcmp(path, "-")) {
		r->fd = 0;
	} else {
		r->fd = open(path, O_RDONLY | O_CLOEXEC);
		if (r->fd < 0)
			return -errno;
		r->own_fd = 1;
	}
	r->cap = READ_CHUNK;
	r->buf = malloc(r->cap);
	if (!r->buf) {
		cli_reader_close(r);
		return -ENOMEM;
	}
	return 0;
}

void cli_reader_close(cli_reader *r)
{
	if (r->own_fd && r->fd >= 0)
		close(r->fd);
	r->fd = -1;
	r->own_fd = 0;
	free(r->buf);
	r->buf = NULL;
	cli_buf_free(&r->line);
}

int cli_reader_next(cli_reader *r, cli_line *l)
{
	size_t total = 0, keep = r->max_line + 1; /* +1: a CR to strip, or to tell "too long" */
	int have = 0;

	r->line.len = 0;
	if (cli_buf_add(&r->line, "", 0))
		return -ENOMEM;
	for (;;) {
		char *nl;
		size_t chunk, take;

		if (r->pos == r->end) {
			ssize_t n;

			if (r->eof)
				break;
			n = read(r->fd, r->buf, r->cap);
			if (n < 0) {
				if (errno == EINTR)
					continue;
				return -errno;
			}
			r->pos = 0;
			r->end = (size_t)n;
			if (n == 0)
				r->eof = 1;
			continue;
		}
		have = 1;
		nl = memchr(r->buf + r->pos, '\n', r->end - r->pos);
		chunk = nl ? (size_t)(nl - (r->buf + r->pos)) : r->end - r->pos;
		take = r->line.len < keep ? keep - r->line.len : 0;
		if (take > chunk)
			take = chunk;
		if (take && cli_buf_add(&r->line, r->buf + r->pos, take))
			return -ENOMEM;
		total += chunk;
		r->pos += chunk;
		if (nl) {
			r->pos++;
			break;
		}
	}
	if (!have)
		return 0;
	if (total && total == r->line.len && r->line.p[total - 1] == '\r') {
		r->line.p[--r->line.len] = '\0';
		total--;
	}
	l->too_long = total > r->max_line;
	if (l->too_long) {
		r->line.len = r->max_line;
		r->line.p[r->line.len] = '\0';
	}
	l->data = r->line.p;
	l->len = r->line.len;
	l->full_len = total;
	l->index = r->n_lines++;
	return 1;
}

int cli_line_skipped(const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (p[i] == ' ' || p[i] == '\t' || p[i] == '\r' || p[i] == '\v' || p[i] == '\f')
			continue;
		return p[i] == '#';
	}
	return 1;
}

int cli_task_encode(const cli_line *l, const char *file, cli_buf *out)
{
	char kind;

	out->len = 0;
	if (cli_line_skipped(l->data, l->len)) {
		kind = CLI_TASK_SKIP;
		return cli_buf_add(out, &kind, 1);
	}
	if (l->too_long) {
		kind = CLI_TASK_BAD;
		if (cli_buf_add(out, &kind, 1))
			return -1;
		return cli_buf_printf(
		        out, "line %" PRIu64 " of %s is %zu bytes, longer than --max-line %zu",
		        l->index + 1, strcmp(file, "-") ? file : "standard input", l->full_len,
		        l->len);
	}
	kind = CLI_TASK_LINE;
	if (cli_buf_add(out, &kind, 1))
		return -1;
	return cli_buf_add(out, l->data, l->len);
}
