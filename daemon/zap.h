/* zap.h: the ZAP handler (ZeroMQ RFC 27, ZAP 1.0) that decides which CURVE
 * keys get in (interfaces.md §1 "Authentication and authorisation").
 *
 * One ZMQ_REP bound on inproc://zeromq.zap.01 in the daemon's one ZeroMQ
 * context, on the one event loop. main.c creates it before any adapter
 * starts, so that no CURVE socket is ever bound without it: libzmq lets
 * every key in while no handler is bound.
 *
 * Keys are held per ZAP domain: each CURVE socket sets ZMQ_ZAP_DOMAIN to
 * its own ("yjl1" for ingest, "yjn1" for subscriptions) and registers the
 * keys it accepts with the name each stands for. A key listed in the
 * request's domain is answered 200 with that name as the user id (which
 * libzmq hands every message of the connection as its "User-Id" property);
 * anything else 400: the handshake fails and the peer never gets a reply.
 * Replacing a domain's keys (a reload) changes who may connect from then
 * on and drops no connection already made.
 *
 * Ownership: the handler owns its socket and a copy of every key and name.
 */
#ifndef YJ_ZAP_H
#define YJ_ZAP_H

#include <stddef.h>
#include <stdint.h>

struct yj_loop;
struct yj_zap;

/* The endpoint libzmq sends ZAP requests to (RFC 27). */
#define YJ_ZAP_ENDPOINT "inproc://zeromq.zap.01"

/* Bind the handler in zmq_ctx and join loop. Returns 0 and *out, or an error. */
int yj_zap_new(struct yj_loop *loop, void *zmq_ctx, struct yj_zap **out);

/* Leave the loop, close, wipe and free; NULLs *zap. Before zmq_ctx_term. */
void yj_zap_destroy(struct yj_zap **zap);

/* The keys of domain ("yjl1"): n public keys as Z85 text (40 characters),
 * keys[i] standing for names[i]. Replaces whatever the domain held; n 0
 * lets nobody in. Copies all. Returns 0, YJ_EINVAL (a key that is not Z85
 * of 32 bytes: nothing is changed) or YJ_ENOMEM. */
int yj_zap_set_keys(struct yj_zap *zap, const char *domain, const char *const *names, const char *const *keys,
		    size_t n);

/* The i-th domain that refused a handshake since start (its name, "other"
 * for a request naming no known domain) and how many it refused: 1, or 0
 * when there is no i-th. For yjlink_zap_refused_total{domain}. */
size_t yj_zap_refusals(const struct yj_zap *zap, size_t i, const char **domain, uint64_t *n);

/* Whether text is a CURVE key as Z85 (40 characters that decode to 32
 * bytes): for the settings' checks. */
int yj_zap_key_ok(const char *text);

#endif
