/*
 * test_sweep.c: the three ways to run a grid give the same CSV. A tiny 8-cell grid (copy and
 * reverse x softmax and ssmax x seeds 1 and 2, a 1-layer model trained for 20 steps) is run
 * once serially (`lcgbench sweep`, the reference), then:
 *
 *   - as shards (`sweep --shard K/3`, uneven) merged with `lcgbench merge` in any input order;
 *   - under `mpirun -np 2 --oversubscribe ./lcgbench-mpi sweep` (skipped, saying so, where
 *     mpirun or lcgbench-mpi is missing), fresh and resumed from a partial CSV;
 *   - interrupted (killed after a couple of cells) and run again, and resumed from a prefix;
 *   - by 2 workers (`sweep --workers 2`: cells in child processes, side by side), fresh,
 *     interrupted by SIGINT and SIGTERM mid-cell and resumed, and a serial or 2-worker sweep
 *     resuming a file whose cells are out of grid order (with another run's rows among them,
 *     left in place); --workers/--gpus usage errors and --timeline's rows.
 *
 * "The same CSV" means every column but wall_* (timings and thread counts) byte for byte, in
 * the same order, header included; the rest of a row is a pure function of its settings.
 * Also: merge refuses another header, garbage, a missing file, a duplicated cell, a row of no
 * cell of the grid, a partial cell, an existing --out; it reports missing cells (exit 1);
 * bad --shard values are usage errors; the MPI-free binary refuses to sweep under mpirun.
 *
 * Does not cover: several nodes, a rank that dies (MPI aborts the job; rerunning resumes,
 * which the resume tests cover), Slurm itself (scripts/slurm-array.sbatch only calls the
 * commands tested here), or speed.
 */
#include "testutil.h"

#include <signal.h>
#include <time.h>

#define LCG "./lcgbench"
#define LCG_MPI "./lcgbench-mpi"
#define RUNF0 "--layers 1 --dim 16 --heads 2 --head-dim 8 --ffn 32 --steps 20 --batch 8 --eval-samples 8 --quiet --max-len 96"
/* one thread: OpenMP on a loaded machine is slow for a model this small (the MPI test runs
 * RUNF0 to check the default threads of each rank) */
#define RUNF RUNF0 " --threads 1"
#define GRID "--task copy,reverse --attn softmax,ssmax --seed 1,2"
#define N_CELLS 8
#define ROWS_PER_CELL 3 /* 24, 48, 96 */

static tu_result R;
static char g_dir[64];  /* the serial reference, made once for the suite */
static char g_ref[128]; /* g_dir/serial.csv */

/* path must equal the serial reference in every column but wall_* */
static void expect_same_as_serial(const char *path, const char *what) {
    char *a = tu_csv_stripped(g_ref, NULL), *b = tu_csv_stripped(path, NULL);
    ck_assert_msg(strcmp(a, b) == 0, "%s: %s differs from the serial sweep's CSV:\n--- serial\n%s--- %s\n%s", what,
                  path, a, what, b);
    ck_assert_int_eq(tu_count_lines(b), 1 + N_CELLS * ROWS_PER_CELL);
    free(a);
    free(b);
}

static void make_reference(void) {
    tu_tmpdir(g_dir, sizeof g_dir);
    snprintf(g_ref, sizeof g_ref, "%s/serial.csv", g_dir);
    tu_run(&R, LCG " sweep " GRID " " RUNF " --out %s", g_ref);
    if (R.status != 0) {
        fprintf(stderr, "test_sweep: the serial reference sweep failed (%d): %s\n", R.status, R.err);
        exit(1);
    }
}

static void drop_reference(void) {
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
    if (system(cmd) != 0) fprintf(stderr, "test_sweep: could not remove %s\n", g_dir);
}

