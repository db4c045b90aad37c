/* store.c: see store.h.
 *
 * Every LMDB call of yjlink is in this file, and so is the translation of its
 * codes into err.h's: nothing above this file sees an MDB_* value.
 *
 * Threading: the store belongs to one thread (the main loop), but for its
 * committer: a thread that runs one write transaction at a time handed to it
 * by yj_store_write_start(), in the plain case only (a transaction that
 * needs the map grown or the environment reopened goes back to the owner,
 * where s_write handles it). While the thread has a write, the owner's own
 * writes, remaps and reopens wait for it (s_com_wait): LMDB has one writer,
 * and a remap would move pages under it. The environment is opened MDB_NOTLS
 * so that a read transaction may be open while a write runs, on the same
 * thread (a read inside a write function, or the cached reader below) or on
 * the other.
 */
#include "store.h"

#include "err.h"
#include "log.h"

#include <errno.h>
#include <lmdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

/* Bump on any incompatible change of the layout; an older binary refuses a
 * newer store rather than misreading it. */
#define S_SCHEMA_VERSION 1
#define S_META_SCHEMA "store.schema_version"
/* Highest seq / quarantine id ever handed out: kept only when the highest
 * entry is deleted (retention), so that a number is never reused. */
#define S_META_EVENTS_HW "store.events_hw"
#define S_META_QUAR_HW "store.quarantine_hw"

#define S_DEFAULT_MAP (UINT64_C(1) << 20)
#define S_DEFAULT_READERS 126
/* Bounds one call's retries (map doubling, resize, reader check) so that a
 * misbehaving environment ends in an error, not in a loop. */
#define S_MAX_ATTEMPTS 64
#define S_SEQ_LEN 8
/* Free space below which a failed commit is put down to a full disk. */
#define S_DISK_FULL_SLACK (UINT64_C(4) << 20)

struct yj_store {
	MDB_env *env;                 /* the environment; NULL only inside a reopen */
	MDB_dbi dbi[YJ_DB_COUNT];     /* handles of the named databases, fixed at open */
	char *path;                   /* directory of data.mdb, owned */
	size_t page;                  /* OS page size: map sizes are multiples of it */
	size_t max_map_size;          /* growth cap, bytes */
	unsigned max_readers;         /* reader slots asked of LMDB */
	size_t max_key;               /* LMDB's key size limit (511 by default) */
	MDB_txn *rtxn;                /* a reset read transaction kept for the next read */
	int in_write;                 /* inside yj_store_write: forbids nesting and remaps */
	int reopening;                /* inside s_reopen: a second one would recurse */
	unsigned active_reads;        /* read transactions now open */
	unsigned map_grows;           /* times the map was doubled since open */
	unsigned stale_readers;       /* readers cleared by mdb_reader_check at open */
	int lock_fd;                  /* yjlinkd.lock, flock'ed for as long as the store is open; -1 none */
	struct s_committer *com;      /* the committer thread, started by the first yj_store_write_start; owned */
};

/* The committer's hand-over: everything below mu is under it. */
struct s_committer {
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int job;                      /* a write handed over and not yet collected */
	int taken;                    /* the thread has begun it */
	int done;                     /* the thread is done with it */
	int quit;                     /* the owner asks the thread to end */
	int rc;                       /* its result; S_HANDBACK: to be run again by s_write */
	yj_store_txn_fn fn;
	void *arg;
	void (*wake)(void *);
	void *wake_arg;
};
/* Not an err.h code: the thread's "run it again where growth and reopening
 * are allowed". */
#define S_HANDBACK 1

/* Counters a write transaction may keep in memory (notification numbers). */
#define S_COUNTERS 4

struct yj_txn {
	struct yj_store *store;       /* the store it belongs to */
	MDB_txn *txn;                 /* the LMDB transaction */
	int rc;                       /* sticky error, 0 while all is well */
	int mdb_rc;                   /* LMDB code behind rc (0: ours), read by the recovery wrapper */
	int rdonly;                   /* a read transaction: every write is refused */
	uint64_t next_seq;            /* next event seq, 0 until first asked */
	uint64_t next_qid;            /* next quarantine id, 0 until first asked */
	MDB_cursor *cur[YJ_DB_COUNT]; /* write cursors, opened on first use and kept to the end */
	struct {
		const char *name;     /* META key (borrowed: a string that outlives the transaction) */
		uint64_t next;        /* the value the next call hands out */
	} counters[S_COUNTERS];       /* yj_txn_counter_next's, written back once before the commit */
	size_t n_counters;
};

static const struct {
	const char *name;
	unsigned flags;
} s_dbs[YJ_DB_COUNT] = {
	[YJ_DB_META] = { "meta", 0 },
	[YJ_DB_EVENTS] = { "events", 0 },
	[YJ_DB_SOURCE] = { "source", 0 },
	[YJ_DB_CHILD] = { "child", MDB_DUPSORT | MDB_DUPFIXED },
	[YJ_DB_TIME] = { "time", MDB_DUPSORT | MDB_DUPFIXED },
	[YJ_DB_CUSTODY] = { "custody", MDB_DUPSORT | MDB_DUPFIXED },
	[YJ_DB_QUARANTINE] = { "quarantine", 0 },
	[YJ_DB_OUTBOX] = { "outbox", 0 },
	[YJ_DB_OUTBOX_RCPT] = { "outbox_rcpt", 0 },
	[YJ_DB_DLQ] = { "dlq", 0 },
	[YJ_DB_UNROUTABLE] = { "unroutable", 0 },
	[YJ_DB_DIGEST] = { "digest", MDB_DUPSORT },
	[YJ_DB_AUDIT] = { "audit", 0 },
	[YJ_DB_HOLDS] = { "holds", 0 },
	[YJ_DB_DISCLOSED] = { "disclosed", 0 },
	[YJ_DB_DIGEST_LOG] = { "digest_log", 0 },
};

static int s_env_open(struct yj_store *s, size_t map_size);
static int s_write(struct yj_store *s, yj_store_txn_fn fn, void *arg);

/* --- errors --- */

static int s_disk_full(int mrc)
{
	/* EFBIG: a file size limit (RLIMIT_FSIZE, a filesystem's maximum) is,
	 * for the caller, the same condition as a full disk. */
	return mrc == ENOSPC || mrc == EDQUOT || mrc == EFBIG;
}

