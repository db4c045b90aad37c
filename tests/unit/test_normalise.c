/* test_normalise.c: the normaliser (interfaces.md §1 REJECT table, §2
 * fields) and event_json, against the real reference tables compiled into
 * the binary.
 *
 * The refusal cases are a table (normalise_cases.h), each run as its own
 * cmocka test; the tests below it cover what a table cannot: accepted
 * values, protobuf input, byte-identical packing across content types,
 * event_json and the small helpers.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "arena.h"
#include "err.h"
#include "event_json.h"
#include "normalise.h"
#include "refdata.h"

#include "normalise_cases.h"

/* The clock every test runs at: 2026-11-22T00:00:00Z. */
#define NOW_US (INT64_C(1795305600) * 1000000)

static const char s_custody[] =
	"{\"source_id\":\"tvp-0001\",\"force\":\"E23000029\",\"occurred_at\":\"2026-11-21T23:14:00Z\","
	"\"child\":{\"person_id\":\"TVP-P-000123\",\"pnc_id\":\"09/123456X\",\"given_name\":\"Sam\","
	"\"family_name\":\"Example\",\"date_of_birth\":\"2011-03-04\",\"gender\":\"male\",\"ethnicity\":\"W1\","
	"\"home_la\":\"E06000042\",\"home_postcode\":\"mk9 3ab\",\"looked_after\":true,\"responsible_la\":\"E06000042\","
	"\"social_worker\":{\"name\":\"A Worker\",\"email\":\"a.worker@example.gov.uk\",\"phone\":\"01234 567890\"}},"
	"\"offences\":[{\"code\":\"TH68010\",\"description\":\"Theft from a shop\"},{\"code\":\"CD71001\"}],"
	"\"markers\":{\"live_investigation\":false,\"serious_offence\":true,\"mappa\":false,\"court_order\":true,"
	"\"officer_in_case\":\"DC 1234\"},"
	"\"custody\":{\"record_id\":\"TVP-C-0001\",\"suite\":\"TVP-MK\",\"arrived_at\":\"2026-11-21T23:10:00Z\","
	"\"status\":\"detained\",\"status_at\":\"2026-11-21T23:14:00Z\",\"asn\":\"2600TVP0000000001A\","
	"\"appropriate_adult\":{\"name\":\"B Parent\",\"relationship\":\"mother\","
	"\"called_at\":\"2026-11-21T23:20:00.5+00:00\",\"arrived_at\":\"2026-11-21T23:55:00Z\"},"
	"\"reason\":\"to secure evidence\"}}";

static const char s_arrest[] =
	"{\"source_id\":\"tvp-a-0001\",\"force\":\"E23000029\",\"occurred_at\":\"2026-06-01T09:00:00+01:00\","
	"\"child\":{\"person_id\":\"TVP-P-000124\",\"given_name\":\"Alex\",\"family_name\":\"Example\","
	"\"date_of_birth\":\"2012-07-15\"},"
	"\"arrest\":{\"arrest_id\":\"TVP-A-1\",\"arrested_at\":\"2026-06-01T09:00:00+01:00\",\"asn\":\"26TVP01\","
	"\"location_la\":\"E07000177\",\"summons\":false}}";

static const char s_interview[] =
	"{\"source_id\":\"tvp-v-0001\",\"force\":\"E23000029\",\"occurred_at\":\"2026-11-20T10:00:00Z\","
	"\"child\":{\"person_id\":\"TVP-P-000125\",\"given_name\":\"Jo\",\"family_name\":\"Example\","
	"\"date_of_birth\":\"2010-01-31\",\"gender\":\"female\",\"home_la\":\"E10000025\"},"
	"\"interview\":{\"interview_id\":\"TVP-VI-1\",\"status\":\"scheduled\",\"at\":\"2026-12-01T10:00:00Z\","
	"\"location\":\"Banbury police station\"}}";

/* The child is 17 on offence_date and 18 on occurred_at / decided_at. */
static const char s_outcome[] =
	"{\"source_id\":\"tvp-o-0001\",\"force\":\"E23000029\",\"occurred_at\":\"2026-11-20T15:00:00Z\","
	"\"child\":{\"person_id\":\"TVP-P-000126\",\"given_name\":\"Max\",\"family_name\":\"Example\","
	"\"date_of_birth\":\"2008-11-01\"},"
	"\"outcome\":{\"case_ref\":\"TVP-CASE-1\",\"asn\":\"26TVP02\",\"code\":1,\"decided_at\":\"2026-11-20T15:00:00Z\","
	"\"offence_date\":\"2026-06-01\",\"disposal\":\"charge\"}}";

static struct yj_refdata *g_ref;

static const char *s_base(enum yj_feed feed)
{
	switch (feed) {
	case YJ_FEED_CUSTODY: return s_custody;
	case YJ_FEED_ARREST: return s_arrest;
	case YJ_FEED_VOLUNTARY_INTERVIEW: return s_interview;
	default: return s_outcome;
	}
}

static int s_group_setup(void **state)
{
	(void)state;
	struct yj_diag diag = { 0 };
	return yj_refdata_load(NULL, &diag, &g_ref);
}

static int s_group_teardown(void **state)
{
	(void)state;
	yj_refdata_free(&g_ref);
	return 0;
}

/* 1: the JSON pre-pass runs also for plain payloads (test_case runs each
 * case both ways). */
static int g_always_prepass;

static int s_norm_in(struct yj_arena *a, enum yj_feed feed, enum yj_content_type ct, const void *p, size_t n,
		     size_t max, struct yj_norm_result *res)
{
	struct yj_norm_opts o = { .ref = g_ref, .now_us = NOW_US, .max_bytes = max, .always_prepass = g_always_prepass };
	return yj_normalise(&o, feed, ct, p, n, a, res);
}

static int s_norm(struct yj_arena *a, enum yj_feed feed, const char *json, struct yj_norm_result *res)
{
	return s_norm_in(a, feed, YJ_CT_JSON, json, strlen(json), 65536, res);
}

/* base with the first `from` replaced by `to`; caller frees. */
static char *s_subst(const char *base, const char *from, const char *to)
{
	const char *at = strstr(base, from);
	if (!at)
		fail_msg("'%s' is not in the base event", from);
	size_t pre = (size_t)(at - base), flen = strlen(from), tlen = strlen(to), rest = strlen(at + flen);
	char *out = malloc(pre + tlen + rest + 1);
	assert_non_null(out);
	memcpy(out, base, pre);
	memcpy(out + pre, to, tlen);
	memcpy(out + pre + tlen, at + flen, rest + 1);
	return out;
}

#define assert_rejected(res, c, f)                                                                               \
	do {                                                                                                     \
		if ((res).reject.code != (c) || strcmp((res).reject.field, (f)) != 0)                            \
			fail_msg("got %s at '%s' (%s), expected %s at '%s'", yj_reject_code_name((res).reject.code), \
				 (res).reject.field, (res).reject.reason, yj_reject_code_name(c), (f));            \
	} while (0)

