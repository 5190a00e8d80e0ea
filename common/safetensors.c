/* Named tensor sets and the safetensors file format: strict reader, atomic writer. */
#define _GNU_SOURCE
#include "pinas_common.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define ST_MAX_HEADER (100u << 20)

typedef struct {
    char *name;
    pinas_dtype dtype;
    int ndim;
    int64_t shape[PINAS_MAX_DIMS];
    size_t nbytes;
    void *data;
} st_entry;

struct pinas_tensors {
    st_entry *e;
    int n, cap;
};

size_t pinas_dtype_size(pinas_dtype dt)
{
    switch (dt) {
    case PINAS_F32: return 4;
    case PINAS_F64: return 8;
    case PINAS_I64: return 8;
    case PINAS_U8: return 1;
    }
    return 0;
}

const char *pinas_dtype_name(pinas_dtype dt)
{
    static const char *names[] = {"F32", "F64", "I64", "U8"};
    return (unsigned)dt < 4 ? names[dt] : "?";
}

static int dtype_parse(const char *s, pinas_dtype *out)
{
    for (int i = 0; i < 4; i++)
        if (strcmp(s, pinas_dtype_name((pinas_dtype)i)) == 0) {
            *out = (pinas_dtype)i;
            return 0;
        }
    return -1;
}

pinas_tensors *pinas_tensors_create(void) { return calloc(1, sizeof(pinas_tensors)); }

void pinas_tensors_free(pinas_tensors *t)
{
    if (!t) return;
    for (int i = 0; i < t->n; i++) {
        free(t->e[i].name);
        free(t->e[i].data);
    }
    free(t->e);
    free(t);
}

static int find_index(const pinas_tensors *t, const char *name)
{
    for (int i = 0; i < t->n; i++)
        if (strcmp(t->e[i].name, name) == 0) return i;
    return -1;
}

static int shape_bytes(pinas_dtype dtype, int ndim, const int64_t *shape, size_t *out)
{
    size_t n = pinas_dtype_size(dtype);
    for (int d = 0; d < ndim; d++) {
        if (shape[d] < 0) return -1;
        if (shape[d] && n > SIZE_MAX / (size_t)shape[d]) return -1;
        n *= (size_t)shape[d];
    }
    *out = n;
    return 0;
}

pinas_status pinas_tensors_add(pinas_ctx *ctx, pinas_tensors *t, const char *name, pinas_dtype dtype, int ndim,
                               const int64_t *shape, const void *data)
{
    if (ndim < 0 || ndim > PINAS_MAX_DIMS) return pinas_error(ctx, PINAS_EINVAL, "tensor %s: %d dimensions (max %d)", name, ndim, PINAS_MAX_DIMS);
    size_t nbytes;
    if (shape_bytes(dtype, ndim, shape, &nbytes)) return pinas_error(ctx, PINAS_EINVAL, "tensor %s: bad shape", name);
    void *buf = aligned_alloc(16, nbytes ? (nbytes + 15) / 16 * 16 : 16);
    if (!buf) return pinas_error(ctx, PINAS_ENOMEM, "tensor %s: out of memory (%zu bytes)", name, nbytes);
    if (data) memcpy(buf, data, nbytes);
    else memset(buf, 0, nbytes);
    int i = find_index(t, name);
    if (i < 0) {
        if (t->n == t->cap) {
            int cap = t->cap ? t->cap * 2 : 16;
            st_entry *e = realloc(t->e, (size_t)cap * sizeof *e);
            if (!e) {
                free(buf);
                return pinas_error(ctx, PINAS_ENOMEM, "out of memory");
            }
            t->e = e;
            t->cap = cap;
        }
        i = t->n++;
        t->e[i].name = pinas_strdup(name);
    } else {
        free(t->e[i].data);
    }
    st_entry *e = &t->e[i];
    e->dtype = dtype;
    e->ndim = ndim;
    for (int d = 0; d < ndim; d++) e->shape[d] = shape[d];
    e->nbytes = nbytes;
    e->data = buf;
    return PINAS_OK;
}

int pinas_tensors_count(const pinas_tensors *t) { return t ? t->n : 0; }

static void view_of(const st_entry *e, pinas_tensor_view *out)
{
    out->name = e->name;
    out->dtype = e->dtype;
    out->ndim = e->ndim;
    memcpy(out->shape, e->shape, sizeof out->shape);
    out->nbytes = e->nbytes;
    out->data = e->data;
}

