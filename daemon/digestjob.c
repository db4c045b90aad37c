/* digestjob.c: see digestjob.h. */
#include "digestjob.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <linux/futex.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "core.h"
#include "err.h"
#include "helper.h"
#include "log.h"
#include "store.h"

/* What the helper writes back: this, then err_len bytes of error text,
 * n_seqs seqs, the id, the CSV's name and the fields as JSON. */
struct s_head {
	int32_t rc;
	uint32_t err_len, id_len, csv_name_len, fields_len;
	uint32_t children, events;
	uint64_t n_seqs;
	char date[16], window_from[32], window_to[32];
	uint64_t off[4], len[4];
};

/* A window of millions of events is refused rather than held: 8 bytes a seq. */
#define S_MAX_ANSWER (128u << 20)

struct s_job {
	struct yj_digestjobs *set;
	struct yj_helper *helper;        /* owned by the running helper */
	int fd;                          /* the renderings' file, owned */
	unsigned parts;
	/* What to build, owned: the helper may be forked again long after the
	 * start (helper.h: a child stuck on an inherited lock), and each fork
	 * reads these from the parent's memory as it is then. */
	char *rcpt_id;
	Yjlink__V1__Digest *d;
	yj_digestjob_done_fn done;
	void *arg;
};

struct yj_digestjobs {
	struct yj_core *core;            /* borrowed */
	struct s_job *jobs[YJ_DIGESTJOB_MAX];
};

int yj_digestjobs_new(struct yj_core *core, struct yj_digestjobs **out)
{
	struct yj_digestjobs *js = calloc(1, sizeof(*js));
	if (!js)
		return YJ_ENOMEM;
	js->core = core;
	*out = js;
	return 0;
}

size_t yj_digestjobs_running(const struct yj_digestjobs *js)
{
	size_t n = 0;
	for (size_t i = 0; js && i < YJ_DIGESTJOB_MAX; i++)
		n += js->jobs[i] != NULL;
	return n;
}

/* --- the helper ----------------------------------------------------------- */

struct s_child_build {
	struct s_job *j;
	struct s_head h;
	struct yj_digest_content meta;
	char err[sizeof(((struct yj_digest_built *)0)->err)];
};

/* A test holds the build here (testing.digest_gate), inside its read
 * transaction, and sees the loop go on meanwhile. */
static void s_at_gate(const char *gate)
{
	struct timespec ts = { 0, 20 * 1000 * 1000 };
	yj_notice("digest: helper %ld holds its build until %s exists", (long)getpid(), gate);
	while (access(gate, F_OK) != 0)
		nanosleep(&ts, NULL);
}

/* A test's stand-in for a lock inherited held at the fork (helper.h): the
 * first helper to come here makes the file and waits on a futex no one
 * wakes; the watch kills it and forks again, and the next one goes on. */
static void s_at_stall(const char *path)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0)
		return;
	close(fd);
	yj_notice("digest: helper %ld stalls on a lock (testing.digest_stall)", (long)getpid());
	static uint32_t word;
	for (;;)
		syscall(SYS_futex, &word, FUTEX_WAIT_PRIVATE, 0, NULL, NULL, 0);
}

