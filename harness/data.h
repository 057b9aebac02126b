/*
 * data.h: reference-format data files (data.c): reading, checking and writing splits, and training
 * batches drawn from them
 */
#ifndef LCG_DATA_H
#define LCG_DATA_H

#include <stdio.h>

#include "sequence.h"

/* ---- reference-format data files (harness/data.c) -----------------------------------------
 * A split is <dir>/<name>.src and <name>.trg, one sample per line, space-separated integer
 * ids without special tokens (the reference generator's format); test splits are named
 * test_<i>_<len>. Every malformed line is a one-line error naming the file and line. */
typedef struct lcg_data_reader {
    char path_src[4096], path_trg[4096];
    FILE *fs, *ft;
    char *line_s, *line_t;
    size_t cap_s, cap_t;
    int *src, *trg;      /* the current sample, grown as needed */
    int cap_src, cap_trg;
    long line;           /* 1-based number of the current line */
    long samples;        /* samples read in this pass */
} lcg_data_reader;

int data_open(lcg_data_reader *r, const char *dir, const char *split, char *err, size_t err_len);
/* the next sample (pointers valid until the next call): 1, 0 at the end, -1 on error */
int data_next(lcg_data_reader *r, const lcg_task_cfg *task, const int **src, int *n_src,
              const int **trg, int *n_trg, char *err, size_t err_len);
/* as data_next, starting over at the end (training epochs); 0 or -1 (an empty split is an error) */
int data_next_cyclic(lcg_data_reader *r, const lcg_task_cfg *task, const int **src, int *n_src,
                     const int **trg, int *n_trg, char *err, size_t err_len);
void data_close(lcg_data_reader *r);
/* reads a whole split, checking every line; *count = its samples. 0 or -1 with err */
int data_check_split(const char *dir, const char *split, const lcg_task_cfg *task, long *count, char *err,
                     size_t err_len);
/* the nominal length of a sample with n_src source tokens: the smallest L whose samples can
 * have that many (exact where the source length is a function of L: copy, sort, reverse,
 * nback; a lower bound for count, flip-flop, recall and mqmtar) */
int data_nominal_len(const lcg_task_cfg *task, int n_src);
/* as data_check_split, also giving the shortest and longest source of the split */
int data_scan_split(const char *dir, const char *split, const lcg_task_cfg *task, long *count, int *min_src,
                    int *max_src, char *err, size_t err_len);
/* the test splits test_<idx>_<len> of dir, sorted by index; returns the count (at most max)
 * or -1 with err */
int data_test_splits(const char *dir, int *idx, int *lens, int max, char *err, size_t err_len);
/* writes `count` samples of split `name` in format "ref" (.src/.trg) or "tsv" (<name>.tsv:
 * src<TAB>trg per line), drawn as lcgbench run draws them: lengths len +- vary as training
 * batches do, or with vary < 0 all of length len as the evaluation sets do */
int data_write_split(const char *dir, const char *name, const char *format, const lcg_task_cfg *task,
                     pcg32 *rng, long count, int len, int vary, char *err, size_t err_len);

/* a batch from a data file instead of the generator; 0 or -1 with err */
int batch_fill_data(lcg_batch *b, const lcg_task_cfg *task, lcg_data_reader *r, int B, char *err,
                    size_t err_len);

#endif
