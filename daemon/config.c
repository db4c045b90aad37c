/* config.c: see config.h. */
#include "config.h"

#include <ctype.h>
#include <fcntl.h>
#include <libconfig.h>
#include <sodium.h>
#include <arpa/inet.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "directory.h"
#include "embedded.h"
#include "err.h"
#include "metrics.h"
#include "secret.h"
#include "settings.h"

#define OFF(f) offsetof(struct yj_config, f)

/* The core's own settings, declared as every owner's are (struct
 * yj_setting, settings.h), so that one reader parses, defaults, checks,
 * overrides and documents both. Names are full dotted paths from the top
 * level. */
#define O_OFF(f) offsetof(struct yj_officer, f)
static const struct yj_setting s_officer_table[] = {
	{ YJ_SETTING_STR, "name", O_OFF(name), NULL, 0, 0, "the officer's name as feeds write it in markers.officer_in_case" },
	{ YJ_SETTING_STR, "recipient", O_OFF(recipient), NULL, 0, 0,
	  "id of the recipient (kind officer or duty) that reaches them" },
};
#undef O_OFF
static const struct yj_setting_items s_officer_items = {
	s_officer_table, sizeof(s_officer_table) / sizeof(s_officer_table[0]), sizeof(struct yj_officer)
};

#define B_OFF(f) offsetof(struct yj_board_pack, f)
static const struct yj_setting s_board_pack_table[] = {
	{ YJ_SETTING_STR, "scope", B_OFF(scope), NULL, 0, 0, "a yjs: recipient id (that YJS's area), or \"force\" (force-wide)" },
	{ YJ_SETTING_STR, "recipient", B_OFF(recipient), NULL, 0, 0, "id of the recipient it is sent to (its own transport)" },
	{ YJ_SETTING_INT, "day", B_OFF(day), "1", 1, 28, "day of the month it is sent on" },
	{ YJ_SETTING_STR, "time", B_OFF(time), "08:00", 0, 0, "local HH:MM it is sent at" },
};
#undef B_OFF
static const struct yj_setting_items s_board_pack_items = {
	s_board_pack_table, sizeof(s_board_pack_table) / sizeof(s_board_pack_table[0]), sizeof(struct yj_board_pack)
};

static const struct yj_setting s_table[] = {
	{ YJ_SETTING_STR, "deployment.id", OFF(deployment_id), "tvp", 0, 0,
	  "short id of this deployment: prefix of notification ids (`[a-z0-9-]`, 1-32)" },
	{ YJ_SETTING_STR, "deployment.name", OFF(deployment_name), "yjlink", 0, 0, "display name in status and digests" },
	{ YJ_SETTING_STR, "deployment.force", OFF(deployment_force), "E23000029", 0, 0,
	  "GSS code of the police force area served (must be in forces.csv)" },
	{ YJ_SETTING_STR, "store.path", OFF(store_path), "/var/lib/yjlink/store", 0, 0, "LMDB directory (created 0700)" },
	{ YJ_SETTING_INT, "store.map_size_mb", OFF(store_map_size_mb), "64", 1, INT64_C(1) << 30,
	  "initial LMDB map size, MiB; grown automatically when full" },
	{ YJ_SETTING_INT, "store.max_map_size_mb", OFF(store_max_map_size_mb), "262144", 1, INT64_C(1) << 30,
	  "cap on map growth, MiB; at the cap ingest answers RETRY" },
	{ YJ_SETTING_STR, "ingest.endpoint", OFF(ingest_endpoint), "tcp://127.0.0.1:7401", 0, 0,
	  "YJL1 ROUTER endpoint (bind)" },
	{ YJ_SETTING_INT, "ingest.max_message_bytes", OFF(ingest_max_message_bytes), "65536", 256, 16 << 20,
	  "largest payload accepted; larger is REJECT too_large" },
	{ YJ_SETTING_INT, "ingest.batch_max", OFF(ingest_batch_max), "4096", 1, 1 << 20,
	  "most requests in one group commit" },
	{ YJ_SETTING_INT, "ingest.quarantine_max_bytes", OFF(ingest_quarantine_max_bytes), "1048576", 0, 64 << 20,
	  "raw bytes kept of each quarantined message" },
	{ YJ_SETTING_STRLIST, "ingest.forces", OFF(ingest_forces), "", 0, 0,
	  "force codes an unauthenticated (loopback) sender may send for; empty = deployment.force" },
	{ YJ_SETTING_BOOL, "ingest.insecure", OFF(ingest_insecure), "false", 0, 0,
	  "allow a non-loopback ingest endpoint without CURVE (never in production)" },
	{ YJ_SETTING_INT, "quarantine.max_bytes", OFF(quarantine_max_bytes), "67108864", 0, INT64_C(1) << 40,
	  "quota of the whole quarantine, bytes: beyond it a refused message is still answered REJECT but not kept "
	  "(counted, logged); 0 keeps none" },
	{ YJ_SETTING_INT, "quarantine.retention_days", OFF(quarantine_retention_days), "30", 0, 36500,
	  "quarantined messages older than this are erased (audited); 0 = at the next run, within 10 s" },
	{ YJ_SETTING_STR, "notify.endpoint", OFF(notify_endpoint), "tcp://127.0.0.1:7402", 0, 0,
	  "YJN1 ROUTER endpoint (bind)" },
	{ YJ_SETTING_BOOL, "notify.insecure", OFF(notify_insecure), "false", 0, 0,
	  "allow a non-loopback notify endpoint without CURVE (never in production)" },
	{ YJ_SETTING_STR, "control.endpoint", OFF(control_endpoint), "ipc:///run/yjlink/control.sock", 0, 0,
	  "yjlinkctl endpoint (ipc://, mode 0660)" },
	{ YJ_SETTING_STR, "metrics.endpoint", OFF(metrics_endpoint), "127.0.0.1:9402", 0, 0,
	  "HOST:PORT of /metrics and /healthz; empty disables" },
	{ YJ_SETTING_BOOL, "metrics.public", OFF(metrics_public), "false", 0, 0,
	  "allow a metrics.endpoint that is not loopback (plain HTTP without authentication: recipient ids and counts "
	  "to anyone who can reach it)" },
	{ YJ_SETTING_INT, "retention.event_days", OFF(retention_event_days), "730", 1, 36500,
	  "events older than this are erased" },
	{ YJ_SETTING_INT, "retention.audit_days", OFF(retention_audit_days), "2190", 1, 36500,
	  "audit records kept this long" },
	{ YJ_SETTING_STR, "reference.dir", OFF(reference_dir), "", 0, 0,
	  "directory of reference CSV tables (relative to the config file); empty = compiled-in copies" },
	{ YJ_SETTING_STRLIST, "directory.children_services_allow", OFF(directory_children_services_allow),
	  "occurred_at,force,child.person_id,child.given_name,child.family_name,child.date_of_birth,child.apparent_age,child.home_la,"
	  "child.looked_after,child.responsible_la,child.social_worker.*,custody.record_id,custody.suite,"
	  "custody.arrived_at,custody.status,custody.status_at,custody.appropriate_adult.*",
	  0, 0,
	  "allowlist (data sharing agreement) of a children's services recipient made from a children_services.csv row" },
	{ YJ_SETTING_STRLIST, "directory.force_allow", OFF(directory_force_allow),
	  "source_id,force,occurred_at,child.person_id,child.pnc_id,child.given_name,child.family_name,"
	  "child.date_of_birth,child.apparent_age,child.home_la,child.home_postcode,child.looked_after,child.responsible_la,offences.*,"
	  "custody.record_id,custody.suite,custody.arrived_at,custody.status,custody.status_at,arrest.*,outcome.*",
	  0, 0, "allowlist of a force recipient made from a force_contacts.csv row" },
	{ YJ_SETTING_INT, "custody.overnight_hours", OFF(custody_overnight_hours), "4", 1, 24,
	  "hours detained within the overnight period that make a child held overnight" },
	{ YJ_SETTING_STR, "custody.overnight_from", OFF(custody_overnight_from), "00:00", 0, 0,
	  "start of the overnight period, local" },
	{ YJ_SETTING_STR, "custody.overnight_to", OFF(custody_overnight_to), "08:00", 0, 0,
	  "end of the overnight period, local" },
	{ YJ_SETTING_INT, "report.suppress_below", OFF(report_suppress_below), "5", 1, 1000,
	  "board report (yjlinkctl report): counts under this are suppressed, and the totals and shares they could be worked out from" },
	{ YJ_SETTING_INT, "delivery.max_age_s", OFF(delivery_max_age_s), "86400", 1, 365 * 86400,
	  "a notification still failing transiently after this long goes to the dead-letter queue" },
	{ YJ_SETTING_INT, "delivery.backoff_min_ms", OFF(delivery_backoff_min_ms), "500", 1, 3600000,
	  "first retry delay (full jitter below it)" },
	{ YJ_SETTING_INT, "delivery.backoff_max_ms", OFF(delivery_backoff_max_ms), "300000", 1, 86400000,
	  "cap of the exponential retry delay" },
	{ YJ_SETTING_INT, "delivery.escalate_after_s", OFF(delivery_escalate_after_s), "3600", 60, 30 * 86400,
	  "an immediate notification undelivered this long is escalated to the duty recipient (a rule's escalate_after_s "
	  "overrides; lac_in_custody and pace_transfer default to 900)" },
	{ YJ_SETTING_STR, "deployment.duty", OFF(deployment_duty), "", 0, 0,
	  "id of the duty recipient (a recipient of kind duty): told at once what could not be delivered, holds waiting "
	  "and quiet feeds; empty = nobody (--check warns)" },
	{ YJ_SETTING_STRLIST, "holds.markers", OFF(holds_markers), "live_investigation,serious_offence", 0, 0,
	  "markers that hold an event's offence details and markers for the officer in the case" },
	{ YJ_SETTING_INT, "holds.escalate_after_h", OFF(holds_escalate_after_h), "24", 1, 24 * 365,
	  "a hold still waiting this many hours is escalated to the duty recipient" },
	{ YJ_SETTING_GROUPLIST, "officers", OFF(officers), &s_officer_items, 0, 100000,
	  "officers in the case by the name feeds give in markers.officer_in_case, each with the recipient that reaches "
	  "them; an officer not listed is reached through the duty recipient" },
	{ YJ_SETTING_GROUPLIST, "board_packs", OFF(board_packs), &s_board_pack_items, 0, 1000,
	  "monthly board reports (the previous calendar month) sent through the outbox, each with its scope, recipient, "
	  "day and time; audited as a disclosure of aggregate data" },
	{ YJ_SETTING_INT, "ingest.silence_alarm_h.custody", OFF(silence_alarm_h[1]), "6", 0, 24 * 365,
	  "hours without a custody message before the duty recipient is told (once; again when it resumes); 0 = never" },
	{ YJ_SETTING_INT, "ingest.silence_alarm_h.arrest", OFF(silence_alarm_h[2]), "48", 0, 24 * 365,
	  "the same for the arrest feed" },
	{ YJ_SETTING_INT, "ingest.silence_alarm_h.voluntary_interview", OFF(silence_alarm_h[3]), "48", 0, 24 * 365,
	  "the same for the voluntary_interview feed" },
	{ YJ_SETTING_INT, "ingest.silence_alarm_h.outcome", OFF(silence_alarm_h[4]), "48", 0, 24 * 365,
	  "the same for the outcome feed" },
	{ YJ_SETTING_STR, "audit.anchor_time", OFF(audit_anchor_time), "06:00", 0, 0,
	  "local HH:MM after which, once a day, the duty recipient is sent the audit chain's head (the anchor "
	  "`yjlinkctl audit verify --anchor` checks); empty = never" },
	{ YJ_SETTING_STR, "log.level", OFF(log_level), "info", 0, 0, "err, warning, notice, info or debug" },
	{ YJ_SETTING_BOOL, "testing.clock_control", OFF(testing_clock_control), "false", 0, 0,
	  "let yjlinkctl move the daemon's clock (tests only)" },
	{ YJ_SETTING_STR, "testing.clock_start", OFF(testing_clock_start), "", 0, 0,
	  "with testing.clock_control: the clock at start-up, RFC 3339 (tests only)" },
	{ YJ_SETTING_STR, "testing.report_gate", OFF(testing_report_gate), "", 0, 0,
	  "a file the report helper waits for before it reads the store, so a test can hold a report under way "
	  "(tests only); empty = none" },
	{ YJ_SETTING_STR, "testing.digest_gate", OFF(testing_digest_gate), "", 0, 0,
	  "a file the digest helper waits for before it builds, so a test can hold a digest under way "
	  "(tests only); empty = none" },
	{ YJ_SETTING_STR, "testing.digest_stall", OFF(testing_digest_stall), "", 0, 0,
	  "a file: a digest helper that finds it missing makes it and then waits on a lock for ever, as one "
	  "forked while another thread held that lock would, so a test sees it forked again (tests only); "
	  "empty = none" },
};
#define S_N (sizeof(s_table) / sizeof(s_table[0]))

