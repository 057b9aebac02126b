/*
 * table.c: `lcgbench table`, result CSVs -> the paper's Table 1 layout: one row per (task,
 * method), one column per length factor (ID, 2x, 4x, ...), each cell the mean +- standard
 * deviation over seeds of exact match (or token accuracy), as Markdown, CSV or LaTeX; and
 * `--format dat`, one gnuplot data file per task (accuracy, attention diagnostics and the
 * mechanism columns vs length, a block per method) for the scripts in plots/.
 *
 * A method is every setting but the seed: rows that differ in anything else (steps, width,
 * ...) are different methods, labelled by what tells them apart: the task parameters another
 * method lacks, and the first other setting in which two differ. Rows come in the order the
 * CSV first mentions each task and method, which is the sweep's grid order.
 * It computes nothing new: every number is a mean over rows already in the CSV.
 *
 * `--against FILE` sets a reference's numbers beside them (Markdown): FILE lists task, attn,
 * pos, length factor and exact match in % per line (results/paper/reference.csv: the paper's
 * Table 1); a cell further than --tolerance points from its reference is bold, and a summary
 * counts, per method and once per reference cell (by the matching method trained longest; in
 * all and per task), those within it.
 */
#define _POSIX_C_SOURCE 200809L
#include "cli.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define TB_MAX_FACTORS 32
#define TB_MAX_SEEDS 64
#define TB_MAX_TASKS 64

/* the settings that make a method (everything that determines a run but the seed) */
static const char *const method_keys[] = {"task", "task_params", "data", "attn", "alpha", "pos", "layers",
                                          "dim", "heads", "head_dim", "ffn", "vocab", "steps", "batch",
                                          "lr", "warmup", "weight_decay", "clip", "train_len", "train_vary"};
#define N_KEYS ((int)(sizeof method_keys / sizeof *method_keys))

typedef struct {
    char *key[N_KEYS];
    char label[256];
    int n_seeds;
    char *seeds[TB_MAX_SEEDS];
    /* [factor][seed]: metric and the layer-mean diagnostics; NAN = missing */
    double v[TB_MAX_FACTORS][TB_MAX_SEEDS], ent[TB_MAX_FACTORS][TB_MAX_SEEDS];
    double sup[TB_MAX_FACTORS][TB_MAX_SEEDS], mx[TB_MAX_FACTORS][TB_MAX_SEEDS];
    /* relevant-key mass (the best head of the best layer; the heads' mean, averaged over
     * layers) and collapse; NAN = not measured (older CSVs, tasks without answer positions) */
    double mass[TB_MAX_FACTORS][TB_MAX_SEEDS], mmean[TB_MAX_FACTORS][TB_MAX_SEEDS], coll[TB_MAX_FACTORS][TB_MAX_SEEDS];
    int lens[TB_MAX_FACTORS]; /* eval length at each factor (that of the first row) */
} tb_method;

static double layer_mean(const char *s) {
    double sum = 0;
    int n = 0;
    for (const char *p = s; p && *p;) {
        char *end;
        double v = strtod(p, &end);
        if (end == p) break;
        sum += v, n++;
        p = *end == ';' ? end + 1 : NULL;
    }
    return n ? sum / n : NAN;
}

/* a number cell, NAN if empty or not a number */
static double cell_num(const char *s) {
    char *end;
    double v = s && *s ? strtod(s, &end) : NAN;
    return s && *s && !*end ? v : NAN;
}

/* over the layers' columns rel_mass_<which>_l0..: the maximum (max) or the mean; NAN if none */
static double mass_over_layers(char **row, const char *which, int max) {
    double acc = NAN;
    int n = 0;
    for (int l = 0; l < LCG_CSV_MECH_LAYERS; l++) {
        char name[64];
        snprintf(name, sizeof name, "rel_mass_%s_l%d", which, l);
        double v = cell_num(row[csv_col(name)]);
        if (isnan(v)) continue;
        acc = isnan(acc) ? v : max ? fmax(acc, v) : acc + v;
        n++;
    }
    return max || !n ? acc : acc / n;
}

