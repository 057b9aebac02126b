/*
 * test_harness.c: tasks, sequences, metrics and the end-to-end training smoke test.
 *   - task invariants (copy copies; recall's query key occurs exactly once as a key and the
 *     target is its value), id ranges, determinism per seed, the reference token layout;
 *   - Wilson intervals against known values;
 *   - a small model trained on copy reaches >= 99% in-distribution exact match, and the
 *     one-pass evaluation agrees sample by sample with explicit greedy decoding under the
 *     reference's generation cap (the oracle below); so do flip-flop, nback (token
 *     classification), reverse and recall within small budgets.
 *   - BLEU of the greedy generations (the teacher-forced pass continued greedily on the KV
 *     cache) equals that of a brute-force greedy decode, and validation samples are not the
 *     test samples.
 * CLI behaviour and CSV determinism across thread counts are in test_cli.c.
 */
#include "testutil.h"

#include <math.h>
#include <omp.h>

#include "../harness/bleu.h"
#include "../harness/run.h"
#include "../harness/sequence.h"
#include "../model/infer.h"

static lcg_run_cfg base_cfg(const char *task) {
    lcg_run_cfg c;
    memset(&c, 0, sizeof c);
    lcg_task_defaults(&c.task, lcg_task_find(task));
    c.model = (lcg_config){.L = 2, .C = 64, .H = 4, .D = 16, .F = 128, .norm = LCG_NORM_SOFTMAX,
                           .pos = LCG_POS_ROPE, .alpha = 1.0f};
    c.model.V = lcg_task_out_vocab(&c.task);
    c.seed = 1, c.steps = 500, c.batch = 32, c.lr = 3e-3, c.warmup = 50, c.clip = 1;
    c.len = 8, c.vary = 4, c.max_len = 24, c.eval_samples = 200, c.quiet = 1;
    return c;
}

START_TEST(test_copy_task) {
    lcg_task_cfg t;
    lcg_task_defaults(&t, lcg_task_find("copy"));
    pcg32 r = pcg32_derive(5, "x", 0);
    int src[40], trg[40], ns, nt, counts[32] = {0};
    for (int k = 0; k < 200; k++) {
        t.task->generate(&t, &r, 40, src, &ns, trg, &nt);
        ck_assert_int_eq(ns, 40);
        ck_assert_int_eq(nt, 40);
        for (int i = 0; i < 40; i++) {
            ck_assert_int_eq(src[i], trg[i]);
            ck_assert(src[i] >= 0 && src[i] < 32);
            counts[src[i]]++;
        }
    }
    for (int v = 0; v < 32; v++) ck_assert_int_gt(counts[v], 150); /* every token drawn, ~250 each */
    lcg_tokens tk = lcg_task_tokens(&t);
    ck_assert_int_eq(tk.pad, 32);
    ck_assert_int_eq(tk.bos, 33);
    ck_assert_int_eq(tk.eos, 34);
    ck_assert_int_eq(tk.sep, 36);
    ck_assert_int_eq(tk.vocab, 37);
}
END_TEST

START_TEST(test_recall_task) {
    lcg_task_cfg t;
    lcg_task_defaults(&t, lcg_task_find("recall"));
    int abc = (int)t.p[0];
    pcg32 r = pcg32_derive(6, "x", 0);
    static int src[5000], trg[8];
    int lens[] = {32, 48, 64, 128, 1024, 4096};
    for (int li = 0; li < 6; li++)
        for (int k = 0; k < 50; k++) {
            int L = lens[li], ns, nt;
            t.task->generate(&t, &r, L, src, &ns, trg, &nt);
            int n = (int)floor(L * 0.8 / 4);
            if (n > abc) n = abc;
            ck_assert_int_eq(ns, n * (L / n) + 2);
            ck_assert_int_eq(nt, 2);
            ck_assert_int_eq(src[ns - 2], 2);
            ck_assert_int_eq(trg[0], 2);
            int key = src[ns - 1], hits = 0, keys = 0;
            ck_assert(key >= 3 && key < abc + 3);
            for (int i = 0; i + 2 < ns - 2; i++) {
                if (src[i + 1] != 1 || src[i] < 3) continue; /* a key is a content id before a 1 */
                keys++;
                ck_assert(src[i + 2] >= 3 && src[i + 3] == 0); /* key 1 value 0 */
                if (src[i] == key) {
                    hits++;
                    ck_assert_int_eq(trg[1], src[i + 2]);
                }
            }
            ck_assert_int_eq(hits, 1);
            ck_assert_int_eq(keys, n);
            for (int i = 0; i < ns; i++) ck_assert(src[i] >= 0 && src[i] <= abc + 2);
        }
    /* the validation names the problem */
    ck_assert_str_eq(t.task->validate(&t, 64), "");
    ck_assert_ptr_nonnull(strstr(t.task->validate(&t, 4), "kv-density"));
}
END_TEST

