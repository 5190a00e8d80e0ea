/* `pinas infer`: dealer + server + client as separate processes over loopback TCP, checked against plaintext. */
#define _GNU_SOURCE
#include "cli.h"
#include "pinas_mpc.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

void mpc_cli_print_report(FILE *f, const cJSON *rep);

static void help(void)
{
    printf("usage: pinas infer MODEL_DIR (--input X.safetensors | --random N) [--json] [--seed S]\n"
           "                  [--frac-bits F] [--cmp-bits B] [--timeout SECONDS] [--keep DIR]\n\n"
           "Runs a private inference locally: the dealer writes both preprocessing files, then the server\n"
           "and the client run as two `pinas party` processes (one core each when there are two) over\n"
           "loopback TCP. Prints the predicted classes, the max abs logit error against the plaintext\n"
           "executor, and a per-layer table (online ms, preprocessing bytes per party, online bytes sent\n"
           "per party, rounds) with totals.\n\n"
           "  --input FILE     safetensors with tensor \"x\", F32, [N, C, H, W] (normalised), and optionally\n"
           "                   labels \"y\", I64 [N]: then private and plaintext accuracy are printed\n"
           "  --random N       N random inputs (standard normal, seeded)\n"
           "  --seed S         seed of --random (default 0)\n"
           "  --frac-bits F    fixed-point fractional bits (default: meta.json mpc.frac_bits, else 16)\n"
           "  --cmp-bits B     comparison bits (default: meta.json mpc.cmp_bits, else 64)\n"
           "  --timeout S      the parties' timeout in seconds (default 60)\n"
           "  --keep DIR       keep the preprocessing files, input, logits and reports in DIR\n"
           "  --json           print {\"logits\", \"plaintext_logits\", \"classes\", \"max_abs_error\", \"layers\",\n"
           "                   \"totals\"}\n");
}

static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK), .sin_port = 0};
    socklen_t l = sizeof a;
    int port = -1;
    if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof a) == 0 && getsockname(fd, (struct sockaddr *)&a, &l) == 0)
        port = ntohs(a.sin_port);
    if (fd >= 0) close(fd);
    return port;
}

static pid_t spawn(char **args, int cpu)
{
    pid_t pid = fork();
    if (pid == 0) {
        if (cpu >= 0) { /* one core per party, as in the benchmarks' setting */
            cpu_set_t set;
            CPU_ZERO(&set);
            CPU_SET(cpu, &set);
            sched_setaffinity(0, sizeof set, &set);
        }
        int devnull = open("/dev/null", O_WRONLY);
        if (devnull >= 0) dup2(devnull, 1);
        execv("/proc/self/exe", args);
        fprintf(stderr, "pinas infer: cannot run %s: %s\n", "/proc/self/exe", strerror(errno));
        _exit(127);
    }
    return pid;
}

