/* embedded_find.c: see embedded.h. */
#include "embedded.h"

#include <string.h>

const struct yj_embedded_file *yj_embedded_find(const char *name)
{
	for (const struct yj_embedded_file *f = yj_embedded_files; f->name; f++) {
		if (strcmp(f->name, name) == 0)
			return f;
	}
	return NULL;
}
