/* bench_nats: the peer of bench_ingest (spec/quality.md "durable ingest":
 * at least the acked rate of a NATS JetStream server taking the same events
 * from the same kind of client in the same run).
 *
 * Starts nats-server -js on a fresh store directory and a free loopback
 * port, adds a fresh stream on file storage, publishes the N custody events
 * bench_ingest sends (bench_common.inc) asynchronously from one nats.c
 * connection with at most W unacknowledged, and counts the JetStream publish
 * acks. The server's memory is sampled every 50 ms, for context. The server
 * is killed and its store removed afterwards.
 *
 * nats-server 2.9 acknowledges a message once it is written to the file
 * store, before any fsync (its file store syncs every 2 minutes by default);
 * yjlinkd answers OK after its batch's synced commit. Neither is tuned here.
 *
 *   bench_nats [--events N] [--window W] [--dir D] [--nats-server PATH]
 */
#include <errno.h>
#include <ftw.h>
#include <getopt.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <nats/nats.h>

#include "bench_common.h"
#include "bench_common.inc"

#define S_STREAM "YJBENCH"
#define S_SUBJECT "yjbench.custody"

/* What the ack handler counts; it runs on a thread of the library. */
struct s_acks {
	atomic_ulong ok;     /* positive publish acks */
	atomic_ulong failed; /* negative acks and errors */
	atomic_int told;     /* the first failure has been printed */
};

/* A nats.c status as a negative error code, printed with its context. */
static int s_nats_err(const char *what, natsStatus s)
{
	const char *last = nats_GetLastError(NULL);
	fprintf(stderr, "bench_nats: %s: %s%s%s\n", what, natsStatus_GetText(s), last && *last ? ": " : "",
		last ? last : "");
	return s == NATS_TIMEOUT ? -ETIMEDOUT : -EIO;
}

static void s_on_ack(jsCtx *js, natsMsg *msg, jsPubAck *pa, jsPubAckErr *pae, void *closure)
{
	struct s_acks *acks = closure;

	(void)js;
	if (pa) {
		atomic_fetch_add(&acks->ok, 1);
	} else {
		atomic_fetch_add(&acks->failed, 1);
		if (pae && !atomic_exchange(&acks->told, 1))
			fprintf(stderr, "bench_nats: publish failed: %s (JetStream error %d: %s)\n",
				natsStatus_GetText(pae->Err), (int)pae->ErrCode, pae->ErrText ? pae->ErrText : "");
	}
	natsMsg_Destroy(msg);
}

/* Starts `bin -js -sd store -a 127.0.0.1 -p port`, its output to log. */
static int s_server_start(const char *bin, const char *store, int port, const char *log, pid_t *pid)
{
	char p[16];

	snprintf(p, sizeof(p), "%d", port);
	*pid = fork();
	if (*pid < 0)
		return -errno;
	if (*pid == 0) {
		if (!freopen(log, "w", stdout) || dup2(fileno(stdout), STDERR_FILENO) < 0)
			_exit(126);
		execlp(bin, bin, "-js", "-sd", store, "-a", "127.0.0.1", "-p", p, (char *)NULL);
		_exit(127);
	}
	return 0;
}

/* Connects to the server at port, retrying for up to 10 s while it starts. */
static int s_connect(natsConnection **nc, int port, pid_t server)
{
	char url[64];
	natsStatus s = NATS_OK;
	double until = yj_bench_now() + 10;

	snprintf(url, sizeof(url), "nats://127.0.0.1:%d", port);
	while (yj_bench_now() < until) {
		if ((s = natsConnection_ConnectTo(nc, url)) == NATS_OK)
			return 0;
		if (waitpid(server, NULL, WNOHANG) == server) {
			fprintf(stderr, "bench_nats: nats-server exited at start\n");
			return -ECHILD;
		}
		nats_Sleep(50);
	}
	return s_nats_err(url, s);
}

/* A fresh stream on file storage, one replica, taking S_SUBJECT. */
static int s_add_stream(jsCtx *js)
{
	const char *subjects[] = { S_SUBJECT };
	jsStreamConfig cfg;
	jsErrCode jerr = 0;
	natsStatus s;

	jsStreamConfig_Init(&cfg);
	cfg.Name = S_STREAM;
	cfg.Subjects = subjects;
	cfg.SubjectsLen = 1;
	cfg.Storage = js_FileStorage;
	cfg.Replicas = 1;
	if ((s = js_AddStream(NULL, js, &cfg, NULL, &jerr)) != NATS_OK) {
		fprintf(stderr, "bench_nats: JetStream error %d\n", (int)jerr);
		return s_nats_err("add stream " S_STREAM, s);
	}
	return 0;
}

/* Publishes every event and waits for every ack; *secs is the time from the
 * first publish to the last ack. */
static int s_publish(jsCtx *js, char **events, unsigned long n, struct s_acks *acks, double *secs)
{
	jsPubOptions po;
	natsStatus s;
	double t0 = yj_bench_now(), until;

	for (unsigned long i = 0; i < n; i++)
		if ((s = js_PublishAsync(js, S_SUBJECT, events[i], (int)strlen(events[i]), NULL)) != NATS_OK)
			return s_nats_err("publish", s);
	jsPubOptions_Init(&po);
	po.MaxWait = 120000;
	if ((s = js_PublishAsyncComplete(js, &po)) != NATS_OK)
		return s_nats_err("waiting for the acks", s);
	/* The last handlers may still be running when the pending list empties. */
	until = yj_bench_now() + 5;
	while (atomic_load(&acks->ok) + atomic_load(&acks->failed) < n && yj_bench_now() < until)
		nats_Sleep(1);
	*secs = yj_bench_now() - t0;
	return 0;
}

