"""Small ViT building blocks (pre-norm transformer) for video clips."""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F


class TubeletEmbed(nn.Module):
    """Cut a clip into ``tt x p x p`` tubelets and project each to a D-dim token.

    ``(B, 3, T, H, W) -> (B, T/tt * H/p * W/p, D)``; token order is (t, y, x) row-major.
    """

    def __init__(self, dim: int, patch: int = 8, tubelet: int = 2, in_chans: int = 3) -> None:
        super().__init__()
        self.patch, self.tubelet = patch, tubelet
        self.proj = nn.Conv3d(in_chans, dim, kernel_size=(tubelet, patch, patch), stride=(tubelet, patch, patch))

    def grid(self, t: int, h: int, w: int) -> tuple[int, int, int]:
        return t // self.tubelet, h // self.patch, w // self.patch

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.proj(x)  # (B, D, t, h, w)
        return x.flatten(2).transpose(1, 2)  # (B, L, D)


class Attention(nn.Module):
    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        assert dim % heads == 0, (dim, heads)
        self.heads = heads
        self.qkv = nn.Linear(dim, dim * 3)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        qkv = self.qkv(x).reshape(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]  # (B, heads, N, d_head)
        x = F.scaled_dot_product_attention(q, k, v)
        return self.proj(x.transpose(1, 2).reshape(b, n, d))


class Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.gelu(self.fc1(x)))


class Block(nn.Module):
    """Pre-norm transformer block: ``x + Attn(LN(x))``, ``x + MLP(LN(x))``; ``(B, N, D) -> (B, N, D)``."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float = 4.0) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = Attention(dim, heads)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


def sincos_1d(dim: int, pos: torch.Tensor) -> torch.Tensor:
    """``(L,)`` positions -> ``(L, dim)`` sin/cos features (dim even)."""
    half = dim // 2
    freq = torch.exp(-math.log(10000.0) * torch.arange(half, dtype=torch.float32, device=pos.device) / max(half, 1))
    ang = pos.float()[:, None] * freq[None]
    return torch.cat([torch.sin(ang), torch.cos(ang)], dim=1)


def sincos_3d(dim: int, t: int, h: int, w: int, device=None) -> torch.Tensor:
    """Fixed 3-D sin-cos position embedding for a ``t x h x w`` token grid: ``(t*h*w, dim)``.

    Channels are split between time (1/4), y (3/8) and x (3/8), each rounded to an even count.
    """
    dt = (dim // 4) // 2 * 2
    dy = ((dim - dt) // 2) // 2 * 2
    dx = dim - dt - dy
    gt, gy, gx = torch.meshgrid(
        torch.arange(t, device=device), torch.arange(h, device=device), torch.arange(w, device=device), indexing="ij"
    )
    return torch.cat(
        [sincos_1d(dt, gt.reshape(-1)), sincos_1d(dy, gy.reshape(-1)), sincos_1d(dx, gx.reshape(-1))], dim=1
    )


def sincos_2d(dim: int, y: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """2-D sin-cos embedding of (possibly fractional) grid positions ``(L,)``: ``(L, dim)``."""
    dy = (dim // 2) // 2 * 2
    return torch.cat([sincos_1d(dy, y), sincos_1d(dim - dy, x)], dim=1)


def init_weights(module: nn.Module) -> None:
    """timm-style init: truncated-normal linear weights, zero biases, unit LayerNorm."""
    for m in module.modules():
        if isinstance(m, nn.Linear):
            nn.init.trunc_normal_(m.weight, std=0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.LayerNorm):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Conv3d):
            w = m.weight.data
            nn.init.xavier_uniform_(w.view(w.shape[0], -1))
            if m.bias is not None:
                nn.init.zeros_(m.bias)
