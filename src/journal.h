/*
 * The journal (rank 0): one JSON line per finished task, appended in
 * batches and made durable with fdatasync at least every second and at the
 * end.  Each line ends with a checksum of everything before it, so a torn
 * or garbled line is recognised and never misread:
 *
 *   {"id":7,"status":"ok","digest":"<16 hex>","attempt":1,"worker":2,
 *    "host":"n1","gpu":3,"start":..., "end":..., "duration":0.25,
 *    "error":"", <extra members>,"sum":"<16 hex>"}
 *
 * digest: FNV-1a 64 of the task's bytes; sum: FNV-1a 64 of the line up to
 * (not including) `,"sum"`.  On resume the last valid record of an id wins.
 */
#ifndef GD_JOURNAL_H
#define GD_JOURNAL_H

#include "internal.h"
#include "jrec.h"

#include <stdint.h>

typedef struct gd__journal gd__journal;

/*
 * Open the journal.  resume = 0: it must not exist or be empty.  Otherwise
 * its valid records are loaded (a torn tail is cut off the file) and tasks
 * are judged with gd__journal_check().  \return 0, GD_EJOURNAL or GD_ENOMEM
 * with a message in err.
 */
int gd__journal_open(const char *path, int resume, int force, const gd__logger *log,
                     gd__journal **j, char *err, size_t errlen);

/* \return the number of records loaded for resume. */
uint64_t gd__journal_loaded(const gd__journal *j);

/*
 * On resume, for a task the generator produced (ids ascending): \return 1 to
 * skip it, 0 to run it, GD_EDIGEST (err says which) when it changed since
 * the journal and force is off.
 */
int gd__journal_check(gd__journal *j, uint64_t id, const void *data, size_t len, char *err,
                      size_t errlen);

/* On resume: how many of the tasks from id on gd__journal_check() would
 * skip (their digests unchecked). */
uint64_t gd__journal_skips_from(const gd__journal *j, uint64_t id);

/* Append a record for a finished task (buffered).  status: GD_JS_*. */
int gd__journal_add(gd__journal *j, const gd_event *ev, int status, const gd_worker_stats *row,
                    size_t (*extra)(void *, const gd_event *, char *, size_t), void *extra_user);

/* Write and sync what is buffered if a second has passed (or force). */
int gd__journal_flush(gd__journal *j, int force);

/* Flush, sync and close.  \return 0 or GD_EJOURNAL. */
int gd__journal_close(gd__journal *j);

/* Append s to b as a JSON string (quotes included), escaping control
 * characters and replacing invalid UTF-8 with U+FFFD. */
int gd__json_str(gd__bytes *b, const char *s, size_t len);

#endif
