/* bench_fill: a store of many events, built fast, for the start-up
 * benchmark (bench/bench_startup.py: spec/quality.md "start-up", <= 1 s to
 * READY with 10,000,000 events stored).
 *
 *   yjlink-sim --stdout --days D --per-day K --count N | bench_fill STORE_DIR
 *
 * Reads FEED<TAB>JSON lines (what yjlink-sim --stdout writes) and hands each
 * to the daemon's own ingest (ingest.c: normalise, every index of
 * db/events.c, the collection audit record of each group commit), as
 * in_yjl1 would, with no ZeroMQ between and no routing: the config here has
 * no rules, so the store ends up holding events and their indexes as a
 * long-running deployment has them, with nothing waiting in the outbox.
 * Replaying ten million events through YJL1 would take over five minutes;
 * this takes as long as yjlink-sim needs to write them (it runs on the
 * other core).
 *
 * Prints one line at the end: events=N ok=N reject=N retry=N elapsed=S
 * rate=R stored=N store_mib=M (pages in use). Exit status 0 when every
 * line was answered and the store took every batch (REJECT included:
 * yjlink-sim sends a few events ingest refuses by design), 1 otherwise.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "adapter.h"
#include "config.h"
#include "core.h"
#include "diag.h"
#include "err.h"
#include "ingest.h"
#include "log.h"
#include "refdata.h"
#include "store.h"

/* No rules: events are stored, nothing is routed. The force is yjlink-sim's default. */
static const char s_config[] = "deployment = { id = \"bench\"; name = \"Bench fill\"; force = \"E23000029\"; };\n"
			       "recipients = ();\n"
			       "rules = ();\n"
			       "ingest = { batch_max = 65536; };\n";

struct s_counts {
	unsigned long ok, dup, reject, retry;
	char first_reject[200];  /* what the first refusal said, for the operator */
};

static void s_on_reply(void *arg, const struct yj_reply *r)
{
	struct s_counts *c = arg;
	switch (r->status) {
	case YJ_STATUS_OK: c->ok++; break;
	case YJ_STATUS_DUP: c->dup++; break;
	case YJ_STATUS_REJECT:
		if (!c->reject++)
			snprintf(c->first_reject, sizeof(c->first_reject), "%.*s", (int)r->detail_len, r->detail);
		break;
	case YJ_STATUS_RETRY: c->retry++; break;
	}
}

static double s_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void s_diag(void *arg, const char *file, int line, const char *msg)
{
	(void)arg;
	fprintf(stderr, "bench_fill: config %s:%d: %s\n", file, line, msg);
}

/* Feed every line of in to ing; counts in *c. Returns 0 or a store error. */
static int s_feed(struct yj_ingest *ing, FILE *in, struct s_counts *c, unsigned long *lines)
{
	char *line = NULL;
	size_t cap = 0;
	ssize_t len;
	int rc = 0;

	while ((len = getline(&line, &cap, in)) > 0) {
		if (line[len - 1] == '\n')
			line[--len] = '\0';
		char *tab = memchr(line, '\t', (size_t)len);
		if (!tab)
			continue;
		struct yj_request req = {
			.origin = "bench_fill",
			.feed = line,
			.feed_len = (size_t)(tab - line),
			.content_type = "application/json",
			.content_type_len = strlen("application/json"),
			.payload = tab + 1,
			.payload_len = (size_t)(line + len - tab - 1),
			.frames = 4,
		};
		(*lines)++;
		/* Flushes by itself at ingest.batch_max, as in the daemon. */
		if ((rc = yj_ingest_submit(ing, &req, s_on_reply, c)))
			goto out;
	}
	rc = yj_ingest_flush(ing, NULL);
out:
	free(line);
	return rc;
}

int main(int argc, char **argv)
{
	char conf[] = "/tmp/yjbench-fill-XXXXXX";
	struct yj_diag diag = { s_diag, NULL, 0 };
	struct yj_config *cfg = NULL;
	struct yj_refdata *ref = NULL;
	struct yj_core core;
	struct yj_ingest *ing = NULL;
	struct s_counts c;
	unsigned long lines = 0;
	int fd = -1, ret = 1, rc;

	memset(&core, 0, sizeof(core));
	memset(&c, 0, sizeof(c));
	if (argc != 2 || argv[1][0] == '-') {
		fprintf(stderr, "usage: yjlink-sim --stdout ... | %s STORE_DIR\n", argv[0]);
		return 2;
	}
	/* The daemon's zone: "today" and overnight periods are London's. */
	setenv("TZ", "Europe/London", 1);
	tzset();
	yj_log_set_level(YJ_LOG_WARNING);
	if ((fd = mkstemp(conf)) < 0 || write(fd, s_config, sizeof(s_config) - 1) != (ssize_t)(sizeof(s_config) - 1)) {
		perror("bench_fill: config file");
		goto out;
	}
	if (yj_config_load(conf, NULL, 0, NULL, &diag, &cfg) || yj_refdata_load(NULL, &diag, &ref))
		goto out;
	/* The daemon's defaults (store.map_size_mb, store.max_map_size_mb): the map grows as it does there. */
	struct yj_store_opts so = {
		.path = argv[1],
		.map_size = (size_t)cfg->store_map_size_mb << 20,
		.max_map_size = (size_t)cfg->store_max_map_size_mb << 20,
		.exclusive = 1,
	};
	if ((rc = yj_store_open(&so, &core.store))) {
		fprintf(stderr, "bench_fill: store %s: %s\n", argv[1], yj_strerror(rc));
		goto out;
	}
	core.cfg = cfg;
	core.ref = ref;
	if ((rc = yj_ingest_new(&core, &ing))) {
		fprintf(stderr, "bench_fill: ingest: %s\n", yj_strerror(rc));
		goto out;
	}
	double t0 = s_now();
	rc = s_feed(ing, stdin, &c, &lines);
	double t1 = s_now();
	if (rc)
		fprintf(stderr, "bench_fill: after %lu lines: %s\n", lines, yj_strerror(rc));
	struct yj_store_stats st;
	memset(&st, 0, sizeof(st));
	yj_store_stats(core.store, &st);
	printf("events=%lu ok=%lu dup=%lu reject=%lu retry=%lu elapsed=%.1f rate=%.0f stored=%llu store_mib=%zu\n", lines,
	       c.ok, c.dup, c.reject, c.retry, t1 - t0, t1 > t0 ? (double)lines / (t1 - t0) : 0.0,
	       (unsigned long long)st.events, st.used_bytes >> 20);
	if (c.reject)
		fprintf(stderr, "bench_fill: %lu refused; the first: %s\n", c.reject, c.first_reject);
	ret = rc || c.retry || c.ok + c.dup + c.reject != lines ? 1 : 0;
out:
	yj_ingest_destroy(&ing);
	yj_store_close(&core.store);
	yj_refdata_free(&ref);
	yj_config_free(&cfg);
	if (fd >= 0) {
		close(fd);
		unlink(conf);
	}
	return ret;
}
