/*
 * test_entmax.c: the alpha-entmax and sparsemax normalizers (kernels/entmax.c). The fast exact
 * row path against the 80-step bisection reference over many lengths, scales and alphas in
 * both builds; row properties (sum to 1, exact zeros below tau, one-hot, uniform, ties, shift
 * invariance, length 1); known values; the alpha -> 1 softmax limit and alpha = 2 = sparsemax;
 * the row backward and the attention backward against central finite differences in double.
 * Not here: CLI validation of --alpha (tests/test_cli.c) and model-level training.
 */
#include "testutil.h"

#include <math.h>

#include "../kernels/kernels.h"
#include "../kernels/util.h"
#include "../kernels/entmax_stream.h"

static double row_max(const double *s, int n) {
    double m = s[0];
    for (int j = 1; j < n; j++) m = s[j] > m ? s[j] : m;
    return m;
}

/* ---- fast exact path vs bisection ------------------------------------------------------------ */
static const double ALPHAS[] = {1.25, 1.5, 1.75, 2.0};
static const int LENS[] = {1, 2, 7, 64, 1000};
static const double SCALES[] = {1e-5, 0.5, 1, 10, 1e4};

/* the closed forms on their own (entmax_row would hide a wrong one behind its fallback) */
START_TEST(test_closed_form_tau) {
    pcg32 r = pcg32_derive(31, "closed", 0);
    double alphas[2] = {1.5, 2.0}, scales[4] = {0.1, 1, 10, 1e3};
    static double s[1000], q[1000];
    int sizes[4] = {2, 7, 64, 1000};
    for (int a = 0; a < 2; a++)
        for (int si = 0; si < 4; si++)
            for (int ni = 0; ni < 4; ni++)
                for (int rep = 0; rep < 5; rep++) {
                    int n = sizes[ni];
                    for (int j = 0; j < n; j++) s[j] = scales[si] * pcg32_normal(&r);
                    double tb = entmax_bisect_row_f64(q, s, n, alphas[a], 80);
                    double tc = entmax_closed_form_tau_f64(s, n, alphas[a]);
                    ck_assert_msg(fabs(tb - tc) < 1e-9, "alpha %g n %d scale %g: closed form tau %.12g, bisection %.12g",
                                  alphas[a], n, scales[si], tc, tb);
                }
}
END_TEST

START_TEST(test_exact_matches_bisection) {
    pcg32 r = pcg32_derive(11, "entmax", 0);
    double worst_d = 0, worst_f = 0;
    double *s = LCG_NEW(double, 1000), *p = LCG_NEW(double, 1000), *q = LCG_NEW(double, 1000);
    float *sf = LCG_NEW(float, 1000), *pf = LCG_NEW(float, 1000), *qf = LCG_NEW(float, 1000);
    for (int a = 0; a < 4; a++)
        for (int l = 0; l < 5; l++)
            for (int sc = 0; sc < 5; sc++)
                for (int rep = 0; rep < 3; rep++) {
                    double alpha = ALPHAS[a];
                    int n = LENS[l];
                    tu_fill(s, n, &r, SCALES[sc]);
                    for (int j = 0; j < n; j++) sf[j] = (float)s[j];
                    /* double */
                    double tau = entmax_row_f64(p, s, n, alpha);
                    double tau_b = entmax_bisect_row_f64(q, s, n, alpha, 80);
                    ck_assert_double_eq_tol(tau, tau_b, 1e-10);
                    double mx = row_max(s, n), sum = 0;
                    for (int j = 0; j < n; j++) {
                        double d = fabs(p[j] - q[j]), x = (alpha - 1) * (s[j] - mx);
                        worst_d = d > worst_d ? d : worst_d;
                        ck_assert_msg(d < 1e-10, "f64 a=%g n=%d scale=%g j=%d: %.17g vs %.17g", alpha, n,
                                      SCALES[sc], j, p[j], q[j]);
                        if (x <= tau) ck_assert_double_eq(p[j], 0);
                        if (fabs(x - tau) > 1e-9) ck_assert_int_eq(p[j] > 0, q[j] > 0); /* same support */
                        ck_assert(p[j] >= 0);
                        sum += p[j];
                    }
                    ck_assert_double_eq_tol(sum, 1, 1e-12);
                    /* float */
                    entmax_row(pf, sf, n, alpha);
                    entmax_bisect_row(qf, sf, n, alpha, 80);
                    sum = 0;
                    for (int j = 0; j < n; j++) {
                        double d = fabs((double)pf[j] - qf[j]);
                        worst_f = d > worst_f ? d : worst_f;
                        ck_assert_msg(d < 1e-6, "f32 a=%g n=%d scale=%g j=%d: %.9g vs %.9g", alpha, n,
                                      SCALES[sc], j, pf[j], qf[j]);
                        sum += pf[j];
                    }
                    ck_assert_double_eq_tol(sum, 1, 1e-5);
                    /* sparsemax is entmax at alpha = 2 */
                    if (alpha == 2.0) {
                        norm_row_forward_f64(q, s, n, LCG_ROW_SPARSEMAX, 1.5 /* ignored */);
                        for (int j = 0; j < n; j++) ck_assert_double_eq(p[j], q[j]);
                    }
                }
    printf("entmax exact vs bisection: max |diff| f64 %.3g, f32 %.3g\n", worst_d, worst_f);
    lcg_free(s), lcg_free(p), lcg_free(q), lcg_free(sf), lcg_free(pf), lcg_free(qf);
}
END_TEST

