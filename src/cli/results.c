/*
 * `gpudispatch results FILE`: the final record of each task in a results
 * file, in id order, as JSON Lines, CSV or TSV.  A record is final as
 * --resume sees it (src/journal.c): of the records whose checksum holds,
 * the last one of an id in the file wins; torn or damaged lines are skipped
 * and counted.  Runs without MPI (a login node, while the job runs).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "../jrec.h"

enum { FMT_JSONL, FMT_CSV, FMT_TSV };
/* --status's mask: one bit per record status (GD_JS_*) */
#define ST_BIT(js) (1u << ((js)-1))
enum {
	ST_OK = ST_BIT(GD_JS_OK),
	ST_ERROR = ST_BIT(GD_JS_ERROR),
	ST_TIMEOUT = ST_BIT(GD_JS_TIMEOUT)
};

/* The members the command writes (docs/cli.md); a field that is none of
 * them is still taken when some record of the file has it. */
static const char *const known[] = {
        "id",     "status",        "digest",  "attempt",  "worker",   "host",        "gpu",
        "bus_id", "start",         "end",     "duration", "error",    "exit_status", "signal",
        "result", "result_base64", "details", "task",     "task_len", "sum",
};
#define N_KNOWN (sizeof(known) / sizeof(known[0]))

/* The columns of csv and tsv without --fields. */
static const char default_fields[] =
        "id,status,attempt,worker,host,gpu,start,duration,exit_status,signal,error,task,result";

#define MAX_FIELDS  64
#define MAX_MEMBERS 128

typedef struct rrec {
	uint64_t id;
	size_t off, len, seq;
	int status;
} rrec;

typedef struct ropts {
	const char *file;
	int fmt;
	unsigned status_mask; /* 0 = all */
	char *fields_buf;     /* --fields, split in place */
	const char *fields[MAX_FIELDS];
	size_t n_fields;
	int fields_given;
} ropts;

