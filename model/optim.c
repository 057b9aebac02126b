/*
 * optim.c: AdamW (PyTorch's decoupled form: p -= lr*wd*p, then the Adam step), clipping and
 * the learning-rate schedule. Elementwise updates are parallel; the norm is a serial sum.
 */
#include "optim.h"
#include "../kernels/util.h"

#include <math.h>

void adamw_init(lcg_adamw *o, size_t n, float beta1, float beta2, float eps, float weight_decay) {
    o->n = n;
    o->beta1 = beta1;
    o->beta2 = beta2;
    o->eps = eps;
    o->weight_decay = weight_decay;
    o->m = LCG_NEW(float, n);
    o->v = LCG_NEW(float, n);
    o->t = 0;
}

void adamw_free(lcg_adamw *o) {
    lcg_free(o->m);
    lcg_free(o->v);
    o->m = o->v = NULL;
}

void adamw_update(lcg_adamw *o, float *p, const float *g, float lr) {
    o->t++;
    float b1 = o->beta1, b2 = o->beta2;
    float bc1 = (float)(1.0 - pow(b1, (double)o->t)), bc2 = (float)(1.0 - pow(b2, (double)o->t));
    float decay = 1.0f - lr * o->weight_decay, step = lr / bc1, rbc2 = 1.0f / sqrtf(bc2);
    float *m = o->m, *v = o->v;
    long n = (long)o->n;
#pragma omp parallel for schedule(static) if (n > 65536)
    for (long i = 0; i < n; i++) {
        m[i] = b1 * m[i] + (1 - b1) * g[i];
        v[i] = b2 * v[i] + (1 - b2) * g[i] * g[i];
        p[i] = p[i] * decay - step * m[i] / (sqrtf(v[i]) * rbc2 + o->eps);
    }
}

double grad_norm(const float *g, size_t n) {
    double s = 0;
    for (size_t i = 0; i < n; i++) s += (double)g[i] * g[i];
    return sqrt(s);
}

double grad_clip(float *g, size_t n, double max_norm) {
    double norm = grad_norm(g, n);
    if (max_norm > 0 && norm > max_norm) {
        float k = (float)(max_norm / (norm + 1e-6));
        for (size_t i = 0; i < n; i++) g[i] *= k;
    }
    return norm;
}

double lr_cosine(long t, long warmup, long total) {
    if (t < warmup) return (double)t / (double)(warmup > 0 ? warmup : 1);
    double progress = (double)(t - warmup) / (double)(total - warmup > 0 ? total - warmup : 1);
    if (progress > 1) progress = 1;
    return 0.5 * (1.0 + cos(3.141592653589793 * progress));
}
