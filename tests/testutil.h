/*
 * testutil.h: small helpers shared by the Check suites: run a shell command capturing its
 * exit status, stdout and stderr; make and remove a scratch directory; read and write files;
 * read a CSV (RFC 4180); finite-difference gradient checks. Header-only.
 * Tests run from the repository root (`make test`), where ./lcgbench is built.
 */
#ifndef LCG_TESTUTIL_H
#define LCG_TESTUTIL_H

#define _POSIX_C_SOURCE 200809L
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdarg.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <math.h>

#include "../kernels/util.h"

typedef struct {
    int status;   /* exit code, or 128 + signal */
    char out[1 << 16];
    char err[1 << 16];
} tu_result;

static inline void tu_slurp(const char *path, char *buf, size_t n) {
    buf[0] = '\0';
    FILE *f = fopen(path, "rb");
    if (!f) return;
    size_t got = fread(buf, 1, n - 1, f);
    buf[got] = '\0';
    fclose(f);
}

/* runs `sh -c cmd`; the result struct is large, so callers keep it static or on the heap */
static inline int tu_run(tu_result *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static inline int tu_run(tu_result *r, const char *fmt, ...) {
    char cmd[8192], full[8400], outp[64], errp[64];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    snprintf(outp, sizeof outp, "/tmp/lcgtest.%d.out", (int)getpid());
    snprintf(errp, sizeof errp, "/tmp/lcgtest.%d.err", (int)getpid());
    snprintf(full, sizeof full, "( %s ) >%s 2>%s", cmd, outp, errp);
    int st = system(full);
    r->status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + (WIFSIGNALED(st) ? WTERMSIG(st) : 0);
    tu_slurp(outp, r->out, sizeof r->out);
    tu_slurp(errp, r->err, sizeof r->err);
    remove(outp);
    remove(errp);
    return r->status;
}

/* a fresh scratch directory under /tmp (never removed on failure, for inspection) */
static inline const char *tu_tmpdir(char *buf, size_t n) {
    snprintf(buf, n, "/tmp/lcgtest.XXXXXX");
    if (!mkdtemp(buf)) ck_abort_msg("mkdtemp failed");
    return buf;
}

static inline int tu_count_lines(const char *s) {
    int n = 0;
    for (; *s; s++) n += *s == '\n';
    return n;
}

/* ---- files ---------------------------------------------------------------------------------- */
/* the whole file at path, NUL-terminated, its length in *n unless n is NULL; NULL if it cannot
 * be opened; malloc'd */
static inline char *tu_read_all(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap + 1);
    ck_assert_ptr_nonnull(buf);
    size_t got;
    while ((got = fread(buf + len, 1, cap - len, f)) > 0) {
        len += got;
        if (len == cap) {
            cap *= 2;
            buf = realloc(buf, cap + 1);
            ck_assert_ptr_nonnull(buf);
        }
    }
    fclose(f);
    buf[len] = '\0';
    if (n) *n = len;
    return buf;
}

/* writes n bytes to path (created or truncated); fails the test on any error */
static inline void tu_write_all(const char *path, const void *data, size_t n) {
    FILE *f = fopen(path, "wb");
    ck_assert_msg(f != NULL, "cannot write %s", path);
    ck_assert_uint_eq(fwrite(data, 1, n, f), n);
    ck_assert_int_eq(fclose(f), 0);
}

/* whether anything exists at path */
static inline int tu_exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0;
}

/* removes a scratch directory of tu_tmpdir; reached only when the test passed */
static inline void tu_rm_tmpdir(const char *dir) {
    char cmd[512];
    ck_assert(strncmp(dir, "/tmp/lcgtest.", 13) == 0 && !strchr(dir, '\''));
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    ck_assert_int_eq(system(cmd), 0);
}

/* ---- assertions on one command (`fmt` is the whole command line, printf-style) ----------- */
/* formats the command line into cmd[n] (kept for messages) and runs it */
static inline void tu_vrun(tu_result *r, char *cmd, size_t n, const char *fmt, va_list ap) {
    vsnprintf(cmd, n, fmt, ap);
    tu_run(r, "%s", cmd);
}

/* runs the command formatted into cmd[n] and asserts it exits `want` */
static inline void tu_vexpect_status(tu_result *r, int want, char *cmd, size_t n, const char *fmt, va_list ap) {
    tu_vrun(r, cmd, n, fmt, ap);
    ck_assert_msg(r->status == want, "'%s': exit %d, expected %d; stderr: %s", cmd, r->status, want, r->err);
}