static int s_rm(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path) < 0 ? -errno : 0;
}

int main(int argc, char **argv)
{
	unsigned long n = 200000, window = 4096;
	const char *dir = NULL, *bin = "nats-server";
	static const struct option opts[] = {
		{ "events", required_argument, NULL, 'n' }, { "window", required_argument, NULL, 'w' },
		{ "dir", required_argument, NULL, 'd' },    { "nats-server", required_argument, NULL, 's' },
		{ NULL, 0, NULL, 0 },
	};
	char tmpl[] = "/tmp/yjbench-nats-XXXXXX", store[4200] = "", log[4200] = "";
	struct s_acks acks;
	struct yj_bench_mem mem = { .running = 0 };
	char **events = NULL;
	size_t bytes = 0;
	natsConnection *nc = NULL;
	jsCtx *js = NULL;
	jsStreamInfo *si = NULL;
	jsOptions jo;
	jsErrCode jerr = 0;
	natsStatus s;
	pid_t server = -1;
	int c, port = 0, made = 0, rc = 0;
	double secs = 0;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'n': n = strtoul(optarg, NULL, 10); break;
		case 'w': window = strtoul(optarg, NULL, 10); break;
		case 'd': dir = optarg; break;
		case 's': bin = optarg; break;
		default:
			fprintf(stderr, "usage: bench_nats [--events N] [--window W] [--dir D] [--nats-server PATH]\n");
			return 2;
		}
	}
	atomic_init(&acks.ok, 0);
	atomic_init(&acks.failed, 0);
	atomic_init(&acks.told, 0);
	if (!dir) {
		if (!(dir = mkdtemp(tmpl))) {
			rc = -errno;
			perror("bench_nats: mkdtemp");
			goto out;
		}
		made = 1;
	}
	snprintf(store, sizeof(store), "%s/js", dir);
	snprintf(log, sizeof(log), "%s/nats-server.log", dir);
	if (mkdir(store, 0700) < 0) {
		rc = -errno;
		fprintf(stderr, "bench_nats: %s: %s (a fresh store is needed)\n", store, strerror(errno));
		goto out;
	}
	/* Payloads made before the clock starts. */
	if ((rc = yj_bench_events(&events, n, &bytes)) < 0)
		goto out;
	if ((rc = yj_bench_free_port(&port)) < 0 || (rc = s_server_start(bin, store, port, log, &server)) < 0) {
		fprintf(stderr, "bench_nats: cannot start %s: %s\n", bin, strerror(-rc));
		goto out;
	}
	if (yj_bench_mem_start(&mem, server, 50) < 0)
		fprintf(stderr, "bench_nats: no memory sampler\n");
	if ((rc = s_connect(&nc, port, server)) < 0)
		goto out;
	jsOptions_Init(&jo);
	jo.PublishAsync.MaxPending = (int64_t)window;
	jo.PublishAsync.AckHandler = s_on_ack;
	jo.PublishAsync.AckHandlerClosure = &acks;
	jo.PublishAsync.StallWait = 30000; /* as bench_ingest waits 30 s for a reply */
	if ((s = natsConnection_JetStream(&js, nc, &jo)) != NATS_OK) {
		rc = s_nats_err("JetStream context", s);
		goto out;
	}
	if ((rc = s_add_stream(js)) < 0 || (rc = s_publish(js, events, n, &acks, &secs)) < 0)
		goto out;
	yj_bench_mem_stop(&mem);
	if ((s = js_GetStreamInfo(&si, js, S_STREAM, NULL, &jerr)) != NATS_OK) {
		rc = s_nats_err("stream info", s);
		goto out;
	}
	unsigned long ok = atomic_load(&acks.ok), failed = atomic_load(&acks.failed);
	printf("jetstream ingest: %lu events (%.0f bytes avg) in %.3f s = %.0f events/s (%lu acked, %lu other; "
	       "window %lu; stream %llu messages, %.1f MiB on file storage)\n",
	       n, n ? (double)bytes / (double)n : 0, secs, secs > 0 ? (double)ok / secs : 0, ok, failed, window,
	       (unsigned long long)si->State.Msgs, (double)si->State.Bytes / 1048576);
	yj_bench_mem_print("nats-server", &mem);
	if (ok != n || si->State.Msgs != n) {
		fprintf(stderr, "bench_nats: %lu of %lu acked, %llu stored\n", ok, n, (unsigned long long)si->State.Msgs);
		rc = -EIO;
	}
out:
	if (si)
		jsStreamInfo_Destroy(si);
	if (js)
		jsCtx_Destroy(js);
	if (nc)
		natsConnection_Destroy(nc);
	nats_Close();
	yj_bench_mem_stop(&mem);
	if (server > 0) {
		kill(server, SIGKILL);
		waitpid(server, NULL, 0);
	}
	yj_bench_events_free(&events, n);
	if (rc < 0 && *log)
		fprintf(stderr, "bench_nats: failed (%s); %s kept (the server's log: %s)\n", strerror(-rc), dir, log);
	else if (dir && nftw(made ? dir : store, s_rm, 16, FTW_DEPTH | FTW_PHYS) < 0)
		fprintf(stderr, "bench_nats: could not remove %s\n", made ? dir : store);
	return rc < 0 ? 1 : 0;
}
