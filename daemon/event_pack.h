/* event_pack.h: a normalised yjlink.v1.Event to its wire bytes without
 * protobuf-c's generic packer (see pbwire.h): the normaliser thread packs
 * every accepted event once, and the generic size-then-pack walk of some
 * fifty field descriptors was a fifth of that thread's work per event.
 */
#ifndef YJ_EVENT_PACK_H
#define YJ_EVENT_PACK_H

#include <stddef.h>
#include <stdint.h>

#include "yjlink.pb-c.h"

/* The bytes protobuf-c's protobuf_c_message_pack writes for ev, into
 * buf[0..cap); their length, or 0 when ev is not one this packer writes
 * (NULL, any message carrying unknown fields, a body case outside the
 * oneof, a NULL offence) or the bytes do not fit: the caller then packs
 * with protobuf-c. An empty Event is 0 bytes either way. */
size_t yj_event_pack(const Yjlink__V1__Event *ev, uint8_t *buf, size_t cap);

#endif
