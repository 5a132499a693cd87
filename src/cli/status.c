/*
 * The status file and `gpudispatch status` (docs/cli.md, "Watching a run").
 *
 * Writer: rank 0's command keeps RESULTS.status, one JSON object replaced
 * atomically (RESULTS.status.tmp, fsync, rename) about once a second from
 * the on_tick observer, and once more when the run ends with its final
 * state.  The core knows nothing of it.  The dispatcher's thread only
 * formats the object (microseconds); a writer thread writes, fsyncs and
 * renames it, so that a slow disk never holds up the dispatch.
 *
 * Reader: `gpudispatch status RESULTS [--watch [SECONDS]] [--json]` from any
 * shell that sees the files: the counts of done tasks from the journal (the
 * results file, the source of truth: the final record of each id), the rest
 * (state, workers, rate, in flight, reasons) from the status file; stale
 * when the heartbeat is old or, on the same host, the pid is gone.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "../jrec.h"
#include "../proctree.h"

static double wall_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* ---------------------------------------------------------------- writer */

int cli_status_open(cli_status *s, const char *results, double interval_s)
{
	memset(s, 0, sizeof(*s));
	if (!results || !(interval_s > 0))
		return 0;
	if (snprintf(s->path, sizeof(s->path), "%s.status", results) >= (int)sizeof(s->path) ||
	    snprintf(s->tmp, sizeof(s->tmp), "%s.status.tmp", results) >= (int)sizeof(s->tmp))
		return -1;
	s->on = 1;
	s->interval = interval_s;
	s->started = wall_now();
	s->pid = (int)getpid();
	gethostname(s->host, sizeof(s->host) - 1);
	return 0;
}

void cli_status_failure(cli_status *s, const gd_event *ev)
{
	if (s->on)
		gd__reasons_add(&s->reasons, ev->task_id, ev->message);
}

/* tasks/s over the last writes (about 10 s) */
static double rate_of(cli_status *s, double now, uint64_t done)
{
	int n = (int)(sizeof(s->rt) / sizeof(s->rt[0])), oldest;

	s->head = (s->head + 1) % n;
	s->rt[s->head] = now;
	s->rd[s->head] = done;
	if (s->nsamp < n)
		s->nsamp++;
	oldest = (s->head - s->nsamp + 1 + n) % n;
	if (s->nsamp < 2 || now - s->rt[oldest] <= 0)
		return -1;
	return (double)(done - s->rd[oldest]) / (now - s->rt[oldest]);
}

/* A number member: a count (is_int) or seconds/rates with 3 decimals; not
 * finite (unknown): null. */
static void add_num(gd__jsonw *w, const char *key, double v, int is_int)
{
	gd__jsonw_key(w, key);
	gd__jsonw_fixed(w, v, is_int ? 0 : 3);
}

