#!/usr/bin/env bash
# Training throughput of every attention normalizer on one fixed small config, relative to
# softmax in the same run (the PyTorch peer is bench/peer.sh's): 2 layers, C = 64, 4 heads of 16, FFN 256,
# copy (vocabulary 37), T = 64 (length 31, no variation), B = 32, RoPE. Tokens/s are lcgbench's own count of non-pad
# training tokens over the training wall time (CSV column wall_train_tok_s).
# Each variant runs REPS times (default 3), round-robin so a change of machine load hits all of
# them alike, and reports its best run.
# Usage: bench/variants.sh [steps] [threads] [reps]
set -euo pipefail
cd "$(dirname "$0")/.."
steps=${1:-150}
threads=${2:-$(nproc)}
reps=${3:-3}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
variants=$(./lcgbench help attn --names) # every normalizer of the registry
declare -A best
for rep in $(seq "$reps"); do
  for attn in $variants; do
    rm -f "$out/$attn.csv"
    ./lcgbench run --task copy --attn "$attn" --pos rope --layers 2 --dim 64 --heads 4 --head-dim 16 \
      --ffn 256 --len 31 --vary 0 --batch 32 --steps "$steps" --warmup 10 --eval-lens 31 \
      --eval-samples 1 --threads "$threads" --quiet --out "$out/$attn.csv" >/dev/null
    col=$(head -1 "$out/$attn.csv" | tr ',' '\n' | grep -nx wall_train_tok_s | cut -d: -f1)
    tps=$(tail -1 "$out/$attn.csv" | cut -d, -f"$col")
    [ "${best[$attn]:-0}" -ge "$tps" ] || best[$attn]=$tps
  done
done
printf '%-16s %12s %10s\n' attn "tok/s" "vs softmax"
base=${best[softmax]}
for attn in $variants; do
  awk -v a="$attn" -v t="${best[$attn]}" -v b="$base" 'BEGIN { printf "%-16s %12d %9.2fx\n", a, t, t / b }'
done
