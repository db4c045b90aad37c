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
		cmocka_unit_test(test_size_overflow_refused),
		cmocka_unit_test(test_strndup),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
