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

/* RMSNorm rows n0..n0+nr-1: each row's sum of squares is its own chain over c in order, the nr
 * chains side by side (one row's chain alone is bound by the add's latency) */
static inline __attribute__((always_inline)) void rms_rows_forward(real *out, real *rstd, const real *inp, const real *w,
                                                                   int n0, int nr, int C) {
    double ss[4] = {0, 0, 0, 0};
    for (int c = 0; c < C; c++)
        for (int i = 0; i < nr; i++) {
            real xv = inp[(size_t)(n0 + i) * C + c];
            ss[i] += (double)xv * xv;
        }
    for (int i = 0; i < nr; i++) {
        const real *x = inp + (size_t)(n0 + i) * C;
        real r = (real)(1.0 / sqrt(ss[i] / C + LCG_RMS_EPS));
        real *o = out + (size_t)(n0 + i) * C;
        for (int c = 0; c < C; c++) o[c] = x[c] * r * (1 + w[c]);
        rstd[n0 + i] = r;
    }
}

void KFN(rmsnorm_forward)(real *out, real *rstd, const real *inp, const real *w, int N, int C) {
    int nb = (N + 3) / 4;
#pragma omp parallel for schedule(static) if (N * C > 16384)
    for (int b = 0; b < nb; b++) {
        if (4 * b + 4 <= N) rms_rows_forward(out, rstd, inp, w, 4 * b, 4, C);
        else
            for (int n = 4 * b; n < N; n++) rms_rows_forward(out, rstd, inp, w, n, 1, C);
    }
}

/* the input gradient of rows n0..n0+nr-1, their dot chains side by side */
static inline __attribute__((always_inline)) void rms_rows_backward(real *dinp, const real *dout, const real *inp,
                                                                    const real *w, const real *rstd, int n0, int nr,
                                                                    int C) {
    double dot[4] = {0, 0, 0, 0};
    for (int c = 0; c < C; c++)
        for (int i = 0; i < nr; i++)
            dot[i] += (double)dout[(size_t)(n0 + i) * C + c] * (1 + w[c]) * inp[(size_t)(n0 + i) * C + c];
    for (int i = 0; i < nr; i++) {
        const real *x = inp + (size_t)(n0 + i) * C, *g = dout + (size_t)(n0 + i) * C;
        real r = rstd[n0 + i];
        real k = (real)(dot[i] * r * r * r / C);
        real *dx = dinp + (size_t)(n0 + i) * C;
        for (int c = 0; c < C; c++) dx[c] += r * g[c] * (1 + w[c]) - x[c] * k;
    }
}

/* y = x*r*(1+w), r = (mean(x^2)+eps)^-1/2:
 * dx = r*(g*(1+w)) - x * r^3/C * sum(g*(1+w)*x),  dw = sum_n g*x*r */
void KFN(rmsnorm_backward)(real *dinp, real *dw, const real *dout, const real *inp,
                           const real *w, const real *rstd, int N, int C) {
    int nb = (N + 3) / 4;
#pragma omp parallel for schedule(static) if (N * C > 16384)
    for (int b = 0; b < nb; b++) {
        if (4 * b + 4 <= N) rms_rows_backward(dinp, dout, inp, w, rstd, 4 * b, 4, C);
        else
            for (int n = 4 * b; n < N; n++) rms_rows_backward(dinp, dout, inp, w, rstd, n, 1, C);
    }
    for (int n = 0; n < N; n++) {
        const real *x = inp + (size_t)n * C, *g = dout + (size_t)n * C;
        real r = rstd[n];
        for (int c = 0; c < C; c++) dw[c] += g[c] * x[c] * r;
    }
}
