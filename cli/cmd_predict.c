/* `pinas predict`: per-node 2PC latency of a decided net or model dir, or the LUT of a search space. */
#define _GNU_SOURCE
#include "cli.h"
#include "pinas_config.h"
#include "pinas_cost.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static void help(void)
{
    printf("usage: pinas predict (NET.json | MODEL_DIR) [--hw PROFILE] [--net PROFILE] [--json]\n"
           "       pinas predict SPACE.json --lut OUT.json [--hw PROFILE] [--net PROFILE]\n\n"
           "Predicts the two-party (2PC) latency of every node of a decided architecture under a hardware\n"
           "profile and a network profile: protocol counts from the runtime's accounting (bytes per party,\n"
           "rounds, AES blocks, ring multiply-adds), then seconds:\n"
           "    online  = compute (hardware profile) + rounds x RTT + bytes / bandwidth\n"
           "    offline = dealer compute + transfer of the preprocessing material and masked weights\n"
           "The table has one row per node: compute, communication, rounds, online and offline ms, bytes\n"
           "sent per party online (server/client) and preprocessing bytes; a \"(session)\" row for what the\n"
           "session adds (handshake and setup offline, the logits the server reveals online); then the\n"
           "totals. Under the pasnet profile only act and pool slots carry latency (PASNet's loss terms).\n\n"
           "With --lut, the input may be a search space (open slots): every candidate of every open slot is\n"
           "priced once and written with the fixed cost of the other nodes to OUT.json (format pinas-lut/1,\n"
           "keyed by slot id, op and shapes, with a header naming the profiles, protocol parameters and the\n"
           "pinas version). The search reads this table.\n\n"
           "options:\n"
           "  --hw PROFILE      hardware profile: cpu, fpga-zcu104, fpga-u250, pasnet, or a path to a\n"
           "                    pinas-profile/1 JSON file (default cpu)\n"
           "  --net PROFILE     network profile: loopback, lan (1 Gbit/s, 0.5 ms RTT), wan (100 Mbit/s,\n"
           "                    40 ms RTT), or a path (default lan)\n"
           "  --batch N         samples per inference (default 1)\n"
           "  --frac-bits F     fixed-point fractional bits (default: the model's meta.json, else the runtime's)\n"
           "  --cmp-bits C      comparison bits of ReLU/DReLU/maxpool (default: meta.json, else 64)\n"
           "  --lut OUT.json    write the LUT of a space (or of a decided net) instead of the table\n"
           "  --json            print the prediction as JSON {hw, net, mpc, nodes: [...], total}\n"
           "Profiles are read from %s (override with $PINAS_PROFILE_DIR).\n",
           pinas_cost_profile_dir());
}

/* Loads NET.json or MODEL_DIR/net.json; a model dir's meta.json supplies the fixed-point parameters. */
static pinas_status load_input(pinas_ctx *ctx, const char *path, pinas_net **net, pinas_mpc_params *p)
{
    struct stat st;
    if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode)) return pinas_net_load(ctx, path, net);
    char *np = pinas_path_join(path, "net.json"), *mp = pinas_path_join(path, "meta.json");
    pinas_status s = np && mp ? pinas_net_load(ctx, np, net) : pinas_error(ctx, PINAS_ENOMEM, "out of memory");
    if (!s && pinas_path_exists(mp)) {
        pinas_model_meta meta;
        s = pinas_model_meta_read(ctx, mp, *net, &meta);
        if (!s) {
            p->frac_bits = meta.frac_bits;
            p->cmp_bits = meta.cmp_bits;
        }
        pinas_model_meta_free(&meta);
    }
    free(np);
    free(mp);
    if (s) {
        pinas_net_free(*net);
        *net = NULL;
    }
    return s;
}

static void print_table(const pinas_cost_prediction *pr, const char *name)
{
    printf("%-20s %-15s %10s %10s %7s %11s %11s %19s %19s\n", "id", "op", "compute_ms", "comm_ms", "rounds", "online_ms", "offline_ms",
           "online_KB(srv/cli)", "prep_KB(srv/cli)");
    for (int i = 0; i <= pr->n_rows; i++) {
        const pinas_cost_row *r = i < pr->n_rows ? &pr->rows[i] : &pr->total;
        if (i == pr->n_rows) printf("\n");
        char on[40], off[40];
        snprintf(on, sizeof on, "%.1f/%.1f", r->counts.online.bytes[0] / 1024.0, r->counts.online.bytes[1] / 1024.0);
        snprintf(off, sizeof off, "%.1f/%.1f", r->counts.offline.bytes[0] / 1024.0, r->counts.offline.bytes[1] / 1024.0);
        printf("%-20s %-15s %10.3f %10.3f %7llu %11.3f %11.3f %19s %19s\n", r->id, r->op, r->compute_s * 1e3, r->comm_s * 1e3,
               (unsigned long long)r->counts.online.rounds, r->online_s * 1e3, r->offline_s * 1e3, on, off);
    }
    printf("\n%s under hw %s, net %s (frac_bits %d, cmp_bits %d, batch %d): online %.3f ms, offline %.3f ms, %llu rounds\n", name, pr->hw,
           pr->link, pr->params.frac_bits, pr->params.cmp_bits, pr->params.batch, pr->total.online_s * 1e3, pr->total.offline_s * 1e3,
           (unsigned long long)pr->total.counts.online.rounds);
}

