/* The latency-accuracy plot of a Pareto set, drawn with cairo into SVG and PNG. */
#define _GNU_SOURCE
#include "nas_internal.h"

#include <cairo-svg.h>
#include <cairo.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define PLOT_W 1060.0
#define PLOT_H 600.0
#define M_LEFT 86.0
#define M_RIGHT 230.0 /* room for the legend, outside the data */
#define M_TOP 56.0
#define M_BOTTOM 72.0

typedef struct {
    double x0, x1, y0, y1; /* data ranges (latency ms, accuracy %) */
    int logx;
} axes;

static double px(const axes *a, double lat)
{
    double w = PLOT_W - M_LEFT - M_RIGHT;
    double t = a->logx ? (log10(lat) - log10(a->x0)) / (log10(a->x1) - log10(a->x0)) : (lat - a->x0) / (a->x1 - a->x0);
    return M_LEFT + t * w;
}

static double py(const axes *a, double acc_pct)
{
    double h = PLOT_H - M_TOP - M_BOTTOM;
    return PLOT_H - M_BOTTOM - (acc_pct - a->y0) / (a->y1 - a->y0) * h;
}

/* 1, 2 or 5 times a power of ten, near x. */
static double nice_step(double x)
{
    double e = pow(10, floor(log10(x))), f = x / e;
    return (f < 1.5 ? 1 : f < 3.5 ? 2 : f < 7.5 ? 5 : 10) * e;
}

static void text_at(cairo_t *cr, double x, double y, const char *s, double ax, double ay)
{
    cairo_text_extents_t te;
    cairo_text_extents(cr, s, &te);
    cairo_move_to(cr, x - te.width * ax - te.x_bearing, y - te.height * ay - te.y_bearing);
    cairo_show_text(cr, s);
}

static void fmt_num(char *buf, size_t n, double v)
{
    if (fabs(v) < 1e-12) v = 0;
    snprintf(buf, n, "%g", v);
}

static void marker(cairo_t *cr, const char *kind, double x, double y, int front)
{
    cairo_new_path(cr); /* text leaves a current point; an arc would draw a line from it */
    if (!strcmp(kind, "all-relu")) {
        cairo_rectangle(cr, x - 6.5, y - 6.5, 13, 13);
        cairo_set_source_rgb(cr, 0.84, 0.15, 0.16);
        cairo_fill_preserve(cr);
    } else if (!strcmp(kind, "all-poly")) {
        cairo_move_to(cr, x, y - 8);
        cairo_line_to(cr, x + 7.5, y + 5.5);
        cairo_line_to(cr, x - 7.5, y + 5.5);
        cairo_close_path(cr);
        cairo_set_source_rgb(cr, 0.17, 0.63, 0.17);
        cairo_fill_preserve(cr);
    } else if (!strcmp(kind, "first-k")) {
        cairo_move_to(cr, x, y - 7.5);
        cairo_line_to(cr, x + 7.5, y);
        cairo_line_to(cr, x, y + 7.5);
        cairo_line_to(cr, x - 7.5, y);
        cairo_close_path(cr);
        cairo_set_source_rgb(cr, 0.96, 0.55, 0.10);
        cairo_fill_preserve(cr);
    } else if (!strcmp(kind, "random")) {
        /* Strokes only: unlike every filled marker, it reads as a cross in greyscale too. */
        cairo_move_to(cr, x - 5, y - 5);
        cairo_line_to(cr, x + 5, y + 5);
        cairo_move_to(cr, x - 5, y + 5);
        cairo_line_to(cr, x + 5, y - 5);
        cairo_set_source_rgb(cr, 0.49, 0.23, 0.64);
        cairo_set_line_width(cr, 2.2);
        cairo_stroke(cr);
        if (front) {
            cairo_arc(cr, x, y, 7.5, 0, 2 * M_PI);
            cairo_set_source_rgb(cr, 0.05, 0.15, 0.35);
            cairo_set_line_width(cr, 2.0);
            cairo_stroke(cr);
        }
        return;
    } else if (front) {
        cairo_arc(cr, x, y, 6, 0, 2 * M_PI);
        cairo_set_source_rgb(cr, 0.12, 0.47, 0.71);
        cairo_fill_preserve(cr);
    } else {
        cairo_arc(cr, x, y, 4.5, 0, 2 * M_PI);
        cairo_set_source_rgb(cr, 1, 1, 1);
        cairo_fill_preserve(cr);
        cairo_set_source_rgb(cr, 0.55, 0.55, 0.55);
        cairo_set_line_width(cr, 1.5);
        cairo_stroke(cr);
        return;
    }
    /* Points on the front get a dark ring, so a baseline on the front shows it too. */
    cairo_set_source_rgb(cr, front ? 0.05 : 0.3, front ? 0.15 : 0.3, front ? 0.35 : 0.3);
    cairo_set_line_width(cr, front ? 2.0 : 1.0);
    cairo_stroke(cr);
}

