"""A scene built to test out-of-view tracking: a patch leaves the image, stays outside, comes back."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..core.errors import ConfigError
from ..core.geometry import inside_image
from .config import TEXTURE_KINDS
from .layers import background_layer, shape_layer
from .motion import PosePath, apply_affines
from .scene import SyntheticScene
from .texture import rounded_rect_outline


@dataclass(frozen=True)
class ExitReenterScene:
    """The scene plus what a test needs to know about it.

    Attributes:
        scene: the rendered scene (layers: 0 background, ``patch_id``).
        patch_id: layer id of the textured patch that leaves the image.
        outside: frames in which *every* pixel of the patch lies outside the image (a contiguous
            range).
        reenter_frame: first frame >= ``outside.stop`` in which the whole patch is inside again.
        patch_queries: ``(K, 2) float64`` px, interior points of the patch at frame 0 (pixel
            centres at least ``patch_size / 4`` px from its outline), convenient query points.
        max_speed_px: the largest frame-to-frame displacement of a patch point, px/frame (the
            patch is the fastest thing in the scene: the background pans at 0.3 px/frame).
    """

    scene: SyntheticScene
    patch_id: int
    outside: range
    reenter_frame: int
    patch_queries: np.ndarray
    max_speed_px: float


def make_exit_reenter_scene(width: int = 320, height: int = 240, num_frames: int = 100, outside_frames: int = 20,
                            patch_size: int = 56, speed_px: float = 4.0, seed: int = 0, noise_std: float = 0.0,
                            texture: str = "mixed") -> ExitReenterScene:
    """Build the exit / re-enter scene.

    The patch (a ``patch_size`` px rounded square) starts right of the centre and moves right at
    ``speed_px`` px/frame, leaves the image through its right border, stays completely outside for
    ``outside_frames`` frames (its centre keeps moving out and back, turning smoothly) and comes
    back along the same row, then moves left until the clip ends. The background pans slowly
    (0.3 px/frame). Every frame of the returned ranges is computed from the exact ground truth.

    Raises:
        ConfigError: if the clip is too short for the patch to leave and come back fully.
    """
    if texture not in TEXTURE_KINDS:
        raise ConfigError(f"texture must be one of {TEXTURE_KINDS}, got {texture!r}")
    if patch_size < 16 or speed_px <= 0 or outside_frames < 1:
        raise ConfigError("exit scene needs patch_size >= 16, speed_px > 0, outside_frames >= 1")
    rng = np.random.default_rng(seed)
    t_all = int(num_frames)
    w, h = int(width), int(height)
    t = np.arange(t_all, dtype=np.float64)

    bg = PosePath(cx=w / 2 - 0.3 * t, cy=h / 2 + 0.1 * t, theta=np.zeros(t_all), scale=np.ones(t_all))
    layers = [background_layer(bg, w, h, rng, texture)]

    half = patch_size / 2
    extent = half * np.sqrt(2) + 2.0  # half-extent bound of the rounded square, px
    x0 = 0.55 * w
    x_gone = w - 0.5 + extent  # centre beyond this: the whole patch is outside
    # the centre x goes out at `speed_px`, turns round (a parabola) and comes back at the same speed
    t_exit = (x_gone - x0) / speed_px
    turn = outside_frames / 2.0 + 1.0
    cx = np.where(t <= t_exit, x0 + speed_px * t, 0.0)
    u = t - t_exit
    # over the turn (2 turn frames) the speed falls linearly from +speed to -speed:
    # x = x_gone + s u - s u^2 / (2 turn), back at x_gone for u = 2 turn
    in_turn = (u > 0) & (u <= 2 * turn)
    cx = np.where(in_turn, x_gone + speed_px * u - speed_px * u**2 / (2 * turn), cx)
    after = u > 2 * turn
    cx = np.where(after, x_gone - speed_px * (u - 2 * turn), cx)
    cy = np.full(t_all, 0.5 * h)
    path = PosePath(cx=cx, cy=cy, theta=np.zeros(t_all), scale=np.ones(t_all))
    layers.append(shape_layer("patch", rounded_rect_outline(half, half, 0.2 * half), path, rng, texture))
    scene = SyntheticScene(w, h, layers, noise_std=noise_std, seed=seed)
    patch_id = 1

    patch = scene.layers[patch_id]
    vv, uu = np.nonzero(patch.alpha >= 0.5)
    xy0 = apply_affines(patch.to_image[0], np.stack([uu, vv], axis=1).astype(np.float64))
    tracks, _ = scene.track(xy0, np.zeros(len(xy0), np.int64))
    inside = inside_image(tracks.reshape(-1, 2), (h, w)).reshape(tracks.shape[:2])
    all_out = ~inside.any(axis=0)
    all_in = inside.all(axis=0)
    out_frames = np.flatnonzero(all_out)
    if out_frames.size == 0 or not all_in[0]:
        raise ConfigError("exit scene: the patch never leaves the image completely; use more frames")
    start, stop = int(out_frames[0]), int(out_frames[-1]) + 1
    back = np.flatnonzero(all_in[stop:])
    if back.size == 0 or stop - start < outside_frames - 2:
        raise ConfigError("exit scene: the patch does not come back fully inside; use more frames")
    speeds = np.linalg.norm(np.diff(tracks, axis=1), axis=2).max()
    queries = scene.sample_queries(10_000, frame=0, seed=seed, margin_px=max(3, patch_size // 4), layers=[patch_id])
    return ExitReenterScene(scene, patch_id, range(start, stop), int(stop + back[0]),
                            queries[np.lexsort((queries[:, 0], queries[:, 1]))], float(speeds))
