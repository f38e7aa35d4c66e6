"""Gaussian motion source (Video-GMAE): point motion from the encoder's moving 3-D Gaussians.

The encoder runs on the last T buffered frames (resized to its input size) and returns a
:class:`~gs_tracker_ros.model.gaussians.GaussianClip`. For points p in frame a and a target frame
b inside that clip window, with Gaussians sorted front to back by depth in frame a::

    w_i(p) = alpha_i(p) * prod_{j in front of i} (1 - alpha_j(p))     (splat weights, at p only)
    A(p)   = sum_i w_i(p)
    d(p)   = sum_i w_i (x_i^b - x_i^a) / A
    s2(p)  = sum_i w_i |x_i^b - x_i^a - d|^2 / A + s_bg^2 (1 - A) + s0^2
    valid  = A >= tau_vis  and  V_b(p) >= tau_occ

``V_b(p) = sum_i w_i(p) T_i^b / A`` is an occlusion check at the target frame (an addition to the
bare formula; ``tau_occ = 0`` turns it off): ``T_i^b`` is the transmittance in front of Gaussian i
at its own centre in frame b, so a point whose Gaussians get covered by nearer ones is invalid.

``alpha_i(p)`` is the renderer's per-pixel opacity (same 2-D covariance, clamp and cut-off as
:mod:`gs_tracker_ros.render`). The weights already contain each Gaussian's opacity and the
transmittance in front of it; they are used as they are (never multiplied by alpha again).
Everything is computed in the encoder's pixels and scaled back to full-resolution pixels.

Anchor variant (``mode="anchor"``; k = 8, tau_vis = 0.5, beta = 0.3): S = the k Gaussians with the
largest w_i(p); m = sum_S w_i; p_anchor = sum_S (w_i / m) x_i^b. If m >= tau_vis the point moves to
(1 - beta)(p + d) + beta p_anchor (valid), else to p_anchor (invalid: judged occluded).

Cost: the encoder runs once per clip window, not once per frame. Windows end on every
``window_hop``-th frame (``e % window_hop == 0``) and cover frames ``e - T + 1 .. e``; a pair (a, b) is
answered from the newest such window (ending at or before the buffer's latest frame) that holds
both frames, and one encoder pass is shared by every point and frame pair inside it. Pairs that no
window holds give ``valid = False`` (zero displacement, variance ``s_bg^2 + s0^2``): with
``window_hop = h`` an online tracker gets Gaussian chains on every h-th frame. ``window_hop = 1``
encodes a window ending at every new frame.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Callable

import cv2
import numpy as np
import torch

from ..core.clip_buffer import ClipBuffer
from ..core.errors import ConfigError
from ..model.gaussians import GaussianClip
from ..render.splat import ALPHA_MAX, ALPHA_MIN, EPS2D, T_MIN, composite_weights, project_gaussians, splat_alpha
from .base import MotionEstimate, MotionSource

Encoder = Callable[[np.ndarray], GaussianClip]


@dataclass
class _Window:
    """Projected Gaussians of one encoded clip window (encoder pixels, continuous coordinates)."""

    start: int  # absolute index of clip frame 0
    mean2d: torch.Tensor  # (T, N, 2)
    conic: torch.Tensor  # (T, N, 3)
    depth: torch.Tensor  # (T, N)
    in_front: torch.Tensor  # (T, N) bool
    opacity: torch.Tensor  # (N,)
    vis: dict  # frame -> (N,) transmittance in front of each Gaussian at its own centre


def splat_weights(points: torch.Tensor, mean2d: torch.Tensor, conic: torch.Tensor, opacity: torch.Tensor,
                  depth: torch.Tensor, in_front: torch.Tensor | None = None, alpha_min: float = ALPHA_MIN,
                  alpha_max: float = ALPHA_MAX, t_min: float = T_MIN) -> torch.Tensor:
    """Front-to-back compositing weights of N Gaussians at P points: ``(P, N)``.

    ``points (P, 2)`` and ``mean2d (N, 2)`` in the same continuous image coordinates, ``conic (N, 3)``
    the inverse 2-D covariance (A, B, C), ``opacity (N,)``, ``depth (N,)`` (smaller = in front).
    """
    n = mean2d.shape[0]
    if in_front is None:
        in_front = torch.ones(n, dtype=torch.bool, device=mean2d.device)
    order = torch.argsort(torch.where(in_front, depth, torch.full_like(depth, float("inf"))))
    mu, cn, op, ok = mean2d[order], conic[order], opacity[order], in_front[order]
    dx = points[:, None, 0] - mu[None, :, 0]  # (P, N)
    dy = points[:, None, 1] - mu[None, :, 1]
    alpha = splat_alpha(dx, dy, cn[:, 0], cn[:, 1], cn[:, 2], op, alpha_min, alpha_max)
    alpha = torch.where(ok[None], alpha, torch.zeros_like(alpha))
    w = composite_weights(alpha, dim=1, t_min=t_min)
    out = torch.zeros_like(w)
    out[:, order] = w
    return out


def self_visibility(mean2d: torch.Tensor, conic: torch.Tensor, opacity: torch.Tensor, depth: torch.Tensor,
                    in_front: torch.Tensor | None = None) -> torch.Tensor:
    """``(N,)`` transmittance in front of each Gaussian at its own centre (1 = fully visible)."""
    w = splat_weights(mean2d, mean2d, conic, opacity, depth, in_front, t_min=0.0)  # (N, N)
    n = mean2d.shape[0]
    if in_front is None:
        in_front = torch.ones(n, dtype=torch.bool, device=mean2d.device)
    key = torch.where(in_front, depth, torch.full_like(depth, float("inf")))
    nearer = key[None, :] < key[:, None]  # [i, j]: j is in front of i
    occ = (w * nearer).sum(1)  # mass in front of i at its centre = 1 - transmittance
    return (1.0 - occ).clamp(0.0, 1.0)


def gaussian_motion(w: torch.Tensor, xa: torch.Tensor, xb: torch.Tensor, s_bg: float, s0: float = 0.0,
                    eps: float = 1e-8) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Splat-weighted motion: weights ``(P, N)``, centres at a and b ``(N, 2)`` -> d (P,2), s2 (P,), A (P,)."""
    acc = w.sum(1)
    dx = xb - xa  # (N, 2)
    d = (w @ dx) / acc.clamp_min(eps)[:, None]
    resid = ((dx[None] - d[:, None]) ** 2).sum(-1)  # (P, N)
    s2 = (w * resid).sum(1) / acc.clamp_min(eps) + s_bg**2 * (1.0 - acc).clamp_min(0.0) + s0**2
    return d, s2, acc


