/*
 * test_data.c: the reference-format data files (harness/data.c) and the commands that use
 * them, `lcgbench gen` and `lcgbench run --data DIR` (cli/cmd_gen.c, cli/cmd_run.c).
 *
 * Covers:
 *   1. library round trip, every task of the registry: data_write_split in format "ref" (train
 *      lengths len +- vary, vary 0 and the task's def_vary, and a fixed-length test split), read
 *      back with data_open/data_next, gives exactly the samples a fresh generator with the same
 *      stream derivation draws (train: pcg32_derive(seed, "train", 0), a length then a sample,
 *      as batch_fill; test: pcg32_derive(seed, "test", len), no length draw); data_test_splits
 *      finds the test split; format "tsv" is the header `src\ttrg` then the ref files' lines
 *      joined by a tab.
 *   2. CLI round trip: `lcgbench gen` (a train split and two test splits) then
 *      `lcgbench run --data DIR` writes the CSV of the plain generator run with --eval-lens the
 *      test lengths (every column but run_id, data and wall_*), for copy and for nback (token
 *      classification); the --data errors: --eval-lens naming a length without a split, a
 *      directory without test splits (exit 2), a missing train split (exit 1 naming train.src).
 *   3. malformed files, in the train split and in a test split, each a failure of
 *      `lcgbench run --data` with exit 1, no CSV, and one stderr line naming
 *      `<file>:<line>:` (the right file, .src or .trg, and the right line): a non-numeric token,
 *      an id outside the vocabulary, a negative id, an empty line, .src longer than .trg and
 *      vice versa, a label line of nback and count whose length differs from its token line.
 *      At the library level: the vocabulary bounds exactly (M accepted, M + 1 not), and a valid
 *      line longer than 1 MB (400k tokens) is accepted and the lines around it still counted.
 *   4. `lcgbench gen` bad input: exit 2, one stderr line naming the problem, nothing written:
 *      missing --out, --split bogus, --format xml, --vary with --split test, invalid task
 *      parameters (a value out of range, a parameter invalid at the length).
 *
 * Does not cover: what the model learns, the paper's own files (only files lcgbench writes
 * or the test edits), the memory check, speed.
 */
#include "testutil.h"
#include "../harness/run.h"
#include "../harness/data.h"
#include "../harness/sequence.h"
#include "../harness/csv.h"

#define LCG "./lcgbench"
#define MODEL "--layers 2 --dim 16 --heads 2 --head-dim 8 --ffn 32"
#define TRAIN "--len 6 --vary 2 --steps 20 --warmup 5 --batch 8"
#define TINY MODEL " " TRAIN " --quiet"
/* steps * batch: samples the tiny run trains on */
#define TINY_TRAIN_SAMPLES 160

static tu_result R; /* large: static, one per test process (fork mode) */

/* ---- file helpers (beyond testutil.h) ------------------------------------------------------- */
/* copies every file of directory `from` into a fresh directory `to` */
static void copy_dir(const char *from, const char *to) {
    ck_assert(!strchr(from, '\'') && !strchr(to, '\''));
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && cp -r '%s' '%s'", to, from, to);
    ck_assert_int_eq(system(cmd), 0);
}

/* replaces line `lineno` (1-based, must exist) of the file at path by `text` (no newline) */
static void replace_line(const char *path, int lineno, const char *text) {
    char *s = tu_read_all(path, NULL);
    ck_assert_msg(s != NULL, "cannot read %s", path);
    char *p = s;
    for (int i = 1; i < lineno; i++) {
        p = strchr(p, '\n');
        ck_assert_msg(p != NULL, "%s has fewer than %d lines", path, lineno);
        p++;
    }
    char *e = strchr(p, '\n');
    ck_assert_msg(e != NULL, "%s has fewer than %d lines", path, lineno);
    size_t n_out = 0;
    char *out = NULL;
    FILE *f = open_memstream(&out, &n_out);
    ck_assert_ptr_nonnull(f);
    fwrite(s, 1, (size_t)(p - s), f);
    fputs(text, f);
    fputs(e, f);
    ck_assert_int_eq(fclose(f), 0);
    tu_write_all(path, out, n_out);
    free(out);
    free(s);
}

