/* adapter.h: the one interface between yjlinkd's core and its inputs and
 * outputs (after Fluent Bit's struct flb_input_plugin / flb_output_plugin).
 *
 * Each adapter is one file in adapters/ exporting one
 * `const struct yj_adapter` filled with designated initialisers;
 * adapters/registry.c lists them. The core knows adapters only through this
 * header: it never includes an adapter's own code, and never names a
 * transport or a transport's settings. Adding an output is one new file and
 * one line in the registry.
 *
 * Settings: an adapter declares its own in its `conf` member, a struct
 * yj_settings_owner (settings.h): tables of struct yj_setting for its
 * top-level `section` ("email = { smtp_url = ...; }") and for what every
 * recipient of its transport carries ("webhook = { url = ...; }", "email =
 * [ ... ]"). main.c hands the config loader the `conf` of every adapter
 * (the loader, below the adapters, knows no struct yj_adapter); it reads,
 * defaults, checks and documents them (`--check`, `--config-reference`)
 * from those tables and hands the adapter the filled structs through
 * api->settings; it frees them too.
 *
 * Inputs turn what arrives (YJL1 frames, SUB messages, spool lines) into
 * struct yj_request and hand it to the core with api->submit(). The core
 * answers each request exactly once through the reply callback, after the
 * group commit that made it durable (or at once, when it is refused before
 * reaching the store).
 *
 * Outputs are handed one struct yj_message at a time by the outbox (the one
 * scheduler of every disclosure) and say OK, RETRY or FATAL of it once; they
 * render what their transport needs (MIME, a JSON POST, a frame) from the
 * message's data, and never retry by themselves.
 */
#ifndef YJ_ADAPTER_H
#define YJ_ADAPTER_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "diag.h"
#include "settings.h"

struct yj_loop;
struct yj_config;
struct yj_curlm;
struct yj_recipient;
struct yj_adapter;
struct yj_prom;
struct yj_zap;

/* --- inputs ---------------------------------------------------------------- */

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
	/* The forces this sender may send for, when the input knows them (a
	 * publisher's or a spool's force); NULL: ingest.forces. */
	const char *const *forces;
	size_t n_forces;
	/* The input's position to record in the same transaction as this
	 * request's outcome (a publisher's sequence number, a spool file's
	 * line), so that a restart resumes right after it; NULL for none. Read
	 * back with api->position_get(). At most 256 bytes. */
	const char *position_key;
	const void *position;
	size_t position_len;
	/* The sender is over its share (in_yjl1: its connection leaves too
	 * many replies unread): the request is answered RETRY overloaded, in
	 * its turn among the replies, and neither normalised nor stored. */
	int overloaded;
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

/* --- outputs --------------------------------------------------------------- */

/* What an output adapter says of one delivery (engineering guide item 3):
 * the core alone decides about retries, backoff and the dead-letter queue. */
enum yj_delivery_result {
	YJ_DELIVERY_OK = 0,   /* the receiver has it (2xx, SMTP 250, an ACK) */
	YJ_DELIVERY_RETRY,    /* transient: 408, 429, 5xx, network error, SMTP 4xx */
	YJ_DELIVERY_FATAL,    /* permanent: other 4xx, SMTP 5xx, bad address */
};

enum yj_message_kind {
	YJ_MESSAGE_NOTIFICATION = 0,  /* one event to one recipient (interfaces.md §3) */
	YJ_MESSAGE_DIGEST,            /* one daily digest to one YJS (interfaces.md §3, §5) */
	YJ_MESSAGE_REPORT,            /* one monthly board pack (aggregate figures): html, csv and json as for a digest */
};

/* One disclosure, as data. Every pointer is valid only during deliver():
 * an adapter copies what it keeps. */
struct yj_message {
	enum yj_message_kind kind;
	const char *id;               /* notification id or digest id: stable across retries and resends */
	uint64_t number;              /* the job's number: unique, increasing per recipient (a YJN1 NOTE's number) */
	const char *feed;             /* notification: the feed of the event it is about */
	const char *kind_name;        /* notification: its kind (rule id or hold_released); "daily_digest" */
	const struct yj_recipient *recipient; /* id and display name (config.h); never transport settings */
	const void *settings;         /* this recipient's settings for this adapter (its recipient table's struct) */
	const char *json;             /* the message as JSON: the notification of §3, or the digest object of §3 */
	size_t json_len;
	/* digests and board packs only (NULL / 0 for a notification) */
	const char *date;             /* local date of the digest, YYYY-MM-DD; a board pack's month, YYYY-MM */
	const char *window_from;      /* the window, RFC 3339 UTC; a board pack's first and last day, YYYY-MM-DD */
	const char *window_to;
	unsigned children;            /* distinct children in it */
	unsigned events;              /* events in its window */
	const char *text;             /* the digest as a person reads it: text/plain */
	const char *html;             /* ... and text/html */
	const char *csv;              /* the CSV of §5 */
	size_t csv_len;
	const char *csv_name;         /* yjlink-digest-<yjs>-<date>.csv */
	/* A digest's renderings of the adapter's digest_streamed are not in
	 * text, html and csv but written on demand, streaming, so that the
	 * adapter holds only what it sends: write_part(write_arg, part, f)
	 * writes rendering part (one of those bits) to f, during deliver()
	 * only. Returns 0 or a negative code. NULL for any other message. */
	int (*write_part)(void *arg, unsigned part, FILE *f);
	void *write_arg;
};

