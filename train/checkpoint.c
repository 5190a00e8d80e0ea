/* Checkpoints: one safetensors file with net tensors, generator and optimizer state, epoch and caller JSON. */
#define _GNU_SOURCE
#include "train_internal.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#define CKPT_FORMAT "pinas-checkpoint/1"

/* Layout: every tensor of the net under its IR name (F32), "__gen" (U8, the tnet generator state),
 * "__optim.<k>" (U8, libtorch's serialised optimizer state) and "__meta" (U8, JSON text: format,
 * epoch, net name and hash, optimizer count, extra). The JSON is a tensor rather than safetensors
 * metadata because metadata can only hold strings; it is also copied into the metadata for people
 * who inspect the file. */

static pinas_status add_bytes(pinas_ctx *ctx, pinas_tensors *ts, const char *name, const void *buf, size_t n)
{
    int64_t shape[1] = {(int64_t)n};
    return pinas_tensors_add(ctx, ts, name, PINAS_U8, 1, shape, buf);
}

pinas_status pinas_checkpoint_save(pinas_ctx *ctx, const char *path, const pinas_tnet *t, pinas_optim *const *optims, int n_optims,
                                   int epoch, const cJSON *extra)
{
    pinas_tensors *ts = NULL;
    pinas_status s = pinas_tnet_export(ctx, t, NULL, &ts);
    if (s) return pinas_error_prefix(ctx, s, "%s", path);
    size_t gn = 0;
    uint8_t *gbuf = NULL;
    if (pt_gen_state_size(tr_tnet_gen(t), &gn)) s = pinas_torch_error(ctx, "generator state");
    if (!s && !(gbuf = malloc(gn ? gn : 1))) s = pinas_error(ctx, PINAS_ENOMEM, "out of memory");
    if (!s && pt_gen_get_state(tr_tnet_gen(t), gbuf, gn)) s = pinas_torch_error(ctx, "generator state");
    if (!s) s = add_bytes(ctx, ts, "__gen", gbuf, gn);
    free(gbuf);
    for (int k = 0; k < n_optims && !s; k++) {
        uint8_t *buf = NULL;
        size_t n = 0;
        if (pt_optim_save(tr_optim_handle(optims[k]), &buf, &n)) {
            s = pinas_torch_error(ctx, "optimizer state");
            break;
        }
        char name[32];
        snprintf(name, sizeof name, "__optim.%d", k);
        s = add_bytes(ctx, ts, name, buf, n);
        free(buf);
    }
    cJSON *meta = cJSON_CreateObject();
    cJSON_AddStringToObject(meta, "format", CKPT_FORMAT);
    cJSON_AddNumberToObject(meta, "epoch", epoch);
    cJSON_AddStringToObject(meta, "net", pinas_net_name(pinas_tnet_net(t)));
    char hash[24];
    snprintf(hash, sizeof hash, "%016" PRIx64, pinas_net_hash(pinas_tnet_net(t)));
    cJSON_AddStringToObject(meta, "net_hash", hash);
    cJSON_AddNumberToObject(meta, "optimizers", n_optims);
    if (extra) cJSON_AddItemToObject(meta, "extra", cJSON_Duplicate(extra, 1));
    char *text = cJSON_PrintUnformatted(meta);
    if (!s && !text) s = pinas_error(ctx, PINAS_ENOMEM, "out of memory");
    if (!s) s = add_bytes(ctx, ts, "__meta", text, strlen(text));
    if (!s) {
        cJSON *md = cJSON_CreateObject();
        cJSON_AddStringToObject(md, "format", CKPT_FORMAT);
        cJSON_AddStringToObject(md, "meta", text);
        s = pinas_safetensors_save(ctx, path, ts, md);
        cJSON_Delete(md);
    }
    free(text);
    cJSON_Delete(meta);
    pinas_tensors_free(ts);
    return s;
}

