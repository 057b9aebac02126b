/*
 * gpu_kernels.h: the CUDA kernels of the training step, forward/backward pairs mirroring
 * kernels/kernels.inc.h (float build), callable from plain C. Every pointer named d_* or
 * documented with a shape is DEVICE memory; sizes and scalars are host values. All launches go
 * to one stream (gk_set_stream); nothing here synchronizes except the gpu_* copy helpers.
 *
 * Conventions as the CPU kernels (outputs first, then saved buffers, inputs, sizes). Backwards
 * ACCUMULATE (+=) into parameter gradients, as the CPU's do; their activation gradients are
 * WRITTEN (the model hands them fresh buffers), except where the model chains them: rmsnorm's
 * dinp, the length scaling's da and (with acc_dinp) the matmul's dinp accumulate. Reductions run
 * in a fixed order (no atomics): same inputs, same GPU, same build => same bits.
 *
 * Not here: the model's buffer bookkeeping (gpu_model.cu), bf16.
 */
#ifndef LCG_GPU_KERNELS_H
#define LCG_GPU_KERNELS_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- device, memory, errors ---------------------------------------------------------------- */
/* 1 if a CUDA device can be used; else 0 with the reason in why[n] */
int gpu_device_usable(char *why, size_t n);
/* the device's name ("NVIDIA H200") */
const char *gpu_device_name(void);
void *gpu_malloc(size_t bytes);                             /* fatal (one line, exit 1) on failure */
void gpu_free(void *d);
void gpu_upload(void *d, const void *h, size_t bytes);      /* synchronous */
void gpu_download(void *h, const void *d, size_t bytes);    /* synchronous */
void gpu_memset0(void *d, size_t bytes);                    /* on the stream */
void *gpu_malloc_host(size_t bytes);                        /* pinned; fatal on failure */
void gpu_free_host(void *h);
void gpu_upload_async(void *d, const void *h, size_t bytes); /* on the stream (h: pinned, kept) */
void gpu_sync(void);                                        /* waits for the stream; fatal on error */
/* CUDA graphs: everything queued on the stream between begin and end (nothing may synchronize in
 * between) becomes one executable graph, replayed by gpu_graph_launch with the buffers and kernel
 * arguments it was captured with; handles are cudaGraphExec_t */
void *gpu_graph_capture_begin(void);
void *gpu_graph_capture_end(void);
void gpu_graph_launch(void *exec);
void gpu_graph_destroy(void *exec);

/* matmul precision: plain FP32 arithmetic (parity with the CPU), TF32 tensor cores, or bf16 inputs
 * to the weight matmuls (gk_matmul_*: operands rounded to bf16, FP32 accumulation and outputs;
 * every other product, the attention's, in TF32; parameters, activations and AdamW in FP32) */
typedef enum { GPU_FP32 = 0, GPU_TF32 = 1, GPU_BF16 = 2 } gpu_precision;
void gk_init(gpu_precision prec); /* creates the cuBLAS handle; idempotent, may change prec */
void gk_set_stream(void *stream); /* a cudaStream_t, or NULL for the default stream */

/* ---- kernels (float, device pointers) ------------------------------------------------------ */
void gk_encoder_forward(float *out /* N,C */, const int *tok /* N */, const float *emb /* V,C */,
                        int N, int C);
/* demb[v] += sum over the rows n with tok[n] = v, in row order: the rows grouped by token
 * (off[V+1], idx[N]: a stable counting sort of tok, built on the host by gk_token_csr) */
void gk_encoder_backward(float *demb /* V,C */, const float *dout /* N,C */, const int *off /* V+1 */,
                         const int *idx /* N */, int V, int C);
/* host: off[V+1], idx[N] of tok[N] (stable: rows of one token in increasing order) */
void gk_token_csr(int *off, int *idx, const int *tok, int N, int V);

void gk_rmsnorm_forward(float *out /* N,C */, float *rstd /* N */, const float *inp /* N,C */,
                        const float *w /* C */, int N, int C);
/* dinp += ..., dw += ...; part: scratch of gk_colsum_parts(N) * C doubles */
void gk_rmsnorm_backward(float *dinp /* N,C */, float *dw /* C */, double *part,
                         const float *dout /* N,C */, const float *inp /* N,C */, const float *w /* C */,
                         const float *rstd /* N */, int N, int C);
size_t gk_colsum_parts(int N); /* row chunks of the fixed-order column sums */

/* out = inp @ w (w input-major); backward: dinp = dout @ w^T (written; += if acc_dinp),
 * dw += inp^T @ dout */
void gk_matmul_forward(float *out /* N,OC */, const float *inp /* N,IC */, const float *w /* IC,OC */,
                       int N, int IC, int OC);
void gk_matmul_backward(float *dinp /* N,IC */, float *dw /* IC,OC */, const float *dout /* N,OC */,
                        const float *inp /* N,IC */, const float *w /* IC,OC */, int N, int IC, int OC,
                        int acc_dinp);