/* Transports the contract names (interfaces.md §3). A config written for a
 * fuller build may name one this build has no adapter for: say so, rather
 * than that the word is unknown. */
static const char *const s_spec_transports[] = { "email", "webhook", "zmq", "peer" };

static const char *s_type_name(enum yj_setting_type t)
{
	switch (t) {
	case YJ_SETTING_STR: return "a string";
	case YJ_SETTING_INT: return "an integer";
	case YJ_SETTING_BOOL: return "true or false";
	case YJ_SETTING_STRLIST: return "a list of strings";
	case YJ_SETTING_SECRET_FILE: return "the name of a 0600 file";
	case YJ_SETTING_GROUPLIST: return "a list of groups ( { ... }, ... )";
	}
	return "?";
}

/* One table of settings and the group its names sit below ("" = the group
 * the lookup starts from). */
struct s_tab {
	const struct yj_setting *v;
	size_t n;
	const char *prefix;
};

/* Whether setting name of a table below prefix has the dotted path path;
 * with group set, whether path is a group on the way to it instead. */
static int s_path_is(const char *prefix, const char *name, const char *path, int group)
{
	size_t pl = strlen(prefix);
	if (pl) {
		if (strncmp(path, prefix, pl))
			return 0;
		if (!path[pl])
			return group; /* the section itself */
		if (path[pl] != '.')
			return 0;
		path += pl + 1;
	}
	size_t len = strlen(path);
	if (strncmp(name, path, len))
		return 0;
	return group ? name[len] == '.' : name[len] == '\0';
}

static const struct yj_setting *s_tab_find(const struct s_tab *tabs, size_t n, const char *path)
{
	for (size_t i = 0; i < n; i++) {
		for (size_t j = 0; j < tabs[i].n; j++) {
			if (s_path_is(tabs[i].prefix, tabs[i].v[j].name, path, 0))
				return &tabs[i].v[j];
		}
	}
	return NULL;
}

/* A group is known when some setting lives below it. */
static int s_tab_group(const struct s_tab *tabs, size_t n, const char *path)
{
	for (size_t i = 0; i < n; i++) {
		for (size_t j = 0; j < tabs[i].n; j++) {
			if (s_path_is(tabs[i].prefix, tabs[i].v[j].name, path, 1))
				return 1;
		}
	}
	return 0;
}

struct s_ctx {
	const char *label;     /* file name for settings with no source file */
	struct yj_diag *diag;
	const struct yj_settings_owner *const *owners; /* who else declares settings (NULL-terminated), or NULL */
	size_t n_owners;
	struct s_tab *tabs;    /* what the top level may hold: the core's table and each owner's section */
	size_t n_tabs;
	int64_t escalate_default_s; /* delivery.escalate_after_s, for rules that do not say */
};

static const char *s_file(const struct s_ctx *c, const config_setting_t *s)
{
	const char *f = s ? config_setting_source_file(s) : NULL;
	return f ? f : c->label;
}

static int s_line(const config_setting_t *s) { return s ? (int)config_setting_source_line(s) : 0; }

static void s_walk_group(struct s_ctx *c, const struct s_tab *tabs, size_t n, config_setting_t *group,
			 const char *prefix, const char *what);

/* Report s (at dotted path) unless a table names it (its type is checked
 * where it is read) or it is a group on the way to settings, whose members
 * are then checked in turn. what: NULL at the top level, else "a recipient". */
static void s_check_member(struct s_ctx *c, const struct s_tab *tabs, size_t n, config_setting_t *s, const char *path,
			   const char *what)
{
	if (s_tab_find(tabs, n, path))
		return;
	if (s_tab_group(tabs, n, path)) {
		if (config_setting_is_group(s))
			s_walk_group(c, tabs, n, s, path, what);
		else
			yj_diag_report(c->diag, s_file(c, s), s_line(s), "'%s'%s%s must be a group { ... }", path,
				       what ? " in " : "", what ? what : "");
		return;
	}
	yj_diag_report(c->diag, s_file(c, s), s_line(s), "unknown setting '%s'%s%s", path, what ? " in " : "",
		       what ? what : "");
}

static void s_walk_group(struct s_ctx *c, const struct s_tab *tabs, size_t n, config_setting_t *group,
			 const char *prefix, const char *what)
{
	int len = config_setting_length(group);
	for (int i = 0; i < len; i++) {
		config_setting_t *s = config_setting_get_elem(group, (unsigned)i);
		const char *name = config_setting_name(s);
		char path[256];
		snprintf(path, sizeof(path), "%s%s%s", prefix, *prefix ? "." : "", name ? name : "?");
		s_check_member(c, tabs, n, s, path, what);
	}
}

static void s_walk_unknown(struct s_ctx *c, config_setting_t *root)
{
	int n = config_setting_length(root);
	for (int i = 0; i < n; i++) {
		config_setting_t *s = config_setting_get_elem(root, (unsigned)i);
		const char *name = config_setting_name(s);
		if (name && (!strcmp(name, "recipients") || !strcmp(name, "rules")))
			continue; /* checked, key by key, by s_parse_recipients / s_parse_rules */
		s_check_member(c, c->tabs, c->n_tabs, s, name ? name : "?", NULL);
	}
}

static int s_parse_bool(const char *v, int *out)
{
	if (!strcmp(v, "true") || !strcmp(v, "yes") || !strcmp(v, "1"))
		*out = 1;
	else if (!strcmp(v, "false") || !strcmp(v, "no") || !strcmp(v, "0"))
		*out = 0;
	else
		return YJ_EINVAL;
	return 0;
}

static int s_parse_int(const char *v, int64_t *out)
{
	char *end = NULL;
	errno = 0;
	long long x = strtoll(v, &end, 10);
	if (errno || end == v || *end)
		return YJ_EINVAL;
	*out = x;
	return 0;
}

/* Create the groups on the way to path; returns the parent group and the leaf name. */
static config_setting_t *s_make_parents(config_t *cf, const char *path, const char **leaf)
{
	config_setting_t *g = config_root_setting(cf);
	char buf[256];
	snprintf(buf, sizeof(buf), "%s", path);
	char *p = buf, *dot;
	while ((dot = strchr(p, '.'))) {
		*dot = '\0';
		config_setting_t *next = config_setting_get_member(g, p);
		if (!next)
			next = config_setting_add(g, p, CONFIG_TYPE_GROUP);
		if (!next || !config_setting_is_group(next))
			return NULL;
		g = next;
		p = dot + 1;
	}
	*leaf = path + (p - buf);
	return g;
}

/* --set KEY=VALUE: replace (or add) one scalar, typed by the table (the
 * core's or an owner's section). */
static void s_apply_set(struct s_ctx *c, config_t *cf, const char *kv)
{
	const char *eq = strchr(kv, '=');
	char key[256];
	if (!eq || eq == kv || (size_t)(eq - kv) >= sizeof(key)) {
		yj_diag_report(c->diag, "--set", 0, "'%s' is not KEY=VALUE", kv);
		return;
	}
	memcpy(key, kv, (size_t)(eq - kv));
	key[eq - kv] = '\0';
	const char *val = eq + 1;
	const struct yj_setting *t = s_tab_find(c->tabs, c->n_tabs, key);
	if (!t) {
		yj_diag_report(c->diag, "--set", 0, "unknown setting '%s'", key);
		return;
	}
	const char *leaf = NULL;
	config_setting_t *parent = s_make_parents(cf, key, &leaf);
	if (!parent) {
		yj_diag_report(c->diag, "--set", 0, "cannot set '%s': a parent is not a group", key);
		return;
	}
	config_setting_remove(parent, leaf);
	config_setting_t *s = NULL;
	int b = 0;
	int64_t i = 0;
	switch (t->type) {
	case YJ_SETTING_STR:
	case YJ_SETTING_SECRET_FILE:
		s = config_setting_add(parent, leaf, CONFIG_TYPE_STRING);
		if (s)
			config_setting_set_string(s, val);
		break;
	case YJ_SETTING_INT:
		if (s_parse_int(val, &i)) {
			yj_diag_report(c->diag, "--set", 0, "'%s' must be %s, not '%s'", key, s_type_name(t->type), val);
			return;
		}
		s = config_setting_add(parent, leaf, CONFIG_TYPE_INT64);
		if (s)
			config_setting_set_int64(s, i);
		break;
	case YJ_SETTING_BOOL:
		if (s_parse_bool(val, &b)) {
			yj_diag_report(c->diag, "--set", 0, "'%s' must be %s, not '%s'", key, s_type_name(t->type), val);
			return;
		}
		s = config_setting_add(parent, leaf, CONFIG_TYPE_BOOL);
		if (s)
			config_setting_set_bool(s, b);
		break;
	case YJ_SETTING_STRLIST: {
		s = config_setting_add(parent, leaf, CONFIG_TYPE_ARRAY);
		char *copy = strdup(val), *save = NULL;
		for (char *tok = copy ? strtok_r(copy, ",", &save) : NULL; tok; tok = strtok_r(NULL, ",", &save))
			config_setting_set_string_elem(s, -1, tok);
		free(copy);
		break;
	}
	case YJ_SETTING_GROUPLIST:
		/* Not a scalar: its groups have no KEY=VALUE form. */
		yj_diag_report(c->diag, "--set", 0, "'%s' is %s: set it in the config file", key, s_type_name(t->type));
		return;
	}
	if (!s)
		yj_diag_report(c->diag, "--set", 0, "cannot set '%s'", key);
}

static int s_strdup_into(char **dst, const char *src)
{
	*dst = strdup(src);
	return *dst ? 0 : YJ_ENOMEM;
}

static int s_fill_strlist(struct yj_strlist *l, const char *csv)
{
	char *copy = strdup(csv), *save = NULL;
	if (!copy)
		return YJ_ENOMEM;
	for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		char **nv = realloc(l->v, (l->n + 1) * sizeof(*nv));
		if (!nv || !(nv[l->n] = strdup(tok))) {
			if (nv)
				l->v = nv;
			free(copy);
			return YJ_ENOMEM;
		}
		l->v = nv;
		l->n++;
	}
	free(copy);
	return 0;
}

void yj_strlist_free(struct yj_strlist *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
	l->v = NULL;
	l->n = 0;
}

/* Where one table is read: its names below base (after prefix, "" for
 * none); who goes before every message ("" or "recipient 'X': "), and a
 * missing required setting is reported at file:line (the group's). */
struct s_scope {
	config_setting_t *base;
	const char *prefix;
	const char *who;
	const char *file;
	int line;
};

/* The first line of the secret file name (relative to the config file's
 * directory) into *out, through the one reader of secrets (secret.h): a
 * file group or others may read is refused, its buffers wiped. Problems are
 * reported at file:line, naming setting. */
static int s_read_secret(struct s_ctx *c, const char *file, int line, const char *who, const char *setting,
			 const char *name, char **out)
{
	char *full = NULL;
	char buf[4096], err[PATH_MAX + 200];
	int rc = 0;

	if (name[0] != '/' && strchr(c->label, '/')) {
		const char *slash = strrchr(c->label, '/');
		if (asprintf(&full, "%.*s/%s", (int)(slash - c->label), c->label, name) < 0)
			return YJ_ENOMEM;
	} else if (!(full = strdup(name))) {
		return YJ_ENOMEM;
	}
	if (yj_secret_read(full, buf, sizeof(buf), err, sizeof(err)) < 0)
		yj_diag_report(c->diag, file, line, "%s'%s': %s", who, setting, err);
	else if (!(*out = strdup(buf)))
		rc = YJ_ENOMEM;
	yj_secret_wipe(buf, sizeof(buf));
	free(full);
	return rc;
}

