/*
 * csv_out.c: result rows, one per (run, eval length), appended to a CSV file with libcsv.
 * The file is rewritten whole through a temp file and rename, so a reader or a crash never
 * sees a partial row. An existing file must have exactly our header (checked with libcsv's
 * parser); a different schema is an error, never a silently mixed file. The one exception is
 * an older schema (1: before the device, gpu and precision columns; 2: before bleu, checkpoint and
 * checkpoint_step; 3: before the relevant-key mass and collapse columns): appending to such a
 * file upgrades it in place under its lock (its rows are the last checkpoints of CPU fp32 runs
 * without BLEU or mechanism columns: "", last, the steps, cpu, "", fp32, empty), and readers
 * fill those in.
 *
 * Before any training, csv_preflight checks the existing file's schema and that the file can
 * be replaced, so a run never computes results it cannot keep.
 *
 * Every column but the wall_* ones is a pure function of the settings: same seed and config
 * give the same bytes whatever the thread count.
 */
#define _POSIX_C_SOURCE 200809L
#include "csv.h"

#include <csv.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

const char *const lcg_csv_columns[] = {
    "run_id",      "version",    "task",       "task_params", "data",        "attn",        "alpha",
    "pos",         "layers",     "dim",        "heads",       "head_dim",    "ffn",
    "vocab",       "n_params",   "seed",       "steps",       "batch",       "lr",
    "warmup",      "weight_decay", "clip",     "train_len",   "train_vary",  "eval_len",
    "factor",      "samples",    "exact_match", "exact_lo",   "exact_hi",    "token_acc",
    "token_lo",    "token_hi",   "eval_loss",  "attn_entropy", "attn_support", "attn_max",
    "rel_mass_best_l0", "rel_mass_best_l1", "rel_mass_best_l2", "rel_mass_best_l3",
    "rel_mass_best_l4", "rel_mass_best_l5", "rel_mass_best_l6", "rel_mass_best_l7",
    "rel_mass_mean_l0", "rel_mass_mean_l1", "rel_mass_mean_l2", "rel_mass_mean_l3",
    "rel_mass_mean_l4", "rel_mass_mean_l5", "rel_mass_mean_l6", "rel_mass_mean_l7", "collapse",
    "train_loss",  "bleu",       "checkpoint", "checkpoint_step", "device",  "gpu",        "precision",
    "wall_threads", "wall_train_s",
    "wall_train_tok_s", "wall_eval_s"};
const int lcg_csv_n_columns = (int)(sizeof lcg_csv_columns / sizeof *lcg_csv_columns);

/* the older schemas lack blocks of columns, each introduced by a schema: the mechanism columns
 * (schema 4, issue 20) after attn_max; bleu, checkpoint and checkpoint_step (3, issue 21) and
 * device, gpu, precision (2, issue 18) after train_loss */
#define MECH_AT 37 /* "rel_mass_best_l0" */
#define OLD_AT (MECH_AT + LCG_CSV_MECH_COLUMNS + 1) /* "bleu" */
#define STEPS_COL 16 /* "steps" */
static const struct {
    int at, n, since;
} blocks[] = {{MECH_AT, LCG_CSV_MECH_COLUMNS, 4}, {OLD_AT, 3, 3}, {OLD_AT + 3, 3, 2}};
enum { N_BLOCKS = sizeof blocks / sizeof *blocks };

/* the block holding current column col that schema lacks, or -1 */
static int missing_block(int schema, int col) {
    for (int b = 0; b < N_BLOCKS; b++)
        if (schema < blocks[b].since && col >= blocks[b].at && col < blocks[b].at + blocks[b].n) return b;
    return -1;
}

int csv_schema_n_columns(int schema) {
    int n = lcg_csv_n_columns;
    for (int b = 0; b < N_BLOCKS; b++)
        if (schema < blocks[b].since) n -= blocks[b].n;
    return n;
}

int csv_schema_column(int schema, int i) {
    for (int c = 0; c < lcg_csv_n_columns; c++)
        if (missing_block(schema, c) < 0 && i-- == 0) return c;
    return lcg_csv_n_columns;
}

