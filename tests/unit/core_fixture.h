/* core_fixture.h: what the tests of the core's delivery path (test_route.c,
 * test_digest_plan.c, test_outbox.c) stand on, so that each of them holds
 * only its own cases and what they alone need:
 *
 *  - "pigeon", an output the core has never heard of: its settings, as an
 *    adapter declares them (S_PIGEON_CONF). Each test wraps them in its own
 *    struct yj_adapter (only test_outbox.c's delivers).
 *  - struct core_fx: a directory of its own holding the config file (read
 *    by the real loader against the pigeon) and a real store, the
 *    compiled-in reference tables, a loop and a struct yj_core wired as
 *    main.c wires it, without ingest, outbox or digest planner: each test
 *    starts those it tests.
 *  - events stored as ingest stores them and routed in the same
 *    transaction (s_event), and the jobs read back (s_jobs).
 *
 * A header of static inline functions: the unit tests are built one file
 * each (tests/unit/test_*.c), and a test need not use all of it.
 *
 * Times are Europe/London (each test's main sets TZ); s_utc writes the
 * expected instants in UTC, so a test does not work out local time the way
 * the code under test does.
 */
#ifndef YJ_TEST_CORE_FIXTURE_H
#define YJ_TEST_CORE_FIXTURE_H

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "adapter.h"
#include "clock.h"
#include "config.h"
#include "core.h"
#include "db/events.h"
#include "db/notes.h"
#include "err.h"
#include "loop.h"
#include "refdata.h"
#include "route.h"
#include "store.h"

#define S_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define FORCE "E23000029"

/* An L&D service's opening hours, for a recipient of a test's config. */
#define S_HOURS                                                                                   \
	"hours = { mon = \"08:00-20:00\"; tue = \"08:00-20:00\"; wed = \"08:00-20:00\"; "           \
	"thu = \"08:00-20:00\"; fri = \"08:00-20:00\"; sat = \"09:00-17:00\"; sun = \"09:00-17:00\"; };"

/* --- the test output: out_pigeon, section and transport "pigeon" --- */

struct s_pigeon {
	int64_t speed;           /* its one setting of its own */
};

struct s_pigeon_rcpt {
	char *loft;              /* pigeon.loft, required of every recipient */
};

static const struct yj_setting s_pigeon_settings[] = {
	{ YJ_SETTING_INT, "speed", offsetof(struct s_pigeon, speed), "3", 1, 10, "how fast the birds fly" },
};

static const struct yj_setting s_pigeon_rcpt_settings[] = {
	{ YJ_SETTING_STR, "pigeon.loft", offsetof(struct s_pigeon_rcpt, loft), NULL, 0, 0, "the loft the bird flies to" },
};

/* The pigeon's conf (settings.h), for a test's `.conf = S_PIGEON_CONF`. */
#define S_PIGEON_CONF                                                   \
	{                                                               \
		.name = "out_pigeon",                                   \
		.section = "pigeon",                                    \
		.settings = s_pigeon_settings,                          \
		.n_settings = S_LEN(s_pigeon_settings),                 \
		.settings_size = sizeof(struct s_pigeon),               \
		.transport = "pigeon",                                  \
		.recipient_settings = s_pigeon_rcpt_settings,           \
		.n_recipient_settings = S_LEN(s_pigeon_rcpt_settings),  \
		.recipient_settings_size = sizeof(struct s_pigeon_rcpt), \
	}

/* --- the fixture --- */

struct core_fx {
	char dir[64];                              /* the test's own: config files and the store */
	const struct yj_adapter *adapters[2];      /* the test's one output, NULL-terminated (core.adapters) */
	const struct yj_settings_owner *owners[2]; /* its conf, for the loader, as main.c builds them */
	void *states[1];                           /* its state (core.adapter_state): non-NULL, running */
	struct yj_store *st;                       /* owned, dir/store */
	struct yj_config *cfg;                     /* owned, dir/yjlinkd.conf: what core.cfg starts with */
	struct yj_refdata *ref;                    /* owned, the compiled-in tables */
	struct yj_loop *loop;                      /* owned; run only by the tests that deliver */
	struct yj_core core;                       /* borrows the above, as main.c's does */
};

