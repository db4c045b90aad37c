/* digest.h: the YJS daily digest (interfaces.md §5), scheduled, gapless,
 * every day of the year.
 *
 * Schedule: each YJS has local send times (Europe/London). The next digest
 * is the first (local date, send time) whose instant is after the last
 * digest's; a time that does not exist on the spring-forward day is moved
 * an hour on by mktime, one that occurs twice in autumn is taken once. A
 * daemon that was down over a send time sends the missed digests at start,
 * oldest first, each with the window it should have had.
 *
 * Windows are over sequence numbers: a digest covers (the previous one's end
 * seq, the last seq stored at or before its send time]. The digest is
 * recorded as pending (id, window) before it is sent, and confirmed sent in
 * the transaction that advances the YJS's window and writes its audit
 * record, so a crash mid-send resends the same digest, never another.
 *
 * Ownership: the digest service borrows everything in yj_digest_deps; a
 * yj_digest_content owns its strings (yj_digest_content_free).
 */
#ifndef YJ_DIGEST_H
#define YJ_DIGEST_H

#include <cjson/cJSON.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "loop.h"
#include "refdata.h"
#include "store.h"
#include "yjlink.pb-c.h"

struct yj_digest_deps {
	struct yj_store *store;
	struct yj_loop *loop;
	const struct yj_config *const *cfg;
	const struct yj_refdata *const *ref;
	void *const *adapter_state;        /* state of yj_adapters[i] */
};

/* A built digest, ready to send. Every pointer owned. */
struct yj_digest_content {
	char *id;              /* stable digest id */
	char *subject;
	char *text;            /* text/plain */
	char *html;            /* text/html */
	char *csv;             /* the attachment */
	size_t csv_len;
	char *csv_name;        /* yjlink-digest-<yjs>-<YYYY-MM-DD>.csv */
	char *headers;         /* X-Yjlink-Digest-Id and X-Yjlink-Window lines, CRLF-terminated */
	uint64_t *seqs;        /* every event disclosed, ascending */
	size_t n_seqs;
	char **open;           /* custody records still open at send time */
	size_t n_open;
	unsigned children;     /* distinct children */
	unsigned events;       /* events in the window */
	cJSON *fields;         /* field paths the YJS's agreement let through */
};

void yj_digest_content_free(struct yj_digest_content *c);

/* Build the digest d for YJS yjs inside txn (read-only use). Returns 0,
 * YJ_ENOMEM or a store error. */
int yj_digest_build(struct yj_txn *txn, const struct yj_config *cfg, const struct yj_refdata *ref,
		    const struct yj_recipient *yjs, const Yjlink__V1__Digest *d, const struct yj_strlist *open_before,
		    struct yj_digest_content *out);

/* The first send instant of times (local "HH:MM") strictly after after_us. */
int64_t yj_digest_next_after(const struct yj_strlist *times, int64_t after_us);

struct yj_digest;

int yj_digest_start(const struct yj_digest_deps *deps, struct yj_digest **out);
void yj_digest_stop(struct yj_digest **dg);

/* Look for due digests now (also run by the service's own timer). */
void yj_digest_tick(struct yj_digest *dg);

/* `yjlinkctl digest preview YJS [--date D]`: the next digest as it stands
 * now, or the one sent on local date D (YYYY-MM-DD). Fills *out. */
int yj_digest_preview(struct yj_digest *dg, const char *yjs, const char *date, struct yj_digest_content *out,
		      char *err, size_t errlen);

/* `yjlinkctl digest send YJS --date D`: send again the digest(s) sent on
 * local date D, with the same id; audited with actor. Returns how many were
 * queued, or <0 with err set. */
int yj_digest_resend(struct yj_digest *dg, const char *yjs, const char *date, const char *actor, char *err,
		     size_t errlen);

/* The last event seq stored at or before t_us (0 if none): a binary search,
 * since stored_at grows with seq. */
uint64_t yj_digest_seq_at(struct yj_txn *txn, int64_t t_us);

/* Events stored since local midnight. */
int yj_digest_events_today(struct yj_store *store, uint64_t *count);

/* The newest digest sent to any YJS, RFC 3339, or "none yet". */
int yj_digest_last_sent(struct yj_digest *dg, char *buf, size_t size);

/* Digests sent since start, and the last one per YJS (for status). */
cJSON *yj_digest_status(struct yj_digest *dg);

#endif
