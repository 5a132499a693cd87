/*
 * JSON and byte encodings for the results file: escaping bytes as a JSON
 * string and embedding a JSON text on one line (both through src/jsonw.c),
 * UTF-8 validation, base64, checking that bytes are one JSON value, reading
 * a record's members and decoding a string (for `gpudispatch results`).
 */
#include <ctype.h>
#include <string.h>

#include "cli.h"

/* The project's one JSON writer (src/jsonw.c, compiled into the command
 * too: the library does not export it). */
static size_t utf8_len(const unsigned char *s, size_t n)
{
	return gd__jsonw_utf8_len(s, n);
}

static int put_buf(void *sink, const void *data, size_t n)
{
	return cli_buf_add(sink, data, n);
}

int cli_json_str(cli_buf *b, const void *data, size_t n)
{
	return gd__jsonw_escape(put_buf, b, data, n) ? -1 : 0;
}

int cli_utf8_valid(const void *data, size_t n)
{
	const unsigned char *s = data;

	for (size_t i = 0; i < n;) {
		size_t ul = utf8_len(s + i, n - i);

		if (!ul)
			return 0;
		i += ul;
	}
	return 1;
}

int cli_base64(cli_buf *b, const void *data, size_t n)
{
	static const char tab[] =
	        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	const unsigned char *s = data;
	char q[4];

	for (size_t i = 0; i < n; i += 3) {
		unsigned v = (unsigned)s[i] << 16;

		if (i + 1 < n)
			v |= (unsigned)s[i + 1] << 8;
		if (i + 2 < n)
			v |= s[i + 2];
		q[0] = tab[(v >> 18) & 63];
		q[1] = tab[(v >> 12) & 63];
		q[2] = i + 1 < n ? tab[(v >> 6) & 63] : '=';
		q[3] = i + 2 < n ? tab[v & 63] : '=';
		if (cli_buf_add(b, q, 4))
			return -1;
	}
	return 0;
}

/* A JSON checker (RFC 8259): a recursive descent over one value. */
typedef struct jscan {
	const unsigned char *s;
	size_t n, i;
	unsigned depth;
} jscan;

#define JSON_MAX_DEPTH 256

static void js_ws(jscan *j)
{
	while (j->i < j->n && (j->s[j->i] == ' ' || j->s[j->i] == '\t' || j->s[j->i] == '\n' ||
	                       j->s[j->i] == '\r'))
		j->i++;
}

static int js_lit(jscan *j, const char *lit)
{
	size_t l = strlen(lit);

	if (j->n - j->i < l || memcmp(j->s + j->i, lit, l))
		return -1;
	j->i += l;
	return 0;
}

static int js_hex4(jscan *j)
{
	for (int k = 0; k < 4; k++, j->i++)
		if (j->i >= j->n || !isxdigit(j->s[j->i]))
			return -1;
	return 0;
}

static int js_string(jscan *j)
{
	j->i++; /* the opening quote */
	while (j->i < j->n) {
		unsigned char c = j->s[j->i];
		size_t ul;

		if (c == '"') {
			j->i++;
			return 0;
		}
		if (c < 0x20)
			return -1;
		if (c == '\\') {
			if (++j->i >= j->n)
				return -1;
			c = j->s[j->i];
			if (c == 'u') {
				j->i++;
				if (js_hex4(j))
					return -1;
				continue;
			}
			if (!strchr("\"\\/bfnrt", c) || !c)
				return -1;
			j->i++;
			continue;
		}
		ul = utf8_len(j->s + j->i, j->n - j->i);
		if (!ul)
			return -1;
		j->i += ul;
	}
	return -1;
}

static int js_digits(jscan *j)
{
	size_t from = j->i;

	while (j->i < j->n && j->s[j->i] >= '0' && j->s[j->i] <= '9')
		j->i++;
	return j->i > from ? 0 : -1;
}

