/* in_spool.c: the spool directory, for custody systems that can only export
 * files (interfaces.md §1, "Spool directory").
 *
 * inotify on spool.directory: a file is taken once it is complete, renamed
 * in (IN_MOVED_TO) or closed after writing (IN_CLOSE_WRITE), and only
 * `*.jsonl` (so `.x.tmp` written and renamed in is taken once, whole). Its
 * feed is the name's prefix before the first '-' (custody-20261122T0600.jsonl
 * is custody). Each line goes to the core as a YJL1 request would, for
 * spool.force only. Files are taken one at a time, in name order.
 *
 * Lines go in chunks of at most ingest.batch_max, one chunk per loop
 * iteration (the next from a 0 ms timer once the last reply of this one is
 * in), so a file of 100,000 lines goes through in a few group commits at
 * ingest speed and the loop never waits for a whole file. A RETRY (store
 * full, shutting down) rewinds the file to that line, after a pause: the
 * lines refused by RETRY are always the last ones sent, as a batch fails
 * whole and a chunk stops at the first.
 *
 * When every line is answered the file moves to done/ (every line OK or
 * DUP) or to failed/ with failed/NAME.errors beside it, one line per
 * refused line: `LINE: CODE FIELD: REASON`.
 *
 * Restarts: each line carries its number as the position "in_spool.<name>",
 * which the core writes with the batch, so the store says how far a file was
 * committed. The report so far is kept beside the file, in .NAME.part: the
 * refused lines, then "#N" once every line up to N is answered (synced when
 * it holds refusals). A daemon killed half-way through a file takes it up
 * again after line min(position, N): no line committed is sent again unless
 * its refusal could have missed the report (those few are sent again and
 * answered DUP, or refused again, and so reported once), and a line sent
 * again is a DUP by its source_id, never a second event. A file without
 * its .part was never started: it is read from line 1 whatever position an
 * earlier file of the same name left.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zmq.h>

#include "adapter.h"
#include "config.h"
#include "err.h"
#include "log.h"
#include "loop.h"
#include "prom.h"

/* Longest file name taken: its position key, "in_spool." and the name, must
 * fit the store's position keys (200 bytes, db/positions.h). A longer one
 * is left where it is, with a warning. */
#define S_NAME_MAX 180
#define S_NAME_BUF (S_NAME_MAX + 32) /* a name taken, with a suffix (".part.tmp", ".999.errors") */
#define S_RETRY_MS 1000          /* pause before sending lines again that were answered RETRY */
#define S_SKIP_PER_STEP (1 << 20) /* lines skipped on resume per loop iteration, at most */
#define S_REPORT_LINE 1024       /* longest line of an error report */

extern const struct yj_adapter yj_adapter_in_spool;

/* The four feeds (interfaces.md §1): a file name's prefix must be one. */
static const char *const s_feeds[] = { "custody", "arrest", "voluntary_interview", "outcome" };

/* The `spool` section. */
struct s_settings {
	char *directory;                /* "" = off */
	char *force;                    /* the only force its lines may be for */
};

#define S_OFF(f) offsetof(struct s_settings, f)
static const struct yj_setting s_section_table[] = {
	{ YJ_SETTING_STR, "directory", S_OFF(directory), "", 0, 0,
	  "spool directory watched for complete `*.jsonl` files (absolute path; done/ and failed/ made inside); "
	  "empty = off" },
	{ YJ_SETTING_STR, "force", S_OFF(force), "", 0, 0,
	  "GSS code of the force the spooled files are for (required with a directory); any other is REJECT forbidden" },
};
#undef S_OFF

/* One line of the chunk in flight: the reply's argument. */
struct s_line {
	struct s_state *st;             /* back, for the reply callback */
	uint64_t no;                    /* line number, from 1 */
	off_t off;                      /* where it starts, to read it again after a RETRY */
};

/* The file being read. */
struct s_file {
	char *name;                     /* owned; its name in the directory */
	char key[16 + S_NAME_MAX];      /* its position: "in_spool.<name>" */
	const char *feed;               /* one of s_feeds */
	FILE *f;                        /* owned */
	dev_t dev;                      /* what f is (device and inode), to tell whether the name still is it */
	ino_t ino;                      /* (see dev) */
	int work_fd;                    /* .NAME.part, owned, O_APPEND */
	uint64_t next;                  /* number of the next line to read */
	uint64_t skip_to;               /* lines up to this were answered before a restart: read past */
	int eof;                        /* 1: every line read; -1: a read error, the file given up for this run */
	uint64_t ok, dup, refused;      /* answers so far (refused: also those before a restart) */
};

