/* Error codes, names, small public helpers. */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

const char *gd_version(void)
{
	return GD_VERSION_STRING;
}

const char *gd_strerror(int err)
{
	switch (err) {
	case GD_OK:
		return "success";
#define GD__ERRNO_MSG(name, val, msg)                                                              \
	case GD_##name:                                                                            \
		return msg;
		GD_ERRNO_MAP(GD__ERRNO_MSG)
#undef GD__ERRNO_MSG
	}
	return "unknown error";
}

const char *gd_err_name(int err)
{
	switch (err) {
	case GD_OK:
		return "GD_OK";
#define GD__ERRNO_NAME(name, val, msg)                                                             \
	case GD_##name:                                                                            \
		return "GD_" #name;
		GD_ERRNO_MAP(GD__ERRNO_NAME)
#undef GD__ERRNO_NAME
	}
	return "GD_E?";
}

const char *gd_worker_state_name(gd_worker_state s)
{
	switch (s) {
	case GD_WS_INIT:
		return "initializing";
	case GD_WS_IDLE:
		return "idle";
	case GD_WS_BUSY:
		return "processing";
	case GD_WS_DONE:
		return "finished";
	case GD_WS_ERROR:
		return "error";
	case GD_WS_QUARANTINED:
		return "quarantined";
	}
	return "?";
}

const char *gd_args_get(const gd_args *args, const char *key)
{
	if (!args || !key)
		return NULL;
	for (size_t i = 0; i < args->n; i++)
		if (args->kv[i].key && strcmp(args->kv[i].key, key) == 0)
			return args->kv[i].value;
	return NULL;
}

int gd_buf_set(gd_buf *b, const void *data, size_t len)
{
	uint8_t *p;

	if (len > 0x7fffffffu - 4096u)
		return GD_ETOOBIG;
	p = gd_buf_reserve(b, len);
	if (!p)
		return GD_ENOMEM;
	if (len)
		memcpy(p, data, len);
	return 0;
}

void *gd_buf_reserve(gd_buf *b, size_t len)
{
	if (len > 0x7fffffffu - 4096u)
		return NULL;
	if (gd__bytes_reserve(b->bytes, b->room + len + 1))
		return NULL;
	b->bytes->len = b->room + len;
	return b->bytes->p + b->room;
}
