/*
 * warp_emu.h: enough of CUDA to run gpu_kernels.cu's attention rows and kernels on the host, for
 * checking their logic on a machine without a GPU (cuda/emu/run.sh). A block is nt std::threads
 * (at most 256: 8 warps); every warp intrinsic (shuffles, ballot, __syncwarp) is an exchange
 * through a per-warp barrier, __syncthreads a block barrier, static __shared__ arrays plain
 * statics (blocks run one after another), the dynamic shared memory one host buffer. Kernels
 * must return whole warps (as every row kernel does). Host libm stands in for the device's math,
 * so results match the CPU kernels to their rounding, not the GPU's bits. Not emulated: cuBLAS,
 * launch limits, memory models beyond these barriers.
 */
#ifndef LCG_WARP_EMU_H
#define LCG_WARP_EMU_H
#include <algorithm>
#include <atomic>
#include <barrier>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <thread>
#include <vector>
extern "C" {
#include "../../kernels/kernels.h"
}
using std::fmax;
using std::isfinite;
using std::max;
using std::min;
static inline int min(int a, int b) { return a < b ? a : b; } /* CUDA's, for an enum beside an int */
#define __host__
#define __device__
#define __global__
#define __forceinline__ inline
#define __shared__ static
struct emu_dim {
    unsigned x, y;
};
static thread_local emu_dim threadIdx, blockIdx;
static unsigned emu_grid_y; /* blockIdx.y of the next emu_launch's blocks (a 2-D grid: one launch per y) */
static emu_dim blockDim = {256, 1};
static float *g_dyn_smem;
static std::barrier<> *emu_wbar[8], *emu_bbar;
#define EMU_WARP (threadIdx.x / 32)
#define EMU_LANE (threadIdx.x % 32)
template <class T> static T emu_exch(T v, int src) {
    static T slot[8][32];
    slot[EMU_WARP][EMU_LANE] = v;
    emu_wbar[EMU_WARP]->arrive_and_wait();
    T r = slot[EMU_WARP][src & 31];
    emu_wbar[EMU_WARP]->arrive_and_wait();
    return r;
}
template <class T> static T __shfl_xor_sync(unsigned, T v, int o) { return emu_exch(v, (int)EMU_LANE ^ o); }
template <class T> static T __shfl_sync(unsigned, T v, int s) { return emu_exch(v, s); }
template <class T> static T __shfl_up_sync(unsigned, T v, int o) {
    int l = EMU_LANE;
    return emu_exch(v, l >= o ? l - o : l);
}
template <class T> static T __shfl_down_sync(unsigned, T v, int o) {
    int l = EMU_LANE;
    return emu_exch(v, l + o < 32 ? l + o : l);
}
static unsigned __ballot_sync(unsigned, int p) {
    static std::atomic<unsigned> m[8];
    if (EMU_LANE == 0) m[EMU_WARP] = 0;
    emu_wbar[EMU_WARP]->arrive_and_wait();
    if (p) m[EMU_WARP] |= 1u << EMU_LANE;
    emu_wbar[EMU_WARP]->arrive_and_wait();
    unsigned r = m[EMU_WARP];
    emu_wbar[EMU_WARP]->arrive_and_wait();
    return r;
}
static void __syncwarp(unsigned = 0xffffffffu) { emu_wbar[EMU_WARP]->arrive_and_wait(); }
static void __syncthreads() { emu_bbar->arrive_and_wait(); }
static unsigned atomicAdd(unsigned *a, unsigned v) { return __atomic_fetch_add(a, v, __ATOMIC_SEQ_CST); }
static int __popc(unsigned x) { return __builtin_popcount(x); }
static int __ffs(unsigned x) { return __builtin_ffs((int)x); }
static unsigned __float_as_uint(float f) {
    unsigned u;
    memcpy(&u, &f, 4);
    return u;
}
static int gk_att_ld(int T) { return (T + 3) / 4 * 4; }

/* nb blocks of nt threads (nt a multiple of 32, <= 256), one block at a time */
static void emu_launch(int nb, int nt, const std::function<void()> &f, size_t smem_floats = 0) {
    std::vector<float> sm(smem_floats + 1);
    g_dyn_smem = sm.data();
    blockDim.x = (unsigned)nt;
    for (int b = 0; b < nb; b++) {
        std::barrier<> bb(nt);
        emu_bbar = &bb;
        for (int w = 0; w < nt / 32; w++) emu_wbar[w] = new std::barrier<>(32);
        std::vector<std::thread> th;
        for (int t = 0; t < nt; t++)
            th.emplace_back([&f, t, b] {
                threadIdx.x = (unsigned)t;
                blockIdx.x = (unsigned)b;
                blockIdx.y = emu_grid_y;
                f();
            });
        for (auto &t : th) t.join();
        for (int w = 0; w < nt / 32; w++) delete emu_wbar[w];
    }
}

static double emu_rel(const float *a, const float *b, size_t n) {
    double d = 0, r = 0;
    for (size_t i = 0; i < n; i++) {
        double x = (double)a[i] - b[i];
        d += x * x;
        r += (double)b[i] * b[i];
    }
    if (!std::isfinite(d)) return NAN;
    return r > 0 ? sqrt(d / r) : sqrt(d);
}
static unsigned long long emu_rs = 88172645463325252ull;
static double emu_urand() {
    emu_rs ^= emu_rs << 13, emu_rs ^= emu_rs >> 7, emu_rs ^= emu_rs << 17;
    return (double)(emu_rs >> 11) * (1.0 / 9007199254740992.0);
}
static double emu_nrand() { return sqrt(-2 * log(emu_urand() + 1e-300)) * cos(6.283185307179586 * emu_urand()); }

static int emu_fails, emu_total, emu_verbose;
/* err <= 1e-5 (NaN fails) and no support flips */
static void emu_check(const char *what, double err, int flips) {
    int ok = err <= 1e-5 && flips == 0;
    emu_total++;
    if (!ok) emu_fails++;
    if (!ok || emu_verbose) printf("%s %-72s %.3e%s\n", ok ? "ok  " : "FAIL", what, err, flips ? " (support flips)" : "");
}
#endif
