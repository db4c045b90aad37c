/* main.c: yjlinkd. Reads the config, opens the store, starts the adapters
 * and the control socket, and runs the one event loop until SIGTERM.
 *
 *   yjlinkd [--config FILE] [--set KEY=VALUE]... [--check] [--config-reference] [--version]
 */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include "adapter.h"
#include "clock.h"
#include "config.h"
#include "control.h"
#include "err.h"
#include "ingest.h"
#include "log.h"
#include "loop.h"
#include "refdata.h"
#include "sd.h"
#include "store.h"

#ifndef YJ_VERSION
#define YJ_VERSION "0.1.0"
#endif

#define S_MAX_SETS 64
#define S_MAX_ADAPTERS 16

struct s_daemon {
	const char *config_file;             /* NULL: the embedded default */
	const char *sets[S_MAX_SETS];        /* --set overrides, borrowed from argv */
	size_t n_sets;
	struct yj_config *cfg;               /* owned; replaced on reload */
	struct yj_refdata *ref;              /* owned; replaced on reload */
	struct yj_store *store;              /* owned */
	struct yj_ingest *ingest;            /* owned */
	struct yj_loop *loop;                /* owned */
	void *zmq_ctx;                       /* owned */
	struct yj_control *control;          /* owned */
	struct yj_core_api api;              /* handed to adapters */
	void *adapter_state[S_MAX_ADAPTERS]; /* owned by each adapter */
	int sigfd;                           /* signalfd for TERM, INT, HUP */
	int stopping;                        /* SIGTERM seen */
	int64_t stop_deadline_ms;            /* end of the RETRY grace period */
	char reload_state[512];              /* why the last reload was refused, "" if it was not */
	const char *reload_state_ptr;        /* &reload_state[0], for the control socket */
	int64_t started_us;
};

static const struct yj_config *s_api_config(void *core) { return ((struct s_daemon *)core)->cfg; }

static int s_api_submit(void *core, const struct yj_request *req, yj_reply_fn done, void *arg)
{
	return yj_ingest_submit(((struct s_daemon *)core)->ingest, req, done, arg);
}

static void s_api_count(void *core, const char *metric, const char *labels, uint64_t n)
{
	(void)core;
	(void)metric;
	(void)labels;
	(void)n;
}

static void s_usage(FILE *out)
{
	fprintf(out,
		"usage: yjlinkd [--config FILE] [--set KEY=VALUE]... [--check]\n"
		"       yjlinkd --config-reference | --version | --help\n"
		"\n"
		"  --config FILE       config file (libconfig); default: the embedded demo config\n"
		"  --set KEY=VALUE     override one setting by its dotted path (repeatable)\n"
		"  --check             validate the config and exit: 0 good, 1 with FILE:LINE: message lines\n"
		"  --config-reference  print every setting as a Markdown table\n");
}

static enum yj_log_level s_level(const char *s)
{
	if (!strcmp(s, "err"))
		return YJ_LOG_ERR;
	if (!strcmp(s, "warning"))
		return YJ_LOG_WARNING;
	if (!strcmp(s, "notice"))
		return YJ_LOG_NOTICE;
	if (!strcmp(s, "debug"))
		return YJ_LOG_DEBUG;
	return YJ_LOG_INFO;
}

/* Config and reference tables together: a reload takes both or neither. */
static int s_load(struct s_daemon *d, struct yj_diag *diag, struct yj_config **cfg, struct yj_refdata **ref)
{
	int rc = yj_config_load(d->config_file, d->sets, d->n_sets, diag, cfg);
	if (rc)
		return rc;
	char *dir = yj_config_reference_dir(*cfg);
	rc = yj_refdata_load(dir, diag, ref);
	free(dir);
	if (rc)
		goto fail;
	if (!yj_ref_force(*ref, (*cfg)->deployment_force)) {
		yj_diag_report(diag, (*cfg)->source, 0, "deployment.force %s is not in forces.csv",
			       (*cfg)->deployment_force);
		rc = YJ_ECONFIG;
	}
	for (size_t i = 0; i < (*cfg)->ingest_forces.n; i++) {
		if (!yj_ref_force(*ref, (*cfg)->ingest_forces.v[i])) {
			yj_diag_report(diag, (*cfg)->source, 0, "ingest.forces: %s is not in forces.csv",
				       (*cfg)->ingest_forces.v[i]);
			rc = YJ_ECONFIG;
		}
	}
	if (!rc)
		return 0;
fail:
	yj_refdata_free(ref);
	yj_config_free(cfg);
	return rc;
}

static void s_status_line(struct s_daemon *d, char *buf, size_t size)
{
	const struct yj_ingest_stats *st = yj_ingest_stats(d->ingest);
	uint64_t ok = 0, rej = 0;
	for (int f = 0; f < YJ_FEED_COUNT; f++)
		ok += st->ingested[f];
	for (int r = 0; r <= YJ_REJ_FORBIDDEN; r++)
		rej += st->rejected[r];
	snprintf(buf, size, "%sevents %llu ok, %llu rejected since start; last seq %llu",
		 d->reload_state[0] ? "RELOAD REFUSED (old config kept); " : "", (unsigned long long)ok,
		 (unsigned long long)rej, (unsigned long long)st->last_seq);
}

