/*
 * The command's worker class.  It runs in the executor process the library
 * forks on every worker rank (never touches MPI), with the GPU variables and
 * the CPU binding already set by placement.
 *
 * Command mode: process() forks and execs the command for one task and
 * waits for it; the exit status decides success.  Then whatever it left
 * running is killed (unless --keep-children): the executor is a subreaper,
 * so even a process that left its session with setsid() is found below it.
 * On a timeout the library kills the executor's descendants the same way.
 *
 * Persistent-worker mode: setup() starts `/bin/sh -c WORKER_CMD` once and
 * persistent.c feeds it the tasks (docs/protocol.md); cleanup() ends its
 * input and waits.
 */
#define _GNU_SOURCE /* pipe2, execvpe, close_range, memrchr, O_TMPFILE */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

extern char **environ;

/* The end of a failed command's stderr kept in its error message (the
 * library keeps 4 KiB of a message). */
#define ERR_TAIL_MAX 2048

typedef struct cw_state {
	int persistent, shell, quiet;
	int keep_children; /* --keep-children */
	int stderr_lines;  /* --stderr-lines */
	char *out_dir;
	size_t max_line;
	char **words; /* the command template */
	int n_words;
	char *worker_cmd;
	int worker_id;
	/* the environment of the children: base entries, then task id and attempt */
	char **envp;
	size_t n_env;
	cli_prog *prog; /* the persistent program */
} cw_state;

/* ---------------------------------------------------------------- helpers */

static int mkdir_p(const char *path)
{
	char *p = strdup(path);
	int rc = 0;

	if (!p)
		return -1;
	for (char *s = p + 1; *s; s++) {
		if (*s != '/')
			continue;
		*s = '\0';
		if (mkdir(p, 0777) && errno != EEXIST)
			rc = -1;
		*s = '/';
	}
	if (mkdir(p, 0777) && errno != EEXIST)
		rc = -1;
	free(p);
	return rc;
}

/* Variables of the MPI job that must not reach a task: a task that itself
 * uses MPI must start as its own job, not as a clone of the worker rank. */
static int strip_env(const char *e)
{
	if (!strncmp(e, "PMIX_", 5) || !strncmp(e, "PMI_", 4))
		return 1;
	if (!strncmp(e, "OMPI_MCA_", 9))
		return !strncmp(e + 9, "ess", 3) || !strncmp(e + 9, "orte", 4) ||
		       !strncmp(e + 9, "pmix", 4);
	if (!strncmp(e, "OMPI_", 5))
		return strncmp(e, "OMPI_ALLOW_", 11) != 0;
	return !strncmp(e, "GPUDISPATCH_", 12);
}

/* GPUDISPATCH_SETUP_ARGS: the --setup-arg pairs ("setup.KEY") as a JSON object. */
static int setup_args_json(const gd_args *args, cli_buf *b)
{
	int rc = cli_buf_adds(b, "GPUDISPATCH_SETUP_ARGS={");
	int first = 1;

	for (size_t i = 0; args && i < args->n; i++) {
		const char *k = args->kv[i].key, *v = args->kv[i].value;

		if (strncmp(k, "setup.", 6))
			continue;
		rc |= first ? 0 : cli_buf_adds(b, ",");
		rc |= cli_json_str(b, k + 6, strlen(k + 6));
		rc |= cli_buf_adds(b, ":");
		rc |= cli_json_str(b, v, strlen(v));
		first = 0;
	}
	return rc | cli_buf_adds(b, "}");
}

/* "0,1,2,3": the worker's GPUs (node indices, PCI order), "" for none. */
static const char *gpu_list(const gd_worker *w, char *buf, size_t len)
{
	size_t used = 0;

	buf[0] = '\0';
	for (int i = 0; i < gd_worker_gpu_count(w) && used < len; i++)
		used += (size_t)snprintf(buf + used, len - used, "%s%d", i ? "," : "",
		                         gd_worker_gpu_at(w, i)->index);
	return buf;
}

