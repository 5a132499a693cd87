/*
 * Unit tests of the command's pure parts (the pure parts of src/cli/): the task-file
 * reader, task encoding, `{}` substitution, JSON escaping and the command
 * line.
 */
#define _GNU_SOURCE
#include <CUnit/Basic.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

/* Write len bytes to a fresh temporary file; \return its path (static buffer per call site). */
static void write_tmp(char *path, const void *data, size_t len)
{
	int fd;

	strcpy(path, "/tmp/test_cli_tasks-XXXXXX");
	fd = mkstemp(path);
	CU_ASSERT_FATAL(fd >= 0);
	CU_ASSERT_FATAL(write(fd, data, len) == (ssize_t)len);
	close(fd);
}

/* ------------------------------------------------------------------ reader */

static void test_reader_lines(void)
{
	static const char text[] = "alpha\n"
	                           "\n"
	                           "# a comment\n"
	                           "   \t\n"
	                           "beta\r\n"
	                           "  # indented comment\n"
	                           "gamma"; /* no trailing newline */
	char path[64];
	cli_reader r;
	cli_line l;

	write_tmp(path, text, sizeof(text) - 1);
	CU_ASSERT_EQUAL_FATAL(cli_reader_open(&r, path, 100), 0);

	CU_ASSERT_EQUAL(cli_reader_next(&r, &l), 1);
	CU_ASSERT_EQUAL(l.index, 0);
	CU_ASSERT_EQUAL(l.len, 5);
	CU_ASSERT_STRING_EQUAL(l.data, "alpha");
	CU_ASSERT_FALSE(cli_line_skipped(l.data, l.len));

	CU_ASSERT_EQUAL(cli_reader_next(&r, &l), 1);
	CU_ASSERT_EQUAL(l.index, 1);
	CU_ASSERT_EQUAL(l.len, 0);
	CU_ASSERT_TRUE(cli_line_skipped(l.data, l.len));

	CU_ASSERT_EQUAL(cli_reader_next(&r, &l), 1);
	CU_ASSERT_TRUE(cli_line_skipped(l.data, l.len));
	CU_ASSERT_EQUAL(cli_reader_next(&r, &l), 1);
	CU_ASSERT_TRUE(cli_line_skipped(l.data, l.len));

	CU_ASSERT_EQUAL(cli_reader_next(&r, &l), 1);
	CU_ASSERT_EQUAL(l.index, 4);
	CU_ASSERT_STRING_EQUAL(l.data, "beta"); /* CR stripped */
	CU_ASSERT_EQUAL(l.len, 4);

	CU_ASSERT_EQUAL(cli_reader_next(&r, &l), 1);
	CU_ASSERT_TRUE(cli_line_skipped(l.data, l.len));

	CU_ASSERT_EQUAL(cli_reader_next(&r, &l), 1);
	CU_ASSERT_EQUAL(l.index, 6);
	CU_ASSERT_STRING_EQUAL(l.data, "gamma");
	CU_ASSERT_EQUAL(cli_reader_next(&r, &l), 0);
	CU_ASSERT_EQUAL(cli_reader_next(&r, &l), 0); /* stays at the end */
	cli_reader_close(&r);
	unlink(path);
}

static void test_reader_empty_and_newline_only(void)
{
	char path[64];
	cli_reader r;
	cli_line l;

	write_tmp(path, "", 0);
	CU_ASSERT_EQUAL_FATAL(cli_reader_open(&r, path, 10), 0);
	CU_ASSERT_EQUAL(cli_reader_next(&r, &l), 0);
	cli_reader_close(&r);
	unlink(path);

	write_tmp(path, "\n", 1);
	CU_ASSERT_EQUAL_FATAL(cli_reader_open(&r, path, 10), 0);
	CU_ASSERT_EQUAL(cli_reader_next(&r, &l), 1);
	CU_ASSERT_EQUAL(l.len, 0);
	CU_ASSERT_EQUAL(cli_reader_next(&r, &l), 0);
	cli_reader_close(&r);
	unlink(path);
}

static void test_reader_missing_file(void)
{
	cli_reader r;

	CU_ASSERT_EQUAL(cli_reader_open(&r, "/nonexistent/dir/tasks.txt", 10), -ENOENT);
}

