/*
 * sweep.c: `lcgbench sweep`, a grid of runs (tasks x attentions x position encodings x
 * seeds, from flags or a grid file) appended to one CSV. Every cell is parsed and checked
 * before any work starts; cells whose rows are already in the output CSV (same run id and
 * eval length) are skipped, so a sweep that was interrupted resumes where it stopped and
 * ends with the same rows, in the same order, as one that was not (each run's rows are
 * appended atomically: a cell is in the file whole or not at all). SIGINT/SIGTERM stop the
 * sweep after the current cell has written its checkpoint (see `run`); killed at any moment,
 * the rerun skips the cells already in the CSV and redoes the one that was cut short.
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
 * grid alone and `lcgbench merge` (merge.c) puts their CSVs back in grid order. The grid
 * parser is shared with merge and with the MPI sweep (mpi.c, built into lcgbench-mpi only);
 * this file schedules nothing across processes itself.
 */
#define _POSIX_C_SOURCE 200809L
#include "sweep.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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
static const char *g_sw_cmd = "sweep";

_Noreturn void sw_error(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "lcgbench %s: ", g_sw_cmd);
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, " (see 'lcgbench %s --help')\n", g_sw_cmd);
    va_end(ap);
    exit(2);
}

static char *sw_strdup(const char *s) {
    char *d = strdup(s);
    if (!d) lcg_die("out of memory");
    return d;
}

/* splits a list at spaces/commas into out (strings owned by the caller's arena: strdup'd) */
static int split_list(const char *what, const char *s, char **out, int max) {
    int n = 0;
    char *copy = sw_strdup(s);
    for (char *save = NULL, *tok = strtok_r(copy, " \t,", &save); tok; tok = strtok_r(NULL, " \t,", &save)) {
        if (n == max) sw_error("%s: more than %d values", what, max);
        out[n++] = sw_strdup(tok);
    }
    free(copy);
    return n;
}

static int split_args(const char *what, const char *s, char **out, int n, int max) {
    char *copy = sw_strdup(s);
    for (char *save = NULL, *tok = strtok_r(copy, " \t", &save); tok; tok = strtok_r(NULL, " \t", &save)) {
        if (n == max) sw_error("%s: more than %d arguments", what, max);
        out[n++] = sw_strdup(tok);
    }
    free(copy);
    return n;
}

