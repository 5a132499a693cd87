/*
 * Unit tests of GPU placement (src/placement.c) on the fake hwloc topologies
 * of ../shared/topologies ($GD_TOPOLOGIES): GPU discovery and its traps, the
 * restriction variables, the per-node assignment, CPU workers, the variables
 * the executor gets, and applying a placement.
 */
#define _GNU_SOURCE
#include "placement.h"

#include <CUnit/Basic.h>
#include <hwloc.h>

#include <dlfcn.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef GD_TOPOLOGIES_DEFAULT
#define GD_TOPOLOGIES_DEFAULT "../shared/topologies"
#endif

/* ------------------------------------------------------------ helpers */

/* A fake environment: NULL-terminated name/value pairs. */
typedef struct fake_env {
	const char *kv[16];
} fake_env;

static const char *fake_getenv(void *ctx, const char *name)
{
	const fake_env *e = ctx;

	for (int i = 0; e && e->kv[i]; i += 2)
		if (!strcmp(e->kv[i], name))
			return e->kv[i + 1];
	return NULL;
}

static char topo_dir[1024];
static char stripped_nv[1100], stripped_amd[1100], stripped_1s[1100];

static const char *xml(const char *preset)
{
	static char path[4][1100];
	static int k;

	k = (k + 1) % 4;
	snprintf(path[k], sizeof(path[k]), "%s/node-%s.xml", topo_dir, preset);
	return path[k];
}

/* Place worker `idx` of `nw` on the topology file with the environment env. */
static int place(const char *path, int idx, int nw, fake_env *env, const int *ids, size_t nids,
                 unsigned wpg, gd__placement *p, char *err, size_t errlen)
{
	gd__place_req r = {.local_index = idx,
	                   .local_workers = nw,
	                   .gpu_ids = ids,
	                   .n_gpu_ids = nids,
	                   .workers_per_gpu = wpg,
	                   .xml_path = path,
	                   .getenv_fn = fake_getenv,
	                   .getenv_ctx = env};

	return gd__place_compute(&r, p, err, errlen);
}

static const char *env_of(const gd__placement *p, const char *name)
{
	for (int i = 0; i < p->n_env; i++)
		if (!strcmp(p->env_name[i], name))
			return p->env_value[i];
	return NULL;
}

/* Does the list cpuset equal the README's hex cpuset (hwloc's own parser)? */
static int same_set(const char *list, const char *hex)
{
	hwloc_bitmap_t a = hwloc_bitmap_alloc(), b = hwloc_bitmap_alloc();
	int ok = hwloc_bitmap_list_sscanf(a, list) == 0 && hwloc_bitmap_sscanf(b, hex) == 0 &&
	         hwloc_bitmap_isequal(a, b);

	hwloc_bitmap_free(a);
	hwloc_bitmap_free(b);
	return ok;
}

/*
 * Copy a topology without the vendor backends' OS devices (cudaN, nvmlN,
 * openclXdN, rsmiN): what Debian's hwloc (no CUDA/NVML/RSMI plugin) sees on a
 * real node, where only the PCI device and its DRM cardN/renderD exist.
 */
static int strip_backends(const char *src, char *dst, size_t dstlen)
{
	FILE *in = fopen(src, "r"), *out;
	char line[4096], close_tag[256] = "";
	int fd, skipping = 0;

	snprintf(dst, dstlen, "/tmp/gd-test-placement-XXXXXX");
	fd = mkstemp(dst);
	if (!in || fd < 0) {
		if (in)
			fclose(in);
		return -1;
	}
	out = fdopen(fd, "w");
	while (fgets(line, sizeof(line), in)) {
		if (skipping) {
			if (!strcmp(line, close_tag))
				skipping = 0;
			continue;
		}
		if (strstr(line, "type=\"OSDev\"") && strstr(line, "subtype=\"")) {
			size_t ind = strspn(line, " ");

			if (!strstr(line, "/>")) {
				snprintf(close_tag, sizeof(close_tag), "%.*s</object>\n", (int)ind,
				         line);
				skipping = 1;
			}
			continue;
		}
		fputs(line, out);
	}
	fclose(in);
	fclose(out);
	return 0;
}

static const char *bus_2s[8] = {"0000:07:00.0", "0000:0f:00.0", "0000:47:00.0", "0000:4e:00.0",
                                "0000:87:00.0", "0000:90:00.0", "0000:b7:00.0", "0000:bd:00.0"};
static const char *bus_amd[8] = {"0000:07:00.0", "0000:0a:00.0", "0000:27:00.0", "0000:2a:00.0",
                                 "0000:87:00.0", "0000:8a:00.0", "0000:a7:00.0", "0000:aa:00.0"};
static const char *hex_amd[8] = {"0x000f000f", "0x000f000f", "0x00f000f0", "0x00f000f0",
                                 "0x0f000f00", "0x0f000f00", "0xf000f000", "0xf000f000"};

/* --------------------------------------------------------- topologies */