/* ---- serial ------------------------------------------------------------------------------- */
START_TEST(test_serial_grid_order) {
    tu_csv_doc d;
    tu_csv_load(g_ref, &d);
    ck_assert_int_eq(d.rows, 1 + N_CELLS * ROWS_PER_CELL);
    int ct = tu_csv_col(&d, "task"), ca = tu_csv_col(&d, "attn"), cs = tu_csv_col(&d, "seed"),
        cl = tu_csv_col(&d, "eval_len");
    const char *task[2] = {"copy", "reverse"}, *attn[2] = {"softmax", "ssmax"}, *seed[2] = {"1", "2"},
               *len[3] = {"24", "48", "96"};
    int r = 1;
    for (int t = 0; t < 2; t++) /* task, attn, seed (fastest); each cell's ladder in order */
        for (int a = 0; a < 2; a++)
            for (int s = 0; s < 2; s++)
                for (int l = 0; l < 3; l++, r++) {
                    ck_assert_str_eq(d.cell[r][ct], task[t]);
                    ck_assert_str_eq(d.cell[r][ca], attn[a]);
                    ck_assert_str_eq(d.cell[r][cs], seed[s]);
                    ck_assert_str_eq(d.cell[r][cl], len[l]);
                }
    tu_csv_free(&d);
    /* nothing left to do: a rerun runs no cell and leaves the file as it was */
    char *before = tu_read_all(g_ref, NULL);
    tu_run(&R, LCG " sweep " GRID " " RUNF " --out %s", g_ref);
    ck_assert_msg(R.status == 0, "rerun: exit %d: %s", R.status, R.err);
    ck_assert_msg(strstr(R.err, "8 already in") && strstr(R.err, "ran 0 cells"), "rerun ran cells: %s", R.err);
    char *after = tu_read_all(g_ref, NULL);
    ck_assert_str_eq(before, after);
    free(before);
    free(after);
}
END_TEST

/* a sweep killed after a couple of cells, run again, ends with the serial CSV; so does one
 * resumed from a prefix of the grid (the copy cells come first) */
START_TEST(test_serial_resume) {
    char dir[64], out[128], pre[128];
    tu_tmpdir(dir, sizeof dir);
    snprintf(out, sizeof out, "%s/killed.csv", dir);
    char cmd[1024];
    snprintf(cmd, sizeof cmd, LCG " sweep " GRID " " RUNF " --out %s >/dev/null 2>&1", out);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        setpgid(0, 0);
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(127);
    }
    setpgid(pid, pid);
    for (int i = 0; i < 3000; i++) { /* until two cells are in (at most 60 s) */
        char *t = tu_read_all(out, NULL);
        int lines = t ? tu_count_lines(t) : 0;
        free(t);
        if (lines >= 1 + 2 * ROWS_PER_CELL) break;
        nanosleep(&(struct timespec){0, 20 * 1000 * 1000}, NULL);
    }
    kill(-pid, SIGKILL);
    int st;
    waitpid(pid, &st, 0);
    char *t = tu_read_all(out, NULL);
    ck_assert_msg(t != NULL, "the sweep wrote nothing before it was killed");
    int lines = tu_count_lines(t);
    free(t);
    ck_assert_msg((lines - 1) % ROWS_PER_CELL == 0, "killed sweep left %d lines: a partial cell", lines);
    tu_run(&R, LCG " sweep " GRID " " RUNF " --out %s", out);
    ck_assert_msg(R.status == 0, "resume: exit %d: %s", R.status, R.err);
    expect_same_as_serial(out, "serial sweep killed and resumed");

    snprintf(pre, sizeof pre, "%s/prefix.csv", dir);
    tu_run(&R, LCG " sweep --task copy --attn softmax,ssmax --seed 1,2 " RUNF " --out %s", pre);
    ck_assert_msg(R.status == 0, "prefix: exit %d: %s", R.status, R.err);
    tu_run(&R, LCG " sweep " GRID " " RUNF " --out %s", pre);
    ck_assert_msg(R.status == 0 && strstr(R.err, "4 already in"), "resume from prefix: exit %d: %s", R.status, R.err);
    expect_same_as_serial(pre, "serial sweep resumed from a prefix");
    tu_rm_tmpdir(dir);
}
END_TEST

/* ---- shards and merge ---------------------------------------------------------------------- */
static void run_shard(const char *dir, int k, int n) {
    tu_run(&R, LCG " sweep " GRID " " RUNF " --shard %d/%d --out %s/shard%d.csv", k, n, dir, k);
    ck_assert_msg(R.status == 0, "shard %d/%d: exit %d: %s", k, n, R.status, R.err);
}

