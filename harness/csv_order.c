/*
 * csv_order.c: puts the rows of a sweep's runs back into the sweep's order in a results CSV,
 * for sweeps whose cells finish out of order (child processes running cells side by side, or a
 * serial sweep resuming a file such a sweep left). The unit is a block: the consecutive rows
 * of one run id, which one run appends at once (its ladder, then its best checkpoint's rows).
 * The blocks of the given runs are sorted by (pass, run), where pass counts the earlier blocks
 * of the same run (a ladder grown later adds a second block, which a serial sweep appends
 * after the first pass), and put back into the places those blocks held; every other row stays
 * where it is. A file already in that order is left alone byte for byte (it is not even
 * rewritten), so a serial sweep's own file never changes.
 *
 * It reads records, not fields: a record ends at a newline outside double quotes and its run
 * id is its first field (column 0 of the schema, unquoted hex). A file with another header (an
 * older schema) is left as it is. It does not parse or check the other fields.
 */
#define _POSIX_C_SOURCE 200809L
#include "csv.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    size_t off, len; /* bytes of the block in the file */
    int run;         /* index into the caller's run ids, -1: a row of no listed run */
    int pass;
    long at;         /* position among the listed runs' blocks in the file */
} ord_block;

typedef struct {
    const uint64_t *ids;
    int n_ids;
    int changed; /* set by the reorder: the file was not in order */
} ord_ctx;

static int by_key(const void *a, const void *b) {
    const ord_block *x = a, *y = b;
    if (x->pass != y->pass) return x->pass < y->pass ? -1 : 1;
    if (x->run != y->run) return x->run < y->run ? -1 : 1;
    return x->at < y->at ? -1 : x->at > y->at; /* stable */
}

/* the end of the record starting at p (just past its newline, or end) */
static const char *record_end(const char *p, const char *end) {
    int quoted = 0;
    for (; p < end; p++) {
        if (*p == '"') quoted = !quoted;
        else if (*p == '\n' && !quoted) return p + 1;
    }
    return end;
}

/* the index of the run whose id starts the record, or -1 */
static int record_run(const char *p, const char *e, const ord_ctx *o) {
    char id[24];
    size_t n = 0;
    while (p + n < e && p[n] != ',' && p[n] != '\n' && n < sizeof id - 1) n++;
    if (n == 0 || n == sizeof id - 1) return -1;
    memcpy(id, p, n);
    id[n] = '\0';
    char *end;
    errno = 0;
    unsigned long long v = strtoull(id, &end, 16);
    if (*end || errno) return -1;
    for (int k = 0; k < o->n_ids; k++)
        if (o->ids[k] == (uint64_t)v) return k;
    return -1;
}

/* the header line of the current schema */
static char *current_header(size_t *n) {
    char *h = NULL;
    FILE *f = open_memstream(&h, n);
    if (!f) lcg_die("open_memstream failed");
    csv_write_record(f, lcg_csv_columns, lcg_csv_n_columns);
    if (fclose(f) != 0) lcg_die("building the CSV header failed");
    return h;
}

/* the file's text with the listed runs' blocks in order (malloc'd into *out); o->changed says
 * whether that differs from the input */
static void reorder(ord_ctx *o, const char *text, size_t n, char **out, size_t *n_out) {
    o->changed = 0;
    *out = NULL;
    *n_out = 0;
    size_t n_head;
    char *head = current_header(&n_head);
    const char *end = text + n, *body = n >= n_head && memcmp(text, head, n_head) == 0 ? text + n_head : NULL;
    free(head);
    size_t cap = 64, n_blk = 0;
    ord_block *blk = body ? malloc(cap * sizeof *blk) : NULL;
    if (body && !blk) lcg_die("out of memory");
    int *passes = body ? calloc((size_t)o->n_ids + 1, sizeof *passes) : NULL;
    if (body && !passes) lcg_die("out of memory");
    long n_listed = 0;
    for (const char *p = body; p && p < end;) {
        const char *e = record_end(p, end);
        int run = record_run(p, e, o);
        ord_block *last = n_blk ? &blk[n_blk - 1] : NULL;
        if (last && run >= 0 && last->run == run && last->off + last->len == (size_t)(p - text)) {
            last->len += (size_t)(e - p);
        } else {
            if (n_blk == cap) {
                cap *= 2;
                blk = realloc(blk, cap * sizeof *blk);
                if (!blk) lcg_die("out of memory");
            }
            blk[n_blk++] = (ord_block){.off = (size_t)(p - text), .len = (size_t)(e - p), .run = run,
                                       .pass = run >= 0 ? passes[run]++ : 0, .at = run >= 0 ? n_listed++ : -1};
        }
        p = e;
    }
    ord_block *sorted = n_listed ? malloc((size_t)n_listed * sizeof *sorted) : NULL;
    if (n_listed && !sorted) lcg_die("out of memory");
    long m = 0;
    for (size_t b = 0; b < n_blk; b++)
        if (blk[b].run >= 0) sorted[m++] = blk[b];
    if (m) qsort(sorted, (size_t)m, sizeof *sorted, by_key);
    for (long k = 0; k < m; k++) o->changed |= sorted[k].at != k;
    if (o->changed) {
        char *buf = malloc(n ? n : 1);
        if (!buf) lcg_die("out of memory");
        size_t w = (size_t)(body - text);
        memcpy(buf, text, w);
        long next = 0;
        for (size_t b = 0; b < n_blk; b++) {
            const ord_block *src = blk[b].run >= 0 ? &sorted[next++] : &blk[b];
            memcpy(buf + w, text + src->off, src->len);
            w += src->len;
        }
        *out = buf;
        *n_out = w;
    }
    free(sorted);
    free(passes);
    free(blk);
}

static int reorder_update(void *ctx, const char *old, size_t n_old, char **out, size_t *n_out, char *err,
                          size_t err_len) {
    ord_ctx *o = ctx;
    if (!old) {
        snprintf(err, err_len, "the CSV disappeared while it was being put in order");
        return -1;
    }
    reorder(o, old, n_old, out, n_out);
    if (!o->changed) { /* another writer put it in order meanwhile: the same bytes again */
        *out = malloc(n_old ? n_old : 1);
        if (!*out) lcg_die("out of memory");
        memcpy(*out, old, n_old);
        *n_out = n_old;
    }
    return 0;
}

int csv_order_runs(const char *path, const uint64_t *run_ids, int n_runs, char *err, size_t err_len) {
    ord_ctx o = {.ids = run_ids, .n_ids = n_runs};
    size_t n = 0;
    char *text = lcg_read_file(path, &n);
    if (!text) {
        if (errno == ENOENT) return 0;
        snprintf(err, err_len, "cannot read '%s': %s", path, strerror(errno));
        return -1;
    }
    char *out;
    size_t n_out;
    reorder(&o, text, n, &out, &n_out); /* a look without the lock: most files are in order */
    free(text);
    free(out);
    if (!o.changed) return 0;
    if (lcg_update_file(path, reorder_update, &o, err, err_len) != 0) return -1;
    return 1;
}
