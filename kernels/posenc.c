/*
 * posenc.c: rotary position embedding (GPT-NeoX rotate-half convention: dim d pairs with
 * d + D/2, inv_freq_k = theta^(-2k/D), full head dim, all heads). ALiBi/NAPE are a bias on the
 * scores and live in attention.c; their slopes come from registry.c.
 *
 * cos/sin are computed in double and rounded once, by one function, for the batched training
 * path and the per-token decoding path alike, so the two rotate identically.
 */
#include "kernels.h"
#include "real.h"
#include "util.h"

#include <math.h>

static void rope_cos_sin(real *c, real *s, int pos, int D) {
    for (int k = 0; k < D / 2; k++) {
        double ang = (double)pos * pow(LCG_ROPE_THETA, -2.0 * k / D);
        c[k] = (real)cos(ang);
        s[k] = (real)sin(ang);
    }
}

/* rotate n_heads head vectors x[n_heads * D] by +angle (sign 1) or -angle (sign -1) */
static void rotate_heads(real *x, const real *c, const real *s, int n_heads, int D, int sign) {
    int half = D / 2;
    for (int h = 0; h < n_heads; h++) {
        real *v = x + (size_t)h * D;
        for (int k = 0; k < half; k++) {
            real x1 = v[k], x2 = v[k + half], sk = sign * s[k];
            v[k] = x1 * c[k] - x2 * sk;
            v[k + half] = x2 * c[k] + x1 * sk;
        }
    }
}

void KFN(rope_rotate)(real *x, int pos, int H, int D) {
    real c[512], s[512];
    if (D > 1024) lcg_die("rope: head dim %d too large", D);
    rope_cos_sin(c, s, pos, D);
    rotate_heads(x, c, s, H, D, 1);
}

static void rope_apply(real *qkv, int B, int T, int H, int D, int sign) {
    int HD = H * D, half = D / 2;
    real *cs = LCG_NEW(real, (size_t)2 * T * half); /* per position: cos[half], sin[half] */
    for (int t = 0; t < T; t++) rope_cos_sin(cs + (size_t)2 * t * half, cs + (size_t)(2 * t + 1) * half, t, D);
#pragma omp parallel for schedule(static) if (B * T * HD > 16384)
    for (int bt = 0; bt < B * T; bt++) {
        int t = bt % T;
        const real *c = cs + (size_t)2 * t * half, *s = c + half;
        rotate_heads(qkv + (size_t)bt * 3 * HD, c, s, 2 * H, D, sign); /* q and k heads */
    }
    lcg_free(cs);
}

void KFN(rope_forward)(real *qkv, int B, int T, int H, int D) { rope_apply(qkv, B, T, H, D, 1); }
void KFN(rope_backward)(real *dqkv, int B, int T, int H, int D) { rope_apply(dqkv, B, T, H, D, -1); }
