/*
 * test_files.c: results are never lost (issue 17), end to end through ./lcgbench.
 *
 * Covers: concurrent writers of one CSV (20 runs at once, two sweeps on one grid: every row
 * exactly once, the sweeps splitting the cells); outputs that are not regular files (a device,
 * a FIFO, a directory, a symlink to a device, a dangling symlink: one-line refusals before any
 * work, nothing replaced) and a symlink to a regular file (its target updated, the link kept);
 * --save onto --out's file or onto a file that is not a checkpoint (refused, the file intact);
 * readers that meet lying fields (table and regress name file:line; a header-only baseline
 * fails the guard), an append to a CSV whose rows have the wrong field count, a UTF-8 BOM;
 * the interrupted run's resume command (the same rows and file as an uninterrupted run),
 * --eval-lens repeats, a sweep whose ladder grew (only the new rows), training memory checked
 * up front, a diverged run's warning, a flag given twice (the last wins) and -h; --data: the
 * files' lengths in the CSV, the training split checked before the first step, ids named by task;
 * a sweep on a full disk; table/merge to standard output; --layers-out's long format.
 *
 * Does not cover: locks on network file systems (flock and OFD locks are local-node only).
 */
#include "testutil.h"

#include <sys/wait.h>

#define LCG "./lcgbench"
#define T                                                                                                 \
    "--layers 1 --dim 16 --heads 2 --head-dim 8 --ffn 32 --steps 20 --warmup 2 --batch 8 --len 6 --vary 2 " \
    "--eval-samples 8 --max-len 16 --threads 1 --quiet"

static tu_result R;

/* rows (lines after the header) of path holding `needle`; -1 if it cannot be read */
static int count_rows(const char *path, const char *needle) {
    char *s = tu_read_all(path, NULL);
    if (!s) return -1;
    int n = 0;
    for (char *line = strchr(s, '\n'); line && line[1]; line = strchr(line + 1, '\n'))
        if (!needle || strstr(line + 1, needle)) n++;
    free(s);
    return n;
}

/* field col of data row `row` (1-based, after the header) of the CSV at path equals want */
static void expect_cell(const char *path, int row, const char *col, const char *want) {
    tu_csv_doc doc;
    tu_csv_load(path, &doc);
    int c = tu_csv_col(&doc, col);
    ck_assert_msg(c >= 0 && row < doc.rows, "%s: no row %d / column %s", path, row, col);
    ck_assert_msg(strcmp(doc.cell[row][c], want) == 0, "%s row %d %s: '%s', expected '%s'", path, row, col,
                  doc.cell[row][c], want);
    tu_csv_free(&doc);
}

START_TEST(concurrent_runs_keep_every_row) {
    char d[64], cmd[4096];
    tu_tmpdir(d, sizeof d);
    snprintf(cmd, sizeof cmd,
             "for s in $(seq 1 20); do " LCG " run " T " --seed $s --out %s/c.csv >/dev/null 2>&1 & done; wait", d);
    ck_assert_int_eq(tu_run(&R, "%s", cmd), 0);
    char path[128];
    snprintf(path, sizeof path, "%s/c.csv", d);
    ck_assert_int_eq(count_rows(path, NULL), 40); /* 20 runs x 2 lengths */
    /* each seed exactly twice (lengths 8 and 16) */
    tu_csv_doc doc;
    tu_csv_load(path, &doc);
    int c_seed = tu_csv_col(&doc, "seed"), seen[21] = {0};
    for (int r = 1; r < doc.rows; r++) seen[atoi(doc.cell[r][c_seed])]++;
    for (int s = 1; s <= 20; s++) ck_assert_msg(seen[s] == 2, "seed %d has %d rows", s, seen[s]);
    tu_csv_free(&doc);
    tu_rm_tmpdir(d);
}
END_TEST

