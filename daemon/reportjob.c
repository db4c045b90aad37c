/* reportjob.c: see reportjob.h. */
#include "reportjob.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include "config.h"
#include "core.h"
#include "err.h"
#include "log.h"
#include "loop.h"
#include "store.h"

/* What the child writes first; then err_len bytes of error text and the
 * renderings, each len[i] bytes (json, csv, html). */
struct s_head {
	int32_t rc;
	uint32_t err_len;
	uint64_t events;
	uint64_t len[3];
};

/* Renderings bigger than this are not a board report (it is aggregate
 * figures: some hundreds of KiB): the child is killed. */
#define S_MAX_OUTPUT (64u << 20)

struct s_job {
	struct yj_reportjobs *set;
	pid_t pid;
	int fd;                        /* the pipe's read end, -1 once closed */
	int64_t timer;
	int timed_out;
	unsigned formats;
	struct yj_report_params p;     /* strings owned */
	char *buf;                     /* what the child wrote so far, owned */
	size_t len, cap;
	yj_reportjob_done_fn done;
	void *arg;
};

struct yj_reportjobs {
	struct yj_core *core;          /* borrowed */
	struct s_job *jobs[YJ_REPORTJOB_MAX];
};

int yj_reportjobs_new(struct yj_core *core, struct yj_reportjobs **out)
{
	struct yj_reportjobs *js = calloc(1, sizeof(*js));
	if (!js)
		return YJ_ENOMEM;
	js->core = core;
	*out = js;
	return 0;
}

size_t yj_reportjobs_running(const struct yj_reportjobs *js)
{
	size_t n = 0;
	for (size_t i = 0; js && i < YJ_REPORTJOB_MAX; i++)
		n += js->jobs[i] != NULL;
	return n;
}

static void s_params_free(struct yj_report_params *p)
{
	free((char *)p->from);
	free((char *)p->to);
	free((char *)p->yjs);
	free((char *)p->population);
	memset(p, 0, sizeof(*p));
}

static int s_params_copy(struct yj_report_params *dst, const struct yj_report_params *src)
{
	memset(dst, 0, sizeof(*dst));
	dst->now_us = src->now_us;
	if ((src->from && !(dst->from = strdup(src->from))) || (src->to && !(dst->to = strdup(src->to))) ||
	    (src->yjs && !(dst->yjs = strdup(src->yjs))) ||
	    (src->population && !(dst->population = strdup(src->population)))) {
		s_params_free(dst);
		return YJ_ENOMEM;
	}
	return 0;
}

