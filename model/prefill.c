/*
 * prefill.c: decoder_prefill (infer.h), a whole known sequence through the KV-cache decoder in
 * one blocked pass, layer by layer:
 *
 *   1. projections: for chunks of rows, norm -> q|k|v (one matmul over the chunk) -> RoPE and
 *      the length scale per row; keys go to the transposed cache, values to the cache, queries
 *      to qa. The matmul sums every output element in the same order whatever the row count,
 *      so these are bitwise the values decoder_step computes.
 *   2. attention: independent tasks of (block of LCG_QUERY_BLOCK query rows, head), longest
 *      first, in parallel when called outside a parallel region. A task streams the causal key
 *      tiles (LCG_KEY_TILE keys, newest first) through a register-tiled score kernel
 *      (score_tile_full: 4 query rows x 64 keys in 16 vector accumulators with AVX-512, the
 *      tile's row maxima fused in; score_tile on the diagonal tile; each score summed over e in
 *      order, as decoder_row_scores does), and:
 *        softmax family: online softmax (running max and sum, rescaled when the max grows),
 *          A.V accumulated tile by tile; never a full score row.
 *        entmax family: only keys above a running safe lower bound of tau are kept (es_*): the
 *          max bound M - 1/(alpha-1) and the top-8 bound while the tiles stream, raised by a few
 *          Newton steps from below on the kept candidates whenever their number doubles (tau
 *          of any subset is a lower bound, spec §1.2, §5.2). Tiles whose maximum is below the
 *          bound are skipped after the fused max. The threshold is solved on the survivors by
 *          entmax_support_solve, whose result does not depend on which keys below tau it is
 *          given, and A.V is summed over the support in key order: bitwise decoder_step's
 *          result (decoder_step uses the same solve on its unpruned row).
 *      Attention diagnostics on the requested rows: from the support (entmax), or from the
 *      row recomputed the reference way (softmax; only those rows).
 *   3. output projection, norms, FFN per chunk; then the LM head on the requested rows.
 *
 * Memory: the cache, qa/aa/xa (n x C each), and per thread a score tile plus candidate space
 * of LCG_QUERY_BLOCK x n (touched only as far as used). Not here: batching several sequences,
 * and the backward pass (evaluation only).
 */
#include "../kernels/fastexp.h"
#include "infer.h"
#include "../kernels/util.h"

#include <float.h>
#ifdef __AVX512F__
#include <immintrin.h>
#endif
#include <math.h>
#include <stdlib.h>
#include <string.h>

enum { BQ = LCG_QUERY_BLOCK, TK = LCG_KEY_TILE, RG = 4, AG = 8 };


/* s[c] = e^(s[c] - M), c < TK (s[c] <= M), with s[c] - M clamped at -87. The clamp works on
 * the bits of M - s[c] >= 0 (monotone as integers): GCC 12 vectorizes that, but not a float
 * compare-and-select ahead of lcg_exp_nonpos's float-to-int conversion. NaN becomes -87 here; the
 * caller flags non-finite scores itself (tile_max). */
static void exp_tile(float *restrict s, float M) {
    for (int c = 0; c < TK; c++) {
        union {
            float f;
            int32_t i;
        } a = {.f = M - s[c]};
        a.i = a.i < 0x42ae0000 ? a.i : 0x42ae0000; /* 87.0f */
        s[c] = lcg_exp_nonpos(-a.f);
    }
}

/* ---- the entmax family's streaming bound on tau (spec §1.2, §5.2) ---------------------------
 * Per query row, while its key tiles stream by: the running max M and the largest scores seen
 * (top[], descending, at most ES_TOP). With x = (alpha-1)(s - M_final), tau >= -1 (the max
 * alone) and tau >= m_k - k^(1-alpha) for the k-th largest x (the top k alone), so in score
 * units every key with s <= max(M - 1/(alpha-1), max_k(top_k - k^(1-alpha)/(alpha-1))) has zero
 * weight: the running M and top_k never exceed their final values, so the bound only ever
 * lies below the final one. thr is that bound less a margin that covers float rounding; keys
 * at or below it are never kept. Why the result stays bitwise entmax_row's: entmax_cand_solve
 * first prunes to the keys above its own top-8 bound lb (the same formula over the final top 8,
 * in double), and every key dropped here is at or below lb. The top-8 keys that define lb
 * are above it, so they are kept, and lb computed on the kept keys is the same number; the
 * keys above lb are the same, in the same (key) order: the same solve, the same bits. */
