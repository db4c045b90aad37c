/* digestjob.h: a digest job's message (digest.h) built and rendered in a
 * helper process (helper.h), for the outbox to deliver.
 *
 * Why: a digest is built over its whole window before anything of it goes
 * (about 0.4 s for 5,000 events, seconds under a sanitizer or a busy
 * machine, and a catch-up after downtime plans a day's worth per YJS). On
 * the loop that time stalled ingest replies, deliveries and the watchdog:
 * docs/blocking.md "One digest's build". In a helper the loop only forks,
 * and reads the answer back.
 *
 * Where the renderings go: into an unlinked file in the store's directory
 * (O_TMPFILE; a memfd where the file system has none), one after another,
 * never through the daemon's memory as a whole: the outbox hands a
 * streaming transport (email) yj_digest_built_write(), which copies a part
 * in 64 KiB pieces into what it sends, and reads into memory only the parts
 * a transport takes as a string (the JSON of a webhook or YJN1 note). The
 * helper writes back over its pipe only the message's facts: its id, dates,
 * the seqs disclosed and the fields let through (for the audit), the counts.
 *
 * Ownership: yj_digestjobs_new() returns the set its caller owns;
 * yj_digestjobs_destroy() kills every helper still running and calls its
 * callback with rc YJ_ESHUTDOWN. The yj_digest_built handed to a callback
 * is borrowed for the call (its file is closed after it returns); a
 * callback keeps meta's pointers by taking them (setting them NULL).
 */
#ifndef YJ_DIGESTJOB_H
#define YJ_DIGESTJOB_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "digest.h"

#define YJ_DIGESTJOB_MAX 2          /* helpers at once: the machine's two cores */
#define YJ_DIGESTJOB_LIMIT_MS 300000

struct yj_core;
struct yj_digestjobs;

/* A digest built by a helper. */
struct yj_digest_built {
	int rc;                          /* 0, or why there is no message (err says more) */
	char err[200];
	/* Everything yj_digest_open() fills but the renderings (all NULL):
	 * id, csv_name, date, window, seqs, fields, children, events. */
	struct yj_digest_content meta;
	unsigned parts;                  /* the renderings in fd (enum yj_digest_part) */
	int fd;                          /* the renderings' file, -1 when none */
	uint64_t off[4], len[4];         /* each part's place in fd, by bit index */
};

typedef void (*yj_digestjob_done_fn)(void *arg, struct yj_digest_built *b);

int yj_digestjobs_new(struct yj_core *core, struct yj_digestjobs **out);
void yj_digestjobs_destroy(struct yj_digestjobs **jobs);

/* Build digest d of recipient rcpt_id in a helper, rendered as parts; done
 * is called on the loop when it is built, failed or cancelled (never from
 * inside this call). d and rcpt_id are copied: the caller's may go at
 * once. YJ_EAGAIN when YJ_DIGESTJOB_MAX
 * run already; YJ_EIO when no helper or file can be had. */
int yj_digestjob_start(struct yj_digestjobs *jobs, const char *rcpt_id, const Yjlink__V1__Digest *d,
		       unsigned parts, yj_digestjob_done_fn done, void *arg);

/* Helpers under way. */
size_t yj_digestjobs_running(const struct yj_digestjobs *jobs);

/* Copy rendering part (one bit of enum yj_digest_part) of b to f, as
 * yj_digest_write() wrote it. 0, YJ_EINVAL (a part not built), YJ_EIO. */
int yj_digest_built_write(const struct yj_digest_built *b, unsigned part, FILE *f);

/* Rendering part of b in memory, NUL-terminated, into *out (the caller's,
 * free()) and *len. 0, YJ_EINVAL, YJ_ENOMEM or YJ_EIO. */
int yj_digest_built_read(const struct yj_digest_built *b, unsigned part, char **out, size_t *len);

#endif
