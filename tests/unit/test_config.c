/* test_config.c: the config loader against adapters' own settings tables
 * (settings.h: struct yj_setting, in each adapter's conf, handed to the
 * loader as main.c does), through a small output adapter declared
 * here ("pigeon"), so the loader is tested apart from the real adapters:
 * its section and recipient settings are read, defaulted and checked with
 * FILE:LINE; unknown keys, unknown and missing transports, unreadable or
 * group-readable secret files and digest rules nobody can be sent are
 * refused; the reference lists its settings. A second owner ("flock")
 * declares a list of groups (YJ_SETTING_GROUPLIST) in a section the core
 * also uses ("ingest"), as in_sub does: each group is read by its sub-table,
 * nested lists too, every problem at its own line, and freed whole.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <libconfig.h>

#include "adapter.h"
#include "config.h"
#include "err.h"
#include "refdata.h"

/* --- the test adapter: section "pigeon", transport "pigeon" --- */

struct s_pigeon {
	char *loft;              /* required */
	int64_t max_birds;       /* 1..10 */
	int racing;
	struct yj_strlist cotes;
	char *key;               /* secret file, optional */
};

struct s_pigeon_rcpt {
	char *ring;              /* pigeon.ring, required */
	int64_t weight_g;        /* pigeon.weight_g */
	char *token;             /* pigeon.token_file, secret, optional */
	struct yj_strlist lofts; /* lofts: a top-level list, as "email" is */
};

/* What the adapter's checks were handed, for the tests to look at. */
static struct {
	int checks, rcpt_checks;
	char file[256];          /* at->file is valid only during the check */
	int line, rcpt_line;
	const struct yj_recipient *rcpt;
} s_seen;

static void s_pigeon_check(const void *settings, const struct yj_setting_site *at)
{
	const struct s_pigeon *p = settings;

	s_seen.checks++;
	snprintf(s_seen.file, sizeof(s_seen.file), "%s", at->file);
	s_seen.line = at->line;
	if (p->max_birds == 7)
		yj_diag_report(at->diag, at->file, at->line, "pigeon: seven birds never come home");
}

static void s_pigeon_check_recipient(const void *settings, const struct yj_recipient *r, const struct yj_setting_site *at)
{
	const struct s_pigeon_rcpt *p = settings;

	s_seen.rcpt_checks++;
	s_seen.rcpt_line = at->line;
	s_seen.rcpt = r;
	if (p->ring[0] == 'X')
		yj_diag_report(at->diag, at->file, at->line, "recipient '%s': pigeon.ring must not start with X", r->id);
}

static const struct yj_setting s_pigeon_settings[] = {
	{ YJ_SETTING_STR, "loft", offsetof(struct s_pigeon, loft), NULL, 0, 0, "where the birds live" },
	{ YJ_SETTING_INT, "max_birds", offsetof(struct s_pigeon, max_birds), "5", 1, 10, "birds in the air at once" },
	{ YJ_SETTING_BOOL, "racing", offsetof(struct s_pigeon, racing), "false", 0, 0, "racing birds" },
	{ YJ_SETTING_STRLIST, "cotes", offsetof(struct s_pigeon, cotes), "north,south", 0, 0, "cotes in use" },
	{ YJ_SETTING_SECRET_FILE, "key_file", offsetof(struct s_pigeon, key), "", 0, 0, "key to the loft" },
};

static const struct yj_setting s_pigeon_rcpt_settings[] = {
	{ YJ_SETTING_STR, "pigeon.ring", offsetof(struct s_pigeon_rcpt, ring), NULL, 0, 0, "ring of the bird" },
	{ YJ_SETTING_INT, "pigeon.weight_g", offsetof(struct s_pigeon_rcpt, weight_g), "400", 100, 900,
	  "what it can carry, grams" },
	{ YJ_SETTING_SECRET_FILE, "pigeon.token_file", offsetof(struct s_pigeon_rcpt, token), "", 0, 0,
	  "the recipient's token" },
	{ YJ_SETTING_STRLIST, "lofts", offsetof(struct s_pigeon_rcpt, lofts), "home", 0, 0, "lofts it flies to" },
};

#define S_LEN(a) (sizeof(a) / sizeof((a)[0]))

static const struct yj_adapter s_pigeon = {
	.conf = {
		.name = "test_pigeon",
		.section = "pigeon",
		.settings = s_pigeon_settings,
		.n_settings = S_LEN(s_pigeon_settings),
		.settings_size = sizeof(struct s_pigeon),
		.check = s_pigeon_check,
		.transport = "pigeon",
		.recipient_settings = s_pigeon_rcpt_settings,
		.n_recipient_settings = S_LEN(s_pigeon_rcpt_settings),
		.recipient_settings_size = sizeof(struct s_pigeon_rcpt),
		.check_recipient = s_pigeon_check_recipient,
	},
};

/* An input with no settings first, so the output's index is not 0. */
static const struct yj_adapter s_input = { .conf = { .name = "test_input" } };

/* What the loader is handed of them, as main.c builds it. */
static const struct yj_settings_owner *const s_owners[] = { &s_input.conf, &s_pigeon.conf, NULL };

/* --- the list owner: "ingest.flocks", a list of groups beside the core's ingest.* --- */

struct s_perch {
	char *at;                /* required */
	int64_t height;          /* 0..10 */
};

struct s_flock {
	char *name;              /* required */
	int64_t size;            /* 1..100 */
	struct yj_strlist tags;
	char *key;               /* secret file, optional */
	struct yj_grouplist perches; /* of struct s_perch */
};

struct s_flocks {
	struct yj_grouplist flocks; /* of struct s_flock */
	struct yj_grouplist roosts; /* of struct s_perch, required */
};

static const struct yj_setting s_perch_items[] = {
	{ YJ_SETTING_STR, "at", offsetof(struct s_perch, at), NULL, 0, 0, "where it perches" },
	{ YJ_SETTING_INT, "height", offsetof(struct s_perch, height), "1", 0, 10, "metres up" },
};

static const struct yj_setting_items s_perch_table = { s_perch_items, S_LEN(s_perch_items), sizeof(struct s_perch) };

static const struct yj_setting s_flock_items[] = {
	{ YJ_SETTING_STR, "name", offsetof(struct s_flock, name), NULL, 0, 0, "the flock's name" },
	{ YJ_SETTING_INT, "size", offsetof(struct s_flock, size), "3", 1, 100, "birds in it" },
	{ YJ_SETTING_STRLIST, "tags", offsetof(struct s_flock, tags), "", 0, 0, "its tags" },
	{ YJ_SETTING_SECRET_FILE, "key_file", offsetof(struct s_flock, key), "", 0, 0, "its key" },
	{ YJ_SETTING_GROUPLIST, "perches", offsetof(struct s_flock, perches), &s_perch_table, 0, 4,
	  "where it rests" },
};

