/*
 * The wire format: every message between rank 0 and a worker, and between a
 * worker rank and its executor, is a sequence of records.  A record is a
 * fixed 28-byte header in network byte order followed by `len` payload bytes:
 *
 *   offset size field
 *   0      1    type      (gd__rec_type)
 *   1      1    flags     (GD_RF_*)
 *   2      2    attempt   (1 = first run)
 *   4      4    worker    (worker id of the sender or addressee)
 *   8      8    task_id
 *   16     8    aux       (results: task run time in microseconds)
 *   24     4    len       (payload bytes that follow)
 *
 * Several records may share one MPI message (small tasks are batched); a
 * message must end exactly at a record boundary.  Decoding never reads past
 * the bytes it was given: a short or inconsistent record is GD_EPROTO.
 */
#ifndef GD_WIRE_H
#define GD_WIRE_H

#include "internal.h"
#include "shm.h"

#include <endian.h>
#include <stdint.h>
#include <string.h>

/* The one tag of every message on the library's duplicated communicator. */
#define GD__TAG 1

#define GD_REC_HDR 28u
/* The largest payload: a whole record must fit an MPI int count. */
#define GD_REC_MAX_PAYLOAD (0x7fffffffu - 4096u)
/* The eager limit (GD_BATCH_BYTES), which tasks are large, and the shared
 * buffers they travel in (receive buffers, drops): shm.h. */

typedef enum gd__rec_type {
	GD_REC_TASK = 1,     /* r0 -> worker -> executor: run this task */
	GD_REC_STOP,         /* r0 -> worker: no more tasks; clean up and leave */
	GD_REC_ABORT,        /* r0 -> worker: kill what runs and leave now */
	GD_REC_HELLO,        /* worker -> r0: host, pid, placement (payload: gd__hello) */
	GD_REC_READY,        /* worker -> r0, executor -> worker: setup succeeded */
	GD_REC_SETUP_FAIL,   /* worker -> r0, executor -> worker: payload = message */
	GD_REC_SUCCESS,      /* result bytes */
	GD_REC_ERROR,        /* payload = message */
	GD_REC_TIMEOUT,      /* payload = message; aux = run time */
	GD_REC_CLEANUP,      /* worker -> executor: run cleanup and exit */
	GD_REC_CLEANUP_OK,   /* executor -> worker */
	GD_REC_CLEANUP_FAIL, /* executor -> worker -> r0: payload = message */
	GD_REC_BYE,          /* worker -> r0: this worker has left the run */
	GD_REC_TASK_SHM,     /* worker -> executor: a large task whose payload is in shared
	                        memory: u32 buffer, u32 0, u64 offset, u64 length */
	GD_REC_TASK_DROP,    /* r0 -> worker: a large task whose payload rank 0 wrote into
	                        the worker's drop: u32 drop, u32 0, u64 offset, u64 length */
	GD_REC_PING, /* r0 <-> worker: a heartbeat, nothing else (gd_config.heartbeat_timeout) */
	GD_REC__MAX
} gd__rec_type;

/* aux of a STOP or ABORT record: a node was lost, so the run ends without
 * its final collectives (gd_run() returns GD_ELOST) */
#define GD_CTL_LOST 1u

/* flags */
#define GD_RF_CRASH   0x01 /* ERROR: the executor died (signal or exit) */
#define GD_RF_RESTART 0x02 /* SUCCESS/ERROR: the worker restarted its program for it */
#define GD_RF_EXIT                                                                                 \
	0x04 /* ERROR: the payload starts with GD_EXIT_BYTES: how a process                        \
	        ended (i32 exit status, -1 = none; i32 signal, 0 = none),                          \
	        then the message */
#define GD_EXIT_BYTES 8u

typedef struct gd__rec {
	uint8_t type;
	uint8_t flags;
	uint16_t attempt;
	uint32_t worker;
	uint64_t task_id;
	uint64_t aux;
	uint32_t len;
	const uint8_t *payload; /* points into the decoded buffer */
} gd__rec;

/* Fixed-width big-endian packing; each advances *p.  memcpy of a
 * byte-swapped value: one load or store on the hot path, no alignment
 * assumed. */
static inline void gd__pack_u8(uint8_t **p, uint8_t v)
{
	*(*p)++ = v;
}
static inline void gd__pack_u16(uint8_t **p, uint16_t v)
{
	v = htobe16(v);
	memcpy(*p, &v, 2);
	*p += 2;
}
static inline void gd__pack_u32(uint8_t **p, uint32_t v)
{
	v = htobe32(v);
	memcpy(*p, &v, 4);
	*p += 4;
}
static inline void gd__pack_u64(uint8_t **p, uint64_t v)
{
	v = htobe64(v);
	memcpy(*p, &v, 8);
	*p += 8;
}
static inline uint16_t gd__get_u16(const uint8_t *p)
{
	uint16_t v;

	memcpy(&v, p, 2);
	return be16toh(v);
}
static inline uint32_t gd__get_u32(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, 4);
	return be32toh(v);
}
static inline uint64_t gd__get_u64(const uint8_t *p)
{
	uint64_t v;

	memcpy(&v, p, 8);
	return be64toh(v);
}

