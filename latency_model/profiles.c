/* Hardware and network profiles: pinas-profile/1 JSON files, loaded by shipped name or by path. */
#define _GNU_SOURCE
#include "cost_internal.h"

#include <dirent.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char *const cpu_prim_names[PINAS_CPU_N_PRIM] = {"conv2d", "dwconv", "linear", "relu", "poly", "patch_relu",
                                                              "maxpool", "avgpool", "add", "global_avgpool", "input"};
static const char *const cpu_feat_names[PINAS_CPU_N_FEAT] = {"call", "macs", "aes", "in", "out", "weights", "cols"};
static const char *const party_names[2] = {"server", "client"};

const char *pinas_cpu_prim_name(int prim) { return prim >= 0 && prim < PINAS_CPU_N_PRIM ? cpu_prim_names[prim] : "?"; }
const char *pinas_cpu_feature_name(int f) { return f >= 0 && f < PINAS_CPU_N_FEAT ? cpu_feat_names[f] : "?"; }

const char *pinas_cost_profile_dir(void)
{
    static char buf[4096];
    const char *env = getenv("PINAS_PROFILE_DIR");
    if (env && *env) return env;
    snprintf(buf, sizeof buf, "%s/latency_model/profiles", PINAS_SOURCE_DIR);
    return buf;
}

/* Names of the shipped profiles of a kind class (hardware: 1, network: 0), for did-you-mean. */
static int shipped_names(int hardware, char names[][64], int max)
{
    DIR *d = opendir(pinas_cost_profile_dir());
    if (!d) return 0;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) && n < max) {
        size_t l = strlen(e->d_name);
        if (l < 6 || strcmp(e->d_name + l - 5, ".json") != 0 || l - 5 >= 64) continue;
        char *path = pinas_path_join(pinas_cost_profile_dir(), e->d_name);
        cJSON *j = NULL;
        FILE *f = path ? fopen(path, "r") : NULL;
        if (f) {
            char *text = calloc(1, 1 << 16);
            if (text && fread(text, 1, (1 << 16) - 1, f) > 0) j = cJSON_Parse(text);
            free(text);
            fclose(f);
        }
        free(path);
        const cJSON *kind = cJSON_GetObjectItemCaseSensitive(j, "kind");
        int is_net = cJSON_IsString(kind) && strcmp(kind->valuestring, "network") == 0;
        int known = cJSON_IsString(kind);
        cJSON_Delete(j);
        if (!known) continue;
        if (is_net == !hardware) {
            memcpy(names[n], e->d_name, l - 5);
            names[n][l - 5] = 0;
            n++;
        }
    }
    closedir(d);
    return n;
}

/* Resolves a name or a path and parses the file. *where_out: new string naming the file. */
static pinas_status load_profile_json(pinas_ctx *ctx, const char *spec, int hardware, cJSON **out, char **where_out)
{
    *out = NULL;
    *where_out = NULL;
    if (!spec || !*spec) return pinas_error(ctx, PINAS_EINVAL, "empty %s profile name", hardware ? "hardware" : "network");
    size_t l = strlen(spec);
    int is_path = strchr(spec, '/') != NULL || (l > 5 && strcmp(spec + l - 5, ".json") == 0);
    char *path;
    if (is_path) {
        path = pinas_strdup(spec);
    } else {
        char *file = pinas_strfmt("%s.json", spec);
        path = file ? pinas_path_join(pinas_cost_profile_dir(), file) : NULL;
        free(file);
    }
    if (!path) return pinas_error(ctx, PINAS_ENOMEM, "out of memory");
    if (!is_path && !pinas_path_exists(path)) {
        char names[32][64];
        int n = shipped_names(hardware, names, 32);
        const char *ptrs[32];
        char list[1024] = "";
        for (int i = 0; i < n; i++) {
            ptrs[i] = names[i];
            size_t k = strlen(list);
            snprintf(list + k, sizeof list - k, "%s%s", i ? ", " : "", names[i]);
        }
        const char *dym = pinas_did_you_mean(spec, ptrs, n);
        pinas_status s = pinas_error(ctx, PINAS_EINVAL, "unknown %s profile \"%s\"%s%s%s (shipped: %s; or give a path to a %s JSON file)",
                                     hardware ? "hardware" : "network", spec, dym ? " (did you mean \"" : "", dym ? dym : "",
                                     dym ? "\"?)" : "", n ? list : "none found", PINAS_PROFILE_FORMAT);
        free(path);
        return s;
    }
    pinas_status s = pinas_json_load(ctx, path, out);
    if (s) {
        free(path);
        return s;
    }
    *where_out = path;
    return PINAS_OK;
}

