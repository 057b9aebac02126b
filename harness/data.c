/*
 * data.c: reading and writing samples in the reference generator's file format, so lcgbench
 * can train and evaluate on the paper's own data and the paper's code on ours.
 *
 *   <dir>/<split>.src, <dir>/<split>.trg: one sample per line, space-separated decimal ids,
 *   no special tokens; splits `train` and `test_<i>_<len>`.   ("tsv": <split>.tsv, src TAB trg)
 *
 * Lines are read with getline, so no line length is assumed. Every problem is one line naming
 * the file and line number: a non-numeric token, an id outside the task's range, an empty
 * line, .src/.trg line counts that differ, a token-classification line whose label count
 * differs from its token count. Training reads the file in order, starting over at the end;
 * evaluation uses the first --eval-samples samples of a test split, and `run --data` checks
 * every line of every test split it will use before training starts. Files are written
 * through a temp file and rename.
 */
#define _POSIX_C_SOURCE 200809L
#include "data.h"
#include "run.h"

#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

int data_open(lcg_data_reader *r, const char *dir, const char *split, char *err, size_t err_len) {
    memset(r, 0, sizeof *r);
    snprintf(r->path_src, sizeof r->path_src, "%s/%s.src", dir, split);
    snprintf(r->path_trg, sizeof r->path_trg, "%s/%s.trg", dir, split);
    r->fs = fopen(r->path_src, "r");
    r->ft = r->fs ? fopen(r->path_trg, "r") : NULL;
    if (!r->fs || !r->ft) {
        snprintf(err, err_len, "cannot open '%s': %s", r->fs ? r->path_trg : r->path_src, strerror(errno));
        data_close(r);
        return -1;
    }
    return 0;
}

void data_close(lcg_data_reader *r) {
    if (r->fs) fclose(r->fs);
    if (r->ft) fclose(r->ft);
    free(r->line_s);
    free(r->line_t);
    lcg_free(r->src);
    lcg_free(r->trg);
    memset(r, 0, sizeof *r);
}

/* parses ids from line into *out (grown as needed); each id in [0, max_id] */
static int parse_ids(const char *line, int **out, int *cap, int *n, int max_id, const char *path,
                     long lineno, const char *task, char *err, size_t err_len) {
    const char *p = line;
    *n = 0;
    for (;;) {
        while (*p == ' ' || *p == '\t') p++;
        if (*p == '\n' || *p == '\r' || *p == '\0') break;
        char *end;
        errno = 0;
        long v = strtol(p, &end, 10);
        if (end == p || (*end && *end != ' ' && *end != '\t' && *end != '\n' && *end != '\r')) {
            int len = (int)strcspn(p, " \t\r\n");
            snprintf(err, err_len, "%s:%ld: '%.*s' is not a token id", path, lineno, len > 20 ? 20 : len, p);
            return -1;
        }
        if (errno == ERANGE || v < 0 || v > max_id) {
            snprintf(err, err_len, "%s:%ld: id %ld outside [0, %d], the ids of task '%s' with these settings", path,
                     lineno, v, max_id, task);
            return -1;
        }
        if (*n == *cap) {
            int nc = *cap ? 2 * *cap : 256;
            int *q = LCG_NEW(int, nc);
            if (*n) memcpy(q, *out, sizeof(int) * (size_t)*n);
            lcg_free(*out);
            *out = q;
            *cap = nc;
        }
        (*out)[(*n)++] = (int)v;
        p = end;
    }
    if (*n == 0) {
        snprintf(err, err_len, "%s:%ld: empty line", path, lineno);
        return -1;
    }
    return 0;
}

int data_next(lcg_data_reader *r, const lcg_task_cfg *task, const int **src, int *n_src,
              const int **trg, int *n_trg, char *err, size_t err_len) {
    ssize_t a = getline(&r->line_s, &r->cap_s, r->fs), b = getline(&r->line_t, &r->cap_t, r->ft);
    if (a < 0 && b < 0) return 0;
    r->line++;
    if (a < 0 || b < 0) {
        snprintf(err, err_len, "%s:%ld: more lines than %s", a < 0 ? r->path_trg : r->path_src, r->line,
                 a < 0 ? r->path_src : r->path_trg);
        return -1;
    }
    int M = task->task->max_token(task), cls = task->task->kind == LCG_TASK_TOKEN_CLS;
    int max_label = cls ? task->task->n_labels(task) - 1 : M;
    if (parse_ids(r->line_s, &r->src, &r->cap_src, n_src, M, r->path_src, r->line, task->task->name, err, err_len) ||
        parse_ids(r->line_t, &r->trg, &r->cap_trg, n_trg, max_label, r->path_trg, r->line, task->task->name, err,
                  err_len))
        return -1;
    if (cls && *n_trg != *n_src) {
        snprintf(err, err_len, "%s:%ld: %d labels for %d tokens", r->path_trg, r->line, *n_trg, *n_src);
        return -1;
    }
    r->samples++;
    *src = r->src;
    *trg = r->trg;
    return 1;
}

int data_next_cyclic(lcg_data_reader *r, const lcg_task_cfg *task, const int **src, int *n_src,
                     const int **trg, int *n_trg, char *err, size_t err_len) {
    int rc = data_next(r, task, src, n_src, trg, n_trg, err, err_len);
    if (rc != 0) return rc < 0 ? -1 : 0;
    if (r->samples == 0) {
        snprintf(err, err_len, "%s is empty", r->path_src);
        return -1;
    }
    rewind(r->fs), rewind(r->ft);
    r->line = 0, r->samples = 0;
    return data_next(r, task, src, n_src, trg, n_trg, err, err_len) == 1 ? 0 : -1;
}