static int js_number(jscan *j)
{
	if (j->s[j->i] == '-')
		j->i++;
	if (j->i < j->n && j->s[j->i] == '0')
		j->i++;
	else if (js_digits(j))
		return -1;
	if (j->i < j->n && j->s[j->i] == '.') {
		j->i++;
		if (js_digits(j))
			return -1;
	}
	if (j->i < j->n && (j->s[j->i] == 'e' || j->s[j->i] == 'E')) {
		j->i++;
		if (j->i < j->n && (j->s[j->i] == '+' || j->s[j->i] == '-'))
			j->i++;
		if (js_digits(j))
			return -1;
	}
	return 0;
}

static int js_value(jscan *j);

/* An object or an array; *close is '}' or ']'. */
static int js_container(jscan *j, unsigned char close)
{
	if (++j->depth > JSON_MAX_DEPTH)
		return -1;
	j->i++;
	js_ws(j);
	if (j->i < j->n && j->s[j->i] == close) {
		j->i++;
		j->depth--;
		return 0;
	}
	for (;;) {
		if (close == '}') {
			if (j->i >= j->n || j->s[j->i] != '"' || js_string(j))
				return -1;
			js_ws(j);
			if (j->i >= j->n || j->s[j->i] != ':')
				return -1;
			j->i++;
		}
		if (js_value(j))
			return -1;
		js_ws(j);
		if (j->i >= j->n)
			return -1;
		if (j->s[j->i] == close) {
			j->i++;
			j->depth--;
			return 0;
		}
		if (j->s[j->i] != ',')
			return -1;
		j->i++;
		js_ws(j);
	}
}

static int js_value(jscan *j)
{
	js_ws(j);
	if (j->i >= j->n)
		return -1;
	switch (j->s[j->i]) {
	case '{':
		return js_container(j, '}');
	case '[':
		return js_container(j, ']');
	case '"':
		return js_string(j);
	case 't':
		return js_lit(j, "true");
	case 'f':
		return js_lit(j, "false");
	case 'n':
		return js_lit(j, "null");
	default:
		if (j->s[j->i] == '-' || (j->s[j->i] >= '0' && j->s[j->i] <= '9'))
			return js_number(j);
		return -1;
	}
}

int cli_json_valid(const void *data, size_t n, size_t *bad_at)
{
	jscan j = {.s = data, .n = n};
	int ok = js_value(&j) == 0;

	if (ok) {
		js_ws(&j);
		ok = j.i == n;
	}
	if (!ok && bad_at)
		*bad_at = j.i;
	return ok;
}

void cli_jsonw(gd__jsonw *w, cli_buf *b)
{
	gd__jsonw_init(w, put_buf, b, 0);
}

void cli_jsonw_members(gd__jsonw *w, cli_buf *b)
{
	gd__jsonw_init(w, put_buf, b, 0);
	gd__jsonw_members_open(w);
}

int cli_json_embed(cli_buf *b, const void *data, size_t n)
{
	gd__jsonw w;

	gd__jsonw_init(&w, put_buf, b, 0);
	gd__jsonw_json(&w, data, n);
	return gd__jsonw_flush(&w) ? -1 : 0;
}

int cli_json_members(const void *data, size_t n, cli_member *m, size_t max)
{
	jscan j = {.s = data, .n = n};
	size_t k = 0;

	js_ws(&j);
	if (j.i >= n || j.s[j.i] != '{')
		return -1;
	j.i++;
	js_ws(&j);
	if (j.i < n && j.s[j.i] == '}')
		return 0;
	for (;;) {
		size_t ks, vs;

		if (j.i >= n || j.s[j.i] != '"')
			return -1;
		ks = j.i;
		if (js_string(&j))
			return -1;
		if (k < max) {
			m[k].key = (const char *)j.s + ks + 1;
			m[k].klen = j.i - ks - 2;
		}
		js_ws(&j);
		if (j.i >= n || j.s[j.i] != ':')
			return -1;
		j.i++;
		js_ws(&j);
		vs = j.i;
		if (js_value(&j))
			return -1;
		if (k < max) {
			m[k].val = (const char *)j.s + vs;
			m[k].vlen = j.i - vs;
		}
		k++;
		js_ws(&j);
		if (j.i < n && j.s[j.i] == '}')
			break;
		if (j.i >= n || j.s[j.i] != ',')
			return -1;
		j.i++;
		js_ws(&j);
	}
	return k > max ? (int)max : (int)k;
}

