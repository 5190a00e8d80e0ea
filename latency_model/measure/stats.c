/* Statistics for measurement: the relative least-squares line fit of calibration, Kendall's tau of validation. */
#define _GNU_SOURCE
#include "measure_internal.h"

#include <gsl/gsl_fit.h>
#include <gsl/gsl_multifit.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* |y| floored at 1e-12: the fit weighs a point by 1 / yy^2 (relative errors). */
static double floor_abs(double y) { return fabs(y) > 1e-12 ? fabs(y) : 1e-12; }

static double rel_weight(double y)
{
    double yy = floor_abs(y);
    return 1.0 / (yy * yy);
}

/* R^2 in the fit's own (relative) weighting: 1 - sum w e^2 / sum w (y - weighted mean)^2. */
static double weighted_r2(int n, const double *x, const double *y, double c0, double c1)
{
    double mean = 0, wsum = 0, ss_tot = 0, ss_res = 0;
    for (int i = 0; i < n; i++) {
        double wi = rel_weight(y[i]);
        mean += wi * y[i];
        wsum += wi;
    }
    mean /= wsum;
    for (int i = 0; i < n; i++) {
        double wi = rel_weight(y[i]);
        double e = y[i] - (c0 + c1 * x[i]);
        ss_res += wi * e * e;
        ss_tot += wi * (y[i] - mean) * (y[i] - mean);
    }
    return ss_tot > 0 ? 1 - ss_res / ss_tot : (ss_res == 0 ? 1 : 0);
}

pinas_status pinas_measure_fit_line(pinas_ctx *ctx, int n, const double *x, const double *y, double *a, double *b, double *r2)
{
    if (n < 3) return pinas_error(ctx, PINAS_EINVAL, "fit: need at least 3 points, got %d", n);
    double *w = malloc((size_t)n * sizeof *w);
    if (!w) return pinas_error(ctx, PINAS_ENOMEM, "out of memory");
    double xmin = x[0], xmax = x[0];
    for (int i = 0; i < n; i++) {
        if (!isfinite(x[i]) || !isfinite(y[i])) {
            free(w);
            return pinas_error(ctx, PINAS_EINVAL, "fit: point %d is not finite (%g, %g)", i, x[i], y[i]);
        }
        /* Relative least squares: small sizes (where the per-call cost dominates) count as much as
         * large ones, which is what a per-layer prediction of small CIFAR layers needs. */
        w[i] = rel_weight(y[i]);
        if (x[i] < xmin) xmin = x[i];
        if (x[i] > xmax) xmax = x[i];
    }
    if (xmax == xmin) {
        free(w);
        return pinas_error(ctx, PINAS_EINVAL, "fit: every point has the same work %g; need a size sweep", xmin);
    }
    double c0, c1, c00, c01, c11, chisq;
    int rc = gsl_fit_wlinear(x, 1, w, 1, y, 1, (size_t)n, &c0, &c1, &c00, &c01, &c11, &chisq);
    free(w);
    if (rc) return pinas_error(ctx, PINAS_EINTERNAL, "fit: GSL gsl_fit_wlinear failed (code %d)", rc);
    if (c1 < 0) {
        /* Work never makes a primitive faster: fall back to a constant (the weighted mean). */
        double sw = 0, sy = 0;
        for (int i = 0; i < n; i++) {
            double yy = floor_abs(y[i]);
            sw += 1 / (yy * yy);
            sy += y[i] / (yy * yy);
        }
        c0 = sy / sw;
        c1 = 0;
    }
    *a = c0;
    *b = c1;
    *r2 = weighted_r2(n, x, y, c0, c1);
    return PINAS_OK;
}

double pinas_measure_kendall_tau(int n, const double *a, const double *b)
{
    /* tau-b = (C - D) / sqrt((n0 - n1)(n0 - n2)), ties counted per variable; O(n^2) is fine for the
     * tens of architectures a validation runs. */
    double c = 0, d = 0, ta = 0, tb = 0;
    for (int i = 0; i < n; i++)
        for (int j = i + 1; j < n; j++) {
            double x = a[i] - a[j], y = b[i] - b[j];
            if (x == 0 && y == 0) continue;
            if (x == 0) ta++;
            else if (y == 0) tb++;
            else if ((x > 0) == (y > 0)) c++;
            else d++;
        }
    double den = sqrt((c + d + ta) * (c + d + tb));
    return den > 0 ? (c - d) / den : 0;
}

double pinas_measure_kendall_tau_resolved(int n, const double *pred, const double *meas, const double *lo, const double *hi, int *resolved)
{
    double c = 0, d = 0;
    int r = 0;
    for (int i = 0; i < n; i++)
        for (int j = i + 1; j < n; j++) {
            /* measured order known only when one's whole span lies below the other's and the point
             * figures say the same */
            int below = hi[i] < lo[j] && meas[i] < meas[j], above = hi[j] < lo[i] && meas[j] < meas[i];
            if (!below && !above) continue;
            double x = pred[i] - pred[j];
            r++;
            if (x == 0) continue; /* a predicted tie of a resolved pair: neither concordant nor discordant */
            if ((x < 0) == below) c++;
            else d++;
        }
    if (resolved) *resolved = r;
    return r ? (c - d) / r : NAN;
}

/* One relative weighted least-squares solve over the features in use[] (GSL multifit); coef of the
 * others 0. Returns 0 on success. */
