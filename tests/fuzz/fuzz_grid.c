/*
 * fuzz_grid.c: libFuzzer harness of the sweep grid-file parser (read_grid in cli/grid.c,
 * included here unchanged). The input is written to a grid file in a scratch directory
 * (/dev/shm when there is one) and parsed; when it parses, every section's lists and args are
 * read back. grid.c is compiled with strdup, free, fopen and fclose routed through this
 * file, and its usage errors (cli_usage_error, which exits 2 in lcgbench) return here, and whatever the
 * parser held (strings, the open file) is released, so leaks are still detected on the
 * parser's own success paths and descriptors never run out.
 *
 * Does not cover: running the cells (cli_run_cell is a stub here; fuzz_cli checks run flags).
 */
#define _POSIX_C_SOURCE 200809L
#include "../../cli/cli.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static jmp_buf g_jmp;
static void *g_live[1 << 14];
static int g_n_live;
static FILE *g_file;

static void track(void *p) {
    if (!p) return;
    if (g_n_live == (int)(sizeof g_live / sizeof *g_live)) abort();
    g_live[g_n_live++] = p;
}
static char *fuzz_strdup(const char *s) {
    char *d = strdup(s);
    track(d);
    return d;
}
static void fuzz_free(void *p) {
    for (int i = 0; i < g_n_live; i++)
        if (g_live[i] == p) {
            g_live[i] = g_live[--g_n_live];
            break;
        }
    free(p);
}
static FILE *fuzz_fopen(const char *path, const char *mode) { return g_file = fopen(path, mode); }
static int fuzz_fclose(FILE *f) {
    g_file = NULL;
    return fclose(f);
}

/* what grid.c needs besides the parser: a usage error returns to the harness */
_Noreturn void cli_usage_error(const cli_ctx *cx, const char *fmt, ...) {
    (void)cx, (void)fmt;
    longjmp(g_jmp, 2);
}
int cli_run_cell(cli_ctx *cx, int argc, char **argv, int execute, lcg_run_info *info) {
    (void)cx, (void)argc, (void)argv, (void)execute, (void)info;
    return 1;
}

#define strdup fuzz_strdup
#define free fuzz_free
#define fopen fuzz_fopen
#define fclose fuzz_fclose
#include "../../cli/grid.c"
#undef strdup
#undef free
#undef fopen
#undef fclose

static char g_path[128];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size > 1 << 16) return 0;
    if (!g_path[0]) {
        char dir[64];
        snprintf(dir, sizeof dir, "%s/lcgfuzz_grid.XXXXXX", access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp");
        if (!mkdtemp(dir)) abort();
        snprintf(g_path, sizeof g_path, "%s/grid.txt", dir);
    }
    FILE *f = fopen(g_path, "wb");
    if (!f || (size && fwrite(data, 1, size, f) != size) || fclose(f) != 0) abort();
    static sw_section sec[64];
    memset(sec, 0, sizeof sec);
    g_n_live = 0;
    if (setjmp(g_jmp) == 0) {
        cli_ctx cx = {.cmd = "sweep"};
        int n = read_grid(&cx, g_path, sec, 64);
        if (n < 1 || n > 64) abort();
        size_t total = 0;
        for (int s = 0; s < n; s++) {
            for (int d = 0; d < 4; d++)
                for (int i = 0; i < sec[s].n[d]; i++) total += strlen(sec[s].list[d][i]) + 1;
            for (int i = 0; i < sec[s].n_args; i++) total += strlen(sec[s].args[i]) + 1;
        }
        if (total > 64 * size + 64) abort(); /* no value appears from nowhere */
        for (int s = 0; s < n; s++) free_section(&sec[s]);
    }
    /* after a grid error: what read_grid held */
    if (g_file) {
        fclose(g_file);
        g_file = NULL;
    }
    while (g_n_live) fuzz_free(g_live[g_n_live - 1]);
    return 0;
}
