/*
 * gpu_kernels.cu: the CUDA kernels of the training step (see gpu_kernels.h), fp32, each the
 * device twin of a CPU kernel in kernels/, doing the same arithmetic in the same precision
 * (double where the CPU uses double: norms' sums of squares, softmax sums, every entmax
 * threshold). Matmuls go through cuBLAS; the attention of short rows runs fused (a block per
 * head) or, past what the fused kernels take, as batched cuBLAS products around row kernels.
 *
 * Determinism: every reduction has a fixed shape and order (warp butterflies, per-chunk
 * partial sums finished by a warp per column, single-block tree sums); no atomics.
 *
 * bf16 (--precision bf16) rounds the weight matmuls' operands to bf16 on the way in (a copy per
 * GEMM in a reserved scratch) and accumulates in FP32; nothing else changes precision.
 *
 * Not here: the streaming (O(n) memory) evaluation attention, bf16 activations kept between
 * kernels, tensor-core attention, CUDA graphs.
 */
#include "gpu_kernels.h"
extern "C" {
#include "../kernels/kernels.h"
}

#include <cublas_v2.h>
#include <cuda_bf16.h>
#include <cuda_runtime.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


/* ---- errors, memory ---------------------------------------------------------------------------- */
static void cuda_check(cudaError_t e, const char *what, const char *file, int line) {
    if (e == cudaSuccess) return;
    fprintf(stderr, "lcgbench: CUDA error in %s (%s:%d): %s\n", what, file, line, cudaGetErrorString(e));
    exit(1);
}
#define CK(call) cuda_check((call), #call, __FILE__, __LINE__)
#define CK_LAUNCH(name) cuda_check(cudaGetLastError(), name, __FILE__, __LINE__)

static void cublas_check(cublasStatus_t s, const char *what, const char *file, int line) {
    if (s == CUBLAS_STATUS_SUCCESS) return;
    fprintf(stderr, "lcgbench: cuBLAS error %d in %s (%s:%d)\n", (int)s, what, file, line);
    exit(1);
}
#define CKB(call) cublas_check((call), #call, __FILE__, __LINE__)

static cudaStream_t g_stream = 0;
static cublasHandle_t g_cublas = NULL;
static void *g_cublas_ws = NULL;
enum { CUBLAS_WS_BYTES = 32 << 20 };
static gpu_precision g_prec = GPU_FP32;

int gpu_device_usable(char *why, size_t n) {
    int count = 0;
    cudaError_t e = cudaGetDeviceCount(&count);
    if (e != cudaSuccess) {
        snprintf(why, n, "%s", cudaGetErrorString(e));
        return 0;
    }
    if (count == 0) {
        snprintf(why, n, "no CUDA device found");
        return 0;
    }
    e = cudaFree(0); /* creates the context: fails here if the device cannot be used */
    if (e != cudaSuccess) {
        snprintf(why, n, "%s", cudaGetErrorString(e));
        return 0;
    }
    return 1;
}

const char *gpu_device_name(void) {
    static char name[256];
    cudaDeviceProp p;
    int dev = 0;
    CK(cudaGetDevice(&dev));
    CK(cudaGetDeviceProperties(&p, dev));
    snprintf(name, sizeof name, "%s", p.name);
    return name;
}

void *gpu_malloc(size_t bytes) {
    void *d = NULL;
    cudaError_t e = cudaMalloc(&d, bytes ? bytes : 16);
    if (e != cudaSuccess) {
        fprintf(stderr, "lcgbench: out of GPU memory allocating %zu bytes (%s)\n", bytes, cudaGetErrorString(e));
        exit(1);
    }
    return d;
}
void gpu_free(void *d) {
    if (d) CK(cudaFree(d));
}
void gpu_upload(void *d, const void *h, size_t bytes) {
    CK(cudaMemcpyAsync(d, h, bytes, cudaMemcpyHostToDevice, g_stream));
    CK(cudaStreamSynchronize(g_stream));
}
void gpu_download(void *h, const void *d, size_t bytes) {
    CK(cudaMemcpyAsync(h, d, bytes, cudaMemcpyDeviceToHost, g_stream));
    CK(cudaStreamSynchronize(g_stream));
}
void *gpu_malloc_host(size_t bytes) {
    void *h = NULL;
    cudaError_t e = cudaMallocHost(&h, bytes ? bytes : 16);
    if (e != cudaSuccess) {
        fprintf(stderr, "lcgbench: out of pinned host memory allocating %zu bytes (%s)\n", bytes, cudaGetErrorString(e));
        exit(1);
    }
    return h;
}
void gpu_free_host(void *h) {
    if (h) CK(cudaFreeHost(h));
}
void gpu_upload_async(void *d, const void *h, size_t bytes) {
    CK(cudaMemcpyAsync(d, h, bytes, cudaMemcpyHostToDevice, g_stream));
}
void gpu_memset0(void *d, size_t bytes) { CK(cudaMemsetAsync(d, 0, bytes, g_stream)); }
void gpu_sync(void) { CK(cudaStreamSynchronize(g_stream)); }

/* ---- CUDA graphs: the work queued on the stream between begin and end, replayed as one launch ---- */
void *gpu_graph_capture_begin(void) {
    CK(cudaStreamBeginCapture(g_stream, cudaStreamCaptureModeRelaxed));
    return NULL;
}
void *gpu_graph_capture_end(void) {
    cudaGraph_t g;
    cudaGraphExec_t ex;
    CK(cudaStreamEndCapture(g_stream, &g));
    CK(cudaGraphInstantiate(&ex, g, 0));
    CK(cudaGraphDestroy(g));
    return (void *)ex;
}
void gpu_graph_launch(void *exec) { CK(cudaGraphLaunch((cudaGraphExec_t)exec, g_stream)); }
void gpu_graph_destroy(void *exec) {
    if (exec) CK(cudaGraphExecDestroy((cudaGraphExec_t)exec));
}

void gk_init(gpu_precision prec) {
    if (!g_cublas) {
        /* a stream of our own (graph capture needs one other than the legacy default stream), and
         * a cuBLAS workspace fixed up front, so captured GEMMs allocate nothing */
        CK(cudaStreamCreateWithFlags(&g_stream, cudaStreamNonBlocking));
        CKB(cublasCreate(&g_cublas));
        CK(cudaMalloc(&g_cublas_ws, CUBLAS_WS_BYTES));
        CKB(cublasSetWorkspace(g_cublas, g_cublas_ws, CUBLAS_WS_BYTES));
    }
    CKB(cublasSetStream(g_cublas, g_stream));
    /* pedantic FP32: no reduced-precision shortcut anywhere in the library's choice */
    CKB(cublasSetMathMode(g_cublas, prec != GPU_FP32 ? CUBLAS_TF32_TENSOR_OP_MATH : CUBLAS_PEDANTIC_MATH));
    g_prec = prec;
    const char *e = getenv("LCG_GPU_GEMMEX"); /* benchmark switch: 0 = the plain Sgemm entry points */
    gk_gemm_ex = e ? atoi(e) : 1;
    e = getenv("LCG_GPU_ATT_SPLIT"); /* benchmark switch: 1 = attention through split heads */
    if (e) gk_attention_split = atoi(e);
    e = getenv("LCG_GPU_ATT_FUSED"); /* benchmark switch: 0 = attention through cuBLAS */
    if (e) gk_attention_fused = atoi(e);
    e = getenv("LCG_GPU_EVAL_COMPACT"); /* benchmark switch: 0 = the entmax threshold over whole rows */
    if (e) gk_eval_compact = atoi(e);
}

void gk_set_stream(void *stream) {
    g_stream = (cudaStream_t)stream;
    if (g_cublas) CKB(cublasSetStream(g_cublas, g_stream));
}

static unsigned nblocks(size_t n, int per) { return (unsigned)((n + per - 1) / per); }

/* ---- warp reductions (butterflies: every lane ends with the same bits) ------------------------ */
__device__ __forceinline__ double warp_sum_d(double v) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}
__device__ __forceinline__ int warp_sum_i(int v) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}
__device__ __forceinline__ float warp_max_f(float v) {
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}
__device__ __forceinline__ int warp_or_i(int v) {
    for (int o = 16; o > 0; o >>= 1) v |= __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

/* ---- cuBLAS on row-major matrices --------------------------------------------------------------
 * C[M,N] = alpha op(A) op(B) + beta C, all row-major with row strides lda/ldb/ldc, batched with
 * element strides sA/sB/sC: column-major cuBLAS computes C^T = op(B)^T op(A)^T. */
int gk_gemm_ex = 1;

/* TF32 through the Ex entry points asks for the TF32 compute type outright; the plain Sgemm ones
 * leave cuBLAS free to pick FP32 SIMT kernels, which it did for the attention's small products */
static void gemm_rm(int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda, long long sA,
                    const float *B, int ldb, long long sB, float beta, float *C, int ldc, long long sC, int batch) {
    cublasOperation_t oa = ta ? CUBLAS_OP_T : CUBLAS_OP_N, ob = tb ? CUBLAS_OP_T : CUBLAS_OP_N;
    if (g_prec != GPU_FP32 && gk_gemm_ex)
        CKB(cublasGemmStridedBatchedEx(g_cublas, ob, oa, N, M, K, &alpha, B, CUDA_R_32F, ldb, sB, A, CUDA_R_32F, lda,
                                       sA, &beta, C, CUDA_R_32F, ldc, sC, batch, CUBLAS_COMPUTE_32F_FAST_TF32,
                                       CUBLAS_GEMM_DEFAULT_TENSOR_OP));
    else
        CKB(cublasSgemmStridedBatched(g_cublas, ob, oa, N, M, K, &alpha, B, ldb, sB, A, lda, sA, &beta, C, ldc, sC,
                                      batch));
}

/* the same over arrays of device pointers (one matrix each), in device memory */
static void gemm_rm_ptr(int ta, int tb, int M, int N, int K, const float *const *A, int lda, const float *const *B,
                        int ldb, float *const *C, int ldc, int batch) {
    cublasOperation_t oa = ta ? CUBLAS_OP_T : CUBLAS_OP_N, ob = tb ? CUBLAS_OP_T : CUBLAS_OP_N;
    float alpha = 1.0f, beta = 0.0f;
    if (g_prec != GPU_FP32 && gk_gemm_ex)
        CKB(cublasGemmBatchedEx(g_cublas, ob, oa, N, M, K, &alpha, (const void *const *)B, CUDA_R_32F, ldb,
                                (const void *const *)A, CUDA_R_32F, lda, &beta, (void *const *)C, CUDA_R_32F, ldc,
                                batch, CUBLAS_COMPUTE_32F_FAST_TF32, CUBLAS_GEMM_DEFAULT_TENSOR_OP));
    else
        CKB(cublasSgemmBatched(g_cublas, ob, oa, N, M, K, &alpha, B, ldb, A, lda, &beta, C, ldc, batch));
}

/* ---- bf16 operands of the weight matmuls ---------------------------------------------------- */
static __nv_bfloat16 *g_bf16;       /* [g_bf16_w] weights, then [2][g_bf16_act] activations */
static size_t g_bf16_w, g_bf16_act;
static unsigned g_bf16_gen;

void gk_bf16_reserve(size_t w_elems, size_t act_elems) {
    if (w_elems <= g_bf16_w && act_elems <= g_bf16_act) return;
    cudaStreamCaptureStatus cap;
    CK(cudaStreamIsCapturing(g_stream, &cap));
    if (cap != cudaStreamCaptureStatusNone) {
        fprintf(stderr, "lcgbench: bf16 scratch too small inside a graph capture (%zu, %zu elements needed)\n",
                w_elems, act_elems);
        exit(1);
    }
    if (w_elems < g_bf16_w) w_elems = g_bf16_w;
    if (act_elems < g_bf16_act) act_elems = g_bf16_act;
    w_elems = (w_elems + 63) / 64 * 64; /* each operand 128-byte aligned */
    act_elems = (act_elems + 63) / 64 * 64;
    CK(cudaStreamSynchronize(g_stream)); /* queued GEMMs may still read the old copies */
    CK(cudaFree(g_bf16));
    CK(cudaMalloc(&g_bf16, sizeof(__nv_bfloat16) * (w_elems + 2 * act_elems)));
    g_bf16_w = w_elems;
    g_bf16_act = act_elems;
    g_bf16_gen++;
}
unsigned gk_bf16_generation(void) { return g_bf16_gen; }

/* out[i] = in[i] rounded to the nearest bf16 (ties to even), 4 at a time where aligned */
__global__ void to_bf16_kernel(__nv_bfloat16 *out, const float *in, size_t n) {
    size_t i = ((size_t)blockIdx.x * blockDim.x + threadIdx.x) * 4;
    if (i + 3 < n && ((uintptr_t)(in + i) & 15) == 0) {
        float4 v = *(const float4 *)(in + i);
        out[i] = __float2bfloat16_rn(v.x);
        out[i + 1] = __float2bfloat16_rn(v.y);
        out[i + 2] = __float2bfloat16_rn(v.z);
        out[i + 3] = __float2bfloat16_rn(v.w);
    } else {
        for (size_t k = i; k < i + 4 && k < n; k++) out[k] = __float2bfloat16_rn(in[k]);
    }
}
static void to_bf16(__nv_bfloat16 *out, const float *in, size_t n) {
    if (n == 0) return;
    to_bf16_kernel<<<nblocks((n + 3) / 4, 256), 256, 0, g_stream>>>(out, in, n);
    CK_LAUNCH("to_bf16");
}

/* gemm_rm's C = op(A) op(B) + beta C on bf16 operands, FP32 accumulation and C */
static void gemm_rm_bf16(int ta, int tb, int M, int N, int K, const __nv_bfloat16 *A, int lda,
                         const __nv_bfloat16 *B, int ldb, float beta, float *C, int ldc) {
    cublasOperation_t oa = ta ? CUBLAS_OP_T : CUBLAS_OP_N, ob = tb ? CUBLAS_OP_T : CUBLAS_OP_N;
    float alpha = 1.0f;
    CKB(cublasGemmEx(g_cublas, ob, oa, N, M, K, &alpha, B, CUDA_R_16BF, ldb, A, CUDA_R_16BF, lda, &beta, C,
                     CUDA_R_32F, ldc, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT_TENSOR_OP));
}

void gk_matmul_forward(float *out, const float *inp, const float *w, int N, int IC, int OC) {
    if (g_prec != GPU_BF16) {
        gemm_rm(0, 0, N, OC, IC, 1.0f, inp, IC, 0, w, OC, 0, 0.0f, out, OC, 0, 1);
        return;
    }
    size_t nw = (size_t)IC * OC;
    if (nw > g_bf16_w || (size_t)IC > g_bf16_act) gk_bf16_reserve(nw, (size_t)IC * (N < 4096 ? N : 4096));
    __nv_bfloat16 *w16 = g_bf16, *a16 = g_bf16 + g_bf16_w;
    to_bf16(w16, w, nw);
    int rows = (int)(g_bf16_act / IC < (size_t)N ? g_bf16_act / IC : (size_t)N); /* rows independent: chunks */
    for (int r0 = 0; r0 < N; r0 += rows) {
        int n = N - r0 < rows ? N - r0 : rows;
        to_bf16(a16, inp + (size_t)r0 * IC, (size_t)n * IC);
        gemm_rm_bf16(0, 0, n, OC, IC, a16, IC, w16, OC, 0.0f, out + (size_t)r0 * OC, OC);
    }
}

void gk_matmul_backward(float *dinp, float *dw, const float *dout, const float *inp, const float *w, int N, int IC,
                        int OC, int acc_dinp) {
    if (g_prec != GPU_BF16) {
        if (dinp) gemm_rm(0, 1, N, IC, OC, 1.0f, dout, OC, 0, w, OC, 0, acc_dinp ? 1.0f : 0.0f, dinp, IC, 0, 1);
        gemm_rm(1, 0, IC, OC, N, 1.0f, inp, IC, 0, dout, OC, 0, 1.0f, dw, OC, 0, 1);
        return;
    }
    size_t nw = (size_t)IC * OC, na = (size_t)N * (IC > OC ? IC : OC);
    if (nw > g_bf16_w || na > g_bf16_act) gk_bf16_reserve(nw, na);
    __nv_bfloat16 *w16 = g_bf16, *x16 = g_bf16 + g_bf16_w, *d16 = x16 + g_bf16_act;
    to_bf16(d16, dout, (size_t)N * OC);
    if (dinp) {
        to_bf16(w16, w, nw);
        gemm_rm_bf16(0, 1, N, IC, OC, d16, OC, w16, OC, acc_dinp ? 1.0f : 0.0f, dinp, IC);
    }
    to_bf16(x16, inp, (size_t)N * IC);
    gemm_rm_bf16(1, 0, IC, OC, N, x16, IC, d16, OC, 1.0f, dw, OC);
}

/* ---- fixed-order column sums: chunks of COLSUM_ROWS rows -> double partials -> one sum each ---- */
enum { COLSUM_ROWS = 32 };
size_t gk_colsum_parts(int N) { return (size_t)(N + COLSUM_ROWS - 1) / COLSUM_ROWS; }

/* dst[c] += sum_p part[p][c]: one warp per column, lanes over the parts, a butterfly to finish */
__global__ void colsum_finish_kernel(float *dst, const double *part, int n_parts, int ncol) {
    int c = blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32, lane = threadIdx.x % 32;
    if (c >= ncol) return;
    double s = 0;
    for (int p = lane; p < n_parts; p += 32) s += part[(size_t)p * ncol + c];
    s = warp_sum_d(s);
    if (lane == 0) dst[c] += (float)s;
}
static void colsum_finish(float *dst, const double *part, int n_parts, int ncol) {
    colsum_finish_kernel<<<nblocks(ncol, 8), 256, 0, g_stream>>>(dst, part, n_parts, ncol);
    CK_LAUNCH("colsum_finish");
}

/* ---- embedding --------------------------------------------------------------------------------- */
__global__ void encoder_forward_kernel(float *out, const int *tok, const float *emb, int N, int C, float scale) {
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= (size_t)N * C) return;
    int n = (int)(i / C), c = (int)(i % C);
    out[i] = emb[(size_t)tok[n] * C + c] * scale;
}
void gk_encoder_forward(float *out, const int *tok, const float *emb, int N, int C) {
    encoder_forward_kernel<<<nblocks((size_t)N * C, 256), 256, 0, g_stream>>>(out, tok, emb, N, C,
                                                                             (float)sqrt((double)C));
    CK_LAUNCH("encoder_forward");
}

