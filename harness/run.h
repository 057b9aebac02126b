/*
 * run.h: the settings of one `lcgbench run` and the pieces of the harness that use them:
 * sequence building, training, the evaluation ladder and CSV output. The harness owns all
 * policy (defaults, validation, files); the model and kernels below it only compute.
 */
#ifndef LCG_RUN_H
#define LCG_RUN_H

#include <signal.h>
#include <stdint.h>

#include "../model/checkpoint.h"
#include "../model/model.h"
#include "../tasks/task.h"

#define LCG_VERSION "0.1.0"
#define LCG_MAX_RUNGS 32

typedef struct {
    lcg_task_cfg task;
    lcg_config model;    /* V is derived from the task */
    uint64_t seed;
    long steps;
    int batch;
    double lr;
    long warmup;
    double weight_decay;
    double clip;
    int len, vary;       /* training lengths: uniform in [len - vary, len + vary] */
    int max_len;         /* ladder: (len + vary) * 2^k up to max_len */
    int n_rungs;         /* explicit --eval-lens, else 0 */
    int rungs[LCG_MAX_RUNGS];
    int eval_samples;    /* test samples per rung, at most */
    long eval_tokens;    /* and at most eval_tokens / len of them (0 = no budget) ... */
    int eval_min;        /* ... but never fewer than this (0 = 1) */
    const char *out;     /* CSV path */
    const char *save;    /* checkpoint written after training */
    const char *load;    /* checkpoint to evaluate instead of training */
    const char *resume;  /* checkpoint to continue training from (--resume) */
    const char *ckpt;    /* where interruptions, --checkpoint-every and a non-finite step write
                            the resumable checkpoint: --save, else --resume, else derived */
    long ckpt_every;     /* 0 = only on interruption / non-finite values */
    int auto_resume;     /* sweep cells: continue from cfg->ckpt when it holds this very run */
    const char *data;    /* reference-format data directory instead of the generator */
    int threads;         /* 0 = OpenMP default */
    long log_every;      /* 0 = automatic */
    int quiet;
} lcg_run_cfg;

/* one evaluated rung */
typedef struct {
    int len;
    double factor;
    int samples;
    long exact, tokens, tokens_ok;
    double loss;         /* mean teacher-forced loss per supervised token */
    double seconds;
    /* per layer, means over the query rows of the supervised positions, every head */
    double attn_entropy[LCG_MAX_LAYERS], attn_support[LCG_MAX_LAYERS], attn_max[LCG_MAX_LAYERS];
} lcg_rung_result;

/* what a checkpoint carries besides the model and AdamW so an interrupted run resumes bit
 * for bit: the data stream (the generator's PCG32; a data file's position is step * batch)
 * and the running sums the CSV reports */
typedef struct {
    long step;           /* steps done */
    pcg32 rng;           /* the "train" stream, positioned for step + 1 */
    double tail_loss;    /* sum of the losses of the last 10% of steps so far */
    long tail_n;
    long tokens;         /* non-pad training tokens so far */
    double seconds;      /* training wall time so far, summed over resumed processes (0: unknown) */
} lcg_train_state;
#define LCG_TRAIN_STATE_BYTES 56
#define LCG_TRAIN_STATE_BYTES_OLD 48 /* before `seconds`: still resumed, with the time unknown */
void train_state_pack(const lcg_train_state *st, unsigned char out[LCG_TRAIN_STATE_BYTES]);
/* 0, or -1 with a message if the bytes are not a training state */
int train_state_unpack(lcg_train_state *st, const unsigned char *in, size_t n, char *err, size_t err_len);

typedef struct {
    double train_loss;   /* mean loss over the last 10% of steps (NaN if no training) */
    double train_seconds;
    double train_tok_s;  /* non-pad tokens per second */
    long steps_done;
    lcg_train_state state; /* at the end of training */
} lcg_train_result;

/* SIGINT/SIGTERM set this; training and evaluation stop at the next step / sample */
extern volatile sig_atomic_t lcg_stop_signal;
/* installs the handler (once per process); a second signal of the same kind kills at once */
void lcg_catch_stop_signals(void);

/* ---- sequences (harness/sequence.c) ------------------------------------------------------ */
typedef struct {
    int *tok;            /* B, T  model input (pad-filled) */
    int *tgt;            /* B, T  next token, or the token's label */
    unsigned char *mask; /* B, T  1 on supervised positions */
    int B, T, cap;       /* cap: allocated B*T */
    long n_real;         /* non-pad input tokens */
} lcg_batch;