START_TEST(test_batch_layout_and_determinism) {
    lcg_task_cfg t;
    lcg_task_defaults(&t, lcg_task_find("copy"));
    lcg_tokens tk = lcg_task_tokens(&t);
    lcg_batch b = {0}, b2 = {0};
    pcg32 r1 = pcg32_derive(9, "train", 0), r2 = pcg32_derive(9, "train", 0);
    batch_fill(&b, &t, &r1, 16, 6, 3);
    batch_fill(&b2, &t, &r2, 16, 6, 3);
    ck_assert_int_eq(b.T, b2.T);
    ck_assert_int_eq(memcmp(b.tok, b2.tok, sizeof(int) * 16 * b.T), 0);
    ck_assert_int_eq(memcmp(b.mask, b2.mask, 16 * b.T), 0);
    int seen_short = 0, seen_long = 0;
    for (int i = 0; i < 16; i++) {
        const int *tok = b.tok + i * b.T, *tgt = b.tgt + i * b.T;
        const unsigned char *mask = b.mask + i * b.T;
        int sep = -1;
        for (int t2 = 0; t2 < b.T; t2++)
            if (tok[t2] == tk.sep) sep = t2;
        int L = sep - 1; /* BOS src(L) SEP */
        ck_assert(L >= 3 && L <= 9);
        seen_short |= L == 3, seen_long |= L == 9;
        ck_assert_int_eq(tok[0], tk.bos);
        for (int j = 0; j < L; j++) {
            ck_assert_int_eq(tok[sep + 1 + j], tok[1 + j]); /* input: BOS src SEP trg */
            ck_assert_int_eq(tgt[sep + j], tok[1 + j]);      /* target: ... trg EOS */
        }
        ck_assert_int_eq(tgt[sep + L], tk.eos);
        for (int t2 = 0; t2 < b.T; t2++) {
            ck_assert_int_eq(mask[t2], t2 >= sep && t2 <= sep + L); /* loss on trg and EOS */
            if (t2 > 2 * L + 1) ck_assert_int_eq(tok[t2], tk.pad);
        }
    }
    ck_assert(seen_short && seen_long); /* uniform over [len - vary, len + vary] */
    batch_free(&b), batch_free(&b2);
}
END_TEST

START_TEST(test_wilson) {
    double lo, hi;
    wilson95(0, 100, &lo, &hi);
    ck_assert_double_eq(lo, 0);
    ck_assert_double_eq_tol(hi, 0.036995, 1e-5);
    wilson95(50, 100, &lo, &hi);
    ck_assert_double_eq_tol(lo, 0.403832, 1e-5);
    ck_assert_double_eq_tol(hi, 0.596168, 1e-5);
    wilson95(100, 100, &lo, &hi);
    ck_assert_double_eq_tol(lo, 0.963005, 1e-5);
    ck_assert_double_eq(hi, 1);
}
END_TEST

