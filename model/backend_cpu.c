/*
 * backend_cpu.c: the "cpu" implementation of the model-step seam (backend.h) on the float
 * model of model.c, AdamW of optim.c and the KV-cache decoder of infer.c / prefill.c, in the
 * order of operations the training loop has always used (forward, zero the gradients,
 * backward; clip, AdamW), so results are bitwise those of driving the model directly.
 *
 * Evaluation: several sequences run in parallel, one decoder (KV cache, O(n) memory) per
 * thread, each writing only its own results; a single sequence runs alone with the prefill
 * parallel inside it. Both give the same bits (the prefill does not depend on the thread
 * count). Not here: anything about tasks, files or the schedule.
 */
#include "backend.h"
#include "infer.h"
#include "optim.h"
#include "../kernels/util.h"

#include <math.h>
#include <omp.h>
#include <string.h>

typedef struct {
    lcg_backend b;
    lcg_model m;
    lcg_adamw opt;
    int fault_grad;   /* LCG_FAULT_GRAD armed for the next backward */
    int freeze0;      /* opts.freeze_token0: embedding row 0 stays zero */
    struct {          /* the parameters a fault overwrote, to undo it */
        float *p;
        float keep[4096];
        size_t n, stride, rows, cols;
    } fault;
} cpu_state;

static cpu_state *cpu(lcg_backend *b) { return b->impl; }

static lcg_backend *cpu_create(const lcg_config *cfg, uint64_t seed, const lcg_backend_opts *o) {
    cpu_state *s = LCG_NEW(cpu_state, 1);
    model_init(&s->m, cfg, seed);
    s->freeze0 = o->freeze_token0;
    /* as nn.Embedding(padding_idx = 0): the other rows keep their draws, row 0 is zeroed */
    if (s->freeze0) memset(s->m.params.t[LCG_P_EMB], 0, sizeof(float) * (size_t)cfg->C); /* row 0 [C] */
    adamw_init(&s->opt, s->m.n_params, o->beta1, o->beta2, o->eps, o->weight_decay);
    s->b = (lcg_backend){.ops = &lcg_backend_cpu, .cfg = *cfg, .n_params = s->m.n_params, .impl = s};
    return &s->b;
}

static void cpu_destroy(lcg_backend *b) {
    cpu_state *s = cpu(b);
    adamw_free(&s->opt);
    model_free(&s->m);
    lcg_free(s);
}

static double cpu_forward_backward(lcg_backend *b, const int *tok, const int *targets, const unsigned char *mask,
                                   int B, int T) {
    cpu_state *s = cpu(b);
    lcg_model *m = &s->m;
    double loss = model_forward(m, tok, targets, mask, B, T);
    if (!isfinite(loss)) return loss; /* the caller diagnoses the activations as they are */
    model_zero_grad(m);
    model_backward(m);
    if (s->freeze0) memset(m->grads.t[LCG_P_EMB], 0, sizeof(float) * (size_t)m->cfg.C); /* before clipping's norm */
    if (s->fault_grad) { /* a NaN in the last layer's FFN gradient */
        size_t off = 0;
        for (int i = 0; i < LCG_P_WDOWN; i++) off += m->sizes[i];
        m->grads_mem[off + (size_t)(m->cfg.L - 1) * (m->sizes[LCG_P_WDOWN] / (size_t)m->cfg.L)] = NAN;
        s->fault_grad = 0;
    }
    return loss;
}

static double cpu_optimizer_step(lcg_backend *b, double clip, float lr) {
    cpu_state *s = cpu(b);
    double norm = grad_clip(s->m.grads_mem, s->m.n_params, clip);
    if (isfinite(norm)) adamw_update(&s->opt, s->m.params_mem, s->m.grads_mem, lr);
    return norm;
}

static void cpu_get_params(lcg_backend *b, float *p) { memcpy(p, cpu(b)->m.params_mem, sizeof(float) * b->n_params); }
static void cpu_set_params(lcg_backend *b, const float *p) { memcpy(cpu(b)->m.params_mem, p, sizeof(float) * b->n_params); }

