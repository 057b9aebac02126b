#!/usr/bin/env bash
# threads.sh: training tok/s on an idle machine and beside one CPU-bound process (`yes`), for the
# thread settings before and after issue 16's default:
#   1 thread         --threads 1
#   2, before        --threads 2 with libgomp's own default spin (GOMP_SPINCOUNT=300000), what
#                    the tool ran with before issue 16
#   2, spin 10000    --threads 2 with GOMP_SPINCOUNT=10000
#   2, spin 1000     --threads 2 with GOMP_SPINCOUNT=1000
#   2, passive       --threads 2 with OMP_WAIT_POLICY=PASSIVE
#   2, after         --threads 2 and no OMP_* variable: the tool's default wait policy
#                    (harness/threads.c)
# on the bench config of bench/variants.sh (2 layers, C = 64, 4x16 heads, FFN 256, T = 64,
# B = 32), softmax and entmax (whose training rows add parallel regions). Every case runs REPS
# times round-robin; the best run counts. The competing process
# is started and killed by this script. Assumes 2 or more CPUs; nothing is pinned.
# Usage: bench/threads.sh [steps] [reps]   (defaults 100, 2; LCG_BIN picks the binary)
set -euo pipefail
cd "$(dirname "$0")/.."
steps=${1:-100}
reps=${2:-2}
bin=${LCG_BIN:-./lcgbench}
out=$(mktemp -d)
hog=
cleanup() { [ -n "$hog" ] && kill "$hog" 2>/dev/null; rm -rf "$out"; }
trap cleanup EXIT
unset OMP_NUM_THREADS OMP_WAIT_POLICY GOMP_SPINCOUNT
cfg="--task copy --pos rope --layers 2 --dim 64 --heads 4 --head-dim 16 --ffn 256 --len 31 --vary 0
     --batch 32 --steps $steps --warmup 10 --eval-lens 31 --eval-samples 1 --quiet"
names=("1 thread" "2, before" "2, spin 10000" "2, spin 1000" "2, passive" "2, after")
envs=("" "GOMP_SPINCOUNT=300000" "GOMP_SPINCOUNT=10000" "GOMP_SPINCOUNT=1000" "OMP_WAIT_POLICY=PASSIVE" "")
flags=("--threads 1" "--threads 2" "--threads 2" "--threads 2" "--threads 2" "--threads 2")
attns="softmax entmax"
col() { head -1 "$1" | tr ',' '\n' | grep -nx "$2" | cut -d: -f1; }
run_case() { # run_case K ATTN: one run, prints tok/s
  rm -f "$out/r.csv"
  env ${envs[$1]} "$bin" run $cfg --attn "$2" ${flags[$1]} --out "$out/r.csv" >/dev/null
  tail -1 "$out/r.csv" | cut -d, -f"$(col "$out/r.csv" wall_train_tok_s)"
}
for load in idle busy; do
  if [ $load = busy ]; then
    yes >/dev/null &
    hog=$!
    sleep 0.5
  fi
  declare -A best=()
  for rep in $(seq "$reps"); do
    for k in "${!names[@]}"; do
      for a in $attns; do
        tps=$(run_case "$k" "$a")
        [ "${best[$k$a]:-0}" -ge "$tps" ] || best[$k$a]=$tps
      done
    done
  done
  [ -n "$hog" ] && { kill "$hog"; wait "$hog" 2>/dev/null || true; hog=; }
  echo "== $load$([ $load = busy ] && echo ' (one yes > /dev/null beside it)'), load average $(cut -d' ' -f1 /proc/loadavg)"
  printf '%-14s %14s %14s\n' "" "softmax tok/s" "entmax tok/s"
  for k in "${!names[@]}"; do
    printf '%-14s %14d %14d\n' "${names[$k]}" "${best[${k}softmax]}" "${best[${k}entmax]}"
  done
done