int pinas_tensors_at(const pinas_tensors *t, int k, pinas_tensor_view *out)
{
    if (!t || k < 0 || k >= t->n) return -1;
    view_of(&t->e[k], out);
    return 0;
}

int pinas_tensors_find(const pinas_tensors *t, const char *name, pinas_tensor_view *out)
{
    int i = t ? find_index(t, name) : -1;
    if (i < 0) return -1;
    view_of(&t->e[i], out);
    return 0;
}

static void shape_str(int ndim, const int64_t *shape, char *buf, size_t n)
{
    size_t o = (size_t)snprintf(buf, n, "[");
    for (int d = 0; d < ndim && o < n; d++) o += (size_t)snprintf(buf + o, n - o, "%s%lld", d ? ", " : "", (long long)shape[d]);
    if (o < n) snprintf(buf + o, n - o, "]");
}

pinas_status pinas_tensors_expect(pinas_ctx *ctx, const pinas_tensors *t, const char *where, const char *name,
                                  pinas_dtype dtype, int ndim, const int64_t *shape, pinas_tensor_view *out)
{
    pinas_tensor_view v;
    if (pinas_tensors_find(t, name, &v)) return pinas_error(ctx, PINAS_EFORMAT, "%s: tensor %s is missing", where, name);
    if (v.dtype != dtype)
        return pinas_error(ctx, PINAS_EFORMAT, "%s: tensor %s: dtype %s, expected %s", where, name, pinas_dtype_name(v.dtype),
                           pinas_dtype_name(dtype));
    if (shape) {
        int same = v.ndim == ndim;
        for (int d = 0; same && d < ndim; d++) same = v.shape[d] == shape[d];
        if (!same) {
            char a[128], b[128];
            shape_str(v.ndim, v.shape, a, sizeof a);
            shape_str(ndim, shape, b, sizeof b);
            return pinas_error(ctx, PINAS_ESHAPE, "%s: tensor %s: shape %s, expected %s", where, name, a, b);
        }
    }
    if (out) *out = v;
    return PINAS_OK;
}

typedef struct {
    const char *name;
    size_t begin, end;
} st_range;

static int cmp_range(const void *a, const void *b)
{
    const st_range *x = a, *y = b;
    return x->begin < y->begin ? -1 : x->begin > y->begin;
}

/* The JSON header of a safetensors buffer: 8-byte little-endian length, then that many bytes of JSON
 * (no NUL inside). *hlen_out: the header's length; *out: a new object; caller frees. */
static pinas_status parse_header(pinas_ctx *ctx, const uint8_t *buf, size_t len, const char *where, uint64_t *hlen_out,
                                 cJSON **out)
{
    *out = NULL;
    if (len < 8) return pinas_error(ctx, PINAS_EFORMAT, "%s: truncated: %zu bytes, a safetensors file needs at least 8", where, len);
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = (hlen << 8) | buf[i];
    if (hlen < 2 || hlen > ST_MAX_HEADER)
        return pinas_error(ctx, PINAS_EFORMAT, "%s: header length %llu out of bounds [2, %u]", where, (unsigned long long)hlen, ST_MAX_HEADER);
    if (hlen > len - 8)
        return pinas_error(ctx, PINAS_EFORMAT, "%s: truncated: header length %llu but only %zu bytes follow", where,
                           (unsigned long long)hlen, len - 8);
    char *htext = malloc(hlen + 1);
    if (!htext) return pinas_error(ctx, PINAS_ENOMEM, "out of memory");
    memcpy(htext, buf + 8, hlen);
    htext[hlen] = 0;
    if (strlen(htext) != hlen) {
        free(htext);
        return pinas_error(ctx, PINAS_EFORMAT, "%s: header contains a NUL byte", where);
    }
    cJSON *h = NULL;
    char *hwhere = pinas_strfmt("%s (header)", where);
    pinas_status s = pinas_json_parse(ctx, htext, hwhere, &h);
    free(hwhere);
    free(htext);
    if (s) return PINAS_EFORMAT;
    if (!cJSON_IsObject(h)) {
        cJSON_Delete(h);
        return pinas_error(ctx, PINAS_EFORMAT, "%s: header is not a JSON object", where);
    }
    *hlen_out = hlen;
    *out = h;
    return PINAS_OK;
}

/* One tensor entry of the header ({"dtype", "shape", "data_offsets"}), checked against the dlen data
 * bytes and added to t; its byte range goes to *range. */
