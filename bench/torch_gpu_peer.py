#!/usr/bin/python3
"""torch_gpu_peer.py: the PyTorch peer of cuda/bench_gpu on the same GPU, for `make bench-gpu`.

The lcgbench model (sandwich RMSNorms with (1 + w), q|k|v projection, NAPE: ALiBi slopes 1/(h+1)
on the first H/2 heads and NoPE on the rest, causal softmax attention, GeGLU with tanh-GELU,
untied LM head; the math of bench/torch_reference.py) in float32 on CUDA, trained on random
tokens with every position in the loss (as bench_gpu does) by AdamW (betas 0.9, 0.99, eps 1e-8;
fused) after gradient clipping at norm 1. Attention through F.scaled_dot_product_attention with
the causal ALiBi bias as an additive mask (PyTorch's usual way; no hand-written kernels).
Per architecture (copy: 2 layers, C 256, 16 x 16 heads, FFN 1024, V 36, B 128, T 98; mqmtar:
4 layers, C 512, 16 x 32 heads, FFN 1024, V 40, B 128, T 80) and precision (fp32: no TF32;
tf32: TF32 matmuls; bf16: autocast to bfloat16, for reference) it prints

  torch ARCH PREC eager|compile  X M tok/s  step Y ms

timing --steps steps after --warmup (torch.compile compiles during the warm-up).
Not here: the other normalizers (entmax in PyTorch has no fused kernel to compare with).
Exit 0, or 77 with one "SKIP:" line without torch or CUDA.
"""
import argparse
import math
import sys
import time

try:
    import torch
    import torch.nn.functional as F
except Exception as e:
    print(f"SKIP: torch not importable ({type(e).__name__}: {e})".replace("\n", " "))
    sys.exit(77)

ARCHS = {"copy": dict(V=36, L=2, C=256, H=16, D=16, F=1024, B=128, T=98),
         "mqmtar": dict(V=40, L=4, C=512, H=16, D=32, F=1024, B=128, T=80)}
RMS_EPS = 1e-6


def rms_norm(x, w):
    return x * torch.rsqrt(x.pow(2).mean(dim=-1, keepdim=True) + RMS_EPS) * (1 + w)


def gelu_tanh(x):
    return 0.5 * x * (1 + torch.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x.pow(3))))


def make_params(a, dev, seed=1):
    V, L, C, H, D, Fw = (a[k] for k in "VLCHDF")
    g = torch.Generator(device="cpu").manual_seed(seed)

    def w(*shape, std=0.02):
        return (torch.randn(*shape, generator=g) * std).to(dev).requires_grad_()

    def z(*shape):
        return torch.zeros(*shape, device=dev, requires_grad=True)

    return {"emb": w(V, C), "ln_in": z(L, C), "wqkv": w(L, C, 3 * H * D), "wo": w(L, H * D, C),
            "ln_pa": z(L, C), "ln_pf": z(L, C), "wgu": w(L, C, 2 * Fw), "wdown": w(L, Fw, C),
            "ln_po": z(L, C), "ln_f": z(C), "lm": w(C, V)}


