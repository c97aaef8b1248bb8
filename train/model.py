"""A Llama transformer computed the way lmc's engine (src/nn) computes it.

- RMSNorm: x * 1/sqrt(mean(x^2) + eps) * weight.
- RoPE on adjacent pairs (x[2i], x[2i+1]) of each head, angle pos * base^(-2i/head_dim),
  as llama2.c and llama.cpp's LLAMA_ROPE_TYPE_NORM do (not the neox halves).
- Grouped-query attention: query head h reads key/value head h // (n_heads / n_kv_heads).
- SwiGLU feed-forward: w_down(silu(w_gate x) * w_up x).
- Output head untied from the token embedding.

With quant=True every matrix product sees what the engine computes (numerics
v1, docs/FORMAT.md): the weight rows rounded to int8 with scale max|row|/127,
and each token's input vector rounded to int16 with scale max|x|/32512
(straight-through gradients).
"""
import math
from dataclasses import asdict, dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F


@dataclass
class Config:
    vocab: int = 256
    dim: int = 128
    n_layers: int = 6
    n_heads: int = 4
    n_kv_heads: int = 2
    hidden_dim: int = 320
    context: int = 512
    rope_base: float = 10000.0
    norm_eps: float = 1e-5

    @property
    def head_dim(self):
        return self.dim // self.n_heads

    def to_dict(self):
        return asdict(self)


def round_half_away(x):
    return torch.sign(x) * torch.floor(torch.abs(x) + 0.5)


WEIGHT_LEVELS = 127.0      # int8 weights
ACTIVATION_LEVELS = 32512.0  # int16 activations held as two int8 planes (127 * 256)


def fake_quant_rows(x, levels=WEIGHT_LEVELS):
    """Integers in [-levels, levels] with one scale per row (last dimension):
    scale = max|row|/levels."""
    scale = x.detach().abs().amax(dim=-1, keepdim=True) / levels
    safe = torch.where(scale > 0, scale, torch.ones_like(scale))
    q = torch.clamp(round_half_away(x / safe), -levels, levels) * safe
    return x + (q - x).detach()


class QLinear(nn.Linear):
    """Linear layer without bias that can run in fake-int8 (weights and inputs)."""

    quant = False

    def forward(self, x):
        if not self.quant:
            return F.linear(x, self.weight)
        return F.linear(fake_quant_rows(x, ACTIVATION_LEVELS), fake_quant_rows(self.weight))


class RMSNorm(nn.Module):
    def __init__(self, dim, eps):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x):
        xf = x.float()
        xf = xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + self.eps)
        return (xf * self.weight.float()).type_as(x)


def rope_tables(cfg, positions):
    """cos and sin [positions, head_dim/2] for the adjacent-pair rotation."""
    i = torch.arange(0, cfg.head_dim, 2, dtype=torch.float64)
    inv_freq = 1.0 / (cfg.rope_base ** (i / cfg.head_dim))
    angles = torch.arange(positions, dtype=torch.float64)[:, None] * inv_freq[None, :]
    return torch.cos(angles).float(), torch.sin(angles).float()


def apply_rope(x, cos, sin):
    """x [B, H, T, D]: rotates each pair (x[2i], x[2i+1]) by the position's angle."""
    xf = x.float()
    x0, x1 = xf[..., 0::2], xf[..., 1::2]
    c, s = cos[: x.shape[2]], sin[: x.shape[2]]
    out = torch.stack((x0 * c - x1 * s, x0 * s + x1 * c), dim=-1)
    return out.flatten(-2).type_as(x)


def causal_attention(q, k, v):
    if hasattr(F, "scaled_dot_product_attention"):
        return F.scaled_dot_product_attention(q, k, v, is_causal=True)
    t = q.shape[2]
    att = (q @ k.transpose(-2, -1)) / math.sqrt(q.shape[-1])
    mask = torch.ones(t, t, dtype=torch.bool, device=q.device).tril()
    att = att.masked_fill(~mask, float("-inf")).softmax(-1)
    return att @ v


