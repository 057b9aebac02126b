/*
 * test_mechanism.c: the mechanism diagnostics (issue 20).
 *   - every task's answer positions (task registry answer_pos) hold what the step must read:
 *     copy, reverse and sort's source token, recall and mqmtar's key/value block, flip-flop's
 *     last write, n-back's token n back;
 *   - a hand-built model whose head 0 attends exactly to a marker token (weights set by hand,
 *     NoPE) has relevant-key mass 1 on that head, for softmax, α-entmax and sparsemax, and the
 *     mean over heads is the average of that head and a uniform one;
 *   - the mass and collapse of a random recall model are bitwise the same on 1 and 2 threads,
 *     in [0, 1] and [-1, 1];
 *   - the batch's per-row key lists (what a backend without whole rows, the GPU's, computes the
 *     mass from) give bitwise the attn_row path's mass (recall, sort, copy).
 * The CSV columns and the attention map are exercised end to end in test_attnmap.c.
 */
#include "testutil.h"

#include <omp.h>

#include "../harness/run.h"
#include "../model/infer.h"

/* ---- a test-only task: random tokens with one marker; the answer of every label from the
 * marker on is the marker ------------------------------------------------------------------ */
enum { MK_V = 8, MK_MARK = MK_V - 1 };
static int mk_max_token(const lcg_task_cfg *c) {
    (void)c;
    return MK_V - 1;
}
static int mk_labels(const lcg_task_cfg *c) {
    (void)c;
    return MK_V;
}
static void mk_sizes(const lcg_task_cfg *c, int len, int *ms, int *mt) {
    (void)c;
    *ms = *mt = len;
}
static const char *mk_validate(const lcg_task_cfg *c, int len) {
    (void)c;
    return len >= 2 ? "" : "marker: length >= 2";
}
static void mk_generate(const lcg_task_cfg *c, pcg32 *rng, int len, int *src, int *ns, int *trg, int *nt) {
    (void)c;
    int m = (int)pcg32_below(rng, (uint32_t)len);
    for (int i = 0; i < len; i++) src[i] = i == m ? MK_MARK : (int)pcg32_below(rng, MK_V - 1), trg[i] = src[i];
    *ns = *nt = len;
}
static int mk_answer(const lcg_task_cfg *c, const int *src, int n_src, const int *trg, int n_trg, int t, int *pos) {
    (void)c, (void)trg, (void)n_trg;
    for (int j = 0; j <= t && j < n_src; j++)
        if (src[j] == MK_MARK) {
            pos[0] = j;
            return 1;
        }
    return 0;
}
static const lcg_task marker_task = {
    .name = "marker", .help = "test", .kind = LCG_TASK_TOKEN_CLS, .gen_mult = 1, .def_len = 16, .cpu_len = 16,
    .max_token = mk_max_token, .max_sizes = mk_sizes, .validate = mk_validate, .generate = mk_generate,
    .n_labels = mk_labels, .answer_pos = mk_answer};

static lcg_run_cfg marker_cfg(int norm, float alpha) {
    lcg_run_cfg c;
    memset(&c, 0, sizeof c);
    lcg_task_defaults(&c.task, &marker_task);
    c.model = (lcg_config){.L = 1, .C = 16, .H = 2, .D = 8, .F = 8, .norm = norm, .pos = LCG_POS_NOPE, .alpha = alpha};
    c.model.V = lcg_task_out_vocab(&c.task);
    c.seed = 3, c.batch = 1, c.lr = 1e-3, c.len = 48, c.vary = 0, c.max_len = 48, c.eval_samples = 30, c.quiet = 1;
    return c;
}

/* head 0 of layer 0: a constant query (every token's embedding shares coordinate 0, and all have
 * the same norm), a key only on the marker: score 2.8 * 100 on the marker, 0 elsewhere; head 1
 * sees zero scores (uniform); everything else zero */
