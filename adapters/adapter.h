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
};

/* Every adapter compiled in, NULL-terminated (adapters/registry.c). */
extern const struct yj_adapter *const yj_adapters[];

#endif
