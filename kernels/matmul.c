/*
 * matmul.c: out = inp @ w with w stored input-major [IC, OC], forward and backward.
 *
 * The fast path is one register-tiled kernel, out[rows] (+)= a[rows, K] @ b[K, cols], that
 * every product goes through: the backward reads w transposed (for dinp) and inp transposed
 * (for dw) and calls it again. Each output element is accumulated by one thread in a fixed k
 * order (one FMA chain), so results do not depend on the thread count, the tiling or the
 * blocking, nor on the vector width: an AVX2 build gives the AVX-512 build's bits. The float
 * build (gemm_fast) holds a tile of rows x columns in GCC vectors of the widest width the build
 * targets (4 x 64 in 16 zmm with AVX-512, 6 x 16 in 12 ymm with AVX2; see MK_VW); the double
 * build and products of fewer than MK_R rows use the plain tile (gemm_acc). No intrinsics: GCC
 * vector extensions, so other targets get the same code in narrower or scalar form. The _ref
 * functions are the plain loops the tests compare to.
 */
#include "kernels.h"
#include "real.h"
#include "simd.h"
#include "util.h"

#include <omp.h>
#include <stdlib.h>
#include <string.h>

#define TILE_R 4  /* rows per tile */
#define TILE_C 64 /* columns per tile */

#if !defined(LCG_F64)
/* ---- float fast path: register tiles of GCC vectors ------------------------------------------
 * MK_R rows x nv vectors of MK_VW columns (nv <= MK_V), in the widest vector the build targets:
 * with AVX-512 4 rows x 4 zmm (4 x 64 columns, 16 accumulators), with AVX2 6 rows x 2 ymm
 * (6 x 16, 12 of the 16 ymm), else 4 rows x 2 (SSE, 16 registers) or x 4 (NEON, 32) vectors of
 * 4. Each output element is the same chain of FMAs over k = 0..K-1 from 0 (or from out when
 * accumulating) as the plain tile below, whatever the vector width or tile shape: the same bits
 * on every ISA that has FMA. MK_KC: the k block; PB_MAX: the widest b a weight gradient reads in
 * place (gemm_fast says why). */
#if defined(__AVX512F__)
#define MK_VW 16 /* floats per vector */
enum { MK_V = 4, MK_R = 4 };
#elif defined(__AVX__)
#define MK_VW 8
enum { MK_V = 2, MK_R = 6 };
#elif defined(__aarch64__)
#define MK_VW 4
enum { MK_V = 4, MK_R = 4 };
#else
#define MK_VW 4
enum { MK_V = 2, MK_R = 4 };
#endif
typedef float vmk __attribute__((vector_size(4 * MK_VW)));
typedef float vmku __attribute__((vector_size(4 * MK_VW), aligned(4), may_alias)); /* unaligned access */
#ifndef MK_KC
#define MK_KC 256
#endif
#ifndef PB_MAX
#define PB_MAX 512
#endif
enum { MK_C = MK_VW * MK_V, MK_RB = 16 * MK_R };
/* keeps a vector in a register: GCC would otherwise fold each load of b into all MK_R FMAs that
 * use it (MK_R loads per MK_R FMAs instead of one); an empty asm, no instruction */
#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__)) && defined(__SSE2__)
#define MK_IN_REG(x) __asm__("" : "+x"(x))
#elif defined(__GNUC__) && defined(__aarch64__)
#define MK_IN_REG(x) __asm__("" : "+w"(x))
#else
#define MK_IN_REG(x) (void)0
#endif

