/*
 * The command line: the option table, parsing argv into cli_opts (each
 * option's value checked), the checks between options of `run`, and the
 * --help text.
 */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"

void cli_usage(FILE *out)
{
	fputs("usage: gpudispatch run --tasks FILE|- [options] [--] CMD [ARGS...]\n"
	      "       gpudispatch run --tasks FILE|- [options] --worker-cmd \"PROG ARGS\"\n"
	      "       gpudispatch run --tasks FILE|- [options] --shell\n"
	      "       gpudispatch placement [--json] [--gpus LIST] [--workers-per-gpu N]\n"
	      "                             [--gpus-per-worker N]\n"
	      "       gpudispatch status RESULTS [--watch [SECONDS]] [--json]\n"
	      "       gpudispatch results [--status LIST] [--format jsonl|csv|tsv] [--fields "
	      "LIST] FILE\n"
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
	      "  --timeout SECONDS     kill a task and every process it started after SECONDS\n"
	      "                        and report a timeout (default, or 0: no limit)\n"
	      "  --keep-children       let processes a command left behind run on after its\n"
	      "                        task (they still die at a timeout and when the worker\n"
	      "                        ends); by default they are killed when the task ends\n"
	      "  --retries N           run a failed or timed-out task up to N more times (default "
	      "0)\n"
	      "  --output-dir DIR      keep each task's output in DIR/ID.out and DIR/ID.err\n"
	      "                        (persistent workers: DIR/worker-W.err, or\n"
	      "                        DIR/worker-W.log with protocol 2)\n"
	      "  --quiet               discard the tasks' output (default: standard output is\n"
	      "                        discarded, the end of standard error is reported)\n"
	      "  --stderr-lines N      lines of a failed command's standard error kept in its\n"
	      "                        error (default 5, 0 = none, at most 100)\n"
	      "  --results FILE        write one JSON Lines record per finished task to FILE\n"
	      "                        (locked while the run lasts: RESULTS.lock; a file that\n"
	      "                        holds records needs --resume or --force)\n"
	      "  --force               replace a results file that holds records\n"
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
	      "  --halt WHEN,fail=N|P%|success=N  stop early (GNU parallel's --halt): WHEN\n"
	      "                        is soon (no new tasks, those in flight finish) or now\n"
	      "                        (they are abandoned); N tasks (or P% of those ended)\n"
	      "                        failed, or N succeeded.  The rest runs with --resume.\n"
	      "                        Exit 1 (fail) or 0 (success).  Default: never\n"
	      "  --status-interval SECONDS  with --results: rewrite RESULTS.status (for\n"
	      "                        gpudispatch status) every SECONDS (default 1, 0 = none)\n"
	      "  --deadline TIME       end by TIME: +DURATION (+90s, +2h30m), seconds since the\n"
	      "                        epoch, or YYYY-MM-DDTHH:MM[:SS]; a task starts only when\n"
	      "                        it should end before TIME minus a margin, then the run\n"
	      "                        stops with status 3 (resumable).  Default inside a Slurm\n"
	      "                        job: the job's end time; none: no deadline\n"
	      "  --deadline-margin SECONDS  time kept free before the deadline (default 2 % of\n"
	      "                        the time to it, at least 5 s, at most 300 s)\n"
	      "  --task-time SECONDS   how long a task takes, before it is measured (and the\n"
	      "                        least that is assumed after)\n"
	      "  --heartbeat-timeout SECONDS  a rank silent this long is lost (a node or link\n"
	      "                        gone): the run stops, exit 3, resumable (default 20,\n"
	      "                        0 = never)\n"
	      "  --ui auto|tui|text|none  the dashboard (default auto)\n"
	      "  --refresh HZ          dashboard refreshes per second (default 2)\n"
	      "  --monochrome          dashboard without colours\n"
	      "  --gpus LIST           use only these GPU indices, e.g. 0,1,3 (default all)\n"
	      "  --workers-per-gpu N   let N workers share a GPU (default 1)\n"
	      "  --quarantine K        retire a worker whose last K tasks all failed while other\n"
	      "                        workers succeed (default off); see --retries\n"
	      "  --gpus-per-worker N   give each worker N GPUs of its node that are close to\n"
	      "                        each other (default 1; docs/placement.md)\n"
	      "  --no-placement        do not bind workers to GPUs or cores\n"
	      "  --json                (placement) print JSON\n"
	      "  -h, --help            this text\n"
	      "  -V, --version         the version\n"
	      "\n"
	      "Exit status: 0 every task succeeded, 1 some task failed or timed out, 2 bad usage\n"
	      "or input, 3 interrupted by SIGINT/SIGTERM/SIGUSR1 or stopped at the deadline (run\n"
	      "the same command again with --resume to run the rest), 4 the run failed (no\n"
	      "worker could start, MPI or I/O error).\n"
	      "See docs/cli.md for the results format and the worker line protocol.\n",
	      out);
}

#define GD__STR2(x) #x
#define GD__STR(x)  GD__STR2(x)

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

