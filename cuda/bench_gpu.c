/*
 * bench_gpu.c: training tokens/s of the device model (gpu_model.h) on the paper's
 * architectures, per precision and normalizer, with where a step's time goes (forward,
 * backward, optimizer; the attention alone). Random tokens, every position in the loss; the
 * timed loop is the trainer's: gpu_model_train_step (forward + backward + the gradient norm, a CUDA
 * graph; one sync for the loss and norm), then clip + AdamW (queued, no sync); LCG_GPU_GRAPH=0
 * launches the kernels one by one instead.
 *
 * Evaluation: `bench_gpu eval LEN NORM [cpu]` times one sequence of LEN random tokens through
 * gpu_model_eval (the GPU prefill; the last 512 positions' logits and diagnostics, as a sample's
 * answer) on the mqmtar architecture (model_init's weights, NAPE), the second of two calls (the
 * first allocates), then once more with the mechanism (gpu_eval_mech: those rows' mass on 4 keys
 * each, their final representations), and with `cpu` the CPU's decoder_prefill on every OpenMP
 * thread, and the two logits' relative difference.
 *
 * Decoding: `bench_gpu decode [PROMPT [TOKENS]]` (default 256, 200) times greedy decoding on the
 * GPU per token after a prompt (gpu_model_extend by one row, fp32, NAPE) on the copy and mqmtar
 * architectures, softmax and asentmax; then 64 sequences at once (gpu_model_decode, a row each
 * per step, as the backend's BLEU decoding), and the CPU decoder's decoder_step on one thread.
 *
 * Usage: bench_gpu [steps [ARCH NORM PREC [warmup]]]   (default: 30 timed steps after 3 warm-up
 * steps of every architecture, normalizer and precision; ARCH copy|mqmtar|bench, NORM a normalizer
 * name (with NAPE), PREC fp32|tf32|bf16: that one alone, e.g. under a profiler)
 * Not here: PyTorch (bench/).
 */
#include "../kernels/kernels.h"
#include "../kernels/util.h"
#include "../model/infer.h"
#include "../model/model.h"
#include "gpu_model.h"

#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const char *name;
    int V, L, C, H, D, F, B, T;
} arch;

static int warmup = 3;

static void bench(const arch *a, int norm, int pos, gpu_precision prec, int steps) {
    lcg_config cfg = {.V = a->V, .L = a->L, .C = a->C, .H = a->H, .D = a->D, .F = a->F, .norm = norm, .pos = pos,
                      .alpha = (float)lcg_normalizer_at(norm)->alpha_def};
    size_t sizes[LCG_N_PARAM_TENSORS], n = lcg_param_sizes(&cfg, sizes);
    float *p = LCG_NEW(float, n);
    pcg32 r = pcg32_derive(1, "bench", 0);
    for (size_t i = 0; i < n; i++) p[i] = (float)(0.02 * pcg32_normal(&r));
    char err[256];
    gpu_model *m = gpu_model_create(&cfg, p, prec, err, sizeof err);
    if (!m) lcg_die("%s", err);
    gpu_adamw_init(m, 0.9f, 0.99f, 1e-8f, 0.01f);
    int N = a->B * a->T;
    int *tok = LCG_NEW(int, N), *tgt = LCG_NEW(int, N);
    unsigned char *mask = LCG_NEW(unsigned char, N);
    for (int i = 0; i < N; i++) tok[i] = (int)pcg32_below(&r, (uint32_t)a->V), tgt[i] = tok[i], mask[i] = 1;
    double tf = 0, to = 0, loss = 0;
    for (int s = -warmup; s < steps; s++) {
        double t0 = lcg_now();
        loss = gpu_model_train_step(m, tok, tgt, mask, a->B, a->T);
        double t1 = lcg_now();
        gpu_adamw_step(m, 1e-3f, 1.0);
        double t2 = lcg_now();
        if (s >= 0) tf += t1 - t0, to += t2 - t1;
    }
    gpu_sync();
    double total = tf + to, tps = (double)N * steps / total;
    const char *gr = getenv("LCG_GPU_GRAPH");
    printf("%-7s %-5s %-9s %-5s  %8.3fM tok/s  step %7.3f ms = fwd+bwd %6.3f + opt %6.3f%s  (loss %.3f)\n", a->name,
           prec == GPU_TF32 ? "tf32" : prec == GPU_BF16 ? "bf16" : "fp32", lcg_normalizer_at(norm)->name,
           lcg_posenc_at(pos)->name, tps / 1e6,
           1e3 * total / steps, 1e3 * tf / steps, 1e3 * to / steps, gr && atoi(gr) == 0 ? " (no graph)" : "", loss);
    fflush(stdout);
    gpu_model_destroy(m);
    lcg_free(p);
    lcg_free(tok);
    lcg_free(tgt);
    lcg_free(mask);
}

