/* libFuzzer harness: the safetensors reader (pinas_safetensors_parse) on arbitrary bytes. */
#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    pinas_tensors *t = NULL;
    pinas_status s = pinas_safetensors_parse(fuzz_ctx(), data, size, "fuzz.safetensors", &t);
    fuzz_expect_message(s);
    if (!s && !t) abort();
    pinas_tensors_free(t);
    return 0;
}
