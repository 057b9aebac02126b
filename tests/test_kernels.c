/*
 * test_kernels.c: the math layer. PCG32 against the published demo output; every kernel's
 * backward against central finite differences in double precision (the `_f64` build of the
 * same source); the fast matmul against the plain reference loops; RoPE's per-token path
 * against the batched one; softmax rows sum to one. Model-level checks are in test_model.c.
 */
#include "testutil.h"

#include <math.h>
#include <string.h>

#include "../kernels/kernels.h"
#include "../kernels/util.h"

/* ---- PCG32 ---------------------------------------------------------------------------------- */
START_TEST(test_pcg32_reference_demo) {
    /* pcg32-demo (pcg-c-basic), seed 42, stream 54: round 1 */
    static const uint32_t want[6] = {0xa15c02b7, 0x7b47f409, 0xba1d3330, 0x83d2f293, 0xbfa4784b, 0xcbed606e};
    static const char coins[] = "HHTTTHTHHHTHTTTHHHHHTTTHHHTHTHTHTTHTTTHHHHHHTTTTHHTTTTTHTTTTTTTHT";
    static const int rolls[19] = {3, 4, 1, 1, 2, 2, 3, 2, 4, 3, 2, 4, 3, 3, 5, 2, 3, 1, 3};
    pcg32 rng;
    pcg32_seed(&rng, 42u, 54u);
    for (int i = 0; i < 6; i++) ck_assert_uint_eq(pcg32_next(&rng), want[i]);
    for (int i = 0; i < 65; i++) ck_assert_int_eq(pcg32_below(&rng, 2) ? 'H' : 'T', coins[i]);
    for (int i = 0; i < 19; i++) ck_assert_int_eq((int)pcg32_below(&rng, 6) + 1, rolls[i]);
}
END_TEST

START_TEST(test_pcg32_streams_differ) {
    pcg32 a = pcg32_derive(1, "train", 0), b = pcg32_derive(1, "test", 64), c = pcg32_derive(1, "train", 0);
    int same_ab = 0;
    for (int i = 0; i < 64; i++) {
        uint32_t x = pcg32_next(&a), y = pcg32_next(&b), z = pcg32_next(&c);
        same_ab += x == y;
        ck_assert_uint_eq(x, z);
    }
    ck_assert_int_lt(same_ab, 2);
    /* normal draws: mean ~ 0, variance ~ 1 */
    pcg32 r = pcg32_derive(3, "init", 0);
    double s = 0, s2 = 0;
    for (int i = 0; i < 20000; i++) {
        double v = pcg32_normal(&r);
        s += v;
        s2 += v * v;
    }
    ck_assert_double_lt(fabs(s / 20000), 0.03);
    ck_assert_double_lt(fabs(s2 / 20000 - 1), 0.05);
}
END_TEST

/* ---- backward vs finite differences (tu_fd_check) ---------------------------------------- */

/* -- matmul -- */
typedef struct {
    double *out, *inp, *w, *proj;
    int N, IC, OC, ref;
} mm_ctx;
static double mm_loss(void *p) {
    mm_ctx *c = p;
    (c->ref ? matmul_forward_ref_f64 : matmul_forward_f64)(c->out, c->inp, c->w, c->N, c->IC, c->OC);
    return tu_dot(c->out, c->proj, (size_t)c->N * c->OC);
}
START_TEST(test_matmul_backward_fd) {
    pcg32 r = pcg32_derive(1, "t", 0);
    int shapes[][3] = {{5, 7, 3}, {9, 16, 70}, {4, 64, 64}};
    for (int s = 0; s < 3; s++)
        for (int ref = 0; ref < 2; ref++) {
            int N = shapes[s][0], IC = shapes[s][1], OC = shapes[s][2];
            mm_ctx c = {LCG_NEW(double, N * OC), LCG_NEW(double, N * IC), LCG_NEW(double, IC * OC),
                        LCG_NEW(double, N * OC), N, IC, OC, ref};
            tu_fill(c.inp, N * IC, &r, 1), tu_fill(c.w, IC * OC, &r, 1), tu_fill(c.proj, N * OC, &r, 1);
            double *dinp = LCG_NEW(double, N * IC), *dw = LCG_NEW(double, IC * OC);
            (ref ? matmul_backward_ref_f64 : matmul_backward_f64)(dinp, dw, c.proj, c.inp, c.w, N, IC, OC);
            tu_fd_check("matmul dinp", mm_loss, &c, c.inp, dinp, N * IC);
            tu_fd_check("matmul dw", mm_loss, &c, c.w, dw, IC * OC);
            lcg_free(c.out), lcg_free(c.inp), lcg_free(c.w), lcg_free(c.proj), lcg_free(dinp), lcg_free(dw);
        }
}
END_TEST