static void s_log_diag(void *arg, const char *file, int line, const char *msg)
{
	struct s_daemon *d = arg;
	if (line > 0)
		yj_err("config: %s:%d: %s", file, line, msg);
	else
		yj_err("config: %s: %s", file, msg);
	if (!d->reload_state[0])
		snprintf(d->reload_state, sizeof(d->reload_state), "%s:%d: %s", file, line, msg);
}

static int s_reload(void *arg)
{
	struct s_daemon *d = arg;
	struct yj_config *cfg = NULL;
	struct yj_refdata *ref = NULL;
	struct yj_diag diag = { s_log_diag, d, 0 };
	char status[600];

	yj_sd_reloading();
	d->reload_state[0] = '\0';
	int rc = s_load(d, &diag, &cfg, &ref);
	if (rc) {
		yj_err("reload: new config refused with %d problem(s); still running on the old one", diag.count);
	} else {
		yj_ingest_set_config(d->ingest, cfg, ref);
		for (size_t i = 0; yj_adapters[i]; i++) {
			if (d->adapter_state[i] && yj_adapters[i]->reload)
				yj_adapters[i]->reload(d->adapter_state[i], cfg);
		}
		yj_config_free(&d->cfg);
		yj_refdata_free(&d->ref);
		d->cfg = cfg;
		d->ref = ref;
		yj_log_set_level(s_level(cfg->log_level));
		yj_notice("reload: new config in force (%s)", cfg->source);
	}
	s_status_line(d, status, sizeof(status));
	/* READY=1 also after a refused reload: the daemon is serving. */
	yj_sd_ready(status);
	return rc;
}

static int s_on_signal(struct yj_loop *loop, void *sock, int fd, short revents, void *arg)
{
	struct s_daemon *d = arg;
	struct signalfd_siginfo si;
	(void)sock;
	(void)revents;
	while (read(fd, &si, sizeof(si)) == sizeof(si)) {
		if (si.ssi_signo == SIGHUP) {
			yj_notice("SIGHUP: reloading %s", d->config_file ? d->config_file : "the embedded config");
			s_reload(d);
		} else if (!d->stopping) {
			yj_notice("signal %u: stopping; new requests get RETRY", si.ssi_signo);
			yj_sd_stopping();
			d->stopping = 1;
			yj_ingest_set_draining(d->ingest, 1);
			for (size_t i = 0; yj_adapters[i]; i++) {
				if (d->adapter_state[i] && yj_adapters[i]->drain)
					yj_adapters[i]->drain(d->adapter_state[i]);
			}
			/* A short grace period answers what is already queued in sockets. */
			d->stop_deadline_ms = yj_loop_now_ms() + 200;
			yj_loop_wake(loop);
		}
	}
	return 0;
}

/* Group commit: once per loop iteration, after every handler has read. */
static int s_before_sleep(struct yj_loop *loop, void *arg)
{
	struct s_daemon *d = arg;
	yj_ingest_flush(d->ingest);
	if (d->stopping && yj_loop_now_ms() >= d->stop_deadline_ms)
		yj_loop_stop(loop);
	else if (d->stopping)
		yj_loop_wake(loop);
	return 0;
}

static int s_watchdog(struct yj_loop *loop, void *arg)
{
	(void)loop;
	(void)arg;
	yj_sd_watchdog();
	return 0;
}

static int s_status_timer(struct yj_loop *loop, void *arg)
{
	char status[600];
	(void)loop;
	s_status_line(arg, status, sizeof(status));
	yj_sd_status(status);
	return 0;
}