/* Remove dir and everything below it. */
static inline void s_rmdir(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	char p[512];
	if (!d)
		return;
	while ((e = readdir(d))) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		/* A path cut short would name another file: leave it. */
		int n = snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
		if (n < 0 || (size_t)n >= sizeof(p))
			continue;
		if (unlink(p) != 0)
			s_rmdir(p);
	}
	closedir(d);
	rmdir(dir);
}

static inline void s_report(void *arg, const char *file, int line, const char *msg)
{
	(void)arg;
	fprintf(stderr, "config: %s:%d: %s\n", file, line, msg);
}

/* Write fmt as c->dir/name (its one %s, when it has one, filled by arg) and
 * load it against the test's output. Every problem goes to stderr. */
static inline int s_fx_load(const struct core_fx *c, const char *name, const char *fmt, const char *arg,
			    struct yj_config **cfg)
{
	struct yj_diag diag = { s_report, NULL, 0 };
	char path[160];
	FILE *f;
	snprintf(path, sizeof(path), "%s/%s", c->dir, name);
	if (!(f = fopen(path, "w")) || fprintf(f, fmt, arg) < 0 || fclose(f) != 0)
		return -1;
	return yj_config_load(path, NULL, 0, c->owners, &diag, cfg);
}

/* Make c in a fresh /tmp/yj-test-<name>-XXXXXX: the config fmt (as for
 * s_fx_load) as yjlinkd.conf, the store, the loop, and the core with out
 * the one adapter, in state state. 0, or -1 (the test's setup fails). */
static inline int s_fx_open(struct core_fx *c, const char *name, const char *fmt, const char *arg,
			    const struct yj_adapter *out, void *state)
{
	struct yj_diag diag = { s_report, NULL, 0 };
	char sdir[128];

	snprintf(c->dir, sizeof(c->dir), "/tmp/yj-test-%s-XXXXXX", name);
	if (!mkdtemp(c->dir))
		return -1;
	c->adapters[0] = out;
	c->owners[0] = &out->conf;
	c->states[0] = state;
	if (s_fx_load(c, "yjlinkd.conf", fmt, arg, &c->cfg) != 0)
		return -1;
	if (yj_refdata_load(NULL, &diag, &c->ref) != 0)
		return -1;
	snprintf(sdir, sizeof(sdir), "%s/store", c->dir);
	struct yj_store_opts so = { .path = sdir, .map_size = 4 << 20, .max_map_size = 64 << 20 };
	if (yj_store_open(&so, &c->st) != 0)
		return -1;
	if (!(c->loop = yj_loop_new()))
		return -1;
	c->core.cfg = c->cfg;
	c->core.ref = c->ref;
	c->core.store = c->st;
	c->core.loop = c->loop;
	c->core.adapters = c->adapters;
	c->core.adapter_state = c->states;
	c->core.n_adapters = 1;
	c->core.reload_state = "";
	return 0;
}

/* Free what s_fx_open made, once the test has stopped what it started. */
static inline void s_fx_close(struct core_fx *c)
{
	yj_loop_destroy(&c->loop);
	yj_store_close(&c->st);
	yj_config_free(&c->cfg);
	yj_refdata_free(&c->ref);
	s_rmdir(c->dir);
	yj_clock_reset();
}

/* --- time --- */

/* The instant of a UTC wall time. */
static inline int64_t s_utc(int y, int mo, int d, int h, int mi)
{
	struct tm tm = { 0 };
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	return (int64_t)timegm(&tm) * 1000000;
}

static inline int s_offset_minutes(int64_t us)
{
	time_t t = (time_t)(us / 1000000);
	struct tm tm;
	localtime_r(&t, &tm);
	return (int)(tm.tm_gmtoff / 60);
}

/* --- events: packed and stored as ingest does, then routed in the same transaction --- */

struct ev {
	const char *feed;            /* "custody" (default), "arrest", "outcome" */
	const char *source_id;       /* NULL: a fresh one */
	const char *person_id;       /* default "P1" */
	const char *given_name;      /* default "Alex" */
	const char *dob;             /* default "2010-03-01" */
	const char *home_la;         /* default "E06000042" (Milton Keynes, served by yjs:mk) */
	int looked_after;
	const char *responsible_la;
	const char *record_id;       /* custody; default "CR1" */
	const char *suite;           /* custody; default "TVP-MK" */
	const char *status;          /* custody; default "detained" */
	const char *reason;          /* custody.reason */
	int64_t at_us;               /* occurred_at; 0: the clock */
	int live, court_order;       /* markers; live with an officer in the case */
	int outcome_code;            /* outcome feed */
};

