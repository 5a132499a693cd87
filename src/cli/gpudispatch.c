/*
 * gpudispatch - the command.  A user of the public API (gpudispatch.h):
 * rank 0 reads the task file as a stream and writes the results file from
 * the callbacks; every rank runs the worker class of cmdworker.c.
 *
 *   mpirun -n 9 gpudispatch run --tasks tasks.txt -- python infer.py --input {}
 *
 * See docs/cli.md (and --help) for the options, the results format, the
 * persistent-worker line protocol and the exit statuses.
 */
#define _GNU_SOURCE /* pipe2, execvpe, close_range, memrchr, O_TMPFILE */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

/*
 * The one global: set by the signal handler on rank 0 and read by the
 * dispatcher through cfg.stop_flag.  1 = drain (hand out no more tasks, let
 * those in flight finish), 2 = stop now.
 */
static volatile sig_atomic_t stop_flag;

static void on_stop_signal(int sig)
{
	(void)sig;
	if (stop_flag < 2)
		stop_flag = stop_flag + 1;
}

/* Rank 0's state: the task reader and the results file. */
typedef struct app {
	cli_opts o;
	cli_reader rd;
	cli_buf task;        /* the encoded task being produced */
	int read_err;        /* errno of a read error of the task file */
	cli_buf extra;       /* journal_extra's scratch */
	char setup_msg[256]; /* first setup failure, for the final message */
	int n_setup_fail;    /* setup failures, and how many of them were placement's */
	int n_place_fail;
	int say_setup_fail; /* print setup failures as they happen */
	cli_status status;  /* RESULTS.status */
	cli_lock lock;      /* the results file's, held by rank 0 */
	int lost;           /* a rank was lost: the run ends without MPI_Finalize() */
} app;

/* ---------------------------------------------------------------- helpers */

static int is_rank0_by_env(void)
{
	static const char *const vars[] = {"OMPI_COMM_WORLD_RANK", "PMIX_RANK", "PMI_RANK",
	                                   "SLURM_PROCID"};

	for (size_t i = 0; i < sizeof(vars) / sizeof(vars[0]); i++) {
		const char *v = getenv(vars[i]);

		if (v && *v)
			return atoi(v) == 0;
	}
	return 1;
}

/* The first line a command prints, without its newline ("" when none). */
static void first_line(const char *cmd, char *buf, size_t size)
{
	FILE *p = popen(cmd, "r");

	buf[0] = '\0';
	if (!p)
		return;
	if (!fgets(buf, (int)size, p))
		buf[0] = '\0';
	pclose(p);
	buf[strcspn(buf, "\r\n")] = '\0';
}

/*
 * Inside a Slurm job: when the job ends (seconds since the epoch), from
 * SLURM_JOB_END_TIME where Slurm sets it, else from squeue, else from
 * scontrol.  \return 0 with *end and how it was found in how, or -1 (not
 * in a job, no time limit, or Slurm could not say).
 */
static int slurm_end_time(double *end, char *how, size_t howlen)
{
	const char *id = getenv("SLURM_JOB_ID"), *v = getenv("SLURM_JOB_END_TIME");
	char cmd[256], line[512], *p;
	double now = (double)time(NULL);

	if (!id || !*id || strspn(id, "0123456789_") != strlen(id))
		return -1;
	if (v && *v && !cli_parse_time(v, now, end) && *end > 0) {
		snprintf(how, howlen, "SLURM_JOB_END_TIME");
		return 0;
	}
	/* a slurmctld that does not answer must not hold the run up */
	snprintf(cmd, sizeof(cmd), "timeout 15 squeue -h -j %s -o %%e 2>/dev/null", id);
	first_line(cmd, line, sizeof(line));
	if (line[0] && !cli_parse_time(line, now, end)) {
		snprintf(how, howlen, "squeue");
		return 0;
	}
	snprintf(cmd, sizeof(cmd), "timeout 15 scontrol show job -o %s 2>/dev/null", id);
	first_line(cmd, line, sizeof(line));
	if ((p = strstr(line, " EndTime=")) != NULL) {
		p += strlen(" EndTime=");
		p[strcspn(p, " ")] = '\0';
		if (!cli_parse_time(p, now, end)) {
			snprintf(how, howlen, "scontrol");
			return 0;
		}
	}
	return -1;
}

