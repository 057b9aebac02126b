#!/bin/bash
# cuda/test_gpu_e2e.sh: end-to-end checks of `lcgbench run/sweep --device cuda` (issue 18), after
# cuda/test_gpu's kernel and model checks (make CUDA=1 test-gpu runs both). Usage:
#   bash cuda/test_gpu_e2e.sh [LCGBENCH]      (default ./lcgbench)
# Without a usable GPU (or in a build without CUDA) it checks the one-line errors, prints one
# SKIP line and passes. With one:
#   - a GPU run repeated gives the same CSV bits outside wall_* (fp32 and tf32);
#   - a checkpoint trained on the GPU evaluates on the CPU (--load) with the same exact-match
#     counts (a sample that differs is reported as a near-tie, and fails the check);
#   - the GPU's evaluation (the GPU prefill) against LCG_GPU_EVAL=cpu (the CPU's prefill with the
#     GPU's parameters) on the same run: the same exact match and token accuracy at every
#     length, eval loss and attention diagnostics within 1e-4 relative (plus the CSV's last digit),
#     and the mechanism columns (relevant-key mass, collapse) filled and within 1e-4 absolute;
#   - top-k (div-2), stick-breaking and adaptive-softmax: a repeated GPU run gives the same CSV, and
#     the GPU's evaluation LCG_GPU_EVAL=cpu's exact match and token accuracy;
#   - greedy decoding on the GPU: a sort run with --bleu (and a bleu@64 validation monitor) gives
#     LCG_GPU_EVAL=cpu's bleu column and validation scores;
#   - CPU and GPU rows of one configuration are different sweep cells, each skipped once done;
#   - a non-finite step on the GPU (LCG_TEST_NAN) stops with one line and resumes;
#   - `sweep --device cuda --gpus 0,0` (two worker processes sharing GPU 0) of a 4-cell grid gives
#     the serial GPU sweep's CSV outside wall_*, and so does `mpirun -np 2 lcgbench-mpi sweep
#     --device cuda` (both ranks on GPU 0; where mpirun and a CUDA lcgbench-mpi exist); the
#     workers' idle time between cells is printed as info;
#   - --precision tf32 and bf16: repeated runs give the same CSV bits;
#   - bad inputs: --precision bf16 and tf32 on the CPU, an unknown device, --gpus
#     without --device cuda, a bad --gpus list.
#   - a run stopped by timeout(1) writes its checkpoint (two SIGTERMs are one request);
# Prints one line per check and "N passed, N failed"; exit 1 if any failed. Informational lines
# ("info:") compare the GPU's and the CPU's training of the same seed.
set -u
LCG=${1:-./lcgbench}
export OMP_WAIT_POLICY=PASSIVE
d=$(mktemp -d)
trap 'rm -rf "$d"' EXIT
pass=0 fail=0
ok() { echo "ok   $*"; pass=$((pass + 1)); }
bad() { echo "FAIL $*"; fail=$((fail + 1)); }
# expect RC CMD...: the command exits RC with exactly one line on stderr
expect() {
  local want=$1 what=$2
  shift 2
  "$@" >"$d/o" 2>"$d/e"
  local rc=$? n
  n=$(wc -l <"$d/e")
  if [ "$rc" = "$want" ] && [ "$n" = 1 ]; then ok "$what: exit $rc, '$(cat "$d/e")'"
  else bad "$what: exit $rc (want $want), $n stderr lines: $(head -3 "$d/e")"; fi
}
# the CSV without its wall_* columns (and any named in $2, comma-separated)
strip_csv() {
  python3 - "$1" "${2:-}" <<'EOF'
import csv, sys
rows = list(csv.reader(open(sys.argv[1])))
skip = set(sys.argv[2].split(",")) if sys.argv[2] else set()
keep = [i for i, h in enumerate(rows[0]) if not h.startswith("wall_") and h not in skip]
for r in rows:
    print("\x1f".join(r[i] for i in keep))
EOF
}
col() { # the values of column $2 of CSV $1, one a line
  python3 -c 'import csv,sys; r=list(csv.reader(open(sys.argv[1]))); i=r[0].index(sys.argv[2]); print("\n".join(x[i] for x in r[1:]))' "$1" "$2"
}