static void hand_build(lcg_backend *b) {
    lcg_model *m = lcg_backend_cpu_model(b);
    ck_assert_ptr_nonnull(m);
    const lcg_config *c = &m->cfg;
    for (size_t k = 0; k < m->n_params; k++) m->params_mem[k] = 0;
    float *emb = m->params.t[LCG_P_EMB], *w = m->params.t[LCG_P_WQKV];
    int HD = c->H * c->D;
    for (int v = 0; v < c->V; v++) emb[v * c->C] = 1, emb[v * c->C + 1 + v] = 1;
    w[0 * 3 * HD + 0] = 1;                      /* q of head 0 = h[0] */
    w[(1 + MK_MARK) * 3 * HD + HD + 0] = 100;   /* k of head 0 = 100 h[1 + marker] */
}

/* the test set of length 48 (S samples; src [S, 48], lcg_free it) and its answer rows: every
 * label from the marker on */
static int *marker_set(const lcg_run_cfg *c, long *rows) {
    int S = eval_rung_samples(c, 48);
    int *src = LCG_NEW(int, S * 48), *trg = LCG_NEW(int, S * 48), ns[64], nt[64];
    eval_make_set(c, 48, src, ns, trg, nt);
    lcg_free(trg);
    *rows = 0;
    for (int s = 0; s < S; s++)
        for (int j = 0; j < 48; j++)
            if (src[s * 48 + j] == MK_MARK) *rows += 48 - j;
    return src;
}

START_TEST(test_hand_built_mass_is_one) {
    static const struct {
        int norm;
        float alpha;
    } cases[] = {{LCG_NORM_SOFTMAX, 1.0f}, {LCG_NORM_ENTMAX, 1.5f}, {LCG_NORM_SPARSEMAX, 2.0f}};
    lcg_run_cfg c = marker_cfg(cases[_i].norm, cases[_i].alpha);
    lcg_backend *b = train_backend_create(&c);
    hand_build(b);
    lcg_rung_result r;
    ck_assert_int_eq(eval_rung(&r, b, &c, 48), 0);
    int S = eval_rung_samples(&c, 48);
    long want;
    int *src = marker_set(&c, &want);
    printf("hand-built %s: mass best %.9f (head %d), mean %.9f over %ld rows\n", lcg_normalizer_at(c.model.norm)->name,
           r.mass_best[0], r.mass_head[0], r.mass_mean[0], r.mass_rows);
    ck_assert_int_eq(r.mass_rows, want);
    ck_assert_int_eq(r.mass_head[0], 0);
    ck_assert_double_eq_tol(r.mass_best[0], 1.0, 1e-6);
    /* head 1 is uniform over the i + 1 keys of row i: the marker gets 1 / (i + 1) */
    double uni = 0;
    for (int s = 0; s < S; s++)
        for (int j = 0; j < 48; j++)
            if (src[s * 48 + j] == MK_MARK)
                for (int t = j; t < 48; t++) uni += 1.0 / (t + 2); /* row of label t: position 1 + t */
    ck_assert_double_eq_tol(r.mass_mean[0], (1.0 + uni / want) / 2, 1e-6);
    lcg_free(src);
    lcg_backend_destroy(b);
}
END_TEST

/* the generic rows (top-k, stick-breaking, adaptive-softmax) show their rows to the mass too: the
 * columns are filled for every answer row; top-k (K 8) keeps the marker, so its head 0 puts mass 1
 * there (stick-breaking gives the newer keys their share first, adaptive-softmax sharpens) */
