/*
 * cmd_run.c: `lcgbench run`, and the same run for the commands that enumerate many (a grid
 * cell of sweep, merge and the MPI sweep: cli_run_cell). Its flags are one table (common flags
 * plus the chosen task's parameters; the task, from --task or the checkpoint, decides which
 * exist), filled by defaults, then a preset, then a checkpoint's note (--load, --resume: a flag
 * given must agree with it), then checked across flags before anything is written: every
 * problem is a one-line usage error (exit 2). Executing it trains (or loads), evaluates the
 * ladder, prints the table and appends the CSV rows. Runtime failures (I/O, non-finite loss)
 * exit 1; SIGINT/SIGTERM write a resumable checkpoint and exit 128 + the signal; --stop-at
 * writes it at its step and exits 0 without rows.
 *
 * Built with -DLCG_FUZZ, run stops after validating its flags, before any file is written or
 * anything trained.
 */
#define _POSIX_C_SOURCE 200809L
#include "cli.h"
#include "../harness/data.h"
#include "../harness/preset.h"
#include "../harness/sequence.h"
#include "../model/checkpoint.h"

#include <errno.h>
#include <math.h>
#include <omp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

typedef struct {
    const char *task, *attn, *pos, *eval_lens, *preset, *precision;
    const char *val_every, *val_lens, *select, *monitor;
    const char *topk_rule;
    double alpha;
    int topk;
    int show_help;
} run_names;

static int build_flags(cli_flag *fl, lcg_run_cfg *c, run_names *nm) {
    lcg_config *m = &c->model;
    cli_flag common[] = {
        {"task", FL_STR, &nm->task, 0, 0, "NAME", "task (see 'lcgbench help tasks'); default copy", 1, 0},
        {"preset", FL_STR, &nm->preset, 0, 0, "NAME", "settings bundle (see 'lcgbench help presets'); flags override it", 0, 0},
        {"attn", FL_STR, &nm->attn, 0, 0, "NAME", "attention normalizer (see 'lcgbench help attn'); default softmax", 1, 0},
        /* the range of any normalizer's parameter (a checkpoint's note holds topk's +-K here);
         * --alpha itself is checked against (1, 2] once the normalizer is known */
        {"alpha", FL_DOUBLE, &nm->alpha, -LCG_TOPK_MAX, LCG_TOPK_MAX, "X", "alpha of entmax, asentmax, entmax-learn: (1, 2], default 1.5", 1, 0},
        {"topk", FL_INT, &nm->topk, 1, LCG_TOPK_MAX, "K", "k of --attn topk: the k largest scores of a row (8)", 0, 0},
        {"topk-rule", FL_STR, &nm->topk_rule, 0, 0, "RULE", "k of --attn topk: fixed (K) or div-2 (max(K, keys/2), the reference's) (fixed)", 0, 0},
        {"pos", FL_STR, &nm->pos, 0, 0, "NAME", "position encoding (see 'lcgbench help pos'); default rope", 1, 0},
        {"layers", FL_INT, &m->L, 1, 64, "N", "transformer layers (2)", 1, 0},
        {"dim", FL_INT, &m->C, 2, 8192, "N", "model width C (64)", 1, 0},
        {"heads", FL_INT, &m->H, 1, 256, "N", "attention heads (4)", 1, 0},
        {"head-dim", FL_INT, &m->D, 2, 1024, "N", "head dimension, even (16)", 1, 0},
        {"ffn", FL_INT, &m->F, 1, 65536, "N", "GeGLU hidden width (256)", 1, 0},
        {"seed", FL_U64, &c->seed, 0, 0, "N", "seed of all randomness: data, init (1)", 1, 0},
        {"steps", FL_LONG, &c->steps, 1, 1e9, "N", "training steps (2000)", 1, 0},
        {"batch", FL_INT, &c->batch, 1, 65536, "N", "samples per step (32)", 1, 0},
        {"lr", FL_DOUBLE, &c->lr, 1e-9, 10, "X", "peak learning rate (1.5e-3)", 1, 0},
        {"warmup", FL_LONG, &c->warmup, 0, 1e9, "N", "linear warmup steps (100; steps/10 if fewer steps)", 1, 0},
        {"weight-decay", FL_DOUBLE, &c->weight_decay, 0, 10, "X", "AdamW weight decay (0)", 1, 0},
        {"clip", FL_DOUBLE, &c->clip, 0, 1e9, "X", "clip gradients to this global norm, 0 = off (1)", 1, 0},
        {"freeze-token0", FL_BOOL, &c->freeze_token0, 0, 0, NULL, "the reference's padding_idx = 0: data token 0's embedding is zero and never trained (off)", 1, 0},
        {"len", FL_INT, &c->len, 1, 1 << 20, "N", "training length (the task's quick default: 16, 48 for count and mqmtar)", 1, 0},
        {"vary", FL_INT, &c->vary, 0, 1 << 20, "N", "training lengths are len +- vary (8; 16 for count and mqmtar)", 1, 0},
        {"max-len", FL_INT, &c->max_len, 1, 1 << 24, "N", "ladder: (len+vary)*2^k up to this (16*(len+vary))", 0, 0},
        {"eval-lens", FL_STR, &nm->eval_lens, 0, 0, "L1,L2,..", "explicit evaluation lengths instead of the ladder", 0, 0},
        {"eval-samples", FL_INT, &c->eval_samples, 1, 1 << 24, "N", "test samples per length (100)", 0, 0},
        {"eval-tokens", FL_LONG, &c->eval_tokens, 0, 1e15, "N", "and at most N/length of them, 0 = no cap (0)", 0, 0},
        {"eval-min", FL_INT, &c->eval_min, 1, 1 << 24, "N", "but at least this many under --eval-tokens (20)", 0, 0},
        {"out", FL_STR, &c->out, 0, 0, "FILE", "CSV to append rows to (results/runs.csv)", 0, 0},
        {"layers-out", FL_STR, &c->layers_out, 0, 0, "FILE", "also append the per-layer attention diagnostics, one row per layer (long format)", 0, 0},
        {"save", FL_STR, &c->save, 0, 0, "FILE", "write a checkpoint after training", 0, 0},
        {"load", FL_STR, &c->load, 0, 0, "FILE", "evaluate this checkpoint instead of training", 0, 0},
        {"resume", FL_STR, &c->resume, 0, 0, "FILE", "continue the interrupted run of this checkpoint (settings from it)", 0, 0},
        {"checkpoint-every", FL_LONG, &c->ckpt_every, 1, 1e9, "N", "also write the resumable checkpoint every N steps", 0, 0},
        {"stop-at", FL_LONG, &c->stop_at, 1, 1e12, "N", "pause after step N of the --steps schedule: keep the resumable checkpoint, write no rows; run again without it to continue", 0, 0},
        {"data", FL_STR, &c->data, 0, 0, "DIR", "train on DIR/train.{src,trg}, evaluate DIR/test_<i>_<len> (reference format)", 0, 0},
        {"device", FL_STR, &c->backend, 0, 0, "NAME", "where the model trains: cpu or cuda (a CUDA=1 build) (cpu)", 0, 0},
        {"precision", FL_STR, &nm->precision, 0, 0, "NAME", "GPU matmuls: fp32, tf32, or bf16 (bf16 inputs to the weight matmuls) (fp32)", 0, 0},
        {"bleu", FL_BOOL, &c->bleu, 0, 0, NULL, "also score corpus BLEU-4 of the greedy generations per length (on for sort)", 0, 0},
        {"bleu-max", FL_INT, &c->bleu_max, 1, 1 << 24, "N", "decode for BLEU only at test lengths <= N; longer ones leave bleu empty (every length)", 0, 0},
        {"last-max", FL_INT, &c->last_max, 1, 1 << 24, "N", "with --select best: test the last checkpoint only at lengths <= N, the best one at every length (every length)", 0, 0},
        {"val-every", FL_STR, &nm->val_every, 0, 0, "N|P%", "validate every N steps (or P% of --steps) during training", 0, 0},
        {"val-lens", FL_STR, &nm->val_lens, 0, 0, "L1,L2,..", "validation lengths (the --monitor's length)", 0, 0},
        {"val-samples", FL_INT, &c->val_samples, 1, 1 << 24, "N", "validation samples per length, their own stream (100)", 0, 0},
        {"monitor", FL_STR, &nm->monitor, 0, 0, "METRIC@LEN", "validation score that picks the best checkpoint: exact, token, bleu or loss (lower "
                                                              "is better) at a validation length (exact@2*(len+vary))", 0, 0},
        {"select", FL_STR, &nm->select, 0, 0, "last|best", "rows for the last checkpoint, or also for the best by --monitor (last)", 0, 0},
        {"log-csv", FL_STR, &c->log_csv, 0, 0, "FILE", "training curve: step, loss, lr, grad norm, tok/s, validation scores; {run_id}, {task}, {attn}, {pos}, {seed} in FILE are the run's", 0, 0},
        {"threads", FL_INT, &c->threads, 1, 1024, "N", "OpenMP threads (OMP_NUM_THREADS, else the CPUs this process may use)", 0, 0},
        {"log-every", FL_LONG, &c->log_every, 1, 1e9, "N", "steps between log lines off a terminal", 0, 0},
        {"quiet", FL_BOOL, &c->quiet, 0, 0, NULL, "no progress output", 0, 0},
        {"help", FL_BOOL, &nm->show_help, 0, 0, NULL, "show this help", 0, 0},
    };
    int n = (int)(sizeof common / sizeof *common);
    memcpy(fl, common, sizeof common);
    return cli_add_task_flags(fl, n, &c->task);
}

