/*
 * checkpoint.c: see checkpoint.h. The whole file is built in memory, checksummed and written
 * in one atomic replace; loading reads it whole and parses with bounds checks, so a truncated
 * or corrupted file is an error message, never a crash.
 */
#define _POSIX_C_SOURCE 200809L
#include "checkpoint.h"
#include "../kernels/util.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

typedef struct {
    unsigned char *p;
    size_t n, cap;
} buf;

static void put(buf *b, const void *data, size_t n) {
    if (b->n + n > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->n + n) cap *= 2;
        unsigned char *q = realloc(b->p, cap);
        if (!q) lcg_die("out of memory building a checkpoint (%zu bytes)", cap);
        b->p = q;
        b->cap = cap;
    }
    if (n) memcpy(b->p + b->n, data, n); /* data may be NULL when n is 0 (no state) */
    b->n += n;
}
static void put_u32(buf *b, uint32_t v) { put(b, &v, 4); }
static void put_u64(buf *b, uint64_t v) { put(b, &v, 8); }

int checkpoint_check_target(const char *path, char *err, size_t err_len) {
    char target[4096], magic[8];
    if (lcg_out_target(path, target, sizeof target, err, err_len) != 0) return -1;
    FILE *f = fopen(target, "rb");
    if (f) {
        size_t got = fread(magic, 1, 8, f);
        fclose(f);
        if (got != 8 || memcmp(magic, LCG_CKPT_MAGIC, 8) != 0) {
            snprintf(err, err_len, "'%s' exists and is not a lcgbench checkpoint: not overwriting it", path);
            return -1;
        }
    }
    return lcg_check_writable(path, err, err_len);
}

int checkpoint_write(const char *path, const lcg_config *c, size_t n_params, const float *params,
                     const float *opt_m, const float *opt_v, long step, const char *note, const void *state,
                     size_t state_len, char *err, size_t err_len) {
    if (state_len > LCG_CKPT_MAX_STATE) lcg_die("checkpoint state of %zu bytes is too large", state_len);
    buf b = {0};
    put(&b, LCG_CKPT_MAGIC, 8);
    put_u32(&b, LCG_CKPT_VERSION);
    int32_t f[8] = {c->V, c->L, c->C, c->H, c->D, c->F, c->norm, c->pos};
    for (int i = 0; i < 8; i++) put_u32(&b, (uint32_t)f[i]);
    put(&b, &c->alpha, 4);
    put_u64(&b, (uint64_t)step);
    size_t note_len = note ? strlen(note) : 0;
    put_u32(&b, (uint32_t)note_len);
    put(&b, note ? note : "", note_len);
    put_u64(&b, (uint64_t)n_params);
    put(&b, params, sizeof(float) * n_params);
    put_u32(&b, opt_m ? 1u : 0u);
    if (opt_m) {
        put(&b, opt_m, sizeof(float) * n_params);
        put(&b, opt_v, sizeof(float) * n_params);
    }
    put_u32(&b, (uint32_t)state_len);
    put(&b, state, state_len);
    put_u64(&b, lcg_fnv1a(LCG_FNV_INIT, b.p, b.n));
    int rc = lcg_write_file_atomic(path, b.p, b.n, err, err_len);
    free(b.p);
    return rc;
}

int checkpoint_save(const char *path, const lcg_model *m, const lcg_adamw *opt, long step,
                    const char *note, const void *state, size_t state_len, char *err, size_t err_len) {
    return checkpoint_write(path, &m->cfg, m->n_params, m->params_mem, opt ? opt->m : NULL, opt ? opt->v : NULL, step,
                            note, state, state_len, err, err_len);
}

typedef struct {
    const unsigned char *p;
    size_t n, off;
} reader;

static int get(reader *r, void *out, size_t n) {
    if (r->n - r->off < n) return -1;
    memcpy(out, r->p + r->off, n);
    r->off += n;
    return 0;
}

int checkpoint_load(const char *path, lcg_checkpoint *ck, char *err, size_t err_len) {
    memset(ck, 0, sizeof *ck);
    struct stat st;
    if (stat(path, &st) == 0 && !S_ISREG(st.st_mode)) { /* a directory, /dev/zero, a FIFO */
        snprintf(err, err_len, "checkpoint '%s': not a regular file", path);
        return -1;
    }
    size_t n;
    char *data = lcg_read_file(path, &n);
    if (!data) {
        snprintf(err, err_len, "cannot read checkpoint '%s': %s", path, strerror(errno));
        return -1;
    }
    int rc = checkpoint_parse(data, n, path, ck, err, err_len);
    free(data);
    return rc;
}

