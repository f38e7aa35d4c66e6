"""Smooth per-frame layer poses and the affine transforms they define.

A layer pose at frame t is ``(cx, cy, theta, scale)``: the layer's anchor point (in texture px)
lands at image position ``(cx, cy)`` px, the texture is rotated by ``theta`` radians
(positive = clockwise on screen, since y points down) and scaled by ``scale``. The texture->image map is

    x = c + scale * R(theta) @ (u - anchor),    R(theta) = [[cos, -sin], [sin, cos]].
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class PosePath:
    """Per-frame poses of one layer. Each array is ``(T,) float64``; theta in radians."""

    cx: np.ndarray
    cy: np.ndarray
    theta: np.ndarray
    scale: np.ndarray

    def to_affines(self, anchor_uv: tuple[float, float]) -> np.ndarray:
        """Texture px -> image px affine matrices ``(T, 2, 3) float64``."""
        c, s = np.cos(self.theta), np.sin(self.theta)
        a = np.empty((len(self.cx), 2, 3), np.float64)
        a[:, 0, 0] = self.scale * c
        a[:, 0, 1] = -self.scale * s
        a[:, 1, 0] = self.scale * s
        a[:, 1, 1] = self.scale * c
        au, av = anchor_uv
        a[:, 0, 2] = self.cx - a[:, 0, 0] * au - a[:, 0, 1] * av
        a[:, 1, 2] = self.cy - a[:, 1, 0] * au - a[:, 1, 1] * av
        return a


def invert_affines(a: np.ndarray) -> np.ndarray:
    """Inverse of ``(..., 2, 3)`` affine matrices (image px -> texture px)."""
    m = a[..., :2]
    t = a[..., 2:]
    mi = np.linalg.inv(m)
    return np.concatenate([mi, -mi @ t], axis=-1)


def apply_affines(a: np.ndarray, xy: np.ndarray) -> np.ndarray:
    """Apply ``(..., 2, 3)`` affines to points ``(..., 2)`` (broadcasting over leading dims)."""
    return np.einsum("...ij,...j->...i", a[..., :2], xy) + a[..., 2]


def smooth_wiggle(num_frames: int, rng: np.random.Generator, peak_speed: float, n_terms: int = 3,
                  cycles: tuple[float, float] = (0.25, 1.2)) -> np.ndarray:
    """A smooth zero-start random signal ``(T,)`` whose speed (units/frame) stays below ``peak_speed``.

    Sum of ``n_terms`` sinusoids with random frequencies of ``cycles`` periods per 120 frames
    (so the look does not depend on the clip length) and random phases; offset so that
    value(0) = 0. Each term gets a random share of the speed budget.
    """
    t = np.arange(num_frames, dtype=np.float64)
    shares = rng.dirichlet(np.ones(n_terms))
    out = np.zeros(num_frames)
    for share in shares:
        f = rng.uniform(*cycles) / 120.0  # cycles per frame
        amp = share * peak_speed / (2 * np.pi * f)
        phase = rng.uniform(0, 2 * np.pi)
        out += amp * np.sin(2 * np.pi * f * t + phase)
    return out - out[0]

