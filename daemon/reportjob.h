/* reportjob.h: board reports (report.h) built off the event loop, in a
 * helper process, as Postfix runs its delivery agents.
 *
 * The child (helper.h says why a process) builds and renders what it was
 * asked for and writes it back; at the pipe's end the result goes to the
 * caller's callback. At most YJ_REPORTJOB_MAX run at once; one that runs
 * past YJ_REPORTJOB_LIMIT_MS is killed and reported as failed.
 *
 * Ownership: yj_reportjobs_new() returns the set the caller owns;
 * yj_reportjobs_destroy() kills every child still running and calls its
 * callback with YJ_ESHUTDOWN. The result handed to a callback is borrowed
 * for the call: a callback keeps what it needs by taking its pointers
 * (setting them NULL), the rest is freed after it returns.
 */
#ifndef YJ_REPORTJOB_H
#define YJ_REPORTJOB_H

#include <stddef.h>

#include "report.h"

#define YJ_REPORTJOB_MAX 4
#define YJ_REPORTJOB_LIMIT_MS 120000

struct yj_core;
struct yj_reportjobs;

/* Renderings asked of a job (bits). */
enum { YJ_REPORT_JSON = 1, YJ_REPORT_CSV = 2, YJ_REPORT_HTML = 4 };

struct yj_report_result {
	int rc;              /* 0, or why there is no report (err says more) */
	char err[300];       /* for the operator: a bad period, an unknown yjs, a store error */
	size_t events_read;
	char *json;          /* each NUL-terminated, NULL when not asked */
	char *csv;
	size_t csv_len;
	char *html;
	size_t html_len;
};

typedef void (*yj_reportjob_done_fn)(void *arg, struct yj_report_result *res);

int yj_reportjobs_new(struct yj_core *core, struct yj_reportjobs **out);
void yj_reportjobs_destroy(struct yj_reportjobs **jobs);

/* Build the report of p (copied) in a helper, rendered as formats; done is
 * called on the loop when it is ready, failed or cancelled (never from
 * inside this call). YJ_EAGAIN when YJ_REPORTJOB_MAX run already; YJ_EIO
 * when the helper cannot be started. */
int yj_reportjob_start(struct yj_reportjobs *jobs, const struct yj_report_params *p, unsigned formats,
		       yj_reportjob_done_fn done, void *arg);

/* Jobs under way (status, tests). */
size_t yj_reportjobs_running(const struct yj_reportjobs *jobs);

#endif