START_TEST(test_generic_rows_mass) {
    static const struct {
        int norm;
        float alpha;
    } cases[] = {{LCG_NORM_TOPK, 8.0f}, {LCG_NORM_STICK, 1.0f}, {LCG_NORM_ADAPTIVE, 1.0f}};
    lcg_run_cfg c = marker_cfg(cases[_i].norm, cases[_i].alpha);
    lcg_backend *b = train_backend_create(&c);
    hand_build(b);
    lcg_rung_result r;
    ck_assert_int_eq(eval_rung(&r, b, &c, 48), 0);
    long want;
    lcg_free(marker_set(&c, &want));
    printf("hand-built %s: mass best %.9f (head %d), mean %.9f over %ld rows\n", lcg_normalizer_at(c.model.norm)->name,
           r.mass_best[0], r.mass_head[0], r.mass_mean[0], r.mass_rows);
    ck_assert_int_eq(r.mass_rows, want);
    ck_assert(r.mass_best[0] > 0 && r.mass_best[0] <= 1 + 1e-6 && r.mass_mean[0] <= r.mass_best[0]);
    if (cases[_i].norm == LCG_NORM_TOPK) ck_assert_double_eq_tol(r.mass_best[0], 1.0, 1e-6);
    lcg_backend_destroy(b);
}
END_TEST

START_TEST(test_answer_positions) {
    const char *names[] = {"copy", "reverse", "sort", "recall", "mqmtar", "flip-flop", "nback", "count"};
    for (int k = 0; k < 8; k++) {
        lcg_task_cfg t;
        lcg_task_defaults(&t, lcg_task_find(names[k]));
        lcg_task_prepare(&t, 7);
        const lcg_task *tk = t.task;
        if (strcmp(names[k], "count") == 0) { /* declares none */
            ck_assert_ptr_null(tk->answer_pos);
            continue;
        }
        ck_assert_ptr_nonnull(tk->answer_pos);
        int len = 96, ms, mt;
        tk->max_sizes(&t, len, &ms, &mt);
        int *src = LCG_NEW(int, ms), *trg = LCG_NEW(int, mt), *pos = LCG_NEW(int, ms), ns, nt;
        pcg32 rng = pcg32_derive(11, "ans", (uint64_t)k);
        for (int rep = 0; rep < 20; rep++) {
            tk->generate(&t, &rng, len, src, &ns, trg, &nt);
            int cls = tk->kind == LCG_TASK_TOKEN_CLS, steps = cls ? ns : nt + 1, with = 0;
            for (int s = 0; s < steps; s++) {
                int n = tk->answer_pos(&t, src, ns, trg, nt, s, pos);
                for (int a = 0; a < n; a++) {
                    ck_assert_int_ge(pos[a], 0);
                    ck_assert_int_lt(pos[a], ns);
                    if (a) ck_assert_int_gt(pos[a], pos[a - 1]);
                }
                if (!cls && s == nt) ck_assert_int_eq(n, 0); /* EOS */
                with += n > 0;
                if (!strcmp(names[k], "copy") || !strcmp(names[k], "reverse") || !strcmp(names[k], "sort")) {
                    if (s < nt) ck_assert_int_ge(n, 1);
                    for (int a = 0; a < n; a++) ck_assert_int_eq(src[pos[a]], trg[s]);
                    if (!strcmp(names[k], "sort") && s < nt) { /* every occurrence */
                        int occ = 0;
                        for (int j = 0; j < ns; j++) occ += src[j] == trg[s];
                        ck_assert_int_eq(n, occ);
                    }
                } else if (!strcmp(names[k], "recall") || !strcmp(names[k], "mqmtar")) {
                    int kl = 1, vl = 1;
                    if (!strcmp(names[k], "mqmtar")) kl = (int)t.p[1], vl = (int)t.p[2];
                    if (s < nt && s % (1 + vl)) { /* a value token: key 1 value 0, the value holds it */
                        ck_assert_int_eq(n, kl + vl + 2);
                        ck_assert_int_eq(src[pos[kl]], 1);
                        ck_assert_int_eq(src[pos[kl + (s % (1 + vl))]], trg[s]);
                        ck_assert_int_eq(src[pos[kl + vl + 1]], 0);
                    } else {
                        ck_assert_int_eq(n, 0);
                    }
                } else if (!strcmp(names[k], "flip-flop")) {
                    if (s == 0) {
                        ck_assert_int_eq(n, 1);
                        ck_assert_int_eq(src[pos[0] - 1], 2); /* a write ... */
                        ck_assert_int_eq(src[pos[0]], trg[0]); /* ... of the answer bit */
                        for (int j = pos[0] + 1; j < ns - 1; j += 2) ck_assert_int_ne(src[j], 2); /* the last */
                    }
                } else if (!strcmp(names[k], "nback")) {
                    int N = (int)t.p[1];
                    ck_assert_int_eq(n, s >= N ? 1 : 0);
                    if (n) ck_assert_int_eq(src[pos[0]], trg[s]);
                }
            }
            ck_assert_int_gt(with, 0);
        }
        lcg_free(src), lcg_free(trg), lcg_free(pos);
        lcg_task_release(&t);
    }
}
END_TEST