START_TEST(test_matmul_fast_matches_reference) {
    pcg32 r = pcg32_derive(2, "t", 0);
    int shapes[][3] = {{1, 64, 192}, {7, 33, 65}, {130, 64, 256}, {64, 256, 64}, {3, 5, 129}};
    for (int s = 0; s < 5; s++) {
        int N = shapes[s][0], IC = shapes[s][1], OC = shapes[s][2];
        float *x = LCG_NEW(float, N * IC), *w = LCG_NEW(float, IC * OC), *g = LCG_NEW(float, N * OC);
        float *y1 = LCG_NEW(float, N * OC), *y2 = LCG_NEW(float, N * OC);
        float *dx1 = LCG_NEW(float, N * IC), *dx2 = LCG_NEW(float, N * IC);
        float *dw1 = LCG_NEW(float, IC * OC), *dw2 = LCG_NEW(float, IC * OC);
        for (int i = 0; i < N * IC; i++) x[i] = (float)pcg32_normal(&r);
        for (int i = 0; i < IC * OC; i++) w[i] = (float)pcg32_normal(&r);
        for (int i = 0; i < N * OC; i++) g[i] = (float)pcg32_normal(&r);
        matmul_forward(y1, x, w, N, IC, OC);
        matmul_forward_ref(y2, x, w, N, IC, OC);
        matmul_backward(dx1, dw1, g, x, w, N, IC, OC);
        matmul_backward_ref(dx2, dw2, g, x, w, N, IC, OC);
        float tol_f = 1e-5f * sqrtf((float)IC), tol_b = 1e-5f * sqrtf((float)(OC > N ? OC : N));
        for (int i = 0; i < N * OC; i++) ck_assert_float_eq_tol(y1[i], y2[i], tol_f);
        for (int i = 0; i < N * IC; i++) ck_assert_float_eq_tol(dx1[i], dx2[i], tol_b);
        for (int i = 0; i < IC * OC; i++) ck_assert_float_eq_tol(dw1[i], dw2[i], tol_b);
        lcg_free(x), lcg_free(w), lcg_free(g), lcg_free(y1), lcg_free(y2);
        lcg_free(dx1), lcg_free(dx2), lcg_free(dw1), lcg_free(dw2);
    }
}
END_TEST

/* the float build's D = 16 attention (rows in blocks of 4, scores in registers) is bitwise its
 * plain loops, forward and backward, for every row function, with and without the ASEntmax
 * query scale and ALiBi slopes, at lengths that end mid-block and span two 64-key blocks */
