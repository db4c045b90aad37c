/* test_route.c: who is told about a stored event (daemon/route.c): rule
 * matching, recipient expressions, L&D opening hours, and what routing,
 * replay and hold release write into the store (digest entries, outbox and
 * unroutable jobs, holds), on a real store and a config read by the real
 * loader against "pigeon", an output the core has never heard of (the
 * fixture: core_fixture.h).
 *
 * Times are Europe/London (set in main). Expected instants are written in
 * UTC (s_utc), so the test does not compute local time the way the code
 * under test does.
 */
#include "core_fixture.h"

#include "db/digests.h"
#include "db/holds.h"
#include "log.h"
#include "normalise.h"
#include "strjoin.h"

/* The test output: routing only needs it to exist (core_fixture.h). */
static const struct yj_adapter s_pigeon = { .conf = S_PIGEON_CONF };

/* --- the config --- */

static const char s_conf_text[] =
	"deployment = { id = \"tst\"; name = \"Route test\"; force = \"" FORCE "\"; };\n"
	"pigeon = { speed = 4; };\n"
	"recipients = (\n"
	"  { id = \"yjs:mk\"; kind = \"yjs\"; name = \"MK YJS\"; local_authorities = [ \"E06000042\" ];\n"
	"    digest_times = [ \"07:30\" ]; transport = \"pigeon\"; pigeon = { loft = \"mk\"; };\n"
	"    allow = [ \"child.*\", \"custody.*\" ]; },\n"
	"  { id = \"children_services:E06000042\"; kind = \"children_services\"; name = \"MK CS\";\n"
	"    local_authority = \"E06000042\"; transport = \"pigeon\"; pigeon = { loft = \"cs\"; };\n"
	"    allow = [ \"child.*\" ]; },\n"
	"  { id = \"liaison_diversion:tvp\"; kind = \"liaison_diversion\"; name = \"TV L&D\"; suites = [ \"TVP-MK\" ];\n"
	"    " S_HOURS "\n"
	"    transport = \"pigeon\"; pigeon = { loft = \"ld\"; }; allow = [ \"child.*\", \"custody.*\" ]; }\n"
	");\n"
	"rules = (\n"
	"  { id = \"custody_digest\"; feeds = [ \"custody\" ]; home_served = true; recipient = \"yjs:home\";\n"
	"    mode = \"digest\"; },\n"
	"  { id = \"lac_in_custody\"; feeds = [ \"custody\" ]; looked_after = true;\n"
	"    recipient = \"children_services:responsible_la\"; mode = \"immediate\"; legal_basis = \"Children Act 1989 s.22\"; },\n"
	"  { id = \"liaison_diversion\"; feeds = [ \"custody\" ]; custody_status = [ \"detained\" ];\n"
	"    recipient = \"liaison_diversion:suite\"; mode = \"immediate\"; }\n"
	");\n";

/* --- fixture --- */

struct fx {
	struct core_fx c;
};

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	if (!f || s_fx_open(&f->c, "route", s_conf_text, "", &s_pigeon, NULL) != 0)
		return -1;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	s_fx_close(&f->c);
	free(f);
	return 0;
}

/* An unpacked event for yj_route_resolve and yj_route_facts (no store). */
struct s_ev_mem {
	Yjlink__V1__Event ev;
	Yjlink__V1__Child ch;
	Yjlink__V1__Custody cu;
	Yjlink__V1__Arrest ar;
	Yjlink__V1__Time occ;
};

static void s_ev_mem(struct s_ev_mem *m, const char *feed, const char *home, int lac, const char *resp, const char *suite)
{
	Yjlink__V1__Event ev = YJLINK__V1__EVENT__INIT;
	Yjlink__V1__Child ch = YJLINK__V1__CHILD__INIT;
	Yjlink__V1__Custody cu = YJLINK__V1__CUSTODY__INIT;
	Yjlink__V1__Arrest ar = YJLINK__V1__ARREST__INIT;
	Yjlink__V1__Time occ = YJLINK__V1__TIME__INIT;
	m->ev = ev;
	m->ch = ch;
	m->cu = cu;
	m->ar = ar;
	m->occ = occ;
	m->occ.has_unix_us = m->occ.has_offset_minutes = 1;
	m->occ.unix_us = s_utc(2026, 6, 10, 9, 0);
	m->occ.offset_minutes = 60;
	m->ev.source_id = "R1";
	m->ev.force = FORCE;
	m->ev.occurred_at = &m->occ;
	m->ev.child = &m->ch;
	m->ch.person_id = "P9";
	m->ch.date_of_birth = "2010-03-01";
	m->ch.home_la = (char *)home;
	m->ch.has_looked_after = 1;
	m->ch.looked_after = lac ? 1 : 0;
	m->ch.responsible_la = (char *)resp;
	if (!strcmp(feed, "custody")) {
		m->ev.body_case = YJLINK__V1__EVENT__BODY_CUSTODY;
		m->ev.custody = &m->cu;
		m->cu.record_id = "CR9";
		m->cu.suite = (char *)suite;
		m->cu.status = "detained";
	} else {
		m->ev.body_case = YJLINK__V1__EVENT__BODY_ARREST;
		m->ev.arrest = &m->ar;
		m->ar.arrest_id = "A9";
	}
}

/* --- reading back what routing wrote (copied out: no assert inside a transaction) --- */

/* The job of recipient rcpt (and kind, when given) in j, or NULL. */
static const Yjlink__V1__Notification *s_find(const struct jobs *j, const char *rcpt, const char *kind)
{
	for (size_t i = 0; i < j->n; i++) {
		if (!strcmp(j->v[i]->recipient, rcpt) && (!kind || !strcmp(j->v[i]->kind, kind)))
			return j->v[i];
	}
	return NULL;
}

struct entries {
	uint64_t seq[32];
	char rule[32][64];
	size_t n;
};

static int s_entry_cb(void *arg, uint64_t seq, const char *rule)
{
	struct entries *e = arg;
	if (e->n == 32)
		return 1;
	e->seq[e->n] = seq;
	snprintf(e->rule[e->n], sizeof(e->rule[e->n]), "%s", rule);
	e->n++;
	return 0;
}

struct s_entries_read {
	const char *yjs;
	struct entries *e;
};

static int s_entries_read_fn(struct yj_txn *txn, void *arg)
{
	struct s_entries_read *r = arg;
	int rc = yj_digests_entries(txn, r->yjs, 0, UINT64_MAX, s_entry_cb, r->e);
	return rc < 0 ? rc : 0;
}

static void s_entries(struct fx *f, const char *yjs, struct entries *e)
{
	struct s_entries_read r = { yjs, e };
	memset(e, 0, sizeof(*e));
	assert_int_equal(yj_store_read(f->c.st, s_entries_read_fn, &r), 0);
}

