/* metrics.c: see metrics.h. */
#include "metrics.h"

/* microhttpd.h uses socket types without including their headers. */
#include <sys/types.h>
#include <sys/socket.h>

#include <arpa/inet.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <microhttpd.h>

#include "err.h"
#include "log.h"
#include "loop.h"

/* Longest store reason kept, in bytes, and the room for its NUL. */
#define S_WHY_MAX 200

/* Limits against slowloris and connection floods (docs/limits.md). A fixed
 * connection limit alone lets a few clients that never finish a request
 * hold every slot: a probe then waits in the listen backlog for as long as
 * they like. So connections are kept up to S_CONN_KEPT; each new one beyond
 * that makes room by cutting the connection that has waited longest without
 * a request being answered (a slowloris, an idle flood, a keep-alive left
 * open), never one being answered. A probe sends its whole request at once,
 * so it is the newest and is answered before it could be the oldest.
 * S_CONN_MAX, MHD's own limit, only bounds the connections already cut that
 * MHD has not yet closed: descriptors and memory stay bounded whatever
 * arrives (S_CONN_MAX x S_CONN_MEMORY). */
#define S_CONN_KEPT 32u
#define S_CONN_MAX 64u
/* Each connection's memory pool in MHD: a request's headers must fit. */
#define S_CONN_MEMORY (16u * 1024u)
/* Seconds a silent client may hold a connection (MHD's idle timeout). */
#define S_CONNECTION_TIMEOUT 5u

#define S_CONTENT_METRICS "text/plain; version=0.0.4; charset=utf-8"
#define S_CONTENT_TEXT "text/plain; charset=utf-8"

/* One connection, as the HTTP thread alone tracks it. */
struct s_conn {
	int fd;                          /* its socket, -1 when the slot is free */
	int busy;                        /* a request is being answered */
	int cut;                         /* shut down to make room; MHD closes it at its next look */
	int64_t idle_since_ms;           /* opened, or its last request answered (yj_loop_now_ms) */
};

struct yj_metrics {
	struct MHD_Daemon *mhd;          /* the server; its internal thread runs s_handle() */
	pthread_mutex_t lock;            /* guards text, text_len, store_ok, store_why, capturing, start_log */
	char *text;                      /* last published exposition (NULL before the first); owned */
	size_t text_len;                 /* bytes in text */
	int store_ok;                    /* store writable at the last attempt (1 until told otherwise) */
	char store_why[S_WHY_MAX + 1];   /* one-line reason when !store_ok, for /healthz */
	_Atomic int64_t beat_ms;         /* yj_loop_now_ms() at the last beat: monotonic, so neither
					  * NTP steps nor the test clock fake a stall or hide one */
	int64_t stall_ms;                /* beat age from which /healthz answers 503 */
	int capturing;                   /* 1 while MHD_start_daemon() runs: MHD messages go to start_log */
	char start_log[256];             /* MHD's first message during start: why a bind failed */
	struct s_conn conns[S_CONN_MAX]; /* open connections: the HTTP thread's only (MHD calls back in it) */
};

/* MHD's messages. During start they explain a failure and end up in the
 * one error line yj_metrics_start() writes; afterwards they are about single
 * HTTP clients (malformed requests, timeouts), so they go to debug, where a
 * client cannot flood the journal with them. */
static void s_mhd_log(void *cls, const char *fmt, va_list ap)
{
	struct yj_metrics *m = cls;
	char msg[256];
	size_t len = 0;
	int captured = 0;

	vsnprintf(msg, sizeof(msg), fmt, ap);
	len = strlen(msg);
	while (len > 0 && (msg[len - 1] == '\n' || msg[len - 1] == '\r'))
		msg[--len] = '\0';
	pthread_mutex_lock(&m->lock);
	if (m->capturing) {
		if (!m->start_log[0])
			snprintf(m->start_log, sizeof(m->start_log), "%s", msg);
		captured = 1;
	}
	pthread_mutex_unlock(&m->lock);
	if (!captured)
		yj_debug("metrics: libmicrohttpd: %s", msg);
}

