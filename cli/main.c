/* pinas: entry point and command dispatch. Only cli/ talks to the user. */
#define _GNU_SOURCE
#include "cli.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef int (*cmd_fn)(pinas_ctx *, int, char **);
typedef struct {
    const char *name;
    cmd_fn fn;
    const char *summary;
    int torch; /* needs libtorch: the light `pinas` runs it through pinas-torch (cli_torch_forward) */
} command;

static const command commands[] = {
    {"search", pinas_cmd_search, "run a hardware-aware architecture search from a config", 1},
    {"pareto", pinas_cmd_pareto, "merge runs, print and plot the latency-accuracy Pareto front", 1},
    {"export", pinas_cmd_export, "export a searched candidate as a model dir for the runtime", 1},
    {"train", pinas_cmd_train, "train a decided architecture from a config", 1},
    {"space", pinas_cmd_space, "show a search space or net: nodes, shapes, MACs, ReLUs", 0},
    {"config", pinas_cmd_config, "show the effective run config (defaults + file + --set)", 0},
    {"predict", pinas_cmd_predict, "predict 2PC latency per node under hardware/network profiles", 0},
    {"calibrate", pinas_cmd_calibrate, "fit the cpu hardware profile from runtime micro-benchmarks", 0},
    {"validate-latency", pinas_cmd_validate_latency, "compare predicted and measured latency on random archs", 0},
    {"model", pinas_cmd_model, "make a model dir with random weights (for tests and benchmarks)", 0},
    {"dealer", pinas_cmd_dealer, "write each party's preprocessing file for a model", 0},
    {"party", pinas_cmd_party, "run one party (server or client) of a private inference", 0},
    {"infer", pinas_cmd_infer, "run a private inference locally (dealer + two processes over TCP)", 0},
    {"stream", pinas_cmd_stream, "a stream of private inferences with on-the-fly preprocessing, against the e2e model", 0},
    {"keygen", pinas_cmd_keygen, "write a pre-shared key or certificates for the parties' TLS channel", 0},
    {"bench", pinas_cmd_bench, "benchmarks with JSON output (medians)", 0},
};
#define N_COMMANDS (int)(sizeof commands / sizeof commands[0])

/* A command's entry point: its own, or (the light pinas, for a libtorch command) the forward; NULL
 * when this binary has neither. */
static cmd_fn command_fn(const command *c) { return c->fn ? c->fn : c->torch ? cli_torch_forward : NULL; }

#ifdef PINAS_LIGHT
static char **main_argv; /* the whole command line, global options included, for the forward */

/* The light pinas links no libtorch (a party starts at a few MB instead of ~160): a command that
 * needs it runs in pinas-torch, the full build next to this executable, with the same arguments. */
int cli_torch_forward(pinas_ctx *ctx, int argc, char **argv)
{
    (void)ctx, (void)argc;
    char path[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", path, sizeof path - 16);
    if (n <= 0) {
        fprintf(stderr, "pinas: error: /proc/self/exe: %s (needed to find pinas-torch)\n", strerror(errno));
        return 1;
    }
    path[n] = 0;
    char *slash = strrchr(path, '/');
    snprintf(slash ? slash + 1 : path, sizeof path - (size_t)(slash ? slash + 1 - path : 0), "pinas-torch");
    if (access(path, X_OK) != 0) {
        fprintf(stderr,
                "pinas: error: `pinas %s` needs libtorch, which this pinas does not load; it runs in %s, which is "
                "missing (%s): build the pinas-torch target next to pinas\n",
                argv[0], path, strerror(errno));
        return 1;
    }
    fflush(NULL);
    main_argv[0] = path;
    execv(path, main_argv);
    fprintf(stderr, "pinas: error: cannot run %s: %s\n", path, strerror(errno));
    return 1;
}
#endif

static void usage(FILE *f)
{
    fprintf(f, "pinas %s - hardware-aware NAS for two-party private inference\n\n", PINAS_VERSION);
    fprintf(f, "usage: pinas [--quiet|--verbose] COMMAND [ARGS]\n\ncommands:\n");
    for (int i = 0; i < N_COMMANDS; i++)
        if (command_fn(&commands[i])) fprintf(f, "  %-18s %s\n", commands[i].name, commands[i].summary);
    fprintf(f, "\n`pinas COMMAND --help` shows a command's options. `pinas --version` prints the version.\n");
}

int cli_fail(pinas_ctx *ctx)
{
    fprintf(stderr, "pinas: error: %s\n", pinas_errmsg(ctx));
    return 1;
}

int cli_usage_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "pinas %s: ", cmd);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n(see `pinas %s --help`)\n", cmd);
    return 2;
}

