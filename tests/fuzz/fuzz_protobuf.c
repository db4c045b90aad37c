/* fuzz_protobuf.c: libFuzzer target for the protobuf decoder (yjlink.v1.Event
 * through yj_normalise with application/x-protobuf).
 *
 * Input: byte 0 selects the feed (value % 4), the rest is the payload.
 * Same invariants as fuzz_json.c (fuzz_common.h).
 *
 * Byte-level mutation rarely gets far in protobuf: every length prefix
 * around a changed varint must change with it. So half the mutations are
 * structure-aware (LLVMFuzzerCustomMutator below): the input is unpacked as
 * an Event, one field anywhere in it is changed through the protobuf-c
 * descriptors (a boundary or random number, a string from a list of codes
 * and edge cases or byte-mutated, a date shifted, a message or item added
 * or removed, the oneof switched), and the result packed again. The other
 * half, and every input that does not unpack, get libFuzzer's own
 * mutations.
 */
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
size_t LLVMFuzzerCustomMutator(uint8_t *data, size_t size, size_t max_size, unsigned int seed);
size_t LLVMFuzzerMutate(uint8_t *data, size_t size, size_t max_size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	return fz_normalise_one(YJ_CT_PROTOBUF, data, size);
}

/* ------------------------------------------------------ custom mutator */

static uint64_t s_rng;

static uint64_t s_rand(void)
{
	/* xorshift64* */
	s_rng ^= s_rng >> 12;
	s_rng ^= s_rng << 25;
	s_rng ^= s_rng >> 27;
	return s_rng * UINT64_C(2685821657736338717);
}

static size_t s_pick(size_t n) { return n ? (size_t)(s_rand() % n) : 0; }

#define S_DAY INT64_C(86400000000)
#define S_LO (INT64_C(-719528) * S_DAY)       /* 0000-01-01T00:00:00Z */
#define S_HI (INT64_C(2932897) * S_DAY)       /* 10000-01-01T00:00:00Z */
#define S_SLACK (INT64_C(300) * 1000000)

static int64_t s_int64(int64_t old)
{
	static const int64_t v[] = {
		0, -1, 1, INT64_MIN, INT64_MAX, S_LO, S_LO - 1, S_LO + 3600 * INT64_C(1000000) - 1, S_HI, S_HI - 1,
		S_HI - 3600 * INT64_C(1000000), FZ_NOW_US, FZ_NOW_US + S_SLACK, FZ_NOW_US + S_SLACK + 1,
		FZ_NOW_US - 18 * 365 * S_DAY, FZ_NOW_US - 10 * 365 * S_DAY,
	};
	static const int64_t step[] = { 1, 1000000, 60000000, 3600 * INT64_C(1000000), S_DAY, 365 * S_DAY };
	switch (s_pick(3)) {
	case 0: return v[s_pick(sizeof(v) / sizeof(v[0]))];
	case 1: return (int64_t)((uint64_t)old + (uint64_t)((int64_t)s_pick(5) - 2) * (uint64_t)step[s_pick(6)]);
	default: return (int64_t)s_rand();
	}
}

static int32_t s_int32(int32_t old, bool offset)
{
	static const int32_t off[] = { 0, 1, -1, 60, -60, 840, -720, 1439, -1439, 1440, -1440, INT32_MIN, INT32_MAX };
	static const int32_t code[] = { 0, 1, 2, 8, 16, 21, 22, 23, 99, -1, INT32_MIN, INT32_MAX };
	switch (s_pick(3)) {
	case 0: return offset ? off[s_pick(sizeof(off) / sizeof(off[0]))] : code[s_pick(sizeof(code) / sizeof(code[0]))];
	case 1: return (int32_t)((uint32_t)old + (uint32_t)((int32_t)s_pick(5) - 2));
	default: return (int32_t)s_rand();
	}
}

static const char *const s_strings[] = {
	"", "E23000029", "E23000001", "W15000001", "E06000042", "E07000177", "E10000025", "E09000033", "E06999999",
	"TVP-MK", "TVP-SLO", "NOWHERE", "detained", "released_bail", "charged_remanded", "scheduled", "held",
	"cancelled", "charge", "youth_caution", "outcome_22", "other", "male", "female", "unknown", "W1", "NS", "Z9",
	"09/123456X", "9/1X", "00/12345678A", "MK9 2HP", "mk92hp", "GIR 0AA", "SW1A  1AA", "a@b.example",
	"a..b@c.example", "a@b", "x@-b.example", "2016-02-29", "2015-02-29", "0000-01-01", "9999-12-31", "2012-13-01",
	"2008-11-22", "2008-11-23", "2016-11-22", "2016-11-23", "\xc3\xa9", "\xff", "a\x00b",
};

