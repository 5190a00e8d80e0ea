/* libtorch glue every train/ file uses: shim errors as ctx errors, and the device / thread setup. */
#include "train_internal.h"

pinas_status pinas_torch_error(pinas_ctx *ctx, const char *what)
{
    return pinas_error(ctx, PINAS_ETORCH, "%s: %s", what ? what : "libtorch", pt_errmsg());
}

pinas_status pinas_torch_setup(pinas_ctx *ctx)
{
    if (pt_device_check(pinas_ctx_device(ctx))) return pinas_torch_error(ctx, "device");
    if (pt_set_threads(pinas_ctx_threads(ctx))) return pinas_torch_error(ctx, "threads");
    return PINAS_OK;
}
