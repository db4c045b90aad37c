/* smtp_sink: an SMTP server that accepts every message and keeps nothing
 * but a count, for benchmarks that need a relay and read no mail.
 *
 * tests/integration/smtp_receiver.py (aiosmtpd) costs about 1 ms of CPU per
 * message; at the 700 messages/s of bench_backfill.py that is 0.7 of a core
 * of a 2-core machine taken from the daemon under test. This one is a
 * single thread on epoll with non-blocking sockets, serving any number of
 * connections at once, and holds no memory per message.
 *
 * It speaks what libcurl's SMTP client needs: 220 greeting, EHLO / HELO,
 * MAIL FROM, RCPT TO, DATA (354, then everything up to the line "."),
 * RSET, NOOP, QUIT (221, then close). No AUTH and no STARTTLS are offered,
 * so libcurl sends neither. Lines may be split across reads and commands
 * pipelined. Anything else gets 500.
 *
 *   smtp_sink [--port N] [--stats FILE]
 *
 * It listens on 127.0.0.1:N (0, the default: any free port) and prints one
 * line "READY <port>" on stdout once bound, as smtp_receiver.py does, so
 * the same reader starts either. SIGTERM or SIGINT: exit 0 after writing
 * {"messages": N, "bytes": B} (one JSON line) to FILE, if given. SIGUSR1
 * writes the same line without exiting, for a reader that wants the count
 * at a moment of its choosing. FILE is written as FILE.tmp and renamed, so
 * a reader never sees half a line. Bytes are the DATA as received (CRLF
 * and any dot-stuffing kept), without the terminating ".\r\n".
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

/* Commands are at most 512 bytes (RFC 5321 4.5.3.1.4); a longer line is
 * answered 500 and dropped, so 4 KiB always holds one whole command. */
#define S_IN_SIZE 4096
/* Replies are answered in order into this buffer; commands are only taken
 * while the longest reply (EHLO's) still fits, so a client that pipelines
 * and does not read stalls itself rather than growing our memory. */
#define S_OUT_SIZE 4096
#define S_REPLY_MAX 256

static const char s_ehlo[] = "250-localhost\r\n"
			     "250-PIPELINING\r\n"
			     "250-8BITMIME\r\n"
			     "250-SMTPUTF8\r\n"
			     "250-SIZE 104857600\r\n"
			     "250 HELP\r\n";

struct s_conn {
	int fd;
	uint32_t events; /* the mask epoll has for fd now */
	bool in_data; /* between 354 and the line "." */
	bool bol; /* DATA: the next byte starts a line */
	int dot; /* DATA: 1 after a "." at the start of a line, 2 after ".\r" */
	bool have_mail, have_rcpt;
	bool discard; /* a command line overflowed in[]: drop up to its LF */
	bool quit; /* 221 queued: close once out[] is sent */
	uint64_t msg_bytes;
	size_t in_len, out_off, out_len;
	char in[S_IN_SIZE];
	char out[S_OUT_SIZE];
};

struct s_sink {
	int ep, lfd, sfd;
	bool accept_paused; /* out of descriptors: listener off until one closes */
	uint64_t messages, bytes;
	const char *stats;
};

/* epoll's data.ptr is a connection, or one of these two tags. */
static char s_tag_listen, s_tag_signal;

static int s_stats_write(const struct s_sink *s)
{
	int rc = 0;
	char tmp[4096];
	FILE *f = NULL;
	if (!s->stats)
		goto out;
	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp", s->stats) >= sizeof(tmp)) {
		rc = -ENAMETOOLONG;
		goto out;
	}
	f = fopen(tmp, "w");
	if (!f) {
		rc = -errno;
		goto out;
	}
	fprintf(f, "{\"messages\": %llu, \"bytes\": %llu}\n", (unsigned long long)s->messages,
		(unsigned long long)s->bytes);
	rc = fclose(f) ? -errno : 0;
	f = NULL;
	if (rc)
		goto out;
	if (rename(tmp, s->stats))
		rc = -errno;
out:
	if (rc)
		fprintf(stderr, "smtp_sink: stats %s: %s\n", s->stats, strerror(-rc));
	return rc;
}

static void s_reply(struct s_conn *c, const char *text, size_t len)
{
	/* Callers check room first (s_room); the guard keeps a bug from
	 * overrunning the buffer. */
	if (len > sizeof(c->out) - c->out_len)
		return;
	memcpy(c->out + c->out_len, text, len);
	c->out_len += len;
}