int pinas_cmd_predict(pinas_ctx *ctx, int argc, char **argv)
{
    if (cli_wants_help(argc, argv)) {
        help();
        return 0;
    }
    const char *path = NULL, *hw_name = "cpu", *net_name = "lan", *lut_out = NULL;
    long batch = 1, fb = -1, cb = -1;
    int json = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int has = i + 1 < argc;
        if (strcmp(a, "--json") == 0) json = 1;
        else if (strcmp(a, "--hw") == 0 && has) hw_name = argv[++i];
        else if (strcmp(a, "--net") == 0 && has) net_name = argv[++i];
        else if (strcmp(a, "--lut") == 0 && has) lut_out = argv[++i];
        else if (strcmp(a, "--batch") == 0 && has) {
            if (cli_parse_int("predict", a, argv[++i], 1, 1 << 20, &batch)) return 2;
        } else if (strcmp(a, "--frac-bits") == 0 && has) {
            if (cli_parse_int("predict", a, argv[++i], PINAS_FRAC_BITS_MIN, PINAS_FRAC_BITS_MAX, &fb)) return 2;
        } else if (strcmp(a, "--cmp-bits") == 0 && has) {
            if (cli_parse_int("predict", a, argv[++i], PINAS_CMP_BITS_MIN, PINAS_CMP_BITS_MAX, &cb)) return 2;
        } else if (a[0] == '-') return cli_usage_error("predict", "unknown option or missing value: %s", a);
        else if (!path) path = a;
        else return cli_usage_error("predict", "unexpected argument %s", a);
    }
    if (!path) return cli_usage_error("predict", "missing NET.json, MODEL_DIR or SPACE.json");
    pinas_mpc_params p;
    pinas_mpc_params_default(&p);
    pinas_net *net = NULL;
    if (load_input(ctx, path, &net, &p)) return cli_fail(ctx);
    p.batch = (int)batch;
    if (fb > 0) p.frac_bits = (int)fb;
    if (cb > 0) p.cmp_bits = (int)cb;
    pinas_cost_hw *hw = NULL;
    pinas_cost_link *link = NULL;
    int rc = 0;
    if (pinas_cost_hw_load(ctx, hw_name, &hw) || pinas_cost_link_load(ctx, net_name, &link)) {
        rc = cli_fail(ctx);
        goto done;
    }
    if (lut_out) {
        pinas_cost_lut *lut = NULL;
        if (pinas_cost_lut_build(ctx, net, hw, link, &p, &lut) || pinas_cost_lut_save(ctx, lut, lut_out)) {
            pinas_cost_lut_free(lut);
            rc = cli_fail(ctx);
            goto done;
        }
        int ns = pinas_cost_lut_n_slots(lut);
        double lo, hi;
        pinas_cost_lut_range(lut, &lo, &hi);
        if (json) {
            cJSON *o = cJSON_CreateObject();
            cJSON_AddStringToObject(o, "lut", lut_out);
            cJSON_AddNumberToObject(o, "slots", ns);
            cJSON_AddNumberToObject(o, "fixed_ms", pinas_cost_lut_fixed_ms(lut));
            cJSON_AddNumberToObject(o, "min_ms", lo);
            cJSON_AddNumberToObject(o, "max_ms", hi);
            cli_print_json(o);
            cJSON_Delete(o);
        } else {
            printf("wrote %s: %d open slots under hw %s, net %s; fixed %.3f ms; architectures from %.3f ms (cheapest choices) to %.3f ms\n",
                   lut_out, ns, hw_name, net_name, pinas_cost_lut_fixed_ms(lut), lo, hi);
        }
        pinas_cost_lut_free(lut);
        goto done;
    }
    pinas_cost_prediction *pr = NULL;
    if (pinas_cost_predict(ctx, net, hw, link, &p, &pr)) {
        rc = cli_fail(ctx);
        goto done;
    }
    if (json) {
        cJSON *o = pinas_cost_prediction_to_json(pr);
        cJSON_AddStringToObject(o, "name", pinas_net_name(net));
        cli_print_json(o);
        cJSON_Delete(o);
    } else {
        print_table(pr, pinas_net_name(net));
    }
    pinas_cost_prediction_free(pr);
done:
    pinas_cost_hw_free(hw);
    pinas_cost_link_free(link);
    pinas_net_free(net);
    return rc;
}
