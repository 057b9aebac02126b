/*
 * checkpoint.h: save/load of the float model (config + parameters), optionally with the
 * AdamW state, and an opaque text note the harness uses to record the run's settings.
 *
 * Format v2, little-endian:
 *   "LCGBCKPT"  u32 version  u32 V,L,C,H,D,F,norm,pos  f32 alpha  u64 step
 *   u32 note_len  note bytes  u64 n_params  f32 params[n]  u32 has_opt  [f32 m[n] f32 v[n]]
 *   u32 state_len  state bytes                                  (v2; absent in v1 files)
 *   u64 FNV-1a of every byte before it
 * The state is an opaque blob the harness uses to resume training bit for bit (the data
 * stream's position, running sums); v1 files load with an empty state.
 * Written atomically (temp file, fsync, rename). Loading checks magic, version, sizes and the
 * checksum and reports the first problem in one line; it never trusts a size field before
 * checking it against the bytes left.
 */
#ifndef LCG_CHECKPOINT_H
#define LCG_CHECKPOINT_H

#include "model.h"
#include "optim.h"

#define LCG_CKPT_MAGIC "LCGBCKPT"
#define LCG_CKPT_VERSION 2u
#define LCG_CKPT_MAX_STATE 4096

/* whether a checkpoint may be written to path: it must be writable (lcg_check_writable) and,
 * if a file is there already, be a checkpoint (never a user's results or data); 0 or -1 */
int checkpoint_check_target(const char *path, char *err, size_t err_len);
/* returns 0, or -1 with a message in err. The model's parameters [n_params] and, unless opt_m
 * is NULL, AdamW's moments, as host arrays (any backend's, in model.h's tensor order) */
int checkpoint_write(const char *path, const lcg_config *cfg, size_t n_params, const float *params,
                     const float *opt_m, const float *opt_v, long step, const char *note, const void *state,
                     size_t state_len, char *err, size_t err_len);
/* the same for the CPU's float model and optimizer (opt may be NULL) */
int checkpoint_save(const char *path, const lcg_model *m, const lcg_adamw *opt, long step,
                    const char *note, const void *state, size_t state_len, char *err, size_t err_len);

typedef struct {
    lcg_config cfg;
    long step;
    char *note;      /* NUL-terminated, owned */
    size_t n_params;
    float *params;   /* n_params, owned */
    float *opt_m;    /* n_params or NULL */
    float *opt_v;
    size_t state_len;           /* 0: none (v1 files, or written without) */
    unsigned char state[LCG_CKPT_MAX_STATE];
} lcg_checkpoint;

/* returns 0, or -1 with a message in err (nothing to free then) */
int checkpoint_load(const char *path, lcg_checkpoint *ck, char *err, size_t err_len);
/* the same on n bytes in memory (`name` is used in messages only) */
int checkpoint_parse(const void *data, size_t n, const char *name, lcg_checkpoint *ck, char *err,
                     size_t err_len);
void checkpoint_free(lcg_checkpoint *ck);

#endif
