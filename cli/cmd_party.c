/* `pinas party`: runs one party (server or client) of a private inference over TCP. */
#define _GNU_SOURCE
#include "cli.h"
#include "pinas_mpc.h"

#include <openssl/crypto.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

static void help(void)
{
    printf("usage: pinas party --role server|client --model DIR --prep FILE --dealer-key FILE (--listen|--connect) H:P\n"
           "                   (--psk FILE | --cert FILE --key FILE --peer-ca FILE | --insecure)\n"
           "                   [--input X.safetensors] [--output LOGITS.safetensors] [--report FILE.json]\n"
           "                   [--timeout SECONDS] [--threads T] [--no-preverify] [--json]\n\n"
           "Runs one party of a private inference; the two parties may be on different hosts. The server\n"
           "(party 0) holds the weights (DIR must hold weights.safetensors); the client (party 1) holds the\n"
           "input and receives the logits (it reads only DIR/net.json and meta.json). Each party needs its\n"
           "own preprocessing file from `pinas dealer`; the handshake checks the protocol version, the model\n"
           "hash, the dealer session id and the batch. When the peer dies, closes, stalls beyond the timeout\n"
           "or sends garbage, the party exits 1 with a message naming the peer and the layer.\n\n"
           "The channel is TLS 1.3 with mutual authentication, before any model material is sent: both\n"
           "parties hold the same pre-shared key (--psk), or each presents a certificate signed by the CA the\n"
           "other trusts (--cert, --key, --peer-ca); `pinas keygen` makes either. A tampered stream ends\n"
           "both parties with exit 1 (TLS record authentication). The listening party accepts exactly one\n"
           "authenticated peer; other connections are refused with a warning. Plain TCP (no authentication,\n"
           "no integrity) only with --insecure.\n\n"
           "  --role R          server or client\n"
           "  --model DIR       model dir (server: net.json + weights.safetensors; client: net.json)\n"
           "  --prep FILE       this party's preprocessing file\n"
           "  --dealer-key FILE the dealer's key (64 hex digits, mode 0600; `pinas dealer --new-dealer-key`): the\n"
           "                    preprocessing file is used only if its HMAC-SHA256 tag verifies under it\n"
           "  --listen H:P      wait for the peer on H:P (either role may listen)\n"
           "  --connect H:P     connect to the peer at H:P (retries until the timeout)\n"
           "  --psk FILE        pre-shared key (64 hex digits, mode 0600; `pinas keygen --psk FILE`), the same\n"
           "                    file on both sides\n"
           "  --cert FILE       this party's certificate (PEM); with --key FILE (PEM, mode 0600) and\n"
           "  --peer-ca FILE    the CA that signed the peer's certificate (`pinas keygen --certs DIR`)\n"
           "  --insecure        plain TCP: no authentication, no integrity (tests on one host only)\n"
           "  --input FILE      client: safetensors with tensor \"x\", F32, [batch, C, H, W] (normalised)\n"
           "  --output FILE     client: write the logits as safetensors (tensor \"logits\", F32, [batch, classes])\n"
           "  --report FILE     write this party's per-layer report as JSON\n"
           "  --mask-cache DIR  client: keep the server's masked weights W - A in DIR (0600 files, checksummed)\n"
           "                    so that they cross the network once per model and weight mask\n"
           "  --timeout S       timeout in seconds (default 30): the longest silence, the TLS handshake's total,\n"
           "                    and each message's total deadline S + its size at 1 MB/s\n"
           "  --debug-delay L:MS  testing: sleep MS milliseconds before layer L (to kill a peer mid-protocol)\n"
           "  --threads T       threads for key evaluation, the ring products and truncation (default 1; the\n"
           "                    results are the same for every T)\n"
           "  --json            print the report (client: with \"logits\" and \"classes\") as JSON, with this\n"
           "                    process's \"peak_rss_bytes\" and \"threads\"\n\n"
           "  --no-preverify    do not read and verify the whole preprocessing file before connecting (each\n"
           "                    layer is verified anyway when it is read; saves one pass over the file)\n\n"
           "The preprocessing file is read one layer at a time (format 4): the party verifies a layer's\n"
           "section when it needs it and keeps only that layer's material, so its memory is about the largest\n"
           "layer's material plus the model, not the file. Before connecting it reads and verifies every\n"
           "section once, one at a time (unless --no-preverify), so that a bad file fails before the peer\n"
           "waits. A section altered or cut short is refused with a message naming the file and the layer.\n");
}

