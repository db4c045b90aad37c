/* reportjob.c: see reportjob.h. */
#include "reportjob.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "core.h"
#include "err.h"
#include "helper.h"
#include "log.h"
#include "store.h"

/* What the child writes first; then err_len bytes of error text and the
 * renderings, each len[i] bytes (json, csv, html). */
struct s_head {
	int32_t rc;
	uint32_t err_len;
	uint64_t events;
	uint64_t len[3];
};

/* Renderings bigger than this are not a board report (it is aggregate
 * figures: some hundreds of KiB): the child is killed. */
#define S_MAX_OUTPUT (64u << 20)

struct s_job {
	struct yj_reportjobs *set;
	struct yj_helper *helper;      /* owned by the running helper */
	unsigned formats;
	struct yj_report_params p;     /* strings owned */
	yj_reportjob_done_fn done;
	void *arg;
};

struct yj_reportjobs {
	struct yj_core *core;          /* borrowed */
	struct s_job *jobs[YJ_REPORTJOB_MAX];
};

int yj_reportjobs_new(struct yj_core *core, struct yj_reportjobs **out)
{
	struct yj_reportjobs *js = calloc(1, sizeof(*js));
	if (!js)
		return YJ_ENOMEM;
	js->core = core;
	*out = js;
	return 0;
}

size_t yj_reportjobs_running(const struct yj_reportjobs *js)
{
	size_t n = 0;
	for (size_t i = 0; js && i < YJ_REPORTJOB_MAX; i++)
		n += js->jobs[i] != NULL;
	return n;
}

static void s_params_free(struct yj_report_params *p)
{
	free((char *)p->from);
	free((char *)p->to);
	free((char *)p->yjs);
	free((char *)p->population);
	memset(p, 0, sizeof(*p));
}

static int s_params_copy(struct yj_report_params *dst, const struct yj_report_params *src)
{
	memset(dst, 0, sizeof(*dst));
	dst->now_us = src->now_us;
	if ((src->from && !(dst->from = strdup(src->from))) || (src->to && !(dst->to = strdup(src->to))) ||
	    (src->yjs && !(dst->yjs = strdup(src->yjs))) ||
	    (src->population && !(dst->population = strdup(src->population)))) {
		s_params_free(dst);
		return YJ_ENOMEM;
	}
	return 0;
}

/* Inside the build's read transaction: a test holds the report here
 * (testing.report_gate) with a reader open, the worst case for the writer
 * (its old pages pinned, the map to grow), and sees the loop go on
 * meanwhile. The parent's time limit ends the wait at the latest. */
static void s_at_gate(void *arg)
{
	const char *gate = arg;
	struct timespec ts = { 0, 20 * 1000 * 1000 };
	yj_notice("report: helper %ld holds its reader open until %s exists", (long)getpid(), gate);
	while (access(gate, F_OK) != 0)
		nanosleep(&ts, NULL);
}

/* The helper: everything it uses is its copy of the parent's memory at the
 * fork, and an environment of its own on the store's files. */
static int s_child(void *arg, int wfd)
{
	struct s_job *j = arg;
	const struct yj_core *core = j->set->core;
	struct s_head h;
	char err[sizeof(((struct yj_report_result *)0)->err)] = "";
	struct yj_store *store = NULL;
	struct yj_report *r = NULL;
	char *out[3] = { NULL, NULL, NULL };
	size_t len[3] = { 0, 0, 0 };

	int rc = yj_store_open_reader(core->store, &store);
	if (rc)
		snprintf(err, sizeof(err), "the store cannot be opened to read (see the log)");
	if (!rc && *core->cfg->testing_report_gate) {
		j->p.in_snapshot = s_at_gate;
		j->p.in_snapshot_arg = core->cfg->testing_report_gate;
	}
	if (!rc)
		rc = yj_report_build(store, core->cfg, core->ref, &j->p, &r, err, sizeof(err));
	if (!rc && (j->formats & YJ_REPORT_JSON) && !(rc = yj_report_json(r, &out[0])))
		len[0] = strlen(out[0]);
	if (!rc && (j->formats & YJ_REPORT_CSV))
		rc = yj_report_csv(r, &out[1], &len[1]);
	if (!rc && (j->formats & YJ_REPORT_HTML))
		rc = yj_report_html(r, &out[2], &len[2]);
	memset(&h, 0, sizeof(h));
	h.rc = rc;
	h.err_len = (uint32_t)strlen(err);
	h.events = r ? yj_report_events_read(r) : 0;
	for (int i = 0; i < 3; i++)
		h.len[i] = rc ? 0 : len[i];
	int wrc = yj_helper_write_all(wfd, &h, sizeof(h));
	if (!wrc)
		wrc = yj_helper_write_all(wfd, err, h.err_len);
	for (int i = 0; !wrc && i < 3; i++)
		wrc = yj_helper_write_all(wfd, out[i] ? out[i] : "", (size_t)h.len[i]);
	/* Its reader slot freed for the next helper (a killed one is cleared by the next yj_store_open_reader). */
	yj_store_close(&store);
	return wrc ? 1 : 0;
}