struct s_state {
	const struct yj_core_api *api;  /* borrowed */
	char *dir;                      /* owned */
	char *force;                    /* owned; what req.forces points at */
	int dir_fd, done_fd, failed_fd; /* owned */
	int in_fd;                      /* inotify, owned */
	char **queue;                   /* names waiting, in the order taken, owned */
	size_t n_queue, cap_queue;      /* names in queue, and room for */
	struct s_file cur;              /* the file being read, valid while have_cur */
	int have_cur;                   /* a file is being read */
	struct s_line *lines;           /* the chunk in flight, owned, cap_lines of room */
	size_t cap_lines, n_sent, n_answered; /* room; lines of the chunk sent; of those, answered */
	int submitting;                 /* inside the submit loop: replies given at once wait for its end */
	int retry;                      /* a line of the chunk was answered RETRY */
	uint64_t retry_no;              /* the lowest such line, to send again from */
	off_t retry_off;                /* where it starts */
	char *report;                   /* the chunk's refusals, as report lines, owned */
	size_t report_len, report_cap, report_n; /* bytes in report, room, refusals */
	char *buf;                      /* one line, owned */
	size_t buf_cap;                 /* bytes of buf */
	size_t batch_max;               /* lines per chunk: ingest.batch_max */
	size_t max_line;                /* bytes of a line kept: one over ingest.max_message_bytes (too_large) */
	int64_t timer;                  /* the pending step, 0 for none */
	int64_t pause_until;            /* after a RETRY: no lines before this (loop clock, ms) */
	int draining;                   /* take no new lines */
	uint64_t files_done, files_failed; /* since start */
	uint64_t results[4];            /* line replies, by enum yj_status */
};

static void s_chunk_done(struct s_state *st);

/* s as printable ASCII into buf: a name or a reason in a log line or a
 * report line must not break it. */
static const char *s_printable(char *buf, size_t size, const char *s, size_t len)
{
	size_t n = len < size - 1 ? len : size - 1;
	for (size_t i = 0; i < n; i++)
		buf[i] = s[i] >= 0x20 && s[i] < 0x7f ? s[i] : '?';
	buf[n] = '\0';
	return buf;
}

static int s_force_ok(const char *s)
{
	if (strlen(s) != 9 || (strncmp(s, "E23", 3) && strncmp(s, "W15", 3)))
		return 0;
	for (size_t i = 3; i < 9; i++) {
		if (s[i] < '0' || s[i] > '9')
			return 0;
	}
	return 1;
}

static void s_check(const void *settings, const struct yj_setting_site *at)
{
	const struct s_settings *s = settings;

	if (!*s->directory)
		return;
	if (s->directory[0] != '/')
		yj_diag_report(at->diag, at->file, at->line, "'spool.directory' must be an absolute path, not '%s'",
			       s->directory);
	if (!*s->force)
		yj_diag_report(at->diag, at->file, at->line, "'spool.force' is required with a spool.directory");
	else if (!s_force_ok(s->force))
		yj_diag_report(at->diag, at->file, at->line,
			       "'spool.force' must be the GSS code of a force area (E23xxxxxx, W15xxxxxx), not '%s'", s->force);
}

/* A name the spool takes: `*.jsonl`, not hidden (our own .NAME.part), short enough for its position key. */
static int s_wanted(const char *name)
{
	size_t len = strlen(name);
	return len > 6 && name[0] != '.' && !strcmp(name + len - 6, ".jsonl");
}

/* The feed a file name names: its prefix before the first '-', or the
 * whole name before .jsonl; NULL when it is no feed. */
static const char *s_feed_of(const char *name)
{
	const char *dash = strchr(name, '-');
	size_t len = dash ? (size_t)(dash - name) : strlen(name) - 6;
	for (size_t i = 0; i < sizeof(s_feeds) / sizeof(s_feeds[0]); i++) {
		if (strlen(s_feeds[i]) == len && !strncmp(s_feeds[i], name, len))
			return s_feeds[i];
	}
	return NULL;
}

static int s_parse_u64(const char *s, size_t len, uint64_t *out)
{
	uint64_t v = 0;
	if (len < 1 || len > 20)
		return YJ_EINVAL;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return YJ_EINVAL;
		unsigned d = (unsigned)(s[i] - '0');
		if (v > (UINT64_MAX - d) / 10)
			return YJ_ERANGE;
		v = v * 10 + d;
	}
	*out = v;
	return 0;
}