static void cpu_get_optimizer(lcg_backend *b, float *m, float *v, long *t) {
    cpu_state *s = cpu(b);
    memcpy(m, s->opt.m, sizeof(float) * b->n_params);
    memcpy(v, s->opt.v, sizeof(float) * b->n_params);
    *t = s->opt.t;
}

static void cpu_set_optimizer(lcg_backend *b, const float *m, const float *v, long t) {
    cpu_state *s = cpu(b);
    if (m) memcpy(s->opt.m, m, sizeof(float) * b->n_params);
    if (v) memcpy(s->opt.v, v, sizeof(float) * b->n_params);
    s->opt.t = t;
}

static int cpu_find_nonfinite(lcg_backend *b, char *what, size_t n) { return model_find_nonfinite(&cpu(b)->m, what, n); }

/* the layer of element i of parameter tensor t, or -1 for the tensors outside the layers */
static int layer_of(const lcg_model *m, int t, size_t i) {
    if (t == LCG_P_EMB || t == LCG_P_LN_F || t == LCG_P_LM || !m->sizes[t]) return -1;
    return (int)(i / (m->sizes[t] / (size_t)m->cfg.L));
}

static int cpu_find_nonfinite_grad(lcg_backend *b, char *what, size_t n) {
    const lcg_model *m = &cpu(b)->m;
    for (size_t i = 0, off = 0; i < LCG_N_PARAM_TENSORS; off += m->sizes[i++]) {
        size_t j = 0;
        while (j < m->sizes[i] && isfinite(m->grads_mem[off + j])) j++;
        if (j == m->sizes[i]) continue;
        int l = layer_of(m, (int)i, j);
        if (l >= 0) snprintf(what, n, "the gradient of %s of layer %d", lcg_param_names[i], l);
        else snprintf(what, n, "the gradient of %s", lcg_param_names[i]);
        return 1;
    }
    return 0;
}

static void poison(cpu_state *s, float *p, size_t rows, size_t cols, size_t stride, float v) {
    s->fault.p = p, s->fault.rows = rows, s->fault.cols = cols, s->fault.stride = stride, s->fault.n = 0;
    for (size_t r = 0; r < rows; r++)
        for (size_t c = 0; c < cols; c++) {
            if (s->fault.n < sizeof s->fault.keep / sizeof *s->fault.keep) s->fault.keep[s->fault.n++] = p[r * stride + c];
            p[r * stride + c] = v;
        }
}

static void cpu_fault(lcg_backend *b, int kind) {
    cpu_state *s = cpu(b);
    lcg_model *m = &s->m;
    const lcg_config *c = &m->cfg;
    size_t off[LCG_N_PARAM_TENSORS + 1] = {0};
    for (int i = 0; i < LCG_N_PARAM_TENSORS; i++) off[i + 1] = off[i] + m->sizes[i];
    size_t C = (size_t)c->C, HD = (size_t)c->H * c->D, l = (size_t)c->L - 1;
    if (kind == LCG_FAULT_ATTN) { /* q.k overflows: scores of +-inf */
        if (C * 2 * HD <= sizeof s->fault.keep / sizeof *s->fault.keep)
            poison(s, m->params_mem + off[LCG_P_WQKV] + l * C * 3 * HD, C, 2 * HD, 3 * HD, 1e30f);
    } else if (kind == LCG_FAULT_LOGITS) {
        poison(s, m->params_mem + off[LCG_P_LM], 1, 1, 1, INFINITY);
    } else if (kind == LCG_FAULT_GRAD) {
        s->fault_grad = 1;
    }
}

static void cpu_fault_undo(lcg_backend *b) {
    cpu_state *s = cpu(b);
    for (size_t r = 0, k = 0; r < s->fault.rows; r++)
        for (size_t c = 0; c < s->fault.cols && k < s->fault.n; c++) s->fault.p[r * s->fault.stride + c] = s->fault.keep[k++];
    s->fault.rows = 0;
}

