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
	a->cur = a->end = NULL;
	a->block_size = block_size ? block_size : 16384;
	a->pb.alloc = s_pb_alloc;
	a->pb.free = s_pb_free;
	a->pb.allocator_data = a;
}

void *yj_arena_alloc_block(struct yj_arena *a, size_t need)
{
	size_t bsize = need > a->block_size ? need : a->block_size;
	struct yj_arena_block *b = malloc(sizeof(*b) + bsize);
	if (!b)
		return NULL;
	b->size = bsize;
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
	/* Keep the oldest block: it is the common-case size. */
	while (b->next) {
		struct yj_arena_block *next = b->next;
		free(b);
		b = next;
	}
	a->head = b;
	a->cur = b->data;
	a->end = b->data + b->size;
}

void yj_arena_free(struct yj_arena *a)
{
	struct yj_arena_block *b = a->head;
	while (b) {
		struct yj_arena_block *next = b->next;
		free(b);
		b = next;
	}
	a->head = NULL;
	a->cur = a->end = NULL;
}