/* line `lineno` of the file at path, without its newline; malloc'd */
static char *get_line(const char *path, int lineno) {
    char *s = tu_read_all(path, NULL);
    ck_assert_msg(s != NULL, "cannot read %s", path);
    char *p = s;
    for (int i = 1; i < lineno; i++) {
        p = strchr(p, '\n');
        ck_assert_msg(p != NULL, "%s has fewer than %d lines", path, lineno);
        p++;
    }
    size_t n = strcspn(p, "\n");
    char *out = strndup(p, n);
    free(s);
    return out;
}

static void append_text(const char *path, const char *text) {
    FILE *f = fopen(path, "ab");
    ck_assert_msg(f != NULL, "cannot append to %s", path);
    fputs(text, f);
    ck_assert_int_eq(fclose(f), 0);
}

static int file_lines(const char *path) {
    char *s = tu_read_all(path, NULL);
    ck_assert_msg(s != NULL, "cannot read %s", path);
    int n = tu_count_lines(s);
    free(s);
    return n;
}

/* ---- CSV ------------------------------------------------------------------------------------ */
/* ---- assertions on one lcgbench invocation -------------------------------------------------- */
#define run_ok(...) tu_expect_status(&R, 0, LCG " " __VA_ARGS__)
/* `lcgbench <args>` exits status with one stderr line naming need1 (and need2), writing no nofile */
#define expect_fail(status, nofile, need1, need2, ...) \
    tu_expect_fail(&R, status, nofile, need1, need2, LCG " " __VA_ARGS__)

/* ---- 1. library round trip ------------------------------------------------------------------ */
/* reads split `name` of dir and checks it holds exactly `count` samples equal to those a
 * generator `rng` draws (vary < 0: fixed length len, else a length in len +- vary first) */
static void check_split(const char *dir, const char *name, lcg_task_cfg *cfg, pcg32 rng, long count, int len,
                        int vary) {
    int ms, mt;
    cfg->task->max_sizes(cfg, len + (vary > 0 ? vary : 0), &ms, &mt);
    int *src = malloc(sizeof(int) * (size_t)(ms + 1)), *trg = malloc(sizeof(int) * (size_t)(mt + 1));
    ck_assert(src && trg);
    lcg_data_reader r;
    char err[1024];
    ck_assert_msg(data_open(&r, dir, name, err, sizeof err) == 0, "%s: data_open: %s", cfg->task->name, err);
    for (long k = 0; k < count; k++) {
        int L = vary < 0 ? len : len - vary + (int)pcg32_below(&rng, (uint32_t)(2 * vary + 1)), n_src, n_trg;
        cfg->task->generate(cfg, &rng, L, src, &n_src, trg, &n_trg);
        const int *s, *t;
        int a, b;
        int rc = data_next(&r, cfg, &s, &a, &t, &b, err, sizeof err);
        ck_assert_msg(rc == 1, "%s %s sample %ld: data_next %d (%s)", cfg->task->name, name, k, rc, rc < 0 ? err : "");
        ck_assert_msg(a == n_src && b == n_trg, "%s %s sample %ld: sizes %d/%d, generator %d/%d", cfg->task->name,
                      name, k, a, b, n_src, n_trg);
        ck_assert_msg(memcmp(s, src, sizeof(int) * (size_t)a) == 0, "%s %s sample %ld: source differs",
                      cfg->task->name, name, k);
        ck_assert_msg(memcmp(t, trg, sizeof(int) * (size_t)b) == 0, "%s %s sample %ld: target differs",
                      cfg->task->name, name, k);
        ck_assert_int_eq(r.line, k + 1);
    }
    const int *s, *t;
    int a, b;
    ck_assert_msg(data_next(&r, cfg, &s, &a, &t, &b, err, sizeof err) == 0, "%s %s: more than %ld samples",
                  cfg->task->name, name, count);
    ck_assert_int_eq(r.samples, count);
    data_close(&r);
    free(src);
    free(trg);
}

