/*
 * emu_kernels.cpp: gpu_kernels.cu's attention row kernels (att_row_forward/backward_kernel, the
 * register and plain paths) and fused kernels (att_fused_forward/backward_kernel), run on the
 * host through warp_emu.h against the CPU (norm_row_forward / norm_row_backward_s per row;
 * attention_forward / attention_backward for the fused ones), for top-k (fixed and div-2, and
 * ties), stick-breaking, adaptive-softmax, softmax and entmax: weights, dS, out, dqkv, dqscale
 * within 1e-5 relative; and evaluation's eval_row_kernel (weights and diagnostics of a block of
 * query rows) against the rows' eval and decoder_diag_add, and its entmax rows with the candidates in
 * registers against the same kernel with them in memory, bit for bit (nc from 1 to beyond 256). The
 * q.k products the cuBLAS path would compute are computed on the host.
 * Built by cuda/emu/run.sh.
 */
#include "warp_emu.h"
#include "k_warp.inc"
#include "k_body.inc"
#undef EVAL_REGS_MAX
#define EVAL_REGS_MAX 0
namespace memonly { /* the same kernels with evaluation's candidates always in memory */
#include "k_body.inc"
}

template <int K>
static void case_rows(int row, double alpha, int pos, int T, int quant) {
    int B = 2, H = 4, D = 8, HD = H * D, C3 = 3 * HD, BH = B * H, ld = gk_att_ld(T);
    float scale = (float)(1.0 / sqrt((double)D));
    std::vector<float> qkv((size_t)B * T * C3), qs((size_t)B * T * H), sl(H);
    for (auto &x : qkv) x = quant ? roundf((float)(3 * emu_nrand())) / 2 : (float)(1.5 * emu_nrand());
    for (auto &x : qs) x = 0.5f + (float)emu_urand();
    lcg_posenc_slopes(sl.data(), pos, H);
    size_t nr = (size_t)BH * T;
    std::vector<float> raw(nr * ld, 0), dp(nr * ld, 0), pc(nr * T, 0), dsc(nr * T, 0), g(nr * T);
    for (int bh = 0; bh < BH; bh++) {
        int b = bh / H, h = bh % H;
        for (int t = 0; t < T; t++) {
            size_t r = (size_t)bh * T + t;
            std::vector<float> s(t + 1);
            float f = scale * qs[((size_t)b * T + t) * H + h];
            for (int j = 0; j < T; j++) {
                float a = 0;
                for (int d = 0; d < D; d++)
                    a += qkv[((size_t)b * T + t) * C3 + h * D + d] * qkv[((size_t)b * T + j) * C3 + HD + h * D + d];
                raw[r * ld + j] = a;
                if (j <= t) s[j] = a * f + sl[h] * (float)(j - t);
                dp[r * ld + j] = g[r * T + j] = (float)emu_nrand();
            }
            norm_row_forward(&pc[r * T], s.data(), t + 1, row, alpha);
            norm_row_backward_s(&dsc[r * T], &pc[r * T], &g[r * T], s.data(), t + 1, row, alpha);
        }
    }
    std::vector<float> att = raw, sc = raw, attc(nr * ld, 0);
    int nb = (int)((nr + 7) / 8);
    emu_launch(nb, 256, [&] { att_row_forward_kernel<K>(att.data(), ld, qs.data(), sl.data(), row, alpha, BH, T, H, scale); });
    for (size_t r = 0; r < nr; r++)
        for (int j = 0; j < T; j++) attc[r * ld + j] = pc[r * T + j]; /* dS from the CPU's weights */
    emu_launch(nb, 256, [&] {
        att_row_backward_kernel<K>(dp.data(), attc.data(), sc.data(), ld, qs.data(), sl.data(), row, alpha, BH, T, H, scale);
    });
    std::vector<float> a2(nr * T), d2(nr * T);
    for (size_t r = 0; r < nr; r++)
        for (int j = 0; j < T; j++) a2[r * T + j] = att[r * ld + j], d2[r * T + j] = dp[r * ld + j];
    int flips = 0;
    for (size_t i = 0; i < pc.size(); i++) flips += (a2[i] == 0) != (pc[i] == 0);
    char nm[160];
    const char *rn = lcg_row_at(row)->name, *pn = lcg_posenc_at(pos)->name;
    snprintf(nm, sizeof nm, "row kernels K=%d %s a=%g %s T=%d%s: weights", K, rn, alpha, pn, T, quant ? " ties" : "");
    emu_check(nm, emu_rel(a2.data(), pc.data(), pc.size()), flips);
    snprintf(nm, sizeof nm, "row kernels K=%d %s a=%g %s T=%d%s: dS", K, rn, alpha, pn, T, quant ? " ties" : "");
    emu_check(nm, emu_rel(d2.data(), dsc.data(), dsc.size()), 0);
}

