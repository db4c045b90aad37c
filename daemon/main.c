/* main.c: yjlinkd. Reads the config, opens the store, starts the adapters
 * and the control socket, and runs the one event loop until SIGTERM.
 *
 *   yjlinkd [--config FILE] [--set KEY=VALUE]... [--check] [--config-reference] [--version]
 */
#include <getopt.h>
#include <malloc.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include "adapter.h"
#include "clock.h"
#include "config.h"
#include "control.h"
#include "core.h"
#include "curlm.h"
#include "db/positions.h"
#include "db/audit.h"
#include "db/quarantine.h"
#include "digest.h"
#include "boardpack.h"
#include "reportjob.h"
#include "directory.h"
#include "practice.h"
#include "retention.h"
#include "err.h"
#include "ingest.h"
#include "log.h"
#include "loop.h"
#include "metrics.h"
#include "normalise.h"
#include "prom.h"
#include "outbox.h"
#include "refdata.h"
#include "route.h"
#include "sd.h"
#include "store.h"
#include "zap.h"
#include "tz.h"

#ifndef YJ_VERSION
#define YJ_VERSION "0.1.0"
#endif

#define S_MAX_SETS 64
#define S_MAX_ADAPTERS 16

/* The daemon: the core's parts (core.h) and what only main.c keeps. */
struct s_daemon {
	struct yj_core core;                 /* the parts every module borrows */
	const char *config_file;             /* NULL: the embedded default */
	const char *sets[S_MAX_SETS];        /* --set overrides, borrowed from argv */
	size_t n_sets;
	struct yj_config *cfg;               /* owned: the config in force (core.cfg) */
	struct yj_refdata *ref;              /* owned: the tables in force (core.ref) */
	struct yj_prom prom;                 /* metrics text, rebuilt each second */
	struct yj_core_api api;              /* handed to adapters */
	void *adapter_state[S_MAX_ADAPTERS]; /* owned by each adapter */
	int sigfd;                           /* signalfd for TERM, INT, HUP */
	int stopping;                        /* SIGTERM seen */
	int64_t stop_deadline_ms;            /* end of the RETRY grace period */
	char reload_state[512];              /* why the last reload was refused, "" if it was not */
	int quar_chained;                    /* a follow-up quarantine expiry is due at the next iteration */
};

static struct s_daemon *s_of(struct yj_core *core) { return (struct s_daemon *)core; }

/* What the config loader, which knows no adapter, is handed of each one
 * compiled in: its conf (settings.h), NULL-terminated and in yj_adapters'
 * order, so that a recipient's output index in the config names its
 * adapter in core->adapters too. Filled once, by s_owners_fill. */
static const struct yj_settings_owner *s_owners[S_MAX_ADAPTERS + 1];

/* Fill s_owners; *n the number of adapters. YJ_ERANGE when more are
 * compiled in than this build can hold. */
static int s_owners_fill(size_t *n)
{
	size_t i;
	for (i = 0; yj_adapters[i]; i++) {
		if (i == S_MAX_ADAPTERS)
			return YJ_ERANGE;
		s_owners[i] = &yj_adapters[i]->conf;
	}
	s_owners[i] = NULL;
	*n = i;
	return 0;
}

static const struct yj_config *s_api_config(void *core) { return ((struct yj_core *)core)->cfg; }

/* An adapter's own settings in cfg: the loader knows it by its conf. */
static const void *s_api_settings(const struct yj_config *cfg, const struct yj_adapter *a)
{
	return yj_config_settings(cfg, &a->conf);
}

static int s_api_submit(void *core, const struct yj_request *req, yj_reply_fn done, void *arg)
{
	return yj_ingest_submit(((struct yj_core *)core)->ingest, req, done, arg);
}

struct s_position_read {
	const char *key;
	void *buf;
	size_t size, *len;
};

static int s_position_read(struct yj_txn *txn, void *arg)
{
	struct s_position_read *p = arg;
	return yj_positions_get(txn, p->key, p->buf, p->size, p->len);
}

static int s_api_position_get(void *core, const char *key, void *buf, size_t size, size_t *len)
{
	struct s_position_read p = { key, buf, size, len };
	return yj_store_read(((struct yj_core *)core)->store, s_position_read, &p);
}

static int s_api_position_put(void *core, const char *key, const void *val, size_t len)
{
	return yj_outbox_position(((struct yj_core *)core)->outbox, key, val, len);
}

