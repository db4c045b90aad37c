/* bench_ingest: durable ingest through the real daemon, next to the raw
 * LMDB limit measured in the same run (spec/quality.md "durable ingest":
 * >= 0.25 of the raw limit, and at least NATS JetStream's acked rate in the
 * same run: bench_nats, which bench/run --peer runs beside this one).
 *
 * Starts build/yjlinkd on a private store and port, pipelines N distinct
 * ~600-byte JSON custody events over YJL1 from one DEALER, counts OK
 * replies, then times the plain LMDB loop of bench_raw.inc on the same disk.
 * yjlinkd's private memory is sampled every 50 ms from its start to the last
 * reply, and the peaks printed.
 *
 *   bench_ingest [--events N] [--window W] [--dir D] [--yjlinkd PATH]
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include "bench_common.h"
#include "bench_common.inc"
#include "bench_raw.h"
#include "bench_raw.inc"

/* User + system CPU seconds of pid so far, all its threads (/proc/PID/stat
 * fields 14 and 15): on a shared machine the daemon's CPU per event is the
 * steadier figure of what a change saves. */
static double s_cpu_seconds(pid_t pid)
{
	char path[64], buf[2048];
	snprintf(path, sizeof(path), "/proc/%ld/stat", (long)pid);
	FILE *f = fopen(path, "r");
	if (!f)
		return 0;
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	const char *p = strrchr(buf, ')');
	unsigned long long ut = 0, st = 0;
	if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
		return 0;
	return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

int main(int argc, char **argv)
{
	unsigned long n = 200000, window = 20000;
	const char *dir = NULL;
	char yjlinkd[4096] = "";
	static const struct option opts[] = {
		{ "events", required_argument, NULL, 'n' }, { "window", required_argument, NULL, 'w' },
		{ "dir", required_argument, NULL, 'd' },    { "yjlinkd", required_argument, NULL, 'y' },
		{ NULL, 0, NULL, 0 },
	};
	int c;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'n': n = strtoul(optarg, NULL, 10); break;
		case 'w': window = strtoul(optarg, NULL, 10); break;
		case 'd': dir = optarg; break;
		case 'y': snprintf(yjlinkd, sizeof(yjlinkd), "%s", optarg); break;
		default: fprintf(stderr, "usage: bench_ingest [--events N] [--window W] [--dir D] [--yjlinkd PATH]\n"); return 2;
		}
	}
	if (!*yjlinkd) {
		/* Beside this binary, in the build directory. */
		ssize_t len = readlink("/proc/self/exe", yjlinkd, sizeof(yjlinkd) - 16);
		if (len <= 0)
			return 1;
		yjlinkd[len] = '\0';
		strcpy(strrchr(yjlinkd, '/') + 1, "yjlinkd");
	}
	char tmpl[] = "/tmp/yjbench-XXXXXX";
	if (!dir && !(dir = mkdtemp(tmpl))) {
		perror("mkdtemp");
		return 1;
	}
	char store[4200], ctl[4200], ep[64], set1[4300], set2[128], set3[4300], rawdir[4200];
	snprintf(store, sizeof(store), "%s/store", dir);
	snprintf(ctl, sizeof(ctl), "ipc://%s/control.sock", dir);
	int port;
	if (yj_bench_free_port(&port) < 0) {
		perror("bench_ingest: no free port");
		return 1;
	}
	snprintf(ep, sizeof(ep), "tcp://127.0.0.1:%d", port);
	snprintf(set1, sizeof(set1), "store.path=%s", store);
	snprintf(set2, sizeof(set2), "ingest.endpoint=%s", ep);
	snprintf(set3, sizeof(set3), "control.endpoint=%s", ctl);

	pid_t pid = fork();
	if (pid == 0) {
		freopen("/dev/null", "w", stderr);
		execl(yjlinkd, "yjlinkd", "--set", set1, "--set", set2, "--set", set3, "--set", "metrics.endpoint=",
		      "--set", "notify.endpoint=tcp://127.0.0.1:0", (char *)NULL);
		_exit(127);
	}

	struct yj_bench_mem mem;
	if (yj_bench_mem_start(&mem, pid, 50) < 0)
		fprintf(stderr, "bench_ingest: no memory sampler\n");

	/* Payloads made before the clock starts. */
	char **payload = NULL;
	size_t total_bytes = 0;
	if (yj_bench_events(&payload, n, &total_bytes) < 0) {
		fprintf(stderr, "bench_ingest: out of memory\n");
		yj_bench_mem_stop(&mem);
		kill(pid, SIGKILL);
		return 1;
	}

	void *ctx = zmq_ctx_new();
	void *s = zmq_socket(ctx, ZMQ_DEALER);
	int zero = 0, tmo = 30000;
	zmq_setsockopt(s, ZMQ_SNDHWM, &zero, sizeof(zero));
	zmq_setsockopt(s, ZMQ_RCVHWM, &zero, sizeof(zero));
	zmq_setsockopt(s, ZMQ_RCVTIMEO, &tmo, sizeof(tmo));
	zmq_setsockopt(s, ZMQ_LINGER, &zero, sizeof(zero));
	zmq_connect(s, ep);
	usleep(300000);

	unsigned long sent = 0, got = 0, ok = 0, other = 0;
	double t0 = yj_bench_now(), cpu0 = s_cpu_seconds(pid), self0 = s_cpu_seconds(getpid());
	/* The client's own CPU shares the machine with yjlinkd, as nats.c's
	 * does with nats-server: the three constant frames are sent without a
	 * copy, the payload straight from its buffer (it outlives the socket),
	 * and each reply is read into one message, its size checked in place. */
	zmq_msg_t rep;
	zmq_msg_init(&rep);
	while (got < n) {
		while (sent < n && sent - got < window) {
			zmq_msg_t body;
			zmq_send_const(s, "YJL1", 4, ZMQ_SNDMORE);
			zmq_send_const(s, "custody", 7, ZMQ_SNDMORE);
			zmq_send_const(s, "application/json", 16, ZMQ_SNDMORE);
			zmq_msg_init_data(&body, payload[sent], strlen(payload[sent]), NULL, NULL);
			if (zmq_msg_send(&body, s, 0) < 0)
				zmq_msg_close(&body);
			sent++;
		}
		/* Frames: YJL1, status, source id, detail. */
		char status[16] = "", detail[256] = "";
		int more = 1, k = 0;
		while (more) {
			int r = zmq_msg_recv(&rep, s, 0);
			if (r < 0) {
				int st = 0, gone = waitpid(pid, &st, WNOHANG) == pid;
				fprintf(stderr, "bench_ingest: no reply for 30 s (%s); %s %s (port %d)\n",
					zmq_strerror(zmq_errno()), yjlinkd,
					gone ? "exited" : "is still running", port);
				yj_bench_mem_stop(&mem);
				kill(pid, SIGKILL);
				return 1;
			}
			size_t len = zmq_msg_size(&rep);
			if (k == 1)
				snprintf(status, sizeof(status), "%.*s", (int)(len < 15 ? len : 15), (const char *)zmq_msg_data(&rep));
			else if (k == 3)
				snprintf(detail, sizeof(detail), "%.*s", (int)(len < 255 ? len : 255), (const char *)zmq_msg_data(&rep));
			more = zmq_msg_more(&rep);
			k++;
		}
		got++;
		if (!strcmp(status, "OK"))
			ok++;
		else if (other++ < 3)
			fprintf(stderr, "bench_ingest: %s %s\n", status, detail);
	}
	zmq_msg_close(&rep);
	double ingest_s = yj_bench_now() - t0, cpu_s = s_cpu_seconds(pid) - cpu0;
	double self_s = s_cpu_seconds(getpid()) - self0;
	yj_bench_mem_stop(&mem);
	zmq_close(s);
	zmq_ctx_term(ctx);
	kill(pid, SIGTERM);
	waitpid(pid, NULL, 0);

	snprintf(rawdir, sizeof(rawdir), "%s/raw", dir);
	mkdir(rawdir, 0700);
	double raw = yj_bench_raw_lmdb(rawdir, n);
	double rate = (double)ok / ingest_s;

	printf("durable ingest: %lu events (%.0f bytes avg) in %.3f s = %.0f events/s (%lu OK, %lu other; window %lu)\n",
	       n, (double)total_bytes / (double)n, ingest_s, rate, ok, other, window);
	printf("yjlinkd CPU during ingest: %.2f s, %.1f us per event (user+system, all its threads)\n", cpu_s,
	       1e6 * cpu_s / (double)n);
	printf("client CPU during ingest: %.2f s, %.1f us per event (this program and its ZeroMQ I/O thread)\n", self_s,
	       1e6 * self_s / (double)n);
	printf("raw LMDB limit: %.0f events/s (600-byte values, 1,000 per synced txn)\n", raw);
	printf("ratio ingest/raw: %.3f   (bar: >= 0.25, and >= NATS JetStream: bench/run --peer)\n",
	       raw > 0 ? rate / raw : 0);
	yj_bench_mem_print("yjlinkd", &mem);
	yj_bench_events_free(&payload, n);
	char cmd[4300];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (dir == tmpl && system(cmd) != 0)
		fprintf(stderr, "bench_ingest: could not remove %s\n", dir);
	return 0;
}
