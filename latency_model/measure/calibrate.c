/* Calibration of the cpu profile: a sweep of calibration nets run privately, each party's compute
 * per node measured in thread CPU time, one relative least-squares fit per operator class and party. */
#define _GNU_SOURCE
#include "measure_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <time.h>

void pinas_measure_calib_opts_default(pinas_measure_calib_opts *o)
{
    memset(o, 0, sizeof *o);
    o->runs = 5;
    o->passes = 2;
    o->scale = 1;
    o->max_batch = 4;
    pinas_mpc_params_default(&o->params);
    pinas_measure_host_opts_default(&o->host);
}

/* The sweep: (channels, side) pairs from wide-and-small to narrow-and-large, as CIFAR and small
 * ImageNet nets have them (ResNet-20: 16x32x32 .. 64x8x8; VGG-16: 64x32x32 .. 512x2x2; MobileNetV2's
 * expanded layers up to 960 channels). */
static const int sweep_shape[][2] = {{8, 32},  {16, 32}, {32, 32}, {64, 32}, {32, 16}, {64, 16}, {96, 8},
                                     {128, 8}, {256, 4}, {512, 2}, {48, 8},  {32, 4},  {160, 2}};
#define N_SWEEP (int)(sizeof sweep_shape / sizeof sweep_shape[0])

/* Calibration net v of the sweep (see pinas_measure_calibrate); C channels of H x H. */
static pinas_status calib_net(pinas_ctx *ctx, int v, int C, int H, pinas_net **out)
{
    char name[48];
    snprintf(name, sizeof name, "calib-%dx%d", C, H);
    pinas_cand relu = {.kind = PINAS_CAND_RELU}, poly = {.kind = PINAS_CAND_POLY};
    pinas_cand patch = {.kind = PINAS_CAND_PATCH_RELU, .ph = 2 + v % 2, .pw = 2 + v % 2};
    pinas_cand maxp = {.kind = PINAS_CAND_MAXPOOL}, avgp = {.kind = PINAS_CAND_AVGPOOL};
    int k = v % 2 ? 3 : 2, pad = v % 2; /* pools: 3x3 stride 2 pad 1 (stems) or 2x2 stride 2 (VGG) */
    pinas_net_builder *b = pinas_nb_create(name, 3, H, H, 10);
    int x = pinas_nb_conv(b, "stem", 0, C, 3, 1, 1, 1); /* a few input channels: short im2col rows */
    x = pinas_nb_conv(b, "c1", x, C, 3, 1, 1, 1);
    x = pinas_nb_batchnorm(b, "bn1", x);
    int r = pinas_nb_act(b, "relu1", x, &relu, 1);
    x = pinas_nb_conv(b, "c2", r, 2 * C, 1, 1, 0, 1);
    x = pinas_nb_act(b, "poly", x, &poly, 1);
    x = pinas_nb_conv(b, "dw", x, 2 * C, 3, 1, 1, 2 * C);
    x = pinas_nb_act(b, "patch", x, &patch, 1);
    x = pinas_nb_conv(b, "c3", x, C, 3, 1, 1, 1);
    x = pinas_nb_add(b, "add", x, r);
    /* which pool sees the full H x H map alternates too (stems pool large maps, VGG small ones) */
    int first = (v / 2) % 2;
    x = pinas_nb_pool(b, first ? "avgpool" : "maxpool", x, k, 2, pad, first ? &avgp : &maxp, 1);
    x = pinas_nb_conv(b, "c4", x, C, 1, 1, 0, 1);
    if (H >= 4) x = pinas_nb_pool(b, first ? "maxpool" : "avgpool", x, k, 2, pad, first ? &maxp : &avgp, 1);
    x = pinas_nb_act(b, "relu2", x, &relu, 1);
    x = pinas_nb_global_avgpool(b, "gap", x);
    x = pinas_nb_flatten(b, "flat", x);
    pinas_nb_linear(b, "fc", x, 10, 1);
    return pinas_nb_finish(ctx, b, "calibration net", out);
}

/* Appends the measured nodes of one net at one batch to r->rows (nodes that computed nothing
 * skipped); on a later pass (*at >= 0: the row to compare next) keeps the least of the passes. */