static inline __attribute__((always_inline)) void mk_tile(float *restrict out, size_t ldo, const float *restrict a,
                                                          size_t ars, size_t aks, const float *restrict b, size_t ldb,
                                                          int K, int nr, int nv, int ncol, int accumulate) {
    vmk acc[MK_R][MK_V]; /* never address-taken, so GCC keeps it in registers */
    for (int r = 0; r < nr; r++)
        for (int v = 0; v < nv; v++) {
            const float *o = out + (size_t)r * ldo + MK_VW * v;
            if (!accumulate)
                acc[r][v] = (vmk){0};
            else if (ncol >= MK_VW * (v + 1))
                acc[r][v] = *(const vmku *)o;
            else {
                vmk z = {0};
                memcpy(&z, o, sizeof(float) * (size_t)((ncol - MK_VW * v) % MK_VW)); /* 1..MK_VW-1 floats */
                acc[r][v] = z;
            }
        }
    for (int k = 0; k < K; k++) {
        const float *bk = b + (size_t)k * ldb;
        vmk bv[MK_V];
        for (int v = 0; v < nv; v++) {
            bv[v] = *(const vmku *)(bk + MK_VW * v);
            MK_IN_REG(bv[v]);
        }
        for (int r = 0; r < nr; r++) {
            vmk av = a[(size_t)r * ars + (size_t)k * aks] - (vmk){0}; /* a broadcast: x - 0 is x, -0 too */
#if MK_VW == 16 /* AVX-512: 32 registers; with 16, keeping all MK_R broadcasts live spills accumulators */
            MK_IN_REG(av);
#endif
            for (int v = 0; v < nv; v++) acc[r][v] += av * bv[v];
        }
    }
    for (int r = 0; r < nr; r++)
        for (int v = 0; v < nv; v++) {
            float *o = out + (size_t)r * ldo + MK_VW * v;
            if (ncol >= MK_VW * (v + 1))
                *(vmku *)o = acc[r][v];
            else {
                vmk z = acc[r][v];
                memcpy(o, &z, sizeof(float) * (size_t)((ncol - MK_VW * v) % MK_VW));
            }
        }
}

/* mk_tile of nr rows (a constant: MK_R, or 4 for the rows a block of MK_R > 4 leaves) with nv,
 * 1..MK_V, a constant in each case, so each is specialized */
static inline __attribute__((always_inline)) void mk_tile_nv(float *restrict out, size_t ldo, const float *restrict a,
                                                             size_t ars, size_t aks, const float *restrict b,
                                                             size_t ldb, int K, int nr, int nv, int ncol,
                                                             int accumulate) {
    switch (nv) {
    case 1: mk_tile(out, ldo, a, ars, aks, b, ldb, K, nr, 1, ncol, accumulate); break;
    case 2: mk_tile(out, ldo, a, ars, aks, b, ldb, K, nr, 2 < MK_V ? 2 : MK_V, ncol, accumulate); break;
    case 3: mk_tile(out, ldo, a, ars, aks, b, ldb, K, nr, 3 < MK_V ? 3 : MK_V, ncol, accumulate); break;
    default: mk_tile(out, ldo, a, ars, aks, b, ldb, K, nr, MK_V, ncol, accumulate);
    }
}

/* the rows r0..r0+nr-1 (nr < MK_R), columns c0..c0+nc-1, whose panel pb has row stride ldb:
 * plain loops, the same chains */
static void rest_tile(float *restrict out, const float *restrict a, size_t ars, size_t aks, const float *restrict pb,
                      size_t ldb, int r0, int nr, int c0, int nc, int K, int M, int accumulate) {
    for (int r = r0; r < r0 + nr; r++) {
        float acc[MK_C];
        for (int c = 0; c < nc; c++) acc[c] = accumulate ? out[(size_t)r * M + c0 + c] : 0;
        for (int k = 0; k < K; k++) {
            float av = a[(size_t)r * ars + (size_t)k * aks];
            const float *brow = pb + (size_t)k * ldb;
            for (int c = 0; c < nc; c++) acc[c] += av * brow[c];
        }
        memcpy(out + (size_t)r * M + c0, acc, sizeof(float) * (size_t)nc);
    }
}

/* packs rows k0..k1-1 of columns c0..c0+MK_C-1 of b (element (k, c) at b[k * bks + c * bcs])
 * into dst[K, MK_C], zero-padded */