/* ------------------------------------------------------------ table cases */

static void test_case(void **state)
{
	const struct ncase *c = *state;
	struct yj_arena a;
	struct yj_norm_result res;
	char *p = c->from ? s_subst(s_base(c->feed), c->from, c->to) : strdup(c->to);
	if (c->from2) {
		char *q = s_subst(p, c->from2, c->to2);
		free(p);
		p = q;
	}
	/* Each way: a plain payload read without the pre-pass, and with it
	 * forced; the same refusal, reason included. */
	char reason[sizeof(res.reject.reason)] = "";
	for (g_always_prepass = 0; g_always_prepass < 2; g_always_prepass++) {
		yj_arena_init(&a, 0);
		int rc = s_norm(&a, c->feed, p, &res);
		assert_rejected(res, c->code, c->field);
		assert_int_equal(rc, c->code == YJ_REJ_NONE ? 0 : YJ_EINVAL);
		assert_true((res.event != NULL) == (c->code == YJ_REJ_NONE));
		assert_true(res.reject.code == YJ_REJ_NONE || res.reject.reason[0] != '\0');
		if (g_always_prepass)
			assert_string_equal(res.reject.reason, reason);
		else
			snprintf(reason, sizeof(reason), "%s", res.reject.reason);
		yj_arena_free(&a);
	}
	g_always_prepass = 0;
	free(p);
}

/* ------------------------------------------------------------ accepted */

static void test_accept_custody(void **state)
{
	(void)state;
	struct yj_arena a;
	struct yj_norm_result res;
	int64_t us;
	int32_t off;

	yj_arena_init(&a, 0);
	assert_int_equal(s_norm(&a, YJ_FEED_CUSTODY, s_custody, &res), 0);
	const Yjlink__V1__Event *ev = res.event;
	assert_non_null(ev);
	assert_int_equal(res.reject.code, YJ_REJ_NONE);
	assert_string_equal(res.source_id, "tvp-0001");
	assert_string_equal(ev->source_id, "tvp-0001");
	assert_string_equal(ev->force, "E23000029");
	assert_int_equal(yj_time_parse("2026-11-21T23:14:00Z", 20, &us, &off), 0);
	assert_true(ev->occurred_at->has_unix_us && ev->occurred_at->has_offset_minutes);
	assert_int_equal(ev->occurred_at->unix_us, us);
	assert_int_equal(ev->occurred_at->offset_minutes, 0);
	assert_string_equal(ev->child->home_postcode, "MK9 3AB");
	assert_true(ev->child->has_looked_after && ev->child->looked_after);
	assert_string_equal(ev->child->responsible_la, "E06000042");
	assert_string_equal(ev->child->social_worker->email, "a.worker@example.gov.uk");
	assert_int_equal(ev->n_offences, 2);
	assert_string_equal(ev->offences[1]->code, "CD71001");
	assert_null(ev->offences[1]->description);
	assert_true(ev->markers->has_court_order && ev->markers->court_order);
	assert_true(ev->markers->has_mappa && !ev->markers->mappa);
	assert_int_equal(ev->body_case, YJLINK__V1__EVENT__BODY_CUSTODY);
	assert_int_equal(yj_event_feed(ev), YJ_FEED_CUSTODY);
	assert_string_equal(ev->custody->suite, "TVP-MK");
	assert_string_equal(ev->custody->status, "detained");
	assert_int_equal(ev->custody->appropriate_adult->called_at->unix_us, us + 6 * 60 * INT64_C(1000000) + 500000);
	assert_string_equal(ev->custody->reason, "to secure evidence");
	yj_arena_free(&a);
}

static void test_accept_arrest(void **state)
{
	(void)state;
	struct yj_arena a;
	struct yj_norm_result res;

	yj_arena_init(&a, 0);
	assert_int_equal(s_norm(&a, YJ_FEED_ARREST, s_arrest, &res), 0);
	const Yjlink__V1__Event *ev = res.event;
	/* 2026-06-01T09:00:00+01:00 is 08:00 UTC */
	assert_int_equal(ev->occurred_at->unix_us, INT64_C(1780300800) * 1000000);
	assert_int_equal(ev->occurred_at->offset_minutes, 60);
	/* looked_after not sent: unknown, so stored absent, never as false */
	assert_false(ev->child->has_looked_after);
	assert_false(ev->child->has_apparent_age);
	assert_null(ev->child->home_postcode);
	assert_null(ev->markers);
	assert_int_equal(ev->n_offences, 0);
	assert_int_equal(ev->body_case, YJLINK__V1__EVENT__BODY_ARREST);
	assert_string_equal(ev->arrest->location_la, "E07000177");
	assert_true(ev->arrest->has_summons && !ev->arrest->summons);
	assert_int_equal(yj_event_feed(ev), YJ_FEED_ARREST);
	yj_arena_free(&a);
}

static void test_accept_interview(void **state)
{
	(void)state;
	struct yj_arena a;
	struct yj_norm_result res;

	yj_arena_init(&a, 0);
	assert_int_equal(s_norm(&a, YJ_FEED_VOLUNTARY_INTERVIEW, s_interview, &res), 0);
	const Yjlink__V1__Event *ev = res.event;
	assert_int_equal(ev->body_case, YJLINK__V1__EVENT__BODY_INTERVIEW);
	assert_string_equal(ev->interview->status, "scheduled");
	assert_string_equal(ev->interview->location, "Banbury police station");
	assert_string_equal(ev->child->home_la, "E10000025");
	assert_int_equal(yj_event_feed(ev), YJ_FEED_VOLUNTARY_INTERVIEW);
	yj_arena_free(&a);
}

static void test_accept_outcome(void **state)
{
	(void)state;
	struct yj_arena a;
	struct yj_norm_result res;

	yj_arena_init(&a, 0);
	/* aged 17 on offence_date, 18 when decided: in scope */
	assert_int_equal(s_norm(&a, YJ_FEED_OUTCOME, s_outcome, &res), 0);
	const Yjlink__V1__Event *ev = res.event;
	assert_int_equal(ev->body_case, YJLINK__V1__EVENT__BODY_OUTCOME);
	assert_true(ev->outcome->has_code);
	assert_int_equal(ev->outcome->code, 1);
	assert_string_equal(ev->outcome->offence_date, "2026-06-01");
	assert_string_equal(ev->outcome->disposal, "charge");
	assert_int_equal(yj_event_feed(ev), YJ_FEED_OUTCOME);
	yj_arena_free(&a);
}

/* ------------------------------------------------------- raw-byte cases */