/* Queue one response. body is copied unless mode says otherwise; allow, when
 * not NULL, is the Allow header a 405 must carry. */
static enum MHD_Result s_reply(struct MHD_Connection *conn, unsigned int status,
			       const char *content_type, const char *body, size_t len,
			       enum MHD_ResponseMemoryMode mode, const char *allow)
{
	struct MHD_Response *resp = NULL;
	enum MHD_Result ret = MHD_NO;

	resp = MHD_create_response_from_buffer(len, (void *)body, mode);
	if (!resp) {
		if (mode == MHD_RESPMEM_MUST_FREE)
			free((void *)body);
		goto out;
	}
	if (MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, content_type) != MHD_YES ||
	    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store") != MHD_YES ||
	    (allow && MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, allow) != MHD_YES))
		goto out;
	ret = MHD_queue_response(conn, status, resp);
out:
	if (resp)
		MHD_destroy_response(resp);
	return ret;
}

static enum MHD_Result s_reply_text(struct MHD_Connection *conn, unsigned int status, const char *text)
{
	return s_reply(conn, status, S_CONTENT_TEXT, text, strlen(text), MHD_RESPMEM_MUST_COPY, NULL);
}

static enum MHD_Result s_serve_metrics(struct yj_metrics *m, struct MHD_Connection *conn)
{
	char *copy = NULL;
	size_t len = 0;
	int nomem = 0;

	/* A copy, because the loop may publish (and free this text) while MHD
	 * is still sending it; a few kilobytes, so the lock is held briefly. */
	pthread_mutex_lock(&m->lock);
	len = m->text_len;
	if (len > 0) {
		copy = malloc(len);
		if (copy)
			memcpy(copy, m->text, len);
		else
			nomem = 1;
	}
	pthread_mutex_unlock(&m->lock);
	if (nomem)
		return s_reply_text(conn, MHD_HTTP_SERVICE_UNAVAILABLE, "out of memory\n");
	if (!copy)
		return s_reply(conn, MHD_HTTP_OK, S_CONTENT_METRICS, "", 0, MHD_RESPMEM_PERSISTENT, NULL);
	return s_reply(conn, MHD_HTTP_OK, S_CONTENT_METRICS, copy, len, MHD_RESPMEM_MUST_FREE, NULL);
}

static enum MHD_Result s_serve_healthz(struct yj_metrics *m, struct MHD_Connection *conn)
{
	char body[S_WHY_MAX + 64];
	int64_t age = yj_loop_now_ms() - atomic_load(&m->beat_ms);
	int ok = 0;

	if (age >= m->stall_ms) {
		snprintf(body, sizeof(body), "main loop stalled for %" PRId64 " ms\n", age);
		return s_reply_text(conn, MHD_HTTP_SERVICE_UNAVAILABLE, body);
	}
	pthread_mutex_lock(&m->lock);
	ok = m->store_ok;
	if (!ok)
		snprintf(body, sizeof(body), "store not writable: %s\n", m->store_why);
	pthread_mutex_unlock(&m->lock);
	if (!ok)
		return s_reply_text(conn, MHD_HTTP_SERVICE_UNAVAILABLE, body);
	return s_reply_text(conn, MHD_HTTP_OK, "ok\n");
}

/* The slot of conn (NULL when it has none). */
static struct s_conn *s_conn_of(struct MHD_Connection *conn)
{
	const union MHD_ConnectionInfo *ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
	return ci ? ci->socket_context : NULL;
}

/* Cut the connections waiting longest without a request answered until at
 * most S_CONN_KEPT remain, sparing fresh (just opened) and any being
 * answered. shutdown(), not close(): the descriptor stays MHD's, which sees
 * the end of the stream and closes it itself, so it is never closed twice
 * nor reused under MHD. */
