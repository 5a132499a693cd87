/*
 * The `gpudispatch` command (internal).  The command is a user of the public
 * API: this header only ties its files together.
 *
 * Pure code without MPI, unit-tested by tests/test_cli_tasks.c:
 *   buf.c          cli_buf, the growable byte string
 *   options.c      the command line: option table, parsing, checks, --help
 *   task_source.c  the task-file reader and task encoding
 *   template.c     the command template: `{}` substitution, shell quoting
 *   json.c         JSON escaping and checking, UTF-8, base64
 *   error_text.c   a failed task's error message: its first line
 *   setup_args.c   cli_opts as the worker class's setup arguments
 *   results.c      `gpudispatch results`: the final records of a results file
 * The rest:
 *   cmdworker.c  the worker class: command mode and persistent-worker mode
 *                (runs in the executor process on every worker)
 *   persistent.c a persistent worker program (docs/protocol.md)
 *   process.c    the processes both start: spawn, wait, kill the tree, logs
 *   gpudispatch.c  main(): MPI, the generator, the callbacks that write the
 *                results file, signals, exit status
 */
#ifndef GD_CLI_H
#define GD_CLI_H

#include <stddef.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "gpudispatch_ui.h"
#include "ui_reasons.h"
#include "../jsonw.h" /* the project's JSON writer, compiled in */

/* Exit statuses of the command (documented in docs/cli.md). */
enum {
	CLI_EXIT_OK = 0,          /* every task succeeded */
	CLI_EXIT_FAILED = 1,      /* some task failed or timed out */
	CLI_EXIT_USAGE = 2,       /* bad usage or input: nothing ran */
	CLI_EXIT_INTERRUPTED = 3, /* stopped by a signal: resumable */
	CLI_EXIT_ERROR = 4,       /* the run itself failed (setup everywhere, I/O, MPI) */
};

/* Most --setup-arg options a run takes. */
#define CLI_MAX_SETUP_ARGS 256
/* Default for --start-failures: starts in a row that never answered. */
#define CLI_DEFAULT_START_FAILURES 3

/* A results record holds this many bytes of its task line ("task"). */
#define CLI_TASK_KEEP 4096

/* Default for --max-line: longer task lines are a per-task error. */
#define CLI_DEFAULT_MAX_LINE (1024 * 1024)

/* ------------------------------------------------------ byte buffer: buf.c */

/* A growable byte string, always NUL-terminated after len bytes. */
typedef struct cli_buf {
	char *p;
	size_t len, cap;
} cli_buf;

