/*
 * eval_progress.c: the test rungs a run has finished, kept beside its resumable checkpoint
 * (CKPT.rungs) so that a run stopped during a long evaluation (a time-boxed slice on a lent GPU,
 * a sort cell whose BLEU rungs take minutes each) resumes after the last finished rung instead of
 * evaluating the whole ladder again. A rung's result depends on the model and the rung alone (its
 * samples come from the rung's own seeded stream), so the resumed run writes the rows an
 * uninterrupted one writes; their `sec` is the earlier process's.
 *
 * The file: "LCGRUNG1", the record size (sizeof lcg_rung_result: a file of another build is
 * ignored), the training step, the run's configuration string (a file of another run is ignored),
 * then per finished rung its set (0 last checkpoint, 1 best) and result. It is written
 * atomically beside the checkpoint when a signal cuts the evaluation (never during a normal run,
 * so a SIGKILL leaves nothing behind), read by the resumed run, and removed once the rows are in
 * the CSV; a run that trains again removes an earlier one. Not kept: a rung cut halfway (evaluated
 * again from its first sample).
 */
#include "run.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char magic[8] = {'L', 'C', 'G', 'R', 'U', 'N', 'G', '1'};

void eval_progress_path(char *out, size_t n, const char *ckpt) { snprintf(out, n, "%s.rungs", ckpt); }

typedef struct {
    int32_t set, pad;
    lcg_rung_result r;
} progress_rec;

int eval_progress_load(const char *path, const char *note, long step, const int *lens, int n_lens,
                       lcg_rung_result res[2][LCG_MAX_RUNGS], int done[2][LCG_MAX_RUNGS]) {
    memset(done, 0, sizeof(int) * 2 * LCG_MAX_RUNGS);
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    char m[8];
    uint32_t rec = 0, note_len = 0, n = 0;
    int64_t st = -1;
    int found = 0;
    size_t want = strlen(note);
    char *got = NULL;
    if (fread(m, 1, 8, f) != 8 || memcmp(m, magic, 8) != 0 || fread(&rec, 4, 1, f) != 1 || rec != sizeof(progress_rec) ||
        fread(&st, 8, 1, f) != 1 || st != step || fread(&note_len, 4, 1, f) != 1 || note_len != want)
        goto out;
    got = LCG_NEW(char, want + 1);
    if (fread(got, 1, want, f) != want || memcmp(got, note, want) != 0 || fread(&n, 4, 1, f) != 1 ||
        n > 2 * LCG_MAX_RUNGS)
        goto out;
    for (uint32_t k = 0; k < n; k++) {
        progress_rec p;
        if (fread(&p, sizeof p, 1, f) != 1 || p.set < 0 || p.set > 1) {
            memset(done, 0, sizeof(int) * 2 * LCG_MAX_RUNGS); /* a damaged file: nothing from it */
            found = 0;
            goto out;
        }
        for (int i = 0; i < n_lens; i++)
            if (lens[i] == p.r.len && !done[p.set][i]) {
                res[p.set][i] = p.r;
                done[p.set][i] = 1;
                found++;
                break;
            }
    }
out:
    lcg_free(got);
    fclose(f);
    return found;
}

int eval_progress_save(const char *path, const char *note, long step, int n_lens,
                       lcg_rung_result res[2][LCG_MAX_RUNGS], int done[2][LCG_MAX_RUNGS], char *err, size_t err_len) {
    uint32_t rec = sizeof(progress_rec), note_len = (uint32_t)strlen(note), n = 0;
    for (int s = 0; s < 2; s++)
        for (int i = 0; i < n_lens; i++) n += done[s][i] != 0;
    size_t bytes = 8 + 4 + 8 + 4 + note_len + 4 + (size_t)n * sizeof(progress_rec), o = 0;
    unsigned char *buf = LCG_NEW(unsigned char, bytes);
    int64_t st = step;
#define PUT(p, k) (memcpy(buf + o, (p), (k)), o += (k))
    PUT(magic, 8);
    PUT(&rec, 4);
    PUT(&st, 8);
    PUT(&note_len, 4);
    PUT(note, note_len);
    PUT(&n, 4);
    for (int s = 0; s < 2; s++)
        for (int i = 0; i < n_lens; i++)
            if (done[s][i]) {
                progress_rec p;
                memset(&p, 0, sizeof p); /* no uninitialized padding bytes in the file */
                p.set = s;
                p.r = res[s][i];
                PUT(&p, sizeof p);
            }
#undef PUT
    int rc = lcg_write_file_atomic(path, buf, bytes, err, err_len);
    lcg_free(buf);
    return rc;
}
