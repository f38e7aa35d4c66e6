"""The ``onnxruntime`` backend: the exported encoder on ONNX Runtime's CPU execution provider."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..core.errors import InputError
from ..model.gaussians import FIELDS
from .base import EncoderEngine
from .export import OnnxEncoderInfo, sha256_bytes


class OnnxRuntimeEngine(EncoderEngine):
    """ONNX Runtime session for an exported encoder (see :mod:`.export`).

    Session options: all graph optimizations (``ORT_ENABLE_ALL``: constant folding, fusions such as
    attention / GELU / LayerNorm, layout transforms), sequential execution, ``threads`` intra-op
    threads (``None``/0: ONNX Runtime's default, one per physical core), one inter-op thread.
    ``spin=False`` stops idle worker threads from spinning between calls, which keeps the CPU free
    for the rest of the pipeline when the encoder runs once per frame.
    """

    backend = "onnxruntime"

    def __init__(self, onnx_path: str | Path, threads: int | None = None,
                 providers: Sequence[str] = ("CPUExecutionProvider",), spin: bool = False) -> None:
        import onnxruntime as ort

        path = Path(onnx_path)
        if not path.is_file():
            raise InputError(f"ONNX encoder not found: {path}")
        data = path.read_bytes()
        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        opts.intra_op_num_threads = int(threads or 0)
        opts.inter_op_num_threads = 1
        opts.log_severity_level = 3  # errors only (fp16 graphs log a warning per unfoldable node)
        if not spin:
            opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        try:
            self.session = ort.InferenceSession(data, sess_options=opts, providers=list(providers))
        except Exception as err:  # ORT raises its own exception types for bad files
            raise InputError(f"cannot load ONNX encoder {path}: {str(err).splitlines()[0]}") from None
        meta = self.session.get_modelmeta().custom_metadata_map
        self.info: OnnxEncoderInfo = OnnxEncoderInfo.from_metadata(meta, path, sha256_bytes(data))
        inputs = self.session.get_inputs()
        if len(inputs) != 1 or tuple(inputs[0].shape) != self.info.input_shape:
            raise InputError(f"{path}: graph input {[(i.name, i.shape) for i in inputs]} does not match the "
                             f"metadata {self.info.input_shape}")
        self.input_name = inputs[0].name
        self.output_names = [o.name for o in self.session.get_outputs()]
        if tuple(self.output_names) != self.info.output_names:
            raise InputError(f"{path}: graph outputs {self.output_names} differ from {self.info.output_names}")
        self.input_shape = self.info.clip_shape
        self.focal = self.info.focal
        self.precision = "fp32"
        self.threads = int(threads or 0)
        self.path = path

    def infer(self, clip: np.ndarray) -> Sequence[Any]:
        return self.session.run(self.output_names, {self.input_name: clip})

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "onnx": str(self.path), "onnx_sha256": self.info.sha256,
                "threads": self.threads or "default", "providers": self.session.get_providers()}

    def close(self) -> None:
        self.session = None  # type: ignore[assignment]


def compare_with_torch(model, onnx_path: str | Path, clip: np.ndarray | None = None, threads: int | None = None,
                       seed: int = 0) -> dict[str, dict[str, float]]:
    """Run the ONNX file (ONNX Runtime, CPU) and the torch model on one clip (the export check).

    Returns per output ``{"max_abs": ..., "scale": max |torch output|}``.
    """
    import torch

    engine = OnnxRuntimeEngine(onnx_path, threads=threads)
    if clip is None:
        clip = np.random.default_rng(seed).integers(0, 256, engine.input_shape, dtype=np.uint8)
    x = engine.check_clip(clip)
    got = engine.infer(x)
    with torch.inference_mode():
        ref = model.float().eval().forward_export(torch.from_numpy(x))
    out = {}
    for name, a, b in zip(FIELDS, got, ref):
        b = b.detach().cpu().numpy()
        out[name] = {"max_abs": float(np.abs(np.asarray(a) - b).max()), "scale": float(np.abs(b).max())}
    return out
