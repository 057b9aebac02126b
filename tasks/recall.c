/*
 * recall.c: multi-query multi-token associative recall, the reference's MQMTAR (spec §1.3), and
 * its single-query, single-token case `recall`: two registry entries over one generator.
 * Ids: filler 0, kv separator 1, query separator 2, content 3..abc+2.
 *
 *   vocabulary (per run, `prepare`): `vocab` distinct key tuples drawn uniformly from the
 *     abc^k-len tuples and, independently, `vocab` distinct value tuples from abc^v-len, by
 *     pcg32_derive(seed, "mqmtar-vocab", 0). By default (split-vocab 0), unlike the reference,
 *     which redraws the vocabulary for every split, one vocabulary serves training and every
 *     test set of a run; with split-vocab 1 (`prepare_split`) each split draws its own from
 *     pcg32_derive(seed, "mqmtar-vocab-<stream>", index): "train" 0, ("val", len), ("test", len).
 *   per sample of length L, with B = k + v + 2:
 *     n = min(floor(L * kv-density / B), vocab) pairs: n distinct keys and, independently, n
 *     distinct values of the vocabulary; each row of r = L // n tokens holds the block
 *     key(k) 1 value(v) 0  plus r - B filler zeros, a seeded number of them before the key
 *     (the reference's 2(r+1)-slot placement rule); then num-q queries drawn with
 *     replacement: source += [2 key...], target += [2 value...] for each.
 *
 * recall is k = v = 1, num-q = 1, vocab = abc with the identity vocabulary (tuple i is the
 * content id 3 + i), so it needs no prepare; its samples are the same as before this file
 * generalized it. Unlike the reference, the filler layout is drawn from the seeded generator.
 *
 * Answer positions: a value token of query j reads the queried pair's whole block, key(k) 1
 * value(v) 0 (the key that matches, its separator, the value and the block's closing filler,
 * which a model may use as the value's carrier: results/mini/mechanism has one that reads only
 * there); the query separator 2 and EOS have none.
 */
#include "task.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern const lcg_task lcg_task_recall, lcg_task_mqmtar;

enum { R_ABC, R_KV };                             /* recall's params */
enum { M_ABC, M_K, M_V, M_Q, M_KV, M_VOCAB, M_SPLIT }; /* mqmtar's params */
#define SPACE_MAX (1ull << 31)                    /* tuple spaces are indexed by pcg32_below */

typedef struct {
    int abc, k, v, q, vocab;
    double kv;
    int identity; /* recall: tuple i of the vocabulary is the index i itself */
} spec;

/* the per-run vocabulary: token ids of `vocab` key tuples (k each) and value tuples (v each) */
typedef struct {
    int abc, k, v, vocab;
    int *keys, *vals;
} vocab_state;

static spec get_spec(const lcg_task_cfg *cfg) {
    const double *p = cfg->p;
    if (cfg->task == &lcg_task_recall)
        return (spec){(int)p[R_ABC], 1, 1, 1, (int)p[R_ABC], p[R_KV], 1};
    return (spec){(int)p[M_ABC], (int)p[M_K], (int)p[M_V], (int)p[M_Q], (int)p[M_VOCAB], p[M_KV], 0};
}

/* abc^e, saturated just above SPACE_MAX */
static uint64_t ipow_sat(int abc, int e) {
    uint64_t x = 1;
    for (int i = 0; i < e; i++) {
        x *= (uint64_t)abc;
        if (x > SPACE_MAX) return SPACE_MAX + 1;
    }
    return x;
}

static int n_pairs(const spec *s, int len) {
    int n = (int)floor((double)len * s->kv / (s->k + s->v + 2));
    return n < s->vocab ? n : s->vocab;
}

static int assoc_max_token(const lcg_task_cfg *cfg) { return get_spec(cfg).abc + 2; }

static void assoc_max_sizes(const lcg_task_cfg *cfg, int len, int *max_src, int *max_trg) {
    spec s = get_spec(cfg);
    *max_src = len + s.q * (1 + s.k);
    *max_trg = s.q * (1 + s.v);
}

