/*
 * infer.c: the decoder's buffers and decoder_step (see infer.h); the blocked prefill is
 * prefill.c. The per-token path mirrors model_forward (same kernels, same order of operations
 * per row), which tests/test_model.c checks logit by logit; it is the reference the prefill
 * is tested against.
 */
#include "infer.h"
#include "../kernels/util.h"

#include <math.h>
#include <string.h>

static int round_up(int n, int k) { return (n + k - 1) / k * k; }

static size_t layout(const lcg_config *c, int cap, float *base, lcg_decoder *d) {
    size_t HD = (size_t)c->H * c->D, L = (size_t)c->L, ldk = (size_t)round_up(cap, LCG_KEY_TILE);
    size_t CH = LCG_PF_CHUNK, wide = 3 * HD;
    wide = 2 * (size_t)c->F > wide ? 2 * (size_t)c->F : wide;
    wide = (size_t)c->V > wide ? (size_t)c->V : wide;
    size_t sizes[] = {L * HD * ldk, L * cap * HD, c->C, c->C, 3 * HD, HD, c->C,
                      2 * (size_t)c->F, c->F, cap, cap, c->V,
                      (size_t)cap * c->C, cap * HD, cap * HD, (size_t)cap * c->H,
                      CH * c->C, CH * wide, CH * c->F, CH * c->C, CH};
    float **slots[] = {&d->kt, &d->vc, &d->x, &d->h, &d->qkv, &d->atty, &d->tmp,
                       &d->gu, &d->ff, &d->scores, &d->probs, &d->logits,
                       &d->xa, &d->qa, &d->aa, &d->cqa,
                       &d->ch_h, &d->ch_w, &d->ch_f, &d->ch_t, &d->ch_r};
    size_t off = 0;
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
        if (base) *slots[i] = base + off;
        off += (sizes[i] + 15) / 16 * 16;
    }
    return off;
}

size_t decoder_bytes(const lcg_config *cfg, int cap) {
    lcg_decoder d;
    return layout(cfg, cap, NULL, &d) * sizeof(float) +
           (size_t)cap * cfg->H * 3 * sizeof(double); /* the prefill's per-row diagnostics */
}

void decoder_init(lcg_decoder *d, const lcg_model *m, int cap) {
    memset(d, 0, sizeof *d);
    d->m = m;
    d->cap = cap;
    d->ldk = round_up(cap, LCG_KEY_TILE);
    d->mem = LCG_NEW(float, layout(&m->cfg, cap, NULL, d));
    layout(&m->cfg, cap, d->mem, d);
}

void decoder_reset(lcg_decoder *d) {
    d->n = 0;
    d->collect = 0;
    d->diag_rows = 0;
    memset(d->diag, 0, sizeof d->diag);
}

void decoder_truncate(lcg_decoder *d, int n) {
    if (n < 0 || n > d->n) lcg_die("decoder_truncate: %d positions of %d", n, d->n);
    d->n = n;
}

void decoder_diag_add(double *acc, const float *p, int n) {
    double ent = 0, mx = 0;
    int support = 0;
    for (int j = 0; j < n; j++) {
        if (p[j] <= 0) continue;
        ent -= (double)p[j] * log((double)p[j]);
        support++;
        mx = p[j] > mx ? p[j] : mx;
    }
    acc[0] += ent;
    acc[1] += support;
    acc[2] += mx;
}

void decoder_free(lcg_decoder *d) {
    lcg_free(d->mem);
    memset(d, 0, sizeof *d);
}

const float *decoder_step(lcg_decoder *d, int token, int want_logits) {
    const lcg_model *m = d->m;
    const lcg_config *c = &m->cfg;
    int C = c->C, H = c->H, D = c->D, HD = H * D, F = c->F, i = d->n;
    float *const *w = m->params.t;
    if (i >= d->cap) lcg_die("decoder cache full (%d positions)", d->cap);
    float rstd, scale = (float)(1.0 / sqrt((double)D));
    const lcg_row_fn *row = lcg_row_at(m->row);
    double alpha = lcg_row_alpha(row, c->alpha);

    encoder_forward(d->x, &token, w[LCG_P_EMB], 1, C);
    for (int l = 0; l < c->L; l++) {
        float *kt = d->kt + (size_t)l * HD * d->ldk, *vc = d->vc + (size_t)l * d->cap * HD;
        rmsnorm_forward(d->h, &rstd, d->x, w[LCG_P_LN_IN] + (size_t)l * C, 1, C);
        matmul_forward(d->qkv, d->h, w[LCG_P_WQKV] + (size_t)l * C * 3 * HD, 1, C, 3 * HD);
        if (c->pos == LCG_POS_ROPE) rope_rotate(d->qkv, i, 2 * H, D); /* q and k heads */
        for (int e = 0; e < HD; e++) kt[(size_t)e * d->ldk + i] = d->qkv[HD + e];
        memcpy(vc + (size_t)i * HD, d->qkv + 2 * HD, sizeof(float) * HD);
        float cq[LCG_MAX_HEADS];
        if (m->scale) {
            lcg_lenscale_w ls = model_lenscale(m, w, l);
            lenscale_forward(cq, d->h, &ls, m->scale, m->h0, 1, 1, i, C, H);
        }
        for (int h = 0; h < H; h++) {
            const float *q = d->qkv + h * D;
            float slope = m->slopes[h], f = m->scale ? scale * cq[h] : scale;
            tile_row_scores(d->scores, q, kt + (size_t)h * D * d->ldk, d->ldk, i + 1, D, i, f, slope);
            row->eval(d->probs, d->scores, i + 1, alpha); /* the entmax family: the evaluation's solve */
            if (d->collect) decoder_diag_add(d->diag[l], d->probs, i + 1);
            if (d->observe) d->observe(d->observe_ctx, l, h, i, NULL, d->probs, i + 1);
            float *o = d->atty + h * D;
            for (int e = 0; e < D; e++) o[e] = 0;
            for (int j = 0; j <= i; j++) {
                float p = d->probs[j];
                if (p == 0) continue;
                const float *v = vc + (size_t)j * HD + h * D;
                for (int e = 0; e < D; e++) o[e] += p * v[e];
            }
        }
        matmul_forward(d->h, d->atty, w[LCG_P_WO] + (size_t)l * HD * C, 1, HD, C);
        rmsnorm_forward(d->tmp, &rstd, d->h, w[LCG_P_LN_PA] + (size_t)l * C, 1, C);
        for (int e = 0; e < C; e++) d->x[e] += d->tmp[e];
        rmsnorm_forward(d->h, &rstd, d->x, w[LCG_P_LN_PF] + (size_t)l * C, 1, C);
        matmul_forward(d->gu, d->h, w[LCG_P_WGU] + (size_t)l * C * 2 * F, 1, C, 2 * F);
        geglu_forward(d->ff, d->gu, 1, F);
        matmul_forward(d->h, d->ff, w[LCG_P_WDOWN] + (size_t)l * F * C, 1, F, C);
        rmsnorm_forward(d->tmp, &rstd, d->h, w[LCG_P_LN_PO] + (size_t)l * C, 1, C);
        for (int e = 0; e < C; e++) d->x[e] += d->tmp[e];
    }
    d->n = i + 1;
    if (d->collect) d->diag_rows += H;
    if (!want_logits) return NULL;
    rmsnorm_forward(d->h, &rstd, d->x, w[LCG_P_LN_F], 1, C);
    matmul_forward(d->logits, d->h, w[LCG_P_LM], 1, C, c->V);
    return d->logits;
}