/* <dir>/<name>.tsv is "src\ttrg" then the lines of <name>.src and <name>.trg joined by a tab */
static void check_tsv(const char *dir, const char *name, long count) {
    char p[512];
    snprintf(p, sizeof p, "%s/%s.src", dir, name);
    char *s = tu_read_all(p, NULL);
    snprintf(p, sizeof p, "%s/%s.trg", dir, name);
    char *t = tu_read_all(p, NULL);
    snprintf(p, sizeof p, "%s/%s.tsv", dir, name);
    char *v = tu_read_all(p, NULL);
    ck_assert_msg(s && t && v, "%s: missing ref or tsv file", name);
    ck_assert_int_eq(tu_count_lines(s), count);
    ck_assert_int_eq(tu_count_lines(t), count);
    ck_assert_int_eq(tu_count_lines(v), count + 1);
    size_t len = 0;
    char *want = NULL;
    FILE *f = open_memstream(&want, &len);
    ck_assert_ptr_nonnull(f);
    fputs("src\ttrg\n", f);
    for (char *a = s, *b = t; *a && *b;) {
        char *ea = strchr(a, '\n'), *eb = strchr(b, '\n');
        fprintf(f, "%.*s\t%.*s\n", (int)(ea - a), a, (int)(eb - b), b);
        a = ea + 1, b = eb + 1;
    }
    ck_assert_int_eq(fclose(f), 0);
    ck_assert_msg(strcmp(v, want) == 0, "%s.tsv is not the ref files joined by a tab", name);
    free(want), free(s), free(t), free(v);
}

START_TEST(test_library_roundtrip) {
    char dir[64], err[1024];
    tu_tmpdir(dir, sizeof dir);
    const uint64_t seed = 7;
    const long count = 25;
    int n_tasks = 0;
    for (int i = 0; lcg_task_at(i); i++, n_tasks++) {
        const lcg_task *task = lcg_task_at(i);
        lcg_task_cfg cfg;
        lcg_task_defaults(&cfg, task);
        lcg_task_prepare(&cfg, seed);
        int len = task->def_len;
        ck_assert_msg(task->validate(&cfg, len - task->def_vary)[0] == '\0', "%s: def_len - def_vary invalid",
                      task->name);
        const int varies[] = {0, task->def_vary};
        for (int v = 0; v < 2; v++) {
            char name[64];
            snprintf(name, sizeof name, "train_%s_v%d", task->name, varies[v]);
            pcg32 rng = pcg32_derive(seed, "train", 0);
            ck_assert_msg(data_write_split(dir, name, "ref", &cfg, &rng, count, len, varies[v], err, sizeof err) == 0,
                          "%s: %s", task->name, err);
            check_split(dir, name, &cfg, pcg32_derive(seed, "train", 0), count, len, varies[v]);
            rng = pcg32_derive(seed, "train", 0);
            ck_assert_msg(data_write_split(dir, name, "tsv", &cfg, &rng, count, len, varies[v], err, sizeof err) == 0,
                          "%s: %s", task->name, err);
            check_tsv(dir, name, count);
        }
        /* a test split in its own directory, found by data_test_splits */
        char sub[128], name[64];
        snprintf(sub, sizeof sub, "%s/%s", dir, task->name);
        ck_assert_int_eq(mkdir(sub, 0777), 0);
        int tlen = len + task->def_vary + 5;
        snprintf(name, sizeof name, "test_3_%d", tlen);
        pcg32 rng = pcg32_derive(seed, "test", (uint64_t)tlen);
        ck_assert_msg(data_write_split(sub, name, "ref", &cfg, &rng, count, tlen, -1, err, sizeof err) == 0, "%s: %s",
                      task->name, err);
        check_split(sub, name, &cfg, pcg32_derive(seed, "test", (uint64_t)tlen), count, tlen, -1);
        rng = pcg32_derive(seed, "test", (uint64_t)tlen);
        ck_assert_msg(data_write_split(sub, name, "tsv", &cfg, &rng, count, tlen, -1, err, sizeof err) == 0, "%s: %s",
                      task->name, err);
        check_tsv(sub, name, count);
        int idx[LCG_MAX_RUNGS], lens[LCG_MAX_RUNGS];
        int n = data_test_splits(sub, idx, lens, LCG_MAX_RUNGS, err, sizeof err);
        ck_assert_msg(n == 1 && idx[0] == 3 && lens[0] == tlen, "%s: data_test_splits %d (%s)", task->name, n,
                      n < 0 ? err : "");
        lcg_task_release(&cfg);
    }
    ck_assert_int_ge(n_tasks, 8);
    tu_rm_tmpdir(dir);
}
END_TEST