/* The run's deadline: --deadline, else the Slurm job's end, else none. */
static double find_deadline(const cli_opts *o)
{
	char how[32], when[32] = "?";
	double end = 0;

	if (o->no_deadline)
		return 0;
	if (o->deadline > 0)
		return o->deadline;
	if (slurm_end_time(&end, how, sizeof(how)))
		return 0;
	time_t t = (time_t)end;
	struct tm tm;
	if (localtime_r(&t, &tm))
		strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
	fprintf(stderr,
	        "gpudispatch: Slurm job %s ends at %s (%s): that is the deadline "
	        "(--deadline none: no deadline)\n",
	        getenv("SLURM_JOB_ID"), when, how);
	return end;
}

/* Number of tasks that will run: a pass over a regular file, else 0. */
static uint64_t count_tasks(const app *a)
{
	struct stat st;
	cli_reader r;
	cli_line l;
	uint64_t n = 0;

	if (!strcmp(a->o.tasks, "-") || stat(a->o.tasks, &st) || !S_ISREG(st.st_mode) ||
	    st.st_size > (256 << 20))
		return 0;
	if (cli_reader_open(&r, a->o.tasks, a->o.max_line))
		return 0;
	while (cli_reader_next(&r, &l) == 1)
		if (!cli_line_skipped(l.data, l.len))
			n++;
	cli_reader_close(&r);
	return n;
}

/* ------------------------------------------------------------- generator */

static int gen(void *state, gd_buf *b)
{
	app *a = state;
	cli_line l;
	int rc = cli_reader_next(&a->rd, &l);

	if (rc == 0)
		return 0;
	if (rc < 0) {
		a->read_err = -rc;
		return -1;
	}
	if (cli_task_encode(&l, a->o.tasks, &a->task)) {
		a->read_err = ENOMEM;
		return -1;
	}
	if (gd_buf_set(b, a->task.p, a->task.len)) {
		/* over the library's message limit: a failed task, not a failed run */
		a->task.len = 0;
		if (cli_buf_printf(&a->task,
		                   "%cline %" PRIu64 " is %zu bytes, more than one task "
		                   "message may carry; lower --max-line",
		                   CLI_TASK_BAD, l.index + 1, l.len) ||
		    gd_buf_set(b, a->task.p, a->task.len)) {
			a->read_err = ENOMEM;
			return -1;
		}
	}
	return 1;
}

static int skip(void *user, uint64_t id, const void *data, size_t len)
{
	(void)user;
	(void)id;
	/* a blank or comment line: it keeps its id, never runs */
	return len >= 1 && *(const char *)data == CLI_TASK_SKIP;
}

/* ------------------------------------------------------------- results */

/*
 * The task line as the record's "task": its first CLI_TASK_KEEP bytes (cut
 * where a UTF-8 character starts), with "task_len" when it was cut.
 */
static void add_task(gd__jsonw *w, const char *line, size_t len)
{
	size_t keep = len;

	if (len > CLI_TASK_KEEP) {
		keep = CLI_TASK_KEEP;
		for (int k = 0; k < 3 && keep && ((unsigned char)line[keep] & 0xc0) == 0x80; k++)
			keep--;
	}
	gd__jsonw_key(w, "task");
	gd__jsonw_str(w, line, keep);
	if (keep < len) {
		gd__jsonw_key(w, "task_len");
		gd__jsonw_uint(w, len);
	}
}

/*
 * The results file is the library's journal (cfg.journal): one JSON line per
 * finished task with id, status, digest, attempt, worker, host, gpu, bus_id,
 * start, end, duration and error, written by the library before on_success /
 * on_error / on_timeout, checksummed, durable every second, and read back by
 * --resume.  The command adds its own members here: the command's exit status
 * or signal, a persistent worker's result, the error's further lines and the
 * task line.
 */
