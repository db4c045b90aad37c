/* test_outbox.c: the one delivery engine (daemon/outbox.c) driving an output
 * adapter declared here, "pigeon", which the core has never heard of: the
 * config loader reads its settings from its own tables, the outbox hands it
 * notifications and digests as data (struct yj_message) and it answers OK,
 * RETRY or FATAL from the loop. That it needs no change of the core is the
 * point. Its settings, the store, the config and the events come from the
 * fixture the routing and digest tests share (core_fixture.h).
 *
 * Cases: an immediate notification delivered with the recipient's data
 * sharing agreement applied, then audited and gone; RETRY and its backoff
 * (same id again); FATAL to the dead-letter queue and the escalation hook;
 * RETRY past delivery.max_age_s; a dead letter retried (at the L&D's next
 * opening when out of hours); the backoff's bounds; a daily digest planned
 * by digest.c and delivered through the same adapter, confirmed in the
 * digest state, and an operator's resend of it; a dead-lettered digest that
 * does not stop the next day's; a live investigation withheld, then
 * released; reconcile after a config change gives a recipient a destination
 * (or takes it away, also while a delivery to it is under way); a stop's
 * drain starts nothing and counts no attempt.
 *
 * The outbox's jitter comes from libsodium; the test installs its own
 * random source, so every run draws the same.
 *
 * Times are Europe/London (set in main); expected instants are written in
 * UTC (s_utc). The assertions are about outcomes, never about timings.
 */
#include "core_fixture.h"

#include <cjson/cJSON.h>
#include <pthread.h>
#include <time.h>
#include <sodium.h>

#include "db/audit.h"
#include "db/digests.h"
#include "db/holds.h"
#include "digest.h"
#include "log.h"
#include "outbox.h"

#define S_SEC INT64_C(1000000)

/* --- the test output adapter: out_pigeon (core_fixture.h), which delivers --- */

#define S_MAX 128

/* One message as the adapter was handed it (copied: m is valid only during deliver). */
struct s_msg {
	enum yj_message_kind kind;
	char *id, *kind_name, *rcpt, *json, *date, *from, *to, *csv, *loft;
	const void *settings;
	unsigned children, events;
};

struct s_pending {
	yj_delivery_done_fn done;
	void *arg;
	enum yj_delivery_result result;
	char address[160];
};

static struct {
	struct yj_loop *loop;
	struct s_msg msgs[S_MAX];
	size_t n_msgs;
	enum yj_delivery_result script[S_MAX];  /* results of the next deliveries; beyond: OK */
	size_t n_script, next_script;
	struct s_pending pending[S_MAX];
	size_t n_pending;
	int armed;                              /* the completion timer is set */
	int in_done;                            /* completions are being answered */
	int reentered;                          /* deliver was called from inside a completion (never) */
	unsigned deliver_ms;                    /* each deliver takes this long (a digest's build, say) */
} s_pg;

static char *s_dup(const char *s) { return s ? strdup(s) : NULL; }

static void s_pg_reset(struct yj_loop *loop)
{
	for (size_t i = 0; i < s_pg.n_msgs; i++) {
		struct s_msg *m = &s_pg.msgs[i];
		free(m->id);
		free(m->kind_name);
		free(m->rcpt);
		free(m->json);
		free(m->date);
		free(m->from);
		free(m->to);
		free(m->csv);
		free(m->loft);
	}
	memset(&s_pg, 0, sizeof(s_pg));
	s_pg.loop = loop;
}

static void s_script(enum yj_delivery_result r)
{
	s_pg.script[s_pg.n_script++] = r;
}

static const char *s_detail(enum yj_delivery_result r)
{
	return r == YJ_DELIVERY_OK ? "landed" : r == YJ_DELIVERY_RETRY ? "storm over the loft" : "bird lost";
}

/* The completions, later, from the loop. */
static int s_pg_fire(struct yj_loop *loop, void *arg)
{
	struct s_pending now[S_MAX];
	size_t n = s_pg.n_pending;
	(void)loop;
	(void)arg;
	memcpy(now, s_pg.pending, n * sizeof(now[0]));
	s_pg.n_pending = 0;
	s_pg.armed = 0;
	s_pg.in_done = 1;
	for (size_t i = 0; i < n; i++)
		now[i].done(now[i].arg, now[i].result, s_detail(now[i].result), now[i].address);
	s_pg.in_done = 0;
	return 0;
}

static int s_pg_deliver(void *state, const struct yj_message *m, yj_delivery_done_fn done, void *arg)
{
	const struct s_pigeon_rcpt *pr = m->settings;
	(void)state;
	if (s_pg.n_msgs == S_MAX || s_pg.n_pending == S_MAX)
		return YJ_EAGAIN;
	if (s_pg.in_done)
		s_pg.reentered = 1;
	if (s_pg.deliver_ms) {
		struct timespec ts = { 0, (long)s_pg.deliver_ms * 1000000L };
		while (nanosleep(&ts, &ts) != 0)
			;
	}
	struct s_msg *c = &s_pg.msgs[s_pg.n_msgs++];
	c->kind = m->kind;
	c->id = s_dup(m->id);
	c->kind_name = s_dup(m->kind_name);
	c->rcpt = s_dup(m->recipient ? m->recipient->id : NULL);
	c->json = m->json ? strndup(m->json, m->json_len) : NULL;
	c->date = s_dup(m->date);
	c->from = s_dup(m->window_from);
	c->to = s_dup(m->window_to);
	c->csv = m->csv ? strndup(m->csv, m->csv_len) : NULL;
	c->loft = s_dup(pr ? pr->loft : NULL);
	c->settings = m->settings;
	c->children = m->children;
	c->events = m->events;
	struct s_pending *p = &s_pg.pending[s_pg.n_pending++];
	p->done = done;
	p->arg = arg;
	p->result = s_pg.next_script < s_pg.n_script ? s_pg.script[s_pg.next_script++] : YJ_DELIVERY_OK;
	snprintf(p->address, sizeof(p->address), "pigeon://%s", pr && pr->loft ? pr->loft : "?");
	if (!s_pg.armed) {
		if (yj_loop_timer(s_pg.loop, 0, 0, s_pg_fire, NULL) < 0) {
			s_pg.n_pending--;
			return YJ_ENOMEM;
		}
		s_pg.armed = 1;
	}
	return 0;
}

static const struct yj_adapter s_pigeon = { .conf = S_PIGEON_CONF, .deliver = s_pg_deliver };

/* --- a deterministic random source for the outbox's jitter ---
 *
 * The outbox draws its backoff jitter from libsodium (randombytes_uniform).
 * The test installs its own implementation, so every run draws the same:
 * the middle of the range, unless a case scripts the next draws (0: the
 * lowest value, 1: the highest). */

static int s_rng_script[8];
static size_t s_rng_n, s_rng_next;

static const char *s_rng_name(void) { return "test"; }
static uint32_t s_rng_random(void) { return 0x5a5a5a5au; }
static void s_rng_buf(void *const buf, const size_t size) { memset(buf, 0x5a, size); }

static uint32_t s_rng_uniform(const uint32_t upper)
{
	if (upper < 2)
		return 0;
	if (s_rng_next < s_rng_n)
		return s_rng_script[s_rng_next++] ? upper - 1 : 0;
	return upper / 2;
}

static randombytes_implementation s_rng = {
	.implementation_name = s_rng_name,
	.random = s_rng_random,
	.uniform = s_rng_uniform,
	.buf = s_rng_buf,
};

static void s_rng_reset(void)
{
	s_rng_n = s_rng_next = 0;
}

/* --- the config --- */

