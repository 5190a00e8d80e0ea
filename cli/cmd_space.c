/* `pinas space show`: the expanded node table of a space or net, with MACs, parameters and ReLUs. */
#include "cli.h"
#include "pinas_net.h"

#include <stdlib.h>
#include <string.h>

static void help(void)
{
    printf("usage: pinas space show SPACE.json [--json] [--save OUT.json]\n\n"
           "Expands a search space (compact backbone form or explicit node list) and prints one row per\n"
           "node: id, op, inputs, output shape (C,H,W), MACs, ReLUs (comparisons as decided; open slots\n"
           "count as ReLU when relu is a candidate) and candidates, then the totals.\n\n"
           "  --json        print {\"nodes\": [...], \"macs\": N, \"params\": N, \"relu_count\": N}\n"
           "  --save FILE   also write the explicit pinas-net/1 form to FILE\n");
}

int pinas_cmd_space(pinas_ctx *ctx, int argc, char **argv)
{
    if (cli_wants_help(argc, argv) || argc < 2) {
        help();
        return argc < 2 ? 2 : 0;
    }
    if (strcmp(argv[1], "show") != 0) return cli_usage_error("space", "unknown subcommand \"%s\" (expected: show)", argv[1]);
    const char *path = NULL, *save = NULL;
    int json = 0;
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0) json = 1;
        else if (strcmp(argv[i], "--save") == 0 && i + 1 < argc) save = argv[++i];
        else if (argv[i][0] == '-') return cli_usage_error("space show", "unknown option %s", argv[i]);
        else if (!path) path = argv[i];
        else return cli_usage_error("space show", "unexpected argument %s", argv[i]);
    }
    if (!path) return cli_usage_error("space show", "missing SPACE.json");
    pinas_net *net;
    if (pinas_net_load(ctx, path, &net)) return cli_fail(ctx);
    if (save && pinas_net_save(ctx, net, save)) {
        pinas_net_free(net);
        return cli_fail(ctx);
    }
    int n = pinas_net_n_nodes(net);
    if (json) {
        cJSON *out = cJSON_CreateObject();
        cJSON *nodes = cJSON_AddArrayToObject(out, "nodes");
        for (int i = 1; i < n; i++) {
            const pinas_node *nd = pinas_net_node(net, i);
            cJSON *o = cJSON_CreateObject();
            cJSON_AddStringToObject(o, "id", nd->id);
            cJSON_AddStringToObject(o, "op", pinas_op_name(nd->op));
            int shp[3] = {nd->c, nd->h, nd->w};
            cJSON_AddItemToObject(o, "shape", cJSON_CreateIntArray(shp, 3));
            cJSON_AddNumberToObject(o, "macs", (double)pinas_node_macs(net, i));
            cJSON_AddNumberToObject(o, "params", (double)pinas_node_params(net, i));
            cJSON_AddNumberToObject(o, "relu_count", (double)pinas_node_relu_count(net, i));
            if (pinas_node_is_slot(nd)) {
                cJSON *cs = cJSON_AddArrayToObject(o, "candidates");
                char nm[32];
                for (int k = 0; k < nd->n_cands; k++) cJSON_AddItemToArray(cs, cJSON_CreateString(pinas_cand_name(&nd->cands[k], nm, sizeof nm)));
                const pinas_cand *c = pinas_node_chosen(nd);
                if (c) cJSON_AddStringToObject(o, "choice", pinas_cand_name(c, nm, sizeof nm));
            }
            cJSON_AddItemToArray(nodes, o);
        }
        cJSON_AddStringToObject(out, "name", pinas_net_name(net));
        cJSON_AddNumberToObject(out, "macs", (double)pinas_net_macs(net));
        cJSON_AddNumberToObject(out, "params", (double)pinas_net_params(net));
        cJSON_AddNumberToObject(out, "relu_count", (double)pinas_net_relu_count(net));
        cJSON_AddNumberToObject(out, "open_slots", pinas_net_n_open(net));
        cli_print_json(out);
        cJSON_Delete(out);
    } else {
        printf("%-20s %-15s %-22s %-16s %14s %10s  %s\n", "id", "op", "inputs", "shape", "MACs", "ReLUs", "candidates");
        for (int i = 1; i < n; i++) {
            const pinas_node *nd = pinas_net_node(net, i);
            char shape[48], ins[64] = "", cands[160] = "";
            snprintf(shape, sizeof shape, "%dx%dx%d", nd->c, nd->h, nd->w);
            for (int k = 0; k < nd->n_inputs; k++) {
                size_t l = strlen(ins);
                snprintf(ins + l, sizeof ins - l, "%s%s", k ? "," : "", pinas_net_node(net, nd->inputs[k])->id);
            }
            if (pinas_node_is_slot(nd)) {
                const pinas_cand *c = pinas_node_chosen(nd);
                for (int k = 0; k < nd->n_cands; k++) {
                    char nm[32];
                    size_t l = strlen(cands);
                    int chosen = c == &nd->cands[k];
                    snprintf(cands + l, sizeof cands - l, "%s%s%s%s", k ? " " : "", chosen ? "[" : "",
                             pinas_cand_name(&nd->cands[k], nm, sizeof nm), chosen ? "]" : "");
                }
            }
            printf("%-20s %-15s %-22s %-16s %14lld %10lld  %s\n", nd->id, pinas_op_name(nd->op), ins, shape, (long long)pinas_node_macs(net, i),
                   (long long)pinas_node_relu_count(net, i), cands);
        }
        int64_t macs = pinas_net_macs(net);
        printf("\n%s: %d nodes, %d open slots\n", pinas_net_name(net), n - 1, pinas_net_n_open(net));
        printf("MACs %lld (%.3f G)   params %lld (%.2f M)   ReLUs %lld\n", (long long)macs, macs / 1e9, (long long)pinas_net_params(net),
               pinas_net_params(net) / 1e6, (long long)pinas_net_relu_count(net));
    }
    pinas_net_free(net);
    return 0;
}