/* bf16: the operands' rounded copies live in one scratch, [w_elems] for a weight matrix and twice
 * [act_elems] for the activation operands; the backward needs N max(IC, OC) <= act_elems, the
 * forward runs in row chunks of what it holds. Reserve the training's sizes before capturing a
 * graph: growing moves the scratch and bumps gk_bf16_generation (graphs captured before hold the
 * old address). Without a reservation the forward reserves what it needs (not while capturing). */
void gk_bf16_reserve(size_t w_elems, size_t act_elems);
unsigned gk_bf16_generation(void);

void gk_geglu_forward(float *out /* N,F */, const float *gu /* N,2F */, int N, int F);
void gk_geglu_backward(float *dgu /* N,2F */, const float *dout /* N,F */, const float *gu /* N,2F */,
                       int N, int F);

/* out = a + b */
void gk_add(float *out, const float *a, const float *b, size_t n);

/* RoPE in place on the q and k parts; cs: per position t < T, D/2 cosines then D/2 sines
 * (gk_rope_table, on the host: posenc.c's values; a table of more positions serves too) */
void gk_rope_table(float *cs_host /* T,D */, int T, int D);
void gk_rope_forward(float *qkv /* B,T,3HD */, const float *cs, int B, int T, int H, int D);
void gk_rope_backward(float *dqkv /* B,T,3HD */, const float *cs, int B, int T, int H, int D);

/* causal attention on a materialized T x T block, as attention_forward/backward:
 * s_ij = c_ih q_i.k_j / sqrt(D) + slope_h (j - i), p_i = row(s_i,0..i), row any LCG_ROW_*: softmax,
 * the entmax family (in registers up to 256 keys), top-k, stick-breaking and adaptive-softmax (a
 * warp per row through memory; the backward of the last two recomputes the row's scores from qkv,
 * the slopes and qscale, by the forward's own product, as attention_backward does). att holds B*H*T rows of
 * gk_att_ld(T) floats (T rounded up to 4; the padding is never read); the backward reads it and
 * qkv as the forward left them. scratch: gk_attention_scratch floats, shared by the layers.
 * dqscale (written) may be NULL; qscale NULL means c = 1. Rows of up to 256 keys are held in
 * registers; gk_attention_plain = 1 takes the plain path (keys through memory) that the fast one
 * is tested against. With D % 4 == 0 the products read and write the heads in place (pointer-
 * array GEMMs); gk_attention_split = 1 (or another D) copies the heads apart first. */
extern int gk_attention_plain, gk_attention_split;
/* one fused kernel per direction (a block per head, keys and values in shared memory) for T <= 128
 * and D in {8, 16} (1, the default) or {8, 16, 32, 64} (2); 0: always the cuBLAS products above */
extern int gk_attention_fused;
/* 1 (default): TF32 GEMMs through cuBLAS's Ex entry points (the TF32 compute type asked for) */
extern int gk_gemm_ex;
int gk_att_ld(int T);
size_t gk_attention_scratch(int B, int T, int H, int D);
void gk_attention_forward(float *out /* B,T,HD */, float *att /* B,H,T,ld */, float *scratch,
                          const float *qkv /* B,T,3HD */, const float *qscale /* B,T,H */,
                          const float *slopes /* H */, int row, double alpha, int B, int T, int H, int D);
void gk_attention_backward(float *dqkv /* B,T,3HD */, float *dqscale /* B,T,H */, float *scratch,
                           const float *dout /* B,T,HD */, const float *qkv /* B,T,3HD */,
                           const float *qscale /* B,T,H */, const float *att /* B,H,T,ld */,
                           const float *slopes /* H */, int row, double alpha, int B, int T, int H, int D);

/* evaluation attention (the prefill's, model/prefill.c, for one sequence of any length): query
 * rows i0 .. i0+R-1 against keys 0 .. i0+R-1, every head, through a block of score rows in
 * scratch (gk_eval_block_rows(n, H) rows of gk_eval_ld(n) floats per head: O(n), never n x n;
 * twice that for the entmax family: its candidates): scores by a batched GEMM, the row function
 * of training's plain path in place (softmax; the entmax family with its exact per-row threshold,
 * solved on the keys above the bound tau >= max - 1/(alpha-1) only, compacted in key order;
 * gk_eval_compact = 0: on the whole row, the path it is tested against), P.V by a second GEMM
 * into out's rows. The
 * diagnostics of rows t >= r0 (entropy, support, max weight of each head's row, as
 * decoder_diag_add) go to diag[((t - r0) * H + h) * 3 + k] (NULL: none). gk_eval_rows > 0 fixes
 * the block (tests: several blocks on short sequences). */
extern int gk_eval_rows, gk_eval_compact;
int gk_eval_ld(int n);
int gk_eval_block_rows(int n, int H);
void gk_eval_attention(float *out /* n,HD */, double *diag /* (n-r0),H,3 */, float *scratch /* (1|2),H,R,ld */,
                       const float *qkv /* n,3HD */, const float *qscale /* n,H or NULL */, const float *slopes /* H */,
                       int row, double alpha, int i0, int R, int r0, int H, int D, int ld);
/* (top-k, stick-breaking and adaptive-softmax in evaluation: the generic row of model/prefill.c,
 * each whole score row through the row function, O(n) per row; no candidates, no pruning) */