/* the attention alone, forward and backward, on the architecture's shapes */
static void bench_attention(const arch *a, int row, double alpha, int steps) {
    int B = a->B, T = a->T, H = a->H, D = a->D;
    size_t nq = (size_t)B * T * 3 * H * D, nt = (size_t)B * H * T * gk_att_ld(T), no = (size_t)B * T * H * D;
    float *h = LCG_NEW(float, nq);
    pcg32 r = pcg32_derive(2, "bench", 0);
    for (size_t i = 0; i < nq; i++) h[i] = (float)pcg32_normal(&r);
    float *qkv = gpu_malloc(sizeof(float) * nq), *dqkv = gpu_malloc(sizeof(float) * nq);
    float *att = gpu_malloc(sizeof(float) * nt), *out = gpu_malloc(sizeof(float) * no), *dout = gpu_malloc(sizeof(float) * no);
    float *scr = gpu_malloc(sizeof(float) * gk_attention_scratch(B, T, H, D)), slopes[LCG_MAX_HEADS];
    lcg_posenc_slopes(slopes, LCG_POS_NAPE, H);
    float *d_sl = gpu_malloc(sizeof(float) * H);
    gpu_upload(d_sl, slopes, sizeof(float) * H);
    gpu_upload(qkv, h, sizeof(float) * nq);
    gpu_upload(dout, h, sizeof(float) * no);
    double tf = 0, tb = 0;
    for (int s = -2; s < steps; s++) {
        double t0 = lcg_now();
        gk_attention_forward(out, att, scr, qkv, NULL, d_sl, row, alpha, B, T, H, D);
        gpu_sync();
        double t1 = lcg_now();
        gk_attention_backward(dqkv, NULL, scr, dout, qkv, NULL, att, d_sl, row, alpha, B, T, H, D);
        gpu_sync();
        double t2 = lcg_now();
        if (s >= 0) tf += t1 - t0, tb += t2 - t1;
    }
    printf("%-7s attention alone, %-9s (one layer): fwd %6.3f ms, bwd %6.3f ms\n", a->name,
           row == LCG_ROW_SOFTMAX ? "softmax" : "entmax15", 1e3 * tf / steps, 1e3 * tb / steps);
    gpu_free(qkv), gpu_free(dqkv), gpu_free(att), gpu_free(out), gpu_free(dout), gpu_free(scr);
    gpu_free(d_sl);
    lcg_free(h);
}

typedef struct {
    float *lg;
    int from, V;
} emit_ctx;

static void emit_cpu(void *ctx, int pos, const float *logits) {
    emit_ctx *x = ctx;
    memcpy(x->lg + (size_t)(pos - x->from) * x->V, logits, sizeof(float) * x->V);
}

static void bench_hidden(void *ctx, int pos, const float *x) {
    (void)ctx, (void)pos, (void)x;
}