START_TEST(concurrent_sweeps_split_the_cells) {
    char d[64], cmd[4096];
    tu_tmpdir(d, sizeof d);
    snprintf(cmd, sizeof cmd,
             "for k in 1 2; do " LCG " sweep --attn softmax,ssmax,entmax,sparsemax --seed 1,2,3 " T
             " --out %s/s.csv >/dev/null 2>%s/err$k & done; wait",
             d, d);
    ck_assert_int_eq(tu_run(&R, "%s", cmd), 0);
    char path[128];
    snprintf(path, sizeof path, "%s/s.csv", d);
    tu_csv_doc doc;
    tu_csv_load(path, &doc);
    ck_assert_int_eq(doc.rows, 1 + 24); /* 12 cells x 2 lengths, each once */
    int c_id = tu_csv_col(&doc, "run_id"), c_len = tu_csv_col(&doc, "eval_len");
    for (int a = 1; a < doc.rows; a++)
        for (int b = a + 1; b < doc.rows; b++)
            ck_assert_msg(strcmp(doc.cell[a][c_id], doc.cell[b][c_id]) || strcmp(doc.cell[a][c_len], doc.cell[b][c_len]),
                          "row %d repeats row %d", b, a);
    tu_csv_free(&doc);
    /* a third sweep finds everything done */
    tu_expect_status(&R, 0, LCG " sweep --attn softmax,ssmax,entmax,sparsemax --seed 1,2,3 " T " --out %s", path);
    ck_assert_ptr_nonnull(strstr(R.err, "12 already in"));
    tu_rm_tmpdir(d);
}
END_TEST

START_TEST(special_outputs_refused_before_work) {
    char d[64];
    tu_tmpdir(d, sizeof d);
    tu_expect_status(&R, 0, "cd %s && mkfifo fifo && ln -s /dev/full full && ln -s gone.csv dangling && mkdir dir", d);
    const char *cases[][2] = {{"/dev/null", "is a device"}, {"fifo", "is a FIFO"}, {"full", "which is a device"},
                              {"dangling", "missing file"}, {"dir", "is a directory"}};
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        const char *o = cases[i][0][0] == '/' ? cases[i][0] : NULL;
        char out[128];
        snprintf(out, sizeof out, "%s/%s", d, cases[i][0]);
        tu_expect_fail(&R, 1, NULL, cases[i][1], i == 3 ? "target" : "regular files", "timeout 60 " LCG " run " T " --out %s",
                       o ? o : out);
        tu_expect_fail(&R, 1, NULL, cases[i][1], NULL, "timeout 60 " LCG " run " T " --out %s/ok.csv --save %s", d,
                       o ? o : out);
    }
    struct stat st;
    ck_assert_int_eq(stat("/dev/null", &st), 0);
    ck_assert(S_ISCHR(st.st_mode));
    /* the report commands write to standard output when asked to */
    tu_expect_status(&R, 0, LCG " run " T " --out %s/r.csv", d);
    tu_expect_status(&R, 0, LCG " table --out /dev/stdout %s/r.csv", d);
    ck_assert_ptr_nonnull(strstr(R.out, "| method"));
    tu_expect_status(&R, 0, LCG " table --format csv --out - %s/r.csv", d);
    ck_assert_int_ge(tu_count_lines(R.out), 2);
    tu_expect_status(&R, 0, LCG " merge " T " --out - %s/r.csv", d);
    ck_assert_int_eq(tu_count_lines(R.out), 3);
    tu_rm_tmpdir(d);
}
END_TEST

START_TEST(symlinked_csv_updates_its_target) {
    char d[64];
    tu_tmpdir(d, sizeof d);
    tu_expect_status(&R, 0, LCG " run " T " --out %s/real.csv", d);
    tu_expect_status(&R, 0, "ln -s real.csv %s/link.csv", d);
    tu_expect_status(&R, 0, LCG " run " T " --seed 2 --out %s/link.csv", d);
    char path[128];
    snprintf(path, sizeof path, "%s/link.csv", d);
    struct stat st;
    ck_assert_int_eq(lstat(path, &st), 0);
    ck_assert_msg(S_ISLNK(st.st_mode), "the link was replaced");
    snprintf(path, sizeof path, "%s/real.csv", d);
    ck_assert_int_eq(count_rows(path, NULL), 4);
    tu_rm_tmpdir(d);
}
END_TEST