/* A bounds-checked reader over a payload. */
typedef struct gd__rd {
	const uint8_t *p;
	const uint8_t *end;
	int bad; /* set once a read ran past the end; every later read fails */
} gd__rd;

uint32_t gd__rd_u32(gd__rd *r);
uint64_t gd__rd_u64(gd__rd *r);
/* A string: u16 length + bytes; copied NUL-terminated and truncated to size. */
void gd__rd_str(gd__rd *r, char *dst, size_t size);
/* A string kept in place: u32 length + bytes (not NUL-terminated). */
const uint8_t *gd__rd_blob(gd__rd *r, uint32_t *len);

int gd__put_str(gd__bytes *b, const char *s); /* u16 length + bytes (truncated to 65535) */
int gd__put_blob(gd__bytes *b, const void *d, uint32_t n); /* u32 length + bytes */
int gd__put_u32(gd__bytes *b, uint32_t v);
int gd__put_u64(gd__bytes *b, uint64_t v);

/* Write a record header at p (GD_REC_HDR bytes). */
void gd__rec_put_hdr(uint8_t *p, const gd__rec *r);

/* Append a whole record (header + payload) to b.  \return 0 or GD_ENOMEM/GD_ETOOBIG. */
int gd__rec_append(gd__bytes *b, const gd__rec *r, const void *payload);

/*
 * Decode the record at p (avail bytes available).
 * \return 1 with *r filled and *used set, 0 when the bytes end before the
 *         record does (a stream must wait for more; a message is truncated),
 *         or GD_EPROTO with a reason in err (unknown type, oversized length).
 */
int gd__rec_parse(const uint8_t *p, size_t avail, gd__rec *r, size_t *used, char *err,
                  size_t errlen);

/*
 * Decode every record of a complete message, calling fn for each.
 * \return 0, GD_EPROTO (err says why: truncated, trailing bytes, bad type),
 *         or the first non-zero value fn returned.
 */
int gd__msg_foreach(const uint8_t *p, size_t len, int (*fn)(void *ctx, const gd__rec *r), void *ctx,
                    char *err, size_t errlen);

const char *gd__rec_type_name(int type);

/* A large task's place in shared memory: the TASK_SHM / TASK_DROP record
 * (header from r, with type and length replaced) into out, which holds
 * GD_REC_HDR + GD_SHM_DESC bytes. */
void gd__rec_desc_put(uint8_t *out, const gd__rec *r, uint8_t type, uint32_t buf, uint64_t off,
                      uint64_t len);
/* Read a TASK_SHM / TASK_DROP payload.  \return 0, or GD_EPROTO when it is
 * not exactly GD_SHM_DESC bytes or the range overflows. */
int gd__rec_desc_get(const gd__rec *r, uint32_t *buf, uint64_t *off, uint64_t *len);

/* The GD_RF_EXIT prefix: write GD_EXIT_BYTES at p. */
void gd__exit_put(uint8_t *p, int status, int signal);
/* Split an ERROR record's payload into how a process ended (status -1,
 * signal 0 without GD_RF_EXIT) and the message.  \return 0, or GD_EPROTO
 * when the flag is set and the payload is shorter than the prefix. */
int gd__exit_get(const gd__rec *r, gd_exit *ex, const uint8_t **msg, uint32_t *len);

/* The run's configuration as the workers receive it (rank 0 broadcasts it). */
typedef struct gd__wcfg {
	uint32_t window;
	uint32_t isolation;
	uint32_t max_restarts;
	uint32_t placement;
	uint32_t workers_per_gpu;
	uint64_t base_seed;
	double task_timeout;
	double setup_timeout;
	double heartbeat_timeout;
	gd_args args; /* kv points into kv_store / str_store */
	gd_kv *kv_store;
	char *str_store;
	int *gpu_ids;
	size_t n_gpu_ids;
	uint32_t gpus_per_worker;
} gd__wcfg;

int gd__cfg_pack(const gd_config *cfg, gd__bytes *out);
/* \return 0, GD_ENOMEM or GD_EPROTO; free with gd__cfg_free even on failure. */
int gd__cfg_unpack(const uint8_t *p, size_t len, gd__wcfg *w);
void gd__cfg_free(gd__wcfg *w);

/* The HELLO payload: who and where a worker is. */
typedef struct gd__hello {
	int32_t pid;
	char host[64];
	gd_gpu gpu;
	char note[256];            /* placement note (e.g. CPU workers), "" = none */
	char warning[256];         /* placement warning, "" = none */
	int32_t drop_fd[GD_DROPS]; /* the drops' fds in the worker, -1 = none */
	uint64_t drop_token;       /* what each drop holds at offset 0 */
	int32_t n_gpus;            /* the worker's GPUs, 0 = none */
	int32_t gpu_indices[GD_MAX_WORKER_GPUS];
} gd__hello;

int gd__hello_pack(const gd__hello *h, gd__bytes *out);
int gd__hello_unpack(const uint8_t *p, size_t len, gd__hello *h);

#endif