pinas_status pinas_checkpoint_load(pinas_ctx *ctx, const char *path, pinas_tnet *t, pinas_optim *const *optims, int n_optims, int *epoch,
                                   cJSON **extra)
{
    if (extra) *extra = NULL;
    pinas_tensors *ts = NULL;
    pinas_status s = pinas_safetensors_load(ctx, path, &ts);
    if (s) return s;
    pinas_tensor_view v;
    cJSON *meta = NULL;
    if (pinas_tensors_find(ts, "__meta", &v) || v.dtype != PINAS_U8) {
        s = pinas_error(ctx, PINAS_EFORMAT, "%s: not a pinas checkpoint (no __meta tensor)", path);
        goto done;
    }
    char *text = malloc(v.nbytes + 1);
    if (!text) {
        s = pinas_error(ctx, PINAS_ENOMEM, "out of memory");
        goto done;
    }
    memcpy(text, v.data, v.nbytes);
    text[v.nbytes] = 0;
    s = pinas_json_parse(ctx, text, path, &meta);
    free(text);
    if (s) goto done;
    const cJSON *fmt = cJSON_GetObjectItemCaseSensitive(meta, "format");
    if (!cJSON_IsString(fmt) || strcmp(fmt->valuestring, CKPT_FORMAT) != 0) {
        s = pinas_error(ctx, PINAS_EFORMAT, "%s: format is not %s", path, CKPT_FORMAT);
        goto done;
    }
    char hash[24];
    snprintf(hash, sizeof hash, "%016" PRIx64, pinas_net_hash(pinas_tnet_net(t)));
    const cJSON *h = cJSON_GetObjectItemCaseSensitive(meta, "net_hash"), *nm = cJSON_GetObjectItemCaseSensitive(meta, "net");
    if (!cJSON_IsString(h) || strcmp(h->valuestring, hash) != 0) {
        s = pinas_error(ctx, PINAS_EINVAL, "%s: written for net %s (hash %s), but this run trains net %s (hash %s)", path,
                        cJSON_IsString(nm) ? nm->valuestring : "?", cJSON_IsString(h) ? h->valuestring : "?",
                        pinas_net_name(pinas_tnet_net(t)), hash);
        goto done;
    }
    const cJSON *no = cJSON_GetObjectItemCaseSensitive(meta, "optimizers"), *ep = cJSON_GetObjectItemCaseSensitive(meta, "epoch");
    if (!cJSON_IsNumber(no) || no->valueint != n_optims || !cJSON_IsNumber(ep)) {
        s = pinas_error(ctx, PINAS_EINVAL, "%s: holds %d optimizer states, this run has %d", path, cJSON_IsNumber(no) ? no->valueint : -1,
                        n_optims);
        goto done;
    }
    if ((s = pinas_tnet_load(ctx, t, ts, 1))) {
        pinas_error_prefix(ctx, s, "%s", path);
        goto done;
    }
    if (pinas_tensors_find(ts, "__gen", &v) || v.dtype != PINAS_U8) {
        s = pinas_error(ctx, PINAS_EFORMAT, "%s: no generator state", path);
        goto done;
    }
    if (pt_gen_set_state(tr_tnet_gen(t), v.data, v.nbytes)) {
        s = pinas_torch_error(ctx, path);
        goto done;
    }
    for (int k = 0; k < n_optims; k++) {
        char name[32];
        snprintf(name, sizeof name, "__optim.%d", k);
        if (pinas_tensors_find(ts, name, &v) || v.dtype != PINAS_U8) {
            s = pinas_error(ctx, PINAS_EFORMAT, "%s: no tensor %s", path, name);
            goto done;
        }
        if (pt_optim_load(tr_optim_handle(optims[k]), v.data, v.nbytes)) {
            s = pinas_error(ctx, PINAS_EFORMAT, "%s: optimizer %d: %s", path, k, pt_errmsg());
            goto done;
        }
    }
    *epoch = ep->valueint;
    if (extra) {
        const cJSON *e = cJSON_GetObjectItemCaseSensitive(meta, "extra");
        *extra = e ? cJSON_Duplicate(e, 1) : NULL;
    }
done:
    cJSON_Delete(meta);
    pinas_tensors_free(ts);
    return s;
}
