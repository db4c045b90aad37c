/* retention.h: erasure of events past retention.event_days (quality.md
 * "Retention", DPA 2018 s.47: personal data kept no longer than needed).
 *
 * One batch is one write transaction: the oldest events stored before the
 * cut-off, at most max of them, each with its index entries, its hold and
 * "who has had it" rows and its digest entries; once no event is due, the
 * dead-letter and unroutable notifications about erased events, and audit
 * records past retention.audit_days (the chain goes on from the last one
 * erased: db/audit.h). Each batch
 * that erases anything appends one audit record (action "erasure": how
 * many, of which class, the seq range and the cut-off, never the data).
 * Notifications still waiting in the outbox are left to the outbox (it
 * owns them in memory; delivery.max_age_s moves them to the dead-letter
 * queue long before any retention period ends). The caller runs batches
 * one per loop iteration, so ingest commits in between.
 *
 * Ownership: nothing kept; the config is borrowed per call.
 */
#ifndef YJ_RETENTION_H
#define YJ_RETENTION_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "core.h"
#include "store.h"

struct yj_retention_batch {
	uint64_t events;       /* erased in this batch */
	uint64_t first_seq;    /* their range (0 when none) */
	uint64_t last_seq;
	uint64_t notes;        /* dead-letter and unroutable notifications erased */
	uint64_t audit;        /* audit records past retention.audit_days erased */
	int more;              /* more is due: run another batch */
};

/* The cut-off: events stored before it are due (now - retention.event_days). */
int64_t yj_retention_cutoff(const struct yj_config *cfg, int64_t now_us);

/* One batch inside txn (a write transaction): see above. actor names who
 * ran it in the audit record ("yjlinkd" for the daily job, "uid:N" for
 * yjlinkctl purge). */
int yj_retention_batch(struct yj_txn *txn, const struct yj_config *cfg, int64_t now_us, size_t max,
		       const char *actor, struct yj_retention_batch *out);

/* What is due now, read-only (purge --dry-run). */
int yj_retention_due(struct yj_txn *txn, const struct yj_config *cfg, int64_t now_us, uint64_t *events,
		     uint64_t *first_seq, uint64_t *last_seq);

/* The job: every hour (and soon after start) it looks for due events and
 * erases them, one batch of S_BATCH per loop iteration until none is due. */
struct yj_retention;

int yj_retention_start(struct yj_core *core, struct yj_retention **out);
void yj_retention_stop(struct yj_retention **r);

/* `yjlinkctl purge`: start a run now (if none is under way) on behalf of
 * actor; *due is how many events it will erase. */
int yj_retention_run_now(struct yj_retention *r, const char *actor, uint64_t *due);

/* For status and metrics: events erased since start, whether a run is
 * under way, when the last run ended (0: none yet). */
struct yj_retention_stats {
	uint64_t erased_events;
	uint64_t erased_notes;
	int running;
	int64_t last_end_us;
};
void yj_retention_stats(const struct yj_retention *r, struct yj_retention_stats *out);

#endif
