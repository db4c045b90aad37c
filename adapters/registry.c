/* registry.c: the adapters compiled into yjlinkd. Adding one is a line here
 * and a file beside this one; the core needs no change. */
#include <stddef.h>

#include "adapter.h"

extern const struct yj_adapter yj_adapter_in_yjl1;

const struct yj_adapter *const yj_adapters[] = {
	&yj_adapter_in_yjl1,
	NULL,
};
