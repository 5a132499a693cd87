/* Unit tests: the journal (records, torn tails, resume decisions, JSON). */
#define _GNU_SOURCE
#include "journal.h"
#include "jsonw.h"

#include <CUnit/Basic.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char path[256];

static void fresh_path(void)
{
	snprintf(path, sizeof(path), "/tmp/gd-journal-test-%d.jsonl", (int)getpid());
	unlink(path);
}

static gd_worker_stats row(void)
{
	gd_worker_stats r;

	memset(&r, 0, sizeof(r));
	strcpy(r.host, "node\"1");
	r.gpu.index = 2;
	strcpy(r.gpu.bus_id, "0000:07:00.0");
	return r;
}

static void add(gd__journal *j, uint64_t id, const char *task, int status, const char *msg)
{
	gd_worker_stats r = row();
	gd_event ev = {.worker_id = 1,
	               .task_id = id,
	               .attempt = 1,
	               .message = msg,
	               .task_data = task,
	               .task_len = strlen(task),
	               .elapsed_s = 0.5};

	CU_ASSERT_EQUAL(gd__journal_add(j, &ev, status, &r, NULL, NULL), 0);
}

static char *slurp(size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf = calloc(1, 1 << 16);

	*len = fread(buf, 1, (1 << 16) - 1, f);
	fclose(f);
	return buf;
}

static void test_write_and_resume(void)
{
	gd__journal *j;
	char err[256];

	fresh_path();
	CU_ASSERT_EQUAL_FATAL(gd__journal_open(path, 0, 0, NULL, &j, err, sizeof(err)), 0);
	add(j, 0, "task zero", GD_JS_OK, "");
	add(j, 1, "task one", GD_JS_ERROR, "exit status 3\nsecond line");
	add(j, 2, "task two", GD_JS_TIMEOUT, "timed out after 1 s");
	add(j, 3, "task three", GD_JS_ERROR, "flaky");
	add(j, 3, "task three", GD_JS_OK, ""); /* a later run: last record wins */
	CU_ASSERT_EQUAL(gd__journal_close(j), 0);

	size_t len;
	char *text = slurp(&len);
	CU_ASSERT_PTR_NOT_NULL(strstr(text, "\"error\":\"exit status 3\"")); /* first line only */
	CU_ASSERT_PTR_NULL(strstr(text, "second line"));
	CU_ASSERT_PTR_NOT_NULL(strstr(text, "\"host\":\"node\\\"1\"")); /* escaped */
	free(text);

	/* a fresh run refuses a journal with records */
	CU_ASSERT_EQUAL(gd__journal_open(path, 0, 0, NULL, &j, err, sizeof(err)), GD_EJOURNAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "already holds records"));

	CU_ASSERT_EQUAL_FATAL(
	        gd__journal_open(path, GD_RESUME_RETRY_FAILED, 0, NULL, &j, err, sizeof(err)), 0);
	CU_ASSERT_EQUAL(gd__journal_loaded(j), 4);
	CU_ASSERT_EQUAL(gd__journal_check(j, 0, "task zero", 9, err, sizeof(err)), 1);
	CU_ASSERT_EQUAL(gd__journal_check(j, 1, "task one", 8, err, sizeof(err)), 0);
	CU_ASSERT_EQUAL(gd__journal_check(j, 2, "task two", 8, err, sizeof(err)), 0);
	CU_ASSERT_EQUAL(gd__journal_check(j, 3, "task three", 10, err, sizeof(err)), 1);
	CU_ASSERT_EQUAL(gd__journal_check(j, 4, "new", 3, err, sizeof(err)), 0);
	CU_ASSERT_EQUAL(gd__journal_close(j), 0);

	CU_ASSERT_EQUAL_FATAL(
	        gd__journal_open(path, GD_RESUME_SKIP_FAILED, 0, NULL, &j, err, sizeof(err)), 0);
	CU_ASSERT_EQUAL(gd__journal_check(j, 1, "task one", 8, err, sizeof(err)), 1);
	/* the task list changed under the journal */
	CU_ASSERT_EQUAL(gd__journal_check(j, 2, "task 2!!", 8, err, sizeof(err)), GD_EDIGEST);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "task 2 differs"));
	CU_ASSERT_EQUAL(gd__journal_close(j), 0);

	CU_ASSERT_EQUAL_FATAL(
	        gd__journal_open(path, GD_RESUME_RETRY_FAILED, 1, NULL, &j, err, sizeof(err)), 0);
	CU_ASSERT_EQUAL(gd__journal_check(j, 0, "changed", 7, err, sizeof(err)), 0); /* forced */
	CU_ASSERT_EQUAL(gd__journal_close(j), 0);
	unlink(path);
}

