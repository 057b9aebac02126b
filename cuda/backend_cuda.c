/*
 * backend_cuda.c: the "cuda" implementation of the model-step seam (model/backend.h) on the
 * device model of gpu_model.h (one GPU, fp32 or tf32 matmuls). The parameters are initialized
 * on the host by model_init from the seed, exactly as the CPU backend does, and uploaded, so a
 * CPU run and a GPU run start from the same bits; parameters and AdamW state cross the seam in
 * the CPU layout, so checkpoints are interchangeable.
 *
 * Evaluation runs on the GPU (gpu_model_eval: the prefill's pass over each whole sequence, O(n)
 * device memory, one sequence at a time, the logits delivered in position order), and so does the
 * greedy continuation (BLEU): up to 64 sequences' caches kept, their next tokens decoded together
 * (gpu_model_decode), LCG_GPU_DECODE_SLOTS=0 one sequence at a time (gpu_model_extend). The mechanism:
 * the relevant-key mass of the rows the batch's keys name (never attn_row: no whole rows cross to
 * the host), the final representations through hidden. LCG_GPU_EVAL=cpu
 * takes the old path for comparison: a CPU backend (created on the first eval) receives the GPU's
 * parameters and runs its decoder's prefill. Not here: several GPUs.
 */
#include "../model/backend.h"
#include "../kernels/util.h"
#include "gpu_model.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    lcg_backend b;
    gpu_model *g;
    lcg_backend *cpu;  /* evaluation: a CPU model holding the GPU's parameters */
    float *host;       /* [n_params] scratch */
    size_t sizes[LCG_N_PARAM_TENSORS];
    int fault_grad;    /* LCG_FAULT_GRAD armed for the next backward */
    float *fault_keep; /* [n_params] the parameters before a fault, or NULL */
    int *ev_tok;       /* evaluation: [ev_cap] input tokens ... */
    float *ev_logits;  /* [ev_cap, V] ... and the logits of the requested positions */
    int ev_cap;
    int *dec_int;      /* greedy decoding: slot | pos | tok | sequence [dec_cap] each ... */
    float *dec_logits; /* [dec_cap, V] ... and their logits */
    int dec_cap;
} cuda_state;

/* the sequences decoded at once (greedy continuation, BLEU): LCG_GPU_DECODE_SLOTS (default 64; 0:
 * one sequence at a time by gpu_model_extend), at most n_seqs and 4 GiB of caches */
static int decode_slots(const lcg_config *cfg, int cap, int n_seqs) {
    const char *e = getenv("LCG_GPU_DECODE_SLOTS");
    int S = e ? atoi(e) : 64;
    size_t per = sizeof(float) * (size_t)cfg->L * cap * 3 * cfg->H * cfg->D, budget = (size_t)4 << 30;
    if (S > n_seqs) S = n_seqs;
    if (S > 1 && (size_t)S * per > budget) S = budget / per > 1 ? (int)(budget / per) : 1;
    return S < 0 ? 0 : S;
}

/* LCG_GPU_EVAL=cpu: evaluation on the CPU with the GPU's parameters */
static int eval_on_cpu(void) {
    const char *e = getenv("LCG_GPU_EVAL");
    return e && strcmp(e, "cpu") == 0;
}

static cuda_state *cu(lcg_backend *b) { return b->impl; }

static int cuda_available(char *why, size_t n) {
    char r[256];
    if (gpu_device_usable(r, sizeof r)) return 1;
    snprintf(why, n, "no usable CUDA GPU (%s)", r);
    return 0;
}

/* the row functions the device kernels implement: every one of the registry's (softmax, the
 * entmax family, top-k, stick-breaking, adaptive-softmax); a row added there is refused here until
 * gpu_kernels.cu implements it */
static int cuda_supports(const lcg_config *cfg, char *why, size_t n) {
    const lcg_normalizer *nz = lcg_normalizer_at(cfg->norm);
    if (nz && nz->row >= 0 && nz->row <= LCG_ROW_ADAPTIVE) return 1;
    snprintf(why, n, "--attn %s is not implemented on the cuda backend", nz ? nz->name : "?");
    return 0;
}

