/* Tests for data-parallel runs (train/dist.c, the sharded loader of train/data.c): the launch
 * environment (torchrun, Slurm, Open MPI), its errors, and DistributedSampler sharding. */
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>

#include "pinas_train.h"
#include "testutil.h"

static pinas_ctx *ctx;

static const char *const vars[] = {"RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT", "SLURM_PROCID", "SLURM_NTASKS",
                                   "SLURM_LOCALID", "SLURM_LAUNCH_NODE_IPADDR", "SLURM_NODELIST", "OMPI_COMM_WORLD_RANK",
                                   "OMPI_COMM_WORLD_SIZE", "OMPI_COMM_WORLD_LOCAL_RANK"};

static void clear_env(void)
{
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++) unsetenv(vars[i]);
}

static void test_env(void)
{
    pinas_dist d;
    clear_env();
    CU_ASSERT_EQUAL_FATAL(pinas_dist_from_env(ctx, "cpu", 0, &d), PINAS_OK);
    CU_ASSERT_EQUAL(d.world, 1);
    CU_ASSERT_EQUAL(d.rank, 0);
    CU_ASSERT_STRING_EQUAL(d.source, "single");
    CU_ASSERT_EQUAL(d.timeout_ms, 300000);
    /* torchrun style */
    setenv("RANK", "3", 1), setenv("WORLD_SIZE", "4", 1), setenv("LOCAL_RANK", "1", 1);
    setenv("MASTER_ADDR", "10.1.2.3", 1), setenv("MASTER_PORT", "29999", 1);
    CU_ASSERT_EQUAL_FATAL(pinas_dist_from_env(ctx, "cuda:1", 7.5, &d), PINAS_OK);
    CU_ASSERT_EQUAL(d.rank, 3);
    CU_ASSERT_EQUAL(d.world, 4);
    CU_ASSERT_EQUAL(d.local_rank, 1);
    CU_ASSERT_STRING_EQUAL(d.addr, "10.1.2.3");
    CU_ASSERT_EQUAL(d.port, 29999);
    CU_ASSERT_EQUAL(d.timeout_ms, 7500);
    CU_ASSERT_STRING_EQUAL(d.backend, "nccl");
    CU_ASSERT_STRING_EQUAL(d.source, "env");
    /* Slurm: the first host of the node list, the default port */
    clear_env();
    setenv("SLURM_PROCID", "5", 1), setenv("SLURM_NTASKS", "8", 1), setenv("SLURM_LOCALID", "1", 1);
    setenv("SLURM_NODELIST", "gpu[07-09,12],login1", 1);
    CU_ASSERT_EQUAL_FATAL(pinas_dist_from_env(ctx, "cpu", 0, &d), PINAS_OK);
    CU_ASSERT_EQUAL(d.rank, 5);
    CU_ASSERT_EQUAL(d.world, 8);
    CU_ASSERT_EQUAL(d.local_rank, 1);
    CU_ASSERT_STRING_EQUAL(d.addr, "gpu07");
    CU_ASSERT_EQUAL(d.port, PINAS_DIST_DEFAULT_PORT);
    CU_ASSERT_STRING_EQUAL(d.backend, "gloo");
    CU_ASSERT_STRING_EQUAL(d.source, "slurm");
    setenv("SLURM_NODELIST", "node3,node4", 1);
    CU_ASSERT_EQUAL_FATAL(pinas_dist_from_env(ctx, "cpu", 0, &d), PINAS_OK);
    CU_ASSERT_STRING_EQUAL(d.addr, "node3");
    setenv("SLURM_LAUNCH_NODE_IPADDR", "192.168.0.9", 1);
    CU_ASSERT_EQUAL_FATAL(pinas_dist_from_env(ctx, "cpu", 0, &d), PINAS_OK);
    CU_ASSERT_STRING_EQUAL(d.addr, "192.168.0.9");
    /* Open MPI */
    clear_env();
    setenv("OMPI_COMM_WORLD_RANK", "2", 1), setenv("OMPI_COMM_WORLD_SIZE", "3", 1), setenv("OMPI_COMM_WORLD_LOCAL_RANK", "0", 1);
    setenv("MASTER_ADDR", "head", 1);
    CU_ASSERT_EQUAL_FATAL(pinas_dist_from_env(ctx, "cpu", 0, &d), PINAS_OK);
    CU_ASSERT_EQUAL(d.rank, 2);
    CU_ASSERT_EQUAL(d.world, 3);
    CU_ASSERT_STRING_EQUAL(d.addr, "head");
    CU_ASSERT_STRING_EQUAL(d.source, "openmpi");
    /* torchrun's variables win over Slurm's */
    setenv("RANK", "0", 1), setenv("WORLD_SIZE", "2", 1);
    CU_ASSERT_EQUAL_FATAL(pinas_dist_from_env(ctx, "cpu", 0, &d), PINAS_OK);
    CU_ASSERT_STRING_EQUAL(d.source, "env");
    CU_ASSERT_EQUAL(d.world, 2);
    clear_env();
}

