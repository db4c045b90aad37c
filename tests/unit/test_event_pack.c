/* test_event_pack: yj_event_pack writes what protobuf-c writes, byte for
 * byte, for random events (every mix of present fields, every body, values
 * at the edges of each type, strings and nested messages around the one-,
 * two- and three-byte lengths), never past the room it is given, and hands
 * back 0 (protobuf-c's turn) for what it does not encode. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

#include "arena.h"
#include "event_pack.h"
#include "yjlink.pb-c.h"

/* xorshift64*, seeded from the system once (a getrandom call for every
 * draw made the run mostly system time); the seed is printed so that a
 * failure can be run again (YJ_TEST_SEED). */
static uint64_t s_state;

static void s_seed(void)
{
	const char *e = getenv("YJ_TEST_SEED");
	if (e && *e)
		s_state = strtoull(e, NULL, 0);
	else
		randombytes_buf(&s_state, sizeof(s_state));
	if (!s_state)
		s_state = 1;
	print_message("seed %llu (YJ_TEST_SEED)\n", (unsigned long long)s_state);
}

static uint64_t s_rand(void)
{
	s_state ^= s_state >> 12;
	s_state ^= s_state << 25;
	s_state ^= s_state >> 27;
	return s_state * UINT64_C(2685821657736338717);
}

static const uint64_t s_edges[] = { 0, 1, 127, 128, 16383, 16384, UINT32_MAX, (uint64_t)INT32_MAX,
				    (uint64_t)(int64_t)INT32_MIN, (uint64_t)INT64_MAX, (uint64_t)INT64_MIN, UINT64_MAX };

static uint64_t s_pick(void)
{
	uint64_t r = s_rand();
	return r & 1 ? s_edges[(r >> 1) % (sizeof(s_edges) / sizeof(s_edges[0]))] : s_rand() >> (r >> 58);
}

/* Present half the time. */
static int s_has(void)
{
	return (int)(s_rand() & 1);
}

/* NULL, empty, short, or around the lengths where a nested message's
 * length takes a second or third byte. */
static char *s_str(struct yj_arena *a)
{
	static const size_t lens[] = { 0, 1, 7, 60, 126, 127, 128, 129, 200, 300, 16383, 16384, 20000 };
	uint64_t r = s_rand();
	if (r % 4 == 0)
		return NULL;
	size_t n = r % 4 == 1 ? lens[(r >> 8) % (sizeof(lens) / sizeof(lens[0]))] : (r >> 8) % 40;
	/* The long ones rarely, or the run takes long. */
	if (n > 300 && (r >> 40) % 16)
		n = 300;
	char *s = yj_arena_alloc(a, n + 1);
	for (size_t i = 0; i < n; i++)
		s[i] = (char)('a' + (s_rand() % 26));
	s[n] = '\0';
	return s;
}

static void *s_new(struct yj_arena *a, size_t size, const void *init)
{
	void *m = yj_arena_alloc(a, size);
	assert_non_null(m);
	memcpy(m, init, size);
	return m;
}

#define NEW(a, T, INIT) ((T *)s_new((a), sizeof(T), &(T)INIT))

static Yjlink__V1__Time *s_time(struct yj_arena *a)
{
	if (s_rand() % 4 == 0)
		return NULL;
	Yjlink__V1__Time *t = NEW(a, Yjlink__V1__Time, YJLINK__V1__TIME__INIT);
	if ((t->has_unix_us = s_has()))
		t->unix_us = (int64_t)s_pick();
	if ((t->has_offset_minutes = s_has()))
		t->offset_minutes = (int32_t)s_pick();
	return t;
}

static void s_bool(protobuf_c_boolean *has, protobuf_c_boolean *v)
{
	if ((*has = s_has()))
		*v = (protobuf_c_boolean)(s_rand() & 1);
}

