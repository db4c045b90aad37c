/* zguard.c: see zguard.h. */
#include "zguard.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/sockios.h>
#include <linux/tcp.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>
#include <zmq.h>

#include "err.h"
#include "log.h"

#define S_TICK_MS 25            /* how soon a stalled giant message is seen: libzmq grows ~6M empty frames a second */
#define S_SCAN_PER_TICK 256     /* connections looked at per tick when there are many */
#define S_FULL_EVERY 40         /* ticks between scans of every connection (1 s) */
#define S_GROWTH_SCAN (4u << 20) /* private memory grown this much since the last full scan: scan all now */
#define S_LOG_EVERY_MS 10000    /* one warning per reason per 10 s, with a count */
#define S_FD_RESERVE 256        /* descriptors kept for the store, control, delivery, metrics */
/* Requests between two measures of a connection's share: a client that
 * stopped reading gets at most this many more requests served before it is
 * told to back off (a few KiB of replies against a share of hundreds), and
 * the two system calls of a measure are spread over as many requests. */
#define S_SHARE_EVERY 64

/* Why a connection was closed: indexes the per-reason log state, so the
 * arrays are sized by R_COUNT (sized 3 for these 4 reasons, a deaf close
 * wrote past the guard's allocation and corrupted the heap). */
enum { R_EVICT, R_STALL, R_PRESSURE, R_DEAF, R_COUNT };

/* One accepted connection, by descriptor. */
struct s_conn {
	int state;                  /* 0 free, 1 live, 2 closed by us, awaiting libzmq's disconnect */
	int tcp;                    /* TCP_INFO applies */
	uint64_t consumed;          /* ZMTP bytes of the messages we read from it */
	uint64_t handed;            /* ZMTP bytes of the messages we queued for it */
	uint64_t seen_consumed;     /* consumed at its last check */
	int64_t mark;               /* bytes held for it when it last delivered */
	int64_t mark_ms;            /* when */
	int64_t active_ms;          /* accepted or last message: the eviction order */
	int over;                   /* over its share at the last measure */
	unsigned asks;              /* yj_zguard_over_share() calls since that measure */
	uint64_t refused;           /* of them answered "over" in this episode */
	struct sockaddr_storage self, peer; /* who it was, to be sure a descriptor was not reused */
	socklen_t self_len, peer_len;
	int fd;
	int prev, next;             /* live connections by descriptor, most recently active first; -1 none */
};

struct yj_zguard {
	struct yj_loop *loop;       /* borrowed */
	void *sock;                 /* borrowed: the guarded socket */
	void *mon;                  /* owned: PAIR on its monitor */
	char *name;                 /* owned */
	struct yj_zguard_limits lim;
	struct s_conn *conns;       /* owned, indexed by descriptor */
	size_t n_conns;             /* slots in conns */
	int head, tail;             /* live connections by descriptor, most recently active first; -1 none */
	int64_t timer;
	size_t cursor;              /* round-robin position in conns */
	unsigned ticks;
	int statm;                  /* /proc/self/statm, -1 if unreadable */
	uint64_t anon_at_scan;      /* private bytes at the last full scan */
	int drained;                /* the owner drained the socket since the last tick */
	struct yj_zguard_stats st;
	int64_t logged_ms[R_COUNT]; /* per reason: last warning */
	uint64_t unlogged[R_COUNT]; /* closed since it */
};

static const char *const s_reason_names[] = { "evicted", "stalled", "stalled", "deaf" };

static void s_lru_unlink(struct yj_zguard *g, struct s_conn *c)
{
	if (c->prev >= 0)
		g->conns[c->prev].next = c->next;
	else
		g->head = c->next;
	if (c->next >= 0)
		g->conns[c->next].prev = c->prev;
	else
		g->tail = c->prev;
	c->prev = c->next = -1;
}

static void s_lru_front(struct yj_zguard *g, struct s_conn *c)
{
	c->next = g->head;
	c->prev = -1;
	if (g->head >= 0)
		g->conns[g->head].prev = c->fd;
	g->head = c->fd;
	if (g->tail < 0)
		g->tail = c->fd;
}

