/* ingest.c: see ingest.h. */
#include "ingest.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include "arena.h"
#include "clock.h"
#include "core.h"
#include "db/audit.h"
#include "db/events.h"
#include "db/positions.h"
#include "db/quarantine.h"
#include "err.h"
#include "event_pack.h"
#include "log.h"
#include "practice.h"
#include "loop.h"
#include "route.h"
#include "strjoin.h"

const double yj_commit_bucket_bounds[YJ_COMMIT_BUCKETS] = {
	0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 1e300,
};

/* One request waiting for the group commit. Everything it points to lives
 * in the batch arena. */
struct s_pending {
	yj_reply_fn done;
	void *arg;
	enum yj_feed feed;
	const char *origin;
	const char *sender;          /* NULL when unauthenticated */
	const char **forces;         /* forces this sender may send for, n_forces of them; NULL: ingest.forces */
	size_t n_forces;
	const char *position_key;    /* the input's position to record with this request, or NULL */
	const void *position;        /* its value, position_len bytes */
	size_t position_len;
	const char *feed_name;       /* as received, for quarantine */
	const char *content_type;    /* as received, for quarantine */
	const uint8_t *raw;          /* payload as received, cut at quarantine_max_bytes */
	size_t raw_len;              /* bytes kept */
	size_t raw_total;            /* bytes received */
	unsigned frames;
	/* to normalise (by the normaliser thread), NULL once done: */
	const uint8_t *payload;      /* the whole payload, in the batch arena */
	size_t payload_len;
	enum yj_content_type ct;
	int64_t received_us;         /* the daemon's clock when it came */
	const char *retry;           /* answer RETRY with this reason, stored nothing (out of memory) */
	const char *source_id;       /* "" when unreadable */
	const char *force;           /* event's force (accepted events) */
	/* accepted by the normaliser: */
	const uint8_t *event;        /* packed normalised Event */
	size_t event_len;
	const Yjlink__V1__Event *ev; /* the same, unpacked by the thread for routing (batch arena) */
	const struct yj_route_plan *plan; /* routing's part that needs no store, or NULL (batch arena) */
	uint8_t hash[16];
	const char *source_key;
	const char *child_id;
	const char *custody_key;
	int64_t occurred_us;
	const char *data_quality;    /* yj_event_data_quality(): counted once stored */
	/* decided (again on every run of the write function): */
	struct yj_reject rej;        /* pre-store refusal, code NONE otherwise */
	struct yj_reject store_rej;  /* conflict/forbidden found in the transaction */
	int dropped;                 /* refused and not kept: the quarantine was at quarantine.max_bytes */
	enum yj_status status;
	uint64_t seq;
};

/* A batch of requests and the memory they point into. */
struct s_batch {
	struct yj_arena arena;
	struct s_pending *pend;          /* owned */
	size_t n_pend, cap_pend;
	const struct yj_refdata *ref;    /* the tables its normalisation uses, in force when handed over */
	const struct yj_config *cfg;     /* the config its routing plans use, the same */
};

/* Three batches make a pipeline (issue 14: parsing and the commit off the
 * loop): while the normaliser thread parses one, the store's committer
 * thread writes and syncs the one before, and the loop collects the next. A
 * batch goes fill -> work (handed to the normaliser, which parses it) ->
 * committing (handed to the committer) -> answered on the loop -> empty; the
 * next fill is handed over as soon as the parsed one goes to the committer,
 * so that the normaliser never waits for a commit. Only the normaliser
 * touches a batch between handover and done, only the committer between
 * its start and its collect, only the loop otherwise. */
#define S_BATCHES 3
/* What a batch's arena keeps between fills: a full batch of the default
 * 4,096 custody events takes some 8 MiB (raw copy, event, packed record).
 * Freed and taken again, it was fresh pages each time, faulted in by the
 * loop's copy and the normaliser's writes (docs/performance.md, change 27). */
#define S_BATCH_KEEP ((size_t)6 << 20)
/* An event packed longer than this (some 600 bytes is usual) is packed by
 * protobuf-c. */
#define S_PLAIN_EVENT_MAX 8192
struct yj_ingest {
	const struct yj_core *core;      /* borrowed: store, and the config and tables in force */
	struct s_batch b[S_BATCHES];
	struct s_batch *fill;            /* inputs add here (loop) */
	struct s_batch *work;            /* NULL, or handed to the normaliser, or normalised and awaiting commit */
	struct s_batch *committing;      /* NULL, or with the committer until collected */
	struct s_batch *pend_batch;      /* the batch s_write_batch writes */
	struct timespec commit_t0;       /* when committing was handed to the committer */
	pthread_t thread;
	int thread_started;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int work_ready;                  /* loop -> thread: work is to be normalised (under mu) */
	int work_done;                   /* thread -> loop: it is (under mu) */
	int quit;                        /* loop -> thread: end (under mu) */
	int efd;                         /* eventfd the thread writes when done: wakes the loop; -1 none */
	struct yj_arena scratch;         /* the thread's per-request normaliser memory */
	struct yj_arena loop_scratch;    /* the loop's, for what it refuses unparsed */
	int draining;
	int64_t batch_now_us;            /* stored_at of the batch being written */
	struct yj_route_counts routed;   /* this batch's routing, rewritten on every run */
	struct yj_route_counts unreported; /* routed by durable batches since the last flush that reported */
	struct yj_ingest_stats stats;
	int64_t quota_warned_ms;         /* yj_loop_now_ms() of the last "quarantine full" warning, 0: none yet */
	uint64_t quota_unwarned;         /* refused messages not kept since that warning */
};

