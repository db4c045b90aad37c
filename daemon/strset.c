/* strset.c: see strset.h. */
#include "strset.h"

#include <stdlib.h>
#include <string.h>

#include "err.h"

/* FNV-1a with a final mix: the keys are short codes that differ in their
 * last digits ("E06000042", "E06000043"), which FNV spreads well enough;
 * the mix carries them into the low bits the mask keeps. */
static uint32_t s_hash(const char *key)
{
	uint32_t h = 2166136261u;
	for (const unsigned char *p = (const unsigned char *)key; *p; p++)
		h = (h ^ *p) * 16777619u;
	h ^= h >> 15;
	h *= 0x2c1b3c6du;
	h ^= h >> 12;
	return h;
}

int yj_strset_init(struct yj_strset *s, size_t n)
{
	*s = (struct yj_strset)YJ_STRSET_INIT;
	if (!n)
		return 0;
	if (n > SIZE_MAX / 4 / sizeof(*s->slot))
		return YJ_ENOMEM;
	size_t slots = 4;
	while (slots < 2 * n)
		slots *= 2;
	if (!(s->slot = calloc(slots, sizeof(*s->slot))))
		return YJ_ENOMEM;
	s->mask = slots - 1;
	return 0;
}

int yj_strset_add(struct yj_strset *s, const char *key, uint32_t value)
{
	if (!key || !s->slot || 2 * (s->n + 1) > s->mask + 1)
		return YJ_EINVAL;
	uint32_t h = s_hash(key);
	size_t i = h & s->mask;
	for (; s->slot[i].key; i = (i + 1) & s->mask) {
		if (s->slot[i].hash == h && !strcmp(s->slot[i].key, key))
			return YJ_EEXIST;
	}
	s->slot[i] = (struct yj_strset_slot){ key, h, value };
	s->n++;
	return 0;
}

int64_t yj_strset_get(const struct yj_strset *s, const char *key)
{
	if (!key || !s->n)
		return -1;
	uint32_t h = s_hash(key);
	for (size_t i = h & s->mask; s->slot[i].key; i = (i + 1) & s->mask) {
		if (s->slot[i].hash == h && !strcmp(s->slot[i].key, key))
			return s->slot[i].value;
	}
	return -1;
}

void yj_strset_free(struct yj_strset *s)
{
	free(s->slot);
	*s = (struct yj_strset)YJ_STRSET_INIT;
}
