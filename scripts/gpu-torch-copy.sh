#!/bin/bash
# scripts/gpu-torch-copy.sh SECONDS RUN... [-- FLAGS]: one call of bench/torch_copy_train.py
# (copy at the paper's scale in PyTorch: the full schedule by default) on a lent GPU, one process
# per RUN side by side, each stopping itself after SECONDS with its whole state in /tmp/tc, which
# the machine keeps between back-to-back calls: call again with the same arguments until it exits
# 0 (issue the next call the moment one returns; the machine goes back 30 s after). A RUN is a
# precision (fp32, tf32, bf16-true), or PRECISION:SEED for another seed than 1. FLAGS go to every
# run (e.g. -- --lr 4e-4, or -- --stop-at 31250 for a probe of the first 20%). Each call brings
# back under $OUT, per RUN (TAG = the precision, or PRECISION-sSEED): torch-TAG.log,
# curve-TAG.csv (the validation curve) and, once done, copy-TAG.csv (its test rows).
# Exit status: 0 when every run is done (or paused at its --stop-at), 124 while one is still
# going, 1 when one failed.
set -u
secs=${1:?usage: gpu-torch-copy.sh SECONDS RUN... [-- FLAGS]}
shift
runs=()
while [ $# -gt 0 ] && [ "$1" != "--" ]; do runs+=("$1"); shift; done
[ $# -gt 0 ] && shift
[ ${#runs[@]} -gt 0 ] || { echo "gpu-torch-copy: name at least one run (PRECISION or PRECISION:SEED)" >&2; exit 1; }
work=/tmp/tc out=${OUT:-/tmp/tc_out}
mkdir -p "$work" "$out"
nvidia-smi --query-gpu=name,memory.used --format=csv,noheader 2>/dev/null
pids=() tags=()
for r in "${runs[@]}"; do
  p=${r%%:*} seed=1 tag=$p
  [ "$r" != "$p" ] && seed=${r#*:} tag=$p-s${r#*:}
  case $seed in '' | *[!0-9]*) echo "gpu-torch-copy: bad seed in '$r'" >&2; exit 1 ;; esac
  ${LCG_PY:-python3} bench/torch_copy_train.py --precision "$p" --seed "$seed" --compile --time-limit "$secs" \
    --state "$work/$tag.pt" --out "$work/copy-$tag.csv" --curve "$work/curve-$tag.csv" "$@" >>"$work/$tag.log" 2>&1 &
  pids+=($!) tags+=("$tag")
done
rc=0
for i in "${!pids[@]}"; do
  wait "${pids[$i]}"
  r=$?
  echo "gpu-torch-copy: ${tags[$i]} exit $r"
  [ $r = 0 ] || { [ $r = 124 ] && [ $rc != 1 ] && rc=124; } || rc=1
done
for t in "${tags[@]}"; do
  tail -n 4 "$work/$t.log"
  cp "$work/$t.log" "$out/torch-$t.log"
  for f in "$work/curve-$t.csv" "$work/copy-$t.csv"; do [ -e "$f" ] && cp "$f" "$out/"; done
done
exit $rc