BASE="--task copy --layers 2 --dim 64 --heads 4 --head-dim 16 --ffn 128 --batch 32 --eval-samples 30 --max-len 96 --quiet"
SMALL="$BASE --steps 1000"

expect 2 "--precision bf16" "$LCG" run --precision bf16 $SMALL --out "$d/x.csv"
expect 2 "--precision tf32 on the CPU" "$LCG" run --precision tf32 $SMALL --out "$d/x.csv"
expect 2 "--device unknown" "$LCG" run --device tpu $SMALL --out "$d/x.csv"
expect 2 "sweep --gpus without --device cuda" "$LCG" sweep --gpus 0,1 $SMALL --out "$d/x.csv"
expect 2 "sweep --gpus with a bad list" "$LCG" sweep --device cuda --gpus 0,,1 $SMALL --out "$d/x.csv"

# the first GPU run: its error, if any, says why there is no GPU (one line, exit 1)
"$LCG" run --device cuda $SMALL --attn asentmax --pos nape --out "$d/g1.csv" --save "$d/g.ckpt" >/dev/null 2>"$d/e"
rc=$?
if [ $rc != 0 ]; then
  if grep -q -e "no usable CUDA GPU" -e "built without CUDA" "$d/e" && [ "$(wc -l <"$d/e")" = 1 ] && [ $rc = 1 ]; then
    ok "--device cuda without a GPU: exit 1, '$(cat "$d/e")'"
    echo "$pass passed, $fail failed"
    echo "SKIP: end-to-end GPU checks ($(sed "s/^lcgbench run: //" "$d/e"))"
    [ $fail = 0 ]
    exit
  fi
  bad "the first GPU run: exit $rc: $(head -3 "$d/e")"
  echo "$pass passed, $fail failed"
  exit 1
fi
ok "a GPU run (asentmax + nape, fp32) with --save"
[ "$(col "$d/g1.csv" device | sort -u)" = cuda ] && [ -n "$(col "$d/g1.csv" gpu | head -1)" ] &&
  [ "$(col "$d/g1.csv" precision | sort -u)" = fp32 ] && ok "the CSV records device cuda, gpu '$(col "$d/g1.csv" gpu | head -1)', fp32" ||
  bad "device columns: $(col "$d/g1.csv" device | head -1) '$(col "$d/g1.csv" gpu | head -1)' $(col "$d/g1.csv" precision | head -1)"

# repeated: the same bits
"$LCG" run --device cuda $SMALL --attn asentmax --pos nape --out "$d/g2.csv" >/dev/null 2>"$d/e" || bad "the repeat: $(cat "$d/e")"
if [ "$(strip_csv "$d/g1.csv")" = "$(strip_csv "$d/g2.csv")" ]; then ok "a GPU run repeated: identical CSV outside wall_*"
else bad "a GPU run repeated differs:"; diff <(strip_csv "$d/g1.csv") <(strip_csv "$d/g2.csv") | head -6; fi
for p in tf32 bf16; do
  rm -f "$d/t1.csv" "$d/t2.csv" # run appends: a fresh pair for each precision
  "$LCG" run --device cuda --precision $p $SMALL --out "$d/t1.csv" >/dev/null 2>"$d/e" &&
    "$LCG" run --device cuda --precision $p $SMALL --out "$d/t2.csv" >/dev/null 2>>"$d/e"
  if [ $? = 0 ] && [ "$(strip_csv "$d/t1.csv")" = "$(strip_csv "$d/t2.csv")" ] && [ "$(col "$d/t1.csv" precision | sort -u)" = $p ]
  then ok "--precision $p runs, repeated identically (exact% $(col "$d/t1.csv" exact_match | tr '\n' ' '))"
  else bad "--precision $p: $(head -2 "$d/e") (precision column: $(col "$d/t1.csv" precision | sort -u | tr '\n' ' '); repeat $([ "$(strip_csv "$d/t1.csv")" = "$(strip_csv "$d/t2.csv")" ] && echo same || echo differs))"; fi
done

