/* The public structs across versions (config.c). */
#ifndef GD_CONFIG_H
#define GD_CONFIG_H

#include "gpudispatch.h"

/* A full configuration of this version from the application's: its
 * members, our defaults for those its version lacks.  \return 0 or
 * GD_EINVAL (NULL, or a size below the first release's). */
int gd__config_take(const gd_config *user, gd_config *out);
/* Likewise for the callbacks (absent members are NULL). */
int gd__callbacks_take(const gd_callbacks *user, gd_callbacks *out);
/* \return 0 when stats is NULL or has a usable size, else GD_EINVAL. */
int gd__stats_check(const gd_stats *user);
/* Hand the run's statistics st (of this version) to the application's
 * struct: as many bytes as it has room for; the rows go with it. */
void gd__stats_give(gd_stats *user, gd_stats *st);

#endif
