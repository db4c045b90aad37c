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
 * Settings: an adapter declares its own as tables of struct yj_setting (as
 * Fluent Bit's config_map or Knot's yp_item_t): settings of the adapter
 * itself under its top-level `section` ("email = { smtp_url = ...; }"), and
 * settings every recipient of its transport carries ("webhook = { url =
 * ...; }", "email = [ ... ]"). The core's config loader reads, defaults,
 * checks and documents them (`--check`, `--config-reference`) from those
 * tables and hands the adapter the filled structs; it frees them too.
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

#include "diag.h"

struct yj_loop;
struct yj_config;
struct yj_curlm;
struct yj_recipient;
struct yj_adapter;

/* --- settings ------------------------------------------------------------ */

enum yj_setting_type {
	YJ_SETTING_STR = 0,     /* char *, owned by the config */
	YJ_SETTING_INT,         /* int64_t, within [min, max] */
	YJ_SETTING_BOOL,        /* int, 0 or 1 */
	YJ_SETTING_STRLIST,     /* struct yj_strlist (config.h), owned by the config */
	YJ_SETTING_SECRET_FILE, /* char *: the first line of the file named (relative to the config
	                         * file's directory), read at load; the path itself is not kept.
	                         * A file group or others may read is refused. */
};

/* One setting an adapter declares. */
struct yj_setting {
	enum yj_setting_type type;
	const char *name;       /* path below the section or the recipient: "smtp_url", "webhook.url" */
	size_t offset;          /* of the field in the adapter's settings struct */
	const char *def;        /* default as text (lists: comma-separated); NULL = required */
	int64_t min, max;       /* YJ_SETTING_INT bounds */
	const char *doc;        /* one line for the config reference */
};

/* Where a setting stands in the config file, for the adapter's own checks. */
struct yj_setting_site {
	struct yj_diag *diag;   /* report problems here */
	const char *file;       /* config file of the group checked */
	int line;               /* line of the group (the section, or the recipient) */
};

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
};

/* One disclosure, as data. Every pointer is valid only during deliver():
 * an adapter copies what it keeps. */
struct yj_message {
	enum yj_message_kind kind;
	const char *id;               /* notification id or digest id: stable across retries and resends */
	const char *kind_name;        /* notification: its kind (rule id or hold_released); "daily_digest" */
	const struct yj_recipient *recipient; /* id and display name (config.h); never transport settings */
	const void *settings;         /* this recipient's settings for this adapter (its recipient table's struct) */
	const char *json;             /* the message as JSON: the notification of §3, or the digest object of §3 */
	size_t json_len;
	/* digests only (NULL / 0 for a notification) */
	const char *date;             /* local date of the digest, YYYY-MM-DD */
	const char *window_from;      /* the window, RFC 3339 UTC */
	const char *window_to;
	unsigned children;            /* distinct children in it */
	unsigned events;              /* events in its window */
	const char *text;             /* the digest as a person reads it: text/plain */
	const char *html;             /* ... and text/html */
	const char *csv;              /* the CSV of §5 */
	size_t csv_len;
	const char *csv_name;         /* yjlink-digest-<yjs>-<date>.csv */
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
	/* This adapter's own settings (its `settings_size` struct) in cfg; never NULL
	 * for an adapter that declares settings. */
	const void *(*settings)(const struct yj_config *cfg, const struct yj_adapter *a);
	/* Take one request. done(arg, reply) is called exactly once, later or at once. */
	int (*submit)(void *core, const struct yj_request *req, yj_reply_fn done, void *arg);
};

struct yj_adapter {
	const char *name;            /* file name without .c, e.g. "out_email" */

	/* Settings of the adapter itself, a top-level group of the config. */
	const char *section;         /* "email"; NULL when it has none */
	const struct yj_setting *settings;
	size_t n_settings;
	size_t settings_size;        /* sizeof its settings struct */
	/* Cross-field checks of those settings, after the table was read. */
	void (*check)(const void *settings, const struct yj_setting_site *at);

	/* Lifecycle. init reads settings and allocates, binding nothing;
	 * *state is the adapter's, freed by destroy. Returns 0, YJ_ENOENT when
	 * not configured (the adapter stays off), or an error. */
	int (*init)(const struct yj_core_api *api, void **state);
	int (*start)(void *state);   /* bind or connect and join the loop */
	/* The config changed (SIGHUP): take what can change without dropping connections. */
	int (*reload)(void *state, const struct yj_config *cfg);
	void (*drain)(void *state);  /* graceful stop, first phase: take no new input or deliveries */
	void (*destroy)(void **state); /* leave the loop, close, free; NULLs *state */

	/* --- outputs only (NULL for inputs) --- */
	const char *transport;       /* what a recipient names in `transport = "..."` */
	/* Settings every recipient of this transport carries, below the recipient. */
	const struct yj_setting *recipient_settings;
	size_t n_recipient_settings;
	size_t recipient_settings_size;
	/* Cross-field checks of one recipient's settings ("a webhook needs a URL"). */
	void (*check_recipient)(const void *settings, const struct yj_recipient *r, const struct yj_setting_site *at);
	/* Start delivering m; done(arg, ...) is called exactly once, later, from
	 * the loop. Returns 0, or a negative code (done is then not called and
	 * the core treats it as RETRY). */
	int (*deliver)(void *state, const struct yj_message *m, yj_delivery_done_fn done, void *arg);
};

/* Every adapter compiled in, NULL-terminated (adapters/registry.c). */
extern const struct yj_adapter *const yj_adapters[];

#endif
