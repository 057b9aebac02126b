#!/usr/bin/python3
"""torch_reference.py: an independent PyTorch check of the lcgbench model's math.

It loads a C checkpoint (format v1) and a token batch, rebuilds the model from the equations
in model/model.h (written here from the math, not translated from the C kernels), runs the
forward pass in float64 with the stored float32 parameters, takes the gradient of the mean
masked loss with torch autograd, and compares with what the C code produced:

  * the loss                  relative error  |ref - C| / |ref|
  * the logits [B, T, V]      max |ref - C| / max |ref|
  * the gradient of every parameter tensor (embedding, ln_in, ..., lm_head, and the length
    scaling's ls_* tensors that the normalizer has), each on its own:
                              max |ref - C| / max |ref grad of that tensor|
    (if a tensor's reference gradient is all zero, the scale is the largest reference gradient
    of any tensor, and 1 if every gradient is zero, e.g. when no position is masked in)

All must be within --tol (default 1e-4; the C values are float32, the reference float64).

What it checks: the float model's forward (embedding scale, sandwich RMSNorms with (1 + w),
q|k|v layout and head split, RoPE / NoPE / ALiBi / NAPE, causal attention with each normalizer,
GeGLU with tanh-GELU, untied LM head), the masked mean cross-entropy, the hand-written backward
of every layer, the parameter layout of the flat array, and the checkpoint's format and
checksum. The normalizers (ids as in kernels/kernels.h):

  id  name          rows                 query length scaling c (per query and head)
  0   softmax       softmax              -
  1   entmax        alpha-entmax         -
  2   sparsemax     entmax, alpha = 2    -
  3   ssmax         softmax              c = beta_k l
  4   asentmax      alpha-entmax         c = 1 + softplus(a.Wb[:, k] + bb_k)
                                               * l^(2 tanh(a.Wg[:, k] + bg_k))
  5   entmax-learn  alpha-entmax         c = 1 + beta_k l^gamma_k
  6   topk          softmax over the     -
                    k largest (k = K, or max(K, keys // 2) for the div-2 rule; ties: newest first)
  7   stick-break   sigma(z_ij) prod_{j<m<i} (1 - sigma(z_im)), j < i, in log space       -
  8   adaptive-     softmax(beta s), beta = max(P(H), 1) if H(softmax(s)) > 0.5 else 1  -
      softmax       (P in ascending powers, as the reference; gradients through beta)

with l = ln(pos + 2), pos the 0-based token index in the sequence, and a the layer's RMS-normed
input (the q/k/v projection's input). c multiplies the scores of the scaled heads:
s_ij = c_ih q_i.k_j / sqrt(D) + slope_h (j - i) (q, k after RoPE under rope). The scaled heads
are h0..H-1 with k = h - h0, h0 = H//2 under nape (its NoPE heads) and 0 otherwise; the others
get c = 1. The length-scaling parameters follow lm_head in the flat array, in this order, each
empty when the normalizer lacks it (Hs = H - h0): ls_beta [L, Hs] (ssmax, entmax-learn),
ls_gamma [L, Hs] (entmax-learn), ls_w_beta [L, C, Hs], ls_b_beta [L, Hs], ls_w_gamma [L, C, Hs],
ls_b_gamma [L, Hs] (asentmax; z = a @ W + b). Their gradients, like every other, come from
autograd. The alpha field must be 1 for softmax and ssmax, 2 for sparsemax, and in (1, 2] for
entmax, asentmax and entmax-learn (as in model/config.c); entmax uses it as stored (a float32,
widened exactly to float64).

Entmax here is written from the math (spec shared/spec/entmax.md §1.1-§1.2, §2.1), not from the
C kernels or any library: per row, on x = (alpha - 1)(s - max s) over the causal keys only,
tau is found by 100 float64 bisection steps on the bracket [-1, -n^(1 - alpha)] (n = the row's
causal key count), p = [x - tau]_+^(1/(alpha - 1)) renormalized to sum 1, future keys exactly 0
and never in any sum; the backward is the JVP ds = u (g - sum(u g) / sum(u)), u = p^(2 - alpha)
on the support (1 for sparsemax). It cannot tell the C fast paths (closed forms, Newton,
bisection fallback) apart: only their result is compared. The sparse attentions make the loss
only piecewise smooth; the C gradient is compared with autograd's at the same point, which is
exact unless a key sits within rounding of the support boundary (then a mismatch may be noise).

What it does not check: the `_f64` model, decoding with the KV cache (model/infer.c), the
optimizer and its saved state (read and skipped), gradients with respect to anything but
parameters (in particular not w.r.t. alpha, a constant), entmax on rows longer than the batch's
T (the C heap path for more than 256 candidates), the length scaling at positions past the
batch's T or with a position offset (the decoder's pos0), and bitwise reproducibility of the C
code.

Usage:
  /usr/bin/python3 bench/torch_reference.py --ckpt DIR/model.ckpt --batch DIR/batch.bin \
      --expect DIR/expect.bin [--verbose] [--tol 1e-4]
  /usr/bin/python3 bench/torch_reference.py --cases DIR1 DIR2 ... [--verbose] [--tol 1e-4]

--cases checks many cases in one run (torch is imported once, which dominates a small case's
time): each DIR holds model.ckpt, batch.bin and expect.bin. Every case is checked; its lines are
prefixed with "[DIR] ", and a last line counts the cases that match and names those that don't.

Files (little-endian):
  batch.bin   i32 B, i32 T, i32 tok[B*T], i32 tgt[B*T], i32 mask[B*T]
  expect.bin  f64 loss, f32 logits[B*T*V], f32 grads[n_params] (the checkpoint's flat order)

Exit status: 0 all match (one summary line; with --cases one per case plus the count),
1 a mismatch (one line per failing value, naming its case with --cases), 2 unreadable or
malformed input, or bad arguments (one line; with --cases 2 wins over 1), 77 torch not
importable (one "SKIP:" line).
Everything is printed on stdout (argparse's usage errors on stderr).

Needs only torch and the standard library.
"""
import argparse
import math
import os
import struct
import sys
from array import array

