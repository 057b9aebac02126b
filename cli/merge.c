/*
 * merge.c: `lcgbench merge --out FILE [the sweep's grid flags] IN.csv...`, the CSVs of a
 * sharded sweep (`sweep --shard K/N`, one per job-array task) combined into the one CSV a
 * single `lcgbench sweep` with the same grid writes: every cell's rows, cells in grid order,
 * each row's bytes as the run wrote them (through the same CSV writer).
 *
 * It knows the grid from the same flags the sweep took (grid.c parses both), so the order
 * does not depend on how the cells were spread over shards or on the order of the inputs,
 * and it refuses what would make the result wrong: an input with another header (or not a
 * result CSV at all), a row that is no cell of the grid, a row found twice, a cell with only
 * some of its rows. Cells found in no input are listed and the merged file is still written
 * (exit status 1), so a partial merge is usable and the gap is visible. It runs nothing.
 */
#define _POSIX_C_SOURCE 200809L
#include "grid.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

typedef struct {
    uint64_t id;
    int cell;
} id_cell;

static int by_id(const void *a, const void *b) {
    uint64_t x = ((const id_cell *)a)->id, y = ((const id_cell *)b)->id;
    return x < y ? -1 : x > y;
}

typedef struct {
    int file;
    long row;
} row_ref;

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