static const struct yj_setting_items s_flock_table = { s_flock_items, S_LEN(s_flock_items), sizeof(struct s_flock) };

static const struct yj_setting s_flocks_settings[] = {
	{ YJ_SETTING_GROUPLIST, "flocks", offsetof(struct s_flocks, flocks), &s_flock_table, 0, 0,
	  "flocks watched" },
	/* A list that must be given, with at least one group. */
	{ YJ_SETTING_GROUPLIST, "roosts", offsetof(struct s_flocks, roosts), &s_perch_table, 1, 0,
	  "roosts in use" },
};

/* What the flock's check was handed. */
static struct {
	int checks;
	size_t n;
	int line0;               /* line of the first group */
} s_flock_seen;

static void s_flock_check(const void *settings, const struct yj_setting_site *at)
{
	const struct s_flocks *f = settings;

	s_flock_seen.checks++;
	s_flock_seen.n = f->flocks.n;
	s_flock_seen.line0 = f->flocks.n ? f->flocks.lines[0] : 0;
	for (size_t i = 0; i < f->flocks.n; i++) {
		const struct s_flock *fl = (const struct s_flock *)f->flocks.items + i;
		if (!strcmp(fl->name, "crows"))
			yj_diag_report(at->diag, at->file, f->flocks.lines[i], "flock '%s': no crows", fl->name);
	}
}

static const struct yj_adapter s_flock = {
	.conf = {
		.name = "test_flock",
		.section = "ingest",
		.settings = s_flocks_settings,
		.n_settings = S_LEN(s_flocks_settings),
		.settings_size = sizeof(struct s_flocks),
		.check = s_flock_check,
	},
};

static const struct yj_settings_owner *const s_flock_owners[] = { &s_input.conf, &s_flock.conf, NULL };

/* --- files and diagnostics --- */

static char s_dir[64];
static char s_conf[128];

/* Every diagnostic of one load, as "F:line: msg\n" lines (F: the config file). */
static char s_log[65536];
static size_t s_log_len;

static void s_report(void *arg, const char *file, int line, const char *msg)
{
	(void)arg;
	const char *f = strcmp(file, s_conf) ? file : "F";
	int n = line > 0 ? snprintf(s_log + s_log_len, sizeof(s_log) - s_log_len, "%s:%d: %s\n", f, line, msg)
			 : snprintf(s_log + s_log_len, sizeof(s_log) - s_log_len, "%s: %s\n", f, msg);

	if (n > 0 && (size_t)n < sizeof(s_log) - s_log_len)
		s_log_len += (size_t)n;
}

static void s_write(const char *name, const char *text, mode_t mode)
{
	char path[192];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", s_dir, name);
	unlink(path);
	f = fopen(path, "w");
	assert_non_null(f);
	assert_true(fputs(text, f) >= 0);
	assert_int_equal(fclose(f), 0);
	assert_int_equal(chmod(path, mode), 0);
}

/* Load text as the config file with owners; *log the diagnostics. */
static int s_load_with(const struct yj_settings_owner *const *owners, const char *text, const char *const *sets,
		       size_t n_sets, struct yj_config **cfg)
{
	struct yj_diag diag = { s_report, NULL, 0 };

	s_write("y.conf", text, 0644);
	s_log_len = 0;
	s_log[0] = '\0';
	memset(&s_seen, 0, sizeof(s_seen));
	memset(&s_flock_seen, 0, sizeof(s_flock_seen));
	return yj_config_load(s_conf, sets, n_sets, owners, &diag, cfg);
}

/* Load text as the config file with the test adapters; *log the diagnostics. */
static int s_load(const char *text, const char *const *sets, size_t n_sets, struct yj_config **cfg)
{
	return s_load_with(s_owners, text, sets, n_sets, cfg);
}

#define assert_logged(line) \
	do { \
		if (!strstr(s_log, line)) \
			fail_msg("not reported: \"%s\"\ngot:\n%s", line, s_log); \
	} while (0)

static int s_setup(void **state)
{
	(void)state;
	snprintf(s_dir, sizeof(s_dir), "/tmp/yj-test-config-XXXXXX");
	if (!mkdtemp(s_dir))
		return -1;
	snprintf(s_conf, sizeof(s_conf), "%s/y.conf", s_dir);
	return 0;
}

static int s_teardown(void **state)
{
	static const char *const names[] = { "y.conf", "loft.key", "token.key", "open.key", "empty.key" };
	char path[192];

	(void)state;
	for (size_t i = 0; i < S_LEN(names); i++) {
		snprintf(path, sizeof(path), "%s/%s", s_dir, names[i]);
		unlink(path);
	}
	return rmdir(s_dir);
}

/* "recipients = (" on line 3 of every config below (after two lines of
 * pigeon section or blanks): the recipient's group starts on line 4, and
 * its transport and the settings the test gives are on line 5. */
#define S_YJS(transport, extra) \
	"recipients = (\n" \
	"  { id = \"yjs:mk\"; kind = \"yjs\"; name = \"MK YJS\"; local_authorities = [ \"E06000042\" ];\n" \
	"    allow = [ \"child.*\" ]; transport = \"" transport "\"; " extra " }\n" \
	");\n"

/* --- the cases --- */

static void test_loads_and_fills(void **state)
{
	(void)state;
	struct yj_config *cfg = NULL;
	const char *text = "pigeon = { loft = \"roof\";\n"
			   "  max_birds = 3; };\n"
			   S_YJS("pigeon", "pigeon = { ring = \"GB-1\"; weight_g = 250; };");

	assert_int_equal(s_load(text, NULL, 0, &cfg), 0);
	assert_string_equal(s_log, "");
	assert_non_null(cfg);
	assert_int_equal(cfg->n_owners, 2);
	assert_ptr_equal(cfg->owners, s_owners);
	assert_null(yj_config_settings(cfg, &s_input.conf));

	const struct s_pigeon *p = yj_config_settings(cfg, &s_pigeon.conf);
	assert_non_null(p);
	assert_string_equal(p->loft, "roof");
	assert_int_equal(p->max_birds, 3);
	assert_int_equal(p->racing, 0);                 /* default */
	assert_int_equal(p->cotes.n, 2);                /* default list, comma-separated */
	assert_string_equal(p->cotes.v[0], "north");
	assert_string_equal(p->cotes.v[1], "south");
	assert_string_equal(p->key, "");                /* no key file: no secret */
	assert_int_equal(s_seen.checks, 1);
	assert_string_equal(s_seen.file, s_conf);
	assert_int_equal(s_seen.line, 1);               /* the section's line */

	assert_int_equal(cfg->n_recipients, 1);
	const struct yj_recipient *r = yj_config_recipient(cfg, "yjs:mk");
	assert_non_null(r);
	assert_string_equal(r->transport, "pigeon");
	assert_int_equal(r->output, 1);
	assert_ptr_equal(yj_config_output(cfg, r), &s_pigeon.conf);
	const struct s_pigeon_rcpt *pr = r->output_settings;
	assert_non_null(pr);
	assert_string_equal(pr->ring, "GB-1");
	assert_int_equal(pr->weight_g, 250);
	assert_string_equal(pr->token, "");
	assert_int_equal(pr->lofts.n, 1);
	assert_string_equal(pr->lofts.v[0], "home");
	assert_int_equal(s_seen.rcpt_checks, 1);
	assert_int_equal(s_seen.rcpt_line, 4);          /* the recipient's line */
	assert_ptr_equal(s_seen.rcpt, r);
	/* The core's own settings still default as before. */
	assert_string_equal(cfg->control_endpoint, "ipc:///run/yjlink/control.sock");
	assert_int_equal(cfg->store_map_size_mb, 64);
	yj_config_free(&cfg);
	assert_null(cfg);
}

