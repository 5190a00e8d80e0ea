/* pinas 2PC runtime: ring and fixed point, PRG, FSS (DCF), channel, dealer, protocols, engine over the IR. */
#ifndef PINAS_MPC_H
#define PINAS_MPC_H

#include "pinas_common.h"
#include "pinas_config.h"
#include "pinas_net.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Setting: semi-honest two-party computation with a dealer for input-independent preprocessing
 * (the AriaNN / CrypTen-TTP model). Party 0 = server (holds the weights), party 1 = client (holds
 * the input and receives the logits). Values are additive shares over Z_2^64 in fixed point with
 * `frac_bits` fractional bits.
 *
 * What each party learns: the server learns nothing about the input; the client learns the logits,
 * the architecture (net.json) and the poly activation coefficients (w0, w1, b: a few scalars per
 * slot, sent in the clear during setup, as a public-coefficient polynomial is what makes the square
 * pair protocol one round); conv/linear weights stay hidden behind the mask A (W - A is sent). */

#define PINAS_MPC_PROTOCOL_VERSION 1
#define PINAS_MPC_PREP_VERSION 5 /* 5: node sections tagged with Poly1305 under per-node keys (4: with
                                    HMAC-SHA256; both: header and sections authenticated apart, read node by
                                    node; 3: one HMAC-SHA256 over the whole file; 2: a bare SHA-256) */
#define PINAS_MPC_PREP_MAGIC "PINASPRE"
#define PINAS_MPC_MAX_PATCH 256 /* elements per patch of patch_relu (one DReLU key per patch; r, t·r per element) */

/* ------------------------------------------------------------------ counters (the cost contract) */

typedef struct {
    uint64_t bytes[2];       /* bytes sent by party 0 (server) and party 1 (client); message payloads,
                                not counting the 24-byte frame header of each message */
    uint64_t rounds;         /* sequential communication rounds */
    uint64_t aes_blocks[2];  /* AES-128 blocks evaluated by each party (PRG expansion + FSS evaluation) */
    uint64_t ring_macs[2];   /* ring (Z_2^64) multiply-adds by each party */
} pinas_mpc_counts;

typedef struct {
    pinas_mpc_counts online;
    pinas_mpc_counts offline; /* preprocessing: bytes[p] = size of party p's preprocessing material;
                                 aes_blocks[0]/ring_macs[0] = dealer work (PRG + DCF key generation;
                                 ring MACs of A·B and r^2 -- key generation's few multiplications
                                 are not counted); aes_blocks[1] = 0;
                                 ring_macs[1] = the client's input-independent precomputation
                                 ((W-A)·B for conv/linear, done in the setup phase before the input
                                 is used) */
    pinas_mpc_counts setup;   /* per session, input-independent, over the channel: the masked weights
                                 W - A (once per model and weight mask: 0 when the client has them in
                                 its mask cache) and the poly coefficients the server sends (bytes[0]);
                                 aes_blocks[0]: the server expanding A from the mask seed. rounds = 0
                                 per node; pinas_mpc_cost_net and the report's totals add the session:
                                 handshake (64 B each way) and the setup message, 2 rounds */
} pinas_mpc_cost;

void pinas_mpc_counts_add(pinas_mpc_counts *acc, const pinas_mpc_counts *c);
void pinas_mpc_cost_add(pinas_mpc_cost *acc, const pinas_mpc_cost *c);
/* 1 when every field equals. */
int pinas_mpc_counts_equal(const pinas_mpc_counts *a, const pinas_mpc_counts *b);
/* {"bytes": [p0, p1], "rounds", "aes_blocks": [..], "ring_macs": [..]}. New object; caller frees. */
cJSON *pinas_mpc_counts_json(const pinas_mpc_counts *c);

/* ------------------------------------------------------------------ parameters */

typedef struct {
    int frac_bits;  /* fixed-point fractional bits, PINAS_FRAC_BITS_MIN..MAX (default
                       PINAS_FRAC_BITS_DEFAULT; pinas_config.h). Local truncation of a product
                       of real magnitude 2^k fails with probability below 2^(k + 2f - 64) (2^-32 per
                       element at k = 0, f = 16); fewer bits make patch ReLU flip patches whose sum
                       lies within rounding of 0 (ResNet-20 with patch ReLU: f = 12 loses 11% of
                       samples to such flips, f = 16 2%, measured on random weights). */
    int cmp_bits;   /* bits of the 64 that ReLU / DReLU / maxpool comparisons look at (the top ones),
                       PINAS_CMP_BITS_MIN..MAX (default PINAS_CMP_BITS_DEFAULT = 64 = exact). With
                       n < 64 the comparison ignores the low 64-n bits (the borrow out of them is
                       lost): exact for every x outside [-2^(64-n), 0) and
                       [2^63 - 2^(64-n), 2^63) (in ulps; the second band is far beyond the fixed-point
                       range); for x in the first band DReLU may return 1, so ReLU returns x instead
                       of 0, an absolute error below 2^(64-n-frac_bits). */
    int cmp_high;   /* the comparison window's top: comparisons look at bits [cmp_high - cmp_bits, cmp_high)
                       of x, the sign being bit cmp_high - 1, i.e. DReLU of x mod 2^cmp_high (read as a
                       signed cmp_high-bit integer). Range [cmp_bits, 64] (default 64 = the top bits, as
                       described above). Exact when |x| < 2^(cmp_high-1) ulps (and the low band of cmp_bits
                       above, now 2^(cmp_high-cmp_bits) wide, applies); outside that range the sign read is
                       that of the wrapped value. 0 is read as 64 (records made before this field).
                       Carried per node (pinas_mpc_layer_bits, the plan, the preprocessing file). */
    int batch;      /* samples per inference, 1..PINAS_MPC_MAX_BATCH (default 1) */
    int timeout_ms; /* channel send/receive timeout (default 30000) */
    int threads;    /* threads of each party and of the dealer, 1..PINAS_MPC_MAX_THREADS (default 1): key
                       generation and evaluation (dcf.c), the ring GEMM and truncation (ring.c) run on this
                       many threads (OpenMP); every output is bit-identical for every thread count (work is
                       split by fixed-size chunks, never by thread). Not part of the preprocessing: each
                       process picks its own. */
} pinas_mpc_params;
/* The defaults above (frac_bits and cmp_bits from pinas_config.h). */
void pinas_mpc_params_default(pinas_mpc_params *p);
/* The largest frac_bits the ring supports for this decided net (the rule and its derivation are in
 * common/pinas_config.h: per image, 2f + 6 + ceil(log2 N) + 2 <= 64 with N the elements it truncates,
 * capped at PINAS_FRAC_BITS_MAX). The dealer and the parties refuse a higher frac_bits naming the
 * bound. -1 when the net cannot be planned (message on ctx). */
