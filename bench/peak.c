/*
 * peak.c: see peak.h. The FMA loop uses GCC vector extensions at the widest vector the build
 * targets, so it is the same peak the compiler can reach in the kernels.
 */
#define _POSIX_C_SOURCE 200809L
#include "peak.h"
#include "../kernels/util.h"

#include <omp.h>
#include <stdio.h>
#include <sys/resource.h>

#if defined(__AVX512F__)
#define VBYTES 64
#elif defined(__AVX__)
#define VBYTES 32
#else
#define VBYTES 16
#endif
typedef float vfloat __attribute__((vector_size(VBYTES)));
#define VLANES (VBYTES / 4)
/* independent chains: 16 with AVX-512's 32 registers; 12 with 16 registers (AVX2, SSE), where
 * 16 chains plus the two operands spilled two accumulators to the stack in the loop and the
 * measured peak came out low (enough chains either way to cover FMA latency x 2 ports) */
#define CHAINS (VBYTES == 64 ? 16 : 12)

int bench_vector_bits(void) { return VBYTES * 8; }

/* FLOP/s of one thread running CHAINS independent FMA chains for `iters` rounds */
static double fma_chains(long iters, float seed) {
    vfloat acc[CHAINS], a, b;
    for (int l = 0; l < VLANES; l++) a[l] = 1.0f + 1e-7f * seed, b[l] = 1e-7f;
    for (int k = 0; k < CHAINS; k++) acc[k] = a * (float)k;
    double t0 = lcg_now();
    for (long i = 0; i < iters; i++) {
#pragma GCC unroll 16
        for (int k = 0; k < CHAINS; k++) acc[k] = acc[k] * a + b;
    }
    double dt = lcg_now() - t0;
    float sink = 0;
    for (int k = 0; k < CHAINS; k++)
        for (int l = 0; l < VLANES; l++) sink += acc[k][l];
    if (sink == 12345.678f) printf("#"); /* uses every chain, so none is optimized away */
    return 2.0 * VLANES * CHAINS * (double)iters / dt;
}

double bench_fma_peak(int threads) {
    double best = 0;
    for (int rep = 0; rep < 3; rep++) {
        double total = 0;
#pragma omp parallel num_threads(threads) reduction(+ : total)
        total += fma_chains(20000000, (float)omp_get_thread_num());
        best = total > best ? total : best;
    }
    return best;
}

double bench_peak_rss(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_maxrss * 1024.0; /* kilobytes on Linux */
}