static void s_usage(FILE *out)
{
	fprintf(out,
		"usage: yjlinkd [--config FILE] [--set KEY=VALUE]... [--check]\n"
		"       yjlinkd --config-reference | --version | --help\n"
		"\n"
		"  --config FILE       config file (libconfig); default: the embedded demo config\n"
		"  --set KEY=VALUE     override one setting by its dotted path (repeatable)\n"
		"  --check             validate the config and exit: 0 good, 1 with FILE:LINE: message lines\n"
		"  --config-reference  print every setting as a Markdown table\n");
}

static enum yj_log_level s_level(const char *s)
{
	if (!strcmp(s, "err"))
		return YJ_LOG_ERR;
	if (!strcmp(s, "warning"))
		return YJ_LOG_WARNING;
	if (!strcmp(s, "notice"))
		return YJ_LOG_NOTICE;
	if (!strcmp(s, "debug"))
		return YJ_LOG_DEBUG;
	return YJ_LOG_INFO;
}

/* Config and reference tables together: a reload takes both or neither. */
static int s_load(struct s_daemon *d, struct yj_diag *diag, struct yj_config **cfg, struct yj_refdata **ref)
{
	int rc = yj_config_load(d->config_file, d->sets, d->n_sets, s_owners, diag, cfg);
	if (rc)
		return rc;
	char *dir = yj_config_reference_dir(*cfg);
	rc = yj_refdata_load(dir, diag, ref);
	free(dir);
	if (rc)
		goto fail;
	int before = diag->count;
	yj_route_check_config(*cfg, *ref, diag);
	if (diag->count > before)
		rc = YJ_ECONFIG;
	if (!yj_ref_force(*ref, (*cfg)->deployment_force)) {
		yj_diag_report(diag, (*cfg)->source, 0, "deployment.force %s is not in forces.csv",
			       (*cfg)->deployment_force);
		rc = YJ_ECONFIG;
	}
	for (size_t i = 0; i < (*cfg)->ingest_forces.n; i++) {
		if (!yj_ref_force(*ref, (*cfg)->ingest_forces.v[i])) {
			yj_diag_report(diag, (*cfg)->source, 0, "ingest.forces: %s is not in forces.csv",
				       (*cfg)->ingest_forces.v[i]);
			rc = YJ_ECONFIG;
		}
	}
	if (!rc) {
		/* Warnings, not errors: who nobody reaches, which DSA is due for review (start, reload, --check). */
		yj_directory_warn(*cfg, *ref, diag);
		return 0;
	}
fail:
	yj_refdata_free(ref);
	yj_config_free(cfg);
	return rc;
}

/* The one-line STATUS= of interfaces.md §7 and issue 5: events today,
 * outbox depth, dead letters, unroutable, last digest. */
static void s_status_line(struct s_daemon *d, char *buf, size_t size)
{
	struct yj_outbox_stats os;
	uint64_t today = 0;
	char last[40] = "none yet";
	memset(&os, 0, sizeof(os));
	if (d->core.store)
		yj_digest_events_today(d->core.store, &today);
	if (d->core.outbox)
		yj_outbox_stats(d->core.outbox, &os);
	if (d->core.digest)
		yj_digest_last_sent(d->core.digest, last, sizeof(last));
	uint64_t escalated = 0;
	unsigned silent = 0;
	yj_practice_summary(d->core.practice, &escalated, &silent);
	snprintf(buf, size,
		 "%sevents today %llu; outbox %llu; dead letters %llu; unroutable %llu; escalated %llu%s; last digest %s",
		 d->reload_state[0] ? "RELOAD REFUSED (old config kept); " : "", (unsigned long long)today,
		 (unsigned long long)os.depth, (unsigned long long)os.dead_letters, (unsigned long long)os.unroutable,
		 (unsigned long long)escalated, silent ? "; FEED SILENT" : "", last);
}

static void s_log_diag(void *arg, const char *file, int line, const char *msg)
{
	struct s_daemon *d = arg;
	if (line > 0)
		yj_err("config: %s:%d: %s", file, line, msg);
	else
		yj_err("config: %s: %s", file, msg);
	if (!d->reload_state[0])
		snprintf(d->reload_state, sizeof(d->reload_state), "%s:%d: %s", file, line, msg);
}

/* The reload's audit record (issue "security", item 4): who, which config
 * (its hash), and which top-level sections changed. */
struct s_reload_audit {
	const char *actor;
	const struct yj_config *old, *cfg;
};

static const struct yj_config_section_hash *s_section(const struct yj_config *c, const char *name)
{
	for (size_t i = 0; i < c->n_sections; i++)
		if (!strcmp(c->sections[i].name, name))
			return &c->sections[i];
	return NULL;
}