static void test_too_large(void **state)
{
	(void)state;
	struct yj_arena a;
	struct yj_norm_result res;
	size_t n = strlen(s_custody);

	yj_arena_init(&a, 0);
	assert_int_equal(s_norm_in(&a, YJ_FEED_CUSTODY, YJ_CT_JSON, s_custody, n, n - 1, &res), YJ_EINVAL);
	assert_rejected(res, YJ_REJ_TOO_LARGE, "");
	assert_null(res.event);
	assert_int_equal(s_norm_in(&a, YJ_FEED_CUSTODY, YJ_CT_JSON, s_custody, n, n, &res), 0);
	/* too_large outranks encoding: the payload is not looked at */
	assert_int_equal(s_norm_in(&a, YJ_FEED_CUSTODY, YJ_CT_PROTOBUF, "\xff\xff\xff", 3, 2, &res), YJ_EINVAL);
	assert_rejected(res, YJ_REJ_TOO_LARGE, "");
	yj_arena_free(&a);
}

static void test_raw_nul(void **state)
{
	(void)state;
	struct yj_arena a;
	struct yj_norm_result res;
	char *p = s_subst(s_custody, "\"Sam\"", "\"Sa#m\"");
	size_t n = strlen(p);

	yj_arena_init(&a, 0);
	*strchr(p, '#') = '\0';  /* a raw NUL inside a string */
	assert_int_equal(s_norm_in(&a, YJ_FEED_CUSTODY, YJ_CT_JSON, p, n, 65536, &res), YJ_EINVAL);
	assert_rejected(res, YJ_REJ_ENCODING, "");
	free(p);
	/* and one after the value, where it would pass as "the end" */
	char q[sizeof(s_custody) + 1];
	memcpy(q, s_custody, sizeof(s_custody));
	assert_int_equal(s_norm_in(&a, YJ_FEED_CUSTODY, YJ_CT_JSON, q, sizeof(s_custody), 65536, &res), YJ_EINVAL);
	assert_rejected(res, YJ_REJ_ENCODING, "");
	yj_arena_free(&a);
}

static void test_bom_and_whitespace(void **state)
{
	(void)state;
	struct yj_arena a;
	struct yj_norm_result res;
	char p[sizeof(s_custody) + 8];

	yj_arena_init(&a, 0);
	snprintf(p, sizeof(p), "\xEF\xBB\xBF%s \r\n\t", s_custody);
	assert_int_equal(s_norm(&a, YJ_FEED_CUSTODY, p, &res), 0);
	yj_arena_free(&a);
}

static void test_many_keys(void **state)
{
	(void)state;
	struct yj_arena a;
	struct yj_norm_result res;
	size_t cap = 200000, n = 0;
	char *p = malloc(cap);

	assert_non_null(p);
	yj_arena_init(&a, 0);
	/* thousands of distinct unknown keys: schema, found quickly */
	n += (size_t)snprintf(p + n, cap - n, "{\"source_id\":\"s\"");
	for (int i = 0; i < 5000; i++)
		n += (size_t)snprintf(p + n, cap - n, ",\"k%d\":%d", i, i);
	snprintf(p + n, cap - n, "}");
	assert_int_equal(s_norm_in(&a, YJ_FEED_CUSTODY, YJ_CT_JSON, p, strlen(p), cap, &res), YJ_EINVAL);
	assert_rejected(res, YJ_REJ_SCHEMA, "k0");
	assert_string_equal(res.source_id, "s");
	/* the same with one key repeated near the end: syntax at that key */
	snprintf(p + n, cap - n, ",\"k4990\":1}");
	assert_int_equal(s_norm_in(&a, YJ_FEED_CUSTODY, YJ_CT_JSON, p, strlen(p), cap, &res), YJ_EINVAL);
	assert_rejected(res, YJ_REJ_SYNTAX, "k4990");
	yj_arena_free(&a);
	free(p);
}

static void test_source_id_on_refusal(void **state)
{
	(void)state;
	struct yj_arena a;
	struct yj_norm_result res;
	yj_arena_init(&a, 0);

	char *p = s_subst(s_custody, "\"gender\":\"male\"", "\"gender\":\"male\",\"gender\":\"male\"");
	s_norm(&a, YJ_FEED_CUSTODY, p, &res);
	assert_int_equal(res.reject.code, YJ_REJ_SYNTAX);
	assert_string_equal(res.source_id, "tvp-0001");
	free(p);

	p = s_subst(s_custody, "\"2011-03-04\"", "\"2017-01-01\"");
	s_norm(&a, YJ_FEED_CUSTODY, p, &res);
	assert_int_equal(res.reject.code, YJ_REJ_OUT_OF_SCOPE);
	assert_string_equal(res.source_id, "tvp-0001");
	/* reasons carry no personal data */
	assert_null(strstr(res.reject.reason, "2017"));
	free(p);

	p = s_subst(s_custody, "\"Sam\"", "\"S\xC3\x28m\"");
	s_norm(&a, YJ_FEED_CUSTODY, p, &res);
	assert_int_equal(res.reject.code, YJ_REJ_ENCODING);
	assert_null(res.source_id);
	free(p);

	s_norm(&a, YJ_FEED_CUSTODY, "{\"source_id\":\"x\",", &res);
	assert_int_equal(res.reject.code, YJ_REJ_SYNTAX);
	assert_null(res.source_id);

	s_norm(&a, YJ_FEED_CUSTODY, "{\"source_id\":7}", &res);
	assert_rejected(res, YJ_REJ_SCHEMA, "source_id");
	assert_null(res.source_id);
	yj_arena_free(&a);
}

static void test_bad_feed_or_type(void **state)
{
	(void)state;
	struct yj_arena a;
	struct yj_norm_result res;
	yj_arena_init(&a, 0);
	assert_int_equal(s_norm_in(&a, YJ_FEED_NONE, YJ_CT_JSON, s_custody, strlen(s_custody), 65536, &res), YJ_EINVAL);
	assert_int_equal(res.reject.code, YJ_REJ_PROTOCOL);
	assert_int_equal(s_norm_in(&a, YJ_FEED_CUSTODY, YJ_CT_NONE, s_custody, strlen(s_custody), 65536, &res),
			 YJ_EINVAL);
	assert_int_equal(res.reject.code, YJ_REJ_PROTOCOL);
	yj_arena_free(&a);
}

/* ---------------------------------------------------------------- protobuf */

/* Pack ev into a malloc'd buffer. */
static uint8_t *s_pack(const Yjlink__V1__Event *ev, size_t *n)
{
	*n = yjlink__v1__event__get_packed_size(ev);
	uint8_t *b = malloc(*n ? *n : 1);
	assert_non_null(b);
	assert_int_equal(yjlink__v1__event__pack(ev, b), *n);
	return b;
}

/* Two accepted results are the same event, byte for byte once packed. */
static void s_same_event(const struct yj_norm_result *a, const struct yj_norm_result *b)
{
	size_t na, nb;
	assert_non_null(a->source_id);
	assert_non_null(b->source_id);
	assert_string_equal(a->source_id, b->source_id);
	uint8_t *pa = s_pack(a->event, &na), *pb = s_pack(b->event, &nb);
	assert_int_equal(na, nb);
	assert_memory_equal(pa, pb, na);
	free(pa);
	free(pb);
}

