/* Tests for common/file.c: atomic writes that no planted symlink redirects, modes (secret 0600, others
 * by the umask), stale temporary files cleaned, write errors (file size limit) that keep the old file. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "testutil.h"

static pinas_ctx *ctx;

static char *slurp(const char *path)
{
    char *b = NULL;
    size_t n;
    return pinas_file_read(ctx, path, &b, &n) ? NULL : b;
}

/* How many entries of dir start with prefix. */
static int count_prefix(const char *dir, const char *prefix)
{
    DIR *d = opendir(dir);
    int n = 0;
    for (struct dirent *e; d && (e = readdir(d));) n += strncmp(e->d_name, prefix, strlen(prefix)) == 0;
    if (d) closedir(d);
    return n;
}

static mode_t mode_of(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? st.st_mode & 07777 : (mode_t)-1;
}

static void test_symlink_at_tmp_name_not_followed(void)
{
    char *victim = pinas_strdup(tu_path("victim.txt")), *target = pinas_strdup(tu_path("sym-target.json"));
    tu_write(victim, "precious\n");
    /* the temp names of earlier versions ("<path>.tmp.<pid>") and a guessed one are planted */
    char *old = pinas_strfmt("%s.tmp.%d", target, (int)getpid());
    char *guess = pinas_strfmt("%s.tmp.%d.0000000000000000", target, (int)getpid());
    CU_ASSERT_EQUAL_FATAL(symlink(victim, old), 0);
    CU_ASSERT_EQUAL_FATAL(symlink(victim, guess), 0);
    CU_ASSERT_EQUAL(pinas_file_write_atomic(ctx, target, "new\n", 4, PINAS_FILE_PUBLIC), PINAS_OK);
    char *v = slurp(victim), *t = slurp(target);
    CU_ASSERT_STRING_EQUAL(v ? v : "", "precious\n");
    CU_ASSERT_STRING_EQUAL(t ? t : "", "new\n");
    /* the primitive itself refuses a symlink (and any existing entry) at its name */
    int fd = -1;
    pinas_status s = pinas_file_create_excl(ctx, guess, PINAS_FILE_SECRET, &fd);
    TU_ASSERT_ERR(ctx, s, "cannot create");
    CU_ASSERT_EQUAL(fd, -1);
    free(v), free(t);
    v = slurp(victim);
    CU_ASSERT_STRING_EQUAL(v ? v : "", "precious\n");
    /* a symlink at the target itself is replaced, its target not written */
    char *link = pinas_strdup(tu_path("link.json"));
    CU_ASSERT_EQUAL_FATAL(symlink(victim, link), 0);
    CU_ASSERT_EQUAL(pinas_file_write_atomic(ctx, link, "x\n", 2, PINAS_FILE_PUBLIC), PINAS_OK);
    struct stat st;
    CU_ASSERT(lstat(link, &st) == 0 && S_ISREG(st.st_mode));
    free(v);
    v = slurp(victim);
    CU_ASSERT_STRING_EQUAL(v ? v : "", "precious\n");
    unlink(old), unlink(guess);
    free(v), free(victim), free(target), free(old), free(guess), free(link);
}