START_TEST(test_attention_fast_is_plain) {
    pcg32 r = pcg32_derive(21, "t", 0);
    const int rows[] = {LCG_ROW_SOFTMAX, LCG_ROW_ENTMAX, LCG_ROW_SPARSEMAX, LCG_ROW_TOPK, LCG_ROW_STICK, LCG_ROW_ADAPTIVE},
              lens[] = {37, 70};
    int B = 2, H = 2, D = 16;
    float slopes[2] = {0.5f, 0};
    for (int li = 0; li < 2; li++)
        for (int ri = 0; ri < (int)(sizeof rows / sizeof *rows); ri++)
            for (int scaled = 0; scaled < 2; scaled++) {
                double par = rows[ri] == LCG_ROW_TOPK ? -5 : 1.5; /* topk: k = max(5, keys/2) */
                int T = lens[li], nq = B * T * 3 * H * D, no = B * T * H * D, ns = B * T * H, na = B * H * T * T;
                float *qkv = LCG_NEW(float, nq), *dout = LCG_NEW(float, no), *qs = LCG_NEW(float, ns);
                float *out[2], *att[2], *dqkv[2], *dqs[2];
                for (int i = 0; i < nq; i++) qkv[i] = (float)(2 * pcg32_normal(&r));
                for (int i = 0; i < no; i++) dout[i] = (float)pcg32_normal(&r);
                for (int i = 0; i < ns; i++) qs[i] = 0.5f + (float)pcg32_float(&r);
                for (int k = 0; k < 2; k++) {
                    out[k] = LCG_NEW(float, no), att[k] = LCG_NEW(float, na);
                    dqkv[k] = LCG_NEW(float, nq), dqs[k] = LCG_NEW(float, ns); /* zeroed: both accumulate */
                    lcg_attention_fast = k;
                    attention_forward(out[k], att[k], qkv, scaled ? qs : NULL, slopes, rows[ri], par, B, T, H, D);
                    attention_backward(dqkv[k], scaled ? dqs[k] : NULL, dout, qkv, scaled ? qs : NULL, att[k], slopes,
                                       rows[ri], par, B, T, H, D);
                }
                lcg_attention_fast = 1;
                const char *what = lcg_row_at(rows[ri])->name;
                ck_assert_msg(memcmp(out[0], out[1], sizeof(float) * no) == 0, "%s T=%d scaled=%d: output", what, T, scaled);
                ck_assert_msg(memcmp(att[0], att[1], sizeof(float) * na) == 0, "%s T=%d: weights", what, T);
                ck_assert_msg(memcmp(dqkv[0], dqkv[1], sizeof(float) * nq) == 0, "%s T=%d scaled=%d: dqkv", what, T, scaled);
                ck_assert_msg(memcmp(dqs[0], dqs[1], sizeof(float) * ns) == 0, "%s T=%d: dscale", what, T);
                lcg_free(qkv), lcg_free(dout), lcg_free(qs);
                for (int k = 0; k < 2; k++) lcg_free(out[k]), lcg_free(att[k]), lcg_free(dqkv[k]), lcg_free(dqs[k]);
            }
}
END_TEST

/* the fast matmul is bitwise the plain chain of FMAs over the inner index in order, from 0 (forward)
 * or from the existing value (the backward accumulates): what every tile path (register tiles,
 * tail panels, leftover rows) must compute, so the training numbers do not depend on the tiling.
 * Needs hardware FMA (the build contracts a*b+c into one); skipped without it. */
