#!/usr/bin/env bash
# peer.sh: training tok/s of lcgbench (softmax, RoPE; a native build and an x86-64-v3 build)
# against the same model in PyTorch (bench/torch_peer.py) on an optimized BLAS, each pinned to
# the same cores with the same thread count:
#   bench config  2 layers, C = 64, 4x16 heads, FFN 256, copy T = 64, B = 32; 1 and 2 threads
#   paper config  the paper's copy architecture: 2 layers, C = 256, 16x16 heads, FFN 1024,
#                 B = 128, lengths 48 +- 16 (about 98 tokens a sample); 2 threads
# Threads n run on cores 0..n-1 (taskset). The peer runs with OPENBLAS_CORETYPE and
# OPENBLAS_L2_SIZE unset (this workplace may set them; they pin OpenBLAS to an old kernel) and
# reports the BLAS library it loaded and OpenBLAS's kernel; torch's OpenMP threads get the wait
# policy lcgbench gives itself (GOMP_SPINCOUNT, harness/threads.h) unless the user set one. When that is the reference
# (netlib) BLAS, or unknown, the ratios are printed as "not comparable".
# Every cell runs REPS times round-robin and reports its best. lcgbench's figure is its CSV's
# wall_train_tok_s (all steps, the first included); the peer's excludes its warm-up steps.
# Prints a table, then "key value" lines for bench/report.sh (tps_TOOL_CONFIG_THREADS, peer_*).
# Usage: bench/peer.sh [bench_steps] [paper_steps] [reps]   (defaults 60, 2, 2)
#   NATIVE_BIN, V3_BIN: the two builds (./lcgbench, build/v3/lcgbench); a missing one is skipped
set -euo pipefail
cd "$(dirname "$0")/.."
bsteps=${1:-60}
psteps=${2:-2}
reps=${3:-2}
native=${NATIVE_BIN:-./lcgbench}
v3=${V3_BIN:-build/v3/lcgbench}
py=/usr/bin/python3
[ -x "$py" ] || py=python3
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
ncpu=$(nproc)

bench_cfg="--layers 2 --dim 64 --heads 4 --head-dim 16 --ffn 256 --len 31 --vary 0 --batch 32 --steps $bsteps --warmup 10"
paper_cfg="--layers 2 --dim 256 --heads 16 --head-dim 16 --ffn 1024 --len 48 --vary 16 --batch 128 --steps $psteps --warmup 1"
cells="bench:1 bench:2 paper:2"
cores() { seq -s, 0 $(($1 - 1)); }

lcg_run() { # lcg_run BIN CONFIG THREADS: prints tok/s
  local cfg=${2}_cfg
  rm -f "$out/r.csv"
  taskset -c "$(cores "$3")" "$1" run --task copy --attn softmax --pos rope ${!cfg} --eval-lens 31 --eval-samples 1 \
    --threads "$3" --quiet --out "$out/r.csv" >/dev/null
  local c
  c=$(head -1 "$out/r.csv" | tr ',' '\n' | grep -nx wall_train_tok_s | cut -d: -f1)
  tail -1 "$out/r.csv" | cut -d, -f"$c" | cut -d. -f1
}
peer_run() { # peer_run CONFIG THREADS: prints tok/s (0 when torch is missing); keeps its BLAS line
  local steps=30 warm=3
  [ "$1" = paper ] && steps=$psteps warm=1
  local o
  # torch's OpenMP threads get lcgbench's default wait policy (harness/threads.h): with libgomp's
  # default spin they hold the cores OpenBLAS's threads need (2 threads: 3-10x slower than 1)
  local wait="GOMP_SPINCOUNT=$(sed -n 's/^#define LCG_SPINCOUNT "\(.*\)"/\1/p' harness/threads.h)"
  [ -z "${OMP_WAIT_POLICY:-}${GOMP_SPINCOUNT:-}" ] || wait=X_UNUSED=1
  o=$(env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE "$wait" taskset -c "$(cores "$2")" "$py" bench/torch_peer.py \
    --config "$1" --steps "$steps" --warmup "$warm" --threads "$2" 2>/dev/null) || { echo 0; return; }
  echo "$o" | grep '^torch blas=' >"$out/blas"
  echo "$o" | grep '^torch version=' >"$out/version"
  echo "$o" | awk -F= '/^torch best/ { print int($2) }'
}

declare -A best
for rep in $(seq "$reps"); do
  for cell in $cells; do
    cfg=${cell%:*} th=${cell#*:}
    [ "$th" -le "$ncpu" ] || continue
    for tool in native v3 peer; do
      case $tool in
        native | v3) bin=${!tool}; [ -x "$bin" ] || continue; tps=$(lcg_run "$bin" "$cfg" "$th") ;;
        peer) tps=$(peer_run "$cfg" "$th") ;;
      esac
      k=${tool}_${cfg}_$th
      [ "${best[$k]:-0}" -ge "$tps" ] || best[$k]=$tps
    done
  done
done

blas=$(sed -n 's/^torch blas=\([^ ]*\).*/\1/p' "$out/blas" 2>/dev/null || true)
case $blas in OpenBLAS | MKL | BLIS) comparable=1 ;; *) comparable=0 ;; esac
echo "PyTorch peer: $(cat "$out/version" 2>/dev/null || echo 'not importable')"
echo "  BLAS loaded at run time: $(sed 's/^torch //' "$out/blas" 2>/dev/null || echo none)"
[ $comparable = 1 ] || echo "  not an optimized BLAS: the ratios to PyTorch are not comparable"
printf '%-14s %7s %12s %12s %12s %10s %10s %10s\n' config threads "native tok/s" "v3 tok/s" "peer tok/s" \
  native/peer v3/peer v3/native
for cell in $cells; do
  cfg=${cell%:*} th=${cell#*:}
  [ "$th" -le "$ncpu" ] || continue
  n=${best[native_${cfg}_$th]:-0} v=${best[v3_${cfg}_$th]:-0} p=${best[peer_${cfg}_$th]:-0}
  awk -v c="$cfg" -v t="$th" -v n="$n" -v v="$v" -v p="$p" -v ok=$comparable 'BEGIN {
    printf "%-14s %7d %12d %12d %12d %10s %10s %10s\n", c, t, n, v, p,
      (ok && p > 0 && n > 0) ? sprintf("%.2fx", n / p) : "n/c", (ok && p > 0 && v > 0) ? sprintf("%.2fx", v / p) : "n/c",
      (n > 0 && v > 0) ? sprintf("%.0f%%", 100 * v / n) : "-" }'
done
echo "(n/c: not comparable; best of $reps round-robin runs; threads n pinned to cores 0..n-1)"
for k in "${!best[@]}"; do echo "tps_$k ${best[$k]}"; done | sort
echo "peer_blas ${blas:-none}"
echo "peer_comparable $comparable"
