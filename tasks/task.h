/*
 * task.h: the task registry. A task is a deterministic generator of (source, target) samples
 * of data tokens, seeded by PCG32, plus the facts the harness needs to turn samples into
 * model sequences in the reference's layout:
 *
 *   source->target (kind LCG_TASK_SRC_TRG):
 *                    input  = BOS src SEP trg        (SEP omitted when uses_sep == 0)
 *                    target = src SEP trg EOS, shifted by one; loss on the trg + EOS part
 *   token classification (kind LCG_TASK_TOKEN_CLS, count and nback):
 *                    input  = BOS src EOS, one label per src token (trg has len(src) labels,
 *                    aligned, not shifted); loss on the src positions. Labels are output
 *                    classes 0..n_labels-1 of the same LM head, which has
 *                    max(vocabulary, n_labels) outputs, so labels beyond the token vocabulary
 *                    (count's repetition index) are representable.
 *
 * Data tokens are 0..M; the special tokens follow the reference tokenizer: pad = M+1,
 * bos = M+2, eos = M+3, mask = M+4, sep = M+5, vocabulary M+6.
 *
 * Adding a task = a generator file and one entry in registry.c. Tasks know nothing of models.
 * A task whose answers sit at known source positions declares them (answer_pos); the
 * evaluation then reports the attention mass on those positions (relevant-key mass).
 */
#ifndef LCG_TASK_H
#define LCG_TASK_H

#include <stddef.h>

#include "../kernels/util.h"

#define LCG_TASK_MAX_PARAMS 8

typedef struct {
    const char *flag; /* CLI flag without "--", also the CSV key */
    double def, min, max;
    int is_int;
    const char *help;
    int omit_default; /* left out of lcg_task_params_str at its default: an option added later,
                         so the runs before it keep their task_params text and run ids */
} lcg_task_param;

struct lcg_task;

typedef struct {
    const struct lcg_task *task;
    double p[LCG_TASK_MAX_PARAMS]; /* values, in the task's param order */
    void *state;                   /* per-run state made by task->prepare (or NULL) */
} lcg_task_cfg;

enum { LCG_TASK_SRC_TRG = 0, LCG_TASK_TOKEN_CLS };

typedef struct lcg_task {
    const char *name;
    const char *help;
    int n_params;
    lcg_task_param params[LCG_TASK_MAX_PARAMS];
    int kind;            /* LCG_TASK_SRC_TRG or LCG_TASK_TOKEN_CLS */
    int uses_sep;        /* SEP between source and target */
    double gen_mult;     /* reference generation cap: floor(len(BOS src SEP) * gen_mult) */
    int def_len, def_vary; /* reference training length: uniform [len - vary, len + vary] */
    int cpu_len, cpu_vary; /* the quick CPU default of `lcgbench run` */
    /* largest data token id M */
    int (*max_token)(const lcg_task_cfg *cfg);
    /* upper bounds of len(src), len(trg) for a sample of length `len` */
    void (*max_sizes)(const lcg_task_cfg *cfg, int len, int *max_src, int *max_trg);
    /* "" if a task with this config can make samples for all lengths >= min_len, else a
     * one-line reason naming the parameter and the bound */
    const char *(*validate)(const lcg_task_cfg *cfg, int min_len);
    /* one sample of nominal length `len`; writes src/trg and their lengths */
    void (*generate)(const lcg_task_cfg *cfg, pcg32 *rng, int len, int *src, int *n_src,
                     int *trg, int *n_trg);
    /* token classification only: number of label classes */
    int (*n_labels)(const lcg_task_cfg *cfg);
    /* optional: per-run state drawn from the seed before any sample (e.g. mqmtar's key/value
     * vocabulary), kept in cfg->state; release frees it. NULL when the task has none. */
    void (*prepare)(lcg_task_cfg *cfg, uint64_t seed);
    void (*release)(lcg_task_cfg *cfg);
    /* optional: the state of one split, for a task that draws it per split (mqmtar with
     * split-vocab 1, as the reference's generator does): replaces cfg->state (a copy of the
     * run's cfg) by its own, drawn from the seed, the split's stream name and index, and returns
     * 1; returns 0 and leaves cfg as it is when the run's state serves every split */
    int (*prepare_split)(lcg_task_cfg *cfg, uint64_t seed, const char *stream, uint64_t index);
    /* optional ("where is the answer"): the source indices (0-based in src, ascending, distinct)
     * holding what supervised step t must read, into pos (room for n_src); returns their
     * count, 0 when step t has none (a separator, EOS). Steps: t = 0 .. n_trg for
     * source->target (t = n_trg predicts EOS), t = 0 .. n_src - 1 (the labels) for token
     * classification. NULL: the task declares no answer positions (count). */
    int (*answer_pos)(const lcg_task_cfg *cfg, const int *src, int n_src, const int *trg, int n_trg, int t,
                      int *pos);
} lcg_task;

const lcg_task *lcg_task_find(const char *name);
const lcg_task *lcg_task_at(int i);
void lcg_task_defaults(lcg_task_cfg *cfg, const lcg_task *task);
/* "name=value;..." of the task's parameters (for the CSV and checkpoints) */
void lcg_task_params_str(const lcg_task_cfg *cfg, char *out, size_t n);

/* calls task->prepare / release when the task has them */
void lcg_task_prepare(lcg_task_cfg *cfg, uint64_t seed);
void lcg_task_release(lcg_task_cfg *cfg);
/* the task as the split (stream, index) draws its samples: "train" 0, ("val", len), ("test",
 * len), the names of the split's sample stream. *split is a copy of the prepared run cfg, with
 * the split's own state where the task draws one per split (prepare_split), else sharing the
 * run's. lcg_task_split_release frees what lcg_task_split drew (and nothing else). */
void lcg_task_split(lcg_task_cfg *split, const lcg_task_cfg *cfg, uint64_t seed, const char *stream, uint64_t index);
void lcg_task_split_release(lcg_task_cfg *split, const lcg_task_cfg *cfg);
/* width of the model's output head: the token vocabulary, or more for wide label sets */
int lcg_task_out_vocab(const lcg_task_cfg *cfg);

/* special token ids derived from the largest data token M */
typedef struct {
    int pad, bos, eos, mask, sep, vocab;
} lcg_tokens;
lcg_tokens lcg_task_tokens(const lcg_task_cfg *cfg);

#endif
