/*
 * test_scaling.c: the length scaling of the queries (kernels/lenscale.c) and its path through
 * attention: every kind's backward (parameters and the normed input) against central finite
 * differences in double precision, known values (SSMax = beta * ln(i+2); ASEntmax at init
 * = 1 + ln 2; unscaled NAPE heads = 1), and attention's gradient w.r.t. the scale, q, k, v.
 * Model-level checks of the scaled normalizers are in test_model.c.
 */
#include "testutil.h"

#include <math.h>

#include "../kernels/kernels.h"
#include "../kernels/util.h"

/* ---- lenscale ------------------------------------------------------------------------------- */
enum { N = 6, T = 3, C = 5, H = 4, H0 = 2, HS = H - H0 };
typedef struct {
    double c[N * H], a[N * C], proj[N * H];
    double beta[HS], gamma[HS], wb[C * HS], bb[HS], wg[C * HS], bg[HS];
    int kind, pos0;
} ls_ctx;
static lcg_lenscale_w_f64 ls_w(ls_ctx *x) { return (lcg_lenscale_w_f64){x->beta, x->gamma, x->wb, x->bb, x->wg, x->bg}; }
static double ls_loss(void *p) {
    ls_ctx *x = p;
    lcg_lenscale_w_f64 w = ls_w(x);
    lenscale_forward_f64(x->c, x->a, &w, x->kind, H0, N, T, x->pos0, C, H);
    return tu_dot(x->c, x->proj, N * H);
}

START_TEST(test_lenscale_backward_fd) {
    int kind = LCG_SCALE_SSMAX + _i;
    static ls_ctx x;
    memset(&x, 0, sizeof x);
    pcg32 r = pcg32_derive(1, "ls", (uint64_t)kind);
    x.kind = kind, x.pos0 = 5;
    tu_fill_shift(x.a, N * C, &r, 1, 0), tu_fill_shift(x.proj, N * H, &r, 1, 0);
    tu_fill_shift(x.beta, HS, &r, 0.3, 0.8), tu_fill_shift(x.gamma, HS, &r, 0.5, 0);
    tu_fill_shift(x.wb, C * HS, &r, 0.5, 0), tu_fill_shift(x.bb, HS, &r, 0.5, 0), tu_fill_shift(x.wg, C * HS, &r, 0.5, 0), tu_fill_shift(x.bg, HS, &r, 0.5, 0);
    ls_loss(&x);
    static double da[N * C], gbeta[HS], ggamma[HS], gwb[C * HS], gbb[HS], gwg[C * HS], gbg[HS];
    memset(da, 0, sizeof da), memset(gbeta, 0, sizeof gbeta), memset(ggamma, 0, sizeof ggamma);
    memset(gwb, 0, sizeof gwb), memset(gbb, 0, sizeof gbb), memset(gwg, 0, sizeof gwg), memset(gbg, 0, sizeof gbg);
    lcg_lenscale_w_f64 w = ls_w(&x), g = {gbeta, ggamma, gwb, gbb, gwg, gbg};
    lenscale_backward_f64(da, &g, x.proj, x.a, &w, kind, H0, N, T, x.pos0, C, H);
    if (kind == LCG_SCALE_SSMAX || kind == LCG_SCALE_LEARN) tu_fd_check("beta", ls_loss, &x, x.beta, gbeta, HS);
    if (kind == LCG_SCALE_LEARN) tu_fd_check("gamma", ls_loss, &x, x.gamma, ggamma, HS);
    if (kind == LCG_SCALE_ADAPT) {
        tu_fd_check("w_beta", ls_loss, &x, x.wb, gwb, C * HS);
        tu_fd_check("b_beta", ls_loss, &x, x.bb, gbb, HS);
        tu_fd_check("w_gamma", ls_loss, &x, x.wg, gwg, C * HS);
        tu_fd_check("b_gamma", ls_loss, &x, x.bg, gbg, HS);
        tu_fd_check("input a", ls_loss, &x, x.a, da, N * C);
    }
    /* the scale varies with position, and unscaled heads stay at 1 */
    for (int n = 0; n < N; n++)
        for (int h = 0; h < H0; h++) ck_assert_double_eq(x.c[n * H + h], 1);
    ck_assert(x.c[0 * H + H0] != x.c[2 * H + H0]);
}
END_TEST

START_TEST(test_lenscale_known_values) {
    double c[2 * H], a[2 * C] = {0}, beta[HS] = {1.5, 0.5}, zeros[C * HS] = {0};
    lcg_lenscale_w_f64 w = {beta, beta, zeros, zeros, zeros, zeros};
    lenscale_forward_f64(c, a, &w, LCG_SCALE_SSMAX, H0, 2, 2, 0, C, H);
    ck_assert_double_eq_tol(c[H0], 1.5 * log(2.0), 1e-15);          /* position 0 */
    ck_assert_double_eq_tol(c[H + H0 + 1], 0.5 * log(3.0), 1e-15);  /* position 1 */
    /* ASEntmax with zero projections: 1 + softplus(0) * l^0 = 1 + ln 2 at every position */
    lenscale_forward_f64(c, a, &w, LCG_SCALE_ADAPT, H0, 2, 1, 1000, C, H);
    for (int n = 0; n < 2; n++)
        for (int k = 0; k < HS; k++) ck_assert_double_eq_tol(c[n * H + H0 + k], 1 + log(2.0), 1e-15);
    /* entmax-learn with gamma = 0: 1 + beta */
    double gam[HS] = {0, 0};
    w.gamma = gam;
    lenscale_forward_f64(c, a, &w, LCG_SCALE_LEARN, 0, 1, 1, 7, C, H - 2);
    ck_assert_double_eq_tol(c[0], 2.5, 1e-15);
    ck_assert_double_eq_tol(c[1], 1.5, 1e-15);
}
END_TEST

