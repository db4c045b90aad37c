/* json_tree.c: see json_tree.h.
 *
 * Each rule below is cJSON 1.7's, as its parse_value, parse_string,
 * parse_number, parse_array and parse_object apply it, because the point
 * is the same answer for every input. The odd ones, kept on purpose:
 * - "whitespace" is any byte <= 32, and a skip that reaches the end steps
 *   back onto the last byte (which then fails as a token);
 * - a UTF-8 byte order mark is skipped only when at least two more bytes
 *   follow it;
 * - a number is the longest run of [0-9+-eE.], given to strtod, and ends
 *   where strtod stopped (Debian's 1.7.15 reads the whole run: upstream's
 *   63-byte buffer went with the fix of CVE-2023-26819);
 * - a \u escape with a non-hex digit is U+0000 (the normaliser's pre-pass
 *   refuses it first), an unpaired low surrogate or a high one not followed
 *   by a low one is refused;
 * - nesting deeper than 1000 arrays and objects is refused.
 */
#include "json_tree.h"

#include <limits.h>
#include <locale.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#define S_NESTING_LIMIT 1000  /* CJSON_NESTING_LIMIT */
#define S_NUMBER_SMALL 64     /* a number this long or less is copied on the stack */

struct s_rd {
	unsigned char *p;     /* the arena's copy of the input: strings are decoded where they stand */
	size_t n, at;
	unsigned depth;
	struct yj_arena *a;
	int oom;
	unsigned plain_depth; /* nesting beyond this is not plain */
	bool odd;             /* something read was not plain (yj_json_read) */
};

static bool s_value(struct s_rd *r, cJSON *item);

static bool s_have(const struct s_rd *r, size_t i) { return r->at + i < r->n; }

/* Bit c set for the whitespace bytes c of RFC 8259: space, tab, LF, CR. */
#define S_PLAIN_WS (UINT64_C(1) << ' ' | UINT64_C(1) << '\t' | UINT64_C(1) << '\n' | UINT64_C(1) << '\r')

static void s_ws_run(struct s_rd *r)
{
	while (r->at < r->n && r->p[r->at] <= 32) {
		r->odd |= !(S_PLAIN_WS >> r->p[r->at] & 1);
		r->at++;
	}
	if (r->at == r->n)
		r->at--;
}

/* Between most tokens of a compact payload there is none: that test inline. */
static inline __attribute__((always_inline)) void s_ws(struct s_rd *r)
{
	if (r->at < r->n && r->p[r->at] <= 32)
		s_ws_run(r);
}

static cJSON *s_node(struct s_rd *r)
{
	cJSON *c = yj_arena_alloc(r->a, sizeof(*c));
	if (!c) {
		r->oom = 1;
		return NULL;
	}
	memset(c, 0, sizeof(*c));
	return c;
}

static unsigned s_hex4(const unsigned char *h)
{
	unsigned v = 0;
	for (int i = 0; i < 4; i++) {
		unsigned d;
		if (h[i] >= '0' && h[i] <= '9')
			d = h[i] - '0';
		else if (h[i] >= 'A' && h[i] <= 'F')
			d = 10u + h[i] - 'A';
		else if (h[i] >= 'a' && h[i] <= 'f')
			d = 10u + h[i] - 'a';
		else
			return 0;
		v = v << 4 | d;
	}
	return v;
}

/* The \u escape at s (s[0] the backslash), before end: its UTF-8 into *out;
 * the escape's length, 0 when refused. */
