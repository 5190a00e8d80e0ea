/* File helpers: whole-file reads, atomic writes (temporary file + fsync + rename), mkdir -p. */
#define _GNU_SOURCE
#include "pinas_common.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
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

pinas_status pinas_file_write_atomic(pinas_ctx *ctx, const char *path, const void *data, size_t len, int mode)
{
    char *tmp = pinas_strfmt("%s.tmp.%d", path, (int)getpid());
    if (!tmp) return pinas_error(ctx, PINAS_ENOMEM, "out of memory");
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    if (fd < 0) {
        pinas_status s = pinas_error(ctx, PINAS_EIO, "%s: cannot create: %s", tmp, strerror(errno));
        free(tmp);
        return s;
    }
    fchmod(fd, (mode_t)mode);
    const char *p = data;
    size_t left = len;
    while (left > 0) {
        ssize_t w = write(fd, p, left);
        if (w < 0) {
            if (errno == EINTR) continue;
            pinas_status s = pinas_error(ctx, PINAS_EIO, "%s: write failed: %s", path, strerror(errno));
            close(fd);
            unlink(tmp);
            free(tmp);
            return s;
        }
        p += w;
        left -= (size_t)w;
    }
    if (fsync(fd) != 0 || close(fd) != 0) {
        pinas_status s = pinas_error(ctx, PINAS_EIO, "%s: fsync/close failed: %s", path, strerror(errno));
        unlink(tmp);
        free(tmp);
        return s;
    }
    if (rename(tmp, path) != 0) {
        pinas_status s = pinas_error(ctx, PINAS_EIO, "%s: rename failed: %s", path, strerror(errno));
        unlink(tmp);
        free(tmp);
        return s;
    }
    free(tmp);
    return PINAS_OK;
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
