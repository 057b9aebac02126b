/*
 * gpu_model.cu: the training forward/backward of model/model.c and the optimizer step of
 * model/optim.c on the GPU, as a chain of gpu_kernels.h calls over device buffers. Layer by
 * layer it is model.c line for line; the only logic here is buffer bookkeeping and the
 * host <-> device copies of the batch.
 *
 * Evaluation (gpu_model_eval) is model/prefill.c's pass over one whole sequence: every position's
 * projections and FFN at once, attention by gk_eval_attention's blocks of query rows, the LM head
 * on the requested rows; its buffers (O(n)) are separate from training's. Every layer's q/k/v rows
 * stay in them (the KV cache), so gpu_model_extend continues the sequence from any earlier row:
 * greedy decoding is an extension by one row at a time (decoder_step's arithmetic, up to rounding).
 * Several sequences keep caches at once (slots), and gpu_model_decode appends a row to each of them
 * in one pass (the backend's BLEU decoding).
 *
 * The training step (gpu_model_train_step: forward, backward, the gradient's squared norm) is
 * captured once per sequence length as a CUDA graph and replayed: one launch and one host
 * synchronization (the loss and the norm) per step; LCG_GPU_GRAPH=0 issues the kernels one by one.
 * Everything in it that changes from batch to batch lives in device memory (tokens, targets,
 * mask, 1 / masked positions), uploaded by the graph's own copies from pinned host buffers.
 *
 * Not here: a CUDA graph for the decode step.
 */
#include "gpu_model.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* device activations of one [B, T] training forward, shapes as model.inc.h's lcg_acts */
typedef struct {
    float *enc;     /* B,T,C */
    float *ln_in;   /* L,B,T,C */
    float *rs_in;   /* L,B,T */
    float *qkv;     /* L,B,T,3HD (after RoPE) */
    float *atty;    /* L,B,T,HD */
    float *att;     /* L,B,H,T,ld  (ld = gk_att_ld(T)) */
    float *qs;      /* L,B,T,H */
    float *lz;      /* L,B,T,2Hs  ASEntmax pre-activations */
    float *ao;      /* L,B,T,C */
    float *rs_pa;   /* L,B,T */
    float *res1;    /* L,B,T,C */
    float *ln_pf;   /* L,B,T,C */
    float *rs_pf;   /* L,B,T */
    float *gu;      /* L,B,T,2F */
    float *ff;      /* L,B,T,F */
    float *mo;      /* L,B,T,C */
    float *rs_po;   /* L,B,T */
    float *res2;    /* L,B,T,C */
    float *ln_f;    /* B,T,C */
    float *rs_f;    /* B,T */
    float *logits;  /* B,T,V */
    float *losses;  /* B,T */
    float *dres;    /* B,T,C */
    float *dC;      /* B,T,C */
    float *dHD;     /* B,T,HD */
    float *d3HD;    /* B,T,3HD */
    float *dF;      /* B,T,F */
    float *d2F;     /* B,T,2F */
    float *dlogits; /* B,T,V */
    float *tmp;     /* B,T,C */
    float *dqs;     /* B,T,H */
    float *ldz;     /* B,T,2Hs */
    float *att_scratch; /* gk_attention_scratch */
    float *rope_cs;     /* T,D: cos (D/2) then sin (D/2) per position */
} gpu_acts;

struct gpu_model {
    lcg_config cfg;
    gpu_precision prec;
    size_t sizes[LCG_N_PARAM_TENSORS];
    size_t n_params;
    float *mem;                       /* 4 * n_params: params | grads | adam m | adam v */
    float *params[LCG_N_PARAM_TENSORS], *grads[LCG_N_PARAM_TENSORS];
    float *adam_m, *adam_v;
    float beta1, beta2, eps, weight_decay;
    long t;
    float *slopes;                    /* H */
    int row, scale, h0;
    double alpha;
    int cap_B, cap_T, B, T, n_mask;
    float *acts_mem;
    gpu_acts a;
    double *dmem;                     /* double scratch: parts | sqsum parts | scalars */
    double *part, *sq_part, *scalars;
    int *imem;                        /* tok N | targets N | idx N | off V+1 | mask N bytes */
    int *tok, *targets, *idx, *off;
    unsigned char *mask;
    int *h_stage;                     /* pinned host copy of imem: one upload per batch */
    float *inv_n, *h_inv_n;           /* 1 / (masked positions): device, pinned host */
    /* the training step as CUDA graphs (gpu_model_train_step), one per sequence length T at batch
     * graph_B, dropped whenever the activations move (ensure_acts) or B changes */
    int use_graph, graph_B, graph_cap;
    unsigned graph_bf16;              /* gk_bf16_generation when the graphs were captured */
    void **graphs;                    /* [graph_cap] cudaGraphExec_t by T, or NULL */
    int freeze0;                      /* gpu_model_freeze_token0: embedding row 0 stays zero */
    double h_sq;                      /* the last train step's squared gradient norm ... */
    int sq_ready;                     /* ... not yet used by gpu_adamw_step */
    /* evaluation: capacity (positions) and one allocation for its buffers */
    int ev_cap;                       /* positions of the one-layer scratch and the RoPE table */
    size_t ev_scr_n;                  /* floats of ev_scr */
    float *ev_mem;
    float *ev_x, *ev_ln, *ev_qs, *ev_z, *ev_att, *ev_t1, *ev_t2, *ev_gu, *ev_ff, *ev_logits, *ev_rstd;
    float *ev_cs, *ev_scr;            /* RoPE table (cap, D), score rows (gk_eval_attention) */
    double *ev_diag;                  /* cap, H, 3 */
    int *ev_tok;                      /* cap */
    double *h_diag;                   /* host copy of ev_diag */
    /* the mechanism (gpu_eval_mech): rows of interest row | off | len | keys, their mass */
    int *ev_kmem;
    size_t ev_kcap;                   /* ints of ev_kmem */
    double *ev_mass;
    size_t ev_mcap;                   /* doubles of ev_mass */
    /* the caches (greedy decoding): ev_slots sequences' q/k/v rows, each slots, L, kv_cap (<= ev_cap),
     * 3HD (a layer's block eval_layer_qkv floats), the rows each holds, the one gpu_model_extend uses */
    float *ev_kv;
    int kv_cap, ev_slots, ev_slot, *ev_rows;
    /* gpu_model_decode's buffers: dec_cap rows (= ev_slots) at capacity dec_for_cap (= kv_cap) */
    int dec_cap, dec_for_cap;
    float *dec_mem, *dec_x, *dec_ln, *dec_qkv, *dec_qs, *dec_z, *dec_att, *dec_t1, *dec_t2, *dec_gu, *dec_ff,
        *dec_logits, *dec_rstd, *dec_scr;
    int *dec_idx;                     /* slot | pos | tok, dec_cap each */
};

static void point(float **t, float *mem, const size_t *sizes) {
    for (int i = 0; i < LCG_N_PARAM_TENSORS; i++) {
        t[i] = mem;
        mem += sizes[i];
    }
}