static int build_env(cw_state *cw, const gd_worker *w, const gd_args *args)
{
	char gpus[GD_MAX_WORKER_GPUS * 8];
	size_t n = 0, k = 0;
	const gd_gpu *gpu = gd_worker_gpu(w);
	cli_buf sa = {0};
	int python_buffered = 0;

	for (char **e = environ; *e; e++)
		n++;
	cw->envp = calloc(n + 16, sizeof(char *));
	if (!cw->envp)
		return -1;
	for (char **e = environ; *e; e++) {
		if (strip_env(*e))
			continue;
		if (!strncmp(*e, "PYTHONUNBUFFERED=", 17))
			python_buffered = 1;
		if (!(cw->envp[k++] = strdup(*e)))
			return -1;
	}
	if (asprintf(&cw->envp[k++], "GPUDISPATCH_WORKER_ID=%d", cw->worker_id) < 0 ||
	    asprintf(&cw->envp[k++], "GPUDISPATCH_GPU=%d", gpu ? gpu->index : -1) < 0 ||
	    asprintf(&cw->envp[k++], "GPUDISPATCH_GPU_BUS_ID=%s", gpu ? gpu->bus_id : "") < 0 ||
	    asprintf(&cw->envp[k++], "GPUDISPATCH_GPUS=%s", gpu_list(w, gpus, sizeof(gpus))) < 0 ||
	    asprintf(&cw->envp[k++], "GPUDISPATCH_HOST=%s", gd_worker_host(w)) < 0 ||
	    asprintf(&cw->envp[k++], "GPUDISPATCH_SEED=%" PRIu64, gd_worker_seed(w)) < 0)
		return -1;
	if (setup_args_json(args, &sa) || !(cw->envp[k++] = strdup(sa.p))) {
		cli_buf_free(&sa);
		return -1;
	}
	cli_buf_free(&sa);
	if (cw->persistent && (!(cw->envp[k++] = strdup("GPUDISPATCH_PROTOCOL=2")) ||
	                       !(cw->envp[k++] = strdup("GPUDISPATCH_REQUEST_FD=3")) ||
	                       !(cw->envp[k++] = strdup("GPUDISPATCH_ANSWER_FD=4"))))
		return -1;
	/* a Python program's print() reaches the pipe at once: with the line
	 * protocol an answer left in its buffer would wait forever */
	if (cw->persistent && !python_buffered && !(cw->envp[k++] = strdup("PYTHONUNBUFFERED=1")))
		return -1;
	cw->n_env = k; /* envp[k], envp[k+1]: task id and attempt, set per task */
	return 0;
}

static void set_task_env(cw_state *cw, const gd_task *t)
{
	char **slot = cw->envp + cw->n_env;

	free(slot[0]);
	free(slot[1]);
	if (asprintf(&slot[0], "GPUDISPATCH_TASK_ID=%" PRIu64, t->id) < 0)
		slot[0] = NULL;
	if (asprintf(&slot[1], "GPUDISPATCH_ATTEMPT=%" PRIu32, t->attempt) < 0)
		slot[1] = NULL;
	if (!slot[0]) { /* keep the vector terminated */
		free(slot[1]);
		slot[1] = NULL;
	}
}

/* ---------------------------------------------------------------- command */

static int open_out(const cw_state *cw, uint64_t id, const char *ext)
{
	char path[4096];

	snprintf(path, sizeof(path), "%s/%" PRIu64 ".%s", cw->out_dir, id, ext);
	return open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0666); /* read back for quotes */
}