/* the Newton path off the closed-form alphas, including near 1 and just below 2 */
START_TEST(test_newton_alphas_match_bisection) {
    pcg32 r = pcg32_derive(12, "entmax", 0);
    const double alphas[] = {1.001, 1.1, 1.3333, 1.9, 1.999999};
    double s[300], p[300], q[300], worst = 0;
    for (int a = 0; a < 5; a++)
        for (int l = 0; l < 5; l++) {
            int n = (int[]){1, 3, 17, 120, 300}[l];
            for (int sc = 0; sc < 5; sc++) {
                tu_fill(s, n, &r, SCALES[sc]);
                entmax_row_f64(p, s, n, alphas[a]);
                entmax_bisect_row_f64(q, s, n, alphas[a], 80);
                for (int j = 0; j < n; j++) worst = fmax(worst, fabs(p[j] - q[j]));
            }
        }
    printf("entmax Newton alphas vs bisection: max |diff| f64 %.3g\n", worst);
    ck_assert_double_lt(worst, 1e-10);
}
END_TEST

/* ---- row properties ------------------------------------------------------------------------- */
START_TEST(test_row_properties) {
    pcg32 r = pcg32_derive(13, "entmax", 0);
    for (int a = 0; a < 4; a++) {
        double alpha = ALPHAS[a], s[64], p[64], q[64];
        /* length 1: weight exactly 1 */
        double one = -3.25;
        entmax_row_f64(p, &one, 1, alpha);
        ck_assert_double_eq(p[0], 1);
        float onef = 12.5f, pf1;
        entmax_row(&pf1, &onef, 1, alpha);
        ck_assert_float_eq(pf1, 1.0f);
        /* one-hot: one score far above the rest */
        tu_fill(s, 64, &r, 1);
        s[17] = 100;
        entmax_row_f64(p, s, 64, alpha);
        for (int j = 0; j < 64; j++) ck_assert_double_eq(p[j], j == 17 ? 1.0 : 0.0);
        /* all equal: uniform 1/n (tau = -n^(1-alpha) exactly at the bracket's upper end) */
        for (int n = 1; n <= 64; n *= 4) {
            for (int j = 0; j < n; j++) s[j] = 0.7;
            double tau = entmax_row_f64(p, s, n, alpha);
            ck_assert_double_eq_tol(tau, -pow(n, 1 - alpha), 1e-12);
            for (int j = 0; j < n; j++) ck_assert_double_eq_tol(p[j], 1.0 / n, 1e-14);
            entmax_bisect_row_f64(q, s, n, alpha, 80);
            for (int j = 0; j < n; j++) ck_assert_double_eq_tol(q[j], 1.0 / n, 1e-14);
        }
        /* ties: equal scores get equal weights, in and out of the support */
        double t[8] = {2, 1, 2, -5, 1, 0.5, 2, -5};
        entmax_row_f64(p, t, 8, alpha);
        ck_assert_double_eq(p[0], p[2]);
        ck_assert_double_eq(p[0], p[6]);
        ck_assert_double_eq(p[1], p[4]);
        ck_assert_double_eq(p[3], 0);
        ck_assert_double_eq(p[7], 0);
        ck_assert(p[0] > p[1]);
        /* invariance to adding a constant */
        tu_fill(s, 64, &r, 2);
        entmax_row_f64(p, s, 64, alpha);
        for (int j = 0; j < 64; j++) q[j] = s[j] + 37.125;
        double p2[64];
        entmax_row_f64(p2, q, 64, alpha);
        for (int j = 0; j < 64; j++) ck_assert_double_eq_tol(p[j], p2[j], 1e-13);
        /* sparse for spread scores */
        int zeros = 0;
        for (int j = 0; j < 64; j++) zeros += p[j] == 0;
        ck_assert_int_gt(zeros, 0);
    }
}
END_TEST

