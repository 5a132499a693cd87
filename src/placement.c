/*
 * GPU placement by hwloc locality.
 *
 * gd__place_compute() loads the node's topology with its PCI and OS devices,
 * lists the NVIDIA and AMD compute GPUs (one per PCI device, in PCI bus
 * order), filters them by what the launcher or user restricted
 * (CUDA_VISIBLE_DEVICES, ROCR_VISIBLE_DEVICES, HIP_VISIBLE_DEVICES,
 * cfg.gpu_ids), picks one for the worker from its node-local index and
 * computes the cpuset next to it, never wider than the binding the process
 * already has.  Without any usable GPU the worker becomes a CPU worker with
 * a slice of the cores.  gd__place_apply() makes it real in the executor.
 *
 * The rules are documented in docs/placement.md; keep the two in step.
 */
#include "internal.h"
#include "placement.h"

#include <hwloc.h>

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#define GD__PCI_VENDOR_NVIDIA 0x10de
#define GD__PCI_VENDOR_AMD    0x1002

enum gd__vendor { GD__V_NONE = 0, GD__V_NVIDIA, GD__V_AMD };

/* One compute GPU of the node, as discovery found it. */
typedef struct gd__gpuinfo {
	hwloc_obj_t pci;   /* the PCI device; OS devices are its I/O children */
	int vendor;        /* enum gd__vendor */
	int vindex;        /* index among the GPUs of its vendor, PCI order */
	int visible;       /* passes the environment restrictions */
	int wanted;        /* passes cfg.gpu_ids */
	int group;         /* its GPU group (gpus_per_worker), -1 = none, -2 = one not used */
	char amd_uuid[48]; /* AMDUUID info (RSMI), "" when unknown */
	gd_gpu g;          /* index, bus_id, vendor, model, uuid, numa_node */
} gd__gpuinfo;

/* printf into a fixed buffer; truncation is fine for messages. */
__attribute__((format(printf, 3, 4))) static void gd__msg(char *buf, size_t len, const char *fmt,
                                                          ...)
{
	va_list ap;

	if (!buf || !len)
		return;
	va_start(ap, fmt);
	vsnprintf(buf, len, fmt, ap);
	va_end(ap);
}

/* Append "; msg" (or msg when empty) to a warning buffer. */
__attribute__((format(printf, 3, 4))) static void gd__append(char *buf, size_t len, const char *fmt,
                                                             ...)
{
	size_t used = strnlen(buf, len);
	va_list ap;

	if (used + 3 >= len)
		return;
	if (used) {
		memcpy(buf + used, "; ", 3);
		used += 2;
	}
	va_start(ap, fmt);
	vsnprintf(buf + used, len - used, fmt, ap);
	va_end(ap);
}

static void gd__copy(char *dst, size_t len, const char *src)
{
	snprintf(dst, len, "%s", src ? src : "");
}

static const char *gd__getenv(const gd__place_req *req, const char *name)
{
	if (req->getenv_fn)
		return req->getenv_fn(req->getenv_ctx, name);
	return getenv(name);
}

static void gd__hostname(char *buf, size_t len)
{
	if (gethostname(buf, len) != 0)
		gd__copy(buf, len, "?");
	buf[len - 1] = '\0';
}

/*
 * Load the topology with PCI and OS devices.  xml_path NULL: hwloc's default
 * source ($HWLOC_XMLFILE, else this system).  io = 0 leaves I/O objects out
 * (enough for binding, and faster).
 */
static int gd__topo_load(hwloc_topology_t *topo, const char *xml_path, int io, char *err,
                         size_t errlen)
{
	if (hwloc_topology_init(topo) != 0) {
		gd__msg(err, errlen, "hwloc_topology_init failed: %s", strerror(errno));
		return GD_EPLACEMENT;
	}
	if (xml_path && hwloc_topology_set_xml(*topo, xml_path) != 0) {
		gd__msg(err, errlen, "cannot use the topology file %s: %s", xml_path,
		        strerror(errno));
		hwloc_topology_destroy(*topo);
		return GD_EPLACEMENT;
	}
	if (io) {
		/*
		 * PCI devices and their OS devices.  The backends that initialise a
		 * GPU runtime are left out: CUDA (contrib plugin) and OpenCL would
		 * create a driver context in the worker rank, and a CUDA context
		 * does not survive the fork() of the executor; GL talks to X
		 * servers.  The PCI vendor and class find the GPUs without them;
		 * NVML and RSMI (UUIDs, model names) are harmless and kept.
		 */
		static const char *const skip[] = {"cuda", "opencl", "levelzero", "gl"};

		for (size_t i = 0; i < sizeof(skip) / sizeof(skip[0]); i++)
			hwloc_topology_set_components(
			        *topo, HWLOC_TOPOLOGY_COMPONENTS_FLAG_BLACKLIST, skip[i]);
		hwloc_topology_set_io_types_filter(*topo, HWLOC_TYPE_FILTER_KEEP_IMPORTANT);
	}
	if (hwloc_topology_load(*topo) != 0) {
		gd__msg(err, errlen, "cannot load the hwloc topology%s%s: %s",
		        xml_path ? " from " : "", xml_path ? xml_path : "", strerror(errno));
		hwloc_topology_destroy(*topo);
		return GD_EPLACEMENT;
	}
	return 0;
}

/* ------------------------------------------------------------ discovery */

/* Vendor that a GPU OS device's backend implies (CUDA/NVML: NVIDIA, RSMI: AMD). */
static int gd__osdev_vendor(hwloc_obj_t os)
{
	if (!os->subtype)
		return GD__V_NONE;
	if (!strcasecmp(os->subtype, "CUDA") || !strcasecmp(os->subtype, "NVML"))
		return GD__V_NVIDIA;
	if (!strcasecmp(os->subtype, "RSMI"))
		return GD__V_AMD;
	return GD__V_NONE;
}

