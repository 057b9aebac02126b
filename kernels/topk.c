/*
 * topk.c: top-k attention on ONE row of n scores (the reference's `attn_type: topk`, spec §4.2):
 * softmax over the k largest scores of the row (the caller's scores already hold the causal
 * mask, the length scale and the ALiBi/NAPE bias), every other weight exactly 0.
 *
 *   k = K                      (--topk K, the rule "fixed")
 *   k = max(K, floor(n / 2))   (the reference's `div-2` rule; n = the keys this row sees,
 *                               i + 1, where the reference takes the batch's key length)
 *
 * The row parameter (the model config's `alpha` slot) carries the rule: +K fixed, -K div-2.
 * Ties at the k-th largest score: every key above it is kept, then keys equal to it from the
 * NEWEST (largest index) down until k are kept; the rule is the same in training, decoding and
 * the prefill, so their supports agree bit for bit. k >= n is plain softmax. A NaN score gives
 * NaN weights (as softmax_row). The selection is O(n): a 3-way quickselect (median of three,
 * no randomness) in p itself, which the weights then overwrite; no scratch memory.
 *
 * The backward is softmax's, ds_j = p_j (g_j - sum_k p_k g_k): the unselected keys have p_j = 0
 * and so ds_j = 0 (the selection is piecewise constant; the reference recomputes it the same
 * way in its backward). Not here: a streamed prefill (model/prefill.c scores the full row, O(n)).
 */
#include "kernels.h"
#include "real.h"
#include "util.h"

#include <math.h>

/* the k of a row of n keys for the row parameter param (+K fixed, -K div-2) */
static int topk_k(double param, int n) {
    int K = (int)fabs(param);
    if (param < 0 && n / 2 > K) K = n / 2;
    return K < 1 ? 1 : K;
}

static void swap_r(real *a, real *b) {
    real t = *a;
    *a = *b;
    *b = t;
}

/* the value of rank k (0-based, descending) of a[0..n): a 3-way quickselect, a permuted */
static real kth_largest(real *a, int n, int k) {
    int lo = 0, hi = n; /* the answer's rank lies in [lo, hi) */
    for (;;) {
        if (hi - lo <= 1) return a[lo];
        int mid = lo + (hi - lo) / 2;
        real x = a[lo], y = a[mid], z = a[hi - 1], piv; /* median of three */
        piv = x > y ? (y > z ? y : (x > z ? z : x)) : (x > z ? x : (y > z ? z : y));
        /* [lo, gt) > piv, [gt, i) == piv, [eq_end, hi) < piv */
        int gt = lo, i = lo, lt = hi;
        while (i < lt) {
            if (a[i] > piv) swap_r(&a[i++], &a[gt++]);
            else if (a[i] < piv) swap_r(&a[i], &a[--lt]);
            else i++;
        }
        if (k < gt) hi = gt;
        else if (k < lt) return piv;
        else lo = lt;
    }
}

void KFN(topk_row)(real *p, const real *s, int n, double param) {
    int k = topk_k(param, n);
    real mx = s[0];
    for (int j = 0; j < n; j++) {
        if (s[j] != s[j]) { /* NaN */
            for (int i = 0; i < n; i++) p[i] = (real)NAN;
            return;
        }
        mx = s[j] > mx ? s[j] : mx;
    }
    if (k >= n) {
        KFN(softmax_row)(p, s, n, 1.0);
        return;
    }
    for (int j = 0; j < n; j++) p[j] = s[j];
    real th = kth_largest(p, n, k - 1);
    int above = 0;
    for (int j = 0; j < n; j++) above += s[j] > th;
    int ties = k - above; /* keys equal to th to keep, newest first */
    for (int j = n - 1; j >= 0; j--) {
        int keep = s[j] > th || (s[j] == th && ties-- > 0);
        p[j] = keep ? 1 : 0;
    }
    double sum = 0;
    for (int j = 0; j < n; j++)
        if (p[j] != 0) {
            p[j] = r_exp(s[j] - mx);
            sum += p[j];
        }
    real inv = (real)(1.0 / sum);
    for (int j = 0; j < n; j++) p[j] *= inv;
}

/* the effective k, for tests and diagnostics */
int KFN(topk_row_k)(double param, int n) { return topk_k(param, n); }