START_TEST(test_matmul_fast_is_fma_chain) {
#ifdef __FMA__
    pcg32 r = pcg32_derive(9, "t", 0);
    /* the last five run k in several blocks (an inner size over 256) and take the other paths: a
     * weight gradient reading a strided and b in place (600 x 66 -> 192, with 2 leftover rows),
     * b read in place as one panel (300 x 64 -> 64), a weight gradient with a packed and a
     * packed b wider than 512 (520 x 22 -> 528, 2 leftover rows), the input gradient reading w
     * transposed (90 x 300 -> 48), a weight gradient whose ragged b's last row is a k block of
     * its own (257 x 12 -> 37; also 133 x 64 -> 37 and 67 x 40 -> 129) */
    /* the last two shapes are all zeros, the gradients accumulated onto -0: g = -0 (each dinp a
     * chain of -0 products), then x = -0 (each dw such a chain), so a fast path that turns the
     * broadcast -0 into +0 (as 0 + x would) ends at +0 where the chain ends at -0 */
    int shapes[][3] = {{133, 64, 37},  {128, 64, 192}, {70, 256, 64}, {5, 17, 100},   {67, 40, 129},  {200, 64, 256},
                       {600, 66, 192}, {300, 64, 64},  {520, 22, 528}, {90, 300, 48}, {257, 12, 37}, {64, 64, 48},  {64, 64, 48}};
    int nsh = (int)(sizeof shapes / sizeof *shapes);
    for (int sh = 0; sh < nsh; sh++) {
        int N = shapes[sh][0], IC = shapes[sh][1], OC = shapes[sh][2];
        float *x = LCG_NEW(float, N * IC), *w = LCG_NEW(float, IC * OC), *g = LCG_NEW(float, N * OC);
        float *y = LCG_NEW(float, N * OC), *dx = LCG_NEW(float, N * IC), *dw = LCG_NEW(float, IC * OC);
        float *dx0 = LCG_NEW(float, N * IC), *dw0 = LCG_NEW(float, IC * OC);
        for (int i = 0; i < N * IC; i++) x[i] = (float)pcg32_normal(&r), dx[i] = dx0[i] = (float)pcg32_normal(&r);
        for (int i = 0; i < IC * OC; i++) w[i] = (float)pcg32_normal(&r), dw[i] = dw0[i] = (float)pcg32_normal(&r);
        for (int i = 0; i < N * OC; i++) g[i] = (float)pcg32_normal(&r);
        if (sh >= nsh - 2) {
            float gz = sh == nsh - 2 ? -0.0f : 0.0f, xz = sh == nsh - 2 ? 0.0f : -0.0f;
            for (int i = 0; i < N * IC; i++) x[i] = xz, dx[i] = dx0[i] = -0.0f;
            for (int i = 0; i < IC * OC; i++) w[i] = 0.0f, dw[i] = dw0[i] = -0.0f;
            for (int i = 0; i < N * OC; i++) g[i] = gz;
        }
        matmul_forward(y, x, w, N, IC, OC);
        matmul_backward(dx, dw, g, x, w, N, IC, OC);
        for (int n = 0; n < N; n++)
            for (int o = 0; o < OC; o++) {
                float acc = 0;
                for (int i = 0; i < IC; i++) acc = fmaf(x[n * IC + i], w[i * OC + o], acc);
                ck_assert_msg(memcmp(&y[n * OC + o], &acc, sizeof acc) == 0, "forward %dx%dx%d [%d][%d]: %.9g vs %.9g", N,
                              IC, OC, n, o, y[n * OC + o], acc);
            }
        for (int n = 0; n < N; n++)
            for (int i = 0; i < IC; i++) {
                float acc = dx0[n * IC + i];
                for (int o = 0; o < OC; o++) acc = fmaf(g[n * OC + o], w[i * OC + o], acc);
                ck_assert_msg(memcmp(&dx[n * IC + i], &acc, sizeof acc) == 0, "dinp %dx%dx%d [%d][%d]", N, IC, OC, n, i);
            }
        for (int i = 0; i < IC; i++)
            for (int o = 0; o < OC; o++) {
                float acc = dw0[i * OC + o];
                for (int n = 0; n < N; n++) acc = fmaf(x[n * IC + i], g[n * OC + o], acc);
                ck_assert_msg(memcmp(&dw[i * OC + o], &acc, sizeof acc) == 0, "dw %dx%dx%d [%d][%d]", N, IC, OC, i, o);
            }
        lcg_free(x), lcg_free(w), lcg_free(g), lcg_free(y), lcg_free(dx), lcg_free(dw), lcg_free(dx0), lcg_free(dw0);
    }
#else
    printf("SKIP test_matmul_fast_is_fma_chain: built without FMA\n");
#endif
}
END_TEST

/* -- rmsnorm -- */
typedef struct {
    double *out, *rstd, *inp, *w, *proj;
    int N, C;
} rn_ctx;
static double rn_loss(void *p) {
    rn_ctx *c = p;
    rmsnorm_forward_f64(c->out, c->rstd, c->inp, c->w, c->N, c->C);
    return tu_dot(c->out, c->proj, (size_t)c->N * c->C);
}
START_TEST(test_rmsnorm_backward_fd) {
    pcg32 r = pcg32_derive(3, "t", 0);
    int N = 6, C = 10;
    rn_ctx c = {LCG_NEW(double, N * C), LCG_NEW(double, N), LCG_NEW(double, N * C), LCG_NEW(double, C),
                LCG_NEW(double, N * C), N, C};
    tu_fill(c.inp, N * C, &r, 2), tu_fill(c.w, C, &r, 0.3), tu_fill(c.proj, N * C, &r, 1);
    rn_loss(&c);
    double *dinp = LCG_NEW(double, N * C), *dw = LCG_NEW(double, C);
    rmsnorm_backward_f64(dinp, dw, c.proj, c.inp, c.w, c.rstd, N, C);
    tu_fd_check("rmsnorm dinp", rn_loss, &c, c.inp, dinp, N * C);
    tu_fd_check("rmsnorm dw", rn_loss, &c, c.w, dw, C);
    /* unit RMS output when w = 0 */
    for (int i = 0; i < C; i++) c.w[i] = 0;
    rn_loss(&c);
    for (int n = 0; n < N; n++) {
        double ss = tu_dot(c.out + n * C, c.out + n * C, C) / C;
        ck_assert_double_eq_tol(ss, 1.0, 1e-5);
    }
    lcg_free(c.out), lcg_free(c.rstd), lcg_free(c.inp), lcg_free(c.w), lcg_free(c.proj), lcg_free(dinp), lcg_free(dw);
}
END_TEST

