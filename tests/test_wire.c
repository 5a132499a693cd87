/* Unit tests: the wire format (records, payloads, malformed input). */
#include "wire.h"

#include <CUnit/Basic.h>
#include <stdlib.h>
#include <string.h>

static int collect_n;
static gd__rec collected[16];

static int collect(void *ctx, const gd__rec *r)
{
	(void)ctx;
	if (collect_n < 16)
		collected[collect_n] = *r;
	collect_n++;
	return 0;
}

static void test_header_layout(void)
{
	gd__rec r = {.type = GD_REC_SUCCESS,
	             .flags = 1,
	             .attempt = 0x0203,
	             .worker = 0x04050607,
	             .task_id = 0x08090a0b0c0d0e0fULL,
	             .aux = 0x1011121314151617ULL,
	             .len = 3};
	gd__bytes b = {0};
	static const uint8_t want[] = {7,    1,    2,    3,    4,    5,    6,    7,
	                               8,    9,    0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f,
	                               0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17,
	                               0,    0,    0,    3,    'a',  'b',  'c'};

	CU_ASSERT_EQUAL(GD_REC_SUCCESS, 7);
	CU_ASSERT_EQUAL(gd__rec_append(&b, &r, "abc"), 0);
	CU_ASSERT_EQUAL(b.len, sizeof(want));
	CU_ASSERT_EQUAL(memcmp(b.p, want, sizeof(want)), 0); /* network byte order */
	gd__bytes_free(&b);
}

static void test_roundtrip_batch(void)
{
	gd__bytes b = {0};
	char err[128];

	for (int i = 0; i < 5; i++) {
		gd__rec r = {.type = GD_REC_TASK,
		             .attempt = 1,
		             .worker = 2,
		             .task_id = 100 + i,
		             .len = (uint32_t)i};
		CU_ASSERT_EQUAL(gd__rec_append(&b, &r, "xxxx"), 0);
	}
	collect_n = 0;
	CU_ASSERT_EQUAL(gd__msg_foreach(b.p, b.len, collect, NULL, err, sizeof(err)), 0);
	CU_ASSERT_EQUAL(collect_n, 5);
	for (int i = 0; i < 5; i++) {
		CU_ASSERT_EQUAL(collected[i].task_id, 100 + (uint64_t)i);
		CU_ASSERT_EQUAL(collected[i].len, (uint32_t)i);
		CU_ASSERT_EQUAL(collected[i].worker, 2);
	}
	gd__bytes_free(&b);
}

/* Every strict prefix of a valid message is rejected as truncated, and is
 * read without going past its end (AddressSanitizer checks that: each prefix
 * is copied into a buffer of exactly its size). */
static void test_truncated(void)
{
	gd__bytes b = {0};
	gd__rec r = {.type = GD_REC_ERROR, .task_id = 9, .len = 5};
	char err[128];

	CU_ASSERT_EQUAL(gd__rec_append(&b, &r, "boom!"), 0);
	for (size_t n = 1; n < b.len; n++) {
		uint8_t *copy = malloc(n);
		memcpy(copy, b.p, n);
		collect_n = 0;
		err[0] = '\0';
		CU_ASSERT_EQUAL(gd__msg_foreach(copy, n, collect, NULL, err, sizeof(err)),
		                GD_EPROTO);
		CU_ASSERT_EQUAL(collect_n, 0);
		CU_ASSERT_PTR_NOT_NULL(strstr(err, "truncated"));
		free(copy);
	}
	CU_ASSERT_EQUAL(gd__msg_foreach(b.p, 0, collect, NULL, err, sizeof(err)), GD_EPROTO);
	gd__bytes_free(&b);
}

static void test_bad_type_and_length(void)
{
	uint8_t m[GD_REC_HDR + 4] = {0};
	gd__rec r = {.type = GD_REC_TASK, .len = 4};
	char err[128];

	gd__rec_put_hdr(m, &r);
	m[0] = 0;
	CU_ASSERT_EQUAL(gd__msg_foreach(m, sizeof(m), collect, NULL, err, sizeof(err)), GD_EPROTO);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "unknown record type 0"));
	m[0] = GD_REC__MAX;
	CU_ASSERT_EQUAL(gd__msg_foreach(m, sizeof(m), collect, NULL, err, sizeof(err)), GD_EPROTO);
	/* a length that claims more than the format allows */
	r.len = 0xffffffffu;
	gd__rec_put_hdr(m, &r);
	CU_ASSERT_EQUAL(gd__msg_foreach(m, sizeof(m), collect, NULL, err, sizeof(err)), GD_EPROTO);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "payload bytes"));
	/* a valid record followed by stray bytes */
	uint8_t two[GD_REC_HDR + 3] = {0};
	r.len = 0;
	gd__rec_put_hdr(two, &r);
	collect_n = 0;
	CU_ASSERT_EQUAL(gd__msg_foreach(two, sizeof(two), collect, NULL, err, sizeof(err)),
	                GD_EPROTO);
	CU_ASSERT_EQUAL(collect_n, 1); /* the good record before it was read */
}