struct s_held {
	uint64_t seq;
	int held;
	int64_t held_at, released_at;
	char by[64], reason[64];
};

static int s_held_fn(struct yj_txn *txn, void *arg)
{
	struct s_held *h = arg;
	h->held = yj_route_is_held(txn, h->seq);
	Yjlink__V1__Hold *hold = yj_holds_get(txn, h->seq);
	h->held_at = hold && hold->has_held_at_us ? hold->held_at_us : -1;
	h->released_at = hold && hold->has_released_at_us ? hold->released_at_us : -1;
	snprintf(h->by, sizeof(h->by), "%s", hold && hold->released_by ? hold->released_by : "");
	snprintf(h->reason, sizeof(h->reason), "%s", hold && hold->reason ? hold->reason : "");
	yjlink__v1__hold__free_unpacked(hold, NULL);
	return 0;
}

static struct s_held s_hold(struct fx *f, uint64_t seq)
{
	struct s_held h = { .seq = seq };
	assert_int_equal(yj_store_read(f->c.st, s_held_fn, &h), 0);
	return h;
}

/* --- yj_rule_matches --- */

static struct yj_rule s_rule(void)
{
	struct yj_rule r;
	memset(&r, 0, sizeof(r));
	r.id = "r";
	r.looked_after = r.home_served = r.home_other_force = r.first_contact = -1;
	r.age_min = 0;
	r.age_max = 99;
	r.recipient = "yjs:home";
	r.section = "";
	r.legal_basis = "";
	return r;
}

static struct yj_route_facts s_facts(enum yj_feed feed)
{
	struct yj_route_facts f;
	memset(&f, 0, sizeof(f));
	f.feed = feed;
	f.custody_status = feed == YJ_FEED_CUSTODY ? "detained" : NULL;
	f.age = 15;
	return f;
}

static void test_rule_feeds_and_status(void **state)
{
	(void)state;
	struct yj_rule r = s_rule();
	struct yj_route_facts cu = s_facts(YJ_FEED_CUSTODY), ar = s_facts(YJ_FEED_ARREST);

	/* No feeds: every feed. */
	assert_true(yj_rule_matches(&r, &cu));
	assert_true(yj_rule_matches(&r, &ar));
	r.feeds = 1u << YJ_FEED_CUSTODY;
	assert_true(yj_rule_matches(&r, &cu));
	assert_false(yj_rule_matches(&r, &ar));
	r.feeds = 1u << YJ_FEED_CUSTODY | 1u << YJ_FEED_OUTCOME;
	struct yj_route_facts oc = s_facts(YJ_FEED_OUTCOME);
	assert_true(yj_rule_matches(&r, &oc));
	assert_false(yj_rule_matches(&r, &ar));

	/* custody_status: one of the list; an event without a status never matches. */
	char *st[] = { "detained", "charged_remanded" };
	r = s_rule();
	r.custody_status = (struct yj_strlist){ st, 2 };
	assert_true(yj_rule_matches(&r, &cu));
	cu.custody_status = "charged_remanded";
	assert_true(yj_rule_matches(&r, &cu));
	cu.custody_status = "released_nfa";
	assert_false(yj_rule_matches(&r, &cu));
	assert_false(yj_rule_matches(&r, &ar));
}

static void test_rule_tristate(void **state)
{
	(void)state;
	struct yj_rule r = s_rule();
	struct yj_route_facts f = s_facts(YJ_FEED_CUSTODY);

	/* looked_after: -1 any, 1 must be, 0 must not be. */
	f.looked_after = 0;
	assert_true(yj_rule_matches(&r, &f));
	f.looked_after = 1;
	assert_true(yj_rule_matches(&r, &f));
	r.looked_after = 1;
	assert_true(yj_rule_matches(&r, &f));
	f.looked_after = 0;
	assert_false(yj_rule_matches(&r, &f));
	r.looked_after = 0;
	assert_true(yj_rule_matches(&r, &f));
	f.looked_after = 1;
	assert_false(yj_rule_matches(&r, &f));

	/* The other tri-states work alike. */
	r = s_rule();
	r.home_served = 1;
	f = s_facts(YJ_FEED_CUSTODY);
	assert_false(yj_rule_matches(&r, &f));
	f.home_served = 1;
	assert_true(yj_rule_matches(&r, &f));
	r.home_other_force = 0;
	f.home_other_force = 1;
	assert_false(yj_rule_matches(&r, &f));
	f.home_other_force = 0;
	r.first_contact = 1;
	assert_false(yj_rule_matches(&r, &f));
	f.first_contact = 1;
	assert_true(yj_rule_matches(&r, &f));
}

static void test_rule_markers(void **state)
{
	(void)state;
	struct yj_rule r = s_rule();
	struct yj_route_facts f = s_facts(YJ_FEED_ARREST);
	char *one[] = { "court_order" };
	char *two[] = { "court_order", "mappa" };
	char *unknown[] = { "no_such_marker" };

	r.markers = (struct yj_strlist){ one, 1 };
	assert_false(yj_rule_matches(&r, &f));
	f.markers = YJ_MARK_COURT_ORDER;
	assert_true(yj_rule_matches(&r, &f));
	f.markers = YJ_MARK_MAPPA;
	assert_false(yj_rule_matches(&r, &f));
	/* Every marker listed must be set. */
	r.markers = (struct yj_strlist){ two, 2 };
	f.markers = YJ_MARK_COURT_ORDER;
	assert_false(yj_rule_matches(&r, &f));
	f.markers = YJ_MARK_COURT_ORDER | YJ_MARK_MAPPA | YJ_MARK_SERIOUS_OFFENCE;
	assert_true(yj_rule_matches(&r, &f));
	/* An unknown marker never matches, whatever is set. */
	r.markers = (struct yj_strlist){ unknown, 1 };
	f.markers = 0xff;
	assert_false(yj_rule_matches(&r, &f));
}

static void test_rule_age_and_outcomes(void **state)
{
	(void)state;
	struct yj_rule r = s_rule();
	struct yj_route_facts f = s_facts(YJ_FEED_OUTCOME);

	/* 0..99 is any age, unknown included. */
	f.age = -1;
	assert_true(yj_rule_matches(&r, &f));
	r.age_min = 10;
	r.age_max = 17;
	assert_false(yj_rule_matches(&r, &f)); /* unknown age is outside any bound */
	f.age = 10;
	assert_true(yj_rule_matches(&r, &f));
	f.age = 17;
	assert_true(yj_rule_matches(&r, &f));
	f.age = 9;
	assert_false(yj_rule_matches(&r, &f));
	f.age = 18;
	assert_false(yj_rule_matches(&r, &f));
	r = s_rule();
	r.age_max = 14;
	f.age = 15;
	assert_false(yj_rule_matches(&r, &f));
	f.age = 14;
	assert_true(yj_rule_matches(&r, &f));

	/* outcome_codes: one of them; an event without a code never matches. */
	int codes[] = { 1, 2 };
	r = s_rule();
	r.outcome_codes = codes;
	r.n_outcome_codes = 2;
	f = s_facts(YJ_FEED_OUTCOME);
	assert_false(yj_rule_matches(&r, &f));
	f.has_outcome_code = 1;
	f.outcome_code = 2;
	assert_true(yj_rule_matches(&r, &f));
	f.outcome_code = 1;
	assert_true(yj_rule_matches(&r, &f));
	f.outcome_code = 3;
	assert_false(yj_rule_matches(&r, &f));
}