START_TEST(test_ladder) {
    lcg_run_cfg c = base_cfg("copy");
    int lens[LCG_MAX_RUNGS];
    c.len = 48, c.vary = 16, c.max_len = 1000;
    ck_assert_int_eq(eval_ladder(&c, lens), 4);
    ck_assert_int_eq(lens[0], 64);
    ck_assert_int_eq(lens[3], 512);
    c.n_rungs = 2, c.rungs[0] = 70, c.rungs[1] = 90;
    ck_assert_int_eq(eval_ladder(&c, lens), 2);
    ck_assert_int_eq(lens[1], 90);
}
END_TEST

/* explicit greedy decoding: the oracle for eval_sample's exact match */
static int greedy_exact(lcg_decoder *d, const lcg_task_cfg *task, const int *src, int ns, const int *trg, int nt) {
    lcg_tokens tk = lcg_task_tokens(task);
    int V = d->m->cfg.V, pred[256], np = 0;
    decoder_reset(d);
    const float *lg = decoder_step(d, tk.bos, 0);
    for (int j = 0; j < ns; j++) lg = decoder_step(d, src[j], 1);
    lg = decoder_step(d, tk.sep, 1);
    int n_prompt = ns + 2, cap = (int)floor(n_prompt * task->task->gen_mult);
    for (int total = n_prompt; total < cap; total++) {
        int best = 0;
        for (int v = 1; v < V; v++)
            if (lg[v] > lg[best]) best = v;
        if (best == tk.eos) break;
        pred[np++] = best;
        if (total + 1 < cap) lg = decoder_step(d, best, 1);
    }
    return np == nt && memcmp(pred, trg, sizeof(int) * nt) == 0;
}

/* explicit greedy decoding: the prediction (before EOS, under the cap) in pred; its length */
static int greedy_pred(lcg_decoder *d, const lcg_task_cfg *task, const int *src, int ns, int *pred) {
    lcg_tokens tk = lcg_task_tokens(task);
    int V = d->m->cfg.V, np = 0;
    decoder_reset(d);
    const float *lg = decoder_step(d, tk.bos, 0);
    for (int j = 0; j < ns; j++) lg = decoder_step(d, src[j], 1);
    if (task->task->uses_sep) lg = decoder_step(d, tk.sep, 1);
    int n_prompt = ns + 1 + task->task->uses_sep, cap = (int)floor(n_prompt * task->task->gen_mult);
    for (int total = n_prompt; total < cap; total++) {
        int best = 0;
        for (int v = 1; v < V; v++)
            if (lg[v] > lg[best]) best = v;
        if (best == tk.eos) break;
        pred[np++] = best;
        if (total + 1 < cap) lg = decoder_step(d, best, 1);
    }
    return np;
}

/* a half-trained copy model (and sort): BLEU per rung == that of brute-force greedy decodes */
START_TEST(test_bleu_greedy_equivalence) {
    const char *task = _i ? "sort" : "copy";
    lcg_run_cfg c = base_cfg(task);
    c.steps = 150, c.eval_samples = 60, c.bleu = 1;
    lcg_backend *b = train_backend_create(&c);
    lcg_train_result tr;
    train_run(b, &tr, &c, "", NULL);
    lcg_decoder d;
    decoder_init(&d, lcg_backend_cpu_model(b), 3 * 32 + 8);
    int lens[] = {12, 16, 24}, pred[256], partial = 0;
    for (int li = 0; li < 3; li++) {
        lcg_rung_result res;
        ck_assert_int_eq(eval_rung(&res, b, &c, lens[li]), 0);
        ck_assert_int_eq(res.has_bleu, 1);
        int S = res.samples, ms, mt;
        c.task.task->max_sizes(&c.task, lens[li], &ms, &mt);
        int *src = LCG_NEW(int, S * ms), *trg = LCG_NEW(int, S * mt), *ns = LCG_NEW(int, S), *nt = LCG_NEW(int, S);
        eval_make_set(&c, lens[li], src, ns, trg, nt);
        lcg_bleu bl;
        memset(&bl, 0, sizeof bl);
        for (int s = 0; s < S; s++) {
            int np = greedy_pred(&d, &c.task, src + s * ms, ns[s], pred);
            bleu_add(&bl, pred, np, trg + s * mt, nt[s]);
        }
        double want = bleu_score(&bl);
        printf("%s bleu at %d: %.6f (exact %ld/%d)\n", task, lens[li], res.bleu, res.exact, S);
        ck_assert_msg(res.bleu == want, "%s length %d: bleu %.9f, greedy %.9f", task, lens[li], res.bleu, want);
        partial += res.bleu > 0 && res.bleu < 1;
        lcg_free(src), lcg_free(trg), lcg_free(ns), lcg_free(nt);
    }
    ck_assert_int_gt(partial, 0);
    decoder_free(&d);
    /* BLEU is off by default and for token classification */
    c.bleu = 0;
    lcg_rung_result r0;
    eval_rung(&r0, b, &c, 12);
    ck_assert_int_eq(r0.has_bleu, 0);
    lcg_backend_destroy(b);
}
END_TEST