static void stats(const double *v, int n, double *mean, double *sd, int *count) {
    double s = 0, s2 = 0;
    int k = 0;
    for (int i = 0; i < n; i++)
        if (!isnan(v[i])) s += v[i], k++;
    *count = k;
    *mean = k ? s / k : NAN;
    for (int i = 0; i < n; i++)
        if (!isnan(v[i])) s2 += (v[i] - *mean) * (v[i] - *mean);
    *sd = k > 1 ? sqrt(s2 / (k - 1)) : 0;
}

/* whether item ("key=value") is one of list's ';'-separated items */
static int param_listed(const char *list, const char *item) {
    size_t n = strlen(item);
    for (const char *p = list; p && *p; p = strchr(p, ';') ? strchr(p, ';') + 1 : NULL)
        if (strncmp(p, item, n) == 0 && (p[n] == ';' || p[n] == '\0')) return 1;
    return 0;
}

static const char *factor_label(double f, char *buf, size_t n, const char *times) {
    if (f == 1) snprintf(buf, n, "ID");
    else snprintf(buf, n, "%g%s", f, times);
    return buf;
}

/* --against: one reference number (exact match, %) for a task, normalizer, encoding and factor */
typedef struct {
    char task[32], attn[32], pos[16];
    double factor, val;
} tb_ref;

/* FILE: lines "task,attn,pos,factor,value" (a header line starting "task," and '#' comments
 * skipped); 0, or -1 with one line in err naming the file and line */
static int ref_load(const char *path, tb_ref **out, int *n_out, char *err, size_t err_len) {
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(err, err_len, "cannot open '%s': %s", path, strerror(errno));
        return -1;
    }
    tb_ref *r = NULL;
    int n = 0, cap = 0, lineno = 0, rc = 0;
    char *line = NULL;
    size_t line_cap = 0;
    while (rc == 0 && getline(&line, &line_cap, f) >= 0) {
        lineno++;
        line[strcspn(line, "\r\n")] = '\0';
        if (!*line || *line == '#' || strncmp(line, "task,", 5) == 0) continue;
        if (n == cap) {
            cap = cap ? 2 * cap : 64;
            r = realloc(r, sizeof *r * (size_t)cap);
            if (!r) lcg_die("out of memory");
        }
        tb_ref *x = &r[n];
        char fac[32], val[32], extra;
        int k = sscanf(line, "%31[^,],%31[^,],%15[^,],%31[^,],%31[^,]%c", x->task, x->attn, x->pos, fac, val, &extra);
        char *e1, *e2;
        x->factor = strtod(fac, &e1);
        x->val = strtod(val, &e2);
        if (k != 5 || *e1 || *e2 || !(x->factor > 0) || !(x->val >= 0 && x->val <= 100)) {
            snprintf(err, err_len, "%s:%d: not 'task,attn,pos,factor,exact%%' with a factor > 0 and 0 <= exact <= 100",
                     path, lineno);
            rc = -1;
        }
        n++;
    }
    free(line);
    fclose(f);
    if (rc == 0 && n == 0) snprintf(err, err_len, "%s: no reference numbers", path), rc = -1;
    if (rc != 0) {
        free(r);
        return -1;
    }
    *out = r, *n_out = n;
    return 0;
}

/* whether a reference number is about this method: its task, normalizer and encoding */
static int ref_of(const tb_ref *r, const tb_method *M) {
    return strcmp(r->task, M->key[0]) == 0 && strcmp(r->attn, M->key[3]) == 0 && strcmp(r->pos, M->key[5]) == 0;
}

static const tb_ref *ref_find(const tb_ref *r, int n, const tb_method *M, double factor) {
    for (int i = 0; i < n; i++)
        if (ref_of(&r[i], M) && fabs(r[i].factor - factor) < 1e-9) return &r[i];
    return NULL;
}

