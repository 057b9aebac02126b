/*
 * entmax.c: alpha-entmax and sparsemax on ONE row of n scores (the attention normalizer math;
 * attention.c's norm_row_forward/backward dispatch here). Spec: shared/spec/entmax.md §1, §2.1.
 *
 *   p_j = [(alpha-1) s_j - tau]_+^(1/(alpha-1)),  tau such that sum_j p_j = 1,  1 < alpha <= 2.
 *
 * Everything works on x_j = (alpha-1)(s_j - max s), so max x = 0 and tau lies in
 * [-1, -n^(1-alpha)]; keys with x_j <= -1 are provably zero and never enter the solve.
 * Thresholds and sums are accumulated in double in both builds (float and `_f64`).
 *
 *   entmax_bisect_row   the plain bisection reference (entmax library's EntmaxBisect: lower end
 *                       moves only when f(tau_m) >= 0; output from the last tau_m, renormalized).
 *   entmax_row          the fast exact path: the candidates x_j > -1, pruned further to those
 *                       above the top-8 bound max_k(m_k - k^(1-alpha)) (spec §1.2), then the
 *                       sort-based closed form for alpha = 1.5 and 2 when at most 64 keys are
 *                       left (O(m log m)); Newton from that bound otherwise (O(m) a step,
 *                       dropping keys below each iterate, order kept) and for other alpha
 *                       (monotone, never overshoots since f is convex for alpha <= 2) for
 *                       other alpha; bisection as the fallback if either check fails. Output
 *                       renormalized to sum 1. entmax_cand_solve is that solve alone, shared
 *                       with the blocked prefill (model/prefill.c), which streams the keys.
 *   sparsemax_row       = entmax_row with alpha = 2.
 *   entmax_row_backward the JVP ds_j = u_j (g_j - sum(u g)/sum(u)), u = p^(2-alpha) on p > 0.
 *
 * Deliberately NOT here: masking inside a row (the caller passes only the causal keys), rows
 * with NaN or +inf scores (undefined), alpha outside (1, 2] (fatal: alpha = 1 is softmax, use
 * that normalizer), the gradient w.r.t. alpha (§2.3; alpha is a constant here), and the
 * streaming of key tiles and CSR storage of spec §5 (the training attention materializes
 * T x T weights; the prefill streams keys itself and hands its candidates here).
 */
#include "kernels.h"
#include "real.h"
#include "util.h"

#include <math.h>
#include <stdlib.h>

typedef lcg_ent_cand ent_cand; /* a key that may be in the support (kernels.h) */

enum { ENT_GENERIC = 0, ENT_15, ENT_2 }; /* which power c = 1/(alpha-1) is: any, 2, 1 */
enum { ENT_STACK = 256, ENT_NEWTON_MAX = 100, ENT_BISECT_ITERS = 80, ENT_SORT_MAX = 64 };

static void ent_check_alpha(double alpha) {
    if (!(alpha > 1.0 && alpha <= 2.0))
        lcg_die("entmax: alpha %.17g outside (1, 2] (alpha = 1 is softmax)", alpha);
}

static int ent_mode(double alpha) { return alpha == 2.0 ? ENT_2 : alpha == 1.5 ? ENT_15 : ENT_GENERIC; }

/* t^c for t > 0 (callers mask t <= 0 before calling: 0^c and negative bases never happen) */
static inline double ent_pow(double t, double c, int mode) {
    return mode == ENT_2 ? t : mode == ENT_15 ? t * t : pow(t, c);
}

/* max of s[n] (n >= 1), in the row's own precision, returned as double */
/* the row max, or NaN if any score is NaN or infinite (the caller then outputs NaN: a bad
 * score must surface, not turn into a silent zero weight) */
static double ent_max(const real *s, int n) {
    real mx = s[0];
    int bad = 0;
    for (int j = 0; j < n; j++) {
        bad |= !isfinite(s[j]);
        mx = s[j] > mx ? s[j] : mx;
    }
    return bad ? NAN : (double)mx;
}