int cli_buf_add(cli_buf *b, const void *data, size_t n); /* 0 or -1 (ENOMEM) */
int cli_buf_adds(cli_buf *b, const char *s);
int cli_buf_printf(cli_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void cli_buf_free(cli_buf *b);

/* ------------------------------------------------------ results.c */

/* `gpudispatch results ARGS...` (argv[0] is the first after "results"):
 * prints the final records of a results file.  \return the exit status. */
int cli_results_main(int argc, char **argv);

/* ------------------------------------------- the status file: status.c */

/* Rank 0's writer of RESULTS.status (docs/cli.md, "Watching a run"). */
typedef struct cli_status {
	int on;
	char path[4096], tmp[4104];
	char host[256];
	int pid;
	double started;  /* epoch seconds */
	double interval; /* seconds between writes */
	double last;     /* gd_now() of the last write */
	int warned;
	gd__reasons reasons;
	double rt[16]; /* (time, done) of the last writes: the rate */
	uint64_t rd[16];
	int head, nsamp;
	cli_buf buf; /* formatted by the dispatcher's thread */
	/* the writer thread: pending is handed over under mu */
	pthread_t th;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	cli_buf pending;
	int have, stop, thread_on;
	int werr; /* the writer's first errno */
} cli_status;

/* Start the writer for results (NULL or interval 0: none).  \return 0 or -1
 * (the path is too long). */
int cli_status_open(cli_status *s, const char *results, double interval_s);
/* From on_error / on_timeout: count the failure's reason. */
void cli_status_failure(cli_status *s, const gd_event *ev);
/* From on_tick: write the file when interval has passed. */
void cli_status_tick(cli_status *s, const gd_stats *st);
/* The run ended with gd_run's rc: the final state, written once. */
void cli_status_close(cli_status *s, const gd_stats *st, int rc);
/* `gpudispatch status ARGS...` (argv after "status").  \return the exit status. */
int cli_status_main(int argc, char **argv);

/* The results file's lock, RESULTS.lock (lock.c): held by rank 0 for the
 * whole run.  cli_results_lock() returns 0, or -1 with a message naming the
 * file and, when known, the host and pid of the run that holds it. */
typedef struct cli_lock {
	int fd;
	char path[4200];
} cli_lock;
int cli_results_lock(cli_lock *l, const char *results, char *err, size_t errlen);
void cli_results_unlock(cli_lock *l);

/* ------------------------------------------------- command line: options.c */

enum cli_cmd {
	CLI_CMD_RUN = 1,
	CLI_CMD_PLACEMENT,
	CLI_CMD_HELP,
	CLI_CMD_VERSION,
	CLI_CMD_STATUS,
};

typedef struct cli_opts {
	enum cli_cmd cmd;
	const char *tasks;      /* --tasks FILE or "-" */
	const char *worker_cmd; /* --worker-cmd "PROG ARGS" (persistent mode) */
	char **argv;            /* the command template (points into argv) */
	int argc;
	int shell;           /* --shell */
	const char *out_dir; /* --output-dir */
	int quiet;           /* --quiet */
	const char *results; /* --results */
	int resume;          /* --resume: skip the tasks recorded "ok" in the results file */
	int resume_force;    /* --resume-force: run changed tasks instead of stopping */
	int force;           /* --force: replace a results file that holds records */
	int keep_children;   /* --keep-children: a command's leftover processes live on */
	int skip_failed;     /* --skip-failed: with --resume, skip failed tasks too */
	double timeout;      /* --timeout, 0 = none */
	double grace;        /* --grace, 0 = no limit */
	unsigned window;     /* --window */
	uint64_t seed;       /* --seed */
	unsigned retries;    /* --retries */
	gd_ui_mode ui;       /* --ui */
	double refresh;      /* --refresh */
	size_t max_line;     /* --max-line */
	int placement;       /* 0 with --no-placement */
	int gpu_ids[64];     /* --gpus LIST */
	size_t n_gpu_ids;
	unsigned workers_per_gpu;                   /* --workers-per-gpu */
	unsigned gpus_per_worker;                   /* --gpus-per-worker, 0 = default */
	unsigned quarantine;                        /* --quarantine K, 0 = off */
	int json;                                   /* placement --json */
	int monochrome;                             /* --monochrome */
	const char *setup_args[CLI_MAX_SETUP_ARGS]; /* --setup-arg KEY=VALUE, as given */
	size_t n_setup_args;
	unsigned start_failures;  /* --start-failures K: 0 = the default */
	double setup_timeout;     /* --setup-timeout, 0 = none */
	unsigned stderr_lines;    /* --stderr-lines N (default CLI_DEFAULT_STDERR_LINES) */
	const char *halt_spec;    /* --halt SPEC as given, NULL = never */
	int halt;                 /* GD_HALT_NEVER / _SOON / _NOW */
	int halt_on;              /* GD_HALT_ON_FAIL / _SUCCESS */
	uint64_t halt_count;      /* N, 0 = halt_percent */
	double halt_percent;      /* P of fail=P% */
	double status_interval;   /* --status-interval SECONDS (default 1, 0 = no status file) */
	double deadline;          /* --deadline, seconds since the epoch, 0 = not given */
	int no_deadline;          /* --deadline none: not even the Slurm job's end */
	double deadline_margin;   /* --deadline-margin, 0 = the library's default */
	double task_time;         /* --task-time, 0 = learn it */
	double heartbeat_timeout; /* --heartbeat-timeout, 0 = none */
	int heartbeat_set;        /* ... given (else the library's default) */
} cli_opts;

/* Parse a --halt SPEC into o (never, soon|now,fail=N|P%, soon|now,success=N).
 * \return 0, or -1 with a message naming the spec in err. */
int cli_parse_halt(const char *spec, cli_opts *o, char *err, size_t errlen);

/* A time as --deadline takes it: +DURATION (+90, +90s, +2h30m, +1d, from
 * now), seconds since the epoch (digits, or @digits), or a local date and
 * time YYYY-MM-DDTHH:MM[:SS] (a space for the T; Z at the end: UTC).
 * \return 0 with *out in seconds since the epoch, or -1. */
int cli_parse_time(const char *s, double now, double *out);

/*
 * Parse argv (argv[0] is the program).  \return 0 with *o filled, or -1 with
 * a message naming what was wrong in err (bad usage: exit status 2).
 */
int cli_parse_args(int argc, char **argv, cli_opts *o, char *err, size_t errlen);
/* The --help text. */
void cli_usage(FILE *out);

/* ------------------------------------------------ task file: task_source.c */

/*
 * Task bytes as the generator sends them: one kind byte, then the payload.
 *   'L' + the line (without its newline and trailing CR): a task to run
 *   'S'                 a blank or comment line: refused by cfg.skip
 *   'E' + a message     a line that cannot run (too long): fails on its worker
 * Every line of the file is one task, so task id == 0-based line index.
 */
enum { CLI_TASK_LINE = 'L', CLI_TASK_SKIP = 'S', CLI_TASK_BAD = 'E' };

/* A streaming line reader: flat memory whatever the file's size. */
typedef struct cli_reader {
	int fd;
	int own_fd;
	char *buf; /* read buffer */
	size_t pos, end, cap;
	int eof;
	size_t max_line;
	cli_buf line;     /* the current line, up to max_line bytes */
	uint64_t n_lines; /* lines returned so far */
} cli_reader;

typedef struct cli_line {
	const char *data; /* valid until the next call; NUL-terminated */
	size_t len;       /* without the newline (and a trailing CR) */
	size_t full_len;  /* the line's real length when too_long */
	int too_long;     /* longer than max_line: data holds the first max_line bytes */
	uint64_t index;   /* 0-based line index = task id */
} cli_line;

/* Open path ("-" = standard input).  \return 0 or -errno. */
int cli_reader_open(cli_reader *r, const char *path, size_t max_line);
/* \return 1 with the next line, 0 at the end, -errno on a read error. */
int cli_reader_next(cli_reader *r, cli_line *l);
void cli_reader_close(cli_reader *r);

/* \return 1 when the line is blank (only spaces/tabs) or a comment ('#' first). */
int cli_line_skipped(const char *p, size_t n);

/*
 * Encode line l as task bytes into out (see CLI_TASK_*).  \return 0 or -1.
 */
int cli_task_encode(const cli_line *l, const char *file, cli_buf *out);

/* ------------------------------------------------ substitution: template.c */

/*
 * Replacement strings in the command template (argv words or --shell):
 *   {}   the line              {.}  the line without its extension
 *   {/}  its basename          {//} its dirname        {/.} basename without extension
 *   {#}  the task id           {%}  the worker id
 * With none of the line strings ({} {.} {/} {//} {/.}) the line is appended
 * as one more argument.  \return 1 when argv uses a line string.
 */
int cli_template_uses_line(char *const *words, int n);

/*
 * Expand the template for one task into a NULL-terminated argument vector
 * stored in out (a block of pointers then strings; free with free(out->p)).
 * shell != 0: one shell script "words joined by spaces" with the line
 * single-quoted, run as `/bin/sh -c SCRIPT`; no words: the line itself is the
 * script.  \return 0, or -1 (out of memory).
 */
int cli_expand(char *const *words, int n, int shell, const char *line, size_t len, uint64_t id,
               int worker, char ***argv_out);

/* Append s quoted for /bin/sh ('...' with ' as '\''). */
int cli_shell_quote(cli_buf *b, const char *s, size_t n);

/* ------------------------------------------------------------ JSON: json.c */

/*
 * Append bytes as a JSON string with its quotes: valid UTF-8 is copied,
 * '"', '\\' and control characters are escaped, and each byte that is not
 * part of valid UTF-8 becomes U+FFFD.  \return 0 or -1.
 */
int cli_json_str(cli_buf *b, const void *s, size_t n);

/* Start w (the JSON writer) writing into b. */
void cli_jsonw(gd__jsonw *w, cli_buf *b);
/* Start w writing into b as members of an object whose braces someone else
 * writes ("a":1,"b":2): the journal's extra members.  gd__jsonw_flush() at
 * the end. */
void cli_jsonw_members(gd__jsonw *w, cli_buf *b);

/* \return 1 when the n bytes are valid UTF-8. */
int cli_utf8_valid(const void *s, size_t n);
/* Append the bytes in base64 (RFC 4648, padded).  \return 0 or -1. */
int cli_base64(cli_buf *b, const void *s, size_t n);
/*
 * \return 1 when the n bytes are exactly one JSON value (RFC 8259, nesting
 * at most 256 deep), else 0 with the offset of the first bad byte in
 * *bad_at (may be NULL).
 */
int cli_json_valid(const void *s, size_t n, size_t *bad_at);
/* Append a valid JSON text to b on one line (CR/LF between tokens become
 * blanks).  \return 0 or -1. */
int cli_json_embed(cli_buf *b, const void *s, size_t n);
/* A member of a JSON object: the key's bytes between its quotes (escapes
 * not decoded) and the value's JSON text. */
typedef struct cli_member {
	const char *key, *val;
	size_t klen, vlen;
} cli_member;
/* The members of the JSON object in s, the first max of them into m.
 * \return how many went into m, or -1 when s is not one valid object. */
int cli_json_members(const void *s, size_t n, cli_member *m, size_t max);
/* Append the bytes a JSON string literal (quotes included) stands for; a
 * lone surrogate becomes U+FFFD.  \return 0, or -1 when it is not one. */
int cli_json_unstr(cli_buf *b, const void *s, size_t n);

/* -------------------------------------------- error messages: error_text.c */

/* The first line of msg, at most max bytes: its length. */
size_t cli_first_line(const char *msg, size_t max);
/*
 * A failed command's error: "WHAT; stderr: LAST" where LAST is the last of
 * the '\n'-separated lines in tail (WHAT alone when tail is empty), then,
 * when tail holds more than one line, '\n' and all of them (the results
 * file's details).  \return the length written (cut to fit n).
 */
size_t cli_stderr_message(char *out, size_t n, const char *what, const char *tail);

/* Default and most for --stderr-lines: lines of a failed command's stderr kept. */
#define CLI_DEFAULT_STDERR_LINES 5
#define CLI_MAX_STDERR_LINES     100

/* ------------------------------------------------------------------ worker */

/*
 * Result bytes as the worker class sends them: one kind byte, then the
 * payload.  The command's journal_extra stores them in the results file.
 *   'L' + a line of the line protocol: a JSON string
 *   'J' + a JSON text (protocol 2, checked): embedded as JSON
 *   'B' + bytes (protocol 2): a JSON string when UTF-8, else result_base64
 */
enum { CLI_RESULT_LINE = 'L', CLI_RESULT_JSON = 'J', CLI_RESULT_BYTES = 'B' };

/* A persistent program's log kept in an unlinked file is cut above this. */
#define CLI_LOG_KEEP_MAX (1 << 20)

/* The processes the worker class starts (process.c). */
double cli_now(void);
/*
 * Fork and exec argv with fds[0..2] as its 0/1/2 and, when fds[3] and
 * fds[4] are >= 0, those as its 3 and 4; environment envp.  The child keeps
 * the executor's process group (a timeout kills the whole group), dies with
 * the executor, and inherits no other descriptor.  \return the pid, or -1
 * with a message in err (e.g. the program does not exist).
 */
pid_t cli_spawn(char *const argv[], char *const envp[], const int fds[5], char *err, size_t errlen);
pid_t cli_wait_child(pid_t pid, int *status);
/* Send sig to pid and to every process below it. */
void cli_kill_tree(pid_t pid, int sig);
/* In the executor, after a command-mode task: reap what its commands left
 * behind and, when kill_them, SIGKILL every process still below the
 * executor first; \return how many were killed. */
int cli_end_leftovers(int kill_them);
/* "exited with status N" / "killed by signal N (NAME)", for messages. */
void cli_describe_status(int status, char *out, size_t n);
/* Tell the library how the task's process ended (wait status st): it
 * reaches rank 0 as the event's exit, for the results file. */
void cli_result_exit(gd_result *r, int st);
/* An unlinked temporary file (read-write, append), or -1. */
int cli_open_tmp(void);
/* The last n non-empty lines of the file open at fd, from offset since on,
 * joined by " | ". */
void cli_last_lines(int fd, off_t since, int n, char *out, size_t outlen);
/* The same with sep between the lines; when they do not fit in outlen the
 * first ones are dropped (the last line is kept whole if it fits). */
void cli_tail_lines(int fd, off_t since, int n, const char *sep, char *out, size_t outlen);

/* A persistent worker program (persistent.c): docs/protocol.md. */
typedef struct cli_prog cli_prog;
typedef struct cli_prog_cfg {
	char *cmd;   /* run with /bin/sh -c */
	char **envp; /* its environment (the caller's; must outlive the program) */
	int worker_id;
	int quiet;                   /* its output is discarded */
	const char *out_dir;         /* its log goes to DIR/worker-W.err or .log */
	size_t max_line;             /* longest answer line of the line protocol */
	unsigned max_start_failures; /* starts in a row that never got ready */
	double setup_timeout;        /* seconds for its start up to READY, 0 = none */
} cli_prog_cfg;
/* Start the program.  \return 0, or -1 with a message in err. */
int cli_prog_open(cli_prog **p, const cli_prog_cfg *cfg, char *err, size_t errlen);
/* Run one task (the bytes after the kind byte) on it, for process(). */
int cli_prog_task(cli_prog *p, gd_worker *w, const gd_task *t, const char *data, size_t len,
                  gd_result *r);
/* End its input, wait for it, free p.  \return 0, or -1 with the worker's error set. */
int cli_prog_close(cli_prog *p, gd_worker *w);
/* Kill it and free p. */
void cli_prog_free(cli_prog *p);

/* The worker class of the command; its options come as setup arguments. */
extern const gd_worker_class cli_worker_class;

/* ------------------------------------------- setup arguments: setup_args.c */

/* Build the setup arguments for o (kv and strings in *store; free with cli_kv_free). */
typedef struct cli_kv_store {
	gd_kv *kv;
	size_t n;
	char **strs;
	size_t n_strs;
} cli_kv_store;
int cli_kv_build(const cli_opts *o, cli_kv_store *s);
void cli_kv_free(cli_kv_store *s);

#endif
