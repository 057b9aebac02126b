/*
 * cmd_gen.c: `lcgbench gen`, a task's samples written in the reference generator's format
 * (one sample per line, space-separated ids, no special tokens) or as TSV: the same samples
 * `lcgbench run` draws for the same seed, so `run --data DIR` and the paper's code can read
 * them. Built with -DLCG_FUZZ it stops after validating its flags.
 */
#define _POSIX_C_SOURCE 200809L
#include "cli.h"
#include "../harness/data.h"

#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

int cmd_gen(cli_ctx *cx, int argc, char **argv) {
    const lcg_task *task = lcg_task_find(cli_scan_task(argc, argv, "copy"));
    if (!task) cli_usage_error(cx, "--task: unknown task '%s'; 'lcgbench help tasks' lists them", cli_scan_task(argc, argv, "copy"));
    lcg_task_cfg tc;
    lcg_task_defaults(&tc, task);
    const char *task_name = task->name, *split = "train", *format = "ref", *out = NULL;
    uint64_t seed = 1;
    int len = task->cpu_len, vary = -1, index = 0, help = 0;
    long count = 1000;
    cli_flag fl[32] = {
        {"task", FL_STR, &task_name, 0, 0, "NAME", "task; default copy", 0, 0},
        {"split", FL_STR, &split, 0, 0, "train|test", "train: lengths len +- vary, the samples 'run' trains on "
                                                      "first; test: length len, the samples 'run' evaluates (train)", 0, 0},
        {"len", FL_INT, &len, 1, 1 << 24, "N", "length (the task's default, as for 'run')", 0, 0},
        {"vary", FL_INT, &vary, 0, 1 << 24, "N", "train split: lengths len +- vary (the task's default)", 0, 0},
        {"count", FL_LONG, &count, 1, 1e9, "N", "samples (1000)", 0, 0},
        {"index", FL_INT, &index, 0, 1 << 20, "N", "test split: file name test_<index>_<len> (0)", 0, 0},
        {"seed", FL_U64, &seed, 0, 0, "N", "seed, as for 'run' (1)", 0, 0},
        {"format", FL_STR, &format, 0, 0, "ref|tsv", "ref: <split>.src/.trg (the reference's files); tsv: <split>.tsv (ref)", 0, 0},
        {"out", FL_STR, &out, 0, 0, "DIR", "output directory (required; created if missing)", 0, 0},
        {"help", FL_BOOL, &help, 0, 0, NULL, "show this help", 0, 0},
    };
    int n_fl = cli_add_task_flags(fl, 10, &tc);
    cli_parse_args(cx, fl, n_fl, argc, argv);
    if (help) {
        printf("usage: lcgbench gen --out DIR [flags]\n\n"
               "Write a task's samples in the reference generator's format (one sample per line,\n"
               "space-separated ids, no special tokens), the same samples 'lcgbench run' draws for\n"
               "the same seed, so 'run --data DIR' and the paper's code can read them.\n\nflags:\n");
        cli_print_flags(fl, n_fl);
        return 0;
    }
    if (!out) cli_usage_error(cx, "--out is required");
    int is_test = strcmp(split, "test") == 0;
    if (!is_test && strcmp(split, "train") != 0) cli_usage_error(cx, "--split must be train or test, got '%s'", split);
    if (strcmp(format, "ref") != 0 && strcmp(format, "tsv") != 0) cli_usage_error(cx, "--format must be ref or tsv, got '%s'", format);
    if (vary < 0) vary = is_test ? 0 : task->cpu_vary;
    if (is_test && vary) cli_usage_error(cx, "--vary: test splits have a fixed length");
    if (!is_test && fl[5].set) cli_usage_error(cx, "--index: only test splits have an index");
    if (vary >= len) cli_usage_error(cx, "--vary %d must be smaller than --len %d", vary, len);
    const char *bad = task->validate(&tc, len - vary);
    if (bad[0]) cli_usage_error(cx, "%s (at length %d)", bad, len - vary);
    char name[64], err[768];
    if (is_test) snprintf(name, sizeof name, "test_%d_%d", index, len);
    else snprintf(name, sizeof name, "train");
#ifdef LCG_FUZZ
    return 0;
#endif
    mkdir(out, 0777);
    lcg_task_prepare(&tc, seed);
    pcg32 rng = is_test ? pcg32_derive(seed, "test", (uint64_t)len) : pcg32_derive(seed, "train", 0);
    lcg_task_cfg st; /* as run draws the split: the same samples, its vocabulary included */
    lcg_task_split(&st, &tc, seed, is_test ? "test" : "train", is_test ? (uint64_t)len : 0);
    int rc = data_write_split(out, name, format, &st, &rng, count, len, is_test ? -1 : vary, err, sizeof err);
    lcg_task_split_release(&st, &tc);
    lcg_task_release(&tc);
    if (rc != 0) {
        fprintf(stderr, "lcgbench gen: %s\n", err);
        return 1;
    }
    fprintf(stderr, "wrote %ld %s samples to %s/%s.%s\n", count, task->name, out, name,
            strcmp(format, "tsv") == 0 ? "tsv" : "{src,trg}");
    return 0;
}

