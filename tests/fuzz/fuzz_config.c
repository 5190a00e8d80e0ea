/* libFuzzer harness: run configs (pinas_config_from_json) from text. */
#include "fuzz_util.h"
#include "pinas_config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cJSON *j = fuzz_json(data, size);
    if (!j) return 0;
    pinas_ctx *ctx = fuzz_ctx();
    pinas_status s;
    pinas_config *cfg = NULL;
    s = pinas_config_from_json(ctx, j, "fuzz.json", NULL, 0, &cfg);
    fuzz_expect_message(s);
    if (!s && !cfg) abort();
    pinas_config_free(cfg);
    cJSON_Delete(j);
    return 0;
}
