/* diag.h: collecting "FILE:LINE: message" diagnostics.
 *
 * Config and reference-table loaders report every problem they find (not
 * just the first) through a yj_diag, so `yjlinkd --check` and a refused
 * reload list them all.
 */
#ifndef YJ_DIAG_H
#define YJ_DIAG_H

struct yj_diag {
	/* Called once per problem; NULL prints "file:line: msg" to stderr. */
	void (*report)(void *arg, const char *file, int line, const char *msg);
	void *arg;   /* passed to report */
	int count;   /* problems reported so far */
};

/* Report one problem. line 0 means the file as a whole ("file: msg"). */
void yj_diag_report(struct yj_diag *d, const char *file, int line, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* Report something worth an operator's attention that does not make the
 * config wrong (a DSA due for review, authorities nobody reaches): not
 * counted, so --check still exits 0 and a reload still goes ahead. Written
 * to stderr as "file:line: warning: msg"; d may be NULL. */
void yj_diag_warn(struct yj_diag *d, const char *file, int line, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* on: warnings are log lines, with the "<4>" priority prefix every line of
 * the daemon's log has (log.h); off (the default, --check): plain text. */
void yj_diag_warn_log(int on);

#endif