static int hexval(unsigned char c)
{
	return c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10;
}

static int put_utf8(cli_buf *b, unsigned long c)
{
	char u[4];
	size_t n;

	if (c < 0x80) {
		u[0] = (char)c;
		n = 1;
	} else if (c < 0x800) {
		u[0] = (char)(0xc0 | c >> 6);
		u[1] = (char)(0x80 | (c & 0x3f));
		n = 2;
	} else if (c < 0x10000) {
		u[0] = (char)(0xe0 | c >> 12);
		u[1] = (char)(0x80 | ((c >> 6) & 0x3f));
		u[2] = (char)(0x80 | (c & 0x3f));
		n = 3;
	} else {
		u[0] = (char)(0xf0 | c >> 18);
		u[1] = (char)(0x80 | ((c >> 12) & 0x3f));
		u[2] = (char)(0x80 | ((c >> 6) & 0x3f));
		u[3] = (char)(0x80 | (c & 0x3f));
		n = 4;
	}
	return cli_buf_add(b, u, n);
}

int cli_json_unstr(cli_buf *b, const void *data, size_t n)
{
	const unsigned char *s = data;
	size_t i = 1;

	if (n < 2 || s[0] != '"' || s[n - 1] != '"')
		return -1;
	n--; /* the closing quote */
	while (i < n) {
		size_t run = i;

		while (run < n && s[run] != '\\')
			run++;
		if (run > i && cli_buf_add(b, s + i, run - i))
			return -1;
		i = run;
		if (i >= n)
			break;
		if (i + 1 >= n)
			return -1;
		unsigned char e = s[i + 1];
		char c1;

		switch (e) {
		case '"':
		case '\\':
		case '/':
			c1 = (char)e;
			break;
		case 'b':
			c1 = '\b';
			break;
		case 'f':
			c1 = '\f';
			break;
		case 'n':
			c1 = '\n';
			break;
		case 'r':
			c1 = '\r';
			break;
		case 't':
			c1 = '\t';
			break;
		case 'u':
			c1 = 0;
			break;
		default:
			return -1;
		}
		if (e != 'u') {
			if (cli_buf_add(b, &c1, 1))
				return -1;
			i += 2;
			continue;
		}
		if (i + 6 > n)
			return -1;
		unsigned long c = 0;

		for (int k = 2; k < 6; k++) {
			if (!isxdigit(s[i + k]))
				return -1;
			c = c << 4 | (unsigned long)hexval(s[i + k]);
		}
		i += 6;
		if (c >= 0xd800 && c <= 0xdbff && i + 6 <= n && s[i] == '\\' && s[i + 1] == 'u') {
			unsigned long lo = 0;
			int ok = 1;

			for (int k = 2; k < 6; k++) {
				if (!isxdigit(s[i + k])) {
					ok = 0;
					break;
				}
				lo = lo << 4 | (unsigned long)hexval(s[i + k]);
			}
			if (ok && lo >= 0xdc00 && lo <= 0xdfff) {
				c = 0x10000 + ((c - 0xd800) << 10) + (lo - 0xdc00);
				i += 6;
			}
		}
		if (c >= 0xd800 && c <= 0xdfff)
			c = 0xfffd; /* a lone surrogate */
		if (put_utf8(b, c))
			return -1;
	}
	return 0;
}