int pinas_mpc_frac_bits_bound(pinas_ctx *ctx, const pinas_net *net);
#define PINAS_MPC_MAX_BATCH (1 << 20)
#define PINAS_MPC_MAX_THREADS 256
/* Checks ranges (frac_bits within the ring's bound of pinas_config.h, cmp_bits, batch, timeout);
 * errors name the field (PINAS_EINVAL). The one check of these values: the dealer, the parties and
 * the preprocessing reader (which prefixes the file's name) run it; the command lines and the meta
 * reader use the same limits from pinas_config.h. */
pinas_status pinas_mpc_params_check(pinas_ctx *ctx, const pinas_mpc_params *p) PINAS_WUR;
/* Checks one comparison width (a per-layer entry too) against PINAS_CMP_BITS_MIN..MAX; the message
 * starts with `field`. */
pinas_status pinas_mpc_cmp_bits_check(pinas_ctx *ctx, const char *field, int bits) PINAS_WUR;
/* Checks a comparison window: bits as pinas_mpc_cmp_bits_check, and high in [bits, 64]; the message
 * starts with `field` and names both values. */
pinas_status pinas_mpc_cmp_window_check(pinas_ctx *ctx, const char *field, int bits, int high) PINAS_WUR;
/* Takes frac_bits and cmp_bits from a model's meta (its "mpc" section; validated by the meta reader), with
 * cmp_high 64 (the per-layer windows, meta->layers, go to pinas_mpc_deal_opts.layer_bits). */
void pinas_mpc_params_from_meta(const pinas_model_meta *meta, pinas_mpc_params *p);
/* Per-layer comparison windows: a node whose id matches an entry of this optional table uses its
 * own cmp_bits and cmp_high (pinas_mpc_deal_opts.layer_bits; cmp_high 0 means 64, the top bits).
 * Ids borrowed. */
typedef struct { const char *id; int cmp_bits; int cmp_high; } pinas_mpc_layer_bits;
/* The per-node comparison windows of a meta record's "mpc.layers" (a bit-cut model) as the dealer's
 * table: *out (new array of meta->n_layer_bits entries, ids borrowed from meta; caller frees with
 * free(); NULL when there are none). Returns the count, or -1 when out of memory. */
int pinas_mpc_layer_bits_from_meta(const pinas_model_meta *meta, pinas_mpc_layer_bits **out);

/* ------------------------------------------------------------------ ring and fixed point */

/* Encodes x with f fractional bits, rounding to nearest, saturating at +-2^(62-f). */
uint64_t pinas_ring_encode(double x, int f);
/* Decodes a ring element read as a signed integer. */
double pinas_ring_decode(uint64_t v, int f);
/* Local truncation of a share by f bits (SecureML-style, no communication): party 0 shifts its share,
 * party 1 shifts the negation of its share. The reconstruction equals floor(x/2^f) or floor(x/2^f)+1,
 * except with probability at most |x|/2^64 (x read as signed), when it is off by about 2^(64-f). */
void pinas_ring_trunc_share(uint64_t *v, size_t n, int f, int party);
/* The same on `threads` threads (OpenMP; the result does not depend on the count). */
void pinas_ring_trunc_share_mt(uint64_t *v, size_t n, int f, int party, int threads);
/* The largest input magnitude the client accepts at frac_bits f, for a net with products (conv,
 * linear, poly, avgpool, global_avgpool: anything truncated after a multiplication): 2^(44 - 2f)
 * (4096 at f = 16, 256 at f = 18). An input x enters those products as |x| * 2^(2f) in the ring; at
 * this bound the truncation after the layer fails with probability <= 2^-20 per unit of weight (see
 * pinas_config.h), and larger values grow through the layers into wrong logits with no error.
 * Without products (comparisons only) it is the encoding's range, 2^(62 - f). */
double pinas_mpc_input_limit(int frac_bits, int products);
/* Checks the client's input x (n values, [batch, c, h, w]) before it is encoded: NaN/Inf, or |x| above
 * pinas_mpc_input_limit, is an error (PINAS_EINVAL) naming the element ("input x[0, 2, 5, 7] is
 * NaN") and the bound. pinas_mpc_party_run runs it on the client's input. */
pinas_status pinas_mpc_input_check(pinas_ctx *ctx, const float *x, int64_t n, int c, int h, int w, int frac_bits,
                                   int products) PINAS_WUR;

/* C[m x n] (+)= A[m x k] · B[k x n] over Z_2^64, row-major with leading dimensions. `accumulate` adds
 * to C instead of overwriting. The kernel is picked by pinas_ring_gemm_kind (below). */
void pinas_ring_gemm(int m, int n, int k, const uint64_t *A, int lda, const uint64_t *B, int ldb, uint64_t *C,
                     int ldc, int accumulate);
/* The same product when every entry of A, read as a signed integer, has |a| < 2^a_bits (small
 * weights): exact through OpenBLAS dgemm on 16-bit limbs of B when k·2^(a_bits+16) < 2^53, otherwise
 * falls back to pinas_ring_gemm. */
void pinas_ring_gemm_small_a(int m, int n, int k, const uint64_t *A, int lda, int a_bits, const uint64_t *B, int ldb,
                             uint64_t *C, int ldc, int accumulate);
/* pinas_ring_gemm and pinas_ring_gemm_small_a on `threads` threads (OpenMP; <= 1: the calling thread
 * alone): C is split into row or column blocks, one per thread, each computed exactly as the
 * one-thread kernel computes it, so the result is bit-identical for every thread count. */
