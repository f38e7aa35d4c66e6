"""Labelled training clips from generated scenes (exact trajectories and occlusion).

The supervised stage of Video-GMAE training: a pool of random layered scenes
(:mod:`gs_tracker_ros.synthetic`) is generated once at the model's clip size, so the ground truth
is exact in model pixels; clips are drawn with a random start, stride and direction and a random
horizontal flip, and their query points on the clip's first frame are tracked exactly.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..core.errors import InputError


@dataclass
class LabelledClips:
    """A batch of labelled clips.

    Attributes:
        clips: ``(B, T, H, W, 3) uint8`` RGB.
        tracks: ``(B, T, P, 2) float32`` package px (x right, y down), exact also while hidden.
        visible: ``(B, T, P) bool`` the point is in view and not covered by a nearer layer.
        in_view: ``(B, T, P) bool`` the point lies inside the image.
    """

    clips: np.ndarray
    tracks: np.ndarray
    visible: np.ndarray
    in_view: np.ndarray


class SceneClipSampler:
    """Random labelled ``(T, H, W, 3)`` clips with ``points`` tracked query points each.

    Args:
        num_scenes: generated scenes in the pool (rendered once, kept in memory).
        num_frames, size: clip length and ``(H, W)``: the model's.
        points: query points per clip (sampled away from layer edges on the first clip frame).
        max_stride: temporal strides 1..max_stride.
        scene_frames: frames per generated scene.
        real_textures, real_textures_exclude: optional folder of real frames whose crops texture
            most layers (see :class:`~gs_tracker_ros.synthetic.SceneConfig`).
        seed: seeds the scenes and the sampling.
    """

    def __init__(self, num_scenes: int, num_frames: int, size: tuple[int, int], points: int = 64,
                 max_stride: int = 2, scene_frames: int = 24, real_textures: str = "",
                 real_textures_exclude: tuple[str, ...] = (), seed: int = 0) -> None:
        from ..synthetic import make_training_scenes

        h, w = size
        if num_scenes < 1 or points < 1:
            raise InputError("the supervised stage needs at least one scene and one point per clip")
        self.t, self.points, self.max_stride = int(num_frames), int(points), max(1, int(max_stride))
        scene_frames = max(int(scene_frames), (self.t - 1) * self.max_stride + 1)
        self.scenes = make_training_scenes(num_scenes, width=w, height=h, num_frames=scene_frames, seed=seed,
                                           real_textures=real_textures, real_textures_exclude=real_textures_exclude)
        self.frames = [np.stack(list(s.frames())) for s in self.scenes]
        self.rng = np.random.default_rng(seed + 1)

    def sample(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """One clip: ``clip (T, H, W, 3)``, ``tracks (T, P, 2)``, ``visible (T, P)``, ``in_view (T, P)``."""
        rng = self.rng
        k = int(rng.integers(len(self.scenes)))
        scene, frames = self.scenes[k], self.frames[k]
        n = scene.num_frames
        stride = int(rng.integers(1, min(self.max_stride, (n - 1) // (self.t - 1)) + 1))
        start = int(rng.integers(0, n - (self.t - 1) * stride))
        idx = start + stride * np.arange(self.t)
        if rng.random() < 0.5:  # time reversal: the query frame is then the last of the forward span
            idx = idx[::-1]
        q = scene.sample_queries(self.points, frame=int(idx[0]), seed=int(rng.integers(2**31)))
        if len(q) == 0:
            return self.sample()
        q = q[np.resize(np.arange(len(q)), self.points)]  # few free pixels: repeat points
        tracks, visible = scene.track(q, int(idx[0]))
        tracks, visible = tracks[:, idx].transpose(1, 0, 2), visible[:, idx].T  # (T, P, 2), (T, P)
        clip = frames[idx]
        if rng.random() < 0.5:  # horizontal flip: x -> (W - 1) - x in package pixels
            clip = clip[:, :, ::-1]
            tracks = tracks * [-1.0, 1.0] + [scene.width - 1.0, 0.0]
        x, y = tracks[..., 0], tracks[..., 1]
        in_view = (x >= -0.5) & (x < scene.width - 0.5) & (y >= -0.5) & (y < scene.height - 0.5)
        return np.ascontiguousarray(clip), tracks.astype(np.float32), visible, in_view

    def batch(self, b: int) -> LabelledClips:
        items = [self.sample() for _ in range(b)]
        return LabelledClips(*(np.stack([it[i] for it in items]) for i in range(4)))