/*
 * Is this PCI device a compute GPU, and whose?  A vendor's GPU backend
 * (cudaN, nvmlN, rsmiN) says so; without those plugins (Debian) only the PCI
 * device and its DRM cardN/renderD exist, so an NVIDIA or AMD device of the
 * display (0x03) or processing-accelerator (0x12) class counts too.  A BMC's
 * VGA (ASPEED, Matrox, ...) has another vendor; NVSwitches (class 0x0680),
 * the GPUs' audio functions (0x0403) and HCAs fail the class test.
 */
static int gd__pci_gpu_vendor(hwloc_obj_t pci)
{
	unsigned vid = pci->attr->pcidev.vendor_id;
	unsigned base = pci->attr->pcidev.class_id >> 8;

	for (hwloc_obj_t os = pci->io_first_child; os; os = os->next_sibling) {
		int v;

		if (os->type != HWLOC_OBJ_OS_DEVICE)
			continue;
		v = gd__osdev_vendor(os);
		if (v)
			return v;
	}
	if (base != 0x03 && base != 0x12)
		return GD__V_NONE;
	if (vid == GD__PCI_VENDOR_NVIDIA)
		return GD__V_NVIDIA;
	if (vid == GD__PCI_VENDOR_AMD)
		return GD__V_AMD;
	return GD__V_NONE;
}

/* Info `name` of the first OS device below pci whose subtype is `subtype`. */
static const char *gd__osdev_info(hwloc_obj_t pci, const char *subtype, const char *name)
{
	for (hwloc_obj_t os = pci->io_first_child; os; os = os->next_sibling) {
		const char *v;

		if (os->type != HWLOC_OBJ_OS_DEVICE)
			continue;
		if (subtype && (!os->subtype || strcasecmp(os->subtype, subtype)))
			continue;
		v = hwloc_obj_get_info_by_name(os, name);
		if (v && *v)
			return v;
	}
	return NULL;
}

/*
 * The model name: the vendor backends' GPUModel ("NVIDIA A100-SXM4-40GB"),
 * else the PCI name from pci.ids, else OpenCL's (AMD's is "gfx90a:..."),
 * else "".
 */
static void gd__fill_model(gd__gpuinfo *gi)
{
	static const char *const pref[] = {"NVML", "CUDA", "RSMI", "LevelZero"};
	const char *m = NULL;

	for (size_t i = 0; !m && i < sizeof(pref) / sizeof(pref[0]); i++)
		m = gd__osdev_info(gi->pci, pref[i], "GPUModel");
	if (!m)
		m = hwloc_obj_get_info_by_name(gi->pci, "PCIDevice");
	if (!m)
		m = gd__osdev_info(gi->pci, NULL, "GPUModel");
	gd__copy(gi->g.model, sizeof(gi->g.model), m);
}

/* OS index of the only NUMA node of nodeset, -1 when none or several. */
static int gd__single_numa(hwloc_const_nodeset_t ns)
{
	if (!ns || hwloc_bitmap_weight(ns) != 1)
		return -1;
	return hwloc_bitmap_first(ns);
}

static int gd__cmp_pci(const void *a, const void *b)
{
	const struct hwloc_pcidev_attr_s *x = &((const gd__gpuinfo *)a)->pci->attr->pcidev;
	const struct hwloc_pcidev_attr_s *y = &((const gd__gpuinfo *)b)->pci->attr->pcidev;
	unsigned long kx = ((unsigned long)x->domain << 24) | ((unsigned long)x->bus << 16) |
	                   ((unsigned long)x->dev << 8) | x->func;
	unsigned long ky = ((unsigned long)y->domain << 24) | ((unsigned long)y->bus << 16) |
	                   ((unsigned long)y->dev << 8) | y->func;

	return kx < ky ? -1 : kx > ky;
}

/* Every compute GPU of the topology, in PCI bus order.  *out is malloc'ed. */
static int gd__discover(hwloc_topology_t topo, gd__gpuinfo **out, int *n, char *err, size_t errlen)
{
	gd__gpuinfo *gpus = NULL;
	int cap = 0, cnt = 0, nv = 0, amd = 0;
	hwloc_obj_t pci = NULL;

	while ((pci = hwloc_get_next_pcidev(topo, pci))) {
		int v = gd__pci_gpu_vendor(pci);
		gd__gpuinfo *gi;

		if (!v)
			continue;
		if (cnt == cap) {
			int ncap = cap ? 2 * cap : 8;
			gd__gpuinfo *ng = realloc(gpus, (size_t)ncap * sizeof(*ng));

			if (!ng) {
				free(gpus);
				gd__msg(err, errlen, "out of memory listing GPUs");
				return GD_ENOMEM;
			}
			gpus = ng;
			cap = ncap;
		}
		gi = &gpus[cnt++];
		memset(gi, 0, sizeof(*gi));
		gi->pci = pci;
		gi->vendor = v;
	}
	if (cnt > 1)
		qsort(gpus, (size_t)cnt, sizeof(*gpus), gd__cmp_pci);
	for (int i = 0; i < cnt; i++) {
		gd__gpuinfo *gi = &gpus[i];
		const struct hwloc_pcidev_attr_s *a = &gi->pci->attr->pcidev;
		hwloc_obj_t anc = hwloc_get_non_io_ancestor_obj(topo, gi->pci);
		const char *uuid;

		gi->g.index = i;
		gi->vindex = gi->vendor == GD__V_NVIDIA ? nv++ : amd++;
		snprintf(gi->g.bus_id, sizeof(gi->g.bus_id), "%04x:%02x:%02x.%01x",
		         (unsigned)a->domain, (unsigned)a->bus, (unsigned)a->dev,
		         (unsigned)a->func);
		gd__copy(gi->g.vendor, sizeof(gi->g.vendor),
		         gi->vendor == GD__V_NVIDIA ? "NVIDIA" : "AMD");
		gd__fill_model(gi);
		uuid = gd__osdev_info(gi->pci, NULL, "NVIDIAUUID");
		if (uuid && !strncasecmp(uuid, "GPU-", 4))
			gd__copy(gi->g.uuid, sizeof(gi->g.uuid), uuid);
		gd__copy(gi->amd_uuid, sizeof(gi->amd_uuid),
		         gd__osdev_info(gi->pci, NULL, "AMDUUID"));
		gi->g.numa_node = gd__single_numa(anc ? anc->nodeset : NULL);
		gi->visible = 1;
		gi->wanted = 1;
	}
	*out = gpus;
	*n = cnt;
	return 0;
}

