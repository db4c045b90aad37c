/* u64vec.c: see u64vec.h. */
#include "u64vec.h"

#include <stdlib.h>

#include "err.h"

int yj_u64vec_add(struct yj_u64vec *vec, uint64_t x)
{
	if (vec->n == vec->cap) {
		size_t ncap = vec->cap ? vec->cap * 2 : 64;
		uint64_t *nv = realloc(vec->v, ncap * sizeof(*nv));
		if (!nv)
			return YJ_ENOMEM;
		vec->v = nv;
		vec->cap = ncap;
	}
	vec->v[vec->n++] = x;
	return 0;
}

int yj_u64vec_add_cb(void *arg, uint64_t x) { return yj_u64vec_add(arg, x); }

void yj_u64vec_free(struct yj_u64vec *vec)
{
	free(vec->v);
	vec->v = NULL;
	vec->n = vec->cap = 0;
}