/* the training row is a function of the multiset of scores: a permuted row (with ties, and
 * long enough for the sort's merges) gives bitwise the permuted weights */
START_TEST(test_row_permutation_invariant) {
    pcg32 r = pcg32_derive(23, "entmax", 0);
    const int lens[] = {17, 33, 47, 64};
    const double alphas[] = {1.5, 2.0};
    for (int li = 0; li < 4; li++)
        for (int ai = 0; ai < 2; ai++)
            for (int rep = 0; rep < 20; rep++) {
                int n = lens[li], perm[64];
                float s[64], sp[64], p[64], pp[64];
                for (int j = 0; j < n; j++) /* a few levels: ties; flat enough for many candidates */
                    s[j] = (float)(pcg32_below(&r, 1 + rep % 8) * (rep % 3 == 0 ? 0.05 : 0.4)), perm[j] = j;
                for (int j = n - 1; j > 0; j--) {
                    int k = (int)pcg32_below(&r, (uint32_t)j + 1), t = perm[j];
                    perm[j] = perm[k], perm[k] = t;
                }
                for (int j = 0; j < n; j++) sp[j] = s[perm[j]];
                entmax_row(p, s, n, alphas[ai]);
                entmax_row(pp, sp, n, alphas[ai]);
                for (int j = 0; j < n; j++)
                    ck_assert_msg(pp[j] == p[perm[j]], "n=%d alpha=%g rep %d: key %d %.9g vs %.9g", n, alphas[ai], rep, j,
                                  pp[j], p[perm[j]]);
            }
}
END_TEST

/* a row of up to 64 candidates (the sorted-values path) and the same row with 40 more keys that
 * are candidates (x > -1) but below the top-8 bound (the general path: prune, then sort the
 * keys): bitwise the same weights on the shared keys, 0 on the added ones */
START_TEST(test_row_short_path_is_general_path) {
    pcg32 r = pcg32_derive(29, "entmax", 0);
    const double alphas[] = {1.5, 2.0};
    for (int ai = 0; ai < 2; ai++)
        for (int rep = 0; rep < 40; rep++) {
            int n = 9 + (int)pcg32_below(&r, 56), extra = 40; /* 9..64 keys */
            float s[104], p[104], pl[104];
            double span = alphas[ai] == 2.0 ? 0.12 : 0.7; /* keys above the bound: within -1/8 or -1/sqrt(8) in x */
            for (int j = 0; j < n; j++) s[j] = j < 8 ? 3.0f : (float)(3.0 - span * pcg32_float(&r));
            for (int j = n; j < n + extra; j++) s[j] = alphas[ai] == 2.0 ? 2.5f : 1.5f; /* x = -0.5 or -0.75 */
            entmax_row(p, s, n, alphas[ai]);
            entmax_row(pl, s, n + extra, alphas[ai]);
            for (int j = 0; j < n; j++)
                ck_assert_msg(p[j] == pl[j], "alpha=%g n=%d: key %d %.9g vs %.9g", alphas[ai], n, j, p[j], pl[j]);
            for (int j = n; j < n + extra; j++) ck_assert_float_eq(pl[j], 0);
        }
}
END_TEST

