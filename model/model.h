/*
 * model.h: the transformer (a small Gemma-2-style decoder) as the reference builds it:
 *   x = Emb[tok] * sqrt(C)
 *   per layer:  x += Npost_attn(Attn(Nin(x)));  x += Npost_ff(W_down(gelu_tanh(W_g h) * W_u h)),
 *               h = Npre_ff(x)   (RMSNorm with (1 + w) everywhere, "sandwich" norms)
 *   logits = Nfinal(x) @ W_lm   (untied, no biases anywhere)
 * Training forward/backward over a [B, T] batch, in float (the tool) and double (`_f64`, the
 * gradient checks); the same source is compiled twice. Decoding with a KV cache is infer.h.
 *
 * This layer knows nothing of tasks, files or the CLI; the optimizer and checkpoints are in
 * optim.h and checkpoint.h and operate on the float model only.
 */
#ifndef LCG_MODEL_H
#define LCG_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "../kernels/kernels.h"

#define LCG_MAX_HEADS 256
#define LCG_TOPK_MAX (1 << 20) /* the largest --topk */
#define LCG_MAX_LAYERS 64

typedef struct {
    int V;       /* vocabulary */
    int L;       /* layers */
    int C;       /* model width */
    int H;       /* heads */
    int D;       /* head dim */
    int F;       /* FFN width (per GeGLU half) */
    int norm;    /* LCG_NORM_* */
    int pos;     /* LCG_POS_* */
    float alpha; /* normalizer parameter: alpha (1 for softmax); for topk +K (rule fixed) or -K
                  * (rule div-2), an integer of magnitude <= LCG_TOPK_MAX */
} lcg_config;

enum {
    LCG_P_EMB,   /* V, C */
    LCG_P_LN_IN, /* L, C */
    LCG_P_WQKV,  /* L, C, 3*H*D   (q | k | v) */
    LCG_P_WO,    /* L, H*D, C */
    LCG_P_LN_PA, /* L, C          post-attention norm */
    LCG_P_LN_PF, /* L, C          pre-FFN norm */
    LCG_P_WGU,   /* L, C, 2*F     (gate | up) */
    LCG_P_WDOWN, /* L, F, C */
    LCG_P_LN_PO, /* L, C          post-FFN norm */
    LCG_P_LN_F,  /* C             final norm */
    LCG_P_LM,    /* C, V */
    /* length scaling of the queries (kernels/lenscale.c); empty unless the normalizer has it.
     * Hs = scaled heads (H/2 NoPE heads under NAPE, else H) */
    LCG_P_LS_BETA,  /* L, Hs      ssmax, entmax-learn */
    LCG_P_LS_GAMMA, /* L, Hs      entmax-learn */
    LCG_P_LS_WB,    /* L, C, Hs   asentmax */
    LCG_P_LS_BB,    /* L, Hs      asentmax */
    LCG_P_LS_WG,    /* L, C, Hs   asentmax */
    LCG_P_LS_BG,    /* L, Hs      asentmax */
    LCG_N_PARAM_TENSORS
};

extern const char *const lcg_param_names[LCG_N_PARAM_TENSORS];
/* element count of each parameter tensor; returns the total */
size_t lcg_param_sizes(const lcg_config *cfg, size_t sizes[LCG_N_PARAM_TENSORS]);
/* number of length-scaled heads; *h0 = the first one (heads h0..H-1 are scaled) */
int lcg_scaled_heads(const lcg_config *cfg, int *h0);
/* "" if the config is valid, else a message naming the bad field */
const char *lcg_config_check(const lcg_config *cfg);
/* the same model (every field equal): a checkpoint's header against a run's settings */
int lcg_config_same(const lcg_config *a, const lcg_config *b);

#define LCG_REAL float
#define KFN(name) name
#include "model.inc.h"
#undef LCG_REAL
#undef KFN
#define LCG_REAL double
#define KFN(name) name##_f64
#include "model.inc.h"
#undef LCG_REAL
#undef KFN

#endif
