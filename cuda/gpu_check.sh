#!/bin/bash
# cuda/gpu_check.sh: on the GPU machine (the `run` tool), from the repository root: build the CUDA
# backend with nvcc (sm_90), run its test against the CPU and the training benchmark; logs and
# the binaries' output under $OUT (build.log, test.log, bench.log, gpu.txt). Usage:
#   bash cuda/gpu_check.sh [test|bench|all|profile|full|sanitize|final|e2e] [extra args for bench_gpu]
# all = test + bench; full = all + profile; final = all + sanitize (compute-sanitizer's memcheck
# on the kernel tests, racecheck on the fused attention)
# profile: Nsight Compute's kernel times (one metric: one replay pass) of one step of the copy
# architecture (softmax fp32, asentmax tf32, softmax bf16) and mqmtar's (softmax bf16); 2 steps
# profiled, a warm-up and a timed one; summed per kernel (profile_*.txt)
# e2e: `make CUDA=1 test-gpu`'s two parts (test_gpu, then cuda/test_gpu_e2e.sh on lcgbench
# --device cuda) plus the bench; lcgbench needs libcsv: where it is not installed, the Debian
# packages' .debs in $LCG_DEBS (default debs/) are unpacked and used (apt-get download libcsv3
# libcsv-dev, elsewhere)
# eval: the e2e build, then each step under a timeout: test_gpu (the GPU prefill against the CPU's
# among the rest), cuda/test_gpu_e2e.sh, one mqmtar sample on the GPU and on the CPU
# (all cores) at 16,384 tokens, on the GPU at 65,536, softmax and asentmax (bench_gpu eval), greedy
# decoding per token (bench_gpu decode), then the PyTorch peer with torch.compile
# when LCG_TORCH_S (seconds) is set; a summary last (summary.txt)
set -u
OUT=${OUT:-/tmp/lcg_gpu_out}
mkdir -p "$OUT"
what=${1:-all}
export OMP_WAIT_POLICY=PASSIVE
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,clocks.mem,temperature.gpu,power.draw \
  --format=csv >"$OUT/gpu.txt" 2>&1
