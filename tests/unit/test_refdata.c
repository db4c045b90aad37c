/* test_refdata.c: the reference tables, as compiled in and as shipped in
 * conf/ref/, and the loader's diagnostics for broken tables.
 *
 * YJ_SOURCE_DIR names the repository root (ctest sets it).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "err.h"
#include "refdata.h"

static const char *const s_tables[] = {
	"forces.csv", "local_authorities.csv", "custody_suites.csv",
	"outcomes.csv", "ethnicity.csv", "bank_holidays.csv",
};
#define S_NTABLES (sizeof(s_tables) / sizeof(s_tables[0]))

/* Every diagnostic of one load, as "file:line: msg\n" lines. */
struct s_log {
	char text[65536];
	size_t len;
};

static void s_log_report(void *arg, const char *file, int line, const char *msg)
{
	struct s_log *l = arg;
	int n = snprintf(l->text + l->len, sizeof(l->text) - l->len, "%s:%d: %s\n", file, line, msg);

	if (n > 0 && (size_t)n < sizeof(l->text) - l->len)
		l->len += (size_t)n;
}

static const char *s_source_dir(void)
{
	const char *d = getenv("YJ_SOURCE_DIR");

	return d && *d ? d : ".";
}

static char *s_path(const char *dir, const char *name)
{
	char *p = NULL;

	assert_true(asprintf(&p, "%s/%s", dir, name) > 0);
	return p;
}

static char *s_slurp(const char *path)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	long n;

	assert_non_null(f);
	assert_int_equal(fseek(f, 0, SEEK_END), 0);
	n = ftell(f);
	assert_true(n >= 0);
	rewind(f);
	buf = malloc((size_t)n + 1);
	assert_non_null(buf);
	assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
	buf[n] = '\0';
	fclose(f);
	return buf;
}

static void s_write(const char *dir, const char *name, const char *text)
{
	char *p = s_path(dir, name);
	FILE *f = fopen(p, "wb");

	assert_non_null(f);
	assert_int_equal(fwrite(text, 1, strlen(text), f), strlen(text));
	assert_int_equal(fclose(f), 0);
	free(p);
}

/* A temporary directory holding a copy of the shipped tables. */
static char *s_tmp_copy(void)
{
	char tmpl[] = "/tmp/yj-refdata-XXXXXX";
	char *dir, *src = s_path(s_source_dir(), "conf/ref");

	assert_non_null(mkdtemp(tmpl));
	dir = strdup(tmpl);
	assert_non_null(dir);
	for (size_t i = 0; i < S_NTABLES; i++) {
		char *from = s_path(src, s_tables[i]);
		char *text = s_slurp(from);
		s_write(dir, s_tables[i], text);
		free(text);
		free(from);
	}
	free(src);
	return dir;
}

static void s_tmp_remove(char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;

	assert_non_null(d);
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		char *p = s_path(dir, e->d_name);
		unlink(p);
		free(p);
	}
	closedir(d);
	rmdir(dir);
	free(dir);
}

static int s_load(const char *dir, struct s_log *log, struct yj_refdata **ref)
{
	struct yj_diag diag = { .report = s_log_report, .arg = log };

	log->len = 0;
	log->text[0] = '\0';
	return yj_refdata_load(dir, &diag, ref);
}

/* Load the shipped tables with one file replaced; expect refusal with a
 * diagnostic containing every string of want (NULL-terminated). */
static void s_expect_broken(const char *name, const char *text, const char *const *want)
{
	char *dir = s_tmp_copy();
	struct s_log *log = calloc(1, sizeof(*log));
	struct yj_refdata *ref = (struct yj_refdata *)&ref;  /* must come back NULL */

	assert_non_null(log);
	s_write(dir, name, text);
	assert_int_equal(s_load(dir, log, &ref), YJ_ECONFIG);
	assert_null(ref);
	for (; *want; want++) {
		if (!strstr(log->text, *want))
			fail_msg("expected '%s' in diagnostics:\n%s", *want, log->text);
	}
	free(log);
	s_tmp_remove(dir);
}

/* --- the real tables ---------------------------------------------------- */