static int s_xlate(int mrc)
{
	switch (mrc) {
	case MDB_SUCCESS: return YJ_OK;
	case MDB_NOTFOUND: return YJ_ENOENT;
	case MDB_KEYEXIST: return YJ_EEXIST;
	case MDB_BAD_VALSIZE: return YJ_EINVAL;
	case MDB_MAP_FULL: return YJ_ENOSPC;
	case ENOMEM: return YJ_ENOMEM;
	default: break;
	}
	return s_disk_full(mrc) ? YJ_ENOSPC : YJ_ESTORE;
}

/* LMDB reports a short write, which is how a filling disk usually shows,
 * as EIO: ask the filesystem whether it is full. */
static int s_disk_now_full(const struct yj_store *s)
{
	struct statvfs vfs;
	if (statvfs(s->path, &vfs))
		return 0;
	/* Root may use the blocks reserved for it; anyone else may not. */
	uint64_t blocks = geteuid() == 0 ? vfs.f_bfree : vfs.f_bavail;
	return (uint64_t)blocks * vfs.f_frsize < S_DISK_FULL_SLACK;
}

/* Record an LMDB failure in txn (sticky) and return its yjlink code. A
 * missing key is an answer, not a failure: it leaves the transaction alone. */
static int s_fail(struct yj_txn *t, int mrc, const char *what)
{
	int rc = s_xlate(mrc);
	if (rc == YJ_ENOENT)
		return rc;
	if (rc == YJ_ESTORE)
		yj_err("store: %s: %s", what, mdb_strerror(mrc));
	t->rc = rc;
	t->mdb_rc = mrc;
	return rc;
}

static int s_bad(struct yj_txn *t, int rc)
{
	t->rc = rc;
	t->mdb_rc = 0;
	return rc;
}

/* The checks every operation starts with. */
static int s_check(struct yj_txn *t, enum yj_db db, const void *key, size_t klen, int write)
{
	if (!t)
		return YJ_EINVAL;
	if (t->rc)
		return t->rc;
	if ((unsigned)db >= YJ_DB_COUNT || (write && t->rdonly))
		return s_bad(t, YJ_EINVAL);
	if (key && (klen == 0 || klen > t->store->max_key))
		return s_bad(t, YJ_EINVAL);
	return 0;
}

/* --- transactions --- */

static int s_dupfixed(enum yj_db db)
{
	return (s_dbs[db].flags & MDB_DUPFIXED) != 0;
}

static int s_cursor(struct yj_txn *t, enum yj_db db, MDB_cursor **out)
{
	if (!t->cur[db]) {
		int mrc = mdb_cursor_open(t->txn, t->store->dbi[db], &t->cur[db]);
		if (mrc) {
			t->cur[db] = NULL;
			return s_fail(t, mrc, "cursor open");
		}
	}
	*out = t->cur[db];
	return 0;
}

/* Cursors must go before their transaction: read-transaction cursors are not
 * freed by LMDB, and closing all of them keeps both kinds alike. */
static void s_cursors_close(struct yj_txn *t)
{
	for (int i = 0; i < YJ_DB_COUNT; i++) {
		if (t->cur[i])
			mdb_cursor_close(t->cur[i]);
		t->cur[i] = NULL;
	}
}

static void s_txn_init(struct yj_txn *t, struct yj_store *s, int rdonly)
{
	memset(t, 0, sizeof(*t));
	t->store = s;
	t->rdonly = rdonly;
}

static void s_txn_abort(struct yj_txn *t)
{
	s_cursors_close(t);
	if (t->txn)
		mdb_txn_abort(t->txn);
	t->txn = NULL;
}

/* After a failed meta-page write LMDB marks the environment unusable
 * (MDB_PANIC) for good; closing and opening it again is the one way back. */
static void s_com_wait(struct yj_store *s);

static int s_reopen(struct yj_store *s)
{
	s_com_wait(s);
	if (s->in_write || s->active_reads || s->reopening) {
		yj_err("store: environment unusable and in use: cannot reopen it now");
		return YJ_ESTORE;
	}
	yj_warn("store: environment unusable after an I/O error: reopening %s", s->path);
	if (s->rtxn)
		mdb_txn_abort(s->rtxn);
	s->rtxn = NULL;
	if (s->env)
		mdb_env_close(s->env);
	s->env = NULL;
	s->reopening = 1;
	/* The map size committed last is in the meta page: 0 keeps it. */
	int rc = s_env_open(s, 0);
	s->reopening = 0;
	return rc;
}

/* Remapping moves the map: every pointer a caller got from an open
 * transaction would dangle. Allowed only when none is open. */
static int s_can_remap(struct yj_store *s)
{
	s_com_wait(s);
	if (s->in_write || s->active_reads) {
		yj_warn("store: the map must be remapped but a transaction is open: try again later");
		return 0;
	}
	return 1;
}

/* Begin a transaction, handling the conditions that a retry cures. */
static int s_begin(struct yj_store *s, int rdonly, MDB_txn **out)
{
	int checked = 0, reopened = 0;

	for (int attempt = 0; attempt < S_MAX_ATTEMPTS; attempt++) {
		int mrc;
		/* A failed reopen left no environment: try again, the cause
		 * (a full disk) may be gone. */
		if (!s->env) {
			int rc = reopened++ ? YJ_ESTORE : s_reopen(s);
			if (rc)
				return rc;
		}
		if (rdonly && s->rtxn) {
			MDB_txn *txn = s->rtxn;
			s->rtxn = NULL;
			if (!mdb_txn_renew(txn)) {
				*out = txn;
				return 0;
			}
			/* Whatever spoilt the kept reader, a new one tells. */
			mdb_txn_abort(txn);
		}
		mrc = mdb_txn_begin(s->env, NULL, rdonly ? MDB_RDONLY : 0, out);
		if (!mrc)
			return 0;
		switch (mrc) {
		case MDB_MAP_RESIZED:
			/* Another process grew the map: adopt its size. */
			if (!s_can_remap(s))
				return YJ_EAGAIN;
			mrc = mdb_env_set_mapsize(s->env, 0);
			if (mrc) {
				yj_err("store: adopting the grown map: %s", mdb_strerror(mrc));
				return YJ_ESTORE;
			}
			continue;
		case MDB_READERS_FULL: {
			int dead = 0;
			if (checked++) {
				yj_err("store: all %u reader slots in use", s->max_readers);
				return YJ_EAGAIN;
			}
			mdb_reader_check(s->env, &dead);
			yj_warn("store: reader table full, %d stale slots cleared", dead);
			continue;
		}
		case MDB_PANIC: {
			int rc = reopened++ ? YJ_ESTORE : s_reopen(s);
			if (rc)
				return rc;
			continue;
		}
		default:
			break;
		}
		yj_err("store: begin %s transaction: %s", rdonly ? "read" : "write", mdb_strerror(mrc));
		return s_xlate(mrc) == YJ_ENOMEM ? YJ_ENOMEM : YJ_ESTORE;
	}
	yj_err("store: could not begin a transaction after %d attempts", S_MAX_ATTEMPTS);
	return YJ_ESTORE;
}