START_TEST(test_known_values) {
    double s[3] = {1, 0.5, -1}, p[3];
    sparsemax_row_f64(p, s, 3);
    ck_assert_double_eq_tol(p[0], 0.75, 1e-15);
    ck_assert_double_eq_tol(p[1], 0.25, 1e-15);
    ck_assert_double_eq(p[2], 0);
    norm_row_forward_f64(p, s, 3, LCG_ROW_SPARSEMAX, 0);
    ck_assert_double_eq_tol(p[0], 0.75, 1e-15);
    float sf[3] = {1, 0.5f, -1}, pf[3];
    norm_row_forward(pf, sf, 3, LCG_ROW_SPARSEMAX, 0);
    ck_assert_float_eq_tol(pf[0], 0.75f, 1e-7f);
    ck_assert_float_eq_tol(pf[1], 0.25f, 1e-7f);
    ck_assert_float_eq(pf[2], 0);
    double z[2] = {0, 0};
    norm_row_forward_f64(p, z, 2, LCG_ROW_ENTMAX, 1.5);
    ck_assert_double_eq_tol(p[0], 0.5, 1e-15);
    ck_assert_double_eq_tol(p[1], 0.5, 1e-15);
    /* entmax15([1, 0]): x = [0, -1/2], tau = -1/4 - sqrt(7/16), p = (x - tau)^2 */
    double w[2] = {1, 0}, tau = -0.25 - sqrt(7.0 / 16);
    entmax_row_f64(p, w, 2, 1.5);
    ck_assert_double_eq_tol(p[0], tau * tau, 1e-15);
    ck_assert_double_eq_tol(p[1], (-0.5 - tau) * (-0.5 - tau), 1e-15);
}
END_TEST

START_TEST(test_limits) {
    pcg32 r = pcg32_derive(14, "entmax", 0);
    double s[64], p[64], q[64];
    for (int rep = 0; rep < 6; rep++) {
        int n = rep % 2 ? 7 : 64;
        tu_fill(s, n, &r, 1.5);
        /* alpha -> 1: softmax */
        entmax_row_f64(p, s, n, 1.001);
        norm_row_forward_f64(q, s, n, LCG_ROW_SOFTMAX, 1.0);
        for (int j = 0; j < n; j++) ck_assert_double_eq_tol(p[j], q[j], 1e-2);
        /* alpha -> 2 (Newton) and alpha = 2 (closed form): sparsemax */
        entmax_row_f64(p, s, n, 2.0 - 1e-9);
        norm_row_forward_f64(q, s, n, LCG_ROW_SPARSEMAX, 2.0);
        for (int j = 0; j < n; j++) ck_assert_double_eq_tol(p[j], q[j], 1e-7);
        norm_row_forward_f64(p, s, n, LCG_ROW_ENTMAX, 2.0);
        for (int j = 0; j < n; j++) ck_assert_double_eq(p[j], q[j]);
    }
}
END_TEST

