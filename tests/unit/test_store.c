/* test_store.c: the LMDB store (daemon/store.c), driven through its generic
 * API and the event and quarantine tables (db/events.c, db/quarantine.c). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "db/events.h"
#include "db/quarantine.h"
#include "err.h"
#include "store.h"

#define EV_LEN 600

struct fx {
	char dir[64];
	struct yj_store *st;
};

static void s_rmdir(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	char p[512];
	if (!d)
		return;
	while ((e = readdir(d))) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
		unlink(p);
	}
	closedir(d);
	rmdir(dir);
}

static int s_open(struct fx *f, size_t map, size_t max)
{
	struct yj_store_opts o = { .path = f->dir, .map_size = map, .max_map_size = max };
	return yj_store_open(&o, &f->st);
}

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	if (!f)
		return -1;
	snprintf(f->dir, sizeof(f->dir), "/tmp/yj-test-store-XXXXXX");
	if (!mkdtemp(f->dir))
		return -1;
	/* The store itself must create its directory. */
	rmdir(f->dir);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	yj_store_close(&f->st);
	s_rmdir(f->dir);
	free(f);
	return 0;
}

/* --- workload helpers --- */

static void s_fill(uint8_t *buf, size_t len, uint64_t seq)
{
	for (size_t i = 0; i < len; i++)
		buf[i] = (uint8_t)(seq * 31 + i);
}

struct batch {
	uint64_t first;     /* out: seq of the first event */
	unsigned n;         /* events to write */
	unsigned base;      /* number of the first event (for keys) */
	size_t len;         /* record length */
	int custody;        /* give every event a custody key */
	unsigned runs;      /* times the write function ran */
};

static int s_batch_fn(struct yj_txn *txn, void *arg)
{
	struct batch *b = arg;
	uint8_t rec[4096], hash[16];
	char src[64], child[64], cust[64];

	b->runs++;
	b->first = 0;
	for (unsigned i = 0; i < b->n; i++) {
		uint64_t seq;
		unsigned no = b->base + i;
		int rc = yj_events_next_seq(txn, &seq);
		if (rc)
			return rc;
		if (!b->first)
			b->first = seq;
		snprintf(src, sizeof(src), "F01/src-%u", no);
		snprintf(child, sizeof(child), "F01/p%u", no % 97);
		snprintf(cust, sizeof(cust), "F01/cr%u", no % 13);
		memset(hash, (int)(no & 0xff), sizeof(hash));
		s_fill(rec, b->len, seq);
		struct yj_event_keys k = {
			.source_key = src,
			.hash = hash,
			.child_id = child,
			.occurred_us = (int64_t)no * 1000000,
			.custody_key = b->custody ? cust : NULL,
		};
		if ((rc = yj_events_put(txn, seq, &k, rec, b->len)))
			return rc;
	}
	return 0;
}

static int s_write_batch(struct yj_store *st, unsigned base, unsigned n, uint64_t *first)
{
	struct batch b = { .n = n, .base = base, .len = EV_LEN, .custody = 1 };
	int rc = yj_store_write(st, s_batch_fn, &b);
	if (first)
		*first = b.first;
	return rc;
}

struct verify {
	uint64_t from, to;  /* seqs expected, inclusive */
	uint64_t bad;       /* mismatches */
};

static int s_verify_fn(struct yj_txn *txn, void *arg)
{
	struct verify *v = arg;
	uint8_t want[EV_LEN];
	for (uint64_t seq = v->from; seq <= v->to; seq++) {
		const void *rec;
		size_t len;
		if (yj_events_get(txn, seq, &rec, &len) || len != EV_LEN) {
			v->bad++;
			continue;
		}
		s_fill(want, sizeof(want), seq);
		if (memcmp(rec, want, len))
			v->bad++;
	}
	return 0;
}

static uint64_t s_bad_events(struct yj_store *st, uint64_t from, uint64_t to)
{
	struct verify v = { .from = from, .to = to };
	assert_int_equal(yj_store_read(st, s_verify_fn, &v), 0);
	return v.bad;
}

static int s_next_seq_fn(struct yj_txn *txn, void *arg)
{
	return yj_events_next_seq(txn, arg);
}

static uint64_t s_next_seq(struct yj_store *st)
{
	uint64_t seq = 0;
	assert_int_equal(yj_store_read(st, s_next_seq_fn, &seq), 0);
	return seq;
}

/* Collects keys or values as u64 (8 bytes) or as strings. */
struct collect {
	unsigned n;
	unsigned stop_at;   /* return 1 after this many (0: never) */
	int values;         /* collect values instead of keys */
	uint64_t u[64];
	char s[16][16];
};

static int s_collect(void *arg, const void *key, size_t klen, const void *val, size_t vlen)
{
	struct collect *c = arg;
	const void *p = c->values ? val : key;
	size_t len = c->values ? vlen : klen;
	if (c->n >= 64)
		return -1;
	if (len == 8)
		c->u[c->n] = yj_be64_get(p);
	if (c->n < 16 && len < 16) {
		memcpy(c->s[c->n], p, len);
		c->s[c->n][len] = 0;
	}
	c->n++;
	return c->stop_at && c->n >= c->stop_at ? 1 : 0;
}

/* --- tests --- */