/* The object for the run as st says, into s->buf.  \return 0 or -1. */
static int format(cli_status *s, const char *state, const gd_stats *st, int final)
{
	cli_buf *b = &s->buf;
	double now = gd_now(), wall = wall_now();
	uint64_t done = st->completed + st->failed + st->timed_out, inflight = 0;
	gd__jsonw jw;

	for (int i = 0; i < st->n_workers; i++)
		inflight += gd_stats_worker(st, i)->in_flight;
	double rate = rate_of(s, now, done);
	uint64_t total = st->total_hint;
	uint64_t left = total > done + st->skipped ? total - done - st->skipped : 0;

	b->len = 0;
	cli_jsonw(&jw, b);
	gd__jsonw_obj(&jw);
	gd__jsonw_key(&jw, "version");
	gd__jsonw_int(&jw, 1);
	gd__jsonw_key(&jw, "state");
	gd__jsonw_cstr(&jw, state);
	gd__jsonw_key(&jw, "host");
	gd__jsonw_cstr(&jw, s->host);
	gd__jsonw_key(&jw, "pid");
	gd__jsonw_int(&jw, s->pid);
	add_num(&jw, "started", s->started, 0);
	add_num(&jw, "updated", wall, 0);
	add_num(&jw, "interval_s", s->interval, 0);
	gd__jsonw_key(&jw, "completed");
	gd__jsonw_uint(&jw, st->completed);
	gd__jsonw_key(&jw, "failed");
	gd__jsonw_uint(&jw, st->failed);
	gd__jsonw_key(&jw, "timed_out");
	gd__jsonw_uint(&jw, st->timed_out);
	gd__jsonw_key(&jw, "in_flight");
	gd__jsonw_uint(&jw, final ? 0 : inflight);
	gd__jsonw_key(&jw, "skipped");
	gd__jsonw_uint(&jw, st->skipped);
	/* tasks the deadline kept from starting (known at the end) */
	gd__jsonw_key(&jw, "held_back");
	gd__jsonw_uint(&jw, st->held_back);
	gd__jsonw_key(&jw, "total");
	if (total)
		gd__jsonw_uint(&jw, total);
	else
		gd__jsonw_null(&jw);
	add_num(&jw, "rate", rate >= 0 && !final ? rate : NAN, 0);
	add_num(&jw, "eta_s",
	        total && rate > 0 && !final ? (double)left / rate
	        : final                     ? 0
	                                    : NAN,
	        0);
	add_num(&jw, "elapsed_s", st->elapsed_s > 0 ? st->elapsed_s : wall - s->started, 0);
	gd__jsonw_key(&jw, "workers");
	gd__jsonw_arr(&jw);
	for (int i = 0; i < st->n_workers; i++) {
		const gd_worker_stats *w = gd_stats_worker(st, i);
		int busy = w->in_flight && w->state == GD_WS_BUSY && !final;

		gd__jsonw_obj(&jw);
		gd__jsonw_key(&jw, "id");
		gd__jsonw_int(&jw, w->worker_id);
		gd__jsonw_key(&jw, "host");
		gd__jsonw_str(&jw, w->host, strnlen(w->host, sizeof(w->host)));
		gd__jsonw_key(&jw, "gpu");
		if (w->gpu.index >= 0)
			gd__jsonw_int(&jw, w->gpu.index);
		else
			gd__jsonw_null(&jw);
		gd__jsonw_key(&jw, "state");
		gd__jsonw_cstr(&jw, gd_worker_state_name(w->state));
		gd__jsonw_key(&jw, "task");
		if (busy)
			gd__jsonw_uint(&jw, w->current_task);
		else
			gd__jsonw_null(&jw);
		add_num(&jw, "task_s", busy ? now - w->current_since : NAN, 0);
		gd__jsonw_key(&jw, "done");
		gd__jsonw_uint(&jw, w->completed);
		gd__jsonw_key(&jw, "failed");
		gd__jsonw_uint(&jw, w->failed);
		gd__jsonw_key(&jw, "timed_out");
		gd__jsonw_uint(&jw, w->timed_out);
		if (w->n_gpus > 1) { /* --gpus-per-worker: all of them */
			gd__jsonw_key(&jw, "gpus");
			gd__jsonw_arr(&jw);
			for (int k = 0; k < w->n_gpus && k < GD_MAX_WORKER_GPUS; k++)
				gd__jsonw_int(&jw, w->gpu_indices[k]);
			gd__jsonw_arr_end(&jw);
		}
		if (w->state == GD_WS_QUARANTINED) { /* --quarantine: why */
			gd__jsonw_key(&jw, "reason");
			gd__jsonw_str(&jw, w->message, strnlen(w->message, sizeof(w->message)));
		}
		gd__jsonw_obj_end(&jw);
	}
	gd__jsonw_arr_end(&jw);
	gd__jsonw_key(&jw, "quarantined");
	gd__jsonw_int(&jw, st->n_quarantined);
	gd__jsonw_key(&jw, "reasons");
	gd__jsonw_arr(&jw);
	int idx[GD__REASONS_MAX + 1];
	int n = gd__reasons_sorted(&s->reasons, idx, 10);
	for (int k = 0; k < n; k++) {
		const gd__reason *r = gd__reasons_at(&s->reasons, idx[k]);
		uint64_t shown = r->count < GD__REASON_IDS ? r->count : GD__REASON_IDS;

		gd__jsonw_obj(&jw);
		gd__jsonw_key(&jw, "count");
		gd__jsonw_uint(&jw, r->count);
		gd__jsonw_key(&jw, "reason");
		gd__jsonw_cstr(&jw, r->text[0] ? r->text : "other reasons");
		gd__jsonw_key(&jw, "tasks");
		gd__jsonw_arr(&jw);
		for (uint64_t j = 0; j < shown; j++)
			gd__jsonw_uint(&jw, r->ids[j]);
		gd__jsonw_arr_end(&jw);
		gd__jsonw_obj_end(&jw);
	}
	gd__jsonw_arr_end(&jw);
	gd__jsonw_obj_end(&jw);
	if (gd__jsonw_flush(&jw) || cli_buf_add(b, "\n", 1))
		return -1;
	return b->p ? 0 : -1;
}