static int s_reload_audit_write(struct yj_txn *txn, void *arg)
{
	struct s_reload_audit *r = arg;
	char hex[2 * sizeof(r->cfg->hash) + 1], reason[1200];
	int any = 0;
	sodium_bin2hex(hex, sizeof(hex), r->cfg->hash, sizeof(r->cfg->hash));
	size_t used = (size_t)snprintf(reason, sizeof(reason), "config %s from %s; sections changed:", hex, r->cfg->source);
	/* New or different sections, then the ones the new config dropped. */
	for (size_t i = 0; i < r->cfg->n_sections && used < sizeof(reason); i++) {
		const struct yj_config_section_hash *o = s_section(r->old, r->cfg->sections[i].name);
		if (o && !memcmp(o->hash, r->cfg->sections[i].hash, sizeof(o->hash)))
			continue;
		used += (size_t)snprintf(reason + used, sizeof(reason) - used, "%s %s%s", any ? "," : "",
					 r->cfg->sections[i].name, o ? "" : " (added)");
		any = 1;
	}
	for (size_t i = 0; i < r->old->n_sections && used < sizeof(reason); i++) {
		if (s_section(r->cfg, r->old->sections[i].name))
			continue;
		used += (size_t)snprintf(reason + used, sizeof(reason) - used, "%s %s (removed)", any ? "," : "",
					 r->old->sections[i].name);
		any = 1;
	}
	if (!any && used < sizeof(reason))
		snprintf(reason + used, sizeof(reason) - used, " none");
	Yjlink__V1__AuditRecord a = YJLINK__V1__AUDIT_RECORD__INIT;
	a.has_at_us = 1;
	a.at_us = yj_clock_now_us();
	a.action = "reload";
	a.actor = (char *)r->actor;
	a.reason = reason;
	return yj_audit_append(txn, &a);
}

/* SIGHUP and `yjlinkctl reload`: a whole new config and tables, or none. */
static int s_reload(struct yj_core *core, const char *actor)
{
	struct s_daemon *d = s_of(core);
	struct yj_config *cfg = NULL;
	struct yj_refdata *ref = NULL;
	struct yj_diag diag = { s_log_diag, d, 0 };
	char status[600];

	yj_sd_reloading();
	d->reload_state[0] = '\0';
	int rc = s_load(d, &diag, &cfg, &ref);
	if (rc) {
		yj_err("reload: new config refused with %d problem(s); still running on the old one", diag.count);
	} else {
		struct s_reload_audit ra = { actor ? actor : "yjlinkd", d->cfg, cfg };
		int arc = yj_store_write(d->core.store, s_reload_audit_write, &ra);
		if (arc)
			yj_warn("reload: the audit record of this reload could not be written: %s", yj_strerror(arc));
		/* The normaliser thread reads the old tables while it parses: what
		 * was sent before the reload is taken under the old config. */
		struct yj_route_counts routed;
		yj_ingest_flush(d->core.ingest, &routed);
		if (routed.outbox)
			yj_outbox_kick(d->core.outbox);
		/* Between two loop iterations: every module reads core->cfg at use. */
		d->core.cfg = cfg;
		d->core.ref = ref;
		for (size_t i = 0; yj_adapters[i]; i++) {
			if (d->adapter_state[i] && yj_adapters[i]->reload)
				yj_adapters[i]->reload(d->adapter_state[i], cfg);
		}
		yj_config_free(&d->cfg);
		yj_refdata_free(&d->ref);
		d->cfg = cfg;
		d->ref = ref;
		yj_log_set_level(s_level(cfg->log_level));
		yj_notice("reload: new config in force (%s)", cfg->source);
		if (d->core.outbox)
			yj_outbox_reconcile(d->core.outbox);
	}
	s_status_line(d, status, sizeof(status));
	/* READY=1 also after a refused reload: the daemon is serving. */
	yj_sd_ready(status);
	return rc;
}

static int s_on_signal(struct yj_loop *loop, void *sock, int fd, short revents, void *arg)
{
	struct s_daemon *d = arg;
	struct signalfd_siginfo si;
	(void)sock;
	(void)revents;
	while (read(fd, &si, sizeof(si)) == sizeof(si)) {
		if (si.ssi_signo == SIGHUP) {
			yj_notice("SIGHUP: reloading %s", d->config_file ? d->config_file : "the embedded config");
			s_reload(&d->core, "signal:SIGHUP");
		} else if (!d->stopping) {
			yj_notice("signal %u: stopping; new requests get RETRY", si.ssi_signo);
			yj_sd_stopping();
			d->stopping = 1;
			yj_ingest_set_draining(d->core.ingest, 1);
			/* A delivery begun now could not finish before the stop cuts it off. */
			yj_outbox_drain(d->core.outbox);
			for (size_t i = 0; yj_adapters[i]; i++) {
				if (d->adapter_state[i] && yj_adapters[i]->drain)
					yj_adapters[i]->drain(d->adapter_state[i]);
			}
			/* A short grace period answers what is already queued in sockets. */
			d->stop_deadline_ms = yj_loop_now_ms() + 200;
			yj_loop_wake(loop);
		}
	}
	return 0;
}

