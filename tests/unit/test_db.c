/* test_db.c: the one module per stored table (daemon/db/): events,
 * quarantine, holds, notes, digests and audit, on a real store.
 *
 * Checks run inside the store's transaction functions record the first
 * failure (CHECK) and abort the transaction with it; the test then fails
 * outside, so no cmocka jump ever leaves an LMDB transaction open. Where a
 * key layout is pinned, the test reads it through the generic API: stores
 * written before these modules must read back unchanged.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "db/audit.h"
#include "db/digests.h"
#include "db/events.h"
#include "db/holds.h"
#include "db/notes.h"
#include "db/quarantine.h"
#include "err.h"
#include "normalise.h"
#include "retention.h"
#include "store.h"

/* --- fixture --- */

struct fx {
	char dir[64];
	struct yj_store *st;
};

static int s_fail_line;
static const char *s_fail_what;

#define CHECK(c)                                      \
	do {                                          \
		if (!(c)) {                           \
			if (!s_fail_line) {           \
				s_fail_line = __LINE__; \
				s_fail_what = #c;     \
			}                             \
			return YJ_EPROTO;             \
		}                                     \
	} while (0)

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

static int s_open(struct fx *f)
{
	struct yj_store_opts o = { .path = f->dir, .map_size = 1 << 20, .max_map_size = 64 << 20 };
	return yj_store_open(&o, &f->st);
}

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	if (!f)
		return -1;
	snprintf(f->dir, sizeof(f->dir), "/tmp/yj-test-db-XXXXXX");
	if (!mkdtemp(f->dir) || s_open(f))
		return -1;
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

static void s_reopen(struct fx *f)
{
	yj_store_close(&f->st);
	assert_int_equal(s_open(f), 0);
}

static void s_report(int rc, int want)
{
	if (s_fail_line)
		fail_msg("CHECK failed at line %d: %s", s_fail_line, s_fail_what);
	assert_int_equal(rc, want);
}

static void s_write(struct fx *f, yj_store_txn_fn fn, void *arg)
{
	s_fail_line = 0;
	s_report(yj_store_write(f->st, fn, arg), 0);
}

static void s_read(struct fx *f, yj_store_txn_fn fn, void *arg)
{
	s_fail_line = 0;
	s_report(yj_store_read(f->st, fn, arg), 0);
}

/* --- collecting callbacks --- */

struct seqs {
	uint64_t v[32];
	unsigned n;
	unsigned stop_at;   /* return 1 after this many (0: never) */
	int fail_at;        /* return YJ_EIO at this many (0: never) */
};

static int s_seq_cb(void *arg, uint64_t seq)
{
	struct seqs *s = arg;
	if (s->n >= 32)
		return YJ_ERANGE;
	s->v[s->n++] = seq;
	if (s->fail_at && (int)s->n >= s->fail_at)
		return YJ_EIO;
	return s->stop_at && s->n >= s->stop_at ? 1 : 0;
}

static int s_seqs_are(const struct seqs *s, unsigned n, const uint64_t *want)
{
	if (s->n != n)
		return 0;
	for (unsigned i = 0; i < n; i++)
		if (s->v[i] != want[i])
			return 0;
	return 1;
}

#define SEQS_ARE(s, ...) \
	s_seqs_are(&(s), sizeof((uint64_t[]){ __VA_ARGS__ }) / 8, (uint64_t[]){ __VA_ARGS__ })

struct strs {
	char v[16][64];
	uint64_t u[16];
	unsigned n;
	unsigned stop_at;
};

static int s_str_add(struct strs *s, const char *str, uint64_t u)
{
	if (s->n >= 16)
		return YJ_ERANGE;
	snprintf(s->v[s->n], sizeof(s->v[s->n]), "%s", str ? str : "(null)");
	s->u[s->n++] = u;
	return s->stop_at && s->n >= s->stop_at ? 1 : 0;
}

/* The strings joined by ',': easy to compare whole. */
static const char *s_joined(const struct strs *s, char *buf, size_t size)
{
	size_t at = 0;
	buf[0] = '\0';
	for (unsigned i = 0; i < s->n && at < size; i++)
		at += (size_t)snprintf(buf + at, size - at, "%s%s", i ? "," : "", s->v[i]);
	return buf;
}

#define JOINED_IS(s, want) (strcmp(s_joined(&(s), jbuf, sizeof(jbuf)), (want)) == 0)

/* ================================================================ events */

struct ev {
	const char *src, *child, *cust;
	int64_t occurred_us, stored_us;
};

static const struct ev s_evs[] = {
	{ "F1/s1", "F1/p1", "F1/r1", 5000, 1000 },    /* seq 1 */
	{ "F1/s2", "F1/p2", NULL, -7000, 2000 },      /* seq 2 */
	{ "F1/s3", "F1/p1", "F1/r1", 5000, 3000 },    /* seq 3: same time as 1 */
	{ "F1/s4", "F1/p1", "F1/r2", 9000, 4000 },    /* seq 4 */
	{ NULL, NULL, NULL, 0, 0 },
};

static int s_put_events_fn(struct yj_txn *txn, void *arg)
{
	(void)arg;
	for (const struct ev *e = s_evs; e->src; e++) {
		uint64_t seq = 0;
		uint8_t hash[16], buf[256];
		CHECK(yj_events_next_seq(txn, &seq) == 0);
		CHECK(seq == (uint64_t)(e - s_evs) + 1);
		Yjlink__V1__Record r = YJLINK__V1__RECORD__INIT;
		r.has_seq = r.has_stored_at_us = 1;
		r.seq = seq;
		r.stored_at_us = e->stored_us;
		r.feed = "custody";
		size_t len = protobuf_c_message_pack(&r.base, buf);
		memset(hash, (int)seq, sizeof(hash));
		struct yj_event_keys k = { e->src, hash, e->child, e->occurred_us, e->cust };
		/* first contact, as the child index says it while it is written:
		 * what a lookup just before would say (children p1, p2, p1, p1);
		 * and a record alone, as the custody index counts it (records r1,
		 * none, r1, r2) */
		int known = yj_events_child_known(txn, e->child);
		struct yj_event_firsts first = { -1, -1 };
		CHECK(known >= 0);
		CHECK(yj_events_put_first(txn, seq, &k, buf, len, &first) == 0);
		CHECK(first.first_contact == !known && first.first_contact == (seq == 1 || seq == 2));
		CHECK(first.record_alone == (seq == 1 || seq == 4));
	}
	return 0;
}

struct events_read {
	int empty;   /* expect an empty store */
};

static int s_events_read_fn(struct yj_txn *txn, void *arg)
{
	(void)arg;
	const void *data;
	size_t len;
	struct yj_source_ref ref;
	uint64_t u = 0;

	/* raw and unpacked */
	CHECK(yj_events_get(txn, 2, &data, &len) == 0);
	Yjlink__V1__Record *r = yjlink__v1__record__unpack(NULL, len, data);
	CHECK(r != NULL);
	int ok = r->seq == 2 && r->stored_at_us == 2000 && r->feed && !strcmp(r->feed, "custody");
	yjlink__v1__record__free_unpacked(r, NULL);
	CHECK(ok);
	CHECK(yj_events_get(txn, 9, &data, &len) == YJ_ENOENT);
	CHECK(yj_txn_rc(txn) == 0);
	r = yj_events_get_record(txn, 3);
	CHECK(r != NULL);
	ok = r->seq == 3 && r->stored_at_us == 3000;
	yjlink__v1__record__free_unpacked(r, NULL);
	CHECK(ok);
	CHECK(yj_events_get_record(txn, 9) == NULL);

	/* the source index */
	CHECK(yj_events_find_source(txn, "F1/s3", &ref) == 0);
	CHECK(ref.seq == 3 && ref.hash[0] == 3 && ref.hash[15] == 3);
	CHECK(yj_events_find_source(txn, "F1/s3", NULL) == 0);
	CHECK(yj_events_find_source(txn, "F1/zz", &ref) == YJ_ENOENT);
	CHECK(yj_txn_rc(txn) == 0);

	/* children */
	CHECK(yj_events_child_known(txn, "F1/p1") == 1);
	CHECK(yj_events_child_known(txn, "F1/p2") == 1);
	CHECK(yj_events_child_known(txn, "F1/p9") == 0);
	CHECK(yj_events_child_known(txn, "F2/p1") == 0);

	struct seqs s = { .n = 0 };
	CHECK(yj_events_of_child(txn, "F1/p1", s_seq_cb, &s) == 0);
	CHECK(SEQS_ARE(s, 1, 3, 4));
	memset(&s, 0, sizeof(s));
	CHECK(yj_events_of_child(txn, "F1/p9", s_seq_cb, &s) == 0);
	CHECK(s.n == 0);
	memset(&s, 0, sizeof(s));
	s.stop_at = 2;
	CHECK(yj_events_of_child(txn, "F1/p1", s_seq_cb, &s) == 0);
	CHECK(SEQS_ARE(s, 1, 3));

	/* custody records */
	memset(&s, 0, sizeof(s));
	CHECK(yj_events_of_custody(txn, "F1/r1", s_seq_cb, &s) == 0);
	CHECK(SEQS_ARE(s, 1, 3));
	memset(&s, 0, sizeof(s));
	CHECK(yj_events_of_custody(txn, "F1/r2", s_seq_cb, &s) == 0);
	CHECK(SEQS_ARE(s, 4));
	memset(&s, 0, sizeof(s));
	CHECK(yj_events_of_custody(txn, "F1/r9", s_seq_cb, &s) == 0);
	CHECK(s.n == 0);

	/* by time: negative first, equal times by seq, from a bound on */
	memset(&s, 0, sizeof(s));
	CHECK(yj_events_since(txn, INT64_MIN, s_seq_cb, &s) == 0);
	CHECK(SEQS_ARE(s, 2, 1, 3, 4));
	memset(&s, 0, sizeof(s));
	CHECK(yj_events_since(txn, 5000, s_seq_cb, &s) == 0);
	CHECK(SEQS_ARE(s, 1, 3, 4));
	memset(&s, 0, sizeof(s));
	CHECK(yj_events_since(txn, 5001, s_seq_cb, &s) == 0);
	CHECK(SEQS_ARE(s, 4));
	memset(&s, 0, sizeof(s));
	CHECK(yj_events_since(txn, 10000, s_seq_cb, &s) == 0);
	CHECK(s.n == 0);

	/* by seq, both ways */
	memset(&s, 0, sizeof(s));
	CHECK(yj_events_each(txn, 0, s_seq_cb, &s) == 0);
	CHECK(SEQS_ARE(s, 1, 2, 3, 4));
	memset(&s, 0, sizeof(s));
	CHECK(yj_events_each(txn, 1, s_seq_cb, &s) == 0);
	CHECK(SEQS_ARE(s, 4, 3, 2, 1));
	memset(&s, 0, sizeof(s));
	s.stop_at = 2;
	CHECK(yj_events_each(txn, 1, s_seq_cb, &s) == 0);
	CHECK(SEQS_ARE(s, 4, 3));

	CHECK(yj_events_first_seq(txn, &u) == 0 && u == 1);
	CHECK(yj_events_last_seq(txn, &u) == 0 && u == 4);
	CHECK(yj_events_count(txn, &u) == 0 && u == 4);

	/* stored_at grows with seq: the last stored at or before t */
	CHECK(yj_events_seq_at(txn, 999) == 0);
	CHECK(yj_events_seq_at(txn, 1000) == 1);
	CHECK(yj_events_seq_at(txn, 2500) == 2);
	CHECK(yj_events_seq_at(txn, 3999) == 3);
	CHECK(yj_events_seq_at(txn, 4000) == 4);
	CHECK(yj_events_seq_at(txn, INT64_MAX) == 4);
	CHECK(yj_txn_rc(txn) == 0);
	return 0;
}

/* A failing callback fails the walk, and so the transaction. */
static int s_events_cb_fail_fn(struct yj_txn *txn, void *arg)
{
	struct seqs *s = arg;
	s->fail_at = 2;
	return yj_events_each(txn, 0, s_seq_cb, s);
}

static int s_events_empty_fn(struct yj_txn *txn, void *arg)
{
	(void)arg;
	uint64_t u = 99;
	struct seqs s = { .n = 0 };
	CHECK(yj_events_first_seq(txn, &u) == 0 && u == 0);
	u = 99;
	CHECK(yj_events_last_seq(txn, &u) == 0 && u == 0);
	u = 99;
	CHECK(yj_events_count(txn, &u) == 0 && u == 0);
	CHECK(yj_events_seq_at(txn, INT64_MAX) == 0);
	CHECK(yj_events_each(txn, 0, s_seq_cb, &s) == 0 && s.n == 0);
	CHECK(yj_events_since(txn, INT64_MIN, s_seq_cb, &s) == 0 && s.n == 0);
	CHECK(yj_events_child_known(txn, "F1/p1") == 0);
	CHECK(yj_events_next_seq(txn, &u) == 0 && u == 1);
	return 0;
}

