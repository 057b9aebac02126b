/*
 * test_faults.c: lcgbench under faults, end to end (./lcgbench as a subprocess, tiny configs).
 *
 * Covers: SIGKILL at exact moments (after training steps, before each evaluation length,
 * between writing the CSV's temp file and its rename, just after the rename) and at timed
 * moments: the CSV is always either the old bytes or the old bytes plus complete new rows,
 * never a partial row, and the next run succeeds and removes the dead run's temp file (a
 * live writer's is kept). SIGINT and
 * SIGTERM during training and during evaluation: exit 130 / 143, one line naming the
 * checkpoint, no rows; `--resume` then writes exactly the CSV of the uninterrupted run (every
 * column but wall_*), also across thread counts, from a --checkpoint-every checkpoint after
 * a SIGKILL, and with --data (the file position is restored). Non-finite values injected
 * into attention, a gradient and the logits (LCG_TEST_NAN): detected at that step, the
 * layer named, exit 1, no CSV, the last good checkpoint written and resumable to the
 * uninterrupted CSV. SIGTERM inside a sample's CPU prefill: the pass is abandoned at once.
 *
 * The exact moments come from LCG_TEST_STOP_AT (kernels/util.h): the process stops itself
 * (SIGSTOP) there and the test delivers the signal, so nothing depends on timing except the
 * timed-kill test, which accepts every outcome a correct program can produce.
 *
 * `sweep`: killed in a cell's training, its evaluation, between a cell's CSV temp file and
 * its rename and just after it, and interrupted (SIGINT stops the sweep, not just the cell):
 * rerun, it ends with exactly the CSV of a sweep that never stopped.
 *
 * Does not cover: power loss (fsync is called, not tested).
 */
#include "testutil.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <dirent.h>
#include <time.h>

#include "../model/checkpoint.h"

#define LCG "./lcgbench"
#define TINY                                                                                        \
    "run --task copy --layers 2 --dim 16 --heads 2 --head-dim 8 --ffn 32 --len 6 --vary 2 --steps " \
    "20 --warmup 5 --batch 8 --max-len 24 --eval-samples 10 --quiet"

typedef struct {
    int status; /* exit code, or 128 + signal */
    char err[8192];
} proc_result;

/* starts `[env] ./lcgbench <args>` (args split at spaces) with stdout to /dev/null and
 * stderr to errpath; returns the pid */