static size_t journal_extra(void *user, const gd_event *ev, char *buf, size_t size)
{
	app *a = user;
	cli_buf *b = &a->extra;
	int exit_status = -1, signo = -1;
	gd__jsonw w;
	size_t n;

	if (ev->type == GD_EV_SUCCESS) {
		exit_status = a->o.worker_cmd ? -1 : 0;
	} else if (ev->type == GD_EV_ERROR) {
		exit_status = ev->exit.status;
		signo = ev->exit.signal > 0 ? ev->exit.signal : -1;
	}
	b->len = 0;
	cli_jsonw_members(&w, b);
	gd__jsonw_key(&w, "exit_status");
	if (exit_status >= 0)
		gd__jsonw_int(&w, exit_status);
	else
		gd__jsonw_null(&w);
	gd__jsonw_key(&w, "signal");
	if (signo >= 0)
		gd__jsonw_int(&w, signo);
	else
		gd__jsonw_null(&w);
	if (a->o.worker_cmd && ev->type == GD_EV_SUCCESS && ev->len >= 1) {
		const char *res = (const char *)ev->data + 1;
		size_t rl = ev->len - 1;

		switch (*(const char *)ev->data) {
		case CLI_RESULT_JSON: /* checked on the worker */
			gd__jsonw_key(&w, "result");
			gd__jsonw_json(&w, res, rl);
			break;
		case CLI_RESULT_LINE: /* protocol 1: a line that is JSON stays JSON */
			gd__jsonw_key(&w, "result");
			if (rl && cli_json_valid(res, rl, NULL))
				gd__jsonw_json(&w, res, rl);
			else
				gd__jsonw_str(&w, res, rl);
			break;
		case CLI_RESULT_BYTES:
			if (!cli_utf8_valid(res, rl)) {
				cli_buf b64 = {0};

				if (cli_base64(&b64, res, rl))
					w.err = -1;
				gd__jsonw_key(&w, "result_base64");
				gd__jsonw_str(&w, b64.p ? b64.p : "", b64.len);
				cli_buf_free(&b64);
				break;
			}
			/* fall through */
		default:
			gd__jsonw_key(&w, "result");
			gd__jsonw_str(&w, res, rl);
		}
	}
	if (ev->type != GD_EV_SUCCESS && ev->message && strchr(ev->message, '\n')) {
		/* the error member holds the first line; the rest (a traceback) */
		const char *rest = strchr(ev->message, '\n') + 1;

		gd__jsonw_key(&w, "details");
		gd__jsonw_str(&w, rest, strlen(rest));
	}
	if (ev->task_len >= 1 && *(const char *)ev->task_data == CLI_TASK_LINE)
		add_task(&w, (const char *)ev->task_data + 1, ev->task_len - 1);
	if (gd__jsonw_flush(&w))
		return 0; /* out of memory: the record goes without these members */
	if (!b->p)
		return 0;
	if (b->len >= size)
		return b->len; /* the library calls again with a buffer that fits */
	n = b->len;
	memcpy(buf, b->p, n);
	return n;
}

/* The status file (status.c): written from the observers, the core knows
 * nothing of it. */
static void on_task_failed(void *user, const gd_event *ev)
{
	cli_status_failure(&((app *)user)->status, ev);
}

static void on_tick(void *user, const gd_stats *st)
{
	cli_status_tick(&((app *)user)->status, st);
}

static void on_setup_fail(void *user, const gd_event *ev)
{
	app *a = user;

	/* the other workers carry on: say it now, unless the dashboard owns
	 * the terminal (it shows the message in the worker's row) */
	if (a->say_setup_fail)
		fprintf(stderr, "gpudispatch: worker %d: %s\n", ev->worker_id,
		        ev->message ? ev->message : "setup failed");

	if (!a->setup_msg[0])
		snprintf(a->setup_msg, sizeof(a->setup_msg), "worker %d: %s", ev->worker_id,
		         ev->message ? ev->message : "");
	a->n_setup_fail++;
	a->n_place_fail += ev->message && !strncmp(ev->message, "placement: ", 11);
}

/*
 * Lock the results file (lock.c), then check that it can be written.  A
 * fresh run starts it afresh only with --force when it holds anything: a
 * forgotten --resume must not lose an earlier run's results (the library,
 * too, refuses a fresh run on a journal that holds records).  Locked first,
 * so that a second run never truncates the file of one in progress.
 * \return 0, or -1 with a message.
 */
