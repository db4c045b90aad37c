/* curlm.c: see curlm.h.
 *
 * The multi socket API (after libcurl's docs/examples/ephiperfifo.c): curl
 * says which fds to watch and when to wake it; the loop calls back with
 * curl_multi_socket_action. Finished transfers are collected after every
 * action and reported once each, outside any libcurl callback, so a done
 * callback may start new transfers or clean up its easy handle.
 */
#include "curlm.h"

#include <stdlib.h>
#include <zmq.h>

#include "err.h"
#include "log.h"
#include "loop.h"

/* One socket curl asked us to watch; curl hands it back as socketp. */
struct s_sock {
	curl_socket_t fd;       /* the socket, watched in the loop */
	struct s_sock *prev;    /* in yj_curlm.socks */
	struct s_sock *next;    /* (doubly linked: O(1) unlink on REMOVE) */
};

/* One transfer under way. The easy handle stays the caller's. */
struct s_xfer {
	CURL *easy;             /* borrowed until done */
	yj_curl_done_fn done;   /* called once, after removal from the multi */
	void *arg;              /* done's argument */
	struct s_xfer *prev;    /* in yj_curlm.xfers, newest first */
	struct s_xfer *next;    /* (doubly linked: O(1) unlink when done) */
};

struct yj_curlm {
	struct yj_loop *loop;   /* borrowed: the one event loop */
	CURLM *multi;           /* owned */
	int64_t timer_id;       /* the loop timer curl asked for, 0 when none */
	int64_t timer_due_ms;   /* when it fires (loop clock) */
	struct s_sock *socks;   /* owned: sockets watched in the loop */
	struct s_xfer *xfers;   /* owned: transfers not yet reported */
	size_t n_xfers;         /* length of xfers */
};

/* curl_global_init is process-wide and not to be repeated; the daemon is
 * single-threaded, so a plain flag is enough. */
static int s_global_done;

static void s_unlink_xfer(struct yj_curlm *m, struct s_xfer *x)
{
	if (x->prev)
		x->prev->next = x->next;
	else
		m->xfers = x->next;
	if (x->next)
		x->next->prev = x->prev;
	x->prev = x->next = NULL;
	m->n_xfers--;
}

static void s_unlink_sock(struct yj_curlm *m, struct s_sock *s)
{
	if (s->prev)
		s->prev->next = s->next;
	else
		m->socks = s->next;
	if (s->next)
		s->next->prev = s->prev;
}

/* Report every finished transfer. done runs after the handle left the
 * multi and after our record of it is gone, so it may clean up the easy
 * handle or add new transfers (which only finish in a later action). */
static void s_collect(struct yj_curlm *m)
{
	CURLMsg *msg;
	int left;

	while ((msg = curl_multi_info_read(m->multi, &left))) {
		if (msg->msg != CURLMSG_DONE)
			continue;
		/* msg is invalid once the handle is removed: read it first. */
		CURL *easy = msg->easy_handle;
		CURLcode result = msg->data.result;
		struct s_xfer *x = m->xfers;
		while (x && x->easy != easy)
			x = x->next;
		curl_multi_remove_handle(m->multi, easy);
		if (!x) {
			/* Added behind our back: nobody to tell. */
			yj_warn("curlm: a transfer finished that was not started here");
			continue;
		}
		yj_curl_done_fn done = x->done;
		void *arg = x->arg;
		s_unlink_xfer(m, x);
		free(x);
		done(arg, easy, result);
	}
}

static void s_action(struct yj_curlm *m, curl_socket_t fd, int flags)
{
	int running = 0;
	CURLMcode mc = curl_multi_socket_action(m->multi, fd, flags, &running);
	/* A bad socket is one curl forgot meanwhile: harmless. Anything else
	 * is logged; the transfers it affects still finish through info_read. */
	if (mc != CURLM_OK && mc != CURLM_BAD_SOCKET)
		yj_err("curlm: socket action: %s", curl_multi_strerror(mc));
	s_collect(m);
}

