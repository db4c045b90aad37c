/* outbox.h: delivering what routing queued (the transactional outbox's
 * reading side), inside the one event loop.
 *
 * Per recipient, notifications go out one at a time in number order: while
 * a recipient fails transiently its later notifications wait behind the
 * first (order kept); a permanent failure moves that one to the dead-letter
 * queue at once and the next goes. Transient failures are retried with
 * exponential backoff and full jitter until delivery.max_age_s, then
 * dead-lettered. Completions are written in one transaction per loop
 * iteration (group commit), each delivery with its audit record and its
 * removal from the outbox, so a crash re-sends (same notification id) but
 * never loses one.
 *
 * Ownership: the outbox borrows everything in yj_outbox_deps.
 */
#ifndef YJ_OUTBOX_H
#define YJ_OUTBOX_H

#include <cjson/cJSON.h>
#include <stdint.h>

#include "adapter.h"
#include "config.h"
#include "loop.h"
#include "refdata.h"
#include "store.h"
#include "yjlink.pb-c.h"

struct yj_outbox_deps {
	struct yj_store *store;
	struct yj_loop *loop;
	const struct yj_config *const *cfg;        /* the config in force */
	const struct yj_refdata *const *ref;       /* the tables in force */
	void *const *adapter_state;                /* state of yj_adapters[i], NULL when off */
};

#define YJ_DELIVERY_RESULTS 3

struct yj_outbox_stats {
	uint64_t depth;                            /* notifications waiting in the outbox */
	uint64_t dead_letters;                     /* in the DLQ */
	uint64_t unroutable;                       /* waiting for a destination */
	uint64_t in_flight;                        /* deliveries under way */
	uint64_t delivered[YJ_TRANSPORT_PEER + 1][YJ_DELIVERY_RESULTS]; /* attempts by transport and result, since start */
};

struct yj_outbox;

int yj_outbox_start(const struct yj_outbox_deps *deps, struct yj_outbox **out);
void yj_outbox_stop(struct yj_outbox **ob);

/* New notifications may have been committed: look for work now. */
void yj_outbox_kick(struct yj_outbox *ob);

/* Commit the completions gathered this iteration (a before-sleep hook). */
int yj_outbox_flush(struct yj_outbox *ob);

/* After a reload: unroutable notifications whose recipient now has a
 * destination move to the outbox, and outbox entries whose recipient lost
 * its destination become unroutable. Returns how many moved, or <0. */
int yj_outbox_reconcile(struct yj_outbox *ob);

int yj_outbox_stats(struct yj_outbox *ob, struct yj_outbox_stats *st);

/* `yjlinkctl outbox`: pending deliveries by recipient with next attempt. */
cJSON *yj_outbox_describe(struct yj_outbox *ob);

/* The notification id of number n: "<deployment id>-<12 digits>". */
void yj_notification_id(const struct yj_config *cfg, uint64_t n, char *buf, size_t size);

/* Build the notification JSON for recipient r (data sharing agreement and
 * holds applied); fields (may be NULL) receives the field paths supplied.
 * Caller frees with cJSON_Delete. NULL when the event is gone. */
cJSON *yj_outbox_build(struct yj_txn *txn, const struct yj_config *cfg, const Yjlink__V1__Notification *n,
		       const struct yj_recipient *r, cJSON *fields);

#endif