static int open_results(app *a, char *err, size_t errlen)
{
	struct stat st;
	int fd;

	if (!a->o.results)
		return 0;
	if (!stat(a->o.results, &st) && S_ISDIR(st.st_mode)) {
		snprintf(err, errlen, "cannot open results file %s: it is a directory",
		         a->o.results);
		return -1;
	}
	if (cli_results_lock(&a->lock, a->o.results, err, errlen))
		return -1;
	fd = open(a->o.results, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0) {
		snprintf(err, errlen, "cannot open results file %s: %s", a->o.results,
		         strerror(errno));
		return -1;
	}
	if (!a->o.resume && !fstat(fd, &st) && S_ISREG(st.st_mode) && st.st_size > 0) {
		if (!a->o.force) {
			snprintf(
			        err, errlen,
			        "results file %s already holds %lld bytes of records: use --resume "
			        "to continue that run, or --force to replace the file",
			        a->o.results, (long long)st.st_size);
			close(fd);
			return -1;
		}
		if (ftruncate(fd, 0)) {
			snprintf(err, errlen, "cannot replace results file %s: %s", a->o.results,
			         strerror(errno));
			close(fd);
			return -1;
		}
	}
	close(fd);
	return 0;
}

/* Print a library message with its configuration names as the command's
 * options (workers_per_gpu -> --workers-per-gpu). */
static void say_option_names(const char *msg)
{
	const char *p;

	while ((p = strstr(msg, "workers_per_gpu"))) {
		fprintf(stderr, "%.*s--workers-per-gpu", (int)(p - msg), msg);
		msg = p + strlen("workers_per_gpu");
		if (!strncmp(msg, " >= ", 4))
			msg += 3; /* "--workers-per-gpu 2" */
	}
	fputs(msg, stderr);
}

/* ------------------------------------------------------------------ main */

static void fill_config(const app *a, const cli_kv_store *kv, gd_config *cfg, gd_ui_options *ui)
{
	const cli_opts *o = &a->o;
	const char *shm = getenv("GPUDISPATCH_SHM");

	gd_config_init(cfg, sizeof(*cfg));
	/* GPUDISPATCH_SHM=0: every large task through MPI (a check, or a node
	 * whose /proc or memfds misbehave) */
	if (shm && !strcmp(shm, "0"))
		cfg->shm = 0;
	if (o->window)
		cfg->window = o->window;
	cfg->task_timeout = o->timeout;
	cfg->setup_timeout = o->setup_timeout;
	if (o->heartbeat_set)
		cfg->heartbeat_timeout = o->heartbeat_timeout;
	cfg->base_seed = o->seed;
	cfg->retries = o->retries;
	cfg->setup_args = kv ? kv->kv : NULL;
	cfg->n_setup_args = kv ? kv->n : 0;
	cfg->placement = o->placement;
	if (o->n_gpu_ids) {
		cfg->gpu_ids = o->gpu_ids;
		cfg->n_gpu_ids = o->n_gpu_ids;
	}
	if (o->workers_per_gpu)
		cfg->workers_per_gpu = o->workers_per_gpu;
	if (o->gpus_per_worker)
		cfg->gpus_per_worker = o->gpus_per_worker;
	cfg->quarantine = o->quarantine;
	gd_ui_options_init(ui, sizeof(*ui));
	ui->mode = o->ui;
	/* the dashboard reads keys from rank 0's standard input: not when the
	 * tasks come from there */
	if (!strcmp(o->tasks ? o->tasks : "", "-") &&
	    (ui->mode == GD_UI_AUTO || ui->mode == GD_UI_TUI))
		ui->mode = GD_UI_TEXT;
	if (o->refresh > 0)
		ui->refresh_hz = o->refresh;
	ui->monochrome = o->monochrome;
	cfg->stop_flag = &stop_flag;
	cfg->grace_s = o->grace;
	cfg->journal = o->results;
	if (o->resume)
		cfg->resume = o->skip_failed ? GD_RESUME_SKIP_FAILED : GD_RESUME_RETRY_FAILED;
	cfg->resume_force = o->resume_force;
	cfg->halt = o->halt;
	cfg->halt_on = o->halt_on;
	cfg->halt_count = o->halt_count;
	cfg->halt_percent = o->halt_percent;
	cfg->deadline_margin = o->deadline_margin;
	cfg->task_time = o->task_time;
}