/* ---- bisection reference -------------------------------------------------------------------
 * f(tau) = sum_j [x_j - tau]_+^c - 1 over the whole row; bracket [-1, -n^(1-alpha)]. */
static double ent_f_row(const real *s, int n, double mx, double am1, double c, int mode,
                        double tau) {
    double f = -1.0;
    for (int j = 0; j < n; j++) {
        double t = am1 * ((double)s[j] - mx) - tau;
        if (t > 0) f += ent_pow(t, c, mode);
    }
    return f;
}

double KFN(entmax_bisect_row)(real *p /* n */, const real *s /* n */, int n, double alpha,
                              int n_iter) {
    ent_check_alpha(alpha);
    double am1 = alpha - 1.0, c = 1.0 / am1, mx = ent_max(s, n);
    int mode = ent_mode(alpha);
    if (isnan(mx)) {
        for (int j = 0; j < n; j++) p[j] = NAN;
        return NAN;
    }
    double lo = -1.0, hi = -pow((double)n, 1.0 - alpha), dt = hi - lo, tm = lo;
    for (int it = 0; it < n_iter; it++) {
        dt *= 0.5;
        tm = lo + dt;
        if (ent_f_row(s, n, mx, am1, c, mode, tm) >= 0) lo = tm; /* never a sign product */
    }
    if (n_iter <= 0) tm = lo;
    double sum = ent_f_row(s, n, mx, am1, c, mode, tm) + 1.0;
    if (!(sum > 0)) { /* cannot happen for finite rows: tm <= tau < 0 = max x */
        tm = lo;
        sum = ent_f_row(s, n, mx, am1, c, mode, tm) + 1.0;
    }
    for (int j = 0; j < n; j++) {
        double t = am1 * ((double)s[j] - mx) - tm;
        p[j] = t > 0 ? (real)(ent_pow(t, c, mode) / sum) : 0;
    }
    return tm;
}

/* ---- fast exact path on the candidate set --------------------------------------------------- */
static int ent_cmp_desc(const void *a, const void *b) {
    double x = ((const ent_cand *)a)->x, y = ((const ent_cand *)b)->x;
    return (x < y) - (x > y);
}

/* sorts cd[m] by x, descending (only the general path of entmax_cand_solve and the closed-form
 * reference sort keys; a training row of up to 64 candidates sorts its x values alone) */
static void ent_sort(ent_cand *cd, int m) {
    if (m > 32) {
        qsort(cd, (size_t)m, sizeof *cd, ent_cmp_desc);
        return;
    }
    for (int i = 1; i < m; i++) {
        ent_cand v = cd[i];
        int k = i;
        for (; k > 0 && cd[k - 1].x < v.x; k--) cd[k] = cd[k - 1];
        cd[k] = v;
    }
}

/* x[m] sorted descending: insertion-sorted runs of 16, then bottom-up merges through tmp[m] */
static double *ent_sort_desc(double *x, double *tmp, int m) {
    enum { RUN = 16 };
    for (int a = 0; a < m; a += RUN) {
        int b = a + RUN < m ? a + RUN : m;
        for (int i = a + 1; i < b; i++) {
            double v = x[i];
            int k = i;
            for (; k > a && x[k - 1] < v; k--) x[k] = x[k - 1];
            x[k] = v;
        }
    }
    for (int w = RUN; w < m; w *= 2) {
        for (int a = 0; a < m; a += 2 * w) {
            int mid = a + w < m ? a + w : m, b = a + 2 * w < m ? a + 2 * w : m, i = a, j = mid, o = a;
            while (i < mid && j < b) tmp[o++] = x[j] > x[i] ? x[j++] : x[i++];
            while (i < mid) tmp[o++] = x[i++];
            while (j < b) tmp[o++] = x[j++];
        }
        double *t = x;
        x = tmp, tmp = t;
    }
    return x;
}