/* ------------------------------------------------------------ label placement */

int nas_box_overlap(nas_box a, nas_box b)
{
    return a.x < b.x + b.w && b.x < a.x + a.w && a.y < b.y + b.h && b.y < a.y + a.h;
}

static int box_inside(nas_box b, nas_box area)
{
    return b.x >= area.x && b.y >= area.y && b.x + b.w <= area.x + area.w && b.y + b.h <= area.y + area.h;
}

int nas_place_labels(int n_marks, const double *mx, const double *my, int n_labels, const int *anchor, const double *w,
                     const double *h, nas_box area, nas_box *box, int *placed)
{
    /* Clear of the label's own marker square by 2 px on the near side. */
    const double g = NAS_MARKER_HALF + 2, d = 4;
    int count = 0;
    for (int j = 0; j < n_labels; j++) {
        placed[j] = 0;
        box[j] = (nas_box){0, 0, w[j], h[j]};
        if (anchor[j] < 0 || anchor[j] >= n_marks) continue;
        const double x = mx[anchor[j]], y = my[anchor[j]];
        const nas_box tries[] = {
            {x + g, y - h[j] / 2, w[j], h[j]},        /* right */
            {x - g - w[j], y - h[j] / 2, w[j], h[j]}, /* left */
            {x - w[j] / 2, y - g - h[j], w[j], h[j]}, /* above */
            {x - w[j] / 2, y + g, w[j], h[j]},        /* below */
            {x + d, y - g - h[j], w[j], h[j]},        /* upper right */
            {x - d - w[j], y - g - h[j], w[j], h[j]}, /* upper left */
            {x + d, y + g, w[j], h[j]},               /* lower right */
            {x - d - w[j], y + g, w[j], h[j]},        /* lower left */
        };
        for (size_t t = 0; t < sizeof tries / sizeof tries[0] && !placed[j]; t++) {
            nas_box b = tries[t];
            int ok = box_inside(b, area);
            for (int i = 0; i < n_marks && ok; i++) {
                nas_box m = {mx[i] - NAS_MARKER_HALF, my[i] - NAS_MARKER_HALF, 2 * NAS_MARKER_HALF, 2 * NAS_MARKER_HALF};
                ok = !nas_box_overlap(b, m);
            }
            for (int q = 0; q < j && ok; q++) ok = !(placed[q] && nas_box_overlap(b, box[q]));
            if (ok) {
                box[j] = b;
                placed[j] = 1;
                count++;
            }
        }
    }
    return count;
}

/* Which labels matter most: the all-* baselines, then the front, then the other candidates, then
 * first-k (and front random) baselines; larger = less important, -1 = no label. */
