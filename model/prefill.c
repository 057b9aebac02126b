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
 *      tiles (LCG_KEY_TILE keys, newest first) through a register-tiled score kernel (4 query
 *      rows x one tile, each score summed over e in order, as decoder_row_scores does), and:
 *        softmax family: online softmax (running max and sum, rescaled when the max grows),
 *          A.V accumulated tile by tile; never a full score row.
 *        entmax family: only keys above the running safe bound of tau are kept as candidates
 *          (tau >= max x - 1, spec §1.2, in score units s > M - 1/(alpha-1), with a margin);
 *          tiles whose maximum is below it are skipped after one vector max. The threshold is
 *          solved on the candidates by entmax_cand_solve (top-8 bound, closed form; the same
 *          code as entmax_row), and A.V is summed over the support in key order: bitwise
 *          decoder_step's result.
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
            else
                for (int c = 0; c < TK; c++) {
                    float b = slope * (float)(j0 + c - i);
                    out[c] = acc[r][c] * fr + b;
                }
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

static int cmp_int(const void *a, const void *b) {
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
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
    float f[BQ], M[BQ];
    double lsum[BQ];
    int nc[BQ], bad[BQ];
    for (int r = 0; r < nr; r++) {
        f[r] = m->scale ? scale * d->cqa[(size_t)(i0 + r) * H + h] : scale;
        M[r] = -INFINITY, lsum[r] = 0, nc[r] = 0, bad[r] = 0;
    }
    memset(w->o, 0, sizeof(float) * (size_t)nr * D);

    for (int j0 = (i1 - 1) / TK * TK; j0 >= 0; j0 -= TK) { /* newest tile first */
        int nk = i1 - j0 < TK ? i1 - j0 : TK;                 /* keys of the tile that exist */
        score_tile(w->st, q, HD, kt + j0, ldk, nr, D, f, slope, i0, j0);
        for (int r = 0; r < nr; r++) {
            float *s = w->st + (size_t)r * TK;
            int nv = i0 + r - j0 + 1; /* keys this row sees in the tile */
            nv = nv > TK ? TK : nv;
            if (nv <= 0) {
                for (int c = 0; c < TK; c++) s[c] = 0;
                continue;
            }
            for (int c = nv; c < TK; c++) s[c] = -FLT_MAX;
            float mt = tile_max(s, &bad[r]);
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
            M[r] = mt > M[r] ? mt : M[r];
            float thr = (float)((double)M[r] - 1.0 / am1 - 1e-6 * (1.0 + fabs((double)M[r])));
            if (!(mt > thr)) continue; /* nothing in this tile can be in the support */
            int *cj = w->cj + (size_t)r * ldk;
            float *cs = w->cs + (size_t)r * ldk;
            for (int c = nv - 1; c >= 0; c--) /* newest first, like the tiles */
                if (s[c] > thr) cj[nc[r]] = j0 + c, cs[nc[r]] = s[c], nc[r]++;
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
        if (bad[r] || !isfinite(M[r])) { /* as entmax_row: a bad score gives NaN weights */
            for (int e = 0; e < D; e++) out[e] = NAN;
            if (acc) acc[0] = acc[1] = acc[2] = NAN;
            continue;
        }
        /* candidates in key order, exactly entmax_row's (x > -1 against the final max) */
        const int *cj = w->cj + (size_t)r * ldk;
        const float *cs = w->cs + (size_t)r * ldk;
        int mc = 0, ns = 0;
        for (int k = nc[r] - 1; k >= 0; k--) {
            double x = am1 * ((double)cs[k] - (double)M[r]);
            if (x > -1.0) w->cd[mc].x = x, w->cd[mc].j = cj[k], mc++;
        }
        if (i == 0) {
            w->sj[ns] = 0, w->sp[ns] = 1, ns++;
        } else {
            entmax_cand_solve(w->cd, &mc, i + 1, alpha);
            int sorted = 1;
            for (int k = 0; k < mc; k++) {
                float p = (float)w->cd[k].x;
                if (p == 0) continue;
                sorted &= ns == 0 || w->cd[k].j > w->sj[ns - 1];
                w->sj[ns] = w->cd[k].j, w->sp[ns] = p, w->rp[w->cd[k].j] = p, ns++;
            }
            if (!sorted) { /* the closed form sorted them by weight: back to key order */
                qsort(w->sj, (size_t)ns, sizeof *w->sj, cmp_int);
                for (int k = 0; k < ns; k++) w->sp[k] = w->rp[w->sj[k]];
            }
        }
        for (int e = 0; e < D; e++) out[e] = 0;
        for (int k = 0; k < ns; k++) {
            const float *v = vc + (size_t)w->sj[k] * HD;
            float p = w->sp[k];
            for (int e = 0; e < D; e++) out[e] += p * v[e];
        }
        if (acc) decoder_diag_add(acc, w->sp, ns); /* the zeros it skips add nothing */
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
                score_tile(st, q + (size_t)i0 * D, D, kt + j0, ldk, i1 - i0, D, f, 0.0f, i0, j0);
                for (int r = 0; r < i1 - i0; r++) {
                    float m = tile_max(st + (size_t)r * TK, &bad);
                    mx[r] = m > mx[r] ? m : mx[r];
                }
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
