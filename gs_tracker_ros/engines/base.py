"""One interface for the Gaussian encoder, whatever runs it: :class:`EncoderEngine` + :func:`build_engine`.

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

import logging
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from ..core.errors import ConfigError, InputError, TrackerError
from ..model.checkpoint import DEFAULT_CHECKPOINT
from ..model.gaussians import FIELDS, GaussianClip
from .settings import BACKENDS, PRECISIONS, default_cache_dir

log = logging.getLogger(__name__)


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


# ---------------------------------------------------------------------------------------------- files
def _checkpoint_path(model_path: str | Path | None) -> Path:
    path = Path(model_path) if model_path else DEFAULT_CHECKPOINT
    if not path.is_file():
        what = "checkpoint" if model_path else "shipped default checkpoint"
        raise InputError(f"{what} not found: {path}")
    return path


def resolve_onnx(model_path: str | Path | None, onnx_path: str | Path | None,
                 cache_dir: str | Path | None) -> tuple[Path, bool]:
    """The ONNX file to run: ``(path, managed)``.

    ``onnx_path`` is used when it exists; when it does not, the checkpoint is exported there (if
    ``model_path`` is given). Without ``onnx_path`` the checkpoint (default: the shipped one) is
    exported once into ``cache_dir`` as ``gmae-<checkpoint sha256[:16]>.onnx`` (``managed=True``:
    the file belongs to the cache and is re-exported if it turns out unreadable).
    """
    from .export import export_checkpoint, sha256_file

    if onnx_path:
        path = Path(onnx_path)
        if path.is_file():
            return path, False
        if not model_path:
            raise InputError(f"ONNX encoder not found: {path} "
                             f"(create it with: gs-tracker export CHECKPOINT --onnx {path})")
        export_checkpoint(_checkpoint_path(model_path), path)
        return path, False
    ckpt = _checkpoint_path(model_path)
    sha = sha256_file(ckpt)
    folder = Path(cache_dir) if cache_dir else default_cache_dir()
    path = folder / f"gmae-{sha[:16]}.onnx"
    if not path.is_file():
        log.info("exporting %s to %s", ckpt, path)
        export_checkpoint(ckpt, path, checkpoint_sha=sha)
    return path, True


# ---------------------------------------------------------------------------------------------- factory
def build_engine(backend: str, model_path: str | Path | None = None, onnx_path: str | Path | None = None,
                 engine_path: str | Path | None = None, precision: str = "fp32",
                 cache_dir: str | Path | None = None, threads: int | None = None,
                 device: str | None = None) -> EncoderEngine:
    """Build the Gaussian encoder engine for ``backend``.

    Args:
        backend: ``torch``, ``onnxruntime`` or ``tensorrt``.
        model_path: checkpoint (default: the shipped one). ``torch`` loads it; the other backends
            export it to ONNX when there is no ONNX file yet.
        onnx_path: exported encoder for ``onnxruntime`` / ``tensorrt``.
        engine_path: TensorRT plan file (default: named by the cache key inside ``cache_dir``).
        precision: ``fp32`` or ``fp16`` (``tensorrt``; ``torch`` on CUDA).
        cache_dir: where exported ONNX files and TensorRT plans are kept (default: :func:`default_cache_dir`).
        threads: CPU threads (``onnxruntime`` intra-op threads; ``torch``: ``torch.set_num_threads``).
        device: ``torch``: ``"cpu"`` (default) or ``"cuda[:i]"``; ``tensorrt``: the CUDA device (default ``cuda:0``).

    Raises:
        ConfigError: unknown backend / precision, or a combination a backend does not support.
        InputError: a missing or unreadable checkpoint / ONNX file (the message names it).
        EngineUnavailableError: ``tensorrt`` without the tensorrt module or without a CUDA GPU.
    """
    if backend not in BACKENDS:
        raise ConfigError(f"unknown encoder backend {backend!r}; choose one of: {', '.join(BACKENDS)}")
    if precision not in PRECISIONS:
        raise ConfigError(f"unknown precision {precision!r}; choose one of: {', '.join(PRECISIONS)}")
    if threads is not None and (int(threads) < 0 or int(threads) > 256):
        raise ConfigError(f"threads must be in [0, 256], got {threads}")
    return ENGINE_BUILDERS[backend](model_path=model_path, onnx_path=onnx_path, engine_path=engine_path,
                                    precision=precision, cache_dir=cache_dir, threads=threads, device=device)


# ---------------------------------------------------------------------------------------------- backends
# One builder per backend, same keyword arguments as build_engine. The backend modules are imported
# when chosen: onnxruntime and tensorrt are optional installs.
def _build_torch(model_path, onnx_path, engine_path, precision, cache_dir, threads, device) -> EncoderEngine:
    from .torch_engine import TorchEngine

    return TorchEngine.from_checkpoint(_checkpoint_path(model_path), device=device or "cpu", precision=precision,
                                       threads=threads)


def _build_onnxruntime(model_path, onnx_path, engine_path, precision, cache_dir, threads, device) -> EncoderEngine:
    from .onnxruntime_engine import OnnxRuntimeEngine

    if precision != "fp32":
        raise ConfigError("the onnxruntime backend runs fp32 on the CPU; fp16 is for tensorrt")
    path, managed = resolve_onnx(model_path, onnx_path, cache_dir)
    try:
        return OnnxRuntimeEngine(path, threads=threads)
    except InputError:
        if not managed:
            raise
        log.warning("cached ONNX %s is unreadable; exporting it again", path)
        path.unlink(missing_ok=True)
        path, _ = resolve_onnx(model_path, None, cache_dir)
        return OnnxRuntimeEngine(path, threads=threads)


def _build_tensorrt(model_path, onnx_path, engine_path, precision, cache_dir, threads, device) -> EncoderEngine:
    from .tensorrt_engine import TensorRTEngine, require_tensorrt_and_gpu

    require_tensorrt_and_gpu(device)  # fail before exporting anything on a machine that cannot run it
    if engine_path and Path(engine_path).is_file() and not onnx_path and not model_path:
        return TensorRTEngine(onnx_path=None, engine_path=engine_path, precision=precision,
                              cache_dir=cache_dir, device=device)
    path, _ = resolve_onnx(model_path, onnx_path, cache_dir)
    return TensorRTEngine(onnx_path=path, engine_path=engine_path, precision=precision, cache_dir=cache_dir,
                          device=device)


ENGINE_BUILDERS: dict[str, Callable[..., EncoderEngine]] = {
    "torch": _build_torch,
    "onnxruntime": _build_onnxruntime,
    "tensorrt": _build_tensorrt,
}
"""The backends, by name (the same names as :data:`~.settings.BACKENDS`, which has no torch import)."""
