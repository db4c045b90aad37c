/* test_helper.c: helper.c's forked helpers on a real loop: an answer read
 * back; a child stuck on a lock another thread held at the fork is started
 * again (and answers); a child that is only slow is left to finish.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "helper.h"
#include "loop.h"

struct s_result {
	struct yj_loop *loop;
	int calls, timed_out, exited_ok, cancelled;
	char answer[64];
};

static char s_runs_path[64];

static void s_done(void *arg, const struct yj_helper_end *end)
{
	struct s_result *r = arg;
	r->calls++;
	r->timed_out = end->timed_out;
	r->exited_ok = end->exited_ok;
	r->cancelled = end->cancelled;
	snprintf(r->answer, sizeof(r->answer), "%.*s", (int)end->len, end->buf ? end->buf : "");
	yj_loop_stop(r->loop);
}

/* One byte more in the runs file: how many times a child started. */
static void s_count_run(void)
{
	int fd = open(s_runs_path, O_WRONLY | O_APPEND | O_CREAT, 0600);
	if (fd >= 0) {
		if (write(fd, "x", 1) != 1)
			_exit(3);
		close(fd);
	}
}

static long s_runs(void)
{
	struct stat st;
	return stat(s_runs_path, &st) == 0 ? (long)st.st_size : 0;
}

static int s_setup(void **state)
{
	(void)state;
	snprintf(s_runs_path, sizeof(s_runs_path), "/tmp/yj-test-helper-%ld", (long)getpid());
	unlink(s_runs_path);
	return 0;
}

static int s_teardown(void **state)
{
	(void)state;
	unlink(s_runs_path);
	return 0;
}

static void s_run(struct s_result *r, yj_helper_child_fn child, void *child_arg, int64_t limit_ms)
{
	struct yj_helper *h = NULL;
	memset(r, 0, sizeof(*r));
	r->loop = yj_loop_new();
	assert_non_null(r->loop);
	assert_int_equal(yj_helper_start(r->loop, "test", limit_ms, 1 << 20, child, child_arg, s_done, r, &h), 0);
	assert_int_equal(yj_loop_run(r->loop), 0);
	yj_loop_destroy(&r->loop);
	assert_int_equal(r->calls, 1);
}

static int s_answer_ok(void *arg, int wfd)
{
	(void)arg;
	s_count_run();
	return yj_helper_write_all(wfd, "ok", 2) ? 1 : 0;
}

static void test_answer(void **state)
{
	(void)state;
	struct s_result r;
	s_run(&r, s_answer_ok, NULL, 30000);
	assert_true(r.exited_ok);
	assert_string_equal(r.answer, "ok");
	assert_int_equal(s_runs(), 1);
}

/* --- a lock held by another thread at the fork --- */

static pthread_mutex_t s_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t s_state = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t s_cond = PTHREAD_COND_INITIALIZER;
static int s_held, s_release;

/* Holds s_lock from before the first fork until told to let go. */
static void *s_holder(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&s_lock);
	pthread_mutex_lock(&s_state);
	s_held = 1;
	pthread_cond_broadcast(&s_cond);
	while (!s_release)
		pthread_cond_wait(&s_cond, &s_state);
	pthread_mutex_unlock(&s_state);
	pthread_mutex_unlock(&s_lock);
	return NULL;
}

static int s_let_go(struct yj_loop *loop, void *arg)
{
	(void)loop;
	(void)arg;
	pthread_mutex_lock(&s_state);
	s_release = 1;
	pthread_cond_broadcast(&s_cond);
	pthread_mutex_unlock(&s_state);
	return 0;
}

/* In the child the holder thread does not exist: a lock it held at the
 * fork is never released there. */
static int s_take_the_lock(void *arg, int wfd)
{
	(void)arg;
	s_count_run();
	pthread_mutex_lock(&s_lock);
	return yj_helper_write_all(wfd, "locked", 6) ? 1 : 0;
}

static void test_stuck_on_an_inherited_lock_is_started_again(void **state)
{
	(void)state;
	pthread_t th;
	struct s_result r;
	struct yj_helper *h = NULL;

	assert_int_equal(pthread_create(&th, NULL, s_holder, NULL), 0);
	pthread_mutex_lock(&s_state);
	while (!s_held)
		pthread_cond_wait(&s_cond, &s_state);
	pthread_mutex_unlock(&s_state);

	memset(&r, 0, sizeof(r));
	r.loop = yj_loop_new();
	assert_non_null(r.loop);
	/* Forked with the lock held; the holder lets go a moment later, so the
	 * first child is stuck for good and a second one is not. */
	assert_int_equal(yj_helper_start(r.loop, "test", 60000, 1 << 20, s_take_the_lock, NULL, s_done, &r, &h), 0);
	assert_true(yj_loop_timer(r.loop, 200, 0, s_let_go, NULL) > 0);
	assert_int_equal(yj_loop_run(r.loop), 0);
	yj_loop_destroy(&r.loop);
	pthread_join(th, NULL);

	assert_int_equal(r.calls, 1);
	assert_false(r.timed_out);
	assert_true(r.exited_ok);
	assert_string_equal(r.answer, "locked");
	assert_int_equal(s_runs(), 2);
}

/* --- slow is not stuck --- */

static int s_slow(void *arg, int wfd)
{
	(void)arg;
	struct timespec ts = { 4, 500 * 1000 * 1000 };
	s_count_run();
	while (nanosleep(&ts, &ts) != 0)
		;
	return yj_helper_write_all(wfd, "slow", 4) ? 1 : 0;
}

static void test_slow_is_left_to_finish(void **state)
{
	(void)state;
	struct s_result r;
	s_run(&r, s_slow, NULL, 60000);
	assert_true(r.exited_ok);
	assert_string_equal(r.answer, "slow");
	assert_int_equal(s_runs(), 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_answer, s_setup, s_teardown),
		cmocka_unit_test_setup_teardown(test_stuck_on_an_inherited_lock_is_started_again, s_setup, s_teardown),
		cmocka_unit_test_setup_teardown(test_slow_is_left_to_finish, s_setup, s_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
