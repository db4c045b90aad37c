/* registry.c: the adapters compiled into yjlinkd. Adding one is a line here
 * and a file beside this one; the core needs no change. */
#include <stddef.h>

#include "adapter.h"

extern const struct yj_adapter yj_adapter_in_yjl1;
extern const struct yj_adapter yj_adapter_out_webhook;
extern const struct yj_adapter yj_adapter_out_email;

const struct yj_adapter *const yj_adapters[] = {
	&yj_adapter_in_yjl1,
	&yj_adapter_out_webhook,
	&yj_adapter_out_email,
	NULL,
};
