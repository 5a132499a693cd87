/* The wire format (see wire.h): record headers, payload readers, the
 * configuration and HELLO payloads. */
#define _GNU_SOURCE
#include "wire.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const rec_names[GD_REC__MAX] = {
        [GD_REC_TASK] = "TASK",
        [GD_REC_STOP] = "STOP",
        [GD_REC_ABORT] = "ABORT",
        [GD_REC_HELLO] = "HELLO",
        [GD_REC_READY] = "READY",
        [GD_REC_SETUP_FAIL] = "SETUP_FAIL",
        [GD_REC_SUCCESS] = "SUCCESS",
        [GD_REC_ERROR] = "ERROR",
        [GD_REC_TIMEOUT] = "TIMEOUT",
        [GD_REC_CLEANUP] = "CLEANUP",
        [GD_REC_CLEANUP_OK] = "CLEANUP_OK",
        [GD_REC_CLEANUP_FAIL] = "CLEANUP_FAIL",
        [GD_REC_BYE] = "BYE",
        [GD_REC_TASK_SHM] = "TASK_SHM",
        [GD_REC_TASK_DROP] = "TASK_DROP",
        [GD_REC_PING] = "PING",
};

const char *gd__rec_type_name(int type)
{
	if (type <= 0 || type >= GD_REC__MAX)
		return "?";
	return rec_names[type];
}

void gd__rec_put_hdr(uint8_t *p, const gd__rec *r)
{
	gd__pack_u8(&p, r->type);
	gd__pack_u8(&p, r->flags);
	gd__pack_u16(&p, r->attempt);
	gd__pack_u32(&p, r->worker);
	gd__pack_u64(&p, r->task_id);
	gd__pack_u64(&p, r->aux);
	gd__pack_u32(&p, r->len);
}

int gd__rec_append(gd__bytes *b, const gd__rec *r, const void *payload)
{
	uint8_t *p;

	if (r->len > GD_REC_MAX_PAYLOAD)
		return GD_ETOOBIG;
	p = gd__bytes_grow(b, GD_REC_HDR + (size_t)r->len);
	if (!p)
		return GD_ENOMEM;
	gd__rec_put_hdr(p, r);
	if (r->len)
		memcpy(p + GD_REC_HDR, payload, r->len);
	return 0;
}

int gd__rec_parse(const uint8_t *p, size_t avail, gd__rec *r, size_t *used, char *err,
                  size_t errlen)
{
	if (avail < GD_REC_HDR)
		return 0;
	r->type = p[0];
	r->flags = p[1];
	r->attempt = gd__get_u16(p + 2);
	r->worker = gd__get_u32(p + 4);
	r->task_id = gd__get_u64(p + 8);
	r->aux = gd__get_u64(p + 16);
	r->len = gd__get_u32(p + 24);
	if (r->type == 0 || r->type >= GD_REC__MAX) {
		snprintf(err, errlen, "unknown record type %u", r->type);
		return GD_EPROTO;
	}
	if (r->len > GD_REC_MAX_PAYLOAD) {
		snprintf(err, errlen, "%s record claims %u payload bytes (limit %u)",
		         gd__rec_type_name(r->type), r->len, GD_REC_MAX_PAYLOAD);
		return GD_EPROTO;
	}
	if (avail - GD_REC_HDR < r->len)
		return 0;
	r->payload = p + GD_REC_HDR;
	*used = GD_REC_HDR + (size_t)r->len;
	return 1;
}

int gd__msg_foreach(const uint8_t *p, size_t len, int (*fn)(void *ctx, const gd__rec *r), void *ctx,
                    char *err, size_t errlen)
{
	size_t off = 0, used = 0;
	gd__rec r;
	int rc;

	if (len == 0) {
		snprintf(err, errlen, "empty message");
		return GD_EPROTO;
	}
	while (off < len) {
		rc = gd__rec_parse(p + off, len - off, &r, &used, err, errlen);
		if (rc < 0)
			return rc;
		if (rc == 0) {
			snprintf(err, errlen, "truncated record at byte %zu of a %zu-byte message",
			         off, len);
			return GD_EPROTO;
		}
		rc = fn(ctx, &r);
		if (rc)
			return rc;
		off += used;
	}
	return 0;
}

/* ------------------------------------------------------------ payload I/O */