static int label_rank(const pinas_pareto_entry *e)
{
    int naive = !strcmp(e->kind, "first-k") || !strcmp(e->kind, "random");
    if (!strcmp(e->kind, "all-relu") || !strcmp(e->kind, "all-poly")) return 0;
    if (!naive) return e->nondominated ? 1 : 2;
    if (e->naive_k < 0) return -1;
    if (!strcmp(e->kind, "first-k")) return e->nondominated ? 3 : 4;
    return e->nondominated ? 3 : -1; /* random ones are many and explained by the legend */
}

static void label_text(const pinas_pareto_entry *e, char *buf, size_t n)
{
    if (!strcmp(e->kind, "all-relu")) snprintf(buf, n, "all-ReLU");
    else if (!strcmp(e->kind, "all-poly")) snprintf(buf, n, "all-poly");
    else if (!strcmp(e->kind, "first-k") || !strcmp(e->kind, "random")) snprintf(buf, n, "k=%d", e->naive_k);
    else if (!strncmp(e->sweep, "lambda=", 7)) snprintf(buf, n, "\xce\xbb=%s", e->sweep + 7);
    else if (e->sweep[0]) snprintf(buf, n, "%s", e->sweep);
    else snprintf(buf, n, "#%d", e->k);
}

static int by_latency(const void *a, const void *b, void *arg)
{
    const pareto_item *items = arg;
    const pinas_pareto_entry *p = &items[*(const int *)a].e, *q = &items[*(const int *)b].e;
    if (p->latency_ms != q->latency_ms) return p->latency_ms < q->latency_ms ? -1 : 1;
    return p->accuracy > q->accuracy ? -1 : p->accuracy < q->accuracy;
}

#define PLOT_L M_LEFT
#define PLOT_R (PLOT_W - M_RIGHT)
#define PLOT_T M_TOP
#define PLOT_B (PLOT_H - M_BOTTOM)

/* The axes' ranges: every point inside with a margin. */
static void plot_range(const pinas_pareto *p, axes *a)
{
    *a = (axes){INFINITY, -INFINITY, INFINITY, -INFINITY, 0};
    for (int i = 0; i < p->n; i++) {
        const pinas_pareto_entry *e = &p->items[i].e;
        a->x0 = fmin(a->x0, e->latency_ms);
        a->x1 = fmax(a->x1, e->latency_ms);
        a->y0 = fmin(a->y0, 100 * e->accuracy);
        a->y1 = fmax(a->y1, 100 * e->accuracy);
    }
    /* A log axis when latencies span more than a decade and a half: all-ReLU vs all-poly nets
     * often differ by 10-100x and a linear axis would crush the cheap end. */
    a->logx = a->x0 > 0 && a->x1 / a->x0 > 30;
    if (a->logx) {
        a->x0 /= 1.25;
        a->x1 *= 1.25;
    } else {
        double span = a->x1 - a->x0;
        if (span <= 0) span = a->x1 > 0 ? a->x1 * 0.2 : 1;
        a->x0 = fmax(0, a->x0 - 0.08 * span);
        a->x1 += 0.08 * span;
    }
    double yspan = a->y1 - a->y0;
    if (yspan < 2) yspan = 2;
    a->y0 = fmax(0, a->y0 - 0.1 * yspan);
    a->y1 = fmin(100, a->y1 + 0.12 * yspan);
    if (a->y1 - a->y0 < 1) a->y0 = a->y1 - 1;
}

