/* libFuzzer harness: cost-model files from text: hardware and network profiles (pinas-profile/1) and
 * LUTs (pinas-lut/1), each reader given every input. */
#include "fuzz_util.h"
#include "pinas_cost.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cJSON *j = fuzz_json(data, size);
    if (!j) return 0;
    pinas_ctx *ctx = fuzz_ctx();
    pinas_cost_hw *hw = NULL;
    fuzz_expect_message(pinas_cost_hw_from_json(ctx, j, "fuzz.json", &hw));
    if (hw) {
        cJSON_Delete(pinas_cost_hw_to_json(hw));
        pinas_cost_hw_free(hw);
    }
    pinas_cost_link *l = NULL;
    fuzz_expect_message(pinas_cost_link_from_json(ctx, j, "fuzz.json", &l));
    if (l) {
        cJSON_Delete(pinas_cost_link_to_json(l));
        pinas_cost_link_free(l);
    }
    pinas_cost_lut *lut = NULL;
    fuzz_expect_message(pinas_cost_lut_from_json(ctx, j, "fuzz.json", &lut));
    if (lut) {
        cJSON_Delete(pinas_cost_lut_to_json(lut));
        pinas_cost_lut_free(lut);
    }
    cJSON_Delete(j);
    return 0;
}