static struct s_conn *s_slot(struct yj_zguard *g, int fd)
{
	if (fd < 0)
		return NULL;
	if ((size_t)fd >= g->n_conns) {
		size_t n = g->n_conns ? g->n_conns : 64;
		while (n <= (size_t)fd)
			n *= 2;
		struct s_conn *nc = realloc(g->conns, n * sizeof(*nc));
		if (!nc)
			return NULL;
		memset(nc + g->n_conns, 0, (n - g->n_conns) * sizeof(*nc));
		g->conns = nc;
		g->n_conns = n;
	}
	return &g->conns[fd];
}

static void s_warn(struct yj_zguard *g, int reason, const char *what)
{
	int64_t now = yj_loop_now_ms();
	g->unlogged[reason]++;
	if (g->logged_ms[reason] && now - g->logged_ms[reason] < S_LOG_EVERY_MS)
		return;
	yj_warn("%s: closed %llu connection(s) %s (%zu open, cap %zu); their clients reconnect and resend",
		g->name, (unsigned long long)g->unlogged[reason], what, g->st.connections, g->lim.max_connections);
	g->logged_ms[reason] = now;
	g->unlogged[reason] = 0;
}

/* Is fd still the connection we registered? (libzmq may have closed it and
 * the number gone to another socket before its disconnect reached us.) */
static int s_same(const struct s_conn *c)
{
	struct sockaddr_storage a;
	socklen_t len = sizeof(a);
	if (getsockname(c->fd, (struct sockaddr *)&a, &len) != 0 || len != c->self_len || memcmp(&a, &c->self, len) != 0)
		return 0;
	len = sizeof(a);
	if (getpeername(c->fd, (struct sockaddr *)&a, &len) != 0 || len != c->peer_len || memcmp(&a, &c->peer, len) != 0)
		return 0;
	return 1;
}

static void s_close(struct yj_zguard *g, struct s_conn *c, int reason)
{
	static const char *const what[] = { "to admit newer ones", "holding an unfinished message over the stall cap",
					    "holding an unfinished message while memory is short",
					    "not reading their replies" };
	if (c->state != 1)
		return;
	/* libzmq sees the shutdown as the peer going away and frees the
	 * session, unfinished message and all. */
	if (s_same(c))
		shutdown(c->fd, SHUT_RDWR);
	s_lru_unlink(g, c);
	c->state = 2;
	g->st.connections--;
	if (c->over) {
		c->over = 0;
		g->st.over_now--;
	}
	if (reason == R_EVICT)
		g->st.evicted++;
	else if (reason == R_DEAF)
		g->st.deaf++;
	else
		g->st.stalled++;
	s_warn(g, reason, what[reason]);
}

static void s_register(struct yj_zguard *g, int fd)
{
	struct s_conn *c = s_slot(g, fd);
	if (!c) {
		yj_warn("%s: out of memory tracking connection %d", g->name, fd);
		return;
	}
	if (c->state == 1)
		return;
	memset(c, 0, sizeof(*c));
	c->fd = fd;
	c->prev = c->next = -1;
	c->self_len = sizeof(c->self);
	c->peer_len = sizeof(c->peer);
	if (getsockname(fd, (struct sockaddr *)&c->self, &c->self_len) != 0 ||
	    getpeername(fd, (struct sockaddr *)&c->peer, &c->peer_len) != 0) {
		/* Already gone: its disconnect is on its way. */
		return;
	}
	c->tcp = c->self.ss_family == AF_INET || c->self.ss_family == AF_INET6;
	c->state = 1;
	c->active_ms = c->mark_ms = yj_loop_now_ms();
	s_lru_front(g, c);
	g->st.accepted++;
	g->st.connections++;
	if (g->st.connections > g->st.peak)
		g->st.peak = g->st.connections;
	while (g->st.connections > g->lim.max_connections && g->tail >= 0 && g->tail != fd)
		s_close(g, &g->conns[g->tail], R_EVICT);
}

