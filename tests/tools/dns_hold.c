/* dns_hold.c: an LD_PRELOAD shim for the integration tests, a DNS server
 * that does not answer. getaddrinfo() of the one name in $YJ_DNS_HOLD_NAME
 * blocks for as long as the file $YJ_DNS_HOLD_FILE exists (then fails with
 * EAI_AGAIN); every other name goes to the C library's own getaddrinfo.
 * What a resolver stuck in this call must not do is hold up the daemon's
 * loop (libcurl runs it on a thread of its own and, unless told otherwise,
 * joins that thread when the transfer ends: docs/blocking.md). */
#include <dlfcn.h>
#include <netdb.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

typedef int (*s_gai_fn)(const char *, const char *, const struct addrinfo *, struct addrinfo **);

int getaddrinfo(const char *node, const char *service, const struct addrinfo *hints, struct addrinfo **res)
{
	const char *name = getenv("YJ_DNS_HOLD_NAME"), *file = getenv("YJ_DNS_HOLD_FILE");
	if (node && name && file && !strcmp(node, name)) {
		const struct timespec gap = { 0, 20 * 1000 * 1000 };
		/* at most ten minutes, so that a forgotten hold cannot outlive a test run */
		for (int i = 0; i < 30000 && access(file, F_OK) == 0; i++)
			nanosleep(&gap, NULL);
		return EAI_AGAIN;
	}
	s_gai_fn real = (s_gai_fn)dlsym(RTLD_NEXT, "getaddrinfo");
	return real ? real(node, service, hints, res) : EAI_FAIL;
}
