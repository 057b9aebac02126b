#!/bin/bash
# scripts/gpu-session.sh go|slice SECONDS CSV sweep-args...: one call of a long GPU sweep on a
# machine lent for a few minutes per command but kept between back-to-back commands (the
# `run` tool's device: 10 minutes a call, 30 idle seconds between calls). The sweep's state (its
# CSV, the cut cells' resumable checkpoints, the curves) stays in the machine's /tmp/lcg between
# calls, so cells whose state is too large to bring back (reverse: 404 MB for four cells) go on
# from call to call bit for bit. Each call brings back what is small under $OUT: the CSV, the
# curves, the timeline and the sweep's log.
#   go     starts: the MPS daemon (several workers on one GPU), /tmp/lcg seeded with a copy of CSV
#   slice  continues the same sweep
# Then: `timeout -s TERM SECONDS LCG_BIN sweep sweep-args... --out /tmp/lcg/CSV's name
# --log-csv '/tmp/lcg/curves/{task}-{attn}-{pos}-s{seed}.csv' --timeline /tmp/lcg/timeline.csv`.
# A cut cell keeps its checkpoint (SIGTERM), and the next slice continues it. Where libcsv is not
# installed, the .debs in LCG_DEBS (default build/debs: `apt-get download libcsv3 libcsv-dev`)
# are unpacked into /tmp/csvlib. LCG_BIN defaults to build/cu4/lcgbench (a CUDA=1 build,
# carried with the call). LCG_CURVES names the curve files (default '{task}-{attn}-{pos}-s{seed}.csv';
# results/paper/fidelity.txt's cells take '{task}-frozen-{attn}-{pos}-s{seed}.csv'). Example, reverse x 4 on one GPU (three calls in session 11):
#   bash scripts/gpu-session.sh go 545 results/paper/paper.csv --grid G --gpus 0,0,0,0
#   bash scripts/gpu-session.sh slice 575 results/paper/paper.csv --grid G --gpus 0,0,0,0
# The lent machine goes back 30 s after a call returns: issue the next `slice` at once (its text
# written beforehand) and read the results after, or the state is gone (session 12 lost 9.5
# minutes of mqmtar training that way).
# Exit status: the sweep's (0 when its cells are done; 124 when the time box cut it).
set -u
mode=$1 secs=$2 csv=$3
shift 3
bin=${LCG_BIN:-build/cu4/lcgbench}
work=/tmp/lcg
out=${OUT:-/tmp/lcg_out}
name=$(basename "$csv")
plain='{task}-{attn}-{pos}-s{seed}.csv'
curves=${LCG_CURVES:-$plain}
mkdir -p "$work" "$out"
if [ ! -e /usr/include/csv.h ] && [ ! -e /tmp/csvlib/usr ]; then
  for d in "${LCG_DEBS:-build/debs}"/*.deb; do dpkg -x "$d" /tmp/csvlib || exit 1; done
fi
export LD_LIBRARY_PATH=/tmp/csvlib/usr/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
case $mode in
  go)
    nvidia-smi --query-gpu=name,memory.used --format=csv,noheader
    nvidia-cuda-mps-control -d 2>/dev/null || echo "gpu-session: no MPS daemon (workers time-slice)"
    [ -e "$work/$name" ] || [ ! -s "$csv" ] || cp "$csv" "$work/$name" || exit 1 ;;
  slice)
    [ -e "$work/sweep.log" ] || { echo "gpu-session: no $work/sweep.log: the machine is a fresh one (start with go)"; exit 1; } ;;
  *) echo "gpu-session: mode must be go or slice, got '$mode'"; exit 2 ;;
esac
t0=$(date +%s)
timeout -s TERM "$secs" "$bin" sweep "$@" --out "$work/$name" \
  --log-csv "$work/curves/$curves" --timeline "$work/timeline.csv" >>"$work/sweep.log" 2>&1
rc=$?
echo "gpu-session: sweep exit $rc after $(( $(date +%s) - t0 )) s"
cp "$work/$name" "$work/timeline.csv" "$work/sweep.log" "$out/" 2>/dev/null
[ -d "$work/curves" ] && cp -r "$work/curves" "$out/"
ls -la "$work" | grep -v -e '^total' -e ' \.\.\?$'
grep -E "^\[sweep|^step .*eta|terminated|^lcgbench sweep" "$work/sweep.log" | tail -24
exit $rc
