/*
 * test_bleu.c: harness/bleu.c against sacreBLEU's own corpus BLEU on 60 random corpora (377
 * pairs: short and long, sorted references, substitutions, deletions, insertions, truncations,
 * empty hypotheses, ids up to 65535) recorded in tests/data/bleu.txt by tests/bleu_fixture.py;
 * and the statistics' merge (pairs scored in two halves, merged, give the same score).
 */
#include "testutil.h"

#include "../harness/bleu.h"

/* the ids of one "H ..." / "R ..." line into ids[]; returns the count */
static int parse_ids(const char *line, int *ids, int cap) {
    int n = 0;
    for (const char *p = line + 1; *p && *p != '\n';) {
        char *end;
        long v = strtol(p, &end, 10);
        if (end == p) break;
        ck_assert_int_lt(n, cap);
        ids[n++] = (int)v;
        p = end;
    }
    return n;
}

START_TEST(test_bleu_matches_sacrebleu) {
    size_t n;
    char *text = tu_read_all("tests/data/bleu.txt", &n);
    ck_assert_msg(text != NULL, "tests/data/bleu.txt is missing (run from the repository root)");
    enum { CAP = 4096 };
    int *h = malloc(sizeof(int) * CAP), *r = malloc(sizeof(int) * CAP);
    int corpora = 0, pairs = 0, nonzero = 0;
    char *save = NULL;
    char *line = strtok_r(text, "\n", &save);
    while (line) {
        if (line[0] == '#') {
            line = strtok_r(NULL, "\n", &save);
            continue;
        }
        int k;
        double want;
        ck_assert_int_eq(sscanf(line, "corpus %d %lf", &k, &want), 2);
        lcg_bleu all = {0}, half[2];
        memset(half, 0, sizeof half);
        for (int i = 0; i < k; i++) {
            char *hl = strtok_r(NULL, "\n", &save), *rl = strtok_r(NULL, "\n", &save);
            ck_assert(hl && rl && hl[0] == 'H' && rl[0] == 'R');
            int nh = parse_ids(hl, h, CAP), nr = parse_ids(rl, r, CAP);
            bleu_add(&all, h, nh, r, nr);
            bleu_add(&half[i % 2], h, nh, r, nr);
            pairs++;
        }
        double got = bleu_score(&all);
        ck_assert_msg(fabs(got - want) <= 1e-12, "corpus %d: BLEU %.17g, sacreBLEU %.17g", corpora + 1, got, want);
        bleu_merge(&half[0], &half[1]);
        ck_assert_msg(bleu_score(&half[0]) == got, "corpus %d: merged halves differ", corpora + 1);
        nonzero += want > 0;
        corpora++;
        line = strtok_r(NULL, "\n", &save);
    }
    ck_assert_int_eq(corpora, 60);
    ck_assert_int_eq(pairs, 377);
    ck_assert_int_ge(nonzero, 30); /* the fixture exercises real scores, not only zeros */
    free(h), free(r), free(text);
}
END_TEST

START_TEST(test_bleu_edges) {
    int a[] = {1, 2, 3, 4, 5};
    lcg_bleu b = {0};
    bleu_add(&b, a, 5, a, 5);
    ck_assert(bleu_score(&b) == 1.0);
    lcg_bleu e = {0};
    bleu_add(&e, a, 0, a, 5); /* an empty hypothesis */
    ck_assert(bleu_score(&e) == 0.0);
    lcg_bleu s = {0};
    bleu_add(&s, a, 3, a, 3); /* 3 tokens have no 4-gram: no smoothing, 0 */
    ck_assert(bleu_score(&s) == 0.0);
}
END_TEST

int main(void) {
    Suite *s = suite_create("bleu");
    TCase *tc = tcase_create("bleu");
    tcase_add_test(tc, test_bleu_matches_sacrebleu);
    tcase_add_test(tc, test_bleu_edges);
    suite_add_tcase(s, tc);
    return tu_run_suite(s);
}