static void pack_panel(float *restrict dst, const float *restrict b, size_t bks, size_t bcs, int k0, int k1, int c0,
                       int M) {
    int nc = M - c0 < MK_C ? M - c0 : MK_C;
    for (int k = k0; k < k1; k++) {
        float *d = dst + (size_t)k * MK_C;
        if (bcs == 1) memcpy(d, b + (size_t)k * bks + c0, sizeof(float) * (size_t)nc);
        else
            for (int c = 0; c < nc; c++) d[c] = b[(size_t)k * bks + (size_t)(c0 + c) * bcs];
        for (int c = nc; c < MK_C; c++) d[c] = 0;
    }
}

static void gemm_fast(float *restrict out, const float *restrict a, size_t ars, size_t aks, const float *restrict b,
                      size_t bks, size_t bcs, int R, int K, int M, int accumulate) {
    /* The work is split into items of rb rows x one panel of MK_C columns, rb halved from MK_RB
     * while there are fewer than 4 items per thread (a weight gradient has only IC rows); within
     * an item k runs in blocks of MK_KC, each reused by every tile of the item while it is in
     * L1/L2. Splitting k only stores and reloads the accumulator between blocks: each output
     * element is still one FMA chain over k.
     * Packing (in parallel, before the tiles): b goes into panels, each K x MK_C contiguous (the
     * last zero-padded), so a tile's loads are sequential instead of M floats apart, where large
     * power-of-two row strides put every k of a panel into the same few L1 sets. A weight
     * gradient (aks != 1: a read transposed, k running over the N tokens) differs: its b (N x M)
     * is read in place up to PB_MAX columns, since only R / MK_R tiles reuse it, and its a is
     * packed (each MK_R rows as K x MK_R contiguous: a tile's k step reads MK_R floats, not a cache
     * line) only when more than 8 panels reuse it; with fewer, either copy cost more than the
     * strided loads it saved (bench/gemm: the C = 64 weight gradients went from 31-48% of peak
     * to 74-96%). */
    int np = (M + MK_C - 1) / MK_C, nth = omp_get_max_threads(), ntl = R / MK_R, pack_a = aks != 1 && np > 8;
    int rb = MK_RB;
    while (rb > MK_R && (long)((R + rb - 1) / rb) * np < 4L * nth) rb /= 2;
    int nblk = (R + rb - 1) / rb, nitems = nblk * np, nkb = (K + MK_KC - 1) / MK_KC;
    /* b is read in place when its rows are contiguous and it is exactly one panel, or in a
     * weight gradient up to PB_MAX wide (b holds K = N rows there, each panel used by only
     * R / MK_R tiles: not worth a copy). A tile reads whole vectors, past M into the next row when M is not a multiple of
     * MK_VW (those lanes are never stored): then ("ragged") b's last row comes from a padded copy,
     * as a k block of its own. */
    int pack_b = !(bcs == 1 && (M == MK_C || (aks != 1 && M <= PB_MAX))), ragged = !pack_b && M % MK_VW != 0;
    size_t ldb = pack_b ? MK_C : bks;
    size_t n_bp = pack_b ? (size_t)np * K * MK_C : ragged ? (size_t)np * MK_C : 0;
    float *scratch = LCG_SCRATCH(float, n_bp + (pack_a ? (size_t)ntl * K * MK_R : 0) + 1);
    float *bpw = scratch, *ap = scratch + n_bp; /* ap: [ntl][K][MK_R] */
    const float *bp = pack_b ? bpw : b, *last = bpw;
    if (ragged) { /* the last row, zero-padded to np * MK_C */
        memcpy(bpw, b + (size_t)(K - 1) * bks, sizeof(float) * (size_t)M);
        memset(bpw + M, 0, sizeof(float) * (n_bp - (size_t)M));
    }
#pragma omp parallel if ((long)R * K * M > 32768)
    {
#pragma omp for schedule(static) nowait
        for (int it = 0; it < (pack_b ? np * nkb : 0); it++) {
            int p = it / nkb, k0 = it % nkb * MK_KC, k1 = k0 + MK_KC < K ? k0 + MK_KC : K;
            pack_panel(bpw + (size_t)p * K * MK_C, b, bks, bcs, k0, k1, p * MK_C, M);
        }
        if (pack_a) {
#pragma omp for schedule(static) nowait
            for (int it = 0; it < nkb; it++)
                for (int k = it * MK_KC; k < K && k < (it + 1) * MK_KC; k++)
                    for (int t = 0; t < ntl; t++)
                        for (int i = 0; i < MK_R; i++)
                            ap[((size_t)t * K + k) * MK_R + i] = a[(size_t)(t * MK_R + i) * ars + (size_t)k * aks];
        }
#pragma omp barrier
#pragma omp for schedule(static)
        for (int it = 0; it < nitems; it++) {
            int blk = it / np, p = it % np;
            int r0 = blk * rb, r1 = r0 + rb < R ? r0 + rb : R, rf = r0 + (r1 - r0) / MK_R * MK_R;
            int r4 = MK_R > 4 && r1 - rf >= 4 ? rf + 4 : rf; /* rows rf..r4-1: one tile of 4 */
            int c0 = p * MK_C, nc = M - c0 < MK_C ? M - c0 : MK_C, nv = (nc + MK_VW - 1) / MK_VW;
            for (int k0 = 0, kc; k0 < K; k0 += kc) {
                kc = K - k0 < MK_KC ? K - k0 : MK_KC;
                int acc = accumulate || k0 > 0;
                const float *pb = pack_b ? bp + ((size_t)p * K + (size_t)k0) * MK_C : b + (size_t)k0 * bks + (size_t)c0;
                size_t lb = ldb;
                if (ragged && k0 + kc == K && --kc == 0) /* b's last row: from its padded copy */
                    kc = 1, pb = last + c0, lb = MK_C;
                for (int r = r0; r < rf; r += MK_R) {
                    float *o = out + (size_t)r * M + c0;
                    const float *ar = pack_a ? ap + ((size_t)(r / MK_R) * K + (size_t)k0) * MK_R
                                             : a + (size_t)r * ars + (size_t)k0 * aks;
                    if (pack_a) /* constant strides: each case specialized */
                        mk_tile_nv(o, (size_t)M, ar, 1, MK_R, pb, lb, kc, MK_R, nv, nc, acc);
                    else
                        mk_tile_nv(o, (size_t)M, ar, ars, aks, pb, lb, kc, MK_R, nv, nc, acc);
                }
                if (MK_R > 4 && r4 > rf) /* never packed */
                    mk_tile_nv(out + (size_t)rf * M + c0, (size_t)M, a + (size_t)rf * ars + (size_t)k0 * aks, ars, aks,
                               pb, lb, kc, 4, nv, nc, acc);
            }
            if (r4 < r1)
                rest_tile(out, a, ars, aks, pack_b ? bp + (size_t)p * K * MK_C : b + (size_t)c0, ldb, r4, r1 - r4, c0, nc, K,
                          M, accumulate);
        }
    }
    lcg_free(scratch);
}
#endif