gpu_model *gpu_model_create(const lcg_config *cfg, const float *params_host, gpu_precision prec, char *err,
                            size_t err_len) {
    const char *bad = lcg_config_check(cfg);
    if (bad[0]) {
        snprintf(err, err_len, "%s", bad);
        return NULL;
    }
    char why[256];
    if (!gpu_device_usable(why, sizeof why)) {
        snprintf(err, err_len, "no usable CUDA GPU (%s)", why);
        return NULL;
    }
    gk_init(prec);
    gpu_model *m = (gpu_model *)calloc(1, sizeof *m);
    if (!m) {
        snprintf(err, err_len, "out of host memory");
        return NULL;
    }
    m->cfg = *cfg;
    m->prec = prec;
    m->n_params = lcg_param_sizes(cfg, m->sizes);
    m->mem = (float *)gpu_malloc(sizeof(float) * 4 * m->n_params);
    point(m->params, m->mem, m->sizes);
    point(m->grads, m->mem + m->n_params, m->sizes);
    m->adam_m = m->mem + 2 * m->n_params;
    m->adam_v = m->mem + 3 * m->n_params;
    gpu_upload(m->mem, params_host, sizeof(float) * m->n_params);
    gpu_memset0(m->mem + m->n_params, sizeof(float) * 3 * m->n_params);
    gpu_adamw_init(m, 0.9f, 0.99f, 1e-8f, 0.0f);
    float sl[LCG_MAX_HEADS];
    lcg_posenc_slopes(sl, cfg->pos, cfg->H);
    if (lcg_row_at(lcg_normalizer_at(cfg->norm)->row)->no_bias) /* stick-break: no ALiBi term (model.c) */
        for (int h = 0; h < cfg->H; h++) sl[h] = 0;
    m->slopes = (float *)gpu_malloc(sizeof(float) * cfg->H);
    gpu_upload(m->slopes, sl, sizeof(float) * cfg->H);
    const lcg_normalizer *nz = lcg_normalizer_at(cfg->norm);
    m->row = nz->row;
    m->scale = nz->scale;
    m->alpha = cfg->alpha;
    lcg_scaled_heads(cfg, &m->h0);
    m->h_inv_n = (float *)gpu_malloc_host(sizeof(float));
    const char *e = getenv("LCG_GPU_GRAPH"); /* benchmark switch: 0 = no graphs */
    m->use_graph = !e || atoi(e) != 0;
    gpu_sync();
    return m;
}

static void drop_graphs(gpu_model *m) {
    for (int t = 0; t < m->graph_cap; t++) gpu_graph_destroy(m->graphs[t]);
    free(m->graphs);
    m->graphs = NULL;
    m->graph_cap = 0;
}

void gpu_model_destroy(gpu_model *m) {
    if (!m) return;
    drop_graphs(m);
    gpu_free_host(m->h_inv_n);
    gpu_free(m->mem);
    gpu_free(m->slopes);
    gpu_free(m->acts_mem);
    gpu_free(m->dmem);
    gpu_free(m->imem);
    gpu_free_host(m->h_stage);
    gpu_free(m->ev_mem);
    gpu_free(m->ev_tok);
    gpu_free(m->ev_diag);
    free(m->h_diag);
    gpu_free(m->ev_kmem);
    gpu_free(m->ev_mass);
    gpu_free(m->ev_kv);
    free(m->ev_rows);
    gpu_free(m->dec_mem);
    gpu_free(m->dec_idx);
    free(m);
}

size_t gpu_model_n_params(const gpu_model *m) { return m->n_params; }

static void ensure_acts(gpu_model *m, int B, int T) {
    if (B <= m->cap_B && T <= m->cap_T) return;
    drop_graphs(m); /* they hold the old buffers' addresses */
    if (B < m->cap_B) B = m->cap_B;
    if (T < m->cap_T) T = m->cap_T;
    const lcg_config *c = &m->cfg;
    size_t L = (size_t)c->L, N = (size_t)B * T, C = (size_t)c->C, HD = (size_t)c->H * c->D;
    size_t F = (size_t)c->F, V = (size_t)c->V, H = (size_t)c->H, HTT = H * T * gk_att_ld(T);
    size_t sizes[] = {N * C,      L * N * C,      L * N,      L * N * 3 * HD, L * N * HD,
                      L * B * HTT, L * N * H,     L * N * 2 * H, L * N * C,  L * N,          L * N * C,      L * N * C,
                      L * N,      L * N * 2 * F,  L * N * F,  L * N * C,      L * N,          L * N * C,
                      N * C,      N,              N * V,      N,              N * C,          N * C,
                      N * HD,     N * 3 * HD,     N * F,      N * 2 * F,      N * V,          N * C,
                      N * H,      N * 2 * H,      gk_attention_scratch(B, T, c->H, c->D), (size_t)T * c->D};
    enum { N_ACTS = sizeof sizes / sizeof *sizes };
    static_assert(N_ACTS == sizeof(gpu_acts) / sizeof(float *), "acts layout");
    size_t total = 0;
    for (int i = 0; i < N_ACTS; i++) total += (sizes[i] + 63) / 64 * 64; /* 256-byte aligned */
    gpu_free(m->acts_mem);
    m->acts_mem = (float *)gpu_malloc(sizeof(float) * total);
    if (m->prec == GPU_BF16) { /* the weight matmuls' bf16 operands: the largest weight, N x widest */
        size_t w_max = C * 3 * HD, widest = C > 3 * HD ? C : 3 * HD;
        size_t ws[] = {HD * C, C * 2 * F, F * C, C * V};
        for (int i = 0; i < 4; i++) w_max = ws[i] > w_max ? ws[i] : w_max;
        size_t wd[] = {HD, 2 * F, F, V};
        for (int i = 0; i < 4; i++) widest = wd[i] > widest ? wd[i] : widest;
        gk_bf16_reserve(w_max, N * widest);
        m->graph_bf16 = gk_bf16_generation();
    }
    float **slot = (float **)&m->a;
    float *p = m->acts_mem;
    for (int i = 0; i < N_ACTS; i++) {
        slot[i] = p;
        p += (sizes[i] + 63) / 64 * 64;
    }
    /* RoPE table of positions 0..T-1 */
    if (c->pos == LCG_POS_ROPE) {
        float *cs = (float *)malloc(sizeof(float) * T * c->D);
        if (!cs) {
            fprintf(stderr, "lcgbench: out of host memory\n");
            exit(1);
        }
        gk_rope_table(cs, T, c->D);
        gpu_upload(m->a.rope_cs, cs, sizeof(float) * T * c->D);
        free(cs);
    }
    size_t n_part = gk_colsum_parts((int)N) * (C > 2 * H ? C : 2 * H), n_sq = gk_sqsum_parts();
    gpu_free(m->dmem);
    m->dmem = (double *)gpu_malloc(sizeof(double) * (n_part + n_sq + 8));
    m->part = m->dmem;
    m->sq_part = m->part + n_part;
    m->scalars = m->sq_part + n_sq;
    m->inv_n = (float *)(m->scalars + 4);
    gpu_free(m->imem);
    gpu_free_host(m->h_stage);
    size_t n_int = 3 * N + V + 1 + (N + 3) / 4;
    m->imem = (int *)gpu_malloc(sizeof(int) * n_int);
    m->h_stage = (int *)gpu_malloc_host(sizeof(int) * n_int);
    m->tok = m->imem;
    m->targets = m->tok + N;
    m->idx = m->targets + N;
    m->off = m->idx + N;
    m->mask = (unsigned char *)(m->off + V + 1);
    m->cap_B = B;
    m->cap_T = T;
}