static size_t s_round(size_t v, size_t page)
{
	return (v + page - 1) / page * page;
}

/* Double the map, up to the cap. No transaction may be open here. */
static int s_grow(struct yj_store *s)
{
	MDB_envinfo info;
	mdb_env_info(s->env, &info);
	size_t cur = info.me_mapsize;
	if (cur >= s->max_map_size) {
		yj_warn("store: map full at its cap of %zu MiB: write refused", s->max_map_size >> 20);
		return YJ_ENOSPC;
	}
	/* A write inside a read function: the map cannot move under it. */
	if (s->active_reads) {
		yj_warn("store: map full and a read transaction open: cannot grow it now");
		return YJ_ENOSPC;
	}
	size_t next = cur > s->max_map_size / 2 ? s->max_map_size : s_round(cur * 2, s->page);
	int mrc = mdb_env_set_mapsize(s->env, next);
	if (mrc) {
		yj_err("store: growing the map to %zu bytes: %s", next, mdb_strerror(mrc));
		return YJ_ESTORE;
	}
	s->map_grows++;
	yj_info("store: map grown from %zu to %zu KiB", cur >> 10, next >> 10);
	return 0;
}

static int s_put(struct yj_txn *t, enum yj_db db, const void *key, size_t klen, const void *val, size_t vlen,
		 unsigned flags);

/* The counters a transaction kept in memory, written back: one put each
 * however many values it handed out. */
static void s_counters_flush(struct yj_txn *t)
{
	for (size_t i = 0; i < t->n_counters && !t->rc; i++) {
		uint8_t b[S_SEQ_LEN];
		yj_be64_put(b, t->counters[i].next);
		s_put(t, YJ_DB_META, t->counters[i].name, strlen(t->counters[i].name), b, sizeof(b), 0);
	}
}

/* The one recovery wrapper: every write transaction of the store runs here. */
static int s_write(struct yj_store *s, yj_store_txn_fn fn, void *arg)
{
	struct yj_txn t;
	int rc = 0;

	s->in_write = 1;
	for (int attempt = 0;; attempt++) {
		if (attempt == S_MAX_ATTEMPTS) {
			yj_err("store: write not committed after %d attempts", S_MAX_ATTEMPTS);
			rc = YJ_ESTORE;
			goto out;
		}
		s_txn_init(&t, s, 0);
		s->in_write = 0; /* a reopen in s_begin is safe: nothing is open yet */
		rc = s_begin(s, 0, &t.txn);
		s->in_write = 1;
		if (rc)
			goto out;
		int frc = fn(&t, arg);
		if (frc >= 0 && !t.rc)
			s_counters_flush(&t);
		if (t.mdb_rc == MDB_MAP_FULL) {
			/* Whatever fn made of the error, the cure is the same. */
			s_txn_abort(&t);
			if ((rc = s_grow(s)))
				goto out;
			continue;
		}
		if (frc < 0 || t.rc) {
			s_txn_abort(&t);
			rc = frc < 0 ? frc : t.rc;
			goto out;
		}
		s_cursors_close(&t);
		/* The commit frees the transaction whatever it returns. */
		int mrc = mdb_txn_commit(t.txn);
		t.txn = NULL;
		if (mrc == MDB_MAP_FULL) {
			if ((rc = s_grow(s)))
				goto out;
			continue;
		}
		if (mrc) {
			rc = s_xlate(mrc) == YJ_ENOSPC || (mrc == EIO && s_disk_now_full(s)) ? YJ_ENOSPC : YJ_ESTORE;
			if (rc == YJ_ENOSPC)
				yj_warn("store: commit failed, disk full: %s", mdb_strerror(mrc));
			else
				yj_err("store: commit failed: %s", mdb_strerror(mrc));
		}
		goto out;
	}
out:
	s->in_write = 0;
	return rc;
}

int yj_store_write(struct yj_store *store, yj_store_txn_fn fn, void *arg)
{
	if (!store || !fn)
		return YJ_EINVAL;
	/* LMDB has one writer: a nested write would wait for itself. */
	if (store->in_write)
		return YJ_EINVAL;
	s_com_wait(store);
	return s_write(store, fn, arg);
}

/* --- the committer --- */

/* Until the thread is done with the write it has, if any. The result stays
 * for yj_store_write_collect. */
static void s_com_wait(struct yj_store *s)
{
	struct s_committer *c = s->com;
	if (!c)
		return;
	pthread_mutex_lock(&c->mu);
	while (c->job && !c->done)
		pthread_cond_wait(&c->cv, &c->mu);
	pthread_mutex_unlock(&c->mu);
}

/* s_write's plain case, on the thread. Anything else (a begin that fails,
 * the map full, fn's error, a failed commit) is handed back untouched or
 * aborted: s_write on the owner's thread runs it again and makes of it what
 * it always did, logging included. The owner changes neither env nor dbi
 * while the thread has a write (s_com_wait). */
static int s_com_write(struct yj_store *s, yj_store_txn_fn fn, void *arg)
{
	struct yj_txn t;
	s_txn_init(&t, s, 0);
	if (!s->env || mdb_txn_begin(s->env, NULL, 0, &t.txn))
		return S_HANDBACK;
	int frc = fn(&t, arg);
	if (frc >= 0 && !t.rc)
		s_counters_flush(&t);
	if (frc < 0 || t.rc || t.mdb_rc) {
		s_txn_abort(&t);
		return S_HANDBACK;
	}
	s_cursors_close(&t);
	int mrc = mdb_txn_commit(t.txn);
	return mrc ? S_HANDBACK : 0;
}

static void *s_com_main(void *arg)
{
	struct yj_store *s = arg;
	struct s_committer *c = s->com;
	pthread_setname_np(pthread_self(), "yj-commit");
	pthread_mutex_lock(&c->mu);
	for (;;) {
		while (!c->quit && !(c->job && !c->taken))
			pthread_cond_wait(&c->cv, &c->mu);
		if (c->quit)
			break;
		c->taken = 1;
		yj_store_txn_fn fn = c->fn;
		void *fn_arg = c->arg;
		pthread_mutex_unlock(&c->mu);
		int rc = s_com_write(s, fn, fn_arg);
		pthread_mutex_lock(&c->mu);
		c->rc = rc;
		c->done = 1;
		pthread_cond_broadcast(&c->cv);
		/* Under the lock: once the owner has collected, the wake's target may
		 * be gone. */
		if (c->wake)
			c->wake(c->wake_arg);
	}
	pthread_mutex_unlock(&c->mu);
	return NULL;
}

