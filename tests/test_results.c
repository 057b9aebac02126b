/*
 * test_results.c: the commands that turn runs into results, end to end through ./lcgbench on
 * tiny configurations: --preset (values reach the CSV, flags override them), --eval-tokens,
 * `sweep` (grid files and their errors, every cell checked before work, skipping finished
 * cells and resuming to the same rows), `table` (numbers recomputed here from the CSV, the
 * layouts, --against with the committed paper results' counts) and `regress` (pass on itself,
 * fail on a dropped or missing row); the device columns (a schema-1 file from before them is
 * read, and upgraded in place by an append) and the errors of --device and --precision on the
 * CPU.
 *
 * Does not cover: whether the presets reach their accuracy targets (results/mini/ records
 * that), distributed sweeps (test_sweep), or the gnuplot scripts' pictures.
 */
#include "testutil.h"

#include <math.h>

#define LCG "./lcgbench"
#define TINY_NO_EVAL "--layers 1 --dim 16 --heads 2 --head-dim 8 --ffn 32 --steps 15 --warmup 3 --batch 8 " \
                     "--len 6 --vary 2 --max-len 32 --quiet"
#define TINY TINY_NO_EVAL " --eval-samples 6"
#define TINY_ROWS 3 /* ladder 8, 16, 32 */

static tu_result R;

/* a usage error (exit 2, one stderr line naming need); any exit status */
#define expect_usage(need, ...) tu_expect_fail(&R, 2, NULL, need, NULL, LCG " " __VA_ARGS__)
#define expect_status(want, ...) tu_expect_status(&R, want, __VA_ARGS__)

static const char *cell(tu_csv_doc *d, int row, const char *col) {
    int c = tu_csv_col(d, col);
    ck_assert_msg(c >= 0, "no column %s", col);
    return d->cell[row][c];
}

/* ---- presets --------------------------------------------------------------------------------- */
START_TEST(test_preset_values_and_overrides) {
    char dir[64], csv[128];
    tu_tmpdir(dir, sizeof dir);
    snprintf(csv, sizeof csv, "%s/p.csv", dir);
    /* ci preset (for every task) with the expensive parts overridden */
    expect_status(0, LCG " run --preset ci --task flip-flop --steps 7 --eval-samples 5 --max-len 48 --quiet --out %s", csv);
    tu_csv_doc d;
    tu_csv_load(csv, &d);
    ck_assert_int_eq(d.rows, 1 + 2); /* ladder 24, 48 (flip-flop's default length 16 +- 8) */
    ck_assert_str_eq(cell(&d, 1, "dim"), "64");      /* from the preset */
    ck_assert_str_eq(cell(&d, 1, "pos"), "nape");    /* from the preset */
    ck_assert_str_eq(cell(&d, 1, "lr"), "0.003");    /* from the preset */
    ck_assert_str_eq(cell(&d, 1, "steps"), "7");     /* the flag wins */
    ck_assert_str_eq(cell(&d, 1, "samples"), "5");   /* the flag wins */
    tu_csv_free(&d);
    /* a task's own preset entry beats the every-task entry: mini's reverse has 4 layers */
    expect_status(0, LCG " run --preset mini --task reverse --steps 2 --eval-samples 2 --max-len 24 --dim 16 "
                        "--ffn 16 --quiet --out %s/r.csv", dir);
    snprintf(csv, sizeof csv, "%s/r.csv", dir);
    tu_csv_load(csv, &d);
    ck_assert_str_eq(cell(&d, 1, "layers"), "4");
    ck_assert_str_eq(cell(&d, 1, "dim"), "16");
    tu_csv_free(&d);
    expect_usage("unknown preset 'huge'", "run --preset huge");
    /* a preset with a base: gpu's own settings first (steps), then paper's (architecture) */
    expect_status(0, LCG " run --preset gpu --task sort --steps 2 --warmup 1 --val-every 1 --val-samples 2 --monitor "
                        "exact@16 --batch 2 --len 6 --vary 2 --eval-samples 2 --max-len 12 --dim 16 --ffn 16 --heads 2 "
                        "--head-dim 8 --quiet --out %s/g.csv", dir);
    snprintf(csv, sizeof csv, "%s/g.csv", dir);
    tu_csv_load(csv, &d);
    ck_assert_str_eq(cell(&d, 1, "lr"), "0.0004");  /* paper's sort */
    ck_assert_str_eq(cell(&d, 1, "layers"), "2");   /* paper's every task */
    ck_assert_str_eq(cell(&d, 1, "pos"), "nape");
    tu_csv_free(&d);
    /* laptop on mini: its own step count and frozen token 0, then mini's architecture and lr */
    expect_status(0, LCG " run --preset laptop --task reverse --steps 2 --eval-samples 2 --max-len 24 --dim 16 "
                        "--ffn 16 --quiet --out %s/l.csv", dir);
    snprintf(csv, sizeof csv, "%s/l.csv", dir);
    tu_csv_load(csv, &d);
    ck_assert_str_eq(cell(&d, 1, "layers"), "4");                              /* mini's reverse */
    ck_assert_str_eq(cell(&d, 1, "lr"), "0.003");                              /* mini's every task */
    ck_assert_ptr_nonnull(strstr(cell(&d, 1, "task_params"), "freeze-token0=1")); /* laptop's */
    tu_csv_free(&d);
    tu_rm_tmpdir(dir);
}
END_TEST

