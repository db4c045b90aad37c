/* store.h: the LMDB store. One environment, one writer at a time (the main
 * loop, or the committer thread for a write it hands over), named databases
 * fixed at open, big-endian uint64 keys.
 *
 * Durability contract: yj_store_write() and yj_store_write_collect() return
 * 0 only after the transaction is committed and synced to disk. The ingest
 * core sends OK replies only after that return (persist before
 * acknowledge).
 *
 * Map growth: on MDB_MAP_FULL the transaction is aborted, the map doubled (up
 * to max_map_size) and the write function run again from the start. Hence a
 * write function must derive everything it writes from its argument and
 * reset its outputs at its start: it may run more than once per call.
 *
 * Only the store's own files use this generic key/value API: daemon/store.c
 * and the one module per stored entity in daemon/db/ (events, notes, holds,
 * digests, audit, quarantine), which alone build and read their keys. A test
 * in the suite (tests/check_layers.sh) fails if anything else names a
 * YJ_DB_* table or a yj_txn_* data call.
 *
 * Ownership: yj_store_open() returns a store the caller owns and closes with
 * yj_store_close(). Data pointers handed out inside a transaction (get, iter)
 * point into the map and are valid only until that transaction ends.
 */
#ifndef YJ_STORE_H
#define YJ_STORE_H

#include <stddef.h>
#include <stdint.h>

/* The named databases. Adding one is compatible: it is created on open. */
enum yj_db {
	YJ_DB_META = 0,      /* string key -> value: schema version, counters */
	YJ_DB_EVENTS,        /* seq (be64) -> packed yjlink.v1.Record */
	YJ_DB_SOURCE,        /* "<force>/<source_id>" -> struct yj_source_ref (idempotency) */
	YJ_DB_CHILD,         /* "<force>/<person_id>" -> seq (be64), DUPSORT|DUPFIXED */
	YJ_DB_TIME,          /* occurred_at (be64, biased) -> seq (be64), DUPSORT|DUPFIXED */
	YJ_DB_CUSTODY,       /* "<force>/<record_id>" -> seq (be64), DUPSORT|DUPFIXED */
	YJ_DB_QUARANTINE,    /* id (be64) -> packed yjlink.v1.Quarantined */
	YJ_DB_OUTBOX,        /* notification number (be64) -> packed yjlink.v1.Notification, pending delivery */
	YJ_DB_OUTBOX_RCPT,   /* "<recipient id>\0" + number (be64) -> not_before, next_attempt (be64 each; "" before 2026-12) : per-recipient delivery order */
	YJ_DB_DLQ,           /* number (be64) -> packed yjlink.v1.Notification that failed for good */
	YJ_DB_UNROUTABLE,    /* number (be64) -> packed yjlink.v1.Notification whose recipient has no destination */
	YJ_DB_DIGEST,        /* "<recipient id>\0" + seq (be64) -> rule id, DUPSORT: events for a YJS digest */
	YJ_DB_AUDIT,         /* audit number (be64) -> packed yjlink.v1.AuditRecord, hash-chained */
	YJ_DB_HOLDS,         /* seq (be64) -> packed yjlink.v1.Hold: live-investigation events */
	YJ_DB_DISCLOSED,     /* seq (be64) + recipient id -> "": who has had each event (hold release) */
	YJ_DB_DIGEST_LOG,    /* "<yjs id>\0" + scheduled time (be64, biased) -> packed yjlink.v1.Digest sent */
	YJ_DB_COUNT
};

struct yj_store_opts {
	const char *path;         /* directory holding data.mdb; created 0700 if missing */
	size_t map_size;          /* initial map size in bytes (rounded up to the page size) */
	size_t max_map_size;      /* growth cap; at the cap a write returns YJ_ENOSPC */
	unsigned max_readers;     /* LMDB reader slots; 0 means 126 */
	int exclusive;            /* lock it for this process (yjlinkd.lock): one daemon per store */
};

struct yj_store_stats {
	size_t map_size;          /* current map size, bytes */
	size_t used_bytes;        /* pages in use * page size */
	uint64_t last_seq;        /* highest event seq, 0 when empty */
	uint64_t events;          /* entries in YJ_DB_EVENTS */
	uint64_t quarantined;     /* entries in YJ_DB_QUARANTINE */
	unsigned map_grows;       /* times the map was grown since open */
	unsigned stale_readers;   /* readers cleared by mdb_reader_check at open */
};

