/*
 * The command's pure parts, without MPI: the command line, the streaming
 * task-file reader, `{}` substitution and JSON escaping.  Everything here is
 * unit-tested by tests/test_cli_tasks.c.
 */
#define _GNU_SOURCE /* pipe2, execvpe, close_range, memrchr, O_TMPFILE */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

/* ------------------------------------------------------------- byte buffer */

static int buf_reserve(cli_buf *b, size_t extra)
{
	size_t need, cap;
	char *p;

	if (extra > SIZE_MAX - b->len - 1)
		return -1;
	need = b->len + extra + 1;
	if (need <= b->cap)
		return 0;
	cap = b->cap ? b->cap : 64;
	while (cap < need)
		cap = cap > SIZE_MAX / 2 ? need : cap * 2;
	p = realloc(b->p, cap);
	if (!p)
		return -1;
	b->p = p;
	b->cap = cap;
	return 0;
}

int cli_buf_add(cli_buf *b, const void *data, size_t n)
{
	if (buf_reserve(b, n))
		return -1;
	if (n)
		memcpy(b->p + b->len, data, n);
	b->len += n;
	b->p[b->len] = '\0';
	return 0;
}

int cli_buf_adds(cli_buf *b, const char *s)
{
	return cli_buf_add(b, s, strlen(s));
}

int cli_buf_printf(cli_buf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0 || buf_reserve(b, (size_t)n))
		return -1;
	va_start(ap, fmt);
	vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
	return 0;
}

void cli_buf_free(cli_buf *b)
{
	free(b->p);
	b->p = NULL;
	b->len = b->cap = 0;
}

/* ------------------------------------------------------------ command line */

