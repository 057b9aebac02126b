/*
 * kernels.h: the math layer. Forward/backward pairs for every operation of the model, in float
 * (plain names) and double (`_f64` names, used only by the gradient checks), plus the registry
 * of attention normalizers and position encodings.
 *
 * Kernels know nothing of models, tasks or files. Parallel loops split independent outputs
 * only, in a fixed order, so results are bitwise identical whatever the thread count.
 */
#ifndef LCG_KERNELS_H
#define LCG_KERNELS_H

#include <stddef.h>

/* a key that may be in an entmax row's support: x = (alpha-1)(s_j - max s), in double, and the
 * key's index j (entmax.c; shared by both builds) */
typedef struct {
    double x;
    int j;
} lcg_ent_cand;

/* 1 (the default): the float build's training attention takes its D = 16 register path; 0: the
 * plain loops, which it must equal bitwise (tests/test_kernels.c switches it to compare) */
extern int lcg_attention_fast;

#define LCG_REAL float
#define KFN(name) name
#include "kernels.inc.h"
#undef LCG_REAL
#undef KFN
#define LCG_REAL double
#define KFN(name) name##_f64
#include "kernels.inc.h"
#undef LCG_REAL
#undef KFN

#define LCG_RMS_EPS 1e-6
#define LCG_ROPE_THETA 10000.0

/* ---- attention normalizer registry (kernels/registry.c) ------------------------------------
 * A normalizer is a row function (scores -> weights, in attention.c / entmax.c) plus an
 * optional learned length scaling of the queries (lenscale.c). Adding one = an entry in
 * registry.c, and a row function or scaling only if it needs a new one. */
enum { LCG_ROW_SOFTMAX = 0, LCG_ROW_ENTMAX, LCG_ROW_SPARSEMAX };
enum { LCG_SCALE_NONE = 0, LCG_SCALE_SSMAX, LCG_SCALE_LEARN, LCG_SCALE_ADAPT };
enum {
    LCG_NORM_SOFTMAX = 0,
    LCG_NORM_ENTMAX,
    LCG_NORM_SPARSEMAX,
    LCG_NORM_SSMAX,
    LCG_NORM_ASENTMAX,
    LCG_NORM_ENTMAX_LEARN,
    LCG_NORM_COUNT
};

typedef struct {
    const char *name;
    int id;           /* LCG_NORM_*, equal to the entry's index */
    int row;          /* LCG_ROW_*: the row function */
    int scale;        /* LCG_SCALE_*: length scaling of the queries */
    int has_alpha;    /* accepts --alpha */
    double alpha_def; /* default alpha (1 for softmax, 2 for sparsemax) */
    const char *help;
} lcg_normalizer;

const lcg_normalizer *lcg_normalizer_find(const char *name);
const lcg_normalizer *lcg_normalizer_at(int i); /* NULL past the end */

/* ---- position encodings ---------------------------------------------------------------------
 * rope: rotary on all heads. nope: nothing. alibi: bias -m_h*(i-j) on all heads, m_h = 1/(h+1).
 * nape: ALiBi (m_h = 1/(h+1)) on heads 0..H/2-1, NoPE on the rest. */
enum { LCG_POS_ROPE = 0, LCG_POS_NOPE, LCG_POS_ALIBI, LCG_POS_NAPE, LCG_POS_COUNT };

typedef struct {
    const char *name;
    int id;
    const char *help;
} lcg_posenc;

const lcg_posenc *lcg_posenc_find(const char *name);
const lcg_posenc *lcg_posenc_at(int i);
/* fills slopes[H] with the ALiBi slope of each head (0 for heads without a bias) */
void lcg_posenc_slopes(float *slopes, int pos, int H);

#endif
