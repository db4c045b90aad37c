/* fuzz_common.h: what the libFuzzer targets in tests/fuzz/ share.
 *
 * - the real reference tables compiled into the binary (loaded once);
 * - one fixed clock, so a crash input replays the same way next year;
 * - the invariants every normaliser result must keep, checked by
 *   fz_check_result(): a refusal has a code the normaliser may give and a
 *   field path of only [a-z0-9_.]; an accepted event packs, unpacks and
 *   re-normalises (protobuf) to the same bytes, and goes to event JSON and
 *   back (JSON) to the same bytes.
 *
 * A broken invariant prints what broke and abort()s, which libFuzzer reports
 * as a crash and saves the input.
 *
 * Environment:
 *   YJ_FUZZ_ALLOW=LIST   comma-separated open findings (README.md) to let
 *                        pass, so a campaign can fuzz past them until fixed:
 *     dots     a field path may have empty segments (a path cut at its
 *              159-byte limit right after a '.')
 *     paths    a field path need only be well-formed UTF-8
 *   "all" lets every one pass.
 */
#ifndef YJ_FUZZ_COMMON_H
#define YJ_FUZZ_COMMON_H

#include <cjson/cJSON.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "err.h"
#include "event_json.h"
#include "json_tree.h"
#include "json_same.h"
#include "log.h"
#include "normalise.h"
#include "refdata.h"

/* 2026-11-22T12:00:00Z: the clock every target runs at (the seed corpus
 * was generated with yjlink-sim --now at this instant). */
#define FZ_NOW_US (INT64_C(1795348800) * 1000000)
#define FZ_MAX_BYTES 65536  /* ingest.max_message_bytes default */

__attribute__((noreturn, format(printf, 1, 2))) static inline void fz_fail(const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "\n*** fuzz invariant broken: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n");
	fflush(stderr);
	abort();
}

#define FZ_CHECK(cond, ...)                      \
	do {                                     \
		if (!(cond))                     \
			fz_fail(__VA_ARGS__);    \
	} while (0)

static inline const struct yj_refdata *fz_ref(void)
{
	static struct yj_refdata *ref;
	if (!ref) {
		if (yj_refdata_load(NULL, NULL, &ref) != 0) {
			fprintf(stderr, "fuzz: cannot load the embedded reference tables\n");
			exit(1);
		}
	}
	return ref;
}

/* 1 when YJ_FUZZ_ALLOW names the known finding `what`. */
static inline bool fz_allowed(const char *what)
{
	const char *e = getenv("YJ_FUZZ_ALLOW");
	size_t n = strlen(what);
	for (const char *p = e; p && *p;) {
		const char *end = strchr(p, ',');
		size_t k = end ? (size_t)(end - p) : strlen(p);
		if ((k == n && memcmp(p, what, n) == 0) || (k == 3 && memcmp(p, "all", 3) == 0))
			return true;
		p = end ? end + 1 : NULL;
	}
	return false;
}

static inline bool fz_lax_paths(void)
{
	static int lax = -1;
	if (lax < 0)
		lax = fz_allowed("paths");
	return lax;
}

static inline bool fz_lax_dots(void)
{
	static int lax = -1;
	if (lax < 0)
		lax = fz_allowed("dots");
	return lax;
}

/* Well-formed UTF-8 and, when printable, no byte < 0x20 and no DEL. */
static inline bool fz_utf8(const char *s, bool printable)
{
	const unsigned char *p = (const unsigned char *)s;
	while (*p) {
		unsigned c = *p;
		size_t k;
		if (printable && (c < 0x20 || c == 0x7f))
			return false;
		if (c < 0x80) {
			p++;
			continue;
		}
		if (c >= 0xC2 && c < 0xE0)
			k = 2;
		else if (c >= 0xE0 && c < 0xF0)
			k = 3;
		else if (c >= 0xF0 && c < 0xF5)
			k = 4;
		else
			return false;
		for (size_t i = 1; i < k; i++) {
			if ((p[i] & 0xC0) != 0x80)
				return false;
		}
		if (k == 3 && ((c == 0xE0 && p[1] < 0xA0) || (c == 0xED && p[1] > 0x9F)))
			return false;
		if (k == 4 && ((c == 0xF0 && p[1] < 0x90) || (c == 0xF4 && p[1] > 0x8F)))
			return false;
		p += k;
	}
	return true;
}

