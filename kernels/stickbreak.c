/*
 * stickbreak.c: stick-breaking attention on ONE row of n scores (the reference's
 * `attn_type: stick-break`, spec §4.2). The row's last key is the query itself (j = n - 1 = i),
 * which gets no weight; for j < i
 *
 *   A_ij = sigma(z_ij) * prod_{j<m<i} (1 - sigma(z_im)),
 *
 * z = the caller's score, q.k/sqrt(D) (RoPE'd under rope): the row table marks this row
 * no_bias, so the model gives it no ALiBi/NAPE term, as the reference (under alibi and nape
 * stick-break is NoPE). The remainder 1 - sum A is dropped, so a row need not sum to 1 (row 0 is
 * all zeros). Computed in log space, in double, newest key first:
 * log A_ij = log sigma(z_ij) + sum_{j<m<i} log sigma(-z_im), with log sigma(x) = -softplus(-x);
 * once that running sum is below -800 every older weight underflows and is exactly 0. The only
 * memory is the row itself (O(n) per query row at evaluation).
 *
 * Backward (needs the scores: training recomputes them), with sigma_m = sigma(z_m), m < i:
 *   ds_m = g_m A_m (1 - sigma_m) - sigma_m sum_{j<m} g_j A_j,   ds_i = 0.
 * A NaN score gives NaN weights. Not here: the reference's Triton kernels and its fp32 decode.
 */
#include "kernels.h"
#include "real.h"
#include "util.h"

#include <math.h>

/* log sigma(x) = -softplus(-x), stable for any finite x */
static double log_sigmoid(double x) { return x >= 0 ? -log1p(exp(-x)) : x - log1p(exp(x)); }

void KFN(stickbreak_row)(real *p, const real *s, int n, double alpha) {
    (void)alpha;
    for (int j = 0; j < n; j++)
        if (s[j] != s[j]) {
            for (int i = 0; i < n; i++) p[i] = (real)NAN;
            return;
        }
    p[n - 1] = 0;
    double acc = 0; /* sum of log(1 - sigma) over the keys newer than j */
    int j = n - 2;
    for (; j >= 0 && acc > -800.0; j--) {
        double z = (double)s[j];
        p[j] = (real)exp(log_sigmoid(z) + acc);
        acc += log_sigmoid(-z);
    }
    for (; j >= 0; j--) p[j] = 0;
}

void KFN(stickbreak_row_backward)(real *ds, const real *p, const real *g, const real *s, int n, double alpha) {
    (void)alpha;
    double pre = 0; /* sum_{j<m} g_j A_j */
    for (int m = 0; m < n - 1; m++) {
        double sg = 1.0 / (1.0 + exp(-(double)s[m]));
        double ga = (double)g[m] * (double)p[m];
        ds[m] = (real)(ga * (1.0 - sg) - sg * pre);
        pre += ga;
    }
    ds[n - 1] = 0;
}
