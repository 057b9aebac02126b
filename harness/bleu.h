/*
 * bleu.h: corpus BLEU-4 over token-id sequences, as sacreBLEU defines it (4-gram precisions
 * with clipped counts summed over the corpus, brevity penalty from the summed lengths, no
 * smoothing, one reference per hypothesis), on the space-joined ids: what the reference
 * reports for sort. The statistics add up pair by pair, so a rung's samples can be scored in
 * any order and merged in sample order. Does not tokenize text: ids are the words.
 */
#ifndef LCG_BLEU_H
#define LCG_BLEU_H

#define LCG_BLEU_N 4

typedef struct {
    long match[LCG_BLEU_N]; /* clipped n-gram matches, n = 1..4 */
    long total[LCG_BLEU_N]; /* hypothesis n-grams */
    long hyp_len, ref_len;
} lcg_bleu;

/* adds one pair: hyp[n_hyp] against ref[n_ref] (ids in [0, 65535]) */
void bleu_add(lcg_bleu *b, const int *hyp, int n_hyp, const int *ref, int n_ref);
/* b += a */
void bleu_merge(lcg_bleu *b, const lcg_bleu *a);
/* the corpus score in [0, 1] (sacreBLEU's / 100); 0 when any order has no match */
double bleu_score(const lcg_bleu *b);

#endif