static void s_forget(struct yj_zguard *g, int fd)
{
	if (fd < 0 || (size_t)fd >= g->n_conns)
		return;
	struct s_conn *c = &g->conns[fd];
	if (c->state == 1) {
		s_lru_unlink(g, c);
		g->st.connections--;
		if (c->over)
			g->st.over_now--;
	}
	c->over = 0;
	c->state = 0;
}

static int s_on_monitor(struct yj_loop *loop, void *sock, int fd, short revents, void *arg)
{
	struct yj_zguard *g = arg;
	(void)loop;
	(void)sock;
	(void)fd;
	(void)revents;
	for (;;) {
		zmq_msg_t m;
		zmq_msg_init(&m);
		if (zmq_msg_recv(&m, g->mon, ZMQ_DONTWAIT) < 0) {
			zmq_msg_close(&m);
			return 0;
		}
		uint16_t event = 0;
		uint32_t value = 0;
		if (zmq_msg_size(&m) >= 6) {
			memcpy(&event, zmq_msg_data(&m), 2);
			memcpy(&value, (char *)zmq_msg_data(&m) + 2, 4);
		}
		int more = zmq_msg_more(&m);
		zmq_msg_close(&m);
		while (more) {
			zmq_msg_init(&m);
			if (zmq_msg_recv(&m, g->mon, 0) < 0) {
				zmq_msg_close(&m);
				return 0;
			}
			more = zmq_msg_more(&m);
			zmq_msg_close(&m);
		}
		yj_zguard_event(g, event, (int)value);
	}
}

void yj_zguard_event(struct yj_zguard *g, unsigned event, int fd)
{
	if (!g)
		return;
	if (event == ZMQ_EVENT_ACCEPTED)
		s_register(g, fd);
	else if (event == ZMQ_EVENT_DISCONNECTED)
		s_forget(g, fd);
}

void yj_zguard_consumed(struct yj_zguard *g, int fd, size_t bytes, size_t n_frames)
{
	if (!g || fd < 0)
		return;
	struct s_conn *c = (size_t)fd < g->n_conns ? &g->conns[fd] : NULL;
	if (!c || c->state == 0) {
		/* Its accept event is still on the way. */
		s_register(g, fd);
		c = (size_t)fd < g->n_conns ? &g->conns[fd] : NULL;
	}
	if (!c || c->state != 1)
		return;
	/* ZMTP frame headers: 2 bytes for a short frame, 9 for a long one; a
	 * few bytes off only delay a verdict. */
	c->consumed += bytes + 2 * n_frames + (bytes > 255 ? 7 : 0);
	c->active_ms = yj_loop_now_ms();
	if (g->head != fd) {
		s_lru_unlink(g, c);
		s_lru_front(g, c);
	}
}

void yj_zguard_sent(struct yj_zguard *g, int fd, size_t bytes, size_t n_frames)
{
	if (!g || fd < 0 || (size_t)fd >= g->n_conns || g->conns[fd].state != 1)
		return;
	g->conns[fd].handed += bytes + 2 * n_frames + (bytes > 255 ? 7 : 0);
}

/* Bytes libzmq holds for c now, relative to when it last delivered; -1 when
 * it delivered since the last look (or cannot be told). */
static int64_t s_held(struct s_conn *c, int64_t now)
{
	struct tcp_info ti;
	socklen_t len = sizeof(ti);
	int inq = 0;

	if (!c->tcp)
		return -1;
	memset(&ti, 0, sizeof(ti));
	if (getsockopt(c->fd, IPPROTO_TCP, TCP_INFO, &ti, &len) != 0 ||
	    len < offsetof(struct tcp_info, tcpi_bytes_received) + sizeof(ti.tcpi_bytes_received) ||
	    ioctl(c->fd, SIOCINQ, &inq) != 0)
		return -1;
	int64_t excess = (int64_t)ti.tcpi_bytes_received - inq - (int64_t)c->consumed;
	if (c->consumed != c->seen_consumed || excess < c->mark) {
		c->seen_consumed = c->consumed;
		c->mark = excess;
		c->mark_ms = now;
		return -1;
	}
	/* Our heartbeats draw a PONG (7 bytes) every 10 s that we never read:
	 * a byte a second keeps a quiet connection from ever looking stalled. */
	return excess - c->mark - (now - c->mark_ms) / 1000;
}