/* a block per (token, C / 128 columns): the token's rows of dout added in row order (the CPU's), 8
 * rows' loads in flight before their adds: a frequent token (mqmtar's filler 0: thousands of rows
 * a batch) is one long chain, the step's tail if each add waited on its load */
enum { ENC_U = 8 };
__global__ void encoder_backward_kernel(float *demb, const float *__restrict__ dout, const int *__restrict__ off,
                                        const int *__restrict__ idx, int C, float scale) {
    int v = blockIdx.x, c = blockIdx.y * blockDim.x + threadIdx.x;
    if (c >= C) return;
    float acc = demb[(size_t)v * C + c];
    int i = off[v], e = off[v + 1];
    for (; i + ENC_U <= e; i += ENC_U) {
        float d[ENC_U];
#pragma unroll
        for (int u = 0; u < ENC_U; u++) d[u] = dout[(size_t)idx[i + u] * C + c];
#pragma unroll
        for (int u = 0; u < ENC_U; u++) acc += d[u] * scale;
    }
    for (; i < e; i++) acc += dout[(size_t)idx[i] * C + c] * scale;
    demb[(size_t)v * C + c] = acc;
}
void gk_encoder_backward(float *demb, const float *dout, const int *off, const int *idx, int V, int C) {
    dim3 grid(V, nblocks(C, 128));
    encoder_backward_kernel<<<grid, 128, 0, g_stream>>>(demb, dout, off, idx, C, (float)sqrt((double)C));
    CK_LAUNCH("encoder_backward");
}

void gk_token_csr(int *off, int *idx, const int *tok, int N, int V) {
    for (int v = 0; v <= V; v++) off[v] = 0;
    for (int n = 0; n < N; n++) off[tok[n] + 1]++;
    for (int v = 0; v < V; v++) off[v + 1] += off[v];
    size_t nv = V > 0 ? (size_t)V : 1;
    int *fill = (int *)malloc(sizeof(int) * nv);
    if (!fill) {
        fprintf(stderr, "lcgbench: out of memory (token index)\n");
        exit(1);
    }
    for (int v = 0; v < V; v++) fill[v] = off[v];
    for (int n = 0; n < N; n++) idx[fill[tok[n]]++] = n;
    free(fill);
}

/* ---- RMSNorm (1 + w): one warp per row ----------------------------------------------------------- */
/* out and rstd must not alias inp or w (every caller's buffers are distinct); the loops unrolled by
 * four so that a lane has four loads in flight, each lane still summing its columns in order */
__global__ void rmsnorm_forward_kernel(float *__restrict__ out, float *__restrict__ rstd, const float *__restrict__ inp,
                                       const float *__restrict__ w, int N, int C) {
    int n = blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32, lane = threadIdx.x % 32;
    if (n >= N) return;
    const float *x = inp + (size_t)n * C;
    double ss = 0;
#pragma unroll 4
    for (int c = lane; c < C; c += 32) ss += (double)x[c] * x[c];
    ss = warp_sum_d(ss);
    float r = (float)(1.0 / sqrt(ss / C + LCG_RMS_EPS));
    float *o = out + (size_t)n * C;
#pragma unroll 4
    for (int c = lane; c < C; c += 32) o[c] = x[c] * r * (1 + w[c]);
    if (lane == 0) rstd[n] = r;
}
void gk_rmsnorm_forward(float *out, float *rstd, const float *inp, const float *w, int N, int C) {
    rmsnorm_forward_kernel<<<nblocks(N, 8), 256, 0, g_stream>>>(out, rstd, inp, w, N, C);
    CK_LAUNCH("rmsnorm_forward");
}

/* one block per chunk of COLSUM_ROWS rows: a warp per row finds k = dot r^3 / C, then a thread per
 * column walks the chunk's rows: dinp += r g (1+w) - x k, and the chunk's partial dw = sum g x r.
 * dinp must not alias dout or inp (every caller's do not): the column walk loads RMS_U rows' g, x
 * and dinp before it stores any, so that a thread has 3 RMS_U loads in flight, and sums them in row
 * order, as one row at a time would (the same bits). */
enum { RMS_U = 8 };
__global__ void rmsnorm_backward_kernel(float *__restrict__ dinp, double *__restrict__ part,
                                        const float *__restrict__ dout, const float *__restrict__ inp,
                                        const float *__restrict__ w, const float *__restrict__ rstd, int N, int C) {
    __shared__ float k_sh[COLSUM_ROWS], r_sh[COLSUM_ROWS];
    int p = blockIdx.x, n0 = p * COLSUM_ROWS, nr = min(COLSUM_ROWS, N - n0);
    int warp = threadIdx.x / 32, lane = threadIdx.x % 32, nw = blockDim.x / 32;
    for (int i = warp; i < nr; i += nw) {
        const float *x = inp + (size_t)(n0 + i) * C, *g = dout + (size_t)(n0 + i) * C;
        double dot = 0;
#pragma unroll 4
        for (int c = lane; c < C; c += 32) dot += (double)g[c] * (1 + w[c]) * x[c];
        dot = warp_sum_d(dot);
        float r = rstd[n0 + i];
        if (lane == 0) k_sh[i] = (float)(dot * r * r * r / C), r_sh[i] = r;
    }
    __syncthreads();
    for (int c = threadIdx.x; c < C; c += blockDim.x) {
        float wc = 1 + w[c];
        double s = 0;
        size_t o0 = (size_t)n0 * C + c;
        int i = 0;
        for (; i + RMS_U <= nr; i += RMS_U) {
            float g[RMS_U], x[RMS_U], d[RMS_U];
#pragma unroll
            for (int u = 0; u < RMS_U; u++) {
                size_t o = o0 + (size_t)(i + u) * C;
                g[u] = dout[o], x[u] = inp[o], d[u] = dinp[o];
            }
#pragma unroll
            for (int u = 0; u < RMS_U; u++) {
                float r = r_sh[i + u];
                dinp[o0 + (size_t)(i + u) * C] = d[u] + (r * g[u] * wc - x[u] * k_sh[i + u]);
                s += (double)(g[u] * x[u] * r);
            }
        }
        for (; i < nr; i++) {
            size_t o = o0 + (size_t)i * C;
            float g = dout[o], x = inp[o], r = r_sh[i];
            dinp[o] += r * g * wc - x * k_sh[i];
            s += (double)(g * x * r);
        }
        part[(size_t)p * C + c] = s;
    }
}
void gk_rmsnorm_backward(float *dinp, float *dw, double *part, const float *dout, const float *inp, const float *w,
                         const float *rstd, int N, int C) {
    int np = (int)gk_colsum_parts(N);
    rmsnorm_backward_kernel<<<np, 256, 0, g_stream>>>(dinp, part, dout, inp, w, rstd, N, C);
    CK_LAUNCH("rmsnorm_backward");
    colsum_finish(dw, part, np, C);
}

/* ---- GeGLU (tanh GELU) ------------------------------------------------------------------------ */
#define GELU_K 0.7978845608028654f
__global__ void geglu_forward_kernel(float *out, const float *gu, int N, int F) {
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= (size_t)N * F) return;
    size_t n = i / F, f = i % F;
    float x = gu[n * 2 * F + f], u = gu[n * 2 * F + F + f];
    float t = tanhf(GELU_K * (x + 0.044715f * x * x * x));
    out[i] = 0.5f * x * (1 + t) * u;
}
void gk_geglu_forward(float *out, const float *gu, int N, int F) {
    geglu_forward_kernel<<<nblocks((size_t)N * F, 256), 256, 0, g_stream>>>(out, gu, N, F);
    CK_LAUNCH("geglu_forward");
}
__global__ void geglu_backward_kernel(float *dgu, const float *dout, const float *gu, int N, int F) {
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= (size_t)N * F) return;
    size_t n = i / F, f = i % F;
    float x = gu[n * 2 * F + f], u = gu[n * 2 * F + F + f], d = dout[i];
    float t = tanhf(GELU_K * (x + 0.044715f * x * x * x));
    float gelu = 0.5f * x * (1 + t);
    float dgelu = 0.5f * (1 + t) + 0.5f * x * (1 - t * t) * GELU_K * (1 + (float)(3 * 0.044715) * x * x);
    dgu[n * 2 * F + f] = d * u * dgelu;
    dgu[n * 2 * F + F + f] = d * gelu;
}
void gk_geglu_backward(float *dgu, const float *dout, const float *gu, int N, int F) {
    geglu_backward_kernel<<<nblocks((size_t)N * F, 256), 256, 0, g_stream>>>(dgu, dout, gu, N, F);
    CK_LAUNCH("geglu_backward");
}

__global__ void add_kernel(float *out, const float *a, const float *b, size_t n) {
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) out[i] = a[i] + b[i];
}
void gk_add(float *out, const float *a, const float *b, size_t n) {
    add_kernel<<<nblocks(n, 256), 256, 0, g_stream>>>(out, a, b, n);
    CK_LAUNCH("add");
}

/* ---- RoPE ------------------------------------------------------------------------------------- */
void gk_rope_table(float *cs, int T, int D) { /* posenc.c's rope_cos_sin, position by position */
    int half = D / 2;
    for (int t = 0; t < T; t++)
        for (int k = 0; k < half; k++) {
            double ang = (double)t * pow(LCG_ROPE_THETA, -2.0 * k / D);
            cs[(size_t)t * D + k] = (float)cos(ang);
            cs[(size_t)t * D + half + k] = (float)sin(ang);
        }
}
__global__ void rope_kernel(float *qkv, const float *cs, int B, int T, int H, int D, int sign) {
    int half = D / 2;
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x, total = (size_t)B * T * 2 * H * half;
    if (i >= total) return;
    int k = (int)(i % half);
    size_t r = i / half;
    int hh = (int)(r % (2 * H)); /* q heads then k heads */
    size_t bt = r / (2 * H);
    int t = (int)(bt % T);
    float *v = qkv + bt * 3 * H * D + (size_t)hh * D;
    float c = cs[(size_t)t * D + k], sk = sign * cs[(size_t)t * D + half + k];
    float x1 = v[k], x2 = v[k + half];
    v[k] = x1 * c - x2 * sk;
    v[k + half] = x2 * c + x1 * sk;
}
static void rope(float *qkv, const float *cs, int B, int T, int H, int D, int sign) {
    size_t total = (size_t)B * T * 2 * H * (D / 2);
    rope_kernel<<<nblocks(total, 256), 256, 0, g_stream>>>(qkv, cs, B, T, H, D, sign);
    CK_LAUNCH("rope");
}
void gk_rope_forward(float *qkv, const float *cs, int B, int T, int H, int D) { rope(qkv, cs, B, T, H, D, 1); }
void gk_rope_backward(float *dqkv, const float *cs, int B, int T, int H, int D) { rope(dqkv, cs, B, T, H, D, -1); }

/* ---- attention ---------------------------------------------------------------------------------
 * Heads split to (B, H, T, D) so that the T x T products are strided batched GEMMs; the row
 * functions run one warp per row of the block, in place. Rows of the T x T blocks are
 * gk_att_ld(T) floats apart (T rounded up to 4: 16-byte rows, which cuBLAS's tensor-core
 * kernels need); the padding columns are never read. */
int gk_attention_plain = 0, gk_attention_split = 0;

int gk_att_ld(int T) { return (T + 3) / 4 * 4; }

enum { ATT_NPTR = 11 }; /* pointer arrays of the direct path: q k v att out dout dP dq dk dv qf */
static size_t att_ptr_floats(size_t BH) { return (ATT_NPTR * BH * sizeof(float *) / sizeof(float) + 63) / 64 * 64; }

