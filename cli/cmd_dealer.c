/* `pinas dealer`: writes each party's preprocessing file for a model (the dealer never sees the weights). */
#define _GNU_SOURCE
#include "cli.h"
#include "pinas_bitcut.h"
#include "pinas_mpc.h"

#include <openssl/crypto.h>
#include <stdlib.h>
#include <string.h>

static void help(void)
{
    printf("usage: pinas dealer MODEL_DIR --batch N --out DIR (--dealer-key FILE | --new-dealer-key FILE)\n"
           "                    [--frac-bits F] [--cmp-bits B] [--layer-bits ID=B ...] [--threads T] [--json]\n\n"
           "Generates the input-independent preprocessing of a private inference for batches of N samples\n"
           "and writes DIR/server.prep (party 0) and DIR/client.prep (party 1), mode 0600. Each file holds\n"
           "a magic, the format version, the model hash (architecture + fixed-point parameters), a session\n"
           "id shared by the pair, the batch, per-layer sections and an HMAC-SHA256 tag under the dealer key:\n"
           "both parties hold the key (`pinas party --dealer-key FILE`) and refuse a file without a valid tag,\n"
           "so nobody without the key can forge or alter preprocessing. Only MODEL_DIR/net.json\n"
           "and meta.json are read: the dealer does not need the weights. Prints the size of each party's\n"
           "material per layer. A pair serves exactly one inference.\n\n"
           "The files (format 4) are written node by node: the dealer generates both parties' material of one\n"
           "layer, appends it to the two files and drops it, so its memory is the largest layer's, not the\n"
           "files'; each layer's section carries its own tag, so that a party reads and verifies one layer at a\n"
           "time. Both files are renamed into place at the end (neither, if either fails).\n\n"
           "The conv/linear weight mask A is per model: its seed is kept in DIR/<model hash>.mask (0600) and\n"
           "reused by every later run with the same DIR, so the server's masked weights W - A stay the same and\n"
           "a client with `pinas party --mask-cache` receives them once per model. The server's file holds the\n"
           "seed instead of A.\n\n"
           "  --batch N          samples per inference (required)\n"
           "  --out DIR          output directory (created)\n"
           "  --dealer-key FILE  the key that authenticates the files (64 hex digits, mode 0600)\n"
           "  --new-dealer-key FILE  write a fresh key to FILE (0600; refused if FILE exists) and use it; give\n"
           "                     it to both parties over a channel you trust\n"
           "  --frac-bits F      fixed-point fractional bits (default: meta.json mpc.frac_bits, else 16)\n"
           "  --cmp-bits B       bits compared by ReLU/maxpool/patch gates, top B of 64 (default: meta.json\n"
           "                     mpc.cmp_bits, else 64 = exact)\n"
           "  --layer-bits ID=B[@H]  comparison bits for node ID only, optionally with the window's top H\n"
           "                     (bits [H-B, H); default 64); repeatable; overrides meta.json mpc.layers\n"
           "                     (the per-slot windows of a bit-cut model, used by default unless --cmp-bits)\n"
           "  --new-mask         draw a new weight mask (replaces DIR/<model hash>.mask)\n"
           "  --threads T        key generation threads (default 1; the files are the same for every T)\n"
           "  --json             print {\"layers\": [{\"id\", \"server_bytes\", \"client_bytes\"}], \"totals\", \"seconds\",\n"
           "                     \"threads\", \"peak_rss_bytes\"}\n");
}

typedef struct {
    const char *dir, *out, *key, *new_key;
    long batch, frac_bits, cmp_bits; /* -1: meta.json's, else the default */
    long threads;
    int json, new_mask, n_bits;
    pinas_mpc_layer_bits *bits;      /* meta.json's mpc.layers, then --layer-bits (ids point into ids or argv) */
    char **ids;                      /* n_ids copies of meta.json's ids */
    int n_ids;
} dealer_args;