START_TEST(save_never_destroys_results) {
    char d[64], path[128];
    tu_tmpdir(d, sizeof d);
    tu_expect_status(&R, 0, LCG " run " T " --out %s/prev.csv", d);
    snprintf(path, sizeof path, "%s/prev.csv", d);
    size_t n0 = 0;
    char *before = tu_read_all(path, &n0);
    tu_expect_fail(&R, 1, NULL, "same file", NULL, LCG " run " T " --out %s/prev.csv --save %s/prev.csv", d, d);
    tu_expect_fail(&R, 1, NULL, "not a lcgbench checkpoint", NULL, LCG " run " T " --out %s/new.csv --save %s/prev.csv",
                   d, d);
    size_t n1 = 0;
    char *after = tu_read_all(path, &n1);
    ck_assert(n0 == n1 && memcmp(before, after, n0) == 0);
    free(before), free(after);
    /* a checkpoint is overwritten as before */
    tu_expect_status(&R, 0, LCG " run " T " --out %s/a.csv --save %s/m.ckpt", d, d);
    tu_expect_status(&R, 0, LCG " run " T " --seed 3 --out %s/a.csv --save %s/m.ckpt", d, d);
    tu_rm_tmpdir(d);
}
END_TEST

/* replaces field `col` of data row `row` (1-based after the header) of path with `val` */
static void set_field(const char *path, int row, const char *col, const char *val) {
    tu_csv_doc doc;
    tu_csv_load(path, &doc);
    int c = tu_csv_col(&doc, col);
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    for (int r = 0; r < doc.rows; r++)
        for (int k = 0; k < doc.cols[r]; k++)
            fprintf(f, "%s%c", r == row && k == c ? val : doc.cell[r][k], k == doc.cols[r] - 1 ? '\n' : ',');
    fclose(f);
    tu_csv_free(&doc);
}

START_TEST(readers_reject_lying_fields) {
    char d[64], path[128], base[128];
    tu_tmpdir(d, sizeof d);
    snprintf(path, sizeof path, "%s/r.csv", d);
    snprintf(base, sizeof base, "%s/base.csv", d);
    tu_expect_status(&R, 0, LCG " run " T " --out %s", path);
    tu_expect_status(&R, 0, "cp %s %s", path, base);
    const char *bad[] = {"", "abc", "nan", "1.5", "-0.1", "0.5x"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        tu_expect_status(&R, 0, "cp %s %s/t.csv", base, d);
        char t[128];
        snprintf(t, sizeof t, "%s/t.csv", d);
        set_field(t, 2, "exact_match", bad[i]);
        tu_expect_fail(&R, 1, NULL, "t.csv:3", "exact_match", LCG " table %s", t);
        tu_expect_fail(&R, 2, NULL, "t.csv:3", "exact_match", LCG " regress --baseline %s %s", t, path);
        tu_expect_status(&R, 0, "cp %s %s", base, t);
        set_field(t, 1, "exact_lo", bad[i]);
        tu_expect_fail(&R, 2, NULL, "t.csv:2", "exact_lo", LCG " regress --baseline %s %s", t, path);
    }
    /* a header-only baseline: nothing to compare fails */
    tu_expect_status(&R, 0, "head -1 %s > %s/h.csv", base, d);
    tu_expect_fail(&R, 2, NULL, "no rows", NULL, LCG " regress --baseline %s/h.csv %s", d, path);
    /* an append to a CSV whose rows have the wrong field count */
    tu_expect_status(&R, 0, "cp %s %s/f.csv && printf 'x,y\\n' >> %s/f.csv", base, d, d);
    tu_expect_fail(&R, 1, NULL, "row 4 has 2 fields", NULL, LCG " run " T " --seed 5 --out %s/f.csv", d);
    /* a UTF-8 byte-order mark (as spreadsheets write) is read through */
    tu_expect_status(&R, 0, "printf '\\357\\273\\277' > %s/b.csv && cat %s >> %s/b.csv", d, base, d);
    tu_expect_status(&R, 0, LCG " table %s/b.csv", d);
    tu_expect_status(&R, 0, LCG " run " T " --seed 6 --out %s/b.csv", d);
    tu_rm_tmpdir(d);
}
END_TEST

