/* refdata.c: see refdata.h.
 *
 * Each table's file is read whole into one buffer that the set keeps; the CSV
 * parser unquotes fields in place (a field never grows when unquoted), so every
 * string a lookup returns points into those buffers and loading costs one
 * allocation per file plus the row arrays. Rows stay in file order for the
 * _at() iterators; a separate sorted key array per table serves bsearch.
 *
 * Loading never stops at the first problem: bad rows are reported and left
 * out and the other rows are still checked, so one `yjlinkd --check` lists
 * everything. References into a table are checked only when that table
 * loaded cleanly: one bad row in forces.csv would otherwise be reported again
 * for each of the dozens of authorities in that force.
 */
#include "refdata.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "embedded.h"
#include "err.h"
#include "strset.h"

enum { S_FORCES, S_LAS, S_SUITES, S_OUTCOMES, S_ETHNICITY, S_HOLIDAYS, S_NTABLES };

static const char *const s_file_names[S_NTABLES] = {
	"forces.csv", "local_authorities.csv", "custody_suites.csv",
	"outcomes.csv", "ethnicity.csv", "bank_holidays.csv",
};

/* A table bigger than this is not a reference table but a mistake (or an
 * attempt to make the daemon allocate without bound). */
#define S_MAX_FILE (16u << 20)
/* Longest field; the event schema caps strings at 256 bytes, names here are
 * well under, outcome names run to about 200. */
#define S_MAX_FIELD 1024

/* One lookup key: a string (n unused) or an integer (s NULL). */
struct s_key {
	const char *s;
	int32_t n;
	int line;    /* for duplicate reports */
	size_t row;  /* index into the table's row array */
};

struct s_index {
	struct s_key *v;
	size_t n, cap;
	struct yj_strset set; /* string key -> position in v; empty: bsearch */
};

struct yj_refdata {
	char *buf[S_NTABLES];  /* file contents; every string points in here */
	struct yj_force *forces;
	size_t n_forces;
	struct yj_la *las;
	size_t n_las;
	struct yj_suite *suites;
	size_t n_suites;
	struct yj_outcome *outcomes;
	size_t n_outcomes;
	struct yj_ethnicity *eths;
	size_t n_eths;
	struct s_index ix[S_NTABLES];  /* holidays live only here, n = day */
};

/* State of one load; nothing here outlives yj_refdata_load. */
struct s_loader {
	const char *dir;
	struct yj_diag *diag;
	struct yj_refdata *r;
	int clean[S_NTABLES];     /* loaded with no problem: references into it are checkable */
	char *label[S_NTABLES];   /* the file's name in diagnostics */
	int *lines[S_NTABLES];    /* source line of each row */
	size_t lines_cap[S_NTABLES];
};

struct s_csv {
	const char *file;     /* name in diagnostics */
	struct yj_diag *diag;
	char *p, *end;        /* unread input; *end is a NUL we own */
	int line;             /* line of *p */
	int rec_line;         /* line the current record started on */
	char **f;             /* fields of the current record */
	size_t nf, cap;
	size_t ncol;          /* header width; 0 while reading the header */
};

/* --- dates -------------------------------------------------------------- */

/* Howard Hinnant's days_from_civil, in 64-bit so that no year the types can
 * carry overflows in the middle. */
