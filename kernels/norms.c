/*
 * norms.c: token embedding (scaled by sqrt(C)) and RMSNorm with (1 + w) weights.
 *
 * Reductions over rows (the weight gradients) run serially in row order, so they are
 * deterministic; per-row work is parallel. No padding_idx: unlike the reference (which
 * inherits Gemma's pad id 0), token 0 has a trainable embedding (README, "Differences").
 */
#include "kernels.h"
#include "real.h"

#include <math.h>

void KFN(encoder_forward)(real *out, const int *tok, const real *emb, int N, int C) {
    real scale = (real)sqrt((double)C);
    for (int n = 0; n < N; n++) {
        const real *e = emb + (size_t)tok[n] * C;
        real *o = out + (size_t)n * C;
        for (int c = 0; c < C; c++) o[c] = e[c] * scale;
    }
}

void KFN(encoder_backward)(real *demb, const real *dout, const int *tok, int N, int C) {
    real scale = (real)sqrt((double)C);
    for (int n = 0; n < N; n++) {
        real *d = demb + (size_t)tok[n] * C;
        const real *g = dout + (size_t)n * C;
        for (int c = 0; c < C; c++) d[c] += g[c] * scale;
    }
}

void KFN(rmsnorm_forward)(real *out, real *rstd, const real *inp, const real *w, int N, int C) {
#pragma omp parallel for schedule(static) if (N * C > 16384)
    for (int n = 0; n < N; n++) {
        const real *x = inp + (size_t)n * C;
        double ss = 0;
        for (int c = 0; c < C; c++) ss += (double)x[c] * x[c];
        real r = (real)(1.0 / sqrt(ss / C + LCG_RMS_EPS));
        real *o = out + (size_t)n * C;
        for (int c = 0; c < C; c++) o[c] = x[c] * r * (1 + w[c]);
        rstd[n] = r;
    }
}

/* y = x*r*(1+w), r = (mean(x^2)+eps)^-1/2:
 * dx = r*(g*(1+w)) - x * r^3/C * sum(g*(1+w)*x),  dw = sum_n g*x*r */
void KFN(rmsnorm_backward)(real *dinp, real *dw, const real *dout, const real *inp,
                           const real *w, const real *rstd, int N, int C) {
#pragma omp parallel for schedule(static) if (N * C > 16384)
    for (int n = 0; n < N; n++) {
        const real *x = inp + (size_t)n * C, *g = dout + (size_t)n * C;
        real r = rstd[n];
        double dot = 0;
        for (int c = 0; c < C; c++) dot += (double)g[c] * (1 + w[c]) * x[c];
        real k = (real)(dot * r * r * r / C);
        real *dx = dinp + (size_t)n * C;
        for (int c = 0; c < C; c++) dx[c] += r * g[c] * (1 + w[c]) - x[c] * k;
    }
    for (int n = 0; n < N; n++) {
        const real *x = inp + (size_t)n * C, *g = dout + (size_t)n * C;
        real r = rstd[n];
        for (int c = 0; c < C; c++) dw[c] += g[c] * x[c] * r;
    }
}