static void test_1s_2gpu(void)
{
	gd__placement p;
	char err[512];

	for (int w = 0; w < 2; w++) {
		char uuid[64];

		CU_ASSERT_EQUAL_FATAL(
		        place(xml("1s-2gpu"), w, 2, NULL, NULL, 0, 1, &p, err, sizeof(err)), 0);
		CU_ASSERT_EQUAL(p.n_gpus, 2); /* the ASPEED BMC's card0 is not counted */
		CU_ASSERT_EQUAL(p.gpu.index, w);
		CU_ASSERT_STRING_EQUAL(p.gpu.bus_id, w ? "0000:33:00.0" : "0000:19:00.0");
		CU_ASSERT(same_set(p.gpu.cpuset, "0x0000ffff"));
		CU_ASSERT_STRING_EQUAL(p.gpu.cpuset, "0-15");
		CU_ASSERT_EQUAL(p.gpu.numa_node, 0);
		CU_ASSERT_STRING_EQUAL(p.gpu.vendor, "NVIDIA");
		CU_ASSERT_STRING_EQUAL(p.gpu.model, "NVIDIA A10");
		snprintf(uuid, sizeof(uuid), "GPU-00000000-fa4e-0000-0000-00000000000%d", w);
		CU_ASSERT_STRING_EQUAL(p.gpu.uuid, uuid);
		CU_ASSERT_EQUAL(p.cpu_worker, 0);
		CU_ASSERT_STRING_EQUAL(p.nodeset, ""); /* one NUMA node: nothing to bind */
		CU_ASSERT_STRING_EQUAL(p.warning, "");
		CU_ASSERT_PTR_NOT_NULL_FATAL(env_of(&p, "CUDA_DEVICE_ORDER"));
		CU_ASSERT_STRING_EQUAL(env_of(&p, "CUDA_DEVICE_ORDER"), "PCI_BUS_ID");
		CU_ASSERT_PTR_NOT_NULL_FATAL(env_of(&p, "CUDA_VISIBLE_DEVICES"));
		CU_ASSERT_STRING_EQUAL(env_of(&p, "CUDA_VISIBLE_DEVICES"), uuid);
		CU_ASSERT_PTR_NULL(env_of(&p, "ROCR_VISIBLE_DEVICES"));
	}
}

static void test_2s_8gpu(void)
{
	gd__placement p;
	char err[512];

	for (int w = 0; w < 8; w++) {
		char tok[64];

		CU_ASSERT_EQUAL_FATAL(
		        place(xml("2s-8gpu"), w, 8, NULL, NULL, 0, 1, &p, err, sizeof(err)), 0);
		/* cudaN + nvmlN + openclXdN + cardN + renderD per GPU: still 8 */
		CU_ASSERT_EQUAL(p.n_gpus, 8);
		CU_ASSERT_EQUAL(p.gpu.index, w);
		CU_ASSERT_STRING_EQUAL(p.gpu.bus_id, bus_2s[w]);
		CU_ASSERT(same_set(p.gpu.cpuset, w < 4 ? "0x00ff00ff" : "0xff00ff00"));
		CU_ASSERT_STRING_EQUAL(p.gpu.cpuset, w < 4 ? "0-7,16-23" : "8-15,24-31");
		CU_ASSERT_EQUAL(p.gpu.numa_node, w < 4 ? 0 : 1);
		CU_ASSERT_STRING_EQUAL(p.nodeset, w < 4 ? "0" : "1");
		CU_ASSERT_STRING_EQUAL(p.gpu.model, "NVIDIA A100-SXM4-40GB");
		snprintf(tok, sizeof(tok), "GPU-00000000-fa4e-0000-0000-00000000000%d", w);
		CU_ASSERT_STRING_EQUAL(env_of(&p, "CUDA_VISIBLE_DEVICES"), tok);
		CU_ASSERT_STRING_EQUAL(p.warning, "");
		CU_ASSERT_STRING_EQUAL(p.note, "");
	}
	/* 9 workers: the BMC VGA and the HCAs must not make up a 9th GPU. */
	CU_ASSERT_EQUAL(place(xml("2s-8gpu"), 8, 9, NULL, NULL, 0, 1, &p, err, sizeof(err)),
	                GD_EPLACEMENT);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "9 worker ranks on this node but only 8 usable GPUs"));
}

static void test_amd_2s4n(void)
{
	gd__placement p;
	char err[512];

	for (int w = 0; w < 8; w++) {
		char tok[8];

		CU_ASSERT_EQUAL_FATAL(
		        place(xml("2s4n-8gpu-amd"), w, 8, NULL, NULL, 0, 1, &p, err, sizeof(err)),
		        0);
		CU_ASSERT_EQUAL(p.n_gpus, 8);
		CU_ASSERT_EQUAL(p.gpu.index, w);
		CU_ASSERT_STRING_EQUAL(p.gpu.bus_id, bus_amd[w]);
		CU_ASSERT(same_set(p.gpu.cpuset, hex_amd[w]));
		CU_ASSERT_EQUAL(p.gpu.numa_node, w / 2);
		CU_ASSERT_STRING_EQUAL(p.gpu.vendor, "AMD");
		CU_ASSERT_STRING_EQUAL(p.gpu.model, "AMD Instinct MI210");
		CU_ASSERT_STRING_EQUAL(p.gpu.uuid, "");
		snprintf(tok, sizeof(tok), "%d", w);
		CU_ASSERT_PTR_NOT_NULL_FATAL(env_of(&p, "ROCR_VISIBLE_DEVICES"));
		CU_ASSERT_STRING_EQUAL(env_of(&p, "ROCR_VISIBLE_DEVICES"), tok);
		CU_ASSERT_STRING_EQUAL(env_of(&p, "HIP_VISIBLE_DEVICES"), "0");
		CU_ASSERT_PTR_NULL(env_of(&p, "CUDA_VISIBLE_DEVICES"));
	}
}

