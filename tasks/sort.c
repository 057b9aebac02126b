/*
 * sort.c: the copy-like tasks sort and reverse. Source: L iid uniform tokens in
 * [0, vocab-1], as for copy; target: the source sorted ascending with duplicates kept (sort),
 * or the source in reverse order (reverse).
 *
 * Nothing else: no other source distribution (no distinct-token or bounded-run variants) and
 * no multi-token keys; the order statistics come only from the iid draws.
 */
#include "task.h"

#include <stdlib.h>
#include <string.h>

enum { P_VOCAB };

static int sr_max_token(const lcg_task_cfg *cfg) { return (int)cfg->p[P_VOCAB] - 1; }

static void sr_max_sizes(const lcg_task_cfg *cfg, int len, int *max_src, int *max_trg) {
    (void)cfg;
    *max_src = len;
    *max_trg = len;
}

static const char *sort_validate(const lcg_task_cfg *cfg, int min_len) {
    (void)cfg;
    return min_len >= 1 ? "" : "sort: length must be >= 1";
}

static const char *reverse_validate(const lcg_task_cfg *cfg, int min_len) {
    (void)cfg;
    return min_len >= 1 ? "" : "reverse: length must be >= 1";
}

static void draw_source(const lcg_task_cfg *cfg, pcg32 *rng, int len, int *src) {
    uint32_t V = (uint32_t)cfg->p[P_VOCAB];
    for (int i = 0; i < len; i++) src[i] = (int)pcg32_below(rng, V);
}

static int cmp_int(const void *a, const void *b) {
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

static void sort_generate(const lcg_task_cfg *cfg, pcg32 *rng, int len, int *src, int *n_src,
                          int *trg, int *n_trg) {
    draw_source(cfg, rng, len, src);
    memcpy(trg, src, sizeof(int) * (size_t)len);
    qsort(trg, (size_t)len, sizeof(int), cmp_int);
    *n_src = *n_trg = len;
}

static void reverse_generate(const lcg_task_cfg *cfg, pcg32 *rng, int len, int *src, int *n_src,
                             int *trg, int *n_trg) {
    draw_source(cfg, rng, len, src);
    for (int i = 0; i < len; i++) trg[i] = src[len - 1 - i];
    *n_src = *n_trg = len;
}

const lcg_task lcg_task_sort = {
    .name = "sort",
    .help = "sort the source ascending (duplicates kept)",
    .n_params = 1,
    .params = {{"vocab", 32, 2, 1 << 20, 1, "data vocabulary size"}},
    .kind = LCG_TASK_SRC_TRG,
    .uses_sep = 1,
    .gen_mult = 2.1,
    .def_len = 48,
    .def_vary = 16,
    .cpu_len = 16,
    .cpu_vary = 8,
    .max_token = sr_max_token,
    .max_sizes = sr_max_sizes,
    .validate = sort_validate,
    .generate = sort_generate,
};

const lcg_task lcg_task_reverse = {
    .name = "reverse",
    .help = "reverse the source sequence",
    .n_params = 1,
    .params = {{"vocab", 32, 2, 1 << 20, 1, "data vocabulary size"}},
    .kind = LCG_TASK_SRC_TRG,
    .uses_sep = 1,
    .gen_mult = 2.2,
    .def_len = 48,
    .def_vary = 16,
    .cpu_len = 16,
    .cpu_vary = 8,
    .max_token = sr_max_token,
    .max_sizes = sr_max_sizes,
    .validate = reverse_validate,
    .generate = reverse_generate,
};
