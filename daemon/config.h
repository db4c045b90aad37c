/* config.h: yjlinkd's configuration (libconfig syntax).
 *
 * One declarative table in config.c ({type, dotted path, default, offset,
 * bounds, description}) drives parsing, defaults, checking, --set overrides
 * and the reference in README.md (`yjlinkd --config-reference`). Settings
 * not in the table are errors, reported as FILE:LINE like every other
 * problem, all of them in one pass.
 *
 * Whatever else declares settings (the adapters) is read the same way from
 * the tables of its struct yj_settings_owner (settings.h), handed to
 * yj_config_load(): that struct is all this module knows of its owners.
 *
 * Ownership: yj_config_load() returns a config the caller owns and frees
 * with yj_config_free(); every string in it belongs to it. A reload builds a
 * whole new config and swaps it in only when it loaded without error.
 */
#ifndef YJ_CONFIG_H
#define YJ_CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "diag.h"
#include "settings.h"
#include "strset.h"

struct yj_strlist {
	char **v;   /* owned strings */
	size_t n;
};

/* Who can be told (routing.md): a YJS, the children's services of one local
 * authority, a liaison and diversion service, another force. */
enum yj_rcpt_kind {
	YJ_RCPT_YJS = 0,
	YJ_RCPT_CHILDREN_SERVICES,
	YJ_RCPT_LIAISON_DIVERSION,
	YJ_RCPT_FORCE,
	YJ_RCPT_DUTY,               /* told what could not be delivered, holds waiting, quiet feeds (routing.md) */
	YJ_RCPT_OFFICER,            /* an officer in the case (or a team), reached through the officers table */
};

/* Weekly opening hours, local time: minutes from midnight per weekday
 * (0 = Monday). open == close means closed all day. */
struct yj_hours {
	int16_t open[7];
	int16_t close[7];
};

struct yj_recipient {
	char *id;                   /* "yjs:milton-keynes", "children_services:E06000042", ... */
	enum yj_rcpt_kind kind;
	char *name;                 /* display name */
	struct yj_strlist las;      /* yjs: local authorities it covers; children_services: its one LA */
	struct yj_strlist suites;   /* liaison_diversion: custody suites it covers */
	char *force;                /* force: its PFA code */
	int has_hours;              /* liaison_diversion: hours below apply */
	struct yj_hours hours;
	struct yj_strlist allow;    /* data sharing agreement: dotted field paths ("child.*" for a subtree) */
	char *legal_basis;          /* default legal basis of disclosures to it */
	char *transport;            /* "none" (no destination yet: notifications wait as unroutable), or
	                             * the transport of an output adapter ("email", "webhook", ...) */
	int output;                  /* index of its owner in the config's owners (main.c builds them in the
	                              * order of the adapter table); -1 for none */
	void *output_settings;       /* that owner's recipient settings struct (its recipient table), owned */
	struct yj_strlist digest_times; /* yjs: local "HH:MM" send times of the daily digest */
	char *file;                 /* config file and line it was declared at, for messages */
	int line;
	char *dsa_id;               /* data sharing agreement id, NULL for none (routing.md "Legal basis wording") */
	int32_t dsa_review;         /* its review date, days since 1970-01-01; INT32_MIN for none */
	int from_directory;         /* made from a row of children_services.csv / force_contacts.csv (file, line) */
};

enum yj_rule_mode {
	YJ_MODE_IMMEDIATE = 0,
	YJ_MODE_DIGEST,
};

/* Tri-state match: -1 any, 0 must be false, 1 must be true. */
struct yj_rule {
	char *id;                   /* rule id; also the notification kind */
	unsigned feeds;             /* bit (1 << yj_feed) per feed; 0 = every feed */
	struct yj_strlist custody_status; /* empty = any status (custody feed only when given) */
	int looked_after;           /* tri-state */
	int home_served;            /* tri-state: the child's home LA is served by a YJS of this deployment */
	int home_other_force;       /* tri-state: the home LA lies in another force area */
	int first_contact;          /* tri-state: first message ever seen for this child */
	int age_min, age_max;       /* inclusive; 0 and 99 = any */
	int *outcome_codes;         /* empty = any */
	size_t n_outcome_codes;
	struct yj_strlist markers;  /* each must be true on the event */
	char *recipient;            /* expression, e.g. "yjs:home" */
	enum yj_rule_mode mode;
	char *section;              /* digest section, "" = by feed */
	char *legal_basis;          /* overrides the recipient's */
	int64_t max_age_s;          /* immediate: an event older than this when routed goes to digests only; 0 = none */
	int64_t escalate_after_s;   /* immediate: undelivered this long, the duty recipient is told */
	int line;
};