static void test_route_facts(void **state)
{
	struct fx *f = *state;
	struct s_ev_mem m;
	struct yj_route_facts fa;

	/* Home served here, looked after, 16 on the day. */
	s_ev_mem(&m, "custody", "E06000042", 1, "E09000033", "TVP-MK");
	yj_route_facts(f->c.cfg, f->c.ref, &m.ev, 1, &fa);
	assert_int_equal(fa.feed, YJ_FEED_CUSTODY);
	assert_string_equal(fa.custody_status, "detained");
	assert_true(fa.looked_after);
	assert_true(fa.home_served);
	assert_false(fa.home_other_force);
	assert_true(fa.first_contact);
	assert_int_equal(fa.age, 16);
	/* Westminster: not served, in the Met's area. */
	s_ev_mem(&m, "arrest", "E09000033", 0, NULL, NULL);
	m.ch.date_of_birth = "2010-06-10"; /* the 16th birthday is the event's date */
	yj_route_facts(f->c.cfg, f->c.ref, &m.ev, 0, &fa);
	assert_int_equal(fa.feed, YJ_FEED_ARREST);
	assert_null(fa.custody_status);
	assert_false(fa.looked_after);
	assert_false(fa.home_served);
	assert_true(fa.home_other_force);
	assert_int_equal(fa.age, 16);
	m.ch.date_of_birth = "2010-06-11";
	yj_route_facts(f->c.cfg, f->c.ref, &m.ev, 0, &fa);
	assert_int_equal(fa.age, 15);
	/* No fixed abode: neither served nor another force's. */
	s_ev_mem(&m, "arrest", NULL, 0, NULL, NULL);
	yj_route_facts(f->c.cfg, f->c.ref, &m.ev, 0, &fa);
	assert_false(fa.home_served);
	assert_false(fa.home_other_force);
}

/* --- yj_route_plan: routing's part that needs no store, made ahead --- */

/* Rules over every fact a plan carries, first contact both ways. */
static const char s_plan_conf_text[] =
	"deployment = { id = \"tst\"; name = \"Plan test\"; force = \"" FORCE "\"; };\n"
	"pigeon = { speed = 4; };\n"
	"holds = { markers = [ \"mappa\" ]; };\n"
	"recipients = (\n"
	"  { id = \"yjs:mk\"; kind = \"yjs\"; name = \"MK YJS\"; local_authorities = [ \"E06000042\" ];\n"
	"    digest_times = [ \"07:30\" ]; transport = \"pigeon\"; pigeon = { loft = \"mk\"; };\n"
	"    allow = [ \"child.*\", \"custody.*\" ]; },\n"
	"  { id = \"liaison_diversion:tvp\"; kind = \"liaison_diversion\"; name = \"TV L&D\"; suites = [ \"TVP-MK\" ];\n"
	"    transport = \"pigeon\"; pigeon = { loft = \"ld\"; }; allow = [ \"child.*\", \"custody.*\" ]; }\n"
	");\n"
	"rules = (\n"
	"  { id = \"home_digest\"; home_served = true; recipient = \"yjs:home\"; mode = \"digest\"; },\n"
	"  { id = \"suite_first\"; feeds = [ \"custody\" ]; first_contact = true; recipient = \"yjs:suite\";\n"
	"    mode = \"immediate\"; },\n"
	"  { id = \"suite_again\"; feeds = [ \"custody\" ]; first_contact = false; recipient = \"yjs:suite\";\n"
	"    mode = \"immediate\"; },\n"
	"  { id = \"lac\"; looked_after = true; recipient = \"children_services:home\"; mode = \"immediate\"; },\n"
	"  { id = \"resp\"; age_min = 16; recipient = \"children_services:responsible_la\"; mode = \"immediate\"; },\n"
	"  { id = \"other_force\"; home_other_force = true; recipient = \"force:home\"; mode = \"immediate\"; },\n"
	"  { id = \"ld\"; feeds = [ \"custody\" ]; custody_status = [ \"detained\" ]; recipient = \"liaison_diversion:suite\";\n"
	"    mode = \"immediate\"; },\n"
	"  { id = \"mappa\"; markers = [ \"mappa\" ]; recipient = \"yjs:home\"; mode = \"immediate\"; }\n"
	");\n";

static int setup_plan(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	if (!f || s_fx_open(&f->c, "route_plan", s_plan_conf_text, "", &s_pigeon, NULL) != 0)
		return -1;
	*state = f;
	return 0;
}

/* For every mix of the facts, and first contact either way, a plan names
 * for each rule exactly whom matching and resolving it there and then
 * would: the commit routes from the plan (ingest) as from the event. */
static void test_plan_as_routing(void **state)
{
	struct fx *f = *state;
	static const char *const homes[] = { "E06000042", "E09000033", "E99999999", NULL };
	static const char *const resps[] = { NULL, "E06000042", "E09000033" };
	static const char *const suites[] = { "TVP-MK", "NOPE-1", NULL };
	static const char *const dobs[] = { "2010-03-01", "2012-01-01", "2008-07-01" };
	struct s_ev_mem m;
	Yjlink__V1__Markers mk = YJLINK__V1__MARKERS__INIT;
	struct yj_arena a;
	size_t checked = 0, named = 0;
	yj_arena_init(&a, 4096);
	assert_int_equal(f->c.cfg->n_rules, 8);
	for (int feed = 0; feed < 2; feed++)
		for (size_t h = 0; h < 4; h++)
			for (int lac = 0; lac < 2; lac++)
				for (size_t r = 0; r < 3; r++)
					for (size_t su = 0; su < 3; su++)
						for (size_t d = 0; d < 3; d++)
							for (int mp = 0; mp < 2; mp++) {
		s_ev_mem(&m, feed ? "arrest" : "custody", homes[h], lac, resps[r], suites[su]);
		m.ch.date_of_birth = (char *)dobs[d];
		mk.has_mappa = 1;
		mk.mappa = mp;
		m.ev.markers = &mk;
		struct yj_route_plan plan;
		yj_arena_reset(&a);
		assert_int_equal(yj_route_plan(f->c.cfg, f->c.ref, &m.ev, &a, &plan), 0);
		assert_ptr_equal(plan.cfg, f->c.cfg);
		assert_int_equal(plan.n_rules, f->c.cfg->n_rules);
		assert_int_equal(plan.held, yj_route_hold_markers(f->c.cfg, &m.ev));
		for (int first = 0; first < 2; first++) {
			struct yj_route_facts fa;
			yj_route_facts(f->c.cfg, f->c.ref, &m.ev, first, &fa);
			struct yj_route_facts pf = plan.facts;
			pf.first_contact = first;
			assert_memory_equal(&pf, &fa, sizeof(fa));
			for (size_t i = 0; i < f->c.cfg->n_rules; i++) {
				const struct yj_rule *rule = &f->c.cfg->rules[i];
				char out[300];
				int want = yj_rule_matches(rule, &fa) &&
					   yj_route_resolve(f->c.cfg, f->c.ref, rule->recipient, &m.ev, out, sizeof(out));
				int got = (plan.match[i] & (first ? YJ_PLAN_MATCH_FIRST : YJ_PLAN_MATCH)) != 0;
				assert_int_equal(got, want);
				if (want) {
					assert_non_null(plan.rcpt[i]);
					assert_string_equal(plan.rcpt[i], out);
					named++;
				}
				checked++;
			}
		}
	}
	/* Every rule named somebody somewhere, and first contact split the two suite rules. */
	assert_int_equal(checked, (size_t)2 * 4 * 2 * 3 * 3 * 3 * 2 * 2 * 8);
	assert_true(named > checked / 8);
	yj_arena_free(&a);
}