static void test_modes_follow_umask_secret_0600(void)
{
    mode_t um = umask(027);
    const char *pub = tu_path("pub.json"), *sec = tu_path("sec.bin");
    CU_ASSERT_EQUAL(pinas_file_write_atomic(ctx, pub, "{}\n", 3, PINAS_FILE_PUBLIC), PINAS_OK);
    CU_ASSERT_EQUAL(mode_of(pub), 0640);
    umask(002);
    CU_ASSERT_EQUAL(pinas_file_write_atomic(ctx, pub, "{}\n", 3, PINAS_FILE_PUBLIC), PINAS_OK);
    CU_ASSERT_EQUAL(mode_of(pub), 0664);
    umask(0);
    CU_ASSERT_EQUAL(pinas_file_write_atomic(ctx, sec, "k", 1, PINAS_FILE_SECRET), PINAS_OK);
    CU_ASSERT_EQUAL(mode_of(sec), 0600);
    /* JSON and safetensors writers follow the umask too (no forced 0644) */
    umask(077);
    cJSON *j = cJSON_CreateObject();
    const char *jp = tu_path("m.json");
    CU_ASSERT_EQUAL(pinas_json_save(ctx, jp, j), PINAS_OK);
    CU_ASSERT_EQUAL(mode_of(jp), 0600);
    cJSON_Delete(j);
    pinas_tensors *t = pinas_tensors_create();
    float w[3] = {1, 2, 3};
    int64_t shp[1] = {3};
    const char *wp = tu_path("w.safetensors");
    CU_ASSERT_EQUAL(pinas_tensors_add(ctx, t, "w", PINAS_F32, 1, shp, w), PINAS_OK);
    CU_ASSERT_EQUAL(pinas_safetensors_save(ctx, wp, t, NULL), PINAS_OK);
    CU_ASSERT_EQUAL(mode_of(wp), 0600);
    umask(022);
    CU_ASSERT_EQUAL(pinas_safetensors_save_mode(ctx, wp, t, NULL, PINAS_FILE_SECRET), PINAS_OK);
    CU_ASSERT_EQUAL(mode_of(wp), 0600);
    pinas_tensors *back = NULL;
    pinas_tensor_view v;
    CU_ASSERT_EQUAL(pinas_safetensors_load(ctx, wp, &back), PINAS_OK);
    CU_ASSERT(back && pinas_tensors_find(back, "w", &v) == 0 && memcmp(v.data, w, sizeof w) == 0);
    pinas_tensors_free(back);
    pinas_tensors_free(t);
    umask(um);
}

static void test_stale_tmps_cleaned(void)
{
    const char *target = tu_path("stale.json");
    /* a dead writer's pid: a child that has exited and been reaped */
    pid_t dead = fork();
    if (dead == 0) _exit(0);
    waitpid(dead, NULL, 0);
    char *a = pinas_strfmt("%s.tmp.%d", target, (int)dead), *b = pinas_strfmt("%s.tmp.%d.abcdef", target, (int)dead);
    char *live = pinas_strfmt("%s.tmp.%d.1234", target, (int)getppid()); /* a running process: kept */
    char *old = pinas_strfmt("%s.tmp.%d.5678", target, (int)getppid());  /* running but 2 days old: removed */
    char *other = pinas_strfmt("%s.tmp.notapid", target);                /* not our pattern: kept */
    const char *files[] = {a, b, live, old, other};
    for (int i = 0; i < 5; i++) tu_write(files[i], "junk");
    struct timespec ts[2] = {{.tv_sec = time(NULL) - 2 * 86400}, {.tv_sec = time(NULL) - 2 * 86400}};
    utimensat(AT_FDCWD, old, ts, 0);
    CU_ASSERT_EQUAL(pinas_file_write_atomic(ctx, target, "{}\n", 3, PINAS_FILE_PUBLIC), PINAS_OK);
    CU_ASSERT(!pinas_path_exists(a));
    CU_ASSERT(!pinas_path_exists(b));
    CU_ASSERT(pinas_path_exists(live));
    CU_ASSERT(!pinas_path_exists(old));
    CU_ASSERT(pinas_path_exists(other));
    unlink(live), unlink(other);
    free(a), free(b), free(live), free(old), free(other);
}

/* In a child (the limit is per process): a write past RLIMIT_FSIZE ends in a message naming the file,
 * the previous file stays whole and no temporary file is left. */
