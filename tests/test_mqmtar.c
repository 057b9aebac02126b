/*
 * test_mqmtar.c: the associative-recall generator behind `mqmtar` and `recall` (tasks/recall.c):
 *   - every sample's layout: n and the row length r from the spec's formulas (and its table for
 *     abc 256, k = v = 2), rows `fillers key(k) 1 value(v) 0 fillers` within the 2(r+1)-slot
 *     placement rule, distinct keys and values, each query's key exactly once as a key in the
 *     prefix with the target its value, target [2 value...] per query, ids in range;
 *   - the per-run vocabulary: `vocab` distinct tuples, the same for a seed, another for another
 *     seed, uniform over the tuple space, no abc^k allocation for large spaces; prepare/release;
 *     generating without prepare dies with a message;
 *   - recall's samples are those of the implementation before the generalization (golden lists);
 *   - validation messages name the parameter.
 */
#include "testutil.h"

#include <stdint.h>

#include "../tasks/task.h"

static void set_p(lcg_task_cfg *t, const char *flag, double v) {
    for (int i = 0; i < t->task->n_params; i++)
        if (strcmp(t->task->params[i].flag, flag) == 0) {
            t->p[i] = v;
            return;
        }
    ck_abort_msg("no parameter %s", flag);
}

static double get_p(const lcg_task_cfg *t, const char *flag) {
    for (int i = 0; i < t->task->n_params; i++)
        if (strcmp(t->task->params[i].flag, flag) == 0) return t->p[i];
    ck_abort_msg("no parameter %s", flag);
    return 0;
}

static lcg_task_cfg mq_cfg(int abc, int k, int v, int q, double kv, int vocab) {
    lcg_task_cfg t;
    lcg_task_defaults(&t, lcg_task_find("mqmtar"));
    set_p(&t, "abc", abc);
    set_p(&t, "k-len", k);
    set_p(&t, "v-len", v);
    set_p(&t, "num-q", q);
    set_p(&t, "kv-density", kv);
    set_p(&t, "vocab", vocab);
    return t;
}

/* tuple of `len` content ids as a number base abc + 3 (fits for the sizes used here) */
static uint64_t enc(const int *x, int len, int abc) {
    uint64_t e = 0;
    for (int i = 0; i < len; i++) e = e * (uint64_t)(abc + 3) + (uint64_t)x[i];
    return e;
}

static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

static int n_distinct(uint64_t *x, int n) {
    qsort(x, (size_t)n, sizeof *x, cmp_u64);
    int d = n > 0;
    for (int i = 1; i < n; i++) d += x[i] != x[i - 1];
    return d;
}

typedef struct {
    int n, r, lead_hist[64], rows, repeat_query;
    uint64_t *keys, *vals; /* this sample's row keys / values (encoded), n each */
} layout;

