/*
 * nback.c: n-back, a token-classification task. Source: [0] followed by L iid uniform tokens
 * in [1, vocab-1] (length L + 1); label i: the token n positions back, src[i - n], or 0 for
 * i < n. Token 0 only opens the source, so a label 0 means "nothing n back yet".
 *
 * Answer position of label i: the source token n back (none for i < n).
 * Only the single-lag form: no match/no-match labels and no lures; n is fixed per run.
 */
#include "task.h"

enum { P_VOCAB, P_N };

static int nback_max_token(const lcg_task_cfg *cfg) { return (int)cfg->p[P_VOCAB] - 1; }

static int nback_n_labels(const lcg_task_cfg *cfg) { return (int)cfg->p[P_VOCAB]; }

static void nback_max_sizes(const lcg_task_cfg *cfg, int len, int *max_src, int *max_trg) {
    (void)cfg;
    *max_src = len + 1;
    *max_trg = len + 1;
}

static const char *nback_validate(const lcg_task_cfg *cfg, int min_len) {
    return (int)cfg->p[P_N] < min_len ? "" : "nback: n must be smaller than the length";
}

static void nback_generate(const lcg_task_cfg *cfg, pcg32 *rng, int len, int *src, int *n_src,
                           int *trg, int *n_trg) {
    uint32_t V = (uint32_t)cfg->p[P_VOCAB];
    int N = (int)cfg->p[P_N];
    src[0] = 0;
    for (int i = 1; i <= len; i++) src[i] = 1 + (int)pcg32_below(rng, V - 1);
    for (int i = 0; i <= len; i++) trg[i] = i >= N ? src[i - N] : 0;
    *n_src = *n_trg = len + 1;
}

static int nback_answer(const lcg_task_cfg *cfg, const int *src, int n_src, const int *trg, int n_trg, int t,
                        int *pos) {
    (void)src, (void)trg, (void)n_trg;
    int N = (int)cfg->p[P_N];
    if (t < N || t >= n_src) return 0;
    pos[0] = t - N;
    return 1;
}

const lcg_task lcg_task_nback = {
    .name = "nback",
    .help = "n-back: per token, the token n positions earlier",
    .n_params = 2,
    .params = {{"vocab", 16, 2, 1 << 20, 1, "data vocabulary size (tokens 1..vocab-1, 0 opens)", 0},
               {"n", 2, 1, 1 << 20, 1, "lag: the label of token i is token i - n", 0}},
    .kind = LCG_TASK_TOKEN_CLS,
    .uses_sep = 0,
    .gen_mult = 1.0,
    .def_len = 48,
    .def_vary = 16,
    .cpu_len = 16,
    .cpu_vary = 8,
    .max_token = nback_max_token,
    .max_sizes = nback_max_sizes,
    .validate = nback_validate,
    .generate = nback_generate,
    .n_labels = nback_n_labels,
    .answer_pos = nback_answer,
};