/* A setting's default as text, and a list's items: what def holds by type (settings.h). */
static const char *s_def(const struct yj_setting *t) { return t->type == YJ_SETTING_GROUPLIST ? NULL : t->def; }
static const struct yj_setting_items *s_items(const struct yj_setting *t)
{
	return t->type == YJ_SETTING_GROUPLIST ? t->def : NULL;
}

/* A setting absent from the file: its default, or a report when it has none. */
static int s_default(struct s_ctx *c, const struct s_scope *sc, const struct yj_setting *t, const char *path,
		     void *field)
{
	const char *def = s_def(t);
	int rc = 0;

	/* A list of groups has no text default: absent is the empty list the
	 * calloc'd field already is, unless it needs groups. */
	if (t->type == YJ_SETTING_GROUPLIST) {
		if (t->min > 0)
			yj_diag_report(c->diag, sc->file, sc->line, "%s'%s' is required", sc->who, path);
		return 0;
	}
	if (!def) {
		yj_diag_report(c->diag, sc->file, sc->line, "%s'%s' is required", sc->who, path);
		return 0;
	}
	switch (t->type) {
	case YJ_SETTING_STR: return s_strdup_into(field, def);
	case YJ_SETTING_INT: rc = s_parse_int(def, field); break;
	case YJ_SETTING_BOOL: rc = s_parse_bool(def, field); break;
	case YJ_SETTING_STRLIST: return s_fill_strlist(field, def);
	case YJ_SETTING_SECRET_FILE:
		if (!*def)
			return s_strdup_into(field, "");
		return s_read_secret(c, sc->file, sc->line, sc->who, path, def, field);
	case YJ_SETTING_GROUPLIST:
		break; /* above */
	}
	/* A table that does not parse its own default is a bug of its owner: name it. */
	if (rc)
		yj_diag_report(c->diag, sc->file, sc->line, "%s'%s': the default '%s' of this setting is not %s", sc->who,
			       path, def, s_type_name(t->type));
	return 0;
}

static int s_extract(struct s_ctx *c, const struct s_scope *sc, const struct yj_setting *t, void *obj);

/* The groups of list s (the GROUPLIST t at path) into l, each read by t's
 * items table as a recipient is by its output's: its keys checked first
 * (unknown ones and wrong groups reported at their own line), then every
 * member read, a missing required one reported at the group's line. Only
 * groups become items, so an owner never sees a half-read one in a config
 * that loaded. Only YJ_ENOMEM is returned. */
static int s_extract_groups(struct s_ctx *c, const struct s_scope *sc, const struct yj_setting *t, const char *path,
			    config_setting_t *s, struct yj_grouplist *l)
{
	const struct yj_setting_items *it = s_items(t);
	int len = config_setting_length(s);
	size_t groups = 0;
	int rc = 0;

	if (!it || !it->v) {
		/* A list that says nothing of its groups is a bug of its owner: name it. */
		yj_diag_report(c->diag, s_file(c, s), s_line(s), "%s'%s': this list of groups has no table of its members",
			       sc->who, path);
		return 0;
	}
	for (int i = 0; i < len; i++) {
		config_setting_t *g = config_setting_get_elem(s, (unsigned)i);
		if (config_setting_is_group(g))
			groups++;
		else
			yj_diag_report(c->diag, s_file(c, g), s_line(g), "%s'%s': each item must be a group { ... }", sc->who,
				       path);
	}
	if (t->max > 0 && ((int64_t)groups < t->min || (int64_t)groups > t->max))
		yj_diag_report(c->diag, s_file(c, s), s_line(s), "%s'%s' must hold between %lld and %lld groups, not %zu",
			       sc->who, path, (long long)t->min, (long long)t->max, groups);
	else if ((int64_t)groups < t->min)
		yj_diag_report(c->diag, s_file(c, s), s_line(s), "%s'%s' needs at least %lld group(s), not %zu", sc->who,
			       path, (long long)t->min, groups);
	if (!groups)
		return 0;
	l->items = calloc(groups, it->size ? it->size : 1);
	l->lines = calloc(groups, sizeof(*l->lines));
	if (!l->items || !l->lines)
		return YJ_ENOMEM;
	const struct s_tab own = { it->v, it->n, "" };
	for (int i = 0; i < len && !rc; i++) {
		config_setting_t *g = config_setting_get_elem(s, (unsigned)i);
		if (!config_setting_is_group(g))
			continue;
		char what[300], who[320];
		snprintf(what, sizeof(what), "%s'%s' item %d", sc->who, path, i + 1);
		snprintf(who, sizeof(who), "%s: ", what);
		s_walk_group(c, &own, 1, g, "", what);
		struct s_scope isc = { g, "", who, s_file(c, g), s_line(g) };
		void *item = (char *)l->items + l->n * it->size;
		l->lines[l->n++] = s_line(g); /* counted before it is read: a failed read is freed too */
		for (size_t j = 0; j < it->n && !rc; j++)
			rc = s_extract(c, &isc, &it->v[j], item);
	}
	return rc;
}

/* Read one table setting into obj (its default when absent). Problems are
 * reported; only YJ_ENOMEM is returned. */
static int s_extract(struct s_ctx *c, const struct s_scope *sc, const struct yj_setting *t, void *obj)
{
	void *field = (char *)obj + t->offset;
	char path[256];
	snprintf(path, sizeof(path), "%s%s%s", sc->prefix, *sc->prefix ? "." : "", t->name);
	config_setting_t *s = config_setting_lookup(sc->base, path);

	if (!s)
		return s_default(c, sc, t, path, field);
	int st = config_setting_type(s);
	switch (t->type) {
	case YJ_SETTING_STR:
		if (st != CONFIG_TYPE_STRING)
			goto wrong;
		return s_strdup_into(field, config_setting_get_string(s));
	case YJ_SETTING_SECRET_FILE: {
		if (st != CONFIG_TYPE_STRING)
			goto wrong;
		const char *name = config_setting_get_string(s);
		if (!*name)
			return s_strdup_into(field, ""); /* no secret: the owner's check says whether it needs one */
		return s_read_secret(c, s_file(c, s), s_line(s), sc->who, path, name, field);
	}
	case YJ_SETTING_INT: {
		if (st != CONFIG_TYPE_INT && st != CONFIG_TYPE_INT64)
			goto wrong;
		long long v = config_setting_get_int64(s);
		if (v < t->min || v > t->max)
			yj_diag_report(c->diag, s_file(c, s), s_line(s), "%s'%s' must be between %lld and %lld, not %lld",
				       sc->who, path, (long long)t->min, (long long)t->max, v);
		*(int64_t *)field = v;
		return 0;
	}
	case YJ_SETTING_BOOL:
		if (st != CONFIG_TYPE_BOOL)
			goto wrong;
		*(int *)field = config_setting_get_bool(s);
		return 0;
	case YJ_SETTING_STRLIST: {
		if (st != CONFIG_TYPE_ARRAY && st != CONFIG_TYPE_LIST)
			goto wrong;
		struct yj_strlist *l = field;
		int n = config_setting_length(s);
		for (int i = 0; i < n; i++) {
			config_setting_t *e = config_setting_get_elem(s, (unsigned)i);
			if (config_setting_type(e) != CONFIG_TYPE_STRING) {
				yj_diag_report(c->diag, s_file(c, e), s_line(e), "%s'%s' must be %s", sc->who, path,
					       s_type_name(t->type));
				continue;
			}
			char **nv = realloc(l->v, (l->n + 1) * sizeof(*nv));
			if (!nv)
				return YJ_ENOMEM;
			l->v = nv;
			if (!(l->v[l->n] = strdup(config_setting_get_string(e))))
				return YJ_ENOMEM;
			l->n++;
		}
		return 0;
	}
	case YJ_SETTING_GROUPLIST:
		/* `()` is the empty list; libconfig reads an empty `[]` as an array, the same to a reader. */
		if (st != CONFIG_TYPE_LIST && !(st == CONFIG_TYPE_ARRAY && config_setting_length(s) == 0))
			goto wrong;
		return s_extract_groups(c, sc, t, path, s, field);
	}
wrong:
	yj_diag_report(c->diag, s_file(c, s), s_line(s), "%s'%s' must be %s", sc->who, path, s_type_name(t->type));
	return 0;
}

/* Free what the settings of table t own in obj (NULL: nothing). A secret is
 * wiped first: freed memory is handed out again, and a core dump shows it. */
static void s_free_settings(const struct yj_setting *t, size_t n, void *obj)
{
	if (!obj)
		return;
	for (size_t i = 0; i < n; i++) {
		void *field = (char *)obj + t[i].offset;
		char *str = NULL;
		switch (t[i].type) {
		case YJ_SETTING_STR:
			free(*(char **)field);
			*(char **)field = NULL;
			break;
		case YJ_SETTING_SECRET_FILE:
			str = *(char **)field;
			if (str)
				explicit_bzero(str, strlen(str));
			free(str);
			*(char **)field = NULL;
			break;
		case YJ_SETTING_STRLIST:
			yj_strlist_free(field);
			break;
		case YJ_SETTING_GROUPLIST: {
			/* Each item by the table that filled it: it may own strings, secrets, lists. */
			struct yj_grouplist *l = field;
			const struct yj_setting_items *it = s_items(&t[i]);
			for (size_t k = 0; it && l->items && k < l->n; k++)
				s_free_settings(it->v, it->n, (char *)l->items + k * it->size);
			free(l->items);
			free(l->lines);
			l->items = NULL;
			l->lines = NULL;
			l->n = 0;
			break;
		}
		case YJ_SETTING_INT:
		case YJ_SETTING_BOOL:
			break;
		}
	}
}

/* Owner i's own settings: its section read by its table, then its own
 * cross-field checks, only when the table read cleanly, so that check sees
 * every setting set. */
static int s_parse_section(struct s_ctx *c, config_t *cf, struct yj_config *cfg, size_t i)
{
	const struct yj_settings_owner *o = cfg->owners[i];
	int rc = 0;

	if (!o->settings || !o->n_settings)
		return 0;
	void *st = calloc(1, o->settings_size);
	if (!st)
		return YJ_ENOMEM;
	cfg->owner_settings[i] = st;
	const char *prefix = o->section ? o->section : "";
	config_setting_t *sec = *prefix ? config_lookup(cf, prefix) : NULL;
	struct s_scope sc = { config_root_setting(cf), prefix, "", s_file(c, sec), s_line(sec) };
	int before = c->diag->count;
	for (size_t j = 0; j < o->n_settings && !rc; j++)
		rc = s_extract(c, &sc, &o->settings[j], st);
	if (!rc && o->check && c->diag->count == before) {
		struct yj_setting_site at = { c->diag, sc.file, sc.line };
		o->check(st, &at);
	}
	return rc;
}

static int s_hhmm_ok(const char *s)
{
	return strlen(s) == 5 && isdigit((unsigned char)s[0]) && isdigit((unsigned char)s[1]) && s[2] == ':' &&
	       isdigit((unsigned char)s[3]) && isdigit((unsigned char)s[4]) &&
	       (s[0] - '0') * 10 + (s[1] - '0') < 24 && (s[3] - '0') * 10 + (s[4] - '0') < 60;
}

static int s_endpoint_ok(const char *e)
{
	return !strncmp(e, "tcp://", 6) || !strncmp(e, "ipc://", 6) || !strncmp(e, "inproc://", 9);
}

static int s_loopback(const char *e)
{
	return !strncmp(e, "ipc://", 6) || !strncmp(e, "inproc://", 9) || !strncmp(e, "tcp://127.", 10) ||
	       !strncmp(e, "tcp://localhost:", 16) || !strncmp(e, "tcp://[::1]:", 12);
}

