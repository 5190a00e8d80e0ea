/* `pinas infer`: dealer + server + client as separate processes over loopback TCP, checked against plaintext. */
#define _GNU_SOURCE
#include "cli.h"
#include "pinas_bitcut.h"
#include "pinas_mpc.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <openssl/crypto.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static void help(void)
{
    printf("usage: pinas infer MODEL_DIR (--input X.safetensors | --random N) [--json] [--seed S]\n"
           "                  [--frac-bits F] [--cmp-bits B] [--timeout SECONDS] [--chunk N] [--keep DIR] [--threads T]\n\n"
           "Runs a private inference locally: the dealer writes both preprocessing files, then the server\n"
           "and the client run as two `pinas party` processes (one core each when there are two) over\n"
           "loopback TCP. Prints the predicted classes, the max abs logit error against the plaintext\n"
           "executor, and a per-layer table (online ms; each party's compute - thread CPU time outside the\n"
           "channel calls - and time blocked on the peer or the network; preprocessing bytes per party,\n"
           "online bytes sent per party, rounds) with totals. --json gives per layer \"server\" and\n"
           "\"client\": {wall_ms, cpu_ms, comm_ms, comm_cpu_ms, wait_ms, prep_ms} (see docs/latency-fidelity.md).\n\n"
           "  --input FILE     safetensors with tensor \"x\", F32, [N, C, H, W] (normalised), and optionally\n"
           "                   labels \"y\", I64 [N]: then private and plaintext accuracy are printed\n"
           "  --random N       N random inputs (standard normal, seeded)\n"
           "  --seed S         seed of --random (default 0)\n"
           "  --frac-bits F    fixed-point fractional bits (default: meta.json mpc.frac_bits, else 16)\n"
           "  --cmp-bits B     comparison bits (default: meta.json mpc.cmp_bits, else 64, and the per-slot\n"
           "                   windows of a bit-cut model, meta.json mpc.layers; B applies to every slot)\n"
           "  --timeout S      the parties' timeout in seconds (default 60)\n"
           "  --threads T      threads of the dealer and of each party (default 1: each party pinned to a core\n"
           "                   of its own when there are two; T > 1 leaves placement to the OS). The results\n"
           "                   are the same for every T\n"
           "  --chunk N        images per dealer + party run (default: 16, fewer when one image's\n"
           "                   preprocessing is over 64 MiB, so that a chunk's stays under ~1 GiB); the\n"
           "                   chunks run one after the other and their logits are concatenated, so\n"
           "                   memory and disk do not grow with the number of images\n"
           "  --keep DIR       keep the preprocessing files, input, logits and reports in DIR (with more\n"
           "                   than one chunk, named chunk<K>-server.prep etc.; all chunks' files stay)\n"
           "The temporary directory is made under $TMPDIR (default /tmp). SIGINT/SIGTERM stop the parties\n"
           "and remove it (with --keep, the temporary *.tmp.* files in DIR).\n"
           "  --json           print {\"logits\", \"plaintext_logits\", \"classes\", \"max_abs_error\", \"layers\",\n"
           "                   \"totals\", \"threads\", \"peak_rss_bytes\": {\"dealer\", \"server\", \"client\"},\n"
           "                   \"prep_bytes_max_layer\": {\"server\", \"client\"}, \"prep_read_s\"}: peak RSS of each\n"
           "                   process (the dealer runs in this one, which also holds the model and inputs)\n");
}

typedef struct {
    const char *dir, *input, *keep;
    long nrand, seed, frac_bits, cmp_bits; /* bits: -1 = meta.json's */
    long chunk;                            /* 0: the default (infer_chunk_size) */
    long threads;                          /* 0: 1 */
    double timeout;
    int json;
} infer_opts;

