/* Internals shared by the crypto/ sources: the per-node protocol plan, preprocessing layout, AES helpers. */
#ifndef PINAS_MPC_INTERNAL_H
#define PINAS_MPC_INTERNAL_H

#include <immintrin.h>

#include "pinas_mpc.h"

/* ------------------------------------------------------------------ fixed-key AES (dcf.c) */
typedef struct { __m128i rk[11]; } aes_key;
void pinas_aes128_expand(aes_key *ek, const uint8_t key[16]);
void pinas_aes128_ecb(const aes_key *ek, const void *in, void *out, size_t n);

/* ------------------------------------------------------------------ fixed point (inlined) */

/* One element of pinas_ring_trunc_share: party 0 shifts its share, party 1 the negation of its share. */
static inline uint64_t ring_trunc_share1(uint64_t v, int f, int party) { return party == 0 ? v >> f : -((-v) >> f); }

/* pinas_ring_encode(v / 2^f, f) for v = x·2^f, bit for bit (clamped to ±2^62, NaN as 0, halves away
 * from zero), without the library calls: the server encodes each matmul node's weights when the node
 * runs, inside the online phase. Exact: for |v| < 2^53, v - trunc(v) is exact; above, v is an integer. */
static inline uint64_t ring_encode_scaled(double v)
{
    const double lim = 4611686018427387904.0; /* 2^62 */
    if (v != v) v = 0;
    v = v > lim ? lim : v < -lim ? -lim : v;
    int64_t r = (int64_t)v;
    double fr = v - (double)r;
    return (uint64_t)(r + (fr >= 0.5) - (fr <= -0.5));
}

/* ------------------------------------------------------------------ the plan */

/* How a node runs under 2PC. One plan serves the dealer (what to generate), the parties (what to
 * run) and the cost model (what it costs), so the three cannot drift apart. */
typedef enum {
    PL_NONE = 0,   /* input, and nodes whose value is another node's (flatten, identity, folded BN) */
    PL_MATMUL,     /* conv2d / linear: Beaver matrix triple with the server's masked weights */
    PL_RELU,       /* DReLU key + select per element (2 rounds) */
    PL_POLY,       /* square pair */
    PL_PATCH,      /* DReLU key per patch (k = patch elements) + select per element */
    PL_MAXPOOL,    /* rounds of ReLU(a - b) + b (2 online rounds each) */
    PL_AVGPOOL,    /* local: window sum x 1/(kh kw), truncate */
    PL_GAP,        /* local: mean over H x W, truncate */
    PL_ADD,        /* local */
} pl_kind;

#define PL_MAX_ROUNDS 16

typedef struct {
    pl_kind kind;
    int alias;          /* PL_NONE: the node whose value this node takes (-1 for the input) */
    int cmp_bits;       /* comparisons of this node: bits [cmp_high - cmp_bits, cmp_high) of x */
    int cmp_high;       /* the window's top, cmp_bits..64 (pinas_mpc_params.cmp_high; never 0 here) */
    int threads;        /* the plan's threads (copied here for the dealer's node functions) */
    int64_t n_in;       /* elements of the (first) input, whole batch */
    int64_t n_out;      /* elements of the output, whole batch */
    /* PL_MATMUL: per group, Y[M x N] = W[M x K] · cols[K x N]; N = batch x output pixels (conv) or batch (linear) */
    int is_conv, groups, M, K;
    int64_t N;
    int bn_node;        /* conv: the batchnorm folded into it, or -1 */
    /* PL_PATCH */
    int k;              /* payload elements per gate (ph x pw) */
    int64_t gates;      /* patches (whole batch) */
    /* PL_MAXPOOL: pairs compared in each round */
    int rounds;
    int64_t pairs[PL_MAX_ROUNDS];
    /* PL_POLY */
    int poly_channels;  /* 1 or C */
} pl_node;

