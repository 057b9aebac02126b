/*
 * entmax_stream.h: the entmax family's streaming bound on the threshold tau (spec §1.2, §5.2),
 * for a row of scores that arrives one key tile at a time (the prefill, model/prefill.c): only
 * the keys above a running safe lower bound of tau are kept, and at the end they are handed to
 * entmax_support_solve (entmax.c), whose answer is the same bits for any such superset of the
 * support. Float scores; the bound's arithmetic in double.
 */
#ifndef LCG_ENTMAX_STREAM_H
#define LCG_ENTMAX_STREAM_H

#include "kernels.h"

/* ES_TOP largest scores kept per row; ES_CAP0 candidates before the first Newton tightening;
 * ES_NEWTON steps at most per tightening */
enum { ES_TOP = 8, ES_CAP0 = 128, ES_NEWTON = 12 };
typedef struct {
    double w[ES_TOP + 1]; /* w[k] = k^(1-alpha) / (alpha-1), k >= 1 */
} es_consts;

typedef struct {
    float M, thr;       /* running max; keys with s <= thr are provably zero */
    float top[ES_TOP];  /* largest scores above thr seen so far, descending */
    int nt, cap, cap0;  /* top's size; candidates kept before the next es_tighten, its least */
} es_row;

/* the constants of alpha (once per row family) and a row's empty state (cap0: ES_CAP0) */
void es_consts_init(es_consts *k, double alpha);
void es_init(es_row *e, int cap0);
/* one tile of a row after its maximum mt (finite or not; NaN rows are flagged by the caller):
 * the bound, then the keys c < nv of scores s (key index j0 + c) above it appended to
 * (cj, cs, *nc), newest first; tightened by Newton whenever *nc reaches the row's cap */
void es_tile(es_row *e, const es_consts *k, double am1, const float *s /* TK */, float mt, int nv, int j0,
             int *cj, float *cs, int *nc);
/* after the last tile: the bound as tight as Newton gets it, then the candidates in key order
 * into cd (every key above tau, whatever else); returns their count */
int es_finish(es_row *e, double am1, int *cj, float *cs, int nc, lcg_ent_cand *cd);
/* for the tests: one score row s[n] through the filter as the prefill runs it (key tiles
 * newest first, es_tighten whenever cap0 or more candidates are kept, then at least every
 * doubling), then entmax_support_solve: p[n] the weights (NaN for a non-finite row), kept[j] = 1
 * for the keys handed to the solve (every other key was pruned). Returns how many were. */
int entmax_stream_row(float *p, unsigned char *kept, const float *s, int n, double alpha, int cap0);

#endif