START_TEST(test_mass_threads_bitwise) {
    lcg_run_cfg c;
    memset(&c, 0, sizeof c);
    lcg_task_defaults(&c.task, lcg_task_find(_i ? "sort" : "recall"));
    c.model = (lcg_config){.L = 2, .C = 32, .H = 4, .D = 8, .F = 64, .norm = _i ? LCG_NORM_SOFTMAX : LCG_NORM_ASENTMAX,
                           .pos = LCG_POS_NAPE, .alpha = _i ? 1.0f : 1.5f};
    c.model.V = lcg_task_out_vocab(&c.task);
    c.seed = 5, c.batch = 8, c.len = 48, c.vary = 0, c.max_len = 96, c.eval_samples = 24, c.quiet = 1;
    lcg_backend *b = train_backend_create(&c);
    lcg_rung_result r1, r2;
    omp_set_num_threads(1);
    ck_assert_int_eq(eval_rung(&r1, b, &c, 96), 0);
    omp_set_num_threads(2);
    ck_assert_int_eq(eval_rung(&r2, b, &c, 96), 0);
    ck_assert_int_gt(r1.mass_rows, 0);
    ck_assert_int_eq(r1.mass_rows, r2.mass_rows);
    ck_assert_int_eq(r1.collapse_n, r1.samples);
    for (int l = 0; l < c.model.L; l++) {
        ck_assert(memcmp(&r1.mass_best[l], &r2.mass_best[l], sizeof(double)) == 0);
        ck_assert(memcmp(&r1.mass_mean[l], &r2.mass_mean[l], sizeof(double)) == 0);
        ck_assert(r1.mass_best[l] >= r1.mass_mean[l] && r1.mass_best[l] <= 1 + 1e-9 && r1.mass_mean[l] >= 0);
    }
    ck_assert(memcmp(&r1.collapse, &r2.collapse, sizeof(double)) == 0);
    ck_assert(r1.collapse >= -1 - 1e-9 && r1.collapse <= 1 + 1e-9);
    lcg_backend_destroy(b);
}
END_TEST

/* ---- the batch's keys (the GPU's way to the mass) against attn_row: a CPU backend whose eval
 * computes the mass from the harness's key lists itself, as a backend without whole rows would,
 * and never shows the harness a row ---------------------------------------------------------- */
static const lcg_eval_keys *kp_keys[64];
static int kp_L, kp_H;