static int s_com_start(struct yj_store *s)
{
	struct s_committer *c = calloc(1, sizeof(*c));
	sigset_t all, old;
	if (!c)
		return YJ_ENOMEM;
	if (pthread_mutex_init(&c->mu, NULL)) {
		free(c);
		return YJ_EIO;
	}
	if (pthread_cond_init(&c->cv, NULL)) {
		pthread_mutex_destroy(&c->mu);
		free(c);
		return YJ_EIO;
	}
	s->com = c;
	/* Signals are the loop's (signalfd): the thread takes none. */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	int prc = pthread_create(&c->thread, NULL, s_com_main, s);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (prc) {
		yj_err("store: cannot start the committer thread: %s", strerror(prc));
		s->com = NULL;
		pthread_cond_destroy(&c->cv);
		pthread_mutex_destroy(&c->mu);
		free(c);
		return YJ_EIO;
	}
	return 0;
}

static void s_com_stop(struct yj_store *s)
{
	struct s_committer *c = s->com;
	if (!c)
		return;
	s_com_wait(s);
	pthread_mutex_lock(&c->mu);
	c->quit = 1;
	pthread_cond_broadcast(&c->cv);
	pthread_mutex_unlock(&c->mu);
	pthread_join(c->thread, NULL);
	pthread_cond_destroy(&c->cv);
	pthread_mutex_destroy(&c->mu);
	free(c);
	s->com = NULL;
}

int yj_store_write_start(struct yj_store *store, yj_store_txn_fn fn, void *arg, void (*wake)(void *), void *wake_arg)
{
	if (!store || !fn || store->in_write)
		return YJ_EINVAL;
	if (!store->com) {
		int rc = s_com_start(store);
		if (rc)
			return rc == YJ_ENOMEM ? YJ_ENOMEM : YJ_EIO;
	}
	struct s_committer *c = store->com;
	pthread_mutex_lock(&c->mu);
	if (c->job) {
		pthread_mutex_unlock(&c->mu);
		return YJ_EBUSY;
	}
	c->job = 1;
	c->taken = 0;
	c->done = 0;
	c->rc = 0;
	c->fn = fn;
	c->arg = arg;
	c->wake = wake;
	c->wake_arg = wake_arg;
	pthread_cond_broadcast(&c->cv);
	pthread_mutex_unlock(&c->mu);
	return 0;
}

int yj_store_write_collect(struct yj_store *store, int wait)
{
	struct s_committer *c = store ? store->com : NULL;
	if (!c)
		return YJ_EINVAL;
	pthread_mutex_lock(&c->mu);
	if (!c->job) {
		pthread_mutex_unlock(&c->mu);
		return YJ_EINVAL;
	}
	while (wait && !c->done)
		pthread_cond_wait(&c->cv, &c->mu);
	if (!c->done) {
		pthread_mutex_unlock(&c->mu);
		return YJ_EAGAIN;
	}
	int rc = c->rc;
	yj_store_txn_fn fn = c->fn;
	void *arg = c->arg;
	c->job = 0;
	c->done = 0;
	pthread_mutex_unlock(&c->mu);
	if (rc == S_HANDBACK)
		rc = yj_store_write(store, fn, arg);
	return rc;
}

int yj_store_read(struct yj_store *store, yj_store_txn_fn fn, void *arg)
{
	struct yj_txn t;
	int rc = 0;

	if (!store || !fn)
		return YJ_EINVAL;
	s_txn_init(&t, store, 1);
	if ((rc = s_begin(store, 1, &t.txn)))
		goto out;
	store->active_reads++;
	rc = fn(&t, arg);
	if (rc >= 0 && t.rc)
		rc = t.rc;
	s_cursors_close(&t);
	store->active_reads--;
	/* Keeping one reset reader saves a malloc and a slot search per read. */
	if (!store->rtxn) {
		mdb_txn_reset(t.txn);
		store->rtxn = t.txn;
	} else {
		mdb_txn_abort(t.txn);
	}
	t.txn = NULL;
out:
	return rc;
}

int yj_txn_rc(const struct yj_txn *txn)
{
	return txn ? txn->rc : YJ_EINVAL;
}

int yj_txn_refuse(const struct yj_txn *txn)
{
	int rc = yj_txn_rc(txn);
	return rc ? rc : YJ_EINVAL;
}

/* --- generic access --- */

int yj_txn_get(struct yj_txn *txn, enum yj_db db, const void *key, size_t klen,
	       const void **val, size_t *vlen)
{
	int rc = s_check(txn, db, key, klen, 0);
	if (rc)
		return rc;
	if (!key)
		return s_bad(txn, YJ_EINVAL);
	MDB_val k = { .mv_size = klen, .mv_data = (void *)key };
	MDB_val v;
	int mrc = mdb_get(txn->txn, txn->store->dbi[db], &k, &v);
	if (mrc)
		return s_fail(txn, mrc, "get");
	if (val)
		*val = v.mv_data;
	if (vlen)
		*vlen = v.mv_size;
	return 0;
}

/* The next-id cache of a table whose ids are never reused, NULL for others. */
static uint64_t *s_id_cache(struct yj_txn *t, enum yj_db db)
{
	return db == YJ_DB_EVENTS ? &t->next_seq : db == YJ_DB_QUARANTINE ? &t->next_qid : NULL;
}

static const char *s_hw_name(enum yj_db db)
{
	return db == YJ_DB_EVENTS ? S_META_EVENTS_HW : S_META_QUAR_HW;
}

/* The id caches follow the last key of their database: an append moves
 * them on, any other change makes them be read again. */
static void s_note_write(struct yj_txn *t, enum yj_db db, const void *key, size_t klen, int append)
{
	uint64_t *cache = s_id_cache(t, db);
	if (!cache)
		return;
	*cache = append && klen == S_SEQ_LEN ? yj_be64_get(key) + 1 : 0;
}

/* s_put's own flag, beside LMDB's: MDB_APPEND where the key is expected
 * to be the highest, an ordinary put where it is not. */
#define S_PUT_HIGH 0x80000000u

