/*
 * run.h: the settings of one `lcgbench run`, training (train.c) and the evaluation ladder
 * (eval.c) over a model-step backend (model/backend.h). The harness owns all policy
 * (defaults, validation, files); the model and kernels below it only compute. Sequences,
 * data files, presets and CSVs have their own headers (sequence.h, data.h, preset.h, csv.h).
 */
#ifndef LCG_RUN_H
#define LCG_RUN_H

#include <signal.h>
#include <stdint.h>

#include "../model/backend.h"
#include "../model/checkpoint.h"
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
    int freeze_token0;   /* --freeze-token0: the reference's padding_idx = 0 (backend.h) */
    int len, vary;       /* training lengths: uniform in [len - vary, len + vary] */
    int max_len;         /* ladder: (len + vary) * 2^k up to max_len */
    int n_rungs;         /* explicit --eval-lens, else 0 */
    int rungs[LCG_MAX_RUNGS];
    int eval_samples;    /* test samples per rung, at most */
    long eval_tokens;    /* and at most eval_tokens / len of them (0 = no budget) ... */
    int eval_min;        /* ... but never fewer than this (0 = 1) */
    const char *out;     /* CSV path */
    const char *layers_out; /* optional long-format CSV of the per-layer diagnostics */
    const char *save;    /* checkpoint written after training */
    const char *load;    /* checkpoint to evaluate instead of training */
    const char *resume;  /* checkpoint to continue training from (--resume) */
    const char *ckpt;    /* where interruptions, --checkpoint-every and a non-finite step write
                            the resumable checkpoint: --save, else --resume, else derived */
    long ckpt_every;     /* 0 = only on interruption / non-finite values */
    long stop_at;        /* --stop-at: pause after this step of the --steps schedule, keeping the
                            resumable checkpoint (0 = train to the end); no part of the run's id */
    int auto_resume;     /* sweep cells: continue from cfg->ckpt when it holds this very run */
    const char *data;    /* reference-format data directory instead of the generator */
    int data_min, data_max; /* --data: the train split's shortest and longest sample (0: not read) */
    int threads;         /* 0 = OpenMP default */
    const char *backend; /* the model-step backend (model/backend.h), --device: "cpu" or "cuda" */
    int precision;       /* LCG_PREC_* (--precision; the CPU's is fp32) */
    char gpu[128];       /* the backend's device name once created ("" on the CPU), for the CSV */
    /* validation during training (--val-every; 0 = none): every val_every steps the val_lens
     * are scored on val_samples samples each; the monitor (metric LCG_MON_* at length mon_len)
     * picks the best checkpoint, which --select best (select_best) evaluates too */
    long val_every;
    int n_val_lens, val_lens[LCG_MAX_RUNGS];
    int val_samples;
    int select_best;
    int mon_metric, mon_len;
    const char *log_csv; /* --log-csv: the training curve (step, loss, lr, grad norm, tok/s, scores) */
    int bleu;            /* --bleu: BLEU of greedy generations per rung (on for sort) */
    int bleu_max;        /* --bleu-max: BLEU only at test lengths <= this (0: every length) */
    int last_max;        /* --last-max: with --select best, the last checkpoint tested only at
                          * lengths <= this (0: every length); the best one at every length */
    long log_every;      /* 0 = automatic */
    int quiet;
} lcg_run_cfg;

enum { LCG_MON_EXACT = 0, LCG_MON_TOKEN, LCG_MON_BLEU, LCG_MON_LOSS }; /* loss: lower is better */
extern const char *const lcg_monitor_names[4]; /* "exact", "token", "bleu", "loss" */