/* The routing lookups (bsearch over indexes built at load) answer as a
 * search in config order would: the first recipient with an id, the first
 * YJS covering an authority. */
static void test_routing_lookups(void **state)
{
	(void)state;
	struct yj_config *cfg = NULL;
	const char *text = "pigeon = { loft = \"roof\"; };\n\n"
			   "recipients = (\n"
			   "  { id = \"yjs:zz\"; kind = \"yjs\"; name = \"Z\"; local_authorities = [ \"E06000042\", \"E06000036\" ];\n"
			   "    allow = [ \"child.*\" ]; transport = \"none\"; },\n"
			   "  { id = \"yjs:aa\"; kind = \"yjs\"; name = \"A\"; local_authorities = [ \"E06000042\", \"E06000037\" ];\n"
			   "    allow = [ \"child.*\" ]; transport = \"none\"; },\n"
			   "  { id = \"children_services:E06000037\"; kind = \"children_services\"; name = \"W\";\n"
			   "    local_authority = \"E06000037\"; allow = [ \"child.*\" ]; transport = \"none\"; }\n"
			   ");\n";
	if (s_load(text, NULL, 0, &cfg))
		fail_msg("%s", s_log);
	assert_non_null(cfg->recipients_by_id);
	for (size_t i = 0; i < cfg->n_recipients; i++)
		assert_ptr_equal(yj_config_recipient(cfg, cfg->recipients[i].id), &cfg->recipients[i]);
	assert_null(yj_config_recipient(cfg, "yjs:a"));
	assert_null(yj_config_recipient(cfg, "yjs:zzz"));
	assert_null(yj_config_recipient(cfg, ""));
	/* Both YJS cover E06000042: the one declared first, not the first by id. */
	assert_string_equal(yj_config_yjs_for_la(cfg, "E06000042")->id, "yjs:zz");
	assert_string_equal(yj_config_yjs_for_la(cfg, "E06000036")->id, "yjs:zz");
	assert_string_equal(yj_config_yjs_for_la(cfg, "E06000037")->id, "yjs:aa");
	assert_null(yj_config_yjs_for_la(cfg, "E06000038"));  /* children's services are not a YJS */
	assert_null(yj_config_yjs_for_la(cfg, NULL));
	/* A config made by hand, without the indexes, is searched in order. */
	size_t *by_id = cfg->recipients_by_id;
	cfg->recipients_by_id = NULL;
	assert_string_equal(yj_config_yjs_for_la(cfg, "E06000042")->id, "yjs:zz");
	assert_ptr_equal(yj_config_recipient(cfg, "yjs:aa"), &cfg->recipients[1]);
	cfg->recipients_by_id = by_id;
	yj_config_free(&cfg);
}

static void test_transport_none_and_overrides(void **state)
{
	(void)state;
	struct yj_config *cfg = NULL;
	const char *sets[] = { "pigeon.max_birds=9", "pigeon.cotes=east,west", "pigeon.racing=true" };
	const char *text = "pigeon = { loft = \"roof\"; max_birds = 3; };\n"
			   "\n"
			   S_YJS("none", "");

	assert_int_equal(s_load(text, sets, S_LEN(sets), &cfg), 0);
	assert_string_equal(s_log, "");
	const struct s_pigeon *p = yj_config_settings(cfg, &s_pigeon.conf);
	assert_int_equal(p->max_birds, 9);
	assert_int_equal(p->racing, 1);
	assert_int_equal(p->cotes.n, 2);
	assert_string_equal(p->cotes.v[1], "west");
	const struct yj_recipient *r = yj_config_recipient(cfg, "yjs:mk");
	assert_string_equal(r->transport, "none");
	assert_int_equal(r->output, -1);
	assert_null(r->output_settings);
	assert_null(yj_config_output(cfg, r));
	assert_int_equal(s_seen.rcpt_checks, 0);
	yj_config_free(&cfg);

	/* Out of bounds by --set is refused like in the file. */
	const char *bad[] = { "pigeon.max_birds=0" };
	assert_int_equal(s_load(text, bad, 1, &cfg), YJ_ECONFIG);
	assert_null(cfg);
	assert_logged("'pigeon.max_birds' must be between 1 and 10, not 0");
}

static void test_required_and_bounds(void **state)
{
	(void)state;
	struct yj_config *cfg = NULL;
	const char *text = "pigeon = {\n"
			   "  max_birds = 11; };\n"
			   S_YJS("pigeon", "pigeon = { weight_g = 50; };");

	assert_int_equal(s_load(text, NULL, 0, &cfg), YJ_ECONFIG);
	assert_null(cfg);
	assert_logged("F:1: 'pigeon.loft' is required\n");
	assert_logged("F:2: 'pigeon.max_birds' must be between 1 and 10, not 11\n");
	assert_logged("F:4: recipient 'yjs:mk': 'pigeon.ring' is required\n");
	assert_logged("F:5: recipient 'yjs:mk': 'pigeon.weight_g' must be between 100 and 900, not 50\n");
	/* The adapter's own checks see only tables that read cleanly. */
	assert_int_equal(s_seen.checks, 0);
	assert_int_equal(s_seen.rcpt_checks, 0);

	/* No section at all: the file as a whole is named. */
	assert_int_equal(s_load("log = { level = \"info\"; };\n", NULL, 0, &cfg), YJ_ECONFIG);
	assert_logged("F: 'pigeon.loft' is required\n");

	/* The adapter's checks report through the site they are handed. */
	assert_int_equal(s_load("\npigeon = { loft = \"roof\"; max_birds = 7; };\n" S_YJS("pigeon", "pigeon = { ring = \"X9\"; };"),
			     NULL, 0, &cfg),
			 YJ_ECONFIG);
	assert_logged("F:2: pigeon: seven birds never come home\n");
	assert_logged("F:4: recipient 'yjs:mk': pigeon.ring must not start with X\n");
}

