/* Seeded non-cryptographic randomness (pinas_rng, splitmix64): filling buffers for benchmarks, tests and random inputs. */
#include "pinas_common.h"

#include <math.h>

void pinas_rng_fill_uniform(pinas_rng *r, float *x, size_t n, double lo, double hi)
{
    for (size_t i = 0; i < n; i++) x[i] = (float)(lo + (hi - lo) * pinas_rng_unif(r));
}

void pinas_rng_fill_normal(pinas_rng *r, float *x, size_t n)
{
    for (size_t i = 0; i < n; i += 2) {
        /* u1 in (0, 1]: log(0) never happens. */
        double u1 = 1.0 - pinas_rng_unif(r), u2 = pinas_rng_unif(r), rr = sqrt(-2 * log(u1));
        x[i] = (float)(rr * cos(6.283185307179586 * u2));
        if (i + 1 < n) x[i + 1] = (float)(rr * sin(6.283185307179586 * u2));
    }
}
