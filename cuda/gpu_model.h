/*
 * gpu_model.h: the transformer of model/model.h trained on a CUDA GPU, behind a plain C API
 * that mirrors model.h and optim.h: forward (mean loss), zero_grad, backward (accumulating),
 * clipping + AdamW, and copies of the parameters, gradients and AdamW state to and from the host
 * in the CPU model's exact layout (one float block, tensors in lcg_param enum order), so
 * checkpoints move freely between the two.
 *
 * Training (one step per call as a CUDA graph: gpu_model_train_step), the evaluation of whole
 * sequences (gpu_model_eval, the prefill's arithmetic) and its continuation a few rows or one token at
 * a time on the same cache (gpu_model_extend: greedy decoding), or a row for each of several
 * sequences' caches at once (gpu_model_decode). One model per process (the
 * cuBLAS handle and stream are the kernels' module state). Errors from CUDA or cuBLAS print one
 * line and exit 1; gpu_model_create returns NULL with a message when no GPU can be used.
 */
#ifndef LCG_GPU_MODEL_H
#define LCG_GPU_MODEL_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

#include "../model/model.h"
#include "gpu_kernels.h"

typedef struct gpu_model gpu_model;

/* a model of config cfg with the parameters params_host (n = lcg_param_sizes floats, the CPU
 * layout); NULL and a one-line reason in err[n] if the config is invalid or no GPU is usable */
gpu_model *gpu_model_create(const lcg_config *cfg, const float *params_host, gpu_precision prec, char *err,
                            size_t err_len);
void gpu_model_destroy(gpu_model *m);
size_t gpu_model_n_params(const gpu_model *m);

/* forward over host tok[B,T]; with targets and mask, the mean loss over masked positions (else
 * 0). Tokens and targets outside [0, V): one-line error, exit 1. */
double gpu_model_forward(gpu_model *m, const int *tok, const int *targets, const unsigned char *mask, int B, int T);
void gpu_model_zero_grad(gpu_model *m);
/* gradient of the last forward's mean loss, accumulated into the gradients */
void gpu_model_backward(gpu_model *m);

/* one training step's device work: forward (mean loss returned), gradients zeroed, backward, and
 * the gradient norm that the next gpu_adamw_step then uses without computing or waiting for it;
 * as a CUDA graph per T (captured on first use), unless LCG_GPU_GRAPH=0. Same arithmetic, same
 * bits as gpu_model_forward + zero_grad + backward. Needs targets and mask. */
double gpu_model_train_step(gpu_model *m, const int *tok, const int *targets, const unsigned char *mask, int B, int T);

/* the reference's padding_idx = 0 (on != 0): zeroes embedding row 0 now and, after every
 * backward, its gradient, before the norm that clipping uses, so AdamW never moves it */
void gpu_model_freeze_token0(gpu_model *m, int on);

/* AdamW as optim.h's adamw_init: zeroes the moments and the step count */
void gpu_adamw_init(gpu_model *m, float beta1, float beta2, float eps, float weight_decay);
/* grad_clip(clip) then adamw_update(lr), on the device; returns the gradient norm before clipping.
 * A non-finite norm updates nothing (the step count included), as the CPU's training loop. */
double gpu_adamw_step(gpu_model *m, float lr, double clip);

/* after a forward whose loss is not finite: model_find_nonfinite's answer (the first activation,
 * in forward order, holding a NaN or Inf, described in `what`; its layer, L for the logits, 0 for
 * the embeddings; -1 if all are finite), from host copies of the device activations */
int gpu_model_find_nonfinite(const gpu_model *m, char *what, size_t n);

/* what gpu_model_eval can show of the mechanism (model/backend.h's lcg_eval_keys and hidden),
 * host memory; either part may be absent (n_rows 0, hidden NULL) */
