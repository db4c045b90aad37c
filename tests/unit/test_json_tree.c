/* test_json_tree.c: daemon/json_tree.c against the cJSON it stands in for.
 *
 * Every input below is read by both yj_json_parse() and the system's
 * cJSON_ParseWithLengthOpts(): the same answer (tree or refusal), the same
 * end, the same tree (types, keys, strings, numbers bit for bit, order).
 * The inputs are the corners where the two could part: cJSON's quirks
 * (whitespace up to byte 32, the byte order mark, numbers strtod ends,
 * \u escapes, nesting at 1000), and every kind of truncation. The fuzz
 * targets hold the same for every input they make (tests/fuzz).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "json_tree.h"
#include "../fuzz/json_same.h"

/* The last element of a's list, as cJSON links it from the first's prev. */
static void s_prev_linked(const cJSON *a)
{
	for (; a; a = a->next) {
		if (a->child) {
			const cJSON *last = a->child;
			while (last->next)
				last = last->next;
			assert_ptr_equal(a->child->prev, last);
			s_prev_linked(a->child);
		}
	}
}

/* Read p[0..n) both ways; returns whether cJSON accepted it. */
static bool s_check(const char *p, size_t n)
{
	struct yj_arena a;
	const char *e1 = NULL, *e2 = NULL;
	int oom = -1;
	yj_arena_init(&a, 0);
	cJSON *mine = yj_json_parse(&a, p, n, &e1, &oom);
	cJSON *theirs = cJSON_ParseWithLengthOpts(p, n, &e2, 0);
	assert_int_equal(oom, 0);
	if (!mine != !theirs)
		fail_msg("%s: json_tree %s, cJSON %s", p, mine ? "accepts" : "refuses", theirs ? "accepts" : "refuses");
	if (mine) {
		if (e1 != e2)
			fail_msg("%s: json_tree ends at %td, cJSON at %td", p, e1 - p, e2 - p);
		if (!fz_same_tree(mine, theirs))
			fail_msg("%s: the trees differ", p);
		if (!fz_lengths_known(mine))
			fail_msg("%s: a string's length is not strlen's", p);
		s_prev_linked(mine);
	}
	bool ok = theirs != NULL;
	cJSON_Delete(theirs);
	yj_arena_free(&a);
	return ok;
}

static bool s_check_str(const char *p) { return s_check(p, strlen(p)); }

static void test_literals_and_numbers(void **state)
{
	(void)state;
	static const char *const in[] = {
		"null", "nul", "nullx", "true", "tru", "false", "fals", "falsey",
		"0", "-0", "01", "-01", "1.", ".5", "+1", "-", "--1", "1e5", "1E5", "1e", "1e+", "1e-2", "1-2", "1e5e",
		"12.5.3", "1e400", "-1e400", "1e-400", "123456789012345", "-123456789012345", "1234567890123456",
		"9007199254740993", "2147483647", "2147483648", "-2147483648", "-2147483649", "0.1", "3.14159e2",
		"0x1A", "1,", "[1e5,-0,2.5e-3]",
		NULL,
	};
	for (size_t i = 0; in[i]; i++)
		s_check_str(in[i]);
	char big[400];
	memset(big, '5', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	assert_true(s_check_str(big));  /* a long number is read whole */
	big[200] = 'x';
	s_check_str(big);
}

static void test_strings(void **state)
{
	(void)state;
	static const char *const in[] = {
		"\"\"", "\"a\"", "\"a\\\"b\"", "\"\\b\\f\\n\\r\\t\\/\\\\\"", "\"\\u0041\"", "\"\\u00e9\"", "\"\\u20AC\"",
		"\"\\u20ac\"", "\"\\ud83d\\ude00\"", "\"\\uD83D\\uDE00x\"", "\"\\uD800\"", "\"\\uDC00\"", "\"\\uD800\\u0041\"",
		"\"\\uD800\\uZZZZ\"", "\"\\uD800\\\"", "\"ab\\uZZZZcd\"", "\"ab\\u00ZZcd\"", "\"\\u12\"", "\"\\u\"", "\"\\x\"",
		"\"abc", "\"abc\\", "\"abc\\\"", "\"tab\there\"", "\"\x01\"", "\"caf\xc3\xa9\"", "\"\xff\"",
		"\"\\u0000\"", "\"a\\u0000b\"",
		NULL,
	};
	for (size_t i = 0; in[i]; i++)
		s_check_str(in[i]);
	/* bytes after a NUL, inside and outside a string */
	s_check("\"a\0b\"", 5);
	s_check("1\0", 2);
	s_check("[1,\0 2]", 7);
	s_check("\0", 1);
	/* Lengths either side of the one byte the reader keeps them in
	 * (yj_json_strlen), as keys and as values, plain and escaped, and a
	 * long one with a NUL escaped past that byte. */
	static const size_t lens[] = { 253, 254, 255, 256, 257, 1000 };
	for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
		char buf[3200];
		size_t n = lens[i];
		int w = snprintf(buf, sizeof(buf), "{\"%*s\":\"%*s\",\"e\":\"\\n%*s\"}", (int)n, "k", (int)n, "v",
				 (int)n, "x");
		assert_true(w > 0 && (size_t)w < sizeof(buf));
		s_check_str(buf);
	}
	char nul[600];
	int w = snprintf(nul, sizeof(nul), "[\"%300s\\u0000tail\"]", "a");
	assert_true(w > 0 && (size_t)w < sizeof(nul));
	s_check_str(nul);
}