/* the validation stream ("val", len) shares no sample with the test stream */
START_TEST(test_val_stream_disjoint) {
    lcg_run_cfg c = base_cfg("copy");
    int len = 16, S = 200, ms, mt;
    c.eval_samples = S;
    c.task.task->max_sizes(&c.task, len, &ms, &mt);
    int *src = LCG_NEW(int, 2 * S * ms), *trg = LCG_NEW(int, 2 * S * mt), *ns = LCG_NEW(int, 2 * S),
        *nt = LCG_NEW(int, 2 * S);
    eval_make_set(&c, len, src, ns, trg, nt);
    eval_make_stream(&c, len, "val", S, src + S * ms, ns + S, trg + S * mt, nt + S);
    for (int a = 0; a < S; a++)
        for (int v = S; v < 2 * S; v++)
            ck_assert_msg(ns[a] != ns[v] || memcmp(src + a * ms, src + v * ms, sizeof(int) * ns[a]) != 0,
                          "test sample %d is validation sample %d", a, v - S);
    lcg_free(src), lcg_free(trg), lcg_free(ns), lcg_free(nt);
}
END_TEST

START_TEST(test_train_copy_smoke_and_greedy_equivalence) {
    lcg_run_cfg c = base_cfg("copy");
    c.steps = 600;
    lcg_backend *b = train_backend_create(&c);
    lcg_train_result tr;
    train_run(b, &tr, &c, "", NULL);
    ck_assert_double_lt(tr.train_loss, 0.05);
    lcg_rung_result res;
    eval_rung(&res, b, &c, 12); /* the longest training length: in distribution */
    printf("copy smoke: %ld/%d exact at length 12 after %ld steps (%.1f s, %.0f tok/s)\n", res.exact,
           res.samples, tr.steps_done, tr.train_seconds, tr.train_tok_s);
    ck_assert_msg(res.exact >= 0.99 * res.samples, "exact match %ld/%d < 99%%", res.exact, res.samples);
    ck_assert_double_gt((double)res.tokens_ok / res.tokens, 0.99);

    /* one teacher-forced pass == greedy decoding, sample by sample, where both outcomes occur */
    int lens[] = {12, 14, 16, 24}, hits = 0, misses = 0;
    lcg_decoder d;
    decoder_init(&d, lcg_backend_cpu_model(b), 3 * 24 + 8); /* the greedy oracle may run to the cap, 2.2x the prompt */
    for (int li = 0; li < 4; li++) {
        int S = c.eval_samples, ms, mt;
        c.task.task->max_sizes(&c.task, lens[li], &ms, &mt);
        int *src = LCG_NEW(int, S * ms), *trg = LCG_NEW(int, S * mt), *ns = LCG_NEW(int, S), *nt = LCG_NEW(int, S);
        eval_make_set(&c, lens[li], src, ns, trg, nt);
        for (int s = 0; s < S; s++) {
            lcg_sample_result r;
            eval_sample(&r, b, &c.task, src + s * ms, ns[s], trg + s * mt, nt[s]);
            int g = greedy_exact(&d, &c.task, src + s * ms, ns[s], trg + s * mt, nt[s]);
            ck_assert_int_eq(r.exact, g);
            hits += g, misses += !g;
        }
        lcg_free(src), lcg_free(trg), lcg_free(ns), lcg_free(nt);
    }
    ck_assert_int_gt(hits, 0);
    ck_assert_int_gt(misses, 0);
    decoder_free(&d);

    /* evaluation is identical for 1 and 2 threads */
    lcg_rung_result r1, r2;
    omp_set_num_threads(1);
    eval_rung(&r1, b, &c, 16);
    omp_set_num_threads(2);
    eval_rung(&r2, b, &c, 16);
    ck_assert_int_eq(r1.exact, r2.exact);
    ck_assert_int_eq(r1.tokens_ok, r2.tokens_ok);
    ck_assert_int_eq(memcmp(&r1.loss, &r2.loss, sizeof r1.loss), 0);
    lcg_backend_destroy(b);
}
END_TEST

