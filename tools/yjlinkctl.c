/* yjlinkctl: the operator tool (interfaces.md §6). Talks to a running
 * yjlinkd over its control socket; see docs/control.md for the protocol.
 *
 * Exit codes: 0 done, 1 refused or failed (also: daemon unreachable),
 * 2 usage error.
 */
#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <libconfig.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zmq.h>

#include "embedded.h"

#define S_DEFAULT_CONFIG "/etc/yjlink/yjlinkd.conf"

struct s_opts {
	const char *config;    /* --config */
	const char *control;   /* --control */
	const char *reason;    /* --reason */
	const char *child, *since, *feed, *by, *rule, *date;
	int all;               /* --all */
	int dry_run;           /* --dry-run */
	long limit;            /* --limit, 0 = daemon's default */
	int json;              /* --json */
	int missing;           /* --missing (recipients) */
	int timeout_ms;        /* --timeout seconds * 1000 */
	const char *from, *to, *yjs, *format, *out, *population; /* report */
};

static void s_usage(FILE *out)
{
	fprintf(out,
		"usage: yjlinkctl [--config FILE | --control ENDPOINT] [--json] [--timeout S] COMMAND ...\n"
		"\n"
		"commands:\n"
		"  status                                   version, uptime, feeds, counts, store\n"
		"  events [--child ID] [--since T] [--feed F] [--limit N]\n"
		"                                           list stored events, newest first\n"
		"  show SEQ --reason TEXT                   one event in full (audited)\n"
		"  quarantine list [--limit N]              rejected input\n"
		"  quarantine show ID --reason TEXT         one rejected message, raw (audited)\n"
		"  outbox                                   pending deliveries by recipient, and unroutable ones\n"
		"  subscribers                              YJN1 subscriptions: connected, last acknowledged, lag\n"
		"  recipients [--missing]                   every recipient (config or directory): kind, transport, state;\n"
		"                                           --missing: authorities and forces a rule could need, unreached\n"
		"  dlq list | dlq retry ID|--all | dlq drop ID --reason TEXT\n"
		"                                           dead letters\n"
		"  holds list | holds release SEQ --by NAME --reason TEXT\n"
		"                                           events held for the officer in the case\n"
		"  digest preview YJS [--date D] --reason TEXT\n"
		"                                           the next digest as it stands, or the one sent on D\n"
		"  digest send YJS --date D                 send the digest of day D again (same id, audited)\n"
		"  replay --since T [--rule R]              route stored events again (new notifications)\n"
		"  audit [--since T] [--recipient R] [--child ID] | audit verify [--anchor SEQ:HASH]\n"
		"                                           the disclosure log; check its hash chain\n"
		"  quarantine drop ID --reason TEXT         erase one refused message (audited)\n"
		"  purge [--dry-run]                        erase now what retention says is due (audited); --dry-run shows it\n"
		"  reload                                   re-read the config, like SIGHUP\n"
		"  report --from D --to D [--yjs ID] --format html|csv|json [--out FILE] [--population CSV]\n"
		"                                           board report of the period (suppressed aggregates)\n"
		"  clock set T                              move the daemon's clock (testing.clock_control)\n"
		"  keygen NAME                              write a CURVE key pair NAME.key (0600) and NAME.pub,\n"
		"                                           print the public key (no daemon needed)\n"
		"\n"
		"The daemon is found through --control, or the control.endpoint of --config\n"
		"(default %s, else the built-in default config).\n",
		S_DEFAULT_CONFIG);
}

/* control.endpoint of a config (the embedded default when file is NULL),
 * read with libconfig alone: yj_config_load() would read every secret file
 * the config names, which the operator running yjlinkctl must not need to
 * be able to read. 1 and *ep (owned by cf) when set, 0 when absent, -1 after
 * reporting a file that cannot be read or a value that is not a string. */
