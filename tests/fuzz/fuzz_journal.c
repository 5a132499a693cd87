/* libFuzzer target: the journal's line parser and its JSON string writer. */
#include "journal.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *line = malloc(size ? size : 1);
	gd__bytes b = {0};
	gd__jrec r;

	if (size)
		memcpy(line, data, size);
	/* the parser sees lines exactly as the reader splits them */
	size_t start = 0;
	for (size_t i = 0; i <= size; i++) {
		if (i == size || line[i] == '\n') {
			gd__journal_parse_line(line + start, i - start, &r);
			start = i + 1;
		}
	}
	/* whatever the bytes, the JSON string is valid: no raw control bytes */
	gd__json_str(&b, line, size);
	for (size_t i = 0; i < b.len; i++)
		if (b.p[i] < 0x20)
			abort();
	gd__bytes_free(&b);
	free(line);
	return 0;
}
