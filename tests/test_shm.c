/* Unit tests: the shared-memory buffers of shm.h (memfds, growth, read-only
 * views, opening a peer's buffer through /proc) and the large threshold. */
#define _GNU_SOURCE
#include "shm.h"
#include "wire.h"

#include "unit.h"
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void test_threshold(void)
{
	CU_ASSERT_FALSE(gd__shm_large(0));
	CU_ASSERT_FALSE(gd__shm_large(GD_REC_HDR));
	CU_ASSERT_FALSE(gd__shm_large(4000));
	CU_ASSERT_TRUE(gd__shm_large(4001));
	CU_ASSERT_TRUE(gd__shm_large(65536));
	CU_ASSERT_EQUAL(GD_BATCH_BYTES, 4000u);
	/* a TASK_DROP record is always small: it rides in a batch */
	CU_ASSERT_FALSE(gd__shm_large(GD_REC_HDR + GD_SHM_DESC));
	CU_ASSERT_TRUE(GD_BIG_MAX <= GD_DROPS);
}

static void test_init_close(void)
{
	gd__shm m;

	gd__shm_init(&m);
	CU_ASSERT_EQUAL(m.fd, -1);
	CU_ASSERT_PTR_NULL(m.map);
	CU_ASSERT_EQUAL(m.cap, 0);
	/* nothing to grow or map without a buffer */
	CU_ASSERT_EQUAL(gd__shm_grow(&m, 10), GD_ESYS);
	CU_ASSERT_EQUAL(gd__shm_map_ro(&m, 10), GD_ESYS);
	gd__shm_close(&m); /* harmless */
	gd__shm_close(&m);
	CU_ASSERT_EQUAL(m.fd, -1);
}