#define S_REPLY(c, lit) s_reply((c), lit, sizeof(lit) - 1)

static bool s_room(const struct s_conn *c)
{
	return sizeof(c->out) - c->out_len >= S_REPLY_MAX;
}

static void s_reset(struct s_conn *c)
{
	c->have_mail = false;
	c->have_rcpt = false;
}

/* The 4-letter verb of line, case-insensitive, followed by its end or a space. */
static bool s_verb(const char *line, size_t len, const char *verb)
{
	return len >= 4 && !strncasecmp(line, verb, 4) && (len == 4 || line[4] == ' ');
}

static void s_command(struct s_conn *c, const char *line, size_t len)
{
	if (s_verb(line, len, "EHLO") || s_verb(line, len, "HELO")) {
		if (len < 6) {
			S_REPLY(c, "501 Syntax: EHLO hostname\r\n");
			return;
		}
		s_reset(c);
		if (toupper((unsigned char)line[0]) == 'E')
			S_REPLY(c, s_ehlo);
		else
			S_REPLY(c, "250 localhost\r\n");
	} else if (len >= 10 && !strncasecmp(line, "MAIL FROM:", 10)) {
		if (c->have_mail) {
			S_REPLY(c, "503 Error: nested MAIL command\r\n");
			return;
		}
		c->have_mail = true;
		S_REPLY(c, "250 OK\r\n");
	} else if (len >= 8 && !strncasecmp(line, "RCPT TO:", 8)) {
		if (!c->have_mail) {
			S_REPLY(c, "503 Error: need MAIL command\r\n");
			return;
		}
		c->have_rcpt = true;
		S_REPLY(c, "250 OK\r\n");
	} else if (s_verb(line, len, "DATA")) {
		if (!c->have_rcpt) {
			S_REPLY(c, "503 Error: need RCPT command\r\n");
			return;
		}
		c->in_data = true;
		c->bol = true;
		c->dot = 0;
		c->msg_bytes = 0;
		S_REPLY(c, "354 End data with <CR><LF>.<CR><LF>\r\n");
	} else if (s_verb(line, len, "RSET")) {
		s_reset(c);
		S_REPLY(c, "250 OK\r\n");
	} else if (s_verb(line, len, "NOOP")) {
		S_REPLY(c, "250 OK\r\n");
	} else if (s_verb(line, len, "QUIT")) {
		c->quit = true;
		S_REPLY(c, "221 Bye\r\n");
	} else {
		S_REPLY(c, "500 Error: command not recognized\r\n");
	}
}

/* Feed n bytes of DATA; returns how many were taken (all, unless the
 * terminator came first: what follows it is commands again). A lone LF
 * ends a line as CRLF does, so ".\n" ends the message too. */
static size_t s_data(struct s_sink *s, struct s_conn *c, const char *p, size_t n)
{
	size_t i = 0;
	while (i < n) {
		char ch = p[i];
		if (c->dot == 1) {
			if (ch == '\r') {
				c->dot = 2;
				i++;
				continue;
			}
			if (ch == '\n') {
				i++;
				goto end;
			}
			/* A dot-stuffed line: the dot was content. */
			c->dot = 0;
			c->bol = false;
			c->msg_bytes += 1;
			continue; /* ch again, as content */
		}
		if (c->dot == 2) {
			if (ch == '\n') {
				i++;
				goto end;
			}
			c->dot = 0;
			c->bol = false;
			c->msg_bytes += 2;
			continue;
		}
		if (c->bol && ch == '.') {
			c->dot = 1;
			i++;
			continue;
		}
		/* Inside a line nothing matters before its LF. */
		const char *lf = memchr(p + i, '\n', n - i);
		size_t k = lf ? (size_t)(lf - (p + i)) + 1 : n - i;
		c->msg_bytes += k;
		i += k;
		c->bol = lf != NULL;
	}
	return i;
end:
	c->in_data = false;
	c->dot = 0;
	s->messages++;
	s->bytes += c->msg_bytes;
	s_reset(c);
	S_REPLY(c, "250 2.0.0 Message accepted\r\n");
	return i;
}

