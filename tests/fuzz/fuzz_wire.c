/* libFuzzer target: every decoder of bytes that arrive from another process
 * (records, messages, the configuration, HELLO). */
#include "wire.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static int count(void *ctx, const gd__rec *r)
{
	/* touch every payload byte, so a bad bound shows up under ASan */
	volatile uint8_t sink = 0;

	for (uint32_t i = 0; i < r->len; i++)
		sink ^= r->payload[i];
	(*(int *)ctx)++;
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[256];
	int n = 0;
	gd__wcfg w;
	gd__hello h;
	gd__rec r;
	size_t used;

	/* exactly sized copy: reading one byte too far is caught */
	uint8_t *copy = malloc(size ? size : 1);
	if (size)
		memcpy(copy, data, size);
	gd__msg_foreach(copy, size, count, &n, err, sizeof(err));
	gd__rec_parse(copy, size, &r, &used, err, sizeof(err));
	if (gd__cfg_unpack(copy, size, &w) == 0 && w.window == 0)
		abort(); /* a window of 0 must never be accepted */
	gd__cfg_free(&w);
	gd__hello_unpack(copy, size, &h);
	free(copy);
	return 0;
}