int32_t yj_days_from_civil(int y, unsigned m, unsigned d)
{
	int64_t yy = (int64_t)y - (m <= 2);
	int64_t era = (yy >= 0 ? yy : yy - 399) / 400;
	uint64_t yoe = (uint64_t)(yy - era * 400);
	uint64_t doy = (153u * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
	uint64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return (int32_t)(era * 146097 + (int64_t)doe - 719468);
}

void yj_civil_from_days(int32_t z32, int *y, unsigned *m, unsigned *d)
{
	int64_t z = (int64_t)z32 + 719468;
	int64_t era = (z >= 0 ? z : z - 146096) / 146097;
	uint64_t doe = (uint64_t)(z - era * 146097);
	uint64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	int64_t yy = (int64_t)yoe + era * 400;
	uint64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	uint64_t mp = (5 * doy + 2) / 153;
	unsigned dd = (unsigned)(doy - (153 * mp + 2) / 5 + 1);
	unsigned mm = (unsigned)(mp < 10 ? mp + 3 : mp - 9);

	*y = (int)(yy + (mm <= 2));
	*m = mm;
	*d = dd;
}

static int s_leap(int y)
{
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

/* Strict YYYY-MM-DD: a table with "1/4/2013" or "2013-02-30" is wrong, and
 * guessing would shift a bank holiday or an outcome's validity. */
static int s_parse_date(const char *s, int32_t *out)
{
	static const unsigned char mdays[12] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };

	if (strlen(s) != 10 || s[4] != '-' || s[7] != '-')
		return YJ_EINVAL;
	for (int i = 0; i < 10; i++) {
		if (i != 4 && i != 7 && (s[i] < '0' || s[i] > '9'))
			return YJ_EINVAL;
	}
	int y = (s[0] - '0') * 1000 + (s[1] - '0') * 100 + (s[2] - '0') * 10 + (s[3] - '0');
	unsigned m = (unsigned)((s[5] - '0') * 10 + (s[6] - '0'));
	unsigned d = (unsigned)((s[8] - '0') * 10 + (s[9] - '0'));
	if (y < 1900 || m < 1 || m > 12 || d < 1)
		return YJ_EINVAL;
	if (d > (unsigned)(mdays[m - 1] + (m == 2 && s_leap(y))))
		return YJ_EINVAL;
	*out = yj_days_from_civil(y, m, d);
	return 0;
}

/* --- small validators --------------------------------------------------- */

/* A GSS code: E or W, then 8 digits. */
static int s_is_gss(const char *s)
{
	if ((s[0] != 'E' && s[0] != 'W') || strlen(s) != 9)
		return 0;
	for (int i = 1; i < 9; i++) {
		if (s[i] < '0' || s[i] > '9')
			return 0;
	}
	return 1;
}

static int s_has_prefix(const char *s, const char *prefix)
{
	return strncmp(s, prefix, strlen(prefix)) == 0;
}

/* Tier implied by a local authority code: 1 upper, 0 lower, -1 not an LA. */
static int s_tier_of_code(const char *code)
{
	static const char *const upper[] = { "E06", "E08", "E09", "E10", "W06" };

	for (size_t i = 0; i < sizeof(upper) / sizeof(upper[0]); i++) {
		if (s_has_prefix(code, upper[i]))
			return 1;
	}
	return s_has_prefix(code, "E07") ? 0 : -1;
}

/* Ids and codes go into notifications, logs and file names: printable ASCII,
 * no spaces, no commas. */
static int s_is_token(const char *s, size_t max)
{
	size_t n = 0;

	for (; s[n]; n++) {
		unsigned char c = (unsigned char)s[n];
		if (c <= ' ' || c >= 0x7f || c == ',' || c == '"')
			return 0;
	}
	return n > 0 && n <= max;
}

/* Names are shown to people: non-empty and not padded, so that two rows that
 * differ only by a space cannot both look right. */
static int s_is_name(const char *s)
{
	size_t n = strlen(s);

	return n > 0 && s[0] != ' ' && s[n - 1] != ' ';
}

static int s_valid_utf8(const unsigned char *s)
{
	while (*s) {
		unsigned c = *s;
		size_t n;
		unsigned min;
		if (c < 0x80) {
			if (c < 0x20 && c != '\t' && c != '\n' && c != '\r')
				return 0;
			s++;
			continue;
		} else if ((c & 0xe0) == 0xc0) {
			n = 1, min = 0x80, c &= 0x1f;
		} else if ((c & 0xf0) == 0xe0) {
			n = 2, min = 0x800, c &= 0x0f;
		} else if ((c & 0xf8) == 0xf0) {
			n = 3, min = 0x10000, c &= 0x07;
		} else {
			return 0;
		}
		s++;
		for (size_t i = 0; i < n; i++, s++) {
			if ((*s & 0xc0) != 0x80)
				return 0;
			c = (c << 6) | (*s & 0x3f);
		}
		if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
			return 0;
	}
	return 1;
}

/* --- CSV (RFC 4180) ----------------------------------------------------- */

static int s_csv_push(struct s_csv *c, char *field)
{
	if (c->nf == c->cap) {
		size_t cap = c->cap ? c->cap * 2 : 8;
		char **f = realloc(c->f, cap * sizeof(*f));
		if (!f)
			return YJ_ENOMEM;
		c->f = f;
		c->cap = cap;
	}
	c->f[c->nf++] = field;
	return 0;
}

static void s_csv_skip_line(struct s_csv *c)
{
	char *nl = memchr(c->p, '\n', (size_t)(c->end - c->p));

	if (nl) {
		c->p = nl + 1;
		c->line++;
	} else {
		c->p = c->end;
	}
}

enum { S_REC_EOF = 0, S_REC_OK = 1, S_REC_BAD = 2 };

/* One record, or S_REC_BAD after reporting why it was skipped. Fields are
 * unquoted in place: the write cursor never passes the read cursor. */
static int s_csv_record(struct s_csv *c)
{
	c->nf = 0;
	c->rec_line = c->line;
	for (;;) {
		char *start = c->p, *w = c->p;
		int rc;
		if (c->p < c->end && *c->p == '"') {
			c->p++;
			for (;;) {
				if (c->p == c->end) {
					yj_diag_report(c->diag, c->file, c->rec_line, "quoted field is never closed");
					return S_REC_BAD;
				}
				if (*c->p == '"') {
					if (c->p + 1 < c->end && c->p[1] == '"') {
						*w++ = '"';
						c->p += 2;
						continue;
					}
					c->p++;
					break;
				}
				if (*c->p == '\n')
					c->line++;
				*w++ = *c->p++;
			}
			if (c->p < c->end && *c->p != ',' && *c->p != '\n' && *c->p != '\r') {
				yj_diag_report(c->diag, c->file, c->line, "text after a closing quote");
				s_csv_skip_line(c);
				return S_REC_BAD;
			}
		} else {
			while (c->p < c->end && *c->p != ',' && *c->p != '\n' && *c->p != '\r' && *c->p != '"')
				c->p++;
			if (c->p < c->end && *c->p == '"') {
				yj_diag_report(c->diag, c->file, c->line,
					       "quote inside an unquoted field (quote the whole field, double inner quotes)");
				s_csv_skip_line(c);
				return S_REC_BAD;
			}
			w = c->p;
		}
		if (c->p < c->end && *c->p == '\r' && (c->p + 1 == c->end || c->p[1] != '\n')) {
			yj_diag_report(c->diag, c->file, c->line, "carriage return not followed by a line feed");
			s_csv_skip_line(c);
			return S_REC_BAD;
		}
		if ((size_t)(w - start) > S_MAX_FIELD) {
			yj_diag_report(c->diag, c->file, c->rec_line, "field %zu is longer than %d bytes",
				       c->nf + 1, S_MAX_FIELD);
			s_csv_skip_line(c);
			return S_REC_BAD;
		}
		char term = c->p < c->end ? *c->p : '\n';
		*w = '\0';  /* may overwrite the delimiter, already saved in term */
		if ((rc = s_csv_push(c, start)))
			return rc;
		if (term == ',') {
			c->p++;
			continue;
		}
		if (c->p < c->end) {
			c->p += term == '\r' ? 2 : 1;
			c->line++;
		}
		break;
	}
	for (size_t i = 0; i < c->nf; i++) {
		if (!s_valid_utf8((const unsigned char *)c->f[i])) {
			yj_diag_report(c->diag, c->file, c->rec_line, "field %zu is not valid UTF-8 text", i + 1);
			return S_REC_BAD;
		}
	}
	if (c->ncol && c->nf != c->ncol) {
		yj_diag_report(c->diag, c->file, c->rec_line, "%zu fields, the header has %zu", c->nf, c->ncol);
		return S_REC_BAD;
	}
	return S_REC_OK;
}

/* The next good record (S_REC_OK), S_REC_EOF, or a negative yj_err. Blank
 * lines are skipped: a trailing empty line is common and harmless. */
static int s_csv_next(struct s_csv *c)
{
	for (;;) {
		if (c->p == c->end)
			return S_REC_EOF;
		if (*c->p == '\n' || (*c->p == '\r' && c->p + 1 < c->end && c->p[1] == '\n')) {
			c->p += *c->p == '\r' ? 2 : 1;
			c->line++;
			continue;
		}
		int rc = s_csv_record(c);
		if (rc != S_REC_BAD)
			return rc;
	}
}

/* Read the header and find each wanted column; col[i] is its index. Every
 * missing column is reported. Returns 0, YJ_ECONFIG or YJ_ENOMEM. */
static int s_csv_header(struct s_csv *c, const char *const *want, size_t n_want, size_t *col)
{
	int rc;

	if (c->p == c->end) {
		yj_diag_report(c->diag, c->file, 0, "empty file: no header row");
		return YJ_ECONFIG;
	}
	/* Not s_csv_next: a broken header must not let the first data row
	 * stand in for it. */
	rc = s_csv_record(c);
	if (rc < 0)
		return rc;
	if (rc == S_REC_BAD)
		return YJ_ECONFIG;
	for (size_t i = 0; i < c->nf; i++) {
		for (size_t j = 0; j < i; j++) {
			if (strcmp(c->f[i], c->f[j]) == 0) {
				yj_diag_report(c->diag, c->file, c->rec_line, "column '%s' appears twice", c->f[i]);
				rc = YJ_ECONFIG;
			}
		}
	}
	for (size_t k = 0; k < n_want; k++) {
		col[k] = SIZE_MAX;
		for (size_t i = 0; i < c->nf; i++) {
			if (strcmp(c->f[i], want[k]) == 0)
				col[k] = i;
		}
		if (col[k] == SIZE_MAX) {
			yj_diag_report(c->diag, c->file, c->rec_line, "missing column '%s'", want[k]);
			rc = YJ_ECONFIG;
		}
	}
	c->ncol = c->nf;
	return rc == YJ_ECONFIG ? YJ_ECONFIG : 0;
}

/* --- files -------------------------------------------------------------- */

static int s_read_embedded(struct s_loader *L, int t, char **buf, size_t *len)
{
	const char *name = s_file_names[t];
	const struct yj_embedded_file *ef = yj_embedded_find(name);

	if (asprintf(&L->label[t], "%s (embedded)", name) < 0) {
		L->label[t] = NULL;
		return YJ_ENOMEM;
	}
	if (!ef) {
		/* A build problem, not an operator one, but it must still refuse. */
		yj_diag_report(L->diag, L->label[t], 0, "not compiled into this binary");
		return YJ_ECONFIG;
	}
	if (!(*buf = malloc(ef->len + 1)))
		return YJ_ENOMEM;
	memcpy(*buf, ef->data, ef->len);
	(*buf)[ef->len] = '\0';
	*len = ef->len;
	return 0;
}

static int s_read_file(struct s_loader *L, int t, char **buf, size_t *len)
{
	char *path = NULL, *data = NULL;
	struct stat st;
	size_t cap, n = 0;
	int fd = -1, rc = 0;

	if (asprintf(&path, "%s/%s", L->dir, s_file_names[t]) < 0)
		return YJ_ENOMEM;
	L->label[t] = path;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		yj_diag_report(L->diag, path, 0, "cannot open: %s", strerror(errno));
		rc = errno == EIO ? YJ_EIO : YJ_ECONFIG;
		goto out;
	}
	if (fstat(fd, &st) < 0) {
		yj_diag_report(L->diag, path, 0, "cannot stat: %s", strerror(errno));
		rc = YJ_EIO;
		goto out;
	}
	if (!S_ISREG(st.st_mode) || (uint64_t)st.st_size > S_MAX_FILE) {
		yj_diag_report(L->diag, path, 0, "not a regular file of at most %u bytes", S_MAX_FILE);
		rc = YJ_ECONFIG;
		goto out;
	}
	/* Read to EOF rather than trusting st_size: the file may change under us. */
	cap = (size_t)st.st_size + 1;
	if (!(data = malloc(cap + 1))) {
		rc = YJ_ENOMEM;
		goto out;
	}
	for (;;) {
		ssize_t got = read(fd, data + n, cap - n);
		if (got < 0) {
			if (errno == EINTR)
				continue;
			yj_diag_report(L->diag, path, 0, "read error: %s", strerror(errno));
			rc = YJ_EIO;
			goto out;
		}
		if (got == 0)
			break;
		n += (size_t)got;
		if (n == cap) {
			if (cap > S_MAX_FILE) {
				yj_diag_report(L->diag, path, 0, "larger than %u bytes", S_MAX_FILE);
				rc = YJ_ECONFIG;
				goto out;
			}
			char *bigger = realloc(data, cap * 2 + 1);
			if (!bigger) {
				rc = YJ_ENOMEM;
				goto out;
			}
			data = bigger;
			cap *= 2;
		}
	}
	data[n] = '\0';
	*len = n;
	*buf = data;
	data = NULL;
out:
	if (fd >= 0)
		close(fd);
	free(data);
	return rc;
}

