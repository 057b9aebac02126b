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
#
# Across sessions (a cell longer than one session's device time: every cell at the reference's
# full schedule but copy's and flip-flop's), the state of /tmp/lcg travels in parts of 16,000,000
# bytes, since a call brings back at most 8 files of 16 MiB (64 MiB together) and sends at most
# 64 MiB with the checkout:
#   pack K     (lent machine, after the last slice) tar /tmp/lcg once, split it into parts
#              (MANIFEST: each part's size and sha256, the tar's sha256, the commit) and put
#              parts 4K..4K+3 and MANIFEST under $OUT; call with K = 0, 1, ... until it says all
#              are sent (mqmtar's cut cell, 172 MB with its best checkpoint: 3 calls)
#   keep DIR   (here) move the parts and MANIFEST a call brought back (DIR: the call's files_at)
#              into LCG_STATE (default .gpu/state, ignored by git), check every sha256, and print
#              which parts are still missing
#   plan       (here) the `carry` list of each call that sends the state back, as JSON: the first
#              also carries LCG_BIN and LCG_DEBS, and each stays under the 64 MiB with the checkout
#   unpack     (lent machine, one call per carry list) gather the carried parts in /tmp/lcg-in;
#              once all are there and their sha256 and the tar's match MANIFEST, extract
#              /tmp/lcg: then `go` continues the sweep where the last session cut it (same
#              commit's build: bit for bit). Exit 3 while parts are missing.
set -u
work=${LCG_WORK:-/tmp/lcg}
store=${LCG_STATE:-.gpu/state}
part_bytes=${LCG_PART_BYTES:-16000000}
# state_fail MESSAGE: one line on stderr, exit 1
state_fail() { echo "gpu-session: $1" >&2; exit 1; }
# state_check DIR: every part MANIFEST names that DIR holds with the right sha256; prints the
# names of those missing (a part with a wrong sum is removed and counted missing)
state_check() {
  local name size sum
  while read -r name size sum; do
    if [ -e "$1/$name" ] && [ "$(sha256sum <"$1/$name" | cut -d' ' -f1)" = "$sum" ]; then continue; fi
    [ -e "$1/$name" ] && { echo "gpu-session: $1/$name: wrong sha256, removed" >&2; rm -f "$1/$name"; }
    echo "$name"
  done < <(grep '^part\.' "$1/MANIFEST")
}
case ${1:-} in
  pack)
    k=${2:-}
    [[ $k =~ ^[0-9]+$ ]] || state_fail "pack K: K must be 0, 1, 2, ..., got '$k'"
    packdir=${LCG_PACK:-/tmp/lcg-pack}
    out=${OUT:-/tmp/lcg_out}
    if [ ! -s "$packdir/MANIFEST" ]; then
      [ -d "$work" ] || state_fail "no $work to pack"
      rm -rf "$packdir" && mkdir -p "$packdir" "$out" || exit 1
      tar -C "$(dirname "$work")" --exclude='*.lock' -cf "$packdir/state.tar" "$(basename "$work")" ||
        state_fail "cannot tar $work"
      (cd "$packdir" && split -b "$part_bytes" -d -a 2 state.tar part.) || state_fail "cannot split the state"
      {
        echo "# gpu-session state: $work, $(date -u +%FT%TZ), commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
        echo "tar $(stat -c %s "$packdir/state.tar") $(sha256sum <"$packdir/state.tar" | cut -d' ' -f1)"
        for f in "$packdir"/part.*; do echo "$(basename "$f") $(stat -c %s "$f") $(sha256sum <"$f" | cut -d' ' -f1)"; done
      } >"$packdir/MANIFEST.tmp" && mv "$packdir/MANIFEST.tmp" "$packdir/MANIFEST" || exit 1
      rm -f "$packdir/state.tar"
    fi
    mkdir -p "$out" && cp "$packdir/MANIFEST" "$out/" || exit 1
    mapfile -t parts < <(grep '^part\.' "$packdir/MANIFEST" | cut -d' ' -f1)
    n=${#parts[@]} first=$((4 * k))
    [ "$first" -lt "$n" ] || state_fail "pack $k: there are only $n parts (K up to $(( (n - 1) / 4 )))"
    for ((i = first; i < first + 4 && i < n; i++)); do cp "$packdir/${parts[$i]}" "$out/" || exit 1; done
    echo "gpu-session: parts $first..$((i - 1)) of $n under \$OUT$([ "$i" -lt "$n" ] && echo "; next: pack $((k + 1))" || echo "; all sent")"
    exit 0 ;;
  keep)
    src=${2:-}
    [ -s "$src/MANIFEST" ] || state_fail "keep DIR: no MANIFEST in '$src'"
    mkdir -p "$store" || exit 1
    # a state other than the one kept so far replaces it
    if [ -s "$store/MANIFEST" ] && ! cmp -s "$src/MANIFEST" "$store/MANIFEST"; then
      echo "gpu-session: a new state (its MANIFEST differs): the parts of $store replaced"
      rm -f "$store"/part.* "$store/MANIFEST"
    fi
    cp "$src/MANIFEST" "$store/" && for f in "$src"/part.*; do [ -e "$f" ] && cp "$f" "$store/"; done
    missing=$(state_check "$store")
    have=$(grep -c '^part\.' "$store/MANIFEST")
    [ -z "$missing" ] && echo "gpu-session: all $have parts in $store, sha256 checked" ||
      echo "gpu-session: $(echo "$missing" | wc -l) of $have parts still missing: ${missing//$'\n'/ }"
    exit 0 ;;
  plan)
    [ -s "$store/MANIFEST" ] || state_fail "plan: no $store/MANIFEST (keep the parts first)"
    missing=$(state_check "$store")
    [ -z "$missing" ] || state_fail "plan: parts missing from $store: ${missing//$'\n'/ }"
    bin=${LCG_BIN:-build/cu4/lcgbench} debs=${LCG_DEBS:-build/debs}
    # the checkout travels with every call: tracked files and untracked ones git does not ignore
    tree=$( (git ls-files -z; git ls-files -z -o --exclude-standard) | du -cb --files0-from=- 2>/dev/null | tail -1 | cut -f1)
    limit=$((${LCG_CARRY_BYTES:-67108864} - 1048576)) # the tool's 64 MiB, less 1 MiB of slack
    room=$((limit - tree - $(du -cb "$bin" "$debs" | tail -1 | cut -f1) - $(stat -c %s "$store/MANIFEST")))
    list="\"$bin\", \"$debs\", \"$store/MANIFEST\""
    calls=0 paths=3
    [ $((limit - tree)) -gt "$part_bytes" ] || state_fail "plan: the checkout ($tree bytes) leaves no room for a part"
    while read -r name size sum; do
      if [ "$size" -gt "$room" ] || [ "$paths" = 8 ]; then # the tool's 8 carried paths a call
        echo "[$list]"
        calls=$((calls + 1)) list="" room=$((limit - tree)) paths=0
      fi
      list="${list:+$list, }\"$store/$name\"" room=$((room - size)) paths=$((paths + 1))
    done < <(grep '^part\.' "$store/MANIFEST")
    echo "[$list]"
    echo "gpu-session: $((calls + 1)) calls, each \`bash scripts/gpu-session.sh unpack\` with its carry list (checkout $tree bytes)" >&2
    exit 0 ;;
  unpack)
    inbox=${LCG_INBOX:-/tmp/lcg-in}
    mkdir -p "$inbox" || exit 1
    [ -s "$store/MANIFEST" ] && cp "$store/MANIFEST" "$inbox/"
    for f in "$store"/part.*; do [ -e "$f" ] && cp "$f" "$inbox/"; done
    [ -s "$inbox/MANIFEST" ] || state_fail "unpack: no MANIFEST carried yet (the first carry list has it)"
    missing=$(state_check "$inbox")
    [ -z "$missing" ] || { echo "gpu-session: unpack: waiting for ${missing//$'\n'/ }"; exit 3; }
    read -r _ tsize tsum < <(grep '^tar ' "$inbox/MANIFEST")
    [ "$(cat "$inbox"/part.* | sha256sum | cut -d' ' -f1)" = "$tsum" ] || state_fail "unpack: the parts do not make the tar MANIFEST names"
    [ -e "$work" ] && state_fail "unpack: $work exists already (a slice ran here): not overwritten"
    cat "$inbox"/part.* | tar -C "$(dirname "$work")" -xf - || state_fail "unpack: cannot extract the state"
    echo "gpu-session: $work unpacked ($tsize bytes): continue with \`go\`"
    ls -lA "$work"
    exit 0 ;;
esac
[ $# -ge 3 ] || { echo "gpu-session: usage: go|slice SECONDS CSV sweep-args... | pack K | keep DIR | plan | unpack" >&2; exit 2; }
mode=$1 secs=$2 csv=$3
shift 3
bin=${LCG_BIN:-build/cu4/lcgbench}
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
  *) echo "gpu-session: mode must be go, slice, pack, keep, plan or unpack, got '$mode'"; exit 2 ;;
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