static int s_config_endpoint(config_t *cf, const char *file, const char **ep)
{
	int ok;
	if (file) {
		ok = config_read_file(cf, file);
	} else {
		const struct yj_embedded_file *ef = yj_embedded_find("yjlinkd.conf");
		ok = ef ? config_read_string(cf, ef->data) : CONFIG_FALSE;
	}
	const char *label = file ? file : "yjlinkd.conf (embedded)";
	if (ok != CONFIG_TRUE) {
		if (config_error_type(cf) == CONFIG_ERR_FILE_IO)
			fprintf(stderr, "%s: cannot read: %s\n", label, strerror(errno));
		else
			fprintf(stderr, "%s:%d: %s\n", config_error_file(cf) ? config_error_file(cf) : label,
				config_error_line(cf), config_error_text(cf));
		return -1;
	}
	if (config_lookup_string(cf, "control.endpoint", ep) == CONFIG_TRUE)
		return 1;
	config_setting_t *s = config_lookup(cf, "control.endpoint");
	if (s) {
		fprintf(stderr, "%s:%d: 'control.endpoint' must be a string\n", label, (int)config_setting_source_line(s));
		return -1;
	}
	return 0;
}

static char *s_endpoint(const struct s_opts *o)
{
	if (o->control)
		return strdup(o->control);
	const char *file = o->config;
	if (!file && access(S_DEFAULT_CONFIG, R_OK) == 0)
		file = S_DEFAULT_CONFIG;
	config_t cf, def;
	const char *ep = NULL;
	char *out = NULL;
	config_init(&cf);
	config_init(&def);
	int found = s_config_endpoint(&cf, file, &ep);
	/* Not in the file: the daemon then uses its built-in default, which the default config states. */
	if (found == 0 && file)
		found = s_config_endpoint(&def, NULL, &ep);
	if (found <= 0)
		fprintf(stderr, "yjlinkctl: cannot read the config to find the daemon; give --control ENDPOINT\n");
	else if (!(out = strdup(ep)))
		fprintf(stderr, "yjlinkctl: out of memory\n");
	config_destroy(&def);
	config_destroy(&cf);
	return out;
}

/* Send {"cmd", "args"}; on success *reply holds the daemon's JSON. Returns the exit code. */
static int s_call(const struct s_opts *o, cJSON *req, cJSON **reply)
{
	int code = 1;
	char *ep = s_endpoint(o);
	void *ctx = NULL, *sock = NULL;
	char *body = NULL;
	zmq_msg_t m[3];
	int nm = 0;

	if (!ep)
		return 1;
	ctx = zmq_ctx_new();
	sock = ctx ? zmq_socket(ctx, ZMQ_DEALER) : NULL;
	if (!sock)
		goto out;
	int linger = 0;
	zmq_setsockopt(sock, ZMQ_LINGER, &linger, sizeof(linger));
	zmq_setsockopt(sock, ZMQ_RCVTIMEO, &o->timeout_ms, sizeof(o->timeout_ms));
	if (zmq_connect(sock, ep) != 0) {
		fprintf(stderr, "yjlinkctl: cannot connect to %s: %s\n", ep, zmq_strerror(zmq_errno()));
		goto out;
	}
	body = cJSON_PrintUnformatted(req);
	if (!body || zmq_send(sock, "YJC1", 4, ZMQ_SNDMORE) < 0 || zmq_send(sock, body, strlen(body), 0) < 0)
		goto out;
	for (int more = 1; more && nm < 3; nm++) {
		zmq_msg_init(&m[nm]);
		if (zmq_msg_recv(&m[nm], sock, 0) < 0) {
			zmq_msg_close(&m[nm]);
			fprintf(stderr,
				"yjlinkctl: no answer from yjlinkd at %s within %d s: is it running? "
				"(systemctl status yjlinkd)\n",
				ep, o->timeout_ms / 1000);
			goto out;
		}
		more = zmq_msg_more(&m[nm]);
	}
	if (nm != 3 || zmq_msg_size(&m[1]) != 1) {
		fprintf(stderr, "yjlinkctl: malformed answer from %s\n", ep);
		goto out;
	}
	code = *(char *)zmq_msg_data(&m[1]) - '0';
	*reply = cJSON_ParseWithLength(zmq_msg_data(&m[2]), zmq_msg_size(&m[2]));
	if (!*reply) {
		fprintf(stderr, "yjlinkctl: unreadable answer from %s\n", ep);
		code = 1;
	}
out:
	for (int i = 0; i < nm; i++)
		zmq_msg_close(&m[i]);
	cJSON_free(body);
	if (sock)
		zmq_close(sock);
	if (ctx)
		zmq_ctx_term(ctx);
	free(ep);
	return code;
}