/* A YYYY-MM-DD string shifted by some days, or NULL when s is not one. */
static char *s_shift_date(const char *s)
{
	int y;
	unsigned m, d;
	if (strlen(s) != 10 || sscanf(s, "%4d-%2u-%2u", &y, &m, &d) != 3)
		return NULL;
	static const int32_t by[] = { 1, -1, 365, -365, 366, -366, 365 * 10, -365 * 10, 365 * 18, -365 * 18 };
	int32_t days = yj_days_from_civil(y, m, d) + by[s_pick(sizeof(by) / sizeof(by[0]))];
	yj_civil_from_days(days, &y, &m, &d);
	char *out = malloc(32);
	if (out)
		snprintf(out, 32, "%04d-%02u-%02u", y, m, d);
	return out;
}

static char *s_string(const char *old)
{
	char *out = NULL;
	switch (s_pick(4)) {
	case 0: {
		const char *s = s_strings[s_pick(sizeof(s_strings) / sizeof(s_strings[0]))];
		return strdup(s);
	}
	case 1:
		if (old && (out = s_shift_date(old)) != NULL)
			return out;
		/* fall through */
	case 2: {
		/* libFuzzer's byte mutations on the string alone */
		size_t n = old ? strlen(old) : 0, cap = n + 64;
		out = malloc(cap + 1);
		if (!out)
			return NULL;
		memcpy(out, old ? old : "", n);
		n = LLVMFuzzerMutate((uint8_t *)out, n, cap);
		out[n] = '\0';  /* an embedded NUL just shortens it */
		return out;
	}
	default: {
		/* a long one: the length limits are 128, 256 and 1024 bytes */
		static const size_t lens[] = { 127, 128, 129, 255, 256, 257, 1023, 1024, 1025 };
		size_t n = lens[s_pick(sizeof(lens) / sizeof(lens[0]))];
		out = malloc(n + 1);
		if (out) {
			memset(out, 'a' + (int)s_pick(26), n);
			out[n] = '\0';
		}
		return out;
	}
	}
}

struct s_slot {
	ProtobufCMessage *msg;
	const ProtobufCFieldDescriptor *fd;
};

/* Every field of msg and of its sub-messages, present or not. */
static void s_collect(ProtobufCMessage *msg, struct s_slot *out, size_t *n, size_t cap, int depth)
{
	const ProtobufCMessageDescriptor *md = msg->descriptor;
	if (depth > 8)
		return;
	for (unsigned i = 0; i < md->n_fields && *n < cap; i++) {
		const ProtobufCFieldDescriptor *fd = &md->fields[i];
		out[(*n)++] = (struct s_slot){ msg, fd };
		if (fd->type != PROTOBUF_C_TYPE_MESSAGE)
			continue;
		char *member = (char *)msg + fd->offset;
		if (fd->label == PROTOBUF_C_LABEL_REPEATED) {
			size_t k = *(size_t *)((char *)msg + fd->quantifier_offset);
			ProtobufCMessage **items = *(ProtobufCMessage ***)member;
			for (size_t j = 0; j < k && *n < cap; j++)
				s_collect(items[j], out, n, cap, depth + 1);
		} else if (*(ProtobufCMessage **)member &&
			   (!(fd->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) ||
			    *(uint32_t *)((char *)msg + fd->quantifier_offset) == fd->id)) {
			s_collect(*(ProtobufCMessage **)member, out, n, cap, depth + 1);
		}
	}
}

static ProtobufCMessage *s_new(const ProtobufCMessageDescriptor *md)
{
	ProtobufCMessage *m = malloc(md->sizeof_message);
	if (m)
		md->message_init(m);
	return m;
}