template <int D, int K>
static void case_fused(int row, double alpha, int pos, int T) {
    int B = 2, H = 4, HD = H * D, C3 = 3 * HD, BH = B * H, ld = gk_att_ld(T);
    float scale = (float)(1.0 / sqrt((double)D));
    size_t nq = (size_t)B * T * C3, no = (size_t)B * T * HD, nc = (size_t)B * T * H;
    std::vector<float> qkv(nq), qs(nc), dout(no), sl(H), out(no), outc(no), dq(nq, 0), dqc(nq, 0), dqs(nc, 0), dqsc(nc, 0);
    for (auto &x : qkv) x = (float)(1.5 * emu_nrand());
    for (auto &x : qs) x = 0.5f + (float)emu_urand();
    for (auto &x : dout) x = (float)emu_nrand();
    lcg_posenc_slopes(sl.data(), pos, H);
    std::vector<float> attc((size_t)BH * T * T), att((size_t)BH * T * ld);
    attention_forward(outc.data(), attc.data(), qkv.data(), qs.data(), sl.data(), row, alpha, B, T, H, D);
    attention_backward(dqc.data(), dqsc.data(), dout.data(), qkv.data(), qs.data(), attc.data(), sl.data(), row, alpha, B,
                       T, H, D);
    emu_launch(BH, 32 * FUSED_WARPS, [&] {
        att_fused_forward_kernel<D, K>(out.data(), att.data(), ld, qkv.data(), qs.data(), sl.data(), row, alpha, T, H, scale);
    }, fused_fwd_smem(T, D) / sizeof(float));
    emu_launch(BH, 32 * FUSED_WARPS, [&] {
        att_fused_backward_kernel<D, K>(dq.data(), dqs.data(), dout.data(), qkv.data(), qs.data(), sl.data(), att.data(), ld,
                                        row, alpha, T, H, scale);
    }, fused_bwd_smem(T, D) / sizeof(float));
    std::vector<float> a2(attc.size());
    for (size_t r = 0; r < (size_t)BH * T; r++)
        for (int j = 0; j < T; j++) a2[r * T + j] = att[r * ld + j];
    char nm[160];
    const char *rn = lcg_row_at(row)->name, *pn = lcg_posenc_at(pos)->name;
    snprintf(nm, sizeof nm, "fused D=%d %s a=%g %s T=%d: weights", D, rn, alpha, pn, T);
    emu_check(nm, emu_rel(a2.data(), attc.data(), attc.size()), 0);
    snprintf(nm, sizeof nm, "fused D=%d %s a=%g %s T=%d: out", D, rn, alpha, pn, T);
    emu_check(nm, emu_rel(out.data(), outc.data(), no), 0);
    snprintf(nm, sizeof nm, "fused D=%d %s a=%g %s T=%d: dqkv", D, rn, alpha, pn, T);
    emu_check(nm, emu_rel(dq.data(), dqc.data(), nq), 0);
    snprintf(nm, sizeof nm, "fused D=%d %s a=%g %s T=%d: dqscale", D, rn, alpha, pn, T);
    emu_check(nm, emu_rel(dqs.data(), dqsc.data(), nc), 0);
}

/* evaluation's eval_row_kernel on a block of R query rows i0 .. i0+R-1 (keys 0 .. i0+R-1) against
 * the row function's eval on the same scores, and its diagnostics against decoder_diag_add's sums */