static void set_defaults(lcg_run_cfg *c, run_names *nm, const lcg_task *task) {
    memset(c, 0, sizeof *c);
    memset(nm, 0, sizeof *nm);
    lcg_task_defaults(&c->task, task);
    nm->task = task->name;
    nm->attn = "softmax";
    nm->pos = "rope";
    nm->alpha = NAN;
    c->model = (lcg_config){.L = 2, .C = 64, .H = 4, .D = 16, .F = 256, .alpha = 1.0f};
    c->seed = 1;
    c->steps = 2000;
    c->batch = 32;
    c->lr = 1.5e-3;
    c->warmup = 100;
    c->weight_decay = 0;
    c->clip = 1.0;
    c->len = task->cpu_len; /* quick CPU defaults; the reference's are def_len, def_vary */
    c->vary = task->cpu_vary;
    c->max_len = 0; /* 16 * (len + vary) */
    c->eval_samples = 100;
    c->eval_min = 20;
    c->val_samples = 100;
    c->out = "results/runs.csv";
    c->backend = "cpu";
}

/* everything one run needs, parsed and checked (sweep builds one per grid cell) */
typedef struct {
    cli_ctx *cx;
    int cell;                /* a grid cell: --load, --resume and --save are refused */
    int check;               /* a cell's CELL_FLAGS, CELL_DEVICE or CELL_RUN; a plain run's CELL_RUN */
    lcg_run_cfg c;
    run_names nm;
    lcg_checkpoint ck;
    const char *load;        /* --load or --resume: the checkpoint with the settings */
    int resuming;            /* --resume: the note's data directory applies too */
    int write_failed;        /* the rows could not be appended */
    char *note;              /* the checkpoint's note, split in place: string flags point here */
    cli_flag fl[64];
    int n_fl;
    char preset_buf[8][512]; /* the preset's settings, split in place: string flags point here */
    char ckpt_buf[4200];     /* the derived checkpoint path */
    char log_buf[4200];      /* --log-csv with {run_id}, {task}, ... replaced */
    /* the finished test rungs (eval_progress.c), kept beside the checkpoint while evaluating */
    char prog_path[4300];    /* "" when the run has no resumable checkpoint (--load) */
    long prog_step;
    lcg_rung_result prog[2][LCG_MAX_RUNGS];
    int prog_done[2][LCG_MAX_RUNGS];
} run_setup;

/* apply "key=value;..." (a checkpoint note) to the flags; a flag given on the command line
 * must agree with the note */
static void apply_note(run_setup *s, const char *note, const char *path) {
    cli_flag *fl = s->fl;
    int n = s->n_fl;
    char *copy = s->note = strdup(note);
    if (!copy) lcg_die("out of memory");
    char in_note[64] = {0}; /* the flags the note names */
    for (char *save = NULL, *kv = strtok_r(copy, ";", &save); kv; kv = strtok_r(NULL, ";", &save)) {
        char *eq = strchr(kv, '=');
        if (!eq) continue;
        *eq = '\0';
        cli_flag *f = cli_find_flag(fl, n, kv, strlen(kv));
        if (!f || !(f->in_note || (s->resuming && strcmp(kv, "data") == 0))) continue;
        if (f - fl < 64) in_note[f - fl] = 1;
        unsigned char tmp[16] = {0}, cur[16] = {0};
        size_t sz = f->kind == FL_INT || f->kind == FL_BOOL ? sizeof(int) : f->kind == FL_STR ? sizeof(char *) : 8;
        if (cli_parse_value(f, eq + 1, tmp)) cli_usage_error(s->cx, "checkpoint '%s' has a bad %s '%s'", path, kv, eq + 1);
        memcpy(cur, f->ptr, sz);
        if (f->set) {
            int same = f->kind == FL_STR ? strcmp(*(char **)cur, *(char **)tmp) == 0 : memcmp(cur, tmp, sz) == 0;
            if (!same) cli_usage_error(s->cx, "--%s conflicts with the checkpoint '%s' (%s=%s)", kv, path, kv, eq + 1);
        } else if (f->kind == FL_STR) {
            *(char **)f->ptr = eq + 1; /* inside s->note */
        } else {
            memcpy(f->ptr, tmp, sz);
        }
    }
    /* the options a note leaves out when off (run_cfg_string, a task parameter's omit_default):
     * a checkpoint without one was trained without it */
    for (int i = 0; i < n && i < 64; i++) {
        cli_flag *f = &fl[i];
        if (in_note[i] || f->set != 1 || !f->in_note) continue;
        if (f->kind == FL_BOOL && *(int *)f->ptr)
            cli_usage_error(s->cx, "--%s conflicts with the checkpoint '%s' (trained without it)", f->name, path);
        if (f->kind == FL_TASKP) {
            const lcg_task_param *p = &s->c.task.task->params[(double *)f->ptr - s->c.task.p];
            if (p->omit_default && *(double *)f->ptr != p->def)
                cli_usage_error(s->cx, "--%s conflicts with the checkpoint '%s' (%s=%.10g)", f->name, path, f->name, p->def);
        }
    }
}

