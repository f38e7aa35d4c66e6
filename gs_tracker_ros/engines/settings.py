"""Encoder engine settings: which backend runs the Gaussian encoder, and from which files.

Kept free of torch / onnx / tensorrt imports so that configuration code (the tracker config, the
ROS parameter table) can use it cheaply. Field types are plain ``str`` / ``int`` with defaults so
the dataclass can be embedded in :class:`~gs_tracker_ros.tracking.config.TrackerConfig` as an
``engine`` section (``tracker.engine.backend`` ... as ROS parameters) without special cases.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ..core.errors import ConfigError

BACKENDS = ("torch", "onnxruntime", "tensorrt")
PRECISIONS = ("fp32", "fp16")
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

    backend: str = "torch"
    model_path: str = ""
    onnx_path: str = ""
    engine_path: str = ""
    precision: str = "fp32"
    cache_dir: str = ""
    threads: int = 0

    def validate(self) -> "EngineSettings":
        if self.backend not in BACKENDS:
            raise ConfigError(f"engine.backend must be one of {', '.join(BACKENDS)}, got {self.backend!r}")
        if self.precision not in PRECISIONS:
            raise ConfigError(f"engine.precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}")
        if self.precision == "fp16" and self.backend == "onnxruntime":
            raise ConfigError("engine.precision fp16 is for the tensorrt (or CUDA torch) backend; "
                              "the onnxruntime CPU backend runs fp32")
        if not isinstance(self.threads, int) or isinstance(self.threads, bool) or not 0 <= self.threads <= 256:
            raise ConfigError(f"engine.threads must be an integer in [0, 256], got {self.threads!r}")
        return self

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> "EngineSettings":
        from ..core.config import config_from_dict

        return config_from_dict(cls, data, prefix="engine.").validate()

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