/* The table's text into a buffer we own (NUL after the end), from dir or the
 * embedded copy. Problems are reported; returns 0, YJ_ECONFIG, YJ_EIO or
 * YJ_ENOMEM. */
static int s_read(struct s_loader *L, int t, char **buf, size_t *len)
{
	int rc;

	*buf = NULL;
	rc = (!L->dir || !*L->dir) ? s_read_embedded(L, t, buf, len) : s_read_file(L, t, buf, len);
	if (rc)
		return rc;
	/* Every string is used as a C string: an inner NUL would silently cut it. */
	if (memchr(*buf, '\0', *len)) {
		yj_diag_report(L->diag, L->label[t], 0, "contains a NUL byte: not a text file");
		free(*buf);
		*buf = NULL;
		return YJ_ECONFIG;
	}
	return 0;
}

/* --- rows and index ----------------------------------------------------- */

/* Room for one more row in *v (and its line number). */
static int s_grow(struct s_loader *L, int t, void **v, size_t n, size_t size)
{
	if (n < L->lines_cap[t])
		return 0;
	size_t cap = L->lines_cap[t] ? L->lines_cap[t] * 2 : 64;
	void *nv = realloc(*v, cap * size);
	if (!nv)
		return YJ_ENOMEM;
	*v = nv;
	int *nl = realloc(L->lines[t], cap * sizeof(*nl));
	if (!nl)
		return YJ_ENOMEM;
	L->lines[t] = nl;
	L->lines_cap[t] = cap;
	return 0;
}