static const char *note_get(const char *note, const char *key, char *out, size_t n) {
    size_t kl = strlen(key);
    for (const char *p = note; p && *p; p = strchr(p, ';') ? strchr(p, ';') + 1 : NULL) {
        if (strncmp(p, key, kl) == 0 && p[kl] == '=') {
            size_t len = strcspn(p + kl + 1, ";");
            snprintf(out, n, "%.*s", (int)len, p + kl + 1);
            return out;
        }
    }
    return NULL;
}

static void run_help(const cli_flag *fl, int n) {
    printf("usage: lcgbench run [flags]\n\n"
           "Train a small transformer on a synthetic task at short length, evaluate it on a\n"
           "ladder of longer lengths, print a table and append one CSV row per length.\n\n"
           "flags (the task's own parameters are listed last):\n");
    cli_print_flags(fl, n);
}

static void parse_eval_lens(const cli_ctx *cx, lcg_run_cfg *c, const char *s) {
    const char *p = s;
    while (*p) {
        char *end;
        errno = 0;
        long v = strtol(p, &end, 10);
        if (end == p || (*end && *end != ',') || (*end == ',' && !end[1]) || errno || v < 1 || v > (1 << 24))
            cli_usage_error(cx, "--eval-lens: '%s' is not a comma-separated list of lengths in [1, 16777216]", s);
        if (c->n_rungs == LCG_MAX_RUNGS) cli_usage_error(cx, "--eval-lens: at most %d lengths", LCG_MAX_RUNGS);
        c->rungs[c->n_rungs++] = (int)v;
        p = *end ? end + 1 : end;
    }
    if (!c->n_rungs) cli_usage_error(cx, "--eval-lens: empty list");
    /* ascending, each length once (a row per length: duplicates would be rows merge rejects) */
    for (int i = 1; i < c->n_rungs; i++)
        for (int j = i; j > 0 && c->rungs[j] < c->rungs[j - 1]; j--) {
            int t = c->rungs[j];
            c->rungs[j] = c->rungs[j - 1], c->rungs[j - 1] = t;
        }
    int n = 0;
    for (int i = 0; i < c->n_rungs; i++)
        if (!n || c->rungs[i] != c->rungs[n - 1]) c->rungs[n++] = c->rungs[i];
    c->n_rungs = n;
}

/* a comma-separated list of lengths in [1, 2^24], ascending, each once: the count */
static int parse_lens(const cli_ctx *cx, const char *flag, const char *s, int *out) {
    int n = 0;
    for (const char *p = s; *p;) {
        char *end;
        errno = 0;
        long v = strtol(p, &end, 10);
        if (end == p || (*end && *end != ',') || (*end == ',' && !end[1]) || errno || v < 1 || v > (1 << 24))
            cli_usage_error(cx, "--%s: '%s' is not a comma-separated list of lengths in [1, 16777216]", flag, s);
        if (n == LCG_MAX_RUNGS) cli_usage_error(cx, "--%s: at most %d lengths", flag, LCG_MAX_RUNGS);
        int k = n++;
        for (; k > 0 && out[k - 1] > v; k--) out[k] = out[k - 1];
        out[k] = (int)v;
        p = *end ? end + 1 : end;
    }
    if (!n) cli_usage_error(cx, "--%s: empty list", flag);
    int m = 0;
    for (int i = 0; i < n; i++)
        if (!m || out[i] != out[m - 1]) out[m++] = out[i];
    return m;
}

