/* digest.h: the YJS daily digest (interfaces.md §5): planned here, built
 * here, delivered by the one outbox like any other job.
 *
 * Schedule: each YJS has local send times (Europe/London). The next digest
 * is the first (local date, send time) whose instant is after the last
 * planned one's; a time that does not exist on the spring-forward day is
 * moved an hour on by mktime, one that occurs twice in autumn is taken once.
 * A daemon that was down over send times plans the missed digests at start,
 * oldest first, each with the window it should have had.
 *
 * Windows are over sequence numbers: a digest covers (the previous one's end
 * seq, the last seq stored at or before its send time]. Planning writes, in
 * one transaction, the digest job into the outbox (db/notes.h), its entry in
 * the digest log and the YJS's advanced state: the job is the pending
 * record. The outbox delivers it, retries it, or dead-letters it; the
 * window is never planned twice, so a failed digest does not hold up the
 * next day's. A crash before delivery resends the same job: same id, same
 * window, same rows. yj_digest_delivered() confirms it in the outbox's
 * completion transaction.
 *
 * Ownership: the planner borrows the core; a yj_digest_content owns its
 * strings (yj_digest_content_free); a yj_digest_view is its opener's
 * (yj_digest_close) and borrows the transaction, config, reference data,
 * recipient and digest it was opened with.
 */
#ifndef YJ_DIGEST_H
#define YJ_DIGEST_H

#include <cjson/cJSON.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "core.h"
#include "refdata.h"
#include "store.h"
#include "yjlink.pb-c.h"

/* The renderings a digest can be built in; a transport asks only for what it
 * sends (each costs about the digest's size). */
enum yj_digest_part {
	YJ_DIGEST_TEXT = 1,    /* text/plain, as a person reads it */
	YJ_DIGEST_HTML = 2,    /* text/html */
	YJ_DIGEST_CSV = 4,     /* the CSV of interfaces.md §5 */
	YJ_DIGEST_JSON = 8,    /* the digest object of interfaces.md §3 (webhook body, YJN1 note) */
	YJ_DIGEST_ALL = 15,
};

/* A built digest, as data. Every pointer owned; a rendering not asked for is NULL. */
struct yj_digest_content {
	char *id;              /* stable digest id */
	char *json;            /* {"digest_id", "recipient", "date", "window", "summary", "rows"} (interfaces.md §3) */
	size_t json_len;
	char *text;            /* text/plain, as a person reads it */
	char *html;            /* text/html */
	char *csv;             /* the CSV of §5 */
	size_t csv_len;
	char *csv_name;        /* yjlink-digest-<yjs>-<YYYY-MM-DD>.csv */
	char date[16];         /* local YYYY-MM-DD of the send time */
	char window_from[32];  /* RFC 3339 UTC */
	char window_to[32];
	uint64_t *seqs;        /* every event disclosed, ascending */
	size_t n_seqs;
	char **open;           /* custody records still open at the window's end */
	size_t n_open;
	unsigned children;     /* distinct children */
	unsigned events;       /* events in the window */
	cJSON *fields;         /* field paths the YJS's agreement let through */
};

void yj_digest_content_free(struct yj_digest_content *c);

/* A deep copy of d (the caller's: yjlink__v1__digest__free_unpacked), NULL
 * when out of memory. */
Yjlink__V1__Digest *yj_digest_copy(const Yjlink__V1__Digest *d);

/* Build digest d for YJS yjs inside txn (read-only use): d's window, with
 * d->open_before as the records open before it, in the renderings of parts
 * (enum yj_digest_part). Streaming: a compact index of the window, then each
 * rendering re-reads the records from txn one at a time (digest_int.h), so
 * only the renderings grow with the window. Returns 0, YJ_ENOMEM or a store
 * error. */
int yj_digest_build(struct yj_txn *txn, const struct yj_config *cfg, const struct yj_refdata *ref,
		    const struct yj_recipient *yjs, const Yjlink__V1__Digest *d, unsigned parts,
		    struct yj_digest_content *out);

/* A digest opened for rendering: its window gathered into the compact
 * index (digest_int.h) in a read transaction, each rendering then written
 * on demand, streaming, re-reading its records from that transaction, so a
 * caller holds only what its transport sends (an email, a control reply) and
 * never the renderings as well. Valid while its transaction is. */
struct yj_digest_view;

/* Open digest d as yj_digest_build() would build it: fills out with
 * everything but the renderings (all NULL). Returns 0, YJ_ENOMEM or a store
 * error; *view is NULL on failure. */
int yj_digest_open(struct yj_txn *txn, const struct yj_config *cfg, const struct yj_refdata *ref,
		   const struct yj_recipient *yjs, const Yjlink__V1__Digest *d, struct yj_digest_view **view,
		   struct yj_digest_content *out);
/* Write one rendering (one bit of enum yj_digest_part) of v to f, byte for
 * byte what yj_digest_build() gives. Returns 0, YJ_EINVAL or YJ_ENOMEM. */
int yj_digest_write(struct yj_digest_view *v, unsigned part, FILE *f);
/* The renderings of parts, in memory, into out (as yj_digest_build). */
int yj_digest_render(struct yj_digest_view *v, unsigned parts, struct yj_digest_content *out);
void yj_digest_close(struct yj_digest_view **v);

/* The outbox's confirmation of digest job n (in its completion transaction):
 * the digest log and the YJS's state say it was delivered. */
int yj_digest_delivered(struct yj_txn *txn, const Yjlink__V1__Notification *n, const struct yj_digest_content *c,
			int64_t now_us);

/* The first send instant of times (local "HH:MM") strictly after after_us. */
int64_t yj_digest_next_after(const struct yj_strlist *times, int64_t after_us);

struct yj_digest;

int yj_digest_start(struct yj_core *core, struct yj_digest **out);
void yj_digest_stop(struct yj_digest **dg);

/* Plan every digest now due (also run by the planner's own timer). Returns
 * how many were queued (the caller kicks the outbox), or <0. */
int yj_digest_tick(struct yj_digest *dg);

/* `yjlinkctl digest preview YJS [--date D]`: the next digest as it stands
 * now, or the last one planned for local date D (YYYY-MM-DD). Fills *out. */
int yj_digest_preview(struct yj_digest *dg, const char *yjs, const char *date, unsigned parts,
		      struct yj_digest_content *out, char *err, size_t errlen);

/* The same preview, opened and handed to fn inside its read transaction
 * (to write the renderings straight to where they go); *out as
 * yj_digest_open fills it. fn's error ends the preview with it. */
typedef int (*yj_digest_view_fn)(void *arg, struct yj_digest_view *v, const struct yj_digest_content *meta);
int yj_digest_preview_view(struct yj_digest *dg, const char *yjs, const char *date, yj_digest_view_fn fn, void *arg,
			   struct yj_digest_content *out, char *err, size_t errlen);

/* `yjlinkctl digest send YJS --date D`: queue again the digest(s) planned
 * for local date D, with the same id; audited with actor on delivery.
 * Returns how many were queued, or <0 with err set. */
int yj_digest_resend(struct yj_digest *dg, const char *yjs, const char *date, const char *actor, char *err,
		     size_t errlen);

/* Events stored since local midnight. */
int yj_digest_events_today(struct yj_store *store, uint64_t *count);

/* The newest digest delivered to any YJS, RFC 3339, or "none yet". */
int yj_digest_last_sent(struct yj_digest *dg, char *buf, size_t size);

/* Per YJS: last digest delivered, next planned, digests sent (for status). */
cJSON *yj_digest_status(struct yj_digest *dg);

#endif
