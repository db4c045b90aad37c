/* secret.h: the one reader of secret files (CURVE secret keys, webhook
 * secrets, SMTP credentials: interfaces.md §1, quality.md "Security").
 *
 * A secret every local user can read is none: a file group or others may
 * read (st_mode & 077), or that is not a regular file, is refused, and the
 * error says so, naming the file and `chmod 600`. The check is made with
 * fstat on the descriptor read, so the file checked is the file read.
 * Nothing of the secret stays behind in a stdio buffer or on the stack: it
 * is read with read(2) and every buffer is wiped (sodium_memzero).
 */
#ifndef YJ_SECRET_H
#define YJ_SECRET_H

#include <stddef.h>

/* The first line of the file at path (without its CR/LF) into buf, NUL-
 * terminated. Returns its length (>= 0), or a negative error code with a
 * message in err: YJ_EINVAL (group or others may read it, not a regular
 * file, empty, or it does not fit in size), YJ_EIO (cannot be opened or
 * read). buf is wiped on every error. */
int yj_secret_read(const char *path, char *buf, size_t size, char *err, size_t errlen);

/* Wipe len bytes at p: a secret must not outlive its use in freed memory. */
void yj_secret_wipe(void *p, size_t len);

#endif