struct yj_store;
struct yj_txn;  /* sticky error: after one failure every later call returns it and commit aborts */

/* Open (creating) the store at opts->path; with opts->exclusive also lock it
 * for this process (yjlinkd.lock beside data.mdb): YJ_EBUSY, logged with the
 * holder's pid, when another process holds that lock. */
int yj_store_open(const struct yj_store_opts *opts, struct yj_store **out);
/* In a process forked from the one that opened parent (reportjob.h): a
 * read-only store on the same files, through an environment of its own
 * (LMDB forbids using an environment after fork). Its read transactions
 * never hold back the parent's writer nor its map growth: LMDB lets another
 * process grow the map under an open reader. Writes on it are refused. */
int yj_store_open_reader(const struct yj_store *parent, struct yj_store **out);
void yj_store_close(struct yj_store **store);
int yj_store_stats(struct yj_store *store, struct yj_store_stats *st);

typedef int (*yj_store_txn_fn)(struct yj_txn *txn, void *arg);

/* Run fn in one write transaction and commit it durably. fn returns 0 to
 * commit, or a negative code to abort (returned as is). Returns 0;
 * YJ_ENOSPC when the map is at its cap or the disk is full (nothing written);
 * YJ_ESTORE on any other LMDB failure. */
int yj_store_write(struct yj_store *store, yj_store_txn_fn fn, void *arg);

/* The same write, on the store's committer thread (issue 14: the loop goes
 * on receiving and replying while a batch's B-tree writes and its sync
 * run). Returns at once: 0 when the thread has it, YJ_EBUSY while an
 * earlier one is not yet collected, YJ_EIO when no thread could be started
 * (the caller writes with yj_store_write instead). fn runs on that thread:
 * it may read what the caller does not change until the collect. wake(arg)
 * is called on the thread when it is done, under the committer's lock: a
 * write to an eventfd, nothing more. Until the collect, every other write
 * of this store, a remap and a reopen first wait for the thread. */
int yj_store_write_start(struct yj_store *store, yj_store_txn_fn fn, void *arg, void (*wake)(void *),
			 void *wake_arg);

/* What yj_store_write(fn, arg) would have returned for the write started
 * last, once it is done (with wait, waiting for it); YJ_EAGAIN while it is
 * still under way and wait is 0. A write the thread leaves alone (the map
 * full, the environment to reopen, any failure) is run again here, by
 * yj_store_write, on the caller's thread: fn must be one that may run more
 * than once, as every write function must already (map growth). */
int yj_store_write_collect(struct yj_store *store, int wait);

/* Run fn in a read-only transaction. Returns fn's result or a store error. */
int yj_store_read(struct yj_store *store, yj_store_txn_fn fn, void *arg);

/* The transaction's sticky error (0 while all is well). */
int yj_txn_rc(const struct yj_txn *txn);

/* What a db module answers to a bad argument: the transaction's sticky error
 * when it has failed already, else YJ_EINVAL without making it sticky (the
 * argument is refused before anything is written). */
int yj_txn_refuse(const struct yj_txn *txn);

/* --- generic key/value access, for every module that keeps state --- */
int yj_txn_get(struct yj_txn *txn, enum yj_db db, const void *key, size_t klen,
	       const void **val, size_t *vlen);  /* YJ_ENOENT when absent */
/* Write key -> val; for DUPSORT databases adds a value. */
int yj_txn_put(struct yj_txn *txn, enum yj_db db, const void *key, size_t klen,
	       const void *val, size_t vlen);
/* yj_txn_put_dup_high, and how many values key holds after it (1: it was
 * not there before). */
int yj_txn_put_dup_count(struct yj_txn *txn, enum yj_db db, const void *key, size_t klen, const void *val,
			 size_t vlen, size_t *count);
/* yj_txn_put into a DUPSORT database of a value expected above every value
 * key holds (a seq just handed out): appended to the key's values without
 * a search among them when it is (MDB_APPENDDUP), put as usual when not. */
