/* bench_common.h: what bench_ingest and bench_nats share, so that both
 * measure the same thing: the custody events they send, and the memory
 * sampler of the server process they start. Include bench_common.inc (the
 * implementation) in exactly one .c file of a benchmark program.
 */
#ifndef YJ_BENCH_COMMON_H
#define YJ_BENCH_COMMON_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <sys/types.h>

/* CLOCK_MONOTONIC in seconds. */
double yj_bench_now(void);

/* A loopback TCP port that was free at the time of the call (bound to port
 * 0 and closed). Returns 0, or -errno. */
int yj_bench_free_port(int *port);

/* n distinct JSON custody events of about 600-800 bytes (occurred an hour
 * ago, a child of 15), made before any clock starts. On success *out holds
 * n strings (free with yj_bench_events_free) and *bytes their total length;
 * returns 0, or -ENOMEM. */
int yj_bench_events(char ***out, unsigned long n, size_t *bytes);

/* Frees what yj_bench_events made and nulls *events; NULL is a no-op. */
void yj_bench_events_free(char ***events, unsigned long n);

/* One sample of a process's memory, in KiB. */
struct yj_bench_mem_sample {
	long private_kib;           /* Private_Clean + Private_Dirty over every mapping (= smaps_rollup's) */
	long nonmap_kib;            /* the same without LMDB files (*.mdb): the non-mmap figure */
	long anon_kib;              /* Anonymous: heap, stacks, anonymous maps (RssAnon) */
	const char *source;         /* what private_kib adds up */
};

/* Memory peaks of one process, sampled by a thread of the benchmark. */
struct yj_bench_mem {
	pid_t pid;                  /* the process sampled */
	pthread_t thread;           /* the sampling thread */
	atomic_int stop;            /* set to end the sampling */
	int running;                /* the thread was started and not joined */
	unsigned interval_ms;       /* time between samples */
	unsigned long samples;      /* samples taken */
	struct yj_bench_mem_sample peak; /* the peak of each field (not all at one moment) */
};

/* One sample of pid from /proc/PID/smaps. Private pages include those of
 * file mappings no other process maps, which for yjlinkd are the resident
 * pages of its LMDB map: nonmap_kib leaves out the mappings of files named
 * *.mdb (spec/quality.md counts private non-mmap memory). Where a kernel
 * has no Private_* lines, private_kib is Pss, else Rss; without smaps, the
 * VmRSS and RssAnon of /proc/PID/status. source names which. Returns 0, or
 * -errno when the process's files cannot be read (it has gone). */
int yj_bench_mem_read(pid_t pid, struct yj_bench_mem_sample *out);

/* Starts sampling pid every interval_ms into *m (zeroed first). Returns 0,
 * or a negative error code when the thread cannot start. */
int yj_bench_mem_start(struct yj_bench_mem *m, pid_t pid, unsigned interval_ms);

/* Stops the sampling and waits for the thread; the peaks stay in *m.
 * Idempotent. */
void yj_bench_mem_stop(struct yj_bench_mem *m);

/* Prints "NAME memory peak: ..." from *m on stdout. */
void yj_bench_mem_print(const char *name, const struct yj_bench_mem *m);

#endif