static gk_lenscale_w layer_ls(const gpu_model *m, float *const *t, int l) {
    size_t Hs = (size_t)(m->cfg.H - m->h0), C = (size_t)m->cfg.C;
    float *p[6];
    for (int i = 0; i < 6; i++) {
        int id = LCG_P_LS_BETA + i;
        size_t per_layer = id == LCG_P_LS_WB || id == LCG_P_LS_WG ? C * Hs : Hs;
        p[i] = m->sizes[id] ? t[id] + (size_t)l * per_layer : NULL;
    }
    gk_lenscale_w w = {p[0], p[1], p[2], p[3], p[4], p[5]};
    return w;
}

/* the host half of a forward: checks the tokens, sizes the buffers and stages the batch in pinned
 * memory (laid out as the device buffers: arrays of the capacity's rows, not N); 1 with a loss */
static int stage_batch(gpu_model *m, const int *tok, const int *targets, const unsigned char *mask, int B, int T) {
    int V = m->cfg.V, N = B * T;
    for (int n = 0; n < N; n++)
        if (tok[n] < 0 || tok[n] >= V || (targets && mask && mask[n] && (targets[n] < 0 || targets[n] >= V))) {
            fprintf(stderr, "lcgbench: token %d at row %d outside the vocabulary [0, %d)\n",
                    tok[n] < 0 || tok[n] >= V ? tok[n] : targets[n], n, V);
            exit(1);
        }
    ensure_acts(m, B, T);
    m->B = B;
    m->T = T;
    m->n_mask = 0;
    /* the previous batch's copies are done: every step ends with a synchronizing download */
    size_t NC = (size_t)m->cap_B * m->cap_T;
    int *h_tok = m->h_stage, *h_tgt = h_tok + NC, *h_idx = h_tgt + NC, *h_off = h_idx + NC;
    unsigned char *h_mask = (unsigned char *)(h_off + V + 1);
    int with_loss = targets && mask;
    memcpy(h_tok, tok, sizeof(int) * N);
    if (with_loss) {
        for (int n = 0; n < N; n++) h_tgt[n] = mask[n] ? targets[n] : 0, h_mask[n] = mask[n] != 0;
        gk_token_csr(h_off, h_idx, tok, N, V); /* for the embedding's backward */
        for (int n = 0; n < N; n++) m->n_mask += mask[n] != 0;
        *m->h_inv_n = m->n_mask ? (float)(1.0 / m->n_mask) : 0.0f;
    }
    return with_loss;
}

/* the device half: the staged batch's copies, then the forward (and with a loss, its sum into
 * scalars[0]); queued on the stream, nothing synchronizes (a graph may capture it) */
static void forward_device(gpu_model *m, int with_loss) {
    const lcg_config *c = &m->cfg;
    int B = m->B, T = m->T, L = c->L, C = c->C, H = c->H, D = c->D, HD = H * D, F = c->F, V = c->V, N = B * T;
    gpu_acts *a = &m->a;
    float **w = m->params;
    size_t NC = (size_t)m->cap_B * m->cap_T;
    unsigned char *h_mask = (unsigned char *)(m->h_stage + 3 * NC + V + 1);
    gpu_upload_async(m->imem, m->h_stage,
                     with_loss ? (size_t)((h_mask + N) - (unsigned char *)m->h_stage) : sizeof(int) * N);
    if (with_loss) gpu_upload_async(m->inv_n, m->h_inv_n, sizeof(float));

    gk_encoder_forward(a->enc, m->tok, w[LCG_P_EMB], N, C);
    const float *x = a->enc;
    for (int l = 0; l < L; l++) {
        float *ln_in = a->ln_in + (size_t)l * N * C, *rs_in = a->rs_in + (size_t)l * N;
        float *qkv = a->qkv + (size_t)l * N * 3 * HD;
        float *atty = a->atty + (size_t)l * N * HD;
        float *att = a->att + (size_t)l * B * H * T * gk_att_ld(T), *ao = a->ao + (size_t)l * N * C;
        float *qs = m->scale ? a->qs + (size_t)l * N * H : NULL, *lz = a->lz + (size_t)l * N * 2 * H;
        float *rs_pa = a->rs_pa + (size_t)l * N, *res1 = a->res1 + (size_t)l * N * C;
        float *ln_pf = a->ln_pf + (size_t)l * N * C, *rs_pf = a->rs_pf + (size_t)l * N;
        float *gu = a->gu + (size_t)l * N * 2 * F, *ff = a->ff + (size_t)l * N * F;
        float *mo = a->mo + (size_t)l * N * C, *rs_po = a->rs_po + (size_t)l * N;
        float *res2 = a->res2 + (size_t)l * N * C;

        gk_rmsnorm_forward(ln_in, rs_in, x, w[LCG_P_LN_IN] + (size_t)l * C, N, C);
        gk_matmul_forward(qkv, ln_in, w[LCG_P_WQKV] + (size_t)l * C * 3 * HD, N, C, 3 * HD);
        if (c->pos == LCG_POS_ROPE) gk_rope_forward(qkv, a->rope_cs, B, T, H, D);
        if (qs) {
            gk_lenscale_w ls = layer_ls(m, w, l);
            gk_lenscale_forward(qs, lz, ln_in, &ls, m->scale, m->h0, N, T, C, H);
        }
        gk_attention_forward(atty, att, a->att_scratch, qkv, qs, m->slopes, m->row, m->alpha, B, T, H, D);
        gk_matmul_forward(ao, atty, w[LCG_P_WO] + (size_t)l * HD * C, N, HD, C);
        gk_rmsnorm_forward(a->tmp, rs_pa, ao, w[LCG_P_LN_PA] + (size_t)l * C, N, C);
        gk_add(res1, x, a->tmp, (size_t)N * C);

        gk_rmsnorm_forward(ln_pf, rs_pf, res1, w[LCG_P_LN_PF] + (size_t)l * C, N, C);
        gk_matmul_forward(gu, ln_pf, w[LCG_P_WGU] + (size_t)l * C * 2 * F, N, C, 2 * F);
        gk_geglu_forward(ff, gu, N, F);
        gk_matmul_forward(mo, ff, w[LCG_P_WDOWN] + (size_t)l * F * C, N, F, C);
        gk_rmsnorm_forward(a->tmp, rs_po, mo, w[LCG_P_LN_PO] + (size_t)l * C, N, C);
        gk_add(res2, res1, a->tmp, (size_t)N * C);
        x = res2;
    }
    gk_rmsnorm_forward(a->ln_f, a->rs_f, x, w[LCG_P_LN_F], N, C);
    gk_matmul_forward(a->logits, a->ln_f, w[LCG_P_LM], N, C, V);
    if (!with_loss) return;
    gk_crossentropy_forward(a->losses, a->logits, m->targets, m->mask, N, V);
    gk_sum(m->scalars, a->losses, (size_t)N);
}

