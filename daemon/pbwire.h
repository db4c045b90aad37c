/* pbwire.h: protobuf wire encoding written field by field, the bytes
 * protobuf-c 1.4 writes for proto2 messages: fields in number order, a
 * scalar only when its has_ flag is set, a string or message only when its
 * pointer is not NULL, lengths as the shortest varint.
 *
 * For the messages written once per event (the stored Event, the routed
 * Notification), where protobuf-c's generic packer walks every field
 * descriptor twice (the size, then the bytes). Everything else, and any
 * message with unknown fields, goes through protobuf-c.
 *
 * A writer never writes past end: the first write that does not fit sets
 * over, and every later one is a no-op; the caller then falls back.
 * Nothing here allocates.
 */
#ifndef YJ_PBWIRE_H
#define YJ_PBWIRE_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

struct yj_pbw {
	uint8_t *p, *end;
	int over;
};

enum { YJ_PBW_VARINT = 0, YJ_PBW_LEN = 2 };

static inline void yj_pbw_varint(struct yj_pbw *w, uint64_t v)
{
	do {
		if (w->p >= w->end) {
			w->over = 1;
			return;
		}
		uint8_t b = v & 0x7f;
		v >>= 7;
		*w->p++ = v ? (uint8_t)(b | 0x80) : b;
	} while (v);
}

/* A varint field: uint32, uint64, bool, and int32/int64 as their 64-bit
 * two's complement (a negative int32 is ten bytes, as protobuf-c writes it). */
static inline void yj_pbw_u64(struct yj_pbw *w, unsigned field, int has, uint64_t v)
{
	if (!has)
		return;
	yj_pbw_varint(w, (uint64_t)field << 3 | YJ_PBW_VARINT);
	yj_pbw_varint(w, v);
}

static inline void yj_pbw_i32(struct yj_pbw *w, unsigned field, int has, int32_t v)
{
	yj_pbw_u64(w, field, has, (uint64_t)(int64_t)v);
}

static inline void yj_pbw_s32(struct yj_pbw *w, unsigned field, int has, int32_t v)
{
	uint32_t u = (uint32_t)v;
	yj_pbw_u64(w, field, has, (u << 1) ^ (uint32_t)-(int32_t)(u >> 31));
}

static inline void yj_pbw_bool(struct yj_pbw *w, unsigned field, int has, int v)
{
	yj_pbw_u64(w, field, has, v ? 1 : 0);
}

static inline void yj_pbw_bytes(struct yj_pbw *w, unsigned field, const void *data, size_t n)
{
	yj_pbw_varint(w, (uint64_t)field << 3 | YJ_PBW_LEN);
	yj_pbw_varint(w, n);
	if (w->over || (size_t)(w->end - w->p) < n) {
		w->over = 1;
		return;
	}
	if (n)
		memcpy(w->p, data, n);
	w->p += n;
}

static inline void yj_pbw_str(struct yj_pbw *w, unsigned field, const char *s)
{
	if (s)
		yj_pbw_bytes(w, field, s, strlen(s));
}

/* A nested message: yj_pbw_open writes the tag and a one-byte length and
 * returns where the body starts; yj_pbw_close, after the body is written,
 * puts its length there, moving the body up when the length takes more
 * than one byte (a body over 127 bytes: rare for these messages). */
static inline uint8_t *yj_pbw_open(struct yj_pbw *w, unsigned field)
{
	yj_pbw_varint(w, (uint64_t)field << 3 | YJ_PBW_LEN);
	yj_pbw_varint(w, 0);
	return w->p;
}

static inline void yj_pbw_close(struct yj_pbw *w, uint8_t *body)
{
	if (w->over)
		return;
	size_t len = (size_t)(w->p - body), extra = 0;
	for (size_t v = len >> 7; v; v >>= 7)
		extra++;
	if (extra) {
		if ((size_t)(w->end - w->p) < extra) {
			w->over = 1;
			return;
		}
		memmove(body + extra, body, len);
		w->p += extra;
	}
	uint8_t *q = body - 1;
	uint64_t v = len;
	do {
		uint8_t b = v & 0x7f;
		v >>= 7;
		*q++ = v ? (uint8_t)(b | 0x80) : b;
	} while (v);
}

#endif
