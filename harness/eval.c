/*
 * eval.c: the evaluation ladder. Each rung is a fixed-length test set drawn from its own
 * stream ("test", len), never shared with training. A rung's samples go to the backend as one
 * batch (the CPU's runs them in parallel, one KV-cache decoder per thread), each scored into its
 * own result slot; the totals are summed serially in sample order, so results are bitwise
 * identical for any thread count.
 *
 * One teacher-forced pass per sample gives all metrics: the whole input goes through the
 * backend's evaluation (model/backend.h; on the CPU the decoder's blocked prefill), and the
 * logits of the supervised positions are scored as they come. Greedy decoding reproduces the target
 * exactly iff, fed the true prefix, the argmax is right at every target position and then
 * EOS: until the first wrong argmax the greedy and teacher-forced prefixes coincide. So the
 * whole-sequence exact match (the paper's metric, with the reference's generation cap
 * floor(len(prompt) * gen_mult)) equals that of greedy decoding, which tests/test_harness.c
 * checks against an explicit greedy decoder. Per-token accuracy and loss are teacher-forced,
 * over the supervised positions (target tokens and EOS), and so are the attention diagnostics
 * (token classification: exact match = every label right, accuracy per label)
 * (mean entropy, support size and maximum weight of every head's query row, per layer).
 *
 * BLEU (cfg->bleu, source->target tasks) needs the greedy generation itself, not only whether
 * it is exact: it equals the target up to the first wrong argmax of the teacher-forced pass,
 * whose argmax it then takes; from there the backend continues greedily on its KV cache (the
 * batch's greedy_start/greedy_next), up to the reference's cap, stopping at EOS. The
 * prediction (the generated tokens before the first EOS) is scored against the target as
 * corpus BLEU-4 (bleu.h), summed in sample order. --bleu-max N decodes only at test lengths
 * <= N (validation always decodes); exact match needs no decoding, so it is there at every length.
 *
 * Mechanism (test rungs, tasks with answer_pos): each supervised step's answer positions are
 * laid out per sample (consecutive steps with the same positions share them, so the layout is
 * O(n): sort's equal tokens are one list), the backend shows each attention row of those steps
 * (batch attn_row) and the weight on the answer positions goes to a slot of its own (row,
 * layer, head); the slots are summed in sample, row order, so the relevant-key mass is bitwise
 * the same for any thread count. The final-layer representation at each sample's last answer
 * row gives the collapse (mean pairwise cosine similarity across samples). A backend that cannot
 * show whole rows (the GPU's) is handed the same answers as per-row key lists (batch keys) and
 * writes the mass into the same slots; the CPU's shows the rows.
 */
#include "run.h"
#include "bleu.h"
#include "data.h"
#include "sequence.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

int eval_ladder(const lcg_run_cfg *cfg, int *lens) {
    if (cfg->n_rungs) {
        memcpy(lens, cfg->rungs, sizeof(int) * (size_t)cfg->n_rungs);
        return cfg->n_rungs;
    }
    int n = 0;
    for (long L = cfg->len + cfg->vary; L <= cfg->max_len && n < LCG_MAX_RUNGS; L *= 2) lens[n++] = (int)L;
    return n;
}

int eval_last_rungs(const lcg_run_cfg *cfg, const int *lens, int n) {
    int k = 0;
    while (k < n && (!cfg->last_max || lens[k] <= cfg->last_max)) k++;
    return k;
}

void wilson95(long k, long n, double *lo, double *hi) {
    if (n <= 0) {
        *lo = 0;
        *hi = 1;
        return;
    }
    const double z = 1.959963984540054;
    double p = (double)k / n, z2n = z * z / n;
    double center = (p + z2n / 2) / (1 + z2n);
    double half = z / (1 + z2n) * sqrt(p * (1 - p) / n + z2n / (4.0 * n));
    *lo = k == 0 ? 0.0 : fmax(0.0, center - half);
    *hi = k == n ? 1.0 : fmin(1.0, center + half);
}