/* Rank 0's checks before the run: everything that is bad input. */
static int prepare(app *a, char *err, size_t errlen)
{
	struct stat st;
	int rc;

	if (strcmp(a->o.tasks, "-") && !stat(a->o.tasks, &st) && S_ISDIR(st.st_mode)) {
		snprintf(err, errlen, "cannot read task file %s: it is a directory", a->o.tasks);
		return -1;
	}
	rc = cli_reader_open(&a->rd, a->o.tasks, a->o.max_line);
	if (rc) {
		snprintf(err, errlen, "cannot read task file %s: %s", a->o.tasks, strerror(-rc));
		return -1;
	}
	return open_results(a, err, errlen);
}

static int run(app *a, int rank)
{
	char err[512] = "";
	int status = 0, rc, exit_code;
	cli_kv_store kv = {0};
	gd_config cfg;
	gd_ui_options ui;
	gd_callbacks cb = {.size = sizeof(cb)};
	gd_stats stats = GD_STATS_INIT;
	struct sigaction sa = {0};

	if (rank == 0 && prepare(a, err, sizeof(err)))
		status = CLI_EXIT_USAGE;
	if (rank == 0 && !status && cli_kv_build(&a->o, &kv)) {
		snprintf(err, sizeof(err), "out of memory");
		status = CLI_EXIT_ERROR;
	}
	/* every rank learns whether rank 0 could start */
	MPI_Bcast(&status, 1, MPI_INT, 0, MPI_COMM_WORLD);
	if (status) {
		if (rank == 0)
			fprintf(stderr, "gpudispatch: %s\n", err);
		goto out;
	}

	if (rank == 0) {
		sa.sa_handler = on_stop_signal;
		sigemptyset(&sa.sa_mask);
		sa.sa_flags = SA_RESTART;
		sigaction(SIGINT, &sa, NULL);
		sigaction(SIGTERM, &sa, NULL);
		sigaction(SIGUSR1, &sa, NULL);
	} else {
		/* mpirun and srun forward SIGTERM/SIGUSR1 to every rank: the
		 * workers leave the stop to rank 0, which drains the run */
		signal(SIGINT, SIG_IGN);
		signal(SIGTERM, SIG_IGN);
		signal(SIGUSR1, SIG_IGN);
	}

	fill_config(a, &kv, &cfg, &ui);
	if (rank == 0) {
		cfg.total_hint = count_tasks(a);
		cfg.deadline = find_deadline(&a->o);
		cfg.skip = skip;
		cfg.skip_user = a;
		cfg.journal_extra = journal_extra;
		cfg.journal_extra_user = a;
	}
	cb.on_setup_fail = on_setup_fail;
	if (rank == 0 && a->o.results && a->o.status_interval > 0) {
		if (cli_status_open(&a->status, a->o.results, a->o.status_interval))
			fprintf(stderr,
			        "gpudispatch: %s: the name is too long for its status file\n",
			        a->o.results);
		cb.on_error = on_task_failed;
		cb.on_timeout = on_task_failed;
		cb.on_tick = on_tick;
	}
	a->say_setup_fail =
	        ui.mode == GD_UI_NONE || ui.mode == GD_UI_TEXT || !isatty(STDOUT_FILENO);
	cb.user = a;

	rc = gd_ui_run(MPI_COMM_WORLD, &cli_worker_class, gen, a, &cb, &cfg, &ui, &stats);
	if (rank == 0)
		cli_status_close(&a->status, &stats, rc);
	if (rc == GD_ELOST)
		a->lost = 1; /* main() ends the job: MPI_Finalize() would wait for the lost */
	if (rank != 0) {
		status = 0; /* rank 0's status is the job's */
		goto out;
	}
	if (stats.halted && (rc == 0 || rc == GD_EINTR)) {
		/* the --halt condition stopped the run: exit 1 for fail=, 0 for success= */
		exit_code = a->o.halt_on == GD_HALT_ON_SUCCESS ? CLI_EXIT_OK : CLI_EXIT_FAILED;
		fprintf(stderr,
		        "gpudispatch: halted (--halt %s): %" PRIu64 " succeeded, %" PRIu64
		        " failed, %" PRIu64 " timed out, %" PRIu64 " abandoned in flight%s%s\n",
		        a->o.halt_spec, stats.completed, stats.failed, stats.timed_out,
		        stats.not_done, rc ? "; run again with --resume to run the rest" : "",
		        rc && !a->o.results ? " and --results FILE" : "");
		goto done;
	}
	switch (rc) {
	case 0:
		exit_code = stats.failed || stats.timed_out ? CLI_EXIT_FAILED : CLI_EXIT_OK;
		if (exit_code)
			fprintf(stderr,
			        "gpudispatch: %" PRIu64 " of %" PRIu64 " tasks failed and %" PRIu64
			        " timed out%s%s\n",
			        stats.failed, stats.total, stats.timed_out,
			        a->o.results ? "; see " : "", a->o.results ? a->o.results : "");
		break;
	case GD_EINTR:
		exit_code = CLI_EXIT_INTERRUPTED;
		if (stats.deadline_stop) {
			fprintf(stderr,
			        "gpudispatch: deadline: %" PRIu64 " tasks finished, %" PRIu64
			        " held back (they would not have ended in time), %" PRIu64
			        " abandoned in flight; run again with --resume%s to run the rest\n",
			        stats.completed + stats.failed + stats.timed_out, stats.held_back,
			        stats.not_done, a->o.results ? "" : " and --results FILE");
			break;
		}
		fprintf(stderr,
		        "gpudispatch: interrupted: %" PRIu64 " tasks finished, %" PRIu64
		        " abandoned in flight; run again with --resume%s to run the rest\n",
		        stats.completed + stats.failed + stats.timed_out, stats.not_done,
		        a->o.results ? "" : " and --results FILE");
		break;
	case GD_ELOST:
		exit_code = CLI_EXIT_INTERRUPTED;
		fprintf(stderr,
		        "gpudispatch: stopped: %d worker(s) lost (the message above names the "
		        "host): "
		        "%" PRIu64 " tasks finished, %" PRIu64
		        " abandoned in flight; run again with --resume%s to run the rest\n",
		        stats.n_lost, stats.completed + stats.failed + stats.timed_out,
		        stats.not_done, a->o.results ? "" : " and --results FILE");
		break;
	case GD_ENOWORKER:
		exit_code = CLI_EXIT_USAGE;
		fprintf(stderr, "gpudispatch: %s\n", gd_strerror(rc));
		break;
	case GD_EGENERATOR:
	case GD_EDIGEST:
		if (a->read_err) {
			exit_code = CLI_EXIT_ERROR;
			fprintf(stderr, "gpudispatch: error reading task file %s: %s\n", a->o.tasks,
			        strerror(a->read_err));
		} else {
			/* the library stopped the generator: a task differs from
			 * the one in the results file (the message above says which) */
			exit_code = CLI_EXIT_USAGE;
			fprintf(stderr,
			        "gpudispatch: %s changed since %s was written; use --resume-force "
			        "to run the changed tasks anyway, or remove %s to start over\n",
			        a->o.tasks, a->o.results ? a->o.results : "the results file",
			        a->o.results ? a->o.results : "it");
		}
		break;
	case GD_EJOURNAL:
		exit_code = CLI_EXIT_ERROR;
		fprintf(stderr,
		        "gpudispatch: the results file %s could not be read or written "
		        "(the message above says why)\n",
		        a->o.results);
		break;
	case GD_EALLSETUP:
		/* no worker could be placed (too many ranks for the GPUs, a bad
		 * --gpus or *_VISIBLE_DEVICES): the input is wrong, nothing ran */
		exit_code = a->n_setup_fail && a->n_place_fail == a->n_setup_fail ? CLI_EXIT_USAGE
		                                                                  : CLI_EXIT_ERROR;
		if (exit_code == CLI_EXIT_USAGE) {
			fprintf(stderr,
			        "gpudispatch: GPU placement failed on every worker, nothing ran: ");
			say_option_names(a->setup_msg);
			fprintf(stderr,
			        "\ngpudispatch: start fewer worker ranks per node, let workers "
			        "share a GPU with --workers-per-gpu N, or run without GPUs "
			        "with --no-placement\n");
			break;
		}
		fprintf(stderr, "gpudispatch: %s%s%s\n", gd_strerror(rc),
		        a->setup_msg[0] ? ": " : "", a->setup_msg);
		break;
	default:
		exit_code = CLI_EXIT_ERROR;
		fprintf(stderr, "gpudispatch: the run failed: %s (%s)\n", gd_strerror(rc),
		        gd_err_name(rc));
	}
done:
	status = exit_code;
out:
	cli_results_unlock(&a->lock);
	gd_stats_free(&stats);
	cli_kv_free(&kv);
	cli_reader_close(&a->rd);
	cli_buf_free(&a->task);
	cli_buf_free(&a->extra);
	return status;
}