/* -- encoder -- */
typedef struct {
    double *out, *emb, *proj;
    int *tok, N, C;
} en_ctx;
static double en_loss(void *p) {
    en_ctx *c = p;
    encoder_forward_f64(c->out, c->tok, c->emb, c->N, c->C);
    return tu_dot(c->out, c->proj, (size_t)c->N * c->C);
}
START_TEST(test_encoder_backward_fd) {
    pcg32 r = pcg32_derive(4, "t", 0);
    int N = 7, C = 5, V = 4, tok[7] = {0, 3, 3, 1, 0, 2, 3};
    en_ctx c = {LCG_NEW(double, N * C), LCG_NEW(double, V * C), LCG_NEW(double, N * C), tok, N, C};
    tu_fill(c.emb, V * C, &r, 1), tu_fill(c.proj, N * C, &r, 1);
    double *demb = LCG_NEW(double, V * C);
    encoder_backward_f64(demb, c.proj, tok, N, C);
    tu_fd_check("encoder", en_loss, &c, c.emb, demb, V * C);
    lcg_free(c.out), lcg_free(c.emb), lcg_free(c.proj), lcg_free(demb);
}
END_TEST

/* -- geglu -- */
typedef struct {
    double *out, *gu, *proj;
    int N, F;
} gg_ctx;
static double gg_loss(void *p) {
    gg_ctx *c = p;
    geglu_forward_f64(c->out, c->gu, c->N, c->F);
    return tu_dot(c->out, c->proj, (size_t)c->N * c->F);
}
START_TEST(test_geglu_backward_fd) {
    pcg32 r = pcg32_derive(5, "t", 0);
    int N = 5, F = 9;
    gg_ctx c = {LCG_NEW(double, N * F), LCG_NEW(double, N * 2 * F), LCG_NEW(double, N * F), N, F};
    tu_fill(c.gu, N * 2 * F, &r, 2), tu_fill(c.proj, N * F, &r, 1);
    double *dgu = LCG_NEW(double, N * 2 * F);
    geglu_backward_f64(dgu, c.proj, c.gu, N, F);
    tu_fd_check("geglu", gg_loss, &c, c.gu, dgu, N * 2 * F);
    /* gelu_tanh(1) = 0.841192 (tanh approximation) */
    double gu[2] = {1.0, 1.0}, o;
    geglu_forward_f64(&o, gu, 1, 1);
    ck_assert_double_eq_tol(o, 0.8411919906082768, 1e-12);
    lcg_free(c.out), lcg_free(c.gu), lcg_free(c.proj), lcg_free(dgu);
}
END_TEST

/* -- rope -- */
typedef struct {
    double *qkv, *work, *proj;
    int B, T, H, D;
} rp_ctx;
static double rp_loss(void *p) {
    rp_ctx *c = p;
    size_t n = (size_t)c->B * c->T * 3 * c->H * c->D;
    memcpy(c->work, c->qkv, sizeof(double) * n);
    rope_forward_f64(c->work, c->B, c->T, c->H, c->D);
    return tu_dot(c->work, c->proj, n);
}
START_TEST(test_rope_backward_fd) {
    pcg32 r = pcg32_derive(6, "t", 0);
    int B = 2, T = 5, H = 2, D = 6, n = B * T * 3 * H * D;
    rp_ctx c = {LCG_NEW(double, n), LCG_NEW(double, n), LCG_NEW(double, n), B, T, H, D};
    tu_fill(c.qkv, n, &r, 1), tu_fill(c.proj, n, &r, 1);
    double *g = LCG_NEW(double, n);
    memcpy(g, c.proj, sizeof(double) * n);
    rope_backward_f64(g, B, T, H, D);
    tu_fd_check("rope", rp_loss, &c, c.qkv, g, n);
    /* position 0 is the identity, v is untouched, norms are preserved */
    rp_loss(&c);
    for (int i = 0; i < 3 * H * D; i++) ck_assert_double_eq_tol(c.work[i], c.qkv[i], 1e-15);
    for (int t = 0; t < T; t++)
        for (int i = 2 * H * D; i < 3 * H * D; i++)
            ck_assert_double_eq(c.work[t * 3 * H * D + i], c.qkv[t * 3 * H * D + i]);
    /* the per-token path agrees with the batched one */
    double one[2 * 2 * 6];
    memcpy(one, c.qkv + 3 * 3 * H * D, sizeof one); /* b = 0, t = 3: q and k heads */
    rope_rotate_f64(one, 3, 2 * H, D);
    for (int i = 0; i < 2 * H * D; i++) ck_assert_double_eq_tol(one[i], c.work[3 * 3 * H * D + i], 1e-14);
    lcg_free(c.qkv), lcg_free(c.work), lcg_free(c.proj), lcg_free(g);
}
END_TEST