static int s_metrics_loopback(const struct sockaddr_storage *ss)
{
	if (ss->ss_family == AF_INET)
		return (ntohl(((const struct sockaddr_in *)ss)->sin_addr.s_addr) >> 24) == 127;
	if (ss->ss_family == AF_INET6)
		return IN6_IS_ADDR_LOOPBACK(&((const struct sockaddr_in6 *)ss)->sin6_addr);
	return 0;
}

/* Whether an owner listening on the core's endpoint setting path
 * authenticates it with the settings it read (settings.h). */
static int s_authenticated(const struct yj_config *cfg, const char *path)
{
	for (size_t i = 0; cfg->owner_settings && i < cfg->n_owners; i++) {
		const struct yj_settings_owner *o = cfg->owners[i];
		if (o->endpoint && !strcmp(o->endpoint, path) && o->authenticates && cfg->owner_settings[i] &&
		    o->authenticates(cfg->owner_settings[i]))
			return 1;
	}
	return 0;
}

/* Cross-field checks: each names the line of the setting it is about. */
static void s_check(struct s_ctx *c, config_t *cf, const struct yj_config *cfg)
{
#define AT(path) s_file(c, config_lookup(cf, path)), s_line(config_lookup(cf, path))
	const char *id = cfg->deployment_id;
	size_t idlen = strlen(id);
	int id_ok = idlen >= 1 && idlen <= 32;
	for (size_t i = 0; i < idlen; i++)
		id_ok &= (islower((unsigned char)id[i]) || isdigit((unsigned char)id[i]) || id[i] == '-');
	if (!id_ok)
		yj_diag_report(c->diag, AT("deployment.id"), "'deployment.id' must be 1-32 of [a-z0-9-], not '%s'", id);
	const char *eps[][2] = { { "ingest.endpoint", cfg->ingest_endpoint },
				 { "notify.endpoint", cfg->notify_endpoint },
				 { "control.endpoint", cfg->control_endpoint } };
	for (size_t i = 0; i < 3; i++) {
		if (!s_endpoint_ok(eps[i][1]))
			yj_diag_report(c->diag, AT(eps[i][0]), "'%s' must be tcp://, ipc:// or inproc://, not '%s'",
				       eps[i][0], eps[i][1]);
	}
	/* The control socket shows personal data and runs reload: only a
	 * socket file, whose mode and group say who may connect (quality.md
	 * "Security"); tcp:// and abstract ipc://@ names have neither. */
	if (strncmp(cfg->control_endpoint, "ipc://", 6) || cfg->control_endpoint[6] != '/')
		yj_diag_report(c->diag, AT("control.endpoint"),
			       "'control.endpoint' must be ipc:// with an absolute socket path (mode 0660, group yjlink), "
			       "not '%s': tcp:// and abstract sockets let any local user in",
			       cfg->control_endpoint);
	/* Anything but loopback or ipc:// is authenticated (interfaces.md §1,
	 * §3): by the owner that listens there (CURVE), or the section says
	 * insecure = true in so many words. */
	const struct { const char *path, *ep; int insecure; } lst[] = {
		{ "ingest.endpoint", cfg->ingest_endpoint, cfg->ingest_insecure },
		{ "notify.endpoint", cfg->notify_endpoint, cfg->notify_insecure },
	};
	for (size_t i = 0; i < sizeof(lst) / sizeof(lst[0]); i++) {
		if (s_loopback(lst[i].ep) || lst[i].insecure || s_authenticated(cfg, lst[i].path))
			continue;
		size_t sect = strcspn(lst[i].path, ".");
		yj_diag_report(c->diag, AT(lst[i].path),
			       "'%s' %s is not loopback or ipc://: configure CURVE for it, or say %.*s.insecure = true",
			       lst[i].path, lst[i].ep, (int)sect, lst[i].path);
	}
	struct sockaddr_storage ss;
	socklen_t sslen;
	if (*cfg->metrics_endpoint && yj_metrics_parse_endpoint(cfg->metrics_endpoint, &ss, &sslen))
		yj_diag_report(c->diag, AT("metrics.endpoint"),
			       "'metrics.endpoint' must be IPV4:PORT or [IPV6]:PORT, not '%s'", cfg->metrics_endpoint);
	else if (*cfg->metrics_endpoint && !cfg->metrics_public && !s_metrics_loopback(&ss))
		yj_diag_report(c->diag, AT("metrics.endpoint"),
			       "'metrics.endpoint' %s is not loopback: /metrics has no authentication; bind 127.0.0.1 and let a "
			       "local scraper or proxy reach it, or say metrics.public = true",
			       cfg->metrics_endpoint);
	if (!*cfg->store_path)
		yj_diag_report(c->diag, AT("store.path"), "'store.path' must not be empty");
	if (cfg->store_max_map_size_mb < cfg->store_map_size_mb)
		yj_diag_report(c->diag, AT("store.max_map_size_mb"),
			       "'store.max_map_size_mb' (%lld) is below 'store.map_size_mb' (%lld)",
			       (long long)cfg->store_max_map_size_mb, (long long)cfg->store_map_size_mb);
	if (*cfg->audit_anchor_time && !s_hhmm_ok(cfg->audit_anchor_time))
		yj_diag_report(c->diag, AT("audit.anchor_time"), "'audit.anchor_time' must be HH:MM or empty");
	if (!s_hhmm_ok(cfg->custody_overnight_from))
		yj_diag_report(c->diag, AT("custody.overnight_from"), "'custody.overnight_from' must be HH:MM");
	if (!s_hhmm_ok(cfg->custody_overnight_to))
		yj_diag_report(c->diag, AT("custody.overnight_to"), "'custody.overnight_to' must be HH:MM");
	if (cfg->delivery_backoff_max_ms < cfg->delivery_backoff_min_ms)
		yj_diag_report(c->diag, AT("delivery.backoff_max_ms"), "'delivery.backoff_max_ms' is below 'delivery.backoff_min_ms'");
	static const char *levels[] = { "err", "warning", "notice", "info", "debug" };
	int lv_ok = 0;
	for (size_t i = 0; i < 5; i++)
		lv_ok |= !strcmp(cfg->log_level, levels[i]);
	if (!lv_ok)
		yj_diag_report(c->diag, AT("log.level"), "'log.level' must be err, warning, notice, info or debug");
#undef AT
}

/* --- recipients and rules: lists of groups, each key checked --- */

struct s_key {
	const char *name;
	int type;        /* CONFIG_TYPE_* expected; CONFIG_TYPE_ARRAY for string lists */
};

/* Report keys of group g not in keys[] (NULL-terminated) nor in tabs (the
 * recipient table of a recipient's own output), and keys of the wrong type. */
static void s_check_keys(struct s_ctx *c, config_setting_t *g, const char *what, const struct s_key *keys,
			 const struct s_tab *tabs, size_t n_tabs)
{
	int n = config_setting_length(g);
	for (int i = 0; i < n; i++) {
		config_setting_t *s = config_setting_get_elem(g, (unsigned)i);
		const char *name = config_setting_name(s);
		const struct s_key *k;
		for (k = keys; k->name; k++) {
			if (name && !strcmp(k->name, name))
				break;
		}
		if (!k->name) {
			s_check_member(c, tabs, n_tabs, s, name ? name : "?", what);
			continue;
		}
		int t = config_setting_type(s);
		int ok = t == k->type || (k->type == CONFIG_TYPE_INT && t == CONFIG_TYPE_INT64) ||
			 (k->type == CONFIG_TYPE_ARRAY && t == CONFIG_TYPE_LIST);
		if (!ok)
			yj_diag_report(c->diag, s_file(c, s), s_line(s), "'%s' in %s has the wrong type", name, what);
	}
}
static char *s_group_str(config_setting_t *g, const char *name, const char *def)
{
	const char *v = NULL;
	config_setting_t *s = config_setting_get_member(g, name);
	if (s && config_setting_type(s) == CONFIG_TYPE_STRING)
		v = config_setting_get_string(s);
	return strdup(v ? v : def);
}

static int s_group_strlist(struct s_ctx *c, config_setting_t *g, const char *name, struct yj_strlist *l)
{
	config_setting_t *s = config_setting_get_member(g, name);
	if (!s || (config_setting_type(s) != CONFIG_TYPE_ARRAY && config_setting_type(s) != CONFIG_TYPE_LIST))
		return 0;
	int n = config_setting_length(s);
	for (int i = 0; i < n; i++) {
		config_setting_t *e = config_setting_get_elem(s, (unsigned)i);
		if (config_setting_type(e) != CONFIG_TYPE_STRING) {
			yj_diag_report(c->diag, s_file(c, e), s_line(e), "'%s' must be a list of strings", name);
			continue;
		}
		char **nv = realloc(l->v, (l->n + 1) * sizeof(*nv));
		if (!nv)
			return YJ_ENOMEM;
		l->v = nv;
		if (!(l->v[l->n] = strdup(config_setting_get_string(e))))
			return YJ_ENOMEM;
		l->n++;
	}
	return 0;
}

/* Tri-state from an optional boolean: -1 when absent. */
static int s_group_tri(config_setting_t *g, const char *name)
{
	config_setting_t *s = config_setting_get_member(g, name);
	if (!s || config_setting_type(s) != CONFIG_TYPE_BOOL)
		return -1;
	return config_setting_get_bool(s);
}

static int s_hhmm(const char *s) { return s_hhmm_ok(s) ? ((s[0] - '0') * 10 + (s[1] - '0')) * 60 + (s[3] - '0') * 10 + (s[4] - '0') : -1; }

/* hours = { mon = "08:00-20:00"; ...; sun = "closed"; } ; a day not given is closed. */
static void s_parse_hours(struct s_ctx *c, config_setting_t *h, struct yj_hours *out)
{
	static const char *days[7] = { "mon", "tue", "wed", "thu", "fri", "sat", "sun" };
	static const struct s_key keys[] = { { "mon", CONFIG_TYPE_STRING }, { "tue", CONFIG_TYPE_STRING },
					     { "wed", CONFIG_TYPE_STRING }, { "thu", CONFIG_TYPE_STRING },
					     { "fri", CONFIG_TYPE_STRING }, { "sat", CONFIG_TYPE_STRING },
					     { "sun", CONFIG_TYPE_STRING }, { NULL, 0 } };
	s_check_keys(c, h, "hours", keys, NULL, 0);
	for (int d = 0; d < 7; d++) {
		out->open[d] = out->close[d] = 0;
		config_setting_t *s = config_setting_get_member(h, days[d]);
		if (!s || config_setting_type(s) != CONFIG_TYPE_STRING)
			continue;
		const char *v = config_setting_get_string(s);
		if (!strcmp(v, "closed"))
			continue;
		char a[6] = "", b[6] = "";
		if (strlen(v) == 11 && v[5] == '-') {
			memcpy(a, v, 5);
			memcpy(b, v + 6, 5);
		}
		int o = s_hhmm(a), cl = strcmp(b, "24:00") ? s_hhmm(b) : 1440;
		if (o < 0 || cl < 0 || cl <= o) {
			yj_diag_report(c->diag, s_file(c, s), s_line(s), "hours.%s must be \"HH:MM-HH:MM\" (open before close) or \"closed\"", days[d]);
			continue;
		}
		out->open[d] = (int16_t)o;
		out->close[d] = (int16_t)cl;
	}
}

static const char *const s_kind_names[] = { "yjs", "children_services", "liaison_diversion", "force", "duty", "officer" };
#define S_KINDS (sizeof(s_kind_names) / sizeof(s_kind_names[0]))

const char *yj_rcpt_kind_name(enum yj_rcpt_kind k) { return (size_t)k < S_KINDS ? s_kind_names[k] : "?"; }

/* The owner of r's transport (r->output its index), or NULL: for "none",
 * and, reported, for a transport this build cannot deliver to. */
