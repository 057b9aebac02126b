/*
 * model.c: training forward and backward of the transformer (see model.h for the equations).
 * Compiled twice (float, and double with -DLCG_F64). Layer by layer it is a chain of kernel
 * calls; the only logic here is buffer bookkeeping.
 */
#include "model.h"
#include "../kernels/real.h"
#include "../kernels/util.h"

#include <math.h>
#include <string.h>

static void point_params(KFN(lcg_params) *p, real *mem, const size_t *sizes) {
    for (int i = 0; i < LCG_N_PARAM_TENSORS; i++) {
        p->t[i] = mem;
        mem += sizes[i];
    }
}

void KFN(model_init)(KFN(lcg_model) *m, const lcg_config *cfg, uint64_t seed) {
    memset(m, 0, sizeof *m);
    m->cfg = *cfg;
    m->n_params = lcg_param_sizes(cfg, m->sizes);
    m->params_mem = LCG_NEW(real, m->n_params);
    m->grads_mem = LCG_NEW(real, m->n_params);
    point_params(&m->params, m->params_mem, m->sizes);
    point_params(&m->grads, m->grads_mem, m->sizes);
    m->slopes = LCG_NEW(float, cfg->H);
    lcg_posenc_slopes(m->slopes, cfg->pos, cfg->H);
    const lcg_normalizer *nz = lcg_normalizer_at(cfg->norm);
    if (lcg_row_at(nz->row)->no_bias) /* stick-break: no ALiBi term, as the reference */
        for (int h = 0; h < cfg->H; h++) m->slopes[h] = 0;
    m->row = nz->row;
    m->scale = nz->scale;
    lcg_scaled_heads(cfg, &m->h0);
    pcg32 rng = pcg32_derive(seed, "init", 0);
    for (int i = 0; i < LCG_N_PARAM_TENSORS; i++) {
        real *t = m->params.t[i];
        for (size_t j = 0; j < m->sizes[i]; j++) {
            switch (i) {
            case LCG_P_LN_IN: case LCG_P_LN_PA: case LCG_P_LN_PF: case LCG_P_LN_PO: case LCG_P_LN_F:
            case LCG_P_LS_BB: case LCG_P_LS_BG:
                t[j] = 0;
                break;
            case LCG_P_LS_BETA:
                t[j] = (real)(m->scale == LCG_SCALE_SSMAX ? 1.0 + 0.01 * pcg32_normal(&rng)
                                                          : 0.1 + 0.9 * pcg32_float(&rng));
                break;
            case LCG_P_LS_GAMMA: t[j] = (real)(0.1 * pcg32_normal(&rng)); break;
            default: t[j] = (real)(0.02 * pcg32_normal(&rng));
            }
        }
    }
}

KFN(lcg_lenscale_w) KFN(model_lenscale)(const KFN(lcg_model) *m, real *const *t, int l) {
    size_t Hs = (size_t)(m->cfg.H - m->h0), C = (size_t)m->cfg.C;
    real *p[6];
    for (int i = 0; i < 6; i++) { /* layer l's slice; NULL for tensors this normalizer lacks */
        int id = LCG_P_LS_BETA + i;
        size_t per_layer = id == LCG_P_LS_WB || id == LCG_P_LS_WG ? C * Hs : Hs;
        p[i] = m->sizes[id] ? t[id] + (size_t)l * per_layer : NULL;
    }
    return (KFN(lcg_lenscale_w)){p[0], p[1], p[2], p[3], p[4], p[5]};
}

void KFN(model_free)(KFN(lcg_model) *m) {
    lcg_free(m->params_mem);
    lcg_free(m->grads_mem);
    lcg_free(m->acts_mem);
    lcg_free(m->slopes);
    memset(m, 0, sizeof *m);
}

/* the element count of each activation buffer (lcg_acts order, each rounded up to 16 for 64-byte
 * alignment) for a [B, T] batch; returns their sum */
static size_t acts_sizes(const lcg_config *c, int B, int T, size_t *out) {
    size_t L = (size_t)c->L, N = (size_t)B * T, C = (size_t)c->C, HD = (size_t)c->H * c->D;
    size_t F = (size_t)c->F, V = (size_t)c->V, HTT = (size_t)c->H * T * T;
    size_t H = (size_t)c->H;
    size_t sizes[] = {
        N * C,        L * N * C,  L * N,     L * N * 3 * HD, L * N * HD, L * B * HTT, L * N * H, L * N * C,
        L * N,        L * N * C,  L * N * C, L * N,          L * N * 2 * F, L * N * F, L * N * C,
        L * N,        L * N * C,  N * C,     N,              N * V,      N,
        N * C,        N * C,      N * HD,    N * 3 * HD,     N * F,      N * 2 * F,  N * V,   N * C,
        N * H};
    enum { N_ACTS = sizeof sizes / sizeof *sizes };
    _Static_assert(N_ACTS == sizeof(KFN(lcg_acts)) / sizeof(real *), "acts layout");
    size_t total = 0;
    for (int i = 0; i < N_ACTS; i++) total += out[i] = (sizes[i] + 15) / 16 * 16; /* 64-byte aligned */
    return total;
}