/* A line far longer than the limit: reported too long, memory stays bounded,
 * and the next line is read normally. */
static void test_reader_long_line_and_nul(void)
{
	size_t big = 3 * 1024 * 1024, n = big + 32;
	char *text = malloc(n), path[64];
	cli_reader r;
	cli_line l;

	CU_ASSERT_FATAL(text != NULL);
	memset(text, 'x', big);
	memcpy(text + big, "\na\0b\nlast\n", 10);
	write_tmp(path, text, big + 10);
	CU_ASSERT_EQUAL_FATAL(cli_reader_open(&r, path, 1000), 0);

	CU_ASSERT_EQUAL(cli_reader_next(&r, &l), 1);
	CU_ASSERT_TRUE(l.too_long);
	CU_ASSERT_EQUAL(l.full_len, big);
	CU_ASSERT_EQUAL(l.len, 1000);
	CU_ASSERT(r.line.cap < 4096); /* not the whole line in memory */

	CU_ASSERT_EQUAL(cli_reader_next(&r, &l), 1);
	CU_ASSERT_FALSE(l.too_long);
	CU_ASSERT_EQUAL(l.len, 3);
	CU_ASSERT_EQUAL(memcmp(l.data, "a\0b", 3), 0);

	CU_ASSERT_EQUAL(cli_reader_next(&r, &l), 1);
	CU_ASSERT_STRING_EQUAL(l.data, "last");
	CU_ASSERT_EQUAL(l.index, 2);
	CU_ASSERT_EQUAL(cli_reader_next(&r, &l), 0);
	cli_reader_close(&r);
	unlink(path);
	free(text);
}

/* A line exactly at the limit is fine; one byte more is too long; a CR at
 * the end does not count. */
static void test_reader_limit_edges(void)
{
	char path[64];
	cli_reader r;
	cli_line l;

	write_tmp(path, "abcd\nabcde\nabcd\r\n", 17);
	CU_ASSERT_EQUAL_FATAL(cli_reader_open(&r, path, 4), 0);
	CU_ASSERT_EQUAL(cli_reader_next(&r, &l), 1);
	CU_ASSERT_FALSE(l.too_long);
	CU_ASSERT_EQUAL(cli_reader_next(&r, &l), 1);
	CU_ASSERT_TRUE(l.too_long);
	CU_ASSERT_EQUAL(l.full_len, 5);
	CU_ASSERT_EQUAL(cli_reader_next(&r, &l), 1);
	CU_ASSERT_FALSE(l.too_long);
	CU_ASSERT_STRING_EQUAL(l.data, "abcd");
	cli_reader_close(&r);
	unlink(path);
}

static void test_task_encode(void)
{
	cli_buf b = {0};
	cli_line l = {.data = "hello", .len = 5, .index = 7};

	CU_ASSERT_EQUAL(cli_task_encode(&l, "t.txt", &b), 0);
	CU_ASSERT_EQUAL(b.len, 6);
	CU_ASSERT_EQUAL(memcmp(b.p, "Lhello", 6), 0);

	l.data = " # c";
	l.len = 4;
	CU_ASSERT_EQUAL(cli_task_encode(&l, "t.txt", &b), 0);
	CU_ASSERT_EQUAL(b.len, 1);
	CU_ASSERT_EQUAL(b.p[0], CLI_TASK_SKIP);

	l.data = "xxxx";
	l.len = 4;
	l.too_long = 1;
	l.full_len = 99;
	CU_ASSERT_EQUAL(cli_task_encode(&l, "t.txt", &b), 0);
	CU_ASSERT_EQUAL(b.p[0], CLI_TASK_BAD);
	CU_ASSERT_PTR_NOT_NULL(strstr(b.p, "line 8 of t.txt is 99 bytes"));
	CU_ASSERT_PTR_NOT_NULL(strstr(b.p, "--max-line 4"));
	cli_buf_free(&b);
}

/* ------------------------------------------------------------ substitution */

