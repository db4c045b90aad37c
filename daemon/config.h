/* config.h: yjlinkd's configuration (libconfig syntax).
 *
 * One declarative table in config.c ({type, dotted path, default, offset,
 * bounds, description}) drives parsing, defaults, checking, --set overrides
 * and the reference in README.md (`yjlinkd --config-reference`). Settings
 * not in the table are errors, reported as FILE:LINE like every other
 * problem, all of them in one pass.
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

struct yj_strlist {
	char **v;   /* owned strings */
	size_t n;
};

struct yj_config {
	char *source;                   /* file it came from, or "yjlinkd.conf (embedded)" */

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
	struct yj_strlist ingest_forces;/* forces an unauthenticated sender may send for */
	int ingest_insecure;            /* allow a non-loopback endpoint without CURVE */

	char *notify_endpoint;          /* YJN1 ROUTER bind */
	char *control_endpoint;         /* yjlinkctl socket */
	char *metrics_endpoint;         /* host:port for /metrics and /healthz */

	int64_t retention_event_days;
	int64_t retention_audit_days;

	char *reference_dir;            /* "" = the tables compiled into the binary */

	int64_t custody_overnight_hours;/* detained this long between the two times counts as overnight */
	char *custody_overnight_from;   /* "HH:MM" local */
	char *custody_overnight_to;     /* "HH:MM" local */

	char *log_level;                /* err|warning|notice|info|debug */
	int testing_clock_control;      /* allow `yjlinkctl clock` (tests only) */
};

/* Load file (or the embedded default when file is NULL), apply each of the
 * n_sets "KEY=VALUE" overrides, then check everything. Every problem goes to
 * diag as FILE:LINE: message. Returns 0 and *out, YJ_ECONFIG, or YJ_ENOMEM. */
int yj_config_load(const char *file, const char *const *sets, size_t n_sets, struct yj_diag *diag,
		   struct yj_config **out);

void yj_config_free(struct yj_config **cfg);

/* Print the settings table as Markdown (for README.md). */
void yj_config_print_reference(FILE *out);

/* The reference directory resolved against the config file's directory;
 * NULL when the embedded tables are meant. Caller frees. */
char *yj_config_reference_dir(const struct yj_config *cfg);

#endif