double gpu_model_forward(gpu_model *m, const int *tok, const int *targets, const unsigned char *mask, int B, int T) {
    int with_loss = stage_batch(m, tok, targets, mask, B, T);
    forward_device(m, with_loss);
    if (!with_loss) {
        gpu_sync();
        return 0;
    }
    double sum;
    gpu_download(&sum, m->scalars, sizeof sum);
    return m->n_mask ? sum / m->n_mask : 0;
}

void gpu_model_zero_grad(gpu_model *m) {
    m->sq_ready = 0;
    gpu_memset0(m->mem + m->n_params, sizeof(float) * m->n_params);
}

/* the backward of the last forward, queued on the stream (nothing synchronizes) */
static void backward_device(gpu_model *m) {
    const lcg_config *c = &m->cfg;
    int B = m->B, T = m->T;
    int L = c->L, C = c->C, H = c->H, D = c->D, HD = H * D, F = c->F, V = c->V, N = B * T;
    gpu_acts *a = &m->a;
    float **w = m->params, **g = m->grads;
    size_t NC = (size_t)N * C;

    gk_crossentropy_backward_dev(a->dlogits, a->logits, m->targets, m->mask, m->inv_n, N, V);
    gk_matmul_backward(a->dC, g[LCG_P_LM], a->dlogits, a->ln_f, w[LCG_P_LM], N, C, V, 0);
    gpu_memset0(a->dres, sizeof(float) * NC);
    const float *x_last = a->res2 + (size_t)(L - 1) * NC;
    gk_rmsnorm_backward(a->dres, g[LCG_P_LN_F], m->part, a->dC, x_last, w[LCG_P_LN_F], a->rs_f, N, C);

    for (int l = L - 1; l >= 0; l--) {
        const float *x_in = l ? a->res2 + (size_t)(l - 1) * NC : a->enc;
        /* FFN block; dres holds dres2 */
        gpu_memset0(a->dC, sizeof(float) * NC);
        gk_rmsnorm_backward(a->dC, g[LCG_P_LN_PO] + (size_t)l * C, m->part, a->dres, a->mo + (size_t)l * NC,
                            w[LCG_P_LN_PO] + (size_t)l * C, a->rs_po + (size_t)l * N, N, C);
        gk_matmul_backward(a->dF, g[LCG_P_WDOWN] + (size_t)l * F * C, a->dC, a->ff + (size_t)l * N * F,
                           w[LCG_P_WDOWN] + (size_t)l * F * C, N, F, C, 0);
        gk_geglu_backward(a->d2F, a->dF, a->gu + (size_t)l * N * 2 * F, N, F);
        gk_matmul_backward(a->dC, g[LCG_P_WGU] + (size_t)l * C * 2 * F, a->d2F, a->ln_pf + (size_t)l * NC,
                           w[LCG_P_WGU] + (size_t)l * C * 2 * F, N, C, 2 * F, 0);
        gk_rmsnorm_backward(a->dres, g[LCG_P_LN_PF] + (size_t)l * C, m->part, a->dC, a->res1 + (size_t)l * NC,
                            w[LCG_P_LN_PF] + (size_t)l * C, a->rs_pf + (size_t)l * N, N, C);
        /* attention block; dres holds dres1 */
        gpu_memset0(a->dC, sizeof(float) * NC);
        gk_rmsnorm_backward(a->dC, g[LCG_P_LN_PA] + (size_t)l * C, m->part, a->dres, a->ao + (size_t)l * NC,
                            w[LCG_P_LN_PA] + (size_t)l * C, a->rs_pa + (size_t)l * N, N, C);
        gk_matmul_backward(a->dHD, g[LCG_P_WO] + (size_t)l * HD * C, a->dC, a->atty + (size_t)l * N * HD,
                           w[LCG_P_WO] + (size_t)l * HD * C, N, HD, C, 0);
        float *qs = m->scale ? a->qs + (size_t)l * N * H : NULL;
        gk_attention_backward(a->d3HD, qs ? a->dqs : NULL, a->att_scratch, a->dHD, a->qkv + (size_t)l * N * 3 * HD,
                              qs, a->att + (size_t)l * B * H * T * gk_att_ld(T), m->slopes, m->row, m->alpha, B, T, H,
                              D);
        if (c->pos == LCG_POS_ROPE) gk_rope_backward(a->d3HD, a->rope_cs, B, T, H, D);
        gk_matmul_backward(a->dC, g[LCG_P_WQKV] + (size_t)l * C * 3 * HD, a->d3HD, a->ln_in + (size_t)l * NC,
                           w[LCG_P_WQKV] + (size_t)l * C * 3 * HD, N, C, 3 * HD, 0);
        if (qs) { /* the ASEntmax scale reads the normed input too: its gradient joins dC */
            gk_lenscale_w ls = layer_ls(m, w, l), gls = layer_ls(m, g, l);
            gk_lenscale_backward(a->dC, &gls, a->ldz, m->part, a->dqs, a->lz + (size_t)l * N * 2 * H,
                                 a->ln_in + (size_t)l * NC, &ls, m->scale, m->h0, N, T, C, H);
        }
        gk_rmsnorm_backward(a->dres, g[LCG_P_LN_IN] + (size_t)l * C, m->part, a->dC, x_in,
                            w[LCG_P_LN_IN] + (size_t)l * C, a->rs_in + (size_t)l * N, N, C);
    }
    gk_encoder_backward(g[LCG_P_EMB], a->dres, m->off, m->idx, V, C);
    if (m->freeze0) gpu_memset0(g[LCG_P_EMB], sizeof(float) * C); /* row 0, before the norm */
}

void gpu_model_freeze_token0(gpu_model *m, int on) {
    drop_graphs(m); /* captured without (or with) the row's zeroing */
    m->freeze0 = on != 0;
    if (m->freeze0) gpu_memset0(m->params[LCG_P_EMB], sizeof(float) * m->cfg.C);
    gpu_sync();
}

void gpu_model_backward(gpu_model *m) {
    m->sq_ready = 0;
    if (m->n_mask == 0) return;
    backward_device(m);
    gpu_sync();
}

/* forward, zeroed gradients, backward and the gradient's squared norm (scalars[1]) */
static void train_device(gpu_model *m) {
    forward_device(m, 1);
    gpu_memset0(m->mem + m->n_params, sizeof(float) * m->n_params);
    backward_device(m);
    gk_sqsum(m->scalars + 1, m->sq_part, m->mem + m->n_params, m->n_params);
}

