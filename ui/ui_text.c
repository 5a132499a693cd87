/* Plain progress lines and the final summary table: see ui_text.h. */
#include <string.h>

#include "ui_text.h"

static void worker_counts(FILE *f, const gd_stats *st)
{
	int n[GD_WS_QUARANTINED + 1] = {0};
	for (int i = 0; i < st->n_workers; i++) {
		unsigned s = st->workers[i].state;
		if (s <= GD_WS_QUARANTINED)
			n[s]++;
	}
	static const gd_worker_state order[] = {GD_WS_BUSY, GD_WS_IDLE,  GD_WS_INIT,
	                                        GD_WS_DONE, GD_WS_ERROR, GD_WS_QUARANTINED};
	fprintf(f, "workers:");
	const char *sep = " ";
	for (size_t i = 0; i < sizeof(order) / sizeof(order[0]); i++) {
		if (!n[order[i]])
			continue;
		fprintf(f, "%s%d %s", sep, n[order[i]], gd_worker_state_name(order[i]));
		sep = ", ";
	}
	if (!st->n_workers)
		fprintf(f, " none yet");
}

void gd__ui_text_line(FILE *f, const gd__ui_snap *s)
{
	const gd_stats *st = &s->st;
	char el[16], eta[16];
	uint64_t done = gd__ui_done(st);
	gd__ui_fmt_duration(el, sizeof(el), gd__ui_elapsed(s));
	fprintf(f, "[gpudispatch %s] ", el);
	if (st->total_hint)
		fprintf(f, "%llu/%llu (%.1f%%)", (unsigned long long)done,
		        (unsigned long long)st->total_hint,
		        done >= st->total_hint ? 100.0
		                               : 100.0 * (double)done / (double)st->total_hint);
	else
		fprintf(f, "%llu done", (unsigned long long)done);
	fprintf(f, " ok %llu err %llu timeout %llu", (unsigned long long)st->completed,
	        (unsigned long long)st->failed, (unsigned long long)st->timed_out);
	if (s->rate >= 0)
		fprintf(f, " | %.1f tasks/s", s->rate);
	else
		fprintf(f, " | - tasks/s");
	if (st->total_hint)
		fprintf(f, " | ETA %s", gd__ui_fmt_duration(eta, sizeof(eta), gd__ui_eta(s)));
	fprintf(f, " | ");
	worker_counts(f, st);
	if (s->stop == GD__UI_DRAIN)
		fprintf(f, " | stopping");
	else if (s->stop >= GD__UI_STOP_NOW)
		fprintf(f, " | stopping now");
	fputc('\n', f);
	fflush(f);
}

int gd__ui_text_reasons(FILE *f, const gd__reasons *rs, uint64_t *shown)
{
	int idx[GD__REASONS_MAX + 1], n = gd__reasons_sorted(rs, idx, GD__REASONS_MAX + 1);
	int lines = 0, more = 0;
	uint64_t more_failures = 0;
	char buf[GD__REASON_LEN + 160];

	for (int k = 0; k < n; k++) {
		int i = idx[k] == GD__REASONS_MAX ? GD__REASONS_MAX : idx[k];
		const gd__reason *r = gd__reasons_at(rs, idx[k]);

		if (r->count == shown[i])
			continue;
		if (lines == GD__UI_REASON_LINES) {
			more++;
			more_failures += r->count - shown[i];
			continue;
		}
		gd__reason_format(buf, sizeof(buf), r, "x");
		fprintf(f, "gpudispatch: %s\n", buf);
		shown[i] = r->count;
		lines++;
	}
	if (more) {
		fprintf(f, "gpudispatch: (%d more reason%s, %llu new failure%s: see the summary)\n",
		        more, more == 1 ? "" : "s", (unsigned long long)more_failures,
		        more_failures == 1 ? "" : "s");
		lines++;
	}
	if (lines)
		fflush(f);
	return lines;
}

