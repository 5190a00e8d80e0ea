/* `pinas bench KIND`: dispatch to the benchmarks each module provides (JSON output, medians). */
#include "cli.h"

#include <string.h>

typedef struct {
    const char *kind;
    int (*fn)(pinas_ctx *, int, char **);
    const char *summary;
} bench_kind;

int pinas_cmd_bench(pinas_ctx *ctx, int argc, char **argv)
{
    const bench_kind kinds[] = {
        {"relu", pinas_bench_relu, "private ReLU throughput (FSS), online and preprocessing"},
        {"poly", pinas_bench_poly, "private polynomial activation throughput"},
        {"patch", pinas_bench_patch, "private patch-ReLU throughput"},
        {"conv", pinas_bench_conv, "private conv2d (Beaver matrix triples) and the ring GEMM"},
        {"net", pinas_bench_net, "private inference of a whole model, end to end"},
        {"train", pinas_bench_train ? pinas_bench_train : cli_torch_forward, "training step time of a supernet and a decided net"},
    };
    int n = (int)(sizeof kinds / sizeof kinds[0]);
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        printf("usage: pinas bench KIND [OPTIONS] [--json]\n\nkinds:\n");
        for (int i = 0; i < n; i++)
            if (kinds[i].fn) printf("  %-8s %s\n", kinds[i].kind, kinds[i].summary);
        printf("\n`pinas bench KIND --help` shows a benchmark's options. Figures are medians over repeats.\n");
        return argc < 2 ? 2 : 0;
    }
    for (int i = 0; i < n; i++)
        if (kinds[i].fn && strcmp(kinds[i].kind, argv[1]) == 0) return kinds[i].fn(ctx, argc - 1, argv + 1);
    return cli_usage_error("bench", "unknown benchmark \"%s\"", argv[1]);
}
