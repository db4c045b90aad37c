/* core.h: the parts of yjlinkd, in one struct handed to every module (the
 * visible wiring). main.c builds it, in the order the flow of a message
 * needs (store, loop, ingest, outputs, outbox, digests, control), and tears
 * it down in reverse.
 *
 * The config in force reaches every module one way: through core->cfg and
 * core->ref, read at the moment of use (never cached across loop
 * iterations). A reload builds a whole new config and reference tables and
 * swaps both pointers between two iterations; the old ones are freed only
 * after every module has been told (yj_core_reloaded in main.c).
 *
 * Ownership: main.c owns the struct and everything in it; modules borrow it
 * from their start to their stop.
 */
#ifndef YJ_CORE_H
#define YJ_CORE_H

#include <stddef.h>
#include <stdint.h>

struct yj_adapter;
struct yj_config;
struct yj_refdata;
struct yj_store;
struct yj_loop;
struct yj_curlm;
struct yj_ingest;
struct yj_outbox;
struct yj_digest;
struct yj_control;
struct yj_metrics;
struct yj_zap;

struct yj_core {
	const struct yj_config *cfg;         /* the config in force */
	const struct yj_refdata *ref;        /* the reference tables in force */
	struct yj_store *store;              /* the LMDB store: one writer, this loop */
	struct yj_loop *loop;                /* the one event loop */
	void *zmq_ctx;                       /* the one ZeroMQ context */
	struct yj_zap *zap;                  /* the ZAP handler (CURVE keys), bound before any adapter starts */
	struct yj_curlm *curlm;              /* libcurl multi driven by the loop */
	struct yj_ingest *ingest;            /* inputs -> normalise -> store -> route (group commit) */
	struct yj_outbox *outbox;            /* the one scheduler of every delivery */
	struct yj_digest *digest;            /* plans each YJS's daily digest into the outbox */
	struct yj_control *control;          /* the yjlinkctl socket */
	struct yj_metrics *metrics;          /* /metrics and /healthz, NULL when off */
	struct yj_retention *retention;      /* erases events past retention.event_days */
	struct yj_practice *practice;        /* escalations, quiet feeds, practice counters (practice.h) */
	struct yj_boardpack *boardpack;      /* the monthly board packs (boardpack.h) */
	struct yj_reportjobs *reports;       /* board reports built in helper processes (reportjob.h) */
	const struct yj_adapter *const *adapters; /* the adapter registry, NULL-terminated */
	void **adapter_state;                /* adapters[i]'s state, NULL when it is off */
	size_t n_adapters;
	int64_t started_us;                  /* wall clock at start */
	int64_t started_ms;                  /* monotonic clock at start (uptime) */
	const char *reload_state;            /* "" or why the last reload was refused */
	int (*reload)(struct yj_core *core, const char *actor); /* `yjlinkctl reload` ("uid:N") and SIGHUP: audited */
};

#endif
