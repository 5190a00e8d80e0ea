/* `pinas dealer`: writes each party's preprocessing file for a model (the dealer never sees the weights). */
#define _GNU_SOURCE
#include "cli.h"
#include "pinas_mpc.h"

#include <stdlib.h>
#include <string.h>

static void help(void)
{
    printf("usage: pinas dealer MODEL_DIR --batch N --out DIR [--frac-bits F] [--cmp-bits B]\n"
           "                    [--layer-bits ID=B ...] [--json]\n\n"
           "Generates the input-independent preprocessing of a private inference for batches of N samples\n"
           "and writes DIR/server.prep (party 0) and DIR/client.prep (party 1), mode 0600. Each file holds\n"
           "a magic, the format version, the model hash (architecture + fixed-point parameters), a session\n"
           "id shared by the pair, the batch, per-layer sections and a SHA-256 checksum. Only MODEL_DIR/net.json\n"
           "and meta.json are read: the dealer does not need the weights. Prints the size of each party's\n"
           "material per layer. A pair serves exactly one inference.\n\n"
           "The conv/linear weight mask A is per model: its seed is kept in DIR/<model hash>.mask (0600) and\n"
           "reused by every later run with the same DIR, so the server's masked weights W - A stay the same and\n"
           "a client with `pinas party --mask-cache` receives them once per model. The server's file holds the\n"
           "seed instead of A.\n\n"
           "  --batch N          samples per inference (required)\n"
           "  --out DIR          output directory (created)\n"
           "  --frac-bits F      fixed-point fractional bits (default: meta.json mpc.frac_bits, else 16)\n"
           "  --cmp-bits B       bits compared by ReLU/maxpool/patch gates, top B of 64 (default: meta.json\n"
           "                     mpc.cmp_bits, else 64 = exact)\n"
           "  --layer-bits ID=B  comparison bits for node ID only (repeatable)\n"
           "  --new-mask         draw a new weight mask (replaces DIR/<model hash>.mask)\n"
           "  --json             print {\"layers\": [{\"id\", \"server_bytes\", \"client_bytes\"}], \"totals\", \"seconds\"}\n");
}

/* Reads MODEL_DIR's net.json and meta.json mpc parameters. Shared with `pinas party` and `pinas infer`. */
int mpc_cli_load_arch(pinas_ctx *ctx, const char *dir, pinas_net **net, pinas_mpc_params *p);
int mpc_cli_load_arch(pinas_ctx *ctx, const char *dir, pinas_net **net, pinas_mpc_params *p)
{
    char *np = pinas_path_join(dir, "net.json"), *mp = pinas_path_join(dir, "meta.json");
    cJSON *meta = NULL;
    pinas_status s = pinas_net_load(ctx, np, net);
    if (!s && pinas_path_exists(mp)) {
        s = pinas_json_load(ctx, mp, &meta);
        if (!s) s = pinas_mpc_params_from_meta(ctx, meta, mp, p);
    }
    if (s && *net) {
        pinas_net_free(*net);
        *net = NULL;
    }
    cJSON_Delete(meta);
    free(np);
    free(mp);
    return s;
}

/* The per-model weight-mask seed: "PINASMSK" | u64 model hash | seed[16], mode 0600. */
static pinas_status load_or_make_mask(pinas_ctx *ctx, const char *path, uint64_t hash, int fresh, uint8_t seed[16])
{
    char *buf = NULL;
    size_t len = 0;
    if (!fresh && pinas_path_exists(path)) {
        pinas_status s = pinas_file_read(ctx, path, &buf, &len);
        if (s) return s;
        uint64_t h = 0;
        if (len == 32) memcpy(&h, buf + 8, 8);
        if (len != 32 || memcmp(buf, "PINASMSK", 8) != 0 || h != hash) {
            free(buf);
            return pinas_error(ctx, PINAS_EFORMAT, "%s: not a weight-mask file of this model (use --new-mask to replace it)",
                               path);
        }
        memcpy(seed, buf + 16, 16);
        memset(buf, 0, len);
        free(buf);
        return PINAS_OK;
    }
    uint8_t f[32];
    memcpy(f, "PINASMSK", 8);
    memcpy(f + 8, &hash, 8);
    pinas_status s = pinas_os_random(ctx, f + 16, 16);
    if (!s) s = pinas_file_write_atomic(ctx, path, f, sizeof f, 0600);
    if (!s) memcpy(seed, f + 16, 16);
    memset(f, 0, sizeof f);
    return s;
}

