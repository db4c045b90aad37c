/* route.h: who is told about a stored event, under which rule (routing.md).
 *
 * yj_route_event() runs inside the ingest write transaction, right after the
 * event is stored, so an event and the notifications routed from it are
 * committed together or not at all (transactional outbox). Each matching
 * rule resolves its recipient expression to a recipient id; then
 *  - mode digest: an entry for that YJS's next digest (db/digests.h);
 *  - mode immediate, recipient with a destination: a job in the outbox
 *    (db/notes.h), not before the next opening when it is an L&D service
 *    outside its hours;
 *  - immediate, recipient not configured or with transport none: a job in
 *    the unroutable queue, never silently dropped.
 * An event marked live_investigation also gets a hold (db/holds.h).
 *
 * route.c decides; it never builds a key: the db/ modules own the tables.
 */
#ifndef YJ_ROUTE_H
#define YJ_ROUTE_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "normalise.h"
#include "refdata.h"
#include "store.h"
#include "yjlink.pb-c.h"

enum yj_marker_bit {
	YJ_MARK_LIVE_INVESTIGATION = 1,
	YJ_MARK_SERIOUS_OFFENCE = 2,
	YJ_MARK_MAPPA = 4,
	YJ_MARK_COURT_ORDER = 8,
};

/* What rules can match on, derived once per event. */
struct yj_route_facts {
	enum yj_feed feed;
	const char *custody_status;  /* NULL unless custody */
	int looked_after;
	int home_served;             /* a YJS of this deployment covers the home LA */
	int home_other_force;        /* the home LA is known and lies in another force area */
	int first_contact;           /* no earlier event for this child */
	int age;                     /* on the event's date; -1 unknown */
	int has_outcome_code;
	int outcome_code;
	unsigned markers;            /* enum yj_marker_bit */
};

void yj_route_facts(const struct yj_config *cfg, const struct yj_refdata *ref, const Yjlink__V1__Event *ev,
		    int first_contact, struct yj_route_facts *out);

/* 1 when rule r applies to an event with facts f. */
int yj_rule_matches(const struct yj_rule *r, const struct yj_route_facts *f);

/* Resolve a recipient expression for ev into out (a recipient id such as
 * "children_services:E09000033"). Returns 1 when it names somebody, 0 when
 * the rule does not apply to this event (e.g. yjs:home for a home this
 * deployment does not serve). An expression naming somebody with no
 * configured recipient still resolves: the notification is then unroutable. */
int yj_route_resolve(const struct yj_config *cfg, const struct yj_refdata *ref, const char *expr,
		     const Yjlink__V1__Event *ev, char *out, size_t size);

/* The YJS recipient covering local authority la, or NULL. */
const struct yj_recipient *yj_route_yjs_for_la(const struct yj_config *cfg, const char *la);

/* L&D hours: 1 when now_us falls in an opening period of h (local time);
 * else *next_open_us is the start of the next one (INT64_MAX if never). */
int yj_hours_open(const struct yj_hours *h, int64_t now_us, int64_t *next_open_us);

/* Field paths withheld while an event is held (live investigation). */
int yj_route_withheld(const char *path);

/* Does recipient r's data sharing agreement allow path (event_json's
 * vocabulary)? An object path is allowed when anything inside it is. */
int yj_route_allowed(const struct yj_recipient *r, const char *path);

struct yj_route_counts {
	unsigned outbox;      /* immediate notifications queued */
	unsigned unroutable;  /* immediate notifications without a destination */
	unsigned digest;      /* digest entries */
	unsigned held;        /* holds created */
};

/* Route the event just stored as seq, inside txn. first_contact as above.
 * Adds to *counts. Returns 0 or a store error. */
int yj_route_event(struct yj_txn *txn, const struct yj_config *cfg, const struct yj_refdata *ref, uint64_t seq,
		   const Yjlink__V1__Event *ev, int first_contact, int64_t now_us, struct yj_route_counts *counts);

/* When a notification to recipient r may go, made at now_us: *not_before_us
 * 0 (at once) or the next opening of an L&D service outside its hours (then
 * *out_of_hours 1). The one place opening hours are applied: first routing,
 * replay, hold release and a dead letter's retry all come here. */
void yj_route_when(const struct yj_recipient *r, int64_t now_us, int64_t *not_before_us, int *out_of_hours);

/* Queue one notification about event seq for recipient (an id, configured
 * or not), taking the next notification number: into the outbox at the time
 * yj_route_when() gives, or into the unroutable queue when the recipient has
 * no destination. *unroutable says which. Used by routing, hold release and
 * replay alike. */
int yj_route_notify(struct yj_txn *txn, const struct yj_config *cfg, const char *recipient, const char *rule,
		    const char *kind, uint64_t seq, const char *legal_basis, int64_t now_us, int *unroutable);

/* `yjlinkctl replay --since T [--rule R]`: every immediate rule (or only R)
 * again for each event that occurred since since_us, as first routing would
 * route it now (new notifications, new ids). *queued counts them. */
int yj_route_replay(struct yj_txn *txn, const struct yj_config *cfg, const struct yj_refdata *ref, int64_t since_us,
		    const char *rule, int64_t now_us, unsigned *queued);

/* `yjlinkctl holds release SEQ`: release the hold and send what was withheld
 * (kind hold_released) to every recipient that already had the event.
 * YJ_ENOENT when seq is not held, YJ_EEXIST when already released. */
int yj_route_release(struct yj_txn *txn, const struct yj_config *cfg, uint64_t seq, const char *by, const char *reason,
		     int64_t now_us, unsigned *queued);

/* 1 while event seq is held for the officer in the case (not released). */
int yj_route_is_held(struct yj_txn *txn, uint64_t seq);

/* Check the recipients' codes against the reference tables (LAs, suites,
 * forces), reporting to diag. (What needs no tables, such as a digest rule's
 * YJSs having digest_times, config.c checks.) */
void yj_route_check_config(const struct yj_config *cfg, const struct yj_refdata *ref, struct yj_diag *diag);

#endif
