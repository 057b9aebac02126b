#!/usr/bin/env bash
# make bench: every speed figure of issues #5 and #16 in one run, then one table of figure,
# target and pass/miss. The parts print their own detail first:
#   bench/variants.sh     training tokens/s of every normalizer
#   bench/peer.sh         training tokens/s of the native and the x86-64-v3 build against the
#                         PyTorch peer on an optimized BLAS (which it names), bench config at 1
#                         and 2 threads, the paper's copy architecture at 2
#   build/bench/gemm,     matmul GFLOP/s on the model's shapes (forward, input and weight
#   build/v3/bench/gemm   gradients) vs the FP32 FMA peak of the ISA each was built for
#   build/bench/evalbench one mqmtar sample at EVAL_LEN tokens (default 65536), softmax and
#                         asentmax, each in its own process (peak RSS is per process), and the
#                         prefill's QK^T scan vs the same peak
# Usage: bench/report.sh [train_steps_per_variant] [eval_len] [eval_train_steps]
# (make bench builds ./lcgbench and build/v3/lcgbench first; a missing v3 build is skipped)
set -euo pipefail
cd "$(dirname "$0")/.."
steps=${1:-150}
len=${2:-65536}
esteps=${3:-300}
kv=$(mktemp)
trap 'rm -f "$kv"' EXIT

echo "== training throughput (bench/variants.sh $steps)"
bench/variants.sh "$steps" | tee >(cat >&2) | awk '$2 ~ /^[0-9]+$/ { print "tok_" $1, $2 }' >>"$kv"
echo
echo "== lcgbench (native, x86-64-v3) vs the PyTorch peer (bench/peer.sh)"
bench/peer.sh | tee >(cat >&2) | awk 'NF == 2 && $1 ~ /^(tps|peer)_/' >>"$kv"
for b in build build/v3; do
  [ -x $b/bench/gemm ] || continue
  isa=$([ $b = build ] && echo native || echo v3)
  echo
  echo "== matmul vs FP32 FMA peak, $isa build ($b/bench/gemm)"
  $b/bench/gemm | tee >(cat >&2) | awk -v i=$isa 'NF == 2 && $1 ~ /^gemm_/ { print i "_" $1, $2 }' >>"$kv"
done
for attn in softmax asentmax; do
  echo
  echo "== evaluation: one mqmtar sample at $len tokens, $attn (build/bench/evalbench $attn $len $esteps)"
  build/bench/evalbench "$attn" "$len" "$esteps" | tee >(cat >&2) | awk -v a="$attn" 'NF == 2 { print "ev_" a "_" $1, $2 }' >>"$kv"
done

echo
awk -v variants="$(./lcgbench help attn --names | grep -vx softmax | tr '\n' ' ')" '
function row(what, val, target, ok) {
  printf "%-44s %14s  %-22s %s\n", what, val, target, ok == "" ? "" : (ok ? "PASS" : "MISS")
}
{ v[$1] = $2 }
END {
  printf "%-44s %14s  %-22s %s\n", "figure", "measured", "target", ""
  sm = v["tok_softmax"]
  row("training tok/s, softmax (best of 3)", sprintf("%d", sm), "", "")
  n = split(variants, names, " ") # every normalizer but softmax (lcgbench help attn --names)
  for (i = 1; i <= n; i++) {
    t = v["tok_" names[i]]; r = sm / t
    row("  softmax / " names[i], sprintf("%.2fx", r), names[i] ~ /entmax/ ? "<= 1.5x" : "", names[i] ~ /entmax/ ? r <= 1.5 : "")
  }
  ok = v["peer_comparable"] == 1
  row("BLAS of the PyTorch peer (at run time)", v["peer_blas"], "optimized", ok)
  split("bench:1:3 bench:2:3 paper:2:1.5", cells, " ")
  for (c = 1; c <= 3; c++) {
    split(cells[c], f, ":"); cfg = f[1]; th = f[2]; tgt = f[3]
    what = (cfg == "bench" ? "C=64" : "C=256 paper copy") ", " th " thr"
    p = v["tps_peer_" cfg "_" th]
    row("tok/s, " what ": PyTorch", sprintf("%d", p), "", "")
    split("native v3", isas, " ")
    for (k = 1; k <= 2; k++) {
      t = v["tps_" isas[k] "_" cfg "_" th]
      if (t == "") continue
      row("  lcgbench " isas[k] ": tok/s, x PyTorch", sprintf("%d, %s", t, ok && p > 0 ? sprintf("%.2fx", t / p) : "n/c"),
          ">= " tgt "x", ok && p > 0 ? t / p >= tgt : "")
    }
    if (v["tps_v3_" cfg "_" th] != "" && v["tps_native_" cfg "_" th] > 0) {
      r = 100 * v["tps_v3_" cfg "_" th] / v["tps_native_" cfg "_" th]
      row("  v3 build / native build", sprintf("%.0f%%", r), ">= 45%", r >= 45)
    }
  }
  split("native v3", isas, " ")
  for (k = 1; k <= 2; k++) {
    i = isas[k]
    if (!((i "_gemm_peak_gflops") in v)) continue
    row("FP32 FMA peak, " i " build, all threads (GFLOP/s)", sprintf("%.1f", v[i "_gemm_peak_gflops"]), "", "")
    row("  matmul, C=64 shapes, worst of fwd/dinp/dw", sprintf("%.0f%%", v[i "_gemm_min_pct_c64"]), ">= 50% of peak", v[i "_gemm_min_pct_c64"] >= 50)
    row("  matmul, C=256 shapes, worst of fwd/dinp/dw", sprintf("%.0f%%", v[i "_gemm_min_pct_c256"]), "> the C=64 figure", v[i "_gemm_min_pct_c256"] > v[i "_gemm_min_pct_c64"])
    row("  matmul, all passes together, C=64 / C=256", sprintf("%.0f%% / %.0f%%", v[i "_gemm_all_pct_c64"], v[i "_gemm_all_pct_c256"]), "", "")
    row("  matmul, LM head (64 -> 37), worst pass", sprintf("%.0f%%", v[i "_gemm_lm_head_pct"]), ">= 50% of peak", v[i "_gemm_lm_head_pct"] >= 50)
  }
  L = v["ev_softmax_input_tokens"]
  for (k = 1; k <= 2; k++) {
    a = k == 1 ? "softmax" : "asentmax"
    row("eval " L " tokens, " a ": s/sample", sprintf("%.2f", v["ev_" a "_seconds"]), "", "")
    row("  " a ": peak RSS (MiB)", sprintf("%.0f", v["ev_" a "_peak_rss_mib"]), "< 512 MiB", v["ev_" a "_peak_rss_mib"] < 512)
    row("  " a ": mean support, layer 0 / 1", sprintf("%.0f / %.0f", v["ev_" a "_support_l0"], v["ev_" a "_support_l1"]), "", "")
  }
  r = v["ev_asentmax_seconds"] / v["ev_softmax_seconds"]
  row("  asentmax / softmax time", sprintf("%.2fx", r), "<= 1x", r <= 1)
  q = v["ev_softmax_qk_scan_pct_peak"]
  row("QK^T scan, native (GFLOP/s, % of peak)", sprintf("%.1f, %.0f%%", v["ev_softmax_qk_scan_gflops"], q), ">= 40% of peak", q >= 40)
}' "$kv"