double gpu_model_train_step(gpu_model *m, const int *tok, const int *targets, const unsigned char *mask, int B, int T) {
    stage_batch(m, tok, targets, mask, B, T);
    if (m->n_mask == 0) { /* nothing to learn from: the forward, zero gradients (as the CPU) */
        forward_device(m, 1);
        gpu_model_zero_grad(m);
        gk_sqsum(m->scalars + 1, m->sq_part, m->mem + m->n_params, m->n_params);
    } else if (m->use_graph) {
        if (B != m->graph_B || m->graph_bf16 != gk_bf16_generation()) drop_graphs(m); /* stale addresses */
        m->graph_bf16 = gk_bf16_generation();
        if (!m->graphs) {
            m->graphs = (void **)calloc((size_t)m->cap_T + 1, sizeof *m->graphs);
            if (!m->graphs) {
                fprintf(stderr, "lcgbench: out of host memory\n");
                exit(1);
            }
            m->graph_cap = m->cap_T + 1;
            m->graph_B = B;
        }
        if (!m->graphs[T]) {
            gpu_graph_capture_begin();
            train_device(m);
            m->graphs[T] = gpu_graph_capture_end();
        }
        gpu_graph_launch(m->graphs[T]);
    } else {
        train_device(m);
    }
    double s[2];
    gpu_download(s, m->scalars, sizeof s);
    m->h_sq = s[1];
    m->sq_ready = 1;
    return m->n_mask ? s[0] / m->n_mask : 0;
}

void gpu_adamw_init(gpu_model *m, float beta1, float beta2, float eps, float weight_decay) {
    m->beta1 = beta1;
    m->beta2 = beta2;
    m->eps = eps;
    m->weight_decay = weight_decay;
    m->t = 0;
    gpu_memset0(m->adam_m, sizeof(float) * 2 * m->n_params);
}

double gpu_adamw_step(gpu_model *m, float lr, double clip) {
    if (!m->dmem) ensure_acts(m, 1, 1);
    int known = m->sq_ready; /* the train step's norm, of the gradients as they still are */
    m->sq_ready = 0;
    if (!known) gk_sqsum(m->scalars + 1, m->sq_part, m->mem + m->n_params, m->n_params);
    m->t++;
    /* optim.c's constants, computed the same way on the host */
    float b1 = m->beta1, b2 = m->beta2;
    float bc1 = (float)(1.0 - pow(b1, (double)m->t)), bc2 = (float)(1.0 - pow(b2, (double)m->t));
    float decay = 1.0f - lr * m->weight_decay, step = lr / bc1, rbc2 = 1.0f / sqrtf(bc2);
    gk_clip_adamw(m->mem, m->mem + m->n_params, m->adam_m, m->adam_v, m->scalars + 1, clip, b1, b2, m->eps, decay,
                  step, rbc2, m->n_params);
    double sq = m->h_sq;
    if (!known) gpu_download(&sq, m->scalars + 1, sizeof sq); /* else nothing waits for the update */
    if (!isfinite(sq)) m->t--; /* nothing was updated (as the CPU skips adamw_update) */
    return sqrt(sq);
}

/* whether every one of n floats at device d (rows of `len` floats, `ld` apart) is finite */
static int all_finite_dev(const float *d, size_t rows, size_t len, size_t ld) {
    if (!rows || !len) return 1;
    float *h = (float *)malloc(sizeof(float) * rows * ld);
    if (!h) {
        fprintf(stderr, "lcgbench: out of host memory\n");
        exit(1);
    }
    gpu_download(h, d, sizeof(float) * rows * ld);
    int ok = 1;
    for (size_t r = 0; r < rows && ok; r++)
        for (size_t i = 0; i < len; i++)
            if (!isfinite(h[r * ld + i])) {
                ok = 0;
                break;
            }
    free(h);
    return ok;
}

int gpu_model_find_nonfinite(const gpu_model *m, char *what, size_t n) {
    const lcg_config *c = &m->cfg;
    const gpu_acts *a = &m->a;
    size_t N = (size_t)m->B * m->T, C = (size_t)c->C, H = (size_t)c->H, HD = H * c->D, F = (size_t)c->F;
    size_t ld = (size_t)gk_att_ld(m->T), rows_att = (size_t)m->B * H * m->T;
    if (!m->acts_mem) return -1;
    if (!all_finite_dev(a->enc, 1, N * C, N * C)) return snprintf(what, n, "the token embeddings"), 0;
    for (int l = 0; l < c->L; l++) {
        struct {
            const float *x;
            size_t rows, len, ld;
            const char *name;
        } bufs[] = {{a->qkv + l * N * 3 * HD, 1, N * 3 * HD, N * 3 * HD, "q/k/v projections"},
                    {a->qs + l * N * H, m->scale ? (size_t)1 : 0, N * H, N * H, "query length scales"},
                    {a->att + l * rows_att * ld, rows_att, (size_t)m->T, ld, "attention weights (from the scores)"},
                    {a->res1 + l * N * C, 1, N * C, N * C, "attention block output"},
                    {a->gu + l * N * 2 * F, 1, N * 2 * F, N * 2 * F, "FFN projections"},
                    {a->res2 + l * N * C, 1, N * C, N * C, "FFN block output"}};
        for (size_t b = 0; b < sizeof bufs / sizeof *bufs; b++)
            if (!all_finite_dev(bufs[b].x, bufs[b].rows, bufs[b].len, bufs[b].ld)) {
                snprintf(what, n, "%s of layer %d", bufs[b].name, l);
                return l;
            }
    }
    if (!all_finite_dev(a->logits, 1, N * (size_t)c->V, N * (size_t)c->V)) return snprintf(what, n, "the logits"), c->L;
    return -1;
}

void gpu_model_get_params(const gpu_model *m, float *host) { gpu_download(host, m->mem, sizeof(float) * m->n_params); }
void gpu_model_set_params(gpu_model *m, const float *host) { gpu_upload(m->mem, host, sizeof(float) * m->n_params); }
void gpu_model_get_grads(const gpu_model *m, float *host) {
    gpu_download(host, m->mem + m->n_params, sizeof(float) * m->n_params);
}
void gpu_adamw_get_state(const gpu_model *m, float *m_host, float *v_host, long *t) {
    gpu_download(m_host, m->adam_m, sizeof(float) * m->n_params);
    gpu_download(v_host, m->adam_v, sizeof(float) * m->n_params);
    *t = m->t;
}
void gpu_adamw_set_state(gpu_model *m, const float *m_host, const float *v_host, long t) {
    gpu_upload(m->adam_m, m_host, sizeof(float) * m->n_params);
    gpu_upload(m->adam_v, v_host, sizeof(float) * m->n_params);
    m->t = t;
}

void gpu_model_set_grad(gpu_model *m, size_t i, float v) {
    m->sq_ready = 0;
    if (i < m->n_params) gpu_upload(m->mem + m->n_params + i, &v, sizeof v);
}

/* ---- evaluation ------------------------------------------------------------------------------ */
/* floats per score row in the evaluation and decode scratch: the scores, and for the entmax rows
 * (entmax, sparsemax; the only ones with a candidate pass, gk_eval_attention) their candidates */
static size_t score_row_copies(int row) { return row == LCG_ROW_ENTMAX || row == LCG_ROW_SPARSEMAX ? 2 : 1; }