static const struct yj_settings_owner *s_output(struct s_ctx *c, struct yj_recipient *r)
{
	if (!strcmp(r->transport, "none"))
		return NULL;
	for (size_t i = 0; i < c->n_owners; i++) {
		const struct yj_settings_owner *o = c->owners[i];
		if (o->transport && !strcmp(o->transport, r->transport)) {
			r->output = (int)i;
			return o;
		}
	}
	for (size_t i = 0; i < sizeof(s_spec_transports) / sizeof(s_spec_transports[0]); i++) {
		if (!strcmp(r->transport, s_spec_transports[i])) {
			yj_diag_report(c->diag, r->file, r->line,
				       "recipient '%s': transport '%s' has no output adapter in this build; nothing could be "
				       "delivered to it",
				       r->id, r->transport);
			return NULL;
		}
	}
	char have[512] = "none";
	size_t len = strlen(have);
	for (size_t i = 0; i < c->n_owners && len < sizeof(have); i++) {
		if (c->owners[i]->transport)
			len += (size_t)snprintf(have + len, sizeof(have) - len, ", %s", c->owners[i]->transport);
	}
	yj_diag_report(c->diag, r->file, r->line, "recipient '%s': unknown transport '%s' (this build has: %s)", r->id,
		       r->transport, have);
	return NULL;
}

/* The recipient settings of r's output o, read from the recipient group g
 * by o's recipient table, then o's own checks of them (only when the table
 * read cleanly, so that check_recipient sees every setting set). */
static int s_parse_output_settings(struct s_ctx *c, config_setting_t *g, struct yj_recipient *r,
				   const struct yj_settings_owner *o)
{
	int rc = 0;

	if (o->recipient_settings_size) {
		char who[320];
		if (!(r->output_settings = calloc(1, o->recipient_settings_size)))
			return YJ_ENOMEM;
		snprintf(who, sizeof(who), "recipient '%s': ", r->id);
		struct s_scope sc = { g, "", who, r->file, r->line };
		int before = c->diag->count;
		for (size_t i = 0; i < o->n_recipient_settings && !rc; i++)
			rc = s_extract(c, &sc, &o->recipient_settings[i], r->output_settings);
		if (rc || c->diag->count > before)
			return rc;
	}
	if (o->check_recipient) {
		struct yj_setting_site at = { c->diag, r->file, r->line };
		o->check_recipient(r->output_settings, r, &at);
	}
	return 0;
}

/* dsa = { id = "DSA-TVP-014"; review = "2027-03-31"; }: the id goes into
 * every disclosure's audit record, the review date into status and the
 * warnings (directory.c), in the form a directory's dsa column has. */
static int s_parse_dsa(struct s_ctx *c, config_setting_t *g, struct yj_recipient *r)
{
	static const struct s_key keys[] = { { "id", CONFIG_TYPE_STRING }, { "review", CONFIG_TYPE_STRING }, { NULL, 0 } };
	char what[300], *v = NULL;
	const char *id = NULL, *review = NULL;
	size_t id_len = 0;

	snprintf(what, sizeof(what), "the dsa of recipient '%s'", r->id);
	s_check_keys(c, g, what, keys, NULL, 0);
	config_setting_lookup_string(g, "id", &id);
	config_setting_lookup_string(g, "review", &review);
	if (!id || !*id) {
		yj_diag_report(c->diag, s_file(c, g), s_line(g), "recipient '%s': dsa needs an id", r->id);
		return 0;
	}
	if (asprintf(&v, "%s%s%s", id, review ? "@" : "", review ? review : "") < 0)
		return YJ_ENOMEM;
	if (yj_dsa_parse(v, &id_len, &r->dsa_review) || id_len != strlen(id))
		yj_diag_report(c->diag, s_file(c, g), s_line(g),
			       "recipient '%s': dsa id must be 1-64 of [A-Za-z0-9._/-] and review a YYYY-MM-DD date", r->id);
	else if (!(r->dsa_id = strndup(v, id_len))) {
		free(v);
		return YJ_ENOMEM;
	}
	free(v);
	return 0;
}

static int s_parse_recipient(struct s_ctx *c, config_setting_t *g, struct yj_recipient *r)
{
	/* The core's keys; a recipient may carry besides only the settings of
	 * its own output (settings.h: recipient_settings). */
	static const struct s_key keys[] = {
		{ "id", CONFIG_TYPE_STRING },        { "kind", CONFIG_TYPE_STRING },
		{ "name", CONFIG_TYPE_STRING },      { "local_authorities", CONFIG_TYPE_ARRAY },
		{ "local_authority", CONFIG_TYPE_STRING }, { "suites", CONFIG_TYPE_ARRAY },
		{ "force", CONFIG_TYPE_STRING },     { "hours", CONFIG_TYPE_GROUP },
		{ "allow", CONFIG_TYPE_ARRAY },      { "legal_basis", CONFIG_TYPE_STRING },
		{ "transport", CONFIG_TYPE_STRING }, { "digest_times", CONFIG_TYPE_ARRAY },
		{ "dsa", CONFIG_TYPE_GROUP },
		{ NULL, 0 },
	};
	int rc = 0;
	r->output = -1;
	r->dsa_review = INT32_MIN;
	r->file = strdup(s_file(c, g));
	r->line = s_line(g);
	r->id = s_group_str(g, "id", "");
	r->name = s_group_str(g, "name", "");
	r->force = s_group_str(g, "force", "");
	r->legal_basis = s_group_str(g, "legal_basis", "Crime and Disorder Act 1998 s.115");
	r->transport = s_group_str(g, "transport", "none");
	if (!r->file || !r->id || !r->name || !r->force || !r->legal_basis || !r->transport)
		return YJ_ENOMEM;
	const struct yj_settings_owner *o = s_output(c, r);
	struct s_tab own = { o ? o->recipient_settings : NULL, o ? o->n_recipient_settings : 0, "" };
	s_check_keys(c, g, "a recipient", keys, &own, 1);
	char *kind = s_group_str(g, "kind", "");
	if (!kind)
		return YJ_ENOMEM;
	size_t k;
	for (k = 0; k < S_KINDS && strcmp(kind, s_kind_names[k]); k++)
		;
	if (k == S_KINDS)
		yj_diag_report(c->diag, r->file, r->line,
			       "recipient '%s': kind must be yjs, children_services, liaison_diversion, force, duty or officer", r->id);
	r->kind = (enum yj_rcpt_kind)(k % S_KINDS);
	free(kind);
	if ((rc = s_group_strlist(c, g, "local_authorities", &r->las)) || (rc = s_group_strlist(c, g, "suites", &r->suites)) ||
	    (rc = s_group_strlist(c, g, "allow", &r->allow)) ||
	    (rc = s_group_strlist(c, g, "digest_times", &r->digest_times)))
		return rc;
	config_setting_t *la = config_setting_get_member(g, "local_authority");
	if (la && config_setting_type(la) == CONFIG_TYPE_STRING && (rc = s_fill_strlist(&r->las, config_setting_get_string(la))))
		return rc;

	/* The id is what recipient expressions resolve to: its form is fixed per kind. */
	char want[64] = "";
	if (r->kind == YJ_RCPT_CHILDREN_SERVICES && r->las.n == 1)
		snprintf(want, sizeof(want), "children_services:%s", r->las.v[0]);
	else if (r->kind == YJ_RCPT_FORCE)
		snprintf(want, sizeof(want), "force:%s", r->force);
	if (*want && strcmp(want, r->id))
		yj_diag_report(c->diag, r->file, r->line, "recipient '%s': the id of this %s recipient must be '%s'", r->id,
			       s_kind_names[r->kind], want);
	if (r->kind == YJ_RCPT_YJS && strncmp(r->id, "yjs:", 4))
		yj_diag_report(c->diag, r->file, r->line, "recipient '%s': a yjs id starts with 'yjs:'", r->id);
	if (r->kind == YJ_RCPT_LIAISON_DIVERSION && strncmp(r->id, "liaison_diversion:", 18))
		yj_diag_report(c->diag, r->file, r->line, "recipient '%s': a liaison_diversion id starts with 'liaison_diversion:'", r->id);
	if (r->kind == YJ_RCPT_CHILDREN_SERVICES && r->las.n != 1)
		yj_diag_report(c->diag, r->file, r->line, "recipient '%s': children_services needs exactly one local_authority", r->id);
	if (r->kind == YJ_RCPT_YJS && r->las.n == 0)
		yj_diag_report(c->diag, r->file, r->line, "recipient '%s': a yjs needs local_authorities", r->id);
	if (r->kind == YJ_RCPT_LIAISON_DIVERSION && r->suites.n == 0)
		yj_diag_report(c->diag, r->file, r->line, "recipient '%s': liaison_diversion needs suites", r->id);
	if (r->kind == YJ_RCPT_FORCE && !*r->force)
		yj_diag_report(c->diag, r->file, r->line, "recipient '%s': a force recipient needs force", r->id);
	for (size_t i = 0; i < r->digest_times.n; i++) {
		if (!s_hhmm_ok(r->digest_times.v[i]))
			yj_diag_report(c->diag, r->file, r->line, "recipient '%s': digest_times must be \"HH:MM\", not '%s'", r->id,
				       r->digest_times.v[i]);
	}
	config_setting_t *h = config_setting_get_member(g, "hours");
	if (h && config_setting_is_group(h)) {
		r->has_hours = 1;
		s_parse_hours(c, h, &r->hours);
	}
	config_setting_t *dsa = config_setting_get_member(g, "dsa");
	if (dsa && config_setting_is_group(dsa) && (rc = s_parse_dsa(c, dsa, r)))
		return rc;
	/* Last, so that check_recipient sees the whole recipient. */
	if (o)
		rc = s_parse_output_settings(c, g, r, o);
	return rc;
}