void cli_print_mpc_report(FILE *f, const pinas_mpc_report *r)
{
    /* per party: compute (thread CPU time outside the channel) and time blocked in it, ms; "-" for a
     * party whose clocks are not in the report */
    fprintf(f, "%-22s %10s %9s %9s %9s %9s %14s %14s %12s %12s %7s\n", "layer", "online ms", "srv cpu", "srv wait", "cli cpu",
            "cli wait", "prep server B", "prep client B", "sent server", "sent client", "rounds");
    double cpu[2] = {0, 0}, wait[2] = {0, 0};
    for (int i = 0; i < r->n_layers; i++) {
        const pinas_mpc_layer_report *l = &r->layers[i];
        const pinas_mpc_cost *c = &l->measured;
        char t[4][16];
        for (int q = 0; q < 2; q++) {
            int known = l->party[q].wall_s > 0;
            snprintf(t[2 * q], sizeof t[0], known ? "%.2f" : "-", l->party[q].cpu_s * 1e3);
            snprintf(t[2 * q + 1], sizeof t[0], known ? "%.2f" : "-", l->party[q].wait_s * 1e3);
            cpu[q] += l->party[q].cpu_s;
            wait[q] += l->party[q].wait_s;
        }
        fprintf(f, "%-22s %10.2f %9s %9s %9s %9s %14.0f %14.0f %12.0f %12.0f %7.0f\n", l->id, l->online_s * 1e3, t[0], t[1], t[2], t[3],
                (double)c->offline.bytes[0], (double)c->offline.bytes[1], (double)c->online.bytes[0], (double)c->online.bytes[1],
                (double)c->online.rounds);
    }
    const pinas_mpc_cost *t = &r->totals;
    fprintf(f, "%-22s %10.2f %9.2f %9.2f %9.2f %9.2f %14.0f %14.0f %12.0f %12.0f %7.0f\n", "total (online)", r->online_s * 1e3,
            cpu[0] * 1e3, wait[0] * 1e3, cpu[1] * 1e3, wait[1] * 1e3, (double)t->offline.bytes[0], (double)t->offline.bytes[1],
            (double)t->online.bytes[0], (double)t->online.bytes[1], (double)t->online.rounds);
    fprintf(f, "%-22s %10s %9s %9s %9s %9s %14s %14s %12.0f %12.0f %7.0f\n", "setup (masked weights)", "", "", "", "", "", "", "",
            (double)t->setup.bytes[0], (double)t->setup.bytes[1], (double)t->setup.rounds);
    fprintf(f, "online %.3f s; offline (dealer + setup) %.3f s; preprocessing %.2f MB server, %.2f MB client\n", r->online_s,
            r->offline_s, (double)t->offline.bytes[0] / 1e6, (double)t->offline.bytes[1] / 1e6);
    if (r->peak_rss || r->prep_read_s > 0)
        fprintf(f, "peak RSS %.1f MB; %.3f s reading and verifying preprocessing; %d thread%s\n", r->peak_rss / 1e6,
                r->prep_read_s, r->threads, r->threads == 1 ? "" : "s");
}

typedef struct {
    const char *role_s, *dir, *prep, *dealer_key, *listen, *connect, *input, *output, *report, *mask_cache, *delay_layer;
    pinas_chan_auth auth;
    double timeout;
    int role, json, delay_ms, no_preverify;
    long threads;
} party_opts;