uint32_t gd__rd_u32(gd__rd *r)
{
	uint32_t v;

	if (r->bad || r->end - r->p < 4) {
		r->bad = 1;
		return 0;
	}
	v = gd__get_u32(r->p);
	r->p += 4;
	return v;
}

uint64_t gd__rd_u64(gd__rd *r)
{
	uint64_t v;

	if (r->bad || r->end - r->p < 8) {
		r->bad = 1;
		return 0;
	}
	v = gd__get_u64(r->p);
	r->p += 8;
	return v;
}

void gd__rd_str(gd__rd *r, char *dst, size_t size)
{
	size_t n, keep;

	dst[0] = '\0';
	if (r->bad || r->end - r->p < 2) {
		r->bad = 1;
		return;
	}
	n = gd__get_u16(r->p);
	r->p += 2;
	if ((size_t)(r->end - r->p) < n) {
		r->bad = 1;
		return;
	}
	keep = GD__MIN(n, size - 1);
	memcpy(dst, r->p, keep);
	dst[keep] = '\0';
	r->p += n;
}

const uint8_t *gd__rd_blob(gd__rd *r, uint32_t *len)
{
	const uint8_t *s;
	uint32_t n = gd__rd_u32(r);

	if (r->bad || (size_t)(r->end - r->p) < n) {
		r->bad = 1;
		*len = 0;
		return NULL;
	}
	s = r->p;
	r->p += n;
	*len = n;
	return s;
}

int gd__put_u32(gd__bytes *b, uint32_t v)
{
	uint8_t *p = gd__bytes_grow(b, 4);

	if (!p)
		return GD_ENOMEM;
	gd__pack_u32(&p, v);
	return 0;
}

int gd__put_u64(gd__bytes *b, uint64_t v)
{
	uint8_t *p = gd__bytes_grow(b, 8);

	if (!p)
		return GD_ENOMEM;
	gd__pack_u64(&p, v);
	return 0;
}

int gd__put_str(gd__bytes *b, const char *s)
{
	size_t n = s ? strlen(s) : 0;
	uint8_t *p;

	if (n > 65535)
		n = 65535;
	p = gd__bytes_grow(b, 2 + n);
	if (!p)
		return GD_ENOMEM;
	gd__pack_u16(&p, (uint16_t)n);
	if (n)
		memcpy(p, s, n);
	return 0;
}

int gd__put_blob(gd__bytes *b, const void *d, uint32_t n)
{
	uint8_t *p = gd__bytes_grow(b, 4 + (size_t)n);

	if (!p)
		return GD_ENOMEM;
	gd__pack_u32(&p, n);
	if (n)
		memcpy(p, d, n);
	return 0;
}

/* ------------------------------------------------------------ config */

/* Doubles travel as their IEEE-754 bits. */
static uint64_t dbl_bits(double d)
{
	uint64_t u;

	memcpy(&u, &d, sizeof(u));
	return u;
}

static double bits_dbl(uint64_t u)
{
	double d;

	memcpy(&d, &u, sizeof(d));
	return d;
}

int gd__cfg_pack(const gd_config *cfg, gd__bytes *out)
{
	int rc = 0;

	out->len = 0;
	rc |= gd__put_u32(out, cfg->window);
	rc |= gd__put_u32(out, (uint32_t)cfg->isolation);
	rc |= gd__put_u32(out, cfg->max_restarts);
	rc |= gd__put_u32(out, (uint32_t)cfg->placement);
	rc |= gd__put_u32(out, cfg->workers_per_gpu);
	rc |= gd__put_u64(out, cfg->base_seed);
	rc |= gd__put_u64(out, dbl_bits(cfg->task_timeout));
	rc |= gd__put_u64(out, dbl_bits(cfg->setup_timeout));
	rc |= gd__put_u32(out, (uint32_t)cfg->n_setup_args);
	for (size_t i = 0; i < cfg->n_setup_args; i++) {
		const char *k = cfg->setup_args[i].key ? cfg->setup_args[i].key : "";
		const char *v = cfg->setup_args[i].value ? cfg->setup_args[i].value : "";

		rc |= gd__put_blob(out, k, (uint32_t)strlen(k));
		rc |= gd__put_blob(out, v, (uint32_t)strlen(v));
	}
	rc |= gd__put_u32(out, (uint32_t)cfg->n_gpu_ids);
	for (size_t i = 0; i < cfg->n_gpu_ids; i++)
		rc |= gd__put_u32(out, (uint32_t)cfg->gpu_ids[i]);
	rc |= gd__put_u32(out, cfg->gpus_per_worker);
	rc |= gd__put_u64(out, dbl_bits(cfg->heartbeat_timeout));
	return rc ? GD_ENOMEM : 0;
}