/* Bytes we queued for c that libzmq still holds (neither in the kernel nor
 * acknowledged by the peer), or -1. */
static int64_t s_held_out(const struct s_conn *c)
{
	struct tcp_info ti;
	socklen_t len = sizeof(ti);
	int outq = 0;

	if (!c->tcp || !c->handed)
		return -1;
	memset(&ti, 0, sizeof(ti));
	if (getsockopt(c->fd, IPPROTO_TCP, TCP_INFO, &ti, &len) != 0 ||
	    len < offsetof(struct tcp_info, tcpi_bytes_acked) + sizeof(ti.tcpi_bytes_acked) ||
	    ioctl(c->fd, SIOCOUTQ, &outq) != 0)
		return -1;
	return (int64_t)c->handed - (int64_t)ti.tcpi_bytes_acked - outq;
}

/* c's peer, as numbers, for a log line. */
static const char *s_peer_name(const struct s_conn *c, char *buf, size_t size)
{
	char host[64], port[16];
	if (getnameinfo((const struct sockaddr *)&c->peer, c->peer_len, host, sizeof(host), port, sizeof(port),
			NI_NUMERICHOST | NI_NUMERICSERV) != 0)
		snprintf(buf, size, "connection %d", c->fd);
	else
		snprintf(buf, size, c->peer.ss_family == AF_INET6 ? "[%s]:%s" : "%s:%s", host, port);
	return buf;
}

/* Take a measure of what c leaves unread (held: s_held_out()) into its
 * share verdict. It goes over above share_bytes and comes back only below
 * half of it: a client that reads slowly near the mark would otherwise
 * flip between RETRY and normal answers every few requests. */
static void s_share(struct yj_zguard *g, struct s_conn *c, int64_t held)
{
	char who[96];
	int64_t share = (int64_t)g->lim.share_bytes;

	c->asks = 0;
	if (!share)
		return;
	if (!c->over && held > share) {
		c->over = 1;
		c->refused = 0;
		g->st.over_share++;
		g->st.over_now++;
		yj_warn("%s: the client at %s leaves %lld KiB of replies unread (its share is %lld KiB): its requests are "
			"answered RETRY overloaded, neither processed nor stored, until it reads them", g->name,
			s_peer_name(c, who, sizeof(who)), (long long)(held >> 10), (long long)(share >> 10));
	} else if (c->over && held < share / 2) {
		c->over = 0;
		g->st.over_now--;
		yj_notice("%s: the client at %s reads its replies again; %llu of its requests were answered RETRY overloaded",
			  g->name, s_peer_name(c, who, sizeof(who)), (unsigned long long)c->refused);
	}
}

/* Measure what c leaves unread: judge its share, and close it when deaf.
 * Returns 1 when it was closed. */
static int s_judge_out(struct yj_zguard *g, struct s_conn *c)
{
	int64_t held = s_held_out(c);
	s_share(g, c, held);
	if (g->lim.deaf_bytes && held > (int64_t)g->lim.deaf_bytes) {
		s_close(g, c, R_DEAF);
		return 1;
	}
	return 0;
}

int yj_zguard_over_share(struct yj_zguard *g, int fd)
{
	if (!g || !g->lim.share_bytes || fd < 0 || (size_t)fd >= g->n_conns)
		return 0;
	struct s_conn *c = &g->conns[fd];
	/* Closed by us: what libzmq still reads from it would get replies
	 * that can no longer be delivered. (Unless the number went to a new
	 * connection before its disconnect reached us: rare, and worth the
	 * two system calls.) */
	if (c->state == 2)
		return s_same(c);
	if (c->state != 1)
		return 0;
	if (++c->asks >= S_SHARE_EVERY && s_judge_out(g, c))
		return 1;
	if (c->over)
		c->refused++;
	return c->over;
}