const char *csv_schema_default(int schema, int col, const char *steps) {
    static const char *const def[6] = {"", "last", NULL, "cpu", "", "fp32"};
    int b = missing_block(schema, col);
    if (b < 0) return NULL;
    if (b == 0) return ""; /* mechanism: not measured */
    return col == OLD_AT + 2 ? steps : def[col - OLD_AT];
}

int csv_schema_match(const int *match, int n_fields) {
    for (int v = LCG_CSV_SCHEMA; v >= 1; v--)
        if (match[v] && n_fields == csv_schema_n_columns(v)) return v;
    return 0;
}

const char *csv_header_name(int schema, int i) {
    if (schema < 1 || schema > LCG_CSV_SCHEMA || i < 0 || i >= csv_schema_n_columns(schema)) return NULL;
    return lcg_csv_columns[csv_schema_column(schema, i)];
}

void run_cfg_string(const lcg_run_cfg *c, char *out, size_t n) {
    char tp[256];
    lcg_task_params_str(&c->task, tp, sizeof tp);
    const lcg_config *m = &c->model;
    snprintf(out, n,
             "task=%s;%s;attn=%s;alpha=%.9g;pos=%s;layers=%d;dim=%d;heads=%d;head-dim=%d;ffn=%d;"
             "seed=%llu;steps=%ld;batch=%d;lr=%.9g;warmup=%ld;weight-decay=%.9g;clip=%.9g;"
             "len=%d;vary=%d",
             c->task.task->name, tp, lcg_normalizer_at(m->norm)->name, (double)m->alpha,
             lcg_posenc_at(m->pos)->name, m->L, m->C, m->H, m->D, m->F,
             (unsigned long long)c->seed, c->steps, c->batch, c->lr, c->warmup, c->weight_decay,
             c->clip, c->len, c->vary);
    if (c->data) { /* training data other than the generator's */
        size_t k = strlen(out);
        snprintf(out + k, n > k ? n - k : 0, ";data=%s", c->data);
    }
    if (c->freeze_token0) { /* only when on: the run ids of every earlier run stay */
        size_t k = strlen(out);
        snprintf(out + k, n > k ? n - k : 0, ";freeze-token0=1");
    }
}

void run_task_params_str(const lcg_run_cfg *c, char *out, size_t n) {
    lcg_task_params_str(&c->task, out, n);
    if (c->freeze_token0) {
        size_t k = strlen(out);
        snprintf(out + k, n > k ? n - k : 0, "%sfreeze-token0=1", k ? ";" : "");
    }
}

/* a path as one shell word */
static void shell_word(const char *s, char *out, size_t n) {
    if (!strpbrk(s, " \t\n'\"\\$`*?[]{}()<>|&;#~!")) {
        snprintf(out, n, "%s", s);
        return;
    }
    size_t k = 0;
    if (k < n) out[k++] = '\'';
    for (; *s && k + 5 < n; s++)
        if (*s == '\'') k += (size_t)snprintf(out + k, n - k, "'\\''");
        else out[k++] = *s;
    if (k + 1 < n) out[k++] = '\'';
    out[k < n ? k : n - 1] = '\0';
}