static int usage_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int usage_err(const char *fmt, ...)
{
	va_list ap;

	fputs("gpudispatch results: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputs("\nTry 'gpudispatch results --help'.\n", stderr);
	return CLI_EXIT_USAGE;
}

static void results_usage(FILE *out)
{
	fputs("usage: gpudispatch results [--status LIST] [--format jsonl|csv|tsv] [--fields "
	      "LIST] FILE\n"
	      "\n"
	      "Print the final record of each task of the results file FILE, in id order:\n"
	      "after a resume the last record of a task id is its final one. Torn or\n"
	      "damaged lines are skipped (their count is said on standard error).\n"
	      "\n"
	      "  --status LIST   only tasks whose final status is one of LIST (comma-separated\n"
	      "                  ok, error, timeout)\n"
	      "  --format F      jsonl (default: the records as written), csv or tsv (a header\n"
	      "                  line, then one line per task)\n"
	      "  --fields LIST   only these members, in this order (comma-separated), e.g.\n"
	      "                  id,status,error; csv/tsv default: ",
	      out);
	fputs(default_fields, out);
	fputs("\n\nExit status: 0 done, 2 bad usage or unreadable FILE, 4 output error.\n", out);
}

static int parse_status(const char *v, unsigned *mask)
{
	const char *p = v;

	*mask = 0;
	while (*p) {
		size_t n = strcspn(p, ",");

		if (n == 2 && !strncmp(p, "ok", 2))
			*mask |= ST_OK;
		else if (n == 5 && !strncmp(p, "error", 5))
			*mask |= ST_ERROR;
		else if (n == 7 && !strncmp(p, "timeout", 7))
			*mask |= ST_TIMEOUT;
		else
			return usage_err("--status: '%.*s' is not ok, error or timeout", (int)n, p);
		p += n;
		if (*p == ',')
			p++;
	}
	if (!*mask)
		return usage_err("--status: give one or more of ok, error, timeout");
	return 0;
}

static int split_fields(ropts *o, const char *v)
{
	char *p;

	free(o->fields_buf);
	if (!(o->fields_buf = strdup(v)))
		return usage_err("out of memory");
	o->n_fields = 0;
	p = o->fields_buf;
	for (;;) {
		char *c = strchr(p, ',');

		if (c)
			*c = '\0';
		if (!*p)
			return usage_err("--fields: an empty field name in '%s'", v);
		if (o->n_fields == MAX_FIELDS)
			return usage_err("--fields: more than %d fields", MAX_FIELDS);
		o->fields[o->n_fields++] = p;
		if (!c)
			break;
		p = c + 1;
	}
	return 0;
}

/* \return 0, 1 for --help (printed), or an exit status. */
static int parse(int argc, char **argv, ropts *o)
{
	memset(o, 0, sizeof(*o));
	for (int i = 0; i < argc; i++) {
		const char *a = argv[i], *val = NULL, *eq;
		char name[32];
		size_t nl;
		int rc;

		if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
			results_usage(stdout);
			return 1;
		}
		if (!strcmp(a, "--")) {
			if (i + 1 < argc && !o->file)
				o->file = argv[++i];
			if (i + 1 < argc)
				return usage_err("one results file only (got '%s')", argv[i + 1]);
			break;
		}
		if (a[0] != '-' || !a[1]) {
			if (o->file)
				return usage_err("one results file only (got '%s' and '%s')",
				                 o->file, a);
			o->file = a;
			continue;
		}
		if (a[1] != '-')
			return usage_err("unknown option '%s'", a);
		eq = strchr(a + 2, '=');
		nl = eq ? (size_t)(eq - a - 2) : strlen(a + 2);
		if (nl >= sizeof(name))
			return usage_err("unknown option '%s'", a);
		memcpy(name, a + 2, nl);
		name[nl] = '\0';
		if (strcmp(name, "status") && strcmp(name, "format") && strcmp(name, "fields"))
			return usage_err("unknown option '%s'", a);
		if (eq) {
			val = eq + 1;
		} else {
			if (i + 1 >= argc)
				return usage_err("option --%s needs a value", name);
			val = argv[++i];
		}
		if (!strcmp(name, "status")) {
			if ((rc = parse_status(val, &o->status_mask)))
				return rc;
		} else if (!strcmp(name, "format")) {
			if (!strcmp(val, "jsonl"))
				o->fmt = FMT_JSONL;
			else if (!strcmp(val, "csv"))
				o->fmt = FMT_CSV;
			else if (!strcmp(val, "tsv"))
				o->fmt = FMT_TSV;
			else
				return usage_err("--format: '%s' is not jsonl, csv or tsv", val);
		} else {
			if ((rc = split_fields(o, val)))
				return rc;
			o->fields_given = 1;
		}
	}
	if (!o->file)
		return usage_err("missing the results file (gpudispatch results FILE)");
	if (!o->fields_given && o->fmt != FMT_JSONL)
		return split_fields(o, default_fields);
	return 0;
}

/* ------------------------------------------------------------ records */

