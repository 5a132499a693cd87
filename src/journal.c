/* The journal: see journal.h. */
#define _GNU_SOURCE
#include "journal.h"
#include "jsonw.h"
#include "wire.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define FLUSH_BYTES (256u << 10)
/* A record's extra members are at most 64 MiB (longer ones are left out),
 * so a line over 64 MiB + 64 KiB was not written by us. */
#define GD__JOURNAL_MAX_EXTRA ((size_t)64 << 20)
#define GD__JOURNAL_MAX_LINE  (GD__JOURNAL_MAX_EXTRA + ((size_t)64 << 10))

struct gd__journal {
	const gd__logger *log; /* the run's (NULL: stderr) */
	int fd;
	char path[512];
	gd__bytes buf;
	gd__bytes xbuf; /* scratch for journal_extra */
	double last_sync;
	int err;
	/* resume index: last record per id, sorted by id */
	gd__jrec *idx;
	size_t nidx;
	size_t cursor;
	int resume;
	int force;
};

/* ------------------------------------------------------------ JSON */

/* jsonw's sink: a gd__bytes. */
static int put_bytes(void *sink, const void *data, size_t n)
{
	return gd__bytes_append(sink, data, n);
}

int gd__json_str(gd__bytes *b, const char *s, size_t len)
{
	return gd__jsonw_escape(put_bytes, b, s, len) ? GD_ENOMEM : 0;
}

/* ------------------------------------------------------------ reading */

static const char *status_name(int s)
{
	return s == GD_JS_OK ? "ok" : s == GD_JS_ERROR ? "error" : "timeout";
}

typedef struct tagged {
	gd__jrec r;
	size_t pos;
} tagged;

static int cmp_tagged(const void *a, const void *b)
{
	const tagged *x = a, *y = b;

	if (x->r.id != y->r.id)
		return x->r.id < y->r.id ? -1 : 1;
	return x->pos < y->pos ? -1 : x->pos > y->pos;
}

/* Read every valid record; cut a torn tail off the file. */
static int load(gd__journal *j, char *err, size_t errlen)
{
	gd__bytes line = {0};
	size_t cap = 0, bad = 0;
	off_t good_end = 0, pos = 0;
	char chunk[65536];
	ssize_t k;
	int rc = 0;

	while ((k = read(j->fd, chunk, sizeof(chunk))) > 0) {
		const char *p = chunk, *end = chunk + k;

		while (p < end) {
			const char *nl = memchr(p, '\n', (size_t)(end - p));
			size_t n = (size_t)((nl ? nl : end) - p);

			/* longer than any record the writer makes: garbage, keep its
			 * start only (it fails the checksum) */
			if (line.len < GD__JOURNAL_MAX_LINE &&
			    gd__bytes_append(&line, p,
			                     GD__MIN(n, GD__JOURNAL_MAX_LINE - line.len))) {
				rc = GD_ENOMEM;
				goto out;
			}
			pos += (off_t)n;
			p += n;
			if (!nl)
				break;
			p++; /* the newline */
			pos++;
			gd__jrec r;
			if (gd__journal_parse_line((const char *)line.p, line.len, &r)) {
				if (j->nidx == cap) {
					size_t ncap = cap ? cap * 2 : 1024;
					gd__jrec *nidx = realloc(j->idx, ncap * sizeof(*nidx));
					if (!nidx) {
						rc = GD_ENOMEM;
						goto out;
					}
					j->idx = nidx;
					cap = ncap;
				}
				j->idx[j->nidx++] = r;
				good_end = pos;
			} else if (line.len) {
				bad++;
			}
			line.len = 0;
		}
	}
	if (k < 0) {
		snprintf(err, errlen, "cannot read journal %s: %s", j->path, strerror(errno));
		rc = GD_EJOURNAL;
		goto out;
	}
	if (bad)
		gd__logf(j->log, GD_LOG_WARNING,
		         "journal %s: %zu damaged record(s) ignored (those tasks run again)",
		         j->path, bad);
	/* a torn last line (no newline, or garbage after the last good record)
	 * is cut off, so that new records start on a line of their own */
	if (pos != good_end) {
		if (ftruncate(j->fd, good_end) < 0) {
			snprintf(err, errlen, "cannot cut the torn end of journal %s: %s", j->path,
			         strerror(errno));
			rc = GD_EJOURNAL;
			goto out;
		}
		gd__logf(j->log, GD_LOG_WARNING,
		         "journal %s: torn last record (%lld bytes) ignored", j->path,
		         (long long)(pos - good_end));
	}
	/* the last record of an id wins: sort by (id, position in the file) */
	tagged *t = malloc((j->nidx ? j->nidx : 1) * sizeof(*t));
	size_t m = 0;

	if (!t) {
		rc = GD_ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < j->nidx; i++)
		t[i] = (tagged){j->idx[i], i};
	qsort(t, j->nidx, sizeof(*t), cmp_tagged);
	for (size_t i = 0; i < j->nidx; i++) {
		if (m && j->idx[m - 1].id == t[i].r.id)
			m--; /* a later record of the same id */
		j->idx[m++] = t[i].r;
	}
	j->nidx = m;
	free(t);
out:
	gd__bytes_free(&line);
	return rc;
}