/* ---- row backward vs finite differences ----------------------------------------------------- */
typedef struct {
    double *p, *s, *proj, alpha;
    int n, norm;
} row_ctx;
static double row_loss(void *v) {
    row_ctx *c = v;
    norm_row_forward_f64(c->p, c->s, c->n, c->norm, c->alpha);
    return tu_dot(c->p, c->proj, c->n);
}
/* distance of the closest score to the threshold (the map has kinks there) */
static double row_margin(const double *s, int n, double alpha) {
    double p[64], tau = entmax_row_f64(p, s, n, alpha), mx = row_max(s, n), m = INFINITY;
    for (int j = 0; j < n; j++) m = fmin(m, fabs((alpha - 1) * (s[j] - mx) - tau));
    return m;
}
START_TEST(test_row_backward_fd) {
    pcg32 r = pcg32_derive(15, "entmax", 0);
    const double alphas[] = {1.25, 1.5, 1.75, 2.0};
    const int norms[] = {LCG_ROW_ENTMAX, LCG_ROW_ENTMAX, LCG_ROW_ENTMAX, LCG_ROW_SPARSEMAX};
    const int lens[] = {1, 2, 7, 30, 64};
    for (int a = 0; a < 4; a++)
        for (int l = 0; l < 5; l++)
            for (int sc = 0; sc < 3; sc++) {
                int n = lens[l];
                double s[64], p[64], proj[64], ds[64];
                row_ctx c = {p, s, proj, alphas[a], n, norms[a]};
                do tu_fill(s, n, &r, (double[]){0.5, 2, 5}[sc]);
                while (n > 1 && row_margin(s, n, alphas[a]) < 1e-4);
                tu_fill(proj, n, &r, 1);
                row_loss(&c);
                norm_row_backward_f64(ds, p, proj, n, norms[a], alphas[a]);
                char what[64];
                snprintf(what, sizeof what, "row alpha=%g n=%d", alphas[a], n);
                tu_fd_check(what, row_loss, &c, s, ds, n);
                for (int j = 0; j < n; j++)
                    if (p[j] == 0) ck_assert_double_eq(ds[j], 0);
                /* float build agrees */
                float sf[64], pf[64], gf[64], dsf[64];
                for (int j = 0; j < n; j++) sf[j] = (float)s[j], gf[j] = (float)proj[j];
                norm_row_forward(pf, sf, n, norms[a], alphas[a]);
                norm_row_backward(dsf, pf, gf, n, norms[a], alphas[a]);
                for (int j = 0; j < n; j++) ck_assert_double_eq_tol(dsf[j], ds[j], 1e-4);
            }
}
END_TEST

/* ---- attention level ------------------------------------------------------------------------ */
typedef struct {
    double *out, *att, *qkv, *proj, alpha;
    float slopes[8];
    int B, T, H, D, norm;
} at_ctx;
static double at_loss(void *p) {
    at_ctx *c = p;
    attention_forward_f64(c->out, c->att, c->qkv, NULL, c->slopes, c->norm, c->alpha, c->B, c->T, c->H, c->D);
    return tu_dot(c->out, c->proj, (size_t)c->B * c->T * c->H * c->D);
}
/* smallest |x_ij - tau_i| over all causal rows: recomputes the scores as attention.c does */
static double at_margin(const at_ctx *c) {
    int HD = c->H * c->D, C3 = 3 * HD;
    double m = INFINITY, s[64];
    for (int b = 0; b < c->B; b++)
        for (int h = 0; h < c->H; h++)
            for (int t = 0; t < c->T; t++) {
                const double *q = c->qkv + ((size_t)b * c->T + t) * C3 + h * c->D;
                for (int j = 0; j <= t; j++) {
                    const double *k = c->qkv + ((size_t)b * c->T + j) * C3 + HD + h * c->D;
                    s[j] = tu_dot(q, k, c->D) / sqrt((double)c->D) + c->slopes[h] * (double)(j - t);
                }
                if (t > 0) m = fmin(m, row_margin(s, t + 1, c->alpha));
            }
    return m;
}
START_TEST(test_attention_backward_fd) {
    pcg32 r = pcg32_derive(16, "entmax", 0);
    int B = 2, T = 6, H = 4, D = 4, n = B * T * 3 * H * D;
    const int norms[] = {LCG_ROW_ENTMAX, LCG_ROW_SPARSEMAX};
    const double alphas[] = {1.5, 2.0};
    for (int k = 0; k < 2; k++)
        for (int pos = 0; pos < LCG_POS_COUNT; pos++) {
            at_ctx c = {LCG_NEW(double, B * T * H * D), LCG_NEW(double, B * H * T * T), LCG_NEW(double, n),
                        LCG_NEW(double, B * T * H * D), alphas[k], {0}, B, T, H, D, norms[k]};
            lcg_posenc_slopes(c.slopes, pos, H);
            do tu_fill(c.qkv, n, &r, 1.5);
            while (at_margin(&c) < 1e-4);
            tu_fill(c.proj, B * T * H * D, &r, 1);
            at_loss(&c);
            double *g = LCG_NEW(double, n);
            attention_backward_f64(g, NULL, c.proj, c.qkv, NULL, c.att, c.slopes, norms[k], alphas[k], B, T, H, D);
            char what[64];
            snprintf(what, sizeof what, "attention %s %s", lcg_normalizer_at(norms[k])->name,
                     lcg_posenc_at(pos)->name);
            tu_fd_check(what, at_loss, &c, c.qkv, g, n);
            int zeros = 0;
            for (int bh = 0; bh < B * H; bh++)
                for (int t = 0; t < T; t++) {
                    double s = 0;
                    for (int j = 0; j < T; j++) {
                        double p = c.att[((size_t)bh * T + t) * T + j];
                        if (j > t) ck_assert_double_eq(p, 0);
                        else zeros += p == 0;
                        s += p;
                    }
                    ck_assert_double_eq_tol(s, 1, 1e-12);
                }
            ck_assert_int_gt(zeros, 0); /* the FD check covered sparse rows */
            lcg_free(c.out), lcg_free(c.att), lcg_free(c.qkv), lcg_free(c.proj), lcg_free(g);
        }
}
END_TEST

