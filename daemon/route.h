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
 * An event with a marker of holds.markers also gets a hold (db/holds.h),
 * and the officer in the case (else the duty recipient) is told it waits.
 * An immediate rule does not notify about an event older than its
 * max_age_s (the digests still get it); a notification without a
 * destination is escalated to the duty recipient at once; a custody record
 * that closes after its L&D service was told gets one
 * liaison_diversion_update.
 *
 * route.c decides; it never builds a key: the db/ modules own the tables.
 */
#ifndef YJ_ROUTE_H
#define YJ_ROUTE_H

#include <stddef.h>
#include <stdint.h>

#include "arena.h"
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

/* Rules counted one by one in yj_route_counts (by their index in the
 * config); any further rule counts in the totals only. */
#define YJ_ROUTE_RULES_COUNTED 64

struct yj_route_counts {
	unsigned outbox;      /* immediate notifications queued */
	unsigned unroutable;  /* immediate notifications without a destination */
	unsigned digest;      /* digest entries */
	unsigned held;        /* holds created */
	unsigned stale;       /* immediate notifications not made: the event was older than the rule's max_age_s */
	unsigned escalated;   /* notices queued for the duty recipient */
	unsigned ld_updates;  /* liaison_diversion_update notices queued */
	unsigned ld_superseded; /* L&D referrals not made: the record had closed already (a late message) */
	unsigned stale_by_rule[YJ_ROUTE_RULES_COUNTED]; /* stale, by rule index in the config */
};

/* 1 when an immediate rule r must not notify about ev at now_us: the event
 * occurred more than r->max_age_s before (routing.md "No stale notices"). */
int yj_route_stale(const struct yj_rule *r, const Yjlink__V1__Event *ev, int64_t now_us);

/* The markers of ev that hold its details (holds.markers) as a bit set of
 * enum yj_marker_bit; 0 when nothing holds it. */
unsigned yj_route_hold_markers(const struct yj_config *cfg, const Yjlink__V1__Event *ev);

/* Tell the duty recipient, at once, about job `about` (reason "unroutable",
 * "dead_letter" or "undelivered"; detail its last error or ""), inside txn:
 * a notification of kind "escalation" about the same event, under the duty
 * recipient's own allowlist. Nothing when no duty recipient is named, or
 * when `about` is the duty recipient's own (it is logged instead). Logs at
 * warning. Returns 0 or a store error. */
int yj_route_escalate(struct yj_txn *txn, const struct yj_config *cfg, const Yjlink__V1__Notification *about,
		      const char *reason, const char *detail, int64_t now_us);

/* A notice to the duty recipient that is about no one notification: a hold
 * (reason "hold_escalation", seq the event, detail the rules waiting) or a
 * feed (reason "feed_silent"/"feed_resumed", feed, at_us its last message).
 * *queued 1 when one was written (0: no duty recipient). */
int yj_route_duty_notice(struct yj_txn *txn, const struct yj_config *cfg, const char *reason, uint64_t seq,
			 const char *feed, int64_t at_us, const char *detail, int64_t now_us, int *queued);

/* The custody record of ev now: the status of its latest message (into
 * status), and when the child arrived (*detained_since_us). seq is ev's own
 * (0: not stored): that message is taken from ev, not read back. YJ_ENOENT
 * when ev is not a custody event or the record has no stored message. */
int yj_route_custody_now(struct yj_txn *txn, uint64_t seq, const Yjlink__V1__Event *ev, char *status, size_t size,
			 int64_t *detained_since_us);

/* What the store knew of the event as it wrote it (yj_route_event's known). */
#define YJ_ROUTE_FIRST_CONTACT 1u /* no earlier event for this child */
#define YJ_ROUTE_RECORD_ALONE 2u  /* the only stored message of its custody record */

/* What routing decides from an event, the config and the tables alone,
 * worked out ahead of the commit (on ingest's normaliser thread), so that
 * routing inside the write transaction, on the loop, does only what needs
 * the store: for each rule, whether it matches without and with first
 * contact (the one fact only the store knows), and whom it resolves to. */
struct yj_route_plan {
	const struct yj_config *cfg;   /* borrowed: the plan holds for this config and these tables only */
	const struct yj_refdata *ref;
	size_t n_rules;                /* cfg->n_rules */
	struct yj_route_facts facts;   /* first_contact 0 */
	unsigned held;                 /* yj_route_hold_markers() */
	const char **rcpt;             /* per rule: whom it resolves to; NULL when it applies neither way */
	unsigned char *match;          /* per rule: YJ_PLAN_* bits */
};
#define YJ_PLAN_MATCH 1u       /* matches an event that is not the child's first contact */
#define YJ_PLAN_MATCH_FIRST 2u /* matches one that is */

/* Work out ev's plan into *plan; its arrays and strings are allocated from
 * a, which owns them. Reads cfg and ref only: safe on another thread while
 * neither is swapped. 0, or YJ_ENOMEM. */
int yj_route_plan(const struct yj_config *cfg, const struct yj_refdata *ref, const Yjlink__V1__Event *ev,
		  struct yj_arena *a, struct yj_route_plan *plan);

/* Route the event just stored as seq, inside txn. known: YJ_ROUTE_* bits.
 * plan: ev's yj_route_plan, or NULL to work it out here. A plan is only
 * good for the config and tables it was made with: ingest flushes every
 * batch before a reload swaps them, which is what guarantees it (a plan
 * naming another config or rule count is not used either, as a guard, but
 * a new config may reuse a freed one's address). Adds to *counts. Returns
 * 0 or a store error. */
int yj_route_event(struct yj_txn *txn, const struct yj_config *cfg, const struct yj_refdata *ref, uint64_t seq,
		   const Yjlink__V1__Event *ev, const struct yj_route_plan *plan, unsigned known, int64_t now_us,
		   struct yj_route_counts *counts);

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
		    const char *rule, int64_t now_us, unsigned *queued, struct yj_route_counts *counts);

/* `yjlinkctl holds release SEQ`: release the hold (by: the name given,
 * actor: the control socket's caller) and send what was withheld (kind
 * hold_released) to every recipient that already had the event, except
 * where the event is stale under the rule that sent it (counted in counts,
 * which may be NULL).
 * YJ_ENOENT when seq is not held, YJ_EEXIST when already released. */
int yj_route_release(struct yj_txn *txn, const struct yj_config *cfg, const struct yj_refdata *ref, uint64_t seq,
		     const char *by, const char *actor, const char *reason, int64_t now_us, unsigned *queued,
		     struct yj_route_counts *counts);

/* 1 while event seq is held for the officer in the case (not released). */
int yj_route_is_held(struct yj_txn *txn, uint64_t seq);

/* Check the recipients' codes against the reference tables (LAs, suites,
 * forces), reporting to diag. (What needs no tables, such as a digest rule's
 * YJSs having digest_times, config.c checks.) */
void yj_route_check_config(const struct yj_config *cfg, const struct yj_refdata *ref, struct yj_diag *diag);

#endif