try:
    import torch
except Exception as e:  # ImportError, or a broken install raising something else
    print(f"SKIP: torch not importable ({type(e).__name__}: {e})".replace("\n", " "))
    sys.exit(77)

EXIT_OK, EXIT_MISMATCH, EXIT_BAD_INPUT = 0, 1, 2

CKPT_MAGIC = b"LCGBCKPT"
CKPT_VERSIONS = (1, 2)  # 2 adds the harness's training state after the optimizer
FNV_OFFSET, FNV_PRIME = 0xCBF29CE484222325, 0x100000001B3

RMS_EPS = 1e-6
ROPE_THETA = 10000.0


def registry_names(topic):
    """the names lcgbench's registries hold, in id order (`lcgbench help <topic> --names`; the
    binary is $LCGBENCH, else ./lcgbench beside bench/): the ids a checkpoint stores"""
    import subprocess
    exe = os.environ.get("LCGBENCH") or os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lcgbench")
    try:
        out = subprocess.run([exe, "help", topic, "--names"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError) as e:
        print(f"cannot list the {topic} names with '{exe} help {topic} --names': {e}", file=sys.stderr)
        sys.exit(EXIT_BAD_INPUT)
    return dict(enumerate(out.split()))


# ids -> names from the registry; the semantics of each name below are this file's own
POS_NAMES = registry_names("pos")
NORM_NAMES = registry_names("attn")
(NORM_SOFTMAX, NORM_ENTMAX, NORM_SPARSEMAX, NORM_SSMAX, NORM_ASENTMAX, NORM_ENTMAX_LEARN, NORM_TOPK,
 NORM_STICK, NORM_ADAPTIVE) = (
    {v: k for k, v in NORM_NAMES.items()}.get(n, -1 - i)
    for i, n in enumerate(("softmax", "entmax", "sparsemax", "ssmax", "asentmax", "entmax-learn", "topk",
                           "stick-break", "adaptive-softmax")))
# the row function of each normalizer, its query length scaling, and its alpha rule: None =
# takes alpha in (1, 2] from the checkpoint, else the only value allowed (as in kernels/registry.c)
ROW_SOFTMAX, ROW_ENTMAX, ROW_TOPK, ROW_STICK, ROW_ADAPTIVE = "softmax", "entmax", "topk", "stick", "adaptive"
SCALE_NONE, SCALE_SSMAX, SCALE_ADAPT, SCALE_LEARN = "none", "ssmax", "adapt", "learn"
NORM_ROW = {NORM_SOFTMAX: ROW_SOFTMAX, NORM_ENTMAX: ROW_ENTMAX, NORM_SPARSEMAX: ROW_ENTMAX,
            NORM_SSMAX: ROW_SOFTMAX, NORM_ASENTMAX: ROW_ENTMAX, NORM_ENTMAX_LEARN: ROW_ENTMAX,
            NORM_TOPK: ROW_TOPK, NORM_STICK: ROW_STICK, NORM_ADAPTIVE: ROW_ADAPTIVE}
NORM_SCALE = {NORM_SOFTMAX: SCALE_NONE, NORM_ENTMAX: SCALE_NONE, NORM_SPARSEMAX: SCALE_NONE,
              NORM_SSMAX: SCALE_SSMAX, NORM_ASENTMAX: SCALE_ADAPT, NORM_ENTMAX_LEARN: SCALE_LEARN,
              NORM_TOPK: SCALE_NONE, NORM_STICK: SCALE_NONE, NORM_ADAPTIVE: SCALE_NONE}
# topk's "alpha" is its row parameter: +K (k = K) or -K (k = max(K, keys // 2)), an integer
NORM_FIXED_ALPHA = {NORM_SOFTMAX: 1.0, NORM_ENTMAX: None, NORM_SPARSEMAX: 2.0, NORM_SSMAX: 1.0,
                    NORM_ASENTMAX: None, NORM_ENTMAX_LEARN: None, NORM_TOPK: "k", NORM_STICK: 1.0,
                    NORM_ADAPTIVE: 1.0}
# adaptive-temperature softmax: P(H) = sum_k c_k H^k, ascending powers as the reference evaluates
ADAPT_POLY = (-0.037, 0.481, -2.3, 4.917, -1.791)
ADAPT_EPS, ADAPT_H0 = 1e-9, 0.5
LS_DELTA, LS_RHO = 1.0, 2.0  # c = delta + ... l^(rho tanh(.)) (learn, adapt)
ENTMAX_BISECT_ITERS = 100

PARAM_NAMES = ["embedding", "ln_in", "wqkv", "wo", "ln_post_attn", "ln_pre_ffn",
               "w_gate_up", "w_down", "ln_post_ffn", "ln_final", "lm_head",
               "ls_beta", "ls_gamma", "ls_w_beta", "ls_b_beta", "ls_w_gamma", "ls_b_gamma"]
PER_LAYER = {"ln_in", "wqkv", "wo", "ln_post_attn", "ln_pre_ffn", "w_gate_up", "w_down",
             "ln_post_ffn", "ls_beta", "ls_gamma", "ls_w_beta", "ls_b_beta", "ls_w_gamma",
             "ls_b_gamma"}  # leading dimension L


class BadInput(Exception):
    """an unreadable or malformed input file (exit 2)"""


# ---- reading the files -------------------------------------------------------------------

class Reader:
    """little-endian fields from a byte string, with bounds checks"""

    def __init__(self, data, what):
        self.data, self.off, self.what = data, 0, what

    def take(self, n):
        if n < 0 or len(self.data) - self.off < n:
            raise BadInput(f"{self.what}: truncated (wanted {n} bytes at offset {self.off})")
        chunk = self.data[self.off:self.off + n]
        self.off += n
        return chunk

    def scalar(self, fmt):
        return struct.unpack("<" + fmt, self.take(struct.calcsize(fmt)))[0]

    def numbers(self, typecode, n):
        """n little-endian numbers ('i' int32, 'f' float32) as a 1-D torch tensor"""
        a = array(typecode)
        assert a.itemsize == 4
        a.frombytes(self.take(4 * n))
        if sys.byteorder == "big":
            a.byteswap()
        dtype = torch.int32 if typecode == "i" else torch.float32
        return torch.frombuffer(a, dtype=dtype).clone() if n else torch.zeros(0, dtype=dtype)

    def at_end(self):
        return self.off == len(self.data)


def read_bytes(path, what):
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as e:
        raise BadInput(f"cannot read {what} '{path}': {e.strerror}")


def fnv1a64(data):
    h = FNV_OFFSET
    for byte in data:
        h = ((h ^ byte) * FNV_PRIME) & 0xFFFFFFFFFFFFFFFF
    return h


def scaled_heads(cfg):
    """h0, the first length-scaled head: the NoPE half (h >= H//2) under nape, else every head"""
    return cfg["H"] // 2 if POS_NAMES[cfg["pos"]] == "nape" else 0


def param_shapes(cfg):
    """name -> shape in the flat order; the length-scaling tensors the normalizer does not use
    have shape (0,)"""
    V, L, C, H, D, F = (cfg[k] for k in "VLCHDF")
    HD = H * D
    shapes = {"embedding": (V, C), "ln_in": (L, C), "wqkv": (L, C, 3 * HD), "wo": (L, HD, C),
              "ln_post_attn": (L, C), "ln_pre_ffn": (L, C), "w_gate_up": (L, C, 2 * F),
              "w_down": (L, F, C), "ln_post_ffn": (L, C), "ln_final": (C,), "lm_head": (C, V)}
    kind, Hs = NORM_SCALE[cfg["norm"]], H - scaled_heads(cfg)
    used = {"ls_beta": kind in (SCALE_SSMAX, SCALE_LEARN), "ls_gamma": kind == SCALE_LEARN,
            "ls_w_beta": kind == SCALE_ADAPT, "ls_b_beta": kind == SCALE_ADAPT,
            "ls_w_gamma": kind == SCALE_ADAPT, "ls_b_gamma": kind == SCALE_ADAPT}
    full = {"ls_beta": (L, Hs), "ls_gamma": (L, Hs), "ls_w_beta": (L, C, Hs), "ls_b_beta": (L, Hs),
            "ls_w_gamma": (L, C, Hs), "ls_b_gamma": (L, Hs)}
    for name in PARAM_NAMES[11:]:
        shapes[name] = full[name] if used[name] else (0,)
    return shapes


def check_config(cfg):
    """the limits of lcg_config_check (model/config.c); returns '' or the problem"""
    limits = {"V": (2, 1 << 20), "L": (1, 64), "C": (2, 8192), "H": (1, 256), "D": (2, 1024),
              "F": (1, 65536)}
    for k, (lo, hi) in limits.items():
        if not lo <= cfg[k] <= hi:
            return f"{k} = {cfg[k]} outside [{lo}, {hi}]"
    if cfg["D"] % 2:
        return f"head dim D = {cfg['D']} is odd"
    if cfg["norm"] not in NORM_NAMES:
        return f"unknown attention normalizer id {cfg['norm']}"
    if cfg["norm"] not in NORM_ROW:
        return f"attention normalizer {NORM_NAMES[cfg['norm']]} has no PyTorch counterpart here"
    a, name, fixed = cfg["alpha"], NORM_NAMES[cfg["norm"]], NORM_FIXED_ALPHA[cfg["norm"]]
    if fixed == "k":
        if a != int(a) or not 1 <= abs(a) <= 1 << 20:
            return f"topk parameter {a!r} is no integer K with 1 <= |K| <= 2^20"
    elif fixed is None and not 1.0 < a <= 2.0:
        return f"alpha {a!r} outside (1, 2] for {name}"
    elif fixed is not None and a != fixed:
        return f"alpha {a!r} for {name}, which has none"
    if cfg["pos"] not in POS_NAMES:
        return f"unknown position encoding id {cfg['pos']}"
    return ""


def load_checkpoint(path, with_opt=False):
    """returns (cfg dict, flat float32 params), and with_opt its AdamW moments m, v too (None
    where the checkpoint has none)"""
    data = read_bytes(path, "checkpoint")
    what = f"checkpoint '{path}'"
    r = Reader(data, what)
    if data[:8] != CKPT_MAGIC:
        raise BadInput(f"{what}: not an lcgbench checkpoint (bad magic)")
    r.take(8)
    version = r.scalar("I")
    if version not in CKPT_VERSIONS:
        raise BadInput(f"{what}: format version {version}, this script reads {CKPT_VERSIONS}")
    if len(data) < 8 + 4 + 8:
        raise BadInput(f"{what}: truncated")
    (stored_sum,) = struct.unpack("<Q", data[-8:])
    if stored_sum != fnv1a64(data[:-8]):
        raise BadInput(f"{what}: checksum mismatch (corrupted or truncated)")
    r.data = data[:-8]  # the checksum is not payload
    cfg = dict(zip(["V", "L", "C", "H", "D", "F", "norm", "pos"],
                   (r.scalar("i") for _ in range(8))))
    cfg["alpha"] = r.scalar("f")
    cfg["step"] = r.scalar("Q")
    note_len = r.scalar("I")
    cfg["note"] = r.take(note_len).decode("utf-8", "replace")
    bad = check_config(cfg)
    if bad:
        raise BadInput(f"{what}: invalid or unsupported config: {bad}")
    n_params = r.scalar("Q")
    expected = sum(math.prod(s) for s in param_shapes(cfg).values())
    if n_params != expected:
        raise BadInput(f"{what}: {n_params} parameters, the config needs {expected}")
    params = r.numbers("f", n_params)
    has_opt = r.scalar("I")
    if has_opt not in (0, 1):
        raise BadInput(f"{what}: has_opt = {has_opt}, not 0 or 1")
    m = v = None
    if has_opt:  # AdamW m and v
        m, v = r.numbers("f", n_params), r.numbers("f", n_params)
    if version >= 2:
        r.take(r.scalar("I"))  # the training state: opaque here
    if not r.at_end():
        raise BadInput(f"{what}: {len(r.data) - r.off} trailing bytes after the parameters")
    return (cfg, params, m, v) if with_opt else (cfg, params)


def load_batch(path, V):
    """returns tok, tgt, mask as int64 [B, T] tensors"""
    data = read_bytes(path, "batch")
    what = f"batch '{path}'"
    r = Reader(data, what)
    B, T = r.scalar("i"), r.scalar("i")
    if B < 1 or T < 1:
        raise BadInput(f"{what}: bad shape B = {B}, T = {T}")
    if len(data) != 8 + 3 * 4 * B * T:
        raise BadInput(f"{what}: {len(data)} bytes, B = {B}, T = {T} needs {8 + 12 * B * T}")
    tok, tgt, mask = (r.numbers("i", B * T).long().view(B, T) for _ in range(3))
    if tok.min() < 0 or tok.max() >= V:
        raise BadInput(f"{what}: a token id outside [0, {V})")
    live = mask != 0
    if live.any() and (tgt[live].min() < 0 or tgt[live].max() >= V):
        raise BadInput(f"{what}: a target id of a masked-in position outside [0, {V})")
    return tok, tgt, mask


def load_expect(path, B, T, V, n_params):
    """returns (loss, logits [B, T, V], flat grads [n_params]) as float64"""
    data = read_bytes(path, "expect file")
    want = 8 + 4 * (B * T * V + n_params)
    if len(data) != want:
        raise BadInput(f"expect file '{path}': {len(data)} bytes, expected {want} "
                       f"(f64 loss, {B * T * V} f32 logits, {n_params} f32 grads)")
    r = Reader(data, f"expect file '{path}'")
    loss = r.scalar("d")
    logits = r.numbers("f", B * T * V).double().view(B, T, V)
    grads = r.numbers("f", n_params).double()
    return loss, logits, grads


def unflatten(flat, cfg):
    """the flat parameter array, split into named tensors in enum order (views of flat)"""
    out, off = {}, 0
    for name, shape in param_shapes(cfg).items():
        n = math.prod(shape)
        out[name] = flat[off:off + n].view(shape)
        off += n
    return out


# ---- the model, one function per layer -------------------------------------------------

def embed(tok, emb):
    return emb[tok] * math.sqrt(emb.shape[1])


def rms_norm(x, w):
    """x / sqrt(mean(x^2) + eps) * (1 + w) over the last dim"""
    return x * torch.rsqrt(x.pow(2).mean(dim=-1, keepdim=True) + RMS_EPS) * (1 + w)


def rope(x):
    """rotate-half RoPE on x [B, T, H, D]: dim k pairs with k + D/2, angle t * theta^(-2k/D)"""
    T, D = x.shape[1], x.shape[3]
    half = D // 2
    k = torch.arange(half, dtype=torch.float64)
    inv_freq = ROPE_THETA ** (-2.0 * k / D)
    angle = torch.arange(T, dtype=torch.float64)[:, None] * inv_freq[None, :]  # T, D/2
    cos, sin = angle.cos()[None, :, None, :], angle.sin()[None, :, None, :]
    x1, x2 = x[..., :half], x[..., half:]
    return torch.cat([x1 * cos - x2 * sin, x2 * cos + x1 * sin], dim=-1)


def alibi_slopes(pos, H):
    """bias slope per head: 1/(h+1) on every head (alibi) or the first H//2 (nape), else 0"""
    n_biased = H if POS_NAMES[pos] == "alibi" else H // 2 if POS_NAMES[pos] == "nape" else 0
    return torch.tensor([1.0 / (h + 1) if h < n_biased else 0.0 for h in range(H)],
                        dtype=torch.float64)


class MaskedEntmax(torch.autograd.Function):
    """alpha-entmax over the last dim of s, only on the entries where `valid` is true (the others
    get exactly 0 and no gradient); every row needs at least one valid entry. float64."""

    @staticmethod
    def forward(ctx, s, valid, alpha):
        am1, c = alpha - 1.0, 1.0 / (alpha - 1.0)
        mx = s.masked_fill(~valid, float("-inf")).amax(dim=-1, keepdim=True)
        x = torch.where(valid, am1 * (s - mx), torch.zeros_like(s))  # masked: never used

        def powers(tau):  # [x - tau]_+^c on the valid entries, 0 elsewhere
            t = torch.where(valid, (x - tau).clamp_min(0.0), torch.zeros_like(x))
            return t if c == 1.0 else t.pow(c)

        n = valid.sum(dim=-1, keepdim=True).double()
        lo = torch.full_like(n, -1.0)  # f(lo) >= 0 always: the max key alone gives 1
        hi = -n.pow(1.0 - alpha)  # f(hi) <= 0
        for _ in range(ENTMAX_BISECT_ITERS):
            mid = 0.5 * (lo + hi)
            above = powers(mid).sum(dim=-1, keepdim=True) >= 1.0
            lo, hi = torch.where(above, mid, lo), torch.where(above, hi, mid)
        p = powers(lo)
        p = p / p.sum(dim=-1, keepdim=True)  # sum >= 1 at lo, so never 0
        ctx.alpha = alpha
        ctx.save_for_backward(p)
        return p

    @staticmethod
    def backward(ctx, g):
        (p,) = ctx.saved_tensors
        on = p > 0
        if ctx.alpha == 2.0:
            u = on.double()
        else:  # never form 0^(2 - alpha)
            u = torch.where(on, torch.where(on, p, torch.ones_like(p)).pow(2.0 - ctx.alpha),
                            torch.zeros_like(p))
        r = (u * g).sum(dim=-1, keepdim=True) / u.sum(dim=-1, keepdim=True)
        return u * (g - r), None, None


def softplus(z):
    """ln(1 + e^z), without overflow for large z"""
    return z.clamp_min(0.0) + torch.log1p(torch.exp(-z.abs()))


def length_scale(h, ls, cfg):
    """c [B, H, T], the query length scaling of one layer (1 on the unscaled heads h < h0), with
    l = ln(pos + 2), pos the 0-based token index, and k = h - h0 the scaled head's index:
      ssmax (id 3)         c = beta_k l
      asentmax (id 4)      c = 1 + softplus(a.Wb[:, k] + bb_k) l^(2 tanh(a.Wg[:, k] + bg_k)),
                           a = h [B, T, C], the layer's normed input (as the q/k/v projection's)
      entmax-learn (id 5)  c = 1 + beta_k l^gamma_k"""
    B, T, _ = h.shape
    H, kind, h0 = cfg["H"], NORM_SCALE[cfg["norm"]], scaled_heads(cfg)
    l = torch.log(torch.arange(T, dtype=torch.float64) + 2.0)  # T
    if kind == SCALE_SSMAX:
        c = ls["ls_beta"][None, :, None] * l[None, None, :]  # 1, Hs, T
    elif kind == SCALE_LEARN:
        c = LS_DELTA + ls["ls_beta"][None, :, None] * l[None, None, :].pow(
            ls["ls_gamma"][None, :, None])
    else:  # adapt
        zb = (h @ ls["ls_w_beta"] + ls["ls_b_beta"]).transpose(1, 2)  # B, Hs, T
        zg = (h @ ls["ls_w_gamma"] + ls["ls_b_gamma"]).transpose(1, 2)
        c = LS_DELTA + softplus(zb) * l[None, None, :].pow(LS_RHO * torch.tanh(zg))
    c = c.expand(B, H - h0, T)
    return torch.cat([torch.ones(B, h0, T, dtype=torch.float64), c], dim=1)


def topk_weights(scores, future, param):
    """softmax over the k largest causal scores of each row, the rest 0; k = K, or
    max(K, keys // 2) for a negative parameter (keys = i + 1). A key's rank counts the keys
    above it plus the NEWER keys equal to it (the ties rule: newest first); it is kept when its
    rank is below k. Written as a rank count, not a selection."""
    T = scores.shape[-1]
    K = int(abs(param))
    n = torch.arange(1, T + 1)
    kk = torch.maximum(torch.full((T,), K), n // 2) if param < 0 else torch.full((T,), K)
    s = scores.detach().masked_fill(future, float("-inf"))
    a, b = s[..., :, :, None], s[..., :, None, :]  # [.., i, j, 1] vs [.., i, 1, j']
    jj = torch.arange(T)
    newer = (jj[None, :] > jj[:, None])  # [j, j']: j' newer than j
    rank = ((b > a) | ((b == a) & newer)).sum(-1)  # [.., i, j]
    keep = (rank < kk[:, None]) & ~future
    return torch.softmax(scores.masked_fill(~keep, float("-inf")), dim=-1)


def stick_break_weights(scores, future):
    """A_ij = sigma(z_ij) prod_{j<m<i} (1 - sigma(z_im)) for j < i, else 0: in log space,
    log A_ij = logsigmoid(z_ij) + sum_m [j < m < i] logsigmoid(-z_im)"""
    T = scores.shape[-1]
    i = torch.arange(T)[:, None]
    j = torch.arange(T)[None, :]
    past = (j < i)[None, None]
    ls_neg = torch.nn.functional.logsigmoid(-scores).masked_fill(~past, 0.0)  # m < i only
    later = (i > j).double()  # [m, j]: 1 where m > j
    tail = ls_neg @ later  # [.., i, j] = sum_{m > j, m < i} logsigmoid(-z_im)
    logw = torch.nn.functional.logsigmoid(scores) + tail
    return torch.exp(logw).masked_fill(~past, 0.0)


def adaptive_softmax_weights(scores, future):
    """p0 = softmax(s); H = -sum p0 log(p0 + 1e-9); beta = max(P(H), 1) if H > 0.5 else 1
    (P in ascending powers); softmax(beta s). Gradients flow through beta (autograd)."""
    masked = scores.masked_fill(future, float("-inf"))
    p0 = torch.softmax(masked, dim=-1)
    H = -(p0 * torch.log(p0 + ADAPT_EPS)).sum(-1, keepdim=True)
    P = sum(c * H ** k for k, c in enumerate(ADAPT_POLY))
    beta = torch.where(H > ADAPT_H0, torch.clamp(P, min=1.0), torch.ones_like(H))
    return torch.softmax((scores * beta).masked_fill(future, float("-inf")), dim=-1)


def causal_attention(q, k, v, slopes, norm, alpha, c=None):
    """q, k, v [B, H, T, D]; s_ij = c_ih q_i.k_j / sqrt(D) + slope_h (j - i) for j <= i (c the
    length scaling [B, H, T], 1 if None), normalized over j <= i by softmax or alpha-entmax
    (sparsemax = alpha 2)"""
    T, D = q.shape[2], q.shape[3]
    i = torch.arange(T)[:, None]
    j = torch.arange(T)[None, :]
    scores = q @ k.transpose(-1, -2) / math.sqrt(D)
    if c is not None:
        scores = scores * c[..., None]
    scores = scores + slopes[None, :, None, None] * (j - i).double()[None, None]
    future = (j > i)[None, None]
    if NORM_ROW[norm] == ROW_SOFTMAX:
        weights = torch.softmax(scores.masked_fill(future, float("-inf")), dim=-1)
    elif NORM_ROW[norm] == ROW_TOPK:
        weights = topk_weights(scores, future, alpha)
    elif NORM_ROW[norm] == ROW_STICK:
        weights = stick_break_weights(scores, future)
    elif NORM_ROW[norm] == ROW_ADAPTIVE:
        weights = adaptive_softmax_weights(scores, future)
    else:
        valid = (j <= i)[None, None].expand(scores.shape)
        weights = MaskedEntmax.apply(scores, valid, 2.0 if norm == NORM_SPARSEMAX else alpha)
    return weights @ v


def attention_block(h, wqkv, wo, ls, cfg):
    """h [B, T, C] -> attention output projected back to [B, T, C]; ls: the layer's length
    scaling tensors (name -> tensor without the layer dim)"""
    B, T, _ = h.shape
    H, D = cfg["H"], cfg["D"]
    q, k, v = (t.view(B, T, H, D) for t in (h @ wqkv).split(H * D, dim=-1))
    if POS_NAMES[cfg["pos"]] == "rope":
        q, k = rope(q), rope(k)
    q, k, v = (t.transpose(1, 2) for t in (q, k, v))  # B, H, T, D
    c = length_scale(h, ls, cfg) if NORM_SCALE[cfg["norm"]] != SCALE_NONE else None
    slopes = alibi_slopes(cfg["pos"], H)
    if NORM_ROW[cfg["norm"]] == ROW_STICK:  # stick-breaking takes no ALiBi term (z = q.k / sqrt(D))
        slopes = torch.zeros_like(slopes)
    out = causal_attention(q, k, v, slopes, cfg["norm"], cfg["alpha"], c)
    return out.transpose(1, 2).reshape(B, T, H * D) @ wo


def gelu_tanh(x):
    return 0.5 * x * (1 + torch.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x.pow(3))))