int data_test_splits(const char *dir, int *idx, int *lens, int max, char *err, size_t err_len) {
    DIR *d = opendir(dir);
    if (!d) {
        snprintf(err, err_len, "cannot open data directory '%s': %s", dir, strerror(errno));
        return -1;
    }
    int n = 0;
    for (struct dirent *e; (e = readdir(d));) {
        int i, len, used = 0;
        if (sscanf(e->d_name, "test_%d_%d.src%n", &i, &len, &used) != 2 || e->d_name[used] || i < 0 || len < 1)
            continue;
        if (n == max || n == LCG_MAX_RUNGS) {
            snprintf(err, err_len, "'%s' has more than %d test splits", dir, max);
            closedir(d);
            return -1;
        }
        idx[n] = i, lens[n] = len, n++;
    }
    closedir(d);
    for (int a = 1; a < n; a++) /* insertion sort by split index */
        for (int b = a; b > 0 && idx[b - 1] > idx[b]; b--) {
            int t = idx[b]; idx[b] = idx[b - 1], idx[b - 1] = t;
            t = lens[b]; lens[b] = lens[b - 1], lens[b - 1] = t;
        }
    for (int a = 1; a < n; a++)
        if (idx[a] == idx[a - 1]) {
            snprintf(err, err_len, "'%s' has two test splits with index %d", dir, idx[a]);
            return -1;
        }
    return n;
}

static void put_ids(FILE *f, const int *x, int n, int end) {
    for (int i = 0; i < n; i++) fprintf(f, i ? " %d" : "%d", x[i]);
    fputc(end, f);
}

int data_write_split(const char *dir, const char *name, const char *format, const lcg_task_cfg *task,
                     pcg32 *rng, long count, int len, int vary, char *err, size_t err_len) {
    int tsv = strcmp(format, "tsv") == 0, ms, mt, fixed = vary < 0;
    task->task->max_sizes(task, len + (fixed ? 0 : vary), &ms, &mt);
    int *src = LCG_NEW(int, ms + 1), *trg = LCG_NEW(int, mt + 1), n_src, n_trg;
    char *bs = NULL, *bt = NULL;
    size_t ns = 0, nt = 0;
    FILE *fs = open_memstream(&bs, &ns), *ft = tsv ? NULL : open_memstream(&bt, &nt);
    if (!fs || (!tsv && !ft)) lcg_die("open_memstream failed");
    if (tsv) fputs("src\ttrg\n", fs);
    for (long k = 0; k < count; k++) { /* the draws of batch_fill (a length, then a sample) or,
                                        * fixed, of the evaluation sets (a sample) */
        int L = fixed ? len : len - vary + (int)pcg32_below(rng, (uint32_t)(2 * vary + 1));
        task->task->generate(task, rng, L, src, &n_src, trg, &n_trg);
        put_ids(fs, src, n_src, tsv ? '\t' : '\n');
        put_ids(tsv ? fs : ft, trg, n_trg, '\n');
    }
    fclose(fs);
    if (ft) fclose(ft);
    char path[4200];
    snprintf(path, sizeof path, "%s/%s.%s", dir, name, tsv ? "tsv" : "src");
    int rc = lcg_write_file_atomic(path, bs, ns, err, err_len);
    if (rc == 0 && !tsv) {
        snprintf(path, sizeof path, "%s/%s.trg", dir, name);
        rc = lcg_write_file_atomic(path, bt, nt, err, err_len);
    }
    free(bs), free(bt), lcg_free(src), lcg_free(trg);
    return rc;
}

int data_check_split(const char *dir, const char *split, const lcg_task_cfg *task, long *count, char *err,
                     size_t err_len) {
    return data_scan_split(dir, split, task, count, NULL, NULL, err, err_len);
}

int data_nominal_len(const lcg_task_cfg *task, int n_src) {
    int lo = 1, hi = 4 * n_src + 16; /* the smallest L whose samples can have n_src source tokens */
    while (lo < hi) {
        int mid = lo + (hi - lo) / 2, ms, mt;
        task->task->max_sizes(task, mid, &ms, &mt);
        if (ms >= n_src) hi = mid;
        else lo = mid + 1;
    }
    return lo;
}

int data_scan_split(const char *dir, const char *split, const lcg_task_cfg *task, long *count, int *min_src,
                    int *max_src, char *err, size_t err_len) {
    lcg_data_reader r;
    if (data_open(&r, dir, split, err, err_len) != 0) return -1;
    const int *s, *t;
    int a, b, rc, lo = 1 << 30, hi = 0;
    while ((rc = data_next(&r, task, &s, &a, &t, &b, err, err_len)) == 1) {
        lo = a < lo ? a : lo;
        hi = a > hi ? a : hi;
    }
    if (count) *count = r.samples;
    if (min_src) *min_src = lo;
    if (max_src) *max_src = hi;
    if (rc == 0 && r.samples == 0) {
        snprintf(err, err_len, "%s is empty", r.path_src);
        rc = -1;
    }
    data_close(&r);
    return rc;
}