size_t KFN(model_train_bytes)(const lcg_config *c, int B, int T) {
    size_t sizes[64], n_params = lcg_param_sizes(c, sizes);
    /* parameters, gradients (the optimizer's moments are counted by the caller) and activations */
    return sizeof(real) * (2 * n_params + acts_sizes(c, B, T, sizes));
}

static void ensure_acts(KFN(lcg_model) *m, int B, int T) {
    if (B <= m->cap_B && T <= m->cap_T) return;
    if (B < m->cap_B) B = m->cap_B;
    if (T < m->cap_T) T = m->cap_T;
    size_t sizes[64];
    size_t total = acts_sizes(&m->cfg, B, T, sizes);
    enum { N_ACTS = sizeof(KFN(lcg_acts)) / sizeof(real *) };
    lcg_free(m->acts_mem);
    m->acts_mem = LCG_NEW(real, total);
    real **slot = (real **)&m->acts;
    real *p = m->acts_mem;
    for (int i = 0; i < N_ACTS; i++) {
        slot[i] = p;
        p += sizes[i];
    }
    m->cap_B = B;
    m->cap_T = T;
}

double KFN(model_forward)(KFN(lcg_model) *m, const int *tok, const int *targets,
                          const unsigned char *mask, int B, int T) {
    ensure_acts(m, B, T);
    const lcg_config *c = &m->cfg;
    int L = c->L, C = c->C, H = c->H, D = c->D, HD = H * D, F = c->F, V = c->V, N = B * T;
    KFN(lcg_acts) *a = &m->acts;
    real **w = m->params.t;
    m->B = B;
    m->T = T;
    m->tok = tok;
    m->targets = targets;
    m->mask = mask;

    KFN(encoder_forward)(a->enc, tok, w[LCG_P_EMB], N, C);
    const real *x = a->enc;
    for (int l = 0; l < L; l++) {
        real *ln_in = a->ln_in + (size_t)l * N * C, *rs_in = a->rs_in + (size_t)l * N;
        real *qkv = a->qkv + (size_t)l * N * 3 * HD, *atty = a->atty + (size_t)l * N * HD;
        real *att = a->att + (size_t)l * B * H * T * T, *ao = a->ao + (size_t)l * N * C;
        real *qs = m->scale ? a->qs + (size_t)l * N * H : NULL;
        real *rs_pa = a->rs_pa + (size_t)l * N, *res1 = a->res1 + (size_t)l * N * C;
        real *ln_pf = a->ln_pf + (size_t)l * N * C, *rs_pf = a->rs_pf + (size_t)l * N;
        real *gu = a->gu + (size_t)l * N * 2 * F, *ff = a->ff + (size_t)l * N * F;
        real *mo = a->mo + (size_t)l * N * C, *rs_po = a->rs_po + (size_t)l * N;
        real *res2 = a->res2 + (size_t)l * N * C;

        KFN(rmsnorm_forward)(ln_in, rs_in, x, w[LCG_P_LN_IN] + (size_t)l * C, N, C);
        KFN(matmul_forward)(qkv, ln_in, w[LCG_P_WQKV] + (size_t)l * C * 3 * HD, N, C, 3 * HD);
        if (c->pos == LCG_POS_ROPE) KFN(rope_forward)(qkv, B, T, H, D);
        if (qs) {
            KFN(lcg_lenscale_w) ls = KFN(model_lenscale)(m, w, l);
            KFN(lenscale_forward)(qs, ln_in, &ls, m->scale, m->h0, N, T, 0, C, H);
        }
        KFN(attention_forward)(atty, att, qkv, qs, m->slopes, m->row, c->alpha, B, T, H, D);
        KFN(matmul_forward)(ao, atty, w[LCG_P_WO] + (size_t)l * HD * C, N, HD, C);
        KFN(rmsnorm_forward)(a->tmp, rs_pa, ao, w[LCG_P_LN_PA] + (size_t)l * C, N, C);
        for (size_t i = 0; i < (size_t)N * C; i++) res1[i] = x[i] + a->tmp[i];

        KFN(rmsnorm_forward)(ln_pf, rs_pf, res1, w[LCG_P_LN_PF] + (size_t)l * C, N, C);
        KFN(matmul_forward)(gu, ln_pf, w[LCG_P_WGU] + (size_t)l * C * 2 * F, N, C, 2 * F);
        KFN(geglu_forward)(ff, gu, N, F);
        KFN(matmul_forward)(mo, ff, w[LCG_P_WDOWN] + (size_t)l * F * C, N, F, C);
        KFN(rmsnorm_forward)(a->tmp, rs_po, mo, w[LCG_P_LN_PO] + (size_t)l * C, N, C);
        for (size_t i = 0; i < (size_t)N * C; i++) res2[i] = res1[i] + a->tmp[i];
        x = res2;
    }
    KFN(rmsnorm_forward)(a->ln_f, a->rs_f, x, w[LCG_P_LN_F], N, C);
    KFN(matmul_forward)(a->logits, a->ln_f, w[LCG_P_LM], N, C, V);

    m->n_mask = 0;
    if (!targets || !mask) return 0;
    KFN(crossentropy_forward)(a->losses, a->logits, targets, mask, N, V);
    double sum = 0;
    for (int n = 0; n < N; n++) {
        sum += a->losses[n];
        m->n_mask += mask[n] != 0;
    }
    return m->n_mask ? sum / m->n_mask : 0;
}

