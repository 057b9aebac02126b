/*
 * evalbench.c: evaluation at long length. Trains the benchmark model (2 layers, C = 64, 4 heads
 * of 16, FFN 256, RoPE) briefly on mqmtar at its training lengths (48 +- 16), then evaluates ONE
 * mqmtar test sample of the given length (default 65,536 tokens) through the evaluator's own
 * path (eval_sample: blocked prefill, teacher-forced), timing it; then times the prefill's
 * causal QK^T scan alone on one head at that length against the machine's FP32 FMA peak.
 *
 *   usage: evalbench ATTN [LEN [TRAIN_STEPS]]
 *
 * Prints `key value` lines (bench/report.sh builds the table): seconds of the sample, peak RSS
 * of the process (training included; getrusage), the mean attention support per layer at the
 * supervised positions, exact match of the sample, QK^T GFLOP/s and the peak. Nothing here is
 * asserted; the numbers depend on the machine and its load.
 */
#define _POSIX_C_SOURCE 200809L
#include "../harness/run.h"
#include "../harness/sequence.h"
#include "../kernels/util.h"
#include "../model/infer.h"
#include "peak.h"

#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: evalbench ATTN [LEN [TRAIN_STEPS]]\n");
        return 2;
    }
    const lcg_normalizer *norm = lcg_normalizer_find(argv[1]);
    if (!norm) lcg_die("evalbench: unknown normalizer '%s'", argv[1]);
    int len = argc > 2 ? atoi(argv[2]) : 65536;
    long steps = argc > 3 ? atol(argv[3]) : 300;
    int threads = omp_get_max_threads();

    lcg_run_cfg c;
    memset(&c, 0, sizeof c);
    const lcg_task *task = lcg_task_find("mqmtar");
    lcg_task_defaults(&c.task, task);
    c.model = (lcg_config){.L = 2, .C = 64, .H = 4, .D = 16, .F = 256, .norm = norm->id,
                           .pos = LCG_POS_ROPE, .alpha = (float)norm->alpha_def};
    c.model.V = lcg_task_out_vocab(&c.task);
    c.seed = 1, c.steps = steps, c.batch = 32, c.lr = 1.5e-3, c.warmup = steps / 10, c.clip = 1.0;
    c.len = task->cpu_len, c.vary = task->cpu_vary, c.eval_samples = 1, c.quiet = 1;
    lcg_task_prepare(&c.task, c.seed);
    lcg_backend *b = train_backend_create(&c);
    lcg_train_result tr = {0};
    if (steps > 0) train_run(b, &tr, &c, "evalbench", NULL);

    /* one test sample at `len`, through the evaluator */
    int ms, mt;
    task->max_sizes(&c.task, len, &ms, &mt);
    int *src = LCG_NEW(int, ms), *trg = LCG_NEW(int, mt), n_src, n_trg;
    eval_make_set(&c, len, src, &n_src, trg, &n_trg);
    int n_in = seq_input_len(&c.task, n_src, n_trg);
    lcg_sample_result r;
    double t0 = lcg_now();
    eval_sample(&r, b, &c.task, src, n_src, trg, n_trg);
    double secs = lcg_now() - t0, rss = bench_peak_rss();
    printf("attn %s\nlen %d\ninput_tokens %d\nthreads %d\ntrain_steps %ld\ntrain_loss %.4f\n", norm->name, len,
           n_in, threads, steps, tr.train_loss);
    printf("seconds %.3f\npeak_rss_mib %.1f\nexact %d\ntoken_acc %.3f\n", secs, rss / (1 << 20), r.exact,
           (double)r.ok / r.tokens);
    for (int l = 0; l < c.model.L; l++)
        printf("support_l%d %.1f\n", l, r.diag[l][1] / (r.diag_rows ? r.diag_rows : 1));
    lcg_free(src), lcg_free(trg);

    /* the prefill's QK^T scan alone: one head, n = the sample's input length */
    int n = n_in, D = c.model.D;
    size_t ldk = (size_t)(n + LCG_KEY_TILE - 1) / LCG_KEY_TILE * LCG_KEY_TILE;
    float *q = LCG_NEW(float, (size_t)n * D), *kt = LCG_NEW(float, D * ldk);
    pcg32 g = pcg32_derive(7, "evalbench", 0);
    for (size_t i = 0; i < (size_t)n * D; i++) q[i] = pcg32_float(&g) - 0.5f;
    for (size_t i = 0; i < (size_t)D * ldk; i++) kt[i] = pcg32_float(&g) - 0.5f;
    double best = 1e30, sum = 0, peak = 0;
    for (int rep = 0; rep < 3; rep++) { /* the scan and the peak alternate, each its best of 3 */
        double t1 = lcg_now();
        sum += prefill_qk_scan(q, kt, ldk, n, D);
        double dt = lcg_now() - t1, pk = bench_fma_peak(threads);
        best = dt < best ? dt : best;
        peak = pk > peak ? pk : peak;
    }
    double flop = (double)n * (n + 1) / 2 * 2.0 * D;
    printf("qk_scan_gflops %.1f\nfma_peak_gflops %.1f\nqk_scan_pct_peak %.1f\nqk_checksum %.6g\n", flop / best / 1e9,
           peak / 1e9, 100 * flop / best / peak, sum);
    lcg_free(q), lcg_free(kt);
    lcg_backend_destroy(b);
    lcg_task_release(&c.task);
    return 0;
}