START_TEST(test_preset_help_lists_every_task) {
    expect_status(0, LCG " help presets");
    ck_assert_ptr_nonnull(strstr(R.out, "paper:"));
    ck_assert_ptr_nonnull(strstr(R.out, "mini:"));
    ck_assert_ptr_nonnull(strstr(R.out, "ci:"));
    ck_assert_ptr_nonnull(strstr(R.out, "steps=390625")); /* paper mqmtar, spec §3.2 */
    ck_assert_ptr_nonnull(strstr(R.out, "gpu:"));
    ck_assert_ptr_nonnull(strstr(R.out, "laptop:"));
    ck_assert_ptr_nonnull(strstr(R.out, "steps=10000;freeze-token0=1;pos=nape;layers=2;dim=64")); /* on mini */
    ck_assert_ptr_nonnull(strstr(R.out, "steps=58594;warmup=2500")); /* gpu mqmtar: 15% of the paper's */
}
END_TEST

/* --eval-tokens caps the samples of long rungs at tokens/len, but not below --eval-min */
START_TEST(test_eval_tokens) {
    char dir[64], csv[128];
    tu_tmpdir(dir, sizeof dir);
    snprintf(csv, sizeof csv, "%s/e.csv", dir);
    expect_status(0, LCG " run --task copy " TINY_NO_EVAL " --eval-samples 10 --eval-tokens 64 --eval-min 3 --out %s", csv);
    char *s = tu_csv_column(csv, "samples");
    ck_assert_str_eq(s, "8\n4\n3\n"); /* lengths 8, 16, 32: 64/8, 64/16, 64/32 = 2 raised to 3 */
    free(s);
    tu_rm_tmpdir(dir);
}
END_TEST