/* ------------------------------------------------------------ writing */

int gd__journal_open(const char *path, int resume, int force, const gd__logger *log,
                     gd__journal **out, char *err, size_t errlen)
{
	gd__journal *j = calloc(1, sizeof(*j));
	struct stat sb;
	int rc;

	*out = NULL;
	if (!j)
		return GD_ENOMEM;
	gd__strlcpy(j->path, path, sizeof(j->path));
	j->resume = resume;
	j->force = force;
	j->log = log;
	j->fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (j->fd < 0) {
		snprintf(err, errlen, "cannot open journal %s: %s", path, strerror(errno));
		rc = GD_EJOURNAL;
		goto out_free;
	}
	if (fstat(j->fd, &sb) == 0 && sb.st_size > 0 && !resume) {
		snprintf(err, errlen,
		         "journal %s already holds records: resume from it, or remove it to start "
		         "over",
		         path);
		rc = GD_EJOURNAL;
		goto out_close;
	}
	if (resume && (rc = load(j, err, errlen)))
		goto out_close;
	if (lseek(j->fd, 0, SEEK_END) < 0) {
		snprintf(err, errlen, "cannot seek journal %s: %s", path, strerror(errno));
		rc = GD_EJOURNAL;
		goto out_close;
	}
	if (gd__bytes_reserve(&j->xbuf, 4096)) {
		rc = GD_ENOMEM;
		goto out_close;
	}
	j->last_sync = gd_now();
	*out = j;
	return 0;
out_close:
	close(j->fd);
out_free:
	free(j->idx);
	free(j);
	return rc;
}

uint64_t gd__journal_loaded(const gd__journal *j)
{
	return j ? j->nidx : 0;
}

int gd__journal_check(gd__journal *j, uint64_t id, const void *data, size_t len, char *err,
                      size_t errlen)
{
	const gd__jrec *r;

	if (!j->resume || !j->nidx)
		return 0;
	/* ids come in ascending order: advance the cursor */
	if (j->cursor > 0 && j->cursor <= j->nidx && j->idx[j->cursor - 1].id > id)
		j->cursor = 0;
	while (j->cursor < j->nidx && j->idx[j->cursor].id < id)
		j->cursor++;
	if (j->cursor == j->nidx || j->idx[j->cursor].id != id)
		return 0;
	r = &j->idx[j->cursor];
	if (r->digest != gd__fnv1a(data, len)) {
		if (j->force)
			return 0;
		snprintf(err, errlen,
		         "task %llu differs from the one journaled in %s (did the task list "
		         "change?); force to run it again",
		         (unsigned long long)id, j->path);
		return GD_EDIGEST;
	}
	if (r->status == GD_JS_OK)
		return 1;
	return j->resume == GD_RESUME_SKIP_FAILED;
}

uint64_t gd__journal_skips_from(const gd__journal *j, uint64_t id)
{
	uint64_t n = 0;

	if (!j->resume)
		return 0;
	for (size_t k = 0; k < j->nidx; k++)
		n += j->idx[k].id >= id &&
		     (j->idx[k].status == GD_JS_OK || j->resume == GD_RESUME_SKIP_FAILED);
	return n;
}

static double wall_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