static char **expand(int shell, const char *line, int n, ...)
{
	char *words[16];
	char **argv = NULL;
	va_list ap;

	va_start(ap, n);
	for (int i = 0; i < n; i++)
		words[i] = va_arg(ap, char *);
	va_end(ap);
	CU_ASSERT_EQUAL(cli_expand(words, n, shell, line, strlen(line), 42, 3, &argv), 0);
	return argv;
}

static void test_expand_basic(void)
{
	char **a;

	a = expand(0, "in put.txt", 3, "python", "infer.py", "--input={}");
	CU_ASSERT_STRING_EQUAL(a[0], "python");
	CU_ASSERT_STRING_EQUAL(a[2], "--input=in put.txt"); /* one argument, no splitting */
	CU_ASSERT_PTR_NULL(a[3]);
	free(a);

	/* no {}: the line is appended as the last argument */
	a = expand(0, "x y", 2, "echo", "id={#}");
	CU_ASSERT_STRING_EQUAL(a[1], "id=42");
	CU_ASSERT_STRING_EQUAL(a[2], "x y");
	CU_ASSERT_PTR_NULL(a[3]);
	free(a);

	/* several tokens in one word, worker id, no append when a line token is used */
	a = expand(0, "dir/sub/file.tar.gz", 6, "{.}", "{/}", "{//}", "{/.}", "{#}-{%}", "{}{}");
	CU_ASSERT_STRING_EQUAL(a[0], "dir/sub/file.tar");
	CU_ASSERT_STRING_EQUAL(a[1], "file.tar.gz");
	CU_ASSERT_STRING_EQUAL(a[2], "dir/sub");
	CU_ASSERT_STRING_EQUAL(a[3], "file.tar");
	CU_ASSERT_STRING_EQUAL(a[4], "42-3");
	CU_ASSERT_STRING_EQUAL(a[5], "dir/sub/file.tar.gzdir/sub/file.tar.gz");
	CU_ASSERT_PTR_NULL(a[6]);
	free(a);

	/* no directory, dot file, other braces kept literally */
	a = expand(0, ".bashrc", 4, "{//}", "{.}", "{\"k\":1}", "{x}");
	CU_ASSERT_STRING_EQUAL(a[0], ".");
	CU_ASSERT_STRING_EQUAL(a[1], ".bashrc");
	CU_ASSERT_STRING_EQUAL(a[2], "{\"k\":1}");
	CU_ASSERT_STRING_EQUAL(a[3], "{x}");
	CU_ASSERT_PTR_NULL(a[4]); /* {//} used the line: nothing appended */
	free(a);

	a = expand(0, "/abs", 1, "{//}");
	CU_ASSERT_STRING_EQUAL(a[0], "/");
	free(a);
}

static void test_expand_shell(void)
{
	char **a;

	/* the line is single-quoted: no injection */
	a = expand(1, "it's; rm -rf /", 3, "echo", "{}", ">out.{#}");
	CU_ASSERT_STRING_EQUAL(a[0], "/bin/sh");
	CU_ASSERT_STRING_EQUAL(a[1], "-c");
	CU_ASSERT_STRING_EQUAL(a[2], "echo 'it'\\''s; rm -rf /' >out.42");
	CU_ASSERT_PTR_NULL(a[3]);
	free(a);

	/* no words: the line is the script */
	a = expand(1, "echo a | wc -c", 0);
	CU_ASSERT_STRING_EQUAL(a[2], "echo a | wc -c");
	free(a);

	/* words without {}: the quoted line is appended */
	a = expand(1, "a b", 2, "printf", "%s");
	CU_ASSERT_STRING_EQUAL(a[2], "printf %s 'a b'");
	free(a);
}

static void test_template_uses_line(void)
{
	char *w1[] = {"echo", "{#}", "{%}"}, *w2[] = {"cp", "{/.}", "x"};

	CU_ASSERT_FALSE(cli_template_uses_line(w1, 3));
	CU_ASSERT_TRUE(cli_template_uses_line(w2, 3));
}

/* -------------------------------------------------------------------- JSON */

