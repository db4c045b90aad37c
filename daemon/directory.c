/* directory.c: see directory.h.
 *
 * The two files are small (a few hundred rows) and read whole; fields are
 * unquoted in place, as refdata.c does, so every row's strings point into
 * the one buffer the directory keeps.
 */
#include "directory.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "config.h"
#include "embedded.h"
#include "err.h"
#include "refdata.h"
#include "tz.h"

/* A directory bigger than this is a mistake, not 200 rows of addresses. */
#define S_MAX_FILE (4u << 20)
#define S_NCOLS 7
#define S_WARN_FIRST 5   /* codes named in the --check warning; the rest are counted */
#define S_DSA_WARN_DAYS 30

static const char *const s_cols[S_NCOLS] = { "code", "name", "transport", "address", "out_of_hours_address",
					     "secret_file", "dsa" };

const char *yj_directory_file(enum yj_directory_kind kind)
{
	return kind == YJ_DIRECTORY_FORCE ? "force_contacts.csv" : "children_services.csv";
}

static int s_read_file(const char *path, char **buf, size_t *len, struct yj_diag *diag)
{
	FILE *f = fopen(path, "rb");
	if (!f) {
		yj_diag_report(diag, path, 0, "cannot open: %s (a reference.dir holds every table, this one too)",
			       strerror(errno));
		return YJ_ECONFIG;
	}
	char *data = malloc(S_MAX_FILE + 1);
	size_t n = data ? fread(data, 1, S_MAX_FILE + 1, f) : 0;
	int err = ferror(f);
	fclose(f);
	if (!data)
		return YJ_ENOMEM;
	if (err || n > S_MAX_FILE) {
		yj_diag_report(diag, path, 0, err ? "read error" : "larger than %u bytes", S_MAX_FILE);
		free(data);
		return YJ_ECONFIG;
	}
	data[n] = '\0';
	*buf = data;
	*len = n;
	return 0;
}

/* One CSV record at *p (RFC 4180, fields unquoted in place) into f[]; the
 * number of fields, or -1 after reporting a broken quote. *line moves on
 * with the input. */
static int s_record(char **p, char *end, int *line, char **f, int max, const char *file, struct yj_diag *diag)
{
	int nf = 0, start_line = *line;
	for (;;) {
		char *r = *p, *w = *p, *field = *p;
		if (r < end && *r == '"') {
			r++;
			for (;;) {
				if (r >= end) {
					yj_diag_report(diag, file, start_line, "quoted field is never closed");
					*p = end;
					return -1;
				}
				if (*r == '"' && r + 1 < end && r[1] == '"') {
					*w++ = '"';
					r += 2;
				} else if (*r == '"') {
					r++;
					break;
				} else {
					if (*r == '\n')
						(*line)++;
					*w++ = *r++;
				}
			}
		} else {
			while (r < end && *r != ',' && *r != '\n' && *r != '\r')
				r++;
			w = r;
		}
		char term = r < end ? *r : '\n';
		if (term == '\r' && r + 1 < end && r[1] == '\n')
			r++, term = '\n';
		if (term != ',' && term != '\n') {
			yj_diag_report(diag, file, *line, "text after a closing quote");
			while (r < end && *r != '\n')
				r++;
			term = '\n';
		}
		*w = '\0';
		if (nf < max)
			f[nf] = field;
		nf++;
		if (r < end)
			r++;
		*p = r;
		if (term == '\n') {
			(*line)++;
			return nf;
		}
	}
}

static int s_code_ok(enum yj_directory_kind kind, const char *c)
{
	static const char *const upper[] = { "E06", "E08", "E09", "E10", "W06" };
	static const char *const forces[] = { "E23", "W15" };
	const char *const *pre = kind == YJ_DIRECTORY_FORCE ? forces : upper;
	size_t n = kind == YJ_DIRECTORY_FORCE ? 2 : 5, ok = 0;
	if (strlen(c) != 9 || strspn(c + 1, "0123456789") != 8)
		return 0;
	for (size_t i = 0; i < n; i++)
		ok |= !strncmp(c, pre[i], 3);
	return (int)ok;
}

int yj_dsa_parse(const char *v, size_t *id_len, int32_t *review)
{
	const char *at = strchr(v, '@');
	size_t n = at ? (size_t)(at - v) : strlen(v);
	*review = INT32_MIN;
	if (n == 0 || n > 64)
		return YJ_EINVAL;
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)v[i];
		if (!(ch >= '0' && ch <= '9') && !(ch >= 'A' && ch <= 'Z') && !(ch >= 'a' && ch <= 'z') && !strchr("._/-", ch))
			return YJ_EINVAL;
	}
	*id_len = n;
	if (!at)
		return 0;
	int y, m, d, used = 0;
	if (strlen(at + 1) != 10 || sscanf(at + 1, "%4d-%2d-%2d%n", &y, &m, &d, &used) != 3 || used != 10 || m < 1 ||
	    m > 12 || d < 1 || d > 31)
		return YJ_EINVAL;
	int32_t day = yj_days_from_civil(y, (unsigned)m, (unsigned)d);
	int yy;
	unsigned mm, dd;
	yj_civil_from_days(day, &yy, &mm, &dd);
	/* 2027-02-30 is not a date: it would come back as 2027-03-02. */
	if (yy != y || (int)mm != m || (int)dd != d)
		return YJ_EINVAL;
	*review = day;
	return 0;
}

