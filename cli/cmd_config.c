/* `pinas config show`: the effective run config (schema defaults, then the file, then --set). */
#include "cli.h"
#include "pinas_config.h"

#include <string.h>

static void help(void)
{
    printf("usage: pinas config show [CONFIG.json] [--set key.path=value ...]\n"
           "       pinas config schema\n\n"
           "`show` prints the effective config as JSON: the schema's defaults, overridden by the file,\n"
           "overridden by each --set (the value is parsed as JSON when it parses, else taken as a string).\n"
           "Unknown keys and wrong types are errors that name the file and the field.\n"
           "`schema` lists every field with its type, default and meaning.\n");
}

int pinas_cmd_config(pinas_ctx *ctx, int argc, char **argv)
{
    if (cli_wants_help(argc, argv) || argc < 2) {
        help();
        return argc < 2 ? 2 : 0;
    }
    if (strcmp(argv[1], "schema") == 0) {
        printf("  %-24s %-8s %-26s %s\n", "key", "type", "default", "meaning");
        pinas_config_print_schema(stdout);
        return 0;
    }
    if (strcmp(argv[1], "show") != 0) return cli_usage_error("config", "unknown subcommand \"%s\" (expected: show, schema)", argv[1]);
    const char *path = NULL;
    const char *sets[64];
    int n_sets = 0;
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--set") == 0) {
            if (i + 1 >= argc) return cli_usage_error("config show", "--set needs key.path=value");
            if (n_sets == 64) return cli_usage_error("config show", "too many --set");
            sets[n_sets++] = argv[++i];
        } else if (strncmp(argv[i], "--set=", 6) == 0) {
            if (n_sets == 64) return cli_usage_error("config show", "too many --set");
            sets[n_sets++] = argv[i] + 6;
        } else if (argv[i][0] == '-') {
            return cli_usage_error("config show", "unknown option %s", argv[i]);
        } else if (!path) {
            path = argv[i];
        } else {
            return cli_usage_error("config show", "unexpected argument %s", argv[i]);
        }
    }
    pinas_config *cfg;
    if (pinas_config_load(ctx, path, sets, n_sets, &cfg)) return cli_fail(ctx);
    cli_print_json(pinas_config_json(cfg));
    pinas_config_free(cfg);
    return 0;
}