/* Erasing the oldest and the newest (retention does so through the
 * generic API): the gap counts as stored long ago, and no seq comes back. */
static int s_events_erase_fn(struct yj_txn *txn, void *arg)
{
	(void)arg;
	uint8_t k[8];
	yj_be64_put(k, 1);
	CHECK(yj_txn_del(txn, YJ_DB_EVENTS, k, 8) == 0);
	yj_be64_put(k, 4);
	CHECK(yj_txn_del(txn, YJ_DB_EVENTS, k, 8) == 0);
	return 0;
}

static int s_events_after_erase_fn(struct yj_txn *txn, void *arg)
{
	(void)arg;
	uint64_t u = 0;
	CHECK(yj_events_first_seq(txn, &u) == 0 && u == 2);
	CHECK(yj_events_last_seq(txn, &u) == 0 && u == 3);
	CHECK(yj_events_count(txn, &u) == 0 && u == 2);
	CHECK(yj_events_next_seq(txn, &u) == 0 && u == 5);
	CHECK(yj_events_seq_at(txn, 999) == 1);
	CHECK(yj_events_seq_at(txn, 2000) == 2);
	CHECK(yj_events_get_record(txn, 1) == NULL);
	return 0;
}

/* Arguments refused before anything is written leave the transaction be;
 * a source stored already is YJ_EEXIST, the transaction going on. */
static int s_events_refused_fn(struct yj_txn *txn, void *arg)
{
	(void)arg;
	uint8_t hash[16] = { 0 };
	uint64_t seq = 0, n = 0;
	struct yj_event_keys no_child = { "F1/new", hash, NULL, 0, NULL };
	struct yj_event_keys dup = { "F1/s2", hash, "F1/p7", 0, NULL };
	CHECK(yj_events_next_seq(txn, &seq) == 0 && seq == 5);
	CHECK(yj_events_put(txn, seq, NULL, "x", 1) == YJ_EINVAL);
	CHECK(yj_events_put(txn, seq, &no_child, "x", 1) == YJ_EINVAL);
	CHECK(yj_events_put(txn, 0, &dup, "x", 1) == YJ_EINVAL);
	CHECK(yj_events_find_source(txn, NULL, NULL) == YJ_EINVAL);
	CHECK(yj_events_each(txn, 0, NULL, NULL) == YJ_EINVAL);
	CHECK(yj_txn_rc(txn) == 0);
	CHECK(yj_events_put(txn, seq, &dup, "x", 1) == YJ_EEXIST);
	CHECK(yj_txn_rc(txn) == 0);
	CHECK(yj_events_count(txn, &n) == 0 && n == 2);
	CHECK(yj_events_child_known(txn, "F1/p7") == 0);
	return 0;
}

static void test_events(void **state)
{
	struct fx *f = *state;
	struct seqs s = { .n = 0 };
	s_read(f, s_events_empty_fn, NULL);
	s_write(f, s_put_events_fn, NULL);
	s_read(f, s_events_read_fn, NULL);
	s_reopen(f);
	s_read(f, s_events_read_fn, NULL);
	assert_int_equal(yj_store_read(f->st, s_events_cb_fail_fn, &s), YJ_EIO);
	assert_int_equal(s.n, 2);
	s_write(f, s_events_erase_fn, NULL);
	s_read(f, s_events_after_erase_fn, NULL);
	s_write(f, s_events_refused_fn, NULL);
}

/* ============================================================ retention */

/* Events with real bodies, keyed as ingest keys them, stored at 1000 * i;
 * events 1-3 are of child p1 (custody record r1), 4-5 of child p2. */
static int s_ret_put_fn(struct yj_txn *txn, void *arg)
{
	(void)arg;
	for (int i = 1; i <= 5; i++) {
		uint64_t seq = 0;
		uint8_t hash[16], buf[512];
		char src[32], child[32], cust[32], sid[16], pid[16];
		CHECK(yj_events_next_seq(txn, &seq) == 0);
		Yjlink__V1__Child c = YJLINK__V1__CHILD__INIT;
		Yjlink__V1__Custody cu = YJLINK__V1__CUSTODY__INIT;
		Yjlink__V1__Time at = YJLINK__V1__TIME__INIT;
		Yjlink__V1__Event ev = YJLINK__V1__EVENT__INIT;
		Yjlink__V1__Record r = YJLINK__V1__RECORD__INIT;
		snprintf(sid, sizeof(sid), "s%d", i);
		snprintf(pid, sizeof(pid), "p%d", i <= 3 ? 1 : 2);
		c.person_id = pid;
		cu.record_id = "r1";
		at.has_unix_us = 1;
		at.unix_us = 7000 + i;
		ev.force = "F1";
		ev.source_id = sid;
		ev.child = &c;
		ev.occurred_at = &at;
		ev.body_case = YJLINK__V1__EVENT__BODY_CUSTODY;
		ev.custody = &cu;
		r.has_seq = r.has_stored_at_us = 1;
		r.seq = seq;
		r.stored_at_us = 1000 * i;
		r.feed = "custody";
		r.event = &ev;
		CHECK(protobuf_c_message_get_packed_size(&r.base) <= sizeof(buf));
		size_t len = protobuf_c_message_pack(&r.base, buf);
		memset(hash, i, sizeof(hash));
		snprintf(src, sizeof(src), "F1/%s", sid);
		CHECK(yj_event_child_id(&ev, child, sizeof(child)) > 0);
		snprintf(cust, sizeof(cust), "F1/r1");
		struct yj_event_keys k = { src, hash, child, at.unix_us, cust };
		CHECK(yj_events_put(txn, seq, &k, buf, len) == 0);
		CHECK(yj_holds_put(txn, seq, 1) == 0);
		CHECK(yj_disclosed_add(txn, seq, "yjs:a") == 0);
		CHECK(yj_digests_add(txn, "yjs:a", seq, "rule") == 0);
	}
	return 0;
}

static int s_count_cb(void *arg, uint64_t seq)
{
	(void)seq;
	(*(int *)arg)++;
	return 0;
}

static int s_count_entries(void *arg, uint64_t seq, const char *rule)
{
	(void)seq;
	(void)rule;
	(*(int *)arg)++;
	return 0;
}

static int s_ret_erase_fn(struct yj_txn *txn, void *arg)
{
	struct yj_config *cfg = arg;
	struct yj_retention_batch b;
	/* Cut-off 3500: events 1-3 are due; two per batch. */
	int64_t now = 3500 + cfg->retention_event_days * INT64_C(86400000000);
	CHECK(yj_retention_batch(txn, cfg, now, 2, "uid:7", &b) == 0);
	CHECK(b.events == 2 && b.first_seq == 1 && b.last_seq == 2 && b.more);
	CHECK(yj_retention_batch(txn, cfg, now, 2, "uid:7", &b) == 0);
	CHECK(b.events == 1 && b.first_seq == 3 && b.last_seq == 3 && !b.more);
	CHECK(yj_retention_batch(txn, cfg, now, 2, "uid:7", &b) == 0);
	CHECK(b.events == 0 && !b.more);
	return 0;
}

static int s_ret_after_fn(struct yj_txn *txn, void *arg)
{
	(void)arg;
	struct yj_source_ref ref;
	uint64_t u = 0;
	int n = 0;
	CHECK(yj_events_find_source(txn, "F1/s1", &ref) == YJ_ENOENT);
	CHECK(yj_events_find_source(txn, "F1/s3", &ref) == YJ_ENOENT);
	CHECK(yj_events_find_source(txn, "F1/s4", &ref) == 0 && ref.seq == 4);
	CHECK(yj_events_child_known(txn, "F1/p1") == 0);
	CHECK(yj_events_child_known(txn, "F1/p2") == 1);
	CHECK(yj_events_of_custody(txn, "F1/r1", s_count_cb, &n) == 0 && n == 2);
	n = 0;
	CHECK(yj_events_since(txn, INT64_MIN, s_count_cb, &n) == 0 && n == 2);
	CHECK(yj_events_count(txn, &u) == 0 && u == 2);
	CHECK(yj_events_next_seq(txn, &u) == 0 && u == 6);
	CHECK(yj_holds_get(txn, 2) == NULL);
	CHECK(yj_holds_is_held(txn, 4) == 1);
	n = 0;
	CHECK(yj_digests_entries(txn, "yjs:a", 0, UINT64_MAX, s_count_entries, &n) == 0 && n == 2);
	uint64_t checked = 0, bad = 0;
	CHECK(yj_audit_verify(txn, &checked, &bad) == 0 && checked == 2);
	return 0;
}

static void test_retention_erases_with_indexes(void **state)
{
	struct fx *f = *state;
	struct yj_recipient yjs = { .id = "yjs:a", .kind = YJ_RCPT_YJS };
	struct yj_config cfg = { .retention_event_days = 1, .recipients = &yjs, .n_recipients = 1 };
	s_write(f, s_ret_put_fn, NULL);
	s_write(f, s_ret_erase_fn, &cfg);
	s_read(f, s_ret_after_fn, NULL);
}

/* ============================================================ quarantine */

struct quar {
	uint64_t ids[3];
	uint64_t set[3];
};

static int s_quar_put_fn(struct yj_txn *txn, void *arg)
{
	struct quar *q = arg;
	static const char *reasons[] = { "bad json", "too large", "no feed" };
	for (int i = 0; i < 3; i++) {
		Yjlink__V1__Quarantined m = YJLINK__V1__QUARANTINED__INIT;
		m.reason = (char *)reasons[i];
		m.error = "schema";
		m.has_payload = 1;
		m.payload.data = (uint8_t *)reasons[i];
		m.payload.len = strlen(reasons[i]);
		q->ids[i] = 0;
		CHECK(yj_quarantine_put(txn, &m, &q->ids[i]) == 0);
		q->set[i] = m.has_id ? m.id : 0;
	}
	return 0;
}

static int s_quar_cb(void *arg, uint64_t id, const Yjlink__V1__Quarantined *q)
{
	struct strs *s = arg;
	/* the id in the record and the key agree */
	if (q->id != id)
		return YJ_EPROTO;
	return s_str_add(s, q->reason, id);
}

static int s_quar_read_fn(struct yj_txn *txn, void *arg)
{
	(void)arg;
	char jbuf[256];
	uint64_t n = 0;
	Yjlink__V1__Quarantined *q = yj_quarantine_get(txn, 2);
	CHECK(q != NULL);
	int ok = q->id == 2 && q->reason && !strcmp(q->reason, "too large") && q->payload.len == 9 &&
		 !memcmp(q->payload.data, "too large", 9);
	yjlink__v1__quarantined__free_unpacked(q, NULL);
	CHECK(ok);
	CHECK(yj_quarantine_get(txn, 9) == NULL);
	CHECK(yj_quarantine_count(txn, &n) == 0 && n == 3);

	struct strs s = { .n = 0 };
	CHECK(yj_quarantine_each(txn, 0, s_quar_cb, &s) == 0);
	CHECK(JOINED_IS(s, "bad json,too large,no feed"));
	CHECK(s.u[0] == 1 && s.u[2] == 3);
	memset(&s, 0, sizeof(s));
	CHECK(yj_quarantine_each(txn, 1, s_quar_cb, &s) == 0);
	CHECK(JOINED_IS(s, "no feed,too large,bad json"));
	memset(&s, 0, sizeof(s));
	s.stop_at = 1;
	CHECK(yj_quarantine_each(txn, 1, s_quar_cb, &s) == 0);
	CHECK(JOINED_IS(s, "no feed"));
	return 0;
}

static int s_quar_del_fn(struct yj_txn *txn, void *arg)
{
	(void)arg;
	uint64_t n = 0;
	CHECK(yj_quarantine_del(txn, 3) == 0);
	CHECK(yj_quarantine_del(txn, 3) == YJ_ENOENT);
	CHECK(yj_quarantine_del(txn, 42) == YJ_ENOENT);
	CHECK(yj_txn_rc(txn) == 0);
	CHECK(yj_quarantine_count(txn, &n) == 0 && n == 2);
	CHECK(yj_quarantine_get(txn, 3) == NULL);
	return 0;
}

/* Ids never come back: the highest erased, then more put. */
static int s_quar_more_fn(struct yj_txn *txn, void *arg)
{
	uint64_t *id = arg;
	Yjlink__V1__Quarantined m = YJLINK__V1__QUARANTINED__INIT;
	m.reason = "later";
	CHECK(yj_quarantine_put(txn, &m, id) == 0);
	/* again, after the new highest is erased within this transaction */
	CHECK(yj_quarantine_del(txn, *id) == 0);
	uint64_t again = 0;
	CHECK(yj_quarantine_put(txn, &m, &again) == 0);
	CHECK(again == *id + 1);
	*id = again;
	return 0;
}