/* f(tau) over the candidates (every key outside them has x <= -1 <= tau, contributing 0) */
static double ent_f_cand(const ent_cand *cd, int m, double c, int mode, double tau) {
    double f = -1.0;
    for (int i = 0; i < m; i++) {
        double t = cd[i].x - tau;
        if (t > 0) f += ent_pow(t, c, mode);
    }
    return f;
}

/* f(tau) over y[m] (the same sum in the same order as ent_f_cand) */
static double ent_f_y(const double *y, int m, double c, int mode, double tau) {
    double f = -1.0;
    for (int i = 0; i < m; i++) {
        double t = y[i] - tau;
        if (t > 0) f += ent_pow(t, c, mode);
    }
    return f;
}

/* ---- the closed forms (alpha = 2, 1.5), one step at a time --------------------------------
 * The one core both solves take every threshold from (entmax_cand_solve counts the keys in the
 * support, entmax_support_solve stops at the first key outside it), so their exact answers
 * cannot drift apart. Over y sorted descending, step k (1-based) adds y_k to the statistics of
 * the top k and returns their threshold tau_k; *in says whether key k is in the support by it:
 *   sparsemax: S_k = sum of the top k, tau_k = (S_k - 1)/k, in iff 1 + k y_k > S_k;
 *   entmax15 (x = (s - max)/2): mu_k, ss_k the mean and sum of squared deviations of the top k
 *   (Welford), tau_k = mu_k - sqrt(max(0, (1 - ss_k)/k)), in iff tau_k <= y_k. */
typedef struct {
    double S, mu, ss;
} ent_cf;

static inline double ent_cf_step(ent_cf *st, int mode, double y, int k, int *in) {
    if (mode == ENT_2) {
        st->S += y;
        *in = 1.0 + k * y > st->S;
        return (st->S - 1.0) / k;
    }
    double d = y - st->mu;
    st->mu += d / k;
    st->ss += d * (y - st->mu);
    double disc = (1.0 - st->ss) / k, tau = st->mu - sqrt(disc > 0 ? disc : 0);
    *in = tau <= y;
    return tau;
}

/* sparsemax closed form on y[m] sorted descending: tau = tau_{k*}, k* = #{k : key k in} */
static double ent_tau_sparsemax(const double *y, int m) {
    ent_cf st = {0};
    double tau = 0; /* k = 1 always qualifies: 1 + y_1 > y_1 */
    for (int k = 1; k <= m; k++) {
        int in;
        double t = ent_cf_step(&st, ENT_2, y[k - 1], k, &in);
        if (in) tau = t;
    }
    return tau;
}

/* entmax15 closed form on y[m] sorted descending: tau = tau_{k*}, k* = #{k : tau_k <= y_k} */
static double ent_tau_15(const double *y_sorted, int m) {
    double tau_at[ENT_SORT_MAX];
    ent_cf st = {0};
    int count = 0;
    for (int k = 1; k <= m; k++) {
        int in;
        double tau = ent_cf_step(&st, ENT_15, y_sorted[k - 1], k, &in);
        if (k <= ENT_SORT_MAX) tau_at[k - 1] = tau;
        count += in;
    }
    if (count == 0) return -1.0;
    if (count <= ENT_SORT_MAX) return tau_at[count - 1];
    /* a longer row: a second pass up to k* = count, where tau = tau_{k*} */
    double tau = -1.0;
    st = (ent_cf){0};
    for (int k = 1; k <= count; k++) {
        int in;
        tau = ent_cf_step(&st, ENT_15, y_sorted[k - 1], k, &in);
    }
    return tau;
}

/* Newton from the lower bound lb (>= -1): f is convex and decreasing, so iterates rise to the
 * root without overshooting; each iterate is a lower bound, so the keys at or below it are
 * dropped from cd[*m] as it goes (order kept). Stops when |f| is tiny and the support size is unchanged.
 * Returns 0 on success, -1 if something went wrong (non-finite, flat f, no convergence). */