static int s_key_cmp_str(const void *a, const void *b)
{
	const struct s_key *x = a, *y = b;
	int c = strcmp(x->s, y->s);

	return c ? c : (x->line > y->line) - (x->line < y->line);
}

static int s_key_cmp_int(const void *a, const void *b)
{
	const struct s_key *x = a, *y = b;

	if (x->n != y->n)
		return x->n < y->n ? -1 : 1;
	return (x->line > y->line) - (x->line < y->line);
}

static int s_key_find_str(const void *key, const void *elem)
{
	return strcmp(key, ((const struct s_key *)elem)->s);
}

static int s_key_find_int(const void *key, const void *elem)
{
	int32_t k = *(const int32_t *)key, n = ((const struct s_key *)elem)->n;

	return (k > n) - (k < n);
}

/* Sort the table's keys and report duplicates (ties sort by line, so the
 * report names the first occurrence). what names the key in messages. */
static void s_index_finish(struct s_loader *L, int t, const char *what)
{
	struct s_index *ix = &L->r->ix[t];
	int is_str = t != S_OUTCOMES && t != S_HOLIDAYS;

	if (!ix->n)
		return;
	qsort(ix->v, ix->n, sizeof(*ix->v), is_str ? s_key_cmp_str : s_key_cmp_int);
	/* Lookups by hash (strset.h); without memory for it, by bsearch. A
	 * duplicate keeps its first line's row, as the report below names it. */
	if (is_str && ix->n <= UINT32_MAX && yj_strset_init(&ix->set, ix->n) == 0) {
		for (size_t i = 0; i < ix->n; i++) {
			int rc = yj_strset_add(&ix->set, ix->v[i].s, (uint32_t)i);
			if (rc && rc != YJ_EEXIST) {
				yj_strset_free(&ix->set);
				break;
			}
		}
	}
	for (size_t i = 1; i < ix->n; i++) {
		const struct s_key *a = &ix->v[i - 1], *b = &ix->v[i];
		if (is_str && strcmp(a->s, b->s) == 0) {
			yj_diag_report(L->diag, L->label[t], b->line, "duplicate %s '%s' (first on line %d)", what,
				       b->s, a->line);
		} else if (!is_str && a->n == b->n) {
			if (t == S_HOLIDAYS) {
				int y;
				unsigned m, d;
				yj_civil_from_days(b->n, &y, &m, &d);
				yj_diag_report(L->diag, L->label[t], b->line,
					       "duplicate %s %04d-%02u-%02u (first on line %d)", what, y, m, d,
					       a->line);
			} else {
				yj_diag_report(L->diag, L->label[t], b->line, "duplicate %s %d (first on line %d)",
					       what, (int)b->n, a->line);
			}
		}
	}
}

