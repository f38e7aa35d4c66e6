"""Tube masking (VideoMAE) and motion-aware tube masking (TrackMAE).

Masks are over the *spatial* patch grid and shared by every temporal slot (a "tube"), so a
masked patch stays hidden in all frames. They are returned as index tensors of the visible
tokens into the ``(t, y, x)``-ordered token sequence.
"""

from __future__ import annotations

import torch


def num_visible(num_spatial: int, ratio: float) -> int:
    """Visible spatial patches for a mask ratio (at least 1)."""
    return max(1, int(round(num_spatial * (1.0 - float(ratio)))))


def random_tube_mask(batch: int, num_spatial: int, ratio: float, generator: torch.Generator | None = None,
                     device=None) -> torch.Tensor:
    """``(B, V)`` sorted visible spatial indices, V = round(S * (1 - ratio)), uniformly at random."""
    v = num_visible(num_spatial, ratio)
    noise = torch.rand(batch, num_spatial, generator=generator, device=device)
    return torch.sort(torch.argsort(noise, dim=1)[:, :v], dim=1).values


def motion_aware_tube_mask(motion: torch.Tensor, ratio: float, motion_fraction: float = 0.5,
                           generator: torch.Generator | None = None) -> torch.Tensor:
    """TrackMAE-style masking: half the visible patches from high-motion, half from low-motion.

    Args:
        motion: ``(B, S)`` per spatial patch motion magnitude (e.g. mean track displacement).
        ratio: mask ratio; V = round(S * (1 - ratio)) patches stay visible.
        motion_fraction: share of the visible patches drawn from the high-motion bin (0.5 = equal).
    Returns:
        ``(B, V)`` sorted visible spatial indices. Patches are split at the per-clip median into a
        high- and a low-motion bin; each bin is sampled uniformly without replacement.
    """
    b, s = motion.shape
    v = num_visible(s, ratio)
    n_high = int(round(v * motion_fraction))
    n_high = min(n_high, s // 2 + s % 2)
    n_low = v - n_high
    rank = torch.argsort(torch.argsort(motion, dim=1, descending=True), dim=1)  # 0 = most motion
    high = rank < (s + 1) // 2
    noise = torch.rand(b, s, generator=generator, device=motion.device)
    # sort key: high bin first by noise, then low bin by noise, for the two separate draws
    key_high = torch.where(high, noise, noise + 2.0)
    key_low = torch.where(~high, noise, noise + 2.0)
    pick_high = torch.argsort(key_high, dim=1)[:, :n_high]
    pick_low = torch.argsort(key_low, dim=1)[:, :n_low]
    return torch.sort(torch.cat([pick_high, pick_low], dim=1), dim=1).values


def tube_to_token_index(visible_spatial: torch.Tensor, num_temporal: int, num_spatial: int) -> torch.Tensor:
    """``(B, V)`` spatial indices -> ``(B, V * t)`` token indices in (t, y, x) order."""
    offs = torch.arange(num_temporal, device=visible_spatial.device) * num_spatial
    return (offs[None, :, None] + visible_spatial[:, None, :]).reshape(visible_spatial.shape[0], -1)