static const char *assoc_validate(const lcg_task_cfg *cfg, int min_len) {
    static _Thread_local char msg[256];
    spec s = get_spec(cfg);
    const char *name = cfg->task->name;
    if (s.k < 1 || s.v < 1) {
        snprintf(msg, sizeof msg, "%s: k-len and v-len must be >= 1 (got %d, %d)", name, s.k, s.v);
        return msg;
    }
    if (!(s.kv > 0 && s.kv <= 1)) {
        snprintf(msg, sizeof msg, "%s: kv-density must be in (0, 1] (got %g)", name, s.kv);
        return msg;
    }
    uint64_t sk = ipow_sat(s.abc, s.k), sv = ipow_sat(s.abc, s.v);
    if (sk > SPACE_MAX || sv > SPACE_MAX) {
        snprintf(msg, sizeof msg, "%s: abc^k-len and abc^v-len must be <= 2^31 (abc %d, k-len %d, v-len %d)",
                 name, s.abc, s.k, s.v);
        return msg;
    }
    /* the reference checks vocab <= abc^max(k, v) only; we also require vocab <= abc^k and
     * vocab <= abc^v, since fewer tuples than vocab cannot be drawn distinct */
    uint64_t smax = sk > sv ? sk : sv;
    if (s.vocab < 1 || (uint64_t)s.vocab > smax) {
        snprintf(msg, sizeof msg, "%s: vocab %d must be in [1, abc^max(k-len, v-len) = %llu]", name,
                 s.vocab, (unsigned long long)smax);
        return msg;
    }
    if ((uint64_t)s.vocab > sk || (uint64_t)s.vocab > sv) {
        snprintf(msg, sizeof msg, "%s: vocab %d must be <= abc^k-len = %llu and <= abc^v-len = %llu (distinct tuples)",
                 name, s.vocab, (unsigned long long)sk, (unsigned long long)sv);
        return msg;
    }
    int m = n_pairs(&s, min_len);
    if (min_len / (m > 1 ? m : 1) < 2) {
        snprintf(msg, sizeof msg, "%s: length %d // pairs %d must be >= 2", name, min_len, m);
        return msg;
    }
    if (s.q > m) {
        if (s.identity)
            snprintf(msg, sizeof msg, "%s: length %d * kv-density %g / 4 gives %d pairs; need >= 1 for the query",
                     name, min_len, s.kv, m);
        else
            snprintf(msg, sizeof msg,
                     "%s: num-q %d must be <= the pairs at length %d, min(floor(len * kv-density / (k-len + v-len + 2)), vocab) = %d",
                     name, s.q, min_len, m);
        return msg;
    }
    return "";
}

/* k distinct values from [0, n) into out, in the order a partial Fisher-Yates over
 * [0, 1, ..., n-1] picks them (the same draws and results as the dense shuffle), keeping only
 * the displaced positions in a hash map: O(k) memory whatever n is */
static void choose_distinct(pcg32 *rng, uint32_t n, int k, uint32_t *out) {
    uint32_t cap = 16;
    while (cap < 2u * (uint32_t)k) cap *= 2;
    uint32_t *slot = calloc((size_t)cap * 2, sizeof *slot); /* (position + 1, value) pairs */
    if (!slot) lcg_die("out of memory choosing %d of %u", k, n);
    for (int i = 0; i < k; i++) {
        uint32_t j = (uint32_t)i + pcg32_below(rng, n - (uint32_t)i);
        /* value at j (j itself if never displaced); then position j takes position i's value.
         * Position i is never read again (later j' > i), so it need not be stored. */
        uint32_t h = (j * 0x9E3779B1u) & (cap - 1);
        while (slot[2 * h] && slot[2 * h] != j + 1) h = (h + 1) & (cap - 1);
        uint32_t vj = slot[2 * h] ? slot[2 * h + 1] : j;
        uint32_t hi = ((uint32_t)i * 0x9E3779B1u) & (cap - 1);
        while (slot[2 * hi] && slot[2 * hi] != (uint32_t)i + 1) hi = (hi + 1) & (cap - 1);
        uint32_t vi = slot[2 * hi] ? slot[2 * hi + 1] : (uint32_t)i;
        out[i] = vj;
        slot[2 * h] = j + 1;
        slot[2 * h + 1] = vi;
    }
    free(slot);
}

/* the `len` token ids of tuple index t over abc content ids, most significant first */
static void put_tuple(int *dst, uint32_t t, int abc, int len) {
    for (int d = len - 1; d >= 0; d--) {
        dst[d] = 3 + (int)(t % (uint32_t)abc);
        t /= (uint32_t)abc;
    }
}

static void assoc_release(lcg_task_cfg *cfg) {
    vocab_state *st = cfg->state;
    if (st) {
        free(st->keys);
        free(st->vals);
        free(st);
    }
    cfg->state = NULL;
}