/* %s: the children's services' transport and its settings. */
static const char s_conf_fmt[] =
	"deployment = { id = \"tst\"; name = \"Outbox test\"; force = \"" FORCE "\"; };\n"
	"delivery = { max_age_s = 3600; backoff_min_ms = 20000; backoff_max_ms = 600000; };\n"
	"pigeon = { speed = 4; };\n"
	"recipients = (\n"
	"  { id = \"yjs:mk\"; kind = \"yjs\"; name = \"MK YJS\"; local_authorities = [ \"E06000042\" ];\n"
	"    digest_times = [ \"07:30\" ]; transport = \"pigeon\"; pigeon = { loft = \"mk-loft\"; };\n"
	"    allow = [ \"source_id\", \"child.*\", \"custody.*\" ]; },\n"
	"  { id = \"children_services:E06000042\"; kind = \"children_services\"; name = \"MK CS\";\n"
	"    local_authority = \"E06000042\"; %s\n"
	"    allow = [ \"child.person_id\", \"custody.status\" ]; },\n"
	"  { id = \"liaison_diversion:tvp\"; kind = \"liaison_diversion\"; name = \"TV L&D\"; suites = [ \"TVP-MK\" ];\n"
	"    " S_HOURS "\n"
	"    transport = \"pigeon\"; pigeon = { loft = \"ld-loft\"; }; allow = [ \"child.person_id\", \"custody.*\" ]; }\n"
	");\n"
	"rules = (\n"
	"  { id = \"custody_digest\"; feeds = [ \"custody\" ]; home_served = true; recipient = \"yjs:home\";\n"
	"    mode = \"digest\"; },\n"
	"  { id = \"lac_in_custody\"; feeds = [ \"custody\" ]; looked_after = true;\n"
	"    recipient = \"children_services:responsible_la\"; mode = \"immediate\"; legal_basis = \"Children Act 1989 s.22\"; },\n"
	"  { id = \"liaison_diversion\"; feeds = [ \"custody\" ]; custody_status = [ \"detained\" ];\n"
	"    recipient = \"liaison_diversion:suite\"; mode = \"immediate\"; }\n"
	");\n";

#define S_CS_PIGEON "transport = \"pigeon\"; pigeon = { loft = \"cs-loft\"; };"
#define S_CS_NONE "transport = \"none\";"

/* What a test starts with (its cmocka prestate). */
struct opts {
	const char *cs;          /* S_CS_PIGEON (default) or S_CS_NONE */
	int digest;              /* start the digest planner */
};

/* --- fixture --- */

struct dead {
	int calls;
	char job_id[128], recipient[128], kind[64], detail[128];
};

struct fx {
	struct core_fx c;
	struct yj_outbox *ob;
	struct yj_digest *dg;
	struct dead dead;
	int running, timed_out;
};

/* Write the config with the children's services' transport cs as name, and load it. */
static int s_load(struct fx *f, const char *name, const char *cs, struct yj_config **cfg)
{
	return s_fx_load(&f->c, name, s_conf_fmt, cs, cfg);
}

static void s_dead_hook(void *arg, const char *job_id, const char *recipient, const char *kind, const char *detail)
{
	struct dead *d = arg;
	d->calls++;
	snprintf(d->job_id, sizeof(d->job_id), "%s", job_id);
	snprintf(d->recipient, sizeof(d->recipient), "%s", recipient);
	snprintf(d->kind, sizeof(d->kind), "%s", kind ? kind : "");
	snprintf(d->detail, sizeof(d->detail), "%s", detail ? detail : "");
}

/* The core's before-sleep, as far as delivery goes: commit the completions
 * (which starts what is due next); the test's run ends once the adapter has
 * nothing under way. */
static int s_before_sleep(struct yj_loop *loop, void *arg)
{
	struct fx *f = arg;
	yj_outbox_flush(f->ob);
	if (f->running && s_pg.n_pending == 0 && !s_pg.armed && !yj_outbox_pass_pending(f->ob) &&
	    !yj_outbox_digests_building(f->ob))
		yj_loop_stop(loop);
	return 0;
}

static int s_safety(struct yj_loop *loop, void *arg)
{
	struct fx *f = arg;
	f->timed_out = 1;
	yj_loop_stop(loop);
	return 0;
}

/* Run the loop until every delivery started has been answered and committed. */
static void s_run(struct fx *f)
{
	int64_t t = yj_loop_timer(f->c.loop, 10000, 0, s_safety, f);
	assert_true(t > 0);
	f->running = 1;
	assert_int_equal(yj_loop_run(f->c.loop), 0);
	f->running = 0;
	yj_loop_timer_cancel(f->c.loop, t);
	assert_false(f->timed_out);
	/* A completion only records; the next deliveries start from the commit. */
	assert_false(s_pg.reentered);
}

static void s_kick_run(struct fx *f)
{
	yj_outbox_kick(f->ob);
	s_run(f);
}

static int setup(void **state)
{
	static const struct opts none = { NULL, 0 };
	const struct opts *o = *state ? *state : &none;
	struct fx *f = calloc(1, sizeof(*f));
	if (!f || s_fx_open(&f->c, "outbox", s_conf_fmt, o->cs ? o->cs : S_CS_PIGEON, &s_pigeon, &s_pg) != 0)
		return -1;
	s_pg_reset(f->c.loop);
	s_rng_reset();
	if (yj_outbox_start(&f->c.core, &f->ob) != 0)
		return -1;
	f->c.core.outbox = f->ob;
	yj_outbox_set_dead_hook(f->ob, s_dead_hook, &f->dead);
	if (o->digest) {
		if (yj_digest_start(&f->c.core, &f->dg) != 0)
			return -1;
		f->c.core.digest = f->dg;
	}
	if (yj_loop_before_sleep(f->c.loop, s_before_sleep, f) != 0)
		return -1;
	*state = f;
	return 0;
}

/* test_digest_built_beside_a_thread_in_libc_time's spinner runs while set. */
static volatile int s_time_spin;

static int teardown(void **state)
{
	struct fx *f = *state;
	/* A failed case of the spinner's must not leave it spinning into the next. */
	s_time_spin = 0;
	yj_digest_stop(&f->dg);
	yj_outbox_stop(&f->ob);
	/* A case that ends with another config in force leaves it to be freed here. */
	if (f->c.core.cfg != f->c.cfg) {
		struct yj_config *c = (struct yj_config *)f->c.core.cfg;
		yj_config_free(&c);
	}
	s_fx_close(&f->c);
	s_pg_reset(NULL);
	free(f);
	return 0;
}

/* --- events (core_fixture.h: s_event) --- */

/* A looked-after child of Milton Keynes released from MK: one immediate
 * notification (lac_in_custody, to its children's services) and a digest entry. */
static uint64_t s_lac_event(struct fx *f)
{
	struct yj_route_counts c;
	struct ev e = { .status = "released_nfa", .looked_after = 1, .responsible_la = "E06000042" };
	uint64_t seq = s_event(&f->c, &e, &c);
	assert_int_equal(c.outbox + c.unroutable, 1);
	assert_int_equal(c.digest, 1);
	return seq;
}

/* --- reading back (copied out: no assert inside a transaction) --- */

struct s_counts {
	uint64_t outbox, dlq, unroutable;
};

static int s_counts_fn(struct yj_txn *txn, void *arg)
{
	struct s_counts *c = arg;
	int rc = yj_notes_count(txn, YJ_NOTES_OUTBOX, &c->outbox);
	if (!rc)
		rc = yj_notes_count(txn, YJ_NOTES_DLQ, &c->dlq);
	if (!rc)
		rc = yj_notes_count(txn, YJ_NOTES_UNROUTABLE, &c->unroutable);
	return rc;
}

static struct s_counts s_counts(struct fx *f)
{
	struct s_counts c = { 0, 0, 0 };
	assert_int_equal(yj_store_read(f->c.st, s_counts_fn, &c), 0);
	return c;
}