/* An officer in the case, by the name feeds give in markers.officer_in_case. */
struct yj_officer {
	char *name;                 /* as the feed writes it, e.g. "DC 4411 Patel" */
	char *recipient;            /* id of a recipient (kind officer or duty) that reaches them */
};

/* A scheduled board pack: the report of the previous month for scope, sent
 * to recipient on day of each month at time (local). */
struct yj_board_pack {
	char *scope;                /* a yjs: recipient id, or "force" */
	char *recipient;            /* id of a configured recipient */
	int64_t day;                /* 1..28 */
	char *time;                 /* "HH:MM" local */
};

/* Feeds are numbered as enum yj_feed (normalise.h): 1..4. */
#define YJ_CONFIG_FEEDS 5

/* A top-level section of the config as read (overrides applied), by a
 * hash of its whole content: a reload says which sections changed. */
#define YJ_CONFIG_SECTIONS_MAX 32
struct yj_config_section_hash {
	char name[32];
	unsigned char hash[16];
};

struct yj_config {
	char *source;                   /* file it came from, or "yjlinkd.conf (embedded)" */
	unsigned char hash[32];         /* BLAKE2b-256 of the whole config as read (audited on reload) */
	struct yj_config_section_hash sections[YJ_CONFIG_SECTIONS_MAX];
	size_t n_sections;

	char *deployment_id;            /* notification id prefix, e.g. "tvp" */
	char *deployment_name;          /* shown in digests and status */
	char *deployment_force;         /* PFA code this deployment serves */

	char *store_path;               /* LMDB directory */
	int64_t store_map_size_mb;      /* initial map size */
	int64_t store_max_map_size_mb;  /* growth cap; at it ingest answers RETRY */

	char *ingest_endpoint;          /* YJL1 ROUTER bind */
	int64_t ingest_max_message_bytes;
	int64_t ingest_batch_max;       /* most requests in one group commit */
	int64_t ingest_quarantine_max_bytes; /* raw bytes kept per quarantined message */
	int64_t quarantine_max_bytes;   /* quota of the whole quarantine (entries' keys and values), bytes */
	int64_t quarantine_retention_days; /* entries older than this are erased; 0: at the next run */
	struct yj_strlist ingest_forces;/* forces an unauthenticated sender may send for */
	int ingest_insecure;            /* allow a non-loopback endpoint without CURVE */

	char *notify_endpoint;          /* YJN1 ROUTER bind */
	int notify_insecure;            /* allow a non-loopback notify endpoint without CURVE */
	char *control_endpoint;         /* yjlinkctl socket */
	char *metrics_endpoint;         /* host:port for /metrics and /healthz */
	int metrics_public;             /* allow a metrics endpoint that is not loopback */

	int64_t retention_event_days;
	int64_t retention_audit_days;

	char *reference_dir;            /* "" = the tables compiled into the binary */
	struct yj_strlist directory_children_services_allow; /* allowlist of recipients made from children_services.csv */
	struct yj_strlist directory_force_allow;             /* ... and from force_contacts.csv */

	int64_t custody_overnight_hours;/* detained this long between the two times counts as overnight */
	int64_t report_suppress_below; /* board reports: counts under this are suppressed (report.c) */
	char *custody_overnight_from;   /* "HH:MM" local */
	char *custody_overnight_to;     /* "HH:MM" local */

	int64_t delivery_max_age_s;     /* a transiently failing notification goes to the DLQ after this */
	int64_t delivery_backoff_min_ms;/* first retry delay (full jitter up to it) */
	int64_t delivery_backoff_max_ms;/* cap of the exponential backoff */
	int64_t delivery_escalate_after_s; /* default escalate_after_s of an immediate rule (lac/pace: 900) */

	char *deployment_duty;          /* id of the duty recipient (kind duty); "" = none */
	struct yj_strlist holds_markers;/* markers that hold an event's details for the officer in the case */
	int64_t holds_escalate_after_h; /* a hold still waiting this long goes to the duty recipient */
	struct yj_grouplist officers;   /* struct yj_officer items */
	struct yj_grouplist board_packs;/* struct yj_board_pack items */
	int64_t silence_alarm_h[YJ_CONFIG_FEEDS]; /* per feed (enum yj_feed): hours without a message before the
	                                 * duty recipient is told; 0 = never */