/* Returns 0, or the exit status of a usage error. */
static int parse_args(int argc, char **argv, infer_opts *o)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int has = i + 1 < argc;
        if (!strcmp(a, "--input") && has) o->input = argv[++i];
        else if (!strcmp(a, "--random") && has) {
            if (cli_parse_int("infer", "--random", argv[++i], 1, 1 << 20, &o->nrand)) return 2;
        } else if (!strcmp(a, "--seed") && has) {
            if (cli_parse_int("infer", "--seed", argv[++i], 0, 2147483647L, &o->seed)) return 2;
        } else if (!strcmp(a, "--frac-bits") && has) {
            if (cli_parse_int("infer", "--frac-bits", argv[++i], PINAS_FRAC_BITS_MIN, PINAS_FRAC_BITS_MAX, &o->frac_bits)) return 2;
        } else if (!strcmp(a, "--cmp-bits") && has) {
            if (cli_parse_int("infer", "--cmp-bits", argv[++i], PINAS_CMP_BITS_MIN, PINAS_CMP_BITS_MAX, &o->cmp_bits)) return 2;
        } else if (!strcmp(a, "--timeout") && has) {
            if (cli_parse_double("infer", "--timeout", argv[++i], 0.001, 86400, &o->timeout)) return 2;
        } else if (!strcmp(a, "--chunk") && has) {
            if (cli_parse_int("infer", "--chunk", argv[++i], 1, 1 << 20, &o->chunk)) return 2;
        } else if (!strcmp(a, "--threads") && has) {
            if (cli_parse_int("infer", "--threads", argv[++i], 1, PINAS_MPC_MAX_THREADS, &o->threads)) return 2;
        } else if (!strcmp(a, "--keep") && has) o->keep = argv[++i];
        else if (!strcmp(a, "--json")) o->json = 1;
        else if (a[0] == '-') return cli_usage_error("infer", "unknown option %s", a);
        else if (!o->dir) o->dir = a;
        else return cli_usage_error("infer", "unexpected argument %s", a);
    }
    if (!o->dir) return cli_usage_error("infer", "missing MODEL_DIR");
    if (!!o->input == !!o->nrand) return cli_usage_error("infer", "give exactly one of --input FILE and --random N");
    return 0;
}

/* Everything one run owns; freed by infer_free. */
typedef struct {
    pinas_model *m;
    pinas_mpc_params p;
    pinas_tensors *xt;        /* the input file (keeps the labels) */
    const int64_t *labels;    /* borrowed from xt; NULL when the input has none */
    float *x, *plain, *logits; /* all images: inputs, plaintext and private logits */
    int batch, nc;
    int cmp_bits_given;       /* --cmp-bits: every slot, meta.json's mpc.layers ignored */
    int chunk, b0, n;         /* images per chunk; the current chunk's first image and size */
    double t_deal;
    uint64_t rss[2], max_node[2]; /* the parties' peak RSS and largest layer's material (max over chunks) */
    double read_s[2];             /* the parties' seconds reading preprocessing (summed over chunks) */
    pinas_mpc_report *rep;    /* the client's, with the server's own work merged in; summed over chunks */
    char *work;               /* the directory of the files below */
    char *f0, *f1, *fx, *fl, *fsr, *fcr; /* the current chunk's prep files, input, logits, reports */
} infer_run;

/* SIGINT/SIGTERM/SIGHUP: the handler stops the parties, waits for them, removes the work directory's
 * files (all of them and the directory when it is the run's own; only "*.tmp.*" in a --keep DIR) and
 * dies of the signal -- at once, even in the middle of the dealer's work, with async-signal-safe calls
 * only (kill, waitpid, getdents64, unlinkat, write). Process-wide by nature, so these are the only
 * globals of the command. */
static volatile pid_t g_party[2];
static char g_work[4096];
static int g_own_work;

struct dirent64_raw {
    uint64_t ino;
    int64_t off;
    unsigned short reclen;
    unsigned char type;
    char name[];
};

