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
 * registry.c's normalizer table; a new row function is its kernels plus one entry in the row
 * table, which training (norm_row_forward/backward), the decoder (decoder_step) and the
 * prefill all dispatch through. */
enum { LCG_ROW_SOFTMAX = 0, LCG_ROW_ENTMAX, LCG_ROW_SPARSEMAX, LCG_ROW_TOPK, LCG_ROW_STICK, LCG_ROW_ADAPTIVE, LCG_ROW_COUNT };
/* how evaluation (the prefill) runs a row function: online softmax, the pruned entmax stream, or
 * the generic path that scores each query row in full (O(n)) and calls the row's eval */
enum { LCG_EVAL_ONLINE = 0, LCG_EVAL_ENTMAX = 1, LCG_EVAL_ROW = 2 };

typedef struct {
    const char *name;
    /* LCG_EVAL_ENTMAX (1): the entmax family, exact zeros at or below a threshold tau:
     * evaluation solves tau on the support (entmax_support_solve, the same bits for any
     * superset of it) and the prefill keeps only the keys above a running bound on tau;
     * LCG_EVAL_ONLINE (0): dense (softmax: the prefill's online softmax); LCG_EVAL_ROW (2):
     * the prefill scores each query row in full and calls eval, as decoder_step does */
    int sparse;
    double alpha; /* > 0: the alpha this row always uses (sparsemax: 2); 0: the normalizer's */
    /* training rows (float and double): weights p[n] of scores s[n]; the backward writes ds */
    void (*fwd)(float *p, const float *s, int n, double alpha);
    void (*bwd)(float *ds, const float *p, const float *dp, int n, double alpha);
    void (*fwd_f64)(double *p, const double *s, int n, double alpha);
    void (*bwd_f64)(double *ds, const double *p, const double *dp, int n, double alpha);
    /* evaluation's row (decoder_step, the prefill's diagnostics) */
    void (*eval)(float *p, const float *s, int n, double alpha);
    /* rows whose backward needs the scores too (stick-break, adaptive-softmax; bwd is NULL):
     * training recomputes the row's scores for it */
    void (*bwd_s)(float *ds, const float *p, const float *dp, const float *s, int n, double alpha);
    void (*bwd_s_f64)(double *ds, const double *p, const double *dp, const double *s, int n, double alpha);
    /* 1: the row takes no ALiBi/NAPE bias (stick-break: z = c q.k/sqrt(D) as the reference);
     * the model's slopes are 0 for it whatever --pos says (RoPE still rotates q and k) */
    int no_bias;
} lcg_row_fn;

/* the row function LCG_ROW_* (dies on an unknown one: a programming error) */
const lcg_row_fn *lcg_row_at(int row);
/* the alpha row r runs with for a normalizer whose alpha is `alpha` */
static inline double lcg_row_alpha(const lcg_row_fn *r, double alpha) { return r->alpha > 0 ? r->alpha : alpha; }
enum { LCG_SCALE_NONE = 0, LCG_SCALE_SSMAX, LCG_SCALE_LEARN, LCG_SCALE_ADAPT };
enum {
    LCG_NORM_SOFTMAX = 0,
    LCG_NORM_ENTMAX,
    LCG_NORM_SPARSEMAX,
    LCG_NORM_SSMAX,
    LCG_NORM_ASENTMAX,
    LCG_NORM_ENTMAX_LEARN,
    LCG_NORM_TOPK,
    LCG_NORM_STICK,
    LCG_NORM_ADAPTIVE,
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
    /* 1: takes --topk K and --topk-rule; the row parameter (the config's alpha slot) is then
     * +K (rule fixed) or -K (rule div-2), default +alpha_def */
    int has_topk;
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
