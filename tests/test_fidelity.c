/*
 * test_fidelity.c: the reference-fidelity options of issue 21, both off by default:
 *   - --freeze-token0 (the reference's padding_idx = 0): on the CPU backend, data token 0's
 *     embedding row is zero at init (the other rows keep their draws), its gradient is zero
 *     after every backward (so the norm clipping sees excludes it), and after AdamW steps with
 *     weight decay the row and its moments are still exactly 0; through the binary, the CSV's
 *     task_params and the run id carry it, a checkpoint keeps it (note, zero row), --load
 *     reproduces the rows, --resume after an interruption gives the uninterrupted rows, and a
 *     checkpoint trained without it refuses --freeze-token0;
 *   - mqmtar split-vocab 1 (the reference redraws the key/value vocabulary per split): the
 *     training stream, a validation length and test lengths use different vocabularies, each
 *     deterministic per seed; split-vocab 0 shares the run's (the same samples as before);
 *   - the default path is unchanged: every committed cell of results/ keeps its run id, and the
 *     task_params text of a default run is what it was.
 * The GPU's frozen row is tested in cuda/test_gpu.c.
 */
#include "testutil.h"

#include <math.h>

#include "../harness/csv.h"
#include "../harness/run.h"
#include "../harness/sequence.h"
#include "../model/backend.h"
#include "../model/checkpoint.h"

#define LCG "./lcgbench"

static lcg_task_cfg task_named(const char *name) {
    lcg_task_cfg t;
    lcg_task_defaults(&t, lcg_task_find(name));
    return t;
}

static void set_p(lcg_task_cfg *t, const char *flag, double v) {
    for (int i = 0; i < t->task->n_params; i++)
        if (strcmp(t->task->params[i].flag, flag) == 0) {
            t->p[i] = v;
            return;
        }
    ck_abort_msg("no parameter %s", flag);
}

/* ---- --freeze-token0 on the CPU backend ---------------------------------------------------- */

START_TEST(test_freeze_cpu) {
    lcg_task_cfg task = task_named("copy");
    lcg_config cfg = {.V = lcg_task_out_vocab(&task), .L = 2, .C = 16, .H = 2, .D = 8, .F = 32,
                      .norm = LCG_NORM_SOFTMAX, .pos = LCG_POS_NAPE, .alpha = 1.0f};
    lcg_backend_opts on = {.beta1 = 0.9f, .beta2 = 0.99f, .eps = 1e-8f, .weight_decay = 0.1f, .freeze_token0 = 1};
    lcg_backend_opts off = on;
    off.freeze_token0 = 0;
    lcg_backend *bf = lcg_backend_create("cpu", &cfg, 7, &on), *bd = lcg_backend_create("cpu", &cfg, 7, &off);
    size_t n = bf->n_params, C = (size_t)cfg.C;
    float *pf = LCG_NEW(float, n), *pd = LCG_NEW(float, n), *m = LCG_NEW(float, n), *v = LCG_NEW(float, n);
    bf->ops->get_params(bf, pf);
    bd->ops->get_params(bd, pd);
    /* nn.Embedding(padding_idx = 0): row 0 zeroed, every other parameter the same draw */
    for (size_t i = 0; i < C; i++) ck_assert(pf[i] == 0.0f);
    int nonzero = 0;
    for (size_t i = 0; i < C; i++) nonzero += pd[i] != 0.0f;
    ck_assert_int_gt(nonzero, 0);
    ck_assert(memcmp(pf + C, pd + C, sizeof(float) * (n - C)) == 0);

    pcg32 rng = pcg32_derive(3, "train", 0);
    lcg_batch batch = {0};
    lcg_model *mf = lcg_backend_cpu_model(bf), *md = lcg_backend_cpu_model(bd);
    for (int step = 0; step < 6; step++) {
        batch_fill(&batch, &task, &rng, 8, 12, 4);
        int zeros = 0; /* token 0 is in the batch: its row would get a gradient */
        for (int i = 0; i < batch.B * batch.T; i++) zeros += batch.tok[i] == 0;
        ck_assert_int_gt(zeros, 0);
        double lf = bf->ops->forward_backward(bf, batch.tok, batch.tgt, batch.mask, batch.B, batch.T);
        double ld = bd->ops->forward_backward(bd, batch.tok, batch.tgt, batch.mask, batch.B, batch.T);
        ck_assert(isfinite(lf) && isfinite(ld));
        double g0 = 0, sq = 0;
        for (size_t i = 0; i < C; i++) {
            ck_assert(mf->grads_mem[i] == 0.0f);
            g0 += fabs((double)md->grads_mem[i]);
        }
        ck_assert(g0 > 0); /* without the option the row learns */
        for (size_t i = 0; i < n; i++) sq += (double)mf->grads_mem[i] * mf->grads_mem[i];
        double norm = bf->ops->optimizer_step(bf, 1.0, 1e-2f); /* the norm clipping sees: row 0 excluded */
        bd->ops->optimizer_step(bd, 1.0, 1e-2f);
        ck_assert(fabs(norm - sqrt(sq)) <= 1e-5 * sqrt(sq));
        bf->ops->get_params(bf, pf);
        long t;
        bf->ops->get_optimizer(bf, m, v, &t);
        ck_assert_int_eq(t, step + 1);
        for (size_t i = 0; i < C; i++) ck_assert_msg(pf[i] == 0.0f && m[i] == 0.0f && v[i] == 0.0f,
                                                     "step %d: row 0 element %zu moved (%g)", step, i, (double)pf[i]);
    }
    bd->ops->get_params(bd, pd);
    ck_assert(memcmp(pf + C, pd + C, sizeof(float) * (n - C)) != 0); /* the rest trained */
    batch_free(&batch);
    lcg_free(pf), lcg_free(pd), lcg_free(m), lcg_free(v);
    lcg_backend_destroy(bf);
    lcg_backend_destroy(bd);
}
END_TEST