/* --------------------------------------------------------- restrictions */

/* "GPU-8932f937" matches the NVIDIA UUID it is a prefix of (CUDA's rule). */
static int gd__uuid_match(const gd__gpuinfo *gi, const char *tok)
{
	char plain[48];
	size_t j = 0;

	if (gi->vendor == GD__V_NVIDIA)
		return gi->g.uuid[0] && !strncasecmp(gi->g.uuid, tok, strlen(tok));
	/* AMD: ROCr writes "GPU-<hex>"; compare with AMDUUID, dashes or not. */
	if (!gi->amd_uuid[0] || strncasecmp(tok, "GPU-", 4))
		return 0;
	for (const char *s = gi->amd_uuid; *s && j + 1 < sizeof(plain); s++)
		if (*s != '-')
			plain[j++] = *s;
	plain[j] = '\0';
	return !strcasecmp(tok + 4, gi->amd_uuid) || !strcasecmp(tok + 4, plain);
}

/*
 * Parse a *_VISIBLE_DEVICES value against the candidates in cand (the
 * devices that enumeration order would number 0, 1, ...).  Writes the
 * visible ones, in the order listed, to vis.  "" and "NoDevFiles" (Slurm)
 * mean none; a negative index ends the list (CUDA's rule, "-1" hides all);
 * repeated entries are ignored.  An index out of range, an unknown UUID or
 * anything else is an error: it is a mistake the user must hear about.
 */
static int gd__parse_visible(const char *var, const char *val, gd__gpuinfo **cand, int ncand,
                             const char *what, gd__gpuinfo **vis, int *nvis, const char *host,
                             char *err, size_t errlen)
{
	char buf[1024];
	char *save = NULL, *tok;

	*nvis = 0;
	if (strlen(val) >= sizeof(buf)) {
		gd__msg(err, errlen, "%s is too long (%zu characters)", var, strlen(val));
		return GD_EPLACEMENT;
	}
	gd__copy(buf, sizeof(buf), val);
	for (tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		gd__gpuinfo *hit = NULL;
		char *end;
		size_t l;

		while (isspace((unsigned char)*tok))
			tok++;
		l = strlen(tok);
		while (l && isspace((unsigned char)tok[l - 1]))
			tok[--l] = '\0';
		if (!l)
			continue;
		if (!strcmp(tok, "NoDevFiles")) {
			*nvis = 0;
			return 0;
		}
		errno = 0;
		long idx = strtol(tok, &end, 10);
		if (!*end && !errno) {
			if (idx < 0)
				break;
			if (idx >= ncand) {
				gd__msg(err, errlen,
				        "%s=%s: index %ld does not exist: %s has %d %s GPU%s%s",
				        var, val, idx, host, ncand, what, ncand == 1 ? "" : "s",
				        ncand ? " visible at that level" : "");
				return GD_EPLACEMENT;
			}
			hit = cand[idx];
		} else if (!strncasecmp(tok, "GPU-", 4)) {
			for (int i = 0; i < ncand; i++) {
				if (!gd__uuid_match(cand[i], tok))
					continue;
				if (hit) {
					gd__msg(err, errlen,
					        "%s=%s: UUID prefix %s matches several GPUs on %s",
					        var, val, tok, host);
					return GD_EPLACEMENT;
				}
				hit = cand[i];
			}
			if (!hit) {
				int any = 0;

				for (int i = 0; i < ncand; i++)
					any |= cand[i]->g.uuid[0] || cand[i]->amd_uuid[0];
				gd__msg(err, errlen, "%s=%s: no %s GPU with UUID %s on %s%s", var,
				        val, what, tok, host,
				        any ? ""
				            : " (hwloc reports no GPU UUIDs here: it has no "
				              "NVML/RSMI backend; use indices)");
				return GD_EPLACEMENT;
			}
		} else {
			gd__msg(err, errlen,
			        "%s=%s: cannot use the entry \"%s\" on %s (expected an index or a "
			        "GPU-UUID%s)",
			        var, val, tok, host,
			        !strncasecmp(tok, "MIG-", 4) ? "; MIG instances are not supported"
			                                     : "");
			return GD_EPLACEMENT;
		}
		int dup = 0;
		for (int i = 0; i < *nvis; i++)
			dup |= vis[i] == hit;
		if (!dup)
			vis[(*nvis)++] = hit;
	}
	return 0;
}

/* The GPUs of one vendor, in PCI order (their default enumeration order). */
static int gd__of_vendor(gd__gpuinfo *gpus, int n, int vendor, gd__gpuinfo **out)
{
	int k = 0;

	for (int i = 0; i < n; i++)
		if (gpus[i].vendor == vendor)
			out[k++] = &gpus[i];
	return k;
}

/*
 * Mark the GPUs the environment leaves visible.  CUDA_VISIBLE_DEVICES
 * restricts the NVIDIA GPUs; ROCR_VISIBLE_DEVICES the AMD ones, and
 * HIP_VISIBLE_DEVICES then indexes what ROCr left (HIP sits on ROCr).
 * Indices are taken in PCI bus order (what CUDA_DEVICE_ORDER=PCI_BUS_ID,
 * nvidia-smi and Slurm use).  `why` gets which variables hid GPUs.
 */