static void case_eval(int row, double alpha, int pos, int i0, int R, int cand, double spread = 4) {
    int H = 4, D = 8, nk = i0 + R, ld = (nk + 31) / 32 * 32, r0 = i0 + R / 3;
    float scale = (float)(1.0 / sqrt((double)D));
    std::vector<float> S((size_t)H * R * ld), C((size_t)H * R * ld), qs((size_t)nk * H), sl(H);
    std::vector<float> pc((size_t)H * R * nk, 0);
    std::vector<double> dg((size_t)(nk - r0) * H * 3, 0), dc(dg.size(), 0);
    for (auto &x : S) x = (float)(spread * emu_nrand());
    for (auto &x : qs) x = 0.5f + (float)emu_urand();
    lcg_posenc_slopes(sl.data(), pos, H);
    const lcg_row_fn *rf = lcg_row_at(row);
    for (int h = 0; h < H; h++)
        for (int r = 0; r < R; r++) {
            int t = i0 + r;
            float f = scale * qs[(size_t)t * H + h], *raw = &S[((size_t)h * R + r) * ld];
            std::vector<float> s(t + 1);
            for (int j = 0; j <= t; j++) s[j] = raw[j] * f + sl[h] * (float)(j - t);
            float *p = &pc[((size_t)h * R + r) * nk];
            rf->eval(p, s.data(), t + 1, lcg_row_alpha(rf, alpha));
            if (t < r0) continue;
            double ent = 0, mx = 0, *a = &dc[((size_t)(t - r0) * H + h) * 3];
            int sup = 0;
            for (int j = 0; j <= t; j++) { /* decoder_diag_add */
                if (p[j] <= 0) continue;
                ent -= (double)p[j] * log((double)p[j]), sup++, mx = p[j] > mx ? p[j] : mx;
            }
            a[0] = ent, a[1] = sup, a[2] = mx;
        }
    emu_launch((R * H + 7) / 8, 256, [&] {
        eval_row_kernel(S.data(), cand ? C.data() : NULL, dg.data(), qs.data(), sl.data(), ld, row,
                        lcg_row_alpha(rf, alpha), i0, R, nk, r0, H, scale);
    });
    std::vector<float> p2(pc.size());
    int flips = 0;
    for (int hr = 0; hr < H * R; hr++)
        for (int j = 0; j < nk; j++) {
            p2[(size_t)hr * nk + j] = S[(size_t)hr * ld + j];
            flips += (p2[(size_t)hr * nk + j] == 0) != (pc[(size_t)hr * nk + j] == 0);
        }
    double de = 0, dr = 0;
    for (size_t i = 0; i < dg.size(); i++) de += (dg[i] - dc[i]) * (dg[i] - dc[i]), dr += dc[i] * dc[i];
    char nm[160];
    snprintf(nm, sizeof nm, "eval rows %s a=%g %s rows %d..%d x%g%s: weights", rf->name, alpha, lcg_posenc_at(pos)->name,
             i0, i0 + R - 1, spread, cand ? " (candidates)" : "");
    emu_check(nm, emu_rel(p2.data(), pc.data(), pc.size()), flips);
    snprintf(nm, sizeof nm, "eval rows %s a=%g %s rows %d..%d: diagnostics", rf->name, alpha, lcg_posenc_at(pos)->name, i0,
             i0 + R - 1);
    emu_check(nm, sqrt(de / (dr > 0 ? dr : 1)), 0);
}

/* eval_row_kernel's entmax rows, candidates in registers (nc <= 256) against memonly's (always in
 * memory): the same bits, weights and diagnostics. Counts the rows by K's bands of candidates (1-32,
 * 33-64, 65-128, 129-256, more) into band[5], so that main can check every path ran. */
