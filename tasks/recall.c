/*
 * recall.c: associative recall, the single-query, single-token-key/value case of the
 * reference's MQMTAR layout (spec §1.3). Ids: filler 0, kv separator 1, query separator 2,
 * content 3..abc+2.
 *
 *   n = min(floor(L * kv_density / 4), abc) pairs with distinct keys and distinct values;
 *   each row of r = L // n tokens holds the block  key 1 value 0  plus r - 4 filler zeros, a
 *   seeded number of them before the key (the reference's 2(r+1)-slot placement rule);
 *   source = rows + [2 key_q], target = [2 value_q] for one uniformly chosen pair q.
 *
 * Unlike the reference, the filler layout is drawn from the seeded generator too.
 */
#include "task.h"

#include <math.h>
#include <stdlib.h>

enum { P_ABC, P_KV };
#define K_LEN 1
#define V_LEN 1
#define N_Q 1
#define BLOCK (K_LEN + V_LEN + 2) /* key, 1, value, bound 0 */

static int recall_max_token(const lcg_task_cfg *cfg) { return (int)cfg->p[P_ABC] + 2; }

static int n_pairs(const lcg_task_cfg *cfg, int len) {
    int n = (int)floor((double)len * cfg->p[P_KV] / BLOCK);
    return n < (int)cfg->p[P_ABC] ? n : (int)cfg->p[P_ABC];
}

static void recall_max_sizes(const lcg_task_cfg *cfg, int len, int *max_src, int *max_trg) {
    (void)cfg;
    *max_src = len + N_Q * (1 + K_LEN);
    *max_trg = N_Q * (1 + V_LEN);
}

static const char *recall_validate(const lcg_task_cfg *cfg, int min_len) {
    int m = n_pairs(cfg, min_len);
    if (m < N_Q) return "recall: length * kv-density / 4 must be >= 1 (need room for one pair)";
    if (min_len / m < 2) return "recall: length too short for its pairs";
    return "";
}

/* k distinct values from [0, n) into out (partial Fisher-Yates over scratch[n]) */
static void choose_distinct(pcg32 *rng, int n, int k, int *out, int *scratch) {
    for (int i = 0; i < n; i++) scratch[i] = i;
    for (int i = 0; i < k; i++) {
        int j = i + (int)pcg32_below(rng, (uint32_t)(n - i));
        int t = scratch[i];
        scratch[i] = scratch[j];
        scratch[j] = t;
        out[i] = scratch[i];
    }
}

static void recall_generate(const lcg_task_cfg *cfg, pcg32 *rng, int len, int *src, int *n_src,
                            int *trg, int *n_trg) {
    int abc = (int)cfg->p[P_ABC], n = n_pairs(cfg, len), r = len / n;
    int *keys = malloc(sizeof(int) * (size_t)(3 * abc));
    if (!keys) lcg_die("out of memory");
    int *vals = keys + abc, *scratch = vals + abc;
    choose_distinct(rng, abc, n, keys, scratch);
    choose_distinct(rng, abc, n, vals, scratch);
    /* placement: 2(r+1) slots, block at o = (r+1) - floor((K+V+1)/2); keep r - BLOCK of the
     * free slots (selection sampling), so `lead` fillers precede the key */
    int o = (r + 1) - (K_LEN + V_LEN + 1) / 2, n_free = 2 * (r + 1) - BLOCK, need = r - BLOCK;
    int off = 0;
    for (int i = 0; i < n; i++) {
        int lead = 0, left = need;
        for (int s = 0; s < n_free && left > 0; s++)
            if ((int)pcg32_below(rng, (uint32_t)(n_free - s)) < left) {
                left--;
                lead += s < o;
            }
        for (int z = 0; z < lead; z++) src[off++] = 0;
        src[off++] = 3 + keys[i];
        src[off++] = 1;
        src[off++] = 3 + vals[i];
        src[off++] = 0;
        for (int z = 0; z < need - lead; z++) src[off++] = 0;
    }
    int q = (int)pcg32_below(rng, (uint32_t)n);
    src[off++] = 2;
    src[off++] = 3 + keys[q];
    trg[0] = 2;
    trg[1] = 3 + vals[q];
    *n_src = off;
    *n_trg = 2;
    free(keys);
}

const lcg_task lcg_task_recall = {
    .name = "recall",
    .help = "associative recall: key/value pairs in filler, one query",
    .n_params = 2,
    .params = {{"abc", 32, 2, 1 << 16, 1, "content alphabet (keys and values) size"},
               {"kv-density", 0.8, 1e-9, 1, 0, "fraction of the length taken by pairs"}},
    .uses_sep = 1,
    .gen_mult = 2.2,
    .def_len = 48,
    .def_vary = 16,
    .max_token = recall_max_token,
    .max_sizes = recall_max_sizes,
    .validate = recall_validate,
    .generate = recall_generate,
};