static unsigned s_source_no;

struct s_put {
	struct core_fx *c;
	const struct ev *e;
	int64_t now;
	uint64_t seq;
	struct yj_route_counts counts;
};

static inline int s_put_fn(struct yj_txn *txn, void *arg)
{
	struct s_put *p = arg;
	const struct ev *e = p->e;
	Yjlink__V1__Event ev = YJLINK__V1__EVENT__INIT;
	Yjlink__V1__Child ch = YJLINK__V1__CHILD__INIT;
	Yjlink__V1__Custody cu = YJLINK__V1__CUSTODY__INIT;
	Yjlink__V1__Arrest ar = YJLINK__V1__ARREST__INIT;
	Yjlink__V1__Outcome oc = YJLINK__V1__OUTCOME__INIT;
	Yjlink__V1__Markers mk = YJLINK__V1__MARKERS__INIT;
	Yjlink__V1__Time occ = YJLINK__V1__TIME__INIT;
	Yjlink__V1__Record rec = YJLINK__V1__RECORD__INIT;
	const char *feed = e->feed ? e->feed : "custody";
	int64_t at = e->at_us ? e->at_us : p->now;
	char src[128], child[128], cust[128];
	uint8_t hash[16];
	int rc;

	memset(&p->counts, 0, sizeof(p->counts));
	p->seq = 0;
	if (e->source_id)
		snprintf(src, sizeof(src), "%s", e->source_id);
	else
		snprintf(src, sizeof(src), "S%u", ++s_source_no);
	occ.has_unix_us = occ.has_offset_minutes = 1;
	occ.unix_us = at;
	occ.offset_minutes = s_offset_minutes(at);
	ev.source_id = src;
	ev.force = FORCE;
	ev.occurred_at = &occ;
	ev.child = &ch;
	ch.person_id = (char *)(e->person_id ? e->person_id : "P1");
	ch.given_name = (char *)(e->given_name ? e->given_name : "Alex");
	ch.family_name = "Smith";
	ch.date_of_birth = (char *)(e->dob ? e->dob : "2010-03-01");
	ch.home_la = (char *)(e->home_la ? e->home_la : "E06000042");
	ch.has_looked_after = 1;
	ch.looked_after = e->looked_after ? 1 : 0;
	ch.responsible_la = (char *)e->responsible_la;
	if (e->live || e->court_order) {
		ev.markers = &mk;
		mk.has_live_investigation = e->live != 0;
		mk.live_investigation = e->live ? 1 : 0;
		mk.officer_in_case = e->live ? "DC 123" : NULL;
		mk.has_court_order = e->court_order != 0;
		mk.court_order = e->court_order ? 1 : 0;
	}
	if (!strcmp(feed, "custody")) {
		ev.body_case = YJLINK__V1__EVENT__BODY_CUSTODY;
		ev.custody = &cu;
		cu.record_id = (char *)(e->record_id ? e->record_id : "CR1");
		cu.suite = (char *)(e->suite ? e->suite : "TVP-MK");
		cu.status = (char *)(e->status ? e->status : "detained");
		cu.arrived_at = &occ;
		cu.status_at = &occ;
		cu.reason = (char *)e->reason;
	} else if (!strcmp(feed, "arrest")) {
		ev.body_case = YJLINK__V1__EVENT__BODY_ARREST;
		ev.arrest = &ar;
		ar.arrest_id = src;
		ar.arrested_at = &occ;
	} else {
		ev.body_case = YJLINK__V1__EVENT__BODY_OUTCOME;
		ev.outcome = &oc;
		oc.case_ref = src;
		oc.has_code = 1;
		oc.code = e->outcome_code;
		oc.decided_at = &occ;
	}
	if ((rc = yj_events_next_seq(txn, &p->seq)))
		return rc;
	snprintf(child, sizeof(child), "%s/%s", FORCE, ch.person_id);
	int known = yj_events_child_known(txn, child);
	if (known < 0)
		return known;
	rec.has_seq = rec.has_stored_at_us = 1;
	rec.seq = p->seq;
	rec.stored_at_us = p->now;
	rec.feed = (char *)feed;
	rec.sender = "test";
	rec.event = &ev;
	size_t len = yjlink__v1__record__get_packed_size(&rec);
	uint8_t *buf = malloc(len ? len : 1);
	if (!buf)
		return YJ_ENOMEM;
	yjlink__v1__record__pack(&rec, buf);
	for (size_t i = 0; i < sizeof(hash); i++)
		hash[i] = (uint8_t)(p->seq * 7 + i);
	char skey[160];
	snprintf(skey, sizeof(skey), "%s/%s", FORCE, src);
	snprintf(cust, sizeof(cust), "%s/%s", FORCE, cu.record_id ? cu.record_id : "");
	struct yj_event_keys k = {
		.source_key = skey,
		.hash = hash,
		.child_id = child,
		.occurred_us = at,
		.custody_key = ev.body_case == YJLINK__V1__EVENT__BODY_CUSTODY ? cust : NULL,
	};
	rc = yj_events_put(txn, p->seq, &k, buf, len);
	free(buf);
	if (rc)
		return rc;
	/* Routed by the config in force, through a plan made ahead, as ingest
	 * does (test_route holds a plan's routing equal to one made without). */
	struct yj_arena a;
	struct yj_route_plan plan;
	yj_arena_init(&a, 4096);
	rc = yj_route_plan(p->c->core.cfg, p->c->core.ref, &ev, &a, &plan);
	if (!rc)
		rc = yj_route_event(txn, p->c->core.cfg, p->c->core.ref, p->seq, &ev, &plan, known == 0, p->now,
				    &p->counts);
	yj_arena_free(&a);
	return rc;
}

