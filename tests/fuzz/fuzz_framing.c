/* fuzz_framing.c: libFuzzer target for the YJL1 framing and the ingest core.
 *
 * Each input is one YJL1 request as the ROUTER would receive it, turned into
 * a struct yj_request exactly as adapters/in_yjl1.c s_read_one() does (wrong
 * frame count or magic: protocol_error, every frame joined as the payload),
 * then put through yj_ingest_submit() and yj_ingest_flush() against a real
 * LMDB store in a tmpfs directory, with the default config (embedded
 * yjlinkd.conf: its ingest.forces and routing rules) and the embedded
 * reference tables.
 *
 * Input layout:
 *   byte 0   control: bits 0-2 the frame count (value % 7: 0..6 frames);
 *            bit 3 an authenticated sender (CURVE user id);
 *            bit 4 submit the request twice; bit 5 with a flush between
 *   then     frames 0..n-2 each as a 2-byte big-endian length and its
 *            bytes (the length is cut to what is left); the last frame is
 *            the rest of the input
 *
 * Invariants: exactly one reply per request, with a valid status; a REJECT
 * detail is a JSON object with error/field/reason matching the reply's
 * fields, a known code and a clean field path; a framing fault is REJECT
 * protocol; a request the normaliser refuses gets that refusal (code and
 * field); an accepted one gets OK, DUP, REJECT conflict/forbidden or RETRY;
 * forbidden exactly for a force outside ingest.forces; OK sequence numbers
 * increase; a copy of a request sent again gets DUP with the same seq after
 * OK or DUP, and the same refusal after a REJECT. In the store: every OK and
 * DUP seq holds a Record of that feed whose event is byte for byte the
 * normalised request; every REJECT added exactly one quarantine entry, with
 * the reply's error/field/reason/source_id, the frame count, the payload
 * length and its first quarantine_max_bytes, and only UTF-8 in its string
 * fields.
 *
 * The store lives in $YJ_FUZZ_TMPDIR (default /dev/shm, else /tmp), is
 * opened once with a 2 MiB map and an 8 MiB cap, and is wiped and reopened
 * when it passes 4 MiB or answers RETRY; so state carries over between
 * inputs (DUP and conflict are reachable) but stays bounded.
 *
 * YJ_FUZZ_LOG=1 lets the daemon's log lines through (info and debug) to
 * stderr, to see what a reproducer does to them.
 *
 * YJN1 (the subscription protocol, notify.endpoint) has no framing code in
 * the daemon yet; when it has, its parser belongs in a target like this.
 */
#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "adapter.h"
#include "clock.h"
#include "config.h"
#include "core.h"
#include "db/events.h"
#include "fuzz_common.h"
#include "ingest.h"
#include "store.h"

#define S_MAX_FRAMES 6
#define S_MAP (2u << 20)
#define S_MAP_CAP (8u << 20)
#define S_RESET_AT (4u << 20)
#define S_MAX_ADAPTERS 16

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

static struct yj_config *g_cfg;
/* What the config loader is handed of the adapters compiled in: the conf of
 * each, NULL-terminated, as main.c builds it. */
static const struct yj_settings_owner *g_owners[S_MAX_ADAPTERS + 1];
static struct yj_store *g_store;
static struct yj_ingest *g_ing;
static struct yj_core g_core;      /* the parts ingest borrows: store, config, tables */
static char g_dir[256];
static uint64_t g_last_seq;  /* highest OK seq since the store was opened */
static unsigned long g_inputs;

/* ------------------------------------------------------------ replies */

struct s_reply {
	unsigned calls;
	enum yj_status status;
	uint64_t seq;
	char *source_id;  /* owned: up to the payload's size when unreadable as an event */
	char error[32];
	char field[200];
	char reason[300];
};

