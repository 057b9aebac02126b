/*
 * flipflop.c: the flip-flop language. Ids: bits 0 and 1, commands 2 = write, 3 = ignore,
 * 4 = read. P = floor(L / 2) (command, bit) pairs: c_0 = 2, c_1..c_{P-2} iid (2 with
 * probability write-prob, else 3), c_{P-1} = 4; bits iid uniform. Source:
 * c_0 b_0 c_1 b_1 ... c_{P-1} (2P - 1 tokens, the read's bit dropped); target: [b_k] for the
 * last write k. The model input has no SEP (BOS src, then the answer).
 *
 * write-prob defaults to 0.1, the value of the data the reference trained on (its data
 * directory, W&B project and generator default); the reference README's command says 0.8
 * (spec §1.5, §8 item 2). Odd lengths give the same 2P - 1 tokens as L - 1; there is no
 * vocabulary parameter (the reference's vocab_size is unused here). Answer position: the bit
 * of the last write (the answer step; EOS has none).
 */
#include "task.h"

enum { P_WRITE };
enum { FF_WRITE = 2, FF_IGNORE = 3, FF_READ = 4 };

static int ff_max_token(const lcg_task_cfg *cfg) {
    (void)cfg;
    return FF_READ;
}

static void ff_max_sizes(const lcg_task_cfg *cfg, int len, int *max_src, int *max_trg) {
    (void)cfg;
    *max_src = len >= 2 ? 2 * (len / 2) - 1 : 1;
    *max_trg = 1;
}

static const char *ff_validate(const lcg_task_cfg *cfg, int min_len) {
    double w = cfg->p[P_WRITE];
    if (!(w > 0 && w < 1)) return "flip-flop: write-prob must be in (0, 1)";
    if (min_len < 4) return "flip-flop: length must be >= 4 (two command/bit pairs)";
    return "";
}

static void ff_generate(const lcg_task_cfg *cfg, pcg32 *rng, int len, int *src, int *n_src,
                        int *trg, int *n_trg) {
    int P = len / 2, n = 0, last = 0;
    double w = cfg->p[P_WRITE];
    for (int k = 0; k < P; k++) {
        int c = k == 0 ? FF_WRITE : k == P - 1 ? FF_READ : pcg32_float(rng) < w ? FF_WRITE : FF_IGNORE;
        src[n++] = c;
        if (k == P - 1) break; /* the read carries no bit */
        int b = (int)pcg32_below(rng, 2);
        src[n++] = b;
        if (c == FF_WRITE) last = b;
    }
    trg[0] = last;
    *n_src = n;
    *n_trg = 1;
}

static int ff_answer(const lcg_task_cfg *cfg, const int *src, int n_src, const int *trg, int n_trg, int t,
                     int *pos) {
    (void)cfg, (void)trg, (void)n_trg;
    if (t != 0) return 0;
    for (int k = n_src - 3; k >= 0; k -= 2) /* commands at even indices, each followed by its bit */
        if (src[k] == FF_WRITE) {
            pos[0] = k + 1;
            return 1;
        }
    return 0;
}

const lcg_task lcg_task_flipflop = {
    .name = "flip-flop",
    .help = "flip-flop language: the bit of the last write, at the read",
    .n_params = 1,
    .params = {{"write-prob", 0.1, 1e-9, 1 - 1e-9, 0, "probability of a write command (README: 0.8)", 0}},
    .kind = LCG_TASK_SRC_TRG,
    .uses_sep = 0,
    .gen_mult = 1.2,
    .def_len = 48,
    .def_vary = 16,
    .cpu_len = 16,
    .cpu_vary = 8,
    .max_token = ff_max_token,
    .max_sizes = ff_max_sizes,
    .validate = ff_validate,
    .generate = ff_generate,
    .answer_pos = ff_answer,
};
