/*
 * sequence.c: samples -> model sequences in the reference layout (task.h: source->target, or
 * token classification with aligned labels), and training batches, right-padded. Right
 * padding needs no attention mask under causal attention: real positions never see the pads
 * after them, and pads carry no loss. Samples come from the task's generator (fresh each
 * step) or from a reference-format data file (data.c).
 */
#include "data.h"
#include "sequence.h"

#include <stdlib.h>
#include <string.h>

int seq_input_len(const lcg_task_cfg *task, int n_src, int n_trg) {
    if (task->task->kind == LCG_TASK_TOKEN_CLS) return n_src + 2;   /* BOS src EOS */
    return 1 + n_src + (task->task->uses_sep ? 1 : 0) + n_trg; /* BOS src [SEP] trg (EOS is only a target) */
}

int seq_max_input(const lcg_task_cfg *task, int len) {
    int ms, mt;
    task->task->max_sizes(task, len, &ms, &mt);
    return seq_input_len(task, ms, mt);
}

/* lays out B samples (src[i][0..n_src[i]), trg[i][0..n_trg[i])) as one padded batch */
static void batch_layout(lcg_batch *b, const lcg_task_cfg *task, int B, const int *const *src,
                         const int *n_src, const int *const *trg, const int *n_trg) {
    int T = 0, cls = task->task->kind == LCG_TASK_TOKEN_CLS;
    for (int i = 0; i < B; i++) {
        int n = seq_input_len(task, n_src[i], n_trg[i]);
        T = n > T ? n : T;
    }
    if ((size_t)B * T > (size_t)b->cap || !b->tok) {
        batch_free(b);
        b->cap = B * T;
        b->tok = LCG_NEW(int, (size_t)b->cap);
        b->tgt = LCG_NEW(int, (size_t)b->cap);
        b->mask = LCG_NEW(unsigned char, (size_t)b->cap);
    }
    b->B = B;
    b->T = T;
    b->n_real = 0;
    lcg_tokens tk = lcg_task_tokens(task);
    for (int i = 0; i < B; i++) {
        int *tok = b->tok + (size_t)i * T, *tgt = b->tgt + (size_t)i * T, ns = n_src[i];
        unsigned char *mask = b->mask + (size_t)i * T;
        for (int t = 0; t < T; t++) tok[t] = tgt[t] = tk.pad, mask[t] = 0;
        tok[0] = tk.bos;
        memcpy(tok + 1, src[i], sizeof(int) * (size_t)ns);
        if (cls) { /* BOS src EOS; labels aligned with their tokens, loss on src only */
            tok[ns + 1] = tk.eos;
            memcpy(tgt + 1, trg[i], sizeof(int) * (size_t)ns);
            memset(mask + 1, 1, (size_t)ns);
            b->n_real += ns + 2;
            continue;
        }
        /* input BOS src [SEP] trg; target = input shifted left + EOS; loss on trg and EOS,
         * starting at the last prompt token */
        int p = 1 + ns;
        if (task->task->uses_sep) tok[p++] = tk.sep;
        memcpy(tok + p, trg[i], sizeof(int) * (size_t)n_trg[i]);
        int n = p + n_trg[i];
        memcpy(tgt, tok + 1, sizeof(int) * (size_t)(n - 1));
        tgt[n - 1] = tk.eos;
        memset(mask + p - 1, 1, (size_t)(n - p + 1));
        b->n_real += n;
    }
}

void batch_fill(lcg_batch *b, const lcg_task_cfg *task, pcg32 *rng, int B, int len, int vary) {
    int ms, mt;
    task->task->max_sizes(task, len + vary, &ms, &mt);
    int *pool = LCG_NEW(int, (size_t)B * (ms + mt)), *n_src = LCG_NEW(int, B), *n_trg = LCG_NEW(int, B);
    const int **src = LCG_NEW(const int *, B), **trg = LCG_NEW(const int *, B);
    for (int i = 0; i < B; i++) {
        int L = len - vary + (int)pcg32_below(rng, (uint32_t)(2 * vary + 1));
        int *s = pool + (size_t)i * (ms + mt), *t = s + ms;
        task->task->generate(task, rng, L, s, &n_src[i], t, &n_trg[i]);
        src[i] = s, trg[i] = t;
    }
    batch_layout(b, task, B, src, n_src, trg, n_trg);
    lcg_free(pool), lcg_free(n_src), lcg_free(n_trg), lcg_free(src), lcg_free(trg);
}

int batch_fill_data(lcg_batch *b, const lcg_task_cfg *task, lcg_data_reader *r, int B, char *err,
                    size_t err_len) {
    int *n_src = LCG_NEW(int, B), *n_trg = LCG_NEW(int, B), rc = 0;
    int **src = LCG_NEW(int *, B), **trg = LCG_NEW(int *, B);
    for (int i = 0; i < B && rc == 0; i++) {
        const int *s, *t;
        if (data_next_cyclic(r, task, &s, &n_src[i], &t, &n_trg[i], err, err_len) != 0) rc = -1;
        else {
            src[i] = LCG_NEW(int, n_src[i] + 1), trg[i] = LCG_NEW(int, n_trg[i] + 1);
            memcpy(src[i], s, sizeof(int) * (size_t)n_src[i]);
            memcpy(trg[i], t, sizeof(int) * (size_t)n_trg[i]);
        }
    }
    if (rc == 0) batch_layout(b, task, B, (const int *const *)src, n_src, (const int *const *)trg, n_trg);
    for (int i = 0; i < B; i++) lcg_free(src[i]), lcg_free(trg[i]);
    lcg_free(n_src), lcg_free(n_trg), lcg_free(src), lcg_free(trg);
    return rc;
}

void batch_free(lcg_batch *b) {
    lcg_free(b->tok);
    lcg_free(b->tgt);
    lcg_free(b->mask);
    memset(b, 0, sizeof *b);
}