static int s_quar_after_fn(struct yj_txn *txn, void *arg)
{
	(void)arg;
	char jbuf[256];
	uint64_t n = 0;
	struct strs s = { .n = 0 };
	CHECK(yj_quarantine_count(txn, &n) == 0 && n == 3);
	CHECK(yj_quarantine_each(txn, 0, s_quar_cb, &s) == 0);
	CHECK(JOINED_IS(s, "bad json,too large,later"));
	CHECK(s.u[2] == 5);
	CHECK(yj_quarantine_each(txn, 0, NULL, NULL) == YJ_EINVAL);
	CHECK(yj_txn_rc(txn) == 0);
	return 0;
}

static void test_quarantine(void **state)
{
	struct fx *f = *state;
	struct quar q = { { 0 }, { 0 } };
	uint64_t id = 0;
	s_write(f, s_quar_put_fn, &q);
	assert_int_equal(q.ids[0], 1);
	assert_int_equal(q.ids[2], 3);
	assert_int_equal(q.set[1], 2);
	s_read(f, s_quar_read_fn, NULL);
	s_write(f, s_quar_del_fn, NULL);
	s_write(f, s_quar_more_fn, &id);
	assert_int_equal(id, 5);
	s_reopen(f);
	s_read(f, s_quar_after_fn, NULL);
}

static int s_quar_del5_fn(struct yj_txn *txn, void *arg)
{
	(void)arg;
	CHECK(yj_quarantine_del(txn, 5) == 0);
	return 0;
}

static int s_quar_one_fn(struct yj_txn *txn, void *arg)
{
	Yjlink__V1__Quarantined m = YJLINK__V1__QUARANTINED__INIT;
	CHECK(yj_quarantine_put(txn, &m, arg) == 0);
	return 0;
}

static void test_quarantine_ids_not_reused(void **state)
{
	struct fx *f = *state;
	struct quar q = { { 0 }, { 0 } };
	uint64_t id = 0;
	s_write(f, s_quar_put_fn, &q);       /* 1, 2, 3 */
	s_write(f, s_quar_more_fn, &id);     /* 4 put, erased, 5 put */
	assert_int_equal(id, 5);
	s_write(f, s_quar_del5_fn, NULL);    /* the highest erased */
	s_reopen(f);
	s_write(f, s_quar_one_fn, &id);
	assert_int_equal(id, 6);
}

/* --- the byte total, the quota, retention --- */

/* The sum of every entry's key and value, read through the generic API:
 * what the running total must always equal. */
static int s_quar_sum_cb(void *arg, const void *key, size_t klen, const void *val, size_t vlen)
{
	(void)key;
	(void)val;
	*(uint64_t *)arg += klen + vlen;
	return 0;
}

static uint64_t s_quar_sum(struct yj_txn *txn)
{
	uint64_t sum = 0;
	if (yj_txn_iter(txn, YJ_DB_QUARANTINE, NULL, 0, 0, s_quar_sum_cb, &sum))
		return UINT64_MAX;
	return sum;
}

struct quota {
	uint64_t max;           /* the quota tried */
	unsigned kept, dropped; /* what happened to the 50 puts */
	uint64_t bytes;         /* the total afterwards */
};

/* 50 refused messages of 100 payload bytes each into a small quota. */
static int s_quota_fn(struct yj_txn *txn, void *arg)
{
	struct quota *q = arg;
	uint8_t payload[100];
	struct yj_quarantine_usage u0;
	memset(payload, 'x', sizeof(payload));
	q->kept = q->dropped = 0;
	CHECK(yj_quarantine_usage(txn, &u0) == 0);
	for (int i = 0; i < 50; i++) {
		Yjlink__V1__Quarantined m = YJLINK__V1__QUARANTINED__INIT;
		uint64_t id = 99;
		struct yj_quarantine_usage u;
		m.has_received_at_us = 1;
		m.received_at_us = 1000 + i;
		m.error = "syntax";
		m.has_payload = 1;
		m.payload.data = payload;
		m.payload.len = sizeof(payload);
		CHECK(yj_quarantine_put_within(txn, &m, q->max, &id) == 0);
		if (id) {
			q->kept++;
		} else {
			q->dropped++;
			CHECK(!m.has_id);   /* left as it was */
		}
		CHECK(yj_quarantine_usage(txn, &u) == 0);
		/* exact after every put, and never past the quota */
		CHECK(u.bytes == s_quar_sum(txn));
		CHECK(u.bytes <= q->max || u.bytes == u0.bytes);  /* a lowered quota: no growth */
		CHECK(u.entries == u0.entries + q->kept);
		CHECK(u.dropped == u0.dropped + q->dropped);
		q->bytes = u.bytes;
	}
	CHECK(yj_txn_rc(txn) == 0);
	return 0;
}

static int s_quota_usage_fn(struct yj_txn *txn, void *arg)
{
	struct yj_quarantine_usage *u = arg;
	CHECK(yj_quarantine_usage(txn, u) == 0);
	CHECK(u->bytes == s_quar_sum(txn));
	return 0;
}

static int s_quota_del_fn(struct yj_txn *txn, void *arg)
{
	struct yj_quarantine_usage u;
	(void)arg;
	CHECK(yj_quarantine_del(txn, 1) == 0);
	CHECK(yj_quarantine_del(txn, 1) == YJ_ENOENT);
	CHECK(yj_txn_rc(txn) == 0);
	CHECK(yj_quarantine_usage(txn, &u) == 0);
	CHECK(u.bytes == s_quar_sum(txn));
	return 0;
}

/* A store written before the total existed: take the counter away. */
static int s_quota_forget_fn(struct yj_txn *txn, void *arg)
{
	(void)arg;
	CHECK(yj_txn_del(txn, YJ_DB_META, "quarantine.bytes", strlen("quarantine.bytes")) == 0);
	return 0;
}

static void test_quarantine_quota(void **state)
{
	struct fx *f = *state;
	struct quota q = { .max = 2000 };
	struct yj_quarantine_usage u;
	unsigned first_kept = 0;

	s_write(f, s_quota_fn, &q);
	/* each entry is ~115 bytes: some fit, the rest were counted, not kept */
	assert_true(q.kept > 5 && q.kept < 20);
	assert_int_equal(q.kept + q.dropped, 50);
	assert_true(q.bytes <= 2000 && q.bytes + 200 > 2000);
	first_kept = q.kept;
	s_reopen(f);
	s_read(f, s_quota_usage_fn, &u);
	assert_int_equal(u.entries, q.kept);
	assert_int_equal(u.bytes, q.bytes);
	assert_int_equal(u.dropped, 50 - first_kept);
	assert_int_equal(u.expired, 0);

	/* erasing one makes room for exactly one more */
	s_write(f, s_quota_del_fn, NULL);
	s_read(f, s_quota_usage_fn, &u);
	assert_true(u.bytes < q.bytes);
	s_write(f, s_quota_fn, &q);
	assert_int_equal(q.kept, 1);
	assert_int_equal(q.dropped, 49);

	/* without the counter (a store from before it) the total is counted
	 * again, in a read and at the next write, which keeps it exact */
	s_write(f, s_quota_forget_fn, NULL);
	s_read(f, s_quota_usage_fn, &u);
	assert_int_equal(u.bytes, q.bytes);
	q.max = UINT64_MAX;
	s_write(f, s_quota_fn, &q);
	assert_int_equal(q.kept, 50);
	s_reopen(f);
	s_read(f, s_quota_usage_fn, &u);
	assert_int_equal(u.entries, first_kept + 50);

	/* a quota of 0 keeps nothing, and every refusal is counted */
	q.max = 0;
	s_write(f, s_quota_fn, &q);
	assert_int_equal(q.kept, 0);
	assert_int_equal(q.dropped, 50);
	s_read(f, s_quota_usage_fn, &u);
	assert_int_equal(u.dropped, (50 - first_kept) + 49 + 50);
	assert_int_equal(u.entries, first_kept + 50);
}

struct expire {
	int64_t before;
	size_t max;
	struct yj_quarantine_expiry res;
};

static int s_expire_fn(struct yj_txn *txn, void *arg)
{
	struct expire *e = arg;
	CHECK(yj_quarantine_expire(txn, e->before, e->max, 5000, &e->res) == 0);
	return 0;
}

/* Entries 1..5 received at 100, 200, 300, 400, 500. */
static int s_expire_put_fn(struct yj_txn *txn, void *arg)
{
	(void)arg;
	for (int i = 1; i <= 5; i++) {
		Yjlink__V1__Quarantined m = YJLINK__V1__QUARANTINED__INIT;
		uint64_t id = 0;
		m.has_received_at_us = 1;
		m.received_at_us = 100 * i;
		m.reason = "a reason that must not reach the audit log";
		m.source_id = "SECRET-SOURCE";
		CHECK(yj_quarantine_put(txn, &m, &id) == 0 && id == (uint64_t)i);
	}
	return 0;
}

/* Audit records as "action|actor|reason" lines, and their event numbers. */
struct audit_lines {
	char v[4][300];
	size_t n_seqs[4];
	unsigned n;
};

static int s_audit_line_cb(void *arg, const Yjlink__V1__AuditRecord *a)
{
	struct audit_lines *l = arg;
	if (l->n >= 4)
		return YJ_ERANGE;
	snprintf(l->v[l->n], sizeof(l->v[l->n]), "%s|%s|%s", a->action ? a->action : "", a->actor ? a->actor : "",
		 a->reason ? a->reason : "");
	l->n_seqs[l->n++] = a->n_seqs;
	return 0;
}

static int s_expire_check_fn(struct yj_txn *txn, void *arg)
{
	uint64_t checked = 0, bad = 0;
	CHECK(yj_audit_each(txn, 0, s_audit_line_cb, arg) == 0);
	CHECK(yj_audit_verify(txn, &checked, &bad) == 0);
	return 0;
}

static int s_expire_refused_fn(struct yj_txn *txn, void *arg)
{
	struct yj_quarantine_expiry res;
	(void)arg;
	CHECK(yj_quarantine_expire(txn, 350, 0, 5000, &res) == YJ_EINVAL);
	CHECK(yj_quarantine_expire(txn, 350, 10, 5000, NULL) == YJ_EINVAL);
	CHECK(yj_txn_rc(txn) == 0);
	return 0;
}

static int s_expire_ids_fn(struct yj_txn *txn, void *arg)
{
	return yj_quarantine_each(txn, 0, s_quar_cb, arg);
}

static void test_quarantine_expire(void **state)
{
	struct fx *f = *state;
	struct expire e = { .before = 350, .max = 2 };
	struct yj_quarantine_usage u0, u;
	struct strs s = { .n = 0 };

	s_write(f, s_expire_put_fn, NULL);
	s_read(f, s_quota_usage_fn, &u0);
	/* due: 1, 2, 3 (before 350); two per call */
	s_write(f, s_expire_fn, &e);
	assert_int_equal(e.res.erased, 2);
	assert_int_equal(e.res.first_id, 1);
	assert_int_equal(e.res.last_id, 2);
	assert_int_equal(e.res.more, 1);
	s_write(f, s_expire_fn, &e);
	assert_int_equal(e.res.erased, 1);
	assert_int_equal(e.res.first_id, 3);
	assert_int_equal(e.res.last_id, 3);
	assert_int_equal(e.res.more, 0);
	/* nothing more is due: nothing erased, nothing audited */
	s_write(f, s_expire_fn, &e);
	assert_int_equal(e.res.erased, 0);
	assert_int_equal(e.res.more, 0);

	s_read(f, s_expire_ids_fn, &s);
	assert_int_equal(s.n, 2);
	assert_int_equal(s.u[0], 4);
	assert_int_equal(s.u[1], 5);
	s_read(f, s_quota_usage_fn, &u);
	assert_int_equal(u.entries, 2);
	assert_int_equal(u.expired, 3);
	assert_true(u.bytes < u0.bytes);

	/* one audit record per call that erased: a count and an id range,
	 * nothing of the entries; the chain intact */
	struct audit_lines l = { .n = 0 };
	s_read(f, s_expire_check_fn, &l);
	assert_int_equal(l.n, 2);
	assert_string_equal(l.v[0], "erasure|yjlinkd|quarantine retention: erased 2, ids 1-2, received before "
				    "1970-01-01T00:00:00Z");
	assert_string_equal(l.v[1], "erasure|yjlinkd|quarantine retention: erased 1, ids 3-3, received before "
				    "1970-01-01T00:00:00Z");
	assert_int_equal(l.n_seqs[0], 0);   /* no event numbers: quarantine ids are not events */

	s_write(f, s_expire_refused_fn, NULL);
}