/* Background, grid lines and tick labels, the frame. */
static void draw_grid(cairo_t *cr, const axes *ax)
{
    const axes a = *ax;
    cairo_set_source_rgb(cr, 1, 1, 1);
    cairo_paint(cr);
    cairo_select_font_face(cr, "DejaVu Sans", CAIRO_FONT_SLANT_NORMAL, CAIRO_FONT_WEIGHT_NORMAL);
    const double L = PLOT_L, R = PLOT_R, T = PLOT_T, B = PLOT_B;

    /* Grid and tick labels. */
    char buf[64];
    cairo_set_font_size(cr, 12);
    double ystep = nice_step((a.y1 - a.y0) / 6);
    for (double v = ceil(a.y0 / ystep) * ystep; v <= a.y1 + 1e-9; v += ystep) {
        double y = py(&a, v);
        cairo_set_source_rgb(cr, 0.9, 0.9, 0.9);
        cairo_set_line_width(cr, 1);
        cairo_move_to(cr, L, y);
        cairo_line_to(cr, R, y);
        cairo_stroke(cr);
        cairo_set_source_rgb(cr, 0.1, 0.1, 0.1);
        fmt_num(buf, sizeof buf, v);
        text_at(cr, L - 8, y, buf, 1.0, 0.5);
    }
    if (a.logx) {
        for (int d = (int)floor(log10(a.x0)); d <= (int)ceil(log10(a.x1)); d++)
            for (int m = 1; m <= 9; m++) {
                double v = m * pow(10, d);
                if (v < a.x0 || v > a.x1) continue;
                double x = px(&a, v);
                int major = m == 1 || m == 2 || m == 5;
                cairo_set_source_rgb(cr, major ? 0.88 : 0.95, major ? 0.88 : 0.95, major ? 0.88 : 0.95);
                cairo_move_to(cr, x, T);
                cairo_line_to(cr, x, B);
                cairo_stroke(cr);
                if (major) {
                    cairo_set_source_rgb(cr, 0.1, 0.1, 0.1);
                    fmt_num(buf, sizeof buf, v);
                    text_at(cr, x, B + 8, buf, 0.5, 0.0);
                }
            }
    } else {
        double xstep = nice_step((a.x1 - a.x0) / 7);
        for (double v = ceil(a.x0 / xstep) * xstep; v <= a.x1 + 1e-12; v += xstep) {
            double x = px(&a, v);
            cairo_set_source_rgb(cr, 0.9, 0.9, 0.9);
            cairo_move_to(cr, x, T);
            cairo_line_to(cr, x, B);
            cairo_stroke(cr);
            cairo_set_source_rgb(cr, 0.1, 0.1, 0.1);
            fmt_num(buf, sizeof buf, v);
            text_at(cr, x, B + 8, buf, 0.5, 0.0);
        }
    }
    cairo_set_source_rgb(cr, 0.2, 0.2, 0.2);
    cairo_set_line_width(cr, 1.2);
    cairo_rectangle(cr, L, T, R - L, B - T);
    cairo_stroke(cr);
}

/* Axis labels with units, the title and the hypervolume line. */
static void draw_titles(cairo_t *cr, const pinas_pareto *p, const axes *ax, const char *title)
{
    const axes a = *ax;
    const double L = PLOT_L, R = PLOT_R, T = PLOT_T, B = PLOT_B;
    char buf[64];
    cairo_set_font_size(cr, 14);
    char *xl = pinas_strfmt("predicted %s latency per inference (ms), %s / %s%s", p->metric && !strcmp(p->metric, "total") ? "online + offline"
                            : p->metric && !strcmp(p->metric, "e2e") ? "mean end-to-end" : "online",
                            p->hw ? p->hw : "?", p->net ? p->net : "?", a.logx ? ", log scale" : "");
    text_at(cr, (L + R) / 2, PLOT_H - 18, xl, 0.5, 1.0);
    free(xl);
    cairo_save(cr);
    cairo_translate(cr, 22, (T + B) / 2);
    cairo_rotate(cr, -M_PI / 2);
    text_at(cr, 0, 0, "test accuracy (%)", 0.5, 0.5);
    cairo_restore(cr);
    cairo_set_font_size(cr, 16);
    cairo_select_font_face(cr, "DejaVu Sans", CAIRO_FONT_SLANT_NORMAL, CAIRO_FONT_WEIGHT_BOLD);
    text_at(cr, PLOT_W / 2, 20, title && *title ? title : "latency-accuracy Pareto front", 0.5, 0.5);
    cairo_select_font_face(cr, "DejaVu Sans", CAIRO_FONT_SLANT_NORMAL, CAIRO_FONT_WEIGHT_NORMAL);
    if (!isnan(p->hv)) {
        cairo_set_font_size(cr, 11);
        snprintf(buf, sizeof buf, "hypervolume %.4g (normalised %.3f), %d of %d on the front", p->hv,
                 p->ref_lat > 0 ? p->hv / p->ref_lat : 0.0, p->n_front, p->n);
        cairo_set_source_rgb(cr, 0.3, 0.3, 0.3);
        text_at(cr, PLOT_W / 2, 40, buf, 0.5, 0.5);
    }
}