static int s_parse_rule(struct s_ctx *c, config_setting_t *g, struct yj_rule *r)
{
	static const struct s_key keys[] = {
		{ "id", CONFIG_TYPE_STRING },          { "feeds", CONFIG_TYPE_ARRAY },
		{ "custody_status", CONFIG_TYPE_ARRAY }, { "looked_after", CONFIG_TYPE_BOOL },
		{ "home_served", CONFIG_TYPE_BOOL },   { "home_other_force", CONFIG_TYPE_BOOL },
		{ "first_contact", CONFIG_TYPE_BOOL }, { "age_min", CONFIG_TYPE_INT },
		{ "age_max", CONFIG_TYPE_INT },        { "outcome_codes", CONFIG_TYPE_ARRAY },
		{ "markers", CONFIG_TYPE_ARRAY },      { "recipient", CONFIG_TYPE_STRING },
		{ "mode", CONFIG_TYPE_STRING },        { "section", CONFIG_TYPE_STRING },
		{ "legal_basis", CONFIG_TYPE_STRING }, { "max_age_s", CONFIG_TYPE_INT },
		{ "escalate_after_s", CONFIG_TYPE_INT }, { NULL, 0 },
	};
	static const char *const feeds[] = { "", "custody", "arrest", "voluntary_interview", "outcome" };
	static const char *const exprs[] = { "yjs:home", "yjs:suite", "children_services:responsible_la",
					     "children_services:home", "liaison_diversion:suite", "force:home" };
	static const char *const markers[] = { "live_investigation", "serious_offence", "mappa", "court_order" };
	static const char *const sections[] = { "", "custody", "arrest", "voluntary_interview", "outcome", "other_area", "new_child" };
	struct yj_strlist fl = { 0 };
	int rc = 0;
	const char *file = s_file(c, g);

	s_check_keys(c, g, "a rule", keys, NULL, 0);
	r->line = s_line(g);
	r->id = s_group_str(g, "id", "");
	r->recipient = s_group_str(g, "recipient", "");
	r->section = s_group_str(g, "section", "");
	r->legal_basis = s_group_str(g, "legal_basis", "");
	char *mode = s_group_str(g, "mode", "immediate");
	if (!r->id || !r->recipient || !r->section || !r->legal_basis || !mode) {
		free(mode);
		return YJ_ENOMEM;
	}
	if (!*r->id)
		yj_diag_report(c->diag, file, r->line, "a rule needs an id");
	if (!strcmp(mode, "digest"))
		r->mode = YJ_MODE_DIGEST;
	else if (strcmp(mode, "immediate"))
		yj_diag_report(c->diag, file, r->line, "rule '%s': mode must be immediate or digest", r->id);
	free(mode);
	size_t i;
	for (i = 0; i < 6 && strcmp(r->recipient, exprs[i]); i++)
		;
	if (i == 6)
		yj_diag_report(c->diag, file, r->line,
			       "rule '%s': recipient must be one of yjs:home, yjs:suite, children_services:responsible_la, "
			       "children_services:home, liaison_diversion:suite, force:home",
			       r->id);
	/* Only a YJS has a daily digest (interfaces.md §5): a digest rule for anyone else would gather
	 * events nobody is ever sent. */
	if (r->mode == YJ_MODE_DIGEST && i < 6 && strncmp(r->recipient, "yjs:", 4))
		yj_diag_report(c->diag, file, r->line, "rule '%s': mode digest needs a yjs: recipient (yjs:home or yjs:suite)",
			       r->id);
	for (i = 0; i < 7 && strcmp(r->section, sections[i]); i++)
		;
	if (i == 7)
		yj_diag_report(c->diag, file, r->line, "rule '%s': unknown digest section '%s'", r->id, r->section);
	if ((rc = s_group_strlist(c, g, "feeds", &fl)))
		return rc;
	for (size_t j = 0; j < fl.n; j++) {
		size_t f;
		for (f = 1; f < 5 && strcmp(fl.v[j], feeds[f]); f++)
			;
		if (f == 5)
			yj_diag_report(c->diag, file, r->line, "rule '%s': unknown feed '%s'", r->id, fl.v[j]);
		else
			r->feeds |= 1u << f;
	}
	yj_strlist_free(&fl);
	if ((rc = s_group_strlist(c, g, "custody_status", &r->custody_status)) || (rc = s_group_strlist(c, g, "markers", &r->markers)))
		return rc;
	for (size_t j = 0; j < r->markers.n; j++) {
		for (i = 0; i < 4 && strcmp(r->markers.v[j], markers[i]); i++)
			;
		if (i == 4)
			yj_diag_report(c->diag, file, r->line, "rule '%s': unknown marker '%s'", r->id, r->markers.v[j]);
	}
	r->looked_after = s_group_tri(g, "looked_after");
	r->home_served = s_group_tri(g, "home_served");
	r->home_other_force = s_group_tri(g, "home_other_force");
	r->first_contact = s_group_tri(g, "first_contact");
	r->age_min = 0;
	r->age_max = 99;
	config_setting_lookup_int(g, "age_min", &r->age_min);
	config_setting_lookup_int(g, "age_max", &r->age_max);
	/* routing.md "No stale notices" and "Nobody unreached": 12 h, and 15
	 * minutes for a looked-after child or a PACE transfer, an hour otherwise. */
	int v = 43200;
	config_setting_lookup_int(g, "max_age_s", &v);
	if (v < 0)
		yj_diag_report(c->diag, file, r->line, "rule '%s': max_age_s must be 0 (no limit) or more", r->id);
	r->max_age_s = v;
	v = !strcmp(r->id, "lac_in_custody") || !strcmp(r->id, "pace_transfer") ? 900 : (int)c->escalate_default_s;
	config_setting_lookup_int(g, "escalate_after_s", &v);
	if (v < 60)
		yj_diag_report(c->diag, file, r->line, "rule '%s': escalate_after_s must be 60 or more", r->id);
	r->escalate_after_s = v;
	config_setting_t *oc = config_setting_get_member(g, "outcome_codes");
	if (oc && (config_setting_type(oc) == CONFIG_TYPE_ARRAY || config_setting_type(oc) == CONFIG_TYPE_LIST)) {
		int n = config_setting_length(oc);
		r->outcome_codes = calloc((size_t)n + 1, sizeof(int));
		if (!r->outcome_codes)
			return YJ_ENOMEM;
		for (int j = 0; j < n; j++) {
			config_setting_t *e = config_setting_get_elem(oc, (unsigned)j);
			if (config_setting_type(e) != CONFIG_TYPE_INT)
				yj_diag_report(c->diag, s_file(c, e), s_line(e), "rule '%s': outcome_codes are integers", r->id);
			else
				r->outcome_codes[r->n_outcome_codes++] = config_setting_get_int(e);
		}
	}
	return 0;
}

static int s_parse_list(struct s_ctx *c, config_t *cf, const char *name, size_t elem, void **out, size_t *n,
			int (*fn)(struct s_ctx *, config_setting_t *, void *))
{
	config_setting_t *l = config_lookup(cf, name);
	if (!l)
		return 0;
	if (config_setting_type(l) != CONFIG_TYPE_LIST) {
		yj_diag_report(c->diag, s_file(c, l), s_line(l), "'%s' must be a list of groups: %s = ( { ... }, ... );", name, name);
		return 0;
	}
	int len = config_setting_length(l);
	*out = calloc((size_t)len + 1, elem);
	if (!*out)
		return YJ_ENOMEM;
	for (int i = 0; i < len; i++) {
		config_setting_t *g = config_setting_get_elem(l, (unsigned)i);
		if (!config_setting_is_group(g)) {
			yj_diag_report(c->diag, s_file(c, g), s_line(g), "each of '%s' must be a group { ... }", name);
			continue;
		}
		int rc = fn(c, g, (char *)*out + *n * elem);
		(*n)++;
		if (rc)
			return rc;
	}
	return 0;
}

static int s_recipient_fn(struct s_ctx *c, config_setting_t *g, void *r) { return s_parse_recipient(c, g, r); }
static int s_rule_fn(struct s_ctx *c, config_setting_t *g, void *r) { return s_parse_rule(c, g, r); }

/* routing.md "Practice rules": the duty recipient, the officers table and
 * the markers that hold must name what exists. */
static void s_check_practice(struct s_ctx *c, config_t *cf, const struct yj_config *cfg)
{
#define AT(path) s_file(c, config_lookup(cf, path)), s_line(config_lookup(cf, path))
	if (*cfg->deployment_duty) {
		const struct yj_recipient *d = yj_config_recipient(cfg, cfg->deployment_duty);
		if (!d)
			yj_diag_report(c->diag, AT("deployment.duty"), "'deployment.duty' names '%s', which no recipient declares",
				       cfg->deployment_duty);
		else if (d->kind != YJ_RCPT_DUTY)
			yj_diag_report(c->diag, AT("deployment.duty"), "'deployment.duty': recipient '%s' must be of kind duty",
				       d->id);
	}
	static const char *const markers[] = { "live_investigation", "serious_offence", "mappa", "court_order" };
	for (size_t i = 0; i < cfg->holds_markers.n; i++) {
		size_t k;
		for (k = 0; k < 4 && strcmp(cfg->holds_markers.v[i], markers[k]); k++)
			;
		if (k == 4)
			yj_diag_report(c->diag, AT("holds.markers"),
				       "'holds.markers': unknown marker '%s' (live_investigation, serious_offence, mappa, court_order)",
				       cfg->holds_markers.v[i]);
	}
	const struct yj_board_pack *bp = cfg->board_packs.items;
	for (size_t i = 0; i < cfg->board_packs.n; i++) {
		const struct yj_recipient *sr = yj_config_recipient(cfg, bp[i].scope);
		if (strcmp(bp[i].scope, "force") && (!sr || sr->kind != YJ_RCPT_YJS))
			yj_diag_report(c->diag, c->label, cfg->board_packs.lines[i],
				       "board_packs: scope '%s' must be a yjs recipient's id or \"force\"", bp[i].scope);
		const struct yj_recipient *to = yj_config_recipient(cfg, bp[i].recipient);
		if (!to)
			yj_diag_report(c->diag, c->label, cfg->board_packs.lines[i],
				       "board_packs: recipient '%s' is not declared in recipients", bp[i].recipient);
		else if (!strcmp(to->transport, "none"))
			yj_diag_report(c->diag, c->label, cfg->board_packs.lines[i],
				       "board_packs: recipient '%s' has transport none: the pack could never be sent", bp[i].recipient);
		if (!s_hhmm_ok(bp[i].time))
			yj_diag_report(c->diag, c->label, cfg->board_packs.lines[i], "board_packs: time must be \"HH:MM\", not '%s'",
				       bp[i].time);
	}
	const struct yj_officer *o = cfg->officers.items;
	for (size_t i = 0; i < cfg->officers.n; i++) {
		const struct yj_recipient *r = yj_config_recipient(cfg, o[i].recipient);
		if (!*o[i].name)
			yj_diag_report(c->diag, c->label, cfg->officers.lines[i], "officers: an officer needs a name");
		if (!r)
			yj_diag_report(c->diag, c->label, cfg->officers.lines[i],
				       "officer '%s': recipient '%s' is not declared in recipients", o[i].name, o[i].recipient);
		else if (r->kind != YJ_RCPT_OFFICER && r->kind != YJ_RCPT_DUTY)
			yj_diag_report(c->diag, c->label, cfg->officers.lines[i],
				       "officer '%s': recipient '%s' must be of kind officer or duty", o[i].name, o[i].recipient);
	}
#undef AT
}

const struct yj_recipient *yj_config_duty(const struct yj_config *cfg)
{
	return *cfg->deployment_duty ? yj_config_recipient(cfg, cfg->deployment_duty) : NULL;
}

const char *yj_config_officer(const struct yj_config *cfg, const char *name)
{
	const struct yj_officer *o = cfg->officers.items;
	for (size_t i = 0; name && i < cfg->officers.n; i++) {
		if (!strcmp(o[i].name, name))
			return o[i].recipient;
	}
	return NULL;
}

static int s_parse_routing(struct s_ctx *c, config_t *cf, struct yj_config *cfg)
{
	int rc = s_parse_list(c, cf, "recipients", sizeof(struct yj_recipient), (void **)&cfg->recipients,
			      &cfg->n_recipients, s_recipient_fn);
	if (!rc)
		rc = s_parse_list(c, cf, "rules", sizeof(struct yj_rule), (void **)&cfg->rules, &cfg->n_rules, s_rule_fn);
	if (rc)
		return rc;
	for (size_t i = 0; i < cfg->n_recipients; i++) {
		for (size_t j = 0; j < i; j++) {
			if (!strcmp(cfg->recipients[i].id, cfg->recipients[j].id))
				yj_diag_report(c->diag, cfg->recipients[i].file, cfg->recipients[i].line,
					       "recipient '%s' is declared twice (first at line %d)", cfg->recipients[i].id,
					       cfg->recipients[j].line);
		}
	}
	for (size_t i = 0; i < cfg->n_rules; i++) {
		for (size_t j = 0; j < i; j++) {
			if (!strcmp(cfg->rules[i].id, cfg->rules[j].id))
				yj_diag_report(c->diag, c->label, cfg->rules[i].line, "rule '%s' is declared twice", cfg->rules[i].id);
		}
	}
	/* Every transport a config names must be able to deliver what the rules send (interfaces.md §3):
	 * a digest goes to a YJS at its digest_times, so a YJS without them would never be sent one. */
	const struct yj_rule *digest = NULL;
	for (size_t i = 0; i < cfg->n_rules && !digest; i++) {
		if (cfg->rules[i].mode == YJ_MODE_DIGEST)
			digest = &cfg->rules[i];
	}
	for (size_t i = 0; digest && i < cfg->n_recipients; i++) {
		const struct yj_recipient *r = &cfg->recipients[i];
		if (r->kind == YJ_RCPT_YJS && r->digest_times.n == 0)
			yj_diag_report(c->diag, r->file, r->line,
				       "recipient '%s': rule '%s' sends it a daily digest but it has no digest_times", r->id,
				       digest->id);
	}
	s_check_practice(c, cf, cfg);
	return 0;
}

/* --- the national directories: recipients the config does not declare --- */

/* Add the setting at dotted path below g (its groups made on the way). */
static config_setting_t *s_add_path(config_setting_t *g, const char *path, int type)
{
	char buf[256];
	snprintf(buf, sizeof(buf), "%s", path);
	char *p = buf, *dot;
	while ((dot = strchr(p, '.'))) {
		*dot = '\0';
		config_setting_t *next = config_setting_get_member(g, p);
		if (!next && !(next = config_setting_add(g, p, CONFIG_TYPE_GROUP)))
			return NULL;
		g = next;
		p = dot + 1;
	}
	return config_setting_add(g, p, type);
}

static int s_add_str(config_setting_t *g, const char *name, const char *v)
{
	config_setting_t *s = s_add_path(g, name, CONFIG_TYPE_STRING);
	return s && config_setting_set_string(s, v) == CONFIG_TRUE ? 0 : YJ_ENOMEM;
}

