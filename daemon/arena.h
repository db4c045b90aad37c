/* arena.h: a bump allocator for per-request work.
 *
 * The normaliser builds each event (and unpacks protobuf input) in an arena,
 * so a request's hundreds of small allocations are freed in one reset. The
 * arena owns everything allocated from it; nothing allocated from it may be
 * freed on its own.
 */
#ifndef YJ_ARENA_H
#define YJ_ARENA_H

#include <protobuf-c/protobuf-c.h>
#include <stddef.h>
#include <stdint.h>

struct yj_arena_block;

struct yj_arena {
	struct yj_arena_block *head;  /* newest block, owned */
	struct yj_arena_block *spare; /* blocks kept by a reset for reuse, owned */
	unsigned char *cur, *end;     /* what is left of head's data (NULL, NULL: no block) */
	size_t block_size;            /* size of a fresh block */
	size_t keep;                  /* bytes of blocks a reset may keep (at least the first block) */
	ProtobufCAllocator pb;        /* protobuf-c allocator drawing on this arena */
};

/* Set up an empty arena (no memory taken until the first allocation). A
 * reset keeps only the first block until yj_arena_keep says more. */
void yj_arena_init(struct yj_arena *a, size_t block_size);

/* Let a reset keep up to bytes of blocks for reuse. For an arena that is
 * filled to the same size over and over (a batch's): a block freed and taken
 * again is fresh memory from the kernel each time, page-faulted in by its
 * first writer (docs/performance.md, change 27). */
void yj_arena_keep(struct yj_arena *a, size_t bytes);

/* The slow path of yj_arena_alloc: a fresh block. */
void *yj_arena_alloc_block(struct yj_arena *a, size_t need);

/* size bytes, 16-byte aligned, or NULL when memory is exhausted. Inline:
 * an event takes about a hundred of these, and the call was a tenth of the
 * normaliser's instructions (docs/performance.md, change 9). */
static inline void *yj_arena_alloc(struct yj_arena *a, size_t size)
{
	size_t need = (size + 15u) & ~(size_t)15u;
	if (need < size)
		return NULL;
	/* !cur: even 0 bytes are a pointer, never NULL, from an empty arena. */
	if (!a->cur || (uintptr_t)a->end - (uintptr_t)a->cur < need)
		return yj_arena_alloc_block(a, need);
	void *p = a->cur;
	a->cur += need;
	return p;
}

/* A NUL-terminated copy of s[0..len), or NULL. */
char *yj_arena_strndup(struct yj_arena *a, const char *s, size_t len);

/* Forget every allocation, keeping the first block, and others within the
 * keep of yj_arena_keep, for reuse. */
void yj_arena_reset(struct yj_arena *a);

/* Free every block. The arena may be used again after yj_arena_init. */
void yj_arena_free(struct yj_arena *a);

#endif