static void s_check_real(const struct yj_refdata *ref)
{
	const struct yj_force *f = yj_ref_force(ref, "E23000029");
	assert_non_null(f);
	assert_string_equal(f->name, "Thames Valley");
	f = yj_ref_force(ref, "E23000034");
	assert_non_null(f);
	assert_string_equal(f->name, "London, City of");  /* quoted in the CSV */
	assert_non_null(yj_ref_force(ref, "W15000004"));
	assert_null(yj_ref_force(ref, "E23000040"));
	assert_null(yj_ref_force(ref, ""));
	assert_null(yj_ref_force(ref, NULL));

	const struct yj_la *la = yj_ref_la(ref, "E06000042");
	assert_non_null(la);
	assert_string_equal(la->name, "Milton Keynes");
	assert_int_equal(la->upper_tier, 1);
	assert_string_equal(la->upper_code, "E06000042");
	assert_string_equal(la->force, "E23000029");

	la = yj_ref_la(ref, "E07000177");
	assert_non_null(la);
	assert_string_equal(la->name, "Cherwell");
	assert_int_equal(la->upper_tier, 0);
	assert_string_equal(la->upper_code, "E10000025");
	assert_string_equal(la->force, "E23000029");
	la = yj_ref_la(ref, la->upper_code);
	assert_non_null(la);
	assert_string_equal(la->name, "Oxfordshire");
	assert_int_equal(la->upper_tier, 1);
	assert_string_equal(la->force, "E23000029");

	la = yj_ref_la(ref, "E09000033");
	assert_non_null(la);
	assert_string_equal(la->name, "Westminster");
	assert_int_equal(la->upper_tier, 1);
	assert_string_equal(la->force, "E23000001");

	la = yj_ref_la(ref, "W06000015");
	assert_non_null(la);
	assert_string_equal(la->name, "Cardiff");
	assert_int_equal(la->upper_tier, 1);
	assert_string_equal(la->force, "W15000003");
	assert_non_null(yj_ref_force(ref, la->force));
	assert_null(yj_ref_la(ref, "E07000999"));

	const struct yj_suite *s = yj_ref_suite(ref, "TVP-MK");
	assert_non_null(s);
	assert_string_equal(s->force, "E23000029");
	assert_string_equal(s->la, "E06000042");
	assert_null(yj_ref_suite(ref, "NOWHERE"));

	const struct yj_outcome *o = yj_ref_outcome(ref, 22);
	assert_non_null(o);
	assert_int_equal(o->valid_from, yj_days_from_civil(2019, 4, 1));
	assert_int_equal(o->valid_to, INT32_MAX);
	assert_string_equal(o->table_version, "2024-25");
	assert_non_null(strstr(o->name, "Diversionary, educational or intervention activity"));
	o = yj_ref_outcome(ref, 1);
	assert_non_null(o);
	assert_string_equal(o->name, "Charged/Summonsed");
	assert_null(yj_ref_outcome(ref, 0));
	assert_null(yj_ref_outcome(ref, 23));
	/* Adult caution, penalty notice, cannabis/khat warning, under the age
	 * of criminal responsibility: never a child's outcome; all others can be. */
	for (int code = 1; code <= 22; code++) {
		int adult_only = code == 3 || code == 6 || code == 7 || code == 11;
		o = yj_ref_outcome(ref, code);
		assert_non_null(o);
		if (o->applies_to_children != !adult_only)
			fail_msg("outcome %d: applies_to_children %d", code, o->applies_to_children);
	}

	const struct yj_ethnicity *e = yj_ref_ethnicity(ref, "W1");
	assert_non_null(e);
	assert_string_equal(e->label, "White - English, Welsh, Scottish, Northern Irish or British");
	assert_non_null(strstr(e->census, "2021"));
	e = yj_ref_ethnicity(ref, "W4");
	assert_non_null(e);
	assert_string_equal(e->census, "2021");
	assert_non_null(yj_ref_ethnicity(ref, "NS"));
	assert_null(yj_ref_ethnicity(ref, "W5"));

	assert_true(yj_ref_is_bank_holiday(ref, yj_days_from_civil(2026, 12, 25)));
	assert_true(yj_ref_is_bank_holiday(ref, yj_days_from_civil(2026, 12, 28)));  /* substitute day */
	assert_false(yj_ref_is_bank_holiday(ref, yj_days_from_civil(2026, 12, 27)));
	assert_true(yj_ref_is_bank_holiday(ref, yj_days_from_civil(2019, 1, 1)));
	assert_false(yj_ref_is_bank_holiday(ref, yj_days_from_civil(2026, 6, 1)));

	/* Iteration covers every row, and every row is found by its key. */
	size_t n = 0;
	for (; yj_ref_force_at(ref, n); n++)
		assert_ptr_equal(yj_ref_force(ref, yj_ref_force_at(ref, n)->code), yj_ref_force_at(ref, n));
	assert_int_equal(n, 43);
	for (n = 0; yj_ref_la_at(ref, n); n++)
		assert_ptr_equal(yj_ref_la(ref, yj_ref_la_at(ref, n)->code), yj_ref_la_at(ref, n));
	assert_int_equal(n, 318 + 21);
	for (n = 0; yj_ref_outcome_at(ref, n); n++)
		assert_ptr_equal(yj_ref_outcome(ref, yj_ref_outcome_at(ref, n)->code), yj_ref_outcome_at(ref, n));
	assert_int_equal(n, 22);
	for (n = 0; yj_ref_ethnicity_at(ref, n); n++)
		;
	assert_int_equal(n, 21);
	for (n = 0; yj_ref_suite_at(ref, n); n++) {
		const struct yj_suite *x = yj_ref_suite_at(ref, n);
		const struct yj_la *xla = yj_ref_la(ref, x->la);
		assert_non_null(xla);
		assert_int_equal(xla->upper_tier, 1);
		assert_string_equal(xla->force, x->force);
	}
	assert_true(n >= 10);
	assert_null(yj_ref_suite_at(ref, n));
}

