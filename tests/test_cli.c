/*
 * test_cli.c: end-to-end tests of the `lcgbench` command line, run as a subprocess
 * (./lcgbench, from the repository root) on tiny configurations that finish in well under a
 * second each.
 *
 * Covers: strict flag parsing (every bad input is exit 2 with one stderr line naming the
 * offending flag or word, and no CSV written); --version, help and run --help; the CSV a good
 * run writes (header, one row per ladder length, append); refusal to append to a file of
 * another schema; bitwise reproducibility of every non-wall_* column across repeats, OMP
 * thread counts and --threads, and that the seed matters; checkpoint save/load through the
 * CLI and the load errors (conflicting flag, checksum, truncation, bad magic).
 *
 * Does not cover: whether the model learns anything (accuracies are only compared, never
 * judged), kernel and gradient numerics (test_kernels, test_model), greedy-decoding
 * equivalence of the evaluator (test_harness), progress output on a terminal, or speed.
 */
#include "testutil.h"

#include "../tasks/task.h"
#include "../harness/run.h"
#include "../harness/csv.h"
#include "../harness/threads.h"

#define LCG "./lcgbench"
/* a tiny model and task; each piece leaves out the flags some test varies */
#define MODEL_NO_TASK "--layers 2 --dim 16 --heads 2 --head-dim 8 --ffn 32"
#define MODEL "--task copy " MODEL_NO_TASK
#define TRAIN "--steps 20 --warmup 5 --batch 8"
#define EVAL "--max-len 24 --eval-samples 10"
#define TINY MODEL " --len 6 --vary 2 " TRAIN " " EVAL " --quiet"
/* ladder of TINY: (6+2)*2^k up to 24 */
#define TINY_ROWS 2

static tu_result R; /* large: static, one per test process (fork mode) */

/* ---- CSV ------------------------------------------------------------------------------------ */
/* ---- assertions on one lcgbench invocation -------------------------------------------------- */
/* `lcgbench <args>` is a usage error (exit 2, no stdout, one stderr line naming need1 and need2)
 * and writes no csv; `lcgbench run <args>` fails at run time (exit 1, one line naming need) */
#define expect_usage(csv, args, need1, need2) tu_expect_fail(&R, 2, csv, need1, need2, LCG " %s", args)
#define expect_runtime_error(need, ...) tu_expect_fail(&R, 1, NULL, need, NULL, LCG " run " __VA_ARGS__)

