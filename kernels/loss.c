/*
 * loss.c: masked softmax cross-entropy over the vocabulary, per row. The mean over rows is
 * the caller's (a serial sum, for determinism).
 */
#include "kernels.h"
#include "real.h"

#include <math.h>

/* the row's max (to *mx) and sum_v e^(l_v - max), summed in double in order */
static double row_expsum(const real *l, int V, real *mx_out) {
    real mx = l[0];
    for (int v = 1; v < V; v++) mx = l[v] > mx ? l[v] : mx;
    double s = 0;
    for (int v = 0; v < V; v++) s += exp((double)(l[v] - mx));
    *mx_out = mx;
    return s;
}

void KFN(crossentropy_forward)(real *losses, const real *logits, const int *targets,
                               const unsigned char *mask, int N, int V) {
#pragma omp parallel for schedule(static) if (N * V > 16384)
    for (int n = 0; n < N; n++) {
        if (!mask[n]) {
            losses[n] = 0;
            continue;
        }
        const real *l = logits + (size_t)n * V;
        real mx;
        double s = row_expsum(l, V, &mx);
        losses[n] = (real)(log(s) + mx - l[targets[n]]);
    }
}

void KFN(crossentropy_backward)(real *dlogits, const real *logits, const int *targets,
                                const unsigned char *mask, real scale, int N, int V) {
#pragma omp parallel for schedule(static) if (N * V > 16384)
    for (int n = 0; n < N; n++) {
        real *d = dlogits + (size_t)n * V;
        if (!mask[n]) {
            for (int v = 0; v < V; v++) d[v] = 0;
            continue;
        }
        const real *l = logits + (size_t)n * V;
        real mx;
        double s = row_expsum(l, V, &mx);
        for (int v = 0; v < V; v++) {
            real p = (real)(exp((double)(l[v] - mx)) / s);
            d[v] = (p - (v == targets[n])) * scale;
        }
    }
}