/* The one before-sleep (Redis's beforeSleep): once per loop iteration,
 * after every ready handler has run, in this order and for these reasons:
 *  1. ingest: commit the batch the normaliser thread has parsed in one
 *     synced transaction, then send every reply (persist before acknowledge:
 *     an OK must never go out before its commit), and hand it what the
 *     inputs collected since;
 *  2. delivery: when that batch routed notifications, start them now rather
 *     at the outbox's next tick (the notification latency bar), which reads
 *     the transaction just committed;
 *  3. completions: commit what the outputs finished this iteration (each with
 *     its audit record and its removal from the outbox) in one transaction,
 *     which then starts the recipients' next jobs. After 1 so that a batch's
 *     replies never wait behind delivery bookkeeping.
 * Then the health beat, and the stop once the grace period is over. */
static int s_before_sleep(struct yj_loop *loop, void *arg)
{
	struct s_daemon *d = arg;
	struct yj_route_counts routed;
	int rc = yj_ingest_pump(d->core.ingest, &routed);
	if (routed.outbox)
		yj_outbox_kick_appended(d->core.outbox);
	yj_outbox_flush(d->core.outbox);
	if (d->core.metrics) {
		yj_metrics_beat(d->core.metrics);
		/* Only a batch actually written says anything about the store. */
		if (rc)
			yj_metrics_set_store_ok(d->core.metrics, rc > 0, rc < 0 ? yj_strerror(rc) : "");
	}
	if (d->stopping && yj_loop_now_ms() >= d->stop_deadline_ms)
		yj_loop_stop(loop);
	else if (d->stopping)
		yj_loop_wake(loop);
	return 0;
}

/* The escalation hook of the outbox: a disclosure that could not be made is
 * said at warning level, by kind and recipient, never with its content. */
static void s_on_dead_letter(void *arg, const char *job_id, const char *recipient, const char *kind, const char *detail)
{
	(void)arg;
	yj_warn("delivery: %s (%s) to %s could not be delivered and is in the dead-letter queue: %s; "
		"see `yjlinkctl dlq list`, fix the destination, then `yjlinkctl dlq retry %s`",
		job_id, kind, recipient, detail, job_id);
}

static int s_watchdog(struct yj_loop *loop, void *arg)
{
	(void)loop;
	(void)arg;
	yj_sd_watchdog();
	return 0;
}

/* Quarantine retention (quarantine.retention_days, docs/limits.md): every
 * S_QUAR_EXPIRE_MS one write transaction erases at most S_QUAR_EXPIRE_MAX
 * entries that are due, audited (db/quarantine.h). While more are due the
 * next transaction follows at the next loop iteration, after that
 * iteration's ingest commit: a backlog of any size never holds a batch up
 * for longer than one bounded transaction. */
#define S_QUAR_EXPIRE_MS 10000
#define S_QUAR_EXPIRE_MAX 1000

struct s_quar_expire {
	int64_t before_us, now_us;          /* cut-off and the time of the audit record */
	struct yj_quarantine_expiry res;    /* what was erased */
};

static int s_quar_expire_write(struct yj_txn *txn, void *arg)
{
	struct s_quar_expire *e = arg;
	return yj_quarantine_expire(txn, e->before_us, S_QUAR_EXPIRE_MAX, e->now_us, &e->res);
}

static int s_quar_expire_next(struct yj_loop *loop, void *arg);

static int s_quar_expire_timer(struct yj_loop *loop, void *arg)
{
	struct s_daemon *d = arg;
	struct s_quar_expire e;
	memset(&e, 0, sizeof(e));
	e.now_us = yj_clock_now_us();
	e.before_us = e.now_us - d->core.cfg->quarantine_retention_days * 86400 * INT64_C(1000000);
	int rc = yj_store_write(d->core.store, s_quar_expire_write, &e);
	if (rc) {
		yj_warn("quarantine: retention could not erase what is due (%s); trying again in %d s", yj_strerror(rc),
			S_QUAR_EXPIRE_MS / 1000);
		return 0;
	}
	if (e.res.erased)
		yj_info("quarantine: retention erased %llu entries, ids %llu-%llu, %llu bytes (audited)",
			(unsigned long long)e.res.erased, (unsigned long long)e.res.first_id,
			(unsigned long long)e.res.last_id, (unsigned long long)e.res.bytes);
	if (e.res.more && !d->quar_chained && yj_loop_timer(loop, 0, 0, s_quar_expire_next, d) >= 0)
		d->quar_chained = 1;
	return 0;
}