static lcg_backend *cuda_create(const lcg_config *cfg, uint64_t seed, const lcg_backend_opts *o) {
    char why[160];
    if (!cuda_supports(cfg, why, sizeof why)) {
        fprintf(stderr, "lcgbench: %s\n", why);
        exit(1);
    }
    cuda_state *s = LCG_NEW(cuda_state, 1);
    lcg_model init;
    model_init(&init, cfg, seed);
    char err[512];
    gpu_precision prec = o->precision == LCG_PREC_TF32 ? GPU_TF32 : o->precision == LCG_PREC_BF16 ? GPU_BF16 : GPU_FP32;
    s->g = gpu_model_create(cfg, init.params_mem, prec, err, sizeof err);
    if (!s->g) {
        fprintf(stderr, "lcgbench: %s\n", err);
        exit(1);
    }
    gpu_adamw_init(s->g, o->beta1, o->beta2, o->eps, o->weight_decay);
    if (o->freeze_token0) gpu_model_freeze_token0(s->g, 1);
    size_t n = lcg_param_sizes(cfg, s->sizes);
    model_free(&init);
    s->host = LCG_NEW(float, n);
    s->b = (lcg_backend){.ops = &lcg_backend_cuda, .cfg = *cfg, .n_params = n, .impl = s};
    snprintf(s->b.device, sizeof s->b.device, "%s", gpu_device_name());
    return &s->b;
}

static void cuda_destroy(lcg_backend *b) {
    cuda_state *s = cu(b);
    gpu_model_destroy(s->g);
    if (s->cpu) s->cpu->ops->destroy(s->cpu);
    lcg_free(s->host);
    lcg_free(s->fault_keep);
    lcg_free(s->ev_tok);
    lcg_free(s->ev_logits);
    lcg_free(s->dec_int);
    lcg_free(s->dec_logits);
    lcg_free(s);
}

/* the offset of parameter tensor t in the CPU layout */
static size_t offset_of(const cuda_state *s, int t) {
    size_t off = 0;
    for (int i = 0; i < t; i++) off += s->sizes[i];
    return off;
}

static double cuda_forward_backward(lcg_backend *b, const int *tok, const int *targets, const unsigned char *mask,
                                    int B, int T) {
    cuda_state *s = cu(b);
    /* forward and backward in one go (a CUDA graph); with a non-finite loss the caller diagnoses
     * the forward's activations, which the backward leaves as they are, and takes no step */
    double loss = gpu_model_train_step(s->g, tok, targets, mask, B, T);
    if (!isfinite(loss)) return loss;
    if (s->fault_grad) { /* a NaN in the last layer's FFN gradient (as the CPU backend) */
        gpu_model_set_grad(s->g, offset_of(s, LCG_P_WDOWN) + (size_t)(b->cfg.L - 1) * (s->sizes[LCG_P_WDOWN] / (size_t)b->cfg.L), NAN);
        s->fault_grad = 0;
    }
    return loss;
}

static double cuda_optimizer_step(lcg_backend *b, double clip, float lr) { return gpu_adamw_step(cu(b)->g, lr, clip); }

static void cuda_get_params(lcg_backend *b, float *p) { gpu_model_get_params(cu(b)->g, p); }
static void cuda_set_params(lcg_backend *b, const float *p) { gpu_model_set_params(cu(b)->g, p); }

static void cuda_get_optimizer(lcg_backend *b, float *m, float *v, long *t) { gpu_adamw_get_state(cu(b)->g, m, v, t); }

static void cuda_set_optimizer(lcg_backend *b, const float *m, const float *v, long t) {
    cuda_state *s = cu(b);
    if (m && v) {
        gpu_adamw_set_state(s->g, m, v, t);
        return;
    }
    /* one of the two kept as it is */
    float *mm = LCG_NEW(float, b->n_params), *vv = LCG_NEW(float, b->n_params);
    long t0;
    gpu_adamw_get_state(s->g, mm, vv, &t0);
    if (m) memcpy(mm, m, sizeof(float) * b->n_params);
    if (v) memcpy(vv, v, sizeof(float) * b->n_params);
    gpu_adamw_set_state(s->g, mm, vv, t);
    lcg_free(mm);
    lcg_free(vv);
}

static int cuda_find_nonfinite(lcg_backend *b, char *what, size_t n) { return gpu_model_find_nonfinite(cu(b)->g, what, n); }

