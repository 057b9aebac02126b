/*
 * grid.c: the grid of a sweep (grid.h), shared by sweep (serial and --shard K/N), merge and
 * the MPI sweep: its flags and grid file parsed, the cells enumerated in grid order and each
 * checked as a run (cli_run_cell, without executing), which of them a result CSV already holds,
 * and the `run` command line of one cell for a child process. It prints no help, runs nothing
 * and writes nothing; the commands do (sweep.c, merge.c, mpi.c).
 *
 * Grid file (a line each; '#' starts a comment; values separated by spaces or commas):
 *
 *     args = --preset mini          # run flags for every cell (keys before any [section]
 *     [nape]                        #   apply to every section; a section's args add to them)
 *     task = copy sort reverse
 *     attn = softmax asentmax
 *     pos  = nape
 *     seed = 1 2 3
 *
 * Cells are enumerated section by section, then task, attn, pos, seed (seed fastest); cell
 * k (0-based) belongs to shard (k mod N) + 1 of `--shard K/N`, so shards are fixed by the
 * grid alone and `lcgbench merge` puts their CSVs back in grid order.
 */
#define _POSIX_C_SOURCE 200809L
#include "grid.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    char *list[4][SW_MAX_LIST]; /* task, attn, pos, seed values */
    int n[4];
    char *args[SW_MAX_ARGS];    /* extra run flags of this section */
    int n_args;
} sw_section;

/* what the cells' argv point into */
typedef struct {
    sw_section sec[64];
    int n_sec;
    char **pass;
} sw_parsed;

static const char *const dim_key[4] = {"task", "attn", "pos", "seed"};

static char *sw_strdup(const char *s) {
    char *d = strdup(s);
    if (!d) lcg_die("out of memory");
    return d;
}

/* splits a list at spaces/commas into out (strings owned by the caller's arena: strdup'd) */
static int split_list(const cli_ctx *cx, const char *what, const char *s, char **out, int max) {
    int n = 0;
    char *copy = sw_strdup(s);
    for (char *save = NULL, *tok = strtok_r(copy, " \t,", &save); tok; tok = strtok_r(NULL, " \t,", &save)) {
        if (n == max) cli_usage_error(cx, "%s: more than %d values", what, max);
        out[n++] = sw_strdup(tok);
    }
    free(copy);
    return n;
}

static int split_args(const cli_ctx *cx, const char *what, const char *s, char **out, int n, int max) {
    char *copy = sw_strdup(s);
    for (char *save = NULL, *tok = strtok_r(copy, " \t", &save); tok; tok = strtok_r(NULL, " \t", &save)) {
        if (n == max) cli_usage_error(cx, "%s: more than %d arguments", what, max);
        out[n++] = sw_strdup(tok);
    }
    free(copy);
    return n;
}