static int gd__restrict_env(const gd__place_req *req, gd__gpuinfo *gpus, int n, const char *host,
                            char *why, size_t whylen, char *err, size_t errlen)
{
	gd__gpuinfo **cand = NULL, **vis = NULL, **vis2 = NULL;
	int nc, nvis, nvis2, rc = 0;
	const char *v;

	if (n <= 0)
		return 0;
	cand = calloc((size_t)n, sizeof(*cand));
	vis = calloc((size_t)n, sizeof(*vis));
	vis2 = calloc((size_t)n, sizeof(*vis2));
	if (!cand || !vis || !vis2) {
		gd__msg(err, errlen, "out of memory");
		rc = GD_ENOMEM;
		goto out;
	}

	nc = gd__of_vendor(gpus, n, GD__V_NVIDIA, cand);
	v = gd__getenv(req, "CUDA_VISIBLE_DEVICES");
	if (nc && v) {
		rc = gd__parse_visible("CUDA_VISIBLE_DEVICES", v, cand, nc, "NVIDIA", vis, &nvis,
		                       host, err, errlen);
		if (rc)
			goto out;
		for (int i = 0; i < nc; i++)
			cand[i]->visible = 0;
		for (int i = 0; i < nvis; i++)
			vis[i]->visible = 1;
		if (nvis < nc)
			gd__append(why, whylen, "CUDA_VISIBLE_DEVICES=%s", v);
	}

	nc = gd__of_vendor(gpus, n, GD__V_AMD, cand);
	if (nc) {
		nvis = nc;
		memcpy(vis, cand, (size_t)nc * sizeof(*vis));
		v = gd__getenv(req, "ROCR_VISIBLE_DEVICES");
		if (v) {
			rc = gd__parse_visible("ROCR_VISIBLE_DEVICES", v, cand, nc, "AMD", vis,
			                       &nvis, host, err, errlen);
			if (rc)
				goto out;
			if (nvis < nc)
				gd__append(why, whylen, "ROCR_VISIBLE_DEVICES=%s", v);
		}
		v = gd__getenv(req, "HIP_VISIBLE_DEVICES");
		if (v) {
			int before = nvis;

			rc = gd__parse_visible("HIP_VISIBLE_DEVICES", v, vis, nvis, "AMD", vis2,
			                       &nvis2, host, err, errlen);
			if (rc)
				goto out;
			memcpy(vis, vis2, (size_t)nvis2 * sizeof(*vis));
			nvis = nvis2;
			if (nvis < before)
				gd__append(why, whylen, "HIP_VISIBLE_DEVICES=%s", v);
		}
		for (int i = 0; i < nc; i++)
			cand[i]->visible = 0;
		for (int i = 0; i < nvis; i++)
			vis[i]->visible = 1;
	}
out:
	free(cand);
	free(vis);
	free(vis2);
	return rc;
}

/* cfg.gpu_ids: node indices (PCI order over all compute GPUs). */
static int gd__restrict_ids(const gd__place_req *req, gd__gpuinfo *gpus, int n, const char *host,
                            char *err, size_t errlen)
{
	if (!req->gpu_ids || !req->n_gpu_ids)
		return 0;
	for (int i = 0; i < n; i++)
		gpus[i].wanted = 0;
	for (size_t k = 0; k < req->n_gpu_ids; k++) {
		int id = req->gpu_ids[k];

		if (id < 0 || id >= n) {
			if (n)
				gd__msg(err, errlen,
				        "gpu_ids[%zu] = %d does not exist: %s has %d compute GPU%s "
				        "(indices 0-%d in PCI bus order)",
				        k, id, host, n, n == 1 ? "" : "s", n - 1);
			else
				gd__msg(err, errlen,
				        "gpu_ids[%zu] = %d does not exist: %s has no compute GPU",
				        k, id, host);
			return GD_EPLACEMENT;
		}
		gpus[id].wanted = 1;
	}
	return 0;
}

/* ------------------------------------------------------------- groups */

/*
 * gpus_per_worker = N: the usable GPUs are cut into groups of N that are as
 * close to each other as the topology allows.  Bottom-up over hwloc's tree
 * (PCIe switch, host bridge, NUMA node / group, package, machine): each
 * object first lets its children form their groups, then makes groups of N
 * from what its children left over, in PCI order; what is left goes up to
 * its parent.  A group is thus formed in the deepest object that holds N
 * GPUs, and only the GPUs that do not fit any closer set reach the machine
 * (and may span sockets).  floor(usable / N) groups per vendor.
 */
typedef struct gd__grp {
	int level; /* depth of the object that formed it (machine = 0) */
	int n;
	int idx[GD_MAX_WORKER_GPUS]; /* indices into gpus[], PCI order */
} gd__grp;

typedef struct gd__packer {
	gd__gpuinfo *gpus;
	int n;
	int per;
	int vendor;
	gd__grp *grp;
	int ngrp;
} gd__packer;

static int gd__cmp_int(const void *a, const void *b)
{
	int x = *(const int *)a, y = *(const int *)b;

	return x < y ? -1 : x > y;
}

static int gd__pack(gd__packer *pk, hwloc_obj_t obj, int level, int *left)
{
	int nl = 0;

	if (obj->type == HWLOC_OBJ_PCI_DEVICE) {
		for (int i = 0; i < pk->n; i++) {
			const gd__gpuinfo *gi = &pk->gpus[i];

			if (gi->pci == obj && gi->visible && gi->wanted &&
			    gi->vendor == pk->vendor) {
				left[0] = i;
				return 1;
			}
		}
		return 0;
	}
	for (hwloc_obj_t c = obj->first_child; c; c = c->next_sibling)
		nl += gd__pack(pk, c, level + 1, left + nl);
	for (hwloc_obj_t c = obj->io_first_child; c; c = c->next_sibling)
		nl += gd__pack(pk, c, level + 1, left + nl);
	if (nl > 1)
		qsort(left, (size_t)nl, sizeof(*left), gd__cmp_int);
	while (nl >= pk->per) {
		gd__grp *g = &pk->grp[pk->ngrp++];

		g->level = level;
		g->n = pk->per;
		memcpy(g->idx, left, (size_t)pk->per * sizeof(*left));
		nl -= pk->per;
		memmove(left, left + pk->per, (size_t)nl * sizeof(*left));
	}
	return nl;
}

