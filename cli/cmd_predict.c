/* `pinas predict`: per-node 2PC latency of a decided net or model dir, or the LUT of a search space. */
#define _GNU_SOURCE
#include "cli.h"
#include "pinas_bitcut.h"
#include "pinas_config.h"
#include "pinas_cost.h"
#include "pinas_e2e.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static void help(void)
{
    printf("usage: pinas predict (NET.json | MODEL_DIR) [--hw PROFILE] [--net PROFILE] [--json]\n"
           "              [--client-storage SIZE (--rate N/min | --trace FILE) [--inferences N] [--seed S]]\n"
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
           "  --cmp-bits C      comparison bits of ReLU/DReLU/maxpool (default: meta.json, else 64; a bit-cut\n"
           "                    model's per-slot windows, meta.json mpc.layers, unless C is given)\n"
           "  --lut OUT.json    write the LUT of a space (or of a decided net) instead of the table\n"
           "  --json            print the prediction as JSON {hw, net, mpc, nodes: [...], total}\n\n"
           "End-to-end latency under a stream of inferences (latency_model/pinas_e2e.h has the model): the\n"
           "client stores preprocessing for floor(SIZE / its bytes per inference) inferences, a dealer makes\n"
           "one inference's set in the offline compute time and ships it (to both parties in parallel) in\n"
           "max(bytes) / bandwidth + RTT, the server runs one online phase at a time. A seeded simulation\n"
           "gives mean, p50, p99 latency (arrival -> logits), the share that waited for preprocessing and the\n"
           "storage used (JSON: \"e2e\"). total = online + offline compute + transfer.\n"
           "  --client-storage SIZE  client storage budget: 2GB, 512MiB, 100000 (B, KB, MB, GB, KiB, MiB, GiB; inf)\n"
           "  --rate R          Poisson arrivals: 6/min, 0.5/s, 100/h\n"
           "  --trace FILE      arrival times in seconds, one per line (instead of --rate)\n"
           "  --inferences N    inferences simulated (default %d, the first 10%% left out as warm-up)\n"
           "  --seed S          seed of the arrival process (default 1)\n"
           "Profiles are read from %s (override with $PINAS_PROFILE_DIR).\n",
           PINAS_E2E_DEFAULT_N, pinas_cost_profile_dir());
}

/* Loads NET.json or MODEL_DIR/net.json; a model dir's meta.json supplies the fixed-point parameters
 * and, for a bit-cut model, the per-slot windows (mpc.layers, kept in *meta: the table borrows its ids). */