/* --- what reaches the operator's terminal ----------------------------------
 *
 * Names and free text come from police feeds and may hold anything JSON can
 * carry. Nothing from the daemon reaches the terminal that could drive it
 * (ESC [ ..., OSC 52 writing the clipboard, a C1 CSI), reorder what follows
 * (bidi controls) or forge a line. Per character of every string (keys too):
 *   C0 controls and DEL        text: \xHH      json: \u00HH
 *   C1 controls (U+0080-009F)  text: \u00HH    json: \u00HH
 *   bidi controls (U+061C, U+200E, U+200F, U+202A-202E, U+2066-2069) and
 *   U+2028, U+2029             text: \uHHHH    json: \uHHHH
 *   a byte that is not UTF-8   text: \xHH      json: \ufffd
 * Text mode keeps LF (and CRLF, as LF) only in the fields that are multi-line
 * by design (a digest preview's headers and text, which the daemon built and
 * cleaned).
 * cJSON escapes C0 itself but writes DEL, C1, bidi and bad bytes raw, hence
 * the pass over its output. Backslashes are left alone: a literal "\x1b" in
 * a name is odd but harmless. */

/* The code point of the UTF-8 character at p and its length in *len, or -1
 * (with *len 1) when p does not start a valid, shortest-form character. */
static long s_utf8(const unsigned char *p, size_t *len)
{
	long cp;
	size_t n;
	*len = 1;
	if (*p < 0x80)
		return *p;
	if (*p >= 0xc2 && *p <= 0xdf)
		n = 2, cp = *p & 0x1f;
	else if (*p >= 0xe0 && *p <= 0xef)
		n = 3, cp = *p & 0x0f;
	else if (*p >= 0xf0 && *p <= 0xf4)
		n = 4, cp = *p & 0x07;
	else
		return -1;
	for (size_t i = 1; i < n; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return -1;
		cp = (cp << 6) | (p[i] & 0x3f);
	}
	if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10ffff)) || (cp >= 0xd800 && cp <= 0xdfff))
		return -1;
	*len = n;
	return cp;
}

static int s_is_bidi(long cp)
{
	return cp == 0x061c || cp == 0x200e || cp == 0x200f || (cp >= 0x202a && cp <= 0x202e) ||
	       (cp >= 0x2066 && cp <= 0x2069) || cp == 0x2028 || cp == 0x2029;
}

/* s with every character above escaped, as a new string (NULL when out of
 * memory). json: s is cJSON's output and the escapes are JSON's; else text,
 * keeping LF when lf. */
static char *s_safe(const char *s, int json, int lf)
{
	size_t n = strlen(s), len = 0;
	char *out = malloc(n * 6 + 1); /* each input byte becomes at most 6 */
	const unsigned char *p = (const unsigned char *)s;
	if (!out)
		return NULL;
	while (*p) {
		size_t cl;
		long cp = s_utf8(p, &cl);
		if (lf && cp == '\r' && p[1] == '\n') {
			/* a CRLF line end of a multi-line field: the LF alone ends the line */
		} else if (cp < 0)
			len += (size_t)sprintf(out + len, json ? "\\ufffd" : "\\x%02x", *p);
		else if ((cp < 0x20 && !(lf && cp == '\n')) || cp == 0x7f)
			len += (size_t)sprintf(out + len, json ? "\\u%04lx" : "\\x%02lx", cp);
		else if ((cp >= 0x80 && cp <= 0x9f) || s_is_bidi(cp))
			len += (size_t)sprintf(out + len, "\\u%04lx", cp);
		else {
			memcpy(out + len, p, cl);
			len += cl;
		}
		p += cl;
	}
	out[len] = '\0';
	return out;
}