/* the command the interrupted run printed, run: the same rows and file as an uninterrupted run */
START_TEST(resume_hint_keeps_the_runs_settings) {
    char d[64], cmd[8192];
    tu_tmpdir(d, sizeof d);
    const char *args = "--task copy --layers 1 --dim 16 --heads 2 --head-dim 8 --ffn 32 --steps 30 --warmup 2 --batch 8 "
                       "--len 6 --vary 2 --eval-samples 12 --max-len 30 --threads 1 --quiet";
    tu_expect_status(&R, 0, LCG " run %s --out %s/whole.csv", args, d);
    snprintf(cmd, sizeof cmd,
             "LCG_TEST_STOP_AT=step:10 " LCG " run %s --out %s/sub/part.csv 2>%s/err & p=$!; "
             "while :; do case \"$(ps -o stat= -p $p)\" in T*) break;; esac; sleep 0.05; done; "
             "kill -INT $p; kill -CONT $p; wait $p; echo $? > %s/rc",
             args, d, d, d);
    tu_run(&R, "%s", cmd);
    char path[128], err[8192], rc[16];
    snprintf(path, sizeof path, "%s/rc", d);
    tu_slurp(path, rc, sizeof rc);
    ck_assert_int_eq(atoi(rc), 130);
    snprintf(path, sizeof path, "%s/err", d);
    tu_slurp(path, err, sizeof err);
    char *hint = strstr(err, "continue with 'lcgbench run --resume");
    ck_assert_msg(hint, "no resume hint: %s", err);
    hint = strchr(hint, '\'') + 1;
    *strchr(hint, '\'') = '\0';
    ck_assert_ptr_nonnull(strstr(hint, "--out"));
    tu_expect_status(&R, 0, "./%s", hint);
    char a[128], b[128];
    snprintf(a, sizeof a, "%s/whole.csv", d);
    snprintf(b, sizeof b, "%s/sub/part.csv", d);
    tu_assert_same_csv(a, b, "wall_threads,wall_train_s,wall_train_tok_s,wall_eval_s");
    tu_rm_tmpdir(d);
}
END_TEST

/* --eval-lens in any order, with repeats: one row per length, ascending */
START_TEST(eval_lens_deduplicated) {
    char d[64], path[128];
    tu_tmpdir(d, sizeof d);
    tu_expect_status(&R, 0, LCG " run " T " --eval-lens 16,8,12,8,16 --out %s/e.csv", d);
    snprintf(path, sizeof path, "%s/e.csv", d);
    ck_assert_int_eq(count_rows(path, NULL), 3);
    expect_cell(path, 1, "eval_len", "8");
    expect_cell(path, 2, "eval_len", "12");
    expect_cell(path, 3, "eval_len", "16");
    tu_rm_tmpdir(d);
}
END_TEST

