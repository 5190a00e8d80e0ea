/* Measured node shapes of a cpu profile: the table `pinas calibrate --space` fills, its lookup, and
 * its JSON form ("shapes" and "spaces" in the profile). */
#define _GNU_SOURCE
#include "cost_internal.h"

#include <stdlib.h>
#include <string.h>

static int shape_key_cmp(int prim, int party, const double *f, const pinas_cpu_shape *b)
{
    if (prim != b->prim) return prim < b->prim ? -1 : 1;
    if (party != b->party) return party < b->party ? -1 : 1;
    for (int k = 0; k < PINAS_CPU_N_FEAT; k++)
        if (f[k] != b->f[k]) return f[k] < b->f[k] ? -1 : 1;
    return 0;
}

static int shape_cmp(const void *a, const void *b)
{
    const pinas_cpu_shape *x = a;
    return shape_key_cmp(x->prim, x->party, x->f, b);
}

void pinas_cpu_shapes_sort(pinas_cpu_shape *shapes, int n)
{
    if (n > 1) qsort(shapes, (size_t)n, sizeof *shapes, shape_cmp);
}

const pinas_cpu_shape *pinas_cpu_shape_find(const pinas_cpu_params *p, int prim, int party, const double f[PINAS_CPU_N_FEAT])
{
    int lo = 0, hi = p->n_shapes - 1;
    while (p->shapes && lo <= hi) {
        int mid = lo + (hi - lo) / 2, c = shape_key_cmp(prim, party & 1, f, &p->shapes[mid]);
        if (!c) return &p->shapes[mid];
        if (c < 0) hi = mid - 1;
        else lo = mid + 1;
    }
    return NULL;
}

void cost_shapes_free(pinas_cost_hw *hw)
{
    free(hw->shapes);
    for (int i = 0; i < hw->cpu.n_spaces; i++) free(hw->space_names[i]);
    free(hw->space_names);
    hw->shapes = NULL;
    hw->space_names = NULL;
    hw->cpu.shapes = NULL;
    hw->cpu.spaces = NULL;
    hw->cpu.n_shapes = hw->cpu.n_spaces = 0;
}

pinas_status cost_shapes_copy(pinas_ctx *ctx, pinas_cost_hw *hw, const pinas_cpu_shape *shapes, int n_shapes,
                              const char *const *spaces, int n_spaces)
{
    cost_shapes_free(hw);
    hw->shapes = n_shapes ? malloc((size_t)n_shapes * sizeof *hw->shapes) : NULL;
    hw->space_names = n_spaces ? calloc((size_t)n_spaces, sizeof *hw->space_names) : NULL;
    if ((n_shapes && !hw->shapes) || (n_spaces && !hw->space_names)) return pinas_error(ctx, PINAS_ENOMEM, "out of memory");
    if (n_shapes) memcpy(hw->shapes, shapes, (size_t)n_shapes * sizeof *shapes);
    pinas_cpu_shapes_sort(hw->shapes, n_shapes);
    for (int i = 0; i < n_spaces; i++) {
        hw->space_names[i] = pinas_strdup(spaces[i]);
        hw->cpu.n_spaces = i + 1; /* freed with the hw from here on */
        if (!hw->space_names[i]) return pinas_error(ctx, PINAS_ENOMEM, "out of memory");
    }
    hw->cpu.shapes = hw->shapes;
    hw->cpu.n_shapes = n_shapes;
    hw->cpu.spaces = (const char *const *)hw->space_names;
    return PINAS_OK;
}

/* One entry: [class, party, [7 features], seconds, nodes]. */
static pinas_status parse_shape(pinas_ctx *ctx, const cJSON *e, const char *where, int i, pinas_cpu_shape *out)
{
    const cJSON *cl = cJSON_GetArrayItem(e, 0), *pa = cJSON_GetArrayItem(e, 1), *fa = cJSON_GetArrayItem(e, 2);
    const cJSON *sec = cJSON_GetArrayItem(e, 3), *nn = cJSON_GetArrayItem(e, 4);
    memset(out, 0, sizeof *out);
    out->prim = -1;
    for (int k = 0; cJSON_IsString(cl) && k < PINAS_CPU_N_PRIM; k++)
        if (strcmp(cl->valuestring, pinas_cpu_prim_name(k)) == 0) out->prim = k;
    out->party = cJSON_IsString(pa) ? (strcmp(pa->valuestring, "server") == 0 ? 0 : strcmp(pa->valuestring, "client") == 0 ? 1 : -1) : -1;
    int nf = cJSON_IsArray(fa) ? cJSON_GetArraySize(fa) : -1, ok = cJSON_IsArray(e) && cJSON_GetArraySize(e) == 5;
    for (int k = 0; ok && nf == PINAS_CPU_N_FEAT && k < nf; k++) {
        const cJSON *v = cJSON_GetArrayItem(fa, k);
        if (!cJSON_IsNumber(v) || !(v->valuedouble >= 0 && v->valuedouble < 1e18)) {
            return pinas_error(ctx, PINAS_EFORMAT, "%s: shapes[%d]: feature %s: expected a count >= 0", where, i,
                               pinas_cpu_feature_name(k));
        }
        out->f[k] = v->valuedouble;
    }
    if (!ok || out->prim < 0 || out->party < 0 || nf != PINAS_CPU_N_FEAT || !cJSON_IsNumber(sec) || !cJSON_IsNumber(nn))
        return pinas_error(ctx, PINAS_EFORMAT,
                           "%s: shapes[%d]: expected [class, \"server\" | \"client\", [%d features], seconds, nodes] with a known class",
                           where, i, PINAS_CPU_N_FEAT);
    if (!(sec->valuedouble > 0 && sec->valuedouble < 1e6))
        return pinas_error(ctx, PINAS_EFORMAT, "%s: shapes[%d]: seconds: expected a number in (0, 1e6), got %g", where, i, sec->valuedouble);
    if (!(nn->valuedouble >= 1 && nn->valuedouble < 1e9))
        return pinas_error(ctx, PINAS_EFORMAT, "%s: shapes[%d]: nodes: expected an integer >= 1, got %g", where, i, nn->valuedouble);
    out->s = sec->valuedouble;
    out->nodes = (int)nn->valuedouble;
    return PINAS_OK;
}

