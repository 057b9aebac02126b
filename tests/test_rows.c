/*
 * test_rows.c: the top-k, stick-breaking and adaptive-temperature softmax rows (kernels/topk.c,
 * stickbreak.c, adaptive.c): known values and the stated rules (top-k's ties, k >= n, div-2;
 * stick-breaking's empty first row, its products, underflow at long rows; adaptive's
 * temperature from the entropy and the ascending polynomial), NaN in -> NaN out, the row
 * backwards and the attention backward (which recomputes the scores for the rows that need
 * them, with the query scale and ALiBi slopes) against central finite differences in double,
 * and the float build against the double one. The model-level gradient check, the decoder and
 * prefill equivalence and the PyTorch cross-check cover them in tests/test_model.c (every
 * normalizer), the D = 16 fast attention path in tests/test_kernels.c.
 */
#include "testutil.h"

#include <math.h>

#include "../kernels/kernels.h"
#include "../kernels/util.h"

static const int NEW_ROWS[] = {LCG_ROW_TOPK, LCG_ROW_TOPK, LCG_ROW_STICK, LCG_ROW_ADAPTIVE};
static const double NEW_PARAMS[] = {3, -2, 1, 1}; /* topk fixed k = 3; div-2 with K = 2 */

static double sigm(double x) { return 1 / (1 + exp(-x)); }

START_TEST(test_topk_known) {
    double s[5] = {1, 2, 2, 2, 0}, p[5];
    topk_row_f64(p, s, 5, 2); /* ties at the 2nd largest: the newest two of the three 2s */
    ck_assert_double_eq(p[0], 0); ck_assert_double_eq(p[1], 0); ck_assert_double_eq(p[4], 0);
    ck_assert_double_eq_tol(p[2], 0.5, 1e-15); ck_assert_double_eq_tol(p[3], 0.5, 1e-15);
    topk_row_f64(p, s, 5, 4); /* all three 2s and the 1 */
    double z = 3 * exp(2.0) + exp(1.0);
    ck_assert_double_eq_tol(p[0], exp(1.0) / z, 1e-15); ck_assert_double_eq(p[4], 0);
    double q[5];
    topk_row_f64(p, s, 5, 5), softmax_row_f64(q, s, 5, 1); /* k >= n: softmax */
    for (int j = 0; j < 5; j++) ck_assert_double_eq(p[j], q[j]);
    topk_row_f64(p, s, 5, 9);
    for (int j = 0; j < 5; j++) ck_assert_double_eq(p[j], q[j]);
    /* div-2: k = max(K, n / 2) */
    ck_assert_int_eq(topk_row_k_f64(-2, 3), 2); ck_assert_int_eq(topk_row_k_f64(-2, 9), 4);
    ck_assert_int_eq(topk_row_k_f64(-2, 100), 50); ck_assert_int_eq(topk_row_k_f64(5, 100), 5);
    /* a long row with many ties: exactly k nonzero, the newest tied keys, summing to 1 */
    static double t[3000], w[3000];
    for (int j = 0; j < 3000; j++) t[j] = (j * 7919) % 5;
    topk_row_f64(w, t, 3000, 700); /* 600 keys at 4, then 100 of the 600 at 3: the newest */
    int nz = 0, first3 = 3000;
    double sum = 0;
    for (int j = 0; j < 3000; j++) {
        if (w[j] == 0) continue;
        nz++, sum += w[j];
        ck_assert(t[j] >= 3);
        if (t[j] == 3) first3 = j < first3 ? j : first3;
    }
    ck_assert_int_eq(nz, 700);
    ck_assert_double_eq_tol(sum, 1, 1e-12);
    for (int j = first3; j < 3000; j++)
        if (t[j] == 3) ck_assert(w[j] > 0);
    /* NaN in, NaN out */
    s[2] = NAN;
    topk_row_f64(p, s, 5, 2);
    for (int j = 0; j < 5; j++) ck_assert(isnan(p[j]));
}
END_TEST