static int s_thread_start(struct yj_ingest *ing);
static void s_thread_stop(struct yj_ingest *ing);
static int s_make_room(struct yj_ingest *ing);

/* At most one "quarantine full" warning a minute: a flood of refused
 * messages must not become a flood of log lines as well. */
#define S_QUOTA_WARN_MS 60000

int yj_ingest_new(const struct yj_core *core, struct yj_ingest **out)
{
	struct yj_ingest *ing = calloc(1, sizeof(*ing));
	if (!ing)
		return YJ_ENOMEM;
	if (sodium_init() < 0) {
		free(ing);
		return YJ_EIO;
	}
	ing->core = core;
	yj_arena_init(&ing->scratch, 32768);
	yj_arena_init(&ing->loop_scratch, 4096);
	for (int i = 0; i < S_BATCHES; i++) {
		yj_arena_init(&ing->b[i].arena, 1 << 20);
		yj_arena_keep(&ing->b[i].arena, S_BATCH_KEEP);
	}
	ing->fill = &ing->b[0];
	ing->efd = -1;
	int rc = s_thread_start(ing);
	if (rc) {
		yj_ingest_destroy(&ing);
		return rc;
	}
	*out = ing;
	return 0;
}

void yj_ingest_destroy(struct yj_ingest **ping)
{
	struct yj_ingest *ing = ping ? *ping : NULL;
	if (!ing)
		return;
	/* Not answered (yj_ingest_flush answers): only ended. */
	if (ing->committing)
		(void)yj_store_write_collect(ing->core->store, 1);
	s_thread_stop(ing);
	yj_arena_free(&ing->scratch);
	yj_arena_free(&ing->loop_scratch);
	for (int i = 0; i < S_BATCHES; i++) {
		yj_arena_free(&ing->b[i].arena);
		free(ing->b[i].pend);
	}
	free(ing);
	*ping = NULL;
}

size_t yj_ingest_pending(const struct yj_ingest *ing)
{
	return ing->fill->n_pend + (ing->work ? ing->work->n_pend : 0) +
	       (ing->committing ? ing->committing->n_pend : 0);
}
void yj_ingest_set_draining(struct yj_ingest *ing, int on) { ing->draining = on; }

const struct yj_ingest_stats *yj_ingest_stats(const struct yj_ingest *ing) { return &ing->stats; }

/* A frame as a label in the quarantine record (a protobuf string, shown as
 * JSON): printable ASCII, cut at 64 bytes, anything else as '?'. */
static const char *s_label(struct yj_arena *a, const void *s, size_t len)
{
	const unsigned char *b = s;
	if (len > 64)
		len = 64;
	char *out = yj_arena_alloc(a, len + 1);
	if (!out)
		return NULL;
	for (size_t i = 0; i < len; i++)
		out[i] = b[i] >= 0x20 && b[i] < 0x7f ? (char)b[i] : '?';
	out[len] = '\0';
	return out;
}

static const char *s_copy(struct yj_arena *a, const void *s, size_t len)
{
	return yj_arena_strndup(a, s ? s : "", s ? len : 0);
}

static const char *const s_retry_names[YJ_RETRY_REASONS] = { "overloaded", "shutting_down", "store" };

const char *yj_retry_reason_name(enum yj_retry_reason r)
{
	return (unsigned)r < YJ_RETRY_REASONS ? s_retry_names[r] : "unknown";
}

static void s_reply_retry(struct yj_ingest *ing, yj_reply_fn done, void *arg, const char *source_id,
			  enum yj_retry_reason why, const char *reason)
{
	ing->stats.retries++;
	ing->stats.retries_by[why]++;
	struct yj_reply r = {
		.status = YJ_STATUS_RETRY,
		.source_id = source_id ? source_id : "",
		.source_id_len = source_id ? strlen(source_id) : 0,
		.detail = reason,
		.detail_len = strlen(reason),
		.reason = reason,
	};
	done(arg, &r);
}

/* Fill the accepted-event fields of p from the normalised event. */
static int s_take_event(struct s_batch *b, struct s_pending *p, const Yjlink__V1__Event *ev)
{
	struct yj_arena *a = &b->arena;
	uint8_t plain[S_PLAIN_EVENT_MAX];
	size_t len = yj_event_pack(ev, plain, sizeof(plain));
	uint8_t *buf;
	char tmp[600];
	if (len) {
		if (!(buf = yj_arena_alloc(a, len)))
			return YJ_ENOMEM;
		memcpy(buf, plain, len);
	} else {
		/* Longer than the stack buffer, or unknown fields. */
		len = protobuf_c_message_get_packed_size(&ev->base);
		if (!(buf = yj_arena_alloc(a, len ? len : 1)))
			return YJ_ENOMEM;
		protobuf_c_message_pack(&ev->base, buf);
	}
	p->event = buf;
	p->event_len = len;
	p->ev = ev;
	crypto_generichash(p->hash, sizeof(p->hash), buf, len, NULL, 0);
	p->force = ev->force;
	size_t n = yj_strjoin_sep(tmp, sizeof(tmp), ev->force, '/', ev->source_id);
	p->source_key = s_copy(a, tmp, n < sizeof(tmp) ? n : sizeof(tmp) - 1);
	n = yj_event_child_id(ev, tmp, sizeof(tmp));
	p->child_id = s_copy(a, tmp, n);
	p->custody_key = NULL;
	if (ev->body_case == YJLINK__V1__EVENT__BODY_CUSTODY && ev->custody && ev->custody->record_id) {
		n = yj_strjoin_sep(tmp, sizeof(tmp), ev->force, '/', ev->custody->record_id);
		p->custody_key = s_copy(a, tmp, n < sizeof(tmp) ? n : sizeof(tmp) - 1);
	}
	p->occurred_us = ev->occurred_at ? ev->occurred_at->unix_us : 0;
	p->data_quality = yj_event_data_quality(ev, b->ref);
	/* Routing's part that needs no store, here off the loop. Without it
	 * (out of memory) the commit works it out itself. */
	struct yj_route_plan *plan = yj_arena_alloc(a, sizeof(*plan));
	p->plan = plan && b->cfg && !yj_route_plan(b->cfg, b->ref, ev, a, plan) ? plan : NULL;
	if (!p->force || !p->source_key || !p->child_id)
		return YJ_ENOMEM;
	return 0;
}

