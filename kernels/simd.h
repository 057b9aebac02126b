/*
 * simd.h: the GCC/Clang vector types the hand-vectorized kernels share (attention.c, matmul.c,
 * tile.c, entmax_stream.c, the prefill), and unaligned loads/stores of them. Plain C vector
 * extensions: the compiler picks the instructions for the -march it is given (two 256-bit
 * halves without AVX-512, and so on); nothing here is specific to one instruction set.
 */
#ifndef LCG_SIMD_H
#define LCG_SIMD_H

typedef float v16f __attribute__((vector_size(64)));
typedef int v16i __attribute__((vector_size(64)));
typedef float v16fu __attribute__((vector_size(64), aligned(4), may_alias)); /* unaligned access */
typedef double v4d __attribute__((vector_size(32)));
typedef long long v4l __attribute__((vector_size(32)));

/* 16 floats at any address: an lvalue (V16), a value (V16C, v16_load) */
#define V16(p) (*(v16fu *)(p))
#define V16C(p) (*(const v16fu *)(p))
#define v16_load(p) (*(const v16fu *)(p))

#endif