#define assert_queues(f, o, d, u)                                        \
	do {                                                             \
		struct s_counts c_ = s_counts(f);                        \
		if (c_.outbox != (o) || c_.dlq != (d) || c_.unroutable != (u)) \
			fail_msg("queues: outbox %llu dlq %llu unroutable %llu, want %d %d %d", \
				 (unsigned long long)c_.outbox, (unsigned long long)c_.dlq, \
				 (unsigned long long)c_.unroutable, (o), (d), (u)); \
	} while (0)

struct audits {
	Yjlink__V1__AuditRecord *v[S_MAX];
	size_t n;
	uint64_t checked, bad;
	int verify_rc;
};

static int s_audit_cb(void *arg, const Yjlink__V1__AuditRecord *rec)
{
	struct audits *a = arg;
	if (a->n == S_MAX)
		return 1;
	size_t len = yjlink__v1__audit_record__get_packed_size(rec);
	uint8_t *buf = malloc(len ? len : 1);
	if (!buf)
		return YJ_ENOMEM;
	yjlink__v1__audit_record__pack(rec, buf);
	a->v[a->n] = yjlink__v1__audit_record__unpack(NULL, len, buf);
	free(buf);
	if (!a->v[a->n])
		return YJ_ENOMEM;
	a->n++;
	return 0;
}

static int s_audit_read_fn(struct yj_txn *txn, void *arg)
{
	struct audits *a = arg;
	int rc = yj_audit_each(txn, 0, s_audit_cb, a);
	a->verify_rc = yj_audit_verify(txn, &a->checked, &a->bad);
	return rc < 0 ? rc : 0;
}

static void s_audits(struct fx *f, struct audits *a)
{
	memset(a, 0, sizeof(*a));
	assert_int_equal(yj_store_read(f->c.st, s_audit_read_fn, a), 0);
	assert_int_equal(a->verify_rc, 0);
	assert_int_equal(a->checked, a->n);
}

static void s_audits_free(struct audits *a)
{
	for (size_t i = 0; i < a->n; i++)
		yjlink__v1__audit_record__free_unpacked(a->v[i], NULL);
	a->n = 0;
}

static int s_has_str(char *const *v, size_t n, const char *s)
{
	for (size_t i = 0; i < n; i++) {
		if (!strcmp(v[i], s))
			return 1;
	}
	return 0;
}

struct s_disc {
	uint64_t seq;
	char rcpts[8][128];
	size_t n;
};

static int s_disc_cb(void *arg, const char *recipient)
{
	struct s_disc *d = arg;
	if (d->n < 8)
		snprintf(d->rcpts[d->n++], sizeof(d->rcpts[0]), "%s", recipient);
	return 0;
}

static int s_disc_fn(struct yj_txn *txn, void *arg)
{
	struct s_disc *d = arg;
	int rc = yj_disclosed_each(txn, d->seq, s_disc_cb, d);
	return rc < 0 ? rc : 0;
}

struct s_retry {
	const struct yj_config *cfg;
	uint64_t number;
	int64_t now;
	int rc;
};

static int s_retry_fn(struct yj_txn *txn, void *arg)
{
	struct s_retry *r = arg;
	r->rc = yj_outbox_retry_dead(txn, r->cfg, r->number, r->now);
	return r->rc == YJ_ENOENT ? 0 : r->rc;
}

static int s_retry_dead(struct fx *f, uint64_t number)
{
	struct s_retry r = { f->c.core.cfg, number, yj_clock_now_us(), 0 };
	int rc = yj_store_write(f->c.st, s_retry_fn, &r);
	return rc ? rc : r.rc;
}

/* --- notifications --- */

static void test_deliver_notification(void **state)
{
	struct fx *f = *state;
	struct audits a;
	struct s_disc d;

	yj_clock_set_us(s_utc(2026, 6, 10, 9, 0)); /* Wednesday 10:00 BST */
	uint64_t seq = s_lac_event(f);
	assert_queues(f, 1, 0, 0);
	s_kick_run(f);

	/* The adapter had it once, as data. */
	assert_int_equal(s_pg.n_msgs, 1);
	const struct s_msg *m = &s_pg.msgs[0];
	const struct yj_recipient *r = yj_config_recipient(f->c.cfg, "children_services:E06000042");
	assert_int_equal(m->kind, YJ_MESSAGE_NOTIFICATION);
	assert_string_equal(m->id, "tst-000000000001");
	assert_string_equal(m->kind_name, "lac_in_custody");
	assert_string_equal(m->rcpt, "children_services:E06000042");
	/* Its settings are the recipient's pigeon settings struct, as the loader filled it. */
	assert_ptr_equal(m->settings, r->output_settings);
	assert_string_equal(m->loft, "cs-loft");
	assert_null(m->date);
	assert_null(m->csv);

	cJSON *root = cJSON_Parse(m->json);
	assert_non_null(root);
	assert_string_equal(cJSON_GetObjectItemCaseSensitive(root, "notification_id")->valuestring, "tst-000000000001");
	assert_string_equal(cJSON_GetObjectItemCaseSensitive(root, "recipient")->valuestring, "children_services:E06000042");
	assert_string_equal(cJSON_GetObjectItemCaseSensitive(root, "rule")->valuestring, "lac_in_custody");
	assert_string_equal(cJSON_GetObjectItemCaseSensitive(root, "legal_basis")->valuestring, "Children Act 1989 s.22");
	assert_null(cJSON_GetObjectItemCaseSensitive(root, "out_of_hours"));
	const cJSON *ev = cJSON_GetObjectItemCaseSensitive(root, "event");
	assert_non_null(ev);
	const cJSON *child = cJSON_GetObjectItemCaseSensitive(ev, "child");
	const cJSON *cu = cJSON_GetObjectItemCaseSensitive(ev, "custody");
	assert_non_null(child);
	assert_non_null(cu);
	/* The data sharing agreement: child.person_id and custody.status only. */
	assert_string_equal(cJSON_GetObjectItemCaseSensitive(child, "person_id")->valuestring, "P1");
	assert_null(cJSON_GetObjectItemCaseSensitive(child, "given_name"));
	assert_null(cJSON_GetObjectItemCaseSensitive(child, "date_of_birth"));
	assert_string_equal(cJSON_GetObjectItemCaseSensitive(cu, "status")->valuestring, "released_nfa");
	assert_null(cJSON_GetObjectItemCaseSensitive(cu, "suite"));
	assert_null(cJSON_GetObjectItemCaseSensitive(ev, "source_id"));
	cJSON_Delete(root);

	/* Gone from the outbox, with its disclosure audited. */
	assert_queues(f, 0, 0, 0);
	s_audits(f, &a);
	assert_int_equal(a.n, 1);
	const Yjlink__V1__AuditRecord *ar = a.v[0];
	assert_string_equal(ar->action, "disclosure");
	assert_string_equal(ar->rule, "lac_in_custody");
	assert_string_equal(ar->notification_id, "tst-000000000001");
	assert_string_equal(ar->recipient, "children_services:E06000042");
	assert_string_equal(ar->address, "pigeon://cs-loft");
	assert_string_equal(ar->legal_basis, "Children Act 1989 s.22");
	assert_int_equal(ar->n_seqs, 1);
	assert_int_equal(ar->seqs[0], seq);
	assert_true(s_has_str(ar->fields, ar->n_fields, "child.person_id"));
	assert_false(s_has_str(ar->fields, ar->n_fields, "child.given_name"));
	assert_true(s_has_str(ar->feeds, ar->n_feeds, "custody"));
	s_audits_free(&a);
	/* The recipient has had the event (a hold release would go to it). */
	memset(&d, 0, sizeof(d));
	d.seq = seq;
	assert_int_equal(yj_store_read(f->c.st, s_disc_fn, &d), 0);
	assert_int_equal(d.n, 1);
	assert_string_equal(d.rcpts[0], "children_services:E06000042");
	assert_int_equal(yj_outbox_attempts(f->ob, 0, YJ_DELIVERY_OK), 1);
	assert_int_equal(f->dead.calls, 0);

	/* Nothing more goes. */
	s_kick_run(f);
	assert_int_equal(s_pg.n_msgs, 1);
}