/* one evaluated rung */
typedef struct {
    int len;
    double factor;
    int samples;
    long exact, tokens, tokens_ok;
    double loss;         /* mean teacher-forced loss per supervised token */
    int has_bleu;        /* bleu computed (cfg->bleu, a source->target task) */
    double bleu;         /* corpus BLEU-4 of the greedy generations, in [0, 1] */
    double seconds;
    /* per layer, means over the query rows of the supervised positions, every head */
    double attn_entropy[LCG_MAX_LAYERS], attn_support[LCG_MAX_LAYERS], attn_max[LCG_MAX_LAYERS];
    /* relevant-key mass (a task with answer_pos, a backend that shows its attention rows):
     * per layer, the attention weight on the step's answer positions, averaged over the
     * answer rows (supervised steps that have answer positions) of every sample, for the
     * head with the largest such mean (mass_best, that head mass_head) and averaged over the
     * heads (mass_mean); mass_rows answer rows (0: not measured) */
    long mass_rows;
    double mass_best[LCG_MAX_LAYERS], mass_mean[LCG_MAX_LAYERS];
    int mass_head[LCG_MAX_LAYERS];
    /* representational collapse: the mean cosine similarity over pairs of samples of their
     * final-layer representations (the LM head's input) at their last answer row; collapse_n
     * samples (< 2: not measured) */
    int collapse_n;
    double collapse;
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
    /* a validation due at `step` that a signal cut short: the resumed run does it first, and
     * writes its curve row with this step's loss, gradient norm and tokens/s */
    int val_pending;
    double loss, norm, tok_s;
} lcg_train_state;
#define LCG_TRAIN_STATE_BYTES 88
#define LCG_TRAIN_STATE_BYTES_V2 56  /* before val_pending: resumed as if no validation were due */
#define LCG_TRAIN_STATE_BYTES_OLD 48 /* before `seconds`: still resumed, with the time unknown */
/* whether n bytes can be a training state of any version */
static inline int train_state_size_ok(size_t n) {
    return n == LCG_TRAIN_STATE_BYTES || n == LCG_TRAIN_STATE_BYTES_V2 || n == LCG_TRAIN_STATE_BYTES_OLD;
}
void train_state_pack(const lcg_train_state *st, unsigned char out[LCG_TRAIN_STATE_BYTES]);
/* 0, or -1 with a message if the bytes are not a training state */
int train_state_unpack(lcg_train_state *st, const unsigned char *in, size_t n, char *err, size_t err_len);

typedef struct {
    double train_loss;   /* mean loss over the last 10% of steps (NaN if no training) */
    double train_seconds;
    double train_tok_s;  /* non-pad tokens per second */
    long steps_done;
    int paused;          /* cfg->stop_at reached: the checkpoint is kept, nothing to evaluate */
    lcg_train_state state; /* at the end of training */
    /* validation (cfg->val_every): the best checkpoint by the monitor, strictly better than
     * every earlier one (a host copy of its parameters, lcg_free'd by train_result_free) */
    int has_best;
    long best_step;
    double best_score;
    float *best_params;
} lcg_train_result;
void train_result_free(lcg_train_result *r);
/* where the best checkpoint of the resumable checkpoint ckpt is kept: ckpt + ".best" */
void train_best_path(char *out, size_t n, const char *ckpt);
/* writes r's best checkpoint (if any) beside ckpt, atomically; 0, or -1 with err */
int train_save_best(lcg_backend *b, const lcg_train_result *r, const char *ckpt, const char *note, char *err,
                    size_t err_len);

/* the finished test rungs of a run, kept beside its resumable checkpoint (eval_progress.c):
 * path = ckpt + ".rungs"; load fills res[set][i] and done[set][i] for the rungs of lens the file
 * holds for this run (note) at this training step (0 found if it is absent or another run's);
 * save rewrites it atomically with every done rung (0, or -1 with err) */
void eval_progress_path(char *out, size_t n, const char *ckpt);
int eval_progress_load(const char *path, const char *note, long step, const int *lens, int n_lens,
                       lcg_rung_result res[2][LCG_MAX_RUNGS], int done[2][LCG_MAX_RUNGS]);
int eval_progress_save(const char *path, const char *note, long step, int n_lens,
                       lcg_rung_result res[2][LCG_MAX_RUNGS], int done[2][LCG_MAX_RUNGS], char *err, size_t err_len);

/* SIGINT/SIGTERM set this; training and evaluation stop at the next step / sample */
extern volatile sig_atomic_t lcg_stop_signal;
/* installs the handler (once per process); a second signal of the same kind kills at once */
void lcg_catch_stop_signals(void);

/* ---- training / evaluation --------------------------------------------------------------- */
/* trains the model of backend b cfg->steps steps (from `resume`'s state if not NULL: its
 * parameters must already be in b). Returns 0 when done; on SIGINT/SIGTERM writes a resumable checkpoint to cfg->ckpt,
 * prints one line saying so and returns the signal number. At cfg->stop_at (or past it, when
 * resumed there) it does the same but returns 0 with res->paused set. A non-finite loss, gradient or
 * activation writes the last good state to cfg->ckpt and exits 1 with one line naming the
 * layer and step. */