static void s_on_reply(void *arg, const struct yj_reply *r)
{
	struct s_reply *o = arg;
	o->calls++;
	FZ_CHECK(o->calls == 1, "a request was answered %u times", o->calls);
	FZ_CHECK(r->status >= YJ_STATUS_OK && r->status <= YJ_STATUS_RETRY, "reply status %d", (int)r->status);
	FZ_CHECK(r->source_id != NULL && strlen(r->source_id) == r->source_id_len, "reply source_id length");
	FZ_CHECK(r->detail != NULL && strlen(r->detail) == r->detail_len, "reply detail length");
	o->status = r->status;
	o->seq = r->seq;
	o->source_id = strdup(r->source_id);
	FZ_CHECK(o->source_id != NULL, "out of memory");
	switch (r->status) {
	case YJ_STATUS_OK:
	case YJ_STATUS_DUP: {
		char want[32];
		FZ_CHECK(r->seq > 0, "%s with seq 0", r->status == YJ_STATUS_OK ? "OK" : "DUP");
		snprintf(want, sizeof(want), "%llu", (unsigned long long)r->seq);
		FZ_CHECK(strcmp(want, r->detail) == 0, "OK/DUP detail \"%s\" is not the seq %s", r->detail, want);
		break;
	}
	case YJ_STATUS_REJECT: {
		FZ_CHECK(r->error && r->field && r->reason, "REJECT without error/field/reason");
		cJSON *d = cJSON_ParseWithLength(r->detail, r->detail_len);
		FZ_CHECK(cJSON_IsObject(d), "REJECT detail is not a JSON object: %s", r->detail);
		const char *e = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(d, "error"));
		const char *f = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(d, "field"));
		const char *why = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(d, "reason"));
		FZ_CHECK(e && f && why, "REJECT detail lacks error, field or reason: %s", r->detail);
		FZ_CHECK(cJSON_GetArraySize(d) == 3, "REJECT detail has other members: %s", r->detail);
		FZ_CHECK(strcmp(e, r->error) == 0 && strcmp(f, r->field) == 0 && strcmp(why, r->reason) == 0,
			 "REJECT detail %s differs from the reply's fields (%s, %s, %s)", r->detail, r->error, r->field,
			 r->reason);
		struct yj_reject rej = { .code = YJ_REJ_NONE };
		for (int c = YJ_REJ_PROTOCOL; c <= YJ_REJ_FORBIDDEN; c++) {
			if (strcmp(e, yj_reject_code_name((enum yj_reject_code)c)) == 0)
				rej.code = (enum yj_reject_code)c;
		}
		FZ_CHECK(rej.code != YJ_REJ_NONE, "REJECT with unknown error \"%s\"", e);
		snprintf(rej.field, sizeof(rej.field), "%s", f);
		snprintf(rej.reason, sizeof(rej.reason), "%s", why);
		FZ_CHECK(strlen(f) < sizeof(rej.field) && strlen(why) < sizeof(rej.reason), "field or reason too long");
		fz_check_reject(&rej, YJ_REJ_PROTOCOL, YJ_REJ_FORBIDDEN);
		snprintf(o->error, sizeof(o->error), "%s", e);
		snprintf(o->field, sizeof(o->field), "%s", f);
		snprintf(o->reason, sizeof(o->reason), "%s", why);
		cJSON_Delete(d);
		break;
	}
	case YJ_STATUS_RETRY:
		FZ_CHECK(r->detail_len > 0, "RETRY without a reason");
		break;
	}
}

/* -------------------------------------------------------------- store */