static int ent_newton(ent_cand *cd, int *m_io, double c, int mode, double lb, double *tau_out) {
    double tau = lb;
    int prev_k = -1, m = *m_io;
    for (int it = 0; it < ENT_NEWTON_MAX; it++) {
        double f = -1.0, fp = 0; /* fp = -f'(tau) / c = sum t^(c-1) */
        int k = 0;
        for (int i = 0; i < m; i++) {
            double t = cd[i].x - tau;
            if (t <= 0) continue; /* mask before the power: c - 1 may be < 1 */
            double tc1 = mode == ENT_2 ? 1.0 : mode == ENT_15 ? t : pow(t, c - 1.0);
            f += tc1 * t;
            fp += tc1;
            cd[k++] = cd[i]; /* keys at or below an iterate (a lower bound) are zero: dropped */
        }
        m = *m_io = k;
        fp *= c;
        if (!isfinite(f) || !(fp > 0)) return -1;
        if (fabs(f) <= 1e-13 && k == prev_k) {
            *tau_out = tau;
            return 0;
        }
        double next = tau + f / fp;
        if (next == tau) { /* at the precision floor */
            *tau_out = tau;
            return fabs(f) <= 1e-9 ? 0 : -1;
        }
        tau = next;
        prev_k = k;
    }
    return -1;
}

/* bisection on the candidates, the last resort of the fast path */
static double ent_bisect_cand(const ent_cand *cd, int m, int n, double alpha, double c, int mode) {
    double lo = -1.0, dt = -pow((double)n, 1.0 - alpha) - lo, tm = lo;
    for (int it = 0; it < ENT_BISECT_ITERS; it++) {
        dt *= 0.5;
        tm = lo + dt;
        if (ent_f_cand(cd, m, c, mode, tm) >= 0) lo = tm;
    }
    return ent_f_cand(cd, m, c, mode, tm) > -1.0 ? tm : lo;
}

double KFN(entmax_closed_form_tau)(const real *s /* n */, int n, double alpha) {
    int mode = ent_mode(alpha);
    if (mode == ENT_GENERIC) lcg_die("entmax: no closed form for alpha = %g", alpha);
    double am1 = alpha - 1.0, mx = ent_max(s, n);
    ent_cand *cd = malloc(sizeof *cd * (size_t)n);
    if (!cd) lcg_die("entmax: out of memory for %d candidates", n);
    int m = 0;
    for (int j = 0; j < n; j++) {
        double x = am1 * ((double)s[j] - mx);
        if (x > -1.0) cd[m].x = x, cd[m].j = j, m++;
    }
    ent_sort(cd, m);
    double *y = malloc(sizeof *y * (size_t)(m ? m : 1));
    if (!y) lcg_die("entmax: out of memory for %d candidates", n);
    for (int i = 0; i < m; i++) y[i] = cd[i].x;
    double tau = mode == ENT_2 ? ent_tau_sparsemax(y, m) : ent_tau_15(y, m);
    free(y);
    free(cd);
    return tau;
}

/* the top-k bound from the nt <= 8 largest x, top[nt] descending */
static double ent_bound_top(const double *top, int nt, double alpha, int mode) {
    double bound = -1.0;
    for (int k = 2; k <= nt && k <= 8; k++) {
        double w = mode == ENT_2 ? 1.0 / k : mode == ENT_15 ? 1.0 / sqrt((double)k) : pow((double)k, 1.0 - alpha);
        bound = top[k - 1] - w > bound ? top[k - 1] - w : bound;
    }
    return bound;
}

/* top-k lower bound on tau (spec §1.2): with m_k the k-th largest x, the top k keys alone give
 * f(m_k - k^(1-alpha)) >= 0, so tau >= m_k - k^(1-alpha); k = 1 is the bound -1 (max x = 0) */