# the GPU's checkpoint on the CPU: the same exact-match counts
"$LCG" run --load "$d/g.ckpt" --eval-samples 30 --max-len 96 --quiet --out "$d/c.csv" >/dev/null 2>"$d/e" || bad "--load on the CPU: $(cat "$d/e")"
if [ "$(col "$d/g1.csv" exact_match)" = "$(col "$d/c.csv" exact_match)" ] && [ "$(col "$d/c.csv" device | sort -u)" = cpu ] &&
   [ "$(col "$d/g1.csv" token_acc)" = "$(col "$d/c.csv" token_acc)" ]
then ok "the GPU's checkpoint on the CPU: the same exact-match counts ($(col "$d/c.csv" exact_match | tr '\n' ' ')) and token accuracies ($(col "$d/c.csv" token_acc | tr '\n' ' '))"
else bad "GPU vs CPU exact match (a near-tie?): $(col "$d/g1.csv" exact_match | tr '\n' ' ') vs $(col "$d/c.csv" exact_match | tr '\n' ' ')"; fi

# the GPU prefill against the CPU's, same run (training bitwise the same: only the evaluation differs)
LCG_GPU_EVAL=cpu "$LCG" run --device cuda $SMALL --attn asentmax --pos nape --out "$d/ge.csv" >/dev/null 2>"$d/e" || bad "LCG_GPU_EVAL=cpu: $(cat "$d/e")"
close=$(python3 - "$d/g1.csv" "$d/ge.csv" <<'EOF'
import csv, sys
a, b = (list(csv.DictReader(open(f))) for f in sys.argv[1:3])
worst, same = 0.0, len(a) == len(b)  # worst: |u - v| in units of (1e-4 |v| + the last printed digit)
for x, y in zip(a, b):
    same &= x["exact_match"] == y["exact_match"] and x["token_acc"] == y["token_acc"]
    for k in ("eval_loss", "attn_entropy", "attn_support", "attn_max"):
        for u, v in zip(x[k].split(";"), y[k].split(";")):
            if u and v:
                ulp = 10.0 ** -(len(v.split(".")[1]) if "." in v else 0)
                worst = max(worst, abs(float(u) - float(v)) / (1e-4 * abs(float(v)) + ulp))
print("same" if same else "differ", "%.2e" % worst)
EOF
)
set -- $close
if [ "${1:-}" = same ] && python3 -c "import sys; sys.exit(not float('${2:-nan}') <= 1)"; then
  ok "GPU evaluation vs LCG_GPU_EVAL=cpu: the same exact match and token accuracy, loss and diagnostics within 1e-4 relative plus the last printed digit (worst $2 of that)"
else bad "GPU evaluation vs LCG_GPU_EVAL=cpu: exact/token ${1:-?}, worst loss/diagnostic rel diff ${2:-?} (a near-tie?): $(col "$d/g1.csv" exact_match | tr '\n' ' ') vs $(col "$d/ge.csv" exact_match | tr '\n' ' ')"; fi

# the mechanism columns from the GPU's own evaluation (the batch's keys and hidden): filled at every
# length (2 layers: l0, l1) and within 1e-4 absolute (plus the last printed digit) of the CPU's
mech=$(python3 - "$d/g1.csv" "$d/ge.csv" <<'EOF'
import csv, sys
a, b = (list(csv.DictReader(open(f))) for f in sys.argv[1:3])
cols = ["rel_mass_best_l0", "rel_mass_best_l1", "rel_mass_mean_l0", "rel_mass_mean_l1", "collapse"]
filled, worst = len(a) == len(b) and len(a) > 0, 0.0
for x, y in zip(a, b):
    for k in cols:
        if not x[k] or not y[k]:
            filled = False
            continue
        worst = max(worst, abs(float(x[k]) - float(y[k])))
    filled &= x["rel_mass_best_l2"] == "" == y["rel_mass_best_l2"]
print("filled" if filled else "empty", "%.2e" % worst)
EOF
)
set -- $mech
if [ "${1:-}" = filled ] && python3 -c "import sys; sys.exit(not float('${2:-nan}') <= 1e-4 + 1e-6)"; then
  ok "the mechanism columns of the GPU's evaluation: filled at every length, within 1e-4 of LCG_GPU_EVAL=cpu's (worst $2; layer-1 best-head mass $(col "$d/g1.csv" rel_mass_best_l1 | tr '\n' ' ')vs $(col "$d/ge.csv" rel_mass_best_l1 | tr '\n' ' '))"