size_t gk_attention_scratch(int B, int T, int H, int D) {
    size_t BH = (size_t)B * H, n = BH * T * D;
    /* pointers | dP | split path: q k v (3n) | dy or y (n) | dq dk dv (3n) | f*q (n) | the backward's
     * scores (stick-break, adaptive-softmax) */
    return att_ptr_floats(BH) + 2 * BH * T * gk_att_ld(T) + 8 * n;
}

/* one matrix per (b, h): base + b * bs + h * hs */
typedef struct {
    const float *base;
    long long bs, hs;
} att_mat;
typedef struct {
    att_mat m[ATT_NPTR];
} att_mats;
__global__ void att_fill_ptrs_kernel(const float **ptrs, att_mats mats, int n_mats, int BH, int H) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n_mats * BH) return;
    int s = i / BH, bh = i % BH, b = bh / H, h = bh % H;
    ptrs[i] = mats.m[s].base + b * mats.m[s].bs + h * mats.m[s].hs;
}

/* qkv (B,T,3,H,D) -> (3,B,H,T,D) */
__global__ void split_qkv_kernel(float *qkvp, const float *qkv, int B, int T, int H, int D) {
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x, n = (size_t)B * T * 3 * H * D;
    if (i >= n) return;
    int d = (int)(i % D);
    size_t r = i / D;
    int h = (int)(r % H);
    r /= H;
    int s = (int)(r % 3);
    size_t bt = r / 3;
    int t = (int)(bt % T), b = (int)(bt / T);
    qkvp[((((size_t)s * B + b) * H + h) * T + t) * D + d] = qkv[i];
}
/* (3,B,H,T,D) -> (B,T,3,H,D); also (1,...) -> (B,T,1,H,D) with n3 = 1 */
__global__ void merge_heads_kernel(float *out, const float *in, int B, int T, int H, int D, int n3) {
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x, n = (size_t)B * T * n3 * H * D;
    if (i >= n) return;
    int d = (int)(i % D);
    size_t r = i / D;
    int h = (int)(r % H);
    r /= H;
    int s = (int)(r % n3);
    size_t bt = r / n3;
    int t = (int)(bt % T), b = (int)(bt / T);
    out[i] = in[((((size_t)s * B + b) * H + h) * T + t) * D + d];
}
/* (B,T,H,D) -> (B,H,T,D) */
__global__ void split_heads_kernel(float *out, const float *in, int B, int T, int H, int D) {
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x, n = (size_t)B * T * H * D;
    if (i >= n) return;
    int d = (int)(i % D);
    size_t r = i / D;
    int h = (int)(r % H);
    size_t bt = r / H;
    int t = (int)(bt % T), b = (int)(bt / T);
    out[(((size_t)b * H + h) * T + t) * D + d] = in[i];
}

__device__ __forceinline__ double ent_pow(double t, double c, int mode) {
    return mode == 2 ? t : mode == 1 ? t * t : pow(t, c);
}

/* The Newton step for the entmax threshold at tau, from S = sum t^c and P = sum t^(c-1) over the
 * keys above tau (t = x - tau, c = 1/(alpha-1)). Newton runs on g(tau) = S^(1/c) - 1, the c-norm of
 * the positive parts minus 1: convex and decreasing (a norm of convex non-negative functions), so
 * from a lower bound the iterates rise to the root without overshooting, as on f = S - 1 (entmax.c);
 * but where f is a c-th power far from its root and Newton on it only halves the distance per step
 * (a row of near-equal scores from tau = -1: some 25 steps), g is close to linear: a few steps.
 * g / -g' = (S - S^(1 - 1/c)) / P = (S - S^(2 - alpha)) / P. */
__device__ __forceinline__ double ent_newton_step(double S, double P, double alpha, int mode) {
    return mode == 2 ? (S - 1.0) / P : mode == 1 ? (S - sqrt(S)) / P : (S - pow(S, 2.0 - alpha)) / P;
}

/* one key's share of a Newton step: t = the key's x - tau; S += t^c, P += t^(c-1), k counts the
 * keys above tau */
__device__ __forceinline__ void ent_newton_acc(double tt, double c, int mode, double *fs, double *fps, int *k) {
    if (tt <= 0) return;
    double tc1 = mode == 2 ? 1.0 : mode == 1 ? tt : pow(tt, c - 1.0);
    *fs += tc1 * tt;
    *fps += tc1;
    ++*k;
}

/* The entmax threshold of one row held by a warp, K keys per lane (a x[i] of key lane + 32 i, -inf
 * past the row; a > 0: training passes the scaled scores and a = 1, evaluation the shifted scores
 * s - max and a = alpha - 1, so that its expressions are ent_warp_tau_mem's, bit for bit): Newton
 * (ent_newton_step) from the lower bound -1, bisection on [-1, -n^(1-alpha)] as entmax.c's last
 * resort. Every lane returns the same tau and the sum of the unnormalized weights. */
template <int K>
__device__ double ent_warp_tau(const double *x, double a, int n, double alpha, int mode, double *sum_out) {
    double c = 1.0 / (alpha - 1.0), tau = -1.0;
    int prev_k = -1, ok = 0;
    for (int it = 0; it < 100; it++) {
        double fs = 0, fps = 0;
        int k = 0;
#pragma unroll
        for (int i = 0; i < K; i++) ent_newton_acc(a * x[i] - tau, c, mode, &fs, &fps, &k);
        double S = warp_sum_d(fs), P = warp_sum_d(fps), f = S - 1.0;
        k = warp_sum_i(k);
        if (!isfinite(f) || !(P > 0)) break;
        if (fabs(f) <= 1e-13 && k == prev_k) {
            ok = 1;
            break;
        }
        double next = tau + ent_newton_step(S, P, alpha, mode);
        if (next == tau) {
            ok = fabs(f) <= 1e-9;
            break;
        }
        tau = next;
        prev_k = k;
    }
    if (!ok) {
        double lo = -1.0, dt = -pow((double)n, 1.0 - alpha) - lo, tm = lo;
        for (int it = 0; it < 80; it++) {
            dt *= 0.5;
            tm = lo + dt;
            double fs = 0;
#pragma unroll
            for (int i = 0; i < K; i++) {
                double tt = a * x[i] - tm;
                if (tt > 0) fs += ent_pow(tt, c, mode);
            }
            if (warp_sum_d(fs) - 1.0 >= 0) lo = tm;
        }
        tau = lo;
    }
    double sum = 0;
#pragma unroll
    for (int i = 0; i < K; i++) {
        double tt = a * x[i] - tau;
        if (tt > 0) sum += ent_pow(tt, c, mode);
    }
    *sum_out = warp_sum_d(sum);
    return tau;
}

/* the entmax threshold of one row held in memory, x[0..nx) (the row's keys, or a superset of its
 * support), a warp at a time: Newton on f(tau) = sum (am1 (x - max) - tau)_+^c - 1 from -1, then
 * bisection over [-1, -n^(1 - alpha)] if Newton fails; in double, each lane summing its keys
 * j = lane, lane + 32, ... and the warp reducing them (so every caller gets the same bits for the
 * same keys). n: the row's length (the bracket). Shared by training's plain rows and evaluation. */
__device__ double ent_warp_tau_mem(const float *x, int nx, double dmx, double alpha, int mode, int n, int lane) {
    double am1 = alpha - 1.0, c = 1.0 / am1;
    double tau = -1.0;
    int prev_k = -1, ok = 0;
    for (int it = 0; it < 100; it++) {
        double fs = 0, fps = 0;
        int k = 0;
        int j = lane;
        for (; j + 96 < nx; j += 128) { /* four loads in flight, summed in key order */
            float v0 = x[j], v1 = x[j + 32], v2 = x[j + 64], v3 = x[j + 96];
            ent_newton_acc(am1 * ((double)v0 - dmx) - tau, c, mode, &fs, &fps, &k);
            ent_newton_acc(am1 * ((double)v1 - dmx) - tau, c, mode, &fs, &fps, &k);
            ent_newton_acc(am1 * ((double)v2 - dmx) - tau, c, mode, &fs, &fps, &k);
            ent_newton_acc(am1 * ((double)v3 - dmx) - tau, c, mode, &fs, &fps, &k);
        }
        for (; j < nx; j += 32) ent_newton_acc(am1 * ((double)x[j] - dmx) - tau, c, mode, &fs, &fps, &k);
        double S = warp_sum_d(fs), P = warp_sum_d(fps), f = S - 1.0;
        k = warp_sum_i(k);
        if (!isfinite(f) || !(P > 0)) break;
        if (fabs(f) <= 1e-13 && k == prev_k) {
            ok = 1;
            break;
        }
        double next = tau + ent_newton_step(S, P, alpha, mode);
        if (next == tau) {
            ok = fabs(f) <= 1e-9;
            break;
        }
        tau = next;
        prev_k = k;
    }
    if (!ok) {
        double lo = -1.0, dt = -pow((double)n, 1.0 - alpha) - lo, tm = lo;
        for (int it = 0; it < 80; it++) {
            dt *= 0.5;
            tm = lo + dt;
            double fs = 0;
            for (int j = lane; j < nx; j += 32) {
                double tt = am1 * ((double)x[j] - dmx) - tm;
                if (tt > 0) fs += ent_pow(tt, c, mode);
            }
            if (warp_sum_d(fs) - 1.0 >= 0) lo = tm;
        }
        tau = lo;
    }
    return tau;
}

/* ---- top-k, stick-breaking, adaptive-softmax rows (kernels/topk.c, stickbreak.c, adaptive.c) ----
 * A warp per row held in memory, p[0..n) the row's scores in, its weights out (in place), any n
 * (O(n) memory: the row itself, plus a 256-bin histogram per warp for top-k): training's plain
 * path, the rows the register and fused paths hand over through memory, and evaluation's rows.
 * The CPU's definitions: ties, masks and NaN rows as there; sums in double, in the warp's order
 * (lane-strided, then a butterfly or a scan) instead of the CPU's sequential one. */
__host__ __device__ __forceinline__ int row_is_entmax(int row) { return row == LCG_ROW_ENTMAX || row == LCG_ROW_SPARSEMAX; }
__device__ __forceinline__ int row_needs_s(int row) { return row == LCG_ROW_STICK || row == LCG_ROW_ADAPTIVE; }

/* 1 in every lane if some p[0..n) is NaN */
__device__ int warp_row_nan(const float *p, int n, int lane) {
    int bad = 0;
    for (int j = lane; j < n; j += 32) bad |= p[j] != p[j];
    return warp_or_i(bad);
}

/* the k of a top-k row of n keys for the row parameter (+K fixed, -K div-2): topk.c's topk_k */
__device__ __forceinline__ int topk_k_dev(double param, int n) {
    int K = (int)fabs(param);
    if (param < 0 && n / 2 > K) K = n / 2;
    return K < 1 ? 1 : K;
}

/* a float's bits as an unsigned that orders as the float does (-0 taken as +0: equal, as > sees) */
__device__ __forceinline__ unsigned topk_key(float x) {
    unsigned u = __float_as_uint(x);
    if (u == 0x80000000u) u = 0;
    return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}

/* topk_row on a warp's row: the k-th largest score by a 4-pass radix select (8 bits a pass, a
 * histogram per warp in shared memory; integer counts, so any order of the atomics gives the same
 * counts), then the keys above it and the equal ones newest first until k (a ballot per 32 keys,
 * newest chunk first), softmax over those; k >= n: plain softmax. Blocks of at most 8 warps. */
__device__ void row_topk_mem(float *p, int n, double param, int lane) {
    __shared__ unsigned topk_hist[8][256];
    unsigned *hist = topk_hist[(threadIdx.x / 32) & 7];
    if (warp_row_nan(p, n, lane)) {
        for (int j = lane; j < n; j += 32) p[j] = NAN;
        return;
    }
    int k = topk_k_dev(param, n);
    float mx = -INFINITY;
    for (int j = lane; j < n; j += 32) mx = fmaxf(mx, p[j]);
    mx = warp_max_f(mx);
    if (k >= n) { /* softmax_row */
        double sum = 0;
        for (int j = lane; j < n; j += 32) {
            float e = expf(p[j] - mx);
            p[j] = e;
            sum += e;
        }
        float inv = (float)(1.0 / warp_sum_d(sum));
        for (int j = lane; j < n; j += 32) p[j] *= inv;
        return;
    }
    unsigned th = 0; /* the key of rank k - 1 (descending), 8 bits a pass from the top */
    int need = k;    /* its rank among the keys that share th's bits so far (1-based) */
    for (int sh = 24; sh >= 0; sh -= 8) {
        unsigned hi = sh == 24 ? 0u : 0xffffffffu << (sh + 8);
        for (int b = lane; b < 256; b += 32) hist[b] = 0;
        __syncwarp();
        for (int j = lane; j < n; j += 32) {
            unsigned u = topk_key(p[j]);
            if ((u & hi) == (th & hi)) atomicAdd(&hist[(u >> sh) & 255u], 1u);
        }
        __syncwarp();
        /* lane l holds the bins 255 - 8l .. 248 - 8l (descending); a scan over the lanes finds the
         * one where the running count reaches need, then that lane walks its 8 bins */
        int c = 0;
        for (int i = 0; i < 8; i++) c += (int)hist[255 - 8 * lane - i];
        int incl = c;
        for (int o = 1; o < 32; o <<= 1) {
            int t = __shfl_up_sync(0xffffffffu, incl, o);
            if (lane >= o) incl += t;
        }
        unsigned hit = __ballot_sync(0xffffffffu, incl >= need);
        int src = __ffs(hit) - 1, digit = 0, left = 0;
        if (lane == src) {
            int acc = incl - c;
            for (int i = 0; i < 8; i++) {
                int b = 255 - 8 * lane - i, hb = (int)hist[b];
                if (acc + hb >= need) {
                    digit = b, left = need - acc;
                    break;
                }
                acc += hb;
            }
        }
        digit = __shfl_sync(0xffffffffu, digit, src);
        need = __shfl_sync(0xffffffffu, left, src);
        th |= (unsigned)digit << sh;
        __syncwarp();
    }
    int ties = need; /* keys equal to th to keep: k less the keys above it */
    double sum = 0;
    unsigned above_me = lane == 31 ? 0u : 0xffffffffu << (lane + 1);
    for (int j0 = (n - 1) / 32 * 32; j0 >= 0; j0 -= 32) { /* newest chunk first, warp-uniform */
        int j = j0 + lane;
        unsigned u = j < n ? topk_key(p[j]) : 0u;
        int eq = j < n && u == th;
        unsigned b = __ballot_sync(0xffffffffu, eq);
        int keep = j < n && (u > th || (eq && __popc(b & above_me) < ties));
        ties -= __popc(b);
        if (j < n) {
            float e = keep ? expf(p[j] - mx) : 0.0f;
            p[j] = e;
            sum += e;
        }
    }
    float inv = (float)(1.0 / warp_sum_d(sum));
    for (int j = lane; j < n; j += 32) p[j] *= inv;
}

__device__ __forceinline__ double log_sigmoid_d(double x) { return x >= 0 ? -log1p(exp(-x)) : x - log1p(exp(x)); }

