/* curlm.h: libcurl's multi interface driven by the one event loop.
 *
 * Transfers (webhook POSTs) never block: curl tells us which
 * sockets to watch (CURLMOPT_SOCKETFUNCTION) and when to time out
 * (CURLMOPT_TIMERFUNCTION); we add those to yj_loop and call
 * curl_multi_socket_action when they fire. Finished transfers are reported
 * through each transfer's done callback, from the loop. SMTP is not sent
 * here: libcurl waits for the end-of-DATA reply in a blocking loop even
 * under the multi interface, so out_email.c runs it on worker threads
 * (docs/blocking.md).
 *
 * Ownership: yj_curlm_new() returns a multi the caller owns. An easy
 * handle given to yj_curlm_add() stays the caller's: the multi borrows it
 * until done is called (it is then already removed from the multi), and the
 * caller cleans it up, typically inside done.
 */
#ifndef YJ_CURLM_H
#define YJ_CURLM_H

#include <curl/curl.h>
#include <stddef.h>

struct yj_loop;
struct yj_curlm;

/* result is the transfer's CURLcode; the HTTP/SMTP response code is read
 * with curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, ...). */
typedef void (*yj_curl_done_fn)(void *arg, CURL *easy, CURLcode result);

/* Returns 0, YJ_ENOMEM, or YJ_EIO when libcurl cannot be initialised. */
int yj_curlm_new(struct yj_loop *loop, struct yj_curlm **out);

/* Abort every transfer still running (their done is NOT called), free, NULL *m. */
void yj_curlm_destroy(struct yj_curlm **m);

/* Start a transfer. Returns 0, or YJ_EIO (done will not be called). */
int yj_curlm_add(struct yj_curlm *m, CURL *easy, yj_curl_done_fn done, void *arg);

/* Transfers under way. */
size_t yj_curlm_running(const struct yj_curlm *m);

#endif