/* sharp inputs: most causal weights exactly 0, and the output uses only the support */
START_TEST(test_attention_sharp_is_sparse) {
    pcg32 r = pcg32_derive(17, "entmax", 0);
    int B = 1, T = 32, H = 2, D = 8, n = B * T * 3 * H * D;
    const int norms[] = {LCG_ROW_ENTMAX, LCG_ROW_SPARSEMAX};
    for (int k = 0; k < 2; k++) {
        double *qkv = LCG_NEW(double, n), *att = LCG_NEW(double, B * H * T * T), *out = LCG_NEW(double, T * H * D);
        float slopes[2] = {0, 0};
        tu_fill(qkv, n, &r, 3);
        attention_forward_f64(out, att, qkv, NULL, slopes, norms[k], 1.5, B, T, H, D);
        int zeros = 0, causal = 0;
        for (int h = 0; h < H; h++)
            for (int t = 0; t < T; t++)
                for (int j = 0; j <= t; j++) {
                    zeros += att[((size_t)h * T + t) * T + j] == 0;
                    causal++;
                }
        ck_assert_msg(zeros > causal / 2, "%s: only %d of %d weights are 0", lcg_normalizer_at(norms[k])->name,
                      zeros, causal);
        /* the float build gives the same support pattern up to ties at the threshold */
        float *qf = LCG_NEW(float, n), *af = LCG_NEW(float, B * H * T * T), *of = LCG_NEW(float, T * H * D);
        for (int i = 0; i < n; i++) qf[i] = (float)qkv[i];
        attention_forward(of, af, qf, NULL, slopes, norms[k], 1.5, B, T, H, D);
        for (int i = 0; i < T * H * D; i++) ck_assert_double_eq_tol(of[i], out[i], 1e-3);
        lcg_free(qkv), lcg_free(att), lcg_free(out), lcg_free(qf), lcg_free(af), lcg_free(of);
    }
}
END_TEST

