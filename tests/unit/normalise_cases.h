/* normalise_cases.h: table-driven refusal cases for test_normalise.c.
 *
 * Each case takes the valid base event of its feed (test_normalise.c),
 * replaces the first occurrence of `from` with `to` (from NULL: `to` is the
 * whole payload) and expects exactly `code` at `field`. A `from` that is not
 * in the base fails the case, so a typo cannot turn a case into a no-op.
 */
#ifndef NORMALISE_CASES_H
#define NORMALISE_CASES_H

#include "normalise.h"

struct ncase {
	const char *name;          /* shown by cmocka */
	enum yj_feed feed;         /* which base event, and the feed sent */
	const char *from;          /* text of the base to replace; NULL: `to` is the payload */
	const char *to;            /* replacement */
	const char *from2, *to2;   /* an optional second replacement */
	enum yj_reject_code code;  /* expected; YJ_REJ_NONE: accepted */
	const char *field;         /* expected dotted path */
};

#define CASE(name, feed, from, to, code, field) { name, feed, from, to, NULL, NULL, code, field }
#define CASE2(name, feed, from, to, from2, to2, code, field) { name, feed, from, to, from2, to2, code, field }

#define C_ YJ_FEED_CUSTODY
#define A_ YJ_FEED_ARREST
#define V_ YJ_FEED_VOLUNTARY_INTERVIEW
#define O_ YJ_FEED_OUTCOME

#define X10 "xxxxxxxxxx"
#define X100 X10 X10 X10 X10 X10 X10 X10 X10 X10 X10
#define X256 X100 X100 X10 X10 X10 X10 X10 "xxxxxx"
#define X1024 X256 X256 X256 X256
#define NEST16 "[[[[[[[[[[[[[[[[" "]]]]]]]]]]]]]]]]"
#define NEST15 "[[[[[[[[[[[[[[[" "]]]]]]]]]]]]]]]"
#define OFF1 "{\"code\":\"A\"},"
#define OFF5 OFF1 OFF1 OFF1 OFF1 OFF1