static int s_index_add(struct s_loader *L, int t, const char *s, int32_t n, int line, size_t row)
{
	struct s_index *ix = &L->r->ix[t];

	if (ix->n == ix->cap) {
		size_t cap = ix->cap ? ix->cap * 2 : 64;
		struct s_key *v = realloc(ix->v, cap * sizeof(*v));
		if (!v)
			return YJ_ENOMEM;
		ix->v = v;
		ix->cap = cap;
	}
	ix->v[ix->n++] = (struct s_key){ .s = s, .n = n, .line = line, .row = row };
	return 0;
}

static const struct s_key *s_lookup_str(const struct s_index *ix, const char *s)
{
	if (!s || !ix->n)
		return NULL;
	if (ix->set.n) {
		int64_t i = yj_strset_get(&ix->set, s);
		return i < 0 ? NULL : &ix->v[i];
	}
	return bsearch(s, ix->v, ix->n, sizeof(*ix->v), s_key_find_str);
}

static const struct s_key *s_lookup_int(const struct s_index *ix, int32_t n)
{
	if (!ix->n)
		return NULL;
	return bsearch(&n, ix->v, ix->n, sizeof(*ix->v), s_key_find_int);
}

/* --- tables ------------------------------------------------------------- */

/* Each row parser validates one record on its own (cross-references come
 * later), reports what is wrong, and adds the row only when nothing is.
 * Returns 0 or YJ_ENOMEM. */
typedef int (*s_row_fn)(struct s_loader *L, struct s_csv *c, const size_t *col);

static int s_row_force(struct s_loader *L, struct s_csv *c, const size_t *col)
{
	struct yj_refdata *r = L->r;
	const char *code = c->f[col[0]], *name = c->f[col[1]];
	int bad = 0, rc;

	if (!s_is_gss(code) || (!s_has_prefix(code, "E23") && !s_has_prefix(code, "W15"))) {
		yj_diag_report(L->diag, c->file, c->rec_line, "code '%s' is not a police force area code (E23/W15)",
			       code);
		bad = 1;
	}
	if (!s_is_name(name)) {
		yj_diag_report(L->diag, c->file, c->rec_line, "name is empty or padded with spaces");
		bad = 1;
	}
	if (bad)
		return 0;
	if ((rc = s_grow(L, S_FORCES, (void **)&r->forces, r->n_forces, sizeof(*r->forces))))
		return rc;
	if ((rc = s_index_add(L, S_FORCES, code, 0, c->rec_line, r->n_forces)))
		return rc;
	L->lines[S_FORCES][r->n_forces] = c->rec_line;
	r->forces[r->n_forces++] = (struct yj_force){ .code = code, .name = name };
	return 0;
}

static int s_row_la(struct s_loader *L, struct s_csv *c, const size_t *col)
{
	struct yj_refdata *r = L->r;
	const char *code = c->f[col[0]], *name = c->f[col[1]], *tier = c->f[col[2]];
	const char *upper = c->f[col[3]], *force = c->f[col[4]];
	int bad = 0, rc, upper_tier = -1;

	if (!s_is_gss(code) || s_tier_of_code(code) < 0) {
		yj_diag_report(L->diag, c->file, c->rec_line,
			       "code '%s' is not a local authority code (E06/E07/E08/E09/E10/W06)", code);
		bad = 1;
	}
	if (!s_is_name(name)) {
		yj_diag_report(L->diag, c->file, c->rec_line, "name is empty or padded with spaces");
		bad = 1;
	}
	if (strcmp(tier, "upper") == 0) {
		upper_tier = 1;
	} else if (strcmp(tier, "lower") == 0) {
		upper_tier = 0;
	} else {
		yj_diag_report(L->diag, c->file, c->rec_line, "tier '%s' is neither 'upper' nor 'lower'", tier);
		bad = 1;
	}
	/* The tier is derivable from the code; a disagreement means the row is
	 * wrong, and routing to children's services depends on it. */
	if (!bad && upper_tier != s_tier_of_code(code)) {
		yj_diag_report(L->diag, c->file, c->rec_line, "%s is a %s-tier code but tier is '%s'", code,
			       s_tier_of_code(code) ? "upper" : "lower", tier);
		bad = 1;
	}
	if (!s_is_gss(upper)) {
		yj_diag_report(L->diag, c->file, c->rec_line, "upper_code '%s' is not a GSS code", upper);
		bad = 1;
	} else if (upper_tier == 1 && strcmp(upper, code) != 0) {
		yj_diag_report(L->diag, c->file, c->rec_line, "upper-tier %s must be its own upper_code, not %s",
			       code, upper);
		bad = 1;
	}
	if (!s_is_gss(force)) {
		yj_diag_report(L->diag, c->file, c->rec_line, "force '%s' is not a GSS code", force);
		bad = 1;
	}
	if (bad)
		return 0;
	if ((rc = s_grow(L, S_LAS, (void **)&r->las, r->n_las, sizeof(*r->las))))
		return rc;
	if ((rc = s_index_add(L, S_LAS, code, 0, c->rec_line, r->n_las)))
		return rc;
	L->lines[S_LAS][r->n_las] = c->rec_line;
	r->las[r->n_las++] = (struct yj_la){
		.code = code, .name = name, .upper_tier = upper_tier, .upper_code = upper, .force = force,
	};
	return 0;
}