int train_run(lcg_backend *b, lcg_train_result *res, const lcg_run_cfg *cfg, const char *note,
              const lcg_checkpoint *resume);
/* the model of cfg (initialized from cfg->seed) on cfg->backend ("cpu" if NULL), with the
 * run's AdamW settings; lcg_backend_destroy it */
lcg_backend *train_backend_create(const lcg_run_cfg *cfg);
/* writes b's model (and, with with_optimizer, its AdamW state) with training state st to path
 * as a checkpoint; 0, or -1 with err */
int train_checkpoint(lcg_backend *b, const lcg_train_state *st, int with_optimizer, const char *path,
                     const char *note, char *err, size_t err_len);
/* whether the rungs score BLEU: asked for, and a source->target task */
int lcg_run_bleu(const lcg_run_cfg *cfg);
/* ladder of lengths to evaluate; returns the count */
int eval_ladder(const lcg_run_cfg *cfg, int *lens);
/* how many of the ladder's n lengths (ascending) the last checkpoint is tested at beside the best
 * one: those <= --last-max (all without it) */
int eval_last_rungs(const lcg_run_cfg *cfg, const int *lens, int n);
/* evaluates one length; returns 0, or -1 if lcg_stop_signal cut it short (res is then invalid) */
int eval_rung(lcg_rung_result *res, lcg_backend *b, const lcg_run_cfg *cfg, int len);
/* the same for validation: cfg->val_samples samples of the stream ("val", len), never the test
 * samples; the factor is the test rung's */
int eval_rung_val(lcg_rung_result *res, lcg_backend *b, const lcg_run_cfg *cfg, int len);
/* test samples at length len: eval_samples, capped by the token budget (not below eval_min) */
int eval_rung_samples(const lcg_run_cfg *cfg, int len);
/* the test samples of a rung, in order (stream "test", len); arrays of S * max size,
 * S = eval_rung_samples */
void eval_make_set(const lcg_run_cfg *cfg, int len, int *src, int *n_src, int *trg, int *n_trg);
/* S samples of the stream (stream, len) (eval_make_set: "test") */
void eval_make_stream(const lcg_run_cfg *cfg, int len, const char *stream, int S, int *src, int *n_src, int *trg,
                      int *n_trg);

typedef struct {
    int exact, tokens, ok; /* tokens = supervised positions (target + EOS), ok = argmax hits */
    double loss;
    long diag_rows;        /* attention diagnostics (see lcg_eval_diag) */
    double diag[LCG_MAX_LAYERS][3];
} lcg_sample_result;
/* one sample through backend b (see eval.c for why one teacher-forced pass suffices) */
void eval_sample(lcg_sample_result *r, lcg_backend *b, const lcg_task_cfg *task, const int *src, int n_src,
                 const int *trg, int n_trg);
/* Wilson score interval (95%) for k successes of n */
void wilson95(long k, long n, double *lo, double *hi);

/* the CSV's task_params cell: the task's "name=value;..." then, when on, the model options
 * that have no column of their own (";freeze-token0=1"), so a default run's cell is unchanged */
void run_task_params_str(const lcg_run_cfg *cfg, char *out, size_t n);
/* canonical "flag=value;..." text of every setting that determines the trained model (keys
 * are flag names; stored in checkpoints and hashed into run_id) */
void run_cfg_string(const lcg_run_cfg *cfg, char *out, size_t n);
uint64_t run_cfg_id(const lcg_run_cfg *cfg);
/* may run run_id write its training curve (--log-csv) at path? 0 when the file is absent, empty,
 * a header alone or that run's own curve; -1 (and why in err) when it holds anything else, which
 * a run never overwrites */
int lcg_curve_check(const char *path, uint64_t run_id, char *err, size_t n_err);
/* the command that continues this run from its checkpoint ckpt and writes the rows (and the
 * file) the uninterrupted run would have: --resume plus every evaluation and output setting the
 * checkpoint's note does not carry */
void run_resume_command(const lcg_run_cfg *cfg, const char *ckpt, char *out, size_t n);

#endif