static void test_embedded(void **state)
{
	struct s_log *log = calloc(1, sizeof(*log));
	struct yj_refdata *ref = NULL;

	(void)state;
	assert_non_null(log);
	assert_int_equal(s_load(NULL, log, &ref), 0);
	assert_int_equal(log->len, 0);
	s_check_real(ref);
	yj_refdata_free(&ref);
	assert_null(ref);
	yj_refdata_free(&ref);
	yj_refdata_free(NULL);

	assert_int_equal(s_load("", log, &ref), 0);
	s_check_real(ref);
	yj_refdata_free(&ref);
	free(log);
}

static void test_directory(void **state)
{
	struct s_log *log = calloc(1, sizeof(*log));
	struct yj_refdata *ref = NULL, *emb = NULL;
	char *dir = s_path(s_source_dir(), "conf/ref");

	(void)state;
	assert_non_null(log);
	assert_int_equal(s_load(dir, log, &ref), 0);
	assert_int_equal(log->len, 0);
	s_check_real(ref);
	/* The compiled-in copy is the shipped one. */
	assert_int_equal(s_load(NULL, log, &emb), 0);
	for (size_t i = 0; yj_ref_la_at(ref, i) || yj_ref_la_at(emb, i); i++) {
		assert_non_null(yj_ref_la_at(ref, i));
		assert_non_null(yj_ref_la_at(emb, i));
		assert_string_equal(yj_ref_la_at(ref, i)->code, yj_ref_la_at(emb, i)->code);
	}
	yj_refdata_free(&emb);
	yj_refdata_free(&ref);
	free(dir);
	free(log);
}

static void test_no_diag(void **state)
{
	struct yj_refdata *ref = NULL;

	(void)state;
	assert_int_equal(yj_refdata_load(NULL, NULL, &ref), 0);
	assert_non_null(yj_ref_force(ref, "E23000029"));
	yj_refdata_free(&ref);
	assert_int_equal(yj_refdata_load(NULL, NULL, NULL), YJ_EINVAL);
	/* Lookups on no table set find nothing rather than crash. */
	assert_null(yj_ref_force(NULL, "E23000029"));
	assert_false(yj_ref_is_bank_holiday(NULL, 0));
	assert_null(yj_ref_la_at(NULL, 0));
}

/* --- dates -------------------------------------------------------------- */

static void test_civil(void **state)
{
	int y;
	unsigned m, d;

	(void)state;
	assert_int_equal(yj_days_from_civil(1970, 1, 1), 0);
	assert_int_equal(yj_days_from_civil(1969, 12, 31), -1);
	assert_int_equal(yj_days_from_civil(2000, 3, 1), 11017);
	assert_int_equal(yj_days_from_civil(2026, 12, 25), 20812);
	assert_int_equal(yj_days_from_civil(2024, 2, 29) + 1, yj_days_from_civil(2024, 3, 1));
	assert_int_equal(yj_days_from_civil(2100, 2, 28) + 1, yj_days_from_civil(2100, 3, 1));
	yj_civil_from_days(0, &y, &m, &d);
	assert_true(y == 1970 && m == 1 && d == 1);
	yj_civil_from_days(-719468, &y, &m, &d);
	assert_true(y == 0 && m == 3 && d == 1);
	for (int32_t z = -800000; z <= 800000; z += 7) {
		yj_civil_from_days(z, &y, &m, &d);
		assert_true(m >= 1 && m <= 12 && d >= 1 && d <= 31);
		assert_int_equal(yj_days_from_civil(y, m, d), z);
	}
}

/* --- broken tables ------------------------------------------------------ */

