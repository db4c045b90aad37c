/* strset.h: a string's row in a table loaded once, found by hash.
 *
 * The reference tables (forces, local authorities, suites, ethnicities) and
 * the config's YJS-by-LA table were found by bsearch over sorted keys: 28
 * strcmp per event on the normaliser thread and 15 more through
 * yj_config_yjs_for_la, a tenth of that thread's instructions (issue 14).
 * Here a lookup is one pass over the key (its hash) and, when a slot
 * matches the hash, one strcmp.
 *
 * Ownership: the set owns its slot array (yj_strset_free); the key strings
 * stay the caller's and must outlive the set. Not thread-safe to build;
 * once built it is only read, from any thread.
 */
#ifndef YJ_STRSET_H
#define YJ_STRSET_H

#include <stddef.h>
#include <stdint.h>

struct yj_strset_slot {
	const char *key; /* NULL: empty */
	uint32_t hash;
	uint32_t value;
};

struct yj_strset {
	struct yj_strset_slot *slot;
	size_t mask; /* slots - 1; 0 with no slots */
	size_t n;
};

#define YJ_STRSET_INIT { NULL, 0, 0 }

/* Room for n keys (at most half the slots used, so a miss ends soon).
 * 0 or YJ_ENOMEM. A set with room for none answers every lookup "absent". */
int yj_strset_init(struct yj_strset *s, size_t n);

/* key -> value. YJ_EEXIST when key is there already (the first value is
 * kept); YJ_EINVAL for NULL or beyond the n given to init. */
int yj_strset_add(struct yj_strset *s, const char *key, uint32_t value);

/* The value of key, or -1 when absent (or key NULL). */
int64_t yj_strset_get(const struct yj_strset *s, const char *key);

void yj_strset_free(struct yj_strset *s);

#endif