typedef struct {
    int n_nodes, batch, frac_bits;
    int threads;        /* key generation / evaluation threads (p->threads, at least 1) */
    pl_node *nodes;
} pl_plan;

/* Builds the plan for a decided net (cand >= 0 at node `as_node` overrides that slot's choice, for
 * the cost of alternatives; pass as_node = -1 otherwise). bits: per-node comparison widths (NULL =
 * p->cmp_bits everywhere). Errors name the node. */
pinas_status pl_build(pinas_ctx *ctx, const pinas_net *net, const pinas_mpc_params *p, const int *bits, int as_node,
                      int cand, pl_plan *out) PINAS_WUR;
/* The same with per-node window tops too (highs: NULL = p->cmp_high everywhere; 0 entries mean 64).
 * pl_build is pl_build_win with highs = NULL. */
pinas_status pl_build_win(pinas_ctx *ctx, const pinas_net *net, const pinas_mpc_params *p, const int *bits,
                          const int *highs, int as_node, int cand, pl_plan *out) PINAS_WUR;
void pl_free(pl_plan *pl);
/* Elements the plan truncates (conv/linear outputs, squares, average pools), whole batch. */
int64_t pl_trunc_elems(const pl_plan *pl);
/* The frac_bits bound for n truncated elements per image (common/pinas_config.h). */
int pl_frac_bound(int64_t n_trunc);
/* Plans one node alone (inputs from the net). */
pinas_status pl_node_build(pinas_ctx *ctx, const pinas_net *net, int i, const pinas_cand *choice, int batch,
                           int cmp_bits, int cmp_high, pl_node *out) PINAS_WUR;

/* Maxpool window schedule: for output window w (of n_out/batch per sample), the valid input offsets.
 * Fills idx (kh*kw max) and returns the count. */
int pl_pool_window(const pinas_node *n, const pinas_node *in, int c, int oy, int ox, int64_t *idx);

/* Preprocessing material of one node, per party, in bytes (u64 arrays and keys; 8-byte multiples). */
uint64_t pl_prep_bytes(const pl_node *pn, int party);

/* The analytic cost of one planned node (online, offline, setup). */
void pl_cost(const pl_node *pn, int frac_bits, pinas_mpc_cost *out);

/* ------------------------------------------------------------------ preprocessing */

/* A preprocessing file opened for reading node by node (prep.c): only the node being evaluated is in
 * memory. The mutable state of a const pinas_mpc_prep. */
typedef struct {
    int fd;
    char *path;
    uint8_t key[PINAS_MPC_DEALER_KEY_BYTES]; /* the dealer key (wiped on free) */
    uint8_t htag[32];   /* the header's tag, which every node's tag covers */
    uint64_t *foff;     /* per node: its section's offset in the file */
    uint8_t *buf;       /* the current node's material (64-byte aligned), cap bytes */
    size_t cap;
    size_t maxsec;      /* the largest section (framing included): the buffer's size from the first fetch on */
    int cur;            /* the node in buf, -1 for none */
    double read_s;      /* seconds spent reading and verifying sections */
} prep_file;

struct pinas_mpc_prep {
    int party, batch, frac_bits, cmp_bits, cmp_high, n_nodes;
    uint64_t hash;
    uint8_t session[16];
    uint64_t mask_id;      /* names the per-model weight mask A (both parties) */
    uint8_t mask_seed[16]; /* the seed A is expanded from (the server's file only; zeros in the client's) */
    int *node_bits, *node_high; /* per node comparison windows */
    uint64_t *off, *len;/* per node: offset into data, bytes */
    uint8_t *data;      /* all material, 64-byte aligned (in memory; NULL for a file read node by node) */
    size_t data_len;
    prep_file *file;    /* a file read node by node (NULL in memory) */
    double gen_s;       /* dealer seconds (in memory only) */
    pinas_mpc_cost dealer; /* dealer work, per run (in memory only) */
    pinas_mpc_cost *node_dealer; /* per node (in memory; from a file, filled as each node is fetched) */
};