START_TEST(test_stickbreak_known) {
    double s[4] = {0.3, -1.2, 2.0, 5.0}, p[4];
    stickbreak_row_f64(p, s, 1, 1);
    ck_assert_double_eq(p[0], 0); /* the first row: no key before the query */
    stickbreak_row_f64(p, s, 2, 1);
    ck_assert_double_eq_tol(p[0], sigm(0.3), 1e-15); ck_assert_double_eq(p[1], 0);
    stickbreak_row_f64(p, s, 4, 1); /* the query (key 3) gets nothing; newest first */
    ck_assert_double_eq(p[3], 0);
    ck_assert_double_eq_tol(p[2], sigm(2.0), 1e-15);
    ck_assert_double_eq_tol(p[1], sigm(-1.2) * (1 - sigm(2.0)), 1e-15);
    ck_assert_double_eq_tol(p[0], sigm(0.3) * (1 - sigm(-1.2)) * (1 - sigm(2.0)), 1e-15);
    /* a long row of confident keys: the stick is used up, older keys exactly 0, sum <= 1, in
     * float and double */
    enum { N = 20000 };
    static double t[N], w[N];
    static float tf[N], wf[N];
    for (int j = 0; j < N; j++) t[j] = 3 + sin(j), tf[j] = (float)t[j];
    stickbreak_row_f64(w, t, N, 1), stickbreak_row(wf, tf, N, 1);
    double sum = 0;
    for (int j = 0; j < N; j++) {
        sum += w[j];
        ck_assert(w[j] >= 0 && isfinite(w[j]));
        ck_assert_double_eq_tol(wf[j], w[j], 1e-6 * (w[j] + 1e-30));
    }
    ck_assert(sum <= 1 + 1e-12 && sum > 0.99);
    ck_assert_double_eq(w[0], 0); ck_assert_double_eq(wf[0], 0);
    s[1] = NAN;
    stickbreak_row_f64(p, s, 4, 1);
    for (int j = 0; j < 4; j++) ck_assert(isnan(p[j]));
}
END_TEST

/* P(H) as the reference evaluates it: ascending powers */
static double poly_asc(double H) { return -0.037 + 0.481 * H - 2.3 * H * H + 4.917 * pow(H, 3) - 1.791 * pow(H, 4); }

START_TEST(test_adaptive_known) {
    double s[6] = {0.1, -0.4, 0.3, 0.0, 0.2, -0.1}, p[6], q[6];
    /* a flat row: H near ln 6 = 1.79, P(H) > 1, beta = P(H) */
    softmax_row_f64(q, s, 6, 1);
    double H = 0;
    for (int j = 0; j < 6; j++) H -= q[j] * log(q[j] + 1e-9);
    double beta = poly_asc(H);
    ck_assert(H > 0.5 && beta > 1);
    ck_assert_double_eq_tol(adaptive_softmax_beta_f64(s, 6), beta, 1e-14);
    double t[6];
    for (int j = 0; j < 6; j++) t[j] = beta * s[j];
    softmax_row_f64(q, t, 6, 1);
    adaptive_softmax_row_f64(p, s, 6, 1);
    for (int j = 0; j < 6; j++) ck_assert_double_eq_tol(p[j], q[j], 1e-15);
    /* a peaked row (H < 0.5) and a long flat row (H = ln 1000, P(H) < 1): beta = 1, softmax */
    double u[6] = {10, 0, 0, 0, 0, 0};
    ck_assert_double_eq(adaptive_softmax_beta_f64(u, 6), 1);
    static double l[1000], lp[1000], lq[1000];
    for (int j = 0; j < 1000; j++) l[j] = 0.01 * sin(j);
    ck_assert_double_eq(adaptive_softmax_beta_f64(l, 1000), 1);
    adaptive_softmax_row_f64(lp, l, 1000, 1), softmax_row_f64(lq, l, 1000, 1);
    for (int j = 0; j < 1000; j++) ck_assert_double_eq_tol(lp[j], lq[j], 1e-15);
    s[0] = NAN;
    adaptive_softmax_row_f64(p, s, 6, 1);
    for (int j = 0; j < 6; j++) ck_assert(isnan(p[j]));
}
END_TEST