static void test_retry_then_same_id(void **state)
{
	struct fx *f = *state;
	struct jobs j;
	struct audits a;
	int64_t t0 = s_utc(2026, 6, 10, 9, 0);

	yj_clock_set_us(t0);
	s_lac_event(f);
	s_script(YJ_DELIVERY_RETRY);
	/* The jitter of this failure: the lowest the first time it is drawn
	 * (when the completion is committed), the highest the second. A job is
	 * retried at its next_attempt whatever is drawn after it. */
	s_rng_script[s_rng_n++] = 0;
	s_rng_script[s_rng_n++] = 1;
	s_kick_run(f);
	assert_int_equal(s_pg.n_msgs, 1);

	/* Kept, with one attempt and its next one after a backoff. */
	assert_queues(f, 1, 0, 0);
	s_jobs(&f->c, YJ_NOTES_OUTBOX, &j);
	assert_int_equal(j.v[0]->attempts, 1);
	assert_true(j.v[0]->has_next_attempt_us);
	/* backoff_min_ms 20000: the first delay lies in [10 s, 20 s). */
	assert_true(j.v[0]->next_attempt_us >= t0 + 10 * S_SEC);
	assert_true(j.v[0]->next_attempt_us < t0 + 80 * S_SEC);
	assert_string_equal(j.v[0]->last_error, "storm over the loft");
	int64_t next = j.v[0]->next_attempt_us;
	s_jobs_free(&j);
	s_audits(f, &a);
	assert_int_equal(a.n, 0);
	assert_int_equal(yj_outbox_attempts(f->ob, 0, YJ_DELIVERY_RETRY), 1);

	/* Not before its time. */
	s_kick_run(f);
	assert_int_equal(s_pg.n_msgs, 1);

	/* Past it: again, with the same id, and this time delivered. */
	yj_clock_set_us(next + S_SEC);
	s_kick_run(f);
	int went_at_next = s_pg.n_msgs == 2;
	if (!went_at_next) {
		/* Later it does go: see the failure below. */
		yj_clock_set_us(t0 + 120 * S_SEC);
		s_kick_run(f);
	}
	assert_int_equal(s_pg.n_msgs, 2);
	assert_string_equal(s_pg.msgs[1].id, "tst-000000000001");
	assert_string_equal(s_pg.msgs[1].id, s_pg.msgs[0].id);
	assert_queues(f, 0, 0, 0);
	s_audits(f, &a);
	assert_int_equal(a.n, 1);
	assert_string_equal(a.v[0]->notification_id, "tst-000000000001");
	s_audits_free(&a);
	assert_int_equal(f->dead.calls, 0);
	if (!went_at_next)
		fail_msg("the job was not retried 1 s after its stored next_attempt_us (%+lld s from the failure): "
			 "the recipient's own backoff (outbox.c, yj_outbox_flush: rs->next_attempt_us = now + "
			 "yj_outbox_backoff_us(cfg, 1, s_random)) draws a second, different jitter and holds it back",
			 (long long)((next - t0) / S_SEC));
}

/* A stop (yj_outbox_drain) starts nothing more and counts no attempt: the
 * job stays as it was, to go at the next start with its id. */
static void test_drain_starts_nothing(void **state)
{
	struct fx *f = *state;
	struct jobs j;

	yj_clock_set_us(s_utc(2026, 6, 10, 9, 0));
	s_lac_event(f);
	yj_outbox_drain(f->ob);
	s_kick_run(f);
	/* Nothing went, and the one job is as it was: no attempt, no backoff. */
	assert_int_equal(s_pg.n_msgs + yj_outbox_attempts(f->ob, 0, YJ_DELIVERY_RETRY), 0);
	s_jobs(&f->c, YJ_NOTES_OUTBOX, &j);
	assert_true(j.n == 1 && j.v[0]->attempts == 0 && !j.v[0]->has_next_attempt_us);
	s_jobs_free(&j);
}

static void test_fatal_dead_letter(void **state)
{
	struct fx *f = *state;
	struct jobs j;
	struct audits a;
	struct yj_outbox_stats st;

	yj_clock_set_us(s_utc(2026, 6, 10, 9, 0));
	s_lac_event(f);
	s_script(YJ_DELIVERY_FATAL);
	s_kick_run(f);

	/* In the DLQ at once, the escalation hook told once. */
	assert_int_equal(s_pg.n_msgs, 1);
	assert_queues(f, 0, 1, 0);
	assert_int_equal(f->dead.calls, 1);
	assert_string_equal(f->dead.job_id, "tst-000000000001");
	assert_string_equal(f->dead.recipient, "children_services:E06000042");
	assert_string_equal(f->dead.kind, "lac_in_custody");
	assert_string_equal(f->dead.detail, "bird lost");
	s_jobs(&f->c, YJ_NOTES_DLQ, &j);
	assert_int_equal(j.n, 1);
	assert_int_equal(j.v[0]->attempts, 1);
	assert_true(j.v[0]->has_failed_at_us);
	assert_string_equal(j.v[0]->last_error, "bird lost");
	uint64_t number = j.v[0]->number;
	s_jobs_free(&j);
	assert_int_equal(yj_outbox_stats(f->ob, &st), 0);
	assert_int_equal(st.dead_letters, 1);
	assert_int_equal(st.dead_lettered, 1);
	assert_int_equal(st.depth, 0);
	s_audits(f, &a);
	assert_int_equal(a.n, 0); /* nothing was disclosed */

	/* Nothing goes by itself. */
	s_kick_run(f);
	assert_int_equal(s_pg.n_msgs, 1);
	assert_int_equal(f->dead.calls, 1);

	/* Retried by an operator: back as new (attempts 0), and delivered, same id. */
	assert_int_equal(s_retry_dead(f, number + 100), YJ_ENOENT);
	assert_int_equal(s_retry_dead(f, number), 0);
	assert_queues(f, 1, 0, 0);
	s_jobs(&f->c, YJ_NOTES_OUTBOX, &j);
	assert_int_equal(j.v[0]->attempts, 0);
	assert_false(j.v[0]->has_next_attempt_us);
	assert_false(j.v[0]->has_failed_at_us);
	assert_false(j.v[0]->has_not_before_us && j.v[0]->not_before_us); /* no hours: at once */
	s_jobs_free(&j);
	s_kick_run(f);
	assert_int_equal(s_pg.n_msgs, 2);
	assert_string_equal(s_pg.msgs[1].id, "tst-000000000001");
	assert_queues(f, 0, 0, 0);
	assert_int_equal(f->dead.calls, 1);
}

static void test_retry_past_max_age(void **state)
{
	struct fx *f = *state;
	struct jobs j;
	int64_t t0 = s_utc(2026, 6, 10, 9, 0);

	yj_clock_set_us(t0);
	s_lac_event(f);
	s_script(YJ_DELIVERY_RETRY);
	s_script(YJ_DELIVERY_RETRY);
	s_kick_run(f);
	assert_queues(f, 1, 0, 0);
	assert_int_equal(f->dead.calls, 0);

	/* Two hours on (max_age_s 3600): the next transient failure gives up. */
	yj_clock_set_us(t0 + 7200 * S_SEC);
	s_kick_run(f);
	assert_int_equal(s_pg.n_msgs, 2);
	assert_string_equal(s_pg.msgs[1].id, s_pg.msgs[0].id);
	assert_queues(f, 0, 1, 0);
	assert_int_equal(f->dead.calls, 1);
	assert_string_equal(f->dead.job_id, "tst-000000000001");
	assert_string_equal(f->dead.detail, "storm over the loft");
	s_jobs(&f->c, YJ_NOTES_DLQ, &j);
	assert_int_equal(j.n, 1);
	assert_int_equal(j.v[0]->attempts, 2);
	s_jobs_free(&j);
}

