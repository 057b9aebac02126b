/*
 * attention.c: the attention normalizers (one row of scores -> weights, forward and backward)
 * and causal multi-head attention for training, where the T x T block is short and kept for
 * the backward pass. Evaluation never comes here: model/infer.c scores one query row at a time
 * against the KV cache with the same row normalizers, in O(n) memory.
 *
 * Adding a row function: its kernels and an entry in registry.c's row table (norm_row_forward/
 * backward dispatch through it). The entmax/sparsemax row math lives in entmax.c.
 */
#include "kernels.h"
#include "real.h"
#include "simd.h"
#include "util.h"

#include <math.h>
#include <stdlib.h>

/* ---- softmax ------------------------------------------------------------------------------ */
void KFN(softmax_row)(real *p, const real *s, int n, double alpha) {
    (void)alpha;
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
void KFN(softmax_row_backward)(real *ds, const real *p, const real *dp, int n, double alpha) {
    (void)alpha;
    double dot = 0;
    for (int j = 0; j < n; j++) dot += (double)p[j] * dp[j];
    for (int j = 0; j < n; j++) ds[j] = p[j] * (dp[j] - (real)dot);
}

#ifdef LCG_F64
#define ROW_FWD fwd_f64
#define ROW_BWD bwd_f64
#define ROW_BWD_S bwd_s_f64
#else
#define ROW_FWD fwd
#define ROW_BWD bwd
#define ROW_BWD_S bwd_s
#endif

void KFN(norm_row_forward)(real *p, const real *s, int n, int row, double alpha) {
    const lcg_row_fn *r = lcg_row_at(row);
    r->ROW_FWD(p, s, n, lcg_row_alpha(r, alpha));
}

void KFN(norm_row_backward)(real *ds, const real *p, const real *dp, int n, int row,
                            double alpha) {
    const lcg_row_fn *r = lcg_row_at(row);
    if (!r->ROW_BWD) lcg_die("row function %s needs the scores in its backward", r->name);
    r->ROW_BWD(ds, p, dp, n, lcg_row_alpha(r, alpha));
}

void KFN(norm_row_backward_s)(real *ds, const real *p, const real *dp, const real *s, int n, int row,
                              double alpha) {
    const lcg_row_fn *r = lcg_row_at(row);
    if (r->ROW_BWD_S) r->ROW_BWD_S(ds, p, dp, s, n, lcg_row_alpha(r, alpha));
    else r->ROW_BWD(ds, p, dp, n, lcg_row_alpha(r, alpha));
}

/* ---- causal attention over a materialized block --------------------------------------------
 * Per (batch, head) the keys (forward) or values (backward) are first gathered transposed,
 * xt[d][j], so a row of scores is D vectorizable sweeps over j; each score still sums d in
 * order 0..D-1, as the decoder does. */
/* rows per block of the float D = 16 path: the chains of different rows are independent, so a
 * block's rows run side by side and hide the FMA latency that one row's chain over keys exposes */
enum { ATT_RB = 4 };
#if !defined(LCG_F64)
int lcg_attention_fast = 1;

/* D = 16 in the float build: a head's vector is ATT_NV native vectors of ATT_VW floats (one zmm
 * with AVX-512, two ymm with AVX2, four xmm otherwise), kept in registers across the loops over
 * keys; each element gets the same FMA chain as the plain loops below, whatever the width */
#if defined(__AVX512F__)
#define ATT_VW 16
#elif defined(__AVX__)
#define ATT_VW 8
#else
#define ATT_VW 4
#endif
/* ATT_SB: score vectors per block of keys, as many accumulators as leave room for the loads
 * (4 zmm, 8 ymm: 64 keys; 8 xmm: 32 keys) */
enum { ATT_NV = 16 / ATT_VW, ATT_SB = ATT_VW == 4 ? 8 : 64 / ATT_VW, ATT_KB = ATT_SB * ATT_VW };
typedef float vatt __attribute__((vector_size(4 * ATT_VW)));
typedef float vattu __attribute__((vector_size(4 * ATT_VW), aligned(4), may_alias)); /* unaligned access */
#define VA(p) (*(vattu *)(p))
#define VAC(p) (*(const vattu *)(p))
/* an empty asm: x is rounded before use (kept in a register where the ISA's constraint is known) */
#if defined(__GNUC__) && defined(__AVX512F__)
#define ATT_NO_CONTRACT(x) __asm__("" : "+v"(x))
#elif defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__)) && defined(__SSE2__)
#define ATT_NO_CONTRACT(x) __asm__("" : "+x"(x))
#elif defined(__GNUC__) && defined(__aarch64__)
#define ATT_NO_CONTRACT(x) __asm__("" : "+w"(x))
#else
#define ATT_NO_CONTRACT(x) __asm__("" : "+m"(x)) /* the same, through memory */
#endif

/* s[j] = sum_d x[d][j] q[d] for j < n (xt: D = 16 rows of stride T, readable ATT_VW - 1 floats
 * past n): up to ATT_SB vectors of scores held in registers across d, each the chain over
 * d = 0..15 that row_scores runs through memory */
static inline __attribute__((always_inline)) void scores16_nv(float *restrict s, const float *restrict q,
                                                              const float *restrict xt, int T, int nv) {
    vatt acc[ATT_SB];
    for (int v = 0; v < nv; v++) acc[v] = (vatt){0};
    for (int d = 0; d < 16; d++) {
        float qd = q[d];
        for (int v = 0; v < nv; v++) acc[v] += qd * VAC(xt + (size_t)d * T + ATT_VW * v);
    }
    for (int v = 0; v < nv; v++) VA(s + ATT_VW * v) = acc[v];
}

#define ATT_SCORES_CASE(k)                                                                         \
    case k: scores16_nv(s + j0, q, xt + j0, T, k < ATT_SB ? k : ATT_SB); break;
static void row_scores16(float *restrict s, const float *restrict q, const float *restrict xt, int n, int T) {
    for (int j0 = 0; j0 < n; j0 += ATT_KB) {
        int nv = (n - j0 + ATT_VW - 1) / ATT_VW;
        switch (nv) { /* a constant per case */
            ATT_SCORES_CASE(1)
            ATT_SCORES_CASE(2)
            ATT_SCORES_CASE(3)
#if ATT_VW < 16
            ATT_SCORES_CASE(4)
            ATT_SCORES_CASE(5)
            ATT_SCORES_CASE(6)
            ATT_SCORES_CASE(7)
#endif
        default: scores16_nv(s + j0, q, xt + j0, T, ATT_SB);
        }
    }
}

/* o_t = sum_j p_tj v_j for the nr <= ATT_RB rows t0.. of one head (p: their weight rows, row
 * stride T, zero past the diagonal; v_j at v + j * vs; o_t at o + (t - t0) * os): each row the
 * chain over j = 0..t of the plain loop, zero weights skipped, the rows side by side */
static void av_rows16(float *restrict o, size_t os, const float *restrict p, int T, const float *restrict v, size_t vs,
                      int t0, int nr) {
    vatt acc[ATT_RB][ATT_NV];
    for (int i = 0; i < ATT_RB; i++)
        for (int w = 0; w < ATT_NV; w++) acc[i][w] = (vatt){0};
    for (int j = 0; j < t0 + nr; j++) {
        vatt vj[ATT_NV];
        for (int w = 0; w < ATT_NV; w++) vj[w] = VAC(v + (size_t)j * vs + ATT_VW * w);
        for (int i = 0; i < ATT_RB; i++) {
            float pj = i < nr ? p[(size_t)i * T + j] : 0;
            if (pj != 0)
                for (int w = 0; w < ATT_NV; w++) acc[i][w] += pj * vj[w];
        }
    }
    for (int i = 0; i < nr; i++)
        for (int w = 0; w < ATT_NV; w++) VA(o + (size_t)i * os + ATT_VW * w) = acc[i][w];
}

/* the query and key gradients of the nr <= ATT_RB rows t0.. of head h of batch row b, from
 * their score gradients ds (rows of stride T): per row t, u = sum_j ds_tj k_j (the chain over
 * j = 0..t, zeros skipped), dq_t += f_t u, dc_t += scale q_t.u, and dk_j += (ds_tj f_t) q_t
 * over the rows in order, as attention_backward's plain loops do row by row */
static void dqk_rows16(float *restrict dbase, const float *restrict base, const float *restrict ds, const float *qscale,
                       float *dqscale, float scale, int b, int h, int t0, int nr, int T, int H) {
    int HD = H * 16;
    size_t C3 = 3 * (size_t)HD;
    vatt uv[ATT_RB][ATT_NV], qv[ATT_RB][ATT_NV];
    float f[ATT_RB];
    for (int i = 0; i < ATT_RB; i++) {
        int t = t0 + (i < nr ? i : 0);
        for (int w = 0; w < ATT_NV; w++) {
            uv[i][w] = (vatt){0};
            qv[i][w] = VAC(base + (size_t)t * C3 + h * 16 + ATT_VW * w);
        }
        f[i] = qscale ? scale * qscale[((size_t)b * T + t) * H + h] : scale;
    }
    for (int j = 0; j < t0 + nr; j++) {
        const float *k = base + (size_t)j * C3 + HD + h * 16;
        float *dk = dbase + (size_t)j * C3 + HD + h * 16;
        vatt kv[ATT_NV], dkv[ATT_NV];
        for (int w = 0; w < ATT_NV; w++) kv[w] = VAC(k + ATT_VW * w), dkv[w] = VAC(dk + ATT_VW * w);
        for (int i = 0; i < ATT_RB; i++) {
            float dsj = i < nr && j <= t0 + i ? ds[(size_t)i * T + j] : 0;
            if (dsj == 0) continue;
            float w = dsj * f[i];
            for (int x = 0; x < ATT_NV; x++) {
                uv[i][x] += dsj * kv[x];
                dkv[x] += w * qv[i][x];
            }
        }
        for (int w = 0; w < ATT_NV; w++) VA(dk + ATT_VW * w) = dkv[w];
    }
    for (int i = 0; i < nr; i++) {
        size_t ci = ((size_t)b * T + t0 + i) * H + h;
        float *dq = dbase + (size_t)(t0 + i) * C3 + h * 16;
        for (int w = 0; w < ATT_NV; w++) VA(dq + ATT_VW * w) = VAC(dq + ATT_VW * w) + f[i] * uv[i][w];
        if (qscale && dqscale) {
            /* dot's products rounded, then summed in order (GCC vectorizes the multiplies of
             * dot's loop and adds in order: no FMA there) */
            float sd = 0;
            for (int w = 0; w < ATT_NV; w++) {
                vatt pr = qv[i][w] * uv[i][w];
                ATT_NO_CONTRACT(pr);
                for (int d = 0; d < ATT_VW; d++) sd += pr[d];
            }
            dqscale[ci] += scale * sd;
        }
    }
}
#endif

/* the products rounded, then summed in order: no FMA, whatever the compiler and the vector
 * width (GCC had vectorized the multiplies but fused the scalar tail's, which depends on the
 * ISA; clang fused them all, unlike dqk_rows16) */
#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__)) && defined(__SSE2__)
#define DOT_ROUNDED(x) __asm__("" : "+x"(x))
#elif defined(__GNUC__) && defined(__aarch64__)
#define DOT_ROUNDED(x) __asm__("" : "+w"(x))
#else
#define DOT_ROUNDED(x) __asm__("" : "+m"(x))
#endif
static real dot(const real *a, const real *b, int n) {
    real s = 0;
    for (int i = 0; i < n; i++) {
        real p = a[i] * b[i];
        DOT_ROUNDED(p);
        s += p;
    }
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
#if !defined(LCG_F64)
    int fast = D == 16 && lcg_attention_fast;
#endif
#pragma omp parallel
    {
        /* padded by 16: row_scores16 reads and writes whole vectors */
        real *s = LCG_NEW(real, T + 16), *kt = LCG_NEW(real, (size_t)D * T + 16);
#pragma omp for schedule(static)
        for (int bh = 0; bh < B * H; bh++) {
            int b = bh / H, h = bh % H;
            real m = (real)slopes[h];
            const real *base = qkv + (size_t)b * T * C3;
            gather_t(kt, base + HD + h * D, T, C3, D);
            for (int t = 0; t < T; t++) {
#if !defined(LCG_F64)
                if (fast) row_scores16(s, base + (size_t)t * C3 + h * D, kt, t + 1, T);
                else
#endif
                    row_scores(s, base + (size_t)t * C3 + h * D, kt, t + 1, T, D);
                real f = qscale ? scale * qscale[((size_t)b * T + t) * H + h] : scale;
                for (int j = 0; j <= t; j++) s[j] = s[j] * f + m * (real)(j - t);
                real *p = att + ((size_t)bh * T + t) * T;
                KFN(norm_row_forward)(p, s, t + 1, row, alpha);
                for (int j = t + 1; j < T; j++) p[j] = 0;
                real *o = out + ((size_t)b * T + t) * HD + h * D;
#if !defined(LCG_F64)
                if (fast) { /* after each block of ATT_RB rows, or the last row */
                    int t0 = t - t % ATT_RB;
                    if (t % ATT_RB == ATT_RB - 1 || t == T - 1)
                        av_rows16(out + ((size_t)b * T + t0) * HD + h * D, (size_t)HD, att + ((size_t)bh * T + t0) * T, T,
                                  base + 2 * HD + h * D, (size_t)C3, t0, t - t0 + 1);
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
    /* the ALiBi bias is constant: no gradient (slopes only rebuild scores for need_s rows) */
    int HD = H * D, C3 = 3 * HD;
    real scale = (real)(1.0 / sqrt((double)D));
#if !defined(LCG_F64)
    int fast = D == 16 && lcg_attention_fast;
#endif
    /* rows whose backward needs the scores: recomputed as the forward computed them */
    int need_s = lcg_row_at(row)->ROW_BWD_S != NULL;
#pragma omp parallel
    {
        /* padded by 16 for row_scores16; ds holds a block of ATT_RB rows */
        real *dp = LCG_NEW(real, T + 16), *ds = LCG_NEW(real, (size_t)ATT_RB * T), *vt = LCG_NEW(real, (size_t)D * T + 16);
        real *u = LCG_NEW(real, D);
        real *s = need_s ? LCG_NEW(real, T + 16) : NULL, *kt = need_s ? LCG_NEW(real, (size_t)D * T + 16) : NULL;
#pragma omp for schedule(static)
        for (int bh = 0; bh < B * H; bh++) {
            int b = bh / H, h = bh % H;
            const real *base = qkv + (size_t)b * T * C3;
            real *dbase = dqkv + (size_t)b * T * C3;
            gather_t(vt, base + 2 * HD + h * D, T, C3, D);
            if (need_s) gather_t(kt, base + HD + h * D, T, C3, D);
            for (int t = 0; t < T; t++) {
                const real *p = att + ((size_t)bh * T + t) * T;
                const real *g = dout + ((size_t)b * T + t) * HD + h * D;
                if (need_s) { /* the forward's scores of row t, the same code */
#if !defined(LCG_F64)
                    if (fast) row_scores16(s, base + (size_t)t * C3 + h * D, kt, t + 1, T);
                    else
#endif
                        row_scores(s, base + (size_t)t * C3 + h * D, kt, t + 1, T, D);
                    real fs = qscale ? scale * qscale[((size_t)b * T + t) * H + h] : scale, m = (real)slopes[h];
                    for (int j = 0; j <= t; j++) s[j] = s[j] * fs + m * (real)(j - t);
                }
#if !defined(LCG_F64)
                if (fast) {
                    row_scores16(dp, g, vt, t + 1, T); /* dp_j = g . v_j */
                    vatt gv[ATT_NV];
                    for (int w = 0; w < ATT_NV; w++) gv[w] = VAC(g + ATT_VW * w);
                    for (int j = 0; j <= t; j++)
                        if (p[j] != 0) {
                            real *dv = dbase + (size_t)j * C3 + 2 * HD + h * D;
                            for (int w = 0; w < ATT_NV; w++) VA(dv + ATT_VW * w) = VAC(dv + ATT_VW * w) + p[j] * gv[w];
                        }
                    /* ds of the block's rows; q and k gradients after each block of ATT_RB rows */
                    int t0 = t - t % ATT_RB;
                    KFN(norm_row_backward_s)(ds + (size_t)(t - t0) * T, p, dp, s, t + 1, row, alpha);
                    if (t % ATT_RB == ATT_RB - 1 || t == T - 1)
                        dqk_rows16(dbase, base, ds, qscale, dqscale, scale, b, h, t0, t - t0 + 1, T, H);
                    continue;
                }
#endif
                row_scores(dp, g, vt, t + 1, T, D); /* dp_j = g . v_j */
                for (int j = 0; j <= t; j++) {
                    if (p[j] == 0) continue;
                    real *dv = dbase + (size_t)j * C3 + 2 * HD + h * D;
                    for (int d = 0; d < D; d++) dv[d] += p[j] * g[d];
                }
                KFN(norm_row_backward_s)(ds, p, dp, s, t + 1, row, alpha);
                /* s_tj = f * q_t.k_j + bias, f = scale * c_t:  dq_t = f * u, dk_j += f * ds_j q_t,
                 * dc_t = scale * q_t.u, with u = sum_j ds_j k_j */
                size_t ci = ((size_t)b * T + t) * H + h;
                real f = qscale ? scale * qscale[ci] : scale;
                const real *q = base + (size_t)t * C3 + h * D;
                real *dq = dbase + (size_t)t * C3 + h * D;
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
        lcg_free(s);
        lcg_free(kt);
    }
}
