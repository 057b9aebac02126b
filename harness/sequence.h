/*
 * sequence.h: the model input of task samples (sequence.c): BOS src [SEP] trg, padded into [B, T]
 * batches with their targets and the mask of supervised positions
 */
#ifndef LCG_SEQUENCE_H
#define LCG_SEQUENCE_H

#include "../tasks/task.h"

/* ---- sequences (harness/sequence.c) ------------------------------------------------------ */
typedef struct {
    int *tok;            /* B, T  model input (pad-filled) */
    int *tgt;            /* B, T  next token, or the token's label */
    unsigned char *mask; /* B, T  1 on supervised positions */
    int B, T, cap;       /* cap: allocated B*T */
    long n_real;         /* non-pad input tokens */
} lcg_batch;

/* model input length of one sample (BOS src [SEP] trg, or BOS src EOS for token classification) */
int seq_input_len(const lcg_task_cfg *task, int n_src, int n_trg);
/* the largest input length a sample of nominal length len can give */
int seq_max_input(const lcg_task_cfg *task, int len);
/* fills one batch of fresh samples with lengths uniform in [len - vary, len + vary] */
void batch_fill(lcg_batch *b, const lcg_task_cfg *task, pcg32 *rng, int B, int len, int vary);
void batch_free(lcg_batch *b);

#endif