START_TEST(test_registry) {
    const lcg_normalizer *e = lcg_normalizer_find("entmax"), *s = lcg_normalizer_find("sparsemax");
    ck_assert_ptr_nonnull(e);
    ck_assert_ptr_nonnull(s);
    ck_assert_int_eq(e->id, LCG_NORM_ENTMAX);
    ck_assert_int_eq(e->has_alpha, 1);
    ck_assert_double_eq(e->alpha_def, 1.5);
    ck_assert_int_eq(s->id, LCG_NORM_SPARSEMAX);
    ck_assert_int_eq(s->has_alpha, 0);
    ck_assert_double_eq(s->alpha_def, 2.0);
    for (int i = 0; i < LCG_NORM_COUNT; i++) ck_assert_int_eq(lcg_normalizer_at(i)->id, i);
    ck_assert_ptr_null(lcg_normalizer_at(LCG_NORM_COUNT));
}
END_TEST

/* ---- the prefill's streaming pruning (kernels/entmax_stream.c, entmax_stream_row) -------------------
 * Rows of many shapes (random, ties on a few levels, flat, ramps both ways so the maximum comes
 * first or last in the newest-first stream, a few spikes, a large offset, a cluster just under
 * the maximum, and keys exactly at tau) through the streaming filter with tightening after every
 * key, every few keys, the prefill's default and never: the weights must be bitwise those of the
 * unpruned evaluation row (entmax_row_eval, which decoder_step uses) whatever the schedule, close
 * to the training row (entmax_row), and every pruned key must have x <= tau of the double
 * bisection reference (weight zero). On a spiky long row the pruning must actually prune. */
enum { PR_KINDS = 10 };
static void pr_row(float *s, int n, int kind, double scale, double alpha, pcg32 *r) {
    int spikes[4];
    for (int k = 0; k < 4; k++) spikes[k] = (int)pcg32_below(r, (uint32_t)n);
    for (int j = 0; j < n; j++) {
        double u = pcg32_float(r), v;
        switch (kind) {
        case 0: v = scale * (u - 0.5); break;
        case 1: v = scale * (u + pcg32_float(r) + pcg32_float(r) - 1.5); break;
        case 2: v = scale * floor(u * 4) / 4; break; /* ties on 4 levels */
        case 3: v = 1.0; break;                        /* flat */
        case 4: v = scale * j / n; break;              /* max newest: seen first */
        case 5: v = scale * (n - j) / n; break;        /* max oldest: seen last */
        case 6: v = 0; break;                          /* spikes below */
        case 7: v = 1e4 + scale * u; break;            /* large offset */
        case 8: v = scale * (1 - 1e-6 * u); break;     /* a cluster just under the max */
        default: /* 4 keys at the max, the rest exactly at tau: -1/2 (x) for 1.5, -1/4 for 2 */
            v = alpha == 2.0 ? -0.25 : -1.0;
        }
        s[j] = (float)v;
    }
    if (kind == 6)
        for (int k = 0; k < 4; k++) s[spikes[k]] = (float)scale;
    if (kind == 9) {
        int m = n < 4 ? n : 4;
        for (int k = 0; k < m; k++) s[(k * 7919) % n] = 0; /* distinct when n >= 4 (7919 prime) */
    }
}