/* Closer groups first, then PCI order. */
static int gd__cmp_grp_best(const void *a, const void *b)
{
	const gd__grp *x = a, *y = b;

	if (x->level != y->level)
		return x->level > y->level ? -1 : 1;
	return x->idx[0] < y->idx[0] ? -1 : x->idx[0] > y->idx[0];
}

static int gd__cmp_grp_pci(const void *a, const void *b)
{
	const gd__grp *x = a, *y = b;

	return x->idx[0] < y->idx[0] ? -1 : x->idx[0] > y->idx[0];
}

/*
 * Every group of `per` usable GPUs (NVIDIA first, then AMD), in *grp
 * (malloc'ed, PCI order of their first GPU).  \return the count, or
 * GD_ENOMEM.
 */
static int gd__make_groups(hwloc_topology_t topo, gd__gpuinfo *gpus, int n, int per, gd__grp **grp)
{
	gd__packer pk = {.gpus = gpus, .n = n, .per = per};
	int *left = calloc((size_t)(n ? n : 1), sizeof(*left));

	*grp = calloc((size_t)(n ? n : 1), sizeof(**grp));
	if (!left || !*grp) {
		free(left);
		free(*grp);
		*grp = NULL;
		return GD_ENOMEM;
	}
	pk.grp = *grp;
	for (int v = GD__V_NVIDIA; v <= GD__V_AMD; v++) {
		pk.vendor = v;
		gd__pack(&pk, hwloc_get_root_obj(topo), 0, left);
	}
	free(left);
	return pk.ngrp;
}

/* ------------------------------------------------------------ cpusets */

/*
 * The CPUs this process may use: its current binding within the topology's
 * allowed set.  On a topology that is not this system (XML) hwloc's dummy
 * get_cpubind returns the whole fake machine.
 */
static hwloc_bitmap_t gd__current_cpus(hwloc_topology_t topo)
{
	hwloc_bitmap_t cur = hwloc_bitmap_alloc();

	if (!cur)
		return NULL;
	if (hwloc_get_cpubind(topo, cur, 0) != 0 &&
	    hwloc_get_cpubind(topo, cur, HWLOC_CPUBIND_THREAD) != 0)
		hwloc_bitmap_copy(cur, hwloc_topology_get_allowed_cpuset(topo));
	hwloc_bitmap_and(cur, cur, hwloc_topology_get_allowed_cpuset(topo));
	if (hwloc_bitmap_iszero(cur)) /* binding outside what hwloc knows: trust hwloc */
		hwloc_bitmap_copy(cur, hwloc_topology_get_allowed_cpuset(topo));
	return cur;
}

/*
 * A set as text: hwloc's list form ("0-7,16-23"), or its taskset form
 * ("0xff00ff") when the list does not fit.  \return 0, or GD_ETOOBIG
 * when neither fits (buf is then "").
 */
static int gd__set_str(hwloc_const_bitmap_t set, char *buf, size_t len)
{
	int r = hwloc_bitmap_list_snprintf(buf, len, set);

	if (r >= 0 && (size_t)r < len)
		return 0;
	r = hwloc_bitmap_taskset_snprintf(buf, len, set);
	if (r >= 0 && (size_t)r < len)
		return 0;
	buf[0] = '\0';
	return GD_ETOOBIG;
}

static int gd__set_parse(hwloc_bitmap_t set, const char *s)
{
	if (!strncmp(s, "0x", 2))
		return hwloc_bitmap_taskset_sscanf(set, s);
	return hwloc_bitmap_list_sscanf(set, s);
}

/*
 * Worker i of nw on CPUs only: a contiguous slice of the cores (logical
 * order, which follows packages and NUMA nodes), or of the PUs when there
 * are more workers than cores, or one PU each, shared, when there are more
 * workers than PUs.
 */
static int gd__cpu_slice(hwloc_topology_t topo, hwloc_const_bitmap_t avail, int i, int nw,
                         hwloc_bitmap_t out, char *warn, size_t warnlen)
{
	hwloc_obj_type_t type = HWLOC_OBJ_CORE;
	int n = 0, k = 0;

	hwloc_bitmap_zero(out);
	for (int pass = 0; pass < 2 && n < nw; pass++) {
		type = pass ? HWLOC_OBJ_PU : HWLOC_OBJ_CORE;
		n = 0;
		for (hwloc_obj_t o = NULL; (o = hwloc_get_next_obj_by_type(topo, type, o));)
			n += hwloc_bitmap_intersects(o->cpuset, avail);
	}
	if (n <= 0) {
		hwloc_bitmap_copy(out, avail);
		return 0;
	}
	int lo, hi;
	if (nw <= n) {
		lo = (int)((long)i * n / nw);
		hi = (int)((long)(i + 1) * n / nw);
	} else {
		lo = i % n;
		hi = lo + 1;
		gd__append(warn, warnlen,
		           "%d CPU workers on this node but only %d CPUs: worker shares its CPU",
		           nw, n);
	}
	for (hwloc_obj_t o = NULL; (o = hwloc_get_next_obj_by_type(topo, type, o));) {
		if (!hwloc_bitmap_intersects(o->cpuset, avail))
			continue;
		if (k >= lo && k < hi)
			hwloc_bitmap_or(out, out, o->cpuset);
		k++;
	}
	hwloc_bitmap_and(out, out, avail);
	return 0;
}