static void test_nogpu_vm(void)
{
	gd__placement p;
	char err[512];

	CU_ASSERT_EQUAL_FATAL(place(xml("nogpu-vm"), 0, 1, NULL, NULL, 0, 1, &p, err, sizeof(err)),
	                      0);
	CU_ASSERT_EQUAL(p.cpu_worker, 1);
	CU_ASSERT_EQUAL(p.n_gpus, 0);
	CU_ASSERT_EQUAL(p.gpu.index, -1);
	CU_ASSERT_STRING_EQUAL(p.gpu.bus_id, "");
	CU_ASSERT_STRING_EQUAL(p.gpu.cpuset, "0-1");
	CU_ASSERT_EQUAL(p.gpu.numa_node, 0);
	CU_ASSERT_EQUAL(p.n_env, 0);
	CU_ASSERT_PTR_NOT_NULL(strstr(p.note, "no GPU found on "));
	CU_ASSERT_PTR_NOT_NULL(strstr(p.note, ": running as CPU workers"));
	CU_ASSERT_STRING_EQUAL(p.warning, "");

	/* Two CPU workers: one core each. */
	for (int w = 0; w < 2; w++) {
		CU_ASSERT_EQUAL_FATAL(
		        place(xml("nogpu-vm"), w, 2, NULL, NULL, 0, 1, &p, err, sizeof(err)), 0);
		CU_ASSERT_STRING_EQUAL(p.gpu.cpuset, w ? "1" : "0");
		CU_ASSERT_STRING_EQUAL(p.warning, "");
	}
	/* Three on two cores: they must share, and say so. */
	CU_ASSERT_EQUAL_FATAL(place(xml("nogpu-vm"), 2, 3, NULL, NULL, 0, 1, &p, err, sizeof(err)),
	                      0);
	CU_ASSERT_STRING_EQUAL(p.gpu.cpuset, "0");
	CU_ASSERT_PTR_NOT_NULL(strstr(p.warning, "3 CPU workers on this node but only 2 CPUs"));
}

/* CPU workers on a big node whose GPUs are hidden: slices of whole cores. */
static void test_cpu_spread(void)
{
	fake_env env = {{"CUDA_VISIBLE_DEVICES", "NoDevFiles", NULL}};
	static const char *want[4] = {"0-3,16-19", "4-7,20-23", "8-11,24-27", "12-15,28-31"};
	gd__placement p;
	char err[512];

	for (int w = 0; w < 4; w++) {
		CU_ASSERT_EQUAL_FATAL(
		        place(xml("2s-8gpu"), w, 4, &env, NULL, 0, 1, &p, err, sizeof(err)), 0);
		CU_ASSERT_EQUAL(p.cpu_worker, 1);
		CU_ASSERT_EQUAL(p.gpu.index, -1);
		CU_ASSERT_STRING_EQUAL(p.gpu.cpuset, want[w]);
		CU_ASSERT_EQUAL(p.gpu.numa_node, w / 2);
		CU_ASSERT_EQUAL(p.n_env, 0);
		CU_ASSERT_PTR_NOT_NULL(strstr(p.note, "no usable GPU on "));
		CU_ASSERT_PTR_NOT_NULL(strstr(p.note, "8 found, hidden by CUDA_VISIBLE_DEVICES"));
		CU_ASSERT_PTR_NOT_NULL(strstr(p.note, "running as CPU workers"));
	}
	/* 3 workers on 16 cores: 5, 5 and 6 cores, all cores used once. */
	{
		hwloc_bitmap_t all = hwloc_bitmap_alloc(), s = hwloc_bitmap_alloc();
		int total = 0;

		for (int w = 0; w < 3; w++) {
			CU_ASSERT_EQUAL_FATAL(
			        place(xml("2s-8gpu"), w, 3, &env, NULL, 0, 1, &p, err, sizeof(err)),
			        0);
			hwloc_bitmap_list_sscanf(s, p.gpu.cpuset);
			CU_ASSERT(!hwloc_bitmap_intersects(all, s));
			hwloc_bitmap_or(all, all, s);
			total += hwloc_bitmap_weight(s);
			CU_ASSERT(hwloc_bitmap_weight(s) == 10 || hwloc_bitmap_weight(s) == 12);
		}
		CU_ASSERT_EQUAL(total, 32);
		hwloc_bitmap_free(all);
		hwloc_bitmap_free(s);
	}
}