/* ================================================================= holds */

static int s_hold_cb(void *arg, const Yjlink__V1__Hold *h)
{
	struct strs *s = arg;
	return s_str_add(s, h->has_released_at_us && h->released_at_us ? "released" : "held", h->seq);
}

static int s_rcpt_cb(void *arg, const char *recipient)
{
	return s_str_add(arg, recipient, 0);
}

static int s_holds_fn(struct yj_txn *txn, void *arg)
{
	(void)arg;
	char jbuf[256];
	CHECK(yj_holds_put(txn, 5, 100) == 0);
	CHECK(yj_holds_put(txn, 7, 200) == 0);
	CHECK(yj_holds_is_held(txn, 5) == 1);
	CHECK(yj_holds_is_held(txn, 7) == 1);
	CHECK(yj_holds_is_held(txn, 6) == 0);
	Yjlink__V1__Hold *h = yj_holds_get(txn, 5);
	CHECK(h != NULL);
	int ok = h->seq == 5 && h->held_at_us == 100 && !h->has_released_at_us;
	yjlink__v1__hold__free_unpacked(h, NULL);
	CHECK(ok);
	CHECK(yj_holds_get(txn, 6) == NULL);

	/* release: not held, released, then released again */
	CHECK(yj_holds_release(txn, 6, 300, "DC Smith", "uid:0", "charged") == YJ_ENOENT);
	CHECK(yj_txn_rc(txn) == 0);
	CHECK(yj_holds_release(txn, 5, 300, "DC Smith", "uid:0", "charged") == 0);
	CHECK(yj_holds_is_held(txn, 5) == 0);
	CHECK(yj_holds_release(txn, 5, 400, "DC Jones", "uid:0", "again") == YJ_EEXIST);
	CHECK(yj_txn_rc(txn) == 0);
	h = yj_holds_get(txn, 5);
	CHECK(h != NULL);
	ok = h->seq == 5 && h->held_at_us == 100 && h->released_at_us == 300 && h->released_by &&
	     !strcmp(h->released_by, "DC Smith") && h->reason && !strcmp(h->reason, "charged");
	yjlink__v1__hold__free_unpacked(h, NULL);
	CHECK(ok);

	struct strs s = { .n = 0 };
	CHECK(yj_holds_each(txn, s_hold_cb, &s) == 0);
	CHECK(JOINED_IS(s, "released,held"));
	CHECK(s.u[0] == 5 && s.u[1] == 7);
	memset(&s, 0, sizeof(s));
	s.stop_at = 1;
	CHECK(yj_holds_each(txn, s_hold_cb, &s) == 0 && s.n == 1);

	/* who has had each event */
	CHECK(yj_disclosed_add(txn, 5, "yjs:mk") == 0);
	CHECK(yj_disclosed_add(txn, 5, "children_services:E06000042") == 0);
	CHECK(yj_disclosed_add(txn, 5, "yjs:mk") == 0); /* twice: once */
	CHECK(yj_disclosed_add(txn, 6, "yjs:mk2") == 0);
	CHECK(yj_disclosed_add(txn, 4, "force:E23000001") == 0);
	CHECK(yj_disclosed_add(txn, 5, "") == YJ_EINVAL);
	CHECK(yj_disclosed_add(txn, 5, NULL) == YJ_EINVAL);
	CHECK(yj_txn_rc(txn) == 0);
	memset(&s, 0, sizeof(s));
	CHECK(yj_disclosed_each(txn, 5, s_rcpt_cb, &s) == 0);
	CHECK(JOINED_IS(s, "children_services:E06000042,yjs:mk"));
	memset(&s, 0, sizeof(s));
	CHECK(yj_disclosed_each(txn, 6, s_rcpt_cb, &s) == 0);
	CHECK(JOINED_IS(s, "yjs:mk2"));
	memset(&s, 0, sizeof(s));
	CHECK(yj_disclosed_each(txn, 9, s_rcpt_cb, &s) == 0);
	CHECK(s.n == 0);

	/* the layout: seq (be64) + recipient id -> "" */
	uint8_t k[32];
	const void *v;
	size_t vlen = 1;
	yj_be64_put(k, 6);
	memcpy(k + 8, "yjs:mk2", 7);
	CHECK(yj_txn_get(txn, YJ_DB_DISCLOSED, k, 15, &v, &vlen) == 0 && vlen == 0);
	yj_be64_put(k, 7);
	CHECK(yj_txn_get(txn, YJ_DB_HOLDS, k, 8, &v, &vlen) == 0);
	return 0;
}

static int s_holds_after_fn(struct yj_txn *txn, void *arg)
{
	(void)arg;
	CHECK(yj_holds_is_held(txn, 5) == 0);
	CHECK(yj_holds_is_held(txn, 7) == 1);
	return 0;
}

static void test_holds(void **state)
{
	struct fx *f = *state;
	s_write(f, s_holds_fn, NULL);
	s_reopen(f);
	s_read(f, s_holds_after_fn, NULL);
}

/* ================================================================= notes */

static int s_note_put(struct yj_txn *txn, enum yj_note_queue q, uint64_t number, const char *rcpt)
{
	Yjlink__V1__Notification n = YJLINK__V1__NOTIFICATION__INIT;
	n.has_number = n.has_seq = 1;
	n.number = number;
	n.seq = number * 10;
	n.recipient = (char *)rcpt;
	n.rule = "r1";
	return yj_notes_put(txn, q, &n);
}

static int s_note_cb(void *arg, const Yjlink__V1__Notification *n)
{
	return s_str_add(arg, n->recipient, n->number);
}

static int s_numbers_fn(struct yj_txn *txn, void *arg)
{
	uint64_t *v = arg;
	for (int i = 0; i < 3; i++)
		CHECK(yj_notes_next_number(txn, &v[i]) == 0);
	return 0;
}

static int s_one_number_fn(struct yj_txn *txn, void *arg)
{
	return yj_notes_next_number(txn, arg);
}

/* The counter holds the NEXT number, be64, under its old name. */
static int s_counter_is_fn(struct yj_txn *txn, void *arg)
{
	const void *v;
	size_t vlen;
	const char *k = "route.next_notification";
	CHECK(yj_txn_get(txn, YJ_DB_META, k, strlen(k), &v, &vlen) == 0);
	CHECK(vlen == 8 && yj_be64_get(v) == *(uint64_t *)arg);
	return 0;
}

static int s_counter_set_fn(struct yj_txn *txn, void *arg)
{
	uint8_t b[8];
	const char *k = "route.next_notification";
	yj_be64_put(b, *(uint64_t *)arg);
	return yj_txn_put(txn, YJ_DB_META, k, strlen(k), b, 8);
}

static void test_notes_numbers(void **state)
{
	struct fx *f = *state;
	uint64_t v[3] = { 0 }, want;
	s_write(f, s_numbers_fn, v);
	assert_int_equal(v[0], 1);
	assert_int_equal(v[1], 2);
	assert_int_equal(v[2], 3);
	want = 4;
	s_read(f, s_counter_is_fn, &want);
	s_write(f, s_numbers_fn, v);
	assert_int_equal(v[0], 4);
	assert_int_equal(v[2], 6);
	s_reopen(f);
	s_write(f, s_numbers_fn, v);
	assert_int_equal(v[0], 7);
	/* a store whose counter an older yjlinkd wrote goes on from it */
	want = 42;
	s_write(f, s_counter_set_fn, &want);
	s_write(f, s_numbers_fn, v);
	assert_int_equal(v[0], 42);
	assert_int_equal(v[2], 44);
	want = 45;
	s_read(f, s_counter_is_fn, &want);
	/* a damaged counter stops the queueing rather than start again at 1 */
	want = 0;
	s_write(f, s_counter_set_fn, &want);
	assert_int_equal(yj_store_write(f->st, s_one_number_fn, v), YJ_ESTORE);
}

static int s_outbox_fill_fn(struct yj_txn *txn, void *arg)
{
	(void)arg;
	/* "yjs:mk" is a prefix of "yjs:mk2": their jobs must never mix */
	CHECK(s_note_put(txn, YJ_NOTES_OUTBOX, 10, "yjs:mk2") == 0);
	CHECK(s_note_put(txn, YJ_NOTES_OUTBOX, 11, "yjs:mk") == 0);
	Yjlink__V1__Notification held = YJLINK__V1__NOTIFICATION__INIT;
	held.has_number = held.has_seq = held.has_not_before_us = held.has_next_attempt_us = 1;
	held.number = 12;
	held.seq = 120;
	held.recipient = "yjs:mk";
	held.rule = "r1";
	held.not_before_us = INT64_C(1781000000000000);
	held.next_attempt_us = INT64_C(1781000500000000);
	CHECK(yj_notes_put(txn, YJ_NOTES_OUTBOX, &held) == 0);
	CHECK(s_note_put(txn, YJ_NOTES_OUTBOX, 13, "yjs:mk2") == 0);
	CHECK(s_note_put(txn, YJ_NOTES_OUTBOX, 14, "force:E23000001") == 0);
	CHECK(s_note_put(txn, YJ_NOTES_OUTBOX, 15, "yjs:m") == 0);
	CHECK(s_note_put(txn, YJ_NOTES_DLQ, 3, "yjs:mk") == 0);
	CHECK(s_note_put(txn, YJ_NOTES_DLQ, 2, "yjs:mk2") == 0);
	CHECK(s_note_put(txn, YJ_NOTES_UNROUTABLE, 7, "children_services:E1") == 0);
	/* refused: nothing written, the transaction goes on */
	CHECK(s_note_put(txn, YJ_NOTES_OUTBOX, 16, NULL) == YJ_EINVAL);
	CHECK(s_note_put(txn, YJ_NOTES_OUTBOX, 16, "") == YJ_EINVAL);
	CHECK(s_note_put(txn, YJ_NOTES_OUTBOX, 0, "yjs:mk") == YJ_EINVAL);
	CHECK(s_note_put(txn, (enum yj_note_queue)9, 16, "yjs:mk") == YJ_EINVAL);
	CHECK(yj_notes_put(txn, YJ_NOTES_OUTBOX, NULL) == YJ_EINVAL);
	/* job 15's index entry as a store from before the times were kept has it */
	uint8_t k[32];
	memcpy(k, "yjs:m\0", 6);
	yj_be64_put(k + 6, 15);
	CHECK(yj_txn_put(txn, YJ_DB_OUTBOX_RCPT, k, 14, "", 0) == 0);
	CHECK(yj_txn_rc(txn) == 0);
	return 0;
}