static pinas_status check_header(pinas_ctx *ctx, const cJSON *j, const char *where, const char **kind, const char **name)
{
    if (!cJSON_IsObject(j)) return pinas_error(ctx, PINAS_EFORMAT, "%s: expected a JSON object", where);
    const char *fmt;
    pinas_status s = pinas_json_get_str(ctx, j, where, "", "format", &fmt);
    if (s) return s;
    if (strcmp(fmt, PINAS_PROFILE_FORMAT) != 0)
        return pinas_error(ctx, PINAS_EFORMAT, "%s: format: expected \"%s\", got \"%s\"", where, PINAS_PROFILE_FORMAT, fmt);
    if ((s = pinas_json_get_str(ctx, j, where, "", "kind", kind))) return s;
    if ((s = pinas_json_get_str(ctx, j, where, "", "name", name))) return s;
    if (strlen(*name) >= 64 || !**name) return pinas_error(ctx, PINAS_EINVAL, "%s: name: expected 1 to 63 characters", where);
    return PINAS_OK;
}

/* ------------------------------------------------------------------ hardware */

static pinas_status read_ab(pinas_ctx *ctx, const cJSON *obj, const char *where, const char *path, double *a, double *b)
{
    pinas_status s = pinas_json_get_num(ctx, obj, where, path, "a", -1e9, 1e9, a);
    if (!s) s = pinas_json_get_num(ctx, obj, where, path, "b", 0, 1e9, b);
    return s;
}

/* One party's coefficients of one class: {"call": s, "macs": s, ...}; absent features are 0. */
static pinas_status read_party(pinas_ctx *ctx, const cJSON *o, const char *where, const char *path, double coef[PINAS_CPU_N_FEAT])
{
    if (!cJSON_IsObject(o)) return pinas_error(ctx, PINAS_EFORMAT, "%s: %s: expected {\"call\": s, \"macs\": s per MAC, ...}", where, path);
    for (int f = 0; f < PINAS_CPU_N_FEAT; f++) {
        coef[f] = 0;
        pinas_status s = pinas_json_get_num_opt(ctx, o, where, path, cpu_feat_names[f], -1, 1, &coef[f]);
        if (s) return s;
    }
    return PINAS_OK;
}

static pinas_status parse_cpu_class(pinas_ctx *ctx, const cJSON *o, const char *where, int k, pinas_cpu_params *cp)
{
    pinas_status s = PINAS_OK;
    for (int p = 0; p < 2 && !s; p++) {
        char *path = pinas_strfmt("primitives.%s.%s", cpu_prim_names[k], party_names[p]);
        s = path ? read_party(ctx, cJSON_GetObjectItemCaseSensitive(o, party_names[p]), where, path, cp->coef[k][p])
                 : pinas_error(ctx, PINAS_ENOMEM, "out of memory");
        free(path);
        const cJSON *m = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(o, "fit_mape"), p);
        const cJSON *r = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(o, "rows"), p);
        cp->fit_mape[k][p] = cJSON_IsNumber(m) ? m->valuedouble : NAN;
        cp->fit_rows[k][p] = cJSON_IsNumber(r) && r->valuedouble >= 0 && r->valuedouble < 1e9 ? (int)r->valuedouble : 0;
    }
    return s;
}