void gd__ui_result_text(char *buf, size_t n, const gd_stats *st, int rc)
{
	uint64_t bad = st->failed + st->timed_out, ended = bad + st->completed;

	if (st->halted && (rc == 0 || rc == GD_EINTR))
		snprintf(buf, n, "halted (a halt condition was met: %s; %llu of %llu tasks failed)",
		         st->halted >= GD_STOP_NOW ? "tasks in flight abandoned"
		                                   : "no new tasks, those in flight finished",
		         (unsigned long long)bad, (unsigned long long)ended);
	else if (rc == GD_EINTR)
		snprintf(buf, n,
		         "interrupted (stopped before every task ran: resumable; %llu of "
		         "%llu tasks failed)",
		         (unsigned long long)bad, (unsigned long long)ended);
	else if (rc)
		snprintf(buf, n, "%s: %s", gd_err_name(rc), gd_strerror(rc));
	else if (bad && bad == ended)
		snprintf(buf, n, "all failed (%llu of %llu tasks)", (unsigned long long)bad,
		         (unsigned long long)ended);
	else if (bad)
		snprintf(buf, n, "some failed (%llu of %llu tasks)", (unsigned long long)bad,
		         (unsigned long long)ended);
	else
		snprintf(buf, n, "ok");
}

void gd__ui_summary(FILE *f, const gd_stats *st, int rc, const gd__reasons *reasons)
{
	char el[16], verdict[192];
	uint64_t done = gd__ui_done(st);
	double rate = st->elapsed_s > 0 ? (double)done / st->elapsed_s : 0;
	fprintf(f, "\n== gpudispatch summary ==\n");
	gd__ui_result_text(verdict, sizeof(verdict), st, rc);
	fprintf(f, "result     %s\n", verdict);
	fprintf(f, "tasks      %llu run, %llu succeeded, %llu failed, %llu timed out",
	        (unsigned long long)st->total, (unsigned long long)st->completed,
	        (unsigned long long)st->failed, (unsigned long long)st->timed_out);
	if (st->not_done)
		fprintf(f, ", %llu not done", (unsigned long long)st->not_done);
	if (st->size > offsetof(gd_stats, held_back) && st->held_back)
		fprintf(f, ", %llu held back by the deadline", (unsigned long long)st->held_back);
	fputc('\n', f);
	if (st->skipped || st->retried)
		fprintf(f, "           %llu skipped, %llu retried\n",
		        (unsigned long long)st->skipped, (unsigned long long)st->retried);
	if (st->total)
		fprintf(f, "success    %.1f%%\n",
		        100.0 * (double)st->completed / (double)st->total);
	fprintf(f, "elapsed    %s (%.3f s), %.1f tasks/s\n",
	        gd__ui_fmt_duration(el, sizeof(el), st->elapsed_s), st->elapsed_s, rate);
	if (reasons && reasons->total) {
		int idx[GD__REASONS_MAX + 1];
		int n = gd__reasons_sorted(reasons, idx, GD__REASONS_MAX + 1);
		char buf[GD__REASON_LEN + 160];

		for (int k = 0; k < n; k++) {
			gd__reason_format(buf, sizeof(buf), gd__reasons_at(reasons, idx[k]), "x");
			fprintf(f, "%s %s\n", k ? "          " : "failures  ", buf);
		}
	}
	fprintf(f, "workers    %d (%d setup failed)\n", st->n_workers, st->n_setup_failed);
	if (st->n_workers <= 0 || !st->workers)
		goto out;
	/* Host width: the longest name, within reason. */
	int hw = 4;
	for (int i = 0; i < st->n_workers; i++) {
		int l = (int)strnlen(st->workers[i].host, sizeof(st->workers[i].host));
		if (l > hw)
			hw = l;
	}
	if (hw > 32)
		hw = 32;
	fprintf(f, "\n%4s  %-*s  %-5s  %-12s  %9s  %6s  %6s  %8s  %7s\n", "ID", hw, "HOST", "GPU",
	        "STATUS", "COMPLETED", "FAILED", "T/O", "RESTARTS", "BUSY(s)");
	for (int i = 0; i < st->n_workers; i++) {
		const gd_worker_stats *w = &st->workers[i];
		char gpu[GD_MAX_WORKER_GPUS * 4];
		gd__ui_gpus(gpu, sizeof(gpu), w);
		fprintf(f, "%4d  %-*.*s  %-5s  %-12s  %9llu  %6llu  %6llu  %8u  %7.1f\n",
		        w->worker_id, hw, hw, w->host, gpu, gd_worker_state_name(w->state),
		        (unsigned long long)w->completed, (unsigned long long)w->failed,
		        (unsigned long long)w->timed_out, w->restarts, w->busy_s);
		if (w->message[0])
			fprintf(f, "      %.*s\n", (int)sizeof(w->message), w->message);
	}
out:
	fflush(f);
}