static int s_outbox_read_fn(struct yj_txn *txn, void *arg)
{
	(void)arg;
	char jbuf[256], id[64];
	uint64_t n = 0;

	/* recipients in id order, each once */
	CHECK(yj_notes_next_recipient(txn, NULL, id, sizeof(id)) == 0 && !strcmp(id, "force:E23000001"));
	CHECK(yj_notes_next_recipient(txn, id, id, sizeof(id)) == 0 && !strcmp(id, "yjs:m"));
	CHECK(yj_notes_next_recipient(txn, "yjs:m", id, sizeof(id)) == 0 && !strcmp(id, "yjs:mk"));
	CHECK(yj_notes_next_recipient(txn, "yjs:mk", id, sizeof(id)) == 0 && !strcmp(id, "yjs:mk2"));
	CHECK(yj_notes_next_recipient(txn, "yjs:mk2", id, sizeof(id)) == YJ_ENOENT);
	CHECK(yj_notes_next_recipient(txn, "a", id, sizeof(id)) == 0 && !strcmp(id, "force:E23000001"));
	CHECK(yj_notes_next_recipient(txn, NULL, id, 5) == YJ_ERANGE);
	CHECK(yj_txn_rc(txn) == 0);

	/* each recipient's jobs in number order, and only its own */
	CHECK(yj_notes_recipient_next(txn, "yjs:mk", 0, &n) == 0 && n == 11);
	CHECK(yj_notes_recipient_next(txn, "yjs:mk", 12, &n) == 0 && n == 12);
	CHECK(yj_notes_recipient_next(txn, "yjs:mk", 13, &n) == YJ_ENOENT);
	CHECK(yj_notes_recipient_next(txn, "yjs:mk2", 0, &n) == 0 && n == 10);
	CHECK(yj_notes_recipient_next(txn, "yjs:mk2", 11, &n) == 0 && n == 13);
	CHECK(yj_notes_recipient_next(txn, "yjs:mk2", 14, &n) == YJ_ENOENT);
	CHECK(yj_notes_recipient_next(txn, "yjs:m", 0, &n) == 0 && n == 15);
	CHECK(yj_notes_recipient_next(txn, "yjs:m", 16, &n) == YJ_ENOENT);
	CHECK(yj_notes_recipient_next(txn, "yjs", 0, &n) == YJ_ENOENT);
	CHECK(yj_notes_recipient_next(txn, "zzz", 0, &n) == YJ_ENOENT);
	CHECK(yj_txn_rc(txn) == 0);

	/* the index key: "<recipient>\0" + number (be64) -> when it is due
	 * (not_before, next_attempt: be64 each, 0 unset), so that the outbox's
	 * walk can pass over a job held for later without reading it */
	uint8_t k[32];
	const void *v;
	size_t vlen = 1;
	memcpy(k, "yjs:mk\0", 7);
	yj_be64_put(k + 7, 12);
	CHECK(yj_txn_get(txn, YJ_DB_OUTBOX_RCPT, k, 15, &v, &vlen) == 0 && vlen == 16);
	CHECK(yj_be64_get(v) == UINT64_C(1781000000000000) && yj_be64_get((const uint8_t *)v + 8) == UINT64_C(1781000500000000));
	struct yj_note_when w = { 0, 0, 0 };
	CHECK(yj_notes_recipient_next_when(txn, "yjs:mk", 12, &n, &w) == 0 && n == 12 && w.known &&
	      w.not_before_us == INT64_C(1781000000000000) && w.next_attempt_us == INT64_C(1781000500000000));
	CHECK(yj_notes_recipient_next_when(txn, "yjs:mk", 0, &n, &w) == 0 && n == 11 && w.known && !w.not_before_us &&
	      !w.next_attempt_us);
	CHECK(yj_notes_recipient_next_when(txn, "yjs:m", 0, &n, &w) == 0 && n == 15 && !w.known);

	/* the queues */
	Yjlink__V1__Notification *nt = yj_notes_get(txn, YJ_NOTES_OUTBOX, 11);
	CHECK(nt != NULL);
	int ok = nt->number == 11 && nt->seq == 110 && nt->recipient && !strcmp(nt->recipient, "yjs:mk");
	yjlink__v1__notification__free_unpacked(nt, NULL);
	CHECK(ok);
	CHECK(yj_notes_get(txn, YJ_NOTES_DLQ, 11) == NULL);
	CHECK(yj_notes_get(txn, YJ_NOTES_OUTBOX, 3) == NULL);
	nt = yj_notes_get(txn, YJ_NOTES_DLQ, 3);
	CHECK(nt != NULL);
	yjlink__v1__notification__free_unpacked(nt, NULL);
	CHECK(yj_notes_count(txn, YJ_NOTES_OUTBOX, &n) == 0 && n == 6);
	CHECK(yj_notes_count(txn, YJ_NOTES_DLQ, &n) == 0 && n == 2);
	CHECK(yj_notes_count(txn, YJ_NOTES_UNROUTABLE, &n) == 0 && n == 1);
	/* only the outbox is indexed */
	CHECK(yj_txn_count(txn, YJ_DB_OUTBOX_RCPT, &n) == 0 && n == 6);

	struct strs s = { .n = 0 };
	CHECK(yj_notes_each(txn, YJ_NOTES_OUTBOX, s_note_cb, &s) == 0);
	CHECK(JOINED_IS(s, "yjs:mk2,yjs:mk,yjs:mk,yjs:mk2,force:E23000001,yjs:m"));
	CHECK(s.u[0] == 10 && s.u[5] == 15);
	memset(&s, 0, sizeof(s));
	CHECK(yj_notes_each(txn, YJ_NOTES_DLQ, s_note_cb, &s) == 0);
	CHECK(JOINED_IS(s, "yjs:mk2,yjs:mk"));
	memset(&s, 0, sizeof(s));
	s.stop_at = 1;
	CHECK(yj_notes_each(txn, YJ_NOTES_UNROUTABLE, s_note_cb, &s) == 0);
	CHECK(JOINED_IS(s, "children_services:E1"));
	return 0;
}

static int s_outbox_del_fn(struct yj_txn *txn, void *arg)
{
	(void)arg;
	char id[64];
	uint64_t n = 0;
	CHECK(yj_notes_del(txn, YJ_NOTES_OUTBOX, 11) == 0);
	CHECK(yj_notes_del(txn, YJ_NOTES_OUTBOX, 11) == YJ_ENOENT);
	CHECK(yj_txn_rc(txn) == 0);
	CHECK(yj_notes_get(txn, YJ_NOTES_OUTBOX, 11) == NULL);
	CHECK(yj_notes_recipient_next(txn, "yjs:mk", 0, &n) == 0 && n == 12);
	CHECK(yj_notes_del(txn, YJ_NOTES_OUTBOX, 12) == 0);
	CHECK(yj_notes_recipient_next(txn, "yjs:mk", 0, &n) == YJ_ENOENT);
	/* a recipient without jobs is not listed */
	CHECK(yj_notes_next_recipient(txn, "yjs:m", id, sizeof(id)) == 0 && !strcmp(id, "yjs:mk2"));
	CHECK(yj_txn_count(txn, YJ_DB_OUTBOX_RCPT, &n) == 0 && n == 4);

	/* written again for another recipient: the old index entry goes */
	CHECK(s_note_put(txn, YJ_NOTES_OUTBOX, 10, "yjs:other") == 0);
	CHECK(yj_notes_recipient_next(txn, "yjs:mk2", 0, &n) == 0 && n == 13);
	CHECK(yj_notes_recipient_next(txn, "yjs:other", 0, &n) == 0 && n == 10);
	/* written again for the same one: one entry still */
	CHECK(s_note_put(txn, YJ_NOTES_OUTBOX, 13, "yjs:mk2") == 0);
	CHECK(yj_txn_count(txn, YJ_DB_OUTBOX_RCPT, &n) == 0 && n == 4);

	/* the other queues: no index to follow */
	CHECK(yj_notes_del(txn, YJ_NOTES_DLQ, 3) == 0);
	CHECK(yj_notes_del(txn, YJ_NOTES_DLQ, 3) == YJ_ENOENT);
	CHECK(yj_notes_del(txn, YJ_NOTES_UNROUTABLE, 7) == 0);
	CHECK(yj_notes_count(txn, YJ_NOTES_DLQ, &n) == 0 && n == 1);
	CHECK(yj_notes_count(txn, YJ_NOTES_UNROUTABLE, &n) == 0 && n == 0);
	CHECK(yj_txn_count(txn, YJ_DB_OUTBOX_RCPT, &n) == 0 && n == 4);
	return 0;
}

/* A damaged outbox job is still taken out, index entry and all. */
static int s_outbox_damaged_fn(struct yj_txn *txn, void *arg)
{
	(void)arg;
	uint8_t k[8];
	uint64_t n = 0;
	yj_be64_put(k, 14);
	CHECK(yj_txn_put(txn, YJ_DB_OUTBOX, k, 8, "\xff\xff\xff", 3) == 0);
	CHECK(yj_notes_get(txn, YJ_NOTES_OUTBOX, 14) == NULL);
	CHECK(yj_notes_del(txn, YJ_NOTES_OUTBOX, 14) == 0);
	CHECK(yj_notes_recipient_next(txn, "force:E23000001", 0, &n) == YJ_ENOENT);
	CHECK(yj_txn_count(txn, YJ_DB_OUTBOX_RCPT, &n) == 0 && n == 3);
	return 0;
}

/* yj_notes_pack_plain writes what protobuf-c writes, byte for byte, for
 * every mix of present fields and values at the edges of each type; hands
 * back 0 (protobuf-c's turn) for what it does not encode or cannot fit. */
static uint64_t s_rand_u64(void)
{
	uint64_t v;
	randombytes_buf(&v, sizeof(v));
	return v;
}

static const uint64_t s_edges[] = { 0, 1, 127, 128, 16383, 16384, UINT32_MAX, (uint64_t)INT64_MAX,
				    (uint64_t)INT64_MIN, UINT64_MAX };

static uint64_t s_pick(void)
{
	uint64_t r = s_rand_u64();
	return r & 1 ? s_edges[(r >> 1) % (sizeof(s_edges) / sizeof(s_edges[0]))] : s_rand_u64() >> (r >> 58);
}

static char *s_pick_str(char *buf, size_t size)
{
	uint64_t r = s_rand_u64();
	if (r % 4 == 0)
		return NULL;
	size_t n = r % 4 == 1 ? 0 : (r >> 8) % (size - 1);
	for (size_t i = 0; i < n; i++)
		buf[i] = (char)('a' + (s_rand_u64() % 26));
	buf[n] = '\0';
	return buf;
}

static void test_notes_pack_plain(void **state)
{
	(void)state;
	char strs[10][300];
	uint8_t mine[4096], theirs[4096];
	for (int round = 0; round < 20000; round++) {
		Yjlink__V1__Notification n = YJLINK__V1__NOTIFICATION__INIT;
		uint64_t has = round == 0 ? 0 : round == 1 ? UINT64_MAX : s_rand_u64();
		int s = 0;
#define PICK_U(f, bit, type)                                    \
	do {                                                    \
		if (has >> (bit) & 1) {                         \
			n.has_##f = 1;                          \
			n.f = (type)s_pick();                   \
		}                                               \
	} while (0)
		PICK_U(number, 0, uint64_t);
		PICK_U(seq, 1, uint64_t);
		PICK_U(created_at_us, 2, int64_t);
		PICK_U(not_before_us, 3, int64_t);
		PICK_U(attempts, 5, uint32_t);
		PICK_U(next_attempt_us, 6, int64_t);
		PICK_U(failed_at_us, 7, int64_t);
		PICK_U(escalated_at_us, 8, int64_t);
		PICK_U(about_number, 9, uint64_t);
		PICK_U(about_at_us, 10, int64_t);
#undef PICK_U
		if (has >> 4 & 1) {
			n.has_out_of_hours = 1;
			n.out_of_hours = (protobuf_c_boolean)(has >> 11 & 1);
		}
		n.recipient = s_pick_str(strs[s++], sizeof(strs[0]));
		n.rule = s_pick_str(strs[s++], sizeof(strs[0]));
		n.kind = s_pick_str(strs[s++], sizeof(strs[0]));
		n.legal_basis = s_pick_str(strs[s++], sizeof(strs[0]));
		n.last_error = s_pick_str(strs[s++], sizeof(strs[0]));
		n.reason = s_pick_str(strs[s++], sizeof(strs[0]));
		n.about_recipient = s_pick_str(strs[s++], sizeof(strs[0]));
		n.about_rule = s_pick_str(strs[s++], sizeof(strs[0]));
		n.detail = s_pick_str(strs[s++], sizeof(strs[0]));
		n.about_feed = s_pick_str(strs[s++], sizeof(strs[0]));
		if (round == 1)
			for (int i = 0; i < 10; i++) {
				memset(strs[i], 'x', sizeof(strs[i]) - 1);
				strs[i][sizeof(strs[i]) - 1] = '\0';
			}
		size_t want = protobuf_c_message_get_packed_size(&n.base);
		assert_true(want <= sizeof(theirs));
		assert_int_equal(protobuf_c_message_pack(&n.base, theirs), want);
		size_t got = yj_notes_pack_plain(&n, mine, sizeof(mine));
		assert_int_equal(got, want);
		assert_memory_equal(mine, theirs, want);
		/* one byte short of room: not written, protobuf-c's turn */
		if (want)
			assert_int_equal(yj_notes_pack_plain(&n, mine, want - 1), 0);
	}
	/* a digest or report, or fields this version does not know: protobuf-c's */
	Yjlink__V1__Notification d = YJLINK__V1__NOTIFICATION__INIT;
	Yjlink__V1__Digest dg = YJLINK__V1__DIGEST__INIT;
	d.digest = &dg;
	assert_int_equal(yj_notes_pack_plain(&d, mine, sizeof(mine)), 0);
	Yjlink__V1__Notification r = YJLINK__V1__NOTIFICATION__INIT;
	Yjlink__V1__BoardReport br = YJLINK__V1__BOARD_REPORT__INIT;
	r.report = &br;
	assert_int_equal(yj_notes_pack_plain(&r, mine, sizeof(mine)), 0);
	Yjlink__V1__Notification u = YJLINK__V1__NOTIFICATION__INIT;
	ProtobufCMessageUnknownField uf = { .tag = 99, .wire_type = PROTOBUF_C_WIRE_TYPE_VARINT, .len = 1,
					    .data = (uint8_t *)"\x01" };
	u.base.n_unknown_fields = 1;
	u.base.unknown_fields = &uf;
	assert_int_equal(yj_notes_pack_plain(&u, mine, sizeof(mine)), 0);
	assert_int_equal(yj_notes_pack_plain(NULL, mine, sizeof(mine)), 0);
}

static void test_notes_queues(void **state)
{
	struct fx *f = *state;
	s_write(f, s_outbox_fill_fn, NULL);
	s_read(f, s_outbox_read_fn, NULL);
	s_reopen(f);
	s_read(f, s_outbox_read_fn, NULL);
	s_write(f, s_outbox_del_fn, NULL);
	s_write(f, s_outbox_damaged_fn, NULL);
}