static Yjlink__V1__Event *s_event(struct yj_arena *a)
{
	Yjlink__V1__Event *ev = NEW(a, Yjlink__V1__Event, YJLINK__V1__EVENT__INIT);
	ev->source_id = s_str(a);
	ev->force = s_str(a);
	ev->occurred_at = s_time(a);
	if (s_rand() % 4) {
		Yjlink__V1__Child *c = ev->child = NEW(a, Yjlink__V1__Child, YJLINK__V1__CHILD__INIT);
		c->person_id = s_str(a);
		c->pnc_id = s_str(a);
		c->given_name = s_str(a);
		c->family_name = s_str(a);
		c->date_of_birth = s_str(a);
		c->gender = s_str(a);
		c->ethnicity = s_str(a);
		c->home_la = s_str(a);
		c->home_postcode = s_str(a);
		s_bool(&c->has_looked_after, &c->looked_after);
		c->responsible_la = s_str(a);
		if (s_rand() % 2) {
			c->social_worker = NEW(a, Yjlink__V1__SocialWorker, YJLINK__V1__SOCIAL_WORKER__INIT);
			c->social_worker->name = s_str(a);
			c->social_worker->email = s_str(a);
			c->social_worker->phone = s_str(a);
		}
		if ((c->has_apparent_age = s_has()))
			c->apparent_age = (uint32_t)s_pick();
	}
	ev->n_offences = s_rand() % 3 ? s_rand() % 4 : s_rand() % 25;
	ev->offences = yj_arena_alloc(a, (ev->n_offences + 1) * sizeof(*ev->offences));
	for (size_t i = 0; i < ev->n_offences; i++) {
		ev->offences[i] = NEW(a, Yjlink__V1__Offence, YJLINK__V1__OFFENCE__INIT);
		ev->offences[i]->code = s_str(a);
		ev->offences[i]->description = s_str(a);
	}
	if (s_rand() % 2) {
		Yjlink__V1__Markers *m = ev->markers = NEW(a, Yjlink__V1__Markers, YJLINK__V1__MARKERS__INIT);
		s_bool(&m->has_live_investigation, &m->live_investigation);
		s_bool(&m->has_serious_offence, &m->serious_offence);
		s_bool(&m->has_mappa, &m->mappa);
		s_bool(&m->has_court_order, &m->court_order);
		m->officer_in_case = s_str(a);
	}
	switch (s_rand() % 6) {
	case 0:
		break;
	case 1: {
		Yjlink__V1__Custody *c = NEW(a, Yjlink__V1__Custody, YJLINK__V1__CUSTODY__INIT);
		c->record_id = s_str(a);
		c->suite = s_str(a);
		c->arrived_at = s_time(a);
		c->status = s_str(a);
		c->status_at = s_time(a);
		c->asn = s_str(a);
		if (s_rand() % 2) {
			Yjlink__V1__AppropriateAdult *aa = c->appropriate_adult =
				NEW(a, Yjlink__V1__AppropriateAdult, YJLINK__V1__APPROPRIATE_ADULT__INIT);
			aa->name = s_str(a);
			aa->relationship = s_str(a);
			aa->called_at = s_time(a);
			aa->arrived_at = s_time(a);
		}
		c->reason = s_str(a);
		ev->body_case = YJLINK__V1__EVENT__BODY_CUSTODY;
		ev->custody = c;
		break;
	}
	case 2: {
		Yjlink__V1__Arrest *r = NEW(a, Yjlink__V1__Arrest, YJLINK__V1__ARREST__INIT);
		r->arrest_id = s_str(a);
		r->arrested_at = s_time(a);
		r->asn = s_str(a);
		r->location_la = s_str(a);
		s_bool(&r->has_summons, &r->summons);
		ev->body_case = YJLINK__V1__EVENT__BODY_ARREST;
		ev->arrest = r;
		break;
	}
	case 3: {
		Yjlink__V1__Interview *iv = NEW(a, Yjlink__V1__Interview, YJLINK__V1__INTERVIEW__INIT);
		iv->interview_id = s_str(a);
		iv->status = s_str(a);
		iv->at = s_time(a);
		iv->location = s_str(a);
		ev->body_case = YJLINK__V1__EVENT__BODY_INTERVIEW;
		ev->interview = iv;
		break;
	}
	case 4: {
		Yjlink__V1__Outcome *o = NEW(a, Yjlink__V1__Outcome, YJLINK__V1__OUTCOME__INIT);
		o->case_ref = s_str(a);
		o->asn = s_str(a);
		if ((o->has_code = s_has()))
			o->code = (int32_t)s_pick();
		o->decided_at = s_time(a);
		o->offence_date = s_str(a);
		o->disposal = s_str(a);
		ev->body_case = YJLINK__V1__EVENT__BODY_OUTCOME;
		ev->outcome = o;
		break;
	}
	default:
		/* A case set with no member: protobuf-c writes nothing for it. */
		ev->body_case = YJLINK__V1__EVENT__BODY_CUSTODY + (int)(s_rand() % 4);
		ev->custody = NULL;
		break;
	}
	return ev;
}

static void test_random_events_as_protobuf_c(void **state)
{
	(void)state;
	struct yj_arena a;
	yj_arena_init(&a, 1 << 16);
	size_t cap = 1 << 20;
	uint8_t *mine = malloc(cap), *theirs = malloc(cap);
	assert_non_null(mine);
	assert_non_null(theirs);
	size_t long_nested = 0;
	for (int round = 0; round < 20000; round++) {
		yj_arena_reset(&a);
		Yjlink__V1__Event *ev = s_event(&a);
		size_t want = protobuf_c_message_get_packed_size(&ev->base);
		assert_true(want <= cap);
		assert_int_equal(protobuf_c_message_pack(&ev->base, theirs), want);
		size_t got = yj_event_pack(ev, mine, cap);
		assert_int_equal(got, want);
		assert_memory_equal(mine, theirs, want);
		if (ev->child && protobuf_c_message_get_packed_size(&ev->child->base) >= 16384)
			long_nested++;
		/* Exactly the room it needs is enough. */
		assert_int_equal(yj_event_pack(ev, mine, want), want);
		assert_memory_equal(mine, theirs, want);
		/* Short of room: 0, and nothing written past the end (the
		 * sanitizer build sees a heap buffer of exactly that size). */
		if (want && round % 50 == 0) {
			for (size_t room = 0; room < want; room += 1 + room / 8) {
				uint8_t *exact = malloc(room ? room : 1);
				assert_non_null(exact);
				assert_int_equal(yj_event_pack(ev, exact, room), 0);
				free(exact);
			}
		}
	}
	/* The run reached a nested message whose length takes three bytes. */
	assert_true(long_nested > 0);
	free(mine);
	free(theirs);
	yj_arena_free(&a);
}