/* `[env] lcgbench run <args>` must succeed quietly: exit 0, nothing on stderr */
static void expect_ok(const char *env, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void expect_ok(const char *env, const char *fmt, ...) {
    char args[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    const char *e = env ? env : "", *sp = env ? " " : "";
    tu_run(&R, "%s%s" LCG " run %s", e, sp, args);
    ck_assert_msg(R.status == 0, "'%s%slcgbench run %s': exit %d; stderr: %s", e, sp, args, R.status, R.err);
    ck_assert_msg(R.err[0] == '\0', "'lcgbench run %s' (--quiet): unexpected stderr: %s", args, R.err);
}

/* ---- 1. bad input and help ------------------------------------------------------------------ */
START_TEST(test_bad_input) {
    char dir[64], csv[128], a[4096];
    tu_tmpdir(dir, sizeof dir);
    snprintf(csv, sizeof csv, "%s/x.csv", dir);
    /* every case is otherwise a valid tiny run writing to csv, so a wrongly accepted one
     * finishes fast and is caught by the checks in expect_usage */
#define BAD(need1, need2, ...)                                                                 \
    do {                                                                                       \
        snprintf(a, sizeof a, __VA_ARGS__);                                                    \
        expect_usage(csv, a, need1, need2);                                                    \
    } while (0)
#define NO_STEPS MODEL " --len 6 --vary 2 --warmup 0 --batch 8 " EVAL " --quiet"
    /* commands and topics */
    BAD("frob", NULL, "frob");
    BAD("nosuchtopic", NULL, "help nosuchtopic");
    /* flag syntax */
    BAD("--bogus", NULL, "run " TINY " --out %s --bogus", csv);
    BAD("--bogus", NULL, "run " TINY " --out %s --bogus=3", csv);
    BAD("--steps", NULL, "run " NO_STEPS " --out %s --steps", csv);
    BAD("--quiet", NULL, "run " MODEL " --len 6 --vary 2 " TRAIN " " EVAL " --out %s --quiet=1", csv);
    BAD("extra", NULL, "run " TINY " --out %s extra", csv);
    /* numbers */
    BAD("--steps", "abc", "run " NO_STEPS " --out %s --steps abc", csv);
    BAD("--steps", NULL, "run " NO_STEPS " --out %s --steps 20x", csv);
    BAD("--steps", NULL, "run " NO_STEPS " --out %s --steps 0", csv);
    BAD("--steps", NULL, "run " NO_STEPS " --out %s --steps 99999999999999999999", csv);
    BAD("--batch", NULL, "run " MODEL " --len 6 --vary 2 --steps 20 --warmup 5 " EVAL " --quiet --out %s --batch -3", csv);
    BAD("--seed", NULL, "run " TINY " --out %s --seed -1", csv);
    BAD("--seed", NULL, "run " TINY " --out %s --seed 99999999999999999999999", csv);
    BAD("--lr", NULL, "run " TINY " --out %s --lr nan", csv);
    BAD("--alpha", NULL, "run " TINY " --out %s --alpha 3", csv);
    BAD("alpha", NULL, "run " TINY " --out %s --alpha 1.5 --attn softmax", csv);
    BAD("alpha", NULL, "run " TINY " --out %s --alpha 1.5 --attn ssmax", csv);
    BAD("alpha", NULL, "run " TINY " --out %s --alpha 2 --attn sparsemax", csv);
    BAD("--alpha", NULL, "run " TINY " --out %s --alpha 1 --attn asentmax", csv);
    BAD("--alpha", NULL, "run " TINY " --out %s --alpha 2.5 --attn entmax", csv);
    BAD("--alpha", NULL, "run " TINY " --out %s --alpha 0.9 --attn entmax-learn", csv);
    /* names */
    BAD("--task", "nosuch", "run " MODEL_NO_TASK " --len 6 --vary 2 " TRAIN " " EVAL " --quiet --out %s --task nosuch", csv);
    BAD("--attn", "nosuch", "run " TINY " --out %s --attn nosuch", csv);
    BAD("--pos", "nosuch", "run " TINY " --out %s --pos nosuch", csv);
    /* lengths */
    BAD("--vary", NULL, "run " MODEL " --len 6 --vary 6 " TRAIN " " EVAL " --quiet --out %s", csv);
    BAD("--vary", NULL, "run " MODEL " --len 6 --vary 9 " TRAIN " " EVAL " --quiet --out %s", csv);
    BAD("--max-len", NULL, "run " MODEL " --len 6 --vary 2 " TRAIN " --eval-samples 10 --quiet --out %s --max-len 7", csv);
    /* a ladder whose decoders cannot fit: refused with the estimate before any training */
    BAD("needs about", "GiB", "run " MODEL " --len 6 --vary 2 " TRAIN " --eval-samples 10 --quiet --out %s --max-len 16000000 --threads 64", csv);
    BAD("--eval-lens", NULL, "run " TINY " --out %s --eval-lens ''", csv);
    BAD("--eval-lens", NULL, "run " TINY " --out %s --eval-lens 64,x", csv);
    BAD("--eval-lens", NULL, "run " TINY " --out %s --eval-lens 0", csv);
    /* task parameters */
    BAD("--vocab", NULL, "run " TINY " --out %s --vocab 1", csv);
    BAD("--vocab", NULL, "run " TINY " --out %s --vocab 2.5", csv);
    BAD("--kv-density", NULL, "run " TINY " --out %s --kv-density 0.5", csv); /* recall's, not copy's */
    BAD("--kv-density", NULL, "run --task recall --dim 16 --heads 2 --head-dim 8 --ffn 32 --len 16 --vary 4 "
        TRAIN " --max-len 40 --eval-samples 10 --quiet --out %s --kv-density 0", csv);
#undef NO_STEPS
#undef BAD
    tu_rm_tmpdir(dir);
}
END_TEST

/* the rest of the bad-input matrix: every kind of bad value on the flags of every command */
START_TEST(test_bad_input_matrix) {
    char dir[64], csv[128], a[4096], ck[128];
    tu_tmpdir(dir, sizeof dir);
    snprintf(csv, sizeof csv, "%s/x.csv", dir);
    snprintf(ck, sizeof ck, "%s/m.ckpt", dir);
    expect_ok(NULL, TINY " --save %s --out %s/train.csv", ck, dir); /* a checkpoint to misuse */
#define BAD(need1, need2, ...)                                                                 \
    do {                                                                                       \
        snprintf(a, sizeof a, __VA_ARGS__);                                                    \
        expect_usage(csv, a, need1, need2);                                                    \
    } while (0)
#define T6 "run --task copy --steps 20 --len 6 --vary 2 --max-len 24 --quiet" /* default model */
    /* commands, topics, flags of gen and help */
    BAD("--bogus", NULL, "gen --out %s/g --bogus", dir);
    BAD("at most one topic", NULL, "help a b");
    BAD("at most one topic", NULL, "help run extra");
    /* missing values, empty values */
    BAD("--resume", "needs a value", T6 " --out %s --resume", csv);
    BAD("--warmup", "expected an integer", T6 " --out %s --warmup=", csv);
    BAD("--save", "empty", T6 " --out %s --save ''", csv);
    BAD("--out", "empty", T6 " --out ''");
    /* negative, zero, overflow, out of range, malformed */
    BAD("--layers", "-1", T6 " --out %s --layers -1", csv);
    BAD("--eval-samples", NULL, "run --task copy " MODEL_NO_TASK " --steps 20 --len 6 --vary 2 --max-len 24 --quiet --out %s --eval-samples -1", csv);
    BAD("--batch", "'0'", T6 " --out %s --batch 0", csv);
    BAD("--threads", "'0'", T6 " --out %s --threads 0", csv);
    BAD("--threads", "5000", T6 " --out %s --threads 5000", csv);
    BAD("--checkpoint-every", "'0'", T6 " --out %s --checkpoint-every 0", csv);
    BAD("--log-every", "'0'", T6 " --out %s --log-every 0", csv);
    BAD("--heads", "'0'", "run --task copy --layers 2 --dim 16 --head-dim 8 --ffn 32 --steps 20 --len 6 --vary 2 --max-len 24 --quiet --out %s --heads 0", csv);
    BAD("--dim", "99999999999999999999", "run --task copy --layers 2 --heads 2 --head-dim 8 --ffn 32 --steps 20 --len 6 --vary 2 --max-len 24 --quiet --out %s --dim 99999999999999999999", csv);
    BAD("--dim", "expected an integer", "run --task copy --layers 2 --heads 2 --head-dim 8 --ffn 32 --steps 20 --len 6 --vary 2 --max-len 24 --quiet --out %s --dim 1.5", csv);
    BAD("--len", "2147483648", "run --task copy " MODEL_NO_TASK " --steps 20 --vary 2 --max-len 24 --quiet --out %s --len 2147483648", csv);
    BAD("--lr", "1e999", T6 " --out %s --lr 1e999", csv);
    BAD("--lr", "'0'", T6 " --out %s --lr 0", csv);
    BAD("--lr", "inf", T6 " --out %s --lr inf", csv);
    BAD("--lr", "abc", T6 " --out %s --lr abc", csv);
    BAD("--clip", "inf", T6 " --out %s --clip inf", csv);
    BAD("--weight-decay", "-1", T6 " --out %s --weight-decay -1", csv);
    BAD("--seed", "0x10", T6 " --out %s --seed 0x10", csv);
    BAD("--eval-lens", "3,", "run --task copy " MODEL_NO_TASK " --steps 20 --len 6 --vary 2 --quiet --out %s --eval-lens 3,", csv);
    BAD("--eval-lens", NULL, "run --task copy " MODEL_NO_TASK " --steps 20 --len 6 --vary 2 --quiet --out %s --eval-lens 99999999999999999999", csv);
    BAD("--eval-lens", "at most 32", "run --task copy " MODEL_NO_TASK " --steps 20 --len 6 --vary 2 --quiet --out %s --eval-lens "
        "8,16,24,32,40,48,56,64,72,80,88,96,104,112,120,128,136,144,152,160,168,176,184,192,200,208,216,224,232,240,248,256,264", csv);
    BAD("head-dim", "even", "run --task copy --layers 2 --dim 16 --heads 2 --ffn 32 --steps 20 --len 6 --vary 2 --max-len 24 --quiet --out %s --head-dim 7", csv);
    BAD("--data", "/nonexistent", T6 " --out %s --data /nonexistent", csv);
    /* conflicting flags */
    BAD("--warmup", "--steps", T6 " --out %s --warmup 30", csv);
    BAD("--resume", "--load", "run --load %s --resume %s --quiet --out %s", ck, ck, csv);
    BAD("--resume", "--load", "run --resume %s --load %s --quiet --out %s", ck, ck, csv);
    BAD("--save", "--load", "run --load %s --save %s/y.ckpt --quiet --out %s", ck, dir, csv);
    BAD("--checkpoint-every", "--load", "run --load %s --checkpoint-every 5 --quiet --out %s", ck, csv);
    BAD("--dim", "checkpoint", "run --resume %s --dim 32 --quiet --out %s", ck, csv);
    BAD("--steps", "checkpoint", "run --resume %s --steps 50 --quiet --out %s", ck, csv);
    BAD("--task", "checkpoint", "run --resume %s --task sort --quiet --out %s", ck, csv);
    BAD("--attn", "checkpoint", "run --load %s --attn entmax --quiet --out %s", ck, csv);
    /* task parameters: range, integer-ness, and the task's own cross-checks */
    BAD("--write-prob", "1.5", "run --task flip-flop " MODEL_NO_TASK " --steps 20 --quiet --out %s --write-prob 1.5", csv);
    BAD("--n", "'0'", "run --task nback " MODEL_NO_TASK " --steps 20 --quiet --out %s --n 0", csv);
    BAD("n must be smaller", NULL, "run --task nback " MODEL_NO_TASK " --steps 20 --len 6 --vary 2 --quiet --out %s --n 9", csv);
    BAD("--max-reps", "'1'", "run --task count " MODEL_NO_TASK " --steps 20 --quiet --out %s --max-reps 1", csv);
    BAD("--k-len", "'0'", "run --task mqmtar " MODEL_NO_TASK " --steps 20 --quiet --out %s --k-len 0", csv);
    BAD("num-q", NULL, "run --task mqmtar " MODEL_NO_TASK " --steps 20 --quiet --out %s --num-q 40", csv);
    BAD("--abc", "'1'", "run --task recall " MODEL_NO_TASK " --steps 20 --quiet --out %s --abc 1", csv);
    /* gen */
    BAD("--out", "required", "gen --task copy");
    BAD("--split", "bogus", "gen --out %s/g --split bogus", dir);
    BAD("--format", "bogus", "gen --out %s/g --format bogus", dir);
    BAD("--vary", "test", "gen --out %s/g --split test --vary 2", dir);
    BAD("--index", "test", "gen --out %s/g --index 2", dir);
    BAD("--count", "'0'", "gen --out %s/g --count 0", dir);
    BAD("--task", "nosuch", "gen --out %s/g --task nosuch", dir);
    ck_assert_msg(!tu_exists("g") && access(dir, F_OK) == 0, "gen wrote output on a usage error");
#undef T6
#undef BAD
    tu_rm_tmpdir(dir);
}
END_TEST

/* grid files of `sweep` beyond test_results' cases: limits, flags that are per run, odd files */
START_TEST(test_grid_bad_input) {
    char dir[64], g[128], csv[128], a[4096];
    tu_tmpdir(dir, sizeof dir);
    snprintf(g, sizeof g, "%s/g.txt", dir);
    snprintf(csv, sizeof csv, "%s/x.csv", dir);
    char *long_line = malloc(6000);
    ck_assert_ptr_nonnull(long_line);
    strcpy(long_line, "task =");
    for (int i = 0; i < 1000; i++) strcat(long_line, " copy");
    strcat(long_line, "\n");
    char many_values[1024] = "task =", many_sections[2048] = "task = copy\n";
    for (int i = 0; i < 65; i++) snprintf(many_values + strlen(many_values), 16, " s%d", i);
    strcat(many_values, "\n");
    for (int i = 0; i < 65; i++) snprintf(many_sections + strlen(many_sections), 16, "[s%d]\n", i);
    struct {
        const char *text, *need1, *need2;
    } bad[] = {
        {"[]\ntask = copy\n", "g.txt:1", "expected '[name]'"},
        {long_line, "g.txt:1", "line too long"},
        {many_values, "g.txt:1", "more than 64 values"},
        {many_sections, "g.txt:66", "more than 64 sections"},
        {"= copy\n", "g.txt:1", "unknown key ''"},
        {"task = copy\nargs = --bogus\n", "cell 1 (copy)", "unknown flag '--bogus'"},
        {"task = copy\nseed = -1\n", "cell 1 (copy seed -1)", "--seed"},
        {"task = copy\nseed = 99999999999999999999\n", "--seed", "out of range"},
        {"task = copy\nargs = --resume x.ckpt\n", "--resume is per run", NULL},
        {"task = copy\nargs = --load=x.ckpt\n", "--load is per run", NULL},
        {"task = copy\nargs = --save x.ckpt\n", "--save is per run", NULL},
        {"task = copy\nargs = --steps abc\n", "--steps expected an integer", NULL},
        {"task = copy\nargs = --steps 0\n", "--steps must be in", NULL},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        tu_write_all(g, bad[i].text, strlen(bad[i].text));
        snprintf(a, sizeof a, "sweep --grid %s " MODEL_NO_TASK " --len 6 --vary 2 " EVAL " --quiet --out %s", g, csv);
        expect_usage(csv, a, bad[i].need1, bad[i].need2);
    }
    snprintf(a, sizeof a, "sweep --grid %s --out %s", dir, csv); /* a directory as the grid */
    expect_usage(csv, a, "--grid", "error reading");
    snprintf(a, sizeof a, "sweep --task copy --resume %s/m.ckpt --out %s", dir, csv);
    expect_usage(csv, a, "--resume is per run", NULL);
    /* the output is a directory: a runtime error naming it, nothing run */
    tu_write_all(g, "task = copy\n", 12);
    tu_run(&R, LCG " sweep --grid %s " MODEL_NO_TASK " --len 6 --vary 2 " TRAIN " " EVAL " --quiet --out %s", g, dir);
    ck_assert_msg(R.status == 1 && tu_count_lines(R.err) == 1 && strstr(R.err, "is a directory"), "exit %d: %s",
                  R.status, R.err);
    free(long_line);
    tu_rm_tmpdir(dir);
}
END_TEST

/* runtime failures of the output: exit 1, one line naming the path, before any training */
START_TEST(test_unwritable_output) {
    char dir[64], csv[128], a[1024];
    tu_tmpdir(dir, sizeof dir);
    snprintf(csv, sizeof csv, "%s/x.csv", dir);
    /* --out is a directory; its parent is a regular file; --save into a missing directory */
    expect_runtime_error("is a directory", TINY " --out %s", dir);
    tu_write_all(csv, "", 0);
    expect_runtime_error("x.csv/y.csv", TINY " --out %s/y.csv", csv);
    remove(csv);
    expect_runtime_error("nodir/m.ckpt", TINY " --out %s --save %s/nodir/m.ckpt", csv, dir);
    ck_assert_msg(!tu_exists(csv), "a run whose checkpoint cannot be written wrote %s", csv);
    /* a read-only directory (as root, run as nobody: root writes anywhere) */
    char ro[128], pre[64] = "";
    snprintf(ro, sizeof ro, "%s/ro", dir);
    ck_assert_int_eq(mkdir(ro, 0555), 0);
    ck_assert_int_eq(chmod(ro, 0555), 0);
    if (geteuid() == 0) {
        if (access("/usr/bin/setpriv", X_OK) == 0 && chmod(dir, 0755) == 0)
            snprintf(pre, sizeof pre, "/usr/bin/setpriv --reuid=65534 --regid=65534 --clear-groups ");
        else pre[0] = '?';
    }
    if (pre[0] != '?') {
        snprintf(a, sizeof a, "%s" LCG " run " TINY " --out %s/x.csv", pre, ro);
        tu_run(&R, "%s", a);
        ck_assert_msg(R.status == 1 && tu_count_lines(R.err) == 1 && strstr(R.err, "ro/x.csv") &&
                          strstr(R.err, "Permission denied"),
                      "'%s': exit %d: %s", a, R.status, R.err);
        ck_assert_msg(R.out[0] == '\0', "trained and evaluated for an unwritable CSV: %s", R.out);
    } else {
        printf("SKIP read-only directory case: running as root without setpriv\n");
    }
    chmod(ro, 0755);
    tu_rm_tmpdir(dir);
}
END_TEST

/* a write that fails half way (the file size limit: what a full disk does to write()) */
START_TEST(test_write_error_keeps_old_csv) {
    char dir[64], csv[128];
    tu_tmpdir(dir, sizeof dir);
    snprintf(csv, sizeof csv, "%s/x.csv", dir);
    expect_ok(NULL, TINY " --out %s", csv);
    expect_ok(NULL, TINY " --out %s", csv);
    size_t n_old;
    char *old = tu_read_all(csv, &n_old);
    ck_assert_ptr_nonnull(old);
    ck_assert_uint_gt(n_old, 1024); /* above the limit below */
    /* ulimit -f 2: 1 KiB in dash's 512-byte blocks; SIGXFSZ ignored so write() fails */
    tu_run(&R, "trap '' XFSZ; ulimit -f 2; " LCG " run " TINY " --out %s", csv);
    ck_assert_msg(R.status == 1, "exit %d: %s", R.status, R.err);
    ck_assert_msg(tu_count_lines(R.err) == 1 && strstr(R.err, "x.csv") && strstr(R.err, "File too large"), "%s", R.err);
    size_t n = 0;
    char *now = tu_read_all(csv, &n);
    ck_assert_ptr_nonnull(now);
    ck_assert_msg(n == n_old && memcmp(now, old, n) == 0, "a failed write changed %s", csv);
    tu_run(&R, "ls %s | grep -c tmp", dir);
    ck_assert_msg(strcmp(R.out, "0\n") == 0, "a failed write left a temp file: %s", R.out);
    /* the same for a checkpoint */
    tu_run(&R, "trap '' XFSZ; ulimit -f 2; " LCG " run " TINY " --out %s/y.csv --save %s/m.ckpt", dir, dir);
    ck_assert_msg(R.status == 1 && tu_count_lines(R.err) == 1 && strstr(R.err, "m.ckpt") && strstr(R.err, "File too large"),
                  "exit %d: %s", R.status, R.err);
    ck_assert(!tu_exists("m.ckpt"));
    free(old);
    free(now);
    tu_rm_tmpdir(dir);
}
END_TEST

START_TEST(test_version_and_help) {
    /* --version: one line "lcgbench <version>", the version starting with a digit */
    tu_run(&R, LCG " --version");
    ck_assert_int_eq(R.status, 0);
    ck_assert_str_eq(R.err, "");
    ck_assert_int_eq(tu_count_lines(R.out), 1);
    ck_assert_msg(strncmp(R.out, "lcgbench ", 9) == 0 && R.out[9] >= '0' && R.out[9] <= '9' &&
                      !strchr(R.out + 9, ' '),
                  "--version printed: %s", R.out);

    /* no arguments: usage, exit 2 */
    tu_run(&R, LCG);
    ck_assert_int_eq(R.status, 2);
    ck_assert_msg(strstr(R.out, "usage:") || strstr(R.err, "usage:"), "no usage text: %s%s", R.out, R.err);

    /* run --help: usage and flags, the default task's (copy) own flags included */
    tu_run(&R, LCG " run --help");
    ck_assert_int_eq(R.status, 0);
    ck_assert_str_eq(R.err, "");
    ck_assert_msg(strstr(R.out, "usage: lcgbench run"), "%s", R.out);
    ck_assert_msg(strstr(R.out, "--task") && strstr(R.out, "--steps") && strstr(R.out, "--out"), "%s", R.out);
    ck_assert_msg(strstr(R.out, "--vocab"), "copy flags missing: %s", R.out);
    ck_assert_msg(!strstr(R.out, "--abc"), "recall's --abc listed for copy: %s", R.out);
    /* 'help run' is the same text */
    static char run_help[sizeof R.out];
    memcpy(run_help, R.out, sizeof run_help);
    tu_run(&R, LCG " help run");
    ck_assert_int_eq(R.status, 0);
    ck_assert_str_eq(R.out, run_help);
    /* with --task recall, recall's own flags instead */
    tu_run(&R, LCG " run --task recall --help");
    ck_assert_int_eq(R.status, 0);
    ck_assert_msg(strstr(R.out, "--kv-density") && !strstr(R.out, "--vocab"), "%s", R.out);

    /* help tasks: one line per task starting with its name, then its flags */
    tu_run(&R, LCG " help tasks");
    ck_assert_int_eq(R.status, 0);
    ck_assert_msg(strncmp(R.out, "copy ", 5) == 0 || strstr(R.out, "\ncopy "), "%s", R.out);
    ck_assert_msg(strncmp(R.out, "recall ", 7) == 0 || strstr(R.out, "\nrecall "), "%s", R.out);
    ck_assert_msg(strstr(R.out, "--vocab") && strstr(R.out, "--kv-density"), "%s", R.out);

    /* help attn / pos list the names --attn / --pos accept */
    tu_run(&R, LCG " help attn");
    ck_assert_int_eq(R.status, 0);
    ck_assert_msg(strstr(R.out, "softmax"), "%s", R.out);
    tu_run(&R, LCG " help pos");
    ck_assert_int_eq(R.status, 0);
    ck_assert_msg(strstr(R.out, "rope") && strstr(R.out, "nope") && strstr(R.out, "alibi") &&
                      strstr(R.out, "nape"),
                  "%s", R.out);
}
END_TEST

/* ---- 2, 3. a good run and its CSV ---------------------------------------------------------- */
START_TEST(test_good_run_csv) {
    char dir[64], csv[128];
    tu_tmpdir(dir, sizeof dir);
    snprintf(csv, sizeof csv, "%s/sub/x.csv", dir); /* the missing directory is created */
    expect_ok(NULL, TINY " --out %s", csv);

    /* the table: a header, then one row per ladder length 8, 16 */
    ck_assert_msg(tu_count_lines(R.out) == 1 + TINY_ROWS, "table: %s", R.out);
    ck_assert_msg(strstr(R.out, "len") && strstr(R.out, "exact%"), "table header: %s", R.out);
    const char *line = strchr(R.out, '\n') + 1;
    for (int k = 0; k < TINY_ROWS; k++, line = strchr(line, '\n') + 1) {
        int len = 0;
        ck_assert_msg(sscanf(line, "%d", &len) == 1 && len == 8 << k, "table row %d: %s", k + 1, R.out);
    }

    /* the CSV: header + one row per length, every row as wide as the header */
    tu_csv_doc d;
    tu_csv_load(csv, &d);
    ck_assert_int_eq(d.rows, 1 + TINY_ROWS);
    ck_assert_str_eq(d.cell[0][0], "run_id");
    for (int i = 0; i < d.cols[0]; i++)
        for (int j = 0; j < i; j++)
            ck_assert_msg(strcmp(d.cell[0][i], d.cell[0][j]), "duplicate column %s", d.cell[0][i]);
    const char *want[][2] = {{"task", "copy"}, {"seed", "1"}, {"steps", "20"}, {"batch", "8"},
                             {"dim", "16"},    {"heads", "2"}, {"train_len", "6"}, {"train_vary", "2"},
                             {"samples", "10"}, {"wall_threads", NULL}};
    for (size_t w = 0; w < sizeof want / sizeof *want; w++) {
        int c = tu_csv_col(&d, want[w][0]);
        ck_assert_msg(c >= 0, "no column %s", want[w][0]);
        for (int r = 1; want[w][1] && r < d.rows; r++) ck_assert_str_eq(d.cell[r][c], want[w][1]);
    }
    int c_len = tu_csv_col(&d, "eval_len"), c_id = tu_csv_col(&d, "run_id"), c_ver = tu_csv_col(&d, "version");
    ck_assert(c_len >= 0 && c_ver >= 0);
    for (int r = 1; r < d.rows; r++) {
        ck_assert_int_eq(atoi(d.cell[r][c_len]), 8 << (r - 1));
        ck_assert_str_eq(d.cell[r][c_id], d.cell[1][c_id]); /* one run, one id */
    }
    /* the version column is the one --version prints */
    char version_line[256];
    snprintf(version_line, sizeof version_line, "lcgbench %s\n", d.cell[1][c_ver]);
    tu_run(&R, LCG " --version");
    ck_assert_str_eq(R.out, version_line);
    tu_csv_free(&d);

    /* run again: appended, the old bytes untouched, the header not repeated */
    size_t n_old, n_new;
    char *old = tu_read_all(csv, &n_old);
    ck_assert_ptr_nonnull(old);
    expect_ok(NULL, TINY " --out %s", csv);
    char *new = tu_read_all(csv, &n_new);
    ck_assert_ptr_nonnull(new);
    ck_assert_msg(n_new > n_old && memcmp(old, new, n_old) == 0, "second run did not append");
    tu_csv_load(csv, &d);
    ck_assert_int_eq(d.rows, 1 + 2 * TINY_ROWS);
    for (int r = 1; r < d.rows; r++) ck_assert_str_ne(d.cell[r][0], "run_id");
    tu_csv_free(&d);
    free(old);
    free(new);
    tu_rm_tmpdir(dir);
}
END_TEST

/* appending to a file with another header: exit 1 naming the schema, file left as it was */
/* every --attn trains and evaluates; diagnostics are per layer and in range */
START_TEST(test_every_normalizer) {
    char dir[64], csv[128];
    tu_tmpdir(dir, sizeof dir);
    const char *names[] = {"softmax", "entmax", "sparsemax", "ssmax", "asentmax", "entmax-learn"};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        snprintf(csv, sizeof csv, "%s/%s.csv", dir, names[i]);
        expect_ok(NULL, TINY " --attn %s --pos nape --out %s", names[i], csv); /* TINY has 2 layers */
        tu_csv_doc d;
        tu_csv_load(csv, &d);
        ck_assert_int_eq(d.rows, 1 + TINY_ROWS);
        int ce = tu_csv_col(&d, "attn_entropy"), cs = tu_csv_col(&d, "attn_support"), cm = tu_csv_col(&d, "attn_max");
        int cl = tu_csv_col(&d, "eval_len"), ca = tu_csv_col(&d, "attn");
        ck_assert(ce >= 0 && cs >= 0 && cm >= 0 && cl >= 0 && ca >= 0);
        for (int r = 1; r < d.rows; r++) {
            ck_assert_str_eq(d.cell[r][ca], names[i]);
            double e0, e1, s0, s1, m0, m1;
            ck_assert_int_eq(sscanf(d.cell[r][ce], "%lf;%lf", &e0, &e1), 2); /* two layers */
            ck_assert_int_eq(sscanf(d.cell[r][cs], "%lf;%lf", &s0, &s1), 2);
            ck_assert_int_eq(sscanf(d.cell[r][cm], "%lf;%lf", &m0, &m1), 2);
            double n_keys = atof(d.cell[r][cl]) * 2 + 4; /* at most the whole sequence */
            ck_assert(e0 >= 0 && e1 >= 0 && s0 >= 1 && s1 >= 1 && s0 <= n_keys && s1 <= n_keys);
            ck_assert(m0 > 0 && m0 <= 1 && m1 > 0 && m1 <= 1);
            if (strcmp(names[i], "softmax") == 0 || strcmp(names[i], "ssmax") == 0)
                ck_assert(s0 > 4 && s1 > 4); /* dense: every causal key has weight */
        }
        tu_csv_free(&d);
    }
    tu_rm_tmpdir(dir);
}
END_TEST

/* every task trains and evaluates with its own default lengths and parameters */
START_TEST(test_every_task_defaults) {
    char dir[64], csv[128];
    tu_tmpdir(dir, sizeof dir);
    for (int i = 0; lcg_task_at(i); i++) {
        const lcg_task *t = lcg_task_at(i);
        snprintf(csv, sizeof csv, "%s/%s.csv", dir, t->name);
        expect_ok("OMP_NUM_THREADS=1", "--task %s " MODEL_NO_TASK " " TRAIN " --eval-samples 4 --max-len %d --quiet --out %s",
                  t->name, t->cpu_len + t->cpu_vary, csv);
        tu_csv_doc d;
        tu_csv_load(csv, &d);
        ck_assert_msg(d.rows == 2, "%s: %d rows", t->name, d.rows - 1); /* the ID rung */
        ck_assert_str_eq(d.cell[1][tu_csv_col(&d, "task")], t->name);
        tu_csv_free(&d);
    }
    tu_rm_tmpdir(dir);
}
END_TEST

static void expect_schema_refused(const char *csv, const char *text) {
    tu_write_all(csv, text, strlen(text));
    expect_runtime_error("schema", TINY " --out %s", csv);
    size_t n;
    char *after = tu_read_all(csv, &n);
    ck_assert_msg(after != NULL, "%s was removed", csv);
    ck_assert_msg(n == strlen(text) && memcmp(after, text, n) == 0, "%s was modified", csv);
    free(after);
}

START_TEST(test_schema_mismatch) {
    char dir[64], csv[128], good[128];
    tu_tmpdir(dir, sizeof dir);
    snprintf(csv, sizeof csv, "%s/x.csv", dir);
    snprintf(good, sizeof good, "%s/good.csv", dir);
    /* an unrelated CSV */
    expect_schema_refused(csv, "a,b,c\n1,2,3\n");
    /* near misses of the real header: one column renamed, one column more, one fewer */
    expect_ok(NULL, TINY " --out %s", good);
    char *text = tu_read_all(good, NULL);
    ck_assert_ptr_nonnull(text);
    char *nl = strchr(text, '\n');
    ck_assert_ptr_nonnull(nl);
    *nl = '\0';
    const char *header = text;
    char *variant = malloc(strlen(header) + 64);
    ck_assert_ptr_nonnull(variant);

    char *p = strstr(header, "eval_loss");
    ck_assert_ptr_nonnull(p);
    sprintf(variant, "%.*seval_lose%s\n", (int)(p - header), header, p + 9);
    expect_schema_refused(csv, variant);

    sprintf(variant, "%s,extra\n", header);
    expect_schema_refused(csv, variant);

    sprintf(variant, "%.*s\n", (int)(strrchr(header, ',') - header), header);
    expect_schema_refused(csv, variant);

    free(variant);
    free(text);
    tu_rm_tmpdir(dir);
}
END_TEST

/* the tool's OpenMP wait policy (harness/threads.c): a short spin (GOMP_SPINCOUNT=LCG_SPINCOUNT,
 * in force after the re-execution) unless the user set OMP_WAIT_POLICY or GOMP_SPINCOUNT;
 * libgomp's OMP_DISPLAY_ENV=verbose shows what it runs with */
START_TEST(test_wait_policy) {
    const char *want = "GOMP_SPINCOUNT = '" LCG_SPINCOUNT "'";
    tu_run(&R, "env -u OMP_WAIT_POLICY -u GOMP_SPINCOUNT OMP_DISPLAY_ENV=verbose " LCG " --version");
    ck_assert_int_eq(R.status, 0);
    ck_assert_msg(strstr(R.err, want), "no %s in:\n%s", want, R.err);
    ck_assert_msg(strstr(R.out, "lcgbench ") == R.out && tu_count_lines(R.out) == 1, "--version printed: %s", R.out);
    tu_run(&R, "env -u OMP_WAIT_POLICY GOMP_SPINCOUNT=1234 OMP_DISPLAY_ENV=verbose " LCG " --version");
    ck_assert_msg(strstr(R.err, "GOMP_SPINCOUNT = '1234'") && !strstr(R.err, want), "user's spin count: %s", R.err);
    tu_run(&R, "env -u GOMP_SPINCOUNT OMP_WAIT_POLICY=ACTIVE OMP_DISPLAY_ENV=verbose " LCG " --version");
    ck_assert_msg(strstr(R.err, "OMP_WAIT_POLICY = 'ACTIVE'") && !strstr(R.err, want), "user's policy: %s", R.err);
}
END_TEST

/* ---- 4. determinism ------------------------------------------------------------------------- */
static void assert_threads_column(const char *path, const char *want) {
    char *v = tu_csv_column(path, "wall_threads");
    ck_assert_msg(v[0], "%s has no data rows", path);
    for (char *line = v, *nl; (nl = strchr(line, '\n')); line = nl + 1) {
        *nl = '\0';
        ck_assert_msg(strcmp(line, want) == 0, "%s: wall_threads %s, expected %s", path, line, want);
    }
    free(v);
}

START_TEST(test_repeatable) {
    char dir[64];
    tu_tmpdir(dir, sizeof dir);
    char a[128], b[128], c[128];
    snprintf(a, sizeof a, "%s/a.csv", dir);
    snprintf(b, sizeof b, "%s/b.csv", dir);
    snprintf(c, sizeof c, "%s/c.csv", dir);
    expect_ok(NULL, TINY " --out %s", a);
    expect_ok(NULL, TINY " --out %s", b);
    tu_assert_same_csv(a, b, NULL);

    /* another seed: other data and init, so the losses differ (the comparison can fail) */
    expect_ok(NULL, TINY " --seed 2 --out %s", c);
    char *la = tu_csv_column(a, "eval_loss"), *lc = tu_csv_column(c, "eval_loss");
    char *ta = tu_csv_column(a, "train_loss"), *tc = tu_csv_column(c, "train_loss");
    ck_assert_msg(strcmp(la, lc) != 0 && strcmp(ta, tc) != 0, "--seed 2 gave the losses of --seed 1");
    free(la);
    free(lc);
    free(ta);
    free(tc);
    tu_rm_tmpdir(dir);
}
END_TEST

START_TEST(test_thread_invariance) {
    /* copy, and recall with rope, under OMP_NUM_THREADS and under --threads */
    static const char *const cfgs[] = {
        TINY,
        "--task recall --pos rope --dim 16 --heads 2 --head-dim 8 --ffn 32 --len 16 --vary 4 "
        TRAIN " --max-len 40 --eval-samples 16 --quiet",
    };
    char dir[64], f1[128], f2[128], f3[128], f4[128];
    tu_tmpdir(dir, sizeof dir);
    for (size_t i = 0; i < sizeof cfgs / sizeof *cfgs; i++) {
        snprintf(f1, sizeof f1, "%s/env1_%zu.csv", dir, i);
        snprintf(f2, sizeof f2, "%s/env2_%zu.csv", dir, i);
        snprintf(f3, sizeof f3, "%s/flag1_%zu.csv", dir, i);
        snprintf(f4, sizeof f4, "%s/flag2_%zu.csv", dir, i);
        expect_ok("OMP_NUM_THREADS=1", "%s --out %s", cfgs[i], f1);
        expect_ok("OMP_NUM_THREADS=2", "%s --out %s", cfgs[i], f2);
        expect_ok("OMP_NUM_THREADS=2", "%s --threads 1 --out %s", cfgs[i], f3);
        expect_ok("OMP_NUM_THREADS=1", "%s --threads 2 --out %s", cfgs[i], f4);
        /* the setting took effect (else the comparison proves nothing) ... */
        assert_threads_column(f1, "1");
        assert_threads_column(f2, "2");
        assert_threads_column(f3, "1");
        assert_threads_column(f4, "2");
        /* ... and changed nothing but wall_* */
        tu_assert_same_csv(f1, f2, NULL);
        tu_assert_same_csv(f1, f3, NULL);
        tu_assert_same_csv(f1, f4, NULL);
    }
    tu_rm_tmpdir(dir);
}
END_TEST

/* ---- 5. checkpoints ------------------------------------------------------------------------- */
/* trains TINY with --save dir/m.ckpt and --out dir/train.csv */
static void train_and_save(const char *dir) {
    expect_ok(NULL, TINY " --save %s/m.ckpt --out %s/train.csv", dir, dir);
    char ck[128];
    snprintf(ck, sizeof ck, "%s/m.ckpt", dir);
    ck_assert_msg(tu_exists(ck), "--save did not write %s", ck);
}

START_TEST(test_checkpoint_roundtrip) {
    char dir[64], train[128], load[128], load2[128];
    tu_tmpdir(dir, sizeof dir);
    snprintf(train, sizeof train, "%s/train.csv", dir);
    snprintf(load, sizeof load, "%s/load.csv", dir);
    snprintf(load2, sizeof load2, "%s/load2.csv", dir);
    train_and_save(dir);
    /* the model's settings come from the checkpoint; only the evaluation is given */
    expect_ok(NULL, "--load %s/m.ckpt " EVAL " --quiet --out %s", dir, load);
    /* same rows, same run_id and metrics, train_loss included (the checkpoint's training state) */
    tu_assert_same_csv(train, load, NULL);
    /* flags that agree with the checkpoint are accepted and change nothing */
    expect_ok(NULL, "--load %s/m.ckpt --task copy --dim 16 --seed 1 " EVAL " --quiet --out %s", dir, load2);
    tu_assert_same_csv(load, load2, NULL);
    tu_rm_tmpdir(dir);
}
END_TEST

START_TEST(test_checkpoint_errors) {
    char dir[64], ck[128], bad[128], out[128], a[1024];
    tu_tmpdir(dir, sizeof dir);
    snprintf(ck, sizeof ck, "%s/m.ckpt", dir);
    snprintf(bad, sizeof bad, "%s/bad.ckpt", dir);
    snprintf(out, sizeof out, "%s/out.csv", dir);
    train_and_save(dir);

    /* settings that contradict the checkpoint: usage errors naming the flag */
    snprintf(a, sizeof a, "run --load %s --dim 32 " EVAL " --quiet --out %s", ck, out);
    expect_usage(out, a, "--dim", NULL);
    snprintf(a, sizeof a, "run --load %s --seed 2 " EVAL " --quiet --out %s", ck, out);
    expect_usage(out, a, "--seed", NULL);

    size_t n;
    unsigned char *data = (unsigned char *)tu_read_all(ck, &n);
    ck_assert_ptr_nonnull(data);
    ck_assert_uint_gt(n, 64);

    /* one byte flipped in the middle: checksum */
    data[n / 2] ^= 0xFF;
    tu_write_all(bad, data, n);
    data[n / 2] ^= 0xFF;
    expect_runtime_error("checksum", "--load %s " EVAL " --quiet --out %s", bad, out);

    /* truncated, at several points: an error naming the file, never a crash */
    size_t cuts[] = {n - 1, n - 8, n / 2, 12, 4, 0};
    for (size_t i = 0; i < sizeof cuts / sizeof *cuts; i++) {
        tu_write_all(bad, data, cuts[i]);
        expect_runtime_error(bad, "--load %s " EVAL " --quiet --out %s", bad, out);
    }

    /* wrong magic */
    data[0] ^= 0x20;
    tu_write_all(bad, data, n);
    expect_runtime_error("magic", "--load %s " EVAL " --quiet --out %s", bad, out);

    /* a file that does not exist */
    expect_runtime_error("nosuch.ckpt", "--load %s/nosuch.ckpt " EVAL " --quiet --out %s", dir, out);
    data[0] ^= 0x20;
    /* a newer format version, checksum valid: refused as too new */
    {
        unsigned char *v = malloc(n);
        memcpy(v, data, n);
        v[8] = LCG_CKPT_VERSION + 1;
        uint64_t sum = lcg_fnv1a(LCG_FNV_INIT, v, n - 8);
        memcpy(v + n - 8, &sum, 8);
        tu_write_all(bad, v, n);
        expect_runtime_error("newer", "--load %s " EVAL " --quiet --out %s", bad, out);
        free(v);
    }
    /* settings that contradict the model header (pos=rope -> pos=nope in the note, checksum
     * valid): the parameters would be read as another model */
    {
        unsigned char *v = malloc(n);
        memcpy(v, data, n);
        unsigned char *p = NULL;
        for (size_t i = 0; i + 8 <= n && !p; i++)
            if (memcmp(v + i, "pos=rope", 8) == 0) p = v + i;
        ck_assert_ptr_nonnull(p);
        memcpy(p, "pos=nope", 8);
        uint64_t sum = lcg_fnv1a(LCG_FNV_INIT, v, n - 8);
        memcpy(v + n - 8, &sum, 8);
        tu_write_all(bad, v, n);
        expect_runtime_error("does not match", "--load %s " EVAL " --quiet --out %s", bad, out);
        expect_runtime_error("does not match", "--resume %s " EVAL " --quiet --out %s", bad, out);
        free(v);
    }
    /* a version 1 file (no training state): evaluates with --load, cannot be resumed */
    {
        unsigned char *v = malloc(n);
        uint32_t state_len;
        memcpy(&state_len, data + n - 8 - LCG_TRAIN_STATE_BYTES - 4, 4);
        ck_assert_uint_eq(state_len, LCG_TRAIN_STATE_BYTES);
        size_t n1 = n - 8 - 4 - LCG_TRAIN_STATE_BYTES;
        memcpy(v, data, n1);
        v[8] = 1;
        uint64_t sum = lcg_fnv1a(LCG_FNV_INIT, v, n1);
        memcpy(v + n1, &sum, 8);
        tu_write_all(bad, v, n1 + 8);
        expect_runtime_error("no training state", "--resume %s " EVAL " --quiet --out %s", bad, out);
        ck_assert(!tu_exists(out));
        expect_ok(NULL, "--load %s " EVAL " --quiet --out %s", bad, out);
        remove(out);
        free(v);
    }
    /* a directory, a device: not regular files, refused before reading */
    expect_runtime_error("not a regular file", "--load %s " EVAL " --quiet --out %s", dir, out);
    expect_runtime_error("not a regular file", "--resume /dev/zero " EVAL " --quiet --out %s", out);

    ck_assert_msg(!tu_exists(out), "a failed --load wrote %s", out);
    free(data);
    tu_rm_tmpdir(dir);
}
END_TEST

/* ---- suite ---------------------------------------------------------------------------------- */
static Suite *cli_suite(void) {
    Suite *s = suite_create("cli");
    TCase *tc = tcase_create("usage");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, test_bad_input);
    tcase_add_test(tc, test_bad_input_matrix);
    tcase_add_test(tc, test_grid_bad_input);
    tcase_add_test(tc, test_unwritable_output);
    tcase_add_test(tc, test_write_error_keeps_old_csv);
    tcase_add_test(tc, test_version_and_help);
    suite_add_tcase(s, tc);

    tc = tcase_create("csv");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, test_good_run_csv);
    tcase_add_test(tc, test_schema_mismatch);
    tcase_add_test(tc, test_every_normalizer);
    tcase_add_test(tc, test_every_task_defaults);
    suite_add_tcase(s, tc);

    tc = tcase_create("determinism");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, test_repeatable);
    tcase_add_test(tc, test_thread_invariance);
    tcase_add_test(tc, test_wait_policy);
    suite_add_tcase(s, tc);

    tc = tcase_create("checkpoint");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, test_checkpoint_roundtrip);
    tcase_add_test(tc, test_checkpoint_errors);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) {
    if (access(LCG, X_OK) != 0) {
        fprintf(stderr, "test_cli: %s not found; run from the repository root after 'make lcgbench'\n", LCG);
        return 1;
    }
    return tu_run_suite(cli_suite());
}
