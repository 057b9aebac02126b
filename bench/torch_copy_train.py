#!/usr/bin/python3
"""torch_copy_train.py: copy at the paper's scale, trained, validated and tested in PyTorch, apart
from lcgbench's C and CUDA code: the independent check of results/paper's copy cells, and the
reference's bf16-true training (parameters, gradients and AdamW state in bfloat16), which lcgbench
does not do.

The task is the reference's copy (spec §1): data tokens 0..31, then pad 32, BOS 33, EOS 34, mask 35,
SEP 36; a sample is BOS src SEP src EOS, src uniform, its length uniform in 32..64 for training
and fixed for a test length; the loss is next-token cross entropy on the target and EOS (the
batch right-padded to 130 tokens, one shape for torch.compile). The model is bench/
torch_gpu_peer.py's (lcgbench's math: sandwich RMSNorms with (1 + w), computed in fp32 as
Gemma's are, NAPE, softmax attention, GeGLU, untied head; N(0, 0.02) init) at the paper's copy
size (2 layers, C 256, 16 heads of 16, FFN 1024), trained as the reference trains: AdamW (betas
0.9, 0.99, eps 1e-8, no weight decay), clipping at norm 1, linear warm-up then cosine decay to 0,
batch 128. Exact match is the reference's greedy decoding, computed in one teacher-forced pass
(every argmax on the target and EOS right; for copy the generation cap never binds).
Validation: every --val-every steps, exact match at --val-len on --val-samples samples of their
own stream; the best checkpoint (strictly better) is kept, and after training both it and the
last are tested on --test-samples samples a length (their own stream again).

--precision: fp32 (no TF32), tf32 (TF32 matmuls; lcgbench's GPU runs), or bf16-true (the
reference's Lightning `bf16-true`: parameters and AdamW state in bfloat16, every op in bfloat16
but the norms and the softmax's fp32 inside SDPA).

A run longer than a command may take stops itself after --time-limit seconds (or on SIGTERM) at
the end of a step, writes its whole state to --state atomically, and exits 124; the same command
run again continues from it (the data streams included, so a cut run trains on the samples an
uncut one would; in eager mode bit for bit, while --compile's kernels are not bitwise
reproducible even between two uncut runs). --stop-at N does the same at step N of the schedule
(after its validation; run again with it, nothing trains) but exits 0: a probe of the first N
steps, which the same command without it continues. Output, appended: --out (a CSV row per checkpoint
and length: impl, precision, seed, lr, steps, warmup, checkpoint, step, eval_len, factor,
samples, exact_match, token_acc, train_s) and --curve (step, loss, lr, exact@val, token@val at
each validation).

  python3 bench/torch_copy_train.py --precision bf16-true --compile --state /tmp/t/bf16.pt \\
      --out /tmp/t/torch.csv --curve /tmp/t/curve-bf16.csv --time-limit 560

--arch tiny (2 layers, C 64, 4 heads of 16, FFN 128) is for CPU checks. Exit 0 when done (or
paused at --stop-at), 124 when stopped with its state kept, 2 on bad arguments, 77 (a "SKIP:"
line) without torch.
"""
import argparse
import math
import os
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_gpu_peer import F, forward_logits, make_params, nape_bias, torch  # noqa: E402 (exits 77 without torch)

V_DATA, PAD, BOS, EOS, SEP = 32, 32, 33, 34, 36
ARCHS = {"copy": dict(V=37, L=2, C=256, H=16, D=16, F=1024),  # spec §3.2
         "tiny": dict(V=37, L=2, C=64, H=4, D=16, F=128)}
TRAIN_MIN, TRAIN_MAX = 32, 64
T_TRAIN = 2 * TRAIN_MAX + 2  # BOS src SEP src EOS, less the last token as input


def rms_norm_fp32(x, w):
    """Gemma's RMSNorm: computed in fp32 (or wider) whatever x's dtype, then cast back"""
    wide = torch.promote_types(x.dtype, torch.float32)
    x32 = x.to(wide)
    return (x32 * torch.rsqrt(x32.pow(2).mean(dim=-1, keepdim=True) + 1e-6) * (1 + w.to(wide))).to(x.dtype)