/* Allocates a prep for the plan, sizes from pl_prep_bytes. */
pinas_status prep_alloc(pinas_ctx *ctx, const pl_plan *pl, int party, pinas_mpc_prep **out) PINAS_WUR;
/* The same without the material (the streaming dealer's header fields and sizes). */
pinas_status prep_alloc_shell(pinas_ctx *ctx, const pl_plan *pl, int party, pinas_mpc_prep **out) PINAS_WUR;
/* Makes node i's material available at prep_node(pp, i): nothing to do in memory; from a file, reads
 * node i's section into the node buffer (replacing the node there) and verifies its tag in constant
 * time, and fills pp->node_dealer[i]. Errors (PINAS_EFORMAT, PINAS_EIO) name the file and the node index. */
pinas_status prep_fetch(pinas_ctx *ctx, const pinas_mpc_prep *pp, int i) PINAS_WUR;
/* The node buffer of a file (the largest section's size, allocated at the first fetch) past node
 * i's section (its framed length rounded to 64 bytes): the bytes a party may use there as scratch
 * while node i runs (0 for a prep in memory); known from the header, before any fetch. The server encodes a conv/linear node's weights there, so that one buffer holds the layer. */
size_t prep_scratch_room(const pinas_mpc_prep *pp, int i);
/* That space, 64-byte aligned, once node i is the fetched node (prep_fetch(pp, i)) and bytes <=
 * prep_scratch_room(pp, i); else NULL. Valid until the next prep_fetch; wiped with the buffer. */
uint8_t *prep_scratch(const pinas_mpc_prep *pp, int i, size_t bytes);
/* Node i's material: in memory, or the node buffer of a file (after prep_fetch(pp, i)). */
static inline uint8_t *prep_node(const pinas_mpc_prep *pp, int i)
{
    return pp->file ? pp->file->buf : pp->data + pp->off[i];
}

/* Writes a preprocessing file node by node (prep.c): open writes the header and its tag, node()
 * appends node i's section (in order), commit fsyncs and renames it into place, abort removes the
 * temporary file (abort(NULL) is a no-op). pp: the header fields and sizes (borrowed until commit). */
typedef struct prep_writer prep_writer;
pinas_status prep_writer_open(pinas_ctx *ctx, const pinas_mpc_prep *pp, const char *path,
                              const uint8_t key[PINAS_MPC_DEALER_KEY_BYTES], prep_writer **out) PINAS_WUR;
pinas_status prep_writer_node(pinas_ctx *ctx, prep_writer *w, int i, const uint8_t *mat,
                              const pinas_mpc_cost *work) PINAS_WUR;
/* Frees w whatever happens. */
pinas_status prep_writer_commit(pinas_ctx *ctx, prep_writer *w) PINAS_WUR;
void prep_writer_abort(prep_writer *w);

/* Material layout of a node, in order, for both the dealer and the parties:
 *   MATMUL  P0: C0[groups*M*N] (A comes from mask_seed)  P1: B[n_in] | C1[groups*M*N]
 *   RELU    r share[n] | t share[n] | t·r share[n] | DReLU keys[n]
 *   POLY    r share[n] | r^2 share[n]
 *   PATCH   r share[n_in] | t·r share[n_in] (t of the element's patch) | t share[gates] | DReLU keys[gates]
 *   MAXPOOL per round: the RELU layout for its pairs
 * (t: the dealer's output-mask bit of each DReLU key, as a ring element; see pinas_drelu_gen.) */

/* ------------------------------------------------------------------ data movement (ops.c) */

/* cols[K x N] of group g for a PL_MATMUL node from its input X (whole batch): im2col for conv,
 * the transpose for linear. */
