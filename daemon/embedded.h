/* embedded.h: files compiled into the binary (tools/embed.cmake): the
 * default config conf/yjlinkd.conf and the reference tables conf/ref/ tables,
 * so yjlinkd runs with no file but its own. */
#ifndef YJ_EMBEDDED_H
#define YJ_EMBEDDED_H

#include <stddef.h>

struct yj_embedded_file {
	const char *name;  /* base name, e.g. "yjlinkd.conf", "forces.csv" */
	const char *data;  /* contents, NUL-terminated */
	size_t len;        /* bytes, without the NUL */
};

/* Terminated by an entry whose name is NULL. */
extern const struct yj_embedded_file yj_embedded_files[];

/* The embedded file of this base name, or NULL. */
const struct yj_embedded_file *yj_embedded_find(const char *name);

#endif