/* floats of one layer's q/k/v rows at capacity n (256-byte aligned: each layer's block starts aligned) */
static size_t eval_layer_qkv(const lcg_config *c, int n) { return ((size_t)n * 3 * c->H * c->D + 63) / 64 * 64; }

/* the float buffers of the evaluation's one-layer scratch at capacity n (ev_* order); returns their sum */
static size_t eval_sizes(const lcg_config *c, int n, size_t *out) {
    size_t N = (size_t)n, C = (size_t)c->C, H = (size_t)c->H, HD = H * c->D, F = (size_t)c->F, V = (size_t)c->V;
    int R = gk_eval_block_rows(n, c->H);
    size_t sizes[] = {N * C, N * C, N * H, N * 2 * H, N * HD, N * C, N * C, N * 2 * F, N * F, N * V, N, N * c->D,
                      score_row_copies(lcg_normalizer_at(c->norm)->row) * H * (size_t)R * gk_eval_ld(n)};
    size_t total = 0;
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) total += out[i] = (sizes[i] + 63) / 64 * 64;
    return total;
}

/* plus one cache (every layer's q/k/v rows) */
size_t gpu_model_eval_bytes(const lcg_config *cfg, int n) {
    size_t sizes[16];
    return sizeof(float) * (eval_sizes(cfg, n, sizes) + (size_t)cfg->L * eval_layer_qkv(cfg, n)) +
           (sizeof(double) * 3 * cfg->H + sizeof(int)) * (size_t)n;
}

/* capacity (at least) n and exactly `slots` caches; a larger n or another number of slots
 * reallocates the caches at capacity n, emptying them (so slots x n bound their memory) */
static void eval_ensure(gpu_model *m, int n, int slots) {
    const lcg_config *c = &m->cfg;
    if (slots < 1) slots = 1;
    if (n <= m->kv_cap && slots == m->ev_slots) return;
    if (n > m->ev_cap) {
        size_t sizes[16], total = eval_sizes(c, n, sizes);
        gpu_free(m->ev_mem);
        gpu_free(m->ev_tok);
        gpu_free(m->ev_diag);
        free(m->h_diag);
        m->ev_mem = (float *)gpu_malloc(sizeof(float) * total);
        float **bufs[] = {&m->ev_x,  &m->ev_ln, &m->ev_qs,     &m->ev_z,    &m->ev_att, &m->ev_t1, &m->ev_t2,
                          &m->ev_gu, &m->ev_ff, &m->ev_logits, &m->ev_rstd, &m->ev_cs,  &m->ev_scr};
        float *p = m->ev_mem;
        for (size_t i = 0; i < sizeof bufs / sizeof *bufs; i++) *bufs[i] = p, p += sizes[i];
        m->ev_scr_n = sizes[sizeof bufs / sizeof *bufs - 1];
        m->ev_tok = (int *)gpu_malloc(sizeof(int) * n);
        m->ev_diag = (double *)gpu_malloc(sizeof(double) * 3 * c->H * (size_t)n);
        m->h_diag = (double *)malloc(sizeof(double) * 3 * c->H * (size_t)n);
        if (!m->h_diag) {
            fprintf(stderr, "lcgbench: out of host memory\n");
            exit(1);
        }
        if (c->pos == LCG_POS_ROPE) { /* positions 0 .. n-1 */
            float *cs = (float *)malloc(sizeof(float) * (size_t)n * c->D);
            if (!cs) {
                fprintf(stderr, "lcgbench: out of host memory\n");
                exit(1);
            }
            gk_rope_table(cs, n, c->D);
            gpu_upload(m->ev_cs, cs, sizeof(float) * (size_t)n * c->D);
            free(cs);
        }
        m->ev_cap = n;
    }
    gpu_free(m->ev_kv);
    free(m->ev_rows);
    m->ev_kv = (float *)gpu_malloc(sizeof(float) * (size_t)slots * c->L * eval_layer_qkv(c, n));
    m->kv_cap = n;
    m->ev_rows = (int *)calloc((size_t)slots, sizeof(int));
    if (!m->ev_rows) {
        fprintf(stderr, "lcgbench: out of host memory\n");
        exit(1);
    }
    m->ev_slots = slots;
    if (m->ev_slot >= slots) m->ev_slot = 0;
}

void gpu_model_eval_reserve(gpu_model *m, int cap, int slots) { eval_ensure(m, cap, slots); }

void gpu_model_eval_slot(gpu_model *m, int slot) {
    if (slot < 0 || slot >= m->ev_slots) {
        fprintf(stderr, "lcgbench: evaluation cache %d of %d\n", slot, m->ev_slots);
        exit(1);
    }
    m->ev_slot = slot;
}

/* uploads mech's rows and keys (checked: rows in [n_old, n)) into ev_kmem; returns the key lists'
 * extent (0: no rows) */
static size_t eval_keys_upload(gpu_model *m, const gpu_eval_mech *mech, int n_old, int n) {
    int nr = mech ? mech->n_rows : 0;
    if (nr <= 0) return 0;
    size_t nk = 0;
    for (int r = 0; r < nr; r++) {
        int ok = mech->row[r] >= n_old && mech->row[r] < n && (r == 0 || mech->row[r] > mech->row[r - 1]) &&
                 mech->off[r] >= 0 && mech->len[r] >= 1;
        for (int a = 0; ok && a < mech->len[r]; a++) {
            int k = mech->key[mech->off[r] + a];
            ok = k >= 0 && k <= mech->row[r] && (a == 0 || k > mech->key[mech->off[r] + a - 1]);
        }
        if (!ok) {
            fprintf(stderr, "lcgbench: row of interest %d (position %d) out of order or range, or its keys\n", r,
                    mech->row[r]);
            exit(1);
        }
        size_t end = (size_t)mech->off[r] + mech->len[r];
        nk = end > nk ? end : nk;
    }
    size_t need = 3 * (size_t)nr + nk, nm = (size_t)nr * m->cfg.L * m->cfg.H;
    if (need > m->ev_kcap) {
        gpu_free(m->ev_kmem);
        m->ev_kmem = (int *)gpu_malloc(sizeof(int) * need);
        m->ev_kcap = need;
    }
    if (nm > m->ev_mcap) {
        gpu_free(m->ev_mass);
        m->ev_mass = (double *)gpu_malloc(sizeof(double) * nm);
        m->ev_mcap = nm;
    }
    gpu_upload(m->ev_kmem, mech->row, sizeof(int) * nr);
    gpu_upload(m->ev_kmem + nr, mech->off, sizeof(int) * nr);
    gpu_upload(m->ev_kmem + 2 * (size_t)nr, mech->len, sizeof(int) * nr);
    gpu_upload(m->ev_kmem + 3 * (size_t)nr, mech->key, sizeof(int) * nk);
    return nk;
}

/* Rows n_old .. n_new-1 (k of them) against the cache of rows < n_old. Row-indexed by position
 * (absolute): each layer's q/k/v [L][cap][3HD] (the cache), the query scales, the attention
 * output, the RoPE table, the tokens; the other buffers hold the k new rows from their start. */