void cli_usage(FILE *out)
{
	fputs("usage: gpudispatch run --tasks FILE|- [options] [--] CMD [ARGS...]\n"
	      "       gpudispatch run --tasks FILE|- [options] --worker-cmd \"PROG ARGS\"\n"
	      "       gpudispatch run --tasks FILE|- [options] --shell\n"
	      "       gpudispatch placement [--json] [--gpus LIST] [--workers-per-gpu N]\n"
	      "       gpudispatch --help | --version\n"
	      "\n"
	      "Run one task per line of a task file on the workers of an MPI job (rank 0\n"
	      "dispatches, every other rank is a worker on its own GPU), e.g.\n"
	      "  mpirun -n 9 gpudispatch run --tasks tasks.txt -- python infer.py --input {}\n"
	      "\n"
	      "Tasks: task id = 0-based line number; blank lines and lines whose first\n"
	      "non-blank character is '#' are skipped (they keep their id).\n"
	      "\n"
	      "Command mode: replacement strings in CMD ARGS (no shell unless --shell):\n"
	      "  {}  the line     {.} the line without extension   {/} basename\n"
	      "  {//} dirname     {/.} basename without extension\n"
	      "  {#} the task id  {%} the worker id\n"
	      "  Without any of {} {.} {/} {//} {/.} the line is appended as the last argument.\n"
	      "  The task succeeds when the command exits with status 0.\n"
	      "\n"
	      "Options:\n"
	      "  --tasks FILE|-        the task file, or - for standard input (required)\n"
	      "  --worker-cmd \"CMD\"    persistent-worker mode: run CMD (with /bin/sh -c) once "
	      "per\n"
	      "                        worker and hand it task after task: in frames over its\n"
	      "                        own pipes when it speaks protocol 2 (the Python package\n"
	      "                        does), else one line in on standard input, one result\n"
	      "                        line out on standard output (docs/protocol.md)\n"
	      "  --shell               run the command as a /bin/sh script, the line "
	      "single-quoted\n"
	      "                        where {} stands; with no command each line is a script\n"
	      "  --timeout SECONDS     kill a task (its whole process group) after SECONDS and\n"
	      "                        report a timeout (default: no limit)\n"
	      "  --retries N           run a failed or timed-out task up to N more times (default "
	      "0)\n"
	      "  --output-dir DIR      keep each task's output in DIR/ID.out and DIR/ID.err\n"
	      "                        (persistent workers: DIR/worker-W.err, or\n"
	      "                        DIR/worker-W.log with protocol 2)\n"
	      "  --quiet               discard the tasks' output (default: standard output is\n"
	      "                        discarded, the last line of standard error is reported)\n"
	      "  --results FILE        write one JSON Lines record per finished task to FILE\n"
	      "                        (replaced, unless --resume)\n"
	      "  --resume              continue an interrupted run: skip the tasks recorded ok in\n"
	      "                        the results file, run the others, append their records\n"
	      "  --skip-failed         with --resume: do not run failed or timed-out tasks again\n"
	      "  --resume-force        --resume even where a task line changed since its record\n"
	      "                        (without it a changed task stops the run, exit status 2)\n"
	      "  --max-line BYTES      longest task line; a longer line is a failed task\n"
	      "                        (default 1048576)\n"
	      "  --window N            tasks a worker holds at most (default 4)\n"
	      "  --seed N              base seed: worker seed = N + worker id (default 0);\n"
	      "                        GPUDISPATCH_SEED in a worker program's environment\n"
	      "  --setup-arg KEY=VALUE a setup argument (repeatable): GPUDISPATCH_SETUP_ARGS\n"
	      "                        (a JSON object) for worker programs and tasks, keyword\n"
	      "                        arguments of setup() in the Python package\n"
	      "  --start-failures K    retire a worker whose program ended before it was ready\n"
	      "                        (or before its first answer) K times in a row (default "
	      "3)\n"
	      "  --setup-timeout SECONDS  longest a worker's setup (a worker program's start up\n"
	      "                        to READY) may take (default: no limit)\n"
	      "  --grace SECONDS       after a stop signal, time the tasks in flight may take\n"
	      "                        before they are killed (default: no limit)\n"
	      "  --ui auto|tui|text|none  the dashboard (default auto)\n"
	      "  --refresh HZ          dashboard refreshes per second (default 2)\n"
	      "  --monochrome          dashboard without colours\n"
	      "  --gpus LIST           use only these GPU indices, e.g. 0,1,3 (default all)\n"
	      "  --workers-per-gpu N   let N workers share a GPU (default 1)\n"
	      "  --no-placement        do not bind workers to GPUs or cores\n"
	      "  --json                (placement) print JSON\n"
	      "  -h, --help            this text\n"
	      "  -V, --version         the version\n"
	      "\n"
	      "Exit status: 0 every task succeeded, 1 some task failed or timed out, 2 bad usage\n"
	      "or input, 3 interrupted by SIGINT/SIGTERM/SIGUSR1 (run the same command again\n"
	      "with --resume to run the rest), 4 the run failed (no worker could start, MPI or I/O "
	      "error).\n"
	      "See docs/cli.md for the results format and the worker line protocol.\n",
	      out);
}

static int fail(char *err, size_t errlen, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));
static int fail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return -1;
}

static int parse_u64(const char *s, uint64_t max, uint64_t *out)
{
	char *end;
	unsigned long long v;

	if (!*s || *s == '-' || *s == '+' || *s == ' ')
		return -1;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || *end || v > max)
		return -1;
	*out = v;
	return 0;
}

static int parse_seconds(const char *s, double *out)
{
	char *end;
	double v;

	if (!*s)
		return -1;
	errno = 0;
	v = strtod(s, &end);
	if (errno || *end || !isfinite(v) || v < 0)
		return -1;
	*out = v;
	return 0;
}

static int parse_gpus(const char *s, cli_opts *o)
{
	const char *p = s;

	o->n_gpu_ids = 0;
	while (*p) {
		char *end;
		long v;

		if (*p < '0' || *p > '9')
			return -1;
		errno = 0;
		v = strtol(p, &end, 10);
		if (errno || v > 4095 || o->n_gpu_ids >= sizeof(o->gpu_ids) / sizeof(o->gpu_ids[0]))
			return -1;
		o->gpu_ids[o->n_gpu_ids++] = (int)v;
		p = end;
		if (*p == ',' && p[1])
			p++;
		else if (*p)
			return -1;
	}
	return o->n_gpu_ids ? 0 : -1;
}

