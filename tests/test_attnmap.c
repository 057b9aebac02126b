/*
 * test_attnmap.c: `lcgbench attnmap` and the mechanism columns end to end (issue 20).
 *   - the data file of a tiny run's map (every row, every key) holds the weights the decoder
 *     computes position by position (decoder_step, the reference path) to 1e-6, for softmax +
 *     RoPE and ASEntmax + NAPE, with copy's answer positions marked; a long map's keys are
 *     summed into bins that still add up to 1 per row;
 *   - the PNG is drawn (when gnuplot is installed);
 *   - bad input: one line naming the problem, exit 2 (usage) or 1 (an unreadable checkpoint);
 *   - the CSV's relevant-key mass columns: one per layer, empty past the model's layers and for
 *     a task without answer positions (count), bitwise the same on 1 and 2 threads.
 */
#include "testutil.h"

#include "../harness/run.h"
#include "../model/checkpoint.h"
#include "../model/infer.h"

#define LCG "./lcgbench"
#define TINY "--layers 2 --dim 16 --heads 2 --head-dim 8 --ffn 32 --steps 30 --warmup 3 --batch 8 --eval-samples 6 " \
             "--len 6 --vary 2 --threads 1 --quiet"

static tu_result R;

typedef struct {
    int L, H, n;
    double *w; /* L, H, n, n */
} ref_map;

static void ref_observe(void *ctx, int l, int h, int i, const int *j, const float *p, int n) {
    ref_map *m = ctx;
    ck_assert_ptr_null(j); /* decoder_step shows whole rows */
    for (int k = 0; k < n; k++) m->w[(((size_t)l * m->H + h) * m->n + i) * m->n + k] = p[k];
}