/* ---- sweep ----------------------------------------------------------------------------------- */
START_TEST(test_sweep_grid_and_resume) {
    char dir[64], grid[128], a[128], b[128];
    tu_tmpdir(dir, sizeof dir);
    snprintf(grid, sizeof grid, "%s/g.txt", dir);
    const char *text = "# two sections\nargs = " TINY "\n[one]\ntask = copy\nattn = softmax, asentmax\npos = nape\n"
                       "seed = 1 2\n[two]\ntask = flip-flop\nattn = entmax\nseed = 3\n";
    tu_write_all(grid, text, strlen(text));
    snprintf(a, sizeof a, "%s/a.csv", dir);
    snprintf(b, sizeof b, "%s/b.csv", dir);
    expect_status(0, LCG " sweep --grid %s --out %s", grid, a);
    tu_csv_doc d;
    tu_csv_load(a, &d);
    ck_assert_int_eq(d.rows, 1 + 5 * TINY_ROWS);
    /* grid order: section, task, attn, pos, seed */
    const char *want[5][3] = {{"copy", "softmax", "1"}, {"copy", "softmax", "2"}, {"copy", "asentmax", "1"},
                              {"copy", "asentmax", "2"}, {"flip-flop", "entmax", "3"}};
    for (int k = 0; k < 5; k++) {
        ck_assert_str_eq(cell(&d, 1 + k * TINY_ROWS, "task"), want[k][0]);
        ck_assert_str_eq(cell(&d, 1 + k * TINY_ROWS, "attn"), want[k][1]);
        ck_assert_str_eq(cell(&d, 1 + k * TINY_ROWS, "seed"), want[k][2]);
    }
    ck_assert_str_eq(cell(&d, 1, "pos"), "nape");
    ck_assert_str_eq(cell(&d, 1 + 4 * TINY_ROWS, "pos"), "rope"); /* section two: the run default */
    tu_csv_free(&d);
    /* a second sweep finds everything done and writes nothing */
    char *before = tu_read_all(a, NULL);
    expect_status(0, LCG " sweep --grid %s --out %s", grid, a);
    ck_assert_ptr_nonnull(strstr(R.err, "5 cells, 5 already in"));
    char *after = tu_read_all(a, NULL);
    ck_assert_str_eq(before, after);
    free(after);
    /* an interrupted sweep: the file holds the first two runs only; resuming completes it
     * to the same rows as the uninterrupted sweep */
    size_t keep = 0;
    for (int lines = 0; lines < 1 + 2 * TINY_ROWS; keep++) lines += before[keep] == '\n';
    tu_write_all(b, before, keep);
    expect_status(0, LCG " sweep --grid %s --out %s", grid, b);
    ck_assert_ptr_nonnull(strstr(R.err, "5 cells, 2 already in"));
    tu_assert_same_csv(a, b, NULL);
    free(before);
    /* --dry-run lists without running */
    expect_status(0, LCG " sweep --grid %s --out %s/c.csv --dry-run", grid, dir);
    ck_assert_int_eq(tu_count_lines(R.out), 5);
    ck_assert_ptr_nonnull(strstr(R.out, "todo"));
    char c[160];
    snprintf(c, sizeof c, "%s/c.csv", dir);
    ck_assert(!tu_exists(c));
    tu_rm_tmpdir(dir);
}
END_TEST

