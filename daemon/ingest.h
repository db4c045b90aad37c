/* ingest.h: the ingest core. Inputs submit requests; the core checks the
 * framing and collects them into a batch; a thread of its own normalises
 * each batch (parsing on the second core, issue 14) while the loop commits
 * the one before; yj_ingest_pump() (called once per loop iteration, before
 * the loop sleeps) writes each parsed batch in one synced LMDB transaction
 * and only then sends every reply: group commit, persist before acknowledge.
 *
 * Decisions that need the store (DUP, REJECT conflict, REJECT forbidden)
 * are made inside the write transaction, so two copies of one message in one
 * batch come out as OK then DUP.
 *
 * Ownership: ingest borrows the core (its store, and the config and
 * reference tables in force, read afresh for every batch); it owns its batch.
 */
#ifndef YJ_INGEST_H
#define YJ_INGEST_H

#include <stddef.h>
#include <stdint.h>

#include "adapter.h"
#include "config.h"
#include "normalise.h"
#include "refdata.h"
#include "store.h"

#define YJ_COMMIT_BUCKETS 12

/* Why a request was answered RETRY (yjlink_ingest_retries_total{reason}). */
enum yj_retry_reason {
	YJ_RETRY_OVERLOADED,    /* the sender over its share (yj_request.overloaded), or out of memory */
	YJ_RETRY_SHUTTING_DOWN, /* draining */
	YJ_RETRY_STORE,         /* the batch not stored: disk or map full, store error */
	YJ_RETRY_REASONS
};

/* "overloaded", "shutting_down", "store": a metric label. */
const char *yj_retry_reason_name(enum yj_retry_reason r);

struct yj_ingest_stats {
	uint64_t ingested[YJ_FEED_COUNT];          /* OK, by feed */
	uint64_t rejected[YJ_REJ_FORBIDDEN + 1];   /* REJECT, by code */
	uint64_t dups;                             /* DUP replies */
	uint64_t retries;                          /* RETRY replies */
	uint64_t retries_by[YJ_RETRY_REASONS];     /* the same by reason */
	uint64_t batches;                          /* group commits */
	uint64_t commit_buckets[YJ_COMMIT_BUCKETS];/* yjlink_commit_seconds histogram, cumulative-less counts */
	double commit_seconds_sum;
	uint64_t last_seq;                         /* highest seq acknowledged */
	uint64_t routed_outbox;                    /* notifications queued for delivery */
	uint64_t routed_unroutable;                /* notifications without a destination */
	uint64_t routed_digest;                    /* digest entries */
	uint64_t held;                             /* events held (live investigation) */
	uint64_t data_quality;                     /* stored with an outcome code that cannot apply to a child */
	int64_t last_ok_us;                        /* wall time of the last OK */
	int64_t last_ok_us_by_feed[YJ_FEED_COUNT]; /* the same per feed (0: none since start) */
};

/* Upper bounds of the commit histogram buckets, seconds (last is +Inf). */
extern const double yj_commit_bucket_bounds[YJ_COMMIT_BUCKETS];

struct yj_ingest;

struct yj_core;

int yj_ingest_new(const struct yj_core *core, struct yj_ingest **out);
void yj_ingest_destroy(struct yj_ingest **ing);

/* Take one request (see adapter.h). Flushes by itself when the batch holds
 * ingest.batch_max requests. Returns 0 or YJ_ENOMEM (then done was called
 * with RETRY). An overloaded request costs a slot in the batch and nothing
 * else: its RETRY goes out in its turn, after the replies to the requests
 * before it, so that a client matching replies by order is not misled. */
int yj_ingest_submit(struct yj_ingest *ing, const struct yj_request *req, yj_reply_fn done, void *arg);

struct yj_route_counts;

/* Once per loop iteration: send the replies of the batch the store's
 * committer has written, if it has; hand it the batch the normaliser thread
 * has parsed, if it is free; hand the requests collected since to the
 * normaliser when it is free. Both threads wake the loop through one
 * eventfd. *routed (may be NULL) says what was routed since the last report
 * (all zero when nothing was written), so the caller can wake delivery.
 * Returns 1 when a batch was answered, 0 when none was, or the store's error
 * (the replies then said RETRY). */
int yj_ingest_pump(struct yj_ingest *ing, struct yj_route_counts *routed);

/* Commit everything submitted so far (waiting for its parsing) and send
 * every reply: at stop, before a reload swaps the tables the thread reads,
 * and wherever the caller needs the store to hold all it was sent. Returns 0,
 * or the store's error. */
int yj_ingest_flush(struct yj_ingest *ing, struct yj_route_counts *routed);

size_t yj_ingest_pending(const struct yj_ingest *ing);

/* While draining, new requests are answered RETRY at once. */
void yj_ingest_set_draining(struct yj_ingest *ing, int on);

const struct yj_ingest_stats *yj_ingest_stats(const struct yj_ingest *ing);

#endif