/* dst[n] = 0 on all threads (a backward's scratch gradient, megabytes per layer: one thread's
 * memset was 5% of a training step) */
static void zero(real *dst, size_t n) {
    enum { CHUNK = 16384 }; /* floats: 64 KiB */
    long nch = (long)((n + CHUNK - 1) / CHUNK);
#pragma omp parallel for schedule(static) if (nch > 1)
    for (long i = 0; i < nch; i++) {
        size_t lo = (size_t)i * CHUNK, len = n - lo < CHUNK ? n - lo : CHUNK;
        memset(dst + lo, 0, sizeof(real) * len);
    }
}

void KFN(model_zero_grad)(KFN(lcg_model) *m) { memset(m->grads_mem, 0, sizeof(real) * m->n_params); }

void KFN(model_backward)(KFN(lcg_model) *m) {
    if (!m->targets || !m->mask || m->n_mask == 0) return;
    const lcg_config *c = &m->cfg;
    int B = m->B, T = m->T;
    int L = c->L, C = c->C, H = c->H, D = c->D, HD = H * D, F = c->F, V = c->V, N = B * T;
    KFN(lcg_acts) *a = &m->acts;
    real **w = m->params.t, **g = m->grads.t;
    size_t NC = (size_t)N * C;

    KFN(crossentropy_backward)(a->dlogits, a->logits, m->targets, m->mask,
                               (real)(1.0 / m->n_mask), N, V);
    zero(a->dC, (size_t)NC);
    KFN(matmul_backward)(a->dC, g[LCG_P_LM], a->dlogits, a->ln_f, w[LCG_P_LM], N, C, V);
    zero(a->dres, (size_t)NC);
    const real *x_last = L ? a->res2 + (size_t)(L - 1) * NC : a->enc;
    KFN(rmsnorm_backward)(a->dres, g[LCG_P_LN_F], a->dC, x_last, w[LCG_P_LN_F], a->rs_f, N, C);

    for (int l = L - 1; l >= 0; l--) {
        const real *x_in = l ? a->res2 + (size_t)(l - 1) * NC : a->enc;
        /* FFN block: res2 = res1 + Npo(W_down geglu(W_gu Npf(res1))) ; dres holds dres2 */
        zero(a->dC, (size_t)NC);
        KFN(rmsnorm_backward)(a->dC, g[LCG_P_LN_PO] + (size_t)l * C, a->dres, a->mo + (size_t)l * NC,
                              w[LCG_P_LN_PO] + (size_t)l * C, a->rs_po + (size_t)l * N, N, C);
        zero(a->dF, (size_t)N * F);
        KFN(matmul_backward)(a->dF, g[LCG_P_WDOWN] + (size_t)l * F * C, a->dC,
                             a->ff + (size_t)l * N * F, w[LCG_P_WDOWN] + (size_t)l * F * C, N, F, C);
        zero(a->d2F, (size_t)N * 2 * F);
        KFN(geglu_backward)(a->d2F, a->dF, a->gu + (size_t)l * N * 2 * F, N, F);
        zero(a->dC, (size_t)NC);
        KFN(matmul_backward)(a->dC, g[LCG_P_WGU] + (size_t)l * C * 2 * F, a->d2F,
                             a->ln_pf + (size_t)l * NC, w[LCG_P_WGU] + (size_t)l * C * 2 * F, N, C,
                             2 * F);
        KFN(rmsnorm_backward)(a->dres, g[LCG_P_LN_PF] + (size_t)l * C, a->dC, a->res1 + (size_t)l * NC,
                              w[LCG_P_LN_PF] + (size_t)l * C, a->rs_pf + (size_t)l * N, N, C);
        /* attention block: res1 = x_in + Npa(W_o Attn(W_qkv Nin(x_in))) ; dres holds dres1 */
        zero(a->dC, (size_t)NC);
        KFN(rmsnorm_backward)(a->dC, g[LCG_P_LN_PA] + (size_t)l * C, a->dres, a->ao + (size_t)l * NC,
                              w[LCG_P_LN_PA] + (size_t)l * C, a->rs_pa + (size_t)l * N, N, C);
        zero(a->dHD, (size_t)N * HD);
        KFN(matmul_backward)(a->dHD, g[LCG_P_WO] + (size_t)l * HD * C, a->dC,
                             a->atty + (size_t)l * N * HD, w[LCG_P_WO] + (size_t)l * HD * C, N, HD, C);
        zero(a->d3HD, (size_t)N * 3 * HD);
        real *qs = m->scale ? a->qs + (size_t)l * N * H : NULL;
        if (qs) zero(a->dqs, (size_t)N * H);
        KFN(attention_backward)(a->d3HD, a->dqs, a->dHD, a->qkv + (size_t)l * N * 3 * HD, qs,
                                a->att + (size_t)l * B * H * T * T, m->slopes, m->row, c->alpha, B,
                                T, H, D);
        if (c->pos == LCG_POS_ROPE) KFN(rope_backward)(a->d3HD, B, T, H, D);
        zero(a->dC, (size_t)NC);
        KFN(matmul_backward)(a->dC, g[LCG_P_WQKV] + (size_t)l * C * 3 * HD, a->d3HD,
                             a->ln_in + (size_t)l * NC, w[LCG_P_WQKV] + (size_t)l * C * 3 * HD, N, C,
                             3 * HD);
        if (qs) { /* the ASEntmax scale reads the normed input too: its gradient joins dC */
            KFN(lcg_lenscale_w) ls = KFN(model_lenscale)(m, w, l), gls = KFN(model_lenscale)(m, g, l);
            KFN(lenscale_backward)(a->dC, &gls, a->dqs, a->ln_in + (size_t)l * NC, &ls, m->scale, m->h0,
                                   N, T, 0, C, H);
        }
        KFN(rmsnorm_backward)(a->dres, g[LCG_P_LN_IN] + (size_t)l * C, a->dC, x_in,
                              w[LCG_P_LN_IN] + (size_t)l * C, a->rs_in + (size_t)l * N, N, C);
    }
    KFN(encoder_backward)(g[LCG_P_EMB], a->dres, m->tok, N, C);
}