_Static_assert(LCG_KEY_TILE == 64, "es_scan keeps a tile's keys in one 64-bit mask");
enum { ES_TOP = 8, ES_CAP0 = 128, ES_NEWTON = 12 };
typedef struct {
    double w[ES_TOP + 1]; /* w[k] = k^(1-alpha) / (alpha-1), k >= 1 */
} es_consts;

typedef struct {
    float M, thr;       /* running max; keys with s <= thr are provably zero */
    float top[ES_TOP];  /* largest scores above thr seen so far, descending */
    int nt, cap, cap0;  /* top's size; candidates kept before the next es_tighten, its least */
} es_row;

static void es_consts_init(es_consts *k, double alpha) {
    for (int i = 1; i <= ES_TOP; i++) k->w[i] = pow((double)i, 1.0 - alpha) / (alpha - 1.0);
}

static inline void es_init(es_row *e, int cap0) {
    e->M = -INFINITY, e->thr = -INFINITY, e->nt = 0, e->cap = e->cap0 = cap0;
}

static void es_bound(es_row *e, const es_consts *k) {
    double M = e->M, b = M - k->w[1];
    for (int i = 2; i <= e->nt; i++) {
        double t = (double)e->top[i - 1] - k->w[i];
        b = t > b ? t : b;
    }
    /* margin: far above the float rounding of s, M, top and thr (the solve works in double);
     * never below the bound es_tighten may have set already */
    float thr = (float)(b - 1e-6 * (1.0 + fabs(M) + fabs(b)));
    e->thr = thr > e->thr ? thr : e->thr;
}

/* a new tile maximum mt (finite or not; NaN rows are flagged by the caller) */
static inline void es_max(es_row *e, const es_consts *k, float mt) {
    if (mt > e->M) e->M = mt, es_bound(e, k);
}

/* keys c = nv-1 .. 0 of a tile (scores s, key index j0 + c) above thr, appended to (cj, cs, *nc),
 * newest first; the top scores and the bound are updated as they come */
static void es_scan(es_row *e, const es_consts *k, const float *s, int nv, int j0, int *cj, float *cs, int *nc) {
    uint64_t mask = 0; /* bit c: s[c] > thr (thr only rises below: a superset is kept, never less) */
    float t = e->thr;
#ifdef __AVX512F__
    for (int v = 0; v < TK / 16; v++)
        mask |= (uint64_t)_mm512_cmp_ps_mask(_mm512_loadu_ps(s + 16 * v), _mm512_set1_ps(t), _CMP_GT_OQ) << (16 * v);
#else
    for (int c = 0; c < TK; c++) mask |= (uint64_t)(s[c] > t) << c;
#endif
    mask &= nv >= TK ? ~0ull : (1ull << nv) - 1;
    int n = *nc;
    while (mask) { /* newest first */
        int c = 63 - __builtin_clzll(mask);
        mask &= ~(1ull << c);
        float v = s[c];
        if (!(v > e->thr)) continue;
        cj[n] = j0 + c, cs[n] = v, n++;
        if (e->nt < ES_TOP || v > e->top[ES_TOP - 1]) {
            int i = e->nt < ES_TOP ? e->nt++ : ES_TOP - 1;
            for (; i > 0 && e->top[i - 1] < v; i--) e->top[i] = e->top[i - 1];
            e->top[i] = v;
            es_bound(e, k);
        }
    }
    *nc = n;
}

typedef double v4d __attribute__((vector_size(32)));
typedef long long v4l __attribute__((vector_size(32)));

/* raises thr to (a little below) a Newton iterate of tau over the kept candidates (cs[*nc]) and
 * drops the candidates at or below it. The kept candidates are a subset of the row's keys, so
 * their threshold tau_C is at most the row's (spec §1.2: f only grows as keys are added), and
 * they are every key seen above thr, so thr <= tau_C already (every key dropped so far is at or
 * below thr <= tau_C and adds nothing to f there). f is convex and decreasing (1 < alpha <= 2),
 * so Newton from a point at or below tau_C never passes it: every iterate is a lower bound of
 * the row's tau. Run in double on x = (alpha-1)(s - M); the margin of es_bound covers rounding. */
