/* test_digest_plan.c: the digest planner (daemon/digest.c, yj_digest_tick
 * and what goes with it): when a YJS's daily digest is due in Europe/London
 * (clock changes included), the window each gets (gapless, over sequence
 * numbers), catch-up after downtime, no digest planned twice, resend and
 * preview. On a real store, a config read by the real loader against an
 * output the core has never heard of ("pigeon") and the injectable clock
 * (the fixture: core_fixture.h).
 *
 * Expected instants are written in UTC (s_utc) so the test does not work
 * out local time the way the code under test does.
 */
#include "core_fixture.h"

#include <cjson/cJSON.h>

#include "db/digests.h"
#include "digest.h"
#include "log.h"

/* The test output: the planner only needs it to exist (core_fixture.h). */
static const struct yj_adapter s_pigeon = { .conf = S_PIGEON_CONF };

/* The config, with the YJS's digest times (the test's prestate, default 07:30). */
static const char s_conf_fmt[] =
	"deployment = { id = \"tst\"; name = \"Digest test\"; force = \"" FORCE "\"; };\n"
	"pigeon = { speed = 4; };\n"
	"recipients = (\n"
	"  { id = \"yjs:mk\"; kind = \"yjs\"; name = \"MK YJS\"; local_authorities = [ \"E06000042\" ];\n"
	"    digest_times = [ %s ]; transport = \"pigeon\"; pigeon = { loft = \"mk\"; };\n"
	"    allow = [ \"source_id\", \"child.*\", \"custody.*\" ]; }\n"
	");\n"
	"rules = (\n"
	"  { id = \"custody_digest\"; feeds = [ \"custody\" ]; home_served = true; recipient = \"yjs:home\";\n"
	"    mode = \"digest\"; }\n"
	");\n";

/* --- fixture --- */

struct fx {
	struct core_fx c;
	struct yj_digest *dg;
};

static int s_pigeon_state = 1; /* a non-NULL state: the adapter is running */

static int setup(void **state)
{
	const char *times = *state ? *state : "\"07:30\"";
	struct fx *f = calloc(1, sizeof(*f));
	if (!f || s_fx_open(&f->c, "digest", s_conf_fmt, times, &s_pigeon, &s_pigeon_state) != 0)
		return -1;
	/* The planner's own timer never runs: the loop is not run, the test ticks. */
	if (yj_digest_start(&f->c.core, &f->dg) != 0)
		return -1;
	f->c.core.digest = f->dg;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	yj_digest_stop(&f->dg);
	s_fx_close(&f->c);
	free(f);
	return 0;
}

/* A custody event stored and routed at the given instant: one digest entry for yjs:mk. */
static uint64_t s_event_at(struct fx *f, int64_t at, const char *person, const char *record)
{
	struct ev e = { .person_id = person, .record_id = record };
	struct yj_route_counts c;
	yj_clock_set_us(at);
	uint64_t seq = s_event(&f->c, &e, &c);
	assert_int_equal(c.digest, 1);
	return seq;
}

/* --- reading back (copied out: no assert inside a transaction) --- */

#define S_MAX 32

/* The digest jobs waiting in the outbox, in number order. */
static void s_digest_jobs(struct fx *f, struct jobs *j)
{
	struct jobs all;
	s_jobs(&f->c, YJ_NOTES_OUTBOX, &all);
	memset(j, 0, sizeof(*j));
	for (size_t i = 0; i < all.n; i++) {
		if (all.v[i]->digest)
			j->v[j->n++] = all.v[i];
		else
			yjlink__v1__notification__free_unpacked(all.v[i], NULL);
	}
	for (size_t i = 1; i < j->n; i++)
		assert_true(j->v[i]->number > j->v[i - 1]->number);
}

struct logs {
	Yjlink__V1__Digest *v[S_MAX];
	size_t n;
};

static int s_log_cb(void *arg, const Yjlink__V1__Digest *d)
{
	struct logs *l = arg;
	if (l->n == S_MAX)
		return 1;
	size_t len = yjlink__v1__digest__get_packed_size(d);
	uint8_t *buf = malloc(len ? len : 1);
	if (!buf)
		return YJ_ENOMEM;
	yjlink__v1__digest__pack(d, buf);
	l->v[l->n] = yjlink__v1__digest__unpack(NULL, len, buf);
	free(buf);
	if (!l->v[l->n])
		return YJ_ENOMEM;
	l->n++;
	return 0;
}

