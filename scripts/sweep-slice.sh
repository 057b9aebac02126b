#!/bin/bash
# scripts/sweep-slice.sh STATE SECONDS LCGBENCH sweep-args...: one time-boxed slice of a long sweep,
# for machines lent a few minutes at a time (e.g. a GPU reached through a job system or a
# remote-run tool whose commands are capped). The sweep's whole state (its CSV, the cut cell's
# resumable checkpoint and .best, each cell's training curve in curves/TASK-ATTN-POS-sSEED-RUN_ID.csv) travels as STATE.tar, split into STATE.tar.NN
# parts of at most 15 MB for transports with a per-file cap. The slice:
#   1. unpacks STATE.tar.* (if any) into a work folder;
#   2. runs `LCGBENCH sweep sweep-args... --out WORK/sweep.csv --log-csv 'WORK/curves/{task}-{attn}-{pos}-s{seed}-{run_id}.csv'`, stopped by SIGTERM after SECONDS:
#      the running cell finishes its step and writes its checkpoint (as on any SIGTERM), so the
#      next slice continues it bit for bit;
#   3. packs the work folder back into STATE.tar.NN (the old parts replaced).
# Exit status: the sweep's (0 when the grid is done; 124 when the time box cut it).
set -u
state=$1 secs=$2 bin=$3
shift 3
work=${LCG_SLICE_WORK:-$(mktemp -d)}
mkdir -p "$work"
if compgen -G "$state.tar.*" >/dev/null; then
  cat "$state".tar.* | tar -x -C "$work" || { echo "sweep-slice: cannot unpack $state.tar.*" >&2; exit 1; }
fi
timeout -s TERM "$secs" "$bin" sweep "$@" --out "$work/sweep.csv" --log-csv "$work/curves/{task}-{attn}-{pos}-s{seed}-{run_id}.csv"
rc=$?
rm -f "$state".tar.*
mkdir -p "$(dirname "$state")"
# the CSV and the curves first: a transport that drops the last parts (a cut cell's checkpoint can
# be large) still brings back every finished cell
(cd "$work" && ls -A | grep -v -x -e sweep.csv -e curves | tar -c sweep.csv $([ -d curves ] && echo curves) -T -) | split -b 15000000 -d - "$state.tar." || { echo "sweep-slice: cannot pack $state" >&2; exit 1; }
echo "sweep-slice: sweep exit $rc; state in $(echo "$state".tar.*)"
exit $rc