static pinas_status add_rows(pinas_ctx *ctx, const pinas_net *net, const pinas_mpc_params *p, const pinas_measure_nodes *mn,
                             pinas_measure_calib_result *r, int *cap, int *at)
{
    for (int i = 0; i < pinas_net_n_nodes(net); i++) {
        int prim = pinas_cpu_prim_of(net, i, NULL);
        if (prim < 0) continue;
        pinas_mpc_cost counts;
        pinas_status s = pinas_mpc_cost_node(ctx, net, i, -1, p, &counts);
        if (s) return s;
        for (int q = 0; q < 2; q++) {
            if (!(mn->cpu_s[i][q] > 0)) continue;
            if (*at >= 0) { /* the same node, party and batch as in the first pass, in the same order */
                pinas_measure_calib_row *row = *at < r->n_rows ? &r->rows[*at] : NULL;
                if (!row || strcmp(row->id, pinas_net_node(net, i)->id) != 0 || row->party != q || row->batch != p->batch)
                    return pinas_error(ctx, PINAS_EINTERNAL, "calibrate: pass 2 measured node %s where pass 1 had %s",
                                       pinas_net_node(net, i)->id, row ? row->id : "nothing");
                if (mn->cpu_s[i][q] < row->measured_s) row->measured_s = mn->cpu_s[i][q];
                ++*at;
                continue;
            }
            if (r->n_rows == *cap) {
                int nc = *cap ? 2 * *cap : 256;
                pinas_measure_calib_row *nr = realloc(r->rows, (size_t)nc * sizeof *nr);
                if (!nr) return pinas_error(ctx, PINAS_ENOMEM, "out of memory");
                r->rows = nr;
                *cap = nc;
            }
            pinas_measure_calib_row *row = &r->rows[r->n_rows++];
            memset(row, 0, sizeof *row);
            snprintf(row->net, sizeof row->net, "%s", pinas_net_name(net));
            snprintf(row->id, sizeof row->id, "%s", pinas_net_node(net, i)->id);
            row->prim = prim;
            row->party = q;
            row->batch = p->batch;
            pinas_cpu_features(net, i, NULL, p->batch, &counts, q, row->f);
            row->measured_s = mn->cpu_s[i][q];
        }
    }
    return PINAS_OK;
}

/* Runs the sweep: every net at batch 1 and max_batch; pass > 0 keeps the least per node. */
static pinas_status run_sweep(pinas_ctx *ctx, const pinas_measure_calib_opts *o, int pass, pinas_measure_calib_result *r,
                              pinas_progress *pg, int *cap, int *step)
{
    int at = pass ? 0 : -1;
    int batches[2] = {1, o->max_batch > 1 ? o->max_batch : 1}, nb = batches[1] > 1 ? 2 : 1;
    pinas_status s = PINAS_OK;
    for (int v = 0; v < N_SWEEP && !s; v++) {
        int C = (int)lround(sweep_shape[v][0] * o->scale);
        pinas_net *net = NULL;
        pinas_model *m = NULL;
        s = calib_net(ctx, v, C > 0 ? C : 1, sweep_shape[v][1], &net);
        if (!s) s = pinas_model_random(ctx, net, (uint64_t)v + 1, &m);
        for (int bi = 0; bi < nb && !s; bi++) {
            pinas_mpc_params p = o->params;
            p.batch = batches[bi];
            p.threads = 1;
            pinas_measure_nodes mn;
            s = pinas_measure_node_cpu(ctx, m, p.batch, &p, o->runs, (uint64_t)v * 7 + 1, &mn);
            r->measurements++;
            r->unshielded += !mn.shielded;
            if (!s) s = add_rows(ctx, net, &p, &mn, r, cap, &at);
            pinas_measure_nodes_free(&mn);
            if (pg) pinas_progress_update(pg, ++*step, pinas_net_name(net));
        }
        if (!s && !pass) r->nets++;
        pinas_model_free(m);
        pinas_net_free(net);
    }
    return s;
}

