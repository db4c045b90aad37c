/* yjn1_sub.c: a small reference YJN1 subscriber in C (interfaces.md §3,
 * "Durable subscription: protocol YJN1 over ZeroMQ"), linking libzmq only.
 *
 *   yjn1-sub ENDPOINT RECIPIENT CURSOR_FILE [--max N] [--exit-after-notes K]
 *
 * Prints one line per note, "NOTE <number> <json>", then keeps the number
 * in CURSOR_FILE (written to a temporary file, synced, renamed) and
 * acknowledges it. The cursor goes with the HELLO said on every connection
 * (the socket monitor's handshake event), so a restart of either side
 * resumes right after the last acknowledged note; a note at or below the
 * cursor (a repeat after a reconnect) is not printed again. An ACK goes only
 * on a connection that has had its HELLO (else the daemon says ERROR): the
 * monitor's disconnect event, read right before each ACK, says when a new
 * one has not; the cursor file and the next HELLO make up for an ACK held
 * back.
 *
 *   --max N               stop cleanly (exit 0) after N notes, each acknowledged
 *   --exit-after-notes K  after printing the K-th note, exit at once, without
 *                         recording or acknowledging it, as a crash would: the
 *                         next run gets it again (for tests of redelivery)
 *
 * Exit codes: 0 done (--max reached, or SIGINT/SIGTERM), 1 the daemon said
 * ERROR (the reason on stderr) or a failure, 2 usage.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zmq.h>

#define S_MONITOR_EP "inproc://yjn1-sub-monitor"
#define S_HB_IVL_MS 5000       /* heartbeats: a dead daemon's connection ends within S_HB_TIMEOUT_MS */
#define S_HB_TIMEOUT_MS 15000
#define S_HELLO_RETRY_MS 200   /* a HELLO that could not go yet is tried again this often */

/* What one run is about. */
struct s_sub {
	const char *endpoint;          /* the daemon's notify.endpoint */
	const char *recipient;         /* the recipient subscribed to */
	const char *cursor_file;       /* where the last acknowledged number is kept */
	long max;                      /* --max: notes to handle before a clean stop, 0 none */
	long exit_after;               /* --exit-after-notes: notes before a crash-like exit, 0 none */
	uint64_t cursor;               /* last number acknowledged */
	void *ctx;                     /* owned */
	void *sock;                    /* DEALER, owned */
	void *monitor;                 /* PAIR on the DEALER's monitor, owned */
	int hello_pending;             /* a HELLO must still go on this connection */
	int greeted;                   /* this connection has had its HELLO: ACKs may go */
};

static volatile sig_atomic_t s_stop;

static void s_on_signal(int sig)
{
	(void)sig;
	s_stop = 1;
}

static int s_parse_u64(const char *s, size_t len, uint64_t *out)
{
	uint64_t v = 0;
	if (!len || len > 20)
		return -1;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		unsigned d = (unsigned)(s[i] - '0');
		if (v > (UINT64_MAX - d) / 10)
			return -1;
		v = v * 10 + d;
	}
	*out = v;
	return 0;
}

/* The saved cursor, 0 when there is none yet. */
static int s_cursor_load(struct s_sub *s)
{
	char buf[64];
	FILE *f = fopen(s->cursor_file, "r");
	s->cursor = 0;
	if (!f)
		return errno == ENOENT ? 0 : -1;
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	while (n && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' '))
		n--;
	if (n == 0)
		return 0;
	return s_parse_u64(buf, n, &s->cursor);
}

/* Write the cursor so that a crash leaves the old value or the new one. */
static int s_cursor_save(struct s_sub *s, uint64_t n)
{
	char tmp[4096], line[32];
	int rc = -1, fd = -1;
	if (snprintf(tmp, sizeof(tmp), "%s.tmp", s->cursor_file) >= (int)sizeof(tmp))
		return -1;
	int len = snprintf(line, sizeof(line), "%" PRIu64 "\n", n);
	if ((fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600)) < 0)
		goto out;
	if (write(fd, line, (size_t)len) != len || fsync(fd) != 0)
		goto out;
	if (close(fd) != 0) {
		fd = -1;
		goto out;
	}
	fd = -1;
	if (rename(tmp, s->cursor_file) != 0)
		goto out;
	s->cursor = n;
	rc = 0;
out:
	if (fd >= 0)
		close(fd);
	return rc;
}

static int s_send(void *sock, const char *const *frames, const size_t *lens, int n, int flags)
{
	for (int i = 0; i < n; i++) {
		if (zmq_send(sock, frames[i], lens[i], (i < n - 1 ? ZMQ_SNDMORE : 0) | flags) < 0)
			return -1;
	}
	return 0;
}

/* HELLO with the cursor on the connection just made; 0 sent, -1 not yet. */
static int s_hello(struct s_sub *s)
{
	char num[32];
	int len = snprintf(num, sizeof(num), "%" PRIu64, s->cursor);
	const char *f[] = { "YJN1", "HELLO", s->recipient, num };
	size_t l[] = { 4, 5, strlen(s->recipient), (size_t)len };
	/* With ZMQ_IMMEDIATE the new connection's pipe may attach a moment
	 * after the handshake event: the send waits for it (ZMQ_SNDTIMEO). */
	s->hello_pending = s_send(s->sock, f, l, 4, 0) != 0;
	s->greeted = !s->hello_pending;
	return s->hello_pending ? -1 : 0;
}