/* 1 when s holds a replacement string (only meaningful in the command). */
static int has_token(const char *s)
{
	static const char *const toks[] = {"{}", "{#}", "{%}", "{.}", "{/}", "{//}", "{/.}"};

	for (size_t i = 0; i < sizeof(toks) / sizeof(toks[0]); i++)
		if (strstr(s, toks[i]))
			return 1;
	return 0;
}

enum opt_kind { O_FLAG, O_VALUE };

struct opt {
	const char *name;
	enum opt_kind kind;
	int run, placement; /* valid for */
};

static const struct opt opts_table[] = {
        {"tasks", O_VALUE, 1, 0},         {"worker-cmd", O_VALUE, 1, 0},
        {"shell", O_FLAG, 1, 0},          {"timeout", O_VALUE, 1, 0},
        {"retries", O_VALUE, 1, 0},       {"output-dir", O_VALUE, 1, 0},
        {"quiet", O_FLAG, 1, 0},          {"results", O_VALUE, 1, 0},
        {"resume", O_FLAG, 1, 0},         {"resume-force", O_FLAG, 1, 0},
        {"skip-failed", O_FLAG, 1, 0},    {"max-line", O_VALUE, 1, 0},
        {"window", O_VALUE, 1, 0},        {"seed", O_VALUE, 1, 0},
        {"grace", O_VALUE, 1, 0},         {"ui", O_VALUE, 1, 0},
        {"refresh", O_VALUE, 1, 0},       {"monochrome", O_FLAG, 1, 0},
        {"gpus", O_VALUE, 1, 1},          {"workers-per-gpu", O_VALUE, 1, 1},
        {"no-placement", O_FLAG, 1, 1},   {"json", O_FLAG, 0, 1},
        {"help", O_FLAG, 1, 1},           {"version", O_FLAG, 1, 1},
        {"setup-arg", O_VALUE, 1, 0},     {"start-failures", O_VALUE, 1, 0},
        {"setup-timeout", O_VALUE, 1, 0},
};

/* A --setup-arg key: a name a program can take as a keyword argument. */
static int valid_key(const char *k, size_t n)
{
	if (!n || n > 200 || !(isalpha((unsigned char)k[0]) || k[0] == '_'))
		return 0;
	for (size_t i = 1; i < n; i++)
		if (!(isalnum((unsigned char)k[i]) || k[i] == '_'))
			return 0;
	return 1;
}

static int add_setup_arg(cli_opts *o, const char *val, char *err, size_t errlen)
{
	const char *eq = strchr(val, '=');
	size_t kl = eq ? (size_t)(eq - val) : 0;

	if (!eq)
		return fail(err, errlen, "--setup-arg: '%s' is not KEY=VALUE", val);
	if (!valid_key(val, kl))
		return fail(err, errlen,
		            "--setup-arg: the key '%.*s' is not a name (letters, digits and _, "
		            "not starting with a digit)",
		            (int)kl, val);
	for (size_t i = 0; i < o->n_setup_args; i++)
		if (!strncmp(o->setup_args[i], val, kl + 1))
			return fail(err, errlen, "--setup-arg: the key '%.*s' is given twice",
			            (int)kl, val);
	if (o->n_setup_args >= CLI_MAX_SETUP_ARGS)
		return fail(err, errlen, "--setup-arg: more than %d of them", CLI_MAX_SETUP_ARGS);
	o->setup_args[o->n_setup_args++] = val;
	return 0;
}