static pinas_status parse_cpu(pinas_ctx *ctx, const cJSON *j, const char *where, pinas_cpu_params *cp)
{
    const cJSON *model = cJSON_GetObjectItemCaseSensitive(j, "model");
    if (!cJSON_IsString(model) || strcmp(model->valuestring, "party-cpu") != 0)
        return pinas_error(ctx, PINAS_EFORMAT, "%s: model: expected \"party-cpu\" (a profile of the older whole-phase form, with "
                           "{a, b} per primitive, is no longer read: run `pinas calibrate` to fit one)", where);
    const cJSON *prims = cJSON_GetObjectItemCaseSensitive(j, "primitives");
    if (!cJSON_IsObject(prims)) return pinas_error(ctx, PINAS_EFORMAT, "%s: primitives: expected an object with %s, ...", where, cpu_prim_names[0]);
    for (int k = 0; k < PINAS_CPU_N_PRIM; k++) {
        const cJSON *o = cJSON_GetObjectItemCaseSensitive(prims, cpu_prim_names[k]);
        if (!cJSON_IsObject(o))
            return pinas_error(ctx, PINAS_EFORMAT, "%s: primitives.%s: missing (expected {\"server\": {...}, \"client\": {...}})", where,
                               cpu_prim_names[k]);
        pinas_status s = parse_cpu_class(ctx, o, where, k, cp);
        if (s) return s;
    }
    const cJSON *off = cJSON_GetObjectItemCaseSensitive(j, "offline");
    if (!cJSON_IsObject(off)) return pinas_error(ctx, PINAS_EFORMAT, "%s: offline: expected {\"aes_blocks_per_s\", \"ring_macs_per_s\"}", where);
    pinas_status s = pinas_json_get_num(ctx, off, where, "offline", "aes_blocks_per_s", 1, 1e15, &cp->aes_blocks_per_s);
    if (!s) s = pinas_json_get_num(ctx, off, where, "offline", "ring_macs_per_s", 1, 1e15, &cp->ring_macs_per_s);
    double probe_ms = 0;
    if (!s) s = pinas_json_get_num_opt(ctx, j, where, "", "probe_ms", 0, 1e6, &probe_ms);
    cp->probe_s = probe_ms / 1e3;
    double host_ns = 0;
    if (!s) s = pinas_json_get_num_opt(ctx, j, where, "", "host_memory_ns", 0, 1e6, &host_ns);
    cp->host_memory_ns = host_ns;
    return s;
}

static pinas_status parse_fpga(pinas_ctx *ctx, const cJSON *j, const char *where, pinas_fpga_params *b)
{
    double mhz, dsp, dpm, aes, cmp, lanes, onchip, ddr, host;
    int overlap = 1;
    pinas_status s;
    if ((s = pinas_json_get_num(ctx, j, where, "", "clock_mhz", 1, 1e5, &mhz))) return s;
    if ((s = pinas_json_get_num(ctx, j, where, "", "dsp", 1, 1e7, &dsp))) return s;
    if ((s = pinas_json_get_num(ctx, j, where, "", "dsp_util", 1e-3, 1, &b->dsp_util))) return s;
    if ((s = pinas_json_get_num(ctx, j, where, "", "dsp_per_mac", 1, 1e4, &dpm))) return s;
    if ((s = pinas_json_get_num(ctx, j, where, "", "aes_cores", 1, 1e5, &aes))) return s;
    if ((s = pinas_json_get_num(ctx, j, where, "", "cmp_units", 1, 1e6, &cmp))) return s;
    if ((s = pinas_json_get_num(ctx, j, where, "", "elem_lanes", 1, 1e6, &lanes))) return s;
    if ((s = pinas_json_get_num(ctx, j, where, "", "onchip_mb", 0, 1e6, &onchip))) return s;
    if ((s = pinas_json_get_num(ctx, j, where, "", "ddr_gb_per_s", 1e-3, 1e5, &ddr))) return s;
    if ((s = pinas_json_get_num(ctx, j, where, "", "host_gb_per_s", 1e-3, 1e5, &host))) return s;
    if ((s = pinas_json_get_num(ctx, j, where, "", "pipeline_cycles", 0, 1e9, &b->pipeline_cycles))) return s;
    if ((s = pinas_json_get_bool_opt(ctx, j, where, "", "overlap", &overlap))) return s;
    b->clock_hz = mhz * 1e6;
    b->dsp = (int)dsp;
    b->dsp_per_mac = (int)dpm;
    b->aes_cores = (int)aes;
    b->cmp_units = (int)cmp;
    b->elem_lanes = (int)lanes;
    b->onchip_bytes = onchip * 1e6;
    b->ddr_Bps = ddr * 1e9;
    b->host_Bps = host * 1e9;
    b->overlap = overlap;
    return PINAS_OK;
}

