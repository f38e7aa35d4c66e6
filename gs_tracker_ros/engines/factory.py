"""Build an :class:`~.base.EncoderEngine` by backend name: :func:`build_engine`.

The backend modules are imported when chosen (onnxruntime and tensorrt are optional installs).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Callable

from ..core.errors import ConfigError, InputError
from .base import EncoderEngine
from .files import checkpoint_path, resolve_onnx
from .settings import BACKENDS, PRECISIONS, EngineSettings

log = logging.getLogger(__name__)


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

    return TorchEngine.from_checkpoint(checkpoint_path(model_path), device=device or "cpu", precision=precision,
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


def engine_from_settings(settings: EngineSettings, device: str | None = None) -> EncoderEngine:
    """The engine ``settings`` describe (validated first), through :func:`build_engine`."""
    settings.validate()
    return build_engine(
        settings.backend,
        model_path=settings.model_path or None,
        onnx_path=settings.onnx_path or None,
        engine_path=settings.engine_path or None,
        precision=settings.precision,
        cache_dir=settings.cache_dir or None,
        threads=settings.threads or None,
        device=device,
    )