static int s_rm(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static void s_close(void)
{
	yj_ingest_destroy(&g_ing);
	yj_store_close(&g_store);
	if (g_dir[0])
		nftw(g_dir, s_rm, 8, FTW_DEPTH | FTW_PHYS);
	g_dir[0] = '\0';
}

static const char *s_base(void)
{
	const char *base = getenv("YJ_FUZZ_TMPDIR");
	if (!base || !*base)
		base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
	return base;
}

/* A crash ends the process without atexit: remove the stores of
 * yjlink-fuzz-<pid>-* whose process is gone. */
static void s_sweep(void)
{
	DIR *d = opendir(s_base());
	struct dirent *e;
	char path[512];
	if (!d)
		return;
	while ((e = readdir(d)) != NULL) {
		long pid;
		if (sscanf(e->d_name, "yjlink-fuzz-%ld-", &pid) != 1 || pid <= 0)
			continue;
		if (kill((pid_t)pid, 0) == 0 || errno != ESRCH)
			continue;
		snprintf(path, sizeof(path), "%s/%s", s_base(), e->d_name);
		nftw(path, s_rm, 8, FTW_DEPTH | FTW_PHYS);
	}
	closedir(d);
}

static void s_open(void)
{
	snprintf(g_dir, sizeof(g_dir), "%s/yjlink-fuzz-%ld-XXXXXX", s_base(), (long)getpid());
	if (!mkdtemp(g_dir)) {
		perror("fuzz_framing: mkdtemp");
		exit(1);
	}
	struct yj_store_opts so = { .path = g_dir, .map_size = S_MAP, .max_map_size = S_MAP_CAP };
	int ok = yj_store_open(&so, &g_store) == 0;
	g_core.store = g_store;
	g_core.cfg = g_cfg;
	g_core.ref = fz_ref();
	if (!ok || yj_ingest_new(&g_core, &g_ing) != 0) {
		fprintf(stderr, "fuzz_framing: cannot open a store in %s\n", g_dir);
		exit(1);
	}
	g_last_seq = 0;
}

static void s_atexit(void) { s_close(); }

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	/* YJ_FUZZ_LOG=1: the daemon's log lines on stderr (slow; for reproducing) */
	const char *lg = getenv("YJ_FUZZ_LOG");
	yj_log_set_level(lg && *lg && strcmp(lg, "0") != 0 ? YJ_LOG_DEBUG : YJ_LOG_ERR);
	struct yj_diag diag = { 0 };
	size_t n;
	for (n = 0; yj_adapters[n] && n < S_MAX_ADAPTERS; n++)
		g_owners[n] = &yj_adapters[n]->conf;
	if (yj_adapters[n]) {
		fprintf(stderr, "fuzz_framing: more than %d adapters compiled in\n", S_MAX_ADAPTERS);
		exit(1);
	}
	if (yj_config_load(NULL, NULL, 0, g_owners, &diag, &g_cfg) != 0) {
		fprintf(stderr, "fuzz_framing: the embedded config does not load\n");
		exit(1);
	}
	fz_ref();
	s_sweep();
	s_open();
	atexit(s_atexit);
	return 0;
}

/* ------------------------------------------------------------ framing */

struct s_frames {
	unsigned n;
	uint8_t *f[S_MAX_FRAMES];  /* each an exact-size heap copy, as zmq_msg_data would be */
	size_t len[S_MAX_FRAMES];
};

static void s_split(const uint8_t *p, size_t n, unsigned count, struct s_frames *fr)
{
	fr->n = count;
	for (unsigned i = 0; i < count; i++) {
		size_t len = n;
		if (i + 1 < count) {
			size_t want = n >= 2 ? (size_t)p[0] << 8 | p[1] : 0;
			size_t hdr = n >= 2 ? 2 : n;
			p += hdr;
			n -= hdr;
			len = want < n ? want : n;
		}
		fr->f[i] = malloc(len ? len : 1);
		FZ_CHECK(fr->f[i] != NULL, "out of memory");
		memcpy(fr->f[i], p, len);
		fr->len[i] = len;
		p += len;
		n -= len;
	}
}

static void s_free_frames(struct s_frames *fr)
{
	for (unsigned i = 0; i < fr->n; i++)
		free(fr->f[i]);
}

/* in_yjl1.c s_read_one(), from "struct yj_request req" to the submit call;
 * *joined is the caller's to free. */
