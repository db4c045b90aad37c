/* db/positions.c: see db/positions.h. */
#include "db/positions.h"

#include <stdio.h>
#include <string.h>

#include "err.h"

#define S_PREFIX "position."

/* The meta key of a position; 0 when key is empty or too long. */
static size_t s_key(char *buf, size_t size, const char *key)
{
	size_t n = key ? strlen(key) : 0;
	if (n == 0 || n > YJ_POSITION_KEY_MAX)
		return 0;
	return (size_t)snprintf(buf, size, "%s%s", S_PREFIX, key);
}

int yj_positions_put(struct yj_txn *txn, const char *key, const void *val, size_t len)
{
	char k[sizeof(S_PREFIX) + YJ_POSITION_KEY_MAX + 1];
	size_t klen = s_key(k, sizeof(k), key);
	if (!klen || !val || len == 0 || len > YJ_POSITION_MAX)
		return yj_txn_refuse(txn);
	return yj_txn_put(txn, YJ_DB_META, k, klen, val, len);
}

int yj_positions_get(struct yj_txn *txn, const char *key, void *buf, size_t size, size_t *len)
{
	char k[sizeof(S_PREFIX) + YJ_POSITION_KEY_MAX + 1];
	const void *v;
	size_t vlen;
	size_t klen = s_key(k, sizeof(k), key);
	if (!klen || !buf || !len)
		return yj_txn_refuse(txn);
	int rc = yj_txn_get(txn, YJ_DB_META, k, klen, &v, &vlen);
	if (rc)
		return rc;
	if (vlen > size)
		return YJ_ERANGE;
	memcpy(buf, v, vlen);
	*len = vlen;
	return 0;
}

int yj_positions_del(struct yj_txn *txn, const char *key)
{
	char k[sizeof(S_PREFIX) + YJ_POSITION_KEY_MAX + 1];
	size_t klen = s_key(k, sizeof(k), key);
	if (!klen)
		return yj_txn_refuse(txn);
	return yj_txn_del(txn, YJ_DB_META, k, klen);
}

struct s_each {
	const char *prefix;       /* full meta prefix: "position." + the caller's */
	size_t plen;
	yj_position_fn fn;
	void *arg;
};

static int s_each_cb(void *arg, const void *key, size_t klen, const void *val, size_t vlen)
{
	struct s_each *e = arg;
	char k[sizeof(S_PREFIX) + YJ_POSITION_KEY_MAX + 1];
	if (klen < e->plen || memcmp(key, e->prefix, e->plen))
		return 1; /* past the prefix: keys are in order */
	if (klen >= sizeof(k))
		return 0;
	memcpy(k, key, klen);
	k[klen] = '\0';
	return e->fn(e->arg, k + sizeof(S_PREFIX) - 1, val, vlen);
}

int yj_positions_each(struct yj_txn *txn, const char *prefix, yj_position_fn fn, void *arg)
{
	char p[sizeof(S_PREFIX) + YJ_POSITION_KEY_MAX + 1];
	if (!prefix || !fn || strlen(prefix) > YJ_POSITION_KEY_MAX)
		return yj_txn_refuse(txn);
	int n = snprintf(p, sizeof(p), "%s%s", S_PREFIX, prefix);
	struct s_each e = { p, (size_t)n, fn, arg };
	int rc = yj_txn_iter(txn, YJ_DB_META, p, (size_t)n, 0, s_each_cb, &e);
	return rc < 0 ? rc : 0;
}
