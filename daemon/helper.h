/* helper.h: work run off the event loop in a forked helper process, its
 * answer read back on the loop (as Postfix runs its delivery agents).
 *
 * Why a process and not a thread: the work reads the store for a second or
 * more (a board report over a year, a digest of many thousand events). A
 * thread would hold an LMDB read transaction in this process, and LMDB
 * forbids growing the map (the writer's answer to MDB_MAP_FULL) while any
 * transaction of the process is open; it would also need the config and
 * reference tables to outlive a reload. A forked child has neither problem:
 * it opens an environment of its own, read-only (another process's reader
 * holds back neither the writer nor its map growth), and it sees the config
 * and tables as they were at the fork, whatever a reload does afterwards.
 *
 * The child runs the caller's function, which writes its answer to a pipe,
 * and exits; the parent reads the pipe on the loop (at most max_output
 * bytes) and, at its end, reaps the child and calls done once. A child still
 * running after limit_ms is killed and reported as timed out.
 *
 * A fork copies the locks other threads held at that instant, and nothing in
 * the single-threaded child can release them. The daemon's own code avoids
 * every such lock (tz.h for glibc's zone lock; glibc's malloc is fork-safe),
 * but the sanitizer runtime of Debian 12's compilers has no fork handler for
 * its allocator. So the parent looks at the child once a second
 * (/proc/PID/syscall): a child seen waiting on a futex three times running
 * is killed and forked again, at most five times, done still called once.
 * The limit counts from the first start.
 *
 * Ownership: yj_helper_start() returns a handle owned by the running helper:
 * it is freed after done returns, or by yj_helper_cancel() (which kills the
 * child and calls done with cancelled set, before it returns). The answer
 * handed to done is borrowed for the call.
 */
#ifndef YJ_HELPER_H
#define YJ_HELPER_H

#include <stddef.h>
#include <stdint.h>

struct yj_loop;
struct yj_helper;

/* Runs in the child with the parent's memory as it was at the fork; writes
 * its answer to wfd (yj_helper_write_all) and returns the exit status. It
 * must not touch the parent's ZeroMQ context or LMDB environment. */
typedef int (*yj_helper_child_fn)(void *arg, int wfd);

/* How a helper ended, and what it wrote. */
struct yj_helper_end {
	int cancelled;       /* yj_helper_cancel(): the child was killed */
	int timed_out;       /* it ran past its limit and was killed */
	int overflow;        /* it wrote more than max_output: killed */
	int exited_ok;       /* it exited with status 0 */
	int signal;          /* the signal that ended it, 0 if none */
	const char *buf;     /* what it wrote (not NUL-terminated) */
	size_t len;
};

typedef void (*yj_helper_done_fn)(void *arg, const struct yj_helper_end *end);

/* Fork a helper that runs child(child_arg, wfd); done(arg, end) is called on
 * the loop when it has ended (never from inside this call). child_arg and
 * what it points to must stay valid until done: a stuck child is forked
 * again from the parent's memory as it is then. name is for the
 * log. Returns 0 and *out, or YJ_EIO when no helper can be started. */
int yj_helper_start(struct yj_loop *loop, const char *name, int64_t limit_ms, size_t max_output,
		    yj_helper_child_fn child, void *child_arg, yj_helper_done_fn done, void *arg,
		    struct yj_helper **out);

/* Kill h's child and call its done with cancelled set; h is then freed. */
void yj_helper_cancel(struct yj_helper *h);

/* A NUL-terminated copy of len bytes of an answer (the caller's, free()),
 * or NULL without memory. */
char *yj_helper_take(const char *p, size_t len);

/* Write all of data to fd (the child's pipe, or a file). 0 or YJ_EIO. */
int yj_helper_write_all(int fd, const void *data, size_t len);

#endif