/* ---- attention with a query scale ----------------------------------------------------------- */
typedef struct {
    double *out, *att, *qkv, *qs, *proj;
    float slopes[4];
    int row, B, T, H, D;
    double alpha;
} at_ctx;
static double at_loss(void *p) {
    at_ctx *c = p;
    attention_forward_f64(c->out, c->att, c->qkv, c->qs, c->slopes, c->row, c->alpha, c->B, c->T, c->H, c->D);
    return tu_dot(c->out, c->proj, (size_t)c->B * c->T * c->H * c->D);
}

START_TEST(test_attention_qscale_fd) {
    int rows[3] = {LCG_ROW_SOFTMAX, LCG_ROW_ENTMAX, LCG_ROW_SPARSEMAX};
    double alphas[3] = {1, 1.5, 2};
    int B = 2, Tn = 6, Hn = 4, D = 4, n = B * Tn * 3 * Hn * D;
    for (int k = 0; k < 3; k++) {
        pcg32 r = pcg32_derive(7, "qs", (uint64_t)k);
        at_ctx c = {LCG_NEW(double, B * Tn * Hn * D), LCG_NEW(double, B * Hn * Tn * Tn), LCG_NEW(double, n),
                    LCG_NEW(double, B * Tn * Hn), LCG_NEW(double, B * Tn * Hn * D), {0}, rows[k], B, Tn, Hn, D, alphas[k]};
        lcg_posenc_slopes(c.slopes, LCG_POS_NAPE, Hn);
        tu_fill_shift(c.qkv, n, &r, 1, 0), tu_fill_shift(c.proj, B * Tn * Hn * D, &r, 1, 0), tu_fill_shift(c.qs, B * Tn * Hn, &r, 0.4, 1.6);
        at_loss(&c);
        double *g = LCG_NEW(double, n), *gqs = LCG_NEW(double, B * Tn * Hn);
        attention_backward_f64(g, gqs, c.proj, c.qkv, c.qs, c.att, c.slopes, c.row, c.alpha, B, Tn, Hn, D);
        tu_fd_check("attention dqkv", at_loss, &c, c.qkv, g, n);
        tu_fd_check("attention dqscale", at_loss, &c, c.qs, gqs, B * Tn * Hn);
        /* a scale of 1 everywhere equals no scale */
        double *o1 = LCG_NEW(double, B * Tn * Hn * D);
        for (int i = 0; i < B * Tn * Hn; i++) c.qs[i] = 1;
        at_loss(&c);
        memcpy(o1, c.out, sizeof(double) * B * Tn * Hn * D);
        double *qs = c.qs;
        c.qs = NULL;
        at_loss(&c);
        for (int i = 0; i < B * Tn * Hn * D; i++) ck_assert_double_eq(o1[i], c.out[i]);
        lcg_free(c.out), lcg_free(c.att), lcg_free(c.qkv), lcg_free(c.proj), lcg_free(g), lcg_free(gqs), lcg_free(o1), lcg_free(qs);
    }
}
END_TEST

START_TEST(test_registry_scaled_normalizers) {
    const lcg_normalizer *s = lcg_normalizer_find("ssmax"), *a = lcg_normalizer_find("asentmax"),
                         *l = lcg_normalizer_find("entmax-learn");
    ck_assert(s && a && l);
    ck_assert_int_eq(s->row, LCG_ROW_SOFTMAX);
    ck_assert_int_eq(s->scale, LCG_SCALE_SSMAX);
    ck_assert_int_eq(a->row, LCG_ROW_ENTMAX);
    ck_assert_int_eq(a->scale, LCG_SCALE_ADAPT);
    ck_assert_int_eq(l->row, LCG_ROW_ENTMAX);
    ck_assert_int_eq(l->scale, LCG_SCALE_LEARN);
    ck_assert(!s->has_alpha && a->has_alpha && l->has_alpha);
    ck_assert_double_eq(a->alpha_def, 1.5);
    for (int i = 0; i < LCG_NORM_COUNT; i++) ck_assert_int_eq(lcg_normalizer_at(i)->id, i);
}
END_TEST

int main(void) {
    Suite *s = suite_create("scaling");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 120);
    tcase_add_loop_test(tc, test_lenscale_backward_fd, 0, 3);
    tcase_add_test(tc, test_lenscale_known_values);
    tcase_add_test(tc, test_attention_qscale_fd);
    tcase_add_test(tc, test_registry_scaled_normalizers);
    suite_add_tcase(s, tc);
    return tu_run_suite(s);
}