/* Store and route e at the clock's now; its seq, and in *counts (when not
 * NULL) what routing wrote. */
static inline uint64_t s_event(struct core_fx *c, const struct ev *e, struct yj_route_counts *counts)
{
	struct s_put p = { c, e, yj_clock_now_us(), 0, { 0 } };
	assert_int_equal(yj_store_write(c->st, s_put_fn, &p), 0);
	if (counts)
		*counts = p.counts;
	return p.seq;
}

/* --- the jobs of a queue, read back (copied out: no assert inside a transaction) --- */

#define S_JOBS_MAX 64

struct jobs {
	Yjlink__V1__Notification *v[S_JOBS_MAX];
	size_t n;
	int overflow;
};

static inline Yjlink__V1__Notification *s_note_copy(const Yjlink__V1__Notification *n)
{
	size_t len = yjlink__v1__notification__get_packed_size(n);
	uint8_t *buf = malloc(len ? len : 1);
	Yjlink__V1__Notification *c = NULL;
	if (buf) {
		yjlink__v1__notification__pack(n, buf);
		c = yjlink__v1__notification__unpack(NULL, len, buf);
		free(buf);
	}
	return c;
}

static inline int s_jobs_cb(void *arg, const Yjlink__V1__Notification *n)
{
	struct jobs *j = arg;
	if (j->n == S_JOBS_MAX) {
		j->overflow = 1;
		return 1;
	}
	if (!(j->v[j->n] = s_note_copy(n)))
		return YJ_ENOMEM;
	j->n++;
	return 0;
}

struct s_jobs_read {
	enum yj_note_queue q;
	struct jobs *j;
};

static inline int s_jobs_read_fn(struct yj_txn *txn, void *arg)
{
	struct s_jobs_read *r = arg;
	int rc = yj_notes_each(txn, r->q, s_jobs_cb, r->j);
	return rc < 0 ? rc : 0;
}

static inline void s_jobs_free(struct jobs *j)
{
	for (size_t i = 0; i < j->n; i++)
		yjlink__v1__notification__free_unpacked(j->v[i], NULL);
	j->n = 0;
}

/* Every job of queue q, in the queue's order; free with s_jobs_free. */
static inline void s_jobs(struct core_fx *c, enum yj_note_queue q, struct jobs *j)
{
	struct s_jobs_read r = { q, j };
	memset(j, 0, sizeof(*j));
	assert_int_equal(yj_store_read(c->st, s_jobs_read_fn, &r), 0);
	assert_false(j->overflow);
}

#endif
