/* bench_store_raw.c: the raw LMDB limit of spec/quality.md, and the same
 * workload through the store (yj_store_write + yj_events_put with every
 * index), measured in one run, with their ratio.
 *
 *   bench_store_raw [DIR [EVENTS [PER_TXN]]]
 *
 * DIR (created if missing; default a fresh directory under /tmp, removed
 * afterwards) gets two subdirectories, raw/ and store/, emptied at the end.
 * EVENTS defaults to 1,000,000. PER_TXN, the events per store transaction,
 * defaults to 1,000 like the raw loop; a larger value shows what bigger
 * ingest batches buy. A benchmark prints figures; it asserts none.
 */
#include "bench_raw.inc"

#include "err.h"
#include "store.h"
#include "db/events.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/stat.h>

#define FORCES 43

struct s_batch {
	unsigned long first;   /* number of the batch's first event (0-based) */
	unsigned n;            /* events in the batch */
	unsigned long dups;    /* source keys found already stored (expect 0) */
};

/* Cheap, reproducible scrambling for the keys that arrive in no order. */
static uint64_t s_mix(uint64_t x)
{
	x ^= x >> 33;
	x *= UINT64_C(0xff51afd7ed558ccd);
	x ^= x >> 33;
	x *= UINT64_C(0xc4ceb9fe1a85ec53);
	x ^= x >> 33;
	return x;
}

/* Keys shaped like ingest's: source ids rising within each force, children
 * in no order (200,000 of them), custody records rising and each holding
 * four events, occurred_at in arrival order give or take 10 s (events 1 ms
 * apart). The children are what costs: each event dirties a page of the
 * child index that no other event of its transaction touches. */
static int s_batch_fn(struct yj_txn *txn, void *arg)
{
	struct s_batch *b = arg;
	uint8_t rec[600], hash[16];
	char src[64], child[64], cust[64];

	b->dups = 0;
	for (unsigned i = 0; i < b->n; i++) {
		unsigned long no = b->first + i;
		unsigned force = (unsigned)(no % FORCES);
		uint64_t h = s_mix(no);
		struct yj_source_ref ref;
		uint64_t seq;
		int rc;

		snprintf(src, sizeof(src), "%02u/SRC-%010lu", force, no);
		snprintf(child, sizeof(child), "%02u/P%07u", force, (unsigned)(h % 200000));
		snprintf(cust, sizeof(cust), "%02u/CR-%09lu", force, no / 4);
		rc = yj_events_find_source(txn, src, &ref);
		if (rc == 0) {
			b->dups++;
			continue;
		}
		if (rc != YJ_ENOENT)
			return rc;
		if ((rc = yj_events_next_seq(txn, &seq)))
			return rc;
		uint64_t no64 = no;
		memcpy(hash, &h, 8);
		memcpy(hash + 8, &no64, 8);
		memset(rec, (int)(no & 0xff), sizeof(rec));
		memcpy(rec, &seq, sizeof(seq));
		struct yj_event_keys k = {
			.source_key = src,
			.hash = hash,
			.child_id = child,
			.occurred_us = INT64_C(1700000000000000) + (int64_t)no * 1000 - (int64_t)(h % 10000000u),
			.custody_key = cust,
		};
		if ((rc = yj_events_put(txn, seq, &k, rec, sizeof(rec))))
			return rc;
	}
	return 0;
}

static double s_bench_store(const char *dir, unsigned long n, unsigned per, struct yj_store_stats *st)
{
	/* The daemon's default sizes (store.map_size_mb, store.max_map_size_mb). */
	struct yj_store_opts o = { .path = dir, .map_size = (size_t)64 << 20, .max_map_size = (size_t)256 << 30 };
	struct yj_store *store = NULL;
	double rate = -1;
	int rc;

	if ((rc = yj_store_open(&o, &store))) {
		fprintf(stderr, "store: open %s: %s\n", dir, yj_strerror(rc));
		return -1;
	}
	double t0 = s_bench_raw_now();
	for (unsigned long no = 0; no < n; no += per) {
		struct s_batch b = { .first = no, .n = (unsigned)(n - no < per ? n - no : per) };
		if ((rc = yj_store_write(store, s_batch_fn, &b))) {
			fprintf(stderr, "store: write at event %lu: %s\n", no, yj_strerror(rc));
			goto out;
		}
		if (b.dups) {
			fprintf(stderr, "store: %lu events found stored already\n", b.dups);
			goto out;
		}
	}
	double t1 = s_bench_raw_now();
	rate = t1 > t0 ? (double)n / (t1 - t0) : 0;
	yj_store_stats(store, st);
out:
	yj_store_close(&store);
	return rate;
}

static void s_clean(const char *dir)
{
	static const char *files[] = { "data.mdb", "lock.mdb" };
	char p[4096];
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		snprintf(p, sizeof(p), "%s/%s", dir, files[i]);
		unlink(p);
	}
	rmdir(dir);
}

int main(int argc, char **argv)
{
	char tmp[] = "/tmp/yj-bench-store-XXXXXX";
	char raw[4096], sto[4096];
	const char *dir = argc > 1 ? argv[1] : NULL;
	unsigned long n = 1000000, per = YJ_BENCH_RAW_PER_TXN;
	struct yj_store_stats st = { 0 };
	int ret = 1;

	if (argc > 4 || (argc > 1 && !strcmp(argv[1], "-h"))) {
		fprintf(stderr, "usage: %s [DIR [EVENTS [PER_TXN]]]\n", argv[0]);
		return 2;
	}
	for (int i = 2; i < argc; i++) {
		char *end;
		errno = 0;
		unsigned long v = strtoul(argv[i], &end, 10);
		if (errno || *end || !v || v > UINT32_MAX) {
			fprintf(stderr, "%s: bad number '%s'\n", argv[0], argv[i]);
			return 2;
		}
		*(i == 2 ? &n : &per) = v;
	}
	if (!dir) {
		if (!mkdtemp(tmp)) {
			perror("mkdtemp");
			return 1;
		}
		dir = tmp;
	} else if (mkdir(dir, 0700) && errno != EEXIST) {
		perror(dir);
		return 1;
	}
	snprintf(raw, sizeof(raw), "%s/raw", dir);
	snprintf(sto, sizeof(sto), "%s/store", dir);
	if (mkdir(raw, 0700) && errno != EEXIST) {
		perror(raw);
		goto out;
	}
	/* The store must start empty for its seqs and source keys. */
	s_clean(sto);

	printf("events: %lu of 600 bytes, in %s\n", n, dir);
	fflush(stdout);
	double r = yj_bench_raw_lmdb(raw, n);
	if (r < 0)
		goto out;
	printf("raw LMDB limit (%d per synced txn): %.0f events/s\n", YJ_BENCH_RAW_PER_TXN, r);
	fflush(stdout);
	double s = s_bench_store(sto, n, (unsigned)per, &st);
	if (s < 0)
		goto out;
	printf("store (find_source + next_seq + put_event, all indexes, %lu per txn): %.0f events/s\n", per, s);
	printf("store/raw ratio: %.3f\n", s / r);
	printf("store map: %zu MiB, %zu MiB used, grown %u times\n", st.map_size >> 20, st.used_bytes >> 20,
	       st.map_grows);
	ret = 0;
out:
	s_clean(sto);
	rmdir(raw);
	if (dir == tmp)
		rmdir(tmp);
	return ret;
}