START_TEST(test_shards_merged) {
    char dir[64], out[128], out2[128];
    tu_tmpdir(dir, sizeof dir);
    for (int k = 1; k <= 3; k++) run_shard(dir, k, 3);
    /* shard k holds cells k, k+3, ... (1-based): 3, 3 and 2 cells */
    for (int k = 1; k <= 3; k++) {
        char p[128];
        snprintf(p, sizeof p, "%s/shard%d.csv", dir, k);
        char *t = tu_read_all(p, NULL);
        ck_assert_int_eq(tu_count_lines(t), 1 + (k < 3 ? 3 : 2) * ROWS_PER_CELL);
        free(t);
    }
    snprintf(out, sizeof out, "%s/merged.csv", dir);
    tu_run(&R, LCG " merge --out %s " GRID " " RUNF " %s/shard3.csv %s/shard1.csv %s/shard2.csv", out, dir, dir, dir);
    ck_assert_msg(R.status == 0, "merge: exit %d: %s", R.status, R.err);
    ck_assert_msg(strstr(R.err, "24 rows of 8 cells"), "merge: %s", R.err);
    expect_same_as_serial(out, "shards 3, 1, 2 of 3 merged");
    /* the input order does not matter, and merging is byte-stable */
    snprintf(out2, sizeof out2, "%s/merged2.csv", dir);
    tu_run(&R, LCG " merge " GRID " " RUNF " %s/shard1.csv %s/shard2.csv --out %s %s/shard3.csv", dir, dir, out2, dir);
    ck_assert_msg(R.status == 0, "merge: exit %d: %s", R.status, R.err);
    char *a = tu_read_all(out, NULL), *b = tu_read_all(out2, NULL);
    ck_assert_str_eq(a, b);
    free(a);
    free(b);
    /* a rerun of a finished shard runs nothing */
    tu_run(&R, LCG " sweep " GRID " " RUNF " --shard 2/3 --out %s/shard2.csv", dir);
    ck_assert_msg(R.status == 0 && strstr(R.err, "3 of 8 cells, 3 already in"), "shard rerun: %s", R.err);
    tu_rm_tmpdir(dir);
}
END_TEST

/* merge must fail with status st and one stderr line containing need1 and need2, writing no
 * --out */