/* stickbreak_row on a warp's row: the query's own key n - 1 gets 0; newest first, in chunks of 32
 * keys, log A_j = log sigma(z_j) + (the sum of log sigma(-z_m) over m in (j, n - 1)), that sum by a
 * suffix scan over the lanes plus the newer chunks' total; once below -800 the weight is 0 */
__device__ void row_stick_mem(float *p, int n, int lane) {
    if (warp_row_nan(p, n, lane)) {
        for (int j = lane; j < n; j += 32) p[j] = NAN;
        return;
    }
    double carry = 0; /* the sum over the newer chunks' keys */
    int last = n - 1; /* keys 0 .. n-2 carry weight */
    for (int j0 = (n - 1) / 32 * 32; j0 >= 0; j0 -= 32) {
        int j = j0 + lane;
        double z = j < last ? (double)p[j] : 0.0, ln = j < last ? log_sigmoid_d(-z) : 0.0;
        double incl = ln; /* the sum over lanes lane .. 31 */
        for (int o = 1; o < 32; o <<= 1) {
            double t = __shfl_down_sync(0xffffffffu, incl, o);
            if (lane + o < 32) incl += t;
        }
        double excl = __shfl_down_sync(0xffffffffu, incl, 1), tot = __shfl_sync(0xffffffffu, incl, 0);
        if (lane == 31) excl = 0;
        double acc = carry + excl;
        if (j < last) p[j] = acc > -800.0 ? (float)exp(log_sigmoid_d(z) + acc) : 0.0f;
        else if (j == last) p[j] = 0;
        carry += tot;
    }
}

/* stickbreak_row_backward: ds_m = g_m A_m (1 - sigma_m) - sigma_m sum_{j<m} g_j A_j (m < n - 1),
 * ds_{n-1} = 0; that sum by a prefix scan, oldest chunk first. g (in) and ds (out) share dp. */
__device__ void row_stick_backward_mem(float *dp, const float *p, const float *s, int n, int lane) {
    double carry = 0;
    int last = n - 1;
    for (int m0 = 0; m0 < n; m0 += 32) {
        int m = m0 + lane;
        double ga = m < last ? (double)dp[m] * (double)p[m] : 0.0, incl = ga;
        for (int o = 1; o < 32; o <<= 1) {
            double t = __shfl_up_sync(0xffffffffu, incl, o);
            if (lane >= o) incl += t;
        }
        double excl = __shfl_up_sync(0xffffffffu, incl, 1), tot = __shfl_sync(0xffffffffu, incl, 31);
        if (lane == 0) excl = 0;
        if (m < last) {
            double sg = 1.0 / (1.0 + exp(-(double)s[m]));
            dp[m] = (float)(ga * (1.0 - sg) - sg * (carry + excl));
        } else if (m == last) {
            dp[m] = 0;
        }
        carry += tot;
    }
}

/* adaptive.c's P(H) (ascending coefficients, as the reference; ADAPT_DESCENDING there is 0) */
__device__ __forceinline__ double adapt_poly_dev(double H, double *dP) {
    const double c[5] = {-0.037, 0.481, -2.3, 4.917, -1.791};
    double P = 0, D = 0, hk = 1;
    for (int k = 0; k < 5; k++) {
        P += c[k] * hk;
        if (k < 4) D += (k + 1) * c[k + 1] * hk;
        hk *= H;
    }
    *dP = D;
    return P;
}

/* p0 = softmax(s) of a warp's row (its max and sum), its entropy, beta and whether it is active */
__device__ double adapt_beta_dev(const float *s, int n, int lane, double *mx_out, double *sum_out, double *H_out,
                                 int *active) {
    float fm = -INFINITY;
    for (int j = lane; j < n; j += 32) fm = fmaxf(fm, s[j]);
    double mx = (double)warp_max_f(fm), sum = 0, H = 0;
    for (int j = lane; j < n; j += 32) sum += exp((double)s[j] - mx);
    sum = warp_sum_d(sum);
    for (int j = lane; j < n; j += 32) {
        double q = exp((double)s[j] - mx) / sum;
        H -= q * log(q + 1e-9);
    }
    H = warp_sum_d(H);
    double dP, P = adapt_poly_dev(H, &dP);
    *mx_out = mx, *sum_out = sum, *H_out = H;
    *active = H > 0.5 && P > 1.0;
    return *active ? P : 1.0;
}

/* adaptive_softmax_row: p = softmax(beta s), in double */
__device__ void row_adaptive_mem(float *p, int n, int lane) {
    if (warp_row_nan(p, n, lane)) {
        for (int j = lane; j < n; j += 32) p[j] = NAN;
        return;
    }
    double mx, s0, H;
    int active;
    double beta = adapt_beta_dev(p, n, lane, &mx, &s0, &H, &active), sum = 0;
    for (int j = lane; j < n; j += 32) sum += exp(beta * ((double)p[j] - mx));
    sum = warp_sum_d(sum);
    __syncwarp();
    for (int j = lane; j < n; j += 32) p[j] = (float)(exp(beta * ((double)p[j] - mx)) / sum);
}

/* adaptive_softmax_row_backward, through beta: ds = beta dz + [active] dbeta P'(H) p0 (h - p0.h),
 * dz = p (g - p.g), dbeta = s.dz, h_j = -log(p0_j + 1e-9) - p0_j / (p0_j + 1e-9). g (in) and ds
 * (out) share dp. */
__device__ void row_adaptive_backward_mem(float *dp, const float *p, const float *s, int n, int lane) {
    double mx, s0, H;
    int active;
    double beta = adapt_beta_dev(s, n, lane, &mx, &s0, &H, &active), pg = 0, qh = 0, dbeta = 0;
    for (int j = lane; j < n; j += 32) {
        pg += (double)p[j] * (double)dp[j];
        double q = exp((double)s[j] - mx) / s0;
        qh += q * (-log(q + 1e-9) - q / (q + 1e-9));
    }
    pg = warp_sum_d(pg);
    qh = warp_sum_d(qh);
    for (int j = lane; j < n; j += 32) dbeta += (double)s[j] * ((double)p[j] * ((double)dp[j] - pg));
    dbeta = warp_sum_d(dbeta);
    double dH = 0;
    if (active) {
        double dP;
        adapt_poly_dev(H, &dP);
        dH = dbeta * dP;
    }
    __syncwarp();
    for (int j = lane; j < n; j += 32) {
        double d = beta * ((double)p[j] * ((double)dp[j] - pg));
        if (active) {
            double q = exp((double)s[j] - mx) / s0;
            d += dH * q * (-log(q + 1e-9) - q / (q + 1e-9) - qh);
        }
        dp[j] = (float)d;
    }
}

/* the three rows' forward on a warp's row of n scores in memory (weights in place) */
__device__ void row_other_forward_mem(float *p, int n, int row, double alpha, int lane) {
    if (row == LCG_ROW_TOPK) row_topk_mem(p, n, alpha, lane);
    else if (row == LCG_ROW_STICK) row_stick_mem(p, n, lane);
    else row_adaptive_mem(p, n, lane);
    __syncwarp();
}

/* the backward of the rows that need the scores s (stick-break, adaptive-softmax); top-k's is
 * softmax's (the callers map it) */
__device__ void row_other_backward_mem(float *dp, const float *p, const float *s, int n, int row, int lane) {
    if (row == LCG_ROW_STICK) row_stick_backward_mem(dp, p, s, n, lane);
    else row_adaptive_backward_mem(dp, p, s, n, lane);
    __syncwarp();
}

/* the plain path of att_row_forward_kernel: keys through memory, any T */
__device__ void att_row_forward_plain(float *p, float f, float m, int row, double alpha, int mode, int t, int T,
                                      int lane) {
    int n = t + 1;
    float mx = -INFINITY;
    int bad = 0;
    for (int j = lane; j < T; j += 32) {
        if (j > t) {
            p[j] = 0;
            continue;
        }
        float s = p[j] * f + m * (float)(j - t);
        p[j] = s;
        bad |= !isfinite(s);
        mx = fmaxf(mx, s);
    }
    if (row >= LCG_ROW_TOPK) { /* top-k, stick-break, adaptive-softmax: on the row in memory */
        __syncwarp();
        row_other_forward_mem(p, n, row, alpha, lane);
        return;
    }
    mx = warp_max_f(mx);
    bad = warp_or_i(bad);
    if (row == LCG_ROW_SOFTMAX) {
        double sum = 0;
        for (int j = lane; j < n; j += 32) {
            float e = expf(p[j] - mx);
            p[j] = e;
            sum += e;
        }
        sum = warp_sum_d(sum);
        float inv = (float)(1.0 / sum);
        for (int j = lane; j < n; j += 32) p[j] *= inv;
        return;
    }
    if (n == 1) {
        if (lane == 0) p[0] = 1;
        return;
    }
    if (bad) {
        for (int j = lane; j < n; j += 32) p[j] = NAN;
        return;
    }
    double am1 = alpha - 1.0, c = 1.0 / am1, dmx = (double)mx;
    double tau = ent_warp_tau_mem(p, n, dmx, alpha, mode, n, lane);
    double sum = 0;
    for (int j = lane; j < n; j += 32) {
        double tt = am1 * ((double)p[j] - dmx) - tau;
        if (tt > 0) sum += ent_pow(tt, c, mode);
    }
    sum = warp_sum_d(sum);
    for (int j = lane; j < n; j += 32) {
        double tt = am1 * ((double)p[j] - dmx) - tau;
        p[j] = tt > 0 ? (float)(ent_pow(tt, c, mode) / sum) : 0.0f;
    }
}

/* the plain path of att_row_backward_kernel; s: the row's scores (stick-break, adaptive-softmax) */
__device__ void att_row_backward_plain(float *dp, const float *p, const float *s, int row, double alpha, int mode,
                                       int t, int T, int lane) {
    int n = t + 1;
    for (int j = n + lane; j < T; j += 32) dp[j] = 0;
    if (row_needs_s(row)) {
        row_other_backward_mem(dp, p, s, n, row, lane);
        return;
    }
    if (row == LCG_ROW_SOFTMAX || row == LCG_ROW_TOPK) { /* top-k's backward is softmax's */
        double dot = 0;
        for (int j = lane; j < n; j += 32) dot += (double)p[j] * dp[j];
        float d = (float)warp_sum_d(dot);
        for (int j = lane; j < n; j += 32) dp[j] = p[j] * (dp[j] - d);
        return;
    }
    double su = 0, sug = 0;
    for (int j = lane; j < n; j += 32) {
        if (!(p[j] > 0)) continue;
        double u = mode == 2 ? 1.0 : mode == 1 ? sqrt((double)p[j]) : pow((double)p[j], 2.0 - alpha);
        su += u;
        sug += u * (double)dp[j];
    }
    su = warp_sum_d(su);
    sug = warp_sum_d(sug);
    double rr = su > 0 ? sug / su : 0;
    for (int j = lane; j < n; j += 32) {
        if (!(p[j] > 0) || !(su > 0)) {
            dp[j] = 0;
            continue;
        }
        double u = mode == 2 ? 1.0 : mode == 1 ? sqrt((double)p[j]) : pow((double)p[j], 2.0 - alpha);
        dp[j] = (float)((double)(float)u * ((double)dp[j] - rr));
    }
}

/* one row of a warp's K keys per lane in registers, s[i] of key j = lane + 32 i: the scaled and
 * biased scores of keys j <= t in, the weights out (0 past t) */
template <int K>
__device__ void row_forward_regs(float *s, int t, int row, double alpha, int mode, int lane) {
    float mx = -INFINITY;
    int bad = 0;
#pragma unroll
    for (int i = 0; i < K; i++)
        if (lane + 32 * i <= t) {
            bad |= !isfinite(s[i]);
            mx = fmaxf(mx, s[i]);
        }
    mx = warp_max_f(mx);
    bad = warp_or_i(bad);
    if (row == LCG_ROW_SOFTMAX) {
        double sum = 0;
#pragma unroll
        for (int i = 0; i < K; i++)
            if (lane + 32 * i <= t) {
                s[i] = expf(s[i] - mx);
                sum += s[i];
            }
        float inv = (float)(1.0 / warp_sum_d(sum));
#pragma unroll
        for (int i = 0; i < K; i++) s[i] = lane + 32 * i <= t ? s[i] * inv : 0.0f;
        return;
    }
    int n = t + 1;
    if (n == 1 || bad) {
#pragma unroll
        for (int i = 0; i < K; i++) s[i] = lane + 32 * i > t ? 0.0f : n == 1 ? 1.0f : NAN;
        return;
    }
    double am1 = alpha - 1.0, c = 1.0 / am1, x[K], sum;
#pragma unroll
    for (int i = 0; i < K; i++) x[i] = lane + 32 * i <= t ? am1 * ((double)s[i] - (double)mx) : -INFINITY;
    double tau = ent_warp_tau<K>(x, 1.0, n, alpha, mode, &sum), inv = 1.0 / sum;
#pragma unroll
    for (int i = 0; i < K; i++) {
        double tt = x[i] - tau;
        s[i] = tt > 0 ? (float)(ent_pow(tt, c, mode) * inv) : 0.0f;
    }
}

/* norm_row_backward on a warp's registers: the weights p and their gradient g (keys j <= t) in,
 * g := the score gradient out (0 past t) */
template <int K>
__device__ void row_backward_regs(float *g, const float *pv, int t, int row, double alpha, int mode, int lane) {
    if (row == LCG_ROW_SOFTMAX) {
        double dot = 0;
#pragma unroll
        for (int i = 0; i < K; i++)
            if (lane + 32 * i <= t) dot += (double)pv[i] * g[i];
        float d = (float)warp_sum_d(dot);
#pragma unroll
        for (int i = 0; i < K; i++) g[i] = lane + 32 * i <= t ? pv[i] * (g[i] - d) : 0.0f;
        return;
    }
    double su = 0, sug = 0, u[K];
#pragma unroll
    for (int i = 0; i < K; i++) {
        u[i] = 0;
        if (!(pv[i] > 0) || lane + 32 * i > t) continue;
        u[i] = mode == 2 ? 1.0 : mode == 1 ? sqrt((double)pv[i]) : pow((double)pv[i], 2.0 - alpha);
        su += u[i];
        sug += u[i] * (double)g[i];
    }
    su = warp_sum_d(su);
    sug = warp_sum_d(sug);
    double rr = su > 0 ? sug / su : 0;
#pragma unroll
    for (int i = 0; i < K; i++)
        g[i] = u[i] > 0 && su > 0 ? (float)((double)(float)u[i] * ((double)g[i] - rr)) : 0.0f;
}

/* one row of raw scores q.k in p[0..T) -> weights, in place (p[j] = 0 for j > t), K keys per lane
 * in registers (T <= 32 K). K = 0: the plain path, any T, one key at a time through memory. */