void pinas_ring_gemm_mt(int threads, int m, int n, int k, const uint64_t *A, int lda, const uint64_t *B, int ldb,
                        uint64_t *C, int ldc, int accumulate);
void pinas_ring_gemm_small_a_mt(int threads, int m, int n, int k, const uint64_t *A, int lda, int a_bits,
                                const uint64_t *B, int ldb, uint64_t *C, int ldc, int accumulate);
/* Which kernel the general product uses: 0 = the tuned integer kernel, 1 = dgemm on 16-bit limbs. */
typedef enum { PINAS_GEMM_INT = 0, PINAS_GEMM_DGEMM_LIMBS = 1, PINAS_GEMM_DGEMM_SMALL_A = 2 } pinas_gemm_kind;
/* Runs one specific kernel (benchmarks and tests). SMALL_A needs a_bits as above. */
void pinas_ring_gemm_with(pinas_gemm_kind kind, int m, int n, int k, const uint64_t *A, int lda, int a_bits,
                          const uint64_t *B, int ldb, uint64_t *C, int ldc, int accumulate);

/* ------------------------------------------------------------------ PRG (AES-128-CTR, OpenSSL EVP) */

typedef struct pinas_prg pinas_prg;
/* A PRG keyed by a 16-byte seed (AES-128 in counter mode from counter 0). */
pinas_status pinas_prg_create(pinas_ctx *ctx, const uint8_t seed[16], pinas_prg **out) PINAS_WUR;
/* A PRG seeded from the OS (getrandom). */
pinas_status pinas_prg_create_os(pinas_ctx *ctx, pinas_prg **out) PINAS_WUR;
/* Zeroes the key; pinas_prg_free(NULL) is a no-op. */
void pinas_prg_free(pinas_prg *g);
/* Fills buf with the next len pseudorandom bytes. */
void pinas_prg_bytes(pinas_prg *g, void *buf, size_t len);
/* AES blocks this PRG has evaluated so far. */
uint64_t pinas_prg_blocks(const pinas_prg *g);
/* Fills buf with len random bytes from the OS (getrandom; retried on EINTR). Errors: PINAS_EIO. */
pinas_status pinas_os_random(pinas_ctx *ctx, void *buf, size_t len) PINAS_WUR;

/* ------------------------------------------------------------------ FSS: DReLU keys and the select gate */

/* The comparison gate (issue 14; SIGMA-style, Gupta et al. 2023, on the DCF of Boyle et al. 2021, eprint
 * 2020/1392, Fig. 3, with outputs in Z_2 and early termination).
 *
 * DReLU key: for a secret p with mask r (both parties know p̂ = p + r), and a comparison window of
 * cmp_bits bits with top cmp_high (pinas_mpc_params), party b's key evaluates at p̂ to a bit e_b with
 * e_0 xor e_1 = DReLU(p) xor t, DReLU(p) = 1[p mod 2^cmp_high, read as signed, >= 0] (with the low
 * bits below the window ignored: see pinas_mpc_params.cmp_bits), t a uniform bit the dealer draws.
 * How: MSB(p) = MSB(p̂) xor MSB(r) xor borrow, borrow = 1[p̂_low < r_low] on the n = cmp_bits - 1 bits
 * below the sign; borrow comes from a DCF on n bits with 1-bit outputs whose tree stops NU = 7
 * levels early (the last seed expands to a 128-bit block, bit j for the leaf j of the last 7 bits); each
 * key carries an offset bit c_b with c_0 xor c_1 = t xor MSB(r), and party 0 adds the public
 * 1 xor MSB(p̂). Key: 16 (root seed) + 24 (control and value correction bits, packed, and c_b) +
 * 16 per level (L = cmp_bits - 8 levels) + 16 (leaf correction) = 56 + 16 (cmp_bits - 8) bytes: 952 B
 * at 64 bits, 440 B at 32. Evaluation: L + 1 fixed-key AES blocks; generation of both keys 4 L + 2
 * plus 2 PRG blocks for the root seeds.
 * Security (semi-honest, dealer trusted): each party's key alone is pseudorandom (DCF security: the
 * correction words are xors of PRG outputs the party cannot compute off its path, its root seed is
 * random, c_b is uniform), so a key reveals nothing of r or t; the opened bit DReLU xor t is uniform
 * because t is.
 *
 * The select (ReLU y = DReLU(x) x in 2 online rounds): round 1 opens x̂ = x + r (8 B per party per
 * element), each party evaluates its key, round 2 opens b̂ = DReLU xor t (one bit per party per gate,
 * packed 8 to a byte); then, with additive shares of r, t and t·r from the dealer (24 B per element),
 * y = b̂ x̂ - b̂ r + (1 - 2 b̂)(t x̂ - t r) is local (pinas_select_share). ReLU material per element
 * per party: 24 + 952 = 976 B at 64 bits, 464 B at 32 (was 2,088 B in one round with a ring-payload
 * DCF). Patch ReLU: one key and one t per patch on the patch sum, r and t·r per element. */

/* Bytes of one DReLU key (each party's): 56 + 16 (cmp_bits - 8). cmp_bits in [8, 64]. */
size_t pinas_drelu_key_size(int cmp_bits);
/* Fixed-key AES blocks one key evaluation runs: cmp_bits - 7. */
uint64_t pinas_drelu_eval_aes_blocks(int cmp_bits);
/* AES blocks pinas_drelu_gen runs for `count` gates beyond the caller's PRG: count x (4 (cmp_bits - 8) + 4)
 * (2 for the root seeds from the chunk PRG, 4 per level, 2 for the leaves). */
uint64_t pinas_drelu_gen_aes_blocks(int cmp_bits, size_t count);
/* Blocks pinas_drelu_gen draws from the caller's PRG for `count` gates: one 16-byte chunk seed per
 * 4,096 gates (one request). */