static int s_on_io(struct yj_loop *loop, void *socket, int fd, short revents, void *arg)
{
	struct yj_curlm *m = arg;
	int flags = 0;
	(void)loop;
	(void)socket;
	if (revents & ZMQ_POLLIN)
		flags |= CURL_CSELECT_IN;
	if (revents & ZMQ_POLLOUT)
		flags |= CURL_CSELECT_OUT;
	if (revents & ZMQ_POLLERR)
		flags |= CURL_CSELECT_ERR;
	s_action(m, fd, flags);
	return 0;
}

static int s_on_timer(struct yj_loop *loop, void *arg)
{
	struct yj_curlm *m = arg;
	(void)loop;
	/* One-shot: it is spent; curl may ask for the next one during the action. */
	m->timer_id = 0;
	s_action(m, CURL_SOCKET_TIMEOUT, 0);
	return 0;
}

/* CURLMOPT_TIMERFUNCTION. Never calls into curl: socket_action from here
 * would be a recursive API call, so even "now" (0) goes through the loop. */
static int s_timer_cb(CURLM *multi, long timeout_ms, void *userp)
{
	struct yj_curlm *m = userp;
	int64_t due = yj_loop_now_ms() + (timeout_ms > 0 ? timeout_ms : 0);
	(void)multi;
	/* curl repeats the same deadline after most actions: keep the timer
	 * rather than churn the loop's timer table. */
	if (timeout_ms >= 0 && m->timer_id > 0 && m->timer_due_ms == due)
		return 0;
	if (m->timer_id > 0) {
		yj_loop_timer_cancel(m->loop, m->timer_id);
		m->timer_id = 0;
	}
	if (timeout_ms < 0)
		return 0;
	int64_t id = yj_loop_timer(m->loop, timeout_ms, 0, s_on_timer, m);
	if (id < 0) {
		yj_err("curlm: cannot set a timer: %s", yj_strerror((int)id));
		return -1;
	}
	m->timer_id = id;
	m->timer_due_ms = due;
	return 0;
}

/* CURLMOPT_SOCKETFUNCTION. */
static int s_socket_cb(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
	struct yj_curlm *m = userp;
	struct s_sock *s = socketp;
	short events = 0;
	int rc = 0;
	(void)easy;

	if (what == CURL_POLL_REMOVE) {
		/* The loop tolerates removal during its dispatch pass. */
		yj_loop_remove(m->loop, NULL, fd);
		if (s) {
			s_unlink_sock(m, s);
			free(s);
		}
		return 0;
	}
	if (what == CURL_POLL_IN || what == CURL_POLL_INOUT)
		events |= ZMQ_POLLIN;
	if (what == CURL_POLL_OUT || what == CURL_POLL_INOUT)
		events |= ZMQ_POLLOUT;
	if (s)
		return yj_loop_set_events(m->loop, NULL, fd, events) == 0 ? 0 : -1;

	s = calloc(1, sizeof(*s));
	if (!s) {
		rc = YJ_ENOMEM;
		goto out;
	}
	s->fd = fd;
	if ((rc = yj_loop_add(m->loop, NULL, fd, events, s_on_io, m)))
		goto out;
	if (curl_multi_assign(m->multi, fd, s) != CURLM_OK) {
		yj_loop_remove(m->loop, NULL, fd);
		rc = YJ_EIO;
		goto out;
	}
	s->next = m->socks;
	if (m->socks)
		m->socks->prev = s;
	m->socks = s;
	s = NULL;
out:
	free(s);
	if (rc) {
		/* -1 makes curl fail the transfers on this multi rather than
		 * leave them waiting on a socket nobody watches. */
		yj_err("curlm: cannot watch socket %d: %s", (int)fd, yj_strerror(rc));
		return -1;
	}
	return 0;
}

