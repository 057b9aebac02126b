/*
 * tile.h: the score / exp / A.V tile kernels of the evaluation's blocked attention (the prefill,
 * model/prefill.c), on one key tile of LCG_KEY_TILE keys against a few query rows, and the plain
 * score row they are held to bitwise (tile_row_scores, also decoder_step's). Float only; no
 * knowledge of models or caches beyond the transposed key layout kt[e][j] (row stride ldk).
 */
#ifndef LCG_TILE_H
#define LCG_TILE_H

#include <stddef.h>

#define LCG_KEY_TILE 64 /* keys per tile; a key cache is padded to a whole tile */
enum { LCG_TILE_RG = 4, LCG_TILE_AG = 8 }; /* query rows per register tile (scores, A.V) */

/* the reference row: s[j] = f * q.k_j + slope * (j - i) for keys 0..n-1 of kt [D, ldk], each
 * dot product summed over e = 0..D-1 in order (the order the tiles use too; no bias term at all
 * when slope is 0) */
void tile_row_scores(float *s /* n */, const float *q /* D */, const float *kt /* D, ldk */, size_t ldk, int n,
                     int D, int i, float f, float slope);
/* st[r][c] = f[r] * q_r . k_(j0+c) + slope * (j0 + c - (i0 + r)) for r < nr, c < LCG_KEY_TILE
 * (kt points at key j0), each score tile_row_scores' sum */
void tile_scores(float *st /* nr, TK */, const float *q /* nr, ldq */, int ldq, const float *kt /* D, ldk */,
                 size_t ldk, int nr, int D, const float *f /* nr */, float slope, int i0, int j0);
/* tile_scores and then tile_max on each row, in one register-tiled pass, for a tile every row
 * sees whole (j0 + TK - 1 <= i0) and nr a multiple of LCG_TILE_RG: the same bits */
void tile_scores_full(float *st /* nr, TK */, const float *q, int ldq, const float *kt /* D, ldk */, size_t ldk,
                      int nr, int D, const float *f, float slope, int i0, int j0, float *tmax /* nr */,
                      int *bad /* nr, |= */);
/* max of s[TK] (lane-blocked, so it vectorizes without reassociation); *bad |= any NaN/inf */
float tile_max(const float *s, int *bad);
/* s[c] = e^(s[c] - M), c < TK (s[c] <= M), s[c] - M clamped at -87 (NaN becomes -87) */
void tile_exp(float *s, float M);
/* o[g][D] += p[g][c] v_(j0+c) over c < nk (v: rows of stride ldv from key j0) */
void tile_av(float *o /* g, D */, const float *p /* g, TK */, const float *v /* nk, ldv */, int ldv, int g, int nk,
             int D);

#endif
