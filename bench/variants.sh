#!/usr/bin/env bash
# Training throughput of every attention normalizer on one fixed small config, relative to
# softmax in the same run, and of the same model in PyTorch (bench/torch_peer.py, best of 1
# and 2 threads) when Debian's python3-torch is installed: 2 layers, C = 64, 4 heads of 16, FFN 256, copy (vocabulary 37),
# T = 64 (length 31, no variation), B = 32, RoPE. Tokens/s are lcgbench's own count of non-pad
# training tokens over the training wall time (CSV column wall_train_tok_s).
# Usage: bench/variants.sh [steps] [threads]
set -euo pipefail
cd "$(dirname "$0")/.."
steps=${1:-150}
threads=${2:-$(nproc)}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
printf '%-14s %12s %10s\n' attn "tok/s" "vs softmax"
base=""
for attn in softmax ssmax entmax sparsemax asentmax entmax-learn; do
  ./lcgbench run --task copy --attn "$attn" --pos rope --layers 2 --dim 64 --heads 4 --head-dim 16 \
    --ffn 256 --len 31 --vary 0 --batch 32 --steps "$steps" --warmup 10 --eval-lens 31 \
    --eval-samples 1 --threads "$threads" --quiet --out "$out/$attn.csv" >/dev/null
  col=$(head -1 "$out/$attn.csv" | tr ',' '\n' | grep -nx wall_train_tok_s | cut -d: -f1)
  tps=$(tail -1 "$out/$attn.csv" | cut -d, -f"$col")
  [ -n "$base" ] || base=$tps
  awk -v a="$attn" -v t="$tps" -v b="$base" 'BEGIN { printf "%-14s %12d %9.2fx\n", a, t, t / b }'
done
py=/usr/bin/python3
[ -x "$py" ] || py=python3
peer_out=$("$py" bench/torch_peer.py --steps 30 --threads 1,2 2>/dev/null || true)
peer=$(echo "$peer_out" | awk -F= '/^torch best/ { print $2 }')
if [ -n "$peer" ]; then
  awk -v p="$peer" -v b="$base" 'BEGIN { printf "%-14s %12d %9.2fx   (lcgbench softmax / PyTorch: %.1fx)\n", "pytorch", p, p / b, b / p }'
  echo "  PyTorch peer: $(echo "$peer_out" | grep '^torch version')  (Debian's python3-torch; 'generic' BLAS is the reference BLAS)"
else
  echo "pytorch        skipped: python3-torch not importable"
fi
