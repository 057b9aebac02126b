/*
 * backend.c: the table of model-step backends (backend.h) and their creation by name. A new
 * backend is its lcg_backend_ops and one line here ("cuda" only in a CUDA=1 build).
 */
#include "backend.h"

#include <string.h>

const char *const lcg_precision_names[3] = {"fp32", "tf32", "bf16"};

static const lcg_backend_ops *const backends[] = {
    &lcg_backend_cpu,
#ifdef LCG_CUDA
    &lcg_backend_cuda,
#endif
};

const lcg_backend_ops *lcg_backend_at(int i) {
    return i >= 0 && i < (int)(sizeof backends / sizeof *backends) ? backends[i] : NULL;
}

const lcg_backend_ops *lcg_backend_find(const char *name) {
    for (int i = 0; lcg_backend_at(i); i++)
        if (strcmp(backends[i]->name, name) == 0) return backends[i];
    return NULL;
}

lcg_backend *lcg_backend_create(const char *name, const lcg_config *cfg, uint64_t seed, const lcg_backend_opts *opts) {
    const lcg_backend_ops *ops = lcg_backend_find(name);
    return ops ? ops->create(cfg, seed, opts) : NULL;
}

void lcg_backend_destroy(lcg_backend *b) {
    if (b) b->ops->destroy(b);
}