static pid_t spawn(const char *env, const char *errpath, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static pid_t spawn(const char *env, const char *errpath, const char *fmt, ...) {
    static char args[8192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        char *argv[128] = {LCG};
        int argc = 1;
        for (char *save = NULL, *w = strtok_r(args, " ", &save); w && argc < 127; w = strtok_r(NULL, " ", &save))
            argv[argc++] = w;
        argv[argc] = NULL;
        char envcopy[512];
        snprintf(envcopy, sizeof envcopy, "%s", env ? env : "");
        for (char *save = NULL, *kv = strtok_r(envcopy, " ", &save); kv; kv = strtok_r(NULL, " ", &save)) {
            char *eq = strchr(kv, '=');
            if (eq) *eq = '\0', setenv(kv, eq + 1, 1);
        }
        int out = open("/dev/null", O_WRONLY), err = open(errpath, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (out < 0 || err < 0) _exit(99);
        dup2(out, 1), dup2(err, 2);
        execv(LCG, argv);
        _exit(98);
    }
    return pid;
}

static void finish(pid_t pid, const char *errpath, proc_result *r) {
    int st;
    ck_assert_int_eq(waitpid(pid, &st, 0), pid);
    r->status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    tu_slurp(errpath, r->err, sizeof r->err);
}

/* waits until the child stopped itself at its LCG_TEST_STOP_AT point */
static void wait_stopped(pid_t pid, const char *what) {
    int st;
    ck_assert_int_eq(waitpid(pid, &st, WUNTRACED), pid);
    ck_assert_msg(WIFSTOPPED(st), "%s: the process ended (status %d) instead of stopping at its stop point", what, st);
}

/* runs to completion; returns the result */
static void run_ok(const char *env, const char *dir, const char *args) {
    char errpath[256];
    proc_result r;
    snprintf(errpath, sizeof errpath, "%s/stderr", dir);
    finish(spawn(env, errpath, "%s", args), errpath, &r);
    ck_assert_msg(r.status == 0, "'%s %s': exit %d: %s", env ? env : "", args, r.status, r.err);
}

/* files in dir whose name contains ".tmp." */
static int count_temps(const char *dir) {
    DIR *d = opendir(dir);
    ck_assert_ptr_nonnull(d);
    int n = 0;
    for (struct dirent *e; (e = readdir(d));) n += strstr(e->d_name, ".tmp.") != NULL;
    closedir(d);
    return n;
}

static int one_line(const char *s) { return tu_count_lines(s) == 1 && s[strlen(s) - 1] == '\n'; }

/* makes the test's scratch directory and names the files it uses there (NULL: not used):
 * the reference CSV, the CSV under test, the checkpoint and the captured stderr */
static void scratch_paths(char dir[64], char ref[128], char csv[128], char ckpt[128], char errpath[192]) {
    tu_tmpdir(dir, 64);
    if (ref) snprintf(ref, 128, "%s/ref.csv", dir);
    if (csv) snprintf(csv, 128, "%s/r.csv", dir);
    if (ckpt) snprintf(ckpt, 128, "%s/m.ckpt", dir);
    if (errpath) snprintf(errpath, 192, "%s/stderr", dir);
}

/* ---- SIGKILL: the CSV is the old bytes or the old bytes plus complete rows ------------------- */
/* after a kill: csv holds `old` exactly (n_old bytes), or old + whole rows of the same width */
static int check_csv_after_kill(const char *csv, const char *old, size_t n_old, const char *when) {
    size_t n;
    char *now = tu_read_all(csv, &n);
    ck_assert_msg(now != NULL, "%s: %s vanished", when, csv);
    ck_assert_msg(n >= n_old && memcmp(now, old, n_old) == 0, "%s: the old rows of %s changed", when, csv);
    ck_assert_msg(n > 0 && now[n - 1] == '\n', "%s: %s ends in a partial row", when, csv);
    tu_csv_doc d;
    tu_csv_parse(now, &d); /* every row as wide as the header, or the test fails */
    for (int r = 1; r < d.rows; r++)
        ck_assert_msg(d.cols[r] == d.cols[0], "%s: row %d has %d fields", when, r, d.cols[r]);
    tu_csv_free(&d);
    free(now);
    return n > n_old; /* rows were added */
}

START_TEST(test_sigkill_at_stop_points) {
    char dir[64], csv[128], errpath[192];
    scratch_paths(dir, NULL, csv, NULL, errpath);
    char args[512];
    snprintf(args, sizeof args, TINY " --out %s", csv);
    run_ok(NULL, dir, args); /* the rows already there */
    size_t n_old;
    char *old = tu_read_all(csv, &n_old);
    ck_assert_ptr_nonnull(old);

    struct {
        char point[256];
        int adds; /* whether the rows must be there after the kill */
    } cases[] = {{"step:1", 0}, {"step:13", 0}, {"step:20", 0}, {"eval:8", 0}, {"eval:16", 0}, {"", 0}, {"", 1}};
    snprintf(cases[5].point, sizeof cases[5].point, "rename:%s", csv);  /* temp written, not renamed */
    snprintf(cases[6].point, sizeof cases[6].point, "renamed:%s", csv); /* just renamed */
    for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
        char env[300];
        ck_assert(strlen(cases[k].point) < 250);
        snprintf(env, sizeof env, "LCG_TEST_STOP_AT=%.250s", cases[k].point);
        pid_t pid = spawn(env, errpath, "%s", args);
        wait_stopped(pid, cases[k].point);
        ck_assert_int_eq(kill(pid, SIGKILL), 0);
        proc_result r;
        finish(pid, errpath, &r);
        ck_assert_int_eq(r.status, 128 + SIGKILL);
        int added = check_csv_after_kill(csv, old, n_old, cases[k].point);
        ck_assert_msg(added == cases[k].adds, "%s: rows %s", cases[k].point, added ? "added" : "missing");
        if (k == 5) ck_assert_msg(count_temps(dir) == 1, "rename: the killed run's temp file is not there");
        /* the next run works, appends its rows whole and removes the dead run's temp file */
        run_ok(NULL, dir, args);
        ck_assert_int_eq(count_temps(dir), 0);
        free(old);
        old = tu_read_all(csv, &n_old);
        ck_assert_ptr_nonnull(old);
    }
    tu_csv_doc d;
    tu_csv_load(csv, &d);
    ck_assert_int_eq(d.rows, 1 + 2 * (1 + 7 + 1)); /* first run, 7 recoveries, the renamed one: 2 rows each */
    tu_csv_free(&d);
    /* a temp file of a writer that is alive (this test) is left alone */
    char live[256];
    snprintf(live, sizeof live, "%s.tmp.%d", csv, (int)getpid());
    tu_write_all(live, "x", 1);
    run_ok(NULL, dir, args);
    ck_assert_msg(tu_exists(live), "a live writer's temp file was removed");
    remove(live);
    free(old);
    tu_rm_tmpdir(dir);
}
END_TEST

/* SIGKILL at timed moments across the whole run: every outcome is old or old + whole rows */
START_TEST(test_sigkill_timed) {
    char dir[64], csv[128], errpath[192], args[512];
    scratch_paths(dir, NULL, csv, NULL, errpath);
    snprintf(args, sizeof args, TINY " --out %s", csv);
    run_ok(NULL, dir, args);
    double t0 = lcg_now();
    run_ok(NULL, dir, args);
    double full = lcg_now() - t0; /* one run's duration */
    for (int k = 1; k <= 8; k++) {
        size_t n_old = 0;
        char *old = tu_read_all(csv, &n_old);
        ck_assert_ptr_nonnull(old);
        pid_t pid = spawn(NULL, errpath, "%s", args);
        struct timespec ts = {0, (long)(full * k / 8.0 * 1e9)};
        nanosleep(&ts, NULL);
        kill(pid, SIGKILL);
        proc_result r;
        finish(pid, errpath, &r);
        ck_assert_msg(r.status == 0 || r.status == 128 + SIGKILL, "exit %d", r.status);
        check_csv_after_kill(csv, old, n_old, "timed kill");
        free(old);
    }
    run_ok(NULL, dir, args);
    ck_assert_int_eq(count_temps(dir), 0);
    tu_rm_tmpdir(dir);
}
END_TEST

/* ---- SIGINT / SIGTERM and --resume ----------------------------------------------------------- */
/* stops a run at `point`, sends sig, expects exit 128+sig with one line naming `ckpt` and no CSV */
static void interrupt_at(const char *dir, const char *point, int sig, const char *args, const char *csv,
                         const char *ckpt, const char *need) {
    char env[300], errpath[192];
    snprintf(env, sizeof env, "LCG_TEST_STOP_AT=%.250s", point);
    snprintf(errpath, sizeof errpath, "%s/stderr", dir);
    pid_t pid = spawn(env, errpath, "%s", args);
    wait_stopped(pid, point);
    ck_assert_int_eq(kill(pid, sig), 0);
    ck_assert_int_eq(kill(pid, SIGCONT), 0);
    proc_result r;
    finish(pid, errpath, &r);
    ck_assert_msg(r.status == 128 + sig, "%s: exit %d, expected %d: %s", point, r.status, 128 + sig, r.err);
    ck_assert_msg(one_line(r.err), "%s: expected one stderr line: %s", point, r.err);
    ck_assert_msg(strstr(r.err, ckpt) && strstr(r.err, need), "%s: stderr lacks '%s' or '%s': %s", point, ckpt, need, r.err);
    ck_assert_msg(!tu_exists(csv), "%s: an interrupted run wrote %s", point, csv);
    ck_assert_msg(tu_exists(ckpt), "%s: no checkpoint at %s", point, ckpt);
}

/* SIGTERM in the middle of a sample's CPU prefill (after its layer 0): the pass is abandoned
 * there, not finished (a 65,536-token sample takes minutes on a CPU). The stop point
 * "prefill" stops the process after every layer of every prefill, so a run that went on to
 * layer 1 would stop again instead of exiting. Then --resume gives the uninterrupted CSV. */
START_TEST(test_sigterm_inside_prefill) {
    char dir[64], ref[128], csv[128], ckpt[128], errpath[192], args[1024];
    scratch_paths(dir, ref, csv, ckpt, errpath);
    snprintf(args, sizeof args, TINY " --out %s", ref);
    run_ok(NULL, dir, args);
    snprintf(args, sizeof args, TINY " --save %s --out %s", ckpt, csv);
    pid_t pid = spawn("LCG_TEST_STOP_AT=prefill OMP_NUM_THREADS=1", errpath, "%s", args);
    wait_stopped(pid, "prefill");
    ck_assert_int_eq(kill(pid, SIGTERM), 0);
    ck_assert_int_eq(kill(pid, SIGCONT), 0);
    int st;
    ck_assert_int_eq(waitpid(pid, &st, WUNTRACED), pid);
    if (WIFSTOPPED(st)) { /* went on to the next layer: the bug this test is for */
        kill(pid, SIGKILL);
        waitpid(pid, &st, 0);
        ck_abort_msg("the prefill went on to its next layer after SIGTERM");
    }
    char err[8192];
    tu_slurp(errpath, err, sizeof err);
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 128 + SIGTERM, "exit status %d: %s", st, err);
    ck_assert_msg(one_line(err) && strstr(err, "terminated while evaluating length 8; no rows written"), "%s", err);
    ck_assert_msg(!tu_exists(csv), "an interrupted run wrote %s", csv);
    snprintf(args, sizeof args, "run --resume %s --max-len 24 --eval-samples 10 --quiet --out %s", ckpt, csv);
    run_ok(NULL, dir, args);
    tu_assert_same_csv(ref, csv, NULL);
    tu_rm_tmpdir(dir);
}
END_TEST