static int placement(const cli_opts *o)
{
	gd_config cfg;
	int rc;

	gd_config_init(&cfg, sizeof(cfg));
	cfg.placement = o->placement;
	if (o->n_gpu_ids) {
		cfg.gpu_ids = o->gpu_ids;
		cfg.n_gpu_ids = o->n_gpu_ids;
	}
	if (o->workers_per_gpu)
		cfg.workers_per_gpu = o->workers_per_gpu;
	if (o->gpus_per_worker)
		cfg.gpus_per_worker = o->gpus_per_worker;
	rc = gd_placement_report(MPI_COMM_WORLD, &cfg, o->json, stdout);
	fflush(stdout);
	if (rc) {
		int rank = 0;

		MPI_Comm_rank(MPI_COMM_WORLD, &rank);
		if (rank == 0)
			fprintf(stderr, "gpudispatch placement: %s\n", gd_strerror(rc));
		/* a placement error is one of input: the rank count, --gpus, the
		 * *_VISIBLE_DEVICES variables */
		return rc == GD_ENOWORKER || rc == GD_EINVAL || rc == GD_EPLACEMENT
		               ? CLI_EXIT_USAGE
		               : CLI_EXIT_ERROR;
	}
	return 0;
}

int main(int argc, char **argv)
{
	app a;
	char err[512];
	int rank = 0, status;

	memset(&a, 0, sizeof(a));
	a.rd.fd = -1;
	a.lock.fd = -1;
	/* reading a results file needs no MPI job */
	if (argc >= 2 && !strcmp(argv[1], "results"))
		return cli_results_main(argc - 2, argv + 2);
	if (argc >= 2 && !strcmp(argv[1], "status"))
		return cli_status_main(argc - 2, argv + 2);
	/* usage errors are found identically on every rank, before MPI starts;
	 * only rank 0 says so and exits 2, which the launcher passes on. The
	 * others exit 0: a rank that exited 2 first would make mpirun kill
	 * rank 0 before it had said what was wrong. */
	if (cli_parse_args(argc, argv, &a.o, err, sizeof(err))) {
		if (!is_rank0_by_env())
			return 0;
		fprintf(stderr, "gpudispatch: %s\nTry 'gpudispatch --help'.\n", err);
		return CLI_EXIT_USAGE;
	}
	if (a.o.cmd == CLI_CMD_HELP || a.o.cmd == CLI_CMD_VERSION) {
		if (!is_rank0_by_env())
			return 0;
		if (a.o.cmd == CLI_CMD_HELP)
			cli_usage(stdout);
		else
			printf("gpudispatch %s\n", gd_version());
		return 0;
	}
	if (gd_init(&argc, &argv)) {
		fprintf(stderr, "gpudispatch: MPI could not be initialised\n");
		return CLI_EXIT_ERROR;
	}
	MPI_Comm_rank(MPI_COMM_WORLD, &rank);
	if (a.o.cmd == CLI_CMD_PLACEMENT)
		status = placement(&a.o);
	else
		status = run(&a, rank);
	fflush(stdout);
	if (a.lost) {
		/* a rank was lost: MPI_Finalize() may wait for it forever.  Rank 0
		 * has flushed the results file and said why: it ends the job with
		 * its status.  The other ranks wait for that (leaving first would
		 * make the launcher kill rank 0 before it is done), then leave. */
		fflush(stderr);
		if (rank == 0)
			MPI_Abort(MPI_COMM_WORLD, status);
		sleep(5);
		_exit(CLI_EXIT_INTERRUPTED);
	}
	gd_finalize();
	return status;
}