/* the relevant-key mass of the rows of interest a .. a+nr-1 (row[] ascending, all inside the block
 * i0 .. i0+R-1 that gk_eval_attention just ran, before the next block reuses scratch): mass[(r L +
 * l) H + h] = the sum of the weights of row row[r], head h on its keys key[off[r] .. off[r] +
 * len[r] - 1] (each <= row[r]), in double, in a fixed order (no atomics). All pointers device. */
void gk_eval_mass(double *mass /* rows,L,H */, const float *scratch, const int *row, const int *off, const int *len,
                  const int *key, int a, int nr, int l, int L, int i0, int R, int H, int ld);

/* greedy decoding, A sequences at once, one new row each, on caches of slots (slot a's q/k/v rows
 * [cap][3HD] start at cache + slot[a] * slot_stride; pos[a]: the new row's position, its keys rows
 * 0 .. pos[a]; slot, pos device). place: the projections qkv [A][3HD] to the caches' rows pos[a],
 * RoPE'd with table cs (NULL: none). attention: each row's scores through scratch (A,H,ld floats,
 * twice that for the entmax family, ld >= pos + 1), the row function of gk_eval_attention (qscale
 * [A][H] or NULL), p.V into out [A][HD] */
void gk_decode_place(float *cache, long long slot_stride, const float *qkv /* A,3HD */, const float *cs,
                     const int *slot /* A */, const int *pos /* A */, int A, int H, int D);
void gk_decode_attention(float *out /* A,HD */, float *scratch, const float *cache, long long slot_stride,
                         const int *slot /* A */, const int *pos /* A */, const float *qscale /* A,H or NULL */,
                         const float *slopes /* H */, int row, double alpha, int A, int H, int D, int ld);

/* length scaling (lenscale.c): w points at one layer's tensors (device), NULL where absent.
 * adapt's pre-activations z = a @ [wb | wg] (no biases; GEMMs) are written by the forward and
 * read by the backward (NULL for the other kinds). */
typedef struct {
    float *beta, *gamma, *wb, *bb, *wg, *bg;
} gk_lenscale_w;
void gk_lenscale_forward(float *c /* N,H */, float *z /* N,2Hs */, const float *a /* N,C */, const gk_lenscale_w *w,
                         int kind, int h0, int N, int T, int C, int H);
/* the same for N consecutive positions pos0 .. pos0 + N - 1 of one sequence (row n at position
 * pos0 + n: evaluation's rows appended to a cache) */
void gk_lenscale_forward_at(float *c /* N,H */, float *z /* N,2Hs */, const float *a /* N,C */, const gk_lenscale_w *w,
                            int kind, int h0, int N, int pos0, int C, int H);
/* the same for N rows at positions pos[N] (device) */
void gk_lenscale_forward_rows(float *c /* N,H */, float *z /* N,2Hs */, const float *a /* N,C */,
                              const gk_lenscale_w *w, int kind, int h0, int N, const int *pos, int C, int H);
/* da += (adapt only), g += ; dz: N*2Hs floats and part: gk_colsum_parts(N)*2Hs doubles, scratch */
void gk_lenscale_backward(float *da /* N,C */, gk_lenscale_w *g, float *dz, double *part, const float *dc /* N,H */,
                          const float *z /* N,2Hs */, const float *a /* N,C */, const gk_lenscale_w *w, int kind,
                          int h0, int N, int T, int C, int H);

/* masked cross-entropy: losses[n] (0 where !mask); dlogits written (0 on unmasked rows) */
void gk_crossentropy_forward(float *losses /* N */, const float *logits /* N,V */, const int *targets /* N */,
                             const unsigned char *mask /* N */, int N, int V);
void gk_crossentropy_backward(float *dlogits /* N,V */, const float *logits /* N,V */, const int *targets /* N */,
                              const unsigned char *mask /* N */, float scale, int N, int V);
/* the same with the scale read from device memory when the kernel runs (a captured graph's
 * batches differ in their number of masked positions) */
void gk_crossentropy_backward_dev(float *dlogits /* N,V */, const float *logits /* N,V */, const int *targets /* N */,
                                  const unsigned char *mask /* N */, const float *scale /* 1, device */, int N, int V);
/* out[0] = sum x[0..n) in double, one block in a fixed order */
void gk_sum(double *out /* 1 */, const float *x, size_t n);
/* out[0] = sum x^2 (double); part: gk_sqsum_parts() doubles */
size_t gk_sqsum_parts(void);
void gk_sqsum(double *out /* 1 */, double *part, const float *x, size_t n);

/* optim.c's grad_clip + adamw_update: g *= k where clip > 0 and norm > clip (k = clip/(norm+1e-6), norm = sqrt(*sqnorm)
 * the norm read from device memory), then the AdamW step with the host-computed constants */
void gk_clip_adamw(float *p, float *g, float *m, float *v, const double *sqnorm /* 1, device: the squared norm */, double clip,
                   float b1, float b2, float eps, float decay, float step, float rbc2, size_t n);

#ifdef __cplusplus
}
#endif
#endif