/* The protobuf form of a JSON event as a sender would write it: un-normalised
 * postcode, no offset when UTC. */
static uint8_t *s_as_sender_pb(const char *json, enum yj_feed feed, size_t *n)
{
	struct yj_arena a;
	struct yj_norm_result res;
	size_t an;
	yj_arena_init(&a, 0);
	assert_int_equal(s_norm(&a, feed, json, &res), 0);
	uint8_t *packed = s_pack(res.event, &an);
	yj_arena_free(&a);

	Yjlink__V1__Event *ev = yjlink__v1__event__unpack(NULL, an, packed);
	assert_non_null(ev);
	if (ev->child->home_postcode)
		strcpy(ev->child->home_postcode, "mk93ab");
	if (ev->occurred_at->offset_minutes == 0)
		ev->occurred_at->has_offset_minutes = 0;
	uint8_t *out = s_pack(ev, n);
	yjlink__v1__event__free_unpacked(ev, NULL);
	free(packed);
	return out;
}

static void s_identical(enum yj_feed feed, const char *json)
{
	struct yj_arena aj, ap;
	struct yj_norm_result rj, rp;
	size_t npb;
	uint8_t *pb = s_as_sender_pb(json, feed, &npb);

	yj_arena_init(&aj, 0);
	yj_arena_init(&ap, 0);
	assert_int_equal(s_norm(&aj, feed, json, &rj), 0);
	assert_int_equal(s_norm_in(&ap, feed, YJ_CT_PROTOBUF, pb, npb, 65536, &rp), 0);
	assert_int_equal(rp.reject.code, YJ_REJ_NONE);
	s_same_event(&rj, &rp);
	free(pb);
	yj_arena_free(&aj);
	yj_arena_free(&ap);
}

static void test_json_protobuf_identical(void **state)
{
	(void)state;
	s_identical(YJ_FEED_CUSTODY, s_custody);
	s_identical(YJ_FEED_ARREST, s_arrest);
	s_identical(YJ_FEED_VOLUNTARY_INTERVIEW, s_interview);
	s_identical(YJ_FEED_OUTCOME, s_outcome);
}

/* Ingest builds the event in the batch's arena and the JSON tree in a
 * per-request scratch that is reset straight after: the event must hold
 * nothing of the tree. The scratch is freed before the event is packed, so
 * a pointer left into it is a use after free (AddressSanitizer) or, in the
 * plain build, bytes that differ from the one-arena run. */
static void s_parse_arena_apart(enum yj_feed feed, const char *json)
{
	struct yj_arena a1, a2, tree;
	struct yj_norm_result r1, r2;
	yj_arena_init(&a1, 0);
	yj_arena_init(&a2, 0);
	yj_arena_init(&tree, 0);
	assert_int_equal(s_norm(&a1, feed, json, &r1), 0);
	/* always_prepass: the tree's path, which the fused reader leaves. */
	struct yj_norm_opts o = { .ref = g_ref, .now_us = NOW_US, .max_bytes = 65536, .parse_arena = &tree,
				  .always_prepass = 1 };
	assert_int_equal(yj_normalise(&o, feed, YJ_CT_JSON, json, strlen(json), &a2, &r2), 0);
	assert_non_null(tree.head);  /* the tree went there */
	yj_arena_free(&tree);
	s_same_event(&r1, &r2);
	/* A plain payload read by the fused reader builds no tree at all, and
	 * the same event as the tree's path (r1 came from it too). */
	struct yj_arena a3, tree3;
	struct yj_norm_result r3;
	yj_arena_init(&a3, 0);
	yj_arena_init(&tree3, 0);
	struct yj_norm_opts o3 = { .ref = g_ref, .now_us = NOW_US, .max_bytes = 65536, .parse_arena = &tree3 };
	assert_int_equal(yj_normalise(&o3, feed, YJ_CT_JSON, json, strlen(json), &a3, &r3), 0);
	assert_null(tree3.head);
	s_same_event(&r2, &r3);
	yj_arena_free(&tree3);
	yj_arena_free(&a1);
	yj_arena_free(&a2);
	yj_arena_free(&a3);
}

static void test_parse_arena_apart(void **state)
{
	(void)state;
	s_parse_arena_apart(YJ_FEED_CUSTODY, s_custody);
	s_parse_arena_apart(YJ_FEED_ARREST, s_arrest);
	s_parse_arena_apart(YJ_FEED_VOLUNTARY_INTERVIEW, s_interview);
	s_parse_arena_apart(YJ_FEED_OUTCOME, s_outcome);
}

static void test_key_order_identical(void **state)
{
	(void)state;
	struct yj_arena a1, a2;
	struct yj_norm_result r1, r2;
	size_t n1, n2;
	/* the same custody event with keys reordered, whitespace, other escapes and
	 * an upper-case postcode already normalised */
	char *p = s_subst(s_custody, "{\"source_id\":\"tvp-0001\",\"force\":\"E23000029\",",
			  "{ \"force\" : \"E23000029\" ,\n \"source_id\":\"tvp-\\u0030001\",");
	char *q = s_subst(p, "\"mk9 3ab\"", "\"MK9 3AB\"");
	yj_arena_init(&a1, 0);
	yj_arena_init(&a2, 0);
	assert_int_equal(s_norm(&a1, YJ_FEED_CUSTODY, s_custody, &r1), 0);
	assert_int_equal(s_norm(&a2, YJ_FEED_CUSTODY, q, &r2), 0);
	uint8_t *b1 = s_pack(r1.event, &n1), *b2 = s_pack(r2.event, &n2);
	assert_int_equal(n1, n2);
	assert_memory_equal(b1, b2, n1);
	free(b1);
	free(b2);
	free(p);
	free(q);
	yj_arena_free(&a1);
	yj_arena_free(&a2);
}

/* The custody base event unpacked for editing; free with free_unpacked. */
static Yjlink__V1__Event *s_custody_pb(void)
{
	size_t n;
	uint8_t *b = s_as_sender_pb(s_custody, YJ_FEED_CUSTODY, &n);
	Yjlink__V1__Event *ev = yjlink__v1__event__unpack(NULL, n, b);
	free(b);
	assert_non_null(ev);
	return ev;
}

static void s_pb_expect(const uint8_t *b, size_t n, enum yj_reject_code code, const char *field)
{
	struct yj_arena a;
	struct yj_norm_result res;
	yj_arena_init(&a, 0);
	int rc = s_norm_in(&a, YJ_FEED_CUSTODY, YJ_CT_PROTOBUF, b, n, 65536, &res);
	assert_rejected(res, code, field);
	assert_int_equal(rc, code == YJ_REJ_NONE ? 0 : YJ_EINVAL);
	yj_arena_free(&a);
}