static void s_make_room(struct yj_metrics *m, const struct s_conn *fresh)
{
	for (;;) {
		struct s_conn *oldest = NULL;
		unsigned live = 0;
		for (unsigned i = 0; i < S_CONN_MAX; i++) {
			struct s_conn *c = &m->conns[i];
			if (c->fd < 0 || c->cut)
				continue;
			live++;
			if (c != fresh && !c->busy && (!oldest || c->idle_since_ms < oldest->idle_since_ms))
				oldest = c;
		}
		if (live <= S_CONN_KEPT || !oldest)
			return;
		shutdown(oldest->fd, SHUT_RDWR);
		oldest->cut = 1;
		yj_debug("metrics: cut a connection idle for %" PRId64 " ms to make room for a new one",
			 yj_loop_now_ms() - oldest->idle_since_ms);
	}
}

/* MHD_OPTION_NOTIFY_CONNECTION: keep the slots, make room on each arrival.
 * MHD calls this from its one thread, before it closes the socket. */
static void s_notify_conn(void *cls, struct MHD_Connection *conn, void **socket_context,
			  enum MHD_ConnectionNotificationCode toe)
{
	struct yj_metrics *m = cls;
	struct s_conn *c = *socket_context;

	if (toe == MHD_CONNECTION_NOTIFY_CLOSED) {
		if (c)
			c->fd = -1;
		*socket_context = NULL;
		return;
	}
	const union MHD_ConnectionInfo *ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
	*socket_context = NULL;
	if (!ci || ci->connect_fd == MHD_INVALID_SOCKET)
		return;
	for (unsigned i = 0; i < S_CONN_MAX && !*socket_context; i++) {
		if (m->conns[i].fd < 0) {
			m->conns[i] = (struct s_conn){ ci->connect_fd, 0, 0, yj_loop_now_ms() };
			*socket_context = &m->conns[i];
		}
	}
	/* There is always a free slot (as many as MHD allows connections);
	 * were there none, the connection would go untracked: spared, never cut. */
	s_make_room(m, *socket_context);
}

/* MHD_OPTION_NOTIFY_COMPLETED: the request was answered (or failed); the
 * connection, if kept alive, waits for the next from now. */
static void s_notify_done(void *cls, struct MHD_Connection *conn, void **con_cls, enum MHD_RequestTerminationCode toe)
{
	struct s_conn *c = s_conn_of(conn);
	(void)cls;
	(void)con_cls;
	(void)toe;
	if (c) {
		c->busy = 0;
		c->idle_since_ms = yj_loop_now_ms();
	}
}

static enum MHD_Result s_handle(void *cls, struct MHD_Connection *conn, const char *url,
				const char *method, const char *version, const char *upload_data,
				size_t *upload_data_size, void **con_cls)
{
	struct yj_metrics *m = cls;
	int is_metrics = strcmp(url, "/metrics") == 0;
	int is_healthz = strcmp(url, "/healthz") == 0;
	struct s_conn *c = s_conn_of(conn);

	(void)version;
	(void)upload_data;
	(void)upload_data_size;
	(void)con_cls;
	/* The whole request is in: this connection is spared until answered. */
	if (c)
		c->busy = 1;
	if (!is_metrics && !is_healthz)
		return s_reply_text(conn, MHD_HTTP_NOT_FOUND, "not found\n");
	/* HEAD too: RFC 9110 wants it wherever GET is; MHD drops the body. */
	if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 && strcmp(method, MHD_HTTP_METHOD_HEAD) != 0)
		return s_reply(conn, MHD_HTTP_METHOD_NOT_ALLOWED, S_CONTENT_TEXT, "method not allowed\n",
			       strlen("method not allowed\n"), MHD_RESPMEM_PERSISTENT, "GET, HEAD");
	return is_metrics ? s_serve_metrics(m, conn) : s_serve_healthz(m, conn);
}