def make_batch(lens, T, gen, dev):
    """inputs [B, T] and targets [B, T] (-100 where not scored) of copy samples of lengths lens"""
    B, j = lens.shape[0], torch.arange(T + 1, device=dev)[None]
    n = lens[:, None]
    src = torch.randint(0, V_DATA, (B, T + 1), generator=gen, device=dev)
    seq = torch.full((B, T + 1), PAD, device=dev)
    seq = torch.where(j == 0, torch.full_like(seq, BOS), seq)
    seq = torch.where((j >= 1) & (j <= n), src.gather(1, (j - 1).clamp(min=0).expand(B, -1)), seq)
    seq = torch.where(j == n + 1, torch.full_like(seq, SEP), seq)
    seq = torch.where((j >= n + 2) & (j <= 2 * n + 1), src.gather(1, (j - n - 2).clamp(min=0, max=T)), seq)
    seq = torch.where(j == 2 * n + 2, torch.full_like(seq, EOS), seq)
    tgt = seq[:, 1:].clone()
    p = j[:, :-1]
    tgt[(p < n + 1) | (p > 2 * n + 1)] = -100  # scored: the target's tokens and EOS
    return seq[:, :-1].contiguous(), tgt


def lr_at(step, a):
    """transformers' get_cosine_schedule_with_warmup, for the update of step `step` (0-based)"""
    if step < a.warmup:
        return a.lr * step / max(1, a.warmup)
    progress = (step - a.warmup) / max(1, a.steps - a.warmup)
    return a.lr * max(0.0, 0.5 * (1 + math.cos(math.pi * progress)))