int yj_curlm_new(struct yj_loop *loop, struct yj_curlm **out)
{
	struct yj_curlm *m = NULL;
	int rc = 0;

	if (!loop || !out)
		return YJ_EINVAL;
	*out = NULL;
	if (!s_global_done) {
		if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
			rc = YJ_EIO;
			goto out;
		}
		s_global_done = 1;
		/* Names are resolved off the loop only by a libcurl with an
		 * asynchronous resolver (Debian's: threaded); any other would block
		 * the loop in getaddrinfo for every webhook and relay name. */
		const curl_version_info_data *v = curl_version_info(CURLVERSION_NOW);
		if (v && !(v->features & CURL_VERSION_ASYNCHDNS))
			yj_warn("curl: libcurl %s resolves host names synchronously: every delivery's DNS lookup "
				"runs on the loop; use a libcurl built with the threaded resolver or c-ares",
				v->version);
	}
	m = calloc(1, sizeof(*m));
	if (!m) {
		rc = YJ_ENOMEM;
		goto out;
	}
	m->loop = loop;
	m->multi = curl_multi_init();
	if (!m->multi) {
		rc = YJ_EIO;
		goto out;
	}
	if (curl_multi_setopt(m->multi, CURLMOPT_SOCKETFUNCTION, s_socket_cb) != CURLM_OK ||
	    curl_multi_setopt(m->multi, CURLMOPT_SOCKETDATA, m) != CURLM_OK ||
	    curl_multi_setopt(m->multi, CURLMOPT_TIMERFUNCTION, s_timer_cb) != CURLM_OK ||
	    curl_multi_setopt(m->multi, CURLMOPT_TIMERDATA, m) != CURLM_OK) {
		rc = YJ_EIO;
		goto out;
	}
	*out = m;
	m = NULL;
out:
	if (m) {
		if (m->multi)
			curl_multi_cleanup(m->multi);
		free(m);
	}
	return rc;
}

void yj_curlm_destroy(struct yj_curlm **mp)
{
	struct yj_curlm *m = mp ? *mp : NULL;
	if (!m)
		return;
	/* Silence curl first: the cleanup below may report sockets closing,
	 * and we are about to forget them all anyway. */
	curl_multi_setopt(m->multi, CURLMOPT_SOCKETFUNCTION, NULL);
	curl_multi_setopt(m->multi, CURLMOPT_TIMERFUNCTION, NULL);
	/* curl detaches the handles still in the multi itself. Our records are
	 * not used for that: an owner may have cleaned up its easy handle
	 * already (curl_easy_cleanup takes it out of the multi), and such a
	 * record points at freed memory. */
	curl_multi_cleanup(m->multi);
	if (m->timer_id > 0)
		yj_loop_timer_cancel(m->loop, m->timer_id);
	while (m->socks) {
		struct s_sock *s = m->socks;
		yj_loop_remove(m->loop, NULL, s->fd);
		m->socks = s->next;
		free(s);
	}
	while (m->xfers) {
		struct s_xfer *x = m->xfers;
		m->xfers = x->next;
		free(x);
	}
	free(m);
	*mp = NULL;
}

int yj_curlm_add(struct yj_curlm *m, CURL *easy, yj_curl_done_fn done, void *arg)
{
	struct s_xfer *x = NULL;
	int rc = 0;

	if (!m || !easy || !done)
		return YJ_EIO;
	x = calloc(1, sizeof(*x));
	if (!x) {
		rc = YJ_EIO;
		goto out;
	}
	CURLMcode mc = curl_multi_add_handle(m->multi, easy);
	if (mc != CURLM_OK) {
		yj_err("curlm: cannot start a transfer: %s", curl_multi_strerror(mc));
		rc = YJ_EIO;
		goto out;
	}
	/* curl refuses a handle that is still in a multi, so a record of this
	 * same pointer is stale: its owner cleaned it up without it finishing
	 * (and the allocator reused the address). Drop it. */
	for (struct s_xfer *o = m->xfers, *next; o; o = next) {
		next = o->next;
		if (o->easy == easy) {
			s_unlink_xfer(m, o);
			free(o);
		}
	}
	x->easy = easy;
	x->done = done;
	x->arg = arg;
	x->next = m->xfers;
	if (m->xfers)
		m->xfers->prev = x;
	m->xfers = x;
	m->n_xfers++;
	x = NULL;
out:
	free(x);
	return rc;
}

size_t yj_curlm_running(const struct yj_curlm *m)
{
	return m ? m->n_xfers : 0;
}
