#!/bin/bash
# tests/test_torch_copy.sh: bench/torch_copy_train.py, the PyTorch copy trainer that checks
# results/paper's copy cells, on the CPU with its tiny model: the reference's copy layout (a
# batch decoded by hand), its model equal to bench/torch_reference.py's (needs ./lcgbench), a
# run cut (--stop-after: exit 124; then --stop-at twice: exit 0, the second training nothing)
# and continued gives the CSV and the curve of the uncut run bit for bit (less train_s), its
# state file is gone once done, and bad arguments exit 2.
# One "SKIP" line and exit 0 without torch. Python: $LCG_PY, else /usr/bin/python3 (Debian's).
set -u
root=$(cd "$(dirname "$0")/.." && pwd)
py=${LCG_PY:-/usr/bin/python3}
if ! "$py" -c 'import torch' >/dev/null 2>&1; then
  echo "SKIP test_torch_copy: torch not importable by $py"
  exit 0
fi
t=$(mktemp -d)
trap 'rm -rf "$t"' EXIT
fail=0 checks=0
check() { checks=$((checks + 1)); eval "$2" || { echo "FAIL test_torch_copy: $1"; fail=$((fail + 1)); }; }
tc() { "$py" "$root/bench/torch_copy_train.py" "$@"; }
layout=$(cd "$root/bench" && "$py" -c '
import torch, torch_copy_train as t
x, y = t.make_batch(torch.tensor([3]), 10, torch.Generator().manual_seed(0), "cpu")
s = x[0].tolist()
assert s[0] == t.BOS and s[4] == t.SEP and s[5:8] == s[1:4] and s[8] == t.EOS and s[9] == t.PAD, s
assert y[0].tolist() == [-100] * 4 + s[5:9] + [-100] * 2, y
print("ok")' 2>&1 | tail -1)
check "copy's layout: BOS src SEP src EOS pad, scored on the target and EOS ($layout)" "[ '$layout' = ok ]"
# its model (torch_gpu_peer's forward with fp32 norms) is lcgbench's, as bench/torch_reference.py
# (checked against the C model in test_model) computes it: softmax, NAPE, random weights, in double
same=$(cd "$root/bench" && LCGBENCH="$root/lcgbench" "$py" -c '
import torch, torch_copy_train as t, torch_gpu_peer as g, torch_reference as r
a = dict(t.ARCHS["tiny"], T=40)
torch.manual_seed(3)
p = {k: (v.detach().double() + 0.3 * torch.randn(v.shape, dtype=torch.float64)) for k, v in g.make_params(a, "cpu").items()}
names = dict(emb="embedding", ln_in="ln_in", wqkv="wqkv", wo="wo", ln_pa="ln_post_attn", ln_pf="ln_pre_ffn",
             wgu="w_gate_up", wdown="w_down", ln_po="ln_post_ffn", ln_f="ln_final", lm="lm_head")
q = {names[k]: v for k, v in p.items()}
q.update({n: torch.zeros(0, dtype=torch.float64) for n in r.PARAM_NAMES[11:]})
pos = {v: k for k, v in r.POS_NAMES.items()}["nape"]
cfg = dict(a, pos=pos, norm=r.NORM_SOFTMAX, alpha=1.0)
tok = torch.randint(0, 37, (3, 40))
ours = g.forward_logits(p, tok, g.nape_bias(a, "cpu", dtype=torch.float64), a, norm=t.rms_norm_fp32)
ref = r.forward(q, tok, cfg)
err = float((ours - ref).abs().max() / ref.abs().max())
print("ok" if err < 1e-12 else f"relative error {err:.3g}")' 2>&1 | tail -1)
check "the model is torch_reference.py's (softmax, NAPE, double): $same" "[ '$same' = ok ]"
a="--arch tiny --device cpu --steps 30 --warmup 3 --lr 3e-3 --batch 8 --val-every 10 --val-len 40 --val-samples 12 --test-lens 32,64 --test-samples 12"
tc $a --state "$t/u.pt" --out "$t/u.csv" --curve "$t/u-curve.csv" >"$t/u.log" 2>&1
check "an uncut run exits 0" "[ $? = 0 ]"
tc $a --state "$t/c.pt" --out "$t/c.csv" --curve "$t/c-curve.csv" --stop-after 12 >"$t/c1.log" 2>&1
check "cut 1 (--stop-after 12) exits 124 with its state kept" "[ $? = 124 ] && [ -s $t/c.pt ]"
for i in 2 3; do
  tc $a --state "$t/c.pt" --out "$t/c.csv" --curve "$t/c-curve.csv" --stop-at 24 >"$t/c$i.log" 2>&1
  check "cut $i (--stop-at 24) exits 0 with its state kept" "[ $? = 0 ] && [ -s $t/c.pt ]"
done
check "and again at step 24: nothing trained" "grep -q 'stopped at step 24' $t/c3.log && ! grep -q 'step 3[0-9]' $t/c3.log"
tc $a --state "$t/c.pt" --out "$t/c.csv" --curve "$t/c-curve.csv" >"$t/c4.log" 2>&1
check "the continued run exits 0 and removes its state" "[ $? = 0 ] && [ ! -e $t/c.pt ]"
check "it continued from step 24" "grep -q 'continuing from .* (step 24)' $t/c4.log"
check "4 rows (last and best at 2 lengths) and the header" "[ \$(wc -l <$t/u.csv) = 5 ]"
check "cut and continued: the uncut run's rows bit for bit (less train_s)" \
  "[ \"\$(cut -d, -f1-13 $t/u.csv)\" = \"\$(cut -d, -f1-13 $t/c.csv)\" ]"
check "and its curve" "cmp -s $t/u-curve.csv $t/c-curve.csv"
tc $a --warmup 40 --state "$t/b.pt" --out "$t/b.csv" >"$t/b.log" 2>&1
check "warmup beyond the steps exits 2" "[ $? = 2 ] && [ ! -e $t/b.csv ]"
echo "test_torch_copy: $checks checks, $fail failed (bench/torch_copy_train.py on the CPU)"
[ "$fail" = 0 ]