struct s_read_state {
	struct logs *l;
	Yjlink__V1__DigestState *st;
};

static int s_read_state_fn(struct yj_txn *txn, void *arg)
{
	struct s_read_state *r = arg;
	r->st = yj_digests_state_get(txn, "yjs:mk");
	int rc = r->l ? yj_digests_log_each(txn, "yjs:mk", s_log_cb, r->l) : 0;
	return rc < 0 ? rc : 0;
}

static void s_logs(struct fx *f, struct logs *l)
{
	struct s_read_state r = { l, NULL };
	memset(l, 0, sizeof(*l));
	assert_int_equal(yj_store_read(f->c.st, s_read_state_fn, &r), 0);
	yjlink__v1__digest_state__free_unpacked(r.st, NULL);
}

static void s_logs_free(struct logs *l)
{
	for (size_t i = 0; i < l->n; i++)
		yjlink__v1__digest__free_unpacked(l->v[i], NULL);
	l->n = 0;
}

/* The YJS's digest state (caller frees), or NULL. */
static Yjlink__V1__DigestState *s_state(struct fx *f)
{
	struct s_read_state r = { NULL, NULL };
	assert_int_equal(yj_store_read(f->c.st, s_read_state_fn, &r), 0);
	return r.st;
}

/* Every digest due at `at`: a tick stops at its 20 ms budget (digest.c),
 * and on a busy machine the rest are planned by the next ticks. */
static int s_tick_at(struct fx *f, int64_t at)
{
	int total = 0, n;
	yj_clock_set_us(at);
	while ((n = yj_digest_tick(f->dg)) > 0)
		total += n;
	return n < 0 ? n : total;
}

/* --- the cases --- */

static void test_first_tick_state_only(void **state)
{
	struct fx *f = *state;
	struct jobs j;
	struct logs l;

	/* An event stored before the planner ever saw the YJS. */
	uint64_t s1 = s_event_at(f, s_utc(2026, 6, 10, 4, 0), "P1", "CR1");
	assert_null(s_state(f));
	/* Wednesday 2026-06-10 12:00 BST, after today's 07:30: the first tick
	 * makes the state only, it plans no digest for a send time it never knew. */
	assert_int_equal(s_tick_at(f, s_utc(2026, 6, 10, 11, 0)), 0);
	Yjlink__V1__DigestState *st = s_state(f);
	assert_non_null(st);
	assert_string_equal(st->yjs, "yjs:mk");
	assert_true(st->last_scheduled_us >= s_utc(2026, 6, 10, 11, 0) && st->last_scheduled_us < s_utc(2026, 6, 10, 11, 1));
	assert_int_equal(st->last_end_seq, 0);
	assert_int_equal(st->n_open_custody, 0);
	yjlink__v1__digest_state__free_unpacked(st, NULL);
	s_jobs(&f->c, YJ_NOTES_OUTBOX, &j);
	assert_int_equal(j.n, 0);
	s_jobs(&f->c, YJ_NOTES_UNROUTABLE, &j);
	assert_int_equal(j.n, 0);
	s_logs(f, &l);
	assert_int_equal(l.n, 0);
	assert_int_equal(yj_digest_tick(f->dg), 0);

	/* The first digest covers everything stored so far. */
	assert_int_equal(s_tick_at(f, s_utc(2026, 6, 11, 6, 31)), 1);
	s_digest_jobs(f, &j);
	assert_int_equal(j.n, 1);
	assert_int_equal(j.v[0]->digest->start_seq, 0);
	assert_int_equal(j.v[0]->digest->end_seq, s1);
	s_jobs_free(&j);
}