/* Escape, in place, every key and string of the daemon's reply for the text
 * printers below; LF stays in a digest preview's "headers" and "text". Key
 * and value strings are cJSON's, from malloc (the default hooks). 0, or -1
 * when out of memory. */
static int s_safe_tree(cJSON *o, int digest)
{
	cJSON *it;
	cJSON_ArrayForEach(it, o) {
		if (it->string && !(it->type & cJSON_StringIsConst)) {
			char *k = s_safe(it->string, 0, 0);
			if (!k)
				return -1;
			free(it->string);
			it->string = k;
		}
		if (cJSON_IsString(it) && it->valuestring) {
			int lf = digest && it->string && (!strcmp(it->string, "headers") || !strcmp(it->string, "text"));
			char *v = s_safe(it->valuestring, 0, lf);
			if (!v)
				return -1;
			free(it->valuestring);
			it->valuestring = v;
		} else if ((cJSON_IsObject(it) || cJSON_IsArray(it)) && s_safe_tree(it, 0) < 0) {
			return -1;
		}
	}
	return 0;
}

/* Print JSON text j (cJSON's output) and a newline, with the escapes above. */
static void s_put_json(const char *j)
{
	char *safe = j ? s_safe(j, 1, 0) : NULL;
	printf("%s\n", safe ? safe : "{}");
	free(safe);
}

static const char *s_str(const cJSON *o, const char *k)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
	return cJSON_IsString(v) ? v->valuestring : "";
}

static double s_num(const cJSON *o, const char *k)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
	return cJSON_IsNumber(v) ? v->valuedouble : 0;
}

static void s_print_object(const cJSON *o, int indent)
{
	const cJSON *it;
	cJSON_ArrayForEach(it, o) {
		if (cJSON_IsObject(it)) {
			printf("%*s%s:\n", indent, "", it->string);
			s_print_object(it, indent + 2);
		} else if (cJSON_IsString(it)) {
			printf("%*s%s: %s\n", indent, "", it->string, it->valuestring);
		} else if (cJSON_IsNumber(it)) {
			printf("%*s%s: %.0f\n", indent, "", it->string, it->valuedouble);
		} else {
			char *s = cJSON_PrintUnformatted(it);
			printf("%*s%s: %s\n", indent, "", it->string ? it->string : "", s ? s : "");
			cJSON_free(s);
		}
	}
}

