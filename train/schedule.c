/* Learning-rate schedules. */
#include "train_internal.h"

double pinas_cosine_lr(double lr_max, double lr_min, int64_t step, int64_t total)
{
    if (total <= 0) return lr_max;
    if (step < 0) step = 0;
    if (step > total) step = total;
    return lr_min + (lr_max - lr_min) * 0.5 * (1.0 + cos(3.141592653589793 * (double)step / (double)total));
}
