/* File helpers: whole-file reads, atomic writes (exclusive temporary file + fsync + rename + directory fsync), mkdir -p. */
#define _GNU_SOURCE
#include "pinas_common.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

char *pinas_strdup(const char *s) { return s ? strdup(s) : NULL; }

char *pinas_strfmt(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *s = NULL;
    if (vasprintf(&s, fmt, ap) < 0) s = NULL;
    va_end(ap);
    return s;
}

char *pinas_path_join(const char *a, const char *b)
{
    size_t la = strlen(a);
    if (la && a[la - 1] == '/') return pinas_strfmt("%s%s", a, b);
    return pinas_strfmt("%s/%s", a, b);
}

int pinas_path_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

pinas_status pinas_file_read(pinas_ctx *ctx, const char *path, char **out, size_t *len)
{
    *out = NULL;
    if (len) *len = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return pinas_error(ctx, PINAS_EIO, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        fclose(f);
        return pinas_error(ctx, PINAS_EIO, "%s: not a regular file", path);
    }
    size_t n = (size_t)st.st_size;
    char *buf = malloc(n + 1);
    if (!buf) {
        fclose(f);
        return pinas_error(ctx, PINAS_ENOMEM, "%s: out of memory reading %zu bytes", path, n);
    }
    size_t got = fread(buf, 1, n, f);
    int err = ferror(f);
    fclose(f);
    if (err || got != n) {
        free(buf);
        return pinas_error(ctx, PINAS_EIO, "%s: read failed (%zu of %zu bytes)", path, got, n);
    }
    buf[n] = 0;
    *out = buf;
    if (len) *len = n;
    return PINAS_OK;
}

/* ---------------------------------------------------------------- atomic writes */

struct pinas_file_atomic {
    int fd;
    char *path, *tmp;
    size_t written;
};

/* The stale-temp age limit: a "<name>.tmp.*" older than this is removed even when its pid is alive
 * (the pid may have been reused). */
#define STALE_TMP_SECONDS (24 * 3600)

/* A temp name's owner pid, from "<base>.tmp.<pid>" or "<base>.tmp.<pid>.<random>"; -1 if the rest of
 * the name is not that shape. */
static long tmp_owner(const char *rest)
{
    char *end = NULL;
    errno = 0;
    long pid = strtol(rest, &end, 10);
    if (errno || end == rest || pid <= 0 || (*end && *end != '.')) return -1;
    return pid;
}

/* Removes temp files of `path` left by killed writers: "<name>.tmp.<pid>[.<random>]" whose pid is not
 * running on this host, or older than STALE_TMP_SECONDS. Best effort: errors are ignored. */
static void clean_stale_tmps(const char *path)
{
    const char *slash = strrchr(path, '/');
    char *dir = slash ? strndup(path, (size_t)(slash - path) + (slash == path)) : strdup(".");
    char *prefix = pinas_strfmt("%s.tmp.", slash ? slash + 1 : path);
    DIR *d = dir ? opendir(dir) : NULL;
    size_t pl = prefix ? strlen(prefix) : 0;
    time_t now = time(NULL);
    for (struct dirent *e; d && prefix && (e = readdir(d));) {
        if (strncmp(e->d_name, prefix, pl) != 0) continue;
        long pid = tmp_owner(e->d_name + pl);
        struct stat st;
        if (pid < 0 || fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0) continue;
        if (S_ISDIR(st.st_mode)) continue;
        int dead = pid != (long)getpid() && kill((pid_t)pid, 0) != 0 && errno == ESRCH;
        if (dead || now - st.st_mtime > STALE_TMP_SECONDS) unlinkat(dirfd(d), e->d_name, 0);
    }
    if (d) closedir(d);
    free(dir);
    free(prefix);
}

pinas_status pinas_file_create_excl(pinas_ctx *ctx, const char *path, int mode, int *fd_out)
{
    *fd_out = -1;
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, (mode_t)mode);
    if (fd < 0) {
        int err = errno; /* kept for the caller (EEXIST: the name is taken) */
        pinas_status s = pinas_error(ctx, PINAS_EIO, "%s: cannot create: %s%s", path, strerror(err),
                                     err == ELOOP || err == EEXIST ? " (something is already there; not followed)" : "");
        errno = err;
        return s;
    }
    /* secret files are exactly `mode` (0600) whatever the umask; others keep mode & ~umask */
    if (!(mode & 077) && fchmod(fd, (mode_t)mode) != 0) {
        pinas_status s = pinas_error(ctx, PINAS_EIO, "%s: cannot set mode %o: %s", path, (unsigned)mode, strerror(errno));
        close(fd);
        unlink(path);
        return s;
    }
    *fd_out = fd;
    return PINAS_OK;
}

/* A write past `ulimit -f` must fail with EFBIG and a message, not kill the process. Only a default
 * disposition is changed: a caller that handles SIGXFSZ keeps its handler. */
static void ignore_sigxfsz(void)
{
    struct sigaction old;
    if (sigaction(SIGXFSZ, NULL, &old) == 0 && old.sa_handler == SIG_DFL && !(old.sa_flags & SA_SIGINFO)) {
        struct sigaction ign = {.sa_handler = SIG_IGN};
        sigemptyset(&ign.sa_mask);
        sigaction(SIGXFSZ, &ign, NULL);
    }
}

