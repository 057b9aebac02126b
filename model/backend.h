/*
 * backend.h: the model-step seam. The training loop and the evaluation (harness/) drive a
 * model only through this interface and never touch its buffers, so the model and its
 * optimizer state may live where the host cannot read them (a GPU). A backend owns the model's
 * parameters, gradients, activations and AdamW state; everything crossing the seam is a host
 * array: batches of token ids in, losses, norms and logits out, and the parameters and
 * optimizer state in the checkpoint's layout (float32, the tensors of model.h in enum order),
 * so checkpoints are interchangeable between backends.
 *
 * Implementations: "cpu" (backend_cpu.c: model.c, optim.c, infer.c and prefill.c, bitwise
 * today's results) and, in a build with CUDA=1 (-DLCG_CUDA), "cuda" (cuda/backend_cuda.c: the
 * device model of cuda/gpu_model.h). Another adds an lcg_backend_ops and one line in backend.c's
 * table. Not here: which backend a run uses (the harness asks by name), files,
 * schedules, policy.
 */
#ifndef LCG_BACKEND_H
#define LCG_BACKEND_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include "model.h"

typedef struct lcg_backend lcg_backend;

/* arithmetic of the matmuls (a GPU's choice; the CPU computes in fp32 only) */
enum { LCG_PREC_FP32 = 0, LCG_PREC_TF32, LCG_PREC_BF16 };
extern const char *const lcg_precision_names[3]; /* "fp32", "tf32", "bf16" */

/* AdamW's constants (the learning rate comes with each step), the precision, and the
 * reference's padding_idx = 0 (freeze_token0: data token 0's embedding row is zero at init and its
 * gradient is zeroed after every backward, before the norm that clipping uses; AdamW then never
 * moves it: zero moments, zero update, and weight decay scales 0) */
typedef struct {
    float beta1, beta2, eps, weight_decay;
    int precision; /* LCG_PREC_* */
    int freeze_token0;
} lcg_backend_opts;

/* the test hook LCG_TEST_NAN's faults (see harness/train.c): huge q/k weights of the last
 * layer (scores overflow), an infinite LM-head weight, a NaN gradient in the last layer's FFN */
enum { LCG_FAULT_ATTN = 1, LCG_FAULT_LOGITS, LCG_FAULT_GRAD };

/* attention diagnostics of one evaluated sequence, summed over every head's query row of the
 * supervised positions: per layer entropy (nats), support size (weights > 0), maximum weight */
typedef struct {
    long rows;                     /* query rows summed, per layer */
    double sum[LCG_MAX_LAYERS][3];
} lcg_eval_diag;

/* the relevant keys of one sequence's rows of interest, for a backend that cannot show whole
 * attention rows (batch keys, the alternative to attn_row): CSR-like lists in host memory, owned
 * by the caller. Rows may share one list (equal off and len): sort's rows of one token. */
typedef struct {
    int n_rows;       /* rows of interest */
    const int *row;   /* [n_rows] their query positions, ascending, each >= the input's logits_from */
    const int *off;   /* [n_rows] row r's keys are key[off[r] .. off[r] + len[r] - 1], ... */
    const int *len;   /* [n_rows] ... ascending, each in [0, row[r]] ... */
    const int *key;   /* ... (len[r] >= 1) */
    double *mass;     /* [n_rows, L, H] out: the sum of row r's attention weights over its keys in
                       * layer l, head h (in double; NaN where the row's weights are) */
} lcg_eval_keys;

/* a batch of sequences to evaluate (teacher-forced, one pass each) */
typedef struct {
    int n_seqs;
    int cap;  /* the longest input plus one */
    /* writes sequence s's input tokens to tok (room for cap - 1) and the first position whose
     * logits are wanted to *logits_from; returns the input length */
    int (*input)(void *ctx, int s, int *tok, int *logits_from);
    /* the next-token logits [V] of sequence s at position pos >= logits_from, in position
     * order within a sequence; different sequences may be delivered concurrently */
    void (*logits)(void *ctx, int s, int pos, const float *logits);
    void *ctx;
    /* optional greedy continuation (NULL: none), after the input's logits: greedy_start returns
     * how many input positions n0 to keep (1 <= n0 <= the input length) and in *tok the first
     * token to append at position n0, or -1 for none; the backend then appends tokens one at a
     * time on its KV cache (never re-running the prefix), handing each position's next-token
     * logits to greedy_next, which returns the token to append next or -1 to stop. cap covers
     * every position appended. The diagnostics are the input's alone. */
    int (*greedy_start)(void *ctx, int s, int *tok);
    int (*greedy_next)(void *ctx, int s, int pos, const float *logits);
    lcg_eval_diag *diag;                /* n_seqs: each sequence's attention diagnostics */
    /* optional (NULL: none), on the input's positions >= logits_from only: every attention row
     * (layer l, head h, query row i: the keys j[k], ascending, with weights p[k] > 0, k < n; or,
     * j == NULL, the whole row p[0 .. n-1]), called concurrently, once per (s, l, h, i); and
     * the final-layer representation x [C] (the LM head's input) of each such position. A
     * backend that cannot show whole rows (the GPU's) never calls attn_row; it asks for keys
     * instead. */
    void (*attn_row)(void *ctx, int s, int l, int h, int i, const int *j, const float *p, int n);
    void (*hidden)(void *ctx, int s, int pos, const float *x);
    /* optional (NULL, or NULL returned: none): sequence s's rows of interest and their keys,
     * asked for once per sequence before its pass and valid until the batch's eval returns. A
     * backend either calls attn_row for every row (the CPU's, which ignores keys) or fills each
     * keys' mass (the GPU's); a caller hands both and reads the mass it gets either way. */
    const lcg_eval_keys *(*keys)(void *ctx, int s);
    const volatile sig_atomic_t *stop;  /* once set, the sequences not yet started are skipped */
} lcg_eval_batch;

