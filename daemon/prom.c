/* prom.c: see prom.h. */
#include "prom.h"

#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"

void yj_prom_init(struct yj_prom *p)
{
	memset(p, 0, sizeof(*p));
}

void yj_prom_free(struct yj_prom *p)
{
	free(p->buf);
	free(p->family);
	yj_prom_init(p);
}

void yj_prom_reset(struct yj_prom *p)
{
	if (p->buf)
		p->buf[0] = '\0';
	p->len = 0;
	free(p->family);
	p->family = NULL;
	p->type[0] = '\0';
	p->rc = 0;
}

/* Keep the first failure: every later call returns it (see prom.h). */
static int s_fail(struct yj_prom *p, int rc)
{
	if (!p->rc)
		p->rc = rc;
	return p->rc;
}

/* Room for `extra` more bytes and the NUL. Sets the sticky error on failure. */
static int s_reserve(struct yj_prom *p, size_t extra)
{
	size_t need = p->len + extra + 1;
	size_t cap = p->cap ? p->cap : 1024;
	char *buf = NULL;

	if (p->rc)
		return p->rc;
	if (extra > SIZE_MAX / 4 - p->len)
		return s_fail(p, YJ_ENOMEM);
	if (need <= p->cap)
		return 0;
	while (cap < need)
		cap *= 2;
	buf = realloc(p->buf, cap);
	if (!buf)
		return s_fail(p, YJ_ENOMEM);
	p->buf = buf;
	p->cap = cap;
	return 0;
}

static void s_put(struct yj_prom *p, const char *s, size_t n)
{
	if (s_reserve(p, n))
		return;
	memcpy(p->buf + p->len, s, n);
	p->len += n;
	p->buf[p->len] = '\0';
}

static void s_puts(struct yj_prom *p, const char *s)
{
	s_put(p, s, strlen(s));
}

/* Append s with the escapes the format wants: backslash and newline in HELP
 * text, and also the double quote inside a quoted label value. */
static void s_put_escaped(struct yj_prom *p, const char *s, int quote)
{
	const char *run = s;

	for (; *s; s++) {
		const char *esc = NULL;

		if (*s == '\\')
			esc = "\\\\";
		else if (*s == '\n')
			esc = "\\n";
		else if (*s == '"' && quote)
			esc = "\\\"";
		if (!esc)
			continue;
		s_put(p, run, (size_t)(s - run));
		s_put(p, esc, 2);
		run = s + 1;
	}
	s_put(p, run, (size_t)(s - run));
}

/* Format v into out (at least 32 bytes) as prom.h promises. */
static void s_format_value(char *out, size_t size, double v)
{
	if (isnan(v)) {
		snprintf(out, size, "NaN");
	} else if (isinf(v)) {
		snprintf(out, size, v > 0 ? "+Inf" : "-Inf");
	} else if (v == 0) {
		/* also -0.0, which "%.0f" would print as "-0" */
		snprintf(out, size, "0");
	} else if (v == trunc(v) && fabs(v) < 1e21) {
		/* "%.0f" prints the double's exact value, so a counter reads as the
		 * integer it is all through the uint64 range; from 1e21 on a
		 * number that long stops being readable. */
		snprintf(out, size, "%.0f", v);
	} else {
		/* The shortest text that strtod() turns back into v. */
		for (int prec = 1; prec <= 17; prec++) {
			snprintf(out, size, "%.*g", prec, v);
			if (strtod(out, NULL) == v)
				break;
		}
	}
}

static void s_put_value(struct yj_prom *p, double v)
{
	char num[64];

	s_format_value(num, sizeof(num), v);
	s_puts(p, num);
}

static int s_valid_metric_name(const char *s)
{
	if (!s || !*s || (*s >= '0' && *s <= '9'))
		return 0;
	for (; *s; s++) {
		char c = *s;
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '_' || c == ':'))
			return 0;
	}
	return 1;
}

/* Label names are metric names without ':'; "__" names are Prometheus's own. */
static int s_valid_label_name(const char *s)
{
	return s_valid_metric_name(s) && !strchr(s, ':') && strncmp(s, "__", 2) != 0;
}

/* Whether a "# TYPE name " line is already in the text. The buffer is its
 * own record of the families written: HELP text and label values never hold
 * a raw newline (they are escaped), so every "\n# TYPE " starts a real line. */
static int s_family_written(const struct yj_prom *p, const char *name)
{
	size_t nlen = strlen(name);
	const char *line = p->buf;

	while (line && *line) {
		if (strncmp(line, "# TYPE ", 7) == 0 && strncmp(line + 7, name, nlen) == 0 &&
		    line[7 + nlen] == ' ')
			return 1;
		line = strchr(line, '\n');
		if (line)
			line++;
	}
	return 0;
}

