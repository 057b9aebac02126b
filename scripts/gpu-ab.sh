#!/bin/bash
# scripts/gpu-ab.sh A B: on the GPU machine, two CUDA builds of lcgbench (A: before a change, B:
# after; each a directory with lcgbench and cuda/bench_gpu, B also cuda/test_gpu) compared in one
# call. (1) Bits: short GPU runs on copy (C 128, 2 layers, 1,500 steps, the test ladder to 4,096
# tokens) for asentmax, sparsemax and entmax at alpha 1.3 (the three threshold modes), with both
# builds: the CSVs must be the same outside the wall_* columns. (2) B's test_gpu (the GPU kernels
# against the CPU's). (3) Time: A's asentmax checkpoint evaluated by each build to 16,384 tokens,
# A B A B A B (wall_eval_s; trained weights, so rows with few candidates), then bench_gpu eval at
# 16,384 and 65,536 tokens (random weights: long candidate lists); (4) training tokens/s:
# mqmtar's architecture on its real data (800 steps; skewed tokens, the filler in a third of the
# rows), A B A B, its rows compared bit for bit too; then bench_gpu 40 steps on mqmtar's and
# copy's architectures (random tokens) in tf32, A B A B. Logs and CSVs under /tmp/lcg_ab; the summary, test_gpu's log and the asentmax CSVs come back under $OUT (a call brings back 8
# files at most). LCG_AB_EVAL=0 leaves out (3) (about 100 s). Exit 1 when the bits differ or
# test_gpu fails. libcsv from LCG_DEBS as in
# scripts/gpu-session.sh. Not a benchmark of record (one GPU, three repetitions): `make bench-gpu`.
set -u
A=$1 B=$2
out=/tmp/lcg_ab
rm -rf "$out"
mkdir -p "$out" "${OUT:=/tmp/lcg_ab_out}"
if [ ! -e /usr/include/csv.h ] && [ ! -e /tmp/csvlib/usr ]; then
  for d in "${LCG_DEBS:-build/debs}"/*.deb; do dpkg -x "$d" /tmp/csvlib || exit 1; done
fi
export LD_LIBRARY_PATH=/tmp/csvlib/usr/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
export OMP_WAIT_POLICY=PASSIVE
nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm --format=csv,noheader | tee "$out/gpu.txt"
cfg=(--task copy --pos nape --layers 2 --dim 128 --heads 4 --head-dim 32 --ffn 512 --len 48 --vary 16
  --steps 1500 --batch 64 --lr 1e-3 --warmup 100 --eval-lens 64,256,1024,4096 --eval-samples 100
  --device cuda --precision tf32 --seed 1)
# ab_bin A|B PROGRAM: that build's program
ab_bin() { if [ "$1" = B ]; then echo "$B/$2"; else echo "$A/$2"; fi; }
# ab_bits NAME CSV_A CSV_B: their data rows and how many differ outside wall_*; rc=1 unless none
# differ (and there are some)
ab_bits() {
  local same
  same=$(paste -d'\n' <(tail -n +2 "$2" | cut -d, -f1-61) <(tail -n +2 "$3" | cut -d, -f1-61) |
    awk 'NR % 2 { a = $0; next } { n++; d += a != $0 } END { print n + 0, d + 0 }')
  echo "bits $1: rows, differing rows (outside wall_*): $same" | tee -a "$out/summary.txt"
  [ "${same#* }" = 0 ] && [ "${same% *}" != 0 ] || rc=1
}
rc=0
for attn in asentmax sparsemax entmax; do
  extra=()
  [ $attn = entmax ] && extra=(--alpha 1.3)
  for x in A B; do
    bin=$(ab_bin $x lcgbench)
    save=()
    [ $attn = asentmax ] && save=(--save "/tmp/ab-$x.ckpt")
    "$bin" run "${cfg[@]}" --attn $attn "${extra[@]}" "${save[@]}" --out "$out/bits-$attn-$x.csv" \
      >"$out/bits-$attn-$x.log" 2>&1 || { echo "gpu-ab: $x $attn run failed"; tail -3 "$out/bits-$attn-$x.log"; rc=1; }
  done
  ab_bits $attn "$out/bits-$attn-A.csv" "$out/bits-$attn-B.csv"
done
if [ -x "$B/cuda/test_gpu" ]; then
  timeout 120 "$B/cuda/test_gpu" >"$out/test_gpu.log" 2>&1
  r=$?
  echo "test_gpu (B): rc $r; $(grep -E 'passed|failed' "$out/test_gpu.log" | tail -1)" | tee -a "$out/summary.txt"
  grep -E '^FAIL' "$out/test_gpu.log" | head -5
  [ $r = 0 ] || rc=1
fi
for rep in $([ "${LCG_AB_EVAL:-1}" = 0 ] || echo 1 2 3); do
  for x in A B; do
    bin=$(ab_bin $x lcgbench)
    "$bin" run "${cfg[@]}" --attn asentmax --load /tmp/ab-A.ckpt --eval-lens 1024,4096,16384 --eval-samples 60 \
      --out "$out/time-$x.csv" >"$out/time-$x-$rep.log" 2>&1 || echo "gpu-ab: $x timing run failed"
  done
done
for x in $([ "${LCG_AB_EVAL:-1}" = 0 ] || echo A B); do
  awk -F, -v x=$x 'NR > 1 { s[$25] = s[$25] " " $NF } END { for (l in s) print "eval " x " asentmax (trained) at " l " tokens, wall_eval_s:" s[l] }' \
    "$out/time-$x.csv" | sort -t' ' -k6n | tee -a "$out/summary.txt"
done
# ab_bench LABEL PATTERN ARGS...: bench_gpu ARGS with A, B, A, B; of each, its first line matching PATTERN
ab_bench() {
  local label=$1 pat=$2 x
  shift 2
  for x in A B A B; do
    echo "$label ($x): $(timeout 60 "$(ab_bin $x cuda/bench_gpu)" "$@" 2>&1 | grep -m1 "$pat")" | tee -a "$out/summary.txt"
  done
}
for n in $([ "${LCG_AB_EVAL:-1}" = 0 ] || echo 16384 65536); do
  ab_bench "bench_gpu eval $n asentmax" '^eval' eval $n asentmax
done
mq=(--task mqmtar --attn softmax --pos nape --layers 4 --dim 512 --heads 16 --head-dim 32 --ffn 1024 --batch 128
  --lr 2e-4 --warmup 100 --steps 800 --len 48 --vary 16 --eval-lens 64 --eval-samples 20 --device cuda --precision tf32)
for rep in 1 2; do
  for x in A B; do
    bin=$(ab_bin $x lcgbench)
    "$bin" run "${mq[@]}" --out "$out/mq-$x-$rep.csv" >"$out/mq-$x-$rep.log" 2>&1 || echo "gpu-ab: $x mqmtar run failed"
    echo "mqmtar softmax, real data, 800 steps ($x): $(awk -F, 'NR == 2 { print $64 " tok/s (wall_train_tok_s)" }' \
      "$out/mq-$x-$rep.csv")" | tee -a "$out/summary.txt"
  done
done
ab_bits mqmtar "$out/mq-A-1.csv" "$out/mq-B-1.csv"
ab_bench "bench_gpu 40 mqmtar asentmax tf32" 'tok/s' 40 mqmtar asentmax tf32
ab_bench "bench_gpu 40 copy softmax tf32" 'tok/s' 40 copy softmax tf32
echo "gpu-ab: exit $rc" | tee -a "$out/summary.txt"
cp "$out/summary.txt" "$out/test_gpu.log" "$out"/bits-asentmax-?.csv "$OUT/" 2>/dev/null
exit $rc