/* a sweep run again with a longer ladder adds only the new lengths' rows */
START_TEST(sweep_ladder_grows_without_duplicates) {
    char d[64], path[128];
    tu_tmpdir(d, sizeof d);
    tu_expect_status(&R, 0, LCG " sweep --attn softmax,ssmax " T " --out %s/s.csv", d);
    tu_expect_status(&R, 0, LCG " sweep --attn softmax,ssmax " T " --max-len 32 --out %s/s.csv", d);
    tu_expect_status(&R, 0, LCG " sweep --attn softmax,ssmax " T " --max-len 32 --out %s/one.csv", d);
    snprintf(path, sizeof path, "%s/s.csv", d);
    ck_assert_int_eq(count_rows(path, NULL), 6); /* 2 cells x lengths 8, 16, 32 */
    /* the same rows as a sweep that had the longer ladder from the start (in another order) */
    tu_expect_status(&R, 0, "cd %s && sort s.csv | cut -d, -f1-37 > a && sort one.csv | cut -d, -f1-37 > b && cmp a b", d);
    tu_rm_tmpdir(d);
}
END_TEST

START_TEST(training_memory_checked_up_front) {
    char d[64];
    tu_tmpdir(d, sizeof d);
    tu_expect_fail(&R, 2, NULL, "training --batch 65536", "GiB", "timeout 60 " LCG " run --batch 65536 --len 4096 --vary 0 "
                   "--max-len 4096 --eval-samples 1 --out %s/m.csv", d);
    tu_rm_tmpdir(d);
}
END_TEST

START_TEST(diverged_training_warns) {
    char d[64];
    tu_tmpdir(d, sizeof d);
    tu_expect_status(&R, 0, LCG " run " T " --lr 10 --clip 0 --steps 40 --out %s/w.csv", d);
    ck_assert_msg(strstr(R.err, "far above ln(vocabulary)"), "no warning: %s", R.err);
    tu_rm_tmpdir(d);
}
END_TEST

/* a flag given twice: the last wins (scripts append overrides) */
START_TEST(last_flag_wins) {
    char d[64], path[128];
    tu_tmpdir(d, sizeof d);
    tu_expect_status(&R, 0, LCG " run " T " --seed 1 --seed 2 --out %s/l.csv", d);
    snprintf(path, sizeof path, "%s/l.csv", d);
    expect_cell(path, 1, "seed", "2");
    tu_expect_status(&R, 0, LCG " run -h");
    ck_assert_ptr_nonnull(strstr(R.out, "usage: lcgbench run"));
    tu_rm_tmpdir(d);
}
END_TEST

/* --data: the lengths in the CSV are the files', every training line is checked before the
 * first step, and an id outside the task's range names the task */
START_TEST(data_files_decide) {
    char d[64], path[128];
    tu_tmpdir(d, sizeof d);
    tu_expect_status(&R, 0, LCG " gen --task copy --out %s/c --count 300 --len 48 --vary 16 && " LCG
                     " gen --task copy --out %s/c --split test --len 64 --count 8", d, d);
    tu_expect_status(&R, 0, LCG " run --task copy --data %s/c --layers 1 --dim 16 --heads 2 --head-dim 8 --ffn 32 "
                     "--steps 5 --warmup 1 --batch 8 --eval-samples 8 --threads 1 --quiet --out %s/d.csv", d, d);
    snprintf(path, sizeof path, "%s/d.csv", d);
    expect_cell(path, 1, "train_len", "48");
    expect_cell(path, 1, "train_vary", "16");
    expect_cell(path, 1, "factor", "1");
    /* a bad line deep in train.src: refused before the first step, no rows, no checkpoint */
    tu_expect_status(&R, 0, "sed -i '250s/.*/1 2 x 4/' %s/c/train.src", d);
    tu_expect_fail(&R, 1, NULL, "train.src:250", "not a token id", LCG " run --task copy --data %s/c --steps 500 "
                   "--quiet --out %s/e.csv", d, d);
    snprintf(path, sizeof path, "%s/e.csv", d);
    ck_assert(!tu_exists(path));
    /* a checkpoint of another task on these files: the message names the task */
    tu_expect_status(&R, 0, LCG " run --task nback " T " --out %s/n.csv --save %s/n.ckpt", d, d);
    tu_expect_status(&R, 0, LCG " gen --task copy --out %s/w --split test --len 12 --count 4 --vocab 40", d);
    tu_expect_fail(&R, 1, NULL, "task 'nback'", NULL, LCG " run --load %s/n.ckpt --data %s/w --quiet --out %s/n.csv", d, d, d);
    tu_rm_tmpdir(d);
}
END_TEST