/* ---- --freeze-token0 through the binary ---------------------------------------------------- */

static tu_result R;

/* the value of column col in data row r of a CSV (0 = the first data row); static buffer */
static const char *cell(const char *path, int r, const char *col) {
    static char out[512];
    tu_csv_doc d;
    tu_csv_load(path, &d);
    int c = tu_csv_col(&d, col);
    ck_assert_msg(c >= 0 && r + 1 < d.rows, "%s: no column %s or row %d", path, col, r);
    snprintf(out, sizeof out, "%s", d.cell[r + 1][c]);
    tu_csv_free(&d);
    return out;
}

START_TEST(test_freeze_cli) {
    char dir[64], id_on[32], id_off[32];
    tu_tmpdir(dir, sizeof dir);
    const char *args = "--task copy --steps 12 --len 8 --vary 2 --dim 16 --heads 2 --head-dim 8 --ffn 32 --max-len 20 "
                       "--eval-samples 8 --threads 1 --quiet";
    ck_assert_int_eq(tu_run(&R, LCG " run %s --freeze-token0 --save %s/on.ckpt --out %s/on.csv", args, dir, dir), 0);
    ck_assert_int_eq(tu_run(&R, LCG " run %s --save %s/off.ckpt --out %s/off.csv", args, dir, dir), 0);
    char p[128];
    snprintf(p, sizeof p, "%s/on.csv", dir);
    ck_assert_str_eq(cell(p, 0, "task_params"), "vocab=32;freeze-token0=1");
    snprintf(id_on, sizeof id_on, "%s", cell(p, 0, "run_id"));
    snprintf(p, sizeof p, "%s/off.csv", dir);
    ck_assert_str_eq(cell(p, 0, "task_params"), "vocab=32"); /* the default's text as before */
    snprintf(id_off, sizeof id_off, "%s", cell(p, 0, "run_id"));
    ck_assert_str_ne(id_on, id_off); /* a distinct cell */

    /* the checkpoint keeps the option (its note) and the zero row */
    lcg_checkpoint ck;
    char err[512];
    snprintf(p, sizeof p, "%s/on.ckpt", dir);
    ck_assert_msg(checkpoint_load(p, &ck, err, sizeof err) == 0, "%s", err);
    ck_assert_ptr_nonnull(strstr(ck.note, ";freeze-token0=1"));
    for (int i = 0; i < ck.cfg.C; i++) ck_assert(ck.params[i] == 0.0f && ck.opt_m[i] == 0.0f && ck.opt_v[i] == 0.0f);
    checkpoint_free(&ck);
    snprintf(p, sizeof p, "%s/off.ckpt", dir);
    ck_assert_msg(checkpoint_load(p, &ck, err, sizeof err) == 0, "%s", err);
    ck_assert_ptr_null(strstr(ck.note, "freeze-token0"));
    checkpoint_free(&ck);

    /* --load: the same run id and rows; the option may be restated, not contradicted */
    ck_assert_int_eq(tu_run(&R, LCG " run --load %s/on.ckpt --max-len 20 --eval-samples 8 --quiet --out %s/load.csv", dir, dir), 0);
    char a[128], b[128];
    snprintf(a, sizeof a, "%s/on.csv", dir);
    snprintf(b, sizeof b, "%s/load.csv", dir);
    tu_assert_same_csv(a, b, NULL);
    ck_assert_int_eq(tu_run(&R, LCG " run --load %s/on.ckpt --freeze-token0 --max-len 20 --eval-samples 8 --quiet --out %s/load2.csv",
                            dir, dir), 0);
    ck_assert_int_eq(tu_run(&R, LCG " run --load %s/off.ckpt --freeze-token0 --out %s/x.csv", dir, dir), 2);
    ck_assert_ptr_nonnull(strstr(R.err, "--freeze-token0 conflicts with the checkpoint"));

    /* interrupted at step 5 (SIGINT), resumed: the rows of the run never interrupted */
    ck_assert_int_eq(tu_run(&R,
                            "LCG_TEST_STOP_AT=step:5 " LCG " run %s --freeze-token0 --save %s/int.ckpt --out %s/int.csv & pid=$!; "
                            "while ! grep -q '^State:[[:space:]]*T' /proc/$pid/status 2>/dev/null; do sleep 0.02; done; "
                            "kill -INT $pid; kill -CONT $pid; wait $pid",
                            args, dir, dir),
                     130);
    ck_assert_int_eq(tu_run(&R, LCG " run --resume %s/int.ckpt --max-len 20 --eval-samples 8 --quiet --out %s/int.csv", dir, dir), 0);
    snprintf(b, sizeof b, "%s/int.csv", dir);
    tu_assert_same_csv(a, b, NULL);
    tu_rm_tmpdir(dir);
}
END_TEST