static int set_opt(cli_opts *o, const char *name, const char *val, char *err, size_t errlen)
{
	uint64_t u;

#define BAD(what) fail(err, errlen, "--%s: '%s' is not %s", name, val, what)
	if (!strcmp(name, "tasks")) {
		o->tasks = val;
	} else if (!strcmp(name, "worker-cmd")) {
		o->worker_cmd = val;
	} else if (!strcmp(name, "shell")) {
		o->shell = 1;
	} else if (!strcmp(name, "timeout")) {
		if (parse_seconds(val, &o->timeout))
			return BAD("a number of seconds >= 0");
	} else if (!strcmp(name, "grace")) {
		if (parse_seconds(val, &o->grace))
			return BAD("a number of seconds >= 0");
	} else if (!strcmp(name, "retries")) {
		if (parse_u64(val, 1000, &u))
			return BAD("a whole number from 0 to 1000");
		o->retries = (unsigned)u;
	} else if (!strcmp(name, "output-dir")) {
		if (!*val)
			return fail(err, errlen, "--output-dir: the directory name is empty");
		o->out_dir = val;
	} else if (!strcmp(name, "quiet")) {
		o->quiet = 1;
	} else if (!strcmp(name, "results")) {
		if (!*val)
			return fail(err, errlen, "--results: the file name is empty");
		o->results = val;
	} else if (!strcmp(name, "resume")) {
		o->resume = 1;
	} else if (!strcmp(name, "resume-force")) {
		o->resume = o->resume_force = 1;
	} else if (!strcmp(name, "skip-failed")) {
		o->skip_failed = 1;
	} else if (!strcmp(name, "max-line")) {
		if (parse_u64(val, 1u << 30, &u) || u == 0)
			return BAD("a number of bytes from 1 to 1073741824");
		o->max_line = (size_t)u;
	} else if (!strcmp(name, "window")) {
		if (parse_u64(val, 1u << 20, &u) || u == 0)
			return BAD("a whole number >= 1");
		o->window = (unsigned)u;
	} else if (!strcmp(name, "seed")) {
		if (parse_u64(val, UINT64_MAX, &o->seed))
			return BAD("a whole number >= 0");
	} else if (!strcmp(name, "ui")) {
		if (!strcmp(val, "auto"))
			o->ui = GD_UI_AUTO;
		else if (!strcmp(val, "tui"))
			o->ui = GD_UI_TUI;
		else if (!strcmp(val, "text"))
			o->ui = GD_UI_TEXT;
		else if (!strcmp(val, "none"))
			o->ui = GD_UI_NONE;
		else
			return BAD("one of auto, tui, text, none");
	} else if (!strcmp(name, "refresh")) {
		if (parse_seconds(val, &o->refresh) || o->refresh <= 0 || o->refresh > 100)
			return BAD("a rate in Hz above 0 and at most 100");
	} else if (!strcmp(name, "monochrome")) {
		o->monochrome = 1;
	} else if (!strcmp(name, "gpus")) {
		if (parse_gpus(val, o))
			return BAD("a comma-separated list of GPU indices like 0,1,3");
	} else if (!strcmp(name, "workers-per-gpu")) {
		if (parse_u64(val, 1024, &u) || u == 0)
			return BAD("a whole number from 1 to 1024");
		o->workers_per_gpu = (unsigned)u;
	} else if (!strcmp(name, "no-placement")) {
		o->placement = 0;
	} else if (!strcmp(name, "json")) {
		o->json = 1;
	} else if (!strcmp(name, "setup-arg")) {
		return add_setup_arg(o, val, err, errlen);
	} else if (!strcmp(name, "start-failures")) {
		if (parse_u64(val, 1000, &u) || u == 0)
			return BAD("a whole number from 1 to 1000");
		o->start_failures = (unsigned)u;
	} else if (!strcmp(name, "setup-timeout")) {
		if (parse_seconds(val, &o->setup_timeout))
			return BAD("a number of seconds >= 0");
	} else if (!strcmp(name, "help")) {
		o->cmd = CLI_CMD_HELP;
	} else if (!strcmp(name, "version")) {
		o->cmd = CLI_CMD_VERSION;
	}
#undef BAD
	return 0;
}