static void test_torn_tail(void)
{
	gd__journal *j;
	char err[256];
	size_t len, len2;

	fresh_path();
	CU_ASSERT_EQUAL_FATAL(gd__journal_open(path, 0, 0, NULL, &j, err, sizeof(err)), 0);
	for (int i = 0; i < 10; i++)
		add(j, (uint64_t)i, "t", GD_JS_OK, "");
	CU_ASSERT_EQUAL(gd__journal_close(j), 0);
	char *text = slurp(&len);
	/* cut the last record in half (kill -9 in the middle of a write) */
	CU_ASSERT_EQUAL(truncate(path, (off_t)(len - 20)), 0);
	CU_ASSERT_EQUAL_FATAL(
	        gd__journal_open(path, GD_RESUME_RETRY_FAILED, 0, NULL, &j, err, sizeof(err)), 0);
	CU_ASSERT_EQUAL(gd__journal_loaded(j), 9);
	CU_ASSERT_EQUAL(gd__journal_check(j, 9, "t", 1, err, sizeof(err)), 0); /* runs again */
	add(j, 9, "t", GD_JS_OK, "");
	CU_ASSERT_EQUAL(gd__journal_close(j), 0);
	/* the torn piece was cut off: the file is whole lines again */
	char *again = slurp(&len2);
	const char *last = strstr(text, "{\"id\":9,");
	CU_ASSERT_PTR_NOT_NULL_FATAL(last);
	size_t keep = (size_t)(last - text);
	CU_ASSERT_EQUAL(memcmp(text, again, keep), 0); /* the 9 whole records are untouched */
	CU_ASSERT_EQUAL(strncmp(again + keep, "{\"id\":9,", 7), 0); /* record 9 on its own line */
	CU_ASSERT_EQUAL(again[len2 - 1], '\n');
	free(text);
	free(again);
	CU_ASSERT_EQUAL_FATAL(
	        gd__journal_open(path, GD_RESUME_RETRY_FAILED, 0, NULL, &j, err, sizeof(err)), 0);
	CU_ASSERT_EQUAL(gd__journal_loaded(j), 10);
	CU_ASSERT_EQUAL(gd__journal_close(j), 0);

	/* zeros after the last record (a file system's torn block) */
	int fd = open(path, O_WRONLY | O_APPEND);
	char zeros[100] = {0};
	CU_ASSERT_EQUAL(write(fd, zeros, sizeof(zeros)), (ssize_t)sizeof(zeros));
	close(fd);
	CU_ASSERT_EQUAL_FATAL(
	        gd__journal_open(path, GD_RESUME_RETRY_FAILED, 0, NULL, &j, err, sizeof(err)), 0);
	CU_ASSERT_EQUAL(gd__journal_loaded(j), 10);
	CU_ASSERT_EQUAL(gd__journal_close(j), 0);
	unlink(path);
}

static void test_parse_rejects_damage(void)
{
	gd__journal *j;
	char err[256];
	size_t len;
	gd__jrec r;

	fresh_path();
	CU_ASSERT_EQUAL_FATAL(gd__journal_open(path, 0, 0, NULL, &j, err, sizeof(err)), 0);
	add(j, 12345, "payload", GD_JS_OK, "");
	CU_ASSERT_EQUAL(gd__journal_close(j), 0);
	char *line = slurp(&len);
	CU_ASSERT_EQUAL_FATAL(line[len - 1], '\n');
	len--;
	CU_ASSERT_EQUAL(gd__journal_parse_line(line, len, &r), 1);
	CU_ASSERT_EQUAL(r.id, 12345);
	CU_ASSERT_EQUAL(r.status, GD_JS_OK);
	CU_ASSERT_EQUAL(r.digest, gd__fnv1a("payload", 7));
	/* any single changed byte, and any prefix, is refused */
	for (size_t i = 0; i < len; i++) {
		char saved = line[i];
		line[i] = (char)(saved ^ 0x01);
		CU_ASSERT_EQUAL(gd__journal_parse_line(line, len, &r), 0);
		line[i] = saved;
		CU_ASSERT_EQUAL(gd__journal_parse_line(line, i, &r), 0);
	}
	free(line);
	unlink(path);
}

/* A record with 70 kB of extra members is whole, not "damaged" or "torn". */
static size_t big_extra(void *user, const gd_event *ev, char *buf, size_t size)
{
	size_t n = 70000 + 10;

	(void)user;
	(void)ev;
	if (n >= size)
		return n; /* asks for more room */
	memcpy(buf, "\"big\":\"", 7);
	memset(buf + 7, 'x', n - 8);
	buf[n - 1] = '"';
	return n;
}