static void test_plan_one(void **state)
{
	struct fx *f = *state;
	struct jobs j, u;
	struct logs l;

	assert_int_equal(s_tick_at(f, s_utc(2026, 6, 10, 5, 0)), 0); /* 06:00 BST: state only */
	uint64_t s1 = s_event_at(f, s_utc(2026, 6, 10, 5, 10), "P1", "CR1");
	uint64_t s2 = s_event_at(f, s_utc(2026, 6, 10, 5, 20), "P2", "CR2");
	assert_int_equal(s1, 1);
	assert_int_equal(s2, 2);

	/* Before the 07:30 send time: nothing. */
	assert_int_equal(s_tick_at(f, s_utc(2026, 6, 10, 6, 0)), 0);
	assert_int_equal(s_tick_at(f, s_utc(2026, 6, 10, 6, 29)), 0);
	s_digest_jobs(f, &j);
	assert_int_equal(j.n, 0);

	/* Stored after the send time: the next window's. */
	uint64_t s3 = s_event_at(f, s_utc(2026, 6, 10, 6, 31), "P3", "CR3");
	assert_int_equal(yj_digest_tick(f->dg), 1);
	s_digest_jobs(f, &j);
	assert_int_equal(j.n, 1);
	const Yjlink__V1__Notification *n = j.v[0];
	const Yjlink__V1__Digest *d = n->digest;
	assert_string_equal(n->recipient, "yjs:mk");
	assert_string_equal(n->kind, "daily_digest");
	assert_false(n->has_seq && n->seq);
	assert_string_equal(d->id, "tst-digest-mk-20260610T0730");
	assert_string_equal(d->yjs, "yjs:mk");
	assert_int_equal(d->scheduled_us, s_utc(2026, 6, 10, 6, 30)); /* 07:30 BST */
	assert_true(d->start_us >= s_utc(2026, 6, 10, 5, 0) && d->start_us < s_utc(2026, 6, 10, 5, 1));
	assert_int_equal(d->start_seq, 0);
	assert_int_equal(d->end_seq, s2);
	assert_int_equal(d->n_open_before, 0);
	assert_false(d->has_resend && d->resend);
	s_jobs(&f->c, YJ_NOTES_UNROUTABLE, &u);
	assert_int_equal(u.n, 0);

	/* The log and the state say the same. */
	s_logs(f, &l);
	assert_int_equal(l.n, 1);
	assert_string_equal(l.v[0]->id, d->id);
	assert_int_equal(l.v[0]->scheduled_us, d->scheduled_us);
	assert_int_equal(l.v[0]->start_seq, 0);
	assert_int_equal(l.v[0]->end_seq, s2);
	assert_false(l.v[0]->has_sent_at_us && l.v[0]->sent_at_us);
	s_logs_free(&l);
	Yjlink__V1__DigestState *st = s_state(f);
	assert_int_equal(st->last_scheduled_us, s_utc(2026, 6, 10, 6, 30));
	assert_int_equal(st->last_end_seq, s2);
	assert_int_equal(st->planned, 1);
	assert_int_equal(st->sent, 0);
	/* Both custody records were still open at 07:30 (s3's came after). */
	assert_int_equal(st->n_open_custody, 2);
	assert_string_equal(st->open_custody[0], FORCE "/CR1");
	assert_string_equal(st->open_custody[1], FORCE "/CR2");
	yjlink__v1__digest_state__free_unpacked(st, NULL);
	s_jobs_free(&j);

	/* Never planned twice. */
	assert_int_equal(yj_digest_tick(f->dg), 0);
	assert_int_equal(s_tick_at(f, s_utc(2026, 6, 10, 12, 0)), 0);
	s_digest_jobs(f, &j);
	assert_int_equal(j.n, 1);
	s_jobs_free(&j);

	/* Thursday's starts where Wednesday's ended, with what was still open. */
	assert_int_equal(s_tick_at(f, s_utc(2026, 6, 11, 6, 31)), 1);
	s_digest_jobs(f, &j);
	assert_int_equal(j.n, 2);
	d = j.v[1]->digest;
	assert_string_equal(d->id, "tst-digest-mk-20260611T0730");
	assert_int_equal(d->start_us, s_utc(2026, 6, 10, 6, 30));
	assert_int_equal(d->scheduled_us, s_utc(2026, 6, 11, 6, 30));
	assert_int_equal(d->start_seq, s2);
	assert_int_equal(d->end_seq, s3);
	assert_int_equal(d->n_open_before, 2);
	s_jobs_free(&j);
}

