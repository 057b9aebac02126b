/*
 * fastexp.h: e^x for -87 <= x <= 0 in float (Cephes' expf: Cody-Waite reduction, degree-6
 * polynomial, about 1 ulp), written so the compiler vectorizes it (rounding by conversion, no
 * floorf, no libm call). Shared by the GeGLU tanh and the prefill's online softmax. Callers
 * clamp x into the range; it does not handle NaN, +x or x < -87.
 */
#ifndef LCG_FASTEXP_H
#define LCG_FASTEXP_H

#include <stdint.h>

static inline float lcg_exp_nonpos(float x) {
    int32_t ki = (int32_t)(x * 1.44269504088896341f - 0.5f); /* round(x / ln 2) for x <= 0 */
    float k = (float)ki;
    float r = x - k * 0.693359375f;
    r = r - k * -2.12194440e-4f;
    float y = 1.9875691500e-4f;
    y = y * r + 1.3981999507e-3f;
    y = y * r + 8.3334519073e-3f;
    y = y * r + 4.1665795894e-2f;
    y = y * r + 1.6666665459e-1f;
    y = y * r + 5.0000001201e-1f;
    y = y * (r * r) + r + 1.0f;
    union {
        int32_t i;
        float f;
    } scale = {.i = (ki + 127) << 23}; /* 2^k */
    return y * scale.f;
}

#endif