static int s_write_all(int fd, const void *data, size_t len)
{
	const char *p = data;
	while (len) {
		ssize_t n = write(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return YJ_EIO;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* The whole of file name (below dir_fd) into *out (NUL-terminated, owned by the caller). */
static int s_read_all(int dir_fd, const char *name, char **out, size_t *len)
{
	struct stat sb;
	char *buf = NULL;
	size_t got = 0;
	int rc = 0;
	int fd = openat(dir_fd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);

	if (fd < 0)
		return errno == ENOENT ? YJ_ENOENT : YJ_EIO;
	if (fstat(fd, &sb) != 0) {
		rc = YJ_EIO;
		goto out;
	}
	if (!(buf = malloc((size_t)sb.st_size + 1))) {
		rc = YJ_ENOMEM;
		goto out;
	}
	while (got < (size_t)sb.st_size) {
		ssize_t n = read(fd, buf + got, (size_t)sb.st_size - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	buf[got] = '\0';
	*out = buf;
	*len = got;
	buf = NULL;
out:
	free(buf);
	close(fd);
	return rc;
}

/* Write len bytes as file name below dir_fd, new (O_EXCL: YJ_EEXIST when
 * there is one) and synced. */
static int s_write_new(int dir_fd, const char *name, const void *data, size_t len)
{
	int fd = openat(dir_fd, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0)
		return errno == EEXIST ? YJ_EEXIST : YJ_EIO;
	int rc = s_write_all(fd, data, len);
	if (!rc && fsync(fd) != 0)
		rc = YJ_EIO;
	close(fd);
	if (rc)
		unlinkat(dir_fd, name, 0);
	return rc;
}

/* --- the queue ------------------------------------------------------------ */

static void s_kick(struct s_state *st, int64_t delay_ms);

static void s_enqueue(struct s_state *st, const char *name)
{
	char shown[64];

	if (!s_wanted(name))
		return;
	for (size_t i = 0; i < st->n_queue; i++) {
		if (!strcmp(st->queue[i], name))
			return;
	}
	if (st->n_queue == st->cap_queue) {
		size_t ncap = st->cap_queue ? st->cap_queue * 2 : 16;
		char **nq = realloc(st->queue, ncap * sizeof(*nq));
		if (!nq)
			goto fail;
		st->queue = nq;
		st->cap_queue = ncap;
	}
	if (!(st->queue[st->n_queue] = strdup(name)))
		goto fail;
	st->n_queue++;
	return;
fail:
	/* Still in the directory: taken at the next start. */
	yj_err("in_spool: out of memory: %s left for the next start", s_printable(shown, sizeof(shown), name, strlen(name)));
}

static int s_name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Every complete file already in the directory, in name order; at start
 * also the leftovers of a run that stopped between moving a file and
 * removing its .part. */
static void s_scan(struct s_state *st, int at_start)
{
	int fd = openat(st->dir_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	struct dirent *e;
	size_t first = st->n_queue;

	if (!d) {
		if (fd >= 0)
			close(fd);
		yj_err("in_spool: cannot list %s: %s", st->dir, strerror(errno));
		return;
	}
	while ((e = readdir(d))) {
		struct stat sb;
		if (fstatat(st->dir_fd, e->d_name, &sb, AT_SYMLINK_NOFOLLOW) != 0)
			continue;
		size_t len = strlen(e->d_name);
		/* Ours only: .NAME.jsonl.part without NAME (moved before its .part was removed), and
		 * .NAME.jsonl.part.tmp (half written); a writer's own hidden files are left alone. */
		if (at_start && e->d_name[0] == '.' && S_ISREG(sb.st_mode) && len > 15 &&
		    !strcmp(e->d_name + len - 15, ".jsonl.part.tmp")) {
			unlinkat(st->dir_fd, e->d_name, 0);
			continue;
		}
		if (at_start && e->d_name[0] == '.' && S_ISREG(sb.st_mode) && len > 11 &&
		    !strcmp(e->d_name + len - 11, ".jsonl.part")) {
			char of[NAME_MAX + 1];
			snprintf(of, sizeof(of), "%.*s", (int)(len - 6), e->d_name + 1);
			if (faccessat(st->dir_fd, of, F_OK, AT_SYMLINK_NOFOLLOW) != 0)
				unlinkat(st->dir_fd, e->d_name, 0);
			continue;
		}
		if (S_ISREG(sb.st_mode))
			s_enqueue(st, e->d_name);
	}
	closedir(d);
	if (st->n_queue > first)
		qsort(st->queue + first, st->n_queue - first, sizeof(*st->queue), s_name_cmp);
}

/* --- moving a finished file --------------------------------------------------- */

/* Move name out of the directory to dest_fd (done/ or failed/), under its
 * own name or, when one of that name is there already, NAME.1, NAME.2...;
 * for failed/, with the report beside it as <moved name>.errors. */
static int s_move(struct s_state *st, const char *name, int dest_fd, const char *report, size_t report_len,
		  char *moved, size_t moved_size)
{
	int rc = YJ_EEXIST;
	for (unsigned k = 0; k < 1000 && rc == YJ_EEXIST; k++) {
		char errs[S_NAME_BUF + 8];
		if (k)
			snprintf(moved, moved_size, "%s.%u", name, k);
		else
			snprintf(moved, moved_size, "%s", name);
		snprintf(errs, sizeof(errs), "%s.errors", moved);
		/* A report without its file is ours, from a run stopped between the two: replaced. */
		if (report && faccessat(dest_fd, moved, F_OK, AT_SYMLINK_NOFOLLOW) != 0)
			unlinkat(dest_fd, errs, 0);
		if (report && (rc = s_write_new(dest_fd, errs, report, report_len)) == YJ_EEXIST)
			continue;
		if (report && rc)
			return rc;
		int r = renameat2(st->dir_fd, name, dest_fd, moved, RENAME_NOREPLACE);
		if (r != 0 && errno == EINVAL) {
			/* A file system without RENAME_NOREPLACE: a link refuses an existing name just as well. */
			r = linkat(st->dir_fd, name, dest_fd, moved, 0);
			if (r == 0)
				unlinkat(st->dir_fd, name, 0);
		}
		rc = r == 0 ? 0 : errno == EEXIST ? YJ_EEXIST : YJ_EIO;
		if (rc && report)
			unlinkat(dest_fd, errs, 0);
	}
	if (rc)
		return rc;
	/* The move is as durable as the commits before it: else a power cut could bring the file back
	 * without its .part, and it would be read again from line 1 (all DUPs, but needless). */
	fsync(dest_fd);
	fsync(st->dir_fd);
	return 0;
}

/* A whole file refused before any line is read (its name names no feed). */
static void s_fail_whole(struct s_state *st, const char *name, const char *line)
{
	char moved[S_NAME_BUF], shown[S_NAME_MAX + 1];
	int rc = s_move(st, name, st->failed_fd, line, strlen(line), moved, sizeof(moved));

	s_printable(shown, sizeof(shown), name, strlen(name));
	if (rc) {
		yj_err("in_spool: %s: cannot move it to failed/: %s; left where it is", shown, yj_strerror(rc));
		return;
	}
	st->files_failed++;
	yj_warn("in_spool: %s: refused whole (%.*s); moved to failed/", shown, (int)strcspn(line, "\n"), line);
}

/* Close the current file and forget it (its .part stays unless removed first). */
static void s_drop_current(struct s_state *st)
{
	if (st->cur.f)
		fclose(st->cur.f);
	if (st->cur.work_fd >= 0)
		close(st->cur.work_fd);
	free(st->cur.name);
	memset(&st->cur, 0, sizeof(st->cur));
	st->cur.work_fd = -1;
	st->have_cur = 0;
}

/* Every line answered: to done/ or, with its report, to failed/. */
static void s_finish(struct s_state *st)
{
	struct s_file *cf = &st->cur;
	char work[S_NAME_BUF], moved[S_NAME_BUF], shown[S_NAME_MAX + 1], shown_moved[S_NAME_BUF];
	char *report = NULL, *out = NULL;
	size_t report_len = 0, out_len = 0;
	struct stat sb;
	int rc = 0;

	snprintf(work, sizeof(work), ".%s.part", cf->name);
	s_printable(shown, sizeof(shown), cf->name, strlen(cf->name));
	/* A new file renamed over the name while this one was read is not this one: it is queued. */
	if (fstatat(st->dir_fd, cf->name, &sb, AT_SYMLINK_NOFOLLOW) != 0 || sb.st_dev != cf->dev || sb.st_ino != cf->ino) {
		yj_warn("in_spool: %s was replaced or removed while it was read; the file now there is taken anew", shown);
		unlinkat(st->dir_fd, work, 0);
		goto out;
	}
	if (cf->refused) {
		/* The report is the .part without its "#N" progress lines. */
		if ((rc = s_read_all(st->dir_fd, work, &report, &report_len)) || !(out = malloc(report_len + 1)))
			goto fail;
		for (char *p = report; p < report + report_len;) {
			char *nl = memchr(p, '\n', (size_t)(report + report_len - p));
			size_t n = nl ? (size_t)(nl - p) + 1 : (size_t)(report + report_len - p);
			if (*p != '#') {
				memcpy(out + out_len, p, n);
				out_len += n;
			}
			p += n;
		}
	}
	if ((rc = s_move(st, cf->name, cf->refused ? st->failed_fd : st->done_fd, cf->refused ? out : NULL, out_len, moved,
			 sizeof(moved))))
		goto fail;
	unlinkat(st->dir_fd, work, 0);
	if (cf->refused)
		st->files_failed++;
	else
		st->files_done++;
	yj_notice("in_spool: %s: finished: %llu line(s) ok, %llu dup, %llu refused; moved to %s/%s%s", shown,
		  (unsigned long long)cf->ok, (unsigned long long)cf->dup, (unsigned long long)cf->refused,
		  cf->refused ? "failed" : "done", s_printable(shown_moved, sizeof(shown_moved), moved, strlen(moved)),
		  cf->refused ? " with its .errors" : "");
	goto out;
fail:
	/* Left in place with its .part: the next start finishes it. */
	yj_err("in_spool: %s: every line is answered but it cannot be moved: %s; it is taken again at the next start",
	       shown, yj_strerror(rc));
out:
	free(report);
	free(out);
	s_drop_current(st);
}

/* --- starting a file -------------------------------------------------------------- */

/* The line after which a file started before takes up again, from its
 * .part (answered up to "#N", refusals kept) and its position in the store
 * (committed up to P): min(N, P). The .part is rewritten to hold what was
 * answered up to there, so that no refusal is reported twice. */
static int s_resume(struct s_state *st, struct s_file *cf, const char *work, uint64_t *from)
{
	char *text = NULL, *kept = NULL, pos[256 + 1], tmp[S_NAME_BUF + 8];
	size_t len = 0, plen = 0, kept_len = 0, end = 0;
	uint64_t mark = 0, committed = 0;
	int rc = 0;

	if ((rc = s_read_all(st->dir_fd, work, &text, &len)))
		return rc;
	/* The last "#N" and where it ends: what follows was written by a run that stopped mid-chunk. */
	for (size_t at = 0; at < len;) {
		char *nl = memchr(text + at, '\n', len - at);
		if (!nl)
			break;
		size_t n = (size_t)(nl - (text + at));
		if (text[at] == '#' && s_parse_u64(text + at + 1, n - 1, &mark) == 0)
			end = at + n + 1;
		at += n + 1;
	}
	rc = st->api->position_get(st->api->core, cf->key, pos, sizeof(pos) - 1, &plen);
	if (rc == YJ_ENOENT || (rc == 0 && s_parse_u64(pos, plen, &committed)))
		committed = 0;
	else if (rc)
		goto out;
	rc = 0;
	*from = mark < committed ? mark : committed;
	if (!(kept = malloc(end + 32))) {
		rc = YJ_ENOMEM;
		goto out;
	}
	for (size_t at = 0; at < end;) {
		char *nl = memchr(text + at, '\n', end - at);
		size_t n = (size_t)(nl - (text + at)) + 1;
		uint64_t no = 0;
		size_t digits = strspn(text + at, "0123456789");
		if (text[at] != '#' && s_parse_u64(text + at, digits, &no) == 0 && no <= *from) {
			memcpy(kept + kept_len, text + at, n);
			kept_len += n;
			cf->refused++;
		}
		at += n;
	}
	kept_len += (size_t)snprintf(kept + kept_len, 32, "#%llu\n", (unsigned long long)*from);
	snprintf(tmp, sizeof(tmp), "%s.tmp", work);
	unlinkat(st->dir_fd, tmp, 0);
	if ((rc = s_write_new(st->dir_fd, tmp, kept, kept_len)))
		goto out;
	if (renameat(st->dir_fd, tmp, st->dir_fd, work) != 0)
		rc = YJ_EIO;
out:
	free(text);
	free(kept);
	return rc;
}

/* Open the next file of the queue as the current one; files refused whole
 * (no feed in the name) are moved on the way. Returns 1 when there is a
 * current file, 0 when the queue is empty. */
static int s_next_file(struct s_state *st)
{
	char shown[S_NAME_MAX + 1], work[S_NAME_BUF];

	while (st->n_queue) {
		char *name = st->queue[0];
		memmove(st->queue, st->queue + 1, (st->n_queue - 1) * sizeof(*st->queue));
		st->n_queue--;
		s_printable(shown, sizeof(shown), name, strlen(name));

		struct s_file *cf = &st->cur;
		memset(cf, 0, sizeof(*cf));
		cf->work_fd = -1;
		cf->name = name;
		int fd = openat(st->dir_fd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
		struct stat sb;
		if (fd < 0 || fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
			/* Gone since (moved on by us, or by its writer), or no plain file: nothing to take. */
			if (fd >= 0 || errno != ENOENT)
				yj_warn("in_spool: %s: not a readable regular file; skipped", shown);
			if (fd >= 0)
				close(fd);
			goto next;
		}
		if (strlen(name) > S_NAME_MAX) {
			close(fd);
			yj_warn("in_spool: %s...: a file name longer than %d bytes is not taken; left where it is", shown,
				S_NAME_MAX);
			goto next;
		}
		if (!(cf->feed = s_feed_of(name))) {
			close(fd);
			s_fail_whole(st, name, "0: protocol : unknown feed in the file name\n");
			goto next;
		}
		if (!(cf->f = fdopen(fd, "r"))) {
			close(fd);
			goto next;
		}
		cf->dev = sb.st_dev;
		cf->ino = sb.st_ino;
		snprintf(cf->key, sizeof(cf->key), "in_spool.%s", name);
		snprintf(work, sizeof(work), ".%s.part", name);
		uint64_t from = 0;
		int rc = faccessat(st->dir_fd, work, F_OK, AT_SYMLINK_NOFOLLOW) == 0 ? s_resume(st, cf, work, &from) : 0;
		if (!rc) {
			cf->work_fd = openat(st->dir_fd, work, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0600);
			if (cf->work_fd < 0)
				rc = YJ_EIO;
		}
		if (rc) {
			yj_err("in_spool: %s: cannot keep its report beside it (%s): %s; left for the next start", shown, work,
			       yj_strerror(rc));
			goto next;
		}
		cf->next = 1;
		cf->skip_to = from;
		st->have_cur = 1;
		if (from)
			yj_notice("in_spool: %s: taken up again after line %llu (feed %s)", shown, (unsigned long long)from,
				  cf->feed);
		else
			yj_info("in_spool: %s: reading (feed %s)", shown, cf->feed);
		return 1;
next:
		s_drop_current(st);
	}
	return 0;
}

/* --- sending lines ---------------------------------------------------------------- */

static void s_on_reply(void *arg, const struct yj_reply *r)
{
	struct s_line *l = arg;
	struct s_state *st = l->st;

	st->results[r->status]++;
	switch (r->status) {
	case YJ_STATUS_OK: st->cur.ok++; break;
	case YJ_STATUS_DUP: st->cur.dup++; break;
	case YJ_STATUS_REJECT: {
		char code[32], field[256], reason[S_REPORT_LINE / 2], line[S_REPORT_LINE];
		const char *c = r->error ? r->error : "";
		const char *f = r->field ? r->field : "";
		const char *why = r->reason ? r->reason : "";
		int n = snprintf(line, sizeof(line), "%llu: %s %s: %s\n", (unsigned long long)l->no,
				 s_printable(code, sizeof(code), c, strlen(c)), s_printable(field, sizeof(field), f, strlen(f)),
				 s_printable(reason, sizeof(reason), why, strlen(why)));
		size_t len = n < 0 ? 0 : (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1;
		if (st->report_len + len > st->report_cap) {
			size_t ncap = st->report_cap ? st->report_cap * 2 : 4096;
			while (ncap < st->report_len + len)
				ncap *= 2;
			char *nr = realloc(st->report, ncap);
			if (!nr) {
				yj_err("in_spool: out of memory: line %llu missing from the report", (unsigned long long)l->no);
				break;
			}
			st->report = nr;
			st->report_cap = ncap;
		}
		memcpy(st->report + st->report_len, line, len);
		st->report_len += len;
		st->report_n++;
		st->cur.refused++;
		break;
	}
	case YJ_STATUS_RETRY:
		if (!st->retry || l->no < st->retry_no) {
			st->retry = 1;
			st->retry_no = l->no;
			st->retry_off = l->off;
		}
		break;
	}
	st->n_answered++;
	/* The last reply comes right after the commit: the .part follows it as closely as it can. */
	if (!st->submitting && st->n_answered == st->n_sent)
		s_chunk_done(st);
}

/* The chunk is answered: its refusals and how far the file is answered go
 * into the .part; after a RETRY the file goes back to that line. Returns
 * 1 when the next chunk must wait (RETRY). */
static int s_chunk_close(struct s_state *st)
{
	struct s_file *cf = &st->cur;
	char mark[32];
	uint64_t upto = st->retry ? st->retry_no - 1 : cf->next - 1;
	int n = snprintf(mark, sizeof(mark), "#%llu\n", (unsigned long long)upto);
	int rc = 0;

	if (st->report_len)
		rc = s_write_all(cf->work_fd, st->report, st->report_len);
	if (!rc)
		rc = s_write_all(cf->work_fd, mark, (size_t)n);
	/* Refusals are synced before they count as answered: a restart must not skip what never
	 * reached the report. Progress alone may be lost: the lines are then sent again (DUP). */
	if (!rc && st->report_n && fdatasync(cf->work_fd) != 0)
		rc = YJ_EIO;
	if (rc) {
		char shown[S_NAME_MAX + 1];
		yj_err("in_spool: %s: cannot write its report (.part): %s; refused lines may be missing from it",
		       s_printable(shown, sizeof(shown), cf->name, strlen(cf->name)), yj_strerror(rc));
	}
	st->report_len = 0;
	st->report_n = 0;
	st->n_sent = st->n_answered = 0;
	if (!st->retry)
		return 0;
	st->retry = 0;
	if (fseeko(cf->f, st->retry_off, SEEK_SET) != 0) {
		/* Unreadable now: given up for this run; the next start takes it up from its .part. */
		yj_err("in_spool: cannot go back in a file after a RETRY; left for the next start");
		s_drop_current(st);
		return 1;
	}
	clearerr(cf->f);
	cf->next = st->retry_no;
	cf->eof = 0;
	return 1;
}

/* Every line of the chunk is answered: close it, and go on (after a pause
 * when it must be sent again). */
static void s_chunk_done(struct s_state *st)
{
	if (s_chunk_close(st) && st->have_cur)
		st->pause_until = yj_loop_now_ms() + S_RETRY_MS;
	if (!st->draining)
		s_kick(st, 0);
}

/* Read the next line into st->buf (at most max_line bytes kept, the rest
 * counted only: such a line is too_large). Returns 1 and *len, 0 at the
 * end of the file, <0 on a read error. A trailing CR (a CRLF file) is no
 * part of the line. */
static int s_read_line(struct s_state *st, size_t *len)
{
	FILE *f = st->cur.f;
	size_t n = 0, total = 0;
	int ch;

	while ((ch = getc_unlocked(f)) != EOF && ch != '\n') {
		if (n < st->buf_cap)
			st->buf[n++] = (char)ch;
		total++;
	}
	if (ferror(f))
		return YJ_EIO;
	if (ch == EOF && total == 0)
		return 0;
	if (n && n == total && st->buf[n - 1] == '\r')
		n--;
	*len = n;
	return 1;
}

static int s_blank(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r')
			return 0;
	}
	return 1;
}

/* Send the next chunk: at most batch_max lines, stopping at the first RETRY. */
static void s_send_chunk(struct s_state *st)
{
	struct s_file *cf = &st->cur;
	const char *const forces[] = { st->force };
	size_t skipped = 0;

	/* Between chunks nothing points into lines or buf: a reload's new sizes are taken here. */
	if (st->cap_lines < st->batch_max) {
		struct s_line *nl = realloc(st->lines, st->batch_max * sizeof(*nl));
		if (nl) {
			st->lines = nl;
			st->cap_lines = st->batch_max;
		}
	}
	if (st->buf_cap != st->max_line) {
		char *nb = realloc(st->buf, st->max_line);
		if (nb) {
			st->buf = nb;
			st->buf_cap = st->max_line;
		}
	}
	st->submitting = 1;
	while (st->n_sent < st->cap_lines && st->n_sent < st->batch_max && !st->retry && !st->draining) {
		off_t off = ftello(cf->f);
		size_t len = 0;
		int rc = s_read_line(st, &len);
		if (rc < 0) {
			char shown[S_NAME_MAX + 1];
			yj_err("in_spool: %s: read error at line %llu; left for the next start",
			       s_printable(shown, sizeof(shown), cf->name, strlen(cf->name)), (unsigned long long)cf->next);
			/* Dropped only once its chunk is answered (s_step): the replies point into it. */
			cf->eof = -1;
			break;
		}
		if (rc == 0) {
			cf->eof = 1;
			break;
		}
		uint64_t no = cf->next++;
		/* Answered before a restart (its report already holds it), or blank: no request. */
		if (no <= cf->skip_to || s_blank(st->buf, len)) {
			if (++skipped >= S_SKIP_PER_STEP)
				break;
			continue;
		}
		struct s_line *l = &st->lines[st->n_sent++];
		char pos[24];
		l->st = st;
		l->no = no;
		l->off = off;
		struct yj_request req = {
			.origin = "spool",
			.feed = cf->feed,
			.feed_len = strlen(cf->feed),
			.content_type = "application/json",
			.content_type_len = strlen("application/json"),
			.payload = st->buf,
			.payload_len = len,
			.frames = 4,
			.forces = forces,
			.n_forces = 1,
			.position_key = cf->key,
			.position = pos,
			.position_len = (size_t)snprintf(pos, sizeof(pos), "%llu", (unsigned long long)no),
		};
		/* Answered through s_on_reply whatever it returns (RETRY when it fails). */
		st->api->submit(st->api->core, &req, s_on_reply, l);
	}
	st->submitting = 0;
	/* Answered at once (a RETRY, or a batch filled and committed on the way): closed now. */
	if (st->n_sent && st->n_answered == st->n_sent)
		s_chunk_done(st);
	else if (!st->n_sent)
		s_kick(st, 0);
}

/* One step, from the timer: finish the file read whole, or send its next
 * chunk, or take the next file. */
static void s_step(struct s_state *st)
{
	if (st->n_sent)
		return; /* a chunk in flight: its last reply goes on */
	if (st->have_cur && st->cur.eof < 0) {
		s_drop_current(st); /* the read error, logged: its .part stays for the next start */
		s_kick(st, 0);
		return;
	}
	if (st->draining)
		return;
	int64_t now = yj_loop_now_ms();
	if (now < st->pause_until) {
		s_kick(st, st->pause_until - now);
		return;
	}
	if (st->have_cur && st->cur.eof) {
		s_finish(st);
		s_kick(st, 0);
		return;
	}
	if (!st->have_cur && !s_next_file(st))
		return;
	s_send_chunk(st);
}

static int s_on_timer(struct yj_loop *loop, void *arg)
{
	struct s_state *st = arg;
	(void)loop;
	st->timer = 0;
	s_step(st);
	return 0;
}

/* Run a step after delay_ms, unless one is already due. */
static void s_kick(struct s_state *st, int64_t delay_ms)
{
	if (st->timer)
		return;
	int64_t id = yj_loop_timer(st->api->loop, delay_ms, 0, s_on_timer, st);
	if (id > 0)
		st->timer = id;
	else
		yj_err("in_spool: cannot schedule the next chunk: %s", yj_strerror((int)id));
}

/* --- the directory ---------------------------------------------------------------- */

static int s_on_inotify(struct yj_loop *loop, void *sock, int fd, short revents, void *arg)
{
	struct s_state *st = arg;
	char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
	(void)loop;
	(void)sock;
	(void)revents;

	for (;;) {
		ssize_t n = read(fd, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		for (char *p = buf; p < buf + n;) {
			const struct inotify_event *ev = (const struct inotify_event *)p;
			if (ev->mask & IN_Q_OVERFLOW) {
				yj_warn("in_spool: inotify queue overflowed: listing %s again", st->dir);
				s_scan(st, 0);
			} else if (ev->mask & (IN_DELETE_SELF | IN_MOVE_SELF | IN_UNMOUNT)) {
				yj_err("in_spool: %s was removed or moved: no new file is taken until it is back and yjlinkd restarts",
				       st->dir);
			} else if (ev->len && !(ev->mask & IN_ISDIR) && (ev->mask & (IN_CLOSE_WRITE | IN_MOVED_TO))) {
				s_enqueue(st, ev->name);
			}
			p += sizeof(*ev) + ev->len;
		}
	}
	s_kick(st, 0);
	return 0;
}

/* --- lifecycle ------------------------------------------------------------------------ */

static int s_init(const struct yj_core_api *api, void **state)
{
	const struct yj_config *cfg = api->config(api->core);
	const struct s_settings *s = api->settings(cfg, &yj_adapter_in_spool);
	struct s_state *st = NULL;

	if (!*s->directory)
		return YJ_ENOENT;
	if (!(st = calloc(1, sizeof(*st))))
		return YJ_ENOMEM;
	st->api = api;
	st->dir_fd = st->done_fd = st->failed_fd = st->in_fd = -1;
	st->cur.work_fd = -1;
	st->batch_max = (size_t)cfg->ingest_batch_max;
	st->max_line = (size_t)cfg->ingest_max_message_bytes + 1;
	st->dir = strdup(s->directory);
	st->force = strdup(s->force);
	st->lines = calloc(st->batch_max, sizeof(*st->lines));
	st->buf = malloc(st->max_line);
	if (!st->dir || !st->force || !st->lines || !st->buf) {
		free(st->dir);
		free(st->force);
		free(st->lines);
		free(st->buf);
		free(st);
		return YJ_ENOMEM;
	}
	st->cap_lines = st->batch_max;
	st->buf_cap = st->max_line;
	*state = st;
	return 0;
}

/* dir/name made 0700 if missing, opened. */
static int s_subdir(struct s_state *st, const char *name, int *out)
{
	if (mkdirat(st->dir_fd, name, 0700) != 0 && errno != EEXIST) {
		yj_err("in_spool: cannot make %s/%s: %s", st->dir, name, strerror(errno));
		return YJ_EIO;
	}
	*out = openat(st->dir_fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (*out < 0) {
		yj_err("in_spool: %s/%s is not a directory we can use: %s", st->dir, name, strerror(errno));
		return YJ_EIO;
	}
	return 0;
}

static int s_start(void *state)
{
	struct s_state *st = state;
	int rc = 0;

	st->dir_fd = open(st->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (st->dir_fd < 0) {
		yj_err("in_spool: cannot open spool.directory %s: %s", st->dir, strerror(errno));
		return YJ_EIO;
	}
	if ((rc = s_subdir(st, "done", &st->done_fd)) || (rc = s_subdir(st, "failed", &st->failed_fd)))
		return rc;
	/* Watched before it is listed: a file renamed in between is queued twice, and taken once. */
	st->in_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (st->in_fd < 0 ||
	    inotify_add_watch(st->in_fd, st->dir, IN_CLOSE_WRITE | IN_MOVED_TO | IN_ONLYDIR | IN_DELETE_SELF | IN_MOVE_SELF) < 0) {
		yj_err("in_spool: cannot watch %s: %s", st->dir, strerror(errno));
		return YJ_EIO;
	}
	if ((rc = yj_loop_add(st->api->loop, NULL, st->in_fd, ZMQ_POLLIN, s_on_inotify, st)))
		return rc;
	s_scan(st, 1);
	yj_notice("in_spool: watching %s for force %s (%zu file(s) waiting)", st->dir, st->force, st->n_queue);
	s_kick(st, 0);
	return 0;
}

static int s_reload(void *state, const struct yj_config *cfg)
{
	struct s_state *st = state;
	const struct s_settings *s = st->api->settings(cfg, &yj_adapter_in_spool);

	/* Taken at the next chunk (s_send_chunk), never under one in flight. */
	st->batch_max = (size_t)cfg->ingest_batch_max;
	st->max_line = (size_t)cfg->ingest_max_message_bytes + 1;
	if (strcmp(s->directory, st->dir))
		yj_warn("in_spool: spool.directory changes only on restart; still watching %s", st->dir);
	else if (strcmp(s->force, st->force)) {
		/* The core copies the forces of each request: the old string may go now. */
		char *nf = strdup(s->force);
		if (nf) {
			free(st->force);
			st->force = nf;
		}
	}
	return 0;
}

static void s_drain(void *state)
{
	struct s_state *st = state;
	/* The chunk in flight is still answered, by the last commit, and its progress kept then. */
	st->draining = 1;
}

static void s_metrics(void *state, struct yj_prom *p)
{
	static const char *const results[] = { "ok", "dup", "reject", "retry" };
	struct s_state *st = state;

	yj_prom_family(p, "yjlink_spool_files_total", "counter", "Spool files finished since start, by where they went");
	yj_prom_sample_l(p, "yjlink_spool_files_total", (double)st->files_done, "result", "done", NULL);
	yj_prom_sample_l(p, "yjlink_spool_files_total", (double)st->files_failed, "result", "failed", NULL);
	yj_prom_family(p, "yjlink_spool_lines_total", "counter", "Replies to spool lines since start, by result");
	for (size_t r = 0; r < 4; r++)
		yj_prom_sample_l(p, "yjlink_spool_lines_total", (double)st->results[r], "result", results[r], NULL);
	yj_prom_family(p, "yjlink_spool_queued", "gauge", "Spool files waiting, the one being read included");
	yj_prom_sample(p, "yjlink_spool_queued", NULL, (double)(st->n_queue + (size_t)st->have_cur));
}

static void s_destroy(void **state)
{
	struct s_state *st = state ? *state : NULL;
	if (!st)
		return;
	if (st->timer)
		yj_loop_timer_cancel(st->api->loop, st->timer);
	if (st->have_cur)
		s_drop_current(st);
	if (st->in_fd >= 0) {
		yj_loop_remove(st->api->loop, NULL, st->in_fd);
		close(st->in_fd);
	}
	if (st->dir_fd >= 0)
		close(st->dir_fd);
	if (st->done_fd >= 0)
		close(st->done_fd);
	if (st->failed_fd >= 0)
		close(st->failed_fd);
	for (size_t i = 0; i < st->n_queue; i++)
		free(st->queue[i]);
	free(st->queue);
	free(st->lines);
	free(st->report);
	free(st->buf);
	free(st->dir);
	free(st->force);
	free(st);
	*state = NULL;
}

const struct yj_adapter yj_adapter_in_spool = {
	.conf = {
		.name = "in_spool",
		.section = "spool",
		.settings = s_section_table,
		.n_settings = sizeof(s_section_table) / sizeof(s_section_table[0]),
		.settings_size = sizeof(struct s_settings),
		.check = s_check,
	},
	.init = s_init,
	.start = s_start,
	.reload = s_reload,
	.drain = s_drain,
	.destroy = s_destroy,
	.metrics = s_metrics,
};
