/*
 * matmul.c: out = inp @ w with w stored input-major [IC, OC], forward and backward.
 *
 * The fast path is one register-tiled kernel, out[rows] (+)= a[rows, K] @ b[K, cols], that
 * every product goes through: the backward transposes w (for dinp; small) and reads inp
 * transposed in place (for dw) and calls it again. Each output element is accumulated by one thread in a fixed k order, so results do
 * not depend on the thread count. No SIMD intrinsics yet: the inner column loop is written
 * for the compiler's vectorizer. The _ref functions are the plain loops the tests compare to.
 */
#include "kernels.h"
#include "real.h"
#include "util.h"

#include <stdlib.h>
#include <string.h>

#define TILE_R 4  /* rows per tile */
#define TILE_C 64 /* columns per tile */

/* out[R, M] (+)= a[R, K] @ b[K, M]; a's element (r, k) is a[r * ars + k * aks] (so a may be
 * read transposed: ars = 1, aks = its row width); out and b have row strides M */
static void gemm_acc(real *restrict out, const real *restrict a, size_t ars, size_t aks,
                     const real *restrict b, int R, int K, int M, int accumulate) {
    int n_rtiles = (R + TILE_R - 1) / TILE_R;
#pragma omp parallel for schedule(static) if ((long)R * K * M > 32768)
    for (int rt = 0; rt < n_rtiles; rt++) {
        int r0 = rt * TILE_R;
        int nr = R - r0 < TILE_R ? R - r0 : TILE_R;
        for (int c0 = 0; c0 < M; c0 += TILE_C) {
            int nc = M - c0 < TILE_C ? M - c0 : TILE_C;
            real acc[TILE_R][TILE_C];
            for (int r = 0; r < TILE_R; r++)
                for (int c = 0; c < TILE_C; c++)
                    acc[r][c] = (accumulate && r < nr && c < nc) ? out[(size_t)(r0 + r) * M + c0 + c] : 0;
            if (nr == TILE_R && nc == TILE_C) {
                for (int k = 0; k < K; k++) {
                    const real *brow = b + (size_t)k * M + c0;
                    const real *ak = a + (size_t)k * aks + (size_t)r0 * ars;
                    real a0 = ak[0], a1 = ak[ars], a2 = ak[2 * ars], a3 = ak[3 * ars];
                    for (int c = 0; c < TILE_C; c++) {
                        acc[0][c] += a0 * brow[c];
                        acc[1][c] += a1 * brow[c];
                        acc[2][c] += a2 * brow[c];
                        acc[3][c] += a3 * brow[c];
                    }
                }
            } else {
                for (int k = 0; k < K; k++) {
                    const real *brow = b + (size_t)k * M + c0;
                    for (int r = 0; r < nr; r++) {
                        real av = a[(size_t)(r0 + r) * ars + (size_t)k * aks];
                        for (int c = 0; c < nc; c++) acc[r][c] += av * brow[c];
                    }
                }
            }
            for (int r = 0; r < nr; r++)
                memcpy(out + (size_t)(r0 + r) * M + c0, acc[r], sizeof(real) * (size_t)nc);
        }
    }
}

/* dst[cols, rows] = src[rows, cols] */
static void transpose(real *restrict dst, const real *restrict src, int rows, int cols) {
    for (int r = 0; r < rows; r++)
        for (int c = 0; c < cols; c++) dst[(size_t)c * rows + r] = src[(size_t)r * cols + c];
}

void KFN(matmul_forward)(real *out, const real *inp, const real *w, int N, int IC, int OC) {
    gemm_acc(out, inp, (size_t)IC, 1, w, N, IC, OC, 0);
}

void KFN(matmul_backward)(real *dinp, real *dw, const real *dout, const real *inp, const real *w,
                          int N, int IC, int OC) {
    if (dinp) { /* dinp[N, IC] += dout[N, OC] @ w^T[OC, IC] (w^T is small: transposed once) */
        real *scratch = LCG_SCRATCH(real, (size_t)IC * OC); /* fully overwritten */
        transpose(scratch, w, IC, OC);
        gemm_acc(dinp, dout, (size_t)OC, 1, scratch, N, OC, IC, 1);
        lcg_free(scratch);
    }
    if (dw) /* dw[IC, OC] += inp^T[IC, N] @ dout[N, OC], inp read transposed in place */
        gemm_acc(dw, inp, 1, (size_t)IC, dout, IC, N, OC, 1);
}

void KFN(matmul_forward_ref)(real *out, const real *inp, const real *w, int N, int IC, int OC) {
    for (int n = 0; n < N; n++)
        for (int o = 0; o < OC; o++) {
            double s = 0;
            for (int i = 0; i < IC; i++) s += (double)inp[(size_t)n * IC + i] * w[(size_t)i * OC + o];
            out[(size_t)n * OC + o] = (real)s;
        }
}

void KFN(matmul_backward_ref)(real *dinp, real *dw, const real *dout, const real *inp,
                              const real *w, int N, int IC, int OC) {
    for (int n = 0; n < N; n++)
        for (int i = 0; i < IC; i++) {
            double s = 0;
            for (int o = 0; o < OC; o++) s += (double)dout[(size_t)n * OC + o] * w[(size_t)i * OC + o];
            dinp[(size_t)n * IC + i] += (real)s;
        }
    for (int i = 0; i < IC; i++)
        for (int o = 0; o < OC; o++) {
            double s = 0;
            for (int n = 0; n < N; n++) s += (double)inp[(size_t)n * IC + i] * dout[(size_t)n * OC + o];
            dw[(size_t)i * OC + o] += (real)s;
        }
}