struct s_plan_route {
	struct fx *f;
	const Yjlink__V1__Event *ev;
	const struct yj_route_plan *plan;
	struct yj_route_counts c;
};

static int s_plan_route_fn(struct yj_txn *txn, void *arg)
{
	struct s_plan_route *r = arg;
	return yj_route_event(txn, r->f->c.cfg, r->f->c.ref, 1000, r->ev, r->plan,
			      YJ_ROUTE_FIRST_CONTACT | YJ_ROUTE_RECORD_ALONE, yj_clock_now_us(), &r->c);
}

/* A plan naming another config is not used: routing works it out again
 * (a guard: ingest flushes before a reload, so none reaches a commit). */
static void test_plan_of_another_config_unused(void **state)
{
	struct fx *f = *state;
	struct jobs ob;
	struct yj_arena a;
	struct s_ev_mem m;
	yj_arena_init(&a, 4096);
	yj_clock_set_us(s_utc(2026, 6, 10, 9, 5));
	s_ev_mem(&m, "custody", "E06000042", 0, NULL, "TVP-MK");
	struct yj_route_plan plan;
	assert_int_equal(yj_route_plan(f->c.cfg, f->c.ref, &m.ev, &a, &plan), 0);
	/* The same plan, said to be another config's, naming someone else. */
	struct yj_config other = *f->c.cfg;
	plan.cfg = &other;
	for (size_t i = 0; i < plan.n_rules; i++) {
		plan.match[i] = YJ_PLAN_MATCH | YJ_PLAN_MATCH_FIRST;
		plan.rcpt[i] = "pigeon:nobody";
	}
	struct s_plan_route r = { .f = f, .ev = &m.ev, .plan = &plan };
	assert_int_equal(yj_store_write(f->c.st, s_plan_route_fn, &r), 0);
	assert_true(r.c.outbox >= 1);
	s_jobs(&f->c, YJ_NOTES_OUTBOX, &ob);
	for (size_t i = 0; i < ob.n; i++)
		assert_string_not_equal(ob.v[i]->recipient, "pigeon:nobody");
	/* The config's own routing: the L&D referral. */
	assert_non_null(s_find(&ob, "liaison_diversion:tvp", "ld"));
	s_jobs_free(&ob);
	s_jobs(&f->c, YJ_NOTES_UNROUTABLE, &ob);
	assert_null(s_find(&ob, "pigeon:nobody", NULL));
	s_jobs_free(&ob);
	/* The check is what kept it out: the same plan, this config's, is used. */
	plan.cfg = f->c.cfg;
	memset(&r.c, 0, sizeof(r.c));
	assert_int_equal(yj_store_write(f->c.st, s_plan_route_fn, &r), 0);
	s_jobs(&f->c, YJ_NOTES_UNROUTABLE, &ob);
	assert_non_null(s_find(&ob, "pigeon:nobody", NULL));
	s_jobs_free(&ob);
	yj_arena_free(&a);
}

/* --- yj_route_resolve --- */