def anchor_motion(w: torch.Tensor, p: torch.Tensor, d: torch.Tensor, xb: torch.Tensor, k: int = 8,
                  tau_vis: float = 0.5, beta: float = 0.3, eps: float = 1e-8
                  ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Anchor variant: new positions ``(P, 2)``, anchor mass ``m (P,)`` and visible ``(P,)``."""
    k = min(k, w.shape[1])
    top_w, top_i = torch.topk(w, k, dim=1)  # (P, k)
    m = top_w.sum(1)
    p_anchor = (top_w[..., None] * xb[top_i]).sum(1) / m.clamp_min(eps)[:, None]
    visible = m >= tau_vis
    blended = (1.0 - beta) * (p + d) + beta * p_anchor
    return torch.where(visible[:, None], blended, p_anchor), m, visible


class GaussianMotionSource(MotionSource):
    """:class:`MotionSource` on top of any ``encoder(clip uint8 (T, H, W, 3)) -> GaussianClip``.

    Args:
        encoder: torch model wrapper, ONNX Runtime or TensorRT engine with that call signature.
        num_frames, input_size: clip length and ``(height, width)`` the encoder takes (default:
            the encoder's ``num_frames`` / ``input_size`` attributes).
        mode: ``"splat"`` (weighted mean displacement) or ``"anchor"`` (anchor blend).
        tau_vis, k, beta: visibility threshold, anchor count and blend weight.
        s_bg: background std (full-resolution px) added where the Gaussians do not cover the point.
        s0: floor std (full-resolution px) added to every variance (0 = the bare formula).
        tau_occ: minimum visibility of the point's Gaussians in frame b (0 = no occlusion check).
        cache_windows: encoded windows kept (newest last).
        window_hop: frames between encoder passes (windows end on frames ``e % window_hop == 0``);
            1 = a pass for every new frame. At most ``num_frames - 1`` so that consecutive windows
            share at least one frame pair.

    Attributes:
        encoder_calls: encoder passes so far (one per window).
    """

    name = "gmae"

    def __init__(self, encoder: Encoder, num_frames: int | None = None, input_size: tuple[int, int] | None = None,
                 mode: str = "splat", tau_vis: float = 0.5, k: int = 8, beta: float = 0.3, s_bg: float = 16.0,
                 s0: float = 1.0, tau_occ: float = 0.5, cache_windows: int = 2, window_hop: int = 1) -> None:
        if mode not in ("splat", "anchor"):
            raise ConfigError(f"GaussianMotionSource mode must be 'splat' or 'anchor', got {mode!r}")
        self.encoder = encoder
        self.num_frames = int(num_frames or getattr(encoder, "num_frames"))
        size = input_size or getattr(encoder, "input_size")
        self.input_size = (int(size[0]), int(size[1]))
        if self.num_frames < 2:
            raise ConfigError("GaussianMotionSource needs clips of at least 2 frames")
        self.mode, self.tau_vis, self.k, self.beta = mode, float(tau_vis), int(k), float(beta)
        self.s_bg, self.s0, self.tau_occ = float(s_bg), float(s0), float(tau_occ)
        self.cache_windows = max(1, int(cache_windows))
        if isinstance(window_hop, bool) or not isinstance(window_hop, int) or not 1 <= window_hop < self.num_frames:
            raise ConfigError(f"GaussianMotionSource window_hop must be an integer in [1, {self.num_frames - 1}] "
                              f"(clips of {self.num_frames} frames), got {window_hop!r}")
        self.window_hop = window_hop
        self._windows: "OrderedDict[int, _Window]" = OrderedDict()
        self.encoder_calls = 0

    def reset(self) -> None:
        self._windows.clear()

    # ------------------------------------------------------------------ windows
    def window_end(self, latest: int) -> int:
        """Last frame of the newest scheduled window once frame ``latest`` is buffered."""
        return latest - latest % self.window_hop

    def _window_for(self, buffer: ClipBuffer, a: int, b: int) -> _Window | None:
        lo, hi = min(a, b), max(a, b)
        t = self.num_frames
        for w in reversed(self._windows.values()):  # newest first
            if w.start <= lo and hi <= w.start + t - 1:
                return w
        end = self.window_end(buffer.latest)
        start = end - t + 1
        if lo < start or hi > end or lo not in buffer or hi not in buffer:
            return None
        return self._encode(buffer, start)

    def _encode(self, buffer: ClipBuffer, start: int) -> _Window:
        h, w = self.input_size
        idx = list(range(start, start + self.num_frames))
        present = [i for i in idx if i in buffer]
        frames = []
        for i in idx:
            j = i if i in buffer else min(present, key=lambda x: abs(x - i))  # pad the start of the stream
            frames.append(buffer.cached(j, f"gmae_{w}x{h}",
                                        lambda rgb: cv2.resize(rgb, (w, h), interpolation=cv2.INTER_AREA)))
        clip = np.stack(frames)
        g = self.encoder(clip)
        self.encoder_calls += 1
        if not isinstance(g, GaussianClip):
            raise ConfigError(f"encoder must return a GaussianClip, got {type(g).__name__}")
        g = g.select(0).detach().to("cpu", torch.float32)
        proj = project_gaussians(g.means[0], g.quats[0][None].expand(self.num_frames, -1, -1),
                                 torch.exp(g.log_scales[0])[None].expand(self.num_frames, -1, -1),
                                 g.camera, g.height, g.width, EPS2D)
        # the encoder's pixel grid may differ from input_size only by the model's own choice
        sx, sy = w / g.width, h / g.height
        mean2d = proj.mean2d * proj.mean2d.new_tensor([sx, sy])
        conic = proj.conic * proj.conic.new_tensor([1 / sx**2, 1 / (sx * sy), 1 / sy**2])
        win = _Window(start, mean2d, conic, proj.depth, proj.valid, g.opacities[0], {})
        self._windows[start] = win
        while len(self._windows) > self.cache_windows:
            self._windows.popitem(last=False)
        return win

    # ------------------------------------------------------------------ estimate
    def estimate(self, buffer: ClipBuffer, a: int, b: int, points: np.ndarray) -> MotionEstimate:
        pts = np.asarray(points, np.float32).reshape(-1, 2)
        n = pts.shape[0]
        invalid = MotionEstimate(np.zeros((n, 2), np.float32), np.full(n, self.s_bg**2 + self.s0**2, np.float32),
                                 np.zeros(n, bool))
        if n == 0 or buffer.shape is None:
            return invalid
        win = self._window_for(buffer, a, b)
        if win is None:
            return invalid
        full_h, full_w = buffer.shape
        h, w = self.input_size
        sx, sy = w / full_w, h / full_h
        ia, ib = a - win.start, b - win.start
        scale = torch.tensor([sx, sy])
        p_in = (torch.from_numpy(pts) + 0.5) * scale  # continuous encoder pixels
        wts = splat_weights(p_in, win.mean2d[ia], win.conic[ia], win.opacity, win.depth[ia], win.in_front[ia])
        xa = win.mean2d[ia] / scale  # full-resolution continuous pixels
        xb = win.mean2d[ib] / scale
        p_full = torch.from_numpy(pts) + 0.5
        d, s2, acc = gaussian_motion(wts, xa, xb, self.s_bg, self.s0)
        valid = acc >= self.tau_vis
        if self.mode == "anchor":
            new_p, _, valid = anchor_motion(wts, p_full, d, xb, self.k, self.tau_vis, self.beta)
            d = new_p - p_full
        if self.tau_occ > 0:
            if ib not in win.vis:
                win.vis[ib] = self_visibility(win.mean2d[ib], win.conic[ib], win.opacity, win.depth[ib],
                                              win.in_front[ib])
            vis_b = (wts @ win.vis[ib]) / acc.clamp_min(1e-8)
            valid = valid & (vis_b >= self.tau_occ)
        return MotionEstimate(d.numpy().astype(np.float32), s2.numpy().astype(np.float32), valid.numpy())
