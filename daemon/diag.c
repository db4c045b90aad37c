/* diag.c: see diag.h. */
#include "diag.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

void yj_diag_report(struct yj_diag *d, const char *file, int line, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	d->count++;
	if (d->report) {
		d->report(d->arg, file, line, msg);
	} else if (line > 0) {
		fprintf(stderr, "%s:%d: %s\n", file, line, msg);
	} else {
		fprintf(stderr, "%s: %s\n", file, msg);
	}
}

void yj_diag_warn(struct yj_diag *d, const char *file, int line, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	/* The same "<4>" the daemon's log lines carry, only under journald: --check prints plain text. */
	const char *prio = getenv("JOURNAL_STREAM") ? "<4>" : "";

	(void)d;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (line > 0)
		fprintf(stderr, "%s%s:%d: warning: %s\n", prio, file, line, msg);
	else
		fprintf(stderr, "%s%s: warning: %s\n", prio, file, msg);
}