def nape_bias(a, dev, T=None, dtype=torch.float32):
    H, T = a["H"], T or a["T"]
    slopes = torch.tensor([1.0 / (h + 1) if h < H // 2 else 0.0 for h in range(H)], device=dev, dtype=dtype)
    i = torch.arange(T, device=dev)[:, None]
    j = torch.arange(T, device=dev)[None, :]
    bias = slopes[:, None, None] * (j - i)[None].to(dtype)
    return bias.masked_fill((j > i)[None], float("-inf"))[None]  # 1, H, T, T


def attention(q, k, v, bias):
    """softmax(q k^T / sqrt(D) + bias) v; bias [1, H, T, T] holds the causal mask (-inf above
    the diagonal) and the ALiBi terms. SDPA where torch has it (>= 2.0), else written out."""
    if hasattr(F, "scaled_dot_product_attention"):
        return F.scaled_dot_product_attention(q, k, v, attn_mask=bias.to(q.dtype))
    s = (q @ k.transpose(-1, -2)) / math.sqrt(q.shape[-1]) + bias.to(q.dtype)
    return torch.softmax(s.to(torch.promote_types(s.dtype, torch.float32)), dim=-1).to(q.dtype) @ v


def forward_logits(p, tok, bias, a, norm=rms_norm):
    """the model's logits [B, T, V] for tokens tok [B, T]; norm: the RMSNorm to use"""
    B, T = tok.shape
    L, C, H, D = a["L"], a["C"], a["H"], a["D"]
    x = p["emb"][tok] * math.sqrt(C)
    for l in range(L):
        h = norm(x, p["ln_in"][l])
        q, k, v = (t.view(B, T, H, D).transpose(1, 2) for t in (h @ p["wqkv"][l]).split(H * D, dim=-1))
        o = attention(q, k, v, bias)
        x = x + norm(o.transpose(1, 2).reshape(B, T, H * D) @ p["wo"][l], p["ln_pa"][l])
        gate, up = (norm(x, p["ln_pf"][l]) @ p["wgu"][l]).chunk(2, dim=-1)
        x = x + norm((gelu_tanh(gate) * up) @ p["wdown"][l], p["ln_po"][l])
    return norm(x, p["ln_f"]) @ p["lm"]


def forward_loss(p, tok, tgt, bias, a):
    logits = forward_logits(p, tok, bias, a)
    return F.cross_entropy(logits.float().view(-1, logits.shape[-1]), tgt.view(-1))


def bench(arch, prec, mode, steps, warmup):
    a = ARCHS[arch]
    dev = "cuda"
    torch.backends.cuda.matmul.allow_tf32 = prec == "tf32"
    torch.backends.cudnn.allow_tf32 = prec == "tf32"
    p = make_params(a, dev)
    opt = torch.optim.AdamW(p.values(), lr=1e-3, betas=(0.9, 0.99), eps=1e-8, weight_decay=0.0, fused=True)
    bias = nape_bias(a, dev)
    g = torch.Generator(device="cpu").manual_seed(2)
    tok = torch.randint(0, a["V"], (a["B"], a["T"]), generator=g).to(dev)
    tgt = torch.randint(0, a["V"], (a["B"], a["T"]), generator=g).to(dev)
    fl = forward_loss if mode == "eager" else torch.compile(forward_loss)

    def step():
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=prec == "bf16"):
            loss = fl(p, tok, tgt, bias, a)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(p.values(), 1.0)
        opt.step()
        return loss

    for _ in range(warmup):
        step()
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(steps):
        loss = step()
    loss.item()
    dt = (time.perf_counter() - t0) / steps
    tps = a["B"] * a["T"] / dt
    print(f"torch {arch:6s} {prec:4s} {mode:7s} {tps / 1e6:7.3f} M tok/s  step {dt * 1e3:7.3f} ms", flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--archs", default="copy,mqmtar")
    ap.add_argument("--precs", default="fp32,tf32,bf16")
    ap.add_argument("--modes", default="eager,compile")
    args = ap.parse_args()
    if not torch.cuda.is_available():
        print("SKIP: no CUDA device for torch")
        sys.exit(77)
    print(f"torch {torch.__version__} on {torch.cuda.get_device_name(0)}; {args.steps} timed steps after {args.warmup}")
    for mode in args.modes.split(","):
        for arch in args.archs.split(","):
            for prec in args.precs.split(","):
                try:
                    bench(arch, prec, mode, args.steps, args.warmup)
                except Exception as e:  # a compile failure is a line, not the end of the table
                    print(f"torch {arch} {prec} {mode}: failed: {type(e).__name__}: {str(e)[:200]}".replace("\n", " "))


if __name__ == "__main__":
    main()