/* Per class and party, the fit of measured compute on the features. */
static pinas_status fit_classes(pinas_ctx *ctx, pinas_measure_calib_result *r, pinas_cpu_params *cp)
{
    double *X = malloc((size_t)(r->n_rows ? r->n_rows : 1) * PINAS_CPU_N_FEAT * sizeof *X);
    double *y = malloc((size_t)(r->n_rows ? r->n_rows : 1) * sizeof *y);
    int *idx = malloc((size_t)(r->n_rows ? r->n_rows : 1) * sizeof *idx);
    pinas_status s = X && y && idx ? PINAS_OK : pinas_error(ctx, PINAS_ENOMEM, "out of memory");
    for (int k = 0; k < PINAS_CPU_N_PRIM && !s; k++)
        for (int q = 0; q < 2 && !s; q++) {
            int n = 0;
            for (int i = 0; i < r->n_rows; i++)
                if (r->rows[i].prim == k && r->rows[i].party == q) {
                    memcpy(&X[(size_t)n * PINAS_CPU_N_FEAT], r->rows[i].f, sizeof r->rows[i].f);
                    y[n] = r->rows[i].measured_s;
                    idx[n++] = i;
                }
            cp->fit_rows[k][q] = n;
            cp->fit_mape[k][q] = NAN;
            if (n == 0) continue; /* a class the sweep has no node of (a party that does nothing) predicts 0 */
            s = pinas_measure_fit_linear(ctx, n, PINAS_CPU_N_FEAT, X, y, cp->coef[k][q], &cp->fit_mape[k][q]);
            if (s) s = pinas_error_prefix(ctx, s, "calibrate: %s, %s", pinas_cpu_prim_name(k), q ? "client" : "server");
            for (int j = 0; j < n && !s; j++) r->rows[idx[j]].fitted_s = pinas_cost_cpu_fit(cp, k, q, r->rows[idx[j]].f);
        }
    free(X);
    free(y);
    free(idx);
    return s;
}

/* The dealer's throughput for the offline estimate: AES blocks and ring multiply-adds per second. */
static pinas_status dealer_rates(pinas_ctx *ctx, const pinas_measure_calib_opts *o, pinas_cpu_params *cp)
{
    const char *off_kinds[2] = {"prg", "gemm"};
    int64_t off_n[2] = {(int64_t)(1048576 * o->scale), (int64_t)(16777216 * o->scale)};
    for (int k = 0; k < 2; k++) {
        double best = 0;
        pinas_mpc_cost oc;
        memset(&oc, 0, sizeof oc);
        if (off_n[k] < 4096) off_n[k] = 4096;
        pinas_status s = measure_runtime_bench(ctx, off_kinds[k], off_n[k], 3, &o->params, &best, &oc, NULL);
        if (s) return pinas_error_prefix(ctx, s, "calibrate: bench %s", off_kinds[k]);
        double work = k == 0 ? (double)oc.offline.aes_blocks[0] : (double)oc.offline.ring_macs[0];
        if (work <= 0) work = (double)off_n[k];
        double rate = best > 0 ? work / best : 1e15;
        if (k == 0) cp->aes_blocks_per_s = rate;
        else cp->ring_macs_per_s = rate;
    }
    return PINAS_OK;
}

/* The fitted profile, with where, when and how it was fitted. */
static pinas_status make_profile(pinas_ctx *ctx, const pinas_measure_calib_opts *o, const pinas_cpu_params *cp,
                                 pinas_measure_calib_result *r)
{
    char date[32], model[128];
    time_t now = time(NULL);
    struct tm tmv;
    strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&now, &tmv));
    struct utsname u;
    pinas_cpu_calibration cal = {
        .date = date,
        .machine = uname(&u) == 0 ? u.machine : NULL,
        .cpu_model = pinas_machine_cpu_model(model, sizeof model),
        .pinas_version = PINAS_VERSION,
        .git = PINAS_GIT_REV,
        .clock = "thread-cpu",
        .shield = r->unshielded ? (r->unshielded < r->measurements ? "partial" : "none") : "sched_fifo",
        .nets = r->nets,
        .reps = o->runs,
        .seconds = r->seconds,
        .frac_bits = o->params.frac_bits,
        .cmp_bits = o->params.cmp_bits,
    };
    if (!cal.cpu_model[0]) cal.cpu_model = NULL;
    return pinas_cost_hw_cpu_create(ctx, cp, &cal, &r->profile);
}

