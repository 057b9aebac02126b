/*
 * attention.c: the attention normalizers (one row of scores -> weights, forward and backward)
 * and causal multi-head attention for training, where the T x T block is short and kept for
 * the backward pass. Evaluation never comes here: model/infer.c scores one query row at a time
 * against the KV cache with the same row normalizers, in O(n) memory.
 *
 * Adding a row function: a case in norm_row_forward/backward and an entry in registry.c.
 * The entmax/sparsemax row math lives in entmax.c.
 */
#include "kernels.h"
#include "real.h"
#include "util.h"

#include <math.h>
#include <stdlib.h>

/* ---- softmax ------------------------------------------------------------------------------ */
static void softmax_row(real *p, const real *s, int n) {
    real mx = s[0];
    for (int j = 1; j < n; j++) mx = s[j] > mx ? s[j] : mx;
    double sum = 0;
    for (int j = 0; j < n; j++) {
        p[j] = r_exp(s[j] - mx);
        sum += p[j];
    }
    real inv = (real)(1.0 / sum);
    for (int j = 0; j < n; j++) p[j] *= inv;
}

/* ds_j = p_j (dp_j - sum_k p_k dp_k) */
static void softmax_row_backward(real *ds, const real *p, const real *dp, int n) {
    double dot = 0;
    for (int j = 0; j < n; j++) dot += (double)p[j] * dp[j];
    for (int j = 0; j < n; j++) ds[j] = p[j] * (dp[j] - (real)dot);
}

void KFN(norm_row_forward)(real *p, const real *s, int n, int row, double alpha) {
    switch (row) {
    case LCG_ROW_SOFTMAX: softmax_row(p, s, n); return;
    case LCG_ROW_ENTMAX: KFN(entmax_row)(p, s, n, alpha); return;
    case LCG_ROW_SPARSEMAX: KFN(sparsemax_row)(p, s, n); return;
    default: lcg_die("unknown attention row function %d", row);
    }
}

void KFN(norm_row_backward)(real *ds, const real *p, const real *dp, int n, int row,
                            double alpha) {
    switch (row) {
    case LCG_ROW_SOFTMAX: softmax_row_backward(ds, p, dp, n); return;
    case LCG_ROW_ENTMAX: KFN(entmax_row_backward)(ds, p, dp, n, alpha); return;
    case LCG_ROW_SPARSEMAX: KFN(entmax_row_backward)(ds, p, dp, n, 2.0); return;
    default: lcg_die("unknown attention row function %d", row);
    }
}

/* ---- causal attention over a materialized block --------------------------------------------
 * Per (batch, head) the keys (forward) or values (backward) are first gathered transposed,
 * xt[d][j], so a row of scores is D vectorizable sweeps over j; each score still sums d in
 * order 0..D-1, as the decoder does. */
#if !defined(LCG_F64)
/* D = 16 in the float build: a head's vector is one GCC vector of 16 floats, kept in registers
 * across the loops over keys; each element gets the same FMA chain as the plain loops below */
typedef float v16f __attribute__((vector_size(64)));
typedef float v16fu __attribute__((vector_size(64), aligned(4), may_alias)); /* unaligned access */
#define V16(p) (*(v16fu *)(p))
#define V16C(p) (*(const v16fu *)(p))
#if defined(__GNUC__) && defined(__AVX512F__)
#define ATT_NO_CONTRACT(x) __asm__("" : "+v"(x)) /* an empty asm: x is rounded before use */
#else
#define ATT_NO_CONTRACT(x) __asm__("" : "+m"(x)) /* the same, through memory */
#endif
#endif

static real dot(const real *a, const real *b, int n) {
    real s = 0;
    for (int i = 0; i < n; i++) s += a[i] * b[i];
    return s;
}

static void gather_t(real *xt, const real *base, int T, int stride, int D) {
    for (int j = 0; j < T; j++)
        for (int d = 0; d < D; d++) xt[(size_t)d * T + j] = base[(size_t)j * stride + d];
}

/* s[j] = sum_d q[d] * xt[d][j], j < n */
static void row_scores(real *restrict s, const real *restrict q, const real *restrict xt, int n, int T, int D) {
    for (int j = 0; j < n; j++) s[j] = 0;
    for (int d = 0; d < D; d++) {
        const real *x = xt + (size_t)d * T;
        real qd = q[d];
        for (int j = 0; j < n; j++) s[j] += qd * x[j];
    }
}