@torch.no_grad()
def evaluate(p, arch, length, samples, seed, dev, fwd, max_tokens):
    """exact match and token accuracy at source length `length`, on `samples` samples of stream `seed`"""
    gen = torch.Generator(device=dev).manual_seed(seed)
    T = 2 * length + 2
    bias = nape_bias(dict(arch, T=T), dev).to(p["emb"].dtype)
    exact = tok_ok = tok_n = 0
    per = max(1, max_tokens // T)
    for i in range(0, samples, per):
        b = min(per, samples - i)
        x, y = make_batch(torch.full((b,), length, device=dev), T, gen, dev)
        pred = fwd(p, x, bias, arch).argmax(-1)
        scored = y != -100
        right = (pred == y) | ~scored
        exact += int(right.all(dim=1).sum())
        tok_ok += int((right & scored).sum())
        tok_n += int(scored.sum())
    return exact / samples, tok_ok / tok_n


def append(path, header, rows):
    new = not os.path.exists(path)
    with open(path, "a") as f:
        if new:
            f.write(header + "\n")
        f.write("".join(r + "\n" for r in rows))


def save_state(path, p, opt, gen, st):
    ck = dict(p={k: v.detach() for k, v in p.items()}, opt=opt.state_dict(), gen=gen.get_state(), st=st)
    torch.save(ck, path + ".tmp")
    os.replace(path + ".tmp", path)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--precision", choices=["fp32", "tf32", "bf16-true"], default="tf32")
    ap.add_argument("--arch", choices=sorted(ARCHS), default="copy")
    ap.add_argument("--steps", type=int, default=156250)
    ap.add_argument("--warmup", type=int, default=20000)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--val-every", type=int, default=0, help="steps between validations (0: a tenth of --steps)")
    ap.add_argument("--val-len", type=int, default=512)
    ap.add_argument("--val-samples", type=int, default=1000)
    ap.add_argument("--test-lens", default="64,128,256,512,1024,2048,4096")
    ap.add_argument("--test-samples", type=int, default=1000)
    ap.add_argument("--eval-tokens", type=int, default=1 << 15, help="tokens per evaluation batch")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--compile", action="store_true", help="torch.compile the forward pass")
    ap.add_argument("--state", required=True, help="checkpoint of the whole run, for --time-limit")
    ap.add_argument("--time-limit", type=float, default=0, help="seconds, then save --state and exit 124")
    ap.add_argument("--stop-after", type=int, default=0, help="steps of this call, then as --time-limit")
    ap.add_argument("--stop-at", type=int, default=0, help="step of the schedule, then as --time-limit (a probe)")
    ap.add_argument("--out", required=True)
    ap.add_argument("--curve", default="")
    a = ap.parse_args()
    if a.steps < 1 or not 0 <= a.warmup <= a.steps or a.batch < 1 or a.lr <= 0 or not 0 <= a.stop_at <= a.steps:
        ap.error("need steps >= 1, 0 <= warmup <= steps, batch >= 1, lr > 0, 0 <= stop-at <= steps")
    val_every = a.val_every or max(1, a.steps // 10)
    test_lens = [int(s) for s in a.test_lens.split(",")]
    dev, arch, t0 = a.device, ARCHS[a.arch], time.time()
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = a.precision == "tf32"
    dtype = torch.bfloat16 if a.precision == "bf16-true" else torch.float32

    p = {k: v.detach().to(dtype).requires_grad_() for k, v in make_params(arch, dev, seed=a.seed).items()}
    opt = torch.optim.AdamW(p.values(), lr=a.lr, betas=(0.9, 0.99), eps=1e-8, weight_decay=0.0, foreach=True)
    gen = torch.Generator(device=dev).manual_seed(1000 + a.seed)
    st = dict(step=0, best=-1.0, best_step=0, best_p=None, train_s=0.0)
    if os.path.exists(a.state):
        ck = torch.load(a.state, map_location=dev)
        with torch.no_grad():
            for k in p:
                p[k].copy_(ck["p"][k])
        opt.load_state_dict(ck["opt"])
        gen.set_state(ck["gen"].cpu())
        st = ck["st"]
        print(f"torch_copy_train: continuing from {a.state} (step {st['step']})", flush=True)

    if a.compile and not hasattr(torch, "compile"):
        print(f"torch_copy_train: torch {torch.__version__} has no torch.compile; eager", flush=True)
    fwd = torch.compile(forward_logits) if a.compile and hasattr(torch, "compile") else forward_logits

    def logits(pp, x, bias, ar):
        return forward_logits(pp, x, bias, ar, norm=rms_norm_fp32)

    bias = nape_bias(dict(arch, T=T_TRAIN), dev).to(dtype)
    stop = {"sig": False}
    signal.signal(signal.SIGTERM, lambda *_: stop.update(sig=True))
    tag = f"{a.precision} lr {a.lr:g} seed {a.seed}"
    t_run, first = time.time(), st["step"]
    while st["step"] < a.steps:
        if stop["sig"] or (a.time_limit and time.time() - t0 > a.time_limit) or \
                (a.stop_after and st["step"] - first >= a.stop_after) or (a.stop_at and st["step"] >= a.stop_at):
            st["train_s"] += time.time() - t_run
            save_state(a.state, p, opt, gen, st)
            print(f"torch_copy_train: {tag}: stopped at step {st['step']}; state in {a.state}", flush=True)
            sys.exit(0 if a.stop_at and st["step"] >= a.stop_at else 124)
        lens = torch.randint(TRAIN_MIN, TRAIN_MAX + 1, (a.batch,), generator=gen, device=dev)
        x, y = make_batch(lens, T_TRAIN, gen, dev)
        for g in opt.param_groups:
            g["lr"] = lr_at(st["step"], a)
        out = fwd(p, x, bias, arch, norm=rms_norm_fp32)
        loss = F.cross_entropy(out.float().view(-1, out.shape[-1]), y.view(-1), ignore_index=-100)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(p.values(), 1.0)
        opt.step()
        st["step"] += 1
        if st["step"] % val_every == 0 or st["step"] == a.steps:
            ex, tk = evaluate(p, arch, a.val_len, a.val_samples, 2000 + a.seed, dev, logits, a.eval_tokens)
            if ex > st["best"]:  # strictly better, as the reference's ModelCheckpoint keeps it
                st.update(best=ex, best_step=st["step"], best_p={k: v.detach().clone() for k, v in p.items()})
            el = time.time() - t_run + st["train_s"]
            print(f"torch_copy_train: {tag}: step {st['step']}/{a.steps} loss {loss.item():.3g} "
                  f"exact@{a.val_len} {ex:.3f} token@{a.val_len} {tk:.4f} ({el:.0f} s)", flush=True)
            if a.curve:
                append(a.curve, f"step,loss,lr,exact@{a.val_len},token@{a.val_len}",
                       [f"{st['step']},{loss.item():.6g},{lr_at(st['step'] - 1, a):.6g},{ex:.6f},{tk:.6f}"])
    if st["step"] > first:  # trained in this call: keep it before the tests, which a kill may cut
        st["train_s"] += time.time() - t_run
        save_state(a.state, p, opt, gen, st)
    rows = []
    for which, params, step in (("last", p, a.steps), ("best", st["best_p"], st["best_step"])):
        for n in test_lens:
            ex, tk = evaluate(params, arch, n, a.test_samples, 3000 + 7 * a.seed + n, dev, logits, a.eval_tokens)
            print(f"torch_copy_train: {tag}: {which} (step {step}) length {n}: exact {ex:.4f} token {tk:.5f}",
                  flush=True)
            rows.append(f"torch,{a.precision},{a.seed},{a.lr:g},{a.steps},{a.warmup},{which},{step},{n},"
                        f"{n / TRAIN_MAX:g},{a.test_samples},{ex:.6f},{tk:.6f},{st['train_s']:.1f}")
    append(a.out, "impl,precision,seed,lr,steps,warmup,checkpoint,step,eval_len,factor,samples,"
           "exact_match,token_acc,train_s", rows)
    os.remove(a.state)


if __name__ == "__main__":
    main()
