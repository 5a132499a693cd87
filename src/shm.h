/*
 * Shared memory: every buffer (memfd) through which a large task reaches
 * the executor, and the one rule for which tasks are large.
 *
 * Large.  A record, or an MPI message, is large iff its bytes (header
 * included) exceed GD_BATCH_BYTES, the eager limit (gd__shm_large()).  Open
 * MPI's shared-memory transport leaves the eager protocol at 4096 bytes:
 * below the limit rank 0 packs small tasks into one message, and a message
 * never holds more than one large record, so "the message is large" and
 * "its one task is large" are the same test on both sides.  Past it a
 * message moves by rendezvous (only while both ranks are inside MPI), which
 * is why large tasks are counted and bounded, and why they skip the socket:
 * one copy less, and no trickle through a socket's ~200 kB buffer.
 *
 * The buffers.  Each worker rank (the supervisor) owns two kinds, all made
 * by memfd_create(MFD_CLOEXEC) at start and closed by it at the end:
 *
 *   receive buffers  "gpudispatch-task", one per receive slot (window + 2),
 *                    process isolation only.  The supervisor receives a
 *                    large MPI message straight into one (grown to fit,
 *                    mapped read-write by the supervisor).
 *   drops            "gpudispatch-drop", GD_DROPS of them, whatever the
 *                    isolation.  The first GD_DROP_OFF bytes hold a random
 *                    token (u64 at offset 0).  The supervisor never maps
 *                    them: it names them (fd numbers and token) in its
 *                    HELLO, and rank 0, on the same host, opens them through
 *                    /proc/PID/fd/N, keeps them only if the link names a
 *                    drop and the file holds the token (a namesake host or
 *                    a recycled pid cannot fool it), grows and maps them
 *                    read-write, and writes a large task's payload at
 *                    GD_DROP_OFF itself: no MPI transfer at all.
 *
 * The executor inherits every fd across its fork (they are the fds it keeps)
 * and maps a buffer read-only, at its whole size, when a task's descriptor
 * points past what it has mapped (gd__shm_map_ro()): a buffer only grows.
 * What goes down the socket for such a task is a TASK_SHM record whose
 * 24-byte payload (GD_SHM_DESC: buffer, offset, length) names the bytes;
 * buffer b is receive buffer b, or drop b - (window + 2).  From rank 0 a
 * drop's task is a TASK_DROP record of the same shape.
 *
 * Growth: whoever writes grows, and always the same way (gd__shm_grow()):
 * fallocate() to the new size plus a quarter, page-rounded, then a fresh
 * mapping.  The pages exist before anyone stores into them: a store into a
 * hole of a full tmpfs (or memory cgroup) is a SIGBUS, fallocate() is an
 * error here.  A receive buffer that cannot grow leaves its task to an
 * ordinary heap buffer and the socket; a drop that cannot grow is given up
 * by rank 0 (that worker's later large tasks take MPI).  Any failure to
 * make or open buffers only costs speed: tasks take MPI and the socket.
 *
 * Bounds: a worker holds at most GD_BIG_MAX large tasks that come through
 * MPI (one runs while the next is copied in; more would only wait in rank
 * 0's sends, which rank 0 would have to poll), or GD_DROPS when rank 0
 * opened its drops (one runs, two wait in the executor's queue: the
 * supervisor looks at MPI only when its executor reports, so the executor
 * always has the next one at hand).  A drop is written again only after its
 * task's final record, so a free drop is always there when a large task may
 * go.
 *
 * Tear down: rank 0 unmaps and closes its copies of the drops at the end of
 * the run; the supervisor closes its buffers (and unmaps its own mappings,
 * and in-process runs the executor's) when it leaves; an executor's
 * mappings go with its process.
 */
#ifndef GD_SHM_H
#define GD_SHM_H

#include <stddef.h>
#include <stdint.h>

/* Every function that can fail returns 0 or GD_ESYS (errno says why). */

/* The eager limit: messages are batched up to this size (see above). */
#define GD_BATCH_BYTES 4000u

/* Large: past the eager limit.  bytes: a whole record (header + payload) or
 * a whole message. */
static inline int gd__shm_large(size_t bytes)
{
	return bytes > GD_BATCH_BYTES;
}

/* Large tasks a worker may hold: through MPI, and through its drops. */
#define GD_BIG_MAX 2u
#define GD_DROPS   3u

/* The first GD_DROP_OFF bytes of a drop hold its token; payloads start
 * page-aligned after it. */
#define GD_DROP_OFF 4096u

/* The memfds' names (the link in /proc reads "/memfd:NAME (deleted)"). */
#define GD_SHM_TASK_NAME "gpudispatch-task"
#define GD_SHM_DROP_NAME "gpudispatch-drop"

/* The TASK_SHM and TASK_DROP payload: u32 buffer, u32 0, u64 offset, u64 length. */
#define GD_SHM_DESC 24u

/* A shared buffer: its fd and this process's mapping of it. */
typedef struct gd__shm {
	int fd;       /* -1 = none */
	uint8_t *map; /* NULL = not mapped */
	size_t cap;   /* bytes mapped */
} gd__shm;

/* No buffer (fd -1, nothing mapped). */
void gd__shm_init(gd__shm *m);

/* A new empty memfd (close-on-exec) called name.  \return 0, or GD_ESYS
 * with errno (m stays without a buffer). */
int gd__shm_create(gd__shm *m, const char *name);

/* Write token at offset 0: the file grows to GD_DROP_OFF bytes (allocated
 * now).  \return 0 or GD_ESYS. */
int gd__shm_put_token(gd__shm *m, uint64_t token);

/*
 * Map at least n bytes read-write, growing the file (fallocate) when the
 * mapping is shorter: to n + n/4, rounded up to a page.  What the file held
 * is kept (it only grows), but m->map may move: pointers into the old
 * mapping are invalid afterwards.  \return 0, or GD_ESYS with nothing mapped (the
 * fd is kept: the caller decides whether to give the buffer up).
 */
int gd__shm_grow(gd__shm *m, size_t n);

/*
 * Map at least n bytes read-only: nothing to do when m->cap >= n, else the
 * whole file is mapped afresh (someone else grew it).  m->fd may be
 * borrowed (the executor's view of its supervisor's buffer).  \return 0, or
 * GD_ESYS with nothing mapped (no such buffer, or the file is shorter than n).
 */
int gd__shm_map_ro(gd__shm *m, size_t n);

/*
 * Open another process's buffer through /proc/PID/fd/FD, read-write, only
 * when the link names a memfd called name and the file holds token at
 * offset 0.  \return 0 with m->fd set (nothing mapped), or GD_ESYS.
 */
int gd__shm_open_peer(gd__shm *m, int pid, int fd, const char *name, uint64_t token);

/* Drop the mapping (the fd stays). */
void gd__shm_unmap(gd__shm *m);
/* Unmap and close: no buffer afterwards.  Only for a handle that owns its fd. */
void gd__shm_close(gd__shm *m);

/* A worker's drops: GD_DROPS memfds holding a fresh random token (*token).
 * All or none: \return 0, or GD_ESYS with none made (no memfds, no randomness). */
int gd__shm_drops_make(gd__shm *drop, uint64_t *token);
/* Rank 0: open a worker's GD_DROPS drops (fd numbers in process pid).  All or
 * none: \return 0, or GD_ESYS with none open. */
int gd__shm_drops_open(gd__shm *drop, int pid, const int32_t *fd, uint64_t token);

#endif
