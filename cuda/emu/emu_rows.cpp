/*
 * emu_rows.cpp: gpu_kernels.cu's top-k, stick-breaking and adaptive-softmax rows (a warp over a
 * row in memory), run on the host through warp_emu.h, against the CPU kernels (kernels/topk.c,
 * stickbreak.c, adaptive.c): weights and gradients within 1e-5 relative, the same exact zeros.
 * Rows of 1 .. 4097 keys, random, rounded (ties), and of signed zeros; every k rule; NaN rows;
 * adaptive-softmax at temperatures where beta is and is not active. Built by cuda/emu/run.sh.
 */
#include "warp_emu.h"
#include "k_warp.inc"
#include "k_body.inc"

static int flips_of(const float *a, const float *b, int n) {
    int f = 0;
    for (int j = 0; j < n; j++) f += (a[j] == 0) != (b[j] == 0);
    return f;
}

int main(int argc, char **argv) {
    emu_verbose = argc > 1;
    int ns[] = {1, 2, 3, 31, 32, 33, 45, 64, 65, 100, 130, 257, 1000, 4097};
    char nm[160];
    for (int kind = 0; kind < 3; kind++) /* 0: random, 1: rounded to 0.5 (ties), 2: -1, 0, 1, -0 */
        for (int n : ns) {
            std::vector<float> s(n), p(n), g(n), pc(n), dc(n), dg(n);
            for (int j = 0; j < n; j++) {
                double x = 3 * emu_nrand();
                s[j] = kind == 0 ? (float)x : kind == 1 ? roundf((float)x * 2) / 2 : (j % 4 == 3 ? -0.0f : (float)((int)x % 2));
                g[j] = (float)emu_nrand();
            }
            for (double prm : {8.0, -4.0, 1.0, 3.0, -1.0, (double)n, (double)(n - 1)}) {
                topk_row(pc.data(), s.data(), n, prm);
                p = s;
                emu_launch(1, 32, [&] { row_topk_mem(p.data(), n, prm, (int)EMU_LANE); });
                snprintf(nm, sizeof nm, "topk k-param %g n=%d rows %d", prm, n, kind);
                emu_check(nm, emu_rel(p.data(), pc.data(), n), flips_of(p.data(), pc.data(), n));
            }
            stickbreak_row(pc.data(), s.data(), n, 1.0);
            p = s;
            emu_launch(1, 32, [&] { row_stick_mem(p.data(), n, (int)EMU_LANE); });
            snprintf(nm, sizeof nm, "stick-break n=%d rows %d: weights", n, kind);
            emu_check(nm, emu_rel(p.data(), pc.data(), n), flips_of(p.data(), pc.data(), n));
            stickbreak_row_backward(dc.data(), pc.data(), g.data(), s.data(), n, 1.0);
            dg = g;
            emu_launch(1, 32, [&] { row_stick_backward_mem(dg.data(), pc.data(), s.data(), n, (int)EMU_LANE); });
            snprintf(nm, sizeof nm, "stick-break n=%d rows %d: gradient", n, kind);
            emu_check(nm, emu_rel(dg.data(), dc.data(), n), 0);
            for (double t : {0.05, 0.3, 1.0, 2.0}) { /* beta active at some (H in (0.9, 2.7) nats) */
                std::vector<float> s2(n);
                for (int j = 0; j < n; j++) s2[j] = (float)(s[j] * t);
                adaptive_softmax_row(pc.data(), s2.data(), n, 1.0);
                p = s2;
                emu_launch(1, 32, [&] { row_adaptive_mem(p.data(), n, (int)EMU_LANE); });
                snprintf(nm, sizeof nm, "adaptive-softmax n=%d rows %d x%g (beta %.3f): weights", n, kind, t,
                         adaptive_softmax_beta(s2.data(), n));
                emu_check(nm, emu_rel(p.data(), pc.data(), n), 0);
                adaptive_softmax_row_backward(dc.data(), pc.data(), g.data(), s2.data(), n, 1.0);
                dg = g;
                emu_launch(1, 32, [&] { row_adaptive_backward_mem(dg.data(), pc.data(), s2.data(), n, (int)EMU_LANE); });
                snprintf(nm, sizeof nm, "adaptive-softmax n=%d rows %d x%g: gradient", n, kind, t);
                emu_check(nm, emu_rel(dg.data(), dc.data(), n), 0);
            }
        }
    { /* a NaN score: every weight NaN */
        int n = 40, ok = 1;
        std::vector<float> s(n, 1.0f), p;
        s[7] = NAN;
        p = s, emu_launch(1, 32, [&] { row_topk_mem(p.data(), n, 8, (int)EMU_LANE); });
        for (float x : p) ok &= x != x;
        p = s, emu_launch(1, 32, [&] { row_stick_mem(p.data(), n, (int)EMU_LANE); });
        for (float x : p) ok &= x != x;
        p = s, emu_launch(1, 32, [&] { row_adaptive_mem(p.data(), n, (int)EMU_LANE); });
        for (float x : p) ok &= x != x;
        emu_check("a NaN score gives NaN rows (topk, stick-break, adaptive-softmax)", ok ? 0 : NAN, 0);
    }
    printf("emu_rows: %d checks, %d failed\n", emu_total, emu_fails);
    return emu_fails != 0;
}