static int s_put(struct yj_txn *t, enum yj_db db, const void *key, size_t klen,
		 const void *val, size_t vlen, unsigned flags)
{
	int rc = s_check(t, db, key, klen, 1);
	if (rc)
		return rc;
	if (!key || (!val && vlen) || (s_dupfixed(db) && vlen != S_SEQ_LEN))
		return s_bad(t, YJ_EINVAL);
	/* Values in order under one key are a DUPSORT database's alone. */
	if (!(s_dbs[db].flags & MDB_DUPSORT))
		flags &= ~(unsigned)MDB_APPENDDUP;
	MDB_cursor *c;
	if ((rc = s_cursor(t, db, &c)))
		return rc;
	MDB_val k = { .mv_size = klen, .mv_data = (void *)key };
	MDB_val v = { .mv_size = vlen, .mv_data = (void *)val };
	int mrc = mdb_cursor_put(c, &k, &v, flags & ~S_PUT_HIGH);
	/* Not above the last key after all: LMDB wrote nothing (it compares
	 * before it touches a page), so the ordinary put follows. */
	if (mrc == MDB_KEYEXIST && (flags & S_PUT_HIGH))
		mrc = mdb_cursor_put(c, &k, &v, flags & ~(S_PUT_HIGH | MDB_APPEND | MDB_APPENDDUP));
	/* "Already there" is the answer MDB_NOOVERWRITE asks for, not a
	 * failure: LMDB wrote nothing and the transaction goes on. */
	if (mrc == MDB_KEYEXIST && (flags & MDB_NOOVERWRITE))
		return YJ_EEXIST;
	if (mrc)
		return s_fail(t, mrc, "put");
	return 0;
}

int yj_txn_put(struct yj_txn *txn, enum yj_db db, const void *key, size_t klen,
	       const void *val, size_t vlen)
{
	int rc = s_put(txn, db, key, klen, val, vlen, 0);
	if (!rc)
		s_note_write(txn, db, key, klen, 0);
	return rc;
}

int yj_txn_put_dup_high(struct yj_txn *txn, enum yj_db db, const void *key, size_t klen, const void *val,
			size_t vlen)
{
	int rc = s_put(txn, db, key, klen, val, vlen, MDB_APPENDDUP | S_PUT_HIGH);
	if (!rc)
		s_note_write(txn, db, key, klen, 0);
	return rc;
}

int yj_txn_put_dup_count(struct yj_txn *txn, enum yj_db db, const void *key, size_t klen, const void *val,
			 size_t vlen, size_t *count)
{
	/* Every caller's value is a seq just handed out: above the key's others. */
	int rc = s_put(txn, db, key, klen, val, vlen, MDB_APPENDDUP | S_PUT_HIGH);
	if (rc)
		return rc;
	s_note_write(txn, db, key, klen, 0);
	/* The cursor stays on what it wrote: its key's values, counted in place. */
	MDB_cursor *c;
	size_t n = 0;
	if ((rc = s_cursor(txn, db, &c)))
		return rc;
	int mrc = mdb_cursor_count(c, &n);
	if (mrc)
		return s_fail(txn, mrc, "count");
	*count = n;
	return 0;
}

int yj_txn_append(struct yj_txn *txn, enum yj_db db, const void *key, size_t klen,
		  const void *val, size_t vlen)
{
	int rc = s_put(txn, db, key, klen, val, vlen, MDB_APPEND);
	if (!rc)
		s_note_write(txn, db, key, klen, 1);
	return rc;
}

int yj_txn_put_high(struct yj_txn *txn, enum yj_db db, const void *key, size_t klen, const void *val, size_t vlen)
{
	int rc = s_put(txn, db, key, klen, val, vlen, MDB_APPEND | S_PUT_HIGH);
	if (!rc)
		s_note_write(txn, db, key, klen, 0);
	return rc;
}

int yj_txn_put_new(struct yj_txn *txn, enum yj_db db, const void *key, size_t klen, const void *val, size_t vlen)
{
	int rc = s_put(txn, db, key, klen, val, vlen, MDB_NOOVERWRITE);
	if (!rc)
		s_note_write(txn, db, key, klen, 0);
	return rc;
}

static int s_last_u64(struct yj_txn *t, enum yj_db db, uint64_t *out);

/* Deleting the highest seq must not let it be handed out again. */
static int s_keep_high_water(struct yj_txn *t, enum yj_db db, const void *key, size_t klen)
{
	const char *name = s_hw_name(db);
	uint64_t last = 0, hw = 0;
	int rc;
	if (klen != S_SEQ_LEN)
		return 0;
	if ((rc = s_last_u64(t, db, &last)))
		return rc;
	uint64_t seq = yj_be64_get(key);
	if (seq != last)
		return 0;
	const void *v;
	size_t vlen;
	rc = yj_txn_get(t, YJ_DB_META, name, strlen(name), &v, &vlen);
	if (rc && rc != YJ_ENOENT)
		return rc;
	if (!rc && vlen == S_SEQ_LEN)
		hw = yj_be64_get(v);
	if (hw >= seq)
		return 0;
	uint8_t b[S_SEQ_LEN];
	yj_be64_put(b, seq);
	return s_put(t, YJ_DB_META, name, strlen(name), b, sizeof(b), 0);
}

int yj_txn_del(struct yj_txn *txn, enum yj_db db, const void *key, size_t klen)
{
	int rc = s_check(txn, db, key, klen, 1);
	if (rc)
		return rc;
	if (!key)
		return s_bad(txn, YJ_EINVAL);
	if ((db == YJ_DB_EVENTS || db == YJ_DB_QUARANTINE) && (rc = s_keep_high_water(txn, db, key, klen)))
		return rc;
	MDB_val k = { .mv_size = klen, .mv_data = (void *)key };
	int mrc = mdb_del(txn->txn, txn->store->dbi[db], &k, NULL);
	if (mrc)
		return s_fail(txn, mrc, "del");
	s_note_write(txn, db, key, klen, 0);
	return 0;
}

int yj_txn_del_dup(struct yj_txn *txn, enum yj_db db, const void *key, size_t klen, const void *val, size_t vlen)
{
	int rc = s_check(txn, db, key, klen, 1);
	if (rc)
		return rc;
	if (!key || !val)
		return s_bad(txn, YJ_EINVAL);
	MDB_val k = { .mv_size = klen, .mv_data = (void *)key }, v = { .mv_size = vlen, .mv_data = (void *)val };
	int mrc = mdb_del(txn->txn, txn->store->dbi[db], &k, &v);
	if (mrc)
		return s_fail(txn, mrc, "del");
	s_note_write(txn, db, key, klen, 0);
	return 0;
}