static int s_row_suite(struct s_loader *L, struct s_csv *c, const size_t *col)
{
	struct yj_refdata *r = L->r;
	const char *id = c->f[col[0]], *name = c->f[col[1]], *force = c->f[col[2]], *la = c->f[col[3]];
	int bad = 0, rc;

	if (!s_is_token(id, 64)) {
		yj_diag_report(L->diag, c->file, c->rec_line,
			       "id '%s' must be 1-64 printable ASCII characters without spaces, commas or quotes", id);
		bad = 1;
	}
	if (!s_is_name(name)) {
		yj_diag_report(L->diag, c->file, c->rec_line, "name is empty or padded with spaces");
		bad = 1;
	}
	if (!s_is_gss(force)) {
		yj_diag_report(L->diag, c->file, c->rec_line, "force '%s' is not a GSS code", force);
		bad = 1;
	}
	if (!s_is_gss(la)) {
		yj_diag_report(L->diag, c->file, c->rec_line, "la '%s' is not a GSS code", la);
		bad = 1;
	}
	if (bad)
		return 0;
	if ((rc = s_grow(L, S_SUITES, (void **)&r->suites, r->n_suites, sizeof(*r->suites))))
		return rc;
	if ((rc = s_index_add(L, S_SUITES, id, 0, c->rec_line, r->n_suites)))
		return rc;
	L->lines[S_SUITES][r->n_suites] = c->rec_line;
	r->suites[r->n_suites++] = (struct yj_suite){ .id = id, .name = name, .force = force, .la = la };
	return 0;
}

static int s_row_outcome(struct s_loader *L, struct s_csv *c, const size_t *col)
{
	struct yj_refdata *r = L->r;
	const char *code_s = c->f[col[0]], *name = c->f[col[1]], *from_s = c->f[col[2]];
	const char *to_s = c->f[col[3]], *version = c->f[col[4]], *child_s = c->f[col[5]];
	int bad = 0, rc;
	long code = 0;
	int32_t from = 0, to = INT32_MAX;

	/* Digits only: "1A", " 3" and "+3" are not outcome numbers. */
	size_t nd = strspn(code_s, "0123456789");
	if (nd == 0 || nd > 4 || code_s[nd] || (code = strtol(code_s, NULL, 10)) < 1) {
		yj_diag_report(L->diag, c->file, c->rec_line, "code '%s' is not an outcome number 1-9999", code_s);
		bad = 1;
	}
	if (!s_is_name(name)) {
		yj_diag_report(L->diag, c->file, c->rec_line, "name is empty or padded with spaces");
		bad = 1;
	}
	if (s_parse_date(from_s, &from)) {
		yj_diag_report(L->diag, c->file, c->rec_line, "valid_from '%s' is not a YYYY-MM-DD date", from_s);
		bad = 1;
	}
	if (*to_s && s_parse_date(to_s, &to)) {
		yj_diag_report(L->diag, c->file, c->rec_line, "valid_to '%s' is not a YYYY-MM-DD date (or empty)",
			       to_s);
		bad = 1;
	} else if (!bad && to < from) {
		yj_diag_report(L->diag, c->file, c->rec_line, "valid_to %s is before valid_from %s", to_s, from_s);
		bad = 1;
	}
	if (!s_is_token(version, 32)) {
		yj_diag_report(L->diag, c->file, c->rec_line, "table_version '%s' must be a short token, e.g. 2024-25",
			       version);
		bad = 1;
	}
	/* Exactly yes or no: a blank must not quietly read as either. */
	int child = !strcmp(child_s, "yes") ? 1 : !strcmp(child_s, "no") ? 0 : -1;
	if (child < 0) {
		yj_diag_report(L->diag, c->file, c->rec_line, "applies_to_children '%s' must be yes or no", child_s);
		bad = 1;
	}
	if (bad)
		return 0;
	if ((rc = s_grow(L, S_OUTCOMES, (void **)&r->outcomes, r->n_outcomes, sizeof(*r->outcomes))))
		return rc;
	if ((rc = s_index_add(L, S_OUTCOMES, NULL, (int32_t)code, c->rec_line, r->n_outcomes)))
		return rc;
	L->lines[S_OUTCOMES][r->n_outcomes] = c->rec_line;
	r->outcomes[r->n_outcomes++] = (struct yj_outcome){
		.code = (int)code, .name = name, .valid_from = from, .valid_to = to, .table_version = version,
		.applies_to_children = child,
	};
	return 0;
}

static int s_row_ethnicity(struct s_loader *L, struct s_csv *c, const size_t *col)
{
	struct yj_refdata *r = L->r;
	const char *code = c->f[col[0]], *label = c->f[col[1]], *census = c->f[col[2]];
	int bad = 0, rc;

	if (!s_is_token(code, 8)) {
		yj_diag_report(L->diag, c->file, c->rec_line, "code '%s' must be 1-8 characters without spaces", code);
		bad = 1;
	}
	if (!s_is_name(label)) {
		yj_diag_report(L->diag, c->file, c->rec_line, "label is empty or padded with spaces");
		bad = 1;
	}
	/* census: census years separated by single spaces, e.g. "2011 2021". */
	const char *p = census;
	int years = 0;
	while (*p) {
		size_t n = strspn(p, "0123456789");
		if (n != 4 || (p[4] != ' ' && p[4] != '\0') || (p[4] == ' ' && p[5] == '\0'))
			break;
		years++;
		p += p[4] ? 5 : 4;
	}
	if (*p || !years) {
		yj_diag_report(L->diag, c->file, c->rec_line, "census '%s' must be years separated by spaces",
			       census);
		bad = 1;
	}
	if (bad)
		return 0;
	if ((rc = s_grow(L, S_ETHNICITY, (void **)&r->eths, r->n_eths, sizeof(*r->eths))))
		return rc;
	if ((rc = s_index_add(L, S_ETHNICITY, code, 0, c->rec_line, r->n_eths)))
		return rc;
	L->lines[S_ETHNICITY][r->n_eths] = c->rec_line;
	r->eths[r->n_eths++] = (struct yj_ethnicity){ .code = code, .label = label, .census = census };
	return 0;
}