/* --bleu, --val-every, --val-lens, --val-samples, --monitor, --select, --log-csv */
static void parse_validation(run_setup *s, const lcg_task *task) {
    lcg_run_cfg *c = &s->c;
    run_names *nm = &s->nm;
    const cli_ctx *cx = s->cx;
    int cls = task->kind == LCG_TASK_TOKEN_CLS;
    if (c->bleu && cls) cli_usage_error(cx, "--bleu: task %s classifies tokens (no generations to score)", task->name);
    if (!cls && strcmp(task->name, "sort") == 0) c->bleu = 1; /* the reference reports it for sort */
    c->select_best = 0;
    if (nm->select) {
        if (strcmp(nm->select, "best") == 0) c->select_best = 1;
        else if (strcmp(nm->select, "last") != 0) cli_usage_error(cx, "--select: '%s' is not last or best", nm->select);
    }
    c->val_every = 0;
    if (nm->val_every) {
        const char *v = nm->val_every;
        char *end;
        errno = 0;
        double x = strtod(v, &end);
        int pct = *end == '%' && end[1] == '\0';
        if (end == v || (*end && !pct) || errno || !(x > 0) || (pct ? x > 100 : x != floor(x) || x > 1e9))
            cli_usage_error(cx, "--val-every: '%s' is not a step count N >= 1 or a percentage P%% in (0, 100]", v);
        c->val_every = pct ? (long)floor(c->steps * x / 100) : (long)x;
        if (c->val_every < 1) c->val_every = 1;
    }
    int given[4] = {nm->val_lens != NULL, cli_find_flag(s->fl, s->n_fl, "val-samples", 11)->set == 1, nm->monitor != NULL,
                    c->select_best};
    static const char *const names[4] = {"--val-lens", "--val-samples", "--monitor", "--select best"};
    for (int k = 0; k < 4 && !c->val_every; k++)
        if (given[k]) cli_usage_error(cx, "%s needs --val-every (validation during training)", names[k]);
    if (c->last_max && !c->select_best)
        cli_usage_error(cx, "--last-max needs --select best (it limits the last checkpoint's rows beside the best one's)");
    if (c->log_csv && c->load) cli_usage_error(cx, "--log-csv cannot be combined with --load (nothing is trained)");
    if (c->log_csv && (strcmp(c->log_csv, c->out) == 0 || (c->save && strcmp(c->log_csv, c->save) == 0)))
        cli_usage_error(cx, "--log-csv '%s' is also the --out or --save file", c->log_csv);
    if (!c->val_every) {
        if (c->bleu_max && !c->bleu) cli_usage_error(cx, "--bleu-max: no BLEU to limit (task %s without --bleu)", task->name);
        return;
    }
    if (c->load) cli_usage_error(cx, "--val-every cannot be combined with --load (nothing is trained)");
    if (c->data) cli_usage_error(cx, "--val-every: validation with --data is not supported yet (the generator's samples only)");
    if (c->val_every > c->steps) cli_usage_error(cx, "--val-every %ld exceeds --steps %ld: no validation would run", c->val_every, c->steps);
    c->mon_metric = LCG_MON_EXACT;
    c->mon_len = 2 * (c->len + c->vary);
    if (nm->monitor) {
        const char *at = strchr(nm->monitor, '@');
        int m = -1;
        for (int k = 0; k < 4 && at; k++)
            if ((size_t)(at - nm->monitor) == strlen(lcg_monitor_names[k]) &&
                strncmp(nm->monitor, lcg_monitor_names[k], (size_t)(at - nm->monitor)) == 0)
                m = k;
        char *end;
        errno = 0;
        long L = at ? strtol(at + 1, &end, 10) : 0;
        if (m < 0 || end == at + 1 || *end || errno || L < 1 || L > (1 << 24))
            cli_usage_error(cx, "--monitor: '%s' is not METRIC@LEN (exact, token, bleu or loss at a length in [1, 16777216])",
                            nm->monitor);
        if (m == LCG_MON_BLEU && cls) cli_usage_error(cx, "--monitor bleu: task %s classifies tokens", task->name);
        c->mon_metric = m;
        c->mon_len = (int)L;
    }
    if (c->mon_metric == LCG_MON_BLEU) c->bleu = 1;
    if (c->bleu_max && !c->bleu) cli_usage_error(cx, "--bleu-max: no BLEU to limit (task %s without --bleu)", task->name);
    if (nm->val_lens) {
        c->n_val_lens = parse_lens(cx, "val-lens", nm->val_lens, c->val_lens);
        int found = 0;
        for (int i = 0; i < c->n_val_lens; i++) found |= c->val_lens[i] == c->mon_len;
        if (!found) cli_usage_error(cx, "--monitor's length %d is not one of --val-lens %s", c->mon_len, nm->val_lens);
    } else {
        c->n_val_lens = 1;
        c->val_lens[0] = c->mon_len;
    }
    for (int i = 0; i < c->n_val_lens; i++) {
        const char *bad = task->validate(&c->task, c->val_lens[i]);
        if (bad[0]) cli_usage_error(cx, "--val-lens: %s (length %d)", bad, c->val_lens[i]);
    }
}

static long mem_available_bytes(void) {
    FILE *f = fopen("/proc/meminfo", "r");
    long kb = -1;
    char line[256];
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "MemAvailable: %ld kB", &kb) == 1) break;
    if (f) fclose(f);
    return kb < 0 ? -1 : kb * 1024;
}

/* applies "flag=value;..." to every flag not given on the command line (marked set = 2) */
static void apply_settings(cli_flag *fl, int n, char *settings, const char *preset) {
    for (char *save = NULL, *kv = strtok_r(settings, ";", &save); kv; kv = strtok_r(NULL, ";", &save)) {
        char *eq = strchr(kv, '=');
        if (!eq) lcg_die("preset %s: malformed setting '%s'", preset, kv);
        *eq = '\0';
        cli_flag *f = cli_find_flag(fl, n, kv, strlen(kv));
        if (!f) lcg_die("preset %s: unknown flag '%s'", preset, kv);
        if (f->set) continue;
        const char *why = cli_parse_value(f, eq + 1, f->ptr);
        if (why) lcg_die("preset %s: --%s %s", preset, kv, why);
        f->set = 2;
    }
}

/* parses and validates the flags of one run; usage errors exit 2. Returns 0 (ready to
 * execute), 1 (help was printed) or -1 (a runtime error was printed) */
