/* metrics.h: the HTTP monitoring endpoint, GET /metrics and GET /healthz
 * (spec/interfaces.md §7), served by libmicrohttpd.
 *
 * Why a thread: everything else in yjlinkd runs in the one event loop, but
 * this server runs in MHD's own internal polling thread. /healthz must
 * answer 503 when the main loop is stalled (stuck in a syscall, a slow
 * fsync, a busy loop); a server driven by that same loop would then answer
 * nothing at all, and a probe could not tell a stalled daemon from one that
 * is gone. So the loop only hands data over and the thread serves it:
 *
 *	main loop                         HTTP thread
 *	yj_metrics_publish(text)  --->    GET /metrics: a copy of the last text
 *	yj_metrics_beat()         --->    GET /healthz: age of the last beat,
 *	yj_metrics_set_store_ok() --->                  last store outcome
 *
 * The thread touches nothing of the daemon but struct yj_metrics; it never
 * sees events, so it can serve nothing personal: /metrics is exactly what
 * the loop published, /healthz a fixed text plus the reason given to
 * yj_metrics_set_store_ok(). The thread runs with every asynchronous signal
 * blocked, so SIGTERM/SIGHUP always reach the loop's signalfd.
 *
 * Answers: GET (or HEAD) /metrics: 200, Content-Type
 * "text/plain; version=0.0.4; charset=utf-8", the published text (empty
 * before the first publish). GET /healthz: 200 "ok\n" when the last beat is
 * younger than stall_ms and the store was writable at the last attempt;
 * otherwise 503 with one line, "main loop stalled for N ms\n" (checked
 * first: a stalled loop's store outcome is stale) or "store not writable:
 * <why>\n". Other paths 404; other methods 405 with "Allow: GET, HEAD".
 *
 * Hostile clients (docs/limits.md): at most 32 connections are kept (64 in
 * all, counting those cut and not yet closed), 16 KiB of request headers
 * each (more: 431), 5 s of silence each; a new connection beyond 32 cuts
 * the one that has waited longest without a request answered, so
 * slowloris and idle floods cannot keep a probe waiting, and descriptors
 * and memory stay bounded whatever arrives.
 *
 * Threads: start, stop, publish, beat and set_store_ok are for the main loop
 * (any one thread); publish, beat and set_store_ok are safe against the
 * HTTP thread and cheap (beat is one atomic store).
 */
#ifndef YJ_METRICS_H
#define YJ_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include <sys/socket.h>

struct yj_metrics;

/* Parse "HOST:PORT", HOST a dotted IPv4 address or a bracketed IPv6 one
 * ("[::1]:9402"), PORT 1..65535 in decimal; no names, no scope ids. Fills
 * *addr and *len for bind(). Exposed so the config loader can refuse a bad
 * metrics.endpoint with file:line before anything starts. Returns 0 or
 * YJ_EINVAL. */
int yj_metrics_parse_endpoint(const char *endpoint, struct sockaddr_storage *addr, socklen_t *len);

/* Listen on endpoint (only that address: an IPv6 one is bound IPv6-only)
 * and start the HTTP thread. stall_ms (> 0) is the beat age from which
 * /healthz answers 503. The start counts as a beat; the store counts as
 * writable until yj_metrics_set_store_ok() says otherwise.
 * On success *out is a server the caller owns and ends with
 * yj_metrics_stop(). Returns 0; YJ_EINVAL for a malformed endpoint or
 * stall_ms <= 0; YJ_EIO when the address cannot be bound or the thread
 * not started (both logged, naming the endpoint); YJ_ENOMEM. *out is NULL
 * on failure. */
int yj_metrics_start(const char *endpoint, int64_t stall_ms, struct yj_metrics **out);

/* Replace the text GET /metrics serves with a copy of text[0..len). The
 * caller keeps text. The copy is made before the lock is taken, so the
 * HTTP thread never holds the loop up for longer than a pointer swap. On
 * allocation failure the previous text stays served (and is logged). */
void yj_metrics_publish(struct yj_metrics *m, const char *text, size_t len);

/* The main loop is alive: call once per iteration (or from a timer well
 * under stall_ms). */
void yj_metrics_beat(struct yj_metrics *m);

/* Record whether the store could be written at the last attempt. why (may
 * be NULL when ok) is a short reason such as yj_strerror(rc), copied,
 * truncated to one line of at most 200 bytes; it is shown verbatim by
 * /healthz, so it must never carry personal data. */
void yj_metrics_set_store_ok(struct yj_metrics *m, int ok, const char *why);

/* Stop the HTTP thread (waits for it), close the socket, free *m and set it
 * to NULL. Safe on NULL and on *m == NULL. */
void yj_metrics_stop(struct yj_metrics **m);

#endif