static pinas_status parse_entry(pinas_ctx *ctx, const cJSON *item, const char *where, const uint8_t *data, size_t dlen,
                                pinas_tensors *t, st_range *range)
{
    const char *name = item->string;
    if (!cJSON_IsObject(item)) return pinas_error(ctx, PINAS_EFORMAT, "%s: tensor %s: entry is not an object", where, name);
    const cJSON *jd = cJSON_GetObjectItemCaseSensitive(item, "dtype");
    const cJSON *js = cJSON_GetObjectItemCaseSensitive(item, "shape");
    const cJSON *jo = cJSON_GetObjectItemCaseSensitive(item, "data_offsets");
    pinas_dtype dt;
    if (!cJSON_IsString(jd) || dtype_parse(jd->valuestring, &dt))
        return pinas_error(ctx, PINAS_EFORMAT, "%s: tensor %s: dtype %s not supported (F32, F64, I64, U8)", where, name,
                           cJSON_IsString(jd) ? jd->valuestring : "missing");
    if (!cJSON_IsArray(js) || cJSON_GetArraySize(js) > PINAS_MAX_DIMS)
        return pinas_error(ctx, PINAS_EFORMAT, "%s: tensor %s: shape must be an array of at most %d integers", where, name, PINAS_MAX_DIMS);
    int64_t shape[PINAS_MAX_DIMS];
    int nd = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, js)
    {
        if (!cJSON_IsNumber(e) || e->valuedouble < 0 || e->valuedouble != floor(e->valuedouble) || e->valuedouble > 9e15)
            return pinas_error(ctx, PINAS_EFORMAT, "%s: tensor %s: shape has a bad dimension", where, name);
        shape[nd++] = (int64_t)e->valuedouble;
    }
    if (!cJSON_IsArray(jo) || cJSON_GetArraySize(jo) != 2 || !cJSON_IsNumber(jo->child) || !cJSON_IsNumber(jo->child->next) ||
        jo->child->valuedouble < 0 || jo->child->next->valuedouble < jo->child->valuedouble ||
        jo->child->valuedouble != floor(jo->child->valuedouble) || jo->child->next->valuedouble != floor(jo->child->next->valuedouble))
        return pinas_error(ctx, PINAS_EFORMAT, "%s: tensor %s: data_offsets must be [begin, end] with 0 <= begin <= end", where, name);
    double b = jo->child->valuedouble, en = jo->child->next->valuedouble;
    if (en > (double)dlen)
        return pinas_error(ctx, PINAS_EFORMAT, "%s: tensor %s: data_offsets [%.0f, %.0f] outside the %zu data bytes (truncated?)", where,
                           name, b, en, dlen);
    size_t nbytes = 0;
    if (shape_bytes(dt, nd, shape, &nbytes) || nbytes != (size_t)(en - b))
        return pinas_error(ctx, PINAS_EFORMAT, "%s: tensor %s: %s shape needs %zu bytes but data_offsets span %.0f", where, name,
                           pinas_dtype_name(dt), nbytes, en - b);
    if (find_index(t, name) >= 0) return pinas_error(ctx, PINAS_EFORMAT, "%s: tensor %s appears twice", where, name);
    range->name = name;
    range->begin = (size_t)b;
    range->end = (size_t)en;
    return pinas_tensors_add(ctx, t, name, dt, nd, shape, data + (size_t)b);
}

/* The tensors' byte ranges must tile the data exactly: no overlap, no gap, nothing after. */
static pinas_status check_tiling(pinas_ctx *ctx, st_range *ranges, int nr, size_t dlen, const char *where)
{
    qsort(ranges, (size_t)nr, sizeof *ranges, cmp_range);
    size_t pos = 0;
    for (int i = 0; i < nr; i++) {
        if (ranges[i].begin < pos)
            return pinas_error(ctx, PINAS_EFORMAT, "%s: tensor %s overlaps the tensor before it", where, ranges[i].name);
        if (ranges[i].begin > pos)
            return pinas_error(ctx, PINAS_EFORMAT, "%s: gap of %zu bytes before tensor %s", where, ranges[i].begin - pos,
                               ranges[i].name);
        pos = ranges[i].end > pos ? ranges[i].end : pos;
    }
    if (pos != dlen) return pinas_error(ctx, PINAS_EFORMAT, "%s: %zu trailing bytes after the last tensor", where, dlen - pos);
    return PINAS_OK;
}