static void test_retry_dead_out_of_hours(void **state)
{
	struct fx *f = *state;
	struct jobs j;
	struct yj_route_counts c;

	/* Wednesday 10:00: the L&D is open and is sent the detention at once. */
	yj_clock_set_us(s_utc(2026, 6, 10, 9, 0));
	struct ev e = { .status = "detained" };
	s_event(&f->c, &e, &c);
	assert_int_equal(c.outbox, 1);
	s_script(YJ_DELIVERY_FATAL);
	s_kick_run(f);
	assert_int_equal(s_pg.n_msgs, 1);
	assert_string_equal(s_pg.msgs[0].rcpt, "liaison_diversion:tvp");
	assert_string_equal(s_pg.msgs[0].loft, "ld-loft");
	assert_queues(f, 0, 1, 0);
	s_jobs(&f->c, YJ_NOTES_DLQ, &j);
	uint64_t number = j.v[0]->number;
	s_jobs_free(&j);

	/* Retried on Thursday at 02:00: due at the 08:00 opening, out of hours. */
	yj_clock_set_us(s_utc(2026, 6, 11, 1, 0));
	assert_int_equal(s_retry_dead(f, number), 0);
	assert_queues(f, 1, 0, 0);
	s_jobs(&f->c, YJ_NOTES_OUTBOX, &j);
	assert_int_equal(j.v[0]->attempts, 0);
	assert_true(j.v[0]->has_not_before_us);
	assert_int_equal(j.v[0]->not_before_us, s_utc(2026, 6, 11, 7, 0));
	assert_true(j.v[0]->has_out_of_hours && j.v[0]->out_of_hours);
	assert_true(j.v[0]->created_at_us >= s_utc(2026, 6, 11, 1, 0));
	s_jobs_free(&j);
	s_kick_run(f);
	assert_int_equal(s_pg.n_msgs, 1); /* closed */

	/* 08:01: it goes, same id, saying it was made out of hours. */
	yj_clock_set_us(s_utc(2026, 6, 11, 7, 1));
	s_kick_run(f);
	assert_int_equal(s_pg.n_msgs, 2);
	assert_string_equal(s_pg.msgs[1].id, s_pg.msgs[0].id);
	cJSON *root = cJSON_Parse(s_pg.msgs[1].json);
	assert_non_null(root);
	assert_true(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(root, "out_of_hours")));
	cJSON_Delete(root);
	assert_queues(f, 0, 0, 0);
}

/* More jobs passed over as not yet due than one walk reads (twice the
 * window) must not hide a due job behind them: the walk resumes where it
 * stopped instead of starting again from the oldest. */

/* n L&D referrals of event seq, routed as if at made_at. */
struct s_referrals {
	struct fx *f;
	uint64_t seq;
	int64_t made_at;
	unsigned n;
};

static int s_referrals_fn(struct yj_txn *txn, void *arg)
{
	const struct s_referrals *w = arg;
	int unroutable = 0, rc = 0;
	for (unsigned i = 0; i < w->n && !rc; i++)
		rc = yj_route_notify(txn, w->f->c.core.cfg, "liaison_diversion:tvp", "liaison_diversion",
				     "liaison_diversion", w->seq, "", w->made_at, &unroutable);
	return rc;
}

static void s_notify(struct fx *f, uint64_t seq, int64_t made_at, unsigned n)
{
	struct s_referrals w = { f, seq, made_at, n };
	assert_int_equal(yj_store_write(f->c.st, s_referrals_fn, &w), 0);
}

static void test_due_behind_not_due(void **state)
{
	struct fx *f = *state;
	struct yj_route_counts c;

	/* Wednesday 23:00: the L&D is closed; 66 referrals wait for 08:00. */
	yj_clock_set_us(s_utc(2026, 6, 10, 22, 0));
	struct ev e = { .status = "detained" };
	uint64_t seq = s_event(&f->c, &e, &c);
	assert_int_equal(c.outbox, 1);
	s_notify(f, seq, yj_clock_now_us(), 65);
	/* One made in the day (a dead letter of then, say) is due now. */
	s_notify(f, seq, s_utc(2026, 6, 10, 9, 0), 1);
	assert_queues(f, 67, 0, 0);
	s_kick_run(f);
	assert_int_equal(s_pg.n_msgs, 1);
	assert_string_equal(s_pg.msgs[0].id, "tst-000000000067");
	/* Passes later in the night start nothing. */
	yj_clock_set_us(s_utc(2026, 6, 10, 23, 0));
	s_kick_run(f);
	yj_outbox_kick_appended(f->ob);
	s_run(f);
	assert_int_equal(s_pg.n_msgs, 1);
	assert_queues(f, 66, 0, 0);

	/* 08:01: the walk passed them over until they were due; now every one goes. */
	yj_clock_set_us(s_utc(2026, 6, 11, 7, 1));
	yj_outbox_kick_appended(f->ob);
	s_run(f);
	assert_int_equal(s_pg.n_msgs, 67);
	assert_queues(f, 0, 0, 0);
}

/* A pass that starts expensive jobs (a digest is built as it starts) stops
 * at its time budget and lets the loop serve its sockets and timers before
 * it goes on: one pass starting a run of them held the loop for seconds. */

static int s_probe(struct yj_loop *loop, void *arg)
{
	(void)loop;
	*(size_t *)arg = s_pg.n_msgs;
	return 0;
}

static void test_pass_yields_to_loop(void **state)
{
	struct fx *f = *state;
	struct yj_route_counts c;

	/* Wednesday noon: the L&D is open; its referral and four more due. */
	yj_clock_set_us(s_utc(2026, 6, 10, 11, 0));
	struct ev e = { .status = "detained" };
	uint64_t seq = s_event(&f->c, &e, &c);
	assert_int_equal(c.outbox, 1);
	s_notify(f, seq, yj_clock_now_us(), 4);
	assert_queues(f, 5, 0, 0);
	/* Each start takes longer than a pass's budget. */
	s_pg.deliver_ms = 15;
	size_t seen = 99;
	assert_true(yj_loop_timer(f->c.loop, 0, 0, s_probe, &seen) > 0);
	yj_outbox_kick(f->ob);
	assert_int_equal(s_pg.n_msgs, 1);
	assert_true(yj_outbox_pass_pending(f->ob));
	s_run(f);
	/* The loop ran the probe before the pass went on; then every job went. */
	assert_int_equal(seen, 1);
	assert_int_equal(s_pg.n_msgs, 5);
	assert_false(yj_outbox_pass_pending(f->ob));
	assert_queues(f, 0, 0, 0);
}

/* A live investigation: withheld while held; released, the rest follows. */

struct s_release {
	const struct yj_config *cfg;
	const struct yj_refdata *ref;
	uint64_t seq;
	int64_t now;
	unsigned queued;
	int rc;
};

static int s_release_fn(struct yj_txn *txn, void *arg)
{
	struct s_release *r = arg;
	r->rc = yj_route_release(txn, r->cfg, r->ref, r->seq, "DC Smith", "uid:1000", "case closed", r->now, &r->queued, NULL);
	return r->rc;
}