static int s_child_read(struct yj_txn *txn, void *arg)
{
	struct s_child_build *cb = arg;
	struct s_job *j = cb->j;
	const struct yj_core *core = j->set->core;
	struct yj_digest_view *view = NULL;
	FILE *f = NULL;
	int rc, dfd;

	if (*core->cfg->testing_digest_stall)
		s_at_stall(core->cfg->testing_digest_stall);
	if (*core->cfg->testing_digest_gate)
		s_at_gate(core->cfg->testing_digest_gate);
	const struct yj_recipient *r = yj_config_recipient(core->cfg, j->rcpt_id);
	if (!r) {
		snprintf(cb->err, sizeof(cb->err), "the recipient is no longer configured");
		return YJ_ENOENT;
	}
	if ((rc = yj_digest_open(txn, core->cfg, core->ref, r, j->d, &view, &cb->meta))) {
		snprintf(cb->err, sizeof(cb->err), "the digest cannot be built: %s", yj_strerror(rc));
		return rc;
	}
	if ((dfd = dup(j->fd)) < 0 || !(f = fdopen(dfd, "w"))) {
		if (dfd >= 0)
			close(dfd);
		rc = YJ_EIO;
		goto out;
	}
	for (unsigned i = 0; !rc && i < 4; i++) {
		if (!(j->parts & (1u << i)))
			continue;
		off_t at = ftello(f);
		rc = yj_digest_write(view, 1u << i, f);
		if (!rc && fflush(f) != 0)
			rc = YJ_EIO;
		cb->h.off[i] = (uint64_t)at;
		cb->h.len[i] = rc ? 0 : (uint64_t)(ftello(f) - at);
	}
out:
	if (f && fclose(f) != 0 && !rc)
		rc = YJ_EIO;
	if (rc == YJ_EIO || rc == YJ_ENOMEM)
		snprintf(cb->err, sizeof(cb->err), "the digest's renderings cannot be written (%s): is the store's "
			 "file system full?", yj_strerror(rc));
	yj_digest_close(&view);
	return rc;
}

static int s_child(void *arg, int wfd)
{
	struct s_child_build cb;
	struct yj_store *store = NULL;
	char *fields = NULL;
	memset(&cb, 0, sizeof(cb));
	cb.j = arg;

	int rc = yj_store_open_reader(cb.j->set->core->store, &store);
	if (rc)
		snprintf(cb.err, sizeof(cb.err), "the store cannot be opened to read (see the log)");
	else
		rc = yj_store_read(store, s_child_read, &cb);
	struct s_head *h = &cb.h;
	const struct yj_digest_content *m = &cb.meta;
	if (!rc && m->fields && !(fields = cJSON_PrintUnformatted(m->fields)))
		rc = YJ_ENOMEM;
	h->rc = rc;
	if (rc && !*cb.err)
		snprintf(cb.err, sizeof(cb.err), "%s", yj_strerror(rc));
	h->err_len = (uint32_t)strlen(cb.err);
	if (!rc) {
		h->id_len = m->id ? (uint32_t)strlen(m->id) : 0;
		h->csv_name_len = m->csv_name ? (uint32_t)strlen(m->csv_name) : 0;
		h->fields_len = fields ? (uint32_t)strlen(fields) : 0;
		h->children = m->children;
		h->events = m->events;
		h->n_seqs = m->n_seqs;
		memcpy(h->date, m->date, sizeof(h->date));
		memcpy(h->window_from, m->window_from, sizeof(h->window_from));
		memcpy(h->window_to, m->window_to, sizeof(h->window_to));
	}
	int wrc = yj_helper_write_all(wfd, h, sizeof(*h));
	if (!wrc)
		wrc = yj_helper_write_all(wfd, cb.err, h->err_len);
	if (!rc && !wrc)
		wrc = yj_helper_write_all(wfd, m->seqs, (size_t)h->n_seqs * sizeof(uint64_t));
	if (!rc && !wrc)
		wrc = yj_helper_write_all(wfd, m->id, h->id_len);
	if (!rc && !wrc)
		wrc = yj_helper_write_all(wfd, m->csv_name, h->csv_name_len);
	if (!rc && !wrc)
		wrc = yj_helper_write_all(wfd, fields, h->fields_len);
	/* Its reader slot freed for the next helper (a killed one is cleared by the next yj_store_open_reader). */
	yj_store_close(&store);
	return wrc ? 1 : 0;
}

/* --- back on the loop ----------------------------------------------------- */