template <int K>
__global__ void att_row_forward_kernel(float *att, int ld, const float *qscale, const float *slopes, int row,
                                       double alpha, int BH, int T, int H, float scale) {
    int r = blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32, lane = threadIdx.x % 32;
    if (r >= BH * T) return;
    int t = r % T, bh = r / T, b = bh / H, h = bh % H;
    float *p = att + (size_t)r * ld;
    float f = qscale ? scale * qscale[((size_t)b * T + t) * H + h] : scale, m = slopes[h];
    if (row == LCG_ROW_SPARSEMAX) alpha = 2.0;
    int mode = alpha == 2.0 ? 2 : alpha == 1.5 ? 1 : 0;
    if constexpr (K > 0) {
        if (row < LCG_ROW_TOPK) { /* the other rows work on the row in memory: the plain path */
            float s[K];
#pragma unroll
            for (int i = 0; i < K; i++) {
                int j = lane + 32 * i;
                s[i] = j <= t ? p[j] * f + m * (float)(j - t) : 0.0f;
            }
            row_forward_regs<K>(s, t, row, alpha, mode, lane);
#pragma unroll
            for (int i = 0; i < K; i++)
                if (lane + 32 * i < T) p[lane + 32 * i] = s[i];
            return;
        }
    }
    att_row_forward_plain(p, f, m, row, alpha, mode, t, T, lane);
}

/* dP -> dS in place (norm_row_backward), zero past the diagonal; K as the forward's. Stick-break
 * and adaptive-softmax (plain path) read their scores: sc holds the raw q.k of the forward's GEMM
 * (the same product), scaled and biased here in place as the forward's row kernel did. */
template <int K>
__global__ void att_row_backward_kernel(float *dpm, const float *att, float *sc, int ld, const float *qscale,
                                        const float *slopes, int row, double alpha, int BH, int T, int H, float scale) {
    int r = blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32, lane = threadIdx.x % 32;
    if (r >= BH * T) return;
    int t = r % T;
    const float *p = att + (size_t)r * ld;
    float *dp = dpm + (size_t)r * ld;
    if (row == LCG_ROW_SPARSEMAX) alpha = 2.0;
    if (row == LCG_ROW_TOPK) row = LCG_ROW_SOFTMAX; /* softmax's backward on the kept keys */
    int mode = alpha == 2.0 ? 2 : alpha == 1.5 ? 1 : 0;
    if (row_needs_s(row)) {
        int bh = r / T, b = bh / H, h = bh % H;
        float f = qscale ? scale * qscale[((size_t)b * T + t) * H + h] : scale, m = slopes[h], *s = sc + (size_t)r * ld;
        for (int j = lane; j <= t; j += 32) s[j] = s[j] * f + m * (float)(j - t);
        __syncwarp();
        att_row_backward_plain(dp, p, s, row, alpha, mode, t, T, lane);
        return;
    }
    if constexpr (K > 0) {
        float pv[K], gv[K];
#pragma unroll
        for (int i = 0; i < K; i++) {
            int j = lane + 32 * i;
            pv[i] = j <= t ? p[j] : 0.0f;
            gv[i] = j <= t ? dp[j] : 0.0f;
        }
        row_backward_regs<K>(gv, pv, t, row, alpha, mode, lane);
#pragma unroll
        for (int i = 0; i < K; i++)
            if (lane + 32 * i < T) dp[lane + 32 * i] = gv[i];
    } else {
        att_row_backward_plain(dp, p, NULL, row, alpha, mode, t, T, lane);
    }
}

/* ---- evaluation attention (the prefill's, any length, O(n) memory) ---------------------------------
 * Query rows i0 .. i0+R-1 of one sequence, every head: scores against keys 0 .. i0+R-1 by one
 * batched GEMM into a block of R score rows per head (scratch, row stride ld), the row function of
 * training's plain path in place (a warp per row, the keys through memory: any length; the entmax
 * family's threshold by Newton to |f| <= 1e-13 with the support settled, bisection as a last
 * resort: exact per row, no pruning needed for correctness), the diagnostics of the rows >= r0
 * (decoder_diag_add's sums, per row, in double), then P.V by a second batched GEMM. Never n x n:
 * the caller walks the query blocks. */