static void test_open_creates_private_dir(void **state)
{
	struct fx *f = *state;
	struct stat st;
	assert_int_equal(s_open(f, 1 << 20, 8 << 20), 0);
	assert_int_equal(stat(f->dir, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0700);
	char p[128];
	snprintf(p, sizeof(p), "%s/data.mdb", f->dir);
	assert_int_equal(stat(p, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_int_equal(s_next_seq(f->st), 1);
}

struct iter_case {
	struct collect c;
	const char *from;
	int reverse;
	enum yj_db db;
};

static int s_iter_fn(struct yj_txn *txn, void *arg)
{
	struct iter_case *ic = arg;
	return yj_txn_iter(txn, ic->db, ic->from, ic->from ? strlen(ic->from) : 0, ic->reverse, s_collect, &ic->c);
}

static int s_put_meta_fn(struct yj_txn *txn, void *arg)
{
	(void)arg;
	const char *keys[] = { "a", "c", "e" };
	for (int i = 0; i < 3; i++) {
		int rc = yj_txn_put(txn, YJ_DB_META, keys[i], 1, "v", 1);
		if (rc)
			return rc;
	}
	return 0;
}

static void s_expect_iter(struct yj_store *st, const char *from, int reverse, const char *want)
{
	struct iter_case ic = { .from = from, .reverse = reverse, .db = YJ_DB_META };
	char got[64] = "";
	assert_int_equal(yj_store_read(st, s_iter_fn, &ic), 0);
	for (unsigned i = 0; i < ic.c.n; i++)
		if (strlen(ic.c.s[i]) == 1) /* skip the store's own meta keys */
			strncat(got, ic.c.s[i], 1);
	assert_string_equal(got, want);
}

static void test_append_get_iterate(void **state)
{
	struct fx *f = *state;
	uint64_t first = 0;
	assert_int_equal(s_open(f, 1 << 20, 64 << 20), 0);
	assert_int_equal(s_write_batch(f->st, 0, 10, &first), 0);
	assert_int_equal(first, 1);
	assert_int_equal(s_bad_events(f->st, 1, 10), 0);
	assert_int_equal(s_next_seq(f->st), 11);

	/* events in both directions, from a key and from the ends */
	struct iter_case ic = { .db = YJ_DB_EVENTS };
	assert_int_equal(yj_store_read(f->st, s_iter_fn, &ic), 0);
	assert_int_equal(ic.c.n, 10);
	for (unsigned i = 0; i < 10; i++)
		assert_int_equal(ic.c.u[i], i + 1);
	memset(&ic, 0, sizeof(ic));
	ic.db = YJ_DB_EVENTS;
	ic.reverse = 1;
	ic.c.stop_at = 3;
	assert_int_equal(yj_store_read(f->st, s_iter_fn, &ic), 0);
	assert_int_equal(ic.c.n, 3);
	assert_int_equal(ic.c.u[0], 10);
	assert_int_equal(ic.c.u[2], 8);

	/* string keys: from present, absent, beyond either end */
	assert_int_equal(yj_store_write(f->st, s_put_meta_fn, NULL), 0);
	s_expect_iter(f->st, NULL, 0, "ace");
	s_expect_iter(f->st, "b", 0, "ce");
	s_expect_iter(f->st, "c", 0, "ce");
	s_expect_iter(f->st, "f", 0, "");
	s_expect_iter(f->st, NULL, 1, "eca");
	s_expect_iter(f->st, "d", 1, "ca");
	s_expect_iter(f->st, "c", 1, "ca");
	s_expect_iter(f->st, "z", 1, "eca");
	s_expect_iter(f->st, "0", 1, "");

	struct yj_store_stats ss;
	assert_int_equal(yj_store_stats(f->st, &ss), 0);
	assert_int_equal(ss.events, 10);
	assert_int_equal(ss.last_seq, 10);
	assert_int_equal(ss.quarantined, 0);
}

struct idx {
	struct collect c;
	const char *key;
	enum yj_db db;
	const uint8_t *from;
	int reverse;
	struct yj_source_ref ref;
	int found;
};

static int s_dups_fn(struct yj_txn *txn, void *arg)
{
	struct idx *x = arg;
	x->c.values = 1;
	return yj_txn_iter_dups(txn, x->db, x->key, strlen(x->key), s_collect, &x->c);
}

static int s_time_fn(struct yj_txn *txn, void *arg)
{
	struct idx *x = arg;
	x->c.values = 1;
	return yj_txn_iter(txn, YJ_DB_TIME, x->from, x->from ? 8 : 0, x->reverse, s_collect, &x->c);
}

static int s_find_fn(struct yj_txn *txn, void *arg)
{
	struct idx *x = arg;
	x->found = yj_events_find_source(txn, x->key, &x->ref);
	return 0;
}

struct ev {
	const char *src, *child, *cust;
	int64_t t;
};

static int s_events_fn(struct yj_txn *txn, void *arg)
{
	const struct ev *e = arg;
	uint8_t hash[16];
	for (; e->src; e++) {
		uint64_t seq;
		int rc = yj_events_next_seq(txn, &seq);
		if (rc)
			return rc;
		memset(hash, (int)seq, sizeof(hash));
		struct yj_event_keys k = { e->src, hash, e->child, e->t, e->cust };
		if ((rc = yj_events_put(txn, seq, &k, "x", 1)))
			return rc;
	}
	return 0;
}

static void test_indexes(void **state)
{
	struct fx *f = *state;
	static const struct ev evs[] = {
		{ "F1/s1", "F1/p1", "F1/r1", 5000 },      /* seq 1 */
		{ "F1/s2", "F1/p2", NULL, -7000 },        /* seq 2 */
		{ "F1/s3", "F1/p1", "F1/r1", 5000 },      /* seq 3: same time as 1 */
		{ "F1/s4", "F1/p2", NULL, 0 },            /* seq 4 */
		{ "F1/s5", "F1/p1", "F1/r2", 9000 },      /* seq 5 */
		{ NULL, NULL, NULL, 0 },
	};
	assert_int_equal(s_open(f, 1 << 20, 64 << 20), 0);
	assert_int_equal(yj_store_write(f->st, s_events_fn, (void *)evs), 0);

	struct idx x = { .key = "F1/p1", .db = YJ_DB_CHILD };
	assert_int_equal(yj_store_read(f->st, s_dups_fn, &x), 0);
	assert_int_equal(x.c.n, 3);
	assert_int_equal(x.c.u[0], 1);
	assert_int_equal(x.c.u[1], 3);
	assert_int_equal(x.c.u[2], 5);
	memset(&x, 0, sizeof(x));
	x.key = "F1/p9";
	x.db = YJ_DB_CHILD;
	assert_int_equal(yj_store_read(f->st, s_dups_fn, &x), 0);
	assert_int_equal(x.c.n, 0);

	/* custody record r1 has seqs 1 and 3, events without one are absent */
	memset(&x, 0, sizeof(x));
	x.key = "F1/r1";
	x.db = YJ_DB_CUSTODY;
	assert_int_equal(yj_store_read(f->st, s_dups_fn, &x), 0);
	assert_int_equal(x.c.n, 2);
	assert_int_equal(x.c.u[0], 1);
	assert_int_equal(x.c.u[1], 3);

	/* time order, negative times first, equal times by seq */
	memset(&x, 0, sizeof(x));
	assert_int_equal(yj_store_read(f->st, s_time_fn, &x), 0);
	assert_int_equal(x.c.n, 5);
	uint64_t want[] = { 2, 4, 1, 3, 5 };
	for (int i = 0; i < 5; i++)
		assert_int_equal(x.c.u[i], want[i]);
	/* range: from 1 us on */
	uint8_t k[8];
	yj_be64_put(k, yj_time_key(1));
	memset(&x, 0, sizeof(x));
	x.from = k;
	assert_int_equal(yj_store_read(f->st, s_time_fn, &x), 0);
	assert_int_equal(x.c.n, 3);
	assert_int_equal(x.c.u[0], 1);
	assert_int_equal(x.c.u[2], 5);
	/* down from 5000 us: the last duplicate of that time comes first */
	yj_be64_put(k, yj_time_key(5000));
	memset(&x, 0, sizeof(x));
	x.from = k;
	x.reverse = 1;
	assert_int_equal(yj_store_read(f->st, s_time_fn, &x), 0);
	assert_int_equal(x.c.n, 4);
	uint64_t wantr[] = { 3, 1, 4, 2 };
	for (int i = 0; i < 4; i++)
		assert_int_equal(x.c.u[i], wantr[i]);
	/* down from 6000 us: lands on the last duplicate of 5000 */
	yj_be64_put(k, yj_time_key(6000));
	memset(&x, 0, sizeof(x));
	x.from = k;
	x.reverse = 1;
	assert_int_equal(yj_store_read(f->st, s_time_fn, &x), 0);
	assert_int_equal(x.c.n, 4);
	assert_int_equal(x.c.u[0], 3);

	/* source refs */
	memset(&x, 0, sizeof(x));
	x.key = "F1/s3";
	assert_int_equal(yj_store_read(f->st, s_find_fn, &x), 0);
	assert_int_equal(x.found, 0);
	assert_int_equal(x.ref.seq, 3);
	assert_int_equal(x.ref.hash[0], 3);
	assert_int_equal(x.ref.hash[15], 3);
	x.key = "F1/s9";
	assert_int_equal(yj_store_read(f->st, s_find_fn, &x), 0);
	assert_int_equal(x.found, YJ_ENOENT);
}

/* Within one transaction a stored source is seen, and storing it twice is
 * YJ_EEXIST with nothing written and the transaction still usable. */
struct same_txn {
	int step;
	int rc_after;        /* yj_txn_rc() after the refused put */
	uint64_t events;     /* events in the transaction after it */
	uint64_t next;       /* next seq after it */
};

static int s_same_txn_fn(struct yj_txn *txn, void *arg)
{
	struct same_txn *st = arg;
	struct yj_source_ref ref;
	static const struct ev one[] = { { "F1/x", "F1/p", NULL, 1 }, { NULL, NULL, NULL, 0 } };
	int rc = s_events_fn(txn, (void *)one);
	if (rc)
		return rc;
	st->step = 1;
	if (yj_events_find_source(txn, "F1/x", &ref) || ref.seq != 1)
		return YJ_EPROTO;
	st->step = 2;
	rc = s_events_fn(txn, (void *)one);
	if (rc != YJ_EEXIST)
		return YJ_EPROTO;
	st->step = 3;
	st->rc_after = yj_txn_rc(txn);
	if (yj_events_count(txn, &st->events) || yj_events_next_seq(txn, &st->next))
		return YJ_EPROTO;
	/* The caller decides: here it gives the whole transaction up. */
	return rc;
}

static void test_source_seen_in_txn(void **state)
{
	struct fx *f = *state;
	struct same_txn st = { 0 };
	assert_int_equal(s_open(f, 1 << 20, 64 << 20), 0);
	assert_int_equal(yj_store_write(f->st, s_same_txn_fn, &st), YJ_EEXIST);
	assert_int_equal(st.step, 3);
	assert_int_equal(st.rc_after, 0);
	assert_int_equal(st.events, 1);
	assert_int_equal(st.next, 2);
	assert_int_equal(s_next_seq(f->st), 1);
}

struct sticky {
	int first_rc, rc_after, later_rc, get_rc;
};

static int s_sticky_fn(struct yj_txn *txn, void *arg)
{
	struct sticky *s = arg;
	char big[600];
	const void *v;
	size_t vl;
	static const struct ev one[] = { { "F1/x", "F1/p", NULL, 1 }, { NULL, NULL, NULL, 0 } };
	if (s_events_fn(txn, (void *)one))
		return YJ_EPROTO;
	/* a lookup of an absent key is an answer, not a failure */
	s->get_rc = yj_txn_get(txn, YJ_DB_META, "nope", 4, &v, &vl);
	if (yj_txn_rc(txn))
		return YJ_EPROTO;
	memset(big, 'k', sizeof(big));
	s->first_rc = yj_txn_put(txn, YJ_DB_META, big, sizeof(big), "v", 1);
	s->rc_after = yj_txn_rc(txn);
	s->later_rc = yj_txn_put(txn, YJ_DB_META, "ok", 2, "v", 1);
	return 0; /* ignores the error: the store must not commit anyway */
}

static void test_sticky_error(void **state)
{
	struct fx *f = *state;
	struct sticky s = { 0 };
	assert_int_equal(s_open(f, 1 << 20, 64 << 20), 0);
	assert_int_equal(yj_store_write(f->st, s_sticky_fn, &s), YJ_EINVAL);
	assert_int_equal(s.get_rc, YJ_ENOENT);
	assert_int_equal(s.first_rc, YJ_EINVAL);
	assert_int_equal(s.rc_after, YJ_EINVAL);
	assert_int_equal(s.later_rc, YJ_EINVAL);
	assert_int_equal(s_next_seq(f->st), 1);
	struct yj_store_stats ss;
	assert_int_equal(yj_store_stats(f->st, &ss), 0);
	assert_int_equal(ss.events, 0);
}

static int s_fail_fn(struct yj_txn *txn, void *arg)
{
	(void)arg;
	static const struct ev one[] = { { "F1/x", "F1/p", NULL, 1 }, { NULL, NULL, NULL, 0 } };
	if (s_events_fn(txn, (void *)one))
		return YJ_EIO;
	return YJ_EPROTO;
}

static void test_fn_error_aborts(void **state)
{
	struct fx *f = *state;
	assert_int_equal(s_open(f, 1 << 20, 64 << 20), 0);
	assert_int_equal(yj_store_write(f->st, s_fail_fn, NULL), YJ_EPROTO);
	assert_int_equal(s_next_seq(f->st), 1);
	/* the store is fine afterwards */
	assert_int_equal(s_write_batch(f->st, 0, 3, NULL), 0);
	assert_int_equal(s_next_seq(f->st), 4);
}

static void test_map_growth(void **state)
{
	struct fx *f = *state;
	struct yj_store_stats ss;
	const unsigned batches = 100, per = 1000;

	assert_int_equal(s_open(f, 64 << 10, (size_t)1 << 30), 0);
	assert_int_equal(yj_store_stats(f->st, &ss), 0);
	assert_int_equal(ss.map_size, 64 << 10);
	for (unsigned b = 0; b < batches; b++) {
		uint64_t first = 0;
		assert_int_equal(s_write_batch(f->st, b * per, per, &first), 0);
		assert_int_equal(first, (uint64_t)b * per + 1);
	}
	assert_int_equal(yj_store_stats(f->st, &ss), 0);
	assert_true(ss.map_grows > 0);
	assert_true(ss.map_size > (size_t)batches * per * EV_LEN);
	assert_true(ss.used_bytes <= ss.map_size);
	assert_int_equal(ss.events, (uint64_t)batches * per);
	size_t grown = ss.map_size;

	yj_store_close(&f->st);
	assert_null(f->st);
	assert_int_equal(s_open(f, 64 << 10, (size_t)1 << 30), 0);
	assert_int_equal(yj_store_stats(f->st, &ss), 0);
	/* the grown size is kept: no regrowth after a restart */
	assert_int_equal(ss.map_size, grown);
	assert_int_equal(ss.map_grows, 0);
	assert_int_equal(ss.events, (uint64_t)batches * per);
	assert_int_equal(s_bad_events(f->st, 1, (uint64_t)batches * per), 0);
	assert_int_equal(s_next_seq(f->st), (uint64_t)batches * per + 1);
}

static void test_map_cap(void **state)
{
	struct fx *f = *state;
	struct yj_store_stats ss;
	uint64_t first = 0, stored = 0;

	assert_int_equal(s_open(f, 64 << 10, 1 << 20), 0);
	/* more than the cap can ever hold */
	assert_int_equal(s_write_batch(f->st, 0, 2000, NULL), YJ_ENOSPC);
	assert_int_equal(yj_store_stats(f->st, &ss), 0);
	assert_int_equal(ss.map_size, 1 << 20);
	assert_int_equal(ss.events, 0);
	/* smaller writes still go in, until the cap */
	assert_int_equal(s_write_batch(f->st, 0, 10, &first), 0);
	assert_int_equal(first, 1);
	stored = 10;
	int rc = 0;
	for (unsigned i = 1; i < 1000 && !rc; i++) {
		rc = s_write_batch(f->st, i * 10, 10, NULL);
		if (!rc)
			stored += 10;
	}
	assert_int_equal(rc, YJ_ENOSPC);
	assert_int_equal(yj_store_stats(f->st, &ss), 0);
	assert_int_equal(ss.events, stored);
	assert_int_equal(ss.map_size, 1 << 20);
	assert_int_equal(s_bad_events(f->st, 1, stored), 0);
	assert_int_equal(s_next_seq(f->st), stored + 1);
	/* reopening with a higher cap lets it grow again */
	yj_store_close(&f->st);
	assert_int_equal(s_open(f, 64 << 10, 64 << 20), 0);
	assert_int_equal(s_write_batch(f->st, 100000, 100, &first), 0);
	assert_int_equal(first, stored + 1);
}

static void test_reopen(void **state)
{
	struct fx *f = *state;
	uint64_t first = 0;
	assert_int_equal(s_open(f, 1 << 20, 64 << 20), 0);
	assert_int_equal(s_write_batch(f->st, 0, 5, NULL), 0);
	yj_store_close(&f->st);
	yj_store_close(&f->st); /* idempotent */
	assert_int_equal(s_open(f, 1 << 20, 64 << 20), 0);
	assert_int_equal(s_bad_events(f->st, 1, 5), 0);
	assert_int_equal(s_next_seq(f->st), 6);
	assert_int_equal(s_write_batch(f->st, 5, 5, &first), 0);
	assert_int_equal(first, 6);
	assert_int_equal(s_bad_events(f->st, 1, 10), 0);
}

static int s_future_fn(struct yj_txn *txn, void *arg)
{
	(void)arg;
	uint8_t v[8];
	yj_be64_put(v, 999);
	return yj_txn_put(txn, YJ_DB_META, "store.schema_version", strlen("store.schema_version"), v, 8);
}

static void test_future_schema_refused(void **state)
{
	struct fx *f = *state;
	assert_int_equal(s_open(f, 1 << 20, 64 << 20), 0);
	assert_int_equal(yj_store_write(f->st, s_future_fn, NULL), 0);
	yj_store_close(&f->st);
	assert_int_equal(s_open(f, 1 << 20, 64 << 20), YJ_ESTORE);
	assert_null(f->st);
}

struct keys {
	int step, put_512, put_511, get_512, ev_long, child_long, cust_long;
};

static int s_keylen_fn(struct yj_txn *txn, void *arg)
{
	struct keys *k = arg;
	char big[700];
	uint8_t hash[16] = { 0 };
	memset(big, 'k', sizeof(big) - 1);
	big[sizeof(big) - 1] = 0;
	/* each failure is sticky: test each in its own transaction */
	switch (k->step++) {
	case 0:
		k->put_511 = yj_txn_put(txn, YJ_DB_META, big, 511, "v", 1);
		return k->put_511;
	case 1:
		k->put_512 = yj_txn_put(txn, YJ_DB_META, big, 512, "v", 1);
		return 0;
	case 2:
		k->get_512 = yj_txn_get(txn, YJ_DB_META, big, 512, NULL, NULL);
		return 0;
	case 3: {
		struct yj_event_keys ek = { big, hash, "F/p", 0, NULL };
		k->ev_long = yj_events_put(txn, 1, &ek, "x", 1);
		return 0;
	}
	case 4: {
		struct yj_event_keys ek = { "F/s", hash, big, 0, NULL };
		k->child_long = yj_events_put(txn, 1, &ek, "x", 1);
		return 0;
	}
	case 5: {
		struct yj_event_keys ek = { "F/s", hash, "F/p", 0, big };
		k->cust_long = yj_events_put(txn, 1, &ek, "x", 1);
		return 0;
	}
	default:
		return yj_txn_put(txn, YJ_DB_META, "", 0, "v", 1);
	}
}

static void test_keys_too_long(void **state)
{
	struct fx *f = *state;
	struct keys k = { 0 };
	assert_int_equal(s_open(f, 1 << 20, 64 << 20), 0);
	assert_int_equal(yj_store_write(f->st, s_keylen_fn, &k), 0);
	assert_int_equal(k.put_511, 0);
	for (int i = 1; i < 6; i++)
		assert_int_equal(yj_store_write(f->st, s_keylen_fn, &k), YJ_EINVAL);
	assert_int_equal(k.put_512, YJ_EINVAL);
	assert_int_equal(k.get_512, YJ_EINVAL);
	assert_int_equal(k.ev_long, YJ_EINVAL);
	assert_int_equal(k.child_long, YJ_EINVAL);
	assert_int_equal(k.cust_long, YJ_EINVAL);
	/* empty key */
	assert_int_equal(yj_store_write(f->st, s_keylen_fn, &k), YJ_EINVAL);
	assert_int_equal(s_next_seq(f->st), 1);
}

struct quar {
	uint64_t ids[3];
	uint64_t set[3];    /* q.id as yj_quarantine_put left it */
};

static int s_quar_fn(struct yj_txn *txn, void *arg)
{
	struct quar *q = arg;
	const char *recs[] = { "bad-1", "bad-22", "bad-333" };
	for (int i = 0; i < 3; i++) {
		Yjlink__V1__Quarantined m = YJLINK__V1__QUARANTINED__INIT;
		m.reason = (char *)recs[i];
		m.has_payload = 1;
		m.payload.data = (uint8_t *)recs[i];
		m.payload.len = strlen(recs[i]);
		int rc = yj_quarantine_put(txn, &m, &q->ids[i]);
		if (rc)
			return rc;
		q->set[i] = m.has_id ? m.id : 0;
	}
	return 0;
}

struct quar_get {
	uint64_t id;
	char reason[16];
	char payload[16];
	uint64_t stored_id;
};

static int s_quar_get_fn(struct yj_txn *txn, void *arg)
{
	struct quar_get *g = arg;
	Yjlink__V1__Quarantined *q = yj_quarantine_get(txn, g->id);
	if (!q)
		return YJ_ENOENT;
	snprintf(g->reason, sizeof(g->reason), "%s", q->reason ? q->reason : "");
	snprintf(g->payload, sizeof(g->payload), "%.*s", (int)q->payload.len, (const char *)q->payload.data);
	g->stored_id = q->id;
	yjlink__v1__quarantined__free_unpacked(q, NULL);
	return 0;
}

static void test_quarantine(void **state)
{
	struct fx *f = *state;
	struct quar q = { { 0 }, { 0 } };
	assert_int_equal(s_open(f, 1 << 20, 64 << 20), 0);
	assert_int_equal(yj_store_write(f->st, s_quar_fn, &q), 0);
	assert_int_equal(q.ids[0], 1);
	assert_int_equal(q.ids[2], 3);
	assert_int_equal(q.set[2], 3);
	yj_store_close(&f->st);
	assert_int_equal(s_open(f, 1 << 20, 64 << 20), 0);
	assert_int_equal(yj_store_write(f->st, s_quar_fn, &q), 0);
	assert_int_equal(q.ids[0], 4);
	assert_int_equal(q.ids[2], 6);

	struct iter_case ic = { .db = YJ_DB_QUARANTINE };
	ic.c.values = 0;
	assert_int_equal(yj_store_read(f->st, s_iter_fn, &ic), 0);
	assert_int_equal(ic.c.n, 6);
	for (unsigned i = 0; i < 6; i++)
		assert_int_equal(ic.c.u[i], i + 1);
	struct quar_get g = { .id = 5 };
	assert_int_equal(yj_store_read(f->st, s_quar_get_fn, &g), 0);
	assert_string_equal(g.reason, "bad-22");
	assert_string_equal(g.payload, "bad-22");
	assert_int_equal(g.stored_id, 5);

	struct yj_store_stats ss;
	assert_int_equal(yj_store_stats(f->st, &ss), 0);
	assert_int_equal(ss.quarantined, 6);
	assert_int_equal(ss.events, 0);
}

static int s_del_last_fn(struct yj_txn *txn, void *arg)
{
	uint64_t *last = arg;
	uint8_t k[8];
	int rc = yj_txn_last_u64(txn, YJ_DB_EVENTS, last);
	if (rc)
		return rc;
	yj_be64_put(k, *last);
	if ((rc = yj_txn_del(txn, YJ_DB_EVENTS, k, 8)))
		return rc;
	/* deleting again: absent, and not a failure of the transaction */
	if (yj_txn_del(txn, YJ_DB_EVENTS, k, 8) != YJ_ENOENT || yj_txn_rc(txn))
		return YJ_EPROTO;
	if ((rc = yj_txn_del(txn, YJ_DB_CHILD, "F01/p1", 6)))
		return rc;
	return 0;
}

static void test_delete_never_reuses_seq(void **state)
{
	struct fx *f = *state;
	uint64_t last = 0;
	assert_int_equal(s_open(f, 1 << 20, 64 << 20), 0);
	assert_int_equal(s_write_batch(f->st, 0, 3, NULL), 0);
	assert_int_equal(yj_store_write(f->st, s_del_last_fn, &last), 0);
	assert_int_equal(last, 3);
	assert_int_equal(s_next_seq(f->st), 4);
	struct idx x = { .key = "F01/p1", .db = YJ_DB_CHILD };
	assert_int_equal(yj_store_read(f->st, s_dups_fn, &x), 0);
	assert_int_equal(x.c.n, 0);
	yj_store_close(&f->st);
	assert_int_equal(s_open(f, 1 << 20, 64 << 20), 0);
	assert_int_equal(s_next_seq(f->st), 4);
}

/* A full disk, simulated by a file size limit: the commit fails with
 * YJ_ENOSPC, and once the limit is lifted the same store writes again. */
static void test_disk_full_recovers(void **state)
{
	struct fx *f = *state;
	struct rlimit old, lim;
	struct stat st;
	char p[128];
	uint64_t first = 0;

	assert_int_equal(s_open(f, 64 << 20, 64 << 20), 0);
	assert_int_equal(s_write_batch(f->st, 0, 100, NULL), 0);
	snprintf(p, sizeof(p), "%s/data.mdb", f->dir);
	assert_int_equal(stat(p, &st), 0);
	signal(SIGXFSZ, SIG_IGN);
	assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
	lim = old;
	lim.rlim_cur = (rlim_t)st.st_size;
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
	int rc = s_write_batch(f->st, 100, 1000, NULL);
	int rc2 = s_write_batch(f->st, 100, 1000, NULL);
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
	signal(SIGXFSZ, SIG_DFL);
	assert_int_equal(rc, YJ_ENOSPC);
	assert_int_equal(rc2, YJ_ENOSPC);
	assert_int_equal(s_bad_events(f->st, 1, 100), 0);
	assert_int_equal(s_next_seq(f->st), 101);
	assert_int_equal(s_write_batch(f->st, 100, 1000, &first), 0);
	assert_int_equal(first, 101);
	assert_int_equal(s_bad_events(f->st, 1, 1100), 0);
	yj_store_close(&f->st);
	assert_int_equal(s_open(f, 64 << 20, 64 << 20), 0);
	assert_int_equal(s_bad_events(f->st, 1, 1100), 0);
}

/* Another process grows the map: this one adopts the new size at its next
 * transaction (MDB_MAP_RESIZED) and goes on. */
static void test_map_resized_elsewhere(void **state)
{
	struct fx *f = *state;
	uint64_t first = 0;
	assert_int_equal(s_open(f, 1 << 20, 1 << 20), 0);
	assert_int_equal(s_write_batch(f->st, 0, 10, NULL), 0);
	/* The child's verdict comes down a pipe, not in its exit status, which
	 * a leak checker may change (it inherits our open store). */
	int res[2];
	char ok = 0;
	assert_int_equal(pipe(res), 0);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct yj_store *st = NULL;
		struct yj_store_opts o = { .path = f->dir, .map_size = 16 << 20, .max_map_size = 16 << 20 };
		ok = yj_store_open(&o, &st) == 0 && s_write_batch(st, 10, 3000, NULL) == 0 ? 'y' : 'n';
		yj_store_close(&st);
		(void)!write(res[1], &ok, 1);
		_exit(0);
	}
	assert_int_equal(waitpid(pid, NULL, 0), pid);
	assert_int_equal(read(res[0], &ok, 1), 1);
	assert_int_equal(ok, 'y');
	close(res[0]);
	close(res[1]);
	assert_int_equal(s_bad_events(f->st, 1, 3010), 0);
	assert_int_equal(s_write_batch(f->st, 3010, 10, &first), 0);
	assert_int_equal(first, 3011);
	struct yj_store_stats ss;
	assert_int_equal(yj_store_stats(f->st, &ss), 0);
	assert_true(ss.map_size >= (16 << 20));
}

static int s_die_fn(struct yj_txn *txn, void *arg)
{
	(void)txn;
	(void)arg;
	_exit(0); /* dies holding a reader slot */
}

/* LMDB resets its reader table when no process has the store open, so a
 * live holder (child A) keeps it while child B dies inside a read. */
static void test_stale_readers_cleared(void **state)
{
	struct fx *f = *state;
	struct yj_store_opts o = { .path = f->dir, .map_size = 1 << 20, .max_map_size = 8 << 20 };
	int ready[2], quit[2];
	char c = 0;

	assert_int_equal(s_open(f, 1 << 20, 8 << 20), 0);
	yj_store_close(&f->st);
	assert_int_equal(pipe(ready), 0);
	assert_int_equal(pipe(quit), 0);
	pid_t a = fork();
	assert_true(a >= 0);
	if (a == 0) {
		struct yj_store *st = NULL;
		close(quit[1]);
		if (yj_store_open(&o, &st) == 0 && write(ready[1], "r", 1) == 1)
			(void)!read(quit[0], &c, 1);
		yj_store_close(&st);
		_exit(0);
	}
	assert_int_equal(read(ready[0], &c, 1), 1);
	pid_t b = fork();
	assert_true(b >= 0);
	if (b == 0) {
		struct yj_store *st = NULL;
		if (yj_store_open(&o, &st) == 0)
			yj_store_read(st, s_die_fn, NULL);
		_exit(1);
	}
	assert_int_equal(waitpid(b, NULL, 0), b);
	assert_int_equal(s_open(f, 1 << 20, 8 << 20), 0);
	struct yj_store_stats ss;
	assert_int_equal(yj_store_stats(f->st, &ss), 0);
	close(quit[1]);
	assert_int_equal(waitpid(a, NULL, 0), a);
	close(quit[0]);
	close(ready[0]);
	close(ready[1]);
	assert_int_equal(ss.stale_readers, 1);
}

static int s_inner_read_fn(struct yj_txn *txn, void *arg);

/* Helper processes (digestjob.c, reportjob.c) each open a reader of their
 * own; one killed inside its read leaves its slot taken. More of them than
 * there are slots, and yj_store_open_reader() still opens and reads: each
 * clears the slots of processes gone first. */
static void test_open_reader_after_dead_helpers(void **state)
{
	struct fx *f = *state;
	struct yj_store_opts o = { .path = f->dir, .map_size = 1 << 20, .max_map_size = 8 << 20, .max_readers = 4 };
	assert_int_equal(yj_store_open(&o, &f->st), 0);
	assert_int_equal(s_write_batch(f->st, 0, 3, NULL), 0);
	for (int i = 0; i < 10; i++) {
		pid_t p = fork();
		assert_true(p >= 0);
		if (p == 0) {
			struct yj_store *r = NULL;
			if (yj_store_open_reader(f->st, &r) == 0)
				yj_store_read(r, s_die_fn, NULL);
			_exit(3);
		}
		int status = 0;
		assert_int_equal(waitpid(p, &status, 0), p);
		/* s_die_fn ends the helper inside its read, slot taken. */
		assert_true(WIFEXITED(status));
		assert_int_not_equal(WEXITSTATUS(status), 3);
	}
	struct yj_store *r = NULL;
	assert_int_equal(yj_store_open_reader(f->st, &r), 0);
	assert_int_equal(yj_store_read(r, s_inner_read_fn, NULL), 0);
	yj_store_close(&r);
}

static int s_inner_read_fn(struct yj_txn *txn, void *arg)
{
	(void)txn;
	(void)arg;
	return 0;
}

static int s_outer_read_fn(struct yj_txn *txn, void *arg)
{
	struct fx *f = arg;
	(void)txn;
	return yj_store_read(f->st, s_inner_read_fn, NULL);
}

/* One reader slot: a second concurrent reader gets YJ_EAGAIN after the
 * store has checked for stale slots once; the store goes on working. */
static void test_readers_full(void **state)
{
	struct fx *f = *state;
	struct yj_store_opts o = { .path = f->dir, .map_size = 1 << 20, .max_map_size = 8 << 20, .max_readers = 1 };
	assert_int_equal(yj_store_open(&o, &f->st), 0);
	assert_int_equal(yj_store_read(f->st, s_outer_read_fn, f), YJ_EAGAIN);
	assert_int_equal(s_write_batch(f->st, 0, 3, NULL), 0);
	assert_int_equal(s_next_seq(f->st), 4);
}

static int s_nested_fn(struct yj_txn *txn, void *arg)
{
	struct fx *f = arg;
	(void)txn;
	int rc = yj_store_write(f->st, s_fail_fn, NULL);
	return rc == YJ_EINVAL ? 0 : YJ_EPROTO;
}

static int s_write_in_read_fn(struct yj_txn *txn, void *arg)
{
	(void)arg;
	return yj_txn_put(txn, YJ_DB_META, "k", 1, "v", 1);
}

static void test_misuse(void **state)
{
	struct fx *f = *state;
	struct yj_store_opts o = { 0 };
	struct yj_store *st = (struct yj_store *)1;
	assert_int_equal(yj_store_open(&o, &st), YJ_EINVAL);
	assert_null(st);
	assert_int_equal(yj_store_open(NULL, &st), YJ_EINVAL);
	assert_int_equal(s_open(f, 1 << 20, 8 << 20), 0);
	assert_int_equal(yj_store_write(f->st, NULL, NULL), YJ_EINVAL);
	assert_int_equal(yj_store_write(f->st, s_nested_fn, f), 0);
	assert_int_equal(yj_store_read(f->st, s_write_in_read_fn, NULL), YJ_EINVAL);
	assert_int_equal(yj_txn_rc(NULL), YJ_EINVAL);
	assert_int_equal(yj_txn_put(NULL, YJ_DB_META, "k", 1, "v", 1), YJ_EINVAL);
	yj_store_close(NULL);
}

/* yj_txn_put_new: an existing key is YJ_EEXIST, not a failure of the
 * transaction, which goes on and commits; bad keys still fail it. */
struct put_new {
	int first, again, rc_after, other, dup_key, dup_rc_after;
	const void *v;
	size_t vlen;
};

static int s_put_new_fn(struct yj_txn *txn, void *arg)
{
	struct put_new *p = arg;
	uint8_t seq[8];
	yj_be64_put(seq, 7);
	p->first = yj_txn_put_new(txn, YJ_DB_META, "pn", 2, "one", 3);
	p->again = yj_txn_put_new(txn, YJ_DB_META, "pn", 2, "two", 3);
	p->rc_after = yj_txn_rc(txn);
	p->other = yj_txn_put(txn, YJ_DB_META, "pn2", 3, "x", 1);
	/* DUPSORT: the key is there, whatever the value */
	if (yj_txn_put(txn, YJ_DB_CHILD, "F/p", 3, seq, 8))
		return YJ_EPROTO;
	yj_be64_put(seq, 8);
	p->dup_key = yj_txn_put_new(txn, YJ_DB_CHILD, "F/p", 3, seq, 8);
	p->dup_rc_after = yj_txn_rc(txn);
	return 0;
}

static int s_get_pn_fn(struct yj_txn *txn, void *arg)
{
	struct put_new *p = arg;
	uint64_t n = 0;
	int rc = yj_txn_get(txn, YJ_DB_META, "pn", 2, &p->v, &p->vlen);
	if (rc)
		return rc;
	if (p->vlen != 3 || memcmp(p->v, "one", 3))
		return YJ_EPROTO;
	if ((rc = yj_txn_count(txn, YJ_DB_CHILD, &n)))
		return rc;
	return n == 1 ? 0 : YJ_EPROTO;
}

static int s_put_new_long_fn(struct yj_txn *txn, void *arg)
{
	char big[600];
	(void)arg;
	memset(big, 'k', sizeof(big));
	int rc = yj_txn_put_new(txn, YJ_DB_META, big, sizeof(big), "v", 1);
	return rc == YJ_EINVAL && yj_txn_rc(txn) == YJ_EINVAL ? 0 : YJ_EPROTO;
}

static void test_put_new(void **state)
{
	struct fx *f = *state;
	struct put_new p = { 0 };
	assert_int_equal(s_open(f, 1 << 20, 8 << 20), 0);
	assert_int_equal(yj_store_write(f->st, s_put_new_fn, &p), 0);
	assert_int_equal(p.first, 0);
	assert_int_equal(p.again, YJ_EEXIST);
	assert_int_equal(p.rc_after, 0);
	assert_int_equal(p.other, 0);
	assert_int_equal(p.dup_key, YJ_EEXIST);
	assert_int_equal(p.dup_rc_after, 0);
	assert_int_equal(yj_store_read(f->st, s_get_pn_fn, &p), 0);
	/* an over-long key fails the transaction: nothing is committed */
	assert_int_equal(yj_store_write(f->st, s_put_new_long_fn, NULL), YJ_EINVAL);
}

/* yj_txn_put_high: appended when above the last key, an ordinary put
 * (nothing lost, the transaction going on) when not. */
static int s_put_high_fn(struct yj_txn *txn, void *arg)
{
	(void)arg;
	uint8_t k[8];
	int rc;
	for (uint64_t n = 10; n <= 30; n += 10) {
		yj_be64_put(k, n);
		if ((rc = yj_txn_put_high(txn, YJ_DB_QUARANTINE, k, 8, "hi", 2)))
			return rc;
	}
	/* below the last, between two present, then replacing one present */
	yj_be64_put(k, 5);
	if ((rc = yj_txn_put_high(txn, YJ_DB_QUARANTINE, k, 8, "lo", 2)))
		return rc;
	yj_be64_put(k, 15);
	if ((rc = yj_txn_put_high(txn, YJ_DB_QUARANTINE, k, 8, "mid", 3)))
		return rc;
	yj_be64_put(k, 30);
	return yj_txn_put_high(txn, YJ_DB_QUARANTINE, k, 8, "again", 5);
}

struct put_high_seen {
	int n;
	uint64_t keys[8];
	char vals[8][8];
};

static int s_put_high_iter(void *arg, const void *key, size_t klen, const void *val, size_t vlen)
{
	struct put_high_seen *p = arg;
	if (p->n == 8 || klen != 8 || vlen >= 8)
		return YJ_EPROTO;
	p->keys[p->n] = yj_be64_get(key);
	memcpy(p->vals[p->n], val, vlen);
	p->vals[p->n][vlen] = '\0';
	p->n++;
	return 0;
}

static int s_put_high_read_fn(struct yj_txn *txn, void *arg)
{
	return yj_txn_iter(txn, YJ_DB_QUARANTINE, NULL, 0, 0, s_put_high_iter, arg);
}

static void test_put_high(void **state)
{
	struct fx *f = *state;
	struct put_high_seen p = { 0 };
	assert_int_equal(s_open(f, 1 << 20, 8 << 20), 0);
	assert_int_equal(yj_store_write(f->st, s_put_high_fn, NULL), 0);
	assert_int_equal(yj_store_read(f->st, s_put_high_read_fn, &p), 0);
	assert_int_equal(p.n, 5);
	const uint64_t keys[] = { 5, 10, 15, 20, 30 };
	const char *vals[] = { "lo", "hi", "mid", "hi", "again" };
	for (int i = 0; i < 5; i++) {
		assert_int_equal(p.keys[i], keys[i]);
		assert_string_equal(p.vals[i], vals[i]);
	}
}

/* yj_txn_put_dup_high and yj_txn_put_dup_count: a value above the key's
 * others is appended to them; one below, or one already there, is put as
 * usual (no error, the transaction goes on), so the values always end in
 * order, each once, and the count says how many. */
struct dup_high {
	size_t counts[6];
	uint8_t vals[16];
	size_t n;
};

static int s_dup_high_fn(struct yj_txn *txn, void *arg)
{
	struct dup_high *d = arg;
	uint8_t k[8], v[8];
	static const uint64_t order[] = { 10, 20, 15, 30, 30, 5 };
	int rc;
	yj_be64_put(k, 7);
	for (int i = 0; i < 6; i++) {
		yj_be64_put(v, order[i]);
		if (i % 2)
			rc = yj_txn_put_dup_count(txn, YJ_DB_TIME, k, 8, v, 8, &d->counts[i]);
		else
			rc = yj_txn_put_dup_high(txn, YJ_DB_TIME, k, 8, v, 8);
		if (rc)
			return rc;
	}
	/* One value, then one below it: the key's single value becomes two. */
	yj_be64_put(k, 9);
	yj_be64_put(v, 50);
	if ((rc = yj_txn_put_dup_high(txn, YJ_DB_TIME, k, 8, v, 8)))
		return rc;
	yj_be64_put(v, 40);
	if ((rc = yj_txn_put_dup_high(txn, YJ_DB_TIME, k, 8, v, 8)))
		return rc;
	/* A key of its own, and a database without sorted values: as a put. */
	yj_be64_put(k, 8);
	if ((rc = yj_txn_put_dup_high(txn, YJ_DB_TIME, k, 8, v, 8)) ||
	    (rc = yj_txn_put_dup_high(txn, YJ_DB_META, "dup-high", 8, "x", 1)))
		return rc;
	return yj_txn_rc(txn);
}

static int s_dup_high_cb(void *arg, const void *key, size_t klen, const void *val, size_t vlen)
{
	struct dup_high *d = arg;
	(void)key;
	(void)klen;
	if (vlen != 8 || d->n >= 16)
		return YJ_EPROTO;
	d->vals[d->n++] = (uint8_t)yj_be64_get(val);
	return 0;
}

static int s_dup_high_read_fn(struct yj_txn *txn, void *arg)
{
	uint8_t k[8];
	int rc;
	yj_be64_put(k, 7);
	if ((rc = yj_txn_iter_dups(txn, YJ_DB_TIME, k, 8, s_dup_high_cb, arg)))
		return rc;
	yj_be64_put(k, 9);
	return yj_txn_iter_dups(txn, YJ_DB_TIME, k, 8, s_dup_high_cb, arg);
}

static void test_put_dup_high(void **state)
{
	struct fx *f = *state;
	struct dup_high d = { { 0 }, { 0 }, 0 };
	assert_int_equal(s_open(f, 1 << 20, 8 << 20), 0);
	assert_int_equal(yj_store_write(f->st, s_dup_high_fn, &d), 0);
	/* counted after each: 20 the 2nd, 30 the 4th, 30 again still 4 */
	assert_int_equal(d.counts[1], 2);
	assert_int_equal(d.counts[3], 4);
	assert_int_equal(d.counts[5], 5);
	d.n = 0;
	assert_int_equal(yj_store_read(f->st, s_dup_high_read_fn, &d), 0);
	const uint8_t want[] = { 5, 10, 15, 20, 30, 40, 50 };
	assert_int_equal(d.n, 7);
	assert_memory_equal(d.vals, want, 7);
}

/* yj_txn_next_id: events and quarantine only, cached per transaction,
 * following appends, never handing out an id again. */
struct next_id {
	int other_rc;
	uint64_t q1, q2, q3, e1, e2;
};

static int s_next_id_fn(struct yj_txn *txn, void *arg)
{
	struct next_id *n = arg;
	uint8_t k[8];
	uint64_t x = 0;
	int rc;
	if ((rc = yj_txn_next_id(txn, YJ_DB_QUARANTINE, &n->q1)))
		return rc;
	/* asked again without a write: the same id */
	if ((rc = yj_txn_next_id(txn, YJ_DB_QUARANTINE, &x)) || x != n->q1)
		return YJ_EPROTO;
	yj_be64_put(k, n->q1);
	if ((rc = yj_txn_append(txn, YJ_DB_QUARANTINE, k, 8, "a", 1)))
		return rc;
	if ((rc = yj_txn_next_id(txn, YJ_DB_QUARANTINE, &n->q2)))
		return rc;
	yj_be64_put(k, n->q2);
	if ((rc = yj_txn_append(txn, YJ_DB_QUARANTINE, k, 8, "b", 1)))
		return rc;
	/* the highest erased: its id is not handed out again */
	if ((rc = yj_txn_del(txn, YJ_DB_QUARANTINE, k, 8)))
		return rc;
	if ((rc = yj_txn_next_id(txn, YJ_DB_QUARANTINE, &n->q3)))
		return rc;
	if ((rc = yj_txn_next_id(txn, YJ_DB_EVENTS, &n->e1)))
		return rc;
	yj_be64_put(k, n->e1);
	if ((rc = yj_txn_append(txn, YJ_DB_EVENTS, k, 8, "e", 1)))
		return rc;
	return yj_txn_next_id(txn, YJ_DB_EVENTS, &n->e2);
}

static int s_next_id_other_fn(struct yj_txn *txn, void *arg)
{
	struct next_id *n = arg;
	uint64_t x = 0;
	n->other_rc = yj_txn_next_id(txn, YJ_DB_AUDIT, &x);
	return 0;
}

static void test_next_id(void **state)
{
	struct fx *f = *state;
	struct next_id n = { 0 };
	assert_int_equal(s_open(f, 1 << 20, 8 << 20), 0);
	assert_int_equal(yj_store_write(f->st, s_next_id_fn, &n), 0);
	assert_int_equal(n.q1, 1);
	assert_int_equal(n.q2, 2);
	assert_int_equal(n.q3, 3);
	assert_int_equal(n.e1, 1);
	assert_int_equal(n.e2, 2);
	assert_int_equal(yj_store_read(f->st, s_next_id_other_fn, &n), YJ_EINVAL);
	assert_int_equal(n.other_rc, YJ_EINVAL);
	/* the high-water mark is committed: a new transaction, and a restart, agree */
	memset(&n, 0, sizeof(n));
	yj_store_close(&f->st);
	assert_int_equal(s_open(f, 1 << 20, 8 << 20), 0);
	assert_int_equal(yj_store_write(f->st, s_next_id_fn, &n), 0);
	assert_int_equal(n.q1, 3);
	assert_int_equal(n.q3, 5);
	assert_int_equal(n.e1, 2);
}

static int s_max_key_fn(struct yj_txn *txn, void *arg)
{
	*(size_t *)arg = yj_txn_max_key(txn);
	return 0;
}

static void test_max_key(void **state)
{
	struct fx *f = *state;
	size_t in_txn = 0;
	assert_int_equal(yj_store_max_key(NULL), 0);
	assert_int_equal(yj_txn_max_key(NULL), 0);
	assert_int_equal(s_open(f, 1 << 20, 8 << 20), 0);
	assert_int_equal(yj_store_max_key(f->st), 511);
	assert_int_equal(yj_store_read(f->st, s_max_key_fn, &in_txn), 0);
	assert_int_equal(in_txn, 511);
}

/* One daemon per store: while one process holds the store exclusively,
 * another gets YJ_EBUSY; once it is closed, the other gets it. */
static void test_exclusive(void **state)
{
	struct fx *f = *state;
	struct yj_store_opts o = { .path = f->dir, .map_size = 1 << 20, .max_map_size = 8 << 20, .exclusive = 1 };
	int res[2];
	char got[2] = { 0, 0 };
	assert_int_equal(yj_store_open(&o, &f->st), 0);
	assert_int_equal(pipe(res), 0);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct yj_store *st = NULL;
		char rc = yj_store_open(&o, &st) == YJ_EBUSY ? 'b' : 'n';
		yj_store_close(&st);
		(void)!write(res[1], &rc, 1);
		_exit(0);
	}
	assert_int_equal(waitpid(pid, NULL, 0), pid);
	assert_int_equal(read(res[0], &got[0], 1), 1);
	yj_store_close(&f->st);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct yj_store *st = NULL;
		char rc = yj_store_open(&o, &st) == 0 ? 'y' : 'n';
		yj_store_close(&st);
		(void)!write(res[1], &rc, 1);
		_exit(0);
	}
	assert_int_equal(waitpid(pid, NULL, 0), pid);
	assert_int_equal(read(res[0], &got[1], 1), 1);
	close(res[0]);
	close(res[1]);
	assert_int_equal(got[0], 'b');
	assert_int_equal(got[1], 'y');
}