else bad "the mechanism columns of the GPU's evaluation: ${1:-?}, worst abs diff ${2:-?}: mass $(col "$d/g1.csv" rel_mass_best_l1 | tr '\n' ' ')vs $(col "$d/ge.csv" rel_mass_best_l1 | tr '\n' ' '); collapse $(col "$d/g1.csv" collapse | tr '\n' ' ')vs $(col "$d/ge.csv" collapse | tr '\n' ' ')"; fi

# top-k (div-2), stick-breaking, adaptive-softmax on the GPU (their kernels: test_gpu): a repeated
# run gives the same CSV bits, and the GPU's evaluation the exact match and token accuracy of
# LCG_GPU_EVAL=cpu's (the CPU prefill with the GPU's parameters) at every length
for spec in "topk --topk-rule div-2 --pos rope" "stick-break --pos nape" "adaptive-softmax --pos alibi"; do
  nm=${spec%% *}
  # shellcheck disable=SC2086
  "$LCG" run --device cuda $BASE --steps 300 --attn $spec --out "$d/o1.csv" >/dev/null 2>"$d/e" &&
    "$LCG" run --device cuda $BASE --steps 300 --attn $spec --out "$d/o2.csv" >/dev/null 2>>"$d/e" &&
    LCG_GPU_EVAL=cpu "$LCG" run --device cuda $BASE --steps 300 --attn $spec --out "$d/o3.csv" >/dev/null 2>>"$d/e" ||
    bad "--attn $spec on the GPU: $(head -2 "$d/e")"
  if [ -s "$d/o1.csv" ] && [ "$(strip_csv "$d/o1.csv")" = "$(strip_csv "$d/o2.csv")" ]; then ok "--attn $nm on the GPU: a repeated run gives the same CSV"
  else bad "--attn $nm on the GPU: a repeated run differs"; fi
  if [ -s "$d/o1.csv" ] && [ "$(col "$d/o1.csv" exact_match; col "$d/o1.csv" token_acc)" = "$(col "$d/o3.csv" exact_match; col "$d/o3.csv" token_acc)" ]; then
    ok "--attn $nm: GPU evaluation vs LCG_GPU_EVAL=cpu, the same exact match and token accuracy ($(col "$d/o1.csv" exact_match | tr '\n' ' '))"
  else bad "--attn $nm: GPU evaluation vs LCG_GPU_EVAL=cpu: $(col "$d/o1.csv" exact_match | tr '\n' ' ')vs $(col "$d/o3.csv" exact_match | tr '\n' ' ')(a near-tie?)"; fi
done

# greedy decoding on the GPU (BLEU): a sort run with --bleu and a bleu@64 monitor (validation every
# 50%, the best checkpoint's rows too) against LCG_GPU_EVAL=cpu (the CPU decoder's greedy steps on
# the GPU's parameters): the same bleu column, the same validation scores in the training curve
SORT="--task sort --layers 2 --dim 64 --heads 4 --head-dim 16 --ffn 128 --batch 32 --eval-samples 30 --max-len 96
  --steps 600 --quiet --bleu --val-every 50% --val-lens 64 --val-samples 20 --monitor bleu@64 --select best"
"$LCG" run --device cuda $SORT --out "$d/sb.csv" --log-csv "$d/sbl.csv" >/dev/null 2>"$d/e" || bad "sort --bleu on the GPU: $(head -2 "$d/e")"
LCG_GPU_EVAL=cpu "$LCG" run --device cuda $SORT --out "$d/sbc.csv" --log-csv "$d/sblc.csv" >/dev/null 2>"$d/e" ||
  bad "sort --bleu, LCG_GPU_EVAL=cpu: $(head -2 "$d/e")"
