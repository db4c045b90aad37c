/* report.h: the board report (interfaces.md §6 `report`; docs/report.md).
 *
 * A report covers the local (Europe/London) days from..to inclusive. It is
 * built from the stored events whose occurred_at falls in that period, in
 * one read transaction (LMDB readers never block the writer): one walk of
 * the time index, each event decoded once, folded into compact per-child
 * and per-record tables, then counted per figure and per group of four
 * dimensions (age, gender, ethnicity, looked_after), suppressed (counts
 * under cfg->report_suppress_below, and secondary suppression), and
 * rendered as JSON, CSV or HTML.
 *
 * Ownership: yj_report_build() returns a report the caller owns and frees
 * with yj_report_free(); renderings are malloc'd strings the caller frees.
 */
#ifndef YJ_REPORT_H
#define YJ_REPORT_H

#include <stddef.h>

#include "config.h"
#include "refdata.h"
#include "store.h"

struct yj_report;

/* What to report on. Every pointer is borrowed for the call. */
struct yj_report_params {
	const char *from;        /* "YYYY-MM-DD", local date, first day */
	const char *to;          /* "YYYY-MM-DD", local date, last day (inclusive) */
	const char *yjs;         /* a yjs: recipient id of cfg, or NULL for force-wide */
	const char *population;  /* the text of a population CSV for rates per 1,000 children
	                          * (docs/report.md: "dimension,group,children", '#' comments,
	                          * "# source: ..." naming it), or NULL / "" for none */
	int64_t now_us;          /* the daemon's clock: records still open are held until min(now, period end) */
	/* Called once inside the build's read transaction before it reads
	 * (reportjob.c holds a test there, testing.report_gate); NULL: none. */
	void (*in_snapshot)(void *arg);
	void *in_snapshot_arg;
};

/* Build the report in one read transaction of store; cfg and ref are read
 * during the call only (the report keeps ref's labels: ref must outlive it).
 * YJ_EINVAL with err filled for a bad date, a period with to before from (or
 * over 3,700 days), an id that is no yjs recipient, or a malformed population
 * line; YJ_ENOMEM; a store error (err says so). */
int yj_report_build(struct yj_store *store, const struct yj_config *cfg, const struct yj_refdata *ref,
		    const struct yj_report_params *p, struct yj_report **out, char *err, size_t errlen);

/* The renderings: JSON (interfaces.md §6 shape plus "labels", "notes",
 * "disparity"), CSV (RFC 4180: dimension,group,figure,value), HTML (inline
 * SVG, no script). 0 and *out (caller frees), or YJ_ENOMEM. */
int yj_report_json(const struct yj_report *r, char **out);
int yj_report_csv(const struct yj_report *r, char **out, size_t *len);
int yj_report_html(const struct yj_report *r, char **out, size_t *len);

/* Events read by the build (for the log and the benchmark). */
size_t yj_report_events_read(const struct yj_report *r);

void yj_report_free(struct yj_report **r);

#endif