static void test_env_errors(void)
{
    pinas_dist d;
    clear_env();
    setenv("RANK", "2", 1), setenv("WORLD_SIZE", "2", 1);
    CU_ASSERT_EQUAL(pinas_dist_from_env(ctx, "cpu", 0, &d), PINAS_EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(pinas_errmsg(ctx), "RANK=2 is not below WORLD_SIZE=2"));
    setenv("RANK", "one", 1);
    CU_ASSERT_EQUAL(pinas_dist_from_env(ctx, "cpu", 0, &d), PINAS_EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(pinas_errmsg(ctx), "RANK=\"one\""));
    unsetenv("RANK");
    CU_ASSERT_EQUAL(pinas_dist_from_env(ctx, "cpu", 0, &d), PINAS_EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(pinas_errmsg(ctx), "WORLD_SIZE is set but RANK is not"));
    setenv("RANK", "0", 1), setenv("MASTER_PORT", "70000", 1);
    CU_ASSERT_EQUAL(pinas_dist_from_env(ctx, "cpu", 0, &d), PINAS_EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(pinas_errmsg(ctx), "MASTER_PORT"));
    clear_env();
}

static void test_device(void)
{
    pinas_dist d = {.rank = 3, .world = 4, .local_rank = 1};
    pinas_dist_set_device(ctx, &d, "cuda");
    CU_ASSERT_STRING_EQUAL(pinas_ctx_device(ctx), "cuda:1");
    pinas_dist_set_device(ctx, &d, "cuda:0");
    CU_ASSERT_STRING_EQUAL(pinas_ctx_device(ctx), "cuda:0");
    d.world = 1;
    pinas_dist_set_device(ctx, &d, "cuda");
    CU_ASSERT_STRING_EQUAL(pinas_ctx_device(ctx), "cuda");
    pinas_dist_set_device(ctx, NULL, "cpu");
    CU_ASSERT_STRING_EQUAL(pinas_ctx_device(ctx), "cpu");
}

/* Labels of every batch of an epoch, concatenated; *n gets their count. */
static int64_t *epoch_labels(pinas_dataset *d, const pinas_loader_opts *lo, int *n, int *globals)
{
    pinas_loader *l = NULL;
    CU_ASSERT_EQUAL_FATAL(pinas_loader_create(ctx, d, PINAS_SPLIT_TRAIN, lo, &l), PINAS_OK);
    int64_t *all = calloc(4096, sizeof *all);
    *n = 0;
    pinas_loader_start_epoch(l, 1);
    for (int b = 0;; b++) {
        pt_tensor *x = NULL, *y = NULL;
        CU_ASSERT_EQUAL_FATAL(pinas_loader_next(ctx, l, &x, &y), PINAS_OK);
        if (!x) break;
        int64_t k = 0;
        pt_numel(y, &k);
        CU_ASSERT_FATAL(pt_to_i64(y, all + *n, (size_t)k) == 0);
        *n += (int)k;
        if (globals) globals[b] = pinas_loader_last_global(l);
        pt_free(x);
        pt_free(y);
    }
    pinas_loader_free(l);
    return all;
}

static void test_shards(void)
{
    /* The unsharded epoch's labels, position by position, against the two shards'. */
    pinas_data_opts o = {.dataset = "synthetic", .synthetic_train = 100, .synthetic_test = 10, .synthetic_classes = 10,
                         .synthetic_size = 8, .val_fraction = 0.3, .seed = 4};
    pinas_dataset *d = NULL;
    CU_ASSERT_EQUAL_FATAL(pinas_dataset_load(ctx, &o, &d), PINAS_OK);
    pinas_loader_opts lo = {.batch_size = 16, .shuffle = 1, .augment = 1, .seed = 9};
    int n = 0, n0 = 0, n1 = 0, g0[16], g[16];
    int64_t *all = epoch_labels(d, &lo, &n, g);
    CU_ASSERT_EQUAL(n, 70);
    lo.world = 2;
    lo.rank = 0;
    int64_t *r0 = epoch_labels(d, &lo, &n0, g0);
    lo.rank = 1;
    int64_t *r1 = epoch_labels(d, &lo, &n1, NULL);
    CU_ASSERT_EQUAL(n0 + n1, 70);
    /* Global batch b holds positions [16b, 16b + 16): rank r has the elements r, r + 2, ... of it. */
    int p0 = 0, p1 = 0, same = 1;
    for (int b = 0; b * 16 < n; b++) {
        CU_ASSERT_EQUAL(g0[b], g[b]);
        for (int i = 0; i < g[b]; i++) {
            int64_t want = all[b * 16 + i];
            if (i % 2 == 0) same &= r0[p0++] == want;
            else same &= r1[p1++] == want;
        }
    }
    CU_ASSERT(same);
    CU_ASSERT_EQUAL(p0, n0);
    CU_ASSERT_EQUAL(p1, n1);
    free(all);
    free(r0);
    free(r1);
    /* A last batch smaller than the world cannot be shared: 70 = 4 * 17 + 2 with world 3. */
    pinas_loader *l = NULL;
    pinas_loader_opts bad = {.batch_size = 17, .shuffle = 1, .seed = 1, .rank = 0, .world = 3};
    CU_ASSERT_EQUAL(pinas_loader_create(ctx, d, PINAS_SPLIT_TRAIN, &bad, &l), PINAS_EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(pinas_errmsg(ctx), "fewer than the 3 ranks"));
    bad.drop_last = 1;
    CU_ASSERT_EQUAL(pinas_loader_create(ctx, d, PINAS_SPLIT_TRAIN, &bad, &l), PINAS_OK);
    pinas_loader_free(l);
    pinas_dataset_free(d);
}