START_TEST(test_sweep_bad_input) {
    char dir[64], g[128];
    tu_tmpdir(dir, sizeof dir);
    snprintf(g, sizeof g, "%s/g.txt", dir);
    struct {
        const char *text, *need;
    } bad[] = {
        {"task = copy\ncolour = red\n", "g.txt:2: unknown key 'colour'"},
        {"task copy\n", "g.txt:1: expected 'key = values'"},
        {"[open\ntask = copy\n", "g.txt:1: expected '[name]'"},
        {"task =\n", "g.txt:1: 'task' has no value"},
        {"# nothing\n", "defines no cells"},
        {"task = copy\nattn = softmax softmax\n", "are the same run"},
        {"task = copy\nattn = softmux\n", "cell 1 (copy softmux): --attn: unknown normalizer 'softmux'"},
        {"task = copy\nargs = --lr -1\n", "cell 1 (copy): --lr must be in"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        tu_write_all(g, bad[i].text, strlen(bad[i].text));
        expect_usage(bad[i].need, "sweep --grid %s " TINY " --out %s/x.csv", g, dir);
    }
    expect_usage("cannot read", "sweep --grid %s/missing.txt", dir);
    expect_usage("--task cannot be combined with --grid", "sweep --grid %s --task copy", g);
    expect_usage("--save is per run", "sweep --task copy --save m.ckpt");
    expect_usage("--task given twice", "sweep --task copy --task sort");
    /* nothing ran: no CSV */
    char x[128];
    snprintf(x, sizeof x, "%s/x.csv", dir);
    ck_assert(!tu_exists(x));
    tu_rm_tmpdir(dir);
}
END_TEST

/* ---- table ----------------------------------------------------------------------------------- */
START_TEST(test_table_numbers) {
    char dir[64], csv[128];
    tu_tmpdir(dir, sizeof dir);
    snprintf(csv, sizeof csv, "%s/t.csv", dir);
    /* flip-flop learns a little in 15 steps, so seeds differ */
    expect_status(0, LCG " sweep --task flip-flop,copy --attn softmax,entmax --seed 1,2,3 " TINY " --out %s", csv);
    /* recompute mean and std over seeds of exact_match for flip-flop/entmax at factor 2 */
    tu_csv_doc d;
    tu_csv_load(csv, &d);
    double v[3];
    int n = 0;
    for (int r = 1; r < d.rows; r++)
        if (strcmp(cell(&d, r, "task"), "flip-flop") == 0 && strcmp(cell(&d, r, "attn"), "entmax") == 0 &&
            strcmp(cell(&d, r, "factor"), "2") == 0)
            v[n++] = 100 * atof(cell(&d, r, "exact_match"));
    ck_assert_int_eq(n, 3);
    tu_csv_free(&d);
    double mean = (v[0] + v[1] + v[2]) / 3, sd = 0;
    for (int k = 0; k < 3; k++) sd += (v[k] - mean) * (v[k] - mean);
    sd = sqrt(sd / 2);
    expect_status(0, LCG " table --format csv %s", csv);
    ck_assert_msg(strncmp(R.out, "task,method,seeds,ID,ID_std,2x,2x_std,4x,4x_std\n", 48) == 0, "header: %s", R.out);
    char want[128];
    snprintf(want, sizeof want, "\nflip-flop,entmax/rope,3,");
    char *row = strstr(R.out, want);
    ck_assert_msg(row != NULL, "no flip-flop entmax row: %s", R.out);
    double got_id, got_id_sd, got2, got2_sd;
    ck_assert_int_eq(sscanf(row + strlen(want), "%lf,%lf,%lf,%lf", &got_id, &got_id_sd, &got2, &got2_sd), 4);
    ck_assert_double_eq_tol(got2, mean, 0.006);
    ck_assert_double_eq_tol(got2_sd, sd, 0.006);
    ck_assert_int_eq(tu_count_lines(R.out), 1 + 4); /* 2 tasks x 2 methods */
    /* rows in the order of first mention: flip-flop before copy */
    char *ff = strstr(R.out, "flip-flop,softmax"), *cp = strstr(R.out, "copy,softmax");
    ck_assert_msg(ff && cp && ff < cp, "flip-flop should come first: %s", R.out);
    /* Markdown and LaTeX carry the same layout */
    expect_status(0, LCG " table %s", csv);
    ck_assert_ptr_nonnull(strstr(R.out, "| task | method | seeds | ID | 2× | 4× |"));
    expect_status(0, LCG " table --format latex %s", csv);
    ck_assert_ptr_nonnull(strstr(R.out, "\\begin{tabular}{llrrr}"));
    ck_assert_ptr_nonnull(strstr(R.out, "\\end{tabular}"));
    /* plot data: one file per task, a block per method */
    expect_status(0, LCG " table --format dat --out %s/plots %s", dir, csv);
    char dat[160];
    snprintf(dat, sizeof dat, "%s/plots/copy.dat", dir);
    char *text = tu_read_all(dat, NULL);
    ck_assert_ptr_nonnull(text);
    ck_assert_ptr_nonnull(strstr(text, "\"softmax/rope\""));
    ck_assert_ptr_nonnull(strstr(text, "\n\n\n\"entmax/rope\""));
    free(text);
    /* methods that differ in a setting beyond attn/pos are labelled with it: a task parameter
     * only where it is not everywhere (the plain run beside its variant keeps its label); any
     * other setting on both */
    expect_status(0, LCG " sweep --task copy --attn softmax --seed 1 " TINY " --freeze-token0 --out %s", csv);
    expect_status(0, LCG " sweep --task copy --attn entmax --seed 1 " TINY " --steps 16 --out %s", csv);
    expect_status(0, LCG " table --format csv %s", csv);
    ck_assert_msg(strstr(R.out, "\ncopy,softmax/rope,3,") && strstr(R.out, "\ncopy,softmax/rope freeze-token0=1,1,") &&
                      strstr(R.out, "\ncopy,entmax/rope steps=15,3,") && strstr(R.out, "\ncopy,entmax/rope steps=16,1,"),
                  "labels: %s", R.out);
    /* a plain run that differs from both in steps: each pair's difference named on both sides */
    expect_status(0, LCG " sweep --task copy --attn softmax --seed 1 " TINY " --steps 16 --out %s", csv);
    expect_status(0, LCG " table --format csv %s", csv);
    ck_assert_msg(strstr(R.out, "\ncopy,softmax/rope steps=15,3,") &&
                      strstr(R.out, "\ncopy,softmax/rope freeze-token0=1 steps=15,1,") &&
                      strstr(R.out, "\ncopy,softmax/rope steps=16,1,"),
                  "three labels: %s", R.out);
    /* bad input */
    expect_usage("--format must be", "table --format xls %s", csv);
    expect_usage("no result CSV given", "table");
    expect_usage("--format dat needs --out", "table --format dat %s", csv);
    expect_status(1, LCG " table %s/none.csv", dir);
    ck_assert_ptr_nonnull(strstr(R.err, "cannot read"));
    tu_rm_tmpdir(dir);
}
END_TEST

/* --against: the reference beside ours, misses in bold, the counts (each reference cell by the
 * matching method trained longest); the committed paper results' counts (the README's 26 and 30
 * of 42) recomputed from their CSV */
START_TEST(test_table_against) {
    char dir[64], csv[128], ref[128];
    tu_tmpdir(dir, sizeof dir);
    snprintf(csv, sizeof csv, "%s/t.csv", dir);
    snprintf(ref, sizeof ref, "%s/ref.csv", dir);
    expect_status(0, LCG " sweep --task copy --attn softmax --seed 1 " TINY " --out %s", csv);
    tu_csv_doc d;
    tu_csv_load(csv, &d);
    double id = NAN, x2 = NAN;
    for (int r = 1; r < d.rows; r++) {
        if (strcmp(cell(&d, r, "factor"), "1") == 0) id = 100 * atof(cell(&d, r, "exact_match"));
        if (strcmp(cell(&d, r, "factor"), "2") == 0) x2 = 100 * atof(cell(&d, r, "exact_match"));
    }
    tu_csv_free(&d);
    ck_assert(!isnan(id) && !isnan(x2));
    /* ID 3 points off (within 5), 2x 10 points off (a miss), 64x not measured, another method absent */
    double ref_id = id <= 50 ? id + 3 : id - 3, ref_x2 = x2 <= 50 ? x2 + 10 : x2 - 10;
    char text[512];
    snprintf(text, sizeof text, "# a comment\ntask,attn,pos,factor,exact\ncopy,softmax,rope,1,%g\ncopy,softmax,rope,2,%g\n"
             "copy,softmax,rope,64,50\nsort,asentmax,nape,2,100\n", ref_id, ref_x2);
    tu_write_all(ref, text, strlen(text));
    expect_status(0, LCG " table --against %s %s", ref, csv);
    char want[160];
    snprintf(want, sizeof want, "| copy | softmax/rope | 1 | %.1f [%g] | **%.1f** [%g] |", id, ref_id, x2, ref_x2);
    ck_assert_msg(strstr(R.out, want), "want '%s' in:\n%s", want, R.out);
    ck_assert_msg(strstr(R.out, "- copy softmax/rope: 1 of 2;"), "per method: %s", R.out);
    ck_assert_msg(strstr(R.out, "1 of 2 within ±5 points (50%): copy 1 of 2; 2 of the reference's 4 cells not measured."), "total: %s",
                  R.out);
    expect_status(0, LCG " table --against %s --tolerance 2 %s", ref, csv);
    ck_assert_msg(strstr(R.out, "0 of 2 within ±2 points (0%)"), "tolerance 2: %s", R.out);
    /* bad input: one line each */
    expect_usage("--against writes Markdown only", "table --format csv --against %s %s", ref, csv);
    expect_usage("--tolerance must be", "table --against %s --tolerance -1 %s", ref, csv);
    expect_status(1, LCG " table --against %s/none.csv %s", dir, csv);
    ck_assert_ptr_nonnull(strstr(R.err, "cannot open"));
    snprintf(text, sizeof text, "task,attn,pos,factor,exact\ncopy,softmax,rope,1,100\ncopy,softmax,rope,two,100\n");
    tu_write_all(ref, text, strlen(text));
    tu_expect_fail(&R, 1, NULL, "ref.csv:3", "factor", LCG " table --against %s %s", ref, csv);
    snprintf(text, sizeof text, "copy,softmax,rope,1,101\n");
    tu_write_all(ref, text, strlen(text));
    tu_expect_fail(&R, 1, NULL, "ref.csv:1", "exact", LCG " table --against %s %s", ref, csv);
    tu_rm_tmpdir(dir);
    /* the committed results (results/paper/README.md's counts) */
    expect_status(0, LCG " table --against results/paper/reference.csv results/paper/paper.csv");
    ck_assert_msg(strstr(R.out, "26 of 42 within ±5 points (62%): sort 7 of 8, reverse 3 of 10, copy 8 of 14, mqmtar 8 of 10.\n"), "best: %s", R.out);
    ck_assert_ptr_nonnull(strstr(R.out, "| **79.4** [96.1] |"));
    ck_assert_ptr_nonnull(strstr(R.out, "- copy asentmax/nape steps=156250: 7 of 7\n"));
    expect_status(0, LCG " table --checkpoint last --against results/paper/reference.csv results/paper/paper.csv");
    ck_assert_msg(strstr(R.out, "30 of 42 within ±5 points (71%): sort 7 of 8, reverse 7 of 10, copy 8 of 14, mqmtar 8 of 10.\n"), "last: %s", R.out);
}
END_TEST

/* ---- regress --------------------------------------------------------------------------------- */
START_TEST(test_regress) {
    char dir[64], base[128], cur[128];
    tu_tmpdir(dir, sizeof dir);
    snprintf(base, sizeof base, "%s/base.csv", dir);
    snprintf(cur, sizeof cur, "%s/cur.csv", dir);
    expect_status(0, LCG " sweep --task flip-flop --attn softmax --seed 1,2 " TINY_NO_EVAL " --eval-samples 30 --out %s", base);
    expect_status(0, LCG " regress --baseline %s %s", base, base);
    ck_assert_ptr_nonnull(strstr(R.err, "0 regressed or missing"));
    /* the same runs again (deterministic): still fine */
    expect_status(0, LCG " sweep --task flip-flop --attn softmax --seed 1,2 " TINY_NO_EVAL " --eval-samples 30 --out %s", cur);
    expect_status(0, LCG " regress --baseline %s %s", base, cur);
    /* lower one row's exact match below its interval: fails naming it */
    tu_csv_doc d;
    tu_csv_load(base, &d);
    int c_ex = tu_csv_col(&d, "exact_match"), c_lo = tu_csv_col(&d, "exact_lo");
    size_t len = 0;
    char *text = NULL;
    FILE *f = open_memstream(&text, &len);
    int changed = 0;
    for (int r = 0; r < d.rows; r++) {
        if (r > 0 && !changed && atof(d.cell[r][c_lo]) > 0) { /* a row the drop can fall below */
            free(d.cell[r][c_ex]);
            d.cell[r][c_ex] = strdup("0.000000");
            changed = r;
        }
        for (int c = 0; c < d.cols[r]; c++) fprintf(f, "%s%s", c ? "," : "", d.cell[r][c]);
        fputc('\n', f);
    }
    fclose(f);
    ck_assert_msg(changed, "no baseline row with a positive lower bound to test against");
    tu_write_all(cur, text, len);
    free(text);
    expect_status(1, LCG " regress --baseline %s %s", base, cur);
    ck_assert_ptr_nonnull(strstr(R.out, "REGRESSED"));
    /* a missing row fails too */
    text = tu_read_all(base, &len);
    char *last = text + len - 2;
    while (*last != '\n') last--;
    tu_write_all(cur, text, (size_t)(last - text) + 1);
    free(text);
    expect_status(1, LCG " regress --baseline %s %s", base, cur);
    ck_assert_ptr_nonnull(strstr(R.out, "MISSING"));
    tu_csv_free(&d);
    expect_status(2, LCG " regress %s", cur);
    expect_status(2, LCG " regress --baseline %s/none.csv %s", dir, cur);
    tu_rm_tmpdir(dir);
}
END_TEST

/* ---- the device columns (issue 18): schema-1 files, --device and --precision ---------------- */
/* the file at src less its columns device, gpu and precision (a file written before them) */
/* src (the current schema, last-checkpoint rows without BLEU) as schema 1 (without bleu ..
 * precision), schema 2 (without bleu, checkpoint, checkpoint_step) or schema 3; all three
 * without the mechanism columns rel_mass_best_l0 .. collapse (schema 4) */
static void write_schema(const char *src, const char *dst, int schema) {
    tu_csv_doc d;
    tu_csv_load(src, &d);
    int drop[2] = {tu_csv_col(&d, "bleu"), tu_csv_col(&d, schema == 1 ? "precision" : "checkpoint_step")};
    int mech[2] = {tu_csv_col(&d, "rel_mass_best_l0"), tu_csv_col(&d, "collapse")};
    ck_assert_msg(drop[0] >= 0 && drop[1] == drop[0] + (schema == 1 ? 5 : 2), "bleu .. precision columns");
    ck_assert_msg(mech[0] >= 0 && mech[1] == mech[0] + 16, "rel_mass_best_l0 .. collapse");
    if (schema == 3) drop[0] = drop[1] = -1;
    FILE *f = fopen(dst, "w");
    ck_assert_ptr_nonnull(f);
    for (int r = 0; r < d.rows; r++) {
        int first = 1;
        for (int c = 0; c < d.cols[r]; c++) {
            if ((c >= drop[0] && c <= drop[1]) || (c >= mech[0] && c <= mech[1])) continue;
            fprintf(f, "%s%s", first ? "" : ",", d.cell[r][c]);
            first = 0;
        }
        fputc('\n', f);
    }
    fclose(f);
    tu_csv_free(&d);
}

START_TEST(test_device_columns_and_schema1) {
    for (int schema = 1; schema <= 3; schema++) {
    char dir[64], cur[128], old[128];
    tu_tmpdir(dir, sizeof dir);
    snprintf(cur, sizeof cur, "%s/cur.csv", dir);
    snprintf(old, sizeof old, "%s/old.csv", dir);
    expect_status(0, LCG " run --task copy " TINY " --out %s", cur);
    tu_csv_doc d;
    tu_csv_load(cur, &d);
    ck_assert_int_eq(d.rows, 1 + TINY_ROWS);
    ck_assert_str_eq(cell(&d, 1, "device"), "cpu");
    ck_assert_str_eq(cell(&d, 1, "gpu"), "");
    ck_assert_str_eq(cell(&d, 1, "precision"), "fp32");
    /* a schema-1 file is read (table, regress: its rows are the same CPU runs) ... */
    ck_assert_str_eq(cell(&d, 1, "checkpoint"), "last");
    ck_assert_str_eq(cell(&d, 1, "checkpoint_step"), cell(&d, 1, "steps"));
    ck_assert_str_eq(cell(&d, 1, "bleu"), "");
    write_schema(cur, old, schema);
    expect_status(0, LCG " table %s", old);
    expect_status(0, LCG " regress --baseline %s %s", old, cur);
    ck_assert_ptr_nonnull(strstr(R.err, "0 regressed or missing"));
    expect_status(0, LCG " regress --baseline %s %s", cur, old);
    /* ... and an append upgrades it in place: the old rows as they were, filled in */
    expect_status(0, LCG " run --task copy --seed 2 " TINY " --out %s", old);
    tu_csv_doc a, b;
    tu_csv_load(old, &a);
    tu_csv_load(cur, &b);
    ck_assert_int_eq(a.rows, 1 + 2 * TINY_ROWS);
    int m0 = tu_csv_col(&b, "rel_mass_best_l0"), m1 = tu_csv_col(&b, "collapse");
    for (int r = 0; r <= TINY_ROWS; r++) {
        ck_assert_int_eq(a.cols[r], b.cols[r]);
        for (int c = 0; c < a.cols[r]; c++) /* the mechanism columns an old file lacks: empty */
            ck_assert_msg(strcmp(a.cell[r][c], r && c >= m0 && c <= m1 ? "" : b.cell[r][c]) == 0,
                          "upgraded row %d column %s: '%s', was '%s'", r, b.cell[0][c], a.cell[r][c], b.cell[r][c]);
    }
    ck_assert_str_ne(cell(&b, 1, "rel_mass_best_l0"), ""); /* copy declares its answers */
    ck_assert_str_eq(cell(&b, 1, "rel_mass_best_l7"), ""); /* past the model's layers */
    ck_assert_str_eq(cell(&a, 1 + TINY_ROWS, "device"), "cpu");
    tu_csv_free(&a);
    tu_csv_free(&b);
    tu_csv_free(&d);
    }
    char dir[64], cur[128];
    tu_tmpdir(dir, sizeof dir);
    snprintf(cur, sizeof cur, "%s/cur.csv", dir);
    /* the flags: --precision is the GPU's; --device cuda needs a CUDA build and a GPU */
    expect_usage("--precision tf32 needs --device cuda", "run --precision tf32 " TINY " --out %s", cur);
    expect_usage("--precision bf16 needs --device cuda", "run --precision bf16 " TINY " --out %s", cur);
    expect_usage("unknown precision 'fp16'", "run --precision fp16 " TINY " --out %s", cur);
    expect_usage("unknown device 'gpu'", "run --device gpu " TINY " --out %s", cur);
    expect_status(0, LCG " run --precision fp32 --device cpu --task copy " TINY " --out %s", cur);
    /* (a CUDA=1 build on a machine with a GPU runs it) */
    int st = tu_run(&R, LCG " run --device cuda " TINY " --out %s/gpu.csv", dir);
    ck_assert_msg(st == 0 || (st == 1 && tu_count_lines(R.err) == 1 && strstr(R.err, "--device cuda: ")),
                  "--device cuda: exit %d: %s", st, R.err);
    tu_rm_tmpdir(dir);
}
END_TEST

static Suite *results_suite(void) {
    Suite *s = suite_create("results");
    TCase *tc = tcase_create("preset");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, test_preset_values_and_overrides);
    tcase_add_test(tc, test_preset_help_lists_every_task);
    tcase_add_test(tc, test_eval_tokens);
    suite_add_tcase(s, tc);
    tc = tcase_create("sweep");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, test_sweep_grid_and_resume);
    tcase_add_test(tc, test_sweep_bad_input);
    suite_add_tcase(s, tc);
    tc = tcase_create("table");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, test_table_numbers);
    tcase_add_test(tc, test_table_against);
    tcase_add_test(tc, test_regress);
    tcase_add_test(tc, test_device_columns_and_schema1);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) {
    if (access(LCG, X_OK) != 0) {
        fprintf(stderr, "test_results: %s not found; run from the repository root after 'make lcgbench'\n", LCG);
        return 1;
    }
    return tu_run_suite(results_suite());
}