static void test_containers(void **state)
{
	(void)state;
	static const char *const in[] = {
		"[]", "[ ]", "[1,2]", "[1,]", "[,1]", "[1 2]", "[1", "[", "]", "[[[]]]", "[[1],[2,[3]]]",
		"{}", "{ }", "{\"a\":1}", "{\"a\" : 1 , \"b\":[true,false,null]}", "{\"a\":1,}", "{1:2}", "{\"a\"}",
		"{\"a\":}", "{\"a\":1", "{\"a\"", "{\"a\":1 ", "{", "{\"a\":1}}", "{\"a\":{\"b\":{\"c\":\"d\"}}}",
		"{\"a\":1,\"a\":2}", "{\"\":0}", "[\"a\",{\"k\":[]},-1.5]", "[1]x", "{\"a\":1} {\"b\":2}",
		NULL,
	};
	for (size_t i = 0; in[i]; i++)
		s_check_str(in[i]);
}

static void test_whitespace_and_bom(void **state)
{
	(void)state;
	static const char *const in[] = {
		"", " ", "   ", "\t\n\r 1 ", " [ 1 ] ", "\x01" "1", "1 ", "[1 ", "[1, ", "{ \"a\" :\x1f 1 }",
		"\xEF\xBB\xBF", "\xEF\xBB\xBF" "1", "\xEF\xBB\xBF" "12", "\xEF\xBB\xBF" "[1]", "\xEF\xBB\xBF" " 1",
		"\xEF\xBB" "1", " \xEF\xBB\xBF" "1",
		NULL,
	};
	for (size_t i = 0; in[i]; i++)
		s_check_str(in[i]);
}

/* cJSON refuses nesting deeper than 1000. */
static void test_nesting(void **state)
{
	(void)state;
	for (size_t depth = 998; depth <= 1002; depth++) {
		char *p = malloc(2 * depth + 1);
		assert_non_null(p);
		memset(p, '[', depth);
		memset(p + depth, ']', depth);
		p[2 * depth] = '\0';
		bool ok = s_check_str(p);
		assert_true(ok == (depth <= 1000));
		free(p);
	}
	char deep[4096];
	memset(deep, '[', sizeof(deep) - 1);
	deep[sizeof(deep) - 1] = '\0';
	assert_false(s_check_str(deep));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_literals_and_numbers),
		cmocka_unit_test(test_strings),
		cmocka_unit_test(test_containers),
		cmocka_unit_test(test_whitespace_and_bom),
		cmocka_unit_test(test_nesting),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