/* reads a grid file into sections (at most max); returns their count */
static int read_grid(const cli_ctx *cx, const char *path, sw_section *sec, int max) {
    FILE *f = fopen(path, "r");
    if (!f) cli_usage_error(cx, "--grid: cannot read '%s': %s", path, strerror(errno));
    sw_section top = {0};
    int n = 0, line_no = 0;
    sw_section *cur = &top;
    char line[4096], what[4200];
    while (fgets(line, sizeof line, f)) {
        line_no++;
        size_t len = strlen(line);
        if (len == sizeof line - 1 && line[len - 1] != '\n') cli_usage_error(cx, "%s:%d: line too long", path, line_no);
        char *hash = strchr(line, '#');
        if (hash) *hash = '\0';
        char *p = line;
        while (*p == ' ' || *p == '\t') p++;
        for (char *e = p + strlen(p); e > p && (e[-1] == '\n' || e[-1] == '\r' || e[-1] == ' ' || e[-1] == '\t');) *--e = '\0';
        if (!*p) continue;
        snprintf(what, sizeof what, "%s:%d", path, line_no);
        if (*p == '[') {
            char *close = strchr(p, ']');
            if (!close || close[1] || close == p + 1) cli_usage_error(cx, "%s: expected '[name]', got '%s'", what, p);
            if (n == max) cli_usage_error(cx, "%s: more than %d sections", what, max);
            cur = &sec[n++];
            *cur = top; /* inherits every key given so far at the top */
            for (int d = 0; d < 4; d++)
                for (int i = 0; i < cur->n[d]; i++) cur->list[d][i] = sw_strdup(top.list[d][i]);
            for (int i = 0; i < cur->n_args; i++) cur->args[i] = sw_strdup(top.args[i]);
            continue;
        }
        char *eq = strchr(p, '=');
        if (!eq) cli_usage_error(cx, "%s: expected 'key = values', got '%s'", what, p);
        char *k = p, *ke = eq;
        while (ke > k && (ke[-1] == ' ' || ke[-1] == '\t')) ke--;
        *ke = '\0';
        char *v = eq + 1;
        while (*v == ' ' || *v == '\t') v++;
        if (!*v) cli_usage_error(cx, "%s: '%s' has no value", what, k);
        if (strcmp(k, "args") == 0) {
            cur->n_args = split_args(cx, what, v, cur->args, cur->n_args, SW_MAX_ARGS);
            continue;
        }
        int d = 0;
        while (d < 4 && strcmp(k, dim_key[d]) != 0) d++;
        if (d == 4) cli_usage_error(cx, "%s: unknown key '%s' (task, attn, pos, seed, args)", what, k);
        for (int i = 0; i < cur->n[d]; i++) free(cur->list[d][i]);
        cur->n[d] = split_list(cx, what, v, cur->list[d], SW_MAX_LIST);
    }
    int rerr = ferror(f);
    fclose(f);
    if (rerr) cli_usage_error(cx, "--grid: error reading '%s'", path);
    if (n == 0) {
        if (!top.n[0] && !top.n[1] && !top.n[2] && !top.n[3]) cli_usage_error(cx, "--grid: '%s' defines no cells", path);
        sec[n++] = top;
    } else {
        for (int d = 0; d < 4; d++)
            for (int i = 0; i < top.n[d]; i++) free(top.list[d][i]);
        for (int i = 0; i < top.n_args; i++) free(top.args[i]);
    }
    return n;
}

static void free_section(sw_section *s) {
    for (int d = 0; d < 4; d++)
        for (int i = 0; i < s->n[d]; i++) free(s->list[d][i]);
    for (int i = 0; i < s->n_args; i++) free(s->args[i]);
}

/* whether the CSV rows hold every row of cell c */
/* whether every row of cell c is in t; if only some are, narrows c to the missing lengths */
static int row_done(const lcg_csv *t, int c_id, int c_len, sw_cell *c) {
    char id[32], missing[512] = "";
    snprintf(id, sizeof id, "%016llx", (unsigned long long)c->info.run_id);
    int have = 0, n_miss = 0, miss[LCG_MAX_RUNGS];
    for (int k = 0; k < c->info.n_rows; k++) {
        int found = 0;
        for (long r = 0; r < t->n_rows && !found; r++)
            found = strcmp(t->rows[r][c_id], id) == 0 && atoi(t->rows[r][c_len]) == c->info.lens[k];
        if (found) have++;
        else miss[n_miss++] = c->info.lens[k];
    }
    if (have == 0 || n_miss == 0) return n_miss == 0;
    size_t off = 0;
    for (int k = 0; k < n_miss; k++) off += (size_t)snprintf(missing + off, sizeof missing - off, "%s%d", k ? "," : "", miss[k]);
    snprintf(c->missing, sizeof c->missing, "%s", missing);
    memcpy(c->info.lens, miss, sizeof(int) * (size_t)n_miss);
    c->info.n_rows = n_miss;
    int at = -1; /* the cell's own --eval-lens, if any, gives way */
    for (int i = 0; i < c->argc; i++)
        if (strcmp(c->argv[i], "--eval-lens") == 0 && i + 1 < c->argc) at = i;
        else if (strncmp(c->argv[i], "--eval-lens=", 12) == 0) c->argv[i] = "--eval-lens", at = -2 - i;
    if (at <= -2) { /* --eval-lens=v became two words: shift the rest up */
        int i = -2 - at;
        memmove(&c->argv[i + 2], &c->argv[i + 1], sizeof(char *) * (size_t)(c->argc - i - 1));
        c->argc++;
        at = i;
    }
    if (at < 0) {
        c->argv[c->argc++] = "--eval-lens";
        at = c->argc++ - 1;
    }
    c->argv[at + 1] = c->missing;
    return 0;
}

