/* Bit cutting (Gorski et al.): per comparison slot, the narrowest comparison window whose sign errors stay below eps. */
#ifndef PINAS_BITCUT_H
#define PINAS_BITCUT_H

#include "pinas_common.h"
#include "pinas_config.h"
#include "pinas_mpc.h"
#include "pinas_net.h"

#ifdef __cplusplus
extern "C" {
#endif

/* What the runtime compares (crypto/pinas_mpc.h, cmp_bits and cmp_high): a comparison of node i looks
 * at bits [cmp_high - cmp_bits, cmp_high) of the 64-bit ring element, i.e. the sign of x mod 2^cmp_high
 * with the low L = cmp_high - cmp_bits bits dropped. It is right for every x with
 * 2^L <= |x| < 2^(cmp_high-1) (in ulps, 2^-frac_bits each). Bit cutting measures, on held-out images
 * run through the plaintext executor (pinas_plain_forward_tap; float values encoded with the model's
 * frac_bits, as the runtime encodes them), the values each comparison sees:
 *   relu         the slot's input, element by element;
 *   patch_relu   the patch sum minus one ulp (the gate of crypto/party_online.c run_patch), per patch;
 *   maxpool      the pairwise differences a - b of the runtime's tree (window in row order, pairs
 *                (0,1), (2,3), ..., an odd last element carried up), level by level.
 * Slots of other candidates (poly, identity, avgpool) compare nothing and get no window.
 * Per slot the window is: cmp_high = the bits of the largest measured |x| plus the sign bit plus
 * margin_bits (at least PINAS_CMP_BITS_MIN, at most 64), then the largest L whose error count is at
 * most eps x comparisons, where an error is counted conservatively for every x in the band the
 * runtime may get wrong, [-2^L, 0) (it may, not must: the lost borrow depends on the masks), and
 * every x with |x| >= 2^(cmp_high-1) (none on the measured images, thanks to the margin);
 * cmp_bits = cmp_high - L, at least PINAS_CMP_BITS_MIN. A value 0 is never an error (DReLU(0) = 1
 * is exact whatever L). */

/* One slot's measurement and choice. */
typedef struct {
    char id[PINAS_MAX_ID];
    char cand[32];          /* the slot's candidate: "relu", "patch_relu:2x2", "maxpool" */
    int64_t count;          /* comparisons measured over all images */
    double min, max;        /* range of the compared values (real numbers) */
    int range_bits;         /* bits of the largest |x| in ulps (0 when every x is 0) */
    int cmp_high, cmp_bits; /* the chosen window */
    int64_t errors;         /* comparisons counted as possibly wrong under that window */
    double error_rate;      /* errors / count */
    int64_t hist[65];       /* hist[b]: comparisons whose |x| in ulps has b bits (0 for x = 0) */
    int64_t neg[65];        /* neg[b]: comparisons with x < 0 whose -x - 1 has b bits (x in [-2^b, -2^(b-1))) */
} pinas_bitcut_slot;

typedef struct {
    int frac_bits, images, margin_bits;
    double eps;
    int n_slots;
    pinas_bitcut_slot *slots; /* in net order; owned */
} pinas_bitcut_result;

/* Picks the window from the histograms of one slot (pinas_bitcut_slot.hist and .neg; count
 * comparisons in all) as described above; writes *cmp_high, *cmp_bits and *errors. count 0: the
 * narrowest window (PINAS_CMP_BITS_MIN high, as many bits). */
void pinas_bitcut_choose(const int64_t hist[65], const int64_t neg[65], int64_t count, double eps, int margin_bits, int *cmp_high,
                         int *cmp_bits, int64_t *errors);
/* Runs model m (decided; frac_bits from its meta) in plaintext on x [n, C, H, W] (normalised) and
 * chooses every comparison slot's window. Errors: n < 1, eps outside [0, 1), margin_bits outside
 * [0, 64], those of the plaintext executor. *out is overwritten; free with pinas_bitcut_result_free. */
pinas_status pinas_bitcut_measure(pinas_ctx *ctx, const pinas_model *m, const float *x, int n, double eps, int margin_bits,
                                  pinas_bitcut_result *out) PINAS_WUR;
/* Releases the slots; NULL is a no-op. */
void pinas_bitcut_result_free(pinas_bitcut_result *r);
/* Writes every slot's window into meta's "mpc.layers" (pinas_model_meta_set_layer_bits). */
pinas_status pinas_bitcut_apply(pinas_ctx *ctx, const pinas_bitcut_result *r, pinas_model_meta *meta) PINAS_WUR;
/* The dealer's table of a meta record's "mpc.layers": pinas_mpc_layer_bits_from_meta (crypto). */
/* {"frac_bits", "images", "eps", "margin_bits", "slots": [{"id", "cand", "comparisons", "min", "max",
 * "range_bits", "cmp_high", "cmp_bits", "errors", "error_rate"}]}. New; caller frees; NULL when out
 * of memory. */
cJSON *pinas_bitcut_result_json(const pinas_bitcut_result *r);

/* The export's step (pinas export with export.bit_cut, or forced): loads model_dir, measures on the
 * first o->bit_cut_images images of the validation split of run_dir's dataset (fewer when the split
 * is smaller), writes the windows into model_dir/meta.json and re-prices its predicted_latency rows
 * with the per-node windows (pinas_cost_predict_layers). *out: the measurement (free with
 * pinas_bitcut_result_free). Errors name the model dir. */
pinas_status pinas_bitcut_model_dir(pinas_ctx *ctx, const char *model_dir, const char *run_dir, const pinas_cfg_export *o,
                                    pinas_bitcut_result *out) PINAS_WUR;

#ifdef __cplusplus
}
#endif
#endif