/* ---- reference-format data files (harness/data.c) -----------------------------------------
 * A split is <dir>/<name>.src and <name>.trg, one sample per line, space-separated integer
 * ids without special tokens (the reference generator's format); test splits are named
 * test_<i>_<len>. Every malformed line is a one-line error naming the file and line. */
typedef struct lcg_data_reader {
    char path_src[4096], path_trg[4096];
    FILE *fs, *ft;
    char *line_s, *line_t;
    size_t cap_s, cap_t;
    int *src, *trg;      /* the current sample, grown as needed */
    int cap_src, cap_trg;
    long line;           /* 1-based number of the current line */
    long samples;        /* samples read in this pass */
} lcg_data_reader;

int data_open(lcg_data_reader *r, const char *dir, const char *split, char *err, size_t err_len);
/* the next sample (pointers valid until the next call): 1, 0 at the end, -1 on error */
int data_next(lcg_data_reader *r, const lcg_task_cfg *task, const int **src, int *n_src,
              const int **trg, int *n_trg, char *err, size_t err_len);
/* as data_next, starting over at the end (training epochs); 0 or -1 (an empty split is an error) */
int data_next_cyclic(lcg_data_reader *r, const lcg_task_cfg *task, const int **src, int *n_src,
                     const int **trg, int *n_trg, char *err, size_t err_len);
void data_close(lcg_data_reader *r);
/* reads a whole split, checking every line; *count = its samples. 0 or -1 with err */
int data_check_split(const char *dir, const char *split, const lcg_task_cfg *task, long *count, char *err,
                     size_t err_len);
/* the test splits test_<idx>_<len> of dir, sorted by index; returns the count (at most max)
 * or -1 with err */
int data_test_splits(const char *dir, int *idx, int *lens, int max, char *err, size_t err_len);
/* writes `count` samples of split `name` in format "ref" (.src/.trg) or "tsv" (<name>.tsv:
 * src<TAB>trg per line), drawn as lcgbench run draws them: lengths len +- vary as training
 * batches do, or with vary < 0 all of length len as the evaluation sets do */
int data_write_split(const char *dir, const char *name, const char *format, const lcg_task_cfg *task,
                     pcg32 *rng, long count, int len, int vary, char *err, size_t err_len);

/* a batch from a data file instead of the generator; 0 or -1 with err */
int batch_fill_data(lcg_batch *b, const lcg_task_cfg *task, lcg_data_reader *r, int B, char *err,
                    size_t err_len);

/* model input length of one sample (BOS src [SEP] trg, or BOS src EOS for token classification) */
int seq_input_len(const lcg_task_cfg *task, int n_src, int n_trg);
/* the largest input length a sample of nominal length len can give */
int seq_max_input(const lcg_task_cfg *task, int len);
/* fills one batch of fresh samples with lengths uniform in [len - vary, len + vary] */
void batch_fill(lcg_batch *b, const lcg_task_cfg *task, pcg32 *rng, int B, int len, int vary);
void batch_free(lcg_batch *b);

/* ---- training / evaluation --------------------------------------------------------------- */
/* trains cfg->steps steps (from `resume`'s state if not NULL: its parameters must already be
 * in m). Returns 0 when done; on SIGINT/SIGTERM writes a resumable checkpoint to cfg->ckpt,
 * prints one line saying so and returns the signal number. A non-finite loss, gradient or
 * activation writes the last good state to cfg->ckpt and exits 1 with one line naming the
 * layer and step. */
int train_run(lcg_model *m, lcg_train_result *res, const lcg_run_cfg *cfg, const char *note,
              const lcg_checkpoint *resume);
/* ladder of lengths to evaluate; returns the count */
int eval_ladder(const lcg_run_cfg *cfg, int *lens);
/* evaluates one length; returns 0, or -1 if lcg_stop_signal cut it short (res is then invalid) */
int eval_rung(lcg_rung_result *res, const lcg_model *m, const lcg_run_cfg *cfg, int len);
/* test samples at length len: eval_samples, capped by the token budget (not below eval_min) */
int eval_rung_samples(const lcg_run_cfg *cfg, int len);
/* the test samples of a rung, in order (stream "test", len); arrays of S * max size,
 * S = eval_rung_samples */