static int s_parse_args(struct s_daemon *d, int argc, char **argv, int *check, int *reference)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' }, { "set", required_argument, NULL, 's' },
		{ "check", no_argument, NULL, 'k' },        { "config-reference", no_argument, NULL, 'r' },
		{ "version", no_argument, NULL, 'V' },      { "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c;
	while ((c = getopt_long(argc, argv, "c:s:", opts, NULL)) != -1) {
		switch (c) {
		case 'c': d->config_file = optarg; break;
		case 's':
			if (d->n_sets == S_MAX_SETS) {
				fprintf(stderr, "yjlinkd: at most %d --set options\n", S_MAX_SETS);
				return 2;
			}
			d->sets[d->n_sets++] = optarg;
			break;
		case 'k': *check = 1; break;
		case 'r': *reference = 1; break;
		case 'V': printf("yjlinkd %s\n", YJ_VERSION); exit(0);
		case 'h': s_usage(stdout); exit(0);
		default: s_usage(stderr); return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "yjlinkd: unexpected argument '%s'\n", argv[optind]);
		s_usage(stderr);
		return 2;
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct s_daemon d;
	int check = 0, reference = 0, rc = 0, exit_code = 1;
	struct yj_diag diag = { NULL, NULL, 0 };
	char status[600];

	memset(&d, 0, sizeof(d));
	d.sigfd = -1;
	d.reload_state_ptr = d.reload_state;
	/* Digest times, overnight periods and "today" are Europe/London. */
	setenv("TZ", "Europe/London", 1);
	tzset();
	if ((rc = s_parse_args(&d, argc, argv, &check, &reference)))
		return rc;
	if (reference) {
		yj_config_print_reference(stdout);
		return 0;
	}
	if (s_load(&d, &diag, &d.cfg, &d.ref)) {
		fprintf(stderr, "yjlinkd: %d problem(s) in the configuration; nothing started\n", diag.count);
		return 1;
	}
	if (check) {
		printf("%s: configuration OK\n", d.cfg->source);
		exit_code = 0;
		goto out;
	}
	yj_log_set_level(s_level(d.cfg->log_level));
	yj_log_set_timestamps(getenv("JOURNAL_STREAM") == NULL && getenv("YJ_LOG_TIMESTAMPS") != NULL);
	d.started_us = yj_clock_now_us();

	sigset_t mask;
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	signal(SIGPIPE, SIG_IGN);
	d.sigfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);

	struct yj_store_opts so = {
		.path = d.cfg->store_path,
		.map_size = (size_t)d.cfg->store_map_size_mb << 20,
		.max_map_size = (size_t)d.cfg->store_max_map_size_mb << 20,
	};
	if ((rc = yj_store_open(&so, &d.store))) {
		yj_err("store: cannot open %s: %s (check store.path and its permissions)", so.path, yj_strerror(rc));
		goto out;
	}
	if ((rc = yj_ingest_new(d.store, d.cfg, d.ref, &d.ingest)))
		goto out;
	d.loop = yj_loop_new();
	d.zmq_ctx = zmq_ctx_new();
	if (!d.loop || !d.zmq_ctx || d.sigfd < 0)
		goto out;
	d.api = (struct yj_core_api){ .core = &d, .loop = d.loop, .zmq_ctx = d.zmq_ctx, .config = s_api_config,
				      .submit = s_api_submit, .count = s_api_count };
	if (yj_loop_add(d.loop, NULL, d.sigfd, ZMQ_POLLIN, s_on_signal, &d) ||
	    yj_loop_before_sleep(d.loop, s_before_sleep, &d))
		goto out;

	for (size_t i = 0; yj_adapters[i] && i < S_MAX_ADAPTERS; i++) {
		const struct yj_adapter *a = yj_adapters[i];
		rc = a->init(&d.api, &d.adapter_state[i]);
		if (rc == YJ_ENOENT) {
			d.adapter_state[i] = NULL;
			continue;
		}
		if (rc || (rc = a->start(d.adapter_state[i]))) {
			yj_err("%s: cannot start: %s", a->name, yj_strerror(rc));
			goto out;
		}
	}
	const struct yj_config *const *cfgp = (const struct yj_config *const *)&d.cfg;
	struct yj_control_deps cd = { .store = d.store, .ingest = d.ingest, .loop = d.loop, .zmq_ctx = d.zmq_ctx,
				      .cfg = cfgp, .started_us = d.started_us, .reload_state = &d.reload_state_ptr,
				      .reload = s_reload, .reload_arg = &d };
	if (yj_control_start(&cd, &d.control))
		goto out;

	uint64_t wd = yj_sd_watchdog_usec();
	if (wd)
		yj_loop_timer(d.loop, 0, (int64_t)(wd / 2000), s_watchdog, &d);
	yj_loop_timer(d.loop, 5000, 5000, s_status_timer, &d);

	s_status_line(&d, status, sizeof(status));
	yj_notice("yjlinkd %s ready: deployment %s, store %s", YJ_VERSION, d.cfg->deployment_id, d.cfg->store_path);
	yj_sd_ready(status);

	rc = yj_loop_run(d.loop);
	yj_ingest_flush(d.ingest);
	if (rc) {
		yj_err("main loop failed: %s", yj_strerror(rc));
		goto out;
	}
	yj_notice("stopped cleanly");
	exit_code = 0;
out:
	yj_control_stop(&d.control);
	for (size_t i = 0; yj_adapters[i] && i < S_MAX_ADAPTERS; i++) {
		if (d.adapter_state[i])
			yj_adapters[i]->destroy(&d.adapter_state[i]);
	}
	if (d.zmq_ctx)
		zmq_ctx_term(d.zmq_ctx);
	yj_loop_destroy(&d.loop);
	yj_ingest_destroy(&d.ingest);
	yj_store_close(&d.store);
	yj_refdata_free(&d.ref);
	yj_config_free(&d.cfg);
	if (d.sigfd >= 0)
		close(d.sigfd);
	return exit_code;
}