static void test_resolve(void **state)
{
	struct fx *f = *state;
	struct s_ev_mem m;
	char out[300];

	/* yjs:home: the YJS covering the home LA; none for a home not served. */
	s_ev_mem(&m, "custody", "E06000042", 0, NULL, "TVP-MK");
	assert_int_equal(yj_route_resolve(f->c.cfg, f->c.ref, "yjs:home", &m.ev, out, sizeof(out)), 1);
	assert_string_equal(out, "yjs:mk");
	s_ev_mem(&m, "custody", "E09000033", 0, NULL, "TVP-MK");
	assert_int_equal(yj_route_resolve(f->c.cfg, f->c.ref, "yjs:home", &m.ev, out, sizeof(out)), 0);
	s_ev_mem(&m, "custody", NULL, 0, NULL, "TVP-MK");
	assert_int_equal(yj_route_resolve(f->c.cfg, f->c.ref, "yjs:home", &m.ev, out, sizeof(out)), 0);

	/* yjs:suite: the YJS where the suite stands, whatever the home. */
	s_ev_mem(&m, "custody", "E09000033", 0, NULL, "TVP-MK");
	assert_int_equal(yj_route_resolve(f->c.cfg, f->c.ref, "yjs:suite", &m.ev, out, sizeof(out)), 1);
	assert_string_equal(out, "yjs:mk");
	/* Aylesbury stands in Buckinghamshire, which has no YJS here: unroutable id. */
	s_ev_mem(&m, "custody", "E06000042", 0, NULL, "TVP-AYL");
	assert_int_equal(yj_route_resolve(f->c.cfg, f->c.ref, "yjs:suite", &m.ev, out, sizeof(out)), 1);
	assert_string_equal(out, "yjs:E06000060");
	assert_null(yj_config_recipient(f->c.cfg, out));
	s_ev_mem(&m, "arrest", "E06000042", 0, NULL, NULL);
	assert_int_equal(yj_route_resolve(f->c.cfg, f->c.ref, "yjs:suite", &m.ev, out, sizeof(out)), 0);

	/* children_services:responsible_la, configured or not. */
	s_ev_mem(&m, "custody", "E06000042", 1, "E06000042", "TVP-MK");
	assert_int_equal(yj_route_resolve(f->c.cfg, f->c.ref, "children_services:responsible_la", &m.ev, out, sizeof(out)), 1);
	assert_string_equal(out, "children_services:E06000042");
	assert_non_null(yj_config_recipient(f->c.cfg, out));
	s_ev_mem(&m, "custody", "E06000042", 1, "E09000033", "TVP-MK");
	assert_int_equal(yj_route_resolve(f->c.cfg, f->c.ref, "children_services:responsible_la", &m.ev, out, sizeof(out)), 1);
	assert_string_equal(out, "children_services:E09000033");
	assert_null(yj_config_recipient(f->c.cfg, out));
	s_ev_mem(&m, "custody", "E06000042", 0, NULL, "TVP-MK");
	assert_int_equal(yj_route_resolve(f->c.cfg, f->c.ref, "children_services:responsible_la", &m.ev, out, sizeof(out)), 0);

	/* children_services:home: a looked-after child's responsible authority (PACE s.38(6)), else the home. */
	s_ev_mem(&m, "custody", "E06000042", 1, "E09000033", "TVP-MK");
	assert_int_equal(yj_route_resolve(f->c.cfg, f->c.ref, "children_services:home", &m.ev, out, sizeof(out)), 1);
	assert_string_equal(out, "children_services:E09000033");
	s_ev_mem(&m, "custody", "E06000042", 0, "E09000033", "TVP-MK");
	assert_int_equal(yj_route_resolve(f->c.cfg, f->c.ref, "children_services:home", &m.ev, out, sizeof(out)), 1);
	assert_string_equal(out, "children_services:E06000042");
	s_ev_mem(&m, "custody", NULL, 0, NULL, "TVP-MK");
	assert_int_equal(yj_route_resolve(f->c.cfg, f->c.ref, "children_services:home", &m.ev, out, sizeof(out)), 0);

	/* liaison_diversion:suite: the L&D covering the suite, or an unroutable id. */
	s_ev_mem(&m, "custody", "E09000033", 0, NULL, "TVP-MK");
	assert_int_equal(yj_route_resolve(f->c.cfg, f->c.ref, "liaison_diversion:suite", &m.ev, out, sizeof(out)), 1);
	assert_string_equal(out, "liaison_diversion:tvp");
	s_ev_mem(&m, "custody", "E09000033", 0, NULL, "TVP-AYL");
	assert_int_equal(yj_route_resolve(f->c.cfg, f->c.ref, "liaison_diversion:suite", &m.ev, out, sizeof(out)), 1);
	assert_string_equal(out, "liaison_diversion:TVP-AYL");
	assert_null(yj_config_recipient(f->c.cfg, out));
	s_ev_mem(&m, "arrest", "E09000033", 0, NULL, NULL);
	assert_int_equal(yj_route_resolve(f->c.cfg, f->c.ref, "liaison_diversion:suite", &m.ev, out, sizeof(out)), 0);

	/* force:home: the force area of the home LA (never configured here). */
	s_ev_mem(&m, "arrest", "E09000033", 0, NULL, NULL);
	assert_int_equal(yj_route_resolve(f->c.cfg, f->c.ref, "force:home", &m.ev, out, sizeof(out)), 1);
	assert_string_equal(out, "force:E23000001");
	assert_null(yj_config_recipient(f->c.cfg, out));
	s_ev_mem(&m, "arrest", "E06000042", 0, NULL, NULL);
	assert_int_equal(yj_route_resolve(f->c.cfg, f->c.ref, "force:home", &m.ev, out, sizeof(out)), 1);
	assert_string_equal(out, "force:" FORCE);
	s_ev_mem(&m, "arrest", NULL, 0, NULL, NULL);
	assert_int_equal(yj_route_resolve(f->c.cfg, f->c.ref, "force:home", &m.ev, out, sizeof(out)), 0);

	/* Anything else names nobody. */
	assert_int_equal(yj_route_resolve(f->c.cfg, f->c.ref, "yjs:everyone", &m.ev, out, sizeof(out)), 0);
}

/* --- yj_route_when: L&D opening hours --- */

static void s_when(const struct yj_recipient *r, int64_t now, int64_t want_nb, int want_ooh)
{
	int64_t nb = -1;
	int ooh = -1;
	yj_route_when(r, now, &nb, &ooh);
	if (nb != want_nb || ooh != want_ooh)
		fail_msg("at %lld: not_before %lld out_of_hours %d, want %lld %d", (long long)(now / 1000000),
			 (long long)(nb / 1000000), ooh, (long long)(want_nb / 1000000), want_ooh);
}

static void test_when(void **state)
{
	struct fx *f = *state;
	const struct yj_recipient *ld = yj_config_recipient(f->c.cfg, "liaison_diversion:tvp");
	const struct yj_recipient *yjs = yj_config_recipient(f->c.cfg, "yjs:mk");
	assert_non_null(ld);
	assert_true(ld->has_hours);

	/* Wednesday 2026-06-10 (BST, UTC+1), hours 08:00-20:00. */
	s_when(ld, s_utc(2026, 6, 10, 1, 0), s_utc(2026, 6, 10, 7, 0), 1);   /* 02:00 -> 08:00 same day */
	s_when(ld, s_utc(2026, 6, 10, 9, 0), 0, 0);                          /* 10:00: open */
	s_when(ld, s_utc(2026, 6, 10, 7, 0), 0, 0);                          /* 08:00: open */
	s_when(ld, s_utc(2026, 6, 10, 6, 59), s_utc(2026, 6, 10, 7, 0), 1);  /* 07:59 */
	s_when(ld, s_utc(2026, 6, 10, 18, 59), 0, 0);                        /* 19:59 */
	s_when(ld, s_utc(2026, 6, 10, 19, 0), s_utc(2026, 6, 11, 7, 0), 1);  /* 20:00: closed -> Thu 08:00 */
	/* Weekend hours 09:00-17:00. */
	s_when(ld, s_utc(2026, 6, 12, 20, 0), s_utc(2026, 6, 13, 8, 0), 1);  /* Fri 21:00 -> Sat 09:00 */
	s_when(ld, s_utc(2026, 6, 13, 7, 30), s_utc(2026, 6, 13, 8, 0), 1);  /* Sat 08:30 -> Sat 09:00 */
	s_when(ld, s_utc(2026, 6, 13, 11, 0), 0, 0);                         /* Sat 12:00: open */
	s_when(ld, s_utc(2026, 6, 13, 16, 30), s_utc(2026, 6, 14, 8, 0), 1); /* Sat 17:30 -> Sun 09:00 */
	s_when(ld, s_utc(2026, 6, 14, 16, 30), s_utc(2026, 6, 15, 7, 0), 1); /* Sun 17:30 -> Mon 08:00 */
	/* Winter (GMT): Wednesday 2026-01-14 02:00 -> 08:00. */
	s_when(ld, s_utc(2026, 1, 14, 2, 0), s_utc(2026, 1, 14, 8, 0), 1);
	/* Saturday 2026-03-28 (GMT) 18:00 -> Sunday 09:00, which is BST after the change. */
	s_when(ld, s_utc(2026, 3, 28, 18, 0), s_utc(2026, 3, 29, 8, 0), 1);
	/* No hours, or no recipient: at once. */
	s_when(yjs, s_utc(2026, 6, 10, 1, 0), 0, 0);
	s_when(NULL, s_utc(2026, 6, 10, 1, 0), 0, 0);

	int64_t next = 0;
	assert_int_equal(yj_hours_open(&ld->hours, s_utc(2026, 6, 10, 9, 0), &next), 1);
	assert_int_equal(yj_hours_open(&ld->hours, s_utc(2026, 6, 10, 1, 0), &next), 0);
	assert_int_equal(next, s_utc(2026, 6, 10, 7, 0));
	/* Never open: no next opening. */
	struct yj_hours closed;
	memset(&closed, 0, sizeof(closed));
	assert_int_equal(yj_hours_open(&closed, s_utc(2026, 6, 10, 9, 0), &next), 0);
	assert_true(next == INT64_MAX);
}