static void es_tighten(es_row *e, double am1, int *cj, float *cs, int *nc) {
    enum { LN = 8 };
    double M = e->M, c = 1.0 / am1, t = am1 * ((double)e->thr - M);
    int n = *nc, n8 = n / LN * LN;
    for (int it = 0; it < ES_NEWTON; it++) {
        double f = -1.0, fp = 0, base = am1 * M + t;
        if (c == 2.0 || c == 1.0) { /* alpha 1.5, 2: LN lanes (GCC vectors; fixed order) */
            v4d f0 = {0}, f1 = {0}, p0 = {0}, p1 = {0}, zero = {0}, one = {1, 1, 1, 1};
            for (int i = 0; i < n8; i += LN) {
                v4d u0 = {cs[i], cs[i + 1], cs[i + 2], cs[i + 3]};
                v4d u1 = {cs[i + 4], cs[i + 5], cs[i + 6], cs[i + 7]};
                u0 = am1 * u0 - base, u1 = am1 * u1 - base;
                v4l m0 = u0 > zero, m1 = u1 > zero; /* lanes of all ones where u > 0 */
                u0 = (v4d)((v4l)u0 & m0), u1 = (v4d)((v4l)u1 & m1);
                if (c == 2.0) {
                    f0 += u0 * u0, f1 += u1 * u1, p0 += u0, p1 += u1;
                } else {
                    f0 += u0, f1 += u1;
                    p0 += (v4d)((v4l)one & m0), p1 += (v4d)((v4l)one & m1);
                }
            }
            for (int l = 0; l < 4; l++) f += f0[l], fp += p0[l];
            for (int l = 0; l < 4; l++) f += f1[l], fp += p1[l];
        }
        for (int i = c == 2.0 || c == 1.0 ? n8 : 0; i < n; i++) {
            double u = am1 * ((double)cs[i] - M) - t;
            if (!(u > 0)) continue;
            double uc1 = c == 2.0 ? u : c == 1.0 ? 1.0 : pow(u, c - 1.0);
            f += uc1 * u, fp += uc1;
        }
        if (!(f > 0) || !(fp > 0)) break; /* at (or numerically past) tau_C: no step */
        double step = f / (c * fp);
        t += step;
        if (step <= 1e-7 * (1.0 + fabs(t))) break; /* converged as far as the margin cares */
    }
    double b = M + t / am1;
    float thr = (float)(b - 1e-6 * (1.0 + fabs(M) + fabs(b)));
    if (thr > e->thr) e->thr = thr;
    int k = 0;
    for (int i = 0; i < n; i++) /* order kept: newest first */
        if (cs[i] > e->thr) cj[k] = cj[i], cs[k] = cs[i], k++;
    *nc = k;
    e->cap = 2 * k > e->cap0 ? 2 * k : e->cap0;
}

/* the candidates kept for a row (stored newest first) that are still above its final bound and
 * have x = (alpha-1)(s - M) > -1, into cd in key order: exactly the keys of entmax_row's solve
 * above its top-8 bound, plus perhaps some below it. Returns their count. */
static int es_collect(const es_row *e, double am1, const int *cj, const float *cs, int nc, lcg_ent_cand *cd) {
    int mc = 0;
    for (int k = nc - 1; k >= 0; k--) {
        if (!(cs[k] > e->thr)) continue;
        double x = am1 * ((double)cs[k] - (double)e->M);
        if (x > -1.0) cd[mc].x = x, cd[mc].j = cj[k], mc++;
    }
    return mc;
}

/* one tile of a row after its maximum mt: the bound, then the keys above it (attn_task and
 * prefill_entmax_row) */
static void es_tile(es_row *e, const es_consts *k, double am1, const float *s, float mt, int nv, int j0,
                    int *cj, float *cs, int *nc) {
    es_max(e, k, mt);
    if (!(mt > e->thr)) return; /* nothing in this tile can be in the support */
    es_scan(e, k, s, nv, j0, cj, cs, nc);
    if (*nc >= e->cap) es_tighten(e, am1, cj, cs, nc);
}