static pinas_status load_input(pinas_ctx *ctx, const char *path, pinas_net **net, pinas_mpc_params *p, pinas_model_meta *meta)
{
    struct stat st;
    if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode)) return pinas_net_load(ctx, path, net);
    char *np = pinas_path_join(path, "net.json"), *mp = pinas_path_join(path, "meta.json");
    pinas_status s = np && mp ? pinas_net_load(ctx, np, net) : pinas_error(ctx, PINAS_ENOMEM, "out of memory");
    if (!s && pinas_path_exists(mp)) {
        s = pinas_model_meta_read(ctx, mp, *net, meta);
        if (!s) {
            p->frac_bits = meta->frac_bits;
            p->cmp_bits = meta->cmp_bits;
        }
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

/* The --client-storage/--rate/--trace view: NULL texts when not asked for. */
typedef struct {
    const char *storage, *rate, *trace;
    long n, seed;
    double storage_bytes, rate_per_s;
    double *times; /* the trace, loaded; owned */
    long n_times;
} e2e_opts;

/* Parses the sizes and loads the trace before anything is priced; the errors name the option. */
static pinas_status e2e_prepare(pinas_ctx *ctx, e2e_opts *eo)
{
    pinas_status s = pinas_e2e_parse_bytes(ctx, "--client-storage", eo->storage, &eo->storage_bytes);
    if (!s && eo->rate) s = pinas_e2e_parse_rate(ctx, "--rate", eo->rate, &eo->rate_per_s);
    if (!s && eo->trace) s = pinas_e2e_trace_load(ctx, eo->trace, &eo->times, &eo->n_times);
    return s;
}

/* Simulates the stream for the predicted net; adds "e2e" to o (JSON) or prints it. */
static pinas_status run_e2e(pinas_ctx *ctx, const e2e_opts *eo, const pinas_cost_prediction *pr, const pinas_cost_link *link, cJSON *o)
{
    pinas_e2e_params ep;
    pinas_e2e_params_default(&ep);
    pinas_e2e_costs_from_prediction(pr, link, &ep.costs);
    ep.n = eo->n;
    ep.seed = (uint64_t)eo->seed;
    ep.storage_bytes = eo->storage_bytes;
    if (eo->rate) ep.rate_per_s = eo->rate_per_s;
    ep.trace = eo->times;
    ep.n_trace = eo->n_times;
    pinas_e2e_result r;
    pinas_status s = pinas_e2e_simulate(ctx, &ep, &r);
    if (s) return s;
    double total = ep.costs.online_s + ep.costs.gen_s + ep.costs.xfer_s;
    if (o) {
        cJSON *e = cJSON_AddObjectToObject(o, "e2e");
        cJSON_AddNumberToObject(e, "client_storage_bytes", isfinite(ep.storage_bytes) ? ep.storage_bytes : -1);
        if (eo->trace) cJSON_AddStringToObject(e, "trace", eo->trace);
        else cJSON_AddNumberToObject(e, "rate_per_min", ep.rate_per_s * 60);
        cJSON_AddNumberToObject(e, "seed", (double)eo->seed);
        cJSON_AddItemToObject(e, "costs", pinas_e2e_costs_to_json(&ep.costs));
        cJSON_AddNumberToObject(e, "total_ms", total * 1e3);
        cJSON_AddItemToObject(e, "result", pinas_e2e_result_to_json(&r));
        return PINAS_OK;
    }
    printf("\nper inference: online %.3f ms, dealer compute %.3f ms, transfer %.3f ms (client %.1f KB, server %.1f KB): total %.3f ms\n",
           ep.costs.online_s * 1e3, ep.costs.gen_s * 1e3, ep.costs.xfer_s * 1e3, ep.costs.client_bytes / 1e3, ep.costs.server_bytes / 1e3,
           total * 1e3);
    printf("end to end (%s, storage %s = %ld inferences, %ld simulated, %ld measured): mean %.3f ms, p50 %.3f ms, p99 %.3f ms;\n"
           "  %.1f%% waited for preprocessing; storage used %.1f KB on average, %.1f KB at most; server utilisation %.3f\n",
           eo->trace ? eo->trace : eo->rate, eo->storage, r.capacity, r.n, r.n_measured, r.mean_s * 1e3, r.p50_s * 1e3, r.p99_s * 1e3,
           100 * r.waited_share, r.storage_mean_bytes / 1e3, r.storage_max_bytes / 1e3, r.server_util);
    return PINAS_OK;
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
    e2e_opts eo = {.n = PINAS_E2E_DEFAULT_N, .seed = 1};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int has = i + 1 < argc;
        if (strcmp(a, "--json") == 0) json = 1;
        else if (strcmp(a, "--hw") == 0 && has) hw_name = argv[++i];
        else if (strcmp(a, "--net") == 0 && has) net_name = argv[++i];
        else if (strcmp(a, "--lut") == 0 && has) lut_out = argv[++i];
        else if (strcmp(a, "--client-storage") == 0 && has) eo.storage = argv[++i];
        else if (strcmp(a, "--rate") == 0 && has) eo.rate = argv[++i];
        else if (strcmp(a, "--trace") == 0 && has) eo.trace = argv[++i];
        else if (strcmp(a, "--inferences") == 0 && has) {
            if (cli_parse_int("predict", a, argv[++i], 1, 100000000, &eo.n)) return 2;
        } else if (strcmp(a, "--seed") == 0 && has) {
            if (cli_parse_int("predict", a, argv[++i], 0, 0x7fffffff, &eo.seed)) return 2;
        }
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
    if ((eo.rate || eo.trace) && !eo.storage) return cli_usage_error("predict", "--rate/--trace need --client-storage SIZE");
    if (eo.storage && !eo.rate == !eo.trace) return cli_usage_error("predict", "--client-storage needs one of --rate R or --trace FILE");
    if (eo.storage && lut_out) return cli_usage_error("predict", "--client-storage prices one architecture; it does not go with --lut");
    if (eo.storage && e2e_prepare(ctx, &eo)) {
        free(eo.times);
        return cli_fail(ctx);
    }
    pinas_mpc_params p;
    pinas_mpc_params_default(&p);
    pinas_net *net = NULL;
    pinas_model_meta meta;
    pinas_model_meta_init(&meta);
    pinas_mpc_layer_bits *lb = NULL;
    if (load_input(ctx, path, &net, &p, &meta)) {
        free(eo.times);
        return cli_fail(ctx);
    }
    int n_lb = cb > 0 ? 0 : pinas_mpc_layer_bits_from_meta(&meta, &lb); /* --cmp-bits: every slot */
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
    char other[512];
    if (pinas_machine_mismatch(pinas_cost_hw_name(hw), pinas_cost_hw_cpu_model(hw), pinas_cost_hw_fitted(hw), other, sizeof other))
        pinas_warn(ctx, "%s", other);
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
    if (n_lb < 0 || pinas_cost_predict_layers(ctx, net, hw, link, &p, lb, n_lb, &pr)) {
        rc = cli_fail(ctx);
        goto done;
    }
    if (json) {
        cJSON *o = pinas_cost_prediction_to_json(pr);
        cJSON_AddStringToObject(o, "name", pinas_net_name(net));
        if (eo.storage && run_e2e(ctx, &eo, pr, link, o)) rc = cli_fail(ctx);
        else cli_print_json(o);
        cJSON_Delete(o);
    } else {
        print_table(pr, pinas_net_name(net));
        if (n_lb > 0) printf("  with the comparison windows of %d slots (meta.json mpc.layers; --cmp-bits B for B on every slot)\n", n_lb);
        if (eo.storage && run_e2e(ctx, &eo, pr, link, NULL)) rc = cli_fail(ctx);
    }
    pinas_cost_prediction_free(pr);
done:
    free(eo.times);
    pinas_cost_hw_free(hw);
    pinas_cost_link_free(link);
    pinas_net_free(net);
    free(lb);
    pinas_model_meta_free(&meta);
    return rc;
}