static int s_row_holiday(struct s_loader *L, struct s_csv *c, const size_t *col)
{
	const char *date = c->f[col[0]], *title = c->f[col[1]];
	int32_t day;
	int bad = 0;

	if (s_parse_date(date, &day)) {
		yj_diag_report(L->diag, c->file, c->rec_line, "date '%s' is not a YYYY-MM-DD date", date);
		bad = 1;
	}
	if (!s_is_name(title)) {
		yj_diag_report(L->diag, c->file, c->rec_line, "title is empty or padded with spaces");
		bad = 1;
	}
	if (bad)
		return 0;
	return s_index_add(L, S_HOLIDAYS, NULL, day, c->rec_line, L->r->ix[S_HOLIDAYS].n);
}

struct s_table {
	const char *const *cols;
	size_t n_cols;
	s_row_fn row;
	const char *key_name;  /* the key, in duplicate reports */
};

static const char *const s_cols_forces[] = { "code", "name" };
static const char *const s_cols_las[] = { "code", "name", "tier", "upper_code", "force" };
static const char *const s_cols_suites[] = { "id", "name", "force", "la" };
static const char *const s_cols_outcomes[] = { "code", "name", "valid_from", "valid_to", "table_version",
					       "applies_to_children" };
static const char *const s_cols_ethnicity[] = { "code", "label", "census" };
static const char *const s_cols_holidays[] = { "date", "title" };

#define S_NCOLS(a) (sizeof(a) / sizeof((a)[0]))

/* In S_* order: forces before the tables that refer to them. */
static const struct s_table s_tables[S_NTABLES] = {
	[S_FORCES] = { s_cols_forces, S_NCOLS(s_cols_forces), s_row_force, "code" },
	[S_LAS] = { s_cols_las, S_NCOLS(s_cols_las), s_row_la, "code" },
	[S_SUITES] = { s_cols_suites, S_NCOLS(s_cols_suites), s_row_suite, "id" },
	[S_OUTCOMES] = { s_cols_outcomes, S_NCOLS(s_cols_outcomes), s_row_outcome, "code" },
	[S_ETHNICITY] = { s_cols_ethnicity, S_NCOLS(s_cols_ethnicity), s_row_ethnicity, "code" },
	[S_HOLIDAYS] = { s_cols_holidays, S_NCOLS(s_cols_holidays), s_row_holiday, "date" },
};

/* Read, parse and index one table. Returns 0 (problems, if any, reported),
 * or YJ_ENOMEM / YJ_EIO, which stop the load. */
static int s_load_table(struct s_loader *L, int t, const struct s_table *tab)
{
	struct s_csv c = { .diag = L->diag, .line = 1 };
	size_t col[S_NCOLS(s_cols_outcomes)];  /* the widest table */
	char *buf = NULL;
	size_t len = 0;
	int rc, before = L->diag->count;

	rc = s_read(L, t, &buf, &len);
	if (rc == YJ_ECONFIG)
		rc = 0;  /* reported; the table stays unusable */
	if (rc || !buf)
		goto out;
	L->r->buf[t] = buf;
	c.file = L->label[t];
	c.p = buf;
	c.end = buf + len;
	/* A UTF-8 byte order mark from a spreadsheet export is not part of the
	 * first column's name. */
	if (len >= 3 && memcmp(buf, "\xef\xbb\xbf", 3) == 0)
		c.p += 3;
	rc = s_csv_header(&c, tab->cols, tab->n_cols, col);
	if (rc == YJ_ECONFIG) {
		rc = 0;
		goto out;
	}
	if (rc)
		goto out;
	while ((rc = s_csv_next(&c)) == S_REC_OK) {
		if ((rc = tab->row(L, &c, col)))
			goto out;
	}
	if (rc < 0)
		goto out;
	rc = 0;
	if (L->r->ix[t].n == 0)
		yj_diag_report(L->diag, c.file, 0, "no valid rows");
	s_index_finish(L, t, tab->key_name);
	L->clean[t] = L->diag->count == before;
out:
	free(c.f);
	return rc;
}

/* --- cross-references --------------------------------------------------- */

