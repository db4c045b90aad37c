/* err.h: yjlink's one error space.
 *
 * Every function returns 0 (YJ_OK) or one of these negative codes. Errors of
 * LMDB, ZeroMQ, libcurl and protobuf-c are translated once, where the module
 * that calls the library returns, so callers never see a foreign code.
 */
#ifndef YJ_ERR_H
#define YJ_ERR_H

#include <errno.h>

enum yj_err {
	YJ_OK = 0,
	YJ_ENOMEM = -ENOMEM,   /* allocation failed */
	YJ_EINVAL = -EINVAL,   /* bad argument or bad input */
	YJ_EIO = -EIO,         /* I/O error from the OS or a library */
	YJ_ENOENT = -ENOENT,   /* no such record */
	YJ_EEXIST = -EEXIST,   /* already there */
	YJ_ENOSPC = -ENOSPC,   /* disk full, or the store's map at its cap: answer RETRY */
	YJ_EAGAIN = -EAGAIN,   /* try again later (busy, would block) */
	YJ_ERANGE = -ERANGE,   /* value out of range */
	YJ_EBUSY = -EBUSY,     /* in use by another process (a store another daemon holds) */
	YJ_ECONFIG = -10001,   /* configuration error (already reported with file:line) */
	YJ_ESTORE = -10002,    /* store corrupt or an unexpected LMDB error */
	YJ_EPROTO = -10003,    /* peer broke the protocol */
	YJ_ESHUTDOWN = -10004, /* daemon is stopping */
};

/* A static, human-readable text for rc (any value, including foreign errnos). */
const char *yj_strerror(int rc);

#endif
