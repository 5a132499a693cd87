/*
 * The command template: the replacement strings ({} {.} {/} {//} {/.} {#}
 * {%}), expanding the template for one task into an argument vector (or a
 * /bin/sh script with --shell), and shell quoting.
 */
#define _GNU_SOURCE /* memrchr */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

enum tok { T_NONE, T_LINE, T_NOEXT, T_BASE, T_DIR, T_BASE_NOEXT, T_ID, T_WORKER };

static const struct {
	const char *s;
	enum tok t;
} tokens[] = {
        /* longest first where one is a prefix of another */
        {"{//}", T_DIR}, {"{/.}", T_BASE_NOEXT}, {"{/}", T_BASE}, {"{.}", T_NOEXT},
        {"{#}", T_ID},   {"{%}", T_WORKER},      {"{}", T_LINE},
};

static enum tok match_token(const char *p, size_t *tlen)
{
	if (*p != '{')
		return T_NONE;
	for (size_t i = 0; i < sizeof(tokens) / sizeof(tokens[0]); i++) {
		size_t n = strlen(tokens[i].s);

		if (!strncmp(p, tokens[i].s, n)) {
			*tlen = n;
			return tokens[i].t;
		}
	}
	return T_NONE;
}

int cli_template_uses_line(char *const *words, int n)
{
	for (int i = 0; i < n; i++)
		for (const char *p = words[i]; *p; p++) {
			size_t tl;
			enum tok t = match_token(p, &tl);

			if (t != T_NONE && t != T_ID && t != T_WORKER)
				return 1;
		}
	return 0;
}

/* The part of the line a token stands for. */
static void token_value(enum tok t, const char *line, size_t len, const char **v, size_t *vn)
{
	const char *slash = memrchr(line, '/', len), *base = slash ? slash + 1 : line;
	size_t blen = len - (size_t)(base - line);
	const char *dot = memrchr(base, '.', blen);

	*v = line;
	*vn = len;
	switch (t) {
	case T_NOEXT:
		if (dot && dot > base)
			*vn = (size_t)(dot - line);
		break;
	case T_BASE:
		*v = base;
		*vn = blen;
		break;
	case T_DIR:
		if (slash) {
			*vn = slash == line ? 1 : (size_t)(slash - line);
		} else {
			*v = ".";
			*vn = 1;
		}
		break;
	case T_BASE_NOEXT:
		*v = base;
		*vn = dot && dot > base ? (size_t)(dot - base) : blen;
		break;
	default:
		break;
	}
}

int cli_shell_quote(cli_buf *b, const char *s, size_t n)
{
	if (cli_buf_add(b, "'", 1))
		return -1;
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '\'') {
			if (cli_buf_add(b, "'\\''", 4))
				return -1;
		} else if (cli_buf_add(b, s + i, 1)) {
			return -1;
		}
	}
	return cli_buf_add(b, "'", 1);
}

/* Append word with its tokens replaced; quote: shell-quote line values. */
static int expand_word(cli_buf *b, const char *w, int quote, const char *line, size_t len,
                       uint64_t id, int worker)
{
	const char *p = w;

	while (*p) {
		size_t tl = 0;
		enum tok t = match_token(p, &tl);
		const char *v;
		size_t vn;

		if (t == T_NONE) {
			const char *next = strchr(p + 1, '{');
			size_t n = next ? (size_t)(next - p) : strlen(p);

			if (cli_buf_add(b, p, n))
				return -1;
			p += n;
			continue;
		}
		p += tl;
		if (t == T_ID) {
			if (cli_buf_printf(b, "%" PRIu64, id))
				return -1;
			continue;
		}
		if (t == T_WORKER) {
			if (cli_buf_printf(b, "%d", worker))
				return -1;
			continue;
		}
		token_value(t, line, len, &v, &vn);
		if (quote ? cli_shell_quote(b, v, vn) : cli_buf_add(b, v, vn))
			return -1;
	}
	return 0;
}

int cli_expand(char *const *words, int n, int shell, const char *line, size_t len, uint64_t id,
               int worker, char ***argv_out)
{
	cli_buf b = {0};
	int nargs = 0, uses_line = cli_template_uses_line(words, n);
	char **argv, *strs;
	size_t ptrs;

	*argv_out = NULL;
	if (shell) {
		/* "/bin/sh" "-c" SCRIPT */
		if (cli_buf_add(&b, "/bin/sh\0-c\0", 11))
			goto oom;
		nargs = 3;
		if (!n) {
			if (cli_buf_add(&b, line, len))
				goto oom;
		} else {
			for (int i = 0; i < n; i++) {
				if (i && cli_buf_add(&b, " ", 1))
					goto oom;
				if (expand_word(&b, words[i], 1, line, len, id, worker))
					goto oom;
			}
			if (!uses_line &&
			    (cli_buf_add(&b, " ", 1) || cli_shell_quote(&b, line, len)))
				goto oom;
		}
		if (cli_buf_add(&b, "", 1))
			goto oom;
	} else {
		for (int i = 0; i < n; i++) {
			if (expand_word(&b, words[i], 0, line, len, id, worker) ||
			    cli_buf_add(&b, "", 1))
				goto oom;
			nargs++;
		}
		if (!uses_line) {
			if (cli_buf_add(&b, line, len) || cli_buf_add(&b, "", 1))
				goto oom;
			nargs++;
		}
	}
	ptrs = ((size_t)nargs + 1) * sizeof(char *);
	argv = malloc(ptrs + b.len);
	if (!argv)
		goto oom;
	strs = (char *)argv + ptrs;
	memcpy(strs, b.p, b.len);
	for (int i = 0; i < nargs; i++) {
		argv[i] = strs;
		strs += strlen(strs) + 1;
	}
	argv[nargs] = NULL;
	cli_buf_free(&b);
	*argv_out = argv;
	return 0;
oom:
	cli_buf_free(&b);
	return -1;
}
