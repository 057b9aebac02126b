/*
 * flags.c: the one flag engine of the commands (a table of flags parsed strictly, the values
 * parsed and range-checked, the help listing) and the one usage-error helper. It knows no
 * command's flags; the commands build their tables (cmd_run.c, cmd_gen.c). Not here: which
 * flags exist, defaults, cross-flag checks.
 */
#define _POSIX_C_SOURCE 200809L
#include "cli.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

_Noreturn void cli_usage_error(const cli_ctx *cx, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "lcgbench %s: %s%s", cx->cmd, cx->where, cx->where[0] ? ": " : "");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, " (see 'lcgbench %s --help')\n", cx->cmd);
    va_end(ap);
#ifdef LCG_FUZZ
    if (cx->fuzz_jmp) longjmp(*cx->fuzz_jmp, 2);
#endif
    exit(2);
}

void cli_ctx_release(cli_ctx *cx) {
    if (cx->owned && cx->release) cx->release(cx->owned);
    cx->owned = NULL;
    cx->release = NULL;
    cx->where[0] = '\0';
}

const char *cli_parse_value(const cli_flag *f, const char *s, void *dst) {
    static char why[200];
    char *end;
    errno = 0;
    switch (f->kind) {
    case FL_INT:
    case FL_LONG: {
        long long v = strtoll(s, &end, 10);
        if (end == s || *end) return "expected an integer";
        if (errno == ERANGE || v < f->min || v > f->max) {
            snprintf(why, sizeof why, "must be in [%.0f, %.0f]", f->min, f->max);
            return why;
        }
        if (f->kind == FL_INT) *(int *)dst = (int)v;
        else *(long *)dst = (long)v;
        return NULL;
    }
    case FL_U64: {
        if (strchr(s, '-')) return "must be a non-negative integer";
        unsigned long long v = strtoull(s, &end, 10);
        if (end == s || *end) return "expected a non-negative integer";
        if (errno == ERANGE) return "is out of range for a 64-bit seed";
        *(uint64_t *)dst = v;
        return NULL;
    }
    case FL_DOUBLE:
    case FL_TASKP: {
        double v = strtod(s, &end);
        if (end == s || *end || isnan(v)) return "expected a number";
        if (errno == ERANGE || v < f->min || v > f->max) {
            snprintf(why, sizeof why, "must be in [%.10g, %.10g]", f->min, f->max);
            return why;
        }
        if (f->kind == FL_TASKP && f->meta && strcmp(f->meta, "INT") == 0 && v != floor(v))
            return "expected an integer";
        *(double *)dst = v;
        return NULL;
    }
    case FL_STR:
        if (!*s) return "must not be empty";
        *(const char **)dst = s;
        return NULL;
    case FL_BOOL: /* a checkpoint's note or a preset: 0 or 1 (the command line takes no value) */
        if (strcmp(s, "0") != 0 && strcmp(s, "1") != 0) return "expected 0 or 1";
        *(int *)dst = s[0] == '1';
        return NULL;
    default: return "cannot take a value";
    }
}

cli_flag *cli_find_flag(cli_flag *fl, int n, const char *name, size_t len) {
    for (int i = 0; i < n; i++)
        if (strlen(fl[i].name) == len && strncmp(fl[i].name, name, len) == 0) return &fl[i];
    return NULL;
}

void cli_parse_args(const cli_ctx *cx, cli_flag *fl, int n_fl, int argc, char **argv) {
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (strncmp(a, "--", 2) != 0) cli_usage_error(cx, "unexpected argument '%s'", a);
        const char *eq = strchr(a, '=');
        size_t len = eq ? (size_t)(eq - a - 2) : strlen(a + 2);
        cli_flag *f = cli_find_flag(fl, n_fl, a + 2, len);
        if (!f) cli_usage_error(cx, "unknown flag '--%.*s'", (int)len, a + 2);
        f->set = 1; /* given twice: the last wins, as with getopt and argparse (scripts append overrides) */
        if (f->kind == FL_BOOL) {
            if (eq) cli_usage_error(cx, "--%s takes no value", f->name);
            *(int *)f->ptr = 1;
            continue;
        }
        const char *val = eq ? eq + 1 : (i + 1 < argc ? argv[++i] : NULL);
        if (!val) cli_usage_error(cx, "--%s needs a value", f->name);
        const char *why = cli_parse_value(f, val, f->ptr);
        if (why) cli_usage_error(cx, "--%s %s, got '%s'", f->name, why, val);
    }
}

const char *cli_scan_task(int argc, char **argv, const char *def) {
    for (int i = 0; i < argc; i++) {
        if (strncmp(argv[i], "--task=", 7) == 0) def = argv[i] + 7;
        else if (strcmp(argv[i], "--task") == 0 && i + 1 < argc) def = argv[i + 1];
    }
    return def;
}

int cli_add_task_flags(cli_flag *fl, int n, lcg_task_cfg *task) {
    const lcg_task *t = task->task;
    for (int i = 0; i < t->n_params; i++) {
        const lcg_task_param *p = &t->params[i];
        fl[n++] = (cli_flag){p->flag, FL_TASKP, &task->p[i], p->min, p->max, p->is_int ? "INT" : "X", p->help, 1, 0};
    }
    return n;
}

void cli_print_flags(const cli_flag *fl, int n) {
    for (int i = 0; i < n; i++) {
        char left[64];
        snprintf(left, sizeof left, "--%s%s%s", fl[i].name, fl[i].kind == FL_BOOL ? "" : " ",
                 fl[i].kind == FL_BOOL ? "" : fl[i].meta && strcmp(fl[i].meta, "INT") ? fl[i].meta : "N");
        printf("  %-24s %s\n", left, fl[i].help);
    }
}