static void s_build_request(const struct s_frames *fr, const char *sender, struct yj_request *req, char **joined)
{
	unsigned frames = fr->n;
	*req = (struct yj_request){ .origin = "yjl1", .frames = frames };
	req->sender = sender;
	*joined = NULL;
	if (frames != 4 || fr->len[0] != 4 || memcmp(fr->f[0], "YJL1", 4) != 0) {
		req->protocol_error = frames != 4 ? "a request has exactly four frames" : "frame 0 must be YJL1";
		size_t len = 0;
		for (unsigned i = 0; i < frames; i++)
			len += fr->len[i];
		*joined = malloc(len ? len : 1);
		FZ_CHECK(*joined != NULL, "out of memory");
		len = 0;
		for (unsigned i = 0; i < frames; i++) {
			memcpy(*joined + len, fr->f[i], fr->len[i]);
			len += fr->len[i];
		}
		req->payload = *joined;
		req->payload_len = len;
		if (frames >= 2) {
			req->feed = fr->f[1];
			req->feed_len = fr->len[1];
		}
		if (frames >= 3) {
			req->content_type = fr->f[2];
			req->content_type_len = fr->len[2];
		}
	} else {
		req->feed = fr->f[1];
		req->feed_len = fr->len[1];
		req->content_type = fr->f[2];
		req->content_type_len = fr->len[2];
		req->payload = fr->f[3];
		req->payload_len = fr->len[3];
	}
}

/* ------------------------------------------------------- expectations */

struct s_expect {
	int known;               /* 0: the clock decides (a time within a second of now): check less */
	int protocol;            /* REJECT protocol expected */
	int accepted;            /* the normaliser accepts it */
	enum yj_reject_code code;/* its refusal otherwise */
	char field[160];
	char force[64];          /* accepted: the event's force */
	struct fz_bytes packed;  /* accepted: the normalised event, packed (owned) */
};

static int s_allowed_force(const char *force)
{
	const struct yj_strlist *l = &g_cfg->ingest_forces;
	for (size_t i = 0; i < l->n; i++) {
		if (strcmp(l->v[i], force) == 0)
			return 1;
	}
	return 0;
}

/* What the ingest core must answer, decided from the normaliser alone, at
 * the fixed clock and one second later (the core reads the running clock). */
static void s_expect(const struct yj_request *req, struct s_expect *x)
{
	memset(x, 0, sizeof(*x));
	x->known = 1;
	enum yj_feed feed = yj_feed_from_name(req->feed, req->feed_len);
	enum yj_content_type ct = yj_content_type_from_name(req->content_type, req->content_type_len);
	if (req->protocol_error || feed == YJ_FEED_NONE || ct == YJ_CT_NONE) {
		x->protocol = 1;
		return;
	}
	struct yj_norm_result r1, r2;
	struct yj_arena a;
	yj_arena_init(&a, 32768);
	struct yj_norm_opts o1 = { .ref = fz_ref(), .now_us = FZ_NOW_US, .max_bytes = (size_t)g_cfg->ingest_max_message_bytes };
	struct yj_norm_opts o2 = o1;
	o2.now_us += 1000000;
	int rc1 = yj_normalise(&o1, feed, ct, req->payload, req->payload_len, &a, &r1);
	int rc2 = yj_normalise(&o2, feed, ct, req->payload, req->payload_len, &a, &r2);
	FZ_CHECK(rc1 != YJ_ENOMEM && rc2 != YJ_ENOMEM, "normaliser out of memory");
	if (rc1 != rc2 || r1.reject.code != r2.reject.code || strcmp(r1.reject.field, r2.reject.field) != 0) {
		x->known = 0;
	} else if (rc1 == 0) {
		x->accepted = 1;
		snprintf(x->force, sizeof(x->force), "%s", r1.event->force);
		x->packed = fz_pack(r1.event);
	} else {
		x->code = r1.reject.code;
		snprintf(x->field, sizeof(x->field), "%s", r1.reject.field);
	}
	yj_arena_free(&a);
}