/* checks one sample against every invariant; fills `lo` */
static void check_sample(const lcg_task_cfg *t, int L, const int *src, int ns, const int *trg, int nt,
                         layout *lo) {
    int abc = (int)get_p(t, "abc"), k = 1, v = 1, q = 1, vocab = abc;
    double kv = get_p(t, "kv-density");
    if (strcmp(t->task->name, "mqmtar") == 0) {
        k = (int)get_p(t, "k-len"), v = (int)get_p(t, "v-len"), q = (int)get_p(t, "num-q");
        vocab = (int)get_p(t, "vocab");
    }
    int B = k + v + 2, n = (int)floor((double)L * kv / B);
    if (n > vocab) n = vocab;
    int r = L / n, prefix = n * r, o = (r + 1) - (k + v + 1) / 2, need = r - B;
    int max_src, max_trg;
    t->task->max_sizes(t, L, &max_src, &max_trg);
    ck_assert_int_eq(ns, prefix + q * (1 + k));
    ck_assert_int_le(ns, max_src);
    ck_assert_int_eq(nt, q * (1 + v));
    ck_assert_int_eq(nt, max_trg);
    for (int i = 0; i < ns; i++) ck_assert(src[i] >= 0 && src[i] <= abc + 2);
    for (int i = 0; i < nt; i++) ck_assert(trg[i] >= 0 && trg[i] <= abc + 2);
    ck_assert_int_eq(t->task->max_token(t), abc + 2);
    lo->n = n, lo->r = r;
    lo->keys = realloc(lo->keys, sizeof(uint64_t) * (size_t)(2 * n));
    lo->vals = realloc(lo->vals, sizeof(uint64_t) * (size_t)n);
    int *key_at = malloc(sizeof(int) * (size_t)n);
    for (int i = 0; i < n; i++) {
        const int *row = src + (size_t)i * r;
        int lead = 0;
        while (lead < r && row[lead] == 0) lead++;
        ck_assert_int_le(lead, need);
        ck_assert_int_le(lead, o);
        lo->lead_hist[lead < 63 ? lead : 63]++;
        lo->rows++;
        for (int j = 0; j < k; j++) ck_assert_int_ge(row[lead + j], 3);
        ck_assert_int_eq(row[lead + k], 1);
        for (int j = 0; j < v; j++) ck_assert_int_ge(row[lead + k + 1 + j], 3);
        for (int j = lead + B - 1; j < r; j++) ck_assert_int_eq(row[j], 0); /* bound, trailing fillers */
        key_at[i] = i * r + lead;
        lo->keys[i] = enc(row + lead, k, abc);
        lo->vals[i] = enc(row + lead + k + 1, v, abc);
    }
    /* a key is k content ids followed by 1: the scan finds exactly the n row keys */
    int found = 0;
    for (int i = 0; i + k < prefix; i++) {
        if (src[i + k] != 1) continue;
        int all = 1;
        for (int j = 0; j < k; j++) all &= src[i + j] >= 3;
        if (all && (i == 0 || src[i - 1] < 3)) found++;
    }
    ck_assert_int_eq(found, n);
    /* queries: [2 key], the key exactly once among the rows, the target [2 its value] */
    uint64_t first = 0;
    for (int j = 0; j < q; j++) {
        const int *qs = src + prefix + j * (1 + k), *qt = trg + j * (1 + v);
        ck_assert_int_eq(qs[0], 2);
        ck_assert_int_eq(qt[0], 2);
        uint64_t qk = enc(qs + 1, k, abc), qv = enc(qt + 1, v, abc);
        int hits = 0;
        for (int i = 0; i < n; i++)
            if (lo->keys[i] == qk) {
                hits++;
                ck_assert(lo->vals[i] == qv);
                ck_assert_int_eq(memcmp(src + key_at[i] + k + 1, qt + 1, sizeof(int) * (size_t)v), 0);
            }
        ck_assert_int_eq(hits, 1);
        if (j == 0) first = qk;
        else if (qk == first) lo->repeat_query = 1;
    }
    free(key_at);
    /* distinct keys, distinct values (copies: n_distinct sorts) */
    uint64_t *tmp = lo->keys + n;
    memcpy(tmp, lo->keys, sizeof(uint64_t) * (size_t)n);
    ck_assert_int_eq(n_distinct(tmp, n), n);
    memcpy(tmp, lo->vals, sizeof(uint64_t) * (size_t)n);
    ck_assert_int_eq(n_distinct(tmp, n), n);
}

static int src_buf[80000], trg_buf[4096];

