/*
 * fuzz_cli.c: libFuzzer harness of the command line. The input is split at '\n' into argv
 * (at most 64 words) and handed to lcgbench's own dispatch (cli_main, cli/ built with
 * -DLCG_FUZZ): flag parsing, number parsing, the checkpoint note of --load and
 * --resume, --eval-lens, task parameters and every cross-flag check. A usage error returns
 * here through the context's fuzz_jmp instead of exiting; `run` and `gen` stop after validation, so
 * nothing is trained or written. Paths under /dev, /proc and /sys are skipped (reading
 * /dev/zero as a data file never ends, which is not a parser bug).
 *
 * Does not cover: training, evaluation, file output (the other harnesses and the test suite);
 * the sweep, merge, table and regress commands (skipped: they exit on errors without releasing what
 * they hold; sweep's grid parser has its own harness, fuzz_grid.c).
 */
#include "../../cli/cli.h"

#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    if (!freopen("/dev/null", "w", stdout)) return 0; /* help texts */
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size > 4096) return 0;
    char *buf = malloc(size + 1);
    if (!buf) return 0;
    memcpy(buf, data, size);
    buf[size] = '\0';
    if (memchr(data, '\0', size) || strstr(buf, "/dev") || strstr(buf, "/proc") || strstr(buf, "/sys") ||
        strncmp(buf, "sweep", 5) == 0 || strncmp(buf, "table", 5) == 0 || strncmp(buf, "regress", 7) == 0 ||
        strncmp(buf, "merge", 5) == 0) {
        free(buf);
        return 0;
    }
    /* static: what is used after setjmp must not live in a register longjmp may clobber
     * (gcc's -Wclobbered at -march=x86-64-v2) */
    static char *argv[66];
    static int argc;
    argv[0] = "lcgbench", argc = 1;
    for (char *p = buf; argc < 65;) {
        argv[argc++] = p;
        char *nl = strchr(p, '\n');
        if (!nl) break;
        *nl = '\0';
        p = nl + 1;
    }
    argv[argc] = NULL;
    jmp_buf jmp;
    cli_ctx cx = {.cmd = "lcgbench", .fuzz_jmp = &jmp};
    if (setjmp(jmp) == 0) cli_main(&cx, argc, argv);
    cli_ctx_release(&cx); /* after a usage error, what the run being parsed held */
    free(buf);
    return 0;
}
