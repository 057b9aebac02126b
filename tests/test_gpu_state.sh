#!/bin/bash
# tests/test_gpu_state.sh: scripts/gpu-session.sh's state across sessions, on the host: a fake
# sweep state (a CSV, a 2.6 MB "checkpoint", curves) packed into parts over several calls, kept
# here, planned into carry lists and unpacked elsewhere must come back byte for byte; a corrupt
# part, a missing one and an existing work folder are refused. No GPU, no lcgbench: coreutils,
# tar and git. Part size 300,000 bytes (the real one is 16,000,000), so 9 parts.
set -u
root=$(cd "$(dirname "$0")/.." && pwd)
t=$(mktemp -d)
trap 'rm -rf "$t"' EXIT
fail=0 checks=0
# check NAME CONDITION: counts it; prints only a failure
check() { checks=$((checks + 1)); eval "$2" || { echo "FAIL test_gpu_state: $1"; fail=$((fail + 1)); }; }
gs() { (cd "$root" && env LCG_PART_BYTES=300000 LCG_PACK="$t/pack" LCG_STATE="$t/store" "$@") ; }
mkdir -p "$t/lcg/curves"
head -c 2600000 /dev/urandom >"$t/lcg/lcgbench-0123456789abcdef.ckpt"
head -c 7000 /dev/urandom >"$t/lcg/lcgbench-0123456789abcdef.ckpt.rungs"
printf 'run_id,step\nx,1\n' >"$t/lcg/paper.csv"
: >"$t/lcg/paper.csv.lock"
printf 'step,loss\n1,0.5\n' >"$t/lcg/curves/copy-softmax-nape-s1.csv"
# the lent machine: three calls of pack K, each with its own $OUT
for k in 0 1 2; do
  mkdir -p "$t/out$k"
  gs OUT="$t/out$k" LCG_WORK="$t/lcg" bash scripts/gpu-session.sh pack $k >"$t/pack$k.log" 2>&1
  check "pack $k exits 0" "[ $? = 0 ]"
done
n=$(grep -c '^part\.' "$t/pack/MANIFEST")
check "9 parts of at most 300,000 bytes" "[ $n = 9 ] && [ \$(ls -l $t/pack/part.* | awk '\$5 > 300000' | wc -l) = 0 ]"
check "a call brings back 4 parts and MANIFEST" "[ \$(ls $t/out0 | wc -l) = 5 ] && [ \$(ls $t/out2 | wc -l) = 2 ]"
check "pack 2 says all are sent" "grep -q 'all sent' $t/pack2.log"
gs OUT="$t/out3" LCG_WORK="$t/lcg" bash scripts/gpu-session.sh pack 3 >"$t/pack3.log" 2>&1
check "pack 3 (no such parts) is refused in one line" "[ $? = 1 ] && [ \$(wc -l <$t/pack3.log) = 1 ]"
# here: keep each call's files; a corrupt part is counted missing until a good copy comes
gs bash scripts/gpu-session.sh keep "$t/out0" >/dev/null 2>&1
printf 'X' | dd of="$t/out1/part.05" bs=1 seek=10 conv=notrunc 2>/dev/null
gs bash scripts/gpu-session.sh keep "$t/out1" >"$t/keep1.log" 2>&1
check "keep names the corrupt part missing" "grep -q 'part.05' $t/keep1.log && [ ! -e $t/store/part.05 ]"
gs bash scripts/gpu-session.sh keep "$t/out2" >/dev/null 2>&1
gs bash scripts/gpu-session.sh plan >"$t/plan0.log" 2>&1
check "plan refuses while a part is missing" "[ $? = 1 ] && grep -q part.05 $t/plan0.log"
cp "$t/pack/part.05" "$t/out1/part.05"
gs bash scripts/gpu-session.sh keep "$t/out1" >"$t/keep2.log" 2>&1
check "keep: all 9 parts, checked" "grep -q 'all 9 parts' $t/keep2.log"
mkdir -p "$t/bin" "$t/debs" && head -c 1000 /dev/urandom >"$t/bin/lcgbench" && : >"$t/debs/x.deb"
gs LCG_BIN="$t/bin/lcgbench" LCG_DEBS="$t/debs" bash scripts/gpu-session.sh plan >"$t/plan.json" 2>"$t/plan.log"
check "plan exits 0" "[ $? = 0 ]"
check "plan: the first call carries the program, the debs and MANIFEST" \
  "head -1 $t/plan.json | grep -q '^\[\"$t/bin/lcgbench\", \"$t/debs\", \"$t/store/MANIFEST\"'"
check "plan: every part once, at most 8 paths a call" \
  "[ \$(grep -o 'part\.[0-9]*' $t/plan.json | sort -u | wc -l) = 9 ] && [ \$(grep -o 'part\.[0-9]*' $t/plan.json | wc -l) = 9 ] && [ \$(awk -F', ' 'NF > 8' $t/plan.json | wc -l) = 0 ]"
# the next session's lent machine: the parts arrive over two calls
mkdir -p "$t/carry1" "$t/carry2"
cp "$t/store/MANIFEST" "$t/store"/part.0[0-4] "$t/carry1/" && cp "$t/store"/part.0[5-8] "$t/carry2/"
(cd "$root" && env LCG_STATE="$t/carry1" LCG_INBOX="$t/inbox" LCG_WORK="$t/new/lcg" bash scripts/gpu-session.sh unpack >"$t/un1.log" 2>&1)
check "unpack waits (exit 3) for the missing parts" "[ $? = 3 ] && grep -q 'part.08' $t/un1.log && [ ! -e $t/new/lcg ]"
mkdir -p "$t/new"
(cd "$root" && env LCG_STATE="$t/carry2" LCG_INBOX="$t/inbox" LCG_WORK="$t/new/lcg" bash scripts/gpu-session.sh unpack >"$t/un2.log" 2>&1)
check "unpack extracts once every part is there" "[ $? = 0 ]"
check "the state comes back byte for byte (less the lock file)" \
  "diff -r -x '*.lock' $t/lcg $t/new/lcg >/dev/null && [ ! -e $t/new/lcg/paper.csv.lock ]"
(cd "$root" && env LCG_STATE="$t/carry2" LCG_INBOX="$t/inbox" LCG_WORK="$t/new/lcg" bash scripts/gpu-session.sh unpack >"$t/un3.log" 2>&1)
check "unpack leaves an existing work folder alone" "[ $? = 1 ] && grep -q 'exists already' $t/un3.log"
echo "test_gpu_state: $checks checks, $fail failed (scripts/gpu-session.sh pack, keep, plan, unpack)"
[ "$fail" = 0 ]
