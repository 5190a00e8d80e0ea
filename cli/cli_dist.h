/* The data-parallel options shared by `pinas search` and `pinas train` (--nproc, --dist-timeout). */
#ifndef PINAS_CLI_DIST_H
#define PINAS_CLI_DIST_H
#include "cli.h"

/* Parses argv[*i] when it is --nproc N or --dist-timeout S (advancing *i past the value): -1 when it
 * was one of them (parsed), 0 when it is another argument, 2 after a usage error (printed). */
int cli_dist_option(const char *cmd, int argc, char **argv, int *i, long *nproc, double *timeout);
/* --nproc N: runs `pinas CMD ARGS` (argv without --nproc N) as N local ranks and waits for them;
 * returns the exit status (1 naming the rank that failed). */
int cli_dist_launch(pinas_ctx *ctx, const char *cmd, int argc, char **argv, int nproc, double timeout);
/* For ranks > 0: sends their progress bars to /dev/null and keeps warnings and errors only.
 * Returns the stream for the progress bars (caller closes), NULL when /dev/null cannot be opened. */
FILE *cli_quiet_rank(pinas_ctx *ctx);
#endif