/* Debian's hwloc: no cuda/nvml/opencl/rsmi OS devices, only PCI + DRM. */
static void test_no_backend_plugins(void)
{
	gd__placement p;
	char err[512];

	CU_ASSERT_FATAL(stripped_nv[0] && stripped_amd[0] && stripped_1s[0]);
	for (int w = 0; w < 8; w++) {
		char tok[8];

		snprintf(tok, sizeof(tok), "%d", w);
		CU_ASSERT_EQUAL_FATAL(
		        place(stripped_nv, w, 8, NULL, NULL, 0, 1, &p, err, sizeof(err)), 0);
		CU_ASSERT_EQUAL(p.n_gpus, 8);
		CU_ASSERT_STRING_EQUAL(p.gpu.bus_id, bus_2s[w]);
		CU_ASSERT_STRING_EQUAL(p.gpu.cpuset, w < 4 ? "0-7,16-23" : "8-15,24-31");
		CU_ASSERT_STRING_EQUAL(p.gpu.model, "GA100 [A100 SXM4 40GB]"); /* PCI name */
		CU_ASSERT_STRING_EQUAL(p.gpu.uuid, "");
		/* No UUID: the index token, in PCI order as CUDA_DEVICE_ORDER says. */
		CU_ASSERT_STRING_EQUAL(env_of(&p, "CUDA_VISIBLE_DEVICES"), tok);
		CU_ASSERT_STRING_EQUAL(env_of(&p, "CUDA_DEVICE_ORDER"), "PCI_BUS_ID");

		CU_ASSERT_EQUAL_FATAL(
		        place(stripped_amd, w, 8, NULL, NULL, 0, 1, &p, err, sizeof(err)), 0);
		CU_ASSERT_EQUAL(p.n_gpus, 8);
		CU_ASSERT_STRING_EQUAL(p.gpu.bus_id, bus_amd[w]);
		CU_ASSERT(same_set(p.gpu.cpuset, hex_amd[w]));
		CU_ASSERT_STRING_EQUAL(p.gpu.vendor, "AMD");
		CU_ASSERT_STRING_EQUAL(p.gpu.model, "Aldebaran/MI200 [Instinct MI210]");
		CU_ASSERT_STRING_EQUAL(env_of(&p, "ROCR_VISIBLE_DEVICES"), tok);
	}
	/* The BMC VGA still is no GPU: 2 of them, a 3rd worker is an error. */
	CU_ASSERT_EQUAL(place(stripped_1s, 1, 2, NULL, NULL, 0, 1, &p, err, sizeof(err)), 0);
	CU_ASSERT_EQUAL(p.n_gpus, 2);
	CU_ASSERT_STRING_EQUAL(p.gpu.bus_id, "0000:33:00.0");
	CU_ASSERT_EQUAL(place(stripped_1s, 2, 3, NULL, NULL, 0, 1, &p, err, sizeof(err)),
	                GD_EPLACEMENT);
	/* UUIDs cannot be matched without NVML: a clear error. */
	{
		fake_env env = {{"CUDA_VISIBLE_DEVICES", "GPU-00000000-fa4e", NULL}};

		CU_ASSERT_EQUAL(place(stripped_nv, 0, 1, &env, NULL, 0, 1, &p, err, sizeof(err)),
		                GD_EPLACEMENT);
		CU_ASSERT_PTR_NOT_NULL(strstr(err, "hwloc reports no GPU UUIDs"));
	}
}

/* ------------------------------------------------------ restrictions */

static void test_cuda_visible_indices(void)
{
	fake_env env = {{"CUDA_VISIBLE_DEVICES", "5,2", NULL}};
	gd__placement p;
	char err[512];

	/* The visible GPUs are used in PCI order: 2 then 5. */
	CU_ASSERT_EQUAL_FATAL(place(xml("2s-8gpu"), 0, 2, &env, NULL, 0, 1, &p, err, sizeof(err)),
	                      0);
	CU_ASSERT_EQUAL(p.n_gpus, 2);
	CU_ASSERT_EQUAL(p.gpu.index, 2);
	CU_ASSERT_STRING_EQUAL(p.gpu.bus_id, "0000:47:00.0");
	CU_ASSERT_STRING_EQUAL(p.gpu.cpuset, "0-7,16-23");
	CU_ASSERT_EQUAL_FATAL(place(xml("2s-8gpu"), 1, 2, &env, NULL, 0, 1, &p, err, sizeof(err)),
	                      0);
	CU_ASSERT_EQUAL(p.gpu.index, 5);
	CU_ASSERT_STRING_EQUAL(p.gpu.bus_id, "0000:90:00.0");
	CU_ASSERT_STRING_EQUAL(p.gpu.cpuset, "8-15,24-31");
	CU_ASSERT_STRING_EQUAL(env_of(&p, "CUDA_VISIBLE_DEVICES"),
	                       "GPU-00000000-fa4e-0000-0000-000000000005");

	/* Three workers for two visible GPUs: error naming the counts. */
	CU_ASSERT_EQUAL(place(xml("2s-8gpu"), 0, 3, &env, NULL, 0, 1, &p, err, sizeof(err)),
	                GD_EPLACEMENT);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "3 worker ranks on this node but only 2 usable GPUs"));

	/* Spaces, repeats and a negative index that ends the list (CUDA's rule). */
	env.kv[1] = " 1 , 1, -1, 3";
	CU_ASSERT_EQUAL_FATAL(place(xml("2s-8gpu"), 0, 1, &env, NULL, 0, 1, &p, err, sizeof(err)),
	                      0);
	CU_ASSERT_EQUAL(p.n_gpus, 1);
	CU_ASSERT_EQUAL(p.gpu.index, 1);

	/* Out of range. */
	env.kv[1] = "0,8";
	CU_ASSERT_EQUAL(place(xml("2s-8gpu"), 0, 1, &env, NULL, 0, 1, &p, err, sizeof(err)),
	                GD_EPLACEMENT);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "CUDA_VISIBLE_DEVICES=0,8: index 8 does not exist"));

	/* Garbage and MIG. */
	env.kv[1] = "zero";
	CU_ASSERT_EQUAL(place(xml("2s-8gpu"), 0, 1, &env, NULL, 0, 1, &p, err, sizeof(err)),
	                GD_EPLACEMENT);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "\"zero\""));
	env.kv[1] = "MIG-abc";
	CU_ASSERT_EQUAL(place(xml("2s-8gpu"), 0, 1, &env, NULL, 0, 1, &p, err, sizeof(err)),
	                GD_EPLACEMENT);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "MIG"));
}