/* after the last tile: the bound as tight as Newton gets it (fewer keys to sort), then the
 * candidates in key order into cd: every key above tau, whatever else (entmax_support_solve
 * needs no more). Returns their count. */
static int es_finish(es_row *e, double am1, int *cj, float *cs, int nc, lcg_ent_cand *cd) {
    if (nc > 16) es_tighten(e, am1, cj, cs, &nc);
    return es_collect(e, am1, cj, cs, nc, cd);
}

static inline float tile_max(const float *restrict s, int *bad);

int prefill_entmax_row(float *p, unsigned char *kept, const float *s, int n, double alpha, int cap0) {
    es_consts ek;
    es_consts_init(&ek, alpha);
    es_row e;
    es_init(&e, cap0);
    int *cj = LCG_NEW(int, n), nc = 0, bad = 0;
    float *cs = LCG_NEW(float, n), t[TK];
    lcg_ent_cand *cd = LCG_NEW(lcg_ent_cand, n);
    for (int j0 = (n - 1) / TK * TK; j0 >= 0; j0 -= TK) { /* newest tile first, as attn_task */
        int nv = n - j0 < TK ? n - j0 : TK;
        for (int c = 0; c < TK; c++) t[c] = c < nv ? s[j0 + c] : -FLT_MAX;
        float mt = tile_max(t, &bad);
        es_tile(&e, &ek, alpha - 1.0, t, mt, nv, j0, cj, cs, &nc);
    }
    for (int j = 0; j < n; j++) p[j] = 0, kept[j] = 0;
    int mc = 0;
    if (bad || !isfinite(e.M)) {
        for (int j = 0; j < n; j++) p[j] = NAN;
    } else if (n == 1) {
        p[0] = 1, kept[0] = 1, mc = 1;
    } else {
        mc = es_finish(&e, alpha - 1.0, cj, cs, nc, cd);
        for (int k = 0; k < mc; k++) kept[cd[k].j] = 1;
        int m = mc;
        entmax_support_solve(cd, &m, n, alpha);
        for (int k = 0; k < m; k++) p[cd[k].j] = (float)cd[k].x;
    }
    lcg_free(cj), lcg_free(cs), lcg_free(cd);
    return mc;
}

/* one thread's attention scratch (sizes in prefill_scratch_bytes) */
typedef struct {
    float *st;         /* BQ, TK    scores, then weights, of the current tile */
    float *o;          /* BQ, D     softmax output accumulators */
    int *cj;           /* BQ, ldk   entmax candidates of each row: key index ... */
    float *cs;         /* BQ, ldk   ... and score */
    lcg_ent_cand *cd;  /* ldk       one row's candidates for the solve */
    int *sj;           /* ldk       one row's support, key order: index ... */
    float *sp;         /* ldk       ... and weight */
    float *rs, *rp;    /* ldk       a full score/weight row (softmax diagnostics only) */
} pf_scratch;

size_t prefill_scratch_bytes(const lcg_config *cfg, int cap) {
    size_t ldk = (size_t)(cap + TK - 1) / TK * TK;
    return sizeof(float) * (BQ * TK + (size_t)BQ * cfg->D) + (sizeof(int) + sizeof(float)) * BQ * ldk +
           (sizeof(lcg_ent_cand) + sizeof(int) + 3 * sizeof(float)) * ldk;
}

static void scratch_init(pf_scratch *w, int ldk, int D) {
    w->st = LCG_SCRATCH(float, BQ * TK);
    w->o = LCG_SCRATCH(float, BQ * D);
    w->cj = LCG_SCRATCH(int, (size_t)BQ * ldk);
    w->cs = LCG_SCRATCH(float, (size_t)BQ * ldk);
    w->cd = LCG_SCRATCH(lcg_ent_cand, ldk);
    w->sj = LCG_SCRATCH(int, ldk);
    w->sp = LCG_SCRATCH(float, ldk);
    w->rs = LCG_SCRATCH(float, ldk);
    w->rp = LCG_SCRATCH(float, ldk);
}

static void scratch_free(pf_scratch *w) {
    lcg_free(w->st), lcg_free(w->o), lcg_free(w->cj), lcg_free(w->cs), lcg_free(w->cd);
    lcg_free(w->sj), lcg_free(w->sp), lcg_free(w->rs), lcg_free(w->rp);
}