/* the scratch of one layer's rows after attention (each [k] rows of its width) */
typedef struct {
    float *ln /* k,C */, *rstd /* k */, *t1 /* k,C */, *t2 /* k,C */, *gu /* k,2F */, *ff /* k,F */;
} layer_bufs;

/* layer l after its attention, for k rows (the prefill's new rows, or one row per decoded
 * sequence): x += norm_pa(att Wo), then x += norm_po(GeGLU(norm_pf(x) Wgu) Wdown) */
static void layer_tail(gpu_model *m, int l, float *x /* k,C */, const float *att /* k,HD */, int k, layer_bufs b) {
    const lcg_config *c = &m->cfg;
    int C = c->C, HD = c->H * c->D, F = c->F;
    float **w = m->params;
    gk_matmul_forward(b.t1, att, w[LCG_P_WO] + (size_t)l * HD * C, k, HD, C);
    gk_rmsnorm_forward(b.t2, b.rstd, b.t1, w[LCG_P_LN_PA] + (size_t)l * C, k, C);
    gk_add(x, x, b.t2, (size_t)k * C);
    gk_rmsnorm_forward(b.ln, b.rstd, x, w[LCG_P_LN_PF] + (size_t)l * C, k, C);
    gk_matmul_forward(b.gu, b.ln, w[LCG_P_WGU] + (size_t)l * C * 2 * F, k, C, 2 * F);
    gk_geglu_forward(b.ff, b.gu, k, F);
    gk_matmul_forward(b.t1, b.ff, w[LCG_P_WDOWN] + (size_t)l * F * C, k, F, C);
    gk_rmsnorm_forward(b.t2, b.rstd, b.t1, w[LCG_P_LN_PO] + (size_t)l * C, k, C);
    gk_add(x, x, b.t2, (size_t)k * C);
}

void gpu_model_extend(gpu_model *m, const int *tok, int n_old, int n_new, int from, float *logits_host, double *diag,
                      const gpu_eval_mech *mech) {
    const lcg_config *c = &m->cfg;
    int L = c->L, C = c->C, H = c->H, D = c->D, HD = H * D, V = c->V, k = n_new - n_old;
    if (diag) memset(diag, 0, sizeof(double) * 3 * L);
    int have = m->ev_rows ? m->ev_rows[m->ev_slot] : 0;
    if (n_old < 0 || n_old > have || k < 0 || (n_old > 0 && n_new > m->kv_cap)) {
        fprintf(stderr, "lcgbench: evaluation rows %d .. %d past the cache (%d rows of %d)\n", n_old, n_new - 1,
                have, m->kv_cap);
        exit(1);
    }
    if (k == 0) return;
    for (int i = 0; i < k; i++)
        if (tok[i] < 0 || tok[i] >= V) {
            fprintf(stderr, "lcgbench: token %d at position %d outside the vocabulary [0, %d)\n", tok[i], n_old + i, V);
            exit(1);
        }
    eval_ensure(m, n_new, m->ev_slots); /* only at n_old = 0 can it reallocate (emptying the caches) */
    int r0 = from > n_old ? from : n_old; /* the first row whose logits (diagnostics, hidden) are wanted */
    int nr = eval_keys_upload(m, mech, n_old, n_new) ? mech->n_rows : 0; /* rows of interest */
    const int *krow = m->ev_kmem, *koff = krow + nr, *klen = koff + nr, *kkey = klen + nr;
    float **w = m->params, *x = m->ev_x;
    int ld = gk_eval_ld(n_new), R = gk_eval_block_rows(n_new, H);
    size_t per_row = score_row_copies(m->row) * H * ld; /* scores (and entmax candidates) */
    if ((size_t)R * per_row > m->ev_scr_n) R = (int)(m->ev_scr_n / per_row); /* the blocks the scratch holds */
    double alpha = lcg_row_alpha(lcg_row_at(m->row), m->alpha);
    int want_diag = diag && r0 < n_new;
    gpu_upload(m->ev_tok + n_old, tok, sizeof(int) * k);
    gk_encoder_forward(x, m->ev_tok + n_old, w[LCG_P_EMB], k, C);
    for (int l = 0; l < L; l++) {
        size_t lq = eval_layer_qkv(c, m->kv_cap);
        float *qkv = m->ev_kv + ((size_t)m->ev_slot * L + l) * lq; /* layer l's rows 0 .. cap-1 */
        gk_rmsnorm_forward(m->ev_ln, m->ev_rstd, x, w[LCG_P_LN_IN] + (size_t)l * C, k, C);
        gk_matmul_forward(qkv + (size_t)n_old * 3 * HD, m->ev_ln, w[LCG_P_WQKV] + (size_t)l * C * 3 * HD, k, C, 3 * HD);
        if (c->pos == LCG_POS_ROPE)
            gk_rope_forward(qkv + (size_t)n_old * 3 * HD, m->ev_cs + (size_t)n_old * D, 1, k, H, D);
        float *qs = m->scale ? m->ev_qs : NULL;
        if (qs) { /* positions n_old .. n_new-1, at their rows */
            gk_lenscale_w ls = layer_ls(m, w, l);
            gk_lenscale_forward_at(qs + (size_t)n_old * H, m->ev_z, m->ev_ln, &ls, m->scale, m->h0, k, n_old, C, H);
        }
        for (int i0 = n_old, a = 0; i0 < n_new; i0 += R) {
            int Rb = n_new - i0 < R ? n_new - i0 : R, b = a;
            gk_eval_attention(m->ev_att, want_diag ? m->ev_diag : NULL, m->ev_scr, qkv, qs, m->slopes, m->row, alpha,
                              i0, Rb, r0, H, D, ld);
            while (b < nr && mech->row[b] < i0 + Rb) b++; /* the rows of interest in this block: a .. b-1 */
            gk_eval_mass(m->ev_mass, m->ev_scr, krow, koff, klen, kkey, a, b - a, l, L, i0, Rb, H, ld);
            a = b;
        }
        layer_tail(m, l, x, m->ev_att + (size_t)n_old * HD, k,
                   (layer_bufs){m->ev_ln, m->ev_rstd, m->ev_t1, m->ev_t2, m->ev_gu, m->ev_ff});
        if (want_diag) { /* the prefill's order: rows, then heads, into a double per layer */
            size_t nd = (size_t)(n_new - r0) * H * 3;
            gpu_download(m->h_diag, m->ev_diag, sizeof(double) * nd);
            for (size_t i = 0; i < nd; i += 3)
                for (int q = 0; q < 3; q++) diag[l * 3 + q] += m->h_diag[i + q];
        }
    }
    m->ev_rows[m->ev_slot] = n_new;
    if (nr) gpu_download(mech->mass, m->ev_mass, sizeof(double) * nr * L * H);
    if (r0 >= n_new) {
        gpu_sync();
        return;
    }
    gk_rmsnorm_forward(m->ev_ln, m->ev_rstd, x + (size_t)(r0 - n_old) * C, w[LCG_P_LN_F], n_new - r0, C);
    gk_matmul_forward(m->ev_logits, m->ev_ln, w[LCG_P_LM], n_new - r0, C, V);
    gpu_download(logits_host, m->ev_logits, sizeof(float) * (size_t)(n_new - r0) * V);
    if (mech && mech->hidden) { /* the LM head's input, in chunks of rows through a host buffer */
        enum { CH = 1024 };
        int ch = n_new - r0 < CH ? n_new - r0 : CH;
        float *h = (float *)malloc(sizeof(float) * (size_t)ch * C);
        if (!h) {
            fprintf(stderr, "lcgbench: out of host memory\n");
            exit(1);
        }
        for (int a = r0; a < n_new; a += ch) {
            int q = n_new - a < ch ? n_new - a : ch;
            gpu_download(h, m->ev_ln + (size_t)(a - r0) * C, sizeof(float) * (size_t)q * C);
            for (int r = 0; r < q; r++) mech->hidden(mech->ctx, a + r, h + (size_t)r * C);
        }
        free(h);
    }
}

