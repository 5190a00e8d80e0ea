/* libFuzzer harness: the parties' handshake message (pinas_mpc_hello_check), from both sides. The
 * first input byte picks our role (even: server, odd: client); the rest is the peer's message. An
 * accepted message must carry exactly the fields we expect (the check is the only gate before the
 * server sends anything of its own). */
#include "fuzz_util.h"
#include "mpc_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    pinas_mpc_hello mine = {.version = PINAS_MPC_PROTOCOL_VERSION, .role = data[0] & 1u, .batch = 2, .n_nodes = 7,
                            .hash = 0x0123456789abcdefULL, .mask_id = 0x1122334455667788ULL};
    memcpy(mine.session, "fuzz session id!", 16);
    pinas_mpc_hello got;
    char why[56];
    pinas_status s = pinas_mpc_hello_check(fuzz_ctx(), &mine, data + 1, size - 1, &got, why, sizeof why);
    fuzz_expect_message(s);
    if (s && !why[0]) abort(); /* a refusal always has a reason for the peer */
    if (!s) {
        if (got.role != 1 - mine.role || got.version != mine.version || got.batch != mine.batch || got.n_nodes != mine.n_nodes ||
            got.hash != mine.hash || got.mask_id != mine.mask_id || memcmp(got.session, mine.session, 16) ||
            got.flags > (mine.role == 0 ? 1 : 0) || why[0])
            abort();
        uint8_t again[HANDSHAKE_BYTES];
        pinas_mpc_hello_encode(&got, again);
        if (memcmp(again, data + 1, HANDSHAKE_BYTES)) abort(); /* accepted bytes are canonical */
    }
    return 0;
}