static uint64_t s_private_bytes(struct yj_zguard *g)
{
	char buf[128];
	unsigned long size, resident, shared;
	if (g->statm < 0)
		return 0;
	ssize_t n = pread(g->statm, buf, sizeof(buf) - 1, 0);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	if (sscanf(buf, "%lu %lu %lu", &size, &resident, &shared) != 3 || resident < shared)
		return 0;
	return (uint64_t)(resident - shared) * (uint64_t)sysconf(_SC_PAGESIZE);
}

static void s_scan_all(struct yj_zguard *g, int64_t now, uint64_t anon, int judge)
{
	int pressure = anon > g->lim.pressure_bytes;
	for (size_t i = 0; i < g->n_conns; i++) {
		struct s_conn *c = &g->conns[i];
		if (c->state != 1)
			continue;
		int64_t held = s_held(c, now);
		if (s_judge_out(g, c))
			continue;
		if (!judge)
			continue;
		if (held > (int64_t)g->lim.stall_bytes)
			s_close(g, c, R_STALL);
		else if (pressure && held > (int64_t)g->lim.pressure_held)
			s_close(g, c, R_PRESSURE);
	}
	g->anon_at_scan = anon;
}

static int s_on_tick(struct yj_loop *loop, void *arg)
{
	struct yj_zguard *g = arg;
	int64_t now = yj_loop_now_ms();
	(void)loop;

	g->ticks++;
	if (!g->st.connections)
		return 0;
	/* Only when every complete message was handed over since the last
	 * tick, and none waits now, is a connection's backlog its own doing. */
	int events = 0;
	size_t elen = sizeof(events);
	int judge = g->drained && zmq_getsockopt(g->sock, ZMQ_EVENTS, &events, &elen) == 0 && !(events & ZMQ_POLLIN);
	g->drained = 0;
	uint64_t anon = s_private_bytes(g);
	if (g->st.connections <= S_SCAN_PER_TICK || g->ticks % S_FULL_EVERY == 0 ||
	    anon > g->anon_at_scan + S_GROWTH_SCAN || anon > g->lim.pressure_bytes) {
		s_scan_all(g, now, anon, judge);
		return 0;
	}
	for (size_t seen = 0, steps = 0; seen < S_SCAN_PER_TICK && steps < g->n_conns; steps++) {
		if (g->cursor >= g->n_conns)
			g->cursor = 0;
		struct s_conn *c = &g->conns[g->cursor++];
		if (c->state != 1)
			continue;
		seen++;
		if (s_held(c, now) > (int64_t)g->lim.stall_bytes && judge)
			s_close(g, c, R_STALL);
		else
			s_judge_out(g, c);
	}
	return 0;
}

int yj_zguard_new(struct yj_loop *loop, void *zmq_ctx, void *sock, const char *name,
		  const struct yj_zguard_limits *lim, struct yj_zguard **out)
{
	static unsigned serial;
	struct yj_zguard *g = NULL;
	char ep[96];
	int rc = 0, zero = 0;

	if (!loop || !sock || !name || !lim || !out)
		return YJ_EINVAL;
	*out = NULL;
	if (!(g = calloc(1, sizeof(*g))) || !(g->name = strdup(name))) {
		rc = YJ_ENOMEM;
		goto out;
	}
	g->loop = loop;
	g->sock = sock;
	g->head = g->tail = -1;
	g->lim = *lim;
	g->statm = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
	snprintf(ep, sizeof(ep), "inproc://yj-zguard-%s-%u-%d", name, ++serial, (int)getpid());
	if (!zmq_ctx)
		goto timer;
	if (zmq_socket_monitor(sock, ep, ZMQ_EVENT_ACCEPTED | ZMQ_EVENT_DISCONNECTED) != 0 ||
	    !(g->mon = zmq_socket(zmq_ctx, ZMQ_PAIR))) {
		rc = YJ_EIO;
		goto out;
	}
	/* A missed disconnect would count a connection for ever: no HWM. */
	zmq_setsockopt(g->mon, ZMQ_RCVHWM, &zero, sizeof(zero));
	zmq_setsockopt(g->mon, ZMQ_LINGER, &zero, sizeof(zero));
	if (zmq_connect(g->mon, ep) != 0) {
		rc = YJ_EIO;
		goto out;
	}
	if ((rc = yj_loop_add(loop, g->mon, -1, ZMQ_POLLIN, s_on_monitor, g)))
		goto out;
timer:;
	int64_t t = yj_loop_timer(loop, S_TICK_MS, S_TICK_MS, s_on_tick, g);
	if (t < 0) {
		if (g->mon)
			yj_loop_remove(loop, g->mon, -1);
		rc = (int)t;
		goto out;
	}
	g->timer = t;
	*out = g;
	g = NULL;
out:
	if (g) {
		if (g->mon) {
			zmq_socket_monitor(sock, NULL, 0);
			zmq_close(g->mon);
		}
		if (g->statm >= 0 && g->name)
			close(g->statm);
		free(g->name);
		free(g);
	}
	return rc;
}

