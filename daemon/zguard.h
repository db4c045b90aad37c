/* zguard.h: bounds on what the peers of one listening ZeroMQ socket may
 * cost (issue "hostile load"): connections, and memory held by libzmq for
 * messages not yet handed to us.
 *
 * libzmq gives a ROUTER no way to refuse a connection, to see a message
 * before its last frame arrived, or to bound the frames of one message (its
 * high-water mark counts whole messages only): one peer can make its I/O
 * thread buffer an unfinished message without limit, or hold descriptors
 * until accept() fails. The guard watches the socket's monitor (accepted,
 * disconnected: each with the descriptor) and, for TCP, the kernel's byte
 * count of each connection (TCP_INFO), less what is still in the kernel
 * (SIOCINQ), less what we have read from it (yj_zguard_consumed()): the rest
 * is held inside libzmq. A connection is closed (shutdown(2) on its
 * descriptor, after checking it is still the same connection: libzmq then
 * tears the session down and frees what it held) when
 *   - accepting it went over the connection cap: the least recently active
 *     connection goes (an idle flood cannot lock out a feed that talks);
 *   - it delivered nothing for a check interval while the bytes held for it
 *     grew past the stall cap (more than any one legitimate message: an
 *     unfinished giant message, or frames without end);
 *   - it does not read what we send it, and more than deaf_bytes of it
 *     waits inside libzmq (before that, from share_bytes on, the guard
 *     says it is over its share, yj_zguard_over_share(): the owner answers
 *     its requests at the least cost it can, so that a client that does
 *     not listen costs neither work nor disk until it reads again);
 *   - the process's private memory is over the pressure mark and it is
 *     stalled holding more than a little (a message of many empty frames
 *     costs libzmq 32 times its bytes on the wire, so bytes alone do not
 *     bound memory).
 * Complete messages are bounded by the socket's own high-water marks.
 *
 * Single-threaded: everything runs on the loop. The guard borrows the loop
 * and the socket (the socket must outlive it) and owns its monitor socket.
 */
#ifndef YJ_ZGUARD_H
#define YJ_ZGUARD_H

#include <stddef.h>
#include <stdint.h>

#include "loop.h"
#include "prom.h"

struct yj_zguard;

struct yj_zguard_limits {
	size_t max_connections;  /* accepted connections at once */
	uint64_t stall_bytes;    /* held for one connection that delivers nothing */
	uint64_t pressure_bytes; /* private memory from which stalled connections holding more than pressure_held go */
	uint64_t pressure_held;
	uint64_t deaf_bytes;     /* queued for a connection that does not read them (0: not watched) */
	uint64_t share_bytes;    /* queued and unread, from which a connection is over its share (0: never) */
};

/* What the guard did, since start. */
struct yj_zguard_stats {
	size_t connections;      /* now */
	size_t peak;             /* most at once */
	uint64_t accepted;
	uint64_t evicted;        /* closed to admit a newer one */
	uint64_t stalled;        /* closed for an unfinished message over the caps */
	uint64_t deaf;           /* closed for not reading what was sent to it */
	uint64_t over_share;     /* times a connection went over its share */
	size_t over_now;         /* connections over their share now */
};

/* Guard sock (name labels logs and metrics: "ingest"). With zmq_ctx, the
 * guard monitors sock itself; with NULL (the owner already monitors it:
 * libzmq allows one monitor per socket), the owner passes it every
 * ZMQ_EVENT_ACCEPTED and ZMQ_EVENT_DISCONNECTED (yj_zguard_event). */
int yj_zguard_new(struct yj_loop *loop, void *zmq_ctx, void *sock, const char *name,
		  const struct yj_zguard_limits *lim, struct yj_zguard **out);
void yj_zguard_event(struct yj_zguard *g, unsigned event, int fd);
void yj_zguard_destroy(struct yj_zguard **g);

/* A whole message of frames bytes in total (n_frames frames, routing id not
 * counted) was read from the connection on descriptor fd (zmq_msg_get
 * ZMQ_SRCFD). */
void yj_zguard_consumed(struct yj_zguard *g, int fd, size_t bytes, size_t n_frames);
/* A whole message of bytes (n_frames frames) was queued for the connection
 * on fd: what it does not read piles up in libzmq (each reply of a few
 * dozen bytes costs it some 400), so a connection over deaf_bytes of
 * replies it has not taken is closed. */
void yj_zguard_sent(struct yj_zguard *g, int fd, size_t bytes, size_t n_frames);

/* 1 when the connection on fd leaves more than share_bytes of what was
 * queued for it unread inside libzmq (yj_zguard_sent), else 0 (also for a
 * connection the guard cannot measure: not TCP, or not known yet). The
 * owner asks once per request it read from fd, and answers the requests
 * of a connection over its share without doing their work (in_yjl1: RETRY
 * overloaded), so that what the client sends while it does not listen is
 * neither processed nor stored. The verdict is kept per connection and
 * measured again only every few requests and on the guard's own checks:
 * asking costs no system call on most requests. A connection is back
 * under its share once it has read all but half of it; one line is logged
 * when it goes over, one when it comes back. */
int yj_zguard_over_share(struct yj_zguard *g, int fd);

/* The owner read sock until it had nothing more (EAGAIN): every complete
 * message had been handed over, so what libzmq still holds for a connection
 * is an unfinished one. Verdicts on stalled connections wait for this (and
 * for the socket not to be readable at the check): a loop that was busy
 * elsewhere (a long commit, a digest) must not be blamed on its peers. */
void yj_zguard_drained(struct yj_zguard *g);

void yj_zguard_stats(const struct yj_zguard *g, struct yj_zguard_stats *out);
/* yjlink_<name>_connections, _connections_closed_total{reason},
 * _connections_over_share (gauge) and _over_share_total. */
void yj_zguard_metrics(const struct yj_zguard *g, struct yj_prom *p);

/* The connection cap this process can afford for a listener that gets share
 * parts in total of the descriptors left after a reserve for the store,
 * control, delivery and metrics. Raises RLIMIT_NOFILE's soft limit to the
 * hard one first (once). */
size_t yj_zguard_fd_budget(unsigned share, unsigned total);

#endif