def geglu_ffn(h, w_gate_up, w_down):
    gate, up = (h @ w_gate_up).chunk(2, dim=-1)
    return (gelu_tanh(gate) * up) @ w_down


def forward(p, tok, cfg):
    """logits [B, T, V] of the model with parameters p (dict of named tensors)"""
    x = embed(tok, p["embedding"])
    for l in range(cfg["L"]):
        ls = {name: p[name][l] for name in PARAM_NAMES[11:] if p[name].numel()}
        a = attention_block(rms_norm(x, p["ln_in"][l]), p["wqkv"][l], p["wo"][l], ls, cfg)
        x = x + rms_norm(a, p["ln_post_attn"][l])
        m = geglu_ffn(rms_norm(x, p["ln_pre_ffn"][l]), p["w_gate_up"][l], p["w_down"][l])
        x = x + rms_norm(m, p["ln_post_ffn"][l])
    return rms_norm(x, p["ln_final"]) @ p["lm_head"]


def masked_mean_cross_entropy(logits, tgt, mask):
    """mean over positions with mask != 0 of -log softmax(logits)[tgt]; 0 if none"""
    live = mask != 0
    n_live = int(live.sum())
    if n_live == 0:
        return logits.sum() * 0.0
    safe_tgt = torch.where(live, tgt, torch.zeros_like(tgt))  # unmasked targets may be junk
    nll = logits.logsumexp(dim=-1) - logits.gather(-1, safe_tgt[..., None])[..., 0]
    return (nll * live.double()).sum() / n_live


