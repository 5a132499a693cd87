/*
 * The public structs across versions: gd_config's defaults, and the
 * copies in and out of the application's gd_config, gd_callbacks and
 * gd_stats by the size each says it has.  The rest of the library only
 * ever sees full structs of its own version.
 */
#include "config.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#define GD__ROUND8(n) (((n) + 7) & ~(size_t)7)

/* The size of each struct in the first release with a size field (its
 * sizeof, tail padding included: gd_config ended with `shm` and 4 bytes of
 * padding; its halt members came later): no
 * application passes less.  A later release adds members after these and
 * keeps these values as numbers. */
#define CONFIG_V1 GD__ROUND8(offsetof(gd_config, shm) + sizeof(int))
#define CB_V1     (offsetof(gd_callbacks, on_log) + sizeof(void (*)(void)))
#define STATS_V1  (offsetof(gd_stats, worker_size) + sizeof(size_t))

static void config_defaults(gd_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->size = sizeof(*cfg);
	cfg->window = 4;
	cfg->placement = 1;
	cfg->workers_per_gpu = 1;
	cfg->tick_s = 0.25;
	cfg->shm = 1;
	cfg->gpus_per_worker = 1;
	cfg->heartbeat_timeout = 20;
}

int gd_config_init(gd_config *cfg, size_t size)
{
	gd_config def;

	if (!cfg || size < CONFIG_V1)
		return GD_EINVAL;
	/* never more than size bytes; an application built against a later
	 * release gets zeroes in the members we do not know ("unset") */
	config_defaults(&def);
	def.size = size;
	memcpy(cfg, &def, size < sizeof(def) ? size : sizeof(def));
	if (size > sizeof(def))
		memset((char *)cfg + sizeof(def), 0, size - sizeof(def));
	return 0;
}

int gd_callbacks_init(gd_callbacks *cb, size_t size)
{
	if (!cb || size < CB_V1)
		return GD_EINVAL;
	memset(cb, 0, size);
	cb->size = size;
	return 0;
}

/* What the application's struct has of ours: min(its size, ours).
 * \return 0, or GD_EINVAL when its size is below the first release's. */
static int copy_in(void *dst, size_t dst_size, const void *src, size_t src_size, size_t v1)
{
	if (src_size < v1)
		return GD_EINVAL;
	memcpy(dst, src, src_size < dst_size ? src_size : dst_size);
	return 0;
}

int gd__config_take(const gd_config *user, gd_config *out)
{
	config_defaults(out);
	if (!user)
		return GD_EINVAL;
	if (copy_in(out, sizeof(*out), user, user->size, CONFIG_V1))
		return GD_EINVAL;
	out->size = sizeof(*out);
	return 0;
}

int gd__callbacks_take(const gd_callbacks *user, gd_callbacks *out)
{
	memset(out, 0, sizeof(*out));
	if (!user)
		return GD_EINVAL;
	if (copy_in(out, sizeof(*out), user, user->size, CB_V1))
		return GD_EINVAL;
	out->size = sizeof(*out);
	return 0;
}

int gd__stats_check(const gd_stats *user)
{
	return !user || user->size >= STATS_V1 ? 0 : GD_EINVAL;
}

void gd__stats_give(gd_stats *user, gd_stats *st)
{
	size_t size = user->size;

	st->size = sizeof(*st);
	st->worker_size = sizeof(gd_worker_stats);
	memcpy(user, st, size < sizeof(*st) ? size : sizeof(*st));
	user->size = size;
}

const gd_worker_stats *gd_stats_worker(const gd_stats *stats, int i)
{
	if (!stats || !stats->workers || i < 0 || i >= stats->n_workers)
		return NULL;
	size_t stride = stats->worker_size ? stats->worker_size : sizeof(gd_worker_stats);
	return (const gd_worker_stats *)((const char *)stats->workers + (size_t)i * stride);
}

void gd_stats_free(gd_stats *stats)
{
	if (!stats)
		return;
	free(stats->workers);
	stats->workers = NULL;
	stats->n_workers = 0;
}