static int run_parse(run_setup *s, int argc, char **argv) {
    /* the task (from --task or the checkpoint) decides which flags exist: find it first */
    const char *task_name = cli_scan_task(argc, argv, "copy"), *load = NULL;
    s->resuming = 0;
    for (int i = 0; i < argc; i++) { /* --load or --resume: a checkpoint with settings */
        const char *a = argv[i];
        int r = strncmp(a, "--resume", 8) == 0;
        if (strncmp(a, "--load=", 7) == 0 || strncmp(a, "--resume=", 9) == 0) load = strchr(a, '=') + 1;
        else if ((strcmp(a, "--load") == 0 || strcmp(a, "--resume") == 0) && i + 1 < argc) load = argv[i + 1];
        else continue;
        s->resuming = r; /* both given: a usage error below */
    }
    if (s->cell) /* a sweep trains every cell */
        for (int i = 0; i < argc; i++)
            for (int k = 0; k < 3; k++) {
                static const char *const per_run[] = {"--load", "--resume", "--save"};
                size_t n = strlen(per_run[k]);
                if (strncmp(argv[i], per_run[k], n) == 0 && (argv[i][n] == '\0' || argv[i][n] == '='))
                    cli_usage_error(s->cx, "%s is per run: a sweep trains every cell", per_run[k]);
            }
    lcg_checkpoint *ck = &s->ck;
    char err[768], buf[256];
    int task_given = 0;
    for (int i = 0; i < argc; i++) task_given |= strncmp(argv[i], "--task", 6) == 0;
    if (load) {
        if (checkpoint_load(load, ck, err, sizeof err) != 0) {
            fprintf(stderr, "lcgbench %s: %s\n", s->cx->cmd, err);
            return -1;
        }
        if (!task_given && note_get(ck->note, "task", buf, sizeof buf)) task_name = buf;
    }
    s->load = load;
    const lcg_task *task = lcg_task_find(task_name);
    if (!task) cli_usage_error(s->cx, "--task: unknown task '%s'; 'lcgbench help tasks' lists them", task_name);

    lcg_run_cfg *cp = &s->c;
    run_names *nmp = &s->nm;
    set_defaults(cp, nmp, task);
    cli_flag *fl = s->fl;
    int n_fl = s->n_fl = build_flags(fl, cp, nmp);
    cli_parse_args(s->cx, fl, n_fl, argc, argv);
    if (nmp->show_help) {
        run_help(fl, n_fl);
        return 1;
    }
    if (cp->load && cp->resume) cli_usage_error(s->cx, "--resume cannot be combined with --load");
    if (nmp->preset) {
        if (!lcg_preset_known(nmp->preset)) cli_usage_error(s->cx, "--preset: unknown preset '%s' (%s)", nmp->preset, lcg_preset_names());
        if (load) cli_usage_error(s->cx, "--preset cannot be combined with --%s (the checkpoint has its settings)", s->resuming ? "resume" : "load");
        const char *set;
        for (int k = 0; k < 8 && (set = lcg_preset_settings(nmp->preset, task->name, k)); k++) {
            snprintf(s->preset_buf[k], sizeof s->preset_buf[k], "%s", set);
            apply_settings(fl, n_fl, s->preset_buf[k], nmp->preset);
        }
    }
    if (load) apply_note(s, ck->note, load);
#define c (*cp)
#define nm (*nmp)
    /* the device: known, built in, usable here (one line, before any work) */
    const lcg_backend_ops *dev = lcg_backend_find(c.backend);
    int here = s->check != CELL_FLAGS; /* merge and --dry-run name GPU cells on any machine */
    if (!dev && strcmp(c.backend, "cuda") == 0 && here) {
        fprintf(stderr, "lcgbench %s: --device cuda: built without CUDA: make CUDA=1\n", s->cx->cmd);
        return -1;
    }
    if (!dev && strcmp(c.backend, "cuda") != 0) cli_usage_error(s->cx, "--device: unknown device '%s' (cpu, cuda)", c.backend);
    c.precision = LCG_PREC_FP32;
    if (nm.precision) {
        int p = -1;
        for (int k = 0; k < 3; k++)
            if (strcmp(nm.precision, lcg_precision_names[k]) == 0) p = k;
        if (p < 0) cli_usage_error(s->cx, "--precision: unknown precision '%s' (fp32, tf32, bf16)", nm.precision);
        if (p != LCG_PREC_FP32 && strcmp(c.backend, "cpu") == 0)
            cli_usage_error(s->cx, "--precision %s needs --device cuda (the CPU computes in fp32)", nm.precision);
        c.precision = p;
    }
    const lcg_normalizer *norm = lcg_normalizer_find(nm.attn);
    if (!norm) cli_usage_error(s->cx, "--attn: unknown normalizer '%s'; 'lcgbench help attn' lists them", nm.attn);
    const lcg_posenc *pos = lcg_posenc_find(nm.pos);
    if (!pos) cli_usage_error(s->cx, "--pos: unknown position encoding '%s'; 'lcgbench help pos' lists them", nm.pos);
    if (cli_find_flag(fl, n_fl, "alpha", 5)->set && !norm->has_alpha)
        cli_usage_error(s->cx, "--alpha: normalizer '%s' has no alpha", norm->name);
    c.model.norm = norm->id;
    c.model.pos = pos->id;
    c.model.alpha = (float)(isnan(nm.alpha) ? norm->alpha_def : nm.alpha);
    {   /* topk's row parameter: +K (fixed) or -K (div-2), in the alpha slot */
        int k_set = cli_find_flag(fl, n_fl, "topk", 4)->set, r_set = cli_find_flag(fl, n_fl, "topk-rule", 9)->set;
        if ((k_set || r_set) && !norm->has_topk)
            cli_usage_error(s->cx, "--%s: normalizer '%s' has no k (only topk)", k_set ? "topk" : "topk-rule", norm->name);
        if (r_set && strcmp(nm.topk_rule, "fixed") != 0 && strcmp(nm.topk_rule, "div-2") != 0)
            cli_usage_error(s->cx, "--topk-rule: unknown rule '%s' (fixed, div-2)", nm.topk_rule);
        if (norm->has_topk && (k_set || r_set)) {
            int K = k_set ? nm.topk : !isnan(nm.alpha) ? (int)fabs(nm.alpha) : (int)norm->alpha_def;
            int div2 = r_set ? strcmp(nm.topk_rule, "div-2") == 0 : !isnan(nm.alpha) && nm.alpha < 0;
            float par = (float)(div2 ? -K : K);
            if (!isnan(nm.alpha) && par != (float)nm.alpha) /* the checkpoint's k and rule */
                cli_usage_error(s->cx, "--topk %d --topk-rule %s conflicts with the checkpoint '%s' (k %d, rule %s)", K,
                                par < 0 ? "div-2" : "fixed", s->load, (int)fabs(nm.alpha), nm.alpha < 0 ? "div-2" : "fixed");
            c.model.alpha = par;
        }
    }
    if (norm->has_alpha && !(c.model.alpha > 1.0f && c.model.alpha <= 2.0f))
        cli_usage_error(s->cx, "--alpha must be in (1, 2] for %s (1 is softmax: use --attn softmax)", norm->name);
    if (dev && dev->supports && !dev->supports(&c.model, err, sizeof err)) cli_usage_error(s->cx, "%s", err);
    if (here && dev->available && !dev->available(err, sizeof err)) {
        fprintf(stderr, "lcgbench %s: --device %s: %s\n", s->cx->cmd, c.backend, err);
        return -1;
    }
    c.model.V = lcg_task_out_vocab(&c.task);
    const char *bad = lcg_config_check(&c.model);
    if (bad[0]) cli_usage_error(s->cx, "%s", bad);
    if (c.model.pos == LCG_POS_ROPE && c.model.D % 2) cli_usage_error(s->cx, "--head-dim must be even for rope");
    if (c.vary >= c.len) cli_usage_error(s->cx, "--vary %d must be smaller than --len %d", c.vary, c.len);
    bad = c.data ? "" : task->validate(&c.task, c.len - c.vary); /* with --data the files decide the lengths */
    if (bad[0]) cli_usage_error(s->cx, "%s (at the shortest training length %d)", bad, c.len - c.vary);
    if (!c.max_len) c.max_len = 16 * (c.len + c.vary);
    if (nm.eval_lens) parse_eval_lens(s->cx, &c, nm.eval_lens);
    if (c.data) { /* evaluate the directory's test splits (all, or those of --eval-lens) */
        int idx[LCG_MAX_RUNGS], lens[LCG_MAX_RUNGS], n = data_test_splits(c.data, idx, lens, LCG_MAX_RUNGS, err, sizeof err);
        if (n < 0) cli_usage_error(s->cx, "--data: %s", err);
        if (n == 0) cli_usage_error(s->cx, "--data: '%s' has no test_<i>_<len>.src files", c.data);
        for (int i = 0; i < c.n_rungs; i++) {
            int found = 0;
            for (int k = 0; k < n; k++) found |= lens[k] == c.rungs[i];
            if (!found) cli_usage_error(s->cx, "--eval-lens: '%s' has no test split of length %d", c.data, c.rungs[i]);
        }
        if (!c.n_rungs) memcpy(c.rungs, lens, sizeof(int) * (size_t)(c.n_rungs = n));
        for (int k = 0; k < n; k++) { /* a malformed test file fails now, not after training */
            char split[64];
            int used = 0;
            for (int i = 0; i < c.n_rungs; i++) used |= c.rungs[i] == lens[k];
            snprintf(split, sizeof split, "test_%d_%d", idx[k], lens[k]);
            if (used && data_check_split(c.data, split, &c.task, NULL, err, sizeof err) != 0) {
                fprintf(stderr, "lcgbench %s: %s\n", s->cx->cmd, err);
                return -1;
            }
        }
    }
    else if (c.max_len < c.len + c.vary)
        cli_usage_error(s->cx, "--max-len %d is below the longest training length %d", c.max_len, c.len + c.vary);
    for (int i = 0; i < c.n_rungs && !c.data; i++) {
        bad = task->validate(&c.task, c.rungs[i]);
        if (bad[0]) cli_usage_error(s->cx, "--eval-lens: %s (length %d)", bad, c.rungs[i]);
    }
    if (c.warmup > c.steps) {
        if (cli_find_flag(fl, n_fl, "warmup", 6)->set == 1) cli_usage_error(s->cx, "--warmup %ld exceeds --steps %ld", c.warmup, c.steps);
        c.warmup = c.steps / 10; /* the default warmup, scaled down for short runs */
    }
    parse_validation(s, task);
    if (c.load && c.save) cli_usage_error(s->cx, "--save cannot be combined with --load (nothing is trained)");
    if (c.load && c.ckpt_every) cli_usage_error(s->cx, "--checkpoint-every cannot be combined with --load (nothing is trained)");
    if (c.load && c.stop_at) cli_usage_error(s->cx, "--stop-at cannot be combined with --load (nothing is trained)");
    if (c.stop_at > c.steps) cli_usage_error(s->cx, "--stop-at %ld is past --steps %ld", c.stop_at, c.steps);

    if (c.threads) omp_set_num_threads(c.threads);
    c.threads = omp_get_max_threads();

    /* memory check before any work: every thread holds a decoder at the longest length */
    int lens[LCG_MAX_RUNGS], n_lens = eval_ladder(&c, lens), longest = 0;
    for (int i = 0; i < n_lens; i++) longest = lens[i] > longest ? lens[i] : longest;
    if (c.last_max && c.last_max < lens[0])
        cli_usage_error(s->cx, "--last-max %d is below the test ladder's first length %d (the last checkpoint would have no rows)",
                        c.last_max, lens[0]);
    int ms, mt;
    task->max_sizes(&c.task, longest, &ms, &mt);
    double need = !here ? 0 : (double)dev->eval_bytes(&c.model, seq_max_input(&c.task, longest) + 1, c.threads) +
                  (double)c.eval_samples * (ms + mt) * sizeof(int);
    long avail = here ? mem_available_bytes() : 0;
    if (avail > 0 && need > 0.9 * (double)avail)
        cli_usage_error(s->cx, "evaluating length %d needs about %.1f GiB (%d threads), more than the %.1f GiB "
                    "available; lower --max-len, --eval-samples or --threads",
                    longest, need / (1 << 30), c.threads, (double)avail / (1 << 30));
    if (!c.load && strcmp(c.backend, "cpu") == 0) { /* and training: the batch's activations, parameters, AdamW */
        int T = seq_max_input(&c.task, c.len + c.vary);
        size_t psz[LCG_N_PARAM_TENSORS];
        double train = (double)model_train_bytes(&c.model, c.batch, T) + 2.0 * sizeof(float) * lcg_param_sizes(&c.model, psz);
        if (avail > 0 && train > 0.9 * (double)avail)
            cli_usage_error(s->cx, "training --batch %d at length %d needs about %.1f GiB, more than the %.1f GiB available; "
                            "lower --batch or --len", c.batch, T, train / (1 << 30), (double)avail / (1 << 30));
    }

    /* where a resumable checkpoint goes: --save, else the --resume file, else beside the CSV */
    if (!c.load) {
        if (c.save) c.ckpt = c.save;
        else if (c.resume) c.ckpt = c.resume;
        else {
            const char *slash = strrchr(c.out, '/');
            snprintf(s->ckpt_buf, sizeof s->ckpt_buf, "%.*slcgbench-%016llx.ckpt", slash ? (int)(slash - c.out + 1) : 0,
                     c.out, (unsigned long long)run_cfg_id(&c));
            c.ckpt = s->ckpt_buf;
        }
    }
    /* --log-csv: {run_id}, {task}, {attn}, {pos} and {seed} become the run's, so each cell of a
     * sweep keeps its own curve */
    if (c.log_csv) {
        char id[24], seed[24];
        snprintf(id, sizeof id, "%016llx", (unsigned long long)run_cfg_id(&c));
        snprintf(seed, sizeof seed, "%llu", (unsigned long long)c.seed);
        const char *keys[5] = {"{run_id}", "{task}", "{attn}", "{pos}", "{seed}"};
        const char *vals[5] = {id, c.task.task->name, lcg_normalizer_at(c.model.norm)->name, lcg_posenc_at(c.model.pos)->name,
                               seed};
        size_t o = 0;
        for (const char *p = c.log_csv; *p && o + 1 < sizeof s->log_buf;) {
            int k = 0;
            while (k < 5 && strncmp(p, keys[k], strlen(keys[k])) != 0) k++;
            if (k < 5) {
                o += (size_t)snprintf(s->log_buf + o, sizeof s->log_buf - o, "%s", vals[k]);
                p += strlen(keys[k]);
            } else s->log_buf[o++] = *p++;
        }
        s->log_buf[o < sizeof s->log_buf ? o : sizeof s->log_buf - 1] = '\0';
        c.log_csv = s->log_buf;
        /* before any work (a sweep checks every cell's, and that no two cells share one) */
        char why[4800];
        if (lcg_curve_check(c.log_csv, run_cfg_id(&c), why, sizeof why) != 0) cli_usage_error(s->cx, "%s", why);
    }
    return 0;
#undef c
#undef nm
}

