/* Secret key files: 32 random bytes as 64 hex digits, mode 0600 (the TLS pre-shared key and the dealer key). */
#define _GNU_SOURCE
#include "pinas_mpc.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int hexval(int c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

static pinas_status mode_check(pinas_ctx *ctx, const char *what, const char *path, const struct stat *st)
{
    if (!S_ISREG(st->st_mode)) return pinas_error(ctx, PINAS_EIO, "%s %s: not a regular file", what, path);
    if (st->st_mode & 077)
        return pinas_error(ctx, PINAS_EINVAL,
                           "%s %s: readable by group or others (mode %04o; a key readable by others is refused): run chmod 600 %s",
                           what, path, (unsigned)(st->st_mode & 07777), path);
    return PINAS_OK;
}

pinas_status pinas_mpc_secret_file_check(pinas_ctx *ctx, const char *what, const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0) return pinas_error(ctx, PINAS_EIO, "%s %s: cannot open: %s", what, path, strerror(errno));
    return mode_check(ctx, what, path, &st);
}

pinas_status pinas_mpc_key_file_write(pinas_ctx *ctx, const char *path)
{
    uint8_t key[PINAS_MPC_KEY_BYTES];
    char hex[2 * PINAS_MPC_KEY_BYTES + 2];
    pinas_status s = pinas_os_random(ctx, key, sizeof key);
    for (int i = 0; !s && i < PINAS_MPC_KEY_BYTES; i++) snprintf(hex + 2 * i, 3, "%02x", key[i]);
    hex[2 * PINAS_MPC_KEY_BYTES] = '\n';
    if (!s) s = pinas_file_write_atomic(ctx, path, hex, sizeof hex - 1, PINAS_FILE_SECRET);
    OPENSSL_cleanse(key, sizeof key);
    OPENSSL_cleanse(hex, sizeof hex);
    return s;
}

pinas_status pinas_mpc_key_file_read(pinas_ctx *ctx, const char *what, const char *path, const char *hint,
                                     uint8_t key[PINAS_MPC_KEY_BYTES])
{
    /* one open, then fstat: the mode checked is the mode of the file read */
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return pinas_error(ctx, PINAS_EIO, "%s %s: cannot open: %s", what, path, strerror(errno));
    struct stat st;
    char buf[80];
    ssize_t n = -1;
    pinas_status s = PINAS_OK;
    if (fstat(fd, &st) != 0) s = pinas_error(ctx, PINAS_EIO, "%s %s: cannot stat: %s", what, path, strerror(errno));
    else s = mode_check(ctx, what, path, &st);
    if (!s) n = read(fd, buf, sizeof buf);
    close(fd);
    while (!s && n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' ')) n--;
    int ok = n == 2 * PINAS_MPC_KEY_BYTES;
    for (int i = 0; !s && ok && i < PINAS_MPC_KEY_BYTES; i++) {
        int hi = hexval((unsigned char)buf[2 * i]), lo = hexval((unsigned char)buf[2 * i + 1]);
        ok = hi >= 0 && lo >= 0;
        key[i] = (uint8_t)(hi << 4 | lo);
    }
    OPENSSL_cleanse(buf, sizeof buf);
    if (!s && !ok) s = pinas_error(ctx, PINAS_EFORMAT, "%s %s: expected 64 hex digits (32 bytes; %s)", what, path, hint);
    if (s) OPENSSL_cleanse(key, PINAS_MPC_KEY_BYTES);
    return s;
}