/* out[R, M] (+)= a[R, K] @ b[K, M]; a's element (r, k) is a[r * ars + k * aks] (so a may be
 * read transposed: ars = 1, aks = its row width); out and b have row strides M */
static void gemm_acc(real *restrict out, const real *restrict a, size_t ars, size_t aks,
                     const real *restrict b, int R, int K, int M, int accumulate) {
#if !defined(LCG_F64)
    if (R >= MK_R) {
        gemm_fast(out, a, ars, aks, b, (size_t)M, 1, R, K, M, accumulate);
        return;
    }
#endif
    int n_rtiles = (R + TILE_R - 1) / TILE_R;
#pragma omp parallel for schedule(static) if ((long)R * K * M > 32768)
    for (int rt = 0; rt < n_rtiles; rt++) {
        int r0 = rt * TILE_R;
        int nr = R - r0 < TILE_R ? R - r0 : TILE_R;
        for (int c0 = 0; c0 < M; c0 += TILE_C) {
            int nc = M - c0 < TILE_C ? M - c0 : TILE_C;
            real acc[TILE_R][TILE_C];
            for (int r = 0; r < TILE_R; r++)
                for (int c = 0; c < TILE_C; c++)
                    acc[r][c] = (accumulate && r < nr && c < nc) ? out[(size_t)(r0 + r) * M + c0 + c] : 0;
            if (nr == TILE_R && nc == TILE_C) {
                for (int k = 0; k < K; k++) {
                    const real *brow = b + (size_t)k * M + c0;
                    const real *ak = a + (size_t)k * aks + (size_t)r0 * ars;
                    real a0 = ak[0], a1 = ak[ars], a2 = ak[2 * ars], a3 = ak[3 * ars];
                    for (int c = 0; c < TILE_C; c++) {
                        acc[0][c] += a0 * brow[c];
                        acc[1][c] += a1 * brow[c];
                        acc[2][c] += a2 * brow[c];
                        acc[3][c] += a3 * brow[c];
                    }
                }
            } else {
                for (int k = 0; k < K; k++) {
                    const real *brow = b + (size_t)k * M + c0;
                    for (int r = 0; r < nr; r++) {
                        real av = a[(size_t)(r0 + r) * ars + (size_t)k * aks];
                        for (int c = 0; c < nc; c++) acc[r][c] += av * brow[c];
                    }
                }
            }
            for (int r = 0; r < nr; r++)
                memcpy(out + (size_t)(r0 + r) * M + c0, acc[r], sizeof(real) * (size_t)nc);
        }
    }
}