void run_resume_command(const lcg_run_cfg *c, const char *ckpt, char *out, size_t n) {
    char w_ck[1100], w_out[1100];
    shell_word(ckpt, w_ck, sizeof w_ck);
    shell_word(c->out, w_out, sizeof w_out);
    size_t k = (size_t)snprintf(out, n, "lcgbench run --resume %s --out %s --eval-samples %d --eval-tokens %ld --eval-min %d",
                                w_ck, w_out, c->eval_samples, c->eval_tokens, c->eval_min);
    if (c->n_rungs) {
        k += (size_t)snprintf(out + (k < n ? k : n), k < n ? n - k : 0, " --eval-lens ");
        for (int i = 0; i < c->n_rungs; i++)
            k += (size_t)snprintf(out + (k < n ? k : n), k < n ? n - k : 0, "%s%d", i ? "," : "", c->rungs[i]);
    } else {
        k += (size_t)snprintf(out + (k < n ? k : n), k < n ? n - k : 0, " --max-len %d", c->max_len);
    }
    if (c->backend && strcmp(c->backend, "cpu") != 0) /* the device is no part of the checkpoint */
        k += (size_t)snprintf(out + (k < n ? k : n), k < n ? n - k : 0, " --device %s", c->backend);
    if (c->precision != LCG_PREC_FP32)
        k += (size_t)snprintf(out + (k < n ? k : n), k < n ? n - k : 0, " --precision %s", lcg_precision_names[c->precision]);
    if (c->bleu) k += (size_t)snprintf(out + (k < n ? k : n), k < n ? n - k : 0, " --bleu");
    if (c->bleu_max) k += (size_t)snprintf(out + (k < n ? k : n), k < n ? n - k : 0, " --bleu-max %d", c->bleu_max);
    if (c->last_max) k += (size_t)snprintf(out + (k < n ? k : n), k < n ? n - k : 0, " --last-max %d", c->last_max);
    if (c->val_every) {
        k += (size_t)snprintf(out + (k < n ? k : n), k < n ? n - k : 0, " --val-every %ld --val-samples %d --monitor %s@%d --select %s --val-lens ",
                              c->val_every, c->val_samples, lcg_monitor_names[c->mon_metric], c->mon_len,
                              c->select_best ? "best" : "last");
        for (int i = 0; i < c->n_val_lens; i++)
            k += (size_t)snprintf(out + (k < n ? k : n), k < n ? n - k : 0, "%s%d", i ? "," : "", c->val_lens[i]);
    }
    if (c->log_csv) {
        char w[1100];
        shell_word(c->log_csv, w, sizeof w);
        snprintf(out + (k < n ? k : n), k < n ? n - k : 0, " --log-csv %s", w);
    }
}

/* the run id: the settings, and the device and precision when they are not the CPU's fp32 (so
 * CPU run ids are those of every earlier version, and a GPU row is never a CPU row's cell) */
uint64_t run_cfg_id(const lcg_run_cfg *c) {
    char s[1100];
    run_cfg_string(c, s, 1024);
    const char *dev = c->backend ? c->backend : "cpu";
    if (strcmp(dev, "cpu") != 0 || c->precision != LCG_PREC_FP32) {
        size_t k = strlen(s);
        snprintf(s + k, sizeof s - k, ";device=%s;precision=%s", dev, lcg_precision_names[c->precision]);
    }
    return lcg_fnv1a(LCG_FNV_INIT, s, strlen(s));
}

/* ---- header check ------------------------------------------------------------------------ */
/* the header is compared with every schema (1 .. LCG_CSV_SCHEMA); the rows must have the
 * header's field count */
typedef struct {
    int col, rows, bad, match[LCG_CSV_SCHEMA + 1], schema;
    char what[256];
} header_check;

static void on_field(void *s, size_t n, void *data) {
    header_check *h = data;
    if (h->bad) return;
    if (h->rows > 0) {
        h->col++;
        return;
    }
    for (int v = 1; v <= LCG_CSV_SCHEMA; v++) {
        const char *want = csv_header_name(v, h->col);
        if (!want || strlen(want) != n || memcmp(s, want, n) != 0) h->match[v] = 0;
    }
    const char *want = h->col < lcg_csv_n_columns ? lcg_csv_columns[h->col] : "";
    if (!h->what[0] && (h->col >= lcg_csv_n_columns || strlen(want) != n || memcmp(s, want, n) != 0))
        snprintf(h->what, sizeof h->what, "column %d is '%.*s', expected '%s'", h->col + 1,
                 (int)(n > 40 ? 40 : n), (const char *)s, want[0] ? want : "(none)");
    h->col++;
}

static void on_row(int c, void *data) {
    (void)c;
    header_check *h = data;
    if (h->bad) return;
    if (h->rows == 0) {
        h->schema = csv_schema_match(h->match, h->col);
        if (!h->schema) {
            h->bad = 1;
            if (!h->what[0])
                snprintf(h->what, sizeof h->what, "header has %d columns, expected %d", h->col, lcg_csv_n_columns);
        }
    } else {
        int want = csv_schema_n_columns(h->schema);
        if (h->col != want) {
            h->bad = 1;
            snprintf(h->what, sizeof h->what, "row %d has %d fields, expected %d", h->rows + 1, h->col, want);
        }
    }
    h->col = 0;
    h->rows++;
}