static void check_json(const void *in, size_t n, const char *want)
{
	cli_buf b = {0};

	CU_ASSERT_EQUAL(cli_json_str(&b, in, n), 0);
	CU_ASSERT_STRING_EQUAL(b.p, want);
	if (strcmp(b.p, want))
		fprintf(stderr, "\n  got  %s\n  want %s\n", b.p, want);
	cli_buf_free(&b);
}

static void test_json(void)
{
	check_json("", 0, "\"\"");
	check_json("plain", 5, "\"plain\"");
	check_json("q\"b\\s/", 6, "\"q\\\"b\\\\s/\"");
	check_json("\n\r\t\b\f\x01\x1f\x7f", 8, "\"\\n\\r\\t\\b\\f\\u0001\\u001f\\u007f\"");
	check_json("a\0b", 3, "\"a\\u0000b\"");
	/* valid UTF-8 copied: é, €, 😀 */
	check_json("\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80", 9,
	           "\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\"");
	/* invalid: lone continuation, overlong, surrogate, > U+10FFFF, truncated, 0xff */
	check_json("\x80", 1, "\"\\ufffd\"");
	check_json("\xc0\x80", 2, "\"\\ufffd\\ufffd\"");
	check_json("\xe0\x80\x80", 3, "\"\\ufffd\\ufffd\\ufffd\"");
	check_json("\xed\xa0\x80", 3, "\"\\ufffd\\ufffd\\ufffd\"");
	check_json("\xf4\x90\x80\x80", 4, "\"\\ufffd\\ufffd\\ufffd\\ufffd\"");
	check_json("a\xe2\x82", 3, "\"a\\ufffd\\ufffd\"");
	check_json("\xff"
	           "ok",
	           3, "\"\\ufffdok\"");
}

static void test_first_line(void)
{
	CU_ASSERT_EQUAL(cli_first_line("one\ntwo", 100), 3);
	CU_ASSERT_EQUAL(cli_first_line("abcdef", 4), 4);
	CU_ASSERT_EQUAL(cli_first_line(NULL, 4), 0);
}

/* ----------------------------------------------------------------- options */

static int parse(cli_opts *o, char *err, int n, ...)
{
	char *argv[32];
	va_list ap;

	argv[0] = "gpudispatch";
	va_start(ap, n);
	for (int i = 0; i < n; i++)
		argv[i + 1] = va_arg(ap, char *);
	va_end(ap);
	argv[n + 1] = NULL;
	return cli_parse_args(n + 1, argv, o, err, 256);
}

static void test_stderr_message(void)
{
	char out[128];

	cli_stderr_message(out, sizeof(out), "command exited with status 3", "");
	CU_ASSERT_STRING_EQUAL(out, "command exited with status 3");
	cli_stderr_message(out, sizeof(out), "command exited with status 3", "oom");
	CU_ASSERT_STRING_EQUAL(out, "command exited with status 3; stderr: oom");
	cli_stderr_message(out, sizeof(out), "x", "a\nb\nc");
	CU_ASSERT_STRING_EQUAL(out, "x; stderr: c\na\nb\nc");
	CU_ASSERT_EQUAL(cli_stderr_message(out, 8, "x", "a\nb"), 7);
	CU_ASSERT_STRING_EQUAL(out, "x; stde");
}

static void test_json_members_unstr(void)
{
	static const char rec[] =
	        "{\"id\":3, "
	        "\"s\":\"a\\\"\\u00e9\\ud83d\\ude00\\ud800x\",\"o\":{\"k\":[1,2]},\"n\":null}";
	cli_member m[8];
	cli_buf b = {0};

	CU_ASSERT_EQUAL(cli_json_members(rec, strlen(rec), m, 8), 4);
	CU_ASSERT_EQUAL(m[0].klen, 2);
	CU_ASSERT_NSTRING_EQUAL(m[0].val, "3", m[0].vlen);
	CU_ASSERT_NSTRING_EQUAL(m[2].val, "{\"k\":[1,2]}", m[2].vlen);
	CU_ASSERT_EQUAL(m[2].vlen, 11);
	CU_ASSERT_EQUAL(cli_json_unstr(&b, m[1].val, m[1].vlen), 0);
	CU_ASSERT_STRING_EQUAL(b.p, "a\"\xc3\xa9\xf0\x9f\x98\x80\xef\xbf\xbdx");
	CU_ASSERT_EQUAL(cli_json_members("[1]", 3, m, 8), -1);
	CU_ASSERT_EQUAL(cli_json_members("{\"a\":}", 6, m, 8), -1);
	CU_ASSERT_EQUAL(cli_json_members("{}", 2, m, 8), 0);
	CU_ASSERT_EQUAL(cli_json_unstr(&b, "\"\\q\"", 4), -1);
	cli_buf_free(&b);
}