/* a sweep on a full disk stops at the first failed write (a 12 KiB tmpfs; skipped where this
 * process cannot mount one) */
START_TEST(sweep_stops_on_full_disk) {
    char d[64], cmd[1024];
    tu_tmpdir(d, sizeof d);
    if (tu_run(&R, "mount -t tmpfs -o size=12k tmpfs %s", d) != 0) {
        fprintf(stderr, "sweep_stops_on_full_disk: SKIP (cannot mount a tmpfs here)\n");
        tu_rm_tmpdir(d);
        return;
    }
    snprintf(cmd, sizeof cmd, LCG " sweep --attn softmax,ssmax,entmax,sparsemax --seed 1,2,3,4,5,6,7,8 " T " --out %s/s.csv",
             d);
    tu_run(&R, "%s", cmd);
    int status = R.status, stopped = strstr(R.err, "stopped: ") != NULL, ran_all = strstr(R.err, "[sweep 32/32]") != NULL;
    char err[512];
    snprintf(err, sizeof err, "%.500s", R.err);
    tu_run(&R, "umount %s", d);
    ck_assert_msg(status == 1 && stopped && !ran_all, "exit %d: %s", status, err);
    tu_rm_tmpdir(d);
}
END_TEST

/* --layers-out: the per-layer diagnostics in long format, one numeric cell each, the same values
 * as the main CSV's packed cells */
START_TEST(layers_long_format) {
    char d[64], path[128], lpath[128];
    tu_tmpdir(d, sizeof d);
    tu_expect_status(&R, 0, LCG " run --layers 2 --dim 16 --heads 2 --head-dim 8 --ffn 32 --steps 20 --warmup 2 --batch 8 "
                     "--len 6 --vary 2 --eval-samples 8 --max-len 16 --threads 1 --quiet --out %s/r.csv --layers-out %s/l.csv",
                     d, d);
    snprintf(path, sizeof path, "%s/r.csv", d);
    snprintf(lpath, sizeof lpath, "%s/l.csv", d);
    tu_csv_doc m, l;
    tu_csv_load(path, &m);
    tu_csv_load(lpath, &l);
    ck_assert_int_eq(l.rows, 1 + 2 * 2); /* 2 lengths x 2 layers */
    const char *cols[] = {"attn_entropy", "attn_support", "attn_max"};
    for (int r = 1; r < l.rows; r++) {
        int mr = 1 + (r - 1) / 2, layer = atoi(l.cell[r][tu_csv_col(&l, "layer")]);
        ck_assert_str_eq(l.cell[r][tu_csv_col(&l, "run_id")], m.cell[mr][tu_csv_col(&m, "run_id")]);
        ck_assert_str_eq(l.cell[r][tu_csv_col(&l, "eval_len")], m.cell[mr][tu_csv_col(&m, "eval_len")]);
        for (int c = 0; c < 3; c++) {
            char packed[256];
            snprintf(packed, sizeof packed, "%s", m.cell[mr][tu_csv_col(&m, cols[c])]);
            char *v = strtok(packed, ";");
            for (int k = 0; k < layer; k++) v = strtok(NULL, ";");
            ck_assert_str_eq(l.cell[r][tu_csv_col(&l, cols[c])], v);
        }
        /* the relevant-key mass (copy declares its answers): the main CSV's per-layer columns */
        const char *mass[] = {"rel_mass_best", "rel_mass_mean"};
        for (int c = 0; c < 2; c++) {
            char name[64];
            snprintf(name, sizeof name, "%s_l%d", mass[c], layer);
            const char *v = l.cell[r][tu_csv_col(&l, mass[c])];
            ck_assert_msg(*v, "%s empty", mass[c]);
            ck_assert_str_eq(v, m.cell[mr][tu_csv_col(&m, name)]);
        }
        int head = atoi(l.cell[r][tu_csv_col(&l, "rel_mass_head")]);
        ck_assert(head >= 0 && head < 2);
    }
    tu_csv_free(&m);
    tu_csv_free(&l);
    /* a per-layer file of an earlier version (no mass columns): refused in one line, untouched */
    char opath[160];
    snprintf(opath, sizeof opath, "%s/old.csv", d);
    FILE *of = fopen(opath, "w");
    ck_assert_ptr_nonnull(of);
    fputs("run_id,task,attn,pos,seed,device,precision,checkpoint,eval_len,layer,attn_entropy,attn_support,attn_max\n", of);
    fclose(of);
    tu_expect_fail(&R, 1, NULL, "per-layer columns of an earlier lcgbench", NULL,
                   LCG " run " T " --out %s/y.csv --layers-out %s", d, opath);
    tu_expect_fail(&R, 1, NULL, "same file", NULL, LCG " run " T " --out %s --layers-out %s", path, path);
    tu_expect_fail(&R, 1, NULL, "not a lcgbench per-layer file", NULL, LCG " run " T " --out %s/x.csv --layers-out %s",
                   d, path);
    tu_rm_tmpdir(d);
}
END_TEST