/* --- yj_route_event --- */

static void test_route_event(void **state)
{
	struct fx *f = *state;
	struct yj_route_counts c;
	struct jobs ob, un;
	struct entries e;
	const Yjlink__V1__Notification *n;

	/* Wednesday 10:00 BST: a looked-after child of Milton Keynes whose
	 * responsible LA (Westminster) has no recipient here, detained at MK. */
	yj_clock_set_us(s_utc(2026, 6, 10, 9, 0));
	struct ev a = { .home_la = "E06000042", .looked_after = 1, .responsible_la = "E09000033" };
	uint64_t s1 = s_event(&f->c, &a, &c);
	assert_int_equal(s1, 1);
	assert_int_equal(c.digest, 1);
	assert_int_equal(c.outbox, 1);
	assert_int_equal(c.unroutable, 1);
	assert_int_equal(c.held, 0);

	/* The digest rule: an entry for the YJS of the home. */
	s_entries(f, "yjs:mk", &e);
	assert_int_equal(e.n, 1);
	assert_int_equal(e.seq[0], s1);
	assert_string_equal(e.rule[0], "custody_digest");

	/* The immediate rule with a destination: an outbox job, due at once (open). */
	s_jobs(&f->c, YJ_NOTES_OUTBOX, &ob);
	assert_int_equal(ob.n, 1);
	n = s_find(&ob, "liaison_diversion:tvp", "liaison_diversion");
	assert_non_null(n);
	assert_true(n->has_seq && n->seq == s1);
	assert_null(n->digest);
	assert_string_equal(n->rule, "liaison_diversion");
	assert_true(n->number >= 1);
	assert_false(n->has_not_before_us && n->not_before_us);
	assert_false(n->has_out_of_hours && n->out_of_hours);
	/* Made at the clock's now (which flows on from where it was set). */
	assert_true(n->created_at_us >= s_utc(2026, 6, 10, 9, 0) && n->created_at_us < s_utc(2026, 6, 10, 9, 10));
	/* No legal basis on the rule: the recipient's default. */
	assert_string_equal(n->legal_basis, yj_config_recipient(f->c.cfg, "liaison_diversion:tvp")->legal_basis);
	uint64_t first_number = n->number;

	/* The immediate rule without a destination: an unroutable job, never dropped. */
	s_jobs(&f->c, YJ_NOTES_UNROUTABLE, &un);
	assert_int_equal(un.n, 1);
	n = s_find(&un, "children_services:E09000033", "lac_in_custody");
	assert_non_null(n);
	assert_int_equal(n->seq, s1);
	assert_string_equal(n->legal_basis, "Children Act 1989 s.22");
	assert_int_not_equal(n->number, first_number); /* numbered from the one counter */
	s_jobs_free(&ob);
	s_jobs_free(&un);
	assert_false(s_hold(f, s1).held);

	/* Thursday 02:00 BST: the L&D job waits for 08:00 and says out of hours.
	 * The child's own LA is configured: this time the LAC job goes to the outbox. */
	yj_clock_set_us(s_utc(2026, 6, 11, 1, 0));
	struct ev b = { .person_id = "P2", .record_id = "CR2", .home_la = "E06000042", .looked_after = 1,
			.responsible_la = "E06000042" };
	uint64_t s2 = s_event(&f->c, &b, &c);
	assert_int_equal(c.digest, 1);
	assert_int_equal(c.outbox, 2);
	assert_int_equal(c.unroutable, 0);
	s_jobs(&f->c, YJ_NOTES_OUTBOX, &ob);
	assert_int_equal(ob.n, 3);
	const Yjlink__V1__Notification *ld = NULL, *cs = NULL;
	for (size_t i = 0; i < ob.n; i++) {
		if (ob.v[i]->seq != s2)
			continue;
		if (!strcmp(ob.v[i]->recipient, "liaison_diversion:tvp"))
			ld = ob.v[i];
		if (!strcmp(ob.v[i]->recipient, "children_services:E06000042"))
			cs = ob.v[i];
	}
	assert_non_null(ld);
	assert_non_null(cs);
	assert_true(ld->has_not_before_us);
	assert_int_equal(ld->not_before_us, s_utc(2026, 6, 11, 7, 0));
	assert_true(ld->has_out_of_hours && ld->out_of_hours);
	assert_false(cs->has_not_before_us && cs->not_before_us); /* no hours: at once */
	assert_false(cs->has_out_of_hours && cs->out_of_hours);
	s_jobs_free(&ob);
	s_entries(f, "yjs:mk", &e);
	assert_int_equal(e.n, 2);
	assert_int_equal(e.seq[1], s2);

	/* A live investigation: a hold, whatever else matches (here nothing). */
	struct ev h = { .feed = "arrest", .person_id = "P3", .home_la = "E09000033", .live = 1 };
	uint64_t s3 = s_event(&f->c, &h, &c);
	assert_int_equal(c.held, 1);
	assert_int_equal(c.outbox + c.unroutable + c.digest, 0);
	struct s_held hs = s_hold(f, s3);
	assert_true(hs.held);
	assert_true(hs.held_at >= s_utc(2026, 6, 11, 1, 0));
	assert_int_equal(hs.released_at, -1);

	/* A released custody of a child from elsewhere: no rule, nothing written. */
	struct ev z = { .person_id = "P4", .record_id = "CR4", .home_la = "E09000033", .status = "released_nfa" };
	s_event(&f->c, &z, &c);
	assert_int_equal(c.held + c.outbox + c.unroutable + c.digest, 0);
}

/* --- replay --- */

struct s_replay {
	struct fx *f;
	int64_t since;
	const char *rule;
	int64_t now;
	unsigned queued;
	int rc;
};

static int s_replay_fn(struct yj_txn *txn, void *arg)
{
	struct s_replay *r = arg;
	r->queued = 0;
	r->rc = yj_route_replay(txn, r->f->c.cfg, r->f->c.ref, r->since, r->rule, r->now, &r->queued, NULL);
	return r->rc;
}

