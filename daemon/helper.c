/* helper.c: see helper.h. */
#include "helper.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zmq.h>

#include "err.h"
#include "log.h"
#include "loop.h"

/* A child seen waiting on a futex at this many checks in a row (a second
 * apart) is stuck on a lock it inherited held (see s_on_watch). */
#define S_STALL_CHECKS 3
#define S_MAX_RESTARTS 5

struct yj_helper {
	struct yj_loop *loop;          /* borrowed */
	char name[32];
	pid_t pid, parent;
	int fd;                        /* the pipe's read end, -1 once closed */
	int64_t timer, watch;
	int timed_out, overflow;
	int stalled, restart, restarts;
	yj_helper_child_fn child;
	void *child_arg;
	size_t max_output;
	char *buf;                     /* what the child wrote so far, owned */
	size_t len, cap;
	yj_helper_done_fn done;
	void *arg;
};

char *yj_helper_take(const char *p, size_t len)
{
	char *s = malloc(len + 1);
	if (s) {
		memcpy(s, p, len);
		s[len] = '\0';
	}
	return s;
}

int yj_helper_write_all(int fd, const void *data, size_t len)
{
	const char *p = data;
	while (len) {
		ssize_t n = write(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return YJ_EIO;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* The child: it never returns. */
static void s_child(yj_helper_child_fn fn, void *arg, int wfd, pid_t parent) __attribute__((noreturn));
static void s_child(yj_helper_child_fn fn, void *arg, int wfd, pid_t parent)
{
	sigset_t all;
	yj_log_after_fork();
	/* Not a moment longer than the daemon that asked. */
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != parent)
		_exit(1);
	/* The daemon blocks its signals for its signalfd: the helper takes them. */
	sigfillset(&all);
	sigprocmask(SIG_UNBLOCK, &all, NULL);
	signal(SIGTERM, SIG_DFL);
	signal(SIGALRM, SIG_DFL);
	int status = fn(arg, wfd);
	/* _exit: no atexit handler of the parent's (libzmq's, the sanitizers')
	 * may run in the helper. */
	_exit(status);
}

static int s_spawn(struct yj_helper *h);

/* Reap the child, hand its answer over, free h; or, when the watch found
 * the child stuck, start it again and keep h. */
static void s_finish(struct yj_helper *h, int cancelled)
{
	struct yj_helper_end end;
	int status = 0;

	if (h->fd >= 0) {
		yj_loop_remove(h->loop, NULL, h->fd);
		close(h->fd);
		h->fd = -1;
	}
	if (cancelled || h->overflow || h->restart)
		kill(h->pid, SIGKILL);
	while (waitpid(h->pid, &status, 0) < 0 && errno == EINTR)
		;
	if (h->restart && !cancelled && !h->timed_out && !h->overflow) {
		h->restart = 0;
		h->stalled = 0;
		h->len = 0;
		if (s_spawn(h) == 0)
			return; /* the limit still counts from the first start */
		status = 1 << 8;
	}
	if (h->timer > 0)
		yj_loop_timer_cancel(h->loop, h->timer);
	if (h->watch > 0)
		yj_loop_timer_cancel(h->loop, h->watch);
	memset(&end, 0, sizeof(end));
	end.cancelled = cancelled;
	end.timed_out = h->timed_out;
	end.overflow = h->overflow;
	end.exited_ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;
	end.signal = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
	end.buf = h->buf;
	end.len = h->overflow ? 0 : h->len;
	h->done(h->arg, &end);
	free(h->buf);
	free(h);
}

static int s_on_readable(struct yj_loop *loop, void *sock, int fd, short revents, void *arg)
{
	struct yj_helper *h = arg;
	(void)loop;
	(void)sock;
	(void)revents;
	for (;;) {
		if (h->cap - h->len < 65536) {
			size_t ncap = h->cap ? h->cap * 2 : 131072;
			char *nb = ncap <= h->max_output + 131072 ? realloc(h->buf, ncap) : NULL;
			if (!nb) {
				yj_err("%s: the helper's answer is over %zu MiB: stopped", h->name, h->max_output >> 20);
				h->overflow = 1;
				s_finish(h, 0);
				return 0;
			}
			h->buf = nb;
			h->cap = ncap;
		}
		ssize_t n = read(fd, h->buf + h->len, h->cap - h->len);
		if (n > 0) {
			h->len += (size_t)n;
			if (h->len > h->max_output) {
				yj_err("%s: the helper's answer is over %zu MiB: stopped", h->name, h->max_output >> 20);
				h->overflow = 1;
				s_finish(h, 0);
				return 0;
			}
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return 0;
		s_finish(h, 0); /* end of the pipe: the child is done */
		return 0;
	}
}

static int s_on_timeout(struct yj_loop *loop, void *arg)
{
	struct yj_helper *h = arg;
	(void)loop;
	h->timer = 0;
	h->timed_out = 1;
	/* The pipe's end follows at once and finishes the helper. */
	kill(h->pid, SIGKILL);
	return 0;
}

/* The child is single-threaded: nothing in it can release a lock but
 * itself, so one seen waiting on a futex check after check holds none of
 * its own work up: it waits for a lock that another thread of the daemon
 * held at the fork, and that thread does not exist in the child. glibc's
 * own locks are fork-safe where it matters (malloc) and the zone lock is
 * avoided (tz.h), but the sanitizer runtime of Debian 12's compilers takes
 * its allocator's locks with no fork handler (test_month under ASan: a
 * digest helper stuck in the allocator 1 run in 10). Such a child is
 * killed and started again: its answer is as good as the first would
 * have been. Where /proc/PID/syscall cannot be read, nothing is watched. */
static int s_on_watch(struct yj_loop *loop, void *arg)
{
	struct yj_helper *h = arg;
	char path[64], line[64];
	(void)loop;
	if (h->restart || h->fd < 0)
		return 0;
	snprintf(path, sizeof(path), "/proc/%ld/syscall", (long)h->pid);
	FILE *f = fopen(path, "re");
	if (!f)
		return 0;
	long nr = -1;
	if (fgets(line, sizeof(line), f))
		nr = strtol(line, NULL, 10);
	fclose(f);
	h->stalled = nr == SYS_futex ? h->stalled + 1 : 0;
	if (h->stalled >= S_STALL_CHECKS && h->restarts < S_MAX_RESTARTS) {
		h->restarts++;
		h->restart = 1;
		yj_warn("%s: helper %ld has waited on a lock for %d s that it inherited held at its fork: started again "
			"(%d of %d)", h->name, (long)h->pid, S_STALL_CHECKS, h->restarts, S_MAX_RESTARTS);
		/* The pipe's end follows and s_finish starts it again. */
		kill(h->pid, SIGKILL);
	}
	return 0;
}

/* Fork the child and watch its pipe. 0 or YJ_EIO. */
static int s_spawn(struct yj_helper *h)
{
	int fds[2] = { -1, -1 };
	if (pipe2(fds, O_CLOEXEC) != 0) {
		yj_err("%s: cannot make a pipe for the helper: %s", h->name, strerror(errno));
		return YJ_EIO;
	}
	h->pid = fork();
	if (h->pid < 0) {
		yj_err("%s: cannot start the helper: %s", h->name, strerror(errno));
		close(fds[0]);
		close(fds[1]);
		return YJ_EIO;
	}
	if (h->pid == 0) {
		close(fds[0]);
		s_child(h->child, h->child_arg, fds[1], h->parent);
	}
	close(fds[1]);
	h->fd = fds[0];
	if (fcntl(h->fd, F_SETFL, O_NONBLOCK) != 0 || yj_loop_add(h->loop, NULL, h->fd, ZMQ_POLLIN, s_on_readable, h)) {
		kill(h->pid, SIGKILL);
		while (waitpid(h->pid, NULL, 0) < 0 && errno == EINTR)
			;
		close(h->fd);
		h->fd = -1;
		return YJ_EIO;
	}
	return 0;
}

int yj_helper_start(struct yj_loop *loop, const char *name, int64_t limit_ms, size_t max_output,
		    yj_helper_child_fn child, void *child_arg, yj_helper_done_fn done, void *arg,
		    struct yj_helper **out)
{
	struct yj_helper *h = NULL;

	if (!loop || !child || !done || !out)
		return YJ_EINVAL;
	if (!(h = calloc(1, sizeof(*h))))
		return YJ_ENOMEM;
	h->loop = loop;
	snprintf(h->name, sizeof(h->name), "%s", name ? name : "helper");
	h->fd = -1;
	h->max_output = max_output;
	h->done = done;
	h->arg = arg;
	h->child = child;
	h->child_arg = child_arg;
	h->parent = getpid();
	if (s_spawn(h)) {
		free(h);
		return YJ_EIO;
	}
	h->timer = yj_loop_timer(loop, limit_ms, 0, s_on_timeout, h);
	h->watch = yj_loop_timer(loop, 1000, 1000, s_on_watch, h);
	*out = h;
	return 0;
}

void yj_helper_cancel(struct yj_helper *h)
{
	if (h)
		s_finish(h, 1);
}