typedef struct {
    /* rows of interest row[n_rows] (ascending, < n), row r's keys key[off[r] .. off[r] + len[r] - 1]
     * (each in [0, row[r]]); mass [n_rows, L, H] receives each one's summed attention weights */
    int n_rows;
    const int *row, *off, *len, *key;
    double *mass;
    /* the final norm's output (the LM head's input) [C] of each position from .. n-1, in order */
    void (*hidden)(void *ctx, int pos, const float *x);
    void *ctx;
} gpu_eval_mech;

/* evaluation of one sequence tok[n] (host), teacher-forced, as decoder_prefill from an empty cache:
 * the logits of positions from .. n-1 into logits_host [(n - from), V], and per layer the
 * attention diagnostics of those positions (every head's row: entropy, support, max weight)
 * summed into diag[l * 3 + k] in row, then head order (written, not accumulated); mech (NULL:
 * none) the relevant-key mass and final representations. Device memory O(n) (gk_eval_attention's
 * blocks of score rows; plus the key lists), kept for the next call while n fits. Tokens outside
 * [0, V), rows or keys out of order or range: one-line error, exit 1. */
void gpu_model_eval(gpu_model *m, const int *tok, int n, int from, float *logits_host, double *diag /* L*3 */,
                    const gpu_eval_mech *mech);
/* The same pass as an extension of the sequence in the cache: rows n_old .. n_new-1 (tokens tok
 * [n_new - n_old], host) against every layer's q/k/v of rows 0 .. n_old-1 as the last calls left
 * them (n_old <= the rows computed so far; fewer truncates), each row at its true position (RoPE,
 * ALiBi/NAPE, length scales). The logits of rows max(from, n_old) .. n_new-1 into logits_host,
 * and with diag (L*3, NULL: none) and mech (rows of interest in [n_old, n_new)) as gpu_model_eval
 * on those rows. gpu_model_eval(tok, n) is gpu_model_extend(tok, 0, n); greedy decoding is then
 * gpu_model_extend(&t, pos, pos + 1, pos, ...) per token. Positions past the capacity need
 * gpu_model_eval_reserve first (with n_old > 0 they are an error: one line, exit 1). */
void gpu_model_extend(gpu_model *m, const int *tok, int n_old, int n_new, int from, float *logits_host,
                      double *diag /* L*3 or NULL */, const gpu_eval_mech *mech);
/* room for sequences of up to cap positions (evaluation and its extensions) in `slots` caches
 * (default 1); a larger cap or another number of slots reallocates, emptying every cache */
void gpu_model_eval_reserve(gpu_model *m, int cap, int slots);
/* the cache that gpu_model_eval and gpu_model_extend work on from now (0 .. slots-1; default 0) */
void gpu_model_eval_slot(gpu_model *m, int slot);
/* greedy decoding of A sequences at once: sequence a appends tok[a] at position pos[a] of cache
 * slot[a] (distinct slots; 1 <= pos[a] <= its rows, fewer truncates; pos[a] < the capacity), each
 * row against its own cache's rows 0 .. pos[a] (decode attention: a block per row and head); the
 * next-token logits of the A rows into logits_host [A, V]. The arithmetic of gpu_model_extend by one
 * row up to float rounding (other kernels for the scores and p.V). Bad input: one line, exit 1. */
void gpu_model_decode(gpu_model *m, int A, const int *slot, const int *pos, const int *tok, float *logits_host);
/* device bytes gpu_model_eval needs for sequences of up to n tokens (one cache) */
size_t gpu_model_eval_bytes(const lcg_config *cfg, int n);

/* host copies, n_params floats each, in the CPU layout */
void gpu_model_get_params(const gpu_model *m, float *host);
void gpu_model_set_params(gpu_model *m, const float *host);
void gpu_model_get_grads(const gpu_model *m, float *host);
/* gradient element i (CPU layout) := v (the fault-injection hook of the training loop's tests) */
void gpu_model_set_grad(gpu_model *m, size_t i, float v);
void gpu_adamw_get_state(const gpu_model *m, float *m_host, float *v_host, long *t);
void gpu_adamw_set_state(gpu_model *m, const float *m_host, const float *v_host, long t);

#ifdef __cplusplus
}
#endif
#endif
