/*
 * test_val.c: validation during training, checkpoint selection, BLEU rows and training curves
 * (issue 21), through the lcgbench binary:
 *   - every bad value of --val-every, --val-lens, --val-samples, --monitor, --select,
 *     --log-csv and --bleu is a one-line usage error, before anything is written;
 *   - validating with --select last leaves the rows exactly those of a run without validation;
 *   - --select best picks the first step of the highest monitor score in the --log-csv curve
 *     and appends its rows (checkpoint best, that step) after the last checkpoint's; `table`
 *     summarizes the best rows, or the last ones with --checkpoint last;
 *   - a run killed after its best validation and resumed writes the rows of the run never
 *     interrupted (the best is kept beside the checkpoint);
 *   - a run whose validation a SIGTERM cuts short validates that step first when resumed: the
 *     rows and the curve (outside tok_s) of the run never interrupted;
 *   - --stop-at pauses a run (or a sweep's cells) at a step with its checkpoint and no rows,
 *     and the continued run writes the uninterrupted rows and curve;
 *   - sort has a bleu column by default; copy only with --bleu;
 *   - --last-max stops the last checkpoint's rows at a length, the best one's rows whole, the
 *     rows otherwise the full run's; merge takes such cells whole;
 *   - a curve's rows carry the run id, and no run overwrites another's curve (or a file that is
 *     no curve); a sweep whose cells would share one is refused before any work.
 * The BLEU of greedy generations against brute-force greedy decoding and the disjointness of
 * the validation and test samples are in test_harness.c.
 */
#include "testutil.h"

#include <math.h>
#include <signal.h>

#define LCG "./lcgbench"
#define MODEL "--task copy --layers 2 --dim 16 --heads 2 --head-dim 8 --ffn 32"
#define TINY MODEL " --len 6 --vary 2 --steps 40 --warmup 5 --batch 8 --lr 1e-2 --max-len 32 --eval-samples 10 --quiet"
#define TINY_ROWS 3 /* 8, 16, 32 */
#define VAL "--val-every 5 --val-lens 16,32 --val-samples 20 --monitor loss@32"

static tu_result R;

#define expect_usage(csv, need1, need2, ...) tu_expect_fail(&R, 2, csv, need1, need2, LCG " run " __VA_ARGS__)

