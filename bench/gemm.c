/*
 * gemm.c: GFLOP/s of lcgbench's matmul on the model's training shapes, next to this machine's
 * FP32 FMA peak measured by the same program. The peak loop runs 16 independent vector FMA
 * chains per thread (enough to cover FMA latency on current x86 cores) at the widest vector the
 * build targets. Timings take the best of several repetitions; nothing here is asserted.
 */
#define _POSIX_C_SOURCE 200809L
#include "../kernels/kernels.h"
#include "../kernels/util.h"

#include <omp.h>
#include <stdio.h>

#if defined(__AVX512F__)
#define VBYTES 64
#elif defined(__AVX__)
#define VBYTES 32
#else
#define VBYTES 16
#endif
typedef float vfloat __attribute__((vector_size(VBYTES)));
#define VLANES (VBYTES / 4)

/* FLOP/s of one thread running 16 independent FMA chains for `iters` rounds */
static double fma_chains(long iters, float seed) {
    vfloat acc[16], a, b;
    for (int l = 0; l < VLANES; l++) a[l] = 1.0f + 1e-7f * seed, b[l] = 1e-7f;
    for (int k = 0; k < 16; k++) acc[k] = a * (float)k;
    double t0 = lcg_now();
    for (long i = 0; i < iters; i++) {
#pragma GCC unroll 16
        for (int k = 0; k < 16; k++) acc[k] = acc[k] * a + b;
    }
    double dt = lcg_now() - t0;
    float sink = 0;
    for (int k = 0; k < 16; k++)
        for (int l = 0; l < VLANES; l++) sink += acc[k][l];
    if (sink == 12345.678f) printf("#"); /* uses every chain, so none is optimized away */
    return 2.0 * VLANES * 16 * (double)iters / dt;
}

static double peak(int threads) {
    double best = 0;
    for (int rep = 0; rep < 3; rep++) {
        double total = 0;
#pragma omp parallel num_threads(threads) reduction(+ : total)
        total += fma_chains(20000000, (float)omp_get_thread_num());
        best = total > best ? total : best;
    }
    return best;
}

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
    double p1 = peak(1) / 1e9, pn = peak(threads) / 1e9;
    printf("FP32 FMA peak (%d-bit vectors): %.1f GFLOP/s on 1 thread, %.1f on %d threads\n", VBYTES * 8, p1, pn,
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
    for (size_t i = 0; i < sizeof shapes / sizeof *shapes; i++) {
        double g = gemm_gflops(shapes[i].N, shapes[i].IC, shapes[i].OC);
        printf("%-26s %10.1f %11.0f%%\n", shapes[i].what, g, 100 * g / pn);
    }
    return 0;
}
