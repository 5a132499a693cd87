/* Shared-memory buffers: see shm.h for the scheme. */
#define _GNU_SOURCE
#include "shm.h"
#include "internal.h"

#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

void gd__shm_init(gd__shm *m)
{
	m->fd = -1;
	m->map = NULL;
	m->cap = 0;
}

int gd__shm_create(gd__shm *m, const char *name)
{
	gd__shm_init(m);
	m->fd = memfd_create(name, MFD_CLOEXEC);
	return m->fd < 0 ? -1 : 0;
}

int gd__shm_put_token(gd__shm *m, uint64_t token)
{
	if (m->fd < 0 || fallocate(m->fd, 0, 0, GD_DROP_OFF) < 0 ||
	    pwrite(m->fd, &token, sizeof(token), 0) != (ssize_t)sizeof(token))
		return GD_ESYS;
	return 0;
}

int gd__shm_grow(gd__shm *m, size_t n)
{
	size_t cap;
	void *p;

	if (m->fd < 0)
		return GD_ESYS;
	if (m->cap >= n)
		return 0;
	cap = (n + n / 4 + 4095) & ~(size_t)4095;
	gd__shm_unmap(m);
	/* the pages now: a store into a hole of a full tmpfs is a SIGBUS */
	if (fallocate(m->fd, 0, 0, (off_t)cap) < 0)
		return GD_ESYS;
	p = mmap(NULL, cap, PROT_READ | PROT_WRITE, MAP_SHARED, m->fd, 0);
	if (p == MAP_FAILED)
		return GD_ESYS;
	m->map = p;
	m->cap = cap;
	return 0;
}

int gd__shm_map_ro(gd__shm *m, size_t n)
{
	struct stat sb;
	void *p;

	if (m->cap >= n)
		return 0;
	gd__shm_unmap(m);
	if (m->fd < 0 || fstat(m->fd, &sb) < 0 || (uint64_t)sb.st_size < n)
		return GD_ESYS;
	p = mmap(NULL, (size_t)sb.st_size, PROT_READ, MAP_SHARED, m->fd, 0);
	if (p == MAP_FAILED)
		return GD_ESYS;
	m->map = p;
	m->cap = (size_t)sb.st_size;
	return 0;
}

int gd__shm_open_peer(gd__shm *m, int pid, int fd, const char *name, uint64_t token)
{
	static const char deleted[] = " (deleted)";
	char path[64], link[256], want[200];
	uint64_t got = 0;
	size_t w;
	ssize_t n;
	int f;

	gd__shm_init(m);
	if (snprintf(want, sizeof(want), "/memfd:%s", name) >= (int)sizeof(want))
		return GD_ESYS;
	w = strlen(want);
	snprintf(path, sizeof(path), "/proc/%d/fd/%d", pid, fd);
	n = readlink(path, link, sizeof(link) - 1);
	if (n < (ssize_t)w || memcmp(link, want, w))
		return GD_ESYS;
	/* the name itself, not one it is the start of */
	if ((size_t)n != w && ((size_t)n != w + sizeof(deleted) - 1 ||
	                       memcmp(link + w, deleted, sizeof(deleted) - 1)))
		return GD_ESYS;
	f = open(path, O_RDWR | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (f < 0)
		return GD_ESYS;
	if (pread(f, &got, sizeof(got), 0) != (ssize_t)sizeof(got) || got != token) {
		close(f);
		return GD_ESYS;
	}
	m->fd = f;
	return 0;
}

void gd__shm_unmap(gd__shm *m)
{
	if (m->map)
		munmap(m->map, m->cap);
	m->map = NULL;
	m->cap = 0;
}

void gd__shm_close(gd__shm *m)
{
	gd__shm_unmap(m);
	if (m->fd >= 0)
		close(m->fd);
	m->fd = -1;
}

int gd__shm_drops_make(gd__shm *drop, uint64_t *token)
{
	uint64_t t = 0;
	unsigned k;

	*token = 0;
	for (k = 0; k < GD_DROPS; k++)
		gd__shm_init(&drop[k]);
	if (getrandom(&t, sizeof(t), GRND_NONBLOCK) != (ssize_t)sizeof(t) || !t)
		return GD_ESYS;
	for (k = 0; k < GD_DROPS; k++) {
		if (gd__shm_create(&drop[k], GD_SHM_DROP_NAME) || gd__shm_put_token(&drop[k], t)) {
			do {
				gd__shm_close(&drop[k]);
			} while (k-- > 0);
			return GD_ESYS;
		}
	}
	*token = t;
	return 0;
}

int gd__shm_drops_open(gd__shm *drop, int pid, const int32_t *fd, uint64_t token)
{
	unsigned k;

	for (k = 0; k < GD_DROPS; k++)
		if (gd__shm_open_peer(&drop[k], pid, (int)fd[k], GD_SHM_DROP_NAME, token))
			break;
	if (k == GD_DROPS)
		return 0;
	while (k-- > 0)
		gd__shm_close(&drop[k]);
	return GD_ESYS;
}