static void test_held_then_released(void **state)
{
	struct fx *f = *state;
	struct yj_route_counts c;
	struct audits a;

	yj_clock_set_us(s_utc(2026, 6, 10, 9, 0)); /* Wednesday 10:00: the L&D is open */
	struct ev e = { .status = "detained", .live = 1, .reason = "suspected robbery" };
	uint64_t seq = s_event(&f->c, &e, &c);
	assert_int_equal(c.held, 1);
	assert_int_equal(c.outbox, 1);
	s_kick_run(f);
	assert_int_equal(s_pg.n_msgs, 1);
	cJSON *root = cJSON_Parse(s_pg.msgs[0].json);
	assert_non_null(root);
	assert_true(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(root, "withheld")));
	const cJSON *cu = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(root, "event"), "custody");
	assert_non_null(cu);
	assert_string_equal(cJSON_GetObjectItemCaseSensitive(cu, "status")->valuestring, "detained");
	assert_null(cJSON_GetObjectItemCaseSensitive(cu, "reason")); /* allowed (custody.*), but withheld */
	cJSON_Delete(root);

	/* Released at 11:00: the L&D, which had it, is sent what was withheld, at once. */
	yj_clock_set_us(s_utc(2026, 6, 10, 10, 0));
	struct s_release r = { f->c.core.cfg, f->c.core.ref, seq, yj_clock_now_us(), 0, 0 };
	assert_int_equal(yj_store_write(f->c.st, s_release_fn, &r), 0);
	assert_int_equal(r.queued, 1);
	s_kick_run(f);
	assert_int_equal(s_pg.n_msgs, 2);
	assert_string_equal(s_pg.msgs[1].kind_name, "hold_released");
	assert_string_equal(s_pg.msgs[1].rcpt, "liaison_diversion:tvp");
	assert_string_equal(s_pg.msgs[1].id, "tst-000000000002");
	root = cJSON_Parse(s_pg.msgs[1].json);
	assert_non_null(root);
	assert_null(cJSON_GetObjectItemCaseSensitive(root, "withheld"));
	cu = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(root, "event"), "custody");
	assert_string_equal(cJSON_GetObjectItemCaseSensitive(cu, "reason")->valuestring, "suspected robbery");
	cJSON_Delete(root);
	assert_queues(f, 0, 0, 0);
	s_audits(f, &a);
	assert_int_equal(a.n, 2);
	assert_string_equal(a.v[1]->notification_id, "tst-000000000002");
	assert_string_equal(a.v[1]->rule, "hold_release");
	assert_true(s_has_str(a.v[1]->fields, a.v[1]->n_fields, "custody.reason"));
	assert_false(s_has_str(a.v[0]->fields, a.v[0]->n_fields, "custody.reason"));
	s_audits_free(&a);
}

/* A reload takes a recipient's destination away while a delivery to it is
 * under way; the receiver then says OK. The disclosure happened: it is
 * audited, and the job is not kept to be sent again. */
static void test_reconcile_in_flight(void **state)
{
	struct fx *f = *state;
	struct yj_config *none = NULL;
	struct audits a;

	yj_clock_set_us(s_utc(2026, 6, 10, 9, 0));
	s_lac_event(f);
	yj_outbox_kick(f->ob);
	assert_int_equal(s_pg.n_msgs, 1);   /* handed to the pigeon ... */
	assert_int_equal(s_pg.n_pending, 1); /* ... and not answered yet */

	assert_int_equal(s_load(f, "none.conf", S_CS_NONE, &none), 0);
	f->c.core.cfg = none;
	int moved = yj_outbox_reconcile(f->ob);
	s_run(f); /* the pigeon answers OK */
	assert_int_equal(s_pg.n_msgs, 1);

	struct s_counts q = s_counts(f);
	s_audits(f, &a);
	size_t audited = a.n;
	s_audits_free(&a);
	f->c.core.cfg = f->c.cfg;
	yj_config_free(&none);
	if (audited != 1 || q.unroutable != 0 || q.outbox != 0)
		fail_msg("a delivery answered OK after reconcile moved its job (reconcile moved %d): %zu audit record(s), "
			 "outbox %llu, unroutable %llu; want 1 record and the job gone",
			 moved, audited, (unsigned long long)q.outbox, (unsigned long long)q.unroutable);
}

/* --- backoff --- */

static uint32_t s_rnd_zero(uint32_t bound)
{
	(void)bound;
	return 0;
}

static uint32_t s_max_bound;

static uint32_t s_rnd_top(uint32_t bound)
{
	if (bound > s_max_bound)
		s_max_bound = bound;
	return bound ? bound - 1 : 0;
}

static uint32_t s_rnd_half(uint32_t bound) { return bound / 2; }

static void test_backoff(void **state)
{
	(void)state;
	struct yj_config cfg;
	memset(&cfg, 0, sizeof(cfg));
	cfg.delivery_backoff_min_ms = 1000;
	cfg.delivery_backoff_max_ms = 60000;
	const int64_t lo = 500 * INT64_C(1000), cap = 60000 * INT64_C(1000);
	int64_t prev_top = 0;
	int capped_at = 0;

	for (uint32_t n = 1; n <= 40; n++) {
		int64_t a = yj_outbox_backoff_us(&cfg, n, s_rnd_zero);
		int64_t b = yj_outbox_backoff_us(&cfg, n, s_rnd_top);
		int64_t h = yj_outbox_backoff_us(&cfg, n, s_rnd_half);
		/* Within [min/2, cap] whatever the randomness. */
		assert_true(a >= lo && a <= cap);
		assert_true(b >= lo && b <= cap);
		assert_true(h >= a && h <= b);
		assert_int_equal(a, lo); /* the floor */
		/* The top of the range grows with attempts until the cap, then stays. */
		if (!capped_at) {
			assert_true(b > prev_top);
			if (b >= cap - 1000)
				capped_at = (int)n;
		} else {
			assert_int_equal(b, prev_top);
		}
		prev_top = b;
	}
	assert_true(capped_at > 1 && capped_at < 10);
	assert_true(s_max_bound <= 60000);
	/* The first retry waits up to the minimum; the second up to twice it. */
	assert_true(yj_outbox_backoff_us(&cfg, 1, s_rnd_top) <= 1000 * INT64_C(1000));
	assert_true(yj_outbox_backoff_us(&cfg, 2, s_rnd_top) > 1000 * INT64_C(1000));
	assert_true(yj_outbox_backoff_us(&cfg, 2, s_rnd_top) <= 2000 * INT64_C(1000));
}

/* --- digests, through the same adapter --- */

/* The CSV's header columns and data rows. */
static size_t s_csv_split(const char *csv, char cols[64][32], size_t *ncols)
{
	size_t rows = 0;
	const char *eol = strstr(csv, "\r\n");
	*ncols = 0;
	if (!eol)
		return 0;
	for (const char *p = csv; p < eol && *ncols < 64;) {
		const char *c = memchr(p, ',', (size_t)(eol - p));
		size_t len = (size_t)((c ? c : eol) - p);
		snprintf(cols[(*ncols)++], 32, "%.*s", (int)len, p);
		p = c ? c + 1 : eol;
	}
	for (const char *p = eol + 2; *p; rows++) {
		const char *e = strstr(p, "\r\n");
		if (!e)
			break;
		p = e + 2;
	}
	return rows;
}

static const cJSON *s_obj(const cJSON *o, const char *k)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
	if (!v)
		fail_msg("no \"%s\"", k);
	return v;
}

static cJSON *s_status(struct fx *f, const char *yjs)
{
	cJSON *st = yj_digest_status(f->dg);
	assert_non_null(st);
	cJSON *o = cJSON_DetachItemFromObjectCaseSensitive(st, yjs);
	cJSON_Delete(st);
	assert_non_null(o);
	return o;
}

