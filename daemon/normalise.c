/* normalise.c: see normalise.h.
 *
 * One pipeline per content type, both ending in the same struct checks:
 *
 *   JSON:     raw pre-pass (UTF-8, NUL, \u0000, lone surrogates, depth,
 *             bytes cJSON would wrongly let through) -> cJSON's tree, read
 *             by json_tree.c as cJSON reads it -> end
 *             and duplicate-key checks -> schema walk filling the event.
 *   protobuf: protobuf-c unpack into the arena -> a wire walk checking every
 *             string's UTF-8 (protobuf-c copies strings blindly) -> schema
 *             walk over the unpacked struct.
 *
 * Both schema walks call the same per-field checks (s_check_*) as each field
 * is reached, so "first problem in document order" holds for JSON, and the
 * same value rules apply whatever the content type. Cross-field rules and
 * out_of_scope run last (s_check_event).
 *
 * The JSON walk is driven by the protobuf-c descriptors: the field names of
 * interfaces.md §2 are exactly the .proto field names, so one table of extra
 * rules per message (s_rules) is all the schema the code carries.
 *
 * Choices where the spec is silent:
 * - JSON null is the wrong type (schema) for every field, required or not:
 *   a sender that means "absent" leaves the field out, and null for a
 *   required field must not slip through as "missing" with a weaker code.
 * - outcome.code: a JSON number that is not an integer, or outside int32,
 *   is a value error (right JSON type, bad value); a string is schema.
 * - offences items: `code` is required, `description` optional.
 * - An empty optional free-text string is kept as given; an empty coded or
 *   formatted field (pnc_id, postcode, email, codes) is a value error.
 * - date_of_birth is "in the future" when it is after today's date in the
 *   easternmost time zone (UTC+14), so no sender's local today is refused.
 * - outcome.offence_date after the local date of decided_at is a value error.
 * - outcome.code must be valid (valid_from..valid_to, both inclusive) on the
 *   local date of decided_at.
 * - Timestamps: fractions beyond microseconds are truncated; a leap second
 *   (:60) is a value error; "-00:00" is read as UTC.
 * - Postcodes: any case, with no space or exactly one before the inward code.
 * - Emails: ASCII only, one @, a dotted domain (no internationalised forms).
 * - The suite is not required to belong to the reporting force.
 * - Encoding errors carry no field path ("" ): the pre-pass sees bytes, not
 *   fields.
 * - A UTF-8 byte order mark before the JSON value is ignored (RFC 8259 §8.1
 *   allows it; cJSON skips it).
 */
#include "normalise.h"

#include <cjson/cJSON.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "json_tree.h"
#include "strjoin.h"

#define S_MAX_DEPTH 16          /* interfaces.md §1: deeper nesting is syntax */
#define S_MAX_OFFENCES 20
#define S_TEXT_MAX 256          /* default string limit of §2 */
#define S_FUTURE_SLACK_US (INT64_C(5) * 60 * 1000000)
#define S_US_PER_DAY INT64_C(86400000000)
#define S_US_PER_MIN INT64_C(60000000)
#define S_MAX_OFFSET_MIN (23 * 60 + 59)
#define S_FRAMES 24
#define S_SMALL_OBJECT 16       /* above this many keys, duplicates are found by hashing */
#define S_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* ---------------------------------------------------------------- names */

static const char *const s_feed_names[YJ_FEED_COUNT] = {
	[YJ_FEED_CUSTODY] = "custody",
	[YJ_FEED_ARREST] = "arrest",
	[YJ_FEED_VOLUNTARY_INTERVIEW] = "voluntary_interview",
	[YJ_FEED_OUTCOME] = "outcome",
};

static const char *const s_reject_names[] = {
	[YJ_REJ_PROTOCOL] = "protocol",
	[YJ_REJ_TOO_LARGE] = "too_large",
	[YJ_REJ_ENCODING] = "encoding",
	[YJ_REJ_SYNTAX] = "syntax",
	[YJ_REJ_SCHEMA] = "schema",
	[YJ_REJ_VALUE] = "value",
	[YJ_REJ_OUT_OF_SCOPE] = "out_of_scope",
	[YJ_REJ_CONFLICT] = "conflict",
	[YJ_REJ_FORBIDDEN] = "forbidden",
};

static bool s_eq(const char *a, size_t alen, const char *b)
{
	size_t blen = strlen(b);
	return alen == blen && memcmp(a, b, alen) == 0;
}

enum yj_feed yj_feed_from_name(const char *name, size_t len)
{
	if (!name)
		return YJ_FEED_NONE;
	for (int f = YJ_FEED_CUSTODY; f < YJ_FEED_COUNT; f++) {
		if (s_eq(name, len, s_feed_names[f]))
			return (enum yj_feed)f;
	}
	return YJ_FEED_NONE;
}

/* "" rather than NULL for YJ_FEED_NONE: callers put it in metrics and
 * records without a NULL check. */
const char *yj_feed_name(enum yj_feed feed)
{
	if (feed <= YJ_FEED_NONE || feed >= YJ_FEED_COUNT)
		return "";
	return s_feed_names[feed];
}

enum yj_content_type yj_content_type_from_name(const char *name, size_t len)
{
	if (!name)
		return YJ_CT_NONE;
	if (s_eq(name, len, "application/json"))
		return YJ_CT_JSON;
	if (s_eq(name, len, "application/x-protobuf"))
		return YJ_CT_PROTOBUF;
	return YJ_CT_NONE;
}

const char *yj_content_type_name(enum yj_content_type ct)
{
	switch (ct) {
	case YJ_CT_JSON: return "application/json";
	case YJ_CT_PROTOBUF: return "application/x-protobuf";
	default: return "";
	}
}

const char *yj_reject_code_name(enum yj_reject_code code)
{
	if (code <= YJ_REJ_NONE || code > YJ_REJ_FORBIDDEN)
		return "";
	return s_reject_names[code];
}

/* -------------------------------------------------------------- UTF-8 */

/* Length of the valid UTF-8 sequence at p (1..4), 0 when invalid: no
 * overlongs, no surrogates, nothing above U+10FFFF. */
static size_t s_utf8_seq(const unsigned char *p, size_t n)
{
	unsigned c = p[0];
	if (c < 0x80)
		return 1;
	if (c < 0xC2)
		return 0;
	if (c < 0xE0)
		return n >= 2 && (p[1] & 0xC0) == 0x80 ? 2 : 0;
	if (c < 0xF0) {
		if (n < 3 || (p[2] & 0xC0) != 0x80)
			return 0;
		unsigned lo = c == 0xE0 ? 0xA0 : 0x80, hi = c == 0xED ? 0x9F : 0xBF;
		return p[1] >= lo && p[1] <= hi ? 3 : 0;
	}
	if (c < 0xF5) {
		if (n < 4 || (p[2] & 0xC0) != 0x80 || (p[3] & 0xC0) != 0x80)
			return 0;
		unsigned lo = c == 0xF0 ? 0x90 : 0x80, hi = c == 0xF4 ? 0x8F : 0xBF;
		return p[1] >= lo && p[1] <= hi ? 4 : 0;
	}
	return 0;
}

/* 1 when p[0..n) is valid UTF-8 holding no NUL. */
static bool s_utf8_text(const unsigned char *p, size_t n)
{
	size_t i = 0;
	while (i < n) {
		if (p[i] - 1u < 0x7Fu) {  /* 0x01..0x7F */
			i++;
			continue;
		}
		size_t k = p[i] ? s_utf8_seq(p + i, n - i) : 0;
		if (!k)
			return false;
		i += k;
	}
	return true;
}

/* Cut s (NUL-terminated, in a buffer) so it does not end inside a UTF-8
 * sequence: snprintf truncation may have split one. */
static void s_utf8_trim(char *s)
{
	size_t n = strlen(s), i = n;
	while (i > 0 && ((unsigned char)s[i - 1] & 0xC0) == 0x80 && n - i < 3)
		i--;
	if (i > 0 && (unsigned char)s[i - 1] >= 0xC0) {
		size_t start = i - 1;
		if (s_utf8_seq((const unsigned char *)s + start, n - start) != n - start)
			s[start] = '\0';
	}
}

/* ------------------------------------------------------------- refusal */

static void s_reject_v(struct yj_reject *r, enum yj_reject_code code, const char *field, const char *fmt,
		       va_list ap)
{
	if (code == YJ_REJ_NONE || (r->code != YJ_REJ_NONE && r->code <= code))
		return;
	r->code = code;
	snprintf(r->field, sizeof(r->field), "%s", field ? field : "");
	s_utf8_trim(r->field);
	vsnprintf(r->reason, sizeof(r->reason), fmt, ap);
	s_utf8_trim(r->reason);
}

void yj_reject_set(struct yj_reject *r, enum yj_reject_code code, const char *field, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	s_reject_v(r, code, field, fmt, ap);
	va_end(ap);
}

/* ------------------------------------------------------------- context */

struct s_frame {
	const char *name;  /* object key, or NULL for an array index */
	size_t index;      /* array index when name is NULL */
};

struct s_ctx {
	const struct yj_norm_opts *opts;  /* borrowed */
	struct yj_arena *arena;           /* where the event is built */
	struct yj_arena *tree;            /* where the JSON tree is read */
	struct yj_reject *rej;            /* the result's refusal */
	enum yj_feed feed;                /* feed named in the request */
	uint32_t body_id;                 /* Event field number of the feed's object */
	int rc;                           /* sticky YJ_ENOMEM */
	unsigned depth;                   /* frames in use (may exceed S_FRAMES) */
	struct s_frame fr[S_FRAMES];      /* path to the object being walked */
};

static void s_push(struct s_ctx *c, const char *name, size_t index)
{
	if (c->depth < S_FRAMES)
		c->fr[c->depth] = (struct s_frame){ name, index };
	c->depth++;
}

static void s_pop(struct s_ctx *c) { c->depth--; }

static void s_append(char *buf, size_t size, size_t *n, const char *s)
{
	size_t k = strlen(s);
	if (k > size - 1 - *n)
		k = size - 1 - *n;
	memcpy(buf + *n, s, k);
	*n += k;
	buf[*n] = '\0';
}

/* An unknown key as the sender wrote it may hold anything (a newline, a
 * log priority, a name): in a field path it is cut to 64 bytes, upper case
 * becomes lower case and every other byte outside [a-z0-9_.] becomes '_'
 * (an empty key is "_"), so every path stays [a-z0-9_.]. */