static inline bool fz_printable_utf8(const char *s) { return fz_utf8(s, true); }

/* A dotted path of interfaces.md §1: "", or [a-z0-9_]+ joined by single dots. */
static inline bool fz_path_ok(const char *f)
{
	if (fz_lax_paths())
		return fz_utf8(f, false);
	if (!*f)
		return true;
	size_t seg = 0;
	for (const char *p = f;; p++) {
		if (*p == '.' || *p == '\0') {
			if (seg == 0 && !fz_lax_dots())
				return false;
			if (*p == '\0')
				return true;
			seg = 0;
			continue;
		}
		if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_'))
			return false;
		seg++;
	}
}

/* The checks on any refusal; `max` is the highest code the caller may see. */
static inline void fz_check_reject(const struct yj_reject *r, enum yj_reject_code min, enum yj_reject_code max)
{
	FZ_CHECK(r->code >= min && r->code <= max, "refusal code %d outside %d..%d", (int)r->code, (int)min, (int)max);
	FZ_CHECK(*yj_reject_code_name(r->code), "refusal code %d has no name", (int)r->code);
	FZ_CHECK(memchr(r->field, 0, sizeof(r->field)) != NULL, "field not NUL-terminated");
	FZ_CHECK(memchr(r->reason, 0, sizeof(r->reason)) != NULL, "reason not NUL-terminated");
	FZ_CHECK(fz_path_ok(r->field), "%s refusal with a field path outside [a-z0-9_.]: \"%s\" (reason: %s)",
		 yj_reject_code_name(r->code), r->field, r->reason);
	FZ_CHECK(r->reason[0] != '\0', "%s refusal without a reason (field \"%s\")", yj_reject_code_name(r->code),
		 r->field);
	FZ_CHECK(fz_printable_utf8(r->reason), "%s refusal whose reason is not printable UTF-8",
		 yj_reject_code_name(r->code));
}

struct fz_bytes {
	uint8_t *p;
	size_t n;
};

static inline struct fz_bytes fz_pack(const Yjlink__V1__Event *ev)
{
	struct fz_bytes b;
	b.n = protobuf_c_message_get_packed_size(&ev->base);
	b.p = malloc(b.n ? b.n : 1);
	FZ_CHECK(b.p != NULL, "out of memory");
	size_t w = protobuf_c_message_pack(&ev->base, b.p);
	FZ_CHECK(w == b.n, "packed %zu bytes, get_packed_size said %zu", w, b.n);
	return b;
}

static inline void fz_hexdump(const char *what, const uint8_t *p, size_t n)
{
	fprintf(stderr, "%s (%zu bytes):", what, n);
	for (size_t i = 0; i < n && i < 512; i++)
		fprintf(stderr, "%s%02x", i % 32 ? "" : "\n  ", p[i]);
	fprintf(stderr, "\n");
}

static inline void fz_same_bytes(const char *what, const struct fz_bytes *want, const struct fz_bytes *got)
{
	if (want->n == got->n && memcmp(want->p, got->p, want->n) == 0)
		return;
	fz_hexdump("first normalisation, packed", want->p, want->n);
	fz_hexdump("second normalisation, packed", got->p, got->n);
	fz_fail("%s: re-normalised event is not byte-identical", what);
}

/* Normalise payload again (the same clock and tables) and insist it is
 * accepted and packs to exactly `want`. */
static inline void fz_renormalise(const char *what, enum yj_feed feed, enum yj_content_type ct, const void *payload,
			   size_t len, const struct fz_bytes *want)
{
	struct yj_norm_opts o = { .ref = fz_ref(), .now_us = FZ_NOW_US, .max_bytes = (size_t)-1 };
	struct yj_norm_result res;
	struct yj_arena a;
	yj_arena_init(&a, 16384);
	int rc = yj_normalise(&o, feed, ct, payload, len, &a, &res);
	if (rc != 0) {
		if (ct == YJ_CT_JSON)
			fprintf(stderr, "payload: %.*s\n", (int)len, (const char *)payload);
		else
			fz_hexdump("payload", payload, len);
		fz_fail("%s: refused (rc %d): %s at \"%s\": %s", what, rc, yj_reject_code_name(res.reject.code),
			res.reject.field, res.reject.reason);
	}
	FZ_CHECK(res.event != NULL, "%s: accepted without an event", what);
	struct fz_bytes got = fz_pack(res.event);
	fz_same_bytes(what, want, &got);
	free(got.p);
	yj_arena_free(&a);
}

