/*
 * main.c: the `lcgbench` command line. Commands: run, gen, help; --version (sweep and merge
 * are in sweep.c and merge.c, table in table.c). Flags are one table
 * (common flags plus the chosen task's parameters), parsed strictly: an unknown flag, a
 * missing value, a malformed or out-of-range number is a one-line error naming the flag,
 * with a usage hint, and exit status 2. Runtime failures (I/O, non-finite loss) exit 1;
 * SIGINT/SIGTERM during a run write a resumable checkpoint and exit 128 + the signal.
 *
 * Built with -DLCG_FUZZ (tests/fuzz/fuzz_cli.c includes this file), a usage error returns to
 * the fuzzer through lcg_fuzz_jmp instead of exiting, and `run`/`gen` stop after validating
 * their flags, before any file is written or anything trained.
 */
#define _POSIX_C_SOURCE 200809L
#include "run.h"
#include "../model/checkpoint.h"
#include "../model/infer.h"
#include "threads.h"

#include <errno.h>
#include <math.h>
#include <signal.h>
#include <omp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

enum { FL_INT, FL_LONG, FL_U64, FL_DOUBLE, FL_STR, FL_BOOL, FL_LIST, FL_TASKP };

typedef struct {
    const char *name; /* without "--"; also the checkpoint note key */
    int kind;
    void *ptr;
    double min, max;
    const char *meta, *help;
    int in_note;      /* recorded in checkpoints: must agree with --load */
    int set;          /* given on the command line */
} flag;

static const char *g_cmd = "run";
#ifdef LCG_FUZZ
#include <setjmp.h>
jmp_buf lcg_fuzz_jmp;
static struct run_setup_s *g_fuzz_setup; /* the run being parsed, freed after a usage error */
#endif
static char g_ctx[512]; /* what the error is about, for commands that parse many runs */

void lcg_usage_context(const char *ctx) { snprintf(g_ctx, sizeof g_ctx, "%s", ctx); }

static _Noreturn void usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static _Noreturn void usage_error(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "lcgbench %s: %s%s", g_cmd, g_ctx, g_ctx[0] ? ": " : "");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, " (see 'lcgbench %s --help')\n", g_cmd);
    va_end(ap);
#ifdef LCG_FUZZ
    longjmp(lcg_fuzz_jmp, 2);
#endif
    exit(2);
}

/* parse `s` for flag f into dst (same type as f->ptr); returns NULL or an error text */
static const char *parse_value(const flag *f, const char *s, void *dst) {
    static char why[200];
    char *end;
    errno = 0;
    switch (f->kind) {
    case FL_INT:
    case FL_LONG: {
        long long v = strtoll(s, &end, 10);
        if (end == s || *end) return "expected an integer";
        if (errno == ERANGE || v < f->min || v > f->max) {
            snprintf(why, sizeof why, "must be in [%.0f, %.0f]", f->min, f->max);
            return why;
        }
        if (f->kind == FL_INT) *(int *)dst = (int)v;
        else *(long *)dst = (long)v;
        return NULL;
    }
    case FL_U64: {
        if (strchr(s, '-')) return "must be a non-negative integer";
        unsigned long long v = strtoull(s, &end, 10);
        if (end == s || *end) return "expected a non-negative integer";
        if (errno == ERANGE) return "is out of range for a 64-bit seed";
        *(uint64_t *)dst = v;
        return NULL;
    }
    case FL_DOUBLE:
    case FL_TASKP: {
        double v = strtod(s, &end);
        if (end == s || *end || isnan(v)) return "expected a number";
        if (errno == ERANGE || v < f->min || v > f->max) {
            snprintf(why, sizeof why, "must be in [%.10g, %.10g]", f->min, f->max);
            return why;
        }
        if (f->kind == FL_TASKP && f->meta && strcmp(f->meta, "INT") == 0 && v != floor(v))
            return "expected an integer";
        *(double *)dst = v;
        return NULL;
    }
    case FL_STR:
        if (!*s) return "must not be empty";
        *(const char **)dst = s;
        return NULL;
    default: return "cannot take a value";
    }
}

static flag *find_flag(flag *fl, int n, const char *name, size_t len) {
    for (int i = 0; i < n; i++)
        if (strlen(fl[i].name) == len && strncmp(fl[i].name, name, len) == 0) return &fl[i];
    return NULL;
}

/* --name value | --name=value | --bool; every error exits 2 naming the flag */
static void parse_args(flag *fl, int n_fl, int argc, char **argv) {
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (strncmp(a, "--", 2) != 0) usage_error("unexpected argument '%s'", a);
        const char *eq = strchr(a, '=');
        size_t len = eq ? (size_t)(eq - a - 2) : strlen(a + 2);
        flag *f = find_flag(fl, n_fl, a + 2, len);
        if (!f) usage_error("unknown flag '--%.*s'", (int)len, a + 2);
        if (f->set) usage_error("--%s given twice", f->name);
        f->set = 1;
        if (f->kind == FL_BOOL) {
            if (eq) usage_error("--%s takes no value", f->name);
            *(int *)f->ptr = 1;
            continue;
        }
        const char *val = eq ? eq + 1 : (i + 1 < argc ? argv[++i] : NULL);
        if (!val) usage_error("--%s needs a value", f->name);
        const char *why = parse_value(f, val, f->ptr);
        if (why) usage_error("--%s %s, got '%s'", f->name, why, val);
    }
}