START_TEST(test_sigint_resume_identical) {
    char dir[64], ref[128], csv[128], ckpt[128], args[1024];
    scratch_paths(dir, ref, csv, NULL, NULL);
    snprintf(args, sizeof args, TINY " --out %s", ref);
    run_ok(NULL, dir, args);

    /* SIGINT after step 7 of 20, no --save: the checkpoint goes beside the CSV */
    snprintf(args, sizeof args, TINY " --out %s", csv);
    interrupt_at(dir, "step:7", SIGINT, args, csv, dir, "interrupted at step "); /* 7 or 8: a worker thread may take the signal */
    /* its name is in the message: lcgbench-<run_id>.ckpt */
    char errbuf[8192], errpath[192];
    snprintf(errpath, sizeof errpath, "%s/stderr", dir);
    tu_slurp(errpath, errbuf, sizeof errbuf);
    char *q = strstr(errbuf, "written to '");
    ck_assert_ptr_nonnull(q);
    snprintf(ckpt, sizeof ckpt, "%.*s", (int)strcspn(q + 12, "'"), q + 12);
    ck_assert_msg(strstr(ckpt, "/lcgbench-") && strstr(ckpt, ".ckpt"), "checkpoint path %s", ckpt);
    /* resumed, on another thread count: the uninterrupted run's CSV */
    snprintf(args, sizeof args, "run --resume %s --max-len 24 --eval-samples 10 --quiet --out %s", ckpt, csv);
    run_ok("OMP_NUM_THREADS=2", dir, args);
    tu_assert_same_csv(ref, csv, NULL);

    /* SIGTERM during the evaluation of length 16, with --save: 143, no rows, then resumed */
    remove(csv);
    snprintf(ckpt, sizeof ckpt, "%s/m.ckpt", dir);
    snprintf(args, sizeof args, TINY " --save %s --out %s", ckpt, csv);
    interrupt_at(dir, "eval:16", SIGTERM, args, csv, ckpt,
                 "terminated while evaluating length 16; no rows written (1 finished length kept for the resumed run)");
    /* length 8, finished before the signal, is kept beside the checkpoint; the resumed run
     * takes it from there (and says so) and removes the file once the rows are in the CSV */
    char rungs[160];
    snprintf(rungs, sizeof rungs, "%s.rungs", ckpt);
    ck_assert_msg(tu_exists(rungs), "no %s after the interrupted evaluation", rungs);
    snprintf(args, sizeof args, "run --resume %s --max-len 24 --eval-samples 10 --out %s", ckpt, csv);
    run_ok("OMP_NUM_THREADS=1", dir, args);
    char said[8192], errp[192];
    snprintf(errp, sizeof errp, "%s/stderr", dir);
    tu_slurp(errp, said, sizeof said);
    ck_assert_msg(strstr(said, "1 length evaluated before the interruption"), "resumed run: %s", said);
    tu_assert_same_csv(ref, csv, NULL);
    ck_assert_msg(!tu_exists(rungs), "%s left after the rows were written", rungs);
    /* the checkpoint kept the training time: the rows report it, not the resumed process's zero */
    char *tps = tu_csv_column(csv, "wall_train_tok_s");
    ck_assert_msg(atof(tps) > 0, "resumed after training: wall_train_tok_s %s", tps);
    free(tps);

    /* under timeout(1), which sends its SIGTERM to the run and then to the run's process group
     * (two within microseconds: one request, not "a second ^C"), the checkpoint is still written */
    remove(ckpt);
    remove(csv);
    snprintf(errpath, sizeof errpath, "%s/stderr", dir);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        int err = open(errpath, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (err < 0) _exit(99);
        dup2(err, 2);
        execlp("timeout", "timeout", "-s", "TERM", "1", LCG, "run", "--task", "copy", "--layers", "2", "--dim", "16",
               "--heads", "2", "--head-dim", "8", "--ffn", "32", "--len", "6", "--vary", "2", "--steps", "100000000", "--batch", "8",
               "--quiet", "--save", ckpt, "--out", csv, (char *)NULL);
        _exit(98);
    }
    proc_result r;
    finish(pid, errpath, &r);
    ck_assert_msg(r.status == 124 && strstr(r.err, "terminated at step ") && strstr(r.err, ckpt),
                  "under timeout: exit %d: %s", r.status, r.err);
    ck_assert_msg(tu_exists(ckpt) && !tu_exists(csv), "under timeout: no checkpoint at %s, or rows written", ckpt);

    /* interrupted twice: the resumed run is interrupted again and resumed again */
    remove(csv);
    snprintf(args, sizeof args, TINY " --save %s --out %s", ckpt, csv);
    interrupt_at(dir, "step:4", SIGINT, args, csv, ckpt, "interrupted at step ");
    snprintf(args, sizeof args, "run --resume %s --max-len 24 --eval-samples 10 --quiet --out %s", ckpt, csv);
    interrupt_at(dir, "step:15", SIGINT, args, csv, ckpt, "interrupted at step ");
    run_ok(NULL, dir, args);
    tu_assert_same_csv(ref, csv, NULL);
    tu_rm_tmpdir(dir);
}
END_TEST

