/*
 * csv.h: result CSVs: one row per evaluated length appended atomically (csv_out.c), and read back
 * with the header checked (csv_read.c)
 */
#ifndef LCG_CSV_H
#define LCG_CSV_H

#include <stdio.h>

#include "run.h"

/* ---- CSV (harness/csv_out.c) ------------------------------------------------------------- */
/* appends one row per rung to cfg->out atomically; returns 0 or -1 with err */
int csv_append(const lcg_run_cfg *cfg, const lcg_train_result *tr, const lcg_rung_result *rungs,
               int n_rungs, char *err, size_t err_len);
/* the per-layer attention diagnostics of every rung in long format (one row per rung and layer:
 * run_id, task, attn, pos, seed, device, precision, checkpoint (last|best), eval_len, layer,
 * attn_entropy, attn_support, attn_max; numbers a data frame reads as numbers), appended to cfg->layers_out under its lock;
 * 0 or -1 with err. The main CSV keeps its packed "v0;v1" cells for compatibility. */
int csv_append_layers(const lcg_run_cfg *cfg, const lcg_rung_result *rungs, int n_rungs, const char *checkpoint, char *err,
                      size_t err_len);
/* before any work: cfg->out is a CSV of our schema (or absent) and can be replaced; stale temp
 * files of killed writers are removed. 0 or -1 with err */
int csv_preflight(const lcg_run_cfg *cfg, char *err, size_t err_len);
/* writes one record of n fields as csv_append does (quoted only where needed), '\n'-ended */
void csv_write_record(FILE *f, const char *const *fields, int n);
/* creates the directories above path (errors surface when the file is written) */
void csv_mkdirs_for(const char *path);
extern const char *const lcg_csv_columns[];
extern const int lcg_csv_n_columns;
/* the current schema; the older ones lack blocks of columns (schema 1: before the device
 * columns; 2: before bleu, checkpoint, checkpoint_step; 3: before the mechanism columns).
 * Column i of schema s is the current csv_schema_column(s, i); a current column schema s lacks
 * defaults to csv_schema_default ("", last, the row's steps, cpu, "", fp32; "" for the
 * mechanism), NULL for the others */
#define LCG_CSV_SCHEMA 4
/* schema 4's mechanism columns: rel_mass_best_l0 .. l7, rel_mass_mean_l0 .. l7 (layers past the
 * eighth are not reported), collapse */
#define LCG_CSV_MECH_LAYERS 8
#define LCG_CSV_MECH_COLUMNS (2 * LCG_CSV_MECH_LAYERS + 1)
int csv_schema_n_columns(int schema);
int csv_schema_column(int schema, int i);
const char *csv_schema_default(int schema, int col, const char *steps);
/* the schema whose header matched (match[s] set) with n_fields fields, the newest; 0 if none */
int csv_schema_match(const int *match, int n_fields);
/* the name of column i of schema 1 .. LCG_CSV_SCHEMA, NULL past the last */
const char *csv_header_name(int schema, int i);
/* data (n bytes) upgraded to the current schema if it is a valid file of an older one: 1 and a
 * malloc'd *out; else 0 (nothing allocated) */
int csv_upgrade(const char *data, size_t n, char **out, size_t *n_out);
/* csv_append, and (best not NULL) the n_best rows of the best checkpoint, of step best_step,
 * after the last checkpoint's n_rungs (fewer under --last-max), in the same atomic write */
int csv_append_best(const lcg_run_cfg *cfg, const lcg_train_result *tr, const lcg_rung_result *rungs, int n_rungs,
                    const lcg_rung_result *best, int n_best, long best_step, char *err, size_t err_len);
/* the blocks of rows of the given runs (a run's consecutive rows) put back in the order of
 * run_ids, pass by pass, into the places they held, other rows untouched (harness/csv_order.c):
 * what a sweep whose cells finished out of order does to its CSV. 0 (already in order, the
 * file untouched), 1 (rewritten atomically under its lock), or -1 with err */
int csv_order_runs(const char *path, const uint64_t *run_ids, int n_runs, char *err, size_t err_len);

/* a result CSV read back (harness/csv_read.c): rows of lcg_csv_n_columns string fields */
typedef struct {
    char ***rows;        /* n_rows, lcg_csv_n_columns */
    long n_rows;
    char *path;          /* for messages: "path:line" */
} lcg_csv;
/* loads path, checking it has our exact header (or schema 1's: its rows are filled in to the
 * current schema); 0, or -1 with err (nothing to free) */
int csv_load(const char *path, lcg_csv *t, char *err, size_t err_len);
/* the index of a column (dies on an unknown name: a programming error) */
int csv_col(const char *name);
void csv_free_table(lcg_csv *t);
/* field col of row r as a finite number in [lo, hi] (the whole field); 0, or -1 with
 * "path:line: column 'name' is 'text', expected ..." in err */
int csv_num(const lcg_csv *t, long r, int col, double lo, double hi, double *out, char *err, size_t err_len);

#endif
