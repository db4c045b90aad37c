/* db/positions.h: where each input and subscription stands, so that a
 * restart resumes exactly: a publisher's last sequence number, how far a
 * spool file got, a subscriber's last acknowledged number. Only
 * db/positions.c reads or writes them: YJ_DB_META "position.<key>" -> the
 * owner's bytes (at most YJ_POSITION_MAX). Keys are the owners' own
 * ("in_sub.tvp-athena", "out_yjn1.children_services:E06000042").
 *
 * A position is written in the same transaction as what it stands for (an
 * input's batch, a subscription's completions), so the two never disagree.
 */
#ifndef YJ_DB_POSITIONS_H
#define YJ_DB_POSITIONS_H

#include <stddef.h>

#include "store.h"

#define YJ_POSITION_MAX 256
#define YJ_POSITION_KEY_MAX 200

/* Write key -> val (len <= YJ_POSITION_MAX). YJ_EINVAL for an empty or
 * over-long key or value. */
int yj_positions_put(struct yj_txn *txn, const char *key, const void *val, size_t len);
/* Copy key's value into buf (size >= YJ_POSITION_MAX is always enough);
 * *len its length. YJ_ENOENT when there is none. */
int yj_positions_get(struct yj_txn *txn, const char *key, void *buf, size_t size, size_t *len);
/* Forget key; YJ_ENOENT when there was none. */
int yj_positions_del(struct yj_txn *txn, const char *key);

typedef int (*yj_position_fn)(void *arg, const char *key, const void *val, size_t len);
/* Every position whose key starts with prefix, in key order (0 go on, 1 stop, <0 fail). */
int yj_positions_each(struct yj_txn *txn, const char *prefix, yj_position_fn fn, void *arg);

#endif