int32_t yj_dsa_days_left(int32_t review)
{
	struct tm tm;
	yj_tz_local(yj_clock_now_us() / 1000000, &tm);
	return review - yj_days_from_civil(tm.tm_year + 1900, (unsigned)tm.tm_mon + 1, (unsigned)tm.tm_mday);
}

/* Report a bad row; 1 when it is good. */
static int s_row_ok(const struct yj_directory *d, enum yj_directory_kind kind, const struct yj_directory_row *r,
		    struct yj_diag *diag)
{
	int ok = 1;
	size_t idl;
	int32_t rev;
	if (!s_code_ok(kind, r->code)) {
		yj_diag_report(diag, d->label, r->line, "code '%s' is not %s", r->code,
			       kind == YJ_DIRECTORY_FORCE ? "a police force area code (E23/W15)"
							  : "an upper-tier local authority code (E06/E08/E09/E10/W06)");
		ok = 0;
	}
	if (!*r->name || r->name[0] == ' ' || r->name[strlen(r->name) - 1] == ' ') {
		yj_diag_report(diag, d->label, r->line, "%s: name is empty or padded with spaces", r->code);
		ok = 0;
	}
	if (!*r->transport && (*r->address || *r->out_of_hours_address || *r->secret_file)) {
		/* An address without a transport would look configured and deliver nothing. */
		yj_diag_report(diag, d->label, r->line, "%s: an address or secret_file but no transport", r->code);
		ok = 0;
	}
	if (*r->transport && !*r->address) {
		yj_diag_report(diag, d->label, r->line, "%s: transport %s needs an address", r->code, r->transport);
		ok = 0;
	}
	if (*r->dsa && yj_dsa_parse(r->dsa, &idl, &rev)) {
		yj_diag_report(diag, d->label, r->line, "%s: dsa '%s' is not ID or ID@YYYY-MM-DD", r->code, r->dsa);
		ok = 0;
	}
	for (size_t i = 0; i < d->n; i++) {
		if (!strcmp(d->rows[i].code, r->code)) {
			yj_diag_report(diag, d->label, r->line, "%s is listed twice (first at line %d)", r->code,
				       d->rows[i].line);
			ok = 0;
			break;
		}
	}
	return ok;
}

int yj_directory_load(const char *dir, enum yj_directory_kind kind, struct yj_diag *diag, struct yj_directory *out)
{
	const char *name = yj_directory_file(kind);
	size_t len = 0, cap = 0;
	int rc = 0, line = 1, before = diag->count;
	size_t col[S_NCOLS];
	char *f[32];

	memset(out, 0, sizeof(*out));
	if (dir && *dir) {
		if (asprintf(&out->label, "%s/%s", dir, name) < 0) {
			out->label = NULL;
			return YJ_ENOMEM;
		}
		if ((rc = s_read_file(out->label, &out->buf, &len, diag)))
			return rc;
	} else {
		const struct yj_embedded_file *ef = yj_embedded_find(name);
		if (asprintf(&out->label, "%s (embedded)", name) < 0) {
			out->label = NULL;
			return YJ_ENOMEM;
		}
		if (!ef) {
			yj_diag_report(diag, out->label, 0, "not compiled into this binary");
			return YJ_ECONFIG;
		}
		if (!(out->buf = malloc(ef->len + 1)))
			return YJ_ENOMEM;
		memcpy(out->buf, ef->data, ef->len);
		out->buf[ef->len] = '\0';
		len = ef->len;
	}
	if (memchr(out->buf, '\0', len)) {
		yj_diag_report(diag, out->label, 0, "contains a NUL byte: not a text file");
		return YJ_ECONFIG;
	}
	char *p = out->buf, *end = out->buf + len;
	if (len >= 3 && !memcmp(p, "\xef\xbb\xbf", 3))
		p += 3;
	int nh = s_record(&p, end, &line, f, 32, out->label, diag);
	for (size_t k = 0; k < S_NCOLS; k++) {
		col[k] = SIZE_MAX;
		for (int i = 0; i < nh && i < 32; i++) {
			if (!strcmp(f[i], s_cols[k]))
				col[k] = (size_t)i;
		}
		if (col[k] == SIZE_MAX) {
			yj_diag_report(diag, out->label, 1, "missing column '%s'", s_cols[k]);
			rc = YJ_ECONFIG;
		}
	}
	if (rc)
		return rc;
	while (p < end) {
		int at = line;
		if (*p == '\n' || (*p == '\r' && p + 1 < end && p[1] == '\n')) {
			p += *p == '\r' ? 2 : 1;
			line++;
			continue;
		}
		int nf = s_record(&p, end, &line, f, 32, out->label, diag);
		if (nf < 0)
			continue;
		if (nf != nh) {
			yj_diag_report(diag, out->label, at, "%d fields, the header has %d", nf, nh);
			continue;
		}
		struct yj_directory_row r = { f[col[0]], f[col[1]], f[col[2]], f[col[3]], f[col[4]], f[col[5]],
					      f[col[6]], at };
		if (!s_row_ok(out, kind, &r, diag))
			continue;
		if (out->n == cap) {
			cap = cap ? cap * 2 : 256;
			struct yj_directory_row *nr = realloc(out->rows, cap * sizeof(*nr));
			if (!nr)
				return YJ_ENOMEM;
			out->rows = nr;
		}
		out->rows[out->n++] = r;
	}
	return diag->count > before ? YJ_ECONFIG : 0;
}

