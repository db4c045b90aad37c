/* test_arena: the bump allocator every request's event is built in
 * (arena.h), whose fast path is inline in every caller. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "arena.h"

/* Every allocation 16-byte aligned and apart from the others, however the
 * sizes fall across blocks. */
static void test_aligned_and_apart(void **state)
{
	(void)state;
	struct yj_arena a;
	yj_arena_init(&a, 256);
	unsigned char *prev = NULL;
	size_t prev_size = 0;
	for (size_t size = 0; size < 300; size += 7) {
		unsigned char *p = yj_arena_alloc(&a, size);
		assert_non_null(p);
		assert_int_equal((uintptr_t)p % 16, 0);
		memset(p, 0xA5, size);
		/* The one before is untouched by this one. */
		for (size_t i = 0; prev && i < prev_size; i++)
			assert_int_equal(prev[i], 0xA5);
		prev = p;
		prev_size = size;
	}
	yj_arena_free(&a);
}

/* A reset keeps the first block and hands its memory out again from its
 * start; allocations made after it never overlap. */
static void test_reset_reuses_first_block(void **state)
{
	(void)state;
	struct yj_arena a;
	yj_arena_init(&a, 1024);
	void *first = yj_arena_alloc(&a, 100);
	assert_non_null(first);
	/* Beyond the first block, twice, and one bigger than a block. */
	assert_non_null(yj_arena_alloc(&a, 1000));
	assert_non_null(yj_arena_alloc(&a, 1000));
	void *big = yj_arena_alloc(&a, 5000);
	assert_non_null(big);
	memset(big, 1, 5000);
	yj_arena_reset(&a);
	void *again = yj_arena_alloc(&a, 100);
	assert_ptr_equal(again, first);
	char *x = yj_arena_alloc(&a, 16);
	assert_ptr_equal(x, (char *)first + 112);
	yj_arena_free(&a);
	/* Usable again after init, and a free of an empty arena is harmless. */
	yj_arena_init(&a, 0);
	yj_arena_free(&a);
	assert_non_null(yj_arena_alloc(&a, 10));
	yj_arena_free(&a);
}

/* With a keep, a reset keeps the later blocks too, and an allocation that
 * outgrows the first block takes one of them again rather than fresh memory;
 * what is beyond the keep is freed (ASan/LSan see the rest freed by
 * yj_arena_free). */
static void test_keep_reuses_later_blocks(void **state)
{
	(void)state;
	struct yj_arena a;
	yj_arena_init(&a, 1024);
	yj_arena_keep(&a, 3 * 1024);
	unsigned char *first = yj_arena_alloc(&a, 1000);
	unsigned char *second = yj_arena_alloc(&a, 1000);
	unsigned char *third = yj_arena_alloc(&a, 1000);
	unsigned char *fourth = yj_arena_alloc(&a, 1000);
	assert_non_null(first);
	assert_non_null(fourth);
	/* Four blocks, one allocation each. */
	assert_ptr_not_equal(second, first + 1008);
	memset(fourth, 7, 1000);
	yj_arena_reset(&a);
	assert_ptr_equal(yj_arena_alloc(&a, 1000), first);
	unsigned char *again[3];
	for (int i = 0; i < 3; i++) {
		again[i] = yj_arena_alloc(&a, 1000);
		assert_non_null(again[i]);
		memset(again[i], i, 1000);
	}
	/* The keep held two blocks besides the first: the next two
	 * allocations are theirs, the one after is fresh. */
	int reused = 0;
	for (int i = 0; i < 2; i++)
		reused += again[i] == second || again[i] == third || again[i] == fourth;
	assert_int_equal(reused, 2);
	/* A need bigger than every kept block takes a fresh one. */
	yj_arena_reset(&a);
	unsigned char *big = yj_arena_alloc(&a, 4096);
	assert_non_null(big);
	assert_ptr_not_equal(big, first);
	memset(big, 1, 4096);
	yj_arena_free(&a);
}

/* Without a keep, a reset keeps the first block only: a second reset and
 * fill takes fresh blocks for the rest (the behaviour of every arena but a
 * batch's). */
static void test_no_keep_keeps_first_only(void **state)
{
	(void)state;
	struct yj_arena a;
	yj_arena_init(&a, 1024);
	unsigned char *first = yj_arena_alloc(&a, 1000);
	assert_non_null(yj_arena_alloc(&a, 1000));
	yj_arena_reset(&a);
	assert_null(a.spare);
	assert_ptr_equal(yj_arena_alloc(&a, 1000), first);
	yj_arena_free(&a);
}

/* A size that overflows when rounded up is refused, not wrapped round to a
 * tiny block. */
static void test_size_overflow_refused(void **state)
{
	(void)state;
	struct yj_arena a;
	yj_arena_init(&a, 0);
	assert_null(yj_arena_alloc(&a, SIZE_MAX - 3));
	assert_non_null(yj_arena_alloc(&a, 8));
	yj_arena_free(&a);
}

static void test_strndup(void **state)
{
	(void)state;
	struct yj_arena a;
	yj_arena_init(&a, 64);
	char *s = yj_arena_strndup(&a, "custody-event", 7);
	assert_string_equal(s, "custody");
	/* protobuf-c's allocator draws on the same arena. */
	void *p = a.pb.alloc(a.pb.allocator_data, 40);
	assert_non_null(p);
	assert_int_equal((uintptr_t)p % 16, 0);
	assert_string_equal(s, "custody");
	yj_arena_free(&a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_aligned_and_apart),
		cmocka_unit_test(test_reset_reuses_first_block),
		cmocka_unit_test(test_keep_reuses_later_blocks),
		cmocka_unit_test(test_no_keep_keeps_first_only),
		cmocka_unit_test(test_size_overflow_refused),
		cmocka_unit_test(test_strndup),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