/* Returns 0, or the exit status of a usage error. */
static int parse_args(int argc, char **argv, dealer_args *o)
{
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--batch") && i + 1 < argc) {
            if (cli_parse_int("dealer", "--batch", argv[++i], 1, 1 << 20, &o->batch)) return 2;
        } else if (!strcmp(argv[i], "--out") && i + 1 < argc) {
            o->out = argv[++i];
        } else if (!strcmp(argv[i], "--dealer-key") && i + 1 < argc) {
            o->key = argv[++i];
        } else if (!strcmp(argv[i], "--new-dealer-key") && i + 1 < argc) {
            o->new_key = argv[++i];
        } else if (!strcmp(argv[i], "--frac-bits") && i + 1 < argc) {
            if (cli_parse_int("dealer", "--frac-bits", argv[++i], PINAS_FRAC_BITS_MIN, PINAS_FRAC_BITS_MAX, &o->frac_bits)) return 2;
        } else if (!strcmp(argv[i], "--cmp-bits") && i + 1 < argc) {
            if (cli_parse_int("dealer", "--cmp-bits", argv[++i], PINAS_CMP_BITS_MIN, PINAS_CMP_BITS_MAX, &o->cmp_bits)) return 2;
        } else if (!strcmp(argv[i], "--layer-bits") && i + 1 < argc) {
            char *v = argv[++i], *eq = strrchr(v, '='), *at = eq ? strchr(eq, '@') : NULL;
            long b = 0, h = 64;
            if (!eq || eq == v) return cli_usage_error("dealer", "--layer-bits: expected ID=BITS[@HIGH], got \"%s\"", v);
            if (at) { /* ID=B@H: the window's top bit too */
                *at = 0;
                if (cli_parse_int("dealer", "--layer-bits (@HIGH)", at + 1, PINAS_CMP_BITS_MIN, 64, &h)) return 2;
            }
            if (cli_parse_int("dealer", "--layer-bits", eq + 1, PINAS_CMP_BITS_MIN, PINAS_CMP_BITS_MAX, &b)) return 2;
            if (h < b) return cli_usage_error("dealer", "--layer-bits %s: HIGH %ld is below BITS %ld", v, h, b);
            *eq = 0;
            o->bits[o->n_bits].id = v;
            o->bits[o->n_bits].cmp_high = (int)h;
            o->bits[o->n_bits++].cmp_bits = (int)b;
        } else if (!strcmp(argv[i], "--threads") && i + 1 < argc) {
            if (cli_parse_int("dealer", "--threads", argv[++i], 1, PINAS_MPC_MAX_THREADS, &o->threads)) return 2;
        } else if (!strcmp(argv[i], "--json")) {
            o->json = 1;
        } else if (!strcmp(argv[i], "--new-mask")) {
            o->new_mask = 1;
        } else if (argv[i][0] == '-') {
            return cli_usage_error("dealer", "unknown option %s", argv[i]);
        } else if (!o->dir) {
            o->dir = argv[i];
        } else {
            return cli_usage_error("dealer", "unexpected argument %s", argv[i]);
        }
    }
    if (!o->dir) return cli_usage_error("dealer", "missing MODEL_DIR");
    if (!o->batch) return cli_usage_error("dealer", "missing --batch N");
    if (!o->out) return cli_usage_error("dealer", "missing --out DIR");
    if (!o->key == !o->new_key)
        return cli_usage_error("dealer", "give exactly one of --dealer-key FILE (an existing key) and --new-dealer-key "
                                         "FILE (make one): the parties accept only files authenticated by their key");
    return 0;
}

/* The per-layer sizes of both files, as a table or JSON. */
static void print_sizes(const dealer_args *o, const pinas_net *net, const pinas_mpc_params *p, const pinas_mpc_prep *p0,
                        const pinas_mpc_prep *p1, const char *f0, const char *f1, double gen, double total)
{
    cJSON *j = cJSON_CreateObject(), *ls = cJSON_AddArrayToObject(j, "layers");
    if (!o->json) printf("%-24s %16s %16s\n", "layer", "server bytes", "client bytes");
    for (int i = 1; i < pinas_net_n_nodes(net); i++) {
        uint64_t a = pinas_mpc_prep_node_bytes(p0, i), b = pinas_mpc_prep_node_bytes(p1, i);
        if (!a && !b) continue;
        const char *id = pinas_net_node(net, i)->id;
        if (o->json) {
            cJSON *l = cJSON_CreateObject();
            cJSON_AddStringToObject(l, "id", id);
            cJSON_AddNumberToObject(l, "server_bytes", (double)a);
            cJSON_AddNumberToObject(l, "client_bytes", (double)b);
            cJSON_AddItemToArray(ls, l);
        } else {
            printf("%-24s %16llu %16llu\n", id, (unsigned long long)a, (unsigned long long)b);
        }
    }
    uint64_t ta = pinas_mpc_prep_total_bytes(p0), tb = pinas_mpc_prep_total_bytes(p1);
    if (o->json) {
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
        cJSON_AddNumberToObject(j, "threads", p->threads);
        cJSON_AddNumberToObject(j, "peak_rss_bytes", (double)pinas_mpc_peak_rss());
        cli_print_json(j);
    } else {
        printf("%-24s %16llu %16llu\n", "total", (unsigned long long)ta, (unsigned long long)tb);
        printf("wrote %s and %s (batch %ld, frac_bits %d, cmp_bits %d, weight mask %016llx) in %.2f s (generation %.2f s)\n",
               f0, f1, o->batch, p->frac_bits, p->cmp_bits, (unsigned long long)pinas_mpc_prep_mask_id(p0), total, gen);
    }
    cJSON_Delete(j);
}