vb() { python3 -c 'import csv,sys; r=list(csv.reader(open(sys.argv[1]))); i=r[0].index("bleu@64"); print(" ".join(x[i] for x in r[1:] if x[i]))' "$1"; }
if [ -s "$d/sb.csv" ] && [ -n "$(col "$d/sb.csv" bleu | tr -d '\n')" ] && [ "$(col "$d/sb.csv" bleu)" = "$(col "$d/sbc.csv" bleu)" ] &&
   [ "$(col "$d/sb.csv" exact_match)" = "$(col "$d/sbc.csv" exact_match)" ] && [ -n "$(vb "$d/sbl.csv")" ] &&
   [ "$(vb "$d/sbl.csv")" = "$(vb "$d/sblc.csv")" ]
then ok "sort --bleu: the GPU's greedy decoding gives LCG_GPU_EVAL=cpu's bleu column ($(col "$d/sb.csv" bleu | tr '\n' ' ')) and validation bleu@64 ($(vb "$d/sbl.csv"))"
else bad "sort --bleu, GPU vs LCG_GPU_EVAL=cpu (a near-tie?): bleu $(col "$d/sb.csv" bleu | tr '\n' ' ')vs $(col "$d/sbc.csv" bleu | tr '\n' ' '); validation $(vb "$d/sbl.csv") vs $(vb "$d/sblc.csv")"; fi
echo "info: sort --bleu evaluation time per length (wall_eval_s), GPU: $(col "$d/sb.csv" wall_eval_s | tr '\n' ' ')CPU: $(col "$d/sbc.csv" wall_eval_s | tr '\n' ' ')"

# the same seed trained on the CPU (informational: fp32 sums in another order)
"$LCG" run $SMALL --attn asentmax --pos nape --out "$d/cpu.csv" >/dev/null 2>&1 &&
  echo "info: same seed, CPU vs GPU: train_loss $(col "$d/cpu.csv" train_loss | head -1) vs $(col "$d/g1.csv" train_loss | head -1);" \
       "exact% $(col "$d/cpu.csv" exact_match | tr '\n' ' ')vs $(col "$d/g1.csv" exact_match | tr '\n' ' ')"

# CPU and GPU rows are different cells: a GPU sweep over a CSV holding the CPU run adds its rows,
# and skips them the second time
cp "$d/cpu.csv" "$d/s.csv"
"$LCG" sweep --attn asentmax --pos nape --device cuda $SMALL --out "$d/s.csv" >/dev/null 2>"$d/e" || bad "sweep --device cuda: $(head -2 "$d/e")"
n1=$(($(wc -l <"$d/s.csv") - 1))
"$LCG" sweep --attn asentmax --pos nape --device cuda $SMALL --out "$d/s.csv" >/dev/null 2>"$d/e"
n2=$(($(wc -l <"$d/s.csv") - 1)) ncpu=$(($(wc -l <"$d/cpu.csv") - 1))
ids=$(col "$d/s.csv" run_id | sort -u | wc -l)
if [ $n1 = $((2 * ncpu)) ] && [ $n2 = $n1 ] && [ "$ids" = 2 ]; then ok "sweep --device cuda: CPU and GPU rows are two cells (run ids), done cells skipped"
else bad "sweep cells: $ncpu CPU rows, $n1 after the GPU sweep, $n2 after its repeat, $ids run ids"; fi

# a non-finite step on the GPU (the logits; a gradient): one line, exit 1, naming what the CPU
# names, and the checkpoint resumes
for f in logits grad; do
  LCG_TEST_NAN=$f@7 "$LCG" run --device cuda $BASE --steps 20 --out "$d/n.csv" --save "$d/n.ckpt" >/dev/null 2>"$d/e"
  rc=$?
  LCG_TEST_NAN=$f@7 "$LCG" run $BASE --steps 20 --out "$d/nc.csv" --save "$d/nc.ckpt" >/dev/null 2>"$d/ec"
  norm() { sed 's/ (loss [^)]*)//; s/ written to .*//' "$1"; }
  if [ $rc = 1 ] && [ "$(wc -l <"$d/e")" = 1 ] && [ "$(norm "$d/e")" = "$(norm "$d/ec")" ]; then ok "a non-finite step ($f) on the GPU, as on the CPU: '$(cat "$d/e")'"
  else bad "a non-finite step ($f) on the GPU: exit $rc: '$(head -3 "$d/e")'; the CPU's: '$(cat "$d/ec")'"; fi
  "$LCG" run --device cuda --resume "$d/n.ckpt" --eval-samples 8 --quiet --out "$d/n.csv" >/dev/null 2>"$d/e" &&
    ok "--resume on the GPU after it" || bad "--resume on the GPU: $(head -2 "$d/e")"
  rm -f "$d/n.ckpt" "$d/nc.ckpt"
