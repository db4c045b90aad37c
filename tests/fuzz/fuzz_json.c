/* fuzz_json.c: libFuzzer target for the JSON normaliser.
 *
 * Input: byte 0 selects the feed (custody, arrest, voluntary_interview,
 * outcome: value % 4), the rest is the payload, sent as application/json.
 * Invariants (fuzz_common.h): refusals carry a normaliser code and a clean
 * dotted field path; an accepted event survives pack/unpack/re-normalise
 * (protobuf) and event JSON/re-normalise byte for byte; a second run
 * decides the same.
 */
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	return fz_normalise_one(YJ_CT_JSON, data, size);
}
