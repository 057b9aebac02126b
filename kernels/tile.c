/*
 * tile.c: the tile kernels of the evaluation's blocked attention (tile.h): scores of a few query
 * rows against one key tile (register-tiled with GCC vectors: with AVX-512 a register tile is
 * 4 rows x 64 keys in 16 accumulators), the tile's row maxima, exp and A.V; and the plain score
 * row they reproduce bit for bit (each score the same chain of FMAs over e = 0..D-1 from 0, then
 * * f, + the ALiBi bias). The prefill (model/prefill.c) streams the tiles; nothing here knows
 * of rows beyond one tile, of caches or of models.
 */
#include "tile.h"
#include "fastexp.h"
#include "simd.h"

#include <float.h>
#ifdef __AVX512F__
#include <immintrin.h>
#endif
#include <stdint.h>
#include <string.h>

enum { TK = LCG_KEY_TILE, RG = LCG_TILE_RG, AG = LCG_TILE_AG };

void tile_row_scores(float *restrict s, const float *restrict q, const float *restrict kt,
                        size_t ldk, int n, int D, int i, float f, float slope) {
    for (int j = 0; j < n; j++) s[j] = 0;
    for (int e = 0; e < D; e++) {
        const float *k = kt + (size_t)e * ldk;
        float qe = q[e];
        for (int j = 0; j < n; j++) s[j] += qe * k[j];
    }
    if (slope == 0) { /* no ALiBi on this head */
        for (int j = 0; j < n; j++) s[j] *= f;
        return;
    }
    /* s[j] * f is rounded (stored, and the empty asm makes the compiler take it from memory)
     * before slope * (j - i) is added: with -ffp-contract=fast the compiler could otherwise fuse
     * either product into the add, and pick differently here and in the tiles below at other
     * -march levels (an x86-64-v3 build's prefill then differed from its decoder) */
    for (int j = 0; j < n; j++) s[j] *= f;
    __asm__ volatile("" : : "r"(s) : "memory");
    for (int j = 0; j < n; j++) s[j] += slope * (float)(j - i);
}

/* s[c] = e^(s[c] - M), c < TK (s[c] <= M), with s[c] - M clamped at -87. The clamp works on
 * the bits of M - s[c] >= 0 (monotone as integers): GCC 12 vectorizes that, but not a float
 * compare-and-select ahead of lcg_exp_nonpos's float-to-int conversion. NaN becomes -87 here; the
 * caller flags non-finite scores itself (tile_max). */
void tile_exp(float *restrict s, float M) {
    for (int c = 0; c < TK; c++) {
        union {
            float f;
            int32_t i;
        } a = {.f = M - s[c]};
        a.i = a.i < 0x42ae0000 ? a.i : 0x42ae0000; /* 87.0f */
        s[c] = lcg_exp_nonpos(-a.f);
    }
}

/* st[r][c] = f[r] * q_r . k_(j0+c) + slope * (j0 + c - (i0 + r)) for r < nr, c < TK: rows in
 * register tiles of RG, each score summed over e = 0..D-1 in order from 0 (tile_row_scores'
 * order, so the values are bitwise the same) */
