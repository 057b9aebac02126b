/*
 * activations.c: GeGLU with the tanh approximation of GELU (Gemma's gelu_pytorch_tanh):
 * out = gelu(gate) * up, with gate and up the two halves of one [N, 2F] projection.
 *
 * The float build computes tanh with a vectorizable form of Cephes' tanhf (an odd polynomial
 * below |z| = 0.625, (1 - e)/(1 + e) with e = exp(-2|z|) above; a few ulp), since libm's
 * scalar tanhf was a fifth of the training time. The double build (gradient checks) keeps
 * libm's tanh.
 */
#include "fastexp.h"
#include "kernels.h"
#include "real.h"

#include <math.h>

#define GELU_K 0.7978845608028654 /* sqrt(2/pi) */

#ifdef LCG_F64
#define gelu_tanh tanh
#else

/* min(a, 43.5) for a >= 0 (or NaN, which becomes 43.5), on the bits: GCC 12 vectorizes this,
 * not a float compare-and-select feeding the float-to-int conversion of lcg_exp_nonpos */
static inline float clamp_43_5(float a) {
    union {
        float f;
        int i;
    } u = {.f = a};
    u.i = u.i < 0x422e0000 ? u.i : 0x422e0000;
    return u.f;
}

static inline float gelu_tanh(float z) {
    float a = fabsf(z), z2 = z * z;
    float p = -5.70498872745e-3f; /* Cephes tanhf, |z| < 0.625 */
    p = p * z2 + 2.06390887954e-2f;
    p = p * z2 - 5.37397155531e-2f;
    p = p * z2 + 1.33314422036e-1f;
    p = p * z2 - 3.33332819422e-1f;
    float small = p * z2 * z + z;
    float e = lcg_exp_nonpos(-2.0f * clamp_43_5(a)); /* tanh is 1 - 2e-38 there */
    float big = copysignf((1.0f - e) / (1.0f + e), z);
    /* the select on the bits: a float select would let GCC move the division into a branch */
    union {
        float f;
        int i;
    } us = {.f = small}, ub = {.f = big};
    int m = -(int)(a < 0.625f);
    us.i = (us.i & m) | (ub.i & ~m);
    return us.f;
}
#endif

void KFN(geglu_forward)(real *out, const real *gu, int N, int F) {
#pragma omp parallel for schedule(static) if (N * F > 16384)
    for (int n = 0; n < N; n++) {
        const real *g = gu + (size_t)n * 2 * F, *u = g + F;
        real *o = out + (size_t)n * F;
        for (int f = 0; f < F; f++) {
            real x = g[f];
            real t = gelu_tanh((real)GELU_K * (x + (real)0.044715 * x * x * x));
            o[f] = (real)0.5 * x * (1 + t) * u[f];
        }
    }
}

void KFN(geglu_backward)(real *dgu, const real *dout, const real *gu, int N, int F) {
#pragma omp parallel for schedule(static) if (N * F > 16384)
    for (int n = 0; n < N; n++) {
        const real *g = gu + (size_t)n * 2 * F, *u = g + F, *d = dout + (size_t)n * F;
        real *dg = dgu + (size_t)n * 2 * F, *du = dg + F;
        for (int f = 0; f < F; f++) {
            real x = g[f];
            real t = gelu_tanh((real)GELU_K * (x + (real)0.044715 * x * x * x));
            real gelu = (real)0.5 * x * (1 + t);
            real dgelu = (real)0.5 * (1 + t) +
                         (real)0.5 * x * (1 - t * t) * (real)GELU_K * (1 + (real)(3 * 0.044715) * x * x);
            dg[f] += d[f] * u[f] * dgelu;
            du[f] += d[f] * gelu;
        }
    }
}