/* Pack ev with extra raw bytes appended (later fields win or merge). */
static void s_pb_expect_ev(const Yjlink__V1__Event *ev, const void *extra, size_t xn, enum yj_reject_code code,
			   const char *field)
{
	size_t n;
	uint8_t *b = s_pack(ev, &n);
	uint8_t *c = malloc(n + xn);
	assert_non_null(c);
	memcpy(c, b, n);
	if (xn)
		memcpy(c + n, extra, xn);
	s_pb_expect(c, n + xn, code, field);
	free(c);
	free(b);
}

static void test_protobuf_refusals(void **state)
{
	(void)state;
	Yjlink__V1__Event *ev = s_custody_pb();

	s_pb_expect_ev(ev, NULL, 0, YJ_REJ_NONE, "");
	/* does not decode */
	s_pb_expect((const uint8_t *)"\xff\xff\xff", 3, YJ_REJ_ENCODING, "");
	s_pb_expect((const uint8_t *)"\x0a\x05" "ab", 4, YJ_REJ_ENCODING, "");  /* length past the end */
	s_pb_expect((const uint8_t *)"\x1a\x01", 2, YJ_REJ_ENCODING, "");       /* truncated message field */
	s_pb_expect((const uint8_t *)"\x0b", 1, YJ_REJ_ENCODING, "");           /* a group */
	/* a NUL in source_id (a later occurrence of field 1 wins) */
	s_pb_expect_ev(ev, "\x0a\x03" "a\0b", 5, YJ_REJ_ENCODING, "");
	/* invalid UTF-8 deep down: custody.appropriate_adult.name */
	char *saved = ev->custody->appropriate_adult->name;
	ev->custody->appropriate_adult->name = "B \xED\xA0\x80";
	s_pb_expect_ev(ev, NULL, 0, YJ_REJ_ENCODING, "");
	ev->custody->appropriate_adult->name = saved;
	/* an unknown field at the top and inside child (message fields merge) */
	s_pb_expect_ev(ev, "\xf8\x06\x01", 3, YJ_REJ_SCHEMA, "");
	s_pb_expect_ev(ev, "\x22\x03\xf8\x06\x01", 5, YJ_REJ_SCHEMA, "child");
	/* a second feed object: protobuf-c would keep only the last one */
	s_pb_expect_ev(ev, "\x5a\x00", 2, YJ_REJ_SCHEMA, "arrest");
	/* missing required, at depth */
	saved = ev->child->person_id;
	ev->child->person_id = NULL;
	s_pb_expect_ev(ev, NULL, 0, YJ_REJ_SCHEMA, "child.person_id");
	ev->child->person_id = saved;
	/* a Time without unix_us */
	ev->custody->status_at->has_unix_us = 0;
	s_pb_expect_ev(ev, NULL, 0, YJ_REJ_SCHEMA, "custody.status_at");
	ev->custody->status_at->has_unix_us = 1;
	/* looked_after without responsible_la */
	saved = ev->child->responsible_la;
	ev->child->responsible_la = NULL;
	s_pb_expect_ev(ev, NULL, 0, YJ_REJ_SCHEMA, "child.responsible_la");
	ev->child->responsible_la = saved;
	/* the same value rules as JSON */
	saved = ev->child->home_postcode;
	ev->child->home_postcode = "MK9 3A";
	s_pb_expect_ev(ev, NULL, 0, YJ_REJ_VALUE, "child.home_postcode");
	ev->child->home_postcode = saved;
	ev->occurred_at->offset_minutes = 24 * 60;
	ev->occurred_at->has_offset_minutes = 1;
	s_pb_expect_ev(ev, NULL, 0, YJ_REJ_VALUE, "occurred_at");
	ev->occurred_at->offset_minutes = 0;
	saved = ev->offences[1]->code;
	ev->offences[1]->code = "";
	s_pb_expect_ev(ev, NULL, 0, YJ_REJ_VALUE, "offences.1.code");
	ev->offences[1]->code = NULL;
	s_pb_expect_ev(ev, NULL, 0, YJ_REJ_SCHEMA, "offences.1.code");
	ev->offences[1]->code = saved;
	saved = ev->child->date_of_birth;
	ev->child->date_of_birth = "2017-01-01";
	s_pb_expect_ev(ev, NULL, 0, YJ_REJ_OUT_OF_SCOPE, "child.date_of_birth");
	ev->child->date_of_birth = saved;
	s_pb_expect_ev(ev, NULL, 0, YJ_REJ_NONE, "");
	/* an empty payload decodes to an empty event */
	s_pb_expect((const uint8_t *)"", 0, YJ_REJ_SCHEMA, "source_id");

	/* strings are allocated by free_unpacked's allocator: put back what we borrowed */
	yjlink__v1__event__free_unpacked(ev, NULL);
}

/* -------------------------------------------------------------- event_json */

static void s_strip_meta(cJSON *o)
{
	cJSON_DeleteItemFromObjectCaseSensitive(o, "seq");
	cJSON_DeleteItemFromObjectCaseSensitive(o, "feed");
	cJSON_DeleteItemFromObjectCaseSensitive(o, "stored_at");
}

static void s_json_roundtrip(enum yj_feed feed, const char *json)
{
	struct yj_arena a1, a2;
	struct yj_norm_result r1, r2;
	size_t n1, n2;

	yj_arena_init(&a1, 0);
	yj_arena_init(&a2, 0);
	assert_int_equal(s_norm(&a1, feed, json, &r1), 0);
	cJSON *o = yj_event_to_json(r1.event, 42, NOW_US, NULL, NULL);
	assert_non_null(o);
	assert_int_equal(cJSON_GetObjectItem(o, "seq")->valuedouble, 42);
	assert_string_equal(cJSON_GetObjectItem(o, "feed")->valuestring, yj_feed_name(feed));
	assert_string_equal(cJSON_GetObjectItem(o, "stored_at")->valuestring, "2026-11-22T00:00:00Z");
	s_strip_meta(o);
	char *text = cJSON_PrintUnformatted(o);
	assert_int_equal(s_norm(&a2, feed, text, &r2), 0);
	uint8_t *b1 = s_pack(r1.event, &n1), *b2 = s_pack(r2.event, &n2);
	assert_int_equal(n1, n2);
	assert_memory_equal(b1, b2, n1);
	free(b1);
	free(b2);
	free(text);
	cJSON_Delete(o);
	yj_arena_free(&a1);
	yj_arena_free(&a2);
}

static void test_event_json_roundtrip(void **state)
{
	(void)state;
	s_json_roundtrip(YJ_FEED_CUSTODY, s_custody);
	s_json_roundtrip(YJ_FEED_ARREST, s_arrest);
	s_json_roundtrip(YJ_FEED_VOLUNTARY_INTERVIEW, s_interview);
	s_json_roundtrip(YJ_FEED_OUTCOME, s_outcome);
}