static int kp_cmp(const void *a, const void *b) {
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

/* one row shown by the CPU prefill: its weight on the row's keys, summed in key order */
static void kp_row(void *ctx, int s, int l, int h, int i, const int *j, const float *p, int n) {
    (void)ctx;
    const lcg_eval_keys *k = kp_keys[s];
    const int *at = k ? bsearch(&i, k->row, (size_t)k->n_rows, sizeof(int), kp_cmp) : NULL;
    if (!at) return;
    int r = (int)(at - k->row);
    double m = 0;
    for (int a = 0; a < k->len[r]; a++) {
        int key = k->key[k->off[r] + a];
        if (!j) m += p[key];
        else {
            const int *f = bsearch(&key, j, (size_t)n, sizeof(int), kp_cmp);
            if (f) m += p[f - j];
        }
    }
    k->mass[((size_t)r * kp_L + l) * kp_H + h] = m;
}

static int kp_eval(lcg_backend *b, const lcg_eval_batch *e) {
    ck_assert_ptr_nonnull(e->keys);
    ck_assert_int_le(e->n_seqs, 64);
    for (int s = 0; s < e->n_seqs; s++) {
        const lcg_eval_keys *k = kp_keys[s] = e->keys(e->ctx, s);
        for (int r = 0; k && r < k->n_rows; r++) { /* rows ascending and supervised, keys ascending in [0, row] */
            ck_assert(r == 0 || k->row[r] > k->row[r - 1]);
            ck_assert_int_ge(k->len[r], 1);
            for (int a = 0; a < k->len[r]; a++) {
                int key = k->key[k->off[r] + a];
                ck_assert(key >= 0 && key <= k->row[r] && (a == 0 || key > k->key[k->off[r] + a - 1]));
            }
        }
    }
    lcg_eval_batch e2 = *e;
    e2.attn_row = kp_row;
    kp_L = b->cfg.L, kp_H = b->cfg.H;
    return lcg_backend_cpu.eval(b, &e2);
}

START_TEST(test_mass_keys_path) {
    static const char *tasks[] = {"recall", "sort", "copy"};
    lcg_run_cfg c;
    memset(&c, 0, sizeof c);
    lcg_task_defaults(&c.task, lcg_task_find(tasks[_i]));
    c.model = (lcg_config){.L = 2, .C = 32, .H = 4, .D = 8, .F = 64,
                           .norm = _i == 1 ? LCG_NORM_SOFTMAX : LCG_NORM_ASENTMAX,
                           .pos = _i == 2 ? LCG_POS_ROPE : LCG_POS_NAPE, .alpha = _i == 1 ? 1.0f : 1.5f};
    c.model.V = lcg_task_out_vocab(&c.task);
    c.seed = 7, c.batch = 8, c.len = 24, c.vary = 0, c.max_len = 48, c.eval_samples = 12, c.quiet = 1;
    lcg_backend *b = train_backend_create(&c);
    lcg_rung_result r1, r2;
    ck_assert_int_eq(eval_rung(&r1, b, &c, 48), 0);
    lcg_backend_ops ops = lcg_backend_cpu;
    ops.eval = kp_eval;
    b->ops = &ops;
    ck_assert_int_eq(eval_rung(&r2, b, &c, 48), 0);
    b->ops = &lcg_backend_cpu;
    ck_assert_int_gt(r1.mass_rows, 0);
    ck_assert_int_eq(r1.mass_rows, r2.mass_rows);
    for (int l = 0; l < c.model.L; l++) {
        ck_assert(memcmp(&r1.mass_best[l], &r2.mass_best[l], sizeof(double)) == 0);
        ck_assert(memcmp(&r1.mass_mean[l], &r2.mass_mean[l], sizeof(double)) == 0);
        ck_assert_int_eq(r1.mass_head[l], r2.mass_head[l]);
    }
    ck_assert(memcmp(&r1.collapse, &r2.collapse, sizeof(double)) == 0);
    lcg_backend_destroy(b);
}
END_TEST

int main(void) {
    Suite *s = suite_create("mechanism");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, test_answer_positions);
    tcase_add_loop_test(tc, test_hand_built_mass_is_one, 0, 3);
    tcase_add_loop_test(tc, test_generic_rows_mass, 0, 3);
    tcase_add_loop_test(tc, test_mass_threads_bitwise, 0, 2);
    tcase_add_loop_test(tc, test_mass_keys_path, 0, 3);
    suite_add_tcase(s, tc);
    return tu_run_suite(s);
}
