/*
 * copy.c: the copy task. Source: L iid uniform tokens in [0, vocab-1]; target: the same.
 */
#include "task.h"

#include <stdio.h>

enum { P_VOCAB };

static int copy_max_token(const lcg_task_cfg *cfg) { return (int)cfg->p[P_VOCAB] - 1; }

static void copy_max_sizes(const lcg_task_cfg *cfg, int len, int *max_src, int *max_trg) {
    (void)cfg;
    *max_src = len;
    *max_trg = len;
}

static const char *copy_validate(const lcg_task_cfg *cfg, int min_len) {
    (void)cfg;
    return min_len >= 1 ? "" : "copy: length must be >= 1";
}

static void copy_generate(const lcg_task_cfg *cfg, pcg32 *rng, int len, int *src, int *n_src,
                          int *trg, int *n_trg) {
    uint32_t V = (uint32_t)cfg->p[P_VOCAB];
    for (int i = 0; i < len; i++) src[i] = trg[i] = (int)pcg32_below(rng, V);
    *n_src = *n_trg = len;
}

const lcg_task lcg_task_copy = {
    .name = "copy",
    .help = "copy the source sequence",
    .n_params = 1,
    .params = {{"vocab", 32, 2, 1 << 20, 1, "data vocabulary size"}},
    .uses_sep = 1,
    .gen_mult = 2.2,
    .def_len = 48,
    .def_vary = 16,
    .cpu_len = 16,
    .cpu_vary = 8,
    .max_token = copy_max_token,
    .max_sizes = copy_max_sizes,
    .validate = copy_validate,
    .generate = copy_generate,
};