static pinas_status parse_pasnet(pinas_ctx *ctx, const cJSON *j, const char *where, pasnet_params *p)
{
    const char *keys[3] = {"relu", "poly", "avgpool"};
    double *dst[3][2] = {{&p->relu_a, &p->relu_b}, {&p->poly_a, &p->poly_b}, {&p->avgpool_a, &p->avgpool_b}};
    for (int k = 0; k < 3; k++) {
        const cJSON *o = cJSON_GetObjectItemCaseSensitive(j, keys[k]);
        if (!cJSON_IsObject(o)) return pinas_error(ctx, PINAS_EFORMAT, "%s: %s: expected {\"a\": per call, \"b\": per element}", where, keys[k]);
        pinas_status s = read_ab(ctx, o, where, keys[k], dst[k][0], dst[k][1]);
        if (s) return s;
    }
    pinas_status s = pinas_json_get_num(ctx, j, where, "", "maxpool_factor", 0, 1e6, &p->maxpool_factor);
    if (!s) s = pinas_json_get_num(ctx, j, where, "", "unit_s", 1e-15, 1e3, &p->unit_s);
    return s;
}

pinas_status pinas_cost_hw_from_json(pinas_ctx *ctx, const cJSON *json, const char *where, pinas_cost_hw **out)
{
    *out = NULL;
    const char *kind, *name;
    pinas_status s = check_header(ctx, json, where, &kind, &name);
    if (s) return s;
    pinas_cost_hw *hw = calloc(1, sizeof *hw);
    if (!hw) return pinas_error(ctx, PINAS_ENOMEM, "out of memory");
    snprintf(hw->name, sizeof hw->name, "%s", name);
    if (strcmp(kind, "cpu") == 0) {
        hw->kind = PINAS_HW_CPU;
        s = parse_cpu(ctx, json, where, &hw->cpu);
        if (!s) s = cost_shapes_parse(ctx, json, where, hw);
    } else if (strcmp(kind, "fpga") == 0) {
        hw->kind = PINAS_HW_FPGA;
        s = parse_fpga(ctx, json, where, &hw->fpga);
    } else if (strcmp(kind, "pasnet") == 0) {
        hw->kind = PINAS_HW_PASNET;
        s = parse_pasnet(ctx, json, where, &hw->pasnet);
    } else if (strcmp(kind, "network") == 0) {
        s = pinas_error(ctx, PINAS_EINVAL, "%s: is a network profile; a hardware profile (kind cpu, fpga or pasnet) is needed here", where);
    } else {
        s = pinas_error(ctx, PINAS_EFORMAT, "%s: kind: expected \"cpu\", \"fpga\" or \"pasnet\", got \"%s\"", where, kind);
    }
    const cJSON *date = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(json, "calibration"), "date");
    if (cJSON_IsString(date)) snprintf(hw->fitted, sizeof hw->fitted, "%s", date->valuestring);
    const cJSON *model = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(json, "calibration"), "cpu_model");
    if (cJSON_IsString(model) && hw->kind == PINAS_HW_CPU) snprintf(hw->cpu_model, sizeof hw->cpu_model, "%s", model->valuestring);
    if (!s) {
        hw->json = cJSON_Duplicate(json, 1);
        if (!hw->json) s = pinas_error(ctx, PINAS_ENOMEM, "out of memory");
    }
    if (s) {
        pinas_cost_hw_free(hw);
        return s;
    }
    *out = hw;
    return PINAS_OK;
}

pinas_status pinas_cost_hw_load(pinas_ctx *ctx, const char *name_or_path, pinas_cost_hw **out)
{
    cJSON *j;
    char *where;
    *out = NULL;
    pinas_status s = load_profile_json(ctx, name_or_path, 1, &j, &where);
    if (s) return s;
    s = pinas_cost_hw_from_json(ctx, j, where, out);
    cJSON_Delete(j);
    free(where);
    return s;
}

cJSON *pinas_cost_hw_to_json(const pinas_cost_hw *hw) { return cJSON_Duplicate(hw->json, 1); }

void pinas_cost_hw_free(pinas_cost_hw *hw)
{
    if (!hw) return;
    cost_shapes_free(hw);
    cJSON_Delete(hw->json);
    free(hw);
}

