/* registry.c: the adapters compiled into yjlinkd. Adding one is a line here
 * and a file beside this one; the core needs no change. */
#include <stddef.h>

#include "adapter.h"

extern const struct yj_adapter yj_adapter_in_yjl1;
extern const struct yj_adapter yj_adapter_in_sub;
extern const struct yj_adapter yj_adapter_in_spool;
extern const struct yj_adapter yj_adapter_out_webhook;
extern const struct yj_adapter yj_adapter_out_email;
extern const struct yj_adapter yj_adapter_out_yjn1;
extern const struct yj_adapter yj_adapter_out_peer;

const struct yj_adapter *const yj_adapters[] = {
	&yj_adapter_in_yjl1,
	&yj_adapter_in_sub,
	&yj_adapter_in_spool,
	&yj_adapter_out_webhook,
	&yj_adapter_out_email,
	&yj_adapter_out_yjn1,
	&yj_adapter_out_peer,
	NULL,
};