/* -- attention (every position encoding's slopes) -- */
typedef struct {
    double *out, *att, *qkv, *proj;
    float slopes[8];
    int B, T, H, D;
} at_ctx;
static double at_loss(void *p) {
    at_ctx *c = p;
    attention_forward_f64(c->out, c->att, c->qkv, NULL, c->slopes, LCG_ROW_SOFTMAX, 1.0, c->B, c->T, c->H, c->D);
    return tu_dot(c->out, c->proj, (size_t)c->B * c->T * c->H * c->D);
}
START_TEST(test_attention_backward_fd) {
    pcg32 r = pcg32_derive(7, "t", 0);
    int B = 2, T = 6, H = 4, D = 4, n = B * T * 3 * H * D;
    for (int pos = 0; pos < LCG_POS_COUNT; pos++) {
        at_ctx c = {LCG_NEW(double, B * T * H * D), LCG_NEW(double, B * H * T * T), LCG_NEW(double, n),
                    LCG_NEW(double, B * T * H * D), {0}, B, T, H, D};
        lcg_posenc_slopes(c.slopes, pos, H);
        tu_fill(c.qkv, n, &r, 1), tu_fill(c.proj, B * T * H * D, &r, 1);
        at_loss(&c);
        double *g = LCG_NEW(double, n);
        attention_backward_f64(g, NULL, c.proj, c.qkv, NULL, c.att, c.slopes, LCG_ROW_SOFTMAX, 1.0, B, T, H, D);
        tu_fd_check(lcg_posenc_at(pos)->name, at_loss, &c, c.qkv, g, n);
        /* causal rows sum to one and put no weight on the future */
        for (int bh = 0; bh < B * H; bh++)
            for (int t = 0; t < T; t++) {
                double s = 0;
                for (int j = 0; j < T; j++) {
                    double p = c.att[((size_t)bh * T + t) * T + j];
                    if (j > t) ck_assert_double_eq(p, 0);
                    s += p;
                }
                ck_assert_double_eq_tol(s, 1, 1e-12);
            }
        lcg_free(c.out), lcg_free(c.att), lcg_free(c.qkv), lcg_free(c.proj), lcg_free(g);
    }
}
END_TEST

START_TEST(test_posenc_slopes) {
    float s[8];
    lcg_posenc_slopes(s, LCG_POS_NAPE, 8);
    float want[8] = {1, 0.5f, 1.0f / 3, 0.25f, 0, 0, 0, 0};
    for (int h = 0; h < 8; h++) ck_assert_float_eq(s[h], want[h]);
    lcg_posenc_slopes(s, LCG_POS_ALIBI, 4);
    for (int h = 0; h < 4; h++) ck_assert_float_eq(s[h], 1.0f / (h + 1));
    lcg_posenc_slopes(s, LCG_POS_ROPE, 4);
    for (int h = 0; h < 4; h++) ck_assert_float_eq(s[h], 0);
    /* ALiBi penalises distance: with q = 0 the nearest key gets the most weight */
    double qkv[3 * 3] = {0}, out[3], att[9];
    for (int t = 0; t < 3; t++) qkv[t * 3 + 2] = t; /* v_t = t */
    float one = 1.0f;
    attention_forward_f64(out, att, qkv, NULL, &one, LCG_ROW_SOFTMAX, 1.0, 1, 3, 1, 1);
    ck_assert(att[2 * 3 + 2] > att[2 * 3 + 1] && att[2 * 3 + 1] > att[2 * 3 + 0]);
    ck_assert_double_eq_tol(att[2 * 3 + 1] / att[2 * 3 + 2], exp(-1.0), 1e-12);
}
END_TEST

