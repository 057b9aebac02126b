/*
 * fuzz_checkpoint.c: libFuzzer harness of the checkpoint parser (model/checkpoint.c) and the
 * training state inside it (harness/train.c). The first input byte picks the mode: odd, the
 * harness rewrites the trailing FNV-1a checksum to match, so mutations reach the fields behind
 * it instead of all stopping at the checksum; even, the bytes are parsed as they are. Any
 * crash, sanitizer report or leak is a bug: every malformed file must be an error message.
 */
#include "../../harness/run.h"
#include "../../model/checkpoint.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    int fix = data[0] & 1;
    size_t n = size - 1;
    unsigned char *b = malloc(n ? n : 1);
    if (!b) return 0;
    memcpy(b, data + 1, n);
    if (fix && n >= 8) {
        uint64_t sum = lcg_fnv1a(LCG_FNV_INIT, b, n - 8);
        memcpy(b + n - 8, &sum, 8);
    }
    static lcg_checkpoint ck; /* 4 KiB of state: not on the stack */
    char err[512];
    if (checkpoint_parse(b, n, "fuzz", &ck, err, sizeof err) == 0) {
        lcg_train_state st;
        if (ck.state_len) train_state_unpack(&st, ck.state, ck.state_len, err, sizeof err);
        float s = 0;
        for (size_t i = 0; i < ck.n_params; i++) s += ck.params[i]; /* every parameter readable */
        if (ck.opt_m)
            for (size_t i = 0; i < ck.n_params; i++) s += ck.opt_m[i] + ck.opt_v[i];
        (void)s;
        checkpoint_free(&ck);
    } else if (strchr(err, '\n')) {
        abort(); /* messages are one line */
    }
    free(b);
    return 0;
}
