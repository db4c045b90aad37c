/* outbox.h: the one delivery engine (Postfix's qmgr): every disclosure, an
 * event notification or a daily digest, is a job in the outbox
 * (db/notes.h), delivered by the output adapter of its recipient's
 * transport, with the same retry, backoff, dead-letter queue, escalation
 * hook, metrics and disclosure audit.
 *
 * Order: per recipient, up to S_WINDOW jobs are under way while it is
 * healthy; after a transient failure it goes back to one at a time, oldest
 * first, until it has caught up. A job waits until its not_before (an L&D
 * service's opening) and its next_attempt (backoff). A transient failure is
 * retried with exponential backoff and full jitter until delivery.max_age_s,
 * then dead-lettered; a permanent one is dead-lettered at once and the next
 * job goes. A recipient whose transport has no running adapter fails its
 * jobs as RETRY with a log line, so nothing waits in silence.
 *
 * Completions are committed in one transaction per loop iteration (group
 * commit, yj_outbox_flush() from the core's before-sleep), each with its
 * audit record and its removal from the outbox (and, for a digest, the
 * digest log's confirmation), so a crash re-sends (same id) but never
 * loses one.
 *
 * The message handed to an adapter is data (struct yj_message): the
 * notification JSON of interfaces.md §3 with the recipient's data sharing
 * agreement and holds applied, or the digest built by digest.h. The outbox
 * renders nothing for a transport.
 *
 * Ownership: the outbox borrows the core; hooks are the caller's.
 */
#ifndef YJ_OUTBOX_H
#define YJ_OUTBOX_H

#include <cjson/cJSON.h>
#include <stdint.h>

#include "adapter.h"
#include "config.h"
#include "core.h"
#include "store.h"
#include "yjlink.pb-c.h"

#define YJ_DELIVERY_RESULTS 3

/* Called once a job's move to the dead-letter queue is committed (the
 * escalation hook: whoever must hear of a disclosure that could not be made
 * plugs in here). Strings are borrowed for the call. */
typedef void (*yj_outbox_dead_fn)(void *arg, const char *job_id, const char *recipient, const char *kind,
				  const char *detail);

struct yj_outbox_stats {
	uint64_t depth;                   /* jobs waiting in the outbox */
	uint64_t dead_letters;            /* in the DLQ */
	uint64_t unroutable;              /* waiting for a destination */
	uint64_t in_flight;               /* deliveries under way */
	uint64_t dead_lettered;           /* jobs dead-lettered since start */
};

/* Attempts since start by adapter (index in core->adapters) and result. */
uint64_t yj_outbox_attempts(const struct yj_outbox *ob, size_t adapter, enum yj_delivery_result result);

struct yj_outbox;

int yj_outbox_start(struct yj_core *core, struct yj_outbox **out);
void yj_outbox_stop(struct yj_outbox **ob);

/* The escalation hook (NULL to unset). */
void yj_outbox_set_dead_hook(struct yj_outbox *ob, yj_outbox_dead_fn fn, void *arg);

/* Record a position (db/positions.h: a subscription's cursor) in the next
 * completion commit, with the deliveries it stands for. A newer value of the
 * same key replaces one still waiting. YJ_EINVAL for an over-long key or value. */
int yj_outbox_position(struct yj_outbox *ob, const char *key, const void *val, size_t len);

/* The daemon is stopping (SIGTERM): start no delivery from now on, so that
 * none is begun that the stop would cut off and a restart send again.
 * Completions of those under way are still committed (yj_outbox_flush). */
void yj_outbox_drain(struct yj_outbox *ob);

/* Jobs may have been committed or changed anywhere in the outbox (a dead
 * letter retried, a hold released, a reload): look for work now, every
 * recipient's jobs from the oldest. */
void yj_outbox_kick(struct yj_outbox *ob);

/* Only new jobs were committed since the last look (ingest's batch): look
 * for work now, each recipient's walk resuming where its last one stopped. */
void yj_outbox_kick_appended(struct yj_outbox *ob);

/* 1 while a dispatch pass that stopped at its time budget has yet to go
 * on (it does from the loop, after the loop's sockets are served). */
/* Digest jobs being built by helpers (digestjob.h): their deliveries start
 * when the builds end (tests run the loop until then). */
size_t yj_outbox_digests_building(const struct yj_outbox *ob);
int yj_outbox_pass_pending(const struct yj_outbox *ob);

/* Commit the completions gathered this iteration, then start what is due. */
int yj_outbox_flush(struct yj_outbox *ob);

/* After a reload: unroutable jobs whose recipient now has a destination move
 * to the outbox, and outbox jobs whose recipient lost its destination become
 * unroutable. Returns how many moved, or <0. */
int yj_outbox_reconcile(struct yj_outbox *ob);

int yj_outbox_stats(struct yj_outbox *ob, struct yj_outbox_stats *st);

/* `yjlinkctl outbox`: pending jobs by recipient with next attempt. */
cJSON *yj_outbox_describe(struct yj_outbox *ob);

/* Inside txn: dead letter number back into the outbox as new (attempts 0,
 * due at the time yj_route_when() gives now). YJ_ENOENT when absent. */
int yj_outbox_retry_dead(struct yj_txn *txn, const struct yj_config *cfg, uint64_t number, int64_t now_us);

/* The notification id of number n: "<deployment id>-<12 digits>". */
void yj_notification_id(const struct yj_config *cfg, uint64_t n, char *buf, size_t size);

/* The id a job is known by outside: a digest's own id, else its notification id. */
void yj_job_id(const struct yj_config *cfg, const Yjlink__V1__Notification *n, char *buf, size_t size);

/* The notification JSON of interfaces.md §3 for recipient r (data sharing
 * agreement and holds applied); fields (may be NULL) receives the field
 * paths supplied. Caller frees with cJSON_Delete. NULL when the event is gone. */
cJSON *yj_notification_json(struct yj_txn *txn, const struct yj_config *cfg, const Yjlink__V1__Notification *n,
			    const struct yj_recipient *r, cJSON *fields);

/* The retry delay after `attempts` failures: exponential from
 * delivery.backoff_min_ms, capped at delivery.backoff_max_ms, full jitter
 * above a floor of half the minimum. rnd(bound) is uniform in [0, bound). */
int64_t yj_outbox_backoff_us(const struct yj_config *cfg, uint32_t attempts, uint32_t (*rnd)(uint32_t bound));

#endif