/* ---- library: vocabulary bounds, a line over 1 MB ------------------------------------------- */
/* data_next on a split of one sample (src line s, trg line t) of the task; returns its rc and
 * leaves the error in err */
static int read_one(const char *dir, const lcg_task_cfg *cfg, const char *s, const char *t, char *err, size_t n) {
    char p[256];
    snprintf(p, sizeof p, "%s/one.src", dir);
    tu_write_all(p, s, strlen(s));
    snprintf(p, sizeof p, "%s/one.trg", dir);
    tu_write_all(p, t, strlen(t));
    lcg_data_reader r;
    ck_assert_msg(data_open(&r, dir, "one", err, n) == 0, "data_open: %s", err);
    const int *a, *b;
    int na, nb;
    err[0] = '\0';
    int rc = data_next(&r, cfg, &a, &na, &b, &nb, err, n);
    data_close(&r);
    return rc;
}

START_TEST(test_library_limits) {
    char dir[64], err[1024];
    tu_tmpdir(dir, sizeof dir);
    lcg_task_cfg copy, nback, count;
    lcg_task_defaults(&copy, lcg_task_find("copy"));
    lcg_task_defaults(&nback, lcg_task_find("nback"));
    lcg_task_defaults(&count, lcg_task_find("count"));
    /* copy vocab 32: ids 0..31 */
    ck_assert_int_eq(read_one(dir, &copy, "0 31\n", "31 0\n", err, sizeof err), 1);
    ck_assert_int_eq(read_one(dir, &copy, "0 32\n", "32 0\n", err, sizeof err), -1);
    ck_assert_msg(strstr(err, "one.src:1:"), "error does not name one.src:1: %s", err);
    ck_assert_int_eq(read_one(dir, &copy, "0 31\n", "0 32\n", err, sizeof err), -1);
    ck_assert_msg(strstr(err, "one.trg:1:"), "error does not name one.trg:1: %s", err);
    ck_assert_int_eq(read_one(dir, &copy, "0 -0\n", "0 0\n", err, sizeof err), 1);
    ck_assert_int_eq(read_one(dir, &copy, "99999999999999999999999\n", "0\n", err, sizeof err), -1);
    ck_assert_msg(strstr(err, "one.src:1:"), "error does not name one.src:1: %s", err);
    ck_assert_int_eq(read_one(dir, &copy, "1 2\r\n", "1 2\r\n", err, sizeof err), 1); /* CRLF */
    ck_assert_int_eq(read_one(dir, &copy, "1 2", "1 2", err, sizeof err), 1);       /* no final newline */
    ck_assert_int_eq(read_one(dir, &copy, "1 2.5\n", "1 2\n", err, sizeof err), -1);
    ck_assert_int_eq(read_one(dir, &copy, "1 2x\n", "1 2\n", err, sizeof err), -1);
    ck_assert_int_eq(read_one(dir, &copy, "   \n", "1 2\n", err, sizeof err), -1);
    ck_assert_msg(strstr(err, "one.src:1:"), "error does not name one.src:1: %s", err);
    /* labels: nback's are tokens 0..15, count's repetition indices 0..47 (beyond the vocabulary) */
    ck_assert_int_eq(read_one(dir, &nback, "0 5 6\n", "0 0 15\n", err, sizeof err), 1);
    ck_assert_int_eq(read_one(dir, &nback, "0 5 6\n", "0 0 16\n", err, sizeof err), -1);
    ck_assert_int_eq(read_one(dir, &count, "3 3\n", "0 47\n", err, sizeof err), 1);
    ck_assert_int_eq(read_one(dir, &count, "3 3\n", "0 48\n", err, sizeof err), -1);
    ck_assert_int_eq(read_one(dir, &count, "3 3 3\n", "0 1\n", err, sizeof err), -1);
    ck_assert_msg(strstr(err, "one.trg:1:"), "error does not name one.trg:1: %s", err);

    /* a valid line of 400k tokens (about 1.2 MB) between two short ones */
    const int n_long = 400000;
    size_t n = 0;
    char *text = NULL;
    FILE *f = open_memstream(&text, &n);
    ck_assert_ptr_nonnull(f);
    fputs("1 2 3\n", f);
    for (int i = 0; i < n_long; i++) fprintf(f, i ? " %d" : "%d", (i * 7 + 3) % 32);
    fputs("\n4 5\n", f);
    ck_assert_int_eq(fclose(f), 0);
    ck_assert_uint_gt(n, 1 << 20);
    char p[256];
    snprintf(p, sizeof p, "%s/long.src", dir);
    tu_write_all(p, text, n);
    snprintf(p, sizeof p, "%s/long.trg", dir);
    tu_write_all(p, text, n);
    free(text);
    lcg_data_reader r;
    ck_assert_msg(data_open(&r, dir, "long", err, sizeof err) == 0, "data_open: %s", err);
    const int *a, *b;
    int na, nb;
    ck_assert_int_eq(data_next(&r, &copy, &a, &na, &b, &nb, err, sizeof err), 1);
    ck_assert_int_eq(na, 3);
    int rc = data_next(&r, &copy, &a, &na, &b, &nb, err, sizeof err);
    ck_assert_msg(rc == 1, "a valid line of %d tokens was refused: %s", n_long, err);
    ck_assert_int_eq(na, n_long);
    ck_assert_int_eq(nb, n_long);
    for (int i = 0; i < n_long; i++)
        if (a[i] != (i * 7 + 3) % 32 || b[i] != a[i]) ck_abort_msg("long line: token %d wrong", i);
    ck_assert_int_eq(data_next(&r, &copy, &a, &na, &b, &nb, err, sizeof err), 1);
    ck_assert_int_eq(na, 2);
    ck_assert_int_eq(a[0], 4);
    ck_assert_int_eq(r.line, 3);
    ck_assert_int_eq(data_next(&r, &copy, &a, &na, &b, &nb, err, sizeof err), 0);
    data_close(&r);
    /* the same line in a cyclic read (training's): wraps after line 3 */
    ck_assert_msg(data_open(&r, dir, "long", err, sizeof err) == 0, "data_open: %s", err);
    for (int k = 0; k < 7; k++) {
        ck_assert_msg(data_next_cyclic(&r, &copy, &a, &na, &b, &nb, err, sizeof err) == 0, "cyclic: %s", err);
        ck_assert_int_eq(na, k % 3 == 0 ? 3 : k % 3 == 1 ? n_long : 2);
    }
    data_close(&r);
    tu_rm_tmpdir(dir);
}
END_TEST