/* Iteration has a cursor of its own: fn may write to the same database, and
 * LMDB keeps a tracked cursor valid across those writes. */
static int s_walk(struct yj_txn *t, enum yj_db db, MDB_cursor_op first_op, const MDB_val *from,
		  int reverse, int dups, yj_store_iter_fn fn, void *arg)
{
	MDB_cursor *c = NULL;
	MDB_val k = { 0 }, v = { 0 };
	int rc = 0, mrc;

	mrc = mdb_cursor_open(t->txn, t->store->dbi[db], &c);
	if (mrc) {
		c = NULL;
		rc = s_fail(t, mrc, "cursor open");
		goto out;
	}
	if (from)
		k = *from;
	mrc = mdb_cursor_get(c, &k, &v, first_op);
	if (reverse && from) {
		/* SET_RANGE found the first key >= from: step back unless equal. */
		if (mrc == MDB_NOTFOUND)
			mrc = mdb_cursor_get(c, &k, &v, MDB_LAST);
		else if (!mrc && mdb_cmp(t->txn, t->store->dbi[db], &k, from) != 0)
			mrc = mdb_cursor_get(c, &k, &v, MDB_PREV);
		else if (!mrc && (s_dbs[db].flags & MDB_DUPSORT))
			mrc = mdb_cursor_get(c, &k, &v, MDB_LAST_DUP);
	}
	while (!mrc) {
		rc = fn(arg, k.mv_data, k.mv_size, v.mv_data, v.mv_size);
		if (rc)
			break;
		mrc = mdb_cursor_get(c, &k, &v, dups ? MDB_NEXT_DUP : reverse ? MDB_PREV : MDB_NEXT);
	}
	if (rc < 0) {
		s_bad(t, rc);
		goto out;
	}
	if (rc > 0) {
		rc = 0;
		goto out;
	}
	if (mrc != MDB_NOTFOUND)
		rc = s_fail(t, mrc, "iterate");
out:
	if (c)
		mdb_cursor_close(c);
	return rc;
}

int yj_txn_iter(struct yj_txn *txn, enum yj_db db, const void *from, size_t flen, int reverse,
		yj_store_iter_fn fn, void *arg)
{
	int rc = s_check(txn, db, from, flen, 0);
	if (rc)
		return rc;
	if (!fn)
		return s_bad(txn, YJ_EINVAL);
	MDB_val f = { .mv_size = flen, .mv_data = (void *)from };
	MDB_cursor_op op = from ? MDB_SET_RANGE : reverse ? MDB_LAST : MDB_FIRST;
	return s_walk(txn, db, op, from ? &f : NULL, reverse, 0, fn, arg);
}

int yj_txn_iter_dups(struct yj_txn *txn, enum yj_db db, const void *key, size_t klen,
		     yj_store_iter_fn fn, void *arg)
{
	int rc = s_check(txn, db, key, klen, 0);
	if (rc)
		return rc;
	if (!key || !fn)
		return s_bad(txn, YJ_EINVAL);
	MDB_val k = { .mv_size = klen, .mv_data = (void *)key };
	return s_walk(txn, db, MDB_SET_KEY, &k, 0, 1, fn, arg);
}

static int s_last_u64(struct yj_txn *t, enum yj_db db, uint64_t *out)
{
	MDB_cursor *c;
	MDB_val k, v;
	int rc;

	/* The kept cursor: for EVENTS this leaves it where the next append goes,
	 * so the append does not search the tree again. */
	if ((rc = s_cursor(t, db, &c)))
		return rc;
	int mrc = mdb_cursor_get(c, &k, &v, MDB_LAST);
	if (mrc == MDB_NOTFOUND) {
		*out = 0;
		return 0;
	}
	if (mrc)
		return s_fail(t, mrc, "last key");
	if (k.mv_size != S_SEQ_LEN)
		return s_bad(t, YJ_EINVAL);
	*out = yj_be64_get(k.mv_data);
	return 0;
}

int yj_txn_last_u64(struct yj_txn *txn, enum yj_db db, uint64_t *out)
{
	int rc = s_check(txn, db, NULL, 0, 0);
	if (rc)
		return rc;
	if (!out)
		return s_bad(txn, YJ_EINVAL);
	return s_last_u64(txn, db, out);
}

/* --- ids that are never reused --- */

/* max(last key, high-water mark) + 1, read once per transaction. */
int yj_txn_next_id(struct yj_txn *txn, enum yj_db db, uint64_t *out)
{
	int rc = s_check(txn, db, NULL, 0, 0);
	if (rc)
		return rc;
	uint64_t *cache = s_id_cache(txn, db);
	if (!cache || !out)
		return s_bad(txn, YJ_EINVAL);
	if (!*cache) {
		const char *name = s_hw_name(db);
		uint64_t last = 0;
		const void *v;
		size_t vlen;
		if ((rc = s_last_u64(txn, db, &last)))
			return rc;
		rc = yj_txn_get(txn, YJ_DB_META, name, strlen(name), &v, &vlen);
		if (rc && rc != YJ_ENOENT)
			return rc;
		if (!rc && vlen == S_SEQ_LEN && yj_be64_get(v) > last)
			last = yj_be64_get(v);
		if (last == UINT64_MAX)
			return s_bad(txn, YJ_ERANGE);
		*cache = last + 1;
	}
	*out = *cache;
	return 0;
}

int yj_txn_counter_next(struct yj_txn *txn, const char *name, uint64_t *out)
{
	int rc = s_check(txn, YJ_DB_META, NULL, 0, 1);
	if (rc)
		return rc;
	if (!name || !out)
		return s_bad(txn, YJ_EINVAL);
	size_t i;
	for (i = 0; i < txn->n_counters && strcmp(txn->counters[i].name, name); i++)
		;
	if (i == txn->n_counters) {
		const void *v;
		size_t vlen;
		uint64_t next = 1;
		if (i == S_COUNTERS)
			return s_bad(txn, YJ_ERANGE);
		rc = yj_txn_get(txn, YJ_DB_META, name, strlen(name), &v, &vlen);
		if (rc && rc != YJ_ENOENT)
			return rc;
		/* Starting again at 1 would reuse what is stored under those
		 * numbers: a damaged counter stops the writer instead. */
		if (!rc && (vlen != S_SEQ_LEN || !(next = yj_be64_get(v)))) {
			yj_err("store: counter %s damaged (%zu bytes, or 0)", name, vlen);
			return s_bad(txn, YJ_ESTORE);
		}
		txn->counters[i].name = name;
		txn->counters[i].next = next;
		txn->n_counters++;
	}
	if (txn->counters[i].next == UINT64_MAX)
		return s_bad(txn, YJ_ERANGE);
	*out = txn->counters[i].next++;
	return 0;
}

