/*
 * entmax_stream.c: the entmax family's streaming bound on tau (entmax_stream.h) for rows whose
 * key tiles arrive one at a time. Per row: the running max M and the ES_TOP largest scores
 * give a lower bound of tau that only rises (max and top-k bounds, then Newton steps from below
 * on the kept keys); keys at or below it are dropped as they come. Not here: the final solve
 * (entmax.c's entmax_support_solve), the tiles themselves (tile.c), A.V.
 */
#include "entmax_stream.h"
#include "simd.h"
#include "tile.h"
#include "util.h"

#include <float.h>
#ifdef __AVX512F__
#include <immintrin.h>
#endif
#include <math.h>
#include <stdint.h>
#include <stdlib.h>

enum { TK = LCG_KEY_TILE };

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
void es_consts_init(es_consts *k, double alpha) {
    for (int i = 1; i <= ES_TOP; i++) k->w[i] = pow((double)i, 1.0 - alpha) / (alpha - 1.0);
}

void es_init(es_row *e, int cap0) {
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
 * entmax_stream_row) */
void es_tile(es_row *e, const es_consts *k, double am1, const float *s, float mt, int nv, int j0,
                    int *cj, float *cs, int *nc) {
    es_max(e, k, mt);
    if (!(mt > e->thr)) return; /* nothing in this tile can be in the support */
    es_scan(e, k, s, nv, j0, cj, cs, nc);
    if (*nc >= e->cap) es_tighten(e, am1, cj, cs, nc);
}

/* after the last tile: the bound as tight as Newton gets it (fewer keys to sort), then the
 * candidates in key order into cd: every key above tau, whatever else (entmax_support_solve
 * needs no more). Returns their count. */
int es_finish(es_row *e, double am1, int *cj, float *cs, int nc, lcg_ent_cand *cd) {
    if (nc > 16) es_tighten(e, am1, cj, cs, &nc);
    return es_collect(e, am1, cj, cs, nc, cd);
}

int entmax_stream_row(float *p, unsigned char *kept, const float *s, int n, double alpha, int cap0) {
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