/* Take whole commands (and DATA) from in[] while replies fit in out[]. */
static void s_process(struct s_sink *s, struct s_conn *c)
{
	size_t pos = 0;
	while (pos < c->in_len && !c->quit && s_room(c)) {
		if (c->in_data) {
			pos += s_data(s, c, c->in + pos, c->in_len - pos);
			continue;
		}
		char *line = c->in + pos;
		char *lf = memchr(line, '\n', c->in_len - pos);
		if (!lf)
			break;
		size_t len = (size_t)(lf - line);
		pos += len + 1;
		if (c->discard) {
			c->discard = false;
			S_REPLY(c, "500 Error: line too long\r\n");
			continue;
		}
		if (len && line[len - 1] == '\r')
			len--;
		s_command(c, line, len);
	}
	memmove(c->in, c->in + pos, c->in_len - pos);
	c->in_len -= pos;
	/* A full buffer with no LF in command mode is one overlong line. */
	if (!c->in_data && !c->quit && c->in_len == sizeof(c->in) && !memchr(c->in, '\n', c->in_len)) {
		c->discard = true;
		c->in_len = 0;
	}
}

/* Send what out[] holds; 0 when all is sent or the socket is full. */
static int s_flush(struct s_conn *c)
{
	int rc = 0;
	while (c->out_off < c->out_len) {
		ssize_t w = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				rc = -errno;
			goto out;
		}
		c->out_off += (size_t)w;
	}
	c->out_off = c->out_len = 0;
out:
	return rc;
}

static void s_close(struct s_sink *s, struct s_conn *c)
{
	epoll_ctl(s->ep, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	free(c);
	/* A descriptor is free again: take the connections that waited. */
	if (s->accept_paused) {
		struct epoll_event ev = { .events = EPOLLIN, .data.ptr = &s_tag_listen };
		if (!epoll_ctl(s->ep, EPOLL_CTL_MOD, s->lfd, &ev))
			s->accept_paused = false;
	}
}

/* Read, answer and send until the socket has nothing more for us or we
 * wait for the client to read; then point epoll at what we wait for.
 * Returns a negative error when the connection is to be closed. */
static int s_service(struct s_sink *s, struct s_conn *c)
{
	int rc = 0;
	for (;;) {
		s_process(s, c);
		rc = s_flush(c);
		if (rc)
			goto out;
		if (c->quit) {
			/* Close once the 221 is out, whatever else was sent. */
			rc = c->out_len ? 0 : -ECONNRESET;
			if (rc)
				goto out;
			break;
		}
		if (!s_room(c) || c->in_len == sizeof(c->in))
			break; /* out[] waits for the client: read no more */
		ssize_t r = read(c->fd, c->in + c->in_len, sizeof(c->in) - c->in_len);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				rc = -errno;
			break;
		}
		if (r == 0) {
			rc = -ECONNRESET; /* the client went */
			goto out;
		}
		c->in_len += (size_t)r;
	}
	if (rc)
		goto out;
	uint32_t want = (c->quit || !s_room(c) || c->in_len == sizeof(c->in)) ? 0 : EPOLLIN;
	if (c->out_len)
		want |= EPOLLOUT;
	if (want != c->events) {
		struct epoll_event ev = { .events = want, .data.ptr = c };
		if (epoll_ctl(s->ep, EPOLL_CTL_MOD, c->fd, &ev)) {
			rc = -errno;
			goto out;
		}
		c->events = want;
	}
out:
	return rc;
}

static int s_accept(struct s_sink *s)
{
	int rc = 0;
	for (;;) {
		int fd = accept4(s->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			if (errno == EMFILE || errno == ENFILE) {
				/* Level-triggered, the listener would wake us
				 * forever: stop listening until a close. */
				struct epoll_event ev = { .events = 0, .data.ptr = &s_tag_listen };
				if (!epoll_ctl(s->ep, EPOLL_CTL_MOD, s->lfd, &ev))
					s->accept_paused = true;
				fprintf(stderr, "smtp_sink: accept: %s\n", strerror(errno));
			} else if (errno != EAGAIN && errno != EWOULDBLOCK) {
				rc = -errno;
			}
			goto out;
		}
		struct s_conn *c = calloc(1, sizeof(*c));
		if (!c) {
			close(fd);
			continue; /* that client is refused, the sink goes on */
		}
		c->fd = fd;
		c->events = EPOLLIN;
		struct epoll_event ev = { .events = EPOLLIN, .data.ptr = c };
		if (epoll_ctl(s->ep, EPOLL_CTL_ADD, fd, &ev)) {
			close(fd);
			free(c);
			continue;
		}
		S_REPLY(c, "220 localhost ESMTP smtp_sink\r\n");
		if (s_service(s, c))
			s_close(s, c);
	}
out:
	return rc;
}

