/*
 * csv_read.c: loads a result CSV (our schema, checked column by column; a schema-1 file, from
 * before the device columns, is read with those filled in as cpu, "", fp32) into memory with
 * libcsv, for the commands that read results back: sweep (which runs are done), table and
 * regress. Fields are kept as strings; callers parse what they use. It does not write.
 */
#define _POSIX_C_SOURCE 200809L
#include "csv.h"

#include <csv.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    lcg_csv *t;
    int col, bad, schema; /* schema: the header's, 1 or 2 (the current), once read */
    int match[LCG_CSV_SCHEMA + 1]; /* the header so far matches schema 1, 2, .. */
    size_t cap_rows;
    char **row;   /* the row being read, lcg_csv_n_columns fields */
    char what[256];
} reader;

static void on_field(void *s, size_t n, void *data) {
    reader *r = data;
    if (r->bad) return;
    if (r->t->n_rows < 0) { /* header */
        for (int v = 1; v <= LCG_CSV_SCHEMA; v++) {
            const char *want = csv_header_name(v, r->col);
            if (!want || strlen(want) != n || memcmp(s, want, n) != 0) r->match[v] = 0;
        }
        const char *want = r->col < lcg_csv_n_columns ? lcg_csv_columns[r->col] : "(none)";
        int any = 0;
        for (int v = 1; v <= LCG_CSV_SCHEMA; v++) any |= r->match[v];
        if (!r->what[0] && !any)
            snprintf(r->what, sizeof r->what, "column %d is '%.*s', expected '%s'", r->col + 1,
                     (int)(n > 40 ? 40 : n), (const char *)s, want);
        r->col++;
        return;
    }
    int n_cols = csv_schema_n_columns(r->schema);
    if (r->col >= n_cols) {
        r->col++;
        return;
    }
    char *f = malloc(n + 1);
    if (!f) lcg_die("out of memory");
    memcpy(f, s, n);
    f[n] = '\0';
    r->row[csv_schema_column(r->schema, r->col)] = f;
    r->col++;
}

/* frees the fields read so far of the row being read */
static void drop_row(reader *r) {
    for (int i = 0; i < lcg_csv_n_columns; i++) {
        free(r->row[i]);
        r->row[i] = NULL;
    }
}

static void on_row(int c, void *data) {
    (void)c;
    reader *r = data;
    if (r->bad) return;
    lcg_csv *t = r->t;
    if (t->n_rows < 0) {
        r->schema = csv_schema_match(r->match, r->col);
        if (!r->schema) {
            r->bad = 1;
            if (!r->what[0])
                snprintf(r->what, sizeof r->what, "the header has %d fields, expected %d", r->col, lcg_csv_n_columns);
            return;
        }
        t->n_rows++;
        r->col = 0;
        return;
    }
    int n_cols = csv_schema_n_columns(r->schema);
    if (r->col != n_cols) {
        r->bad = 1;
        snprintf(r->what, sizeof r->what, "row %ld has %d fields, expected %d", t->n_rows + 2, r->col, n_cols);
        drop_row(r);
        r->col = 0;
        return;
    }
    if (r->schema < LCG_CSV_SCHEMA) /* the columns an older schema lacks: a CPU fp32 run's last checkpoint */
        for (int i = 0; i < lcg_csv_n_columns; i++) {
            const char *d = csv_schema_default(r->schema, i, r->row[csv_col("steps")]);
            if (!d) continue;
            r->row[i] = malloc(strlen(d) + 1);
            if (!r->row[i]) lcg_die("out of memory");
            strcpy(r->row[i], d);
        }
    if ((size_t)t->n_rows == r->cap_rows) {
        r->cap_rows = r->cap_rows ? 2 * r->cap_rows : 64;
        t->rows = realloc(t->rows, sizeof(char **) * r->cap_rows);
        if (!t->rows) lcg_die("out of memory");
    }
    t->rows[t->n_rows] = r->row;
    r->row = LCG_NEW(char *, lcg_csv_n_columns);
    t->n_rows++;
    r->col = 0;
}

int csv_load(const char *path, lcg_csv *t, char *err, size_t err_len) {
    memset(t, 0, sizeof *t);
    size_t n = 0;
    char *data = lcg_read_file(path, &n);
    if (!data) {
        snprintf(err, err_len, "cannot read '%s': %s", path, strerror(errno));
        return -1;
    }
    struct csv_parser p;
    reader r = {.t = t};
    for (int v = 1; v <= LCG_CSV_SCHEMA; v++) r.match[v] = 1;
    const char *text = data;
    if (n >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0) text += 3, n -= 3; /* a UTF-8 BOM (spreadsheets) */
    t->n_rows = -1; /* the header comes first */
    r.row = LCG_NEW(char *, lcg_csv_n_columns);
    if (csv_init(&p, CSV_STRICT | CSV_STRICT_FINI) != 0) lcg_die("csv_init failed");
    size_t used = csv_parse(&p, text, n, on_field, on_row, &r);
    int perr = used != n ? csv_error(&p) : 0;
    if (!perr && csv_fini(&p, on_field, on_row, &r) != 0) perr = csv_error(&p);
    csv_free(&p);
    drop_row(&r);
    lcg_free(r.row);
    int partial = n && text[n - 1] != '\n';
    free(data);
    if (t->n_rows < 0) t->n_rows = 0;
    if (perr || r.bad || partial || n == 0) {
        if (perr) snprintf(err, err_len, "'%s' is not valid CSV: %s", path, csv_strerror(perr));
        else if (r.bad) snprintf(err, err_len, "'%s' is not an lcgbench result file: %s", path, r.what);
        else if (n == 0) snprintf(err, err_len, "'%s' is empty", path);
        else snprintf(err, err_len, "'%s' does not end with a newline (a partial row?)", path);
        csv_free_table(t);
        return -1;
    }
    t->path = malloc(strlen(path) + 1);
    if (!t->path) lcg_die("out of memory");
    strcpy(t->path, path);
    return 0;
}

int csv_num(const lcg_csv *t, long r, int col, double lo, double hi, double *out, char *err, size_t err_len) {
    const char *s = t->rows[r][col];
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (!*s || *end || errno == ERANGE || !isfinite(v) || v < lo || v > hi) {
        /* line r + 2: the header is line 1 and our writers put no line break inside a field */
        snprintf(err, err_len, "%s:%ld: column '%s' is '%.40s', expected a number in [%g, %g]", t->path, r + 2,
                 lcg_csv_columns[col], s, lo, hi);
        return -1;
    }
    *out = v;
    return 0;
}

int csv_col(const char *name) {
    for (int i = 0; i < lcg_csv_n_columns; i++)
        if (strcmp(lcg_csv_columns[i], name) == 0) return i;
    lcg_die("no CSV column '%s'", name);
}

void csv_free_table(lcg_csv *t) {
    for (long i = 0; i < t->n_rows; i++) {
        for (int k = 0; k < lcg_csv_n_columns; k++) free(t->rows[i][k]);
        lcg_free(t->rows[i]);
    }
    free(t->rows);
    free(t->path);
    memset(t, 0, sizeof *t);
}