/* st[r][c] = f[r] * q_r . k_(j0+c) + slope * (j0 + c - (i0 + r)) for r < nr, c < TK: rows in
 * register tiles of RG, each score summed over e = 0..D-1 in order from 0 (decoder_row_scores'
 * order, so the values are bitwise the same) */
static void score_tile(float *restrict st /* nr, TK */, const float *restrict q /* nr, ldq */, int ldq,
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
            if (slope == 0) /* no ALiBi on this head: as decoder_row_scores, no bias at all */
                for (int c = 0; c < TK; c++) out[c] = acc[r][c] * fr;
            else { /* the product rounded before the bias, as decoder_row_scores */
                for (int c = 0; c < TK; c++) out[c] = acc[r][c] * fr;
                __asm__ volatile("" : : "r"(out) : "memory");
                for (int c = 0; c < TK; c++) out[c] += slope * (float)(j0 + c - i);
            }
        }
    }
}

/* ---- the register-tiled score kernel for tiles every row sees whole ---------------------------
 * score_tile_full: as score_tile followed by tile_max on each row, in one pass, for a tile with
 * j0 + TK - 1 <= i0 (no causal mask inside it) and rows in groups of RG. GCC vectors of 16
 * floats: with AVX-512 a register tile is RG rows x 64 keys (16 accumulators), else RG rows x
 * 16 keys; each score is the same chain of FMAs over e = 0..D-1 from 0, then * f (+ the ALiBi
 * bias), as score_tile, so the bits are the same. The maximum keeps tile_max's lane blocking
 * (lane k sees keys c = k mod 16 in order, then lanes 0..15 in order) and its NaN/inf flag comes
 * from s * 0 summed (NaN iff some s is not finite). */
typedef float v16f __attribute__((vector_size(64)));
typedef int v16i __attribute__((vector_size(64)));
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

typedef float v16fu __attribute__((vector_size(64), aligned(4), may_alias)); /* unaligned access */
#define v16_load(p) (*(const v16fu *)(p))