static int s_write_all(int fd, const void *data, size_t len)
{
	const char *p = data;
	while (len) {
		ssize_t n = write(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return YJ_EIO;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Inside the build's read transaction: a test holds the report here
 * (testing.report_gate) with a reader open, the worst case for the writer
 * (its old pages pinned, the map to grow), and sees the loop go on
 * meanwhile. The parent's time limit ends the wait at the latest. */
static void s_at_gate(void *arg)
{
	const char *gate = arg;
	struct timespec ts = { 0, 20 * 1000 * 1000 };
	yj_notice("report: helper %ld holds its reader open until %s exists", (long)getpid(), gate);
	while (access(gate, F_OK) != 0)
		nanosleep(&ts, NULL);
}

/* The helper: everything it uses is its copy of the parent's memory at the
 * fork, and an environment of its own on the store's files. It never
 * returns; it never touches the parent's ZeroMQ context or LMDB environment. */
static void s_child(struct yj_reportjobs *js, struct s_job *j, int wfd, pid_t parent) __attribute__((noreturn));
static void s_child(struct yj_reportjobs *js, struct s_job *j, int wfd, pid_t parent)
{
	const struct yj_core *core = js->core;
	struct s_head h;
	char err[sizeof(((struct yj_report_result *)0)->err)] = "";
	struct yj_store *store = NULL;
	struct yj_report *r = NULL;
	char *out[3] = { NULL, NULL, NULL };
	size_t len[3] = { 0, 0, 0 };
	sigset_t all;

	yj_log_after_fork();
	/* Not a moment longer than the daemon that asked. */
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != parent)
		_exit(1);
	/* The daemon blocks its signals for its signalfd: the helper takes them. */
	sigfillset(&all);
	sigprocmask(SIG_UNBLOCK, &all, NULL);
	signal(SIGTERM, SIG_DFL);
	signal(SIGALRM, SIG_DFL);

	int rc = yj_store_open_reader(core->store, &store);
	if (rc)
		snprintf(err, sizeof(err), "the store cannot be opened to read (see the log)");
	if (!rc && *core->cfg->testing_report_gate) {
		j->p.in_snapshot = s_at_gate;
		j->p.in_snapshot_arg = core->cfg->testing_report_gate;
	}
	if (!rc)
		rc = yj_report_build(store, core->cfg, core->ref, &j->p, &r, err, sizeof(err));
	if (!rc && (j->formats & YJ_REPORT_JSON) && !(rc = yj_report_json(r, &out[0])))
		len[0] = strlen(out[0]);
	if (!rc && (j->formats & YJ_REPORT_CSV))
		rc = yj_report_csv(r, &out[1], &len[1]);
	if (!rc && (j->formats & YJ_REPORT_HTML))
		rc = yj_report_html(r, &out[2], &len[2]);
	memset(&h, 0, sizeof(h));
	h.rc = rc;
	h.err_len = (uint32_t)strlen(err);
	h.events = r ? yj_report_events_read(r) : 0;
	for (int i = 0; i < 3; i++)
		h.len[i] = rc ? 0 : len[i];
	int wrc = s_write_all(wfd, &h, sizeof(h));
	if (!wrc)
		wrc = s_write_all(wfd, err, h.err_len);
	for (int i = 0; !wrc && i < 3; i++)
		wrc = s_write_all(wfd, out[i] ? out[i] : "", (size_t)h.len[i]);
	/* _exit: no atexit handler of the parent's (libzmq's, the sanitizers')
	 * may run in the helper. */
	_exit(wrc ? 1 : 0);
}

static char *s_take(const char *p, size_t len)
{
	char *s = malloc(len + 1);
	if (s) {
		memcpy(s, p, len);
		s[len] = '\0';
	}
	return s;
}

/* The result of a job whose child has ended, from what it wrote. */
static void s_parse(const struct s_job *j, int status, struct yj_report_result *res)
{
	struct s_head h;
	memset(res, 0, sizeof(*res));
	if (j->timed_out) {
		res->rc = YJ_EAGAIN;
		snprintf(res->err, sizeof(res->err), "the report took over %d s and was stopped: ask for a shorter period",
			 YJ_REPORTJOB_LIMIT_MS / 1000);
		return;
	}
	if (j->len < sizeof(h) || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		res->rc = YJ_EIO;
		if (WIFSIGNALED(status))
			snprintf(res->err, sizeof(res->err), "the report helper died (signal %d): see the daemon's log",
				 WTERMSIG(status));
		else
			snprintf(res->err, sizeof(res->err), "the report helper failed: see the daemon's log");
		return;
	}
	memcpy(&h, j->buf, sizeof(h));
	uint64_t want = sizeof(h) + (uint64_t)h.err_len + h.len[0] + h.len[1] + h.len[2];
	if (want != j->len || h.err_len >= sizeof(res->err)) {
		res->rc = YJ_EIO;
		snprintf(res->err, sizeof(res->err), "the report helper's answer is garbled: see the daemon's log");
		return;
	}
	const char *p = j->buf + sizeof(h);
	memcpy(res->err, p, h.err_len);
	p += h.err_len;
	res->rc = h.rc;
	res->events_read = (size_t)h.events;
	if (res->rc)
		return;
	char **dst[3] = { &res->json, &res->csv, &res->html };
	static const unsigned bit[3] = { YJ_REPORT_JSON, YJ_REPORT_CSV, YJ_REPORT_HTML };
	for (int i = 0; i < 3; i++) {
		if ((j->formats & bit[i]) && !(*dst[i] = s_take(p, (size_t)h.len[i]))) {
			res->rc = YJ_ENOMEM;
			return;
		}
		p += h.len[i];
	}
	res->csv_len = (size_t)h.len[1];
	res->html_len = (size_t)h.len[2];
}

static void s_result_free(struct yj_report_result *res)
{
	free(res->json);
	free(res->csv);
	free(res->html);
	memset(res, 0, sizeof(*res));
}

/* Reap the child, hand its result over, forget the job. */
static void s_finish(struct s_job *j, int cancelled)
{
	struct yj_reportjobs *js = j->set;
	struct yj_report_result res;
	int status = 0;

	if (j->fd >= 0) {
		yj_loop_remove(js->core->loop, NULL, j->fd);
		close(j->fd);
		j->fd = -1;
	}
	if (j->timer > 0)
		yj_loop_timer_cancel(js->core->loop, j->timer);
	if (cancelled)
		kill(j->pid, SIGKILL);
	while (waitpid(j->pid, &status, 0) < 0 && errno == EINTR)
		;
	for (size_t i = 0; i < YJ_REPORTJOB_MAX; i++) {
		if (js->jobs[i] == j)
			js->jobs[i] = NULL;
	}
	if (cancelled) {
		memset(&res, 0, sizeof(res));
		res.rc = YJ_ESHUTDOWN;
		snprintf(res.err, sizeof(res.err), "the daemon is stopping: ask again once it is back");
	} else {
		s_parse(j, status, &res);
	}
	if (res.rc && res.rc != YJ_EINVAL && !cancelled)
		yj_warn("report: %s..%s (%s): %s", j->p.from, j->p.to, j->p.yjs ? j->p.yjs : "force", res.err);
	j->done(j->arg, &res);
	s_result_free(&res);
	s_params_free(&j->p);
	free(j->buf);
	free(j);
}

static int s_on_readable(struct yj_loop *loop, void *sock, int fd, short revents, void *arg)
{
	struct s_job *j = arg;
	(void)loop;
	(void)sock;
	(void)revents;
	for (;;) {
		if (j->cap - j->len < 65536) {
			size_t ncap = j->cap ? j->cap * 2 : 131072;
			char *nb = ncap <= S_MAX_OUTPUT + sizeof(struct s_head) + 65536 ? realloc(j->buf, ncap) : NULL;
			if (!nb) {
				yj_err("report: the helper's answer is over %u MiB: stopped", S_MAX_OUTPUT >> 20);
				kill(j->pid, SIGKILL);
				j->len = 0;
				s_finish(j, 0);
				return 0;
			}
			j->buf = nb;
			j->cap = ncap;
		}
		ssize_t n = read(fd, j->buf + j->len, j->cap - j->len);
		if (n > 0) {
			j->len += (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return 0;
		s_finish(j, 0);   /* end of the pipe: the child is done */
		return 0;
	}
}

static int s_on_timeout(struct yj_loop *loop, void *arg)
{
	struct s_job *j = arg;
	(void)loop;
	j->timer = 0;
	j->timed_out = 1;
	/* The pipe's end follows at once and finishes the job. */
	kill(j->pid, SIGKILL);
	return 0;
}

int yj_reportjob_start(struct yj_reportjobs *js, const struct yj_report_params *p, unsigned formats,
		       yj_reportjob_done_fn done, void *arg)
{
	struct s_job *j = NULL;
	int fds[2] = { -1, -1 }, rc = 0;
	size_t slot = YJ_REPORTJOB_MAX;

	if (!js || !p || !done || !formats)
		return YJ_EINVAL;
	for (size_t i = 0; i < YJ_REPORTJOB_MAX && slot == YJ_REPORTJOB_MAX; i++) {
		if (!js->jobs[i])
			slot = i;
	}
	if (slot == YJ_REPORTJOB_MAX)
		return YJ_EAGAIN;
	if (!(j = calloc(1, sizeof(*j))) || s_params_copy(&j->p, p)) {
		rc = YJ_ENOMEM;
		goto out;
	}
	j->set = js;
	j->fd = -1;
	j->formats = formats;
	j->done = done;
	j->arg = arg;
	if (pipe2(fds, O_CLOEXEC) != 0) {
		yj_err("report: cannot make a pipe for the helper: %s", strerror(errno));
		rc = YJ_EIO;
		goto out;
	}
	pid_t parent = getpid();
	j->pid = fork();
	if (j->pid < 0) {
		yj_err("report: cannot start the helper: %s", strerror(errno));
		rc = YJ_EIO;
		goto out;
	}
	if (j->pid == 0) {
		close(fds[0]);
		s_child(js, j, fds[1], parent);
	}
	close(fds[1]);
	fds[1] = -1;
	j->fd = fds[0];
	fds[0] = -1;
	if (fcntl(j->fd, F_SETFL, O_NONBLOCK) != 0 || yj_loop_add(js->core->loop, NULL, j->fd, ZMQ_POLLIN, s_on_readable, j)) {
		kill(j->pid, SIGKILL);
		rc = YJ_EIO;
		goto out;
	}
	j->timer = yj_loop_timer(js->core->loop, YJ_REPORTJOB_LIMIT_MS, 0, s_on_timeout, j);
	js->jobs[slot] = j;
	j = NULL;
out:
	if (fds[0] >= 0)
		close(fds[0]);
	if (fds[1] >= 0)
		close(fds[1]);
	if (j) {
		if (j->fd >= 0)
			close(j->fd);
		if (j->pid > 0)
			while (waitpid(j->pid, NULL, 0) < 0 && errno == EINTR)
				;
		s_params_free(&j->p);
		free(j);
	}
	return rc;
}

void yj_reportjobs_destroy(struct yj_reportjobs **pjs)
{
	struct yj_reportjobs *js = pjs ? *pjs : NULL;
	if (!js)
		return;
	for (size_t i = 0; i < YJ_REPORTJOB_MAX; i++) {
		if (js->jobs[i])
			s_finish(js->jobs[i], 1);
	}
	free(js);
	*pjs = NULL;
}