static void test_type_errors(void **state)
{
	(void)state;
	struct yj_config *cfg = NULL;
	const char *text = "pigeon = { loft = 1;\n"
			   "  max_birds = \"3\"; racing = 1; cotes = \"north\"; };\n"
			   S_YJS("pigeon", "pigeon = { ring = \"GB-1\"; weight_g = 1.5; }; lofts = [ 1 ];");

	assert_int_equal(s_load(text, NULL, 0, &cfg), YJ_ECONFIG);
	assert_logged("F:1: 'pigeon.loft' must be a string\n");
	assert_logged("F:2: 'pigeon.max_birds' must be an integer\n");
	assert_logged("F:2: 'pigeon.racing' must be true or false\n");
	assert_logged("F:2: 'pigeon.cotes' must be a list of strings\n");
	assert_logged("F:5: recipient 'yjs:mk': 'pigeon.weight_g' must be an integer\n");
	assert_logged("F:5: recipient 'yjs:mk': 'lofts' must be a list of strings\n");

	/* A group where a setting's group should be. */
	assert_int_equal(s_load("pigeon = 3;\n", NULL, 0, &cfg), YJ_ECONFIG);
	assert_logged("F:1: 'pigeon' must be a group { ... }\n");
}

static void test_unknown_keys(void **state)
{
	(void)state;
	struct yj_config *cfg = NULL;
	const char *text = "pigeon = { loft = \"roof\";\n"
			   "  lofty = 1; };\n"
			   S_YJS("pigeon", "pigeon = { ring = \"GB-1\";\n colour = \"grey\"; };\n email = [ \"a@b\" ];");

	assert_int_equal(s_load(text, NULL, 0, &cfg), YJ_ECONFIG);
	assert_logged("F:2: unknown setting 'pigeon.lofty'\n");
	assert_logged("F:6: unknown setting 'pigeon.colour' in a recipient\n");
	assert_logged("F:7: unknown setting 'email' in a recipient\n");

	/* A recipient carries only its own transport's settings: with transport none, none. */
	text = "pigeon = { loft = \"roof\"; };\n"
	       "\n"
	       S_YJS("none", "pigeon = { ring = \"GB-1\"; };");
	assert_int_equal(s_load(text, NULL, 0, &cfg), YJ_ECONFIG);
	assert_logged("F:5: unknown setting 'pigeon' in a recipient\n");

	/* Without the adapter, its section is unknown, and so are the old core email.* settings. */
	struct yj_diag diag = { s_report, NULL, 0 };
	s_write("y.conf", "email = { smtp_url = \"smtp://127.0.0.1:25\"; };\n", 0644);
	s_log_len = 0;
	assert_int_equal(yj_config_load(s_conf, NULL, 0, NULL, &diag, &cfg), YJ_ECONFIG);
	assert_logged("F:1: unknown setting 'email'\n");
	const char *sets[] = { "email.from=a@b" };
	s_write("y.conf", "\n", 0644);
	assert_int_equal(yj_config_load(s_conf, sets, 1, NULL, &diag, &cfg), YJ_ECONFIG);
	assert_logged("--set: unknown setting 'email.from'\n");
	/* ... and a core-only config loads with no adapters at all. */
	s_log_len = 0;
	s_log[0] = '\0';
	assert_int_equal(yj_config_load(s_conf, NULL, 0, NULL, &diag, &cfg), 0);
	assert_string_equal(s_log, "");
	assert_int_equal(cfg->n_owners, 0);
	assert_null(cfg->owner_settings);
	yj_config_free(&cfg);
}

static void test_secret_files(void **state)
{
	(void)state;
	struct yj_config *cfg = NULL;

	s_write("loft.key", "s3cret-loft\nnot this line\n", 0600);
	s_write("token.key", "tok-1\r\n", 0400);
	const char *text = "pigeon = { loft = \"roof\";\n"
			   "  key_file = \"loft.key\"; };\n"  /* relative to the config file's directory */
			   S_YJS("pigeon", "pigeon = { ring = \"GB-1\"; token_file = \"token.key\"; };");
	assert_int_equal(s_load(text, NULL, 0, &cfg), 0);
	assert_string_equal(s_log, "");
	const struct s_pigeon *p = yj_config_settings(cfg, &s_pigeon.conf);
	assert_string_equal(p->key, "s3cret-loft");
	const struct s_pigeon_rcpt *pr = yj_config_recipient(cfg, "yjs:mk")->output_settings;
	assert_string_equal(pr->token, "tok-1");
	yj_config_free(&cfg);

	/* Readable by others: refused, naming the setting's line. */
	s_write("open.key", "s3cret\n", 0644);
	s_write("empty.key", "\n", 0600);
	char abs[256];
	snprintf(abs, sizeof(abs), "%s/open.key", s_dir);
	char text2[1024];
	snprintf(text2, sizeof(text2),
		 "pigeon = { loft = \"roof\";\n"
		 "  key_file = \"%s\"; };\n"
		 S_YJS("pigeon", "pigeon = { ring = \"GB-1\";\n token_file = \"empty.key\"; };"),
		 abs);
	assert_int_equal(s_load(text2, NULL, 0, &cfg), YJ_ECONFIG);
	assert_null(cfg);
	assert_logged("F:2: 'pigeon.key_file': secret file ");
	assert_logged("open.key may be read by group or others (mode 0644): chmod 600 it\n");
	assert_logged("F:6: recipient 'yjs:mk': 'pigeon.token_file': secret file ");
	assert_logged("empty.key is empty\n");

	/* Missing, and group-readable even without write. */
	s_write("open.key", "s3cret\n", 0640);
	text = "pigeon = { loft = \"roof\"; key_file = \"nonexistent.key\"; };\n"
	       "\n"
	       S_YJS("pigeon", "pigeon = { ring = \"GB-1\"; token_file = \"open.key\"; };");
	assert_int_equal(s_load(text, NULL, 0, &cfg), YJ_ECONFIG);
	assert_logged("F:1: 'pigeon.key_file': cannot read secret file ");
	assert_logged("nonexistent.key: No such file or directory\n");
	assert_logged("open.key may be read by group or others (mode 0640)");
	/* The path itself is not kept, and a secret never appears in a message. */
	assert_null(strstr(s_log, "s3cret"));
}