/* ---- mqmtar split-vocab ------------------------------------------------------------------------ */

/* the distinct key tuples (k = 2, abc 16: tuple = 16 * (a - 3) + (b - 3)) the prefixes of S
 * samples of split (stream, index) hold, as a bitmap of 256; returns their count */
static int keys_seen(const lcg_task_cfg *run, uint64_t seed, const char *stream, uint64_t index, int len, int S,
                     unsigned char seen[256]) {
    lcg_task_cfg t;
    lcg_task_split(&t, run, seed, stream, index);
    int ms, mt, n_src, n_trg, count = 0;
    t.task->max_sizes(&t, len, &ms, &mt);
    int *src = LCG_NEW(int, ms), *trg = LCG_NEW(int, mt);
    pcg32 rng = pcg32_derive(seed, stream, index);
    memset(seen, 0, 256);
    for (int s = 0; s < S; s++) {
        t.task->generate(&t, &rng, len, src, &n_src, trg, &n_trg);
        for (int i = 0; i + 2 < n_src; i++)
            if (src[i + 2] == 1 && src[i] >= 3 && src[i + 1] >= 3) { /* key(2) 1: a pair's key */
                int k = 16 * (src[i] - 3) + (src[i + 1] - 3);
                count += !seen[k];
                seen[k] = 1;
            }
    }
    lcg_free(src), lcg_free(trg);
    lcg_task_split_release(&t, run);
    return count;
}

START_TEST(test_split_vocab) {
    lcg_task_cfg run = task_named("mqmtar");
    set_p(&run, "abc", 16);
    set_p(&run, "vocab", 40);
    char tp[256];
    lcg_task_params_str(&run, tp, sizeof tp);
    ck_assert_str_eq(tp, "abc=16;k-len=2;v-len=2;num-q=4;kv-density=0.8;vocab=40"); /* 0: as before */
    set_p(&run, "split-vocab", 1);
    lcg_task_params_str(&run, tp, sizeof tp);
    ck_assert_str_eq(tp, "abc=16;k-len=2;v-len=2;num-q=4;kv-density=0.8;vocab=40;split-vocab=1");
    lcg_task_prepare(&run, 5);

    /* each split its own vocabulary of 40 keys (of 256), seen whole in 200 samples */
    static const struct {
        const char *stream;
        int index, len;
    } splits[4] = {{"train", 0, 48}, {"val", 128, 128}, {"test", 128, 128}, {"test", 256, 256}};
    unsigned char seen[4][256], again[256];
    for (int k = 0; k < 4; k++) {
        ck_assert_int_eq(keys_seen(&run, 5, splits[k].stream, (uint64_t)splits[k].index, splits[k].len, 200, seen[k]), 40);
        keys_seen(&run, 5, splits[k].stream, (uint64_t)splits[k].index, splits[k].len, 200, again); /* deterministic */
        ck_assert(memcmp(seen[k], again, 256) == 0);
    }
    for (int a = 0; a < 4; a++)
        for (int b = a + 1; b < 4; b++) ck_assert_msg(memcmp(seen[a], seen[b], 256) != 0, "splits %d and %d share a vocabulary", a, b);
    /* another seed, another vocabulary */
    ck_assert_int_eq(keys_seen(&run, 6, "test", 128, 128, 200, again), 40);
    ck_assert(memcmp(seen[2], again, 256) != 0);

    /* the split's samples through eval_make_stream are those of its own vocabulary */
    lcg_run_cfg rc = {.task = run, .seed = 5};
    int ms, mt;
    run.task->max_sizes(&run, 128, &ms, &mt);
    int *src = LCG_NEW(int, 10 * ms), *trg = LCG_NEW(int, 10 * mt), ns[10], nt[10];
    eval_make_stream(&rc, 128, "test", 10, src, ns, trg, nt);
    for (int s = 0; s < 10; s++)
        for (int i = 0; i + 2 < ns[s]; i++) {
            const int *x = src + (size_t)s * ms;
            if (x[i + 2] == 1 && x[i] >= 3 && x[i + 1] >= 3) ck_assert(seen[2][16 * (x[i] - 3) + (x[i + 1] - 3)]);
        }

    /* split-vocab 0: every split shares the run's vocabulary (the state itself) */
    set_p(&run, "split-vocab", 0);
    lcg_task_cfg t;
    lcg_task_split(&t, &run, 5, "test", 128);
    ck_assert_ptr_eq(t.state, run.state);
    lcg_task_split_release(&t, &run);
    ck_assert_int_eq(keys_seen(&run, 5, "train", 0, 48, 200, seen[0]), 40);
    ck_assert_int_eq(keys_seen(&run, 5, "test", 128, 128, 200, seen[1]), 40);
    ck_assert(memcmp(seen[0], seen[1], 256) == 0);
    lcg_free(src), lcg_free(trg);
    lcg_task_release(&run);

    /* tasks without per-split state share theirs */
    lcg_task_cfg copy = task_named("copy");
    lcg_task_split(&t, &copy, 5, "test", 64);
    ck_assert_ptr_null(t.state);
    lcg_task_split_release(&t, &copy);
}
END_TEST