/* ---- row backward against central differences, and float against double ---------------------- */
typedef struct {
    double *p, *s, *proj, param;
    int n, row;
} row_ctx;
static double row_loss(void *v) {
    row_ctx *c = v;
    norm_row_forward_f64(c->p, c->s, c->n, c->row, c->param);
    return tu_dot(c->p, c->proj, (size_t)c->n);
}

/* the smallest gap between two scores (top-k's selection has kinks where they cross) */
static double min_gap(const double *s, int n) {
    double g = INFINITY;
    for (int a = 0; a < n; a++)
        for (int b = a + 1; b < n; b++) g = fmin(g, fabs(s[a] - s[b]));
    return g;
}

START_TEST(test_row_backward_fd) {
    pcg32 r = pcg32_derive(17, "rows", 0);
    const int lens[] = {1, 2, 5, 17, 64};
    for (int ri = 0; ri < 4; ri++)
        for (int l = 0; l < 5; l++)
            for (int sc = 0; sc < 3; sc++) {
                int n = lens[l], row = NEW_ROWS[ri];
                double s[64], p[64], proj[64], ds[64], par = NEW_PARAMS[ri];
                row_ctx c = {p, s, proj, par, n, row};
                do tu_fill(s, n, &r, (double[]){0.3, 1.5, 4}[sc]);
                while (n > 1 && min_gap(s, n) < 1e-4);
                tu_fill(proj, n, &r, 1);
                row_loss(&c);
                norm_row_backward_s_f64(ds, p, proj, s, n, row, par);
                char what[96];
                snprintf(what, sizeof what, "%s param=%g n=%d scale %d", lcg_row_at(row)->name, par, n, sc);
                tu_fd_check(what, row_loss, &c, s, ds, (size_t)n);
                if (row == LCG_ROW_TOPK) /* unselected keys: zero weight, zero gradient */
                    for (int j = 0; j < n; j++)
                        if (p[j] == 0) ck_assert_double_eq(ds[j], 0);
                if (row == LCG_ROW_TOPK && n > 1) {
                    int nz = 0;
                    for (int j = 0; j < n; j++) nz += p[j] > 0;
                    ck_assert_int_eq(nz, topk_row_k_f64(par, n) < n ? topk_row_k_f64(par, n) : n);
                }
                /* the float build agrees */
                float sf[64], pf[64], gf[64], dsf[64];
                for (int j = 0; j < n; j++) sf[j] = (float)s[j], gf[j] = (float)proj[j];
                norm_row_forward(pf, sf, n, row, par);
                norm_row_backward_s(dsf, pf, gf, sf, n, row, par);
                for (int j = 0; j < n; j++) {
                    ck_assert_double_eq_tol(pf[j], p[j], 2e-6);
                    ck_assert_double_eq_tol(dsf[j], ds[j], 1e-4 * (1 + fabs(ds[j])));
                }
            }
}
END_TEST

/* ---- attention level: the backward recomputes the scores of stick-break and adaptive rows ---- */
typedef struct {
    double *out, *att, *qkv, *qs, *proj, param;
    float slopes[4];
    int B, T, H, D, row;
} at_ctx;
static double at_loss(void *v) {
    at_ctx *c = v;
    attention_forward_f64(c->out, c->att, c->qkv, c->qs, c->slopes, c->row, c->param, c->B, c->T, c->H, c->D);
    return tu_dot(c->out, c->proj, (size_t)c->B * c->T * c->H * c->D);
}

