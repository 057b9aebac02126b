/*
 * test_tasks.c: the registry entries sort, reverse, flip-flop, count and nback.
 *   - per task the invariant that defines it, checked by a small predicate that is first run
 *     on the spec's worked examples (§1.4) and on near misses of them, then on many samples;
 *   - the reference's kinds, layouts and defaults (§1.5, §1.6): SEP use, generation caps,
 *     training lengths, special token ids, label counts;
 *   - lengths over the reference's training range (every length reached), and within the
 *     max_sizes bounds the harness allocates by; token ids in [0, max_token], labels in
 *     [0, n_labels);
 *   - distributions: tokens, commands, bits, block lengths and symbols all occur at their rates;
 *     count's no-adjacent-equal symbols are the reference's simultaneous-redraw construction;
 *   - determinism per seed; validation messages name the parameter.
 * The harness (layout, training) is tested in test_harness.c and test_cli.c.
 */
#include "testutil.h"

#include "../tasks/task.h"

#define MAXN 8192

static int src[MAXN], trg[MAXN];

static lcg_task_cfg cfg_of(const char *name) {
    const lcg_task *t = lcg_task_find(name);
    ck_assert_msg(t != NULL, "task %s not registered", name);
    lcg_task_cfg c;
    lcg_task_defaults(&c, t);
    return c;
}

/* index of the task parameter `flag` */
static int param_ix(const lcg_task_cfg *c, const char *flag) {
    for (int i = 0; i < c->task->n_params; i++)
        if (strcmp(c->task->params[i].flag, flag) == 0) return i;
    ck_abort_msg("%s has no parameter %s", c->task->name, flag);
    return -1;
}

/* reference training length: uniform over [len - vary, len + vary] */
static int draw_len(pcg32 *r, int len, int vary) {
    return len - vary + (int)pcg32_below(r, (uint32_t)(2 * vary + 1));
}

/* ---- the defining predicates ---------------------------------------------------------------- */