/* Bind 127.0.0.1:port, listen, register with epoll; *bound gets the port. */
static int s_listen(struct s_sink *s, int port, int *bound)
{
	int rc = 0;
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	socklen_t alen = sizeof(a);
	int one = 1;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	s->lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (s->lfd < 0) {
		rc = -errno;
		goto out;
	}
	/* A fixed port from a run that just ended may sit in TIME_WAIT. */
	if (setsockopt(s->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    bind(s->lfd, (struct sockaddr *)&a, sizeof(a)) || listen(s->lfd, SOMAXCONN) ||
	    getsockname(s->lfd, (struct sockaddr *)&a, &alen)) {
		rc = -errno;
		goto out;
	}
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = &s_tag_listen };
	if (epoll_ctl(s->ep, EPOLL_CTL_ADD, s->lfd, &ev)) {
		rc = -errno;
		goto out;
	}
	*bound = ntohs(a.sin_port);
out:
	return rc;
}

/* SIGTERM, SIGINT and SIGUSR1 arrive as reads of a signalfd in the loop,
 * so stats are written from ordinary code, never from a handler. */
static int s_signals(struct s_sink *s)
{
	int rc = 0;
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGUSR1);
	if (sigprocmask(SIG_BLOCK, &set, NULL)) {
		rc = -errno;
		goto out;
	}
	/* send() has MSG_NOSIGNAL; this is for anything else that writes. */
	signal(SIGPIPE, SIG_IGN);
	s->sfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
	if (s->sfd < 0) {
		rc = -errno;
		goto out;
	}
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = &s_tag_signal };
	if (epoll_ctl(s->ep, EPOLL_CTL_ADD, s->sfd, &ev))
		rc = -errno;
out:
	return rc;
}

/* Returns 1 when a stop signal came, 0 otherwise. */
static int s_signal_read(struct s_sink *s)
{
	struct signalfd_siginfo si;
	int stop = 0;
	while (read(s->sfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
		if (si.ssi_signo == SIGUSR1)
			s_stats_write(s);
		else
			stop = 1;
	}
	return stop;
}

static int s_run(struct s_sink *s)
{
	int rc = 0;
	struct epoll_event evs[64];
	for (;;) {
		int n = epoll_wait(s->ep, evs, 64, -1);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			rc = -errno;
			goto out;
		}
		for (int i = 0; i < n; i++) {
			void *p = evs[i].data.ptr;
			if (p == &s_tag_signal) {
				if (s_signal_read(s))
					goto out;
			} else if (p == &s_tag_listen) {
				rc = s_accept(s);
				if (rc)
					goto out;
			} else if (s_service(s, p)) {
				/* Any error ends that session only. */
				s_close(s, p);
			}
		}
	}
out:
	return rc;
}

int main(int argc, char **argv)
{
	int rc = 0, port = 0, bound = 0;
	struct s_sink s = { .ep = -1, .lfd = -1, .sfd = -1 };
	static const struct option opts[] = {
		{ "port", required_argument, NULL, 'p' },
		{ "stats", required_argument, NULL, 's' },
		{ NULL, 0, NULL, 0 },
	};
	for (int o; (o = getopt_long(argc, argv, "", opts, NULL)) != -1;) {
		char *end;
		switch (o) {
		case 'p':
			port = (int)strtol(optarg, &end, 10);
			if (*end || port < 0 || port > 65535) {
				fprintf(stderr, "smtp_sink: --port %s: not a port\n", optarg);
				return 2;
			}
			break;
		case 's':
			s.stats = optarg;
			break;
		default:
			fprintf(stderr, "usage: smtp_sink [--port N] [--stats FILE]\n");
			return 2;
		}
	}
	s.ep = epoll_create1(EPOLL_CLOEXEC);
	if (s.ep < 0) {
		rc = -errno;
		goto out;
	}
	rc = s_signals(&s);
	if (rc)
		goto out;
	rc = s_listen(&s, port, &bound);
	if (rc)
		goto out;
	printf("READY %d\n", bound);
	fflush(stdout);
	rc = s_run(&s);
	if (rc)
		goto out;
	rc = s_stats_write(&s);
out:
	/* Connections still open are the kernel's to close at exit. */
	if (rc)
		fprintf(stderr, "smtp_sink: %s\n", strerror(-rc));
	if (s.sfd >= 0)
		close(s.sfd);
	if (s.lfd >= 0)
		close(s.lfd);
	if (s.ep >= 0)
		close(s.ep);
	return rc ? 1 : 0;
}