static int cmp_rec(const void *a, const void *b)
{
	const rrec *x = a, *y = b;

	if (x->id != y->id)
		return x->id < y->id ? -1 : 1;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static int is_known(const char *f)
{
	for (size_t i = 0; i < N_KNOWN; i++)
		if (!strcmp(known[i], f))
			return 1;
	return 0;
}

static const cli_member *find(const cli_member *m, int n, const char *key)
{
	size_t kl = strlen(key);

	for (int i = 0; i < n; i++)
		if (m[i].klen == kl && !memcmp(m[i].key, key, kl))
			return &m[i];
	return NULL;
}

/* ------------------------------------------------------------ output */

/* Text as a csv or tsv cell. */
static int put_text(cli_buf *out, int fmt, const char *s, size_t n)
{
	if (fmt == FMT_TSV) {
		for (size_t i = 0; i < n; i++) {
			const char *e = s[i] == '\t'   ? "\\t"
			                : s[i] == '\n' ? "\\n"
			                : s[i] == '\r' ? "\\r"
			                : s[i] == '\\' ? "\\\\"
			                               : NULL;

			if (e ? cli_buf_adds(out, e) : cli_buf_add(out, s + i, 1))
				return -1;
		}
		return 0;
	}
	/* csv (RFC 4180): quoted when it holds a comma, a quote or a line end */
	if (!memchr(s, ',', n) && !memchr(s, '"', n) && !memchr(s, '\n', n) && !memchr(s, '\r', n))
		return cli_buf_add(out, s, n);
	if (cli_buf_add(out, "\"", 1))
		return -1;
	for (size_t i = 0; i < n; i++)
		if ((s[i] == '"' && cli_buf_add(out, "\"", 1)) || cli_buf_add(out, s + i, 1))
			return -1;
	return cli_buf_add(out, "\"", 1);
}

/* A member's value as a cell: a string decoded, null or missing empty, any
 * other value as its JSON text. */
static int put_cell(cli_buf *out, int fmt, const cli_member *m, cli_buf *tmp)
{
	if (!m || (m->vlen == 4 && !memcmp(m->val, "null", 4)))
		return 0;
	if (m->val[0] != '"')
		return put_text(out, fmt, m->val, m->vlen);
	tmp->len = 0;
	if (cli_json_unstr(tmp, m->val, m->vlen))
		return -1;
	return put_text(out, fmt, tmp->p ? tmp->p : "", tmp->len);
}

static int put_row(const ropts *o, const char *line, size_t len, cli_buf *out, cli_buf *tmp)
{
	cli_member m[MAX_MEMBERS];
	int nm;

	out->len = 0;
	if (o->fmt == FMT_JSONL && !o->fields_given)
		return cli_buf_add(out, line, len) || cli_buf_add(out, "\n", 1);
	nm = cli_json_members(line, len, m, MAX_MEMBERS);
	if (nm < 0)
		nm = 0; /* checksummed, so ours: cannot happen */
	if (o->fmt == FMT_JSONL) {
		gd__jsonw w;

		/* an object of just those members, written by the JSON writer */
		cli_jsonw(&w, out);
		gd__jsonw_obj(&w);
		for (size_t i = 0; i < o->n_fields; i++) {
			const cli_member *f = find(m, nm, o->fields[i]);

			gd__jsonw_key(&w, o->fields[i]);
			if (f)
				gd__jsonw_json(&w, f->val, f->vlen);
			else
				gd__jsonw_null(&w);
		}
		gd__jsonw_obj_end(&w);
		return gd__jsonw_flush(&w) || cli_buf_add(out, "\n", 1);
	}
	for (size_t i = 0; i < o->n_fields; i++) {
		if (i && cli_buf_adds(out, o->fmt == FMT_CSV ? "," : "\t"))
			return -1;
		if (put_cell(out, o->fmt, find(m, nm, o->fields[i]), tmp))
			return -1;
	}
	return cli_buf_add(out, "\n", 1);
}

/* ------------------------------------------------------------ main */

int cli_results_main(int argc, char **argv)
{
	ropts o;
	int rc = parse(argc, argv, &o), fd = -1;
	struct stat st;
	const char *map = NULL;
	size_t size = 0, nrec = 0, cap = 0, bad = 0, m = 0;
	rrec *recs = NULL;
	int unresolved[MAX_FIELDS] = {0}, n_unres = 0;
	cli_buf out = {0}, tmp = {0};

	if (rc) {
		free(o.fields_buf);
		return rc == 1 ? CLI_EXIT_OK : rc;
	}
	fd = open(o.file, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st)) {
		rc = usage_err("cannot read results file %s: %s", o.file, strerror(errno));
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		rc = usage_err("cannot read results file %s: not a regular file", o.file);
		goto out;
	}
	size = (size_t)st.st_size;
	if (size && (map = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0)) == MAP_FAILED) {
		map = NULL;
		rc = usage_err("cannot read results file %s: %s", o.file, strerror(errno));
		goto out;
	}
	for (size_t i = 0; i < o.n_fields; i++)
		if (!is_known(o.fields[i])) {
			unresolved[i] = 1;
			n_unres++;
		}

	/* pass 1: every line whose checksum holds */
	for (size_t pos = 0; pos < size;) {
		const char *nl = memchr(map + pos, '\n', size - pos);
		size_t len = (size_t)((nl ? nl : map + size) - (map + pos));
		gd__jrec jr;

		if (nl && gd__journal_parse_line(map + pos, len, &jr)) {
			if (nrec == cap) {
				size_t ncap = cap ? cap * 2 : 1024;
				rrec *n = realloc(recs, ncap * sizeof(*n));

				if (!n) {
					fputs("gpudispatch results: out of memory\n", stderr);
					rc = CLI_EXIT_ERROR;
					goto out;
				}
				recs = n;
				cap = ncap;
			}
			recs[nrec] = (rrec){jr.id, pos, len, nrec, (int)ST_BIT(jr.status)};
			nrec++;
			if (n_unres) {
				cli_member mm[MAX_MEMBERS];
				int k = cli_json_members(map + pos, len, mm, MAX_MEMBERS);

				for (size_t i = 0; i < o.n_fields && k > 0; i++)
					if (unresolved[i] && find(mm, k, o.fields[i])) {
						unresolved[i] = 0;
						n_unres--;
					}
			}
		} else if (len) {
			bad++; /* damaged, or torn (no newline: cut in the middle) */
		}
		pos += len + 1;
	}
	for (size_t i = 0; i < o.n_fields; i++)
		if (unresolved[i]) {
			cli_buf names = {0};

			for (size_t k = 0; k < N_KNOWN; k++)
				cli_buf_printf(&names, "%s%s", k ? ", " : "", known[k]);
			rc = usage_err("--fields: unknown field '%s' (no record of %s has it; the "
			               "fields are %s)",
			               o.fields[i], o.file, names.p ? names.p : "");
			cli_buf_free(&names);
			goto out;
		}
	if (bad)
		fprintf(stderr, "gpudispatch results: %s: %zu torn or damaged line(s) skipped\n",
		        o.file, bad);

	/* the last record of an id wins */
	if (nrec)
		qsort(recs, nrec, sizeof(*recs), cmp_rec);
	for (size_t i = 0; i < nrec; i++) {
		if (m && recs[m - 1].id == recs[i].id)
			m--;
		recs[m++] = recs[i];
	}

	/* pass 2: print */
	if (o.fmt != FMT_JSONL) {
		int e = 0;

		for (size_t i = 0; i < o.n_fields; i++) {
			e |= i ? cli_buf_adds(&out, o.fmt == FMT_CSV ? "," : "\t") : 0;
			e |= put_text(&out, o.fmt, o.fields[i], strlen(o.fields[i]));
		}
		if (e || cli_buf_add(&out, "\n", 1)) {
			fputs("gpudispatch results: out of memory\n", stderr);
			rc = CLI_EXIT_ERROR;
			goto out;
		}
		fwrite(out.p, 1, out.len, stdout);
	}
	for (size_t i = 0; i < m; i++) {
		if (o.status_mask && !(o.status_mask & (unsigned)recs[i].status))
			continue;
		if (put_row(&o, map + recs[i].off, recs[i].len, &out, &tmp)) {
			fputs("gpudispatch results: out of memory\n", stderr);
			rc = CLI_EXIT_ERROR;
			goto out;
		}
		if (fwrite(out.p, 1, out.len, stdout) != out.len)
			break;
	}
	if (fflush(stdout) || ferror(stdout)) {
		fprintf(stderr, "gpudispatch results: cannot write the output: %s\n",
		        strerror(errno));
		rc = CLI_EXIT_ERROR;
	}
out:
	if (map)
		munmap((void *)map, size);
	if (fd >= 0)
		close(fd);
	free(recs);
	free(o.fields_buf);
	cli_buf_free(&out);
	cli_buf_free(&tmp);
	return rc;
}