done

# under timeout(1) (a SIGTERM to the run, then one to its process group, microseconds apart; the
# CUDA runtime's threads can take the first): one stop request, the checkpoint written
timeout -s TERM 4 "$LCG" run --device cuda $BASE --steps 100000000 --save "$d/t.ckpt" --out "$d/t.csv" >/dev/null 2>"$d/e"
rc=$?
if [ $rc = 124 ] && [ -s "$d/t.ckpt" ] && grep -q "terminated at step" "$d/e" && [ ! -e "$d/t.csv" ]; then
  ok "stopped by timeout(1): the checkpoint written ('$(cut -c1-60 "$d/e")...')"
else bad "stopped by timeout(1): exit $rc, checkpoint $( [ -s "$d/t.ckpt" ] && echo written || echo missing): $(head -2 "$d/e")"; fi

# one cell per GPU worker: --gpus 0,0 (two children on GPU 0) gives the serial sweep's CSV
GRID="--attn softmax,asentmax --pos nape --seed 1,2" # BASE names the task
"$LCG" sweep --device cuda $GRID $BASE --steps 200 --out "$d/gs.csv" >/dev/null 2>"$d/e" || bad "serial GPU sweep: $(tail -2 "$d/e")"
"$LCG" sweep --device cuda --gpus 0,0 --timeline "$d/tl.csv" $GRID $BASE --steps 200 --out "$d/gw.csv" >/dev/null 2>"$d/e"
rc=$?
if [ $rc = 0 ] && [ -s "$d/gs.csv" ] && [ "$(strip_csv "$d/gs.csv")" = "$(strip_csv "$d/gw.csv")" ] &&
   grep -q "2 workers on GPUs 0,0" "$d/e" && [ "$(grep -c ',done$' "$d/tl.csv")" = 4 ]
then ok "sweep --gpus 0,0 (2 workers on GPU 0): the serial GPU sweep's CSV outside wall_*, 4 cells in the timeline"
else bad "sweep --gpus 0,0: exit $rc: $(grep -v '^ ' "$d/e" | tail -4)"; diff <(strip_csv "$d/gs.csv") <(strip_csv "$d/gw.csv") | head -4; fi
grep "idle" "$d/e" | sed 's/^lcgbench sweep: /info: --gpus 0,0: /'
# the MPI sweep: ranks map to local rank mod the visible GPUs (here both to GPU 0)
MPI_LCG="$(dirname "$LCG")/lcgbench-mpi"
if command -v mpirun >/dev/null 2>&1 && [ -x "$MPI_LCG" ] &&
   "$MPI_LCG" sweep --device cuda $GRID $BASE --steps 200 --out "$d/gm.csv" --dry-run >/dev/null 2>&1; then
  root=""; [ "$(id -u)" = 0 ] && root="--allow-run-as-root"
  CUDA_VISIBLE_DEVICES=${CUDA_VISIBLE_DEVICES:-0} timeout 600 mpirun $root --oversubscribe -np 2 -x CUDA_VISIBLE_DEVICES \
    "$MPI_LCG" sweep --device cuda $GRID $BASE --steps 200 --out "$d/gm.csv" >/dev/null 2>"$d/e"
  rc=$?
  if [ $rc = 0 ] && [ "$(strip_csv "$d/gs.csv")" = "$(strip_csv "$d/gm.csv")" ] && grep -q "rank 1 (gpu " "$d/e"
  then ok "mpirun -np 2 lcgbench-mpi sweep --device cuda: the serial GPU sweep's CSV; $(grep -o 'rank 1 (gpu [^)]*)' "$d/e" | head -1)"
  else bad "mpirun -np 2 sweep --device cuda: exit $rc: $(tail -3 "$d/e")"; fi
else
  echo "info: the MPI GPU sweep not checked (needs mpirun and $MPI_LCG built with CUDA=1 MPI=1)"
fi

echo "$pass passed, $fail failed"
[ $fail = 0 ]