static int argmax(const float *x, int n) {
    int best = 0;
    for (int i = 1; i < n; i++)
        if (x[i] > x[best]) best = i;
    return best;
}

static double nll(const float *logits, int V, int target) {
    float mx = logits[argmax(logits, V)];
    double s = 0;
    for (int v = 0; v < V; v++) s += exp((double)(logits[v] - mx));
    return log(s) + mx - logits[target];
}

/* one sample: its teacher-forced input, and the scoring of the logits of each supervised
 * position as the backend delivers them, in order */
typedef struct {
    const lcg_task_cfg *task;
    const int *src, *trg;
    int n_src, n_trg;
    int V, r0, eos, cls;
    lcg_sample_result *r;
    int all_ok, eos_ok;
    /* greedy generation (BLEU): gen[gen_cap] the prediction so far, n_gen of it; the first
     * target position whose argmax is wrong (-1: none yet) and that argmax */
    int *gen, n_gen, gen_cap, wrong, wrong_tok;
    /* relevant-key mass (eval_ctx_answers): step t (position r0 + t, t < n_steps) reads the
     * input positions ans_pos[ans_off[t] ..][ans_len[t]] (ascending) and writes its row slot
     * ans_slot[t] (-1: no answer) of mass [n_ans, L, H], NAN until the backend shows the row */
    int n_steps, n_ans, L, H, C;
    int *ans_off, *ans_len, *ans_slot, *ans_pos;
    double *mass;
    /* the same answers by slot for a backend that takes keys (batch keys: eval_keys): each slot's
     * row, offset and length (key_mem [3 n_ans]), mass the same array */
    lcg_eval_keys keys;
    int *key_mem;
    /* collapse: the final-layer representation [C] at position rep_pos (-1: none), rep_ok once seen */
    float *rep;
    int rep_pos, rep_ok;
} eval_ctx;

static void eval_ctx_init(eval_ctx *e, lcg_sample_result *r, int V, const lcg_task_cfg *task, const int *src,
                          int n_src, const int *trg, int n_trg) {
    int cls = task->task->kind == LCG_TASK_TOKEN_CLS, sep = !cls && task->task->uses_sep;
    int n_prompt = 1 + n_src + sep;
    /* supervised positions (logits and diagnostics): every source token's for token
     * classification; else the last prompt token's (predicting trg[0]) and each target's */
    *e = (eval_ctx){.task = task, .src = src, .trg = trg, .n_src = n_src, .n_trg = n_trg, .V = V,
                    .r0 = cls ? 1 : n_prompt - 1, .eos = lcg_task_tokens(task).eos, .cls = cls, .r = r,
                    .all_ok = 1, .eos_ok = 0, .wrong = -1};
    e->gen_cap = cls ? 0 : (int)floor(n_prompt * task->task->gen_mult) - n_prompt;
    r->tokens = cls ? n_src : n_trg + 1;
    r->ok = 0;
    r->loss = 0;
}

/* lays out the answer positions of e's supervised steps (the task's answer_pos) for a model of
 * L layers, H heads, width C; nothing when the task declares none */
