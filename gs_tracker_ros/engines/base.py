"""One interface for the Gaussian encoder, whatever runs it: :class:`EncoderEngine` and its errors.

The factory is :func:`~gs_tracker_ros.engines.factory.build_engine`; the checkpoint / ONNX file
helpers are in :mod:`.files`. This module imports nothing else from the package's engines.

An engine is a callable ``engine(clip uint8 (T, H, W, 3)) -> GaussianClip`` with a fixed input
shape (static clip shape, as exported). The Gaussian motion source
(:class:`~gs_tracker_ros.motion.gaussian.GaussianMotionSource`) takes any such callable and reads
``num_frames`` / ``input_size`` from it. Backends:

* ``torch``       - the checkpoint in eager PyTorch (:mod:`.torch_engine`), CPU or CUDA.
* ``onnxruntime`` - the exported ONNX on ONNX Runtime's CPU execution provider (:mod:`.onnxruntime_engine`).
* ``tensorrt``    - a TensorRT plan built from the ONNX on first use and cached on disk (:mod:`.tensorrt_engine`).

Every backend feeds the network the same float32 clip ``(1, T, H, W, 3)`` = ``uint8 / 255`` and
returns the tensors of :data:`~gs_tracker_ros.model.gaussians.FIELDS`, so their outputs agree up
to floating-point error (see test/test_engines.py for the measured differences).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, Sequence

import numpy as np

from ..core.errors import InputError, TrackerError
from ..model.gaussians import FIELDS, GaussianClip


class EngineUnavailableError(TrackerError):
    """The backend cannot run on this machine (no CUDA GPU, no tensorrt module, ...)."""


class EngineBuildError(TrackerError):
    """Building or loading an engine failed (parser / builder errors, unreadable plan)."""


class EncoderEngine(ABC):
    """``engine(clip) -> GaussianClip`` for a static clip shape.

    Attributes:
        backend: ``"torch"``, ``"onnxruntime"`` or ``"tensorrt"``.
        input_shape: ``(T, H, W, 3)`` the clip must have (frames resized by the caller).
        focal: relative focal length of the encoder's camera (``fx = focal * W``).
        precision: ``"fp32"`` or ``"fp16"``.
    """

    backend: str = "?"
    input_shape: tuple[int, int, int, int]
    focal: float = 1.0
    precision: str = "fp32"

    # ------------------------------------------------------------------ shape helpers
    @property
    def num_frames(self) -> int:
        return int(self.input_shape[0])

    @property
    def input_size(self) -> tuple[int, int]:
        """``(height, width)`` the frames must be resized to."""
        return int(self.input_shape[1]), int(self.input_shape[2])

    def check_clip(self, clip: Any) -> np.ndarray:
        """``(T, H, W, 3)`` or ``(1, T, H, W, 3)`` uint8 (or float in [0, 1]) -> float32 ``(1, T, H, W, 3)``."""
        if hasattr(clip, "detach"):  # a torch tensor
            clip = clip.detach().cpu().numpy()
        arr = np.asarray(clip)
        if arr.ndim == 5 and arr.shape[0] == 1:
            arr = arr[0]
        if arr.shape != tuple(self.input_shape):
            raise InputError(f"{self.backend} encoder expects a clip of shape {tuple(self.input_shape)} "
                             f"(T, H, W, 3), got {arr.shape}")
        if arr.dtype == np.uint8:
            out = arr.astype(np.float32) / np.float32(255.0)
        elif np.issubdtype(arr.dtype, np.floating):
            out = arr.astype(np.float32, copy=False)
        else:
            raise InputError(f"{self.backend} encoder expects a uint8 (or float in [0, 1]) clip, got {arr.dtype}")
        return np.ascontiguousarray(out[None])

    # ------------------------------------------------------------------ call
    def __call__(self, clip: Any) -> GaussianClip:
        x = self.check_clip(clip)
        outputs = self.infer(x)
        if len(outputs) != len(FIELDS):
            raise EngineBuildError(f"{self.backend} encoder returned {len(outputs)} outputs, expected {len(FIELDS)}")
        return GaussianClip.from_arrays(list(outputs), height=self.input_shape[1], width=self.input_shape[2],
                                        focal=self.focal)

    @abstractmethod
    def infer(self, clip: np.ndarray) -> Sequence[Any]:
        """Float32 clip ``(1, T, H, W, 3)`` in [0, 1] -> arrays / CPU tensors in :data:`FIELDS` order."""

    def describe(self) -> dict[str, Any]:
        """A JSON-friendly summary (backend, shape, precision and backend details)."""
        return {"backend": self.backend, "input_shape": list(self.input_shape), "precision": self.precision,
                "focal": self.focal}

    def close(self) -> None:  # optional hook
        """Release backend resources (sessions, GPU buffers)."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}(input_shape={tuple(self.input_shape)}, precision={self.precision!r})"
