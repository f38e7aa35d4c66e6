"""Numpy-facing dense descriptor extractor: ``uint8 (H, W, 3)`` RGB frame -> ALIKED descriptor map.

The frame is resized by ``scale`` (``cv2.INTER_AREA``: each map pixel averages the frame pixels it
covers, so the pixel-centre mapping of :class:`DescriptorMap` holds), scaled to [0, 1] and run
through :class:`~.aliked.AlikedDense` on CPU torch (``torch.inference_mode``) or through its ONNX
export on ONNX Runtime (:mod:`.aliked_onnx`; the two agree to ~1e-5, see the tests).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch

from ..core.errors import check_range
from .aliked import ALIKED_SIZES, AlikedDense

BACKENDS = ("torch", "onnxruntime")


@dataclass
class DenseDescriptorConfig:
    """How :class:`DenseDescriptorExtractor` computes descriptor maps.

    model_name: one of :data:`~.aliked.ALIKED_SIZES` (``aliked-t16``: 64-d, fastest;
        ``aliked-n16``: 128-d).
    scale: the network runs on the frame resized by this factor (0 < scale <= 1; 0.5 halves each
        side), so the map has ``round(H * scale) x round(W * scale)`` pixels.
    threads: intra-op threads; 0 keeps the library default. For ``torch`` this is
        ``torch.set_num_threads`` (a process-wide setting), for ``onnxruntime`` the session's.
    backend: ``torch`` or ``onnxruntime`` (exported once per model and map size into
        ``cache_dir``, then reused; faster on CPU).
    cache_dir: where ONNX exports are kept; empty: the engine cache directory
        (``$GS_TRACKER_ENGINE_CACHE``, else ``~/.cache/gs_tracker_ros/engines``).
    """

    model_name: str = "aliked-n16"
    scale: float = 0.5
    threads: int = 0
    backend: str = "torch"
    cache_dir: str = ""

    def validate(self) -> None:
        check_range(self.model_name in ALIKED_SIZES, "features.model_name", self.model_name,
                    "one of " + ", ".join(ALIKED_SIZES))
        check_range(0.0 < float(self.scale) <= 1.0, "features.scale", self.scale, "in (0, 1]")
        check_range(int(self.threads) >= 0, "features.threads", self.threads, ">= 0")
        check_range(self.backend in BACKENDS, "features.backend", self.backend, "one of " + ", ".join(BACKENDS))


@dataclass
class DescriptorMap:
    """Dense descriptors of one frame at the reduced resolution.

    descriptors: ``(dim, h, w) float32``, unit L2 norm per pixel (cosine similarity = dot product).
    scale_xy: ``(sx, sy) = (w / W, h / H)`` for a ``W x H`` frame. Frame pixel (x, y) (origin at the
        centre of the top-left pixel, x right, y down) is map pixel ``((x + 0.5) * sx - 0.5, (y + 0.5) * sy - 0.5)``.
    """

    descriptors: np.ndarray
    scale_xy: tuple[float, float]

    def to_map(self, xy: np.ndarray) -> np.ndarray:
        """Frame pixels ``(N, 2)`` -> map pixels ``(N, 2)`` (float64)."""
        return (np.asarray(xy, np.float64) + 0.5) * np.asarray(self.scale_xy) - 0.5

    def to_frame(self, xy: np.ndarray) -> np.ndarray:
        """Map pixels ``(N, 2)`` -> frame pixels ``(N, 2)`` (float64)."""
        return (np.asarray(xy, np.float64) + 0.5) / np.asarray(self.scale_xy) - 0.5


class DenseDescriptorExtractor:
    """ALIKED descriptor maps of ``uint8 (H, W, 3)`` RGB frames, on CPU."""

    def __init__(self, config: DenseDescriptorConfig | None = None) -> None:
        self.config = config or DenseDescriptorConfig()
        self.config.validate()
        self.dim = ALIKED_SIZES[self.config.model_name].dim
        self.model: AlikedDense | None = None
        self.runtime = None
        if self.config.backend == "onnxruntime":
            from .aliked_onnx import AlikedOnnxRuntime

            self.runtime = AlikedOnnxRuntime(self.config.model_name, int(self.config.threads),
                                             Path(self.config.cache_dir) if self.config.cache_dir else None)
        else:
            if self.config.threads:
                torch.set_num_threads(int(self.config.threads))
            self.model = AlikedDense.from_wheel(self.config.model_name)

    def map_size(self, frame_hw: tuple[int, int]) -> tuple[int, int]:
        """``(h, w)`` of the descriptor map for a frame of ``frame_hw = (H, W)`` pixels."""
        s = float(self.config.scale)
        return max(1, int(round(frame_hw[0] * s))), max(1, int(round(frame_hw[1] * s)))

    def network_input(self, rgb: np.ndarray) -> np.ndarray:
        """``(H, W, 3) uint8`` RGB -> the resized ``(1, 3, h, w) float32`` network input in [0, 1]."""
        if not isinstance(rgb, np.ndarray) or rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
            got = f"{rgb.dtype} {rgb.shape}" if isinstance(rgb, np.ndarray) else type(rgb).__name__
            raise ValueError(f"expected an (H, W, 3) uint8 RGB frame, got {got}")
        h, w = self.map_size(rgb.shape[:2])
        small = rgb if (h, w) == rgb.shape[:2] else cv2.resize(rgb, (w, h), interpolation=cv2.INTER_AREA)
        return np.ascontiguousarray(small.transpose(2, 0, 1)[None], dtype=np.float32) / np.float32(255.0)

    def compute(self, rgb: np.ndarray) -> DescriptorMap:
        """Descriptor map of one ``(H, W, 3) uint8`` RGB frame."""
        x = self.network_input(rgb)
        if self.runtime is not None:
            desc = self.runtime.run(x)  # (dim, h, w)
        else:
            with torch.inference_mode():
                desc = self.model(torch.from_numpy(x))[0].numpy()  # (dim, h, w)
        h, w = desc.shape[-2:]
        return DescriptorMap(np.ascontiguousarray(desc, dtype=np.float32), (w / rgb.shape[1], h / rgb.shape[0]))