static void expect_merge_error(int st, const char *out, const char *need1, const char *need2, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
static void expect_merge_error(int st, const char *out, const char *need1, const char *need2, const char *fmt, ...) {
    char args[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    tu_run(&R, LCG " merge --out %s " GRID " " RUNF " %s", out, args);
    ck_assert_msg(R.status == st, "merge %s: exit %d, expected %d; stderr: %s", args, R.status, st, R.err);
    ck_assert_msg(tu_count_lines(R.err) == 1, "merge %s: expected one stderr line, got: %s", args, R.err);
    ck_assert_msg(strstr(R.err, need1) && (!need2 || strstr(R.err, need2)), "merge %s: stderr lacks '%s'/'%s': %s",
                  args, need1, need2 ? need2 : "", R.err);
    ck_assert_msg(!tu_exists(out), "merge %s failed but wrote %s", args, out);
}

START_TEST(test_merge_rejects) {
    char dir[64], out[128], p[256];
    tu_tmpdir(dir, sizeof dir);
    run_shard(dir, 1, 2);
    run_shard(dir, 2, 2);
    snprintf(out, sizeof out, "%s/merged.csv", dir);
    char *s1 = tu_read_all((snprintf(p, sizeof p, "%s/shard1.csv", dir), p), NULL);
    ck_assert_ptr_nonnull(s1);

    /* another header: a column renamed */
    char *h = strdup(s1), *col = strstr(h, "eval_loss");
    memcpy(col, "eval_LOSS", 9);
    tu_write_all((snprintf(p, sizeof p, "%s/header.csv", dir), p), h, strlen(h));
    expect_merge_error(1, out, "header.csv", "eval_LOSS", "%s/shard2.csv %s", dir, p);
    free(h);
    /* not a result CSV at all */
    tu_write_all((snprintf(p, sizeof p, "%s/garbage.csv", dir), p), "\x01\x02 not, a\n\"csv", 15);
    expect_merge_error(1, out, "garbage.csv", NULL, "%s/shard2.csv %s", dir, p);
    /* missing */
    expect_merge_error(1, out, "nosuch.csv", "cannot read", "%s/shard2.csv %s/nosuch.csv", dir, dir);
    /* a duplicated cell: shard 1 under another name */
    tu_write_all((snprintf(p, sizeof p, "%s/copy1.csv", dir), p), s1, strlen(s1));
    expect_merge_error(1, out, "duplicated cell", "copy1.csv", "%s/shard1.csv %s/shard2.csv %s", dir, dir, p);
    expect_merge_error(2, out, "given twice", NULL, "%s/shard1.csv %s/shard1.csv %s/shard2.csv", dir, dir, dir);
    /* rows of no cell of the grid: seed 3 */
    tu_run(&R, LCG " sweep --task copy --attn softmax --seed 3 " RUNF " --out %s/seed3.csv", dir);
    ck_assert_msg(R.status == 0, "seed 3: %s", R.err);
    expect_merge_error(1, out, "seed3.csv", "not a cell of the grid", "%s/shard1.csv %s/shard2.csv %s/seed3.csv", dir,
                       dir, dir);
    /* a cell with only some of its rows: shard 1 less its last line */
    char *cut = strdup(s1);
    cut[strlen(cut) - 1] = '\0';
    *(strrchr(cut, '\n') + 1) = '\0';
    tu_write_all((snprintf(p, sizeof p, "%s/cut.csv", dir), p), cut, strlen(cut));
    expect_merge_error(1, out, "partial cell", "cut.csv", "%s %s/shard2.csv", p, dir);
    free(cut);
    /* usage: no --out, no inputs, an existing --out that is not an input */
    tu_run(&R, LCG " merge " GRID " %s/shard1.csv", dir);
    ck_assert_msg(R.status == 2 && strstr(R.err, "--out"), "merge without --out: %d %s", R.status, R.err);
    tu_run(&R, LCG " merge --out %s " GRID, out);
    ck_assert_msg(R.status == 2 && strstr(R.err, "no input"), "merge without inputs: %d %s", R.status, R.err);
    tu_run(&R, LCG " merge --out %s/shard1.csv " GRID " " RUNF " %s/shard2.csv", dir, dir);
    ck_assert_msg(R.status == 2 && strstr(R.err, "exists"), "merge over an existing file: %d %s", R.status, R.err);
    char *still = tu_read_all(p, NULL);
    ck_assert_ptr_nonnull(still);
    free(still);

    /* cells in no input: listed, the rest written, exit 1; then merged into with the rest */
    tu_run(&R, LCG " merge --out %s " GRID " " RUNF " %s/shard1.csv", out, dir);
    ck_assert_msg(R.status == 1 && strstr(R.err, "4 of 8 cells are in no input") && strstr(R.err, "cell 2"),
                  "merge of one shard of two: exit %d: %s", R.status, R.err);
    char *m = tu_read_all(out, NULL);
    ck_assert_str_eq(m, s1); /* shard 1 alone is already in grid order */
    free(m);
    tu_run(&R, LCG " merge --out %s " GRID " " RUNF " %s %s/shard2.csv", out, out, dir);
    ck_assert_msg(R.status == 0, "merge into the partial merge: exit %d: %s", R.status, R.err);
    expect_same_as_serial(out, "a partial merge merged with the other shard");
    free(s1);
    tu_rm_tmpdir(dir);
}
END_TEST

START_TEST(test_shard_usage) {
    const char *bad[] = {"0/2", "3/2", "1/0", "x", "1/", "/2", "1/2/3", "-1/2", "1/2x"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        tu_run(&R, LCG " sweep " GRID " " RUNF " --shard %s --out /tmp/lcgtest-never.csv", bad[i]);
        ck_assert_msg(R.status == 2 && tu_count_lines(R.err) == 1 && strstr(R.err, "--shard"),
                      "--shard %s: exit %d, stderr %s", bad[i], R.status, R.err);
        ck_assert(!tu_exists("/tmp/lcgtest-never.csv"));
    }
    tu_run(&R, LCG " sweep " GRID " " RUNF " --shard 1/2 --shard 2/2 --out /tmp/lcgtest-never.csv");
    ck_assert_msg(R.status == 2 && strstr(R.err, "twice"), "--shard twice: %d %s", R.status, R.err);
    /* dry run of a shard lists its cells only */
    tu_run(&R, LCG " sweep " GRID " " RUNF " --shard 2/3 --dry-run --out /tmp/lcgtest-never.csv");
    ck_assert_msg(R.status == 0, "dry run: %d %s", R.status, R.err);
    ck_assert_int_eq(tu_count_lines(R.out), 3);
    ck_assert_msg(strstr(R.out, "   2  todo") && strstr(R.out, "   5  todo") && strstr(R.out, "   8  todo"),
                  "shard 2/3 lists: %s", R.out);
}
END_TEST

/* ---- workers: cells in child processes ---------------------------------------------------- */
START_TEST(test_workers_same_as_serial) {
    char dir[64], out[128], tl[128];
    tu_tmpdir(dir, sizeof dir);
    snprintf(out, sizeof out, "%s/w.csv", dir);
    snprintf(tl, sizeof tl, "%s/timeline.csv", dir);
    tu_run(&R, LCG " sweep " GRID " " RUNF " --workers 2 --timeline %s --out %s", tl, out);
    ck_assert_msg(R.status == 0, "--workers 2: exit %d: %s", R.status, R.err);
    ck_assert_msg(strstr(R.err, "2 workers, 1 thread each") && strstr(R.err, "ran 8 cells on 2 workers") &&
                      strstr(R.err, "worker 0: ") && strstr(R.err, "idle"),
                  "--workers 2: %s", R.err);
    expect_same_as_serial(out, "sweep --workers 2");
    /* the timeline: a header and one row per cell, each done, end >= start */
    char *t = tu_read_all(tl, NULL);
    ck_assert_ptr_nonnull(t);
    ck_assert_int_eq(tu_count_lines(t), 1 + N_CELLS);
    ck_assert_msg(strncmp(t, "cell,run_id,worker,gpu,start_unix,end_unix,seconds,status\n", 58) == 0, "%s", t);
    for (const char *p = strchr(t, '\n') + 1; *p; p = strchr(p, '\n') + 1) {
        double a, b;
        char status[16];
        ck_assert_msg(sscanf(p, "%*d,%*16[0-9a-f],%*d,,%lf,%lf,%*f,%15[a-z]", &a, &b, status) == 3, "timeline row %s", p);
        ck_assert_msg(b >= a && strcmp(status, "done") == 0, "timeline row %s", p);
    }
    free(t);
    /* a rerun runs nothing and leaves the file as it was */
    char *before = tu_read_all(out, NULL);
    tu_run(&R, LCG " sweep " GRID " " RUNF " --workers 3 --out %s", out);
    ck_assert_msg(R.status == 0 && strstr(R.err, "0 to run"), "rerun: exit %d: %s", R.status, R.err);
    char *after = tu_read_all(out, NULL);
    ck_assert_str_eq(before, after);
    free(before);
    free(after);
    tu_rm_tmpdir(dir);
}
END_TEST

/* starts `cmd` in its own process group with stderr to errf; returns its pid */
static pid_t start_bg(const char *cmd, const char *errf) {
    char full[2048];
    snprintf(full, sizeof full, "exec %s >/dev/null 2>%s", cmd, errf);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        setpgid(0, 0);
        execl("/bin/sh", "sh", "-c", full, (char *)NULL);
        _exit(127);
    }
    setpgid(pid, pid);
    return pid;
}

/* waits (at most 60 s) until errf holds `need` count times */
static void wait_for(const char *errf, const char *need, int count) {
    for (int i = 0; i < 3000; i++) {
        char *t = tu_read_all(errf, NULL);
        int n = 0;
        for (const char *p = t; p && (p = strstr(p, need)); p++) n++;
        free(t);
        if (n >= count) return;
        nanosleep(&(struct timespec){0, 20 * 1000 * 1000}, NULL);
    }
    ck_abort_msg("'%s' did not appear %d times in %s", need, count, errf);
}

/* a 2-worker sweep stopped by SIGINT, then by SIGTERM, each while both workers train (sent to
 * the sweep alone: it passes them on), then run to the end: the serial sweep's CSV, the cut
 * cells continued from their checkpoints */
START_TEST(test_workers_interrupted) {
#define LONGF "--layers 1 --dim 16 --heads 2 --head-dim 8 --ffn 32 --steps 1500 --batch 8 --eval-samples 8 --quiet --max-len 96 --threads 1"
#define GRID4 "--task copy,reverse --attn softmax,ssmax"
    char dir[64], ref[128], out[128], errf[128], cmd[1024];
    tu_tmpdir(dir, sizeof dir);
    snprintf(ref, sizeof ref, "%s/serial.csv", dir);
    snprintf(out, sizeof out, "%s/w.csv", dir);
    snprintf(errf, sizeof errf, "%s/err", dir);
    tu_run(&R, LCG " sweep " GRID4 " " LONGF " --out %s", ref);
    ck_assert_msg(R.status == 0, "serial: exit %d: %s", R.status, R.err);
    snprintf(cmd, sizeof cmd, LCG " sweep " GRID4 " " LONGF " --workers 2 --out %s", out);
    const int sigs[2] = {SIGINT, SIGTERM};
    for (int i = 0; i < 2; i++) {
        pid_t pid = start_bg(cmd, errf);
        wait_for(errf, ": worker 1, start", 1);
        nanosleep(&(struct timespec){0, 300 * 1000 * 1000}, NULL); /* both train */
        kill(pid, sigs[i]);
        int st;
        waitpid(pid, &st, 0);
        char *e = tu_read_all(errf, NULL);
        ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 128 + sigs[i], "signal %d: wait status %d: %s", sigs[i], st, e);
        ck_assert_msg(strstr(e, "stopped (") && strstr(e, "run the same command again"), "signal %d: %s", sigs[i], e);
        ck_assert_msg(strstr(e, "checkpoint written"), "signal %d: no checkpoint: %s", sigs[i], e);
        if (i == 1) ck_assert_msg(strstr(e, "continuing from"), "no cell continued from its checkpoint: %s", e);
        free(e);
        char *t = tu_read_all(out, NULL); /* whole cells only */
        ck_assert_msg(!t || (tu_count_lines(t) - 1) % ROWS_PER_CELL == 0, "a partial cell: %s", t);
        free(t);
    }
    tu_run(&R, "%s", cmd);
    ck_assert_msg(R.status == 0 && strstr(R.err, "continuing from"), "resume: exit %d: %s", R.status, R.err);
    tu_assert_same_csv(ref, out, NULL);
    tu_run(&R, "ls %s | grep -c ckpt", dir); /* the cells' checkpoints are gone */
    ck_assert_msg(atoi(R.out) == 0, "checkpoints left: %s", R.out);
    tu_rm_tmpdir(dir);
#undef LONGF
#undef GRID4
}
END_TEST

