"""A scene built to test re-localisation: a patch slides behind an occluder and comes out elsewhere."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..core.errors import ConfigError
from .config import TEXTURE_KINDS
from .layers import background_layer, shape_layer
from .motion import PosePath, apply_affines
from .scene import SyntheticScene
from .texture import rounded_rect_outline


@dataclass(frozen=True)
class OcclusionRevealScene:
    """The scene plus what a test needs to know about it.

    Attributes:
        scene: the rendered scene (layers: 0 background, ``patch_id``, ``occluder_id``).
        patch_id: layer id of the textured patch that gets hidden.
        occluder_id: layer id of the occluder in front of it.
        hidden: frames in which *every* pixel of the patch is hidden (a contiguous range;
            ``hidden.start`` = first fully hidden frame, ``hidden.stop`` = first frame in which part
            of the patch shows again).
        reveal_frame: first frame >= ``hidden.stop`` in which the whole patch is visible again.
        patch_queries: ``(K, 2) float64`` px, interior points of the patch at frame 0 (pixel centres
            at least 3 px from its outline), convenient query points.
        displacement_px: distance the patch centre travelled between ``hidden.start`` and
            ``reveal_frame`` (the patch moves while hidden).
    """

    scene: SyntheticScene
    patch_id: int
    occluder_id: int
    hidden: range
    reveal_frame: int
    patch_queries: np.ndarray
    displacement_px: float


def make_occlusion_reveal_scene(width: int = 320, height: int = 240, num_frames: int = 90,
                                hidden_frames: int = 30, patch_size: int = 44, seed: int = 0,
                                noise_std: float = 0.0, texture: str = "mixed") -> OcclusionRevealScene:
    """Build the occlusion/reveal scene.

    The patch (a ``patch_size`` px rounded square, slowly rotating) crosses the image left to
    right at constant speed while bobbing vertically; a tall occluder in the middle, itself
    wobbling, hides it completely for at least ``hidden_frames - 2`` frames (the default
    geometry gives 39 for 30: the occluder is sized with safety margins). The background pans
    slowly. Every frame of the returned ranges is computed from the exact ground truth.

    Args:
        width, height: image size, px.
        num_frames: clip length, frames.
        hidden_frames: wanted length of the fully hidden interval, frames.
        patch_size: side of the patch, px.
        seed: seed of textures and noise.
        noise_std: sensor noise std, grey levels.
        texture: texture kind (see :class:`SceneConfig`).

    Raises:
        ConfigError: if the geometry cannot give a fully hidden interval of at least
            ``hidden_frames - 2`` frames with the patch fully visible before and after.
    """
    if texture not in TEXTURE_KINDS:
        raise ConfigError(f"texture must be one of {TEXTURE_KINDS}, got {texture!r}")
    if num_frames < 10 or hidden_frames < 1 or patch_size < 8:
        raise ConfigError("occlusion scene needs num_frames >= 10, hidden_frames >= 1, patch_size >= 8")
    rng = np.random.default_rng(seed)
    t_all = int(num_frames)
    t = np.arange(t_all, dtype=np.float64)
    u = t / max(t_all - 1, 1)
    w, h = int(width), int(height)

    bg = PosePath(cx=w / 2 - 0.4 * t, cy=h / 2 + 0.15 * t, theta=np.zeros(t_all), scale=np.ones(t_all))
    layers = [background_layer(bg, w, h, rng, texture)]

    half = patch_size / 2
    rot = 0.15  # total patch rotation over the clip, rad
    extent = half * (abs(np.cos(rot)) + abs(np.sin(rot))) + 2.0  # horizontal half-extent bound, px
    x_start, x_end = extent + 4.0, w - extent - 4.0
    speed = (x_end - x_start) / max(t_all - 1, 1)
    bob = 0.08 * h
    patch_path = PosePath(cx=x_start + (x_end - x_start) * u, cy=h / 2 + bob * np.sin(2 * np.pi * u),
                          theta=rot * u, scale=np.ones(t_all))
    layers.append(shape_layer("patch", rounded_rect_outline(half, half, 0.2 * half), patch_path, rng, texture))

    wobble = 5.0
    occ_half_w = 0.5 * hidden_frames * speed + extent + wobble + 3.0
    occ_half_h = 0.5 * (2 * bob + 2 * extent) + 0.06 * h + 12.0
    occ_path = PosePath(cx=w / 2 + wobble * np.sin(4 * np.pi * u), cy=h / 2 + 0.04 * h * np.sin(2 * np.pi * u + 1.0),
                        theta=np.deg2rad(1.0) * np.sin(2 * np.pi * u), scale=np.ones(t_all))
    outline = rounded_rect_outline(occ_half_w, occ_half_h, 0.25 * occ_half_w)
    layers.append(shape_layer("occluder", outline, occ_path, rng, texture))
    scene = SyntheticScene(w, h, layers, noise_std=noise_std, seed=seed)
    patch_id, occluder_id = 1, 2

    # exact visibility of every patch pixel in every frame
    patch = scene.layers[patch_id]
    vv, uu = np.nonzero(patch.alpha >= 0.5)
    uv = np.stack([uu, vv], axis=1).astype(np.float64)
    xy0 = apply_affines(patch.to_image[0], uv)
    _, vis = scene.track(xy0, np.zeros(len(xy0), np.int64))
    all_hidden = ~vis.any(axis=0)
    all_visible = vis.all(axis=0)
    runs = _runs(all_hidden)
    if not runs or not all_visible[0]:
        raise ConfigError("occlusion scene: geometry gives no fully hidden interval; enlarge the image")
    start, stop = max(runs, key=lambda r: r[1] - r[0])
    after = np.nonzero(all_visible[stop:])[0]
    if stop - start < hidden_frames - 2 or after.size == 0:
        raise ConfigError(f"occlusion scene: hidden for {stop - start} frames (wanted {hidden_frames}) or never "
                          f"fully revealed; use a wider image, more frames or fewer hidden_frames")
    reveal = int(stop + after[0])

    # interior query points: patch pixels at least 3 px inside its outline, at frame 0
    queries = scene.sample_queries(10_000, frame=0, seed=seed, margin_px=3, layers=[patch_id])
    centre = np.stack([patch_path.cx, patch_path.cy], axis=1)
    disp = float(np.linalg.norm(centre[reveal] - centre[start]))
    return OcclusionRevealScene(scene, patch_id, occluder_id, range(int(start), int(stop)), reveal,
                                queries[np.lexsort((queries[:, 0], queries[:, 1]))], disp)


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """Half-open ``(start, stop)`` index ranges where a 1-D bool mask is True."""
    m = np.concatenate([[False], mask, [False]]).astype(np.int8)
    d = np.diff(m)
    return list(zip(np.nonzero(d == 1)[0].tolist(), np.nonzero(d == -1)[0].tolist()))