static void test_create_grow(void)
{
	gd__shm m;
	struct stat sb;
	char link[128], path[64];
	ssize_t n;

	CU_ASSERT_EQUAL_FATAL(gd__shm_create(&m, GD_SHM_TASK_NAME), 0);
	CU_ASSERT_TRUE(m.fd >= 0);
	CU_ASSERT_PTR_NULL(m.map);
	CU_ASSERT_TRUE(fcntl(m.fd, F_GETFD) & FD_CLOEXEC);
	snprintf(path, sizeof(path), "/proc/self/fd/%d", m.fd);
	n = readlink(path, link, sizeof(link) - 1);
	CU_ASSERT_TRUE(n > 0);
	link[n > 0 ? n : 0] = 0;
	CU_ASSERT_EQUAL(strncmp(link, "/memfd:" GD_SHM_TASK_NAME, 7 + strlen(GD_SHM_TASK_NAME)), 0);

	/* n + n/4, page-rounded; the file is as long as the mapping */
	CU_ASSERT_EQUAL_FATAL(gd__shm_grow(&m, 5000), 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(m.map);
	CU_ASSERT_EQUAL(m.cap, 8192);
	CU_ASSERT_EQUAL(fstat(m.fd, &sb), 0);
	CU_ASSERT_EQUAL(sb.st_size, 8192);
	memset(m.map, 'a', 5000);

	/* no smaller request changes anything */
	uint8_t *before = m.map;
	CU_ASSERT_EQUAL(gd__shm_grow(&m, 8192), 0);
	CU_ASSERT_PTR_EQUAL(m.map, before);
	CU_ASSERT_EQUAL(m.cap, 8192);

	/* growing keeps what the file held (the mapping may move) */
	CU_ASSERT_EQUAL_FATAL(gd__shm_grow(&m, 1u << 20), 0);
	CU_ASSERT_TRUE(m.cap >= 1u << 20);
	CU_ASSERT_EQUAL(m.cap % 4096, 0);
	CU_ASSERT_EQUAL(fstat(m.fd, &sb), 0);
	CU_ASSERT_EQUAL((size_t)sb.st_size, m.cap);
	int kept = 1;
	for (size_t i = 0; i < 5000; i++)
		kept &= m.map[i] == 'a';
	CU_ASSERT_TRUE(kept);
	CU_ASSERT_EQUAL(m.map[5000], 0); /* the rest reads as zeros */
	m.map[m.cap - 1] = 'z';          /* the whole mapping is backed */

	/* unmap keeps the fd; a later grow maps it again */
	gd__shm_unmap(&m);
	CU_ASSERT_PTR_NULL(m.map);
	CU_ASSERT_EQUAL(m.cap, 0);
	CU_ASSERT_TRUE(m.fd >= 0);
	CU_ASSERT_EQUAL_FATAL(gd__shm_grow(&m, 100), 0);
	CU_ASSERT_EQUAL(m.map[0], 'a');
	gd__shm_close(&m);
	CU_ASSERT_EQUAL(m.fd, -1);
	CU_ASSERT_PTR_NULL(m.map);
}

static void test_map_ro(void)
{
	gd__shm w, r;

	CU_ASSERT_EQUAL_FATAL(gd__shm_create(&w, GD_SHM_TASK_NAME), 0);
	gd__shm_init(&r);
	r.fd = w.fd; /* a view: the fd is borrowed */

	CU_ASSERT_EQUAL(gd__shm_map_ro(&r, 1), GD_ESYS); /* empty file */
	CU_ASSERT_EQUAL_FATAL(gd__shm_grow(&w, 6000), 0);
	memcpy(w.map + 100, "hello", 5);
	CU_ASSERT_EQUAL(gd__shm_map_ro(&r, 8193), GD_ESYS); /* past the file */
	CU_ASSERT_PTR_NULL(r.map);
	CU_ASSERT_EQUAL_FATAL(gd__shm_map_ro(&r, 105), 0);
	CU_ASSERT_EQUAL(r.cap, w.cap); /* the whole file */
	CU_ASSERT_EQUAL(memcmp(r.map + 100, "hello", 5), 0);
	/* the same memory: a later write shows */
	w.map[200] = 'x';
	CU_ASSERT_EQUAL(r.map[200], 'x');

	/* the writer grows: the view maps again only when asked for more */
	uint8_t *old = r.map;
	CU_ASSERT_EQUAL_FATAL(gd__shm_grow(&w, 100000), 0);
	CU_ASSERT_EQUAL(gd__shm_map_ro(&r, 105), 0);
	CU_ASSERT_PTR_EQUAL(r.map, old);
	w.map[99999] = 'y';
	CU_ASSERT_EQUAL_FATAL(gd__shm_map_ro(&r, 100000), 0);
	CU_ASSERT_EQUAL(r.cap, w.cap);
	CU_ASSERT_EQUAL(r.map[99999], 'y');
	CU_ASSERT_EQUAL(memcmp(r.map + 100, "hello", 5), 0);

	gd__shm_unmap(&r); /* a view is unmapped, never closed */
	CU_ASSERT_TRUE(fcntl(w.fd, F_GETFD) >= 0);
	gd__shm_close(&w);
}

static void test_open_peer(void)
{
	const uint64_t token = 0x0123456789abcdefULL;
	gd__shm a, b, other, p;

	CU_ASSERT_EQUAL_FATAL(gd__shm_create(&a, GD_SHM_DROP_NAME), 0);
	CU_ASSERT_EQUAL_FATAL(gd__shm_put_token(&a, token), 0);
	struct stat sb;
	CU_ASSERT_EQUAL(fstat(a.fd, &sb), 0);
	CU_ASSERT_EQUAL(sb.st_size, GD_DROP_OFF);

	/* the right name and token: a new fd to the same file */
	CU_ASSERT_EQUAL_FATAL(gd__shm_open_peer(&p, getpid(), a.fd, GD_SHM_DROP_NAME, token), 0);
	CU_ASSERT_TRUE(p.fd >= 0 && p.fd != a.fd);
	CU_ASSERT_PTR_NULL(p.map);
	CU_ASSERT_EQUAL_FATAL(gd__shm_grow(&p, GD_DROP_OFF + 10), 0);
	memcpy(p.map + GD_DROP_OFF, "payload", 7);
	CU_ASSERT_EQUAL_FATAL(gd__shm_map_ro(&a, GD_DROP_OFF + 7), 0);
	CU_ASSERT_EQUAL(memcmp(a.map + GD_DROP_OFF, "payload", 7), 0);
	gd__shm_close(&p);
	CU_ASSERT_EQUAL(p.fd, -1);

	/* a wrong token */
	CU_ASSERT_EQUAL(gd__shm_open_peer(&p, getpid(), a.fd, GD_SHM_DROP_NAME, token + 1),
	                GD_ESYS);
	CU_ASSERT_EQUAL(p.fd, -1);
	/* no token at all (an empty file) */
	CU_ASSERT_EQUAL_FATAL(gd__shm_create(&b, GD_SHM_DROP_NAME), 0);
	CU_ASSERT_EQUAL(gd__shm_open_peer(&p, getpid(), b.fd, GD_SHM_DROP_NAME, token), GD_ESYS);
	/* a wrong name, even with the token; and a name the wanted one starts */
	CU_ASSERT_EQUAL_FATAL(gd__shm_create(&other, GD_SHM_TASK_NAME), 0);
	CU_ASSERT_EQUAL_FATAL(gd__shm_put_token(&other, token), 0);
	CU_ASSERT_EQUAL(gd__shm_open_peer(&p, getpid(), other.fd, GD_SHM_DROP_NAME, token),
	                GD_ESYS);
	CU_ASSERT_EQUAL(gd__shm_open_peer(&p, getpid(), a.fd, "gpudispatch-dro", token), GD_ESYS);
	CU_ASSERT_EQUAL(gd__shm_open_peer(&p, getpid(), a.fd, GD_SHM_DROP_NAME "x", token),
	                GD_ESYS);
	/* not a memfd at all, and no such fd */
	int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	CU_ASSERT_EQUAL(gd__shm_open_peer(&p, getpid(), fd, "null", token), GD_ESYS);
	close(fd);
	CU_ASSERT_EQUAL(gd__shm_open_peer(&p, getpid(), 100000, GD_SHM_DROP_NAME, token), GD_ESYS);
	CU_ASSERT_EQUAL(p.fd, -1);

	gd__shm_close(&a);
	gd__shm_close(&b);
	gd__shm_close(&other);
}

static void test_drops(void)
{
	gd__shm mine[GD_DROPS], peer[GD_DROPS];
	int32_t fds[GD_DROPS];
	uint64_t token = 0;

	CU_ASSERT_EQUAL_FATAL(gd__shm_drops_make(mine, &token), 0);
	CU_ASSERT_NOT_EQUAL(token, 0);
	for (unsigned k = 0; k < GD_DROPS; k++) {
		CU_ASSERT_TRUE(mine[k].fd >= 0);
		fds[k] = mine[k].fd;
	}
	CU_ASSERT_EQUAL_FATAL(gd__shm_drops_open(peer, getpid(), fds, token), 0);
	for (unsigned k = 0; k < GD_DROPS; k++) {
		CU_ASSERT_TRUE(peer[k].fd >= 0);
		gd__shm_close(&peer[k]);
	}
	/* all or none: one bad fd leaves none open */
	fds[GD_DROPS - 1] = -1;
	CU_ASSERT_EQUAL(gd__shm_drops_open(peer, getpid(), fds, token), GD_ESYS);
	for (unsigned k = 0; k < GD_DROPS; k++)
		CU_ASSERT_EQUAL(peer[k].fd, -1);
	fds[GD_DROPS - 1] = mine[GD_DROPS - 1].fd;
	CU_ASSERT_EQUAL(gd__shm_drops_open(peer, getpid(), fds, token ^ 1), GD_ESYS);
	for (unsigned k = 0; k < GD_DROPS; k++) {
		CU_ASSERT_EQUAL(peer[k].fd, -1);
		gd__shm_close(&mine[k]);
	}
}

static const unit_test tests[] = {
        {"large threshold", test_threshold},      {"no buffer", test_init_close},
        {"create and grow", test_create_grow},    {"read-only view", test_map_ro},
        {"open a peer's buffer", test_open_peer}, {"drops", test_drops},
};

int main(void)
{
	return unit_main("shm", UNIT_TESTS(tests));
}