static const char *s_safe_key(const char *key, char *buf, size_t size)
{
	size_t n = 0;
	for (const unsigned char *p = (const unsigned char *)key; *p && n + 1 < size && n < 64; p++) {
		int ok = (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_' || *p == '.';
		buf[n++] = ok ? (char)*p : (*p >= 'A' && *p <= 'Z') ? (char)(*p - 'A' + 'a') : '_';
	}
	if (n == 0)
		buf[n++] = '_';  /* an empty key still names a path segment */
	/* A dot only between two non-empty segments. */
	for (size_t i = 0; i < n; i++) {
		if (buf[i] == '.' && (i == 0 || i == n - 1 || buf[i - 1] == '.'))
			buf[i] = '_';
	}
	buf[n] = '\0';
	return buf;
}

/* Every segment goes through s_safe_key: a path may run through keys the
 * sender made up (an unknown object's members). */
static void s_path_add(char *buf, size_t size, size_t *n, const char *name, size_t index)
{
	char num[24], safe[80];
	if (*n)
		s_append(buf, size, n, ".");
	if (!name) {
		snprintf(num, sizeof(num), "%zu", index);
		name = num;
	}
	s_append(buf, size, n, s_safe_key(name, safe, sizeof(safe)));
}


/* Report a problem at the current path plus leaf (NULL: the current path).
 * The path is only built when the problem can still win. */
__attribute__((format(printf, 4, 5)))
static void s_rej(struct s_ctx *c, enum yj_reject_code code, const char *leaf, const char *fmt, ...)
{
	char path[sizeof(c->rej->field)];
	size_t n = 0;
	va_list ap;

	if (c->rej->code != YJ_REJ_NONE && c->rej->code <= code)
		return;
	path[0] = '\0';
	unsigned d = c->depth < S_FRAMES ? c->depth : S_FRAMES;
	for (unsigned i = 0; i < d; i++)
		s_path_add(path, sizeof(path), &n, c->fr[i].name, c->fr[i].index);
	if (leaf)
		s_path_add(path, sizeof(path), &n, leaf, 0);
	/* A path cut at the buffer's end must not end on a separator. */
	n = strnlen(path, sizeof(path));
	while (n > 0 && path[n - 1] == '.')
		path[--n] = '\0';
	va_start(ap, fmt);
	s_reject_v(c->rej, code, path, fmt, ap);
	va_end(ap);
}

/* Once a value error is recorded, no later value or out_of_scope finding
 * can win; only schema problems still need looking for. */
static bool s_value_decided(const struct s_ctx *c)
{
	return c->rej->code != YJ_REJ_NONE && c->rej->code <= YJ_REJ_VALUE;
}

static void *s_alloc(struct s_ctx *c, size_t size)
{
	void *p = yj_arena_alloc(c->arena, size);
	if (!p)
		c->rc = YJ_ENOMEM;
	return p;
}

static ProtobufCMessage *s_new_msg(struct s_ctx *c, const ProtobufCMessageDescriptor *md)
{
	ProtobufCMessage *m = s_alloc(c, md->sizeof_message);
	if (m)
		md->message_init(m);
	return m;
}

/* A reference-table code echoed in a reason: short printable codes only,
 * so a reason never carries free text, which could be personal data. Enum
 * values are not echoed: a name typed into the wrong field would be. */
static const char *s_echo(const char *s, char *buf, size_t size)
{
	size_t n = strlen(s);
	if (n == 0 || n > 24)
		return "";
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)s[i];
		if (!((ch >= '0' && ch <= '9') || (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
		      ch == '-' || ch == '_' || ch == '/' || ch == '.'))
			return "";
	}
	snprintf(buf, size, " '%s'", s);
	return buf;
}

/* --------------------------------------------------------- dates, times */

