"""Batches of small random synthetic clips (training / pretraining data)."""

from __future__ import annotations

import numpy as np

from .config import TEXTURE_KINDS, SceneConfig
from .scene import SyntheticScene, make_scene


def random_scene_config(rng: np.random.Generator, width: int = 192, height: int = 128, num_frames: int = 32,
                        real_textures: str = "", real_textures_exclude: tuple[str, ...] = (),
                        real_texture_share: float = 0.7) -> SceneConfig:
    """A :class:`SceneConfig` with randomised layer count, motion magnitudes, texture and noise.

    ``real_textures`` (a folder of real frames, optional): a ``real_texture_share`` of the layers
    are textured with crops of those frames (see :class:`SceneConfig`)."""
    n_layers = int(rng.integers(1, 6))
    return SceneConfig(
        width=width,
        height=height,
        num_frames=num_frames,
        num_layers=n_layers,
        seed=int(rng.integers(0, 2**31 - 1)),
        bg_speed=float(rng.uniform(0.0, 2.0)),
        bg_rotation=float(rng.uniform(0.0, 5.0)),
        bg_zoom=float(rng.uniform(0.0, 0.08)),
        fg_speed=float(rng.uniform(0.5, 4.0)),
        fg_rotation=float(rng.uniform(0.0, 2.0)),
        fg_scale=float(rng.uniform(0.0, 0.15)),
        texture=str(rng.choice(TEXTURE_KINDS, p=[0.7, 0.2, 0.1])),
        noise_std=float(rng.uniform(0.0, 3.0)),
        exit_reenter=bool(rng.random() < 0.3),
        real_textures=str(real_textures),
        real_textures_exclude=tuple(real_textures_exclude),
        real_texture_share=float(real_texture_share),
    )


def make_training_scenes(n: int, width: int = 192, height: int = 128, num_frames: int = 32, seed: int = 0,
                         real_textures: str = "", real_textures_exclude: tuple[str, ...] = ()) -> list[SyntheticScene]:
    """``n`` random scenes (varied layers, motions, textures, noise); deterministic for a seed.

    ``real_textures``: optional folder of real frames whose crops texture most layers."""
    rng = np.random.default_rng(seed)
    return [make_scene(random_scene_config(rng, width, height, num_frames, real_textures, real_textures_exclude))
            for _ in range(int(n))]


def make_training_sequences(n: int, width: int = 192, height: int = 128, num_frames: int = 32, seed: int = 0,
                            real_textures: str = "", real_textures_exclude: tuple[str, ...] = ()) -> list[np.ndarray]:
    """``n`` random clips, each ``(T, H, W, 3) uint8`` RGB (see :func:`make_training_scenes`)."""
    scenes = make_training_scenes(n, width, height, num_frames, seed, real_textures, real_textures_exclude)
    return [np.stack(list(s.frames())) for s in scenes]