/* Every setting below s says it stands at line: each message about the
 * recipient then names the directory's row (the file is the context's
 * label). */
static void s_set_line(config_setting_t *s, int line)
{
	s->line = (unsigned)line;
	if (config_setting_is_aggregate(s)) {
		for (int i = 0; i < config_setting_length(s); i++)
			s_set_line(config_setting_get_elem(s, (unsigned)i), line);
	}
}

/* The recipient group a directory row stands for, as if the config had
 * declared it, so that one reader checks both. Its transport's settings
 * come from the owner's recipient table alone (the config knows no
 * transport): the address goes into its first required setting (a list
 * gets the out-of-hours address as well), secret_file into its first
 * secret file. */
static int s_directory_group(struct s_ctx *c, const struct yj_config *cfg, enum yj_directory_kind kind,
			     const struct yj_directory *d, const struct yj_directory_row *row,
			     const struct yj_settings_owner *o, config_setting_t *g)
{
	const struct yj_strlist *allow =
		kind == YJ_DIRECTORY_FORCE ? &cfg->directory_force_allow : &cfg->directory_children_services_allow;
	const struct yj_setting *addr = NULL, *secret = NULL;
	char id[64];
	int rc;

	snprintf(id, sizeof(id), "%s:%s", kind == YJ_DIRECTORY_FORCE ? "force" : "children_services", row->code);
	if ((rc = s_add_str(g, "id", id)) || (rc = s_add_str(g, "kind", kind == YJ_DIRECTORY_FORCE ? "force" : "children_services")) ||
	    (rc = s_add_str(g, "name", row->name)) ||
	    (rc = s_add_str(g, kind == YJ_DIRECTORY_FORCE ? "force" : "local_authority", row->code)) ||
	    (rc = s_add_str(g, "transport", row->transport)))
		return rc;
	config_setting_t *al = config_setting_add(g, "allow", CONFIG_TYPE_ARRAY);
	for (size_t i = 0; al && i < allow->n; i++) {
		if (!config_setting_set_string_elem(al, -1, allow->v[i]))
			return YJ_ENOMEM;
	}
	if (!al)
		return YJ_ENOMEM;
	if (*row->dsa) {
		const char *at = strchr(row->dsa, '@');
		char dsa_id[80];
		snprintf(dsa_id, sizeof(dsa_id), "%.*s", at ? (int)(at - row->dsa) : (int)strlen(row->dsa), row->dsa);
		if ((rc = s_add_str(g, "dsa.id", dsa_id)) || (at && (rc = s_add_str(g, "dsa.review", at + 1))))
			return rc;
	}
	for (size_t i = 0; i < o->n_recipient_settings; i++) {
		const struct yj_setting *t = &o->recipient_settings[i];
		if (!addr && !t->def && (t->type == YJ_SETTING_STR || t->type == YJ_SETTING_STRLIST))
			addr = t;
		if (!secret && t->type == YJ_SETTING_SECRET_FILE)
			secret = t;
	}
	if (!addr) {
		yj_diag_report(c->diag, d->label, row->line, "%s: transport %s takes no address", row->code, row->transport);
		return 0;
	}
	if (addr->type == YJ_SETTING_STRLIST) {
		config_setting_t *l = s_add_path(g, addr->name, CONFIG_TYPE_ARRAY);
		if (!l || !config_setting_set_string_elem(l, -1, row->address) ||
		    (*row->out_of_hours_address && !config_setting_set_string_elem(l, -1, row->out_of_hours_address)))
			return YJ_ENOMEM;
	} else {
		if ((rc = s_add_str(g, addr->name, row->address)))
			return rc;
		if (*row->out_of_hours_address)
			yj_diag_report(c->diag, d->label, row->line,
				       "%s: transport %s has one address: out_of_hours_address is for email", row->code,
				       row->transport);
	}
	if (*row->secret_file) {
		if (!secret)
			yj_diag_report(c->diag, d->label, row->line, "%s: transport %s takes no secret_file", row->code,
				       row->transport);
		else if ((rc = s_add_str(g, secret->name, row->secret_file)))
			return rc;
	}
	return 0;
}

/* One row with a transport, unless the config declares its id: config first. */
static int s_directory_row(struct s_ctx *c, struct yj_config *cfg, enum yj_directory_kind kind,
			   const struct yj_directory *d, const struct yj_directory_row *row)
{
	char id[64];
	const struct yj_settings_owner *o = NULL;
	config_t t;
	int rc = 0;

	snprintf(id, sizeof(id), "%s:%s", kind == YJ_DIRECTORY_FORCE ? "force" : "children_services", row->code);
	if (!*row->transport || yj_config_recipient(cfg, id))
		return 0;
	for (size_t i = 0; i < c->n_owners && !o; i++) {
		if (c->owners[i]->transport && !strcmp(c->owners[i]->transport, row->transport))
			o = c->owners[i];
	}
	if (!o) {
		size_t i;
		for (i = 0; i < sizeof(s_spec_transports) / sizeof(s_spec_transports[0]); i++) {
			if (!strcmp(row->transport, s_spec_transports[i]))
				break;
		}
		/* A table written for a fuller build: unroutable here, and said. */
		if (i < sizeof(s_spec_transports) / sizeof(s_spec_transports[0]))
			yj_diag_warn(c->diag, d->label, row->line,
				     "%s: transport '%s' has no output adapter in this build: %s stays unroutable", row->code,
				     row->transport, id);
		else
			yj_diag_report(c->diag, d->label, row->line, "%s: unknown transport '%s' (email or webhook, or empty)",
				       row->code, row->transport);
		return 0;
	}
	config_init(&t);
	config_setting_t *g = config_setting_add(config_root_setting(&t), "recipient", CONFIG_TYPE_GROUP);
	if (!g) {
		rc = YJ_ENOMEM;
		goto out;
	}
	int before = c->diag->count;
	if ((rc = s_directory_group(c, cfg, kind, d, row, o, g)) || c->diag->count > before)
		goto out;
	s_set_line(g, row->line);
	struct yj_recipient *nv = realloc(cfg->recipients, (cfg->n_recipients + 1) * sizeof(*nv));
	if (!nv) {
		rc = YJ_ENOMEM;
		goto out;
	}
	cfg->recipients = nv;
	struct yj_recipient *r = &cfg->recipients[cfg->n_recipients++]; /* counted first: freed if half read */
	memset(r, 0, sizeof(*r));
	const char *label = c->label;
	c->label = d->label;
	rc = s_parse_recipient(c, g, r);
	c->label = label;
	r->from_directory = 1;
out:
	config_destroy(&t);
	return rc;
}

/* routing.md "Reach everywhere": a rule's children_services:CODE or
 * force:CODE resolves through the config's recipients first, then the
 * directory's row. */
static int s_parse_directory(struct s_ctx *c, struct yj_config *cfg)
{
	char *dir = yj_config_reference_dir(cfg);
	int rc = 0;

	if (*cfg->reference_dir && !dir)
		return YJ_ENOMEM;
	for (int k = 0; k < 2 && !rc; k++) {
		struct yj_directory d;
		rc = yj_directory_load(dir, (enum yj_directory_kind)k, c->diag, &d);
		if (rc == YJ_ECONFIG)
			rc = 0; /* reported; its good rows still stand, for one --check to say everything */
		for (size_t i = 0; i < d.n && !rc; i++)
			rc = s_directory_row(c, cfg, (enum yj_directory_kind)k, &d, &d.rows[i]);
		yj_directory_free(&d);
	}
	free(dir);
	return rc;
}

static void s_free_routing(struct yj_config *cfg)
{
	for (size_t i = 0; i < cfg->n_recipients; i++) {
		struct yj_recipient *r = &cfg->recipients[i];
		if (r->output_settings) {
			/* Only ever set for an output among cfg's owners (s_parse_output_settings). */
			const struct yj_settings_owner *o = cfg->owners[r->output];
			s_free_settings(o->recipient_settings, o->n_recipient_settings, r->output_settings);
			free(r->output_settings);
		}
		free(r->id);
		free(r->name);
		free(r->force);
		free(r->legal_basis);
		free(r->transport);
		free(r->file);
		free(r->dsa_id);
		yj_strlist_free(&r->las);
		yj_strlist_free(&r->suites);
		yj_strlist_free(&r->allow);
		yj_strlist_free(&r->digest_times);
	}
	free(cfg->recipients);
	free(cfg->recipients_by_id);
	free(cfg->yjs_by_la);
	yj_strset_free(&cfg->recipient_ids);
	yj_strset_free(&cfg->yjs_las);
	for (size_t i = 0; i < cfg->n_rules; i++) {
		struct yj_rule *r = &cfg->rules[i];
		free(r->id);
		free(r->recipient);
		free(r->section);
		free(r->legal_basis);
		free(r->outcome_codes);
		yj_strlist_free(&r->custody_status);
		yj_strlist_free(&r->markers);
	}
	free(cfg->rules);
}

static int s_by_id(const void *a, const void *b, void *arg)
{
	const struct yj_recipient *rcpts = arg;
	size_t x = *(const size_t *)a, y = *(const size_t *)b;
	int c = strcmp(rcpts[x].id, rcpts[y].id);
	return c ? c : (x > y) - (x < y);
}

static int s_by_la(const void *a, const void *b)
{
	const struct yj_la_yjs *x = a, *y = b;
	int c = strcmp(x->la, y->la);
	return c ? c : (x->rcpt > y->rcpt) - (x->rcpt < y->rcpt);
}

static int s_index_routing(struct yj_config *cfg)
{
	size_t n = cfg->n_recipients, m = 0;
	if (!n)
		return 0;
	if (!(cfg->recipients_by_id = malloc(n * sizeof(*cfg->recipients_by_id))))
		return YJ_ENOMEM;
	for (size_t i = 0; i < n; i++) {
		cfg->recipients_by_id[i] = i;
		if (cfg->recipients[i].kind == YJ_RCPT_YJS)
			m += cfg->recipients[i].las.n;
	}
	qsort_r(cfg->recipients_by_id, n, sizeof(*cfg->recipients_by_id), s_by_id, cfg->recipients);
	if (m && !(cfg->yjs_by_la = malloc(m * sizeof(*cfg->yjs_by_la))))
		return YJ_ENOMEM;
	for (size_t i = 0; i < n; i++) {
		const struct yj_recipient *r = &cfg->recipients[i];
		for (size_t j = 0; r->kind == YJ_RCPT_YJS && j < r->las.n; j++)
			cfg->yjs_by_la[cfg->n_yjs_by_la++] = (struct yj_la_yjs){ r->las.v[j], i };
	}
	if (m)
		qsort(cfg->yjs_by_la, m, sizeof(*cfg->yjs_by_la), s_by_la);
	/* Hash lookups on top (the first of equal keys kept, as the bsearch
	 * finds it); without the memory for them, the bsearch alone. */
	if (n <= UINT32_MAX && m <= UINT32_MAX && !yj_strset_init(&cfg->recipient_ids, n) &&
	    !yj_strset_init(&cfg->yjs_las, m)) {
		int rc = 0;
		for (size_t i = 0; i < n && (!rc || rc == YJ_EEXIST); i++)
			rc = yj_strset_add(&cfg->recipient_ids, cfg->recipients[cfg->recipients_by_id[i]].id, (uint32_t)i);
		for (size_t i = 0; i < m && (!rc || rc == YJ_EEXIST); i++)
			rc = yj_strset_add(&cfg->yjs_las, cfg->yjs_by_la[i].la, (uint32_t)i);
		if (rc && rc != YJ_EEXIST) {
			yj_strset_free(&cfg->recipient_ids);
			yj_strset_free(&cfg->yjs_las);
		}
	} else {
		yj_strset_free(&cfg->recipient_ids);
	}
	return 0;
}

