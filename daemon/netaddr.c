/* netaddr.c: see netaddr.h. */
#include "netaddr.h"

#include <arpa/inet.h>
#include <string.h>
#include <strings.h>

int yj_url_host_is_loopback(const char *url)
{
	char host[256];
	const char *p = url ? strstr(url, "://") : NULL;
	if (!p)
		return 0;
	p += 3;
	size_t auth = strcspn(p, "/?#");
	const char *at = memchr(p, '@', auth);
	if (at) {
		auth -= (size_t)(at + 1 - p);
		p = at + 1;
	}
	size_t len;
	if (*p == '[') {
		const char *close = memchr(p, ']', auth);
		if (!close)
			return 0;
		len = (size_t)(close - p - 1);
		p++;
	} else {
		const char *colon = memchr(p, ':', auth);
		len = colon ? (size_t)(colon - p) : auth;
	}
	if (!len || len >= sizeof(host))
		return 0;
	memcpy(host, p, len);
	host[len] = '\0';
	if (!strcasecmp(host, "localhost"))
		return 1;
	struct in_addr a4;
	struct in6_addr a6;
	if (inet_pton(AF_INET, host, &a4) == 1)
		return (ntohl(a4.s_addr) >> 24) == 127;
	if (inet_pton(AF_INET6, host, &a6) == 1)
		return IN6_IS_ADDR_LOOPBACK(&a6);
	return 0;
}
