#!/usr/bin/python3
"""torch_peer.py: the PyTorch peer of lcgbench's softmax training run, for a C-vs-PyTorch
training throughput figure on the CPU.

It builds the same model as lcgbench (sandwich RMSNorms with (1 + w), RoPE, softmax attention,
GeGLU FFN, untied LM head; the math of bench/torch_reference.py, in float32, batch-first, plain
matmul + causal mask + softmax) and trains it on random copy batches (vocabulary 37: input BOS
src SEP trg, loss on the trg + EOS half) with AdamW (betas 0.9, 0.99, eps 1e-8, no weight decay,
constant lr 3e-3) and gradient clipping at norm 1.0, in one of two configs:

  --config bench  2 layers, C = 64, 4 heads of 16, FFN 256, B = 32, length 31 (T = 64)
  --config paper  the paper's copy architecture: 2 layers, C = 256, 16 heads of 16, FFN 1024,
                  B = 128, lengths 48 +- 16 per sample, each batch padded to its longest
                  sample as lcgbench pads it (T <= 130, about 98 real tokens a sample)

After a few warm-up steps it times --steps training steps (forward, backward, clip, optimizer
step) per thread count in --threads and prints

  torch blas=NAME lib=PATH [kernel=CORE threads=N]   the BLAS library mapped into this process
                                                     after a matmul (/proc/self/maps): OpenBLAS,
                                                     MKL, BLIS or "reference" (netlib), with
                                                     OpenBLAS's own kernel name and thread count
  torch config=NAME threads=N tok/s=X                one line per thread count
  torch best tok/s=X                                 the largest of them
  torch version=V blas_info=...                      torch.__config__'s build-time BLAS_INFO

Tokens are the non-pad input tokens, as lcgbench counts them. Thread counts: torch's own
(torch.set_num_threads) and OpenBLAS's (openblas_set_num_threads) are both set to N; pinning to
cores is the caller's (taskset), the same cores lcgbench gets.

What it deliberately does not measure: a data loader (the batches are drawn up front, outside
the timed loop), evaluation, checkpointing, the learning-rate warm-up schedule, and the other
attention normalizers. It is a throughput peer, not a correctness check (that is
torch_reference.py) and not a tuned PyTorch implementation (no torch.compile, no fused kernels).

Usage: /usr/bin/python3 bench/torch_peer.py [--config bench|paper] [--steps 30] [--threads 1,2]
Exit status 0, or 77 with one "SKIP:" line when torch is not importable.
"""
import argparse
import ctypes
import math
import os
import sys
import time

try:
    import torch
    import torch.nn.functional as F
except Exception as e:  # ImportError, or a broken install raising something else
    print(f"SKIP: torch not importable ({type(e).__name__}: {e})".replace("\n", " "))
    sys.exit(77)

# the configs (layers, C, heads, head dim, FFN, batch, length, vary); special tokens as in
# tasks/task.h (data tokens 0..M, M = 31)
CONFIGS = {"bench": (2, 64, 4, 16, 256, 32, 31, 0), "paper": (2, 256, 16, 16, 1024, 128, 48, 16)}
L, C, H, D, FF, B, LEN, VARY = CONFIGS["bench"]
M = 31
PAD, BOS, EOS, SEP, V = M + 1, M + 2, M + 3, M + 5, M + 6
T = 2 * (LEN + VARY) + 2  # BOS src SEP trg, the longest sample
LR, BETAS, EPS, CLIP = 3e-3, (0.9, 0.99), 1e-8, 1.0
RMS_EPS, ROPE_THETA, INIT_STD = 1e-6, 10000.0, 0.02


def rms_norm(x, w):
    return x * torch.rsqrt(x.pow(2).mean(dim=-1, keepdim=True) + RMS_EPS) * (1 + w)