static int s_num(const char *s, int k)
{
	int v = 0;
	for (int i = 0; i < k; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	return v;
}

static bool s_date_ok(int y, int m, int d)
{
	static const unsigned char mdays[12] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	if (y < 0 || m < 1 || m > 12 || d < 1)
		return false;
	int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
	return d <= mdays[m - 1] + (m == 2 && leap);
}

/* "YYYY-MM-DD" into days since 1970-01-01. */
static int s_parse_date(const char *s, int32_t *days)
{
	if (strlen(s) != 10 || s[4] != '-' || s[7] != '-')
		return YJ_EINVAL;
	int y = s_num(s, 4), m = s_num(s + 5, 2), d = s_num(s + 8, 2);
	if (!s_date_ok(y, m, d))
		return YJ_EINVAL;
	*days = yj_days_from_civil(y, (unsigned)m, (unsigned)d);
	return 0;
}

static int64_t s_floor_div(int64_t a, int64_t b)
{
	int64_t q = a / b;
	return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

/* The date a timestamp has in the offset it was written in. */
static int32_t s_local_day(const Yjlink__V1__Time *t)
{
	return (int32_t)s_floor_div(t->unix_us + (int64_t)t->offset_minutes * S_US_PER_MIN, S_US_PER_DAY);
}

int yj_time_parse(const char *s, size_t len, int64_t *unix_us, int32_t *offset_minutes)
{
	if (!s || len < 20 || s[4] != '-' || s[7] != '-' || (s[10] != 'T' && s[10] != 't') || s[13] != ':' ||
	    s[16] != ':')
		return YJ_EINVAL;
	int y = s_num(s, 4), mo = s_num(s + 5, 2), d = s_num(s + 8, 2);
	int h = s_num(s + 11, 2), mi = s_num(s + 14, 2), se = s_num(s + 17, 2);
	if (!s_date_ok(y, mo, d) || h < 0 || h > 23 || mi < 0 || mi > 59 || se < 0 || se > 59)
		return YJ_EINVAL;

	size_t i = 19;
	int64_t frac = 0;
	if (s[i] == '.') {
		int64_t scale = 100000;
		size_t k = 0;
		for (i++; i < len && s[i] >= '0' && s[i] <= '9'; i++, k++) {
			frac += (s[i] - '0') * scale;  /* digits past the 6th add 0: truncated */
			scale /= 10;
		}
		/* RFC 3339 allows any number of digits (the field's length bounds them). */
		if (k == 0)
			return YJ_EINVAL;
	}
	if (i >= len)
		return YJ_EINVAL;  /* no offset: a local time we cannot place */
	int off;
	if (s[i] == 'Z' || s[i] == 'z') {
		off = 0;
		i++;
	} else if (s[i] == '+' || s[i] == '-') {
		if (len - i < 6 || s[i + 3] != ':')
			return YJ_EINVAL;
		int oh = s_num(s + i + 1, 2), om = s_num(s + i + 4, 2);
		if (oh < 0 || oh > 23 || om < 0 || om > 59)
			return YJ_EINVAL;
		off = (s[i] == '-' ? -1 : 1) * (oh * 60 + om);
		i += 6;
	} else {
		return YJ_EINVAL;
	}
	if (i != len)
		return YJ_EINVAL;
	int64_t secs = (int64_t)yj_days_from_civil(y, (unsigned)mo, (unsigned)d) * 86400 + h * 3600 + mi * 60 + se -
		       (int64_t)off * 60;
	*unix_us = secs * 1000000 + frac;
	*offset_minutes = off;
	return 0;
}

size_t yj_time_format(const Yjlink__V1__Time *t, char *buf, size_t size)
{
	int64_t local;
	int off = t->offset_minutes;
	char frac[16] = "", zone[16] = "Z";

	if (!size)
		return 0;
	if (off < -S_MAX_OFFSET_MIN || off > S_MAX_OFFSET_MIN ||
	    __builtin_add_overflow(t->unix_us, (int64_t)off * S_US_PER_MIN, &local))
		off = 0, local = t->unix_us;  /* only stored, checked times reach here; stay defined anyway */
	int64_t days = s_floor_div(local, S_US_PER_DAY);
	int64_t rem = local - days * S_US_PER_DAY;
	int y;
	unsigned m, d;
	yj_civil_from_days((int32_t)days, &y, &m, &d);
	unsigned us = (unsigned)(rem % 1000000) % 1000000u, sec = (unsigned)(rem / 1000000) % 86400u;
	if (us) {
		int digits = 6;
		for (; us % 10 == 0; us /= 10)
			digits--;
		snprintf(frac, sizeof(frac), ".%0*u", digits, us);
	}
	if (off)
		snprintf(zone, sizeof(zone), "%c%02d:%02d", off < 0 ? '-' : '+', abs(off) / 60, abs(off) % 60);
	int n = snprintf(buf, size, "%04d-%02u-%02uT%02u:%02u:%02u%s%s", y, m, d, sec / 3600, sec / 60 % 60, sec % 60,
			 frac, zone);
	if (n < 0)
		return 0;
	return (size_t)n < size ? (size_t)n : size - 1;
}

/* ------------------------------------------------------------ accessors */

static uint32_t s_feed_body(enum yj_feed feed)
{
	switch (feed) {
	case YJ_FEED_CUSTODY: return YJLINK__V1__EVENT__BODY_CUSTODY;
	case YJ_FEED_ARREST: return YJLINK__V1__EVENT__BODY_ARREST;
	case YJ_FEED_VOLUNTARY_INTERVIEW: return YJLINK__V1__EVENT__BODY_INTERVIEW;
	case YJ_FEED_OUTCOME: return YJLINK__V1__EVENT__BODY_OUTCOME;
	default: return 0;
	}
}

enum yj_feed yj_event_feed(const Yjlink__V1__Event *ev)
{
	switch (ev ? ev->body_case : YJLINK__V1__EVENT__BODY__NOT_SET) {
	case YJLINK__V1__EVENT__BODY_CUSTODY: return YJ_FEED_CUSTODY;
	case YJLINK__V1__EVENT__BODY_ARREST: return YJ_FEED_ARREST;
	case YJLINK__V1__EVENT__BODY_INTERVIEW: return YJ_FEED_VOLUNTARY_INTERVIEW;
	case YJLINK__V1__EVENT__BODY_OUTCOME: return YJ_FEED_OUTCOME;
	default: return YJ_FEED_NONE;
	}
}

size_t yj_event_child_id(const Yjlink__V1__Event *ev, char *buf, size_t size)
{
	if (!size)
		return 0;
	const char *force = ev && ev->force ? ev->force : "";
	const char *pid = ev && ev->child && ev->child->person_id ? ev->child->person_id : "";
	size_t n = yj_strjoin_sep(buf, size, force, '/', pid);
	return n < size ? n : size - 1;
}

/* ---------------------------------------------------------------- rules */

enum s_check {
	CK_TEXT = 0,          /* free text: length only */
	CK_SOURCE_ID,
	CK_FORCE,
	CK_OCCURRED,          /* a timestamp at most 5 minutes ahead of the clock */
	CK_TIME,
	CK_DOB,
	CK_DATE,
	CK_PNC,
	CK_GENDER,
	CK_ETHNICITY,
	CK_LA_UPPER,
	CK_LA,
	CK_POSTCODE,
	CK_EMAIL,
	CK_SUITE,
	CK_CUSTODY_STATUS,
	CK_INTERVIEW_STATUS,
	CK_OUTCOME_CODE,
	CK_DISPOSAL,
};

struct s_rule {
	unsigned char req;    /* 1: missing is REJECT schema */
	unsigned char check;  /* enum s_check */
	unsigned short max;   /* longest string in bytes; 0: S_TEXT_MAX */
};

/* Indexed by field number. The feed objects (Event 10..13) are required by
 * feed, which s_required decides. */
static const struct s_rule s_r_event[] = {
	[1] = { 1, CK_SOURCE_ID, 128 }, [2] = { 1, CK_FORCE, 0 }, [3] = { 1, CK_OCCURRED, 0 },
	[4] = { 1, CK_TEXT, 0 },
};
static const struct s_rule s_r_child[] = {
	[1] = { 1, CK_TEXT, 0 },      [2] = { 0, CK_PNC, 0 },       [3] = { 1, CK_TEXT, 0 },
	[4] = { 1, CK_TEXT, 0 },      [5] = { 0, CK_DOB, 0 },       [6] = { 0, CK_GENDER, 0 },
	[7] = { 0, CK_ETHNICITY, 0 }, [8] = { 0, CK_LA_UPPER, 0 },  [9] = { 0, CK_POSTCODE, 0 },
	[11] = { 0, CK_LA_UPPER, 0 }, [12] = { 0, CK_TEXT, 0 },
};
static const struct s_rule s_r_social_worker[] = { [2] = { 0, CK_EMAIL, 0 }, [3] = { 0, CK_TEXT, 0 } };
static const struct s_rule s_r_offence[] = { [1] = { 1, CK_TEXT, 0 }, [2] = { 0, CK_TEXT, 0 } };
static const struct s_rule s_r_appropriate_adult[] = { [3] = { 0, CK_TIME, 0 }, [4] = { 0, CK_TIME, 0 } };
static const struct s_rule s_r_custody[] = {
	[1] = { 1, CK_TEXT, 0 }, [2] = { 1, CK_SUITE, 0 }, [3] = { 1, CK_TIME, 0 },     [4] = { 1, CK_CUSTODY_STATUS, 0 },
	[5] = { 1, CK_TIME, 0 }, [6] = { 0, CK_TEXT, 0 },  [7] = { 0, CK_TEXT, 0 },     [8] = { 0, CK_TEXT, 1024 },
};
static const struct s_rule s_r_arrest[] = {
	[1] = { 1, CK_TEXT, 0 }, [2] = { 1, CK_TIME, 0 }, [4] = { 0, CK_LA, 0 }, [5] = { 0, CK_TEXT, 0 },
};
static const struct s_rule s_r_interview[] = {
	[1] = { 1, CK_TEXT, 0 }, [2] = { 1, CK_INTERVIEW_STATUS, 0 }, [3] = { 1, CK_TIME, 0 }, [4] = { 0, CK_TEXT, 0 },
};
static const struct s_rule s_r_outcome[] = {
	[1] = { 1, CK_TEXT, 0 }, [3] = { 1, CK_OUTCOME_CODE, 0 }, [4] = { 1, CK_TIME, 0 },
	[5] = { 0, CK_DATE, 0 }, [6] = { 0, CK_DISPOSAL, 0 },
};
static const struct s_rule s_r_none[] = { [0] = { 0, CK_TEXT, 0 } };

struct s_rules {
	const ProtobufCMessageDescriptor *md;  /* message the table is for */
	const struct s_rule *r;                /* by field number */
	size_t n;                              /* entries in r */
};

#define S_RULES(d, t) { &d, t, S_ARRAY_SIZE(t) }
static const struct s_rules s_rules_by_msg[] = {
	S_RULES(yjlink__v1__event__descriptor, s_r_event),
	S_RULES(yjlink__v1__child__descriptor, s_r_child),
	S_RULES(yjlink__v1__social_worker__descriptor, s_r_social_worker),
	S_RULES(yjlink__v1__offence__descriptor, s_r_offence),
	S_RULES(yjlink__v1__markers__descriptor, s_r_none),
	S_RULES(yjlink__v1__appropriate_adult__descriptor, s_r_appropriate_adult),
	S_RULES(yjlink__v1__custody__descriptor, s_r_custody),
	S_RULES(yjlink__v1__arrest__descriptor, s_r_arrest),
	S_RULES(yjlink__v1__interview__descriptor, s_r_interview),
	S_RULES(yjlink__v1__outcome__descriptor, s_r_outcome),
};
static const struct s_rules s_no_rules = { NULL, s_r_none, 1 };

static const struct s_rules *s_rules_for(const ProtobufCMessageDescriptor *md)
{
	for (size_t i = 0; i < S_ARRAY_SIZE(s_rules_by_msg); i++) {
		if (s_rules_by_msg[i].md == md)
			return &s_rules_by_msg[i];
	}
	return &s_no_rules;
}

static struct s_rule s_rule(const struct s_rules *rs, uint32_t id)
{
	static const struct s_rule none = { 0, CK_TEXT, 0 };
	return id < rs->n ? rs->r[id] : none;
}

static bool s_in(const char *s, const char *const *list)
{
	for (; *list; list++) {
		if (strcmp(s, *list) == 0)
			return true;
	}
	return false;
}

static const char *const s_genders[] = { "male", "female", "other", "unknown", NULL };
static const char *const s_custody_statuses[] = {
	"detained", "released_nfa", "released_bail", "released_under_investigation", "charged_bailed",
	"charged_remanded", "transferred_la_accommodation", "released_other", NULL,
};
static const char *const s_interview_statuses[] = { "scheduled", "held", "cancelled", NULL };
static const char *const s_disposals[] = {
	"charge", "youth_caution", "youth_conditional_caution", "community_resolution",
	"nfa", "outcome_21", "outcome_22", "other", NULL,
};

/* ^[0-9]{2}/[0-9]{1,7}[A-Z]$ (the check letter is not verified: the spec's
 * own example 09/123456X fails it). */
static bool s_pnc_ok(const char *s)
{
	size_t n = strlen(s), digits = 0;
	if (n < 5 || s[0] < '0' || s[0] > '9' || s[1] < '0' || s[1] > '9' || s[2] != '/')
		return false;
	for (size_t i = 3; i + 1 < n; i++, digits++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
	}
	return digits >= 1 && digits <= 7 && s[n - 1] >= 'A' && s[n - 1] <= 'Z';
}

static bool s_alpha(char ch) { return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z'); }
static bool s_digit(char ch) { return ch >= '0' && ch <= '9'; }
static char s_upper(char ch) { return ch >= 'a' && ch <= 'z' ? (char)(ch - 'a' + 'A') : ch; }

/* UK postcode into out (>= 9 bytes) as "OUTWARD INWARD", upper case.
 * Outward: A9, A99, AA9, AA99, A9A, AA9A (or GIR); inward: 9AA. */
static bool s_postcode(const char *s, char *out)
{
	char compact[8];
	size_t n = 0, spaces = 0, len = strlen(s);
	if (len < 5 || len > 8)
		return false;
	for (size_t i = 0; i < len; i++) {
		if (s[i] == ' ') {
			/* exactly one space, and only before the inward code */
			if (++spaces > 1 || len - i - 1 != 3)
				return false;
			continue;
		}
		if (!s_alpha(s[i]) && !s_digit(s[i]))
			return false;
		if (n >= 7)
			return false;
		compact[n++] = s_upper(s[i]);
	}
	if (n < 5)
		return false;
	const char *in = compact + n - 3;
	size_t on = n - 3;
	if (!s_digit(in[0]) || !s_alpha(in[1]) || !s_alpha(in[2]))
		return false;
	const char *o = compact;
	bool ok;
	if (on == 3 && memcmp(o, "GIR", 3) == 0)
		ok = true;
	else if (on == 2)
		ok = s_alpha(o[0]) && s_digit(o[1]);
	else if (on == 3)
		ok = s_alpha(o[0]) && ((s_digit(o[1]) && (s_digit(o[2]) || s_alpha(o[2]))) ||
				       (s_alpha(o[1]) && s_digit(o[2])));
	else
		ok = s_alpha(o[0]) && s_alpha(o[1]) && s_digit(o[2]) && (s_digit(o[3]) || s_alpha(o[3]));
	if (!ok)
		return false;
	memcpy(out, compact, on);
	out[on] = ' ';
	memcpy(out + on + 1, in, 3);
	out[on + 4] = '\0';
	return true;
}

static bool s_email_ok(const char *s)
{
	static const char atext[] = "!#$%&'*+-/=?^_`{|}~";
	const char *at = strchr(s, '@');
	if (!at || at == s || strchr(at + 1, '@') || at - s > 64)
		return false;
	for (const char *p = s; p < at; p++) {
		bool dot = *p == '.';
		if (dot && (p == s || p + 1 == at || p[1] == '.'))
			return false;
		if (!dot && !s_alpha(*p) && !s_digit(*p) && !strchr(atext, *p))
			return false;
	}
	size_t labels = 0, llen = 0;
	for (const char *p = at + 1;; p++) {
		if (*p == '.' || *p == '\0') {
			if (llen == 0 || llen > 63 || p[-1] == '-')
				return false;
			labels++;
			llen = 0;
			if (*p == '\0')
				break;
			continue;
		}
		if (!s_alpha(*p) && !s_digit(*p) && !(*p == '-' && llen > 0))
			return false;
		llen++;
	}
	return labels >= 2;
}

/* ------------------------------------------------------- field checks */

/* Value rules for one string field, shared by both content types. May
 * replace *sp with its normalised form. */
static void s_check_string(struct s_ctx *c, struct s_rule r, const char *leaf, char **sp)
{
	const struct yj_refdata *ref = c->opts->ref;
	const char *s = *sp;
	size_t len = strlen(s), max = r.max ? r.max : S_TEXT_MAX;
	char e[40];

	if (len > max) {
		s_rej(c, YJ_REJ_VALUE, leaf, "longer than %zu bytes", max);
		return;
	}
	if (len == 0 && (r.req || r.check != CK_TEXT)) {
		s_rej(c, YJ_REJ_VALUE, leaf, "must not be empty");
		return;
	}
	switch ((enum s_check)r.check) {
	case CK_FORCE:
		if (!yj_ref_force(ref, s))
			s_rej(c, YJ_REJ_VALUE, leaf, "force%s is not in the reference table", s_echo(s, e, sizeof(e)));
		break;
	case CK_LA_UPPER: {
		const struct yj_la *la = yj_ref_la(ref, s);
		if (!la)
			s_rej(c, YJ_REJ_VALUE, leaf, "local authority%s is not in the reference table",
			      s_echo(s, e, sizeof(e)));
		else if (!la->upper_tier)
			s_rej(c, YJ_REJ_VALUE, leaf, "local authority%s is not an upper-tier authority",
			      s_echo(s, e, sizeof(e)));
		break;
	}
	case CK_LA:
		if (!yj_ref_la(ref, s))
			s_rej(c, YJ_REJ_VALUE, leaf, "local authority%s is not in the reference table",
			      s_echo(s, e, sizeof(e)));
		break;
	case CK_SUITE:
		if (!yj_ref_suite(ref, s))
			s_rej(c, YJ_REJ_VALUE, leaf, "custody suite%s is not in the reference table", s_echo(s, e, sizeof(e)));
		break;
	case CK_ETHNICITY:
		if (!yj_ref_ethnicity(ref, s))
			s_rej(c, YJ_REJ_VALUE, leaf, "not a census ethnicity code");
		break;
	case CK_GENDER:
		if (!s_in(s, s_genders))
			s_rej(c, YJ_REJ_VALUE, leaf, "must be male, female, other or unknown");
		break;
	case CK_CUSTODY_STATUS:
		if (!s_in(s, s_custody_statuses))
			s_rej(c, YJ_REJ_VALUE, leaf, "not a custody status");
		break;
	case CK_INTERVIEW_STATUS:
		if (!s_in(s, s_interview_statuses))
			s_rej(c, YJ_REJ_VALUE, leaf, "must be scheduled, held or cancelled");
		break;
	case CK_DISPOSAL:
		if (!s_in(s, s_disposals))
			s_rej(c, YJ_REJ_VALUE, leaf, "not a disposal");
		break;
	case CK_PNC:
		if (!s_pnc_ok(s))
			s_rej(c, YJ_REJ_VALUE, leaf, "not a PNC id of the form YY/NNNNNNNA");
		break;
	case CK_EMAIL:
		if (!s_email_ok(s))
			s_rej(c, YJ_REJ_VALUE, leaf, "not an email address");
		break;
	case CK_POSTCODE: {
		char pc[9];
		if (!s_postcode(s, pc)) {
			s_rej(c, YJ_REJ_VALUE, leaf, "not a UK postcode");
		} else if (strcmp(pc, s) != 0) {
			char *norm = yj_arena_strndup(c->arena, pc, strlen(pc));
			if (!norm)
				c->rc = YJ_ENOMEM;
			else
				*sp = norm;
		}
		break;
	}
	case CK_DOB: {
		int32_t day;
		if (s_parse_date(s, &day) != 0)
			s_rej(c, YJ_REJ_VALUE, leaf, "not a date (YYYY-MM-DD)");
		else if (day > s_floor_div(c->opts->now_us + 14 * 60 * S_US_PER_MIN, S_US_PER_DAY))
			s_rej(c, YJ_REJ_VALUE, leaf, "date of birth is in the future");
		break;
	}
	case CK_DATE: {
		int32_t day;
		if (s_parse_date(s, &day) != 0)
			s_rej(c, YJ_REJ_VALUE, leaf, "not a date (YYYY-MM-DD)");
		break;
	}
	case CK_SOURCE_ID:
	case CK_TEXT:
	default:
		break;
	}
}

static void s_check_time(struct s_ctx *c, struct s_rule r, const char *leaf, const Yjlink__V1__Time *t)
{
	/* days of 0000-01-01 and 9999-12-31: yj_time_format writes 4-digit years */
	const int64_t lo = -719528, hi = 2932896;
	if (t->offset_minutes < -S_MAX_OFFSET_MIN || t->offset_minutes > S_MAX_OFFSET_MIN) {
		s_rej(c, YJ_REJ_VALUE, leaf, "offset out of range");
		return;
	}
	/* In UTC and in its own offset (it is written back in the latter); the
	 * local time is computed only once UTC is known to be in range. */
	int utc_ok = t->unix_us >= lo * S_US_PER_DAY && t->unix_us < (hi + 1) * S_US_PER_DAY;
	int64_t local = utc_ok ? t->unix_us + (int64_t)t->offset_minutes * 60 * 1000000 : 0;
	if (!utc_ok || local < lo * S_US_PER_DAY || local >= (hi + 1) * S_US_PER_DAY) {
		s_rej(c, YJ_REJ_VALUE, leaf, "timestamp out of range");
		return;
	}
	if (r.check == CK_OCCURRED && t->unix_us > c->opts->now_us + S_FUTURE_SLACK_US)
		s_rej(c, YJ_REJ_VALUE, leaf, "more than 5 minutes in the future");
}

/* The value rules of one present, well-typed field of msg. */
static void s_check_field(struct s_ctx *c, const struct s_rules *rs, const ProtobufCFieldDescriptor *fd,
			  ProtobufCMessage *msg)
{
	char *member = (char *)msg + fd->offset;
	struct s_rule r = s_rule(rs, fd->id);

	if (s_value_decided(c))
		return;
	if (fd->type == PROTOBUF_C_TYPE_STRING) {
		if (*(char **)member)
			s_check_string(c, r, fd->name, (char **)member);
	} else if (fd->type == PROTOBUF_C_TYPE_INT32 && r.check == CK_OUTCOME_CODE) {
		int32_t code = *(int32_t *)member;
		if (!yj_ref_outcome(c->opts->ref, code))
			s_rej(c, YJ_REJ_VALUE, fd->name, "outcome code %d is not in the reference table", (int)code);
	} else if (fd->type == PROTOBUF_C_TYPE_MESSAGE && fd->descriptor == &yjlink__v1__time__descriptor) {
		const Yjlink__V1__Time *t = *(Yjlink__V1__Time **)member;
		if (t)
			s_check_time(c, r, fd->name, t);
	}
}

static void s_check_count(struct s_ctx *c, const char *leaf, size_t n)
{
	if (n > S_MAX_OFFENCES)
		s_rej(c, YJ_REJ_VALUE, leaf, "more than %d offences", S_MAX_OFFENCES);
}

/* Required fields of msg that `seen` (bit i: md->fields[i] present) lacks. */
static void s_required(struct s_ctx *c, const ProtobufCMessageDescriptor *md, const struct s_rules *rs,
		       const ProtobufCMessage *msg, uint32_t seen)
{
	for (unsigned i = 0; i < md->n_fields; i++) {
		const ProtobufCFieldDescriptor *fd = &md->fields[i];
		bool req = s_rule(rs, fd->id).req;
		if (fd->flags & PROTOBUF_C_FIELD_FLAG_ONEOF)
			req = fd->id == c->body_id;
		if (req && !(seen & (1u << i)))
			s_rej(c, YJ_REJ_SCHEMA, fd->name, "required field missing");
	}
	if (md == &yjlink__v1__child__descriptor) {
		const Yjlink__V1__Child *ch = (const Yjlink__V1__Child *)msg;
		if (!ch->date_of_birth && !ch->has_apparent_age)
			s_rej(c, YJ_REJ_SCHEMA, "date_of_birth", "required field missing (or give apparent_age)");
		if (ch->has_looked_after && ch->looked_after && !ch->responsible_la)
			s_rej(c, YJ_REJ_SCHEMA, "responsible_la", "required when looked_after is true");
	}
}

/* The date the child's age is judged on (interfaces.md §2): the feed's own
 * date, so that a custody record opened before the 18th birthday keeps
 * being accepted while the child is held, in the offset the sender wrote
 * it in. *what names the field, for the reason of a refusal. */
static int32_t s_age_day(const Yjlink__V1__Event *ev, const char **what)
{
	const Yjlink__V1__Time *t = NULL;
	int32_t od;

	*what = "occurred_at";
	/* body is a oneof: only the member body_case names may be read. */
	switch (ev->body_case) {
	case YJLINK__V1__EVENT__BODY_CUSTODY:
		t = ev->custody ? ev->custody->arrived_at : NULL;
		*what = "custody.arrived_at";
		break;
	case YJLINK__V1__EVENT__BODY_ARREST:
		t = ev->arrest ? ev->arrest->arrested_at : NULL;
		*what = "arrest.arrested_at";
		break;
	case YJLINK__V1__EVENT__BODY_INTERVIEW:
		t = ev->interview ? ev->interview->at : NULL;
		*what = "interview.at";
		break;
	case YJLINK__V1__EVENT__BODY_OUTCOME:
		if (ev->outcome && ev->outcome->offence_date && s_parse_date(ev->outcome->offence_date, &od) == 0) {
			*what = "outcome.offence_date";
			return od;
		}
		break;
	default:
		break;
	}
	if (!t) {
		t = ev->occurred_at;
		*what = "occurred_at";
	}
	return t ? s_local_day(t) : INT32_MIN;
}

/* Whole years from dob to day; someone born on 29 February turns a year
 * older on 1 March in common years. */
static int s_years(int32_t dob, int32_t day)
{
	int by, ry;
	unsigned bm, bd, rm, rd;
	yj_civil_from_days(dob, &by, &bm, &bd);
	yj_civil_from_days(day, &ry, &rm, &rd);
	return ry - by - ((rm < bm || (rm == bm && rd < bd)) ? 1 : 0);
}

int yj_event_child_age(const Yjlink__V1__Event *ev, int *apparent)
{
	const Yjlink__V1__Child *ch = ev ? ev->child : NULL;
	const char *what;
	int32_t dob, day;

	if (apparent)
		*apparent = 0;
	if (!ch)
		return -1;
	if (ch->date_of_birth) {
		day = s_age_day(ev, &what);
		if (s_parse_date(ch->date_of_birth, &dob) != 0 || day == INT32_MIN)
			return -1;
		return s_years(dob, day);
	}
	if (ch->has_apparent_age && ch->apparent_age <= INT32_MAX) {
		if (apparent)
			*apparent = 1;
		return (int)ch->apparent_age;
	}
	return -1;
}

const char *yj_event_data_quality(const Yjlink__V1__Event *ev, const struct yj_refdata *ref)
{
	if (!ev || ev->body_case != YJLINK__V1__EVENT__BODY_OUTCOME || !ev->outcome || !ev->outcome->has_code)
		return NULL;
	const struct yj_outcome *o = yj_ref_outcome(ref, ev->outcome->code);
	return o && !o->applies_to_children ? "outcome_code_not_for_children" : NULL;
}

/* Rules across fields, then scope; both content types end here. Also
 * fills in what normalisation promises. */
static void s_check_event(struct s_ctx *c, Yjlink__V1__Event *ev)
{
	int32_t dob = 0;
	const char *what;

	if (c->rej->code != YJ_REJ_NONE)
		return;  /* every rule below presumes well-formed fields */

	Yjlink__V1__Child *ch = ev->child;
	/* One meaning, one packing: with a date of birth an apparent age says
	 * nothing more, and a resend without it must still be a DUP. */
	if (ch->date_of_birth && ch->has_apparent_age) {
		ch->has_apparent_age = 0;
		ch->apparent_age = 0;
	}
	if (ev->body_case == YJLINK__V1__EVENT__BODY_OUTCOME) {
		Yjlink__V1__Outcome *o = ev->outcome;
		int32_t decided = s_local_day(o->decided_at), od;
		const struct yj_outcome *oc = yj_ref_outcome(c->opts->ref, o->code);
		s_push(c, "outcome", 0);
		if (oc && (decided < oc->valid_from || decided > oc->valid_to))
			s_rej(c, YJ_REJ_VALUE, "code", "outcome code %d is not in use on the date of decided_at",
			      (int)o->code);
		if (o->offence_date && s_parse_date(o->offence_date, &od) == 0 && od > decided)
			s_rej(c, YJ_REJ_VALUE, "offence_date", "after the date of decided_at");
		s_pop(c);
	}
	if (c->rej->code != YJ_REJ_NONE)
		return;
	if (!ch->date_of_birth) {
		if (ch->apparent_age < 10 || ch->apparent_age > 17)
			s_rej(c, YJ_REJ_OUT_OF_SCOPE, "child.apparent_age", "the apparent age is not 10 to 17");
		return;
	}
	int32_t day = s_age_day(ev, &what);
	if (s_parse_date(ch->date_of_birth, &dob) != 0 || day == INT32_MIN)
		return;
	int age = s_years(dob, day);
	if (age < 10 || age > 17)
		s_rej(c, YJ_REJ_OUT_OF_SCOPE, "child.date_of_birth", "the child is not aged 10 to 17 on the date of %s",
		      what);
}

/* ------------------------------------------------------- JSON pre-pass */

static int s_hex4(const unsigned char *p, size_t n, unsigned *out)
{
	unsigned v = 0;
	if (n < 4)
		return -1;
	for (int i = 0; i < 4; i++) {
		unsigned ch = p[i], d;
		if (ch >= '0' && ch <= '9')
			d = ch - '0';
		else if ((ch | 0x20) >= 'a' && (ch | 0x20) <= 'f')
			d = (ch | 0x20) - 'a' + 10;
		else
			return -1;
		v = v << 4 | d;
	}
	*out = v;
	return 0;
}

static bool s_numch(unsigned ch)
{
	return (ch >= '0' && ch <= '9') || ch == '-' || ch == '+' || ch == '.' || ch == 'e' || ch == 'E';
}

/* Length of the number token at p and whether it is RFC 8259 grammar;
 * cJSON reads "01", "1." and "-01" as numbers. */
static size_t s_number(const unsigned char *p, size_t n, bool *ok)
{
	size_t i = 0;
	*ok = false;
	if (i < n && p[i] == '-')
		i++;
	if (i < n && p[i] == '0') {
		i++;
	} else if (i < n && p[i] >= '1' && p[i] <= '9') {
		while (i < n && s_digit((char)p[i]))
			i++;
	} else {
		goto bad;
	}
	if (i < n && p[i] == '.') {
		size_t k = ++i;
		while (i < n && s_digit((char)p[i]))
			i++;
		if (i == k)
			goto bad;
	}
	if (i < n && (p[i] == 'e' || p[i] == 'E')) {
		i++;
		if (i < n && (p[i] == '+' || p[i] == '-'))
			i++;
		size_t k = i;
		while (i < n && s_digit((char)p[i]))
			i++;
		if (i == k)
			goto bad;
	}
	*ok = i >= n || !s_numch(p[i]);
bad:
	while (i < n && s_numch(p[i]))
		i++;
	return i ? i : 1;
}

/* Bytes that end a run of plain string content. */
static bool s_str_special(unsigned ch) { return ch < 0x20 || ch == '"' || ch == '\\' || ch >= 0x80; }

/* Index of the first special byte at or after i. Most of a payload is
 * plain ASCII inside strings, so 8 bytes are tested at once. In each of the
 * SWAR masks below only bits above a true hit can be false, so on a
 * little-endian machine the lowest set bit is the first special byte. */
static size_t s_skip_plain(const unsigned char *p, size_t i, size_t n)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
	const uint64_t ones = UINT64_C(0x0101010101010101), high = UINT64_C(0x8080808080808080);
	while (n - i >= 8) {
		uint64_t w, q, b, hit;
		memcpy(&w, p + i, 8);
		q = w ^ (ones * '"');
		b = w ^ (ones * '\\');
		hit = (((w - ones * 0x20) & ~w) | ((q - ones) & ~q) | ((b - ones) & ~b) | w) & high;
		if (hit)
			return i + (size_t)__builtin_ctzll(hit) / 8;
		i += 8;
	}
#endif
	while (i < n && !s_str_special(p[i]))
		i++;
	return i;
}

/* What cJSON does not check by itself: encoding (stops at the first
 * problem, as nothing else can win over it) and the syntax rules it is lax
 * about (the first is kept while scanning on for encoding problems). */
static void s_prepass(const unsigned char *p, size_t n, struct yj_reject *rej)
{
	const char *syntax = NULL;
	unsigned depth = 0;
	bool in_str = false;
	size_t i = 0;

	while (i < n) {
		unsigned ch = p[i];
		if (in_str) {
			i = s_skip_plain(p, i, n);
			if (i >= n)
				break;
			ch = p[i];
		}
		if (ch >= 0x80) {
			size_t k = s_utf8_seq(p + i, n - i);
			if (!k) {
				yj_reject_set(rej, YJ_REJ_ENCODING, "", "payload is not valid UTF-8");
				return;
			}
			i += k;
			continue;
		}
		if (ch == 0) {
			yj_reject_set(rej, YJ_REJ_ENCODING, "", "payload holds a NUL byte");
			return;
		}
		if (in_str) {
			i++;
			if (ch == '"') {
				in_str = false;
			} else if (ch < 0x20) {
				if (!syntax)
					syntax = "control character not escaped in a string";
			} else if (i < n && p[i] == 'u') {  /* ch is the backslash */
				unsigned u, lo;
				if (s_hex4(p + i + 1, n - i - 1, &u) != 0) {
					/* cJSON reads a non-hex digit as the end of the
					 * code, U+0000, and keeps the string up to it:
					 * the rest of the value would be lost, unseen */
					if (!syntax)
						syntax = "malformed \\u escape in a string";
					continue;
				}
				i += 5;
				if (u == 0) {
					yj_reject_set(rej, YJ_REJ_ENCODING, "", "string holds \\u0000");
					return;
				}
				if (u >= 0xD800 && u <= 0xDBFF) {
					if (n - i >= 6 && p[i] == '\\' && p[i + 1] == 'u' &&
					    s_hex4(p + i + 2, n - i - 2, &lo) == 0 && lo >= 0xDC00 && lo <= 0xDFFF) {
						i += 6;
						continue;
					}
					yj_reject_set(rej, YJ_REJ_ENCODING, "", "string holds a lone surrogate escape");
					return;
				}
				if (u >= 0xDC00 && u <= 0xDFFF) {
					yj_reject_set(rej, YJ_REJ_ENCODING, "", "string holds a lone surrogate escape");
					return;
				}
			} else if (i < n && p[i] > 0 && p[i] < 0x80) {
				i++;  /* the escaped character; its validity is cJSON's to judge */
			}
			continue;
		}
		switch (ch) {
		case '"':
			in_str = true;
			break;
		case '{':
		case '[':
			if (++depth > S_MAX_DEPTH && !syntax)
				syntax = "nesting deeper than 16";
			break;
		case '}':
		case ']':
			if (depth)
				depth--;
			break;
		case ' ':
		case '\t':
		case '\n':
		case '\r':
			break;
		default:
			if (ch == '-' || (ch >= '0' && ch <= '9')) {
				bool ok;
				i += s_number(p + i, n - i, &ok);
				if (!ok && !syntax)
					syntax = "malformed number";
				continue;
			}
			if (ch < 0x20 && !syntax)
				syntax = "control character outside a string";
			break;
		}
		i++;
	}
	if (syntax)
		yj_reject_set(rej, YJ_REJ_SYNTAX, "", "%s", syntax);
}

/* -------------------------------------------------- JSON duplicate keys */

static uint32_t s_hash(const char *s)
{
	uint32_t h = 2166136261u;
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 16777619u;
	return h;
}

/* First key of obj, in document order, that repeats an earlier one. */
static const cJSON *s_dup_key(struct s_ctx *c, const cJSON *obj)
{
	size_t n = 0;
	for (const cJSON *k = obj->child; k; k = k->next)
		n++;
	if (n <= S_SMALL_OBJECT) {
		for (const cJSON *k = obj->child; k; k = k->next) {
			for (const cJSON *j = obj->child; j != k; j = j->next) {
				if (strcmp(j->string, k->string) == 0)
					return k;
			}
		}
		return NULL;
	}
	/* A hostile payload can hold thousands of keys: hash, don't compare pairs. */
	size_t cap = 32;
	while (cap < 2 * n)
		cap *= 2;
	const char **set = s_alloc(c, cap * sizeof(*set));
	if (!set)
		return NULL;
	memset(set, 0, cap * sizeof(*set));
	for (const cJSON *k = obj->child; k; k = k->next) {
		size_t h = s_hash(k->string) & (cap - 1);
		while (set[h]) {
			if (strcmp(set[h], k->string) == 0)
				return k;
			h = (h + 1) & (cap - 1);
		}
		set[h] = k->string;
	}
	return NULL;
}

static bool s_syntax_found(const struct s_ctx *c)
{
	return (c->rej->code != YJ_REJ_NONE && c->rej->code <= YJ_REJ_SYNTAX) || c->rc;
}

/* Duplicate keys anywhere under node. The schema walk finds duplicates of
 * the fields it knows for free (a field seen twice); this is for what it
 * does not descend into: unknown fields, another feed's object, values of
 * the wrong type. A duplicate there is still syntax, which outranks
 * schema. Depth is bounded by the pre-pass. */
static void s_dups(struct s_ctx *c, const cJSON *node)
{
	size_t idx = 0;

	if (cJSON_IsObject(node)) {
		const cJSON *d = s_dup_key(c, node);
		/* Document order: a duplicate is reported only after the
		 * subtrees of the keys before it. */
		for (const cJSON *k = node->child; k && k != d; k = k->next) {
			s_push(c, k->string, 0);
			s_dups(c, k);
			s_pop(c);
			if (s_syntax_found(c))
				return;
		}
		if (d)
			s_rej(c, YJ_REJ_SYNTAX, d->string, "duplicate key");
		return;
	}
	if (!cJSON_IsArray(node))
		return;
	for (const cJSON *k = node->child; k; k = k->next, idx++) {
		s_push(c, NULL, idx);
		s_dups(c, k);
		s_pop(c);
		if (s_syntax_found(c))
			return;
	}
}

/* ------------------------------------------------------ JSON schema walk */

/* s_dups for the value of key leaf of the object being walked. */
static void s_dups_at(struct s_ctx *c, const char *leaf, size_t index, const cJSON *v)
{
	if (!cJSON_IsObject(v) && !cJSON_IsArray(v))
		return;
	s_push(c, leaf, index);
	s_dups(c, v);
	s_pop(c);
}

static void s_json_msg(struct s_ctx *c, const ProtobufCMessageDescriptor *md, const cJSON *obj, ProtobufCMessage *msg);

static const char *s_json_type(const cJSON *v)
{
	if (cJSON_IsNull(v))
		return "null";
	if (cJSON_IsBool(v))
		return "a boolean";
	if (cJSON_IsNumber(v))
		return "a number";
	if (cJSON_IsString(v))
		return "a string";
	if (cJSON_IsArray(v))
		return "an array";
	return "an object";
}

static const char *s_json_expected(const ProtobufCFieldDescriptor *fd)
{
	switch (fd->type) {
	case PROTOBUF_C_TYPE_STRING: return "a string";
	case PROTOBUF_C_TYPE_BOOL: return "a boolean";
	case PROTOBUF_C_TYPE_INT32: return "an integer";
	case PROTOBUF_C_TYPE_UINT32: return "an integer";
	default: break;
	}
	if (fd->descriptor == &yjlink__v1__time__descriptor)
		return "an RFC 3339 timestamp string";
	return fd->label == PROTOBUF_C_LABEL_REPEATED ? "an array" : "an object";
}

/* Fill one field of msg from JSON value v; true when it was stored and
 * its value rules can run. */
static bool s_json_field(struct s_ctx *c, const ProtobufCFieldDescriptor *fd, const cJSON *v, ProtobufCMessage *msg)
{
	char *member = (char *)msg + fd->offset;
	protobuf_c_boolean *has = (protobuf_c_boolean *)((char *)msg + fd->quantifier_offset);

	switch (fd->type) {
	case PROTOBUF_C_TYPE_STRING: {
		if (!cJSON_IsString(v))
			break;
		char *s = yj_json_strdup(c->arena, v->valuestring, yj_json_strlen(v->valuestring));
		if (!s) {
			c->rc = YJ_ENOMEM;
			return false;
		}
		*(char **)member = s;
		return true;
	}
	case PROTOBUF_C_TYPE_BOOL:
		if (!cJSON_IsBool(v))
			break;
		*has = 1;
		*(protobuf_c_boolean *)member = cJSON_IsTrue(v) ? 1 : 0;
		return true;
	case PROTOBUF_C_TYPE_INT32: {
		if (!cJSON_IsNumber(v))
			break;
		double d = v->valuedouble;
		if (!(d >= INT32_MIN && d <= INT32_MAX) || d != floor(d)) {
			s_rej(c, YJ_REJ_VALUE, fd->name, "must be an integer");
			return false;
		}
		*has = 1;
		*(int32_t *)member = (int32_t)d;
		return true;
	}
	case PROTOBUF_C_TYPE_UINT32: {
		/* apparent_age: an integer of any size is the right type (so
		 * out_of_scope when outside 10..17, s_check_event), a fraction
		 * is not an age at all. */
		if (!cJSON_IsNumber(v))
			break;
		double d = v->valuedouble;
		if (d != floor(d)) {
			s_rej(c, YJ_REJ_SCHEMA, fd->name, "must be a whole number of years");
			return false;
		}
		*has = 1;
		*(uint32_t *)member = d < 0 ? 0 : d > UINT32_MAX ? UINT32_MAX : (uint32_t)d;
		return true;
	}
	case PROTOBUF_C_TYPE_MESSAGE: {
		const ProtobufCMessageDescriptor *sub = fd->descriptor;
		if (sub == &yjlink__v1__time__descriptor) {
			if (!cJSON_IsString(v))
				break;
			Yjlink__V1__Time *t = (Yjlink__V1__Time *)s_new_msg(c, sub);
			if (!t)
				return false;
			if (yj_time_parse(v->valuestring, yj_json_strlen(v->valuestring), &t->unix_us, &t->offset_minutes) !=
			    0) {
				s_rej(c, YJ_REJ_VALUE, fd->name, "not an RFC 3339 timestamp with an offset");
				return false;
			}
			t->has_unix_us = t->has_offset_minutes = 1;
			*(Yjlink__V1__Time **)member = t;
			return true;
		}
		if (fd->label == PROTOBUF_C_LABEL_REPEATED) {
			if (!cJSON_IsArray(v))
				break;
			size_t n = 0, i = 0;
			for (const cJSON *it = v->child; it; it = it->next)
				n++;
			if (!s_value_decided(c))
				s_check_count(c, fd->name, n);
			ProtobufCMessage **items = n ? s_alloc(c, n * sizeof(*items)) : NULL;
			if (n && !items)
				return false;
			if (n)
				memset(items, 0, n * sizeof(*items));
			s_push(c, fd->name, 0);
			for (const cJSON *it = v->child; it; it = it->next, i++) {
				if (!cJSON_IsObject(it))
					s_dups_at(c, NULL, i, it);
				s_push(c, NULL, i);
				if (!cJSON_IsObject(it)) {
					s_rej(c, YJ_REJ_SCHEMA, NULL, "must be an object, not %s", s_json_type(it));
				} else if ((items[i] = s_new_msg(c, sub)) != NULL) {
					s_json_msg(c, sub, it, items[i]);
				}
				s_pop(c);
				if (c->rc)
					break;
			}
			s_pop(c);
			/* an item left NULL by a schema problem is never packed: the
			 * event is refused */
			*(size_t *)has = n;
			*(ProtobufCMessage ***)member = items;
			return false;
		}
		if (!cJSON_IsObject(v))
			break;
		ProtobufCMessage *m = s_new_msg(c, sub);
		if (!m)
			return false;
		if (fd->flags & PROTOBUF_C_FIELD_FLAG_ONEOF)
			*(uint32_t *)has = fd->id;
		*(ProtobufCMessage **)member = m;
		s_push(c, fd->name, 0);
		s_json_msg(c, sub, v, m);
		s_pop(c);
		return false;
	}
	default:
		break;
	}
	s_dups_at(c, fd->name, 0, v);
	s_rej(c, YJ_REJ_SCHEMA, fd->name, "must be %s, not %s", s_json_expected(fd), s_json_type(v));
	return false;
}

/* Field by JSON key: protobuf-c's binary search costs five strcmp per key,
 * a fifth of the schema walk. Every message reachable from Event gets a
 * small hash table of its field names, built once; a lookup hashes the key
 * and compares one name. The hash reads the length and three bytes, not
 * the whole name: a collision costs one more compare, and the names are
 * the schema's. */
#define S_NAME_SLOTS 64u
#define S_NAME_MSGS 24u

struct s_name_index {
	const ProtobufCMessageDescriptor *md;
	uint8_t slot[S_NAME_SLOTS];  /* field index + 1; 0 empty */
	uint8_t len[S_NAME_SLOTS];   /* each field's name length, by field index (0: 255 or longer) */
};

static struct s_name_index s_names[S_NAME_MSGS];
static size_t s_n_names;

static uint32_t s_name_hash(const char *s, size_t len)
{
	if (!len)
		return 0;
	return (uint32_t)len * 31u + (unsigned char)s[0] * 7u + (unsigned char)s[len / 2] * 3u +
	       (unsigned char)s[len - 1];
}

static struct s_name_index *s_name_index_of(const ProtobufCMessageDescriptor *md)
{
	for (size_t i = 0; i < s_n_names; i++) {
		if (s_names[i].md == md)
			return &s_names[i];
	}
	return NULL;
}

static void s_name_index_add(const ProtobufCMessageDescriptor *md)
{
	if (s_name_index_of(md) || s_n_names == S_NAME_MSGS || md->n_fields > S_NAME_SLOTS / 2)
		return;
	struct s_name_index *x = &s_names[s_n_names++];
	x->md = md;
	for (unsigned f = 0; f < md->n_fields; f++) {
		const char *name = md->fields[f].name;
		size_t len = strlen(name);
		x->len[f] = (uint8_t)(len < 255 ? len : 0);
		uint32_t h = s_name_hash(name, len) & (S_NAME_SLOTS - 1);
		while (x->slot[h])
			h = (h + 1) & (S_NAME_SLOTS - 1);
		x->slot[h] = (uint8_t)(f + 1);
	}
	for (unsigned f = 0; f < md->n_fields; f++) {
		if (md->fields[f].type == PROTOBUF_C_TYPE_MESSAGE)
			s_name_index_add(md->fields[f].descriptor);
	}
}

static void s_name_index_build(void) { s_name_index_add(&yjlink__v1__event__descriptor); }

/* The name table of md, NULL when it has none (then protobuf-c's search). */
static const struct s_name_index *s_names_of(const ProtobufCMessageDescriptor *md)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	pthread_once(&once, s_name_index_build);
	return s_name_index_of(md);
}

/* The field named name[0..len) (not NUL-terminated) in x's table. */
static inline __attribute__((always_inline)) const ProtobufCFieldDescriptor *s_field_by_key(const ProtobufCMessageDescriptor *md,
						      const struct s_name_index *x, const char *name, size_t len)
{
	/* Names are compared only when the lengths agree, and then without
	 * looking for their ends. */
	for (uint32_t h = s_name_hash(name, len) & (S_NAME_SLOTS - 1); x->slot[h]; h = (h + 1) & (S_NAME_SLOTS - 1)) {
		unsigned f = x->slot[h] - 1u;
		const ProtobufCFieldDescriptor *fd = &md->fields[f];
		size_t flen = x->len[f] ? x->len[f] : strlen(fd->name);
		if (flen == len && memcmp(fd->name, name, len) == 0)
			return fd;
	}
	return NULL;
}

static const ProtobufCFieldDescriptor *s_field_by_name(const ProtobufCMessageDescriptor *md,
						       const struct s_name_index *x, const char *name)
{
	if (!x)
		return protobuf_c_message_descriptor_get_field_by_name(md, name);
	/* The key's length from the reader. */
	return s_field_by_key(md, x, name, yj_json_strlen(name));
}

static void s_json_msg(struct s_ctx *c, const ProtobufCMessageDescriptor *md, const cJSON *obj, ProtobufCMessage *msg)
{
	const struct s_rules *rs = s_rules_for(md);
	const struct s_name_index *names = s_names_of(md);
	const cJSON *dup = NULL;
	bool dup_known = false;
	uint32_t seen = 0;

	for (const cJSON *k = obj->child; k && !s_syntax_found(c); k = k->next) {
		const ProtobufCFieldDescriptor *fd = s_field_by_name(md, names, k->string);
		bool other_feed = fd && (fd->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) && fd->id != c->body_id;
		if (!fd || other_feed) {
			/* keys the schema does not know can only repeat each other;
			 * look once per object, on the rare path */
			if (!dup_known) {
				dup = s_dup_key(c, obj);
				dup_known = true;
			}
			if (k == dup) {
				s_rej(c, YJ_REJ_SYNTAX, k->string, "duplicate key");
				continue;
			}
			s_dups_at(c, k->string, 0, k);
			if (!fd)
				s_rej(c, YJ_REJ_SCHEMA, k->string, "unknown field");
			else
				s_rej(c, YJ_REJ_SCHEMA, k->string, "object of another feed than %s", yj_feed_name(c->feed));
			continue;
		}
		uint32_t bit = 1u << (fd - md->fields);
		if (seen & bit) {
			s_rej(c, YJ_REJ_SYNTAX, k->string, "duplicate key");
			continue;
		}
		seen |= bit;
		if (s_json_field(c, fd, k, msg))
			s_check_field(c, rs, fd, msg);
	}
	s_required(c, md, rs, msg, seen);
}

/* --------------------------------------------- the fused plain reader */

/* Most payloads are plain (json_tree.h) and valid: for them the tree was
 * built only to be walked once, a third of the normaliser's instructions
 * (docs/performance.md, change 28). The fused reader reads a narrower
 * plain straight into the event: printable ASCII strings without escapes,
 * integers of at most nine digits without a leading zero, true and false,
 * objects, and arrays only where the schema has a repeated message. It
 * gives up, leaving the payload to the tree's path from the start, at the
 * first thing outside that, at a key the schema does not know or has seen,
 * a value of the wrong type and at any refusal at all: so every refusal,
 * its field and its reason, comes from the one path that has always made
 * them, and the fuzz targets (always_prepass, which turns this reader off)
 * check that both paths build the same event. */
#define S_FAST_DEPTH 6

struct s_fast {
	const char *p, *end;
};

static inline void s_fast_ws(struct s_fast *f)
{
	while (f->p < f->end && (*f->p == ' ' || *f->p == '\n' || *f->p == '\r' || *f->p == '\t'))
		f->p++;
}

static inline bool s_fast_at(const struct s_fast *f, char ch) { return f->p < f->end && *f->p == ch; }

/* An object's or array's opening byte: -1 not there, 0 empty (its close
 * read too), 1 items follow. */
static inline int s_fast_open(struct s_fast *f, char open, char close)
{
	if (!s_fast_at(f, open))
		return -1;
	f->p++;
	s_fast_ws(f);
	if (!s_fast_at(f, close))
		return 1;
	f->p++;
	return 0;
}

/* After an item: 1 a comma (another follows), 0 the close, -1 neither. */
static inline int s_fast_next(struct s_fast *f, char close)
{
	s_fast_ws(f);
	if (s_fast_at(f, close)) {
		f->p++;
		return 0;
	}
	if (!s_fast_at(f, ','))
		return -1;
	f->p++;
	s_fast_ws(f);
	return 1;
}

static inline __attribute__((always_inline)) bool s_fast_string(struct s_fast *f, const char **s, size_t *len)
{
	if (!s_fast_at(f, '"'))
		return false;
	const char *q = f->p + 1;
#if defined(__SSE2__)
	/* Sixteen bytes at a time while sixteen are left (nothing is read past
	 * the payload): as a signed byte, every control and non-ASCII byte is
	 * below 0x20; DEL is the one other byte outside printable ASCII. */
	const __m128i quote = _mm_set1_epi8('"'), bslash = _mm_set1_epi8('\\'), space = _mm_set1_epi8(0x20),
		      del = _mm_set1_epi8(0x7F);
	while (f->end - q >= 16) {
		__m128i v = _mm_loadu_si128((const __m128i *)(const void *)q);
		__m128i hit = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, quote), _mm_cmpeq_epi8(v, bslash)),
					   _mm_or_si128(_mm_cmplt_epi8(v, space), _mm_cmpeq_epi8(v, del)));
		unsigned m = (unsigned)_mm_movemask_epi8(hit);
		if (m) {
			q += __builtin_ctz(m);
			goto found;
		}
		q += 16;
	}