static void test_cuda_visible_uuids(void)
{
	fake_env env = {{"CUDA_VISIBLE_DEVICES", "GPU-00000000-fa4e-0000-0000-000000000006", NULL}};
	gd__placement p;
	char err[512];

	CU_ASSERT_EQUAL_FATAL(place(xml("2s-8gpu"), 0, 1, &env, NULL, 0, 1, &p, err, sizeof(err)),
	                      0);
	CU_ASSERT_EQUAL(p.n_gpus, 1);
	CU_ASSERT_EQUAL(p.gpu.index, 6);
	CU_ASSERT_STRING_EQUAL(p.gpu.bus_id, "0000:b7:00.0");
	CU_ASSERT_STRING_EQUAL(p.gpu.cpuset, "8-15,24-31");

	/* A unique prefix is enough (CUDA accepts it), mixing with indices. */
	env.kv[1] = "gpu-00000000-fa4e-0000-0000-000000000003,0";
	CU_ASSERT_EQUAL_FATAL(place(xml("2s-8gpu"), 1, 2, &env, NULL, 0, 1, &p, err, sizeof(err)),
	                      0);
	CU_ASSERT_EQUAL(p.n_gpus, 2);
	CU_ASSERT_EQUAL(p.gpu.index, 3);

	/* An ambiguous prefix and an unknown UUID are errors. */
	env.kv[1] = "GPU-00000000-fa4e";
	CU_ASSERT_EQUAL(place(xml("2s-8gpu"), 0, 1, &env, NULL, 0, 1, &p, err, sizeof(err)),
	                GD_EPLACEMENT);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "matches several GPUs"));
	env.kv[1] = "GPU-deadbeef";
	CU_ASSERT_EQUAL(place(xml("2s-8gpu"), 0, 1, &env, NULL, 0, 1, &p, err, sizeof(err)),
	                GD_EPLACEMENT);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "no NVIDIA GPU with UUID GPU-deadbeef"));
}

static void test_cuda_visible_none(void)
{
	static const char *vals[] = {"NoDevFiles", "", "-1", " "};
	gd__placement p;
	char err[512];

	for (size_t i = 0; i < sizeof(vals) / sizeof(vals[0]); i++) {
		fake_env env = {{"CUDA_VISIBLE_DEVICES", vals[i], NULL}};

		CU_ASSERT_EQUAL_FATAL(
		        place(xml("1s-2gpu"), 0, 2, &env, NULL, 0, 1, &p, err, sizeof(err)), 0);
		CU_ASSERT_EQUAL(p.cpu_worker, 1);
		CU_ASSERT_EQUAL(p.n_gpus, 0);
		CU_ASSERT_EQUAL(p.gpu.index, -1);
		CU_ASSERT_EQUAL(p.n_env, 0);
		CU_ASSERT_PTR_NOT_NULL(strstr(p.note, "running as CPU workers"));
		CU_ASSERT_PTR_NOT_NULL(strstr(p.note, "CUDA_VISIBLE_DEVICES"));
	}
	/* Unset: every GPU. */
	CU_ASSERT_EQUAL(place(xml("1s-2gpu"), 0, 2, NULL, NULL, 0, 1, &p, err, sizeof(err)), 0);
	CU_ASSERT_EQUAL(p.n_gpus, 2);
}

static void test_rocm_visible(void)
{
	fake_env env = {{"ROCR_VISIBLE_DEVICES", "7,6", NULL}};
	gd__placement p;
	char err[512];

	CU_ASSERT_EQUAL_FATAL(
	        place(xml("2s4n-8gpu-amd"), 0, 2, &env, NULL, 0, 1, &p, err, sizeof(err)), 0);
	CU_ASSERT_EQUAL(p.n_gpus, 2);
	CU_ASSERT_EQUAL(p.gpu.index, 6);
	CU_ASSERT(same_set(p.gpu.cpuset, "0xf000f000"));
	CU_ASSERT_STRING_EQUAL(env_of(&p, "ROCR_VISIBLE_DEVICES"), "6");
	CU_ASSERT_STRING_EQUAL(env_of(&p, "HIP_VISIBLE_DEVICES"), "0");

	/* HIP indexes what ROCr shows, in ROCR's order: "2,5" then "1" = GPU 5. */
	env.kv[1] = "2,5";
	env.kv[2] = "HIP_VISIBLE_DEVICES";
	env.kv[3] = "1";
	CU_ASSERT_EQUAL_FATAL(
	        place(xml("2s4n-8gpu-amd"), 0, 1, &env, NULL, 0, 1, &p, err, sizeof(err)), 0);
	CU_ASSERT_EQUAL(p.n_gpus, 1);
	CU_ASSERT_EQUAL(p.gpu.index, 5);
	CU_ASSERT(same_set(p.gpu.cpuset, "0x0f000f00"));
	CU_ASSERT_EQUAL(p.gpu.numa_node, 2);

	/* HIP alone. */
	{
		fake_env hip = {{"HIP_VISIBLE_DEVICES", "3", NULL}};

		CU_ASSERT_EQUAL_FATAL(
		        place(xml("2s4n-8gpu-amd"), 0, 1, &hip, NULL, 0, 1, &p, err, sizeof(err)),
		        0);
		CU_ASSERT_EQUAL(p.gpu.index, 3);
		CU_ASSERT(same_set(p.gpu.cpuset, "0x00f000f0"));
	}
	/* HIP beyond ROCr's list. */
	env.kv[3] = "2";
	CU_ASSERT_EQUAL(place(xml("2s4n-8gpu-amd"), 0, 1, &env, NULL, 0, 1, &p, err, sizeof(err)),
	                GD_EPLACEMENT);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "HIP_VISIBLE_DEVICES=2: index 2 does not exist"));
	/* ROCm's "none". */
	{
		fake_env none = {{"ROCR_VISIBLE_DEVICES", "NoDevFiles", NULL}};

		CU_ASSERT_EQUAL_FATAL(
		        place(xml("2s4n-8gpu-amd"), 0, 1, &none, NULL, 0, 1, &p, err, sizeof(err)),
		        0);
		CU_ASSERT_EQUAL(p.cpu_worker, 1);
	}
	/* CUDA_VISIBLE_DEVICES restricts NVIDIA GPUs only. */
	{
		fake_env cuda = {{"CUDA_VISIBLE_DEVICES", "NoDevFiles", NULL}};

		CU_ASSERT_EQUAL_FATAL(
		        place(xml("2s4n-8gpu-amd"), 0, 1, &cuda, NULL, 0, 1, &p, err, sizeof(err)),
		        0);
		CU_ASSERT_EQUAL(p.n_gpus, 8);
	}
	/* ... and ROCR_VISIBLE_DEVICES the AMD ones only. */
	{
		fake_env rocr = {{"ROCR_VISIBLE_DEVICES", "", NULL}};

		CU_ASSERT_EQUAL_FATAL(
		        place(xml("2s-8gpu"), 0, 1, &rocr, NULL, 0, 1, &p, err, sizeof(err)), 0);
		CU_ASSERT_EQUAL(p.n_gpus, 8);
	}
}

