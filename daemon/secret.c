/* secret.c: see secret.h. */
#include "secret.h"

#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "err.h"

/* Longest file taken: a secret is one short line; anything this long is the
 * wrong file named. */
#define S_MAX_FILE 4096

void yj_secret_wipe(void *p, size_t len)
{
	if (p && len)
		sodium_memzero(p, len);
}

int yj_secret_read(const char *path, char *buf, size_t size, char *err, size_t errlen)
{
	char raw[S_MAX_FILE + 1];
	size_t len = 0;
	struct stat st;
	int fd = -1, rc = 0;

	if (!path || !buf || !size) {
		snprintf(err, errlen, "no secret file named");
		return YJ_EINVAL;
	}
	buf[0] = '\0';
	/* O_NOFOLLOW is not used: a key linked from a secrets directory is
	 * common; the file reached is what is checked. O_NONBLOCK: a FIFO
	 * named by mistake must not hang the start before it is refused. */
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0 || fstat(fd, &st) != 0) {
		snprintf(err, errlen, "cannot read secret file %s: %s", path, strerror(errno));
		rc = YJ_EIO;
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "secret file %s is not a regular file", path);
		rc = YJ_EINVAL;
		goto out;
	}
	if (st.st_mode & 077) {
		snprintf(err, errlen, "secret file %s may be read by group or others (mode %04o): chmod 600 it", path,
			 (unsigned)(st.st_mode & 07777));
		rc = YJ_EINVAL;
		goto out;
	}
	while (len < S_MAX_FILE && !memchr(raw, '\n', len)) {
		ssize_t n = read(fd, raw + len, S_MAX_FILE - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			snprintf(err, errlen, "cannot read secret file %s: %s", path, strerror(errno));
			rc = YJ_EIO;
			goto out;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	raw[len] = '\0';
	len = strcspn(raw, "\r\n");
	raw[len] = '\0';
	if (!len) {
		snprintf(err, errlen, "secret file %s is empty", path);
		rc = YJ_EINVAL;
		goto out;
	}
	if (len >= size) {
		snprintf(err, errlen, "secret file %s: its first line is longer than %zu bytes", path, size - 1);
		rc = YJ_EINVAL;
		goto out;
	}
	memcpy(buf, raw, len + 1);
	rc = (int)len;
out:
	sodium_memzero(raw, sizeof(raw));
	if (rc < 0)
		sodium_memzero(buf, size);
	if (fd >= 0)
		close(fd);
	return rc;
}