static void test_missing_column(void **state)
{
	(void)state;
	s_expect_broken("forces.csv", "code,nom\nE23000029,Thames Valley\n",
			(const char *const[]){ "forces.csv:1: missing column 'name'", NULL });
	s_expect_broken("local_authorities.csv", "code,name,tier,force\nE06000042,Milton Keynes,upper,E23000029\n",
			(const char *const[]){ "local_authorities.csv:1: missing column 'upper_code'", NULL });
}

static void test_duplicate(void **state)
{
	(void)state;
	s_expect_broken("outcomes.csv",
			"code,name,valid_from,valid_to,table_version,applies_to_children\n"
			"1,Charged/Summonsed,2013-04-01,,2024-25,yes\n"
			"22,Diversionary,2019-04-01,,2024-25,yes\n"
			"22,\"Diversionary, again\",2019-04-01,,2024-25,yes\n",
			(const char *const[]){ "outcomes.csv:4: duplicate code 22 (first on line 3)", NULL });
	s_expect_broken("custody_suites.csv",
			"id,name,force,la\n"
			"TVP-MK,Milton Keynes,E23000029,E06000042\n"
			"TVP-MK,Milton Keynes again,E23000029,E06000042\n",
			(const char *const[]){ "custody_suites.csv:3: duplicate id 'TVP-MK' (first on line 2)", NULL });
	s_expect_broken("bank_holidays.csv", "date,title\n2026-12-25,Christmas Day\n2026-12-25,Christmas Day\n",
			(const char *const[]){ "bank_holidays.csv:3: duplicate date 2026-12-25 (first on line 2)",
					       NULL });
}

static void test_unknown_references(void **state)
{
	(void)state;
	s_expect_broken("custody_suites.csv",
			"id,name,force,la\n"
			"TVP-MK,Milton Keynes,E23000029,E06000042\n"
			"XX-NOW,Nowhere,E23000099,E06000042\n"
			"TVP-BAN,Banbury,E23000029,E07000177\n"
			"TVP-ZZZ,Nowhere,E23000029,E06000999\n",
			(const char *const[]){ "custody_suites.csv:3: XX-NOW: force E23000099 is not in forces.csv",
					       "custody_suites.csv:4: TVP-BAN: la E07000177 is a lower-tier authority",
					       "custody_suites.csv:5: TVP-ZZZ: la E06000999 is not in local_authorities.csv",
					       NULL });
	s_expect_broken("local_authorities.csv",
			"code,name,tier,upper_code,force\n"
			"E06000042,Milton Keynes,upper,E06000042,E23000077\n"
			"E07000177,Cherwell,lower,E10000025,E23000029\n"
			"E10000025,Oxfordshire,upper,E10000025,E23000028\n",
			(const char *const[]){
				"local_authorities.csv:2: E06000042: force E23000077 is not in forces.csv",
				"local_authorities.csv:3: E07000177 is in force E23000029 but its upper tier E10000025 is in E23000028",
				NULL });
}

static void test_bad_values(void **state)
{
	(void)state;
	s_expect_broken("bank_holidays.csv",
			"date,title\n2026-12-25,Christmas Day\n2026-02-30,Not a day\n28/12/2026,Boxing Day\n",
			(const char *const[]){ "bank_holidays.csv:3: date '2026-02-30' is not a YYYY-MM-DD date",
					       "bank_holidays.csv:4: date '28/12/2026'", NULL });
	s_expect_broken("outcomes.csv",
			"code,name,valid_from,valid_to,table_version,applies_to_children\n"
			"1A,Alternative offence,2013-04-01,,2024-25,yes\n"
			"2,Youth caution,2013-04-01,2012-01-01,2024-25,yes\n"
			"3,Adult caution,2013-4-1,,2024-25,no\n"
			"4,Taken into consideration,2013-04-01,,2024-25,\n"
			"5,Offender has died,2013-04-01,,2024-25,Yes\n",
			(const char *const[]){ "outcomes.csv:2: code '1A'", "outcomes.csv:3: valid_to 2012-01-01 is before",
					       "outcomes.csv:4: valid_from '2013-4-1'",
					       "outcomes.csv:5: applies_to_children '' must be yes or no",
					       "outcomes.csv:6: applies_to_children 'Yes' must be yes or no", NULL });
	s_expect_broken("outcomes.csv",
			"code,name,valid_from,valid_to,table_version\n"
			"1,Charged/Summonsed,2013-04-01,,2024-25\n",
			(const char *const[]){ "outcomes.csv:1: missing column 'applies_to_children'", NULL });
	s_expect_broken("local_authorities.csv",
			"code,name,tier,upper_code,force\n"
			"E07000177,Cherwell,upper,E07000177,E23000029\n"
			"E06000042,Milton Keynes,middle,E06000042,E23000029\n",
			(const char *const[]){ "local_authorities.csv:2: E07000177 is a lower-tier code",
					       "local_authorities.csv:3: tier 'middle'", NULL });
	s_expect_broken("ethnicity.csv", "code,label,census\nW1,White - British,2001 2011 \nW2,,2001\n",
			(const char *const[]){ "ethnicity.csv:2: census", "ethnicity.csv:3: label is empty", NULL });
}