static void test_cfg_gpu_ids(void)
{
	static const int ids[] = {6, 1};
	static const int bad[] = {8};
	static const int two[] = {2};
	gd__placement p;
	char err[512];

	CU_ASSERT_EQUAL_FATAL(place(xml("2s-8gpu"), 0, 2, NULL, ids, 2, 1, &p, err, sizeof(err)),
	                      0);
	CU_ASSERT_EQUAL(p.n_gpus, 2);
	CU_ASSERT_EQUAL(p.gpu.index, 1);
	CU_ASSERT_EQUAL_FATAL(place(xml("2s-8gpu"), 1, 2, NULL, ids, 2, 1, &p, err, sizeof(err)),
	                      0);
	CU_ASSERT_EQUAL(p.gpu.index, 6);
	CU_ASSERT_STRING_EQUAL(p.gpu.cpuset, "8-15,24-31");

	CU_ASSERT_EQUAL(place(xml("2s-8gpu"), 0, 1, NULL, bad, 1, 1, &p, err, sizeof(err)),
	                GD_EPLACEMENT);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "gpu_ids[0] = 8 does not exist"));

	/* gpu_ids and the environment intersect; nothing left is an error. */
	{
		fake_env env = {{"CUDA_VISIBLE_DEVICES", "0,1", NULL}};

		CU_ASSERT_EQUAL(place(xml("2s-8gpu"), 0, 1, &env, two, 1, 1, &p, err, sizeof(err)),
		                GD_EPLACEMENT);
		CU_ASSERT_PTR_NOT_NULL(strstr(err, "none of the 1 GPU(s) in gpu_ids is visible"));
		env.kv[1] = "1,2";
		CU_ASSERT_EQUAL_FATAL(
		        place(xml("2s-8gpu"), 0, 1, &env, two, 1, 1, &p, err, sizeof(err)), 0);
		CU_ASSERT_EQUAL(p.gpu.index, 2);
	}
}

/* ------------------------------------------------------- assignment */

static void test_workers_per_gpu(void)
{
	static const int want4[4] = {0, 0, 1, 1};
	gd__placement p;
	char err[512], host[64];

	gethostname(host, sizeof(host));
	host[sizeof(host) - 1] = '\0';

	/* 3 workers, 2 GPUs, no sharing allowed: every worker fails, clearly. */
	for (int w = 0; w < 3; w++) {
		char who[128];

		CU_ASSERT_EQUAL(place(xml("1s-2gpu"), w, 3, NULL, NULL, 0, 1, &p, err, sizeof(err)),
		                GD_EPLACEMENT);
		snprintf(who, sizeof(who), "node-local worker %d on host %s:", w, host);
		CU_ASSERT_PTR_NOT_NULL(strstr(err, who));
		CU_ASSERT_PTR_NOT_NULL(strstr(err, "3 worker ranks on this node but only 2"));
		CU_ASSERT_PTR_NOT_NULL(strstr(err, "workers_per_gpu >= 2"));
	}
	/* workers_per_gpu = 0 means 1. */
	CU_ASSERT_EQUAL(place(xml("1s-2gpu"), 0, 3, NULL, NULL, 0, 0, &p, err, sizeof(err)),
	                GD_EPLACEMENT);

	/* 4 workers, 2 per GPU. */
	for (int w = 0; w < 4; w++) {
		CU_ASSERT_EQUAL_FATAL(
		        place(xml("1s-2gpu"), w, 4, NULL, NULL, 0, 2, &p, err, sizeof(err)), 0);
		CU_ASSERT_EQUAL(p.gpu.index, want4[w]);
		CU_ASSERT_PTR_NOT_NULL(strstr(p.note, "4 workers share 2 GPUs"));
	}
	/* 5 workers, 2 per GPU: still too many. */
	CU_ASSERT_EQUAL(place(xml("1s-2gpu"), 0, 5, NULL, NULL, 0, 2, &p, err, sizeof(err)),
	                GD_EPLACEMENT);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "need 3 workers per GPU"));
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "workers_per_gpu is 2"));

	/* Sharing allowed but not needed: one GPU each. */
	for (int w = 0; w < 2; w++) {
		CU_ASSERT_EQUAL_FATAL(
		        place(xml("1s-2gpu"), w, 2, NULL, NULL, 0, 4, &p, err, sizeof(err)), 0);
		CU_ASSERT_EQUAL(p.gpu.index, w);
		CU_ASSERT_STRING_EQUAL(p.note, "");
	}
	/* local_workers unknown (0): the index alone decides. */
	CU_ASSERT_EQUAL_FATAL(place(xml("2s-8gpu"), 5, 0, NULL, NULL, 0, 1, &p, err, sizeof(err)),
	                      0);
	CU_ASSERT_EQUAL(p.gpu.index, 5);
	CU_ASSERT_EQUAL(place(xml("2s-8gpu"), 8, 0, NULL, NULL, 0, 1, &p, err, sizeof(err)),
	                GD_EPLACEMENT);
}

