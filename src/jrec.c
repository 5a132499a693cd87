/* jrec.c: see jrec.h. */
#include "jrec.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

uint64_t gd__fnv1a(const void *data, size_t len)
{
	const uint8_t *p = data;
	uint64_t h = 0xcbf29ce484222325ULL;

	for (size_t i = 0; i < len; i++) {
		h ^= p[i];
		h *= 0x100000001b3ULL;
	}
	return h;
}

int gd__journal_parse_line(const char *line, size_t len, gd__jrec *out)
{
	static const char tail[] = ",\"sum\":\"";
	const size_t tl = sizeof(tail) - 1, hexl = 16;
	char head[96], status[16], digest[17], sum[17];
	unsigned long long id;
	size_t body, hl;
	int n = 0;

	/* ...,"sum":"<16 hex>"} */
	if (len < tl + hexl + 2 + 10 || line[0] != '{' || line[len - 1] != '}' ||
	    line[len - 2] != '"')
		return 0;
	body = len - 2 - hexl - tl;
	if (memcmp(line + body, tail, tl) != 0)
		return 0;
	memcpy(sum, line + body + tl, hexl);
	sum[hexl] = '\0';
	for (size_t i = 0; i < hexl; i++)
		if (!((sum[i] >= '0' && sum[i] <= '9') || (sum[i] >= 'a' && sum[i] <= 'f')))
			return 0;
	if (strtoull(sum, NULL, 16) != gd__fnv1a(line, body))
		return 0;
	/* the fixed head: {"id":N,"status":"S","digest":"H" */
	hl = body < sizeof(head) - 1 ? body : sizeof(head) - 1;
	memcpy(head, line, hl);
	head[hl] = '\0';
	if (sscanf(head, "{\"id\":%20llu,\"status\":\"%15[a-z]\",\"digest\":\"%16[0-9a-f]\"%n", &id,
	           status, digest, &n) != 3 ||
	    n == 0 || strlen(digest) != 16)
		return 0;
	out->id = id;
	out->digest = strtoull(digest, NULL, 16);
	if (!strcmp(status, "ok"))
		out->status = GD_JS_OK;
	else if (!strcmp(status, "error"))
		out->status = GD_JS_ERROR;
	else if (!strcmp(status, "timeout"))
		out->status = GD_JS_TIMEOUT;
	else
		return 0;
	return 1;
}