static unsigned s_replay(struct fx *f, int64_t since, const char *rule)
{
	struct s_replay r = { f, since, rule, yj_clock_now_us(), 0, 0 };
	assert_int_equal(yj_store_write(f->c.st, s_replay_fn, &r), 0);
	assert_int_equal(r.rc, 0);
	return r.queued;
}

static void test_replay_out_of_hours(void **state)
{
	struct fx *f = *state;
	struct jobs ob, un;
	struct entries e;

	/* Stored and routed on Wednesday at 16:00: the L&D had it at once. */
	yj_clock_set_us(s_utc(2026, 6, 10, 15, 0));
	struct ev a = { .home_la = "E06000042", .looked_after = 1, .responsible_la = "E09000033" };
	uint64_t s1 = s_event(&f->c, &a, NULL);
	s_jobs(&f->c, YJ_NOTES_OUTBOX, &ob);
	assert_int_equal(ob.n, 1);
	uint64_t routed_number = ob.v[0]->number;
	s_jobs_free(&ob);

	/* Replayed on Thursday at 02:00: every immediate rule again, as first
	 * routing would route it now; the L&D job waits for its 08:00 opening
	 * (the bug this guards against: replay used to deliver at once). */
	yj_clock_set_us(s_utc(2026, 6, 11, 1, 0));
	assert_int_equal(s_replay(f, s_utc(2026, 6, 10, 0, 0), NULL), 2);
	s_jobs(&f->c, YJ_NOTES_OUTBOX, &ob);
	assert_int_equal(ob.n, 2);
	const Yjlink__V1__Notification *n = ob.v[1];
	assert_string_equal(n->recipient, "liaison_diversion:tvp");
	assert_int_equal(n->seq, s1);
	assert_true(n->number > routed_number); /* a new notification, a new id */
	assert_true(n->has_not_before_us);
	assert_int_equal(n->not_before_us, s_utc(2026, 6, 11, 7, 0));
	assert_true(n->has_out_of_hours && n->out_of_hours);
	s_jobs_free(&ob);
	s_jobs(&f->c, YJ_NOTES_UNROUTABLE, &un);
	assert_int_equal(un.n, 2); /* the LAC job, from routing and from replay */
	s_jobs_free(&un);
	/* Digest rules are not replayed. */
	s_entries(f, "yjs:mk", &e);
	assert_int_equal(e.n, 1);

	/* Only one rule. */
	assert_int_equal(s_replay(f, s_utc(2026, 6, 10, 0, 0), "liaison_diversion"), 1);
	s_jobs(&f->c, YJ_NOTES_OUTBOX, &ob);
	assert_int_equal(ob.n, 3);
	assert_int_equal(ob.v[2]->not_before_us, s_utc(2026, 6, 11, 7, 0));
	s_jobs_free(&ob);
	/* Nothing occurred since then. */
	assert_int_equal(s_replay(f, s_utc(2026, 6, 10, 16, 0), NULL), 0);
	/* Stale (routing.md "No stale notices"): on Thursday at 11:00 the event
	 * is 19 h old, over the rule's 12 h: digests only, nothing queued. */
	yj_clock_set_us(s_utc(2026, 6, 11, 10, 0));
	assert_int_equal(s_replay(f, s_utc(2026, 6, 10, 0, 0), "liaison_diversion"), 0);
	s_jobs(&f->c, YJ_NOTES_OUTBOX, &ob);
	assert_int_equal(ob.n, 3);
	s_jobs_free(&ob);
	/* In hours: at once (Wednesday 19:00, 4 h after it occurred). */
	yj_clock_set_us(s_utc(2026, 6, 10, 18, 0));
	assert_int_equal(s_replay(f, s_utc(2026, 6, 10, 0, 0), "liaison_diversion"), 1);
	s_jobs(&f->c, YJ_NOTES_OUTBOX, &ob);
	assert_int_equal(ob.n, 4);
	assert_false(ob.v[3]->has_not_before_us && ob.v[3]->not_before_us);
	assert_false(ob.v[3]->has_out_of_hours && ob.v[3]->out_of_hours);
	s_jobs_free(&ob);
}

/* --- hold release --- */

struct s_disclosed {
	uint64_t seq;
	const char *const *rcpts;
	size_t n;
};

static int s_disclosed_fn(struct yj_txn *txn, void *arg)
{
	struct s_disclosed *d = arg;
	for (size_t i = 0; i < d->n; i++) {
		int rc = yj_disclosed_add(txn, d->seq, d->rcpts[i]);
		if (rc)
			return rc;
	}
	return 0;
}

struct s_release {
	uint64_t seq;
	struct fx *f;
	int64_t now;
	unsigned queued;
	int rc;
};

static int s_release_fn(struct yj_txn *txn, void *arg)
{
	struct s_release *r = arg;
	r->queued = 0;
	r->rc = yj_route_release(txn, r->f->c.cfg, r->f->c.ref, r->seq, "DC Smith", "uid:1000", "charged, investigation closed", r->now, &r->queued, NULL);
	return 0; /* commit what was written; the answer is looked at outside */
}

static int s_release(struct fx *f, uint64_t seq, unsigned *queued)
{
	struct s_release r = { seq, f, yj_clock_now_us(), 0, 0 };
	assert_int_equal(yj_store_write(f->c.st, s_release_fn, &r), 0);
	*queued = r.queued;
	return r.rc;
}

