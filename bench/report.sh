#!/usr/bin/env bash
# make bench: every speed figure of issue #5 in one run, then one table of figure, target and
# pass/miss. The parts print their own detail first:
#   bench/variants.sh     training tokens/s of every normalizer, and the PyTorch peer
#   build/bench/gemm      matmul GFLOP/s on the model's shapes (forward, input and weight
#                         gradients) vs the measured FP32 FMA peak
#   build/bench/evalbench one mqmtar sample at EVAL_LEN tokens (default 65536), softmax and
#                         asentmax, each in its own process (peak RSS is per process), and the
#                         prefill's QK^T scan vs the same peak
# Usage: bench/report.sh [train_steps_per_variant] [eval_len] [eval_train_steps]
set -euo pipefail
cd "$(dirname "$0")/.."
steps=${1:-150}
len=${2:-65536}
esteps=${3:-300}
kv=$(mktemp)
trap 'rm -f "$kv"' EXIT

echo "== training throughput (bench/variants.sh $steps)"
bench/variants.sh "$steps" | tee >(cat >&2) | awk '
  $1 == "pytorch" { print "tok_pytorch", $2; next }
  $2 ~ /^[0-9]+$/ { print "tok_" $1, $2 }' >>"$kv"
echo
echo "== matmul vs FP32 FMA peak (build/bench/gemm)"
build/bench/gemm | tee >(cat >&2) | awk 'NF == 2 && $1 ~ /^gemm_/' >>"$kv"
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
  if ("tok_pytorch" in v) {
    row("training tok/s, PyTorch peer (best run)", sprintf("%d", v["tok_pytorch"]), "", "")
    r = sm / v["tok_pytorch"]; row("  softmax vs PyTorch", sprintf("%.1fx", r), ">= 20x", r >= 20)
  } else row("training tok/s, PyTorch peer", "skipped", ">= 20x", "")
  n = split(variants, names, " ") # every normalizer but softmax (lcgbench help attn --names)
  for (i = 1; i <= n; i++) {
    t = v["tok_" names[i]]; r = sm / t
    row("  softmax / " names[i], sprintf("%.2fx", r), names[i] ~ /entmax/ ? "<= 1.5x" : "", names[i] ~ /entmax/ ? r <= 1.5 : "")
  }
  row("FP32 FMA peak, all threads (GFLOP/s)", sprintf("%.1f", v["gemm_peak_gflops"]), "", "")
  row("matmul, C=64 shapes, worst of fwd/dinp/dw", sprintf("%.0f%%", v["gemm_min_pct_c64"]), ">= 50% of peak", v["gemm_min_pct_c64"] >= 50)
  row("matmul, C=256 shapes, worst of fwd/dinp/dw", sprintf("%.0f%%", v["gemm_min_pct_c256"]), "> the C=64 figure", v["gemm_min_pct_c256"] > v["gemm_min_pct_c64"])
  row("matmul, C=64 shapes, all passes together", sprintf("%.0f%%", v["gemm_all_pct_c64"]), "", "")
  row("matmul, C=256 shapes, all passes together", sprintf("%.0f%%", v["gemm_all_pct_c256"]), "", "")
  row("matmul, LM head (64 -> 37), worst pass", sprintf("%.0f%%", v["gemm_lm_head_pct"]), ">= 50% of peak", v["gemm_lm_head_pct"] >= 50)
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
  row("QK^T scan (GFLOP/s, % of peak)", sprintf("%.1f, %.0f%%", v["ev_softmax_qk_scan_gflops"], q), ">= 40% of peak", q >= 40)
}' "$kv"