int gd__cfg_unpack(const uint8_t *p, size_t len, gd__wcfg *w)
{
	gd__rd r = {p, p + len, 0};
	size_t nargs, strbytes = 0;
	const uint8_t *save;
	char *s;

	memset(w, 0, sizeof(*w));
	w->window = gd__rd_u32(&r);
	w->isolation = gd__rd_u32(&r);
	w->max_restarts = gd__rd_u32(&r);
	w->placement = gd__rd_u32(&r);
	w->workers_per_gpu = gd__rd_u32(&r);
	w->base_seed = gd__rd_u64(&r);
	w->task_timeout = bits_dbl(gd__rd_u64(&r));
	w->setup_timeout = bits_dbl(gd__rd_u64(&r));
	nargs = gd__rd_u32(&r);
	if (r.bad || nargs > len / 8)
		return GD_EPROTO;
	/* First pass: size the string store. */
	save = r.p;
	for (size_t i = 0; i < 2 * nargs; i++) {
		uint32_t n;

		gd__rd_blob(&r, &n);
		strbytes += (size_t)n + 1;
	}
	if (r.bad)
		return GD_EPROTO;
	w->kv_store = calloc(nargs ? nargs : 1, sizeof(*w->kv_store));
	w->str_store = malloc(strbytes ? strbytes : 1);
	if (!w->kv_store || !w->str_store)
		return GD_ENOMEM;
	r.p = save;
	s = w->str_store;
	for (size_t i = 0; i < nargs; i++) {
		for (int j = 0; j < 2; j++) {
			uint32_t n;
			const uint8_t *b = gd__rd_blob(&r, &n);

			memcpy(s, b, n);
			s[n] = '\0';
			if (j == 0)
				w->kv_store[i].key = s;
			else
				w->kv_store[i].value = s;
			s += n + 1;
		}
	}
	w->args.kv = w->kv_store;
	w->args.n = nargs;
	w->n_gpu_ids = gd__rd_u32(&r);
	if (r.bad || w->n_gpu_ids > len / 4)
		return GD_EPROTO;
	if (w->n_gpu_ids) {
		w->gpu_ids = calloc(w->n_gpu_ids, sizeof(int));
		if (!w->gpu_ids)
			return GD_ENOMEM;
		for (size_t i = 0; i < w->n_gpu_ids; i++)
			w->gpu_ids[i] = (int)gd__rd_u32(&r);
	}
	w->gpus_per_worker = gd__rd_u32(&r);
	w->heartbeat_timeout = bits_dbl(gd__rd_u64(&r));
	if (r.bad || r.p != r.end)
		return GD_EPROTO;
	if (w->window == 0 || !(w->task_timeout >= 0) || !(w->setup_timeout >= 0) ||
	    !(w->heartbeat_timeout >= 0))
		return GD_EPROTO;
	return 0;
}

void gd__cfg_free(gd__wcfg *w)
{
	free(w->kv_store);
	free(w->str_store);
	free(w->gpu_ids);
	memset(w, 0, sizeof(*w));
}

/* ------------------------------------------------------------ hello */

int gd__hello_pack(const gd__hello *h, gd__bytes *out)
{
	int rc = 0;

	out->len = 0;
	rc |= gd__put_u32(out, (uint32_t)h->pid);
	rc |= gd__put_str(out, h->host);
	rc |= gd__put_u32(out, (uint32_t)h->gpu.index);
	rc |= gd__put_u32(out, (uint32_t)h->gpu.numa_node);
	rc |= gd__put_str(out, h->gpu.bus_id);
	rc |= gd__put_str(out, h->gpu.vendor);
	rc |= gd__put_str(out, h->gpu.model);
	rc |= gd__put_str(out, h->gpu.uuid);
	rc |= gd__put_str(out, h->gpu.cpuset);
	rc |= gd__put_str(out, h->note);
	rc |= gd__put_str(out, h->warning);
	for (unsigned k = 0; k < GD_DROPS; k++)
		rc |= gd__put_u32(out, (uint32_t)h->drop_fd[k]);
	rc |= gd__put_u64(out, h->drop_token);
	rc |= gd__put_u32(out, (uint32_t)h->n_gpus);
	for (int k = 0; k < h->n_gpus && k < GD_MAX_WORKER_GPUS; k++)
		rc |= gd__put_u32(out, (uint32_t)h->gpu_indices[k]);
	return rc ? GD_ENOMEM : 0;
}