/* The channel's authentication: exactly one of --psk, --cert/--key/--peer-ca, --insecure. */
static int auth_usage(const pinas_chan_auth *a)
{
    int certs = a->cert_file || a->key_file || a->peer_ca_file;
    if (!a->insecure && !a->psk_file && !certs)
        return cli_usage_error("party",
                               "the channel needs authentication: pass --psk FILE (the same key on both sides; make one "
                               "with `pinas keygen --psk FILE`) or --cert FILE --key FILE --peer-ca FILE (`pinas keygen "
                               "--certs DIR`); plain TCP, without authentication or integrity, only with --insecure");
    if (a->insecure + !!a->psk_file + !!certs > 1)
        return cli_usage_error("party", "give only one of --psk, --cert/--key/--peer-ca and --insecure");
    if (certs && !(a->cert_file && a->key_file && a->peer_ca_file))
        return cli_usage_error("party", "--cert, --key and --peer-ca go together");
    return 0;
}

/* Returns 0, or the exit status of a usage error. */
static int parse_args(int argc, char **argv, party_opts *o)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--role") && v) o->role_s = argv[++i];
        else if (!strcmp(a, "--model") && v) o->dir = argv[++i];
        else if (!strcmp(a, "--prep") && v) o->prep = argv[++i];
        else if (!strcmp(a, "--dealer-key") && v) o->dealer_key = argv[++i];
        else if (!strcmp(a, "--listen") && v) o->listen = argv[++i];
        else if (!strcmp(a, "--connect") && v) o->connect = argv[++i];
        else if (!strcmp(a, "--input") && v) o->input = argv[++i];
        else if (!strcmp(a, "--output") && v) o->output = argv[++i];
        else if (!strcmp(a, "--report") && v) o->report = argv[++i];
        else if (!strcmp(a, "--mask-cache") && v) o->mask_cache = argv[++i];
        else if (!strcmp(a, "--psk") && v) o->auth.psk_file = argv[++i];
        else if (!strcmp(a, "--cert") && v) o->auth.cert_file = argv[++i];
        else if (!strcmp(a, "--key") && v) o->auth.key_file = argv[++i];
        else if (!strcmp(a, "--peer-ca") && v) o->auth.peer_ca_file = argv[++i];
        else if (!strcmp(a, "--insecure")) o->auth.insecure = 1;
        else if (!strcmp(a, "--timeout") && v) {
            if (cli_parse_double("party", "--timeout", argv[++i], 0.001, 86400, &o->timeout)) return 2;
        } else if (!strcmp(a, "--debug-delay") && v) {
            char *d = argv[++i], *c = strrchr(d, ':');
            long ms = 0;
            if (!c || c == d) return cli_usage_error("party", "--debug-delay: expected LAYER:MS, got \"%s\"", d);
            if (cli_parse_int("party", "--debug-delay", c + 1, 0, 3600000, &ms)) return 2;
            *c = 0;
            o->delay_layer = d;
            o->delay_ms = (int)ms;
        } else if (!strcmp(a, "--threads") && v) {
            if (cli_parse_int("party", "--threads", argv[++i], 1, PINAS_MPC_MAX_THREADS, &o->threads)) return 2;
        } else if (!strcmp(a, "--no-preverify")) o->no_preverify = 1;
        else if (!strcmp(a, "--json")) o->json = 1;
        else return cli_usage_error("party", a[0] == '-' ? "unknown option %s" : "unexpected argument %s", a);
    }
    if (!o->role_s || (strcmp(o->role_s, "server") && strcmp(o->role_s, "client")))
        return cli_usage_error("party", "--role: expected server or client");
    o->role = !strcmp(o->role_s, "client");
    if (!o->dir) return cli_usage_error("party", "missing --model DIR");
    if (!o->prep) return cli_usage_error("party", "missing --prep FILE");
    if (!o->dealer_key) return cli_usage_error("party", "missing --dealer-key FILE (the key the dealer signed --prep with)");
    if (!!o->listen == !!o->connect)
        return cli_usage_error("party", "give exactly one of --listen HOST:PORT and --connect HOST:PORT");
    if (o->role == 1 && !o->input) return cli_usage_error("party", "the client needs --input X.safetensors");
    if (o->role == 0 && (o->input || o->output || o->mask_cache))
        return cli_usage_error("party", "--input, --output and --mask-cache are the client's");
    return auth_usage(&o->auth);
}

