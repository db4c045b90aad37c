/* loop.c: see loop.h. */
#include "loop.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zmq.h>

#include "err.h"

struct s_item {
	void *socket;        /* ZeroMQ socket, or NULL */
	int fd;              /* fd when socket is NULL */
	short events;        /* ZMQ_POLLIN | ZMQ_POLLOUT */
	yj_loop_io_fn fn;    /* handler */
	void *arg;           /* handler's argument */
	int removed;         /* removed while iterating: skip, compact later */
};

struct s_timer {
	int64_t id;          /* > 0 */
	int64_t due_ms;      /* next firing, monotonic */
	int64_t interval_ms; /* 0: one-shot */
	yj_loop_fn fn;
	void *arg;
	int cancelled;
};

struct s_hook {
	yj_loop_fn fn;
	void *arg;
};

struct yj_loop {
	struct s_item *items;     /* watched sockets and fds, owned */
	size_t n_items, cap_items;
	zmq_pollitem_t *poll;     /* scratch for zmq_poll, owned */
	size_t cap_poll;
	struct s_timer *timers;   /* owned; unsorted, few */
	size_t n_timers, cap_timers;
	int64_t next_timer_id;
	struct s_hook *hooks;     /* before-sleep hooks, owned */
	size_t n_hooks;
	int stop;                 /* set by yj_loop_stop */
	int woken;                /* poll without sleeping once */
	int dirty;                /* items marked removed */
	uint64_t iterations;
};

int64_t yj_loop_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

struct yj_loop *yj_loop_new(void)
{
	struct yj_loop *l = calloc(1, sizeof(*l));
	if (l)
		l->next_timer_id = 1;
	return l;
}

void yj_loop_destroy(struct yj_loop **loop)
{
	if (!loop || !*loop)
		return;
	free((*loop)->items);
	free((*loop)->poll);
	free((*loop)->timers);
	free((*loop)->hooks);
	free(*loop);
	*loop = NULL;
}

static int s_grow(void **p, size_t *cap, size_t need, size_t elem)
{
	if (need <= *cap)
		return 0;
	size_t ncap = *cap ? *cap * 2 : 8;
	while (ncap < need)
		ncap *= 2;
	void *np = realloc(*p, ncap * elem);
	if (!np)
		return YJ_ENOMEM;
	*p = np;
	*cap = ncap;
	return 0;
}

static struct s_item *s_find(struct yj_loop *l, void *socket, int fd)
{
	for (size_t i = 0; i < l->n_items; i++) {
		struct s_item *it = &l->items[i];
		if (it->removed)
			continue;
		if (socket ? it->socket == socket : (!it->socket && it->fd == fd))
			return it;
	}
	return NULL;
}

int yj_loop_add(struct yj_loop *l, void *socket, int fd, short events, yj_loop_io_fn fn, void *arg)
{
	int rc = s_grow((void **)&l->items, &l->cap_items, l->n_items + 1, sizeof(*l->items));
	if (rc)
		return rc;
	l->items[l->n_items++] = (struct s_item){ socket, socket ? -1 : fd, events, fn, arg, 0 };
	return 0;
}

int yj_loop_set_events(struct yj_loop *l, void *socket, int fd, short events)
{
	struct s_item *it = s_find(l, socket, fd);
	if (!it)
		return YJ_ENOENT;
	it->events = events;
	return 0;
}

int yj_loop_remove(struct yj_loop *l, void *socket, int fd)
{
	struct s_item *it = s_find(l, socket, fd);
	if (!it)
		return YJ_ENOENT;
	/* Compacted after the dispatch pass, which may still hold indexes. */
	it->removed = 1;
	l->dirty = 1;
	return 0;
}

int64_t yj_loop_timer(struct yj_loop *l, int64_t delay_ms, int64_t interval_ms, yj_loop_fn fn, void *arg)
{
	int rc = s_grow((void **)&l->timers, &l->cap_timers, l->n_timers + 1, sizeof(*l->timers));
	if (rc)
		return rc;
	int64_t id = l->next_timer_id++;
	l->timers[l->n_timers++] = (struct s_timer){ id, yj_loop_now_ms() + delay_ms, interval_ms, fn, arg, 0 };
	return id;
}