static void test_options_run(void)
{
	cli_opts o;
	char err[256];

	CU_ASSERT_EQUAL(parse(&o, err, 17, "run", "--tasks", "t.txt", "--timeout=2.5", "--retries",
	                      "2", "--window", "8", "--seed", "7", "--ui", "none", "--results",
	                      "r.jsonl", "--", "python", "-u"),
	                0);
	CU_ASSERT_EQUAL(o.cmd, CLI_CMD_RUN);
	CU_ASSERT_STRING_EQUAL(o.tasks, "t.txt");
	CU_ASSERT_DOUBLE_EQUAL(o.timeout, 2.5, 1e-9);
	CU_ASSERT_EQUAL(o.retries, 2);
	CU_ASSERT_EQUAL(o.window, 8);
	CU_ASSERT_EQUAL(o.seed, 7);
	CU_ASSERT_EQUAL(o.ui, GD_UI_NONE);
	CU_ASSERT_EQUAL(o.argc, 2);
	CU_ASSERT_STRING_EQUAL(o.argv[0], "python");
	CU_ASSERT_STRING_EQUAL(o.argv[1], "-u"); /* after --, options belong to the command */
	CU_ASSERT_EQUAL(o.max_line, CLI_DEFAULT_MAX_LINE);
	CU_ASSERT_EQUAL(o.placement, 1);

	/* the command may start without --: parsing stops at the first word */
	CU_ASSERT_EQUAL(parse(&o, err, 5, "run", "--tasks", "-", "echo", "--tasks"), 0);
	CU_ASSERT_EQUAL(o.argc, 2);
	CU_ASSERT_STRING_EQUAL(o.argv[1], "--tasks");

	CU_ASSERT_EQUAL(parse(&o, err, 4, "run", "--tasks", "t", "--shell"), 0);
	CU_ASSERT_EQUAL(o.shell, 1);
	CU_ASSERT_EQUAL(o.argc, 0);

	CU_ASSERT_EQUAL(parse(&o, err, 7, "run", "--tasks", "t", "--worker-cmd", "python w.py",
	                      "--gpus", "0,2,3"),
	                0);
	CU_ASSERT_STRING_EQUAL(o.worker_cmd, "python w.py");
	CU_ASSERT_EQUAL(o.n_gpu_ids, 3);
	CU_ASSERT_EQUAL(o.gpu_ids[2], 3);

	CU_ASSERT_EQUAL(parse(&o, err, 6, "run", "--tasks", "t", "--resume", "--results=r", "x"),
	                0);
	CU_ASSERT_TRUE(o.resume);
	CU_ASSERT_FALSE(o.resume_force);

	CU_ASSERT_EQUAL(parse(&o, err, 4, "run", "--tasks", "t", "x"), 0);
	CU_ASSERT_EQUAL(o.stderr_lines, CLI_DEFAULT_STDERR_LINES);
	CU_ASSERT_EQUAL(parse(&o, err, 5, "run", "--tasks", "t", "--stderr-lines=0", "x"), 0);
	CU_ASSERT_EQUAL(o.stderr_lines, 0);
}

static void expect_usage(const char *want, int n, ...)
{
	char *argv[32], err[256];
	cli_opts o;
	va_list ap;

	argv[0] = "gpudispatch";
	va_start(ap, n);
	for (int i = 0; i < n; i++)
		argv[i + 1] = va_arg(ap, char *);
	va_end(ap);
	CU_ASSERT_EQUAL(cli_parse_args(n + 1, argv, &o, err, sizeof(err)), -1);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, want));
	if (!strstr(err, want))
		fprintf(stderr, "\n  message '%s' lacks '%s'\n", err, want);
}