cat "$OUT/gpu.txt"
if [[ $what == e2e || $what == eval ]]; then
  extra=()
  if [ ! -e /usr/include/csv.h ]; then
    x=$PWD/build/debs
    mkdir -p "$x"
    for f in "${LCG_DEBS:-debs}"/*.deb; do dpkg -x "$f" "$x"; done
    extra=(EXTRA_CFLAGS="-I$x/usr/include -L$x/usr/lib/x86_64-linux-gnu")
    export LD_LIBRARY_PATH=$x/usr/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
  fi
  t0=$(date +%s%N)
  if ! make CUDA=1 BUILD=build/cu -j"$(nproc)" NVCC_ARCH=-arch=sm_90 "${extra[@]}" build/cu/lcgbench \
      build/cu/cuda/test_gpu build/cu/cuda/bench_gpu >"$OUT/build.log" 2>&1; then
    tail -40 "$OUT/build.log"
    echo "BUILD FAILED"
    exit 1
  fi
  echo "build: $(( ($(date +%s%N) - t0) / 1000000 )) ms"
  rc=0
  if [[ $what == eval ]]; then
    step() { # name timeout cmd...: logs under $OUT/name.log, one summary line
      local name=$1 lim=$2 t0 r
      shift 2
      t0=$(date +%s%N)
      timeout "$lim" "$@" >"$OUT/$name.log" 2>&1
      r=$?
      echo "$name: rc $r, $(( ($(date +%s%N) - t0) / 1000000 )) ms" | tee -a "$OUT/summary.txt"
      [ $r = 0 ] || rc=1
    }
    step test_gpu "${LCG_T_TEST:-80}" build/cu/cuda/test_gpu
    grep -E "^(FAIL|note)|passed|worst|SKIP" "$OUT/test_gpu.log" | tail -30
    grep -E "^(ok|FAIL)   *eval .*(16384|logits)" "$OUT/test_gpu.log" | grep -E "16384|a=1.50 nape n=300|softmax a=1.00 rope n=300" | head -8
    grep -E "^(ok|FAIL)   *mech .*(4096|mass)" "$OUT/test_gpu.log" | head -8
    step e2e "${LCG_T_E2E:-90}" bash cuda/test_gpu_e2e.sh build/cu/lcgbench
    cat "$OUT/e2e.log"
    echo "cpu: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2)" | tee -a "$OUT/summary.txt"
    for norm in softmax asentmax; do # the CPU at 16,384 (65,536 took over 65 s on 16 cores)
      step "eval16384_$norm" "${LCG_T_EVAL:-60}" build/cu/cuda/bench_gpu eval 16384 $norm cpu
      cat "$OUT/eval16384_$norm.log" | tee -a "$OUT/summary.txt"
      step "eval65536_$norm" 30 build/cu/cuda/bench_gpu eval 65536 $norm
      cat "$OUT/eval65536_$norm.log" | tee -a "$OUT/summary.txt"
    done
    step eval65536_asentmax_wholerows 30 env LCG_GPU_EVAL_COMPACT=0 build/cu/cuda/bench_gpu eval 65536 asentmax
    cat "$OUT/eval65536_asentmax_wholerows.log" | tee -a "$OUT/summary.txt"
    step decode "${LCG_T_DECODE:-60}" build/cu/cuda/bench_gpu decode 256 200 # greedy decoding per token
    grep decode "$OUT/decode.log" | tee -a "$OUT/summary.txt"
    if [ -n "${LCG_TORCH_S:-}" ]; then
      step torch "$LCG_TORCH_S" python3 bench/torch_gpu_peer.py --steps 20
      tail -20 "$OUT/torch.log"
    fi
    echo "== summary"
    grep -E "passed|worst" "$OUT/test_gpu.log" | tail -2 >>"$OUT/summary.txt"
    tail -1 "$OUT/e2e.log" >>"$OUT/summary.txt"
    cat "$OUT/summary.txt"
    exit $rc
  fi
  t0=$(date +%s%N)
  build/cu/cuda/test_gpu >"$OUT/test.log" 2>&1 || rc=1
  echo "test_gpu: $(( ($(date +%s%N) - t0) / 1000000 )) ms, rc $rc"
  grep -v '^ok' "$OUT/test.log" | tail -20
  t0=$(date +%s%N)
  bash cuda/test_gpu_e2e.sh build/cu/lcgbench >"$OUT/e2e.log" 2>&1 || rc=1
  echo "test_gpu_e2e: $(( ($(date +%s%N) - t0) / 1000000 )) ms"
  cat "$OUT/e2e.log"
  shift || true
  [ $# -gt 0 ] && { build/cu/cuda/bench_gpu "$@" 2>&1 | tee "$OUT/bench.log" || rc=1; }
  exit $rc
fi
t0=$(date +%s%N)
if ! make -f Makefile -f cuda/cuda.mk -j"$(nproc)" build/cuda/test_gpu build/cuda/bench_gpu \
    NVCC_ARCH=-arch=sm_90 >"$OUT/build.log" 2>&1; then
  tail -40 "$OUT/build.log"
  echo "BUILD FAILED"
  exit 1
fi
echo "build: $(( ($(date +%s%N) - t0) / 1000000 )) ms"
rc=0
if [[ $what =~ ^(test|all|full|final)$ ]]; then
  t0=$(date +%s%N)
  build/cuda/test_gpu >"$OUT/test.log" 2>&1 || rc=1
  echo "test_gpu: $(( ($(date +%s%N) - t0) / 1000000 )) ms, rc $rc"
  grep -v '^ok' "$OUT/test.log" | tail -40
fi
if [[ $what =~ ^(bench|all|full|final)$ ]]; then
  shift || true
  build/cuda/bench_gpu "$@" 2>&1 | tee "$OUT/bench.log" || rc=1
fi
if [[ $what =~ ^(profile|full)$ ]]; then
  for cfg in "copy softmax fp32" "copy asentmax tf32" "copy softmax bf16" "mqmtar softmax bf16"; do
    set -- $cfg
    ncu --clock-control none --metrics gpu__time_duration.sum --csv \
      build/cuda/bench_gpu 1 "$1" "$2" "$3" 1 >"$OUT/profile_$1_$2_$3.log" 2>&1 || rc=1
    python3 cuda/ncu_summary.py "$OUT/profile_$1_$2_$3.log" 2 >"$OUT/profile_$1_$2_$3.txt"
    head -25 "$OUT/profile_$1_$2_$3.txt"
  done
  # the fused attention kernels in detail: stall reasons, occupancy, memory (one launch each)
  ncu --clock-control none -k regex:att_fused --launch-skip 2 --launch-count 2 \
    --section SpeedOfLight --section Occupancy --section LaunchStats --section WarpStateStats \
    --section SchedulerStats --section MemoryWorkloadAnalysis \
    build/cuda/bench_gpu 1 copy asentmax tf32 1 >"$OUT/ncu_fused.txt" 2>&1 || rc=1
  grep -E "att_fused|Duration|Throughput|Occupancy|Registers|Shared Memory Config|Warp Cycles|Stall|Eligible|Issued|Block Limit|One or More|No Eligible" \
    "$OUT/ncu_fused.txt" | head -60
fi
if [[ $what =~ ^(sanitize|final)$ ]]; then
  # memory errors in the kernel tests, then shared-memory races in the fused attention kernels
  timeout 80 compute-sanitizer --tool memcheck --print-limit 5 build/cuda/test_gpu --quick \
    >"$OUT/memcheck.log" 2>&1; echo "memcheck rc $?"; tail -4 "$OUT/memcheck.log"
  timeout 40 compute-sanitizer --tool racecheck --print-limit 5 --kernel-name kns=att_fused \
    build/cuda/bench_gpu 1 bench asentmax fp32 0 >"$OUT/racecheck.log" 2>&1; echo "racecheck rc $?"
  tail -4 "$OUT/racecheck.log"
fi
exit $rc