static void gd__add_env(gd__placement *p, const char *name, const char *value)
{
	if (p->n_env >= GD__PLACE_MAX_ENV)
		return;
	gd__copy(p->env_name[p->n_env], sizeof(p->env_name[0]), name);
	gd__copy(p->env_value[p->n_env], sizeof(p->env_value[0]), value);
	p->n_env++;
}

/* ------------------------------------------------------------- compute */

/* The environment that shows the executor its GPUs (PCI order). */
static void gd__gpu_env(gd__placement *out, gd__gpuinfo **mine, int nm)
{
	char list[GD_MAX_WORKER_GPUS * 48] = "", hip[GD_MAX_WORKER_GPUS * 4] = "";
	size_t used = 0, hused = 0;

	for (int k = 0; k < nm; k++) {
		char tok[64];

		if (mine[k]->vendor == GD__V_NVIDIA && mine[k]->g.uuid[0])
			gd__copy(tok, sizeof(tok), mine[k]->g.uuid);
		else
			snprintf(tok, sizeof(tok), "%d", mine[k]->vindex);
		used += (size_t)snprintf(list + used, sizeof(list) - used, "%s%s", k ? "," : "",
		                         tok);
		hused +=
		        (size_t)snprintf(hip + hused, sizeof(hip) - hused, "%s%d", k ? "," : "", k);
		if (used >= sizeof(list) || hused >= sizeof(hip))
			break;
	}
	if (mine[0]->vendor == GD__V_NVIDIA) {
		gd__add_env(out, "CUDA_DEVICE_ORDER", "PCI_BUS_ID");
		gd__add_env(out, "CUDA_VISIBLE_DEVICES", list);
	} else {
		/* HIP_VISIBLE_DEVICES indexes what ROCr shows: 0 .. N-1. */
		gd__add_env(out, "ROCR_VISIBLE_DEVICES", list);
		gd__add_env(out, "HIP_VISIBLE_DEVICES", hip);
	}
}

/* "3, 7" of the usable GPUs in no group. */
static void gd__leftover_note(gd__placement *out, const gd__gpuinfo *gpus, int n, int n_usable,
                              unsigned per, const char *host)
{
	char list[128] = "";
	size_t used = 0;
	int cnt = 0;

	for (int i = 0; i < n; i++) {
		/* -2: in a group that no worker needs; -1: in none */
		if (!gpus[i].visible || !gpus[i].wanted || gpus[i].group != -1)
			continue;
		if (used < sizeof(list))
			used += (size_t)snprintf(list + used, sizeof(list) - used, "%s%d",
			                         cnt ? ", " : "", gpus[i].g.index);
		cnt++;
	}
	if (cnt)
		gd__msg(out->note, sizeof(out->note),
		        "%d usable GPUs on %s do not split into groups of %u (gpus_per_worker): "
		        "GPU%s %s left unused",
		        n_usable, host, per, cnt == 1 ? "" : "s", list);
}