static void test_options_errors(void)
{
	expect_usage("missing the command: run, placement or results", 0);
	expect_usage("unknown command 'frobnicate'", 1, "frobnicate");
	expect_usage("--stderr-lines: '101'", 5, "run", "--tasks", "t", "--stderr-lines", "101");
	expect_usage("unknown option '--bogus'", 4, "run", "--bogus", "--tasks", "t");
	expect_usage("unknown option '-x'", 2, "run", "-x");
	expect_usage("--tasks FILE is required", 2, "run", "echo");
	expect_usage("option --tasks needs a value", 2, "run", "--tasks");
	expect_usage("missing the command", 3, "run", "--tasks", "t");
	expect_usage("--timeout: '-1' is not", 5, "run", "--tasks", "t", "--timeout=-1", "x");
	expect_usage("--timeout: 'abc' is not", 6, "run", "--tasks", "t", "--timeout", "abc", "x");
	expect_usage("--window: '0' is not", 5, "run", "--tasks", "t", "--window=0", "x");
	expect_usage("--ui: 'fancy' is not one of auto, tui, text, none", 6, "run", "--tasks", "t",
	             "--ui", "fancy", "x");
	expect_usage("--gpus: '1,,2'", 6, "run", "--tasks", "t", "--gpus", "1,,2", "x");
	expect_usage("{} misuse", 5, "run", "--tasks", "t", "--worker-cmd", "python w.py {}");
	expect_usage("choose one mode", 6, "run", "--tasks", "t", "--worker-cmd", "w", "echo");
	expect_usage("--shell is for command mode", 6, "run", "--tasks", "t", "--worker-cmd", "w",
	             "--shell");
	expect_usage("--quiet and --output-dir contradict", 7, "run", "--tasks", "t", "--quiet",
	             "--output-dir", "d", "x");
	expect_usage("only replaced in the command", 6, "run", "--tasks", "t", "--results", "r{}",
	             "x");
	expect_usage("{} misuse: the program name '{#}'", 4, "run", "--tasks", "t", "{#}");
	expect_usage("--resume needs --results", 5, "run", "--tasks", "t", "--resume", "x");
	expect_usage("--skip-failed only applies with --resume", 5, "run", "--tasks", "t",
	             "--skip-failed", "x");
	expect_usage("option --shell takes no value", 5, "run", "--tasks", "t", "--shell=1", "x");
	expect_usage("option --json does not apply to 'run'", 5, "run", "--tasks", "t", "--json",
	             "x");
	expect_usage("placement takes no command", 2, "placement", "echo");
	expect_usage("option --tasks does not apply to 'placement'", 3, "placement", "--tasks",
	             "t");
}

static void test_options_misc(void)
{
	cli_opts o;
	char err[256];

	CU_ASSERT_EQUAL(parse(&o, err, 1, "--help"), 0);
	CU_ASSERT_EQUAL(o.cmd, CLI_CMD_HELP);
	CU_ASSERT_EQUAL(parse(&o, err, 1, "-V"), 0);
	CU_ASSERT_EQUAL(o.cmd, CLI_CMD_VERSION);
	CU_ASSERT_EQUAL(parse(&o, err, 2, "run", "-h"), 0);
	CU_ASSERT_EQUAL(o.cmd, CLI_CMD_HELP);
	CU_ASSERT_EQUAL(parse(&o, err, 4, "placement", "--json", "--workers-per-gpu", "2"), 0);
	CU_ASSERT_EQUAL(o.cmd, CLI_CMD_PLACEMENT);
	CU_ASSERT_TRUE(o.json);
	CU_ASSERT_EQUAL(o.workers_per_gpu, 2);
}

/* Every option of the table is in --help. */
static void test_help_lists_options(void)
{
	static const char *const names[] = {
	        "--tasks",        "--worker-cmd",   "--shell",  "--timeout",
	        "--retries",      "--output-dir",   "--quiet",  "--results",
	        "--skip-failed",  "--resume-force", "--resume", "--max-line",
	        "--window",       "--seed",         "--grace",  "--ui",
	        "--refresh",      "--monochrome",   "--gpus",   "--workers-per-gpu",
	        "--no-placement", "--json",         "--help",   "--version",
	};
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);

	cli_usage(f);
	fclose(f);
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		CU_ASSERT_PTR_NOT_NULL(strstr(text, names[i]));
		/* and the parser knows it */
		if (!strstr(text, names[i]))
			fprintf(stderr, "\n  --help lacks %s\n", names[i]);
	}
	free(text);
}