static void table_help(void) {
    printf("usage: lcgbench table [flags] FILE.csv...\n\n"
           "Summarize result CSVs in the paper's Table 1 layout: rows task x method, columns ID, 2x,\n"
           "4x, ...; each cell the mean +- std over seeds.\n\n"
           "flags:\n"
           "  --format md|csv|latex|dat  output format (md); dat writes <dir>/<task>.dat for plots/\n"
           "  --metric exact|token       whole-sequence exact match (the paper's) or token accuracy (exact)\n"
           "  --checkpoint best|last     for runs validated with --select best: the best checkpoint's\n"
           "                             rows (best, the reference's selection) or the last one's\n"
           "  --against FILE             the reference's numbers beside ours (md): FILE's lines are\n"
           "                             task,attn,pos,factor,exact%% (results/paper/reference.csv);\n"
           "                             misses in bold, and a count of the cells within --tolerance\n"
           "  --tolerance T              points from the reference that count as agreeing (5)\n"
           "  --out PATH                 file to write (stdout); for dat, the directory (required)\n"
           "  --help                     show this help\n");
}

static void write_out(const char *path, const char *buf, size_t n) {
    char err[768];
    if (!path || lcg_is_stdout(path)) {
        if (fwrite(buf, 1, n, stdout) != n || fflush(stdout) != 0) {
            fprintf(stderr, "lcgbench table: cannot write to standard output\n");
            exit(1);
        }
        return;
    }
    if (lcg_write_file_atomic(path, buf, n, err, sizeof err) != 0) {
        fprintf(stderr, "lcgbench table: %s\n", err);
        exit(1);
    }
}

/* the --against summary: per method, its cells within tol of a reference number and its misses;
 * then each reference cell once, by the method nearest the reference's protocol: of those that
 * match its task, normalizer and encoding, the one trained for the most steps (the reference's
 * schedule is the longest), the first in the CSVs' order (a sweep's grid order) among equals */
static void table_against(FILE *o, const tb_method *meth, int n_meth, const double *factors, int n_factors,
                          const int *order, const tb_ref *refs, int n_refs, double tol, const char *path) {
    char lab[32];
    fprintf(o, "\nWithin ±%g points of %s, per method (misses: ours [reference]):\n\n", tol, path);
    for (int m = 0; m < n_meth; m++) {
        const tb_method *M = &meth[m];
        int n = 0, hit = 0;
        char miss[1024] = "";
        size_t l = 0;
        for (int i = 0; i < n_factors; i++) {
            const tb_ref *ref = ref_find(refs, n_refs, M, factors[order[i]]);
            double mean, sd;
            int k;
            stats(M->v[order[i]], M->n_seeds, &mean, &sd, &k);
            if (!ref || !k) continue;
            n++;
            if (fabs(mean - ref->val) <= tol) hit++;
            else if (l < sizeof miss)
                l += (size_t)snprintf(miss + l, sizeof miss - l, "%s%s %.1f [%g]", l ? ", " : "",
                                      factor_label(factors[order[i]], lab, sizeof lab, "×"), mean, ref->val);
        }
        if (n) fprintf(o, "- %s %s: %d of %d%s%s\n", M->key[0], M->label, hit, n, *miss ? "; " : "", miss);
    }
    int n = 0, hit = 0, missing = 0;
    /* the same per task, tasks in the reference's order */
    const char *task[TB_MAX_TASKS];
    int t_n[TB_MAX_TASKS] = {0}, t_hit[TB_MAX_TASKS] = {0}, n_task = 0;
    int k_steps = 0;
    while (strcmp(method_keys[k_steps], "steps") != 0) k_steps++;
    for (int r = 0; r < n_refs; r++) {
        const tb_method *M = NULL;
        for (int m = 0; m < n_meth; m++)
            if (ref_of(&refs[r], &meth[m]) && (!M || atof(meth[m].key[k_steps]) > atof(M->key[k_steps]))) M = &meth[m];
        int f = 0;
        while (M && f < n_factors && fabs(factors[f] - refs[r].factor) > 1e-9) f++;
        double mean = NAN, sd;
        int k = 0;
        if (M && f < n_factors) stats(M->v[f], M->n_seeds, &mean, &sd, &k);
        if (!k) {
            missing++;
            continue;
        }
        int ok = fabs(mean - refs[r].val) <= tol, t = 0;
        n++, hit += ok;
        while (t < n_task && strcmp(task[t], refs[r].task) != 0) t++;
        if (t == n_task && n_task < TB_MAX_TASKS) task[n_task++] = refs[r].task;
        if (t < n_task) t_n[t]++, t_hit[t] += ok;
    }
    fprintf(o, "\nEach reference cell once (of the methods that match it, the one trained longest): %d of %d within ±%g points (%.0f%%)", hit,
            n, tol, n ? 100.0 * hit / n : 0.0);
    for (int t = 0; t < n_task; t++) fprintf(o, "%s %s %d of %d", t ? "," : ":", task[t], t_hit[t], t_n[t]);
    if (missing) fprintf(o, "; %d of the reference's %d cells not measured", missing, n_refs);
    fprintf(o, ".\n");
}

