/* Plain progress lines and the final summary table: see ui_text.h. */
#include <string.h>

#include "ui_text.h"

static void worker_counts(FILE *f, const gd_stats *st)
{
	int n[GD_WS_ERROR + 1] = {0};
	for (int i = 0; i < st->n_workers; i++) {
		unsigned s = st->workers[i].state;
		if (s <= GD_WS_ERROR)
			n[s]++;
	}
	static const gd_worker_state order[] = {GD_WS_BUSY, GD_WS_IDLE, GD_WS_INIT, GD_WS_DONE,
	                                        GD_WS_ERROR};
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

void gd__ui_summary(FILE *f, const gd_stats *st, int rc)
{
	char el[16];
	uint64_t done = gd__ui_done(st);
	double rate = st->elapsed_s > 0 ? (double)done / st->elapsed_s : 0;
	fprintf(f, "\n== gpudispatch summary ==\n");
	fprintf(f, "result     %s%s%s\n", rc ? gd_err_name(rc) : "ok", rc ? ": " : "",
	        rc ? gd_strerror(rc) : "");
	fprintf(f, "tasks      %llu run, %llu succeeded, %llu failed, %llu timed out",
	        (unsigned long long)st->total, (unsigned long long)st->completed,
	        (unsigned long long)st->failed, (unsigned long long)st->timed_out);
	if (st->not_done)
		fprintf(f, ", %llu not done", (unsigned long long)st->not_done);
	fputc('\n', f);
	if (st->skipped || st->retried)
		fprintf(f, "           %llu skipped, %llu retried\n",
		        (unsigned long long)st->skipped, (unsigned long long)st->retried);
	if (st->total)
		fprintf(f, "success    %.1f%%\n",
		        100.0 * (double)st->completed / (double)st->total);
	fprintf(f, "elapsed    %s (%.3f s), %.1f tasks/s\n",
	        gd__ui_fmt_duration(el, sizeof(el), st->elapsed_s), st->elapsed_s, rate);
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
		char gpu[16];
		if (w->gpu.index < 0)
			snprintf(gpu, sizeof(gpu), "cpu");
		else
			snprintf(gpu, sizeof(gpu), "%d", w->gpu.index);
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