int cmd_merge(cli_ctx *cx, int argc, char **argv) {
    sw_grid g;
    int rc = sw_grid_build(&g, cx, SW_MERGE, argc, argv);
    if (rc < 0) merge_help();
    if (rc != 0) {
        sw_grid_free(&g);
        return rc < 0 ? 0 : rc;
    }
    int n_in = g.n_inputs, n_cells = g.n_cells;
    /* --out must be new, or one of the inputs (merging more shards into it) */
    struct stat so, si;
    if (!lcg_is_stdout(g.merge_out) && stat(g.merge_out, &so) == 0) {
        int listed = 0;
        for (int f = 0; f < n_in; f++)
            listed |= stat(g.inputs[f], &si) == 0 && si.st_dev == so.st_dev && si.st_ino == so.st_ino;
        if (!listed)
            cli_usage_error(cx, "--out '%s' exists: remove it, or list it among the inputs to merge into it", g.merge_out);
    }
    for (int f = 0; f < n_in; f++)
        for (int e = 0; e < f; e++)
            if (strcmp(g.inputs[f], g.inputs[e]) == 0) cli_usage_error(cx, "input '%s' given twice", g.inputs[f]);

    lcg_csv *tab = LCG_NEW(lcg_csv, n_in);
    id_cell *ids = LCG_NEW(id_cell, n_cells + 1);
    /* a row's slot: (cell, checkpoint: 0 last, 1 best, length) */
    row_ref *slot = LCG_NEW(row_ref, (size_t)(n_cells + 1) * 2 * LCG_MAX_RUNGS);
    char err[1024];
    int c_id = csv_col("run_id"), c_len = csv_col("eval_len"), n_loaded = 0, missing = 0, first_missing = -1;
    long n_rows = 0;
    rc = 1;
    for (int k = 0; k < n_cells; k++) ids[k] = (id_cell){g.cells[k].info.run_id, k};
    qsort(ids, (size_t)n_cells, sizeof *ids, by_id);
    for (long i = 0; i < (long)(n_cells + 1) * 2 * LCG_MAX_RUNGS; i++) slot[i].file = -1;
    int c_ck = csv_col("checkpoint");

    for (int f = 0; f < n_in; f++) {
        if (csv_load(g.inputs[f], &tab[f], err, sizeof err) != 0) {
            fprintf(stderr, "lcgbench merge: %s\n", err);
            goto done;
        }
        n_loaded++;
        for (long r = 0; r < tab[f].n_rows; r++) {
            char **row = tab[f].rows[r], *end;
            errno = 0;
            id_cell key = {strtoull(row[c_id], &end, 16), 0};
            id_cell *hit = *row[c_id] && !*end && !errno ? bsearch(&key, ids, (size_t)n_cells, sizeof *ids, by_id) : NULL;
            if (!hit) {
                fprintf(stderr, "lcgbench merge: '%s' row %ld: run %s (%s %s %s seed %s) is not a cell of the grid\n",
                        g.inputs[f], r + 2, row[c_id], row[csv_col("task")], row[csv_col("attn")],
                        row[csv_col("pos")], row[csv_col("seed")]);
                goto done;
            }
            const sw_cell *c = &g.cells[hit->cell];
            double len_d;
            if (csv_num(&tab[f], r, c_len, 1, 1 << 24, &len_d, err, sizeof err) != 0) {
                fprintf(stderr, "lcgbench merge: %s\n", err);
                goto done;
            }
            int j = 0, len = (int)len_d;
            while (j < c->info.n_rows && c->info.lens[j] != len) j++;
            if (j == c->info.n_rows) {
                fprintf(stderr, "lcgbench merge: '%s' row %ld: eval length %s is not one of cell %d's (%s)\n",
                        g.inputs[f], r + 2, row[c_len], hit->cell + 1, c->desc);
                goto done;
            }
            int best = strcmp(row[c_ck], "best") == 0;
            row_ref *s = &slot[((long)hit->cell * 2 + best) * LCG_MAX_RUNGS + j];
            if (s->file >= 0) {
                fprintf(stderr, "lcgbench merge: '%s' row %ld: cell %d (%s) at length %d is also '%s' row %ld (a duplicated cell)\n",
                        g.inputs[f], r + 2, hit->cell + 1, c->desc, len, g.inputs[s->file], s->row + 2);
                goto done;
            }
            *s = (row_ref){f, r};
        }
    }
    for (int k = 0; k < n_cells; k++) {
        const sw_cell *c = &g.cells[k];
        int have[2] = {0, 0}, where = -1;
        for (int b = 0; b < 2; b++)
            for (int j = 0; j < c->info.n_rows; j++)
                if (slot[((long)k * 2 + b) * LCG_MAX_RUNGS + j].file >= 0)
                    have[b]++, where = slot[((long)k * 2 + b) * LCG_MAX_RUNGS + j].file;
        /* the last checkpoint's rows stop at --last-max when a best checkpoint's follow */
        int want[2] = {have[1] ? c->info.n_last : c->info.n_rows, c->info.n_rows};
        for (int b = 0; b < 2; b++)
            if ((have[b] && have[b] < want[b]) || (b && have[b] && !have[0])) {
                fprintf(stderr, "lcgbench merge: cell %d (%s) has %d of its %d %srows in '%s': a partial cell\n", k + 1,
                        c->desc, have[b], want[b], b ? "best-checkpoint " : "", g.inputs[where]);
                goto done;
            }
        if (!have[0] && !missing++) first_missing = k;
        n_rows += have[0] + have[1];
    }

    char *buf = NULL;
    size_t n_buf = 0;
    FILE *mf = open_memstream(&buf, &n_buf);
    if (!mf) lcg_die("open_memstream failed");
    csv_write_record(mf, lcg_csv_columns, lcg_csv_n_columns);
    for (int k = 0; k < n_cells; k++)
        for (int j = 0; j < 2 * g.cells[k].info.n_rows; j++) {
            int b = j >= g.cells[k].info.n_rows;
            row_ref *s = &slot[((long)k * 2 + b) * LCG_MAX_RUNGS + j - b * g.cells[k].info.n_rows];
            if (s->file >= 0) csv_write_record(mf, (const char *const *)tab[s->file].rows[s->row], lcg_csv_n_columns);
        }
    if (fclose(mf) != 0) lcg_die("building CSV in memory failed");
    int wrc = 0;
    if (lcg_is_stdout(g.merge_out)) {
        if (fwrite(buf, 1, n_buf, stdout) != n_buf || fflush(stdout) != 0)
            wrc = -1, snprintf(err, sizeof err, "cannot write to standard output");
    } else {
        wrc = lcg_write_file_atomic(g.merge_out, buf, n_buf, err, sizeof err);
    }
    free(buf);
    if (wrc != 0) {
        fprintf(stderr, "lcgbench merge: %s\n", err);
        goto done;
    }
    fprintf(stderr, "lcgbench merge: wrote %ld rows of %d cells from %d files to %s\n", n_rows, n_cells - missing,
            n_in, lcg_is_stdout(g.merge_out) ? "standard output" : g.merge_out);
    if (missing)
        fprintf(stderr, "lcgbench merge: %d of %d cells are in no input (the first: cell %d, %s): run their shards "
                "again, then merge again\n", missing, n_cells, first_missing + 1, g.cells[first_missing].desc);
    rc = missing ? 1 : 0;
done:
    for (int f = 0; f < n_loaded; f++) csv_free_table(&tab[f]);
    lcg_free(tab);
    lcg_free(ids);
    lcg_free(slot);
    sw_grid_free(&g);
    return rc;
}