START_TEST(test_bad_flags) {
    char dir[64], csv[128];
    tu_tmpdir(dir, sizeof dir);
    snprintf(csv, sizeof csv, "%s/x.csv", dir);
    static const struct {
        const char *args, *need1, *need2;
    } bad[] = {
        {"--val-every 0", "--val-every", "'0'"},
        {"--val-every -5", "--val-every", NULL},
        {"--val-every x", "--val-every", NULL},
        {"--val-every 2.5", "--val-every", NULL},
        {"--val-every 0%", "--val-every", NULL},
        {"--val-every 150%", "--val-every", NULL},
        {"--val-every 5%x", "--val-every", NULL},
        {"--val-every 41", "--val-every 41", "--steps 40"},
        {"--val-every 5 --val-lens 0", "--val-lens", NULL},
        {"--val-every 5 --val-lens 16,x", "--val-lens", NULL},
        {"--val-every 5 --val-lens ''", "--val-lens", NULL},
        {"--val-every 5 --val-samples 0", "--val-samples", NULL},
        {"--val-every 5 --val-samples abc", "--val-samples", NULL},
        {"--val-every 5 --monitor exact", "--monitor", "METRIC@LEN"},
        {"--val-every 5 --monitor acc@16", "--monitor", NULL},
        {"--val-every 5 --monitor exact@0", "--monitor", NULL},
        {"--val-every 5 --monitor exact@16x", "--monitor", NULL},
        {"--val-every 5 --monitor exact@32 --val-lens 16", "--monitor", "--val-lens"},
        {"--val-every 5 --select worst", "--select", "'worst'"},
        {"--select best", "--select best", "--val-every"},
        {"--val-lens 16", "--val-lens", "--val-every"},
        {"--val-samples 5", "--val-samples", "--val-every"},
        {"--monitor exact@16", "--monitor", "--val-every"},
        {"--log-csv", "--log-csv", NULL},
        {"--bleu-max 16", "--bleu-max", "no BLEU"},
        {"--bleu --bleu-max 0", "--bleu-max", NULL},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        expect_usage(csv, bad[i].need1, bad[i].need2, TINY " --out %s %s", csv, bad[i].args);
    expect_usage(csv, "--log-csv", "--out", TINY " --out %s --log-csv %s", csv, csv);
    /* token classification has no generations: no BLEU */
    expect_usage(csv, "--bleu", "nback", "--task nback --layers 2 --dim 16 --heads 2 --head-dim 8 --ffn 32 --len 6 "
                 "--vary 2 --steps 20 --max-len 16 --eval-samples 5 --quiet --out %s --bleu", csv);
    expect_usage(csv, "--monitor bleu", "nback", "--task nback --layers 2 --dim 16 --heads 2 --head-dim 8 --ffn 32 "
                 "--len 6 --vary 2 --steps 20 --max-len 16 --eval-samples 5 --quiet --out %s --val-every 5 "
                 "--monitor bleu@16", csv);
    tu_rm_tmpdir(dir);
}
END_TEST

/* validation leaves the training and the rows as they were */
START_TEST(test_select_last_is_today) {
    char dir[64], a[128], b[128], log[128];
    tu_tmpdir(dir, sizeof dir);
    snprintf(a, sizeof a, "%s/a.csv", dir);
    snprintf(b, sizeof b, "%s/b.csv", dir);
    snprintf(log, sizeof log, "%s/curve.csv", dir);
    tu_expect_status(&R, 0, LCG " run " TINY " --out %s", a);
    tu_expect_status(&R, 0, LCG " run " TINY " " VAL " --select last --log-csv %s --out %s", log, b);
    tu_assert_same_csv(a, b, NULL);
    tu_csv_doc d;
    tu_csv_load(b, &d);
    ck_assert_int_eq(d.rows, 1 + TINY_ROWS);
    ck_assert_str_eq(d.cell[1][tu_csv_col(&d, "checkpoint")], "last");
    ck_assert_str_eq(d.cell[1][tu_csv_col(&d, "checkpoint_step")], "40");
    tu_csv_free(&d);
    tu_rm_tmpdir(dir);
}
END_TEST

/* the step of the best (lowest loss@32, the first of equals) in the curve, and the last */
static long best_step_of(const char *log, const char *col, int lower) {
    tu_csv_doc d;
    tu_csv_load(log, &d);
    int c = tu_csv_col(&d, col), s = tu_csv_col(&d, "step");
    ck_assert_int_ge(c, 0);
    ck_assert_int_ge(s, 0);
    long best = -1, n_val = 0;
    double bv = 0;
    for (int r = 1; r < d.rows; r++) {
        if (!d.cell[r][c][0]) continue;
        double v = atof(d.cell[r][c]);
        n_val++;
        if (best < 0 || (lower ? v < bv : v > bv)) best = atol(d.cell[r][s]), bv = v;
    }
    ck_assert_int_eq(n_val, 8); /* steps 5, 10, .., 40 */
    tu_csv_free(&d);
    return best;
}

START_TEST(test_select_best_is_argmax) {
    char dir[64], csv[128], log[128], want[32];
    tu_tmpdir(dir, sizeof dir);
    snprintf(csv, sizeof csv, "%s/r.csv", dir);
    snprintf(log, sizeof log, "%s/curves/c.csv", dir);
    static const char *const mon[] = {"loss@32", "token@32"};
    for (int k = 0; k < 2; k++) {
        remove(csv);
        tu_expect_status(&R, 0, LCG " run " TINY " --val-every 5 --val-lens 16,32 --val-samples 20 --monitor %s "
                         "--select best --log-csv %s --out %s", mon[k], log, csv);
        long best = best_step_of(log, k ? "token@32" : "loss@32", k == 0);
        printf("monitor %s: best step %ld\n", mon[k], best);
        snprintf(want, sizeof want, "%ld", best);
        tu_csv_doc d;
        tu_csv_load(csv, &d);
        ck_assert_int_eq(d.rows, 1 + 2 * TINY_ROWS);
        int cc = tu_csv_col(&d, "checkpoint"), cs = tu_csv_col(&d, "checkpoint_step"), cst = tu_csv_col(&d, "steps");
        for (int r = 1; r < d.rows; r++) {
            int is_best = r > TINY_ROWS;
            ck_assert_str_eq(d.cell[r][cc], is_best ? "best" : "last");
            ck_assert_str_eq(d.cell[r][cs], is_best ? want : "40");
            ck_assert_str_eq(d.cell[r][cst], "40");
        }
        /* lcgbench table: the best checkpoint's rows stand for the run, or with --checkpoint last
           the last one's (token accuracy in distribution, the first column) */
        int ct = tu_csv_col(&d, "token_acc");
        for (int last = 0; last < 2; last++) {
            tu_expect_status(&R, 0, LCG " table --format csv --metric token %s %s", last ? "--checkpoint last" : "", csv);
            char *line = strchr(R.out, '\n');
            ck_assert_ptr_nonnull(line);
            double id;
            ck_assert_int_eq(sscanf(line + 1, "%*[^,],%*[^,],1,%lf", &id), 1);
            ck_assert_double_eq_tol(id, 100 * atof(d.cell[last ? 1 : TINY_ROWS + 1][ct]), 0.006);
        }
        tu_csv_free(&d);
    }
    tu_expect_fail(&R, 2, NULL, "--checkpoint", "'first'", LCG " table --checkpoint first %s", csv);
    tu_rm_tmpdir(dir);
}
END_TEST

/* killed (SIGKILL) after the best validation, resumed from --checkpoint-every: the same rows */
START_TEST(test_resume_keeps_best) {
    char dir[64], a[128], b[128], ck[128], log[128];
    tu_tmpdir(dir, sizeof dir);
    snprintf(a, sizeof a, "%s/a.csv", dir);
    snprintf(b, sizeof b, "%s/b.csv", dir);
    snprintf(ck, sizeof ck, "%s/m.ckpt", dir);
    snprintf(log, sizeof log, "%s/c.csv", dir);
    tu_expect_status(&R, 0, LCG " run " TINY " " VAL " --select best --log-csv %s --out %s", log, a);
    long best = best_step_of(log, "loss@32", 1);
    ck_assert_msg(best < 35, "the best step %ld is too late to interrupt after it", best);
    /* stopped (SIGSTOP by the test hook) after step 37, then killed: the checkpoint of step 35 */
    tu_run(&R, "sh -c 'LCG_TEST_STOP_AT=step:37 " LCG " run " TINY " " VAL " --select best --checkpoint-every 5 "
               "--save %s --out %s & p=$!; while ! grep -q \"^State:.*T\" /proc/$p/status 2>/dev/null; do sleep 0.05; "
               "done; kill -9 $p; wait $p; exit 0'", ck, b);
    ck_assert_msg(tu_exists(ck), "no checkpoint after the kill: %s", R.err);
    char bp[160];
    snprintf(bp, sizeof bp, "%s.best", ck);
    ck_assert_msg(tu_exists(bp), "no best checkpoint beside %s", ck);
    ck_assert_int_eq(tu_exists(b), 0);
    tu_expect_status(&R, 0, LCG " run --resume %s --quiet --eval-samples 10 --max-len 32 " VAL " --select best --out %s",
                     ck, b);
    tu_assert_same_csv(a, b, NULL);
    tu_rm_tmpdir(dir);
}
END_TEST

/* the curves at a and b: the same steps and values outside tok_s (a wall clock) */
static void assert_same_curve(const char *a, const char *b) {
    tu_csv_doc x, y;
    tu_csv_load(a, &x);
    tu_csv_load(b, &y);
    ck_assert_msg(x.rows == y.rows, "%s has %d rows, %s %d", a, x.rows, b, y.rows);
    int skip = tu_csv_col(&x, "tok_s");
    for (int r = 0; r < x.rows; r++) {
        ck_assert_int_eq(x.cols[r], y.cols[r]);
        for (int c = 0; c < x.cols[r]; c++)
            if (c != skip || r == 0)
                ck_assert_msg(strcmp(x.cell[r][c], y.cell[r][c]) == 0, "%s / %s row %d, %s: '%s' vs '%s'", a, b, r,
                              x.cell[0][c], x.cell[r][c], y.cell[r][c]);
    }
    tu_csv_free(&x);
    tu_csv_free(&y);
}

/* SIGTERM while validating the step-5 checkpoint (at its second length): the checkpoint says the
 * validation is due, and the resumed run does it before training on, as if never cut */
START_TEST(test_resume_cut_validation) {
    char dir[64], a[128], b[128], ck[128], la[128], lb[128];
    tu_tmpdir(dir, sizeof dir);
    snprintf(a, sizeof a, "%s/a.csv", dir);
    snprintf(b, sizeof b, "%s/b.csv", dir);
    snprintf(ck, sizeof ck, "%s/m.ckpt", dir);
    snprintf(la, sizeof la, "%s/ca.csv", dir);
    snprintf(lb, sizeof lb, "%s/cb.csv", dir);
    tu_expect_status(&R, 0, LCG " run " TINY " " VAL " --select best --log-csv %s --out %s", la, a);
    tu_run(&R, "sh -c 'LCG_TEST_STOP_AT=val:32 " LCG " run " TINY " " VAL " --select best --log-csv %s --save %s "
               "--out %s 2>%s/err & p=$!; while ! grep -q \"^State:.*T\" /proc/$p/status 2>/dev/null; do sleep 0.05; "
               "done; kill -TERM $p; kill -CONT $p; wait $p; echo $? > %s/rc'", lb, ck, b, dir, dir);
    char rc[16], err[4096], path[160];
    snprintf(path, sizeof path, "%s/rc", dir);
    tu_slurp(path, rc, sizeof rc);
    snprintf(path, sizeof path, "%s/err", dir);
    tu_slurp(path, err, sizeof err);
    ck_assert_msg(atoi(rc) == 128 + SIGTERM && strstr(err, "terminated at step 5/40"), "exit %s: %s", rc, err);
    ck_assert_msg(tu_exists(ck) && !tu_exists(b), "no checkpoint, or rows written: %s", err);
    tu_expect_status(&R, 0, LCG " run --resume %s --eval-samples 10 --max-len 32 " VAL " --select best --log-csv %s "
                     "--out %s", ck, lb, b);
    ck_assert_msg(strstr(R.err, "validation at step 5:"), "the resumed run did not validate step 5: %s", R.err);
    tu_assert_same_csv(a, b, NULL);
    assert_same_curve(la, lb);
    tu_rm_tmpdir(dir);
}
END_TEST

/* --stop-at 20: the run pauses after step 20 (its validation done) with the resumable checkpoint
 * and no rows; again with --stop-at it trains nothing; resumed without it, the rows and curve of
 * the run never paused. A sweep the same: no rows paused, then the uninterrupted rows. */
START_TEST(test_stop_at) {
    char dir[64], a[128], b[128], c[128], ck[128], la[128], lb[128];
    tu_tmpdir(dir, sizeof dir);
    snprintf(a, sizeof a, "%s/a.csv", dir);
    snprintf(b, sizeof b, "%s/b.csv", dir);
    snprintf(c, sizeof c, "%s/c.csv", dir);
    snprintf(ck, sizeof ck, "%s/m.ckpt", dir);
    snprintf(la, sizeof la, "%s/ca.csv", dir);
    snprintf(lb, sizeof lb, "%s/cb.csv", dir);
    tu_expect_status(&R, 0, LCG " run " TINY " " VAL " --select best --log-csv %s --out %s", la, a);
    tu_expect_status(&R, 0, LCG " run " TINY " " VAL " --select best --log-csv %s --save %s --stop-at 20 --out %s", lb,
                     ck, b);
    ck_assert_msg(strstr(R.err, "paused at step 20/40 (--stop-at 20)") && strstr(R.err, "continue with 'lcgbench run --resume"),
                  "%s", R.err);
    ck_assert_msg(tu_exists(ck) && !tu_exists(b), "no checkpoint, or rows written: %s", R.err);
    tu_expect_status(&R, 0, LCG " run --resume %s --eval-samples 10 --max-len 32 " VAL " --select best --log-csv %s "
                     "--stop-at 10 --out %s", ck, lb, b);
    ck_assert_msg(strstr(R.err, "paused at step 20/40 (--stop-at 10)") && !tu_exists(b), "%s", R.err);
    tu_expect_status(&R, 0, LCG " run --resume %s --eval-samples 10 --max-len 32 " VAL " --select best --log-csv %s "
                     "--out %s", ck, lb, b);
    tu_assert_same_csv(a, b, NULL);
    assert_same_curve(la, lb);
    tu_expect_status(&R, 0, LCG " sweep " TINY " " VAL " --select best --stop-at 30 --out %s", c);
    ck_assert_msg(strstr(R.err, "paused at step 30/40") && !tu_exists(c), "%s", R.err);
    tu_expect_status(&R, 0, LCG " sweep " TINY " " VAL " --select best --out %s", c);
    ck_assert_msg(strstr(R.err, "continuing from"), "the sweep started afresh: %s", R.err);
    tu_assert_same_csv(a, c, NULL);
    snprintf(b, sizeof b, "%s/x.csv", dir);
    tu_expect_fail(&R, 2, b, "--stop-at 41", "--steps 40", LCG " run " TINY " --stop-at 41 --out %s", b);
    tu_expect_fail(&R, 2, b, "--stop-at", "'0'", LCG " run " TINY " --stop-at 0 --out %s", b);
    tu_expect_fail(&R, 2, b, "--stop-at", "--load", LCG " run --load %s --stop-at 5 --out %s", ck, b);
    tu_rm_tmpdir(dir);
}
END_TEST

/* --select best --last-max 16: the last checkpoint at 8 and 16 only, the best at 8, 16 and 32, every
 * row the full run's; a sweep's shards with it merge; bad uses are one-line usage errors */
START_TEST(test_last_max) {
    char dir[64], a[128], b[128], want[160], s1[128], s2[128], m[128];
    tu_tmpdir(dir, sizeof dir);
    snprintf(a, sizeof a, "%s/a.csv", dir);
    snprintf(b, sizeof b, "%s/b.csv", dir);
    snprintf(want, sizeof want, "%s/want.csv", dir);
    tu_expect_status(&R, 0, LCG " run " TINY " " VAL " --select best --out %s", a);
    tu_expect_status(&R, 0, LCG " run " TINY " " VAL " --select best --last-max 16 --out %s", b);
    /* a without its last checkpoint's row at 32 (a line of its own: no field holds a newline) */
    tu_csv_doc d;
    tu_csv_load(a, &d);
    int cc = tu_csv_col(&d, "checkpoint"), cl = tu_csv_col(&d, "eval_len"), drop = -1;
    for (int r = 1; r < d.rows; r++)
        if (strcmp(d.cell[r][cc], "last") == 0 && strcmp(d.cell[r][cl], "32") == 0) drop = r;
    ck_assert_int_eq(d.rows, 1 + 2 * TINY_ROWS);
    tu_csv_free(&d);
    ck_assert_int_ge(drop, 1);
    char *text = tu_read_all(a, NULL);
    FILE *f = fopen(want, "w");
    ck_assert_ptr_nonnull(f);
    int line = 0;
    for (char *p = text, *nl; *p; p = nl + 1, line++) {
        nl = strchr(p, '\n');
        ck_assert_ptr_nonnull(nl);
        if (line != drop) fwrite(p, 1, (size_t)(nl - p + 1), f);
    }
    ck_assert_int_eq(fclose(f), 0);
    free(text);
    tu_assert_same_csv(want, b, NULL);
    /* shards of a two-seed sweep, merged */
    snprintf(s1, sizeof s1, "%s/s1.csv", dir);
    snprintf(s2, sizeof s2, "%s/s2.csv", dir);
    snprintf(m, sizeof m, "%s/m.csv", dir);
    for (int k = 1; k <= 2; k++)
        tu_expect_status(&R, 0, LCG " sweep " TINY " " VAL " --select best --last-max 16 --seed 1,2 --shard %d/2 --out %s", k,
                         k == 1 ? s1 : s2);
    tu_expect_status(&R, 0, LCG " merge " TINY " " VAL " --select best --last-max 16 --seed 1,2 --out %s %s %s", m, s1, s2);
    text = tu_read_all(m, NULL);
    ck_assert_int_eq(tu_count_lines(text), 1 + 2 * 5); /* 2 runs x (2 last + 3 best rows) */
    free(text);
    /* bad uses */
    snprintf(m, sizeof m, "%s/none.csv", dir);
    tu_expect_fail(&R, 2, m, "--last-max needs --select best", NULL, LCG " run " TINY " --last-max 16 --out %s", m);
    tu_expect_fail(&R, 2, m, "--last-max 4 is below the test ladder's first length 8", NULL,
                   LCG " run " TINY " " VAL " --select best --last-max 4 --out %s", m);
    tu_rm_tmpdir(dir);
}
END_TEST

/* a sweep's cells each keep their curve: {run_id} in --log-csv names the cell; cells that would
 * share a file (also cells differing only in flags the name leaves out) are a one-line usage
 * error before any work */
START_TEST(test_sweep_curves) {
    char dir[64], csv[128], grid[128];
    tu_tmpdir(dir, sizeof dir);
    snprintf(csv, sizeof csv, "%s/s.csv", dir);
    tu_expect_fail(&R, 2, csv, "--log-csv", "{run_id}", LCG " sweep " TINY " --seed 1,2 --log-csv %s/c.csv --out %s", dir, csv);
    snprintf(grid, sizeof grid, "%s/g.txt", dir);
    static const char g[] = "task = copy\n[plain]\nseed = 1\n[frozen]\nseed = 1\nargs = --freeze-token0\n";
    tu_write_all(grid, g, strlen(g));
    static const char *const tiny_no_task = &TINY[sizeof "--task copy"]; /* the grid names the task */
    tu_expect_fail(&R, 2, csv, "cells 1 (copy seed 1) and 2 (copy seed 1) would write the same training curve", "{run_id}",
                   LCG " sweep %s --grid %s --log-csv '%s/{task}-{attn}-{pos}-s{seed}.csv' --out %s", tiny_no_task, grid,
                   dir, csv);
    tu_expect_status(&R, 0, LCG " sweep " TINY " --seed 1,2 --log-csv %s/curves/{run_id}.csv --out %s", dir, csv);
    char *ids = tu_csv_column(csv, "run_id");
    for (char *save = NULL, *id = strtok_r(ids, "\n", &save); id; id = strtok_r(NULL, "\n", &save)) {
        char path[256];
        snprintf(path, sizeof path, "%s/curves/%s.csv", dir, id);
        ck_assert_msg(tu_exists(path), "no curve %s for run %s", path, id);
    }
    free(ids);
    tu_rm_tmpdir(dir);
}
END_TEST

/* a run never overwrites what --log-csv names unless it is its own curve (or a header alone):
 * another run's curve, or a file that is no curve, is a one-line error before any work, and the
 * file is left as it was */
START_TEST(test_curve_not_overwritten) {
    char dir[64], csv[128], log[128], before[8192], after[8192];
    tu_tmpdir(dir, sizeof dir);
    snprintf(csv, sizeof csv, "%s/r.csv", dir);
    snprintf(log, sizeof log, "%s/c.csv", dir);
    tu_expect_status(&R, 0, LCG " run " TINY " --log-csv %s --out %s", log, csv);
    tu_slurp(log, before, sizeof before);
    ck_assert_msg(strncmp(before, "run_id,step,", 12) == 0, "curve header: %.40s", before);
    remove(csv);
    tu_expect_fail(&R, 2, csv, "another run's training curve", "{run_id}", LCG " run " TINY " --seed 2 --log-csv %s --out %s",
                   log, csv);
    tu_slurp(log, after, sizeof after);
    ck_assert_str_eq(before, after);
    tu_expect_status(&R, 0, LCG " run " TINY " --log-csv %s --out %s", log, csv); /* its own: written again */
    tu_slurp(log, after, sizeof after);
    ck_assert_int_eq(tu_count_lines(after), tu_count_lines(before));
    remove(csv);
    static const char mine[] = "step,loss\n1,2\n";
    tu_write_all(log, mine, strlen(mine));
    tu_expect_fail(&R, 2, csv, "not an lcgbench training curve", log, LCG " run " TINY " --log-csv %s --out %s", log, csv);
    tu_slurp(log, after, sizeof after);
    ck_assert_str_eq(after, mine);
    tu_rm_tmpdir(dir);
}
END_TEST

START_TEST(test_bleu_column) {
    char dir[64], csv[128];
    tu_tmpdir(dir, sizeof dir);
    snprintf(csv, sizeof csv, "%s/r.csv", dir);
    tu_expect_status(&R, 0, LCG " run " TINY " --out %s", csv);
    tu_expect_status(&R, 0, LCG " run " TINY " --seed 2 --bleu --out %s", csv);
    tu_expect_status(&R, 0, LCG " run --task sort --layers 2 --dim 16 --heads 2 --head-dim 8 --ffn 32 --len 6 --vary 2 "
                     "--steps 40 --warmup 5 --batch 8 --max-len 32 --eval-samples 10 --quiet --out %s", csv);
    tu_csv_doc d;
    tu_csv_load(csv, &d);
    ck_assert_int_eq(d.rows, 1 + 3 * TINY_ROWS);
    int c = tu_csv_col(&d, "bleu");
    for (int r = 1; r < d.rows; r++) {
        const char *v = d.cell[r][c];
        if (r <= TINY_ROWS) ck_assert_str_eq(v, "");
        else ck_assert_msg(v[0] && atof(v) >= 0 && atof(v) <= 1, "row %d: bleu '%s'", r, v);
    }
    tu_csv_free(&d);
    /* the greedy generations, hence BLEU, do not depend on the thread count */
    char a[128], b[128];
    snprintf(a, sizeof a, "%s/t1.csv", dir);
    snprintf(b, sizeof b, "%s/t2.csv", dir);
    for (int t = 1; t <= 2; t++)
        tu_expect_status(&R, 0, "OMP_NUM_THREADS=%d " LCG " run --task sort --layers 2 --dim 16 --heads 2 --head-dim 8 "
                         "--ffn 32 --len 6 --vary 2 --steps 40 --warmup 5 --batch 8 --max-len 32 --eval-samples 1 "
                         "--eval-lens 8,32 --quiet --out %s", t, t == 1 ? a : b);
    tu_assert_same_csv(a, b, NULL);
    /* --bleu-max 16: bleu at 8 and 16 as without it, empty at 32; the rest of the rows the same */
    snprintf(a, sizeof a, "%s/m.csv", dir);
    tu_expect_status(&R, 0, LCG " run --task sort --layers 2 --dim 16 --heads 2 --head-dim 8 --ffn 32 --len 6 --vary 2 "
                     "--steps 40 --warmup 5 --batch 8 --max-len 32 --eval-samples 10 --quiet --bleu-max 16 --out %s", a);
    tu_csv_load(csv, &d);
    tu_csv_doc m;
    tu_csv_load(a, &m);
    ck_assert_int_eq(m.rows, 1 + TINY_ROWS);
    for (int r = 1; r < m.rows; r++)
        for (int k = 0; k < m.cols[0]; k++) {
            const char *h = m.cell[0][k], *want = d.cell[2 * TINY_ROWS + r][k];
            if (strncmp(h, "wall_", 5) == 0 || strcmp(h, "run_at") == 0 || strcmp(h, "seconds") == 0) continue;
            if (strcmp(h, "bleu") == 0 && r == TINY_ROWS) want = "";
            ck_assert_msg(strcmp(m.cell[r][k], want) == 0, "--bleu-max 16, row %d, %s: '%s', expected '%s'", r, h,
                          m.cell[r][k], want);
        }
    tu_csv_free(&m);
    tu_csv_free(&d);
    tu_rm_tmpdir(dir);
}
END_TEST

int main(void) {
    if (access(LCG, X_OK) != 0) {
        fprintf(stderr, "test_val: %s not found; run from the repository root after 'make lcgbench'\n", LCG);
        return 1;
    }
    Suite *s = suite_create("val");
    TCase *tc = tcase_create("val");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, test_bad_flags);
    tcase_add_test(tc, test_select_last_is_today);
    tcase_add_test(tc, test_select_best_is_argmax);
    tcase_add_test(tc, test_resume_keeps_best);
    tcase_add_test(tc, test_resume_cut_validation);
    tcase_add_test(tc, test_stop_at);
    tcase_add_test(tc, test_bleu_column);
    tcase_add_test(tc, test_sweep_curves);
    tcase_add_test(tc, test_curve_not_overwritten);
    tcase_add_test(tc, test_last_max);
    suite_add_tcase(s, tc);
    return tu_run_suite(s);
}
