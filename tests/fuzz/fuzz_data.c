/*
 * fuzz_data.c: libFuzzer harness of the reference-format reader (harness/data.c). Input: one
 * byte picking the task (its default parameters), then the .src text, a NUL, the .trg text.
 * They are written to <dir>/train.src and .trg (/dev/shm when there is one) and read back with data_check_split (every
 * line through data_next's checks) and, when that accepts them, two epochs of training
 * batches (batch_fill_data, data_next_cyclic). A malformed file must be an error message
 * naming file and line; any crash or sanitizer report is a bug.
 */
#define _POSIX_C_SOURCE 200809L
#include "../../harness/run.h"
#include "../../harness/data.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char g_dir[64];

static void put(const char *name, const uint8_t *p, size_t n) {
    char path[128];
    snprintf(path, sizeof path, "%s/%s", g_dir, name);
    FILE *f = fopen(path, "wb");
    if (!f) abort();
    if (n && fwrite(p, 1, n, f) != n) abort();
    fclose(f);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1 || size > 1 << 16) return 0;
    if (!g_dir[0]) {
        snprintf(g_dir, sizeof g_dir, "%s/lcgfuzz_data.XXXXXX", access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp");
        if (!mkdtemp(g_dir)) abort();
    }
    int n_tasks = 0;
    while (lcg_task_at(n_tasks)) n_tasks++;
    const lcg_task *t = lcg_task_at(data[0] % n_tasks);
    const uint8_t *src = data + 1, *sep = memchr(src, 0, size - 1);
    size_t n_src = sep ? (size_t)(sep - src) : size - 1;
    const uint8_t *trg = sep ? sep + 1 : src + n_src;
    size_t n_trg = sep ? size - 1 - n_src - 1 : 0;
    put("train.src", src, n_src);
    put("train.trg", trg, n_trg);

    static lcg_task_cfg prepared[64]; /* each task's default parameters, prepared once */
    lcg_task_cfg tc;
    int ti = data[0] % n_tasks;
    if (!prepared[ti].task) {
        lcg_task_defaults(&prepared[ti], t);
        lcg_task_prepare(&prepared[ti], 1);
    }
    tc = prepared[ti];
    char err[768] = "";
    long count = 0;
    int ok = data_check_split(g_dir, "train", &tc, &count, err, sizeof err) == 0;
    if (!ok && !strstr(err, g_dir)) abort(); /* an error names the file */
    if (ok && count > 0 && count < 64 && size < 8192) {
        lcg_data_reader r;
        lcg_batch b = {0};
        if (data_open(&r, g_dir, "train", err, sizeof err) != 0) abort(); /* it just read them */
        for (int step = 0; step < 3; step++)
            if (batch_fill_data(&b, &tc, &r, (int)count, err, sizeof err) != 0) abort(); /* checked above */
        batch_free(&b);
        data_close(&r);
    }
    if (strchr(err, '\n')) abort();
    return 0;
}