static void test_digest_delivered(void **state)
{
	struct fx *f = *state;
	struct audits a;
	struct yj_route_counts c;

	/* Wednesday 06:00 BST: the planner first sees the YJS. */
	yj_clock_set_us(s_utc(2026, 6, 10, 5, 0));
	assert_int_equal(yj_digest_tick(f->dg), 0);
	yj_clock_set_us(s_utc(2026, 6, 10, 5, 10));
	struct ev e = { .status = "released_nfa" };
	uint64_t seq = s_event(&f->c, &e, &c);
	assert_int_equal(c.digest, 1);
	assert_int_equal(c.outbox + c.unroutable, 0);

	/* 07:31: planned into the outbox, then delivered by the pigeon like any job. */
	yj_clock_set_us(s_utc(2026, 6, 10, 6, 31));
	assert_int_equal(yj_digest_tick(f->dg), 1);
	assert_queues(f, 1, 0, 0);
	s_kick_run(f);
	assert_int_equal(s_pg.n_msgs, 1);
	const struct s_msg *m = &s_pg.msgs[0];
	const struct yj_recipient *r = yj_config_recipient(f->c.cfg, "yjs:mk");
	assert_int_equal(m->kind, YJ_MESSAGE_DIGEST);
	assert_string_equal(m->id, "tst-digest-mk-20260610T0730");
	assert_string_equal(m->kind_name, "daily_digest");
	assert_string_equal(m->rcpt, "yjs:mk");
	assert_ptr_equal(m->settings, r->output_settings);
	assert_string_equal(m->loft, "mk-loft");
	assert_string_equal(m->date, "2026-06-10");
	assert_string_equal(m->to, "2026-06-10T06:30:00Z");
	assert_non_null(m->from);
	assert_int_equal(m->events, 1);
	assert_int_equal(m->children, 1);
	assert_non_null(m->csv);

	cJSON *root = cJSON_Parse(m->json);
	assert_non_null(root);
	assert_string_equal(s_obj(root, "digest_id")->valuestring, m->id);
	assert_string_equal(s_obj(root, "recipient")->valuestring, "yjs:mk");
	assert_string_equal(s_obj(root, "date")->valuestring, "2026-06-10");
	const cJSON *win = s_obj(root, "window");
	assert_string_equal(s_obj(win, "from")->valuestring, m->from);
	assert_string_equal(s_obj(win, "to")->valuestring, "2026-06-10T06:30:00Z");
	const cJSON *sum = s_obj(root, "summary");
	assert_true(cJSON_IsObject(sum));
	assert_int_equal((int)s_obj(sum, "events")->valuedouble, 1);
	assert_int_equal((int)s_obj(sum, "children")->valuedouble, 1);
	/* One row per CSV row, keyed by the CSV's column names. */
	char cols[64][32];
	size_t ncols = 0;
	size_t csv_rows = s_csv_split(m->csv, cols, &ncols);
	const cJSON *rows = s_obj(root, "rows");
	assert_true(cJSON_IsArray(rows));
	assert_int_equal((size_t)cJSON_GetArraySize(rows), csv_rows);
	assert_true(csv_rows >= 1);
	int found = 0;
	char want_seq[24];
	snprintf(want_seq, sizeof(want_seq), "%llu", (unsigned long long)seq);
	const cJSON *row;
	cJSON_ArrayForEach(row, rows) {
		size_t k = 0;
		const cJSON *cell;
		cJSON_ArrayForEach(cell, row) {
			assert_true(k < ncols);
			assert_string_equal(cell->string, cols[k]);
			k++;
		}
		assert_int_equal(k, ncols);
		const cJSON *sq = s_obj(row, "seq");
		if (cJSON_IsString(sq) && !strcmp(sq->valuestring, want_seq)) {
			found++;
			assert_string_equal(s_obj(row, "section")->valuestring, "custody");
			assert_string_equal(s_obj(row, "person_id")->valuestring, "P1");
		}
	}
	assert_int_equal(found, 1);
	cJSON_Delete(root);

	/* Delivered: out of the outbox, confirmed in the digest state, audited. */
	assert_queues(f, 0, 0, 0);
	cJSON *st = s_status(f, "yjs:mk");
	assert_int_equal((int)s_obj(st, "sent")->valuedouble, 1);
	assert_string_equal(s_obj(st, "last_digest")->valuestring, "2026-06-10T06:30:00Z");
	assert_true(cJSON_IsFalse(s_obj(st, "pending")));
	cJSON_Delete(st);
	s_audits(f, &a);
	assert_int_equal(a.n, 1);
	assert_string_equal(a.v[0]->action, "disclosure");
	assert_string_equal(a.v[0]->notification_id, "tst-digest-mk-20260610T0730");
	assert_string_equal(a.v[0]->recipient, "yjs:mk");
	assert_string_equal(a.v[0]->address, "pigeon://mk-loft");
	assert_int_equal(a.v[0]->n_seqs, 1);
	assert_int_equal(a.v[0]->seqs[0], seq);
	s_audits_free(&a);
	char last[64];
	assert_int_equal(yj_digest_last_sent(f->dg, last, sizeof(last)), 0);
	assert_string_equal(last, "2026-06-10T06:30:00Z");

	/* An operator's resend: the same digest (same id, same rows) through the
	 * same adapter, audited with the operator; the schedule does not move. */
	char err[128] = "";
	yj_clock_set_us(s_utc(2026, 6, 10, 9, 0));
	assert_int_equal(yj_digest_resend(f->dg, "yjs:mk", "2026-06-10", "uid:1000", err, sizeof(err)), 1);
	s_kick_run(f);
	assert_int_equal(s_pg.n_msgs, 2);
	assert_int_equal(s_pg.msgs[1].kind, YJ_MESSAGE_DIGEST);
	assert_string_equal(s_pg.msgs[1].id, "tst-digest-mk-20260610T0730");
	assert_string_equal(s_pg.msgs[1].to, s_pg.msgs[0].to);
	assert_int_equal(s_pg.msgs[1].events, s_pg.msgs[0].events);
	assert_queues(f, 0, 0, 0);
	s_audits(f, &a);
	assert_int_equal(a.n, 2);
	assert_string_equal(a.v[1]->actor, "uid:1000");
	assert_string_equal(a.v[1]->notification_id, "tst-digest-mk-20260610T0730");
	assert_string_equal(a.v[1]->reason, "digest resent by an operator");
	assert_string_equal(a.v[0]->actor, "yjlinkd");
	s_audits_free(&a);
	st = s_status(f, "yjs:mk");
	assert_int_equal((int)s_obj(st, "sent")->valuedouble, 1);
	assert_true(cJSON_IsFalse(s_obj(st, "pending")));
	cJSON_Delete(st);
}

/* A thread of the daemon's inside the C library's time functions when the
 * digest helper is forked (the email workers log and check certificates on
 * theirs): glibc's zone lock is then held for ever in the helper, which must
 * not need it. Ten days' digests, each built while a thread spins in
 * localtime_r and gmtime_r; with the digest's times by localtime_r, nearly
 * every build hung until its 300 s limit (test_digest's year lost one digest
 * in 731 to it, under stress). */
static void *s_time_spinner(void *arg)
{
	(void)arg;
	time_t t = 1700000000;
	while (s_time_spin) {
		struct tm tm;
		localtime_r(&t, &tm);
		gmtime_r(&t, &tm);
		t += 3607;
	}
	return NULL;
}