int pinas_cmd_infer(pinas_ctx *ctx, int argc, char **argv)
{
    if (cli_wants_help(argc, argv)) {
        help();
        return 0;
    }
    const char *dir = NULL, *input = NULL, *keep = NULL;
    long nrand = 0, seed = 0, fb = -1, cb = -1;
    double timeout = 60;
    int json = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--input") && i + 1 < argc) input = argv[++i];
        else if (!strcmp(argv[i], "--random") && i + 1 < argc) {
            if (cli_parse_int("infer", "--random", argv[++i], 1, 1 << 20, &nrand)) return 2;
        } else if (!strcmp(argv[i], "--seed") && i + 1 < argc) {
            if (cli_parse_int("infer", "--seed", argv[++i], 0, 2147483647L, &seed)) return 2;
        } else if (!strcmp(argv[i], "--frac-bits") && i + 1 < argc) {
            if (cli_parse_int("infer", "--frac-bits", argv[++i], 4, 30, &fb)) return 2;
        } else if (!strcmp(argv[i], "--cmp-bits") && i + 1 < argc) {
            if (cli_parse_int("infer", "--cmp-bits", argv[++i], 8, 64, &cb)) return 2;
        } else if (!strcmp(argv[i], "--timeout") && i + 1 < argc) {
            if (cli_parse_double("infer", "--timeout", argv[++i], 0.001, 86400, &timeout)) return 2;
        } else if (!strcmp(argv[i], "--keep") && i + 1 < argc) keep = argv[++i];
        else if (!strcmp(argv[i], "--json")) json = 1;
        else if (argv[i][0] == '-') return cli_usage_error("infer", "unknown option %s", argv[i]);
        else if (!dir) dir = argv[i];
        else return cli_usage_error("infer", "unexpected argument %s", argv[i]);
    }
    if (!dir) return cli_usage_error("infer", "missing MODEL_DIR");
    if (!!input == !!nrand) return cli_usage_error("infer", "give exactly one of --input FILE and --random N");

    pinas_model *m = NULL;
    pinas_tensors *xt = NULL, *lt = NULL;
    const int64_t *labels = NULL; /* borrowed from xt */
    pinas_mpc_prep *p0 = NULL, *p1 = NULL;
    float *x = NULL, *plain = NULL;
    cJSON *cr = NULL, *sr = NULL;
    char tmpl[] = "/tmp/pinas-infer-XXXXXX", *work = NULL;
    pinas_status s = pinas_model_load(ctx, dir, &m);
    pinas_mpc_params p;
    pinas_mpc_params_default(&p);
    char *mp = pinas_path_join(dir, "meta.json");
    if (!s) s = pinas_mpc_params_from_meta(ctx, m->meta, mp, &p);
    free(mp);
    if (fb > 0) p.frac_bits = (int)fb;
    if (cb > 0) p.cmp_bits = (int)cb;
    const pinas_node *in = m ? pinas_net_node(m->net, 0) : NULL;
    int nc = m ? pinas_net_num_classes(m->net) : 0, batch = 0;
    size_t per = in ? (size_t)in->c * in->h * in->w : 0;
    if (!s && input) {
        pinas_tensor_view v;
        s = pinas_safetensors_load(ctx, input, &xt);
        if (!s && pinas_tensors_find(xt, "x", &v) != 0) s = pinas_error(ctx, PINAS_EFORMAT, "%s: no tensor \"x\"", input);
        if (!s && (v.dtype != PINAS_F32 || v.ndim != 4 || v.shape[1] != in->c || v.shape[2] != in->h || v.shape[3] != in->w))
            s = pinas_error(ctx, PINAS_ESHAPE, "%s: tensor x: expected F32 [N, %d, %d, %d]", input, in->c, in->h, in->w);
        if (!s) {
            batch = (int)v.shape[0];
            x = malloc(sizeof(float) * per * batch);
            if (x) memcpy(x, v.data, sizeof(float) * per * batch);
        }
        /* optional labels: tensor "y", I64 [N], for private and plaintext accuracy */
        pinas_tensor_view yv;
        if (!s && pinas_tensors_find(xt, "y", &yv) == 0) {
            int64_t ys[1] = {batch};
            s = pinas_tensors_expect(ctx, xt, input, "y", PINAS_I64, 1, ys, &yv);
            if (!s) labels = yv.data;
            for (int b = 0; !s && b < batch; b++)
                if (labels[b] < 0 || labels[b] >= nc)
                    s = pinas_error(ctx, PINAS_EFORMAT, "%s: tensor y[%d] = %lld is not a class in [0, %d)", input, b, (long long)labels[b], nc);
        }
    } else if (!s) {
        batch = (int)nrand;
        x = malloc(sizeof(float) * per * batch);
        uint64_t st = (uint64_t)seed * 0x9e3779b97f4a7c15ULL + 0x1234567ULL;
        for (size_t i = 0; x && i < per * batch; i += 2) { /* Box-Muller on a 64-bit LCG */
            st = st * 6364136223846793005ULL + 1442695040888963407ULL;
            double u1 = ((st >> 11) + 0.5) / 9007199254740992.0;
            st = st * 6364136223846793005ULL + 1442695040888963407ULL;
            double u2 = ((st >> 11) + 0.5) / 9007199254740992.0, r = sqrt(-2 * log(u1));
            x[i] = (float)(r * cos(6.283185307179586 * u2));
            if (i + 1 < per * batch) x[i + 1] = (float)(r * sin(6.283185307179586 * u2));
        }
    }
    if (!s && !x) s = pinas_error(ctx, PINAS_ENOMEM, "out of memory");
    if (!s) {
        work = keep ? (char *)keep : mkdtemp(tmpl);
        if (!work) s = pinas_error(ctx, PINAS_EIO, "cannot create a temporary directory: %s", strerror(errno));
        else if (keep) s = pinas_mkdir_p(ctx, keep);
    }
    char *f0 = work ? pinas_path_join(work, "server.prep") : NULL, *f1 = work ? pinas_path_join(work, "client.prep") : NULL;
    char *fx = work ? pinas_path_join(work, "x.safetensors") : NULL, *fl = work ? pinas_path_join(work, "logits.safetensors") : NULL;
    char *fsr = work ? pinas_path_join(work, "server.json") : NULL, *fcr = work ? pinas_path_join(work, "client.json") : NULL;
    p.batch = batch;
    double t_deal = pinas_now();
    if (!s) s = pinas_mpc_deal(ctx, m->net, &p, NULL, 0, &p0, &p1);
    t_deal = pinas_now() - t_deal;
    if (!s) s = pinas_mpc_prep_save(ctx, p0, f0);
    if (!s) s = pinas_mpc_prep_save(ctx, p1, f1);
    pinas_mpc_prep_free(p0);
    pinas_mpc_prep_free(p1);
    if (!s) {
        pinas_tensors *t = pinas_tensors_create();
        int64_t shp[4] = {batch, in->c, in->h, in->w};
        s = t ? pinas_tensors_add(ctx, t, "x", PINAS_F32, 4, shp, x) : pinas_error(ctx, PINAS_ENOMEM, "out of memory");
        if (!s) s = pinas_safetensors_save(ctx, fx, t, NULL);
        pinas_tensors_free(t);
    }
    if (!s) {
        int port = free_port();
        char hp[64], tm[32];
        snprintf(hp, sizeof hp, "127.0.0.1:%d", port);
        snprintf(tm, sizeof tm, "%g", timeout);
        char *sa[] = {"pinas", "party", "--role", "server", "--model", (char *)dir, "--prep", f0, "--listen", hp,
                      "--report", fsr, "--timeout", tm, NULL};
        char *ca[] = {"pinas", "party", "--role", "client", "--model", (char *)dir, "--prep", f1, "--connect", hp,
                      "--input", fx, "--output", fl, "--report", fcr, "--timeout", tm, NULL};
        int two = sysconf(_SC_NPROCESSORS_ONLN) >= 2;
        fflush(NULL);
        pid_t ps = spawn(sa, two ? 0 : -1), pc = spawn(ca, two ? 1 : -1);
        int ws = 0, wc = 0;
        if (ps > 0) waitpid(ps, &ws, 0);
        if (pc > 0) waitpid(pc, &wc, 0);
        if (ps <= 0 || pc <= 0) s = pinas_error(ctx, PINAS_EINTERNAL, "cannot start the party processes");
        else if (!WIFEXITED(ws) || WEXITSTATUS(ws) || !WIFEXITED(wc) || WEXITSTATUS(wc))
            s = pinas_error(ctx, PINAS_EPEER, "the private inference failed (server %s %d, client %s %d; see their messages above)",
                            WIFEXITED(ws) ? "exit" : "signal", WIFEXITED(ws) ? WEXITSTATUS(ws) : WTERMSIG(ws),
                            WIFEXITED(wc) ? "exit" : "signal", WIFEXITED(wc) ? WEXITSTATUS(wc) : WTERMSIG(wc));
    }
    pinas_tensor_view lv;
    if (!s) s = pinas_safetensors_load(ctx, fl, &lt);
    if (!s) {
        int64_t shp[2] = {batch, nc};
        s = pinas_tensors_expect(ctx, lt, fl, "logits", PINAS_F32, 2, shp, &lv);
    }
    if (!s) s = pinas_json_load(ctx, fcr, &cr);
    if (!s) s = pinas_json_load(ctx, fsr, &sr);
    plain = malloc(sizeof(float) * (size_t)batch * (nc ? nc : 1));
    if (!s && !plain) s = pinas_error(ctx, PINAS_ENOMEM, "out of memory");
    if (!s) s = pinas_plain_forward(ctx, m, x, batch, plain);
    if (!s) {
        /* the client's report counts the client's work; take the server's AES blocks and MACs from its own */
        cJSON *cl = cJSON_GetObjectItemCaseSensitive(cr, "layers"), *sl = cJSON_GetObjectItemCaseSensitive(sr, "layers");
        for (int i = 0; i < cJSON_GetArraySize(cl) && i < cJSON_GetArraySize(sl); i++) {
            cJSON *co = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(cl, i), "measured"), "online");
            cJSON *so = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(sl, i), "measured"), "online");
            const char *keys[] = {"aes_blocks", "ring_macs"};
            for (int k = 0; k < 2; k++) {
                cJSON *ca = cJSON_GetObjectItemCaseSensitive(co, keys[k]), *sa = cJSON_GetObjectItemCaseSensitive(so, keys[k]);
                cJSON *sv = cJSON_GetArrayItem(sa, 0);
                if (ca && sv) cJSON_ReplaceItemInArray(ca, 0, cJSON_CreateNumber(sv->valuedouble));
            }
        }
        double err = 0;
        int finite = 1;
        const float *lg = lv.data;
        for (size_t q = 0; q < (size_t)batch * nc; q++) finite &= isfinite(plain[q]) != 0;
        cJSON *out = cJSON_CreateObject(), *jl = cJSON_AddArrayToObject(out, "logits"),
              *jp = cJSON_AddArrayToObject(out, "plaintext_logits"), *jc = cJSON_AddArrayToObject(out, "classes"),
              *jpc = cJSON_AddArrayToObject(out, "plaintext_classes");
        int agree = 0, ok_priv = 0, ok_plain = 0;
        for (int b = 0; b < batch; b++) {
            int best = 0, pbest = 0;
            for (int c = 0; c < nc; c++) {
                err = fmax(err, fabs(lg[b * nc + c] - plain[b * nc + c]));
                if (lg[b * nc + c] > lg[b * nc + best]) best = c;
                if (plain[b * nc + c] > plain[b * nc + pbest]) pbest = c;
            }
            agree += best == pbest;
            if (labels) {
                ok_priv += best == labels[b];
                ok_plain += pbest == labels[b];
            }
            cJSON_AddItemToArray(jl, cJSON_CreateFloatArray(lg + (size_t)b * nc, nc));
            cJSON_AddItemToArray(jp, cJSON_CreateFloatArray(plain + (size_t)b * nc, nc));
            cJSON_AddItemToArray(jc, cJSON_CreateNumber(best));
            cJSON_AddItemToArray(jpc, cJSON_CreateNumber(pbest));
        }
        if (finite)
            cJSON_AddNumberToObject(out, "max_abs_error", err);
        else /* a random deep polynomial net can overflow float: there is no reference to compare with */
            cJSON_AddNullToObject(out, "max_abs_error");
        cJSON_AddNumberToObject(out, "argmax_agreement", (double)agree / batch);
        if (labels) {
            cJSON *acc = cJSON_AddObjectToObject(out, "accuracy");
            cJSON_AddNumberToObject(acc, "private", (double)ok_priv / batch);
            cJSON_AddNumberToObject(acc, "plaintext", (double)ok_plain / batch);
            cJSON_AddNumberToObject(acc, "n", batch);
        }
        cJSON_AddNumberToObject(out, "frac_bits", p.frac_bits);
        cJSON_AddNumberToObject(out, "cmp_bits", p.cmp_bits);
        cJSON_AddNumberToObject(out, "dealer_seconds", t_deal);
        cJSON_AddItemToObject(out, "layers", cJSON_DetachItemFromObject(cr, "layers"));
        cJSON_AddItemToObject(out, "totals", cJSON_DetachItemFromObject(cr, "totals"));
        if (json) {
            cli_print_json(out);
        } else {
            mpc_cli_print_report(stdout, out);
            printf("dealer %.3f s; predicted classes:", t_deal);
            for (int b = 0; b < batch && b < 64; b++) printf(" %d", cJSON_GetArrayItem(jc, b)->valueint);
            if (finite)
                printf("%s\nmax abs logit error vs plaintext: %.3g (frac_bits %d); argmax agreement %d/%d\n",
                       batch > 64 ? " ..." : "", err, p.frac_bits, agree, batch);
            else
                printf("%s\nthe plaintext logits are not finite (the model overflows float); no error to report\n",
                       batch > 64 ? " ..." : "");
            if (labels)
                printf("accuracy on %d labelled inputs: private %.2f%% (%d/%d), plaintext %.2f%% (%d/%d)\n", batch, 100.0 * ok_priv / batch,
                       ok_priv, batch, 100.0 * ok_plain / batch, ok_plain, batch);
        }
        cJSON_Delete(out);
    }
    if (work && !keep) {
        const char *files[] = {f0, f1, fx, fl, fsr, fcr};
        for (int i = 0; i < 6; i++)
            if (files[i]) unlink(files[i]);
        rmdir(work);
    }
    free(f0), free(f1), free(fx), free(fl), free(fsr), free(fcr);
    cJSON_Delete(cr);
    cJSON_Delete(sr);
    pinas_tensors_free(xt);
    pinas_tensors_free(lt);
    free(x);
    free(plain);
    pinas_model_free(m);
    return s ? cli_fail(ctx) : 0;
}