static void s_print_human(const char *cmd, const char *sub, const cJSON *r)
{
	if (!strcmp(cmd, "events")) {
		const cJSON *e;
		printf("%-10s %-20s %-26s %-12s %-24s %s\n", "SEQ", "FEED", "OCCURRED_AT", "FORCE", "SOURCE_ID", "STATUS");
		cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(r, "events")) {
			printf("%-10.0f %-20s %-26s %-12s %-24s %s\n", s_num(e, "seq"), s_str(e, "feed"),
			       s_str(e, "occurred_at"), s_str(e, "force"), s_str(e, "source_id"),
			       s_str(e, "custody_status"));
		}
	} else if (!strcmp(cmd, "quarantine") && (!sub || !strcmp(sub, "list"))) {
		const cJSON *e;
		printf("%-8s %-26s %-6s %-20s %-13s %-28s %s\n", "ID", "RECEIVED_AT", "ORIGIN", "FEED", "ERROR", "FIELD",
		       "SOURCE_ID");
		cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(r, "entries")) {
			printf("%-8.0f %-26s %-6s %-20.20s %-13s %-28s %s\n", s_num(e, "id"), s_str(e, "received_at"),
			       s_str(e, "origin"), s_str(e, "feed"), s_str(e, "error"), s_str(e, "field"),
			       s_str(e, "source_id"));
		}
	} else if (!strcmp(cmd, "digest") && sub && !strcmp(sub, "preview")) {
		printf("Subject: %s\n%sAttachment: %s\n\n%s", s_str(r, "subject"), s_str(r, "headers"),
		       s_str(r, "attachment"), s_str(r, "text"));
	} else if (!strcmp(cmd, "subscribers")) {
		const cJSON *e;
		printf("%-40s %-9s %12s %8s %9s %8s %7s %s\n", "RECIPIENT", "CONNECTED", "LAST_ACKED", "HELD", "IN_FLIGHT",
		       "LAG", "WINDOW", "ADDRESS");
		cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(r, "subscribers")) {
			printf("%-40s %-9s %12.0f %8.0f %9.0f %8.0f %7.0f %s\n", s_str(e, "recipient"),
			       cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(e, "connected")) ? "yes" : "no",
			       s_num(e, "last_acked"), s_num(e, "held"), s_num(e, "in_flight"), s_num(e, "lag"),
			       s_num(e, "window"), s_str(e, "address"));
		}
	} else if (!strcmp(cmd, "recipients") && cJSON_GetObjectItemCaseSensitive(r, "missing")) {
		const cJSON *e;
		if (!s_num(r, "count")) {
			printf("every local authority and force a rule could need has a destination\n");
			return;
		}
		printf("%.0f local authorities and forces a rule could need have no destination (fill their rows in "
		       "children_services.csv / force_contacts.csv, or declare them in recipients):\n",
		       s_num(r, "count"));
		printf("%-30s %-10s %s\n", "ID", "UNROUTABLE", "NAME");
		cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(r, "missing"))
			printf("%-30s %10.0f %s\n", s_str(e, "id"), s_num(e, "unroutable"), s_str(e, "name"));
	} else if (!strcmp(cmd, "recipients")) {
		const cJSON *e;
		printf("%-36s %-17s %-9s %-9s %7s %10s %4s %-32s %s\n", "ID", "KIND", "TRANSPORT", "SOURCE", "WAITING",
		       "UNROUTABLE", "DLQ", "STATE", "NAME");
		cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(r, "recipients")) {
			printf("%-36s %-17s %-9s %-9s %7.0f %10.0f %4.0f %-32s %s\n", s_str(e, "id"), s_str(e, "kind"),
			       s_str(e, "transport"), s_str(e, "source"), s_num(e, "waiting"), s_num(e, "unroutable"),
			       s_num(e, "dead_letters"), s_str(e, "state"), s_str(e, "name"));
		}
	} else if (!strcmp(cmd, "show")) {
		char *s = cJSON_Print(cJSON_GetObjectItemCaseSensitive(r, "event"));
		s_put_json(s ? s : "");
		cJSON_free(s);
	} else {
		s_print_object(r, 0);
	}
}

/* Write len bytes of data and a newline to a new file path (O_EXCL: an
 * existing key is never overwritten) with mode. 0, or -1 after saying why. */
static int s_write_new(const char *path, const char *data, size_t len, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
	if (fd < 0) {
		fprintf(stderr, "yjlinkctl: keygen: cannot create %s: %s\n", path, strerror(errno));
		return -1;
	}
	/* The umask only narrows, but an explicit mode says what was meant. */
	int ok = fchmod(fd, mode) == 0;
	const char nl = '\n';
	ok = ok && write(fd, data, len) == (ssize_t)len && write(fd, &nl, 1) == 1 && fsync(fd) == 0;
	if (close(fd) != 0)
		ok = 0;
	if (!ok) {
		fprintf(stderr, "yjlinkctl: keygen: cannot write %s: %s\n", path, strerror(errno));
		unlink(path);
		return -1;
	}
	return 0;
}

/* `keygen NAME` (interfaces.md §6): NAME.key holds the secret key (Z85,
 * mode 0600), NAME.pub the public key; the public key is printed. Both
 * files are new: nothing is overwritten. Exit code as main's. */