int cli_wants_help(int argc, char **argv)
{
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) return 1;
    return 0;
}

int cli_parse_int(const char *cmd, const char *opt, const char *val, long lo, long hi, long *out)
{
    char *end = NULL;
    long v = val ? strtol(val, &end, 10) : 0;
    if (!val || !*val || *end || v < lo || v > hi) {
        cli_usage_error(cmd, "%s: expected an integer in [%ld, %ld], got \"%s\"", opt, lo, hi, val ? val : "");
        return -1;
    }
    *out = v;
    return 0;
}

int cli_parse_double(const char *cmd, const char *opt, const char *val, double lo, double hi, double *out)
{
    char *end = NULL;
    double v = val ? strtod(val, &end) : 0;
    if (!val || !*val || *end || !(v >= lo && v <= hi)) {
        cli_usage_error(cmd, "%s: expected a number in [%g, %g], got \"%s\"", opt, lo, hi, val ? val : "");
        return -1;
    }
    *out = v;
    return 0;
}

void cli_print_json(const cJSON *j)
{
    char *t = cJSON_Print(j);
    if (t) {
        fputs(t, stdout);
        fputc('\n', stdout);
        free(t);
    }
}

int main(int argc, char **argv)
{
#ifdef PINAS_LIGHT
    main_argv = argv;
#endif
    pinas_ctx *ctx = pinas_ctx_create();
    if (!ctx) {
        fprintf(stderr, "pinas: out of memory\n");
        return 1;
    }
    int i = 1;
    for (; i < argc && argv[i][0] == '-'; i++) {
        if (strcmp(argv[i], "--version") == 0) {
            printf("pinas %s (git %s)\n", PINAS_VERSION, PINAS_GIT_REV);
            pinas_ctx_free(ctx);
            return 0;
        } else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            pinas_ctx_free(ctx);
            return 0;
        } else if (strcmp(argv[i], "--quiet") == 0 || strcmp(argv[i], "-q") == 0) {
            pinas_ctx_set_log_level(ctx, PINAS_LOG_WARN);
        } else if (strcmp(argv[i], "--verbose") == 0 || strcmp(argv[i], "-v") == 0) {
            pinas_ctx_set_log_level(ctx, PINAS_LOG_DEBUG);
        } else {
            fprintf(stderr, "pinas: unknown option %s\n\n", argv[i]);
            usage(stderr);
            pinas_ctx_free(ctx);
            return 2;
        }
    }
    if (i >= argc) {
        usage(stderr);
        pinas_ctx_free(ctx);
        return 2;
    }
    const char *name = argv[i];
    int rc = -1;
    for (int k = 0; k < N_COMMANDS; k++)
        if (command_fn(&commands[k]) && strcmp(commands[k].name, name) == 0) rc = command_fn(&commands[k])(ctx, argc - i, argv + i);
    if (rc == -1) {
        const char *names[N_COMMANDS];
        int n = 0;
        for (int k = 0; k < N_COMMANDS; k++)
            if (command_fn(&commands[k])) names[n++] = commands[k].name;
        const char *dym = pinas_did_you_mean(name, names, n);
        fprintf(stderr, "pinas: unknown command \"%s\"%s%s%s\n(`pinas --help` lists the commands)\n", name, dym ? " (did you mean \"" : "",
                dym ? dym : "", dym ? "\"?)" : "");
        rc = 2;
    }
    pinas_ctx_free(ctx);
    return rc;
}