uint64_t pinas_drelu_gen_prg_blocks(size_t count);
/* Generates `count` key pairs for the masks r[i] (window cmp_bits / cmp_high; cmp_high 0 = 64) into k0 and
 * k1 (pinas_drelu_key_size bytes each, back to back) and the dealer's bits t[i] (0 or 1). Randomness:
 * one 16-byte seed per chunk of 4,096 gates from prg, expanded by AES-128-CTR under that seed, so the
 * keys are the same for every thread count; chunks run on `threads` threads (OpenMP). Returns the
 * AES blocks run beyond prg (pinas_drelu_gen_aes_blocks). */
uint64_t pinas_drelu_gen(pinas_prg *prg, int cmp_bits, int cmp_high, size_t count, const uint64_t *r, uint8_t *k0,
                         uint8_t *k1, uint8_t *t, int threads);
/* Evaluates `count` keys of party b at the public p̂[i]; out[i] = this party's bit (0/1) of
 * DReLU(p_i) xor t_i. Runs on `threads` threads; results do not depend on it. Returns the AES blocks. */
uint64_t pinas_drelu_eval(int b, int cmp_bits, int cmp_high, const uint8_t *keys, size_t count, const uint64_t *phat,
                          uint8_t *out, int threads);
/* Party b's share of y = DReLU · x from the opened bit bh = DReLU xor t, the public x̂ = x + r and this
 * party's shares of r, t and t·r (see above). */
uint64_t pinas_select_share(int b, int bh, uint64_t xh, uint64_t r, uint64_t t, uint64_t tr);

/* ------------------------------------------------------------------ channel (TLS 1.3 over TCP, framed, full duplex) */

/* How a channel authenticates. By default TLS 1.3 with mutual authentication, by exactly one of:
 *  - a pre-shared key: psk_file holds 32 random bytes as 64 hex digits (pinas_chan_keygen_psk); both
 *    parties hold the same file. TLS 1.3 PSK with (EC)DHE (forward secrecy); the PSK identity sent in
 *    clear is "pinas-" + 8 bytes of SHA-256 of the key, so a wrong key is reported as such;
 *  - certificates: each side presents cert_file (PEM, with its key_file) and verifies the peer's
 *    against peer_ca_file (any certificate that CA signed is accepted: use a CA for this deployment
 *    alone, e.g. pinas_chan_keygen_certs). Host names are not checked.
 * Key and PSK files must not be readable by group or others (refused, like ssh). insecure = 1: plain
 * TCP, no authentication, no integrity (in-process loopback runs and tests); it must be asked for. */
typedef struct {
    const char *psk_file;
    const char *cert_file, *key_file, *peer_ca_file;
    int insecure;
} pinas_chan_auth;
/* Checks that a names exactly one way to authenticate (or insecure); the message says what to pass. */
pinas_status pinas_chan_auth_check(pinas_ctx *ctx, const pinas_chan_auth *a) PINAS_WUR;
/* Secret key files (crypto/keyfile.c), the one format of the PSK and the dealer key: 32 random bytes
 * as 64 hex digits and a newline, mode 0600. The reader refuses a file group or others may read (like
 * ssh), a non-regular file, or anything but 64 hex digits (trailing whitespace allowed); errors name
 * `what` and the file, and a format error ends with `hint` (how to make one). */
#define PINAS_MPC_KEY_BYTES 32
pinas_status pinas_mpc_key_file_write(pinas_ctx *ctx, const char *path) PINAS_WUR;
/* The same mode rule for any secret file (a TLS private key): a regular file only its owner may read. */
pinas_status pinas_mpc_secret_file_check(pinas_ctx *ctx, const char *what, const char *path) PINAS_WUR;
pinas_status pinas_mpc_key_file_read(pinas_ctx *ctx, const char *what, const char *path, const char *hint,
                                     uint8_t key[PINAS_MPC_KEY_BYTES]) PINAS_WUR;
/* Reads a PSK file (pinas_mpc_key_file_read) into key. */
pinas_status pinas_chan_psk_load(pinas_ctx *ctx, const char *path, uint8_t key[32]) PINAS_WUR;
/* Writes a fresh PSK (32 bytes from the OS, hex, newline) to path, mode 0600, replacing it atomically. */
pinas_status pinas_chan_keygen_psk(pinas_ctx *ctx, const char *path) PINAS_WUR;
/* Writes a self-signed CA and a certificate for each party into dir (created if missing): ca.crt,
 * ca.key, server.crt, server.key, client.crt, client.key (Ed25519, PEM; keys 0600), valid `days`
 * days. Each party runs with its own cert and key and --peer-ca ca.crt. */
pinas_status pinas_chan_keygen_certs(pinas_ctx *ctx, const char *dir, int days) PINAS_WUR;

/* Deadlines: every message has a silence timeout (timeout_ms without a byte moving) and a total
 * deadline of timeout_ms + (payload bytes, both ways) / PINAS_CHAN_FLOOR_BPS, so that a peer sending
 * one byte just inside each timeout is still cut off. The TLS handshake as a whole gets timeout_ms. */
#define PINAS_CHAN_FLOOR_BPS 1e6

typedef struct pinas_chan pinas_chan;
/* Listens on host:port ("127.0.0.1:0" picks a free port; see pinas_chan_port). */
pinas_status pinas_chan_listen(pinas_ctx *ctx, const char *hostport, pinas_chan **out) PINAS_WUR;
int pinas_chan_port(const pinas_chan *c);
/* Accepts exactly one authenticated peer within timeout_ms (the TCP listener is the TLS server):
 * connections that fail the TLS handshake are refused (a warning on ctx names their address and why)
 * and the listener keeps waiting; once a peer is in, the listener closes. `peer_name` ("client")
 * names the peer in error messages. auth (borrowed) says how to authenticate (see above). */
pinas_status pinas_chan_accept(pinas_ctx *ctx, pinas_chan *c, int timeout_ms, const char *peer_name,
                               const pinas_chan_auth *auth) PINAS_WUR;
/* Connects to host:port, retrying until timeout_ms, then runs the TLS handshake (within timeout_ms).
 * TLS writes go through OpenSSL's socket BIO (write(2)): a process using TLS channels should ignore
 * SIGPIPE (pinas party does), or a peer that closes kills it instead of failing the call. */