static void test_catch_up(void **state)
{
	struct fx *f = *state;
	struct jobs j;
	struct logs l;

	/* Wednesday 08:00 BST: state only (today's 07:30 is before it). */
	assert_int_equal(s_tick_at(f, s_utc(2026, 6, 10, 7, 0)), 0);
	uint64_t s1 = s_event_at(f, s_utc(2026, 6, 10, 8, 0), "P1", "CR1");
	uint64_t s2 = s_event_at(f, s_utc(2026, 6, 11, 8, 0), "P2", "CR2");
	uint64_t s3 = s_event_at(f, s_utc(2026, 6, 12, 8, 0), "P3", "CR3");
	(void)s1;

	/* The planner was down until Saturday 08:00: Thursday's, Friday's and
	 * Saturday's digests, oldest first, each with the window it should have had. */
	assert_int_equal(s_tick_at(f, s_utc(2026, 6, 13, 7, 0)), 3);
	s_digest_jobs(f, &j);
	assert_int_equal(j.n, 3);
	static const char *const ids[] = { "tst-digest-mk-20260611T0730", "tst-digest-mk-20260612T0730",
					   "tst-digest-mk-20260613T0730" };
	const uint64_t ends[] = { 1, 2, 3 };
	for (size_t i = 0; i < 3; i++) {
		const Yjlink__V1__Digest *d = j.v[i]->digest;
		assert_string_equal(d->id, ids[i]);
		assert_int_equal(d->scheduled_us, s_utc(2026, 6, 11 + (int)i, 6, 30));
		assert_int_equal(d->end_seq, ends[i]);
		if (i == 0) {
			assert_int_equal(d->start_seq, 0);
			assert_true(d->start_us >= s_utc(2026, 6, 10, 7, 0) && d->start_us < s_utc(2026, 6, 10, 7, 1));
		} else {
			/* Gapless: each starts where the one before ended. */
			assert_int_equal(d->start_seq, j.v[i - 1]->digest->end_seq);
			assert_int_equal(d->start_us, j.v[i - 1]->digest->scheduled_us);
		}
	}
	assert_int_equal(j.v[2]->digest->end_seq, s3);
	assert_int_equal(j.v[1]->digest->end_seq, s2);
	s_jobs_free(&j);
	s_logs(f, &l);
	assert_int_equal(l.n, 3);
	s_logs_free(&l);

	/* Nothing again. */
	assert_int_equal(yj_digest_tick(f->dg), 0);
	s_digest_jobs(f, &j);
	assert_int_equal(j.n, 3);
	s_jobs_free(&j);
	Yjlink__V1__DigestState *st = s_state(f);
	assert_int_equal(st->planned, 3);
	assert_int_equal(st->last_end_seq, s3);
	assert_int_equal(st->last_scheduled_us, s_utc(2026, 6, 13, 6, 30));
	yjlink__v1__digest_state__free_unpacked(st, NULL);
}

/* Prestate "01:30": a time missing on the spring-forward day and doubled in autumn. */
static void test_spring_forward(void **state)
{
	struct fx *f = *state;
	struct jobs j;
	struct logs l;

	/* Saturday 2026-03-28 12:00 GMT. */
	assert_int_equal(s_tick_at(f, s_utc(2026, 3, 28, 12, 0)), 0);
	s_event_at(f, s_utc(2026, 3, 28, 20, 0), "P1", "CR1");
	/* Sunday 2026-03-29: 01:00 GMT becomes 02:00 BST; 01:30 does not exist
	 * and is taken as 02:30 BST (01:30 UTC), once. */
	assert_int_equal(s_tick_at(f, s_utc(2026, 3, 29, 1, 0)), 0);  /* 02:00 BST */
	assert_int_equal(s_tick_at(f, s_utc(2026, 3, 29, 1, 29)), 0); /* 02:29 BST */
	assert_int_equal(s_tick_at(f, s_utc(2026, 3, 29, 4, 0)), 1);  /* 05:00 BST */
	s_digest_jobs(f, &j);
	assert_int_equal(j.n, 1);
	assert_int_equal(j.v[0]->digest->scheduled_us, s_utc(2026, 3, 29, 1, 30));
	assert_string_equal(j.v[0]->digest->id, "tst-digest-mk-20260329T0230");
	assert_int_equal(j.v[0]->digest->end_seq, 1);
	s_jobs_free(&j);
	assert_int_equal(yj_digest_tick(f->dg), 0);
	assert_int_equal(s_tick_at(f, s_utc(2026, 3, 29, 22, 0)), 0);
	/* Monday: 01:30 BST again. */
	assert_int_equal(s_tick_at(f, s_utc(2026, 3, 30, 1, 0)), 1);
	s_digest_jobs(f, &j);
	assert_int_equal(j.n, 2);
	assert_int_equal(j.v[1]->digest->scheduled_us, s_utc(2026, 3, 30, 0, 30));
	assert_string_equal(j.v[1]->digest->id, "tst-digest-mk-20260330T0130");
	assert_int_equal(j.v[1]->digest->start_us, s_utc(2026, 3, 29, 1, 30));
	s_jobs_free(&j);
	s_logs(f, &l);
	assert_int_equal(l.n, 2);
	s_logs_free(&l);
}

