/*
 * count.c: local counting (the reference's LocalCount), a token-classification task. Source:
 * num_blocks = floor(L / ((max-reps + 2) / 2)) blocks; block b is a symbol in [0, vocab-1],
 * never equal to its neighbour's, repeated r_b ~ U{2..max-reps} times. Labels: the 0-based
 * repetition index inside the block, 0, 1, ..., r_b - 1. The length is sum r_b, random around L.
 *
 * Symbols are drawn the reference's way: iid, then every symbol equal to its successor is
 * redrawn, simultaneously, until no two adjacent symbols are equal. Unlike the reference, a
 * length too short for one block is rejected (validate) instead of giving an empty sample. The
 * labels run to max-reps - 1, beyond the token vocabulary; the head is widened (n_labels).
 */
#include "task.h"

#include <math.h>
#include <stdlib.h>

enum { P_VOCAB, P_REPS };

static int count_max_token(const lcg_task_cfg *cfg) { return (int)cfg->p[P_VOCAB] - 1; }

static int count_n_labels(const lcg_task_cfg *cfg) { return (int)cfg->p[P_REPS]; }

static int n_blocks(const lcg_task_cfg *cfg, int len) {
    return (int)floor((double)len / ((cfg->p[P_REPS] + 2) / 2.0));
}

static void count_max_sizes(const lcg_task_cfg *cfg, int len, int *max_src, int *max_trg) {
    int n = n_blocks(cfg, len) * (int)cfg->p[P_REPS];
    *max_src = *max_trg = n > 1 ? n : 1;
}

static const char *count_validate(const lcg_task_cfg *cfg, int min_len) {
    if (n_blocks(cfg, min_len) < 1)
        return "count: length too short for max-reps (need length >= (max-reps + 2) / 2)";
    return "";
}

static void count_generate(const lcg_task_cfg *cfg, pcg32 *rng, int len, int *src, int *n_src,
                           int *trg, int *n_trg) {
    uint32_t V = (uint32_t)cfg->p[P_VOCAB];
    int reps = (int)cfg->p[P_REPS], n = n_blocks(cfg, len);
    int *sym = malloc(sizeof(int) * (size_t)(3 * n + 1));
    if (!sym) lcg_die("out of memory");
    int *cand = sym + n, *next = cand + n, n_cand = 0;
    for (int b = 0; b < n; b++) sym[b] = (int)pcg32_below(rng, V);
    /* redraw rounds. Only pairs touching a redrawn symbol can be equal in the next round, so
     * each round checks the candidates i-1, i of the last round's redraws (ascending). In
     * ascending order an in-place redraw of sym[i] touches only pairs already checked, so this
     * is the simultaneous redraw. */
    for (int b = 0; b + 1 < n; b++) cand[n_cand++] = b;
    while (n_cand > 0) {
        int n_next = 0;
        for (int c = 0; c < n_cand; c++) {
            int i = cand[c];
            if (sym[i] != sym[i + 1]) continue;
            sym[i] = (int)pcg32_below(rng, V);
            if (i > 0 && (n_next == 0 || next[n_next - 1] != i - 1)) next[n_next++] = i - 1;
            next[n_next++] = i;
        }
        int *t = cand;
        cand = next, next = t, n_cand = n_next;
    }
    int off = 0;
    for (int b = 0; b < n; b++) {
        int r = 2 + (int)pcg32_below(rng, (uint32_t)(reps - 1));
        for (int j = 0; j < r; j++, off++) src[off] = sym[b], trg[off] = j;
    }
    *n_src = *n_trg = off;
    free(sym);
}

const lcg_task lcg_task_count = {
    .name = "count",
    .help = "local count: per token, its repetition index within its block",
    .n_params = 2,
    .params = {{"vocab", 16, 2, 1 << 20, 1, "data vocabulary size", 0},
               {"max-reps", 48, 2, 1 << 16, 1, "largest block length (blocks are 2..max-reps long)", 0}},
    .kind = LCG_TASK_TOKEN_CLS,
    .uses_sep = 0,
    .gen_mult = 1.0,
    .def_len = 96,
    .def_vary = 32,
    .cpu_len = 48,
    .cpu_vary = 16,
    .max_token = count_max_token,
    .max_sizes = count_max_sizes,
    .validate = count_validate,
    .generate = count_generate,
    .n_labels = count_n_labels,
};