static void s_check_against(const struct s_reply *r, const struct s_expect *x)
{
	if (r->status == YJ_STATUS_RETRY)
		return;  /* the store at its cap: allowed for anything */
	if (x->protocol) {
		FZ_CHECK(r->status == YJ_STATUS_REJECT && strcmp(r->error, "protocol") == 0 && !r->field[0],
			 "a framing fault got status %d %s \"%s\", not REJECT protocol", (int)r->status, r->error,
			 r->field);
		return;
	}
	if (!x->known)
		return;
	if (!x->accepted) {
		FZ_CHECK(r->status == YJ_STATUS_REJECT && strcmp(r->error, yj_reject_code_name(x->code)) == 0 &&
				 strcmp(r->field, x->field) == 0,
			 "the normaliser says %s \"%s\" but ingest answered status %d %s \"%s\"",
			 yj_reject_code_name(x->code), x->field, (int)r->status, r->error, r->field);
		return;
	}
	if (r->status == YJ_STATUS_REJECT) {
		int forbidden = strcmp(r->error, "forbidden") == 0;
		FZ_CHECK(forbidden || strcmp(r->error, "conflict") == 0,
			 "an event the normaliser accepts got REJECT %s \"%s\"", r->error, r->field);
		FZ_CHECK(forbidden == !s_allowed_force(x->force), "REJECT %s for force %s", r->error, x->force);
		return;
	}
	FZ_CHECK(s_allowed_force(x->force), "force %s outside ingest.forces got status %d", x->force, (int)r->status);
}

/* ------------------------------------------------- what the store holds */

struct s_quar {
	unsigned n;
	Yjlink__V1__Quarantined *q[2];  /* entries added by this input, in order */
};

static int s_last_fn(struct yj_txn *t, void *arg)
{
	uint64_t *v = arg;
	int rc = yj_txn_last_u64(t, YJ_DB_QUARANTINE, &v[0]);
	return rc ? rc : yj_txn_last_u64(t, YJ_DB_EVENTS, &v[1]);
}

static int s_quar_cb(void *arg, const void *key, size_t klen, const void *val, size_t vlen)
{
	struct s_quar *qs = arg;
	(void)key;
	FZ_CHECK(klen == 8, "quarantine key of %zu bytes", klen);
	FZ_CHECK(qs->n < 2, "more quarantine entries than refusals");
	qs->q[qs->n] = yjlink__v1__quarantined__unpack(NULL, vlen, val);
	FZ_CHECK(qs->q[qs->n] != NULL, "a quarantine record does not unpack");
	qs->n++;
	return 0;
}

struct s_quar_read {
	uint64_t after;
	struct s_quar *out;
};

static int s_quar_fn(struct yj_txn *t, void *arg)
{
	struct s_quar_read *r = arg;
	uint8_t k[8];
	yj_be64_put(k, r->after + 1);
	return yj_txn_iter(t, YJ_DB_QUARANTINE, k, 8, 0, s_quar_cb, r->out);
}

struct s_event_read {
	uint64_t seq;
	Yjlink__V1__Record *rec;
};

static int s_event_fn(struct yj_txn *t, void *arg)
{
	struct s_event_read *r = arg;
	const void *v;
	size_t n;
	int rc = yj_events_get(t, r->seq, &v, &n);
	if (rc)
		return rc;
	r->rec = yjlink__v1__record__unpack(NULL, n, v);
	return 0;
}

static void s_str_utf8(const char *what, const char *s)
{
	if (!s)
		return;
	FZ_CHECK(fz_utf8(s, false), "quarantine record's %s is not UTF-8 (a protobuf string; JSON in yjlinkctl)", what);
}

