/* test_netaddr.c: which URLs name this machine (daemon/netaddr.c), the
 * test behind STARTTLS by default and https:// for webhooks. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "netaddr.h"

static void test_loopback_hosts(void **state)
{
	static const char *const yes[] = {
		"smtp://127.0.0.1:2525",   "smtp://127.1.2.3",         "http://localhost:8088/hook",
		"http://LOCALHOST/x",      "http://[::1]:8088/h",      "smtp://user:pw@127.0.0.1:25/",
		"http://127.0.0.1",        "https://localhost?x=1",
	};
	static const char *const no[] = {
		"smtp://relay.example.org:587", "http://10.0.0.1/hook",     "http://128.0.0.1/",
		"http://[::2]:80/",             "http://localhost.evil.example/", "http://127.0.0.1.evil.example/",
		"http://user@evil.example/127.0.0.1", "127.0.0.1",          "",
		"http://[::1/",                 NULL,
	};
	(void)state;
	for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
		if (!yj_url_host_is_loopback(yes[i]))
			fail_msg("%s should be loopback", yes[i]);
	}
	for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++) {
		if (yj_url_host_is_loopback(no[i]))
			fail_msg("%s should not be loopback", no[i] ? no[i] : "(null)");
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_loopback_hosts),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
