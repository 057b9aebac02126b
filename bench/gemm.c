/*
 * gemm.c: GFLOP/s of lcgbench's matmul on the model's training shapes, next to this machine's
 * FP32 FMA peak measured by the same program (bench/peak.c). Timings take the best of several repetitions; nothing here is asserted.
 */
#define _POSIX_C_SOURCE 200809L
#include "../kernels/kernels.h"
#include "../kernels/util.h"
#include "peak.h"

#include <omp.h>
#include <stdio.h>
#include <string.h>

static double gemm_gflops(int N, int IC, int OC) {
    float *x = LCG_NEW(float, (size_t)N * IC), *w = LCG_NEW(float, (size_t)IC * OC), *y = LCG_NEW(float, (size_t)N * OC);
    for (size_t i = 0; i < (size_t)N * IC; i++) x[i] = 0.01f * (float)(i % 7);
    for (size_t i = 0; i < (size_t)IC * OC; i++) w[i] = 0.02f * (float)(i % 5);
    double best = 1e30;
    for (int rep = 0; rep < 5; rep++) {
        int it = 0;
        double t0 = lcg_now();
        while (lcg_now() - t0 < 0.2) matmul_forward(y, x, w, N, IC, OC), it++;
        double dt = (lcg_now() - t0) / it;
        best = dt < best ? dt : best;
    }
    lcg_free(x), lcg_free(w), lcg_free(y);
    return 2.0 * N * IC * OC / best / 1e9;
}

int main(void) {
    int threads = omp_get_max_threads();
    double p1 = bench_fma_peak(1) / 1e9, pn = bench_fma_peak(threads) / 1e9;
    printf("FP32 FMA peak (%d-bit vectors): %.1f GFLOP/s on 1 thread, %.1f on %d threads\n", bench_vector_bits(), p1, pn,
           threads);
    static const struct {
        const char *what;
        int N, IC, OC;
    } shapes[] = {
        {"C=64  qkv     (B*T=2048)", 2048, 64, 192},  {"C=64  gate|up", 2048, 64, 512},
        {"C=64  down", 2048, 256, 64},                {"C=64  lm head", 2048, 64, 37},
        {"C=256 qkv", 2048, 256, 768},                {"C=256 gate|up", 2048, 256, 2048},
        {"C=256 down", 2048, 1024, 256},
    };
    printf("%-26s %10s %12s\n", "matmul (N x IC -> OC)", "GFLOP/s", "% of peak");
    double min64 = 1e9, min256 = 1e9, lm = 0;
    for (size_t i = 0; i < sizeof shapes / sizeof *shapes; i++) {
        double g = gemm_gflops(shapes[i].N, shapes[i].IC, shapes[i].OC), pct = 100 * g / pn;
        printf("%-26s %10.1f %11.0f%%\n", shapes[i].what, g, pct);
        if (shapes[i].OC == 37) lm = pct;
        else if (strncmp(shapes[i].what, "C=64 ", 5) == 0) min64 = pct < min64 ? pct : min64;
        else min256 = pct < min256 ? pct : min256;
    }
    /* for bench/report.sh: the worst square-ish training shape per width, and the LM head */
    printf("gemm_peak_gflops %.1f\ngemm_min_pct_c64 %.1f\ngemm_min_pct_c256 %.1f\ngemm_lm_head_pct %.1f\n", pn, min64,
           min256, lm);
    return 0;
}
