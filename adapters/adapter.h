/* adapter.h: the one interface between yjlinkd's core and its inputs and
 * outputs (after Fluent Bit's struct flb_input_plugin).
 *
 * Each adapter is one file in adapters/ exporting one
 * `const struct yj_adapter` filled with designated initialisers;
 * adapters/registry.c lists them. The core knows adapters only through this
 * header: it never includes an adapter's own code or headers.
 *
 * Inputs turn what arrives (YJL1 frames, SUB messages, spool lines) into
 * struct yj_request and hand it to the core with api->submit(). The core
 * answers each request exactly once through the reply callback, after the
 * group commit that made it durable (or at once, when it is refused before
 * reaching the store).
 */
#ifndef YJ_ADAPTER_H
#define YJ_ADAPTER_H

#include <stddef.h>
#include <stdint.h>

struct yj_loop;
struct yj_config;
struct yj_curlm;

/* One message from outside, as received. All pointers are borrowed for the
 * duration of submit(): the core copies what it keeps. */
struct yj_request {
	const char *origin;          /* "yjl1", "sub", "spool": quarantine and metrics label */
	const char *sender;          /* authenticated identity (CURVE user id), NULL if none */
	const char *protocol_error;  /* framing fault the adapter found (REJECT protocol), or NULL */
	const void *feed;            /* frame 1: feed name */
	size_t feed_len;
	const void *content_type;    /* frame 2 */
	size_t content_type_len;
	const void *payload;         /* frame 3 (for a framing fault: every frame, concatenated) */
	size_t payload_len;
	unsigned frames;             /* frames received */
};

enum yj_status {
	YJ_STATUS_OK = 0,
	YJ_STATUS_DUP,
	YJ_STATUS_REJECT,
	YJ_STATUS_RETRY,
};

/* The answer to one request. Pointers valid only during the callback. */
struct yj_reply {
	enum yj_status status;
	const char *source_id;       /* "" when it could not be read */
	size_t source_id_len;
	const char *detail;          /* seq for OK/DUP, JSON for REJECT, reason for RETRY */
	size_t detail_len;
	uint64_t seq;                /* OK/DUP: the event's sequence number */
	const char *error;           /* REJECT: the code name ("schema"...), else NULL */
	const char *field;           /* REJECT: dotted path or "" */
	const char *reason;          /* REJECT/RETRY: text */
};

typedef void (*yj_reply_fn)(void *arg, const struct yj_reply *reply);

/* What an output adapter says of one delivery (engineering guide item 3):
 * the core alone decides about retries, backoff and the dead-letter queue. */
enum yj_delivery_result {
	YJ_DELIVERY_OK = 0,   /* the receiver has it (2xx, SMTP 250) */
	YJ_DELIVERY_RETRY,    /* transient: 408, 429, 5xx, network error, SMTP 4xx */
	YJ_DELIVERY_FATAL,    /* permanent: other 4xx, SMTP 5xx, bad address */
};

struct yj_recipient;

/* One notification to deliver. All pointers valid only during deliver():
 * an adapter copies what it keeps. */
struct yj_delivery {
	const char *notification_id;           /* "<deployment>-<number>", stable across retries */
	const struct yj_recipient *recipient;  /* destination and credentials (config.h) */
	const char *kind;                      /* rule id or hold_released */
	const char *json;                      /* the notification JSON of interfaces.md §3 */
	size_t json_len;
	const char *subject;                   /* email: subject line, never personal data */
	const char *text;                      /* email: text/plain body */
	const char *html;                      /* email: text/html body */
	const char *extra_headers;             /* email: more header lines ("X-A: b\r\n..."), or NULL */
	const char *attachment_name;           /* email: a text/csv attachment's file name, or NULL */
	const char *attachment;                /* email: its contents */
	size_t attachment_len;
};

/* Called exactly once per accepted delivery, from the loop. address is the
 * transport address actually used (URL, mail addresses), for the audit. */
typedef void (*yj_delivery_done_fn)(void *arg, enum yj_delivery_result result, const char *detail,
				    const char *address);

/* What the core offers an adapter. Valid from init() to destroy(). */
struct yj_core_api {
	void *core;                          /* opaque, passed back to the calls below */
	struct yj_loop *loop;                /* the one event loop */
	void *zmq_ctx;                       /* the one ZeroMQ context */
	const struct yj_config *(*config)(void *core);  /* the config now in force */
	/* Take one request. done(arg, reply) is called exactly once, later or at once. */
	int (*submit)(void *core, const struct yj_request *req, yj_reply_fn done, void *arg);
	/* Count a metric (name and label set as in interfaces.md §7). */
	void (*count)(void *core, const char *metric, const char *labels, uint64_t n);
	struct yj_curlm *curlm;              /* libcurl multi driven by the loop (curlm.h) */
};

struct yj_adapter {
	const char *name;  /* file name without .c, e.g. "in_yjl1" */
	/* Read settings and allocate; bind nothing yet. *state is the adapter's, freed by destroy.
	 * Return 0, YJ_ENOENT when not configured (the adapter then stays off), or an error. */
	int (*init)(const struct yj_core_api *api, void **state);
	/* Bind or connect and join the loop. */
	int (*start)(void *state);
	/* The config changed (SIGHUP): take what can change without dropping connections. */
	int (*reload)(void *state, const struct yj_config *cfg);
	/* Graceful stop, first phase: stop taking new input (answer RETRY). */
	void (*drain)(void *state);
	/* Leave the loop, close, free; NULLs *state. */
	void (*destroy)(void **state);

	/* --- outputs only (NULL for inputs) --- */
	int transport;  /* the enum yj_transport (config.h) this adapter delivers */
	/* Start delivering d; done(arg, ...) is called exactly once, later, from
	 * the loop. Returns 0, or a negative code (done is then not called and
	 * the core treats it as RETRY). */
	int (*deliver)(void *state, const struct yj_delivery *d, yj_delivery_done_fn done, void *arg);
};

/* Every adapter compiled in, NULL-terminated (adapters/registry.c). */
extern const struct yj_adapter *const yj_adapters[];

#endif