START_TEST(test_mqmtar_layout_and_spec_table) {
    ck_assert_ptr_nonnull(lcg_task_find("mqmtar"));
    lcg_task_cfg t;
    lcg_task_defaults(&t, lcg_task_find("mqmtar"));
    ck_assert_int_eq((int)get_p(&t, "abc"), 256);
    ck_assert_int_eq((int)get_p(&t, "k-len"), 2);
    ck_assert_int_eq((int)get_p(&t, "v-len"), 2);
    ck_assert_int_eq((int)get_p(&t, "num-q"), 4);
    ck_assert(get_p(&t, "kv-density") == 0.8);
    ck_assert_int_eq((int)get_p(&t, "vocab"), 10000);
    lcg_task_prepare(&t, 42);
    ck_assert_ptr_nonnull(t.state);
    pcg32 rng = pcg32_derive(3, "mqmtar-test", 0);
    /* the spec's table (abc 256, k = v = 2, kv 0.8, num_q 4) plus L 32 */
    int lens[] = {32, 64, 128, 1024, 4096}, want_n[] = {4, 8, 17, 136, 546},
        want_prefix[] = {32, 64, 119, 952, 3822}, want_src[] = {44, 76, 131, 964, 3834};
    layout lo = {0};
    int repeats = 0;
    for (int li = 0; li < 5; li++)
        for (int s = 0; s < 20; s++) {
            int ns, nt;
            t.task->generate(&t, &rng, lens[li], src_buf, &ns, trg_buf, &nt);
            lo.repeat_query = 0;
            check_sample(&t, lens[li], src_buf, ns, trg_buf, nt, &lo);
            ck_assert_int_eq(lo.n, want_n[li]);
            ck_assert_int_eq(lo.n * lo.r, want_prefix[li]);
            ck_assert_int_eq(ns, want_src[li]);
            ck_assert_int_eq(nt, 12);
            repeats += lo.repeat_query;
        }
    ck_assert_int_gt(repeats, 0); /* queries are drawn with replacement (L 32: n 4, 4 queries) */
    /* r = 7 at L 1024: one filler, before the block with probability 6/10 */
    memset(lo.lead_hist, 0, sizeof lo.lead_hist), lo.rows = 0;
    for (int s = 0; s < 50; s++) {
        int ns, nt;
        t.task->generate(&t, &rng, 1024, src_buf, &ns, trg_buf, &nt);
        check_sample(&t, 1024, src_buf, ns, trg_buf, nt, &lo);
    }
    double frac = (double)lo.lead_hist[1] / lo.rows;
    ck_assert_msg(fabs(frac - 0.6) < 0.03, "filler before the block in %.3f of rows, want 0.6", frac);
    /* other shapes: k != v, several training lengths, long rows */
    lcg_task_release(&t);
    ck_assert_ptr_null(t.state);
    lcg_task_cfg t2 = mq_cfg(16, 3, 1, 2, 0.5, 16);
    lcg_task_prepare(&t2, 7);
    for (int L = 30; L <= 300; L += 7) {
        int ns, nt;
        t2.task->generate(&t2, &rng, L, src_buf, &ns, trg_buf, &nt);
        check_sample(&t2, L, src_buf, ns, trg_buf, nt, &lo);
    }
    lcg_task_release(&t2);
    free(lo.keys);
    free(lo.vals);
}
END_TEST

/* the vocabulary, seen through samples long enough that n = vocab (every tuple appears) */
static void vocab_of(lcg_task_cfg *t, uint64_t seed, int L, uint64_t *keys, uint64_t *vals, int sample_seed) {
    pcg32 rng = pcg32_derive((uint64_t)sample_seed, "vocab-view", 0);
    layout lo = {0};
    int ns, nt;
    lcg_task_prepare(t, seed);
    t->task->generate(t, &rng, L, src_buf, &ns, trg_buf, &nt);
    check_sample(t, L, src_buf, ns, trg_buf, nt, &lo);
    memcpy(keys, lo.keys, sizeof(uint64_t) * (size_t)lo.n);
    memcpy(vals, lo.vals, sizeof(uint64_t) * (size_t)lo.n);
    qsort(keys, (size_t)lo.n, sizeof *keys, cmp_u64);
    qsort(vals, (size_t)lo.n, sizeof *vals, cmp_u64);
    free(lo.keys);
    free(lo.vals);
}

