/*
 * libFuzzer target: the JSON writer (src/jsonw.c).  Whatever the bytes:
 *  - a string written through it is one valid JSON string that decodes back
 *    to the bytes when they are valid UTF-8;
 *  - a document the bytes describe (objects, arrays, keys, strings, numbers,
 *    embedded JSON) is one valid JSON text;
 *  - a fixed-point number is within half a unit of its last digit.
 * The checks use the command's JSON reader (src/cli/json.c).
 */
#include "../../src/cli/cli.h"
#include "jsonw.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static int put(void *sink, const void *data, size_t n)
{
	return cli_buf_add(sink, data, n);
}

static void check_string(const uint8_t *data, size_t size)
{
	cli_buf b = {0}, d = {0};

	if (gd__jsonw_escape(put, &b, data, size))
		abort();
	if (!cli_json_valid(b.p, b.len, NULL) || b.p[0] != '"')
		abort();
	for (size_t i = 0; i < b.len; i++)
		if ((unsigned char)b.p[i] < 0x20)
			abort();
	if (cli_json_unstr(&d, b.p, b.len))
		abort();
	if (cli_utf8_valid(data, size) && (d.len != size || (size && memcmp(d.p, data, size))))
		abort();
	cli_buf_free(&b);
	cli_buf_free(&d);
}

/* Bytes as a program for the writer: each byte an operation. */
static void check_document(const uint8_t *data, size_t size)
{
	cli_buf b = {0};
	gd__jsonw w;
	/* what is open: 'o' object, 'a' array; keys before object members */
	char open[GD__JSONW_MAX_DEPTH];
	unsigned depth = 0;
	size_t i = 0;

	gd__jsonw_init(&w, put, &b, data[0] & 1);
	gd__jsonw_arr(&w);
	open[depth++] = 'a';
	while (i < size) {
		uint8_t op = data[i++];
		size_t n = i < size ? data[i] % 16 : 0;

		if (n > size - i)
			n = size - i;
		if (open[depth - 1] == 'o') {
			char key[17];

			memcpy(key, data + i, n);
			key[n] = '\0'; /* a NUL inside just shortens it */
			gd__jsonw_key(&w, key);
		}
		switch (op % 11) {
		case 0:
			if (depth < GD__JSONW_MAX_DEPTH - 1) {
				gd__jsonw_obj(&w);
				open[depth++] = 'o';
				continue;
			}
			gd__jsonw_null(&w);
			break;
		case 1:
			if (depth < GD__JSONW_MAX_DEPTH - 1) {
				gd__jsonw_arr(&w);
				open[depth++] = 'a';
				continue;
			}
			gd__jsonw_null(&w);
			break;
		case 2:
			gd__jsonw_str(&w, data + i, n);
			i += n;
			break;
		case 3: {
			int64_t v = 0;

			memcpy(&v, data + i, n < 8 ? n : 8);
			gd__jsonw_int(&w, v);
			i += n;
			break;
		}
		case 4: {
			uint64_t v = 0;

			memcpy(&v, data + i, n < 8 ? n : 8);
			gd__jsonw_uint(&w, v);
			i += n;
			break;
		}
		case 5: {
			double v = 0;

			memcpy(&v, data + i, n < 8 ? n : 8);
			gd__jsonw_fixed(&w, v, (int)(op % 10));
			i += n;
			break;
		}
		case 6:
			gd__jsonw_hex64(&w, op * 0x9e3779b97f4a7c15ULL);
			break;
		case 7:
			gd__jsonw_bool(&w, op & 16);
			break;
		case 8:
			if (cli_json_valid(data + i, n, NULL))
				gd__jsonw_json(&w, data + i, n);
			else
				gd__jsonw_null(&w);
			i += n;
			break;
		default:
			if (depth > 1 && open[depth - 1] == 'o') {
				gd__jsonw_null(&w); /* the key's value */
				gd__jsonw_obj_end(&w);
				depth--;
			} else if (depth > 1) {
				gd__jsonw_arr_end(&w);
				depth--;
			} else {
				gd__jsonw_cstr(&w, NULL);
			}
		}
	}
	while (depth) {
		if (open[--depth] == 'o')
			gd__jsonw_obj_end(&w);
		else
			gd__jsonw_arr_end(&w);
	}
	if (gd__jsonw_flush(&w) || !cli_json_valid(b.p, b.len, NULL))
		abort();
	cli_buf_free(&b);
}

static void check_fixed(const uint8_t *data, size_t size)
{
	double v;
	cli_buf b = {0};
	gd__jsonw w;

	if (size < 9)
		return;
	memcpy(&v, data + 1, 8);
	gd__jsonw_init(&w, put, &b, 0);
	gd__jsonw_fixed(&w, v, data[0] % 10);
	if (gd__jsonw_flush(&w))
		abort();
	if (isfinite(v) && fabs(v) < 1e30) {
		char *end;
		double got = strtod(b.p, &end);
		double unit = pow(10, -(data[0] % 10));

		if (*end || fabs(got - v) > unit * 0.5 + fabs(v) * 1e-15)
			abort();
	} else if (strcmp(b.p, "null")) {
		abort();
	}
	cli_buf_free(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	check_string(data, size);
	if (size) {
		check_document(data, size);
		check_fixed(data, size);
	}
	return 0;
}