int yj_metrics_parse_endpoint(const char *endpoint, struct sockaddr_storage *addr, socklen_t *len)
{
	char host[INET6_ADDRSTRLEN + 1];
	const char *h = NULL;
	const char *port_s = NULL;
	const char *end = NULL;
	size_t hlen = 0;
	unsigned long port = 0;
	int v6 = 0;

	if (!endpoint || !addr || !len)
		return YJ_EINVAL;
	memset(addr, 0, sizeof(*addr));
	if (endpoint[0] == '[') {
		end = strchr(endpoint, ']');
		if (!end || end[1] != ':')
			return YJ_EINVAL;
		h = endpoint + 1;
		hlen = (size_t)(end - h);
		port_s = end + 2;
		v6 = 1;
	} else {
		/* The last ':' so that a bare IPv6 address fails as an IPv4 host. */
		end = strrchr(endpoint, ':');
		if (!end)
			return YJ_EINVAL;
		h = endpoint;
		hlen = (size_t)(end - h);
		port_s = end + 1;
	}
	if (hlen == 0 || hlen >= sizeof(host))
		return YJ_EINVAL;
	memcpy(host, h, hlen);
	host[hlen] = '\0';
	/* Decimal digits only: strtoul() would take signs, spaces and "0x". */
	if (!*port_s || strlen(port_s) > 5 || strspn(port_s, "0123456789") != strlen(port_s))
		return YJ_EINVAL;
	port = strtoul(port_s, NULL, 10);
	if (port < 1 || port > 65535)
		return YJ_EINVAL;
	if (v6) {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)addr;
		if (inet_pton(AF_INET6, host, &sin6->sin6_addr) != 1)
			return YJ_EINVAL;
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons((uint16_t)port);
		*len = sizeof(*sin6);
	} else {
		struct sockaddr_in *sin = (struct sockaddr_in *)addr;
		if (inet_pton(AF_INET, host, &sin->sin_addr) != 1)
			return YJ_EINVAL;
		sin->sin_family = AF_INET;
		sin->sin_port = htons((uint16_t)port);
		*len = sizeof(*sin);
	}
	return 0;
}

int yj_metrics_start(const char *endpoint, int64_t stall_ms, struct yj_metrics **out)
{
	struct sockaddr_storage addr;
	socklen_t alen = 0;
	struct yj_metrics *m = NULL;
	sigset_t all, old;
	unsigned int flags = MHD_USE_AUTO_INTERNAL_THREAD | MHD_USE_ERROR_LOG;
	uint16_t port = 0;
	int rc = 0;

	*out = NULL;
	if (yj_metrics_parse_endpoint(endpoint, &addr, &alen) != 0) {
		yj_err("metrics: endpoint \"%s\" is not HOST:PORT with an IPv4 or [IPv6] address and "
		       "a port 1-65535; fix metrics.endpoint", endpoint ? endpoint : "(none)");
		rc = YJ_EINVAL;
		goto out;
	}
	if (stall_ms <= 0) {
		yj_err("metrics: stall time %" PRId64 " ms must be positive", stall_ms);
		rc = YJ_EINVAL;
		goto out;
	}
	if (addr.ss_family == AF_INET6) {
		/* Without MHD_USE_DUAL_STACK this also makes the socket IPv6-only:
		 * "[::1]:9402" must not answer on 127.0.0.1 as well. */
		flags |= MHD_USE_IPv6;
		port = ntohs(((struct sockaddr_in6 *)&addr)->sin6_port);
	} else {
		port = ntohs(((struct sockaddr_in *)&addr)->sin_port);
	}

	m = calloc(1, sizeof(*m));
	if (!m) {
		rc = YJ_ENOMEM;
		goto out;
	}
	if (pthread_mutex_init(&m->lock, NULL) != 0) {
		free(m);
		m = NULL;
		rc = YJ_ENOMEM;
		goto out;
	}
	m->store_ok = 1;
	m->stall_ms = stall_ms;
	for (unsigned i = 0; i < S_CONN_MAX; i++)
		m->conns[i].fd = -1;
	atomic_init(&m->beat_ms, yj_loop_now_ms());
	m->capturing = 1;

	/* The thread inherits our signal mask. Block every asynchronous signal
	 * in it, so none is ever delivered there: the loop reads them from a
	 * signalfd, which only sees signals blocked in all threads. Faults stay
	 * deliverable, for the sanitizers and core dumps. */
	sigfillset(&all);
	sigdelset(&all, SIGSEGV);
	sigdelset(&all, SIGBUS);
	sigdelset(&all, SIGFPE);
	sigdelset(&all, SIGILL);
	sigdelset(&all, SIGABRT);
	sigdelset(&all, SIGTRAP);
	sigdelset(&all, SIGSYS);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	m->mhd = MHD_start_daemon(flags, port, NULL, NULL, s_handle, m,
				  MHD_OPTION_EXTERNAL_LOGGER, s_mhd_log, m,
				  MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr,
				  MHD_OPTION_CONNECTION_LIMIT, S_CONN_MAX,
				  MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)S_CONN_MEMORY,
				  MHD_OPTION_CONNECTION_TIMEOUT, S_CONNECTION_TIMEOUT,
				  MHD_OPTION_NOTIFY_CONNECTION, s_notify_conn, m,
				  MHD_OPTION_NOTIFY_COMPLETED, s_notify_done, m,
				  MHD_OPTION_END);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	pthread_mutex_lock(&m->lock);
	m->capturing = 0;
	pthread_mutex_unlock(&m->lock);
	if (!m->mhd) {
		yj_err("metrics: cannot serve HTTP on %s: %s; stop whatever listens there or set "
		       "metrics.endpoint to a free local address", endpoint,
		       m->start_log[0] ? m->start_log : "libmicrohttpd gave no reason");
		rc = YJ_EIO;
		goto out;
	}
	yj_info("metrics: serving /metrics and /healthz on %s", endpoint);
	*out = m;
	m = NULL;