START_TEST(test_mqmtar_vocabulary) {
    enum { V = 10000, L = 75000 }; /* floor(75000 * 0.8 / 6) = 10000 = vocab */
    static uint64_t k1[V], v1[V], k2[V], v2[V], k3[V], v3[V];
    lcg_task_cfg t = mq_cfg(256, 2, 2, 4, 0.8, V), u = mq_cfg(256, 2, 2, 4, 0.8, V);
    vocab_of(&t, 42, L, k1, v1, 1);
    ck_assert_int_eq(n_distinct(k1, V), V);
    ck_assert_int_eq(n_distinct(v1, V), V);
    /* one vocabulary per run: another sample of the same run, and another cfg prepared with the
     * same seed, see the same tuples; re-preparing replaces the state */
    vocab_of(&t, 42, L, k2, v2, 2);
    ck_assert_int_eq(memcmp(k1, k2, sizeof k1), 0);
    ck_assert_int_eq(memcmp(v1, v2, sizeof v1), 0);
    vocab_of(&u, 42, L, k2, v2, 3);
    ck_assert_int_eq(memcmp(k1, k2, sizeof k1), 0);
    ck_assert_int_eq(memcmp(v1, v2, sizeof v1), 0);
    vocab_of(&u, 43, L, k3, v3, 3);
    ck_assert_int_ne(memcmp(k1, k3, sizeof k1), 0);
    ck_assert_int_ne(memcmp(v1, v3, sizeof v1), 0);
    ck_assert_int_ne(memcmp(k3, v3, sizeof k3), 0); /* keys and values drawn independently */
    lcg_task_release(&t);
    lcg_task_release(&u);
    ck_assert_ptr_null(t.state);
    lcg_task_release(&u); /* releasing twice is harmless */

    /* shorter samples draw only from the vocabulary */
    lcg_task_prepare(&t, 42);
    pcg32 rng = pcg32_derive(9, "sub", 0);
    layout lo = {0};
    for (int s = 0; s < 20; s++) {
        int ns, nt;
        t.task->generate(&t, &rng, 1024, src_buf, &ns, trg_buf, &nt);
        check_sample(&t, 1024, src_buf, ns, trg_buf, nt, &lo);
        for (int i = 0; i < lo.n; i++) {
            ck_assert_ptr_nonnull(bsearch(&lo.keys[i], k1, V, sizeof *k1, cmp_u64));
            ck_assert_ptr_nonnull(bsearch(&lo.vals[i], v1, V, sizeof *v1, cmp_u64));
        }
    }
    lcg_task_release(&t);

    /* uniform over the tuple space: abc 4, k = v = 2 (16 tuples), vocab 8, 1000 seeds */
    int kc[16 * 16] = {0}, vc[16 * 16] = {0};
    lcg_task_cfg w = mq_cfg(4, 2, 2, 1, 0.8, 8);
    for (int seed = 0; seed < 1000; seed++) {
        uint64_t kk[8], vv[8];
        vocab_of(&w, (uint64_t)seed, 64, kk, vv, seed);
        for (int i = 0; i < 8; i++) {
            ck_assert(kk[i] < 16 * 16 && vv[i] < 16 * 16);
            kc[kk[i]]++, vc[vv[i]]++;
        }
    }
    int tuples = 0;
    for (int a = 3; a < 7; a++)
        for (int b = 3; b < 7; b++) {
            int e = a * 7 + b;
            tuples++;
            ck_assert_msg(kc[e] > 420 && kc[e] < 580, "key tuple %d %d chosen %d times of 1000", a, b, kc[e]);
            ck_assert_msg(vc[e] > 420 && vc[e] < 580, "value tuple %d %d chosen %d times of 1000", a, b, vc[e]);
        }
    ck_assert_int_eq(tuples, 16);
    lcg_task_release(&w);

    /* a tuple space near 2^31 (46340^2) with a large vocabulary: quick, no abc^k table */
    lcg_task_cfg big = mq_cfg(46340, 2, 2, 4, 0.8, 1 << 20);
    ck_assert_str_eq(big.task->validate(&big, 32), "");
    double t0 = lcg_now();
    lcg_task_prepare(&big, 5);
    ck_assert_msg(lcg_now() - t0 < 2.0, "prepare took %.2f s", lcg_now() - t0);
    for (int s = 0; s < 5; s++) {
        int ns, nt;
        big.task->generate(&big, &rng, 4096, src_buf, &ns, trg_buf, &nt);
        check_sample(&big, 4096, src_buf, ns, trg_buf, nt, &lo);
    }
    lcg_task_release(&big);
    free(lo.keys);
    free(lo.vals);
}
END_TEST

/* runs generate in a child; returns its exit status and its stderr in err */
static int generate_in_child(const lcg_task_cfg *t, char *err, size_t n) {
    int fd[2];
    ck_assert_int_eq(pipe(fd), 0);
    fflush(NULL);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        close(fd[0]);
        dup2(fd[1], 2);
        pcg32 rng = pcg32_derive(1, "child", 0);
        int ns, nt;
        t->task->generate(t, &rng, 64, src_buf, &ns, trg_buf, &nt);
        _exit(0);
    }
    close(fd[1]);
    size_t got = 0;
    ssize_t r;
    while (got + 1 < n && (r = read(fd[0], err + got, n - 1 - got)) > 0) got += (size_t)r;
    err[got] = '\0';
    close(fd[0]);
    int st;
    waitpid(pid, &st, 0);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

START_TEST(test_mqmtar_needs_prepare) {
    char err[1024];
    lcg_task_cfg t = mq_cfg(256, 2, 2, 4, 0.8, 10000);
    ck_assert_ptr_null(t.state);
    ck_assert_int_eq(generate_in_child(&t, err, sizeof err), 1);
    ck_assert_msg(strstr(err, "mqmtar") && strstr(err, "lcg_task_prepare"), "message: %s", err);
    /* parameters changed after prepare */
    lcg_task_prepare(&t, 1);
    ck_assert_int_eq(generate_in_child(&t, err, sizeof err), 0);
    set_p(&t, "vocab", 5000);
    ck_assert_int_eq(generate_in_child(&t, err, sizeof err), 1);
    ck_assert_msg(strstr(err, "prepare again"), "message: %s", err);
    lcg_task_release(&t);
    /* recall needs no state */
    lcg_task_cfg r;
    lcg_task_defaults(&r, lcg_task_find("recall"));
    lcg_task_prepare(&r, 1);
    ck_assert_ptr_null(r.state);
    ck_assert_int_eq(generate_in_child(&r, err, sizeof err), 0);
}
END_TEST

