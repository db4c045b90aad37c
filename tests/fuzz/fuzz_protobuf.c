/* fuzz_protobuf.c: libFuzzer target for the protobuf decoder (yjlink.v1.Event
 * through yj_normalise with application/x-protobuf).
 *
 * Input: byte 0 selects the feed (value % 4), the rest is the payload.
 * Same invariants as fuzz_json.c (fuzz_common.h).
 */
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	return fz_normalise_one(YJ_CT_PROTOBUF, data, size);
}