void eval_make_set(const lcg_run_cfg *cfg, int len, int *src, int *n_src, int *trg, int *n_trg);

typedef struct {
    int exact, tokens, ok; /* tokens = supervised positions (target + EOS), ok = argmax hits */
    double loss;
    long diag_rows;        /* attention diagnostics (see lcg_decoder) */
    double diag[LCG_MAX_LAYERS][3];
} lcg_sample_result;
struct lcg_decoder_s;
/* one sample through a decoder (see eval.c for why one teacher-forced pass suffices) */
void eval_sample(lcg_sample_result *r, struct lcg_decoder_s *dec, const lcg_task_cfg *task,
                 const int *src, int n_src, const int *trg, int n_trg);
/* Wilson score interval (95%) for k successes of n */
void wilson95(long k, long n, double *lo, double *hi);

/* ---- presets (harness/preset.c) --------------------------------------------------------- */
int lcg_preset_known(const char *name);
/* the k-th "flag=value;..." settings of preset `name` for `task` (the task's own, then
 * those of every task), or NULL after the last */
const char *lcg_preset_settings(const char *name, const char *task, int k);
const char *lcg_preset_names(void);

/* ---- CSV (harness/csv_out.c) ------------------------------------------------------------- */
/* appends one row per rung to cfg->out atomically; returns 0 or -1 with err */
int csv_append(const lcg_run_cfg *cfg, const lcg_train_result *tr, const lcg_rung_result *rungs,
               int n_rungs, char *err, size_t err_len);
/* before any work: cfg->out is a CSV of our schema (or absent) and can be replaced; stale temp
 * files of killed writers are removed. 0 or -1 with err */
int csv_preflight(const lcg_run_cfg *cfg, char *err, size_t err_len);
/* writes one record of n fields as csv_append does (quoted only where needed), '\n'-ended */
void csv_write_record(FILE *f, const char *const *fields, int n);
/* creates the directories above path (errors surface when the file is written) */
void csv_mkdirs_for(const char *path);
extern const char *const lcg_csv_columns[];
extern const int lcg_csv_n_columns;

/* a result CSV read back (harness/csv_read.c): rows of lcg_csv_n_columns string fields */
typedef struct {
    char ***rows;        /* n_rows, lcg_csv_n_columns */
    long n_rows;
    char *path;          /* for messages: "path:line" */
} lcg_csv;
/* loads path, checking it has our exact header; 0, or -1 with err (nothing to free) */
int csv_load(const char *path, lcg_csv *t, char *err, size_t err_len);
/* the index of a column (dies on an unknown name: a programming error) */
int csv_col(const char *name);
void csv_free_table(lcg_csv *t);
/* field col of row r as a finite number in [lo, hi] (the whole field, no blanks); 0, or -1
 * with "path:line: column 'name' is 'text', expected ..." in err */
int csv_num(const lcg_csv *t, long r, int col, double lo, double hi, double *out, char *err, size_t err_len);

/* ---- commands beyond run (harness/sweep.c, harness/table.c) ------------------------------- */
/* one `lcgbench run` given its flags (harness/main.c): parses and checks them, a usage error
 * exiting 2 as for `run` itself; fills the run id, the number of CSV rows it writes and the
 * output path; with `execute` also trains, evaluates and appends. 0, or 1 after a runtime error */
typedef struct {
    uint64_t run_id;
    int n_rows;          /* one per evaluated length: */
    int lens[LCG_MAX_RUNGS];
    char out[4096];
} lcg_run_info;
int lcg_run_flags(int argc, char **argv, int execute, lcg_run_info *info);
/* the context usage errors name, e.g. "cell 3 (copy softmax nape seed 1)"; "" for none */
void lcg_usage_context(const char *ctx);
int cmd_sweep(int argc, char **argv);
#ifdef LCG_FUZZ /* fuzzing builds: usage errors longjmp here instead of exiting */
#include <setjmp.h>
extern jmp_buf lcg_fuzz_jmp;
#endif
int cmd_table(int argc, char **argv);
int cmd_merge(int argc, char **argv);
int cmd_regress(int argc, char **argv);

/* canonical "flag=value;..." text of every setting that determines the trained model (keys
 * are flag names; stored in checkpoints and hashed into run_id) */
void run_cfg_string(const lcg_run_cfg *cfg, char *out, size_t n);
uint64_t run_cfg_id(const lcg_run_cfg *cfg);

#endif