/* 0 (with the schema, 1 .. LCG_CSV_SCHEMA, in *schema), or -1 with err */
static int check_existing(const char *path, const char *data, size_t n, int *schema, char *err, size_t err_len) {
    if (n >= 3 && memcmp(data, "\xEF\xBB\xBF", 3) == 0) data += 3, n -= 3; /* a UTF-8 BOM (spreadsheets) */
    struct csv_parser p;
    header_check h = {.match = {0}};
    for (int v = 1; v <= LCG_CSV_SCHEMA; v++) h.match[v] = 1;
    if (csv_init(&p, CSV_STRICT | CSV_STRICT_FINI) != 0) lcg_die("csv_init failed");
    size_t used = csv_parse(&p, data, n, on_field, on_row, &h);
    int perr = used != n ? csv_error(&p) : 0;
    if (!perr && csv_fini(&p, on_field, on_row, &h) != 0) perr = csv_error(&p);
    csv_free(&p);
    if (perr) {
        snprintf(err, err_len, "'%s' is not valid CSV: %s", path, csv_strerror(perr));
        return -1;
    }
    if (h.bad) {
        snprintf(err, err_len, "'%s' %s (%s); write to a new file", path,
                 strncmp(h.what, "row", 3) == 0 ? "has a malformed row" : "has a different schema", h.what);
        return -1;
    }
    if (n && data[n - 1] != '\n') {
        snprintf(err, err_len, "'%s' does not end with a newline (a partial row?)", path);
        return -1;
    }
    *schema = h.schema;
    return 0;
}

/* ---- writing ----------------------------------------------------------------------------- */
static void put_field(FILE *f, const char *s, int last) {
    if (strpbrk(s, ",\"\r\n")) csv_fwrite(f, s, strlen(s));
    else fputs(s, f);
    fputc(last ? '\n' : ',', f);
}

static void put_row(FILE *f, char fields[][256], int n) {
    for (int i = 0; i < n; i++) put_field(f, fields[i], i == n - 1);
}

void csv_write_record(FILE *f, const char *const *fields, int n) {
    for (int i = 0; i < n; i++) put_field(f, fields[i], i == n - 1);
}

/* per-layer values as "v0;v1;..." */
static void join_layers(char *out, const double *v, int L) {
    size_t off = 0;
    out[0] = '\0';
    for (int l = 0; l < L && off < 240; l++) off += (size_t)snprintf(out + off, 256 - off, "%s%.4f", l ? ";" : "", v[l]);
}

void csv_mkdirs_for(const char *path) {
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", path);
    for (char *p = dir + 1; *p; p++) {
        if (*p != '/') continue;
        *p = '\0';
        mkdir(dir, 0777); /* errors surface when the file is written */
        *p = '/';
    }
}

/* ---- an older schema -> the current: the rows as they were, the missing columns inserted ---- */
typedef struct {
    FILE *f;
    int col, header, schema;
    char steps[64]; /* this row's steps (before OLD_AT): the default checkpoint_step */
} upgrader;

static void up_field(void *s, size_t n, void *data) {
    upgrader *u = data;
    int cur = csv_schema_column(u->schema, u->col), prev = u->col ? csv_schema_column(u->schema, u->col - 1) : -1;
    for (int c = prev + 1; c < cur; c++) /* the columns the schema lacks before this one */
        put_field(u->f, u->header ? lcg_csv_columns[c] : csv_schema_default(u->schema, c, u->steps), 0);
    char *v = malloc(n + 1);
    if (!v) lcg_die("out of memory");
    memcpy(v, s, n);
    v[n] = '\0';
    if (u->col == STEPS_COL) snprintf(u->steps, sizeof u->steps, "%s", v); /* "steps" */
    put_field(u->f, v, u->col == csv_schema_n_columns(u->schema) - 1);
    free(v);
    u->col++;
}

static void up_row(int c, void *data) {
    (void)c;
    upgrader *u = data;
    u->col = 0;
    u->header = 0;
}

