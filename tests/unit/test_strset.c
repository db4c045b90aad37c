/* test_strset: the hash index the reference tables and the config's
 * routing lookups are found through (strset.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "err.h"
#include "strset.h"

/* Every key of a table the size of the ONS list comes back with its own
 * value; keys one digit apart, a prefix, an extension and the empty
 * string are absent. */
static void test_every_key_found(void **state)
{
	(void)state;
	enum { N = 5000 };
	char (*keys)[16] = calloc(N, sizeof(*keys));
	assert_non_null(keys);
	struct yj_strset s;
	assert_int_equal(yj_strset_init(&s, N), 0);
	for (int i = 0; i < N; i++) {
		snprintf(keys[i], sizeof(keys[i]), "E%08d", 6000000 + 2 * i);
		assert_int_equal(yj_strset_add(&s, keys[i], (uint32_t)i), 0);
	}
	assert_int_equal(s.n, N);
	for (int i = 0; i < N; i++) {
		char probe[16];
		snprintf(probe, sizeof(probe), "E%08d", 6000000 + 2 * i);
		assert_int_equal(yj_strset_get(&s, probe), i);
		snprintf(probe, sizeof(probe), "E%08d", 6000000 + 2 * i + 1);
		assert_int_equal(yj_strset_get(&s, probe), -1);
	}
	assert_int_equal(yj_strset_get(&s, "E0600000"), -1);
	assert_int_equal(yj_strset_get(&s, "E060000000"), -1);
	assert_int_equal(yj_strset_get(&s, ""), -1);
	assert_int_equal(yj_strset_get(&s, NULL), -1);
	yj_strset_free(&s);
	assert_null(s.slot);
	free(keys);
}

/* A key added twice keeps its first value (the bsearch it replaces found
 * the first of equal keys), and the set says so. */
static void test_duplicate_keeps_first(void **state)
{
	(void)state;
	struct yj_strset s;
	assert_int_equal(yj_strset_init(&s, 3), 0);
	assert_int_equal(yj_strset_add(&s, "tvp", 7), 0);
	char again[] = "tvp";
	assert_int_equal(yj_strset_add(&s, again, 9), YJ_EEXIST);
	assert_int_equal(yj_strset_get(&s, "tvp"), 7);
	assert_int_equal(s.n, 1);
	yj_strset_free(&s);
}

/* Past the room asked for, and with none at all, an add is refused and
 * every lookup answers absent: never a probe of a full table. */
static void test_room_is_kept(void **state)
{
	(void)state;
	struct yj_strset s;
	assert_int_equal(yj_strset_init(&s, 2), 0);
	assert_int_equal(yj_strset_add(&s, "a", 1), 0);
	assert_int_equal(yj_strset_add(&s, "b", 2), 0);
	int rc = 0;
	char extra[8][4];
	for (int i = 0; i < 8 && !rc; i++) {
		snprintf(extra[i], sizeof(extra[i]), "x%d", i);
		rc = yj_strset_add(&s, extra[i], 10u + (unsigned)i);
	}
	assert_int_equal(rc, YJ_EINVAL);
	assert_true(2 * s.n <= s.mask + 1);
	assert_int_equal(yj_strset_get(&s, "zzz"), -1);
	assert_int_equal(yj_strset_add(&s, NULL, 0), YJ_EINVAL);
	yj_strset_free(&s);

	assert_int_equal(yj_strset_init(&s, 0), 0);
	assert_int_equal(yj_strset_get(&s, "a"), -1);
	assert_int_equal(yj_strset_add(&s, "a", 1), YJ_EINVAL);
	yj_strset_free(&s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_every_key_found),
		cmocka_unit_test(test_duplicate_keeps_first),
		cmocka_unit_test(test_room_is_kept),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
