/*
 * copy.c: the three tasks over an iid source, L uniform tokens in [0, vocab-1]:
 *   copy     target = the source
 *   sort     target = the source sorted ascending, duplicates kept
 *   reverse  target = the source reversed
 * They share the source draw, sizes and validation; only the target and the reference's
 * generation cap (copy, reverse 2.2; sort 2.1) differ. No other source distribution.
 * Answer positions: copy's step t reads src[t], reverse's src[n - 1 - t], sort's every source
 * occurrence of the token it emits (any duplicate will do).
 */
#include "task.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { P_VOCAB };

static int iid_max_token(const lcg_task_cfg *cfg) { return (int)cfg->p[P_VOCAB] - 1; }

static void iid_max_sizes(const lcg_task_cfg *cfg, int len, int *max_src, int *max_trg) {
    (void)cfg;
    *max_src = len;
    *max_trg = len;
}

static const char *iid_validate(const lcg_task_cfg *cfg, int min_len) {
    static _Thread_local char msg[64];
    if (min_len >= 1) return "";
    snprintf(msg, sizeof msg, "%s: length must be >= 1", cfg->task->name);
    return msg;
}

static void draw_source(const lcg_task_cfg *cfg, pcg32 *rng, int len, int *src, int *n_src, int *n_trg) {
    uint32_t V = (uint32_t)cfg->p[P_VOCAB];
    for (int i = 0; i < len; i++) src[i] = (int)pcg32_below(rng, V);
    *n_src = *n_trg = len;
}

static void copy_generate(const lcg_task_cfg *cfg, pcg32 *rng, int len, int *src, int *n_src,
                          int *trg, int *n_trg) {
    draw_source(cfg, rng, len, src, n_src, n_trg);
    memcpy(trg, src, sizeof(int) * (size_t)len);
}

static int cmp_int(const void *a, const void *b) {
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

static void sort_generate(const lcg_task_cfg *cfg, pcg32 *rng, int len, int *src, int *n_src,
                          int *trg, int *n_trg) {
    draw_source(cfg, rng, len, src, n_src, n_trg);
    memcpy(trg, src, sizeof(int) * (size_t)len);
    qsort(trg, (size_t)len, sizeof(int), cmp_int);
}

static void reverse_generate(const lcg_task_cfg *cfg, pcg32 *rng, int len, int *src, int *n_src,
                             int *trg, int *n_trg) {
    draw_source(cfg, rng, len, src, n_src, n_trg);
    for (int i = 0; i < len; i++) trg[i] = src[len - 1 - i];
}

static int copy_answer(const lcg_task_cfg *cfg, const int *src, int n_src, const int *trg, int n_trg, int t,
                       int *pos) {
    (void)cfg, (void)src, (void)trg;
    if (t >= n_trg || t >= n_src) return 0;
    pos[0] = t;
    return 1;
}

static int reverse_answer(const lcg_task_cfg *cfg, const int *src, int n_src, const int *trg, int n_trg, int t,
                          int *pos) {
    (void)cfg, (void)src, (void)trg;
    if (t >= n_trg || t >= n_src) return 0;
    pos[0] = n_src - 1 - t;
    return 1;
}

static int sort_answer(const lcg_task_cfg *cfg, const int *src, int n_src, const int *trg, int n_trg, int t,
                       int *pos) {
    (void)cfg;
    int n = 0;
    for (int j = 0; t < n_trg && j < n_src; j++)
        if (src[j] == trg[t]) pos[n++] = j;
    return n;
}

/* one registry entry; only name, help, target, answer positions and generation cap vary */
#define IID_TASK(NAME, HELP, MULT, GEN, ANS)                                                  \
    {                                                                                         \
        .name = NAME, .help = HELP, .n_params = 1,                                            \
        .params = {{"vocab", 32, 2, 1 << 20, 1, "data vocabulary size", 0}},                     \
        .kind = LCG_TASK_SRC_TRG, .uses_sep = 1, .gen_mult = MULT, .def_len = 48,             \
        .def_vary = 16, .cpu_len = 16, .cpu_vary = 8, .max_token = iid_max_token,             \
        .max_sizes = iid_max_sizes, .validate = iid_validate, .generate = GEN,                \
        .answer_pos = ANS,                                                                    \
    }

const lcg_task lcg_task_copy = IID_TASK("copy", "copy the source sequence", 2.2, copy_generate,
                                    copy_answer);
const lcg_task lcg_task_sort = IID_TASK("sort", "sort the source ascending (duplicates kept)", 2.1,
                                    sort_generate, sort_answer);
const lcg_task lcg_task_reverse = IID_TASK("reverse", "reverse the source sequence", 2.2,
                                       reverse_generate, reverse_answer);
