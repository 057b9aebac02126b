/*
 * peak.h: this machine's FP32 FMA peak, measured (bench/peak.c), for the benchmarks that
 * report achieved GFLOP/s against it (gemm, evalbench).
 */
#ifndef LCG_BENCH_PEAK_H
#define LCG_BENCH_PEAK_H

/* bits of the widest vector the build targets (512, 256 or 128) */
int bench_vector_bits(void);
/* FP32 FLOP/s of `threads` threads each running independent vector FMA chains of the widest
 * vector the build targets (16 chains with AVX-512, 12 with AVX2 or SSE: enough to cover FMA
 * latency on current x86 cores without spilling); the best of 3 runs */
double bench_fma_peak(int threads);
/* peak resident set size of this process so far, in bytes (getrusage) */
double bench_peak_rss(void);

#endif
