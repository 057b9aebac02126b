/*
 * infer.h: decoding with a KV cache, for evaluation at any length. Two ways in, one cache:
 *
 *   decoder_step     one token at a time: scores its query row against the cache with the same
 *                    row normalizers as training. The reference path (and greedy decoding).
 *   decoder_prefill  a whole known sequence in one call (prefill.c): layer by layer, the
 *                    projections over many rows at once and attention as independent tasks of
 *                    (block of query rows, head) streaming key tiles from the cache. Softmax is
 *                    online (one pass, never a full score row); the entmax family keeps only
 *                    the keys above a running safe lower bound of the threshold (raised by
 *                    Newton steps on the kept keys as they come) and sums A.V over the
 *                    support. Parallel over tasks (OpenMP) when called outside a parallel
 *                    region; every output has one writer and a fixed order, so results do not
 *                    depend on the thread count.
 *
 * Memory is O(n) per decoder (the cache, a few rows of width C per position and O(block * n)
 * scratch per thread), never n x n. Float model only.
 */
#ifndef LCG_INFER_H
#define LCG_INFER_H

#include "model.h"
#include "../kernels/tile.h"

#include <signal.h>

#define LCG_QUERY_BLOCK 64 /* query rows per prefill attention task */
#define LCG_PF_CHUNK 128  /* rows per projection chunk of the prefill */

/* sees one attention row of a prefill (decoder's observe): layer l, head h, query row i, the
 * keys j[k] (ascending) with their weights p[k] > 0, k < n; or (j == NULL) the whole row
 * p[0 .. n-1]. Called from the prefill's worker threads, concurrently, once per (l, h, i) of
 * the rows >= logits_from; the pointers are valid during the call only. */
typedef void (*lcg_row_observer)(void *ctx, int l, int h, int i, const int *j, const float *p, int n);
/* receives the final-layer representation (the final norm's output, the LM head's input) [C]
 * of position pos (decoder's hidden) */
typedef void (*lcg_hidden_fn)(void *ctx, int pos, const float *x);

typedef struct lcg_decoder_s {
    const lcg_model *m;
    int cap;        /* positions the cache holds */
    int ldk;        /* cap rounded up to a whole key tile: the row stride of kt */
    int n;          /* positions filled */
    float *mem;     /* one allocation for everything below */
    float *kt;      /* L, H, D, ldk  keys (after RoPE), transposed: kt[l][h][e][j] */
    float *vc;      /* L, cap, H*D  values */
    float *x;       /* C   residual stream */
    float *h;       /* C   normed input */
    float *qkv;     /* 3*H*D */
    float *atty;    /* H*D */
    float *tmp;     /* C */
    float *gu;      /* 2F */
    float *ff;      /* F */
    float *scores;  /* cap */
    float *probs;   /* cap */
    float *logits;  /* V */
    /* prefill buffers: every position of the sequence, and one chunk of rows */
    float *xa;      /* cap, C     residual stream */
    float *qa;      /* cap, H*D   queries (after RoPE) */
    float *aa;      /* cap, H*D   attention outputs */
    float *cqa;     /* cap, H     query length scale (1 when unscaled) */
    float *ch_h;    /* CHUNK, C */
    float *ch_w;    /* CHUNK, max(3HD, 2F, V) */
    float *ch_f;    /* CHUNK, F */
    float *ch_t;    /* CHUNK, C */
    float *ch_r;    /* CHUNK      rstd (unused) */
    /* attention diagnostics, summed over every head's query row while `collect` is set:
     * per layer, entropy (nats), support size (weights > 0) and maximum weight */
    int collect;
    long diag_rows;                   /* query rows summed, per layer */
    double diag[LCG_MAX_LAYERS][3];   /* L: entropy, support, max */
    /* optional hooks (NULL: none; decoder_init clears them, decoder_reset keeps them): each
     * attention row (decoder_prefill: of the rows >= logits_from; decoder_step: every row) and
     * each final representation (decoder_prefill, the same rows) */
    lcg_row_observer observe;
    void *observe_ctx;
    lcg_hidden_fn hidden;
    void *hidden_ctx;
    /* optional (NULL: none; decoder_init clears it, decoder_reset keeps it): once *stop is set,
     * decoder_prefill abandons its pass between attention tasks (a 65,536-token sample on the
     * CPU takes minutes; a stop request should not wait for it). The cache and the emitted
     * logits are then incomplete: the caller discards the sequence. */
    const volatile sig_atomic_t *stop;
} lcg_decoder;

/* bytes a decoder of capacity cap needs (for the memory check before evaluation); its prefill
 * needs prefill_scratch_bytes more per thread */
size_t decoder_bytes(const lcg_config *cfg, int cap);
void decoder_init(lcg_decoder *d, const lcg_model *m, int cap);
void decoder_free(lcg_decoder *d);
/* empties the cache and the diagnostics */
void decoder_reset(lcg_decoder *d);
/* keeps the first n (<= d->n) positions of the cache: the next step appends at n */
void decoder_truncate(lcg_decoder *d, int n);
/* append `token` at position d->n; returns the next-token logits [V] if want_logits, else
 * NULL (skipping the LM head). Dies if the cache is full. */
const float *decoder_step(lcg_decoder *d, int token, int want_logits);

/* receives the next-token logits [V] of position pos */
typedef void (*lcg_logits_fn)(void *ctx, int pos, const float *logits);
/* append tok[n] at positions d->n .. d->n + n - 1 in one blocked pass and call emit (if not
 * NULL) with the logits of every position >= logits_from, in position order; the attention
 * diagnostics are collected on exactly those positions. Equal to n decoder_step calls up to
 * float rounding (bitwise for the entmax family: same scores, same candidates, same solve,
 * same summation order; softmax differs by its online rescaling and exp). Dies if the cache
 * would overflow. */
void decoder_prefill(lcg_decoder *d, const int *tok, int n, int logits_from, lcg_logits_fn emit,
                     void *ctx);

/* entropy, support and max of one weight row, added to acc[3] (decoder_step, the prefill) */
void decoder_diag_add(double *acc, const float *p /* n */, int n);
/* bytes of one thread's prefill attention scratch at capacity cap */
size_t prefill_scratch_bytes(const lcg_config *cfg, int cap);
/* the prefill's causal QK^T scan alone (its tile kernel over every block and key tile,
 * parallel over blocks), for bench/evalbench: q [n, D] against kt [D, ldk] of one head;
 * returns the sum of the row maxima (a checksum) */
double prefill_qk_scan(const float *q, const float *kt, size_t ldk, int n, int D);

#endif