# ---- comparison ------------------------------------------------------------------------

def rel_err(ref, got, scale):
    """(max |ref - got| / scale, flat index of the worst element); inf if anything is NaN"""
    diff = (ref - got).abs().flatten()
    if not torch.isfinite(diff).all():
        bad = (~torch.isfinite(diff)).nonzero()[0, 0].item()
        return math.inf, bad
    worst = int(diff.argmax()) if diff.numel() else 0
    return (diff[worst].item() if diff.numel() else 0.0) / scale, worst


def describe_index(shape, flat_index, layered):
    idx = []
    for size in reversed(shape):
        idx.append(flat_index % size)
        flat_index //= size
    idx.reverse()
    if layered:
        return f"layer {idx[0]}, index {idx[1:]}"
    return f"index {idx}"


def check_case(ckpt, batch, expect, tol):
    """compares one case; returns (exit status, config line, results, failed results) where
    results are (label, rel err, detail) tuples; raises BadInput"""
    cfg, flat32 = load_checkpoint(ckpt)
    tok, tgt, mask = load_batch(batch, cfg["V"])
    B, T = tok.shape
    c_loss, c_logits, c_grads = load_expect(expect, B, T, cfg["V"], flat32.numel())

    flat = flat32.double().requires_grad_(True)
    params = unflatten(flat, cfg)
    logits = forward(params, tok, cfg)
    loss = masked_mean_cross_entropy(logits, tgt, mask)
    (grad_flat,) = torch.autograd.grad(loss, flat)
    ref_grads = unflatten(grad_flat.detach(), cfg)
    got_grads = unflatten(c_grads, cfg)
    logits, loss = logits.detach(), loss.item()

    # (label, error, detail) for every compared quantity
    results = []
    loss_scale = abs(loss) if loss != 0 else 1.0
    err = abs(loss - c_loss) / loss_scale if math.isfinite(c_loss) else math.inf
    results.append(("loss", err, f"torch {loss:.9g} vs C {c_loss:.9g}"))
    scale = logits.abs().max().item() or 1.0
    err, worst = rel_err(logits, c_logits, scale)
    b, rest = divmod(worst, T * cfg["V"])
    t, v = divmod(rest, cfg["V"])
    results.append(("logits", err, f"worst at b={b} t={t} v={v}: torch "
                    f"{logits.flatten()[worst].item():.6g} vs C "
                    f"{c_logits.flatten()[worst].item():.6g} (max |logit| {scale:.3g})"))
    global_scale = grad_flat.abs().max().item() or 1.0
    for name in PARAM_NAMES:
        ref, got = ref_grads[name], got_grads[name]
        if ref.numel() == 0:  # a length-scaling tensor this normalizer does not have
            continue
        scale = ref.abs().max().item() or global_scale
        err, worst = rel_err(ref, got, scale)
        where = describe_index(tuple(ref.shape), worst, name in PER_LAYER)
        results.append((f"grad[{name}]", err,
                        f"worst at {where}: torch {ref.flatten()[worst].item():.6g} vs C "
                        f"{got.flatten()[worst].item():.6g} (max |grad| {scale:.3g})"))

    norm = NORM_NAMES[cfg["norm"]]
    if NORM_FIXED_ALPHA[cfg["norm"]] is None:
        norm += f"(alpha={cfg['alpha']:.9g})"
    elif NORM_FIXED_ALPHA[cfg["norm"]] == "k":
        norm += f"(k={int(abs(cfg['alpha']))}{',div-2' if cfg['alpha'] < 0 else ''})"
    config = (f"norm={norm} pos={POS_NAMES[cfg['pos']]} V={cfg['V']} L={cfg['L']} C={cfg['C']} "
              f"H={cfg['H']} D={cfg['D']} F={cfg['F']} B={B} T={T} "
              f"masked={int((mask != 0).sum())}")
    failed = [(label, err, detail) for label, err, detail in results if not err <= tol]
    return (EXIT_MISMATCH if failed else EXIT_OK), config, results, failed


