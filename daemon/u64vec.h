/* u64vec.h: a growable array of uint64_t (event seqs, job numbers) for the
 * walks that collect first and write after, since a walk must not see what
 * its own transaction writes.
 *
 * Ownership: the vector owns v; yj_u64vec_free() frees it and empties it.
 */
#ifndef YJ_U64VEC_H
#define YJ_U64VEC_H

#include <stddef.h>
#include <stdint.h>

struct yj_u64vec {
	uint64_t *v;
	size_t n, cap;
};

/* Append x. Returns 0 or YJ_ENOMEM (v unchanged). */
int yj_u64vec_add(struct yj_u64vec *vec, uint64_t x);

/* As a yj_seq_fn (db/events.h): arg is the vector. */
int yj_u64vec_add_cb(void *arg, uint64_t x);

void yj_u64vec_free(struct yj_u64vec *vec);

#endif