pinas_status pinas_file_atomic_open(pinas_ctx *ctx, const char *path, int mode, pinas_file_atomic **out)
{
    *out = NULL;
    ignore_sigxfsz();
    clean_stale_tmps(path);
    pinas_file_atomic *f = calloc(1, sizeof *f);
    if (!f || !(f->path = strdup(path))) {
        free(f);
        return pinas_error(ctx, PINAS_ENOMEM, "out of memory");
    }
    pinas_status s = PINAS_OK;
    for (int attempt = 0; attempt < 8; attempt++) { /* a name taken (planted or racing): draw another */
        uint64_t rnd = 0;
        if (getrandom(&rnd, sizeof rnd, 0) != (ssize_t)sizeof rnd) rnd ^= (uint64_t)(pinas_now() * 1e9) + (uint64_t)attempt;
        free(f->tmp);
        f->tmp = pinas_strfmt("%s.tmp.%d.%016llx", path, (int)getpid(), (unsigned long long)rnd);
        if (!f->tmp) {
            s = pinas_error(ctx, PINAS_ENOMEM, "out of memory");
            break;
        }
        s = pinas_file_create_excl(ctx, f->tmp, mode, &f->fd);
        if (!s || errno != EEXIST) break;
    }
    if (s) {
        free(f->tmp);
        free(f->path);
        free(f);
        return s;
    }
    *out = f;
    return PINAS_OK;
}

const char *pinas_file_atomic_tmp_path(const pinas_file_atomic *f) { return f ? f->tmp : NULL; }

void pinas_file_atomic_abort(pinas_file_atomic *f)
{
    if (!f) return;
    if (f->fd >= 0) close(f->fd);
    unlink(f->tmp);
    free(f->tmp);
    free(f->path);
    free(f);
}

/* The message of a failed write: ENOSPC and EFBIG say what happened and that the target is intact. */
static pinas_status write_error(pinas_ctx *ctx, const pinas_file_atomic *f, int err, const char *what)
{
    const char *why = err == ENOSPC ? " (the disk is full)"
                      : err == EFBIG ? " (the file size limit, `ulimit -f`, or the file system's, was reached)"
                                     : "";
    return pinas_error(ctx, PINAS_EIO, "%s: %s failed after %zu bytes: %s%s; %s", f->path, what, f->written, strerror(err), why,
                       "the file was not replaced (any previous version is unchanged)");
}

pinas_status pinas_file_atomic_write(pinas_ctx *ctx, pinas_file_atomic *f, const void *data, size_t len)
{
    const char *p = data;
    while (len > 0) {
        ssize_t w = write(f->fd, p, len > (1u << 30) ? (1u << 30) : len);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return write_error(ctx, f, w < 0 ? errno : ENOSPC, "write");
        p += w;
        len -= (size_t)w;
        f->written += (size_t)w;
    }
    return PINAS_OK;
}

/* fsync of the directory, so that the rename survives a crash. File systems that cannot sync a
 * directory (EINVAL) are accepted. */
static pinas_status sync_dir(pinas_ctx *ctx, const char *path)
{
    const char *slash = strrchr(path, '/');
    char *dir = slash ? strndup(path, (size_t)(slash - path) + (slash == path)) : strdup(".");
    if (!dir) return pinas_error(ctx, PINAS_ENOMEM, "out of memory");
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    pinas_status s = PINAS_OK;
    if (fd < 0 || (fsync(fd) != 0 && errno != EINVAL && errno != EROFS))
        s = pinas_error(ctx, PINAS_EIO, "%s: cannot sync the directory after writing %s: %s", dir, path, strerror(errno));
    if (fd >= 0) close(fd);
    free(dir);
    return s;
}

pinas_status pinas_file_atomic_commit(pinas_ctx *ctx, pinas_file_atomic *f)
{
    pinas_status s = PINAS_OK;
    if (fsync(f->fd) != 0) s = write_error(ctx, f, errno, "fsync");
    int c = close(f->fd);
    f->fd = -1;
    if (!s && c != 0) s = write_error(ctx, f, errno, "close");
    if (!s && rename(f->tmp, f->path) != 0)
        s = pinas_error(ctx, PINAS_EIO, "%s: cannot rename %s into place: %s", f->path, f->tmp, strerror(errno));
    if (s) {
        pinas_file_atomic_abort(f);
        return s;
    }
    s = sync_dir(ctx, f->path);
    free(f->tmp);
    free(f->path);
    free(f);
    return s;
}

pinas_status pinas_file_write_atomic(pinas_ctx *ctx, const char *path, const void *data, size_t len, int mode)
{
    pinas_file_atomic *f = NULL;
    pinas_status s = pinas_file_atomic_open(ctx, path, mode, &f);
    if (!s) s = pinas_file_atomic_write(ctx, f, data, len);
    if (s) {
        pinas_file_atomic_abort(f);
        return s;
    }
    return pinas_file_atomic_commit(ctx, f);
}

pinas_status pinas_mkdir_p(pinas_ctx *ctx, const char *path)
{
    char *p = pinas_strdup(path);
    if (!p) return pinas_error(ctx, PINAS_ENOMEM, "out of memory");
    for (char *s = p + 1; ; s++) {
        if (*s == '/' || *s == 0) {
            char c = *s;
            *s = 0;
            if (mkdir(p, 0755) != 0 && errno != EEXIST) {
                pinas_status st = pinas_error(ctx, PINAS_EIO, "%s: cannot create directory: %s", p, strerror(errno));
                free(p);
                return st;
            }
            *s = c;
            if (c == 0) break;
        }
    }
    free(p);
    struct stat st;
    if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode)) return pinas_error(ctx, PINAS_EIO, "%s: not a directory", path);
    return PINAS_OK;
}
