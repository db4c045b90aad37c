/* directory.h: the national directories (routing.md "Reach everywhere").
 *
 *   children_services.csv  every upper-tier local authority
 *   force_contacts.csv     every police force area
 *
 * both with the columns code,name,transport,address,out_of_hours_address,
 * secret_file,dsa (conf/ref/ATTRIBUTION.md). They ship in conf/ref/, are
 * compiled in like the other reference tables, and come from
 * `reference.dir` when it is set (which replaces every table).
 *
 * The config loader (config.c) reads them and makes a recipient of each row
 * with a transport whose id (children_services:CODE, force:CODE) the
 * config's own `recipients` does not declare: the rest of the daemon sees
 * only recipients. This module also says which authorities and forces a
 * rule could need and nobody reaches (`yjlinkctl recipients --missing`,
 * the warnings of --check), and how near each DSA's review is.
 */
#ifndef YJ_DIRECTORY_H
#define YJ_DIRECTORY_H

#include <stddef.h>
#include <stdint.h>

#include "diag.h"

struct yj_config;
struct yj_recipient;
struct yj_refdata;

enum yj_directory_kind {
	YJ_DIRECTORY_CHILDREN_SERVICES = 0,
	YJ_DIRECTORY_FORCE,
};

struct yj_directory_row {
	const char *code, *name;
	const char *transport;  /* "" = no destination yet */
	const char *address;    /* email: the address; webhook: the URL */
	const char *out_of_hours_address;
	const char *secret_file;
	const char *dsa;        /* "", "ID" or "ID@YYYY-MM-DD" */
	int line;
};

/* One directory as read: its rows point into buf. */
struct yj_directory {
	char *label;            /* file name in messages: the path, or "NAME (embedded)" */
	char *buf;
	struct yj_directory_row *rows;
	size_t n;
};

/* The file name of a kind's directory ("children_services.csv"). */
const char *yj_directory_file(enum yj_directory_kind kind);

/* Read a kind's directory from dir (NULL or "": the compiled-in copy) into
 * *out, which the caller frees with yj_directory_free() whatever the
 * result. Every bad row is reported to diag as FILE:LINE and left out.
 * Returns 0, YJ_ECONFIG (reported) or YJ_ENOMEM. */
int yj_directory_load(const char *dir, enum yj_directory_kind kind, struct yj_diag *diag, struct yj_directory *out);

void yj_directory_free(struct yj_directory *d);

/* Split a dsa value "ID" or "ID@YYYY-MM-DD": 0 with the id's length in
 * *id_len and the review date (days since 1970-01-01) in *review, INT32_MIN
 * when it has none; YJ_EINVAL when it is neither form. */
int yj_dsa_parse(const char *v, size_t *id_len, int32_t *review);

/* Days from today (Europe/London, by yj_clock_now_us) to a review day;
 * negative when past. */
int32_t yj_dsa_days_left(int32_t review);

/* Every authority (children_services:CODE, when some rule names a
 * children_services: recipient: every upper-tier authority of
 * local_authorities.csv) and force (force:CODE, when some rule names
 * force:, every force but the deployment's own) a rule could need and that
 * has no destination: no recipient, or one with transport none. fn is
 * called for each in code order (when not NULL); returns how many. */
size_t yj_directory_missing(const struct yj_config *cfg, const struct yj_refdata *ref,
			    void (*fn)(void *arg, enum yj_directory_kind kind, const char *id, const char *code,
				       const char *name),
			    void *arg);

/* The warnings of start, reload and --check (yj_diag_warn): how many
 * authorities and forces have no destination (the first few codes), and
 * each recipient whose DSA review is within 30 days or past. */
void yj_directory_warn(const struct yj_config *cfg, const struct yj_refdata *ref, struct yj_diag *diag);

#endif