/* the task named by --task (or --task=) in argv, else def */
static const char *scan_task(int argc, char **argv, const char *def) {
    for (int i = 0; i < argc; i++) {
        if (strncmp(argv[i], "--task=", 7) == 0) def = argv[i] + 7;
        else if (strcmp(argv[i], "--task") == 0 && i + 1 < argc) def = argv[i + 1];
    }
    return def;
}

/* appends the task's own parameters to a flag table */
static int add_task_flags(flag *fl, int n, lcg_task_cfg *task) {
    const lcg_task *t = task->task;
    for (int i = 0; i < t->n_params; i++) {
        const lcg_task_param *p = &t->params[i];
        fl[n++] = (flag){p->flag, FL_TASKP, &task->p[i], p->min, p->max, p->is_int ? "INT" : "X", p->help, 1, 0};
    }
    return n;
}

static void print_flags(const flag *fl, int n) {
    for (int i = 0; i < n; i++) {
        char left[64];
        snprintf(left, sizeof left, "--%s%s%s", fl[i].name, fl[i].kind == FL_BOOL ? "" : " ",
                 fl[i].kind == FL_BOOL ? "" : fl[i].meta && strcmp(fl[i].meta, "INT") ? fl[i].meta : "N");
        printf("  %-24s %s\n", left, fl[i].help);
    }
}

/* ---- run ---------------------------------------------------------------------------------- */
typedef struct {
    const char *task, *attn, *pos, *eval_lens, *preset;
    double alpha;
    int show_help;
} run_names;

static int build_flags(flag *fl, lcg_run_cfg *c, run_names *nm) {
    lcg_config *m = &c->model;
    flag common[] = {
        {"task", FL_STR, &nm->task, 0, 0, "NAME", "task (see 'lcgbench help tasks'); default copy", 1, 0},
        {"preset", FL_STR, &nm->preset, 0, 0, "NAME", "settings bundle paper|mini|ci ('lcgbench help presets'); flags override it", 0, 0},
        {"attn", FL_STR, &nm->attn, 0, 0, "NAME", "attention normalizer (see 'lcgbench help attn'); default softmax", 1, 0},
        {"alpha", FL_DOUBLE, &nm->alpha, 1, 2, "X", "alpha of entmax, asentmax, entmax-learn: (1, 2], default 1.5", 1, 0},
        {"pos", FL_STR, &nm->pos, 0, 0, "NAME", "position encoding: rope|nope|alibi|nape; default rope", 1, 0},
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
        {"len", FL_INT, &c->len, 1, 1 << 20, "N", "training length (the task's quick default: 16, 48 for count and mqmtar)", 1, 0},
        {"vary", FL_INT, &c->vary, 0, 1 << 20, "N", "training lengths are len +- vary (8; 16 for count and mqmtar)", 1, 0},
        {"max-len", FL_INT, &c->max_len, 1, 1 << 24, "N", "ladder: (len+vary)*2^k up to this (16*(len+vary))", 0, 0},
        {"eval-lens", FL_STR, &nm->eval_lens, 0, 0, "L1,L2,..", "explicit evaluation lengths instead of the ladder", 0, 0},
        {"eval-samples", FL_INT, &c->eval_samples, 1, 1 << 24, "N", "test samples per length (100)", 0, 0},
        {"eval-tokens", FL_LONG, &c->eval_tokens, 0, 1e15, "N", "and at most N/length of them, 0 = no cap (0)", 0, 0},
        {"eval-min", FL_INT, &c->eval_min, 1, 1 << 24, "N", "but at least this many under --eval-tokens (20)", 0, 0},
        {"out", FL_STR, &c->out, 0, 0, "FILE", "CSV to append rows to (results/runs.csv)", 0, 0},
        {"save", FL_STR, &c->save, 0, 0, "FILE", "write a checkpoint after training", 0, 0},
        {"load", FL_STR, &c->load, 0, 0, "FILE", "evaluate this checkpoint instead of training", 0, 0},
        {"resume", FL_STR, &c->resume, 0, 0, "FILE", "continue the interrupted run of this checkpoint (settings from it)", 0, 0},
        {"checkpoint-every", FL_LONG, &c->ckpt_every, 1, 1e9, "N", "also write the resumable checkpoint every N steps", 0, 0},
        {"data", FL_STR, &c->data, 0, 0, "DIR", "train on DIR/train.{src,trg}, evaluate DIR/test_<i>_<len> (reference format)", 0, 0},
        {"threads", FL_INT, &c->threads, 1, 1024, "N", "OpenMP threads (OMP_NUM_THREADS, else the CPUs this process may use)", 0, 0},
        {"log-every", FL_LONG, &c->log_every, 1, 1e9, "N", "steps between log lines off a terminal", 0, 0},
        {"quiet", FL_BOOL, &c->quiet, 0, 0, NULL, "no progress output", 0, 0},
        {"help", FL_BOOL, &nm->show_help, 0, 0, NULL, "show this help", 0, 0},
    };
    int n = (int)(sizeof common / sizeof *common);
    memcpy(fl, common, sizeof common);
    return add_task_flags(fl, n, &c->task);
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
    c->out = "results/runs.csv";
}