/* a file whose grid cells are out of order (the reverse cells first, as a parallel sweep can
 * leave it) with another run's rows among them: a serial sweep and a 2-worker sweep resuming it
 * end with the serial CSV's order, the other run's rows kept once, in their place */
START_TEST(test_resume_out_of_order) {
    char dir[64], out[128], seed3[128];
    tu_tmpdir(dir, sizeof dir);
    snprintf(seed3, sizeof seed3, "%s/seed3.csv", dir);
    tu_run(&R, LCG " sweep --task copy --attn softmax --seed 3 " RUNF " --out %s", seed3);
    ck_assert_msg(R.status == 0, "seed 3: %s", R.err);
    char *s3 = tu_read_all(seed3, NULL), id[17];
    memcpy(id, strchr(s3, '\n') + 1, 16);
    id[16] = '\0';
    free(s3);
    for (int workers = 0; workers <= 2; workers += 2) {
        char extra[32] = "";
        if (workers) snprintf(extra, sizeof extra, "--workers %d", workers);
        snprintf(out, sizeof out, "%s/o%d.csv", dir, workers);
        tu_run(&R, LCG " sweep --task reverse --attn softmax,ssmax --seed 1,2 " RUNF " --out %s", out);
        ck_assert_msg(R.status == 0, "reverse cells: %s", R.err);
        tu_run(&R, LCG " sweep --task copy --attn softmax --seed 3 " RUNF " --out %s", out);
        ck_assert_msg(R.status == 0, "seed 3: %s", R.err);
        tu_run(&R, LCG " sweep " GRID " " RUNF " %s --out %s", extra, out);
        ck_assert_msg(R.status == 0 && strstr(R.err, "4 already in"), "resume %s: exit %d: %s", extra, R.status, R.err);
        /* the other run's rows: still there, once, after the 4th cell's (where they were) */
        tu_run(&R, "grep -n '^%s,' %s | cut -d: -f1 | tr '\\n' ' '", id, out);
        char want[64];
        snprintf(want, sizeof want, "%d %d %d ", 2 + 4 * ROWS_PER_CELL, 3 + 4 * ROWS_PER_CELL, 4 + 4 * ROWS_PER_CELL);
        ck_assert_msg(strcmp(R.out, want) == 0, "%s: the seed 3 rows at lines %s, expected %s", extra, R.out, want);
        char rest[160];
        snprintf(rest, sizeof rest, "%s.rest", out);
        tu_run(&R, "grep -v '^%s,' %s >%s", id, out, rest);
        expect_same_as_serial(rest, workers ? "2 workers resuming an out-of-order file" : "a serial sweep resuming an out-of-order file");
    }
    tu_rm_tmpdir(dir);
}
END_TEST