/* evaluates the first n_do of the ladder's n_lens lengths into res and prints the table; 0, or
 * the signal that cut it short (then the trained model is kept in the checkpoint and a line says
 * how to evaluate it) */
static int eval_ladder_rows(run_setup *s, lcg_backend *b, int set, lcg_rung_result *res, const int *lens, int n_do,
                            int n_lens, const lcg_train_result *tr, const char *note, const float *last_params) {
    lcg_run_cfg *cp = &s->c;
#define c (*cp)
    char err[768];
    int bleu = lcg_run_bleu(&c);
    printf("%8s %7s %8s %17s %8s %9s%s %8s\n", "len", "factor", "exact%", "95% CI", "token%", "loss", bleu ? "    bleu" : "", "sec");
    for (int i = 0; i < n_do; i++) {
        /* a rung finished before an interruption (CKPT.rungs): its result, not evaluated again */
        if (s->prog_done[set][i]) res[i] = s->prog[set][i];
        /* SIGINT/SIGTERM during a rung (a worker thread may take it late: checked after too):
         * no rows, keep the model and the rungs finished */
        else if (eval_rung(&res[i], b, &c, lens[i]) != 0 || lcg_stop_signal) {
            int sig = lcg_stop_signal;
            char kept[4400] = "";
            if (last_params) b->ops->set_params(b, last_params); /* b held the best checkpoint's */
            if (!c.load && !c.save && (train_checkpoint(b, &tr->state, 0, c.ckpt, note, err, sizeof err) != 0 ||
                                       train_save_best(b, tr, c.ckpt, note, err, sizeof err) != 0))
                lcg_die("%s", err);
            if (!c.load) {
                char cmd[4096];
                run_resume_command(&c, c.ckpt, cmd, sizeof cmd);
                snprintf(kept, sizeof kept, "; the trained model is in '%s': '%.4000s' evaluates it", c.ckpt, cmd);
            }
            int n_kept = 0;
            for (int k = 0; k < 2 * LCG_MAX_RUNGS; k++) n_kept += s->prog_done[k / LCG_MAX_RUNGS][k % LCG_MAX_RUNGS];
            char kept_rungs[96] = "";
            if (n_kept && s->prog_path[0]) { /* beside the checkpoint, which holds the model they describe */
                if (eval_progress_save(s->prog_path, note, s->prog_step, n_lens, s->prog, s->prog_done, err, sizeof err) != 0)
                    lcg_die("%s", err);
                snprintf(kept_rungs, sizeof kept_rungs, " (%d finished length%s kept for the resumed run)", n_kept,
                         n_kept == 1 ? "" : "s");
            }
            fprintf(stderr, "lcgbench %s: %s while evaluating length %d; no rows written%s%s\n", s->cx->cmd,
                    sig == SIGINT ? "interrupted" : "terminated", lens[i], kept_rungs, kept);
            return sig;
        } else { /* finished: kept in CKPT.rungs if an interruption comes later */
            s->prog[set][i] = res[i];
            s->prog_done[set][i] = 1;
        }
        double lo, hi;
        char bl[32] = "";
        if (bleu && res[i].has_bleu) snprintf(bl, sizeof bl, " %7.2f", 100 * res[i].bleu);
        else if (bleu) snprintf(bl, sizeof bl, " %7s", "-");
        wilson95(res[i].exact, res[i].samples, &lo, &hi);
        printf("%8d %7.4g %8.1f   [%5.1f, %5.1f] %8.1f %9.4f%s %8.2f\n", res[i].len, res[i].factor,
               100.0 * res[i].exact / res[i].samples, 100 * lo, 100 * hi,
               100.0 * res[i].tokens_ok / res[i].tokens, res[i].loss, bl, res[i].seconds);
        fflush(stdout);
    }
    return 0;
#undef c
}

