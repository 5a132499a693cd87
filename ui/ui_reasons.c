/* Failure reasons grouped: see ui_reasons.h. */
#include <stdio.h>
#include <string.h>

#include "ui_reasons.h"

static int is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static int is_hex(char c)
{
	return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* The number that follows one of these keeps its digits. */
static int kept_number(const char *start, const char *p)
{
	static const char *const keep[] = {"exited with status ", "killed by signal ",
	                                   "timed out after "};

	for (size_t k = 0; k < sizeof(keep) / sizeof(keep[0]); k++) {
		size_t l = strlen(keep[k]);

		if ((size_t)(p - start) >= l && !memcmp(p - l, keep[k], l))
			return 1;
	}
	return 0;
}

/* Past the last "attempt K on worker W: " of a retried task's message. */
static const char *last_attempt(const char *msg)
{
	const char *best = msg, *p = msg;

	while ((p = strstr(p, "attempt ")) != NULL) {
		const char *q = p + 8;

		p = q;
		if (!is_digit(*q))
			continue;
		while (is_digit(*q))
			q++;
		if (strncmp(q, " on worker ", 11))
			continue;
		q += 11;
		if (!is_digit(*q))
			continue;
		while (is_digit(*q))
			q++;
		if (q[0] == ':' && q[1] == ' ')
			best = q + 2;
	}
	return best;
}

void gd__reason_normalise(char *out, size_t n, const char *msg)
{
	const char *s, *p;
	size_t o = 0;

	if (!n)
		return;
	s = last_attempt(msg ? msg : "");
	for (p = s; *p && *p != '\n' && o + 1 < n;) {
		if (p[0] == '0' && (p[1] == 'x' || p[1] == 'X') && is_hex(p[2])) {
			if (o + 3 >= n)
				break;
			out[o++] = '0';
			out[o++] = 'x';
			out[o++] = '#';
			for (p += 2; is_hex(*p); p++)
				;
			continue;
		}
		if (is_digit(*p) && !kept_number(s, p)) {
			out[o++] = '#';
			while (is_digit(*p) || (*p == '.' && is_digit(p[1])))
				p++;
			continue;
		}
		if (is_digit(*p)) { /* kept: copy the whole number */
			while ((is_digit(*p) || (*p == '.' && is_digit(p[1]))) && o + 1 < n)
				out[o++] = *p++;
			continue;
		}
		out[o++] = *p == '\r' || *p == '\t' ? ' ' : *p;
		p++;
	}
	/* no trailing blanks, and never empty */
	while (o && out[o - 1] == ' ')
		o--;
	out[o] = '\0';
	if (!o)
		snprintf(out, n, "(no message)");
}

/* Keep the lowest ids, in order (the order results arrive in is not). */
static void count(gd__reason *r, uint64_t task_id)
{
	int n = r->count < GD__REASON_IDS ? (int)r->count : GD__REASON_IDS, k = n;

	r->count++;
	if (n == GD__REASON_IDS && task_id >= r->ids[n - 1])
		return;
	if (n == GD__REASON_IDS)
		k = --n; /* the highest goes */
	while (k > 0 && r->ids[k - 1] > task_id) {
		r->ids[k] = r->ids[k - 1];
		k--;
	}
	r->ids[k] = task_id;
}

void gd__reasons_add(gd__reasons *rs, uint64_t task_id, const char *msg)
{
	char text[GD__REASON_LEN];

	gd__reason_normalise(text, sizeof(text), msg);
	rs->total++;
	for (int i = 0; i < rs->n; i++)
		if (!strcmp(rs->r[i].text, text)) {
			count(&rs->r[i], task_id);
			return;
		}
	if (rs->n == GD__REASONS_MAX) {
		count(&rs->other, task_id);
		return;
	}
	gd__reason *r = &rs->r[rs->n++];
	memset(r, 0, sizeof(*r));
	memcpy(r->text, text, strlen(text) + 1);
	count(r, task_id);
}

int gd__reason_format(char *buf, size_t n, const gd__reason *r, const char *times)
{
	char ids[GD__REASON_IDS * 24 + 8];
	size_t o = 0;
	uint64_t k, shown = r->count < GD__REASON_IDS ? r->count : GD__REASON_IDS;

	ids[0] = '\0';
	for (k = 0; k < shown; k++)
		o += (size_t)snprintf(ids + o, sizeof(ids) - o, "%s%llu", k ? ", " : "",
		                      (unsigned long long)r->ids[k]);
	if (r->count > shown)
		snprintf(ids + o, sizeof(ids) - o, ", ...");
	return snprintf(buf, n, "%llu%s %s (task%s %s)", (unsigned long long)r->count, times,
	                r->text[0] ? r->text : "other reasons", r->count == 1 ? "" : "s", ids);
}

const gd__reason *gd__reasons_at(const gd__reasons *rs, int i)
{
	return i == GD__REASONS_MAX ? &rs->other : &rs->r[i];
}

int gd__reasons_sorted(const gd__reasons *rs, int *idx, int max)
{
	int all[GD__REASONS_MAX + 1], n = 0;

	for (int i = 0; i < rs->n; i++)
		all[n++] = i;
	if (rs->other.count)
		all[n++] = GD__REASONS_MAX;
	/* insertion sort, stable: by count, most first */
	for (int i = 1; i < n; i++) {
		int v = all[i], j = i;

		while (j > 0 &&
		       gd__reasons_at(rs, all[j - 1])->count < gd__reasons_at(rs, v)->count) {
			all[j] = all[j - 1];
			j--;
		}
		all[j] = v;
	}
	if (n > max)
		n = max;
	memcpy(idx, all, (size_t)n * sizeof(*idx));
	return n;
}