static void test_transport_refusals(void **state)
{
	(void)state;
	struct yj_config *cfg = NULL;
	const char *text = "pigeon = { loft = \"roof\"; };\n"
			   "\n"
			   S_YJS("carrier_pigeon", "")
			   "\n";

	assert_int_equal(s_load(text, NULL, 0, &cfg), YJ_ECONFIG);
	assert_null(cfg);
	assert_logged("F:4: recipient 'yjs:mk': unknown transport 'carrier_pigeon' (this build has: none, pigeon)\n");

	text = "pigeon = { loft = \"roof\"; };\n"
	       "\n"
	       S_YJS("zmq", "");
	assert_int_equal(s_load(text, NULL, 0, &cfg), YJ_ECONFIG);
	assert_logged("F:4: recipient 'yjs:mk': transport 'zmq' has no output adapter in this build; "
		      "nothing could be delivered to it\n");
	/* email is a transport of the contract, but not of this (test) build. */
	text = "pigeon = { loft = \"roof\"; };\n"
	       "\n"
	       S_YJS("email", "");
	assert_int_equal(s_load(text, NULL, 0, &cfg), YJ_ECONFIG);
	assert_logged("F:4: recipient 'yjs:mk': transport 'email' has no output adapter in this build");
}

static void test_digest_rules(void **state)
{
	(void)state;
	struct yj_config *cfg = NULL;
	const char *rules = "rules = (\n"
			    "  { id = \"custody_digest\"; feeds = [ \"custody\" ]; recipient = \"yjs:home\"; mode = \"digest\"; }\n"
			    ");\n";
	char text[2048];

	snprintf(text, sizeof(text), "pigeon = { loft = \"roof\"; };\n\n%s%s",
		 S_YJS("pigeon", "pigeon = { ring = \"GB-1\"; };"), rules);
	assert_int_equal(s_load(text, NULL, 0, &cfg), YJ_ECONFIG);
	assert_logged("F:4: recipient 'yjs:mk': rule 'custody_digest' sends it a daily digest but it has no digest_times\n");

	snprintf(text, sizeof(text), "pigeon = { loft = \"roof\"; };\n\n%s%s",
		 S_YJS("pigeon", "pigeon = { ring = \"GB-1\"; }; digest_times = [ \"07:30\" ];"), rules);
	assert_int_equal(s_load(text, NULL, 0, &cfg), 0);
	assert_string_equal(s_log, "");
	assert_int_equal(cfg->n_rules, 1);
	assert_int_equal(cfg->rules[0].mode, YJ_MODE_DIGEST);
	yj_config_free(&cfg);

	/* Only a YJS has a digest. */
	snprintf(text, sizeof(text),
		 "pigeon = { loft = \"roof\"; };\n\n%s"
		 "rules = (\n"
		 "  { id = \"lac_digest\"; recipient = \"children_services:home\"; mode = \"digest\"; }\n"
		 ");\n",
		 S_YJS("pigeon", "pigeon = { ring = \"GB-1\"; }; digest_times = [ \"07:30\" ];"));
	assert_int_equal(s_load(text, NULL, 0, &cfg), YJ_ECONFIG);
	assert_logged("F:8: rule 'lac_digest': mode digest needs a yjs: recipient (yjs:home or yjs:suite)\n");
}

static void test_reference(void **state)
{
	(void)state;
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	assert_non_null(f);
	yj_config_print_reference(f, s_owners);
	assert_int_equal(fclose(f), 0);
	assert_non_null(strstr(buf, "| `deployment.id` | a string | `tvp` |"));
	assert_non_null(strstr(buf, "| `control.endpoint` | a string | `ipc:///run/yjlink/control.sock` |"));
	assert_null(strstr(buf, "`email.smtp_url`"));   /* out_email's now, not the core's */
	assert_non_null(strstr(buf, "\n`pigeon` settings (test_pigeon):\n\n| setting | type | default | meaning |\n"));
	assert_non_null(strstr(buf, "| `pigeon.loft` | a string | required | where the birds live |\n"));
	assert_non_null(strstr(buf, "| `pigeon.max_birds` | an integer | `5` | birds in the air at once |\n"));
	assert_non_null(strstr(buf, "| `pigeon.cotes` | a list of strings | `north,south` | cotes in use |\n"));
	assert_non_null(strstr(buf, "| `pigeon.key_file` | the name of a 0600 file | `` | key to the loft |\n"));
	assert_non_null(strstr(buf, "recipient settings of transport `pigeon` (test_pigeon)"));
	assert_non_null(strstr(buf, "| `pigeon.ring` | a string | required | ring of the bird |\n"));
	assert_non_null(strstr(buf, "| `lofts` | a list of strings | `home` | lofts it flies to |\n"));
	/* The recipient settings come after the section's. */
	assert_true(strstr(buf, "`pigeon.ring`") > strstr(buf, "`pigeon.loft`"));
	free(buf);

	/* No adapters: the core's table alone. */
	buf = NULL;
	f = open_memstream(&buf, &len);
	yj_config_print_reference(f, NULL);
	assert_int_equal(fclose(f), 0);
	assert_null(strstr(buf, "pigeon"));
	assert_non_null(strstr(buf, "| `testing.clock_start` |"));
	free(buf);
}

/* Every flock config needs its roosts (a required list): this line, last. */
#define S_ROOSTS "roosts = ( { at = \"barn\"; } );\n"

static void test_grouplist_reads(void **state)
{
	(void)state;
	struct yj_config *cfg = NULL;

	s_write("loft.key", "flock-secret\n", 0600);
	const char *text = "ingest = { batch_max = 100;\n"                                    /* 1 */
			   "  flocks = (\n"                                                     /* 2 */
			   "    { name = \"north\"; size = 5; tags = [ \"a\", \"b\" ];\n"        /* 3 */
			   "      perches = ( { at = \"roof\"; height = 2; }, { at = \"eaves\"; } ); },\n"
			   "    { name = \"south\";\n"                                             /* 5 */
			   "      key_file = \"loft.key\"; }\n"
			   "  );\n"
			   "  " S_ROOSTS
			   "};\n";

	assert_int_equal(s_load_with(s_flock_owners, text, NULL, 0, &cfg), 0);
	assert_string_equal(s_log, "");
	/* The core's ingest.* beside the owner's ingest.flocks. */
	assert_int_equal(cfg->ingest_batch_max, 100);
	const struct s_flocks *f = yj_config_settings(cfg, &s_flock.conf);
	assert_non_null(f);
	assert_int_equal(f->flocks.n, 2);
	const struct s_flock *fl = f->flocks.items;
	assert_string_equal(fl[0].name, "north");
	assert_int_equal(fl[0].size, 5);
	assert_int_equal(fl[0].tags.n, 2);
	assert_string_equal(fl[0].tags.v[1], "b");
	assert_string_equal(fl[0].key, "");
	assert_int_equal(fl[0].perches.n, 2);
	const struct s_perch *p = fl[0].perches.items;
	assert_string_equal(p[0].at, "roof");
	assert_int_equal(p[0].height, 2);
	assert_string_equal(p[1].at, "eaves");
	assert_int_equal(p[1].height, 1);           /* default, in a nested group */
	assert_int_equal(fl[0].perches.lines[1], 4);
	assert_string_equal(fl[1].name, "south");
	assert_int_equal(fl[1].size, 3);            /* default */
	assert_int_equal(fl[1].tags.n, 0);
	assert_string_equal(fl[1].key, "flock-secret");
	assert_int_equal(fl[1].perches.n, 0);
	assert_null(fl[1].perches.items);
	assert_int_equal(f->flocks.lines[0], 3);
	assert_int_equal(f->flocks.lines[1], 5);
	assert_int_equal(f->roosts.n, 1);
	assert_string_equal(((const struct s_perch *)f->roosts.items)->at, "barn");
	assert_int_equal(s_flock_seen.checks, 1);
	assert_int_equal(s_flock_seen.n, 2);
	assert_int_equal(s_flock_seen.line0, 3);
	yj_config_free(&cfg);
	assert_null(cfg);

	/* Absent, `()` and `[]`: no items. */
	const char *empty[] = { "ingest = { " S_ROOSTS "};\n", "ingest = { flocks = (); " S_ROOSTS "};\n",
				"ingest = { flocks = [ ]; " S_ROOSTS "};\n" };
	for (size_t i = 0; i < S_LEN(empty); i++) {
		assert_int_equal(s_load_with(s_flock_owners, empty[i], NULL, 0, &cfg), 0);
		assert_string_equal(s_log, "");
		f = yj_config_settings(cfg, &s_flock.conf);
		assert_int_equal(f->flocks.n, 0);
		assert_null(f->flocks.items);
		assert_int_equal(s_flock_seen.checks, 1);
		yj_config_free(&cfg);
	}

	/* The owner's check names an item by its own line. */
	assert_int_equal(s_load_with(s_flock_owners,
				     "ingest = { flocks = (\n { name = \"doves\"; },\n { name = \"crows\"; } );\n" S_ROOSTS "};\n",
				     NULL, 0, &cfg),
			 YJ_ECONFIG);
	assert_logged("F:3: flock 'crows': no crows\n");
}