pinas_status pinas_safetensors_parse(pinas_ctx *ctx, const uint8_t *buf, size_t len, const char *where, pinas_tensors **out)
{
    *out = NULL;
    uint64_t hlen = 0;
    cJSON *h = NULL;
    pinas_status s = parse_header(ctx, buf, len, where, &hlen, &h);
    if (s) return s;
    const uint8_t *data = buf + 8 + hlen;
    size_t dlen = len - 8 - (size_t)hlen;
    int n = cJSON_GetArraySize(h), nr = 0;
    st_range *ranges = calloc((size_t)n + 1, sizeof *ranges);
    pinas_tensors *t = pinas_tensors_create();
    if (!ranges || !t) s = pinas_error(ctx, PINAS_ENOMEM, "out of memory");
    const cJSON *item;
    cJSON_ArrayForEach(item, h)
    {
        if (s) break;
        if (strcmp(item->string, "__metadata__") == 0) {
            if (!cJSON_IsObject(item)) s = pinas_error(ctx, PINAS_EFORMAT, "%s: __metadata__ is not an object", where);
            continue;
        }
        s = parse_entry(ctx, item, where, data, dlen, t, &ranges[nr]);
        if (!s) nr++;
    }
    if (!s) s = check_tiling(ctx, ranges, nr, dlen, where);
    free(ranges);
    cJSON_Delete(h);
    if (s) {
        pinas_tensors_free(t);
        return s;
    }
    *out = t;
    return PINAS_OK;
}

pinas_status pinas_safetensors_load(pinas_ctx *ctx, const char *path, pinas_tensors **out)
{
    char *buf;
    size_t len;
    *out = NULL;
    pinas_status s = pinas_file_read(ctx, path, &buf, &len);
    if (s) return s;
    s = pinas_safetensors_parse(ctx, (const uint8_t *)buf, len, path, out);
    free(buf);
    return s;
}

pinas_status pinas_safetensors_save(pinas_ctx *ctx, const char *path, const pinas_tensors *t, const cJSON *metadata)
{
    return pinas_safetensors_save_mode(ctx, path, t, metadata, PINAS_FILE_PUBLIC);
}

pinas_status pinas_safetensors_save_mode(pinas_ctx *ctx, const char *path, const pinas_tensors *t, const cJSON *metadata,
                                         int mode)
{
    cJSON *h = cJSON_CreateObject();
    if (metadata) cJSON_AddItemToObject(h, "__metadata__", cJSON_Duplicate(metadata, 1));
    size_t off = 0;
    for (int i = 0; i < t->n; i++) {
        const st_entry *e = &t->e[i];
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "dtype", pinas_dtype_name(e->dtype));
        cJSON *sh = cJSON_AddArrayToObject(o, "shape");
        for (int d = 0; d < e->ndim; d++) cJSON_AddItemToArray(sh, cJSON_CreateNumber((double)e->shape[d]));
        cJSON *of = cJSON_AddArrayToObject(o, "data_offsets");
        cJSON_AddItemToArray(of, cJSON_CreateNumber((double)off));
        cJSON_AddItemToArray(of, cJSON_CreateNumber((double)(off + e->nbytes)));
        cJSON_AddItemToObject(h, e->name, o);
        off += e->nbytes;
    }
    char *htext = cJSON_PrintUnformatted(h);
    cJSON_Delete(h);
    if (!htext) return pinas_error(ctx, PINAS_ENOMEM, "out of memory");
    size_t hl = strlen(htext), padded = (hl + 7) / 8 * 8;
    uint8_t *head = malloc(8 + padded);
    if (!head) {
        free(htext);
        return pinas_error(ctx, PINAS_ENOMEM, "%s: out of memory (%zu bytes)", path, 8 + padded);
    }
    for (int i = 0; i < 8; i++) head[i] = (uint8_t)((uint64_t)padded >> (8 * i));
    memcpy(head + 8, htext, hl);
    memset(head + 8 + hl, ' ', padded - hl);
    free(htext);
    /* streamed: the tensors are written from where they are, never copied into one file image */
    pinas_file_atomic *f = NULL;
    pinas_status s = pinas_file_atomic_open(ctx, path, mode, &f);
    if (!s) s = pinas_file_atomic_write(ctx, f, head, 8 + padded);
    for (int i = 0; !s && i < t->n; i++) s = pinas_file_atomic_write(ctx, f, t->e[i].data, t->e[i].nbytes);
    free(head);
    if (s) {
        pinas_file_atomic_abort(f);
        return s;
    }
    return pinas_file_atomic_commit(ctx, f);
}