static size_t s_utf16(const unsigned char *s, const unsigned char *end, unsigned char **out)
{
	unsigned long cp;
	size_t len;
	if (end - s < 6)
		return 0;
	unsigned first = s_hex4(s + 2);
	if (first >= 0xDC00 && first <= 0xDFFF)
		return 0;
	if (first >= 0xD800 && first <= 0xDBFF) {
		const unsigned char *second = s + 6;
		if (end - second < 6 || second[0] != '\\' || second[1] != 'u')
			return 0;
		unsigned lo = s_hex4(second + 2);
		if (lo < 0xDC00 || lo > 0xDFFF)
			return 0;
		cp = 0x10000ul + (((unsigned long)(first & 0x3FF) << 10) | (lo & 0x3FF));
		len = 12;
	} else {
		cp = first;
		len = 6;
	}
	unsigned char *o = *out;
	if (cp < 0x80) {
		o[0] = (unsigned char)cp;
		*out = o + 1;
	} else if (cp < 0x800) {
		o[0] = (unsigned char)(0xC0 | cp >> 6);
		o[1] = (unsigned char)(0x80 | (cp & 0x3F));
		*out = o + 2;
	} else if (cp < 0x10000) {
		o[0] = (unsigned char)(0xE0 | cp >> 12);
		o[1] = (unsigned char)(0x80 | (cp >> 6 & 0x3F));
		o[2] = (unsigned char)(0x80 | (cp & 0x3F));
		*out = o + 3;
	} else {
		o[0] = (unsigned char)(0xF0 | cp >> 18);
		o[1] = (unsigned char)(0x80 | (cp >> 12 & 0x3F));
		o[2] = (unsigned char)(0x80 | (cp >> 6 & 0x3F));
		o[3] = (unsigned char)(0x80 | (cp & 0x3F));
		*out = o + 4;
	}
	return len;
}

static bool s_str_special(unsigned char c) { return c == '"' || c == '\\' || c < 0x20 || c >= 0x80; }

/* The copy of the payload is followed by this many zero bytes, so that a
 * string's scan may read 16 bytes at once up to its end: a zero is a
 * control byte, one of the bytes the scan stops at, so it never goes past
 * them. */
#define S_PAD 16
_Static_assert(S_PAD >= 16, "yj_json_strdup (json_tree.h) reads 16 bytes from where a string starts");

/* The first '"' or '\\' in [q, end), or end; *odd set when a control
 * or non-ASCII byte comes before it. Strings are most of a payload, and
 * most are shorter than 16 bytes: with SSE2 one load and one mask find the
 * end of most (the padding makes the load safe however near the end it
 * starts; as a signed byte, every control and non-ASCII byte is below
 * 0x20). Elsewhere 8 bytes are tested at once: in that SWAR mask only bits
 * above a true hit can be false, so on a little-endian machine its lowest
 * set bit is the first such byte. */
/* Inlined where it is used (as is s_string): a call per string was some
 * 17 instructions of saved registers, 4 % of the normaliser. */
#define S_INLINE static inline __attribute__((always_inline))
S_INLINE const unsigned char *s_quote_or_backslash(const unsigned char *q, const unsigned char *end, bool *odd)
{
	for (;;) {
#if defined(__SSE2__)
		const __m128i quote = _mm_set1_epi8('"'), bslash = _mm_set1_epi8('\\'), space = _mm_set1_epi8(0x20);
		for (;;) {
			__m128i v = _mm_loadu_si128((const __m128i *)(const void *)q);
			__m128i hit = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, quote), _mm_cmpeq_epi8(v, bslash)),
						   _mm_cmplt_epi8(v, space));
			unsigned m = (unsigned)_mm_movemask_epi8(hit);
			if (m) {
				q += __builtin_ctz(m);
				break;
			}
			q += 16;
		}
		if (q >= end)
			return end;
#elif defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
		const uint64_t ones = UINT64_C(0x0101010101010101), high = UINT64_C(0x8080808080808080);
		while (end - q >= 8) {
			uint64_t w, x, y;
			memcpy(&w, q, 8);
			x = w ^ (ones * '"');
			y = w ^ (ones * '\\');
			uint64_t hit = (((x - ones) & ~x) | ((y - ones) & ~y) | ((w - ones * 0x20) & ~w) | w) & high;
			if (hit) {
				q += __builtin_ctzll(hit) / 8;
				break;
			}
			q += 8;
		}
#endif
		while (q < end && !s_str_special(*q))
			q++;
		if (q >= end || *q == '"' || *q == '\\')
			return q;
		*odd = true;
		q++;
	}
}