static double ent_topk_bound(const ent_cand *cd, int m, double alpha, int mode) {
    enum { K = 8 };
    double top[K];
    int nt = 0;
    for (int i = 0; i < m; i++) { /* the K largest x, descending */
        double x = cd[i].x;
        if (nt == K && x <= top[K - 1]) continue;
        int k = nt < K ? nt++ : K - 1;
        for (; k > 0 && top[k - 1] < x; k--) top[k] = top[k - 1];
        top[k] = x;
    }
    return ent_bound_top(top, nt, alpha, mode);
}

double KFN(entmax_cand_solve)(lcg_ent_cand *cd /* m */, int *m_io, int n, double alpha) {
    ent_check_alpha(alpha);
    double c = 1.0 / (alpha - 1.0);
    int mode = ent_mode(alpha), m = *m_io;
    if (mode != ENT_GENERIC && m <= ENT_SORT_MAX) {
        /* Up to 64 candidates (every training row of T <= 64): the x values alone, sorted; the
         * top-8 bound is read off their head and the keys above it are a prefix. That prefix is
         * the value sequence the general path below sorts after pruning, so tau, the check and
         * the sum (in that order) are bitwise its; the weights go back to the unsorted keys
         * (those pruned get 0, as they would by being absent). */
        double buf[2 * ENT_SORT_MAX];
        for (int i = 0; i < m; i++) buf[i] = cd[i].x;
        double *y = ent_sort_desc(buf, buf + ENT_SORT_MAX, m);
        double lb = ent_bound_top(y, m < 8 ? m : 8, alpha, mode);
        int mk = 0;
        while (mk < m && y[mk] > lb) mk++;
        double tau = mode == ENT_2 ? ent_tau_sparsemax(y, mk) : ent_tau_15(y, mk);
        if (isfinite(tau) && fabs(ent_f_y(y, mk, c, mode, tau)) <= 1e-9) {
            double sum = 0;
            for (int i = 0; i < mk; i++) {
                double t = y[i] - tau;
                sum += t > 0 ? ent_pow(t, c, mode) : 0;
            }
            for (int i = 0; i < m; i++) {
                double t = cd[i].x - tau;
                cd[i].x = t > 0 ? ent_pow(t, c, mode) / sum : 0;
            }
            return tau;
        }
    }
    /* prune to the keys above the top-8 bound (the rest are exactly zero), keeping their order */
    double lb = ent_topk_bound(cd, m, alpha, mode);
    int mk = 0;
    for (int i = 0; i < m; i++)
        if (cd[i].x > lb) cd[mk++] = cd[i];
    m = *m_io = mk;

    double tau = 0;
    int ok = -1;
    if (mode != ENT_GENERIC && m <= ENT_SORT_MAX) { /* many candidates: Newton, no sort */
        ent_sort(cd, m);
        double y[ENT_SORT_MAX];
        y[0] = cd[0].x; /* m >= 1: the largest key (x = 0) is above every bound */
        for (int i = 1; i < m; i++) y[i] = cd[i].x;
        tau = mode == ENT_2 ? ent_tau_sparsemax(y, m) : ent_tau_15(y, m);
        double f = ent_f_cand(cd, m, c, mode, tau);
        ok = isfinite(tau) && fabs(f) <= 1e-9 ? 0 : -1; /* cheap check of the closed form */
    }
    if (ok != 0) ok = ent_newton(cd, &m, c, mode, lb, &tau);
    if (ok != 0) tau = ent_bisect_cand(cd, m, n, alpha, c, mode);
    *m_io = m;

    /* weights, renormalized to sum 1 (sum > 0: the max key has x = 0 > -n^(1-alpha) >= tau) */
    double sum = 0;
    for (int i = 0; i < m; i++) {
        double t = cd[i].x - tau;
        cd[i].x = t > 0 ? ent_pow(t, c, mode) : 0;
        sum += cd[i].x;
    }
    for (int i = 0; i < m; i++) cd[i].x /= sum;
    return tau;
}

