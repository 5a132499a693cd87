/* The JSON writer: see jsonw.h. */
#include "jsonw.h"

#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

size_t gd__jsonw_utf8_len(const unsigned char *s, size_t n)
{
	unsigned char c = s[0], lo = 0x80, hi = 0xbf;
	size_t len;

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		len = 2;
	else if (c >= 0xe0 && c <= 0xef)
		len = 3;
	else if (c >= 0xf0 && c <= 0xf4)
		len = 4;
	else
		return 0;
	if (n < len)
		return 0;
	if (c == 0xe0)
		lo = 0xa0; /* no overlong */
	else if (c == 0xed)
		hi = 0x9f; /* no surrogates */
	else if (c == 0xf0)
		lo = 0x90; /* no overlong */
	else if (c == 0xf4)
		hi = 0x8f; /* <= U+10FFFF */
	if (s[1] < lo || s[1] > hi)
		return 0;
	for (size_t i = 2; i < len; i++)
		if (s[i] < 0x80 || s[i] > 0xbf)
			return 0;
	return len;
}

int gd__jsonw_flush(gd__jsonw *w)
{
	if (w->n && !w->err && w->put(w->sink, w->buf, w->n))
		w->err = -1;
	w->n = 0;
	return w->err;
}

static void out(gd__jsonw *w, const void *p, size_t n)
{
	if (n <= sizeof(w->buf) - w->n) {
		memcpy(w->buf + w->n, p, n);
		w->n += n;
		return;
	}
	gd__jsonw_flush(w);
	if (n <= sizeof(w->buf)) {
		memcpy(w->buf, p, n);
		w->n = n;
	} else if (!w->err && w->put(w->sink, p, n)) {
		w->err = -1;
	}
}

static void esc(gd__jsonw *w, const void *data, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *s = data;
	size_t i = 0;

	out(w, "\"", 1);
	while (i < n) {
		size_t run = i, ul;
		unsigned char c;
		char esc[6];
		const char *e;
		size_t el = 2;

		/* a run of bytes that need nothing: printable ASCII and valid UTF-8 */
		while (run < n) {
			c = s[run];
			if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\')
				run++;
			else if (c >= 0x80 && (ul = gd__jsonw_utf8_len(s + run, n - run)))
				run += ul;
			else
				break;
		}
		if (run > i) {
			out(w, s + i, run - i);
			i = run;
			continue;
		}
		c = s[i++];
		switch (c) {
		case '"':
			e = "\\\"";
			break;
		case '\\':
			e = "\\\\";
			break;
		case '\n':
			e = "\\n";
			break;
		case '\r':
			e = "\\r";
			break;
		case '\t':
			e = "\\t";
			break;
		case '\b':
			e = "\\b";
			break;
		case '\f':
			e = "\\f";
			break;
		default:
			if (c >= 0x80) {
				e = "\\ufffd"; /* not part of valid UTF-8 */
			} else {
				memcpy(esc, "\\u00", 4);
				esc[4] = hex[c >> 4];
				esc[5] = hex[c & 15];
				e = esc;
			}
			el = 6;
		}
		out(w, e, el);
	}
	out(w, "\"", 1);
}

int gd__jsonw_escape(gd__jsonw_put put, void *sink, const void *s, size_t n)
{
	gd__jsonw w;

	gd__jsonw_init(&w, put, sink, 0);
	esc(&w, s, n);
	return gd__jsonw_flush(&w);
}

void gd__jsonw_init(gd__jsonw *w, gd__jsonw_put put, void *sink, int spaced)
{
	memset(w, 0, offsetof(gd__jsonw, buf));
	w->put = put;
	w->sink = sink;
	w->spaced = spaced;
}

/* Before a value or a key: the separator from the member before. */
static void pre(gd__jsonw *w)
{
	if (w->after_key) {
		w->after_key = 0;
		return;
	}
	if (w->depth && w->depth <= GD__JSONW_MAX_DEPTH) {
		if (!w->first[w->depth - 1])
			out(w, ", ", w->spaced ? 2 : 1);
		w->first[w->depth - 1] = 0;
	}
}

static void open_c(gd__jsonw *w, const char *c)
{
	pre(w);
	out(w, c, 1);
	if (w->depth < GD__JSONW_MAX_DEPTH)
		w->first[w->depth] = 1;
	w->depth++;
}

static void close_c(gd__jsonw *w, const char *c)
{
	if (w->depth)
		w->depth--;
	out(w, c, 1);
}

