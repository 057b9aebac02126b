/*
 * attnmap.c: attnmap_write (attnmap.h). The sample is the evaluation's own (stream "test",
 * len, the sample-th draw), fed teacher-forced as eval.c feeds it; the backend's evaluation
 * shows each attention row of the positions asked for (batch attn_row), and only the query rows
 * of interest are kept, their keys summed into at most max_keys bins: memory is the decoder's
 * O(n) plus rows x bins per (layer, head), never n x n. Each (layer, head, row) cell has one
 * writer and its keys are added in key order, so the file is the same for any thread count.
 * Not here: the drawing (plots/attnmap.gp) and flags (cli/cmd_attnmap.c).
 */
#define _POSIX_C_SOURCE 200809L
#include "attnmap.h"
#include "sequence.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    int *in, n, from;  /* the input and the first position whose rows are shown */
    int *row_of;       /* n: query row index of a position, -1 if not drawn */
    int L, H, R, bin, bins;
    float *map;        /* L, H, R, bins */
} map_ctx;

static int map_input(void *ctx, int s, int *tok, int *logits_from) {
    (void)s;
    map_ctx *m = ctx;
    memcpy(tok, m->in, sizeof(int) * (size_t)m->n);
    *logits_from = m->from;
    return m->n;
}

static void map_logits(void *ctx, int s, int pos, const float *logits) { (void)ctx, (void)s, (void)pos, (void)logits; }

static void map_row(void *ctx, int s, int l, int h, int i, const int *j, const float *p, int n) {
    (void)s;
    map_ctx *m = ctx;
    if (i < 0 || i >= m->n || m->row_of[i] < 0) return;
    float *row = m->map + (((size_t)l * m->H + h) * m->R + m->row_of[i]) * m->bins;
    for (int k = 0; k < n; k++) {
        int key = j ? j[k] : k;
        if (key >= 0 && key < m->n) row[key / m->bin] += p[k];
    }
}

int attnmap_write(lcg_backend *b, const lcg_run_cfg *cfg, const lcg_attnmap_opts *o, const char *path,
                  lcg_attnmap_info *info, char *err, size_t err_len) {
    const lcg_task_cfg *task = &cfg->task;
    const lcg_task *tk = task->task;
    int ms, mt, len = o->len;
    tk->max_sizes(task, len, &ms, &mt);
    int *src = LCG_NEW(int, ms), *trg = LCG_NEW(int, mt), ns = 0, nt = 0;
    pcg32 rng = pcg32_derive(cfg->seed, "test", (uint64_t)len); /* eval_make_set's stream */
    lcg_task_cfg split;                                          /* and its split's task */
    lcg_task_split(&split, task, cfg->seed, "test", (uint64_t)len);
    for (int s = 0; s <= o->sample; s++) tk->generate(&split, &rng, len, src, &ns, trg, &nt);
    lcg_task_split_release(&split, task);

    int cls = tk->kind == LCG_TASK_TOKEN_CLS, sep = !cls && tk->uses_sep, n = 0;
    lcg_tokens tok = lcg_task_tokens(task);
    map_ctx m = {.in = LCG_NEW(int, 2 + ns + nt), .L = b->cfg.L, .H = b->cfg.H};
    m.in[n++] = tok.bos; /* eval.c's input: BOS src [SEP] trg (token classification: BOS src) */
    for (int j = 0; j < ns; j++) m.in[n++] = src[j];
    if (sep) m.in[n++] = tok.sep;
    for (int j = 0; !cls && j < nt; j++) m.in[n++] = trg[j];
    m.n = n;
    int r0 = cls ? 1 : 1 + ns + sep - 1; /* the first supervised position */
    int first = o->all_rows || n - o->max_rows < 0 ? 0 : n - o->max_rows;
    m.from = first, m.R = n - first;
    m.row_of = LCG_NEW(int, n);
    for (int i = 0; i < n; i++) m.row_of[i] = i >= first ? i - first : -1;
    m.bin = (n + o->max_keys - 1) / o->max_keys;
    m.bins = (n + m.bin - 1) / m.bin;
    m.map = LCG_NEW(float, (size_t)m.L * m.H * m.R * m.bins);

    static const volatile sig_atomic_t no_stop = 0;
    lcg_eval_diag dg;
    lcg_eval_batch batch = {.n_seqs = 1, .cap = n + 1, .input = map_input, .logits = map_logits, .ctx = &m,
                            .diag = &dg, .stop = &no_stop, .attn_row = map_row};
    b->ops->eval(b, &batch);

    /* the answer marks of the drawn supervised rows */
    int *ans = LCG_NEW(int, ns + 1), n_marks = 0;
    char *buf = NULL;
    size_t n_buf = 0;
    FILE *f = open_memstream(&buf, &n_buf);
    if (!f) lcg_die("open_memstream failed");
    char tp[256];
    lcg_task_params_str(task, tp, sizeof tp);
    fprintf(f, "# lcgbench attnmap: task %s (%s), attn %s, pos %s, seed %llu, length %d, sample %d\n", tk->name, tp,
            lcg_normalizer_at(b->cfg.norm)->name, lcg_posenc_at(b->cfg.pos)->name, (unsigned long long)cfg->seed,
            len, o->sample);
    fprintf(f, "# input %d tokens, %d layers x %d heads, query rows %d..%d, keys in bins of %d (%d bins)\n", n, m.L,
            m.H, first, n - 1, m.bin, m.bins);
    fprintf(f, "# layer head r pos key weight\n");
    for (int l = 0; l < m.L; l++)
        for (int h = 0; h < m.H; h++) {
            if (l || h) fprintf(f, "\n\n");
            for (int r = 0; r < m.R; r++) {
                const float *row = m.map + (((size_t)l * m.H + h) * m.R + r) * m.bins;
                for (int k = 0; k < m.bins; k++)
                    fprintf(f, "%d %d %d %d %d %.9g\n", l, h, r, first + r, k * m.bin, (double)row[k]);
                fprintf(f, "\n"); /* a scan line */
            }
        }
    fprintf(f, "\n\n# answers: r pos key\n");
    for (int r = 0; tk->answer_pos && r < m.R; r++) {
        int t = first + r - r0;
        if (t < 0 || t >= (cls ? ns : nt + 1)) continue;
        int k = tk->answer_pos(task, src, ns, trg, nt, t, ans);
        for (int a = 0; a < k; a++, n_marks++) fprintf(f, "%d %d %d\n", r, first + r, 1 + ans[a]);
    }
    if (!n_marks) fprintf(f, "-1 -1 -1\n"); /* an empty block would end the file early for gnuplot */
    if (fclose(f) != 0) lcg_die("building the map in memory failed");
    int rc = lcg_write_file_atomic(path, buf, n_buf, err, err_len);
    if (info) *info = (lcg_attnmap_info){n, m.R, m.bin, m.bins, n_marks};
    free(buf);
    lcg_free(ans), lcg_free(m.map), lcg_free(m.row_of), lcg_free(m.in), lcg_free(src), lcg_free(trg);
    return rc;
}
