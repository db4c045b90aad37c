/* loop.h: the one event loop (after CZMQ's zloop and Redis's ae).
 *
 * zmq_poll over ZeroMQ sockets and plain file descriptors (signalfd, curl
 * multi sockets, inotify), plus timers, plus "before sleep" hooks that run
 * once per iteration after every ready handler: that is where the ingest
 * core commits the batch the handlers collected and sends the replies
 * (group commit), like Redis writes its AOF in beforeSleep().
 *
 * Ownership: the loop owns its bookkeeping only; sockets and fds stay the
 * caller's. Handlers may add and remove items and timers, also their own.
 */
#ifndef YJ_LOOP_H
#define YJ_LOOP_H

#include <stdint.h>

struct yj_loop;

/* Called when the socket or fd is ready; revents is ZMQ_POLLIN/OUT/ERR.
 * Return 0, or a negative code to stop the loop with that code. */
typedef int (*yj_loop_io_fn)(struct yj_loop *loop, void *socket, int fd, short revents, void *arg);
/* Timers and hooks. Same return convention. */
typedef int (*yj_loop_fn)(struct yj_loop *loop, void *arg);

struct yj_loop *yj_loop_new(void);
/* Free the loop and NULL *loop. Safe on NULL. */
void yj_loop_destroy(struct yj_loop **loop);

/* Watch a ZeroMQ socket (fd = -1) or a file descriptor (socket = NULL). */
int yj_loop_add(struct yj_loop *loop, void *socket, int fd, short events, yj_loop_io_fn fn, void *arg);
/* Change the events watched for an existing item. YJ_ENOENT if not watched. */
int yj_loop_set_events(struct yj_loop *loop, void *socket, int fd, short events);
/* Stop watching; YJ_ENOENT if it was not watched. */
int yj_loop_remove(struct yj_loop *loop, void *socket, int fd);

/* A timer firing after delay_ms, then every interval_ms (0: once). Returns a
 * positive id, or a negative code. */
int64_t yj_loop_timer(struct yj_loop *loop, int64_t delay_ms, int64_t interval_ms, yj_loop_fn fn, void *arg);
int yj_loop_timer_cancel(struct yj_loop *loop, int64_t id);

/* Run fn once per iteration, after the ready handlers (order of adding). */
int yj_loop_before_sleep(struct yj_loop *loop, yj_loop_fn fn, void *arg);

/* Do not sleep in the next poll (a handler left work that must run again,
 * e.g. it stopped draining a socket at its batch limit). */
void yj_loop_wake(struct yj_loop *loop);

/* Run until yj_loop_stop() or a handler fails. Returns 0 or that failure. */
int yj_loop_run(struct yj_loop *loop);
void yj_loop_stop(struct yj_loop *loop);

/* Monotonic milliseconds, the loop's clock. */
int64_t yj_loop_now_ms(void);

/* Iterations so far: the watchdog and /healthz use it to see the loop alive. */
uint64_t yj_loop_iterations(const struct yj_loop *loop);

#endif