pinas_status pinas_chan_connect(pinas_ctx *ctx, const char *hostport, int timeout_ms, const char *peer_name,
                                const pinas_chan_auth *auth, pinas_chan **out) PINAS_WUR;
/* "TLSv1.3 TLS_AES_128_GCM_SHA256, mutual authentication by pre-shared key", or plain TCP. Borrowed. */
const char *pinas_chan_security(const pinas_chan *c);
/* Bytes on the wire so far (TLS records or plain frames, headers included). */
void pinas_chan_wire_bytes(const pinas_chan *c, uint64_t *sent, uint64_t *recvd);
/* Closes; pinas_chan_free(NULL) is a no-op. */
void pinas_chan_free(pinas_chan *c);
void pinas_chan_set_timeout(pinas_chan *c, int timeout_ms);
/* The layer named in error messages ("layer l1.0.act1"). The string is copied. */
void pinas_chan_set_layer(pinas_chan *c, const char *layer);
/* Sends one framed message (tag names the message kind; checked by the receiver). */
pinas_status pinas_chan_send(pinas_ctx *ctx, pinas_chan *c, uint32_t tag, const void *buf, size_t len) PINAS_WUR;
/* Receives one framed message of exactly len bytes and tag `tag`; anything else is a peer error. */
pinas_status pinas_chan_recv(pinas_ctx *ctx, pinas_chan *c, uint32_t tag, void *buf, size_t len) PINAS_WUR;
/* Sends and receives at the same time (poll), so two large messages cannot deadlock. */
pinas_status pinas_chan_exchange(pinas_ctx *ctx, pinas_chan *c, uint32_t tag, const void *sbuf, size_t slen,
                                 void *rbuf, size_t rlen) PINAS_WUR;
/* Calls fn(user, tag, payload, len) on every message received (tests, tracing); NULL removes it. */
typedef void (*pinas_chan_tap_fn)(void *user, uint32_t tag, const void *payload, size_t len);
void pinas_chan_set_tap(pinas_chan *c, pinas_chan_tap_fn fn, void *user);
/* Payload bytes sent / received so far. */
uint64_t pinas_chan_bytes_sent(const pinas_chan *c);
uint64_t pinas_chan_bytes_recv(const pinas_chan *c);

/* ------------------------------------------------------------------ preprocessing (dealer) */

/* One party's preprocessing for one model and batch. Opaque; holds secrets (zeroed on free). */
typedef struct pinas_mpc_prep pinas_mpc_prep;

/* The hash both parties and the preprocessing agree on: the architecture (pinas_net_hash) and the
 * fixed-point parameters. The dealer does not see the weights. */
uint64_t pinas_mpc_arch_hash(const pinas_net *net, const pinas_mpc_params *p);

/* The per-model weight mask: the seed the conv/linear masks A are expanded from, kept in
 * DIR/<arch hash>.mask ("PINASMSK" | u64 arch hash | seed[16], 32 bytes, mode 0600). Every dealer run
 * with the same mask masks the weights the same way, so the server's W - A is the same in every
 * session and a client that cached it (pinas_mpc_party_args.mask_cache) is not sent it again.
 * Opaque; holds a secret, wiped (OPENSSL_cleanse) on free. */
typedef struct pinas_mpc_mask pinas_mpc_mask;
/* Reads DIR/<arch_hash>.mask (arch_hash: pinas_mpc_arch_hash of the model and parameters); when the
 * file is absent, or `fresh` is set, draws a new seed from the OS and writes the file (atomically,
 * 0600; DIR must exist). Errors: PINAS_EFORMAT for a file of another model or size (naming the
 * file), PINAS_EIO. *out: new; caller frees with pinas_mpc_mask_free. */
pinas_status pinas_mpc_mask_open(pinas_ctx *ctx, const char *dir, uint64_t arch_hash, int fresh,
                                 pinas_mpc_mask **out) PINAS_WUR;
/* The file the mask is kept in. Borrowed; lives as long as m. */
const char *pinas_mpc_mask_path(const pinas_mpc_mask *m);
/* Wipes the seed and frees; pinas_mpc_mask_free(NULL) is a no-op. */
void pinas_mpc_mask_free(pinas_mpc_mask *m);

/* Options of a dealer run; all fields may be left zero (as may the pointer to them). */
typedef struct {
    const pinas_mpc_layer_bits *layer_bits; /* per-node comparison widths, n_layer_bits of them (borrowed);
                                               NULL: p->cmp_bits everywhere */
    int n_layer_bits;
    const pinas_mpc_mask *mask; /* the per-model weight mask (borrowed); NULL: a fresh mask for this
                                   run alone. The server's file holds its seed (16 bytes) instead of A. */
    const uint8_t *seed;        /* 32 bytes (borrowed) or NULL (the OS's randomness: always, in use). For
                                   tests and reproducibility only: the main PRG (first 16 bytes), the
                                   session id and a fresh mask seed (last 16) all come from it, so two
                                   runs with one seed deal the same bytes, whatever p->threads says. A
                                   fixed seed makes the masks predictable: never deploy with one. */
} pinas_mpc_deal_opts;

/* Generates both parties' preprocessing in memory for `net` (decided) and p->batch. opts may be
 * NULL. Session id and material from the OS. Errors (PINAS_EINVAL): bad parameters, open slots,
 * a layer_bits id not in the net or out of range, a mask made for another model. *p0, *p1: new;
 * caller frees each with pinas_mpc_prep_free. */
pinas_status pinas_mpc_deal(pinas_ctx *ctx, const pinas_net *net, const pinas_mpc_params *p,
                            const pinas_mpc_deal_opts *opts, pinas_mpc_prep **p0, pinas_mpc_prep **p1) PINAS_WUR;
