"""Synthetic layered scenes with exact ground-truth point tracks (tests, demo, training data)."""

from .clips import make_training_scenes, make_training_sequences, random_scene_config
from .config import TEXTURE_KINDS, SceneConfig
from .exit_reenter import ExitReenterScene, make_exit_reenter_scene
from .layers import Layer
from .motion import PosePath
from .occlusion import OcclusionRevealScene, make_occlusion_reveal_scene
from .scene import SyntheticScene, default_demo_scene, make_scene

__all__ = [
    "TEXTURE_KINDS",
    "ExitReenterScene",
    "Layer",
    "OcclusionRevealScene",
    "PosePath",
    "SceneConfig",
    "SyntheticScene",
    "default_demo_scene",
    "make_exit_reenter_scene",
    "make_occlusion_reveal_scene",
    "make_scene",
    "make_training_scenes",
    "make_training_sequences",
    "random_scene_config",
]