/* the checkpoint note of --load, split in place: string flags taken from it point into it */
static char *g_note;
static int g_resuming; /* --resume: the note's data directory applies too */

/* apply "key=value;..." (a checkpoint note) to the flags; a flag given on the command line
 * must agree with the note */
static void apply_note(flag *fl, int n, const char *note, const char *path) {
    char *copy = g_note = strdup(note);
    if (!copy) lcg_die("out of memory");
    for (char *save = NULL, *kv = strtok_r(copy, ";", &save); kv; kv = strtok_r(NULL, ";", &save)) {
        char *eq = strchr(kv, '=');
        if (!eq) continue;
        *eq = '\0';
        flag *f = find_flag(fl, n, kv, strlen(kv));
        if (!f || !(f->in_note || (g_resuming && strcmp(kv, "data") == 0))) continue;
        unsigned char tmp[16] = {0}, cur[16] = {0};
        size_t sz = f->kind == FL_INT ? sizeof(int) : f->kind == FL_STR ? sizeof(char *) : 8;
        if (parse_value(f, eq + 1, tmp)) usage_error("checkpoint '%s' has a bad %s '%s'", path, kv, eq + 1);
        memcpy(cur, f->ptr, sz);
        if (f->set) {
            int same = f->kind == FL_STR ? strcmp(*(char **)cur, *(char **)tmp) == 0 : memcmp(cur, tmp, sz) == 0;
            if (!same) usage_error("--%s conflicts with the checkpoint '%s' (%s=%s)", kv, path, kv, eq + 1);
        } else if (f->kind == FL_STR) {
            *(char **)f->ptr = eq + 1; /* inside g_note */
        } else {
            memcpy(f->ptr, tmp, sz);
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

static void run_help(const flag *fl, int n) {
    printf("usage: lcgbench run [flags]\n\n"
           "Train a small transformer on a synthetic task at short length, evaluate it on a\n"
           "ladder of longer lengths, print a table and append one CSV row per length.\n\n"
           "flags (the task's own parameters are listed last):\n");
    print_flags(fl, n);
}

static void parse_eval_lens(lcg_run_cfg *c, const char *s) {
    const char *p = s;
    while (*p) {
        char *end;
        errno = 0;
        long v = strtol(p, &end, 10);
        if (end == p || (*end && *end != ',') || (*end == ',' && !end[1]) || errno || v < 1 || v > (1 << 24))
            usage_error("--eval-lens: '%s' is not a comma-separated list of lengths in [1, 16777216]", s);
        if (c->n_rungs == LCG_MAX_RUNGS) usage_error("--eval-lens: at most %d lengths", LCG_MAX_RUNGS);
        c->rungs[c->n_rungs++] = (int)v;
        p = *end ? end + 1 : end;
    }
    if (!c->n_rungs) usage_error("--eval-lens: empty list");
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

/* everything one run needs, parsed and checked (sweep builds one per grid cell) */
typedef struct run_setup_s {
    lcg_run_cfg c;
    run_names nm;
    lcg_checkpoint ck;
    const char *load;
    flag fl[64];
    int n_fl;
    char preset_buf[4][512]; /* the preset's settings, split in place: string flags point here */
    char ckpt_buf[4200];     /* the derived checkpoint path */
} run_setup;

/* applies "flag=value;..." to every flag not given on the command line (marked set = 2) */
static void apply_settings(flag *fl, int n, char *settings, const char *preset) {
    for (char *save = NULL, *kv = strtok_r(settings, ";", &save); kv; kv = strtok_r(NULL, ";", &save)) {
        char *eq = strchr(kv, '=');
        if (!eq) lcg_die("preset %s: malformed setting '%s'", preset, kv);
        *eq = '\0';
        flag *f = find_flag(fl, n, kv, strlen(kv));
        if (!f) lcg_die("preset %s: unknown flag '%s'", preset, kv);
        if (f->set) continue;
        const char *why = parse_value(f, eq + 1, f->ptr);
        if (why) lcg_die("preset %s: --%s %s", preset, kv, why);
        f->set = 2;
    }
}

/* parses and validates the flags of one run; usage errors exit 2. Returns 0 (ready to
 * execute), 1 (help was printed) or -1 (a runtime error was printed) */
static int run_parse(run_setup *s, int argc, char **argv) {
    /* the task (from --task or the checkpoint) decides which flags exist: find it first */
    const char *task_name = scan_task(argc, argv, "copy"), *load = NULL;
    g_resuming = 0;
    for (int i = 0; i < argc; i++) { /* --load or --resume: a checkpoint with settings */
        const char *a = argv[i];
        int r = strncmp(a, "--resume", 8) == 0;
        if (strncmp(a, "--load=", 7) == 0 || strncmp(a, "--resume=", 9) == 0) load = strchr(a, '=') + 1;
        else if ((strcmp(a, "--load") == 0 || strcmp(a, "--resume") == 0) && i + 1 < argc) load = argv[i + 1];
        else continue;
        g_resuming = r; /* both given: a usage error below */
    }
    if (strcmp(g_cmd, "sweep") == 0) /* a grid file's args reach here unchecked by sweep */
        for (int i = 0; i < argc; i++)
            for (int k = 0; k < 3; k++) {
                static const char *const per_run[] = {"--load", "--resume", "--save"};
                size_t n = strlen(per_run[k]);
                if (strncmp(argv[i], per_run[k], n) == 0 && (argv[i][n] == '\0' || argv[i][n] == '='))
                    usage_error("%s is per run: a sweep trains every cell", per_run[k]);
            }
    lcg_checkpoint *ck = &s->ck;
    char err[768], buf[256];
    int task_given = 0;
    for (int i = 0; i < argc; i++) task_given |= strncmp(argv[i], "--task", 6) == 0;
    if (load) {
        if (checkpoint_load(load, ck, err, sizeof err) != 0) {
            fprintf(stderr, "lcgbench %s: %s\n", g_cmd, err);
            return -1;
        }
        if (!task_given && note_get(ck->note, "task", buf, sizeof buf)) task_name = buf;
    }
    s->load = load;
    const lcg_task *task = lcg_task_find(task_name);
    if (!task) usage_error("--task: unknown task '%s'; 'lcgbench help tasks' lists them", task_name);

    lcg_run_cfg *cp = &s->c;
    run_names *nmp = &s->nm;
    set_defaults(cp, nmp, task);
    flag *fl = s->fl;
    int n_fl = s->n_fl = build_flags(fl, cp, nmp);
    parse_args(fl, n_fl, argc, argv);
    if (nmp->show_help) {
        run_help(fl, n_fl);
        return 1;
    }
    if (cp->load && cp->resume) usage_error("--resume cannot be combined with --load");
    if (nmp->preset) {
        if (!lcg_preset_known(nmp->preset)) usage_error("--preset: unknown preset '%s' (%s)", nmp->preset, lcg_preset_names());
        if (load) usage_error("--preset cannot be combined with --%s (the checkpoint has its settings)", g_resuming ? "resume" : "load");
        const char *set;
        for (int k = 0; k < 4 && (set = lcg_preset_settings(nmp->preset, task->name, k)); k++) {
            snprintf(s->preset_buf[k], sizeof s->preset_buf[k], "%s", set);
            apply_settings(fl, n_fl, s->preset_buf[k], nmp->preset);
        }
    }
    if (load) apply_note(fl, n_fl, ck->note, load);
#define c (*cp)
#define nm (*nmp)
    const lcg_normalizer *norm = lcg_normalizer_find(nm.attn);
    if (!norm) usage_error("--attn: unknown normalizer '%s'; 'lcgbench help attn' lists them", nm.attn);
    const lcg_posenc *pos = lcg_posenc_find(nm.pos);
    if (!pos) usage_error("--pos: unknown position encoding '%s'; 'lcgbench help pos' lists them", nm.pos);
    if (find_flag(fl, n_fl, "alpha", 5)->set && !norm->has_alpha)
        usage_error("--alpha: normalizer '%s' has no alpha", norm->name);
    c.model.norm = norm->id;
    c.model.pos = pos->id;
    c.model.alpha = (float)(isnan(nm.alpha) ? norm->alpha_def : nm.alpha);
    if (norm->has_alpha && !(c.model.alpha > 1.0f))
        usage_error("--alpha must be in (1, 2] for %s (1 is softmax: use --attn softmax)", norm->name);
    c.model.V = lcg_task_out_vocab(&c.task);
    const char *bad = lcg_config_check(&c.model);
    if (bad[0]) usage_error("%s", bad);
    if (c.model.pos == LCG_POS_ROPE && c.model.D % 2) usage_error("--head-dim must be even for rope");
    if (c.vary >= c.len) usage_error("--vary %d must be smaller than --len %d", c.vary, c.len);
    bad = task->validate(&c.task, c.len - c.vary);
    if (bad[0]) usage_error("%s (at the shortest training length %d)", bad, c.len - c.vary);
    if (!c.max_len) c.max_len = 16 * (c.len + c.vary);
    if (nm.eval_lens) parse_eval_lens(&c, nm.eval_lens);
    if (c.data) { /* evaluate the directory's test splits (all, or those of --eval-lens) */
        int idx[LCG_MAX_RUNGS], lens[LCG_MAX_RUNGS], n = data_test_splits(c.data, idx, lens, LCG_MAX_RUNGS, err, sizeof err);
        if (n < 0) usage_error("--data: %s", err);
        if (n == 0) usage_error("--data: '%s' has no test_<i>_<len>.src files", c.data);
        for (int i = 0; i < c.n_rungs; i++) {
            int found = 0;
            for (int k = 0; k < n; k++) found |= lens[k] == c.rungs[i];
            if (!found) usage_error("--eval-lens: '%s' has no test split of length %d", c.data, c.rungs[i]);
        }
        if (!c.n_rungs) memcpy(c.rungs, lens, sizeof(int) * (size_t)(c.n_rungs = n));
        for (int k = 0; k < n; k++) { /* a malformed test file fails now, not after training */
            char split[64];
            int used = 0;
            for (int i = 0; i < c.n_rungs; i++) used |= c.rungs[i] == lens[k];
            snprintf(split, sizeof split, "test_%d_%d", idx[k], lens[k]);
            if (used && data_check_split(c.data, split, &c.task, NULL, err, sizeof err) != 0) {
                fprintf(stderr, "lcgbench %s: %s\n", g_cmd, err);
                return -1;
            }
        }
    }
    else if (c.max_len < c.len + c.vary)
        usage_error("--max-len %d is below the longest training length %d", c.max_len, c.len + c.vary);
    for (int i = 0; i < c.n_rungs && !c.data; i++) {
        bad = task->validate(&c.task, c.rungs[i]);
        if (bad[0]) usage_error("--eval-lens: %s (length %d)", bad, c.rungs[i]);
    }
    if (c.warmup > c.steps) {
        if (find_flag(fl, n_fl, "warmup", 6)->set == 1) usage_error("--warmup %ld exceeds --steps %ld", c.warmup, c.steps);
        c.warmup = c.steps / 10; /* the default warmup, scaled down for short runs */
    }
    if (c.load && c.save) usage_error("--save cannot be combined with --load (nothing is trained)");
    if (c.load && c.ckpt_every) usage_error("--checkpoint-every cannot be combined with --load (nothing is trained)");

    if (c.threads) omp_set_num_threads(c.threads);
    c.threads = omp_get_max_threads();

    /* memory check before any work: every thread holds a decoder at the longest length */
    int lens[LCG_MAX_RUNGS], n_lens = eval_ladder(&c, lens), longest = 0;
    for (int i = 0; i < n_lens; i++) longest = lens[i] > longest ? lens[i] : longest;
    int ms, mt;
    task->max_sizes(&c.task, longest, &ms, &mt);
    double need = (double)decoder_bytes(&c.model, seq_max_input(&c.task, longest) + 1) * c.threads +
                  (double)c.eval_samples * (ms + mt) * sizeof(int);
    long avail = mem_available_bytes();
    if (avail > 0 && need > 0.9 * (double)avail)
        usage_error("evaluating length %d needs about %.1f GiB (%d threads), more than the %.1f GiB "
                    "available; lower --max-len, --eval-samples or --threads",
                    longest, need / (1 << 30), c.threads, (double)avail / (1 << 30));

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
    return 0;
#undef c
#undef nm
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
    if (csv_preflight(&c, err, sizeof err) != 0 || (c.ckpt && lcg_check_writable(c.ckpt, err, sizeof err) != 0)) {
        fprintf(stderr, "lcgbench %s: %s\n", g_cmd, err);
        return 1;
    }
    lcg_catch_stop_signals();
    if (c.auto_resume && !c.load && !c.resume) { /* a sweep cell cut short before: continue it */
        char note[1024];
        run_cfg_string(&c, note, sizeof note);
        struct stat st;
        if (stat(c.ckpt, &st) == 0) {
            if (checkpoint_load(c.ckpt, &s->ck, err, sizeof err) == 0 && strcmp(s->ck.note, note) == 0 &&
                (s->ck.state_len == LCG_TRAIN_STATE_BYTES || s->ck.state_len == LCG_TRAIN_STATE_BYTES_OLD) &&
                s->ck.step <= c.steps) {
                c.resume = load = s->load = c.ckpt;
                fprintf(stderr, "lcgbench %s: continuing from '%s' (step %ld)\n", g_cmd, c.ckpt, s->ck.step);
            } else {
                checkpoint_free(&s->ck); /* another run's or unreadable: start afresh, overwrite it */
            }
        }
    }
    lcg_task_prepare(&c.task, c.seed); /* per-run task state, e.g. mqmtar's vocabulary */
    lcg_model m;
    model_init(&m, &c.model, c.seed);
    lcg_train_result tr = {.train_loss = NAN};
    char note[1024];
    run_cfg_string(&c, note, sizeof note);
    if (!c.quiet)
        fprintf(stderr, "lcgbench %s: task %s, %s + %s, %d layers, C=%d, %dx%d heads, %zu params, %d threads\n",
                LCG_VERSION, task->name, lcg_normalizer_at(c.model.norm)->name, lcg_posenc_at(c.model.pos)->name, c.model.L, c.model.C, c.model.H,
                c.model.D, m.n_params, c.threads);
    if (load) {
        const lcg_config *h = &s->ck.cfg, *w = &c.model;
        if (s->ck.n_params != m.n_params || h->V != w->V || h->L != w->L || h->C != w->C || h->H != w->H ||
            h->D != w->D || h->F != w->F || h->norm != w->norm || h->pos != w->pos || h->alpha != w->alpha) {
            fprintf(stderr, "lcgbench %s: checkpoint '%s': its model header does not match its settings\n", g_cmd, load);
            model_free(&m);
            lcg_task_release(&c.task);
            return 1;
        }
        memcpy(m.params_mem, s->ck.params, sizeof(float) * m.n_params);
        tr.steps_done = s->ck.step;
        /* a model whose training finished reports that training's loss (the checkpoint's
         * training state keeps the tail sum); one cut short, or without a state, leaves it empty */
        lcg_train_state st;
        if (c.load && s->ck.step == c.steps &&
            train_state_unpack(&st, s->ck.state, s->ck.state_len, err, sizeof err) == 0 && st.tail_n > 0)
            tr.train_loss = st.tail_loss / st.tail_n;
    }
    if (!c.load) {
        int sig = train_run(&m, &tr, &c, note, c.resume ? &s->ck : NULL);
        if (sig) {
            model_free(&m);
            lcg_task_release(&c.task);
            return 128 + sig;
        }
        if (!c.quiet)
            fprintf(stderr, "trained %ld steps in %.1f s (%.0f tok/s), final loss %.4f\n", tr.steps_done,
                    tr.train_seconds, tr.train_tok_s, tr.train_loss);
    }

    lcg_rung_result res[LCG_MAX_RUNGS];
    printf("%8s %7s %8s %17s %8s %9s %8s\n", "len", "factor", "exact%", "95% CI", "token%", "loss", "sec");
    for (int i = 0; i < n_lens; i++) {
        /* SIGINT/SIGTERM during a rung (a worker thread may take it late: checked after too):
         * no rows, keep the model */
        if (eval_rung(&res[i], &m, &c, lens[i]) != 0 || lcg_stop_signal) {
            int sig = lcg_stop_signal;
            char kept[4400] = "";
            if (!c.load && !c.save) {
                unsigned char blob[LCG_TRAIN_STATE_BYTES];
                train_state_pack(&tr.state, blob);
                if (checkpoint_save(c.ckpt, &m, NULL, tr.state.step, note, blob, sizeof blob, err, sizeof err) != 0)
                    lcg_die("%s", err);
            }
            if (!c.load)
                snprintf(kept, sizeof kept, "; the trained model is in '%s': 'lcgbench run --resume %s' evaluates it", c.ckpt, c.ckpt);
            fprintf(stderr, "lcgbench %s: %s while evaluating length %d; no rows written%s\n", g_cmd,
                    sig == SIGINT ? "interrupted" : "terminated", lens[i], kept);
            model_free(&m);
            lcg_task_release(&c.task);
            return 128 + sig;
        }
        double lo, hi;
        wilson95(res[i].exact, res[i].samples, &lo, &hi);
        printf("%8d %7.4g %8.1f   [%5.1f, %5.1f] %8.1f %9.4f %8.2f\n", res[i].len, res[i].factor,
               100.0 * res[i].exact / res[i].samples, 100 * lo, 100 * hi,
               100.0 * res[i].tokens_ok / res[i].tokens, res[i].loss, res[i].seconds);
        fflush(stdout);
    }
    int rc = 0;
    if (csv_append(&c, &tr, res, n_lens, err, sizeof err) != 0) {
        fprintf(stderr, "lcgbench %s: %s\n", g_cmd, err);
        rc = 1;
    } else if (!c.quiet) {
        fprintf(stderr, "appended %d rows to %s\n", n_lens, c.out);
    }
    if (rc == 0 && c.auto_resume && c.ckpt == s->ckpt_buf) remove(c.ckpt); /* the cell is in the CSV */
    model_free(&m);
    lcg_task_release(&c.task);
    return rc;
#undef c
}

/* a run's flags, parsed into one allocation; under the fuzzer, the one being parsed is known
 * so that a usage error's longjmp can free it */
static run_setup *run_setup_new(const char *cmd) {
    g_cmd = cmd;
    run_setup *s = LCG_NEW(run_setup, 1);
#ifdef LCG_FUZZ
    g_fuzz_setup = s;
#endif
    return s;
}

static void run_setup_free(run_setup *s) {
    checkpoint_free(&s->ck);
    free(g_note);
    g_note = NULL;
    lcg_free(s);
#ifdef LCG_FUZZ
    g_fuzz_setup = NULL;
#endif
}

int lcg_run_flags(int argc, char **argv, int execute, lcg_run_info *info) {
    run_setup *s = run_setup_new("sweep");
    int rc = run_parse(s, argc, argv);
    s->c.auto_resume = 1;
    if (rc == 0) {
        info->run_id = run_cfg_id(&s->c);
        info->n_rows = eval_ladder(&s->c, info->lens);
        snprintf(info->out, sizeof info->out, "%s", s->c.out);
        if (execute) rc = run_execute(s);
    } else {
        rc = 1;
    }
    run_setup_free(s);
    return rc;
}

static int cmd_run(int argc, char **argv) {
    run_setup *s = run_setup_new("run");
    int rc = run_parse(s, argc, argv);
    rc = rc == 0 ? run_execute(s) : rc == 1 ? 0 : 1;
    run_setup_free(s);
    return rc;
}

/* ---- gen ---------------------------------------------------------------------------------- */
static int cmd_gen(int argc, char **argv) {
    g_cmd = "gen";
    const lcg_task *task = lcg_task_find(scan_task(argc, argv, "copy"));
    if (!task) usage_error("--task: unknown task '%s'; 'lcgbench help tasks' lists them", scan_task(argc, argv, "copy"));
    lcg_task_cfg tc;
    lcg_task_defaults(&tc, task);
    const char *task_name = task->name, *split = "train", *format = "ref", *out = NULL;
    uint64_t seed = 1;
    int len = task->cpu_len, vary = -1, index = 0, help = 0;
    long count = 1000;
    flag fl[32] = {
        {"task", FL_STR, &task_name, 0, 0, "NAME", "task; default copy", 0, 0},
        {"split", FL_STR, &split, 0, 0, "train|test", "train: lengths len +- vary, the samples 'run' trains on "
                                                      "first; test: length len, the samples 'run' evaluates (train)", 0, 0},
        {"len", FL_INT, &len, 1, 1 << 24, "N", "length (the task's default, as for 'run')", 0, 0},
        {"vary", FL_INT, &vary, 0, 1 << 24, "N", "train split: lengths len +- vary (the task's default)", 0, 0},
        {"count", FL_LONG, &count, 1, 1e9, "N", "samples (1000)", 0, 0},
        {"index", FL_INT, &index, 0, 1 << 20, "N", "test split: file name test_<index>_<len> (0)", 0, 0},
        {"seed", FL_U64, &seed, 0, 0, "N", "seed, as for 'run' (1)", 0, 0},
        {"format", FL_STR, &format, 0, 0, "ref|tsv", "ref: <split>.src/.trg (the reference's files); tsv: <split>.tsv (ref)", 0, 0},
        {"out", FL_STR, &out, 0, 0, "DIR", "output directory (required; created if missing)", 0, 0},
        {"help", FL_BOOL, &help, 0, 0, NULL, "show this help", 0, 0},
    };
    int n_fl = add_task_flags(fl, 10, &tc);
    parse_args(fl, n_fl, argc, argv);
    if (help) {
        printf("usage: lcgbench gen --out DIR [flags]\n\n"
               "Write a task's samples in the reference generator's format (one sample per line,\n"
               "space-separated ids, no special tokens), the same samples 'lcgbench run' draws for\n"
               "the same seed, so 'run --data DIR' and the paper's code can read them.\n\nflags:\n");
        print_flags(fl, n_fl);
        return 0;
    }
    if (!out) usage_error("--out is required");
    int is_test = strcmp(split, "test") == 0;
    if (!is_test && strcmp(split, "train") != 0) usage_error("--split must be train or test, got '%s'", split);
    if (strcmp(format, "ref") != 0 && strcmp(format, "tsv") != 0) usage_error("--format must be ref or tsv, got '%s'", format);
    if (vary < 0) vary = is_test ? 0 : task->cpu_vary;
    if (is_test && vary) usage_error("--vary: test splits have a fixed length");
    if (!is_test && fl[5].set) usage_error("--index: only test splits have an index");
    if (vary >= len) usage_error("--vary %d must be smaller than --len %d", vary, len);
    const char *bad = task->validate(&tc, len - vary);
    if (bad[0]) usage_error("%s (at length %d)", bad, len - vary);
    char name[64], err[768];
    if (is_test) snprintf(name, sizeof name, "test_%d_%d", index, len);
    else snprintf(name, sizeof name, "train");
#ifdef LCG_FUZZ
    return 0;
#endif
    mkdir(out, 0777);
    lcg_task_prepare(&tc, seed);
    pcg32 rng = is_test ? pcg32_derive(seed, "test", (uint64_t)len) : pcg32_derive(seed, "train", 0);
    int rc = data_write_split(out, name, format, &tc, &rng, count, len, is_test ? -1 : vary, err, sizeof err);
    lcg_task_release(&tc);
    if (rc != 0) {
        fprintf(stderr, "lcgbench gen: %s\n", err);
        return 1;
    }
    fprintf(stderr, "wrote %ld %s samples to %s/%s.%s\n", count, task->name, out, name,
            strcmp(format, "tsv") == 0 ? "tsv" : "{src,trg}");
    return 0;
}

/* ---- help --------------------------------------------------------------------------------- */
static void main_help(FILE *out) {
    fprintf(out, "lcgbench %s: length-extrapolation benchmarks for attention normalizers\n\n"
           "usage: lcgbench <command> [flags]\n\n"
           "commands:\n"
           "  run      train on a task at short length, evaluate a ladder of lengths, append CSV\n"
           "  sweep    run a grid of runs (tasks x attentions x encodings x seeds) into one CSV, resumably\n"
           "  merge    the CSVs of a sharded sweep (sweep --shard K/N) into one, in grid order\n"
           "  table    result CSVs as the paper's Table 1 (Markdown, CSV, LaTeX) or plot data\n"
           "  regress  compare a result CSV with a committed baseline (the CI guard)\n"
           "  gen      write a task's samples in the reference's file format (for run --data)\n"
           "  help     this text; 'lcgbench help <command|tasks|attn|pos|presets>' for more\n\n"
           "Every command takes --help. 'lcgbench --version' prints the version.\n",
           LCG_VERSION);
}

static int cmd_help(int argc, char **argv) {
    g_cmd = "help";
    if (argc == 0) {
        main_help(stdout);
        return 0;
    }
    if (argc > 1) usage_error("takes at most one topic");
    const char *t = argv[0];
    if (strcmp(t, "run") == 0) {
        char *args[] = {"--help"};
        return cmd_run(1, args);
    }
    if (strcmp(t, "gen") == 0) {
        char *args[] = {"--help"};
        return cmd_gen(1, args);
    }
    if (strcmp(t, "help") == 0 || strcmp(t, "--help") == 0) {
        main_help(stdout);
        return 0;
    }
    if (strcmp(t, "sweep") == 0 || strcmp(t, "table") == 0 || strcmp(t, "regress") == 0 || strcmp(t, "merge") == 0) {
        char *args[] = {"--help"};
        if (strcmp(t, "merge") == 0) return cmd_merge(1, args);
        return strcmp(t, "sweep") == 0 ? cmd_sweep(1, args) : strcmp(t, "table") == 0 ? cmd_table(1, args) : cmd_regress(1, args);
    }
    if (strcmp(t, "presets") == 0) {
        const char *names[] = {"paper", "mini", "ci"};
        for (int p = 0; p < 3; p++) {
            printf("%s:\n", names[p]);
            for (int i = 0; lcg_task_at(i); i++) {
                printf("  %-10s", lcg_task_at(i)->name);
                const char *set;
                for (int k = 0; (set = lcg_preset_settings(names[p], lcg_task_at(i)->name, k)); k++) printf(" %s", set);
                printf("\n");
            }
        }
        printf("(a task's own settings come first and win; flags given on the command line win over both)\n");
        return 0;
    }
    if (strcmp(t, "tasks") == 0) {
        for (int i = 0; lcg_task_at(i); i++) {
            const lcg_task *k = lcg_task_at(i);
            printf("%-10s %s (default length %d +- %d; the reference's %d +- %d)\n", k->name, k->help, k->cpu_len,
                   k->cpu_vary, k->def_len, k->def_vary);
            for (int j = 0; j < k->n_params; j++)
                printf("    --%-14s %s (default %g)\n", k->params[j].flag, k->params[j].help, k->params[j].def);
        }
        return 0;
    }
    if (strcmp(t, "attn") == 0) {
        for (int i = 0; lcg_normalizer_at(i); i++)
            printf("%-13s %s\n", lcg_normalizer_at(i)->name, lcg_normalizer_at(i)->help);
        return 0;
    }
    if (strcmp(t, "pos") == 0) {
        for (int i = 0; lcg_posenc_at(i); i++) printf("%-10s %s\n", lcg_posenc_at(i)->name, lcg_posenc_at(i)->help);
        return 0;
    }
    usage_error("unknown topic '%s' (commands: run, sweep, merge, table, gen, help; topics: tasks, attn, pos, presets)", t);
}

int main(int argc, char **argv) {
    lcg_threads_init(argv); /* a short OpenMP spin unless the user chose one (threads.c) */
    if (argc < 2) {
        main_help(stderr);
        return 2;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "--version") == 0 || strcmp(cmd, "version") == 0) {
        printf("lcgbench %s\n", LCG_VERSION);
        return 0;
    }
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0) return cmd_help(0, NULL);
    if (strcmp(cmd, "run") == 0) return cmd_run(argc - 2, argv + 2);
    if (strcmp(cmd, "gen") == 0) return cmd_gen(argc - 2, argv + 2);
    if (strcmp(cmd, "sweep") == 0) return cmd_sweep(argc - 2, argv + 2);
    if (strcmp(cmd, "table") == 0) return cmd_table(argc - 2, argv + 2);
    if (strcmp(cmd, "merge") == 0) return cmd_merge(argc - 2, argv + 2);
    if (strcmp(cmd, "regress") == 0) return cmd_regress(argc - 2, argv + 2);
    if (strcmp(cmd, "help") == 0) return cmd_help(argc - 2, argv + 2);
    fprintf(stderr, "lcgbench: unknown command '%s' (see 'lcgbench --help')\n", cmd);
    return 2;
}