static void test_grouplist_errors(void **state)
{
	(void)state;
	struct yj_config *cfg = NULL;
	const char *text = "ingest = {\n"                                                         /* 1 */
			   "  flocks = (\n"                                                         /* 2 */
			   "    { size = 5; },\n"                                                   /* 3: no name */
			   "    { name = 7;\n"                                                      /* 4: wrong type */
			   "      size = 500; colour = \"grey\"; },\n"                              /* 5: bounds, unknown */
			   "    \"not a group\",\n"                                                 /* 6 */
			   "    { name = \"west\"; perches = ( { height = 3; },\n"                  /* 7: nested, no at */
			   "      { at = \"roof\"; wings = 2; } ); tags = \"x\"; }\n"                /* 8 */
			   "  );\n"
			   "  flock = 1;\n"                                                         /* 10 */
			   "  roosts = ();\n"                                                       /* 11: too few */
			   "};\n";

	assert_int_equal(s_load_with(s_flock_owners, text, NULL, 0, &cfg), YJ_ECONFIG);
	assert_null(cfg);
	assert_logged("F:3: 'ingest.flocks' item 1: 'name' is required\n");
	assert_logged("F:4: 'ingest.flocks' item 2: 'name' must be a string\n");
	assert_logged("F:5: 'ingest.flocks' item 2: 'size' must be between 1 and 100, not 500\n");
	assert_logged("F:5: unknown setting 'colour' in 'ingest.flocks' item 2\n");
	assert_logged("F:6: 'ingest.flocks': each item must be a group { ... }\n");
	assert_logged("F:7: 'ingest.flocks' item 4: 'perches' item 1: 'at' is required\n");
	assert_logged("F:8: unknown setting 'wings' in 'ingest.flocks' item 4: 'perches' item 2\n");
	assert_logged("F:8: 'ingest.flocks' item 4: 'tags' must be a list of strings\n");
	assert_logged("F:10: unknown setting 'ingest.flock'\n");
	assert_logged("F:11: 'ingest.roosts' needs at least 1 group(s), not 0\n");
	/* The members of the list are no top-level settings, nor are they reported twice. */
	assert_null(strstr(s_log, "'ingest.flocks.name'"));
	assert_null(strstr(s_log, "unknown setting 'ingest.flocks"));
	assert_null(strstr(s_log, "unknown setting 'name'"));
	/* The owner's check sees only settings that read cleanly. */
	assert_int_equal(s_flock_seen.checks, 0);

	/* A required list absent: at the section's line; too many groups: at the list's. */
	assert_int_equal(s_load_with(s_flock_owners,
				     "\ningest = { flocks = ( { name = \"n\";\n perches = ( { at = \"a\"; }, { at = \"b\"; }, "
				     "{ at = \"c\"; }, { at = \"d\"; }, { at = \"e\"; } ); } ); };\n",
				     NULL, 0, &cfg),
			 YJ_ECONFIG);
	assert_logged("F:2: 'ingest.roosts' is required\n");
	assert_logged("F:3: 'ingest.flocks' item 1: 'perches' must hold between 0 and 4 groups, not 5\n");

	/* The list itself of the wrong type. */
	assert_int_equal(s_load_with(s_flock_owners, "ingest = { flocks = { name = \"x\"; }; " S_ROOSTS "};\n", NULL, 0, &cfg),
			 YJ_ECONFIG);
	assert_logged("F:1: 'ingest.flocks' must be a list of groups ( { ... }, ... )\n");
	assert_int_equal(s_load_with(s_flock_owners, "ingest = { flocks = [ \"x\" ]; " S_ROOSTS "};\n", NULL, 0, &cfg), YJ_ECONFIG);
	assert_logged("F:1: 'ingest.flocks' must be a list of groups ( { ... }, ... )\n");

	/* A list of groups is no scalar for --set. */
	const char *sets[] = { "ingest.flocks=north" };
	assert_int_equal(s_load_with(s_flock_owners, "ingest = { " S_ROOSTS "};\n", sets, 1, &cfg), YJ_ECONFIG);
	assert_logged("--set: 'ingest.flocks' is a list of groups ( { ... }, ... ): set it in the config file\n");
	/* ... while the core's ingest.* still take --set beside it. */
	const char *core_set[] = { "ingest.batch_max=77" };
	assert_int_equal(s_load_with(s_flock_owners, "ingest = { flocks = ( { name = \"n\"; } ); " S_ROOSTS "};\n", core_set, 1,
				     &cfg),
			 0);
	assert_int_equal(cfg->ingest_batch_max, 77);
	yj_config_free(&cfg);

	/* Without its owner, the list is an unknown setting like any other. */
	assert_int_equal(s_load_with(s_owners, "pigeon = { loft = \"roof\"; };\ningest = { flocks = (); };\n", NULL, 0, &cfg),
			 YJ_ECONFIG);
	assert_logged("F:2: unknown setting 'ingest.flocks'\n");
}