static void test_autumn_once(void **state)
{
	struct fx *f = *state;
	struct jobs j;

	/* Saturday 2026-10-24 12:00 BST; on Sunday 01:00-02:00 BST is followed by 01:00-02:00 GMT. */
	assert_int_equal(s_tick_at(f, s_utc(2026, 10, 24, 11, 0)), 0);
	assert_int_equal(s_tick_at(f, s_utc(2026, 10, 25, 5, 0)), 1);
	assert_int_equal(s_tick_at(f, s_utc(2026, 10, 25, 23, 0)), 0);
	s_digest_jobs(f, &j);
	assert_int_equal(j.n, 1);
	int64_t t = j.v[0]->digest->scheduled_us;
	assert_true(t == s_utc(2026, 10, 25, 0, 30) || t == s_utc(2026, 10, 25, 1, 30));
	assert_string_equal(j.v[0]->digest->id, "tst-digest-mk-20261025T0130");
	s_jobs_free(&j);
	/* Monday 01:30 GMT. */
	assert_int_equal(s_tick_at(f, s_utc(2026, 10, 26, 2, 0)), 1);
	s_digest_jobs(f, &j);
	assert_int_equal(j.n, 2);
	assert_int_equal(j.v[1]->digest->scheduled_us, s_utc(2026, 10, 26, 1, 30));
	s_jobs_free(&j);
}

static void test_next_after(void **state)
{
	(void)state;
	char *t0730[] = { "07:30" }, *t0130[] = { "01:30" }, *two[] = { "16:00", "07:00" };
	struct yj_strlist l0730 = { t0730, 1 }, l0130 = { t0130, 1 }, ltwo = { two, 2 }, none = { NULL, 0 };

	/* Summer: local 07:30 is 06:30 UTC; strictly after. */
	assert_int_equal(yj_digest_next_after(&l0730, s_utc(2026, 6, 10, 6, 0)), s_utc(2026, 6, 10, 6, 30));
	assert_int_equal(yj_digest_next_after(&l0730, s_utc(2026, 6, 10, 6, 30)), s_utc(2026, 6, 11, 6, 30));
	/* Two times a day, in any order. */
	assert_int_equal(yj_digest_next_after(&ltwo, s_utc(2026, 6, 10, 6, 0)), s_utc(2026, 6, 10, 15, 0));
	assert_int_equal(yj_digest_next_after(&ltwo, s_utc(2026, 6, 10, 5, 59)), s_utc(2026, 6, 10, 6, 0));
	assert_int_equal(yj_digest_next_after(&ltwo, s_utc(2026, 6, 10, 15, 0)), s_utc(2026, 6, 11, 6, 0));
	/* Across the autumn change: Saturday 08:00 BST -> Sunday 07:30 GMT, 25 hours on. */
	assert_int_equal(yj_digest_next_after(&l0730, s_utc(2026, 10, 24, 7, 0)), s_utc(2026, 10, 25, 7, 30));
	assert_int_equal(yj_digest_next_after(&l0730, s_utc(2026, 10, 24, 6, 0)), s_utc(2026, 10, 24, 6, 30));
	/* 01:30 happens twice on 2026-10-25: it is taken once, then Monday's. */
	int64_t n1 = yj_digest_next_after(&l0130, s_utc(2026, 10, 24, 11, 0));
	assert_true(n1 == s_utc(2026, 10, 25, 0, 30) || n1 == s_utc(2026, 10, 25, 1, 30));
	assert_int_equal(yj_digest_next_after(&l0130, n1), s_utc(2026, 10, 26, 1, 30));
	/* Spring: Saturday 08:00 GMT -> Sunday 07:30 BST, 23 hours on. */
	assert_int_equal(yj_digest_next_after(&l0730, s_utc(2026, 3, 28, 8, 0)), s_utc(2026, 3, 29, 6, 30));
	assert_int_equal(yj_digest_next_after(&l0130, s_utc(2026, 3, 28, 12, 0)), s_utc(2026, 3, 29, 1, 30));
	/* No times: never. */
	assert_true(yj_digest_next_after(&none, s_utc(2026, 6, 10, 6, 0)) == INT64_MAX);
}