void KFN(attention_forward)(real *out, real *att, const real *qkv, const real *qscale,
                            const float *slopes, int row, double alpha, int B, int T, int H, int D) {
    int HD = H * D, C3 = 3 * HD;
    real scale = (real)(1.0 / sqrt((double)D));
#pragma omp parallel
    {
        real *s = LCG_NEW(real, T), *kt = LCG_NEW(real, (size_t)D * T);
#pragma omp for schedule(static)
        for (int bh = 0; bh < B * H; bh++) {
            int b = bh / H, h = bh % H;
            real m = (real)slopes[h];
            const real *base = qkv + (size_t)b * T * C3;
            gather_t(kt, base + HD + h * D, T, C3, D);
            for (int t = 0; t < T; t++) {
                row_scores(s, base + (size_t)t * C3 + h * D, kt, t + 1, T, D);
                real f = qscale ? scale * qscale[((size_t)b * T + t) * H + h] : scale;
                for (int j = 0; j <= t; j++) s[j] = s[j] * f + m * (real)(j - t);
                real *p = att + ((size_t)bh * T + t) * T;
                KFN(norm_row_forward)(p, s, t + 1, row, alpha);
                for (int j = t + 1; j < T; j++) p[j] = 0;
                real *o = out + ((size_t)b * T + t) * HD + h * D;
#if !defined(LCG_F64)
                if (D == 16) {
                    v16f ov = {0};
                    for (int j = 0; j <= t; j++)
                        if (p[j] != 0) ov += p[j] * V16C(base + (size_t)j * C3 + 2 * HD + h * D);
                    V16(o) = ov;
                    continue;
                }
#endif
                for (int d = 0; d < D; d++) o[d] = 0;
                for (int j = 0; j <= t; j++) {
                    if (p[j] == 0) continue;
                    const real *v = base + (size_t)j * C3 + 2 * HD + h * D;
                    for (int d = 0; d < D; d++) o[d] += p[j] * v[d];
                }
            }
        }
        lcg_free(s);
        lcg_free(kt);
    }
}

void KFN(attention_backward)(real *dqkv, real *dqscale, const real *dout, const real *qkv,
                             const real *qscale, const real *att, const float *slopes, int row,
                             double alpha, int B, int T, int H, int D) {
    (void)slopes; /* the ALiBi bias is constant: no gradient */
    int HD = H * D, C3 = 3 * HD;
    real scale = (real)(1.0 / sqrt((double)D));
#pragma omp parallel
    {
        real *dp = LCG_NEW(real, T), *ds = LCG_NEW(real, T), *vt = LCG_NEW(real, (size_t)D * T);
        real *u = LCG_NEW(real, D);
#pragma omp for schedule(static)
        for (int bh = 0; bh < B * H; bh++) {
            int b = bh / H, h = bh % H;
            const real *base = qkv + (size_t)b * T * C3;
            real *dbase = dqkv + (size_t)b * T * C3;
            gather_t(vt, base + 2 * HD + h * D, T, C3, D);
            for (int t = 0; t < T; t++) {
                const real *p = att + ((size_t)bh * T + t) * T;
                const real *g = dout + ((size_t)b * T + t) * HD + h * D;
                row_scores(dp, g, vt, t + 1, T, D); /* dp_j = g . v_j */
#if !defined(LCG_F64)
                if (D == 16) {
                    v16f gv = V16C(g);
                    for (int j = 0; j <= t; j++)
                        if (p[j] != 0) {
                            real *dv = dbase + (size_t)j * C3 + 2 * HD + h * D;
                            V16(dv) = V16C(dv) + p[j] * gv;
                        }
                }
#endif
                for (int j = 0; D != 16 && j <= t; j++) {
                    if (p[j] == 0) continue;
                    real *dv = dbase + (size_t)j * C3 + 2 * HD + h * D;
                    for (int d = 0; d < D; d++) dv[d] += p[j] * g[d];
                }
                KFN(norm_row_backward)(ds, p, dp, t + 1, row, alpha);
                /* s_tj = f * q_t.k_j + bias, f = scale * c_t:  dq_t = f * u, dk_j += f * ds_j q_t,
                 * dc_t = scale * q_t.u, with u = sum_j ds_j k_j */
                size_t ci = ((size_t)b * T + t) * H + h;
                real f = qscale ? scale * qscale[ci] : scale;
                const real *q = base + (size_t)t * C3 + h * D;
                real *dq = dbase + (size_t)t * C3 + h * D;
#if !defined(LCG_F64)
                if (D == 16) {
                    v16f uv = {0}, qv = V16C(q);
                    for (int j = 0; j <= t; j++) {
                        if (ds[j] == 0) continue;
                        const real *k = base + (size_t)j * C3 + HD + h * D;
                        real *dk = dbase + (size_t)j * C3 + HD + h * D;
                        real w = ds[j] * f;
                        uv += ds[j] * V16C(k);
                        V16(dk) = V16C(dk) + w * qv;
                    }
                    V16(dq) = V16C(dq) + f * uv;
                    if (qscale && dqscale) {
                        /* dot's products rounded, then summed in order (GCC vectorizes the
                         * multiplies of dot's loop and adds in order: no FMA there) */
                        v16f pr = qv * uv;
                        ATT_NO_CONTRACT(pr);
                        real sd = 0;
                        for (int d = 0; d < 16; d++) sd += pr[d];
                        dqscale[ci] += scale * sd;
                    }
                    continue;
                }
#endif
                for (int d = 0; d < D; d++) u[d] = 0;
                for (int j = 0; j <= t; j++) {
                    if (ds[j] == 0) continue;
                    const real *k = base + (size_t)j * C3 + HD + h * D;
                    real *dk = dbase + (size_t)j * C3 + HD + h * D;
                    real w = ds[j] * f;
                    for (int d = 0; d < D; d++) {
                        u[d] += ds[j] * k[d];
                        dk[d] += w * q[d];
                    }
                }
                for (int d = 0; d < D; d++) dq[d] += f * u[d];
                if (qscale && dqscale) dqscale[ci] += scale * dot(q, u, D);
            }
        }
        lcg_free(dp);
        lcg_free(ds);
        lcg_free(vt);
        lcg_free(u);
    }
}