START_TEST(test_workers_usage) {
    const char *bad[] = {"--workers 0",        "--workers 65",     "--workers x",     "--workers 2 --gpus 0",
                         "--gpus 0,1",         "--gpus 2",         "--gpus x",        "--gpus 0,",
                         "--gpus ,0",          "--gpus 0,,1",      "--gpus -1",       "--gpus 0",
                         "--gpus 1.5",         "--gpus ''",        "--workers",       "--workers 2 --workers 3",
                         "--child --workers 2"};
    const char *need[] = {"--workers",   "--workers", "--workers", "--workers", "--device cuda", "--device cuda",
                          "--gpus",      "--gpus",    "--gpus",    "--gpus",    "--gpus",        "at least 1",
                          "--gpus",      "--gpus",    "--workers", "twice",     "--child"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        tu_run(&R, LCG " sweep " GRID " " RUNF " %s --out /tmp/lcgtest-never.csv", bad[i]);
        ck_assert_msg(R.status == 2 && tu_count_lines(R.err) == 1 && strstr(R.err, need[i]),
                      "%s: exit %d, stderr %s", bad[i], R.status, R.err);
        ck_assert(!tu_exists("/tmp/lcgtest-never.csv"));
    }
    /* merge takes the sweep's flags as they were given, these too */
    char dir[64];
    tu_tmpdir(dir, sizeof dir);
    /* a serial sweep's --timeline: one row per cell run, on worker 0 */
    tu_run(&R, LCG " sweep --task copy --attn softmax,ssmax " RUNF " --timeline %s/tl.csv --out %s/s.csv", dir, dir);
    ck_assert_msg(R.status == 0, "serial --timeline: %d %s", R.status, R.err);
    char tlp[128];
    snprintf(tlp, sizeof tlp, "%s/tl.csv", dir);
    char *t = tu_read_all(tlp, NULL);
    ck_assert_msg(t && tu_count_lines(t) == 3 && strstr(t, "\n1,") && strstr(t, "\n2,") && strstr(t, ",0,,") &&
                      strstr(t, ",done\n"), "serial timeline: %s", t);
    free(t);
    tu_run(&R, LCG " merge --workers 2 --out %s/m.csv " GRID " " RUNF " %s", dir, g_ref);
    ck_assert_msg(R.status == 0, "merge with --workers: %d %s", R.status, R.err);
    tu_rm_tmpdir(dir);
}
END_TEST

