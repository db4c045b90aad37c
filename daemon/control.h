/* control.h: the operator socket yjlinkctl talks to (interfaces.md §6).
 *
 * Protocol (internal between yjlinkctl and yjlinkd, documented in
 * docs/control.md): a DEALER sends `YJC1`, a JSON object
 * {"cmd": "...", "args": {...}}; the daemon answers `YJC1`, an exit code
 * ("0" done, "1" refused or failed, "2" usage), a JSON object.
 * The ipc socket file is made mode 0660; the caller's uid is read from the
 * socket's peer credentials and recorded with every command that shows
 * personal data.
 *
 * Ownership: the control server borrows everything in yj_control_deps.
 */
#ifndef YJ_CONTROL_H
#define YJ_CONTROL_H

#include <stdint.h>

#include "config.h"
#include "digest.h"
#include "ingest.h"
#include "loop.h"
#include "outbox.h"
#include "refdata.h"
#include "store.h"

struct yj_control_deps {
	struct yj_store *store;
	struct yj_ingest *ingest;
	struct yj_loop *loop;
	void *zmq_ctx;
	const struct yj_config *const *cfg;   /* the config in force (changes on reload) */
	int64_t started_us;                   /* wall clock at start */
	int64_t started_ms;                   /* monotonic clock at start, for uptime */
	const char *const *reload_state;      /* "" or why the last reload was refused */
	int (*reload)(void *arg);             /* `yjlinkctl reload`: same as SIGHUP */
	void *reload_arg;
	struct yj_outbox *outbox;             /* delivery state */
	struct yj_digest *digest;             /* daily digests */
	const struct yj_refdata *const *ref;  /* the tables in force */
};

struct yj_control;

int yj_control_start(const struct yj_control_deps *deps, struct yj_control **out);
void yj_control_stop(struct yj_control **ctl);

#endif