/* What an input says of the sender and of its own position, copied into the batch. */
static int s_take_extras(struct yj_arena *a, const struct yj_request *req, struct s_pending *p)
{
	if (req->n_forces) {
		p->forces = yj_arena_alloc(a, req->n_forces * sizeof(*p->forces));
		if (!p->forces)
			return YJ_ENOMEM;
		for (size_t i = 0; i < req->n_forces; i++) {
			if (!(p->forces[i] = s_copy(a, req->forces[i], strlen(req->forces[i]))))
				return YJ_ENOMEM;
		}
		p->n_forces = req->n_forces;
	}
	if (req->position_key && req->position_len && req->position_len <= YJ_POSITION_MAX) {
		uint8_t *v = yj_arena_alloc(a, req->position_len);
		if (!v || !(p->position_key = s_copy(a, req->position_key, strlen(req->position_key))))
			return YJ_ENOMEM;
		memcpy(v, req->position, req->position_len);
		p->position = v;
		p->position_len = req->position_len;
	}
	return 0;
}

/* Normalise p (the thread's work, or the loop's for a payload over the size
 * limit, refused without parsing): its event or its refusal, in b's arena. */
static void s_normalise_one(struct yj_arena *scratch, struct s_batch *b, struct s_pending *p, const uint8_t *payload,
			    size_t payload_len, size_t max_bytes)
{
	/* The event is built straight into the batch (routing reads it inside
	 * the commit); only the JSON tree goes into the per-request scratch. */
	struct yj_norm_opts o = { .ref = b->ref, .now_us = p->received_us, .max_bytes = max_bytes, .parse_arena = scratch };
	struct yj_norm_result res;
	yj_arena_reset(scratch);
	int rc = yj_normalise(&o, p->feed, p->ct, payload, payload_len, &b->arena, &res);
	p->payload = NULL;
	if (rc == YJ_ENOMEM) {
		p->retry = "overloaded";
		return;
	}
	if (res.source_id)
		p->source_id = res.source_id;
	if (!p->source_id) {
		p->source_id = "";
		p->retry = "overloaded";
		return;
	}
	if (rc == 0) {
		if (s_take_event(b, p, res.event))
			p->retry = "overloaded";
	} else {
		p->rej = res.reject;
	}
}

/* The normaliser thread: the parsing of each batch handed over, so that the
 * loop's core commits while the other one parses. */
static void *s_thread_main(void *arg)
{
	struct yj_ingest *ing = arg;
	pthread_setname_np(pthread_self(), "yj-normalise");
	pthread_mutex_lock(&ing->mu);
	for (;;) {
		while (!ing->work_ready && !ing->quit)
			pthread_cond_wait(&ing->cv, &ing->mu);
		if (ing->quit)
			break;
		ing->work_ready = 0;
		struct s_batch *b = ing->work;
		size_t max_bytes = (size_t)ing->core->cfg->ingest_max_message_bytes;
		pthread_mutex_unlock(&ing->mu);
		for (size_t i = 0; i < b->n_pend; i++) {
			struct s_pending *p = &b->pend[i];
			if (p->payload)
				s_normalise_one(&ing->scratch, b, p, p->payload, p->payload_len, max_bytes);
		}
		pthread_mutex_lock(&ing->mu);
		ing->work_done = 1;
		pthread_cond_broadcast(&ing->cv);
		if (ing->efd >= 0) {
			uint64_t one = 1;
			ssize_t w = write(ing->efd, &one, sizeof(one));
			(void)w;
		}
	}
	pthread_mutex_unlock(&ing->mu);
	return NULL;
}

/* The thread's wake-up of the loop: only clears the eventfd; the commit
 * is yj_ingest_pump()'s, before the loop sleeps. */
static int s_on_done(struct yj_loop *loop, void *sock, int fd, short revents, void *arg)
{
	uint64_t v;
	(void)loop;
	(void)sock;
	(void)revents;
	(void)arg;
	ssize_t r = read(fd, &v, sizeof(v));
	(void)r;
	return 0;
}

static int s_thread_start(struct yj_ingest *ing)
{
	sigset_t all, old;
	int rc;
	if (pthread_mutex_init(&ing->mu, NULL) || pthread_cond_init(&ing->cv, NULL))
		return YJ_ENOMEM;
	if (ing->core->loop) {
		ing->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
		if (ing->efd < 0 || yj_loop_add(ing->core->loop, NULL, ing->efd, ZMQ_POLLIN, s_on_done, ing)) {
			yj_err("ingest: cannot make the normaliser's eventfd: %s", strerror(errno));
			return YJ_EIO;
		}
	}
	/* Signals are the loop's (signalfd): the thread takes none. */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	rc = pthread_create(&ing->thread, NULL, s_thread_main, ing);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc) {
		yj_err("ingest: cannot start the normaliser thread: %s", strerror(rc));
		return YJ_EIO;
	}
	ing->thread_started = 1;
	return 0;
}