static void test_kv_build(void)
{
	char *argv[] = {"gpudispatch", "run", "--tasks", "t", "--output-dir",
	                "d",           "--",  "echo",    "{}"};
	cli_opts o;
	cli_kv_store s;
	char err[256];
	gd_args args;

	CU_ASSERT_EQUAL_FATAL(cli_parse_args(9, argv, &o, err, sizeof(err)), 0);
	CU_ASSERT_EQUAL_FATAL(cli_kv_build(&o, &s), 0);
	args.kv = s.kv;
	args.n = s.n;
	for (size_t i = 0; i < s.n; i++) {
		if (!strcmp(s.kv[i].key, "mode"))
			CU_ASSERT_STRING_EQUAL(s.kv[i].value, "command");
		if (!strcmp(s.kv[i].key, "argc"))
			CU_ASSERT_STRING_EQUAL(s.kv[i].value, "2");
		if (!strcmp(s.kv[i].key, "arg1"))
			CU_ASSERT_STRING_EQUAL(s.kv[i].value, "{}");
		if (!strcmp(s.kv[i].key, "output_dir"))
			CU_ASSERT_STRING_EQUAL(s.kv[i].value, "d");
	}
	(void)args;
	cli_kv_free(&s);
}

/* The checker behind protocol 2's JSON answers: what it lets into a
 * results record must be one valid JSON value. */
static void test_json_valid(void)
{
	static const char *const good[] = {"0",
	                                   "-1.5e+3",
	                                   "\"a\\u00e9\\n\"",
	                                   "true",
	                                   "null",
	                                   "[]",
	                                   "{}",
	                                   " {\"a\": [1, 2, {\"b\": false}]}\n",
	                                   "\"\xc3\xa9\""};
	static const char *const bad[] = {"",      "01",       "1.",       "nan",   "[1,]",
	                                  "{a:1}", "\"a",      "\"\\x\"",  "[1] 2", "{\"a\" 1}",
	                                  "tru",   "\"\x01\"", "\"\xff\"", "-",     "{\"a\":}"};
	char deep[600];
	size_t at = 99;

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		CU_ASSERT_TRUE(cli_json_valid(good[i], strlen(good[i]), NULL));
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		CU_ASSERT_FALSE(cli_json_valid(bad[i], strlen(bad[i]), NULL));
	CU_ASSERT_FALSE(cli_json_valid("[1, x]", 6, &at));
	CU_ASSERT_EQUAL(at, 4);
	/* nesting is bounded: no stack overflow on hostile input */
	memset(deep, '[', 300);
	memset(deep + 300, ']', 300);
	CU_ASSERT_FALSE(cli_json_valid(deep, 600, NULL));
	CU_ASSERT_TRUE(cli_json_valid(deep + 100, 400, NULL)); /* 200 deep */
}

static void test_base64_utf8_embed(void)
{
	cli_buf b = {0};

	CU_ASSERT_EQUAL(cli_base64(&b, "\x00\xff\n", 3), 0);
	CU_ASSERT_STRING_EQUAL(b.p, "AP8K");
	b.len = 0;
	CU_ASSERT_EQUAL(cli_base64(&b, "ab", 2), 0);
	CU_ASSERT_STRING_EQUAL(b.p, "YWI=");
	CU_ASSERT_TRUE(cli_utf8_valid("h\xc3\xa9", 3));
	CU_ASSERT_FALSE(cli_utf8_valid("h\xc3", 2));
	CU_ASSERT_FALSE(cli_utf8_valid("\xed\xa0\x80", 3)); /* a surrogate */
	b.len = 0;
	CU_ASSERT_EQUAL(cli_json_embed(&b, "{\n\"a\":\r\n1}", 10), 0);
	CU_ASSERT_STRING_EQUAL(b.p, "{ \"a\":  1}"); /* one line in the record */
	cli_buf_free(&b);
}