/* one sequence of n random tokens through the GPU prefill (and the CPU's with cpu) */
static void bench_eval(const arch *a, int n, int norm, int cpu) {
    lcg_config cfg = {.V = a->V, .L = a->L, .C = a->C, .H = a->H, .D = a->D, .F = a->F, .norm = norm,
                      .pos = LCG_POS_NAPE, .alpha = (float)lcg_normalizer_at(norm)->alpha_def};
    lcg_model cm;
    model_init(&cm, &cfg, 1);
    char err[256];
    gpu_model *m = gpu_model_create(&cfg, cm.params_mem, GPU_FP32, err, sizeof err);
    if (!m) lcg_die("%s", err);
    int from = n > 512 ? n - 512 : 0, *tok = LCG_NEW(int, n);
    pcg32 r = pcg32_derive(3, "bench", 0);
    for (int i = 0; i < n; i++) tok[i] = (int)pcg32_below(&r, (uint32_t)a->V);
    size_t nl = (size_t)(n - from) * a->V;
    float *lg = LCG_NEW(float, nl), *lc = LCG_NEW(float, nl);
    double dg[LCG_MAX_LAYERS * 3], t0 = lcg_now();
    gpu_model_eval(m, tok, n, from, lg, dg, NULL);
    double t1 = lcg_now();
    gpu_model_eval(m, tok, n, from, lg, dg, NULL);
    double t2 = lcg_now();
    printf("eval %s %s n=%d: gpu %.3f s (first call, allocating: %.3f s), %.0f MiB of device buffers, "
           "support/row layer 0: %.1f\n", a->name, lcg_normalizer_at(norm)->name, n, t2 - t1, t1 - t0,
           gpu_model_eval_bytes(&cfg, n) / 1048576.0, dg[1] / ((double)(n - from) * a->H));
    /* with the mechanism: every requested row's mass on a block of 4 keys (recall's shape), and
     * the final representations */
    int nr = n - from, nk = 4 * nr, *row = LCG_NEW(int, 3 * (size_t)nr), *off = row + nr, *len = off + nr;
    int *key = LCG_NEW(int, nk);
    double *mass = LCG_NEW(double, (size_t)nr * a->L * a->H);
    for (int q = 0; q < nr; q++) {
        int i = from + q, k0 = i >= 4 ? (int)pcg32_below(&r, (uint32_t)(i - 3)) : 0;
        row[q] = i, off[q] = 4 * q, len[q] = i >= 4 ? 4 : 1;
        for (int k = 0; k < len[q]; k++) key[4 * q + k] = k0 + k;
    }
    gpu_eval_mech mech = {.n_rows = nr, .row = row, .off = off, .len = len, .key = key, .mass = mass,
                          .hidden = bench_hidden, .ctx = NULL};
    double t5 = lcg_now();
    gpu_model_eval(m, tok, n, from, lg, dg, &mech);
    double t6 = lcg_now();
    printf("eval %s %s n=%d: gpu with the mechanism (%d rows' mass, 4 keys each; their representations) %.3f s\n",
           a->name, lcg_normalizer_at(norm)->name, n, nr, t6 - t5);
    lcg_free(row), lcg_free(key), lcg_free(mass);
    fflush(stdout);
    if (cpu) {
        lcg_decoder d;
        decoder_init(&d, &cm, n);
        decoder_reset(&d);
        emit_ctx ec = {lc, from, a->V};
        double t3 = lcg_now();
        decoder_prefill(&d, tok, n, from, emit_cpu, &ec);
        double t4 = lcg_now(), dd = 0, rr = 0;
        for (size_t i = 0; i < nl; i++) dd += ((double)lg[i] - lc[i]) * ((double)lg[i] - lc[i]), rr += (double)lc[i] * lc[i];
        printf("eval %s %s n=%d: cpu %.3f s on %d threads; gpu %.1fx faster; logits rel diff %.2e; support/row layer 0 "
               "cpu %.1f\n", a->name, lcg_normalizer_at(norm)->name, n, t4 - t3, omp_get_max_threads(),
               (t4 - t3) / (t2 - t1), sqrt(dd / rr), d.diag[0][1] / ((double)(n - from) * a->H));
        decoder_free(&d);
    }
    gpu_model_destroy(m);
    model_free(&cm);
    lcg_free(tok), lcg_free(lg), lcg_free(lc);
}