/* The front as a staircase (what it attains) with the area it dominates shaded, under the markers. */
static void draw_front(cairo_t *cr, const pinas_pareto *p, const axes *ax)
{
    const axes a = *ax;
    const double L = PLOT_L, R = PLOT_R, T = PLOT_T, B = PLOT_B;
    int *order = malloc((size_t)p->n * sizeof *order), nf = 0;
    if (order) {
        for (int i = 0; i < p->n; i++)
            if (p->items[i].e.nondominated) order[nf++] = i;
        qsort_r(order, (size_t)nf, sizeof *order, by_latency, p->items);
        cairo_save(cr);
        cairo_rectangle(cr, L, T, R - L, B - T);
        cairo_clip(cr);
        if (nf > 0) {
            /* Shade what the front dominates, up to the right edge. */
            cairo_move_to(cr, px(&a, p->items[order[0]].e.latency_ms), B);
            for (int q = 0; q < nf; q++) {
                const pinas_pareto_entry *e = &p->items[order[q]].e;
                cairo_line_to(cr, px(&a, e->latency_ms), py(&a, 100 * e->accuracy));
                double xn = q + 1 < nf ? px(&a, p->items[order[q + 1]].e.latency_ms) : R;
                cairo_line_to(cr, xn, py(&a, 100 * e->accuracy));
            }
            cairo_line_to(cr, R, B);
            cairo_close_path(cr);
            cairo_set_source_rgba(cr, 0.12, 0.47, 0.71, 0.08);
            cairo_fill(cr);
            for (int q = 0; q < nf; q++) {
                const pinas_pareto_entry *e = &p->items[order[q]].e;
                double x = px(&a, e->latency_ms), y = py(&a, 100 * e->accuracy);
                if (q == 0) cairo_move_to(cr, x, y);
                else cairo_line_to(cr, x, y);
                double xn = q + 1 < nf ? px(&a, p->items[order[q + 1]].e.latency_ms) : R;
                cairo_line_to(cr, xn, y);
            }
            cairo_set_source_rgb(cr, 0.12, 0.47, 0.71);
            cairo_set_line_width(cr, 2.2);
            cairo_stroke(cr);
        }
        cairo_restore(cr);
        free(order);
    }
}

/* Markers: the naive first-k/random cloud first, then dominated candidates, so front points and the
 * all-* baselines sit on top. *has_first_k / *has_random: whether the set has such baselines. */
static void draw_markers(cairo_t *cr, const pinas_pareto *p, const axes *ax, int *has_first_k_, int *has_random_)
{
    const axes a = *ax;
    int has_first_k = 0, has_random = 0;
    for (int pass = 0; pass < 3; pass++)
        for (int i = 0; i < p->n; i++) {
            const pinas_pareto_entry *e = &p->items[i].e;
            int naive = !strcmp(e->kind, "first-k") || !strcmp(e->kind, "random");
            has_first_k |= !strcmp(e->kind, "first-k");
            has_random |= !strcmp(e->kind, "random");
            int layer = e->nondominated ? 2 : naive ? 0 : !strcmp(e->kind, "candidate") ? 1 : 2;
            if (layer != pass) continue;
            marker(cr, e->kind, px(&a, e->latency_ms), py(&a, 100 * e->accuracy), e->nondominated);
        }
    *has_first_k_ = has_first_k;
    *has_random_ = has_random;
}

