/* strjoin.c: see strjoin.h. */
#include "strjoin.h"

#include <string.h>

/* Copy len bytes of s to out at *at, as much as fits before the NUL. */
static void s_put(char *out, size_t size, size_t *at, const char *s, size_t len)
{
	if (*at < size - 1) {
		size_t room = size - 1 - *at;
		memcpy(out + *at, s, len < room ? len : room);
	}
	*at += len;
}

static size_t s_end(char *out, size_t size, size_t at)
{
	out[at < size - 1 ? at : size - 1] = '\0';
	return at;
}

size_t yj_strjoin2(char *out, size_t size, const char *a, const char *b)
{
	size_t at = 0;
	if (a)
		s_put(out, size, &at, a, strlen(a));
	if (b)
		s_put(out, size, &at, b, strlen(b));
	return s_end(out, size, at);
}

size_t yj_strjoin_sep(char *out, size_t size, const char *a, char sep, const char *b)
{
	size_t at = 0;
	if (a)
		s_put(out, size, &at, a, strlen(a));
	s_put(out, size, &at, &sep, 1);
	if (b)
		s_put(out, size, &at, b, strlen(b));
	return s_end(out, size, at);
}

size_t yj_str_u64(char *out, size_t size, uint64_t v)
{
	char digits[20];
	size_t n = 0, at = 0;
	do {
		digits[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	while (n)
		s_put(out, size, &at, &digits[--n], 1);
	return s_end(out, size, at);
}