int csv_upgrade(const char *data, size_t n, char **out, size_t *n_out) {
    int schema = 0;
    char err[64];
    if (!n || check_existing("", data, n, &schema, err, sizeof err) != 0 || schema == LCG_CSV_SCHEMA) return 0;
    if (n >= 3 && memcmp(data, "\xEF\xBB\xBF", 3) == 0) data += 3, n -= 3;
    upgrader u = {.header = 1, .schema = schema};
    u.f = open_memstream(out, n_out);
    if (!u.f) lcg_die("open_memstream failed");
    struct csv_parser p;
    if (csv_init(&p, CSV_STRICT | CSV_STRICT_FINI) != 0) lcg_die("csv_init failed");
    csv_parse(&p, data, n, up_field, up_row, &u);
    csv_fini(&p, up_field, up_row, &u);
    csv_free(&p);
    if (fclose(u.f) != 0) lcg_die("building CSV in memory failed");
    return 1;
}

typedef struct {
    const lcg_run_cfg *cfg;
    const lcg_train_result *tr;
    const lcg_rung_result *rungs;
    int n_rungs;
    const lcg_rung_result *best; /* NULL, or the best checkpoint's n_best rows after the last's */
    int n_best;
    long best_step;
} append_ctx;

/* the file as it is now (under its lock) plus this run's rows */
static int append_rows(void *ctx, const char *old, size_t n_old, char **out, size_t *n_out, char *err,
                       size_t err_len) {
    const append_ctx *a = ctx;
    const lcg_run_cfg *cfg = a->cfg;
    const lcg_train_result *tr = a->tr;
    const lcg_rung_result *rungs = a->rungs;
    int n_rungs = a->n_rungs;
    int schema = LCG_CSV_SCHEMA;
    if (n_old && check_existing(cfg->out, old, n_old, &schema, err, err_len) != 0) return -1;
    char *buf = NULL, *up = NULL;
    size_t n_buf = 0, n_up = 0;
    if (schema < LCG_CSV_SCHEMA && csv_upgrade(old, n_old, &up, &n_up)) old = up, n_old = n_up; /* in place, under the lock */
    FILE *f = open_memstream(&buf, &n_buf);
    if (!f) lcg_die("open_memstream failed");
    if (n_old) fwrite(old, 1, n_old, f);
    else
        for (int i = 0; i < lcg_csv_n_columns; i++) put_field(f, lcg_csv_columns[i], i == lcg_csv_n_columns - 1);
    free(up);

    const lcg_config *m = &cfg->model;
    char tp[256], fields[96][256];
    run_task_params_str(cfg, tp, sizeof tp);
    size_t sizes[LCG_N_PARAM_TENSORS];
    size_t n_params = lcg_param_sizes(m, sizes);
    for (int r = 0; r < n_rungs + (a->best ? a->n_best : 0); r++) {
        int is_best = r >= n_rungs;
        const lcg_rung_result *g = is_best ? &a->best[r - n_rungs] : &rungs[r];
        double elo, ehi, tlo, thi;
        wilson95(g->exact, g->samples, &elo, &ehi);
        wilson95(g->tokens_ok, g->tokens, &tlo, &thi);
        int k = 0;
#define F(...) snprintf(fields[k++], 256, __VA_ARGS__)
        F("%016llx", (unsigned long long)run_cfg_id(cfg));
        F("%s", LCG_VERSION);
        F("%s", cfg->task.task->name);
        F("%s", tp);
        F("%s", cfg->data ? cfg->data : "");
        F("%s", lcg_normalizer_at(m->norm)->name);
        F("%.9g", (double)m->alpha);
        F("%s", lcg_posenc_at(m->pos)->name);
        F("%d", m->L);
        F("%d", m->C);
        F("%d", m->H);
        F("%d", m->D);
        F("%d", m->F);
        F("%d", m->V);
        F("%zu", n_params);
        F("%llu", (unsigned long long)cfg->seed);
        F("%ld", tr->steps_done);
        F("%d", cfg->batch);
        F("%.9g", cfg->lr);
        F("%ld", cfg->warmup);
        F("%.9g", cfg->weight_decay);
        F("%.9g", cfg->clip);
        if (cfg->data_max) { /* --data: the lengths the files hold, not the flags' */
            int mid = (cfg->data_min + cfg->data_max) / 2;
            F("%d", mid);
            F("%d", cfg->data_max - mid);
        } else {
            F("%d", cfg->len);
            F("%d", cfg->vary);
        }
        F("%d", g->len);
        F("%.9g", g->factor);
        F("%d", g->samples);
        F("%.6f", (double)g->exact / g->samples);
        F("%.6f", elo);
        F("%.6f", ehi);
        F("%.6f", (double)g->tokens_ok / (g->tokens ? g->tokens : 1));
        F("%.6f", tlo);
        F("%.6f", thi);
        F("%.6g", g->loss);
        join_layers(fields[k++], g->attn_entropy, m->L);
        join_layers(fields[k++], g->attn_support, m->L);
        join_layers(fields[k++], g->attn_max, m->L);
        for (int w = 0; w < 2; w++) /* relevant-key mass, best head then mean, one column per layer */
            for (int l = 0; l < LCG_CSV_MECH_LAYERS; l++)
                if (g->mass_rows > 0 && l < m->L) F("%.6f", w ? g->mass_mean[l] : g->mass_best[l]);
                else F("%s", "");
        if (g->collapse_n >= 2) F("%.6f", g->collapse);
        else F("%s", "");
        if (isnan(tr->train_loss)) F("%s", "");
        else F("%.6g", tr->train_loss);
        if (g->has_bleu) F("%.6f", g->bleu);
        else F("%s", "");
        F("%s", is_best ? "best" : "last");
        F("%ld", is_best ? a->best_step : tr->steps_done);
        F("%s", cfg->backend ? cfg->backend : "cpu");
        F("%s", cfg->gpu);
        F("%s", lcg_precision_names[cfg->precision]);
        F("%d", cfg->threads);
        F("%.3f", tr->train_seconds);
        F("%.0f", tr->train_tok_s);
        F("%.3f", g->seconds);
#undef F
        if (k != lcg_csv_n_columns) lcg_die("CSV row has %d fields, header %d", k, lcg_csv_n_columns);
        put_row(f, fields, k);
    }
    if (fclose(f) != 0) lcg_die("building CSV in memory failed");
    *out = buf;
    *n_out = n_buf;
    return 0;
}

