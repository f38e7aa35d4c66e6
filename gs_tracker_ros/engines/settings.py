"""Encoder engine settings: which backend runs the Gaussian encoder, and from which files.

Kept free of torch / onnx / tensorrt imports so that configuration code (the tracker config, the
ROS parameter table) can use it cheaply. Fields are plain ``str`` / ``int`` (choices as ``Literal``) so
the dataclass can be embedded in :class:`~gs_tracker_ros.tracking.config.TrackerConfig` as an
``engine`` section (``tracker.engine.backend`` ... as ROS parameters) without special cases.
"""

from __future__ import annotations

import os
import typing
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

from ..core.config import check_settings, config_from_dict, setting
from ..core.errors import ConfigError

Backend = Literal["torch", "onnxruntime", "tensorrt"]
Precision = Literal["fp32", "fp16"]
BACKENDS = typing.get_args(Backend)
PRECISIONS = typing.get_args(Precision)
CACHE_ENV = "GS_TRACKER_ENGINE_CACHE"


def default_cache_dir() -> Path:
    """``$GS_TRACKER_ENGINE_CACHE``, else ``$XDG_CACHE_HOME/gs_tracker_ros/engines`` (``~/.cache/...``)."""
    env = os.environ.get(CACHE_ENV)
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base).expanduser() / "gs_tracker_ros" / "engines"


@dataclass
class EngineSettings:
    """How to build the Gaussian encoder engine.

    Attributes:
        backend: ``torch`` (checkpoint, eager PyTorch), ``onnxruntime`` (exported ONNX on the CPU
            execution provider) or ``tensorrt`` (engine built from the ONNX on a CUDA GPU, cached).
        model_path: Video-GMAE checkpoint (``.pt``); empty = the shipped default checkpoint.
            ``onnxruntime`` / ``tensorrt`` export it to ONNX when no ``onnx_path`` exists yet.
        onnx_path: exported encoder (``gs-tracker export``); empty = exported into ``cache_dir``.
        engine_path: TensorRT plan file; empty = a file in ``cache_dir`` named by the cache key.
        precision: ``fp32`` or ``fp16`` (fp16: TensorRT only).
        cache_dir: folder for exported ONNX files and TensorRT plans; empty = :func:`default_cache_dir`.
        threads: CPU threads of the ``onnxruntime`` / ``torch`` backends; 0 = the library default.
    """

    backend: Backend = "torch"
    model_path: str = ""
    onnx_path: str = ""
    engine_path: str = ""
    precision: Precision = "fp32"
    cache_dir: str = ""
    threads: int = setting(0, range=(0, 256), note="0 = the library default")

    def validate(self) -> "EngineSettings":
        check_settings(self, "engine.")
        if self.precision == "fp16" and self.backend == "onnxruntime":
            raise ConfigError("engine.precision fp16 is for the tensorrt (or CUDA torch) backend; "
                              "the onnxruntime CPU backend runs fp32")
        return self

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> "EngineSettings":
        return config_from_dict(cls, data, prefix="engine.").validate()

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