START_TEST(test_map_matches_decoder) {
    static const char *const runs[] = {"--attn softmax --pos rope", "--attn asentmax --pos nape"};
    char dir[64], cmd[1024];
    tu_tmpdir(dir, sizeof dir);
    snprintf(cmd, sizeof cmd, LCG " run --task copy %s " TINY " --max-len 8 --save %s/t.ckpt --out %s/r.csv", runs[_i],
             dir, dir);
    ck_assert_msg(tu_run(&R, "%s", cmd) == 0, "%s: %s", cmd, R.err);
    ck_assert_msg(tu_run(&R, LCG " attnmap --load %s/t.ckpt --len 8 --sample 2 --all-rows --out %s/m.dat --threads 2",
                         dir, dir) == 0, "attnmap: %s", R.err);

    /* the reference: the same sample fed to decoder_step one token at a time */
    char path[128], err[512];
    snprintf(path, sizeof path, "%s/t.ckpt", dir);
    lcg_checkpoint ck;
    ck_assert_msg(checkpoint_load(path, &ck, err, sizeof err) == 0, "%s", err);
    lcg_model m;
    model_init(&m, &ck.cfg, 1);
    memcpy(m.params_mem, ck.params, sizeof(float) * ck.n_params);
    lcg_task_cfg task;
    lcg_task_defaults(&task, lcg_task_find("copy"));
    int src[16], trg[16], ns, nt, in[40], n = 0;
    pcg32 rng = pcg32_derive(1, "test", 8);
    for (int s = 0; s <= 2; s++) task.task->generate(&task, &rng, 8, src, &ns, trg, &nt);
    lcg_tokens tk = lcg_task_tokens(&task);
    in[n++] = tk.bos;
    for (int j = 0; j < ns; j++) in[n++] = src[j];
    in[n++] = tk.sep;
    for (int j = 0; j < nt; j++) in[n++] = trg[j];
    ref_map ref = {ck.cfg.L, ck.cfg.H, n, LCG_NEW(double, (size_t)ck.cfg.L * ck.cfg.H * n * n)};
    lcg_decoder d;
    decoder_init(&d, &m, n + 1);
    d.observe = ref_observe, d.observe_ctx = &ref;
    for (int i = 0; i < n; i++) decoder_step(&d, in[i], 0);

    /* every line of the file against it */
    snprintf(path, sizeof path, "%s/m.dat", dir);
    FILE *f = fopen(path, "r");
    ck_assert_ptr_nonnull(f);
    char line[256];
    long cells = 0, marks = 0, block = 0, blanks = 0;
    double worst = 0;
    while (fgets(line, sizeof line, f)) {
        if (line[0] == '\n') {
            blanks++;
            continue;
        }
        if (blanks >= 2) block++;
        blanks = 0;
        if (line[0] == '#') continue;
        int l, h, r, pos, key;
        double w;
        if (block < ck.cfg.L * ck.cfg.H) {
            ck_assert_int_eq(sscanf(line, "%d %d %d %d %d %lf", &l, &h, &r, &pos, &key, &w), 6);
            ck_assert_int_eq(l * ck.cfg.H + h, block);
            ck_assert_int_eq(pos, r); /* every row: r is the position */
            double want = key <= pos ? ref.w[(((size_t)l * ref.H + h) * n + pos) * n + key] : 0;
            worst = fmax(worst, fabs(w - want));
            ck_assert_msg(fabs(w - want) <= 1e-6, "layer %d head %d row %d key %d: %.9g, decoder %.9g", l, h, pos, key, w, want);
            cells++;
        } else { /* answers: copy's step t (row r0 + t) reads source t (position 1 + t) */
            ck_assert_int_eq(sscanf(line, "%d %d %d", &r, &pos, &key), 3);
            ck_assert_int_eq(key, 1 + (pos - (1 + ns)));
            marks++;
        }
    }
    fclose(f);
    printf("attnmap %s: %ld cells, largest difference from decoder_step %.3g\n", runs[_i], cells, worst);
    ck_assert_int_eq(cells, (long)ck.cfg.L * ck.cfg.H * n * n);
    ck_assert_int_eq(marks, nt); /* every target step; EOS has none */

    /* a long map: 512 input tokens in bins of 8 keys; every row still sums to 1 */
    ck_assert_msg(tu_run(&R, LCG " attnmap --load %s/t.ckpt --len 255 --max-keys 64 --rows 5 --out %s/l.dat", dir, dir) == 0,
                  "%s", R.err);
    ck_assert_ptr_nonnull(strstr(R.err, "5 query rows x 512 keys (bins of 8)"));
    snprintf(path, sizeof path, "%s/l.dat", dir);
    char *text = tu_read_all(path, NULL);
    ck_assert_ptr_nonnull(text);
    double sum[2][2][5] = {{{0}}};
    for (char *p = text; (p = strchr(p, '\n')); p++) {
        int l, h, r, pos, key;
        double w;
        if (p[1] != '#' && p[1] != '\n' && sscanf(p + 1, "%d %d %d %d %d %lf", &l, &h, &r, &pos, &key, &w) == 6 && l < 2 && h < 2 && r < 5)
            sum[l][h][r] += w;
    }
    for (int l = 0; l < 2; l++)
        for (int h = 0; h < 2; h++)
            for (int r = 0; r < 5; r++) ck_assert_double_eq_tol(sum[l][h][r], 1.0, 1e-5);
    free(text);

    /* the figure */
    if (system("command -v gnuplot >/dev/null 2>&1") == 0) {
        ck_assert_msg(tu_run(&R, LCG " attnmap --load %s/t.ckpt --len 16 --out %s/m.png", dir, dir) == 0, "%s", R.err);
        snprintf(path, sizeof path, "%s/m.png", dir);
        size_t np = 0;
        char *png = tu_read_all(path, &np);
        ck_assert_msg(png && np > 1000 && memcmp(png, "\x89PNG", 4) == 0, "no PNG at %s", path);
        free(png);
        snprintf(path, sizeof path, "%s/m.dat", dir);
        ck_assert(tu_exists(path));
    } else {
        printf("attnmap: gnuplot not installed, PNG not checked\n");
    }
    decoder_free(&d);
    lcg_free(ref.w);
    model_free(&m);
    checkpoint_free(&ck);
    tu_rm_tmpdir(dir);
}
END_TEST