/* trains (or loads), evaluates the ladder, prints the table, appends the CSV rows */
static int run_execute(run_setup *s) {
#ifdef LCG_FUZZ
    (void)s;
    return 0; /* the fuzzer stops at validation */
#endif
    lcg_run_cfg *cp = &s->c;
#define c (*cp)
    const lcg_task *task = c.task.task;
    const char *load = s->load;
    char err[768];
    int lens[LCG_MAX_RUNGS], n_lens = eval_ladder(&c, lens);
    /* nothing is trained for output that cannot be kept */
    if (c.ckpt) lcg_remove_stale_temps(c.ckpt);
    if (c.ckpt && lcg_same_file(c.ckpt, c.out)) {
        fprintf(stderr, "lcgbench %s: --save and --out name the same file '%s'\n", s->cx->cmd, c.ckpt);
        return 1;
    }
    if (csv_preflight(&c, err, sizeof err) != 0 || (c.ckpt && checkpoint_check_target(c.ckpt, err, sizeof err) != 0)) {
        fprintf(stderr, "lcgbench %s: %s\n", s->cx->cmd, err);
        return 1;
    }
    if (c.data && !c.load) { /* every line of the training split checked before the first step */
        if (data_scan_split(c.data, "train", &c.task, NULL, &c.data_min, &c.data_max, err, sizeof err) != 0) {
            fprintf(stderr, "lcgbench %s: %s\n", s->cx->cmd, err);
            return 1;
        }
        c.data_min = data_nominal_len(&c.task, c.data_min); /* the lengths the CSV reports */
        c.data_max = data_nominal_len(&c.task, c.data_max);
    }
    lcg_catch_stop_signals();
    if (c.auto_resume && !c.load && !c.resume) { /* a sweep cell cut short before: continue it */
        char note[1024];
        run_cfg_string(&c, note, sizeof note);
        struct stat st;
        if (stat(c.ckpt, &st) == 0) {
            if (checkpoint_load(c.ckpt, &s->ck, err, sizeof err) == 0 && strcmp(s->ck.note, note) == 0 &&
                train_state_size_ok(s->ck.state_len) &&
                s->ck.step <= c.steps) {
                c.resume = load = s->load = c.ckpt;
                fprintf(stderr, "lcgbench %s: continuing from '%s' (step %ld)\n", s->cx->cmd, c.ckpt, s->ck.step);
            } else {
                checkpoint_free(&s->ck); /* another run's or unreadable: start afresh, overwrite it */
            }
        }
    }
    lcg_task_prepare(&c.task, c.seed); /* per-run task state, e.g. mqmtar's vocabulary */
    lcg_backend *b = train_backend_create(&c);
    snprintf(c.gpu, sizeof c.gpu, "%s", b->device);
    lcg_train_result tr = {.train_loss = NAN};
    char note[1024];
    run_cfg_string(&c, note, sizeof note);
    if (!c.quiet) {
        char on[200] = "";
        if (b->device[0]) snprintf(on, sizeof on, ", on %s (%s, %s)", b->device, c.backend, lcg_precision_names[c.precision]);
        fprintf(stderr, "lcgbench %s: task %s, %s + %s, %d layers, C=%d, %dx%d heads, %zu params, %d threads%s\n",
                LCG_VERSION, task->name, lcg_normalizer_at(c.model.norm)->name, lcg_posenc_at(c.model.pos)->name, c.model.L, c.model.C, c.model.H,
                c.model.D, b->n_params, c.threads, on);
    }
    if (load) {
        if (s->ck.n_params != b->n_params || !lcg_config_same(&s->ck.cfg, &c.model)) {
            fprintf(stderr, "lcgbench %s: checkpoint '%s': its model header does not match its settings\n", s->cx->cmd, load);
            lcg_backend_destroy(b);
            lcg_task_release(&c.task);
            return 1;
        }
        b->ops->set_params(b, s->ck.params);
        tr.steps_done = s->ck.step;
        /* a model whose training finished reports that training's loss (the checkpoint's
         * training state keeps the tail sum); one cut short, or without a state, leaves it empty */
        lcg_train_state st;
        if (c.load && s->ck.step == c.steps &&
            train_state_unpack(&st, s->ck.state, s->ck.state_len, err, sizeof err) == 0 && st.tail_n > 0)
            tr.train_loss = st.tail_loss / st.tail_n;
    }
    if (!c.load && c.ckpt && !(c.resume && s->ck.step == c.steps)) { /* rungs of an earlier training: stale */
        char rp[4300];
        eval_progress_path(rp, sizeof rp, c.ckpt);
        remove(rp);
    }
    if (!c.load) {
        int sig = train_run(b, &tr, &c, note, c.resume ? &s->ck : NULL);
        if (sig || tr.paused) { /* the checkpoint is kept; its line is printed */
            train_result_free(&tr);
            lcg_backend_destroy(b);
            lcg_task_release(&c.task);
            return sig ? 128 + sig : 0;
        }
        if (!c.quiet)
            fprintf(stderr, "trained %ld steps in %.1f s (%.0f tok/s), final loss %.4f\n", tr.steps_done,
                    tr.train_seconds, tr.train_tok_s, tr.train_loss);
    }

    /* the rows of the last checkpoint; with --select best, then those of the best one; rungs
     * finished by an earlier process of this run are taken from CKPT.rungs */
    lcg_rung_result res[2][LCG_MAX_RUNGS];
    s->prog_path[0] = '\0';
    memset(s->prog_done, 0, sizeof s->prog_done);
    if (!c.load && c.ckpt) {
        eval_progress_path(s->prog_path, sizeof s->prog_path, c.ckpt);
        s->prog_step = tr.steps_done;
        int n_kept = eval_progress_load(s->prog_path, note, s->prog_step, lens, n_lens, s->prog, s->prog_done);
        if (n_kept && !c.quiet)
            fprintf(stderr, "lcgbench %s: %d length%s evaluated before the interruption, kept in '%s'\n", s->cx->cmd,
                    n_kept, n_kept == 1 ? "" : "s", s->prog_path);
    }
    int n_sets = c.select_best && tr.has_best ? 2 : 1;
    if (c.select_best && !tr.has_best && !c.quiet)
        fprintf(stderr, "lcgbench %s: --select best: no validation score was kept; rows for the last checkpoint only\n",
                s->cx->cmd);
    float *last = n_sets == 2 ? LCG_NEW(float, b->n_params) : NULL;
    int n_do[2] = {n_sets == 2 ? eval_last_rungs(&c, lens, n_lens) : n_lens, n_lens}; /* --last-max */
    for (int set = 0; set < n_sets; set++) {
        if (set == 1) {
            b->ops->get_params(b, last);
            b->ops->set_params(b, tr.best_params);
            printf("best checkpoint: step %ld, %s@%d %.4f\n", tr.best_step, lcg_monitor_names[c.mon_metric], c.mon_len,
                   tr.best_score);
        }
        int sig = eval_ladder_rows(s, b, set, res[set], lens, n_do[set], n_lens, &tr, note, set ? last : NULL);
        if (sig) {
            lcg_free(last);
            train_result_free(&tr);
            lcg_backend_destroy(b);
            lcg_task_release(&c.task);
            return 128 + sig;
        }
    }
    lcg_free(last);
    int rc = 0;
    if (csv_append_best(&c, &tr, res[0], n_do[0], n_sets == 2 ? res[1] : NULL, n_lens, tr.best_step, err, sizeof err) != 0 ||
        (c.layers_out && csv_append_layers(&c, res[0], n_do[0], "last", err, sizeof err) != 0) ||
        (c.layers_out && n_sets == 2 && csv_append_layers(&c, res[1], n_lens, "best", err, sizeof err) != 0)) {
        fprintf(stderr, "lcgbench %s: %s\n", s->cx->cmd, err);
        s->write_failed = 1;
        rc = 1;
    } else if (!c.quiet) {
        fprintf(stderr, "appended %d rows to %s\n", n_do[0] + (n_sets - 1) * n_lens, c.out);
    }
    train_result_free(&tr);
    if (rc == 0 && s->prog_path[0]) remove(s->prog_path); /* the rungs are in the CSV */
    if (rc == 0 && c.auto_resume && c.ckpt == s->ckpt_buf) { /* the cell is in the CSV */
        char bp[4200];
        train_best_path(bp, sizeof bp, c.ckpt);
        remove(c.ckpt);
        remove(bp);
    }
    lcg_backend_destroy(b);
    lcg_task_release(&c.task);
    return rc;
#undef c
}