static void test_file_size_limit_message(void)
{
    const char *target = tu_path("big.bin");
    tu_write(target, "old contents\n");
    int pfd[2];
    CU_ASSERT_EQUAL_FATAL(pipe(pfd), 0);
    pid_t pid = fork();
    if (pid == 0) {
        close(pfd[0]);
        struct rlimit rl = {.rlim_cur = 4096, .rlim_max = RLIM_INFINITY};
        setrlimit(RLIMIT_FSIZE, &rl);
        size_t n = 1 << 20;
        char *buf = calloc(1, n);
        pinas_ctx *c = pinas_ctx_create();
        pinas_status s = pinas_file_write_atomic(c, target, buf, n, PINAS_FILE_PUBLIC);
        const char *msg = pinas_errmsg(c);
        if (write(pfd[1], msg, strlen(msg)) < 0) _exit(3);
        _exit(s == PINAS_EIO ? 0 : 1);
    }
    close(pfd[1]);
    char msg[1024] = {0};
    ssize_t got = read(pfd[0], msg, sizeof msg - 1);
    close(pfd[0]);
    int ws = 0;
    waitpid(pid, &ws, 0);
    CU_ASSERT(got > 0);
    CU_ASSERT(WIFEXITED(ws) && WEXITSTATUS(ws) == 0); /* not killed by SIGXFSZ */
    CU_ASSERT_PTR_NOT_NULL(strstr(msg, target));
    CU_ASSERT_PTR_NOT_NULL(strstr(msg, "ulimit -f"));
    CU_ASSERT_PTR_NOT_NULL(strstr(msg, "previous version is unchanged"));
    char *back = slurp(target);
    CU_ASSERT_STRING_EQUAL(back ? back : "", "old contents\n");
    free(back);
    CU_ASSERT_EQUAL(count_prefix(tu_tmpdir(), "big.bin.tmp."), 0);
}

static void test_streamed_writer(void)
{
    const char *target = tu_path("stream.txt");
    pinas_file_atomic *f = NULL;
    CU_ASSERT_EQUAL_FATAL(pinas_file_atomic_open(ctx, target, PINAS_FILE_SECRET, &f), PINAS_OK);
    CU_ASSERT_PTR_NOT_NULL(strstr(pinas_file_atomic_tmp_path(f), "stream.txt.tmp."));
    CU_ASSERT_EQUAL(pinas_file_atomic_write(ctx, f, "ab", 2), PINAS_OK);
    CU_ASSERT(!pinas_path_exists(target)); /* nothing at the target before the commit */
    CU_ASSERT_EQUAL(pinas_file_atomic_write(ctx, f, "cd", 2), PINAS_OK);
    CU_ASSERT_EQUAL(pinas_file_atomic_commit(ctx, f), PINAS_OK);
    char *b = slurp(target);
    CU_ASSERT_STRING_EQUAL(b ? b : "", "abcd");
    free(b);
    CU_ASSERT_EQUAL(pinas_file_atomic_open(ctx, target, PINAS_FILE_SECRET, &f), PINAS_OK);
    CU_ASSERT_EQUAL(pinas_file_atomic_write(ctx, f, "zz", 2), PINAS_OK);
    pinas_file_atomic_abort(f);
    pinas_file_atomic_abort(NULL);
    b = slurp(target);
    CU_ASSERT_STRING_EQUAL(b ? b : "", "abcd");
    free(b);
    CU_ASSERT_EQUAL(count_prefix(tu_tmpdir(), "stream.txt.tmp."), 0);
    /* a directory that does not exist: the message names the path */
    TU_ASSERT_ERR(ctx, pinas_file_write_atomic(ctx, "/nonexistent-dir/x.json", "x", 1, PINAS_FILE_PUBLIC), "/nonexistent-dir/x.json");
}

int main(void)
{
    ctx = pinas_ctx_create();
    tu_test tests[] = {
        {"a symlink planted at the temp name is not followed", test_symlink_at_tmp_name_not_followed},
        {"modes: umask respected, secrets 0600", test_modes_follow_umask_secret_0600},
        {"stale temp files of the target are cleaned", test_stale_tmps_cleaned},
        {"file size limit: message, old file kept", test_file_size_limit_message},
        {"streamed writer: commit and abort", test_streamed_writer},
    };
    int rc = tu_run("common_file", tests, (int)(sizeof tests / sizeof *tests));
    pinas_ctx_free(ctx);
    return rc;
}