void tile_scores(float *restrict st /* nr, TK */, const float *restrict q /* nr, ldq */, int ldq,
                       const float *restrict kt /* D, ldk (at j0) */, size_t ldk, int nr, int D,
                       const float *f /* nr */, float slope, int i0, int j0) {
    for (int r0 = 0; r0 < nr; r0 += RG) {
        int g = nr - r0 < RG ? nr - r0 : RG;
        float acc[RG][TK];
        for (int r = 0; r < RG; r++)
            for (int c = 0; c < TK; c++) acc[r][c] = 0;
        if (g == RG) {
            for (int e = 0; e < D; e++) {
                const float *k = kt + (size_t)e * ldk;
                float a0 = q[(size_t)(r0 + 0) * ldq + e], a1 = q[(size_t)(r0 + 1) * ldq + e];
                float a2 = q[(size_t)(r0 + 2) * ldq + e], a3 = q[(size_t)(r0 + 3) * ldq + e];
                for (int c = 0; c < TK; c++) {
                    acc[0][c] += a0 * k[c];
                    acc[1][c] += a1 * k[c];
                    acc[2][c] += a2 * k[c];
                    acc[3][c] += a3 * k[c];
                }
            }
        } else {
            for (int e = 0; e < D; e++) {
                const float *k = kt + (size_t)e * ldk;
                for (int r = 0; r < g; r++) {
                    float a = q[(size_t)(r0 + r) * ldq + e];
                    for (int c = 0; c < TK; c++) acc[r][c] += a * k[c];
                }
            }
        }
        for (int r = 0; r < g; r++) {
            int i = i0 + r0 + r;
            float fr = f[r0 + r], *out = st + (size_t)(r0 + r) * TK;
            if (slope == 0) /* no ALiBi on this head: as tile_row_scores, no bias at all */
                for (int c = 0; c < TK; c++) out[c] = acc[r][c] * fr;
            else { /* the product rounded before the bias, as tile_row_scores */
                for (int c = 0; c < TK; c++) out[c] = acc[r][c] * fr;
                __asm__ volatile("" : : "r"(out) : "memory");
                for (int c = 0; c < TK; c++) out[c] += slope * (float)(j0 + c - i);
            }
        }
    }
}

/* ---- the register-tiled score kernel for tiles every row sees whole ---------------------------
 * tile_scores_full: as tile_scores followed by tile_max on each row, in one pass, for a tile with
 * j0 + TK - 1 <= i0 (no causal mask inside it) and rows in groups of RG. GCC vectors of 16
 * floats: with AVX-512 a register tile is RG rows x 64 keys (16 accumulators), else RG rows x
 * 16 keys; each score is the same chain of FMAs over e = 0..D-1 from 0, then * f (+ the ALiBi
 * bias), as tile_scores, so the bits are the same. The maximum keeps tile_max's lane blocking
 * (lane k sees keys c = k mod 16 in order, then lanes 0..15 in order) and its NaN/inf flag comes
 * from s * 0 summed (NaN iff some s is not finite). */
#ifdef __AVX512F__
enum { KCV = 4 }; /* 16-float vectors per row in one register tile */
#else
enum { KCV = 1 };
#endif

/* keeps a vector in a register (an empty asm): else GCC folds each key load into all RG FMAs
 * that use it, twice the loads */
#if defined(__GNUC__) && defined(__AVX512F__) /* a v16f fits one register */
#define PF_IN_REG(x) __asm__("" : "+v"(x))
#else
#define PF_IN_REG(x) (void)0
#endif
/* x is a rounded value the compiler may not fuse into a later add (an FMA): in a register with
 * AVX-512, else through memory (a v16f is wider than an AVX2 register) */
#if defined(__GNUC__) && defined(__AVX512F__)
#define PF_ROUNDED(x) __asm__("" : "+v"(x))
#else
#define PF_ROUNDED(x) __asm__("" : "+m"(x))
#endif