static const struct ncase s_cases[] = {
	/* ---- encoding */
	CASE("enc_invalid_utf8", C_, "\"Sam\"", "\"S\xC3\x28m\"", YJ_REJ_ENCODING, ""),
	CASE("enc_overlong", C_, "\"Sam\"", "\"S\xC0\xAFm\"", YJ_REJ_ENCODING, ""),
	CASE("enc_utf8_surrogate", C_, "\"Sam\"", "\"S\xED\xA0\x80m\"", YJ_REJ_ENCODING, ""),
	CASE("enc_above_10ffff", C_, "\"Sam\"", "\"S\xF4\x90\x80\x80m\"", YJ_REJ_ENCODING, ""),
	CASE("enc_truncated_seq", C_, "\"Sam\"", "\"Sam\xE2\x82\"", YJ_REJ_ENCODING, ""),
	CASE("enc_escaped_nul", C_, "\"Sam\"", "\"Sa\\u0000m\"", YJ_REJ_ENCODING, ""),
	CASE("enc_lone_high_surrogate", C_, "\"Sam\"", "\"Sa\\uD800m\"", YJ_REJ_ENCODING, ""),
	CASE("enc_lone_low_surrogate", C_, "\"Sam\"", "\"Sa\\udc00m\"", YJ_REJ_ENCODING, ""),
	CASE("enc_high_then_non_low", C_, "\"Sam\"", "\"Sa\\uD800\\u0041\"", YJ_REJ_ENCODING, ""),
	CASE("enc_in_key", C_, "\"gender\"", "\"gend\xFF" "er\"", YJ_REJ_ENCODING, ""),
	CASE("enc_beats_syntax_after", C_, "\"Sam\"", "\"S\xC3\x28m\",,", YJ_REJ_ENCODING, ""),

	/* ---- syntax */
	CASE("syn_dup_top", C_, "\"force\":\"E23000029\",", "\"force\":\"E23000029\",\"force\":\"E23000029\",",
	     YJ_REJ_SYNTAX, "force"),
	CASE("syn_dup_nested", C_, "\"gender\":\"male\"", "\"gender\":\"male\",\"gender\":\"female\"", YJ_REJ_SYNTAX,
	     "child.gender"),
	CASE("syn_dup_escaped", C_, "\"gender\":\"male\"", "\"gender\":\"male\",\"g\\u0065nder\":\"male\"", YJ_REJ_SYNTAX,
	     "child.gender"),
	CASE("syn_dup_in_array_item", C_, "{\"code\":\"CD71001\"}", "{\"code\":\"CD71001\",\"code\":\"X\"}", YJ_REJ_SYNTAX,
	     "offences.1.code"),
	CASE("syn_dup_inside_unknown_field", C_, "\"markers\":", "\"zzz\":{\"a\":1,\"a\":2},\"markers\":", YJ_REJ_SYNTAX,
	     "zzz.a"),
	CASE("syn_dup_unknown_keys", C_, "\"markers\":", "\"zz\":1,\"zz\":2,\"markers\":", YJ_REJ_SYNTAX, "zz"),
	CASE("syn_dup_feed_object", A_, "\"summons\":false}}", "\"summons\":false},\"arrest\":{}}", YJ_REJ_SYNTAX,
	     "arrest"),
	CASE("syn_dup_in_other_feed_object", C_, "\"markers\":", "\"arrest\":{\"x\":1,\"x\":1},\"markers\":",
	     YJ_REJ_SYNTAX, "arrest.x"),
	CASE("syn_dup_in_wrong_type_value", C_, "\"social_worker\":{", "\"zsw\":[{\"a\":1,\"a\":1}],\"social_worker\":{",
	     YJ_REJ_SYNTAX, "child.zsw.0.a"),
	CASE("syn_dup_in_array_for_object", C_, "\"markers\":{", "\"markers\":[{\"a\":1,\"a\":1}],\"zm\":{",
	     YJ_REJ_SYNTAX, "markers.0.a"),
	CASE("syn_dup_in_non_object_item", C_, "\"offences\":[", "\"offences\":[[{\"b\":1,\"b\":1}],", YJ_REJ_SYNTAX,
	     "offences.0.0.b"),
	CASE("syn_dup_in_array_payload", C_, NULL, "[{\"a\":1,\"a\":1}]", YJ_REJ_SYNTAX, "0.a"),
	CASE2("syn_dup_after_schema_error", C_, "\"reason\":\"to secure evidence\"}}",
	      "\"reason\":\"to secure evidence\",\"reason\":\"x\"}}", "\"markers\":", "\"zz\":1,\"markers\":",
	      YJ_REJ_SYNTAX, "custody.reason"),
	CASE("syn_depth_17", C_, "\"markers\":", "\"zzz\":" NEST16 ",\"markers\":", YJ_REJ_SYNTAX, ""),
	CASE("syn_depth_16_is_fine_for_syntax", C_, "\"markers\":", "\"zzz\":" NEST15 ",\"markers\":", YJ_REJ_SCHEMA,
	     "zzz"),
	CASE("syn_trailing_garbage", C_, "\"reason\":\"to secure evidence\"}}", "\"reason\":\"to secure evidence\"}} x",
	     YJ_REJ_SYNTAX, ""),
	CASE("syn_two_values", C_, "\"reason\":\"to secure evidence\"}}", "\"reason\":\"to secure evidence\"}}{}",
	     YJ_REJ_SYNTAX, ""),
	CASE("syn_truncated", C_, "\"reason\":\"to secure evidence\"}}", "\"reason\":\"to secure evidence\"}",
	     YJ_REJ_SYNTAX, ""),
	CASE("syn_empty", C_, NULL, "", YJ_REJ_SYNTAX, ""),
	CASE("syn_only_space", C_, NULL, "  \n", YJ_REJ_SYNTAX, ""),
	CASE("syn_leading_zero", O_, "\"code\":1,", "\"code\":01,", YJ_REJ_SYNTAX, ""),
	CASE("syn_bare_point", O_, "\"code\":1,", "\"code\":1.,", YJ_REJ_SYNTAX, ""),
	CASE("syn_raw_tab_in_string", C_, "\"Sam\"", "\"S\tam\"", YJ_REJ_SYNTAX, ""),
	CASE("syn_vertical_tab_whitespace", C_, "\"force\":", "\"force\":\v", YJ_REJ_SYNTAX, ""),
	CASE("syn_trailing_comma", C_, "\"reason\":\"to secure evidence\"}}", "\"reason\":\"to secure evidence\",}}",
	     YJ_REJ_SYNTAX, ""),
	CASE("syn_bad_escape", C_, "\"Sam\"", "\"S\\qam\"", YJ_REJ_SYNTAX, ""),
	/* cJSON reads a \u with a non-hex digit as U+0000 and keeps the string up
	 * to it: "Sam\uZZZZ" would have been stored as "Sam" */
	CASE("syn_bad_u_escape", C_, "\"Sam\"", "\"Sam\\uZZZZ\"", YJ_REJ_SYNTAX, ""),
	CASE("syn_bad_u_escape_half", C_, "\"Sam\"", "\"Sam\\u00G1 Smith\"", YJ_REJ_SYNTAX, ""),
	CASE("syn_short_u_escape", C_, "\"Sam\"", "\"Sam\\u12\"", YJ_REJ_SYNTAX, ""),
	CASE("syn_single_quotes", C_, "\"Sam\"", "'Sam'", YJ_REJ_SYNTAX, ""),
	CASE("syn_beats_schema", C_, "\"gender\":\"male\"", "\"gender\":\"male\",\"nick\":1,\"nick\":2", YJ_REJ_SYNTAX,
	     "child.nick"),

	/* ---- schema */
	CASE("sch_array_payload", C_, NULL, "[1,2]", YJ_REJ_SCHEMA, ""),
	CASE("sch_string_payload", C_, NULL, "\"custody\"", YJ_REJ_SCHEMA, ""),
	CASE("sch_missing_force", C_, "\"force\":\"E23000029\",", "", YJ_REJ_SCHEMA, "force"),
	CASE("sch_missing_source_id", C_, "\"source_id\":\"tvp-0001\",", "", YJ_REJ_SCHEMA, "source_id"),
	CASE("sch_missing_dob", C_, "\"date_of_birth\":\"2011-03-04\",", "", YJ_REJ_SCHEMA, "child.date_of_birth"),
	CASE("sch_missing_custody_status", C_, "\"status\":\"detained\",", "", YJ_REJ_SCHEMA, "custody.status"),
	CASE("sch_missing_offence_code", C_, "{\"code\":\"CD71001\"}", "{\"description\":\"x\"}", YJ_REJ_SCHEMA,
	     "offences.1.code"),
	CASE("sch_bool_as_string", C_, "\"looked_after\":true", "\"looked_after\":\"yes\"", YJ_REJ_SCHEMA,
	     "child.looked_after"),
	CASE("sch_number_for_string", C_, "\"person_id\":\"TVP-P-000123\"", "\"person_id\":123", YJ_REJ_SCHEMA,
	     "child.person_id"),
	CASE("sch_time_as_number", C_, "\"occurred_at\":\"2026-11-21T23:14:00Z\"", "\"occurred_at\":1790000000",
	     YJ_REJ_SCHEMA, "occurred_at"),
	CASE("sch_code_as_string", O_, "\"code\":1,", "\"code\":\"1\",", YJ_REJ_SCHEMA, "outcome.code"),
	CASE("sch_child_as_array", C_, "\"child\":{", "\"child\":[],\"zchild\":{", YJ_REJ_SCHEMA, "child"),
	CASE("sch_offences_not_array", C_, "\"offences\":[", "\"offences\":{},\"zoff\":[", YJ_REJ_SCHEMA, "offences"),
	CASE("sch_offence_not_object", C_, "\"offences\":[", "\"offences\":[\"TH68010\",", YJ_REJ_SCHEMA, "offences.0"),
	CASE("sch_null_required", C_, "\"given_name\":\"Sam\"", "\"given_name\":null", YJ_REJ_SCHEMA,
	     "child.given_name"),
	CASE("sch_null_optional", C_, "\"gender\":\"male\"", "\"gender\":null", YJ_REJ_SCHEMA, "child.gender"),
	CASE("sch_unknown_top", C_, "\"markers\":", "\"colour\":\"red\",\"markers\":", YJ_REJ_SCHEMA, "colour"),
	CASE("sch_unknown_child", C_, "\"gender\":\"male\"", "\"gender\":\"male\",\"nickname\":\"x\"", YJ_REJ_SCHEMA,
	     "child.nickname"),
	CASE("sch_unknown_social_worker", C_, "\"phone\":\"01234 567890\"", "\"phone\":\"01234 567890\",\"team\":\"x\"",
	     YJ_REJ_SCHEMA, "child.social_worker.team"),
	CASE("sch_unknown_offence", C_, "{\"code\":\"CD71001\"}", "{\"code\":\"CD71001\",\"severity\":3}", YJ_REJ_SCHEMA,
	     "offences.1.severity"),
	CASE("sch_unknown_markers", C_, "\"mappa\":false", "\"mappa\":false,\"flag\":true", YJ_REJ_SCHEMA,
	     "markers.flag"),
	CASE("sch_unknown_custody", C_, "\"status\":\"detained\"", "\"status\":\"detained\",\"cell\":\"4\"",
	     YJ_REJ_SCHEMA, "custody.cell"),
	CASE("sch_unknown_appropriate_adult", C_, "\"relationship\":\"mother\"",
	     "\"relationship\":\"mother\",\"phone\":\"1\"", YJ_REJ_SCHEMA, "custody.appropriate_adult.phone"),
	CASE("sch_unknown_arrest", A_, "\"summons\":false", "\"summons\":false,\"where\":\"x\"", YJ_REJ_SCHEMA,
	     "arrest.where"),
	CASE("sch_unknown_interview", V_, "\"status\":\"scheduled\"", "\"status\":\"scheduled\",\"room\":\"1\"",
	     YJ_REJ_SCHEMA, "interview.room"),
	CASE("sch_unknown_outcome", O_, "\"disposal\":\"charge\"", "\"disposal\":\"charge\",\"court\":\"x\"",
	     YJ_REJ_SCHEMA, "outcome.court"),
	CASE("sch_feed_object_renamed", C_, "\"custody\":{", "\"zzz\":{", YJ_REJ_SCHEMA, "zzz"),
	CASE("sch_feed_object_absent", A_, ",\"arrest\":{\"arrest_id\":\"TVP-A-1\",\"arrested_at\":\"2026-06-01T09:00:00+01:00\","
	     "\"asn\":\"26TVP01\",\"location_la\":\"E07000177\",\"summons\":false}", "", YJ_REJ_SCHEMA, "arrest"),
	CASE("sch_other_feed_object", C_, "\"markers\":", "\"outcome\":{},\"markers\":", YJ_REJ_SCHEMA, "outcome"),
	CASE("sch_interview_key_on_wrong_feed", O_, "\"outcome\":", "\"interview\":{},\"outcome\":", YJ_REJ_SCHEMA,
	     "interview"),
	CASE("sch_voluntary_interview_key", V_, "\"interview\":", "\"voluntary_interview\":{},\"interview\":",
	     YJ_REJ_SCHEMA, "voluntary_interview"),
	CASE("sch_looked_after_without_la", C_, ",\"responsible_la\":\"E06000042\"", "", YJ_REJ_SCHEMA,
	     "child.responsible_la"),
	CASE("sch_aa_time_as_bool", C_, "\"called_at\":\"2026-11-21T23:20:00.5+00:00\"", "\"called_at\":true",
	     YJ_REJ_SCHEMA, "custody.appropriate_adult.called_at"),

	/* ---- value */
	CASE("val_offsetless_time", C_, "\"occurred_at\":\"2026-11-21T23:14:00Z\"", "\"occurred_at\":\"2026-11-21T23:14:00\"",
	     YJ_REJ_VALUE, "occurred_at"),
	CASE("val_impossible_date_time", C_, "\"arrived_at\":\"2026-11-21T23:10:00Z\"",
	     "\"arrived_at\":\"2026-02-30T23:10:00Z\"", YJ_REJ_VALUE, "custody.arrived_at"),
	CASE("val_hour_25", C_, "\"status_at\":\"2026-11-21T23:14:00Z\"", "\"status_at\":\"2026-11-21T25:14:00Z\"",
	     YJ_REJ_VALUE, "custody.status_at"),
	CASE("val_space_separator", C_, "\"status_at\":\"2026-11-21T23:14:00Z\"", "\"status_at\":\"2026-11-21 23:14:00Z\"",
	     YJ_REJ_VALUE, "custody.status_at"),
	CASE("ok_ten_fraction_digits", C_, "\"status_at\":\"2026-11-21T23:14:00Z\"",
	     "\"status_at\":\"2026-11-21T23:14:00.1234567890Z\"", YJ_REJ_NONE, ""),
	CASE("val_offset_24h", C_, "\"status_at\":\"2026-11-21T23:14:00Z\"", "\"status_at\":\"2026-11-21T23:14:00+24:00\"",
	     YJ_REJ_VALUE, "custody.status_at"),
	CASE("val_occurred_in_future", C_, "\"occurred_at\":\"2026-11-21T23:14:00Z\"",
	     "\"occurred_at\":\"2026-11-22T00:05:01Z\"", YJ_REJ_VALUE, "occurred_at"),
	CASE("val_dob_impossible", C_, "\"2011-03-04\"", "\"2011-02-29\"", YJ_REJ_VALUE, "child.date_of_birth"),
	CASE("val_dob_future", C_, "\"2011-03-04\"", "\"2027-01-01\"", YJ_REJ_VALUE, "child.date_of_birth"),
	CASE("val_dob_not_a_date", C_, "\"2011-03-04\"", "\"04/03/2011\"", YJ_REJ_VALUE, "child.date_of_birth"),
	CASE("val_force_unknown", C_, "\"force\":\"E23000029\"", "\"force\":\"E23000099\"", YJ_REJ_VALUE, "force"),
	CASE("val_home_la_lower_tier", C_, "\"home_la\":\"E06000042\"", "\"home_la\":\"E07000177\"", YJ_REJ_VALUE,
	     "child.home_la"),
	CASE("val_home_la_unknown", C_, "\"home_la\":\"E06000042\"", "\"home_la\":\"E06999999\"", YJ_REJ_VALUE,
	     "child.home_la"),
	CASE("val_responsible_la_lower", C_, "\"responsible_la\":\"E06000042\"", "\"responsible_la\":\"E07000177\"",
	     YJ_REJ_VALUE, "child.responsible_la"),
	CASE("val_location_la_unknown", A_, "\"location_la\":\"E07000177\"", "\"location_la\":\"E07999999\"",
	     YJ_REJ_VALUE, "arrest.location_la"),
	CASE("val_suite_unknown", C_, "\"TVP-MK\"", "\"TVP-XX\"", YJ_REJ_VALUE, "custody.suite"),
	CASE("val_outcome_code_unknown", O_, "\"code\":1,", "\"code\":99,", YJ_REJ_VALUE, "outcome.code"),
	CASE("val_outcome_code_fraction", O_, "\"code\":1,", "\"code\":1.5,", YJ_REJ_VALUE, "outcome.code"),
	CASE("val_outcome_code_huge", O_, "\"code\":1,", "\"code\":1e12,", YJ_REJ_VALUE, "outcome.code"),
	CASE("val_outcome_code_not_yet_valid", O_, "\"code\":1,\"decided_at\":\"2026-11-20T15:00:00Z\"",
	     "\"code\":22,\"decided_at\":\"2019-03-31T15:00:00+01:00\"", YJ_REJ_VALUE, "outcome.code"),
	CASE("val_ethnicity", C_, "\"ethnicity\":\"W1\"", "\"ethnicity\":\"Z9\"", YJ_REJ_VALUE, "child.ethnicity"),
	CASE("val_gender", C_, "\"gender\":\"male\"", "\"gender\":\"Male\"", YJ_REJ_VALUE, "child.gender"),
	CASE("val_custody_status", C_, "\"status\":\"detained\"", "\"status\":\"escaped\"", YJ_REJ_VALUE,
	     "custody.status"),
	CASE("val_interview_status", V_, "\"status\":\"scheduled\"", "\"status\":\"done\"", YJ_REJ_VALUE,
	     "interview.status"),
	CASE("val_disposal", O_, "\"disposal\":\"charge\"", "\"disposal\":\"prison\"", YJ_REJ_VALUE, "outcome.disposal"),
	CASE("val_pnc_one_year_digit", C_, "\"09/123456X\"", "\"9/123456X\"", YJ_REJ_VALUE, "child.pnc_id"),
	CASE("val_pnc_eight_digits", C_, "\"09/123456X\"", "\"09/12345678X\"", YJ_REJ_VALUE, "child.pnc_id"),
	CASE("val_pnc_lower_letter", C_, "\"09/123456X\"", "\"09/123456x\"", YJ_REJ_VALUE, "child.pnc_id"),
	CASE("val_pnc_empty", C_, "\"09/123456X\"", "\"\"", YJ_REJ_VALUE, "child.pnc_id"),
	CASE("val_postcode_short", C_, "\"mk9 3ab\"", "\"MK9 3A\"", YJ_REJ_VALUE, "child.home_postcode"),
	CASE("val_postcode_space_misplaced", C_, "\"mk9 3ab\"", "\"MK93 AB\"", YJ_REJ_VALUE, "child.home_postcode"),
	CASE("val_postcode_digits", C_, "\"mk9 3ab\"", "\"12345\"", YJ_REJ_VALUE, "child.home_postcode"),
	CASE("val_email", C_, "\"a.worker@example.gov.uk\"", "\"a.worker.example.gov.uk\"", YJ_REJ_VALUE,
	     "child.social_worker.email"),
	CASE("val_email_no_dot_domain", C_, "\"a.worker@example.gov.uk\"", "\"a.worker@localhost\"", YJ_REJ_VALUE,
	     "child.social_worker.email"),
	CASE("val_21_offences", C_, "\"offences\":[", "\"offences\":[" OFF5 OFF5 OFF5 OFF5 OFF1, YJ_REJ_VALUE,
	     "offences"),
	CASE("val_source_id_129", C_, "\"tvp-0001\"", "\"" X100 "xxxxxxxxxxxxxxxxxxxxxxxxxxxxx\"", YJ_REJ_VALUE,
	     "source_id"),
	CASE("val_source_id_empty", C_, "\"tvp-0001\"", "\"\"", YJ_REJ_VALUE, "source_id"),
	CASE("val_string_257", C_, "\"Example\"", "\"" X256 "y\"", YJ_REJ_VALUE, "child.family_name"),
	CASE("val_reason_1025", C_, "\"to secure evidence\"", "\"" X1024 "y\"", YJ_REJ_VALUE, "custody.reason"),
	CASE("val_offence_code_257", C_, "\"TH68010\"", "\"" X256 "y\"", YJ_REJ_VALUE, "offences.0.code"),
	CASE("val_empty_required", C_, "\"record_id\":\"TVP-C-0001\"", "\"record_id\":\"\"", YJ_REJ_VALUE,
	     "custody.record_id"),
	CASE("val_offence_after_decision", O_, "\"offence_date\":\"2026-06-01\"", "\"offence_date\":\"2026-11-21\"",
	     YJ_REJ_VALUE, "outcome.offence_date"),
	CASE("val_offence_date_impossible", O_, "\"offence_date\":\"2026-06-01\"", "\"offence_date\":\"2026-06-31\"",
	     YJ_REJ_VALUE, "outcome.offence_date"),

	/* ---- out_of_scope */
	CASE("oos_aged_9", C_, "\"2011-03-04\"", "\"2017-01-01\"", YJ_REJ_OUT_OF_SCOPE, "child.date_of_birth"),
	CASE("oos_aged_18", C_, "\"2011-03-04\"", "\"2008-11-21\"", YJ_REJ_OUT_OF_SCOPE, "child.date_of_birth"),
	/* custody: the age on arrived_at, in the offset the sender wrote it in */
	CASE2("oos_18_on_local_date", C_, "\"2011-03-04\"", "\"2008-11-22\"", "\"arrived_at\":\"2026-11-21T23:10:00Z\"",
	      "\"arrived_at\":\"2026-11-22T00:10:00+01:00\"", YJ_REJ_OUT_OF_SCOPE, "child.date_of_birth"),
	CASE2("oos_18_on_arrived_at", C_, "\"2011-03-04\"", "\"2008-11-21\"", "\"occurred_at\":\"2026-11-21T23:14:00Z\"",
	      "\"occurred_at\":\"2026-11-20T23:14:00Z\"", YJ_REJ_OUT_OF_SCOPE, "child.date_of_birth"),
	/* a status message on the 18th birthday: 18 on occurred_at, 17 on arrived_at */
	CASE2("ok_turns_18_while_held", C_, "\"2011-03-04\"", "\"2008-11-22\"", "\"occurred_at\":\"2026-11-21T23:14:00Z\"",
	      "\"occurred_at\":\"2026-11-22T00:03:00Z\"", YJ_REJ_NONE, ""),
	/* arrest: on arrested_at (a report sent the day after the 18th birthday) */
	CASE2("ok_arrest_age_on_arrested_at", A_, "\"2012-07-15\"", "\"2008-06-02\"",
	      "\"occurred_at\":\"2026-06-01T09:00:00+01:00\"", "\"occurred_at\":\"2026-06-02T09:00:00+01:00\"",
	      YJ_REJ_NONE, ""),
	CASE2("oos_arrest_18_on_arrested_at", A_, "\"2012-07-15\"", "\"2008-06-01\"",
	      "\"occurred_at\":\"2026-06-01T09:00:00+01:00\"", "\"occurred_at\":\"2026-05-31T09:00:00+01:00\"",
	      YJ_REJ_OUT_OF_SCOPE, "child.date_of_birth"),
	/* interview: on interview.at (scheduled for after the 18th birthday) */
	CASE("oos_interview_18_on_at", V_, "\"2010-01-31\"", "\"2008-11-25\"", YJ_REJ_OUT_OF_SCOPE,
	     "child.date_of_birth"),
	CASE("ok_interview_17_on_at", V_, "\"2010-01-31\"", "\"2008-12-02\"", YJ_REJ_NONE, ""),
	CASE("oos_outcome_without_offence_date", O_, ",\"offence_date\":\"2026-06-01\"", "", YJ_REJ_OUT_OF_SCOPE,
	     "child.date_of_birth"),
	CASE("ok_outcome_offence_date_under_18", O_, "\"offence_date\":\"2026-06-01\"",
	     "\"offence_date\":\"2026-10-31\"", YJ_REJ_NONE, ""),
	CASE("oos_outcome_offence_at_18", O_, "\"offence_date\":\"2026-06-01\"", "\"offence_date\":\"2026-11-02\"",
	     YJ_REJ_OUT_OF_SCOPE, "child.date_of_birth"),

	/* ---- apparent_age: when the date of birth is not known */
	CASE("ok_apparent_age_only", C_, "\"date_of_birth\":\"2011-03-04\"", "\"apparent_age\":15", YJ_REJ_NONE, ""),
	CASE("ok_apparent_age_10", A_, "\"date_of_birth\":\"2012-07-15\"", "\"apparent_age\":10", YJ_REJ_NONE, ""),
	CASE("ok_apparent_age_17", O_, "\"date_of_birth\":\"2008-11-01\"", "\"apparent_age\":17", YJ_REJ_NONE, ""),
	CASE("ok_apparent_age_integral_float", V_, "\"date_of_birth\":\"2010-01-31\"", "\"apparent_age\":12.0",
	     YJ_REJ_NONE, ""),
	CASE("ok_both_dob_wins", C_, "\"date_of_birth\":\"2011-03-04\"",
	     "\"date_of_birth\":\"2011-03-04\",\"apparent_age\":16", YJ_REJ_NONE, ""),
	/* the date of birth decides: an apparent age beside it is not looked at */
	CASE("ok_both_dob_wins_over_bad_apparent", C_, "\"date_of_birth\":\"2011-03-04\"",
	     "\"apparent_age\":30,\"date_of_birth\":\"2011-03-04\"", YJ_REJ_NONE, ""),
	CASE("oos_both_dob_18_wins", C_, "\"date_of_birth\":\"2011-03-04\"",
	     "\"date_of_birth\":\"2008-01-01\",\"apparent_age\":16", YJ_REJ_OUT_OF_SCOPE, "child.date_of_birth"),
	CASE("sch_neither_dob_nor_apparent", C_, "\"date_of_birth\":\"2011-03-04\",", "", YJ_REJ_SCHEMA,
	     "child.date_of_birth"),
	CASE("oos_apparent_age_9", C_, "\"date_of_birth\":\"2011-03-04\"", "\"apparent_age\":9", YJ_REJ_OUT_OF_SCOPE,
	     "child.apparent_age"),
	CASE("oos_apparent_age_18", C_, "\"date_of_birth\":\"2011-03-04\"", "\"apparent_age\":18",
	     YJ_REJ_OUT_OF_SCOPE, "child.apparent_age"),
	CASE("oos_apparent_age_negative", C_, "\"date_of_birth\":\"2011-03-04\"", "\"apparent_age\":-15",
	     YJ_REJ_OUT_OF_SCOPE, "child.apparent_age"),
	CASE("oos_apparent_age_huge", C_, "\"date_of_birth\":\"2011-03-04\"", "\"apparent_age\":1e12",
	     YJ_REJ_OUT_OF_SCOPE, "child.apparent_age"),
	CASE("sch_apparent_age_fraction", C_, "\"date_of_birth\":\"2011-03-04\"", "\"apparent_age\":15.5",
	     YJ_REJ_SCHEMA, "child.apparent_age"),
	CASE("sch_apparent_age_string", C_, "\"date_of_birth\":\"2011-03-04\"", "\"apparent_age\":\"15\"",
	     YJ_REJ_SCHEMA, "child.apparent_age"),
	CASE("sch_apparent_age_null", C_, "\"date_of_birth\":\"2011-03-04\"", "\"apparent_age\":null",
	     YJ_REJ_SCHEMA, "child.apparent_age"),
	CASE2("prec_value_beats_apparent_scope", C_, "\"date_of_birth\":\"2011-03-04\"", "\"apparent_age\":9",
	      "\"gender\":\"male\"", "\"gender\":\"robot\"", YJ_REJ_VALUE, "child.gender"),

	/* ---- accepted edges */
	CASE("ok_aged_17_last_day", C_, "\"2011-03-04\"", "\"2008-11-22\"", YJ_REJ_NONE, ""),
	CASE("ok_aged_10_first_day", C_, "\"2011-03-04\"", "\"2016-11-21\"", YJ_REJ_NONE, ""),
	CASE("ok_occurred_4min_ahead", C_, "\"occurred_at\":\"2026-11-21T23:14:00Z\"",
	     "\"occurred_at\":\"2026-11-22T00:04:59Z\"", YJ_REJ_NONE, ""),
	CASE("ok_lower_case_t_z", C_, "\"occurred_at\":\"2026-11-21T23:14:00Z\"",
	     "\"occurred_at\":\"2026-11-21t23:14:00.123456789z\"", YJ_REJ_NONE, ""),
	CASE("ok_reason_1024", C_, "\"to secure evidence\"", "\"" X1024 "\"", YJ_REJ_NONE, ""),
	CASE("ok_string_256", C_, "\"Example\"", "\"" X256 "\"", YJ_REJ_NONE, ""),
	CASE("ok_20_offences", C_, "\"offences\":[{\"code\":\"TH68010\",\"description\":\"Theft from a shop\"},",
	     "\"offences\":[" OFF5 OFF5 OFF5 OFF1 OFF1 OFF1 OFF1, YJ_REJ_NONE, ""),
	CASE("ok_postcode_no_space", C_, "\"mk9 3ab\"", "\"MK93AB\"", YJ_REJ_NONE, ""),
	CASE("ok_postcode_gir", C_, "\"mk9 3ab\"", "\"GIR 0AA\"", YJ_REJ_NONE, ""),
	CASE("ok_surrogate_pair_escape", C_, "\"Sam\"", "\"Sam \\ud83d\\ude00\"", YJ_REJ_NONE, ""),
	CASE("ok_utf8_name", C_, "\"Sam\"", "\"Se\xC3\xA1n \xF0\x9F\x98\x80\"", YJ_REJ_NONE, ""),
	CASE("ok_ns_ethnicity", C_, "\"ethnicity\":\"W1\"", "\"ethnicity\":\"NS\"", YJ_REJ_NONE, ""),
	CASE("ok_location_la_lower_tier", A_, "\"summons\":false", "\"summons\":true", YJ_REJ_NONE, ""),
	CASE("ok_empty_optional_text", C_, "\"asn\":\"2600TVP0000000001A\"", "\"asn\":\"\"", YJ_REJ_NONE, ""),
	CASE("ok_integral_float_code", O_, "\"code\":1,", "\"code\":8.0,", YJ_REJ_NONE, ""),
	CASE("ok_not_looked_after_no_la", C_, "\"looked_after\":true,\"responsible_la\":\"E06000042\"",
	     "\"looked_after\":false", YJ_REJ_NONE, ""),

	/* ---- precedence */
	CASE2("prec_schema_after_value", C_, "\"force\":\"E23000029\"", "\"force\":\"E23000099\"",
	      "\"status\":\"detained\"", "\"status\":\"detained\",\"cell\":\"4\"", YJ_REJ_SCHEMA, "custody.cell"),
	CASE2("prec_first_value_in_document", C_, "\"force\":\"E23000029\"", "\"force\":\"E23000099\"",
	      "\"gender\":\"male\"", "\"gender\":\"robot\"", YJ_REJ_VALUE, "force"),
	CASE2("prec_document_order_not_field_order", C_, "\"person_id\":\"TVP-P-000123\"",
	      "\"ethnicity\":\"Z9\",\"person_id\":\"TVP-P-000123\"", "\"gender\":\"male\",\"ethnicity\":\"W1\"",
	      "\"gender\":\"robot\"", YJ_REJ_VALUE, "child.ethnicity"),
	CASE2("prec_value_beats_scope", C_, "\"2011-03-04\"", "\"2017-01-01\"", "\"gender\":\"male\"",
	      "\"gender\":\"robot\"", YJ_REJ_VALUE, "child.gender"),
	CASE("prec_first_schema_wins", C_, "\"source_id\":\"tvp-0001\",", "\"zz\":1,", YJ_REJ_SCHEMA, "zz"),
	CASE("prec_missing_after_wrong_type", C_, "\"force\":\"E23000029\",", "\"force\":5,", YJ_REJ_SCHEMA, "force"),
};

#endif