/* ---- MPI ---------------------------------------------------------------------------------- */
/* the mpirun command line prefix, or NULL (with the reason) when MPI cannot be tested here */
static const char *mpirun_prefix(char *buf, size_t n) {
    if (system("command -v mpirun >/dev/null 2>&1") != 0) {
        fprintf(stderr, "test_sweep: SKIP the MPI tests: mpirun is not installed (Debian: apt-get install "
                        "openmpi-bin libopenmpi-dev, then make MPI=1)\n");
        return NULL;
    }
    if (!tu_exists(LCG_MPI)) {
        fprintf(stderr, "test_sweep: SKIP the MPI tests: " LCG_MPI " is not built (make MPI=1)\n");
        return NULL;
    }
    snprintf(buf, n, "timeout 300 mpirun %s--oversubscribe -np 2", getuid() == 0 ? "--allow-run-as-root " : "");
    return buf;
}

START_TEST(test_mpi_same_as_serial) {
    char pre[128];
    const char *mpirun = mpirun_prefix(pre, sizeof pre);
    if (!mpirun) return;
    char dir[64], out[128];
    tu_tmpdir(dir, sizeof dir);
    snprintf(out, sizeof out, "%s/results/mpi.csv", dir); /* its directory is created */
    tu_run(&R, "env -u OMP_NUM_THREADS %s " LCG_MPI " sweep " GRID " " RUNF0 " --out %s", mpirun, out);
    ck_assert_msg(R.status == 0, "mpirun sweep: exit %d: %s", R.status, R.err);
    ck_assert_msg(strstr(R.err, "8 to run on 2 MPI ranks"), "mpirun sweep: %s", R.err);
    ck_assert_msg(strstr(R.err, "done on rank 0") && strstr(R.err, "done on rank 1"),
                  "both ranks should have run cells: %s", R.err);
    expect_same_as_serial(out, "mpirun -np 2");
    /* the threads of each run: the rank's share of the CPUs, as announced */
    const char *th = strstr(R.err, "MPI ranks, ");
    ck_assert_ptr_nonnull(th);
    int threads = atoi(th + 11);
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    ck_assert_msg(threads >= 1 && (threads == 1 || 2 * threads <= cpus), "%d threads per rank on %ld CPUs", threads,
                  cpus);
    char *wt = tu_csv_column(out, "wall_threads"), want[16];
    snprintf(want, sizeof want, "%d\n", threads);
    for (const char *p = wt; *p; p = strchr(p, '\n') + 1) ck_assert_msg(strncmp(p, want, strlen(want)) == 0, "wall_threads %s", wt);
    free(wt);
    /* OMP_NUM_THREADS wins */
    snprintf(out, sizeof out, "%s/omp.csv", dir);
    tu_run(&R, "OMP_NUM_THREADS=1 %s -x OMP_NUM_THREADS " LCG_MPI " sweep --task copy --attn softmax " RUNF0 " --out %s",
           mpirun, out);
    ck_assert_msg(R.status == 0 && strstr(R.err, "threads as given"), "OMP_NUM_THREADS: %d %s", R.status, R.err);
    char *w1 = tu_csv_column(out, "wall_threads");
    ck_assert_str_eq(w1, "1\n1\n1\n");
    free(w1);

    /* resumed: the copy cells first, serially; then the whole grid under mpirun */
    snprintf(out, sizeof out, "%s/resumed.csv", dir);
    tu_run(&R, LCG " sweep --task copy --attn softmax,ssmax --seed 1,2 " RUNF " --out %s", out);
    ck_assert_msg(R.status == 0, "prefix: %d %s", R.status, R.err);
    tu_run(&R, "%s " LCG_MPI " sweep " GRID " " RUNF " --out %s", mpirun, out);
    ck_assert_msg(R.status == 0 && strstr(R.err, "4 already in"), "mpirun resume: exit %d: %s", R.status, R.err);
    expect_same_as_serial(out, "serial prefix resumed under mpirun -np 2");
    /* nothing left: ranks get no cell and stop */
    tu_run(&R, "%s " LCG_MPI " sweep " GRID " " RUNF " --out %s", mpirun, out);
    ck_assert_msg(R.status == 0 && strstr(R.err, "0 to run"), "mpirun rerun: exit %d: %s", R.status, R.err);
    expect_same_as_serial(out, "mpirun rerun of a finished grid");
    tu_rm_tmpdir(dir);
}
END_TEST

