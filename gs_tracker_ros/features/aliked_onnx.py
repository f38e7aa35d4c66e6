"""ALIKED descriptor maps on ONNX Runtime (CPU), from an export cached on disk.

:class:`~.aliked.AlikedDense` is exported once per (model, input size) with ``torch.onnx.export``
(opset 17; the deformable convolutions become ``GridSample`` + ``MatMul``) to
``<cache_dir>/<model>-<w>x<h>-<key[:16]>.onnx``. The key hashes the model name, the input
size, the opset, the sha256 of the weight file and :data:`EXPORT_FORMAT`, so new weights or a new
export recipe make a new file. The file is written atomically; a file that ONNX Runtime cannot
load is exported again. ``cache_dir`` defaults to
:func:`~gs_tracker_ros.engines.settings.default_cache_dir` (``$GS_TRACKER_ENGINE_CACHE``, else
``~/.cache/gs_tracker_ros/engines``).
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..core.errors import OutputError
from ..core.output import write_bytes
from ..engines.settings import default_cache_dir
from .aliked import AlikedDense, locate_weights

log = logging.getLogger(__name__)

OPSET = 17
EXPORT_FORMAT = "gs_tracker_ros.aliked-dense-onnx/1"
INPUT_NAME = "image"  # (1, 3, h, w) float32 RGB in [0, 1]
OUTPUT_NAME = "descriptors"  # (1, dim, h, w) float32, unit L2 norm per pixel


def _file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def export_key(model_name: str, hw: tuple[int, int], weights_sha256: str) -> str:
    """Hex digest of everything an exported graph depends on."""
    key = {"format": EXPORT_FORMAT, "model": model_name, "hw": [int(hw[0]), int(hw[1])], "opset": OPSET,
           "weights_sha256": weights_sha256}
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()


def export_onnx_bytes(model: AlikedDense, hw: tuple[int, int]) -> bytes:
    """ONNX graph (bytes) of ``model`` for a fixed ``(1, 3, h, w)`` input."""
    dummy = torch.zeros(1, 3, int(hw[0]), int(hw[1]))
    buffer = io.BytesIO()
    with warnings.catch_warnings(), torch.inference_mode(False), torch.no_grad():
        warnings.simplefilter("ignore")  # TracerWarnings for the shape-derived padding and offset clamp
        torch.onnx.export(model.eval(), (dummy,), buffer, opset_version=OPSET, dynamo=False,
                          input_names=[INPUT_NAME], output_names=[OUTPUT_NAME], do_constant_folding=True)
    return buffer.getvalue()


class AlikedOnnxRuntime:
    """ONNX Runtime sessions of one ALIKED model, one per input size, exported on first use.

    threads: intra-op threads (0: ONNX Runtime's default); idle workers do not spin, so the CPU
    stays free for the rest of the pipeline between frames.
    """

    def __init__(self, model_name: str, threads: int = 0, cache_dir: str | Path | None = None) -> None:
        self.model_name = model_name
        self.threads = int(threads)
        self.cache_dir = Path(cache_dir) if cache_dir else default_cache_dir()
        self.weights_path = locate_weights(model_name)
        self.weights_sha256 = _file_sha256(self.weights_path)
        self._model: AlikedDense | None = None  # loaded only to export
        self._sessions: dict[tuple[int, int], Any] = {}
        self.paths: dict[tuple[int, int], Path] = {}

    def onnx_path(self, hw: tuple[int, int]) -> Path:
        digest = export_key(self.model_name, hw, self.weights_sha256)[:16]
        return self.cache_dir / f"{self.model_name}-{int(hw[1])}x{int(hw[0])}-{digest}.onnx"

    def _session_from(self, data: bytes) -> Any:
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        opts.intra_op_num_threads = self.threads
        opts.inter_op_num_threads = 1
        opts.log_severity_level = 3
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        return ort.InferenceSession(data, sess_options=opts, providers=["CPUExecutionProvider"])

    def session(self, hw: tuple[int, int]) -> Any:
        """The session for ``(1, 3, h, w)`` inputs: from the cache file, else exported and stored."""
        hw = (int(hw[0]), int(hw[1]))
        if hw in self._sessions:
            return self._sessions[hw]
        path = self.onnx_path(hw)
        sess = None
        if path.is_file():
            try:
                sess = self._session_from(path.read_bytes())
                log.info("ALIKED ONNX cache hit: %s", path)
            except Exception as err:  # ORT raises its own types for corrupt files
                log.warning("re-exporting ALIKED ONNX %s: cannot load it (%s)", path, str(err).splitlines()[0])
        if sess is None:
            if self._model is None:
                self._model = AlikedDense.from_wheel(self.model_name)
            log.info("exporting ALIKED %s for %dx%d inputs to %s", self.model_name, hw[1], hw[0], path)
            data = export_onnx_bytes(self._model, hw)
            try:  # a cache: when it cannot be written, the session works from memory all the same
                path.parent.mkdir(parents=True, exist_ok=True)
                write_bytes(path, data)
            except (OSError, OutputError) as err:
                log.warning("ALIKED ONNX not cached: %s", err)
            sess = self._session_from(data)
        self._sessions[hw] = sess
        self.paths[hw] = path
        return sess

    def run(self, image: np.ndarray) -> np.ndarray:
        """``(1, 3, h, w) float32`` RGB in [0, 1] -> descriptors ``(dim, h, w) float32``."""
        sess = self.session(image.shape[-2:])
        return sess.run([OUTPUT_NAME], {INPUT_NAME: image})[0][0]