class Peer(torch.nn.Module):
    def __init__(self):
        super().__init__()
        normal = lambda *shape: torch.nn.Parameter(torch.randn(*shape) * INIT_STD)
        zeros = lambda *shape: torch.nn.Parameter(torch.zeros(*shape))
        self.embedding = normal(V, C)
        self.ln_in, self.ln_post_attn = zeros(L, C), zeros(L, C)
        self.ln_pre_ffn, self.ln_post_ffn = zeros(L, C), zeros(L, C)
        self.wqkv, self.wo = normal(L, C, 3 * H * D), normal(L, H * D, C)
        self.w_gate_up, self.w_down = normal(L, C, 2 * FF), normal(L, FF, C)
        self.ln_final, self.lm_head = zeros(C), normal(C, V)
        # RoPE (rotate-half) tables and the causal mask, fixed for T
        inv_freq = ROPE_THETA ** (-2.0 * torch.arange(D // 2) / D)
        angle = torch.arange(T)[:, None] * inv_freq[None, :]  # T, D/2
        self.register_buffer("cos", angle.cos()[None, None])  # 1, 1, T, D/2
        self.register_buffer("sin", angle.sin()[None, None])
        self.register_buffer("future", torch.ones(T, T, dtype=torch.bool).triu(1))

    def rope(self, x):  # x [B, H, t, D]
        t = x.shape[2]
        x1, x2 = x[..., :D // 2], x[..., D // 2:]
        cos, sin = self.cos[:, :, :t], self.sin[:, :, :t]
        return torch.cat([x1 * cos - x2 * sin, x2 * cos + x1 * sin], dim=-1)

    def attention(self, h, l):
        t = h.shape[1]
        q, k, v = (h @ self.wqkv[l]).view(B, t, 3, H, D).permute(2, 0, 3, 1, 4)  # each B,H,t,D
        q, k = self.rope(q), self.rope(k)
        scores = (q @ k.transpose(-1, -2) / math.sqrt(D)).masked_fill(self.future[:t, :t], float("-inf"))
        out = torch.softmax(scores, dim=-1) @ v
        return out.transpose(1, 2).reshape(B, t, H * D) @ self.wo[l]

    def ffn(self, h, l):
        gate, up = (h @ self.w_gate_up[l]).chunk(2, dim=-1)
        return (F.gelu(gate, approximate="tanh") * up) @ self.w_down[l]

    def forward(self, tok):
        x = self.embedding[tok] * math.sqrt(C)
        for l in range(L):
            x = x + rms_norm(self.attention(rms_norm(x, self.ln_in[l]), l), self.ln_post_attn[l])
            x = x + rms_norm(self.ffn(rms_norm(x, self.ln_pre_ffn[l]), l), self.ln_post_ffn[l])
        return rms_norm(x, self.ln_final) @ self.lm_head


def copy_batch(gen):
    """input BOS src SEP trg, target src SEP trg EOS; loss only on the trg + EOS targets (the
    positions from SEP on), as the C harness does. Lengths LEN +- VARY per sample; the batch is
    padded (PAD, no loss) to its longest sample. Returns (tokens, targets, non-pad tokens)"""
    lens = torch.randint(LEN - VARY, LEN + VARY + 1, (B,), generator=gen).tolist()
    t = 2 * max(lens) + 2
    tok = torch.full((B, t), PAD, dtype=torch.long)
    tgt = torch.full((B, t), -100, dtype=torch.long)  # -100: ignored by cross_entropy
    for i, n in enumerate(lens):
        src = torch.randint(0, M + 1, (n,), generator=gen)
        tok[i, :2 * n + 2] = torch.cat([torch.tensor([BOS]), src, torch.tensor([SEP]), src])
        tgt[i, n:2 * n + 2] = torch.cat([torch.tensor([SEP]), src, torch.tensor([EOS])])
        tgt[i, n] = -100  # the SEP target belongs to the source half
    return tok, tgt, sum(2 * n + 2 for n in lens)


def blas_in_use():
    """(name, path, detail) of the BLAS library mapped into this process after a matmul"""
    a = torch.randn(64, 64)
    (a @ a).sum().item()
    paths = []
    with open("/proc/self/maps") as f:
        for line in f:
            p = line.split()[-1] if len(line.split()) >= 6 else ""
            b = os.path.basename(p).lower()
            if p not in paths and any(k in b for k in ("blas", "mkl", "blis")):
                paths.append(p)
    for p in paths:  # the most specific first
        b = os.path.basename(p).lower()
        if "openblas" in b or "/openblas" in p:
            try:
                lib = ctypes.CDLL(p)
                lib.openblas_get_corename.restype = ctypes.c_char_p
                return "OpenBLAS", p, lib
            except OSError:
                return "OpenBLAS", p, None
    for p in paths:
        b = os.path.basename(p).lower()
        if "mkl" in b:
            return "MKL", p, None
        if "blis" in b:
            return "BLIS", p, None
    for p in paths:
        if os.path.basename(p).startswith("libblas.so"):
            return "reference", p, None  # netlib's libblas (Debian's libblas3, blas/libblas.so.3)
    return "unknown", ",".join(paths) or "none", None


def train_step(model, opt, tok, tgt):
    opt.zero_grad(set_to_none=True)
    loss = F.cross_entropy(model(tok).view(-1, V), tgt.view(-1), ignore_index=-100)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), CLIP)
    opt.step()
    return loss


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--config", choices=sorted(CONFIGS), default="bench", help="model and batch (bench)")
    ap.add_argument("--steps", type=int, default=30, help="timed steps per thread count (30)")
    ap.add_argument("--warmup", type=int, default=3, help="untimed steps first (3)")
    ap.add_argument("--threads", default="1,2", help="comma-separated thread counts (1,2)")
    args = ap.parse_args()
    threads = [int(n) for n in args.threads.split(",") if n.strip()]
    if args.steps < 1 or not threads or min(threads) < 1:
        ap.error("--steps and every --threads count must be >= 1")

    global L, C, H, D, FF, B, LEN, VARY, T
    L, C, H, D, FF, B, LEN, VARY = CONFIGS[args.config]
    T = 2 * (LEN + VARY) + 2

    blas, path, lib = blas_in_use()
    detail = ""
    if lib is not None:
        detail = f" kernel={lib.openblas_get_corename().decode()} threads={lib.openblas_get_num_threads()}"
    print(f"torch blas={blas} lib={path}{detail}", flush=True)
    torch.manual_seed(1)
    gen = torch.Generator().manual_seed(1)
    batches = [copy_batch(gen) for _ in range(args.warmup + args.steps)]
    tokens = sum(b[2] for b in batches[args.warmup:])
    best = 0.0
    for n in threads:
        torch.set_num_threads(n)
        if lib is not None:
            lib.openblas_set_num_threads(n)
        model = Peer()  # a fresh model and optimizer per thread count: same work for each
        opt = torch.optim.AdamW(model.parameters(), lr=LR, betas=BETAS, eps=EPS, weight_decay=0.0)
        for tok, tgt, _ in batches[:args.warmup]:
            train_step(model, opt, tok, tgt)
        t0 = time.perf_counter()
        for tok, tgt, _ in batches[args.warmup:]:
            loss = train_step(model, opt, tok, tgt)
        elapsed = time.perf_counter() - t0
        tps = tokens / elapsed
        best = max(best, tps)
        if not math.isfinite(loss.item()):
            print(f"torch threads={n}: non-finite loss", file=sys.stderr)
            return 1
        print(f"torch config={args.config} threads={n} tok/s={tps:.0f}", flush=True)
    print(f"torch best tok/s={best:.0f}")
    info = [l.split("=", 1)[1].strip() for l in torch.__config__.show().splitlines() if "BLAS_INFO" in l]
    print(f"torch version={torch.__version__} blas_info={info[0].split(',')[0] if info else 'unknown'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