def run_case(label, ckpt, batch, expect, tol, verbose):
    """checks one case and prints its lines (prefixed with '[label] ' when label is set);
    returns its exit status"""
    pre = f"[{label}] " if label else ""
    try:
        status, config, results, failed = check_case(ckpt, batch, expect, tol)
    except BadInput as e:
        print(f"{pre}ERROR: {e}")
        return EXIT_BAD_INPUT
    if verbose:
        print(f"{pre}{config}")
        for name, err, detail in results:
            print(f"{pre}  {name:20s} rel err {err:.3e}  {detail}")
    for name, err, detail in failed:
        print(f"{pre}MISMATCH {name}: rel err {err:.3e} > tol {tol:g}; {detail}")
    if status == EXIT_OK:
        grad_results = [r for r in results if r[0].startswith("grad[")]
        worst_grad = max(grad_results, key=lambda r: r[1])
        print(f"{pre}OK: torch float64 reference matches ({config}): loss rel err "
              f"{results[0][1]:.2e}, logits rel err {results[1][1]:.2e}, grads max rel err "
              f"{worst_grad[1]:.2e} ({worst_grad[0][5:-1]}), tol {tol:g}")
    return status


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--ckpt", help="checkpoint written by checkpoint_save")
    ap.add_argument("--batch", help="batch.bin: B, T, tok, tgt, mask (int32)")
    ap.add_argument("--expect", help="expect.bin: f64 loss, f32 logits, f32 grads")
    ap.add_argument("--cases", nargs="+", metavar="DIR",
                    help="check several cases in one run: each DIR holds model.ckpt, batch.bin "
                         "and expect.bin (instead of --ckpt/--batch/--expect)")
    ap.add_argument("--tol", type=float, default=1e-4, help="relative tolerance (default 1e-4)")
    ap.add_argument("--verbose", action="store_true", help="print the error of every tensor")
    args = ap.parse_args()
    single = [args.ckpt, args.batch, args.expect]
    if args.cases and any(x is not None for x in single):
        ap.error("--cases cannot be combined with --ckpt/--batch/--expect")  # exit 2
    if not args.cases and any(x is None for x in single):
        ap.error("give --ckpt, --batch and --expect, or --cases DIR...")  # exit 2
    torch.set_num_threads(1)  # tiny tensors; keeps the run quiet and repeatable

    if not args.cases:
        return run_case("", args.ckpt, args.batch, args.expect, args.tol, args.verbose)
    statuses = [run_case(d, os.path.join(d, "model.ckpt"), os.path.join(d, "batch.bin"),
                         os.path.join(d, "expect.bin"), args.tol, args.verbose)
                for d in args.cases]
    bad = [d for d, st in zip(args.cases, statuses) if st == EXIT_BAD_INPUT]
    mism = [d for d, st in zip(args.cases, statuses) if st == EXIT_MISMATCH]
    n_ok = statuses.count(EXIT_OK)
    print(f"{n_ok} of {len(statuses)} cases match"
          + (f"; mismatch: {' '.join(mism)}" if mism else "")
          + (f"; bad input: {' '.join(bad)}" if bad else ""))
    return EXIT_BAD_INPUT if bad else EXIT_MISMATCH if mism else EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