static int cuda_find_nonfinite_grad(lcg_backend *b, char *what, size_t n) {
    cuda_state *s = cu(b);
    gpu_model_get_grads(s->g, s->host);
    for (size_t i = 0, off = 0; i < LCG_N_PARAM_TENSORS; off += s->sizes[i++]) {
        size_t j = 0;
        while (j < s->sizes[i] && isfinite(s->host[off + j])) j++;
        if (j == s->sizes[i]) continue;
        int per_layer = !(i == LCG_P_EMB || i == LCG_P_LN_F || i == LCG_P_LM);
        if (per_layer) snprintf(what, n, "the gradient of %s of layer %d", lcg_param_names[i], (int)(j / (s->sizes[i] / (size_t)b->cfg.L)));
        else snprintf(what, n, "the gradient of %s", lcg_param_names[i]);
        return 1;
    }
    return 0;
}

/* the CPU backend's faults, applied to a host copy and uploaded; undo uploads the copy kept */
static void cuda_fault(lcg_backend *b, int kind) {
    cuda_state *s = cu(b);
    const lcg_config *c = &b->cfg;
    if (kind == LCG_FAULT_GRAD) {
        s->fault_grad = 1;
        return;
    }
    if (!s->fault_keep) s->fault_keep = LCG_NEW(float, b->n_params);
    gpu_model_get_params(s->g, s->fault_keep);
    memcpy(s->host, s->fault_keep, sizeof(float) * b->n_params);
    size_t C = (size_t)c->C, HD = (size_t)c->H * c->D, l = (size_t)c->L - 1;
    if (kind == LCG_FAULT_ATTN) { /* q.k overflows: scores of +-inf (the CPU poisons at most 4096) */
        if (C * 2 * HD > 4096) return;
        float *p = s->host + offset_of(s, LCG_P_WQKV) + l * C * 3 * HD;
        for (size_t r = 0; r < C; r++)
            for (size_t k = 0; k < 2 * HD; k++) p[r * 3 * HD + k] = 1e30f;
    } else if (kind == LCG_FAULT_LOGITS) {
        s->host[offset_of(s, LCG_P_LM)] = INFINITY;
    }
    gpu_model_set_params(s->g, s->host);
}

static void cuda_fault_undo(lcg_backend *b) {
    cuda_state *s = cu(b);
    if (!s->fault_keep) return;
    gpu_model_set_params(s->g, s->fault_keep);
    lcg_free(s->fault_keep);
    s->fault_keep = NULL;
}

/* the final representations of gpu_model_eval, handed on as the batch's hidden */
typedef struct {
    const lcg_eval_batch *e;
    int s;
} hidden_emit;

static void emit_hidden(void *ctx, int pos, const float *x) {
    hidden_emit *h = ctx;
    h->e->hidden(h->e->ctx, h->s, pos, x);
}

/* on the GPU: each sequence's pass (gpu_model_eval), one at a time; the greedy continuations of up
 * to S of them (decode_slots) at once, a token each per gpu_model_decode, each on its own cache;
 * LCG_GPU_EVAL=cpu: on the CPU (see the top) */