static void test_grouplist_reference(void **state)
{
	(void)state;
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	assert_non_null(f);
	yj_config_print_reference(f, s_flock_owners);
	assert_int_equal(fclose(f), 0);
	/* The owner's table under the section it shares with the core. */
	assert_non_null(strstr(buf, "| `ingest.batch_max` | an integer | `4096` |"));
	assert_non_null(strstr(buf, "\n`ingest` settings (test_flock):\n\n| setting | type | default | meaning |\n"));
	assert_non_null(strstr(buf, "| `ingest.flocks` | a list of groups ( { ... }, ... ) | `()` | flocks watched |\n"
				    "| `ingest.flocks[].name` | a string | required | the flock's name |\n"
				    "| `ingest.flocks[].size` | an integer | `3` | birds in it |\n"));
	assert_non_null(strstr(buf, "| `ingest.flocks[].perches` | a list of groups ( { ... }, ... ) | `()` | where it rests |\n"
				    "| `ingest.flocks[].perches[].at` | a string | required | where it perches |\n"));
	assert_non_null(strstr(buf, "| `ingest.roosts` | a list of groups ( { ... }, ... ) | required | roosts in use |\n"
				    "| `ingest.roosts[].at` | a string | required | where it perches |\n"));
	free(buf);
}

/* --- the national directories and data sharing agreements --- */

#define S_DIR_HEADER "code,name,transport,address,out_of_hours_address,secret_file,dsa\n"

static void s_write_ref(const char *cs, const char *fc)
{
	char path[192];
	snprintf(path, sizeof(path), "%s/ref", s_dir);
	mkdir(path, 0700);
	if (cs)
		s_write("ref/children_services.csv", cs, 0644);
	if (fc)
		s_write("ref/force_contacts.csv", fc, 0644);
}

static void s_clean_ref(void)
{
	static const char *const names[] = { "children_services.csv", "force_contacts.csv", "token.key" };
	char path[192];
	for (size_t i = 0; i < S_LEN(names); i++) {
		snprintf(path, sizeof(path), "%s/ref/%s", s_dir, names[i]);
		unlink(path);
	}
	snprintf(path, sizeof(path), "%s/ref", s_dir);
	rmdir(path);
}

#define S_REF_CONF "reference = { dir = \"ref\"; }; pigeon = { loft = \"roof\"; };\n"

static void test_directory_recipients(void **state)
{
	(void)state;
	struct yj_config *cfg = NULL;
	char label[192];

	s_write_ref(S_DIR_HEADER
		    "E06000001,Hartlepool,,,,,\n"
		    "E06000018,Nottingham,pigeon,GB-18,,token.key,DSA-1@2027-03-31\n"
		    "E06000019,\"Herefordshire, County of\",pigeon,GB-19,,,DSA-2\n",
		    S_DIR_HEADER "E23000030,Hampshire,pigeon,GB-H,,,\n");
	s_write("ref/token.key", "t0ken\n", 0600);
	/* Config first: E06000019 is declared, with transport none. */
	const char *text = S_REF_CONF "\n"
			   "recipients = (\n"
			   "  { id = \"children_services:E06000019\"; kind = \"children_services\"; name = \"Hfd\";\n"
			   "    local_authority = \"E06000019\"; allow = [ \"child.*\" ]; transport = \"none\"; }\n"
			   ");\n";
	int lrc = s_load(text, NULL, 0, &cfg);
	if (lrc)
		fail_msg("%s", s_log);
	snprintf(label, sizeof(label), "%s/ref/children_services.csv", s_dir);

	assert_null(yj_config_recipient(cfg, "children_services:E06000001")); /* empty row: unroutable */
	const struct yj_recipient *r = yj_config_recipient(cfg, "children_services:E06000018");
	assert_non_null(r);
	assert_true(r->from_directory);
	assert_int_equal(r->kind, YJ_RCPT_CHILDREN_SERVICES);
	assert_string_equal(r->name, "Nottingham");
	assert_int_equal(r->las.n, 1);
	assert_string_equal(r->las.v[0], "E06000018");
	assert_string_equal(r->transport, "pigeon");
	assert_ptr_equal(yj_config_output(cfg, r), &s_pigeon.conf);
	const struct s_pigeon_rcpt *pr = r->output_settings;
	assert_string_equal(pr->ring, "GB-18");    /* the address: the first required setting */
	assert_string_equal(pr->token, "t0ken");   /* secret_file beside the table */
	assert_string_equal(r->file, label);
	assert_int_equal(r->line, 3);
	assert_string_equal(r->dsa_id, "DSA-1");
	assert_int_equal(r->dsa_review, yj_days_from_civil(2027, 3, 31));
	assert_int_equal(r->allow.n, cfg->directory_children_services_allow.n);
	for (size_t i = 0; i < r->allow.n; i++)
		assert_string_equal(r->allow.v[i], cfg->directory_children_services_allow.v[i]);

	r = yj_config_recipient(cfg, "children_services:E06000019");
	assert_false(r->from_directory);
	assert_string_equal(r->transport, "none");

	r = yj_config_recipient(cfg, "force:E23000030");
	assert_non_null(r);
	assert_int_equal(r->kind, YJ_RCPT_FORCE);
	assert_string_equal(r->force, "E23000030");
	assert_null(r->dsa_id);
	assert_int_equal(r->dsa_review, INT32_MIN);
	assert_int_equal(r->allow.n, cfg->directory_force_allow.n);
	assert_int_equal(cfg->n_recipients, 3);
	yj_config_free(&cfg);

	/* A different allowlist for the directory's recipients. */
	const char *const sets[] = { "directory.force_allow=force,child.person_id" };
	assert_int_equal(s_load(text, sets, 1, &cfg), 0);
	r = yj_config_recipient(cfg, "force:E23000030");
	assert_int_equal(r->allow.n, 2);
	assert_string_equal(r->allow.v[1], "child.person_id");
	yj_config_free(&cfg);
	s_clean_ref();
}

