/* boardpack.c: see boardpack.h. */
#include "boardpack.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "core.h"
#include "db/notes.h"
#include "db/positions.h"
#include "err.h"
#include "log.h"
#include "loop.h"
#include "outbox.h"
#include "report.h"
#include "reportjob.h"
#include "tz.h"

/* A pack is due at most once a month: a minute's lateness is nothing. */
#define S_INTERVAL_MS 30000
#define S_KEY "boardpack/"

struct s_job;

struct yj_boardpack {
	struct yj_core *core;
	int64_t timer;
	struct s_job *building[YJ_REPORTJOB_MAX]; /* packs whose report a helper builds now */
};

/* The most recent send instant of pack p at or before now, as the local
 * year and month it falls in (*y, *m) and the instant (*due_us); 0, or -1
 * when the clock is unusable. */
static int s_last_due(const struct yj_board_pack *p, int64_t now_us, int *y, int *m, int64_t *due_us)
{
	int64_t now = now_us / 1000000;
	struct tm tm;
	int hh = 0, mm = 0;
	if (sscanf(p->time, "%d:%d", &hh, &mm) != 2)
		return -1;
	yj_tz_local(now, &tm);
	for (int back = 0; back < 2; back++) {
		struct tm due = tm;
		due.tm_mon -= back;
		due.tm_mday = (int)p->day;
		due.tm_hour = hh;
		due.tm_min = mm;
		due.tm_sec = 0;
		int64_t t = yj_tz_mktime(&due);
		if (t <= now) {
			*y = due.tm_year + 1900;
			*m = due.tm_mon + 1;
			*due_us = t * 1000000;
			return 0;
		}
	}
	return -1;
}

/* One pack being built: what its queueing needs, copied, since the config
 * in force may be another by the time the helper is done. */
struct s_job {
	struct yj_boardpack *bp;
	char *recipient;            /* owned */
	char *scope;                /* owned */
	char key[YJ_POSITION_KEY_MAX + 1];
	char month[24];             /* the period, YYYY-MM */
	char from[32], to[32];
	char id[200];
	int64_t now_us;
};

/* What a queueing transaction reads and writes. */
struct s_queue {
	const struct yj_config *cfg;
	const char *recipient;
	const char *key;
	const char *month;
	Yjlink__V1__BoardReport *report;
	int64_t now_us;
	int already;                /* the store says it was queued */
	int first;                  /* the store knows nothing of this pack yet */
	int unroutable;
};

static int s_done_read(struct yj_txn *txn, void *arg)
{
	struct s_queue *q = arg;
	char v[YJ_POSITION_MAX];
	size_t len = 0;
	int rc = yj_positions_get(txn, q->key, v, sizeof(v), &len);
	q->first = rc == YJ_ENOENT;
	/* "YYYY-MM" orders as text: a month at or before the last one queued is done. */
	q->already = !rc && len == strlen(q->month) && memcmp(v, q->month, len) >= 0;
	return rc && rc != YJ_ENOENT ? rc : 0;
}

/* A pack new to the store whose send time is long past (a new deployment,
 * or an entry just added): the next one is the first sent. */
static int s_mark_write(struct yj_txn *txn, void *arg)
{
	struct s_queue *q = arg;
	return yj_positions_put(txn, q->key, q->month, strlen(q->month));
}

static int s_queue_write(struct yj_txn *txn, void *arg)
{
	struct s_queue *q = arg;
	const struct yj_recipient *r = yj_config_recipient(q->cfg, q->recipient);
	Yjlink__V1__Notification n = YJLINK__V1__NOTIFICATION__INIT;
	int rc = s_done_read(txn, q);
	if (rc || q->already)
		return rc;
	if ((rc = yj_notes_next_number(txn, &n.number)))
		return rc;
	n.has_number = 1;
	n.recipient = (char *)q->recipient;
	n.rule = "board_pack";
	n.kind = "board_report";
	n.has_created_at_us = 1;
	n.created_at_us = q->now_us;
	n.legal_basis = r ? r->legal_basis : "";
	n.report = q->report;
	q->unroutable = !r || r->output < 0;
	if ((rc = yj_notes_put(txn, q->unroutable ? YJ_NOTES_UNROUTABLE : YJ_NOTES_OUTBOX, &n)))
		return rc;
	return yj_positions_put(txn, q->key, q->month, strlen(q->month));
}