int gd__journal_add(gd__journal *j, const gd_event *ev, int status, const gd_worker_stats *row,
                    size_t (*extra)(void *, const gd_event *, char *, size_t), void *extra_user)
{
	gd__bytes *b = &j->buf;
	size_t start = b->len;
	double end = wall_now();
	gd__jsonw w;

	/* the head {"id":N,"status":"S","digest":"H" is what the reader parses */
	gd__jsonw_init(&w, put_bytes, b, 0);
	gd__jsonw_obj(&w);
	gd__jsonw_key(&w, "id");
	gd__jsonw_uint(&w, ev->task_id);
	gd__jsonw_key(&w, "status");
	gd__jsonw_cstr(&w, status_name(status));
	gd__jsonw_key(&w, "digest");
	gd__jsonw_hex64(&w, gd__fnv1a(ev->task_data, ev->task_len));
	gd__jsonw_key(&w, "attempt");
	gd__jsonw_uint(&w, ev->attempt);
	gd__jsonw_key(&w, "worker");
	gd__jsonw_int(&w, ev->worker_id);
	gd__jsonw_key(&w, "host");
	gd__jsonw_cstr(&w, row->host);
	gd__jsonw_key(&w, "gpu");
	gd__jsonw_int(&w, row->gpu.index);
	gd__jsonw_key(&w, "bus_id");
	gd__jsonw_cstr(&w, row->gpu.bus_id);
	gd__jsonw_key(&w, "start");
	gd__jsonw_fixed(&w, end - ev->elapsed_s, 6);
	gd__jsonw_key(&w, "end");
	gd__jsonw_fixed(&w, end, 6);
	gd__jsonw_key(&w, "duration");
	gd__jsonw_fixed(&w, ev->elapsed_s, 6);
	/* the first line of the message */
	gd__jsonw_key(&w, "error");
	gd__jsonw_str(&w, ev->message, strcspn(ev->message, "\n"));
	if (extra) {
		/* snprintf-like: a length >= size asks for a larger buffer */
		size_t xl = extra(extra_user, ev, (char *)j->xbuf.p, j->xbuf.cap);

		if (xl >= j->xbuf.cap && xl < GD__JOURNAL_MAX_EXTRA &&
		    gd__bytes_reserve(&j->xbuf, xl + 1) == 0)
			xl = extra(extra_user, ev, (char *)j->xbuf.p, j->xbuf.cap);
		if (xl && xl < j->xbuf.cap)
			gd__jsonw_members(&w, j->xbuf.p, xl);
	}
	if (!gd__jsonw_flush(&w)) {
		/* the checksum covers everything before ,"sum": */
		uint64_t sum = gd__fnv1a(b->p + start, b->len - start);

		gd__jsonw_key(&w, "sum");
		gd__jsonw_hex64(&w, sum);
		gd__jsonw_obj_end(&w);
		if (!gd__jsonw_flush(&w) && gd__bytes_append(b, "\n", 1))
			w.err = -1;
	}
	if (w.err) {
		b->len = start;
		return GD_ENOMEM;
	}
	if (b->len >= FLUSH_BYTES)
		return gd__journal_flush(j, 0);
	return 0;
}

int gd__journal_flush(gd__journal *j, int force)
{
	double now;
	size_t off = 0;

	if (!j)
		return 0;
	if (!j->buf.len && !force)
		return 0;
	now = gd_now();
	if (!force && j->buf.len < FLUSH_BYTES && now - j->last_sync < 1.0)
		return 0;
	while (off < j->buf.len) {
		ssize_t k = write(j->fd, j->buf.p + off, j->buf.len - off);

		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0) {
			if (!j->err)
				gd__logf(j->log, GD_LOG_ERROR, "cannot write journal %s: %s",
				         j->path, strerror(errno));
			j->err = GD_EJOURNAL;
			break;
		}
		off += (size_t)k;
	}
	/* keep what could not be written, to try again */
	if (off && off < j->buf.len)
		memmove(j->buf.p, j->buf.p + off, j->buf.len - off);
	j->buf.len -= off;
	if (fdatasync(j->fd) < 0 && errno != EINVAL && !j->err) {
		gd__logf(j->log, GD_LOG_ERROR, "cannot sync journal %s: %s", j->path,
		         strerror(errno));
		j->err = GD_EJOURNAL;
	}
	j->last_sync = now;
	return j->err;
}

int gd__journal_close(gd__journal *j)
{
	int rc;

	if (!j)
		return 0;
	rc = gd__journal_flush(j, 1);
	if (fsync(j->fd) < 0 && errno != EINVAL)
		rc = GD_EJOURNAL;
	if (close(j->fd) < 0)
		rc = GD_EJOURNAL;
	gd__bytes_free(&j->buf);
	gd__bytes_free(&j->xbuf);
	free(j->idx);
	free(j);
	return rc;
}