static void s_check_refs(struct s_loader *L)
{
	const struct yj_refdata *r = L->r;
	const char *la_file = L->label[S_LAS], *suite_file = L->label[S_SUITES];

	for (size_t i = 0; i < r->n_las; i++) {
		const struct yj_la *la = &r->las[i];
		int line = L->lines[S_LAS][i];
		int force_known = !L->clean[S_FORCES] || s_lookup_str(&r->ix[S_FORCES], la->force);
		if (!force_known)
			yj_diag_report(L->diag, la_file, line, "%s: force %s is not in forces.csv", la->code, la->force);
		if (la->upper_tier || !L->clean[S_LAS])
			continue;
		const struct s_key *k = s_lookup_str(&r->ix[S_LAS], la->upper_code);
		if (!k) {
			yj_diag_report(L->diag, la_file, line, "%s: upper_code %s is not in local_authorities.csv",
				       la->code, la->upper_code);
			continue;
		}
		const struct yj_la *up = &r->las[k->row];
		if (!up->upper_tier) {
			yj_diag_report(L->diag, la_file, line, "%s: upper_code %s is a lower-tier authority", la->code,
				       up->code);
		} else if (force_known && strcmp(up->force, la->force) != 0) {
			/* Routing goes by the upper tier's force; a district in another
			 * force would be routed to the wrong one. */
			yj_diag_report(L->diag, la_file, line, "%s is in force %s but its upper tier %s is in %s",
				       la->code, la->force, up->code, up->force);
		}
	}
	for (size_t i = 0; i < r->n_suites; i++) {
		const struct yj_suite *s = &r->suites[i];
		int line = L->lines[S_SUITES][i];
		if (L->clean[S_FORCES] && !s_lookup_str(&r->ix[S_FORCES], s->force))
			yj_diag_report(L->diag, suite_file, line, "%s: force %s is not in forces.csv", s->id, s->force);
		if (!L->clean[S_LAS])
			continue;
		const struct s_key *k = s_lookup_str(&r->ix[S_LAS], s->la);
		if (!k)
			yj_diag_report(L->diag, suite_file, line, "%s: la %s is not in local_authorities.csv", s->id,
				       s->la);
		else if (!r->las[k->row].upper_tier)
			yj_diag_report(L->diag, suite_file, line,
				       "%s: la %s is a lower-tier authority; give its upper tier %s", s->id, s->la,
				       r->las[k->row].upper_code);
	}
}

/* --- public ------------------------------------------------------------- */

int yj_refdata_load(const char *dir, struct yj_diag *diag, struct yj_refdata **out)
{
	struct yj_diag stderr_diag = { 0 };
	struct s_loader L = { .dir = dir, .diag = diag ? diag : &stderr_diag };
	int rc, first_count;

	if (!out)
		return YJ_EINVAL;
	*out = NULL;
	first_count = L.diag->count;
	if (!(L.r = calloc(1, sizeof(*L.r))))
		return YJ_ENOMEM;
	for (int t = 0; t < S_NTABLES; t++) {
		if ((rc = s_load_table(&L, t, &s_tables[t])))
			goto out;
	}
	s_check_refs(&L);
	rc = L.diag->count != first_count ? YJ_ECONFIG : 0;
out:
	for (int t = 0; t < S_NTABLES; t++) {
		free(L.label[t]);
		free(L.lines[t]);
	}
	if (rc)
		yj_refdata_free(&L.r);
	*out = L.r;
	return rc;
}

void yj_refdata_free(struct yj_refdata **ref)
{
	struct yj_refdata *r;

	if (!ref || !(r = *ref))
		return;
	for (int t = 0; t < S_NTABLES; t++) {
		free(r->buf[t]);
		free(r->ix[t].v);
		yj_strset_free(&r->ix[t].set);
	}
	free(r->forces);
	free(r->las);
	free(r->suites);
	free(r->outcomes);
	free(r->eths);
	free(r);
	*ref = NULL;
}

const struct yj_force *yj_ref_force(const struct yj_refdata *ref, const char *code)
{
	const struct s_key *k = ref ? s_lookup_str(&ref->ix[S_FORCES], code) : NULL;

	return k ? &ref->forces[k->row] : NULL;
}

const struct yj_la *yj_ref_la(const struct yj_refdata *ref, const char *code)
{
	const struct s_key *k = ref ? s_lookup_str(&ref->ix[S_LAS], code) : NULL;

	return k ? &ref->las[k->row] : NULL;
}

const struct yj_suite *yj_ref_suite(const struct yj_refdata *ref, const char *id)
{
	const struct s_key *k = ref ? s_lookup_str(&ref->ix[S_SUITES], id) : NULL;

	return k ? &ref->suites[k->row] : NULL;
}

const struct yj_outcome *yj_ref_outcome(const struct yj_refdata *ref, int code)
{
	const struct s_key *k = ref ? s_lookup_int(&ref->ix[S_OUTCOMES], (int32_t)code) : NULL;

	return k ? &ref->outcomes[k->row] : NULL;
}

const struct yj_ethnicity *yj_ref_ethnicity(const struct yj_refdata *ref, const char *code)
{
	const struct s_key *k = ref ? s_lookup_str(&ref->ix[S_ETHNICITY], code) : NULL;

	return k ? &ref->eths[k->row] : NULL;
}

int yj_ref_is_bank_holiday(const struct yj_refdata *ref, int32_t day)
{
	return ref && s_lookup_int(&ref->ix[S_HOLIDAYS], day) != NULL;
}

const struct yj_force *yj_ref_force_at(const struct yj_refdata *ref, size_t i)
{
	return ref && i < ref->n_forces ? &ref->forces[i] : NULL;
}

const struct yj_la *yj_ref_la_at(const struct yj_refdata *ref, size_t i)
{
	return ref && i < ref->n_las ? &ref->las[i] : NULL;
}

const struct yj_suite *yj_ref_suite_at(const struct yj_refdata *ref, size_t i)
{
	return ref && i < ref->n_suites ? &ref->suites[i] : NULL;
}

const struct yj_outcome *yj_ref_outcome_at(const struct yj_refdata *ref, size_t i)
{
	return ref && i < ref->n_outcomes ? &ref->outcomes[i] : NULL;
}

const struct yj_ethnicity *yj_ref_ethnicity_at(const struct yj_refdata *ref, size_t i)
{
	return ref && i < ref->n_eths ? &ref->eths[i] : NULL;
}