static void test_resend(void **state)
{
	struct fx *f = *state;
	struct jobs j;
	struct logs l;
	char err[256] = "";

	assert_int_equal(s_tick_at(f, s_utc(2026, 6, 10, 5, 0)), 0);
	s_event_at(f, s_utc(2026, 6, 10, 5, 10), "P1", "CR1");
	assert_int_equal(s_tick_at(f, s_utc(2026, 6, 10, 7, 0)), 1);

	assert_int_equal(yj_digest_resend(f->dg, "yjs:mk", "2026-06-10", "uid:1000", err, sizeof(err)), 1);
	s_digest_jobs(f, &j);
	assert_int_equal(j.n, 2);
	const Yjlink__V1__Digest *a = j.v[0]->digest, *b = j.v[1]->digest;
	assert_false(a->has_resend && a->resend);
	assert_true(b->has_resend && b->resend);
	assert_string_equal(b->actor, "uid:1000");
	assert_string_equal(b->id, a->id); /* the same digest id */
	assert_string_equal(b->id, "tst-digest-mk-20260610T0730");
	assert_int_equal(b->scheduled_us, a->scheduled_us);
	assert_int_equal(b->start_seq, a->start_seq);
	assert_int_equal(b->end_seq, a->end_seq);
	assert_int_not_equal(j.v[1]->number, j.v[0]->number); /* another job */
	assert_string_equal(j.v[1]->recipient, "yjs:mk");
	s_jobs_free(&j);
	/* A resend changes nothing of the schedule. */
	s_logs(f, &l);
	assert_int_equal(l.n, 1);
	s_logs_free(&l);
	Yjlink__V1__DigestState *st = s_state(f);
	assert_int_equal(st->planned, 1);
	assert_int_equal(st->last_scheduled_us, s_utc(2026, 6, 10, 6, 30));
	yjlink__v1__digest_state__free_unpacked(st, NULL);

	/* Refusals. */
	err[0] = '\0';
	assert_int_equal(yj_digest_resend(f->dg, "yjs:mk", "2026-06-09", "uid:1000", err, sizeof(err)), YJ_ENOENT);
	assert_true(err[0] != '\0');
	err[0] = '\0';
	assert_int_equal(yj_digest_resend(f->dg, "yjs:mk", "10/06/2026", "uid:1000", err, sizeof(err)), YJ_EINVAL);
	assert_true(err[0] != '\0');
	err[0] = '\0';
	assert_int_equal(yj_digest_resend(f->dg, "yjs:nobody", "2026-06-10", "uid:1000", err, sizeof(err)), YJ_ENOENT);
	assert_true(err[0] != '\0');
	s_digest_jobs(f, &j);
	assert_int_equal(j.n, 2);
	s_jobs_free(&j);
}

/* The rows of a digest's JSON whose column col is val. */
static int s_rows_with(const cJSON *root, const char *col, const char *val, const char *section)
{
	int n = 0;
	const cJSON *row;
	cJSON_ArrayForEach(row, cJSON_GetObjectItemCaseSensitive(root, "rows")) {
		const cJSON *c = cJSON_GetObjectItemCaseSensitive(row, col);
		const cJSON *s = cJSON_GetObjectItemCaseSensitive(row, "section");
		if (cJSON_IsString(c) && !strcmp(c->valuestring, val) &&
		    (!section || (cJSON_IsString(s) && !strcmp(s->valuestring, section))))
			n++;
	}
	return n;
}

static int s_has_seq(const struct yj_digest_content *c, uint64_t seq)
{
	for (size_t i = 0; i < c->n_seqs; i++) {
		if (c->seqs[i] == seq)
			return 1;
	}
	return 0;
}