/* ---- the default path ---------------------------------------------------------------------------- */

START_TEST(test_default_ids_unchanged) {
    /* every committed cell is found by its run id: the options, off, change no id */
    static const char *const grids[][2] = {{"results/mini/grid.txt", "results/mini/mini.csv"},
                                           {"results/mini/grid-i15.txt", "results/mini/i15.csv"},
                                           {"results/baselines/ci.grid", "results/baselines/ci.csv"}};
    for (int g = 0; g < 3; g++) {
        if (!tu_exists(grids[g][1])) continue;
        ck_assert_int_eq(tu_run(&R, LCG " sweep --dry-run --grid %s --out %s", grids[g][0], grids[g][1]), 0);
        ck_assert_msg(strstr(R.err, " 0 to run") || strstr(R.out, " 0 to run"), "%s: cells of %s lost their run ids:\n%s%s",
                      grids[g][0], grids[g][1], R.out, R.err);
    }
}
END_TEST

START_TEST(test_gpu_grid_ids_anywhere) {
    /* the paper's GPU cells are named (dry run) on a machine without a GPU or a CUDA build, and
     * every run in paper.csv is a done cell of its grids: found by its run id */
    const char *csv = "results/paper/paper.csv";
    if (!tu_exists(csv)) return;
    char *text = tu_read_all(csv, NULL), *listed = NULL;
    ck_assert_ptr_nonnull(text);
    size_t len = 0;
    FILE *f = open_memstream(&listed, &len);
    ck_assert_ptr_nonnull(f);
    static const char *const grids[] = {"results/paper/grid.txt", "results/paper/fidelity.txt",
                                        "results/paper/fidelity-mqmtar.txt", "results/paper/full.txt",
                                        "results/paper/full-mqmtar.txt"};
    for (size_t g = 0; g < sizeof grids / sizeof *grids; g++) {
        ck_assert_int_eq(tu_run(&R, LCG " sweep --dry-run --grid %s --out %s", grids[g], csv), 0);
        fprintf(f, "%s%s", R.out, R.err);
    }
    ck_assert_int_eq(fclose(f), 0);
    int runs = 0;
    for (const char *line = strchr(text, '\n'); line && line[1]; line = strchr(line + 1, '\n')) {
        char want[64];
        size_t k = strcspn(line + 1, ",\n");
        ck_assert_msg(k > 0 && k < 40, "%s: a row without a run id", csv);
        snprintf(want, sizeof want, "done  %.*s ", (int)k, line + 1);
        ck_assert_msg(strstr(listed, want), "%s: run %.*s is no done cell of the paper grids:\n%s", csv, (int)k, line + 1,
                      listed);
        runs++;
    }
    ck_assert_int_gt(runs, 0);
    free(listed);
    free(text);
}
END_TEST

int main(void) {
    if (!tu_exists(LCG)) {
        fprintf(stderr, "test_fidelity: %s not found; run from the repository root after 'make lcgbench'\n", LCG);
        return 1;
    }
    Suite *s = suite_create("fidelity");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, test_freeze_cpu);
    tcase_add_test(tc, test_freeze_cli);
    tcase_add_test(tc, test_split_vocab);
    tcase_add_test(tc, test_default_ids_unchanged);
    tcase_add_test(tc, test_gpu_grid_ids_anywhere);
    suite_add_tcase(s, tc);
    return tu_run_suite(s);
}
