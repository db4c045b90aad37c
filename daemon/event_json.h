/* event_json.h: a stored event back to the JSON of interfaces.md §2, for
 * `yjlinkctl show`, notifications and digests.
 *
 * The filter is how data sharing agreements are enforced: a field appears
 * only if allow(arg, path) says so, where path is the dotted name of the
 * field as in §2 ("child.given_name", "custody.status", "offences",
 * "markers.mappa", "child.social_worker.email"). A whole object is asked
 * about first ("child.social_worker"); when refused, none of its fields
 * appear. allow NULL means everything.
 */
#ifndef YJ_EVENT_JSON_H
#define YJ_EVENT_JSON_H

#include <cjson/cJSON.h>
#include <stdint.h>

#include "yjlink.pb-c.h"

typedef int (*yj_field_allow_fn)(void *arg, const char *path);

/* A new cJSON object (caller owns, cJSON_Delete) holding "seq", "feed",
 * "stored_at" and every allowed field of ev; NULL on allocation failure.
 * Timestamps are written back as RFC 3339 in the sender's offset. */
cJSON *yj_event_to_json(const Yjlink__V1__Event *ev, uint64_t seq, int64_t stored_at_us,
			yj_field_allow_fn allow, void *arg);

/* A UTC instant as an RFC 3339 JSON string ("...Z"); NULL on allocation failure. */
cJSON *yj_time_to_json(int64_t unix_us);

#endif