static void eval_ctx_answers(eval_ctx *e, int L, int H, int C) {
    const lcg_task *tk = e->task->task;
    e->rep_pos = -1;
    if (!tk->answer_pos) return;
    e->n_steps = e->cls ? e->n_src : e->n_trg + 1;
    e->L = L, e->H = H, e->C = C;
    e->ans_off = LCG_NEW(int, 3 * (size_t)e->n_steps);
    e->ans_len = e->ans_off + e->n_steps, e->ans_slot = e->ans_len + e->n_steps;
    int *cur = LCG_NEW(int, e->n_src + 1), cap = e->n_src + 16, used = 0, prev = -1;
    e->ans_pos = LCG_NEW(int, cap);
    for (int t = 0; t < e->n_steps; t++) {
        int n = tk->answer_pos(e->task, e->src, e->n_src, e->trg, e->n_trg, t, cur), k = 0;
        for (int a = 0; a < n; a++) /* input positions (after BOS) the step's row can see */
            if (cur[a] >= 0 && cur[a] < e->n_src && 1 + cur[a] <= e->r0 + t) cur[k++] = 1 + cur[a];
        e->ans_len[t] = k, e->ans_slot[t] = k ? e->n_ans++ : -1;
        if (k && prev >= 0 && e->ans_len[prev] == k &&
            memcmp(e->ans_pos + e->ans_off[prev], cur, sizeof(int) * (size_t)k) == 0) {
            e->ans_off[t] = e->ans_off[prev]; /* the same positions as the last answer step */
        } else {
            if (used + k > cap) {
                int nc = 2 * cap > used + k ? 2 * cap : used + k, *np = LCG_NEW(int, nc);
                memcpy(np, e->ans_pos, sizeof(int) * (size_t)used);
                lcg_free(e->ans_pos);
                e->ans_pos = np, cap = nc;
            }
            memcpy(e->ans_pos + used, cur, sizeof(int) * (size_t)k);
            e->ans_off[t] = used, used += k;
        }
        if (k) prev = t, e->rep_pos = e->r0 + t;
    }
    lcg_free(cur);
    e->mass = LCG_NEW(double, (size_t)(e->n_ans ? e->n_ans : 1) * L * H);
    for (size_t k = 0; k < (size_t)e->n_ans * L * H; k++) e->mass[k] = NAN;
    e->rep = LCG_NEW(float, C);
    int *kr = e->key_mem = LCG_NEW(int, 3 * (size_t)(e->n_ans ? e->n_ans : 1));
    int *ko = kr + e->n_ans, *kl = ko + e->n_ans;
    for (int t = 0, q; t < e->n_steps; t++) /* slots in step order: rows ascending */
        if ((q = e->ans_slot[t]) >= 0) kr[q] = e->r0 + t, ko[q] = e->ans_off[t], kl[q] = e->ans_len[t];
    e->keys = (lcg_eval_keys){.n_rows = e->n_ans, .row = kr, .off = ko, .len = kl, .key = e->ans_pos, .mass = e->mass};
}

static void eval_ctx_free(eval_ctx *e) {
    lcg_free(e->ans_off), lcg_free(e->ans_pos), lcg_free(e->mass), lcg_free(e->rep), lcg_free(e->key_mem);
    e->ans_off = e->ans_pos = e->key_mem = NULL, e->mass = NULL, e->rep = NULL;
}