/* The dealer streaming to disk: writes party 0's file at path0 and party 1's at path1 (format
 * PINAS_MPC_PREP_VERSION, authenticated under key, mode 0600) node by node, generating both parties'
 * material of node i, appending it to the two temporary files and dropping it before node i + 1, so
 * that it holds one node's material (the largest), never a file. Both files are fsynced and renamed
 * into place at the end; when either fails, neither target is replaced (the first is put back). Same
 * generator as pinas_mpc_deal: with the same opts->seed both write what pinas_mpc_prep_save writes of
 * pinas_mpc_deal's output. *p0, *p1: new header-only preps (sizes, ids, the dealer's counts and
 * gen_s; no material: a party cannot run on them, it loads the files); caller frees. Errors as
 * pinas_mpc_deal, and PINAS_EIO naming the file. */
pinas_status pinas_mpc_deal_files(pinas_ctx *ctx, const pinas_net *net, const pinas_mpc_params *p,
                                  const pinas_mpc_deal_opts *opts, const char *path0, const char *path1,
                                  const uint8_t key[32], pinas_mpc_prep **p0, pinas_mpc_prep **p1) PINAS_WUR;
/* The id of the weight mask a preprocessing file uses (the same in both parties' files). */
uint64_t pinas_mpc_prep_mask_id(const pinas_mpc_prep *pp);
void pinas_mpc_prep_free(pinas_mpc_prep *pp);

/* The dealer key: preprocessing files are authenticated, not only checksummed. The dealer and both
 * parties hold the same 32-byte secret key (a file of 64 hex digits, mode 0600 or stricter; the same
 * format as `pinas keygen --psk`, but use a separate key: it authenticates the dealer, not the peer).
 * A file (format version PINAS_MPC_PREP_VERSION = 5; layout in crypto/prep.c) is a header (magic,
 * version, party, model hash, session id, batch, parameters, per node: comparison window, material
 * bytes, section offset and size) with its own HMAC-SHA256 tag, then one section per node (the
 * material, the dealer's counts for that node, and a Poly1305 tag under a key derived from the
 * dealer key, the header's tag and the node index), so that a party reads and verifies one node at a time and holds only the
 * node it evaluates. The reader checks magic and version, reads the header and verifies its tag in
 * constant time before parsing a field, checks the framing against the file size (a short file is
 * refused naming the first node it cuts), and verifies each node's tag when the node is read: an
 * altered, moved or foreign section is refused naming the file and the node before a byte of it is
 * used. Files of format 3 and older are refused naming the version ("re-run pinas dealer"). What it
 * protects: the parties' preprocessing cannot be forged or altered by whoever can write the file or
 * the path in between (a file of 64 comparison bits or of another session made by an attacker); it
 * does not hide the material (files are 0600 and the client's is useless without the server's) and
 * does not stop replay of an older genuine file of the same key (the handshake's session id pairs
 * the two parties' files). */
#define PINAS_MPC_DEALER_KEY_BYTES 32
/* Reads a dealer key file (64 hex digits, optional trailing newline; refused when group or others
 * may read it). Errors name the file: PINAS_EIO, PINAS_EFORMAT, PINAS_EINVAL (mode). */
pinas_status pinas_mpc_dealer_key_load(pinas_ctx *ctx, const char *path, uint8_t key[PINAS_MPC_DEALER_KEY_BYTES]) PINAS_WUR;
/* Writes a fresh key (32 bytes from the OS) to path, mode 0600, atomically. */
pinas_status pinas_mpc_dealer_keygen(pinas_ctx *ctx, const char *path) PINAS_WUR;
/* Writes an in-memory preprocessing (pinas_mpc_deal's) to a file: header, its tag, the node sections
 * (above); mode 0600, atomically. Errors: PINAS_EIO naming the file; PINAS_EINVAL for a prep read from
 * a file or returned by pinas_mpc_deal_files (no material in memory). */
pinas_status pinas_mpc_prep_save(pinas_ctx *ctx, const pinas_mpc_prep *pp, const char *path,
                                 const uint8_t key[PINAS_MPC_DEALER_KEY_BYTES]) PINAS_WUR;
/* Opens a file for reading node by node: magic, version, the header's tag under `key` (first), then
 * every field (the parameters through pinas_mpc_params_check, each node's comparison window, node
 * count, section framing) and the file size. The material is not read here: pinas_mpc_party_run reads
 * and verifies each node's section when it needs it (holding one node at a time; the file stays
 * open, and key is copied, until pinas_mpc_prep_free). Errors (PINAS_EFORMAT) name the file and the
 * field or node. Agreement with a model is checked by pinas_mpc_prep_check / pinas_mpc_party_run. */
pinas_status pinas_mpc_prep_load(pinas_ctx *ctx, const char *path, const uint8_t key[PINAS_MPC_DEALER_KEY_BYTES],
                                 pinas_mpc_prep **out) PINAS_WUR;
/* Reads and verifies every node's section of a loaded file, one at a time (memory: the largest
 * node); nothing to do in memory. Not counted in pinas_mpc_prep_read_seconds. `pinas party` runs it
 * before it connects, so that a bad file fails before the peer waits. Errors (PINAS_EFORMAT) name the
 * file and the node index. */
pinas_status pinas_mpc_prep_verify(pinas_ctx *ctx, const pinas_mpc_prep *pp) PINAS_WUR;
/* Seconds spent reading and verifying node sections so far (0 in memory). */
double pinas_mpc_prep_read_seconds(const pinas_mpc_prep *pp);
/* The dealer's generation seconds (in memory, or pinas_mpc_deal_files's summary; 0 for a loaded file). */
double pinas_mpc_prep_gen_seconds(const pinas_mpc_prep *pp);
/* The largest node's material, bytes (what a party reading node by node holds of it at once). */
uint64_t pinas_mpc_prep_max_node_bytes(const pinas_mpc_prep *pp);
int pinas_mpc_prep_party(const pinas_mpc_prep *pp);
int pinas_mpc_prep_batch(const pinas_mpc_prep *pp);
uint64_t pinas_mpc_prep_hash(const pinas_mpc_prep *pp);
/* Bytes of this party's material for node i (0 for nodes without preprocessing), and in total. */
uint64_t pinas_mpc_prep_node_bytes(const pinas_mpc_prep *pp, int node);
uint64_t pinas_mpc_prep_total_bytes(const pinas_mpc_prep *pp);
/* Checks that pp is party `role`'s material for `net` (hash of the architecture and fixed-point
 * parameters, per-node sizes); errors say what differs. pinas_mpc_party_run runs the same check. */
