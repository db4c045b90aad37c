/* practice.h: the practice rules that run on a clock (routing.md "Practice
 * rules"), beside the flow: nothing here decides who gets an event (route.h
 * does); it makes sure a human hears when the flow fails.
 *
 * Every few seconds, in one write transaction:
 *  - an outbox job undelivered for longer than its rule's escalate_after_s
 *    (counted from its L&D opening when deferred), and any unroutable job
 *    not yet escalated, is escalated to the duty recipient, once
 *    (yj_route_escalate: the job is marked, so a restart does not repeat it);
 *  - a hold still waiting after holds.escalate_after_h goes to the duty
 *    recipient, once;
 *  - a feed that sent nothing for ingest.silence_alarm_h.<feed> is told to
 *    the duty recipient once, and again when it resumes (the state is kept
 *    in the store, so a restart neither repeats nor forgets it).
 * And it keeps the counters the metrics and status show: stale notices by
 * rule, escalations by reason, superseded L&D referrals, L&D updates.
 *
 * Ownership: borrows the core; owns its counters.
 */
#ifndef YJ_PRACTICE_H
#define YJ_PRACTICE_H

#include <cjson/cJSON.h>
#include <stdint.h>

#include "prom.h"
#include "route.h"

struct yj_core;
struct yj_practice;

int yj_practice_start(struct yj_core *core, struct yj_practice **out);
void yj_practice_stop(struct yj_practice **p);

/* What a durable batch or a replay routed (stale by rule of cfg, escalations,
 * L&D updates). Safe on a NULL p. */
void yj_practice_add_routed(struct yj_practice *p, const struct yj_config *cfg, const struct yj_route_counts *c);

/* Counters kept elsewhere that belong with these. */
enum yj_practice_counter {
	YJ_PRACTICE_SUPERSEDED = 0, /* L&D referrals not sent at opening: the record had closed */
	YJ_PRACTICE_DEAD_ESCALATED, /* escalations of dead-lettered jobs */
	YJ_PRACTICE_COUNTERS,
};
void yj_practice_count(struct yj_practice *p, enum yj_practice_counter c, uint64_t n);

/* Run the scan now (tests move the clock, then ask). Returns 0 or an error. */
int yj_practice_run_now(struct yj_practice *p);

/* For `yjlinkctl status`: the duty recipient, feeds (last message, silent or
 * not), counters. Caller frees. */
cJSON *yj_practice_describe(struct yj_practice *p);

/* The metric families: yjlink_stale_total{rule}, yjlink_escalations_total{reason},
 * yjlink_ld_superseded_total, yjlink_ld_updates_total, yjlink_feed_silent{feed}. */
void yj_practice_prom(struct yj_practice *p, struct yj_prom *prom);

/* For STATUS=: escalations since start and feeds silent now. */
void yj_practice_summary(const struct yj_practice *p, uint64_t *escalated, unsigned *silent_feeds);

#endif