class Block(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        hd = cfg.head_dim
        self.attn_norm = RMSNorm(cfg.dim, cfg.norm_eps)
        self.wq = QLinear(cfg.dim, cfg.n_heads * hd, bias=False)
        self.wk = QLinear(cfg.dim, cfg.n_kv_heads * hd, bias=False)
        self.wv = QLinear(cfg.dim, cfg.n_kv_heads * hd, bias=False)
        self.wo = QLinear(cfg.n_heads * hd, cfg.dim, bias=False)
        self.ffn_norm = RMSNorm(cfg.dim, cfg.norm_eps)
        self.w_gate = QLinear(cfg.dim, cfg.hidden_dim, bias=False)
        self.w_up = QLinear(cfg.dim, cfg.hidden_dim, bias=False)
        self.w_down = QLinear(cfg.hidden_dim, cfg.dim, bias=False)

    def forward(self, x, cos, sin):
        cfg = self.cfg
        b, t, _ = x.shape
        h = self.attn_norm(x)
        q = self.wq(h).view(b, t, cfg.n_heads, cfg.head_dim).transpose(1, 2)
        k = self.wk(h).view(b, t, cfg.n_kv_heads, cfg.head_dim).transpose(1, 2)
        v = self.wv(h).view(b, t, cfg.n_kv_heads, cfg.head_dim).transpose(1, 2)
        q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        group = cfg.n_heads // cfg.n_kv_heads
        k = k.repeat_interleave(group, dim=1)
        v = v.repeat_interleave(group, dim=1)
        a = causal_attention(q, k, v).transpose(1, 2).reshape(b, t, cfg.n_heads * cfg.head_dim)
        x = x + self.wo(a)
        h = self.ffn_norm(x)
        return x + self.w_down(F.silu(self.w_gate(h)) * self.w_up(h))


class ByteLlama(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        self.tok_embd = nn.Embedding(cfg.vocab, cfg.dim)
        self.layers = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layers))
        self.out_norm = RMSNorm(cfg.dim, cfg.norm_eps)
        self.output = QLinear(cfg.dim, cfg.vocab, bias=False)
        self.embed_quant = False  # the GGUF stores token_embd as int8 rows too
        cos, sin = rope_tables(cfg, cfg.context)
        self.register_buffer("rope_cos", cos, persistent=False)
        self.register_buffer("rope_sin", sin, persistent=False)
        self._init_weights()

    def _init_weights(self):
        std = 0.02
        for name, p in self.named_parameters():
            if p.dim() == 2:
                # Residual projections scaled down with depth (GPT-2 style).
                s = std / math.sqrt(2 * self.cfg.n_layers) if name.endswith(("wo.weight", "w_down.weight")) else std
                nn.init.normal_(p, mean=0.0, std=s)

    def set_quant(self, on):
        for m in self.modules():
            if isinstance(m, QLinear):
                m.quant = on

    def forward(self, tokens):
        x = self.tok_embd(tokens)
        if self.embed_quant and self.output.quant:
            x = x + (fake_quant_rows(self.tok_embd.weight)[tokens] - x).detach()
        for layer in self.layers:
            x = layer(x, self.rope_cos, self.rope_sin)
        return self.output(self.out_norm(x)).float()

    def n_params(self):
        return sum(p.numel() for p in self.parameters())

    def export_tensors(self):
        """Float32 numpy weights under llama.cpp's GGUF tensor names."""
        sd = {k: v.detach().float().cpu().numpy() for k, v in self.state_dict().items()}
        out = {"token_embd.weight": sd["tok_embd.weight"]}
        names = dict(attn_norm="attn_norm.weight", wq="attn_q.weight", wk="attn_k.weight",
                     wv="attn_v.weight", wo="attn_output.weight", ffn_norm="ffn_norm.weight",
                     w_gate="ffn_gate.weight", w_up="ffn_up.weight", w_down="ffn_down.weight")
        for i in range(self.cfg.n_layers):
            for ours, theirs in names.items():
                out["blk.%d.%s" % (i, theirs)] = sd["layers.%d.%s.weight" % (i, ours)]
        out["output_norm.weight"] = sd["out_norm.weight"]
        out["output.weight"] = sd["output.weight"]
        return out