static int cmp_int(const void *a, const void *b) {
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

/* one attention row of a supervised step: its weight on the step's answer positions */
static void eval_attn_row(void *ctx, int s, int l, int h, int i, const int *j, const float *p, int n) {
    eval_ctx *e = (eval_ctx *)ctx + s;
    int t = i - e->r0;
    if (!e->mass || t < 0 || t >= e->n_steps || e->ans_slot[t] < 0) return;
    const int *a = e->ans_pos + e->ans_off[t];
    int na = e->ans_len[t];
    double m = 0;
    if (!j) {
        for (int k = 0; k < na; k++)
            if (a[k] < n) m += p[a[k]];
    } else {
        for (int k = 0; k < n; k++)
            if (bsearch(&j[k], a, (size_t)na, sizeof *a, cmp_int)) m += p[k];
    }
    e->mass[((size_t)e->ans_slot[t] * e->L + l) * e->H + h] = m;
}

/* the same rows for a backend that computes the mass itself (into the same slots) */
static const lcg_eval_keys *eval_keys(void *ctx, int s) {
    eval_ctx *e = (eval_ctx *)ctx + s;
    return e->mass && e->n_ans ? &e->keys : NULL;
}

static void eval_hidden(void *ctx, int s, int pos, const float *x) {
    eval_ctx *e = (eval_ctx *)ctx + s;
    if (pos != e->rep_pos || !e->rep) return;
    memcpy(e->rep, x, sizeof(float) * (size_t)e->C);
    e->rep_ok = 1;
}

/* the rung's relevant-key mass and collapse from its samples' slots, summed in sample order */
static void eval_mechanism(lcg_rung_result *res, const eval_ctx *ctx, int S, int L, int H, int C) {
    double *sum = LCG_NEW(double, (size_t)L * H), *u = LCG_NEW(double, C), *U = LCG_NEW(double, C), uu = 0;
    long rows = 0;
    for (int s = 0; s < S; s++) {
        const eval_ctx *e = &ctx[s];
        if (!e->mass || !e->n_ans) continue;
        size_t n = (size_t)e->n_ans * L * H, k;
        for (k = 0; k < n && !isnan(e->mass[k]); k++) {}
        if (k < n) continue; /* the backend did not show these rows */
        for (int r = 0; r < e->n_ans; r++)
            for (int x = 0; x < L * H; x++) sum[x] += e->mass[(size_t)r * L * H + x];
        rows += e->n_ans;
    }
    res->mass_rows = rows;
    for (int l = 0; rows && l < L; l++) {
        int best = 0;
        double all = 0;
        for (int h = 0; h < H; h++) {
            all += sum[l * H + h];
            if (sum[l * H + h] > sum[l * H + best]) best = h;
        }
        res->mass_head[l] = best;
        res->mass_best[l] = sum[l * H + best] / rows;
        res->mass_mean[l] = all / H / rows;
    }
    int n = 0;
    for (int s = 0; s < S; s++) {
        const eval_ctx *e = &ctx[s];
        if (!e->rep_ok) continue;
        double nn = 0;
        for (int c = 0; c < C; c++) nn += (double)e->rep[c] * e->rep[c];
        nn = nn > 0 ? 1 / sqrt(nn) : 0;
        for (int c = 0; c < C; c++) u[c] = e->rep[c] * nn, U[c] += u[c], uu += u[c] * u[c];
        n++;
    }
    double UU = 0;
    for (int c = 0; c < C; c++) UU += U[c] * U[c];
    res->collapse_n = n;
    res->collapse = n >= 2 ? (UU - uu) / ((double)n * (n - 1)) : 0;
    lcg_free(sum), lcg_free(u), lcg_free(U);
}

/* the whole teacher-forced input: BOS src [SEP] trg (token classification: BOS src) */
static int eval_input(void *ctx, int s, int *in, int *logits_from) {
    eval_ctx *e = (eval_ctx *)ctx + s;
    lcg_tokens tk = lcg_task_tokens(e->task);
    int sep = !e->cls && e->task->task->uses_sep, k = 0;
    in[k++] = tk.bos;
    for (int j = 0; j < e->n_src; j++) in[k++] = e->src[j];
    if (sep) in[k++] = tk.sep;
    for (int j = 0; !e->cls && j < e->n_trg; j++) in[k++] = e->trg[j];
    *logits_from = e->r0;
    return k;
}

static void eval_logits(void *ctx, int s, int pos, const float *logits) {
    eval_ctx *e = (eval_ctx *)ctx + s;
    int j = pos - e->r0, want = j < e->n_trg ? e->trg[j] : e->eos;
    int a = argmax(logits, e->V), good = a == want;
    if (!good && e->wrong < 0) e->wrong = j, e->wrong_tok = a;
    e->r->ok += good;
    e->r->loss += nll(logits, e->V, want);
    if (j < e->n_trg || e->cls) e->all_ok &= good;
    else e->eos_ok = good;
}

/* the greedy generation after the teacher-forced pass: the target up to the first wrong
 * argmax, then that argmax; a continuation from there if the cap and EOS allow */
static int eval_greedy_start(void *ctx, int s, int *tok) {
    eval_ctx *e = (eval_ctx *)ctx + s;
    int j = e->wrong < 0 || e->wrong > e->gen_cap ? e->gen_cap : e->wrong; /* the target's share */
    if (j > e->n_trg) j = e->n_trg;
    memcpy(e->gen, e->trg, sizeof(int) * (size_t)j);
    e->n_gen = j;
    if (e->wrong < 0 || e->wrong >= e->gen_cap || e->wrong_tok == e->eos) return -1;
    e->gen[e->n_gen++] = e->wrong_tok;
    if (e->n_gen == e->gen_cap) return -1;
    *tok = e->wrong_tok;
    return e->r0 + e->wrong + 1; /* BOS src [SEP] trg[0 .. wrong - 1] */
}

static int eval_greedy_next(void *ctx, int s, int pos, const float *logits) {
    (void)pos;
    eval_ctx *e = (eval_ctx *)ctx + s;
    int a = argmax(logits, e->V);
    if (a == e->eos) return -1;
    e->gen[e->n_gen++] = a;
    return e->n_gen == e->gen_cap ? -1 : a;
}

/* the exact match and diagnostics of a scored sample */
static void eval_ctx_finish(const eval_ctx *e, const lcg_eval_diag *dg) {
    lcg_sample_result *r = e->r;
    if (e->cls) {
        r->exact = e->all_ok;
    } else {
        int n_prompt = e->r0 + 1;
        int gen_cap = (int)floor(n_prompt * e->task->task->gen_mult) - n_prompt;
        r->exact = e->all_ok && (gen_cap == e->n_trg || (gen_cap > e->n_trg && e->eos_ok));
    }
    r->diag_rows = dg->rows;
    memcpy(r->diag, dg->sum, sizeof r->diag);
}

void eval_sample(lcg_sample_result *r, lcg_backend *b, const lcg_task_cfg *task, const int *src, int n_src,
                 const int *trg, int n_trg) {
    eval_ctx e;
    eval_ctx_init(&e, r, b->cfg.V, task, src, n_src, trg, n_trg);
    static const volatile sig_atomic_t no_stop = 0;
    lcg_eval_diag dg;
    lcg_eval_batch batch = {.n_seqs = 1, .cap = seq_input_len(task, n_src, n_trg) + 1, .input = eval_input,
                            .logits = eval_logits, .ctx = &e, .diag = &dg, .stop = &no_stop};
    b->ops->eval(b, &batch);
    eval_ctx_finish(&e, &dg);
}

int eval_rung_samples(const lcg_run_cfg *cfg, int len) {
    long S = cfg->eval_samples, lo = cfg->eval_min < S ? cfg->eval_min : S;
    if (cfg->eval_tokens > 0 && cfg->eval_tokens / len < S) S = cfg->eval_tokens / len;
    return (int)(S > lo ? S : lo > 0 ? lo : 1);
}

void eval_make_set(const lcg_run_cfg *cfg, int len, int *src, int *n_src, int *trg, int *n_trg) {
    eval_make_stream(cfg, len, "test", eval_rung_samples(cfg, len), src, n_src, trg, n_trg);
}

void eval_make_stream(const lcg_run_cfg *cfg, int len, const char *stream, int S, int *src, int *n_src, int *trg,
                      int *n_trg) {
    lcg_task_cfg split; /* the split's task (mqmtar split-vocab 1: its own vocabulary) */
    lcg_task_split(&split, &cfg->task, cfg->seed, stream, (uint64_t)len);
    int ms, mt;
    split.task->max_sizes(&split, len, &ms, &mt);
    pcg32 rng = pcg32_derive(cfg->seed, stream, (uint64_t)len);
    for (int s = 0; s < S; s++)
        split.task->generate(&split, &rng, len, src + (size_t)s * ms, &n_src[s], trg + (size_t)s * mt, &n_trg[s]);
    lcg_task_split_release(&split, &cfg->task);
}

static int eval_rung_from(lcg_rung_result *res, lcg_backend *b, const lcg_run_cfg *cfg, int len, int val);

/* the test split of length len from cfg->data: at most eval_rung_samples samples, arrays
 * re-allocated to the longest line; returns the count (dies on malformed files) */
static int load_set(const lcg_run_cfg *cfg, int len, int **src, int *n_src, int **trg, int *n_trg,
                    int *ms, int *mt) {
    int lens[LCG_MAX_RUNGS], indices[LCG_MAX_RUNGS], idx = -1, n;
    char err[600], split[64];
    if ((n = data_test_splits(cfg->data, indices, lens, LCG_MAX_RUNGS, err, sizeof err)) < 0) lcg_die("%s", err);
    for (int k = 0; k < n && idx < 0; k++)
        if (lens[k] == len) idx = k;
    if (idx < 0) lcg_die("'%s' has no test split of length %d", cfg->data, len);
    snprintf(split, sizeof split, "test_%d_%d", indices[idx], len);
    lcg_data_reader r;
    if (data_open(&r, cfg->data, split, err, sizeof err) != 0) lcg_die("%s", err);
    int S = 0, cap_s = 0, cap_t = 0, want = eval_rung_samples(cfg, len);
    const int *s, *t;
    int a, b, rc;
    while (S < want && (rc = data_next(&r, &cfg->task, &s, &a, &t, &b, err, sizeof err)) == 1) {
        if (a > cap_s || b > cap_t) { /* grow the stride of every row */
            int ns = a > cap_s ? a : cap_s, nt = b > cap_t ? b : cap_t;
            int *s2 = LCG_NEW(int, (size_t)want * ns), *t2 = LCG_NEW(int, (size_t)want * nt);
            for (int k = 0; k < S; k++) {
                memcpy(s2 + (size_t)k * ns, *src + (size_t)k * cap_s, sizeof(int) * (size_t)n_src[k]);
                memcpy(t2 + (size_t)k * nt, *trg + (size_t)k * cap_t, sizeof(int) * (size_t)n_trg[k]);
            }
            lcg_free(*src), lcg_free(*trg);
            *src = s2, *trg = t2, cap_s = ns, cap_t = nt;
        }
        memcpy(*src + (size_t)S * cap_s, s, sizeof(int) * (size_t)a);
        memcpy(*trg + (size_t)S * cap_t, t, sizeof(int) * (size_t)b);
        n_src[S] = a, n_trg[S] = b, S++;
    }
    if (S < want && rc < 0) lcg_die("%s", err);
    if (S == 0) lcg_die("%s is empty", r.path_src);
    data_close(&r);
    *ms = cap_s, *mt = cap_t;
    return S;
}

int eval_rung(lcg_rung_result *res, lcg_backend *b, const lcg_run_cfg *cfg, int len) {
    return eval_rung_from(res, b, cfg, len, 0);
}

int eval_rung_val(lcg_rung_result *res, lcg_backend *b, const lcg_run_cfg *cfg, int len) {
    return eval_rung_from(res, b, cfg, len, 1);
}

/* a test rung, or (val) a validation set of cfg->val_samples from the generator's stream "val" */
static int eval_rung_from(lcg_rung_result *res, lcg_backend *b, const lcg_run_cfg *cfg, int len, int val) {
    double t0 = lcg_now();
    char len_s[32];
    snprintf(len_s, sizeof len_s, "%d", len);
    lcg_test_stop_point(val ? "val" : "eval", len_s);
    const lcg_task_cfg *task = &cfg->task;
    int S = val ? cfg->val_samples : eval_rung_samples(cfg, len), ms, mt;
    task->task->max_sizes(task, len, &ms, &mt);
    int *src = LCG_NEW(int, (size_t)S * ms), *trg = LCG_NEW(int, (size_t)S * mt);
    int *n_src = LCG_NEW(int, S), *n_trg = LCG_NEW(int, S);
    if (val) eval_make_stream(cfg, len, "val", S, src, n_src, trg, n_trg);
    else if (cfg->data) S = load_set(cfg, len, &src, n_src, &trg, n_trg, &ms, &mt);
    else eval_make_set(cfg, len, src, n_src, trg, n_trg);
    lcg_sample_result *out = LCG_NEW(lcg_sample_result, S);
    eval_ctx *ctx = LCG_NEW(eval_ctx, S);
    lcg_eval_diag *dg = LCG_NEW(lcg_eval_diag, S);
    int cap = 0, gmax = 0; /* decoder positions: the longest input (or generation) plus one */
    for (int k = 0; k < S; k++) {
        int in = seq_input_len(task, n_src[k], n_trg[k]);
        cap = in + 1 > cap ? in + 1 : cap;
        eval_ctx_init(&ctx[k], &out[k], b->cfg.V, task, src + (size_t)k * ms, n_src[k], trg + (size_t)k * mt, n_trg[k]);
        if (!val) eval_ctx_answers(&ctx[k], b->cfg.L, b->cfg.H, b->cfg.C);
        int g = ctx[k].gen_cap > 0 ? ctx[k].gen_cap : 0;
        gmax = g > gmax ? g : gmax;
        if (g + ctx[k].r0 + 2 > cap) cap = g + ctx[k].r0 + 2;
    }
    int bleu = lcg_run_bleu(cfg) && (val || !cfg->bleu_max || len <= cfg->bleu_max);
    int *gen = bleu ? LCG_NEW(int, (size_t)S * (gmax ? gmax : 1)) : NULL;
    for (int k = 0; bleu && k < S; k++) ctx[k].gen = gen + (size_t)k * (gmax ? gmax : 1);
    lcg_eval_batch batch = {.n_seqs = S, .cap = cap, .input = eval_input, .logits = eval_logits, .ctx = ctx,
                            .greedy_start = bleu ? eval_greedy_start : NULL, .greedy_next = eval_greedy_next,
                            .diag = dg, .stop = &lcg_stop_signal, .attn_row = val ? NULL : eval_attn_row,
                            .hidden = val ? NULL : eval_hidden, .keys = val ? NULL : eval_keys};
    /* an interrupted rung is discarded (a worker thread may take the signal late: checked after too) */
    if (b->ops->eval(b, &batch) == 0 && !lcg_stop_signal)
        for (int k = 0; k < S; k++) eval_ctx_finish(&ctx[k], &dg[k]);
    lcg_bleu bl;
    memset(&bl, 0, sizeof bl);
    for (int k = 0; bleu && !lcg_stop_signal && k < S; k++) bleu_add(&bl, ctx[k].gen, ctx[k].n_gen, ctx[k].trg, ctx[k].n_trg);
    lcg_free(gen);
    lcg_free(dg);
    memset(res, 0, sizeof *res);
    if (!lcg_stop_signal) eval_mechanism(res, ctx, S, b->cfg.L, b->cfg.H, b->cfg.C);
    for (int k = 0; k < S; k++) eval_ctx_free(&ctx[k]);
    lcg_free(ctx);
    if (lcg_stop_signal) {
        lcg_free(out), lcg_free(src), lcg_free(trg), lcg_free(n_src), lcg_free(n_trg);
        return -1;
    }
    res->len = len;
    res->factor = (double)len / (cfg->data_max ? cfg->data_max : cfg->len + cfg->vary);
    res->samples = S;
    res->has_bleu = bleu;
    res->bleu = bleu ? bleu_score(&bl) : 0;
    double loss = 0;
    double diag[LCG_MAX_LAYERS][3] = {{0}};
    long rows = 0;
    for (int s = 0; s < S; s++) {
        res->exact += out[s].exact;
        res->tokens += out[s].tokens;
        res->tokens_ok += out[s].ok;
        loss += out[s].loss;
        rows += out[s].diag_rows;
        for (int l = 0; l < b->cfg.L; l++)
            for (int k = 0; k < 3; k++) diag[l][k] += out[s].diag[l][k];
    }
    for (int l = 0; l < b->cfg.L; l++) {
        res->attn_entropy[l] = diag[l][0] / (rows ? rows : 1);
        res->attn_support[l] = diag[l][1] / (rows ? rows : 1);
        res->attn_max[l] = diag[l][2] / (rows ? rows : 1);
    }
    res->loss = res->tokens ? loss / res->tokens : NAN;
    if (!isfinite(res->loss))
        lcg_die("non-finite logits while evaluating length %d (a model with NaN/Inf weights or scores)", len);
    res->seconds = lcg_now() - t0;
    lcg_free(out);
    lcg_free(src);
    lcg_free(trg);
    lcg_free(n_src);
    lcg_free(n_trg);
    return 0;
}

int lcg_run_bleu(const lcg_run_cfg *cfg) { return cfg->bleu && cfg->task.task->kind != LCG_TASK_TOKEN_CLS; }