static void test_preview(void **state)
{
	struct fx *f = *state;
	struct yj_digest_content c;
	char err[256] = "";

	assert_int_equal(s_tick_at(f, s_utc(2026, 6, 10, 5, 0)), 0);
	uint64_t s1 = s_event_at(f, s_utc(2026, 6, 10, 5, 10), "P1", "CR1");
	uint64_t s2 = s_event_at(f, s_utc(2026, 6, 10, 5, 20), "P2", "CR2");
	assert_int_equal(s_tick_at(f, s_utc(2026, 6, 10, 7, 0)), 1);
	/* Routed since the last window: in the next digest as it stands now. */
	uint64_t s3 = s_event_at(f, s_utc(2026, 6, 10, 9, 0), "P3", "CR3");

	assert_int_equal(yj_digest_preview(f->dg, "yjs:mk", NULL, YJ_DIGEST_ALL, &c, err, sizeof(err)), 0);
	assert_string_equal(c.id, "tst-digest-mk-20260611T0730");
	assert_int_equal(c.events, 1);
	assert_true(s_has_seq(&c, s3));
	cJSON *root = cJSON_Parse(c.json);
	assert_non_null(root);
	assert_string_equal(cJSON_GetObjectItemCaseSensitive(root, "digest_id")->valuestring, c.id);
	assert_string_equal(cJSON_GetObjectItemCaseSensitive(root, "recipient")->valuestring, "yjs:mk");
	assert_int_equal(s_rows_with(root, "seq", "3", "custody"), 1);
	/* The earlier events are the last window's: here only as still in custody. */
	assert_int_equal(s_rows_with(root, "seq", "1", "custody"), 0);
	assert_int_equal(s_rows_with(root, "seq", "2", "custody"), 0);
	assert_int_equal(s_rows_with(root, "seq", "1", "still_in_custody"), 1);
	const cJSON *win = cJSON_GetObjectItemCaseSensitive(root, "window");
	assert_string_equal(cJSON_GetObjectItemCaseSensitive(win, "from")->valuestring, "2026-06-10T06:30:00Z");
	cJSON_Delete(root);
	yj_digest_content_free(&c);

	/* The one planned for a date, exactly as it went. */
	assert_int_equal(yj_digest_preview(f->dg, "yjs:mk", "2026-06-10", YJ_DIGEST_ALL, &c, err, sizeof(err)), 0);
	assert_string_equal(c.id, "tst-digest-mk-20260610T0730");
	assert_string_equal(c.date, "2026-06-10");
	assert_string_equal(c.window_to, "2026-06-10T06:30:00Z");
	assert_int_equal(c.events, 2);
	assert_true(s_has_seq(&c, s1));
	assert_true(s_has_seq(&c, s2));
	assert_false(s_has_seq(&c, s3));
	yj_digest_content_free(&c);

	/* Refusals. */
	err[0] = '\0';
	assert_int_equal(yj_digest_preview(f->dg, "yjs:mk", "2026-06-09", YJ_DIGEST_ALL, &c, err, sizeof(err)), YJ_ENOENT);
	assert_true(err[0] != '\0');
	yj_digest_content_free(&c);
	err[0] = '\0';
	assert_int_equal(yj_digest_preview(f->dg, "yjs:nobody", NULL, YJ_DIGEST_ALL, &c, err, sizeof(err)), YJ_ENOENT);
	yj_digest_content_free(&c);
}

int main(void)
{
	setenv("TZ", "Europe/London", 1);
	tzset();
	yj_log_set_level(YJ_LOG_WARNING);
	static char t0130[] = "\"01:30\"";
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_first_tick_state_only, setup, teardown),
		cmocka_unit_test_setup_teardown(test_plan_one, setup, teardown),
		cmocka_unit_test_setup_teardown(test_catch_up, setup, teardown),
		cmocka_unit_test_prestate_setup_teardown(test_spring_forward, setup, teardown, t0130),
		cmocka_unit_test_prestate_setup_teardown(test_autumn_once, setup, teardown, t0130),
		cmocka_unit_test(test_next_after),
		cmocka_unit_test_setup_teardown(test_resend, setup, teardown),
		cmocka_unit_test_setup_teardown(test_preview, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