size_t yj_store_max_key(const struct yj_store *store)
{
	return store ? store->max_key : 0;
}

size_t yj_txn_max_key(const struct yj_txn *txn)
{
	return txn ? txn->store->max_key : 0;
}

/* --- open, close, stats --- */

/* Opens every named database and checks the schema version. */
static int s_open_fn(struct yj_txn *t, void *arg)
{
	struct yj_store *s = arg;
	const void *v;
	size_t vlen;

	for (int i = 0; i < YJ_DB_COUNT; i++) {
		int mrc = mdb_dbi_open(t->txn, s_dbs[i].name, MDB_CREATE | s_dbs[i].flags, &s->dbi[i]);
		if (mrc) {
			yj_err("store: opening database '%s': %s", s_dbs[i].name, mdb_strerror(mrc));
			return s_fail(t, mrc, "open database");
		}
	}
	int rc = yj_txn_get(t, YJ_DB_META, S_META_SCHEMA, strlen(S_META_SCHEMA), &v, &vlen);
	if (rc == YJ_ENOENT) {
		uint8_t b[S_SEQ_LEN];
		yj_be64_put(b, S_SCHEMA_VERSION);
		return yj_txn_put(t, YJ_DB_META, S_META_SCHEMA, strlen(S_META_SCHEMA), b, sizeof(b));
	}
	if (rc)
		return rc;
	if (vlen != S_SEQ_LEN) {
		yj_err("store: %s: schema version record is damaged (%zu bytes)", s->path, vlen);
		return YJ_ESTORE;
	}
	uint64_t ver = yj_be64_get(v);
	if (ver > S_SCHEMA_VERSION) {
		yj_err("store: %s has schema version %llu, this build reads up to %d: refusing to open it "
		       "(was it written by a newer yjlinkd?)",
		       s->path, (unsigned long long)ver, S_SCHEMA_VERSION);
		return YJ_ESTORE;
	}
	return 0;
}

static int s_file_exists(const char *dir, const char *name)
{
	char p[4096];
	struct stat st;
	if (snprintf(p, sizeof(p), "%s/%s", dir, name) >= (int)sizeof(p))
		return 0;
	return stat(p, &st) == 0;
}

/* map_size 0: keep the size committed in the store. */
static int s_env_open(struct yj_store *s, size_t map_size)
{
	int rc = 0, mrc;
	int existed = s_file_exists(s->path, "data.mdb");

	if ((mrc = mdb_env_create(&s->env))) {
		s->env = NULL;
		goto fail;
	}
	if ((mrc = mdb_env_set_maxdbs(s->env, YJ_DB_COUNT)) ||
	    (mrc = mdb_env_set_maxreaders(s->env, s->max_readers)))
		goto fail;
	/* A new store starts at map_size; an existing one at the size it last
	 * had (held in its meta page), which may be more after growth. */
	if (!existed && map_size && (mrc = mdb_env_set_mapsize(s->env, map_size)))
		goto fail;
	/* Durable commits: neither MDB_NOSYNC nor MDB_NOMETASYNC. No
	 * MDB_WRITEMAP either: with it a full disk becomes SIGBUS. */
	if ((mrc = mdb_env_open(s->env, s->path, MDB_NOTLS, 0600)))
		goto fail;
	if (existed && map_size) {
		MDB_envinfo info;
		mdb_env_info(s->env, &info);
		if (info.me_mapsize < map_size && (mrc = mdb_env_set_mapsize(s->env, map_size)))
			goto fail;
	}
	s->max_key = (size_t)mdb_env_get_maxkeysize(s->env);
	int dead = 0;
	if ((mrc = mdb_reader_check(s->env, &dead)))
		goto fail;
	s->stale_readers += (unsigned)dead;
	if (dead)
		yj_notice("store: %d stale reader slots cleared", dead);
	rc = s_write(s, s_open_fn, s);
	if (rc)
		goto out;
	return 0;
fail:
	yj_err("store: opening %s: %s", s->path, mdb_strerror(mrc));
	rc = s_xlate(mrc) == YJ_ENOSPC ? YJ_ENOSPC : YJ_ESTORE;
out:
	if (s->env)
		mdb_env_close(s->env);
	s->env = NULL;
	return rc;
}

static int s_mkdir(const char *path)
{
	struct stat st;
	if (mkdir(path, 0700) == 0)
		return 0;
	int err = errno;
	if (err == EEXIST && stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
		/* Anyone who can write the directory can swap the store's files
		 * (custody records of children): refuse, as for a key file. */
		if (st.st_mode & 0022) {
			yj_err("store: %s is writable by group or others (mode %04o): chmod 700 it (quality.md: the store "
			       "is 0700, owned by the service user)",
			       path, (unsigned)(st.st_mode & 07777));
			return YJ_ECONFIG;
		}
		if (st.st_mode & 0077)
			yj_warn("store: %s may be read by group or others (mode %04o): chmod 700 it", path,
				(unsigned)(st.st_mode & 07777));
		return 0;
	}
	yj_err("store: cannot create directory %s: %s", path, strerror(err == EEXIST ? ENOTDIR : err));
	return YJ_EIO;
}

/* One process per store: two daemons on one store would each deliver every
 * notification. The lock is the kernel's, so a killed daemon leaves none. */
static int s_lock(struct yj_store *s)
{
	char path[4096], pid[32];
	snprintf(path, sizeof(path), "%s/yjlinkd.lock", s->path);
	s->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (s->lock_fd < 0) {
		yj_err("store: cannot open %s: %s", path, strerror(errno));
		return YJ_EIO;
	}
	if (flock(s->lock_fd, LOCK_EX | LOCK_NB) != 0) {
		int e = errno;
		ssize_t n = pread(s->lock_fd, pid, sizeof(pid) - 1, 0);
		pid[n > 0 ? n : 0] = '\0';
		pid[strcspn(pid, "\n")] = '\0';
		if (e == EWOULDBLOCK)
			yj_err("store: %s is in use by another process (pid %s): one yjlinkd per store; stop that one "
			       "first, or give this one another store.path",
			       s->path, *pid ? pid : "unknown");
		else
			yj_err("store: cannot lock %s: %s", path, strerror(e));
		close(s->lock_fd);
		s->lock_fd = -1;
		return e == EWOULDBLOCK ? YJ_EBUSY : YJ_EIO;
	}
	int n = snprintf(pid, sizeof(pid), "%ld\n", (long)getpid());
	if (ftruncate(s->lock_fd, 0) != 0 || pwrite(s->lock_fd, pid, (size_t)n, 0) != n)
		yj_warn("store: cannot write the pid into %s: %s", path, strerror(errno));
	return 0;
}