static int s_quar_expire_next(struct yj_loop *loop, void *arg)
{
	((struct s_daemon *)arg)->quar_chained = 0;
	return s_quar_expire_timer(loop, arg);
}

static int s_quar_usage_read(struct yj_txn *txn, void *arg)
{
	return yj_quarantine_usage(txn, arg);
}

/* The Prometheus text of interfaces.md §7, from the loop's own counters. */
static void s_render_metrics(struct s_daemon *d)
{
	struct yj_prom *p = &d->prom;
	const struct yj_ingest_stats *is = yj_ingest_stats(d->core.ingest);
	struct yj_outbox_stats os;
	struct yj_store_stats ss;
	static const char *const rnames[] = { "ok", "retry", "fatal" };

	yj_prom_reset(p);
	memset(&os, 0, sizeof(os));
	memset(&ss, 0, sizeof(ss));
	yj_outbox_stats(d->core.outbox, &os);
	yj_store_stats(d->core.store, &ss);
	yj_prom_family(p, "yjlink_events_ingested_total", "counter", "Events stored (OK), by feed, since start");
	for (int f = 1; f < YJ_FEED_COUNT; f++)
		yj_prom_sample_l(p, "yjlink_events_ingested_total", (double)is->ingested[f], "feed", yj_feed_name(f), NULL);
	yj_prom_family(p, "yjlink_ingest_rejected_total", "counter", "Requests refused (REJECT), by error code");
	for (int r = YJ_REJ_PROTOCOL; r <= YJ_REJ_FORBIDDEN; r++)
		yj_prom_sample_l(p, "yjlink_ingest_rejected_total", (double)is->rejected[r], "error", yj_reject_code_name(r),
				 NULL);
	yj_prom_family(p, "yjlink_ingest_duplicates_total", "counter", "Requests answered DUP");
	yj_prom_sample(p, "yjlink_ingest_duplicates_total", NULL, (double)is->dups);
	yj_prom_family(p, "yjlink_ingest_retries_total", "counter",
		       "Requests answered RETRY, by reason: overloaded (the client leaves its replies unread, or memory "
		       "ran short), shutting_down, store (disk or map full, store error)");
	for (int r = 0; r < YJ_RETRY_REASONS; r++)
		yj_prom_sample_l(p, "yjlink_ingest_retries_total", (double)is->retries_by[r], "reason",
				 yj_retry_reason_name((enum yj_retry_reason)r), NULL);
	yj_prom_histogram(p, "yjlink_commit_seconds", "Duration of each group commit (synced LMDB transaction)",
			  yj_commit_bucket_bounds, is->commit_buckets, YJ_COMMIT_BUCKETS - 1, is->commit_seconds_sum);
	yj_prom_family(p, "yjlink_outbox_depth", "gauge", "Notifications waiting for delivery");
	yj_prom_sample(p, "yjlink_outbox_depth", NULL, (double)os.depth);
	yj_prom_family(p, "yjlink_dead_letters", "gauge", "Notifications in the dead-letter queue");
	yj_prom_sample(p, "yjlink_dead_letters", NULL, (double)os.dead_letters);
	yj_prom_family(p, "yjlink_unroutable", "gauge", "Notifications waiting for a recipient destination");
	yj_prom_sample(p, "yjlink_unroutable", NULL, (double)os.unroutable);
	yj_prom_family(p, "yjlink_deliveries_total", "counter", "Delivery attempts by transport and result");
	for (size_t a = 0; yj_adapters[a]; a++) {
		if (!yj_adapters[a]->conf.transport)
			continue;
		for (int r = 0; r < YJ_DELIVERY_RESULTS; r++)
			yj_prom_sample_l(p, "yjlink_deliveries_total",
					 (double)yj_outbox_attempts(d->core.outbox, a, (enum yj_delivery_result)r), "transport",
					 yj_adapters[a]->conf.transport, "result", rnames[r], NULL);
	}
	yj_prom_family(p, "yjlink_dead_lettered_total", "counter", "Jobs moved to the dead-letter queue since start");
	yj_prom_sample(p, "yjlink_dead_lettered_total", NULL, (double)os.dead_lettered);
	yj_practice_prom(d->core.practice, p);
	yj_prom_family(p, "yjlink_zap_refused_total", "counter",
		       "CURVE handshakes refused (a key not listed for the endpoint), by ZAP domain, since start");
	{
		const char *dom;
		uint64_t n;
		for (size_t i = 0; yj_zap_refusals(d->core.zap, i, &dom, &n); i++)
			yj_prom_sample_l(p, "yjlink_zap_refused_total", (double)n, "domain", dom, NULL);
	}
	yj_prom_family(p, "yjlink_data_quality_total", "counter",
		       "Events stored with a data-quality issue since start, by issue (routing.md: flagged, not hidden)");
	yj_prom_sample_l(p, "yjlink_data_quality_total", (double)is->data_quality, "issue", "outcome_code_not_for_children",
			 NULL);
	yj_prom_family(p, "yjlink_holds_total", "counter", "Events held for the officer in the case, since start");
	yj_prom_sample(p, "yjlink_holds_total", NULL, (double)is->held);
	yj_prom_family(p, "yjlink_store_events", "gauge", "Events in the store");
	yj_prom_sample(p, "yjlink_store_events", NULL, (double)ss.events);
	yj_prom_family(p, "yjlink_store_map_bytes", "gauge", "LMDB map size");
	yj_prom_sample(p, "yjlink_store_map_bytes", NULL, (double)ss.map_size);
	yj_prom_family(p, "yjlink_store_used_bytes", "gauge", "LMDB pages in use");
	yj_prom_sample(p, "yjlink_store_used_bytes", NULL, (double)ss.used_bytes);
	struct yj_quarantine_usage qu;
	memset(&qu, 0, sizeof(qu));
	yj_store_read(d->core.store, s_quar_usage_read, &qu);
	yj_prom_family(p, "yjlink_quarantine_entries", "gauge", "Refused messages kept in quarantine");
	yj_prom_sample(p, "yjlink_quarantine_entries", NULL, (double)qu.entries);
	yj_prom_family(p, "yjlink_quarantine_bytes", "gauge", "Bytes the quarantine holds, as quarantine.max_bytes counts them");
	yj_prom_sample(p, "yjlink_quarantine_bytes", NULL, (double)qu.bytes);
	yj_prom_family(p, "yjlink_quarantine_max_bytes", "gauge", "The quarantine's quota (quarantine.max_bytes)");
	yj_prom_sample(p, "yjlink_quarantine_max_bytes", NULL, (double)d->core.cfg->quarantine_max_bytes);
	yj_prom_family(p, "yjlink_quarantine_dropped_total", "counter",
		       "Refused messages answered REJECT but not kept, the quarantine being full (over the store's life)");
	yj_prom_sample(p, "yjlink_quarantine_dropped_total", NULL, (double)qu.dropped);
	yj_prom_family(p, "yjlink_quarantine_expired_total", "counter",
		       "Quarantined messages erased by quarantine.retention_days (over the store's life)");
	yj_prom_sample(p, "yjlink_quarantine_expired_total", NULL, (double)qu.expired);
	/* Each adapter's own families (a publisher's gaps, a subscriber's lag). */
	for (size_t a = 0; yj_adapters[a]; a++) {
		if (d->adapter_state[a] && yj_adapters[a]->metrics)
			yj_adapters[a]->metrics(d->adapter_state[a], p);
	}
	yj_prom_family(p, "yjlink_up", "gauge", "1 while yjlinkd runs; reload_refused 1 when the last reload was refused");
	yj_prom_sample_l(p, "yjlink_up", 1, "reload_refused", d->reload_state[0] ? "1" : "0", NULL);
	if (p->rc == 0)
		yj_metrics_publish(d->core.metrics, p->buf, p->len);
}