static void s_thread_stop(struct yj_ingest *ing)
{
	if (ing->thread_started) {
		pthread_mutex_lock(&ing->mu);
		ing->quit = 1;
		pthread_cond_broadcast(&ing->cv);
		pthread_mutex_unlock(&ing->mu);
		pthread_join(ing->thread, NULL);
		ing->thread_started = 0;
		pthread_cond_destroy(&ing->cv);
		pthread_mutex_destroy(&ing->mu);
	}
	if (ing->efd >= 0) {
		if (ing->core->loop)
			yj_loop_remove(ing->core->loop, NULL, ing->efd);
		close(ing->efd);
		ing->efd = -1;
	}
}

/* Hand the fill batch to the thread (none may be there); the next fill is
 * the empty one: neither the committer's nor next (the parsed batch about
 * to go to the committer, or NULL). */
static void s_handover(struct yj_ingest *ing, const struct s_batch *next)
{
	struct s_batch *b = ing->fill;
	b->ref = ing->core->ref;
	b->cfg = ing->core->cfg;
	for (int i = 0; i < S_BATCHES; i++) {
		if (&ing->b[i] != b && &ing->b[i] != next && &ing->b[i] != ing->committing) {
			ing->fill = &ing->b[i];
			break;
		}
	}
	pthread_mutex_lock(&ing->mu);
	ing->work = b;
	ing->work_done = 0;
	ing->work_ready = 1;
	pthread_cond_signal(&ing->cv);
	pthread_mutex_unlock(&ing->mu);
}

static int s_work_done(struct yj_ingest *ing, int wait)
{
	pthread_mutex_lock(&ing->mu);
	while (wait && !ing->work_done)
		pthread_cond_wait(&ing->cv, &ing->mu);
	int done = ing->work_done;
	pthread_mutex_unlock(&ing->mu);
	return done;
}

int yj_ingest_submit(struct yj_ingest *ing, const struct yj_request *req, yj_reply_fn done, void *arg)
{
	struct s_batch *b = ing->fill;

	if (ing->draining) {
		s_reply_retry(ing, done, arg, "", YJ_RETRY_SHUTTING_DOWN, "shutting down");
		return 0;
	}
	/* Nothing waits to be answered before it: no need to wait either. */
	if (req->overloaded && !b->n_pend && !ing->work && !ing->committing) {
		s_reply_retry(ing, done, arg, "", YJ_RETRY_OVERLOADED, "overloaded");
		return 0;
	}
	if (b->n_pend == b->cap_pend) {
		size_t ncap = b->cap_pend ? b->cap_pend * 2 : 1024;
		struct s_pending *np = realloc(b->pend, ncap * sizeof(*np));
		if (!np) {
			s_reply_retry(ing, done, arg, "", YJ_RETRY_OVERLOADED, "overloaded");
			return YJ_ENOMEM;
		}
		b->pend = np;
		b->cap_pend = ncap;
	}
	struct s_pending *p = &b->pend[b->n_pend];
	memset(p, 0, sizeof(*p));
	p->done = done;
	p->arg = arg;
	p->origin = req->origin;
	p->frames = req->frames;
	p->source_id = "";
	p->received_us = yj_clock_now_us();
	if (req->overloaded) {
		/* The sender is over its share: a slot in the batch, so that its
		 * RETRY goes out in its turn, and nothing else. */
		p->retry = "overloaded";
		b->n_pend++;
		return b->n_pend >= (size_t)ing->core->cfg->ingest_batch_max ? s_make_room(ing) : 0;
	}

	struct yj_arena *a = &b->arena;
	size_t max_bytes = (size_t)ing->core->cfg->ingest_max_message_bytes;
	size_t keep = req->payload_len;
	if (keep > (size_t)ing->core->cfg->ingest_quarantine_max_bytes)
		keep = (size_t)ing->core->cfg->ingest_quarantine_max_bytes;
	/* What the thread parses is the quarantine's copy too, whole when it is
	 * within the size limit (over it, nothing is parsed). */
	size_t copy = req->payload_len <= max_bytes && req->payload_len > keep ? req->payload_len : keep;
	uint8_t *raw = yj_arena_alloc(a, copy ? copy : 1);
	p->sender = req->sender ? s_copy(a, req->sender, strlen(req->sender)) : NULL;
	/* The protocol checks of interfaces.md §1 come below, in its order; the
	 * names are read first so that a known one is kept without a copy. */
	enum yj_feed feed = yj_feed_from_name(req->feed, req->feed_len);
	enum yj_content_type ct = yj_content_type_from_name(req->content_type, req->content_type_len);
	p->feed_name = feed != YJ_FEED_NONE ? yj_feed_name(feed)
					    : s_label(a, req->feed ? req->feed : "", req->feed ? req->feed_len : 0);
	p->content_type = ct != YJ_CT_NONE ? yj_content_type_name(ct)
					   : s_label(a, req->content_type ? req->content_type : "",
						     req->content_type ? req->content_type_len : 0);
	if (!raw || !p->feed_name || !p->content_type || (req->sender && !p->sender) || s_take_extras(a, req, p)) {
		s_reply_retry(ing, done, arg, "", YJ_RETRY_OVERLOADED, "overloaded");
		return YJ_ENOMEM;
	}
	if (copy)
		memcpy(raw, req->payload, copy);
	p->raw = raw;
	p->raw_len = keep;
	p->raw_total = req->payload_len;

	if (req->protocol_error) {
		yj_reject_set(&p->rej, YJ_REJ_PROTOCOL, "", "%s", req->protocol_error);
	} else if (feed == YJ_FEED_NONE) {
		yj_reject_set(&p->rej, YJ_REJ_PROTOCOL, "",
			      "unknown feed: expected custody, arrest, voluntary_interview or outcome");
	} else if (ct == YJ_CT_NONE) {
		yj_reject_set(&p->rej, YJ_REJ_PROTOCOL, "",
			      "unknown content type: expected application/json or application/x-protobuf");
	} else {
		p->feed = feed;
		p->ct = ct;
		if (req->payload_len <= max_bytes) {
			p->payload = raw;
			p->payload_len = req->payload_len;
		} else {
			b->ref = ing->core->ref;
			b->cfg = ing->core->cfg;
			s_normalise_one(&ing->loop_scratch, b, p, req->payload, req->payload_len, max_bytes);
		}
	}
	b->n_pend++;
	if (b->n_pend >= (size_t)ing->core->cfg->ingest_batch_max)
		return s_make_room(ing);
	return 0;
}