static int s_keygen(const char *name, int json)
{
	char pub[41], sec[41], *kpath = NULL, *ppath = NULL;
	int rc = 1;

	if (!name || !*name) {
		fprintf(stderr, "yjlinkctl: keygen needs NAME (writes NAME.key and NAME.pub)\n");
		return 2;
	}
	if (asprintf(&kpath, "%s.key", name) < 0 || asprintf(&ppath, "%s.pub", name) < 0) {
		fprintf(stderr, "yjlinkctl: out of memory\n");
		goto out;
	}
	if (zmq_curve_keypair(pub, sec) != 0) {
		fprintf(stderr, "yjlinkctl: keygen: %s\n", zmq_strerror(zmq_errno()));
		goto out;
	}
	if (s_write_new(kpath, sec, 40, 0600))
		goto out;
	if (s_write_new(ppath, pub, 40, 0644)) {
		unlink(kpath); /* ours, just made: no half pair is left */
		goto out;
	}
	if (json)
		printf("{\"public_key\": \"%s\", \"key_file\": \"%s\", \"pub_file\": \"%s\"}\n", pub, kpath, ppath);
	else
		printf("%s\n", pub);
	rc = 0;
out:
	explicit_bzero(sec, sizeof(sec));
	free(kpath);
	free(ppath);
	return rc;
}

/* `report` (interfaces.md §6): the report itself goes to --out FILE (made
 * 0640, replaced whole through a temporary file) or stdout: a JSON report
 * as one object, HTML and CSV as they are. Exit code as main's. */
static int s_report_output(const struct s_opts *o, const cJSON *reply)
{
	const cJSON *rep = cJSON_GetObjectItemCaseSensitive(reply, "report");
	char *owned = NULL;
	const char *data;
	if (rep) {
		owned = cJSON_PrintUnformatted(rep);
		data = owned;
	} else {
		data = s_str(reply, "content");
	}
	if (!data) {
		fprintf(stderr, "yjlinkctl: out of memory\n");
		return 1;
	}
	int rc = 0;
	if (!o->out) {
		fputs(data, stdout);
		if (owned)
			fputc('\n', stdout);
	} else {
		char *tmp = NULL;
		int fd = -1;
		if (asprintf(&tmp, "%s.tmp-%ld", o->out, (long)getpid()) < 0 ||
		    (fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640)) < 0) {
			fprintf(stderr, "yjlinkctl: cannot write %s: %s\n", o->out, strerror(errno));
			rc = 1;
		} else {
			size_t len = strlen(data), done = 0;
			while (done < len) {
				ssize_t w = write(fd, data + done, len - done);
				if (w <= 0)
					break;
				done += (size_t)w;
			}
			if (done != len || (owned && write(fd, "\n", 1) != 1) || fsync(fd) != 0 || close(fd) != 0 ||
			    rename(tmp, o->out) != 0) {
				fprintf(stderr, "yjlinkctl: cannot write %s: %s\n", o->out, strerror(errno));
				unlink(tmp);
				rc = 1;
			} else if (o->json) {
				printf("{\"out\": \"%s\", \"bytes\": %zu}\n", o->out, len);
			}
		}
		free(tmp);
	}
	cJSON_free(owned);
	return rc;
}

/* The population CSV of --population FILE (docs/report.md), read here so the
 * daemon needs no access to the operator's files. NULL after saying why. */
static char *s_read_text(const char *path)
{
	FILE *f = fopen(path, "r");
	char *buf = NULL;
	size_t len = 0;
	if (!f) {
		fprintf(stderr, "yjlinkctl: cannot read %s: %s\n", path, strerror(errno));
		return NULL;
	}
	FILE *m = open_memstream(&buf, &len);
	int ch;
	while (m && (ch = fgetc(f)) != EOF && len < (1 << 20))
		fputc(ch, m);
	fclose(f);
	if (!m || fclose(m) != 0) {
		fprintf(stderr, "yjlinkctl: out of memory\n");
		return NULL;
	}
	return buf;
}