/* the command exits `want` */
static inline void tu_expect_status(tu_result *r, int want, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static inline void tu_expect_status(tu_result *r, int want, const char *fmt, ...) {
    char cmd[8192];
    va_list ap;
    va_start(ap, fmt);
    tu_vexpect_status(r, want, cmd, sizeof cmd, fmt, ap);
    va_end(ap);
}

/* the command fails and says why: exit `status` (2 usage, 1 run time), nothing on stdout for a
 * usage error, exactly one newline-ended stderr line containing need1 (and need2 unless NULL),
 * and no file at `nofile` (unless NULL) */
static inline void tu_expect_fail(tu_result *r, int status, const char *nofile, const char *need1, const char *need2,
                                  const char *fmt, ...) __attribute__((format(printf, 6, 7)));
static inline void tu_expect_fail(tu_result *r, int status, const char *nofile, const char *need1, const char *need2,
                                  const char *fmt, ...) {
    char cmd[8192];
    va_list ap;
    va_start(ap, fmt);
    tu_vexpect_status(r, status, cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    ck_assert_msg(status != 2 || r->out[0] == '\0', "'%s': unexpected stdout: %s", cmd, r->out);
    size_t n = strlen(r->err);
    ck_assert_msg(tu_count_lines(r->err) == 1 && n > 0 && r->err[n - 1] == '\n',
                  "'%s': expected one stderr line, got: %s", cmd, r->err);
    ck_assert_msg(strstr(r->err, need1), "'%s': stderr does not name '%s': %s", cmd, need1, r->err);
    ck_assert_msg(!need2 || strstr(r->err, need2), "'%s': stderr does not name '%s': %s", cmd, need2, r->err);
    ck_assert_msg(!nofile || !tu_exists(nofile), "'%s' failed but wrote %s", cmd, nofile);
}

/* ---- CSV: a small RFC 4180 reader (quoted fields, "" escapes, newlines inside quotes) ----- */
#define TU_CSV_MAX_ROWS 64
#define TU_CSV_MAX_COLS 96

/* row 0 is the header; cells are malloc'd, freed by tu_csv_free */
typedef struct {
    int rows;
    int cols[TU_CSV_MAX_ROWS];
    char *cell[TU_CSV_MAX_ROWS][TU_CSV_MAX_COLS];
} tu_csv_doc;

static inline void tu_csv_free(tu_csv_doc *d) {
    for (int r = 0; r < d->rows; r++)
        for (int c = 0; c < d->cols[r]; c++) free(d->cell[r][c]);
    d->rows = 0;
}

/* parses text into d; every record must end with '\n'. Aborts the test on malformed input. */
static inline void tu_csv_parse(const char *s, tu_csv_doc *d) {
    memset(d, 0, sizeof *d);
    size_t n = strlen(s), cap = n + 1;
    char *field = malloc(cap);
    ck_assert_ptr_nonnull(field);
    size_t i = 0;
    while (i < n) {
        ck_assert_msg(d->rows < TU_CSV_MAX_ROWS, "CSV: more than %d rows", TU_CSV_MAX_ROWS);
        int r = d->rows++;
        for (;;) { /* one field */
            size_t len = 0;
            if (s[i] == '"') {
                for (i++;; i++) {
                    ck_assert_msg(i < n, "CSV: unterminated quoted field in row %d", r + 1);
                    if (s[i] == '"') {
                        if (s[i + 1] == '"') i++;
                        else break;
                    }
                    field[len++] = s[i];
                }
                i++; /* closing quote */
                ck_assert_msg(s[i] == ',' || s[i] == '\n', "CSV: junk after a quoted field in row %d", r + 1);
            } else {
                while (i < n && s[i] != ',' && s[i] != '\n') {
                    ck_assert_msg(s[i] != '"' && s[i] != '\r', "CSV: stray quote or CR in row %d", r + 1);
                    field[len++] = s[i++];
                }
            }
            ck_assert_msg(d->cols[r] < TU_CSV_MAX_COLS, "CSV: more than %d columns", TU_CSV_MAX_COLS);
            field[len] = '\0';
            d->cell[r][d->cols[r]++] = strdup(field);
            ck_assert_msg(i < n, "CSV: row %d does not end with a newline", r + 1);
            if (s[i++] == '\n') break;
        }
    }
    free(field);
}

/* index of header column `name`, or -1 */
static inline int tu_csv_col(const tu_csv_doc *d, const char *name) {
    for (int c = 0; d->rows && c < d->cols[0]; c++)
        if (strcmp(d->cell[0][c], name) == 0) return c;
    return -1;
}

/* parses the file at path into d; fails the test unless it reads, has a header and every row
 * has as many fields as the header */
static inline void tu_csv_load(const char *path, tu_csv_doc *d) {
    char *text = tu_read_all(path, NULL);
    ck_assert_msg(text != NULL, "cannot read %s", path);
    tu_csv_parse(text, d);
    free(text);
    ck_assert_msg(d->rows >= 1, "%s is empty", path);
    for (int r = 1; r < d->rows; r++)
        ck_assert_msg(d->cols[r] == d->cols[0], "%s: row %d has %d fields, header %d", path, r + 1,
                      d->cols[r], d->cols[0]);
}

/* the values of column `name` in the data rows, '\n'-joined; fails the test if there is no
 * such column; malloc'd */
static inline char *tu_csv_column(const char *path, const char *name) {
    tu_csv_doc d;
    tu_csv_load(path, &d);
    int c = tu_csv_col(&d, name);
    ck_assert_msg(c >= 0, "%s has no column %s", path, name);
    size_t len = 0;
    char *out = NULL;
    FILE *f = open_memstream(&out, &len);
    ck_assert_ptr_nonnull(f);
    for (int r = 1; r < d.rows; r++) fprintf(f, "%s\n", d.cell[r][c]);
    ck_assert_int_eq(fclose(f), 0);
    tu_csv_free(&d);
    return out;
}

/* is `w` one of the space-separated words of `list` (NULL: none)? */
static inline int tu_in_list(const char *list, const char *w) {
    size_t n = strlen(w);
    for (const char *p = list; p && *p;) {
        while (*p == ' ') p++;
        size_t k = strcspn(p, " ");
        if (k == n && strncmp(p, w, n) == 0) return 1;
        p += k;
    }
    return 0;
}

/* lcgbench's CSV at path without its wall_* columns and the columns named in `skip`
 * (space-separated, or NULL), one record per line, each field ended by '\x1f' (compared, never
 * parsed again); malloc'd. A file without wall_* columns fails the test. */
static inline char *tu_csv_stripped(const char *path, const char *skip) {
    tu_csv_doc d;
    tu_csv_load(path, &d);
    int n_wall = 0;
    for (int c = 0; c < d.cols[0]; c++) n_wall += strncmp(d.cell[0][c], "wall_", 5) == 0;
    ck_assert_msg(n_wall > 0, "%s has no wall_* columns", path);
    size_t len = 0;
    char *out = NULL;
    FILE *f = open_memstream(&out, &len);
    ck_assert_ptr_nonnull(f);
    for (int r = 0; r < d.rows; r++) {
        for (int c = 0; c < d.cols[r]; c++) {
            const char *h = d.cell[0][c];
            if (strncmp(h, "wall_", 5) != 0 && !tu_in_list(skip, h)) fprintf(f, "%s\x1f", d.cell[r][c]);
        }
        fputc('\n', f);
    }
    ck_assert_int_eq(fclose(f), 0);
    tu_csv_free(&d);
    return out;
}

/* a and b hold the same rows outside the wall_* columns and `skip` */
static inline void tu_assert_same_csv(const char *a, const char *b, const char *skip) {
    char *sa = tu_csv_stripped(a, skip), *sb = tu_csv_stripped(b, skip);
    ck_assert_msg(strcmp(sa, sb) == 0, "%s and %s differ outside wall_*%s%s:\n%s---\n%s", a, b, skip ? " and " : "",
                  skip ? skip : "", sa, sb);
    free(sa);
    free(sb);
}

/* ---- finite differences in double precision ------------------------------------------------ */
/* x[i] = scale * N(0, 1) */
static inline void tu_fill(double *x, size_t n, pcg32 *r, double scale) {
    for (size_t i = 0; i < n; i++) x[i] = scale * pcg32_normal(r);
}
/* x[i] = shift + scale * N(0, 1) */
static inline void tu_fill_shift(double *x, size_t n, pcg32 *r, double scale, double shift) {
    for (size_t i = 0; i < n; i++) x[i] = shift + scale * pcg32_normal(r);
}
static inline double tu_dot(const double *a, const double *b, size_t n) {
    double s = 0;
    for (size_t i = 0; i < n; i++) s += a[i] * b[i];
    return s;
}

/* a scalar loss of some inputs, typically <proj, f(inputs)> */
typedef double (*tu_loss_fn)(void *ctx);

/* central differences (h = 1e-6) of f w.r.t. every x[i] against grad[i]; fails the test if
 * any relative error (to max(1, |numeric|)) reaches 1e-6 */
static inline void tu_fd_check(const char *what, tu_loss_fn f, void *ctx, double *x, const double *grad, size_t n) {
    const double h = 1e-6;
    double worst = 0;
    size_t worst_i = 0;
    for (size_t i = 0; i < n; i++) {
        double keep = x[i];
        x[i] = keep + h;
        double lp = f(ctx);
        x[i] = keep - h;
        double lm = f(ctx);
        x[i] = keep;
        double num = (lp - lm) / (2 * h), err = fabs(num - grad[i]) / fmax(1.0, fabs(num));
        if (err > worst) worst = err, worst_i = i;
    }
    ck_assert_msg(worst < 1e-6, "%s: gradient %zu off by %.3g (relative)", what, worst_i, worst);
}

/* runs a suite in Check's default (fork) mode; returns the process exit status */
static inline int tu_run_suite(Suite *s) {
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}

#endif