static int s_metrics_timer(struct yj_loop *loop, void *arg)
{
	(void)loop;
	s_render_metrics(arg);
	return 0;
}

static int s_status_timer(struct yj_loop *loop, void *arg)
{
	char status[600];
	(void)loop;
	s_status_line(arg, status, sizeof(status));
	yj_sd_status(status);
	/* Batches of thousands leave freed heap behind: hand it back to the
	 * system every few seconds so private memory follows the load. */
	malloc_trim(0);
	return 0;
}

/* Last resort after the final commit: every acknowledged event is on disk,
 * so a cleanup that hangs (a peer that never answers a library's goodbye)
 * must not keep systemd waiting until it kills us. */
static void s_cleanup_timeout(int sig)
{
	static const char msg[] = "<3>stop: cleanup took over 15 s; exiting now (all acknowledged data is on disk)\n";
	(void)sig;
	if (write(STDERR_FILENO, msg, sizeof(msg) - 1) < 0)
		_exit(1);
	_exit(0);
}

static int s_parse_args(struct s_daemon *d, int argc, char **argv, int *check, int *reference)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' }, { "set", required_argument, NULL, 's' },
		{ "check", no_argument, NULL, 'k' },        { "config-reference", no_argument, NULL, 'r' },
		{ "version", no_argument, NULL, 'V' },      { "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c;
	while ((c = getopt_long(argc, argv, "c:s:", opts, NULL)) != -1) {
		switch (c) {
		case 'c': d->config_file = optarg; break;
		case 's':
			if (d->n_sets == S_MAX_SETS) {
				fprintf(stderr, "yjlinkd: at most %d --set options\n", S_MAX_SETS);
				return 2;
			}
			d->sets[d->n_sets++] = optarg;
			break;
		case 'k': *check = 1; break;
		case 'r': *reference = 1; break;
		case 'V': printf("yjlinkd %s\n", YJ_VERSION); exit(0);
		case 'h': s_usage(stdout); exit(0);
		default: s_usage(stderr); return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "yjlinkd: unexpected argument '%s'\n", argv[optind]);
		s_usage(stderr);
		return 2;
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct s_daemon d;
	int check = 0, reference = 0, rc = 0, exit_code = 1;
	size_t n_adapters = 0;
	struct yj_diag diag = { NULL, NULL, 0 };
	char status[600];

	memset(&d, 0, sizeof(d));
	d.sigfd = -1;
	/* Digest times, overnight periods and "today" are Europe/London. */
	setenv("TZ", "Europe/London", 1);
	tzset();
	/* The zone's table now, before any thread: nothing after reads the C
	 * library's time functions, whose lock a fork could leave held (tz.h). */
	yj_tz_init();
	if ((rc = s_parse_args(&d, argc, argv, &check, &reference)))
		return rc;
	if (s_owners_fill(&n_adapters)) {
		yj_err("more adapters compiled in than this build can hold (%d)", S_MAX_ADAPTERS);
		return 1;
	}
	if (reference) {
		yj_config_print_reference(stdout, s_owners);
		return 0;
	}
	yj_diag_warn_log(!check);
	if (s_load(&d, &diag, &d.cfg, &d.ref)) {
		fprintf(stderr, "yjlinkd: %d problem(s) in the configuration; nothing started\n", diag.count);
		return 1;
	}
	if (check) {
		printf("%s: configuration OK\n", d.cfg->source);
		exit_code = 0;
		goto out;
	}
	yj_log_set_level(s_level(d.cfg->log_level));
	if (d.cfg->testing_clock_control && *d.cfg->testing_clock_start) {
		int64_t us;
		int32_t off;
		if (yj_time_parse(d.cfg->testing_clock_start, strlen(d.cfg->testing_clock_start), &us, &off)) {
			fprintf(stderr, "yjlinkd: testing.clock_start must be RFC 3339 with an offset\n");
			goto out;
		}
		yj_clock_set_us(us);
	}
	yj_log_set_timestamps(getenv("JOURNAL_STREAM") == NULL && getenv("YJ_LOG_TIMESTAMPS") != NULL);
	d.core.started_us = yj_clock_now_us();
	d.core.started_ms = yj_loop_now_ms();
	d.core.cfg = d.cfg;
	d.core.ref = d.ref;
	d.core.reload_state = d.reload_state;
	d.core.reload = s_reload;
	d.core.adapters = yj_adapters;
	d.core.adapter_state = d.adapter_state;
	d.core.n_adapters = n_adapters;

	sigset_t mask;
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	signal(SIGPIPE, SIG_IGN);
	/* A file size limit must give EFBIG (answered RETRY), not kill us. */
	signal(SIGXFSZ, SIG_IGN);
	d.sigfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);

	/* The parts, in the order of the flow: store, loop, ingest, outputs,
	 * outbox, digests, control; torn down in reverse at out. */
	struct yj_store_opts so = {
		.path = d.cfg->store_path,
		.map_size = (size_t)d.cfg->store_map_size_mb << 20,
		.max_map_size = (size_t)d.cfg->store_max_map_size_mb << 20,
		.exclusive = 1,
	};
	if ((rc = yj_store_open(&so, &d.core.store))) {
		if (rc != YJ_EBUSY) /* store.c has said who holds it */
			yj_err("store: cannot open %s: %s (check store.path and its permissions)", so.path, yj_strerror(rc));
		goto out;
	}
	d.core.loop = yj_loop_new();
	d.core.zmq_ctx = zmq_ctx_new();
	if (!d.core.loop || !d.core.zmq_ctx || d.sigfd < 0)
		goto out;
	/* The ZAP handler before any adapter: libzmq lets every CURVE key in
	 * while none is bound (interfaces.md §1). */
	if ((rc = yj_zap_new(d.core.loop, d.core.zmq_ctx, &d.core.zap)))
		goto out;
	if ((rc = yj_ingest_new(&d.core, &d.core.ingest)) || (rc = yj_curlm_new(d.core.loop, &d.core.curlm)))
		goto out;
	d.api = (struct yj_core_api){ .core = &d.core, .loop = d.core.loop, .zmq_ctx = d.core.zmq_ctx,
				      .curlm = d.core.curlm, .config = s_api_config, .settings = s_api_settings,
				      .submit = s_api_submit, .position_get = s_api_position_get,
				      .position_put = s_api_position_put, .zap = d.core.zap };
	if (yj_loop_add(d.core.loop, NULL, d.sigfd, ZMQ_POLLIN, s_on_signal, &d) ||
	    yj_loop_before_sleep(d.core.loop, s_before_sleep, &d))
		goto out;
	for (size_t i = 0; yj_adapters[i]; i++) {
		const struct yj_adapter *a = yj_adapters[i];
		rc = a->init(&d.api, &d.adapter_state[i]);
		if (rc == YJ_ENOENT) {
			d.adapter_state[i] = NULL;
			continue;
		}
		if (rc || (rc = a->start(d.adapter_state[i]))) {
			yj_err("%s: cannot start: %s", a->conf.name, yj_strerror(rc));
			goto out;
		}
	}
	if ((rc = yj_outbox_start(&d.core, &d.core.outbox)))
		goto out;
	yj_outbox_set_dead_hook(d.core.outbox, s_on_dead_letter, &d);
	if ((rc = yj_digest_start(&d.core, &d.core.digest)))
		goto out;
	if ((rc = yj_retention_start(&d.core, &d.core.retention)))
		goto out;
	if ((rc = yj_practice_start(&d.core, &d.core.practice)))
		goto out;
	if ((rc = yj_reportjobs_new(&d.core, &d.core.reports)))
		goto out;
	if ((rc = yj_boardpack_start(&d.core, &d.core.boardpack)))
		goto out;
	if (yj_control_start(&d.core, &d.core.control))
		goto out;

	yj_prom_init(&d.prom);
	if (*d.cfg->metrics_endpoint) {
		if ((rc = yj_metrics_start(d.cfg->metrics_endpoint, 10000, &d.core.metrics)))
			goto out;
		s_render_metrics(&d);
		yj_loop_timer(d.core.loop, 1000, 1000, s_metrics_timer, &d);
	}
	uint64_t wd = yj_sd_watchdog_usec();
	if (wd)
		yj_loop_timer(d.core.loop, 0, (int64_t)(wd / 2000), s_watchdog, &d);
	yj_loop_timer(d.core.loop, 5000, 5000, s_status_timer, &d);
	yj_loop_timer(d.core.loop, 1000, S_QUAR_EXPIRE_MS, s_quar_expire_timer, &d);

	s_status_line(&d, status, sizeof(status));
	yj_notice("yjlinkd %s ready: deployment %s, store %s", YJ_VERSION, d.cfg->deployment_id, d.cfg->store_path);
	yj_sd_ready(status);

	rc = yj_loop_run(d.core.loop);
	yj_ingest_flush(d.core.ingest, NULL);
	signal(SIGALRM, s_cleanup_timeout);
	alarm(15);
	if (rc) {
		yj_err("main loop failed: %s", yj_strerror(rc));
		goto out;
	}
	yj_notice("stopped cleanly");
	exit_code = 0;
out:
	yj_metrics_stop(&d.core.metrics);
	yj_prom_free(&d.prom);
	/* First: a report under way still answers its caller (control) or
	 * leaves its pack to the next start (boardpack). */
	yj_reportjobs_destroy(&d.core.reports);
	yj_control_stop(&d.core.control);
	yj_boardpack_stop(&d.core.boardpack);
	yj_practice_stop(&d.core.practice);
	yj_retention_stop(&d.core.retention);
	yj_digest_stop(&d.core.digest);
	yj_outbox_stop(&d.core.outbox);
	for (size_t i = 0; yj_adapters[i] && i < S_MAX_ADAPTERS; i++) {
		if (d.adapter_state[i])
			yj_adapters[i]->destroy(&d.adapter_state[i]);
	}
	yj_curlm_destroy(&d.core.curlm);
	yj_ingest_destroy(&d.core.ingest);
	yj_zap_destroy(&d.core.zap);
	if (d.core.zmq_ctx)
		zmq_ctx_term(d.core.zmq_ctx);
	yj_loop_destroy(&d.core.loop);
	yj_store_close(&d.core.store);
	yj_refdata_free(&d.ref);
	yj_config_free(&d.cfg);
	if (d.sigfd >= 0)
		close(d.sigfd);
	return exit_code;
}