static int process_command(cw_state *cw, const gd_task *t, const char *line, size_t len,
                           gd_result *r)
{
	char **argv = NULL, err[512], st[96], tail[ERR_TAIL_MAX] = "", msg[ERR_TAIL_MAX + 512];
	int out = -1, errfd = -1, status = 0, rc;
	const char *nul = memchr(line, '\0', len);
	pid_t pid;

	if (nul)
		return gd_result_error(r,
		                       "task line has a NUL byte at byte %zu: a command "
		                       "argument cannot hold one",
		                       (size_t)(nul - line));
	if (cli_expand(cw->words, cw->n_words, cw->shell, line, len, t->id, cw->worker_id, &argv))
		return gd_result_error(r, "out of memory expanding the command");
	set_task_env(cw, t);
	if (cw->out_dir) {
		out = open_out(cw, t->id, "out");
		errfd = open_out(cw, t->id, "err");
	} else {
		out = open("/dev/null", O_RDWR | O_CLOEXEC);
		errfd = cw->quiet ? open("/dev/null", O_RDWR | O_CLOEXEC) : cli_open_tmp();
	}
	if (out < 0 || errfd < 0) {
		rc = gd_result_error(r, "cannot open the output files%s%s: %s",
		                     cw->out_dir ? " in " : "", cw->out_dir ? cw->out_dir : "",
		                     strerror(errno));
		goto out;
	}
	{
		int in = open("/dev/null", O_RDONLY | O_CLOEXEC);

		int fds[5] = {in, out, errfd, -1, -1};

		pid = cli_spawn(argv, cw->envp, fds, err, sizeof(err));
		if (in >= 0)
			close(in);
	}
	if (pid < 0) {
		rc = gd_result_error(r, "%s", err);
		goto out;
	}
	if (cli_wait_child(pid, &status) < 0) {
		rc = gd_result_error(r, "waitpid: %s", strerror(errno));
		goto out;
	}
	/* the task is over: so is every process it started (docs/cli.md) */
	cli_end_leftovers(!cw->keep_children);
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
		rc = 0;
		goto out;
	}
	cli_describe_status(status, st, sizeof(st));
	cli_result_exit(r, status);
	if (!cw->quiet)
		cli_tail_lines(errfd, 0, cw->stderr_lines, "\n", tail, sizeof(tail));
	snprintf(err, sizeof(err), "command %s", st);
	cli_stderr_message(msg, sizeof(msg), err, tail);
	rc = gd_result_error(r, "%s", msg);
out:
	if (out >= 0)
		close(out);
	if (errfd >= 0)
		close(errfd);
	free(argv);
	return rc;
}

/* ------------------------------------------------------------ the class */

static void cw_free(cw_state *cw)
{
	if (!cw)
		return;
	cli_prog_free(cw->prog);
	for (int i = 0; i < cw->n_words; i++)
		free(cw->words[i]);
	free(cw->words);
	if (cw->envp)
		for (size_t i = 0; i < cw->n_env + 2; i++)
			free(cw->envp[i]);
	free(cw->envp);
	free(cw->out_dir);
	free(cw->worker_cmd);
	free(cw);
}