/* Called exactly once per accepted delivery, from the loop (never from
 * inside deliver()). detail says what happened (for the log and the DLQ);
 * address is the transport address actually used (URL, mail addresses), for
 * the audit. */
typedef void (*yj_delivery_done_fn)(void *arg, enum yj_delivery_result result, const char *detail,
				    const char *address);

/* --- what the core offers --------------------------------------------------- */

/* Valid from init() to destroy(). */
struct yj_core_api {
	void *core;                          /* opaque, passed back to the calls below */
	struct yj_loop *loop;                /* the one event loop */
	void *zmq_ctx;                       /* the one ZeroMQ context */
	struct yj_curlm *curlm;              /* libcurl multi driven by the loop (curlm.h) */
	const struct yj_config *(*config)(void *core);  /* the config now in force */
	/* This adapter's own settings (its conf.settings_size struct) in cfg;
	 * never NULL for an adapter that declares settings. */
	const void *(*settings)(const struct yj_config *cfg, const struct yj_adapter *a);
	/* Take one request. done(arg, reply) is called exactly once, later or at once. */
	int (*submit)(void *core, const struct yj_request *req, yj_reply_fn done, void *arg);
	/* A position as last committed (db/positions.h): copied into buf, *len
	 * its length. YJ_ENOENT when there is none. */
	int (*position_get)(void *core, const char *key, void *buf, size_t size, size_t *len);
	/* Record a position (a subscription's cursor) in the outbox's next
	 * completion commit: with the deliveries it stands for. */
	int (*position_put)(void *core, const char *key, const void *val, size_t len);
	/* The ZAP handler (zap.h), bound before any adapter starts: a CURVE
	 * socket registers the keys it accepts there (yj_zap_set_keys). NULL
	 * where there is none (unit tests): such an adapter must not bind CURVE. */
	struct yj_zap *zap;
};

struct yj_adapter {
	/* Its name ("out_email": the file name without .c), its settings and,
	 * for an output, its transport and what each of its recipients carries:
	 * all the config loader sees of it (settings.h). */
	struct yj_settings_owner conf;

	/* Lifecycle. init reads settings and allocates, binding nothing;
	 * *state is the adapter's, freed by destroy. Returns 0, YJ_ENOENT when
	 * not configured (the adapter stays off), or an error. */
	int (*init)(const struct yj_core_api *api, void **state);
	int (*start)(void *state);   /* bind or connect and join the loop */
	/* The config changed (SIGHUP): take what can change without dropping connections. */
	int (*reload)(void *state, const struct yj_config *cfg);
	void (*drain)(void *state);  /* graceful stop, first phase: take no new input or deliveries */
	void (*destroy)(void **state); /* leave the loop, close, free; NULLs *state */

	/* A yjlinkctl command this adapter answers ("subscribers"), or NULL:
	 * args and the answer are JSON objects as text; *out is malloc'd by the
	 * adapter, freed by the core. Returns 0, 1 refused or failed, 2 usage. */
	const char *command;
	int (*run_command)(void *state, const char *args_json, char **out_json);
	/* Append the adapter's own metric families to the Prometheus text (prom.h). */
	void (*metrics)(void *state, struct yj_prom *p);

	/* --- outputs only (NULL or 0 for inputs) --- */
	/* Start delivering m; done(arg, ...) is called exactly once, later, from
	 * the loop. Returns 0, or a negative code (done is then not called and
	 * the core treats it as RETRY). */
	int (*deliver)(void *state, const struct yj_message *m, yj_delivery_done_fn done, void *arg);
	/* Jobs under way per recipient at most (0: the outbox's default, 32): a
	 * subscription keeps its unacknowledged notes under way. */
	unsigned window;
	/* The digest renderings it sends (enum yj_digest_part of digest.h as
	 * bits: 1 text, 2 html, 4 csv, 8 json); 0: all. */
	unsigned digest_parts;
	/* Of those, the ones it takes through yj_message.write_part rather
	 * than as strings (the JSON is always a string). */
	unsigned digest_streamed;
};

/* Every adapter compiled in, NULL-terminated (adapters/registry.c). */
extern const struct yj_adapter *const yj_adapters[];

#endif
