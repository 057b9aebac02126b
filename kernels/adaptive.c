/*
 * adaptive.c: adaptive-temperature softmax on ONE row of n scores (the reference's
 * `poly_fit: True`, spec §4.2; Velickovic et al., "softmax is not enough"):
 *
 *   p0 = softmax(s);  H = -sum p0 log(p0 + 1e-9);
 *   beta = max(P(H), 1) if H > 0.5, else 1;   p = softmax(beta s),
 *
 * P(H) = c0 + c1 H + c2 H^2 + c3 H^3 + c4 H^4, c = (-0.037, 0.481, -2.3, 4.917, -1.791): the
 * coefficients in ASCENDING powers, as the reference evaluates them. The original method
 * writes them for a descending polyval (c0 the H^4 coefficient); spec §8 item 7 asks whether
 * the reference's order is intended. With it, P(H) < 1 for H > ~2.7 nats, so long rows
 * (high entropy) get beta = 1: plain softmax. Kept as implemented (ADAPT_DESCENDING below
 * is the other reading, off).
 *
 * Backward through beta too (the formula as autograd sees it, no stop-gradient): with
 * dz = p (g - p.g), ds = beta dz + [active] dbeta P'(H) * p0 (h - p0.h), dbeta = s.dz,
 * h_j = -log(p0_j + 1e-9) - p0_j / (p0_j + 1e-9); "active" is H > 0.5 and P(H) > 1. Needs the
 * scores (training recomputes them). Everything in double. A NaN score gives NaN weights.
 * Not here: a streamed prefill (model/prefill.c scores the full row, O(n)).
 */
#include "kernels.h"
#include "real.h"
#include "util.h"

#include <math.h>

enum { ADAPT_DESCENDING = 0 }; /* 1: the original method's order (not the reference's) */
static const double adapt_c[5] = {-0.037, 0.481, -2.3, 4.917, -1.791};
#define ADAPT_EPS 1e-9
#define ADAPT_H0 0.5

/* P(H) and P'(H) */
static double adapt_poly(double H, double *dP) {
    double c[5];
    for (int k = 0; k < 5; k++) c[k] = ADAPT_DESCENDING ? adapt_c[4 - k] : adapt_c[k];
    double P = 0, D = 0, hk = 1;
    for (int k = 0; k < 5; k++) {
        P += c[k] * hk;
        if (k < 4) D += (k + 1) * c[k + 1] * hk;
        hk *= H;
    }
    *dP = D;
    return P;
}

/* p0 = softmax(s) into q (double) and its entropy; beta and whether it is active */
static double adapt_beta(double *q, const real *s, int n, double *H_out, int *active) {
    double mx = (double)s[0], sum = 0, H = 0;
    for (int j = 1; j < n; j++) mx = (double)s[j] > mx ? (double)s[j] : mx;
    for (int j = 0; j < n; j++) sum += q[j] = exp((double)s[j] - mx);
    for (int j = 0; j < n; j++) {
        q[j] /= sum;
        H -= q[j] * log(q[j] + ADAPT_EPS);
    }
    double dP, P = adapt_poly(H, &dP);
    *H_out = H;
    *active = H > ADAPT_H0 && P > 1.0;
    return *active ? P : 1.0;
}

/* p = softmax(beta s), in double through p's storage when real is double, else exact in p */
static void softmax_scaled(real *p, const real *s, int n, double beta) {
    double mx = (double)s[0], sum = 0;
    for (int j = 1; j < n; j++) mx = (double)s[j] > mx ? (double)s[j] : mx;
    for (int j = 0; j < n; j++) sum += exp(beta * ((double)s[j] - mx));
    for (int j = 0; j < n; j++) p[j] = (real)(exp(beta * ((double)s[j] - mx)) / sum);
}

void KFN(adaptive_softmax_row)(real *p, const real *s, int n, double alpha) {
    (void)alpha;
    for (int j = 0; j < n; j++)
        if (s[j] != s[j]) {
            for (int i = 0; i < n; i++) p[i] = (real)NAN;
            return;
        }
    /* p0 lives in p while beta is found: only p0's sum and entropy are needed */
    double mx = (double)s[0], sum = 0, H = 0;
    for (int j = 1; j < n; j++) mx = (double)s[j] > mx ? (double)s[j] : mx;
    for (int j = 0; j < n; j++) sum += exp((double)s[j] - mx);
    for (int j = 0; j < n; j++) {
        double q = exp((double)s[j] - mx) / sum;
        H -= q * log(q + ADAPT_EPS);
    }
    double dP, P = adapt_poly(H, &dP);
    softmax_scaled(p, s, n, H > ADAPT_H0 && P > 1.0 ? P : 1.0);
}

/* the row's beta (tests, and the PyTorch cross-check's reading) */
double KFN(adaptive_softmax_beta)(const real *s, int n) {
    double *q = LCG_NEW(double, n), H;
    int active;
    double b = adapt_beta(q, s, n, &H, &active);
    lcg_free(q);
    return b;
}

void KFN(adaptive_softmax_row_backward)(real *ds, const real *p, const real *g, const real *s, int n, double alpha) {
    (void)alpha;
    double stack[2 * 128], *q = n <= 128 ? stack : LCG_NEW(double, 2 * (size_t)n), *dz = q + n, H;
    int active;
    double beta = adapt_beta(q, s, n, &H, &active), pg = 0, dbeta = 0, dH = 0, qh = 0;
    for (int j = 0; j < n; j++) pg += (double)p[j] * (double)g[j];
    for (int j = 0; j < n; j++) {
        dz[j] = (double)p[j] * ((double)g[j] - pg);
        dbeta += (double)s[j] * dz[j];
    }
    if (active) {
        double dP;
        adapt_poly(H, &dP);
        dH = dbeta * dP;
        for (int j = 0; j < n; j++) qh += q[j] * (-log(q[j] + ADAPT_EPS) - q[j] / (q[j] + ADAPT_EPS));
    }
    for (int j = 0; j < n; j++) {
        double d = beta * dz[j];
        if (active) d += dH * q[j] * (-log(q[j] + ADAPT_EPS) - q[j] / (q[j] + ADAPT_EPS) - qh);
        ds[j] = (real)d;
    }
    if (q != stack) lcg_free(q);
}
