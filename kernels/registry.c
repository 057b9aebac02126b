/*
 * registry.c: names, flags and help of the attention normalizers and position encodings, and
 * the table of row functions every attention path dispatches through (training's
 * norm_row_forward/backward, the decoder's row, the prefill). The math is in attention.c and
 * entmax.c (normalizers) and posenc.c / attention.c (encodings); this file is the one place the
 * CLI, CSV, checkpoints and scripts (`lcgbench help attn --names`) learn which variants exist.
 */
#include "kernels.h"
#include "util.h"

#include <string.h>

static const lcg_row_fn rows[] = {
    [LCG_ROW_SOFTMAX] = {"softmax", 0, 0, softmax_row, softmax_row_backward, softmax_row_f64, softmax_row_backward_f64,
                         softmax_row, NULL, NULL, 0},
    [LCG_ROW_ENTMAX] = {"entmax", 1, 0, entmax_row_fwd, entmax_row_backward, entmax_row_fwd_f64,
                        entmax_row_backward_f64, entmax_row_eval_fwd, NULL, NULL, 0},
    [LCG_ROW_SPARSEMAX] = {"sparsemax", 1, 2.0, sparsemax_row_fwd, entmax_row_backward, sparsemax_row_fwd_f64,
                           entmax_row_backward_f64, entmax_row_eval_fwd, NULL, NULL, 0},
    [LCG_ROW_TOPK] = {.name = "topk", .sparse = LCG_EVAL_ROW, .fwd = topk_row, .bwd = softmax_row_backward,
                      .fwd_f64 = topk_row_f64, .bwd_f64 = softmax_row_backward_f64, .eval = topk_row},
    [LCG_ROW_STICK] = {.name = "stick-break", .sparse = LCG_EVAL_ROW, .fwd = stickbreak_row, .fwd_f64 = stickbreak_row_f64,
                       .eval = stickbreak_row, .bwd_s = stickbreak_row_backward, .bwd_s_f64 = stickbreak_row_backward_f64,
                       .no_bias = 1},
    [LCG_ROW_ADAPTIVE] = {.name = "adaptive-softmax", .sparse = LCG_EVAL_ROW, .fwd = adaptive_softmax_row,
                          .fwd_f64 = adaptive_softmax_row_f64, .eval = adaptive_softmax_row,
                          .bwd_s = adaptive_softmax_row_backward, .bwd_s_f64 = adaptive_softmax_row_backward_f64},
};
_Static_assert(sizeof rows / sizeof *rows == LCG_ROW_COUNT, "one entry per row function");

const lcg_row_fn *lcg_row_at(int row) {
    if (row < 0 || row >= LCG_ROW_COUNT) lcg_die("unknown attention row function %d", row);
    return &rows[row];
}

static const lcg_normalizer normalizers[] = {
    {"softmax", LCG_NORM_SOFTMAX, LCG_ROW_SOFTMAX, LCG_SCALE_NONE, 0, 1.0, "dense softmax attention", 0},
    {"entmax", LCG_NORM_ENTMAX, LCG_ROW_ENTMAX, LCG_SCALE_NONE, 1, 1.5,
     "alpha-entmax, 1 < alpha <= 2 (sparse; 1.5 = entmax15)", 0},
    {"sparsemax", LCG_NORM_SPARSEMAX, LCG_ROW_SPARSEMAX, LCG_SCALE_NONE, 0, 2.0,
     "sparsemax (alpha-entmax with alpha = 2)", 0},
    {"ssmax", LCG_NORM_SSMAX, LCG_ROW_SOFTMAX, LCG_SCALE_SSMAX, 0, 1.0,
     "scalable softmax: q scaled by beta_h * ln(i+2), beta_h learned", 0},
    {"asentmax", LCG_NORM_ASENTMAX, LCG_ROW_ENTMAX, LCG_SCALE_ADAPT, 1, 1.5,
     "alpha-entmax with the learned input-dependent scale 1 + softplus(.) * ln(i+2)^(2 tanh(.))", 0},
    {"entmax-learn", LCG_NORM_ENTMAX_LEARN, LCG_ROW_ENTMAX, LCG_SCALE_LEARN, 1, 1.5,
     "alpha-entmax with a static learned scale 1 + beta_h * ln(i+2)^gamma_h", 0},
    {"topk", LCG_NORM_TOPK, LCG_ROW_TOPK, LCG_SCALE_NONE, 0, 8.0,
     "softmax over the k largest scores of a row, the rest 0: --topk K (8), --topk-rule fixed|div-2 (k = max(K, keys/2))", 1},
    {"stick-break", LCG_NORM_STICK, LCG_ROW_STICK, LCG_SCALE_NONE, 0, 1.0,
     "stick-breaking: sigma(z_ij) * prod_{j<m<i} (1 - sigma(z_im)), no self-attention, remainder dropped", 0},
    {"adaptive-softmax", LCG_NORM_ADAPTIVE, LCG_ROW_ADAPTIVE, LCG_SCALE_NONE, 0, 1.0,
     "softmax(beta s), beta = max(poly(H), 1) when the entropy H of softmax(s) > 0.5 (reference's ascending poly)", 0},
};
_Static_assert(sizeof normalizers / sizeof *normalizers == LCG_NORM_COUNT, "one entry per id");

const lcg_normalizer *lcg_normalizer_at(int i) {
    return i >= 0 && i < (int)(sizeof normalizers / sizeof *normalizers) ? &normalizers[i] : NULL;
}

const lcg_normalizer *lcg_normalizer_find(const char *name) {
    for (int i = 0; lcg_normalizer_at(i); i++)
        if (strcmp(normalizers[i].name, name) == 0) return &normalizers[i];
    return NULL;
}

static const lcg_posenc posencs[] = {
    {"rope", LCG_POS_ROPE, "rotary embedding on every head"},
    {"nope", LCG_POS_NOPE, "no position signal"},
    {"alibi", LCG_POS_ALIBI, "ALiBi bias -m_h*(i-j), m_h = 1/(h+1), every head"},
    {"nape", LCG_POS_NAPE, "ALiBi on heads 0..H/2-1 (m_h = 1/(h+1)), NoPE on the rest"},
};

const lcg_posenc *lcg_posenc_at(int i) {
    return i >= 0 && i < (int)(sizeof posencs / sizeof *posencs) ? &posencs[i] : NULL;
}

const lcg_posenc *lcg_posenc_find(const char *name) {
    for (int i = 0; lcg_posenc_at(i); i++)
        if (strcmp(posencs[i].name, name) == 0) return &posencs[i];
    return NULL;
}

void lcg_posenc_slopes(float *slopes, int pos, int H) {
    int n_alibi = pos == LCG_POS_ALIBI ? H : pos == LCG_POS_NAPE ? H / 2 : 0;
    for (int h = 0; h < H; h++) slopes[h] = h < n_alibi ? 1.0f / (float)(h + 1) : 0.0f;
}
