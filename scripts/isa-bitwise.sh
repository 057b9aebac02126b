#!/usr/bin/env bash
# isa-bitwise.sh: are CSV rows bitwise identical between an x86-64-v3 (AVX2 + FMA) and an
# x86-64-v4 (AVX-512) build? Builds both trees (build/ci/gcc-x86-64-v3, build/ci/gcc-x86-64-v4;
# scripts/ci-matrix.sh builds the same ones), runs the same small configs on each, covering
# every normalizer, every position encoding, head dims 16 and 64, and evaluation lengths long
# enough for the prefill's full score tiles, and compares every row with the wall_* columns
# dropped. Exit 0 when all rows are identical, 1 with the first differing row otherwise.
#
# Usage: scripts/isa-bitwise.sh [BIN_A BIN_B]   (two binaries of any builds, instead of v3 / v4)
# The v4 build runs AVX-512 code, so the machine needs AVX-512; without it the script says so
# and exits 0 (nothing to compare). What it does not do: judge speed, or other compilers.
set -euo pipefail
cd "$(dirname "$0")/.."
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}
if [ $# = 2 ]; then
  a=$1 b=$2
else
  if ! grep -qw avx512f /proc/cpuinfo; then
    echo "isa-bitwise: no AVX-512 on this machine: the x86-64-v4 build cannot run here, skipped"
    exit 0
  fi
  for m in x86-64-v3 x86-64-v4; do
    d=build/ci/gcc-$m
    make --no-print-directory -s -j2 BUILD=$d OPT="-O3 -march=$m" $d/lcgbench
  done
  a=build/ci/gcc-x86-64-v3/lcgbench b=build/ci/gcc-x86-64-v4/lcgbench
fi
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
small="--layers 2 --dim 32 --ffn 64 --steps 40 --warmup 5 --batch 16 --eval-samples 4 --quiet"
# one config per line: every normalizer, every position encoding, D = 64 once, long evaluations
configs=(
  "--task copy --attn softmax --pos rope --eval-lens 24,200,700 --heads 2 --head-dim 16"
  "--task copy --attn ssmax --pos alibi --eval-lens 24,700 --heads 2 --head-dim 16"
  "--task recall --attn entmax --pos nape --eval-lens 24,300 --heads 2 --head-dim 16"
  "--task copy --attn sparsemax --pos nope --eval-lens 24,700 --heads 2 --head-dim 16"
  "--task recall --attn asentmax --pos alibi --eval-lens 24,700 --heads 2 --head-dim 16"
  "--task copy --attn entmax-learn --pos rope --eval-lens 24,700 --heads 2 --head-dim 16"
  "--task copy --attn asentmax --pos nape --heads 1 --head-dim 64 --eval-lens 24,300"
  "--task mqmtar --attn entmax --pos alibi --eval-lens 64,400 --heads 2 --head-dim 16"
)
strip() { # the CSV without its wall_* columns
  awk -F, 'NR == 1 { for (i = 1; i <= NF; i++) keep[i] = $i !~ /^wall_/ }
    { s = ""; for (i = 1; i <= NF; i++) if (keep[i]) s = s (s == "" ? "" : ",") $i; print s }' "$1"
}
rows=0
for i in "${!configs[@]}"; do
  for k in a b; do
    bin=${!k}
    $bin run ${configs[$i]} $small --threads 2 --out "$out/$k$i.csv" >/dev/null
  done
  strip "$out/a$i.csv" >"$out/a$i.txt"
  strip "$out/b$i.csv" >"$out/b$i.txt"
  if ! cmp -s "$out/a$i.txt" "$out/b$i.txt"; then
    echo "isa-bitwise: rows differ for: ${configs[$i]}"
    diff "$out/a$i.txt" "$out/b$i.txt" | head -4
    exit 1
  fi
  rows=$((rows + $(wc -l <"$out/a$i.txt") - 1))
done
echo "isa-bitwise: $rows rows of ${#configs[@]} configs bitwise identical (less wall_*) between $a and $b"