/* the stress test: 20 runs and 2 sweeps into one CSV at once; every row lands exactly once */
START_TEST(runs_and_sweeps_at_once) {
    char d[64], cmd[4096], path[128];
    tu_tmpdir(d, sizeof d);
    snprintf(cmd, sizeof cmd,
             "for s in $(seq 101 120); do " LCG " run " T " --seed $s --out %s/c.csv >/dev/null 2>&1 & done; "
             "for k in 1 2; do " LCG " sweep --attn softmax,ssmax,entmax --seed 1,2,3 " T " --out %s/c.csv >/dev/null 2>&1 & done; "
             "wait",
             d, d);
    ck_assert_int_eq(tu_run(&R, "%s", cmd), 0);
    snprintf(path, sizeof path, "%s/c.csv", d);
    ck_assert_int_eq(count_rows(path, NULL), 2 * (20 + 9));
    tu_expect_status(&R, 0, "cut -d, -f1,25 %s | sort | uniq -d | wc -l | grep -qx 0", path); /* (run_id, eval_len) unique */
    tu_expect_status(&R, 0, LCG " sweep --attn softmax,ssmax,entmax --seed 1,2,3 " T " --out %s", path);
    ck_assert_ptr_nonnull(strstr(R.err, "9 already in"));
    tu_rm_tmpdir(d);
}
END_TEST

int main(void) {
    Suite *s = suite_create("files");
    TCase *tc = tcase_create("files");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, concurrent_runs_keep_every_row);
    tcase_add_test(tc, concurrent_sweeps_split_the_cells);
    tcase_add_test(tc, special_outputs_refused_before_work);
    tcase_add_test(tc, symlinked_csv_updates_its_target);
    tcase_add_test(tc, save_never_destroys_results);
    tcase_add_test(tc, readers_reject_lying_fields);
    tcase_add_test(tc, resume_hint_keeps_the_runs_settings);
    tcase_add_test(tc, eval_lens_deduplicated);
    tcase_add_test(tc, sweep_ladder_grows_without_duplicates);
    tcase_add_test(tc, training_memory_checked_up_front);
    tcase_add_test(tc, diverged_training_warns);
    tcase_add_test(tc, last_flag_wins);
    tcase_add_test(tc, data_files_decide);
    tcase_add_test(tc, sweep_stops_on_full_disk);
    tcase_add_test(tc, layers_long_format);
    tcase_add_test(tc, runs_and_sweeps_at_once);
    suite_add_tcase(s, tc);
    return tu_run_suite(s);
}
