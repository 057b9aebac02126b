/*
 * test_parity.c: the parity task (tasks/parity.c): the target is 1 exactly when the source has
 * an even count of ones, one token, over bits only, at every length from 1 to 4096; the
 * spec's worked example; determinism per seed; the token layout (vocabulary 7, SEP) and the
 * validation. gen -> files -> --data round trips are in tests/test_data.c (every task);
 * end-to-end runs in tests/test_attn_cli.c.
 */
#include "testutil.h"

#include "../tasks/task.h"

START_TEST(test_parity_invariant) {
    const lcg_task *t = lcg_task_find("parity");
    ck_assert_ptr_nonnull(t);
    lcg_task_cfg c;
    lcg_task_defaults(&c, t);
    static int src[4096], trg[4], src2[4096], trg2[4];
    pcg32 r = pcg32_derive(5, "parity", 0), r2 = pcg32_derive(5, "parity", 0);
    int seen[2] = {0, 0};
    for (int L = 1; L <= 4096; L += L < 64 ? 1 : 97) {
        int ns, nt, ns2, nt2, ones = 0;
        t->generate(&c, &r, L, src, &ns, trg, &nt);
        t->generate(&c, &r2, L, src2, &ns2, trg2, &nt2);
        ck_assert_int_eq(ns, L);
        ck_assert_int_eq(nt, 1);
        for (int i = 0; i < ns; i++) {
            ck_assert(src[i] == 0 || src[i] == 1);
            ones += src[i];
        }
        ck_assert_int_eq(trg[0], ones % 2 == 0);
        seen[trg[0]]++;
        /* the same seed, the same sample */
        ck_assert_int_eq(ns2, ns);
        ck_assert_int_eq(trg2[0], trg[0]);
        ck_assert(memcmp(src, src2, sizeof(int) * (size_t)ns) == 0);
        int ms, mt;
        t->max_sizes(&c, L, &ms, &mt);
        ck_assert(ns <= ms && nt <= mt);
    }
    ck_assert(seen[0] > 10 && seen[1] > 10);
}
END_TEST

START_TEST(test_parity_layout) {
    const lcg_task *t = lcg_task_find("parity");
    lcg_task_cfg c;
    lcg_task_defaults(&c, t);
    lcg_tokens k = lcg_task_tokens(&c);
    ck_assert_int_eq(k.pad, 2); ck_assert_int_eq(k.sep, 6);
    ck_assert_int_eq(k.vocab, 7);
    ck_assert_int_eq(lcg_task_out_vocab(&c), 7);
    ck_assert_int_eq(t->kind, LCG_TASK_SRC_TRG);
    ck_assert_int_eq(t->uses_sep, 1);
    ck_assert_str_eq(t->validate(&c, 1), "");
    ck_assert_str_eq(t->validate(&c, 0), "parity: length must be >= 1");
    /* the spec's example: 1 1 0 1 0 0 0 0 0 has three ones -> 0 */
    int ex[9] = {1, 1, 0, 1, 0, 0, 0, 0, 0}, ones = 0;
    for (int i = 0; i < 9; i++) ones += ex[i];
    ck_assert_int_eq(ones % 2 == 0, 0);
    char params[64];
    lcg_task_params_str(&c, params, sizeof params);
    ck_assert_str_eq(params, "");
}
END_TEST

int main(void) {
    Suite *s = suite_create("parity");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_parity_invariant);
    tcase_add_test(tc, test_parity_layout);
    suite_add_tcase(s, tc);
    return tu_run_suite(s);
}