int csv_append(const lcg_run_cfg *cfg, const lcg_train_result *tr, const lcg_rung_result *rungs,
               int n_rungs, char *err, size_t err_len) {
    return csv_append_best(cfg, tr, rungs, n_rungs, NULL, 0, 0, err, err_len);
}

int csv_append_best(const lcg_run_cfg *cfg, const lcg_train_result *tr, const lcg_rung_result *rungs, int n_rungs,
                    const lcg_rung_result *best, int n_best, long best_step, char *err, size_t err_len) {
    append_ctx a = {cfg, tr, rungs, n_rungs, best, n_best, best_step};
    csv_mkdirs_for(cfg->out);
    return lcg_update_file(cfg->out, append_rows, &a, err, err_len);
}

/* ---- the long-format per-layer file --------------------------------------------------------- */
static const char *const layer_columns[] = {"run_id",   "task",     "attn",  "pos",          "seed",
                                            "device",   "precision", "checkpoint", "eval_len", "layer",
                                            "attn_entropy", "attn_support", "attn_max", "rel_mass_best",
                                            "rel_mass_head", "rel_mass_mean"};
/* the per-layer header before the relevant-key mass columns: such a file is named in the error */
static const char layers_header_old[] =
    "run_id,task,attn,pos,seed,device,precision,checkpoint,eval_len,layer,attn_entropy,attn_support,attn_max\n";
enum { N_LAYER_COLUMNS = sizeof layer_columns / sizeof *layer_columns };

typedef struct {
    const lcg_run_cfg *cfg;
    const lcg_rung_result *rungs;
    int n_rungs;
    const char *checkpoint; /* last or best */
} layers_ctx;

/* the header line of the layers file, '\n'-ended, into out */
static void layers_header(char *out, size_t n) {
    size_t k = 0;
    for (int i = 0; i < N_LAYER_COLUMNS; i++)
        k += (size_t)snprintf(out + k, n - k, "%s%c", layer_columns[i], i == N_LAYER_COLUMNS - 1 ? '\n' : ',');
}

