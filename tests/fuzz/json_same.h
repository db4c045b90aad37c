/* json_same.h: two cJSON trees are the same (the fuzz targets and
 * tests/unit/test_json_tree.c hold json_tree.c's tree to cJSON's): types,
 * keys, strings, numbers bit for bit, order, and each list's first element
 * linking back to its last (prev), as cJSON links them. */
#ifndef YJ_JSON_SAME_H
#define YJ_JSON_SAME_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <string.h>

#include "json_tree.h"

static inline bool fz_same_tree(const cJSON *a, const cJSON *b)
{
	const cJSON *a0 = a, *b0 = b, *al = NULL, *bl = NULL;
	for (; a && b; al = a, bl = b, a = a->next, b = b->next) {
		if ((a->type & 0xFF) != (b->type & 0xFF) || a->valueint != b->valueint ||
		    memcmp(&a->valuedouble, &b->valuedouble, sizeof(double)) != 0)
			return false;
		if (!a->string != !b->string || (a->string && strcmp(a->string, b->string)))
			return false;
		if (!a->valuestring != !b->valuestring || (a->valuestring && strcmp(a->valuestring, b->valuestring)))
			return false;
		if (!fz_same_tree(a->child, b->child))
			return false;
	}
	if (a || b)
		return false;
	return !a0 || ((a0->prev == al) == (b0->prev == bl));
}

/* Every key and string of a json_tree.c tree says its length as strlen
 * would (yj_json_strlen, which the normaliser uses instead). */
static inline bool fz_lengths_known(const cJSON *t)
{
	for (; t; t = t->next) {
		if (t->string && yj_json_strlen(t->string) != strlen(t->string))
			return false;
		if (cJSON_IsString(t) && t->valuestring && yj_json_strlen(t->valuestring) != strlen(t->valuestring))
			return false;
		if (!fz_lengths_known(t->child))
			return false;
	}
	return true;
}

#endif
