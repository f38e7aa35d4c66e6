"""Training configuration: a YAML file with the sections of :class:`TrainConfig`."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..core.config import config_from_dict, read_yaml_file
from ..core.errors import ConfigError
from ..model.gmae import ModelConfig
from ..core.paths import DAVIS_UNLABELED


@dataclass
class DataConfig:
    paths: list[str] = field(default_factory=lambda: [DAVIS_UNLABELED])  # relative: see paths.resolve_path
    holdout: list[str] = field(default_factory=lambda: ["blackswan", "car-shadow", "goat"])
    preload_short: int = 128  # decoded frames are kept in memory at this short side
    max_stride: int = 2
    crop_scale: tuple[float, float] = (0.5, 1.0)
    synthetic_clips: int = 0  # clips from gs_tracker_ros.synthetic (if available) added to the pool
    synthetic_textures: str = ""  # real frames (folder) whose crops texture those clips; "" = procedural


@dataclass
class OptimConfig:
    steps: int = 20000
    batch_size: int = 4
    lr: float = 5e-4
    min_lr: float = 2e-5
    weight_decay: float = 0.05
    warmup: int = 300
    grad_clip: float = 1.0


@dataclass
class LossConfig:
    l1: float = 1.0
    mse: float = 1.0
    traj: float = 0.0  # weight of the LK pseudo-label trajectory loss (0 = off)
    traj_grid: int = 8


@dataclass
class SupervisedConfig:
    """The supervised stage: exact-ground-truth losses on generated scenes, added to every ``every``-th step.

    ``weight`` scales the trajectory loss (mean L1 of the splatted frame-1 motion against the exact
    tracks, image-size units) and ``vis_weight`` the visibility loss (BCE of the splatted Gaussian
    visibility against the exact visibility); both 0 = no supervised stage. The scenes are generated
    at the model's clip size, ``real_textures`` optionally textures them with crops of real frames.
    """

    weight: float = 0.0
    vis_weight: float = 0.0
    scenes: int = 48  # generated scenes in the pool
    scene_frames: int = 24  # frames per generated scene
    batch_size: int = 2  # labelled clips per supervised step
    points: int = 64  # labelled query points per clip
    max_stride: int = 2
    every: int = 1  # a supervised batch on every ``every``-th training step
    real_textures: str = ""  # folder of real frames for the scene textures ("" = procedural)

    @property
    def enabled(self) -> bool:
        return self.weight > 0 or self.vis_weight > 0


@dataclass
class MaskConfig:
    ratio: float = 0.9
    motion_aware: bool = False  # TrackMAE masking: half the visible patches from high motion
    unmasked_prob: float = 0.25  # share of steps that see the whole clip (inference condition)


@dataclass
class RenderConfig:
    tile_size: int = 8
    max_per_tile: int | None = 64
    background: float = 0.0


@dataclass
class RunConfig:
    seed: int = 0
    num_threads: int = 1
    device: str = "auto"  # auto | cpu | cuda
    log_every: int = 25
    ckpt_every: int = 250
    eval_every: int = 250
    eval_clips: int = 12
    max_minutes: float = 0.0  # stop after this wall time (0 = no limit)
    init_from: str | None = None  # start from these model weights (fine-tuning; not with --resume)


@dataclass
class TrainConfig:
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    mask: MaskConfig = field(default_factory=MaskConfig)
    supervised: SupervisedConfig = field(default_factory=SupervisedConfig)
    render: RenderConfig = field(default_factory=RenderConfig)
    run: RunConfig = field(default_factory=RunConfig)

    def to_dict(self) -> dict:
        return asdict(self)

    @staticmethod
    def from_dict(d: dict | None) -> "TrainConfig":
        cfg = config_from_dict(TrainConfig, d)
        cfg.validate()
        return cfg

    def validate(self) -> None:
        self.model.validate()
        if not 0.0 <= self.mask.ratio < 1.0:
            raise ConfigError(f"mask.ratio must be in [0, 1), got {self.mask.ratio}")
        if self.optim.batch_size < 1 or self.optim.steps < 1:
            raise ConfigError("optim.batch_size and optim.steps must be >= 1")
        sup = self.supervised
        if sup.weight < 0 or sup.vis_weight < 0:
            raise ConfigError("supervised.weight and supervised.vis_weight must be >= 0")
        if sup.enabled and min(sup.scenes, sup.batch_size, sup.points, sup.every, sup.max_stride) < 1:
            raise ConfigError("supervised.scenes, batch_size, points, every and max_stride must be >= 1")
        if not (math.isfinite(self.run.max_minutes) and self.run.max_minutes >= 0):
            raise ConfigError(f"run.max_minutes (--max-minutes) must be >= 0 minutes (0 = no limit), "
                              f"got {self.run.max_minutes}")
        if self.run.device not in ("auto", "cpu", "cuda"):
            raise ConfigError(f"run.device must be auto, cpu or cuda, got {self.run.device!r}")


def load_config(path: str | Path) -> TrainConfig:
    """The :class:`TrainConfig` of the YAML file ``path`` (a one-line :class:`ConfigError` when
    the file is missing, not UTF-8, not YAML or holds a bad value)."""
    return TrainConfig.from_dict(read_yaml_file(path, "config file"))