int gd__place_compute(const gd__place_req *req, gd__placement *out, char *err, size_t errlen)
{
	hwloc_topology_t topo;
	hwloc_bitmap_t cur = NULL, cpus = NULL, ns = NULL;
	gd__gpuinfo *gpus = NULL, *mine[GD_MAX_WORKER_GPUS];
	gd__grp *grp = NULL;
	int n = 0, rc, n_usable = 0, nw, slot = -1, ngrp = 0, nm = 0;
	unsigned wpg, per;
	char host[64], why[192] = "";

	if (err && errlen)
		err[0] = '\0';
	if (!out)
		return GD_EINVAL;
	memset(out, 0, sizeof(*out));
	out->gpu.index = -1;
	out->gpu.numa_node = -1;
	if (!req || req->local_index < 0) {
		gd__msg(err, errlen, "placement needs a worker's node-local index (got %d)",
		        req ? req->local_index : -1);
		return GD_EINVAL;
	}
	wpg = req->workers_per_gpu ? req->workers_per_gpu : 1;
	per = req->gpus_per_worker ? req->gpus_per_worker : 1;
	if (per > GD_MAX_WORKER_GPUS) {
		gd__msg(err, errlen, "gpus_per_worker = %u: at most %d GPUs per worker", per,
		        GD_MAX_WORKER_GPUS);
		out->nofit = GD__PLACE_NOFIT;
		return GD_EPLACEMENT;
	}
	gd__hostname(host, sizeof(host));
	/* Workers on the node: at least this one's index + 1. */
	nw = req->local_workers > req->local_index ? req->local_workers : req->local_index + 1;

	rc = gd__topo_load(&topo, req->xml_path, 1, err, errlen);
	if (rc)
		return rc;
	rc = gd__discover(topo, &gpus, &n, err, errlen);
	if (rc)
		goto out;
	rc = gd__restrict_env(req, gpus, n, host, why, sizeof(why), err, errlen);
	if (rc)
		goto out;
	rc = gd__restrict_ids(req, gpus, n, host, err, errlen);
	if (rc)
		goto out;

	for (int i = 0; i < n; i++) {
		n_usable += gpus[i].visible && gpus[i].wanted;
		gpus[i].group = -1;
	}
	if (req->gpu_ids && req->n_gpu_ids && !n_usable) {
		gd__msg(err, errlen,
		        "node-local worker %d on host %s: none of the %zu GPU(s) in gpu_ids is "
		        "visible (%s)",
		        req->local_index, host, req->n_gpu_ids,
		        why[0] ? why : "hidden by the environment");
		rc = GD_EPLACEMENT;
		goto out;
	}
	out->n_gpus = n_usable;
	if (n_usable) {
		long need, used;

		ngrp = gd__make_groups(topo, gpus, n, (int)per, &grp);
		if (ngrp < 0) {
			gd__msg(err, errlen, "out of memory");
			rc = ngrp;
			goto out;
		}
		if (!ngrp) {
			gd__msg(err, errlen,
			        "node-local worker %d on host %s: gpus_per_worker is %u but the "
			        "node has only %d usable GPU%s",
			        req->local_index, host, per, n_usable, n_usable == 1 ? "" : "s");
			out->nofit = GD__PLACE_NOFIT;
			rc = GD_EPLACEMENT;
			goto out;
		}
		need = ((long)nw + ngrp - 1) / ngrp; /* workers per GPU (group) */
		if (need > (long)wpg) {
			if (per > 1)
				gd__msg(err, errlen,
				        "node-local worker %d on host %s: %d worker ranks on this "
				        "node with %u GPUs each need %ld GPUs, but the %d usable "
				        "GPU%s make only %d group%s of %u; start at most %d worker "
				        "ranks per node, or lower gpus_per_worker",
				        req->local_index, host, nw, per, (long)nw * per, n_usable,
				        n_usable == 1 ? "" : "s", ngrp, ngrp == 1 ? "" : "s", per,
				        ngrp * (int)wpg);
			else if (wpg == 1)
				gd__msg(err, errlen,
				        "node-local worker %d on host %s: %d worker ranks on this "
				        "node but only %d "
				        "usable GPU%s; start at most %d worker ranks per node, or "
				        "let workers share GPUs with workers_per_gpu >= %ld",
				        req->local_index, host, nw, n_usable,
				        n_usable == 1 ? "" : "s", n_usable, need);
			else
				gd__msg(err, errlen,
				        "node-local worker %d on host %s: %d worker ranks on this "
				        "node need %ld "
				        "workers per GPU on %d usable GPU%s, but workers_per_gpu "
				        "is %u",
				        req->local_index, host, nw, need, n_usable,
				        n_usable == 1 ? "" : "s", wpg);
			out->nofit = GD__PLACE_NOFIT;
			rc = GD_EPLACEMENT;
			goto out;
		}
		/* The groups the node's workers use: the closest ones, in PCI order. */
		used = ((long)nw + need - 1) / need;
		if (per > 1 && used < ngrp)
			qsort(grp, (size_t)ngrp, sizeof(*grp), gd__cmp_grp_best);
		if (used > ngrp)
			used = ngrp;
		qsort(grp, (size_t)used, sizeof(*grp), gd__cmp_grp_pci);
		for (int g = 0; g < ngrp; g++)
			for (int k = 0; k < grp[g].n; k++)
				gpus[grp[g].idx[k]].group = g < used ? g : -2;
		slot = (int)(req->local_index / need);
		for (int k = 0; k < grp[slot].n; k++)
			mine[nm++] = &gpus[grp[slot].idx[k]];
		if (per > 1)
			gd__leftover_note(out, gpus, n, n_usable, per, host);
	}

	cur = gd__current_cpus(topo);
	cpus = hwloc_bitmap_alloc();
	ns = hwloc_bitmap_alloc();
	if (!cur || !cpus || !ns) {
		gd__msg(err, errlen, "out of memory");
		rc = GD_ENOMEM;
		goto out;
	}

	if (nm) {
		hwloc_bitmap_t want = hwloc_bitmap_alloc(), one = hwloc_bitmap_alloc();
		char wants[128], have[128], idx[64] = "", bus[64] = "";
		size_t iu = 0, bu = 0;

		if (!want || !one) {
			hwloc_bitmap_free(want);
			hwloc_bitmap_free(one);
			gd__msg(err, errlen, "out of memory");
			rc = GD_ENOMEM;
			goto out;
		}
		for (int k = 0; k < nm; k++) {
			hwloc_obj_t anc = hwloc_get_non_io_ancestor_obj(topo, mine[k]->pci);
			gd_gpu *g = &out->gpus[k];

			*g = mine[k]->g;
			hwloc_bitmap_or(want, want, anc->cpuset);
			hwloc_bitmap_and(one, anc->cpuset, cur);
			if (hwloc_bitmap_iszero(one))
				hwloc_bitmap_copy(one, cur);
			if (gd__set_str(one, g->cpuset, sizeof(g->cpuset)) != 0)
				g->cpuset[0] = '\0';
			if (iu < sizeof(idx))
				iu += (size_t)snprintf(idx + iu, sizeof(idx) - iu, "%s%d",
				                       k ? "," : "", g->index);
			if (bu < sizeof(bus))
				bu += (size_t)snprintf(bus + bu, sizeof(bus) - bu, "%s%s",
				                       k ? "," : "", g->bus_id);
		}
		out->n_wgpus = nm;
		out->gpu = mine[0]->g;
		hwloc_bitmap_and(cpus, want, cur);
		if (hwloc_bitmap_iszero(cpus)) {
			/* Never widen the binding: keep it, and say so. */
			hwloc_bitmap_copy(cpus, cur);
			gd__set_str(want, wants, sizeof(wants));
			gd__set_str(cur, have, sizeof(have));
			gd__append(out->warning, sizeof(out->warning),
			           "cores not local to GPU %s (%s): the process is bound to CPUs "
			           "%s, none of which is near the GPU%s (%s CPUs: %s); keeping "
			           "that binding",
			           idx, bus, have, nm > 1 ? "s" : "", nm > 1 ? "their" : "its",
			           wants);
		}
		hwloc_bitmap_free(want);
		hwloc_bitmap_free(one);
		gd__gpu_env(out, mine, nm);
		if (nw > ngrp && wpg > 1)
			gd__msg(out->note, sizeof(out->note),
			        "%d workers share %d GPU%s%s on %s (workers_per_gpu = %u)", nw,
			        ngrp, ngrp == 1 ? "" : "s", per > 1 ? " groups" : "", host, wpg);
	} else {
		out->cpu_worker = 1;
		gd__cpu_slice(topo, cur, req->local_index, nw, cpus, out->warning,
		              sizeof(out->warning));
		if (n)
			gd__msg(out->note, sizeof(out->note),
			        "no usable GPU on %s (%d found, hidden by %s): running as CPU "
			        "workers",
			        host, n, why[0] ? why : "the environment");
		else
			gd__msg(out->note, sizeof(out->note),
			        "no GPU found on %s: running as CPU workers", host);
	}

	if (gd__set_str(cpus, out->gpu.cpuset, sizeof(out->gpu.cpuset)) != 0) {
		gd__msg(err, errlen,
		        "node-local worker %d on host %s: its cpuset is too large to describe",
		        req->local_index, host);
		rc = GD_EPLACEMENT;
		goto out;
	}
	/* Memory: the NUMA nodes of those CPUs, unless that is every node. */
	hwloc_cpuset_to_nodeset(topo, cpus, ns);
	if (out->cpu_worker)
		out->gpu.numa_node = gd__single_numa(ns);
	if (!hwloc_bitmap_iszero(ns) &&
	    !hwloc_bitmap_isequal(ns, hwloc_topology_get_topology_nodeset(topo)) &&
	    gd__set_str(ns, out->nodeset, sizeof(out->nodeset)) != 0)
		out->nodeset[0] = '\0';
	rc = 0;
out:
	hwloc_bitmap_free(cur);
	hwloc_bitmap_free(cpus);
	hwloc_bitmap_free(ns);
	free(grp);
	free(gpus);
	hwloc_topology_destroy(topo);
	return rc;
}

