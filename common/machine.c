/* This machine against the one a hardware profile was fitted on: the warning when their CPU models differ. */
#include "pinas_common.h"

#include <stdio.h>
#include <string.h>

int pinas_machine_mismatch(const char *profile, const char *fitted_cpu, const char *fitted_date, char *msg, size_t n)
{
    char here[256];
    if (n) msg[0] = 0;
    if (!fitted_cpu || !*fitted_cpu || !*pinas_machine_cpu_model(here, sizeof here) || strcmp(fitted_cpu, here) == 0) return 0;
    if (n)
        snprintf(msg, n,
                 "hardware profile %s was fitted on \"%s\"%s%s%s; this machine is \"%s\": its latency predictions may be off; "
                 "run `pinas calibrate` here",
                 profile ? profile : "?", fitted_cpu, fitted_date ? " (" : "", fitted_date ? fitted_date : "", fitted_date ? ")" : "",
                 here);
    return 1;
}
