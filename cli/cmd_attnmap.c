/*
 * cmd_attnmap.c: `lcgbench attnmap`, one test sample's attention, layer x head, at a chosen
 * length, from a checkpoint: the data file (harness/attnmap.c) and, for a .png or .svg --out,
 * the figure drawn by gnuplot with plots/attnmap.gp (found beside the executable, else in the
 * working directory). The checkpoint's note gives the task, its parameters and the seed, so the
 * sample is the one `run --load` evaluates at that length. Not here: checkpoints trained on
 * --data files (generator samples only), the GPU (the CPU model draws). Built with -DLCG_FUZZ it
 * stops after checking its flags.
 */
#define _POSIX_C_SOURCE 200809L
#include "cli.h"
#include "../harness/attnmap.h"
#include "../harness/sequence.h"

#include <limits.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* value of key in a checkpoint note "k=v;k=v", into out; NULL if absent */
static const char *note_value(const char *note, const char *key, char *out, size_t n) {
    size_t kl = strlen(key);
    for (const char *p = note; p && *p; p = strchr(p, ';') ? strchr(p, ';') + 1 : NULL)
        if (strncmp(p, key, kl) == 0 && p[kl] == '=') {
            snprintf(out, n, "%.*s", (int)strcspn(p + kl + 1, ";"), p + kl + 1);
            return out;
        }
    return NULL;
}

static int ends_with(const char *s, const char *suffix) {
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcmp(s + a - b, suffix) == 0;
}

/* plots/attnmap.gp beside the executable (a build tree's binary, or the repository root's),
 * else relative to the working directory */
static void find_script(char *out, size_t n) {
    char exe[PATH_MAX];
    ssize_t k = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (k > 0) {
        exe[k] = '\0';
        char *slash = strrchr(exe, '/');
        if (slash) *slash = '\0';
        for (int up = 0; up < 3; up++) {
            snprintf(out, n, "%s/plots/attnmap.gp", exe);
            if (access(out, R_OK) == 0) return;
            if (!(slash = strrchr(exe, '/'))) break;
            *slash = '\0';
        }
    }
    snprintf(out, n, "plots/attnmap.gp");
}