static int all_finite(const real *x, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (!isfinite(x[i])) return 0;
    return 1;
}

int KFN(model_find_nonfinite)(const KFN(lcg_model) *m, char *what, size_t n) {
    const lcg_config *c = &m->cfg;
    const KFN(lcg_acts) *a = &m->acts;
    size_t N = (size_t)m->B * m->T, C = (size_t)c->C, H = (size_t)c->H, HD = H * c->D, F = (size_t)c->F;
    size_t TT = (size_t)m->B * H * m->T * m->T;
    if (!all_finite(a->enc, N * C)) return snprintf(what, n, "the token embeddings"), 0;
    for (int l = 0; l < c->L; l++) {
        struct {
            const real *x;
            size_t n;
            const char *name;
        } bufs[] = {{a->qkv + l * N * 3 * HD, N * 3 * HD, "q/k/v projections"},
                    {m->scale ? a->qs + l * N * H : a->enc, m->scale ? N * H : 0, "query length scales"},
                    {a->att + l * TT, TT, "attention weights (from the scores)"},
                    {a->res1 + l * N * C, N * C, "attention block output"},
                    {a->gu + l * N * 2 * F, N * 2 * F, "FFN projections"},
                    {a->res2 + l * N * C, N * C, "FFN block output"}};
        for (size_t b = 0; b < sizeof bufs / sizeof *bufs; b++)
            if (!all_finite(bufs[b].x, bufs[b].n)) {
                snprintf(what, n, "%s of layer %d", bufs[b].name, l);
                return l;
            }
    }
    if (!all_finite(a->logits, N * (size_t)c->V)) return snprintf(what, n, "the logits"), c->L;
    return -1;
}