/* ---- 2. CLI round trip ---------------------------------------------------------------------- */
/* writes a train split of `n_train` samples (len 6 +- 2) and test splits test_0_8, test_1_16
 * of `n_test` samples each into dir with `lcgbench gen` */
static void gen_dir(const char *dir, const char *task, long n_train, long n_test) {
    run_ok("gen --task %s --len 6 --vary 2 --count %ld --out %s", task, n_train, dir);
    run_ok("gen --task %s --split test --len 8 --index 0 --count %ld --out %s", task, n_test, dir);
    run_ok("gen --task %s --split test --len 16 --index 1 --count %ld --out %s", task, n_test, dir);
}

static void check_cli_roundtrip(const char *dir, const char *task) {
    char data[128], a[128], b[128], c[128];
    snprintf(data, sizeof data, "%s/%s", dir, task);
    snprintf(a, sizeof a, "%s/%s_gen.csv", dir, task);
    snprintf(b, sizeof b, "%s/%s_data.csv", dir, task);
    snprintf(c, sizeof c, "%s/%s_data16.csv", dir, task);
    /* more test samples in the files than evaluated: the first --eval-samples are used */
    gen_dir(data, task, TINY_TRAIN_SAMPLES, 15);
    run_ok("run --task %s " TINY " --eval-lens 8,16 --eval-samples 10 --out %s", task, a);
    ck_assert_msg(R.err[0] == '\0', "unexpected stderr: %s", R.err);
    run_ok("run --task %s " TINY " --data %s --eval-samples 10 --out %s", task, data, b);
    ck_assert_msg(R.err[0] == '\0', "unexpected stderr: %s", R.err);
    char *sa = tu_csv_stripped(a, "run_id data"), *sb = tu_csv_stripped(b, "run_id data");
    ck_assert_int_eq(tu_count_lines(sa), 3);
    ck_assert_msg(strcmp(sa, sb) == 0, "%s: run --data differs from the generator run:\n%s---\n%s", task, sa, sb);
    free(sa), free(sb);
    char *d = tu_csv_column(b, "data"), want[300];
    snprintf(want, sizeof want, "%s\n%s\n", data, data);
    ck_assert_msg(strcmp(d, want) == 0, "data column '%s', expected '%s'", d, want);
    free(d);
    d = tu_csv_column(a, "data");
    ck_assert_msg(strcmp(d, "\n\n") == 0, "generator run: data column '%s', expected empty", d);
    free(d);
    char *ra = tu_csv_column(a, "run_id"), *rb = tu_csv_column(b, "run_id");
    ck_assert_msg(strcmp(ra, rb) != 0, "--data does not change run_id");
    free(ra), free(rb);
    /* --eval-lens picks a subset of the splits */
    run_ok("run --task %s " TINY " --data %s --eval-lens 16 --eval-samples 10 --out %s", task, data, c);
    char *l = tu_csv_column(c, "eval_len");
    ck_assert_msg(strcmp(l, "16\n") == 0, "--data --eval-lens 16: eval_len '%s'", l);
    free(l);
}