const struct yj_recipient *yj_config_recipient(const struct yj_config *cfg, const char *id)
{
	if (!id)
		return NULL;
	if (!cfg->recipients_by_id) {
		for (size_t i = 0; i < cfg->n_recipients; i++) {
			if (!strcmp(cfg->recipients[i].id, id))
				return &cfg->recipients[i];
		}
		return NULL;
	}
	if (cfg->recipient_ids.n) {
		int64_t i = yj_strset_get(&cfg->recipient_ids, id);
		return i < 0 ? NULL : &cfg->recipients[cfg->recipients_by_id[i]];
	}
	/* The first position among equal ids: the lower bound. */
	size_t lo = 0, hi = cfg->n_recipients;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (strcmp(cfg->recipients[cfg->recipients_by_id[mid]].id, id) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo < cfg->n_recipients && !strcmp(cfg->recipients[cfg->recipients_by_id[lo]].id, id))
		return &cfg->recipients[cfg->recipients_by_id[lo]];
	return NULL;
}

const struct yj_recipient *yj_config_yjs_for_la(const struct yj_config *cfg, const char *la)
{
	if (!la)
		return NULL;
	if (!cfg->recipients_by_id) {
		for (size_t i = 0; i < cfg->n_recipients; i++) {
			const struct yj_recipient *r = &cfg->recipients[i];
			for (size_t j = 0; r->kind == YJ_RCPT_YJS && j < r->las.n; j++) {
				if (!strcmp(r->las.v[j], la))
					return r;
			}
		}
		return NULL;
	}
	if (cfg->yjs_las.n) {
		int64_t i = yj_strset_get(&cfg->yjs_las, la);
		return i < 0 ? NULL : &cfg->recipients[cfg->yjs_by_la[i].rcpt];
	}
	size_t lo = 0, hi = cfg->n_yjs_by_la;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (strcmp(cfg->yjs_by_la[mid].la, la) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo < cfg->n_yjs_by_la && !strcmp(cfg->yjs_by_la[lo].la, la))
		return &cfg->recipients[cfg->yjs_by_la[lo].rcpt];
	return NULL;
}

/* The config tree as a canonical byte stream: names, types and values in
 * order, so the same settings give the same hash whatever the layout. */
static void s_hash_setting(crypto_generichash_state *h, const config_setting_t *st)
{
	const char *name = config_setting_name(st);
	unsigned char type = (unsigned char)config_setting_type(st);
	crypto_generichash_update(h, (const unsigned char *)(name ? name : ""), name ? strlen(name) + 1 : 1);
	crypto_generichash_update(h, &type, 1);
	switch (config_setting_type(st)) {
	case CONFIG_TYPE_INT:
	case CONFIG_TYPE_INT64: {
		long long v = config_setting_get_int64(st);
		crypto_generichash_update(h, (const unsigned char *)&v, sizeof(v));
		break;
	}
	case CONFIG_TYPE_FLOAT: {
		double v = config_setting_get_float(st);
		crypto_generichash_update(h, (const unsigned char *)&v, sizeof(v));
		break;
	}
	case CONFIG_TYPE_BOOL: {
		unsigned char v = (unsigned char)config_setting_get_bool(st);
		crypto_generichash_update(h, &v, 1);
		break;
	}
	case CONFIG_TYPE_STRING: {
		const char *v = config_setting_get_string(st);
		crypto_generichash_update(h, (const unsigned char *)(v ? v : ""), v ? strlen(v) + 1 : 1);
		break;
	}
	default: {
		int n = config_setting_length(st);
		unsigned char len[4] = { (unsigned char)(n >> 24), (unsigned char)(n >> 16), (unsigned char)(n >> 8),
					 (unsigned char)n };
		crypto_generichash_update(h, len, sizeof(len));
		for (int i = 0; i < n; i++)
			s_hash_setting(h, config_setting_get_elem(st, (unsigned)i));
	}
	}
}

static void s_hash_config(config_t *cf, struct yj_config *cfg)
{
	crypto_generichash_state whole;
	const config_setting_t *root = config_root_setting(cf);
	crypto_generichash_init(&whole, NULL, 0, sizeof(cfg->hash));
	s_hash_setting(&whole, root);
	crypto_generichash_final(&whole, cfg->hash, sizeof(cfg->hash));
	cfg->n_sections = 0;
	for (int i = 0; i < config_setting_length(root) && cfg->n_sections < YJ_CONFIG_SECTIONS_MAX; i++) {
		const config_setting_t *st = config_setting_get_elem(root, (unsigned)i);
		struct yj_config_section_hash *sh = &cfg->sections[cfg->n_sections++];
		crypto_generichash_state h;
		snprintf(sh->name, sizeof(sh->name), "%s", config_setting_name(st) ? config_setting_name(st) : "?");
		crypto_generichash_init(&h, NULL, 0, sizeof(sh->hash));
		s_hash_setting(&h, st);
		crypto_generichash_final(&h, sh->hash, sizeof(sh->hash));
	}
}

int yj_config_load(const char *file, const char *const *sets, size_t n_sets,
		   const struct yj_settings_owner *const *owners, struct yj_diag *diag, struct yj_config **out)
{
	config_t cf;
	struct yj_config *cfg = NULL;
	int rc = 0;
	int before = diag->count;
	struct s_ctx c = { file ? file : "yjlinkd.conf (embedded)", diag, owners, 0, NULL, 0, 3600 };

	while (owners && owners[c.n_owners])
		c.n_owners++;
	config_init(&cf);
	/* No silent type coercion: "64" is not 64. */
	config_set_options(&cf, 0);
	int ok;
	if (file) {
		ok = config_read_file(&cf, file);
	} else {
		const struct yj_embedded_file *ef = yj_embedded_find("yjlinkd.conf");
		ok = ef ? config_read_string(&cf, ef->data) : CONFIG_FALSE;
	}
	if (ok != CONFIG_TRUE) {
		if (config_error_type(&cf) == CONFIG_ERR_FILE_IO)
			yj_diag_report(diag, c.label, 0, "cannot read: %s", strerror(errno));
		else
			yj_diag_report(diag, config_error_file(&cf) ? config_error_file(&cf) : c.label,
				       config_error_line(&cf), "%s", config_error_text(&cf));
		rc = YJ_ECONFIG;
		goto out;
	}
	/* What the top level may hold: the core's settings and each owner's section. */
	if (!(c.tabs = calloc(c.n_owners + 1, sizeof(*c.tabs)))) {
		rc = YJ_ENOMEM;
		goto out;
	}
	c.tabs[c.n_tabs++] = (struct s_tab){ s_table, S_N, "" };
	for (size_t i = 0; i < c.n_owners; i++) {
		const struct yj_settings_owner *o = owners[i];
		if (o->settings && o->n_settings)
			c.tabs[c.n_tabs++] = (struct s_tab){ o->settings, o->n_settings, o->section ? o->section : "" };
	}
	for (size_t i = 0; i < n_sets; i++)
		s_apply_set(&c, &cf, sets[i]);
	s_walk_unknown(&c, config_root_setting(&cf));

	cfg = calloc(1, sizeof(*cfg));
	if (!cfg || !(cfg->source = strdup(c.label))) {
		rc = YJ_ENOMEM;
		goto out;
	}
	cfg->owners = owners;
	cfg->n_owners = c.n_owners;
	if (c.n_owners && !(cfg->owner_settings = calloc(c.n_owners, sizeof(*cfg->owner_settings)))) {
		rc = YJ_ENOMEM;
		goto out;
	}
	struct s_scope core = { config_root_setting(&cf), "", "", c.label, 0 };
	for (size_t i = 0; i < S_N && !rc; i++)
		rc = s_extract(&c, &core, &s_table[i], cfg);
	for (size_t i = 0; i < c.n_owners && !rc; i++)
		rc = s_parse_section(&c, &cf, cfg, i);
	if (rc)
		goto out;
	if (cfg->ingest_forces.n == 0)
		rc = s_fill_strlist(&cfg->ingest_forces, cfg->deployment_force);
	c.escalate_default_s = cfg->delivery_escalate_after_s;
	if (!rc)
		rc = s_parse_routing(&c, &cf, cfg);
	if (!rc)
		rc = s_parse_directory(&c, cfg);
	if (!rc)
		rc = s_index_routing(cfg);
	if (rc)
		goto out;
	s_check(&c, &cf, cfg);
	if (diag->count > before)
		rc = YJ_ECONFIG;
	s_hash_config(&cf, cfg);
out:
	config_destroy(&cf);
	free(c.tabs);
	if (rc)
		yj_config_free(&cfg);
	*out = cfg;
	return rc;
}

void yj_config_free(struct yj_config **pcfg)
{
	struct yj_config *cfg = pcfg ? *pcfg : NULL;
	if (!cfg)
		return;
	s_free_settings(s_table, S_N, cfg);
	for (size_t i = 0; cfg->owner_settings && i < cfg->n_owners; i++) {
		const struct yj_settings_owner *o = cfg->owners[i];
		s_free_settings(o->settings, o->n_settings, cfg->owner_settings[i]);
		free(cfg->owner_settings[i]);
	}
	free(cfg->owner_settings);
	s_free_routing(cfg);
	free(cfg->source);
	free(cfg);
	*pcfg = NULL;
}

const void *yj_config_settings(const struct yj_config *cfg, const struct yj_settings_owner *o)
{
	for (size_t i = 0; cfg->owner_settings && i < cfg->n_owners; i++) {
		if (cfg->owners[i] == o)
			return cfg->owner_settings[i];
	}
	return NULL;
}

const struct yj_settings_owner *yj_config_output(const struct yj_config *cfg, const struct yj_recipient *r)
{
	if (r->output < 0 || (size_t)r->output >= cfg->n_owners)
		return NULL;
	return cfg->owners[r->output];
}

/* One row per setting; a list of groups is followed by a row per member of
 * its groups, named `list[].member`, so the reference documents both. */
static void s_print_rows(FILE *out, const struct yj_setting *t, size_t n, const char *prefix)
{
	for (size_t i = 0; i < n; i++) {
		fprintf(out, "| `%s%s%s` | %s | ", prefix, *prefix ? "." : "", t[i].name, s_type_name(t[i].type));
		const struct yj_setting_items *it = s_items(&t[i]);
		if (t[i].type == YJ_SETTING_GROUPLIST)
			fprintf(out, "%s", t[i].min > 0 ? "required" : "`()`");
		else if (s_def(&t[i]))
			fprintf(out, "`%s`", s_def(&t[i]));
		else
			fprintf(out, "required");
		fprintf(out, " | %s |\n", t[i].doc ? t[i].doc : "");
		if (it) {
			char sub[256];
			snprintf(sub, sizeof(sub), "%s%s%s[]", prefix, *prefix ? "." : "", t[i].name);
			s_print_rows(out, it->v, it->n, sub);
		}
	}
}

static void s_print_table(FILE *out, const struct yj_setting *t, size_t n, const char *prefix)
{
	fprintf(out, "| setting | type | default | meaning |\n|---|---|---|---|\n");
	s_print_rows(out, t, n, prefix);
}

void yj_config_print_reference(FILE *out, const struct yj_settings_owner *const *owners)
{
	s_print_table(out, s_table, S_N, "");
	for (size_t i = 0; owners && owners[i]; i++) {
		const struct yj_settings_owner *o = owners[i];
		if (!o->settings || !o->n_settings)
			continue;
		if (o->section)
			fprintf(out, "\n`%s` settings (%s):\n\n", o->section, o->name);
		else
			fprintf(out, "\nsettings of %s:\n\n", o->name);
		s_print_table(out, o->settings, o->n_settings, o->section ? o->section : "");
	}
	for (size_t i = 0; owners && owners[i]; i++) {
		const struct yj_settings_owner *o = owners[i];
		if (!o->transport || !o->recipient_settings || !o->n_recipient_settings)
			continue;
		fprintf(out, "\nrecipient settings of transport `%s` (%s), inside each recipient `{ ... }` with "
			     "`transport = \"%s\"`:\n\n",
			o->transport, o->name, o->transport);
		s_print_table(out, o->recipient_settings, o->n_recipient_settings, "");
	}
}

char *yj_config_reference_dir(const struct yj_config *cfg)
{
	const char *d = cfg->reference_dir;
	if (!d || !*d)
		return NULL;
	if (d[0] == '/' || !strchr(cfg->source, '/'))
		return strdup(d);
	const char *slash = strrchr(cfg->source, '/');
	char *r = NULL;
	if (asprintf(&r, "%.*s/%s", (int)(slash - cfg->source), cfg->source, d) < 0)
		return NULL;
	return r;
}