/* greedy decoding: a prompt of p random tokens through the GPU prefill, then `steps` tokens one at a
 * time (gpu_model_extend by one row: the logits of each back on the host, its argmax appended),
 * per token; the CPU decoder's decoder_step (one thread) on the same model for comparison */
static void bench_decode(const arch *a, int norm, int p, int steps) {
    lcg_config cfg = {.V = a->V, .L = a->L, .C = a->C, .H = a->H, .D = a->D, .F = a->F, .norm = norm,
                      .pos = LCG_POS_NAPE, .alpha = (float)lcg_normalizer_at(norm)->alpha_def};
    lcg_model cm;
    model_init(&cm, &cfg, 1);
    char err[256];
    gpu_model *m = gpu_model_create(&cfg, cm.params_mem, GPU_FP32, err, sizeof err);
    if (!m) lcg_die("%s", err);
    int n = p + steps, *tok = LCG_NEW(int, n);
    pcg32 r = pcg32_derive(4, "bench", 0);
    for (int i = 0; i < p; i++) tok[i] = (int)pcg32_below(&r, (uint32_t)a->V);
    float *lg = LCG_NEW(float, (size_t)a->V);
    double dg[LCG_MAX_LAYERS * 3];
    gpu_model_eval_reserve(m, n, 1);
    double tg = 0, tc = 0;
    for (int rep = 0; rep < 2; rep++) { /* the second: warm */
        double t0 = lcg_now();
        gpu_model_eval(m, tok, p, p - 1, lg, dg, NULL);
        double t1 = lcg_now();
        for (int i = p; i < n; i++) {
            int t = 0;
            for (int v = 1; v < a->V; v++) t = lg[v] > lg[t] ? v : t;
            tok[i] = t;
            gpu_model_extend(m, &tok[i], i, i + 1, i, lg, NULL, NULL);
        }
        double t2 = lcg_now();
        if (rep) printf("decode %-6s %-9s prompt %d: gpu prefill %.3f ms, then %.3f ms per token (%d tokens, "
                        "%.0f tok/s)\n",
                        a->name, lcg_normalizer_at(norm)->name, p, 1e3 * (t1 - t0), 1e3 * (t2 - t1) / steps, steps,
                        steps / (t2 - t1));
        tg = (t2 - t1) / steps;
    }
    /* S sequences at once (the backend's greedy decoding): S prompts, then a row each per step */
    enum { S = 64 };
    int slot[S], pos[S], tk[S];
    float *ls = LCG_NEW(float, (size_t)S * a->V);
    gpu_model_eval_reserve(m, n, S);
    for (int q = 0; q < S; q++) {
        gpu_model_eval_slot(m, q);
        gpu_model_eval(m, tok, p, p - 1, lg, dg, NULL);
        slot[q] = q, pos[q] = p, tk[q] = tok[p];
    }
    double t4 = lcg_now();
    for (int i = p; i < n; i++) {
        gpu_model_decode(m, S, slot, pos, tk, ls);
        for (int q = 0; q < S; q++) pos[q]++, tk[q] = i + 1 < n ? tok[i + 1] : 0;
    }
    double t5 = lcg_now();
    printf("decode %-6s %-9s prompt %d: gpu %d sequences at once: %.3f ms per step (%.0f tok/s)\n", a->name,
           lcg_normalizer_at(norm)->name, p, S, 1e3 * (t5 - t4) / steps, (double)S * steps / (t5 - t4));
    lcg_free(ls);
    lcg_decoder d;
    decoder_init(&d, &cm, n);
    decoder_reset(&d);
    int nt = omp_get_max_threads();
    omp_set_num_threads(1);
    decoder_prefill(&d, tok, p, p, NULL, NULL);
    double t3 = lcg_now();
    for (int i = p; i < n; i++) decoder_step(&d, tok[i], 1);
    tc = (lcg_now() - t3) / steps;
    omp_set_num_threads(nt);
    printf("decode %-6s %-9s prompt %d: cpu decoder_step (1 thread) %.3f ms per token; gpu %.1fx\n", a->name,
           lcg_normalizer_at(norm)->name, p, 1e3 * tc, tc / tg);
    fflush(stdout);
    decoder_free(&d);
    gpu_model_destroy(m);
    model_free(&cm);
    lcg_free(tok), lcg_free(lg);
}