static void test_release(void **state)
{
	struct fx *f = *state;
	struct yj_route_counts c;
	struct jobs ob, un;
	unsigned queued = 99;

	/* Wednesday 10:00: a live investigation, held; the L&D is routed as usual. */
	yj_clock_set_us(s_utc(2026, 6, 10, 9, 0));
	struct ev a = { .home_la = "E06000042", .live = 1 };
	uint64_t s1 = s_event(&f->c, &a, &c);
	assert_int_equal(c.held, 1);
	assert_int_equal(c.outbox, 1);
	assert_true(s_hold(f, s1).held);
	struct ev b = { .person_id = "P2", .record_id = "CR2", .home_la = "E06000042" };
	uint64_t s2 = s_event(&f->c, &b, &c);
	assert_int_equal(c.held, 0);

	/* It was disclosed (withheld parts held back) to the L&D and the YJS;
	 * an unconfigured recipient also had it. */
	static const char *const had[] = { "liaison_diversion:tvp", "yjs:mk", "force:E23000001" };
	struct s_disclosed d = { s1, had, S_LEN(had) };
	assert_int_equal(yj_store_write(f->c.st, s_disclosed_fn, &d), 0);

	/* Released on Wednesday at 21:30, the L&D closed: every recipient that
	 * had it gets what was withheld (11.5 h on: not yet stale). */
	yj_clock_set_us(s_utc(2026, 6, 10, 20, 30));
	assert_int_equal(s_release(f, s1, &queued), 0);
	assert_int_equal(queued, 3);
	struct s_held hs = s_hold(f, s1);
	assert_false(hs.held);
	assert_true(hs.released_at >= s_utc(2026, 6, 10, 20, 30));
	assert_string_equal(hs.by, "DC Smith");
	assert_string_equal(hs.reason, "charged, investigation closed");

	s_jobs(&f->c, YJ_NOTES_OUTBOX, &ob);
	assert_int_equal(ob.n, 4); /* the L&D's first notifications of s1 and s2, and two releases */
	const Yjlink__V1__Notification *ld = s_find(&ob, "liaison_diversion:tvp", "hold_released");
	const Yjlink__V1__Notification *yjs = s_find(&ob, "yjs:mk", "hold_released");
	assert_non_null(ld);
	assert_non_null(yjs);
	assert_int_equal(ld->seq, s1);
	assert_int_equal(yjs->seq, s1);
	assert_string_equal(ld->rule, "hold_release");
	/* Not before the L&D's opening, like any notification to it. */
	assert_true(ld->has_not_before_us);
	assert_int_equal(ld->not_before_us, s_utc(2026, 6, 11, 7, 0));
	assert_true(ld->has_out_of_hours && ld->out_of_hours);
	assert_false(yjs->has_not_before_us && yjs->not_before_us);
	s_jobs_free(&ob);
	s_jobs(&f->c, YJ_NOTES_UNROUTABLE, &un);
	assert_int_equal(un.n, 1);
	assert_string_equal(un.v[0]->recipient, "force:E23000001");
	assert_string_equal(un.v[0]->kind, "hold_released");
	s_jobs_free(&un);

	/* Once only. */
	queued = 99;
	assert_int_equal(s_release(f, s1, &queued), YJ_EEXIST);
	assert_int_equal(queued, 0);
	s_jobs(&f->c, YJ_NOTES_OUTBOX, &ob);
	assert_int_equal(ob.n, 4);
	s_jobs_free(&ob);
	/* An event never held, and one never stored. */
	assert_int_equal(s_release(f, s2, &queued), YJ_ENOENT);
	assert_int_equal(queued, 0);
	assert_int_equal(s_release(f, 999, &queued), YJ_ENOENT);
	s_jobs(&f->c, YJ_NOTES_OUTBOX, &ob);
	assert_int_equal(ob.n, 4);
	s_jobs_free(&ob);

	/* Released 13 hours on: stale under the rules that sent it (routing.md
	 * "No stale notices" applies to a release as to first routing): the L&D
	 * gets nothing more; the YJS (a digest, which has no max_age_s) and the
	 * unconfigured force, told by no immediate rule here, still get it. */
	yj_clock_set_us(s_utc(2026, 6, 11, 9, 0));
	struct ev e3 = { .person_id = "P3", .record_id = "CR3", .home_la = "E06000042", .live = 1 };
	uint64_t s3 = s_event(&f->c, &e3, &c);
	struct s_disclosed d3 = { s3, had, S_LEN(had) };
	assert_int_equal(yj_store_write(f->c.st, s_disclosed_fn, &d3), 0);
	yj_clock_set_us(s_utc(2026, 6, 11, 22, 0));
	assert_int_equal(s_release(f, s3, &queued), 0);
	assert_int_equal(queued, 2);
	s_jobs(&f->c, YJ_NOTES_OUTBOX, &ob);
	for (size_t i = 0; i < ob.n; i++)
		assert_false(ob.v[i]->seq == s3 && !strcmp(ob.v[i]->kind, "hold_released") &&
			     !strcmp(ob.v[i]->recipient, "liaison_diversion:tvp"));
	s_jobs_free(&ob);
}

/* The key builders that replaced snprintf on the routing path: the same
 * string, the same untruncated length, the same truncation. */
static void test_strjoin(void **state)
{
	(void)state;
	char buf[16], ref[16];
	assert_int_equal(yj_strjoin2(buf, sizeof(buf), "yjs:", "E06000042"), 13);
	assert_string_equal(buf, "yjs:E06000042");
	assert_int_equal(yj_strjoin2(buf, sizeof(buf), "children_services:", "E06000042"), 27);
	assert_string_equal(buf, "children_servic");
	assert_int_equal(yj_strjoin2(buf, sizeof(buf), NULL, NULL), 0);
	assert_string_equal(buf, "");
	assert_int_equal(yj_strjoin2(buf, 1, "abc", "def"), 6);
	assert_string_equal(buf, "");
	assert_int_equal(yj_strjoin_sep(buf, sizeof(buf), "E23000029", '/', "CR-1"), 14);
	assert_string_equal(buf, "E23000029/CR-1");
	assert_int_equal(yj_strjoin_sep(buf, 10, "E23000029", '/', "CR-1"), 14);
	assert_string_equal(buf, "E23000029");
	assert_int_equal(yj_strjoin_sep(buf, 11, "E23000029", '/', NULL), 10);
	assert_string_equal(buf, "E23000029/");
	static const uint64_t nums[] = { 0, 7, 10, 4096, 18446744073709551615u };
	char big[32];
	for (size_t i = 0; i < sizeof(nums) / sizeof(nums[0]); i++) {
		int n = snprintf(ref, sizeof(ref), "%llu", (unsigned long long)nums[i]);
		assert_int_equal(yj_str_u64(buf, sizeof(buf), nums[i]), (size_t)n);
		assert_string_equal(buf, ref);  /* truncated alike where it does not fit */
		assert_int_equal(yj_str_u64(big, sizeof(big), nums[i]), (size_t)n);
		snprintf(ref, sizeof(ref), "%llu", (unsigned long long)nums[i]);
		assert_memory_equal(big, ref, strlen(ref));
	}
}

int main(void)
{
	setenv("TZ", "Europe/London", 1);
	tzset();
	yj_log_set_level(YJ_LOG_WARNING);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_strjoin),
		cmocka_unit_test(test_rule_feeds_and_status),
		cmocka_unit_test(test_rule_tristate),
		cmocka_unit_test(test_rule_markers),
		cmocka_unit_test(test_rule_age_and_outcomes),
		cmocka_unit_test_setup_teardown(test_route_facts, setup, teardown),
		cmocka_unit_test_setup_teardown(test_resolve, setup, teardown),
		cmocka_unit_test_setup_teardown(test_plan_as_routing, setup_plan, teardown),
		cmocka_unit_test_setup_teardown(test_plan_of_another_config_unused, setup_plan, teardown),
		cmocka_unit_test_setup_teardown(test_when, setup, teardown),
		cmocka_unit_test_setup_teardown(test_route_event, setup, teardown),
		cmocka_unit_test_setup_teardown(test_replay_out_of_hours, setup, teardown),
		cmocka_unit_test_setup_teardown(test_release, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