static void score_tile_full(float *restrict st /* nr, TK */, const float *restrict q, int ldq,
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
                    else { /* the product rounded before the bias, as decoder_row_scores */
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
static inline float tile_max(const float *restrict s, int *bad) {
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
static inline void av_tile(float *restrict o /* g, D */, const float *restrict p /* g, TK */,
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

/* attention of query rows i0..i1-1, head h, layer l into d->aa; diagnostics of rows >= r0 into
 * dg[(i - r0) * H + h][3] */
static void attn_task(lcg_decoder *d, pf_scratch *w, int l, int h, int i0, int i1, int r0, double *dg) {
    const lcg_model *m = d->m;
    const lcg_config *cf = &m->cfg;
    int H = cf->H, D = cf->D, HD = H * D, nr = i1 - i0, entmax = m->row != LCG_ROW_SOFTMAX;
    size_t ldk = (size_t)d->ldk;
    const float *kt = d->kt + ((size_t)l * HD + (size_t)h * D) * ldk;
    const float *vc = d->vc + (size_t)l * d->cap * HD + (size_t)h * D;
    const float *q = d->qa + (size_t)i0 * HD + h * D;
    float slope = m->slopes[h], scale = (float)(1.0 / sqrt((double)D));
    double alpha = m->row == LCG_ROW_SPARSEMAX ? 2.0 : cf->alpha, am1 = alpha - 1.0;
    float f[BQ], M[BQ], tmx[BQ];
    double lsum[BQ];
    int nc[BQ], bad[BQ];
    es_row es[BQ];
    es_consts ek;
    if (entmax) es_consts_init(&ek, alpha);
    for (int r = 0; r < nr; r++) {
        f[r] = m->scale ? scale * d->cqa[(size_t)(i0 + r) * H + h] : scale;
        M[r] = -INFINITY, lsum[r] = 0, nc[r] = 0, bad[r] = 0;
        es_init(&es[r], ES_CAP0);
    }
    memset(w->o, 0, sizeof(float) * (size_t)nr * D);

    for (int j0 = (i1 - 1) / TK * TK; j0 >= 0; j0 -= TK) { /* newest tile first */
        int nk = i1 - j0 < TK ? i1 - j0 : TK;                 /* keys of the tile that exist */
        int full = j0 + TK - 1 <= i0 && nr % RG == 0;         /* every row sees every key */
        if (full)
            score_tile_full(w->st, q, HD, kt + j0, ldk, nr, D, f, slope, i0, j0, tmx, bad);
        else
            score_tile(w->st, q, HD, kt + j0, ldk, nr, D, f, slope, i0, j0);
        for (int r = 0; r < nr; r++) {
            float *s = w->st + (size_t)r * TK, mt;
            int nv = i0 + r - j0 + 1; /* keys this row sees in the tile */
            nv = nv > TK ? TK : nv;
            if (full)
                mt = tmx[r];
            else {
                if (nv <= 0) {
                    for (int c = 0; c < TK; c++) s[c] = 0;
                    continue;
                }
                for (int c = nv; c < TK; c++) s[c] = -FLT_MAX;
                mt = tile_max(s, &bad[r]);
            }
            if (!entmax) {
                if (mt > M[r]) { /* rescale what was summed under the old max */
                    float dx = M[r] - mt, sc = dx > -87.0f ? lcg_exp_nonpos(dx) : 0; /* first tile: 0 */
                    lsum[r] *= sc;
                    for (int e = 0; e < D; e++) w->o[r * D + e] *= sc;
                    M[r] = mt;
                }
                float Mr = M[r], ts[16] = {0};
                exp_tile(s, Mr);
                for (int c = nv; c < TK; c++) s[c] = 0;
                for (int c = 0; c < TK; c += 16) /* lane-blocked: vectorizes, fixed order */
                    for (int k = 0; k < 16; k++) ts[k] += s[c + k];
                for (int k = 0; k < 16; k++) lsum[r] += ts[k];
                continue;
            }
            es_tile(&es[r], &ek, am1, s, mt, nv, j0, w->cj + (size_t)r * ldk, w->cs + (size_t)r * ldk, &nc[r]);
        }
        if (!entmax)
            for (int r = 0; r < nr; r += AG)
                av_tile(w->o + (size_t)r * D, w->st + (size_t)r * TK, vc + (size_t)j0 * HD, HD,
                        nr - r < AG ? nr - r : AG, nk, D);
    }

    for (int r = 0; r < nr; r++) {
        int i = i0 + r;
        float *out = d->aa + (size_t)i * HD + h * D;
        double *acc = i >= r0 ? dg + ((size_t)(i - r0) * H + h) * 3 : NULL;
        if (!entmax) { /* a NaN or infinite score: NaN, as softmax_row gives */
            float inv = bad[r] ? NAN : (float)(1.0 / lsum[r]);
            for (int e = 0; e < D; e++) out[e] = w->o[r * D + e] * inv;
            if (acc) { /* diagnostics: this row the reference way */
                decoder_row_scores(w->rs, q + (size_t)r * HD, kt, ldk, i + 1, D, i, f[r], slope);
                norm_row_forward(w->rp, w->rs, i + 1, m->row, alpha);
                decoder_diag_add(acc, w->rp, i + 1);
            }
            continue;
        }
        if (bad[r] || !isfinite(es[r].M)) { /* as entmax_row: a bad score gives NaN weights */
            for (int e = 0; e < D; e++) out[e] = NAN;
            if (acc) acc[0] = acc[1] = acc[2] = NAN;
            continue;
        }
        int mc = es_finish(&es[r], am1, w->cj + (size_t)r * ldk, w->cs + (size_t)r * ldk, nc[r], w->cd), ns = 0;
        if (i == 0) {
            w->sj[ns] = 0, w->sp[ns] = 1, ns++;
        } else {
            entmax_support_solve(w->cd, &mc, i + 1, alpha); /* leaves them in key order */
            for (int k = 0; k < mc; k++) {
                float p = (float)w->cd[k].x;
                if (p != 0) w->sj[ns] = w->cd[k].j, w->sp[ns] = p, ns++;
            }
        }
        if (D == 16) { /* the same FMA chain per element, in a register */
            v16f o = {0};
            for (int k = 0; k < ns; k++) o += w->sp[k] * v16_load(vc + (size_t)w->sj[k] * HD);
            memcpy(out, &o, sizeof o);
            ns = -ns; /* done */
        }
        for (int e = 0; ns >= 0 && e < D; e++) out[e] = 0;
        for (int k = 0; k < ns; k++) {
            const float *v = vc + (size_t)w->sj[k] * HD;
            float p = w->sp[k];
            for (int e = 0; e < D; e++) out[e] += p * v[e];
        }
        if (acc) decoder_diag_add(acc, w->sp, ns < 0 ? -ns : ns); /* the zeros it skips add nothing */
    }
}

void decoder_prefill(lcg_decoder *d, const int *tok, int n, int logits_from, lcg_logits_fn emit,
                     void *ctx) {
    const lcg_model *m = d->m;
    const lcg_config *c = &m->cfg;
    int C = c->C, H = c->H, D = c->D, HD = H * D, F = c->F, V = c->V, n0 = d->n, n1 = n0 + n;
    float *const *w = m->params.t;
    if (n <= 0) return;
    if (n1 > d->cap) lcg_die("decoder cache full (%d positions, %d asked)", d->cap, n1);
    int r0 = logits_from > n0 ? logits_from : n0;
    double *dg = r0 < n1 ? LCG_NEW(double, (size_t)(n1 - r0) * H * 3) : NULL;

    encoder_forward(d->xa + (size_t)n0 * C, tok, w[LCG_P_EMB], n, C);
    for (int l = 0; l < c->L; l++) {
        float *kt = d->kt + (size_t)l * HD * d->ldk, *vc = d->vc + (size_t)l * d->cap * HD;
        /* 1. projections */
        for (int a = n0; a < n1; a += LCG_PF_CHUNK) {
            int R = n1 - a < LCG_PF_CHUNK ? n1 - a : LCG_PF_CHUNK;
            rmsnorm_forward(d->ch_h, d->ch_r, d->xa + (size_t)a * C, w[LCG_P_LN_IN] + (size_t)l * C, R, C);
            matmul_forward(d->ch_w, d->ch_h, w[LCG_P_WQKV] + (size_t)l * C * 3 * HD, R, C, 3 * HD);
            if (m->scale) {
                lcg_lenscale_w ls = model_lenscale(m, w, l);
                lenscale_forward(d->cqa + (size_t)a * H, d->ch_h, &ls, m->scale, m->h0, R, R, a, C, H);
            }
            for (int r = 0; r < R; r++) {
                float *qkv = d->ch_w + (size_t)r * 3 * HD;
                int i = a + r;
                if (c->pos == LCG_POS_ROPE) rope_rotate(qkv, i, 2 * H, D);
                memcpy(d->qa + (size_t)i * HD, qkv, sizeof(float) * HD);
                for (int e = 0; e < HD; e++) kt[(size_t)e * d->ldk + i] = qkv[HD + e];
                memcpy(vc + (size_t)i * HD, qkv + 2 * HD, sizeof(float) * HD);
            }
        }
        /* 2. attention: (query block, head) tasks, the longest first */
        int b0 = n0 / BQ, nb = (n1 - 1) / BQ - b0 + 1;
        if (dg) memset(dg, 0, sizeof(double) * (size_t)(n1 - r0) * H * 3);
#pragma omp parallel
        {
            pf_scratch ws;
            scratch_init(&ws, d->ldk, D);
#pragma omp for schedule(dynamic, 1)
            for (int t = 0; t < nb * H; t++) {
                int b = b0 + nb - 1 - t / H, i0 = b * BQ, i1 = i0 + BQ;
                i0 = i0 < n0 ? n0 : i0, i1 = i1 > n1 ? n1 : i1;
                attn_task(d, &ws, l, t % H, i0, i1, r0, dg);
            }
            scratch_free(&ws);
        }
        for (int i = r0; i < n1; i++) /* in row, then head order: decoder_step's sums */
            for (int h = 0; h < H; h++)
                for (int k = 0; k < 3; k++) d->diag[l][k] += dg[((size_t)(i - r0) * H + h) * 3 + k];
        /* 3. output projection, norms, FFN */
        for (int a = n0; a < n1; a += LCG_PF_CHUNK) {
            int R = n1 - a < LCG_PF_CHUNK ? n1 - a : LCG_PF_CHUNK;
            float *x = d->xa + (size_t)a * C;
            matmul_forward(d->ch_h, d->aa + (size_t)a * HD, w[LCG_P_WO] + (size_t)l * HD * C, R, HD, C);
            rmsnorm_forward(d->ch_t, d->ch_r, d->ch_h, w[LCG_P_LN_PA] + (size_t)l * C, R, C);
            for (size_t e = 0; e < (size_t)R * C; e++) x[e] += d->ch_t[e];
            rmsnorm_forward(d->ch_h, d->ch_r, x, w[LCG_P_LN_PF] + (size_t)l * C, R, C);
            matmul_forward(d->ch_w, d->ch_h, w[LCG_P_WGU] + (size_t)l * C * 2 * F, R, C, 2 * F);
            geglu_forward(d->ch_f, d->ch_w, R, F);
            matmul_forward(d->ch_h, d->ch_f, w[LCG_P_WDOWN] + (size_t)l * F * C, R, F, C);
            rmsnorm_forward(d->ch_t, d->ch_r, d->ch_h, w[LCG_P_LN_PO] + (size_t)l * C, R, C);
            for (size_t e = 0; e < (size_t)R * C; e++) x[e] += d->ch_t[e];
        }
    }
    d->n = n1;
    if (r0 < n1) d->diag_rows += (long)(n1 - r0) * H;
    memcpy(d->x, d->xa + (size_t)(n1 - 1) * C, sizeof(float) * C);
    for (int a = r0; a < n1; a += LCG_PF_CHUNK) { /* the LM head on the requested rows */
        int R = n1 - a < LCG_PF_CHUNK ? n1 - a : LCG_PF_CHUNK;
        rmsnorm_forward(d->ch_h, d->ch_r, d->xa + (size_t)a * C, w[LCG_P_LN_F], R, C);
        matmul_forward(d->ch_w, d->ch_h, w[LCG_P_LM], R, C, V);
        for (int r = 0; r < R; r++)
            if (emit) emit(ctx, a + r, d->ch_w + (size_t)r * V);
        memcpy(d->logits, d->ch_w + (size_t)(R - 1) * V, sizeof(float) * V);
    }
    lcg_free(dg);
}

double prefill_qk_scan(const float *q, const float *kt, size_t ldk, int n, int D) {
    int nb = (n + BQ - 1) / BQ;
    float *rowmax = LCG_NEW(float, n);
#pragma omp parallel
    {
        float *st = LCG_SCRATCH(float, BQ * TK), f[BQ];
        for (int r = 0; r < BQ; r++) f[r] = 1;
#pragma omp for schedule(dynamic, 1)
        for (int t = 0; t < nb; t++) {
            int i0 = (nb - 1 - t) * BQ, i1 = i0 + BQ > n ? n : i0 + BQ, bad = 0;
            float mx[BQ];
            for (int r = 0; r < BQ; r++) mx[r] = -FLT_MAX;
            for (int j0 = (i1 - 1) / TK * TK; j0 >= 0; j0 -= TK) {
                float tm[BQ];
                int bd[BQ] = {0};
                if (j0 + TK - 1 <= i0 && (i1 - i0) % RG == 0) { /* as attn_task */
                    score_tile_full(st, q + (size_t)i0 * D, D, kt + j0, ldk, i1 - i0, D, f, 0.0f, i0, j0, tm, bd);
                } else {
                    score_tile(st, q + (size_t)i0 * D, D, kt + j0, ldk, i1 - i0, D, f, 0.0f, i0, j0);
                    for (int r = 0; r < i1 - i0; r++) {
                        float *s = st + (size_t)r * TK;
                        for (int c = i0 + r - j0 + 1; c < TK; c++) s[c] = -FLT_MAX; /* causal */
                        tm[r] = tile_max(s, &bad);
                    }
                }
                for (int r = 0; r < i1 - i0; r++) mx[r] = tm[r] > mx[r] ? tm[r] : mx[r];
            }
            for (int r = 0; r < i1 - i0; r++) rowmax[i0 + r] = mx[r];
        }
        lcg_free(st);
    }
    double sum = 0;
    for (int i = 0; i < n; i++) sum += rowmax[i];
    lcg_free(rowmax);
    return sum;
}