int cmd_attnmap(cli_ctx *cx, int argc, char **argv) {
    const char *load = NULL, *out = NULL, *data_out = NULL;
    int len = 0, sample = 0, rows = 32, all_rows = 0, max_keys = 512, threads = 0, help = 0;
    cli_flag fl[] = {
        {"load", FL_STR, &load, 0, 0, "FILE", "checkpoint to draw (required)", 0, 0},
        {"len", FL_INT, &len, 1, 1 << 24, "N", "test length (required): the samples of that rung", 0, 0},
        {"sample", FL_INT, &sample, 0, 1 << 20, "K", "which test sample, 0-based (0)", 0, 0},
        {"out", FL_STR, &out, 0, 0, "FILE", "FILE.png or FILE.svg: the figure (and FILE.dat beside it); FILE.dat: the data only (required)", 0, 0},
        {"data-out", FL_STR, &data_out, 0, 0, "FILE", "the data file (default: --out with .dat for its extension)", 0, 0},
        {"rows", FL_INT, &rows, 1, 4096, "N", "query rows: the last N positions (32)", 0, 0},
        {"all-rows", FL_BOOL, &all_rows, 0, 0, NULL, "every position as a query row (lengths up to 1024 input tokens)", 0, 0},
        {"max-keys", FL_INT, &max_keys, 8, 1 << 16, "N", "keys summed into at most N bins of equal width (512)", 0, 0},
        {"threads", FL_INT, &threads, 1, 1024, "N", "OpenMP threads (OMP_NUM_THREADS, else the CPUs this process may use)", 0, 0},
        {"help", FL_BOOL, &help, 0, 0, NULL, "show this help", 0, 0},
    };
    int n_fl = (int)(sizeof fl / sizeof *fl);
    cli_parse_args(cx, fl, n_fl, argc, argv);
    if (help) {
        printf("usage: lcgbench attnmap --load CKPT --len N --out FILE.png|FILE.svg|FILE.dat [flags]\n\n"
               "Draw one test sample's attention weights, every layer x head, at length N, with the\n"
               "task's answer positions marked (gnuplot). Query rows: the last positions of the input;\n"
               "keys summed into bins at long lengths; O(n) memory.\n\nflags:\n");
        cli_print_flags(fl, n_fl);
        return 0;
    }
    if (!load) cli_usage_error(cx, "--load is required");
    if (!len) cli_usage_error(cx, "--len is required");
    if (!out) cli_usage_error(cx, "--out is required");
    int png = ends_with(out, ".png"), svg = ends_with(out, ".svg"), dat = ends_with(out, ".dat");
    if (!png && !svg && !dat) cli_usage_error(cx, "--out must end in .png, .svg or .dat, got '%s'", out);
    char dpath[4096];
    if (data_out) snprintf(dpath, sizeof dpath, "%s", data_out);
    else if (dat) snprintf(dpath, sizeof dpath, "%s", out);
    else snprintf(dpath, sizeof dpath, "%.*s.dat", (int)strlen(out) - 4, out);
    if (!dat && (strchr(out, '\'') || strchr(dpath, '\'')))
        cli_usage_error(cx, "--out: a path with a quote (') cannot be handed to gnuplot");
    if (!dat && strcmp(dpath, out) == 0) cli_usage_error(cx, "--data-out names the figure '%s'", out);

#ifdef LCG_FUZZ
    return 0; /* the CLI fuzzer checks the flags only */
#endif
    char err[1024];
    lcg_checkpoint ck;
    if (checkpoint_load(load, &ck, err, sizeof err) != 0) {
        fprintf(stderr, "lcgbench %s: %s\n", cx->cmd, err);
        return 1;
    }
    char v[512];
    const lcg_task *task = note_value(ck.note, "task", v, sizeof v) ? lcg_task_find(v) : NULL;
    if (!task) {
        fprintf(stderr, "lcgbench %s: checkpoint '%s' names no known task\n", cx->cmd, load);
        checkpoint_free(&ck);
        return 1;
    }
    if (note_value(ck.note, "data", v, sizeof v)) {
        fprintf(stderr, "lcgbench %s: checkpoint '%s' was trained on --data files; attnmap draws generator samples only\n",
                cx->cmd, load);
        checkpoint_free(&ck);
        return 1;
    }
    lcg_run_cfg c;
    memset(&c, 0, sizeof c);
    lcg_task_defaults(&c.task, task);
    for (int i = 0; i < task->n_params; i++)
        if (note_value(ck.note, task->params[i].flag, v, sizeof v)) c.task.p[i] = strtod(v, NULL);
    c.seed = note_value(ck.note, "seed", v, sizeof v) ? strtoull(v, NULL, 10) : 1;
    c.model = ck.cfg;
    const char *bad = task->validate(&c.task, len);
    if (bad[0]) {
        checkpoint_free(&ck);
        cli_usage_error(cx, "--len %d: %s", len, bad);
    }
    if (all_rows && seq_max_input(&c.task, len) > LCG_ATTNMAP_ALL_MAX) {
        checkpoint_free(&ck);
        cli_usage_error(cx, "--all-rows: length %d gives more than %d input tokens (use --rows)", len, LCG_ATTNMAP_ALL_MAX);
    }
    if (threads) omp_set_num_threads(threads);
    lcg_task_prepare(&c.task, c.seed);
    lcg_backend_opts opts = {.beta1 = 0.9f, .beta2 = 0.99f, .eps = 1e-8f};
    lcg_backend *b = lcg_backend_create("cpu", &ck.cfg, c.seed, &opts);
    if (!b || b->n_params != ck.n_params) lcg_die("checkpoint '%s': parameters do not match its model", load);
    b->ops->set_params(b, ck.params);
    lcg_attnmap_opts o = {.len = len, .sample = sample, .max_rows = rows, .all_rows = all_rows, .max_keys = max_keys};
    lcg_attnmap_info info;
    int rc = attnmap_write(b, &c, &o, dpath, &info, err, sizeof err);
    lcg_backend_destroy(b);
    lcg_task_release(&c.task);
    if (rc != 0) {
        fprintf(stderr, "lcgbench %s: %s\n", cx->cmd, err);
        checkpoint_free(&ck);
        return 1;
    }
    fprintf(stderr, "wrote %s: %d query rows x %d keys (bins of %d), %d x %d heads, %d answer marks\n", dpath,
            info.rows, info.n, info.bin, ck.cfg.L, ck.cfg.H, info.answers);
    if (!dat) {
        char script[PATH_MAX + 32], cmd[3 * PATH_MAX + 512];
        find_script(script, sizeof script);
        snprintf(cmd, sizeof cmd,
                 "gnuplot -e \"data='%s'; out='%s'; term='%s'; layers=%d; heads=%d; n=%d; "
                 "title='%s %s + %s, length %d, sample %d'\" '%s'",
                 dpath, out, png ? "png" : "svg", ck.cfg.L, ck.cfg.H, info.n, task->name,
                 lcg_normalizer_at(ck.cfg.norm)->name, lcg_posenc_at(ck.cfg.pos)->name, len, sample, script);
        int st = system(cmd);
        if (st != 0) {
            fprintf(stderr, "lcgbench %s: gnuplot failed drawing '%s' (exit %d; is gnuplot installed? apt-get install "
                            "gnuplot-nox)\n", cx->cmd, out, st);
            checkpoint_free(&ck);
            return 1;
        }
        fprintf(stderr, "drew %s\n", out);
    }
    checkpoint_free(&ck);
    return 0;
}