int cmd_table(cli_ctx *cx, int argc, char **argv) {
    const char *format = "md", *metric = "exact", *out = NULL, *checkpoint = "best", *against = NULL, *tol_s = "5";
    const char **files = LCG_NEW(const char *, argc + 1);
    int n_files = 0;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        const char **slot = strcmp(a, "--format") == 0 ? &format : strcmp(a, "--metric") == 0 ? &metric
                          : strcmp(a, "--out") == 0 ? &out : strcmp(a, "--checkpoint") == 0 ? &checkpoint
                          : strcmp(a, "--against") == 0 ? &against : strcmp(a, "--tolerance") == 0 ? &tol_s : NULL;
        if (strcmp(a, "--help") == 0) {
            table_help();
            lcg_free(files);
            return 0;
        }
        if (slot) {
            if (i + 1 >= argc) cli_usage_error(cx, "%s needs a value", a);
            *slot = argv[++i];
        } else if (strncmp(a, "--", 2) == 0) {
            cli_usage_error(cx, "unknown flag '%s'", a);
        } else {
            files[n_files++] = a;
        }
    }
    int fmt = strcmp(format, "md") == 0 ? 0 : strcmp(format, "csv") == 0 ? 1 : strcmp(format, "latex") == 0 ? 2
            : strcmp(format, "dat") == 0 ? 3 : -1;
    if (fmt < 0) cli_usage_error(cx, "--format must be md, csv, latex or dat, got '%s'", format);
    if (strcmp(metric, "exact") != 0 && strcmp(metric, "token") != 0)
        cli_usage_error(cx, "--metric must be exact or token, got '%s'", metric);
    if (strcmp(checkpoint, "best") != 0 && strcmp(checkpoint, "last") != 0)
        cli_usage_error(cx, "--checkpoint must be best or last, got '%s'", checkpoint);
    int want_last = strcmp(checkpoint, "last") == 0;
    if (!n_files) cli_usage_error(cx, "no result CSV given");
    if (fmt == 3 && !out) cli_usage_error(cx, "--format dat needs --out DIR");
    char *tol_end;
    double tol = strtod(tol_s, &tol_end);
    if (*tol_end || !(tol >= 0 && tol <= 100)) cli_usage_error(cx, "--tolerance must be a number of points in [0, 100], got '%s'", tol_s);
    if (against && fmt != 0) cli_usage_error(cx, "--against writes Markdown only (--format md)");
    tb_ref *refs = NULL;
    int n_refs = 0;
    if (against) {
        char err[768];
        if (ref_load(against, &refs, &n_refs, err, sizeof err) != 0) {
            fprintf(stderr, "lcgbench table: %s\n", err);
            return 1;
        }
    }

    int c_key[N_KEYS];
    for (int k = 0; k < N_KEYS; k++) c_key[k] = csv_col(method_keys[k]);
    int c_seed = csv_col("seed"), c_factor = csv_col("factor"), c_len = csv_col("eval_len");
    int c_val = csv_col(strcmp(metric, "exact") == 0 ? "exact_match" : "token_acc");
    int c_ent = csv_col("attn_entropy"), c_sup = csv_col("attn_support"), c_max = csv_col("attn_max");

    tb_method *meth = NULL;
    int n_meth = 0, cap = 0, n_factors = 0;
    double factors[TB_MAX_FACTORS];
    lcg_csv *tables = LCG_NEW(lcg_csv, n_files);
    for (int fi = 0; fi < n_files; fi++) {
        char err[768];
        if (csv_load(files[fi], &tables[fi], err, sizeof err) != 0) {
            fprintf(stderr, "lcgbench table: %s\n", err);
            return 1;
        }
        lcg_csv *t = &tables[fi];
        int c_id = csv_col("run_id"), c_ck = csv_col("checkpoint");
        for (long r = 0; r < t->n_rows; r++) {
            char **row = t->rows[r];
            double val, fac, len;
            /* a run validated with --select best: its best checkpoint's rows stand for it, or with
               --checkpoint last its last checkpoint's (the rows without checkpoint = best) */
            if (want_last && strcmp(row[c_ck], "best") == 0) continue;
            int superseded = 0;
            for (long q = 0; q < t->n_rows && !want_last && !superseded && strcmp(row[c_ck], "best") != 0; q++)
                superseded = strcmp(t->rows[q][c_ck], "best") == 0 && strcmp(t->rows[q][c_id], row[c_id]) == 0 &&
                             strcmp(t->rows[q][c_len], row[c_len]) == 0;
            if (superseded) continue;
            if (csv_num(t, r, c_val, 0, 1, &val, err, sizeof err) != 0 ||
                csv_num(t, r, c_factor, 1e-9, 1e12, &fac, err, sizeof err) != 0 ||
                csv_num(t, r, c_len, 1, 1e9, &len, err, sizeof err) != 0) {
                fprintf(stderr, "lcgbench table: %s\n", err);
                return 1;
            }
            int m = 0;
            for (; m < n_meth; m++) {
                int same = 1;
                for (int k = 0; k < N_KEYS && same; k++) same = strcmp(meth[m].key[k], row[c_key[k]]) == 0;
                if (same) break;
            }
            if (m == n_meth) {
                if (n_meth == cap) {
                    cap = cap ? 2 * cap : 16;
                    meth = realloc(meth, sizeof *meth * (size_t)cap);
                    if (!meth) lcg_die("out of memory");
                }
                memset(&meth[m], 0, sizeof meth[m]);
                for (int k = 0; k < N_KEYS; k++) meth[m].key[k] = row[c_key[k]];
                for (int f = 0; f < TB_MAX_FACTORS; f++)
                    for (int s = 0; s < TB_MAX_SEEDS; s++)
                        meth[m].v[f][s] = meth[m].ent[f][s] = meth[m].sup[f][s] = meth[m].mx[f][s] =
                            meth[m].mass[f][s] = meth[m].mmean[f][s] = meth[m].coll[f][s] = NAN;
                n_meth++;
            }
            tb_method *M = &meth[m];
            int s = 0;
            while (s < M->n_seeds && strcmp(M->seeds[s], row[c_seed]) != 0) s++;
            if (s == M->n_seeds) {
                if (s == TB_MAX_SEEDS) cli_usage_error(cx, "more than %d seeds for one method", TB_MAX_SEEDS);
                M->seeds[M->n_seeds++] = row[c_seed];
            }
            int f = 0;
            while (f < n_factors && factors[f] != fac) f++;
            if (f == n_factors) {
                if (f == TB_MAX_FACTORS) cli_usage_error(cx, "more than %d length factors", TB_MAX_FACTORS);
                factors[n_factors++] = fac;
            }
            if (!isnan(M->v[f][s]))
                fprintf(stderr, "lcgbench table: warning: %s has two rows for one run and length %s; using the later\n",
                        files[fi], row[c_len]);
            M->v[f][s] = 100 * val;
            M->ent[f][s] = layer_mean(row[c_ent]);
            M->sup[f][s] = layer_mean(row[c_sup]);
            M->mx[f][s] = layer_mean(row[c_max]);
            M->mass[f][s] = mass_over_layers(row, "best", 1);
            M->mmean[f][s] = mass_over_layers(row, "mean", 0);
            M->coll[f][s] = cell_num(row[csv_col("collapse")]);
            M->lens[f] = (int)len;
        }
    }
    /* factors ascending (move each method's columns along) */
    int order[TB_MAX_FACTORS];
    for (int f = 0; f < n_factors; f++) order[f] = f;
    for (int i = 1; i < n_factors; i++)
        for (int j = i; j > 0 && factors[order[j]] < factors[order[j - 1]]; j--) {
            int tmp = order[j];
            order[j] = order[j - 1], order[j - 1] = tmp;
        }
    /* labels: attn(alpha)/pos (the settings that tell same-named methods apart follow) */
    for (int m = 0; m < n_meth; m++) {
        tb_method *M = &meth[m];
        const lcg_normalizer *nz = lcg_normalizer_find(M->key[3]);
        int show_alpha = nz && nz->has_alpha && fabs(atof(M->key[4]) - nz->alpha_def) > 1e-6;
        snprintf(M->label, sizeof M->label, "%s%s%s%s/%s", M->key[3], show_alpha ? "(a=" : "", show_alpha ? M->key[4] : "",
                 show_alpha ? ")" : "", M->key[5]);
        if (nz && nz->has_topk) { /* topk: k and the rule (the alpha column holds +K or -K) */
            double k = atof(M->key[4]);
            snprintf(M->label, sizeof M->label, "%s(k=%d%s)/%s", M->key[3], (int)fabs(k), k < 0 ? ",div-2" : "", M->key[5]);
        }
    }
    /* methods of a task that share a label are told apart, pair by pair: by the task parameters
     * one has and the other lacks (a plain run beside its variant keeps its label), and by the
     * first other setting in which they differ, shown on both ("steps=23437" beside
     * "steps=156250"). grp: the first method with the same task and plain label; show[m][k]:
     * method m's label names setting k */
    const int k_params = 1; /* method_keys[1] = "task_params" */
    int *grp = LCG_NEW(int, n_meth + 1);
    unsigned char *show = LCG_NEW(unsigned char, (size_t)n_meth * N_KEYS + 1);
    for (int m = 0; m < n_meth; m++) {
        grp[m] = m;
        for (int o = 0; o < m && grp[m] == m; o++)
            if (strcmp(meth[m].key[0], meth[o].key[0]) == 0 && strcmp(meth[m].label, meth[o].label) == 0) grp[m] = grp[o];
    }
    for (int m = 0; m < n_meth; m++)
        for (int o = m + 1; o < n_meth; o++) {
            if (grp[o] != grp[m]) continue;
            if (strcmp(meth[m].key[k_params], meth[o].key[k_params]) != 0)
                show[m * N_KEYS + k_params] = show[o * N_KEYS + k_params] = 1;
            int k = 0;
            while (k < N_KEYS && (k == k_params || strcmp(meth[m].key[k], meth[o].key[k]) == 0)) k++;
            if (k < N_KEYS) show[m * N_KEYS + k] = show[o * N_KEYS + k] = 1;
        }
    for (int m = 0; m < n_meth; m++) {
        char *lab = meth[m].label;
        size_t cap = sizeof meth[m].label, l = strlen(lab);
        for (int k = 0; k < N_KEYS && l < cap - 1; k++) {
            if (!show[m * N_KEYS + k]) continue;
            if (k != k_params) {
                l += (size_t)snprintf(lab + l, cap - l, " %s=%s", method_keys[k], meth[m].key[k]);
                continue;
            }
            /* task_params ("vocab=32;freeze-token0=1"): the items that another method of the
             * group lacks */
            char items[256];
            snprintf(items, sizeof items, "%s", meth[m].key[k]);
            for (char *save = NULL, *it = strtok_r(items, ";", &save); it && l < cap - 1; it = strtok_r(NULL, ";", &save)) {
                int everywhere = 1;
                for (int o = 0; o < n_meth && everywhere; o++)
                    if (o != m && grp[o] == grp[m]) everywhere = param_listed(meth[o].key[k], it);
                if (!everywhere) l += (size_t)snprintf(lab + l, cap - l, " %s", it);
            }
        }
        if (l >= cap) lab[cap - 1] = '\0';
    }
    lcg_free(show);
    lcg_free(grp);

    /* tasks in order of first mention */
    const char *tasks[64];
    int n_tasks = 0;
    for (int m = 0; m < n_meth; m++) {
        int seen = 0;
        for (int t = 0; t < n_tasks; t++) seen |= strcmp(tasks[t], meth[m].key[0]) == 0;
        if (!seen && n_tasks < 64) tasks[n_tasks++] = meth[m].key[0];
    }

    char *buf = NULL;
    size_t n_buf = 0;
    FILE *o = open_memstream(&buf, &n_buf);
    if (!o) lcg_die("open_memstream failed");
    char lab[32];
    if (fmt == 3) {
        mkdir(out, 0777);
        for (int t = 0; t < n_tasks; t++) {
            int blocks = 0;
            for (int m = 0; m < n_meth; m++) {
                tb_method *M = &meth[m];
                if (strcmp(M->key[0], tasks[t]) != 0) continue;
                fprintf(o, "%s\"%s\" len %s_mean %s_std %s_min %s_max seeds entropy support max_weight rel_mass "
                           "rel_mass_sd rel_mass_heads collapse\n",
                        blocks++ ? "\n\n" : "", M->label, metric, metric, metric, metric);
                for (int i = 0; i < n_factors; i++) {
                    int f = order[i], k;
                    double mean, sd, e, s, x, dummy;
                    stats(M->v[f], M->n_seeds, &mean, &sd, &k);
                    if (!k) continue;
                    double lo = INFINITY, hi = -INFINITY;
                    for (int q = 0; q < M->n_seeds; q++)
                        if (!isnan(M->v[f][q])) lo = fmin(lo, M->v[f][q]), hi = fmax(hi, M->v[f][q]);
                    stats(M->ent[f], M->n_seeds, &e, &dummy, &k);
                    stats(M->sup[f], M->n_seeds, &s, &dummy, &k);
                    stats(M->mx[f], M->n_seeds, &x, &dummy, &k);
                    double ms, msd, mm, cl;
                    int km;
                    stats(M->mass[f], M->n_seeds, &ms, &msd, &km);
                    stats(M->mmean[f], M->n_seeds, &mm, &dummy, &km);
                    stats(M->coll[f], M->n_seeds, &cl, &dummy, &km);
                    fprintf(o, "%g %d %.4f %.4f %.4f %.4f %d %.6g %.6g %.6g %.6g %.6g %.6g %.6g\n", factors[f], M->lens[f],
                            mean, sd, lo, hi, k, e, s, x, ms, msd, mm, cl);
                }
            }
            if (fclose(o) != 0) lcg_die("building the table in memory failed");
            char path[4200];
            snprintf(path, sizeof path, "%s/%s.dat", out, tasks[t]);
            write_out(path, buf, n_buf);
            free(buf);
            buf = NULL, n_buf = 0;
            o = open_memstream(&buf, &n_buf);
            if (!o) lcg_die("open_memstream failed");
        }
        fclose(o);
        free(buf);
        fprintf(stderr, "lcgbench table: wrote %d data files to %s\n", n_tasks, out);
    } else {
        /* header */
        if (fmt == 0) {
            fprintf(o, "| task | method | seeds |");
            for (int i = 0; i < n_factors; i++) fprintf(o, " %s |", factor_label(factors[order[i]], lab, sizeof lab, "×"));
            fprintf(o, "\n|---|---|---|");
            for (int i = 0; i < n_factors; i++) fprintf(o, "---|");
            fprintf(o, "\n");
        } else if (fmt == 1) {
            fprintf(o, "task,method,seeds");
            for (int i = 0; i < n_factors; i++) {
                factor_label(factors[order[i]], lab, sizeof lab, "x");
                fprintf(o, ",%s,%s_std", lab, lab);
            }
            fprintf(o, "\n");
        } else {
            fprintf(o, "\\begin{tabular}{ll");
            for (int i = 0; i < n_factors; i++) fprintf(o, "r");
            fprintf(o, "}\n\\toprule\ntask & method");
            for (int i = 0; i < n_factors; i++) {
                factor_label(factors[order[i]], lab, sizeof lab, "$\\times$");
                fprintf(o, " & %s", lab);
            }
            fprintf(o, " \\\\\n\\midrule\n");
        }
        for (int t = 0; t < n_tasks; t++) {
            for (int m = 0; m < n_meth; m++) {
                tb_method *M = &meth[m];
                if (strcmp(M->key[0], tasks[t]) != 0) continue;
                if (fmt == 0) fprintf(o, "| %s | %s | %d |", tasks[t], M->label, M->n_seeds);
                else if (fmt == 1) fprintf(o, "%s,%s,%d", tasks[t], M->label, M->n_seeds);
                else fprintf(o, "%s & %s", tasks[t], M->label);
                for (int i = 0; i < n_factors; i++) {
                    double mean, sd;
                    int k;
                    stats(M->v[order[i]], M->n_seeds, &mean, &sd, &k);
                    const tb_ref *ref = refs ? ref_find(refs, n_refs, M, factors[order[i]]) : NULL;
                    const char *bold = ref && k && fabs(mean - ref->val) > tol ? "**" : "";
                    if (fmt == 0) {
                        if (!k) {
                        } else if (M->n_seeds > 1) fprintf(o, " %s%.1f ± %.1f%s", bold, mean, sd, bold);
                        else fprintf(o, " %s%.1f%s", bold, mean, bold);
                        if (ref) fprintf(o, " [%g]", ref->val);
                        fprintf(o, " |");
                    } else if (fmt == 1) {
                        if (!k) fprintf(o, ",,");
                        else fprintf(o, ",%.2f,%.2f", mean, sd);
                    } else {
                        if (!k) fprintf(o, " & --");
                        else if (M->n_seeds > 1) fprintf(o, " & $%.1f \\pm %.1f$", mean, sd);
                        else fprintf(o, " & %.1f", mean);
                    }
                }
                fprintf(o, fmt == 2 ? " \\\\\n" : "\n");
            }
        }
        if (fmt == 2) fprintf(o, "\\bottomrule\n\\end{tabular}\n");
        if (refs) table_against(o, meth, n_meth, factors, n_factors, order, refs, n_refs, tol, against);
        if (fclose(o) != 0) lcg_die("building the table in memory failed");
        write_out(out, buf, n_buf);
        free(buf);
    }
    for (int fi = 0; fi < n_files; fi++) csv_free_table(&tables[fi]);
    lcg_free(tables);
    free(refs);
    free(meth);
    lcg_free(files);
    return 0;
}
