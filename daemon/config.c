/* config.c: see config.h. */
#include "config.h"

#include <ctype.h>
#include <libconfig.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "embedded.h"
#include "err.h"

enum s_type { S_STR, S_INT, S_BOOL, S_STRLIST };

struct s_setting {
	enum s_type type;
	const char *path;       /* dotted libconfig path */
	size_t offset;          /* into struct yj_config */
	const char *def;        /* default, as text; NULL = required */
	int64_t min, max;       /* bounds for S_INT */
	const char *doc;        /* one line for the README reference */
};

#define OFF(f) offsetof(struct yj_config, f)

static const struct s_setting s_table[] = {
	{ S_STR, "deployment.id", OFF(deployment_id), "tvp", 0, 0,
	  "short id of this deployment: prefix of notification ids (`[a-z0-9-]`, 1-32)" },
	{ S_STR, "deployment.name", OFF(deployment_name), "yjlink", 0, 0, "display name in status and digests" },
	{ S_STR, "deployment.force", OFF(deployment_force), "E23000029", 0, 0,
	  "GSS code of the police force area served (must be in forces.csv)" },
	{ S_STR, "store.path", OFF(store_path), "/var/lib/yjlink/store", 0, 0, "LMDB directory (created 0700)" },
	{ S_INT, "store.map_size_mb", OFF(store_map_size_mb), "64", 1, INT64_C(1) << 30,
	  "initial LMDB map size, MiB; grown automatically when full" },
	{ S_INT, "store.max_map_size_mb", OFF(store_max_map_size_mb), "262144", 1, INT64_C(1) << 30,
	  "cap on map growth, MiB; at the cap ingest answers RETRY" },
	{ S_STR, "ingest.endpoint", OFF(ingest_endpoint), "tcp://127.0.0.1:7401", 0, 0, "YJL1 ROUTER endpoint (bind)" },
	{ S_INT, "ingest.max_message_bytes", OFF(ingest_max_message_bytes), "65536", 256, 16 << 20,
	  "largest payload accepted; larger is REJECT too_large" },
	{ S_INT, "ingest.batch_max", OFF(ingest_batch_max), "8192", 1, 1 << 20,
	  "most requests in one group commit" },
	{ S_INT, "ingest.quarantine_max_bytes", OFF(ingest_quarantine_max_bytes), "1048576", 0, 64 << 20,
	  "raw bytes kept of each quarantined message" },
	{ S_STRLIST, "ingest.forces", OFF(ingest_forces), "", 0, 0,
	  "force codes an unauthenticated (loopback) sender may send for; empty = deployment.force" },
	{ S_BOOL, "ingest.insecure", OFF(ingest_insecure), "false", 0, 0,
	  "allow a non-loopback ingest endpoint without CURVE (never in production)" },
	{ S_STR, "notify.endpoint", OFF(notify_endpoint), "tcp://127.0.0.1:7402", 0, 0, "YJN1 ROUTER endpoint (bind)" },
	{ S_STR, "control.endpoint", OFF(control_endpoint), "ipc:///run/yjlink/control.sock", 0, 0,
	  "yjlinkctl endpoint (ipc://, mode 0660)" },
	{ S_STR, "metrics.endpoint", OFF(metrics_endpoint), "127.0.0.1:9402", 0, 0,
	  "HOST:PORT of /metrics and /healthz; empty disables" },
	{ S_INT, "retention.event_days", OFF(retention_event_days), "730", 1, 36500, "events older than this are erased" },
	{ S_INT, "retention.audit_days", OFF(retention_audit_days), "2190", 1, 36500, "audit records kept this long" },
	{ S_STR, "reference.dir", OFF(reference_dir), "", 0, 0,
	  "directory of reference CSV tables (relative to the config file); empty = compiled-in copies" },
	{ S_INT, "custody.overnight_hours", OFF(custody_overnight_hours), "4", 1, 24,
	  "hours detained within the overnight period that make a child held overnight" },
	{ S_STR, "custody.overnight_from", OFF(custody_overnight_from), "00:00", 0, 0, "start of the overnight period, local" },
	{ S_STR, "custody.overnight_to", OFF(custody_overnight_to), "08:00", 0, 0, "end of the overnight period, local" },
	{ S_STR, "log.level", OFF(log_level), "info", 0, 0, "err, warning, notice, info or debug" },
	{ S_BOOL, "testing.clock_control", OFF(testing_clock_control), "false", 0, 0,
	  "let yjlinkctl move the daemon's clock (tests only)" },
};
#define S_N (sizeof(s_table) / sizeof(s_table[0]))

static const char *s_type_name(enum s_type t)
{
	switch (t) {
	case S_STR: return "a string";
	case S_INT: return "an integer";
	case S_BOOL: return "true or false";
	case S_STRLIST: return "a list of strings";
	}
	return "?";
}