/* What one party works with; everything owned, freed by party_free. */
typedef struct {
    pinas_model *model; /* server */
    pinas_net *net;     /* client */
    pinas_mpc_prep *pp;
    pinas_tensors *xt;  /* client: the input file */
    pinas_tensor_view xv;
    float *logits;      /* client */
    int batch, nc;
    pinas_mpc_report *rep;
    char security[160];    /* the channel as it ran */
    uint64_t wire[2];      /* bytes on the wire: sent, received (TLS records or plain frames) */
} party_state;

static void party_free(party_state *st)
{
    pinas_mpc_report_free(st->rep);
    pinas_tensors_free(st->xt);
    free(st->logits);
    pinas_mpc_prep_free(st->pp);
    pinas_model_free(st->model);
    pinas_net_free(st->net);
}

/* The model (server) or the architecture (client), the preprocessing and the client's input. */
static pinas_status party_load(pinas_ctx *ctx, const party_opts *o, party_state *st, const pinas_net **arch)
{
    pinas_mpc_params p;
    pinas_mpc_params_default(&p);
    pinas_status s = o->role == 0 ? pinas_model_load(ctx, o->dir, &st->model) : pinas_mpc_arch_load(ctx, o->dir, &st->net, &p);
    uint8_t dk[PINAS_MPC_DEALER_KEY_BYTES];
    if (!s) s = pinas_mpc_dealer_key_load(ctx, o->dealer_key, dk);
    if (!s) s = pinas_mpc_prep_load(ctx, o->prep, dk, &st->pp);
    OPENSSL_cleanse(dk, sizeof dk);
    *arch = o->role == 0 ? (st->model ? st->model->net : NULL) : st->net;
    st->batch = st->pp ? pinas_mpc_prep_batch(st->pp) : 0;
    st->nc = *arch ? pinas_net_num_classes(*arch) : 0;
    if (!s && o->role == 1) {
        const pinas_node *in = pinas_net_node(*arch, 0);
        int64_t shp[4] = {st->batch, in->c, in->h, in->w};
        s = pinas_safetensors_load(ctx, o->input, &st->xt);
        if (!s) s = pinas_tensors_expect(ctx, st->xt, o->input, "x", PINAS_F32, 4, shp, &st->xv);
        if (s) pinas_error_prefix(ctx, s, "input (the preprocessing is for batch %d)", st->batch);
        st->logits = calloc((size_t)st->batch * st->nc, sizeof *st->logits);
        if (!s && !st->logits) s = pinas_error(ctx, PINAS_ENOMEM, "out of memory");
    }
    if (!s) s = pinas_mpc_prep_check(ctx, st->pp, *arch, o->role); /* before making the peer wait */
    if (!s && !o->no_preverify) s = pinas_mpc_prep_verify(ctx, st->pp); /* one layer at a time */
    return s;
}

/* Connects to the peer (or waits for it) and runs this party. */
static pinas_status party_connect_run(pinas_ctx *ctx, const party_opts *o, party_state *st)
{
    int tmo = (int)(o->timeout * 1000);
    const char *peer = o->role == 0 ? "client" : "server";
    pinas_chan *ch = NULL;
    pinas_status s;
    if (o->listen) {
        s = pinas_chan_listen(ctx, o->listen, &ch);
        if (!s) s = pinas_chan_accept(ctx, ch, tmo, peer, &o->auth);
    } else {
        s = pinas_chan_connect(ctx, o->connect, tmo, peer, &o->auth, &ch);
    }
    if (!s) {
        pinas_mpc_party_args a = {.role = o->role, .model = st->model, .net = st->net, .prep = st->pp,
                                  .x = o->role ? st->xv.data : NULL, .logits = st->logits, .timeout_ms = tmo,
                                  .mask_cache = o->mask_cache, .delay_layer = o->delay_layer, .delay_ms = o->delay_ms,
                                  .threads = (int)o->threads};
        s = pinas_mpc_party_run(ctx, ch, &a, &st->rep);
        snprintf(st->security, sizeof st->security, "%s", pinas_chan_security(ch));
        pinas_chan_wire_bytes(ch, &st->wire[0], &st->wire[1]);
    }
    pinas_chan_free(ch);
    return s;
}