/* reads a grid file into sections (at most max); returns their count */
static int read_grid(const char *path, sw_section *sec, int max) {
    FILE *f = fopen(path, "r");
    if (!f) sw_error("--grid: cannot read '%s': %s", path, strerror(errno));
    sw_section top = {0};
    int n = 0, line_no = 0;
    sw_section *cur = &top;
    char line[4096], what[4200];
    while (fgets(line, sizeof line, f)) {
        line_no++;
        size_t len = strlen(line);
        if (len == sizeof line - 1 && line[len - 1] != '\n') sw_error("%s:%d: line too long", path, line_no);
        char *hash = strchr(line, '#');
        if (hash) *hash = '\0';
        char *p = line;
        while (*p == ' ' || *p == '\t') p++;
        for (char *e = p + strlen(p); e > p && (e[-1] == '\n' || e[-1] == '\r' || e[-1] == ' ' || e[-1] == '\t');) *--e = '\0';
        if (!*p) continue;
        snprintf(what, sizeof what, "%s:%d", path, line_no);
        if (*p == '[') {
            char *close = strchr(p, ']');
            if (!close || close[1] || close == p + 1) sw_error("%s: expected '[name]', got '%s'", what, p);
            if (n == max) sw_error("%s: more than %d sections", what, max);
            cur = &sec[n++];
            *cur = top; /* inherits every key given so far at the top */
            for (int d = 0; d < 4; d++)
                for (int i = 0; i < cur->n[d]; i++) cur->list[d][i] = sw_strdup(top.list[d][i]);
            for (int i = 0; i < cur->n_args; i++) cur->args[i] = sw_strdup(top.args[i]);
            continue;
        }
        char *eq = strchr(p, '=');
        if (!eq) sw_error("%s: expected 'key = values', got '%s'", what, p);
        char *k = p, *ke = eq;
        while (ke > k && (ke[-1] == ' ' || ke[-1] == '\t')) ke--;
        *ke = '\0';
        char *v = eq + 1;
        while (*v == ' ' || *v == '\t') v++;
        if (!*v) sw_error("%s: '%s' has no value", what, k);
        if (strcmp(k, "args") == 0) {
            cur->n_args = split_args(what, v, cur->args, cur->n_args, SW_MAX_ARGS);
            continue;
        }
        int d = 0;
        while (d < 4 && strcmp(k, dim_key[d]) != 0) d++;
        if (d == 4) sw_error("%s: unknown key '%s' (task, attn, pos, seed, args)", what, k);
        for (int i = 0; i < cur->n[d]; i++) free(cur->list[d][i]);
        cur->n[d] = split_list(what, v, cur->list[d], SW_MAX_LIST);
    }
    int rerr = ferror(f);
    fclose(f);
    if (rerr) sw_error("--grid: error reading '%s'", path);
    if (n == 0) {
        if (!top.n[0] && !top.n[1] && !top.n[2] && !top.n[3]) sw_error("--grid: '%s' defines no cells", path);
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

static void sweep_help(void) {
    printf("usage: lcgbench sweep [--grid FILE | --task A,B --attn A,B --pos A,B --seed 1,2,3] [run flags]\n\n"
           "Run a grid of 'lcgbench run's into one CSV. Every cell is checked before any work starts;\n"
           "cells already in the output CSV are skipped, so an interrupted sweep resumes where it\n"
           "stopped and writes the same rows as an uninterrupted one.\n\n"
           "flags:\n"
           "  --grid FILE              grid file: 'key = values' lines (task, attn, pos, seed, args) and\n"
           "                           [section] headers for several sub-grids (see the README)\n"
           "  --task LIST              comma-separated tasks (copy)\n"
           "  --attn LIST              attention normalizers (the run default)\n"
           "  --pos LIST               position encodings (the run default or the preset's)\n"
           "  --seed LIST              seeds (1)\n"
           "  --shard K/N              run only cells k with k mod N = K-1 (k from 0 in grid order), for\n"
           "                           job arrays; give each shard its own --out, then 'lcgbench merge'\n"
           "  --dry-run                list the cells, done or to do, and run none\n"
           "  --help                   show this help\n"
           "Every other flag goes to each run unchanged (e.g. --preset mini, --out FILE, --threads N).\n"
           "Under mpirun, lcgbench-mpi (make MPI=1) spreads the cells over the ranks (see the README).\n");
}

static void merge_help(void) {
    printf("usage: lcgbench merge --out FILE [grid flags as for sweep] IN.csv...\n\n"
           "Combine the CSVs of 'sweep --shard K/N' runs (or any result CSVs of the grid's cells) into\n"
           "one CSV in the grid's order: the file a single 'lcgbench sweep' with the same grid flags\n"
           "writes. Refuses inputs with another header, rows that are not cells of the grid, a cell's\n"
           "rows in more than one place, and cells with only some of their rows. Cells missing from\n"
           "every input are listed; the merged file is still written, and the exit status is 1.\n\n"
           "flags:\n"
           "  --out FILE               the merged CSV (must not exist unless it is one of the inputs)\n"
           "  --grid FILE, --task, --attn, --pos, --seed, run flags: the sweep's, as given to it\n"
           "  --help                   show this help\n");
}

/* whether the CSV rows hold every row of cell c */
static int row_done(const lcg_csv *t, int c_id, int c_len, const sw_cell *c) {
    char id[32];
    snprintf(id, sizeof id, "%016llx", (unsigned long long)c->info.run_id);
    for (int k = 0; k < c->info.n_rows; k++) {
        int found = 0;
        for (long r = 0; r < t->n_rows && !found; r++)
            found = strcmp(t->rows[r][c_id], id) == 0 && atoi(t->rows[r][c_len]) == c->info.lens[k];
        if (!found) return 0;
    }
    return 1;
}

int sw_mark_done(sw_grid *g, const char *path) {
    int n_done = 0;
    FILE *probe = fopen(path, "r");
    if (!probe) return 0;
    fclose(probe);
    lcg_csv t;
    char err[768];
    if (csv_load(path, &t, err, sizeof err) != 0) {
        fprintf(stderr, "lcgbench %s: %s\n", g_sw_cmd, err);
        return -1;
    }
    int c_id = csv_col("run_id"), c_len = csv_col("eval_len");
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

int sw_grid_build(sw_grid *g, int mode, int argc, char **argv) {
    memset(g, 0, sizeof *g);
    g_sw_cmd = mode == SW_MERGE ? "merge" : "sweep";
    sw_parsed *P = LCG_NEW(sw_parsed, 1);
    g->priv = P;
    sw_section *sec = P->sec;
    const char *grid = NULL, *dims[4] = {NULL, NULL, NULL, NULL}, *shard = NULL;
    char **pass = P->pass = LCG_NEW(char *, argc + 1);
    g->inputs = LCG_NEW(char *, argc + 1);
    int n_pass = 0;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0) {
            if (mode == SW_MERGE) merge_help();
            else sweep_help();
            return -1;
        }
        if (mode == SW_SWEEP && strcmp(a, "--dry-run") == 0) {
            g->dry = 1;
            continue;
        }
        int d = -1, is_grid = strcmp(a, "--grid") == 0, is_shard = mode == SW_SWEEP && strcmp(a, "--shard") == 0;
        int is_mout = mode == SW_MERGE && strcmp(a, "--out") == 0;
        for (int k = 0; k < 4; k++)
            if (strncmp(a, "--", 2) == 0 && strcmp(a + 2, dim_key[k]) == 0) d = k;
        if (strcmp(a, "--seeds") == 0) d = 3;
        if (d >= 0 || is_grid || is_shard || is_mout) {
            if (i + 1 >= argc) sw_error("%s needs a value", a);
            const char **slot = is_grid ? &grid : is_shard ? &shard : is_mout ? &g->merge_out : &dims[d];
            if (*slot) sw_error("%s given twice", a);
            *slot = argv[++i];
            continue;
        }
        if (strncmp(a, "--", 2) != 0) {
            if (mode == SW_MERGE) {
                g->inputs[g->n_inputs++] = argv[i];
                continue;
            }
            sw_error("unexpected argument '%s'", a);
        }
        if (strcmp(a, "--load") == 0 || strcmp(a, "--save") == 0 || strncmp(a, "--load=", 7) == 0 || strncmp(a, "--save=", 7) == 0 ||
            strcmp(a, "--resume") == 0 || strncmp(a, "--resume=", 9) == 0)
            sw_error("%s is per run: a sweep trains every cell", a);
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
            sw_error("--shard must be K/N with 1 <= K <= N, got '%s'", shard);
        g->shard_k = (int)k;
        g->shard_n = (int)n;
    }
    if (mode == SW_MERGE) {
        if (!g->merge_out) sw_error("--out is required");
        if (!g->n_inputs) sw_error("no input CSVs");
    }
    if (grid) {
        for (int d = 0; d < 4; d++)
            if (dims[d]) sw_error("--%s cannot be combined with --grid (put it in the grid file)", dim_key[d]);
        P->n_sec = read_grid(grid, sec, 64);
    } else {
        P->n_sec = 1;
        for (int d = 0; d < 4; d++)
            if (dims[d]) sec[0].n[d] = split_list(dim_key[d], dims[d], sec[0].list[d], SW_MAX_LIST);
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
                            sw_error("too many run flags");
                        for (int k = 0; k < S->n_args; k++) c->argv[c->argc++] = S->args[k];
                        for (int k = 0; k < n_pass; k++) c->argv[c->argc++] = pass[k];
                    }
    }
    g->cells = cells;
    g->n_cells = n_cells;

    /* check every cell before any work: flags, one output file, no cell twice */
    char ctx[600];
    for (int k = 0; k < n_cells; k++) {
        snprintf(ctx, sizeof ctx, "cell %d (%s)", k + 1, cells[k].desc);
        lcg_usage_context(ctx);
        if (lcg_run_flags(cells[k].argc, cells[k].argv, 0, &cells[k].info) != 0) {
            fprintf(stderr, "lcgbench %s: cell %d (%s) cannot start\n", g_sw_cmd, k + 1, cells[k].desc);
            return 1;
        }
        if (strcmp(cells[k].info.out, cells[0].info.out) != 0)
            sw_error("cell %d (%s) writes to '%s', cell 1 to '%s': a sweep writes one CSV", k + 1, cells[k].desc,
                     cells[k].info.out, cells[0].info.out);
        for (int j = 0; j < k; j++)
            if (cells[j].info.run_id == cells[k].info.run_id)
                sw_error("cells %d (%s) and %d (%s) are the same run", j + 1, cells[j].desc, k + 1, cells[k].desc);
    }
    lcg_usage_context("");
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

int cmd_sweep(int argc, char **argv) {
    sw_grid g;
#ifdef LCG_MPI
    /* every rank checks the grid; rank 0 alone says what is wrong with it */
    const char *rank_env = getenv("OMPI_COMM_WORLD_RANK");
    if (!rank_env) rank_env = getenv("PMI_RANK");
    if (!rank_env) rank_env = getenv("PMIX_RANK");
    int rank = rank_env ? atoi(rank_env) : 0, saved_err = -1;
    if (rank > 0) {
        fflush(stderr);
        saved_err = dup(2);
        FILE *null = freopen("/dev/null", "w", stderr);
        (void)null;
    }
    int rc = sw_grid_build(&g, SW_SWEEP, argc, argv);
    if (saved_err >= 0) {
        fflush(stderr);
        dup2(saved_err, 2);
        close(saved_err);
    }
    if (rc == 0 && g.dry && rank > 0) rc = -1;
#else
    int rc = sw_grid_build(&g, SW_SWEEP, argc, argv);
#endif
    if (rc != 0) {
        sw_grid_free(&g);
        return rc < 0 ? 0 : rc;
    }
#ifdef LCG_MPI
    if (sw_launcher_size() > 0 && !g.dry) {
        if (g.shard_n) sw_error("--shard is for runs without MPI: under mpirun the ranks share the grid");
        rc = sweep_mpi(&g);
        sw_grid_free(&g);
        return rc;
    }
#else
    if (sw_launcher_size() > 1 && !g.dry)
        sw_error("started as one of %d MPI ranks, but this lcgbench is built without MPI: every rank would run "
                 "the whole grid; build lcgbench-mpi with 'make MPI=1' and run that", sw_launcher_size());
#endif
    int n_cells = g.n_cells, n_mine = 0;
    sw_cell *cells = g.cells;
    char target_err[768];
    if (!g.dry && (csv_mkdirs_for(g.out), lcg_check_writable(g.out, target_err, sizeof target_err)) != 0) {
        fprintf(stderr, "lcgbench sweep: %s\n", target_err);
        sw_grid_free(&g);
        return 1;
    }
    int n_done = sw_mark_done(&g, g.out), n_todo = 0;
    if (n_done < 0) {
        sw_grid_free(&g);
        return 1;
    }
    for (int k = 0; k < n_cells; k++) {
        n_mine += cells[k].mine;
        n_todo += cells[k].mine && !cells[k].done;
    }
    if (g.shard_n)
        fprintf(stderr, "lcgbench sweep: shard %d/%d: %d of %d cells, %d already in %s, %d to run\n", g.shard_k,
                g.shard_n, n_mine, n_cells, n_mine - n_todo, g.out, n_todo);
    else
        fprintf(stderr, "lcgbench sweep: %d cells, %d already in %s, %d to run\n", n_cells, n_done, g.out, n_todo);
    if (g.dry) {
        for (int k = 0; k < n_cells; k++)
            if (cells[k].mine)
                printf("%4d  %-5s %016llx  %s\n", k + 1, cells[k].done ? "done" : "todo",
                       (unsigned long long)cells[k].info.run_id, cells[k].desc);
    }
    int failed = 0, ran = 0, elsewhere = 0;
    double t0 = lcg_now();
    /* concurrent sweeps on one CSV split the cells: each claims a cell (a lock beside the CSV,
     * released when its process ends) before running it, and skips the cells another holds */
    char err[768];
    int claims = g.dry ? -1 : lcg_claim_open(g.out, err, sizeof err);
    if (!g.dry && claims < 0) {
        fprintf(stderr, "lcgbench sweep: %s\n", err);
        sw_grid_free(&g);
        return 1;
    }
    for (int k = 0; k < n_cells && !g.dry; k++) {
        if (cells[k].done || !cells[k].mine) continue;
        uint64_t key = cells[k].info.run_id;
        int got = lcg_claim(claims, key);
        if (got < 0) lcg_die("cannot claim cell %d in '%s.lock': %s", k + 1, g.out, strerror(errno));
        if (got == 0 || (sw_mark_done(&g, g.out) > 0 && cells[k].done)) { /* running or finished elsewhere */
            if (got) lcg_unclaim(claims, key);
            else elsewhere++;
            continue;
        }
        fprintf(stderr, "[sweep %d/%d] %s\n", k + 1, n_cells, cells[k].desc);
        lcg_run_info info;
        int rc = lcg_run_flags(cells[k].argc, cells[k].argv, 1, &info);
        lcg_unclaim(claims, key);
        if (lcg_stop_signal) { /* SIGINT/SIGTERM: the cell said what it kept; no further cells */
            fprintf(stderr, "lcgbench sweep: stopped in cell %d (%s); run the same command again to continue\n",
                    k + 1, cells[k].desc);
            sw_grid_free(&g);
            return 128 + lcg_stop_signal;
        }
        if (rc != 0) {
            fprintf(stderr, "lcgbench sweep: cell %d (%s) failed\n", k + 1, cells[k].desc);
            failed++;
        }
        ran++;
    }
    if (!g.dry)
        fprintf(stderr, "lcgbench sweep: ran %d cells in %.1f s%s\n", ran, lcg_now() - t0,
                failed ? "; some failed: run the same command again to retry them" : "");
    if (elsewhere)
        fprintf(stderr, "lcgbench sweep: %d cell%s left to another sweep running on %s\n", elsewhere,
                elsewhere == 1 ? " was" : "s were", g.out);
    lcg_claim_close(claims);
    sw_grid_free(&g);
    return failed ? 1 : 0;
}
