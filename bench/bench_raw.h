/* bench_raw.h: the "raw LMDB limit" of spec/quality.md, for benchmarks that
 * report a ratio against it. Include bench_raw.inc (the implementation) in
 * exactly one .c file of a benchmark program; it uses LMDB alone, nothing of
 * yjlink, so the figure is what this machine's disk and LMDB can do.
 */
#ifndef YJ_BENCH_RAW_H
#define YJ_BENCH_RAW_H

/* Append n 600-byte values under big-endian u64 keys 1..n to a fresh LMDB
 * environment in dir (an existing directory; its data.mdb and lock.mdb are
 * removed before and after), 1,000 per transaction, each commit synced
 * (LMDB's default flags). Returns events per second, timed from the first
 * begin to the last commit, or a negative number on failure (reported on
 * stderr). */
double yj_bench_raw_lmdb(const char *dir, unsigned long n);

#endif
