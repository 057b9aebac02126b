/*
 * test_attn_cli.c: the top-k, stick-breaking and adaptive-softmax normalizers and the parity
 * task from the command line: `help attn` / `help tasks` list them; each trains and evaluates
 * end to end (CSV rows, the topk parameter in the alpha column, the table's label); every bad
 * value of --topk / --topk-rule is a one-line usage error, as are the flags on a normalizer
 * without k; a topk checkpoint reloads with its k and rule and refuses a different one; the
 * CSV is the same on 1 and 2 threads; stick-break under nape is the nope model; parity through gen -> --data gives the generator run's
 * rows. The kernels are tested in tests/test_rows.c, the model paths in tests/test_model.c.
 */
#include "testutil.h"

#define LCG "./lcgbench"
#define TINY                                                                                                 \
    "--task copy --layers 2 --dim 16 --heads 2 --head-dim 8 --ffn 32 --len 6 --vary 2 --steps 20 --warmup 5 " \
    "--batch 8 --max-len 24 --eval-samples 10 --quiet"

static tu_result R;

#define expect_usage(csv, need1, need2, ...) tu_expect_fail(&R, 2, csv, need1, need2, LCG " " __VA_ARGS__)

static void expect_ok(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void expect_ok(const char *fmt, ...) {
    char args[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    tu_run(&R, LCG " %s", args);
    ck_assert_msg(R.status == 0, "'lcgbench %s': exit %d; stderr: %s", args, R.status, R.err);
    ck_assert_msg(R.err[0] == '\0', "'lcgbench %s': unexpected stderr: %s", args, R.err);
}

START_TEST(test_help_lists) {
    tu_run(&R, LCG " help attn --names");
    ck_assert_int_eq(R.status, 0);
    ck_assert(tu_in_list(R.out, "topk") || strstr(R.out, "\ntopk\n"));
    ck_assert_msg(strstr(R.out, "\ntopk\n") && strstr(R.out, "\nstick-break\n") && strstr(R.out, "\nadaptive-softmax\n"),
                  "%s", R.out);
    tu_run(&R, LCG " help attn");
    ck_assert_msg(strstr(R.out, "topk ") && strstr(R.out, "--topk K") && strstr(R.out, "stick-break ") &&
                      strstr(R.out, "adaptive-softmax "),
                  "%s", R.out);
    tu_run(&R, LCG " help tasks --names");
    ck_assert_msg(strstr(R.out, "\nparity\n"), "%s", R.out);
    tu_run(&R, LCG " run --help");
    ck_assert_msg(strstr(R.out, "--topk") && strstr(R.out, "--topk-rule"), "%s", R.out);
}
END_TEST

START_TEST(test_bad_topk_flags) {
    char dir[64], csv[128];
    tu_tmpdir(dir, sizeof dir);
    snprintf(csv, sizeof csv, "%s/x.csv", dir);
    expect_usage(csv, "--topk", NULL, "run " TINY " --out %s --attn topk --topk 0", csv);
    expect_usage(csv, "--topk", NULL, "run " TINY " --out %s --attn topk --topk -3", csv);
    expect_usage(csv, "--topk", NULL, "run " TINY " --out %s --attn topk --topk 2.5", csv);
    expect_usage(csv, "--topk", NULL, "run " TINY " --out %s --attn topk --topk abc", csv);
    expect_usage(csv, "--topk", NULL, "run " TINY " --out %s --attn topk --topk 2000000", csv);
    expect_usage(csv, "--topk", NULL, "run " TINY " --out %s --attn topk --topk", csv);
    expect_usage(csv, "--topk", NULL, "run " TINY " --out %s --attn topk --topk ''", csv);
    expect_usage(csv, "--topk", "softmax", "run " TINY " --out %s --attn softmax --topk 4", csv);
    expect_usage(csv, "--topk-rule", "entmax", "run " TINY " --out %s --attn entmax --topk-rule div-2", csv);
    expect_usage(csv, "--topk-rule", "div-3", "run " TINY " --out %s --attn topk --topk-rule div-3", csv);
    expect_usage(csv, "--topk-rule", NULL, "run " TINY " --out %s --attn topk --topk-rule", csv);
    expect_usage(csv, "--alpha", "topk", "run " TINY " --out %s --attn topk --alpha 1.5", csv);
    expect_usage(csv, "--alpha", "stick-break", "run " TINY " --out %s --attn stick-break --alpha 1.5", csv);
    expect_usage(csv, "--alpha", "adaptive-softmax", "run " TINY " --out %s --attn adaptive-softmax --alpha 1.5", csv);
    expect_usage(csv, "--topk", "stick-break", "run " TINY " --out %s --attn stick-break --topk 2", csv);
    /* a grid whose args give --topk to every cell: the softmax cell is refused before any work */
    char grid[128], g[512];
    snprintf(grid, sizeof grid, "%s/g.txt", dir);
    snprintf(g, sizeof g, "args = %s --topk 2\ntask = copy\nattn = topk softmax\npos = nape\nseed = 1\n", TINY);
    tu_write_all(grid, g, strlen(g));
    expect_usage(csv, "--topk", "softmax", "sweep --grid %s --out %s", grid, csv);
    tu_rm_tmpdir(dir);
}
END_TEST

/* each new normalizer end to end; topk's parameter in the alpha column and the table label */
START_TEST(test_runs_and_csv) {
    char dir[64], csv[128];
    tu_tmpdir(dir, sizeof dir);
    const char *cases[][2] = {{"topk", "8"},
                              {"topk --topk 3 --topk-rule div-2", "-3"},
                              {"topk --topk-rule fixed --topk 2", "2"},
                              {"stick-break", "1"},
                              {"adaptive-softmax", "1"}};
    for (int i = 0; i < 5; i++) {
        for (int pos = 0; pos < 2; pos++) {
            snprintf(csv, sizeof csv, "%s/r%d%d.csv", dir, i, pos);
            expect_ok("run " TINY " --attn %s --pos %s --out %s", cases[i][0], pos ? "rope" : "nape", csv);
            tu_csv_doc d;
            tu_csv_load(csv, &d);
            ck_assert_int_eq(d.rows, 3);
            int ca = tu_csv_col(&d, "attn"), cal = tu_csv_col(&d, "alpha"), ce = tu_csv_col(&d, "exact_match");
            int cs = tu_csv_col(&d, "attn_support");
            for (int r = 1; r < d.rows; r++) {
                ck_assert_msg(strncmp(d.cell[r][ca], cases[i][0], strlen(d.cell[r][ca])) == 0, "%s", d.cell[r][ca]);
                ck_assert_str_eq(d.cell[r][cal], cases[i][1]);
                ck_assert(atof(d.cell[r][ce]) >= 0 && atof(d.cell[r][ce]) <= 1);
                double s0 = atof(d.cell[r][cs]);
                if (i == 2) ck_assert_msg(s0 <= 2.0, "topk k=2: support %g", s0); /* at most k keys */
            }
            tu_csv_free(&d);
        }
    }
    snprintf(csv, sizeof csv, "%s/r10.csv", dir);
    tu_run(&R, LCG " table %s", csv);
    ck_assert_int_eq(R.status, 0);
    ck_assert_msg(strstr(R.out, "topk(k=3,div-2)/nape"), "%s", R.out);
    tu_rm_tmpdir(dir);
}
END_TEST

/* a topk checkpoint keeps k and the rule; a different one is refused; 1 and 2 threads agree */
START_TEST(test_checkpoint_and_threads) {
    char dir[64], a[128], b[128], c[128], ck[128];
    tu_tmpdir(dir, sizeof dir);
    snprintf(a, sizeof a, "%s/a.csv", dir), snprintf(b, sizeof b, "%s/b.csv", dir);
    snprintf(c, sizeof c, "%s/c.csv", dir), snprintf(ck, sizeof ck, "%s/m.ckpt", dir);
    expect_ok("run " TINY " --attn topk --topk 3 --topk-rule div-2 --pos nape --threads 1 --save %s --out %s", ck, a);
    expect_ok("run --load %s --max-len 24 --eval-samples 10 --quiet --out %s", ck, b);
    tu_assert_same_csv(a, b, NULL);
    expect_ok("run --load %s --topk 3 --max-len 24 --eval-samples 10 --quiet --out %s", ck, c); /* rule from it */
    expect_usage(NULL, "--topk", "conflicts", "run --load %s --topk 4 --max-len 24 --eval-samples 10 --quiet --out %s/d.csv",
                 ck, dir);
    expect_usage(NULL, "--topk", "conflicts",
                 "run --load %s --topk-rule fixed --max-len 24 --eval-samples 10 --quiet --out %s/d.csv", ck, dir);
    const char *names[] = {"topk --topk 2", "stick-break", "adaptive-softmax"};
    for (int i = 0; i < 3; i++) {
        snprintf(a, sizeof a, "%s/t1_%d.csv", dir, i), snprintf(b, sizeof b, "%s/t2_%d.csv", dir, i);
        expect_ok("run " TINY " --attn %s --pos alibi --threads 1 --out %s", names[i], a);
        expect_ok("run " TINY " --attn %s --pos alibi --threads 2 --out %s", names[i], b);
        tu_assert_same_csv(a, b, NULL);
    }
    /* stick-break takes no ALiBi term: under alibi and nape it is the nope model */
    snprintf(a, sizeof a, "%s/sb_nope.csv", dir), snprintf(b, sizeof b, "%s/sb_nape.csv", dir);
    expect_ok("run " TINY " --attn stick-break --pos nope --threads 1 --out %s", a);
    expect_ok("run " TINY " --attn stick-break --pos nape --threads 1 --out %s", b);
    tu_assert_same_csv(a, b, "pos run_id");
    tu_rm_tmpdir(dir);
}
END_TEST

/* parity end to end, and through gen -> --data: the generator run's rows */
START_TEST(test_parity_run_and_data) {
    char dir[64], a[128], b[128];
    tu_tmpdir(dir, sizeof dir);
    snprintf(a, sizeof a, "%s/gen.csv", dir), snprintf(b, sizeof b, "%s/data.csv", dir);
#define PAR "--task parity --layers 1 --dim 16 --heads 2 --head-dim 8 --ffn 32 --len 8 --vary 2 --steps 10 --warmup 2 " \
            "--batch 4 --eval-lens 10,20 --eval-samples 8 --quiet --threads 1"
    expect_ok("run " PAR " --out %s", a);
    tu_expect_status(&R, 0, LCG " gen --task parity --len 8 --vary 2 --out %s/d --count 40", dir);
    tu_expect_status(&R, 0, LCG " gen --task parity --out %s/d --split test --len 10 --index 0 --count 8", dir);
    tu_expect_status(&R, 0, LCG " gen --task parity --out %s/d --split test --len 20 --index 1 --count 8", dir);
    tu_csv_doc d;
    tu_csv_load(a, &d);
    ck_assert_int_eq(d.rows, 3);
    ck_assert_str_eq(d.cell[1][tu_csv_col(&d, "task")], "parity");
    tu_csv_free(&d);
    expect_ok("run " PAR " --data %s/d --out %s", dir, b);
    tu_assert_same_csv(a, b, "data run_id"); /* the run_id hashes the data directory */
    tu_rm_tmpdir(dir);
}
END_TEST

int main(void) {
    Suite *s = suite_create("attn_cli");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_help_lists);
    tcase_add_test(tc, test_bad_topk_flags);
    tcase_add_test(tc, test_runs_and_csv);
    tcase_add_test(tc, test_checkpoint_and_threads);
    tcase_add_test(tc, test_parity_run_and_data);
    suite_add_tcase(s, tc);
    return tu_run_suite(s);
}