static void case_eval_bits(int row, double alpha, int i0, int R, double spread, int *band) {
    int H = 4, nk = i0 + R, ld = (nk + 31) / 32 * 32;
    float scale = 0.35f;
    std::vector<float> S((size_t)H * R * ld), C((size_t)H * R * ld), qs((size_t)nk * H), sl(H);
    for (auto &x : S) x = (float)(spread * emu_nrand());
    for (auto &x : qs) x = 0.5f + (float)emu_urand();
    lcg_posenc_slopes(sl.data(), LCG_POS_NAPE, H);
    std::vector<float> S0 = S, S2 = S, C2 = C;
    std::vector<double> d1((size_t)R * H * 3), d2(d1.size());
    emu_launch((R * H + 7) / 8, 256, [&] {
        eval_row_kernel(S.data(), C.data(), d1.data(), qs.data(), sl.data(), ld, row, alpha, i0, R, nk, i0, H, scale);
    });
    emu_launch((R * H + 7) / 8, 256, [&] {
        memonly::eval_row_kernel(S2.data(), C2.data(), d2.data(), qs.data(), sl.data(), ld, row, alpha, i0, R, nk, i0, H,
                                 scale);
    });
    double am1 = (row == LCG_ROW_SPARSEMAX ? 2.0 : alpha) - 1.0;
    for (int hr = 0; hr < H * R; hr++) { /* the kernel's candidates: x = am1 (s - max) > -1 */
        int h = hr / R, t = i0 + hr % R, nc = 0;
        float f = scale * qs[(size_t)t * H + h], mx = -INFINITY;
        const float *raw = &S0[(size_t)hr * ld];
        for (int j = 0; j <= t; j++) mx = fmaxf(mx, raw[j] * f + sl[h] * (float)(j - t));
        for (int j = 0; j <= t; j++) nc += am1 * ((double)(raw[j] * f + sl[h] * (float)(j - t)) - (double)mx) > -1.0;
        band[nc <= 32 ? 0 : nc <= 64 ? 1 : nc <= 128 ? 2 : nc <= 256 ? 3 : 4]++;
    }
    int diff = memcmp(S.data(), S2.data(), S.size() * sizeof(float)) != 0 ||
               memcmp(d1.data(), d2.data(), d1.size() * sizeof(double)) != 0;
    char nm[160];
    snprintf(nm, sizeof nm, "eval rows %s a=%g rows %d..%d x%g: registers = memory, bit for bit", lcg_row_at(row)->name,
             alpha, i0, i0 + R - 1, spread);
    emu_check(nm, diff ? NAN : 0, 0);
}

int main(int argc, char **argv) {
    emu_verbose = argc > 1;
    lcg_attention_fast = 0;
    int rows[] = {LCG_ROW_TOPK, LCG_ROW_TOPK, LCG_ROW_STICK, LCG_ROW_ADAPTIVE, LCG_ROW_SOFTMAX, LCG_ROW_ENTMAX};
    double al[] = {8, -4, 1, 1, 1, 1.5};
    for (int r = 0; r < 6; r++) {
        case_rows<2>(rows[r], al[r], LCG_POS_NAPE, 45, 0);
        case_rows<0>(rows[r], al[r], LCG_POS_ALIBI, 45, 0);
        case_fused<16, 2>(rows[r], al[r], LCG_POS_NAPE, 45);
        case_fused<8, 1>(rows[r], al[r], LCG_POS_ALIBI, 30);
    }
    for (int r = 0; r < 6; r++) {
        case_eval(rows[r], al[r], LCG_POS_NAPE, 0, 40, 0);
        case_eval(rows[r], al[r], LCG_POS_ALIBI, 200, 33, rows[r] == LCG_ROW_ENTMAX);
    }
    int band[5] = {0};
    for (double sp : {6.0, 1.5, 0.4, 0.05}) { /* from a few candidates a row to all of them */
        case_eval_bits(LCG_ROW_ENTMAX, 1.5, 270, 24, sp, band);
        case_eval_bits(LCG_ROW_SPARSEMAX, 2, 40, 24, sp, band);
        case_eval_bits(LCG_ROW_ENTMAX, 1.3, 150, 16, sp, band);
    }
    case_eval(LCG_ROW_ENTMAX, 1.5, LCG_POS_NAPE, 300, 16, 1, 0.3);  /* the memory path against the CPU */
    case_eval(LCG_ROW_SPARSEMAX, 2, LCG_POS_NAPE, 90, 16, 1, 1.0); /* nc 33-128 */
    emu_check("eval rows: the bitwise cases cover every register band and the memory path",
              band[0] && band[1] && band[2] && band[3] && band[4] ? 0 : NAN, 0);
    if (emu_verbose) printf("     candidate bands 1-32 %d, -64 %d, -128 %d, -256 %d, more %d rows\n", band[0], band[1],
                            band[2], band[3], band[4]);
    case_rows<2>(LCG_ROW_TOPK, 8, LCG_POS_NOPE, 45, 1);
    case_rows<0>(LCG_ROW_TOPK, -4, LCG_POS_NOPE, 70, 1);
    printf("emu_kernels: %d checks, %d failed\n", emu_total, emu_fails);
    return emu_fails != 0;
}