/* SIGKILL with --checkpoint-every: at most N steps lost; resumed, the same CSV */
START_TEST(test_sigkill_resume_periodic) {
    char dir[64], ref[128], csv[128], ckpt[128], args[1024], errpath[192];
    scratch_paths(dir, ref, csv, ckpt, errpath);
    snprintf(args, sizeof args, TINY " --out %s", ref);
    run_ok("OMP_NUM_THREADS=2", dir, args);
    snprintf(args, sizeof args, TINY " --checkpoint-every 5 --save %s --out %s", ckpt, csv);
    pid_t pid = spawn("LCG_TEST_STOP_AT=step:13 OMP_NUM_THREADS=1", errpath, "%s", args);
    wait_stopped(pid, "step:13");
    kill(pid, SIGKILL);
    proc_result r;
    finish(pid, errpath, &r);
    ck_assert_int_eq(r.status, 128 + SIGKILL);
    ck_assert(!tu_exists(csv));
    lcg_checkpoint ck;
    char err[512];
    ck_assert_msg(checkpoint_load(ckpt, &ck, err, sizeof err) == 0, "%s", err);
    ck_assert_int_eq(ck.step, 10); /* the last multiple of 5 before the kill */
    checkpoint_free(&ck);
    snprintf(args, sizeof args, "run --resume %s --max-len 24 --eval-samples 10 --quiet --out %s", ckpt, csv);
    run_ok("OMP_NUM_THREADS=2", dir, args);
    tu_assert_same_csv(ref, csv, NULL);
    tu_rm_tmpdir(dir);
}
END_TEST

