/*
 * sequence.c: samples -> model sequences in the reference layout (task.h: source->target, or
 * token classification with aligned labels), and training batches of fresh samples,
 * right-padded. Right padding needs no attention mask under causal
 * attention: real positions never see the pads after them, and pads carry no loss.
 */
#include "run.h"

#include <string.h>

int seq_max_input(const lcg_task_cfg *task, int len) {
    int ms, mt;
    task->task->max_sizes(task, len, &ms, &mt);
    if (task->task->kind == LCG_TASK_TOKEN_CLS) return ms + 2;   /* BOS src EOS */
    return 1 + ms + (task->task->uses_sep ? 1 : 0) + mt; /* BOS src [SEP] trg  (EOS is only a target) */
}

void batch_fill(lcg_batch *b, const lcg_task_cfg *task, pcg32 *rng, int B, int len, int vary) {
    int cap_T = seq_max_input(task, len + vary);
    if (B * cap_T > b->B * b->cap_T || !b->tok) {
        batch_free(b);
        b->tok = LCG_NEW(int, (size_t)B * cap_T);
        b->tgt = LCG_NEW(int, (size_t)B * cap_T);
        b->mask = LCG_NEW(unsigned char, (size_t)B * cap_T);
    }
    b->B = B;
    b->cap_T = cap_T;
    lcg_tokens tk = lcg_task_tokens(task);
    int ms, mt;
    task->task->max_sizes(task, len + vary, &ms, &mt);
    int *src = LCG_NEW(int, ms + 1), *trg = LCG_NEW(int, mt + 1);
    int *seq_len = LCG_NEW(int, B), *n_prompt = LCG_NEW(int, B), T = 0;
    /* generate every sample first (T is the longest), then lay them out padded */
    int *all = LCG_NEW(int, (size_t)B * (cap_T + 1)); /* B, cap_T + 1: BOS src [SEP] trg EOS */
    int cls = task->task->kind == LCG_TASK_TOKEN_CLS;
    int *labels = LCG_NEW(int, cls ? (size_t)B * (cap_T + 1) : 1); /* token classification */
    b->n_real = 0;
    for (int i = 0; i < B; i++) {
        int L = len - vary + (int)pcg32_below(rng, (uint32_t)(2 * vary + 1));
        int n_src, n_trg;
        task->task->generate(task, rng, L, src, &n_src, trg, &n_trg);
        int n = 0, *seq = all + (size_t)i * (cap_T + 1);
        if (cls) { /* BOS src EOS, then the labels: seq holds 2 * (n_src + 2) entries */
            seq[n++] = tk.bos;
            for (int j = 0; j < n_src; j++) seq[n++] = src[j];
            seq[n++] = tk.eos;
            for (int j = 0; j < n_src; j++) labels[(size_t)i * (cap_T + 1) + j] = trg[j];
            n_prompt[i] = n_src;
            seq_len[i] = n;
            if (n > T) T = n;
            continue;
        }
        seq[n++] = tk.bos;
        for (int j = 0; j < n_src; j++) seq[n++] = src[j];
        if (task->task->uses_sep) seq[n++] = tk.sep;
        n_prompt[i] = n;
        for (int j = 0; j < n_trg; j++) seq[n++] = trg[j];
        seq[n++] = tk.eos;
        seq_len[i] = n;
        if (n - 1 > T) T = n - 1;
    }
    b->T = T;
    for (int i = 0; i < B; i++) {
        const int *s = all + (size_t)i * (cap_T + 1);
        int *tok = b->tok + (size_t)i * T, *tgt = b->tgt + (size_t)i * T;
        unsigned char *mask = b->mask + (size_t)i * T;
        for (int t = 0; t < T; t++) {
            if (cls) { /* labels aligned with their tokens (not shifted), loss on src only */
                int real = t < seq_len[i], lab = t >= 1 && t <= n_prompt[i];
                tok[t] = real ? s[t] : tk.pad;
                tgt[t] = lab ? labels[(size_t)i * (cap_T + 1) + t - 1] : tk.pad;
                mask[t] = (unsigned char)lab;
                continue;
            }
            int real = t < seq_len[i] - 1;
            tok[t] = real ? s[t] : tk.pad;
            tgt[t] = real ? s[t + 1] : tk.pad;
            mask[t] = real && t >= n_prompt[i] - 1; /* predict trg[0] from the last prompt token */
        }
        b->n_real += cls ? seq_len[i] : seq_len[i] - 1;
    }
    lcg_free(labels);
    lcg_free(all);
    lcg_free(n_prompt);
    lcg_free(seq_len);
    lcg_free(src);
    lcg_free(trg);
}

void batch_free(lcg_batch *b) {
    lcg_free(b->tok);
    lcg_free(b->tgt);
    lcg_free(b->mask);
    memset(b, 0, sizeof *b);
}
