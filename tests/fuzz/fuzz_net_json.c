/* libFuzzer harness: net files (pinas-net/1, explicit and compact) from text, via pinas_json_parse and
 * pinas_net_from_json. A net that loads must price without overflow and survive a round trip
 * through its explicit form with the same hash. */
#include "fuzz_util.h"
#include "pinas_net.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cJSON *j = fuzz_json(data, size);
    if (!j) return 0;
    pinas_ctx *ctx = fuzz_ctx();
    pinas_status s;
    pinas_net *net = NULL;
    s = pinas_net_from_json(ctx, j, "fuzz.json", &net);
    cJSON_Delete(j);
    fuzz_expect_message(s);
    if (s) return 0;
    /* the IR's size limits make every counter fit */
    if (pinas_net_macs(net) < 0 || pinas_net_macs(net) > PINAS_NET_MAX_MACS || pinas_net_relu_count(net) < 0 || pinas_net_params(net) < 0)
        abort();
    cJSON *back = pinas_net_to_json(net);
    pinas_net *again = NULL;
    if (pinas_net_from_json(ctx, back, "round trip", &again) || pinas_net_hash(again) != pinas_net_hash(net)) abort();
    cJSON_Delete(back);
    pinas_net_free(again);
    pinas_net_free(net);
    return 0;
}
