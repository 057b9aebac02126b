/*
 * attnmap.h: one test sample's attention weights, every layer x head, at one length, as a
 * gnuplot data file (attnmap.c); `lcgbench attnmap` draws it with plots/attnmap.gp. Streams the
 * rows through the evaluation seam's attn_row in O(n) memory; not here: drawing, the CLI.
 */
#ifndef LCG_ATTNMAP_H
#define LCG_ATTNMAP_H

#include "run.h"

typedef struct {
    int len;      /* the test length (the rung's samples: stream "test", len) */
    int sample;   /* which of them, 0-based */
    int max_rows; /* query rows drawn: the last max_rows positions (the prompt's end and the
                     supervised ones; answers are marked on the supervised) ... */
    int all_rows; /* ... or every position (short sequences only: len <= LCG_ATTNMAP_ALL_MAX) */
    int max_keys; /* keys are summed into at most this many bins of equal width */
} lcg_attnmap_opts;
#define LCG_ATTNMAP_ALL_MAX 1024

/* what was written, for the plot */
typedef struct {
    int n;        /* input length */
    int rows;     /* query rows */
    int bin;      /* keys per bin (1: every key) */
    int bins;
    int answers;  /* answer marks */
} lcg_attnmap_info;

/* writes the map of backend b's model (run settings cfg: task, seed) to path, atomically:
 * comment lines (#), then one block per (layer, head) in that order, separated by two blank
 * lines (gnuplot's index l * H + h), of lines "layer head r pos key weight" for every query row
 * r (position pos) and key bin (its first key; weight: the bin's summed attention weight, 0
 * included), then a last block of the answer positions "r pos key" (the task's answer_pos).
 * 0, or -1 with err */
int attnmap_write(lcg_backend *b, const lcg_run_cfg *cfg, const lcg_attnmap_opts *o, const char *path,
                  lcg_attnmap_info *info, char *err, size_t err_len);

#endif