static int s_forbidden(const struct yj_ingest *ing, const struct s_pending *p)
{
	/* An input that knows its sender's forces (a publisher's, a spool's)
	 * says so; every other sender is held to ingest.forces. */
	if (p->forces) {
		for (size_t i = 0; i < p->n_forces; i++) {
			if (strcmp(p->forces[i], p->force) == 0)
				return 0;
		}
		return 1;
	}
	const struct yj_strlist *l = &ing->core->cfg->ingest_forces;
	for (size_t i = 0; i < l->n; i++) {
		if (strcmp(l->v[i], p->force) == 0)
			return 0;
	}
	return 1;
}

static size_t s_varint(uint8_t *out, uint64_t v)
{
	size_t n = 0;
	while (v >= 0x80) {
		out[n++] = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	out[n++] = (uint8_t)v;
	return n;
}

static size_t s_field_bytes(uint8_t *out, unsigned field, const void *data, size_t len)
{
	size_t n = s_varint(out, (uint64_t)field << 3 | 2);
	n += s_varint(out + n, len);
	memcpy(out + n, data, len);
	return n + len;
}

/* yjlink.v1.Record written by hand around the already packed event, so the
 * event is packed once per request, not once per commit attempt. */
static int s_put_record(struct yj_txn *txn, struct yj_ingest *ing, struct s_pending *p,
			struct yj_event_firsts *firsts)
{
	const char *feed = yj_feed_name(p->feed);
	const char *sender = p->sender ? p->sender : p->origin;
	size_t cap = 64 + strlen(feed) + strlen(sender) + p->event_len;
	uint8_t stackbuf[4096];
	uint8_t *buf = cap <= sizeof(stackbuf) ? stackbuf : malloc(cap);
	if (!buf)
		return YJ_ENOMEM;
	size_t n = 0;
	n += s_varint(buf + n, 1 << 3 | 0);
	n += s_varint(buf + n, p->seq);
	n += s_varint(buf + n, 2 << 3 | 0);
	n += s_varint(buf + n, (uint64_t)ing->batch_now_us);
	n += s_field_bytes(buf + n, 3, feed, strlen(feed));
	n += s_field_bytes(buf + n, 4, sender, strlen(sender));
	n += s_field_bytes(buf + n, 5, p->event, p->event_len);
	struct yj_event_keys keys = {
		.source_key = p->source_key,
		.hash = p->hash,
		.child_id = p->child_id,
		.occurred_us = p->occurred_us,
		.custody_key = p->custody_key,
	};
	int rc = yj_events_put_first(txn, p->seq, &keys, buf, n, firsts);
	if (buf != stackbuf)
		free(buf);
	return rc;
}

static int s_quarantine(struct yj_txn *txn, struct yj_ingest *ing, struct s_pending *p, const struct yj_reject *rej)
{
	Yjlink__V1__Quarantined q = YJLINK__V1__QUARANTINED__INIT;
	q.has_received_at_us = 1;
	q.received_at_us = ing->batch_now_us;
	q.origin = (char *)p->origin;
	q.feed = (char *)p->feed_name;
	q.content_type = (char *)p->content_type;
	q.error = (char *)yj_reject_code_name(rej->code);
	q.field = (char *)rej->field;
	q.reason = (char *)rej->reason;
	q.source_id = (char *)p->source_id;
	q.has_payload = 1;
	q.payload.data = (uint8_t *)p->raw;
	q.payload.len = p->raw_len;
	q.has_payload_bytes = 1;
	q.payload_bytes = p->raw_total;
	q.has_frames = 1;
	q.frames = p->frames;
	uint64_t id = 0;
	/* Over the quota the message is answered REJECT all the same, only not
	 * kept: a flood of refused input must not fill the store that
	 * legitimate events need (docs/limits.md). */
	int rc = yj_quarantine_put_within(txn, &q, (uint64_t)ing->core->cfg->quarantine_max_bytes, &id);
	p->dropped = rc == 0 && id == 0;
	return rc;
}

/* Say, at most once a minute, that refused messages are no longer kept. */
static void s_quota_warn(struct yj_ingest *ing, size_t dropped)
{
	int64_t now = yj_loop_now_ms();
	ing->quota_unwarned += dropped;
	if (ing->quota_warned_ms && now - ing->quota_warned_ms < S_QUOTA_WARN_MS)
		return;
	yj_warn("ingest: quarantine full (quarantine.max_bytes = %lld): %llu refused message(s) answered REJECT "
		"but not kept since the last warning; see `yjlinkctl status`, drop what has been dealt with "
		"(`yjlinkctl quarantine drop`) or raise quarantine.max_bytes", (long long)ing->core->cfg->quarantine_max_bytes,
		(unsigned long long)ing->quota_unwarned);
	ing->quota_warned_ms = now ? now : 1;
	ing->quota_unwarned = 0;
}

/* Store one accepted event and, in the same transaction, every
 * notification routed from it (transactional outbox). *exists is set when
 * its source key is stored already: then nothing was written. */
static int s_store_and_route(struct yj_txn *txn, struct yj_ingest *ing, struct s_pending *p, int *exists)
{
	/* First contact: no event of this child stored before this one. */
	struct yj_event_firsts firsts = { 0 };
	int rc = s_put_record(txn, ing, p, &firsts);
	if (rc) {
		*exists = rc == YJ_EEXIST;
		return rc;
	}
	if (ing->core->cfg->n_rules == 0)
		return 0;
	unsigned known = (firsts.first_contact ? YJ_ROUTE_FIRST_CONTACT : 0u) |
			 (firsts.record_alone ? YJ_ROUTE_RECORD_ALONE : 0u);
	return yj_route_event(txn, ing->core->cfg, ing->core->ref, p->seq, p->ev, p->plan, known, ing->batch_now_us,
			      &ing->routed);
}

/* The collection record of one group commit (DPA 2018 s.62: collection is
 * logged like disclosure): the seq range stored, how many of each feed, and
 * from which senders (the CURVE name, or the input for an unauthenticated
 * one). Never any content. */
#define S_SENDERS_MAX 8
static int s_audit_collection(struct yj_txn *txn, struct yj_ingest *ing)
{
	uint64_t n = 0, first = 0, last = 0, per_feed[YJ_FEED_COUNT] = { 0 };
	const char *senders[S_SENDERS_MAX];
	uint64_t per_sender[S_SENDERS_MAX] = { 0 }, other = 0;
	size_t n_senders = 0;

	const struct s_batch *b = ing->pend_batch;
	for (size_t i = 0; i < b->n_pend; i++) {
		const struct s_pending *p = &b->pend[i];
		if (p->status != YJ_STATUS_OK || !p->seq)
			continue;
		if (!n++)
			first = p->seq;
		last = p->seq;
		if ((int)p->feed >= 0 && p->feed < YJ_FEED_COUNT)
			per_feed[p->feed]++;
		const char *who = p->sender ? p->sender : p->origin;
		size_t k = 0;
		while (k < n_senders && strcmp(senders[k], who))
			k++;
		if (k == n_senders && n_senders < S_SENDERS_MAX)
			senders[n_senders++] = who;
		if (k < n_senders)
			per_sender[k]++;
		else
			other++;
	}
	if (!n)
		return 0;

	char reason[600], *feeds[YJ_FEED_COUNT];
	size_t n_feeds = 0;
	int used = snprintf(reason, sizeof(reason), "stored %llu events, seqs %llu-%llu:", (unsigned long long)n,
			    (unsigned long long)first, (unsigned long long)last);
	for (int f = 0; f < YJ_FEED_COUNT; f++) {
		if (!per_feed[f])
			continue;
		feeds[n_feeds++] = (char *)yj_feed_name((enum yj_feed)f);
		if (used > 0 && (size_t)used < sizeof(reason))
			used += snprintf(reason + used, sizeof(reason) - (size_t)used, " %s %llu", yj_feed_name((enum yj_feed)f),
					 (unsigned long long)per_feed[f]);
	}
	for (size_t k = 0; k < n_senders; k++) {
		if (used > 0 && (size_t)used < sizeof(reason))
			used += snprintf(reason + used, sizeof(reason) - (size_t)used, "%s from %s %llu", k ? "," : ";",
					 senders[k], (unsigned long long)per_sender[k]);
	}
	if (other && used > 0 && (size_t)used < sizeof(reason))
		snprintf(reason + used, sizeof(reason) - (size_t)used, ", from others %llu", (unsigned long long)other);

	uint64_t range[2] = { first, last };
	Yjlink__V1__AuditRecord a = YJLINK__V1__AUDIT_RECORD__INIT;
	a.has_at_us = 1;
	a.at_us = ing->batch_now_us;
	a.action = "collection";
	a.actor = (char *)(n_senders == 1 && !other ? senders[0] : "yjlinkd");
	a.n_seqs = 2;
	a.seqs = range;
	a.n_feeds = n_feeds;
	a.feeds = feeds;
	a.reason = reason;
	return yj_audit_append(txn, &a);
}

/* The batch's write transaction. May run more than once (map growth): it
 * decides everything afresh from the pending requests each time. */
static int s_write_batch(struct yj_txn *txn, void *arg)
{
	struct yj_ingest *ing = arg;
	int rc = 0;

	struct s_batch *b = ing->pend_batch;
	memset(&ing->routed, 0, sizeof(ing->routed));
	for (size_t i = 0; i < b->n_pend && !rc; i++) {
		struct s_pending *p = &b->pend[i];
		p->store_rej.code = YJ_REJ_NONE;
		p->dropped = 0;
		p->seq = 0;
		if (p->retry) {
			/* Not taken (no memory to parse it): nor is its position. */
			p->status = YJ_STATUS_RETRY;
			continue;
		}
		/* The input's position goes with what it stands for, refused or not:
		 * a restart resumes after this request, never before or beyond it. */
		if (p->position_key && (rc = yj_positions_put(txn, p->position_key, p->position, p->position_len)))
			break;
		if (p->rej.code != YJ_REJ_NONE) {
			p->status = YJ_STATUS_REJECT;
			rc = s_quarantine(txn, ing, p, &p->rej);
			continue;
		}
		/* The common case first: a new event from a sender allowed its
		 * force is stored straight away, its source key written only if
		 * absent (one B-tree descent where a lookup and then a write were
		 * two). A key already there writes nothing; then the lookup below
		 * tells a repeat from a conflict. */
		if (!s_forbidden(ing, p)) {
			int exists = 0;
			rc = yj_events_next_seq(txn, &p->seq);
			if (!rc)
				rc = s_store_and_route(txn, ing, p, &exists);
			if (!rc) {
				p->status = YJ_STATUS_OK;
				continue;
			}
			if (!exists)
				break;
			rc = 0;
			p->seq = 0;
		}
		struct yj_source_ref ref;
		int found = yj_events_find_source(txn, p->source_key, &ref);
		if (found < 0 && found != YJ_ENOENT) {
			rc = found;
			break;
		}
		if (found == 0 && memcmp(ref.hash, p->hash, sizeof(ref.hash)) != 0) {
			yj_reject_set(&p->store_rej, YJ_REJ_CONFLICT, "source_id",
				      "source_id already stored as seq %llu with different content",
				      (unsigned long long)ref.seq);
		} else if (s_forbidden(ing, p)) {
			yj_reject_set(&p->store_rej, YJ_REJ_FORBIDDEN, "force",
				      "this sender may not send for force %s", p->force);
		}
		if (p->store_rej.code != YJ_REJ_NONE) {
			p->status = YJ_STATUS_REJECT;
			rc = s_quarantine(txn, ing, p, &p->store_rej);
		} else if (found == 0) {
			p->status = YJ_STATUS_DUP;
			p->seq = ref.seq;
		} else {
			/* Not forbidden, and not stored: the write above said otherwise. */
			yj_err("ingest: source key of an event neither stored nor absent");
			rc = YJ_ESTORE;
		}
	}
	if (!rc)
		rc = s_audit_collection(txn, ing);
	return rc;
}

static void s_observe_commit(struct yj_ingest *ing, double secs)
{
	size_t b = 0;
	while (b < YJ_COMMIT_BUCKETS - 1 && secs > yj_commit_bucket_bounds[b])
		b++;
	ing->stats.commit_buckets[b]++;
	ing->stats.commit_seconds_sum += secs;
	ing->stats.batches++;
}

static void s_send_reply(struct yj_ingest *ing, struct s_pending *p)
{
	char detail[64];
	char *json = NULL;  /* REJECT detail, owned */
	struct yj_reply r = { .status = p->status, .source_id = p->source_id, .source_id_len = strlen(p->source_id) };
	const struct yj_reject *rej = p->rej.code ? &p->rej : &p->store_rej;

	switch (p->status) {
	case YJ_STATUS_OK:
	case YJ_STATUS_DUP:
		r.seq = p->seq;
		r.detail_len = yj_str_u64(detail, sizeof(detail), p->seq);
		r.detail = detail;
		if (p->status == YJ_STATUS_OK) {
			ing->stats.ingested[p->feed]++;
			if (p->data_quality)
				ing->stats.data_quality++;
			if (p->seq > ing->stats.last_seq)
				ing->stats.last_seq = p->seq;
			ing->stats.last_ok_us = ing->batch_now_us;
			ing->stats.last_ok_us_by_feed[p->feed] = ing->batch_now_us;
		} else {
			ing->stats.dups++;
		}
		break;
	case YJ_STATUS_REJECT: {
		cJSON *o = cJSON_CreateObject();
		if (o && cJSON_AddStringToObject(o, "error", yj_reject_code_name(rej->code)) &&
		    cJSON_AddStringToObject(o, "field", rej->field) && cJSON_AddStringToObject(o, "reason", rej->reason))
			json = cJSON_PrintUnformatted(o);
		cJSON_Delete(o);
		/* Whole, however long the escaped reason: a cut detail is not JSON. */
		r.detail = json ? json : "{\"error\":\"value\",\"field\":\"\",\"reason\":\"rejected\"}";
		r.detail_len = strlen(r.detail);
		r.error = yj_reject_code_name(rej->code);
		r.field = rej->field;
		r.reason = rej->reason;
		ing->stats.rejected[rej->code]++;
		/* The field path is left out: an unknown key is the sender's text. */
		yj_info("ingest: REJECT %s origin=%s", r.error, p->origin);
		break;
	}
	case YJ_STATUS_RETRY:
		/* Only a request not taken (over its share, or no memory to parse
		 * it) is decided RETRY in the batch. */
		r.detail = r.reason = s_retry_names[YJ_RETRY_OVERLOADED];
		r.detail_len = strlen(r.detail);
		ing->stats.retries++;
		ing->stats.retries_by[YJ_RETRY_OVERLOADED]++;
		break;
	}
	p->done(p->arg, &r);
	cJSON_free(json);
}

static void s_report(struct yj_ingest *ing, struct yj_route_counts *routed)
{
	if (!routed)
		return;
	*routed = ing->unreported;
	memset(&ing->unreported, 0, sizeof(ing->unreported));
}

/* The committer's wake-up of the loop, on the committer's thread: the same
 * eventfd as the normaliser's (the work is yj_ingest_pump()'s). */
static void s_commit_wake(void *arg)
{
	struct yj_ingest *ing = arg;
	if (ing->efd >= 0) {
		uint64_t one = 1;
		ssize_t w = write(ing->efd, &one, sizeof(one));
		(void)w;
	}
}

/* Batch b written (rc 0) or not: its replies, and it is empty after. */
static void s_commit_end(struct yj_ingest *ing, struct s_batch *b, int taken, int rc)
{
	if (taken) {
		struct timespec t1;
		clock_gettime(CLOCK_MONOTONIC, &t1);
		s_observe_commit(ing, (double)(t1.tv_sec - ing->commit_t0.tv_sec) +
					      (double)(t1.tv_nsec - ing->commit_t0.tv_nsec) / 1e9);
	}
	if (rc) {
		const char *why = rc == YJ_ENOSPC ? "store full: disk or map at its cap" : "store error";
		yj_warn("ingest: batch of %zu not stored (%s): answering RETRY", b->n_pend, yj_strerror(rc));
		for (size_t i = 0; i < b->n_pend; i++) {
			struct s_pending *p = &b->pend[i];
			if (p->retry)
				s_reply_retry(ing, p->done, p->arg, "", YJ_RETRY_OVERLOADED, s_retry_names[YJ_RETRY_OVERLOADED]);
			else
				s_reply_retry(ing, p->done, p->arg, p->source_id, YJ_RETRY_STORE, why);
		}
	} else {
		size_t dropped = 0;
		for (size_t i = 0; i < b->n_pend; i++) {
			dropped += (size_t)b->pend[i].dropped;
			s_send_reply(ing, &b->pend[i]);
		}
		if (dropped)
			s_quota_warn(ing, dropped);
		ing->stats.routed_outbox += ing->routed.outbox;
		ing->stats.routed_unroutable += ing->routed.unroutable;
		ing->stats.routed_digest += ing->routed.digest;
		ing->stats.held += ing->routed.held;
		yj_practice_add_routed(ing->core->practice, ing->core->cfg, &ing->routed);
		ing->unreported.outbox += ing->routed.outbox;
		ing->unreported.unroutable += ing->routed.unroutable;
		ing->unreported.digest += ing->routed.digest;
		ing->unreported.held += ing->routed.held;
	}
	b->n_pend = 0;
	yj_arena_reset(&b->arena);
}

/* Start the commit of batch b (normalised): on the committer when the loop
 * runs (its eventfd brings the loop back to collect it), else here and now.
 * 1 when it is under way (ing->committing), 0 when it is done (answered,
 * empty), or the commit's error (answered RETRY). */
static int s_commit_start(struct yj_ingest *ing, struct s_batch *b)
{
	size_t taken = 0;
	for (size_t i = 0; i < b->n_pend; i++)
		taken += !b->pend[i].retry;
	if (!taken) {
		/* Only requests not taken: nothing to store, no disk flush for a
		 * client that does not listen. */
		for (size_t i = 0; i < b->n_pend; i++)
			b->pend[i].status = YJ_STATUS_RETRY;
		s_commit_end(ing, b, 0, 0);
		return 0;
	}
	memset(&ing->routed, 0, sizeof(ing->routed));
	clock_gettime(CLOCK_MONOTONIC, &ing->commit_t0);
	ing->batch_now_us = yj_clock_now_us();
	ing->pend_batch = b;
	if (ing->efd >= 0 && !yj_store_write_start(ing->core->store, s_write_batch, ing, s_commit_wake, ing)) {
		ing->committing = b;
		return 1;
	}
	int rc = yj_store_write(ing->core->store, s_write_batch, ing);
	ing->pend_batch = NULL;
	s_commit_end(ing, b, 1, rc);
	return rc;
}

/* The committer's batch, once written (waiting for it with wait): answered.
 * 1 when one was, 0 when none is (or not yet), or the commit's error. */
static int s_commit_collect(struct yj_ingest *ing, int wait)
{
	if (!ing->committing)
		return 0;
	int rc = yj_store_write_collect(ing->core->store, wait);
	if (rc == YJ_EAGAIN)
		return 0;
	struct s_batch *b = ing->committing;
	ing->committing = NULL;
	ing->pend_batch = NULL;
	s_commit_end(ing, b, 1, rc);
	return rc ? rc : 1;
}

/* One step of the pipeline: answer the committed batch, take the
 * normaliser's batch once parsed (waiting for either with wait), give the
 * normaliser the fill batch, then start the commit of the parsed one. A
 * parsed batch is taken only when the committer is free: three batches, and
 * the fill batch needs the third. 1 when a batch was answered, 0 when none
 * was, or a commit's error. */
static int s_advance(struct yj_ingest *ing, int wait)
{
	struct s_batch *parsed = NULL;
	int result = s_commit_collect(ing, wait);
	if (!ing->committing && ing->work && s_work_done(ing, wait)) {
		parsed = ing->work;
		ing->work = NULL;
	}
	if (!ing->work && ing->fill->n_pend)
		s_handover(ing, parsed);
	if (parsed) {
		int rc = s_commit_start(ing, parsed);
		if (rc < 0 && result >= 0)
			result = rc;
		else if (rc == 0 && result == 0)
			result = 1;
	}
	return result;
}

/* The fill batch is full: it goes to the thread once the thread is done
 * with the one it has (the loop waits: the pipeline's back pressure). */
static int s_make_room(struct yj_ingest *ing)
{
	int rc = s_advance(ing, 1);
	if (ing->fill->n_pend && !ing->work)
		s_handover(ing, NULL);
	return rc < 0 ? rc : 0;
}

int yj_ingest_pump(struct yj_ingest *ing, struct yj_route_counts *routed)
{
	int rc = s_advance(ing, 0);
	s_report(ing, routed);
	return rc;
}

int yj_ingest_flush(struct yj_ingest *ing, struct yj_route_counts *routed)
{
	int rc = 0;
	while (ing->work || ing->fill->n_pend || ing->committing) {
		int r = s_advance(ing, 1);
		if (r < 0 && !rc)
			rc = r;
	}
	s_report(ing, routed);
	return rc;
}