/* draws a vocabulary from the stream (seed, purpose, index) into cfg->state (which it
 * overwrites, freeing nothing) */
static void draw_vocab(lcg_task_cfg *cfg, uint64_t seed, const char *purpose, uint64_t index) {
    spec s = get_spec(cfg);
    uint64_t sk = ipow_sat(s.abc, s.k), sv = ipow_sat(s.abc, s.v);
    if (s.k < 1 || s.v < 1 || s.vocab < 1 || sk > SPACE_MAX || sv > SPACE_MAX || (uint64_t)s.vocab > sk ||
        (uint64_t)s.vocab > sv)
        lcg_die("%s: cannot draw %d distinct tuples of abc %d, k-len %d, v-len %d", cfg->task->name, s.vocab,
                s.abc, s.k, s.v);
    vocab_state *st = calloc(1, sizeof *st);
    uint32_t *idx = malloc(sizeof *idx * (size_t)s.vocab);
    if (!st || !idx) lcg_die("out of memory");
    *st = (vocab_state){s.abc, s.k, s.v, s.vocab, malloc(sizeof(int) * (size_t)s.vocab * (size_t)s.k),
                        malloc(sizeof(int) * (size_t)s.vocab * (size_t)s.v)};
    if (!st->keys || !st->vals) lcg_die("out of memory for the %s vocabulary", cfg->task->name);
    pcg32 rng = pcg32_derive(seed, purpose, index);
    choose_distinct(&rng, (uint32_t)sk, s.vocab, idx);
    for (int i = 0; i < s.vocab; i++) put_tuple(st->keys + (size_t)i * s.k, idx[i], s.abc, s.k);
    choose_distinct(&rng, (uint32_t)sv, s.vocab, idx);
    for (int i = 0; i < s.vocab; i++) put_tuple(st->vals + (size_t)i * s.v, idx[i], s.abc, s.v);
    free(idx);
    cfg->state = st;
}

/* draws the run's vocabulary; replaces (and frees) a vocabulary an earlier prepare left in cfg */
static void assoc_prepare(lcg_task_cfg *cfg, uint64_t seed) {
    assoc_release(cfg);
    draw_vocab(cfg, seed, "mqmtar-vocab", 0);
}

/* split-vocab 1: the split's own vocabulary from the stream ("mqmtar-vocab-<stream>", index),
 * as the reference's generator redraws it for every split */
static int assoc_prepare_split(lcg_task_cfg *cfg, uint64_t seed, const char *stream, uint64_t index) {
    if (cfg->p[M_SPLIT] == 0) return 0;
    char purpose[64];
    snprintf(purpose, sizeof purpose, "mqmtar-vocab-%s", stream);
    draw_vocab(cfg, seed, purpose, index);
    return 1;
}

/* tuple i of the keys (which = 0) or values (1) of the vocabulary into dst; returns its length */
static int write_tuple(int *dst, const spec *s, const vocab_state *st, int which, uint32_t i) {
    int len = which ? s->v : s->k;
    if (s->identity) {
        put_tuple(dst, i, s->abc, len);
        return len;
    }
    const int *src = (which ? st->vals : st->keys) + (size_t)i * (size_t)len;
    memcpy(dst, src, sizeof(int) * (size_t)len);
    return len;
}

