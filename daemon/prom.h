/* prom.h: building a Prometheus text exposition (format version 0.0.4).
 *
 * The main loop renders every metric into one yj_prom each time it
 * publishes (see metrics.h); nothing here does I/O or takes a lock.
 *
 *	struct yj_prom p;
 *	yj_prom_init(&p);
 *	yj_prom_family(&p, "yjlink_events_ingested_total", "counter", "Events stored, by feed.");
 *	yj_prom_sample_l(&p, "yjlink_events_ingested_total", 12.0, "feed", "custody", NULL);
 *	yj_prom_sample_l(&p, "yjlink_events_ingested_total", 3.0, "feed", "missing", NULL);
 *	if (p.rc == 0)
 *		yj_metrics_publish(m, p.buf, p.len);
 *	yj_prom_free(&p);
 *
 * Errors are sticky, as in a yj_txn: the first failure is kept in p->rc,
 * every later call returns it without writing, so a renderer may make all
 * its calls and check once at the end. The text format wants the samples of
 * one family contiguous and under its own # TYPE line; these functions
 * refuse (YJ_EINVAL, YJ_EEXIST) whatever would break that, rather than emit
 * an exposition Prometheus drops whole.
 *
 * Numbers are printed in the "C" locale (the daemon never calls
 * setlocale()): integral values below 1e21 (all of uint64's range) as
 * plain integers ("42", never "4.2e+01"), others in the shortest form that
 * reads back as the same double, NaN as "NaN", infinities as "+Inf" /
 * "-Inf". A double holds integers exactly up to 2^53 only: a counter that
 * may pass that belongs in a histogram's uint64 counts, printed exactly.
 *
 * Personal data never belongs in a label value: labels name feeds,
 * recipients, transports, results and error codes, nothing about a child.
 */
#ifndef YJ_PROM_H
#define YJ_PROM_H

#include <stddef.h>
#include <stdint.h>

/* Most label pairs one sample may carry; more is YJ_EINVAL. */
#define YJ_PROM_MAX_LABELS 8

struct yj_prom {
	char *buf;      /* the exposition so far, NUL-terminated (NULL until the first write); owned */
	size_t len;     /* bytes in buf before the NUL */
	size_t cap;     /* bytes allocated for buf */
	char *family;   /* name of the family the next samples belong to (NULL: none yet); owned */
	char type[10];  /* that family's type: "counter", "gauge" or "histogram" */
	int rc;         /* sticky error: 0, or the first failure, returned by every later call */
};

/* Start an empty exposition. Allocates nothing. */
void yj_prom_init(struct yj_prom *p);

/* Free what p owns and leave it as after yj_prom_init(). Safe twice. */
void yj_prom_free(struct yj_prom *p);

/* Empty p and clear its sticky error but keep the buffer, so a renderer
 * that runs every few seconds stops allocating once the text has its size. */
void yj_prom_reset(struct yj_prom *p);

/* Open family `name`: write its "# HELP" (help may be NULL: no HELP line;
 * backslash and newline escaped) and "# TYPE" lines. Opening the family
 * already open is a no-op, so a loop may open it before each sample.
 * Returns 0; YJ_EINVAL for a bad metric name or a type other than
 * "counter", "gauge" or "histogram", or the open family's name with another
 * type; YJ_EEXIST when the family was opened earlier and another one since
 * (its samples could no longer be contiguous); YJ_ENOMEM. */
int yj_prom_family(struct yj_prom *p, const char *name, const char *type, const char *help);

/* Write one sample of the open counter or gauge family: `name` must be that
 * family's name. labels is NULL (no labels) or an array of alternating
 * label names and values ending with a NULL name: {"feed", "custody", NULL}.
 * Values are escaped (backslash, double quote, newline); names must match
 * [a-zA-Z_][a-zA-Z0-9_]* and not start with "__". Returns 0; YJ_EINVAL for
 * no open family, a name that is not the open family's, a histogram
 * family, a bad label name, a name without a value, or more than
 * YJ_PROM_MAX_LABELS pairs; YJ_ENOMEM. */
int yj_prom_sample(struct yj_prom *p, const char *name, const char *const *labels, double value);

/* yj_prom_sample() with the label pairs as arguments, ended by NULL:
 * yj_prom_sample_l(p, "yjlink_outbox_depth", 4.0, "recipient", "la-e09000007", NULL).
 * Same returns. */
int yj_prom_sample_l(struct yj_prom *p, const char *name, double value, ...)
	__attribute__((sentinel));

/* Write a whole histogram family without labels: HELP, TYPE, then
 * cumulative name_bucket{le="..."} lines for each bound and for "+Inf",
 * name_sum and name_count.
 *
 * bounds: n finite upper bounds, strictly increasing (n may be 0).
 * counts: n + 1 per-bucket, non-cumulative counts: counts[i] observations
 *         in (bounds[i-1], bounds[i]], counts[n] those above bounds[n-1];
 *         the +Inf bucket and name_count are their total.
 * sum:    the sum of all observed values.
 *
 * Returns 0; YJ_EINVAL for a bad name, NULL or unordered or non-finite
 * bounds, NULL counts; YJ_EEXIST when that family was written before;
 * YJ_ERANGE if the counts overflow uint64; YJ_ENOMEM. */
int yj_prom_histogram(struct yj_prom *p, const char *name, const char *help,
		      const double *bounds, const uint64_t *counts, size_t n, double sum);

#endif
