/* arena.c: see arena.h. */
#include "arena.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct yj_arena_block {
	struct yj_arena_block *next;  /* older block */
	size_t size;                  /* usable bytes in data */
	_Alignas(16) unsigned char data[];
};

static void *s_pb_alloc(void *data, size_t size) { return yj_arena_alloc(data, size); }
static void s_pb_free(void *data, void *p) { (void)data; (void)p; }

void yj_arena_init(struct yj_arena *a, size_t block_size)
{
	a->head = NULL;
	a->spare = NULL;
	a->cur = a->end = NULL;
	a->block_size = block_size ? block_size : 16384;
	a->keep = 0;
	a->pb.alloc = s_pb_alloc;
	a->pb.free = s_pb_free;
	a->pb.allocator_data = a;
}

void yj_arena_keep(struct yj_arena *a, size_t bytes) { a->keep = bytes; }

/* A kept block of at least need bytes, unlinked, or NULL. */
static struct yj_arena_block *s_take_spare(struct yj_arena *a, size_t need)
{
	for (struct yj_arena_block **pp = &a->spare; *pp; pp = &(*pp)->next) {
		struct yj_arena_block *b = *pp;
		if (b->size >= need) {
			*pp = b->next;
			return b;
		}
	}
	return NULL;
}

void *yj_arena_alloc_block(struct yj_arena *a, size_t need)
{
	struct yj_arena_block *b = s_take_spare(a, need);
	if (!b) {
		size_t bsize = need > a->block_size ? need : a->block_size;
		if (!(b = malloc(sizeof(*b) + bsize)))
			return NULL;
		b->size = bsize;
	}
	size_t bsize = b->size;
	b->next = a->head;
	a->head = b;
	a->cur = b->data + need;
	a->end = b->data + bsize;
	return b->data;
}

char *yj_arena_strndup(struct yj_arena *a, const char *s, size_t len)
{
	char *p = yj_arena_alloc(a, len + 1);
	if (!p)
		return NULL;
	memcpy(p, s, len);
	p[len] = '\0';
	return p;
}

void yj_arena_reset(struct yj_arena *a)
{
	struct yj_arena_block *b = a->head;
	if (!b)
		return;
	/* Keep the oldest block: it is the common-case size. The others go to
	 * the spares while the keep allows. */
	size_t kept = 0;
	for (struct yj_arena_block *s = a->spare; s; s = s->next)
		kept += s->size;
	for (struct yj_arena_block *s = b; s; s = s->next)
		if (!s->next)
			kept += s->size;
	while (b->next) {
		struct yj_arena_block *next = b->next;
		if (kept + b->size <= a->keep) {
			kept += b->size;
			b->next = a->spare;
			a->spare = b;
		} else {
			free(b);
		}
		b = next;
	}
	a->head = b;
	a->cur = b->data;
	a->end = b->data + b->size;
}

static void s_free_chain(struct yj_arena_block *b)
{
	while (b) {
		struct yj_arena_block *next = b->next;
		free(b);
		b = next;
	}
}

void yj_arena_free(struct yj_arena *a)
{
	s_free_chain(a->head);
	s_free_chain(a->spare);
	a->head = NULL;
	a->spare = NULL;
	a->cur = a->end = NULL;
}