/* Deals with the model's weight mask and writes both files; prints the sizes. */
static pinas_status deal_and_save(pinas_ctx *ctx, const dealer_args *o, const pinas_net *net, const pinas_mpc_params *p)
{
    pinas_mpc_prep *p0 = NULL, *p1 = NULL;
    pinas_mpc_mask *mask = NULL;
    uint8_t key[PINAS_MPC_DEALER_KEY_BYTES];
    pinas_status s = PINAS_OK;
    if (o->new_key && pinas_path_exists(o->new_key))
        s = pinas_error(ctx, PINAS_EINVAL, "--new-dealer-key %s: the file exists (pass it as --dealer-key to reuse it)",
                        o->new_key);
    else if (o->new_key)
        s = pinas_mpc_dealer_keygen(ctx, o->new_key);
    if (!s) s = pinas_mpc_dealer_key_load(ctx, o->new_key ? o->new_key : o->key, key);
    if (!s) s = pinas_mkdir_p(ctx, o->out);
    if (!s) s = pinas_mpc_mask_open(ctx, o->out, pinas_mpc_arch_hash(net, p), o->new_mask, &mask);
    if (s == PINAS_EFORMAT) { /* a mask file of another model */
        char m[1024];
        snprintf(m, sizeof m, "%s", pinas_errmsg(ctx));
        pinas_error(ctx, s, "%s (use --new-mask to replace it)", m);
    }
    double t0 = pinas_now();
    pinas_mpc_deal_opts opts = {.layer_bits = o->bits, .n_layer_bits = o->n_bits, .mask = mask};
    char *f0 = pinas_path_join(o->out, "server.prep"), *f1 = pinas_path_join(o->out, "client.prep");
    if (!s && (!f0 || !f1)) s = pinas_error(ctx, PINAS_ENOMEM, "out of memory");
    /* streamed: one layer's material at a time, written as it is made */
    if (!s) s = pinas_mpc_deal_files(ctx, net, p, &opts, f0, f1, key, &p0, &p1);
    double gen = p0 ? pinas_mpc_prep_gen_seconds(p0) : 0;
    pinas_mpc_mask_free(mask);
    OPENSSL_cleanse(key, sizeof key);
    double total = pinas_now() - t0;
    if (!s) print_sizes(o, net, p, p0, p1, f0, f1, gen, total);
    pinas_mpc_prep_free(p0);
    pinas_mpc_prep_free(p1);
    free(f0);
    free(f1);
    return s;
}

/* A bit-cut model's per-slot windows (meta.json mpc.layers) go first in o->bits, so that --layer-bits
 * entries, applied after them, override them. The ids are copied into o->ids. */
static pinas_status meta_windows(pinas_ctx *ctx, dealer_args *o, const pinas_net *net)
{
    char *mp = pinas_path_join(o->dir, "meta.json");
    pinas_model_meta meta;
    pinas_model_meta_init(&meta);
    pinas_status s = mp && pinas_path_exists(mp) ? pinas_model_meta_read(ctx, mp, net, &meta) : PINAS_OK;
    pinas_mpc_layer_bits *lb = NULL;
    int n = s ? 0 : pinas_mpc_layer_bits_from_meta(&meta, &lb);
    pinas_mpc_layer_bits *all = n > 0 ? calloc((size_t)(n + o->n_bits), sizeof *all) : NULL;
    o->ids = n > 0 ? calloc((size_t)n, sizeof *o->ids) : NULL;
    if (n < 0 || (n > 0 && (!all || !o->ids))) s = pinas_error(ctx, PINAS_ENOMEM, "out of memory");
    for (int i = 0; !s && i < n; i++) {
        all[i] = lb[i];
        if (!(o->ids[o->n_ids++] = pinas_strdup(lb[i].id))) s = pinas_error(ctx, PINAS_ENOMEM, "out of memory");
        all[i].id = o->ids[i];
    }
    if (!s && n > 0) {
        memcpy(all + n, o->bits, sizeof *all * (size_t)o->n_bits);
        free(o->bits);
        o->bits = all;
        o->n_bits += n;
        all = NULL;
    }
    free(all);
    free(lb);
    free(mp);
    pinas_model_meta_free(&meta);
    return s;
}

int pinas_cmd_dealer(pinas_ctx *ctx, int argc, char **argv)
{
    if (cli_wants_help(argc, argv)) {
        help();
        return 0;
    }
    dealer_args o = {.frac_bits = -1, .cmp_bits = -1, .bits = calloc((size_t)argc, sizeof *o.bits)};
    if (!o.bits) return 1;
    int rc = parse_args(argc, argv, &o);
    if (rc) {
        free(o.bits);
        return rc;
    }
    pinas_net *net = NULL;
    pinas_mpc_params p;
    pinas_mpc_params_default(&p);
    pinas_status s = pinas_mpc_arch_load(ctx, o.dir, &net, &p);
    if (!s && o.cmp_bits <= 0) s = meta_windows(ctx, &o, net);
    if (o.frac_bits > 0) p.frac_bits = (int)o.frac_bits;
    if (o.cmp_bits > 0) p.cmp_bits = (int)o.cmp_bits;
    p.batch = (int)o.batch;
    p.threads = o.threads > 0 ? (int)o.threads : 1;
    if (!s) s = deal_and_save(ctx, &o, net, &p);
    pinas_net_free(net);
    free(o.bits);
    for (int i = 0; i < o.n_ids; i++) free(o.ids[i]);
    free(o.ids);
    return s ? cli_fail(ctx) : 0;
}