/* The quarantine entry of one REJECT: what the reply said and what came in. */
static void s_check_quarantined(const Yjlink__V1__Quarantined *q, const struct s_reply *r,
				const struct yj_request *req)
{
	size_t keep = req->payload_len;
	if (keep > (size_t)g_cfg->ingest_quarantine_max_bytes)
		keep = (size_t)g_cfg->ingest_quarantine_max_bytes;
	FZ_CHECK(q->error && strcmp(q->error, r->error) == 0, "quarantined as %s, answered %s", q->error, r->error);
	FZ_CHECK(q->field && strcmp(q->field, r->field) == 0, "quarantined field differs from the reply's");
	FZ_CHECK(q->reason && strcmp(q->reason, r->reason) == 0, "quarantined reason differs from the reply's");
	FZ_CHECK(q->source_id && strcmp(q->source_id, r->source_id) == 0, "quarantined source_id differs");
	FZ_CHECK(q->origin && strcmp(q->origin, "yjl1") == 0, "quarantine origin");
	FZ_CHECK(q->has_frames && q->frames == req->frames, "quarantined %u frames of %u", q->frames, req->frames);
	FZ_CHECK(q->has_payload_bytes && q->payload_bytes == req->payload_len, "quarantined payload_bytes");
	FZ_CHECK(q->payload.len == keep && (!keep || memcmp(q->payload.data, req->payload, keep) == 0),
		 "quarantined payload is not the first %zu bytes received", keep);
	s_str_utf8("feed", q->feed);
	s_str_utf8("content_type", q->content_type);
	s_str_utf8("source_id", q->source_id);
	s_str_utf8("field", q->field);
	s_str_utf8("reason", q->reason);
}

/* The stored event of an OK or DUP: that seq holds this normalised event. */
static void s_check_stored(const struct s_reply *r, const struct s_expect *x, const struct yj_request *req)
{
	struct s_event_read er = { .seq = r->seq };
	int rc = yj_store_read(g_store, s_event_fn, &er);
	FZ_CHECK(rc == 0 && er.rec, "seq %llu answered %s is not stored (rc %d)", (unsigned long long)r->seq,
		 r->status == YJ_STATUS_OK ? "OK" : "DUP", rc);
	Yjlink__V1__Record *rec = er.rec;
	FZ_CHECK(rec->has_seq && rec->seq == r->seq, "record seq");
	FZ_CHECK(rec->event && rec->event->source_id && strcmp(rec->event->source_id, r->source_id) == 0,
		 "stored event's source_id is not the reply's");
	enum yj_feed feed = yj_feed_from_name(req->feed, req->feed_len);
	FZ_CHECK(rec->feed && strcmp(rec->feed, yj_feed_name(feed)) == 0 && yj_event_feed(rec->event) == feed,
		 "stored under feed %s", rec->feed ? rec->feed : "(none)");
	if (x->known && x->accepted) {
		struct fz_bytes got = fz_pack(rec->event);
		fz_same_bytes(r->status == YJ_STATUS_OK ? "event stored on OK" : "event DUP points at", &x->packed, &got);
		free(got.p);
	}
	yjlink__v1__record__free_unpacked(rec, NULL);
}

/* ---------------------------------------------------------------- run */