/* a failing run is reported with its rank; the other cells finish; the rerun does the rest */
START_TEST(test_mpi_failed_cell) {
    char pre[128];
    const char *mpirun = mpirun_prefix(pre, sizeof pre);
    if (!mpirun) return;
    char dir[64], out[128];
    tu_tmpdir(dir, sizeof dir);
    snprintf(out, sizeof out, "%s/f.csv", dir);
    /* the ranks' TMPDIR is a file, so the runs cannot write their rows there: every run fails */
    char file[128];
    snprintf(file, sizeof file, "%s/afile", dir);
    tu_write_all(file, "x", 1);
    tu_run(&R, "%s -x TMPDIR=%s " LCG_MPI " sweep --task copy --attn softmax,ssmax " RUNF " --out %s", mpirun, file,
           out);
    ck_assert_msg(R.status != 0, "mpirun with failing runs: exit 0: %s", R.err);
    ck_assert_msg(strstr(R.err, "cell 1 (copy softmax) failed on rank") && strstr(R.err, "cell 2 (copy ssmax) failed on rank") &&
                      strstr(R.err, "run the same command again"),
                  "failures not reported: %s", R.err);
    tu_run(&R, "%s " LCG_MPI " sweep --task copy --attn softmax,ssmax " RUNF " --out %s", mpirun, out);
    ck_assert_msg(R.status == 0 && strstr(R.err, "2 to run"), "rerun: exit %d: %s", R.status, R.err);
    char *t = tu_read_all(out, NULL);
    ck_assert_int_eq(tu_count_lines(t), 1 + 2 * ROWS_PER_CELL);
    free(t);
    tu_rm_tmpdir(dir);
}
END_TEST

START_TEST(test_plain_binary_refuses_mpirun) {
    char pre[128];
    const char *mpirun = mpirun_prefix(pre, sizeof pre);
    if (!mpirun) return;
    tu_run(&R, "%s " LCG " sweep " GRID " " RUNF " --out /tmp/lcgtest-never.csv", mpirun);
    ck_assert_msg(R.status != 0 && strstr(R.err, "built without MPI"), "plain lcgbench under mpirun: %d %s", R.status,
                  R.err);
    ck_assert(!tu_exists("/tmp/lcgtest-never.csv"));
}
END_TEST

static Suite *sweep_suite(void) {
    Suite *s = suite_create("sweep");
    TCase *tc = tcase_create("serial");
    tcase_add_unchecked_fixture(tc, make_reference, drop_reference);
    tcase_add_test(tc, test_serial_grid_order);
    tcase_add_test(tc, test_serial_resume);
    tcase_add_test(tc, test_shards_merged);
    tcase_add_test(tc, test_merge_rejects);
    tcase_add_test(tc, test_shard_usage);
    tcase_add_test(tc, test_workers_same_as_serial);
    tcase_add_test(tc, test_workers_interrupted);
    tcase_add_test(tc, test_resume_out_of_order);
    tcase_add_test(tc, test_workers_usage);
    tcase_add_test(tc, test_mpi_same_as_serial);
    tcase_add_test(tc, test_mpi_failed_cell);
    tcase_add_test(tc, test_plain_binary_refuses_mpirun);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return tu_run_suite(sweep_suite()); }