static int append_layers(void *ctx, const char *old, size_t n_old, char **out, size_t *n_out, char *err,
                         size_t err_len) {
    const layers_ctx *a = ctx;
    const lcg_run_cfg *cfg = a->cfg;
    char header[512];
    layers_header(header, sizeof header);
    size_t hl = strlen(header);
    size_t ol = sizeof layers_header_old - 1;
    if (n_old >= ol && memcmp(old, layers_header_old, ol) == 0) {
        snprintf(err, err_len, "'%s' has the per-layer columns of an earlier lcgbench (without rel_mass_best, "
                 "rel_mass_head, rel_mass_mean); write to a new file", cfg->layers_out);
        return -1;
    }
    if (n_old && (n_old < hl || memcmp(old, header, hl) != 0 || old[n_old - 1] != '\n')) {
        snprintf(err, err_len, "'%s' is not a lcgbench per-layer file (its first line is not '%.*s'); write to a new file",
                 cfg->layers_out, (int)hl - 1, header);
        return -1;
    }
    FILE *f = open_memstream(out, n_out);
    if (!f) lcg_die("open_memstream failed");
    if (n_old) fwrite(old, 1, n_old, f);
    else fputs(header, f);
    const lcg_config *m = &cfg->model;
    for (int r = 0; r < a->n_rungs; r++)
        for (int l = 0; l < m->L; l++) {
            const lcg_rung_result *g = &a->rungs[r];
            fprintf(f, "%016llx,%s,%s,%s,%llu,%s,%s,%s,%d,%d,%.4f,%.4f,%.4f", (unsigned long long)run_cfg_id(cfg),
                    cfg->task.task->name, lcg_normalizer_at(m->norm)->name, lcg_posenc_at(m->pos)->name,
                    (unsigned long long)cfg->seed, cfg->backend ? cfg->backend : "cpu",
                    lcg_precision_names[cfg->precision], a->checkpoint, g->len, l, g->attn_entropy[l], g->attn_support[l],
                    g->attn_max[l]);
            /* the relevant-key mass of every layer (the main CSV stops at layer 7); empty where
             * the task declares no answer positions */
            if (g->mass_rows > 0) fprintf(f, ",%.6f,%d,%.6f\n", g->mass_best[l], g->mass_head[l], g->mass_mean[l]);
            else fputs(",,,\n", f);
        }
    if (fclose(f) != 0) lcg_die("building CSV in memory failed");
    return 0;
}

int csv_append_layers(const lcg_run_cfg *cfg, const lcg_rung_result *rungs, int n_rungs, const char *checkpoint, char *err,
                      size_t err_len) {
    layers_ctx a = {cfg, rungs, n_rungs, checkpoint};
    csv_mkdirs_for(cfg->layers_out);
    return lcg_update_file(cfg->layers_out, append_layers, &a, err, err_len);
}

int csv_preflight(const lcg_run_cfg *cfg, char *err, size_t err_len) {
    size_t n_old = 0;
    csv_mkdirs_for(cfg->out);
    lcg_remove_stale_temps(cfg->out);
    if (lcg_check_writable(cfg->out, err, err_len) != 0) return -1;
    char *old = lcg_read_file(cfg->out, &n_old);
    if (!old && errno != ENOENT) {
        snprintf(err, err_len, "cannot read '%s': %s", cfg->out, strerror(errno));
        return -1;
    }
    int schema;
    int rc = old && n_old ? check_existing(cfg->out, old, n_old, &schema, err, err_len) : 0;
    free(old);
    if (rc == 0 && cfg->layers_out) {
        if (lcg_same_file(cfg->layers_out, cfg->out)) {
            snprintf(err, err_len, "--layers-out and --out name the same file '%s'", cfg->out);
            return -1;
        }
        csv_mkdirs_for(cfg->layers_out);
        if (lcg_check_writable(cfg->layers_out, err, err_len) != 0) return -1;
        char *lo = lcg_read_file(cfg->layers_out, &n_old), *o = NULL;
        size_t n_o = 0;
        if (!lo && errno != ENOENT) {
            snprintf(err, err_len, "cannot read '%s': %s", cfg->layers_out, strerror(errno));
            return -1;
        }
        layers_ctx a = {cfg, NULL, 0, "last"}; /* the header check alone */
        rc = lo && n_old ? append_layers(&a, lo, n_old, &o, &n_o, err, err_len) : 0;
        free(lo), free(o);
    }
    return rc;
}
