/*
 * infer.h: incremental decoding with a KV cache, one token at a time, for evaluation at any
 * length. Attention scores one query row at a time against the cache with the same row
 * normalizers as training, so memory is O(n) per decoder (the cache plus one score row), never
 * n x n. Float model only; a decoder is single-threaded so evaluation can run one per thread.
 */
#ifndef LCG_INFER_H
#define LCG_INFER_H

#include "model.h"

typedef struct lcg_decoder_s {
    const lcg_model *m;
    int cap;        /* positions the cache holds */
    int n;          /* positions filled */
    float *mem;     /* one allocation for everything below */
    float *kc;      /* L, cap, H*D  keys (after RoPE) */
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
    /* attention diagnostics, summed over every head's query row while `collect` is set:
     * per layer, entropy (nats), support size (weights > 0) and maximum weight */
    int collect;
    long diag_rows;                   /* query rows summed, per layer */
    double diag[LCG_MAX_LAYERS][3];   /* L: entropy, support, max */
} lcg_decoder;

/* bytes a decoder of capacity cap needs (for the memory check before evaluation) */
size_t decoder_bytes(const lcg_config *cfg, int cap);
void decoder_init(lcg_decoder *d, const lcg_model *m, int cap);
void decoder_free(lcg_decoder *d);
/* empties the cache and the diagnostics */
void decoder_reset(lcg_decoder *d);
/* append `token` at position d->n; returns the next-token logits [V] if want_logits, else
 * NULL (skipping the LM head). Dies if the cache is full. */
const float *decoder_step(lcg_decoder *d, int token, int want_logits);

#endif