/* The string at r->at (its opening quote), into *out: decoded in place
 * in the input's copy, ended by a NUL where its closing quote was (an
 * escape never decodes longer than it is written, and nothing after the
 * closing quote is touched). One copy of the payload instead of an
 * allocation and a copy for each of the fifty or so strings of an event. */
S_INLINE bool s_string(struct s_rd *r, char **out)
{
	unsigned char *start = r->p + r->at + 1;
	const unsigned char *q = start, *end = r->p + r->n;
	bool escapes = false;
	if (r->p[r->at] != '"')
		return false;
	for (;;) {
		q = s_quote_or_backslash(q, end, &r->odd);
		if (q >= end)
			return false;
		if (*q == '"')
			break;
		if (q + 1 >= end)
			return false;  /* a backslash last */
		escapes = true;
		q += 2;
	}
	size_t raw = (size_t)(q - start);
	unsigned char *o = start;
	if (!escapes) {
		o[raw] = '\0';
	} else {
		unsigned char *w = o;
		for (const unsigned char *s = start; s < q;) {
			if (*s != '\\') {
				*w++ = *s++;
				continue;
			}
			size_t k = 2;
			switch (s[1]) {
			case 'b': *w++ = '\b'; break;
			case 'f': *w++ = '\f'; break;
			case 'n': *w++ = '\n'; break;
			case 'r': *w++ = '\r'; break;
			case 't': *w++ = '\t'; break;
			case '"':
			case '\\':
			case '/': *w++ = s[1]; break;
			case 'u':
				if (!(k = s_utf16(s, q, &w)))
					return false;
				break;
			default:
				return false;
			}
			s += k;
		}
		*w = '\0';
	}
	/* The length where the opening quote was (json_tree.h: yj_json_strlen).
	 * A NUL can be in it only by an escape or as a control byte, and a
	 * control byte makes the read odd: for the common plain payload the
	 * length is what the scan found. */
	size_t len = escapes || r->odd ? strlen((const char *)o) : raw;
	o[-1] = (unsigned char)(len < YJ_JSON_LEN_LONG ? len : YJ_JSON_LEN_LONG);
	*out = (char *)o;
	r->at = (size_t)(q - r->p) + 1;
	r->odd |= escapes;
	return true;
}

static bool s_number(struct s_rd *r, cJSON *item)
{
	const unsigned char *s = r->p + r->at;
	size_t len = 0;
	bool plain = true;  /* [-]digits: exact without strtod */
	while (r->at + len < r->n) {
		unsigned char c = s[len];
		if (c >= '0' && c <= '9')
			;
		else if (c == '-' && len == 0)
			;
		else if (c == '+' || c == '-' || c == 'e' || c == 'E' || c == '.')
			plain = false;
		else
			break;
		len++;
	}
	double d;
	size_t used;
	size_t digits = len - (s[0] == '-');
	if (plain && digits >= 1 && digits <= 15) {
		/* RFC 8259 has no leading zero: "01" is cJSON's, not plain */
		r->odd |= digits > 1 && s[len - digits] == '0';
		uint64_t v = 0;
		for (size_t i = s[0] == '-'; i < len; i++)
			v = v * 10 + (uint64_t)(s[i] - '0');
		d = (double)v;
		if (s[0] == '-')
			d = -d;
		used = len;
	} else {
		r->odd = true;
		char small[S_NUMBER_SMALL], *after = NULL;
		char *buf = len < sizeof(small) ? small : yj_arena_alloc(r->a, len + 1);
		char point = localeconv()->decimal_point[0];
		if (!buf) {
			r->oom = 1;
			return false;
		}
		for (size_t i = 0; i < len; i++)
			buf[i] = s[i] == '.' ? point : (char)s[i];
		buf[len] = '\0';
		d = strtod(buf, &after);
		if (after == buf)
			return false;
		used = (size_t)(after - buf);
	}
	item->valuedouble = d;
	item->valueint = d >= INT_MAX ? INT_MAX : d <= (double)INT_MIN ? INT_MIN : (int)d;
	item->type = cJSON_Number;
	r->at += used;
	return true;
}