static int check_run(cli_opts *o, char *err, size_t errlen)
{
	const char *named[] = {o->tasks, o->results, o->out_dir};
	const char *names[] = {"--tasks", "--results", "--output-dir"};

	if (!o->tasks)
		return fail(err, errlen,
		            "run: --tasks FILE is required (use --tasks - for standard input)");
	for (int i = 0; i < 3; i++)
		if (named[i] && has_token(named[i]))
			return fail(err, errlen,
			            "%s '%s': replacement strings like {} are only replaced in the "
			            "command",
			            names[i], named[i]);
	if (o->resume && !o->results)
		return fail(
		        err, errlen,
		        "--resume needs --results FILE: the tasks recorded ok there are skipped");
	if (o->skip_failed && !o->resume)
		return fail(err, errlen, "--skip-failed only applies with --resume");
	if (o->quiet && o->out_dir)
		return fail(err, errlen,
		            "--quiet and --output-dir contradict each other: choose one");
	if (o->worker_cmd) {
		if (o->argc)
			return fail(
			        err, errlen,
			        "--worker-cmd and a command (%s) were both given: choose one mode",
			        o->argv[0]);
		if (o->shell)
			return fail(err, errlen,
			            "--shell is for command mode; --worker-cmd already runs with "
			            "/bin/sh -c");
		if (!*o->worker_cmd)
			return fail(err, errlen, "--worker-cmd: the command is empty");
		if (has_token(o->worker_cmd))
			return fail(err, errlen,
			            "--worker-cmd '%s': {} misuse: a persistent worker reads each "
			            "task line "
			            "on its standard input, so replacement strings like {} are not "
			            "replaced",
			            o->worker_cmd);
		return 0;
	}
	if (!o->argc && !o->shell)
		return fail(err, errlen,
		            "run: missing the command: give -- CMD ARGS..., --shell, or "
		            "--worker-cmd \"PROG\"");
	if (o->argc && !o->shell && (!strcmp(o->argv[0], "{#}") || !strcmp(o->argv[0], "{%}")))
		return fail(err, errlen, "{} misuse: the program name '%s' is a task or worker id",
		            o->argv[0]);
	return 0;
}

int cli_parse_args(int argc, char **argv, cli_opts *o, char *err, size_t errlen)
{
	int i = 1, placement_cmd = 0;

	memset(o, 0, sizeof(*o));
	o->ui = GD_UI_AUTO;
	o->placement = 1;
	o->max_line = CLI_DEFAULT_MAX_LINE;
	if (errlen)
		err[0] = '\0';

	if (argc < 2)
		return fail(err, errlen, "missing the command: run or placement (see --help)");
	if (!strcmp(argv[1], "run")) {
		i = 2;
	} else if (!strcmp(argv[1], "placement")) {
		placement_cmd = 1;
		i = 2;
	} else if (!strcmp(argv[1], "help")) {
		o->cmd = CLI_CMD_HELP;
		return 0;
	} else if (argv[1][0] != '-') {
		return fail(err, errlen,
		            "unknown command '%s': expected run or placement (see --help)",
		            argv[1]);
	}
	o->cmd = placement_cmd ? CLI_CMD_PLACEMENT : CLI_CMD_RUN;

	for (; i < argc; i++) {
		const char *a = argv[i], *name, *val = NULL, *eq;
		const struct opt *op = NULL;
		char nbuf[64];

		if (!strcmp(a, "--")) {
			i++;
			break;
		}
		if (a[0] != '-' || !a[1])
			break; /* the command starts here */
		if (!strcmp(a, "-h")) {
			a = "--help";
		} else if (!strcmp(a, "-V")) {
			a = "--version";
		} else if (!strcmp(a, "-q")) {
			a = "--quiet";
		} else if (a[1] != '-') {
			return fail(err, errlen, "unknown option '%s' (see --help)", a);
		}
		name = a + 2;
		eq = strchr(name, '=');
		if (eq) {
			size_t n = (size_t)(eq - name);

			if (n >= sizeof(nbuf))
				return fail(err, errlen, "unknown option '%s' (see --help)", a);
			memcpy(nbuf, name, n);
			nbuf[n] = '\0';
			name = nbuf;
			val = eq + 1;
		}
		for (size_t k = 0; k < sizeof(opts_table) / sizeof(opts_table[0]); k++)
			if (!strcmp(opts_table[k].name, name))
				op = &opts_table[k];
		if (!op)
			return fail(err, errlen, "unknown option '%s' (see --help)", a);
		if (placement_cmd ? !op->placement : !op->run)
			return fail(err, errlen, "option --%s does not apply to '%s'", name,
			            placement_cmd ? "placement" : "run");
		if (op->kind == O_FLAG && val)
			return fail(err, errlen, "option --%s takes no value", name);
		if (op->kind == O_VALUE && !val) {
			if (i + 1 >= argc)
				return fail(err, errlen, "option --%s needs a value", name);
			val = argv[++i];
		}
		if (set_opt(o, name, val ? val : "", err, errlen))
			return -1;
		if (o->cmd == CLI_CMD_HELP || o->cmd == CLI_CMD_VERSION)
			return 0;
	}
	if (i < argc) {
		if (placement_cmd)
			return fail(err, errlen, "placement takes no command (got '%s')", argv[i]);
		o->argv = argv + i;
		o->argc = argc - i;
	}
	if (placement_cmd)
		return 0;
	return check_run(o, err, errlen);
}