/* --data: resuming restores the position in the train file */
START_TEST(test_resume_with_data) {
    char dir[64], ref[128], csv[128], ckpt[128], args[1024];
    scratch_paths(dir, ref, csv, ckpt, NULL);
    tu_result *tr = malloc(sizeof *tr);
    ck_assert_int_eq(tu_run(tr, LCG " gen --task copy --out %s/d --count 50 --len 6 --vary 2", dir), 0);
    ck_assert_int_eq(tu_run(tr, LCG " gen --task copy --out %s/d --split test --len 8 --count 10", dir), 0);
    free(tr);
    /* 50 samples, batch 8: the file wraps around between steps 6 and 7 */
    snprintf(args, sizeof args, TINY " --data %s/d --out %s", dir, ref);
    run_ok(NULL, dir, args);
    snprintf(args, sizeof args, TINY " --data %s/d --save %s --out %s", dir, ckpt, csv);
    interrupt_at(dir, "step:9", SIGINT, args, csv, ckpt, "interrupted at step ");
    snprintf(args, sizeof args, "run --resume %s --eval-samples 10 --quiet --out %s", ckpt, csv);
    run_ok(NULL, dir, args); /* the data directory comes from the checkpoint */
    tu_assert_same_csv(ref, csv, NULL);
    tu_rm_tmpdir(dir);
}
END_TEST