START_TEST(test_attention_backward_fd) {
    pcg32 r = pcg32_derive(23, "rows-attn", 0);
    for (int ri = 0; ri < 4; ri++)
        for (int scaled = 0; scaled < 2; scaled++) {
            at_ctx c = {.B = 2, .T = 7, .H = 2, .D = 4, .row = NEW_ROWS[ri], .param = NEW_PARAMS[ri],
                        .slopes = {0.5f, 0}};
            size_t nq = (size_t)c.B * c.T * 3 * c.H * c.D, no = (size_t)c.B * c.T * c.H * c.D, ns = (size_t)c.B * c.T * c.H;
            c.qkv = LCG_NEW(double, nq), c.out = LCG_NEW(double, no), c.proj = LCG_NEW(double, no);
            c.att = LCG_NEW(double, (size_t)c.B * c.H * c.T * c.T);
            double *qs = LCG_NEW(double, ns), *g = LCG_NEW(double, nq), *gs = LCG_NEW(double, ns);
            tu_fill(c.qkv, nq, &r, 1.5);
            tu_fill(c.proj, no, &r, 1);
            for (size_t i = 0; i < ns; i++) qs[i] = 0.6 + pcg32_float(&r);
            c.qs = scaled ? qs : NULL;
            at_loss(&c);
            attention_backward_f64(g, scaled ? gs : NULL, c.proj, c.qkv, c.qs, c.att, c.slopes, c.row, c.param, c.B, c.T,
                                   c.H, c.D);
            char what[96];
            snprintf(what, sizeof what, "attention %s scaled=%d: qkv", lcg_row_at(c.row)->name, scaled);
            tu_fd_check(what, at_loss, &c, c.qkv, g, nq);
            if (scaled) {
                snprintf(what, sizeof what, "attention %s: query scale", lcg_row_at(c.row)->name);
                tu_fd_check(what, at_loss, &c, qs, gs, ns);
            }
            lcg_free(c.qkv), lcg_free(c.out), lcg_free(c.proj), lcg_free(c.att);
            lcg_free(qs), lcg_free(g), lcg_free(gs);
        }
}
END_TEST

START_TEST(test_registry) {
    const char *names[] = {"topk", "stick-break", "adaptive-softmax"};
    const int ids[] = {LCG_NORM_TOPK, LCG_NORM_STICK, LCG_NORM_ADAPTIVE}, rows[] = {LCG_ROW_TOPK, LCG_ROW_STICK, LCG_ROW_ADAPTIVE};
    for (int i = 0; i < 3; i++) {
        const lcg_normalizer *nz = lcg_normalizer_find(names[i]);
        ck_assert_ptr_nonnull(nz);
        ck_assert_int_eq(nz->id, ids[i]);
        ck_assert_int_eq(nz->row, rows[i]);
        ck_assert_int_eq(nz->scale, LCG_SCALE_NONE);
        ck_assert_int_eq(nz->has_alpha, 0);
        ck_assert_int_eq(nz->has_topk, i == 0);
        ck_assert_int_eq(lcg_row_at(rows[i])->sparse, LCG_EVAL_ROW);
    }
    ck_assert_ptr_nonnull(lcg_row_at(LCG_ROW_STICK)->bwd_s);
    ck_assert_ptr_null(lcg_row_at(LCG_ROW_STICK)->bwd);
    ck_assert_ptr_nonnull(lcg_row_at(LCG_ROW_TOPK)->bwd);
}
END_TEST

int main(void) {
    Suite *s = suite_create("rows");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_topk_known);
    tcase_add_test(tc, test_stickbreak_known);
    tcase_add_test(tc, test_adaptive_known);
    tcase_add_test(tc, test_row_backward_fd);
    tcase_add_test(tc, test_attention_backward_fd);
    tcase_add_test(tc, test_registry);
    suite_add_tcase(s, tc);
    return tu_run_suite(s);
}
