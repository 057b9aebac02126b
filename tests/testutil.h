/*
 * testutil.h: small helpers shared by the Check suites: run a shell command capturing its
 * exit status, stdout and stderr; make a scratch directory; read a file. Header-only.
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