static void s_on_monitor(struct s_sub *s);

static void s_ack(struct s_sub *s, uint64_t n)
{
	char num[32];
	int len = snprintf(num, sizeof(num), "%" PRIu64, n);
	const char *f[] = { "YJN1", "ACK", num };
	size_t l[] = { 4, 3, (size_t)len };
	s_on_monitor(s);
	/* No connection, or one not yet greeted: the next HELLO carries the cursor instead. */
	if (s->greeted)
		s_send(s->sock, f, l, 3, ZMQ_DONTWAIT);
}

/* The monitor's events: a HELLO on each completed handshake. */
static void s_on_monitor(struct s_sub *s)
{
	for (;;) {
		zmq_msg_t ev, addr;
		uint16_t event = 0;
		zmq_msg_init(&ev);
		if (zmq_msg_recv(&ev, s->monitor, ZMQ_DONTWAIT) < 0) {
			zmq_msg_close(&ev);
			return;
		}
		if (zmq_msg_size(&ev) >= 2)
			memcpy(&event, zmq_msg_data(&ev), 2);
		int more = zmq_msg_more(&ev);
		zmq_msg_close(&ev);
		while (more) {
			zmq_msg_init(&addr);
			if (zmq_msg_recv(&addr, s->monitor, 0) < 0) {
				zmq_msg_close(&addr);
				break;
			}
			more = zmq_msg_more(&addr);
			zmq_msg_close(&addr);
		}
		if (event == ZMQ_EVENT_HANDSHAKE_SUCCEEDED) {
			s_hello(s);
		} else if (event == ZMQ_EVENT_DISCONNECTED) {
			s->greeted = 0;
			s->hello_pending = 0;
		}
	}
}

/* One message from the daemon. Returns 1 a new note was handled, 0
 * nothing to count, 2 stop now (--exit-after-notes), -1 ERROR or failure. */
static int s_on_message(struct s_sub *s, long *notes)
{
	zmq_msg_t f[5];
	int n = 0, more = 1, rc = 0;
	size_t total = 0;
	while (more) {
		zmq_msg_t *m = &f[n < 5 ? n : 4];
		if (n >= 5)
			zmq_msg_close(m);
		zmq_msg_init(m);
		if (zmq_msg_recv(m, s->sock, 0) < 0) {
			zmq_msg_close(m);
			rc = -1;
			goto out;
		}
		more = zmq_msg_more(m);
		total++;
		if (n < 5)
			n++;
	}
	if (total >= 3 && zmq_msg_size(&f[0]) == 4 && !memcmp(zmq_msg_data(&f[0]), "YJN1", 4) &&
	    zmq_msg_size(&f[1]) == 5 && !memcmp(zmq_msg_data(&f[1]), "ERROR", 5)) {
		fprintf(stderr, "yjn1-sub: the daemon said ERROR: %.*s\n", (int)zmq_msg_size(&f[2]),
			(const char *)zmq_msg_data(&f[2]));
		rc = -1;
		goto out;
	}
	uint64_t number;
	if (total != 4 || zmq_msg_size(&f[0]) != 4 || memcmp(zmq_msg_data(&f[0]), "YJN1", 4) ||
	    zmq_msg_size(&f[1]) != 4 || memcmp(zmq_msg_data(&f[1]), "NOTE", 4) ||
	    s_parse_u64(zmq_msg_data(&f[2]), zmq_msg_size(&f[2]), &number)) {
		fprintf(stderr, "yjn1-sub: ignored a message that is no NOTE\n");
		goto out;
	}
	if (number <= s->cursor)
		goto out; /* a repeat after a reconnect: printed before */
	printf("NOTE %" PRIu64 " %.*s\n", number, (int)zmq_msg_size(&f[3]), (const char *)zmq_msg_data(&f[3]));
	fflush(stdout);
	(*notes)++;
	if (s->exit_after && *notes >= s->exit_after) {
		rc = 2;
		goto out;
	}
	if (s_cursor_save(s, number) != 0) {
		fprintf(stderr, "yjn1-sub: cannot write %s: %s\n", s->cursor_file, strerror(errno));
		rc = -1;
		goto out;
	}
	s_ack(s, number);
	rc = 1;
out:
	for (int i = 0; i < n; i++)
		zmq_msg_close(&f[i]);
	return rc;
}

static void s_usage(FILE *out)
{
	fprintf(out, "usage: yjn1-sub ENDPOINT RECIPIENT CURSOR_FILE [--max N] [--exit-after-notes K]\n"
		     "  prints \"NOTE <number> <json>\" per note, keeps the cursor in CURSOR_FILE, acknowledges each\n"
		     "  --max N               stop cleanly after N notes\n"
		     "  --exit-after-notes K  exit at once after printing the K-th note, unacknowledged (tests)\n");
}