static int solve_wls(int n, int k, const double *X, const double *y, const int *use, double *coef)
{
    int m = 0;
    for (int f = 0; f < k; f++) m += use[f];
    for (int f = 0; f < k; f++) coef[f] = 0;
    if (m == 0 || n < m) return -1;
    gsl_matrix *A = gsl_matrix_alloc((size_t)n, (size_t)m), *cov = gsl_matrix_alloc((size_t)m, (size_t)m);
    gsl_vector *b = gsl_vector_alloc((size_t)n), *w = gsl_vector_alloc((size_t)n), *c = gsl_vector_alloc((size_t)m);
    gsl_multifit_linear_workspace *ws = gsl_multifit_linear_alloc((size_t)n, (size_t)m);
    int rc = -1;
    if (A && cov && b && w && c && ws) {
        for (int i = 0; i < n; i++) {
            for (int f = 0, j = 0; f < k; f++)
                if (use[f]) gsl_matrix_set(A, (size_t)i, (size_t)j++, X[(size_t)i * (size_t)k + (size_t)f]);
            gsl_vector_set(b, (size_t)i, y[i]);
            gsl_vector_set(w, (size_t)i, rel_weight(y[i]));
        }
        double chisq;
        rc = gsl_multifit_wlinear(A, w, b, c, cov, &chisq, ws);
        for (int f = 0, j = 0; rc == 0 && f < k; f++)
            if (use[f]) coef[f] = gsl_vector_get(c, (size_t)j++);
    }
    gsl_multifit_linear_free(ws);
    gsl_matrix_free(A);
    gsl_matrix_free(cov);
    gsl_vector_free(b);
    gsl_vector_free(w);
    gsl_vector_free(c);
    return rc;
}

/* Mean absolute relative error of coef on the points; each point's into res (may be NULL). */
static double rel_errors(int n, int k, const double *X, const double *y, const double *coef, double *res)
{
    double e = 0;
    for (int i = 0; i < n; i++) {
        double p = 0;
        for (int f = 0; f < k; f++) p += coef[f] * X[(size_t)i * k + f];
        double r = fabs(p - y[i]) / y[i];
        if (res) res[i] = r;
        e += r;
    }
    return n ? e / n : 0;
}

/* The fit over the features in use (active set: negative weights dropped, the rest refitted). */
static pinas_status fit_active(pinas_ctx *ctx, int n, int k, const double *X, const double *y, const int *use_in, double *coef)
{
    int use[16];
    memcpy(use, use_in, (size_t)k * sizeof *use);
    for (int iter = 0; iter <= k; iter++) {
        if (solve_wls(n, k, X, y, use, coef)) return pinas_error(ctx, PINAS_EINVAL, "fit: singular (%d points)", n);
        int worst = -1;
        for (int f = 0; f < k; f++)
            if (use[f] && coef[f] < 0 && (worst < 0 || coef[f] < coef[worst])) worst = f;
        if (worst < 0) break;
        use[worst] = 0;
    }
    return PINAS_OK;
}

pinas_status pinas_measure_fit_linear(pinas_ctx *ctx, int n, int k, const double *X, const double *y, double *coef,
                                      double *mape_pct)
{
    if (n < 1 || k < 1 || k > 16) return pinas_error(ctx, PINAS_EINVAL, "fit: %d points of %d features", n, k);
    int use[16];
    for (int f = 0; f < k; f++) {
        use[f] = 0;
        for (int i = 0; i < n; i++) use[f] |= X[(size_t)i * (size_t)k + (size_t)f] != 0;
    }
    for (int i = 0; i < n; i++)
        if (!isfinite(y[i]) || !(y[i] > 0)) return pinas_error(ctx, PINAS_EINVAL, "fit: point %d: time %g is not positive", i, y[i]);
    /* Drop features that are a constant multiple of another one in use (e.g. in = out for an
     * element-wise node), keeping the first: a collinear pair has no unique split. */
    for (int f = 0; f < k; f++)
        for (int g = f + 1; g < k && use[f]; g++) {
            if (!use[g]) continue;
            double r = X[g] / (X[f] != 0 ? X[f] : 1);
            int same = X[f] != 0;
            for (int i = 0; i < n && same; i++) same = fabs(X[(size_t)i * k + g] - r * X[(size_t)i * k + f]) <= 1e-9 * fabs(X[(size_t)i * k + g]) + 1e-12;
            if (same) use[g] = 0;
        }
    pinas_status s = fit_active(ctx, n, k, X, y, use, coef);
    if (s) return s;
    /* One robust pass: points off by more than 3x the median error (and 15%) - a busy spell of the
     * machine during their run - are left out and the rest refitted, at most a tenth of them. */
    double *res = malloc((size_t)n * sizeof *res), *sorted = malloc((size_t)n * sizeof *sorted);
    double *X2 = malloc((size_t)n * (size_t)k * sizeof *X2), *y2 = malloc((size_t)n * sizeof *y2);
    if (!res || !sorted || !X2 || !y2) s = pinas_error(ctx, PINAS_ENOMEM, "out of memory");
    if (!s && n >= 10) {
        rel_errors(n, k, X, y, coef, res);
        memcpy(sorted, res, (size_t)n * sizeof *sorted);
        qsort(sorted, (size_t)n, sizeof *sorted, measure_cmp_double);
        double cut = 3 * sorted[n / 2] > 0.15 ? 3 * sorted[n / 2] : 0.15;
        int m = 0, out = 0;
        for (int i = 0; i < n; i++) {
            if (res[i] > cut && out < n / 10) {
                out++;
                continue;
            }
            memcpy(&X2[(size_t)m * k], &X[(size_t)i * k], (size_t)k * sizeof *X2);
            y2[m++] = y[i];
        }
        if (out) s = fit_active(ctx, m, k, X2, y2, use, coef);
    }
    if (!s && mape_pct) *mape_pct = 100 * rel_errors(n, k, X, y, coef, NULL);
    free(res);
    free(sorted);
    free(X2);
    free(y2);
    return s;
}