void mm_cols(const pinas_net *net, int node, const pl_node *pn, const uint64_t *X, int g, uint64_t *cols);
/* Y[groups][M][N] -> the activation layout [batch][C][H][W]. */
void mm_scatter(const pinas_net *net, int node, const pl_node *pn, const uint64_t *Y, uint64_t *out);
/* Element indices of each patch gate, k per gate, -1 for padding; gate order (b, c, py, px). */
void patch_index(const pinas_net *net, int node, const pl_node *pn, int batch, int64_t *idx);
/* The chosen candidate of an act/pool node (for patch sizes). */
const pinas_cand *node_choice(const pinas_net *net, int node);

/* Dealer: fills both parties' material for one planned node (dealer.c). mask: the PRG of the weight
 * masks A (expanded node by node, one request per matmul node). */
pinas_status deal_node(pinas_ctx *ctx, const pinas_net *net, int i, const pl_node *pn, int batch, pinas_prg *prg,
                       pinas_prg *mask, uint8_t *m0, uint8_t *m1, pinas_mpc_cost *work) PINAS_WUR;
/* The mask id of a mask seed for an architecture hash. */
uint64_t mask_id_of(const uint8_t seed[16], uint64_t arch_hash);

/* The per-model weight mask (mask.c). */
struct pinas_mpc_mask {
    uint64_t arch_hash;
    uint8_t seed[16]; /* secret: wiped by pinas_mpc_mask_free */
    char *path;
};

/* ------------------------------------------------------------------ preprocessing file header (prep.c) */

/* Bytes of the header of a file with n_nodes nodes (fixed part, node records, data length, padding). */
size_t prep_header_len(int n_nodes);
/* Writes pp's header (prep_header_len(pp->n_nodes) bytes) into h. */
void prep_header_write(const pinas_mpc_prep *pp, uint8_t *h);
/* Reads a header of len bytes into pp's scalar fields and per-node tables (allocated here; the
 * material itself is not). Checks magic, version, party, node count and section bounds against
 * data_len; `where` names the file in messages. pp is left for pinas_mpc_prep_free on error. */
pinas_status prep_header_read(pinas_ctx *ctx, const uint8_t *h, size_t len, const char *where, pinas_mpc_prep *pp) PINAS_WUR;

/* ------------------------------------------------------------------ reports (report.c) */

/* Recomputes r->totals from the rows and r->session (as pinas_mpc_party_run made them). */
void report_retotal(pinas_mpc_report *r);

#define TAG_HANDSHAKE 0xFFFF0001u
#define TAG_SETUP 0xFFFF0002u
#define TAG_OUTPUT 0xFFFF0003u
#define HANDSHAKE_BYTES 64

/* The pinas handshake message (HANDSHAKE_BYTES, little endian): "PINASHS1", version u32, role u32,
 * batch u32, node count u32, model hash u64, preprocessing session id [16], weight-mask id u64,
 * flags u8 (client only: it holds W - A for this mask), reserved zeros. */
typedef struct {
    uint32_t version, role, batch, n_nodes;
    uint64_t hash, mask_id;
    uint8_t session[16];
    uint8_t flags;
} pinas_mpc_hello;

void pinas_mpc_hello_encode(const pinas_mpc_hello *h, uint8_t out[HANDSHAKE_BYTES]);
/* Parses the peer's n bytes and checks every field against ours (`mine`: the role must be exactly
 * the other one; version, model hash and node count, session id, batch, mask id equal; flags and
 * reserved bytes valid). On success *out (may be NULL) gets the peer's fields and why is "". On
 * failure PINAS_EPEER with a message naming the peer and the field, and why a short reason that may
 * be sent back to the peer (it reveals nothing of ours). Pure: no I/O (fuzzed by
 * tests/fuzz/fuzz_handshake.c). */
pinas_status pinas_mpc_hello_check(pinas_ctx *ctx, const pinas_mpc_hello *mine, const uint8_t *theirs, size_t n,
                                   pinas_mpc_hello *out, char *why, size_t wn) PINAS_WUR;

#endif