START_TEST(test_streaming_prune_is_exact) {
    static const double alphas[] = {1.5, 2.0, 1.3, 1.75};
    static const int lens[] = {1, 2, 63, 64, 65, 130, 700, 3000};
    static const double scales[] = {1, 10, 100};
    static const int caps[] = {128, 1, 5, 1 << 30};
    pcg32 r = pcg32_derive(41, "prune", 0);
    enum { NMAX = 3000 };
    float *s = LCG_NEW(float, NMAX), *p = LCG_NEW(float, NMAX), *q = LCG_NEW(float, NMAX),
          *t = LCG_NEW(float, NMAX), *p2 = LCG_NEW(float, NMAX);
    double *sd = LCG_NEW(double, NMAX), *pd = LCG_NEW(double, NMAX);
    unsigned char *kept = LCG_NEW(unsigned char, NMAX), *kept2 = LCG_NEW(unsigned char, NMAX);
    long rows = 0, pruned = 0;
    for (int a = 0; a < 4; a++)
        for (int li = 0; li < 8; li++)
            for (int kind = 0; kind < PR_KINDS; kind++)
                for (int si = 0; si < 3; si++) {
                    int n = lens[li];
                    double alpha = alphas[a], am1 = alpha - 1;
                    pr_row(s, n, kind, scales[si], alpha, &r);
                    int mc = entmax_stream_row(p, kept, s, n, alpha, caps[0]);
                    entmax_row_eval(q, s, n, alpha);
                    ck_assert_msg(memcmp(p, q, sizeof(float) * (size_t)n) == 0,
                                  "alpha %g n %d kind %d scale %g: streamed weights differ from the row's", alpha, n,
                                  kind, scales[si]);
                    for (int c = 1; c < 4; c++) { /* any tightening schedule: the same bits */
                        entmax_stream_row(p2, kept2, s, n, alpha, caps[c]);
                        ck_assert_msg(memcmp(p, p2, sizeof(float) * (size_t)n) == 0,
                                      "alpha %g n %d kind %d: cap %d changes the weights", alpha, n, kind, caps[c]);
                    }
                    entmax_row(t, s, n, alpha); /* training's solve: the same up to rounding */
                    double sum = 0, mx = -INFINITY;
                    for (int j = 0; j < n; j++) {
                        ck_assert_msg(fabsf(p[j] - t[j]) <= 1e-6f, "alpha %g n %d kind %d key %d: %.9g vs %.9g",
                                      alpha, n, kind, j, p[j], t[j]);
                        sum += p[j];
                        sd[j] = s[j];
                        mx = sd[j] > mx ? sd[j] : mx;
                    }
                    ck_assert_double_eq_tol(sum, 1.0, 1e-5);
                    /* safety: every pruned key is at or below tau (bisection in double) */
                    double tau = entmax_bisect_row_f64(pd, sd, n, alpha, 80);
                    for (int j = 0; j < n; j++) {
                        if (kept[j]) continue;
                        double x = am1 * (sd[j] - mx);
                        ck_assert_msg(x <= tau + 1e-12 && p[j] == 0 && pd[j] < 1e-20,
                                      "alpha %g n %d kind %d: pruned key %d has x %.17g > tau %.17g", alpha, n, kind, j,
                                      x, tau);
                    }
                    rows++, pruned += n - mc;
                    if (kind == 6 && n == 3000 && scales[si] >= 10) /* four tall spikes: a handful left */
                        ck_assert_msg(mc <= 64, "alpha %g scale %g: %d candidates kept of 3000", alpha, scales[si], mc);
                }
    printf("streaming prune: %ld rows, %ld keys pruned, all exact\n", rows, pruned);
    /* a non-finite score: NaN weights, as the row */
    s[0] = 1, s[1] = NAN, s[2] = 0;
    entmax_stream_row(p, kept, s, 3, 1.5, 128);
    for (int j = 0; j < 3; j++) ck_assert(isnan(p[j]));
    lcg_free(s), lcg_free(p), lcg_free(q), lcg_free(t), lcg_free(p2), lcg_free(sd), lcg_free(pd);
    lcg_free(kept), lcg_free(kept2);
}
END_TEST

int main(void) {
    Suite *s = suite_create("entmax");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_closed_form_tau);
    tcase_add_test(tc, test_exact_matches_bisection);
    tcase_add_test(tc, test_newton_alphas_match_bisection);
    tcase_add_test(tc, test_row_properties);
    tcase_add_test(tc, test_row_permutation_invariant);
    tcase_add_test(tc, test_row_short_path_is_general_path);
    tcase_add_test(tc, test_known_values);
    tcase_add_test(tc, test_limits);
    tcase_add_test(tc, test_row_backward_fd);
    tcase_add_test(tc, test_attention_backward_fd);
    tcase_add_test(tc, test_attention_sharp_is_sparse);
    tcase_add_test(tc, test_registry);
    tcase_add_test(tc, test_streaming_prune_is_exact);
    suite_add_tcase(s, tc);
    return tu_run_suite(s);
}