/* ---------------------------------------------------------------- task file */

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

/* ------------------------------------------------------------ substitution */

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

/* -------------------------------------------------------------------- JSON */

/* Length of the valid UTF-8 sequence at s (RFC 3629), 0 when invalid. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
	unsigned char c = s[0], lo = 0x80, hi = 0xbf;
	size_t len;

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		len = 2;
	else if (c >= 0xe0 && c <= 0xef)
		len = 3;
	else if (c >= 0xf0 && c <= 0xf4)
		len = 4;
	else
		return 0;
	if (n < len)
		return 0;
	if (c == 0xe0)
		lo = 0xa0; /* no overlong */
	else if (c == 0xed)
		hi = 0x9f; /* no surrogates */
	else if (c == 0xf0)
		lo = 0x90; /* no overlong */
	else if (c == 0xf4)
		hi = 0x8f; /* <= U+10FFFF */
	if (s[1] < lo || s[1] > hi)
		return 0;
	for (size_t i = 2; i < len; i++)
		if (s[i] < 0x80 || s[i] > 0xbf)
			return 0;
	return len;
}

int cli_json_str(cli_buf *b, const void *data, size_t n)
{
	const unsigned char *s = data;
	size_t i = 0;

	if (cli_buf_add(b, "\"", 1))
		return -1;
	while (i < n) {
		unsigned char c = s[i];
		size_t run = i;
		const char *esc = NULL;
		char ubuf[8];

		/* copy a run of plain printable ASCII at once */
		while (run < n && s[run] >= 0x20 && s[run] < 0x80 && s[run] != '"' &&
		       s[run] != '\\')
			run++;
		if (run > i) {
			if (cli_buf_add(b, s + i, run - i))
				return -1;
			i = run;
			continue;
		}
		if (c >= 0x80) {
			size_t ul = utf8_len(s + i, n - i);

			if (ul) {
				if (cli_buf_add(b, s + i, ul))
					return -1;
				i += ul;
			} else {
				if (cli_buf_add(b, "\\ufffd", 6))
					return -1;
				i++;
			}
			continue;
		}
		switch (c) {
		case '"':
			esc = "\\\"";
			break;
		case '\\':
			esc = "\\\\";
			break;
		case '\n':
			esc = "\\n";
			break;
		case '\r':
			esc = "\\r";
			break;
		case '\t':
			esc = "\\t";
			break;
		case '\b':
			esc = "\\b";
			break;
		case '\f':
			esc = "\\f";
			break;
		default:
			snprintf(ubuf, sizeof(ubuf), "\\u%04x", c);
			esc = ubuf;
		}
		if (cli_buf_adds(b, esc))
			return -1;
		i++;
	}
	return cli_buf_add(b, "\"", 1);
}

int cli_utf8_valid(const void *data, size_t n)
{
	const unsigned char *s = data;

	for (size_t i = 0; i < n;) {
		size_t ul = utf8_len(s + i, n - i);

		if (!ul)
			return 0;
		i += ul;
	}
	return 1;
}