#endif
	for (; q < f->end; q++) {
		unsigned char ch = (unsigned char)*q;
		if (ch < 0x20 || ch > 0x7E || ch == '"' || ch == '\\')
			break;
	}
#if defined(__SSE2__)
found:
#endif
	if (q >= f->end || *q != '"')
		return false;
	*s = f->p + 1;
	*len = (size_t)(q - (f->p + 1));
	f->p = q + 1;
	return true;
}

static inline __attribute__((always_inline)) bool s_fast_int(struct s_fast *f, int64_t *v)
{
	const char *q = f->p;
	bool neg = q < f->end && *q == '-';
	q += neg;
	if (q >= f->end || *q < '0' || *q > '9')
		return false;
	if (*q == '0' && q + 1 < f->end && q[1] >= '0' && q[1] <= '9')
		return false;
	int64_t n = 0;
	unsigned digits = 0;
	for (; q < f->end && *q >= '0' && *q <= '9'; q++) {
		if (++digits > 9)
			return false;
		n = n * 10 + (*q - '0');
	}
	if (q < f->end && (*q == '.' || *q == 'e' || *q == 'E'))
		return false;
	*v = neg ? -n : n;
	f->p = q;
	return true;
}

static bool s_fast_word(struct s_fast *f, const char *w, size_t n)
{
	if ((size_t)(f->end - f->p) < n || memcmp(f->p, w, n) != 0)
		return false;
	f->p += n;
	return true;
}

