/* settings.h: how a part of yjlinkd declares its own settings, for the
 * core's config loader (config.c) to read (as Fluent Bit's config_map or
 * Knot's yp_item_t).
 *
 * Whatever declares settings (today: the adapters, adapter.h) hands the
 * loader one struct yj_settings_owner: tables of struct yj_setting for its
 * own top-level `section` ("email = { smtp_url = ...; }") and, for an
 * output, for what every recipient of its `transport` carries ("webhook =
 * { url = ...; }", "email = [ ... ]"), and checks of what was read. The
 * loader reads, defaults, bound-checks, documents (`--check`,
 * `--config-reference`) and frees them from those tables alone; this header
 * is all it knows of the owner, so the core config sits below the adapters
 * and never names one.
 */
#ifndef YJ_SETTINGS_H
#define YJ_SETTINGS_H

#include <stddef.h>
#include <stdint.h>

#include "diag.h"

struct yj_recipient;

enum yj_setting_type {
	YJ_SETTING_STR = 0,     /* char *, owned by the config */
	YJ_SETTING_INT,         /* int64_t, within [min, max] */
	YJ_SETTING_BOOL,        /* int, 0 or 1 */
	YJ_SETTING_STRLIST,     /* struct yj_strlist (config.h), owned by the config */
	YJ_SETTING_SECRET_FILE, /* char *: the first line of the file named (relative to the config
	                         * file's directory), read at load; the path itself is not kept.
	                         * A file group or others may read is refused. */
	YJ_SETTING_GROUPLIST,   /* struct yj_grouplist, owned by the config: a list of groups,
	                         * `name = ( { ... }, { ... } );`, each group read into one struct
	                         * by the struct yj_setting_items that def points to. min, max:
	                         * how many groups (max 0: no cap); min 0: absent is the empty
	                         * list, else it is required. */
};

struct yj_setting;

/* What each group of a YJ_SETTING_GROUPLIST is read by. */
struct yj_setting_items {
	const struct yj_setting *v;  /* the table, names below the group; a member may be a list in turn */
	size_t n;
	size_t size;                 /* sizeof the struct one group fills */
};

/* A YJ_SETTING_GROUPLIST as read: n structs of its items' size, one per
 * group in file order. */
struct yj_grouplist {
	void *items;            /* n structs, owned; NULL when n is 0 */
	size_t n;
	int *lines;             /* line of each group in the config file, for the owner's checks; owned */
};

/* One setting an owner declares, in a table written positionally:
 *	{ YJ_SETTING_INT, "timeout_ms", offsetof(struct s, timeout_ms), "5000", 1, 60000, "..." }
 * A list of groups names its items where the others give their default:
 *	{ YJ_SETTING_GROUPLIST, "publishers", offsetof(struct s, publishers), &s_pub_items, 0, 64, "..." }
 * (def is untyped rather than a member being added, so that every table
 * written positionally before lists existed still sets each member, as
 * -Wextra wants.) */
struct yj_setting {
	enum yj_setting_type type;
	const char *name;       /* path below the section or the recipient: "smtp_url", "webhook.url" */
	size_t offset;          /* of the field in the owner's settings struct */
	const void *def;        /* default as text, a const char * (lists: comma-separated); NULL =
	                         * required. YJ_SETTING_GROUPLIST: its const struct yj_setting_items *. */
	int64_t min, max;       /* YJ_SETTING_INT bounds; YJ_SETTING_GROUPLIST: how many groups */
	const char *doc;        /* one line for the config reference */
};

/* Where a setting stands in the config file, for the owner's own checks. */
struct yj_setting_site {
	struct yj_diag *diag;   /* report problems here */
	const char *file;       /* config file of the group checked */
	int line;               /* line of the group (the section, or the recipient) */
};

/* What the config loader needs of anything that declares settings. */
struct yj_settings_owner {
	const char *name;            /* file name without .c, e.g. "out_email" (the reference names it) */

	/* Settings of the owner itself, a top-level group of the config. */
	const char *section;         /* "email"; NULL when it has none */
	const struct yj_setting *settings;
	size_t n_settings;
	size_t settings_size;        /* sizeof its settings struct */
	/* Cross-field checks of those settings, after the table was read. */
	void (*check)(const void *settings, const struct yj_setting_site *at);
	/* The core's endpoint setting this owner listens on ("ingest.endpoint"),
	 * and whether its settings as read authenticate that endpoint (CURVE):
	 * the loader refuses an endpoint that is not loopback or ipc:// unless
	 * its owner authenticates it or the section says insecure = true.
	 * NULL for the rest. */
	const char *endpoint;
	int (*authenticates)(const void *settings);

	/* --- outputs only (NULL for the rest) --- */
	const char *transport;       /* what a recipient names in `transport = "..."` */
	/* Settings every recipient of this transport carries, below the recipient. */
	const struct yj_setting *recipient_settings;
	size_t n_recipient_settings;
	size_t recipient_settings_size;
	/* Cross-field checks of one recipient's settings ("a webhook needs a URL"). */
	void (*check_recipient)(const void *settings, const struct yj_recipient *r, const struct yj_setting_site *at);
};

#endif