/* The round trips of an accepted event. */
static inline void fz_check_event(enum yj_feed feed, const struct yj_norm_result *res)
{
	const Yjlink__V1__Event *ev = res->event;
	FZ_CHECK(ev != NULL, "accepted without an event");
	FZ_CHECK(res->reject.code == YJ_REJ_NONE, "accepted with a refusal");
	FZ_CHECK(yj_event_feed(ev) == feed, "event of feed %d accepted on feed %d", (int)yj_event_feed(ev), (int)feed);
	FZ_CHECK(res->source_id && ev->source_id && strcmp(res->source_id, ev->source_id) == 0,
		 "result source_id differs from the event's");
	/* looked_after may be absent: unknown (interfaces.md §2), not defaulted */
	FZ_CHECK(ev->child != NULL, "accepted without a child");

	struct fz_bytes packed = fz_pack(ev);

	/* protobuf: unpack (as the router does from the store), repack, and
	 * normalise the packed form again. */
	Yjlink__V1__Event *back = yjlink__v1__event__unpack(NULL, packed.n, packed.p);
	FZ_CHECK(back != NULL, "the packed normalised event does not unpack");
	struct fz_bytes repacked = fz_pack(back);
	fz_same_bytes("unpack and repack", &packed, &repacked);
	free(repacked.p);
	char child_a[300], child_b[300];
	yj_event_child_id(ev, child_a, sizeof(child_a));
	yj_event_child_id(back, child_b, sizeof(child_b));
	FZ_CHECK(strcmp(child_a, child_b) == 0, "child id changed by unpacking");
	yjlink__v1__event__free_unpacked(back, NULL);
	fz_renormalise("protobuf round trip", feed, YJ_CT_PROTOBUF, packed.p, packed.n, &packed);

	/* event JSON (yjlinkctl show, notifications) back into the normaliser */
	cJSON *obj = yj_event_to_json(ev, 42, FZ_NOW_US, NULL, NULL);
	FZ_CHECK(obj != NULL, "yj_event_to_json failed");
	FZ_CHECK(cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(obj, "seq")) == 42, "event JSON seq");
	const char *fname = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(obj, "feed"));
	FZ_CHECK(fname && strcmp(fname, yj_feed_name(feed)) == 0, "event JSON feed");
	cJSON_DeleteItemFromObjectCaseSensitive(obj, "seq");
	cJSON_DeleteItemFromObjectCaseSensitive(obj, "feed");
	cJSON_DeleteItemFromObjectCaseSensitive(obj, "stored_at");
	char *json = cJSON_PrintUnformatted(obj);
	FZ_CHECK(json != NULL, "cJSON_PrintUnformatted failed");
	cJSON_Delete(obj);
	fz_renormalise("event_json round trip", feed, YJ_CT_JSON, json, strlen(json), &packed);
	cJSON_free(json);
	free(packed.p);
}

/* Everything checked about one yj_normalise call. */
static inline void fz_check_result(enum yj_feed feed, int rc, const struct yj_norm_result *res, size_t len)
{
	FZ_CHECK(rc == 0 || rc == YJ_EINVAL, "yj_normalise returned %d", rc);
	if (rc == 0) {
		fz_check_event(feed, res);
		return;
	}
	FZ_CHECK(res->event == NULL, "refused with an event");
	/* feed and content type are valid here: never protocol, and too_large
	 * exactly when the payload is over the limit */
	fz_check_reject(&res->reject, YJ_REJ_TOO_LARGE, YJ_REJ_OUT_OF_SCOPE);
	FZ_CHECK((res->reject.code == YJ_REJ_TOO_LARGE) == (len > FZ_MAX_BYTES), "too_large for %zu bytes", len);
}

/* The feed an input's first byte selects. */
static inline enum yj_feed fz_feed(uint8_t b) { return (enum yj_feed)(YJ_FEED_CUSTODY + b % 4); }

/* The normaliser reads JSON with json_tree.c, which must accept exactly
 * what cJSON accepts, end where it ends and build the same tree: checked
 * on every input, whatever the normaliser then makes of it. */