static void test_directory_errors(void **state)
{
	(void)state;
	struct yj_config *cfg = NULL;
	char want[400];

	s_write_ref(S_DIR_HEADER
		    "E07000001,A district,,,,,\n"                        /* 2: not upper tier */
		    "E06000002,Middlesbrough,carrier,GB-2,,,\n"          /* 3: unknown transport */
		    "E06000003,Redcar,,orphan@example,,,\n"              /* 4: address, no transport */
		    "E06000004,Stockton,pigeon,GB-4,,,two words@2027-01-01\n" /* 5: dsa */
		    "E06000005,Darlington,pigeon,GB-5,GB-5b,,\n"         /* 6: one-address transport */
		    "E06000005,Darlington,,,,,\n"                        /* 7: twice */
		    "E06000006,Halton,pigeon,,,,\n",                     /* 8: no address */
		    S_DIR_HEADER "E23000030,Hampshire,pigeon,GB-H,,,DSA-3@2027-02-30\n");
	assert_int_equal(s_load(S_REF_CONF, NULL, 0, &cfg), YJ_ECONFIG);
	assert_null(cfg);
#define S_AT(file, line, msg) \
	do { \
		snprintf(want, sizeof(want), "%s/ref/%s:%d: %s", s_dir, file, line, msg); \
		assert_logged(want); \
	} while (0)
	S_AT("children_services.csv", 2, "code 'E07000001' is not an upper-tier local authority code");
	S_AT("children_services.csv", 3, "E06000002: unknown transport 'carrier'");
	S_AT("children_services.csv", 4, "E06000003: an address or secret_file but no transport");
	S_AT("children_services.csv", 5, "E06000004: dsa 'two words@2027-01-01' is not ID or ID@YYYY-MM-DD");
	S_AT("children_services.csv", 6, "E06000005: transport pigeon has one address");
	S_AT("children_services.csv", 7, "E06000005 is listed twice (first at line 6)");
	S_AT("children_services.csv", 8, "E06000006: transport pigeon needs an address");
	S_AT("force_contacts.csv", 2, "E23000030: dsa 'DSA-3@2027-02-30' is not ID or ID@YYYY-MM-DD");

	/* A reference.dir holds every table: a missing directory is an error. */
	char path[192];
	snprintf(path, sizeof(path), "%s/ref/force_contacts.csv", s_dir);
	unlink(path);
	assert_int_equal(s_load(S_REF_CONF, NULL, 0, &cfg), YJ_ECONFIG);
	snprintf(want, sizeof(want), "%s/ref/force_contacts.csv: cannot open", s_dir);
	assert_logged(want);
#undef S_AT
	s_clean_ref();
}

static void test_dsa(void **state)
{
	(void)state;
	struct yj_config *cfg = NULL;

	assert_int_equal(s_load("pigeon = { loft = \"roof\"; };\n\n" S_YJS("none", "dsa = { id = \"DSA-TVP-014\"; review = \"2027-03-31\"; };"), NULL, 0,
				&cfg),
			 0);
	const struct yj_recipient *r = yj_config_recipient(cfg, "yjs:mk");
	assert_string_equal(r->dsa_id, "DSA-TVP-014");
	assert_int_equal(r->dsa_review, yj_days_from_civil(2027, 3, 31));
	yj_config_free(&cfg);

	/* No review date: an id alone. */
	assert_int_equal(s_load("pigeon = { loft = \"roof\"; };\n\n" S_YJS("none", "dsa = { id = \"DSA-9\"; };"), NULL, 0, &cfg), 0);
	assert_int_equal(yj_config_recipient(cfg, "yjs:mk")->dsa_review, INT32_MIN);
	yj_config_free(&cfg);

	assert_int_equal(s_load("pigeon = { loft = \"roof\"; };\n\n" S_YJS("none", "dsa = { id = \"DSA-9\"; review = \"31/03/2027\"; };"), NULL, 0, &cfg),
			 YJ_ECONFIG);
	assert_logged("F:5: recipient 'yjs:mk': dsa id must be 1-64 of [A-Za-z0-9._/-] and review a YYYY-MM-DD date");
	assert_int_equal(s_load("pigeon = { loft = \"roof\"; };\n\n" S_YJS("none", "dsa = { review = \"2027-03-31\"; until = 1; };"), NULL, 0, &cfg),
			 YJ_ECONFIG);
	assert_logged("F:5: recipient 'yjs:mk': dsa needs an id");
	assert_logged("F:5: unknown setting 'until' in the dsa of recipient 'yjs:mk'");
}

/* The defaults of directory.*_allow are the allowlists the shipped config
 * gives its children's services and its force recipient. */
static void s_shipped_allow(config_t *cf, const char *id, struct yj_strlist *out)
{
	config_setting_t *l = config_lookup(cf, "recipients");
	assert_non_null(l);
	for (int i = 0; i < config_setting_length(l); i++) {
		config_setting_t *g = config_setting_get_elem(l, (unsigned)i);
		const char *rid = NULL;
		if (!config_setting_lookup_string(g, "id", &rid) || strcmp(rid, id))
			continue;
		config_setting_t *a = config_setting_get_member(g, "allow");
		out->n = (size_t)config_setting_length(a);
		out->v = calloc(out->n, sizeof(char *));
		for (size_t j = 0; j < out->n; j++)
			out->v[j] = strdup(config_setting_get_string_elem(a, (int)j));
		return;
	}
	fail_msg("%s is not in the shipped config", id);
}

static void test_directory_allow_defaults(void **state)
{
	(void)state;
	char path[512];
	config_t cf;
	struct yj_config *cfg = NULL;
	struct yj_strlist cs = { 0 }, fo = { 0 };
	const char *src = __FILE__;
	const char *slash = strrchr(src, '/');

	snprintf(path, sizeof(path), "%.*s/../../conf/yjlinkd.conf", slash ? (int)(slash - src) : 1, slash ? src : ".");
	config_init(&cf);
	assert_int_equal(config_read_file(&cf, path), CONFIG_TRUE);
	s_shipped_allow(&cf, "children_services:E06000042", &cs);
	s_shipped_allow(&cf, "force:E23000001", &fo);
	config_destroy(&cf);
	s_write_ref(S_DIR_HEADER, S_DIR_HEADER);
	assert_int_equal(s_load(S_REF_CONF, NULL, 0, &cfg), 0);
	assert_int_equal(cfg->directory_children_services_allow.n, cs.n);
	for (size_t i = 0; i < cs.n; i++)
		assert_string_equal(cfg->directory_children_services_allow.v[i], cs.v[i]);
	assert_int_equal(cfg->directory_force_allow.n, fo.n);
	for (size_t i = 0; i < fo.n; i++)
		assert_string_equal(cfg->directory_force_allow.v[i], fo.v[i]);
	yj_config_free(&cfg);
	yj_strlist_free(&cs);
	yj_strlist_free(&fo);
	s_clean_ref();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_loads_and_fills),
		cmocka_unit_test(test_routing_lookups),
		cmocka_unit_test(test_transport_none_and_overrides),
		cmocka_unit_test(test_required_and_bounds),
		cmocka_unit_test(test_type_errors),
		cmocka_unit_test(test_unknown_keys),
		cmocka_unit_test(test_secret_files),
		cmocka_unit_test(test_transport_refusals),
		cmocka_unit_test(test_digest_rules),
		cmocka_unit_test(test_reference),
		cmocka_unit_test(test_grouplist_reads),
		cmocka_unit_test(test_grouplist_errors),
		cmocka_unit_test(test_grouplist_reference),
		cmocka_unit_test(test_directory_recipients),
		cmocka_unit_test(test_directory_errors),
		cmocka_unit_test(test_dsa),
		cmocka_unit_test(test_directory_allow_defaults),
	};
	return cmocka_run_group_tests(tests, s_setup, s_teardown);
}