__device__ __forceinline__ double warp_max_d(double v) {
    for (int o = 16; o > 0; o >>= 1) v = fmax(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}

/* Rows whose candidates fit in registers (nc <= EVAL_REGS_MAX, at most 256: K = 1, 2, 4 or 8 a
 * lane) read them once, instead of once per Newton step (ncu: eval_row_kernel waited on L1TEX for
 * 77% of its stalls). The same expressions in the same order as the memory path (ent_warp_tau with
 * a = alpha - 1 on s - max), so the same bits; cuda/emu checks that with EVAL_REGS_MAX 0. */
#ifndef EVAL_REGS_MAX
#define EVAL_REGS_MAX 256
#endif
template <int K>
__device__ double eval_tau_regs(const float *cand, int nc, double dmx, double alpha, int mode, int n, int lane,
                                double *sum) {
    double x[K];
#pragma unroll
    for (int i = 0; i < K; i++) x[i] = lane + 32 * i < nc ? (double)cand[lane + 32 * i] - dmx : -INFINITY;
    return ent_warp_tau<K>(x, alpha - 1.0, n, alpha, mode, sum);
}

/* The entmax family's row of eval_row_kernel, any length: as att_row_forward_plain, but after the
 * max the keys that can be in the support (x = (alpha-1)(s - max) > -1: tau >= -1, Newton rises
 * from there) are compacted, in key order, into cand (a warp ballot per 32 keys), and Newton and
 * the bisection run over those alone; the weights are then written over the whole row. The same
 * threshold as the plain path's up to the order of its double sums. */
__device__ void eval_row_entmax(float *p, float *cand, float f, float m, double alpha, int mode, int t, int T,
                                int lane) {
    int n = t + 1;
    float mx = -INFINITY;
    int bad = 0;
    for (int j = lane; j < T; j += 32) {
        if (j > t) {
            p[j] = 0;
            continue;
        }
        float s = p[j] * f + m * (float)(j - t);
        p[j] = s;
        bad |= !isfinite(s);
        mx = fmaxf(mx, s);
    }
    mx = warp_max_f(mx);
    bad = warp_or_i(bad);
    if (n == 1) {
        if (lane == 0) p[0] = 1;
        return;
    }
    if (bad) {
        for (int j = lane; j < n; j += 32) p[j] = NAN;
        return;
    }
    double am1 = alpha - 1.0, c = 1.0 / am1, dmx = (double)mx;
    int nc = 0;
    for (int j0 = 0; j0 < n; j0 += 32) { /* warp-uniform: every lane takes every step */
        int j = j0 + lane;
        float sj = j < n ? p[j] : 0.0f;
        int keep = j < n && am1 * ((double)sj - dmx) > -1.0;
        unsigned b = __ballot_sync(0xffffffffu, keep);
        if (keep) cand[nc + __popc(b & ((1u << lane) - 1u))] = sj;
        nc += __popc(b);
    }
    __syncwarp();
    double tau, sum = 0;
    if (nc <= 32 && EVAL_REGS_MAX >= 32)
        tau = eval_tau_regs<1>(cand, nc, dmx, alpha, mode, n, lane, &sum);
    else if (nc <= 64 && EVAL_REGS_MAX >= 64)
        tau = eval_tau_regs<2>(cand, nc, dmx, alpha, mode, n, lane, &sum);
    else if (nc <= 128 && EVAL_REGS_MAX >= 128)
        tau = eval_tau_regs<4>(cand, nc, dmx, alpha, mode, n, lane, &sum);
    else if (nc <= 256 && EVAL_REGS_MAX >= 256)
        tau = eval_tau_regs<8>(cand, nc, dmx, alpha, mode, n, lane, &sum);
    else {
        tau = ent_warp_tau_mem(cand, nc, dmx, alpha, mode, n, lane);
        for (int j = lane; j < nc; j += 32) {
            double tt = am1 * ((double)cand[j] - dmx) - tau;
            if (tt > 0) sum += ent_pow(tt, c, mode);
        }
        sum = warp_sum_d(sum);
    }
    for (int j = lane; j < n; j += 32) {
        double tt = am1 * ((double)p[j] - dmx) - tau;
        p[j] = tt > 0 ? (float)(ent_pow(tt, c, mode) / sum) : 0.0f;
    }
}

__global__ void eval_row_kernel(float *S, float *cand, double *diag, const float *qscale, const float *slopes, int ld,
                                int row, double alpha, int i0, int R, int nk, int r0, int H, float scale) {
    int w = blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32, lane = threadIdx.x % 32;
    if (w >= R * H) return;
    int h = w / R, r = w % R, t = i0 + r;
    float *p = S + ((size_t)h * R + r) * ld;
    float f = qscale ? scale * qscale[(size_t)t * H + h] : scale;
    if (row == LCG_ROW_SPARSEMAX) alpha = 2.0;
    int mode = alpha == 2.0 ? 2 : alpha == 1.5 ? 1 : 0;
    if (row_is_entmax(row) && cand)
        eval_row_entmax(p, cand + ((size_t)h * R + r) * ld, f, slopes[h], alpha, mode, t, nk, lane);
    else
        att_row_forward_plain(p, f, slopes[h], row, alpha, mode, t, nk, lane);
    if (!diag || t < r0) return;
    double ent = 0, mx = 0; /* as decoder_diag_add: a NaN weight joins the entropy and the support */
    int sup = 0, nan = 0;
    for (int j = lane; j <= t; j += 32) {
        float pj = p[j];
        nan |= pj != pj;
        if (pj <= 0) continue;
        ent -= (double)pj * log((double)pj);
        sup++;
        mx = pj > mx ? pj : mx;
    }
    ent = warp_sum_d(ent);
    sup = warp_sum_i(sup);
    mx = warp_max_d(mx);
    nan = warp_or_i(nan);
    if (lane) return;
    double *a = diag + ((size_t)(t - r0) * H + h) * 3;
    if (row_is_entmax(row) && nan) { /* the prefill's bad entmax row: NaN diagnostics (the other rows'
                                      * NaN weights reach the sums as decoder_diag_add's) */
        a[0] = a[1] = a[2] = NAN;
        return;
    }
    a[0] = ent, a[1] = sup, a[2] = mx;
}

/* The relevant-key mass (the mechanism columns): rows of interest a .. a+nr-1, all inside the
 * block whose weights eval_row_kernel just left in S (row t, head h at S + (h R + t - i0) ld, the
 * row function's own weights: every normalizer and position encoding as applied); a warp per
 * (row, head) sums the weights at the row's keys in double, lane-strided, then a butterfly. */
__global__ void eval_mass_kernel(double *mass, const float *S, const int *row, const int *off, const int *len,
                                 const int *key, int a, int nr, int l, int L, int i0, int R, int H, int ld) {
    int w = blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32, lane = threadIdx.x % 32;
    if (w >= nr * H) return;
    int r = a + w / H, h = w % H, nk = len[r];
    const float *p = S + ((size_t)h * R + (row[r] - i0)) * ld;
    const int *k = key + off[r];
    double m = 0;
    for (int q = lane; q < nk; q += 32) m += (double)p[k[q]];
    m = warp_sum_d(m);
    if (lane == 0) mass[((size_t)r * L + l) * H + h] = m;
}

/* ---- fused attention: one block per (b, h), the head's keys and values in shared memory ----------
 * Forward: a warp per query row computes its scores from registers (q) and shared memory (k), the
 * row function in registers, writes the weights (kept for the backward) and p.V. Backward: the
 * weights and the score gradients of the whole T x T block in shared memory; a warp per row for
 * dp = dO.V, dS and dq, then a warp per key for dk and dv (sums over the rows, in row order per
 * lane group). D is a template (8, 16, 32, 64), T <= 128 (K <= 4 keys per lane). */
enum { FUSED_WARPS = 8 };

static size_t fused_fwd_smem(int T, int D) {
    return sizeof(float) * ((size_t)T * (D + 1) + (size_t)T * D + FUSED_WARPS * (size_t)gk_att_ld(T));
}
static size_t fused_bwd_smem(int T, int D) { /* ... + a row of scores per warp (stick-break, adaptive) */
    return sizeof(float) * (2 * (size_t)T * (D + 1) + 2 * (size_t)T * D + 2 * (size_t)T * gk_att_ld(T) +
                            FUSED_WARPS * (size_t)gk_att_ld(T));
}

/* acc of a lane = sum_j w[j] M[j][d] over j in [j0, j1) for its d = lane % D (and d + 32 e for
 * D = 64); for D < 32 the G = 32 / D lane groups g = lane / D take j = j0 + g, j0 + g + G, ... and a
 * butterfly adds the groups, so every lane ends with the full sums. Four accumulators per lane,
 * j = j0 + g + 4 G i + G r into accumulator r, added in a fixed order: the chains are latency. */
template <int D>
__device__ __forceinline__ void wsum_rows(float *acc /* D > 32 ? D / 32 : 1 */, const float *w, int wstride,
                                          const float *M, int mstride, int j0, int j1, int lane) {
    enum { G = D >= 32 ? 1 : 32 / D, E = D > 32 ? D / 32 : 1 };
    int d = D >= 32 ? lane : lane % D, g = D >= 32 ? 0 : lane / D;
    float a[4][E];
#pragma unroll
    for (int r = 0; r < 4; r++)
#pragma unroll
        for (int e = 0; e < E; e++) a[r][e] = 0;
    int j = j0 + g;
    for (; j + 3 * G < j1; j += 4 * G)
#pragma unroll
        for (int r = 0; r < 4; r++) {
            float wj = w[(size_t)(j + r * G) * wstride];
#pragma unroll
            for (int e = 0; e < E; e++) a[r][e] += wj * M[(size_t)(j + r * G) * mstride + d + 32 * e];
        }
    for (; j < j1; j += G) {
        float wj = w[(size_t)j * wstride];
#pragma unroll
        for (int e = 0; e < E; e++) a[0][e] += wj * M[(size_t)j * mstride + d + 32 * e];
    }
#pragma unroll
    for (int e = 0; e < E; e++) {
        float v = (a[0][e] + a[1][e]) + (a[2][e] + a[3][e]);
#pragma unroll
        for (int o = D; o < 32; o <<= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
        acc[e] = v;
    }
}

template <int D, int K>
__global__ void __launch_bounds__(32 * FUSED_WARPS)
    att_fused_forward_kernel(float *out, float *att, int ld, const float *qkv, const float *qscale,
                             const float *slopes, int row, double alpha, int T, int H, float scale) {
    extern __shared__ float sh[];
    int HD = H * D, C3 = 3 * HD, bh = blockIdx.x, b = bh / H, h = bh % H;
    int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    float *k_sh = sh, *v_sh = k_sh + T * (D + 1), *p_sh = v_sh + T * D + warp * ld;
    const float *base = qkv + (size_t)b * T * C3 + h * D;
    for (int i = threadIdx.x; i < T * D; i += blockDim.x) {
        int t = i / D, d = i % D;
        k_sh[t * (D + 1) + d] = base[(size_t)t * C3 + HD + d];
        v_sh[i] = base[(size_t)t * C3 + 2 * HD + d];
    }
    __syncthreads();
    if (row == LCG_ROW_SPARSEMAX) alpha = 2.0;
    int mode = alpha == 2.0 ? 2 : alpha == 1.5 ? 1 : 0;
    float m = slopes[h];
    for (int t = warp; t < T; t += FUSED_WARPS) {
        float q[D];
#pragma unroll
        for (int d = 0; d < D; d++) q[d] = base[(size_t)t * C3 + d];
        float f = qscale ? scale * qscale[((size_t)b * T + t) * H + h] : scale, s[K];
#pragma unroll
        for (int i = 0; i < K; i++) {
            int j = lane + 32 * i;
            s[i] = 0;
            if (j <= t) {
                float a = 0;
#pragma unroll
                for (int d = 0; d < D; d++) a += q[d] * k_sh[j * (D + 1) + d];
                s[i] = a * f + m * (float)(j - t);
            }
        }
        if (row >= LCG_ROW_TOPK) { /* top-k, stick-break, adaptive-softmax: on the warp's row in p_sh */
#pragma unroll
            for (int i = 0; i < K; i++)
                if (lane + 32 * i <= t) p_sh[lane + 32 * i] = s[i];
            __syncwarp();
            row_other_forward_mem(p_sh, t + 1, row, alpha, lane);
#pragma unroll
            for (int i = 0; i < K; i++) s[i] = lane + 32 * i <= t ? p_sh[lane + 32 * i] : 0.0f;
            __syncwarp();
        } else {
            row_forward_regs<K>(s, t, row, alpha, mode, lane);
        }
        float *p = att + ((size_t)bh * T + t) * ld;
#pragma unroll
        for (int i = 0; i < K; i++) {
            int j = lane + 32 * i;
            if (j < T) p[j] = s[i], p_sh[j] = s[i];
        }
        __syncwarp();
        float acc[D > 32 ? D / 32 : 1];
        wsum_rows<D>(acc, p_sh, 1, v_sh, D, 0, t + 1, lane);
        float *o = out + ((size_t)b * T + t) * HD + h * D;
        if constexpr (D >= 32) {
#pragma unroll
            for (int e = 0; e < D / 32; e++) o[lane + 32 * e] = acc[e];
        } else if (lane < D) {
            o[lane] = acc[0];
        }
        __syncwarp();
    }
}

template <int D, int K>
__global__ void __launch_bounds__(32 * FUSED_WARPS)
    att_fused_backward_kernel(float *dqkv, float *dqscale, const float *dout, const float *qkv, const float *qscale,
                              const float *slopes, const float *att, int ld, int row, double alpha, int T, int H,
                              float scale) {
    extern __shared__ float sh[];
    int HD = H * D, C3 = 3 * HD, bh = blockIdx.x, b = bh / H, h = bh % H;
    int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    float *k_sh = sh, *v_sh = k_sh + T * (D + 1), *qf_sh = v_sh + T * (D + 1), *do_sh = qf_sh + T * D;
    float *p_sh = do_sh + T * D, *ds_sh = p_sh + T * ld, *s_sh = ds_sh + T * ld + warp * ld;
    const float *base = qkv + (size_t)b * T * C3 + h * D, *dob = dout + (size_t)b * T * HD + h * D;
    float *dbase = dqkv + (size_t)b * T * C3 + h * D;
    for (int i = threadIdx.x; i < T * D; i += blockDim.x) {
        int t = i / D, d = i % D;
        float f = qscale ? scale * qscale[((size_t)b * T + t) * H + h] : scale;
        k_sh[t * (D + 1) + d] = base[(size_t)t * C3 + HD + d];
        v_sh[t * (D + 1) + d] = base[(size_t)t * C3 + 2 * HD + d];
        qf_sh[i] = f * base[(size_t)t * C3 + d];
        do_sh[i] = dob[(size_t)t * HD + d];
    }
    for (int i = threadIdx.x; i < T * T; i += blockDim.x) {
        int t = i / T, j = i % T;
        p_sh[t * ld + j] = j <= t ? att[((size_t)bh * T + t) * ld + j] : 0.0f;
    }
    __syncthreads();
    if (row == LCG_ROW_SPARSEMAX) alpha = 2.0;
    if (row == LCG_ROW_TOPK) row = LCG_ROW_SOFTMAX; /* softmax's backward on the kept keys */
    int mode = alpha == 2.0 ? 2 : alpha == 1.5 ? 1 : 0;
    float m = slopes[h];
    /* rows: dp_j = dO_t.v_j, ds = row backward, u = sum_j ds_j k_j, dq = f u, dqscale = scale q.u */
    for (int t = warp; t < T; t += FUSED_WARPS) {
        float g[D];
#pragma unroll
        for (int d = 0; d < D; d++) g[d] = do_sh[t * D + d];
        float pv[K], gv[K];
#pragma unroll
        for (int i = 0; i < K; i++) {
            int j = lane + 32 * i;
            pv[i] = gv[i] = 0;
            if (j <= t) {
                float a = 0;
#pragma unroll
                for (int d = 0; d < D; d++) a += g[d] * v_sh[j * (D + 1) + d];
                gv[i] = a;
                pv[i] = p_sh[t * ld + j];
            }
        }
        if (row_needs_s(row)) { /* stick-break, adaptive: the forward's scores again, the same code */
            float q[D], f = qscale ? scale * qscale[((size_t)b * T + t) * H + h] : scale, *dsr = ds_sh + t * ld;
#pragma unroll
            for (int d = 0; d < D; d++) q[d] = base[(size_t)t * C3 + d];
#pragma unroll
            for (int i = 0; i < K; i++) {
                int j = lane + 32 * i;
                if (j <= t) {
                    float a = 0;
#pragma unroll
                    for (int d = 0; d < D; d++) a += q[d] * k_sh[j * (D + 1) + d];
                    s_sh[j] = a * f + m * (float)(j - t);
                    dsr[j] = gv[i];
                }
            }
            __syncwarp();
            row_other_backward_mem(dsr, p_sh + t * ld, s_sh, t + 1, row, lane);
#pragma unroll
            for (int i = 0; i < K; i++) gv[i] = lane + 32 * i <= t ? dsr[lane + 32 * i] : 0.0f;
            __syncwarp();
        } else {
            row_backward_regs<K>(gv, pv, t, row, alpha, mode, lane);
        }
#pragma unroll
        for (int i = 0; i < K; i++)
            if (lane + 32 * i < T) ds_sh[t * ld + lane + 32 * i] = gv[i];
        __syncwarp();
        float u[D > 32 ? D / 32 : 1];
        wsum_rows<D>(u, ds_sh + t * ld, 1, k_sh, D + 1, 0, t + 1, lane);
        size_t ci = ((size_t)b * T + t) * H + h;
        float f = qscale ? scale * qscale[ci] : scale;
        double dot = 0;
        float *dq = dbase + (size_t)t * C3;
        if constexpr (D >= 32) {
#pragma unroll
            for (int e = 0; e < D / 32; e++) {
                dq[lane + 32 * e] = f * u[e];
                dot += (double)(base[(size_t)t * C3 + lane + 32 * e] * u[e]);
            }
            dot = warp_sum_d(dot);
        } else {
            if (lane < D) dq[lane] = f * u[0], dot = (double)(base[(size_t)t * C3 + lane] * u[0]);
            dot = warp_sum_d(dot);
        }
        if (dqscale && lane == 0) dqscale[ci] = (float)(scale * dot);
        __syncwarp();
    }
    __syncthreads();
    /* keys: dv_j = sum_t p_tj dO_t, dk_j = sum_t ds_tj (f q)_t over t >= j */
    for (int j = warp; j < T; j += FUSED_WARPS) {
        float dv[D > 32 ? D / 32 : 1], dk[D > 32 ? D / 32 : 1];
        wsum_rows<D>(dv, p_sh + j, ld, do_sh, D, j, T, lane);
        wsum_rows<D>(dk, ds_sh + j, ld, qf_sh, D, j, T, lane);
        float *dkj = dbase + (size_t)j * C3 + HD, *dvj = dkj + HD;
        if constexpr (D >= 32) {
#pragma unroll
            for (int e = 0; e < D / 32; e++) dkj[lane + 32 * e] = dk[e], dvj[lane + 32 * e] = dv[e];
        } else if (lane < D) {
            dkj[lane] = dk[0], dvj[lane] = dv[0];
        }
    }
}

/* the fused kernels take D in {8, 16, 32, 64}, T <= 128 and what shared memory holds; by default
 * (1) only D <= 16, where they measured faster than the cuBLAS products (copy architecture, D 16:
 * +4%; mqmtar, D 32: -7% of the training step, H200 TF32), 2: every D they take */
int gk_attention_fused = 1;
static int att_fused_ok(int T, int D) {
    if (!gk_attention_fused || gk_attention_plain || T > 128 || (D != 8 && D != 16 && D != 32 && D != 64)) return 0;
    if (gk_attention_fused == 1 && D > 16) return 0;
    return fused_bwd_smem(T, D) <= 200 * 1024;
}

template <int D, int K>
static void att_fused_launch(int fwd, float *out_or_dqkv, float *att_dqs, const float *qkv, const float *qscale,
                             const float *slopes_or_dout, const float *att, int row, double alpha, int B, int T,
                             int H, const float *slopes_b) {
    float scale = (float)(1.0 / sqrt((double)D));
    int ld = gk_att_ld(T);
    if (fwd) {
        size_t smem = fused_fwd_smem(T, D);
        CK(cudaFuncSetAttribute(att_fused_forward_kernel<D, K>, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem));
        att_fused_forward_kernel<D, K><<<B * H, 32 * FUSED_WARPS, smem, g_stream>>>(
            out_or_dqkv, att_dqs, ld, qkv, qscale, slopes_or_dout, row, alpha, T, H, scale);
        CK_LAUNCH("att_fused_forward");
    } else {
        size_t smem = fused_bwd_smem(T, D);
        CK(cudaFuncSetAttribute(att_fused_backward_kernel<D, K>, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem));
        att_fused_backward_kernel<D, K><<<B * H, 32 * FUSED_WARPS, smem, g_stream>>>(
            out_or_dqkv, att_dqs, slopes_or_dout, qkv, qscale, slopes_b, att, ld, row, alpha, T, H, scale);
        CK_LAUNCH("att_fused_backward");
    }
}

template <int D>
static void att_fused_k(int fwd, float *a0, float *a1, const float *qkv, const float *qscale, const float *a2,
                        const float *att, int row, double alpha, int B, int T, int H, const float *sl) {
    switch ((T + 31) / 32) {
    case 1: att_fused_launch<D, 1>(fwd, a0, a1, qkv, qscale, a2, att, row, alpha, B, T, H, sl); break;
    case 2: att_fused_launch<D, 2>(fwd, a0, a1, qkv, qscale, a2, att, row, alpha, B, T, H, sl); break;
    case 3: att_fused_launch<D, 3>(fwd, a0, a1, qkv, qscale, a2, att, row, alpha, B, T, H, sl); break;
    default: att_fused_launch<D, 4>(fwd, a0, a1, qkv, qscale, a2, att, row, alpha, B, T, H, sl);
    }
}

static void att_fused(int fwd, float *a0, float *a1, const float *qkv, const float *qscale, const float *a2,
                      const float *att, int row, double alpha, int B, int T, int H, int D, const float *sl) {
    switch (D) {
    case 8: att_fused_k<8>(fwd, a0, a1, qkv, qscale, a2, att, row, alpha, B, T, H, sl); break;
    case 16: att_fused_k<16>(fwd, a0, a1, qkv, qscale, a2, att, row, alpha, B, T, H, sl); break;
    case 32: att_fused_k<32>(fwd, a0, a1, qkv, qscale, a2, att, row, alpha, B, T, H, sl); break;
    default: att_fused_k<64>(fwd, a0, a1, qkv, qscale, a2, att, row, alpha, B, T, H, sl);
    }
}

/* the row kernels' launch: K = ceil(T / 32) keys per lane in registers up to T = 256, else (or
 * with gk_attention_plain) the plain path */
#define ROW_DISPATCH(KERNEL, ...)                                                                          \
    do {                                                                                                   \
        unsigned nb_ = nblocks((size_t)BH * T, 8);                                                          \
        switch (gk_attention_plain ? 0 : (T + 31) / 32) {                                                  \
        case 1: KERNEL<1><<<nb_, 256, 0, g_stream>>>(__VA_ARGS__); break;                                  \
        case 2: KERNEL<2><<<nb_, 256, 0, g_stream>>>(__VA_ARGS__); break;                                  \
        case 3: KERNEL<3><<<nb_, 256, 0, g_stream>>>(__VA_ARGS__); break;                                  \
        case 4: KERNEL<4><<<nb_, 256, 0, g_stream>>>(__VA_ARGS__); break;                                  \
        case 5: KERNEL<5><<<nb_, 256, 0, g_stream>>>(__VA_ARGS__); break;                                  \
        case 6: KERNEL<6><<<nb_, 256, 0, g_stream>>>(__VA_ARGS__); break;                                  \
        case 7: KERNEL<7><<<nb_, 256, 0, g_stream>>>(__VA_ARGS__); break;                                  \
        case 8: KERNEL<8><<<nb_, 256, 0, g_stream>>>(__VA_ARGS__); break;                                  \
        default: KERNEL<0><<<nb_, 256, 0, g_stream>>>(__VA_ARGS__);                                        \
        }                                                                                                  \
        CK_LAUNCH(#KERNEL);                                                                                \
    } while (0)

/* per (b,h,t) row: U (in dq) -> dq = f U, qf = f q, dqscale = scale q.U; rows of q, dq and qf
 * at base + b bs + h hs + t ts (split heads or in place) */
typedef struct {
    long long bs, hs, ts;
} att_rows;
__global__ void att_dq_kernel(float *dq, att_rows dql, float *qf, att_rows qfl, float *dqscale, const float *q,
                              att_rows ql, const float *qscale, int B, int T, int H, int D, float scale) {
    int r = blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32, lane = threadIdx.x % 32;
    if (r >= B * H * T) return;
    int t = r % T, bh = r / T, b = bh / H, h = bh % H;
    size_t ci = ((size_t)b * T + t) * H + h;
    float f = qscale ? scale * qscale[ci] : scale;
    const float *qr = q + b * ql.bs + h * ql.hs + t * ql.ts;
    float *ur = dq + b * dql.bs + h * dql.hs + t * dql.ts, *qfr = qf + b * qfl.bs + h * qfl.hs + t * qfl.ts;
    double dot = 0;
    for (int d = lane; d < D; d += 32) {
        float u = ur[d];
        dot += (double)(qr[d] * u);
        ur[d] = f * u;
        qfr[d] = f * qr[d];
    }
    dot = warp_sum_d(dot);
    if (dqscale && lane == 0) dqscale[ci] = (float)(scale * dot);
}

/* Two ways through the products. Direct (D % 4 == 0: every head's rows 16-byte aligned):
 * batched GEMMs over arrays of per-(b, h) pointers read q, k, v in place in qkv and write the
 * output and gradients in place. Split: the heads copied to (B, H, T, D) blocks for strided
 * batched GEMMs, and back. */
static int att_direct(int D) { return D % 4 == 0 && !gk_attention_split; }

void gk_attention_forward(float *out, float *att, float *scratch, const float *qkv, const float *qscale,
                          const float *slopes, int row, double alpha, int B, int T, int H, int D) {
    size_t BH = (size_t)B * H, n = BH * T * D;
    int ld = gk_att_ld(T), HD = H * D, C3 = 3 * HD;
    long long sTT = (long long)T * ld, sTD = (long long)T * D;
    float scale = (float)(1.0 / sqrt((double)D));
    float *buf = scratch + att_ptr_floats(BH) + BH * T * ld;
    if (att_fused_ok(T, D)) {
        att_fused(1, out, att, qkv, qscale, slopes, NULL, row, alpha, B, T, H, D, NULL);
        return;
    }
    if (att_direct(D)) {
        const float **P = (const float **)scratch;
        att_mats mm = {{{qkv, (long long)T * C3, D}, {qkv + HD, (long long)T * C3, D}, {qkv + 2 * HD, (long long)T * C3, D},
                        {att, (long long)H * sTT, sTT}, {out, (long long)T * HD, D}}};
        att_fill_ptrs_kernel<<<nblocks(5 * BH, 256), 256, 0, g_stream>>>(P, mm, 5, (int)BH, H);
        CK_LAUNCH("att_fill_ptrs");
        const float *const *Q = P, *const *K = P + BH, *const *V = P + 2 * BH, *const *A = P + 3 * BH;
        gemm_rm_ptr(0, 1, T, T, D, Q, C3, K, C3, (float *const *)A, ld, (int)BH); /* raw q.k */
        ROW_DISPATCH(att_row_forward_kernel, att, ld, qscale, slopes, row, alpha, (int)BH, T, H, scale);
        gemm_rm_ptr(0, 0, T, D, T, A, ld, V, C3, (float *const *)(P + 4 * BH), HD, (int)BH);
        return;
    }
    float *qkvp = buf, *y = buf + 3 * n;
    split_qkv_kernel<<<nblocks(3 * n, 256), 256, 0, g_stream>>>(qkvp, qkv, B, T, H, D);
    CK_LAUNCH("split_qkv");
    const float *q = qkvp, *k = qkvp + n, *v = qkvp + 2 * n;
    /* raw scores q.k for every (i, j): the row kernel masks and scales */
    gemm_rm(0, 1, T, T, D, 1.0f, q, D, sTD, k, D, sTD, 0.0f, att, ld, sTT, (int)BH);
    ROW_DISPATCH(att_row_forward_kernel, att, ld, qscale, slopes, row, alpha, (int)BH, T, H, scale);
    gemm_rm(0, 0, T, D, T, 1.0f, att, ld, sTT, v, D, sTD, 0.0f, y, D, sTD, (int)BH);
    merge_heads_kernel<<<nblocks(n, 256), 256, 0, g_stream>>>(out, y, B, T, H, D, 1);
    CK_LAUNCH("merge_heads");
}

void gk_attention_backward(float *dqkv, float *dqscale, float *scratch, const float *dout, const float *qkv,
                           const float *qscale, const float *att, const float *slopes, int row, double alpha, int B,
                           int T, int H, int D) {
    size_t BH = (size_t)B * H, n = BH * T * D;
    int ld = gk_att_ld(T), HD = H * D, C3 = 3 * HD;
    long long sTT = (long long)T * ld, sTD = (long long)T * D;
    float scale = (float)(1.0 / sqrt((double)D));
    float *dP = scratch + att_ptr_floats(BH), *buf = dP + BH * T * ld, *sc = buf + 8 * n;
    unsigned nrow = nblocks(BH * T, 8);
    int need_s = row == LCG_ROW_STICK || row == LCG_ROW_ADAPTIVE; /* the scores again: sc */
    if (att_fused_ok(T, D)) {
        att_fused(0, dqkv, dqscale, qkv, qscale, dout, att, row, alpha, B, T, H, D, slopes);
        return;
    }
    if (att_direct(D)) {
        float *qf = buf; /* (B, T, H, D) */
        const float **P = (const float **)scratch;
        long long bq = (long long)T * C3, bo = (long long)T * HD;
        att_mats mm = {{{qkv + HD, bq, D}, {qkv + 2 * HD, bq, D}, {att, (long long)H * sTT, sTT}, {dout, bo, D},
                        {dP, (long long)H * sTT, sTT}, {dqkv, bq, D}, {dqkv + HD, bq, D}, {dqkv + 2 * HD, bq, D},
                        {qf, bo, D}, {qkv, bq, D}, {sc, (long long)H * sTT, sTT}}};
        att_fill_ptrs_kernel<<<nblocks(ATT_NPTR * BH, 256), 256, 0, g_stream>>>(P, mm, ATT_NPTR, (int)BH, H);
        CK_LAUNCH("att_fill_ptrs");
        const float *const *K = P, *const *V = P + BH, *const *A = P + 2 * BH, *const *DO = P + 3 * BH;
        const float *const *DP = P + 4 * BH, *const *QF = P + 8 * BH;
        float *const *DQ = (float *const *)(P + 5 * BH), *const *DK = (float *const *)(P + 6 * BH);
        float *const *DV = (float *const *)(P + 7 * BH);
        gemm_rm_ptr(0, 1, T, T, D, DO, HD, V, C3, (float *const *)DP, ld, (int)BH); /* dP = dY V^T */
        gemm_rm_ptr(1, 0, T, D, T, A, ld, DO, HD, DV, C3, (int)BH);                 /* dV = P^T dY */
        if (need_s) /* raw q.k, the forward's product */
            gemm_rm_ptr(0, 1, T, T, D, P + 9 * BH, C3, K, C3, (float *const *)(P + 10 * BH), ld, (int)BH);
        ROW_DISPATCH(att_row_backward_kernel, dP, att, sc, ld, qscale, slopes, row, alpha, (int)BH, T, H, scale);
        gemm_rm_ptr(0, 0, T, D, T, DP, ld, K, C3, DQ, C3, (int)BH); /* U = dS K */
        att_rows inq = {bq, D, C3}, inqf = {bo, D, HD};
        att_dq_kernel<<<nrow, 256, 0, g_stream>>>(dqkv, inq, qf, inqf, dqscale, qkv, inq, qscale, B, T, H, D, scale);
        CK_LAUNCH("att_dq");
        gemm_rm_ptr(1, 0, T, D, T, DP, ld, QF, HD, DK, C3, (int)BH); /* dK = dS^T (f q) */
        return;
    }
    float *qkvp = buf, *dy = qkvp + 3 * n, *dq = dy + n, *dk = dq + n, *dv = dk + n, *qf = dv + n;
    const float *q = qkvp, *k = qkvp + n, *v = qkvp + 2 * n;
    split_qkv_kernel<<<nblocks(3 * n, 256), 256, 0, g_stream>>>(qkvp, qkv, B, T, H, D);
    CK_LAUNCH("split_qkv");
    split_heads_kernel<<<nblocks(n, 256), 256, 0, g_stream>>>(dy, dout, B, T, H, D);
    CK_LAUNCH("split_heads");
    gemm_rm(0, 1, T, T, D, 1.0f, dy, D, sTD, v, D, sTD, 0.0f, dP, ld, sTT, (int)BH);  /* dP = dY V^T */
    gemm_rm(1, 0, T, D, T, 1.0f, att, ld, sTT, dy, D, sTD, 0.0f, dv, D, sTD, (int)BH); /* dV = P^T dY */
    if (need_s) gemm_rm(0, 1, T, T, D, 1.0f, q, D, sTD, k, D, sTD, 0.0f, sc, ld, sTT, (int)BH); /* raw q.k */
    ROW_DISPATCH(att_row_backward_kernel, dP, att, sc, ld, qscale, slopes, row, alpha, (int)BH, T, H, scale);
    gemm_rm(0, 0, T, D, T, 1.0f, dP, ld, sTT, k, D, sTD, 0.0f, dq, D, sTD, (int)BH); /* U = dS K */
    att_rows sp = {(long long)H * sTD, sTD, D};
    att_dq_kernel<<<nrow, 256, 0, g_stream>>>(dq, sp, qf, sp, dqscale, q, sp, qscale, B, T, H, D, scale);
    CK_LAUNCH("att_dq");
    gemm_rm(1, 0, T, D, T, 1.0f, dP, ld, sTT, qf, D, sTD, 0.0f, dk, D, sTD, (int)BH); /* dK = dS^T (f q) */
    merge_heads_kernel<<<nblocks(3 * n, 256), 256, 0, g_stream>>>(dqkv, dq, B, T, H, D, 3);
    CK_LAUNCH("merge_qkv");
}

/* ---- length scaling (lenscale.c) ------------------------------------------------------------------
 * adapt's pre-activations z = a @ [wb | wg] are GEMMs (saved for the backward), and so are its
 * input and weight gradients; the per-row math is in double, as the CPU's. */
__device__ __forceinline__ double softplus_d(double z) { return z > 20 ? z : log1p(exp(z)); }
__device__ __forceinline__ double sigmoid_d(double z) { return 1.0 / (1.0 + exp(-z)); }

/* row n's position: pos[n] (device) or, pos NULL, n % T + pos0 (training: pos0 = 0; evaluation's
 * extend: T = N, pos0 = the first row's) */
__global__ void lenscale_forward_kernel(float *c, const float *z, gk_lenscale_w w, int kind, int h0, int N, int T,
                                        int pos0, const int *pos, int H) {
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= (size_t)N * H) return;
    int n = (int)(i / H), h = (int)(i % H), Hs = H - h0;
    if (h < h0) {
        c[i] = 1;
        return;
    }
    int k = h - h0;
    double l = log((double)(pos ? pos[n] : n % T + pos0) + 2.0), v = 1;
    if (kind == LCG_SCALE_SSMAX) v = w.beta[k] * l;
    else if (kind == LCG_SCALE_LEARN) v = 1.0 + w.beta[k] * pow(l, (double)w.gamma[k]);
    else if (kind == LCG_SCALE_ADAPT) {
        double zb = (double)w.bb[k] + z[(size_t)n * 2 * Hs + k], zg = (double)w.bg[k] + z[(size_t)n * 2 * Hs + Hs + k];
        v = 1.0 + softplus_d(zb) * pow(l, 2.0 * tanh(zg));
    }
    c[i] = (float)v;
}
static void lenscale_forward(float *c, float *z, const float *a, const gk_lenscale_w *w, int kind, int h0, int N,
                             int T, int pos0, const int *pos, int C, int H) {
    int Hs = H - h0;
    if (kind == LCG_SCALE_ADAPT) {
        gemm_rm(0, 0, N, Hs, C, 1.0f, a, C, 0, w->wb, Hs, 0, 0.0f, z, 2 * Hs, 0, 1);
        gemm_rm(0, 0, N, Hs, C, 1.0f, a, C, 0, w->wg, Hs, 0, 0.0f, z + Hs, 2 * Hs, 0, 1);
    }
    lenscale_forward_kernel<<<nblocks((size_t)N * H, 128), 128, 0, g_stream>>>(c, z, *w, kind, h0, N, T, pos0, pos,
                                                                                H);
    CK_LAUNCH("lenscale_forward");
}
void gk_lenscale_forward(float *c, float *z, const float *a, const gk_lenscale_w *w, int kind, int h0, int N, int T,
                         int C, int H) {
    lenscale_forward(c, z, a, w, kind, h0, N, T, 0, NULL, C, H);
}
void gk_lenscale_forward_at(float *c, float *z, const float *a, const gk_lenscale_w *w, int kind, int h0, int N,
                            int pos0, int C, int H) {
    lenscale_forward(c, z, a, w, kind, h0, N, N, pos0, NULL, C, H);
}
void gk_lenscale_forward_rows(float *c, float *z, const float *a, const gk_lenscale_w *w, int kind, int h0, int N,
                              const int *pos, int C, int H) {
    lenscale_forward(c, z, a, w, kind, h0, N, N, 0, pos, C, H);
}

/* dz[n] = (dz_b[Hs] | dz_g[Hs]): the gradients of the two per-head quantities each kind learns
 * (ssmax: beta; learn: beta, gamma; adapt: the pre-activations) */
__global__ void lenscale_dz_kernel(float *dz, const float *dc, const float *z, gk_lenscale_w w, int kind, int h0,
                                   int N, int T, int H) {
    int Hs = H - h0;
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= (size_t)N * Hs) return;
    int n = (int)(i / Hs), k = (int)(i % Hs);
    double l = log((double)(n % T) + 2.0), ll = log(l), d = dc[(size_t)n * H + h0 + k], zb = 0, zg = 0;
    if (d != 0) {
        if (kind == LCG_SCALE_SSMAX) zb = d * l;
        else if (kind == LCG_SCALE_LEARN) {
            double lg = pow(l, (double)w.gamma[k]);
            zb = d * lg;
            zg = d * w.beta[k] * lg * ll;
        } else {
            double b = (double)w.bb[k] + z[(size_t)n * 2 * Hs + k], g = (double)w.bg[k] + z[(size_t)n * 2 * Hs + Hs + k];
            double th = tanh(g), le = pow(l, 2.0 * th);
            zb = d * sigmoid_d(b) * le;
            zg = d * softplus_d(b) * le * ll * 2.0 * (1 - th * th);
        }
    }
    dz[(size_t)n * 2 * Hs + k] = (float)zb;
    dz[(size_t)n * 2 * Hs + Hs + k] = (float)zg;
}
/* part[p][c] = sum of src[n][c] (rows ld apart) over the rows of chunk p */
__global__ void colsum_part_kernel(double *part, const float *src, int N, int ncol, int ld) {
    int c = blockIdx.x * blockDim.x + threadIdx.x, p = blockIdx.y;
    if (c >= ncol) return;
    int n1 = min(N, (p + 1) * COLSUM_ROWS);
    double s = 0;
    for (int n = p * COLSUM_ROWS; n < n1; n++) s += src[(size_t)n * ld + c];
    part[(size_t)p * ncol + c] = s;
}
/* d0[c] += sum_p part[p][c], d1[c] += sum_p part[p][ncol + c] (d1 may be NULL): a warp per column,
 * lanes over the parts, a butterfly to finish (colsum_finish_kernel's order) */
__global__ void colsum2_finish_kernel(float *d0, float *d1, const double *part, int n_parts, int ncol) {
    int c = blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32, lane = threadIdx.x % 32;
    if (c >= ncol) return;
    double s0 = 0, s1 = 0;
    for (int p = lane; p < n_parts; p += 32) {
        s0 += part[(size_t)p * 2 * ncol + c];
        s1 += part[(size_t)p * 2 * ncol + ncol + c];
    }
    s0 = warp_sum_d(s0);
    s1 = warp_sum_d(s1);
    if (lane) return;
    d0[c] += (float)s0;
    if (d1) d1[c] += (float)s1;
}

void gk_lenscale_backward(float *da, gk_lenscale_w *g, float *dz, double *part, const float *dc, const float *z,
                          const float *a, const gk_lenscale_w *w, int kind, int h0, int N, int T, int C, int H) {
    int Hs = H - h0, np = (int)gk_colsum_parts(N);
    lenscale_dz_kernel<<<nblocks((size_t)N * Hs, 128), 128, 0, g_stream>>>(dz, dc, z, *w, kind, h0, N, T, H);
    CK_LAUNCH("lenscale_dz");
    /* bias-like sums: beta (ssmax, learn), gamma (learn), bb, bg (adapt) */
    colsum_part_kernel<<<dim3(nblocks(2 * Hs, 64), np), 64, 0, g_stream>>>(part, dz, N, 2 * Hs, 2 * Hs);
    CK_LAUNCH("lenscale_bias_part");
    float *g0 = kind == LCG_SCALE_ADAPT ? g->bb : g->beta, *g1 = kind == LCG_SCALE_ADAPT ? g->bg : g->gamma;
    colsum2_finish_kernel<<<nblocks(Hs, 8), 256, 0, g_stream>>>(g0, kind == LCG_SCALE_SSMAX ? NULL : g1, part, np, Hs);
    CK_LAUNCH("lenscale_bias_finish");
    if (kind != LCG_SCALE_ADAPT) return;
    gemm_rm(0, 1, N, C, Hs, 1.0f, dz, 2 * Hs, 0, w->wb, Hs, 0, 1.0f, da, C, 0, 1);      /* da += dzb wb^T */
    gemm_rm(0, 1, N, C, Hs, 1.0f, dz + Hs, 2 * Hs, 0, w->wg, Hs, 0, 1.0f, da, C, 0, 1); /* da += dzg wg^T */
    gemm_rm(1, 0, C, Hs, N, 1.0f, a, C, 0, dz, 2 * Hs, 0, 1.0f, g->wb, Hs, 0, 1);      /* gwb += a^T dzb */
    gemm_rm(1, 0, C, Hs, N, 1.0f, a, C, 0, dz + Hs, 2 * Hs, 0, 1.0f, g->wg, Hs, 0, 1); /* gwg += a^T dzg */
}

/* ---- loss ------------------------------------------------------------------------------------------ */
__global__ void crossentropy_kernel(float *losses, float *dlogits, const float *logits, const int *targets,
                                    const unsigned char *mask, float scale, const float *scale_dev, int N, int V) {
    if (scale_dev) scale = *scale_dev;
    int n = blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32, lane = threadIdx.x % 32;
    if (n >= N) return;
    const float *l = logits + (size_t)n * V;
    if (!mask[n]) {
        if (losses && lane == 0) losses[n] = 0;
        if (dlogits)
            for (int v = lane; v < V; v += 32) dlogits[(size_t)n * V + v] = 0;
        return;
    }
    float mx = -INFINITY;
    for (int v = lane; v < V; v += 32) mx = fmaxf(mx, l[v]);
    mx = warp_max_f(mx);
    double s = 0;
    for (int v = lane; v < V; v += 32) s += exp((double)(l[v] - mx));
    s = warp_sum_d(s);
    int tg = targets[n];
    if (losses && lane == 0) losses[n] = (float)(log(s) + mx - l[tg]);
    if (dlogits)
        for (int v = lane; v < V; v += 32) {
            float p = (float)(exp((double)(l[v] - mx)) / s);
            dlogits[(size_t)n * V + v] = (p - (v == tg)) * scale;
        }
}
void gk_crossentropy_forward(float *losses, const float *logits, const int *targets, const unsigned char *mask, int N,
                             int V) {
    crossentropy_kernel<<<nblocks(N, 8), 256, 0, g_stream>>>(losses, NULL, logits, targets, mask, 0, NULL, N, V);
    CK_LAUNCH("crossentropy_forward");
}
void gk_crossentropy_backward(float *dlogits, const float *logits, const int *targets, const unsigned char *mask,
                              float scale, int N, int V) {
    crossentropy_kernel<<<nblocks(N, 8), 256, 0, g_stream>>>(NULL, dlogits, logits, targets, mask, scale, NULL, N, V);
    CK_LAUNCH("crossentropy_backward");
}
void gk_crossentropy_backward_dev(float *dlogits, const float *logits, const int *targets, const unsigned char *mask,
                                  const float *scale, int N, int V) {
    crossentropy_kernel<<<nblocks(N, 8), 256, 0, g_stream>>>(NULL, dlogits, logits, targets, mask, 0, scale, N, V);
    CK_LAUNCH("crossentropy_backward");
}

/* ---- fixed-order sums ------------------------------------------------------------------------------
 * A block of SUM_THREADS sums a strided slice per thread, then a shared-memory tree. */
enum { SUM_THREADS = 512, SQSUM_BLOCKS = 264 };
__device__ double block_sum_d(double v) {
    __shared__ double sh[SUM_THREADS];
    sh[threadIdx.x] = v;
    __syncthreads();
    for (int s = blockDim.x / 2; s > 0; s >>= 1) {
        if ((int)threadIdx.x < s) sh[threadIdx.x] += sh[threadIdx.x + s];
        __syncthreads();
    }
    return sh[0];
}
__global__ void sum_kernel(double *out, const float *x, size_t n) {
    double s = 0;
    for (size_t i = threadIdx.x; i < n; i += blockDim.x) s += x[i];
    s = block_sum_d(s);
    if (threadIdx.x == 0) out[0] = s;
}
void gk_sum(double *out, const float *x, size_t n) {
    sum_kernel<<<1, SUM_THREADS, 0, g_stream>>>(out, x, n);
    CK_LAUNCH("sum");
}
size_t gk_sqsum_parts(void) { return SQSUM_BLOCKS; }
__global__ void sqsum_part_kernel(double *part, const float *x, size_t n) {
    double s = 0;
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
        s += (double)x[i] * x[i];
    s = block_sum_d(s);
    if (threadIdx.x == 0) part[blockIdx.x] = s;
}
__global__ void sum_parts_kernel(double *out, const double *part, int n) {
    double s = 0;
    for (int i = threadIdx.x; i < n; i += blockDim.x) s += part[i];
    s = block_sum_d(s);
    if (threadIdx.x == 0) out[0] = s;
}
void gk_sqsum(double *out, double *part, const float *x, size_t n) {
    sqsum_part_kernel<<<SQSUM_BLOCKS, SUM_THREADS, 0, g_stream>>>(part, x, n);
    CK_LAUNCH("sqsum_part");
    sum_parts_kernel<<<1, SUM_THREADS, 0, g_stream>>>(out, part, SQSUM_BLOCKS);
    CK_LAUNCH("sum_parts");
}

/* ---- clipping + AdamW (optim.c) --------------------------------------------------------------------- */
__global__ void clip_adamw_kernel(float *p, float *g, float *m, float *v, const double *sqnorm, double clip, float b1,
                                  float b2, float eps, float decay, float step, float rbc2, size_t n) {
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    double norm = sqrt(sqnorm[0]);
    if (!isfinite(norm)) return; /* as optim.c's caller: a non-finite norm changes nothing */
    float gi = g[i];
    if (clip > 0 && norm > clip) {
        gi *= (float)(clip / (norm + 1e-6));
        g[i] = gi;
    }
    float mi = b1 * m[i] + (1 - b1) * gi, vi = b2 * v[i] + (1 - b2) * gi * gi;
    m[i] = mi;
    v[i] = vi;
    p[i] = p[i] * decay - step * mi / (sqrtf(vi) * rbc2 + eps);
}
void gk_clip_adamw(float *p, float *g, float *m, float *v, const double *sqnorm, double clip, float b1, float b2,
                   float eps, float decay, float step, float rbc2, size_t n) {
    clip_adamw_kernel<<<nblocks(n, 256), 256, 0, g_stream>>>(p, g, m, v, sqnorm, clip, b1, b2, eps, decay, step, rbc2,
                                                            n);
    CK_LAUNCH("clip_adamw");
}

/* ---- evaluation attention: the host side (see eval_row_kernel) -------------------------------------- */
int gk_eval_rows = 0, gk_eval_compact = 1;

int gk_eval_block_rows(int n, int H) {
    if (gk_eval_rows > 0) return gk_eval_rows < n ? gk_eval_rows : n;
    size_t ld = (size_t)gk_eval_ld(n), budget = (size_t)1 << 31; /* 2 GiB of score rows */
    size_t R = budget / (sizeof(float) * (size_t)H * ld);
    R = R < 32 ? 32 : R > 1024 ? 1024 : R / 32 * 32;
    return (int)(R < (size_t)n ? R : (size_t)n);
}

int gk_eval_ld(int n) { return (n + 31) / 32 * 32; }

void gk_eval_attention(float *out, double *diag, float *scratch, const float *qkv, const float *qscale,
                       const float *slopes, int row, double alpha, int i0, int R, int r0, int H, int D, int ld) {
    int HD = H * D, nk = i0 + R;
    gemm_rm(0, 1, R, nk, D, 1.0f, qkv + (size_t)i0 * 3 * HD, 3 * HD, D, qkv + HD, 3 * HD, D, 0.0f, scratch, ld,
            (long long)R * ld, H);
    int entmax = row == LCG_ROW_ENTMAX || row == LCG_ROW_SPARSEMAX; /* the others: no candidates */
    float *cand = entmax && gk_eval_compact ? scratch + (size_t)H * R * ld : NULL;
    eval_row_kernel<<<nblocks((size_t)R * H, 8), 256, 0, g_stream>>>(scratch, cand, diag, qscale, slopes, ld, row, alpha,
                                                                     i0, R, nk, r0, H, (float)(1.0 / sqrt((double)D)));
    CK_LAUNCH("eval_row");
    gemm_rm(0, 0, R, D, nk, 1.0f, scratch, ld, (long long)R * ld, qkv + 2 * HD, 3 * HD, D, 0.0f,
            out + (size_t)i0 * HD, HD, D, H);
}

void gk_eval_mass(double *mass, const float *scratch, const int *row, const int *off, const int *len, const int *key,
                  int a, int nr, int l, int L, int i0, int R, int H, int ld) {
    if (nr <= 0) return;
    eval_mass_kernel<<<nblocks((size_t)nr * H, 8), 256, 0, g_stream>>>(mass, scratch, row, off, len, key, a, nr, l, L,
                                                                      i0, R, H, ld);
    CK_LAUNCH("eval_mass");
}

/* ---- decoding: one new row per sequence, each on its own cache -------------------------------------- */
/* row a's q/k/v (qkv[a]) to its cache row: RoPE at position pos[a] on the q and k parts (cs: the
 * table, NULL: none; rope_kernel's arithmetic), v copied */
__global__ void decode_place_kernel(float *cache, long long slot_stride, const float *qkv, const float *cs,
                                    const int *slot, const int *pos, int A, int H, int D) {
    int HD = H * D, half = D / 2;
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= (size_t)A * 3 * HD) return;
    int a = (int)(i / (3 * HD)), e = (int)(i % (3 * HD)), t = pos[a];
    const float *x = qkv + (size_t)a * 3 * HD;
    float *dst = cache + slot[a] * slot_stride + (size_t)t * 3 * HD;
    if (!cs || e >= 2 * HD) {
        dst[e] = x[e];
        return;
    }
    int h0 = e / D * D, k = e % D;
    if (k < half) {
        float c = cs[(size_t)t * D + k], sk = cs[(size_t)t * D + half + k], x1 = x[h0 + k], x2 = x[h0 + k + half];
        dst[e] = x1 * c - x2 * sk;
    } else {
        k -= half;
        float c = cs[(size_t)t * D + k], sk = cs[(size_t)t * D + half + k], x1 = x[h0 + k], x2 = x[h0 + k + half];
        dst[e] = x2 * c + x1 * sk;
    }
}

