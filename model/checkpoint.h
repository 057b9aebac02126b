/*
 * checkpoint.h: save/load of the float model (config + parameters), optionally with the
 * AdamW state, and an opaque text note the harness uses to record the run's settings.
 *
 * Format v1, little-endian:
 *   "LCGBCKPT"  u32 version  u32 V,L,C,H,D,F,norm,pos  f32 alpha  u64 step
 *   u32 note_len  note bytes  u64 n_params  f32 params[n]  u32 has_opt  [f32 m[n] f32 v[n]]
 *   u64 FNV-1a of every byte before it
 * Written atomically (temp file, fsync, rename). Loading checks magic, version, sizes and the
 * checksum and reports the first problem in one line.
 */
#ifndef LCG_CHECKPOINT_H
#define LCG_CHECKPOINT_H

#include "model.h"
#include "optim.h"

#define LCG_CKPT_MAGIC "LCGBCKPT"
#define LCG_CKPT_VERSION 1u

/* returns 0, or -1 with a message in err */
int checkpoint_save(const char *path, const lcg_model *m, const lcg_adamw *opt, long step,
                    const char *note, char *err, size_t err_len);

typedef struct {
    lcg_config cfg;
    long step;
    char *note;      /* NUL-terminated, owned */
    size_t n_params;
    float *params;   /* n_params, owned */
    float *opt_m;    /* n_params or NULL */
    float *opt_v;
} lcg_checkpoint;

/* returns 0, or -1 with a message in err (nothing to free then) */
int checkpoint_load(const char *path, lcg_checkpoint *ck, char *err, size_t err_len);
void checkpoint_free(lcg_checkpoint *ck);

#endif