/* Labels, most important first, each where it covers no other label and no marker (else none). */
static void draw_labels(cairo_t *cr, const pinas_pareto *p, const axes *ax)
{
    const axes a = *ax;
    const double L = PLOT_L, R = PLOT_R, T = PLOT_T, B = PLOT_B;
    cairo_set_font_size(cr, 11);
    int n = p->n, nl = 0;
    double *mx = malloc((size_t)n * sizeof *mx), *my = malloc((size_t)n * sizeof *my);
    double *lw_ = malloc((size_t)n * sizeof *lw_), *lh_ = malloc((size_t)n * sizeof *lh_);
    int *anchor = malloc((size_t)n * sizeof *anchor), *placed = malloc((size_t)n * sizeof *placed);
    int *lorder = malloc((size_t)n * sizeof *lorder);
    nas_box *boxes = malloc((size_t)n * sizeof *boxes);
    cairo_text_extents_t *te = malloc((size_t)n * sizeof *te);
    char(*texts)[64] = malloc((size_t)n * sizeof *texts);
    if (mx && my && lw_ && lh_ && anchor && placed && lorder && boxes && te && texts) {
        for (int i = 0; i < n; i++) {
            mx[i] = px(&a, p->items[i].e.latency_ms);
            my[i] = py(&a, 100 * p->items[i].e.accuracy);
            lorder[i] = i;
        }
        qsort_r(lorder, (size_t)n, sizeof *lorder, by_latency, p->items);
        for (int rank = 0; rank <= 4; rank++)
            for (int q = 0; q < n; q++) {
                const pinas_pareto_entry *e = &p->items[lorder[q]].e;
                if (label_rank(e) != rank) continue;
                label_text(e, texts[nl], sizeof texts[nl]);
                cairo_text_extents(cr, texts[nl], &te[nl]);
                anchor[nl] = lorder[q];
                lw_[nl] = te[nl].width;
                lh_[nl] = te[nl].height;
                nl++;
            }
        nas_place_labels(n, mx, my, nl, anchor, lw_, lh_, (nas_box){L, T, R - L, B - T}, boxes, placed);
        cairo_set_source_rgb(cr, 0.15, 0.15, 0.15);
        for (int j = 0; j < nl; j++) {
            if (!placed[j]) continue;
            cairo_move_to(cr, boxes[j].x - te[j].x_bearing, boxes[j].y - te[j].y_bearing);
            cairo_show_text(cr, texts[j]);
        }
    }
    free(mx);
    free(my);
    free(lw_);
    free(lh_);
    free(anchor);
    free(placed);
    free(lorder);
    free(boxes);
    free(te);
    free(texts);
}

/* The legend right of the plot: inside, it would hide points wherever the front happens to lie.
 * The naive first-k and random baselines get a row only when the set has them. */