static bool s_fast_msg(struct s_ctx *c, struct s_fast *f, const ProtobufCMessageDescriptor *md, ProtobufCMessage *msg,
		       unsigned depth);

/* One value into fd of msg, as s_json_field does: 1 set (its value rules
 * are to be checked), 0 set (a message: checked inside), -1 give up. */
static int s_fast_field(struct s_ctx *c, struct s_fast *f, const ProtobufCFieldDescriptor *fd, ProtobufCMessage *msg,
			unsigned depth)
{
	char *member = (char *)msg + fd->offset;
	protobuf_c_boolean *has = (protobuf_c_boolean *)((char *)msg + fd->quantifier_offset);
	const char *s;
	size_t n;
	int64_t v;

	switch (fd->type) {
	case PROTOBUF_C_TYPE_STRING: {
		if (!s_fast_string(f, &s, &n))
			return -1;
		char *d = yj_arena_strndup(c->arena, s, n);
		if (!d)
			return -1;
		*(char **)member = d;
		return 1;
	}
	case PROTOBUF_C_TYPE_BOOL: {
		protobuf_c_boolean b;
		if (s_fast_word(f, "true", 4))
			b = 1;
		else if (s_fast_word(f, "false", 5))
			b = 0;
		else
			return -1;
		*has = 1;
		*(protobuf_c_boolean *)member = b;
		return 1;
	}
	case PROTOBUF_C_TYPE_INT32:
		if (!s_fast_int(f, &v))
			return -1;
		*has = 1;
		*(int32_t *)member = (int32_t)v;
		return 1;
	case PROTOBUF_C_TYPE_UINT32:
		if (!s_fast_int(f, &v))
			return -1;
		*has = 1;
		*(uint32_t *)member = v < 0 ? 0 : (uint32_t)v;
		return 1;
	case PROTOBUF_C_TYPE_MESSAGE: {
		const ProtobufCMessageDescriptor *sub = fd->descriptor;
		if (sub == &yjlink__v1__time__descriptor) {
			if (!s_fast_string(f, &s, &n))
				return -1;
			Yjlink__V1__Time *t = (Yjlink__V1__Time *)s_new_msg(c, sub);
			if (!t || yj_time_parse(s, n, &t->unix_us, &t->offset_minutes) != 0)
				return -1;
			t->has_unix_us = t->has_offset_minutes = 1;
			*(Yjlink__V1__Time **)member = t;
			return 1;
		}
		if (fd->label == PROTOBUF_C_LABEL_REPEATED) {
			ProtobufCMessage *got[S_MAX_OFFENCES];
			size_t k = 0;
			int more = s_fast_open(f, '[', ']');
			while (more > 0) {
				if (k == S_MAX_OFFENCES || !(got[k] = s_new_msg(c, sub)) ||
				    !s_fast_msg(c, f, sub, got[k], depth + 1))
					return -1;
				k++;
				more = s_fast_next(f, ']');
			}
			if (more < 0)
				return -1;
			ProtobufCMessage **items = k ? s_alloc(c, k * sizeof(*items)) : NULL;
			if (k && !items)
				return -1;
			if (k)
				memcpy(items, got, k * sizeof(*items));
			*(size_t *)has = k;
			*(ProtobufCMessage ***)member = items;
			return 0;
		}
		ProtobufCMessage *m = s_new_msg(c, sub);
		if (!m)
			return -1;
		if (fd->flags & PROTOBUF_C_FIELD_FLAG_ONEOF)
			*(uint32_t *)has = fd->id;
		*(ProtobufCMessage **)member = m;
		return s_fast_msg(c, f, sub, m, depth + 1) ? 0 : -1;
	}
	default:
		return -1;
	}
}