void gd__jsonw_obj(gd__jsonw *w)
{
	open_c(w, "{");
}

void gd__jsonw_obj_end(gd__jsonw *w)
{
	close_c(w, "}");
}

void gd__jsonw_arr(gd__jsonw *w)
{
	open_c(w, "[");
}

void gd__jsonw_arr_end(gd__jsonw *w)
{
	close_c(w, "]");
}

void gd__jsonw_key(gd__jsonw *w, const char *key)
{
	pre(w);
	esc(w, key, strlen(key));
	out(w, ": ", w->spaced ? 2 : 1);
	w->after_key = 1;
}

void gd__jsonw_str(gd__jsonw *w, const void *s, size_t n)
{
	pre(w);
	esc(w, s, n);
}

void gd__jsonw_cstr(gd__jsonw *w, const char *s)
{
	if (s)
		gd__jsonw_str(w, s, strlen(s));
	else
		gd__jsonw_null(w);
}

void gd__jsonw_uint(gd__jsonw *w, uint64_t v)
{
	char buf[24], *p = buf + sizeof(buf);

	do {
		*--p = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	pre(w);
	out(w, p, (size_t)(buf + sizeof(buf) - p));
}

void gd__jsonw_int(gd__jsonw *w, int64_t v)
{
	if (v >= 0) {
		gd__jsonw_uint(w, (uint64_t)v);
		return;
	}
	pre(w);
	out(w, "-", 1);
	w->after_key = 1; /* the digits follow without a separator */
	gd__jsonw_uint(w, (uint64_t)0 - (uint64_t)v);
}

void gd__jsonw_fixed(gd__jsonw *w, double v, int decimals)
{
	static const double pow10[] = {1, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9};
	char buf[64], *p = buf + sizeof(buf);
	double a = fabs(v);
	uint64_t q, ip, fp;
	int n;

	if (!isfinite(v) || a >= 1e30) {
		gd__jsonw_null(w);
		return;
	}
	if (decimals < 0)
		decimals = 0;
	if (decimals > 9 || a * pow10[decimals] >= 9007199254740992.0) {
		/* beyond exact integers in a double (2^53): printf (slow) */
		n = snprintf(buf, sizeof(buf), "%.*f", decimals, v);
		pre(w);
		out(w, buf, n > 0 && (size_t)n < sizeof(buf) ? (size_t)n : 0);
		return;
	}
	/* the hot path (the journal's times): integers, no printf */
	q = (uint64_t)(a * pow10[decimals] + 0.5);
	ip = q / (uint64_t)pow10[decimals];
	fp = q % (uint64_t)pow10[decimals];
	for (int i = 0; i < decimals; i++, fp /= 10)
		*--p = (char)('0' + fp % 10);
	if (decimals)
		*--p = '.';
	do {
		*--p = (char)('0' + ip % 10);
		ip /= 10;
	} while (ip);
	if (v < 0 && q)
		*--p = '-';
	pre(w);
	out(w, p, (size_t)(buf + sizeof(buf) - p));
}

void gd__jsonw_hex64(gd__jsonw *w, uint64_t v)
{
	static const char hex[] = "0123456789abcdef";
	char buf[18];

	buf[0] = buf[17] = '"';
	for (int i = 16; i >= 1; i--, v >>= 4)
		buf[i] = hex[v & 15];
	pre(w);
	out(w, buf, sizeof(buf));
}

void gd__jsonw_bool(gd__jsonw *w, int v)
{
	pre(w);
	out(w, v ? "true" : "false", v ? 4 : 5);
}

void gd__jsonw_null(gd__jsonw *w)
{
	pre(w);
	out(w, "null", 4);
}

void gd__jsonw_json(gd__jsonw *w, const void *json, size_t n)
{
	const char *s = json;
	size_t i = 0;

	pre(w);
	/* a valid JSON text holds raw CR/LF only as whitespace between tokens */
	while (i < n) {
		size_t run = i;

		while (run < n && s[run] != '\n' && s[run] != '\r')
			run++;
		out(w, s + i, run - i);
		if (run < n)
			out(w, " ", 1);
		i = run + 1;
	}
}

void gd__jsonw_members_open(gd__jsonw *w)
{
	w->first[w->depth < GD__JSONW_MAX_DEPTH ? w->depth : GD__JSONW_MAX_DEPTH - 1] = 1;
	w->depth++;
}

void gd__jsonw_members(gd__jsonw *w, const void *text, size_t n)
{
	if (!n)
		return;
	pre(w);
	out(w, text, n);
}
