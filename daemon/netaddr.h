/* netaddr.h: is a URL's host this machine? The security rules of
 * quality.md ("Security") let plain transports go to loopback only:
 * STARTTLS may be skipped for a loopback relay, a webhook may be plain
 * http:// to a loopback receiver. */
#ifndef YJ_NETADDR_H
#define YJ_NETADDR_H

/* 1 when url ("scheme://[user@]host[:port][/...]") names localhost,
 * 127.0.0.0/8 or [::1]; 0 otherwise (also for anything unparsable). */
int yj_url_host_is_loopback(const char *url);

#endif