/* =============================================================== digests */

static int s_entry_cb(void *arg, uint64_t seq, const char *rule)
{
	return s_str_add(arg, rule, seq);
}

static int s_digest_cb(void *arg, const Yjlink__V1__Digest *d)
{
	return s_str_add(arg, d->id, (uint64_t)d->scheduled_us);
}

static int s_entries_fn(struct yj_txn *txn, void *arg)
{
	(void)arg;
	char jbuf[256];
	uint64_t n = 0;
	CHECK(yj_digests_add(txn, "yjs:mk", 5, "r_outcome") == 0);
	CHECK(yj_digests_add(txn, "yjs:mk", 5, "r_custody") == 0);
	CHECK(yj_digests_add(txn, "yjs:mk", 5, "r_custody") == 0); /* twice: once */
	CHECK(yj_digests_add(txn, "yjs:mk", 7, "r_custody") == 0);
	CHECK(yj_digests_add(txn, "yjs:mk", 9, "r_arrest") == 0);
	CHECK(yj_digests_add(txn, "yjs:mk2", 6, "r_mk2") == 0);
	CHECK(yj_digests_add(txn, "yjs:mk2", 8, "r_mk2") == 0);
	CHECK(yj_digests_add(txn, "yjs:m", 5, "r_m") == 0);
	CHECK(yj_digests_add(txn, "yjs:mk", 5, NULL) == YJ_EINVAL);
	CHECK(yj_digests_add(txn, "", 5, "r") == YJ_EINVAL);
	CHECK(yj_txn_rc(txn) == 0);
	CHECK(yj_txn_count(txn, YJ_DB_DIGEST, &n) == 0 && n == 7);

	struct strs s = { .n = 0 };
	CHECK(yj_digests_entries(txn, "yjs:mk", 0, 100, s_entry_cb, &s) == 0);
	CHECK(JOINED_IS(s, "r_custody,r_outcome,r_custody,r_arrest"));
	CHECK(s.u[0] == 5 && s.u[1] == 5 && s.u[2] == 7 && s.u[3] == 9);
	memset(&s, 0, sizeof(s));
	CHECK(yj_digests_entries(txn, "yjs:mk", 5, 9, s_entry_cb, &s) == 0);
	CHECK(JOINED_IS(s, "r_custody,r_arrest") && s.u[0] == 7 && s.u[1] == 9);
	memset(&s, 0, sizeof(s));
	CHECK(yj_digests_entries(txn, "yjs:mk", 4, 8, s_entry_cb, &s) == 0);
	CHECK(s.n == 3 && s.u[2] == 7);
	memset(&s, 0, sizeof(s));
	CHECK(yj_digests_entries(txn, "yjs:mk", 9, 100, s_entry_cb, &s) == 0 && s.n == 0);
	CHECK(yj_digests_entries(txn, "yjs:mk", 7, 7, s_entry_cb, &s) == 0 && s.n == 0);
	CHECK(yj_digests_entries(txn, "yjs:mk", 10, 5, s_entry_cb, &s) == 0 && s.n == 0);
	CHECK(yj_digests_entries(txn, "yjs:mk", UINT64_MAX, UINT64_MAX, s_entry_cb, &s) == 0 && s.n == 0);
	/* a YJS whose id another's begins with: only its own */
	CHECK(yj_digests_entries(txn, "yjs:mk2", 0, UINT64_MAX, s_entry_cb, &s) == 0);
	CHECK(JOINED_IS(s, "r_mk2,r_mk2") && s.u[0] == 6 && s.u[1] == 8);
	memset(&s, 0, sizeof(s));
	CHECK(yj_digests_entries(txn, "yjs:m", 0, UINT64_MAX, s_entry_cb, &s) == 0);
	CHECK(JOINED_IS(s, "r_m"));
	memset(&s, 0, sizeof(s));
	CHECK(yj_digests_entries(txn, "yjs", 0, UINT64_MAX, s_entry_cb, &s) == 0 && s.n == 0);
	s.stop_at = 2;
	CHECK(yj_digests_entries(txn, "yjs:mk", 0, UINT64_MAX, s_entry_cb, &s) == 0 && s.n == 2);

	/* the layout: "<yjs>\0" + seq (be64) -> rule id */
	uint8_t k[32];
	const void *v;
	size_t vlen;
	memcpy(k, "yjs:mk\0", 7);
	yj_be64_put(k + 7, 7);
	CHECK(yj_txn_get(txn, YJ_DB_DIGEST, k, 15, &v, &vlen) == 0);
	CHECK(vlen == 9 && !memcmp(v, "r_custody", 9));
	return 0;
}

static int s_state_fn(struct yj_txn *txn, void *arg)
{
	(void)arg;
	char *open[] = { "F1/r1", "F1/r2" };
	CHECK(yj_digests_state_get(txn, "yjs:mk") == NULL);
	Yjlink__V1__DigestState st = YJLINK__V1__DIGEST_STATE__INIT;
	st.yjs = "yjs:mk";
	st.has_last_scheduled_us = st.has_last_end_seq = st.has_planned = 1;
	st.last_scheduled_us = -123;
	st.last_end_seq = 9;
	st.planned = 4;
	st.n_open_custody = 2;
	st.open_custody = open;
	CHECK(yj_digests_state_put(txn, &st) == 0);
	st.yjs = NULL;
	CHECK(yj_digests_state_put(txn, &st) == YJ_EINVAL);
	CHECK(yj_digests_state_put(txn, NULL) == YJ_EINVAL);
	CHECK(yj_txn_rc(txn) == 0);

	Yjlink__V1__DigestState *got = yj_digests_state_get(txn, "yjs:mk");
	CHECK(got != NULL);
	int ok = got->yjs && !strcmp(got->yjs, "yjs:mk") && got->last_scheduled_us == -123 && got->last_end_seq == 9 &&
		 got->planned == 4 && got->n_open_custody == 2 && !strcmp(got->open_custody[1], "F1/r2");
	yjlink__v1__digest_state__free_unpacked(got, NULL);
	CHECK(ok);
	CHECK(yj_digests_state_get(txn, "yjs:mk2") == NULL);
	CHECK(yj_digests_state_get(txn, "yjs:m") == NULL);

	/* the layout: meta "digest.state.<yjs>" */
	const void *v;
	size_t vlen;
	const char *k = "digest.state.yjs:mk";
	CHECK(yj_txn_get(txn, YJ_DB_META, k, strlen(k), &v, &vlen) == 0);
	got = yjlink__v1__digest_state__unpack(NULL, vlen, v);
	CHECK(got != NULL);
	ok = got->last_end_seq == 9;
	yjlink__v1__digest_state__free_unpacked(got, NULL);
	CHECK(ok);
	return 0;
}

static int s_log_put(struct yj_txn *txn, const char *yjs, int64_t at, const char *id)
{
	Yjlink__V1__Digest d = YJLINK__V1__DIGEST__INIT;
	d.id = (char *)id;
	d.yjs = (char *)yjs;
	d.has_scheduled_us = 1;
	d.scheduled_us = at;
	return yj_digests_log_put(txn, &d);
}

static int s_log_fn(struct yj_txn *txn, void *arg)
{
	(void)arg;
	char jbuf[256];
	CHECK(s_log_put(txn, "yjs:mk", 3000, "a") == 0);
	CHECK(s_log_put(txn, "yjs:mk", -5, "b") == 0);
	CHECK(s_log_put(txn, "yjs:mk", 1000, "c") == 0);
	CHECK(s_log_put(txn, "yjs:mk2", 500, "x") == 0);
	CHECK(s_log_put(txn, "yjs:m", 2000, "y") == 0);
	CHECK(s_log_put(txn, NULL, 2000, "z") == YJ_EINVAL);
	CHECK(yj_txn_rc(txn) == 0);

	Yjlink__V1__Digest *d = yj_digests_log_get(txn, "yjs:mk", 1000);
	CHECK(d != NULL);
	int ok = d->id && !strcmp(d->id, "c");
	yjlink__v1__digest__free_unpacked(d, NULL);
	CHECK(ok);
	CHECK(yj_digests_log_get(txn, "yjs:mk", 2000) == NULL);
	CHECK(yj_digests_log_get(txn, "yjs:mk2", 1000) == NULL);

	/* oldest first (negative times sort first), own entries only */
	struct strs s = { .n = 0 };
	CHECK(yj_digests_log_each(txn, "yjs:mk", s_digest_cb, &s) == 0);
	CHECK(JOINED_IS(s, "b,c,a"));
	memset(&s, 0, sizeof(s));
	CHECK(yj_digests_log_each(txn, "yjs:mk2", s_digest_cb, &s) == 0);
	CHECK(JOINED_IS(s, "x"));
	memset(&s, 0, sizeof(s));
	CHECK(yj_digests_log_each(txn, "yjs:m", s_digest_cb, &s) == 0);
	CHECK(JOINED_IS(s, "y"));
	memset(&s, 0, sizeof(s));
	CHECK(yj_digests_log_each(txn, "yjs:none", s_digest_cb, &s) == 0 && s.n == 0);

	/* the same YJS and time again: replaced */
	CHECK(s_log_put(txn, "yjs:mk", 1000, "c2") == 0);
	memset(&s, 0, sizeof(s));
	CHECK(yj_digests_log_each(txn, "yjs:mk", s_digest_cb, &s) == 0);
	CHECK(JOINED_IS(s, "b,c2,a"));

	/* the layout: "<yjs>\0" + scheduled time (be64, sign flipped) */
	uint8_t k[32];
	const void *v;
	size_t vlen;
	memcpy(k, "yjs:mk\0", 7);
	yj_be64_put(k + 7, yj_time_key(-5));
	CHECK(yj_txn_get(txn, YJ_DB_DIGEST_LOG, k, 15, &v, &vlen) == 0);
	d = yjlink__v1__digest__unpack(NULL, vlen, v);
	CHECK(d != NULL);
	ok = d->id && !strcmp(d->id, "b");
	yjlink__v1__digest__free_unpacked(d, NULL);
	CHECK(ok);
	return 0;
}

/* Several rules of one event for one YJS: one entry (one value under the
 * key, where a value each made LMDB's costliest put), read back a rule at
 * a time in name order, beside entries of one rule; a stop in the middle
 * of one stops. */
static int s_entries_rules_fn(struct yj_txn *txn, void *arg)
{
	(void)arg;
	char jbuf[256];
	uint64_t before = 0, after = 0;
	static const char *const three[] = { "r_zeta", "r_alpha", "r_mid" };
	static const char *const one[] = { "r_solo" };
	static const char *const bad[] = { "r_ok", "" };
	CHECK(yj_txn_count(txn, YJ_DB_DIGEST, &before) == 0);
	CHECK(yj_digests_add_rules(txn, "yjs:rr", 11, three, 3) == 0);
	CHECK(yj_digests_add_rules(txn, "yjs:rr", 12, one, 1) == 0);
	CHECK(yj_digests_add(txn, "yjs:rr", 13, "r_single") == 0);
	CHECK(yj_txn_count(txn, YJ_DB_DIGEST, &after) == 0 && after == before + 3);
	CHECK(yj_digests_add_rules(txn, "yjs:rr", 14, three, 0) == YJ_EINVAL);
	CHECK(yj_digests_add_rules(txn, "yjs:rr", 14, bad, 2) == YJ_EINVAL);
	CHECK(yj_digests_add_rules(txn, "yjs:rr", 14, NULL, 1) == YJ_EINVAL);
	CHECK(yj_txn_rc(txn) == 0);
	struct strs s = { .n = 0 };
	CHECK(yj_digests_entries(txn, "yjs:rr", 0, UINT64_MAX, s_entry_cb, &s) == 0);
	CHECK(JOINED_IS(s, "r_alpha,r_mid,r_zeta,r_solo,r_single"));
	CHECK(s.u[0] == 11 && s.u[1] == 11 && s.u[2] == 11 && s.u[3] == 12 && s.u[4] == 13);
	memset(&s, 0, sizeof(s));
	s.stop_at = 2;
	CHECK(yj_digests_entries(txn, "yjs:rr", 0, UINT64_MAX, s_entry_cb, &s) == 0);
	CHECK(JOINED_IS(s, "r_alpha,r_mid"));
	/* Erased with its event: all its rules at once. */
	CHECK(yj_digests_erase_entry(txn, "yjs:rr", 11) == 0);
	memset(&s, 0, sizeof(s));
	CHECK(yj_digests_entries(txn, "yjs:rr", 0, UINT64_MAX, s_entry_cb, &s) == 0);
	CHECK(JOINED_IS(s, "r_solo,r_single"));
	return 0;
}