int checkpoint_parse(const void *bytes, size_t n, const char *path, lcg_checkpoint *ck, char *err,
                     size_t err_len) {
    memset(ck, 0, sizeof *ck);
    const unsigned char *data = bytes;
    reader r = {data, n, 0};
    char magic[8];
    uint32_t version, f[8], note_len, has_opt;
    uint64_t step, n_params, sum;
    const char *why = NULL;
    if (get(&r, magic, 8) || memcmp(magic, LCG_CKPT_MAGIC, 8)) why = "not an lcgbench checkpoint (bad magic)";
    else if (get(&r, &version, 4)) why = "truncated";
    else if (version > LCG_CKPT_VERSION) why = "written by a newer lcgbench (version too new)";
    else if (version < 1) why = "unknown format version";
    else if (n < 20 || (memcpy(&sum, data + n - 8, 8), sum != lcg_fnv1a(LCG_FNV_INIT, data, n - 8)))
        why = "checksum mismatch (corrupted or truncated)";
    if (!why) {
        r.n = n - 8; /* the checksum is not payload */
        for (int i = 0; i < 8 && !why; i++)
            if (get(&r, &f[i], 4)) why = "truncated";
        if (!why && (get(&r, &ck->cfg.alpha, 4) || get(&r, &step, 8) || get(&r, &note_len, 4)))
            why = "truncated";
    }
    if (!why) {
        ck->cfg.V = (int)f[0], ck->cfg.L = (int)f[1], ck->cfg.C = (int)f[2], ck->cfg.H = (int)f[3];
        ck->cfg.D = (int)f[4], ck->cfg.F = (int)f[5], ck->cfg.norm = (int)f[6], ck->cfg.pos = (int)f[7];
        ck->step = (long)step;
        const char *bad = lcg_config_check(&ck->cfg);
        if (bad[0]) why = "invalid model config";
        else if (note_len > r.n - r.off) why = "truncated";
    }
    size_t sizes[LCG_N_PARAM_TENSORS];
    if (!why) {
        ck->note = malloc((size_t)note_len + 1);
        if (!ck->note) lcg_die("out of memory");
        get(&r, ck->note, note_len);
        ck->note[note_len] = '\0';
        if (get(&r, &n_params, 8)) why = "truncated";
        else if (n_params != lcg_param_sizes(&ck->cfg, sizes)) why = "parameter count does not match its config";
        else if ((r.n - r.off) / sizeof(float) < n_params) why = "truncated";
    }
    if (!why) {
        ck->n_params = (size_t)n_params;
        ck->params = LCG_NEW(float, ck->n_params);
        get(&r, ck->params, sizeof(float) * ck->n_params);
        if (get(&r, &has_opt, 4)) why = "truncated";
        else if (has_opt > 1) why = "bad optimizer-state flag";
        else if (has_opt) {
            if ((r.n - r.off) / sizeof(float) < 2 * n_params) why = "truncated";
            else {
                ck->opt_m = LCG_NEW(float, ck->n_params);
                ck->opt_v = LCG_NEW(float, ck->n_params);
                get(&r, ck->opt_m, sizeof(float) * ck->n_params);
                get(&r, ck->opt_v, sizeof(float) * ck->n_params);
            }
        }
        uint32_t state_len = 0;
        if (!why && version >= 2) {
            if (get(&r, &state_len, 4)) why = "truncated";
            else if (state_len > LCG_CKPT_MAX_STATE) why = "training state too large";
            else if (get(&r, ck->state, state_len)) why = "truncated";
            else ck->state_len = state_len;
        }
        if (!why && r.off != r.n) why = "trailing bytes after the training state";
    }
    if (why) {
        snprintf(err, err_len, "checkpoint '%s': %s", path, why);
        checkpoint_free(ck);
        return -1;
    }
    return 0;
}

void checkpoint_free(lcg_checkpoint *ck) {
    free(ck->note);
    lcg_free(ck->params);
    lcg_free(ck->opt_m);
    lcg_free(ck->opt_v);
    memset(ck, 0, sizeof *ck);
}
