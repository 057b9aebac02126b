/*
 * real.h: the scalar type of one compilation of a kernel or model source file.
 *
 * Kernel and model sources are compiled twice: as float for the tool, and with -DLCG_F64 as
 * double, with every public name suffixed `_f64`, for the finite-difference gradient checks.
 * Include this after kernels.h, in .c files only; it defines `real` and KFN().
 */
#ifndef LCG_REAL_H
#define LCG_REAL_H
#ifdef LCG_F64
typedef double real;
#define KFN(name) name##_f64
#else
typedef float real;
#define KFN(name) name
#endif
#endif
