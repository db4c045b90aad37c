/* json_tree.h: the JSON reader of the normaliser.
 *
 * It builds the same cJSON tree as cJSON 1.7's cJSON_ParseWithLengthOpts()
 * (without require_null_terminated) and accepts exactly what that accepts,
 * quirks included, so that everything the normaliser does with the tree,
 * and every refusal it makes, stays as it was. What it saves is cJSON's
 * way there: three strncmp against "null", "false" and "true" before every
 * value, a hook call per node and string, the number copied for strtod
 * even when it is a plain integer. It was a third of the normaliser
 * thread's instructions (issue 14). The fuzz targets hold the two trees
 * equal for every input (tests/fuzz/fuzz_common.h).
 *
 * Ownership: every node and string is allocated from the arena and lives
 * as long as it; never cJSON_Delete() a tree made here.
 */
#ifndef YJ_JSON_TREE_H
#define YJ_JSON_TREE_H

#include <cjson/cJSON.h>
#include <stddef.h>
#include <string.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "arena.h"

/* The tree of p[0..n), or NULL when cJSON would refuse it (*oom 0) or the
 * arena is exhausted (*oom 1). *end: where the value ended, as cJSON's
 * return_parse_end (trailing bytes are the caller's to judge). */
cJSON *yj_json_parse(struct yj_arena *a, const char *p, size_t n, const char **end, int *oom);

/* yj_json_parse, and *plain 1 when the value read (p up to *end) was
 * plain: no byte order mark; whitespace only of space, tab, LF and CR;
 * strings of printable ASCII without escapes; numbers only integers of
 * at most 15 digits in RFC 8259 form; nesting at most plain_depth. Such a
 * value holds nothing the normaliser's pre-pass would refuse (its
 * encoding and strict-syntax checks), so for the common payload the
 * pre-pass is not run (normalise.c, s_norm_json). */
cJSON *yj_json_read(struct yj_arena *a, const char *p, size_t n, unsigned plain_depth, const char **end, int *oom,
		    int *plain);

/* The length of a key or string value of a tree made here, without
 * strlen: the reader leaves it in the byte before the string (where its
 * opening quote was), YJ_JSON_LEN_LONG meaning "this long or longer". The
 * normaliser asks it of every key and value, some forty per event.
 * Only for strings of these trees; a string may hold "\u0000", so the
 * length is up to its first NUL, as strlen would say. */
#define YJ_JSON_LEN_LONG 255u
static inline size_t yj_json_strlen(const char *s)
{
	unsigned char n = (unsigned char)s[-1];
	return n < YJ_JSON_LEN_LONG ? n : YJ_JSON_LEN_LONG + strlen(s + YJ_JSON_LEN_LONG);
}

/* A NUL-terminated copy of a string of such a tree, len its
 * yj_json_strlen, in a (NULL when it is exhausted). Every string of the
 * tree lies in the reader's copy of the payload, which is followed by 16
 * zero bytes: a string shorter than 16 bytes is copied with one 16-byte
 * load and store (the arena hands out multiples of 16), not a memcpy
 * call. Most values of an event are that short. */
static inline char *yj_json_strdup(struct yj_arena *a, const char *s, size_t len)
{
#if defined(__SSE2__)
	if (len < 16) {
		char *p = yj_arena_alloc(a, 16);
		if (!p)
			return NULL;
		_mm_storeu_si128((__m128i *)(void *)p, _mm_loadu_si128((const __m128i *)(const void *)s));
		p[len] = '\0';
		return p;
	}
#endif
	return yj_arena_strndup(a, s, len);
}

#endif
