/*
 * bleu.c: see bleu.h. Each order n counts n-grams by sorting them: an n-gram of ids below 2^16
 * packs into 64 bits, so the hypothesis's and the reference's n-grams are two sorted arrays
 * of integers, and the clipped matches are one merge pass (min of the two counts per
 * distinct n-gram). O(L log L) per pair, any length.
 */
#include "bleu.h"
#include "../kernels/util.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>

static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

/* the sorted n-grams of s[len] packed 16 bits a token; returns their count */
static long ngrams(uint64_t *out, const int *s, int len, int n) {
    long m = len - n + 1 > 0 ? len - n + 1 : 0;
    for (long i = 0; i < m; i++) {
        uint64_t k = 0;
        for (int j = 0; j < n; j++) k = k << 16 | (uint16_t)s[i + j];
        out[i] = k;
    }
    qsort(out, (size_t)m, sizeof *out, cmp_u64);
    return m;
}

void bleu_add(lcg_bleu *b, const int *hyp, int n_hyp, const int *ref, int n_ref) {
    for (int i = 0; i < n_hyp; i++)
        if (hyp[i] < 0 || hyp[i] > 65535) lcg_die("BLEU: token id %d outside [0, 65535]", hyp[i]);
    for (int i = 0; i < n_ref; i++)
        if (ref[i] < 0 || ref[i] > 65535) lcg_die("BLEU: token id %d outside [0, 65535]", ref[i]);
    uint64_t *h = LCG_SCRATCH(uint64_t, n_hyp + 1), *r = LCG_SCRATCH(uint64_t, n_ref + 1);
    for (int n = 1; n <= LCG_BLEU_N; n++) {
        long nh = ngrams(h, hyp, n_hyp, n), nr = ngrams(r, ref, n_ref, n), i = 0, j = 0;
        while (i < nh && j < nr) { /* per distinct n-gram: min(hyp count, ref count) */
            if (h[i] < r[j]) i++;
            else if (h[i] > r[j]) j++;
            else {
                uint64_t k = h[i];
                long ch = 0, cr = 0;
                while (i < nh && h[i] == k) i++, ch++;
                while (j < nr && r[j] == k) j++, cr++;
                b->match[n - 1] += ch < cr ? ch : cr;
            }
        }
        b->total[n - 1] += nh;
    }
    b->hyp_len += n_hyp;
    b->ref_len += n_ref;
    lcg_free(h);
    lcg_free(r);
}

void bleu_merge(lcg_bleu *b, const lcg_bleu *a) {
    for (int n = 0; n < LCG_BLEU_N; n++) b->match[n] += a->match[n], b->total[n] += a->total[n];
    b->hyp_len += a->hyp_len;
    b->ref_len += a->ref_len;
}

double bleu_score(const lcg_bleu *b) {
    double log_p = 0;
    for (int n = 0; n < LCG_BLEU_N; n++) {
        if (b->match[n] == 0 || b->total[n] == 0) return 0; /* no smoothing */
        log_p += log((double)b->match[n] / (double)b->total[n]);
    }
    double bp = b->hyp_len < b->ref_len ? exp(1.0 - (double)b->ref_len / (double)b->hyp_len) : 1.0;
    return bp * exp(log_p / LCG_BLEU_N);
}