/* dst[cols, rows] = src[rows, cols] */
static void transpose(real *restrict dst, const real *restrict src, int rows, int cols) {
    for (int r = 0; r < rows; r++)
        for (int c = 0; c < cols; c++) dst[(size_t)c * rows + r] = src[(size_t)r * cols + c];
}

void KFN(matmul_forward)(real *out, const real *inp, const real *w, int N, int IC, int OC) {
    gemm_acc(out, inp, (size_t)IC, 1, w, N, IC, OC, 0);
}

void KFN(matmul_backward)(real *dinp, real *dw, const real *dout, const real *inp, const real *w,
                          int N, int IC, int OC) {
#if !defined(LCG_F64)
    if (dinp && N >= MK_R) { /* dinp[N, IC] += dout[N, OC] @ w^T[OC, IC], w read transposed */
        gemm_fast(dinp, dout, (size_t)OC, 1, w, 1, (size_t)OC, N, OC, IC, 1);
        dinp = NULL;
    }
#endif
    if (dinp) { /* the same with w^T (small) transposed once */
        real *scratch = LCG_SCRATCH(real, (size_t)IC * OC); /* fully overwritten */
        transpose(scratch, w, IC, OC);
        gemm_acc(dinp, dout, (size_t)OC, 1, scratch, N, OC, IC, 1);
        lcg_free(scratch);
    }
    if (dw) /* dw[IC, OC] += inp^T[IC, N] @ dout[N, OC], inp read transposed in place */
        gemm_acc(dw, inp, 1, (size_t)IC, dout, IC, N, OC, 1);
}

void KFN(matmul_forward_ref)(real *out, const real *inp, const real *w, int N, int IC, int OC) {
    for (int n = 0; n < N; n++)
        for (int o = 0; o < OC; o++) {
            double s = 0;
            for (int i = 0; i < IC; i++) s += (double)inp[(size_t)n * IC + i] * w[(size_t)i * OC + o];
            out[(size_t)n * OC + o] = (real)s;
        }
}

void KFN(matmul_backward_ref)(real *dinp, real *dw, const real *dout, const real *inp,
                              const real *w, int N, int IC, int OC) {
    for (int n = 0; n < N; n++)
        for (int i = 0; i < IC; i++) {
            double s = 0;
            for (int o = 0; o < OC; o++) s += (double)dout[(size_t)n * OC + o] * w[(size_t)i * OC + o];
            dinp[(size_t)n * IC + i] += (real)s;
        }
    for (int i = 0; i < IC; i++)
        for (int o = 0; o < OC; o++) {
            double s = 0;
            for (int n = 0; n < N; n++) s += (double)inp[(size_t)n * IC + i] * dout[(size_t)n * OC + o];
            dw[(size_t)i * OC + o] += (real)s;
        }
}