const char *pinas_cost_hw_name(const pinas_cost_hw *hw) { return hw->name; }
pinas_hw_kind pinas_cost_hw_kind(const pinas_cost_hw *hw) { return hw->kind; }
const char *pinas_cost_hw_fitted(const pinas_cost_hw *hw) { return hw->fitted[0] ? hw->fitted : NULL; }
const char *pinas_cost_hw_cpu_model(const pinas_cost_hw *hw) { return hw->cpu_model[0] ? hw->cpu_model : NULL; }

pinas_status pinas_cost_hw_fpga_params(pinas_ctx *ctx, const pinas_cost_hw *hw, pinas_fpga_params *out)
{
    if (hw->kind != PINAS_HW_FPGA) return pinas_error(ctx, PINAS_EINVAL, "hardware profile %s is not an fpga profile", hw->name);
    *out = hw->fpga;
    return PINAS_OK;
}

pinas_status pinas_cost_hw_fpga_create(pinas_ctx *ctx, const char *name, const pinas_fpga_params *b, pinas_cost_hw **out)
{
    *out = NULL;
    if (!(b->clock_hz > 0) || b->dsp < 1 || !(b->dsp_util > 0) || b->dsp_per_mac < 1 || b->aes_cores < 1 || b->cmp_units < 1 ||
        b->elem_lanes < 1 || !(b->ddr_Bps > 0) || !(b->host_Bps > 0) || b->onchip_bytes < 0 || b->pipeline_cycles < 0)
        return pinas_error(ctx, PINAS_EINVAL, "fpga profile %s: every board parameter must be positive", name);
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "format", PINAS_PROFILE_FORMAT);
    cJSON_AddStringToObject(j, "kind", "fpga");
    cJSON_AddStringToObject(j, "name", name);
    cJSON_AddNumberToObject(j, "clock_mhz", b->clock_hz / 1e6);
    cJSON_AddNumberToObject(j, "dsp", b->dsp);
    cJSON_AddNumberToObject(j, "dsp_util", b->dsp_util);
    cJSON_AddNumberToObject(j, "dsp_per_mac", b->dsp_per_mac);
    cJSON_AddNumberToObject(j, "aes_cores", b->aes_cores);
    cJSON_AddNumberToObject(j, "cmp_units", b->cmp_units);
    cJSON_AddNumberToObject(j, "elem_lanes", b->elem_lanes);
    cJSON_AddNumberToObject(j, "onchip_mb", b->onchip_bytes / 1e6);
    cJSON_AddNumberToObject(j, "ddr_gb_per_s", b->ddr_Bps / 1e9);
    cJSON_AddNumberToObject(j, "host_gb_per_s", b->host_Bps / 1e9);
    cJSON_AddNumberToObject(j, "pipeline_cycles", b->pipeline_cycles);
    cJSON_AddBoolToObject(j, "overlap", b->overlap);
    pinas_status s = pinas_cost_hw_from_json(ctx, j, name, out);
    cJSON_Delete(j);
    if (!s) (*out)->fpga = *b; /* exact values, not the ones rounded through MHz/MB */
    return s;
}

static const char cpu_description[] =
    "The pinas runtime on this CPU, one thread per party. Per node and party, the compute - thread CPU time outside "
    "the channel calls - is sum_f coef[f] * feature_f over the features call (1), macs and aes (the party's online "
    "ring multiply-adds and AES blocks, from the protocol accounting), in and out (elements entering and leaving "
    "the node, whole batch); a node's compute is its busier party's, communication comes from the network "
    "profile. Fitted by `pinas calibrate`: relative least squares (GSL) over every node of a sweep of calibration "
    "nets (per node the least of the runs and passes), features with a negative weight dropped. A node whose class, party and features "
    "equal an entry of shapes (measured on the spaces named in spaces by `pinas calibrate --space`) is priced at "
    "that entry's measured seconds instead. Offline = the dealer's AES and ring work at the rates below plus the "
    "transfer of the material.";