/* recall samples of the implementation before the generalization (pcg32_derive(11,
 * "recall-golden", 0), lengths in order, one stream) */
static const struct {
    int L, ns, src[110], trg[2];
} golden[] = {
    {16, 17, {0, 25, 1, 26, 0, 0, 34, 1, 5, 0, 0, 17, 1, 18, 0, 2, 34}, {2, 5}},
    {33, 32, {13, 1, 33, 0, 0, 0, 6, 1, 18, 0, 0, 4, 1, 22, 0, 0, 34, 1, 16, 0, 3, 1, 8, 0, 0, 0, 15, 1, 20, 0, 2, 4}, {2, 22}},
    {48, 47, {0, 22, 1, 6, 0, 3, 1, 12, 0, 0, 0, 15, 1, 9, 0, 0, 11, 1, 27, 0, 0, 10, 1, 32, 0, 0, 26, 1, 17, 0, 0, 20, 1, 29, 0, 0, 12, 1, 23, 0, 0, 19, 1, 19, 0, 2, 26}, {2, 17}},
    {64, 62, {0, 32, 1, 20, 0, 0, 33, 1, 18, 0, 24, 1, 12, 0, 0, 13, 1, 5, 0, 0, 18, 1, 34, 0, 0, 17, 1, 16, 0, 0, 0, 11, 1, 14, 0, 0, 27, 1, 21, 0, 25, 1, 10, 0, 0, 0, 28, 1, 30, 0, 0, 31, 1, 19, 0, 0, 9, 1, 17, 0, 2, 24}, {2, 12}},
    {100, 102, {19, 1, 7, 0, 0, 0, 28, 1, 26, 0, 0, 24, 1, 15, 0, 0, 27, 1, 32, 0, 0, 30, 1, 33, 0, 34, 1, 9, 0, 0, 0, 4, 1, 20, 0, 26, 1, 12, 0, 0, 0, 10, 1, 34, 0, 21, 1, 14, 0, 0, 20, 1, 19, 0, 0, 31, 1, 29, 0, 0, 0, 12, 1, 5, 0, 0, 23, 1, 4, 0, 0, 17, 1, 13, 0, 3, 1, 10, 0, 0, 16, 1, 25, 0, 0, 29, 1, 8, 0, 0, 32, 1, 11, 0, 0, 0, 5, 1, 31, 0, 2, 4}, {2, 20}},
};

static uint64_t fnv(uint64_t h, const int *x, int n) {
    for (int i = 0; i < n; i++) h = (h ^ (unsigned)x[i]) * 1099511628211ULL;
    return h;
}

START_TEST(test_recall_unchanged) {
    lcg_task_cfg t;
    lcg_task_defaults(&t, lcg_task_find("recall"));
    ck_assert_int_eq(t.task->n_params, 2);
    pcg32 r = pcg32_derive(11, "recall-golden", 0);
    int ns, nt;
    layout lo = {0};
    for (size_t g = 0; g < sizeof golden / sizeof *golden; g++) {
        t.task->generate(&t, &r, golden[g].L, src_buf, &ns, trg_buf, &nt);
        ck_assert_int_eq(ns, golden[g].ns);
        ck_assert_int_eq(nt, 2);
        for (int i = 0; i < ns; i++) ck_assert_msg(src_buf[i] == golden[g].src[i], "L %d src[%d]", golden[g].L, i);
        ck_assert_int_eq(trg_buf[0], golden[g].trg[0]);
        ck_assert_int_eq(trg_buf[1], golden[g].trg[1]);
        check_sample(&t, golden[g].L, src_buf, ns, trg_buf, nt, &lo);
    }
    /* continuing the stream: 20 samples of abc 7, kv 0.5 at L 1024, then 200 of the defaults at
     * L in [8, 4008) (hashes of the old implementation's output) */
    t.p[0] = 7, t.p[1] = 0.5;
    uint64_t h = 1469598103934665603ULL;
    for (int k = 0; k < 20; k++) {
        t.task->generate(&t, &r, 1024, src_buf, &ns, trg_buf, &nt);
        check_sample(&t, 1024, src_buf, ns, trg_buf, nt, &lo);
        h = fnv(fnv(h, src_buf, ns), trg_buf, nt) ^ (unsigned)ns;
    }
    ck_assert(h == 11860656856046576609ULL);
    t.p[0] = 32, t.p[1] = 0.8;
    h = 1469598103934665603ULL;
    for (int k = 0; k < 200; k++) {
        int L = 8 + (int)pcg32_below(&r, 4000);
        t.task->generate(&t, &r, L, src_buf, &ns, trg_buf, &nt);
        check_sample(&t, L, src_buf, ns, trg_buf, nt, &lo);
        h = fnv(fnv(h, src_buf, ns), trg_buf, nt) ^ (unsigned)ns;
    }
    ck_assert(h == 8437251416068674100ULL);
    free(lo.keys);
    free(lo.vals);
}
END_TEST