out:
	if (m) {
		pthread_mutex_destroy(&m->lock);
		free(m);
	}
	return rc;
}

void yj_metrics_publish(struct yj_metrics *m, const char *text, size_t len)
{
	char *copy = malloc(len ? len : 1);
	char *old = NULL;

	if (!copy) {
		yj_warn("metrics: out of memory copying %zu bytes of metrics; "
			"/metrics keeps serving the previous text", len);
		return;
	}
	if (len)
		memcpy(copy, text, len);
	pthread_mutex_lock(&m->lock);
	old = m->text;
	m->text = copy;
	m->text_len = len;
	pthread_mutex_unlock(&m->lock);
	free(old);
}

void yj_metrics_beat(struct yj_metrics *m)
{
	atomic_store(&m->beat_ms, yj_loop_now_ms());
}

void yj_metrics_set_store_ok(struct yj_metrics *m, int ok, const char *why)
{
	char line[S_WHY_MAX + 1];
	size_t len = 0;

	snprintf(line, sizeof(line), "%s", why && *why ? why : "unknown reason");
	len = strlen(line);
	/* /healthz answers one line: no control characters from the reason. */
	for (size_t i = 0; i < len; i++) {
		if ((unsigned char)line[i] < 0x20 || line[i] == 0x7f)
			line[i] = ' ';
	}
	/* Cut to S_WHY_MAX bytes: drop a UTF-8 sequence the cut left partial. */
	if (why && strlen(why) > len) {
		size_t cont = 0;
		while (len > 0 && ((unsigned char)line[len - 1] & 0xc0) == 0x80) {
			len--;
			cont++;
		}
		if (len > 0 && (unsigned char)line[len - 1] >= 0xc0) {
			unsigned char lead = (unsigned char)line[len - 1];
			size_t want = lead >= 0xf0 ? 3 : lead >= 0xe0 ? 2 : 1;
			if (cont < want)
				len--;
			else
				len += cont;
		} else {
			len += cont;
		}
		line[len] = '\0';
	}
	pthread_mutex_lock(&m->lock);
	m->store_ok = ok ? 1 : 0;
	memcpy(m->store_why, line, len + 1);
	pthread_mutex_unlock(&m->lock);
}

void yj_metrics_stop(struct yj_metrics **mp)
{
	struct yj_metrics *m = NULL;

	if (!mp || !*mp)
		return;
	m = *mp;
	if (m->mhd)
		MHD_stop_daemon(m->mhd);
	pthread_mutex_destroy(&m->lock);
	free(m->text);
	free(m);
	*mp = NULL;
}