/* HELP and TYPE lines, and make `name` the open family. */
static int s_open_family(struct yj_prom *p, const char *name, const char *type, const char *help)
{
	char *copy = strdup(name);

	if (!copy)
		return s_fail(p, YJ_ENOMEM);
	if (help) {
		s_puts(p, "# HELP ");
		s_puts(p, name);
		s_puts(p, " ");
		s_put_escaped(p, help, 0);
		s_puts(p, "\n");
	}
	s_puts(p, "# TYPE ");
	s_puts(p, name);
	s_puts(p, " ");
	s_puts(p, type);
	s_puts(p, "\n");
	free(p->family);
	p->family = copy;
	snprintf(p->type, sizeof(p->type), "%s", type);
	return p->rc;
}

int yj_prom_family(struct yj_prom *p, const char *name, const char *type, const char *help)
{
	if (p->rc)
		return p->rc;
	if (!s_valid_metric_name(name) || !type ||
	    (strcmp(type, "counter") && strcmp(type, "gauge") && strcmp(type, "histogram")))
		return s_fail(p, YJ_EINVAL);
	if (p->family && strcmp(p->family, name) == 0)
		return strcmp(p->type, type) == 0 ? 0 : s_fail(p, YJ_EINVAL);
	if (s_family_written(p, name))
		return s_fail(p, YJ_EEXIST);
	return s_open_family(p, name, type, help);
}

/* One sample line: name{k="v",...} value. labels as in yj_prom_sample(),
 * already checked. */
static void s_put_sample(struct yj_prom *p, const char *name, const char *suffix,
			 const char *const *labels, double value)
{
	int first = 1;

	s_puts(p, name);
	s_puts(p, suffix);
	for (size_t i = 0; labels && labels[i]; i += 2) {
		s_puts(p, first ? "{" : ",");
		s_puts(p, labels[i]);
		s_puts(p, "=\"");
		s_put_escaped(p, labels[i + 1], 1);
		s_puts(p, "\"");
		first = 0;
	}
	if (!first)
		s_puts(p, "}");
	s_puts(p, " ");
	s_put_value(p, value);
	s_puts(p, "\n");
}

int yj_prom_sample(struct yj_prom *p, const char *name, const char *const *labels, double value)
{
	size_t i = 0;

	if (p->rc)
		return p->rc;
	if (!name || !p->family || strcmp(name, p->family) != 0 || strcmp(p->type, "histogram") == 0)
		return s_fail(p, YJ_EINVAL);
	for (i = 0; labels && labels[i]; i += 2) {
		if (i / 2 >= YJ_PROM_MAX_LABELS || !s_valid_label_name(labels[i]) || !labels[i + 1])
			return s_fail(p, YJ_EINVAL);
	}
	s_put_sample(p, name, "", labels, value);
	return p->rc;
}

int yj_prom_sample_l(struct yj_prom *p, const char *name, double value, ...)
{
	/* Room for one pair more than allowed, so yj_prom_sample() sees that a
	 * long list is too long, and for the closing NULL. */
	const char *labels[2 * YJ_PROM_MAX_LABELS + 3];
	size_t n = 0;
	const char *s = NULL;
	va_list ap;

	va_start(ap, value);
	while ((s = va_arg(ap, const char *)) != NULL && n < 2 * YJ_PROM_MAX_LABELS + 2)
		labels[n++] = s;
	va_end(ap);
	labels[n] = NULL;
	return yj_prom_sample(p, name, labels, value);
}

int yj_prom_histogram(struct yj_prom *p, const char *name, const char *help,
		      const double *bounds, const uint64_t *counts, size_t n, double sum)
{
	char le[64];
	char num[32];
	uint64_t total = 0;
	int rc = 0;

	if (p->rc)
		return p->rc;
	if (!s_valid_metric_name(name) || !counts || (n > 0 && !bounds))
		return s_fail(p, YJ_EINVAL);
	for (size_t i = 0; i < n; i++) {
		if (!isfinite(bounds[i]) || (i > 0 && !(bounds[i] > bounds[i - 1])))
			return s_fail(p, YJ_EINVAL);
	}
	for (size_t i = 0; i <= n; i++) {
		if (counts[i] > UINT64_MAX - total)
			return s_fail(p, YJ_ERANGE);
		total += counts[i];
	}
	if ((p->family && strcmp(p->family, name) == 0) || s_family_written(p, name))
		return s_fail(p, YJ_EEXIST);
	rc = s_open_family(p, name, "histogram", help);
	if (rc)
		return rc;

	/* Bucket counts go out as exact integers: a double would round above 2^53. */
	total = 0;
	for (size_t i = 0; i <= n; i++) {
		total += counts[i];
		if (i < n)
			s_format_value(le, sizeof(le), bounds[i]);
		else
			snprintf(le, sizeof(le), "+Inf");
		snprintf(num, sizeof(num), "%" PRIu64, total);
		s_puts(p, name);
		s_puts(p, "_bucket{le=\"");
		s_puts(p, le);
		s_puts(p, "\"} ");
		s_puts(p, num);
		s_puts(p, "\n");
	}
	s_put_sample(p, name, "_sum", NULL, sum);
	s_puts(p, name);
	s_puts(p, "_count ");
	s_puts(p, num);
	s_puts(p, "\n");
	return p->rc;
}