static void test_bad_input(void)
{
	gd__placement p;
	char err[512];

	CU_ASSERT_EQUAL(
	        place("/nonexistent/topology.xml", 0, 1, NULL, NULL, 0, 1, &p, err, sizeof(err)),
	        GD_EPLACEMENT);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "/nonexistent/topology.xml"));
	CU_ASSERT_EQUAL(place(xml("1s-2gpu"), -1, 1, NULL, NULL, 0, 1, &p, err, sizeof(err)),
	                GD_EINVAL);
	CU_ASSERT_EQUAL(gd__place_compute(NULL, &p, err, sizeof(err)), GD_EINVAL);
}

/* ------------------------------------------------------------ apply */

static void test_apply_env_and_xml_binding(void)
{
	gd__placement p;
	cpu_set_t before, after;
	char err[512];

	CU_ASSERT_EQUAL_FATAL(place(xml("2s-8gpu"), 5, 8, NULL, NULL, 0, 1, &p, err, sizeof(err)),
	                      0);
	CU_ASSERT_EQUAL_FATAL(sched_getaffinity(0, sizeof(before), &before), 0);
	/* On the fake node (not this system) binding is skipped; env is set. */
	setenv("HWLOC_XMLFILE", xml("2s-8gpu"), 1);
	unsetenv("CUDA_VISIBLE_DEVICES");
	CU_ASSERT_EQUAL(gd__place_apply(&p, err, sizeof(err)), 0);
	unsetenv("HWLOC_XMLFILE");
	CU_ASSERT_STRING_EQUAL(err, "");
	CU_ASSERT_PTR_NOT_NULL_FATAL(getenv("CUDA_VISIBLE_DEVICES"));
	CU_ASSERT_STRING_EQUAL(getenv("CUDA_VISIBLE_DEVICES"),
	                       "GPU-00000000-fa4e-0000-0000-000000000005");
	CU_ASSERT_STRING_EQUAL(getenv("CUDA_DEVICE_ORDER"), "PCI_BUS_ID");
	CU_ASSERT_EQUAL_FATAL(sched_getaffinity(0, sizeof(after), &after), 0);
	CU_ASSERT(CPU_EQUAL(&before, &after));
	unsetenv("CUDA_VISIBLE_DEVICES");
	unsetenv("CUDA_DEVICE_ORDER");
}

/* On the real system: never widen the binding the process has. */
static void test_apply_real_never_widens(void)
{
	gd__placement p;
	cpu_set_t orig, one, now;
	char err[512];
	int first = -1, n = 0;

	CU_ASSERT_EQUAL_FATAL(sched_getaffinity(0, sizeof(orig), &orig), 0);
	for (int c = 0; c < CPU_SETSIZE; c++)
		if (CPU_ISSET(c, &orig)) {
			n++;
			if (first < 0)
				first = c;
		}
	if (n < 2)
		return; /* nothing to narrow on a 1-CPU machine */

	/* Bound to one CPU, a CPU worker computed here gets that CPU only. */
	CPU_ZERO(&one);
	CPU_SET(first, &one);
	CU_ASSERT_EQUAL_FATAL(sched_setaffinity(0, sizeof(one), &one), 0);
	{
		fake_env none = {{"CUDA_VISIBLE_DEVICES", "", "ROCR_VISIBLE_DEVICES", "", NULL}};
		gd__place_req r = {.local_index = 0,
		                   .local_workers = 1,
		                   .workers_per_gpu = 1,
		                   .getenv_fn = fake_getenv,
		                   .getenv_ctx = &none};
		char want[16];

		CU_ASSERT_EQUAL(gd__place_compute(&r, &p, err, sizeof(err)), 0);
		snprintf(want, sizeof(want), "%d", first);
		CU_ASSERT_STRING_EQUAL(p.gpu.cpuset, want);
	}
	/* Applying a wider set keeps the narrower binding. */
	snprintf(p.gpu.cpuset, sizeof(p.gpu.cpuset), "0-%d", CPU_SETSIZE - 1);
	p.nodeset[0] = '\0';
	CU_ASSERT_EQUAL(gd__place_apply(&p, err, sizeof(err)), 0);
	CU_ASSERT_EQUAL(sched_getaffinity(0, sizeof(now), &now), 0);
	CU_ASSERT(CPU_EQUAL(&now, &one));

	/* A set outside the binding: warning, binding kept. */
	CU_ASSERT_EQUAL_FATAL(sched_setaffinity(0, sizeof(orig), &orig), 0);
	snprintf(p.gpu.cpuset, sizeof(p.gpu.cpuset), "%d", first);
	CU_ASSERT_EQUAL(gd__place_apply(&p, err, sizeof(err)), 0);
	CU_ASSERT_EQUAL(sched_getaffinity(0, sizeof(now), &now), 0);
	CU_ASSERT(CPU_EQUAL(&now, &one)); /* narrowed to the placement's CPU */
	CU_ASSERT_EQUAL_FATAL(sched_setaffinity(0, sizeof(one), &one), 0);
	snprintf(p.gpu.cpuset, sizeof(p.gpu.cpuset), "%d", CPU_SETSIZE - 1);
	CU_ASSERT_EQUAL(gd__place_apply(&p, err, sizeof(err)), 0);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "keeping the binding"));
	CU_ASSERT_EQUAL(sched_getaffinity(0, sizeof(now), &now), 0);
	CU_ASSERT(CPU_EQUAL(&now, &one));

	CU_ASSERT_EQUAL(sched_setaffinity(0, sizeof(orig), &orig), 0);
}

