/*
 * peak.c: see peak.h. The FMA loop uses GCC vector extensions at the widest vector the build
 * targets, so it is the same peak the compiler can reach in the kernels; it runs as many
 * independent chains as fit in that ISA's registers with the two operands (16 of AVX-512's 32,
 * 12 of AVX2's or SSE's 16: with 16 there, GCC spilled two chains to the stack and the store-
 * to-load latency halved the measured AVX2 peak).
 */
#define _POSIX_C_SOURCE 200809L
#include "peak.h"
#include "../kernels/util.h"

#include <omp.h>
#include <stdio.h>
#include <sys/resource.h>

#if defined(__AVX512F__)
#define VBYTES 64
#define NCHAINS 16
#elif defined(__AVX__)
#define VBYTES 32
#define NCHAINS 12
#elif defined(__aarch64__)
#define VBYTES 16
#define NCHAINS 16
#else
#define VBYTES 16
#define NCHAINS 12
#endif
typedef float vfloat __attribute__((vector_size(VBYTES)));
#define VLANES (VBYTES / 4)

int bench_vector_bits(void) { return VBYTES * 8; }

/* FLOP/s of one thread running NCHAINS independent FMA chains for `iters` rounds */
static double fma_chains(long iters, float seed) {
    vfloat acc[NCHAINS], a, b;
    for (int l = 0; l < VLANES; l++) a[l] = 1.0f + 1e-7f * seed, b[l] = 1e-7f;
    for (int k = 0; k < NCHAINS; k++) acc[k] = a * (float)k;
    double t0 = lcg_now();
    for (long i = 0; i < iters; i++) {
#pragma GCC unroll 16
        for (int k = 0; k < NCHAINS; k++) acc[k] = acc[k] * a + b;
    }
    double dt = lcg_now() - t0;
    float sink = 0;
    for (int k = 0; k < NCHAINS; k++)
        for (int l = 0; l < VLANES; l++) sink += acc[k][l];
    if (sink == 12345.678f) printf("#"); /* uses every chain, so none is optimized away */
    return 2.0 * VLANES * NCHAINS * (double)iters / dt;
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