int yj_loop_timer_cancel(struct yj_loop *l, int64_t id)
{
	for (size_t i = 0; i < l->n_timers; i++) {
		if (l->timers[i].id == id && !l->timers[i].cancelled) {
			l->timers[i].cancelled = 1;
			return 0;
		}
	}
	return YJ_ENOENT;
}

int yj_loop_before_sleep(struct yj_loop *l, yj_loop_fn fn, void *arg)
{
	struct s_hook *nh = realloc(l->hooks, (l->n_hooks + 1) * sizeof(*nh));
	if (!nh)
		return YJ_ENOMEM;
	l->hooks = nh;
	l->hooks[l->n_hooks++] = (struct s_hook){ fn, arg };
	return 0;
}

void yj_loop_wake(struct yj_loop *l) { l->woken = 1; }
void yj_loop_stop(struct yj_loop *l) { l->stop = 1; }
uint64_t yj_loop_iterations(const struct yj_loop *l) { return l->iterations; }

static void s_compact(struct yj_loop *l)
{
	size_t j = 0;
	for (size_t i = 0; i < l->n_items; i++) {
		if (!l->items[i].removed)
			l->items[j++] = l->items[i];
	}
	l->n_items = j;
	j = 0;
	for (size_t i = 0; i < l->n_timers; i++) {
		if (!l->timers[i].cancelled)
			l->timers[j++] = l->timers[i];
	}
	l->n_timers = j;
	l->dirty = 0;
}

static int s_run_timers(struct yj_loop *l)
{
	int64_t now = yj_loop_now_ms();
	/* Timers added by a callback wait for the next pass. */
	size_t n = l->n_timers;
	for (size_t i = 0; i < n; i++) {
		struct s_timer *t = &l->timers[i];
		if (t->cancelled || t->due_ms > now)
			continue;
		if (t->interval_ms > 0) {
			t->due_ms = now + t->interval_ms;
		} else {
			t->cancelled = 1;
			l->dirty = 1;
		}
		yj_loop_fn fn = t->fn;
		void *arg = t->arg;
		int rc = fn(l, arg);
		if (rc < 0)
			return rc;
	}
	return 0;
}

static long s_timeout(struct yj_loop *l)
{
	if (l->woken || l->stop)
		return 0;
	int64_t now = yj_loop_now_ms();
	int64_t best = -1;
	for (size_t i = 0; i < l->n_timers; i++) {
		if (l->timers[i].cancelled)
			continue;
		int64_t d = l->timers[i].due_ms - now;
		if (d < 0)
			d = 0;
		if (best < 0 || d < best)
			best = d;
	}
	/* Wake at least once a second so the watchdog sees a live loop. */
	if (best < 0 || best > 1000)
		best = 1000;
	return (long)best;
}

int yj_loop_run(struct yj_loop *l)
{
	int rc = 0;

	l->stop = 0;
	while (!l->stop) {
		if (l->dirty)
			s_compact(l);
		rc = s_grow((void **)&l->poll, &l->cap_poll, l->n_items ? l->n_items : 1, sizeof(*l->poll));
		if (rc)
			return rc;
		size_t n = l->n_items;
		for (size_t i = 0; i < n; i++) {
			l->poll[i] = (zmq_pollitem_t){ .socket = l->items[i].socket, .fd = l->items[i].fd,
						       .events = l->items[i].events, .revents = 0 };
		}
		long timeout = s_timeout(l);
		l->woken = 0;
		int ready = zmq_poll(l->poll, (int)n, timeout);
		if (ready < 0 && zmq_errno() != EINTR)
			return YJ_EIO;
		l->iterations++;
		for (size_t i = 0; ready > 0 && i < n; i++) {
			if (!l->poll[i].revents || l->items[i].removed)
				continue;
			struct s_item it = l->items[i];
			rc = it.fn(l, it.socket, it.fd, l->poll[i].revents, it.arg);
			if (rc < 0)
				return rc;
		}
		rc = s_run_timers(l);
		if (rc < 0)
			return rc;
		for (size_t i = 0; i < l->n_hooks; i++) {
			rc = l->hooks[i].fn(l, l->hooks[i].arg);
			if (rc < 0)
				return rc;
		}
	}
	return 0;
}
