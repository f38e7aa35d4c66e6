"""Classical multi-scale patch descriptors, batched over points (pure numpy + OpenCV).

A point's descriptor is a stack of ``S`` patches, one per pyramid level in
``DescriptorConfig.levels``: ``k x k`` taps spaced one level-l pixel apart (so the patch covers
``k * 2^l`` px of the input frame), made zero-mean per channel and scaled to unit norm. The cosine
similarity between a query descriptor and a candidate descriptor is the mean over the query's
*informative* levels (patch standard deviation >= ``min_contrast``) of the per-level normalised
cross-correlation (NCC). Uninformative levels (flat sky, blurred fur) are left out instead of
contributing noise; a query without any informative level has no similarity at all (NaN).

Everything here works on whole batches: :func:`describe` samples all points' patches with one
``cv2.remap`` per level, :func:`similarity_maps` evaluates the NCC maps of all points in their
windows with one ``einsum`` over a sliding-window view per level (local patch norms from integral
images). Per-frame pyramids (8-bit, grey or L*a*b*) live in the
:class:`~gs_tracker_ros.core.clip_buffer.ClipBuffer` cache: computed once per frame, shared by the
filter and the observer, dropped with the frame.

Coordinates: pixel (x, y), origin at the centre of the top-left pixel; the same point on level l
is ``(x + 0.5) / 2^l - 0.5``.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from ..core.clip_buffer import ClipBuffer

_NOISE = 0.5  # grey levels: regularises the NCC denominator of (nearly) flat candidate patches
_REMAP_CHUNK = 4096  # points per cv2.remap call (keeps map rows < SHRT_MAX)


# ---------------------------------------------------------------------------------------- pyramid
def _feature_image(rgb: np.ndarray, channels: str) -> np.ndarray:
    """``(H, W, C) uint8`` feature image: grey, or CIE L*a*b* (8-bit OpenCV scaling: L* 0..255)."""
    if channels == "gray":
        return cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)[:, :, None]
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2Lab)


def build_pyramid(rgb: np.ndarray, channels: str = "gray", top_level: int = 2) -> list[np.ndarray]:
    """Gaussian pyramid ``[level 0, ..., top_level]`` of ``(H_l, W_l, C) uint8`` images.

    Kept in 8 bits (no full-frame float copies); samples are converted to float32 when read.
    """
    return _pyramid_above(_feature_image(rgb, channels), top_level)


def _pyramid_above(level0: np.ndarray, top_level: int) -> list[np.ndarray]:
    """``[level0, pyrDown(level0), ...]`` up to ``top_level``, each ``(H_l, W_l, C) uint8``."""
    levels = [level0]
    for _ in range(int(top_level)):
        down = cv2.pyrDown(levels[-1])
        levels.append(down[:, :, None] if down.ndim == 2 else down)
    return levels


def frame_pyramid(buffer: ClipBuffer, index: int, channels: str, top_level: int) -> list[np.ndarray]:
    """The descriptor pyramid of a buffered frame, from the buffer's per-frame cache. A grey
    pyramid starts from the buffer's grey image, the one the LK chains use (converted once)."""
    key = f"reloc_pyr:{channels}:{int(top_level)}"
    if channels == "gray":
        return buffer.cached(index, key, lambda _rgb: _pyramid_above(buffer.gray(index)[:, :, None], top_level))
    return buffer.cached(index, key, lambda rgb: build_pyramid(rgb, channels, top_level))


def to_level(xy: np.ndarray, level: int) -> np.ndarray:
    """Level-0 pixel coordinates -> level-``level`` pixel coordinates."""
    return (np.asarray(xy, np.float64) + 0.5) / float(2**level) - 0.5


def from_level(xy: np.ndarray, level: int) -> np.ndarray:
    """Level-``level`` pixel coordinates -> level-0 pixel coordinates."""
    return (np.asarray(xy, np.float64) + 0.5) * float(2**level) - 0.5