static int cmp_int(const void *a, const void *b) {
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

/* t is ascending and the same multiset as s */
static int is_sorted_of(const int *s, int ns, const int *t, int nt) {
    static int tmp[MAXN];
    if (ns != nt || ns > MAXN) return 0;
    for (int i = 0; i + 1 < nt; i++)
        if (t[i] > t[i + 1]) return 0;
    memcpy(tmp, s, sizeof(int) * (size_t)ns);
    qsort(tmp, (size_t)ns, sizeof(int), cmp_int);
    return memcmp(tmp, t, sizeof(int) * (size_t)ns) == 0;
}

static int is_reverse_of(const int *s, int ns, const int *t, int nt) {
    if (ns != nt) return 0;
    for (int i = 0; i < ns; i++)
        if (t[i] != s[ns - 1 - i]) return 0;
    return 1;
}

/* flip-flop: 2P - 1 tokens, write first, read last, ignore/write between, bits at odd
 * positions, answer = the bit after the last write */
static int is_flipflop(const int *s, int ns, const int *t, int nt) {
    if (nt != 1 || ns < 3 || ns % 2 == 0) return 0;
    if (s[0] != 2 || s[ns - 1] != 4) return 0;
    int last = -1;
    for (int i = 0; i + 1 < ns; i += 2) {
        if (i > 0 && s[i] != 2 && s[i] != 3) return 0;
        if (s[i + 1] != 0 && s[i + 1] != 1) return 0;
        if (s[i] == 2) last = s[i + 1];
    }
    return t[0] == last;
}

/* count: labels restart at 0 exactly where the symbol changes, count up by one inside a block,
 * blocks are 2..max_reps long; returns the number of blocks, or -1 */
static int count_blocks(const int *s, int ns, const int *t, int nt, int max_reps) {
    if (ns != nt || ns == 0 || t[0] != 0) return -1;
    int blocks = 1, run = 1;
    for (int i = 1; i <= ns; i++) {
        if (i == ns || s[i] != s[i - 1]) {
            if (run < 2 || run > max_reps) return -1;
            if (i == ns) break;
            if (t[i] != 0) return -1;
            blocks++, run = 1;
        } else {
            if (t[i] != t[i - 1] + 1) return -1;
            run++;
        }
    }
    return blocks;
}

static int is_nback(const int *s, int ns, const int *t, int nt, int N) {
    if (ns != nt || s[0] != 0) return 0;
    for (int i = 0; i < ns; i++) {
        if (i > 0 && s[i] == 0) return 0;
        if (t[i] != (i >= N ? s[i - N] : 0)) return 0;
    }
    return 1;
}

START_TEST(test_worked_examples) {
    /* §1.4, V = 10: src 7 1 0 6 6 7 */
    int s[] = {7, 1, 0, 6, 6, 7}, so[] = {0, 1, 6, 6, 7, 7}, rv[] = {7, 6, 6, 0, 1, 7};
    ck_assert(is_sorted_of(s, 6, so, 6));
    ck_assert(is_reverse_of(s, 6, rv, 6));
    int so_bad[] = {0, 1, 6, 7, 7, 7}, so_bad2[] = {0, 6, 1, 6, 7, 7};
    ck_assert(!is_sorted_of(s, 6, so_bad, 6));  /* a duplicate lost */
    ck_assert(!is_sorted_of(s, 6, so_bad2, 6)); /* not ascending */
    ck_assert(!is_reverse_of(s, 6, so, 6));
    ck_assert(!is_sorted_of(s, 6, rv, 6));

    /* flip-flop, L = 12, six pairs: the last write is pair 2, bit 1 */
    int ff[] = {2, 0, 2, 1, 2, 1, 3, 1, 3, 1, 4}, one[] = {1}, zero[] = {0};
    ck_assert(is_flipflop(ff, 11, one, 1));
    ck_assert(!is_flipflop(ff, 11, zero, 1));
    ff[4] = 3; /* pair 2 becomes an ignore: the last write is pair 1, still bit 1 */
    ck_assert(is_flipflop(ff, 11, one, 1));
    ff[2] = 3; /* only pair 0 writes, bit 0 */
    ck_assert(is_flipflop(ff, 11, zero, 1));

    /* count, V = 16, max_reps = 6: five blocks */
    int cs[] = {4, 4, 8, 8, 8, 8, 8, 6, 6, 6, 1, 1, 1, 3, 3};
    int ct[] = {0, 1, 0, 1, 2, 3, 4, 0, 1, 2, 0, 1, 2, 0, 1};
    ck_assert_int_eq(count_blocks(cs, 15, ct, 15, 6), 5);
    ck_assert_int_eq(count_blocks(cs, 15, ct, 15, 4), -1); /* a block of 5 > max_reps */
    ct[5] = 0;
    ck_assert_int_eq(count_blocks(cs, 15, ct, 15, 6), -1);

    /* nback, N = 2 */
    int ns[] = {0, 1, 11, 11, 15, 10, 12, 12, 15}, nt[] = {0, 0, 0, 1, 11, 11, 15, 10, 12};
    ck_assert(is_nback(ns, 9, nt, 9, 2));
    ck_assert(!is_nback(ns, 9, nt, 9, 1));
}
END_TEST

/* ---- reference facts per entry -------------------------------------------------------------- */

START_TEST(test_reference_facts) {
    struct {
        const char *name;
        int kind, uses_sep, len, vary, M, vocab;
        double gen_mult;
    } want[] = {
        {"sort", LCG_TASK_SRC_TRG, 1, 48, 16, 31, 37, 2.1},
        {"reverse", LCG_TASK_SRC_TRG, 1, 48, 16, 31, 37, 2.2},
        {"flip-flop", LCG_TASK_SRC_TRG, 0, 48, 16, 4, 10, 1.2},
        {"count", LCG_TASK_TOKEN_CLS, 0, 96, 32, 15, 21, 0},
        {"nback", LCG_TASK_TOKEN_CLS, 0, 48, 16, 15, 21, 0},
    };
    for (int i = 0; i < 5; i++) {
        lcg_task_cfg c = cfg_of(want[i].name);
        const lcg_task *t = c.task;
        ck_assert_int_eq(t->kind, want[i].kind);
        ck_assert_int_eq(t->def_len, want[i].len);
        ck_assert_int_eq(t->def_vary, want[i].vary);
        ck_assert_int_eq(t->max_token(&c), want[i].M);
        lcg_tokens tk = lcg_task_tokens(&c);
        ck_assert_int_eq(tk.pad, want[i].M + 1);
        ck_assert_int_eq(tk.sep, want[i].M + 5);
        ck_assert_int_eq(tk.vocab, want[i].vocab);
        ck_assert_ptr_null(t->prepare);
        ck_assert_ptr_null(t->release);
        ck_assert_str_eq(t->validate(&c, t->def_len - t->def_vary), "");
        if (t->kind == LCG_TASK_SRC_TRG) {
            ck_assert_int_eq(t->uses_sep, want[i].uses_sep);
            ck_assert_double_eq(t->gen_mult, want[i].gen_mult);
        } else {
            ck_assert_ptr_nonnull(t->n_labels);
        }
    }
    lcg_task_cfg c = cfg_of("flip-flop");
    ck_assert_double_eq(c.p[param_ix(&c, "write-prob")], 0.1); /* the data the reference used */
    c = cfg_of("count");
    ck_assert_double_eq(c.p[param_ix(&c, "vocab")], 16);
    ck_assert_double_eq(c.p[param_ix(&c, "max-reps")], 48);
    ck_assert_int_eq(c.task->n_labels(&c), 48);
    ck_assert_int_eq(lcg_task_out_vocab(&c), 48); /* labels up to 47 need a wider head */
    c = cfg_of("nback");
    ck_assert_double_eq(c.p[param_ix(&c, "n")], 2);
    ck_assert_int_eq(c.task->n_labels(&c), 16);
    ck_assert_int_eq(lcg_task_out_vocab(&c), 21);
    c = cfg_of("sort");
    ck_assert_double_eq(c.p[param_ix(&c, "vocab")], 32);
    c = cfg_of("reverse");
    ck_assert_double_eq(c.p[param_ix(&c, "vocab")], 32);
}
END_TEST

/* ---- samples over the training range -------------------------------------------------------- */

/* n samples over [len - vary, len + vary]: sizes within max_sizes (of L, and so of len + vary,
 * what the harness allocates), ids in [0, max_token], labels in [0, n_labels) */
static void check_bounds(lcg_task_cfg *c, int n, int len, int vary, pcg32 *r) {
    int M = c->task->max_token(c);
    int ms, mt, labels = c->task->kind == LCG_TASK_TOKEN_CLS ? c->task->n_labels(c) : 0;
    c->task->max_sizes(c, len + vary, &ms, &mt);
    ck_assert(ms <= MAXN && mt <= MAXN);
    for (int k = 0; k < n; k++) {
        int L = draw_len(r, len, vary), ns, nt, ms_l, mt_l;
        c->task->generate(c, r, L, src, &ns, trg, &nt);
        c->task->max_sizes(c, L, &ms_l, &mt_l);
        ck_assert_msg(ns >= 1 && ns <= ms_l && nt >= 1 && nt <= mt_l, "%s L %d: %d/%d > %d/%d",
                      c->task->name, L, ns, nt, ms_l, mt_l);
        for (int i = 0; i < ns; i++) ck_assert(src[i] >= 0 && src[i] <= M);
        for (int i = 0; i < nt; i++) {
            if (labels) ck_assert(trg[i] >= 0 && trg[i] < labels);
            else ck_assert(trg[i] >= 0 && trg[i] <= M);
        }
    }
}

START_TEST(test_sort_reverse) {
    const char *names[] = {"sort", "reverse"};
    for (int ti = 0; ti < 2; ti++) {
        lcg_task_cfg c = cfg_of(names[ti]);
        pcg32 r = pcg32_derive(11, names[ti], 0);
        int seen[33] = {0}, counts[32] = {0};
        for (int k = 0; k < 2000; k++) {
            int L = draw_len(&r, 48, 16), ns, nt;
            c.task->generate(&c, &r, L, src, &ns, trg, &nt);
            ck_assert_int_eq(ns, L);
            ck_assert_int_eq(nt, L);
            seen[L - 32] = 1;
            if (ti == 0) ck_assert(is_sorted_of(src, ns, trg, nt));
            else ck_assert(is_reverse_of(src, ns, trg, nt));
            for (int i = 0; i < ns; i++) {
                ck_assert(src[i] >= 0 && src[i] < 32);
                counts[src[i]]++;
            }
        }
        for (int i = 0; i < 33; i++) ck_assert_msg(seen[i], "%s: length %d never drawn", names[ti], 32 + i);
        for (int v = 0; v < 32; v++) ck_assert_int_gt(counts[v], 2400); /* ~3000 each */
        check_bounds(&c, 200, 48, 16, &r);
        /* a long evaluation length and a small vocabulary (many duplicates) */
        c.p[param_ix(&c, "vocab")] = 3;
        for (int k = 0; k < 20; k++) {
            int ns, nt;
            c.task->generate(&c, &r, 4096, src, &ns, trg, &nt);
            ck_assert_int_eq(ns, 4096);
            ck_assert(ti == 0 ? is_sorted_of(src, ns, trg, nt) : is_reverse_of(src, ns, trg, nt));
            for (int i = 0; i < ns; i++) ck_assert(src[i] >= 0 && src[i] < 3);
        }
        ck_assert_str_eq(c.task->validate(&c, 1), "");
        ck_assert_str_ne(c.task->validate(&c, 0), "");
    }
}
END_TEST

START_TEST(test_flipflop) {
    lcg_task_cfg c = cfg_of("flip-flop");
    pcg32 r = pcg32_derive(12, "ff", 0);
    int seen[33] = {0}, writes = 0, mids = 0, bits[2] = {0}, answers[2] = {0}, first_only = 0;
    for (int k = 0; k < 4000; k++) {
        int L = draw_len(&r, 48, 16), ns, nt;
        c.task->generate(&c, &r, L, src, &ns, trg, &nt);
        ck_assert_int_eq(ns, 2 * (L / 2) - 1);
        ck_assert_int_eq(nt, 1);
        seen[L - 32] = 1;
        ck_assert_msg(is_flipflop(src, ns, trg, nt), "sample %d (L %d) is not a flip-flop string", k, L);
        int last_w = 0;
        for (int i = 2; i + 1 < ns; i += 2) {
            mids++, writes += src[i] == 2;
            if (src[i] == 2) last_w = i;
        }
        first_only += last_w == 0;
        for (int i = 1; i < ns; i += 2) bits[src[i]]++;
        answers[trg[0]]++;
    }
    for (int i = 0; i < 33; i++) ck_assert_msg(seen[i], "length %d never drawn", 32 + i);
    /* commands between the first write and the read: writes at rate write-prob (0.1) */
    double rate = (double)writes / mids;
    ck_assert_msg(fabs(rate - 0.1) < 0.01, "write rate %.4f", rate);
    ck_assert_int_gt(first_only, 0); /* sometimes only c_0 writes (0.9^30 ~ 4%) */
    ck_assert(fabs((double)bits[1] / (bits[0] + bits[1]) - 0.5) < 0.01);
    ck_assert(fabs((double)answers[1] / 4000 - 0.5) < 0.05);
    check_bounds(&c, 200, 48, 16, &r);

    /* the README's 0.8, and the shortest length: P = 2 is write bit read */
    c.p[param_ix(&c, "write-prob")] = 0.8;
    writes = mids = 0;
    for (int k = 0; k < 500; k++) {
        int ns, nt;
        c.task->generate(&c, &r, 1024, src, &ns, trg, &nt);
        ck_assert_int_eq(ns, 1023);
        ck_assert(is_flipflop(src, ns, trg, nt));
        for (int i = 2; i + 1 < ns; i += 2) mids++, writes += src[i] == 2;
    }
    ck_assert(fabs((double)writes / mids - 0.8) < 0.01);
    for (int L = 4; L <= 5; L++) {
        int ns, nt;
        c.task->generate(&c, &r, L, src, &ns, trg, &nt);
        ck_assert_int_eq(ns, 3);
        ck_assert_int_eq(src[0], 2);
        ck_assert_int_eq(src[2], 4);
        ck_assert_int_eq(trg[0], src[1]);
    }
}
END_TEST

/* the reference's block symbols, written plainly: iid draws, then while any x[i] == x[i+1],
 * redraw all such x[i] at once (ascending, in place: a redraw of x[i] only touches pairs left of
 * i+1, already tested), then the block lengths */
static int count_reference(pcg32 *r, int V, int max_reps, int L, int *s, int *t) {
    int n = (int)floor(L / ((max_reps + 2) / 2.0)), sym[MAXN], any = 1, off = 0;
    for (int b = 0; b < n; b++) sym[b] = (int)pcg32_below(r, (uint32_t)V);
    while (any) {
        any = 0;
        for (int i = 0; i + 1 < n; i++)
            if (sym[i] == sym[i + 1]) sym[i] = (int)pcg32_below(r, (uint32_t)V), any = 1;
    }
    for (int b = 0; b < n; b++) {
        int reps = 2 + (int)pcg32_below(r, (uint32_t)(max_reps - 1));
        for (int j = 0; j < reps; j++, off++) s[off] = sym[b], t[off] = j;
    }
    return off;
}

START_TEST(test_count) {
    lcg_task_cfg c = cfg_of("count");
    int iv = param_ix(&c, "vocab"), ir = param_ix(&c, "max-reps");
    pcg32 r = pcg32_derive(13, "count", 0);
    int reps_seen[49] = {0}, sym_seen[16] = {0};
    for (int k = 0; k < 3000; k++) {
        int L = draw_len(&r, 96, 32), ns, nt;
        c.task->generate(&c, &r, L, src, &ns, trg, &nt);
        int nb = L / 25; /* floor(L / ((48 + 2) / 2)) */
        ck_assert_int_eq(count_blocks(src, ns, trg, nt, 48), nb);
        ck_assert(ns >= 2 * nb && ns <= 48 * nb);
        for (int i = 0, run = 0; i < ns; i++) {
            sym_seen[src[i]] = 1;
            run++;
            if (i + 1 == ns || trg[i + 1] == 0) reps_seen[run] = 1, run = 0;
        }
    }
    for (int v = 0; v < 16; v++) ck_assert(sym_seen[v]);
    for (int k = 2; k <= 48; k++) ck_assert_msg(reps_seen[k], "block length %d never drawn", k);
    ck_assert(!reps_seen[1]);
    check_bounds(&c, 300, 96, 32, &r);

    /* the same draws as the reference's construction, including vocabularies of 2 and 3
     * (many redraw rounds) and long lengths */
    int Vs[] = {16, 2, 3, 16}, Rs[] = {48, 2, 6, 48}, Ls[] = {96, 200, 500, 4096};
    static int s2[MAXN], t2[MAXN];
    for (int j = 0; j < 4; j++) {
        c.p[iv] = Vs[j], c.p[ir] = Rs[j];
        pcg32 a = pcg32_derive(14, "count", (uint64_t)j), b = a;
        for (int k = 0; k < 30; k++) {
            int ns, nt, n2 = count_reference(&b, Vs[j], Rs[j], Ls[j], s2, t2);
            c.task->generate(&c, &a, Ls[j], src, &ns, trg, &nt);
            ck_assert_int_eq(ns, n2);
            ck_assert_int_eq(memcmp(src, s2, sizeof(int) * (size_t)ns), 0);
            ck_assert_int_eq(memcmp(trg, t2, sizeof(int) * (size_t)ns), 0);
            ck_assert(count_blocks(src, ns, trg, nt, Rs[j]) >= 1);
            int ms, mt;
            c.task->max_sizes(&c, Ls[j], &ms, &mt);
            ck_assert(ns <= ms && nt <= mt);
        }
    }
    /* V = 2 forces alternation */
    c.p[iv] = 2, c.p[ir] = 4;
    int ns, nt;
    c.task->generate(&c, &r, 300, src, &ns, trg, &nt);
    ck_assert_int_eq(count_blocks(src, ns, trg, nt, 4), 100);
    for (int i = 1; i < ns; i++)
        if (trg[i] == 0) ck_assert_int_ne(src[i], src[i - 1]);
    /* max-reps 6 as in the worked example: floor(L / 4) blocks */
    c.p[iv] = 16, c.p[ir] = 6;
    c.task->generate(&c, &r, 21, src, &ns, trg, &nt);
    ck_assert_int_eq(count_blocks(src, ns, trg, nt, 6), 5);
    ck_assert_int_eq(c.task->n_labels(&c), 6);
}
END_TEST

START_TEST(test_nback) {
    lcg_task_cfg c = cfg_of("nback");
    int in = param_ix(&c, "n");
    pcg32 r = pcg32_derive(15, "nback", 0);
    int seen[33] = {0}, counts[16] = {0};
    for (int k = 0; k < 2000; k++) {
        int L = draw_len(&r, 48, 16), ns, nt;
        c.task->generate(&c, &r, L, src, &ns, trg, &nt);
        ck_assert_int_eq(ns, L + 1);
        ck_assert_int_eq(nt, L + 1);
        seen[L - 32] = 1;
        ck_assert(is_nback(src, ns, trg, nt, 2));
        ck_assert(trg[0] == 0 && trg[1] == 0 && trg[2] == 0); /* src[0] = 0 is 2 back of 2 */
        for (int i = 0; i < ns; i++) counts[src[i]]++;
    }
    for (int i = 0; i < 33; i++) ck_assert(seen[i]);
    ck_assert_int_eq(counts[0], 2000);
    for (int v = 1; v < 16; v++) ck_assert_int_gt(counts[v], 5500); /* ~6400 each */
    check_bounds(&c, 200, 48, 16, &r);
    int Ns[] = {1, 5, 31};
    for (int j = 0; j < 3; j++) {
        c.p[in] = Ns[j];
        for (int k = 0; k < 50; k++) {
            int ns, nt;
            c.task->generate(&c, &r, 512, src, &ns, trg, &nt);
            ck_assert(is_nback(src, ns, trg, nt, Ns[j]));
            for (int i = 0; i < Ns[j]; i++) ck_assert_int_eq(trg[i], 0);
            for (int i = Ns[j] + 1; i < ns; i++) ck_assert_int_ne(trg[i], 0);
        }
    }
}
END_TEST

/* ---- determinism ---------------------------------------------------------------------------- */

START_TEST(test_determinism) {
    const char *names[] = {"sort", "reverse", "flip-flop", "count", "nback"};
    static int s1[MAXN], t1[MAXN];
    for (int ti = 0; ti < 5; ti++) {
        lcg_task_cfg c = cfg_of(names[ti]);
        int len = c.task->def_len, vary = c.task->def_vary, differ = 0;
        pcg32 a = pcg32_derive(21, "det", 0), b = pcg32_derive(21, "det", 0), o = pcg32_derive(22, "det", 0);
        for (int k = 0; k < 20; k++) {
            int La = draw_len(&a, len, vary), Lb = draw_len(&b, len, vary), Lo = draw_len(&o, len, vary);
            int na, nta, nb, ntb, no, nto;
            ck_assert_int_eq(La, Lb);
            c.task->generate(&c, &a, La, s1, &na, t1, &nta);
            c.task->generate(&c, &b, Lb, src, &nb, trg, &ntb);
            ck_assert_int_eq(na, nb);
            ck_assert_int_eq(nta, ntb);
            ck_assert_int_eq(memcmp(s1, src, sizeof(int) * (size_t)na), 0);
            ck_assert_int_eq(memcmp(t1, trg, sizeof(int) * (size_t)nta), 0);
            c.task->generate(&c, &o, Lo, src, &no, trg, &nto);
            differ += no != na || memcmp(s1, src, sizeof(int) * (size_t)na) != 0;
        }
        ck_assert_msg(differ >= 19, "%s: seeds 21 and 22 gave %d/20 different samples", names[ti], differ);
    }
}
END_TEST

/* ---- validation ----------------------------------------------------------------------------- */

static void assert_names(const char *msg, const char *task, const char *param) {
    ck_assert_msg(msg[0] && strstr(msg, task) && strstr(msg, param), "message '%s' should name %s and %s",
                  msg, task, param);
    ck_assert_msg(!strchr(msg, '\n'), "message '%s' is not one line", msg);
}

START_TEST(test_validation) {
    lcg_task_cfg c = cfg_of("flip-flop");
    int iw = param_ix(&c, "write-prob");
    const lcg_task_param *wp = &c.task->params[iw];
    ck_assert(wp->min > 0 && wp->max < 1 && !wp->is_int); /* the CLI keeps it in (0, 1) too */
    ck_assert_str_eq(c.task->validate(&c, 4), "");
    assert_names(c.task->validate(&c, 3), "flip-flop", "4");
    c.p[iw] = 0;
    assert_names(c.task->validate(&c, 32), "flip-flop", "write-prob");
    c.p[iw] = 1;
    assert_names(c.task->validate(&c, 32), "flip-flop", "write-prob");

    c = cfg_of("count");
    int ir = param_ix(&c, "max-reps");
    ck_assert_double_eq(c.task->params[ir].min, 2);
    ck_assert_str_eq(c.task->validate(&c, 25), ""); /* one block */
    assert_names(c.task->validate(&c, 24), "count", "max-reps");
    c.p[ir] = 6;
    ck_assert_str_eq(c.task->validate(&c, 4), "");
    assert_names(c.task->validate(&c, 3), "count", "max-reps");
    ck_assert_double_eq(c.task->params[param_ix(&c, "vocab")].min, 2); /* adjacent blocks differ */

    c = cfg_of("nback");
    int in = param_ix(&c, "n");
    ck_assert_double_eq(c.task->params[in].min, 1);
    ck_assert_str_eq(c.task->validate(&c, 3), "");
    assert_names(c.task->validate(&c, 2), "nback", "n ");
    c.p[in] = 32;
    assert_names(c.task->validate(&c, 32), "nback", "n ");
    ck_assert_str_eq(c.task->validate(&c, 33), "");
    ck_assert_double_eq(c.task->params[param_ix(&c, "vocab")].min, 2); /* tokens 1..vocab-1 */

    const char *sr[] = {"sort", "reverse"};
    for (int i = 0; i < 2; i++) {
        c = cfg_of(sr[i]);
        ck_assert_double_eq(c.task->params[param_ix(&c, "vocab")].min, 2);
        assert_names(c.task->validate(&c, 0), sr[i], "length");
    }
}
END_TEST

int main(void) {
    Suite *s = suite_create("tasks");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_worked_examples);
    tcase_add_test(tc, test_reference_facts);
    tcase_add_test(tc, test_sort_reverse);
    tcase_add_test(tc, test_flipflop);
    tcase_add_test(tc, test_count);
    tcase_add_test(tc, test_nback);
    tcase_add_test(tc, test_determinism);
    tcase_add_test(tc, test_validation);
    suite_add_tcase(s, tc);
    return tu_run_suite(s);
}