static int cw_setup(gd_worker *w, const gd_args *args)
{
	cw_state *cw = calloc(1, sizeof(*cw));
	const char *mode = gd_args_get(args, "mode"), *v;
	char err[512];

	if (!cw) {
		gd_worker_set_error(w, "out of memory");
		return -1;
	}
	gd_worker_set_data(w, cw);
	/* a persistent program that dies must not take the executor with it */
	signal(SIGPIPE, SIG_IGN);
	cw->worker_id = gd_worker_id(w);
	cw->persistent = mode && !strcmp(mode, "persistent");
	cw->shell = (v = gd_args_get(args, "shell")) && !strcmp(v, "1");
	cw->quiet = (v = gd_args_get(args, "quiet")) && !strcmp(v, "1");
	cw->keep_children = (v = gd_args_get(args, "keep_children")) && !strcmp(v, "1");
	cw->max_line = (v = gd_args_get(args, "max_line")) ? strtoull(v, NULL, 10) : 0;
	if (!cw->max_line)
		cw->max_line = CLI_DEFAULT_MAX_LINE;
	cw->stderr_lines =
	        (v = gd_args_get(args, "stderr_lines")) ? atoi(v) : CLI_DEFAULT_STDERR_LINES;
	if (cw->stderr_lines < 0 || cw->stderr_lines > CLI_MAX_STDERR_LINES)
		cw->stderr_lines = CLI_DEFAULT_STDERR_LINES;
	if ((v = gd_args_get(args, "output_dir")) && !(cw->out_dir = strdup(v)))
		goto oom;
	if (cw->out_dir && mkdir_p(cw->out_dir)) {
		gd_worker_set_error(w, "cannot create --output-dir %s: %s", cw->out_dir,
		                    strerror(errno));
		return -1;
	}
	v = gd_args_get(args, "argc");
	cw->n_words = v ? atoi(v) : 0;
	if (cw->n_words < 0 || cw->n_words > 100000)
		cw->n_words = 0;
	if (cw->n_words && !(cw->words = calloc((size_t)cw->n_words, sizeof(char *))))
		goto oom;
	for (int i = 0; i < cw->n_words; i++) {
		char key[32];

		snprintf(key, sizeof(key), "arg%d", i);
		v = gd_args_get(args, key);
		if (!(cw->words[i] = strdup(v ? v : "")))
			goto oom;
	}
	if (build_env(cw, w, args))
		goto oom;
	if (!cw->persistent) {
		if (!cw->n_words && !cw->shell) {
			gd_worker_set_error(w, "no command given (setup argument argc is 0)");
			return -1;
		}
		return 0;
	}
	v = gd_args_get(args, "worker_cmd");
	if (!v || !(cw->worker_cmd = strdup(v)))
		goto oom;
	{
		cli_prog_cfg pc = {.cmd = cw->worker_cmd,
		                   .envp = cw->envp,
		                   .worker_id = cw->worker_id,
		                   .quiet = cw->quiet,
		                   .out_dir = cw->out_dir,
		                   .max_line = cw->max_line};

		pc.max_start_failures =
		        (v = gd_args_get(args, "start_failures")) ? (unsigned)atoi(v) : 0;
		pc.setup_timeout = (v = gd_args_get(args, "setup_timeout")) ? strtod(v, NULL) : 0;
		if (cli_prog_open(&cw->prog, &pc, err, sizeof(err))) {
			gd_worker_set_error(w, "cannot start worker program '%s': %s",
			                    cw->worker_cmd, err);
			return -1;
		}
	}
	return 0;
oom:
	gd_worker_set_error(w, "out of memory in setup");
	return -1;
}

static int cw_process(gd_worker *w, const gd_task *t, gd_result *r)
{
	cw_state *cw = gd_worker_data(w);
	const char *data = t->data;

	if (!cw)
		return gd_result_error(r, "the worker was not set up");
	if (t->len < 1)
		return gd_result_error(r, "empty task (no kind byte)");
	switch (data[0]) {
	case CLI_TASK_LINE:
		break;
	case CLI_TASK_BAD:
		return gd_result_error(r, "%.*s", (int)(t->len - 1), data + 1);
	case CLI_TASK_SKIP:
		return 0; /* never sent: cfg.skip refuses them */
	default:
		return gd_result_error(r, "unknown task kind byte 0x%02x",
		                       (unsigned)(unsigned char)data[0]);
	}
	if (cw->persistent)
		return cli_prog_task(cw->prog, w, t, data + 1, t->len - 1, r);
	return process_command(cw, t, data + 1, t->len - 1, r);
}

static int cw_cleanup(gd_worker *w)
{
	cw_state *cw = gd_worker_data(w);
	int rc = 0;

	if (!cw)
		return 0;
	if (cw->prog) {
		rc = cli_prog_close(cw->prog, w); /* frees it */
		cw->prog = NULL;
	}
	cw_free(cw);
	gd_worker_set_data(w, NULL);
	return rc;
}

const gd_worker_class cli_worker_class = {
        .name = "gpudispatch-cli",
        .setup = cw_setup,
        .process = cw_process,
        .cleanup = cw_cleanup,
};