static int s_deny(void *arg, const char *path)
{
	const char *const *deny = arg;
	for (; *deny; deny++) {
		if (strcmp(*deny, path) == 0)
			return 0;
	}
	return 1;
}

static void test_event_json_values_and_filter(void **state)
{
	(void)state;
	struct yj_arena a;
	struct yj_norm_result res;
	static const char *const deny[] = { "child.given_name", "child.social_worker", "markers.mappa",
					    "offences.description", "custody.appropriate_adult.name", NULL };

	yj_arena_init(&a, 0);
	assert_int_equal(s_norm(&a, YJ_FEED_CUSTODY, s_custody, &res), 0);
	cJSON *o = yj_event_to_json(res.event, 7, NOW_US, s_deny, (void *)deny);
	assert_non_null(o);
	const cJSON *child = cJSON_GetObjectItem(o, "child");
	assert_non_null(child);
	assert_null(cJSON_GetObjectItem(child, "given_name"));
	assert_null(cJSON_GetObjectItem(child, "social_worker"));
	assert_string_equal(cJSON_GetObjectItem(child, "family_name")->valuestring, "Example");
	assert_string_equal(cJSON_GetObjectItem(child, "home_postcode")->valuestring, "MK9 3AB");
	assert_true(cJSON_IsTrue(cJSON_GetObjectItem(child, "looked_after")));
	const cJSON *m = cJSON_GetObjectItem(o, "markers");
	assert_null(cJSON_GetObjectItem(m, "mappa"));
	assert_true(cJSON_IsTrue(cJSON_GetObjectItem(m, "court_order")));
	const cJSON *offs = cJSON_GetObjectItem(o, "offences");
	assert_int_equal(cJSON_GetArraySize(offs), 2);
	assert_null(cJSON_GetObjectItem(cJSON_GetArrayItem(offs, 0), "description"));
	assert_string_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(offs, 0), "code")->valuestring, "TH68010");
	const cJSON *cu = cJSON_GetObjectItem(o, "custody");
	assert_string_equal(cJSON_GetObjectItem(cu, "arrived_at")->valuestring, "2026-11-21T23:10:00Z");
	const cJSON *aa = cJSON_GetObjectItem(cu, "appropriate_adult");
	assert_null(cJSON_GetObjectItem(aa, "name"));
	assert_string_equal(cJSON_GetObjectItem(aa, "called_at")->valuestring, "2026-11-21T23:20:00.5Z");
	assert_string_equal(cJSON_GetObjectItem(o, "feed")->valuestring, "custody");
	cJSON_Delete(o);

	/* refusing a whole object hides every field of it */
	static const char *const deny_child[] = { "child", NULL };
	o = yj_event_to_json(res.event, 7, NOW_US, s_deny, (void *)deny_child);
	assert_null(cJSON_GetObjectItem(o, "child"));
	assert_non_null(cJSON_GetObjectItem(o, "source_id"));
	cJSON_Delete(o);

	/* voluntary_interview's object is "interview"; offsets written back as sent */
	assert_int_equal(s_norm(&a, YJ_FEED_ARREST, s_arrest, &res), 0);
	o = yj_event_to_json(res.event, 8, NOW_US, NULL, NULL);
	assert_string_equal(cJSON_GetObjectItem(o, "occurred_at")->valuestring, "2026-06-01T09:00:00+01:00");
	assert_true(cJSON_IsFalse(cJSON_GetObjectItem(cJSON_GetObjectItem(o, "arrest"), "summons")));
	cJSON_Delete(o);
	assert_int_equal(s_norm(&a, YJ_FEED_VOLUNTARY_INTERVIEW, s_interview, &res), 0);
	o = yj_event_to_json(res.event, 9, NOW_US, NULL, NULL);
	assert_non_null(cJSON_GetObjectItem(o, "interview"));
	assert_string_equal(cJSON_GetObjectItem(o, "feed")->valuestring, "voluntary_interview");
	cJSON_Delete(o);
	assert_int_equal(s_norm(&a, YJ_FEED_OUTCOME, s_outcome, &res), 0);
	o = yj_event_to_json(res.event, 10, NOW_US, NULL, NULL);
	assert_int_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(o, "outcome"), "code")->valueint, 1);
	cJSON_Delete(o);
	yj_arena_free(&a);
}

/* ------------------------------------------------------------- helpers */

static void s_time_rt(const char *in, const char *out, int64_t want_us, int32_t want_off)
{
	int64_t us;
	int32_t off;
	char buf[48];
	assert_int_equal(yj_time_parse(in, strlen(in), &us, &off), 0);
	assert_int_equal(us, want_us);
	assert_int_equal(off, want_off);
	Yjlink__V1__Time t = YJLINK__V1__TIME__INIT;
	t.unix_us = us;
	t.offset_minutes = off;
	assert_int_equal(yj_time_format(&t, buf, sizeof(buf)), strlen(out));
	assert_string_equal(buf, out);
}

static void test_time(void **state)
{
	(void)state;
	int64_t us;
	int32_t off;
	const int64_t s = 1000000;

	s_time_rt("2026-11-21T23:14:00Z", "2026-11-21T23:14:00Z", INT64_C(1795302840) * s, 0);
	s_time_rt("2026-06-01T09:00:00+01:00", "2026-06-01T09:00:00+01:00", INT64_C(1780300800) * s, 60);
	s_time_rt("2026-06-01t09:00:00.25-05:30", "2026-06-01T09:00:00.25-05:30",
		  (INT64_C(1780300800) + 3600 + 5 * 3600 + 1800) * s + 250000, -330);
	s_time_rt("1970-01-01T00:00:00.000001Z", "1970-01-01T00:00:00.000001Z", 1, 0);
	s_time_rt("1969-12-31T23:59:59.5Z", "1969-12-31T23:59:59.5Z", -500000, 0);
	s_time_rt("2024-02-29T12:00:00.123456789z", "2024-02-29T12:00:00.123456Z", INT64_C(1709208000) * s + 123456, 0);
	/* RFC 3339 sets no limit on the fraction's digits: beyond 6 they are truncated. */
	s_time_rt("2024-02-29T12:00:00.123456789012345Z", "2024-02-29T12:00:00.123456Z", INT64_C(1709208000) * s + 123456, 0);
	s_time_rt("2026-01-01T00:30:00+23:59", "2026-01-01T00:30:00+23:59",
		  (INT64_C(1767227400) - 23 * 3600 - 59 * 60) * s, 23 * 60 + 59);

	static const char *const bad[] = {
		"2026-11-21T23:14:00",       "2026-11-21T23:14Z",          "2026-11-21 23:14:00Z",
		"2026-02-29T00:00:00Z",      "2026-11-21T24:00:00Z",       "2026-11-21T23:60:00Z",
		"2026-11-21T23:14:60Z",      "2026-11-21T23:14:00.Z",
		"2026-11-21T23:14:00+24:00", "2026-11-21T23:14:00+01:60",  "2026-11-21T23:14:00+0100",
		"2026-11-21T23:14:00Zx",     "2026-13-01T00:00:00Z",       "2026-00-10T00:00:00Z",
		"+026-11-21T23:14:00Z",      "2026-11-21T23:14:00 Z",      "",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (yj_time_parse(bad[i], strlen(bad[i]), &us, &off) != YJ_EINVAL)
			fail_msg("accepted '%s'", bad[i]);
	}
}