static void want_msg(lcg_task_cfg *t, int min_len, const char *a, const char *b) {
    const char *m = t->task->validate(t, min_len);
    ck_assert_msg(strstr(m, a) && (!b || strstr(m, b)), "validate(%d) = \"%s\", want \"%s\" and \"%s\"", min_len, m, a,
                  b ? b : "");
    ck_assert_ptr_null(strchr(m, '\n'));
}

START_TEST(test_validation) {
    lcg_task_cfg t = mq_cfg(256, 2, 2, 4, 0.8, 10000);
    ck_assert_str_eq(t.task->validate(&t, 32), "");
    ck_assert_str_eq(t.task->validate(&t, 65536), "");
    ck_assert_str_eq(t.task->validate(&t, 31), ""); /* floor(31 * 0.8 / 6) = 4 pairs */
    want_msg(&t, 29, "num-q 4", "= 3");
    t = mq_cfg(256, 0, 2, 4, 0.8, 10);
    want_msg(&t, 64, "k-len", NULL);
    t = mq_cfg(256, 2, 0, 4, 0.8, 10);
    want_msg(&t, 64, "v-len", NULL);
    t = mq_cfg(256, 2, 2, 4, 0, 10);
    want_msg(&t, 64, "kv-density", NULL);
    t = mq_cfg(256, 2, 2, 4, 1.5, 10);
    want_msg(&t, 64, "kv-density", NULL);
    t = mq_cfg(256, 2, 2, 4, 1, 10);
    ck_assert_str_eq(t.task->validate(&t, 64), "");
    t = mq_cfg(256, 4, 2, 4, 0.8, 10);
    want_msg(&t, 64, "2^31", NULL);
    t = mq_cfg(256, 2, 2, 4, 0.8, 65537);
    want_msg(&t, 64, "vocab 65537", "abc^max(k-len, v-len) = 65536");
    t = mq_cfg(256, 2, 2, 4, 0.8, 65536);
    ck_assert_str_eq(t.task->validate(&t, 64), "");
    /* the stricter check: 1000 <= 256^2 but > 256^1 key tuples */
    t = mq_cfg(256, 1, 2, 4, 0.8, 1000);
    want_msg(&t, 64, "abc^k-len = 256", NULL);
    t = mq_cfg(256, 2, 1, 4, 0.8, 1000);
    want_msg(&t, 64, "abc^v-len = 256", NULL);
    /* m is capped by vocab */
    t = mq_cfg(256, 2, 2, 4, 0.8, 3);
    want_msg(&t, 4096, "num-q 4", "= 3");
    /* recall keeps its message about kv-density */
    lcg_task_cfg r;
    lcg_task_defaults(&r, lcg_task_find("recall"));
    ck_assert_str_eq(r.task->validate(&r, 64), "");
    ck_assert_str_eq(r.task->validate(&r, 5), "");
    want_msg(&r, 4, "kv-density", NULL);
}
END_TEST

int main(void) {
    Suite *s = suite_create("mqmtar");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_mqmtar_layout_and_spec_table);
    tcase_add_test(tc, test_mqmtar_vocabulary);
    tcase_add_test(tc, test_mqmtar_needs_prepare);
    tcase_add_test(tc, test_recall_unchanged);
    tcase_add_test(tc, test_validation);
    suite_add_tcase(s, tc);
    return tu_run_suite(s);
}