static int cuda_eval(lcg_backend *b, const lcg_eval_batch *e) {
    cuda_state *s = cu(b);
    if (eval_on_cpu()) {
        if (!s->cpu) {
            lcg_backend_opts o = {0};
            s->cpu = lcg_backend_cpu.create(&b->cfg, 0, &o);
        }
        gpu_model_get_params(s->g, s->host);
        s->cpu->ops->set_params(s->cpu, s->host);
        return s->cpu->ops->eval(s->cpu, e);
    }
    int V = b->cfg.V, L = b->cfg.L;
    if (e->cap > s->ev_cap) {
        lcg_free(s->ev_tok);
        lcg_free(s->ev_logits);
        s->ev_tok = LCG_NEW(int, e->cap);
        s->ev_logits = LCG_NEW(float, (size_t)e->cap * V);
        s->ev_cap = e->cap;
    }
    int S = e->greedy_start ? decode_slots(&b->cfg, e->cap, e->n_seqs) : 0;
    if (S > s->dec_cap || !s->dec_int) {
        int cap = S > 1 ? S : 1;
        lcg_free(s->dec_int);
        lcg_free(s->dec_logits);
        s->dec_int = LCG_NEW(int, 4 * (size_t)cap);
        s->dec_logits = LCG_NEW(float, (size_t)cap * V);
        s->dec_cap = cap;
    }
    int *slot = s->dec_int, *pos = slot + S, *tok = pos + S, *seq = tok + S;
    gpu_model_eval_reserve(s->g, e->cap, S > 0 ? S : 1); /* every position, greedy continuations' included */
    for (int g0 = 0; g0 < e->n_seqs; g0 += S > 0 ? S : e->n_seqs) {
        int g1 = S > 0 && g0 + S < e->n_seqs ? g0 + S : e->n_seqs, A = 0;
        for (int q = g0; q < g1; q++) {
            if (*e->stop) return -1; /* an interrupted batch is discarded */
            int from = 0, n = e->input(e->ctx, q, s->ev_tok, &from);
            double dg[LCG_MAX_LAYERS * 3];
            if (from < 0) from = 0;
            /* the mechanism: the mass of the rows the caller names, the final representations */
            const lcg_eval_keys *k = e->keys ? e->keys(e->ctx, q) : NULL;
            hidden_emit he = {e, q};
            gpu_eval_mech mech = {.hidden = e->hidden ? emit_hidden : NULL, .ctx = &he};
            if (k && k->n_rows > 0)
                mech.n_rows = k->n_rows, mech.row = k->row, mech.off = k->off, mech.len = k->len, mech.key = k->key,
                mech.mass = k->mass;
            gpu_model_eval_slot(s->g, S > 0 ? q - g0 : 0);
            gpu_model_eval(s->g, s->ev_tok, n, from, s->ev_logits, dg, &mech);
            for (int i = from; i < n; i++) e->logits(e->ctx, q, i, s->ev_logits + (size_t)(i - from) * V);
            e->diag[q].rows = n > from ? (long)(n - from) * b->cfg.H : 0;
            memset(e->diag[q].sum, 0, sizeof e->diag[q].sum);
            for (int l = 0; l < L; l++)
                for (int k = 0; k < 3; k++) e->diag[q].sum[l][k] = dg[l * 3 + k];
            /* greedy continuation (BLEU), as the CPU backend: keep n0 rows of the cache, append one
             * token at a time (its logits to greedy_next); no diagnostics, no mechanism */
            int t = -1, p = e->greedy_start ? e->greedy_start(e->ctx, q, &t) : -1;
            if (p < 0 || t < 0) continue;
            if (S > 0) { /* with the group's others, below */
                slot[A] = q - g0, pos[A] = p, tok[A] = t, seq[A] = q, A++;
                continue;
            }
            for (; t >= 0; p++) { /* LCG_GPU_DECODE_SLOTS=0: this sequence alone, a row at a time */
                gpu_model_extend(s->g, &t, p, p + 1, p, s->ev_logits, NULL, NULL);
                t = e->greedy_next(e->ctx, q, p, s->ev_logits);
            }
        }
        while (A > 0) { /* the group's continuations, a token each per step, finished ones dropped */
            if (*e->stop) return -1;
            gpu_model_decode(s->g, A, slot, pos, tok, s->dec_logits);
            int a2 = 0;
            for (int a = 0; a < A; a++) {
                int t = e->greedy_next(e->ctx, seq[a], pos[a], s->dec_logits + (size_t)a * V);
                if (t >= 0) slot[a2] = slot[a], pos[a2] = pos[a] + 1, tok[a2] = t, seq[a2] = seq[a], a2++;
            }
            A = a2;
        }
    }
    return *e->stop ? -1 : 0;
}

/* host bytes (the device's are checked when allocated: one line and exit 1 if they do not fit) */
static size_t cuda_eval_bytes(const lcg_config *cfg, int cap, int threads) {
    if (eval_on_cpu()) return lcg_backend_cpu.eval_bytes(cfg, cap, threads);
    return (size_t)cap * (sizeof(int) + sizeof(float) * (size_t)cfg->V + sizeof(double) * 3 * (size_t)cfg->H) +
           sizeof(float) * 1024 * (size_t)cfg->C + /* gpu_model_eval's chunk of final representations */
           (sizeof(float) * (size_t)cfg->V + 4 * sizeof(int)) * 64; /* greedy decoding's rows */
}

const lcg_backend_ops lcg_backend_cuda = {
    .name = "cuda",
    .available = cuda_available,
    .supports = cuda_supports,
    .create = cuda_create,
    .destroy = cuda_destroy,
    .forward_backward = cuda_forward_backward,
    .optimizer_step = cuda_optimizer_step,
    .get_params = cuda_get_params,
    .set_params = cuda_set_params,
    .get_optimizer = cuda_get_optimizer,
    .set_optimizer = cuda_set_optimizer,
    .find_nonfinite = cuda_find_nonfinite,
    .find_nonfinite_grad = cuda_find_nonfinite_grad,
    .fault = cuda_fault,
    .fault_undo = cuda_fault_undo,
    .eval = cuda_eval,
    .eval_bytes = cuda_eval_bytes,
};