/* Removes the directory's files (see above); async-signal-safe. */
static void clean_workdir(const char *work, int own)
{
    int fd = open(work, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return;
    char buf[4096] __attribute__((aligned(8)));
    for (long n; (n = syscall(SYS_getdents64, fd, buf, sizeof buf)) > 0;)
        for (long off = 0; off < n;) {
            const struct dirent64_raw *e = (const void *)(buf + off);
            off += e->reclen;
            if (!strcmp(e->name, ".") || !strcmp(e->name, "..")) continue;
            if (own || strstr(e->name, ".tmp.")) unlinkat(fd, e->name, 0);
        }
    close(fd);
    if (own) rmdir(work);
}

static void on_signal(int sig)
{
    for (int i = 0; i < 2; i++)
        if (g_party[i] > 0) kill(g_party[i], SIGTERM);
    for (int i = 0; i < 2; i++)
        if (g_party[i] > 0) waitpid(g_party[i], NULL, 0);
    if (g_work[0]) clean_workdir(g_work, g_own_work);
    static const char msg[] = "pinas infer: interrupted; the parties were stopped and the temporary files removed\n";
    if (write(2, msg, sizeof msg - 1) < 0) { /* nothing more to do */
    }
    signal(sig, SIG_DFL);
    raise(sig);
}

/* From here on a signal cleans `work` (the run's own directory when own) before the process dies. */
static void install_signals(const char *work, int own)
{
    snprintf(g_work, sizeof g_work, "%s", work);
    g_own_work = own;
    struct sigaction sa = {.sa_handler = on_signal, .sa_flags = SA_RESTART};
    sigemptyset(&sa.sa_mask);
    sigaddset(&sa.sa_mask, SIGINT), sigaddset(&sa.sa_mask, SIGTERM), sigaddset(&sa.sa_mask, SIGHUP);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    /* past `ulimit -f` a write fails with EFBIG and a message naming the file (the parties inherit this) */
    signal(SIGXFSZ, SIG_IGN);
}

static void free_names(infer_run *r)
{
    free(r->f0), free(r->f1), free(r->fx), free(r->fl), free(r->fsr), free(r->fcr);
    r->f0 = r->f1 = r->fx = r->fl = r->fsr = r->fcr = NULL;
}

static void infer_free(infer_run *r, const infer_opts *o)
{
    if (r->work) clean_workdir(r->work, !o->keep);
    free_names(r);
    pinas_mpc_report_free(r->rep);
    pinas_tensors_free(r->xt);
    free(r->x);
    free(r->plain);
    free(r->logits);
    pinas_model_free(r->m);
}

/* x from --input: tensor "x" F32 [N, C, H, W] and the optional labels "y" I64 [N]. */
static pinas_status input_from_file(pinas_ctx *ctx, const char *input, infer_run *r)
{
    const pinas_node *in = pinas_net_node(r->m->net, 0);
    size_t per = (size_t)in->c * in->h * in->w;
    pinas_tensor_view v, yv;
    pinas_status s = pinas_safetensors_load(ctx, input, &r->xt);
    if (!s && pinas_tensors_find(r->xt, "x", &v) != 0) s = pinas_error(ctx, PINAS_EFORMAT, "%s: no tensor \"x\"", input);
    if (!s && (v.dtype != PINAS_F32 || v.ndim != 4 || v.shape[1] != in->c || v.shape[2] != in->h || v.shape[3] != in->w))
        s = pinas_error(ctx, PINAS_ESHAPE, "%s: tensor x: expected F32 [N, %d, %d, %d]", input, in->c, in->h, in->w);
    if (!s) {
        r->batch = (int)v.shape[0];
        r->x = malloc(sizeof(float) * per * r->batch);
        if (r->x) memcpy(r->x, v.data, sizeof(float) * per * r->batch);
    }
    if (!s && pinas_tensors_find(r->xt, "y", &yv) == 0) {
        int64_t ys[1] = {r->batch};
        s = pinas_tensors_expect(ctx, r->xt, input, "y", PINAS_I64, 1, ys, &yv);
        if (!s) r->labels = yv.data;
        for (int b = 0; !s && b < r->batch; b++)
            if (r->labels[b] < 0 || r->labels[b] >= r->nc)
                s = pinas_error(ctx, PINAS_EFORMAT, "%s: tensor y[%d] = %lld is not a class in [0, %d)", input, b,
                                (long long)r->labels[b], r->nc);
    }
    return s;
}

/* n standard-normal values from common's seeded generator. */
static void random_normal(float *x, size_t n, long seed)
{
    pinas_rng r = {(uint64_t)seed};
    pinas_rng_fill_normal(&r, x, n);
}

/* The model, its parameters (meta.json, then the options) and the input. */
static pinas_status infer_load(pinas_ctx *ctx, const infer_opts *o, infer_run *r)
{
    pinas_mpc_params_default(&r->p);
    pinas_status s = pinas_model_load(ctx, o->dir, &r->m);
    if (s) return s;
    pinas_mpc_params_from_meta(&r->m->meta, &r->p);
    if (o->frac_bits > 0) r->p.frac_bits = (int)o->frac_bits;
    if (o->cmp_bits > 0) r->p.cmp_bits = (int)o->cmp_bits;
    r->cmp_bits_given = o->cmp_bits > 0;
    r->p.threads = o->threads > 0 ? (int)o->threads : 1;
    r->nc = pinas_net_num_classes(r->m->net);
    if (o->input) {
        s = input_from_file(ctx, o->input, r);
    } else {
        const pinas_node *in = pinas_net_node(r->m->net, 0);
        size_t n = (size_t)in->c * in->h * in->w * (size_t)o->nrand;
        r->batch = (int)o->nrand;
        r->x = malloc(sizeof(float) * n);
        if (r->x) random_normal(r->x, n, o->seed);
    }
    if (!s && !r->x) s = pinas_error(ctx, PINAS_ENOMEM, "out of memory");
    if (!s) {
        r->plain = malloc(sizeof(float) * (size_t)r->batch * (r->nc ? r->nc : 1));
        r->logits = malloc(sizeof(float) * (size_t)r->batch * (r->nc ? r->nc : 1));
        if (!r->plain || !r->logits) s = pinas_error(ctx, PINAS_ENOMEM, "out of memory");
    }
    return s;
}

/* Images per chunk: --chunk, else 16, or fewer so that a chunk's preprocessing (both parties' files on
 * disk; the dealer and the parties hold one layer of it at a time) stays under ~1 GiB. */
static pinas_status infer_chunk_size(pinas_ctx *ctx, const infer_opts *o, infer_run *r)
{
    if (o->chunk > 0) {
        r->chunk = (int)(o->chunk < r->batch ? o->chunk : r->batch);
        return PINAS_OK;
    }
    pinas_mpc_params q = r->p;
    pinas_mpc_cost c;
    q.batch = 1;
    pinas_status s = pinas_mpc_cost_net(ctx, r->m->net, &q, &c);
    if (s) return s;
    double per = (double)c.offline.bytes[0] + (double)c.offline.bytes[1], cap = 1024.0 * 1024 * 1024;
    long n = per > 0 ? (long)(cap / per) : 16;
    n = n < 1 ? 1 : n > 16 ? 16 : n;
    r->chunk = (int)(n < r->batch ? n : r->batch);
    return PINAS_OK;
}

/* The working directory: --keep DIR, else a fresh one under $TMPDIR or /tmp (0700, mkdtemp). */
static pinas_status infer_workdir(pinas_ctx *ctx, const infer_opts *o, infer_run *r, char *tmpl)
{
    r->work = o->keep ? (char *)o->keep : mkdtemp(tmpl);
    if (!r->work) return pinas_error(ctx, PINAS_EIO, "cannot create a temporary directory: %s", strerror(errno));
    pinas_status s = o->keep ? pinas_mkdir_p(ctx, o->keep) : PINAS_OK;
    if (!s) install_signals(r->work, !o->keep);
    return s;
}

/* The names of chunk k's files: plain names with one chunk, "chunk<k>-" names with several. */
static pinas_status chunk_names(pinas_ctx *ctx, infer_run *r, int k)
{
    const char *base[6] = {"server.prep", "client.prep", "x.safetensors", "logits.safetensors", "server.json", "client.json"};
    char **dst[6] = {&r->f0, &r->f1, &r->fx, &r->fl, &r->fsr, &r->fcr};
    int multi = r->chunk < r->batch;
    free_names(r);
    for (int i = 0; i < 6; i++) {
        char *name = multi ? pinas_strfmt("chunk%d-%s", k, base[i]) : pinas_strdup(base[i]);
        *dst[i] = name ? pinas_path_join(r->work, name) : NULL;
        free(name);
        if (!*dst[i]) return pinas_error(ctx, PINAS_ENOMEM, "out of memory");
    }
    return PINAS_OK;
}

/* Without --keep, a finished chunk's files go at once: disk use is one chunk's. */
static void chunk_unlink(const infer_run *r, const infer_opts *o)
{
    if (o->keep) return;
    const char *files[] = {r->f0, r->f1, r->fx, r->fl, r->fsr, r->fcr};
    for (int i = 0; i < 6; i++)
        if (files[i]) unlink(files[i]);
}

/* The dealer's two files and the input file the client reads. */
static pinas_status infer_deal(pinas_ctx *ctx, infer_run *r)
{
    pinas_mpc_prep *p0 = NULL, *p1 = NULL;
    r->p.batch = r->n;
    /* a fresh dealer key per run, in the work dir (0600), for the parties to check the files with */
    char *dkp = pinas_path_join(r->work, "dealer.key");
    uint8_t dk[PINAS_MPC_DEALER_KEY_BYTES];
    pinas_status s = dkp ? PINAS_OK : pinas_error(ctx, PINAS_ENOMEM, "out of memory");
    if (!s && !pinas_path_exists(dkp)) s = pinas_mpc_dealer_keygen(ctx, dkp);
    if (!s) s = pinas_mpc_dealer_key_load(ctx, dkp, dk);
    double t0 = pinas_now();
    pinas_mpc_layer_bits *lb = NULL; /* a bit-cut model's windows (meta.json mpc.layers), unless --cmp-bits */
    int n_lb = r->cmp_bits_given ? 0 : pinas_mpc_layer_bits_from_meta(&r->m->meta, &lb);
    pinas_mpc_deal_opts dopts = {.layer_bits = lb, .n_layer_bits = n_lb > 0 ? n_lb : 0};
    if (!s && n_lb < 0) s = pinas_error(ctx, PINAS_ENOMEM, "out of memory");
    /* streamed to the two files, one layer at a time */
    if (!s) s = pinas_mpc_deal_files(ctx, r->m->net, &r->p, &dopts, r->f0, r->f1, dk, &p0, &p1);
    free(lb);
    r->t_deal += pinas_now() - t0;
    OPENSSL_cleanse(dk, sizeof dk);
    free(dkp);
    for (int q = 0; q < 2 && !s; q++) {
        uint64_t mx = pinas_mpc_prep_max_node_bytes(q ? p1 : p0);
        if (mx > r->max_node[q]) r->max_node[q] = mx;
    }
    pinas_mpc_prep_free(p0);
    pinas_mpc_prep_free(p1);
    if (!s) {
        const pinas_node *in = pinas_net_node(r->m->net, 0);
        pinas_tensors *t = pinas_tensors_create();
        int64_t shp[4] = {r->n, in->c, in->h, in->w};
        const float *x = r->x + (size_t)r->b0 * in->c * in->h * in->w;
        s = t ? pinas_tensors_add(ctx, t, "x", PINAS_F32, 4, shp, x) : pinas_error(ctx, PINAS_ENOMEM, "out of memory");
        if (!s) s = pinas_safetensors_save_mode(ctx, r->fx, t, NULL, PINAS_FILE_SECRET); /* the client's private input */
        pinas_tensors_free(t);
    }
    return s;
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

/* Runs `pinas party` as server and as client, and waits for both. */
static pinas_status infer_parties(pinas_ctx *ctx, const infer_opts *o, const infer_run *r)
{
    char hp[64], tm[32], th[16];
    snprintf(hp, sizeof hp, "127.0.0.1:%d", free_port());
    snprintf(tm, sizeof tm, "%g", o->timeout);
    snprintf(th, sizeof th, "%ld", o->threads > 0 ? o->threads : 1);
    /* TLS by default with no setup: a fresh PSK in the run's private directory, for these two only */
    char *psk = pinas_path_join(r->work, "channel.psk");
    pinas_status s = psk ? pinas_chan_keygen_psk(ctx, psk) : pinas_error(ctx, PINAS_ENOMEM, "out of memory");
    if (s) {
        free(psk);
        return s;
    }
    char *dkp = pinas_path_join(r->work, "dealer.key"); /* written by infer_deal */
    if (!dkp) return pinas_error(ctx, PINAS_ENOMEM, "out of memory");
    char *sa[] = {"pinas", "party", "--role", "server", "--model", (char *)o->dir, "--prep", r->f0, "--dealer-key", dkp, "--listen", hp,
                  "--report", r->fsr, "--timeout", tm, "--psk", psk, "--threads", th,
                  "--no-preverify", NULL}; /* just dealt here; each layer is still verified as it is read */
    char *ca[] = {"pinas", "party", "--role", "client", "--model", (char *)o->dir, "--prep", r->f1, "--dealer-key", dkp, "--connect", hp,
                  "--input", r->fx, "--output", r->fl, "--report", r->fcr, "--timeout", tm, "--psk", psk, "--threads", th,
                  "--no-preverify", NULL};
    int two = sysconf(_SC_NPROCESSORS_ONLN) >= 2 && o->threads <= 1; /* a core each; with threads the OS places them */
    fflush(NULL);
    pid_t ps = spawn(sa, two ? 0 : -1), pc = spawn(ca, two ? 1 : -1);
    g_party[0] = ps, g_party[1] = pc; /* a signal between fork and here: the parties see their peer go */
    int ws = 0, wc = 0;
    if (ps > 0) waitpid(ps, &ws, 0);
    if (pc > 0) waitpid(pc, &wc, 0);
    free(dkp);
    g_party[0] = g_party[1] = 0;
    unlink(psk);
    free(psk);
    if (ps <= 0 || pc <= 0) return pinas_error(ctx, PINAS_EINTERNAL, "cannot start the party processes");
    if (!WIFEXITED(ws) || WEXITSTATUS(ws) || !WIFEXITED(wc) || WEXITSTATUS(wc))
        return pinas_error(ctx, PINAS_EPEER, "the private inference failed (server %s %d, client %s %d; see their messages above)",
                           WIFEXITED(ws) ? "exit" : "signal", WIFEXITED(ws) ? WEXITSTATUS(ws) : WTERMSIG(ws),
                           WIFEXITED(wc) ? "exit" : "signal", WIFEXITED(wc) ? WEXITSTATUS(wc) : WTERMSIG(wc));
    return PINAS_OK;
}

/* Adds chunk `c`'s report (rows, totals, session, times) into the run's; the first is kept as is. */
static void report_accumulate(infer_run *r, pinas_mpc_report *c)
{
    if (!r->rep) {
        r->rep = c;
        return;
    }
    pinas_mpc_report *a = r->rep;
    for (int l = 0; l < a->n_layers && l < c->n_layers; l++) {
        a->layers[l].online_s += c->layers[l].online_s;
        pinas_mpc_cost_add(&a->layers[l].measured, &c->layers[l].measured);
    }
    a->online_s += c->online_s;
    a->offline_s += c->offline_s;
    pinas_mpc_cost_add(&a->totals, &c->totals);
    pinas_mpc_counts_add(&a->session, &c->session);
    pinas_mpc_report_free(c);
}

/* A chunk's results: the client's logits and the parties' reports (merged, then added to the run's). */
static pinas_status infer_collect(pinas_ctx *ctx, infer_run *r)
{
    pinas_tensor_view lv;
    pinas_tensors *lt = NULL;
    pinas_mpc_report *sr = NULL, *cr = NULL;
    int64_t shp[2] = {r->n, r->nc};
    pinas_status s = pinas_safetensors_load(ctx, r->fl, &lt);
    if (!s) s = pinas_tensors_expect(ctx, lt, r->fl, "logits", PINAS_F32, 2, shp, &lv);
    if (!s) memcpy(r->logits + (size_t)r->b0 * r->nc, lv.data, sizeof(float) * (size_t)r->n * r->nc);
    pinas_tensors_free(lt);
    if (!s) s = pinas_mpc_report_load(ctx, r->fcr, &cr);
    if (!s) s = pinas_mpc_report_load(ctx, r->fsr, &sr);
    if (!s && r->rep && r->rep->n_layers != cr->n_layers)
        s = pinas_error(ctx, PINAS_EFORMAT, "%s: %d layers, the first chunk's report has %d", r->fcr, cr->n_layers,
                        r->rep->n_layers);
    if (!s) {
        const pinas_mpc_report *pr[2] = {sr, cr};
        for (int q = 0; q < 2; q++) {
            if (pr[q]->peak_rss > r->rss[q]) r->rss[q] = pr[q]->peak_rss;
            r->read_s[q] += pr[q]->prep_read_s;
        }
        pinas_mpc_report_merge(cr, sr);
        report_accumulate(r, cr);
        cr = NULL;
    }
    pinas_mpc_report_free(sr);
    pinas_mpc_report_free(cr);
    return s;
}

/* The plaintext reference in blocks of PLAIN_BLOCK images, whatever --chunk is: the float results
 * depend on the batch the executor sees, so the reference is the same for every chunk size (and the
 * same as before chunking for up to 64 images), and its memory stays bounded. */
#define PLAIN_BLOCK 64
static pinas_status infer_plain(pinas_ctx *ctx, infer_run *r)
{
    const pinas_node *in = pinas_net_node(r->m->net, 0);
    size_t per = (size_t)in->c * in->h * in->w;
    pinas_status s = PINAS_OK;
    for (int b0 = 0; !s && b0 < r->batch; b0 += PLAIN_BLOCK) {
        int n = r->batch - b0 < PLAIN_BLOCK ? r->batch - b0 : PLAIN_BLOCK;
        s = pinas_plain_forward(ctx, r->m, r->x + (size_t)b0 * per, n, r->plain + (size_t)b0 * r->nc);
    }
    return s;
}

/* The images in chunks of r->chunk: deal, run the parties, collect; a chunk's files are removed
 * before the next is dealt (unless --keep). */
static pinas_status infer_chunks(pinas_ctx *ctx, const infer_opts *o, infer_run *r)
{
    pinas_status s = PINAS_OK;
    for (int k = 0; !s && k * r->chunk < r->batch; k++) {
        r->b0 = k * r->chunk;
        r->n = r->batch - r->b0 < r->chunk ? r->batch - r->b0 : r->chunk;
        s = chunk_names(ctx, r, k);
        if (!s) s = infer_deal(ctx, r);
        if (!s) s = infer_parties(ctx, o, r);
        if (!s) s = infer_collect(ctx, r);
        chunk_unlink(r, o);
    }
    r->p.batch = r->batch;
    return s;
}

/* Private against plaintext: per-sample classes, the max abs logit error, agreement, accuracy. */
typedef struct {
    double err;
    int finite, agree, ok_priv, ok_plain;
    int *best, *pbest;
} infer_cmp;

static pinas_status compare(pinas_ctx *ctx, const infer_run *r, infer_cmp *c)
{
    int nc = r->nc;
    c->best = calloc((size_t)r->batch + 1, sizeof *c->best);
    c->pbest = calloc((size_t)r->batch + 1, sizeof *c->pbest);
    if (!c->best || !c->pbest) return pinas_error(ctx, PINAS_ENOMEM, "out of memory");
    c->finite = 1;
    for (size_t q = 0; q < (size_t)r->batch * nc; q++) c->finite &= isfinite(r->plain[q]) != 0;
    const float *lg = r->logits, *pl = r->plain;
    for (int b = 0; b < r->batch; b++) {
        int best = 0, pbest = 0;
        for (int k = 0; k < nc; k++) {
            c->err = fmax(c->err, fabs(lg[b * nc + k] - pl[b * nc + k]));
            if (lg[b * nc + k] > lg[b * nc + best]) best = k;
            if (pl[b * nc + k] > pl[b * nc + pbest]) pbest = k;
        }
        c->best[b] = best;
        c->pbest[b] = pbest;
        c->agree += best == pbest;
        if (r->labels) {
            c->ok_priv += best == r->labels[b];
            c->ok_plain += pbest == r->labels[b];
        }
    }
    return PINAS_OK;
}

static cJSON *result_json(const infer_run *r, const infer_cmp *c)
{
    int nc = r->nc, batch = r->batch;
    cJSON *out = cJSON_CreateObject(), *jl = cJSON_AddArrayToObject(out, "logits"),
          *jp = cJSON_AddArrayToObject(out, "plaintext_logits"), *jc = cJSON_AddArrayToObject(out, "classes"),
          *jpc = cJSON_AddArrayToObject(out, "plaintext_classes");
    for (int b = 0; b < batch; b++) {
        cJSON_AddItemToArray(jl, cJSON_CreateFloatArray(r->logits + (size_t)b * nc, nc));
        cJSON_AddItemToArray(jp, cJSON_CreateFloatArray(r->plain + (size_t)b * nc, nc));
        cJSON_AddItemToArray(jc, cJSON_CreateNumber(c->best[b]));
        cJSON_AddItemToArray(jpc, cJSON_CreateNumber(c->pbest[b]));
    }
    if (c->finite)
        cJSON_AddNumberToObject(out, "max_abs_error", c->err);
    else /* a random deep polynomial net can overflow float: there is no reference to compare with */
        cJSON_AddNullToObject(out, "max_abs_error");
    cJSON_AddNumberToObject(out, "argmax_agreement", (double)c->agree / batch);
    if (r->labels) {
        cJSON *acc = cJSON_AddObjectToObject(out, "accuracy");
        cJSON_AddNumberToObject(acc, "private", (double)c->ok_priv / batch);
        cJSON_AddNumberToObject(acc, "plaintext", (double)c->ok_plain / batch);
        cJSON_AddNumberToObject(acc, "n", batch);
    }
    cJSON_AddNumberToObject(out, "frac_bits", r->p.frac_bits);
    cJSON_AddNumberToObject(out, "cmp_bits", r->p.cmp_bits);
    cJSON_AddNumberToObject(out, "dealer_seconds", r->t_deal);
    cJSON_AddNumberToObject(out, "threads", r->p.threads);
    cJSON *rss = cJSON_AddObjectToObject(out, "peak_rss_bytes"), *mx = cJSON_AddObjectToObject(out, "prep_bytes_max_layer"),
          *rd = cJSON_AddObjectToObject(out, "prep_read_s");
    cJSON_AddNumberToObject(rss, "dealer", (double)pinas_mpc_peak_rss());
    const char *who[2] = {"server", "client"};
    for (int q = 0; q < 2; q++) {
        cJSON_AddNumberToObject(rss, who[q], (double)r->rss[q]);
        cJSON_AddNumberToObject(mx, who[q], (double)r->max_node[q]);
        cJSON_AddNumberToObject(rd, who[q], r->read_s[q]);
    }
    cJSON *rj = pinas_mpc_report_json(r->rep);
    cJSON_AddItemToObject(out, "layers", cJSON_DetachItemFromObject(rj, "layers"));
    cJSON_AddItemToObject(out, "totals", cJSON_DetachItemFromObject(rj, "totals"));
    cJSON_Delete(rj);
    return out;
}

static void print_table(const infer_run *r, const infer_cmp *c)
{
    int batch = r->batch;
    cli_print_mpc_report(stdout, r->rep);
    printf("peak RSS: dealer (this process) %.1f MB, server %.1f MB, client %.1f MB; largest layer's preprocessing %.1f MB "
           "server, %.1f MB client\n",
           pinas_mpc_peak_rss() / 1e6, r->rss[0] / 1e6, r->rss[1] / 1e6, r->max_node[0] / 1e6, r->max_node[1] / 1e6);
    printf("dealer %.3f s; predicted classes:", r->t_deal);
    for (int b = 0; b < batch && b < 64; b++) printf(" %d", c->best[b]);
    if (c->finite)
        printf("%s\nmax abs logit error vs plaintext: %.3g (frac_bits %d); argmax agreement %d/%d\n", batch > 64 ? " ..." : "",
               c->err, r->p.frac_bits, c->agree, batch);
    else
        printf("%s\nthe plaintext logits are not finite (the model overflows float); no error to report\n",
               batch > 64 ? " ..." : "");
    if (r->labels)
        printf("accuracy on %d labelled inputs: private %.2f%% (%d/%d), plaintext %.2f%% (%d/%d)\n", batch,
               100.0 * c->ok_priv / batch, c->ok_priv, batch, 100.0 * c->ok_plain / batch, c->ok_plain, batch);
}

int pinas_cmd_infer(pinas_ctx *ctx, int argc, char **argv)
{
    if (cli_wants_help(argc, argv)) {
        help();
        return 0;
    }
    infer_opts o = {.frac_bits = -1, .cmp_bits = -1, .timeout = 60};
    int rc = parse_args(argc, argv, &o);
    if (rc) return rc;
    infer_run r = {0};
    infer_cmp c = {0};
    const char *td = getenv("TMPDIR");
    char tmpl[4096];
    snprintf(tmpl, sizeof tmpl, "%s/pinas-infer-XXXXXX", td && *td && strlen(td) < 4000 ? td : "/tmp");
    pinas_status s = infer_load(ctx, &o, &r);
    if (!s) s = infer_chunk_size(ctx, &o, &r);
    if (!s) s = infer_workdir(ctx, &o, &r, tmpl);
    if (!s) s = infer_chunks(ctx, &o, &r);
    if (!s) s = infer_plain(ctx, &r);
    if (!s) s = compare(ctx, &r, &c);
    if (!s && o.json) {
        cJSON *out = result_json(&r, &c);
        cli_print_json(out);
        cJSON_Delete(out);
    } else if (!s) {
        print_table(&r, &c);
    }
    free(c.best);
    free(c.pbest);
    infer_free(&r, &o);
    return s ? cli_fail(ctx) : 0;
}