typedef struct {
    const char *name;
    /* 1 if this backend can run here; else 0 with the reason in why[n] (NULL: always) */
    int (*available)(char *why, size_t n);
    /* 1 if this backend implements cfg's normalizer and encoding; else 0 with one line saying
     * which is not (NULL: every one). Checked before any work. */
    int (*supports)(const lcg_config *cfg, char *why, size_t n);
    /* a model of cfg; on a failure it cannot recover from (no device, out of device memory)
     * prints one line and exits 1 */
    lcg_backend *(*create)(const lcg_config *cfg, uint64_t seed, const lcg_backend_opts *opts);
    void (*destroy)(lcg_backend *b);
    /* forward over tok/targets/mask [B, T] and, when the mean loss is finite, the backward
     * (the gradients of the step, not accumulated); returns the mean loss */
    double (*forward_backward)(lcg_backend *b, const int *tok, const int *targets, const unsigned char *mask,
                               int B, int T);
    /* clips the gradients to global norm clip (0 = off) and takes one AdamW step at lr; returns
     * the norm before clipping. A non-finite norm leaves the parameters untouched. */
    double (*optimizer_step)(lcg_backend *b, double clip, float lr);
    /* parameters [n_params] and AdamW state (m, v [n_params], t steps) to/from host arrays */
    void (*get_params)(lcg_backend *b, float *params);
    void (*set_params)(lcg_backend *b, const float *params);
    void (*get_optimizer)(lcg_backend *b, float *m, float *v, long *t);
    void (*set_optimizer)(lcg_backend *b, const float *m, const float *v, long t);
    /* after a non-finite loss: the first activation (forward order) holding a NaN or Inf,
     * described in what ("attention weights (from the scores) of layer 1"); its layer, or -1 */
    int (*find_nonfinite)(lcg_backend *b, char *what, size_t n);
    /* after a non-finite norm: the first gradient tensor holding one ("the gradient of w_down
     * of layer 1"); 1, or 0 if every gradient is finite */
    int (*find_nonfinite_grad)(lcg_backend *b, char *what, size_t n);
    /* LCG_FAULT_*: attn and logits poison the parameters now, grad the next step's gradients
     * (after its backward); fault_undo restores the parameters poisoned */
    void (*fault)(lcg_backend *b, int kind);
    void (*fault_undo)(lcg_backend *b);
    /* evaluates every sequence of e; 0, or -1 when e->stop cut it short (then the sequences
     * skipped have no results) */
    int (*eval)(lcg_backend *b, const lcg_eval_batch *e);
    /* bytes evaluating sequences of up to cap - 1 tokens needs on threads host threads (for
     * the memory check before a run) */
    size_t (*eval_bytes)(const lcg_config *cfg, int cap, int threads);
} lcg_backend_ops;

struct lcg_backend {
    const lcg_backend_ops *ops;
    lcg_config cfg;
    size_t n_params;
    char device[128]; /* the device's name ("NVIDIA H200"); "" on the CPU */
    void *impl;  /* the implementation's state */
};

/* the backend named name ("cpu"), or NULL */
const lcg_backend_ops *lcg_backend_find(const char *name);
const lcg_backend_ops *lcg_backend_at(int i); /* NULL past the last */
/* a model initialized from seed as model_init does (the same parameters on every backend) */
lcg_backend *lcg_backend_create(const char *name, const lcg_config *cfg, uint64_t seed, const lcg_backend_opts *opts);
void lcg_backend_destroy(lcg_backend *b);

/* the CPU backend's model (tests and benchmarks that look inside); NULL for any other */
lcg_model *lcg_backend_cpu_model(lcg_backend *b);
extern const lcg_backend_ops lcg_backend_cpu;
extern const lcg_backend_ops lcg_backend_cuda; /* defined only in a CUDA=1 build */

#endif
