/* audit_rewrite: rewrite a stopped yjlinkd's audit chain as an attacker with
 * write access to the store file would (tests/integration/test_audit_anchor.py).
 *
 *   audit_rewrite STORE_DIR NUMBER remove|change
 *
 * remove: record NUMBER is deleted and every later one numbered down by one;
 * change: record NUMBER's recipient becomes "yjs:elsewhere". Either way every
 * record from NUMBER on is hashed again along the chain exactly as
 * daemon/db/audit.c hashes it (BLAKE2b-256 over prev_hash || the record packed
 * with an empty hash field: the packed record holds prev_hash), and
 * audit.head says the new last one. Plain `audit verify` then says intact.
 *
 * LMDB directly, on purpose: this is the attacker, not the daemon. Prints the
 * new head as "NUMBER:HASH". Exits 0, or 1 with a message.
 */
#include <lmdb.h>
#include <sodium.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "yjlink.pb-c.h"

static void s_be64(uint8_t *p, uint64_t v)
{
	for (int i = 7; i >= 0; i--, v >>= 8)
		p[i] = (uint8_t)v;
}

static uint64_t s_get64(const uint8_t *p)
{
	uint64_t v = 0;
	for (int i = 0; i < 8; i++)
		v = v << 8 | p[i];
	return v;
}

static int s_die(const char *what, int mrc)
{
	fprintf(stderr, "audit_rewrite: %s: %s\n", what, mrc ? mdb_strerror(mrc) : "failed");
	return 1;
}

int main(int argc, char **argv)
{
	MDB_env *env = NULL;
	MDB_txn *txn = NULL;
	MDB_dbi audit, meta;
	MDB_cursor *cur = NULL;
	MDB_val k, v;
	Yjlink__V1__AuditRecord **recs = NULL; /* owned: every record from NUMBER on */
	size_t n = 0, cap = 0;
	uint8_t prev[32], h[32], key[8], head[40];
	int rc = 1, mrc, remove;
	uint64_t from;

	if (argc != 4 || (strcmp(argv[3], "remove") && strcmp(argv[3], "change")) || !(from = strtoull(argv[2], NULL, 10))) {
		fprintf(stderr, "usage: audit_rewrite STORE_DIR NUMBER remove|change\n");
		return 2;
	}
	remove = !strcmp(argv[3], "remove");
	if (sodium_init() < 0)
		return s_die("sodium_init", 0);
	if ((mrc = mdb_env_create(&env)) || (mrc = mdb_env_set_maxdbs(env, 64)) || (mrc = mdb_env_open(env, argv[1], 0, 0600)))
		return s_die("open the store", mrc);
	if ((mrc = mdb_txn_begin(env, NULL, 0, &txn)) || (mrc = mdb_dbi_open(txn, "audit", 0, &audit)) ||
	    (mrc = mdb_dbi_open(txn, "meta", 0, &meta))) {
		s_die("open the tables", mrc);
		goto out;
	}
	/* The hash record NUMBER follows: its predecessor's. */
	memset(prev, 0, sizeof(prev));
	if (from > 1) {
		s_be64(key, from - 1);
		k = (MDB_val){ 8, key };
		Yjlink__V1__AuditRecord *p;
		if ((mrc = mdb_get(txn, audit, &k, &v)) || !(p = yjlink__v1__audit_record__unpack(NULL, v.mv_size, v.mv_data)) ||
		    p->hash.len != 32) {
			s_die("read the record before NUMBER", mrc);
			goto out;
		}
		memcpy(prev, p->hash.data, 32);
		yjlink__v1__audit_record__free_unpacked(p, NULL);
	}
	if ((mrc = mdb_cursor_open(txn, audit, &cur))) {
		s_die("cursor", mrc);
		goto out;
	}
	s_be64(key, from);
	k = (MDB_val){ 8, key };
	for (mrc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); !mrc; mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		if (n == cap) {
			cap = cap ? cap * 2 : 64;
			Yjlink__V1__AuditRecord **nr = realloc(recs, cap * sizeof(*recs));
			if (!nr) {
				s_die("out of memory", 0);
				goto out;
			}
			recs = nr;
		}
		if (!(recs[n] = yjlink__v1__audit_record__unpack(NULL, v.mv_size, v.mv_data))) {
			s_die("undecodable record", 0);
			goto out;
		}
		n++;
	}
	mdb_cursor_close(cur);
	cur = NULL;
	if (!n || recs[0]->number != from) {
		fprintf(stderr, "audit_rewrite: no record %llu\n", (unsigned long long)from);
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		s_be64(key, recs[i]->number);
		k = (MDB_val){ 8, key };
		if ((mrc = mdb_del(txn, audit, &k, NULL))) {
			s_die("delete", mrc);
			goto out;
		}
	}
	uint64_t number = from - 1;
	for (size_t i = remove ? 1 : 0; i < n; i++) {
		Yjlink__V1__AuditRecord *r = recs[i];
		/* What the unpacked record owns, put back before it is freed. */
		char *keep_rcpt = r->recipient;
		ProtobufCBinaryData keep_prev = r->prev_hash, keep_hash = r->hash;
		if (!remove && i == 0)
			r->recipient = "yjs:elsewhere";
		r->number = ++number;
		r->has_prev_hash = 1;
		r->prev_hash.data = prev;
		r->prev_hash.len = 32;
		r->has_hash = 0;
		r->hash.data = NULL;
		r->hash.len = 0;
		size_t len = protobuf_c_message_get_packed_size(&r->base);
		uint8_t *buf = malloc(len + 64); /* room for the hash field too */
		mrc = 0;
		if (buf) {
			protobuf_c_message_pack(&r->base, buf);
			crypto_generichash(h, 32, buf, len, NULL, 0);
			r->has_hash = 1;
			r->hash.data = h;
			r->hash.len = 32;
			len = protobuf_c_message_pack(&r->base, buf);
			s_be64(key, number);
			k = (MDB_val){ 8, key };
			v = (MDB_val){ len, buf };
			mrc = mdb_put(txn, audit, &k, &v, 0);
			memcpy(prev, h, 32);
		}
		free(buf);
		r->recipient = keep_rcpt;
		r->prev_hash = keep_prev;
		r->hash = keep_hash;
		if (!buf || mrc) {
			s_die(buf ? "put" : "out of memory", mrc);
			goto out;
		}
	}
	s_be64(head, number);
	memcpy(head + 8, prev, 32);
	k = (MDB_val){ strlen("audit.head"), "audit.head" };
	v = (MDB_val){ sizeof(head), head };
	if ((mrc = mdb_put(txn, meta, &k, &v, 0)) || (mrc = mdb_txn_commit(txn))) {
		txn = NULL;
		s_die("commit", mrc);
		goto out;
	}
	txn = NULL;
	printf("%llu:", (unsigned long long)s_get64(head));
	for (int i = 0; i < 32; i++)
		printf("%02x", prev[i]);
	printf("\n");
	rc = 0;
out:
	if (cur)
		mdb_cursor_close(cur);
	if (txn)
		mdb_txn_abort(txn);
	for (size_t i = 0; i < n; i++)
		yjlink__v1__audit_record__free_unpacked(recs[i], NULL);
	free(recs);
	if (env)
		mdb_env_close(env);
	return rc;
}