void yj_zguard_destroy(struct yj_zguard **gp)
{
	struct yj_zguard *g = gp ? *gp : NULL;
	if (!g)
		return;
	yj_loop_timer_cancel(g->loop, g->timer);
	if (g->mon) {
		yj_loop_remove(g->loop, g->mon, -1);
		zmq_socket_monitor(g->sock, NULL, 0);
		zmq_close(g->mon);
	}
	if (g->statm >= 0)
		close(g->statm);
	free(g->conns);
	free(g->name);
	free(g);
	*gp = NULL;
}

void yj_zguard_drained(struct yj_zguard *g)
{
	if (g)
		g->drained = 1;
}

void yj_zguard_stats(const struct yj_zguard *g, struct yj_zguard_stats *out)
{
	if (g)
		*out = g->st;
	else
		memset(out, 0, sizeof(*out));
}

void yj_zguard_metrics(const struct yj_zguard *g, struct yj_prom *p)
{
	char name[96], closed[112];
	if (!g)
		return;
	snprintf(name, sizeof(name), "yjlink_%s_connections", g->name);
	snprintf(closed, sizeof(closed), "yjlink_%s_connections_closed_total", g->name);
	yj_prom_family(p, name, "gauge", "Connections open now");
	yj_prom_sample_l(p, name, (double)g->st.connections, NULL);
	yj_prom_family(p, closed, "counter",
		       "Connections closed by the daemon since start: evicted (over the connection cap), stalled "
		       "(an unfinished message over the caps), deaf (not reading its replies)");
	yj_prom_sample_l(p, closed, (double)g->st.evicted, "reason", s_reason_names[R_EVICT], NULL);
	yj_prom_sample_l(p, closed, (double)g->st.stalled, "reason", s_reason_names[R_STALL], NULL);
	yj_prom_sample_l(p, closed, (double)g->st.deaf, "reason", s_reason_names[R_DEAF], NULL);
	if (!g->lim.share_bytes)
		return;
	snprintf(name, sizeof(name), "yjlink_%s_connections_over_share", g->name);
	snprintf(closed, sizeof(closed), "yjlink_%s_over_share_total", g->name);
	yj_prom_family(p, name, "gauge", "Connections over their share now (leaving too many replies unread)");
	yj_prom_sample_l(p, name, (double)g->st.over_now, NULL);
	yj_prom_family(p, closed, "counter", "Times a connection went over its share since start");
	yj_prom_sample_l(p, closed, (double)g->st.over_share, NULL);
}

size_t yj_zguard_fd_budget(unsigned share, unsigned total)
{
	static int raised;
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
		return 64;
	if (!raised && rl.rlim_cur < rl.rlim_max) {
		struct rlimit want = { rl.rlim_max, rl.rlim_max };
		if (setrlimit(RLIMIT_NOFILE, &want) == 0)
			rl = want;
		raised = 1;
	}
	rlim_t cur = rl.rlim_cur == RLIM_INFINITY ? 1u << 20 : rl.rlim_cur;
	size_t avail = cur > S_FD_RESERVE + 64 ? (size_t)(cur - S_FD_RESERVE) : 64;
	size_t n = total ? avail * share / total : avail;
	return n < 16 ? 16 : n;
}