static void assoc_generate(const lcg_task_cfg *cfg, pcg32 *rng, int len, int *src, int *n_src, int *trg,
                           int *n_trg) {
    spec s = get_spec(cfg);
    const vocab_state *st = cfg->state;
    if (!s.identity) {
        if (!st)
            lcg_die("%s: no key/value vocabulary; call lcg_task_prepare(cfg, seed) before generating",
                    cfg->task->name);
        if (st->abc != s.abc || st->k != s.k || st->v != s.v || st->vocab != s.vocab)
            lcg_die("%s: the vocabulary was prepared for other parameters; prepare again", cfg->task->name);
    }
    int n = n_pairs(&s, len), B = s.k + s.v + 2;
    if (n < 1 || n < s.q) lcg_die("%s: length %d gives %d pairs, too few for %d queries", cfg->task->name, len, n, s.q);
    int r = len / n;
    uint32_t *keys = malloc(sizeof *keys * (size_t)(2 * n));
    if (!keys) lcg_die("out of memory");
    uint32_t *vals = keys + n;
    choose_distinct(rng, (uint32_t)s.vocab, n, keys);
    choose_distinct(rng, (uint32_t)s.vocab, n, vals);
    /* placement: 2(r+1) slots, block at o = (r+1) - floor((k+v+1)/2); keep r - B of the
     * 2(r+1) - B free slots (selection sampling), so `lead` fillers precede the key */
    int o = (r + 1) - (s.k + s.v + 1) / 2, n_free = 2 * (r + 1) - B, need = r - B;
    int off = 0;
    for (int i = 0; i < n; i++) {
        int lead = 0, left = need;
        for (int sl = 0; sl < n_free && left > 0; sl++)
            if ((int)pcg32_below(rng, (uint32_t)(n_free - sl)) < left) {
                left--;
                lead += sl < o;
            }
        for (int z = 0; z < lead; z++) src[off++] = 0;
        off += write_tuple(src + off, &s, st, 0, keys[i]);
        src[off++] = 1;
        off += write_tuple(src + off, &s, st, 1, vals[i]);
        src[off++] = 0;
        for (int z = 0; z < need - lead; z++) src[off++] = 0;
    }
    int t = 0;
    for (int j = 0; j < s.q; j++) {
        int q = (int)pcg32_below(rng, (uint32_t)n);
        src[off++] = 2;
        off += write_tuple(src + off, &s, st, 0, keys[q]);
        trg[t++] = 2;
        t += write_tuple(trg + t, &s, st, 1, vals[q]);
    }
    *n_src = off;
    *n_trg = t;
    free(keys);
}

/* target step t: query t / (1 + v), part t % (1 + v) (0: the separator 2, none) */
static int assoc_answer(const lcg_task_cfg *cfg, const int *src, int n_src, const int *trg, int n_trg, int t,
                        int *pos) {
    (void)trg;
    spec s = get_spec(cfg);
    int per = 1 + s.v, j = t / per, q0 = n_src - s.q * (1 + s.k);
    if (t >= n_trg || t % per == 0 || j >= s.q || q0 < 0) return 0;
    const int *key = src + q0 + j * (1 + s.k) + 1;
    for (int p = 0; p + s.k + s.v + 1 < q0; p++) {
        if (src[p + s.k] != 1 || memcmp(src + p, key, sizeof(int) * (size_t)s.k) != 0) continue;
        for (int d = 0; d < s.k + s.v + 2; d++) pos[d] = p + d;
        return s.k + s.v + 2;
    }
    return 0;
}

const lcg_task lcg_task_recall = {
    .name = "recall",
    .help = "associative recall: key/value pairs in filler, one query",
    .n_params = 2,
    .params = {{"abc", 32, 2, 1 << 16, 1, "content alphabet (keys and values) size", 0},
               {"kv-density", 0.8, 1e-9, 1, 0, "fraction of the length taken by pairs", 0}},
    .uses_sep = 1,
    .gen_mult = 2.2,
    .def_len = 48,
    .def_vary = 16,
    .cpu_len = 16,
    .cpu_vary = 8,
    .max_token = assoc_max_token,
    .max_sizes = assoc_max_sizes,
    .validate = assoc_validate,
    .generate = assoc_generate,
    .answer_pos = assoc_answer,
};

const lcg_task lcg_task_mqmtar = {
    .name = "mqmtar",
    .help = "multi-query multi-token associative recall (key/value tuples in filler, several queries)",
    .n_params = 7,
    .params = {{"abc", 256, 2, 1 << 16, 1, "content alphabet size", 0},
               {"k-len", 2, 1, 31, 1, "tokens per key", 0},
               {"v-len", 2, 1, 31, 1, "tokens per value", 0},
               {"num-q", 4, 1, 1 << 16, 1, "queries per sample (drawn with replacement)", 0},
               {"kv-density", 0.8, 1e-9, 1, 0, "fraction of the length taken by pairs", 0},
               {"vocab", 10000, 1, 1 << 20, 1, "distinct key tuples and value tuples per run (per split with split-vocab 1)", 0},
               {"split-vocab", 0, 0, 1, 1, "1: training, every validation and every test length draw their own vocabulary, as the reference; 0: one per run", 1}},
    .uses_sep = 1,
    .gen_mult = 2.2,
    .def_len = 48,
    .def_vary = 16,
    .cpu_len = 48,
    .cpu_vary = 16,
    .max_token = assoc_max_token,
    .max_sizes = assoc_max_sizes,
    .validate = assoc_validate,
    .generate = assoc_generate,
    .prepare = assoc_prepare,
    .release = assoc_release,
    .prepare_split = assoc_prepare_split,
    .answer_pos = assoc_answer,
};