/* ---- sweep: killed or interrupted at several points, rerun to exactly the uninterrupted CSV */
#define SWEEP                                                                                        \
    "sweep --task copy --seed 1,2,3 --layers 2 --dim 16 --heads 2 --head-dim 8 --ffn 32 --len 6 --vary 2 " \
    "--steps 20 --warmup 5 --batch 8 --max-len 24 --eval-samples 10 --quiet"

START_TEST(test_sweep_kill_and_resume) {
    char dir[64], ref[128], csv[128], args[1024], errpath[192];
    scratch_paths(dir, ref, NULL, NULL, errpath);
    snprintf(csv, sizeof csv, "%s/s.csv", dir);
    snprintf(args, sizeof args, SWEEP " --out %s", ref);
    run_ok(NULL, dir, args); /* uninterrupted */
    snprintf(args, sizeof args, SWEEP " --out %s", csv);
    /* each step kills the sweep at a stop point; the cells already in the CSV are skipped by
     * the next, so the kills land in cell 1, after cell 1, inside cell 2's write, in cell 2,
     * then an interrupt in cell 3 */
    struct {
        char point[256];
        int sig, rows; /* rows in the CSV afterwards (2 per cell) */
    } steps[] = {{"step:10", SIGKILL, 0}, {"", SIGKILL, 2}, {"", SIGKILL, 2},
                 {"step:10", SIGKILL, 2}, {"eval:16", SIGKILL, 2}, {"", SIGKILL, 4}, {"step:3", SIGINT, 4}};
    snprintf(steps[1].point, sizeof steps[1].point, "renamed:%s", csv);
    snprintf(steps[2].point, sizeof steps[2].point, "rename:%s", csv);
    snprintf(steps[5].point, sizeof steps[5].point, "renamed:%s", csv);
    for (size_t k = 0; k < sizeof steps / sizeof *steps; k++) {
        char env[300];
        snprintf(env, sizeof env, "LCG_TEST_STOP_AT=%.250s", steps[k].point);
        pid_t pid = spawn(env, errpath, "%s", args);
        wait_stopped(pid, steps[k].point);
        kill(pid, steps[k].sig);
        if (steps[k].sig != SIGKILL) kill(pid, SIGCONT);
        proc_result r;
        finish(pid, errpath, &r);
        ck_assert_msg(r.status == 128 + steps[k].sig, "%s: exit %d: %s", steps[k].point, r.status, r.err);
        if (steps[k].sig == SIGINT) /* the run's line, then the sweep's last: stopped, not continued */
            ck_assert_msg(strstr(r.err, "interrupted at step 3/20") && strstr(r.err, "the sweep, run again, continues") &&
                              strstr(r.err, "stopped in cell 3 (copy seed 3); run the same command again to continue\n") &&
                              r.err[strlen(r.err) - 1] == '\n' && !strstr(strstr(r.err, "stopped in cell 3"), "\n["),
                          "%s", r.err);
        int rows = 0;
        if (tu_exists(csv)) {
            tu_csv_doc d;
            tu_csv_load(csv, &d); /* complete rows only, or the test fails */
            rows = d.rows - 1;
            tu_csv_free(&d);
        }
        ck_assert_msg(rows == steps[k].rows, "%s: %d rows, expected %d", steps[k].point, rows, steps[k].rows);
    }
    /* the interrupted cell continues from its checkpoint (the rerun says so), then is removed */
    proc_result fin;
    finish(spawn(NULL, errpath, "%s", args), errpath, &fin);
    ck_assert_msg(fin.status == 0, "exit %d: %s", fin.status, fin.err);
    ck_assert_msg(strstr(fin.err, "continuing from") && strstr(fin.err, "(step 3)"), "%s", fin.err);
    tu_assert_same_csv(ref, csv, NULL);
    ck_assert_int_eq(count_temps(dir), 0);
    char ls[256];
    snprintf(ls, sizeof ls, "ls %s | grep -c ckpt", dir);
    FILE *p = popen(ls, "r");
    ck_assert_ptr_nonnull(p);
    ck_assert_msg(fgetc(p) == '0', "the finished cell's checkpoint was kept");
    pclose(p);
    /* and a finished sweep has nothing left to do */
    run_ok(NULL, dir, args);
    tu_assert_same_csv(ref, csv, NULL);
    tu_rm_tmpdir(dir);
}
END_TEST

