/*
 * gemm.c: GFLOP/s of lcgbench's matmul on the model's training shapes, next to this machine's
 * FP32 FMA peak measured by the same program (bench/peak.c), for the forward and both gradients
 * of each shape. Timings take the best of 8 round-robin rounds; nothing here is asserted.
 */
#define _POSIX_C_SOURCE 200809L
#include "../kernels/kernels.h"
#include "../kernels/util.h"
#include "peak.h"

#include <omp.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <stdio.h>
#include <string.h>

enum { PASS_FWD, PASS_DINP, PASS_DW, N_PASSES };
static const char *const pass_names[N_PASSES] = {"fwd", "dinp", "dw"};

/* seconds per call of one pass of the product out[N, OC] = inp[N, IC] @ w[IC, OC]: the
 * forward, the input gradient (dinp += dout @ w^T) or the weight gradient (dw += inp^T @ dout),
 * 2 N IC OC FLOPs each; calls for 0.1 s */
static double gemm_seconds(int pass, int N, int IC, int OC) {
    float *x = LCG_NEW(float, (size_t)N * IC), *w = LCG_NEW(float, (size_t)IC * OC), *y = LCG_NEW(float, (size_t)N * OC);
    float *dx = LCG_NEW(float, (size_t)N * IC), *dw = LCG_NEW(float, (size_t)IC * OC);
    for (size_t i = 0; i < (size_t)N * IC; i++) x[i] = 0.01f * (float)(i % 7);
    for (size_t i = 0; i < (size_t)IC * OC; i++) w[i] = 0.02f * (float)(i % 5);
    for (size_t i = 0; i < (size_t)N * OC; i++) y[i] = 0.03f * (float)(i % 3);
    int it = 0;
    double t0 = lcg_now();
    while (lcg_now() - t0 < 0.1) {
        if (pass == PASS_FWD) matmul_forward(y, x, w, N, IC, OC);
        else if (pass == PASS_DINP) matmul_backward(dx, NULL, y, x, w, N, IC, OC);
        else matmul_backward(NULL, dw, y, x, w, N, IC, OC);
        it++;
    }
    double dt = (lcg_now() - t0) / it;
    lcg_free(x), lcg_free(w), lcg_free(y), lcg_free(dx), lcg_free(dw);
    return dt;
}

int main(void) {
#ifdef __GLIBC__
    /* matmul takes its packing scratch per call. In training the heap settles after the first
     * step (perf stat: the same page faults for 150 and 300 steps); here, one shape at a time,
     * glibc would hand each scratch back to the OS and fault it in again on every call */
    mallopt(M_MMAP_THRESHOLD, 1 << 30);
    mallopt(M_TRIM_THRESHOLD, 1 << 30);
#endif
    int threads = omp_get_max_threads();
    double p1 = bench_fma_peak(1) / 1e9, pn = bench_fma_peak(threads) / 1e9;
    static const struct {
        const char *what;
        int N, IC, OC;
    } shapes[] = {
        {"C=64  qkv     (B*T=2048)", 2048, 64, 192},  {"C=64  gate|up", 2048, 64, 512},
        {"C=64  down", 2048, 256, 64},                {"C=64  lm head", 2048, 64, 37},
        {"C=256 qkv", 2048, 256, 768},                {"C=256 gate|up", 2048, 256, 2048},
        {"C=256 down", 2048, 1024, 256},
    };
    enum { N_SHAPES = sizeof shapes / sizeof *shapes, ROUNDS = 8 };
    /* the best of ROUNDS timings, taken round-robin over every shape and pass, so a spell of
     * load elsewhere on the machine slows one round of all of them, not all rounds of one */
    double best[N_SHAPES][N_PASSES];
    for (int round = 0; round < ROUNDS; round++) {
        for (int i = 0; i < N_SHAPES; i++)
            for (int pass = 0; pass < N_PASSES; pass++) {
                double dt = gemm_seconds(pass, shapes[i].N, shapes[i].IC, shapes[i].OC);
                best[i][pass] = round == 0 || dt < best[i][pass] ? dt : best[i][pass];
            }
        /* the peak too is the best of a measurement per round: one taken in a slow spell would
         * inflate every percentage */
        double pr = bench_fma_peak(threads) / 1e9;
        pn = pr > pn ? pr : pn;
    }
    printf("FP32 FMA peak (%d-bit vectors): %.1f GFLOP/s on 1 thread, %.1f on %d threads (best of %d)\n",
           bench_vector_bits(), p1, pn, threads, ROUNDS + 1);
    printf("%-26s %7s %10s %12s\n", "matmul (N x IC -> OC)", "pass", "GFLOP/s", "% of peak");
    double min64 = 1e9, min256 = 1e9, lm = 1e9, flop[2] = {0}, sec[2] = {0}; /* [0]: C = 64, [1]: C = 256 */
    for (int i = 0; i < N_SHAPES; i++)
        for (int pass = 0; pass < N_PASSES; pass++) {
            int wide = strncmp(shapes[i].what, "C=64 ", 5) != 0;
            flop[wide] += 2.0 * shapes[i].N * shapes[i].IC * shapes[i].OC;
            sec[wide] += best[i][pass];
            double g = 2.0 * shapes[i].N * shapes[i].IC * shapes[i].OC / best[i][pass] / 1e9, pct = 100 * g / pn;
            printf("%-26s %7s %10.1f %11.0f%%\n", pass ? "" : shapes[i].what, pass_names[pass], g, pct);
            double *worst = shapes[i].OC == 37 ? &lm : strncmp(shapes[i].what, "C=64 ", 5) == 0 ? &min64 : &min256;
            *worst = pct < *worst ? pct : *worst;
        }
    /* a training step's products of each width together: all their FLOPs over all their time */
    double all64 = 100 * flop[0] / sec[0] / 1e9 / pn, all256 = 100 * flop[1] / sec[1] / 1e9 / pn;
    printf("%-26s %7s %10.1f %11.0f%%\n%-26s %7s %10.1f %11.0f%%\n", "C=64  every shape", "all", all64 * pn / 100,
           all64, "C=256 every shape", "all", all256 * pn / 100, all256);
    /* for bench/report.sh: the worst pass of the training shapes per width, and of the LM head */
    printf("gemm_peak_gflops %.1f\ngemm_min_pct_c64 %.1f\ngemm_min_pct_c256 %.1f\ngemm_lm_head_pct %.1f\n", pn, min64,
           min256, lm);
    printf("gemm_all_pct_c64 %.1f\ngemm_all_pct_c256 %.1f\n", all64, all256);
    return 0;
}
