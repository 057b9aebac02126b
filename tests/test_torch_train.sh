#!/bin/bash
# tests/test_torch_train.sh: lcgbench's training steps against PyTorch's (bench/torch_train_check.py):
# from the checkpoint of step 2 of a run on a --data directory (warmup 5 steps of 40), 28 steps
# in PyTorch (torch_reference's model in double, torch.optim.AdamW, clip_grad_norm_, the
# cosine-with-warmup schedule) give the
# run's losses and its step-30 parameters within 1e-3 (measured: about 1e-6), for softmax and
# ASEntmax under NAPE and softmax under RoPE on a tiny copy model; and the check fails when the
# schedule it is told is one step off. One "SKIP" line and exit 0 without torch. Python: $LCG_PY,
# else /usr/bin/python3 (Debian's). LCG_BIN: the lcgbench to check (./lcgbench); LCG_TRAIN_ARGS:
# flags added to its runs (e.g. "--device cuda --precision fp32" for a GPU build); LCG_TRAIN_TOL:
# the tolerance (1e-3); LCG_TRAIN_PAPER=1 adds softmax and ASEntmax under NAPE at the paper's copy
# size (2 layers, C 256, 16 heads of 16, FFN 1024; batch 16 at lengths 32-64, lr 1e-3, 18 steps:
# about 20 s and 2 min of PyTorch in double on 2 CPU cores).
set -u
root=$(cd "$(dirname "$0")/.." && pwd)
py=${LCG_PY:-/usr/bin/python3}
bin=${LCG_BIN:-$root/lcgbench}
if ! "$py" -c 'import torch' >/dev/null 2>&1; then
  echo "SKIP test_torch_train: torch not importable by $py"
  exit 0
fi
t=$(mktemp -d)
trap 'rm -rf "$t"' EXIT
fail=0 checks=0
check() { checks=$((checks + 1)); eval "$2" || { echo "FAIL test_torch_train: $1"; fail=$((fail + 1)); return 1; }; }
tiny="--layers 2 --dim 16 --heads 2 --head-dim 8 --ffn 32 --len 6 --vary 2 --batch 8 --lr 1e-2"
paper="--layers 2 --dim 256 --heads 16 --head-dim 16 --ffn 1024 --len 48 --vary 16 --batch 16 --lr 1e-3"
for size in tiny paper; do
  [ $size = tiny ] || [ "${LCG_TRAIN_PAPER:-0}" = 1 ] || continue
  m=${!size} len=${m#*--len } vary=${m#*--vary } batch=${m#*--batch } lr=${m#*--lr }
  "$bin" gen --task copy --split train --count 400 --len "${len%% *}" --vary "${vary%% *}" --out "$t/$size" >/dev/null 2>&1 &&
    "$bin" gen --task copy --split test --count 10 --len 64 --out "$t/$size" >/dev/null 2>&1
  check "lcgbench gen writes the $size data" "[ $? = 0 ]"
  cells="softmax:nape asentmax:nape softmax:rope" end=30
  [ $size = paper ] && cells="softmax:nape asentmax:nape" end=20
  for cell in $cells; do
    a="--task copy $m --attn ${cell%:*} --pos ${cell#*:} --steps 40 --warmup 5 --eval-samples 10 --data $t/$size
       --out $t/x.csv --quiet ${LCG_TRAIN_ARGS:-}"
    # shellcheck disable=SC2086 # the flags are words
    "$bin" run $a --stop-at 2 --save "$t/a.ckpt" 2>"$t/err" &&
      "$bin" run $a --stop-at $end --save "$t/b.ckpt" --log-csv "$t/c-$size-$cell.csv" --log-every 1 2>"$t/err"
    check "$size $cell: lcgbench pauses at steps 2 and $end ($(grep -v paused "$t/err" | tail -n 1))" \
      "[ $? = 0 ] && [ -s $t/b.ckpt ]" || continue
    k="--data $t/$size --start $t/a.ckpt --end $t/b.ckpt --curve $t/c-$size-$cell.csv --steps 40 --lr ${lr%% *}
       --batch ${batch%% *} --tol ${LCG_TRAIN_TOL:-1e-3}"
    # shellcheck disable=SC2086
    out=$("$py" "$root/bench/torch_train_check.py" $k --warmup 5 2>&1 | grep torch_train_check)
    check "$size $cell: PyTorch's steps 3..$end are lcgbench's ($out)" '[[ "$out" == *" ok (tol "* ]]'
    echo "$size $cell ${LCG_TRAIN_ARGS:-}: $out"
    if [ "$size $cell" = "tiny softmax:nape" ]; then
      # shellcheck disable=SC2086
      "$py" "$root/bench/torch_train_check.py" $k --warmup 6 >/dev/null 2>&1
      check "$cell: and a schedule one step off fails" "[ $? = 1 ]"
    fi
    rm -f "$t/a.ckpt" "$t/b.ckpt"
  done
done
echo "test_torch_train: $checks checks, $fail failed (lcgbench's training steps against PyTorch's)"
[ "$fail" = 0 ]
