/* `pinas party`: runs one party (server or client) of a private inference over TCP. */
#define _GNU_SOURCE
#include "cli.h"
#include "pinas_mpc.h"

#include <stdlib.h>
#include <string.h>

int mpc_cli_load_arch(pinas_ctx *ctx, const char *dir, pinas_net **net, pinas_mpc_params *p);
void mpc_cli_print_report(FILE *f, const cJSON *rep);

static void help(void)
{
    printf("usage: pinas party --role server|client --model DIR --prep FILE (--listen|--connect) HOST:PORT\n"
           "                   [--input X.safetensors] [--output LOGITS.safetensors] [--report FILE.json]\n"
           "                   [--timeout SECONDS] [--json]\n\n"
           "Runs one party of a private inference; the two parties may be on different hosts. The server\n"
           "(party 0) holds the weights (DIR must hold weights.safetensors); the client (party 1) holds the\n"
           "input and receives the logits (it reads only DIR/net.json and meta.json). Each party needs its\n"
           "own preprocessing file from `pinas dealer`; the handshake checks the protocol version, the model\n"
           "hash, the dealer session id and the batch. When the peer dies, closes, stalls beyond the timeout\n"
           "or sends garbage, the party exits 1 with a message naming the peer and the layer.\n\n"
           "  --role R          server or client\n"
           "  --model DIR       model dir (server: net.json + weights.safetensors; client: net.json)\n"
           "  --prep FILE       this party's preprocessing file\n"
           "  --listen H:P      wait for the peer on H:P (either role may listen)\n"
           "  --connect H:P     connect to the peer at H:P (retries until the timeout)\n"
           "  --input FILE      client: safetensors with tensor \"x\", F32, [batch, C, H, W] (normalised)\n"
           "  --output FILE     client: write the logits as safetensors (tensor \"logits\", F32, [batch, classes])\n"
           "  --report FILE     write this party's per-layer report as JSON\n"
           "  --mask-cache DIR  client: keep the server's masked weights W - A in DIR (0600 files, checksummed)\n"
           "                    so that they cross the network once per model and weight mask\n"
           "  --timeout S       send/receive/connect timeout in seconds (default 30)\n"
           "  --debug-delay L:MS  testing: sleep MS milliseconds before layer L (to kill a peer mid-protocol)\n"
           "  --json            print the report (client: with \"logits\" and \"classes\") as JSON\n");
}

static double num_at(const cJSON *o, const char *k, int idx)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    if (idx >= 0) v = cJSON_GetArrayItem(v, idx);
    return cJSON_IsNumber(v) ? v->valuedouble : 0;
}

/* The per-layer table: online ms, preprocessing bytes, online bytes sent per party, rounds; totals. */
void mpc_cli_print_report(FILE *f, const cJSON *rep)
{
    const cJSON *ls = cJSON_GetObjectItemCaseSensitive(rep, "layers"), *l;
    fprintf(f, "%-22s %10s %14s %14s %12s %12s %7s\n", "layer", "online ms", "prep server B", "prep client B",
            "sent server", "sent client", "rounds");
    cJSON_ArrayForEach(l, ls)
    {
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(l, "id");
        fprintf(f, "%-22s %10.2f %14.0f %14.0f %12.0f %12.0f %7.0f\n", cJSON_IsString(id) ? id->valuestring : "?",
                num_at(l, "online_ms", -1), num_at(l, "prep_bytes_server", -1), num_at(l, "prep_bytes_client", -1),
                num_at(l, "sent_bytes_server", -1), num_at(l, "sent_bytes_client", -1), num_at(l, "rounds", -1));
    }
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(rep, "totals");
    const cJSON *on = cJSON_GetObjectItemCaseSensitive(t, "online"), *off = cJSON_GetObjectItemCaseSensitive(t, "offline"),
                *su = cJSON_GetObjectItemCaseSensitive(t, "setup");
    fprintf(f, "%-22s %10.2f %14.0f %14.0f %12.0f %12.0f %7.0f\n", "total (online)", num_at(t, "online_s", -1) * 1e3,
            num_at(off, "bytes", 0), num_at(off, "bytes", 1), num_at(on, "bytes", 0), num_at(on, "bytes", 1),
            num_at(on, "rounds", -1));
    fprintf(f, "%-22s %10s %14s %14s %12.0f %12.0f %7.0f\n", "setup (masked weights)", "", "", "", num_at(su, "bytes", 0),
            num_at(su, "bytes", 1), num_at(su, "rounds", -1));
    fprintf(f, "online %.3f s; offline (dealer + setup) %.3f s; preprocessing %.2f MB server, %.2f MB client\n",
            num_at(t, "online_s", -1), num_at(t, "offline_s", -1), num_at(off, "bytes", 0) / 1e6,
            num_at(off, "bytes", 1) / 1e6);
}

