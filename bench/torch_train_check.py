#!/usr/bin/python3
"""torch_train_check.py: lcgbench's training steps against PyTorch's, from one state on the same
samples. Where test_model checks one forward/backward, this checks what a run does with them
over many steps: the batch layout, the masked loss, clipping, AdamW and the learning-rate
schedule, in the order the trainer applies them.

Given a checkpoint lcgbench wrote at step s (`run --stop-at s --save A`: parameters and AdamW
moments), the run's --data directory, its settings, and the same run's curve (`--log-csv`,
`--log-every 1`) and checkpoint at a later step e (`--stop-at e --save B`), it trains steps
s..e-1 here and compares. The model is bench/torch_reference.py's (written from the math, in
float64 from the stored float32 values); the optimizer is torch.optim.AdamW (betas 0.9, 0.99,
eps 1e-8) after torch.nn.utils.clip_grad_norm_, at the learning rate of transformers'
get_cosine_schedule_with_warmup (written here from its definition); the batches are the data
file's samples in order, B at a time, the first s*B skipped, laid out as the reference does
(BOS src SEP trg EOS, right-padded, scored on the target and EOS). It compares

  * every step's training loss with the curve's:   max |ref - lcg| / |ref|
  * the parameters at step e with B's:            ||ref - lcg|| / ||ref - start||
    (the distance between the two, relative to how far training moved them)

and prints both. Exit 0 when both are within --tol, 1 when not, 2 on bad input, 77 without torch.

  lcgbench gen --task copy --split train --count 4000 --len 6 --vary 2 --out D
  lcgbench run --data D ... --steps 40 --stop-at 2 --save a.ckpt
  lcgbench run --data D ... --steps 40 --stop-at 30 --save b.ckpt --log-csv c.csv --log-every 1
  python3 bench/torch_train_check.py --data D --start a.ckpt --end b.ckpt --curve c.csv \\
      --steps 40 --warmup 5 --lr 1e-2 --batch 8

Source-to-target tasks only (copy, sort, reverse). Not checked: --freeze-token0, validation.
"""
import argparse
import csv
import math
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch_reference as ref  # noqa: E402 (exits 77 without torch)

torch = ref.torch


def load_state(path):
    """(cfg, params, m, v) of an lcgbench checkpoint with its AdamW moments, all float64"""
    cfg, params, m, v = ref.load_checkpoint(path, with_opt=True)
    if m is None:
        raise ref.BadInput(f"checkpoint '{path}' has no AdamW state (write it with run --stop-at/--save)")
    return cfg, params.double(), m.double(), v.double()


def read_split(d):
    """the train split's (src, trg) id lists, in file order"""
    out = []
    with open(os.path.join(d, "train.src")) as fs, open(os.path.join(d, "train.trg")) as ft:
        for a, b in zip(fs, ft):
            out.append(([int(t) for t in a.split()], [int(t) for t in b.split()]))
    return out


def layout(samples, vocab):
    """tok, tgt, mask [B, T] of BOS src SEP trg EOS per sample, right-padded with PAD"""
    pad, bos, eos, sep = vocab, vocab + 1, vocab + 2, vocab + 4
    seqs = [[bos] + s + [sep] + t + [eos] for s, t in samples]
    T = max(len(q) for q in seqs) - 1
    tok = torch.full((len(seqs), T), pad, dtype=torch.long)
    tgt = torch.zeros((len(seqs), T), dtype=torch.long)
    mask = torch.zeros((len(seqs), T), dtype=torch.long)
    for i, (q, (s, t)) in enumerate(zip(seqs, samples)):
        n = len(q) - 1
        tok[i, :n] = torch.tensor(q[:-1])
        tgt[i, :n] = torch.tensor(q[1:])
        mask[i, len(s) + 1:n] = 1  # the positions that predict trg and EOS
    return tok, tgt, mask


def lr_factor(step, warmup, total):
    """get_cosine_schedule_with_warmup's factor for the update of 0-based step `step`"""
    if step < warmup:
        return step / max(1, warmup)
    progress = (step - warmup) / max(1, total - warmup)
    return max(0.0, 0.5 * (1.0 + math.cos(math.pi * progress)))


def curve_losses(path):
    with open(path, newline="") as f:
        return {int(r["step"]): float(r["loss"]) for r in csv.DictReader(f) if r.get("loss")}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", required=True, help="the run's --data directory")
    ap.add_argument("--start", required=True, help="checkpoint at step s, with AdamW state")
    ap.add_argument("--end", required=True, help="checkpoint of the same run at step e > s")
    ap.add_argument("--curve", required=True, help="the run's --log-csv, written with --log-every 1")
    ap.add_argument("--steps", type=int, required=True)
    ap.add_argument("--warmup", type=int, required=True)
    ap.add_argument("--lr", type=float, required=True)
    ap.add_argument("--batch", type=int, required=True)
    ap.add_argument("--clip", type=float, default=1.0)
    ap.add_argument("--weight-decay", type=float, default=0.0)
    ap.add_argument("--vocab", type=int, default=32, help="the task's data vocabulary")
    ap.add_argument("--tol", type=float, default=1e-3)
    a = ap.parse_args()
    try:
        cfg, p0, m, v = load_state(a.start)
        cfg_e, p_end, _, _ = load_state(a.end)
        s, e = cfg["step"], cfg_e["step"]
        if cfg_e["note"] != cfg["note"] or not s < e <= a.steps:
            raise ref.BadInput(f"'{a.end}' (step {e}) is not a later checkpoint of the run of '{a.start}' (step {s})")
        data = read_split(a.data)
        losses = curve_losses(a.curve)
    except (ref.BadInput, OSError, ValueError, KeyError) as err:
        print(f"torch_train_check: {err}", file=sys.stderr)
        return 2
    if len(data) < e * a.batch or any(k not in losses for k in range(s + 1, e + 1)):
        print(f"torch_train_check: need {e * a.batch} samples and the curve's steps {s + 1}..{e}", file=sys.stderr)
        return 2

    flat = p0.clone().requires_grad_()
    opt = torch.optim.AdamW([flat], lr=a.lr, betas=(0.9, 0.99), eps=1e-8, weight_decay=a.weight_decay)
    opt.state[flat] = dict(step=torch.tensor(float(s), dtype=torch.float64), exp_avg=m.clone(), exp_avg_sq=v.clone())
    worst = 0.0
    for step in range(s, e):
        tok, tgt, mask = layout(data[step * a.batch:(step + 1) * a.batch], a.vocab)
        loss = ref.masked_mean_cross_entropy(ref.forward(ref.unflatten(flat, cfg), tok, cfg), tgt, mask)
        opt.zero_grad()
        loss.backward()
        if a.clip > 0:
            torch.nn.utils.clip_grad_norm_([flat], a.clip)
        for g in opt.param_groups:
            g["lr"] = a.lr * lr_factor(step, a.warmup, a.steps)
        opt.step()
        got = losses[step + 1]
        worst = max(worst, abs(got - loss.item()) / abs(loss.item()))
    moved = float((flat.detach() - p0).norm())
    dist = float((flat.detach() - p_end).norm()) / max(moved, 1e-30)
    ok = worst <= a.tol and dist <= a.tol
    print(f"torch_train_check: steps {s + 1}..{e} of {cfg['note'].split(';')[0] or 'the run'}: loss max rel err "
          f"{worst:.2e}, parameters at step {e}: distance {dist:.2e} of the distance trained "
          f"({moved:.3g}) {'ok' if ok else 'FAIL'} (tol {a.tol:g})")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
