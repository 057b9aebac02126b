/*
 * gpu_kernels.cu: the CUDA kernels of the training step (see gpu_kernels.h), fp32, each the
 * device twin of a CPU kernel in kernels/, doing the same arithmetic in the same precision
 * (double where the CPU uses double: norms' sums of squares, softmax sums, every entmax
 * threshold). Matmuls, including the attention's batched T x T products, go through cuBLAS.
 *
 * Determinism: every reduction has a fixed shape and order (warp butterflies, per-chunk
 * partial sums finished by one thread per column, single-block tree sums); no atomics.
 *
 * Not here: fusion beyond the obvious, the streaming (O(n) memory) evaluation attention,
 * bf16, CUDA graphs (the model captures them, if it does).
 */
#include "gpu_kernels.h"
extern "C" {
#include "../kernels/kernels.h"
}

#include <cublas_v2.h>
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
void gpu_memset0(void *d, size_t bytes) { CK(cudaMemsetAsync(d, 0, bytes, g_stream)); }
void gpu_sync(void) { CK(cudaStreamSynchronize(g_stream)); }

void gk_init(gpu_precision prec) {
    if (prec == GPU_BF16) {
        fprintf(stderr, "lcgbench: --precision bf16 is not implemented on the GPU yet\n");
        exit(1);
    }
    if (!g_cublas) CKB(cublasCreate(&g_cublas));
    CKB(cublasSetStream(g_cublas, g_stream));
    /* pedantic FP32: no reduced-precision shortcut anywhere in the library's choice */
    CKB(cublasSetMathMode(g_cublas, prec == GPU_TF32 ? CUBLAS_TF32_TENSOR_OP_MATH : CUBLAS_PEDANTIC_MATH));
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
static void gemm_rm(int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda, long long sA,
                    const float *B, int ldb, long long sB, float beta, float *C, int ldc, long long sC, int batch) {
    CKB(cublasSgemmStridedBatched(g_cublas, tb ? CUBLAS_OP_T : CUBLAS_OP_N, ta ? CUBLAS_OP_T : CUBLAS_OP_N, N, M,
                                  K, &alpha, B, ldb, sB, A, lda, sA, &beta, C, ldc, sC, batch));
}

void gk_matmul_forward(float *out, const float *inp, const float *w, int N, int IC, int OC) {
    gemm_rm(0, 0, N, OC, IC, 1.0f, inp, IC, 0, w, OC, 0, 0.0f, out, OC, 0, 1);
}

void gk_matmul_backward(float *dinp, float *dw, const float *dout, const float *inp, const float *w, int N, int IC,
                        int OC, int acc_dinp) {
    if (dinp) gemm_rm(0, 1, N, IC, OC, 1.0f, dout, OC, 0, w, OC, 0, acc_dinp ? 1.0f : 0.0f, dinp, IC, 0, 1);
    gemm_rm(1, 0, IC, OC, N, 1.0f, inp, IC, 0, dout, OC, 0, 1.0f, dw, OC, 0, 1);
}

/* ---- fixed-order column sums: chunks of COLSUM_ROWS rows -> double partials -> one sum each ---- */
enum { COLSUM_ROWS = 128 };
size_t gk_colsum_parts(int N) { return (size_t)(N + COLSUM_ROWS - 1) / COLSUM_ROWS; }

/* dst[c] += sum_p part[p][c], p in order */
__global__ void colsum_finish_kernel(float *dst, const double *part, int n_parts, int ncol) {
    int c = blockIdx.x * blockDim.x + threadIdx.x;
    if (c >= ncol) return;
    double s = 0;
    for (int p = 0; p < n_parts; p++) s += part[(size_t)p * ncol + c];
    dst[c] += (float)s;
}
static void colsum_finish(float *dst, const double *part, int n_parts, int ncol) {
    colsum_finish_kernel<<<nblocks(ncol, 256), 256, 0, g_stream>>>(dst, part, n_parts, ncol);
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

__global__ void encoder_backward_kernel(float *demb, const float *dout, const int *off, const int *idx, int C,
                                        float scale) {
    int v = blockIdx.x, c = blockIdx.y * blockDim.x + threadIdx.x;
    if (c >= C) return;
    float acc = demb[(size_t)v * C + c];
    for (int i = off[v]; i < off[v + 1]; i++) acc += dout[(size_t)idx[i] * C + c] * scale;
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
__global__ void rmsnorm_forward_kernel(float *out, float *rstd, const float *inp, const float *w, int N, int C) {
    int n = blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32, lane = threadIdx.x % 32;
    if (n >= N) return;
    const float *x = inp + (size_t)n * C;
    double ss = 0;
    for (int c = lane; c < C; c += 32) ss += (double)x[c] * x[c];
    ss = warp_sum_d(ss);
    float r = (float)(1.0 / sqrt(ss / C + LCG_RMS_EPS));
    float *o = out + (size_t)n * C;
    for (int c = lane; c < C; c += 32) o[c] = x[c] * r * (1 + w[c]);
    if (lane == 0) rstd[n] = r;
}
void gk_rmsnorm_forward(float *out, float *rstd, const float *inp, const float *w, int N, int C) {
    rmsnorm_forward_kernel<<<nblocks(N, 8), 256, 0, g_stream>>>(out, rstd, inp, w, N, C);
    CK_LAUNCH("rmsnorm_forward");
}

__global__ void rmsnorm_backward_kernel(float *dinp, const float *dout, const float *inp, const float *w,
                                        const float *rstd, int N, int C) {
    int n = blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32, lane = threadIdx.x % 32;
    if (n >= N) return;
    const float *x = inp + (size_t)n * C, *g = dout + (size_t)n * C;
    double dot = 0;
    for (int c = lane; c < C; c += 32) dot += (double)g[c] * (1 + w[c]) * x[c];
    dot = warp_sum_d(dot);
    float r = rstd[n];
    float k = (float)(dot * r * r * r / C);
    float *dx = dinp + (size_t)n * C;
    for (int c = lane; c < C; c += 32) dx[c] += r * g[c] * (1 + w[c]) - x[c] * k;
}
/* part[p][c] = sum over rows of chunk p of g*x*r */
__global__ void rmsnorm_dw_part_kernel(double *part, const float *dout, const float *inp, const float *rstd, int N,
                                       int C) {
    int c = blockIdx.x * blockDim.x + threadIdx.x, p = blockIdx.y;
    if (c >= C) return;
    int n1 = min(N, (p + 1) * COLSUM_ROWS);
    double s = 0;
    for (int n = p * COLSUM_ROWS; n < n1; n++) s += (double)(dout[(size_t)n * C + c] * inp[(size_t)n * C + c] * rstd[n]);
    part[(size_t)p * C + c] = s;
}
void gk_rmsnorm_backward(float *dinp, float *dw, double *part, const float *dout, const float *inp, const float *w,
                         const float *rstd, int N, int C) {
    rmsnorm_backward_kernel<<<nblocks(N, 8), 256, 0, g_stream>>>(dinp, dout, inp, w, rstd, N, C);
    CK_LAUNCH("rmsnorm_backward");
    int np = (int)gk_colsum_parts(N);
    dim3 grid(nblocks(C, 128), np);
    rmsnorm_dw_part_kernel<<<grid, 128, 0, g_stream>>>(part, dout, inp, rstd, N, C);
    CK_LAUNCH("rmsnorm_dw_part");
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
 * functions run one warp per row of the block, in place. */
size_t gk_attention_scratch(int B, int T, int H, int D) {
    size_t BH = (size_t)B * H;
    return BH * T * T + 5 * BH * T * D; /* dP | dy (the forward's y) | dq dk dv | f*q */
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

/* one row of scores (raw q.k in p[0..T)) -> weights, in place; p[j] = 0 for j > t */
__global__ void att_row_forward_kernel(float *att, const float *qscale, const float *slopes, int row, double alpha,
                                       int BH, int T, int H, float scale) {
    int r = blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32, lane = threadIdx.x % 32;
    if (r >= BH * T) return;
    int t = r % T, bh = r / T, b = bh / H, h = bh % H;
    float *p = att + (size_t)r * T;
    float f = qscale ? scale * qscale[((size_t)b * T + t) * H + h] : scale, m = slopes[h];
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
    int n = t + 1;
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
    /* alpha-entmax / sparsemax (entmax.c): x = (alpha-1)(s - max) in double, tau in [-1, 0) */
    if (row == LCG_ROW_SPARSEMAX) alpha = 2.0;
    if (n == 1) {
        if (lane == 0) p[0] = 1;
        return;
    }
    if (bad) {
        for (int j = lane; j < n; j += 32) p[j] = NAN;
        return;
    }
    double am1 = alpha - 1.0, c = 1.0 / am1, dmx = (double)mx;
    int mode = alpha == 2.0 ? 2 : alpha == 1.5 ? 1 : 0;
    /* Newton from the lower bound -1: f convex and decreasing, so the iterates rise to the root */
    double tau = -1.0;
    int prev_k = -1, ok = 0;
    for (int it = 0; it < 100; it++) {
        double fs = 0, fps = 0;
        int k = 0;
        for (int j = lane; j < n; j += 32) {
            double tt = am1 * ((double)p[j] - dmx) - tau;
            if (tt <= 0) continue;
            double tc1 = mode == 2 ? 1.0 : mode == 1 ? tt : pow(tt, c - 1.0);
            fs += tc1 * tt;
            fps += tc1;
            k++;
        }
        double f = warp_sum_d(fs) - 1.0, fp = warp_sum_d(fps) * c;
        k = warp_sum_i(k);
        if (!isfinite(f) || !(fp > 0)) break;
        if (fabs(f) <= 1e-13 && k == prev_k) {
            ok = 1;
            break;
        }
        double next = tau + f / fp;
        if (next == tau) {
            ok = fabs(f) <= 1e-9;
            break;
        }
        tau = next;
        prev_k = k;
    }
    if (!ok) { /* bisection on [-1, -n^(1-alpha)], as entmax.c's last resort */
        double lo = -1.0, dt = -pow((double)n, 1.0 - alpha) - lo, tm = lo;
        for (int it = 0; it < 80; it++) {
            dt *= 0.5;
            tm = lo + dt;
            double fs = 0;
            for (int j = lane; j < n; j += 32) {
                double tt = am1 * ((double)p[j] - dmx) - tm;
                if (tt > 0) fs += ent_pow(tt, c, mode);
            }
            if (warp_sum_d(fs) - 1.0 >= 0) lo = tm;
        }
        tau = lo;
    }
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

/* dP -> dS in place (norm_row_backward), zero past the diagonal */
__global__ void att_row_backward_kernel(float *dpm, const float *att, int row, double alpha, int BH, int T) {
    int r = blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32, lane = threadIdx.x % 32;
    if (r >= BH * T) return;
    int t = r % T, n = t + 1;
    const float *p = att + (size_t)r * T;
    float *dp = dpm + (size_t)r * T;
    for (int j = n + lane; j < T; j += 32) dp[j] = 0;
    if (row == LCG_ROW_SOFTMAX) {
        double dot = 0;
        for (int j = lane; j < n; j += 32) dot += (double)p[j] * dp[j];
        float d = (float)warp_sum_d(dot);
        for (int j = lane; j < n; j += 32) dp[j] = p[j] * (dp[j] - d);
        return;
    }
    if (row == LCG_ROW_SPARSEMAX) alpha = 2.0;
    int mode = alpha == 2.0 ? 2 : alpha == 1.5 ? 1 : 0;
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

/* per (b,h,t) row: U (in dq) -> dq = f U, qf = f q, dqscale = scale q.U */
__global__ void att_dq_kernel(float *dq, float *qf, float *dqscale, const float *q, const float *qscale, int B,
                              int T, int H, int D, float scale) {
    int r = blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32, lane = threadIdx.x % 32;
    if (r >= B * H * T) return;
    int t = r % T, bh = r / T, b = bh / H, h = bh % H;
    size_t ci = ((size_t)b * T + t) * H + h;
    float f = qscale ? scale * qscale[ci] : scale;
    const float *qr = q + (size_t)r * D;
    float *ur = dq + (size_t)r * D, *qfr = qf + (size_t)r * D;
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

void gk_attention_forward(float *out, float *att, float *qkvp, float *scratch, const float *qkv, const float *qscale,
                          const float *slopes, int row, double alpha, int B, int T, int H, int D) {
    size_t BH = (size_t)B * H, n = BH * T * D;
    float scale = (float)(1.0 / sqrt((double)D));
    float *y = scratch + BH * T * T;
    split_qkv_kernel<<<nblocks(3 * n, 256), 256, 0, g_stream>>>(qkvp, qkv, B, T, H, D);
    CK_LAUNCH("split_qkv");
    const float *q = qkvp, *k = qkvp + n, *v = qkvp + 2 * n;
    /* raw scores q.k for every (i, j): the row kernel masks and scales */
    gemm_rm(0, 1, T, T, D, 1.0f, q, D, (long long)T * D, k, D, (long long)T * D, 0.0f, att, T, (long long)T * T,
            (int)BH);
    att_row_forward_kernel<<<nblocks(BH * T, 8), 256, 0, g_stream>>>(att, qscale, slopes, row, alpha, (int)BH, T, H,
                                                                      scale);
    CK_LAUNCH("att_row_forward");
    gemm_rm(0, 0, T, D, T, 1.0f, att, T, (long long)T * T, v, D, (long long)T * D, 0.0f, y, D, (long long)T * D,
            (int)BH);
    merge_heads_kernel<<<nblocks(n, 256), 256, 0, g_stream>>>(out, y, B, T, H, D, 1);
    CK_LAUNCH("merge_heads");
}

void gk_attention_backward(float *dqkv, float *dqscale, float *scratch, const float *dout, const float *qkvp,
                           const float *qscale, const float *att, int row, double alpha, int B, int T, int H, int D) {
    size_t BH = (size_t)B * H, n = BH * T * D;
    long long sTT = (long long)T * T, sTD = (long long)T * D;
    float scale = (float)(1.0 / sqrt((double)D));
    float *dP = scratch, *dy = dP + BH * T * T, *dq = dy + n, *dk = dq + n, *dv = dk + n, *qf = dv + n;
    const float *q = qkvp, *k = qkvp + n, *v = qkvp + 2 * n;
    split_heads_kernel<<<nblocks(n, 256), 256, 0, g_stream>>>(dy, dout, B, T, H, D);
    CK_LAUNCH("split_heads");
    gemm_rm(0, 1, T, T, D, 1.0f, dy, D, sTD, v, D, sTD, 0.0f, dP, T, sTT, (int)BH);  /* dP = dY V^T */
    gemm_rm(1, 0, T, D, T, 1.0f, att, T, sTT, dy, D, sTD, 0.0f, dv, D, sTD, (int)BH); /* dV = P^T dY */
    att_row_backward_kernel<<<nblocks(BH * T, 8), 256, 0, g_stream>>>(dP, att, row, alpha, (int)BH, T);
    CK_LAUNCH("att_row_backward");
    gemm_rm(0, 0, T, D, T, 1.0f, dP, T, sTT, k, D, sTD, 0.0f, dq, D, sTD, (int)BH); /* U = dS K */
    att_dq_kernel<<<nblocks(BH * T, 8), 256, 0, g_stream>>>(dq, qf, dqscale, q, qscale, B, T, H, D, scale);
    CK_LAUNCH("att_dq");
    gemm_rm(1, 0, T, D, T, 1.0f, dP, T, sTT, qf, D, sTD, 0.0f, dk, D, sTD, (int)BH); /* dK = dS^T (f q) */
    merge_heads_kernel<<<nblocks(3 * n, 256), 256, 0, g_stream>>>(dqkv, dq, B, T, H, D, 3);
    CK_LAUNCH("merge_qkv");
}

/* ---- length scaling (lenscale.c) ------------------------------------------------------------------ */
__device__ __forceinline__ double softplus_d(double z) { return z > 20 ? z : log1p(exp(z)); }
__device__ __forceinline__ double sigmoid_d(double z) { return 1.0 / (1.0 + exp(-z)); }

__device__ void adapt_z(const float *a, const float *wb, const float *bb, const float *wg, const float *bg, int k,
                        int C, int Hs, double *zb, double *zg) {
    double b = bb[k], g = bg[k];
    for (int e = 0; e < C; e++) {
        b += (double)a[e] * wb[(size_t)e * Hs + k];
        g += (double)a[e] * wg[(size_t)e * Hs + k];
    }
    *zb = b;
    *zg = g;
}

__global__ void lenscale_forward_kernel(float *c, const float *a, gk_lenscale_w w, int kind, int h0, int N, int T,
                                        int C, int H) {
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= (size_t)N * H) return;
    int n = (int)(i / H), h = (int)(i % H), Hs = H - h0;
    if (h < h0) {
        c[i] = 1;
        return;
    }
    int k = h - h0;
    double l = log((double)(n % T) + 2.0), v = 1;
    if (kind == LCG_SCALE_SSMAX) v = w.beta[k] * l;
    else if (kind == LCG_SCALE_LEARN) v = 1.0 + w.beta[k] * pow(l, (double)w.gamma[k]);
    else if (kind == LCG_SCALE_ADAPT) {
        double zb, zg;
        adapt_z(a + (size_t)n * C, w.wb, w.bb, w.wg, w.bg, k, C, Hs, &zb, &zg);
        v = 1.0 + softplus_d(zb) * pow(l, 2.0 * tanh(zg));
    }
    c[i] = (float)v;
}
void gk_lenscale_forward(float *c, const float *a, const gk_lenscale_w *w, int kind, int h0, int N, int T, int C,
                         int H) {
    lenscale_forward_kernel<<<nblocks((size_t)N * H, 128), 128, 0, g_stream>>>(c, a, *w, kind, h0, N, T, C, H);
    CK_LAUNCH("lenscale_forward");
}

size_t gk_lenscale_scratch(int N, int C, int H, int h0) {
    size_t Hs = (size_t)(H - h0);
    return 2 * (size_t)N * Hs + gk_colsum_parts(N) * 2 * (size_t)C * Hs;
}

/* zz[n][k] = (dz_b, dz_g): the gradients of the two per-head quantities each kind learns
 * (ssmax: beta; learn: beta, gamma; adapt: the pre-activations) */
__global__ void lenscale_dz_kernel(double *zz, const float *dc, const float *a, gk_lenscale_w w, int kind, int h0,
                                   int N, int T, int C, int H) {
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
            double b, g;
            adapt_z(a + (size_t)n * C, w.wb, w.bb, w.wg, w.bg, k, C, Hs, &b, &g);
            double th = tanh(g), le = pow(l, 2.0 * th);
            zb = d * sigmoid_d(b) * le;
            zg = d * softplus_d(b) * le * ll * 2.0 * (1 - th * th);
        }
    }
    zz[2 * i] = zb;
    zz[2 * i + 1] = zg;
}
/* da[n][e] += sum_k wb[e][k] dzb[n][k] + wg[e][k] dzg[n][k] */
__global__ void lenscale_da_kernel(float *da, const double *zz, gk_lenscale_w w, int N, int C, int Hs) {
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= (size_t)N * C) return;
    int n = (int)(i / C), e = (int)(i % C);
    double s = 0;
    for (int k = 0; k < Hs; k++) {
        const double *z = zz + ((size_t)n * Hs + k) * 2;
        s += w.wb[(size_t)e * Hs + k] * z[0] + w.wg[(size_t)e * Hs + k] * z[1];
    }
    da[i] += (float)s;
}
/* part[p][o], o = (which, k): sums of zz over the rows of chunk p */
__global__ void lenscale_bias_part_kernel(double *part, const double *zz, int N, int Hs) {
    int o = blockIdx.x * blockDim.x + threadIdx.x, p = blockIdx.y;
    if (o >= 2 * Hs) return;
    int n1 = min(N, (p + 1) * COLSUM_ROWS);
    double s = 0;
    for (int n = p * COLSUM_ROWS; n < n1; n++) s += zz[(size_t)n * 2 * Hs + (o % Hs) * 2 + o / Hs];
    part[(size_t)p * 2 * Hs + o] = s;
}
/* part[p][o], o = (which, e, k): sums of a[n][e] zz[n][k][which] over the rows of chunk p */
__global__ void lenscale_w_part_kernel(double *part, const double *zz, const float *a, int N, int C, int Hs) {
    int o = blockIdx.x * blockDim.x + threadIdx.x, p = blockIdx.y, no = 2 * C * Hs;
    if (o >= no) return;
    int which = o / (C * Hs), e = (o % (C * Hs)) / Hs, k = o % Hs;
    int n1 = min(N, (p + 1) * COLSUM_ROWS);
    double s = 0;
    for (int n = p * COLSUM_ROWS; n < n1; n++) s += (double)a[(size_t)n * C + e] * zz[((size_t)n * Hs + k) * 2 + which];
    part[(size_t)p * no + o] = s;
}

/* d0[c] += sum_p part[p][c], d1[c] += sum_p part[p][ncol + c] (d1 may be NULL), p in order */
__global__ void colsum2_finish_kernel(float *d0, float *d1, const double *part, int n_parts, int ncol) {
    int c = blockIdx.x * blockDim.x + threadIdx.x;
    if (c >= ncol) return;
    double s0 = 0, s1 = 0;
    for (int p = 0; p < n_parts; p++) {
        s0 += part[(size_t)p * 2 * ncol + c];
        s1 += part[(size_t)p * 2 * ncol + ncol + c];
    }
    d0[c] += (float)s0;
    if (d1) d1[c] += (float)s1;
}

void gk_lenscale_backward(float *da, gk_lenscale_w *g, double *scratch, const float *dc, const float *a,
                          const gk_lenscale_w *w, int kind, int h0, int N, int T, int C, int H) {
    int Hs = H - h0, np = (int)gk_colsum_parts(N);
    double *zz = scratch, *part = scratch + 2 * (size_t)N * Hs;
    lenscale_dz_kernel<<<nblocks((size_t)N * Hs, 128), 128, 0, g_stream>>>(zz, dc, a, *w, kind, h0, N, T, C, H);
    CK_LAUNCH("lenscale_dz");
    /* bias-like sums: beta (ssmax, learn), gamma (learn), bb, bg (adapt) */
    lenscale_bias_part_kernel<<<dim3(nblocks(2 * Hs, 64), np), 64, 0, g_stream>>>(part, zz, N, Hs);
    CK_LAUNCH("lenscale_bias_part");
    float *g0 = kind == LCG_SCALE_ADAPT ? g->bb : g->beta, *g1 = kind == LCG_SCALE_ADAPT ? g->bg : g->gamma;
    colsum2_finish_kernel<<<nblocks(Hs, 64), 64, 0, g_stream>>>(g0, kind == LCG_SCALE_SSMAX ? NULL : g1, part, np, Hs);
    CK_LAUNCH("lenscale_bias_finish");
    if (kind != LCG_SCALE_ADAPT) return;
    lenscale_da_kernel<<<nblocks((size_t)N * C, 256), 256, 0, g_stream>>>(da, zz, *w, N, C, Hs);
    CK_LAUNCH("lenscale_da");
    int no = 2 * C * Hs;
    lenscale_w_part_kernel<<<dim3(nblocks(no, 128), np), 128, 0, g_stream>>>(part, zz, a, N, C, Hs);
    CK_LAUNCH("lenscale_w_part");
    colsum2_finish_kernel<<<nblocks(C * Hs, 128), 128, 0, g_stream>>>(g->wb, g->wg, part, np, C * Hs);
    CK_LAUNCH("lenscale_w_finish");
}

/* ---- loss ------------------------------------------------------------------------------------------ */
__global__ void crossentropy_kernel(float *losses, float *dlogits, const float *logits, const int *targets,
                                    const unsigned char *mask, float scale, int N, int V) {
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
    crossentropy_kernel<<<nblocks(N, 8), 256, 0, g_stream>>>(losses, NULL, logits, targets, mask, 0, N, V);
    CK_LAUNCH("crossentropy_forward");
}
void gk_crossentropy_backward(float *dlogits, const float *logits, const int *targets, const unsigned char *mask,
                              float scale, int N, int V) {
    crossentropy_kernel<<<nblocks(N, 8), 256, 0, g_stream>>>(NULL, dlogits, logits, targets, mask, scale, N, V);
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