/* Replace the file with the len bytes of p.  \return 0 or -1 (errno). */
static int commit(const cli_status *s, const char *p, size_t len)
{
	int fd, rc = 0;

	fd = open(s->tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return -1;
	for (size_t off = 0; off < len && !rc;) {
		ssize_t w = write(fd, p + off, len - off);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			rc = -1;
		else
			off += (size_t)w;
	}
	if (fsync(fd))
		rc = -1;
	if (close(fd))
		rc = -1;
	if (!rc && rename(s->tmp, s->path))
		rc = -1;
	if (rc)
		unlink(s->tmp);
	return rc;
}

static void *writer(void *arg)
{
	cli_status *s = arg;
	cli_buf mine = {0}, t;

	/* nice 19, as the dashboard's thread (ui/dashboard.c says why: at its
	 * normal weight a mostly sleeping thread moved the busy ranks between
	 * cores); a refusal changes only the cost */
	if (setpriority(PRIO_PROCESS, (id_t)gettid(), 19)) {
	}

	pthread_mutex_lock(&s->mu);
	for (;;) {
		while (!s->have && !s->stop)
			pthread_cond_wait(&s->cv, &s->mu);
		if (!s->have)
			break; /* stopped, nothing left */
		t = mine, mine = s->pending, s->pending = t;
		s->have = 0;
		pthread_mutex_unlock(&s->mu);
		int rc = commit(s, mine.p, mine.len), e = errno;
		pthread_mutex_lock(&s->mu);
		if (rc && !s->werr)
			s->werr = e ? e : EIO;
	}
	pthread_mutex_unlock(&s->mu);
	cli_buf_free(&mine);
	return NULL;
}

static void warn(cli_status *s, int err)
{
	if (s->warned)
		return;
	s->warned = 1; /* the run goes on without it */
	fprintf(stderr, "gpudispatch: cannot write the status file %s: %s\n", s->path,
	        strerror(err));
}

void cli_status_tick(cli_status *s, const gd_stats *st)
{
	double now;
	cli_buf t;

	if (!s->on)
		return;
	now = gd_now();
	if (s->last > 0 && now - s->last < s->interval)
		return;
	if (!s->thread_on) {
		if (pthread_mutex_init(&s->mu, NULL) || pthread_cond_init(&s->cv, NULL) ||
		    pthread_create(&s->th, NULL, writer, s)) {
			warn(s, EAGAIN);
			s->on = 0;
			return;
		}
		s->thread_on = 1;
	}
	/* the writer holds the lock only to swap buffers: never wait for it */
	if (pthread_mutex_trylock(&s->mu))
		return; /* the next tick */
	s->last = now;
	if (s->werr)
		warn(s, s->werr);
	if (format(s, "running", st, 0) == 0) {
		t = s->pending, s->pending = s->buf, s->buf = t;
		s->have = 1;
		pthread_cond_signal(&s->cv);
	}
	pthread_mutex_unlock(&s->mu);
}

void cli_status_close(cli_status *s, const gd_stats *st, int rc)
{
	const char *state = "finished";

	if (!s->on)
		return;
	if (s->thread_on) { /* what it has goes out first */
		pthread_mutex_lock(&s->mu);
		s->stop = 1;
		pthread_cond_signal(&s->cv);
		pthread_mutex_unlock(&s->mu);
		pthread_join(s->th, NULL);
		pthread_cond_destroy(&s->cv);
		pthread_mutex_destroy(&s->mu);
		s->thread_on = 0;
		if (s->werr)
			warn(s, s->werr);
	}
	if (st->halted && (rc == 0 || rc == GD_EINTR))
		state = "halted";
	else if (rc == GD_EINTR)
		state = "interrupted";
	else if (rc)
		state = "failed";
	if (format(s, state, st, 1) || commit(s, s->buf.p, s->buf.len))
		warn(s, errno);
	cli_buf_free(&s->buf);
	cli_buf_free(&s->pending);
	s->on = 0;
}

/* ---------------------------------------------------------------- reader */

/* A JSON value's text: the member `key` of m[0..n), NULL when absent. */
static const cli_member *member(const cli_member *m, int n, const char *key)
{
	size_t kl = strlen(key);

	for (int i = 0; i < n; i++)
		if (m[i].klen == kl && !memcmp(m[i].key, key, kl))
			return &m[i];
	return NULL;
}

/* \return the number, or NAN when absent or not a number. */
static double num(const cli_member *m, int n, const char *key)
{
	const cli_member *v = member(m, n, key);
	char tmp[64];
	char *end;

	if (!v || !v->vlen || v->vlen >= sizeof(tmp) ||
	    !(v->val[0] == '-' || (v->val[0] >= '0' && v->val[0] <= '9')))
		return NAN;
	memcpy(tmp, v->val, v->vlen);
	tmp[v->vlen] = '\0';
	double d = strtod(tmp, &end);
	return *end ? NAN : d;
}

/* The string member `key` into out ("" when absent or not a string). */
static void str(const cli_member *m, int n, const char *key, char *out, size_t size)
{
	const cli_member *v = member(m, n, key);
	cli_buf b = {0};

	out[0] = '\0';
	if (v && v->vlen && v->val[0] == '"' && !cli_json_unstr(&b, v->val, v->vlen) && b.p)
		snprintf(out, size, "%s", b.p);
	cli_buf_free(&b);
}

/* The items of a JSON array's text (already valid JSON): their spans. */
static int items(const char *s, size_t n, const char **it, size_t *il, int max)
{
	int depth = 0, k = 0, in_str = 0;
	size_t start = 1;

	if (!n || s[0] != '[')
		return 0;
	for (size_t i = 1; i < n; i++) {
		char c = s[i];

		if (in_str) {
			if (c == '\\')
				i++;
			else if (c == '"')
				in_str = 0;
			continue;
		}
		if (c == '"')
			in_str = 1;
		else if (c == '[' || c == '{')
			depth++;
		else if ((c == ']' || c == '}') && depth)
			depth--;
		else if ((c == ',' || c == ']') && !depth) {
			size_t a = start, e = i;

			while (a < e && (s[a] == ' ' || s[a] == '\n'))
				a++;
			if (e > a && k < max) {
				it[k] = s + a;
				il[k] = e - a;
				k++;
			}
			start = i + 1;
			if (c == ']')
				break;
		}
	}
	return k;
}

/* The journal's counts: the final record of each task id. */
typedef struct jcounts {
	int have;
	uint64_t records, ok, error, timeout;
} jcounts;

typedef struct idst {
	uint64_t id;
	uint64_t seq;
	int st; /* GD_JS_* */
} idst;

static int cmp_idst(const void *a, const void *b)
{
	const idst *x = a, *y = b;

	if (x->id != y->id)
		return x->id < y->id ? -1 : 1;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static void read_journal(const char *path, jcounts *jc)
{
	FILE *f = fopen(path, "r");
	char *line = NULL;
	size_t cap = 0, n = 0, room = 0;
	ssize_t len;
	idst *v = NULL;

	memset(jc, 0, sizeof(*jc));
	if (!f)
		return;
	jc->have = 1;
	while ((len = getline(&line, &cap, f)) > 0) {
		gd__jrec jr;

		/* a torn or damaged line counts for nothing, as on resume */
		if (line[len - 1] != '\n' || !gd__journal_parse_line(line, (size_t)len - 1, &jr))
			continue;
		if (n == room) {
			size_t nr = room ? room * 2 : 1024;
			idst *nv = realloc(v, nr * sizeof(*nv));

			if (!nv)
				break;
			v = nv;
			room = nr;
		}
		v[n].id = jr.id;
		v[n].seq = n;
		v[n].st = jr.status;
		n++;
	}
	free(line);
	fclose(f);
	jc->records = n;
	if (n)
		qsort(v, n, sizeof(*v), cmp_idst);
	for (size_t i = 0; i < n; i++) {
		if (i + 1 < n && v[i + 1].id == v[i].id)
			continue; /* not the final record */
		if (v[i].st == GD_JS_OK)
			jc->ok++;
		else if (v[i].st == GD_JS_ERROR)
			jc->error++;
		else
			jc->timeout++;
	}
	free(v);
}

static char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "r");
	cli_buf b = {0};
	char chunk[8192];
	size_t got;

	if (!f)
		return NULL;
	while ((got = fread(chunk, 1, sizeof(chunk), f)) > 0)
		if (cli_buf_add(&b, chunk, got))
			break;
	fclose(f);
	*len = b.len;
	return b.p ? b.p : calloc(1, 1);
}