int cli_base64(cli_buf *b, const void *data, size_t n)
{
	static const char tab[] =
	        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	const unsigned char *s = data;
	char q[4];

	for (size_t i = 0; i < n; i += 3) {
		unsigned v = (unsigned)s[i] << 16;

		if (i + 1 < n)
			v |= (unsigned)s[i + 1] << 8;
		if (i + 2 < n)
			v |= s[i + 2];
		q[0] = tab[(v >> 18) & 63];
		q[1] = tab[(v >> 12) & 63];
		q[2] = i + 1 < n ? tab[(v >> 6) & 63] : '=';
		q[3] = i + 2 < n ? tab[v & 63] : '=';
		if (cli_buf_add(b, q, 4))
			return -1;
	}
	return 0;
}

/* A JSON checker (RFC 8259): a recursive descent over one value. */
typedef struct jscan {
	const unsigned char *s;
	size_t n, i;
	unsigned depth;
} jscan;

#define JSON_MAX_DEPTH 256

static void js_ws(jscan *j)
{
	while (j->i < j->n && (j->s[j->i] == ' ' || j->s[j->i] == '\t' || j->s[j->i] == '\n' ||
	                       j->s[j->i] == '\r'))
		j->i++;
}

static int js_lit(jscan *j, const char *lit)
{
	size_t l = strlen(lit);

	if (j->n - j->i < l || memcmp(j->s + j->i, lit, l))
		return -1;
	j->i += l;
	return 0;
}

static int js_hex4(jscan *j)
{
	for (int k = 0; k < 4; k++, j->i++)
		if (j->i >= j->n || !isxdigit(j->s[j->i]))
			return -1;
	return 0;
}

static int js_string(jscan *j)
{
	j->i++; /* the opening quote */
	while (j->i < j->n) {
		unsigned char c = j->s[j->i];
		size_t ul;

		if (c == '"') {
			j->i++;
			return 0;
		}
		if (c < 0x20)
			return -1;
		if (c == '\\') {
			if (++j->i >= j->n)
				return -1;
			c = j->s[j->i];
			if (c == 'u') {
				j->i++;
				if (js_hex4(j))
					return -1;
				continue;
			}
			if (!strchr("\"\\/bfnrt", c) || !c)
				return -1;
			j->i++;
			continue;
		}
		ul = utf8_len(j->s + j->i, j->n - j->i);
		if (!ul)
			return -1;
		j->i += ul;
	}
	return -1;
}

static int js_digits(jscan *j)
{
	size_t from = j->i;

	while (j->i < j->n && j->s[j->i] >= '0' && j->s[j->i] <= '9')
		j->i++;
	return j->i > from ? 0 : -1;
}

static int js_number(jscan *j)
{
	if (j->s[j->i] == '-')
		j->i++;
	if (j->i < j->n && j->s[j->i] == '0')
		j->i++;
	else if (js_digits(j))
		return -1;
	if (j->i < j->n && j->s[j->i] == '.') {
		j->i++;
		if (js_digits(j))
			return -1;
	}
	if (j->i < j->n && (j->s[j->i] == 'e' || j->s[j->i] == 'E')) {
		j->i++;
		if (j->i < j->n && (j->s[j->i] == '+' || j->s[j->i] == '-'))
			j->i++;
		if (js_digits(j))
			return -1;
	}
	return 0;
}

static int js_value(jscan *j);

/* An object or an array; *close is '}' or ']'. */
static int js_container(jscan *j, unsigned char close)
{
	if (++j->depth > JSON_MAX_DEPTH)
		return -1;
	j->i++;
	js_ws(j);
	if (j->i < j->n && j->s[j->i] == close) {
		j->i++;
		j->depth--;
		return 0;
	}
	for (;;) {
		if (close == '}') {
			if (j->i >= j->n || j->s[j->i] != '"' || js_string(j))
				return -1;
			js_ws(j);
			if (j->i >= j->n || j->s[j->i] != ':')
				return -1;
			j->i++;
		}
		if (js_value(j))
			return -1;
		js_ws(j);
		if (j->i >= j->n)
			return -1;
		if (j->s[j->i] == close) {
			j->i++;
			j->depth--;
			return 0;
		}
		if (j->s[j->i] != ',')
			return -1;
		j->i++;
		js_ws(j);
	}
}