START_TEST(test_attnmap_bad_input) {
    char dir[64];
    tu_tmpdir(dir, sizeof dir);
    ck_assert_int_eq(tu_run(&R, LCG " run --task recall " TINY " --len 12 --vary 4 --max-len 16 --save %s/t.ckpt --out %s/r.csv",
                            dir, dir), 0);
    static const struct {
        const char *args, *msg;
        int status;
    } cases[] = {
        {"--len 16 --out X.png", "--load is required", 2},
        {"--load T --out X.png", "--len is required", 2},
        {"--load T --len 16", "--out is required", 2},
        {"--load T --len 16 --out X.jpg", "--out must end in .png, .svg or .dat", 2},
        {"--load T --len 4 --out X.dat", "--len 4: recall", 2},
        {"--load T --len 4096 --all-rows --out X.dat", "--all-rows", 2},
        {"--load T --len 16 --rows 0 --out X.dat", "--rows", 2},
        {"--load T --len 16 --bogus --out X.dat", "--bogus", 2},
        {"--load NOPE --len 16 --out X.dat", "NOPE", 1},
        {"--load R --len 16 --out X.dat", "not an lcgbench checkpoint", 1},
    };
    for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
        char args[512], *p = args;
        for (const char *a = cases[k].args; *a; a++) { /* T: the checkpoint, R: the CSV, X: the output */
            if ((*a == 'T' || *a == 'R' || *a == 'X') && (a == cases[k].args || a[-1] == ' '))
                p += sprintf(p, "%s/%s", dir, *a == 'T' ? "t.ckpt" : *a == 'R' ? "r.csv" : "x");
            else
                *p++ = *a;
        }
        *p = '\0';
        int st = tu_run(&R, LCG " attnmap %s", args);
        ck_assert_msg(st == cases[k].status, "attnmap %s: exit %d, expected %d (%s)", args, st, cases[k].status, R.err);
        ck_assert_msg(tu_count_lines(R.err) == 1 && strstr(R.err, cases[k].msg), "attnmap %s: stderr '%s' lacks '%s'", args,
                      R.err, cases[k].msg);
        ck_assert_str_eq(R.out, "");
    }
    tu_rm_tmpdir(dir);
}
END_TEST

START_TEST(test_mass_columns) {
    char dir[64];
    tu_tmpdir(dir, sizeof dir);
    for (int t = 1; t <= 2; t++)
        ck_assert_int_eq(tu_run(&R, LCG " run --task recall " TINY " --len 12 --vary 4 --max-len 64 --threads %d --out %s/r%d.csv",
                                t, dir, t), 0);
    ck_assert_int_eq(tu_run(&R, LCG " run --task count --max-reps 8 " TINY " --len 24 --vary 4 --max-len 28 --out %s/c.csv", dir), 0);
    tu_csv_doc a, b, c;
    char p[128];
    snprintf(p, sizeof p, "%s/r1.csv", dir), tu_csv_load(p, &a);
    snprintf(p, sizeof p, "%s/r2.csv", dir), tu_csv_load(p, &b);
    snprintf(p, sizeof p, "%s/c.csv", dir), tu_csv_load(p, &c);
    const char *cols[] = {"rel_mass_best_l0", "rel_mass_best_l1", "rel_mass_mean_l0", "rel_mass_mean_l1", "collapse"};
    ck_assert_int_eq(a.rows, 4); /* 16, 32, 64 */
    for (int r = 1; r < a.rows; r++) {
        for (int k = 0; k < 5; k++) {
            int col = tu_csv_col(&a, cols[k]);
            ck_assert_int_ge(col, 0);
            char *end;
            double v = strtod(a.cell[r][col], &end);
            ck_assert_msg(*a.cell[r][col] && !*end && v >= (k == 4 ? -1 : 0) && v <= 1, "%s row %d: '%s'", cols[k], r,
                          a.cell[r][col]);
            ck_assert_str_eq(a.cell[r][col], b.cell[r][col]); /* 1 vs 2 threads */
        }
        ck_assert_str_eq(a.cell[r][tu_csv_col(&a, "rel_mass_best_l2")], ""); /* 2 layers */
        ck_assert_str_eq(a.cell[r][tu_csv_col(&a, "rel_mass_mean_l7")], "");
        ck_assert(strtod(a.cell[r][tu_csv_col(&a, "rel_mass_best_l0")], NULL) >=
                  strtod(a.cell[r][tu_csv_col(&a, "rel_mass_mean_l0")], NULL));
    }
    /* count declares no answer positions: no mass, no collapse */
    ck_assert_str_eq(c.cell[1][tu_csv_col(&c, "rel_mass_best_l0")], "");
    ck_assert_str_eq(c.cell[1][tu_csv_col(&c, "collapse")], "");
    tu_csv_free(&a), tu_csv_free(&b), tu_csv_free(&c);
    tu_rm_tmpdir(dir);
}
END_TEST

int main(void) {
    Suite *s = suite_create("attnmap");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 300);
    tcase_add_loop_test(tc, test_map_matches_decoder, 0, 2);
    tcase_add_test(tc, test_attnmap_bad_input);
    tcase_add_test(tc, test_mass_columns);
    suite_add_tcase(s, tc);
    return tu_run_suite(s);
}