/* ---- the evaluation solve: one tau for any safe superset of the support ------------------------
 * entmax_cand_solve's result depends on which keys below tau it is handed (they decide between
 * the closed form and Newton, and Newton's path), so two callers that prune differently (the
 * decoder's row, the prefill's streaming bound) could differ in the last bits. This solve does
 * not: for alpha 1.5 and 2 the closed form over the sorted candidates, whose tau is a function
 * of the support's prefix only (the scan stops at the first k with tau_k > y_k, where the
 * support ends; the keys after it are never read); for other alpha, or if the closed form's
 * check fails, Newton to find the support S, then Newton again on S alone from S's own top-8
 * bound (a function of S only). Adding a zero weight leaves the renormalizing sum unchanged. */
/* the closed form's tau over the support's prefix of y[m] (sorted descending): the steps of
 * ent_cf_step up to the first key outside the support, whose tau is not taken */
static double ent_tau_prefix(const double *y, int m, int mode) {
    ent_cf st = {0};
    double tau = -1.0;
    for (int k = 1; k <= m; k++) {
        int in;
        double t = ent_cf_step(&st, mode, y[k - 1], k, &in);
        if (!in) break;
        tau = t;
    }
    return tau;
}

double KFN(entmax_support_solve)(lcg_ent_cand *cd /* m */, int *m_io, int n, double alpha) {
    ent_check_alpha(alpha);
    double c = 1.0 / (alpha - 1.0), tau = 0, sum = 0;
    int mode = ent_mode(alpha), m = *m_io, ok = -1;
    if (mode != ENT_GENERIC && m > 0) { /* no pruning first: the sorted prefix is all the scan reads */
        double stack[2 * ENT_STACK], *buf = m <= ENT_STACK ? stack : malloc(sizeof(double) * 2 * (size_t)m);
        if (!buf) lcg_die("entmax: out of memory for %d candidates", m);
        for (int i = 0; i < m; i++) buf[i] = cd[i].x;
        double *y = ent_sort_desc(buf, buf + m, m);
        tau = ent_tau_prefix(y, m, mode);
        /* f(tau) and the weights' sum in descending order (entmax_cand_solve's order) */
        double f = -1.0;
        for (int i = 0; i < m && y[i] > tau; i++) {
            double p = ent_pow(y[i] - tau, c, mode);
            f += p, sum += p;
        }
        ok = isfinite(tau) && fabs(f) <= 1e-9 ? 0 : -1;
        if (buf != stack) free(buf);
    }
    if (ok != 0) {
        /* prune to the top-8 bound, Newton finds the support; then the canonical solve on the
         * support alone */
        double lb = ent_topk_bound(cd, m, alpha, mode);
        int mk = 0;
        for (int i = 0; i < m; i++)
            if (cd[i].x > lb) cd[mk++] = cd[i];
        m = mk;
        if (ent_newton(cd, &m, c, mode, lb, &tau) != 0) tau = ent_bisect_cand(cd, m, n, alpha, c, mode);
        int k = 0;
        for (int i = 0; i < m; i++)
            if (cd[i].x > tau) cd[k++] = cd[i];
        m = k;
        double lb2 = ent_topk_bound(cd, m, alpha, mode);
        if (ent_newton(cd, &m, c, mode, lb2, &tau) != 0) tau = ent_bisect_cand(cd, m, n, alpha, c, mode);
        sum = 0;
        for (int i = 0; i < m; i++) {
            double t = cd[i].x - tau;
            sum += t > 0 ? ent_pow(t, c, mode) : 0;
        }
    }
    *m_io = m;
    for (int i = 0; i < m; i++) {
        double t = cd[i].x - tau;
        cd[i].x = t > 0 ? ent_pow(t, c, mode) / sum : 0;
    }
    return tau;
}