/* -- softmax row and cross-entropy -- */
typedef struct {
    double *p, *s, *proj;
    int n;
} sm_ctx;
static double sm_loss(void *v) {
    sm_ctx *c = v;
    norm_row_forward_f64(c->p, c->s, c->n, LCG_ROW_SOFTMAX, 1.0);
    return tu_dot(c->p, c->proj, c->n);
}
START_TEST(test_softmax_row_fd) {
    pcg32 r = pcg32_derive(8, "t", 0);
    double s[9], p[9], proj[9], ds[9];
    sm_ctx c = {p, s, proj, 9};
    tu_fill(s, 9, &r, 3), tu_fill(proj, 9, &r, 1);
    sm_loss(&c);
    norm_row_backward_f64(ds, p, proj, 9, LCG_ROW_SOFTMAX, 1.0);
    tu_fd_check("softmax row", sm_loss, &c, s, ds, 9);
    /* huge scores stay finite; a row of length 1 is weight 1 */
    double big[3] = {1e4, -1e4, 1e4 - 1}, pb[3];
    norm_row_forward_f64(pb, big, 3, LCG_ROW_SOFTMAX, 1.0);
    ck_assert_double_eq_tol(pb[0] + pb[1] + pb[2], 1, 1e-12);
    ck_assert_double_eq(pb[1], 0);
    double one = -7, p1;
    norm_row_forward_f64(&p1, &one, 1, LCG_ROW_SOFTMAX, 1.0);
    ck_assert_double_eq(p1, 1);
}
END_TEST

typedef struct {
    double *losses, *logits;
    int *tgt;
    unsigned char *mask;
    int N, V;
} ce_ctx;
static double ce_loss(void *v) {
    ce_ctx *c = v;
    crossentropy_forward_f64(c->losses, c->logits, c->tgt, c->mask, c->N, c->V);
    double s = 0;
    for (int n = 0; n < c->N; n++) s += c->losses[n];
    return s / 3; /* 3 masked rows */
}
START_TEST(test_crossentropy_fd) {
    pcg32 r = pcg32_derive(9, "t", 0);
    int N = 5, V = 7, tgt[5] = {1, 6, 0, 3, 2};
    unsigned char mask[5] = {1, 0, 1, 1, 0};
    ce_ctx c = {LCG_NEW(double, N), LCG_NEW(double, N * V), tgt, mask, N, V};
    tu_fill(c.logits, N * V, &r, 2);
    double *d = LCG_NEW(double, N * V);
    crossentropy_backward_f64(d, c.logits, tgt, mask, 1.0 / 3, N, V);
    tu_fd_check("cross-entropy", ce_loss, &c, c.logits, d, N * V);
    ce_loss(&c);
    ck_assert_double_eq(c.losses[1], 0);
    /* uniform logits: loss = log V */
    for (int i = 0; i < V; i++) c.logits[i] = 0.5;
    ce_loss(&c);
    ck_assert_double_eq_tol(c.losses[0], log(V), 1e-12);
    lcg_free(c.losses), lcg_free(c.logits), lcg_free(d);
}
END_TEST

START_TEST(test_registry_lookup) {
    ck_assert_ptr_nonnull(lcg_normalizer_find("softmax"));
    ck_assert_ptr_null(lcg_normalizer_find("softmax2"));
    for (int i = 0; i < LCG_POS_COUNT; i++) ck_assert_ptr_eq(lcg_posenc_find(lcg_posenc_at(i)->name), lcg_posenc_at(i));
    ck_assert_ptr_null(lcg_posenc_find("rotary"));
}
END_TEST

int main(void) {
    Suite *s = suite_create("kernels");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_pcg32_reference_demo);
    tcase_add_test(tc, test_pcg32_streams_differ);
    tcase_add_test(tc, test_matmul_backward_fd);
    tcase_add_test(tc, test_matmul_fast_matches_reference);
    tcase_add_test(tc, test_matmul_fast_is_fma_chain);
    tcase_add_test(tc, test_attention_fast_is_plain);
    tcase_add_test(tc, test_rmsnorm_backward_fd);
    tcase_add_test(tc, test_encoder_backward_fd);
    tcase_add_test(tc, test_geglu_backward_fd);
    tcase_add_test(tc, test_rope_backward_fd);
    tcase_add_test(tc, test_attention_backward_fd);
    tcase_add_test(tc, test_posenc_slopes);
    tcase_add_test(tc, test_softmax_row_fd);
    tcase_add_test(tc, test_crossentropy_fd);
    tcase_add_test(tc, test_registry_lookup);
    suite_add_tcase(s, tc);
    return tu_run_suite(s);
}
