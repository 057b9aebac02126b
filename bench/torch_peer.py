#!/usr/bin/python3
"""torch_peer.py: the PyTorch peer of bench/variants.sh's softmax run, for a C-vs-PyTorch
training throughput figure on the CPU.

It builds the same model as lcgbench with the fixed config of bench/variants.sh (2 layers,
C = 64, 4 heads of 16, GeGLU FFN 256, vocabulary 37, RoPE, softmax attention, sandwich
RMSNorms with (1 + w), untied LM head; the math of bench/torch_reference.py, in float32,
batch-first, plain matmul + causal mask + softmax) and trains it on random copy batches
(B = 32, length 31: input BOS src SEP trg = 64 tokens, loss on the trg + EOS half) with
AdamW (betas 0.9, 0.99, eps 1e-8, no weight decay, constant lr 3e-3) and gradient clipping at
norm 1.0. After a few warm-up steps it times --steps training steps (forward, backward, clip,
optimizer step) per thread count in --threads and prints

  torch threads=N tok/s=X      one line per thread count
  torch best tok/s=X           the largest of them

with tokens = B * T = 32 * 64 input tokens per step (none are pad), as lcgbench counts them.

What it deliberately does not measure: a data loader (the batches are drawn up front, outside
the timed loop), evaluation, checkpointing, the learning-rate warm-up schedule, and the other
attention normalizers. It is a throughput peer, not a correctness check (that is
torch_reference.py) and not a tuned PyTorch implementation (no torch.compile, no fused kernels).

Usage: /usr/bin/python3 bench/torch_peer.py [--steps 30] [--threads 1,2]
Exit status 0, or 77 with one "SKIP:" line when torch is not importable.
"""
import argparse
import math
import sys
import time

try:
    import torch
    import torch.nn.functional as F
except Exception as e:  # ImportError, or a broken install raising something else
    print(f"SKIP: torch not importable ({type(e).__name__}: {e})".replace("\n", " "))
    sys.exit(77)

# the config of bench/variants.sh; special tokens as in tasks/task.h (data tokens 0..M, M = 31)
L, C, H, D, FF, B, LEN = 2, 64, 4, 16, 256, 32, 31
M = 31
PAD, BOS, EOS, SEP, V = M + 1, M + 2, M + 3, M + 5, M + 6
T = 2 * LEN + 2  # BOS src SEP trg
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

    def rope(self, x):  # x [B, H, T, D]
        x1, x2 = x[..., :D // 2], x[..., D // 2:]
        return torch.cat([x1 * self.cos - x2 * self.sin, x2 * self.cos + x1 * self.sin], dim=-1)

    def attention(self, h, l):
        q, k, v = (h @ self.wqkv[l]).view(B, T, 3, H, D).permute(2, 0, 3, 1, 4)  # each B,H,T,D
        q, k = self.rope(q), self.rope(k)
        scores = (q @ k.transpose(-1, -2) / math.sqrt(D)).masked_fill(self.future, float("-inf"))
        out = torch.softmax(scores, dim=-1) @ v
        return out.transpose(1, 2).reshape(B, T, H * D) @ self.wo[l]

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
    positions from SEP on), as the C harness does"""
    src = torch.randint(0, M + 1, (B, LEN), generator=gen)
    col = lambda t: torch.full((B, 1), t, dtype=torch.long)
    tok = torch.cat([col(BOS), src, col(SEP), src], dim=1)
    tgt = torch.cat([src, col(SEP), src, col(EOS)], dim=1)
    tgt[:, :LEN + 1] = -100  # ignored by cross_entropy
    return tok, tgt


def train_step(model, opt, tok, tgt):
    opt.zero_grad(set_to_none=True)
    loss = F.cross_entropy(model(tok).view(-1, V), tgt.view(-1), ignore_index=-100)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), CLIP)
    opt.step()
    return loss


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", type=int, default=30, help="timed steps per thread count (30)")
    ap.add_argument("--warmup", type=int, default=3, help="untimed steps first (3)")
    ap.add_argument("--threads", default="1,2", help="comma-separated thread counts (1,2)")
    args = ap.parse_args()
    threads = [int(n) for n in args.threads.split(",") if n.strip()]
    if args.steps < 1 or not threads or min(threads) < 1:
        ap.error("--steps and every --threads count must be >= 1")

    torch.manual_seed(1)
    gen = torch.Generator().manual_seed(1)
    batches = [copy_batch(gen) for _ in range(args.warmup + args.steps)]
    best = 0.0
    for n in threads:
        torch.set_num_threads(n)
        model = Peer()  # a fresh model and optimizer per thread count: same work for each
        opt = torch.optim.AdamW(model.parameters(), lr=LR, betas=BETAS, eps=EPS, weight_decay=0.0)
        for tok, tgt in batches[:args.warmup]:
            train_step(model, opt, tok, tgt)
        t0 = time.perf_counter()
        for tok, tgt in batches[args.warmup:]:
            loss = train_step(model, opt, tok, tgt)
        elapsed = time.perf_counter() - t0
        tps = args.steps * B * T / elapsed
        best = max(best, tps)
        if not math.isfinite(loss.item()):
            print(f"torch threads={n}: non-finite loss", file=sys.stderr)
            return 1
        print(f"torch threads={n} tok/s={tps:.0f}", flush=True)
    print(f"torch best tok/s={best:.0f}")
    blas = [l.split("=", 1)[1].strip() for l in torch.__config__.show().splitlines() if "BLAS_INFO" in l]
    print(f"torch version={torch.__version__} blas={blas[0].split(',')[0] if blas else 'unknown'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