static void test_long_record(void)
{
	gd__journal *j;
	gd_worker_stats r = row();
	gd_event ev = {.task_id = 5, .attempt = 1, .message = "", .task_data = "t", .task_len = 1};
	char err[256];
	size_t len;

	fresh_path();
	CU_ASSERT_EQUAL_FATAL(gd__journal_open(path, 0, 0, NULL, &j, err, sizeof(err)), 0);
	CU_ASSERT_EQUAL(gd__journal_add(j, &ev, GD_JS_OK, &r, big_extra, NULL), 0);
	CU_ASSERT_EQUAL(gd__journal_close(j), 0);
	free(slurp(&len));
	CU_ASSERT_EQUAL_FATAL(
	        gd__journal_open(path, GD_RESUME_RETRY_FAILED, 0, NULL, &j, err, sizeof(err)), 0);
	CU_ASSERT_EQUAL(gd__journal_loaded(j), 1);
	CU_ASSERT_EQUAL(gd__journal_check(j, 5, "t", 1, err, sizeof(err)), 1);
	CU_ASSERT_EQUAL(gd__journal_close(j), 0);
	struct stat sb;
	CU_ASSERT_EQUAL(stat(path, &sb), 0);
	CU_ASSERT(sb.st_size > 70000); /* nothing was cut off */
	unlink(path);
}

static void test_json_strings(void)
{
	gd__bytes b = {0};
	const char odd[] = "a\"b\\c\n\x01\xff\xc3\xa9\xe2\x82"; /* quote, escapes, bad UTF-8, é */

	CU_ASSERT_EQUAL(gd__json_str(&b, odd, sizeof(odd) - 1), 0);
	CU_ASSERT_EQUAL(b.len, strlen("\"a\\\"b\\\\c\\n\\u0001\\ufffd\xc3\xa9\\ufffd\\ufffd\""));
	CU_ASSERT_EQUAL(
	        memcmp(b.p, "\"a\\\"b\\\\c\\n\\u0001\\ufffd\xc3\xa9\\ufffd\\ufffd\"", b.len), 0);
	b.len = 0;
	CU_ASSERT_EQUAL(gd__json_str(&b, "nul\0byte", 8), 0);
	CU_ASSERT_EQUAL(memcmp(b.p, "\"nul\\u0000byte\"", b.len), 0);
	gd__bytes_free(&b);
}

static int put_bytes(void *sink, const void *data, size_t n)
{
	return gd__bytes_append(sink, data, n);
}

static void test_json_writer(void)
{
	gd__bytes b = {0};
	gd__jsonw w;
	const char want[] = "{\"a\": -12, \"b\": [true, null, \"x\\ty\", {}], \"t\": "
	                    "1796313270.248718, \"u\": 18446744073709551615, \"h\": "
	                    "\"00000000000000ff\", \"z\": 0.000, \"r\": {\"k\": 1}, \"n\": null}";

	gd__jsonw_init(&w, put_bytes, &b, 1);
	gd__jsonw_obj(&w);
	gd__jsonw_key(&w, "a");
	gd__jsonw_int(&w, -12);
	gd__jsonw_key(&w, "b");
	gd__jsonw_arr(&w);
	gd__jsonw_bool(&w, 1);
	gd__jsonw_null(&w);
	gd__jsonw_str(&w, "x\ty", 3);
	gd__jsonw_obj(&w);
	gd__jsonw_obj_end(&w);
	gd__jsonw_arr_end(&w);
	gd__jsonw_key(&w, "t");
	gd__jsonw_fixed(&w, 1796313270.248718, 6);
	gd__jsonw_key(&w, "u");
	gd__jsonw_uint(&w, UINT64_MAX);
	gd__jsonw_key(&w, "h");
	gd__jsonw_hex64(&w, 255);
	gd__jsonw_key(&w, "z");
	gd__jsonw_fixed(&w, -0.0001, 3);
	gd__jsonw_key(&w, "r");
	gd__jsonw_json(&w, "{\"k\":\n1}", 8);
	gd__jsonw_key(&w, "n");
	gd__jsonw_cstr(&w, NULL);
	gd__jsonw_obj_end(&w);
	CU_ASSERT_EQUAL(gd__jsonw_flush(&w), 0);
	CU_ASSERT_EQUAL(b.len, sizeof(want) - 1);
	CU_ASSERT_EQUAL(memcmp(b.p, want, b.len), 0);
	if (b.len != sizeof(want) - 1 || memcmp(b.p, want, b.len))
		fprintf(stderr, "\n  got  %.*s\n  want %s\n", (int)b.len, (char *)b.p, want);
	gd__bytes_free(&b);
}

int main(void)
{
	CU_pSuite s;

	if (CU_initialize_registry() != CUE_SUCCESS)
		return 1;
	s = CU_add_suite("journal", NULL, NULL);
	CU_add_test(s, "write and resume", test_write_and_resume);
	CU_add_test(s, "torn tail", test_torn_tail);
	CU_add_test(s, "damaged lines", test_parse_rejects_damage);
	CU_add_test(s, "JSON strings", test_json_strings);
	CU_add_test(s, "JSON writer", test_json_writer);
	CU_add_test(s, "a 70 kB record", test_long_record);
	CU_basic_set_mode(CU_BRM_VERBOSE);
	CU_basic_run_tests();
	unsigned failed = CU_get_number_of_failures();
	CU_cleanup_registry();
	return failed ? 1 : 0;
}
