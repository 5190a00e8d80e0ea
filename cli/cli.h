/* The pinas command line: command entry points (one file each) and shared helpers. */
#ifndef PINAS_CLI_H
#define PINAS_CLI_H
#include "pinas_common.h"

/* Every command: argv[0] is the command name; returns the process exit status (0 ok, 1 error,
 * 2 usage). Commands are weak symbols: a command whose file is not built is not listed. */
#define PINAS_CMD(name) int name(pinas_ctx *ctx, int argc, char **argv) __attribute__((weak))
PINAS_CMD(pinas_cmd_space);
PINAS_CMD(pinas_cmd_config);
PINAS_CMD(pinas_cmd_model);
PINAS_CMD(pinas_cmd_dealer);
PINAS_CMD(pinas_cmd_party);
PINAS_CMD(pinas_cmd_keygen);
PINAS_CMD(pinas_cmd_infer);
PINAS_CMD(pinas_cmd_stream);
PINAS_CMD(pinas_cmd_train);
PINAS_CMD(pinas_cmd_predict);
PINAS_CMD(pinas_cmd_calibrate);
PINAS_CMD(pinas_cmd_validate_latency);
PINAS_CMD(pinas_cmd_search);
PINAS_CMD(pinas_cmd_pareto);
PINAS_CMD(pinas_cmd_export);
PINAS_CMD(pinas_cmd_bench);

/* `pinas bench KIND`: each kind is a weak symbol too, implemented by its module's CLI file. */
PINAS_CMD(pinas_bench_relu);
PINAS_CMD(pinas_bench_poly);
PINAS_CMD(pinas_bench_patch);
PINAS_CMD(pinas_bench_conv);
PINAS_CMD(pinas_bench_net);
PINAS_CMD(pinas_bench_train);

/* The light `pinas` (no libtorch; built with PINAS_LIGHT) runs a command that needs libtorch by
 * exec'ing pinas-torch next to its executable with the whole command line (it does not return on
 * success; prints why and returns 1 when pinas-torch is missing). NULL in pinas-torch itself. */
PINAS_CMD(cli_torch_forward);

/* Prints "pinas: <message>" for the context's last error and returns 1. */
int cli_fail(pinas_ctx *ctx);
/* Prints "pinas CMD: <message>" plus a hint to --help, returns 2. */
int cli_usage_error(const char *cmd, const char *fmt, ...) PINAS_PRINTF(2, 3);
/* 1 if argv has -h or --help. */
int cli_wants_help(int argc, char **argv);
/* Parses a positive/non-negative integer option value; prints a usage error on failure. */
int cli_parse_int(const char *cmd, const char *opt, const char *val, long lo, long hi, long *out);
int cli_parse_double(const char *cmd, const char *opt, const char *val, double lo, double hi, double *out);
/* Prints JSON (pretty) to stdout with a newline. */
void cli_print_json(const cJSON *j);

/* The per-layer table of a private inference's report (cli/cmd_party.c): online ms, preprocessing
 * bytes per party, online bytes sent per party, rounds; totals, setup, and a summary line. */
struct pinas_mpc_report;
void cli_print_mpc_report(FILE *f, const struct pinas_mpc_report *r);
#endif