/* b from what the helper wrote (b->rc and err say what went wrong). */
static void s_parse(const struct yj_helper_end *end, struct yj_digest_built *b)
{
	struct s_head h;
	if (end->timed_out || end->overflow || end->len < sizeof(h) || !end->exited_ok) {
		b->rc = YJ_EIO;
		if (end->timed_out)
			snprintf(b->err, sizeof(b->err), "the digest's build took over %d s and was stopped",
				 YJ_DIGESTJOB_LIMIT_MS / 1000);
		else if (end->overflow)
			snprintf(b->err, sizeof(b->err), "the digest's window is too big to send (over %u MiB of seqs)",
				 S_MAX_ANSWER >> 20);
		else if (end->signal)
			snprintf(b->err, sizeof(b->err), "the digest helper died (signal %d): see the daemon's log",
				 end->signal);
		else
			snprintf(b->err, sizeof(b->err), "the digest helper failed: see the daemon's log");
		return;
	}
	memcpy(&h, end->buf, sizeof(h));
	uint64_t want = sizeof(h) + (uint64_t)h.err_len;
	if (!h.rc)
		want += h.n_seqs * sizeof(uint64_t) + h.id_len + h.csv_name_len + h.fields_len;
	if (want != end->len || h.err_len >= sizeof(b->err) || h.date[sizeof(h.date) - 1] ||
	    h.window_from[sizeof(h.window_from) - 1] || h.window_to[sizeof(h.window_to) - 1]) {
		b->rc = YJ_EIO;
		snprintf(b->err, sizeof(b->err), "the digest helper's answer is garbled: see the daemon's log");
		return;
	}
	const char *p = end->buf + sizeof(h);
	memcpy(b->err, p, h.err_len);
	b->err[h.err_len] = '\0';
	p += h.err_len;
	if ((b->rc = h.rc))
		return;
	struct yj_digest_content *m = &b->meta;
	size_t seq_bytes = (size_t)h.n_seqs * sizeof(uint64_t);
	b->rc = YJ_ENOMEM;
	if ((seq_bytes && !(m->seqs = malloc(seq_bytes))) || !(m->id = yj_helper_take(p + seq_bytes, h.id_len)) ||
	    !(m->csv_name = yj_helper_take(p + seq_bytes + h.id_len, h.csv_name_len)))
		return;
	if (seq_bytes)
		memcpy(m->seqs, p, seq_bytes);
	m->n_seqs = (size_t)h.n_seqs;
	p += seq_bytes + h.id_len + h.csv_name_len;
	m->fields = h.fields_len ? cJSON_ParseWithLength(p, h.fields_len) : cJSON_CreateArray();
	if (!m->fields)
		return;
	m->children = h.children;
	m->events = h.events;
	memcpy(m->date, h.date, sizeof(m->date));
	memcpy(m->window_from, h.window_from, sizeof(m->window_from));
	memcpy(m->window_to, h.window_to, sizeof(m->window_to));
	memcpy(b->off, h.off, sizeof(b->off));
	memcpy(b->len, h.len, sizeof(b->len));
	b->rc = 0;
}

static void s_job_free(struct s_job *j)
{
	if (j->fd >= 0)
		close(j->fd);
	free(j->rcpt_id);
	if (j->d)
		yjlink__v1__digest__free_unpacked(j->d, NULL);
	free(j);
}

static void s_on_end(void *arg, const struct yj_helper_end *end)
{
	struct s_job *j = arg;
	struct yj_digestjobs *js = j->set;
	struct yj_digest_built b;

	for (size_t i = 0; i < YJ_DIGESTJOB_MAX; i++) {
		if (js->jobs[i] == j)
			js->jobs[i] = NULL;
	}
	memset(&b, 0, sizeof(b));
	b.fd = -1;
	if (end->cancelled) {
		b.rc = YJ_ESHUTDOWN;
		snprintf(b.err, sizeof(b.err), "the daemon is stopping");
	} else {
		s_parse(end, &b);
		if (!b.rc) {
			b.parts = j->parts;
			b.fd = j->fd;
		} else {
			yj_digest_content_free(&b.meta);
			yj_warn("digest: the helper's build failed: %s", b.err);
		}
	}
	j->done(j->arg, &b);
	yj_digest_content_free(&b.meta);
	s_job_free(j);
}

/* An unlinked file for the renderings: on disk beside the store (page
 * cache, never the daemon's memory), or in memory where there is no
 * O_TMPFILE. */
