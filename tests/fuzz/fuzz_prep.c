/* libFuzzer harness: preprocessing files through the public loader pinas_mpc_prep_load (framing,
 * HMAC tag, then every header field and section bound). The first input byte picks the mode:
 * odd = "signed": the rest is a file body and the harness appends the valid tag, HMAC-SHA256 under
 * the fuzz key of the whole body (the v3 layout: header | data | tag), so the fuzzer reaches the
 * field checks a dealer-key holder's file goes through; even = the rest as is (a forger's file,
 * which must stop at the framing or the tag). The file is handed over in memory (memfd). */
#define _GNU_SOURCE
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
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
    write_all(fd, data + 1, size - 1);
    if (data[0] & 1) {
        uint8_t tag[32];
        unsigned tl = 0;
        if (!HMAC(EVP_sha256(), fuzz_key, sizeof fuzz_key, data + 1, size - 1, tag, &tl) || tl != 32) abort();
        write_all(fd, tag, 32);
    }
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    pinas_mpc_prep *pp = NULL;
    pinas_status s = pinas_mpc_prep_load(fuzz_ctx(), path, fuzz_key, &pp);
    fuzz_expect_message(s);
    if (!s && (!pp || pinas_mpc_prep_total_bytes(pp) > size)) abort();
    pinas_mpc_prep_free(pp);
    close(fd);
    return 0;
}