static cJSON *cpu_calibration_json(const pinas_cpu_calibration *c)
{
    cJSON *cal = cJSON_CreateObject();
    cJSON_AddStringToObject(cal, "date", c->date ? c->date : "");
    if (c->machine) cJSON_AddStringToObject(cal, "machine", c->machine);
    if (c->cpu_model) cJSON_AddStringToObject(cal, "cpu_model", c->cpu_model);
    cJSON_AddStringToObject(cal, "pinas_version", c->pinas_version ? c->pinas_version : "");
    cJSON_AddStringToObject(cal, "git", c->git ? c->git : "");
    cJSON_AddStringToObject(cal, "clock", c->clock ? c->clock : "thread-cpu");
    if (c->shield) cJSON_AddStringToObject(cal, "shield", c->shield);
    cJSON_AddNumberToObject(cal, "nets", c->nets);
    cJSON_AddNumberToObject(cal, "reps", c->reps);
    cJSON_AddNumberToObject(cal, "seconds", c->seconds);
    cJSON *mp = cJSON_AddObjectToObject(cal, "mpc");
    cJSON_AddNumberToObject(mp, "frac_bits", c->frac_bits);
    cJSON_AddNumberToObject(mp, "cmp_bits", c->cmp_bits);
    return cal;
}

static cJSON *cpu_class_json(const pinas_cpu_params *p, int k)
{
    cJSON *po = cJSON_CreateObject();
    for (int q = 0; q < 2; q++) {
        cJSON *pq = cJSON_AddObjectToObject(po, party_names[q]);
        for (int f = 0; f < PINAS_CPU_N_FEAT; f++)
            if (p->coef[k][q][f] != 0) cJSON_AddNumberToObject(pq, cpu_feat_names[f], p->coef[k][q][f]);
    }
    double m[2];
    for (int q = 0; q < 2; q++) m[q] = isfinite(p->fit_mape[k][q]) ? p->fit_mape[k][q] : -1;
    cJSON_AddItemToObject(po, "fit_mape", cJSON_CreateDoubleArray(m, 2));
    cJSON_AddItemToObject(po, "rows", cJSON_CreateIntArray(p->fit_rows[k], 2));
    return po;
}

pinas_status pinas_cost_hw_cpu_create(pinas_ctx *ctx, const pinas_cpu_params *p, const pinas_cpu_calibration *cal, pinas_cost_hw **out)
{
    *out = NULL;
    cJSON *j = cJSON_CreateObject();
    if (!j) return pinas_error(ctx, PINAS_ENOMEM, "out of memory");
    cJSON_AddStringToObject(j, "format", PINAS_PROFILE_FORMAT);
    cJSON_AddStringToObject(j, "kind", "cpu");
    cJSON_AddStringToObject(j, "name", "cpu");
    cJSON_AddStringToObject(j, "description", cpu_description);
    cJSON_AddStringToObject(j, "model", "party-cpu");
    cJSON *jp = cJSON_AddObjectToObject(j, "primitives");
    for (int k = 0; k < PINAS_CPU_N_PRIM; k++) cJSON_AddItemToObject(jp, cpu_prim_names[k], cpu_class_json(p, k));
    cJSON *off = cJSON_AddObjectToObject(j, "offline");
    cJSON_AddNumberToObject(off, "aes_blocks_per_s", p->aes_blocks_per_s);
    cJSON_AddNumberToObject(off, "ring_macs_per_s", p->ring_macs_per_s);
    if (p->probe_s > 0) cJSON_AddNumberToObject(j, "probe_ms", p->probe_s * 1e3);
    if (p->host_memory_ns > 0) cJSON_AddNumberToObject(j, "host_memory_ns", p->host_memory_ns);
    cost_shapes_to_json(p, j);
    if (cal) cJSON_AddItemToObject(j, "calibration", cpu_calibration_json(cal));
    pinas_status s = pinas_cost_hw_from_json(ctx, j, "calibration", out);
    cJSON_Delete(j);
    if (!s) { /* the exact doubles, not their JSON round trip; the shapes are the profile's own copy */
        pinas_cpu_params own = (*out)->cpu;
        (*out)->cpu = *p;
        (*out)->cpu.shapes = own.shapes;
        (*out)->cpu.n_shapes = own.n_shapes;
        (*out)->cpu.spaces = own.spaces;
        (*out)->cpu.n_spaces = own.n_spaces;
    }
    return s;
}

pinas_status pinas_cost_hw_cpu_params(pinas_ctx *ctx, const pinas_cost_hw *hw, pinas_cpu_params *out)
{
    if (hw->kind != PINAS_HW_CPU) return pinas_error(ctx, PINAS_EINVAL, "hardware profile %s is not a cpu profile", hw->name);
    *out = hw->cpu;
    return PINAS_OK;
}

