"""The ``tensorrt`` backend: a TensorRT plan built from the exported ONNX, cached on disk, run on a CUDA GPU.

Build (first use, or when the cached plan does not fit; see :mod:`.cache`)::

    Builder -> network (ONNX parser) -> builder config (workspace limit; precision) -> serialized plan

Precision: ``fp32`` builds the graph as exported, in IEEE fp32 (TF32 off). ``fp16`` sets the
builder's FP16 flag where the installed TensorRT has one (10.x, weak typing: TensorRT picks fp16
kernels per layer). TensorRT 11.x removed the precision flags (networks are always strongly
typed), so there the ONNX graph is converted to fp16 first (fp32 inputs/outputs; normalisations,
exp/log and the Gaussian decoding kept in fp32; see
:func:`~gs_tracker_ros.engines.export.fp16_onnx_bytes`) and built as it is.

Run: the runtime deserializes the plan, one execution context gets device buffers that are torch
CUDA tensors (addresses bound once with ``set_tensor_address``), and each call copies the clip
in, enqueues the network on a private CUDA stream (``execute_async_v3``) and copies the outputs out.

Without the ``tensorrt`` module or without a CUDA GPU every entry point raises
:class:`~gs_tracker_ros.engines.base.EngineUnavailableError` with the reason.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..core.errors import ConfigError, InputError
from ..model.gaussians import FIELDS
from .base import EncoderEngine, EngineBuildError, EngineUnavailableError
from .cache import CacheKey, CacheResult, EngineCache
from .export import OnnxEncoderInfo, fp16_onnx_bytes, read_onnx_info

log = logging.getLogger(__name__)

INSTALL_HINT = ("install the GPU extras on a CUDA machine (CUDA torch, then "
                "`.venv/bin/pip install -r requirements-gpu.txt`, see docs/engines.md), "
                "or use the onnxruntime / torch backend")
DEFAULT_WORKSPACE_MB = 1024


# ---------------------------------------------------------------------------------------------- availability
def _tensorrt_problem() -> str | None:
    try:
        import tensorrt  # noqa: F401 - imported only to see whether it is installed
    except ImportError as err:
        return f"the 'tensorrt' Python package is not installed ({err})"
    return None


def _cuda_problem() -> str | None:
    import torch

    if torch.cuda.is_available():
        return None
    if not torch.version.cuda:
        return f"no CUDA GPU (torch {torch.__version__} is a CPU-only build)"
    return f"no CUDA GPU (torch {torch.__version__}, CUDA {torch.version.cuda}, finds no device)"


def _unavailable(problems: list[str]) -> EngineUnavailableError:
    return EngineUnavailableError("the tensorrt backend cannot run here: " + "; ".join(problems) + ". "
                                  + INSTALL_HINT[0].upper() + INSTALL_HINT[1:])


def import_tensorrt():
    """The ``tensorrt`` module, or :class:`EngineUnavailableError` saying it is not installed."""
    problem = _tensorrt_problem()
    if problem:
        raise _unavailable([problem])
    import tensorrt as trt

    return trt


def cuda_device(device: str | None = None):
    """The CUDA ``torch.device`` to run on, or :class:`EngineUnavailableError` saying why there is none."""
    import torch

    problem = _cuda_problem()
    if problem:
        raise _unavailable([problem])
    dev = torch.device(device or "cuda")
    if dev.type != "cuda":
        raise ConfigError(f"the tensorrt backend runs on a CUDA device, got device {device!r}")
    if dev.index is None:
        dev = torch.device("cuda", torch.cuda.current_device())
    if dev.index >= torch.cuda.device_count():
        raise EngineUnavailableError(f"CUDA device {dev} does not exist ({torch.cuda.device_count()} visible)")
    return dev


def require_tensorrt_and_gpu(device: str | None = None):
    """``(tensorrt module, torch CUDA device)``, or one error naming everything that is missing."""
    problems = [p for p in (_tensorrt_problem(), _cuda_problem()) if p]
    if problems:
        raise _unavailable(problems)
    return import_tensorrt(), cuda_device(device)


def gpu_name(dev) -> str:
    import torch

    return str(torch.cuda.get_device_name(dev))


# ---------------------------------------------------------------------------------------------- build
def has_fp16_flag(trt) -> bool:
    """True for TensorRT versions with weak typing (``BuilderFlag.FP16``; removed in 11.x)."""
    return hasattr(trt.BuilderFlag, "FP16")


def build_plan(trt, onnx_bytes: bytes, precision: str = "fp32", logger=None,
               workspace_mb: int = DEFAULT_WORKSPACE_MB) -> bytes:
    """Parse ``onnx_bytes`` and build a serialized TensorRT plan (needs a CUDA GPU)."""
    if precision not in ("fp32", "fp16"):
        raise ConfigError(f"TensorRT precision must be fp32 or fp16, got {precision!r}")
    logger = logger or trt.Logger(trt.Logger.WARNING)
    weak_fp16 = precision == "fp16" and has_fp16_flag(trt)
    if precision == "fp16" and not weak_fp16:
        onnx_bytes = fp16_onnx_bytes(onnx_bytes)  # strongly typed: fp16 is part of the graph
    builder = trt.Builder(logger)
    network = builder.create_network()  # explicit batch (10.x), strongly typed (11.x)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse(onnx_bytes):
        errors = [str(parser.get_error(i)) for i in range(parser.num_errors)]
        raise EngineBuildError("TensorRT's ONNX parser rejected the encoder: " + " | ".join(errors or ["?"]))
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(workspace_mb) << 20)
    if weak_fp16:
        config.set_flag(trt.BuilderFlag.FP16)
    elif precision == "fp32" and hasattr(trt.BuilderFlag, "TF32"):
        config.clear_flag(trt.BuilderFlag.TF32)  # fp32 means IEEE fp32 (TF32 matmuls are on by default)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise EngineBuildError("TensorRT failed to build the encoder engine (see the TensorRT log above)")
    return bytes(serialized)


def _torch_dtype(trt, dt):
    import torch

    table = {"FLOAT": torch.float32, "HALF": torch.float16, "BF16": torch.bfloat16, "INT32": torch.int32,
             "INT64": torch.int64, "INT8": torch.int8, "UINT8": torch.uint8, "BOOL": torch.bool}
    for name, tdt in table.items():
        if hasattr(trt.DataType, name) and dt == getattr(trt.DataType, name):
            return tdt
    raise EngineBuildError(f"unsupported TensorRT I/O data type {dt}")


# ---------------------------------------------------------------------------------------------- engine
class TensorRTEngine(EncoderEngine):
    """TensorRT execution of the exported encoder, with the plan cached in ``cache_dir``.

    Args:
        onnx_path: exported encoder; the plan is built from it and checked against its sha256.
            None: run ``engine_path`` as it is (its sidecar key must match this TensorRT and GPU).
        engine_path: plan file (default: ``cache_dir/gmae-<precision>-<key digest>.plan``).
        precision: ``fp32`` or ``fp16``.
        cache_dir: plan cache folder (default :func:`~gs_tracker_ros.engines.settings.default_cache_dir`).
        device: CUDA device (default the current one).
        workspace_mb: builder workspace limit.
    """

    backend = "tensorrt"

    def __init__(self, onnx_path: str | Path | None = None, engine_path: str | Path | None = None,
                 precision: str = "fp32", cache_dir: str | Path | None = None, device: str | None = None,
                 workspace_mb: int = DEFAULT_WORKSPACE_MB, verbose: bool = False) -> None:
        import torch

        if onnx_path is None and engine_path is None:
            raise ConfigError("the tensorrt backend needs onnx_path (to build a plan) or engine_path")
        trt, dev = require_tensorrt_and_gpu(device)
        self._trt, self.device, self.precision = trt, dev, precision
        self.logger = trt.Logger(trt.Logger.VERBOSE if verbose else trt.Logger.WARNING)
        self.runtime = trt.Runtime(self.logger)
        self.cache = EngineCache(cache_dir)
        self.key = CacheKey("", str(trt.__version__), gpu_name(dev), precision)
        with torch.cuda.device(dev):
            if onnx_path is not None:
                info = read_onnx_info(onnx_path)
                self.key = CacheKey(info.sha256, self.key.tensorrt_version, self.key.gpu_name, precision)
                onnx_bytes = Path(onnx_path).read_bytes()
                result = self.cache.load_or_build(
                    self.key,
                    build=lambda: build_plan(trt, onnx_bytes, precision, self.logger, workspace_mb),
                    deserialize=self.runtime.deserialize_cuda_engine,
                    plan=engine_path,
                    extra=info.metadata(),
                )
            else:
                data, meta = self.cache.check_plan_only(Path(engine_path), self.key)
                engine = self.runtime.deserialize_cuda_engine(data)
                if engine is None:
                    raise EngineBuildError(f"TensorRT could not deserialize the plan {engine_path}; "
                                           "give onnx_path so it can be rebuilt")
                info = OnnxEncoderInfo.from_metadata(meta.get("encoder", {}), Path(engine_path))
                result = CacheResult(engine, Path(engine_path), "hit")
        self.info = info
        self.engine = result.engine
        self.cache_status, self.cache_reason, self.plan_path = result.status, result.reason, result.plan_path
        self.input_shape = info.clip_shape
        self.focal = info.focal
        self._setup_io(torch)

    def _setup_io(self, torch) -> None:
        trt, eng = self._trt, self.engine
        self.context = eng.create_execution_context()
        if self.context is None:
            raise EngineBuildError(f"TensorRT could not create an execution context for {self.plan_path}")
        self._buffers: dict[str, Any] = {}
        inputs, outputs = [], []
        for i in range(eng.num_io_tensors):
            name = eng.get_tensor_name(i)
            shape = tuple(int(d) for d in eng.get_tensor_shape(name))
            if any(d < 0 for d in shape):
                raise EngineBuildError(f"{self.plan_path}: tensor {name} has a dynamic shape {shape}")
            buf = torch.empty(shape, dtype=_torch_dtype(trt, eng.get_tensor_dtype(name)), device=self.device)
            self.context.set_tensor_address(name, buf.data_ptr())
            self._buffers[name] = buf
            (inputs if eng.get_tensor_mode(name) == trt.TensorIOMode.INPUT else outputs).append(name)
        if inputs != [self.info.input_name] or tuple(self._buffers[inputs[0]].shape) != self.info.input_shape:
            raise EngineBuildError(f"{self.plan_path}: engine inputs {inputs} do not match the encoder "
                                   f"({self.info.input_name} {self.info.input_shape})")
        missing = [f for f in FIELDS if f not in outputs]
        if missing:
            raise EngineBuildError(f"{self.plan_path}: engine lacks outputs {missing}")
        self.input_name = inputs[0]
        self.stream = torch.cuda.Stream(device=self.device)

    def infer(self, clip: np.ndarray) -> Sequence[Any]:
        import torch

        with torch.cuda.device(self.device), torch.cuda.stream(self.stream):
            self._buffers[self.input_name].copy_(torch.from_numpy(clip))
            if not self.context.execute_async_v3(self.stream.cuda_stream):
                raise EngineBuildError("TensorRT execution of the encoder failed (see the TensorRT log)")
            outs = [self._buffers[name].float() for name in FIELDS]
            self.stream.synchronize()
            return [o.cpu() for o in outs]

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "plan": str(self.plan_path), "cache": self.cache_status,
                "cache_reason": self.cache_reason, "key": self.key.to_dict(), "device": str(self.device)}

    def close(self) -> None:
        self.context = None
        self.engine = None
        self._buffers = {}


def build_engine_file(onnx_path: str | Path, engine_path: str | Path, precision: str = "fp32",
                      device: str | None = None, workspace_mb: int = DEFAULT_WORKSPACE_MB) -> TensorRTEngine:
    """Build (or reuse, if its key matches) the plan ``engine_path`` for ``onnx_path`` (``gs-tracker export --engine``)."""
    if not Path(onnx_path).is_file():
        raise InputError(f"ONNX encoder not found: {onnx_path}")
    return TensorRTEngine(onnx_path=onnx_path, engine_path=engine_path, precision=precision, device=device,
                          workspace_mb=workspace_mb)