/* a run's flags, parsed into one allocation, owned by the context until freed (so that a
 * usage error that does not exit, under the fuzzer, can release it) */
static void run_setup_free(void *p) {
    run_setup *s = p;
    checkpoint_free(&s->ck);
    free(s->note);
    lcg_free(s);
}

static run_setup *run_setup_new(cli_ctx *cx, int cell, int check) {
    run_setup *s = LCG_NEW(run_setup, 1);
    s->cx = cx;
    s->cell = cell;
    s->check = check;
    cx->owned = s;
    cx->release = run_setup_free;
    return s;
}

static void run_setup_done(run_setup *s) {
    cli_ctx *cx = s->cx;
    run_setup_free(s);
    cx->owned = NULL;
    cx->release = NULL;
}

int cli_run_cell(cli_ctx *cx, int argc, char **argv, int check, lcg_run_info *info) {
    run_setup *s = run_setup_new(cx, 1, check);
    int rc = run_parse(s, argc, argv);
    s->c.auto_resume = 1;
    if (rc == 0) {
        info->run_id = run_cfg_id(&s->c);
        info->n_rows = eval_ladder(&s->c, info->lens);
        info->n_last = eval_last_rungs(&s->c, info->lens, info->n_rows);
        snprintf(info->out, sizeof info->out, "%s", s->c.out);
        snprintf(info->device, sizeof info->device, "%s", s->c.backend ? s->c.backend : "cpu");
        snprintf(info->log_csv, sizeof info->log_csv, "%s", s->c.log_csv ? s->c.log_csv : "");
        info->write_failed = 0;
        if (check == CELL_RUN) rc = run_execute(s);
        info->write_failed = s->write_failed;
    } else {
        rc = 1;
    }
    run_setup_done(s);
    return rc;
}

int cmd_run(cli_ctx *cx, int argc, char **argv) {
    run_setup *s = run_setup_new(cx, 0, CELL_RUN);
    int rc = run_parse(s, argc, argv);
    rc = rc == 0 ? run_execute(s) : rc == 1 ? 0 : 1;
    run_setup_done(s);
    return rc;
}