/* The report as JSON, with the role and (client) the logits and predicted classes. New; caller frees. */
static cJSON *report_json(const party_opts *o, const party_state *st)
{
    cJSON *rj = pinas_mpc_report_json(st->rep);
    cJSON_AddStringToObject(rj, "role", o->role_s);
    cJSON *ch = cJSON_AddObjectToObject(rj, "channel");
    cJSON_AddStringToObject(ch, "security", st->security);
    cJSON_AddNumberToObject(ch, "wire_bytes_sent", (double)st->wire[0]);
    cJSON_AddNumberToObject(ch, "wire_bytes_received", (double)st->wire[1]);
    if (o->role == 1) {
        cJSON *lg = cJSON_AddArrayToObject(rj, "logits"), *cl = cJSON_AddArrayToObject(rj, "classes");
        for (int b = 0; b < st->batch; b++) {
            const float *row = st->logits + (size_t)b * st->nc;
            cJSON_AddItemToArray(lg, cJSON_CreateFloatArray(row, st->nc));
            int best = 0;
            for (int c = 1; c < st->nc; c++)
                if (row[c] > row[best]) best = c;
            cJSON_AddItemToArray(cl, cJSON_CreateNumber(best));
        }
    }
    return rj;
}

/* --report, --output, then stdout (JSON, or the table and the classes). */
static pinas_status party_outputs(pinas_ctx *ctx, const party_opts *o, const party_state *st)
{
    cJSON *rj = report_json(o, st);
    pinas_status s = o->report ? pinas_json_save(ctx, o->report, rj) : PINAS_OK;
    if (!s && o->output) {
        pinas_tensors *lt = pinas_tensors_create();
        int64_t shp[2] = {st->batch, st->nc};
        s = lt ? pinas_tensors_add(ctx, lt, "logits", PINAS_F32, 2, shp, st->logits) : pinas_error(ctx, PINAS_ENOMEM, "out of memory");
        if (!s) s = pinas_safetensors_save(ctx, o->output, lt, NULL);
        pinas_tensors_free(lt);
    }
    if (!s && o->json) {
        cli_print_json(rj);
    } else if (!s && pinas_ctx_log_level(ctx) <= PINAS_LOG_INFO) {
        cli_print_mpc_report(stdout, st->rep);
        printf("channel: %s; %.0f bytes sent, %.0f received on the wire\n", st->security, (double)st->wire[0],
               (double)st->wire[1]);
        if (o->role == 1) {
            const cJSON *cl = cJSON_GetObjectItemCaseSensitive(rj, "classes"), *c;
            printf("predicted classes:");
            cJSON_ArrayForEach(c, cl) printf(" %d", c->valueint);
            printf("\n");
        }
    }
    cJSON_Delete(rj);
    return s;
}

int pinas_cmd_party(pinas_ctx *ctx, int argc, char **argv)
{
    if (cli_wants_help(argc, argv)) {
        help();
        return 0;
    }
    party_opts o = {.timeout = 30};
    int rc = parse_args(argc, argv, &o);
    if (rc) return rc;
    party_state st = {0};
    const pinas_net *arch = NULL;
    signal(SIGPIPE, SIG_IGN); /* TLS writes with write(2): a peer gone is an error message, not a silent death */
    pinas_status s = party_load(ctx, &o, &st, &arch);
    if (!s) s = party_connect_run(ctx, &o, &st);
    if (!s) s = party_outputs(ctx, &o, &st);
    party_free(&st);
    return s ? cli_fail(ctx) : 0;
}
