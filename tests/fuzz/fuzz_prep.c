/* libFuzzer harness: preprocessing files through the public loader pinas_mpc_prep_load (framing,
 * the header's HMAC tag, then every header field and the section framing) and pinas_mpc_prep_verify
 * (each node's section and tag). The first input byte picks the mode: odd = "signed": the rest is a
 * file whose header (its length from the node count at byte 52, the format 4/5 layout) the harness
 * follows with the valid header tag under the fuzz key, so the fuzzer reaches the field checks a
 * dealer-key holder's file goes through; even = the rest as is (a forger's file, which must stop at
 * the framing or a tag). The file is handed over in memory (memfd). */
#define _GNU_SOURCE
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "fuzz_util.h"
#include "pinas_mpc.h"

static const uint8_t fuzz_key[PINAS_MPC_DEALER_KEY_BYTES] = "pinas fuzz dealer key, 32 bytes";

static void write_all(int fd, const uint8_t *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w <= 0) abort();
        p += w;
        n -= (size_t)w;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    int fd = memfd_create("fuzz-prep", MFD_CLOEXEC);
    if (fd < 0) abort();
    const uint8_t *body = data + 1;
    size_t bl = size - 1, hl = bl;
    if ((data[0] & 1) && bl >= 56) {
        uint32_t nn;
        memcpy(&nn, body + 52, 4);
        hl = ((size_t)96 + 32 * (size_t)(nn % 100000) + 8 + 63) / 64 * 64;
    }
    if (hl < bl || ((data[0] & 1) && hl == bl)) {
        uint8_t tag[64] = {0};
        unsigned tl = 0;
        if (!HMAC(EVP_sha256(), fuzz_key, sizeof fuzz_key, body, hl, tag, &tl) || tl != 32) abort();
        write_all(fd, body, hl);
        write_all(fd, tag, 64);
        write_all(fd, body + hl, bl - hl);
    } else {
        write_all(fd, body, bl);
    }
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    pinas_mpc_prep *pp = NULL;
    pinas_status s = pinas_mpc_prep_load(fuzz_ctx(), path, fuzz_key, &pp);
    fuzz_expect_message(s);
    if (!s && (!pp || pinas_mpc_prep_total_bytes(pp) > size)) abort();
    if (!s) fuzz_expect_message(pinas_mpc_prep_verify(fuzz_ctx(), pp));
    pinas_mpc_prep_free(pp);
    close(fd);
    return 0;
}