pinas_status pinas_mpc_prep_check(pinas_ctx *ctx, const pinas_mpc_prep *pp, const pinas_net *net, int role) PINAS_WUR;
/* The parameters the dealer used. */
void pinas_mpc_prep_params(const pinas_mpc_prep *pp, pinas_mpc_params *out);

/* ------------------------------------------------------------------ cost (analytic) */

/* Analytic cost of node `node` of `net` for a batch of p->batch, with p->cmp_bits comparison bits
 * (a per-layer width: pass a copy of the parameters with that node's cmp_bits): as decided, or,
 * when cand >= 0, as if the slot had chosen candidate `cand`. Must equal what the runtime's counters
 * measure, exactly (tests prove it). Setup counts are per node (the masked weights of that node);
 * setup.rounds is 0 here. Errors (PINAS_EINVAL): node or candidate out of range, an open slot
 * without cand, bad parameters; PINAS_EUNSUPPORTED for a node the runtime cannot run. */
pinas_status pinas_mpc_cost_node(pinas_ctx *ctx, const pinas_net *net, int node, int cand,
                                 const pinas_mpc_params *p, pinas_mpc_cost *out) PINAS_WUR;
/* Sum over the net (decided), plus the session's handshake/setup/output rounds and bytes. */
pinas_status pinas_mpc_cost_net(pinas_ctx *ctx, const pinas_net *net, const pinas_mpc_params *p,
                                pinas_mpc_cost *out) PINAS_WUR;

/* ------------------------------------------------------------------ running a private inference */

/* One party's clocks for one node. wall_s is the node's wall time in that party. It splits into
 * compute and communication: comm_s is the wall time inside the channel's send/receive/exchange
 * calls (the transfer and the wait for the peer), comm_cpu_s the CPU time the thread spent inside
 * them (system calls, copies, TLS); cpu_s is the thread CPU time (CLOCK_THREAD_CPUTIME_ID: user +
 * system of the party's main thread) of the node outside those calls - its compute, into which
 * time slicing by co-runners does not enter (sharing a core or its caches with them still slows it). wait_s = comm_s - comm_cpu_s: blocked on the peer or the
 * network. With threads > 1 the OpenMP workers' CPU time is not in cpu_s (calibrate and validate at
 * 1 thread). prep_s: reading and verifying the node's preprocessing section, before the node runs
 * (not in wall_s). All zero for a party whose report was not merged in. */
typedef struct {
    double wall_s, cpu_s, comm_s, comm_cpu_s, wait_s, prep_s;
} pinas_mpc_node_times;

/* Per-layer measurement of a private inference. online_s is the reporting party's wall time;
 * party[role] the clocks of each party (its own, and the peer's after pinas_mpc_report_merge). */
typedef struct {
    char id[128];            /* the node's id, or "output" (the logits share) */
    double online_s;
    pinas_mpc_node_times party[2]; /* [0] server, [1] client */
    pinas_mpc_cost measured;
} pinas_mpc_layer_report;
/* One party's report of a private inference. Owns `layers`; free with pinas_mpc_report_free. */
typedef struct pinas_mpc_report {
    int n_layers;
    pinas_mpc_layer_report *layers; /* the nodes that run something, in net order, then "output" */
    double online_s, offline_s;     /* the online phase; dealer + setup */
    pinas_mpc_cost totals;          /* the rows, plus the session in setup */
    pinas_mpc_counts session;       /* handshake + the setup message's rounds (its bytes are in the rows) */
    double prep_read_s;             /* of online_s and the setup: reading and verifying preprocessing sections */
    uint64_t peak_rss;              /* the process's peak resident set, bytes (VmHWM: since its last exec;
                                       0 if unknown), when the report was made */
    int threads;                    /* the threads this party ran with */
} pinas_mpc_report;
/* pinas_mpc_report_free(NULL) is a no-op. */
void pinas_mpc_report_free(pinas_mpc_report *r);
/* The report as JSON ({"layers": [{"id", "online_ms", "server": {times}, "client": {times} (times:
 * "wall_ms", "cpu_ms", "comm_ms", "comm_cpu_ms", "wait_ms", "prep_ms"; a party's object only when its
 * clocks are in the report), "prep_bytes_server", "prep_bytes_client",
 * "sent_bytes_server", "sent_bytes_client", "rounds", "measured": {"online", "offline", "setup"}}],
 * "totals": {"online", "offline", "setup", "online_s", "offline_s"}, "peak_rss_bytes", "prep_read_s",
 * "threads"}). New; caller frees. */
cJSON *pinas_mpc_report_json(const pinas_mpc_report *r);
/* Reads back what pinas_mpc_report_json wrote (other keys are ignored; the session counts are what
 * the totals' setup holds beyond the rows). `where` names the source in messages; errors
 * (PINAS_EFORMAT) name the layer and field. *out: new; caller frees. */
pinas_status pinas_mpc_report_from_json(pinas_ctx *ctx, const cJSON *j, const char *where,
                                        pinas_mpc_report **out) PINAS_WUR;
/* This process's peak resident set in bytes (Linux: VmHWM, the peak since the last exec; elsewhere
 * getrusage's ru_maxrss). 0 when unknown. */
uint64_t pinas_mpc_peak_rss(void);
/* The same from a file (a party's --report). */
pinas_status pinas_mpc_report_load(pinas_ctx *ctx, const char *path, pinas_mpc_report **out) PINAS_WUR;
/* Each party counts only its own work: takes the server's online AES blocks and ring MACs (party 0)
 * and its clocks (party[0]) from its report into the client's rows, layer by layer (nothing when
 * the layer counts differ). The client's totals are left as they were. */
void pinas_mpc_report_merge(pinas_mpc_report *client, const pinas_mpc_report *server);

/* What a party runs with. The server passes its model (weights); the client passes the net (the
 * architecture alone) and its input. */