static void test_csv_syntax(void **state)
{
	(void)state;
	/* A record count is by record, a line by line: the quoted newline on
	 * line 2 puts the short record on line 4. */
	s_expect_broken("forces.csv",
			"code,name\n"
			"E23000029,\"Thames\nValley\"\n"
			"E23000030\n"
			"E23000031,Sur\"rey\n"
			"E23000032,\"Kent\"x\n"
			"E23000033,\"Sussex\n",
			(const char *const[]){ "forces.csv:4: 1 fields, the header has 2",
					       "forces.csv:5: quote inside an unquoted field",
					       "forces.csv:6: text after a closing quote",
					       "forces.csv:7: quoted field is never closed", NULL });
	s_expect_broken("forces.csv", "code,name\nE23000029,Thames \xff Valley\n",
			(const char *const[]){ "forces.csv:2: field 2 is not valid UTF-8", NULL });
	s_expect_broken("forces.csv", "code,name,code\nE23000029,Thames Valley,E23000029\n",
			(const char *const[]){ "forces.csv:1: column 'code' appears twice", NULL });
	s_expect_broken("forces.csv", "", (const char *const[]){ "forces.csv:0: empty file", NULL });
	/* A broken header is reported as such, not replaced by the first row. */
	s_expect_broken("forces.csv", "code,na\"me\nE23000029,Thames Valley\n",
			(const char *const[]){ "forces.csv:1: quote inside an unquoted field", NULL });
	s_expect_broken("forces.csv", "code,name\r\nE23000029,Thames Valley\rE23000030,Hampshire\n",
			(const char *const[]){ "forces.csv:2: carriage return not followed by a line feed", NULL });
}

/* CRLF, a byte order mark, extra columns in any order, doubled quotes and a
 * trailing blank line are all acceptable. */
static void test_csv_tolerated(void **state)
{
	char *dir = s_tmp_copy();
	struct s_log *log = calloc(1, sizeof(*log));
	struct yj_refdata *ref = NULL;

	(void)state;
	assert_non_null(log);
	s_write(dir, "ethnicity.csv",
		"\xef\xbb\xbf" "note,census,label,code\r\n"
		"x,2001 2011 2021,\"White - \"\"English\"\", Welsh\",W1\r\n"
		"y,2021,White - Roma,W4\r\n"
		"\r\n");
	assert_int_equal(s_load(dir, log, &ref), 0);
	assert_int_equal(log->len, 0);
	const struct yj_ethnicity *e = yj_ref_ethnicity(ref, "W1");
	assert_non_null(e);
	assert_string_equal(e->label, "White - \"English\", Welsh");
	assert_string_equal(e->census, "2001 2011 2021");
	assert_non_null(yj_ref_ethnicity(ref, "W4"));
	assert_null(yj_ref_ethnicity(ref, "W2"));
	yj_refdata_free(&ref);
	free(log);
	s_tmp_remove(dir);
}

static void test_missing_file(void **state)
{
	char *dir = s_tmp_copy();
	char *p = s_path(dir, "outcomes.csv");
	struct s_log *log = calloc(1, sizeof(*log));
	struct yj_refdata *ref = NULL;

	(void)state;
	assert_non_null(log);
	assert_int_equal(unlink(p), 0);
	assert_int_equal(s_load(dir, log, &ref), YJ_ECONFIG);
	assert_null(ref);
	assert_non_null(strstr(log->text, "outcomes.csv:0: cannot open"));
	free(p);
	free(log);
	s_tmp_remove(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_embedded),
		cmocka_unit_test(test_directory),
		cmocka_unit_test(test_no_diag),
		cmocka_unit_test(test_civil),
		cmocka_unit_test(test_missing_column),
		cmocka_unit_test(test_duplicate),
		cmocka_unit_test(test_unknown_references),
		cmocka_unit_test(test_bad_values),
		cmocka_unit_test(test_csv_syntax),
		cmocka_unit_test(test_csv_tolerated),
		cmocka_unit_test(test_missing_file),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