static void draw_legend(cairo_t *cr, int has_first_k, int has_random)
{
    const double R = PLOT_R, T = PLOT_T;
    static const struct {
        const char *kind, *text;
        int front;
    } all_rows[] = {{"candidate", "Pareto-optimal candidate", 1},
                    {"candidate", "dominated candidate", 0},
                    {"all-relu", "all-ReLU baseline", 0},
                    {"all-poly", "all-poly baseline", 0},
                    {"first-k", "ReLU in first k slots", 0},
                    {"random", "k ReLU slots at random", 0}};
    int rows[6], nrows = 0;
    for (int q = 0; q < 6; q++)
        if ((strcmp(all_rows[q].kind, "first-k") || has_first_k) && (strcmp(all_rows[q].kind, "random") || has_random)) rows[nrows++] = q;
    cairo_set_font_size(cr, 12);
    double lw = 200;
    for (int q = 0; q < nrows; q++) {
        cairo_text_extents_t e;
        cairo_text_extents(cr, all_rows[rows[q]].text, &e);
        lw = fmin(fmax(lw, e.x_advance + 52), M_RIGHT - 20);
    }
    double lx = R + 16, ly = T, lh = nrows * 20 + 30;
    cairo_set_source_rgba(cr, 1, 1, 1, 0.9);
    cairo_rectangle(cr, lx, ly, lw, lh);
    cairo_fill_preserve(cr);
    cairo_set_source_rgb(cr, 0.7, 0.7, 0.7);
    cairo_set_line_width(cr, 1);
    cairo_stroke(cr);
    cairo_set_font_size(cr, 12);
    cairo_move_to(cr, lx + 8, ly + 14);
    cairo_line_to(cr, lx + 30, ly + 14);
    cairo_set_source_rgb(cr, 0.12, 0.47, 0.71);
    cairo_set_line_width(cr, 2.2);
    cairo_stroke(cr);
    cairo_set_source_rgb(cr, 0.1, 0.1, 0.1);
    text_at(cr, lx + 40, ly + 14, "Pareto front", 0.0, 0.5);
    for (int q = 0; q < nrows; q++) {
        double yy = ly + 34 + 20 * q;
        marker(cr, all_rows[rows[q]].kind, lx + 19, yy, all_rows[rows[q]].front);
        cairo_set_source_rgb(cr, 0.1, 0.1, 0.1);
        text_at(cr, lx + 40, yy, all_rows[rows[q]].text, 0.0, 0.5);
    }
}

static void draw(cairo_t *cr, const pinas_pareto *p, const char *title)
{
    axes a;
    plot_range(p, &a);
    draw_grid(cr, &a);
    draw_titles(cr, p, &a, title);
    draw_front(cr, p, &a);
    int has_first_k = 0, has_random = 0;
    draw_markers(cr, p, &a, &has_first_k, &has_random);
    draw_labels(cr, p, &a);
    draw_legend(cr, has_first_k, has_random);
}

static cairo_status_t to_stream(void *closure, const unsigned char *data, unsigned int len)
{
    return fwrite(data, 1, len, closure) == len ? CAIRO_STATUS_SUCCESS : CAIRO_STATUS_WRITE_ERROR;
}

pinas_status pinas_pareto_plot(pinas_ctx *ctx, const pinas_pareto *p, const char *title, const char *svg_path, const char *png_path)
{
    if (!p->n) return pinas_error(ctx, PINAS_EINVAL, "nothing to plot: the Pareto set is empty");
    for (int i = 0; i < p->n; i++)
        if (isnan(p->items[i].e.latency_ms) || !(p->items[i].e.latency_ms >= 0))
            return pinas_error(ctx, PINAS_EINVAL, "%s: no latency selected (compute the front first)", p->items[i].label);
    for (int fmt = 0; fmt < 2; fmt++) {
        const char *path = fmt ? png_path : svg_path;
        if (!path) continue;
        char *buf = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&buf, &len);
        if (!f) return pinas_error(ctx, PINAS_ENOMEM, "out of memory");
        cairo_surface_t *sf = fmt ? cairo_image_surface_create(CAIRO_FORMAT_ARGB32, (int)PLOT_W, (int)PLOT_H)
                                  : cairo_svg_surface_create_for_stream(to_stream, f, PLOT_W, PLOT_H);
        cairo_t *cr = cairo_create(sf);
        draw(cr, p, title);
        cairo_status_t cs = cairo_status(cr);
        cairo_destroy(cr);
        if (!cs && fmt) cs = cairo_surface_write_to_png_stream(sf, to_stream, f);
        cairo_surface_finish(sf);
        if (!cs) cs = cairo_surface_status(sf);
        cairo_surface_destroy(sf);
        fclose(f);
        pinas_status s = PINAS_OK;
        if (cs) s = pinas_error(ctx, PINAS_EIO, "%s: cairo: %s", path, cairo_status_to_string(cs));
        else s = pinas_file_write_atomic(ctx, path, buf, len, PINAS_FILE_PUBLIC);
        free(buf);
        if (s) return s;
    }
    return PINAS_OK;
}