# ---------------------------------------------------------------------------------------- descriptors
def sample_patches(img: np.ndarray, xy: np.ndarray, k: int) -> np.ndarray:
    """Bilinear ``k x k`` patches ``(P, k, k, C) float32`` of ``img (H, W, C)`` centred at ``xy (P, 2)``.

    ``img`` may be uint8 (then samples are rounded to whole grey levels) or float32.

    Taps are one pixel apart; pixels outside the image replicate the border.
    """
    p = xy.shape[0]
    c = img.shape[2]
    out = np.empty((p, k, k, c), np.float32)
    if p == 0:
        return out
    offs = np.arange(k, dtype=np.float32) - (k // 2)
    src = img if c > 1 else img[:, :, 0]
    for s in range(0, p, _REMAP_CHUNK):
        chunk = xy[s:s + _REMAP_CHUNK].astype(np.float32)
        m = chunk.shape[0]
        map_x = np.broadcast_to(chunk[:, 0, None, None] + offs[None, None, :], (m, k, k)).reshape(m * k, k)
        map_y = np.broadcast_to(chunk[:, 1, None, None] + offs[None, :, None], (m, k, k)).reshape(m * k, k)
        res = cv2.remap(src, np.ascontiguousarray(map_x), np.ascontiguousarray(map_y), cv2.INTER_LINEAR,
                        borderMode=cv2.BORDER_REPLICATE)
        out[s:s + m] = res.reshape(m, k, k, c)  # uint8 images: interpolated to the nearest grey level
    return out


def normalize_patches(patches: np.ndarray, noise: float = _NOISE) -> tuple[np.ndarray, np.ndarray]:
    """Zero-mean per channel, unit norm: ``(P, k, k, C)`` -> ``(P, k*k*C)`` and the patch std ``(P,)``.

    The norm is regularised by ``noise`` grey levels per tap, so a flat patch maps to ~0.
    """
    p = patches.shape[0]
    flat = np.asarray(patches, np.float32).reshape(p, -1, patches.shape[-1])  # (P, k*k, C)
    n = flat.shape[1] * flat.shape[2]
    # per-channel tap means as a (1, k*k) @ (P, k*k, C) product: numpy's reduction over the
    # middle axis is an order of magnitude slower for these shapes
    mean = np.matmul(np.full((1, flat.shape[1]), 1.0 / flat.shape[1], np.float32), flat)  # (P, 1, C)
    centred = (flat - mean).reshape(p, -1)
    ss = np.einsum("pn,pn->p", centred, centred)
    std = np.sqrt(ss / n)
    centred *= (1.0 / np.sqrt(ss + n * noise * noise))[:, None]
    return centred, std


@dataclass
class Descriptors:
    """Descriptors of P points.

    Attributes:
        blocks: ``(P, S, n) float32`` one unit-norm (or ~0 when flat) block per level.
        contrast: ``(P, S) float32`` patch standard deviation per level, grey levels.
        levels: the pyramid level of each of the S blocks.
    """

    blocks: np.ndarray
    contrast: np.ndarray
    levels: tuple[int, ...]

    def __len__(self) -> int:
        return int(self.blocks.shape[0])

    def rows(self, index) -> "Descriptors":
        return Descriptors(self.blocks[index], self.contrast[index], self.levels)

    def subset(self, levels: tuple[int, ...]) -> "Descriptors":
        idx = [self.levels.index(lv) for lv in levels]
        return Descriptors(self.blocks[:, idx], self.contrast[:, idx], tuple(levels))


def describe(pyramid: list[np.ndarray], xy: np.ndarray, levels: tuple[int, ...], patch_size: int) -> Descriptors:
    """Descriptors of points ``xy (P, 2)`` (level-0 px) on a frame's pyramid, one block per level."""
    xy = np.asarray(xy, np.float64).reshape(-1, 2)
    blocks, contrast = [], []
    for lvl in levels:
        b, s = normalize_patches(sample_patches(pyramid[lvl], to_level(xy, lvl), patch_size))
        blocks.append(b)
        contrast.append(s)
    return Descriptors(np.stack(blocks, axis=1).astype(np.float32), np.stack(contrast, axis=1).astype(np.float32),
                       tuple(levels))


def level_weights(contrast: np.ndarray, min_contrast: float) -> np.ndarray:
    """``(P, S)`` weights of a query's levels: 1 / #informative on informative levels, else 0."""
    informative = contrast >= min_contrast
    count = informative.sum(axis=1, keepdims=True)
    return np.where(informative, 1.0 / np.maximum(count, 1), 0.0).astype(np.float32)


def cosine_similarity(query: Descriptors, weights: np.ndarray, candidate: Descriptors) -> np.ndarray:
    """Row-wise similarity ``(P,)`` of query i to candidate i: weighted mean of per-level NCC.

    ``weights`` from :func:`level_weights`; rows whose weights are all zero give NaN.
    """
    per_level = np.einsum("psn,psn->ps", query.blocks, candidate.blocks)
    out = np.einsum("ps,ps->p", weights, per_level).astype(np.float64)
    out[weights.sum(axis=1) <= 0] = np.nan
    return out


# ---------------------------------------------------------------------------------------- search
def ncc_map(img: np.ndarray, centres: np.ndarray, radius: int, templates: np.ndarray) -> np.ndarray:
    """NCC of each point's template over a square window on one pyramid level.

    Args:
        img: ``(H, W, C)`` level image (uint8 or float32).
        centres: ``(P, 2) int`` window centres in level px.
        radius: window half-size in level px; the map is ``(2r+1) x (2r+1)``.
        templates: ``(P, k, k, C)`` zero-mean, unit-norm templates (:func:`normalize_patches`).

    Returns:
        ``(P, 2r+1, 2r+1) float32`` NCC, entry ``[p, i, j]`` for the candidate
        ``centres[p] + (j - r, i - r)``; candidates outside the image get -1.
    """
    p, k = templates.shape[0], templates.shape[1]
    c = img.shape[2]
    h, w = img.shape[:2]
    half = k // 2
    span = np.arange(-radius - half, radius + half + 1)
    ys = np.clip(centres[:, 1, None] + span[None], 0, h - 1)
    xs = np.clip(centres[:, 0, None] + span[None], 0, w - 1)
    g = img[ys[:, :, None], xs[:, None, :]].astype(np.float32)  # (P, Wp, Wp, C)
    windows = sliding_window_view(g, (k, k), axis=(1, 2))  # (P, win, win, C, k, k), a view
    num = np.einsum("pijckl,pklc->pij", windows, templates)
    # sum of squared deviations over every k x k footprint, from integral images of the window
    # (centred on the window mean first, so float32 sums do not cancel catastrophically)
    n = k * k
    g = g - g.mean(axis=(1, 2), keepdims=True)
    both = np.stack([g, g * g])  # (2, P, Wp, Wp, C)
    ii = np.zeros((2, p, both.shape[2] + 1, both.shape[3] + 1, c), np.float32)
    ii[:, :, 1:, 1:] = both.cumsum(2).cumsum(3)
    box = ii[:, :, k:, k:] - ii[:, :, :-k, k:] - ii[:, :, k:, :-k] + ii[:, :, :-k, :-k]
    var = (box[1] - box[0] * box[0] / n).sum(axis=-1)
    denom = np.sqrt(np.maximum(var, 0.0) + n * c * _NOISE * _NOISE)
    out = num / denom
    cy = centres[:, 1, None] + np.arange(-radius, radius + 1)[None]
    cx = centres[:, 0, None] + np.arange(-radius, radius + 1)[None]
    outside = ((cy < 0) | (cy >= h))[:, :, None] | ((cx < 0) | (cx >= w))[:, None, :]
    out[outside] = -1.0
    return out


def _bilinear_maps(maps: np.ndarray, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Sample ``maps (P, H, W)`` at fractional column ``u`` / row ``v`` ``(P, M)`` (clamped)."""
    p, hh, ww = maps.shape
    u = np.clip(u, 0.0, ww - 1.0)
    v = np.clip(v, 0.0, hh - 1.0)
    u0 = np.minimum(np.floor(u).astype(np.int64), ww - 2) if ww > 1 else np.zeros_like(u, np.int64)
    v0 = np.minimum(np.floor(v).astype(np.int64), hh - 2) if hh > 1 else np.zeros_like(v, np.int64)
    fu = (u - u0) if ww > 1 else np.zeros_like(u)
    fv = (v - v0) if hh > 1 else np.zeros_like(v)
    flat = maps.reshape(p, -1)
    u1 = np.minimum(u0 + 1, ww - 1)
    v1 = np.minimum(v0 + 1, hh - 1)

    def at(vv, uu):
        return np.take_along_axis(flat, vv * ww + uu, axis=1)

    return ((1 - fv) * ((1 - fu) * at(v0, u0) + fu * at(v0, u1)) + fv * ((1 - fu) * at(v1, u0) + fu * at(v1, u1)))


def similarity_maps(pyramid: list[np.ndarray], query: Descriptors, weights: np.ndarray, centres: np.ndarray,
                    radius: int, step: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Similarity maps of the query descriptors around integer level-0 ``centres``.

    The map of point p has ``(2 * radius + 1)^2`` candidates ``centres[p] + step * (j - radius,
    i - radius)`` (level-0 px). Each level's NCC is evaluated on that level's own pixel grid and
    resampled bilinearly onto the candidates; the map is the ``weights``-weighted mean over the
    query's levels, i.e. the descriptor cosine similarity at every candidate.

    Returns:
        ``maps (P, 2r+1, 2r+1) float32`` and ``used (P,) bool`` (False: no informative level;
        that row is all NaN).
    """
    p = centres.shape[0]
    win = 2 * radius + 1
    k = int(round(np.sqrt(query.blocks.shape[2] // pyramid[0].shape[2])))
    grid = (np.arange(win) - radius) * step
    cand_x = centres[:, 0, None] + grid[None]  # (P, win) level-0 px
    cand_y = centres[:, 1, None] + grid[None]
    total = np.zeros((p, win, win), np.float64)
    wsum = np.zeros(p, np.float64)
    for s, lvl in enumerate(query.levels):
        wl = weights[:, s].astype(np.float64)
        if not np.any(wl > 0):
            continue
        tmpl = query.blocks[:, s].reshape(p, k, k, -1)
        scale = float(2**lvl)
        c_l = np.rint(to_level(centres, lvl)).astype(np.int64)
        r_l = int(np.ceil(radius * step / scale)) + 1
        m = ncc_map(pyramid[lvl], c_l, r_l, tmpl)
        u = (cand_x + 0.5) / scale - 0.5 - (c_l[:, 0, None] - r_l)  # (P, win) columns of m
        v = (cand_y + 0.5) / scale - 0.5 - (c_l[:, 1, None] - r_l)
        uu = np.broadcast_to(u[:, None, :], (p, win, win)).reshape(p, -1)
        vv = np.broadcast_to(v[:, :, None], (p, win, win)).reshape(p, -1)
        vals = _bilinear_maps(m, uu, vv).reshape(p, win, win)
        total += wl[:, None, None] * vals
        wsum += wl
    used = wsum > 0
    with np.errstate(invalid="ignore", divide="ignore"):
        maps = (total / wsum[:, None, None]).astype(np.float32)
    maps[~used] = np.nan
    return maps, used


def soft_argmax(maps: np.ndarray, radius: int, temperature: float,
                mask: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Sub-pixel peak of each map: soft-argmax within ``radius`` cells of the integer argmax.

    Weights are ``exp((s - s_peak) / temperature)`` over the ``(2 radius + 1)^2`` cells around the
    peak that lie inside the map (and inside ``mask`` if given). For a peak that is quadratic in
    the position, ``exp(s / T)`` is a sampled Gaussian and its centroid is the true sub-pixel peak.

    Args:
        maps: ``(P, H, W)`` similarity maps (NaN = not a candidate).
        radius: soft-argmax half-window in cells.
        temperature: in similarity units.
        mask: optional ``(P, H, W) bool`` allowed cells.

    Returns:
        ``xy (P, 2)`` float64 (column, row) in cell units, NaN for a map without any candidate;
        ``peak (P,)`` the map value at the integer argmax.
    """
    p, hh, ww = maps.shape
    scores = np.where(np.isfinite(maps), maps, -np.inf)
    if mask is not None:
        scores = np.where(mask, scores, -np.inf)
    flat = scores.reshape(p, -1)
    best = np.argmax(flat, axis=1)
    peak = flat[np.arange(p), best]
    by, bx = np.divmod(best, ww)
    offs = np.arange(-radius, radius + 1)
    yy = by[:, None] + offs[None]  # (P, R)
    xx = bx[:, None] + offs[None]
    inside = ((yy >= 0) & (yy < hh))[:, :, None] & ((xx >= 0) & (xx < ww))[:, None, :]
    idx = np.clip(yy, 0, hh - 1)[:, :, None] * ww + np.clip(xx, 0, ww - 1)[:, None, :]
    vals = np.take_along_axis(flat, idx.reshape(p, -1), axis=1).reshape(idx.shape)
    vals = np.where(inside, vals, -np.inf)
    with np.errstate(invalid="ignore", over="ignore"):
        wts = np.exp((vals - peak[:, None, None]) / temperature)
    wts = np.where(np.isfinite(wts), wts, 0.0)
    wsum = wts.sum(axis=(1, 2))
    with np.errstate(invalid="ignore", divide="ignore"):
        sx = (wts * xx[:, None, :]).sum(axis=(1, 2)) / wsum
        sy = (wts * yy[:, :, None]).sum(axis=(1, 2)) / wsum
    xy = np.stack([sx, sy], axis=1)
    bad = ~np.isfinite(peak)
    xy[bad] = np.nan
    peak = np.where(bad, np.nan, peak)
    return xy, peak