/* --- the committer thread --- */

struct held {
	struct batch b;
	int gate;           /* read end of a pipe the first run waits on; -1 none */
	int fail;           /* every run fails with YJ_EPROTO */
	unsigned wakes;     /* wake calls (under the committer's lock; read after the collect) */
};

static int s_held_fn(struct yj_txn *txn, void *arg)
{
	struct held *h = arg;
	char c;
	if (h->gate >= 0 && !h->b.runs) {
		ssize_t r = read(h->gate, &c, 1);
		(void)r;
	}
	int rc = s_batch_fn(txn, &h->b);
	return rc ? rc : h->fail ? YJ_EPROTO : 0;
}

static void s_wake(void *arg)
{
	((struct held *)arg)->wakes++;
}

static void test_committer(void **state)
{
	struct fx *f = *state;
	struct yj_store_stats ss;
	int gate[2];

	assert_int_equal(s_open(f, 64 << 10, (size_t)1 << 30), 0);
	assert_int_equal(yj_store_write_collect(f->st, 1), YJ_EINVAL);

	/* Held on the thread: the owner sees it under way, reads the store as it
	 * was, and may not start another. */
	assert_int_equal(pipe(gate), 0);
	struct held h = { .b = { .n = 20, .base = 0, .len = EV_LEN, .custody = 1 }, .gate = gate[0] };
	assert_int_equal(yj_store_write_start(f->st, s_held_fn, &h, s_wake, &h), 0);
	assert_int_equal(yj_store_write_collect(f->st, 0), YJ_EAGAIN);
	assert_int_equal(s_next_seq(f->st), 1);
	struct held other = { .b = { .n = 1, .base = 5000, .len = EV_LEN }, .gate = -1 };
	assert_int_equal(yj_store_write_start(f->st, s_held_fn, &other, s_wake, &other), YJ_EBUSY);
	assert_int_equal(write(gate[1], "x", 1), 1);
	assert_int_equal(yj_store_write_collect(f->st, 1), 0);
	assert_int_equal(h.wakes, 1);
	assert_int_equal(h.b.runs, 1);
	assert_int_equal(h.b.first, 1);
	assert_int_equal(s_bad_events(f->st, 1, 20), 0);
	close(gate[0]);
	close(gate[1]);

	/* Too big for the map: the thread hands it back, the collect grows the
	 * map and writes it on this thread. */
	struct held big = { .b = { .n = 1000, .base = 100, .len = EV_LEN, .custody = 1 }, .gate = -1 };
	assert_int_equal(yj_store_write_start(f->st, s_held_fn, &big, s_wake, &big), 0);
	assert_int_equal(yj_store_write_collect(f->st, 1), 0);
	assert_true(big.b.runs >= 2);
	assert_int_equal(big.b.first, 21);
	assert_int_equal(yj_store_stats(f->st, &ss), 0);
	assert_true(ss.map_grows > 0);
	assert_int_equal(ss.events, 1020);

	/* A failing write: handed back, run again here, its error returned,
	 * nothing written. */
	struct held bad = { .b = { .n = 10, .base = 2000, .len = EV_LEN }, .gate = -1, .fail = 1 };
	assert_int_equal(yj_store_write_start(f->st, s_held_fn, &bad, s_wake, &bad), 0);
	assert_int_equal(yj_store_write_collect(f->st, 1), YJ_EPROTO);
	assert_int_equal(bad.b.runs, 2);
	assert_int_equal(s_next_seq(f->st), 1021);

	/* An owner's write waits for the thread's: both land, in that order. */
	assert_int_equal(pipe(gate), 0);
	struct held first = { .b = { .n = 50, .base = 3000, .len = EV_LEN }, .gate = gate[0] };
	assert_int_equal(yj_store_write_start(f->st, s_held_fn, &first, s_wake, &first), 0);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		/* Lets the thread go once the owner is (very likely) waiting. */
		usleep(100000);
		_exit(write(gate[1], "x", 1) == 1 ? 0 : 1);
	}
	uint64_t after = 0;
	assert_int_equal(s_write_batch(f->st, 4000, 5, &after), 0);
	assert_int_equal(first.b.first, 1021);
	assert_int_equal(after, 1071);
	assert_int_equal(yj_store_write_collect(f->st, 1), 0);
	int status = 0;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_int_equal(WEXITSTATUS(status), 0);
	close(gate[0]);
	close(gate[1]);

	/* Closed with a write not collected: the write is finished first. */
	struct held last = { .b = { .n = 20, .base = 5000, .len = EV_LEN }, .gate = -1 };
	assert_int_equal(yj_store_write_start(f->st, s_held_fn, &last, s_wake, &last), 0);
	yj_store_close(&f->st);
	assert_int_equal(s_open(f, 64 << 10, (size_t)1 << 30), 0);
	assert_int_equal(yj_store_stats(f->st, &ss), 0);
	assert_int_equal(ss.events, 1095);
	assert_int_equal(s_bad_events(f->st, 1, 1095), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_open_creates_private_dir, setup, teardown),
		cmocka_unit_test_setup_teardown(test_append_get_iterate, setup, teardown),
		cmocka_unit_test_setup_teardown(test_indexes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_source_seen_in_txn, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sticky_error, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fn_error_aborts, setup, teardown),
		cmocka_unit_test_setup_teardown(test_map_growth, setup, teardown),
		cmocka_unit_test_setup_teardown(test_map_cap, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reopen, setup, teardown),
		cmocka_unit_test_setup_teardown(test_future_schema_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_keys_too_long, setup, teardown),
		cmocka_unit_test_setup_teardown(test_quarantine, setup, teardown),
		cmocka_unit_test_setup_teardown(test_delete_never_reuses_seq, setup, teardown),
		cmocka_unit_test_setup_teardown(test_disk_full_recovers, setup, teardown),
		cmocka_unit_test_setup_teardown(test_map_resized_elsewhere, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stale_readers_cleared, setup, teardown),
		cmocka_unit_test_setup_teardown(test_readers_full, setup, teardown),
		cmocka_unit_test_setup_teardown(test_open_reader_after_dead_helpers, setup, teardown),
		cmocka_unit_test_setup_teardown(test_misuse, setup, teardown),
		cmocka_unit_test_setup_teardown(test_put_new, setup, teardown),
		cmocka_unit_test_setup_teardown(test_put_high, setup, teardown),
		cmocka_unit_test_setup_teardown(test_put_dup_high, setup, teardown),
		cmocka_unit_test_setup_teardown(test_next_id, setup, teardown),
		cmocka_unit_test_setup_teardown(test_max_key, setup, teardown),
		cmocka_unit_test_setup_teardown(test_exclusive, setup, teardown),
		cmocka_unit_test_setup_teardown(test_committer, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
