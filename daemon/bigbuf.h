/* bigbuf.h: byte buffers for outputs of megabytes (a digest's email, a
 * control reply carrying its renderings).
 *
 * Such a buffer is its own anonymous mapping, grown with mremap: growing
 * never copies and never holds the old and the new block at once, capacity
 * not yet written is never resident, and the free gives every page back at
 * once. A malloc'd block of that size may come from glibc's heap instead (its
 * mmap threshold rises after each large free), where realloc copies and the
 * pages stay after the free (docs/performance.md, "Memory").
 *
 * Ownership: a block from yj_big_realloc belongs to whoever holds the
 * pointer and is given back with yj_big_free only (never free()); a struct
 * yj_bigbuf owns its block until yj_bigbuf_take hands it over.
 */
#ifndef YJ_BIGBUF_H
#define YJ_BIGBUF_H

#include <stddef.h>

/* Like realloc(p, size), p NULL or from here; NULL when out of memory (p
 * still valid). */
void *yj_big_realloc(void *p, size_t size);
/* Unmap p (NULL: nothing). */
void yj_big_free(void *p);

/* Room for need bytes in *p of capacity *cap, doubling: from realloc, or
 * with mapped from yj_big_realloc. 0, or YJ_ENOMEM with *p unchanged. The
 * growth of every appending buffer of the daemon's outputs. */
int yj_buf_reserve(char **p, size_t *cap, size_t need, int mapped);

/* A growing buffer whose first failure sticks: writers append without
 * checking and look at err once at the end. */
struct yj_bigbuf {
	char *p;       /* owned (yj_big_realloc), NUL-terminated once anything was added */
	size_t len;    /* bytes written, without the NUL */
	size_t cap;
	int err;       /* YJ_ENOMEM once an append failed */
};

void yj_bigbuf_add(struct yj_bigbuf *b, const void *data, size_t n);
/* The block, for its new owner to yj_big_free; b is empty again. */
char *yj_bigbuf_take(struct yj_bigbuf *b);
void yj_bigbuf_free(struct yj_bigbuf *b);

#endif