START_TEST(test_cli_roundtrip) {
    char dir[64];
    tu_tmpdir(dir, sizeof dir);
    check_cli_roundtrip(dir, "copy");
    check_cli_roundtrip(dir, "nback");
    tu_rm_tmpdir(dir);
}
END_TEST

START_TEST(test_cli_data_errors) {
    char dir[64], full[128], notest[128], notrain[128], csv[128];
    tu_tmpdir(dir, sizeof dir);
    snprintf(full, sizeof full, "%s/full", dir);
    snprintf(notest, sizeof notest, "%s/notest", dir);
    snprintf(notrain, sizeof notrain, "%s/notrain", dir);
    snprintf(csv, sizeof csv, "%s/x.csv", dir);
    gen_dir(full, "copy", 50, 10);
    run_ok("gen --task copy --len 6 --vary 2 --count 50 --out %s", notest);
    run_ok("gen --task copy --split test --len 8 --count 10 --out %s", notrain);

    expect_fail(2, csv, "length 24", NULL, "run --task copy " TINY " --data %s --eval-lens 8,24 --out %s", full, csv);
    expect_fail(2, csv, notest, "test_", "run --task copy " TINY " --data %s --out %s", notest, csv);
    expect_fail(2, csv, "--data", NULL, "run --task copy " TINY " --data %s/nosuch --out %s", dir, csv);
    expect_fail(1, csv, "train.src", notrain, "run --task copy " TINY " --data %s --out %s", notrain, csv);
    /* fewer samples than steps * batch: training starts over at the end of the file */
    run_ok("run --task copy " TINY " --data %s --out %s", full, csv);
    tu_rm_tmpdir(dir);
}
END_TEST

/* ---- 3. malformed files --------------------------------------------------------------------- */
/* runs `lcgbench run --data bad` (task, with `extra` flags) and expects exit 1 and one stderr
 * line naming `<bad>/<file>:<line>:` */
static void expect_bad_file(const char *bad, const char *task, const char *extra, const char *file, int line,
                            const char *what) {
    char csv[160], need[256];
    snprintf(csv, sizeof csv, "%s.csv", bad);
    snprintf(need, sizeof need, "%s/%s:%d:", bad, file, line);
    tu_run(&R, LCG " run --task %s " TINY " %s --data %s --out %s", task, extra, bad, csv);
    ck_assert_msg(R.status == 1, "%s (%s/%s line %d): exit %d, expected 1; stderr: %s", what, bad, file, line,
                  R.status, R.err);
    ck_assert_msg(tu_count_lines(R.err) == 1 && R.err[strlen(R.err) - 1] == '\n',
                  "%s: expected one stderr line, got: %s", what, R.err);
    ck_assert_msg(strstr(R.err, need), "%s: stderr does not name '%s': %s", what, need, R.err);
    ck_assert_msg(!tu_exists(csv), "%s: the failed run wrote %s", what, csv);
}