static void s_maybe_reset(int retried)
{
	struct yj_store_stats st;
	if (retried || (++g_inputs % 128 == 0 && yj_store_stats(g_store, &st) == 0 && st.used_bytes > S_RESET_AT)) {
		s_close();
		s_open();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	uint8_t ctl = data[0];
	unsigned count = (ctl & 7u) % 7u;
	const char *sender = ctl & 8 ? "fuzz-curve-user" : NULL;
	int twice = (ctl & 16) != 0, flush_between = (ctl & 32) != 0;
	struct s_frames fr;
	struct yj_request req;
	char *joined;
	struct s_expect x;
	struct s_reply r1 = { 0 }, r2 = { 0 };

	s_split(data + 1, size - 1, count, &fr);
	s_build_request(&fr, sender, &req, &joined);
	s_expect(&req, &x);

	uint64_t last[2] = { 0, 0 };  /* quarantine id, event seq before */
	FZ_CHECK(yj_store_read(g_store, s_last_fn, last) == 0, "store read failed");

	yj_clock_set_us(FZ_NOW_US);
	yj_ingest_submit(g_ing, &req, s_on_reply, &r1);
	if (twice) {
		if (flush_between) {
			yj_ingest_flush(g_ing, NULL);
			FZ_CHECK(r1.calls == 1, "no reply after the flush");
		}
		yj_ingest_submit(g_ing, &req, s_on_reply, &r2);
	}
	FZ_CHECK(r1.calls <= 1 && r2.calls <= 1, "answered more than once before the flush");
	yj_ingest_flush(g_ing, NULL);
	FZ_CHECK(yj_ingest_pending(g_ing) == 0, "requests left pending after the flush");
	FZ_CHECK(r1.calls == 1, "request answered %u times", r1.calls);
	FZ_CHECK(!twice || r2.calls == 1, "second copy answered %u times", r2.calls);

	s_check_against(&r1, &x);
	if (r1.status == YJ_STATUS_OK) {
		FZ_CHECK(r1.seq > g_last_seq, "OK seq %llu not above the last %llu", (unsigned long long)r1.seq,
			 (unsigned long long)g_last_seq);
		g_last_seq = r1.seq;
	}
	int retried = r1.status == YJ_STATUS_RETRY || (twice && r2.status == YJ_STATUS_RETRY);
	if (twice && !retried) {
		s_check_against(&r2, &x);
		FZ_CHECK(strcmp(r1.source_id, r2.source_id) == 0, "the copies read different source_ids");
		switch (r1.status) {
		case YJ_STATUS_OK:
		case YJ_STATUS_DUP:
			FZ_CHECK(r2.status == YJ_STATUS_DUP && r2.seq == r1.seq,
				 "after %s seq %llu the copy got status %d seq %llu",
				 r1.status == YJ_STATUS_OK ? "OK" : "DUP", (unsigned long long)r1.seq, (int)r2.status,
				 (unsigned long long)r2.seq);
			break;
		case YJ_STATUS_REJECT:
			FZ_CHECK(r2.status == YJ_STATUS_REJECT && strcmp(r1.error, r2.error) == 0 &&
					 strcmp(r1.field, r2.field) == 0,
				 "after REJECT %s \"%s\" the copy got status %d %s \"%s\"", r1.error, r1.field,
				 (int)r2.status, r2.error, r2.field);
			break;
		default:
			break;
		}
	}

	/* the store: a quarantine entry per REJECT, the event of every OK/DUP */
	struct s_quar qs = { 0 };
	struct s_quar_read qr = { last[0], &qs };
	FZ_CHECK(yj_store_read(g_store, s_quar_fn, &qr) == 0, "quarantine read failed");
	unsigned want = 0;
	const struct s_reply *rs[2] = { &r1, &r2 };
	for (unsigned i = 0; i < (twice ? 2u : 1u); i++) {
		if (rs[i]->status == YJ_STATUS_REJECT) {
			FZ_CHECK(want < qs.n, "a REJECT without a quarantine entry");
			s_check_quarantined(qs.q[want++], rs[i], &req);
		} else if (rs[i]->status == YJ_STATUS_OK || rs[i]->status == YJ_STATUS_DUP) {
			s_check_stored(rs[i], &x, &req);
		}
	}
	FZ_CHECK(qs.n == want, "%u quarantine entries for %u refusals", qs.n, want);
	for (unsigned i = 0; i < qs.n; i++)
		yjlink__v1__quarantined__free_unpacked(qs.q[i], NULL);

	free(r1.source_id);
	free(r2.source_id);
	free(x.packed.p);
	free(joined);
	s_free_frames(&fr);
	s_maybe_reset(retried);
	return 0;
}