/* in-distribution smoke tests of the other tasks a small model learns within seconds, at
 * each task's own short length (reverse needs more depth, as in the reference) */
START_TEST(test_train_task_smoke) {
    static const struct {
        const char *task;
        int len, vary, layers, pos, batch;
        long steps;
        double lr;
    } cases[] = {{"flip-flop", 12, 4, 2, LCG_POS_ROPE, 32, 600, 3e-3},
                 {"nback", 8, 4, 2, LCG_POS_ROPE, 32, 600, 3e-3},
                 {"reverse", 8, 4, 4, LCG_POS_ROPE, 32, 1000, 1.5e-3}, /* the reference uses 6 layers */
                 {"recall", 16, 8, 2, LCG_POS_NAPE, 64, 2500, 1.5e-3}}; /* NAPE's local heads bind key and value */
    lcg_run_cfg c = base_cfg(cases[_i].task);
    c.steps = cases[_i].steps, c.len = cases[_i].len, c.vary = cases[_i].vary, c.lr = cases[_i].lr;
    c.batch = cases[_i].batch, c.warmup = cases[_i].steps >= 3000 ? 100 : 50;
    c.model.L = cases[_i].layers, c.model.pos = cases[_i].pos;
    if (strcmp(cases[_i].task, "recall") == 0) {
        /* the mini preset's recall: α-entmax with 8 heads of 8 learns it on every seed of
         * results/mini/ (softmax reaches 80-100% depending on the seed) */
        c.model.H = 8, c.model.D = 8, c.model.F = 256, c.model.norm = LCG_NORM_ENTMAX, c.model.alpha = 1.5f;
        c.warmup = 100;
    }
    lcg_backend *b = train_backend_create(&c);
    lcg_train_result tr;
    train_run(b, &tr, &c, "", NULL);
    lcg_rung_result res;
    eval_rung(&res, b, &c, c.len + c.vary);
    printf("%s smoke: %ld/%d exact at length %d after %ld steps (%.1f s)\n", cases[_i].task, res.exact,
           res.samples, c.len + c.vary, tr.steps_done, tr.train_seconds);
    ck_assert_msg(res.exact >= 0.99 * res.samples, "%s: exact match %ld/%d < 99%%", cases[_i].task, res.exact,
                  res.samples);
    lcg_backend_destroy(b);
}
END_TEST

int main(void) {
    Suite *s = suite_create("harness");
    TCase *tc = tcase_create("core");
    /* a safety net, not a speed check: the recall smoke trains ~100 s on an idle 2-core
     * machine and several times that on a loaded one */
    tcase_set_timeout(tc, 1200);
    tcase_add_test(tc, test_copy_task);
    tcase_add_test(tc, test_recall_task);
    tcase_add_test(tc, test_batch_layout_and_determinism);
    tcase_add_test(tc, test_wilson);
    tcase_add_test(tc, test_ladder);
    tcase_add_test(tc, test_train_copy_smoke_and_greedy_equivalence);
    tcase_add_loop_test(tc, test_train_task_smoke, 0, 4);
    tcase_add_loop_test(tc, test_bleu_greedy_equivalence, 0, 2);
    tcase_add_test(tc, test_val_stream_disjoint);
    suite_add_tcase(s, tc);
    return tu_run_suite(s);
}