pinas_status cost_shapes_parse(pinas_ctx *ctx, const cJSON *json, const char *where, pinas_cost_hw *hw)
{
    const cJSON *sh = cJSON_GetObjectItemCaseSensitive(json, "shapes"), *sp = cJSON_GetObjectItemCaseSensitive(json, "spaces");
    if (!sh && !sp) return PINAS_OK;
    if ((sh && !cJSON_IsArray(sh)) || (sp && !cJSON_IsArray(sp)))
        return pinas_error(ctx, PINAS_EFORMAT, "%s: %s: expected an array", where, sh && !cJSON_IsArray(sh) ? "shapes" : "spaces");
    int n = sh ? cJSON_GetArraySize(sh) : 0, ns = sp ? cJSON_GetArraySize(sp) : 0;
    pinas_cpu_shape *t = n ? calloc((size_t)n, sizeof *t) : NULL;
    const char **names = ns ? calloc((size_t)ns, sizeof *names) : NULL;
    pinas_status s = (n && !t) || (ns && !names) ? pinas_error(ctx, PINAS_ENOMEM, "out of memory") : PINAS_OK;
    for (int i = 0; i < n && !s; i++) s = parse_shape(ctx, cJSON_GetArrayItem(sh, i), where, i, &t[i]);
    for (int i = 0; i < ns && !s; i++) {
        const cJSON *v = cJSON_GetArrayItem(sp, i);
        names[i] = cJSON_IsString(v) ? v->valuestring : NULL;
        if (!names[i]) s = pinas_error(ctx, PINAS_EFORMAT, "%s: spaces[%d]: expected a space's name", where, i);
    }
    if (!s) s = cost_shapes_copy(ctx, hw, t, n, names, ns);
    for (int i = 1; i < n && !s; i++) /* sorted now: equal neighbours are one shape given twice */
        if (!shape_cmp(&hw->shapes[i - 1], &hw->shapes[i]))
            s = pinas_error(ctx, PINAS_EFORMAT, "%s: shapes: a %s %s shape is given twice", where, pinas_cpu_prim_name(hw->shapes[i].prim),
                            hw->shapes[i].party ? "client" : "server");
    free(t);
    free(names);
    return s;
}

void cost_shapes_to_json(const pinas_cpu_params *p, cJSON *j)
{
    if (!p->n_shapes && !p->n_spaces) return;
    cJSON *sp = cJSON_AddArrayToObject(j, "spaces");
    for (int i = 0; i < p->n_spaces; i++) cJSON_AddItemToArray(sp, cJSON_CreateString(p->spaces[i]));
    cJSON *sh = cJSON_AddArrayToObject(j, "shapes");
    for (int i = 0; i < p->n_shapes; i++) {
        const pinas_cpu_shape *e = &p->shapes[i];
        cJSON *a = cJSON_CreateArray();
        cJSON_AddItemToArray(a, cJSON_CreateString(pinas_cpu_prim_name(e->prim)));
        cJSON_AddItemToArray(a, cJSON_CreateString(e->party ? "client" : "server"));
        cJSON_AddItemToArray(a, cJSON_CreateDoubleArray(e->f, PINAS_CPU_N_FEAT));
        cJSON_AddItemToArray(a, cJSON_CreateNumber(e->s));
        cJSON_AddItemToArray(a, cJSON_CreateNumber(e->nodes));
        cJSON_AddItemToArray(sh, a);
    }
}

pinas_status pinas_cost_hw_cpu_fit_only(pinas_ctx *ctx, const pinas_cost_hw *hw, pinas_cost_hw **out)
{
    *out = NULL;
    if (hw->kind != PINAS_HW_CPU) return pinas_error(ctx, PINAS_EINVAL, "hardware profile %s is not a cpu profile", hw->name);
    cJSON *j = cJSON_Duplicate(hw->json, 1);
    if (!j) return pinas_error(ctx, PINAS_ENOMEM, "out of memory");
    cJSON_DeleteItemFromObjectCaseSensitive(j, "shapes");
    cJSON_DeleteItemFromObjectCaseSensitive(j, "spaces");
    pinas_status s = pinas_cost_hw_from_json(ctx, j, hw->name, out);
    cJSON_Delete(j);
    if (!s) {
        (*out)->cpu = hw->cpu; /* the exact doubles, without the shapes */
        (*out)->cpu.shapes = NULL;
        (*out)->cpu.n_shapes = 0;
        (*out)->cpu.spaces = NULL;
        (*out)->cpu.n_spaces = 0;
    }
    return s;
}