static void test_digests(void **state)
{
	struct fx *f = *state;
	s_write(f, s_entries_fn, NULL);
	s_write(f, s_entries_rules_fn, NULL);
	s_write(f, s_state_fn, NULL);
	s_write(f, s_log_fn, NULL);
}

/* ================================================================= audit */

static int s_audit_put_fn(struct yj_txn *txn, void *arg)
{
	unsigned *n = arg;
	static const char *actions[] = { "disclosure", "release", "drop", "retry" };
	uint64_t seqs[2] = { 7, 8 };
	for (unsigned i = 0; i < *n; i++) {
		Yjlink__V1__AuditRecord a = YJLINK__V1__AUDIT_RECORD__INIT;
		a.has_at_us = 1;
		a.at_us = 1000 + i;
		a.action = (char *)actions[i % 4];
		a.actor = "yjlinkd";
		a.recipient = "yjs:mk";
		a.n_seqs = 2;
		a.seqs = seqs;
		CHECK(yj_audit_append(txn, &a) == 0);
		/* the number stays, the hashes (this call's) do not */
		CHECK(a.has_number && a.number > 0);
		CHECK(!a.has_hash && !a.hash.data && !a.has_prev_hash && !a.prev_hash.data);
	}
	return 0;
}

struct chain {
	int reverse;
	unsigned n;
	uint64_t numbers[16];
	char actions[16][16];
	uint8_t hash[16][32], prev[16][32];
};

static int s_chain_cb(void *arg, const Yjlink__V1__AuditRecord *r)
{
	struct chain *c = arg;
	if (c->n >= 16 || r->hash.len != 32 || r->prev_hash.len != 32)
		return YJ_EPROTO;
	c->numbers[c->n] = r->number;
	snprintf(c->actions[c->n], sizeof(c->actions[c->n]), "%s", r->action);
	memcpy(c->hash[c->n], r->hash.data, 32);
	memcpy(c->prev[c->n], r->prev_hash.data, 32);
	c->n++;
	return 0;
}

struct verdict {
	int rc;
	uint64_t checked, bad;
};

static int s_verify_fn(struct yj_txn *txn, void *arg)
{
	struct verdict *v = arg;
	v->rc = yj_audit_verify(txn, &v->checked, &v->bad);
	return 0;
}

static struct verdict s_verify(struct fx *f)
{
	struct verdict v = { 1, 0, 0 };
	/* a broken chain fails the read: the verdict is in v */
	yj_store_read(f->st, s_verify_fn, &v);
	return v;
}

static int s_chain_fn(struct yj_txn *txn, void *arg)
{
	struct chain *c = arg;
	return yj_audit_each(txn, c->reverse, s_chain_cb, c);
}

/* The hash is BLAKE2b-256 over the record packed with its hash empty (the
 * chain's format, computed here independently of db/audit.c); audit.head
 * is the last number and hash. */
static int s_audit_format_fn(struct yj_txn *txn, void *arg)
{
	struct chain *c = arg;
	uint8_t k[8], h[32], buf[1024];
	const void *v;
	size_t vlen;
	for (unsigned i = 0; i < c->n; i++) {
		yj_be64_put(k, i + 1);
		CHECK(yj_txn_get(txn, YJ_DB_AUDIT, k, 8, &v, &vlen) == 0);
		Yjlink__V1__AuditRecord *r = yjlink__v1__audit_record__unpack(NULL, vlen, v);
		CHECK(r != NULL);
		r->has_hash = 0;
		size_t len = protobuf_c_message_get_packed_size(&r->base);
		int ok = len <= sizeof(buf);
		if (ok) {
			ProtobufCBinaryData keep = r->hash;
			r->hash.data = NULL;
			r->hash.len = 0;
			protobuf_c_message_pack(&r->base, buf);
			r->hash = keep;
			crypto_generichash(h, 32, buf, len, NULL, 0);
			ok = !memcmp(h, c->hash[i], 32);
		}
		yjlink__v1__audit_record__free_unpacked(r, NULL);
		CHECK(ok);
	}
	const char *hk = "audit.head";
	CHECK(yj_txn_get(txn, YJ_DB_META, hk, strlen(hk), &v, &vlen) == 0);
	CHECK(vlen == 40 && yj_be64_get(v) == c->n && !memcmp((const uint8_t *)v + 8, c->hash[c->n - 1], 32));
	return 0;
}

static void test_audit_chain(void **state)
{
	struct fx *f = *state;
	unsigned n = 3;
	struct verdict v = s_verify(f);
	/* an empty log is intact */
	assert_int_equal(v.rc, 0);
	assert_int_equal(v.checked, 0);

	s_write(f, s_audit_put_fn, &n);
	v = s_verify(f);
	assert_int_equal(v.rc, 0);
	assert_int_equal(v.checked, 3);

	struct chain c = { .n = 0 };
	s_read(f, s_chain_fn, &c);
	assert_int_equal(c.n, 3);
	for (unsigned i = 0; i < 3; i++)
		assert_int_equal(c.numbers[i], i + 1);
	assert_string_equal(c.actions[0], "disclosure");
	assert_string_equal(c.actions[2], "drop");
	/* chained: the first from zeros, each from the one before */
	uint8_t zero[32] = { 0 };
	assert_memory_equal(c.prev[0], zero, 32);
	assert_memory_equal(c.prev[1], c.hash[0], 32);
	assert_memory_equal(c.prev[2], c.hash[1], 32);
	s_read(f, s_audit_format_fn, &c);

	struct chain r = { .reverse = 1 };
	s_read(f, s_chain_fn, &r);
	assert_int_equal(r.n, 3);
	assert_int_equal(r.numbers[0], 3);
	assert_int_equal(r.numbers[2], 1);

	/* after a restart the chain goes on from its last record */
	s_reopen(f);
	n = 2;
	s_write(f, s_audit_put_fn, &n);
	v = s_verify(f);
	assert_int_equal(v.rc, 0);
	assert_int_equal(v.checked, 5);
	memset(&c, 0, sizeof(c));
	s_read(f, s_chain_fn, &c);
	assert_int_equal(c.n, 5);
	assert_memory_equal(c.prev[3], c.hash[2], 32);
	s_read(f, s_audit_format_fn, &c);
}

/* A chain written as today's stores hold it, by hand through the generic
 * API: it verifies, and appending continues it. */
static int s_audit_by_hand_fn(struct yj_txn *txn, void *arg)
{
	(void)arg;
	uint8_t prev[32] = { 0 }, h[32], k[8], buf[1024], head[40];
	for (uint64_t i = 1; i <= 2; i++) {
		Yjlink__V1__AuditRecord a = YJLINK__V1__AUDIT_RECORD__INIT;
		a.has_number = a.has_at_us = a.has_prev_hash = 1;
		a.number = i;
		a.at_us = (int64_t)i * 10;
		a.action = "consultation";
		a.actor = "uid:1000";
		a.reason = "check";
		a.prev_hash.data = prev;
		a.prev_hash.len = 32;
		size_t len = protobuf_c_message_pack(&a.base, buf);
		crypto_generichash(h, 32, buf, len, NULL, 0);
		a.has_hash = 1;
		a.hash.data = h;
		a.hash.len = 32;
		len = protobuf_c_message_pack(&a.base, buf);
		yj_be64_put(k, i);
		CHECK(yj_txn_put(txn, YJ_DB_AUDIT, k, 8, buf, len) == 0);
		memcpy(prev, h, 32);
	}
	yj_be64_put(head, 2);
	memcpy(head + 8, prev, 32);
	CHECK(yj_txn_put(txn, YJ_DB_META, "audit.head", 10, head, sizeof(head)) == 0);
	return 0;
}

static void test_audit_existing_store(void **state)
{
	struct fx *f = *state;
	unsigned n = 1;
	s_write(f, s_audit_by_hand_fn, NULL);
	s_reopen(f);
	struct verdict v = s_verify(f);
	assert_int_equal(v.rc, 0);
	assert_int_equal(v.checked, 2);
	s_write(f, s_audit_put_fn, &n);
	v = s_verify(f);
	assert_int_equal(v.rc, 0);
	assert_int_equal(v.checked, 3);
	struct chain c = { .n = 0 };
	s_read(f, s_chain_fn, &c);
	assert_int_equal(c.numbers[2], 3);
	assert_memory_equal(c.prev[2], c.hash[1], 32);
	assert_string_equal(c.actions[0], "consultation");
}

/* Tampering, as an attacker with write access to the store would: one
 * record's field changed (its stored hash kept), one removed, the newest
 * cut off. */
struct tamper {
	int what;   /* 0 change record 2, 1 remove record 2, 2 remove the newest */
};

static int s_tamper_fn(struct yj_txn *txn, void *arg)
{
	struct tamper *t = arg;
	uint8_t k[8], buf[1024];
	const void *v;
	size_t vlen;
	yj_be64_put(k, t->what == 2 ? 4 : 2);
	if (t->what)
		return yj_txn_del(txn, YJ_DB_AUDIT, k, 8);
	CHECK(yj_txn_get(txn, YJ_DB_AUDIT, k, 8, &v, &vlen) == 0);
	Yjlink__V1__AuditRecord *r = yjlink__v1__audit_record__unpack(NULL, vlen, v);
	CHECK(r != NULL);
	char *keep = r->recipient;
	r->recipient = "yjs:elsewhere";
	size_t len = protobuf_c_message_get_packed_size(&r->base);
	if (len <= sizeof(buf))
		protobuf_c_message_pack(&r->base, buf);
	r->recipient = keep;
	yjlink__v1__audit_record__free_unpacked(r, NULL);
	CHECK(len <= sizeof(buf));
	CHECK(yj_txn_put(txn, YJ_DB_AUDIT, k, 8, buf, len) == 0);
	return 0;
}

static void test_audit_tamper(void **state)
{
	struct fx *f = *state;
	unsigned n = 4;
	s_write(f, s_audit_put_fn, &n);
	struct tamper t = { 0 };
	s_write(f, s_tamper_fn, &t);
	struct verdict v = s_verify(f);
	assert_int_equal(v.rc, YJ_ESTORE);
	assert_int_equal(v.checked, 1);
	assert_int_equal(v.bad, 2);
	/* the listing still shows every record */
	struct chain c = { .n = 0 };
	s_read(f, s_chain_fn, &c);
	assert_int_equal(c.n, 4);
}

static void test_audit_removed(void **state)
{
	struct fx *f = *state;
	unsigned n = 4;
	s_write(f, s_audit_put_fn, &n);
	struct tamper t = { 1 };
	s_write(f, s_tamper_fn, &t);
	struct verdict v = s_verify(f);
	assert_int_equal(v.rc, YJ_ESTORE);
	assert_int_equal(v.checked, 1);
	assert_int_equal(v.bad, 3);
}

static int s_audit_at_fn(struct yj_txn *txn, void *arg)
{
	const int64_t *at = arg;
	for (; *at; at++) {
		Yjlink__V1__AuditRecord a = YJLINK__V1__AUDIT_RECORD__INIT;
		a.has_at_us = 1;
		a.at_us = *at;
		a.action = "disclosure";
		CHECK(yj_audit_append(txn, &a) == 0);
	}
	return 0;
}

struct audit_cut {
	int64_t before;
	uint64_t erased, first, last;
	int more;
};

static int s_audit_cut_fn(struct yj_txn *txn, void *arg)
{
	struct audit_cut *c = arg;
	CHECK(yj_audit_erase_before(txn, c->before, 10, &c->erased, &c->first, &c->last, &c->more) == 0);
	return 0;
}

static int s_audit_number_fn(struct yj_txn *txn, void *arg)
{
	uint64_t *last = arg;
	CHECK(yj_txn_last_u64(txn, YJ_DB_AUDIT, last) == 0);
	return 0;
}

static void test_audit_retention(void **state)
{
	struct fx *f = *state;
	int64_t first[] = { 10, 20, 30, 40, 0 }, later[] = { 50, 0 };
	uint64_t last = 0;
	s_write(f, s_audit_at_fn, first);
	struct audit_cut c = { .before = 25 };
	s_write(f, s_audit_cut_fn, &c);
	assert_true(c.erased == 2 && c.first == 1 && c.last == 2 && !c.more);
	struct verdict v = s_verify(f);
	assert_int_equal(v.rc, 0);
	assert_int_equal(v.checked, 2);
	s_write(f, s_audit_at_fn, later);
	v = s_verify(f);
	assert_int_equal(v.rc, 0);
	assert_int_equal(v.checked, 3);
	/* Every record erased: the chain still goes on from its base. */
	c = (struct audit_cut){ .before = 100 };
	s_write(f, s_audit_cut_fn, &c);
	assert_true(c.erased == 3 && c.first == 3 && c.last == 5);
	s_write(f, s_audit_at_fn, later);
	s_read(f, s_audit_number_fn, &last);
	assert_int_equal(last, 6);
	v = s_verify(f);
	assert_int_equal(v.rc, 0);
	assert_int_equal(v.checked, 1);
}