void gpu_model_eval(gpu_model *m, const int *tok, int n, int from, float *logits_host, double *diag,
                    const gpu_eval_mech *mech) {
    memset(diag, 0, sizeof(double) * 3 * m->cfg.L);
    if (n <= 0) return;
    gpu_model_extend(m, tok, 0, n, from < 0 ? 0 : from, logits_host, diag, mech);
}

/* gpu_model_decode's buffers: ev_slots rows at capacity kv_cap */
static void decode_ensure(gpu_model *m) {
    if (m->dec_cap == m->ev_slots && m->dec_for_cap == m->kv_cap) return;
    const lcg_config *c = &m->cfg;
    size_t A = (size_t)m->ev_slots, C = (size_t)c->C, H = (size_t)c->H, HD = H * c->D, F = (size_t)c->F;
    size_t sizes[] = {A * C,     A * C, A * 3 * HD, A * H, A * 2 * H, A * HD, A * C,
                      A * C,     A * 2 * F, A * F, A * (size_t)c->V, A,
                      score_row_copies(m->row) * A * H * (size_t)gk_eval_ld(m->kv_cap)};
    float **bufs[] = {&m->dec_x,  &m->dec_ln, &m->dec_qkv, &m->dec_qs,     &m->dec_z,    &m->dec_att, &m->dec_t1,
                      &m->dec_t2, &m->dec_gu, &m->dec_ff,  &m->dec_logits, &m->dec_rstd, &m->dec_scr};
    static_assert(sizeof sizes / sizeof *sizes == sizeof bufs / sizeof *bufs, "decode buffers");
    size_t total = 0;
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) total += (sizes[i] + 63) / 64 * 64;
    gpu_free(m->dec_mem);
    gpu_free(m->dec_idx);
    m->dec_mem = (float *)gpu_malloc(sizeof(float) * total);
    float *p = m->dec_mem;
    for (size_t i = 0; i < sizeof bufs / sizeof *bufs; i++) *bufs[i] = p, p += (sizes[i] + 63) / 64 * 64;
    m->dec_idx = (int *)gpu_malloc(sizeof(int) * 3 * A);
    m->dec_cap = m->ev_slots;
    m->dec_for_cap = m->kv_cap;
}

void gpu_model_decode(gpu_model *m, int A, const int *slot, const int *pos, const int *tok, float *logits_host) {
    const lcg_config *c = &m->cfg;
    int L = c->L, C = c->C, H = c->H, D = c->D, HD = H * D, V = c->V;
    if (A <= 0) return;
    if (A > m->ev_slots) {
        fprintf(stderr, "lcgbench: %d sequences to decode, %d caches\n", A, m->ev_slots);
        exit(1);
    }
    for (int a = 0; a < A; a++) {
        int s = slot[a], ok = s >= 0 && s < m->ev_slots && pos[a] >= 1 && pos[a] <= m->ev_rows[s] &&
                              pos[a] < m->kv_cap && tok[a] >= 0 && tok[a] < V;
        for (int b = 0; ok && b < a; b++) ok = slot[b] != s; /* one row per cache */
        if (!ok) {
            fprintf(stderr, "lcgbench: decoding token %d at position %d of cache %d (%d rows of %d)\n", tok[a], pos[a],
                    s, s >= 0 && s < m->ev_slots ? m->ev_rows[s] : -1, m->kv_cap);
            exit(1);
        }
    }
    decode_ensure(m);
    int *h = (int *)malloc(sizeof(int) * 3 * (size_t)A);
    if (!h) {
        fprintf(stderr, "lcgbench: out of host memory\n");
        exit(1);
    }
    memcpy(h, slot, sizeof(int) * A);
    memcpy(h + A, pos, sizeof(int) * A);
    memcpy(h + 2 * A, tok, sizeof(int) * A);
    gpu_upload(m->dec_idx, h, sizeof(int) * 3 * A);
    free(h);
    const int *d_slot = m->dec_idx, *d_pos = d_slot + A, *d_tok = d_pos + A;
    float **w = m->params, *x = m->dec_x;
    size_t lq = eval_layer_qkv(c, m->kv_cap);
    long long sstride = (long long)(L * lq);
    double alpha = lcg_row_alpha(lcg_row_at(m->row), m->alpha);
    gk_encoder_forward(x, d_tok, w[LCG_P_EMB], A, C);
    for (int l = 0; l < L; l++) {
        float *kv = m->ev_kv + (size_t)l * lq; /* slot s's layer l at kv + s * sstride */
        gk_rmsnorm_forward(m->dec_ln, m->dec_rstd, x, w[LCG_P_LN_IN] + (size_t)l * C, A, C);
        gk_matmul_forward(m->dec_qkv, m->dec_ln, w[LCG_P_WQKV] + (size_t)l * C * 3 * HD, A, C, 3 * HD);
        gk_decode_place(kv, sstride, m->dec_qkv, c->pos == LCG_POS_ROPE ? m->ev_cs : NULL, d_slot, d_pos, A, H, D);
        float *qs = m->scale ? m->dec_qs : NULL;
        if (qs) {
            gk_lenscale_w ls = layer_ls(m, w, l);
            gk_lenscale_forward_rows(qs, m->dec_z, m->dec_ln, &ls, m->scale, m->h0, A, d_pos, C, H);
        }
        gk_decode_attention(m->dec_att, m->dec_scr, kv, sstride, d_slot, d_pos, qs, m->slopes, m->row, alpha, A, H, D,
                            gk_eval_ld(m->kv_cap));
        layer_tail(m, l, x, m->dec_att, A,
                   (layer_bufs){m->dec_ln, m->dec_rstd, m->dec_t1, m->dec_t2, m->dec_gu, m->dec_ff});
    }
    gk_rmsnorm_forward(m->dec_ln, m->dec_rstd, x, w[LCG_P_LN_F], A, C);
    gk_matmul_forward(m->dec_logits, m->dec_ln, w[LCG_P_LM], A, C, V);
    gpu_download(logits_host, m->dec_logits, sizeof(float) * (size_t)A * V);
    for (int a = 0; a < A; a++) m->ev_rows[slot[a]] = pos[a] + 1;
}