int pinas_cmd_dealer(pinas_ctx *ctx, int argc, char **argv)
{
    if (cli_wants_help(argc, argv)) {
        help();
        return 0;
    }
    const char *dir = NULL, *out = NULL;
    long batch = 0, fb = -1, cb = -1;
    int json = 0, nb = 0, new_mask = 0;
    pinas_mpc_layer_bits *bits = calloc((size_t)argc, sizeof *bits);
    if (!bits) return 1;
    int rc = 0;
    for (int i = 1; i < argc && !rc; i++) {
        if (!strcmp(argv[i], "--batch") && i + 1 < argc) rc = cli_parse_int("dealer", "--batch", argv[++i], 1, 1 << 20, &batch) ? 2 : 0;
        else if (!strcmp(argv[i], "--out") && i + 1 < argc) out = argv[++i];
        else if (!strcmp(argv[i], "--frac-bits") && i + 1 < argc) rc = cli_parse_int("dealer", "--frac-bits", argv[++i], 4, 30, &fb) ? 2 : 0;
        else if (!strcmp(argv[i], "--cmp-bits") && i + 1 < argc) rc = cli_parse_int("dealer", "--cmp-bits", argv[++i], 8, 64, &cb) ? 2 : 0;
        else if (!strcmp(argv[i], "--layer-bits") && i + 1 < argc) {
            char *v = argv[++i], *eq = strrchr(v, '=');
            long b = 0;
            if (!eq || eq == v) rc = cli_usage_error("dealer", "--layer-bits: expected ID=BITS, got \"%s\"", v);
            else if (cli_parse_int("dealer", "--layer-bits", eq + 1, 8, 64, &b)) rc = 2;
            else {
                *eq = 0;
                bits[nb].id = v;
                bits[nb++].cmp_bits = (int)b;
            }
        } else if (!strcmp(argv[i], "--json")) json = 1;
        else if (!strcmp(argv[i], "--new-mask")) new_mask = 1;
        else if (argv[i][0] == '-') rc = cli_usage_error("dealer", "unknown option %s", argv[i]);
        else if (!dir) dir = argv[i];
        else rc = cli_usage_error("dealer", "unexpected argument %s", argv[i]);
    }
    if (!rc && !dir) rc = cli_usage_error("dealer", "missing MODEL_DIR");
    if (!rc && !batch) rc = cli_usage_error("dealer", "missing --batch N");
    if (!rc && !out) rc = cli_usage_error("dealer", "missing --out DIR");
    if (rc) {
        free(bits);
        return rc;
    }
    pinas_net *net = NULL;
    pinas_mpc_params p;
    pinas_mpc_params_default(&p);
    if (mpc_cli_load_arch(ctx, dir, &net, &p)) {
        free(bits);
        return cli_fail(ctx);
    }
    if (fb > 0) p.frac_bits = (int)fb;
    if (cb > 0) p.cmp_bits = (int)cb;
    p.batch = (int)batch;
    pinas_mpc_prep *p0 = NULL, *p1 = NULL;
    uint8_t seed[16];
    char *mpath = pinas_strfmt("%s/%016llx.mask", out, (unsigned long long)pinas_mpc_arch_hash(net, &p));
    pinas_status s = pinas_mkdir_p(ctx, out);
    if (!s) s = load_or_make_mask(ctx, mpath, pinas_mpc_arch_hash(net, &p), new_mask, seed);
    double t0 = pinas_now();
    if (!s) s = pinas_mpc_deal_masked(ctx, net, &p, bits, nb, seed, &p0, &p1);
    double gen = pinas_now() - t0;
    memset(seed, 0, sizeof seed);
    char *f0 = pinas_path_join(out, "server.prep"), *f1 = pinas_path_join(out, "client.prep");
    if (!s) s = pinas_mpc_prep_save(ctx, p0, f0);
    if (!s) s = pinas_mpc_prep_save(ctx, p1, f1);
    double total = pinas_now() - t0;
    if (!s) {
        cJSON *j = cJSON_CreateObject(), *ls = cJSON_AddArrayToObject(j, "layers");
        if (!json)
            printf("%-24s %16s %16s\n", "layer", "server bytes", "client bytes");
        for (int i = 1; i < pinas_net_n_nodes(net); i++) {
            uint64_t a = pinas_mpc_prep_node_bytes(p0, i), b = pinas_mpc_prep_node_bytes(p1, i);
            if (!a && !b) continue;
            const char *id = pinas_net_node(net, i)->id;
            if (json) {
                cJSON *o = cJSON_CreateObject();
                cJSON_AddStringToObject(o, "id", id);
                cJSON_AddNumberToObject(o, "server_bytes", (double)a);
                cJSON_AddNumberToObject(o, "client_bytes", (double)b);
                cJSON_AddItemToArray(ls, o);
            } else {
                printf("%-24s %16llu %16llu\n", id, (unsigned long long)a, (unsigned long long)b);
            }
        }
        uint64_t ta = pinas_mpc_prep_total_bytes(p0), tb = pinas_mpc_prep_total_bytes(p1);
        if (json) {
            cJSON *t = cJSON_AddObjectToObject(j, "totals");
            cJSON_AddNumberToObject(t, "server_bytes", (double)ta);
            cJSON_AddNumberToObject(t, "client_bytes", (double)tb);
            cJSON_AddNumberToObject(j, "generate_seconds", gen);
            cJSON_AddNumberToObject(j, "seconds", total);
            cJSON_AddStringToObject(j, "server_file", f0);
            cJSON_AddStringToObject(j, "client_file", f1);
            char id[20];
            snprintf(id, sizeof id, "%016llx", (unsigned long long)pinas_mpc_prep_mask_id(p0));
            cJSON_AddStringToObject(j, "weight_mask_id", id);
            cli_print_json(j);
        } else {
            printf("%-24s %16llu %16llu\n", "total", (unsigned long long)ta, (unsigned long long)tb);
            printf("wrote %s and %s (batch %ld, frac_bits %d, cmp_bits %d, weight mask %016llx) in %.2f s (generation %.2f s)\n",
                   f0, f1, batch, p.frac_bits, p.cmp_bits, (unsigned long long)pinas_mpc_prep_mask_id(p0), total, gen);
        }
        cJSON_Delete(j);
    }
    pinas_mpc_prep_free(p0);
    pinas_mpc_prep_free(p1);
    pinas_net_free(net);
    free(f0);
    free(f1);
    free(mpath);
    free(bits);
    return s ? cli_fail(ctx) : 0;
}
