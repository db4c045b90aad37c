/* test_secret.c: the one reader of secret files (secret.c).
 *
 * Real files in a fresh directory: every mode that lets group or others
 * read, write or execute is refused with the file and `chmod 600` named;
 * 0600 and 0400 are read, the first line only, without its CR/LF; a
 * directory, a FIFO, a missing file, an empty file and a line too long for
 * the buffer are refused, and the buffer is wiped on every refusal.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "err.h"
#include "secret.h"

struct t_dir {
	char path[64];
	char file[128];
};

static int t_setup(void **state)
{
	struct t_dir *d = calloc(1, sizeof(*d));
	assert_non_null(d);
	snprintf(d->path, sizeof(d->path), "/tmp/yj-secret-XXXXXX");
	assert_non_null(mkdtemp(d->path));
	snprintf(d->file, sizeof(d->file), "%s/key", d->path);
	*state = d;
	return 0;
}

static int t_teardown(void **state)
{
	struct t_dir *d = *state;
	char p[160];
	unlink(d->file);
	snprintf(p, sizeof(p), "%s/fifo", d->path);
	unlink(p);
	snprintf(p, sizeof(p), "%s/sub", d->path);
	rmdir(p);
	rmdir(d->path);
	free(d);
	return 0;
}

static void t_write(const char *path, const char *text, mode_t mode)
{
	unlink(path);
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	assert_int_equal(chmod(path, mode), 0);
}

/* buf holds nothing but zeros: what a refusal must leave. */
static void t_wiped(const char *buf, size_t size)
{
	for (size_t i = 0; i < size; i++)
		assert_int_equal(buf[i], 0);
}

static void test_private_modes_read(void **state)
{
	struct t_dir *d = *state;
	static const mode_t ok[] = { 0600, 0400, 0700, 0200 | 0400 };
	char buf[64], err[256];
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		t_write(d->file, "rq:@e7m[Xv2Mc0Ju0vK(8>lzUb+RhQiT5hWy0Vl/\nsecond line\n", ok[i]);
		int n = yj_secret_read(d->file, buf, sizeof(buf), err, sizeof(err));
		assert_int_equal(n, 40);
		assert_string_equal(buf, "rq:@e7m[Xv2Mc0Ju0vK(8>lzUb+RhQiT5hWy0Vl/");
	}
	/* CRLF and no newline at all. */
	t_write(d->file, "secret\r\n", 0600);
	assert_int_equal(yj_secret_read(d->file, buf, sizeof(buf), err, sizeof(err)), 6);
	assert_string_equal(buf, "secret");
	t_write(d->file, "secret", 0600);
	assert_int_equal(yj_secret_read(d->file, buf, sizeof(buf), err, sizeof(err)), 6);
	assert_string_equal(buf, "secret");
}

static void test_group_or_others_refused(void **state)
{
	struct t_dir *d = *state;
	char buf[64], err[256];
	/* Every bit of group and others, one at a time, and the usual slips. */
	static const mode_t bad[] = { 0640, 0620, 0610, 0604, 0602, 0601, 0644, 0660, 0666, 0777, 0440, 0404 };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		t_write(d->file, "secret\n", bad[i]);
		memset(buf, 'x', sizeof(buf));
		err[0] = '\0';
		assert_int_equal(yj_secret_read(d->file, buf, sizeof(buf), err, sizeof(err)), YJ_EINVAL);
		t_wiped(buf, sizeof(buf));
		if (!strstr(err, d->file) || !strstr(err, "chmod 600") || !strstr(err, "group or others"))
			fail_msg("mode %04o: message '%s' does not name the file and chmod 600", (unsigned)bad[i], err);
	}
}

static void test_not_a_regular_file(void **state)
{
	struct t_dir *d = *state;
	char buf[64], err[256], p[160];

	snprintf(p, sizeof(p), "%s/sub", d->path);
	assert_int_equal(mkdir(p, 0700), 0);
	assert_int_equal(yj_secret_read(p, buf, sizeof(buf), err, sizeof(err)), YJ_EINVAL);
	assert_non_null(strstr(err, "not a regular file"));
	/* A FIFO is refused, without waiting for a writer. */
	snprintf(p, sizeof(p), "%s/fifo", d->path);
	assert_int_equal(mkfifo(p, 0600), 0);
	assert_int_equal(yj_secret_read(p, buf, sizeof(buf), err, sizeof(err)), YJ_EINVAL);
	assert_non_null(strstr(err, "not a regular file"));
	snprintf(p, sizeof(p), "%s/absent", d->path);
	assert_int_equal(yj_secret_read(p, buf, sizeof(buf), err, sizeof(err)), YJ_EIO);
	assert_non_null(strstr(err, p));
}

static void test_empty_and_too_long(void **state)
{
	struct t_dir *d = *state;
	char buf[8], err[256];

	t_write(d->file, "\nsecond\n", 0600);
	memset(buf, 'x', sizeof(buf));
	assert_int_equal(yj_secret_read(d->file, buf, sizeof(buf), err, sizeof(err)), YJ_EINVAL);
	assert_non_null(strstr(err, "empty"));
	t_wiped(buf, sizeof(buf));
	t_write(d->file, "", 0600);
	assert_int_equal(yj_secret_read(d->file, buf, sizeof(buf), err, sizeof(err)), YJ_EINVAL);
	/* Seven bytes fit a buffer of eight; eight do not, and nothing is cut short. */
	t_write(d->file, "1234567\n", 0600);
	assert_int_equal(yj_secret_read(d->file, buf, sizeof(buf), err, sizeof(err)), 7);
	t_write(d->file, "12345678\n", 0600);
	assert_int_equal(yj_secret_read(d->file, buf, sizeof(buf), err, sizeof(err)), YJ_EINVAL);
	t_wiped(buf, sizeof(buf));
}

static void test_wipe(void **state)
{
	(void)state;
	char b[16];
	memset(b, 'k', sizeof(b));
	yj_secret_wipe(b, sizeof(b));
	t_wiped(b, sizeof(b));
	yj_secret_wipe(NULL, 4); /* nothing to wipe is no fault */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_private_modes_read, t_setup, t_teardown),
		cmocka_unit_test_setup_teardown(test_group_or_others_refused, t_setup, t_teardown),
		cmocka_unit_test_setup_teardown(test_not_a_regular_file, t_setup, t_teardown),
		cmocka_unit_test_setup_teardown(test_empty_and_too_long, t_setup, t_teardown),
		cmocka_unit_test(test_wipe),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