/* +DURATION: numbers each followed by d, h, m or s (the last may go
 * without: seconds), e.g. 90, 90s, 2h30m, 1.5h. */
static int parse_duration(const char *s, double *out)
{
	double total = 0;

	if (!*s)
		return -1;
	while (*s) {
		char *end;
		double v, unit = 1;

		if (!isdigit((unsigned char)*s) && *s != '.')
			return -1;
		errno = 0;
		v = strtod(s, &end);
		if (errno || end == s || !isfinite(v))
			return -1;
		s = end;
		switch (*s) {
		case 'd':
			unit = 86400;
			break;
		case 'h':
			unit = 3600;
			break;
		case 'm':
			unit = 60;
			break;
		case 's':
			unit = 1;
			break;
		case '\0':
			unit = 1;
			break;
		default:
			return -1;
		}
		if (*s)
			s++;
		total += v * unit;
	}
	*out = total;
	return 0;
}

int cli_parse_time(const char *s, double now, double *out)
{
	struct tm tm;
	int y, mo, d, h, mi, sec = 0, n = 0;
	char sep;

	if (s[0] == '+') {
		double dur;

		if (parse_duration(s + 1, &dur) || dur <= 0)
			return -1;
		*out = now + dur;
		return 0;
	}
	if (s[0] == '@')
		s++;
	if (*s && strspn(s, "0123456789") == strlen(s)) {
		uint64_t v;

		if (parse_u64(s, (uint64_t)1 << 40, &v))
			return -1;
		*out = (double)v;
		return 0;
	}
	if (sscanf(s, "%4d-%2d-%2d%c%2d:%2d%n", &y, &mo, &d, &sep, &h, &mi, &n) != 6 ||
	    (sep != 'T' && sep != ' '))
		return -1;
	s += n;
	if (*s == ':') {
		if (!isdigit((unsigned char)s[1]) || !isdigit((unsigned char)s[2]))
			return -1;
		sec = (s[1] - '0') * 10 + (s[2] - '0');
		s += 3;
	}
	if ((*s && strcmp(s, "Z")) || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 ||
	    sec > 60 || h < 0 || mi < 0 || y < 1970)
		return -1;
	memset(&tm, 0, sizeof(tm));
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_sec = sec;
	tm.tm_isdst = -1;
	time_t t = *s == 'Z' ? timegm(&tm) : mktime(&tm);
	if (t == (time_t)-1 || tm.tm_mday != d) /* e.g. 02-30 */
		return -1;
	*out = (double)t;
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

int cli_parse_halt(const char *spec, cli_opts *o, char *err, size_t errlen)
{
	const char *p = spec, *num;
	char *end;
	int when;

	o->halt_spec = spec;
	o->halt = GD_HALT_NEVER;
	o->halt_on = 0;
	o->halt_count = 0;
	o->halt_percent = 0;
	if (!strcmp(spec, "never"))
		return 0;
	if (!strncmp(p, "soon,", 5)) {
		when = GD_HALT_SOON;
		p += 5;
	} else if (!strncmp(p, "now,", 4)) {
		when = GD_HALT_NOW;
		p += 4;
	} else {
		goto bad;
	}
	if (!strncmp(p, "fail=", 5)) {
		o->halt_on = GD_HALT_ON_FAIL;
		num = p + 5;
	} else if (!strncmp(p, "success=", 8)) {
		o->halt_on = GD_HALT_ON_SUCCESS;
		num = p + 8;
	} else {
		goto bad;
	}
	if (*num < '0' || *num > '9')
		goto bad;
	errno = 0;
	if (o->halt_on == GD_HALT_ON_FAIL && strchr(num, '%')) {
		double v = strtod(num, &end);

		if (errno || strcmp(end, "%") || !(v > 0) || v > 100)
			return fail(err, errlen,
			            "--halt '%s': the percentage must be above 0 and at most 100%%",
			            spec);
		o->halt_percent = v;
	} else {
		unsigned long long v = strtoull(num, &end, 10);

		if (errno || *end || v == 0)
			return fail(err, errlen,
			            "--halt '%s': the count must be a whole number >= 1%s", spec,
			            o->halt_on == GD_HALT_ON_SUCCESS
			                    ? " (success=P%% is not supported)"
			                    : " or a percentage like 10%");
		o->halt_count = v;
	}
	o->halt = when;
	return 0;
bad:
	o->halt_on = 0;
	return fail(err, errlen,
	            "--halt '%s' is not one of never, soon,fail=N, soon,fail=P%%, now,fail=N, "
	            "now,fail=P%%, soon,success=N, now,success=N",
	            spec);
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
        {"tasks", O_VALUE, 1, 0},
        {"worker-cmd", O_VALUE, 1, 0},
        {"shell", O_FLAG, 1, 0},
        {"timeout", O_VALUE, 1, 0},
        {"retries", O_VALUE, 1, 0},
        {"output-dir", O_VALUE, 1, 0},
        {"quiet", O_FLAG, 1, 0},
        {"results", O_VALUE, 1, 0},
        {"resume", O_FLAG, 1, 0},
        {"resume-force", O_FLAG, 1, 0},
        {"skip-failed", O_FLAG, 1, 0},
        {"max-line", O_VALUE, 1, 0},
        {"window", O_VALUE, 1, 0},
        {"seed", O_VALUE, 1, 0},
        {"grace", O_VALUE, 1, 0},
        {"ui", O_VALUE, 1, 0},
        {"refresh", O_VALUE, 1, 0},
        {"monochrome", O_FLAG, 1, 0},
        {"gpus", O_VALUE, 1, 1},
        {"workers-per-gpu", O_VALUE, 1, 1},
        {"no-placement", O_FLAG, 1, 1},
        {"json", O_FLAG, 0, 1},
        {"help", O_FLAG, 1, 1},
        {"version", O_FLAG, 1, 1},
        {"setup-arg", O_VALUE, 1, 0},
        {"start-failures", O_VALUE, 1, 0},
        {"setup-timeout", O_VALUE, 1, 0},
        {"stderr-lines", O_VALUE, 1, 0},
        {"halt", O_VALUE, 1, 0},
        {"gpus-per-worker", O_VALUE, 1, 1},
        {"status-interval", O_VALUE, 1, 0},
        {"quarantine", O_VALUE, 1, 0},
        {"deadline", O_VALUE, 1, 0},
        {"deadline-margin", O_VALUE, 1, 0},
        {"task-time", O_VALUE, 1, 0},
        {"force", O_FLAG, 1, 0},
        {"keep-children", O_FLAG, 1, 0},
        {"heartbeat-timeout", O_VALUE, 1, 0},
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
	} else if (!strcmp(name, "heartbeat-timeout")) {
		if (parse_seconds(val, &o->heartbeat_timeout))
			return BAD("a number of seconds >= 0");
		o->heartbeat_set = 1;
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
	} else if (!strcmp(name, "force")) {
		o->force = 1;
	} else if (!strcmp(name, "keep-children")) {
		o->keep_children = 1;
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
	} else if (!strcmp(name, "quarantine")) {
		if (parse_u64(val, 1000000, &u) || u == 0)
			return BAD("a whole number of tasks from 1 to 1000000");
		o->quarantine = (unsigned)u;
	} else if (!strcmp(name, "gpus-per-worker")) {
		if (parse_u64(val, GD_MAX_WORKER_GPUS, &u) || u == 0)
			return BAD("a whole number from 1 to " GD__STR(GD_MAX_WORKER_GPUS));
		o->gpus_per_worker = (unsigned)u;
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
	} else if (!strcmp(name, "stderr-lines")) {
		if (parse_u64(val, CLI_MAX_STDERR_LINES, &u))
			return BAD("a whole number from 0 to 100");
		o->stderr_lines = (unsigned)u;
	} else if (!strcmp(name, "halt")) {
		return cli_parse_halt(val, o, err, errlen);
	} else if (!strcmp(name, "status-interval")) {
		if (parse_seconds(val, &o->status_interval) || o->status_interval > 3600)
			return BAD("a number of seconds from 0 to 3600");
	} else if (!strcmp(name, "deadline")) {
		double now = (double)time(NULL);

		o->deadline = 0;
		o->no_deadline = !strcmp(val, "none");
		if (o->no_deadline)
			return 0;
		if (cli_parse_time(val, now, &o->deadline))
			return BAD("a time: +DURATION (e.g. +90s, +2h30m), seconds since the "
			           "epoch, YYYY-MM-DDTHH:MM[:SS], or none");
		if (o->deadline <= now)
			return fail(err, errlen, "--deadline: '%s' is in the past", val);
	} else if (!strcmp(name, "deadline-margin")) {
		if (parse_seconds(val, &o->deadline_margin) || o->deadline_margin <= 0)
			return BAD("a number of seconds > 0");
	} else if (!strcmp(name, "task-time")) {
		if (parse_seconds(val, &o->task_time) || o->task_time <= 0)
			return BAD("a number of seconds > 0");
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
	if (o->force && !o->results)
		return fail(err, errlen,
		            "--force needs --results FILE: it lets a fresh run replace it");
	if (o->force && o->resume)
		return fail(err, errlen,
		            "--force and --resume contradict each other: --force replaces the "
		            "results file, --resume continues it");
	if (o->keep_children && o->worker_cmd)
		return fail(err, errlen,
		            "--keep-children is for command mode: a worker program's processes "
		            "live as long as it does");
	if (o->skip_failed && !o->resume)
		return fail(err, errlen, "--skip-failed only applies with --resume");
	if ((o->deadline_margin > 0 || o->task_time > 0) && o->no_deadline)
		return fail(err, errlen,
		            "--deadline-margin and --task-time need a deadline, "
		            "not --deadline none");
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
	o->status_interval = 1;
	o->stderr_lines = CLI_DEFAULT_STDERR_LINES;
	if (errlen)
		err[0] = '\0';

	if (argc < 2)
		return fail(err, errlen,
		            "missing the command: run, placement or results (see --help)");
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
		            "unknown command '%s': expected run, placement or results (see --help)",
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