/* entmax_row with the solve `solve` (entmax_cand_solve or entmax_support_solve) */
static double ent_row(real *p, const real *s, int n, double alpha,
                      double (*solve)(lcg_ent_cand *, int *, int, double));

double KFN(entmax_row)(real *p /* n */, const real *s /* n */, int n, double alpha) {
    return ent_row(p, s, n, alpha, KFN(entmax_cand_solve));
}

double KFN(entmax_row_eval)(real *p /* n */, const real *s /* n */, int n, double alpha) {
    return ent_row(p, s, n, alpha, KFN(entmax_support_solve));
}

static double ent_row(real *p, const real *s, int n, double alpha,
                      double (*solve)(lcg_ent_cand *, int *, int, double)) {
    ent_check_alpha(alpha);
    if (n == 1) {
        p[0] = 1;
        return -1.0;
    }
    double am1 = alpha - 1.0, mx = ent_max(s, n);
    if (isnan(mx)) {
        for (int j = 0; j < n; j++) p[j] = NAN;
        return NAN;
    }

    /* candidates: x_j > -1 (tau >= -1, so the rest are exactly zero) */
    ent_cand stack[ENT_STACK], *cd = stack;
    stack[0] = (ent_cand){0, 0}; /* always overwritten (the max key is a candidate); quiets gcc */
    int m = 0;
    for (int j = 0; j < n; j++) {
        double x = am1 * ((double)s[j] - mx);
        p[j] = 0;
        if (x > -1.0) {
            if (m == ENT_STACK) { /* long row with many candidates: move to the heap once */
                ent_cand *h = malloc(sizeof *h * (size_t)n);
                if (!h) lcg_die("entmax: out of memory for %d candidates", n);
                for (int i = 0; i < m; i++) h[i] = stack[i];
                cd = h;
            }
            cd[m].x = x;
            cd[m].j = j;
            m++;
        }
    }
    double tau = solve(cd, &m, n, alpha);
    for (int i = 0; i < m; i++) p[cd[i].j] = (real)cd[i].x;
    if (cd != stack) free(cd);
    return tau;
}

double KFN(sparsemax_row)(real *p /* n */, const real *s /* n */, int n) {
    return KFN(entmax_row)(p, s, n, 2.0);
}

/* the row table's entries (registry.c): the rows above in its signature */
void KFN(entmax_row_fwd)(real *p, const real *s, int n, double alpha) { KFN(entmax_row)(p, s, n, alpha); }
void KFN(sparsemax_row_fwd)(real *p, const real *s, int n, double alpha) {
    (void)alpha; /* always 2 */
    KFN(sparsemax_row)(p, s, n);
}
void KFN(entmax_row_eval_fwd)(real *p, const real *s, int n, double alpha) { KFN(entmax_row_eval)(p, s, n, alpha); }

/* ---- backward (JVP) --------------------------------------------------------------------------
 * ds_j = u_j (g_j - sum_k u_k g_k / sum_k u_k), u_j = p_j^(2-alpha) where p_j > 0, else 0. */
void KFN(entmax_row_backward)(real *ds /* n */, const real *p /* n */, const real *g /* n */,
                              int n, double alpha) {
    ent_check_alpha(alpha);
    int mode = ent_mode(alpha);
    double su = 0, sug = 0;
    for (int j = 0; j < n; j++) {
        if (!(p[j] > 0)) {
            ds[j] = 0;
            continue;
        }
        double u = mode == ENT_2 ? 1.0 : mode == ENT_15 ? sqrt((double)p[j]) : pow((double)p[j], 2.0 - alpha);
        ds[j] = (real)u;
        su += u;
        sug += u * (double)g[j];
    }
    if (!(su > 0)) return; /* no support: only for an all-zero p, never from the forward */
    double r = sug / su;
    for (int j = 0; j < n; j++)
        if (ds[j] != 0) ds[j] = (real)((double)ds[j] * ((double)g[j] - r));
}