static void test_stream_parse_needs_more(void)
{
	gd__bytes b = {0};
	gd__rec r = {.type = GD_REC_SUCCESS, .len = 10}, out;
	size_t used = 0;
	char err[64];

	gd__rec_append(&b, &r, "0123456789");
	CU_ASSERT_EQUAL(gd__rec_parse(b.p, 10, &out, &used, err, sizeof(err)), 0);
	CU_ASSERT_EQUAL(gd__rec_parse(b.p, b.len - 1, &out, &used, err, sizeof(err)), 0);
	CU_ASSERT_EQUAL(gd__rec_parse(b.p, b.len, &out, &used, err, sizeof(err)), 1);
	CU_ASSERT_EQUAL(used, b.len);
	CU_ASSERT_EQUAL(memcmp(out.payload, "0123456789", 10), 0);
	gd__bytes_free(&b);
}

static void test_config_roundtrip(void)
{
	gd_kv kv[] = {{"model_path", "/models/m.bin"}, {"empty", ""}};
	int ids[] = {3, 1};
	gd_config cfg;
	gd_config_init(&cfg, sizeof(cfg));
	gd__bytes b = {0};
	gd__wcfg w;

	cfg.window = 7;
	cfg.task_timeout = 2.5;
	cfg.base_seed = 1234567890123ULL;
	cfg.setup_args = kv;
	cfg.n_setup_args = 2;
	cfg.gpu_ids = ids;
	cfg.n_gpu_ids = 2;
	cfg.isolation = GD_ISOLATE_NONE;
	CU_ASSERT_EQUAL(gd__cfg_pack(&cfg, &b), 0);
	CU_ASSERT_EQUAL(gd__cfg_unpack(b.p, b.len, &w), 0);
	CU_ASSERT_EQUAL(w.window, 7);
	CU_ASSERT_EQUAL(w.task_timeout, 2.5);
	CU_ASSERT_EQUAL(w.base_seed, 1234567890123ULL);
	CU_ASSERT_EQUAL(w.isolation, GD_ISOLATE_NONE);
	CU_ASSERT_EQUAL(w.args.n, 2);
	CU_ASSERT_STRING_EQUAL(gd_args_get(&w.args, "model_path"), "/models/m.bin");
	CU_ASSERT_STRING_EQUAL(gd_args_get(&w.args, "empty"), "");
	CU_ASSERT_PTR_NULL(gd_args_get(&w.args, "missing"));
	CU_ASSERT_EQUAL(w.n_gpu_ids, 2);
	CU_ASSERT_EQUAL(w.gpu_ids[0], 3);
	gd__cfg_free(&w);

	/* every truncation is refused, never read past its end */
	for (size_t n = 0; n < b.len; n++) {
		uint8_t *copy = malloc(n ? n : 1);
		memcpy(copy, b.p, n);
		CU_ASSERT_NOT_EQUAL(gd__cfg_unpack(copy, n, &w), 0);
		gd__cfg_free(&w);
		free(copy);
	}
	/* a window of 0 in a message is refused too */
	b.p[3] = 0;
	CU_ASSERT_EQUAL(gd__cfg_unpack(b.p, b.len, &w), GD_EPROTO);
	gd__cfg_free(&w);
	gd__bytes_free(&b);
}