static int s_tmpfile(const struct yj_core *core)
{
	int fd = open(core->cfg->store_path, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	if (fd < 0)
		fd = memfd_create("yjlink-digest", MFD_CLOEXEC);
	return fd;
}

int yj_digestjob_start(struct yj_digestjobs *js, const char *rcpt_id, const Yjlink__V1__Digest *d, unsigned parts,
		       yj_digestjob_done_fn done, void *arg)
{
	struct s_job *j = NULL;
	size_t slot = YJ_DIGESTJOB_MAX;
	int rc;

	if (!js || !rcpt_id || !d || !done || !parts || parts > YJ_DIGEST_ALL)
		return YJ_EINVAL;
	for (size_t i = 0; i < YJ_DIGESTJOB_MAX && slot == YJ_DIGESTJOB_MAX; i++) {
		if (!js->jobs[i])
			slot = i;
	}
	if (slot == YJ_DIGESTJOB_MAX)
		return YJ_EAGAIN;
	if (!(j = calloc(1, sizeof(*j))))
		return YJ_ENOMEM;
	j->fd = -1;
	if (!(j->rcpt_id = strdup(rcpt_id)) || !(j->d = yj_digest_copy(d))) {
		s_job_free(j);
		return YJ_ENOMEM;
	}
	if ((j->fd = s_tmpfile(js->core)) < 0) {
		yj_err("digest: no file for a digest's renderings in %s: %s", js->core->cfg->store_path, strerror(errno));
		s_job_free(j);
		return YJ_EIO;
	}
	j->set = js;
	j->parts = parts;
	j->done = done;
	j->arg = arg;
	rc = yj_helper_start(js->core->loop, "digest", YJ_DIGESTJOB_LIMIT_MS, S_MAX_ANSWER, s_child, j, s_on_end, j,
			     &j->helper);
	if (rc) {
		s_job_free(j);
		return rc;
	}
	js->jobs[slot] = j;
	return 0;
}

void yj_digestjobs_destroy(struct yj_digestjobs **pjs)
{
	struct yj_digestjobs *js = pjs ? *pjs : NULL;
	if (!js)
		return;
	for (size_t i = 0; i < YJ_DIGESTJOB_MAX; i++) {
		if (js->jobs[i])
			yj_helper_cancel(js->jobs[i]->helper);
	}
	free(js);
	*pjs = NULL;
}

/* --- reading the renderings ----------------------------------------------- */

static int s_part_index(const struct yj_digest_built *b, unsigned part)
{
	for (int i = 0; i < 4; i++) {
		if (part == (1u << i))
			return b && b->fd >= 0 && (b->parts & part) ? i : -1;
	}
	return -1;
}

int yj_digest_built_write(const struct yj_digest_built *b, unsigned part, FILE *f)
{
	char buf[65536];
	int i = s_part_index(b, part);
	if (i < 0)
		return YJ_EINVAL;
	uint64_t at = b->off[i], left = b->len[i];
	while (left) {
		size_t want = left < sizeof(buf) ? (size_t)left : sizeof(buf);
		ssize_t n = pread(b->fd, buf, want, (off_t)at);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return YJ_EIO;
		if (fwrite(buf, 1, (size_t)n, f) != (size_t)n)
			return YJ_ENOMEM;
		at += (uint64_t)n;
		left -= (uint64_t)n;
	}
	return 0;
}

int yj_digest_built_read(const struct yj_digest_built *b, unsigned part, char **out, size_t *len)
{
	int i = s_part_index(b, part);
	*out = NULL;
	*len = 0;
	if (i < 0)
		return YJ_EINVAL;
	char *s = malloc((size_t)b->len[i] + 1);
	if (!s)
		return YJ_ENOMEM;
	uint64_t got = 0;
	while (got < b->len[i]) {
		ssize_t n = pread(b->fd, s + got, (size_t)(b->len[i] - got), (off_t)(b->off[i] + got));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			free(s);
			return YJ_EIO;
		}
		got += (uint64_t)n;
	}
	s[got] = '\0';
	*out = s;
	*len = (size_t)got;
	return 0;
}