int main(int argc, char **argv) {
    char why[256];
    if (!gpu_device_usable(why, sizeof why)) {
        printf("SKIP: no CUDA device (%s)\n", why);
        return 0;
    }
    arch mqmtar = {"mqmtar", 40, 4, 512, 16, 32, 1024, 128, 80};
    if (argc > 3 && !strcmp(argv[1], "eval")) {
        const lcg_normalizer *nz = lcg_normalizer_find(argv[3]);
        if (!nz) lcg_die("unknown normalizer '%s'", argv[3]);
        gk_init(GPU_FP32);
        bench_eval(&mqmtar, atoi(argv[2]), nz->id, argc > 4 && !strcmp(argv[4], "cpu"));
        return 0;
    }
    arch copy = {"copy", 36, 2, 256, 16, 16, 1024, 128, 98};
    if (argc > 1 && !strcmp(argv[1], "decode")) { /* bench_gpu decode [PROMPT [TOKENS]] */
        int p = argc > 2 ? atoi(argv[2]) : 256, k = argc > 3 ? atoi(argv[3]) : 200;
        if (p < 1 || k < 1) lcg_die("decode: prompt and tokens must be positive");
        gk_init(GPU_FP32);
        printf("device: %s\n", gpu_device_name());
        bench_decode(&copy, LCG_NORM_SOFTMAX, p, k);
        bench_decode(&copy, LCG_NORM_ASENTMAX, p, k);
        bench_decode(&mqmtar, LCG_NORM_SOFTMAX, p, k);
        bench_decode(&mqmtar, LCG_NORM_ASENTMAX, p, k);
        return 0;
    }
    int steps = argc > 1 ? atoi(argv[1]) : 30;
    if (steps < 1) lcg_die("steps must be positive");
    arch small = {"bench", 36, 2, 64, 8, 8, 256, 32, 64};
    if (argc > 4) { /* one configuration */
        const arch *a = !strcmp(argv[2], "copy") ? &copy : !strcmp(argv[2], "mqmtar") ? &mqmtar : &small;
        const lcg_normalizer *nz = lcg_normalizer_find(argv[3]);
        if (!nz) lcg_die("unknown normalizer '%s'", argv[3]);
        if (argc > 5) warmup = atoi(argv[5]);
        gpu_precision prec = !strcmp(argv[4], "tf32") ? GPU_TF32 : !strcmp(argv[4], "bf16") ? GPU_BF16 : GPU_FP32;
        bench(a, nz->id, a == &small ? LCG_POS_ROPE : LCG_POS_NAPE, prec, steps);
        return 0;
    }
    printf("device: %s; %d timed steps after %d warm-up steps\n", gpu_device_name(), steps, warmup);
    gpu_precision precs[] = {GPU_FP32, GPU_TF32, GPU_BF16};
    for (int i = 0; i < 3; i++) {
        bench(&copy, LCG_NORM_SOFTMAX, LCG_POS_NAPE, precs[i], steps);
        bench(&copy, LCG_NORM_ASENTMAX, LCG_POS_NAPE, precs[i], steps);
        bench(&mqmtar, LCG_NORM_SOFTMAX, LCG_POS_NAPE, precs[i], steps);
        bench(&mqmtar, LCG_NORM_ASENTMAX, LCG_POS_NAPE, precs[i], steps);
    }
    bench(&small, LCG_NORM_SOFTMAX, LCG_POS_ROPE, GPU_FP32, steps);
    gk_init(GPU_FP32);
    bench_attention(&copy, LCG_ROW_SOFTMAX, 1.0, steps);
    bench_attention(&copy, LCG_ROW_ENTMAX, 1.5, steps);
    return 0;
}