int yj_store_open(const struct yj_store_opts *opts, struct yj_store **out)
{
	struct yj_store *s = NULL;
	int rc = 0;

	if (!out)
		return YJ_EINVAL;
	*out = NULL;
	if (!opts || !opts->path || !*opts->path)
		return YJ_EINVAL;
	if ((rc = s_mkdir(opts->path)))
		return rc;
	s = calloc(1, sizeof(*s));
	if (s)
		s->lock_fd = -1;
	if (!s || !(s->path = strdup(opts->path))) {
		rc = YJ_ENOMEM;
		goto out;
	}
	if (opts->exclusive && (rc = s_lock(s)))
		goto out;
	long pg = sysconf(_SC_PAGESIZE);
	s->page = pg > 0 ? (size_t)pg : 4096;
	size_t map = s_round(opts->map_size ? opts->map_size : S_DEFAULT_MAP, s->page);
	s->max_map_size = opts->max_map_size > map ? s_round(opts->max_map_size, s->page) : map;
	s->max_readers = opts->max_readers ? opts->max_readers : S_DEFAULT_READERS;
	if ((rc = s_env_open(s, map)))
		goto out;
	*out = s;
	s = NULL;
out:
	if (s) {
		if (s->lock_fd >= 0)
			close(s->lock_fd);
		free(s->path);
		free(s);
	}
	return rc;
}

/* The named databases of an existing store, in a read transaction: the
 * handles stay with the environment once it commits. */
static int s_open_reader_dbis(struct yj_store *s)
{
	MDB_txn *txn = NULL;
	int mrc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn);
	for (int i = 0; !mrc && i < YJ_DB_COUNT; i++)
		mrc = mdb_dbi_open(txn, s_dbs[i].name, s_dbs[i].flags, &s->dbi[i]);
	if (!mrc)
		return mdb_txn_commit(txn);
	if (txn)
		mdb_txn_abort(txn);
	return mrc;
}

int yj_store_open_reader(const struct yj_store *parent, struct yj_store **out)
{
	struct yj_store *s = NULL;
	int mrc = 0, rc = 0;

	if (!out || !parent)
		return YJ_EINVAL;
	*out = NULL;
	if (!(s = calloc(1, sizeof(*s))) || !(s->path = strdup(parent->path))) {
		rc = YJ_ENOMEM;
		goto out;
	}
	s->lock_fd = -1;
	s->page = parent->page;
	s->max_map_size = parent->max_map_size;
	s->max_readers = parent->max_readers;
	if ((mrc = mdb_env_create(&s->env))) {
		s->env = NULL;
		goto out;
	}
	if ((mrc = mdb_env_set_maxdbs(s->env, YJ_DB_COUNT)) || (mrc = mdb_env_set_maxreaders(s->env, s->max_readers)) ||
	    (mrc = mdb_env_open(s->env, s->path, MDB_RDONLY | MDB_NOTLS, 0600)))
		goto out;
	/* Helpers come and go (one per digest, per report): a slot a killed one
	 * left would be taken until the table is full (MDB_READERS_FULL), so
	 * each new reader clears the slots of processes gone first. */
	int dead = 0;
	if ((mrc = mdb_reader_check(s->env, &dead)) || (mrc = s_open_reader_dbis(s)))
		goto out;
	s->max_key = (size_t)mdb_env_get_maxkeysize(s->env);
	*out = s;
	s = NULL;
out:
	if (mrc) {
		yj_err("store: opening %s to read: %s", parent->path, mdb_strerror(mrc));
		rc = YJ_ESTORE;
	}
	if (s) {
		if (s->env)
			mdb_env_close(s->env);
		free(s->path);
		free(s);
	}
	return rc;
}

void yj_store_close(struct yj_store **store)
{
	if (!store || !*store)
		return;
	struct yj_store *s = *store;
	/* First: a write under way is finished (its owner did not collect it:
	 * its callers were never answered, as at a crash). */
	s_com_stop(s);
	if (s->rtxn)
		mdb_txn_abort(s->rtxn);
	if (s->env)
		mdb_env_close(s->env);
	/* After the environment: the next daemon may open it once we let go. */
	if (s->lock_fd >= 0)
		close(s->lock_fd);
	free(s->path);
	free(s);
	*store = NULL;
}

int yj_txn_count(struct yj_txn *t, enum yj_db db, uint64_t *n)
{
	MDB_stat ms;
	int mrc;
	int rc = s_check(t, db, NULL, 0, 0);
	if (rc)
		return rc;
	if (!n)
		return s_bad(t, YJ_EINVAL);
	if ((mrc = mdb_stat(t->txn, t->store->dbi[db], &ms)))
		return s_fail(t, mrc, "stat");
	*n = ms.ms_entries;
	return 0;
}

static int s_stats_fn(struct yj_txn *t, void *arg)
{
	struct yj_store_stats *st = arg;
	MDB_stat ms;
	int mrc;

	if ((mrc = mdb_stat(t->txn, t->store->dbi[YJ_DB_EVENTS], &ms)))
		return s_fail(t, mrc, "stat");
	st->events = ms.ms_entries;
	if ((mrc = mdb_stat(t->txn, t->store->dbi[YJ_DB_QUARANTINE], &ms)))
		return s_fail(t, mrc, "stat");
	st->quarantined = ms.ms_entries;
	return yj_txn_last_u64(t, YJ_DB_EVENTS, &st->last_seq);
}

int yj_store_stats(struct yj_store *store, struct yj_store_stats *st)
{
	MDB_envinfo info;
	MDB_stat ms;

	if (!store || !st)
		return YJ_EINVAL;
	memset(st, 0, sizeof(*st));
	if (!store->env)
		return YJ_ESTORE;
	mdb_env_info(store->env, &info);
	mdb_env_stat(store->env, &ms);
	st->map_size = info.me_mapsize;
	st->used_bytes = (info.me_last_pgno + 1) * (size_t)ms.ms_psize;
	st->map_grows = store->map_grows;
	st->stale_readers = store->stale_readers;
	return yj_store_read(store, s_stats_fn, st);
}