static pinas_status check_calib_opts(pinas_ctx *ctx, const pinas_measure_calib_opts *o)
{
    if (o->runs < 1 || o->runs > 100) return pinas_error(ctx, PINAS_EINVAL, "calibrate: runs must be in [1, 100], got %d", o->runs);
    if (!(o->scale > 0 && o->scale <= 8)) return pinas_error(ctx, PINAS_EINVAL, "calibrate: scale must be in (0, 8], got %g", o->scale);
    if (o->max_batch < 1 || o->max_batch > 64)
        return pinas_error(ctx, PINAS_EINVAL, "calibrate: max_batch must be in [1, 64], got %d", o->max_batch);
    if (o->passes < 1 || o->passes > 20) return pinas_error(ctx, PINAS_EINVAL, "calibrate: passes must be in [1, 20], got %d", o->passes);
    if (o->n_spaces < 0 || o->n_spaces > PINAS_MEASURE_MAX_SPACES || (o->n_spaces && !o->spaces))
        return pinas_error(ctx, PINAS_EINVAL, "calibrate: spaces must be 0 to %d, got %d", PINAS_MEASURE_MAX_SPACES, o->n_spaces);
    return measure_host_opts_check(ctx, &o->host, "calibrate");
}

pinas_status pinas_measure_calibrate(pinas_ctx *ctx, const pinas_measure_calib_opts *opts, pinas_measure_calib_result **out)
{
    *out = NULL;
    pinas_measure_calib_opts o;
    if (opts) o = *opts;
    else pinas_measure_calib_opts_default(&o);
    pinas_status s = check_calib_opts(ctx, &o);
    if (s) return s;
    pinas_measure_calib_result *r = calloc(1, sizeof *r);
    if (!r) return pinas_error(ctx, PINAS_ENOMEM, "out of memory");
    double t0 = pinas_now(), rtt = 0, bw = 0;
    int per_net = o.max_batch > 1 ? 2 : 1;
    for (int i = 0; i < o.n_spaces; i++) r->space_archs += measure_space_archs(o.spaces[i]) * o.passes;
    pinas_progress *pg = pinas_progress_create(ctx, stderr, "calibrate", (int64_t)(N_SWEEP * o.passes + r->space_archs) * per_net);
    pinas_cpu_params cp;
    memset(&cp, 0, sizeof cp);
    s = pinas_measure_warmup(ctx, &o.params, &cp.probe_s);
    int cap = 0, step = 0;
    measure_shape_list shapes = {0};
    for (int pass = 0; pass < o.passes && !s; pass++) { /* the spaces' passes between the sweep's: minutes apart */
        int bad = 0;
        if (!s) s = pinas_measure_host_gate(ctx, &o.host, 1, &r->host, &bad);
        r->disturbed_passes += bad;
        if (!s) s = run_sweep(ctx, &o, pass, r, pg, &cap, &step);
        double ts = pinas_now();
        if (!s && o.n_spaces) s = pinas_measure_host_gate(ctx, &o.host, 1, &r->host, &bad);
        r->disturbed_passes += o.n_spaces && bad;
        if (!s && o.n_spaces) s = measure_space_pass(ctx, &o, pass, pg, &step, &shapes);
        r->space_seconds += pinas_now() - ts;
    }
    if (!s) s = measure_space_finish(ctx, &shapes);
    const char *names[PINAS_MEASURE_MAX_SPACES];
    for (int i = 0; i < o.n_spaces; i++) names[i] = pinas_net_name(o.spaces[i]);
    r->n_shapes = shapes.n;
    cp.shapes = shapes.v;
    cp.n_shapes = shapes.n;
    cp.spaces = names;
    cp.n_spaces = o.n_spaces;
    pinas_progress_finish(pg);
    double probe_end = 0; /* the probe again after the sweep: the machine's speed over the whole run */
    if (!s) s = pinas_measure_probe(ctx, &o.params, &probe_end);
    if (!s) cp.probe_s = 0.5 * (cp.probe_s + probe_end);
    cp.host_memory_ns = pinas_measure_host_log_median(&r->host);
    if (!s) s = fit_classes(ctx, r, &cp);
    if (!s) s = dealer_rates(ctx, &o, &cp);
    if (!s) s = measure_loopback(ctx, &rtt, &bw);
    if (!s) s = pinas_cost_link_create(ctx, "loopback", bw, rtt, &r->net);
    r->seconds = pinas_now() - t0;
    if (!s) s = make_profile(ctx, &o, &cp, r);
    free(shapes.v);
    if (s) {
        pinas_measure_calib_result_free(r);
        return s;
    }
    r->aes_blocks_per_s = cp.aes_blocks_per_s;
    r->ring_macs_per_s = cp.ring_macs_per_s;
    *out = r;
    return PINAS_OK;
}