/*
 * The rank's own binding limits the cpuset.  HWLOC_THISSYSTEM=1 makes hwloc
 * report the real binding on the fake node (compute only: nothing is bound).
 */
static void test_binding_intersection(void)
{
	cpu_set_t orig, one;
	gd__placement p;
	char err[512], want[16];
	int first = -1, far, near;

	CU_ASSERT_EQUAL_FATAL(sched_getaffinity(0, sizeof(orig), &orig), 0);
	for (int c = 0; c < 32 && first < 0; c++)
		if (CPU_ISSET(c, &orig))
			first = c;
	if (first < 0)
		return; /* no CPU that exists on the fake node */
	/* GPUs 0-3 are near PUs 0-7,16-23, GPUs 4-7 near 8-15,24-31. */
	near = (first % 16) < 8 ? 0 : 4;
	far = near ? 0 : 4;
	CPU_ZERO(&one);
	CPU_SET(first, &one);
	CU_ASSERT_EQUAL_FATAL(sched_setaffinity(0, sizeof(one), &one), 0);
	setenv("HWLOC_THISSYSTEM", "1", 1);
	snprintf(want, sizeof(want), "%d", first);

	/* Bound inside the GPU's cores: narrowed to the binding, no warning. */
	CU_ASSERT_EQUAL(place(xml("2s-8gpu"), near, 8, NULL, NULL, 0, 1, &p, err, sizeof(err)), 0);
	CU_ASSERT_EQUAL(p.gpu.index, near);
	CU_ASSERT_STRING_EQUAL(p.gpu.cpuset, want);
	CU_ASSERT_STRING_EQUAL(p.warning, "");

	/* Bound far from the GPU: keep the binding, warn. */
	CU_ASSERT_EQUAL(place(xml("2s-8gpu"), far, 8, NULL, NULL, 0, 1, &p, err, sizeof(err)), 0);
	CU_ASSERT_EQUAL(p.gpu.index, far);
	CU_ASSERT_STRING_EQUAL(p.gpu.cpuset, want);
	CU_ASSERT_PTR_NOT_NULL(strstr(p.warning, "cores not local to GPU"));
	CU_ASSERT_PTR_NOT_NULL(strstr(p.warning, "keeping that binding"));

	unsetenv("HWLOC_THISSYSTEM");
	CU_ASSERT_EQUAL(sched_setaffinity(0, sizeof(orig), &orig), 0);
}

/* ------------------------------------------------------------- main */

int main(void)
{
	const char *dir = getenv("GD_TOPOLOGIES");
	CU_pSuite s;
	unsigned failed;

	snprintf(topo_dir, sizeof(topo_dir), "%s", dir && *dir ? dir : GD_TOPOLOGIES_DEFAULT);
	unsetenv("HWLOC_XMLFILE"); /* the tests choose their topology themselves */
	/*
	 * hwloc's pci plugin keeps libpciaccess's state in that library's
	 * globals; when hwloc dlclose()s the plugin, LeakSanitizer reports it
	 * as a 1 KB leak.  Keeping the library loaded keeps it reachable.
	 */
	dlopen("libpciaccess.so.0", RTLD_NOW | RTLD_NODELETE);
	if (access(xml("2s-8gpu"), R_OK) != 0) {
		fprintf(stderr, "test_placement: no topologies in %s (set GD_TOPOLOGIES)\n",
		        topo_dir);
		return 1;
	}
	if (strip_backends(xml("2s-8gpu"), stripped_nv, sizeof(stripped_nv)) ||
	    strip_backends(xml("2s4n-8gpu-amd"), stripped_amd, sizeof(stripped_amd)) ||
	    strip_backends(xml("1s-2gpu"), stripped_1s, sizeof(stripped_1s)))
		stripped_nv[0] = '\0';

	if (CU_initialize_registry() != CUE_SUCCESS)
		return 1;
	s = CU_add_suite("placement", NULL, NULL);
	CU_add_test(s, "1s-2gpu", test_1s_2gpu);
	CU_add_test(s, "2s-8gpu", test_2s_8gpu);
	CU_add_test(s, "2s4n-8gpu-amd", test_amd_2s4n);
	CU_add_test(s, "nogpu-vm", test_nogpu_vm);
	CU_add_test(s, "cpu workers spread", test_cpu_spread);
	CU_add_test(s, "no vendor plugins (PCI + DRM only)", test_no_backend_plugins);
	CU_add_test(s, "CUDA_VISIBLE_DEVICES indices", test_cuda_visible_indices);
	CU_add_test(s, "CUDA_VISIBLE_DEVICES UUIDs", test_cuda_visible_uuids);
	CU_add_test(s, "CUDA_VISIBLE_DEVICES none", test_cuda_visible_none);
	CU_add_test(s, "ROCR/HIP_VISIBLE_DEVICES", test_rocm_visible);
	CU_add_test(s, "cfg gpu_ids", test_cfg_gpu_ids);
	CU_add_test(s, "workers_per_gpu", test_workers_per_gpu);
	CU_add_test(s, "bad input", test_bad_input);
	CU_add_test(s, "binding limits the cpuset", test_binding_intersection);
	CU_add_test(s, "apply: env, XML binding skipped", test_apply_env_and_xml_binding);
	CU_add_test(s, "apply: never widens (real system)", test_apply_real_never_widens);
	CU_basic_set_mode(CU_BRM_VERBOSE);
	CU_basic_run_tests();
	failed = CU_get_number_of_failures() + CU_get_number_of_tests_failed();
	CU_cleanup_registry();
	unlink(stripped_nv);
	unlink(stripped_amd);
	unlink(stripped_1s);
	return failed ? 1 : 0;
}