void tile_scores_full(float *restrict st /* nr, TK */, const float *restrict q, int ldq,
                            const float *restrict kt /* D, ldk (at j0) */, size_t ldk, int nr, int D, const float *f, float slope,
                            int i0, int j0, float *tmax /* nr */, int *bad /* nr, |= */) {
    const v16f lane = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}, zero = {0};
    for (int r0 = 0; r0 < nr; r0 += RG) {
        v16f mx[RG], chk[RG];
        for (int r = 0; r < RG; r++) mx[r] = zero - FLT_MAX, chk[r] = zero;
        for (int cv = 0; cv < TK / 16; cv += KCV) {
            v16f acc[RG][KCV];
            for (int r = 0; r < RG; r++)
                for (int v = 0; v < KCV; v++) acc[r][v] = zero;
            for (int e = 0; e < D; e++) {
                const float *k = kt + (size_t)e * ldk + 16 * cv; /* kt is at key j0 */
                v16f kv[KCV];
                for (int v = 0; v < KCV; v++) {
                    kv[v] = v16_load(k + 16 * v);
                    PF_IN_REG(kv[v]);
                }
                for (int r = 0; r < RG; r++) {
                    v16f a = zero + q[(size_t)(r0 + r) * ldq + e]; /* broadcast */
                    PF_IN_REG(a);
                    for (int v = 0; v < KCV; v++) acc[r][v] += a * kv[v];
                }
            }
            for (int r = 0; r < RG; r++) {
                float fr = f[r0 + r];
                for (int v = 0; v < KCV; v++) {
                    v16f sv;
                    if (slope == 0)
                        sv = acc[r][v] * fr;
                    else { /* the product rounded before the bias, as tile_row_scores */
                        v16f p = acc[r][v] * fr;
                        PF_ROUNDED(p);
                        sv = p + slope * ((float)(j0 + 16 * (cv + v) - (i0 + r0 + r)) + lane);
                    }
                    memcpy(st + (size_t)(r0 + r) * TK + 16 * (cv + v), &sv, sizeof sv);
#ifdef __AVX512F__ /* vmaxps returns its second operand on ties and NaN: sv > mx ? sv : mx */
                    mx[r] = (v16f)_mm512_max_ps((__m512)sv, (__m512)mx[r]);
#else
                    v16i gt = sv > mx[r];
                    mx[r] = (v16f)(((v16i)sv & gt) | ((v16i)mx[r] & ~gt));
#endif
                    chk[r] += sv * zero;
                }
            }
        }
        for (int r = 0; r < RG; r++) {
            float m = mx[r][0];
            int nf = 0;
            for (int k = 0; k < 16; k++) {
                m = mx[r][k] > m ? mx[r][k] : m;
                nf |= chk[r][k] != chk[r][k];
            }
            tmax[r0 + r] = m, bad[r0 + r] |= nf;
        }
    }
}

/* max of s[TK] (lane-blocked, so it vectorizes without reassociation); *bad |= any NaN/inf */
float tile_max(const float *restrict s, int *bad) {
    enum { LN = 16 };
    float mx[LN];
    int nf[LN];
    for (int k = 0; k < LN; k++) mx[k] = -FLT_MAX, nf[k] = 0;
    for (int c = 0; c < TK; c += LN)
        for (int k = 0; k < LN; k++) {
            float v = s[c + k];
            mx[k] = v > mx[k] ? v : mx[k];
            nf[k] |= !(v - v == 0);
        }
    float m = mx[0];
    for (int k = 0; k < LN; k++) {
        m = mx[k] > m ? mx[k] : m;
        *bad |= nf[k];
    }
    return m;
}

/* o[g][D] += p[g][c] v_(j0+c) over c < nk (softmax A.V of one tile) */
void tile_av(float *restrict o /* g, D */, const float *restrict p /* g, TK */,
                           const float *restrict v /* nk, ldv */, int ldv, int g, int nk, int D) {
    if (g == AG && D == 16) {
        float acc[AG][16];
        for (int r = 0; r < AG; r++)
            for (int e = 0; e < 16; e++) acc[r][e] = o[r * 16 + e];
        for (int c = 0; c < nk; c++) {
            const float *vr = v + (size_t)c * ldv;
            for (int r = 0; r < AG; r++) {
                float pr = p[r * TK + c];
                for (int e = 0; e < 16; e++) acc[r][e] += pr * vr[e];
            }
        }
        for (int r = 0; r < AG; r++)
            for (int e = 0; e < 16; e++) o[r * 16 + e] = acc[r][e];
        return;
    }
    for (int c = 0; c < nk; c++) {
        const float *vr = v + (size_t)c * ldv;
        for (int r = 0; r < g; r++) {
            float pr = p[r * TK + c];
            for (int e = 0; e < D; e++) o[r * D + e] += pr * vr[e];
        }
    }
}