/* ---- non-finite values ---------------------------------------------------------------------- */
START_TEST(test_nonfinite_detected) {
    char dir[64], ref[128], csv[128], ckpt[128], args[1024], errpath[192];
    scratch_paths(dir, ref, csv, ckpt, errpath);
    snprintf(args, sizeof args, TINY " --out %s", ref);
    run_ok(NULL, dir, args);
    struct {
        const char *env, *need1, *need2;
        long good_step; /* -1: nothing to keep */
    } cases[] = {
        {"LCG_TEST_NAN=attn@7", "attention weights (from the scores) of layer 1 at step 7", "last good checkpoint (step 6)", 6},
        {"LCG_TEST_NAN=grad@12", "the gradient of w_down of layer 1 at step 12", "last good checkpoint (step 11)", 11},
        {"LCG_TEST_NAN=logits@5", "the logits at step 5", "last good checkpoint (step 4)", 4},
        {"LCG_TEST_NAN=logits@1", "the logits at step 1", "no checkpoint written", -1},
    };
    for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
        remove(ckpt);
        snprintf(args, sizeof args, TINY " --save %s --out %s", ckpt, csv);
        proc_result r;
        finish(spawn(cases[k].env, errpath, "%s", args), errpath, &r);
        ck_assert_msg(r.status == 1, "%s: exit %d: %s", cases[k].env, r.status, r.err);
        ck_assert_msg(one_line(r.err), "%s: expected one line: %s", cases[k].env, r.err);
        ck_assert_msg(strstr(r.err, cases[k].need1) && strstr(r.err, cases[k].need2), "%s: %s", cases[k].env, r.err);
        ck_assert_msg(!tu_exists(csv), "%s: rows written after non-finite values", cases[k].env);
        if (cases[k].good_step < 0) {
            ck_assert(!tu_exists(ckpt));
            continue;
        }
        ck_assert_msg(strstr(r.err, ckpt), "%s: the checkpoint path is not named: %s", cases[k].env, r.err);
        lcg_checkpoint ck;
        char err[512];
        ck_assert_msg(checkpoint_load(ckpt, &ck, err, sizeof err) == 0, "%s", err);
        ck_assert_int_eq(ck.step, cases[k].good_step);
        for (size_t i = 0; i < ck.n_params; i++) ck_assert_msg(isfinite(ck.params[i]), "non-finite parameter %zu kept", i);
        checkpoint_free(&ck);
        /* the fault was transient: resumed without it, the uninterrupted run's CSV */
        snprintf(args, sizeof args, "run --resume %s --max-len 24 --eval-samples 10 --quiet --out %s", ckpt, csv);
        run_ok(NULL, dir, args);
        tu_assert_same_csv(ref, csv, NULL);
        remove(csv);
    }
    tu_rm_tmpdir(dir);
}
END_TEST

static Suite *faults_suite(void) {
    Suite *s = suite_create("faults");
    TCase *tc = tcase_create("kill");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, test_sigkill_at_stop_points);
    tcase_add_test(tc, test_sigkill_timed);
    tcase_add_test(tc, test_sigkill_resume_periodic);
    tcase_add_test(tc, test_sweep_kill_and_resume);
    suite_add_tcase(s, tc);
    tc = tcase_create("interrupt");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, test_sigint_resume_identical);
    tcase_add_test(tc, test_sigterm_inside_prefill);
    tcase_add_test(tc, test_resume_with_data);
    suite_add_tcase(s, tc);
    tc = tcase_create("nonfinite");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, test_nonfinite_detected);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) {
    if (access(LCG, X_OK) != 0) {
        fprintf(stderr, "test_faults: %s not found; run from the repository root after 'make lcgbench'\n", LCG);
        return 1;
    }
    return tu_run_suite(faults_suite());
}