static int js_value(jscan *j)
{
	js_ws(j);
	if (j->i >= j->n)
		return -1;
	switch (j->s[j->i]) {
	case '{':
		return js_container(j, '}');
	case '[':
		return js_container(j, ']');
	case '"':
		return js_string(j);
	case 't':
		return js_lit(j, "true");
	case 'f':
		return js_lit(j, "false");
	case 'n':
		return js_lit(j, "null");
	default:
		if (j->s[j->i] == '-' || (j->s[j->i] >= '0' && j->s[j->i] <= '9'))
			return js_number(j);
		return -1;
	}
}

int cli_json_valid(const void *data, size_t n, size_t *bad_at)
{
	jscan j = {.s = data, .n = n};
	int ok = js_value(&j) == 0;

	if (ok) {
		js_ws(&j);
		ok = j.i == n;
	}
	if (!ok && bad_at)
		*bad_at = j.i;
	return ok;
}

int cli_json_embed(cli_buf *b, const void *data, size_t n)
{
	const char *s = data;
	size_t from = b->len;

	if (cli_buf_add(b, s, n))
		return -1;
	/* a valid JSON text holds raw CR/LF only as whitespace between
	 * tokens: blanks keep the record on one line */
	for (size_t i = from; i < b->len; i++)
		if (b->p[i] == '\n' || b->p[i] == '\r')
			b->p[i] = ' ';
	return 0;
}

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

/* --------------------------------------------------------- setup arguments */

static int kv_add(cli_kv_store *s, const char *key, const char *val)
{
	char *k = strdup(key), *v = strdup(val);
	gd_kv *kv = realloc(s->kv, (s->n + 1) * sizeof(*kv));
	char **strs;

	if (kv)
		s->kv = kv;
	strs = realloc(s->strs, (s->n_strs + 2) * sizeof(*strs));
	if (strs)
		s->strs = strs;
	if (!k || !v || !kv || !strs) {
		free(k);
		free(v);
		return -1;
	}
	s->strs[s->n_strs++] = k;
	s->strs[s->n_strs++] = v;
	s->kv[s->n].key = k;
	s->kv[s->n].value = v;
	s->n++;
	return 0;
}

int cli_kv_build(const cli_opts *o, cli_kv_store *s)
{
	char num[32], key[32];
	int rc = 0;

	memset(s, 0, sizeof(*s));
	rc |= kv_add(s, "mode", o->worker_cmd ? "persistent" : "command");
	if (o->worker_cmd)
		rc |= kv_add(s, "worker_cmd", o->worker_cmd);
	rc |= kv_add(s, "shell", o->shell ? "1" : "0");
	rc |= kv_add(s, "quiet", o->quiet ? "1" : "0");
	if (o->out_dir)
		rc |= kv_add(s, "output_dir", o->out_dir);
	snprintf(num, sizeof(num), "%zu", o->max_line);
	rc |= kv_add(s, "max_line", num);
	snprintf(num, sizeof(num), "%u",
	         o->start_failures ? o->start_failures : CLI_DEFAULT_START_FAILURES);
	rc |= kv_add(s, "start_failures", num);
	snprintf(num, sizeof(num), "%.17g", o->setup_timeout);
	rc |= kv_add(s, "setup_timeout", num);
	/* the user's --setup-arg pairs, as "setup.KEY" = "VALUE" */
	for (size_t i = 0; i < o->n_setup_args; i++) {
		const char *a = o->setup_args[i], *eq = strchr(a, '=');
		char skey[300];

		snprintf(skey, sizeof(skey), "setup.%.*s", (int)(eq - a), a);
		rc |= kv_add(s, skey, eq + 1);
	}
	snprintf(num, sizeof(num), "%d", o->argc);
	rc |= kv_add(s, "argc", num);
	for (int i = 0; i < o->argc; i++) {
		snprintf(key, sizeof(key), "arg%d", i);
		rc |= kv_add(s, key, o->argv[i]);
	}
	if (rc) {
		cli_kv_free(s);
		return -1;
	}
	return 0;
}

void cli_kv_free(cli_kv_store *s)
{
	for (size_t i = 0; i < s->n_strs; i++)
		free(s->strs[i]);
	free(s->strs);
	free(s->kv);
	memset(s, 0, sizeof(*s));
}
