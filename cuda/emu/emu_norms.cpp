/*
 * emu_norms.cpp: gpu_kernels.cu's embedding and RMSNorm kernels (encoder_forward/backward_kernel,
 * rmsnorm_forward_kernel, rmsnorm_backward_kernel with its column partials, colsum_finish_kernel)
 * run on the host through warp_emu.h against the CPU's (kernels/norms.c): the embedding's output
 * and gradient (a skewed token mix: one token in half the rows, as mqmtar's filler), RMSNorm's out, rstd, dinp (accumulated onto a nonzero gradient,
 * as the residual stream's) and dw within 1e-5 relative, for row counts that do and do not fill
 * the last chunk of COLSUM_ROWS rows. Built by cuda/emu/run.sh.
 */
#include "warp_emu.h"
#include "k_warp.inc"
#include "k_norm.inc"

static void case_norm(int N, int C) {
    size_t nc = (size_t)N * C;
    std::vector<float> x(nc), w(C), g(nc), d0(nc), out(nc), outc(nc), rs(N), rsc(N), dx, dxc, dw(C), dwc(C);
    for (auto &v : x) v = (float)(2 * emu_nrand());
    for (auto &v : w) v = (float)(0.3 * emu_nrand());
    for (auto &v : g) v = (float)emu_nrand();
    for (auto &v : d0) v = (float)emu_nrand();
    for (int c = 0; c < C; c++) dw[c] = dwc[c] = (float)emu_nrand();
    rmsnorm_forward(outc.data(), rsc.data(), x.data(), w.data(), N, C);
    emu_launch((N + 7) / 8, 256, [&] { rmsnorm_forward_kernel(out.data(), rs.data(), x.data(), w.data(), N, C); });
    dx = d0, dxc = d0;
    rmsnorm_backward(dxc.data(), dwc.data(), g.data(), x.data(), w.data(), rsc.data(), N, C);
    int np = (int)gk_colsum_parts(N);
    std::vector<double> part((size_t)np * C);
    emu_launch(np, 256, [&] {
        rmsnorm_backward_kernel(dx.data(), part.data(), g.data(), x.data(), w.data(), rs.data(), N, C);
    });
    emu_launch((C + 7) / 8, 256, [&] { colsum_finish_kernel(dw.data(), part.data(), np, C); });
    char nm[160];
    snprintf(nm, sizeof nm, "rmsnorm N=%d C=%d: out", N, C);
    emu_check(nm, emu_rel(out.data(), outc.data(), nc), 0);
    snprintf(nm, sizeof nm, "rmsnorm N=%d C=%d: rstd", N, C);
    emu_check(nm, emu_rel(rs.data(), rsc.data(), N), 0);
    snprintf(nm, sizeof nm, "rmsnorm N=%d C=%d: dinp", N, C);
    emu_check(nm, emu_rel(dx.data(), dxc.data(), nc), 0);
    snprintf(nm, sizeof nm, "rmsnorm N=%d C=%d: dw", N, C);
    emu_check(nm, emu_rel(dw.data(), dwc.data(), C), 0);
}

static void case_embed(int N, int V, int C) {
    std::vector<int> tok(N), off(V + 1, 0), idx(N);
    for (auto &t : tok) t = emu_urand() < 0.5 ? 0 : 1 + (int)(emu_urand() * (V - 1));
    std::vector<float> emb((size_t)V * C), out((size_t)N * C), outc((size_t)N * C), g((size_t)N * C), de, dec;
    for (auto &v : emb) v = (float)emu_nrand();
    for (auto &v : g) v = (float)emu_nrand();
    for (int n = 0; n < N; n++) off[tok[n] + 1]++; /* the token index, as gk_token_csr builds it */
    for (int v = 0; v < V; v++) off[v + 1] += off[v];
    std::vector<int> fill(off.begin(), off.end() - 1);
    for (int n = 0; n < N; n++) idx[fill[tok[n]]++] = n;
    float sc = (float)sqrt((double)C);
    encoder_forward(outc.data(), tok.data(), emb.data(), N, C);
    emu_launch((int)(((size_t)N * C + 255) / 256), 256, [&] {
        encoder_forward_kernel(out.data(), tok.data(), emb.data(), N, C, sc);
    });
    de = emb, dec = emb;
    encoder_backward(dec.data(), g.data(), tok.data(), N, C);
    for (int y = 0; y < (C + 127) / 128; y++) { /* the grid (V, C / 128) of 128 threads, a y at a time */
        emu_grid_y = (unsigned)y;
        emu_launch(V, 128, [&] { encoder_backward_kernel(de.data(), g.data(), off.data(), idx.data(), C, sc); });
    }
    emu_grid_y = 0;
    char nm[160];
    snprintf(nm, sizeof nm, "embedding N=%d V=%d C=%d: out", N, V, C);
    emu_check(nm, emu_rel(out.data(), outc.data(), out.size()), 0);
    snprintf(nm, sizeof nm, "embedding N=%d V=%d C=%d: gradient", N, V, C);
    emu_check(nm, emu_rel(de.data(), dec.data(), de.size()), 0);
}

int main(int argc, char **) {
    emu_verbose = argc > 1;
    for (int N : {5, 100, 517})
        for (int C : {64, 200}) case_embed(N, 13, C);
    for (int N : {1, 7, 32, 45, 100, 160})
        for (int C : {32, 96, 256, 520}) case_norm(N, C);
    printf("emu_norms: %d checks, %d failed\n", emu_total, emu_fails);
    return emu_fails != 0;
}