int gd__hello_unpack(const uint8_t *p, size_t len, gd__hello *h)
{
	gd__rd r = {p, p + len, 0};

	memset(h, 0, sizeof(*h));
	h->pid = (int32_t)gd__rd_u32(&r);
	gd__rd_str(&r, h->host, sizeof(h->host));
	h->gpu.index = (int32_t)gd__rd_u32(&r);
	h->gpu.numa_node = (int32_t)gd__rd_u32(&r);
	gd__rd_str(&r, h->gpu.bus_id, sizeof(h->gpu.bus_id));
	gd__rd_str(&r, h->gpu.vendor, sizeof(h->gpu.vendor));
	gd__rd_str(&r, h->gpu.model, sizeof(h->gpu.model));
	gd__rd_str(&r, h->gpu.uuid, sizeof(h->gpu.uuid));
	gd__rd_str(&r, h->gpu.cpuset, sizeof(h->gpu.cpuset));
	gd__rd_str(&r, h->note, sizeof(h->note));
	gd__rd_str(&r, h->warning, sizeof(h->warning));
	for (unsigned k = 0; k < GD_DROPS; k++)
		h->drop_fd[k] = (int32_t)gd__rd_u32(&r);
	h->drop_token = gd__rd_u64(&r);
	h->n_gpus = (int32_t)gd__rd_u32(&r);
	if (h->n_gpus < 0 || h->n_gpus > GD_MAX_WORKER_GPUS)
		return GD_EPROTO;
	for (int k = 0; k < h->n_gpus; k++)
		h->gpu_indices[k] = (int32_t)gd__rd_u32(&r);
	if (r.bad || r.p != r.end)
		return GD_EPROTO;
	return 0;
}

/* ------------------------------------------------------------ exit */

void gd__exit_put(uint8_t *p, int status, int signal)
{
	gd__pack_u32(&p, (uint32_t)status);
	gd__pack_u32(&p, (uint32_t)signal);
}

int gd__exit_get(const gd__rec *r, gd_exit *ex, const uint8_t **msg, uint32_t *len)
{
	ex->status = -1;
	ex->signal = 0;
	*msg = r->payload;
	*len = r->len;
	if (!(r->flags & GD_RF_EXIT))
		return 0;
	if (r->len < GD_EXIT_BYTES)
		return GD_EPROTO;
	ex->status = (int32_t)gd__get_u32(r->payload);
	ex->signal = (int32_t)gd__get_u32(r->payload + 4);
	*msg = r->payload + GD_EXIT_BYTES;
	*len = r->len - GD_EXIT_BYTES;
	return 0;
}

/* ------------------------------------------------------------ shm desc */

void gd__rec_desc_put(uint8_t *out, const gd__rec *r, uint8_t type, uint32_t buf, uint64_t off,
                      uint64_t len)
{
	gd__rec d = *r;
	uint8_t *q = out + GD_REC_HDR;

	d.type = type;
	d.len = GD_SHM_DESC;
	gd__rec_put_hdr(out, &d);
	gd__pack_u32(&q, buf);
	gd__pack_u32(&q, 0);
	gd__pack_u64(&q, off);
	gd__pack_u64(&q, len);
}

int gd__rec_desc_get(const gd__rec *r, uint32_t *buf, uint64_t *off, uint64_t *len)
{
	gd__rd rd = {r->payload, r->payload + r->len, 0};

	*buf = gd__rd_u32(&rd);
	gd__rd_u32(&rd);
	*off = gd__rd_u64(&rd);
	*len = gd__rd_u64(&rd);
	if (rd.bad || rd.p != rd.end || *len > GD_REC_MAX_PAYLOAD || *off > UINT64_MAX - *len)
		return GD_EPROTO;
	return 0;
}