static void test_audit_cut_off(void **state)
{
	struct fx *f = *state;
	unsigned n = 4;
	s_write(f, s_audit_put_fn, &n);
	struct tamper t = { 2 };
	s_write(f, s_tamper_fn, &t);
	struct verdict v = s_verify(f);
	/* each record left fits its predecessor: only audit.head shows the cut */
	assert_int_equal(v.rc, YJ_ESTORE);
	assert_int_equal(v.checked, 3);
	assert_int_equal(v.bad, 4);
}

/* ================================================================= audit anchors */

struct anchor_fx {
	uint64_t number;
	uint8_t hash[32];
	struct yj_audit_anchor a;
	int rc;
};

static int s_head_fn(struct yj_txn *txn, void *arg)
{
	struct anchor_fx *x = arg;
	CHECK(yj_audit_head(txn, &x->number, x->hash) == 0);
	return 0;
}

static int s_anchor_fn(struct yj_txn *txn, void *arg)
{
	struct anchor_fx *x = arg;
	x->rc = yj_audit_verify_anchor(txn, x->number, x->hash, &x->a);
	return 0;
}

/* The verdict on anchor (number, hash). */
static struct anchor_fx s_anchor(struct fx *f, uint64_t number, const uint8_t hash[32])
{
	struct anchor_fx x = { .number = number, .rc = 1 };
	memcpy(x.hash, hash, 32);
	s_read(f, s_anchor_fn, &x);
	return x;
}

static struct anchor_fx s_head(struct fx *f)
{
	struct anchor_fx x = { 0 };
	s_read(f, s_head_fn, &x);
	return x;
}

static void test_audit_anchor_proven(void **state)
{
	struct fx *f = *state;
	unsigned n = 3;
	uint8_t zero[32] = { 0 };
	/* nothing made yet: the head is 0 and zeros, and that proves (nothing) */
	struct anchor_fx h = s_head(f);
	assert_int_equal(h.number, 0);
	assert_memory_equal(h.hash, zero, 32);

	s_write(f, s_audit_put_fn, &n);
	h = s_head(f);
	assert_int_equal(h.number, 3);
	struct chain c = { .n = 0 };
	s_read(f, s_chain_fn, &c);
	assert_memory_equal(h.hash, c.hash[2], 32);
	struct anchor_fx v = s_anchor(f, h.number, h.hash);
	assert_int_equal(v.rc, 0);
	assert_int_equal(v.a.result, YJ_AUDIT_ANCHOR_PROVEN);
	assert_int_equal(v.a.checked, 3);
	assert_int_equal(v.a.head, 3);

	/* the log goes on: the earlier anchor is still proven */
	n = 2;
	s_write(f, s_audit_put_fn, &n);
	v = s_anchor(f, h.number, h.hash);
	assert_int_equal(v.rc, 0);
	assert_int_equal(v.a.result, YJ_AUDIT_ANCHOR_PROVEN);
	assert_int_equal(v.a.head, 5);

	/* a hash that is not record 3's; a record the log does not have */
	uint8_t other[32];
	memcpy(other, h.hash, 32);
	other[31] ^= 1;
	v = s_anchor(f, 3, other);
	assert_int_equal(v.rc, YJ_ESTORE);
	assert_int_equal(v.a.result, YJ_AUDIT_ANCHOR_DIFFERENT);
	assert_memory_equal(v.a.found, h.hash, 32);
	v = s_anchor(f, 9, h.hash);
	assert_int_equal(v.rc, YJ_ESTORE);
	assert_int_equal(v.a.result, YJ_AUDIT_ANCHOR_MISSING);
	assert_int_equal(v.a.head, 5);

	/* SEQ:HASH, as a digest prints it */
	char hex[65], text[80];
	uint64_t num = 0;
	uint8_t back[32];
	yj_audit_hex(h.hash, hex);
	assert_int_equal(strlen(hex), 64);
	for (const char *p = hex; *p; p++)
		assert_true((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f'));
	snprintf(text, sizeof(text), "3:%s", hex);
	assert_int_equal(yj_audit_parse_anchor(text, &num, back), 0);
	assert_int_equal(num, 3);
	assert_memory_equal(back, h.hash, 32);
	assert_int_equal(yj_audit_parse_anchor("3", &num, back), YJ_EINVAL);
	assert_int_equal(yj_audit_parse_anchor(":00", &num, back), YJ_EINVAL);
	text[strlen(text) - 1] = 'g';
	assert_int_equal(yj_audit_parse_anchor(text, &num, back), YJ_EINVAL);
	text[strlen(text) - 1] = '\0';
	assert_int_equal(yj_audit_parse_anchor(text, &num, back), YJ_EINVAL);
}

/* A full rewrite, as an attacker with write access to the store file and
 * the chain's format would make it: record 2 changed (or removed, the later
 * ones numbered down), every record from there re-hashed along the chain,
 * audit.head rewritten to the new last one. Hashes computed here, as
 * db/audit.c's format says, not by it. */
struct rewrite {
	int remove;   /* 0 change record 2, 1 remove it */
	unsigned n;   /* records before */
};

static int s_rewrite_fn(struct yj_txn *txn, void *arg)
{
	struct rewrite *w = arg;
	uint8_t k[8], prev[32], h[32], buf[1024], head[40];
	Yjlink__V1__AuditRecord *recs[16] = { NULL };
	const void *v;
	size_t vlen, m = 0;
	CHECK(w->n <= 16);
	for (unsigned i = 1; i <= w->n; i++) {
		yj_be64_put(k, i);
		CHECK(yj_txn_get(txn, YJ_DB_AUDIT, k, 8, &v, &vlen) == 0);
		CHECK((recs[m++] = yjlink__v1__audit_record__unpack(NULL, vlen, v)) != NULL);
		if (i >= 2)
			CHECK(yj_txn_del(txn, YJ_DB_AUDIT, k, 8) == 0);
	}
	memcpy(prev, recs[0]->hash.data, 32);
	uint64_t number = 1;
	int ok = 1;
	for (size_t i = 1; ok && i < m; i++) {
		Yjlink__V1__AuditRecord *r = recs[i];
		if (i == 1 && w->remove)
			continue;
		char *keep_rcpt = r->recipient;
		ProtobufCBinaryData keep_prev = r->prev_hash, keep_hash = r->hash;
		if (i == 1)
			r->recipient = "yjs:elsewhere";
		r->number = ++number;
		r->prev_hash.data = prev;
		r->prev_hash.len = 32;
		r->has_hash = 0;
		r->hash.data = NULL;
		r->hash.len = 0;
		size_t len = protobuf_c_message_get_packed_size(&r->base);
		ok = len <= sizeof(buf);
		if (ok) {
			protobuf_c_message_pack(&r->base, buf);
			crypto_generichash(h, 32, buf, len, NULL, 0);
			r->has_hash = 1;
			r->hash.data = h;
			r->hash.len = 32;
			len = protobuf_c_message_get_packed_size(&r->base);
			ok = len <= sizeof(buf);
		}
		if (ok) {
			protobuf_c_message_pack(&r->base, buf);
			yj_be64_put(k, number);
			ok = yj_txn_put(txn, YJ_DB_AUDIT, k, 8, buf, len) == 0;
			memcpy(prev, h, 32);
		}
		r->recipient = keep_rcpt;
		r->prev_hash = keep_prev;
		r->hash = keep_hash;
		r->has_hash = 1;
	}
	for (size_t i = 0; i < m; i++)
		yjlink__v1__audit_record__free_unpacked(recs[i], NULL);
	CHECK(ok);
	yj_be64_put(head, number);
	memcpy(head + 8, prev, 32);
	CHECK(yj_txn_put(txn, YJ_DB_META, "audit.head", 10, head, sizeof(head)) == 0);
	return 0;
}

static void s_anchor_rewrite(struct fx *f, int remove)
{
	unsigned n = 3;
	s_write(f, s_audit_put_fn, &n);
	struct anchor_fx sent = s_head(f); /* the anchor a digest carried: 3:... */
	n = 1;
	s_write(f, s_audit_put_fn, &n);
	struct anchor_fx last = s_head(f); /* 4:... */
	assert_int_equal(s_anchor(f, sent.number, sent.hash).rc, 0);

	struct rewrite w = { remove, 4 };
	s_write(f, s_rewrite_fn, &w);
	/* plain verify is fooled: the chain fits together and ends at audit.head */
	struct verdict v = s_verify(f);
	assert_int_equal(v.rc, 0);
	assert_int_equal(v.checked, remove ? 3 : 4);
	/* the anchor is not */
	struct anchor_fx a = s_anchor(f, sent.number, sent.hash);
	assert_int_equal(a.rc, YJ_ESTORE);
	assert_int_equal(a.a.result, YJ_AUDIT_ANCHOR_DIFFERENT);
	assert_memory_not_equal(a.a.found, sent.hash, 32);
	a = s_anchor(f, last.number, last.hash);
	assert_int_equal(a.rc, YJ_ESTORE);
	assert_int_equal(a.a.result, remove ? YJ_AUDIT_ANCHOR_MISSING : YJ_AUDIT_ANCHOR_DIFFERENT);
	assert_int_equal(a.a.head, remove ? 3 : 4);
	/* record 1, before the rewrite, still is what it was */
	struct chain c = { .n = 0 };
	s_read(f, s_chain_fn, &c);
	assert_int_equal(s_anchor(f, 1, c.hash[0]).rc, 0);
}

static void test_audit_anchor_rewrite_changed(void **state) { s_anchor_rewrite(*state, 0); }
static void test_audit_anchor_rewrite_removed(void **state) { s_anchor_rewrite(*state, 1); }

static void test_audit_anchor_erased(void **state)
{
	struct fx *f = *state;
	int64_t at[] = { 10, 20, 30, 40, 0 };
	s_write(f, s_audit_at_fn, at);
	struct chain c = { .n = 0 };
	s_read(f, s_chain_fn, &c);
	assert_int_equal(c.n, 4);
	struct audit_cut cut = { .before = 25 };
	s_write(f, s_audit_cut_fn, &cut);
	assert_true(cut.erased == 2 && cut.last == 2);
	/* record 1 is gone by retention: not provable, and said so, not "rewritten" */
	struct anchor_fx a = s_anchor(f, 1, c.hash[0]);
	assert_int_equal(a.rc, YJ_ESTORE);
	assert_int_equal(a.a.result, YJ_AUDIT_ANCHOR_ERASED);
	assert_int_equal(a.a.base, 2);
	/* the base itself is kept (its hash starts the chain): provable */
	a = s_anchor(f, 2, c.hash[1]);
	assert_int_equal(a.rc, 0);
	assert_int_equal(a.a.result, YJ_AUDIT_ANCHOR_PROVEN);
	uint8_t other[32];
	memcpy(other, c.hash[1], 32);
	other[0] ^= 0x80;
	assert_int_equal(s_anchor(f, 2, other).a.result, YJ_AUDIT_ANCHOR_DIFFERENT);
	a = s_anchor(f, 4, c.hash[3]);
	assert_int_equal(a.rc, 0);
	assert_int_equal(a.a.checked, 2);
}

int main(void)
{
	if (sodium_init() < 0)
		return 1;
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_events, setup, teardown),
		cmocka_unit_test_setup_teardown(test_retention_erases_with_indexes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_quarantine, setup, teardown),
		cmocka_unit_test_setup_teardown(test_quarantine_ids_not_reused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_quarantine_quota, setup, teardown),
		cmocka_unit_test_setup_teardown(test_quarantine_expire, setup, teardown),
		cmocka_unit_test_setup_teardown(test_holds, setup, teardown),
		cmocka_unit_test_setup_teardown(test_notes_numbers, setup, teardown),
		cmocka_unit_test_setup_teardown(test_notes_queues, setup, teardown),
		cmocka_unit_test(test_notes_pack_plain),
		cmocka_unit_test_setup_teardown(test_digests, setup, teardown),
		cmocka_unit_test_setup_teardown(test_audit_chain, setup, teardown),
		cmocka_unit_test_setup_teardown(test_audit_existing_store, setup, teardown),
		cmocka_unit_test_setup_teardown(test_audit_tamper, setup, teardown),
		cmocka_unit_test_setup_teardown(test_audit_removed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_audit_cut_off, setup, teardown),
		cmocka_unit_test_setup_teardown(test_audit_retention, setup, teardown),
		cmocka_unit_test_setup_teardown(test_audit_anchor_proven, setup, teardown),
		cmocka_unit_test_setup_teardown(test_audit_anchor_rewrite_changed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_audit_anchor_rewrite_removed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_audit_anchor_erased, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