static void test_digest_built_beside_a_thread_in_libc_time(void **state)
{
	struct fx *f = *state;
	pthread_t th;

	yj_clock_set_us(s_utc(2026, 6, 10, 5, 0));
	assert_int_equal(yj_digest_tick(f->dg), 0);
	s_time_spin = 1;
	assert_int_equal(pthread_create(&th, NULL, s_time_spinner, NULL), 0);
	for (int d = 0; d < 10; d++) {
		yj_clock_set_us(s_utc(2026, 6, 10 + d, 5, 10));
		struct ev e = { .status = "released_nfa" };
		s_event(&f->c, &e, NULL);
		yj_clock_set_us(s_utc(2026, 6, 10 + d, 6, 31));
		assert_int_equal(yj_digest_tick(f->dg), 1);
		s_kick_run(f);
		if (f->timed_out)
			break;
	}
	s_time_spin = 0;
	pthread_join(th, NULL);
	assert_false(f->timed_out);
	assert_int_equal(s_pg.n_msgs, 10);
	for (size_t i = 0; i < s_pg.n_msgs; i++)
		assert_int_equal(s_pg.msgs[i].kind, YJ_MESSAGE_DIGEST);
	assert_queues(f, 0, 0, 0);
}

static void test_digest_fatal_next_day(void **state)
{
	struct fx *f = *state;
	struct jobs j;

	yj_clock_set_us(s_utc(2026, 6, 10, 5, 0));
	assert_int_equal(yj_digest_tick(f->dg), 0);
	yj_clock_set_us(s_utc(2026, 6, 10, 5, 10));
	struct ev e1 = { .status = "released_nfa" };
	s_event(&f->c, &e1, NULL);
	yj_clock_set_us(s_utc(2026, 6, 10, 6, 31));
	assert_int_equal(yj_digest_tick(f->dg), 1);
	s_script(YJ_DELIVERY_FATAL);
	s_kick_run(f);

	/* The digest is dead-lettered like any job, the hook told. */
	assert_int_equal(s_pg.n_msgs, 1);
	assert_queues(f, 0, 1, 0);
	assert_int_equal(f->dead.calls, 1);
	assert_string_equal(f->dead.job_id, "tst-digest-mk-20260610T0730");
	assert_string_equal(f->dead.recipient, "yjs:mk");
	assert_string_equal(f->dead.kind, "daily_digest");
	s_jobs(&f->c, YJ_NOTES_DLQ, &j);
	assert_non_null(j.v[0]->digest);
	uint64_t failed_end = j.v[0]->digest->end_seq;
	int64_t failed_sched = j.v[0]->digest->scheduled_us;
	s_jobs_free(&j);
	cJSON *st = s_status(f, "yjs:mk");
	assert_int_equal((int)s_obj(st, "sent")->valuedouble, 0);
	assert_true(cJSON_IsTrue(s_obj(st, "pending")));
	cJSON_Delete(st);

	/* The next day's is planned all the same, its window from where the failed one ended. */
	yj_clock_set_us(s_utc(2026, 6, 10, 11, 0));
	struct ev e2 = { .person_id = "P2", .record_id = "CR2", .status = "released_nfa" };
	uint64_t s2 = s_event(&f->c, &e2, NULL);
	yj_clock_set_us(s_utc(2026, 6, 11, 6, 31));
	assert_int_equal(yj_digest_tick(f->dg), 1);
	s_jobs(&f->c, YJ_NOTES_OUTBOX, &j);
	assert_int_equal(j.n, 1);
	const Yjlink__V1__Digest *d = j.v[0]->digest;
	assert_non_null(d);
	assert_string_equal(d->id, "tst-digest-mk-20260611T0730");
	assert_int_equal(d->start_seq, failed_end);
	assert_int_equal(d->start_us, failed_sched);
	assert_int_equal(d->end_seq, s2);
	s_jobs_free(&j);
	s_kick_run(f);
	assert_int_equal(s_pg.n_msgs, 2);
	assert_string_equal(s_pg.msgs[1].id, "tst-digest-mk-20260611T0730");
	assert_int_equal(s_pg.msgs[1].events, 1);
	assert_queues(f, 0, 1, 0);
	st = s_status(f, "yjs:mk");
	assert_int_equal((int)s_obj(st, "sent")->valuedouble, 1);
	assert_string_equal(s_obj(st, "last_digest")->valuestring, "2026-06-11T06:30:00Z");
	cJSON_Delete(st);
	assert_int_equal(f->dead.calls, 1);
}

/* --- reconcile --- */

static void test_reconcile(void **state)
{
	struct fx *f = *state;
	struct jobs j;
	struct yj_config *cfg2 = NULL;

	/* The children's services have no destination yet: the job waits as unroutable. */
	yj_clock_set_us(s_utc(2026, 6, 10, 9, 0));
	assert_int_equal(yj_config_recipient(f->c.cfg, "children_services:E06000042")->output, -1);
	s_lac_event(f);
	assert_queues(f, 0, 0, 1);
	s_kick_run(f);
	assert_int_equal(s_pg.n_msgs, 0);

	/* A reload gives them the pigeon: the job moves to the outbox and goes. */
	assert_int_equal(s_load(f, "second.conf", S_CS_PIGEON, &cfg2), 0);
	f->c.core.cfg = cfg2;
	assert_int_equal(yj_outbox_reconcile(f->ob), 1);
	assert_int_equal(s_counts(f).unroutable, 0);
	s_run(f);
	assert_int_equal(s_pg.n_msgs, 1);
	assert_string_equal(s_pg.msgs[0].id, "tst-000000000001");
	assert_string_equal(s_pg.msgs[0].rcpt, "children_services:E06000042");
	assert_ptr_equal(s_pg.msgs[0].settings, yj_config_recipient(cfg2, "children_services:E06000042")->output_settings);
	assert_string_equal(s_pg.msgs[0].loft, "cs-loft");
	assert_queues(f, 0, 0, 0);

	/* And back: a job waiting for a recipient that loses its destination becomes unroutable. */
	s_lac_event(f);
	assert_queues(f, 1, 0, 0);
	f->c.core.cfg = f->c.cfg;
	assert_int_equal(yj_outbox_reconcile(f->ob), 1);
	assert_queues(f, 0, 0, 1);
	s_jobs(&f->c, YJ_NOTES_UNROUTABLE, &j);
	assert_string_equal(j.v[0]->recipient, "children_services:E06000042");
	s_jobs_free(&j);
	s_kick_run(f);
	assert_int_equal(s_pg.n_msgs, 1);
	/* Nothing to move: 0. */
	assert_int_equal(yj_outbox_reconcile(f->ob), 0);
	yj_config_free(&cfg2);
}

int main(void)
{
	setenv("TZ", "Europe/London", 1);
	tzset();
	yj_log_set_level(YJ_LOG_ERR);
	/* Before the outbox's sodium_init(). */
	if (randombytes_set_implementation(&s_rng) != 0)
		return 1;
	static const struct opts with_digest = { NULL, 1 };
	static const struct opts cs_none = { S_CS_NONE, 0 };
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_deliver_notification, setup, teardown),
		cmocka_unit_test_setup_teardown(test_retry_then_same_id, setup, teardown),
		cmocka_unit_test_setup_teardown(test_drain_starts_nothing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fatal_dead_letter, setup, teardown),
		cmocka_unit_test_setup_teardown(test_retry_past_max_age, setup, teardown),
		cmocka_unit_test_setup_teardown(test_retry_dead_out_of_hours, setup, teardown),
		cmocka_unit_test_setup_teardown(test_held_then_released, setup, teardown),
		cmocka_unit_test_setup_teardown(test_due_behind_not_due, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pass_yields_to_loop, setup, teardown),
		cmocka_unit_test(test_backoff),
		cmocka_unit_test_prestate_setup_teardown(test_digest_delivered, setup, teardown, (void *)&with_digest),
		cmocka_unit_test_prestate_setup_teardown(test_digest_built_beside_a_thread_in_libc_time, setup, teardown,
							 (void *)&with_digest),
		cmocka_unit_test_prestate_setup_teardown(test_digest_fatal_next_day, setup, teardown, (void *)&with_digest),
		cmocka_unit_test_prestate_setup_teardown(test_reconcile, setup, teardown, (void *)&cs_none),
		cmocka_unit_test_setup_teardown(test_reconcile_in_flight, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