static void test_hello_roundtrip(void)
{
	gd__hello h = {.pid = 4242}, o;
	gd__bytes b = {0};

	strcpy(h.host, "node17");
	h.gpu.index = 5;
	h.gpu.numa_node = 1;
	strcpy(h.gpu.bus_id, "0000:b7:00.0");
	strcpy(h.gpu.cpuset, "8-15,24-31");
	strcpy(h.warning, "far cores");
	h.drop_fd[0] = 17;
	h.drop_fd[GD_DROPS - 1] = -1;
	h.drop_token = 0x0123456789abcdefULL;
	CU_ASSERT_EQUAL(gd__hello_pack(&h, &b), 0);
	CU_ASSERT_EQUAL(gd__hello_unpack(b.p, b.len, &o), 0);
	CU_ASSERT_EQUAL(o.pid, 4242);
	CU_ASSERT_STRING_EQUAL(o.host, "node17");
	CU_ASSERT_EQUAL(o.gpu.index, 5);
	CU_ASSERT_EQUAL(o.gpu.numa_node, 1);
	CU_ASSERT_STRING_EQUAL(o.gpu.bus_id, "0000:b7:00.0");
	CU_ASSERT_STRING_EQUAL(o.gpu.cpuset, "8-15,24-31");
	CU_ASSERT_STRING_EQUAL(o.warning, "far cores");
	CU_ASSERT_EQUAL(o.drop_fd[0], 17);
	CU_ASSERT_EQUAL(o.drop_fd[GD_DROPS - 1], -1);
	CU_ASSERT_EQUAL(o.drop_token, 0x0123456789abcdefULL);
	for (size_t n = 0; n < b.len; n++) {
		uint8_t *copy = malloc(n ? n : 1);
		memcpy(copy, b.p, n);
		CU_ASSERT_EQUAL(gd__hello_unpack(copy, n, &o), GD_EPROTO);
		free(copy);
	}
	gd__bytes_free(&b);
}

/* The shared-memory descriptor: what rank 0 or the supervisor packs is what
 * the supervisor or the executor reads; a wrong size or an overflowing range
 * is refused. */
static void test_shm_desc(void)
{
	gd__rec r = {.type = GD_REC_TASK, .attempt = 2, .worker = 7, .task_id = 99, .len = 5};
	uint8_t buf[GD_REC_HDR + GD_SHM_DESC], bad[GD_REC_HDR + GD_SHM_DESC];
	gd__rec o;
	size_t used;
	char err[128];
	uint32_t b;
	uint64_t off, len;

	gd__rec_desc_put(buf, &r, GD_REC_TASK_DROP, 2, GD_DROP_OFF, 1u << 20);
	CU_ASSERT_EQUAL(gd__rec_parse(buf, sizeof(buf), &o, &used, err, sizeof(err)), 1);
	CU_ASSERT_EQUAL(used, sizeof(buf));
	CU_ASSERT_EQUAL(o.type, GD_REC_TASK_DROP);
	CU_ASSERT_EQUAL(o.task_id, 99);
	CU_ASSERT_EQUAL(o.attempt, 2);
	CU_ASSERT_EQUAL(o.worker, 7);
	CU_ASSERT_EQUAL(o.len, GD_SHM_DESC);
	CU_ASSERT_EQUAL(gd__rec_desc_get(&o, &b, &off, &len), 0);
	CU_ASSERT_EQUAL(b, 2);
	CU_ASSERT_EQUAL(off, GD_DROP_OFF);
	CU_ASSERT_EQUAL(len, 1u << 20);

	o.len = GD_SHM_DESC - 1; /* short */
	CU_ASSERT_EQUAL(gd__rec_desc_get(&o, &b, &off, &len), GD_EPROTO);
	gd__rec_desc_put(bad, &r, GD_REC_TASK_SHM, 0, UINT64_MAX - 10, 100); /* wraps */
	CU_ASSERT_EQUAL(gd__rec_parse(bad, sizeof(bad), &o, &used, err, sizeof(err)), 1);
	CU_ASSERT_EQUAL(gd__rec_desc_get(&o, &b, &off, &len), GD_EPROTO);
	gd__rec_desc_put(bad, &r, GD_REC_TASK_SHM, 0, 0, (uint64_t)GD_REC_MAX_PAYLOAD + 1);
	CU_ASSERT_EQUAL(gd__rec_parse(bad, sizeof(bad), &o, &used, err, sizeof(err)), 1);
	CU_ASSERT_EQUAL(gd__rec_desc_get(&o, &b, &off, &len), GD_EPROTO);
}