static void test_names(void **state)
{
	(void)state;
	assert_int_equal(yj_feed_from_name("custody", 7), YJ_FEED_CUSTODY);
	assert_int_equal(yj_feed_from_name("arrest", 6), YJ_FEED_ARREST);
	assert_int_equal(yj_feed_from_name("voluntary_interview", 19), YJ_FEED_VOLUNTARY_INTERVIEW);
	assert_int_equal(yj_feed_from_name("outcome", 7), YJ_FEED_OUTCOME);
	assert_int_equal(yj_feed_from_name("custodyx", 7), YJ_FEED_CUSTODY);  /* len counts, not the NUL */
	assert_int_equal(yj_feed_from_name("custod", 6), YJ_FEED_NONE);
	assert_int_equal(yj_feed_from_name("Custody", 7), YJ_FEED_NONE);
	assert_int_equal(yj_feed_from_name("interview", 9), YJ_FEED_NONE);
	for (int f = YJ_FEED_CUSTODY; f < YJ_FEED_COUNT; f++) {
		const char *n = yj_feed_name((enum yj_feed)f);
		assert_int_equal(yj_feed_from_name(n, strlen(n)), f);
	}
	assert_string_equal(yj_feed_name(YJ_FEED_NONE), "");
	assert_int_equal(yj_content_type_from_name("application/json", 16), YJ_CT_JSON);
	assert_int_equal(yj_content_type_from_name("application/x-protobuf", 22), YJ_CT_PROTOBUF);
	assert_int_equal(yj_content_type_from_name("application/json; charset=utf-8", 31), YJ_CT_NONE);
	assert_int_equal(yj_content_type_from_name("Application/JSON", 16), YJ_CT_NONE);
	static const char *const codes[] = { "", "protocol", "too_large", "encoding", "syntax", "schema",
					     "value", "out_of_scope", "conflict", "forbidden" };
	for (int c = YJ_REJ_NONE; c <= YJ_REJ_FORBIDDEN; c++)
		assert_string_equal(yj_reject_code_name((enum yj_reject_code)c), codes[c]);
}

static void test_reject_set(void **state)
{
	(void)state;
	struct yj_reject r = { 0 };
	yj_reject_set(&r, YJ_REJ_VALUE, "force", "first %d", 1);
	yj_reject_set(&r, YJ_REJ_VALUE, "child.gender", "second");
	assert_int_equal(r.code, YJ_REJ_VALUE);
	assert_string_equal(r.field, "force");
	assert_string_equal(r.reason, "first 1");
	yj_reject_set(&r, YJ_REJ_OUT_OF_SCOPE, "child.date_of_birth", "later code");
	assert_string_equal(r.field, "force");
	yj_reject_set(&r, YJ_REJ_SCHEMA, "custody.cell", "outranks");
	assert_int_equal(r.code, YJ_REJ_SCHEMA);
	assert_string_equal(r.field, "custody.cell");
	yj_reject_set(&r, YJ_REJ_SYNTAX, NULL, "null field");
	assert_string_equal(r.field, "");
	/* a long multi-byte reason is cut on a character boundary */
	char big[600];
	for (size_t i = 0; i + 2 < sizeof(big); i += 2)
		memcpy(big + i, "\xC3\xA9", 2);
	big[sizeof(big) - 2] = '\0';
	yj_reject_set(&r, YJ_REJ_ENCODING, "", "x%s", big);
	size_t n = strlen(r.reason);
	assert_true(n < sizeof(r.reason));
	assert_true(n % 2 == 1);  /* "x" plus whole two-byte characters */
}

static void test_child_id(void **state)
{
	(void)state;
	struct yj_arena a;
	struct yj_norm_result res;
	char buf[300];
	yj_arena_init(&a, 0);
	assert_int_equal(s_norm(&a, YJ_FEED_CUSTODY, s_custody, &res), 0);
	assert_int_equal(yj_event_child_id(res.event, buf, sizeof(buf)), strlen("E23000029/TVP-P-000123"));
	assert_string_equal(buf, "E23000029/TVP-P-000123");
	assert_int_equal(yj_event_child_id(res.event, buf, 5), 4);
	assert_string_equal(buf, "E230");
	yj_arena_free(&a);
}

/* ------------------------------------------------- ages and data quality */

/* The child's age on the feed's own date, and the apparent age. */
static void s_age_is(enum yj_feed feed, const char *from, const char *to, int want, int want_apparent)
{
	struct yj_arena a;
	struct yj_norm_result res;
	char *p = from ? s_subst(s_base(feed), from, to) : strdup(s_base(feed));
	int apparent = -1;
	yj_arena_init(&a, 0);
	assert_int_equal(s_norm(&a, feed, p, &res), 0);
	assert_int_equal(yj_event_child_age(res.event, &apparent), want);
	assert_int_equal(apparent, want_apparent);
	assert_int_equal(yj_event_child_age(res.event, NULL), want);
	yj_arena_free(&a);
	free(p);
}

static void test_child_age(void **state)
{
	(void)state;
	struct yj_arena a;
	struct yj_norm_result res;

	/* on arrived_at, not occurred_at: 17 when the record opened */
	char *p = s_subst(s_custody, "\"2011-03-04\"", "\"2008-11-22\"");
	s_age_is(YJ_FEED_CUSTODY, "\"occurred_at\":\"2026-11-21T23:14:00Z\"", "\"occurred_at\":\"2026-11-22T00:03:00Z\"", 15,
		 0);
	s_age_is(YJ_FEED_ARREST, NULL, NULL, 13, 0);
	s_age_is(YJ_FEED_VOLUNTARY_INTERVIEW, NULL, NULL, 16, 0);
	s_age_is(YJ_FEED_OUTCOME, NULL, NULL, 17, 0);  /* on offence_date; 18 on occurred_at */
	s_age_is(YJ_FEED_OUTCOME, ",\"offence_date\":\"2026-06-01\"", ",\"offence_date\":\"2025-11-01\"", 17, 0);
	s_age_is(YJ_FEED_CUSTODY, "\"date_of_birth\":\"2011-03-04\"", "\"apparent_age\":14", 14, 1);
	yj_arena_init(&a, 0);
	char *q = s_subst(p, "\"occurred_at\":\"2026-11-21T23:14:00Z\"", "\"occurred_at\":\"2026-11-22T00:03:00Z\"");
	assert_int_equal(s_norm(&a, YJ_FEED_CUSTODY, q, &res), 0);
	assert_int_equal(yj_event_child_age(res.event, NULL), 17);
	free(q);
	free(p);
	assert_int_equal(yj_event_child_age(NULL, NULL), -1);
	yj_arena_free(&a);
}

