/* event_json.c: see event_json.h.
 *
 * Driven by the protobuf-c descriptors, as the normaliser's JSON walk is:
 * the .proto field names are the JSON keys of interfaces.md §2 (the feed
 * object of voluntary_interview is `interview` in both), so writing an
 * event back is one generic walk and cannot drift from what is accepted.
 * Items of a repeated field are filtered by the field's path without an
 * index ("offences.code"): agreements name fields, not positions.
 */
#include "event_json.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "normalise.h"

#define S_PATH_MAX 160

struct s_out {
	yj_field_allow_fn allow;  /* NULL: everything */
	void *arg;                /* passed to allow */
	bool oom;                 /* a cJSON allocation failed */
};

static bool s_allowed(const struct s_out *o, const char *path)
{
	return !o->allow || o->allow(o->arg, path);
}

static bool s_present(const ProtobufCFieldDescriptor *fd, const ProtobufCMessage *msg)
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

static void s_check(struct s_out *o, const void *added)
{
	if (!added)
		o->oom = true;
}

static void s_msg(struct s_out *o, cJSON *obj, const ProtobufCMessageDescriptor *md, const ProtobufCMessage *msg,
		  const char *prefix);

/* A sub-message as a JSON object at key, holding its allowed fields. */
static cJSON *s_sub(struct s_out *o, const ProtobufCMessageDescriptor *md, const ProtobufCMessage *msg,
		    const char *path)
{
	cJSON *sub = cJSON_CreateObject();
	if (!sub) {
		o->oom = true;
		return NULL;
	}
	s_msg(o, sub, md, msg, path);
	return sub;
}

static void s_field(struct s_out *o, cJSON *obj, const ProtobufCFieldDescriptor *fd, const ProtobufCMessage *msg,
		    const char *path)
{
	const char *member = (const char *)msg + fd->offset;

	switch (fd->type) {
	case PROTOBUF_C_TYPE_STRING:
		s_check(o, cJSON_AddStringToObject(obj, fd->name, *(char *const *)member));
		break;
	case PROTOBUF_C_TYPE_BOOL:
		s_check(o, cJSON_AddBoolToObject(obj, fd->name, *(const protobuf_c_boolean *)member));
		break;
	case PROTOBUF_C_TYPE_INT32:
		s_check(o, cJSON_AddNumberToObject(obj, fd->name, *(const int32_t *)member));
		break;
	case PROTOBUF_C_TYPE_UINT32:
		s_check(o, cJSON_AddNumberToObject(obj, fd->name, *(const uint32_t *)member));
		break;
	case PROTOBUF_C_TYPE_MESSAGE:
		if (fd->descriptor == &yjlink__v1__time__descriptor) {
			char buf[48];
			yj_time_format(*(Yjlink__V1__Time *const *)member, buf, sizeof(buf));
			s_check(o, cJSON_AddStringToObject(obj, fd->name, buf));
		} else if (fd->label == PROTOBUF_C_LABEL_REPEATED) {
			size_t n = *(const size_t *)((const char *)msg + fd->quantifier_offset);
			ProtobufCMessage *const *items = *(ProtobufCMessage *const *const *)member;
			cJSON *arr = cJSON_AddArrayToObject(obj, fd->name);
			s_check(o, arr);
			for (size_t i = 0; arr && i < n && !o->oom; i++) {
				cJSON *it = s_sub(o, fd->descriptor, items[i], path);
				if (it)
					cJSON_AddItemToArray(arr, it);
			}
		} else {
			cJSON *sub = s_sub(o, fd->descriptor, *(ProtobufCMessage *const *)member, path);
			if (sub)
				cJSON_AddItemToObject(obj, fd->name, sub);
		}
		break;
	default:
		break;  /* no other types in yjlink.v1.Event */
	}
}

static void s_msg(struct s_out *o, cJSON *obj, const ProtobufCMessageDescriptor *md, const ProtobufCMessage *msg,
		  const char *prefix)
{
	char path[S_PATH_MAX];

	for (unsigned i = 0; i < md->n_fields && !o->oom; i++) {
		const ProtobufCFieldDescriptor *fd = &md->fields[i];
		if (!s_present(fd, msg))
			continue;
		snprintf(path, sizeof(path), "%s%s%s", prefix, *prefix ? "." : "", fd->name);
		if (s_allowed(o, path))
			s_field(o, obj, fd, msg, path);
	}
}

cJSON *yj_event_to_json(const Yjlink__V1__Event *ev, uint64_t seq, int64_t stored_at_us,
			yj_field_allow_fn allow, void *arg)
{
	struct s_out o = { allow, arg, false };
	Yjlink__V1__Time stored = YJLINK__V1__TIME__INIT;
	char buf[48];
	cJSON *obj = cJSON_CreateObject();

	if (!obj)
		return NULL;
	stored.has_unix_us = 1;
	stored.unix_us = stored_at_us;
	yj_time_format(&stored, buf, sizeof(buf));
	s_check(&o, cJSON_AddNumberToObject(obj, "seq", (double)seq));
	s_check(&o, cJSON_AddStringToObject(obj, "feed", yj_feed_name(yj_event_feed(ev))));
	s_check(&o, cJSON_AddStringToObject(obj, "stored_at", buf));
	if (!o.oom && ev)
		s_msg(&o, obj, &yjlink__v1__event__descriptor, &ev->base, "");
	if (o.oom) {
		cJSON_Delete(obj);
		return NULL;
	}
	return obj;
}

cJSON *yj_time_to_json(int64_t unix_us)
{
	char buf[48];
	Yjlink__V1__Time t = YJLINK__V1__TIME__INIT;
	t.has_unix_us = 1;
	t.unix_us = unix_us;
	yj_time_format(&t, buf, sizeof(buf));
	return cJSON_CreateString(buf);
}
