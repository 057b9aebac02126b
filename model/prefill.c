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
 *      tiles (LCG_KEY_TILE keys, newest first) through the register-tiled score kernels of
 *      kernels/tile.c (tile_scores_full: 4 query rows x 64 keys in 16 vector accumulators with
 *      AVX-512, the tile's row maxima fused in; tile_scores on the diagonal tile; each score
 *      summed over e in order, as tile_row_scores does), and:
 *        softmax family: online softmax (running max and sum, rescaled when the max grows),
 *          A.V accumulated tile by tile; never a full score row.
 *        generic rows (top-k, stick-break, adaptive-softmax: LCG_EVAL_ROW): each query row
 *          scored in full (tile_row_scores, O(n) scratch), the row's eval, A.V in key order:
 *          decoder_step's computation, so the same bits.
 *        entmax family: only keys above a running safe lower bound of tau are kept
 *          (kernels/entmax_stream.c, es_*): the
 *          max bound M - 1/(alpha-1) and the top-8 bound while the tiles stream, raised by a few
 *          Newton steps from below on the kept candidates whenever their number doubles (tau
 *          of any subset is a lower bound, spec §1.2, §5.2). Tiles whose maximum is below the
 *          bound are skipped after the fused max. The threshold is solved on the survivors by
 *          entmax_support_solve, whose result does not depend on which keys below tau it is
 *          given, and A.V is summed over the support in key order: bitwise decoder_step's
 *          result (decoder_step uses the same solve on its unpruned row).
 *      Attention diagnostics on the requested rows: from the support (entmax), or from the
 *      row recomputed the reference way (softmax; only those rows); the same rows go to the
 *      decoder's observer when it has one (the relevant-key mass, attention maps).
 *   3. output projection, norms, FFN per chunk; then the LM head on the requested rows.
 *
 * Memory: the cache, qa/aa/xa (n x C each), and per thread a score tile plus candidate space
 * of LCG_QUERY_BLOCK x n (touched only as far as used). Not here: batching several sequences,
 * and the backward pass (evaluation only).
 */
#include "infer.h"
#include "../kernels/entmax_stream.h"
#include "../kernels/fastexp.h"
#include "../kernels/simd.h"
#include "../kernels/tile.h"
#include "../kernels/util.h"

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { BQ = LCG_QUERY_BLOCK, TK = LCG_KEY_TILE, RG = LCG_TILE_RG, AG = LCG_TILE_AG };


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

/* attention of query rows i0..i1-1, head h, layer l into d->aa; diagnostics of rows >= r0 into
 * dg[(i - r0) * H + h][3] */
static void attn_task(lcg_decoder *d, pf_scratch *w, int l, int h, int i0, int i1, int r0, double *dg) {
    const lcg_model *m = d->m;
    const lcg_config *cf = &m->cfg;
    const lcg_row_fn *row = lcg_row_at(m->row);
    int H = cf->H, D = cf->D, HD = H * D, nr = i1 - i0, entmax = row->sparse == LCG_EVAL_ENTMAX;
    size_t ldk = (size_t)d->ldk;
    const float *kt = d->kt + ((size_t)l * HD + (size_t)h * D) * ldk;
    const float *vc = d->vc + (size_t)l * d->cap * HD + (size_t)h * D;
    const float *q = d->qa + (size_t)i0 * HD + h * D;
    float slope = m->slopes[h], scale = (float)(1.0 / sqrt((double)D));
    double alpha = lcg_row_alpha(row, cf->alpha), am1 = alpha - 1.0;
    if (row->sparse == LCG_EVAL_ROW) { /* each row in full, as decoder_step: the same bits */
        for (int r = 0; r < nr; r++) {
            int i = i0 + r;
            float fr = m->scale ? scale * d->cqa[(size_t)i * H + h] : scale, *out = d->aa + (size_t)i * HD + h * D;
            tile_row_scores(w->rs, q + (size_t)r * HD, kt, ldk, i + 1, D, i, fr, slope);
            row->eval(w->rp, w->rs, i + 1, alpha);
            if (i >= r0) decoder_diag_add(dg + ((size_t)(i - r0) * H + h) * 3, w->rp, i + 1);
            if (i >= r0 && d->observe) d->observe(d->observe_ctx, l, h, i, NULL, w->rp, i + 1);
            for (int e = 0; e < D; e++) out[e] = 0;
            for (int j = 0; j <= i; j++) {
                float p = w->rp[j];
                if (p == 0) continue;
                const float *v = vc + (size_t)j * HD;
                for (int e = 0; e < D; e++) out[e] += p * v[e];
            }
        }
        return;
    }
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
            tile_scores_full(w->st, q, HD, kt + j0, ldk, nr, D, f, slope, i0, j0, tmx, bad);
        else
            tile_scores(w->st, q, HD, kt + j0, ldk, nr, D, f, slope, i0, j0);
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
                tile_exp(s, Mr);
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
                tile_av(w->o + (size_t)r * D, w->st + (size_t)r * TK, vc + (size_t)j0 * HD, HD,
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
                tile_row_scores(w->rs, q + (size_t)r * HD, kt, ldk, i + 1, D, i, f[r], slope);
                row->eval(w->rp, w->rs, i + 1, alpha);
                decoder_diag_add(acc, w->rp, i + 1);
                if (d->observe) d->observe(d->observe_ctx, l, h, i, NULL, w->rp, i + 1);
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
        if (acc && d->observe) d->observe(d->observe_ctx, l, h, i, w->sj, w->sp, ns < 0 ? -ns : ns);
    }
}

static int pf_stopped(const lcg_decoder *d) { return d->stop && *d->stop; }

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
        if (pf_stopped(d)) break; /* a stop abandons the pass (also checked per attention task) */
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
                if (pf_stopped(d)) continue; /* the rest of the pass is abandoned */
                int b = b0 + nb - 1 - t / H, i0 = b * BQ, i1 = i0 + BQ;
                i0 = i0 < n0 ? n0 : i0, i1 = i1 > n1 ? n1 : i1;
                attn_task(d, &ws, l, t % H, i0, i1, r0, dg);
            }
            scratch_free(&ws);
        }
        if (pf_stopped(d)) break;
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
        char layer[16];
        snprintf(layer, sizeof layer, "%d", l);
        if (!pf_stopped(d)) lcg_test_stop_point("prefill", layer);
    }
    if (pf_stopped(d)) { /* abandoned: nothing emitted past this point, the cache as it was */
        lcg_free(dg);
        return;
    }
    d->n = n1;
    if (r0 < n1) d->diag_rows += (long)(n1 - r0) * H;
    memcpy(d->x, d->xa + (size_t)(n1 - 1) * C, sizeof(float) * C);
    for (int a = r0; a < n1; a += LCG_PF_CHUNK) { /* the LM head on the requested rows */
        int R = n1 - a < LCG_PF_CHUNK ? n1 - a : LCG_PF_CHUNK;
        rmsnorm_forward(d->ch_h, d->ch_r, d->xa + (size_t)a * C, w[LCG_P_LN_F], R, C);
        for (int r = 0; d->hidden && r < R; r++) d->hidden(d->hidden_ctx, a + r, d->ch_h + (size_t)r * C);
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
                    tile_scores_full(st, q + (size_t)i0 * D, D, kt + j0, ldk, i1 - i0, D, f, 0.0f, i0, j0, tm, bd);
                } else {
                    tile_scores(st, q + (size_t)i0 * D, D, kt + j0, ldk, i1 - i0, D, f, 0.0f, i0, j0);
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