/* the malformed lines of any task, in split `split` (train or test_0_8, of n_lines lines) of
 * a copy of `good`; `extra`: more run flags (a test split is only read as far as evaluated) */
static void malformed_common(const char *good, const char *dir, const char *task, const char *split, int n_lines,
                             const char *extra) {
    char bad[160], src[224], trg[224], what[128];
    snprintf(bad, sizeof bad, "%s/bad_%s_%s", dir, task, split);
    snprintf(src, sizeof src, "%s/%s.src", bad, split);
    snprintf(trg, sizeof trg, "%s/%s.trg", bad, split);
    char fs[64], ft[64];
    snprintf(fs, sizeof fs, "%s.src", split);
    snprintf(ft, sizeof ft, "%s.trg", split);
    static const struct {
        const char *text, *what;
        int in_trg;
    } cases[] = {
        {"3 x 5", "non-numeric token", 0},
        {"1 2 99 4", "id outside the vocabulary", 0},
        {"1 -2 3", "negative id", 0},
        {"", "empty line", 0},
        {"3 x 5", "non-numeric token in .trg", 1},
        {"", "empty line in .trg", 1},
        {"1 -2 3", "negative id in .trg", 1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        copy_dir(good, bad);
        replace_line(cases[i].in_trg ? trg : src, 3, cases[i].text);
        snprintf(what, sizeof what, "%s %s: %s", task, split, cases[i].what);
        expect_bad_file(bad, task, extra, cases[i].in_trg ? ft : fs, 3, what);
    }
    /* an empty last line (a file ending in a blank line) */
    copy_dir(good, bad);
    append_text(src, "\n");
    append_text(trg, "\n");
    snprintf(what, sizeof what, "%s %s: blank last line", task, split);
    expect_bad_file(bad, task, extra, fs, n_lines + 1, what);
    /* one file longer than the other: the longer one is named, at its first unmatched line */
    copy_dir(good, bad);
    char *l2 = get_line(src, 2);
    append_text(src, l2);
    append_text(src, "\n");
    snprintf(what, sizeof what, "%s %s: .src longer than .trg", task, split);
    expect_bad_file(bad, task, extra, fs, n_lines + 1, what);
    free(l2);
    copy_dir(good, bad);
    l2 = get_line(trg, 2);
    append_text(trg, l2);
    append_text(trg, "\n");
    snprintf(what, sizeof what, "%s %s: .trg longer than .src", task, split);
    expect_bad_file(bad, task, extra, ft, n_lines + 1, what);
    free(l2);
}

/* token classification: line 3 of the labels one short, one long */
static void malformed_labels(const char *good, const char *dir, const char *task, const char *split, const char *extra) {
    char bad[160], trg[224], ft[64], what[128];
    snprintf(bad, sizeof bad, "%s/badlab_%s_%s", dir, task, split);
    snprintf(trg, sizeof trg, "%s/%s.trg", bad, split);
    snprintf(ft, sizeof ft, "%s.trg", split);
    for (int longer = 0; longer < 2; longer++) {
        copy_dir(good, bad);
        char *l = get_line(trg, 3), *sp = strrchr(l, ' ');
        ck_assert_ptr_nonnull(sp);
        char text[4096];
        if (longer) snprintf(text, sizeof text, "%s 0", l);
        else snprintf(text, sizeof text, "%.*s", (int)(sp - l), l);
        free(l);
        replace_line(trg, 3, text);
        snprintf(what, sizeof what, "%s %s: label line 3 one %s", task, split, longer ? "long" : "short");
        expect_bad_file(bad, task, extra, ft, 3, what);
    }
}

START_TEST(test_malformed_files) {
    char dir[64], good[128], csv[160];
    tu_tmpdir(dir, sizeof dir);
    static const char *const tasks[] = {"copy", "nback", "count"};
    for (size_t i = 0; i < sizeof tasks / sizeof *tasks; i++) {
        const char *task = tasks[i];
        snprintf(good, sizeof good, "%s/good_%s", dir, task);
        /* count: lengths too short for its default blocks; max-reps 4 fits length 4 */
        const char *tflags = strcmp(task, "count") == 0 ? "--max-reps 4" : "";
        /* 50 train samples < steps * batch: training wraps and so reads every line; 10 test
         * samples < --eval-samples 20: evaluation reads to the end of the file */
        run_ok("gen --task %s %s --len 6 --vary 2 --count 50 --out %s", task, tflags, good);
        run_ok("gen --task %s %s --split test --len 8 --count 10 --out %s", task, tflags, good);
        char extra[128];
        snprintf(extra, sizeof extra, "%s --eval-samples 20", tflags);
        /* the untouched copy runs */
        snprintf(csv, sizeof csv, "%s.csv", good);
        run_ok("run --task %s " TINY " %s --data %s --out %s", task, extra, good, csv);
        if (strcmp(task, "copy") == 0) {
            malformed_common(good, dir, task, "train", 50, extra);
            malformed_common(good, dir, task, "test_0_8", 10, extra);
            /* an id outside the vocabulary in a test split's target */
            char bad[160], trg[224];
            snprintf(bad, sizeof bad, "%s/bad_vocab_trg", dir);
            snprintf(trg, sizeof trg, "%s/test_0_8.trg", bad);
            copy_dir(good, bad);
            replace_line(trg, 3, "1 2 32");
            expect_bad_file(bad, task, extra, "test_0_8.trg", 3, "copy test: id 32 in .trg");
        } else {
            malformed_labels(good, dir, task, "train", extra);
            malformed_labels(good, dir, task, "test_0_8", extra);
        }
    }
    tu_rm_tmpdir(dir);
}
END_TEST

/* ---- 4. gen bad input ----------------------------------------------------------------------- */
START_TEST(test_gen_bad_input) {
    char dir[64], out[128];
    tu_tmpdir(dir, sizeof dir);
    snprintf(out, sizeof out, "%s/out", dir);
    expect_fail(2, NULL, "--out", NULL, "gen --task copy --len 6 --vary 2");
    expect_fail(2, out, "--split", "bogus", "gen --split bogus --out %s", out);
    expect_fail(2, out, "--format", "xml", "gen --format xml --out %s", out);
    expect_fail(2, out, "--vary", NULL, "gen --split test --len 8 --vary 2 --out %s", out);
    expect_fail(2, out, "--vocab", NULL, "gen --task copy --vocab 1 --out %s", out);
    expect_fail(2, out, "--vocab", NULL, "gen --task copy --vocab 3.5 --out %s", out);
    expect_fail(2, out, "nback", "n ", "gen --task nback --n 8 --split test --len 6 --out %s", out);
    expect_fail(2, out, "--n", NULL, "gen --task copy --n 3 --out %s", out); /* not copy's parameter */
    expect_fail(2, out, "bogus", NULL, "gen --task bogus --out %s", out);
    expect_fail(2, out, "--vary", "--len", "gen --len 6 --vary 6 --out %s", out);
    expect_fail(2, out, "--count", NULL, "gen --count 0 --out %s", out);
    /* and the good forms of the same commands */
    run_ok("gen --split test --len 8 --format tsv --out %s", out);
    char p[192];
    snprintf(p, sizeof p, "%s/test_0_8.tsv", out);
    ck_assert_msg(tu_exists(p), "gen --format tsv did not write %s", p);
    ck_assert_int_eq(file_lines(p), 1001);
    tu_rm_tmpdir(dir);
}
END_TEST

/* ---- suite ---------------------------------------------------------------------------------- */
static Suite *data_suite(void) {
    Suite *s = suite_create("data");
    TCase *tc = tcase_create("library");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_library_roundtrip);
    tcase_add_test(tc, test_library_limits);
    suite_add_tcase(s, tc);

    tc = tcase_create("cli");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, test_cli_roundtrip);
    tcase_add_test(tc, test_cli_data_errors);
    tcase_add_test(tc, test_malformed_files);
    tcase_add_test(tc, test_gen_bad_input);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) {
    if (access(LCG, X_OK) != 0) {
        fprintf(stderr, "test_data: %s not found; run from the repository root after 'make lcgbench'\n", LCG);
        return 1;
    }
    /* one OpenMP thread per lcgbench: these runs are tiny, and spinning worker threads make
     * them slower by orders of magnitude on a busy machine (thread counts are test_cli's) */
    setenv("OMP_NUM_THREADS", "1", 1);
    return tu_run_suite(data_suite());
}