typedef struct {
    int role;                   /* 0 = server, 1 = client */
    const pinas_model *model;   /* server: required (borrowed) */
    const pinas_net *net;       /* client: required (borrowed); the server may leave it NULL */
    const pinas_mpc_prep *prep; /* this party's preprocessing (borrowed) */
    const float *x;             /* client: input [batch, C, H, W] (normalised) */
    float *logits;              /* client: output [batch, num_classes]; may be NULL for the server */
    int timeout_ms;             /* 0 = 30000 */
    const char *mask_cache;     /* client: a directory keeping the server's masked weights W - A per model
                                   and mask id, so that they cross the network once per model (NULL = none) */
    const char *delay_layer;    /* testing: sleep delay_ms before running this layer (fault injection) */
    int delay_ms;
    int threads;                /* 0 or 1: one thread; else as pinas_mpc_params.threads */
} pinas_mpc_party_args;
/* Runs one party over an accepted/connected channel: handshake (protocol version, arch hash,
 * session id, batch, role), setup (masked weights), online layer by layer, output to the client.
 * *report (may be NULL) gets this party's per-layer timings and counters (bytes[] of both parties as
 * this party counted them: sent by itself, received from the peer). Errors name the peer and the
 * layer. */
pinas_status pinas_mpc_party_run(pinas_ctx *ctx, pinas_chan *chan, const pinas_mpc_party_args *a,
                                  pinas_mpc_report **report) PINAS_WUR;

/* Two threads joined by a loopback TCP channel: fn(ctx, chan, role, user) runs in each, role 0
 * accepting (its peer is named "client"), role 1 connecting ("server"), each with its own context
 * and its channel closed as soon as fn returns (so a failing party's peer stops waiting). Returns
 * the root failure: a party that failed for its own reason rather than because of its peer.
 * timeout_ms <= 0: 30 s for the connection. */
typedef pinas_status (*pinas_mpc_pair_fn)(pinas_ctx *ctx, pinas_chan *chan, int role, void *user);
pinas_status pinas_mpc_loopback_pair(pinas_ctx *ctx, int timeout_ms, pinas_mpc_pair_fn fn, void *user0,
                                     void *user1) PINAS_WUR;

/* Runs dealer + both parties locally over loopback TCP (two threads, one per party), returns the
 * client's logits [batch, num_classes] and the per-layer report (may be NULL; the client's view,
 * with the server's own online work merged in; offline = dealer). p->batch is overridden by
 * `batch`; opts (may be NULL) are the dealer's. *report: new; caller frees. */
pinas_status pinas_mpc_infer_loopback(pinas_ctx *ctx, const pinas_model *m, const float *x, int batch,
                                      const pinas_mpc_params *p, const pinas_mpc_deal_opts *opts, float *logits,
                                      pinas_mpc_report **report) PINAS_WUR;
/* For timing only: deals once and runs the same private inference `runs` times on that material,
 * over loopback as pinas_mpc_infer_loopback; reports[r] (runs of them, caller frees each) is run r's
 * client report. Each run does exactly the work of a run on fresh material (the dealer's cost is
 * paid once instead of `runs` times), but repeats the masks: a deployment must never do this. The
 * caches are evicted before each run (64 MB written), so that small nets do not find their key
 * material in cache, as they would not after a real dealer's run. */
pinas_status pinas_mpc_bench_local(pinas_ctx *ctx, const pinas_model *m, const float *x, int batch,
                                   const pinas_mpc_params *p, int runs, float *logits,
                                   pinas_mpc_report **reports) PINAS_WUR;
/* What a micro-benchmark measured: medians over the repeats. */
typedef struct {
    int64_t n;             /* the size actually run: elements (n rounded up to whole channels of the
                              benchmark net) or, for conv and linear, ring MACs */
    double online_s;       /* median online seconds */
    double offline_s;      /* median dealer seconds (with the party's setup) */
    pinas_mpc_cost counts; /* the operator's counters (the last repeat's) */
} pinas_mpc_bench_result;
/* Micro-benchmark of one primitive for calibration: kind is "relu", "drelu", "poly", "patch_relu",
 * "maxpool", "linear" or "conv" (n = ring MACs for linear and a 3x3 conv, elements otherwise); runs
 * both parties over loopback on fresh preprocessing per repeat. Errors: PINAS_EINVAL for an unknown
 * kind, n < 1 or reps < 1. */
pinas_status pinas_mpc_bench_op(pinas_ctx *ctx, const char *kind, int64_t n, int reps, const pinas_mpc_params *p,
                                pinas_mpc_bench_result *out) PINAS_WUR;
/* What pinas_mpc_bench_gate measured. */
typedef struct {
    double median_s;     /* median seconds of one repeat */
    uint64_t key_bytes;  /* one ReLU's preprocessing per party: 24 + pinas_drelu_key_size(cmp_bits) */
    uint64_t aes_blocks; /* AES blocks of one repeat (evaluation: party 0's; key generation: the dealer's) */
} pinas_mpc_gate_bench;
/* Times the ReLU gate's key work without the network, on p->threads threads (p->cmp_bits, p->cmp_high):
 * keygen = 0: one party's evaluation of n DReLU keys at random p̂ and the local select (party 0, the
 * peer's bits taken as zeros); keygen = 1: the dealer's generation of n key pairs with their shares of
 * r, t and t·r. Keys are made once (untimed) for evaluation; reps repeats, median. Errors: PINAS_EINVAL
 * for n < 1 or reps < 1, PINAS_ENOMEM. */
pinas_status pinas_mpc_bench_gate(pinas_ctx *ctx, int keygen, int64_t n, int reps, const pinas_mpc_params *p,
                                  pinas_mpc_gate_bench *out) PINAS_WUR;

/* ------------------------------------------------------------------ model dirs */

/* Reads what the dealer and the client need of a model dir: DIR/net.json (the architecture, no
 * weights) and, when DIR/meta.json exists, its fixed-point parameters (pinas_model_meta_read, with
 * the net; p keeps its values otherwise). Errors name the file. *net: new; caller frees (NULL on
 * error). */
pinas_status pinas_mpc_arch_load(pinas_ctx *ctx, const char *dir, pinas_net **net, pinas_mpc_params *p) PINAS_WUR;

#ifdef __cplusplus
}
#endif
#endif