int main(int argc, char **argv)
{
	static const struct option lopts[] = {
		{ "config", required_argument, NULL, 'c' }, { "control", required_argument, NULL, 'C' },
		{ "json", no_argument, NULL, 'j' },         { "reason", required_argument, NULL, 'r' },
		{ "child", required_argument, NULL, 'k' },  { "since", required_argument, NULL, 's' },
		{ "feed", required_argument, NULL, 'f' },   { "limit", required_argument, NULL, 'l' },
		{ "by", required_argument, NULL, 'b' },     { "rule", required_argument, NULL, 'R' },
		{ "timeout", required_argument, NULL, 't' }, { "help", no_argument, NULL, 'h' },
		{ "date", required_argument, NULL, 'D' },    { "all", no_argument, NULL, 'A' },
		{ "dry-run", no_argument, NULL, 'n' },      { "anchor", required_argument, NULL, 1007 },
		{ "missing", no_argument, NULL, 1008 },
		{ "from", required_argument, NULL, 1001 },  { "to", required_argument, NULL, 1002 },
		{ "yjs", required_argument, NULL, 1003 },   { "format", required_argument, NULL, 1004 },
		{ "out", required_argument, NULL, 1005 },   { "population", required_argument, NULL, 1006 },
		{ NULL, 0, NULL, 0 },
	};
	struct s_opts o = { .timeout_ms = 10000 };
	int timeout_given = 0;
	const char *anchor = NULL; /* --anchor SEQ:HASH (audit verify) */
	int c;
	/* Options may follow the command words (yjlinkctl show 42 --reason x). */
	while ((c = getopt_long(argc, argv, "+", lopts, NULL)) != -1 || optind < argc) {
		if (c == -1) {
			/* A positional word: collect it and go on parsing. */
			optind++;
			continue;
		}
		switch (c) {
		case 'c': o.config = optarg; break;
		case 'C': o.control = optarg; break;
		case 'j': o.json = 1; break;
		case 'r': o.reason = optarg; break;
		case 'k': o.child = optarg; break;
		case 's': o.since = optarg; break;
		case 'f': o.feed = optarg; break;
		case 'b': o.by = optarg; break;
		case 'R': o.rule = optarg; break;
		case 'D': o.date = optarg; break;
		case 'A': o.all = 1; break;
		case 'n': o.dry_run = 1; break;
		case 1001: o.from = optarg; break;
		case 1002: o.to = optarg; break;
		case 1003: o.yjs = optarg; break;
		case 1004: o.format = optarg; break;
		case 1005: o.out = optarg; break;
		case 1006: o.population = optarg; break;
		case 1007: anchor = optarg; break;
		case 1008: o.missing = 1; break;
		case 'l': o.limit = strtol(optarg, NULL, 10); if (o.limit <= 0) { fprintf(stderr, "yjlinkctl: --limit must be a positive number\n"); return 2; } break;
		case 't': o.timeout_ms = (int)(strtod(optarg, NULL) * 1000); timeout_given = 1; break;
		case 'h': s_usage(stdout); return 0;
		default: s_usage(stderr); return 2;
		}
	}
	/* Collect the positional words (getopt with "+" stopped at each). */
	const char *words[8];
	int nw = 0;
	for (int i = 1; i < argc && nw < 8; i++) {
		if (argv[i][0] == '-' && argv[i][1] == '-') {
			const struct option *lo;
			for (lo = lopts; lo->name; lo++) {
				if (!strcmp(argv[i] + 2, lo->name))
					break;
			}
			if (lo->name && lo->has_arg == required_argument)
				i++;
			continue;
		}
		words[nw++] = argv[i];
	}
	if (nw == 0) {
		s_usage(stderr);
		return 2;
	}
	const char *cmd = words[0], *sub = nw > 1 ? words[1] : NULL;
	/* Local: a key pair is made where the operator stands, not by the daemon. */
	if (!strcmp(cmd, "keygen"))
		return nw == 2 ? s_keygen(sub, o.json) : (s_usage(stderr), 2);
	cJSON *req = cJSON_CreateObject(), *args = cJSON_AddObjectToObject(req, "args");
	cJSON_AddStringToObject(req, "cmd", cmd);
	if (o.reason)
		cJSON_AddStringToObject(args, "reason", o.reason);
	if (o.child)
		cJSON_AddStringToObject(args, "child", o.child);
	if (o.since)
		cJSON_AddStringToObject(args, "since", o.since);
	if (o.feed)
		cJSON_AddStringToObject(args, "feed", o.feed);
	if (o.by)
		cJSON_AddStringToObject(args, "by", o.by);
	if (o.rule)
		cJSON_AddStringToObject(args, "rule", o.rule);
	if (o.limit)
		cJSON_AddNumberToObject(args, "limit", (double)o.limit);
	if (o.date)
		cJSON_AddStringToObject(args, "date", o.date);
	if (o.all)
		cJSON_AddBoolToObject(args, "all", 1);
	if (o.dry_run)
		cJSON_AddBoolToObject(args, "dry_run", 1);
	if (anchor)
		cJSON_AddStringToObject(args, "anchor", anchor);
	if (o.missing)
		cJSON_AddBoolToObject(args, "missing", 1);
	if (o.json)
		cJSON_AddBoolToObject(args, "full", 1);  /* machine output: everything, e.g. a digest's HTML and CSV */

	int usage = 0;
	if (!strcmp(cmd, "show")) {
		if (nw != 2)
			usage = 1;
		else
			cJSON_AddStringToObject(args, "seq", words[1]);
	} else if (!strcmp(cmd, "quarantine") || !strcmp(cmd, "dlq") || !strcmp(cmd, "holds") ||
		   !strcmp(cmd, "digest") || !strcmp(cmd, "audit")) {
		if (sub)
			cJSON_AddStringToObject(args, "sub", sub);
		if (nw > 2)
			cJSON_AddStringToObject(args, !strcmp(cmd, "quarantine") || !strcmp(cmd, "dlq") ? "id" : "arg",
						words[2]);
	} else if (!strcmp(cmd, "replay")) {
		if (nw != 1 || !o.since)
			usage = 1;
	} else if (!strcmp(cmd, "report")) {
		/* The daemon gives a report's helper up to 120 s (reportjob.h):
		 * wait a little longer than that for its answer. */
		if (!timeout_given)
			o.timeout_ms = 130000;
		if (nw != 1 || !o.from || !o.to || !o.format) {
			usage = 1;
		} else {
			cJSON_AddStringToObject(args, "from", o.from);
			cJSON_AddStringToObject(args, "to", o.to);
			cJSON_AddStringToObject(args, "format", o.format);
			if (o.yjs)
				cJSON_AddStringToObject(args, "yjs", o.yjs);
			char *pop = o.population ? s_read_text(o.population) : NULL;
			if (o.population && !pop) {
				cJSON_Delete(req);
				return 1;
			}
			if (pop)
				cJSON_AddStringToObject(args, "population", pop);
			free(pop);
		}
	} else if (!strcmp(cmd, "clock")) {
		if (nw != 3 || strcmp(words[1], "set"))
			usage = 1;
		else
			cJSON_AddStringToObject(args, "set", words[2]);
	} else if (nw != 1) {
		usage = 1;
	}
	if (usage) {
		fprintf(stderr, "yjlinkctl: wrong arguments for '%s'\n", cmd);
		s_usage(stderr);
		cJSON_Delete(req);
		return 2;
	}
	cJSON *reply = NULL;
	int code = s_call(&o, req, &reply);
	cJSON_Delete(req);
	if (!reply)
		return code ? code : 1;
	if (!code && !strcmp(cmd, "report")) {
		code = s_report_output(&o, reply);
	} else if (o.json) {
		char *s = cJSON_PrintUnformatted(reply);
		s_put_json(s);
		cJSON_free(s);
	} else if (s_safe_tree(reply, !strcmp(cmd, "digest")) < 0) {
		fprintf(stderr, "yjlinkctl: out of memory\n");
		code = 1;
	} else if (code) {
		fprintf(stderr, "yjlinkctl: %s\n", s_str(reply, "error"));
	} else {
		s_print_human(cmd, sub, reply);
	}
	cJSON_Delete(reply);
	return code;
}
