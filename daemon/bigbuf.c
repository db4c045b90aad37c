/* bigbuf.c: see bigbuf.h. */
#include "bigbuf.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "err.h"

/* The mapping's length sits in front of the block; 16 keeps the block as
 * aligned as malloc's. */
#define S_HEAD 16

static size_t s_round(size_t n)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	return (n + page - 1) / page * page;
}

void *yj_big_realloc(void *p, size_t size)
{
	if (size > SIZE_MAX - S_HEAD - 65536)
		return NULL;
	size_t want = s_round(size + S_HEAD);
	char *base = p ? (char *)p - S_HEAD : NULL;
	size_t have = base ? *(size_t *)base : 0;
	if (base && want <= have)
		return p;
	void *m = base ? mremap(base, have, want, MREMAP_MAYMOVE)
		       : mmap(NULL, want, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (m == MAP_FAILED)
		return NULL;
	*(size_t *)m = want;
	return (char *)m + S_HEAD;
}

void yj_big_free(void *p)
{
	if (!p)
		return;
	char *base = (char *)p - S_HEAD;
	munmap(base, *(size_t *)base);
}

int yj_buf_reserve(char **p, size_t *cap, size_t need, int mapped)
{
	if (need <= *cap)
		return 0;
	/* Doubling costs a mapping nothing resident: its untouched pages are not. */
	size_t ncap = *cap ? *cap : mapped ? 65536 : 256;
	while (ncap < need)
		ncap *= 2;
	char *np = mapped ? yj_big_realloc(*p, ncap) : realloc(*p, ncap);
	if (!np)
		return YJ_ENOMEM;
	*p = np;
	*cap = ncap;
	return 0;
}

void yj_bigbuf_add(struct yj_bigbuf *b, const void *data, size_t n)
{
	if (b->err || (b->err = yj_buf_reserve(&b->p, &b->cap, b->len + n + 1, 1)))
		return;
	memcpy(b->p + b->len, data, n);
	b->len += n;
	b->p[b->len] = '\0';
}

char *yj_bigbuf_take(struct yj_bigbuf *b)
{
	char *p = b->p;
	memset(b, 0, sizeof(*b));
	return p;
}

void yj_bigbuf_free(struct yj_bigbuf *b)
{
	yj_big_free(b->p);
	memset(b, 0, sizeof(*b));
}