static int s_parse_count(const char *v, long *out)
{
	char *end = NULL;
	long n = strtol(v, &end, 10);
	if (!*v || *end || n <= 0)
		return -1;
	*out = n;
	return 0;
}

int main(int argc, char **argv)
{
	struct s_sub s = { 0 };
	const char *pos[3];
	int npos = 0, code = 1;
	long notes = 0;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--help")) {
			s_usage(stdout);
			return 0;
		} else if (!strcmp(argv[i], "--max") && i + 1 < argc) {
			if (s_parse_count(argv[++i], &s.max))
				goto usage;
		} else if (!strcmp(argv[i], "--exit-after-notes") && i + 1 < argc) {
			if (s_parse_count(argv[++i], &s.exit_after))
				goto usage;
		} else if (argv[i][0] == '-' || npos == 3) {
			goto usage;
		} else {
			pos[npos++] = argv[i];
		}
	}
	if (npos != 3)
		goto usage;
	s.endpoint = pos[0];
	s.recipient = pos[1];
	s.cursor_file = pos[2];
	if (s_cursor_load(&s) != 0) {
		fprintf(stderr, "yjn1-sub: %s does not hold a decimal cursor\n", s.cursor_file);
		return 1;
	}
	signal(SIGINT, s_on_signal);
	signal(SIGTERM, s_on_signal);

	int zero = 0, one = 1, hb_ivl = S_HB_IVL_MS, hb_to = S_HB_TIMEOUT_MS, sndtimeo = 1000, rivl = 100,
	    rivl_max = 2000;
	if (!(s.ctx = zmq_ctx_new()) || !(s.sock = zmq_socket(s.ctx, ZMQ_DEALER)))
		goto out;
	zmq_setsockopt(s.sock, ZMQ_LINGER, &zero, sizeof(zero));
	/* No queueing for a connection not made yet: an ACK left in a dead
	 * connection's queue would reach the next one before its HELLO. */
	zmq_setsockopt(s.sock, ZMQ_IMMEDIATE, &one, sizeof(one));
	zmq_setsockopt(s.sock, ZMQ_SNDTIMEO, &sndtimeo, sizeof(sndtimeo));
	zmq_setsockopt(s.sock, ZMQ_HEARTBEAT_IVL, &hb_ivl, sizeof(hb_ivl));
	zmq_setsockopt(s.sock, ZMQ_HEARTBEAT_TIMEOUT, &hb_to, sizeof(hb_to));
	zmq_setsockopt(s.sock, ZMQ_HEARTBEAT_TTL, &hb_to, sizeof(hb_to));
	zmq_setsockopt(s.sock, ZMQ_RECONNECT_IVL, &rivl, sizeof(rivl));
	zmq_setsockopt(s.sock, ZMQ_RECONNECT_IVL_MAX, &rivl_max, sizeof(rivl_max));
	if (zmq_socket_monitor(s.sock, S_MONITOR_EP, ZMQ_EVENT_HANDSHAKE_SUCCEEDED | ZMQ_EVENT_DISCONNECTED) != 0 ||
	    !(s.monitor = zmq_socket(s.ctx, ZMQ_PAIR)) || zmq_connect(s.monitor, S_MONITOR_EP) != 0) {
		fprintf(stderr, "yjn1-sub: cannot monitor the socket: %s\n", zmq_strerror(zmq_errno()));
		goto out;
	}
	zmq_setsockopt(s.monitor, ZMQ_LINGER, &zero, sizeof(zero));
	if (zmq_connect(s.sock, s.endpoint) != 0) {
		fprintf(stderr, "yjn1-sub: cannot connect to %s: %s\n", s.endpoint, zmq_strerror(zmq_errno()));
		code = 2;
		goto out;
	}
	while (!s_stop && (!s.max || notes < s.max)) {
		zmq_pollitem_t items[] = { { s.sock, 0, ZMQ_POLLIN, 0 }, { s.monitor, 0, ZMQ_POLLIN, 0 } };
		if (s.hello_pending)
			s_hello(&s);
		if (zmq_poll(items, 2, s.hello_pending ? S_HELLO_RETRY_MS : 1000) < 0) {
			if (zmq_errno() == EINTR)
				continue;
			goto out;
		}
		if (items[1].revents & ZMQ_POLLIN)
			s_on_monitor(&s);
		if (items[0].revents & ZMQ_POLLIN) {
			int r = s_on_message(&s, &notes);
			if (r < 0)
				goto out;
			if (r == 2)
				_exit(0); /* as a crash: nothing recorded, nothing acknowledged, nothing flushed to the daemon */
		}
	}
	code = 0;
	/* A clean stop lets the last ACK leave (a second at most). */
	int linger = 1000;
	zmq_setsockopt(s.sock, ZMQ_LINGER, &linger, sizeof(linger));
out:
	if (s.sock) {
		zmq_socket_monitor(s.sock, NULL, 0);
		zmq_close(s.sock);
	}
	if (s.monitor)
		zmq_close(s.monitor);
	if (s.ctx)
		zmq_ctx_term(s.ctx);
	return code;
usage:
	s_usage(stderr);
	return 2;
}
