/*
 * The setup arguments of the command's worker class: cli_opts turned into
 * the key=value pairs (gd_kv) every worker receives, the user's --setup-arg
 * pairs as setup.KEY, and freeing them.
 */
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static int kv_add(cli_kv_store *s, const char *key, const char *val)
{
	char *k = strdup(key), *v = strdup(val);
	gd_kv *kv = realloc(s->kv, (s->n + 1) * sizeof(*kv));
	char **strs;

	if (kv)
		s->kv = kv;
	strs = realloc(s->strs, (s->n_strs + 2) * sizeof(*strs));
	if (strs)
		s->strs = strs;
	if (!k || !v || !kv || !strs) {
		free(k);
		free(v);
		return -1;
	}
	s->strs[s->n_strs++] = k;
	s->strs[s->n_strs++] = v;
	s->kv[s->n].key = k;
	s->kv[s->n].value = v;
	s->n++;
	return 0;
}

int cli_kv_build(const cli_opts *o, cli_kv_store *s)
{
	char num[32], key[32];
	int rc = 0;

	memset(s, 0, sizeof(*s));
	rc |= kv_add(s, "mode", o->worker_cmd ? "persistent" : "command");
	if (o->worker_cmd)
		rc |= kv_add(s, "worker_cmd", o->worker_cmd);
	rc |= kv_add(s, "shell", o->shell ? "1" : "0");
	rc |= kv_add(s, "quiet", o->quiet ? "1" : "0");
	rc |= kv_add(s, "keep_children", o->keep_children ? "1" : "0");
	if (o->out_dir)
		rc |= kv_add(s, "output_dir", o->out_dir);
	snprintf(num, sizeof(num), "%zu", o->max_line);
	rc |= kv_add(s, "max_line", num);
	snprintf(num, sizeof(num), "%u",
	         o->start_failures ? o->start_failures : CLI_DEFAULT_START_FAILURES);
	rc |= kv_add(s, "start_failures", num);
	snprintf(num, sizeof(num), "%u", o->stderr_lines);
	rc |= kv_add(s, "stderr_lines", num);
	snprintf(num, sizeof(num), "%.17g", o->setup_timeout);
	rc |= kv_add(s, "setup_timeout", num);
	/* the user's --setup-arg pairs, as "setup.KEY" = "VALUE" */
	for (size_t i = 0; i < o->n_setup_args; i++) {
		const char *a = o->setup_args[i], *eq = strchr(a, '=');
		char skey[300];

		snprintf(skey, sizeof(skey), "setup.%.*s", (int)(eq - a), a);
		rc |= kv_add(s, skey, eq + 1);
	}
	snprintf(num, sizeof(num), "%d", o->argc);
	rc |= kv_add(s, "argc", num);
	for (int i = 0; i < o->argc; i++) {
		snprintf(key, sizeof(key), "arg%d", i);
		rc |= kv_add(s, key, o->argv[i]);
	}
	if (rc) {
		cli_kv_free(s);
		return -1;
	}
	return 0;
}

void cli_kv_free(cli_kv_store *s)
{
	for (size_t i = 0; i < s->n_strs; i++)
		free(s->strs[i]);
	free(s->strs);
	free(s->kv);
	memset(s, 0, sizeof(*s));
}
