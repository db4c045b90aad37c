/* refdata.h: the reference tables the normaliser and router check codes
 * against (interfaces.md §2, routing.md).
 *
 * Tables are CSV files with a header row, shipped in conf/ref/ and built from
 * the ONS and GOV.UK files named in conf/ref/ATTRIBUTION.md. They are also
 * compiled into the binary (embedded.h) so yjlinkd runs with no files at all;
 * an operator points `reference.dir` at a directory to replace them.
 *
 *   forces.csv             code,name                          (PFA24, E23/W15)
 *   local_authorities.csv  code,name,tier,upper_code,force    (every LAD24 and
 *                          every upper-tier authority; tier is `upper` or
 *                          `lower`; force is the PFA the authority lies in)
 *   custody_suites.csv     id,name,force,la                   (la: upper tier)
 *   outcomes.csv           code,name,valid_from,valid_to,table_version,
 *                          applies_to_children (valid_to empty = still in
 *                          use; applies_to_children yes or no)
 *   ethnicity.csv          code,label,census
 *   bank_holidays.csv      date,title                         (England and Wales)
 *
 * Ownership: yj_refdata_load() returns a table set the caller owns and frees
 * with yj_refdata_free(); every pointer a lookup returns lives as long as the
 * set. Lookups are O(log n) and allocation-free.
 */
#ifndef YJ_REFDATA_H
#define YJ_REFDATA_H

#include <stddef.h>
#include <stdint.h>

#include "diag.h"

struct yj_force {
	const char *code;  /* GSS code, e.g. E23000029 */
	const char *name;  /* ONS name, e.g. Thames Valley */
};

struct yj_la {
	const char *code;        /* GSS code */
	const char *name;        /* ONS name */
	int upper_tier;          /* 1 for E06/E08/E09/E10/W06 (children's services authorities) */
	const char *upper_code;  /* the upper-tier authority it lies in (itself when upper) */
	const char *force;       /* the PFA code it lies in */
};

struct yj_suite {
	const char *id;     /* suite id as feeds send it */
	const char *name;   /* display name */
	const char *force;  /* PFA code of the force running it */
	const char *la;     /* upper-tier authority it stands in */
};

struct yj_outcome {
	int code;               /* Home Office outcome number */
	const char *name;       /* published name */
	int32_t valid_from;     /* days since 1970-01-01 */
	int32_t valid_to;       /* days since 1970-01-01; INT32_MAX when open */
	const char *table_version;
	/* 0 for a code that cannot be a child's (an adult caution, say): such
	 * an outcome is stored but flagged as a data-quality issue. */
	int applies_to_children;
};

struct yj_ethnicity {
	const char *code;    /* e.g. W1 */
	const char *label;   /* e.g. White - English, Welsh, Scottish, Northern Irish or British */
	const char *census;  /* which census sets use it, e.g. "2001 2011 2021" */
};

struct yj_refdata;

/* Load every table from dir, or from the copies compiled into the binary
 * when dir is NULL or empty. Every problem is reported to diag as
 * "file:line: message"; returns 0 and *out, YJ_ECONFIG (diag has the
 * reasons), YJ_ENOMEM or YJ_EIO. */
int yj_refdata_load(const char *dir, struct yj_diag *diag, struct yj_refdata **out);

/* Free the set and NULL *ref. Safe on NULL. */
void yj_refdata_free(struct yj_refdata **ref);

const struct yj_force *yj_ref_force(const struct yj_refdata *ref, const char *code);
const struct yj_la *yj_ref_la(const struct yj_refdata *ref, const char *code);
const struct yj_suite *yj_ref_suite(const struct yj_refdata *ref, const char *id);
/* The outcome with this code; NULL when unknown. */
const struct yj_outcome *yj_ref_outcome(const struct yj_refdata *ref, int code);
const struct yj_ethnicity *yj_ref_ethnicity(const struct yj_refdata *ref, const char *code);
/* 1 when days-since-epoch `day` is an England and Wales bank holiday. */
int yj_ref_is_bank_holiday(const struct yj_refdata *ref, int32_t day);

/* Iteration for tools (the simulator, yjlinkctl): the i-th row, or NULL past the end. */
const struct yj_force *yj_ref_force_at(const struct yj_refdata *ref, size_t i);
const struct yj_la *yj_ref_la_at(const struct yj_refdata *ref, size_t i);
const struct yj_suite *yj_ref_suite_at(const struct yj_refdata *ref, size_t i);
const struct yj_outcome *yj_ref_outcome_at(const struct yj_refdata *ref, size_t i);
const struct yj_ethnicity *yj_ref_ethnicity_at(const struct yj_refdata *ref, size_t i);

/* Days since 1970-01-01 for a proleptic Gregorian date; no range check. */
int32_t yj_days_from_civil(int y, unsigned m, unsigned d);
/* The inverse of yj_days_from_civil. */
void yj_civil_from_days(int32_t z, int *y, unsigned *m, unsigned *d);

#endif