/* A typical custody event, as the normaliser builds one. */
static void test_custody_event(void **state)
{
	(void)state;
	Yjlink__V1__Time occ = YJLINK__V1__TIME__INIT, arr = YJLINK__V1__TIME__INIT;
	occ.has_unix_us = arr.has_unix_us = 1;
	occ.unix_us = 1764590400000000;
	arr.unix_us = -1;
	occ.has_offset_minutes = arr.has_offset_minutes = 1;
	occ.offset_minutes = 60;
	arr.offset_minutes = -300;
	Yjlink__V1__Child c = YJLINK__V1__CHILD__INIT;
	c.person_id = "P-1";
	c.given_name = "Sam";
	c.date_of_birth = "2010-05-01";
	c.has_looked_after = 1;
	c.looked_after = 0;
	Yjlink__V1__Custody cu = YJLINK__V1__CUSTODY__INIT;
	cu.record_id = "R-1";
	cu.arrived_at = &arr;
	Yjlink__V1__Event ev = YJLINK__V1__EVENT__INIT;
	ev.source_id = "s-1";
	ev.force = "";
	ev.occurred_at = &occ;
	ev.child = &c;
	ev.body_case = YJLINK__V1__EVENT__BODY_CUSTODY;
	ev.custody = &cu;
	uint8_t mine[512], theirs[512];
	size_t want = protobuf_c_message_get_packed_size(&ev.base);
	assert_int_equal(protobuf_c_message_pack(&ev.base, theirs), want);
	assert_int_equal(yj_event_pack(&ev, mine, sizeof(mine)), want);
	assert_memory_equal(mine, theirs, want);
	/* And it reads back as the same event. */
	Yjlink__V1__Event *back = yjlink__v1__event__unpack(NULL, want, mine);
	assert_non_null(back);
	assert_string_equal(back->child->given_name, "Sam");
	assert_int_equal(back->custody->arrived_at->unix_us, -1);
	assert_int_equal(back->custody->arrived_at->offset_minutes, -300);
	yjlink__v1__event__free_unpacked(back, NULL);
}

/* What it leaves to protobuf-c: unknown fields at any depth, a NULL
 * offence, a body case outside the oneof, no event. */
static void test_left_to_protobuf_c(void **state)
{
	(void)state;
	uint8_t buf[512];
	ProtobufCMessageUnknownField uf = { .tag = 99, .wire_type = PROTOBUF_C_WIRE_TYPE_VARINT, .len = 1,
					    .data = (uint8_t *)"\x01" };
	Yjlink__V1__Time t = YJLINK__V1__TIME__INIT;
	Yjlink__V1__Event ev = YJLINK__V1__EVENT__INIT;
	ev.source_id = "s";
	assert_int_equal(yj_event_pack(&ev, buf, sizeof(buf)), 3);
	ev.occurred_at = &t;
	assert_int_equal(yj_event_pack(&ev, buf, sizeof(buf)), 5);
	t.base.n_unknown_fields = 1;
	t.base.unknown_fields = &uf;
	assert_int_equal(yj_event_pack(&ev, buf, sizeof(buf)), 0);
	t.base.n_unknown_fields = 0;
	ev.base.n_unknown_fields = 1;
	ev.base.unknown_fields = &uf;
	assert_int_equal(yj_event_pack(&ev, buf, sizeof(buf)), 0);
	ev.base.n_unknown_fields = 0;
	Yjlink__V1__Offence *offs[1] = { NULL };
	ev.n_offences = 1;
	ev.offences = offs;
	assert_int_equal(yj_event_pack(&ev, buf, sizeof(buf)), 0);
	ev.n_offences = 0;
	ev.body_case = (Yjlink__V1__Event__BodyCase)99;
	assert_int_equal(yj_event_pack(&ev, buf, sizeof(buf)), 0);
	assert_int_equal(yj_event_pack(NULL, buf, sizeof(buf)), 0);
}

int main(void)
{
	if (sodium_init() < 0)
		return 1;
	s_seed();
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_random_events_as_protobuf_c),
		cmocka_unit_test(test_custody_event),
		cmocka_unit_test(test_left_to_protobuf_c),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
