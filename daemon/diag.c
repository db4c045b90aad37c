/* diag.c: see diag.h. */
#include "diag.h"

#include <stdarg.h>
#include <stdio.h>

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

static int s_warn_log;

void yj_diag_warn_log(int on) { s_warn_log = on; }

void yj_diag_warn(struct yj_diag *d, const char *file, int line, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	/* A running daemon's stderr is its log, where every line has a priority; --check's is for a person. */
	const char *prio = s_warn_log ? "<4>" : "";

	(void)d;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (line > 0)
		fprintf(stderr, "%s%s:%d: warning: %s\n", prio, file, line, msg);
	else
		fprintf(stderr, "%s%s: warning: %s\n", prio, file, msg);
}
