/*
 * parity.c: the reference generator's parity task (spec §1.2, §1.4): L iid uniform bits
 * {0, 1}; the target is one token, 1 if the count of ones is even, else 0 (src
 * `1 1 0 1 0 0 0 0 0` -> `0`: three ones). Model input in the reference's source->target
 * layout, BOS src SEP trg EOS, data tokens 0..1 (vocabulary 7).
 *
 * The reference has no data config or experiment for parity, so its generation cap is not
 * given: lcgbench takes 2.2, that of its other source->target tasks (copy, reverse, recall,
 * mqmtar), which leaves room for the answer and EOS from the shortest prompt. No parameters.
 */
#include "task.h"

static int parity_max_token(const lcg_task_cfg *cfg) {
    (void)cfg;
    return 1;
}

static void parity_max_sizes(const lcg_task_cfg *cfg, int len, int *max_src, int *max_trg) {
    (void)cfg;
    *max_src = len;
    *max_trg = 1;
}

static const char *parity_validate(const lcg_task_cfg *cfg, int min_len) {
    (void)cfg;
    return min_len >= 1 ? "" : "parity: length must be >= 1";
}

static void parity_generate(const lcg_task_cfg *cfg, pcg32 *rng, int len, int *src, int *n_src, int *trg,
                            int *n_trg) {
    (void)cfg;
    int ones = 0;
    for (int i = 0; i < len; i++) ones += src[i] = (int)pcg32_below(rng, 2);
    trg[0] = ones % 2 == 0;
    *n_src = len;
    *n_trg = 1;
}

const lcg_task lcg_task_parity = {
    .name = "parity",
    .help = "parity of the bits: 1 if the count of ones is even, else 0 (one answer token)",
    .n_params = 0,
    .kind = LCG_TASK_SRC_TRG,
    .uses_sep = 1,
    .gen_mult = 2.2,
    .def_len = 48,
    .def_vary = 16,
    .cpu_len = 16,
    .cpu_vary = 8,
    .max_token = parity_max_token,
    .max_sizes = parity_max_sizes,
    .validate = parity_validate,
    .generate = parity_generate,
};
