/* Statistics for measurement: the relative least-squares line fit of calibration, Kendall's tau of validation. */
#define _GNU_SOURCE
#include "measure_internal.h"

#include <gsl/gsl_fit.h>
#include <math.h>
#include <stdlib.h>

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