static void test_apparent_age(void **state)
{
	(void)state;
	struct yj_arena a;
	struct yj_norm_result res;
	yj_arena_init(&a, 0);

	/* apparent age only: kept */
	char *p = s_subst(s_custody, "\"date_of_birth\":\"2011-03-04\"", "\"apparent_age\":15");
	assert_int_equal(s_norm(&a, YJ_FEED_CUSTODY, p, &res), 0);
	assert_null(res.event->child->date_of_birth);
	assert_true(res.event->child->has_apparent_age);
	assert_int_equal(res.event->child->apparent_age, 15);
	cJSON *o = yj_event_to_json(res.event, 1, NOW_US, NULL, NULL);
	const cJSON *ap = cJSON_GetObjectItem(cJSON_GetObjectItem(o, "child"), "apparent_age");
	assert_true(cJSON_IsNumber(ap));
	assert_int_equal(ap->valueint, 15);
	cJSON_Delete(o);
	/* the same through protobuf packs identically, and round-trips through event_json */
	s_identical(YJ_FEED_CUSTODY, p);
	s_json_roundtrip(YJ_FEED_CUSTODY, p);
	free(p);

	/* both: the date of birth wins and the apparent age is dropped, so the
	 * packed event is the one without it (a DUP, not a conflict) */
	p = s_subst(s_custody, "\"date_of_birth\":\"2011-03-04\"", "\"date_of_birth\":\"2011-03-04\",\"apparent_age\":12");
	assert_int_equal(s_norm(&a, YJ_FEED_CUSTODY, p, &res), 0);
	assert_string_equal(res.event->child->date_of_birth, "2011-03-04");
	assert_false(res.event->child->has_apparent_age);
	size_t n1, n2;
	uint8_t *b1 = s_pack(res.event, &n1);
	assert_int_equal(s_norm(&a, YJ_FEED_CUSTODY, s_custody, &res), 0);
	uint8_t *b2 = s_pack(res.event, &n2);
	assert_int_equal(n1, n2);
	assert_memory_equal(b1, b2, n1);
	free(b1);
	free(b2);
	free(p);

	/* protobuf: out of range and missing both */
	Yjlink__V1__Event *ev = s_custody_pb();
	char *saved = ev->child->date_of_birth;
	ev->child->date_of_birth = NULL;
	s_pb_expect_ev(ev, NULL, 0, YJ_REJ_SCHEMA, "child.date_of_birth");
	ev->child->has_apparent_age = 1;
	ev->child->apparent_age = 18;
	s_pb_expect_ev(ev, NULL, 0, YJ_REJ_OUT_OF_SCOPE, "child.apparent_age");
	ev->child->apparent_age = 9;
	s_pb_expect_ev(ev, NULL, 0, YJ_REJ_OUT_OF_SCOPE, "child.apparent_age");
	ev->child->apparent_age = 17;
	s_pb_expect_ev(ev, NULL, 0, YJ_REJ_NONE, "");
	ev->child->date_of_birth = saved;
	yjlink__v1__event__free_unpacked(ev, NULL);
	yj_arena_free(&a);
}

static void test_data_quality(void **state)
{
	(void)state;
	struct yj_arena a;
	struct yj_norm_result res;
	yj_arena_init(&a, 0);
	assert_int_equal(s_norm(&a, YJ_FEED_OUTCOME, s_outcome, &res), 0);
	assert_null(yj_event_data_quality(res.event, g_ref));
	/* an adult caution about a child: stored, with its data-quality issue */
	static const char *const adult[] = { "\"code\":3,", "\"code\":6,", "\"code\":7,", "\"code\":11," };
	for (size_t i = 0; i < sizeof(adult) / sizeof(adult[0]); i++) {
		char *p = s_subst(s_outcome, "\"code\":1,", adult[i]);
		assert_int_equal(s_norm(&a, YJ_FEED_OUTCOME, p, &res), 0);
		assert_string_equal(yj_event_data_quality(res.event, g_ref), "outcome_code_not_for_children");
		free(p);
	}
	char *p = s_subst(s_outcome, "\"code\":1,", "\"code\":2,");
	assert_int_equal(s_norm(&a, YJ_FEED_OUTCOME, p, &res), 0);
	assert_null(yj_event_data_quality(res.event, g_ref));
	free(p);
	assert_int_equal(s_norm(&a, YJ_FEED_CUSTODY, s_custody, &res), 0);
	assert_null(yj_event_data_quality(res.event, g_ref));
	assert_null(yj_event_data_quality(NULL, g_ref));
	yj_arena_free(&a);
}

int main(void)
{
	static const struct CMUnitTest fixed[] = {
		cmocka_unit_test(test_accept_custody),
		cmocka_unit_test(test_parse_arena_apart),
		cmocka_unit_test(test_accept_arrest),
		cmocka_unit_test(test_accept_interview),
		cmocka_unit_test(test_accept_outcome),
		cmocka_unit_test(test_too_large),
		cmocka_unit_test(test_raw_nul),
		cmocka_unit_test(test_bom_and_whitespace),
		cmocka_unit_test(test_many_keys),
		cmocka_unit_test(test_source_id_on_refusal),
		cmocka_unit_test(test_bad_feed_or_type),
		cmocka_unit_test(test_json_protobuf_identical),
		cmocka_unit_test(test_key_order_identical),
		cmocka_unit_test(test_protobuf_refusals),
		cmocka_unit_test(test_event_json_roundtrip),
		cmocka_unit_test(test_event_json_values_and_filter),
		cmocka_unit_test(test_time),
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_reject_set),
		cmocka_unit_test(test_child_id),
		cmocka_unit_test(test_child_age),
		cmocka_unit_test(test_apparent_age),
		cmocka_unit_test(test_data_quality),
	};
	enum { N_FIXED = sizeof(fixed) / sizeof(fixed[0]), N_CASES = sizeof(s_cases) / sizeof(s_cases[0]) };
	static struct CMUnitTest tests[N_FIXED + N_CASES];

	memcpy(tests, fixed, sizeof(fixed));
	for (size_t i = 0; i < N_CASES; i++) {
		tests[N_FIXED + i] = (struct CMUnitTest){
			.name = s_cases[i].name,
			.test_func = test_case,
			.initial_state = (void *)&s_cases[i],
		};
	}
	return _cmocka_run_group_tests("normalise", tests, N_FIXED + N_CASES, s_group_setup, s_group_teardown);
}