int pinas_cmd_party(pinas_ctx *ctx, int argc, char **argv)
{
    if (cli_wants_help(argc, argv)) {
        help();
        return 0;
    }
    const char *role_s = NULL, *dir = NULL, *prep = NULL, *listen = NULL, *connect = NULL, *input = NULL, *output = NULL,
               *report = NULL, *mask_cache = NULL;
    double timeout = 30;
    int json = 0, delay_ms = 0;
    const char *delay_layer = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--role") && i + 1 < argc) role_s = argv[++i];
        else if (!strcmp(argv[i], "--model") && i + 1 < argc) dir = argv[++i];
        else if (!strcmp(argv[i], "--prep") && i + 1 < argc) prep = argv[++i];
        else if (!strcmp(argv[i], "--listen") && i + 1 < argc) listen = argv[++i];
        else if (!strcmp(argv[i], "--connect") && i + 1 < argc) connect = argv[++i];
        else if (!strcmp(argv[i], "--input") && i + 1 < argc) input = argv[++i];
        else if (!strcmp(argv[i], "--output") && i + 1 < argc) output = argv[++i];
        else if (!strcmp(argv[i], "--report") && i + 1 < argc) report = argv[++i];
        else if (!strcmp(argv[i], "--mask-cache") && i + 1 < argc) mask_cache = argv[++i];
        else if (!strcmp(argv[i], "--timeout") && i + 1 < argc) {
            if (cli_parse_double("party", "--timeout", argv[++i], 0.001, 86400, &timeout)) return 2;
        } else if (!strcmp(argv[i], "--debug-delay") && i + 1 < argc) {
            char *v = argv[++i], *c = strrchr(v, ':');
            long ms = 0;
            if (!c || c == v) return cli_usage_error("party", "--debug-delay: expected LAYER:MS, got \"%s\"", v);
            if (cli_parse_int("party", "--debug-delay", c + 1, 0, 3600000, &ms)) return 2;
            *c = 0;
            delay_layer = v;
            delay_ms = (int)ms;
        } else if (!strcmp(argv[i], "--json")) json = 1;
        else return cli_usage_error("party", argv[i][0] == '-' ? "unknown option %s" : "unexpected argument %s", argv[i]);
    }
    if (!role_s || (strcmp(role_s, "server") && strcmp(role_s, "client")))
        return cli_usage_error("party", "--role: expected server or client");
    int role = !strcmp(role_s, "client");
    if (!dir) return cli_usage_error("party", "missing --model DIR");
    if (!prep) return cli_usage_error("party", "missing --prep FILE");
    if (!!listen == !!connect) return cli_usage_error("party", "give exactly one of --listen HOST:PORT and --connect HOST:PORT");
    if (role == 1 && !input) return cli_usage_error("party", "the client needs --input X.safetensors");
    if (role == 0 && (input || output || mask_cache))
        return cli_usage_error("party", "--input, --output and --mask-cache are the client's");
    int tmo = (int)(timeout * 1000);

    pinas_model *model = NULL;
    pinas_net *net = NULL;
    pinas_mpc_prep *pp = NULL;
    pinas_tensors *xt = NULL;
    pinas_chan *ch = NULL;
    pinas_mpc_report *rep = NULL;
    float *logits = NULL;
    pinas_mpc_params p;
    pinas_mpc_params_default(&p);
    pinas_status s = role == 0 ? pinas_model_load(ctx, dir, &model) : mpc_cli_load_arch(ctx, dir, &net, &p);
    if (!s) s = pinas_mpc_prep_load(ctx, prep, &pp);
    const pinas_net *arch = role == 0 ? (model ? model->net : NULL) : net;
    pinas_tensor_view xv;
    int batch = pp ? pinas_mpc_prep_batch(pp) : 0, nc = arch ? pinas_net_num_classes(arch) : 0;
    if (!s && role == 1) {
        const pinas_node *in = pinas_net_node(arch, 0);
        int64_t shp[4] = {batch, in->c, in->h, in->w};
        s = pinas_safetensors_load(ctx, input, &xt);
        if (!s) s = pinas_tensors_expect(ctx, xt, input, "x", PINAS_F32, 4, shp, &xv);
        if (s) pinas_error_prefix(ctx, s, "input (the preprocessing is for batch %d)", batch);
        logits = calloc((size_t)batch * nc, sizeof *logits);
        if (!s && !logits) s = pinas_error(ctx, PINAS_ENOMEM, "out of memory");
    }
    const char *peer = role == 0 ? "client" : "server";
    if (!s) s = pinas_mpc_prep_check(ctx, pp, arch, role); /* before making the peer wait */
    if (!s) {
        if (listen) {
            s = pinas_chan_listen(ctx, listen, &ch);
            if (!s) s = pinas_chan_accept(ctx, ch, tmo, peer);
        } else {
            s = pinas_chan_connect(ctx, connect, tmo, peer, &ch);
        }
    }
    if (!s) {
        pinas_mpc_party_args a = {.role = role, .model = model, .net = net, .prep = pp, .x = role ? xv.data : NULL,
                                  .logits = logits, .timeout_ms = tmo, .mask_cache = mask_cache, .delay_layer = delay_layer,
                                  .delay_ms = delay_ms};
        s = pinas_mpc_party_run(ctx, ch, &a, &rep);
    }
    pinas_chan_free(ch);
    cJSON *rj = NULL;
    if (!s) {
        rj = pinas_mpc_report_json(rep);
        cJSON_AddStringToObject(rj, "role", role_s);
        if (role == 1) {
            cJSON *lg = cJSON_AddArrayToObject(rj, "logits"), *cl = cJSON_AddArrayToObject(rj, "classes");
            for (int b = 0; b < batch; b++) {
                cJSON_AddItemToArray(lg, cJSON_CreateFloatArray(logits + (size_t)b * nc, nc));
                int best = 0;
                for (int c = 1; c < nc; c++)
                    if (logits[(size_t)b * nc + c] > logits[(size_t)b * nc + best]) best = c;
                cJSON_AddItemToArray(cl, cJSON_CreateNumber(best));
            }
        }
        if (report) s = pinas_json_save(ctx, report, rj);
        if (!s && output) {
            pinas_tensors *lt = pinas_tensors_create();
            int64_t shp[2] = {batch, nc};
            s = lt ? pinas_tensors_add(ctx, lt, "logits", PINAS_F32, 2, shp, logits) : pinas_error(ctx, PINAS_ENOMEM, "out of memory");
            if (!s) s = pinas_safetensors_save(ctx, output, lt, NULL);
            pinas_tensors_free(lt);
        }
    }
    if (!s) {
        if (json) {
            cli_print_json(rj);
        } else if (pinas_ctx_log_level(ctx) <= PINAS_LOG_INFO) {
            mpc_cli_print_report(stdout, rj);
            if (role == 1) {
                const cJSON *cl = cJSON_GetObjectItemCaseSensitive(rj, "classes"), *c;
                printf("predicted classes:");
                cJSON_ArrayForEach(c, cl) printf(" %d", c->valueint);
                printf("\n");
            }
        }
    }
    cJSON_Delete(rj);
    pinas_mpc_report_free(rep);
    pinas_tensors_free(xt);
    free(logits);
    pinas_mpc_prep_free(pp);
    pinas_model_free(model);
    pinas_net_free(net);
    return s ? cli_fail(ctx) : 0;
}