static const struct s_setting *s_find(const char *path)
{
	for (size_t i = 0; i < S_N; i++) {
		if (strcmp(s_table[i].path, path) == 0)
			return &s_table[i];
	}
	return NULL;
}

/* A group is known when some setting lives below it. */
static int s_known_group(const char *path)
{
	size_t len = strlen(path);
	for (size_t i = 0; i < S_N; i++) {
		if (strncmp(s_table[i].path, path, len) == 0 && s_table[i].path[len] == '.')
			return 1;
	}
	return 0;
}

struct s_ctx {
	const char *label;     /* file name for settings with no source file */
	struct yj_diag *diag;
};

static const char *s_file(const struct s_ctx *c, const config_setting_t *s)
{
	const char *f = s ? config_setting_source_file(s) : NULL;
	return f ? f : c->label;
}

static int s_line(const config_setting_t *s) { return s ? (int)config_setting_source_line(s) : 0; }

static void s_walk_unknown(struct s_ctx *c, config_setting_t *group, const char *prefix)
{
	int n = config_setting_length(group);
	for (int i = 0; i < n; i++) {
		config_setting_t *s = config_setting_get_elem(group, (unsigned)i);
		const char *name = config_setting_name(s);
		char path[256];
		snprintf(path, sizeof(path), "%s%s%s", prefix, *prefix ? "." : "", name ? name : "?");
		if (config_setting_is_group(s)) {
			if (s_known_group(path))
				s_walk_unknown(c, s, path);
			else
				yj_diag_report(c->diag, s_file(c, s), s_line(s), "unknown setting '%s'", path);
		} else if (!s_find(path)) {
			yj_diag_report(c->diag, s_file(c, s), s_line(s), "unknown setting '%s'", path);
		}
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

/* --set KEY=VALUE: replace (or add) one scalar, typed by the table. */
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
	const struct s_setting *t = s_find(key);
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
	case S_STR:
		s = config_setting_add(parent, leaf, CONFIG_TYPE_STRING);
		if (s)
			config_setting_set_string(s, val);
		break;
	case S_INT:
		if (s_parse_int(val, &i)) {
			yj_diag_report(c->diag, "--set", 0, "'%s' must be %s, not '%s'", key, s_type_name(t->type), val);
			return;
		}
		s = config_setting_add(parent, leaf, CONFIG_TYPE_INT64);
		if (s)
			config_setting_set_int64(s, i);
		break;
	case S_BOOL:
		if (s_parse_bool(val, &b)) {
			yj_diag_report(c->diag, "--set", 0, "'%s' must be %s, not '%s'", key, s_type_name(t->type), val);
			return;
		}
		s = config_setting_add(parent, leaf, CONFIG_TYPE_BOOL);
		if (s)
			config_setting_set_bool(s, b);
		break;
	case S_STRLIST: {
		s = config_setting_add(parent, leaf, CONFIG_TYPE_ARRAY);
		char *copy = strdup(val), *save = NULL;
		for (char *tok = copy ? strtok_r(copy, ",", &save) : NULL; tok; tok = strtok_r(NULL, ",", &save))
			config_setting_set_string_elem(s, -1, tok);
		free(copy);
		break;
	}
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

/* Read one table setting into cfg (default when absent). */
static int s_extract(struct s_ctx *c, config_t *cf, const struct s_setting *t, struct yj_config *cfg)
{
	void *field = (char *)cfg + t->offset;
	config_setting_t *s = config_lookup(cf, t->path);
	int rc = 0;

	if (!s) {
		switch (t->type) {
		case S_STR: return s_strdup_into(field, t->def);
		case S_INT: return s_parse_int(t->def, field);
		case S_BOOL: return s_parse_bool(t->def, field);
		case S_STRLIST: return s_fill_strlist(field, t->def);
		}
	}
	int st = config_setting_type(s);
	switch (t->type) {
	case S_STR:
		if (st != CONFIG_TYPE_STRING)
			goto wrong;
		return s_strdup_into(field, config_setting_get_string(s));
	case S_INT: {
		if (st != CONFIG_TYPE_INT && st != CONFIG_TYPE_INT64)
			goto wrong;
		long long v = config_setting_get_int64(s);
		if (v < t->min || v > t->max)
			yj_diag_report(c->diag, s_file(c, s), s_line(s), "'%s' must be between %lld and %lld, not %lld",
				       t->path, (long long)t->min, (long long)t->max, v);
		*(int64_t *)field = v;
		return 0;
	}
	case S_BOOL:
		if (st != CONFIG_TYPE_BOOL)
			goto wrong;
		*(int *)field = config_setting_get_bool(s);
		return 0;
	case S_STRLIST: {
		if (st != CONFIG_TYPE_ARRAY && st != CONFIG_TYPE_LIST)
			goto wrong;
		struct yj_strlist *l = field;
		int n = config_setting_length(s);
		for (int i = 0; i < n && !rc; i++) {
			config_setting_t *e = config_setting_get_elem(s, (unsigned)i);
			if (config_setting_type(e) != CONFIG_TYPE_STRING) {
				yj_diag_report(c->diag, s_file(c, e), s_line(e), "'%s' must be %s", t->path,
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
		return rc;
	}
	}
wrong:
	yj_diag_report(c->diag, s_file(c, s), s_line(s), "'%s' must be %s", t->path, s_type_name(t->type));
	return 0;
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
	if (!s_loopback(cfg->ingest_endpoint) && !cfg->ingest_insecure)
		yj_diag_report(c->diag, AT("ingest.endpoint"),
			       "'ingest.endpoint' %s is not loopback: configure CURVE, or say ingest.insecure = true",
			       cfg->ingest_endpoint);
	if (!s_loopback(cfg->notify_endpoint) && !cfg->ingest_insecure)
		yj_diag_report(c->diag, AT("notify.endpoint"),
			       "'notify.endpoint' %s is not loopback: configure CURVE, or say ingest.insecure = true",
			       cfg->notify_endpoint);
	if (*cfg->metrics_endpoint && !strrchr(cfg->metrics_endpoint, ':'))
		yj_diag_report(c->diag, AT("metrics.endpoint"), "'metrics.endpoint' must be HOST:PORT, not '%s'",
			       cfg->metrics_endpoint);
	if (!*cfg->store_path)
		yj_diag_report(c->diag, AT("store.path"), "'store.path' must not be empty");
	if (cfg->store_max_map_size_mb < cfg->store_map_size_mb)
		yj_diag_report(c->diag, AT("store.max_map_size_mb"),
			       "'store.max_map_size_mb' (%lld) is below 'store.map_size_mb' (%lld)",
			       (long long)cfg->store_max_map_size_mb, (long long)cfg->store_map_size_mb);
	if (!s_hhmm_ok(cfg->custody_overnight_from))
		yj_diag_report(c->diag, AT("custody.overnight_from"), "'custody.overnight_from' must be HH:MM");
	if (!s_hhmm_ok(cfg->custody_overnight_to))
		yj_diag_report(c->diag, AT("custody.overnight_to"), "'custody.overnight_to' must be HH:MM");
	static const char *levels[] = { "err", "warning", "notice", "info", "debug" };
	int lv_ok = 0;
	for (size_t i = 0; i < 5; i++)
		lv_ok |= !strcmp(cfg->log_level, levels[i]);
	if (!lv_ok)
		yj_diag_report(c->diag, AT("log.level"), "'log.level' must be err, warning, notice, info or debug");
#undef AT
}

int yj_config_load(const char *file, const char *const *sets, size_t n_sets, struct yj_diag *diag,
		   struct yj_config **out)
{
	config_t cf;
	struct yj_config *cfg = NULL;
	int rc = 0;
	int before = diag->count;
	struct s_ctx c = { file ? file : "yjlinkd.conf (embedded)", diag };

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
	for (size_t i = 0; i < n_sets; i++)
		s_apply_set(&c, &cf, sets[i]);
	s_walk_unknown(&c, config_root_setting(&cf), "");

	cfg = calloc(1, sizeof(*cfg));
	if (!cfg || !(cfg->source = strdup(c.label))) {
		rc = YJ_ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < S_N && !rc; i++)
		rc = s_extract(&c, &cf, &s_table[i], cfg);
	if (rc)
		goto out;
	if (cfg->ingest_forces.n == 0)
		rc = s_fill_strlist(&cfg->ingest_forces, cfg->deployment_force);
	if (rc)
		goto out;
	s_check(&c, &cf, cfg);
	if (diag->count > before)
		rc = YJ_ECONFIG;
out:
	config_destroy(&cf);
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
	for (size_t i = 0; i < S_N; i++) {
		void *field = (char *)cfg + s_table[i].offset;
		if (s_table[i].type == S_STR) {
			free(*(char **)field);
		} else if (s_table[i].type == S_STRLIST) {
			struct yj_strlist *l = field;
			for (size_t j = 0; j < l->n; j++)
				free(l->v[j]);
			free(l->v);
		}
	}
	free(cfg->source);
	free(cfg);
	*pcfg = NULL;
}

void yj_config_print_reference(FILE *out)
{
	fprintf(out, "| setting | type | default | meaning |\n|---|---|---|---|\n");
	for (size_t i = 0; i < S_N; i++) {
		const struct s_setting *t = &s_table[i];
		fprintf(out, "| `%s` | %s | `%s` | %s |\n", t->path, s_type_name(t->type), t->def, t->doc);
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