int yj_txn_put_dup_high(struct yj_txn *txn, enum yj_db db, const void *key, size_t klen, const void *val,
			size_t vlen);
/* Append with a key greater than every key present (MDB_APPEND). */
int yj_txn_append(struct yj_txn *txn, enum yj_db db, const void *key, size_t klen,
		  const void *val, size_t vlen);
/* yj_txn_put for a key expected above every key present (a number just
 * handed out): appended without a descent when it is, put as usual when it
 * is not. Not for DUPSORT databases. */
int yj_txn_put_high(struct yj_txn *txn, enum yj_db db, const void *key, size_t klen, const void *val, size_t vlen);
/* Delete key (every value of it in a DUPSORT database). YJ_ENOENT if absent. */
int yj_txn_del(struct yj_txn *txn, enum yj_db db, const void *key, size_t klen);
/* Delete the one value val of key in a DUPSORT database. YJ_ENOENT if absent. */
int yj_txn_del_dup(struct yj_txn *txn, enum yj_db db, const void *key, size_t klen, const void *val, size_t vlen);

/* Called per entry; return 0 to go on, 1 to stop (not an error), <0 to fail. */
typedef int (*yj_store_iter_fn)(void *arg, const void *key, size_t klen, const void *val, size_t vlen);
/* Entries with key >= from (from NULL: the first), in key order; reverse=1
 * walks down from the last key <= from (from NULL: the last). */
int yj_txn_iter(struct yj_txn *txn, enum yj_db db, const void *from, size_t flen, int reverse,
		yj_store_iter_fn fn, void *arg);
/* Every value of one key in a DUPSORT database, in order. */
int yj_txn_iter_dups(struct yj_txn *txn, enum yj_db db, const void *key, size_t klen,
		     yj_store_iter_fn fn, void *arg);
/* Entries in db (every value, for DUPSORT databases), in O(1). */
int yj_txn_count(struct yj_txn *txn, enum yj_db db, uint64_t *n);

/* Highest key of a be64-keyed database (0 when empty). */
int yj_txn_last_u64(struct yj_txn *txn, enum yj_db db, uint64_t *out);

/* Like yj_txn_put, but YJ_EEXIST when key is already there; that answer
 * is not sticky (the transaction goes on). */
int yj_txn_put_new(struct yj_txn *txn, enum yj_db db, const void *key, size_t klen, const void *val, size_t vlen);

/* The next id of a be64-keyed table whose ids are never reused (YJ_DB_EVENTS,
 * YJ_DB_QUARANTINE): max(last key, the high-water mark kept when the highest
 * entry is erased) + 1. Cached per transaction: after an append of id n the
 * next call returns n + 1. YJ_EINVAL for another table. */
int yj_txn_next_id(struct yj_txn *txn, enum yj_db db, uint64_t *out);

/* The next value of the counter kept in YJ_DB_META under name (1 when there
 * is none yet): the value handed out, the counter one more. The counter is
 * read once per transaction and written back once, before the commit
 * (a notification number per routed event cost a get and a put). name
 * must outlive the transaction (a string literal); a few counters per
 * transaction at most. YJ_ESTORE (sticky) for a damaged counter: starting
 * again at 1 would reuse numbers. */
int yj_txn_counter_next(struct yj_txn *txn, const char *name, uint64_t *out);

/* LMDB's key size limit (511 by default): a longer key is YJ_EINVAL. */
size_t yj_store_max_key(const struct yj_store *store);
size_t yj_txn_max_key(const struct yj_txn *txn);

/* --- helpers --- */
static inline void yj_be64_put(uint8_t out[8], uint64_t v)
{
	for (int i = 7; i >= 0; i--) {
		out[i] = (uint8_t)(v & 0xff);
		v >>= 8;
	}
}

static inline uint64_t yj_be64_get(const uint8_t in[8])
{
	uint64_t v = 0;
	for (int i = 0; i < 8; i++)
		v = (v << 8) | in[i];
	return v;
}

/* Time keys sort signed values: flip the sign bit. */
static inline uint64_t yj_time_key(int64_t us) { return (uint64_t)us ^ (UINT64_C(1) << 63); }

#endif
