/* digest_int.h: what the digest's own files share (digest.c plans,
 * digest_build.c gathers and writes the machine renderings, digest_people.c
 * the renderings a person reads). Not for any other module.
 *
 * The build is streaming: one pass over the window keeps only a compact
 * index (a row is a seq, a child number, a custody record number, a section
 * and a flag; a child and a custody record a few strings and numbers), and
 * every rendering reads each record again from the read transaction when it
 * writes it, one at a time. No rendering holds more than one decoded record
 * (plus, for a person's view, the child's newest one) at once, and each is
 * written to a stream as it is made: the caller decides where it goes (an
 * email's base64, a control reply, memory).
 */
#ifndef YJ_DIGEST_INT_H
#define YJ_DIGEST_INT_H

#include <stdint.h>
#include <stdio.h>
#include <time.h>

#include "config.h"
#include "refdata.h"
#include "store.h"
#include "yjlink.pb-c.h"

enum yj_dg_section {
	YJ_DG_CUSTODY,
	YJ_DG_ARREST,
	YJ_DG_INTERVIEW,
	YJ_DG_OUTCOME,
	YJ_DG_OTHER_AREA,
	YJ_DG_STILL,
	YJ_DG_NEW,
	YJ_DG_NSECTIONS
};

extern const char *const yj_dg_section_names[YJ_DG_NSECTIONS];

/* What a child's entry says about them (bits of yj_dg_child.flags). */
enum {
	YJ_DG_F_STILL = 1 << 0,       /* a custody record still open at the window's end */
	YJ_DG_F_REMANDED = 1 << 1,    /* a record's latest status is charged_remanded */
	YJ_DG_F_LAC = 1 << 2,         /* looked after, by their newest message */
	YJ_DG_F_OVERNIGHT = 1 << 3,   /* held overnight (custody.overnight_*) */
	YJ_DG_F_NEW = 1 << 4,         /* first contact in this window */
	YJ_DG_F_OTHER_AREA = 1 << 5,  /* from an area no YJS here serves, held in this YJS's suites */
	YJ_DG_F_HOME_ROW = 1 << 6,    /* has a row of a home section (not other_area, not only still) */
	YJ_DG_F_LAC_KNOWN = 1 << 7,   /* the newest message says looked_after at all */
	YJ_DG_F_COURT_ORDER = 1 << 8, /* markers, on a row not withheld */
	YJ_DG_F_MAPPA = 1 << 9,
	YJ_DG_F_SERIOUS = 1 << 10,
	YJ_DG_F_WITHHELD = 1 << 11,   /* a row with details withheld */
	YJ_DG_F_HOME_HERE = 1 << 12,  /* the newest message's home LA is one of this YJS's */
};

/* One row of the digest: an event in one section. */
struct yj_dg_row {
	uint64_t seq;
	uint32_t child;      /* index into b->children */
	int32_t custody;     /* index into b->custody; -1 for other feeds */
	uint8_t section;     /* enum yj_dg_section */
	uint8_t withheld;    /* under a live hold when built */
};

/* One custody record seen by the digest, as it stands at the window's end. */
struct yj_dg_custody {
	char *key;           /* owned: "<force>/<record_id>" */
	char *status_now;    /* owned: latest status by the window's end; NULL when none */
	uint64_t latest_seq; /* its latest message by the window's end (0 none) */
	int64_t arrived_us;  /* arrived_at of the latest message (0 unknown) */
	int64_t until_us;    /* release (status_at of a status not detained), or the send time */
	int overnight;
	int open;            /* latest status detained */
	uint64_t first_row_seq; /* lowest seq among this digest's rows of it (groups a child's entry) */
};

struct yj_dg_child {
	char *id;            /* owned: "<force>/<person_id>" */
	unsigned flags;      /* YJ_DG_F_* */
	uint64_t first_seq;  /* lowest seq among its rows */
	uint64_t newest_seq; /* highest seq among its rows: its details come from that message */
	uint8_t rank;        /* what to act on first: 0 still in custody .. 4 new, 5 the rest */
	uint8_t group;       /* 0 act on first, 1 the rest, 2 other areas */
};

/* When each feed last delivered (any force, any recipient): feed health. */
struct yj_dg_feed {
	const char *feed;    /* static */
	const char *title;   /* static: "custody", "arrest", ... as a person says it */
	uint64_t seq;        /* 0 when none found */
	int64_t stored_us;
};

struct yj_dg_build {
	struct yj_txn *txn;
	const struct yj_config *cfg;
	const struct yj_refdata *ref;
	const struct yj_recipient *yjs;
	const Yjlink__V1__Digest *d;
	struct yj_dg_row *rows;        /* owned */
	size_t n_rows, cap_rows;
	struct yj_dg_child *children;  /* owned */
	size_t n_children, cap_children;
	struct yj_dg_custody *custody; /* owned */
	size_t n_custody, cap_custody;
	uint32_t *child_ix;            /* owned: hash of child ids -> index + 1 */
	size_t child_ix_cap;
	uint32_t *custody_ix;          /* owned: hash of custody keys -> index + 1 */
	size_t custody_ix_cap;
	uint64_t *seqs;                /* owned: the window's entries, ascending */
	unsigned *flags;               /* owned: per entry: 1 other_area, 2 first contact, 4 primary rule */
	size_t n_seqs, cap_seqs;
	char **open;                   /* owned: custody keys still open at the window's end, sorted */
	size_t n_open;
	struct yj_dg_feed feeds[4];    /* custody, arrest, voluntary_interview, outcome */
	int feeds_complete;            /* the walk reached the first event stored */
	int64_t feeds_since_us;        /* else: stored time of the oldest event it looked at */
	/* rendering */
	char date[16];                 /* local YYYY-MM-DD of the send time */
	char start[32], end[32];       /* the window, RFC 3339 UTC (machine renderings and headers) */
	int holiday;
	/* The audit chain's head when this rendering was built (db/audit.h),
	 * the anchor every rendering carries (docs/security.md). */
	uint64_t audit_number;
	char audit_hash[65];
};

/* --- shared helpers (digest_build.c) --- */
void yj_dg_local(int64_t us, struct tm *tm);
int64_t yj_dg_instant(int y, int m, int d, int hh, int mm);
void yj_dg_fmt_utc(int64_t us, char *buf, size_t size);
void yj_dg_fmt_local(int64_t us, const char *fmt, char *buf, size_t size);
int yj_dg_is_released(const char *status);
void yj_dg_custody_key(const Yjlink__V1__Event *ev, char *buf, size_t size);
/* The latest record of custody key stored by seq limit; caller frees. */
Yjlink__V1__Record *yj_dg_latest_custody_at(struct yj_txn *txn, const char *key, uint64_t limit);
/* DSA and hold: may field path of a row (withheld or not) be shown to this YJS? */
int yj_dg_shown(const struct yj_dg_build *b, const char *path, int withheld);

/* --- the renderings a person reads (digest_people.c): text/plain and
 * text/html written side by side; ft or fh may be NULL. Returns 0 or
 * YJ_ENOMEM. Sorts nothing of b but its own index. */
int yj_dg_render_people(struct yj_dg_build *b, FILE *ft, FILE *fh);

#endif
