/* normalise.h: turns one feed message (JSON or protobuf) into a normalised
 * yjlink.v1.Event, or into a refusal with the documented REJECT code and the
 * dotted field path (interfaces.md §1 and §2).
 *
 * Precedence is the spec's "first match wins" table: protocol, too_large,
 * encoding, syntax, schema, value, out_of_scope. (conflict and forbidden are
 * decided by the ingest core against the store and the sender's binding.)
 * Within one code the first problem found in document order is reported.
 *
 * Normalised means: timestamps as UTC microseconds plus the sender's offset;
 * postcodes upper case with one space; codes checked against the reference
 * tables; an absent boolean stays absent (looked_after absent means
 * unknown, not false); apparent_age dropped when date_of_birth is given.
 * Two messages with the same meaning normalise to byte-identical packed
 * events, whatever the content type, which is what DUP compares.
 *
 * Thread-safety: none needed; all state is in the arguments.
 */
#ifndef YJ_NORMALISE_H
#define YJ_NORMALISE_H

#include <stddef.h>
#include <stdint.h>

#include "arena.h"
#include "refdata.h"
#include "yjlink.pb-c.h"

enum yj_feed {
	YJ_FEED_NONE = 0,
	YJ_FEED_CUSTODY = 1,
	YJ_FEED_ARREST = 2,
	YJ_FEED_VOLUNTARY_INTERVIEW = 3,
	YJ_FEED_OUTCOME = 4,
};
#define YJ_FEED_COUNT 5

enum yj_content_type {
	YJ_CT_NONE = 0,
	YJ_CT_JSON = 1,      /* application/json */
	YJ_CT_PROTOBUF = 2,  /* application/x-protobuf */
};

/* In precedence order: a lower value wins over a higher one. */
enum yj_reject_code {
	YJ_REJ_NONE = 0,
	YJ_REJ_PROTOCOL,
	YJ_REJ_TOO_LARGE,
	YJ_REJ_ENCODING,
	YJ_REJ_SYNTAX,
	YJ_REJ_SCHEMA,
	YJ_REJ_VALUE,
	YJ_REJ_OUT_OF_SCOPE,
	YJ_REJ_CONFLICT,
	YJ_REJ_FORBIDDEN,
};

struct yj_reject {
	enum yj_reject_code code;  /* YJ_REJ_NONE when accepted */
	char field[160];           /* dotted path, e.g. child.date_of_birth or offences.3.code; "" when not one field */
	char reason[256];          /* one sentence for the sender; never holds personal data */
};

struct yj_norm_opts {
	const struct yj_refdata *ref;  /* tables to check codes against; borrowed */
	int64_t now_us;                /* the clock (injectable for tests) */
	size_t max_bytes;              /* ingest.max_message_bytes */
	struct yj_arena *parse_arena;  /* where the JSON tree goes, when it should not
	                                * outlive the parse (NULL: the event's arena) */
	int always_prepass;            /* tests: run the JSON pre-pass also for a plain
	                                * payload (json_tree.h), which it never refuses,
	                                * and read every payload through the tree (no
	                                * fused reader): the reference path */
};

struct yj_norm_result {
	Yjlink__V1__Event *event;  /* arena-owned; NULL when refused */
	const char *source_id;     /* arena-owned; NULL when it could not be read (set also on most refusals) */
	struct yj_reject reject;   /* code YJ_REJ_NONE on success */
};

/* Feed by its wire name (custody, arrest, voluntary_interview, outcome); YJ_FEED_NONE if unknown. */
enum yj_feed yj_feed_from_name(const char *name, size_t len);
const char *yj_feed_name(enum yj_feed feed);
enum yj_content_type yj_content_type_from_name(const char *name, size_t len);
/* The wire name of ct; "" for YJ_CT_NONE. */
const char *yj_content_type_name(enum yj_content_type ct);
const char *yj_reject_code_name(enum yj_reject_code code);

/* Record a refusal in r unless r already holds one of higher precedence. */
void yj_reject_set(struct yj_reject *r, enum yj_reject_code code, const char *field, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* Normalise payload[0..len) for feed, sent as ct. The event, and everything
 * else allocated, goes into arena; the JSON tree into opts->parse_arena when
 * set (ingest keeps the event a whole batch, the tree only for the parse).
 * Returns 0 with res->event set, YJ_EINVAL with res->reject set (too_large
 * included), or YJ_ENOMEM. */
int yj_normalise(const struct yj_norm_opts *opts, enum yj_feed feed, enum yj_content_type ct,
		 const void *payload, size_t len, struct yj_arena *arena, struct yj_norm_result *res);

/* The child's identity across events: "<force>/<person_id>", written into
 * buf (at least 300 bytes). Returns the length. */
size_t yj_event_child_id(const Yjlink__V1__Event *ev, char *buf, size_t size);

/* The child's age in whole years on the feed's own date (interfaces.md §2:
 * custody.arrived_at, arrest.arrested_at, interview.at, outcome.offence_date
 * when given, else occurred_at, each in the offset it was written in), from
 * date_of_birth; without one, the apparent age, and *apparent (may be NULL)
 * is set to 1. -1 when neither is known. */
int yj_event_child_age(const Yjlink__V1__Event *ev, int *apparent);

/* The data-quality issue a stored event carries, as the label of
 * yjlink_data_quality_total and the digest's data_quality column
 * ("outcome_code_not_for_children": an outcome code the reference table
 * says cannot apply to a child), or NULL when none. Such an event is
 * stored all the same: it is flagged, not hidden (routing.md). */
const char *yj_event_data_quality(const Yjlink__V1__Event *ev, const struct yj_refdata *ref);

/* The feed an event's body belongs to. */
enum yj_feed yj_event_feed(const Yjlink__V1__Event *ev);

/* Format t as RFC 3339 in its own offset ("2026-11-21T23:14:00Z",
 * "2026-06-01T10:00:00+01:00"; fractions only when non-zero). buf >= 40 bytes. */
size_t yj_time_format(const Yjlink__V1__Time *t, char *buf, size_t size);

/* Parse RFC 3339 with a mandatory offset. Returns 0, or YJ_EINVAL. */
int yj_time_parse(const char *s, size_t len, int64_t *unix_us, int32_t *offset_minutes);

#endif