int sw_mark_done(sw_grid *g, const char *path) {
    int n_done = 0;
    FILE *probe = fopen(path, "r");
    if (!probe) return 0;
    fclose(probe);
    lcg_csv t;
    char err[768];
    if (csv_load(path, &t, err, sizeof err) != 0) {
        fprintf(stderr, "lcgbench %s: %s\n", g->cx->cmd, err);
        return -1;
    }
    int c_id = csv_col("run_id"), c_len = csv_col("eval_len");
    for (long r = 0; r < t.n_rows; r++) { /* the field the marks compare, checked */
        double v;
        if (csv_num(&t, r, c_len, 1, 1 << 24, &v, err, sizeof err) != 0) {
            fprintf(stderr, "lcgbench %s: %s\n", g->cx->cmd, err);
            csv_free_table(&t);
            return -1;
        }
    }
    for (int k = 0; k < g->n_cells; k++) n_done += g->cells[k].done = row_done(&t, c_id, c_len, &g->cells[k]);
    csv_free_table(&t);
    return n_done;
}

int sw_launcher_size(void) {
    const char *vars[] = {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_SIZE", "MPI_LOCALNRANKS"};
    for (int i = 0; i < 4; i++) {
        const char *v = getenv(vars[i]);
        if (v && atoi(v) > 0) return atoi(v);
    }
    return 0;
}

char **sw_child_argv(const sw_cell *c, const char *exe, const char *out, int threads, char *threads_buf) {
    char **a = LCG_NEW(char *, c->argc + 8);
    int n = 0, has_out = 0;
    a[n++] = (char *)exe;
    a[n++] = "run";
    for (int i = 0; i < c->argc; i++) {
        if (strcmp(c->argv[i], "--out") == 0 && i + 1 < c->argc) {
            a[n++] = "--out";
            a[n++] = (char *)out;
            i++;
            has_out = 1;
        } else if (strncmp(c->argv[i], "--out=", 6) == 0) {
            a[n++] = "--out";
            a[n++] = (char *)out;
            has_out = 1;
        } else {
            a[n++] = c->argv[i];
        }
    }
    if (!has_out) {
        a[n++] = "--out";
        a[n++] = (char *)out;
    }
    if (threads > 0) {
        snprintf(threads_buf, 16, "%d", threads);
        a[n++] = "--threads";
        a[n++] = threads_buf;
    }
    a[n] = NULL;
    return a;
}

extern char **environ;

char **sw_child_env(const char *cvd) {
    int n = 0;
    while (environ[n]) n++;
    char **env = LCG_NEW(char *, n + 2);
    int m = 0;
    for (int i = 0; i < n; i++)
        if (strncmp(environ[i], "CUDA_VISIBLE_DEVICES=", 21) != 0) env[m++] = environ[i];
    size_t len = strlen(cvd) + 22;
    env[m] = malloc(len);
    if (!env[m]) lcg_die("out of memory");
    snprintf(env[m], len, "CUDA_VISIBLE_DEVICES=%s", cvd);
    env[m + 1] = NULL;
    return env;
}

void sw_child_env_free(char **env) {
    if (!env) return;
    int m = 0;
    while (env[m + 1]) m++;
    free(env[m]); /* ours is the last */
    lcg_free(env);
}

int sw_visible_gpus(char out[][32], int max) {
    const char *cvd = getenv("CUDA_VISIBLE_DEVICES");
    int n = 0;
    if (cvd) {
        char *copy = sw_strdup(cvd);
        for (char *save = NULL, *tok = strtok_r(copy, ",", &save); tok && n < max; tok = strtok_r(NULL, ",", &save))
            snprintf(out[n++], 32, "%s", tok);
        free(copy);
        return n;
    }
    DIR *d = opendir("/proc/driver/nvidia/gpus");
    if (!d) return 0;
    for (struct dirent *e; (e = readdir(d));)
        if (e->d_name[0] != '.') n++;
    closedir(d);
    if (n > max) n = max;
    for (int i = 0; i < n; i++) snprintf(out[i], 32, "%d", i);
    return n;
}

/* --gpus LIST (indices, e.g. 0,1,2,3 or 0,0) or N (0..N-1): each entry one worker's GPU, as
 * an entry of this process's CUDA_VISIBLE_DEVICES when that is set */
static void parse_gpus(sw_grid *g, const char *v) {
    const cli_ctx *cx = g->cx;
    int idx[SW_MAX_WORKERS], n = 0;
    const char *p = v;
    if (!*v) cli_usage_error(cx, "--gpus is empty (GPU indices like 0,1,2,3, or a count N)");
    while (*p) {
        char *end;
        errno = 0;
        long x = *p >= '0' && *p <= '9' ? strtol(p, &end, 10) : -1;
        if (x < 0 || errno || end == p || (*end && *end != ',') || x > 1023)
            cli_usage_error(cx, "--gpus: bad list '%s' (GPU indices like 0,1,2,3 or 0,0, or a count N)", v);
        if (n == SW_MAX_WORKERS) cli_usage_error(cx, "--gpus: more than %d entries", SW_MAX_WORKERS);
        idx[n++] = (int)x;
        p = end;
        if (*p == ',') {
            p++;
            if (!*p) cli_usage_error(cx, "--gpus: bad list '%s' (GPU indices like 0,1,2,3 or 0,0, or a count N)", v);
        }
    }
    if (n == 1 && !strchr(v, ',')) { /* a count */
        int count = idx[0];
        if (count < 1)
            cli_usage_error(cx, "--gpus: a count must be at least 1, got '%s' (one worker on GPU 0: --gpus 1; on GPU K "
                            "alone: CUDA_VISIBLE_DEVICES=K with --gpus 1)", v);
        if (count > SW_MAX_WORKERS) cli_usage_error(cx, "--gpus: more than %d GPUs", SW_MAX_WORKERS);
        for (n = 0; n < count; n++) idx[n] = n;
    }
    const char *cvd = getenv("CUDA_VISIBLE_DEVICES");
    char vis[SW_MAX_WORKERS * 4][32];
    int n_vis = cvd ? sw_visible_gpus(vis, SW_MAX_WORKERS * 4) : 0;
    for (int w = 0; w < n; w++) {
        if (cvd && idx[w] >= n_vis)
            cli_usage_error(cx, "--gpus: GPU %d is not among the %d of CUDA_VISIBLE_DEVICES=%s (indices count from 0)",
                            idx[w], n_vis, cvd);
        if (cvd) snprintf(g->gpu[w], sizeof g->gpu[w], "%s", vis[idx[w]]);
        else snprintf(g->gpu[w], sizeof g->gpu[w], "%d", idx[w]);
    }
    g->workers = n;
    g->gpus_set = 1;
}

int sw_grid_build(sw_grid *g, cli_ctx *cx, int mode, int argc, char **argv) {
    memset(g, 0, sizeof *g);
    g->cx = cx;
    sw_parsed *P = LCG_NEW(sw_parsed, 1);
    g->priv = P;
    sw_section *sec = P->sec;
    const char *grid = NULL, *dims[4] = {NULL, NULL, NULL, NULL}, *shard = NULL, *workers = NULL, *gpus = NULL;
    char **pass = P->pass = LCG_NEW(char *, argc + 1);
    g->inputs = LCG_NEW(char *, argc + 1);
    int n_pass = 0;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0) return -1;
        if (mode == SW_SWEEP && strcmp(a, "--dry-run") == 0) {
            g->dry = 1;
            continue;
        }
        if (mode == SW_SWEEP && strcmp(a, "--child") == 0) {
            g->child = 1;
            continue;
        }
        /* how a sweep spreads its cells: merge takes the same flags and ignores them */
        const char **opt = strcmp(a, "--workers") == 0 ? &workers : strcmp(a, "--gpus") == 0 ? &gpus
                         : strcmp(a, "--timeline") == 0 ? &g->timeline : NULL;
        if (opt) {
            if (i + 1 >= argc || strncmp(argv[i + 1], "--", 2) == 0) cli_usage_error(cx, "%s needs a value", a);
            if (*opt) cli_usage_error(cx, "%s given twice", a);
            *opt = argv[++i];
            continue;
        }
        int d = -1, is_grid = strcmp(a, "--grid") == 0, is_shard = mode == SW_SWEEP && strcmp(a, "--shard") == 0;
        int is_mout = mode == SW_MERGE && strcmp(a, "--out") == 0;
        for (int k = 0; k < 4; k++)
            if (strncmp(a, "--", 2) == 0 && strcmp(a + 2, dim_key[k]) == 0) d = k;
        if (strcmp(a, "--seeds") == 0) d = 3;
        if (d >= 0 || is_grid || is_shard || is_mout) {
            if (i + 1 >= argc) cli_usage_error(cx, "%s needs a value", a);
            const char **slot = is_grid ? &grid : is_shard ? &shard : is_mout ? &g->merge_out : &dims[d];
            if (*slot) cli_usage_error(cx, "%s given twice", a);
            *slot = argv[++i];
            continue;
        }
        if (strncmp(a, "--", 2) != 0) {
            if (mode == SW_MERGE) {
                g->inputs[g->n_inputs++] = argv[i];
                continue;
            }
            cli_usage_error(cx, "unexpected argument '%s'", a);
        }
        pass[n_pass++] = argv[i];
        /* the flag's value travels with it (run checks both); --quiet is the one run flag
         * without a value */
        if (!strchr(a, '=') && strcmp(a, "--quiet") != 0 && i + 1 < argc && strncmp(argv[i + 1], "--", 2) != 0)
            pass[n_pass++] = argv[++i];
    }
    if (shard) {
        char *end;
        long k = strtol(shard, &end, 10), n = 0;
        if (end != shard && *end == '/') n = strtol(end + 1, &end, 10);
        if (*end || n < 1 || k < 1 || k > n || n > 1000000)
            cli_usage_error(cx, "--shard must be K/N with 1 <= K <= N, got '%s'", shard);
        g->shard_k = (int)k;
        g->shard_n = (int)n;
    }
    if (workers && gpus) cli_usage_error(cx, "--workers cannot be combined with --gpus (each GPU of --gpus is a worker)");
    if (workers) {
        char *end;
        errno = 0;
        long w = strtol(workers, &end, 10);
        if (end == workers || *end || errno || w < 1 || w > SW_MAX_WORKERS)
            cli_usage_error(cx, "--workers must be a whole number from 1 to %d, got '%s'", SW_MAX_WORKERS, workers);
        g->workers = (int)w;
    }
    if (gpus) parse_gpus(g, gpus);
    if (g->timeline && !*g->timeline) cli_usage_error(cx, "--timeline is empty");
    if (g->child && (g->workers || g->timeline))
        cli_usage_error(cx, "--child is the cell of one worker: it takes no --workers, --gpus or --timeline");
    if (mode == SW_MERGE) {
        if (!g->merge_out) cli_usage_error(cx, "--out is required");
        if (!g->n_inputs) cli_usage_error(cx, "no input CSVs");
    }
    if (grid) {
        for (int d = 0; d < 4; d++)
            if (dims[d]) cli_usage_error(cx, "--%s cannot be combined with --grid (put it in the grid file)", dim_key[d]);
        P->n_sec = read_grid(cx, grid, sec, 64);
    } else {
        P->n_sec = 1;
        for (int d = 0; d < 4; d++)
            if (dims[d]) sec[0].n[d] = split_list(g->cx, dim_key[d], dims[d], sec[0].list[d], SW_MAX_LIST);
    }

    /* the cells, in order */
    int n_cells = 0, cap = 0;
    sw_cell *cells = NULL;
    for (int s = 0; s < P->n_sec; s++) {
        sw_section *S = &sec[s];
        int n[4];
        for (int d = 0; d < 4; d++) n[d] = S->n[d] ? S->n[d] : 1;
        for (int i0 = 0; i0 < n[0]; i0++)
            for (int i1 = 0; i1 < n[1]; i1++)
                for (int i2 = 0; i2 < n[2]; i2++)
                    for (int i3 = 0; i3 < n[3]; i3++) {
                        if (n_cells == cap) {
                            cap = cap ? 2 * cap : 64;
                            cells = realloc(cells, sizeof *cells * (size_t)cap);
                            if (!cells) lcg_die("out of memory");
                        }
                        sw_cell *c = &cells[n_cells++];
                        memset(c, 0, sizeof *c);
                        c->mine = !g->shard_n || (n_cells - 1) % g->shard_n == g->shard_k - 1;
                        int idx[4] = {i0, i1, i2, i3}, off = 0;
                        for (int d = 0; d < 4; d++) {
                            if (!S->n[d]) continue;
                            static char flag_text[4][8] = {"--task", "--attn", "--pos", "--seed"};
                            c->argv[c->argc++] = flag_text[d];
                            c->argv[c->argc++] = S->list[d][idx[d]];
                            off += snprintf(c->desc + off, sizeof c->desc - (size_t)off, "%s%s%s", off ? " " : "",
                                            d == 3 ? "seed " : "", S->list[d][idx[d]]);
                        }
                        if (!off) snprintf(c->desc, sizeof c->desc, "the run defaults");
                        if (S->n_args + n_pass + c->argc > (int)(sizeof c->argv / sizeof *c->argv))
                            cli_usage_error(cx, "too many run flags");
                        for (int k = 0; k < S->n_args; k++) c->argv[c->argc++] = S->args[k];
                        for (int k = 0; k < n_pass; k++) c->argv[c->argc++] = pass[k];
                    }
    }
    g->cells = cells;
    g->n_cells = n_cells;

    /* check every cell before any work: flags, one output file, no cell twice */
    for (int k = 0; k < n_cells; k++) {
        snprintf(cx->where, sizeof cx->where, "cell %d (%s)", k + 1, cells[k].desc);
        int here = mode == SW_SWEEP && !g->dry ? CELL_DEVICE : CELL_FLAGS;
        int bad = cli_run_cell(cx, cells[k].argc, cells[k].argv, here, &cells[k].info) != 0;
        cx->where[0] = '\0';
        if (bad) {
            fprintf(stderr, "lcgbench %s: cell %d (%s) cannot start\n", cx->cmd, k + 1, cells[k].desc);
            return 1;
        }
        if (strcmp(cells[k].info.out, cells[0].info.out) != 0)
            cli_usage_error(cx, "cell %d (%s) writes to '%s', cell 1 to '%s': a sweep writes one CSV", k + 1, cells[k].desc,
                     cells[k].info.out, cells[0].info.out);
        for (int j = 0; j < k; j++) {
            if (cells[j].info.run_id == cells[k].info.run_id)
                cli_usage_error(cx, "cells %d (%s) and %d (%s) are the same run", j + 1, cells[j].desc, k + 1, cells[k].desc);
            if (cells[k].info.log_csv[0] && strcmp(cells[j].info.log_csv, cells[k].info.log_csv) == 0)
                cli_usage_error(cx, "cells %d (%s) and %d (%s) would write the same training curve '%s': put {run_id} "
                                "(or what tells them apart: {task}, {attn}, {pos}, {seed}) in --log-csv", j + 1,
                                cells[j].desc, k + 1, cells[k].desc, cells[k].info.log_csv);
        }
    }
    /* --gpus runs GPU cells; --workers CPU cells */
    for (int k = 0; k < n_cells && mode == SW_SWEEP && g->workers; k++) {
        int cuda = strcmp(cells[k].info.device, "cuda") == 0;
        if (g->gpus_set && !cuda)
            cli_usage_error(cx, "--gpus needs --device cuda: cell %d (%s) runs on %s", k + 1, cells[k].desc,
                            cells[k].info.device);
        if (!g->gpus_set && cuda)
            cli_usage_error(cx, "--workers runs CPU cells: cell %d (%s) runs on cuda; give --gpus LIST (one worker per GPU)",
                            k + 1, cells[k].desc);
    }
    g->out = n_cells ? cells[0].info.out : "";
    for (int i = 0; n_cells && i < cells[0].argc; i++)
        g->threads_set |= strcmp(cells[0].argv[i], "--threads") == 0 || strncmp(cells[0].argv[i], "--threads=", 10) == 0;
    return 0;
}

void sw_grid_free(sw_grid *g) {
    sw_parsed *P = g->priv;
    if (P) {
        for (int s = 0; s < P->n_sec; s++) free_section(&P->sec[s]);
        lcg_free(P->pass);
        lcg_free(P);
    }
    free(g->cells);
    lcg_free(g->inputs);
    memset(g, 0, sizeof *g);
}

