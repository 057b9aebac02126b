/*
 * activations.c: GeGLU with the tanh approximation of GELU (Gemma's gelu_pytorch_tanh):
 * out = gelu(gate) * up, with gate and up the two halves of one [N, 2F] projection.
 */
#include "kernels.h"
#include "real.h"

#include <math.h>

#define GELU_K 0.7978845608028654 /* sqrt(2/pi) */

void KFN(geglu_forward)(real *out, const real *gu, int N, int F) {
#pragma omp parallel for schedule(static) if (N * F > 16384)
    for (int n = 0; n < N; n++) {
        const real *g = gu + (size_t)n * 2 * F, *u = g + F;
        real *o = out + (size_t)n * F;
        for (int f = 0; f < F; f++) {
            real x = g[f];
            real t = r_tanh((real)GELU_K * (x + (real)0.044715 * x * x * x));
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
            real t = r_tanh((real)GELU_K * (x + (real)0.044715 * x * x * x));
            real gelu = (real)0.5 * x * (1 + t);
            real dgelu = (real)0.5 * (1 + t) +
                         (real)0.5 * x * (1 - t * t) * (real)GELU_K * (1 + (real)(3 * 0.044715) * x * x);
            dg[f] += d[f] * u[f] * dgelu;
            du[f] += d[f] * gelu;
        }
    }
}