static int s_building(const struct yj_boardpack *bp, const char *key)
{
	for (size_t i = 0; i < YJ_REPORTJOB_MAX; i++) {
		if (bp->building[i] && !strcmp(bp->building[i]->key, key))
			return 1;
	}
	return 0;
}

static void s_job_free(struct s_job *j)
{
	struct yj_boardpack *bp = j->bp;
	for (size_t i = 0; i < YJ_REPORTJOB_MAX; i++) {
		if (bp->building[i] == j)
			bp->building[i] = NULL;
	}
	free(j->recipient);
	free(j->scope);
	free(j);
}

/* The helper is done with j's report: queue it with its renderings (kept
 * in the job, so that a retry sends the same figures). */
static void s_built(void *arg, struct yj_report_result *res)
{
	struct s_job *j = arg;
	struct yj_boardpack *bp = j->bp;
	Yjlink__V1__BoardReport b = YJLINK__V1__BOARD_REPORT__INIT;
	struct s_queue q = { bp->core->cfg, j->recipient, j->key, j->month, &b, j->now_us, 0, 0, 0 };
	int stopping = res->rc == YJ_ESHUTDOWN;

	if (res->rc) {
		if (stopping)
			yj_info("boardpack: the %s pack for %s is left to the next start", j->month, j->recipient);
		else
			yj_warn("boardpack: the %s pack for %s (%s) cannot be built: %s", j->month, j->recipient, j->scope,
				*res->err ? res->err : yj_strerror(res->rc));
		goto out;
	}
	b.id = j->id;
	b.scope = j->scope;
	b.from = j->from;
	b.to = j->to;
	b.has_scheduled_us = 1;
	b.scheduled_us = j->now_us;
	b.html = res->html;
	b.csv = res->csv;
	b.json = res->json;
	int rc = yj_store_write(bp->core->store, s_queue_write, &q);
	if (rc)
		yj_warn("boardpack: %s cannot be queued: %s (tried again in %d s)", j->id, yj_strerror(rc), S_INTERVAL_MS / 1000);
	else if (!q.already) {
		yj_notice("boardpack: %s (%s, %s to %s, %zu events read) queued for %s%s", j->id, j->scope, j->from, j->to,
			  res->events_read, j->recipient, q.unroutable ? ", which has no destination: it waits" : "");
		yj_outbox_kick(bp->core->outbox);
	}
out:
	s_job_free(j);
	/* Another pack may have waited for a helper. */
	if (!stopping)
		yj_boardpack_run_now(bp);
}

/* Start building pack p for the month before (y, m) in a report helper
 * (reportjob.h: never on the loop). 1 when started, 0 when it was queued
 * already, is being built, or waits for a free helper; <0 on error. */