/* A zombie counts as gone: a rank killed with SIGKILL stays one until its
 * launcher reaps it, and it writes no status any more. */
static int pid_alive(int pid)
{
	return pid > 0 && gd__proc_alive((pid_t)pid);
}

static void fmt_dur(char *buf, size_t n, double s)
{
	if (!isfinite(s) || s < 0 || s > 1e9) {
		snprintf(buf, n, "--:--");
		return;
	}
	unsigned long t = (unsigned long)(s + 0.5);
	if (t >= 3600)
		snprintf(buf, n, "%lu:%02lu:%02lu", t / 3600, t / 60 % 60, t % 60);
	else
		snprintf(buf, n, "%02lu:%02lu", t / 60, t % 60);
}

#define MAX_MEMBERS 64
#define MAX_ITEMS   4096

/* One report.  \return 0, 2 when there is nothing to read; *running: the
 * run still goes on (for --watch). */
static int report(const char *results, int json, FILE *out, int *running)
{
	char spath[4096], state[32] = "unknown", host[256] = "", myhost[256] = "";
	size_t slen = 0;
	char *sj;
	cli_member m[MAX_MEMBERS];
	int nm = -1;
	jcounts jc;
	struct stat stt;

	*running = 0;
	snprintf(spath, sizeof(spath), "%s.status", results);
	sj = slurp(spath, &slen);
	read_journal(results, &jc);
	if (!sj && !jc.have) {
		fprintf(stderr, "gpudispatch status: cannot read %s nor %s: %s\n", spath, results,
		        strerror(errno));
		return 2;
	}
	if (sj) {
		nm = cli_json_members(sj, slen && sj[slen - 1] == '\n' ? slen - 1 : slen, m,
		                      MAX_MEMBERS);
		if (nm < 0)
			fprintf(stderr, "gpudispatch status: %s is not a status file (ignored)\n",
			        spath);
	}
	int has = nm >= 0;
	if (!has)
		nm = 0;
	double now = wall_now(), updated = num(m, nm, "updated"),
	       interval = num(m, nm, "interval_s");
	double pidv = num(m, nm, "pid");
	double age = isfinite(updated) ? now - updated : NAN;
	if (!isfinite(interval) || interval <= 0)
		interval = 1;
	double threshold = 5 * interval > 10 ? 5 * interval : 10;
	str(m, nm, "state", state, sizeof(state));
	str(m, nm, "host", host, sizeof(host));
	gethostname(myhost, sizeof(myhost) - 1);
	if (!has)
		snprintf(state, sizeof(state), "unknown");
	const char *why = "";
	if (!strcmp(state, "running")) {
		if (isfinite(age) && age > threshold)
			snprintf(state, sizeof(state), "stale"), why = "no heartbeat";
		else if (host[0] && !strcmp(host, myhost) && isfinite(pidv) &&
		         !pid_alive((int)pidv))
			snprintf(state, sizeof(state), "stale"), why = "its process is gone";
		else
			*running = 1;
	}
	/* done tasks: the journal's final records; else the status file's */
	double completed = jc.have ? (double)jc.ok : num(m, nm, "completed");
	double failed = jc.have ? (double)jc.error : num(m, nm, "failed");
	double timed_out = jc.have ? (double)jc.timeout : num(m, nm, "timed_out");
	double inflight = *running ? num(m, nm, "in_flight") : 0;
	double total = num(m, nm, "total"), rate = *running ? num(m, nm, "rate") : NAN;
	double elapsed = num(m, nm, "elapsed_s");
	if (*running && isfinite(elapsed) && isfinite(age) && age > 0)
		elapsed += age;
	double done = completed + failed + timed_out;
	double eta = NAN;
	if (!strcmp(state, "finished"))
		eta = 0;
	else if (*running && isfinite(total) && isfinite(rate) && rate > 0)
		eta = total > done ? (total - done) / rate : 0;
	const cli_member *wm = member(m, nm, "workers"), *rm = member(m, nm, "reasons");
	const char *wit[MAX_ITEMS], *rit[64];
	size_t wil[MAX_ITEMS], ril[64];
	int nw = wm ? items(wm->val, wm->vlen, wit, wil, MAX_ITEMS) : 0;
	int nr = rm ? items(rm->val, rm->vlen, rit, ril, 64) : 0;

	if (json) {
		cli_buf b = {0};
		gd__jsonw jw;

		cli_jsonw(&jw, &b);
		gd__jsonw_obj(&jw);
		gd__jsonw_key(&jw, "state");
		gd__jsonw_cstr(&jw, state);
		add_num(&jw, "completed", completed, 1);
		add_num(&jw, "failed", failed, 1);
		add_num(&jw, "timed_out", timed_out, 1);
		add_num(&jw, "in_flight", inflight, 1);
		add_num(&jw, "held_back", num(m, nm, "held_back"), 1);
		add_num(&jw, "total", total, 1);
		add_num(&jw, "rate", rate, 0);
		add_num(&jw, "eta_s", eta, 0);
		add_num(&jw, "elapsed_s", elapsed, 0);
		add_num(&jw, "heartbeat_age_s", age, 0);
		gd__jsonw_key(&jw, "host");
		gd__jsonw_cstr(&jw, host);
		add_num(&jw, "pid", pidv, 1);
		add_num(&jw, "journal_records", jc.have ? (double)jc.records : NAN, 1);
		/* the status file's arrays as they are (checked JSON: its members) */
		gd__jsonw_key(&jw, "workers");
		if (wm)
			gd__jsonw_json(&jw, wm->val, wm->vlen);
		else
			gd__jsonw_json(&jw, "[]", 2);
		gd__jsonw_key(&jw, "reasons");
		if (rm)
			gd__jsonw_json(&jw, rm->val, rm->vlen);
		else
			gd__jsonw_json(&jw, "[]", 2);
		gd__jsonw_obj_end(&jw);
		if (!gd__jsonw_flush(&jw))
			cli_buf_add(&b, "\n", 1);
		if (b.p)
			fputs(b.p, out);
		cli_buf_free(&b);
	} else {
		char e1[48], e2[48];

		fmt_dur(e1, sizeof(e1), elapsed);
		fmt_dur(e2, sizeof(e2), eta);
		fprintf(out, "state      %s", state);
		if (!has)
			fprintf(out, " (no status file: from %s alone)", results);
		else if (!strcmp(state, "stale"))
			fprintf(out,
			        " (%s: updated %.0f s ago, pid %.0f on %s; the job is dead or "
			        "hung)",
			        why, age, pidv, host);
		else if (isfinite(age))
			fprintf(out, " (updated %.1f s ago, pid %.0f on %s)", age, pidv, host);
		fputc('\n', out);
		fprintf(out, "tasks      %.0f", done);
		if (isfinite(total))
			fprintf(out, "/%.0f", total);
		fprintf(out, " done: %.0f ok, %.0f failed, %.0f timed out", completed, failed,
		        timed_out);
		if (*running && isfinite(inflight))
			fprintf(out, "; %.0f in flight", inflight);
		fputc('\n', out);
		if (has) {
			fprintf(out, "elapsed    %s", e1);
			if (isfinite(rate))
				fprintf(out, ", %.1f tasks/s", rate);
			if (*running || !strcmp(state, "finished"))
				fprintf(out, ", ETA %s", e2);
			fputc('\n', out);
		}
		if (nw)
			fprintf(out, "\n%4s  %-16s  %-4s  %-12s  %8s  %8s  %8s  %6s\n", "ID",
			        "HOST", "GPU", "STATE", "TASK", "FOR(s)", "DONE", "FAILED");
		for (int i = 0; i < nw; i++) {
			cli_member w[32];
			int n = cli_json_members(wit[i], wil[i], w, 32);
			char h[64], ws[32], g[16] = "cpu", task[24] = "-", fors[24] = "-";

			if (n < 0)
				continue;
			str(w, n, "host", h, sizeof(h));
			str(w, n, "state", ws, sizeof(ws));
			if (isfinite(num(w, n, "gpu")))
				snprintf(g, sizeof(g), "%.0f", num(w, n, "gpu"));
			if (*running && isfinite(num(w, n, "task"))) {
				snprintf(task, sizeof(task), "%.0f", num(w, n, "task"));
				snprintf(fors, sizeof(fors), "%.1f",
				         num(w, n, "task_s") + (isfinite(age) ? age : 0));
			}
			fprintf(out, "%4.0f  %-16.16s  %-4s  %-12s  %8s  %8s  %8.0f  %6.0f\n",
			        num(w, n, "id"), h, g, ws, task, fors, num(w, n, "done"),
			        num(w, n, "failed") + (isfinite(num(w, n, "timed_out"))
			                                       ? num(w, n, "timed_out")
			                                       : 0));
		}
		for (int k = 0; k < nr; k++) {
			cli_member r[8];
			int n = cli_json_members(rit[k], ril[k], r, 8);
			char text[GD__REASON_LEN + 32];
			const cli_member *t = n >= 0 ? member(r, n, "tasks") : NULL;
			const char *tit[GD__REASON_IDS];
			size_t til[GD__REASON_IDS];
			int nt = t ? items(t->val, t->vlen, tit, til, GD__REASON_IDS) : 0;
			double count = n >= 0 ? num(r, n, "count") : NAN;

			if (n < 0)
				continue;
			str(r, n, "reason", text, sizeof(text));
			fprintf(out, "%s%.0fx %s (task%s ", k ? "           " : "\nfailures   ",
			        count, text, count == 1 ? "" : "s");
			for (int j = 0; j < nt; j++)
				fprintf(out, "%s%.*s", j ? ", " : "", (int)til[j], tit[j]);
			fprintf(out, "%s)\n", count > nt ? ", ..." : "");
		}
	}
	fflush(out);
	free(sj);
	(void)stt;
	return 0;
}

