/*
 * optim.h: AdamW with global-norm gradient clipping and the cosine-with-warmup schedule of
 * transformers.get_cosine_schedule_with_warmup. Float model only.
 */
#ifndef LCG_OPTIM_H
#define LCG_OPTIM_H

#include <stddef.h>

typedef struct {
    float lr, beta1, beta2, eps, weight_decay;
    size_t n;   /* parameter count */
    float *m;   /* n: first moment */
    float *v;   /* n: second moment */
    long t;     /* updates done */
} lcg_adamw;

void adamw_init(lcg_adamw *opt, size_t n, float beta1, float beta2, float eps, float weight_decay);
void adamw_free(lcg_adamw *opt);
/* one decoupled-weight-decay Adam update at learning rate lr (bias-corrected) */
void adamw_update(lcg_adamw *opt, float *params, const float *grads, float lr);
/* L2 norm of grads, summed serially in double (deterministic) */
double grad_norm(const float *grads, size_t n);
/* scales grads so the norm is at most max_norm (no-op if max_norm <= 0); returns the norm */
double grad_clip(float *grads, size_t n, double max_norm);
/* lr multiplier at step t (0-based) of total: t/warmup, then 0.5*(1 + cos(pi*progress)) */
double lr_cosine(long t, long warmup, long total);

#endif