/* one sequence of e through decoder d (tok: room for d->cap tokens) */
typedef struct {
    const lcg_eval_batch *e;
    int s;
} eval_emit;

static void emit_logits(void *ctx, int pos, const float *logits) {
    eval_emit *x = ctx;
    x->e->logits(x->e->ctx, x->s, pos, logits);
}

static void emit_row(void *ctx, int l, int h, int i, const int *j, const float *p, int n) {
    eval_emit *x = ctx;
    x->e->attn_row(x->e->ctx, x->s, l, h, i, j, p, n);
}

static void emit_hidden(void *ctx, int pos, const float *v) {
    eval_emit *x = ctx;
    x->e->hidden(x->e->ctx, x->s, pos, v);
}

static void eval_one(lcg_decoder *d, int *tok, const lcg_eval_batch *e, int s) {
    int from = 0, n = e->input(e->ctx, s, tok, &from);
    eval_emit x = {e, s};
    decoder_reset(d);
    d->observe = e->attn_row ? emit_row : NULL, d->observe_ctx = &x;
    d->hidden = e->hidden ? emit_hidden : NULL, d->hidden_ctx = &x;
    d->stop = e->stop;
    decoder_prefill(d, tok, n, from, emit_logits, &x);
    d->observe = NULL, d->hidden = NULL, d->stop = NULL;
    if (*e->stop) return; /* the batch is discarded */
    e->diag[s].rows = d->diag_rows;
    memcpy(e->diag[s].sum, d->diag, sizeof e->diag[s].sum);
    int t, n0 = e->greedy_start ? e->greedy_start(e->ctx, s, &t) : -1;
    if (n0 < 0) return;
    d->collect = 0;
    decoder_truncate(d, n0);
    while (t >= 0 && !*e->stop) {
        const float *logits = decoder_step(d, t, 1);
        t = e->greedy_next(e->ctx, s, d->n - 1, logits);
    }
}

static int cpu_eval(lcg_backend *b, const lcg_eval_batch *e) {
    const lcg_model *m = &cpu(b)->m;
    if (e->n_seqs == 1) { /* one sequence: the prefill parallel inside it */
        lcg_decoder d;
        decoder_init(&d, m, e->cap);
        int *tok = LCG_NEW(int, e->cap);
        if (!*e->stop) eval_one(&d, tok, e, 0);
        lcg_free(tok);
        decoder_free(&d);
        return *e->stop ? -1 : 0;
    }
#pragma omp parallel
    {
        lcg_decoder d;
        decoder_init(&d, m, e->cap);
        int *tok = LCG_NEW(int, e->cap);
#pragma omp for schedule(dynamic, 1)
        for (int s = 0; s < e->n_seqs; s++)
            if (!*e->stop) eval_one(&d, tok, e, s); /* an interrupted batch is discarded: skip the rest */
        lcg_free(tok);
        decoder_free(&d);
    }
    return *e->stop ? -1 : 0;
}

static size_t cpu_eval_bytes(const lcg_config *cfg, int cap, int threads) {
    return (decoder_bytes(cfg, cap) + prefill_scratch_bytes(cfg, cap)) * (size_t)threads;
}

const lcg_backend_ops lcg_backend_cpu = {
    .name = "cpu",
    .create = cpu_create,
    .destroy = cpu_destroy,
    .forward_backward = cpu_forward_backward,
    .optimizer_step = cpu_optimizer_step,
    .get_params = cpu_get_params,
    .set_params = cpu_set_params,
    .get_optimizer = cpu_get_optimizer,
    .set_optimizer = cpu_set_optimizer,
    .find_nonfinite = cpu_find_nonfinite,
    .find_nonfinite_grad = cpu_find_nonfinite_grad,
    .fault = cpu_fault,
    .fault_undo = cpu_fault_undo,
    .eval = cpu_eval,
    .eval_bytes = cpu_eval_bytes,
};

lcg_model *lcg_backend_cpu_model(lcg_backend *b) { return b->ops == &lcg_backend_cpu ? &cpu(b)->m : NULL; }