static void status_usage(FILE *out)
{
	fputs("usage: gpudispatch status RESULTS [--watch [SECONDS]] [--json]\n"
	      "Where a run stands, from its results file and RESULTS.status (written by\n"
	      "rank 0 about once a second): running, finished, interrupted, halted, failed,\n"
	      "or stale (no heartbeat: the job is dead or hung); counts, rate, ETA, elapsed,\n"
	      "the workers and the latest failure reasons.  Needs no MPI job.\n"
	      "  --watch [SECONDS]  report again every SECONDS (default 2) until the run ends\n"
	      "  --json             one JSON object per report\n",
	      out);
}

int cli_status_main(int argc, char **argv)
{
	const char *results = NULL;
	double watch = 0;
	int json = 0, running = 0, rc;

	for (int i = 0; i < argc; i++) {
		const char *a = argv[i];

		if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
			status_usage(stdout);
			return 0;
		} else if (!strcmp(a, "--json")) {
			json = 1;
		} else if (!strcmp(a, "--watch") || !strncmp(a, "--watch=", 8)) {
			const char *v = a[7] == '=' ? a + 8 : NULL;
			char *end;

			watch = 2;
			if (!v && i + 1 < argc && argv[i + 1][0] >= '0' && argv[i + 1][0] <= '9')
				v = argv[++i];
			if (v) {
				errno = 0;
				watch = strtod(v, &end);
				if (errno || *end || !(watch >= 0.1) || watch > 86400) {
					fprintf(stderr,
					        "gpudispatch status: --watch: '%s' is not a number "
					        "of "
					        "seconds from 0.1 to 86400\n",
					        v);
					return CLI_EXIT_USAGE;
				}
			}
		} else if (a[0] == '-' && a[1]) {
			fprintf(stderr,
			        "gpudispatch status: unknown option '%s'\nTry 'gpudispatch status "
			        "--help'.\n",
			        a);
			return CLI_EXIT_USAGE;
		} else if (results) {
			fprintf(stderr, "gpudispatch status: one results file, not '%s' too\n", a);
			return CLI_EXIT_USAGE;
		} else {
			results = a;
		}
	}
	if (!results) {
		fprintf(stderr, "gpudispatch status: missing the results file\n");
		status_usage(stderr);
		return CLI_EXIT_USAGE;
	}
	for (;;) {
		if (watch > 0 && !json && isatty(STDOUT_FILENO))
			fputs("\033[H\033[2J", stdout);
		rc = report(results, json, stdout, &running);
		if (rc || watch <= 0 || !running)
			return rc ? CLI_EXIT_USAGE : 0;
		if (!json)
			fputc('\n', stdout);
		struct timespec ts = {(time_t)watch, (long)((watch - (double)(time_t)watch) * 1e9)};
		nanosleep(&ts, NULL);
	}
}