/* Change one field; false when nothing changed. */
static bool s_mutate_field(ProtobufCMessage *msg, const ProtobufCFieldDescriptor *fd)
{
	char *member = (char *)msg + fd->offset;
	char *qp = (char *)msg + fd->quantifier_offset;
	protobuf_c_boolean *has = (protobuf_c_boolean *)qp;

	switch (fd->type) {
	case PROTOBUF_C_TYPE_INT64:
		if (*has && s_pick(8) == 0) {
			*has = 0;
			return true;
		}
		*(int64_t *)member = s_int64(*has ? *(int64_t *)member : FZ_NOW_US);
		*has = 1;
		return true;
	case PROTOBUF_C_TYPE_INT32:
	case PROTOBUF_C_TYPE_SINT32:
		if (*has && s_pick(8) == 0) {
			*has = 0;
			return true;
		}
		*(int32_t *)member = s_int32(*(int32_t *)member, fd->type == PROTOBUF_C_TYPE_SINT32);
		*has = 1;
		return true;
	case PROTOBUF_C_TYPE_BOOL:
		if (*has && s_pick(3) == 0)
			*has = 0;
		else
			*has = 1, *(protobuf_c_boolean *)member = !*(protobuf_c_boolean *)member;
		return true;
	case PROTOBUF_C_TYPE_STRING: {
		char **sp = (char **)member;
		char *s = NULL;
		if (!*sp || s_pick(6) != 0) {
			s = s_string(*sp);
			if (!s)
				return false;
		}
		free(*sp);
		*sp = s;
		return true;
	}
	case PROTOBUF_C_TYPE_MESSAGE: {
		const ProtobufCMessageDescriptor *sub = fd->descriptor;
		if (fd->label == PROTOBUF_C_LABEL_REPEATED) {
			size_t *np = (size_t *)qp;
			ProtobufCMessage ***items = (ProtobufCMessage ***)member;
			if (*np && s_pick(2) == 0) {
				protobuf_c_message_free_unpacked((*items)[--*np], NULL);
				return true;
			}
			size_t add = s_pick(4) == 0 ? 21 : 1;  /* the limit is 20 offences */
			ProtobufCMessage **ni = realloc(*items, (*np + add) * sizeof(*ni));
			if (!ni)
				return false;
			*items = ni;
			for (size_t k = 0; k < add; k++) {
				ProtobufCMessage *m = s_new(sub);
				if (!m)
					return false;
				ni[(*np)++] = m;
			}
			return true;
		}
		ProtobufCMessage **mp = (ProtobufCMessage **)member;
		bool oneof = (fd->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) != 0;
		uint32_t *which = (uint32_t *)qp;
		bool present = *mp && (!oneof || *which == fd->id);
		if (present) {
			protobuf_c_message_free_unpacked(*mp, NULL);
			*mp = NULL;
			if (oneof)
				*which = 0;
			return true;
		}
		if (oneof && *which && *mp) {
			/* another member of the oneof is set (they share the pointer) */
			protobuf_c_message_free_unpacked(*mp, NULL);
			*mp = NULL;
		}
		*mp = s_new(sub);
		if (!*mp)
			return false;
		if (oneof)
			*which = fd->id;
		return true;
	}
	default:
		return false;
	}
}

size_t LLVMFuzzerCustomMutator(uint8_t *data, size_t size, size_t max_size, unsigned int seed)
{
	s_rng = (uint64_t)seed * UINT64_C(0x9E3779B97F4A7C15) + 1;
	if (size < 2 || max_size < 2 || s_pick(2) == 0)
		return LLVMFuzzerMutate(data, size, max_size);
	Yjlink__V1__Event *ev = yjlink__v1__event__unpack(NULL, size - 1, data + 1);
	if (!ev)
		return LLVMFuzzerMutate(data, size, max_size);

	struct s_slot slots[512];
	size_t n = 0;
	s_collect(&ev->base, slots, &n, sizeof(slots) / sizeof(slots[0]), 0);
	bool changed = false;
	for (size_t rounds = 1 + s_pick(3), i = 0; i < rounds && n; i++) {
		struct s_slot sl = slots[s_pick(n)];
		changed |= s_mutate_field(sl.msg, sl.fd);
		/* the tree may have changed shape: look again */
		n = 0;
		s_collect(&ev->base, slots, &n, sizeof(slots) / sizeof(slots[0]), 0);
	}
	if (s_pick(16) == 0)
		data[0] = (uint8_t)s_pick(4), changed = true;  /* another feed */
	size_t len = changed ? protobuf_c_message_get_packed_size(&ev->base) : 0;
	if (!changed || len + 1 > max_size) {
		yjlink__v1__event__free_unpacked(ev, NULL);
		return LLVMFuzzerMutate(data, size, max_size);
	}
	protobuf_c_message_pack(&ev->base, data + 1);
	yjlink__v1__event__free_unpacked(ev, NULL);
	return len + 1;
}