void pinas_measure_calib_result_free(pinas_measure_calib_result *r)
{
    if (!r) return;
    pinas_cost_hw_free(r->profile);
    pinas_cost_link_free(r->net);
    free(r->rows);
    free(r);
}

cJSON *pinas_measure_calib_result_to_json(const pinas_measure_calib_result *r)
{
    cJSON *rep = cJSON_CreateObject();
    cJSON_AddItemToObject(rep, "net", pinas_cost_link_to_json(r->net));
    cJSON *prof = pinas_cost_hw_to_json(r->profile);
    cJSON_AddItemToObject(rep, "classes", cJSON_Duplicate(cJSON_GetObjectItemCaseSensitive(prof, "primitives"), 1));
    cJSON *rows = cJSON_AddArrayToObject(rep, "rows"); /* [net, id, class, party, batch, measured s, fitted s] */
    for (int i = 0; i < r->n_rows; i++) {
        const pinas_measure_calib_row *w = &r->rows[i];
        cJSON *a = cJSON_CreateArray();
        cJSON_AddItemToArray(a, cJSON_CreateString(w->net));
        cJSON_AddItemToArray(a, cJSON_CreateString(w->id));
        cJSON_AddItemToArray(a, cJSON_CreateString(pinas_cpu_prim_name(w->prim)));
        cJSON_AddItemToArray(a, cJSON_CreateString(w->party ? "client" : "server"));
        cJSON_AddItemToArray(a, cJSON_CreateNumber(w->batch));
        cJSON_AddItemToArray(a, cJSON_CreateNumber(w->measured_s));
        cJSON_AddItemToArray(a, cJSON_CreateNumber(w->fitted_s));
        cJSON_AddItemToArray(rows, a);
    }
    cJSON_AddItemToObject(rep, "profile", prof);
    cJSON *ro = cJSON_AddObjectToObject(rep, "offline");
    cJSON_AddNumberToObject(ro, "aes_blocks_per_s", r->aes_blocks_per_s);
    cJSON_AddNumberToObject(ro, "ring_macs_per_s", r->ring_macs_per_s);
    cJSON_AddNumberToObject(rep, "nets", r->nets);
    cJSON_AddNumberToObject(rep, "shapes", r->n_shapes);
    cJSON_AddNumberToObject(rep, "unshielded", r->unshielded);
    cJSON_AddNumberToObject(rep, "space_archs", r->space_archs);
    cJSON_AddNumberToObject(rep, "space_seconds", r->space_seconds);
    cJSON_AddItemToObject(rep, "host", measure_host_log_json(&r->host, r->disturbed_passes));
    cJSON_AddNumberToObject(rep, "seconds", r->seconds);
    return rep;
}

static const char loopback_description[] =
    "Both parties on one host over TCP loopback (how `pinas infer`, `pinas calibrate` and `pinas validate-latency` "
    "run): round trip of one exchange and stream bandwidth between the runtime's two party threads, measured by "
    "`pinas calibrate` together with the cpu profile.";

pinas_status pinas_measure_calib_save(pinas_ctx *ctx, const pinas_measure_calib_result *r, const char *path, const char *loopback_path)
{
    cJSON *prof = pinas_cost_hw_to_json(r->profile);
    pinas_status s = prof ? pinas_json_save(ctx, path, prof) : pinas_error(ctx, PINAS_ENOMEM, "out of memory");
    cJSON_Delete(prof);
    if (s || !loopback_path) return s;
    cJSON *lj = pinas_cost_link_to_json(r->net);
    if (!lj) return pinas_error(ctx, PINAS_ENOMEM, "out of memory");
    cJSON_AddStringToObject(lj, "description", loopback_description);
    s = pinas_json_save(ctx, loopback_path, lj);
    cJSON_Delete(lj);
    return s;
}