/* -------------------------------------------------------------- apply */

int gd__place_apply(const gd__placement *p, char *err, size_t errlen)
{
	hwloc_topology_t topo;
	hwloc_bitmap_t set = NULL, cur = NULL;
	if (err && errlen)
		err[0] = '\0';
	if (!p)
		return GD_EINVAL;
	for (int i = 0; i < p->n_env && i < GD__PLACE_MAX_ENV; i++) {
		if (setenv(p->env_name[i], p->env_value[i], 1) != 0) {
			gd__msg(err, errlen, "setenv %s: %s", p->env_name[i], strerror(errno));
			return GD_EPLACEMENT;
		}
	}
	if (!p->gpu.cpuset[0])
		return 0;
	/* Same source as gd__place_compute() saw ($HWLOC_XMLFILE or this system). */
	if (gd__topo_load(&topo, NULL, 0, err, errlen) != 0) {
		/* Unbound is still a working executor: warn, do not fail. */
		gd__append(err, errlen, "executor not bound");
		return 0;
	}
	/*
	 * A topology that is not this system (XML) only has dummy binding hooks:
	 * its PU numbers are not this machine's.  Leave the process alone.
	 */
	if (!hwloc_topology_is_thissystem(topo))
		goto out;
	set = hwloc_bitmap_alloc();
	cur = gd__current_cpus(topo);
	if (!set || !cur) {
		gd__msg(err, errlen, "out of memory: executor not bound");
		goto out;
	}
	if (gd__set_parse(set, p->gpu.cpuset) != 0) {
		gd__msg(err, errlen, "cannot parse the cpuset \"%s\": executor not bound",
		        p->gpu.cpuset);
		goto out;
	}
	hwloc_bitmap_and(set, set, cur);
	if (hwloc_bitmap_iszero(set)) {
		gd__append(err, errlen,
		           "the cpuset %s is outside the process's binding: keeping the binding",
		           p->gpu.cpuset);
	} else if (hwloc_set_cpubind(topo, set, HWLOC_CPUBIND_PROCESS) != 0) {
		gd__append(err, errlen, "cannot bind the executor to CPUs %s: %s", p->gpu.cpuset,
		           strerror(errno));
	}
	if (p->nodeset[0]) {
		hwloc_bitmap_t ns = hwloc_bitmap_alloc();

		if (ns && hwloc_bitmap_list_sscanf(ns, p->nodeset) == 0 &&
		    hwloc_set_membind(topo, ns, HWLOC_MEMBIND_BIND, HWLOC_MEMBIND_BYNODESET) != 0)
			gd__append(err, errlen, "memory not bound to NUMA node(s) %s: %s%s",
			           p->nodeset, strerror(errno),
			           errno == ENOSYS || errno == EXDEV ? " (not supported here)"
			                                             : "");
		hwloc_bitmap_free(ns);
	}
out:
	hwloc_bitmap_free(set);
	hwloc_bitmap_free(cur);
	hwloc_topology_destroy(topo);
	return 0;
}

/* ------------------------------------------------------- local index */

int gd__place_local_index(MPI_Comm comm, int *local_index, int *local_workers)
{
	MPI_Comm node = MPI_COMM_NULL;
	int rank, is_worker, before = 0, total = 0, nrank;

	if (!local_index || !local_workers)
		return GD_EINVAL;
	*local_index = -1;
	*local_workers = 0;
	if (gd__mpi(MPI_Comm_rank(comm, &rank), "MPI_Comm_rank"))
		return GD_EMPI;
	is_worker = rank != 0;
	/* Key = rank: the node's workers are numbered in rank order. */
	if (gd__mpi(MPI_Comm_split_type(comm, MPI_COMM_TYPE_SHARED, rank, MPI_INFO_NULL, &node),
	            "MPI_Comm_split_type"))
		return GD_EMPI;
	if (gd__mpi(MPI_Comm_rank(node, &nrank), "MPI_Comm_rank") ||
	    gd__mpi(MPI_Exscan(&is_worker, &before, 1, MPI_INT, MPI_SUM, node), "MPI_Exscan") ||
	    gd__mpi(MPI_Allreduce(&is_worker, &total, 1, MPI_INT, MPI_SUM, node),
	            "MPI_Allreduce")) {
		MPI_Comm_free(&node);
		return GD_EMPI;
	}
	if (nrank == 0)
		before = 0; /* MPI_Exscan leaves rank 0's result undefined */
	MPI_Comm_free(&node);
	*local_index = is_worker ? before : -1;
	*local_workers = total;
	return 0;
}