/* ------------------------------------------------------------------ network */

pinas_status pinas_cost_link_from_json(pinas_ctx *ctx, const cJSON *json, const char *where, pinas_cost_link **out)
{
    *out = NULL;
    const char *kind, *name;
    pinas_status s = check_header(ctx, json, where, &kind, &name);
    if (s) return s;
    if (strcmp(kind, "network") != 0)
        return pinas_error(ctx, PINAS_EINVAL, "%s: kind: expected \"network\", got \"%s\" (a hardware profile?)", where, kind);
    double mbps, rtt_ms;
    if ((s = pinas_json_get_num(ctx, json, where, "", "bandwidth_mbit_per_s", 1e-6, 1e9, &mbps))) return s;
    if ((s = pinas_json_get_num(ctx, json, where, "", "rtt_ms", 0, 1e6, &rtt_ms))) return s;
    s = pinas_cost_link_create(ctx, name, mbps * 1e6 / 8, rtt_ms * 1e-3, out);
    if (s) return s;
    cJSON_Delete((*out)->json);
    (*out)->json = cJSON_Duplicate(json, 1);
    if (!(*out)->json) {
        pinas_cost_link_free(*out);
        *out = NULL;
        return pinas_error(ctx, PINAS_ENOMEM, "out of memory");
    }
    return PINAS_OK;
}

pinas_status pinas_cost_link_create(pinas_ctx *ctx, const char *name, double bandwidth_Bps, double rtt_s, pinas_cost_link **out)
{
    *out = NULL;
    if (!name || !*name || strlen(name) >= 64) return pinas_error(ctx, PINAS_EINVAL, "network profile: name must have 1 to 63 characters");
    if (!(bandwidth_Bps > 0) || !isfinite(bandwidth_Bps))
        return pinas_error(ctx, PINAS_EINVAL, "network profile %s: bandwidth must be positive, got %g B/s", name, bandwidth_Bps);
    if (!(rtt_s >= 0) || !isfinite(rtt_s)) return pinas_error(ctx, PINAS_EINVAL, "network profile %s: RTT must be >= 0, got %g s", name, rtt_s);
    pinas_cost_link *l = calloc(1, sizeof *l);
    if (!l) return pinas_error(ctx, PINAS_ENOMEM, "out of memory");
    snprintf(l->name, sizeof l->name, "%s", name);
    l->bandwidth = bandwidth_Bps;
    l->rtt = rtt_s;
    l->json = cJSON_CreateObject();
    cJSON_AddStringToObject(l->json, "format", PINAS_PROFILE_FORMAT);
    cJSON_AddStringToObject(l->json, "kind", "network");
    cJSON_AddStringToObject(l->json, "name", name);
    cJSON_AddNumberToObject(l->json, "bandwidth_mbit_per_s", bandwidth_Bps * 8 / 1e6);
    cJSON_AddNumberToObject(l->json, "rtt_ms", rtt_s * 1e3);
    *out = l;
    return PINAS_OK;
}

pinas_status pinas_cost_link_load(pinas_ctx *ctx, const char *name_or_path, pinas_cost_link **out)
{
    cJSON *j;
    char *where;
    *out = NULL;
    pinas_status s = load_profile_json(ctx, name_or_path, 0, &j, &where);
    if (s) return s;
    s = pinas_cost_link_from_json(ctx, j, where, out);
    cJSON_Delete(j);
    free(where);
    return s;
}

cJSON *pinas_cost_link_to_json(const pinas_cost_link *l) { return cJSON_Duplicate(l->json, 1); }

pinas_cost_link *pinas_cost_link_clone(const pinas_cost_link *l)
{
    pinas_cost_link *c = malloc(sizeof *c);
    if (!c) return NULL;
    *c = *l;
    c->json = cJSON_Duplicate(l->json, 1);
    if (!c->json) {
        free(c);
        return NULL;
    }
    return c;
}

void pinas_cost_link_free(pinas_cost_link *l)
{
    if (!l) return;
    cJSON_Delete(l->json);
    free(l);
}

const char *pinas_cost_link_name(const pinas_cost_link *l) { return l->name; }
double pinas_cost_link_bandwidth(const pinas_cost_link *l) { return l->bandwidth; }
double pinas_cost_link_rtt(const pinas_cost_link *l) { return l->rtt; }