static inline void fz_json_tree_matches_cjson(const char *p, size_t n)
{
	struct yj_arena a;
	const char *end1 = NULL, *end2 = NULL;
	int oom = 0;
	yj_arena_init(&a, 32768);
	cJSON *mine = yj_json_parse(&a, p, n, &end1, &oom);
	cJSON *theirs = cJSON_ParseWithLengthOpts(p, n, &end2, 0);
	FZ_CHECK(!oom, "json_tree ran out of memory on a %zu-byte payload", n);
	FZ_CHECK(!mine == !theirs, "json_tree %s a payload cJSON %s", mine ? "accepts" : "refuses",
		 theirs ? "accepts" : "refuses");
	if (mine && theirs) {
		FZ_CHECK(end1 == end2, "json_tree ends at %td, cJSON at %td", end1 - p, end2 - p);
		FZ_CHECK(fz_same_tree(mine, theirs), "json_tree's tree differs from cJSON's");
		FZ_CHECK(fz_lengths_known(mine), "json_tree's string lengths differ from strlen");
	}
	cJSON_Delete(theirs);
	yj_arena_free(&a);
}

/* The normaliser targets' one-input body. */
static inline int fz_normalise_one(enum yj_content_type ct, const uint8_t *data, size_t size)
{
	static struct yj_arena arena;
	static bool init;
	if (!init) {
		yj_arena_init(&arena, 32768);
		yj_log_set_level(YJ_LOG_ERR);
		init = true;
	}
	if (size < 1)
		return 0;
	enum yj_feed feed = fz_feed(data[0]);
	struct yj_norm_opts o = { .ref = fz_ref(), .now_us = FZ_NOW_US, .max_bytes = FZ_MAX_BYTES };
	struct yj_norm_result res;
	/* an exact-size heap copy, so ASan sees any read past the payload */
	size_t len = size - 1;
	uint8_t *copy = malloc(len ? len : 1);
	if (!copy)
		return 0;
	memcpy(copy, data + 1, len);
	if (ct == YJ_CT_JSON)
		fz_json_tree_matches_cjson((const char *)copy, len);
	yj_arena_reset(&arena);
	int rc = yj_normalise(&o, feed, ct, copy, len, &arena, &res);
	FZ_CHECK(rc != YJ_ENOMEM, "yj_normalise ran out of memory on a %zu-byte payload", len);
	fz_check_result(feed, rc, &res, len);

	/* The same input decides the same way (no state leaks between calls),
	 * and so it does with the JSON tree apart from the event, as ingest
	 * runs it: the tree's arena is freed before the event is read, so a
	 * pointer left into it is a use after free. The second run also has
	 * the JSON pre-pass forced: the plain payloads the first run took
	 * without it must be decided as the pre-pass would, reason included;
	 * and the fused plain reader off (normalise.h): what the first run
	 * read through it must match the tree's path, decision and bytes. */
	struct yj_arena a2, tree;
	struct yj_norm_result res2;
	yj_arena_init(&a2, 32768);
	yj_arena_init(&tree, 32768);
	struct yj_norm_opts o2 = o;
	o2.parse_arena = &tree;
	o2.always_prepass = 1;
	int rc2 = yj_normalise(&o2, feed, ct, copy, len, &a2, &res2);
	yj_arena_free(&tree);
	FZ_CHECK(rc2 == rc && res2.reject.code == res.reject.code && strcmp(res2.reject.field, res.reject.field) == 0 &&
			 strcmp(res2.reject.reason, res.reject.reason) == 0,
		 "a second run (pre-pass forced) decided differently: %d %s \"%s\" (%s) then %d %s \"%s\" (%s)", rc,
		 yj_reject_code_name(res.reject.code), res.reject.field, res.reject.reason, rc2,
		 yj_reject_code_name(res2.reject.code), res2.reject.field, res2.reject.reason);
	FZ_CHECK((res.source_id == NULL) == (res2.source_id == NULL) &&
			 (!res.source_id || strcmp(res.source_id, res2.source_id) == 0),
		 "a second run read another source_id");
	if (rc == 0) {
		struct fz_bytes b1 = fz_pack(res.event), b2 = fz_pack(res2.event);
		fz_same_bytes("second run", &b1, &b2);
		free(b1.p);
		free(b2.p);
	}
	yj_arena_free(&a2);
	free(copy);
	return 0;
}

#endif