static void test_setup_arg_options(void)
{
	char *argv[] = {"gpudispatch",      "run",         "--tasks",         "t",
	                "--setup-arg",      "model=m.pt",  "--setup-arg",     "x_1=a=b",
	                "--start-failures", "5",           "--setup-timeout", "2.5",
	                "--worker-cmd",     "python3 w.py"};
	cli_opts o;
	cli_kv_store s;
	char err[256];
	int seen = 0;

	CU_ASSERT_EQUAL_FATAL(cli_parse_args(14, argv, &o, err, sizeof(err)), 0);
	CU_ASSERT_EQUAL(o.n_setup_args, 2);
	CU_ASSERT_EQUAL(o.start_failures, 5);
	CU_ASSERT_DOUBLE_EQUAL(o.setup_timeout, 2.5, 1e-12);
	CU_ASSERT_EQUAL_FATAL(cli_kv_build(&o, &s), 0);
	for (size_t i = 0; i < s.n; i++) {
		if (!strcmp(s.kv[i].key, "setup.model"))
			seen += !strcmp(s.kv[i].value, "m.pt");
		if (!strcmp(s.kv[i].key, "setup.x_1"))
			seen += !strcmp(s.kv[i].value, "a=b"); /* the first = splits */
		if (!strcmp(s.kv[i].key, "start_failures"))
			seen += !strcmp(s.kv[i].value, "5");
	}
	CU_ASSERT_EQUAL(seen, 3);
	cli_kv_free(&s);
	expect_usage("--setup-arg: 'model' is not KEY=VALUE", 5, "run", "--tasks", "t",
	             "--setup-arg", "model", "x");
	expect_usage("--setup-arg: the key '1x' is not a name", 5, "run", "--tasks", "t",
	             "--setup-arg", "1x=2", "x");
	expect_usage("--setup-arg: the key 'a' is given twice", 7, "run", "--tasks", "t",
	             "--setup-arg", "a=1", "--setup-arg", "a=2", "x");
	expect_usage("--start-failures: '0' is not", 5, "run", "--tasks", "t", "--start-failures",
	             "0", "x");
}

int main(void)
{
	CU_pSuite s;
	unsigned fails;

	if (CU_initialize_registry() != CUE_SUCCESS)
		return 1;
	s = CU_add_suite("cli", NULL, NULL);
	CU_add_test(s, "reader: lines, comments, CR, last line", test_reader_lines);
	CU_add_test(s, "reader: empty file, newline only", test_reader_empty_and_newline_only);
	CU_add_test(s, "reader: missing file", test_reader_missing_file);
	CU_add_test(s, "reader: long line, NUL bytes", test_reader_long_line_and_nul);
	CU_add_test(s, "reader: limit edges", test_reader_limit_edges);
	CU_add_test(s, "task encoding", test_task_encode);
	CU_add_test(s, "expand: arguments", test_expand_basic);
	CU_add_test(s, "expand: shell", test_expand_shell);
	CU_add_test(s, "template uses line", test_template_uses_line);
	CU_add_test(s, "json escaping", test_json);
	CU_add_test(s, "status and first line", test_first_line);
	CU_add_test(s, "stderr in a failed command's error", test_stderr_message);
	CU_add_test(s, "json members, string decoding", test_json_members_unstr);
	CU_add_test(s, "options: run", test_options_run);
	CU_add_test(s, "options: errors", test_options_errors);
	CU_add_test(s, "options: help, version, placement", test_options_misc);
	CU_add_test(s, "help lists every option", test_help_lists_options);
	CU_add_test(s, "setup arguments", test_kv_build);
	CU_add_test(s, "json checker", test_json_valid);
	CU_add_test(s, "base64, utf-8, embedding", test_base64_utf8_embed);
	CU_add_test(s, "--setup-arg and friends", test_setup_arg_options);
	CU_basic_set_mode(CU_BRM_VERBOSE);
	CU_basic_run_tests();
	fails = CU_get_number_of_failures();
	CU_cleanup_registry();
	return fails ? 1 : 0;
}
