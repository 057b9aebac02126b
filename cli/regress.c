/*
 * regress.c: `lcgbench regress`, the CI guard of extrapolation accuracy. Compares a fresh
 * result CSV with a committed baseline, row by row (same run id and eval length): a row
 * regresses when its exact match falls below the lower end of the baseline's 95% Wilson
 * interval, i.e. by more than the baseline's own sampling noise allows. A baseline row with
 * no fresh counterpart fails too (the guard must not pass by running less). Rows above the
 * baseline's interval are reported as improvements, never silently adopted: the baseline
 * changes only by `make regress-update`, which rewrites it.
 */
#define _POSIX_C_SOURCE 200809L
#include "cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void regress_help(void) {
    printf("usage: lcgbench regress --baseline BASE.csv CURRENT.csv\n\n"
           "Fail (exit 1) when any row of BASE.csv is missing from CURRENT.csv or its exact match\n"
           "there is below the lower end of the baseline row's 95%% interval (exact_lo).\n");
}

int cmd_regress(cli_ctx *cx, int argc, char **argv) {
    const char *base_path = NULL, *cur_path = NULL;
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0) {
            regress_help();
            return 0;
        } else if (strcmp(argv[i], "--baseline") == 0 && i + 1 < argc) {
            base_path = argv[++i];
        } else if (strncmp(argv[i], "--", 2) == 0) {
            cli_usage_error(cx, "unknown flag or missing value '%s'", argv[i]);
        } else if (!cur_path) {
            cur_path = argv[i];
        } else {
            cli_usage_error(cx, "one CSV to check, got '%s' too", argv[i]);
        }
    }
    if (!base_path || !cur_path) {
        cli_usage_error(cx, "needs --baseline BASE.csv and CURRENT.csv");
    }
    lcg_csv base, cur;
    char err[768];
    if (csv_load(base_path, &base, err, sizeof err) != 0) {
        fprintf(stderr, "lcgbench regress: %s\n", err);
        return 2;
    }
    if (csv_load(cur_path, &cur, err, sizeof err) != 0) {
        fprintf(stderr, "lcgbench regress: %s\n", err);
        csv_free_table(&base);
        return 2;
    }
    int c_id = csv_col("run_id"), c_len = csv_col("eval_len"), c_ex = csv_col("exact_match");
    int c_lo = csv_col("exact_lo"), c_hi = csv_col("exact_hi"), c_task = csv_col("task");
    int c_attn = csv_col("attn"), c_pos = csv_col("pos"), c_seed = csv_col("seed"), c_ck = csv_col("checkpoint");
    int bad = 0, better = 0;
    if (base.n_rows == 0) {
        fprintf(stderr, "lcgbench regress: '%s' has no rows: a guard with nothing to compare fails\n", base_path);
        csv_free_table(&base);
        csv_free_table(&cur);
        return 2;
    }
    for (long r = 0; r < base.n_rows + cur.n_rows; r++) { /* every number used, checked first */
        const lcg_csv *t = r < base.n_rows ? &base : &cur;
        long k = r < base.n_rows ? r : r - base.n_rows;
        double v;
        int cols[3] = {c_ex, c_lo, c_hi};
        for (int i = 0; i < (t == &base ? 3 : 1); i++)
            if (csv_num(t, k, cols[i], 0, 1, &v, err, sizeof err) != 0) {
                fprintf(stderr, "lcgbench regress: %s\n", err);
                csv_free_table(&base);
                csv_free_table(&cur);
                return 2;
            }
    }
    printf("%-10s %-22s %8s %9s %17s %9s  %s\n", "task", "method", "len", "baseline", "95% interval", "now", "");
    for (long r = 0; r < base.n_rows; r++) {
        char **b = base.rows[r];
        char **c = NULL;
        for (long k = 0; k < cur.n_rows && !c; k++)
            if (strcmp(cur.rows[k][c_id], b[c_id]) == 0 && strcmp(cur.rows[k][c_len], b[c_len]) == 0 &&
                strcmp(cur.rows[k][c_ck], b[c_ck]) == 0)
                c = cur.rows[k];
        char method[128];
        snprintf(method, sizeof method, "%s/%s seed %s%s", b[c_attn], b[c_pos], b[c_seed],
                 strcmp(b[c_ck], "best") == 0 ? " best" : "");
        double ex = atof(b[c_ex]), lo = atof(b[c_lo]), hi = atof(b[c_hi]);
        const char *verdict;
        double now = c ? atof(c[c_ex]) : 0;
        if (!c) verdict = "MISSING", bad++;
        else if (now < lo - 1e-9) verdict = "REGRESSED", bad++;
        else if (now > hi + 1e-9) verdict = "better (consider make regress-update)", better++;
        else verdict = "ok";
        printf("%-10s %-22s %8s %8.1f%% [%5.1f%%, %5.1f%%] %8s  %s\n", b[c_task], method, b[c_len], 100 * ex, 100 * lo,
               100 * hi, c ? (snprintf(err, sizeof err, "%.1f%%", 100 * now), err) : "-", verdict);
    }
    fprintf(stderr, "lcgbench regress: %ld baseline rows, %d regressed or missing, %d above their interval\n",
            base.n_rows, bad, better);
    csv_free_table(&base);
    csv_free_table(&cur);
    return bad ? 1 : 0;
}