/* The image tensors of rank r's shard equal the unsharded batch's, augmentation included. */
static void test_shard_images(void)
{
    pinas_data_opts o = {.dataset = "synthetic", .synthetic_train = 40, .synthetic_test = 10, .synthetic_classes = 4,
                         .synthetic_size = 8, .val_fraction = 0.5, .seed = 2, .crop_pad = 2, .flip = 1};
    pinas_dataset *d = NULL;
    CU_ASSERT_EQUAL_FATAL(pinas_dataset_load(ctx, &o, &d), PINAS_OK);
    pinas_loader_opts lo = {.batch_size = 8, .shuffle = 1, .augment = 1, .seed = 3};
    pinas_loader *l = NULL, *l1 = NULL;
    CU_ASSERT_EQUAL_FATAL(pinas_loader_create(ctx, d, PINAS_SPLIT_TRAIN, &lo, &l), PINAS_OK);
    lo.world = 2, lo.rank = 1;
    CU_ASSERT_EQUAL_FATAL(pinas_loader_create(ctx, d, PINAS_SPLIT_TRAIN, &lo, &l1), PINAS_OK);
    pinas_loader_start_epoch(l, 2);
    pinas_loader_start_epoch(l1, 2);
    pinas_dataset_info di;
    pinas_dataset_get_info(d, &di);
    size_t img = (size_t)di.c * di.h * di.w;
    float *a = malloc(8 * img * sizeof *a), *b = malloc(4 * img * sizeof *b);
    for (int step = 0; step < 2; step++) {
        pt_tensor *x = NULL, *y = NULL, *x1 = NULL, *y1 = NULL;
        CU_ASSERT_EQUAL_FATAL(pinas_loader_next(ctx, l, &x, &y), PINAS_OK);
        CU_ASSERT_EQUAL_FATAL(pinas_loader_next(ctx, l1, &x1, &y1), PINAS_OK);
        int64_t c = 0, c1 = 0;
        pt_numel(x, &c), pt_numel(x1, &c1);
        CU_ASSERT_EQUAL_FATAL((size_t)c, 8 * img);
        CU_ASSERT_EQUAL_FATAL((size_t)c1, 4 * img);
        CU_ASSERT(pt_to_f32(x, a, 8 * img) == 0 && pt_to_f32(x1, b, 4 * img) == 0);
        for (int i = 0; i < 4; i++) CU_ASSERT(memcmp(b + i * img, a + (2 * i + 1) * img, img * sizeof *a) == 0);
        pt_free(x), pt_free(y), pt_free(x1), pt_free(y1);
    }
    free(a);
    free(b);
    pinas_loader_free(l);
    pinas_loader_free(l1);
    pinas_dataset_free(d);
}

int main(void)
{
    ctx = pinas_ctx_create();
    pinas_ctx_set_log_level(ctx, PINAS_LOG_WARN);
    const tu_test tests[] = {
        {"rank/world/rendezvous from torchrun, Slurm and Open MPI variables", test_env},
        {"malformed launch variables are errors naming them", test_env_errors},
        {"a bare cuda device becomes cuda:<local rank>", test_device},
        {"DistributedSampler shards: rank r takes r, r+N, ... of each global batch", test_shards},
        {"a shard's images (augmented) equal the unsharded batch's", test_shard_images},
    };
    int rc = tu_run("train_dist", tests, (int)(sizeof tests / sizeof tests[0]));
    pinas_ctx_free(ctx);
    return rc;
}
