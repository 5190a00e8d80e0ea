/* The data-parallel options shared by `pinas search` and `pinas train`: parsing and the --nproc launcher. */
#define _GNU_SOURCE
#include "cli_dist.h"
#include "pinas_dist.h"

#include <stdlib.h>
#include <string.h>

int cli_dist_option(const char *cmd, int argc, char **argv, int *i, long *nproc, double *timeout)
{
    const char *a = argv[*i];
    if (strcmp(a, "--nproc") && strcmp(a, "--dist-timeout")) return 0;
    if (*i + 1 >= argc) return cli_usage_error(cmd, "%s needs a value", a);
    const char *v = argv[++*i];
    if (!strcmp(a, "--nproc")) return cli_parse_int(cmd, a, v, 1, 4096, nproc) ? 2 : -1;
    return cli_parse_double(cmd, a, v, 1, 86400, timeout) ? 2 : -1;
}

int cli_dist_launch(pinas_ctx *ctx, const char *cmd, int argc, char **argv, int nproc, double timeout)
{
    if (getenv("RANK") && getenv("WORLD_SIZE"))
        return cli_usage_error(cmd, "--nproc inside a launched job (RANK and WORLD_SIZE are set already): drop one of them");
    /* The workers run this same program with the same arguments, less --nproc. */
    char **cv = calloc((size_t)argc + 2, sizeof *cv);
    if (!cv) return cli_fail(ctx);
    int n = 0;
    cv[n++] = "/proc/self/exe";
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--nproc")) {
            i++;
            continue;
        }
        cv[n++] = argv[i];
    }
    cv[n] = NULL;
    pinas_info(ctx, "%s: launching %d local ranks", cmd, nproc);
    pinas_status s = pinas_dist_launch(ctx, nproc, cv, timeout > 0 ? timeout : 300);
    free(cv);
    return s ? cli_fail(ctx) : 0;
}

FILE *cli_quiet_rank(pinas_ctx *ctx)
{
    if (pinas_ctx_log_level(ctx) < PINAS_LOG_WARN) pinas_ctx_set_log_level(ctx, PINAS_LOG_WARN);
    return fopen("/dev/null", "w");
}
