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

/* n distinct JSON custody events of about 600-800 bytes (occurred an hour
 * ago, a child of 15), made before any clock starts. On success *out holds
 * n strings (free with yj_bench_events_free) and *bytes their total length;
 * returns 0, or -ENOMEM. */
int yj_bench_events(char ***out, unsigned long n, size_t *bytes);

/* Frees what yj_bench_events made and nulls *events; NULL is a no-op. */
void yj_bench_events_free(char ***events, unsigned long n);

/* Memory peaks of one process, sampled by a thread of the benchmark. */
struct yj_bench_mem {
	pid_t pid;                  /* the process sampled */
	pthread_t thread;           /* the sampling thread */
	atomic_int stop;            /* set to end the sampling */
	int running;                /* the thread was started and not joined */
	unsigned interval_ms;       /* time between samples */
	unsigned long samples;      /* samples taken */
	long private_kib;           /* peak private RSS (see yj_bench_mem_read) */
	long anon_kib;              /* peak anonymous RSS (heap, stacks, anonymous maps) */
	const char *source;         /* which fields private_kib adds up */
};

/* One sample of pid: *private_kib is Private_Clean + Private_Dirty of
 * /proc/PID/smaps_rollup (with Pss, then Rss, as fallbacks where a kernel
 * lacks those fields; /proc/PID/status VmRSS where it lacks smaps_rollup),
 * *anon_kib the Anonymous line (RssAnon), *source names what private_kib
 * counts. Private pages include those of file mappings no other process maps
 * (for yjlinkd: the resident pages of its LMDB map). Returns 0, or -errno
 * when the process's files cannot be read (it has gone). */
int yj_bench_mem_read(pid_t pid, long *private_kib, long *anon_kib, const char **source);

/* Starts sampling pid every interval_ms into *m (zeroed first). Returns 0,
 * or a negative error code when the thread cannot start. */
int yj_bench_mem_start(struct yj_bench_mem *m, pid_t pid, unsigned interval_ms);

/* Stops the sampling and waits for the thread; the peaks stay in *m.
 * Idempotent. */
void yj_bench_mem_stop(struct yj_bench_mem *m);

#endif