void yj_directory_free(struct yj_directory *d)
{
	free(d->label);
	free(d->buf);
	free(d->rows);
	memset(d, 0, sizeof(*d));
}

static int s_reached(const struct yj_config *cfg, const char *id)
{
	const struct yj_recipient *r = yj_config_recipient(cfg, id);
	return r && r->output >= 0;
}

size_t yj_directory_missing(const struct yj_config *cfg, const struct yj_refdata *ref,
			    void (*fn)(void *arg, enum yj_directory_kind kind, const char *id, const char *code,
				       const char *name),
			    void *arg)
{
	int want_cs = 0, want_force = 0;
	size_t n = 0;
	char id[64];

	for (size_t i = 0; i < cfg->n_rules; i++) {
		want_cs |= !strncmp(cfg->rules[i].recipient, "children_services:", 18);
		want_force |= !strncmp(cfg->rules[i].recipient, "force:", 6);
	}
	const struct yj_la *la;
	for (size_t i = 0; want_cs && (la = yj_ref_la_at(ref, i)); i++) {
		if (!la->upper_tier)
			continue;
		snprintf(id, sizeof(id), "children_services:%s", la->code);
		if (s_reached(cfg, id))
			continue;
		n++;
		if (fn)
			fn(arg, YJ_DIRECTORY_CHILDREN_SERVICES, id, la->code, la->name);
	}
	const struct yj_force *fo;
	for (size_t i = 0; want_force && (fo = yj_ref_force_at(ref, i)); i++) {
		if (!strcmp(fo->code, cfg->deployment_force))
			continue; /* force:home only names another force */
		snprintf(id, sizeof(id), "force:%s", fo->code);
		if (s_reached(cfg, id))
			continue;
		n++;
		if (fn)
			fn(arg, YJ_DIRECTORY_FORCE, id, fo->code, fo->name);
	}
	return n;
}

struct s_first {
	size_t n[2];
	char codes[2][S_WARN_FIRST * 12];
};

static void s_first_cb(void *arg, enum yj_directory_kind kind, const char *id, const char *code, const char *name)
{
	struct s_first *w = arg;
	(void)id;
	(void)name;
	if (w->n[kind]++ < S_WARN_FIRST) {
		size_t l = strlen(w->codes[kind]);
		snprintf(w->codes[kind] + l, sizeof(w->codes[kind]) - l, "%s%s", l ? ", " : "", code);
	}
}

void yj_directory_warn(const struct yj_config *cfg, const struct yj_refdata *ref, struct yj_diag *diag)
{
	struct s_first w;
	static const char *const what[2] = { "local authorities' children's services", "forces" };

	memset(&w, 0, sizeof(w));
	yj_directory_missing(cfg, ref, s_first_cb, &w);
	for (int k = 0; k < 2; k++) {
		if (!w.n[k])
			continue;
		yj_diag_warn(diag, yj_directory_file((enum yj_directory_kind)k), 0,
			     "%zu %s a rule could need have no destination (%s%s): their notifications would wait as "
			     "unroutable; see yjlinkctl recipients --missing",
			     w.n[k], what[k], w.codes[k], w.n[k] > S_WARN_FIRST ? ", ..." : "");
	}
	for (size_t i = 0; i < cfg->n_recipients; i++) {
		const struct yj_recipient *r = &cfg->recipients[i];
		if (!r->dsa_id || r->dsa_review == INT32_MIN)
			continue;
		int32_t left = yj_dsa_days_left(r->dsa_review);
		if (left > S_DSA_WARN_DAYS)
			continue;
		int y;
		unsigned m, d;
		yj_civil_from_days(r->dsa_review, &y, &m, &d);
		if (left < 0)
			yj_diag_warn(diag, r->file, r->line,
				     "recipient '%s': data sharing agreement %s was due for review on %04d-%02u-%02u (%d "
				     "days ago)",
				     r->id, r->dsa_id, y, m, d, -left);
		else
			yj_diag_warn(diag, r->file, r->line,
				     "recipient '%s': data sharing agreement %s is due for review on %04d-%02u-%02u (in %d "
				     "days)",
				     r->id, r->dsa_id, y, m, d, left);
	}
}