/* The elements of an array (close ']') or the members of an object ('}'). */
static bool s_container(struct s_rd *r, cJSON *item, unsigned char close)
{
	cJSON *head = NULL, *cur = NULL;
	bool object = close == '}';
	if (r->depth >= S_NESTING_LIMIT)
		return false;
	r->depth++;
	r->odd |= r->depth > r->plain_depth;
	r->at++;
	s_ws(r);
	if (s_have(r, 0) && r->p[r->at] == close)
		goto done;
	if (!s_have(r, 0))
		return false;
	r->at--;
	do {
		cJSON *it = s_node(r);
		if (!it)
			return false;
		if (!head) {
			head = cur = it;
		} else {
			cur->next = it;
			it->prev = cur;
			cur = it;
		}
		if (object && !s_have(r, 1))
			return false;
		r->at++;
		s_ws(r);
		if (object) {
			if (!s_have(r, 0) || !s_string(r, &it->string))
				return false;
			s_ws(r);
			if (!s_have(r, 0) || r->p[r->at] != ':')
				return false;
			r->at++;
			s_ws(r);
		}
		if (!s_value(r, it))
			return false;
		s_ws(r);
	} while (s_have(r, 0) && r->p[r->at] == ',');
	if (!s_have(r, 0) || r->p[r->at] != close)
		return false;
done:
	r->depth--;
	if (head)
		head->prev = cur;
	item->type = object ? cJSON_Object : cJSON_Array;
	item->child = head;
	r->at++;
	return true;
}

static bool s_literal(const struct s_rd *r, const char *word, size_t len)
{
	return r->at + len <= r->n && !memcmp(r->p + r->at, word, len);
}

static bool s_value(struct s_rd *r, cJSON *item)
{
	if (s_literal(r, "null", 4)) {
		item->type = cJSON_NULL;
		r->at += 4;
		return true;
	}
	if (s_literal(r, "false", 5)) {
		item->type = cJSON_False;
		r->at += 5;
		return true;
	}
	if (s_literal(r, "true", 4)) {
		item->type = cJSON_True;
		item->valueint = 1;
		r->at += 4;
		return true;
	}
	if (!s_have(r, 0))
		return false;
	unsigned char c = r->p[r->at];
	if (c == '-' || (c >= '0' && c <= '9'))
		return s_number(r, item);
	if (c == '"') {
		if (!s_string(r, &item->valuestring))
			return false;
		item->type = cJSON_String;
		return true;
	}
	if (c == '[')
		return s_container(r, item, ']');
	if (c == '{')
		return s_container(r, item, '}');
	return false;
}

cJSON *yj_json_read(struct yj_arena *a, const char *p, size_t n, unsigned plain_depth, const char **end, int *oom,
		    int *plain)
{
	struct s_rd r = { NULL, n, 0, 0, a, 0, plain_depth, false };
	cJSON *root = NULL;
	*oom = 0;
	*plain = 0;
	if (!p || !n)
		return NULL;
	if (n > SIZE_MAX - S_PAD || !(r.p = yj_arena_alloc(a, n + S_PAD))) {
		*oom = 1;
		return NULL;
	}
	memcpy(r.p, p, n);
	memset(r.p + n, 0, S_PAD);
	if (r.n > 4 && !memcmp(r.p, "\xEF\xBB\xBF", 3)) {
		r.at = 3;
		r.odd = true;
	}
	s_ws(&r);
	if ((root = s_node(&r)) && s_value(&r, root)) {
		if (end)
			*end = p + r.at;
		*plain = !r.odd;
		return root;
	}
	*oom = r.oom;
	return NULL;
}

cJSON *yj_json_parse(struct yj_arena *a, const char *p, size_t n, const char **end, int *oom)
{
	int plain;
	return yj_json_read(a, p, n, UINT_MAX, end, oom, &plain);
}