static void test_errors_table(void)
{
	CU_ASSERT_STRING_EQUAL(gd_strerror(0), "success");
	CU_ASSERT_PTR_NOT_NULL(strstr(gd_strerror(GD_EWINDOW), "window"));
	CU_ASSERT_PTR_NOT_NULL(strstr(gd_strerror(GD_ENOWORKER), "worker"));
	CU_ASSERT_STRING_EQUAL(gd_err_name(GD_EPROTO), "GD_EPROTO");
	CU_ASSERT_STRING_EQUAL(gd_strerror(-9999), "unknown error");
	/* codes are distinct and every one has its own message */
	for (int a = -1; a >= GD_ENOTINIT; a--)
		for (int c = a - 1; c >= GD_ENOTINIT; c--)
			CU_ASSERT_STRING_NOT_EQUAL(gd_strerror(a), gd_strerror(c));
}

static void test_config_defaults(void)
{
	gd_config c;

	gd_config_init(&c, sizeof(c));
	CU_ASSERT_EQUAL(c.window, 4);
	CU_ASSERT_EQUAL(c.task_timeout, 0);
	CU_ASSERT_EQUAL(c.placement, 1);
	CU_ASSERT_EQUAL(c.size, sizeof(c));
	CU_ASSERT_EQUAL(c.workers_per_gpu, 1);
	CU_ASSERT_EQUAL(c.tick_s, 0.25);
	CU_ASSERT_EQUAL(c.shm, 1);
	/* a size below the first release's is refused, and NULL */
	CU_ASSERT_EQUAL(gd_config_init(&c, sizeof(size_t)), GD_EINVAL);
	/* the first release's size is its whole sizeof, tail padding too (it
	 * ended with `shm`): one byte less is refused, never written past */
	size_t v1 = (offsetof(gd_config, shm) + sizeof(int) + 7) & ~(size_t)7;
	CU_ASSERT_EQUAL(gd_config_init(&c, v1 - 1), GD_EINVAL);
	CU_ASSERT_EQUAL(gd_config_init(&c, v1), 0);
	CU_ASSERT_EQUAL(gd_config_init(&c, sizeof(c)), 0);
	CU_ASSERT_EQUAL(c.gpus_per_worker, 1);
	struct {
		gd_config c;
		unsigned char tail[16];
	} big;
	memset(&big, 0xab, sizeof(big));
	CU_ASSERT_EQUAL(gd_config_init(&big.c, sizeof(big.c)), 0);
	CU_ASSERT_EQUAL(big.tail[0], 0xab); /* nothing past the size given */
	CU_ASSERT_EQUAL(gd_config_init(&big.c, sizeof(big)), 0);
	CU_ASSERT_EQUAL(big.tail[15], 0); /* a newer application's members: zero */
	CU_ASSERT_EQUAL(big.c.size, sizeof(big));
	CU_ASSERT_EQUAL(big.c.window, 4);
	CU_ASSERT_EQUAL(gd_config_init(NULL, sizeof(c)), GD_EINVAL);
	gd_callbacks cb;
	CU_ASSERT_EQUAL(gd_callbacks_init(&cb, sizeof(cb)), 0);
	CU_ASSERT_EQUAL(cb.size, sizeof(cb));
	CU_ASSERT_PTR_NULL(cb.on_success);
	CU_ASSERT_EQUAL(gd_callbacks_init(&cb, 4), GD_EINVAL);
	CU_ASSERT_STRING_EQUAL(gd_worker_state_name(GD_WS_BUSY), "processing");
}

int main(void)
{
	CU_pSuite s;

	if (CU_initialize_registry() != CUE_SUCCESS)
		return 1;
	s = CU_add_suite("wire", NULL, NULL);
	CU_add_test(s, "header layout", test_header_layout);
	CU_add_test(s, "batch round trip", test_roundtrip_batch);
	CU_add_test(s, "truncated messages", test_truncated);
	CU_add_test(s, "bad type and length", test_bad_type_and_length);
	CU_add_test(s, "stream needs more", test_stream_parse_needs_more);
	CU_add_test(s, "config round trip", test_config_roundtrip);
	CU_add_test(s, "hello round trip", test_hello_roundtrip);
	CU_add_test(s, "shared-memory descriptor", test_shm_desc);
	CU_add_test(s, "error table", test_errors_table);
	CU_add_test(s, "config defaults", test_config_defaults);
	CU_basic_set_mode(CU_BRM_VERBOSE);
	CU_basic_run_tests();
	unsigned failed = CU_get_number_of_failures();
	CU_cleanup_registry();
	return failed ? 1 : 0;
}
