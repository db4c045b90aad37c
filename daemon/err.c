/* err.c: see err.h. */
#include "err.h"

#include <string.h>

const char *yj_strerror(int rc)
{
	switch (rc) {
	case YJ_OK: return "success";
	case YJ_ECONFIG: return "configuration error";
	case YJ_ESTORE: return "store error";
	case YJ_EPROTO: return "protocol error";
	case YJ_ESHUTDOWN: return "shutting down";
	case YJ_EBUSY: return "in use by another process";
	case YJ_ENOSPC: return "no space left (disk full or store at its size cap)";
	default: break;
	}
	if (rc < 0 && rc > -4096)
		return strerror(-rc);
	return "unknown error";
}
