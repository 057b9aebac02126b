#!/bin/bash
# scripts/gpu-probe.sh go|slice SECONDS CSV sweep-args...: one call of a probe on one lent GPU:
# the lcgbench sweep (scripts/gpu-session.sh go|slice SECONDS CSV sweep-args...: give --gpus 0
# once per cell to run them all side by side) and, at the same time, the PyTorch copy runs named
# in $LCG_TORCH (scripts/gpu-torch-copy.sh's RUNs, e.g. "tf32:2 tf32:3", with the flags
# $LCG_TORCH_FLAGS, e.g. "--stop-at 31250"; none if empty). Both stop themselves after SECONDS
# and keep their state on the machine for the next call (slice, issued the moment this returns).
# With LCG_TRAIN_CHECK=1, `go` also runs tests/test_torch_train.sh on the GPU binary meanwhile
# (its training steps against PyTorch's, at the tiny and the paper's copy size, --precision fp32
# within 1e-3 and tf32 within 5e-2; the PyTorch side on the CPU).
# What comes back is two files: $OUT/probe.tgz (the sweep's CSV, timeline, log and curves; each
# PyTorch run's log, curve and rows; the training check's output) and $OUT/probe.txt (every
# validation curve's exact match, one line each, both exit codes, the training check's lines).
# Exit status: 0 when both are done (cells finished or paused at --stop-at), 124 while either is
# going, 1 when either failed.
set -u
[ $# -ge 3 ] || { echo "gpu-probe: usage: go|slice SECONDS CSV sweep-args..." >&2; exit 2; }
mode=$1 secs=$2
root=$(cd "$(dirname "$0")/.." && pwd)
out=${OUT:-/tmp/probe_out} tmp=/tmp/probe_parts
rm -rf "$tmp" && mkdir -p "$tmp/lcg" "$tmp/torch" "$out" || exit 1
trc=0
if [ -n "${LCG_TORCH:-}" ]; then
  # shellcheck disable=SC2086 # the runs and flags are words
  OUT="$tmp/torch" bash "$root/scripts/gpu-torch-copy.sh" $((secs - 15)) $LCG_TORCH -- ${LCG_TORCH_FLAGS:-} \
    >"$tmp/torch/gpu-torch-copy.out" 2>&1 &
  tpid=$!
fi
if [ "$mode" = go ] && [ "${LCG_TRAIN_CHECK:-0}" = 1 ]; then
  ( sleep 20 # gpu-session.sh has unpacked libcsv by then, where it is not installed
    export LD_LIBRARY_PATH=/tmp/csvlib/usr/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
    for prec in fp32:1e-3 tf32:5e-2; do
      LCG_BIN=${LCG_BIN:-build/cu4/lcgbench} LCG_PY=${LCG_PY:-python3} LCG_TRAIN_PAPER=1 LCG_TRAIN_TOL=${prec#*:} \
        LCG_TRAIN_ARGS="--device cuda --precision ${prec%:*}" timeout $((secs - 40)) bash "$root/tests/test_torch_train.sh"
    done ) >"$tmp/train-check.txt" 2>&1 &
  cpid=$!
fi
[ "$mode" = go ] && sleep 2 # the sweep starts the MPS daemon; the PyTorch runs start before it either way
OUT="$tmp/lcg" bash "$root/scripts/gpu-session.sh" "$@" >"$tmp/lcg/gpu-session.out" 2>&1
lrc=$?
[ -n "${LCG_TORCH:-}" ] && { wait "$tpid"; trc=$?; }
[ -n "${cpid:-}" ] && { wait "$cpid"; cp "$tmp/train-check.txt" "$tmp/lcg/"; }
{
  echo "lcgbench sweep exit $lrc; PyTorch runs exit $trc"
  for f in "$tmp"/lcg/curves/*.csv "$tmp"/torch/curve-*.csv; do
    [ -e "$f" ] || continue
    awk -F, -v name="$(basename "$f" .csv)" 'NR == 1 { for (i = 1; i <= NF; i++) if ($i ~ /^exact@/) c = i; next }
      c && $c != "" { s = s sprintf(" %s:%.3f", $(name ~ /^curve-/ ? 1 : 2), $c) }
      END { printf "%-40s%s\n", name, s }' "$f"
  done
  tail -n 5 "$tmp/lcg/gpu-session.out"
  grep -h "stopped at\|exit\|Error" "$tmp/torch/gpu-torch-copy.out" 2>/dev/null | tail -n 8
  grep -h "torch_train_check\|^FAIL\|^test_torch_train" "$tmp/train-check.txt" 2>/dev/null
} >"$out/probe.txt"
cat "$out/probe.txt"
tar -czf "$out/probe.tgz" -C "$tmp" lcg torch || exit 1
[ $lrc = 0 ] && [ $trc = 0 ] && exit 0
{ [ $lrc = 124 ] || [ $lrc = 0 ]; } && { [ $trc = 124 ] || [ $trc = 0 ]; } && exit 124
exit 1