static int s_pack(struct yj_boardpack *bp, const struct yj_board_pack *p, int y, int m, int64_t due_us, int64_t now_us)
{
	const struct yj_config *cfg = bp->core->cfg;
	int py = m == 1 ? y - 1 : y, pm = m == 1 ? 12 : m - 1;
	static const int mdays[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	int last = mdays[pm - 1] + (pm == 2 && ((py % 4 == 0 && py % 100 != 0) || py % 400 == 0));
	char month[24], key[YJ_POSITION_KEY_MAX + 1];
	snprintf(month, sizeof(month), "%04d-%02d", py % 10000, pm);
	snprintf(key, sizeof(key), S_KEY "%.90s/%.90s", p->scope, p->recipient);
	if (s_building(bp, key))
		return 0;

	struct s_queue q = { cfg, p->recipient, key, month, NULL, now_us, 0, 0, 0 };
	int rc = yj_store_read(bp->core->store, s_done_read, &q);
	if (rc || q.already)
		return rc;
	if (q.first && now_us - due_us > 86400 * INT64_C(1000000)) {
		yj_info("boardpack: %s for %s: first sent on its next day (the %s pack fell due before it was configured)",
			p->scope, p->recipient, month);
		return yj_store_write(bp->core->store, s_mark_write, &q);
	}
	size_t slot = YJ_REPORTJOB_MAX;
	for (size_t i = 0; i < YJ_REPORTJOB_MAX && slot == YJ_REPORTJOB_MAX; i++) {
		if (!bp->building[i])
			slot = i;
	}
	if (slot == YJ_REPORTJOB_MAX)
		return 0;
	struct s_job *j = calloc(1, sizeof(*j));
	if (!j || !(j->recipient = strdup(p->recipient)) || !(j->scope = strdup(p->scope))) {
		if (j)
			free(j->recipient);
		free(j);
		return YJ_ENOMEM;
	}
	j->bp = bp;
	j->now_us = now_us;
	memcpy(j->key, key, sizeof(key));
	memcpy(j->month, month, sizeof(month));
	snprintf(j->from, sizeof(j->from), "%s-01", month);
	snprintf(j->to, sizeof(j->to), "%s-%02d", month, last);
	const char *scope = strncmp(p->scope, "yjs:", 4) ? "force" : p->scope + 4;
	snprintf(j->id, sizeof(j->id), "%s-board-%.64s-%s", cfg->deployment_id, scope, month);
	struct yj_report_params rp = { .from = j->from, .to = j->to, .yjs = strcmp(p->scope, "force") ? p->scope : NULL, .now_us = now_us };
	bp->building[slot] = j;
	rc = yj_reportjob_start(bp->core->reports, &rp, YJ_REPORT_HTML | YJ_REPORT_CSV | YJ_REPORT_JSON, s_built, j);
	if (rc) {
		s_job_free(j);
		/* All helpers busy: the end of one asks again. */
		return rc == YJ_EAGAIN ? 0 : rc;
	}
	return 1;
}

int yj_boardpack_run_now(struct yj_boardpack *bp)
{
	const struct yj_config *cfg = bp->core->cfg;
	const struct yj_board_pack *packs = cfg->board_packs.items;
	int64_t now = yj_clock_now_us();
	int started = 0, rc = 0;
	if (!bp->core->reports)
		return 0;
	for (size_t i = 0; i < cfg->board_packs.n; i++) {
		int y, m;
		int64_t due = 0;
		if (s_last_due(&packs[i], now, &y, &m, &due))
			continue;
		int r = s_pack(bp, &packs[i], y, m, due, now);
		if (r > 0)
			started += r;
		else if (r < 0)
			rc = r;
	}
	return rc < 0 ? rc : started;
}

static int s_tick(struct yj_loop *loop, void *arg)
{
	(void)loop;
	yj_boardpack_run_now(arg);
	return 0;
}

int yj_boardpack_start(struct yj_core *core, struct yj_boardpack **out)
{
	struct yj_boardpack *bp = calloc(1, sizeof(*bp));
	if (!bp)
		return YJ_ENOMEM;
	bp->core = core;
	/* Soon after start, then twice a minute: a pack missed while stopped goes at once. */
	bp->timer = yj_loop_timer(core->loop, 2000, S_INTERVAL_MS, s_tick, bp);
	if (bp->timer < 0) {
		int rc = (int)bp->timer;
		free(bp);
		return rc;
	}
	*out = bp;
	return 0;
}

void yj_boardpack_stop(struct yj_boardpack **pbp)
{
	struct yj_boardpack *bp = pbp ? *pbp : NULL;
	if (!bp)
		return;
	yj_loop_timer_cancel(bp->core->loop, bp->timer);
	free(bp);
	*pbp = NULL;
}
