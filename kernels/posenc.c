/*
 * posenc.c: rotary position embedding (GPT-NeoX rotate-half convention: dim d pairs with
 * d + D/2, inv_freq_k = theta^(-2k/D), full head dim, all heads). ALiBi/NAPE are a bias on the
 * scores and live in attention.c; their slopes come from registry.c.
 */
#include "kernels.h"
#include "real.h"

#include <math.h>

/* rotate one head vector x[D] by +angle (sign = 1) or -angle (sign = -1) */
static void rotate_head(real *x, int pos, int D, int sign) {
    int half = D / 2;
    for (int k = 0; k < half; k++) {
        double ang = (double)pos * pow(LCG_ROPE_THETA, -2.0 * k / D);
        real c = (real)cos(ang), s = (real)(sign * sin(ang));
        real x1 = x[k], x2 = x[k + half];
        x[k] = x1 * c - x2 * s;
        x[k + half] = x2 * c + x1 * s;
    }
}

void KFN(rope_rotate)(real *x, int pos, int H, int D) {
    for (int h = 0; h < H; h++) rotate_head(x + (size_t)h * D, pos, D, 1);
}

static void rope_apply(real *qkv, int B, int T, int H, int D, int sign) {
    int HD = H * D;
#pragma omp parallel for schedule(static) if (B * T * HD > 16384)
    for (int bt = 0; bt < B * T; bt++) {
        int t = bt % T;
        real *row = qkv + (size_t)bt * 3 * HD;
        for (int h = 0; h < 2 * H; h++) rotate_head(row + (size_t)h * D, t, D, sign); /* q, k */
    }
}

void KFN(rope_forward)(real *qkv, int B, int T, int H, int D) { rope_apply(qkv, B, T, H, D, 1); }
void KFN(rope_backward)(real *dqkv, int B, int T, int H, int D) { rope_apply(dqkv, B, T, H, D, -1); }