/* The result of a job whose child has ended, from what it wrote. */
static void s_parse(const struct s_job *j, const struct yj_helper_end *end, struct yj_report_result *res)
{
	struct s_head h;
	memset(res, 0, sizeof(*res));
	if (end->timed_out) {
		res->rc = YJ_EAGAIN;
		snprintf(res->err, sizeof(res->err), "the report took over %d s and was stopped: ask for a shorter period",
			 YJ_REPORTJOB_LIMIT_MS / 1000);
		return;
	}
	if (end->len < sizeof(h) || !end->exited_ok) {
		res->rc = YJ_EIO;
		if (end->overflow)
			snprintf(res->err, sizeof(res->err), "the report is over %u MiB: ask for a shorter period",
				 S_MAX_OUTPUT >> 20);
		else if (end->signal)
			snprintf(res->err, sizeof(res->err), "the report helper died (signal %d): see the daemon's log",
				 end->signal);
		else
			snprintf(res->err, sizeof(res->err), "the report helper failed: see the daemon's log");
		return;
	}
	memcpy(&h, end->buf, sizeof(h));
	uint64_t want = sizeof(h) + (uint64_t)h.err_len + h.len[0] + h.len[1] + h.len[2];
	if (want != end->len || h.err_len >= sizeof(res->err)) {
		res->rc = YJ_EIO;
		snprintf(res->err, sizeof(res->err), "the report helper's answer is garbled: see the daemon's log");
		return;
	}
	const char *p = end->buf + sizeof(h);
	memcpy(res->err, p, h.err_len);
	p += h.err_len;
	res->rc = h.rc;
	res->events_read = (size_t)h.events;
	if (res->rc)
		return;
	char **dst[3] = { &res->json, &res->csv, &res->html };
	static const unsigned bit[3] = { YJ_REPORT_JSON, YJ_REPORT_CSV, YJ_REPORT_HTML };
	for (int i = 0; i < 3; i++) {
		if ((j->formats & bit[i]) && !(*dst[i] = yj_helper_take(p, (size_t)h.len[i]))) {
			res->rc = YJ_ENOMEM;
			return;
		}
		p += h.len[i];
	}
	res->csv_len = (size_t)h.len[1];
	res->html_len = (size_t)h.len[2];
}

static void s_result_free(struct yj_report_result *res)
{
	free(res->json);
	free(res->csv);
	free(res->html);
	memset(res, 0, sizeof(*res));
}

/* The helper has ended: hand its result over, forget the job. */
static void s_on_end(void *arg, const struct yj_helper_end *end)
{
	struct s_job *j = arg;
	struct yj_reportjobs *js = j->set;
	struct yj_report_result res;

	for (size_t i = 0; i < YJ_REPORTJOB_MAX; i++) {
		if (js->jobs[i] == j)
			js->jobs[i] = NULL;
	}
	if (end->cancelled) {
		memset(&res, 0, sizeof(res));
		res.rc = YJ_ESHUTDOWN;
		snprintf(res.err, sizeof(res.err), "the daemon is stopping: ask again once it is back");
	} else {
		s_parse(j, end, &res);
	}
	if (res.rc && res.rc != YJ_EINVAL && !end->cancelled)
		yj_warn("report: %s..%s (%s): %s", j->p.from, j->p.to, j->p.yjs ? j->p.yjs : "force", res.err);
	j->done(j->arg, &res);
	s_result_free(&res);
	s_params_free(&j->p);
	free(j);
}

int yj_reportjob_start(struct yj_reportjobs *js, const struct yj_report_params *p, unsigned formats,
		       yj_reportjob_done_fn done, void *arg)
{
	struct s_job *j = NULL;
	size_t slot = YJ_REPORTJOB_MAX;
	int rc;

	if (!js || !p || !done || !formats)
		return YJ_EINVAL;
	for (size_t i = 0; i < YJ_REPORTJOB_MAX && slot == YJ_REPORTJOB_MAX; i++) {
		if (!js->jobs[i])
			slot = i;
	}
	if (slot == YJ_REPORTJOB_MAX)
		return YJ_EAGAIN;
	if (!(j = calloc(1, sizeof(*j))) || s_params_copy(&j->p, p)) {
		free(j);
		return YJ_ENOMEM;
	}
	j->set = js;
	j->formats = formats;
	j->done = done;
	j->arg = arg;
	rc = yj_helper_start(js->core->loop, "report", YJ_REPORTJOB_LIMIT_MS, S_MAX_OUTPUT + sizeof(struct s_head) + 4096,
			     s_child, j, s_on_end, j, &j->helper);
	if (rc) {
		s_params_free(&j->p);
		free(j);
		return rc;
	}
	js->jobs[slot] = j;
	return 0;
}

void yj_reportjobs_destroy(struct yj_reportjobs **pjs)
{
	struct yj_reportjobs *js = pjs ? *pjs : NULL;
	if (!js)
		return;
	for (size_t i = 0; i < YJ_REPORTJOB_MAX; i++) {
		if (js->jobs[i])
			yj_helper_cancel(js->jobs[i]->helper);
	}
	free(js);
	*pjs = NULL;
}