/* The object at f->p into msg, as s_json_msg walks one; false: give up. */
static bool s_fast_msg(struct s_ctx *c, struct s_fast *f, const ProtobufCMessageDescriptor *md, ProtobufCMessage *msg,
		       unsigned depth)
{
	const struct s_rules *rs = s_rules_for(md);
	const struct s_name_index *names = s_names_of(md);
	uint32_t seen = 0;

	if (!names || depth > S_FAST_DEPTH)
		return false;
	int more = s_fast_open(f, '{', '}');
	while (more > 0) {
		const char *key;
		size_t klen;
		if (!s_fast_string(f, &key, &klen))
			return false;
		s_fast_ws(f);
		if (!s_fast_at(f, ':'))
			return false;
		f->p++;
		s_fast_ws(f);
		const ProtobufCFieldDescriptor *fd = s_field_by_key(md, names, key, klen);
		if (!fd || ((fd->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) && fd->id != c->body_id))
			return false;
		uint32_t bit = 1u << (fd - md->fields);
		if (seen & bit)
			return false;
		seen |= bit;
		int r = s_fast_field(c, f, fd, msg, depth);
		if (r < 0)
			return false;
		if (r > 0)
			s_check_field(c, rs, fd, msg);
		if (c->rej->code != YJ_REJ_NONE || c->rc)
			return false;
		more = s_fast_next(f, '}');
	}
	if (more < 0)
		return false;
	s_required(c, md, rs, msg, seen);
	return c->rej->code == YJ_REJ_NONE && !c->rc;
}

