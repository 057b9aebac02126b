#!/bin/bash
# cuda/emu/run.sh [BUILD]: the logic of gpu_kernels.cu's attention rows and kernels on a machine
# without a GPU. The device code between two markers of gpu_kernels.cu (from ent_pow to the fused
# kernels, and the warp reductions) is compiled for the host with warp_emu.h standing in for CUDA
# (std::threads a warp, barriers for the intrinsics), then emu_rows and emu_kernels compare it
# with the CPU kernels (BUILD's kernels/*.o: `make` first; default build), and emu_norms does the
# same for the embedding's and RMSNorm's kernels (the column sums', embedding's and RMSNorm's
# sections, their host functions left out). Needs g++ >= 11 (C++20 <barrier>). Takes a few minutes (thousands of threads per kernel launch). -v: every check.
# Not a substitute for cuda/test_gpu on a GPU: no cuBLAS, no launch limits, the host's libm.
set -eu
cd "$(dirname "$0")/../.."
B=build
V=
for a in "$@"; do if [ "$a" = -v ]; then V=-v; else B=$a; fi; done
[ -f "$B/kernels/topk.o" ] || { echo "cuda/emu/run.sh: no $B/kernels/*.o (run make first)" >&2; exit 2; }
o=$(mktemp -d)
trap 'rm -rf "$o"' EXIT
awk '/^\/\* ---- warp reductions/{p=1} /^\/\* ---- cuBLAS on row-major/{p=0} p' cuda/gpu_kernels.cu >"$o/k_warp.inc"
awk '/^__device__ __forceinline__ double ent_pow/{p=1} /^\/\* the fused kernels take D in/{p=0} p' cuda/gpu_kernels.cu |
  sed 's/extern __shared__ float sh\[\];/float *sh = g_dyn_smem;/; s/__launch_bounds__([^)]*)//' >"$o/k_body.inc"
awk '/^\/\* ---- fixed-order column sums/{p=1} /^\/\* ---- GeGLU/{p=0} p' \
  cuda/gpu_kernels.cu | awk '/^(static )?void (gk_|colsum_finish\()/{s=1} !s{print} s && /^}/{s=0}' >"$o/k_norm.inc"
[ -s "$o/k_warp.inc" ] && [ -s "$o/k_body.inc" ] && grep -q rmsnorm_backward_kernel "$o/k_norm.inc" ||
  { echo "cuda/emu/run.sh: markers not found in cuda/gpu_kernels.cu" >&2; exit 2; }
rc=0
for t in emu_rows emu_kernels emu_norms; do
  g++ -std=c++20 -O1 -pthread -fopenmp -Wno-unknown-pragmas -I"$o" -o "$o/$t" cuda/emu/$t.cpp "$B"/kernels/*.o -lm
  "$o/$t" $V || rc=1
done
exit $rc
