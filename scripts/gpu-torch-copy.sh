#!/bin/bash
# scripts/gpu-torch-copy.sh SECONDS PRECISION... [-- FLAGS]: one call of bench/torch_copy_train.py
# (copy at the paper's scale in PyTorch: the full schedule by default) on a lent GPU, one process
# per precision (fp32, tf32, bf16-true) side by side, each stopping itself after SECONDS with its
# whole state in /tmp/tc, which the machine keeps between back-to-back calls: call again with the
# same arguments until it exits 0 (issue the next call the moment one returns; the machine goes
# back 30 s after). FLAGS go to every run (e.g. -- --lr 4e-4 --seed 2). Each call brings back
# under $OUT, per precision: its log, its validation curve and, once done, its CSV rows.
# Exit status: 0 when every run is done, 124 while one is still going, 1 when one failed.
set -u
secs=${1:?usage: gpu-torch-copy.sh SECONDS PRECISION... [-- FLAGS]}
shift
precs=()
while [ $# -gt 0 ] && [ "$1" != "--" ]; do precs+=("$1"); shift; done
[ $# -gt 0 ] && shift
[ ${#precs[@]} -gt 0 ] || { echo "gpu-torch-copy: name at least one precision" >&2; exit 1; }
work=/tmp/tc out=${OUT:-/tmp/tc_out}
mkdir -p "$work" "$out"
nvidia-smi --query-gpu=name,memory.used --format=csv,noheader 2>/dev/null
pids=()
for p in "${precs[@]}"; do
  ${LCG_PY:-python3} bench/torch_copy_train.py --precision "$p" --compile --time-limit "$secs" --state "$work/$p.pt" \
    --out "$work/copy-$p.csv" --curve "$work/curve-$p.csv" "$@" >>"$work/$p.log" 2>&1 &
  pids+=($!)
done
rc=0
for i in "${!pids[@]}"; do
  wait "${pids[$i]}"
  r=$?
  echo "gpu-torch-copy: ${precs[$i]} exit $r"
  [ $r = 0 ] || { [ $r = 124 ] && [ $rc != 1 ] && rc=124; } || rc=1
done
for p in "${precs[@]}"; do
  tail -n 4 "$work/$p.log"
  cp "$work/$p.log" "$out/torch-$p.log"
  for f in "$work/curve-$p.csv" "$work/copy-$p.csv"; do [ -e "$f" ] && cp "$f" "$out/"; done
done
exit $rc
