/*
 * real.h: the scalar type of one compilation of a kernel or model source file.
 *
 * Kernel and model sources are compiled twice: as float for the tool, and with -DLCG_F64 as
 * double, with every public name suffixed `_f64`, for the finite-difference gradient checks.
 * Include this after kernels.h, in .c files only; it defines `real`, KFN() and r_exp/r_tanh/
 * r_sqrt, the libm functions of that precision.
 */
#ifndef LCG_REAL_H
#define LCG_REAL_H
#include <math.h>
#ifdef LCG_F64
typedef double real;
#define KFN(name) name##_f64
#define r_exp exp
#define r_tanh tanh
#define r_sqrt sqrt
#else
typedef float real;
#define KFN(name) name
#define r_exp expf
#define r_tanh tanhf
#define r_sqrt sqrtf
#endif
#endif