/* The event of a payload the fused reader takes whole, or NULL: then
 * nothing it did stands (the caller starts again on the tree's path). */
static Yjlink__V1__Event *s_fast_json(struct s_ctx *c, const char *p, size_t n, struct yj_norm_result *res)
{
	struct s_fast f = { p, p + n };
	s_fast_ws(&f);
	Yjlink__V1__Event *ev = (Yjlink__V1__Event *)s_new_msg(c, &yjlink__v1__event__descriptor);
	if (!ev || !s_fast_msg(c, &f, &yjlink__v1__event__descriptor, &ev->base, 0))
		return NULL;
	s_fast_ws(&f);
	if (f.p != f.end)
		return NULL;
	s_check_event(c, ev);
	if (c->rej->code != YJ_REJ_NONE || c->rc)
		return NULL;
	if (ev->source_id && !(res->source_id = yj_arena_strndup(c->arena, ev->source_id, strlen(ev->source_id))))
		return NULL;
	return ev;
}

static void s_source_id(struct s_ctx *c, const cJSON *root, struct yj_norm_result *res)
{
	const cJSON *v = cJSON_IsObject(root) ? cJSON_GetObjectItemCaseSensitive(root, "source_id") : NULL;
	if (cJSON_IsString(v)) {
		res->source_id = yj_arena_strndup(c->arena, v->valuestring, strlen(v->valuestring));
		if (!res->source_id)
			c->rc = YJ_ENOMEM;
	}
}

static Yjlink__V1__Event *s_norm_json(struct s_ctx *c, const char *p, size_t n, cJSON **root,
				      struct yj_norm_result *res)
{
	const char *end = NULL;

