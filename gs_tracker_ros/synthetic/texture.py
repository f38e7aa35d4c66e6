"""Procedural textures and anti-aliased shape masks for synthetic layers.

Textures are ``(h, w, 3) float32`` RGB in grey levels 0..255, masks ``(h, w) float32`` in 0..1.
Pixel ``(i, j)`` of either has texture coordinates ``(u, v) = (j, i)`` (pixel centres).
"""

from __future__ import annotations

import cv2
import numpy as np

_SUPERSAMPLE = 4  # mask supersampling factor (anti-aliasing)


def _octave_noise(h: int, w: int, rng: np.random.Generator, cell_px: float) -> np.ndarray:
    """One octave of smooth noise: N(0,1) values on a grid of ``cell_px`` spacing, upsampled cubically."""
    gh = int(np.ceil(h / cell_px)) + 3
    gw = int(np.ceil(w / cell_px)) + 3
    grid = rng.standard_normal((gh, gw, 3)).astype(np.float32)
    big = cv2.resize(grid, (int(round(gw * cell_px)), int(round(gh * cell_px))), interpolation=cv2.INTER_CUBIC)
    oy = int(rng.integers(0, max(1, big.shape[0] - h + 1)))
    ox = int(rng.integers(0, max(1, big.shape[1] - w + 1)))
    return big[oy : oy + h, ox : ox + w]


def multiscale_noise(h: int, w: int, rng: np.random.Generator, scales: tuple[float, ...] = (64, 24, 9, 3.5)) -> np.ndarray:
    """Sum of smooth noise octaves (coarse to fine), per channel independent, unit std per channel."""
    acc = np.zeros((h, w, 3), np.float32)
    for cell in scales:
        acc += float(cell) ** 0.35 * _octave_noise(h, w, rng, cell)
    mean, std = cv2.meanStdDev(acc)
    acc -= mean.reshape(1, 1, 3).astype(np.float32)
    acc /= std.reshape(1, 1, 3).astype(np.float32) + 1e-6
    return acc


def _random_colour(rng: np.random.Generator, saturation: float = 0.8) -> np.ndarray:
    """A random RGB colour (float32, 0..255) of the given HSV saturation."""
    hsv = np.array([[[rng.uniform(0, 180), 255 * saturation, rng.uniform(120, 255)]]], np.uint8)
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)[0, 0].astype(np.float32)


def make_texture(h: int, w: int, rng: np.random.Generator, kind: str = "mixed", saturation: float = 0.7) -> np.ndarray:
    """A colourful, non-repetitive texture ``(h, w, 3) float32`` in 0..255.

    ``kind``: "mixed" = multi-scale noise around a random base colour plus random blobs and lines;
    "noise" = the noise only; "lowtex" = the noise at low contrast (std ~6 levels).
    The result is lightly smoothed (sigma 0.7 px) so bilinear resampling stays accurate.
    """
    base = _random_colour(rng, saturation)
    contrast = 6.0 if kind == "lowtex" else 42.0
    tex = base[None, None, :] * 0.75 + 32.0 + contrast * multiscale_noise(h, w, rng)
    if kind == "mixed":
        area = h * w
        layer = tex.copy()
        n_blobs = int(np.clip(area / 2200, 4, 250))
        for _ in range(n_blobs):
            c = (float(rng.uniform(0, w)), float(rng.uniform(0, h)))
            r = float(np.exp(rng.uniform(np.log(2.0), np.log(22.0))))  # log-uniform radius, px
            axes = (r, r * float(rng.uniform(0.35, 1.0)))
            colour = tuple(float(x) for x in _random_colour(rng, float(rng.uniform(0.2, 1.0))))
            thick = -1 if rng.random() < 0.7 else int(rng.integers(1, 4))  # filled or a ring
            cv2.ellipse(layer, (c, (2 * axes[0], 2 * axes[1]), float(rng.uniform(0, 180))), colour, thick, cv2.LINE_AA)
        tex = 0.25 * tex + 0.75 * layer
    tex = cv2.GaussianBlur(tex, (0, 0), 0.7)
    return np.clip(tex, 0.0, 255.0).astype(np.float32)


# ------------------------------------------------------------------------------------------- shapes
def ellipse_outline(rx: float, ry: float, n: int = 96) -> np.ndarray:
    """Vertices ``(n, 2)`` of an axis-aligned ellipse centred at the origin (px)."""
    a = np.linspace(0, 2 * np.pi, n, endpoint=False)
    return np.stack([rx * np.cos(a), ry * np.sin(a)], axis=1)


def polygon_outline(r: float, rng: np.random.Generator, n_min: int = 5, n_max: int = 8) -> np.ndarray:
    """A random star-shaped (possibly concave) polygon of mean radius ``r`` around the origin."""
    n = int(rng.integers(n_min, n_max + 1))
    a = np.linspace(0, 2 * np.pi, n, endpoint=False) + rng.uniform(-0.25, 0.25, n) * (2 * np.pi / n)
    rad = r * rng.uniform(0.65, 1.0, n)
    return np.stack([rad * np.cos(a), rad * np.sin(a)], axis=1)


def rounded_rect_outline(hw: float, hh: float, corner: float, n_arc: int = 12) -> np.ndarray:
    """Vertices of a rectangle with half-sizes ``hw, hh`` and corner radius ``corner``, centred at the origin."""
    corner = min(corner, hw, hh)
    pts = []
    for cx, cy, a0 in ((hw - corner, hh - corner, 0.0), (-hw + corner, hh - corner, 0.5 * np.pi),
                       (-hw + corner, -hh + corner, np.pi), (hw - corner, -hh + corner, 1.5 * np.pi)):
        a = a0 + np.linspace(0, 0.5 * np.pi, n_arc)
        pts.append(np.stack([cx + corner * np.cos(a), cy + corner * np.sin(a)], axis=1))
    return np.concatenate(pts, axis=0)


def polygon_mask(h: int, w: int, vertices_uv: np.ndarray) -> np.ndarray:
    """Anti-aliased coverage mask ``(h, w) float32`` of a polygon given in texture coordinates (px)."""
    s = _SUPERSAMPLE
    big = np.zeros((h * s, w * s), np.uint8)
    # texture coordinate u -> supersampled pixel centre index s*u + (s-1)/2
    pts = (vertices_uv * s + (s - 1) / 2.0) * 16.0
    cv2.fillPoly(big, [np.round(pts).astype(np.int32)], 255, cv2.LINE_8, shift=4)
    return cv2.resize(big, (w, h), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0
