/*
 * lenscale.c: the length scaling of the queries, c[n, h] multiplying q before the scores
 * (the reference's `_apply_length_scaling`, spec §4.3), with l = ln(pos + 2):
 *   ssmax   c = beta_h * l                                  (scalable softmax, "nakanishi")
 *   learn   c = delta + beta_h * l^gamma_h                  (static, per head)
 *   adapt   c = delta + softplus(a.Wb_h + bb_h) * l^(rho * tanh(a.Wg_h + bg_h))   (ASEntmax)
 * delta = 1, rho = 2; a is the layer's normed input (the q/k/v projections' input). Heads
 * h0..H-1 are scaled (the NoPE heads under NAPE, all heads otherwise); the rest get c = 1.
 * Parameters are per layer: beta/gamma/bb/bg [Hs], wb/wg [C, Hs], Hs = H - h0.
 *
 * The attention kernels and the decoder apply c; this file only computes it and its gradient.
 * Parameter gradients are summed over rows serially, in row order (deterministic).
 */
#include "kernels.h"
#include "real.h"
#include "util.h"

#include <math.h>

#define LS_DELTA 1.0
#define LS_RHO 2.0

static double softplus(double z) { return z > 20 ? z : log1p(exp(z)); }
static double sigmoid(double z) { return 1.0 / (1.0 + exp(-z)); }

/* pre-activations of the adapt projections for one row and scaled head k */
static void adapt_z(const real *a, const KFN(lcg_lenscale_w) *w, int k, int C, int Hs, double *zb, double *zg) {
    double b = w->bb[k], g = w->bg[k];
    for (int e = 0; e < C; e++) {
        b += (double)a[e] * w->wb[(size_t)e * Hs + k];
        g += (double)a[e] * w->wg[(size_t)e * Hs + k];
    }
    *zb = b;
    *zg = g;
}

void KFN(lenscale_forward)(real *c, const real *a, const KFN(lcg_lenscale_w) *w, int kind, int h0,
                           int N, int T, int pos0, int C, int H) {
    int Hs = H - h0;
#pragma omp parallel for schedule(static) if ((long)N * C * Hs > 65536)
    for (int n = 0; n < N; n++) {
        double l = log((double)(pos0 + n % T) + 2.0);
        real *cn = c + (size_t)n * H;
        for (int h = 0; h < h0; h++) cn[h] = 1;
        for (int k = 0; k < Hs; k++) {
            double v = 1;
            if (kind == LCG_SCALE_SSMAX) v = w->beta[k] * l;
            else if (kind == LCG_SCALE_LEARN) v = LS_DELTA + w->beta[k] * pow(l, (double)w->gamma[k]);
            else if (kind == LCG_SCALE_ADAPT) {
                double zb, zg;
                adapt_z(a + (size_t)n * C, w, k, C, Hs, &zb, &zg);
                v = LS_DELTA + softplus(zb) * pow(l, LS_RHO * tanh(zg));
            }
            cn[h0 + k] = (real)v;
        }
    }
}

void KFN(lenscale_backward)(real *da, KFN(lcg_lenscale_w) *g, const real *dc, const real *a,
                            const KFN(lcg_lenscale_w) *w, int kind, int h0, int N, int T, int pos0,
                            int C, int H) {
    int Hs = H - h0;
    if (kind != LCG_SCALE_ADAPT) { /* a few scalars per row: serial */
        for (int n = 0; n < N; n++) {
            double l = log((double)(pos0 + n % T) + 2.0), ll = log(l);
            for (int k = 0; k < Hs; k++) {
                double d = dc[(size_t)n * H + h0 + k];
                if (d == 0) continue;
                if (kind == LCG_SCALE_SSMAX) {
                    g->beta[k] += (real)(d * l);
                } else if (kind == LCG_SCALE_LEARN) {
                    double lg = pow(l, (double)w->gamma[k]);
                    g->beta[k] += (real)(d * lg);
                    g->gamma[k] += (real)(d * w->beta[k] * lg * ll);
                }
            }
        }
        return;
    }
    /* adapt: the per-row pre-activation gradients dz[n][k] = (dzb, dzg) and the input gradient
     * (rows apart: in parallel), then the parameter gradients, each summed over rows in row order
     * (in parallel over its columns e), as one serial loop over rows would */
    double *dz = LCG_SCRATCH(double, (size_t)N * Hs * 2);
#pragma omp parallel
    {
#pragma omp for schedule(static)
        for (int n = 0; n < N; n++) {
            double l = log((double)(pos0 + n % T) + 2.0), ll = log(l);
            const real *dcn = dc + (size_t)n * H, *an = a + (size_t)n * C;
            real *dan = da + (size_t)n * C;
            for (int k = 0; k < Hs; k++) {
                double d = dcn[h0 + k], *z = dz + ((size_t)n * Hs + k) * 2;
                z[0] = z[1] = 0;
                if (d == 0) continue; /* skipped below too */
                double zb, zg;
                adapt_z(an, w, k, C, Hs, &zb, &zg);
                double th = tanh(zg), le = pow(l, LS_RHO * th);
                double dzb = d * sigmoid(zb) * le;
                double dzg = d * softplus(zb) * le * ll * LS_RHO * (1 - th * th);
                z[0] = dzb, z[1] = dzg;
                for (int e = 0; e < C; e++)
                    dan[e] += (real)(w->wb[(size_t)e * Hs + k] * dzb + w->wg[(size_t)e * Hs + k] * dzg);
            }
        }
        enum { EC = 16 }; /* columns per chunk: each thread walks the rows over its own chunks */
#pragma omp for schedule(static)
        for (int e0 = 0; e0 < C; e0 += EC)
            for (int n = 0; n < N; n++) {
                const real *an = a + (size_t)n * C;
                for (int k = 0; k < Hs; k++) {
                    if (dc[(size_t)n * H + h0 + k] == 0) continue;
                    const double *z = dz + ((size_t)n * Hs + k) * 2;
                    for (int e = e0; e < e0 + EC && e < C; e++) {
                        g->wb[(size_t)e * Hs + k] += (real)(an[e] * z[0]);
                        g->wg[(size_t)e * Hs + k] += (real)(an[e] * z[1]);
                    }
                }
            }
    }
    for (int n = 0; n < N; n++)
        for (int k = 0; k < Hs; k++) {
            if (dc[(size_t)n * H + h0 + k] == 0) continue;
            const double *z = dz + ((size_t)n * Hs + k) * 2;
            g->bb[k] += (real)z[0];
            g->bg[k] += (real)z[1];
        }
    lcg_free(dz);
}