/* a block per (row a, head h): the scores of q (the cache's row pos[a]) against keys 0 .. pos[a] into
 * S's row, eval_row_kernel's row function on it (warp 0), then p.V: the threads in G = blockDim / D
 * groups of D, group g summing keys g, g + G, ..., the groups added in order */
__global__ void decode_attention_kernel(float *out, float *S, float *cand, const float *cache, long long slot_stride,
                                        const int *slot, const int *pos, const float *qscale, const float *slopes,
                                        int row, double alpha, int H, int D, int ld, float scale) {
    extern __shared__ float sh[]; /* q [D], then the groups' sums [G][D] */
    int a = blockIdx.x / H, h = blockIdx.x % H, t = pos[a], HD = H * D, tid = threadIdx.x, lane = tid % 32;
    const float *base = cache + slot[a] * slot_stride;
    float *p = S + (size_t)blockIdx.x * ld, *q = sh, *part = sh + D;
    for (int e = tid; e < D; e += blockDim.x) q[e] = base[(size_t)t * 3 * HD + h * D + e];
    __syncthreads();
    for (int j = tid; j <= t; j += blockDim.x) {
        const float *k = base + (size_t)j * 3 * HD + HD + h * D;
        float sc = 0;
        for (int e = 0; e < D; e++) sc += q[e] * k[e];
        p[j] = sc;
    }
    __syncthreads();
    if (tid < 32) {
        float f = qscale ? scale * qscale[(size_t)a * H + h] : scale;
        if (row == LCG_ROW_SPARSEMAX) alpha = 2.0;
        int mode = alpha == 2.0 ? 2 : alpha == 1.5 ? 1 : 0;
        if (row_is_entmax(row) && cand)
            eval_row_entmax(p, cand + (size_t)blockIdx.x * ld, f, slopes[h], alpha, mode, t, t + 1, lane);
        else
            att_row_forward_plain(p, f, slopes[h], row, alpha, mode, t, t + 1, lane);
    }
    __syncthreads();
    int G = (int)blockDim.x / D, g = tid / D, d = tid % D;
    if (g < G) {
        float acc = 0;
        for (int j = g; j <= t; j += G) {
            float w = p[j];
            if (w != 0) acc += w * base[(size_t)j * 3 * HD + 2 * HD + h * D + d];
        }
        part[g * D + d] = acc;
    }
    __syncthreads();
    if (tid < D) {
        float v = 0;
        for (int k = 0; k < G; k++) v += part[k * D + tid];
        out[(size_t)a * HD + h * D + tid] = v;
    }
}

void gk_decode_place(float *cache, long long slot_stride, const float *qkv, const float *cs, const int *slot,
                     const int *pos, int A, int H, int D) {
    size_t n = (size_t)A * 3 * H * D;
    decode_place_kernel<<<nblocks(n, 256), 256, 0, g_stream>>>(cache, slot_stride, qkv, cs, slot, pos, A, H, D);
    CK_LAUNCH("decode_place");
}

void gk_decode_attention(float *out, float *scratch, const float *cache, long long slot_stride, const int *slot,
                         const int *pos, const float *qscale, const float *slopes, int row, double alpha, int A, int H,
                         int D, int ld) {
    int threads = D > 256 ? D : 256, G = threads / D;
    float *cand = row_is_entmax(row) && gk_eval_compact ? scratch + (size_t)A * H * ld : NULL;
    size_t smem = sizeof(float) * ((size_t)D + (size_t)G * D);
    decode_attention_kernel<<<A * H, threads, smem, g_stream>>>(out, scratch, cand, cache, slot_stride, slot, pos,
                                                                qscale, slopes, row, alpha, H, D, ld,
                                                                (float)(1.0 / sqrt((double)D)));
    CK_LAUNCH("decode_attention");
}