	struct yj_recipient *recipients;/* owned, n_recipients of them */
	size_t n_recipients;
	/* Lookups of the routing path, built last by yj_config_load (owned;
	 * NULL in a config made by hand, which is then searched in order): a
	 * deployment with the national directory has some 230 recipients, and
	 * every notification looked its recipient up by strcmp in turn. */
	size_t *recipients_by_id;       /* indexes into recipients, by id, then position */
	struct yj_la_yjs *yjs_by_la;    /* every (la, YJS recipient) pair, by la, then position */
	size_t n_yjs_by_la;
	/* The same two by hash (strset.h): id -> recipients_by_id position of
	 * its first, la -> yjs_by_la position of its first. Empty: bsearch. */
	struct yj_strset recipient_ids, yjs_las;
	struct yj_rule *rules;          /* owned, in config order */
	size_t n_rules;

	const struct yj_settings_owner *const *owners; /* what it was read against (borrowed) */
	size_t n_owners;
	void **owner_settings;          /* owned: owners[i]'s own settings struct, NULL when it declares none */

	char *audit_anchor_time;        /* "HH:MM" local: the daily anchor to the duty recipient; "" = never */
	char *log_level;                /* err|warning|notice|info|debug */
	int testing_clock_control;      /* allow `yjlinkctl clock` (tests only) */
	char *testing_clock_start;      /* with clock_control: the clock at start-up, RFC 3339; "" = real */
	char *testing_report_gate;      /* a file the report helper waits for (reportjob.c; tests only); "" = none */
	char *testing_digest_gate;      /* a file the digest helper waits for (digestjob.c; tests only); "" = none */
	char *testing_digest_stall;     /* a file whose absence stalls a digest helper on a lock (tests only); "" = none */
};

/* Load file (or the embedded default when file is NULL), apply each of the
 * n_sets "KEY=VALUE" overrides, then check everything. owners (NULL-
 * terminated, may be NULL for none) declare every setting besides the
 * core's (in yjlinkd: the conf of each adapter compiled in): their tables
 * are part of the config, and a recipient may name only the transport of
 * one of them. They must outlive the config. Every problem goes to diag as
 * FILE:LINE: message. Returns 0 and *out, YJ_ECONFIG, or YJ_ENOMEM. */
int yj_config_load(const char *file, const char *const *sets, size_t n_sets,
		   const struct yj_settings_owner *const *owners, struct yj_diag *diag, struct yj_config **out);

void yj_config_free(struct yj_config **cfg);

/* The recipient with this id, or NULL. */
const struct yj_recipient *yj_config_recipient(const struct yj_config *cfg, const char *id);

/* One local authority a YJS recipient covers. */
struct yj_la_yjs {
	const char *la;                 /* borrowed from the recipient's las */
	size_t rcpt;                    /* its index in recipients */
};

/* The first YJS recipient (in config order) covering local authority la,
 * or NULL. */
const struct yj_recipient *yj_config_yjs_for_la(const struct yj_config *cfg, const char *la);

/* The duty recipient (deployment.duty), or NULL when none is named. */
const struct yj_recipient *yj_config_duty(const struct yj_config *cfg);

/* The recipient id that reaches officer name (markers.officer_in_case), or
 * NULL when the officers table does not list the name. */
const char *yj_config_officer(const struct yj_config *cfg, const char *name);

/* The name of kind k ("yjs", "duty", ...). */
const char *yj_rcpt_kind_name(enum yj_rcpt_kind k);

/* Print every setting as Markdown (for README.md): the core's table, then
 * each owner's own (owners as for yj_config_load) and its recipient
 * settings. */
void yj_config_print_reference(FILE *out, const struct yj_settings_owner *const *owners);

/* Owner o's own settings struct in cfg; NULL when o declares none or is not
 * one of cfg's owners. */
const void *yj_config_settings(const struct yj_config *cfg, const struct yj_settings_owner *o);

/* The owner of the transport serving recipient r (cfg->owners[r->output]),
 * or NULL (transport none). */
const struct yj_settings_owner *yj_config_output(const struct yj_config *cfg, const struct yj_recipient *r);

/* Free the strings of l and empty it. */
void yj_strlist_free(struct yj_strlist *l);

/* The reference directory resolved against the config file's directory;
 * NULL when the embedded tables are meant. Caller frees. */
char *yj_config_reference_dir(const struct yj_config *cfg);

#endif