	if (!c->opts->always_prepass) {
		Yjlink__V1__Event *ev = s_fast_json(c, p, n, res);
		if (ev)
			return ev;
		/* Given up: the tree's path decides, from a clean slate. */
		c->rc = 0;
		c->depth = 0;
		res->source_id = NULL;
		c->rej->code = YJ_REJ_NONE;
		c->rej->field[0] = c->rej->reason[0] = '\0';
	}
	/* cJSON's tree, read as cJSON reads it (json_tree.h); the end pointer
	 * is checked below. The pre-pass looks for what cJSON lets through;
	 * a plain payload (printable ASCII strings without escapes, integers,
	 * shallow, trailed by whitespace only) has none of it, and most
	 * payloads are plain: it was a seventh of the normaliser's
	 * instructions. Whatever it finds, it finds as if it ran first: the
	 * tree is only memory in the scratch arena until then. */
	int oom = 0, plain = 0;
	*root = yj_json_read(c->tree, p, n, S_MAX_DEPTH, &end, &oom, &plain);
	if (plain) {
		for (const char *t = end; t < p + n; t++)
			if (*t != ' ' && *t != '\t' && *t != '\n' && *t != '\r') {
				plain = 0;
				break;
			}
	}
	if (!plain || c->opts->always_prepass) {
		s_prepass((const unsigned char *)p, n, c->rej);
		if (c->rej->code == YJ_REJ_ENCODING) {
			*root = NULL;
			return NULL;
		}
	}
	if (!*root && oom) {
		c->rc = YJ_ENOMEM;
		return NULL;
	}
	if (!*root) {
		yj_reject_set(c->rej, YJ_REJ_SYNTAX, "", "not well-formed JSON");
		return NULL;
	}
	s_source_id(c, *root, res);
	if (c->rej->code != YJ_REJ_NONE || c->rc)
		return NULL;  /* syntax from the pre-pass */
	while (end < p + n && (*end == ' ' || *end == '\t' || *end == '\n' || *end == '\r'))
		end++;
	if (end != p + n) {
		yj_reject_set(c->rej, YJ_REJ_SYNTAX, "", "data after the JSON value");
		return NULL;
	}
	if (!cJSON_IsObject(*root)) {
		s_dups(c, *root);
		yj_reject_set(c->rej, YJ_REJ_SCHEMA, "", "payload is not a JSON object");
		return NULL;
	}
	Yjlink__V1__Event *ev = (Yjlink__V1__Event *)s_new_msg(c, &yjlink__v1__event__descriptor);
	if (!ev)
		return NULL;
	s_json_msg(c, &yjlink__v1__event__descriptor, *root, &ev->base);
	if (!c->rc)
		s_check_event(c, ev);
	return ev;
}

/* ---------------------------------------------------------- protobuf */

static bool s_varint(const uint8_t *p, size_t n, size_t *i, uint64_t *v)
{
	uint64_t r = 0;
	for (unsigned shift = 0; shift < 64 && *i < n; shift += 7) {
		uint8_t b = p[(*i)++];
		r |= (uint64_t)(b & 0x7F) << shift;
		if (!(b & 0x80)) {
			*v = r;
			return true;
		}
	}
	return false;
}

/* Walk the wire form of a message of type md: every string field, at any
 * depth, must be UTF-8 without NUL (protobuf-c copies strings unchecked,
 * and its C strings would silently end at a NUL). Oneof members seen at
 * this level are ORed into *oneofs as 1 << field number. */
static bool s_pb_strings(const ProtobufCMessageDescriptor *md, const uint8_t *p, size_t n, uint32_t *oneofs)
{
	size_t i = 0;
	while (i < n) {
		uint64_t tag, v;
		if (!s_varint(p, n, &i, &tag))
			return false;
		switch (tag & 7) {
		case 0:
			if (!s_varint(p, n, &i, &v))
				return false;
			break;
		case 1:
			if (n - i < 8)
				return false;
			i += 8;
			break;
		case 5:
			if (n - i < 4)
				return false;
			i += 4;
			break;
		case 2: {
			if (!s_varint(p, n, &i, &v) || v > n - i)
				return false;
			uint64_t id = tag >> 3;
			const ProtobufCFieldDescriptor *fd =
				id <= UINT32_MAX ? protobuf_c_message_descriptor_get_field(md, (unsigned)id) : NULL;
			if (fd && fd->type == PROTOBUF_C_TYPE_STRING && !s_utf8_text(p + i, (size_t)v))
				return false;
			if (fd && fd->type == PROTOBUF_C_TYPE_MESSAGE &&
			    !s_pb_strings(fd->descriptor, p + i, (size_t)v, NULL))
				return false;
			if (fd && oneofs && (fd->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) && fd->id < 32)
				*oneofs |= 1u << fd->id;
			i += (size_t)v;
			break;
		}
		default:
			return false;  /* groups: protobuf-c refuses them too */
		}
	}
	return true;
}

static void s_pb_msg(struct s_ctx *c, const ProtobufCMessageDescriptor *md, ProtobufCMessage *msg);

static bool s_pb_present(const ProtobufCFieldDescriptor *fd, const ProtobufCMessage *msg)
{
	const char *base = (const char *)msg;
	if (fd->flags & PROTOBUF_C_FIELD_FLAG_ONEOF)
		return *(const uint32_t *)(base + fd->quantifier_offset) == fd->id;
	if (fd->label == PROTOBUF_C_LABEL_REPEATED)
		return *(const size_t *)(base + fd->quantifier_offset) > 0;
	if (fd->type == PROTOBUF_C_TYPE_STRING || fd->type == PROTOBUF_C_TYPE_MESSAGE)
		return *(void *const *)(base + fd->offset) != NULL;
	return *(const protobuf_c_boolean *)(base + fd->quantifier_offset) != 0;
}

/* Schema rules of the protobuf form for one Time: what the JSON parser
 * guarantees by construction. Returns true when value rules can run. */
static bool s_pb_time(struct s_ctx *c, const char *leaf, Yjlink__V1__Time *t)
{
	s_push(c, leaf, 0);
	if (t->base.n_unknown_fields)
		s_rej(c, YJ_REJ_SCHEMA, NULL, "unknown field number %u", (unsigned)t->base.unknown_fields[0].tag);
	s_pop(c);
	if (!t->has_unix_us) {
		s_rej(c, YJ_REJ_SCHEMA, leaf, "timestamp without unix_us");
		return false;
	}
	/* an absent offset is UTC; written out so both content types pack alike */
	t->has_offset_minutes = 1;
	return true;
}

static void s_pb_msg(struct s_ctx *c, const ProtobufCMessageDescriptor *md, ProtobufCMessage *msg)
{
	const struct s_rules *rs = s_rules_for(md);
	uint32_t seen = 0;

	if (msg->n_unknown_fields)
		s_rej(c, YJ_REJ_SCHEMA, NULL, "unknown field number %u", (unsigned)msg->unknown_fields[0].tag);
	for (unsigned i = 0; i < md->n_fields; i++) {
		const ProtobufCFieldDescriptor *fd = &md->fields[i];
		char *member = (char *)msg + fd->offset;
		if (!s_pb_present(fd, msg))
			continue;
		seen |= 1u << i;
		if ((fd->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) && fd->id != c->body_id) {
			s_rej(c, YJ_REJ_SCHEMA, fd->name, "object of another feed than %s", yj_feed_name(c->feed));
			continue;
		}
		if (fd->type != PROTOBUF_C_TYPE_MESSAGE) {
			s_check_field(c, rs, fd, msg);
		} else if (fd->descriptor == &yjlink__v1__time__descriptor) {
			if (s_pb_time(c, fd->name, *(Yjlink__V1__Time **)member))
				s_check_field(c, rs, fd, msg);
		} else if (fd->label == PROTOBUF_C_LABEL_REPEATED) {
			size_t n = *(size_t *)((char *)msg + fd->quantifier_offset);
			ProtobufCMessage **items = *(ProtobufCMessage ***)member;
			if (!s_value_decided(c))
				s_check_count(c, fd->name, n);
			s_push(c, fd->name, 0);
			for (size_t k = 0; k < n; k++) {
				s_push(c, NULL, k);
				s_pb_msg(c, fd->descriptor, items[k]);
				s_pop(c);
			}
			s_pop(c);
		} else {
			s_push(c, fd->name, 0);
			s_pb_msg(c, fd->descriptor, *(ProtobufCMessage **)member);
			s_pop(c);
		}
	}
	s_required(c, md, rs, msg, seen);
}

static Yjlink__V1__Event *s_norm_pb(struct s_ctx *c, const uint8_t *p, size_t n, struct yj_norm_result *res)
{
	uint32_t oneofs = 0;
	Yjlink__V1__Event *ev = yjlink__v1__event__unpack(&c->arena->pb, n, p);

	if (!ev) {
		yj_reject_set(c->rej, YJ_REJ_ENCODING, "", "protobuf does not decode as yjlink.v1.Event");
		return NULL;
	}
	if (!s_pb_strings(&yjlink__v1__event__descriptor, p, n, &oneofs)) {
		yj_reject_set(c->rej, YJ_REJ_ENCODING, "", "a string field is not UTF-8 or holds a NUL");
		return NULL;
	}
	res->source_id = ev->source_id;
	/* protobuf-c keeps only the last member of a oneof: a second feed
	 * object would vanish unseen, so it is found on the wire. */
	oneofs &= ~(1u << c->body_id);
	if (oneofs) {
		const ProtobufCFieldDescriptor *fd =
			protobuf_c_message_descriptor_get_field(&yjlink__v1__event__descriptor, (unsigned)__builtin_ctz(oneofs));
		s_rej(c, YJ_REJ_SCHEMA, fd ? fd->name : NULL, "object of another feed than %s", yj_feed_name(c->feed));
	}
	s_pb_msg(c, &yjlink__v1__event__descriptor, &ev->base);
	if (!c->rc)
		s_check_event(c, ev);
	return ev;
}

/* ------------------------------------------------------------ entry */

int yj_normalise(const struct yj_norm_opts *opts, enum yj_feed feed, enum yj_content_type ct,
		 const void *payload, size_t len, struct yj_arena *arena, struct yj_norm_result *res)
{
	struct s_ctx c = { .opts = opts, .arena = arena, .tree = opts->parse_arena ? opts->parse_arena : arena,
			   .rej = &res->reject, .feed = feed, .body_id = s_feed_body(feed) };
	Yjlink__V1__Event *ev = NULL;
	cJSON *root = NULL;  /* in c.tree: never cJSON_Delete()d */
	int rc = 0;

	res->event = NULL;
	res->source_id = NULL;
	res->reject.code = YJ_REJ_NONE;
	res->reject.field[0] = res->reject.reason[0] = '\0';
	if (!payload)
		payload = "";

	if (c.body_id == 0 || (ct != YJ_CT_JSON && ct != YJ_CT_PROTOBUF)) {
		yj_reject_set(&res->reject, YJ_REJ_PROTOCOL, "", "unknown feed or content type");
	} else if (len > opts->max_bytes) {
		yj_reject_set(&res->reject, YJ_REJ_TOO_LARGE, "", "payload of %zu bytes is over the limit of %zu", len,
			      opts->max_bytes);
	} else if (ct == YJ_CT_JSON) {
		ev = s_norm_json(&c, payload, len, &root, res);
	} else {
		ev = s_norm_pb(&c, payload, len, res);
	}

	if (c.rc) {
		rc = c.rc;
		goto out;
	}
	if (res->reject.code != YJ_REJ_NONE) {
		rc = YJ_EINVAL;
		goto out;
	}
	res->event = ev;
out:
	return rc;
}
