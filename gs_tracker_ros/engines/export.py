"""Export the Video-GMAE encoder to ONNX with a static clip shape, and read exported files back.

The exported graph takes ``clip`` float32 ``(1, T, H, W, 3)`` (RGB in [0, 1], i.e. uint8 / 255)
and returns the tensors the Gaussian motion source needs, named as
:data:`~gs_tracker_ros.model.gaussians.FIELDS`::

    means (1, T, N, 3)   quats (1, N, 4)   log_scales (1, N, 3)   opacities (1, N)   colors (1, T, N, 3)

``metadata_props`` of the ONNX model carry everything needed to use the file without the
checkpoint: ``format``, ``model_config`` (JSON), ``input_name``, ``input_shape`` (JSON),
``output_names`` (JSON), ``focal``, ``checkpoint`` (file name) and ``checkpoint_sha256``.

The TorchScript-based exporter (``dynamo=False``) is used: it needs no extra package (the dynamo
exporter needs ``onnxscript``) and gives a plain static graph that TensorRT's ONNX parser reads.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from ..core.errors import ConfigError, InputError
from ..core.output import write_bytes
from ..model.gaussians import FIELDS

FORMAT = "gs_tracker_ros.gmae-encoder/1"
INPUT_NAME = "clip"
DEFAULT_OPSET = 17
MIN_OPSET = 17  # LayerNormalization
# Ops kept in fp32 when converting the graph to fp16 for strongly typed TensorRT (TensorRT 11 has
# no FP16 builder flag): normalisations and the transcendental ops of the Gaussian decoding.
FP32_OPS = ("LayerNormalization", "ReduceL2", "ReduceMean", "Pow", "Sqrt", "Exp", "Log", "Sin", "Cos")


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


def parse_size(text: str) -> tuple[int, int]:
    """``"HxW"`` (or a single ``"S"`` for a square) -> ``(H, W)``."""
    m = re.fullmatch(r"\s*(\d+)\s*(?:[xX]\s*(\d+))?\s*", str(text))
    if not m:
        raise ConfigError(f"size must be HxW (e.g. 64x64), got {text!r}")
    h = int(m.group(1))
    w = int(m.group(2)) if m.group(2) else h
    return h, w


@dataclass(frozen=True)
class OnnxEncoderInfo:
    """What an exported encoder file is, read from its ``metadata_props``."""

    path: Path
    sha256: str
    input_name: str
    input_shape: tuple[int, ...]  # (1, T, H, W, 3)
    output_names: tuple[str, ...]
    focal: float
    model_config: dict = field(default_factory=dict)
    checkpoint: str = ""
    checkpoint_sha256: str = ""

    @property
    def clip_shape(self) -> tuple[int, int, int, int]:
        """``(T, H, W, 3)``: the shape an engine's ``__call__`` takes."""
        return tuple(int(v) for v in self.input_shape[1:])  # type: ignore[return-value]

    def metadata(self) -> dict[str, str]:
        return {
            "format": FORMAT,
            "model_config": json.dumps(self.model_config, sort_keys=True),
            "input_name": self.input_name,
            "input_shape": json.dumps(list(self.input_shape)),
            "output_names": json.dumps(list(self.output_names)),
            "focal": repr(float(self.focal)),
            "checkpoint": self.checkpoint,
            "checkpoint_sha256": self.checkpoint_sha256,
        }

    @staticmethod
    def from_metadata(meta: dict[str, str], path: str | Path, sha256: str = "") -> "OnnxEncoderInfo":
        path = Path(path)
        if meta.get("format") != FORMAT:
            raise InputError(f"{path} is not a gs_tracker_ros encoder export (metadata format "
                             f"{meta.get('format')!r}, expected {FORMAT!r}); re-export it with gs-tracker export")
        try:
            shape = tuple(int(v) for v in json.loads(meta["input_shape"]))
            outputs = tuple(json.loads(meta["output_names"]))
            cfg = json.loads(meta.get("model_config", "{}"))
            focal = float(meta.get("focal", cfg.get("focal", 1.0)))
        except (KeyError, ValueError, TypeError) as err:
            raise InputError(f"{path}: unreadable encoder metadata ({err})") from None
        if len(shape) != 5 or shape[0] != 1 or shape[4] != 3:
            raise InputError(f"{path}: input shape {shape} is not (1, T, H, W, 3)")
        if outputs != FIELDS:
            raise InputError(f"{path}: outputs {outputs} are not {FIELDS}")
        return OnnxEncoderInfo(path, sha256, meta.get("input_name", INPUT_NAME), shape, outputs, focal, cfg,
                               meta.get("checkpoint", ""), meta.get("checkpoint_sha256", ""))


def read_onnx_info(path: str | Path) -> OnnxEncoderInfo:
    """Load an exported encoder's metadata; :class:`InputError` naming the file if it is missing or corrupt."""
    import onnx

    path = Path(path)
    if not path.is_file():
        raise InputError(f"ONNX encoder not found: {path}")
    data = path.read_bytes()
    try:
        proto = onnx.load_from_string(data)
    except Exception as err:  # protobuf DecodeError and friends
        raise InputError(f"cannot read ONNX encoder {path}: {err}") from None
    if not len(proto.graph.node):
        raise InputError(f"cannot read ONNX encoder {path}: the graph is empty (truncated file?)")
    meta = {p.key: p.value for p in proto.metadata_props}
    return OnnxEncoderInfo.from_metadata(meta, path, sha256_bytes(data))


# ---------------------------------------------------------------------------------------------- export
def _check_shape(cfg, frames: int | None, size: tuple[int, int] | None) -> tuple[int, int, int]:
    t = int(frames or cfg.num_frames)
    if t != cfg.num_frames:
        raise ConfigError(f"the model predicts deltas for exactly {cfg.num_frames} frames; --frames {t} "
                          "cannot be exported")
    h, w = size or cfg.input_hw
    if h <= 0 or w <= 0 or h % cfg.patch or w % cfg.patch:
        raise ConfigError(f"export size {h}x{w} must be positive multiples of the patch size {cfg.patch}")
    return t, int(h), int(w)


def max_opset() -> int:
    """The highest opset both the TorchScript exporter and the installed ``onnx`` support."""
    import onnx
    from torch.onnx import _constants

    exporter = getattr(_constants, "ONNX_TORCHSCRIPT_EXPORTER_MAX_OPSET", None) or _constants.ONNX_MAX_OPSET
    return int(min(exporter, onnx.defs.onnx_opset_version()))


def check_opset(opset: int) -> None:
    """Refuse an opset the export cannot produce (>= 17 for LayerNormalization) with one line."""
    top = max_opset()
    if not MIN_OPSET <= int(opset) <= top:
        raise ConfigError(f"--opset must be in [{MIN_OPSET}, {top}] ({MIN_OPSET}: LayerNormalization; {top}: the "
                          f"newest the installed torch exporter and onnx support), got {opset}")


def export_onnx(model, out_path: str | Path, frames: int | None = None, size: tuple[int, int] | None = None,
                opset: int = DEFAULT_OPSET, checkpoint: str = "", checkpoint_sha: str = "") -> OnnxEncoderInfo:
    """Export a :class:`~gs_tracker_ros.model.gmae.GMAE` to ``out_path`` (static shape, opset >= 17).

    ``frames`` must equal the model's ``num_frames``; ``size`` ``(H, W)`` defaults to the model's
    ``img_size`` (a side, or [height, width]). The file is checked with
    ``onnx.checker.check_model(full_check=True)`` and written atomically.
    """
    import onnx
    import torch

    check_opset(opset)
    cfg = model.cfg
    t, h, w = _check_shape(cfg, frames, size)
    out_path = Path(out_path)

    class _Export(torch.nn.Module):
        def __init__(self, inner) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, clip):
            return self.inner.forward_export(clip)

    was_training = model.training
    device = next(model.parameters()).device
    wrapper = _Export(model.float().cpu().eval())
    dummy = torch.rand(1, t, h, w, 3, generator=torch.Generator().manual_seed(0))
    buffer = io.BytesIO()  # in memory: the file is written once, whole, below
    try:
        with warnings.catch_warnings(), torch.inference_mode(False), torch.no_grad():
            warnings.simplefilter("ignore")  # TracerWarnings from shape asserts; exporter deprecation notes
            torch.onnx.export(wrapper, (dummy,), buffer, opset_version=int(opset), dynamo=False,
                              input_names=[INPUT_NAME], output_names=list(FIELDS), do_constant_folding=True)
        proto = onnx.load_from_string(buffer.getvalue())
    finally:
        model.to(device).train(was_training)
    info = OnnxEncoderInfo(out_path, "", INPUT_NAME, (1, t, h, w, 3), tuple(FIELDS), float(cfg.focal),
                           cfg.to_dict(), checkpoint, checkpoint_sha)
    del proto.metadata_props[:]
    for key, value in info.metadata().items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    proto.producer_name = "gs_tracker_ros"
    proto.doc_string = (f"Video-GMAE Gaussian encoder: clip float32 (1,{t},{h},{w},3) RGB in [0,1] -> "
                        + ", ".join(FIELDS))
    _check_static(proto)
    onnx.checker.check_model(proto, full_check=True)
    data = proto.SerializeToString()
    write_bytes(out_path, data)
    return replace(info, sha256=sha256_bytes(data))


def export_checkpoint(checkpoint: str | Path, out_path: str | Path, frames: int | None = None,
                      size: tuple[int, int] | None = None, opset: int = DEFAULT_OPSET,
                      checkpoint_sha: str | None = None) -> OnnxEncoderInfo:
    """Load a checkpoint (:func:`~gs_tracker_ros.model.checkpoint.load_model`) and :func:`export_onnx` it."""
    from ..model.checkpoint import load_model

    checkpoint = Path(checkpoint)
    model = load_model(checkpoint)  # InputError naming the file when missing / unreadable
    sha = checkpoint_sha or sha256_file(checkpoint)
    return export_onnx(model, out_path, frames=frames, size=size, opset=opset, checkpoint=checkpoint.name,
                       checkpoint_sha=sha)


def _check_static(proto) -> None:
    for value in list(proto.graph.input) + list(proto.graph.output):
        dims = value.type.tensor_type.shape.dim
        if not dims or any(not d.HasField("dim_value") for d in dims):
            raise ConfigError(f"exported tensor {value.name} has a dynamic shape; expected a static clip shape")


def fp16_onnx_bytes(onnx_bytes: bytes, keep_fp32_ops: tuple[str, ...] = FP32_OPS, fp32_tail: bool = True) -> bytes:
    """The same graph computing in fp16, for strongly typed TensorRT (11.x removed ``BuilderFlag.FP16``).

    * graph inputs and outputs stay float32 (casts at the boundary);
    * nodes of type ``keep_fp32_ops`` (normalisations, exp / log / trig) stay fp32;
    * with ``fp32_tail``, every node after the last matrix product (MatMul / Gemm / Conv) stays
      fp32: the element-wise Gaussian decoding (tanh / sigmoid / exp and the unprojection of the
      centres), whose outputs are positions, keeps full precision;
    * everything else (the ViT: convolutions, attention, MLPs, heads) runs in fp16; float
      initializers and constants used only there are stored as fp16 (clamped to +-65504).

    A cast is inserted once per tensor and target precision where precisions meet; the result is
    topologically sorted and passes ``onnx.checker``.
    """
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    model = onnx.shape_inference.infer_shapes(onnx.load_from_string(onnx_bytes), strict_mode=True)
    graph = model.graph
    FLOAT, HALF = TensorProto.FLOAT, TensorProto.FLOAT16
    types = {v.name: v.type.tensor_type.elem_type for v in
             list(graph.input) + list(graph.output) + list(graph.value_info)}
    types.update({i.name: i.data_type for i in graph.initializer})
    producers = {o: n for n in graph.node for o in n.output}
    consumers: dict[str, list] = {}
    for n in graph.node:
        for i in n.input:
            consumers.setdefault(i, []).append(n)

    # nodes from which a matrix product can be reached (the network); the rest is the decoding tail
    feeds_matmul: set[int] = set()
    stack = [n for n in graph.node if n.op_type in ("MatMul", "Gemm", "Conv")]
    while stack:
        node = stack.pop()
        if id(node) in feeds_matmul:
            continue
        feeds_matmul.add(id(node))
        stack.extend(producers[i] for i in node.input if i in producers)
    half_nodes = {id(n) for n in graph.node if n.op_type not in keep_fp32_ops
                  and (not fp32_tail or id(n) in feeds_matmul)}

    # where each float tensor lives: graph inputs fp32, initializers fp16 if only fp16 nodes use them
    home: dict[str, int] = {i.name: FLOAT for i in graph.input}
    for init in graph.initializer:
        if init.data_type == FLOAT:
            users = consumers.get(init.name, [])
            if users and all(id(u) in half_nodes and u.op_type != "Cast" for u in users):
                arr = np.clip(numpy_helper.to_array(init), -65504, 65504).astype(np.float16)
                init.CopyFrom(numpy_helper.from_array(arr, init.name))
                home[init.name] = HALF
            else:
                home[init.name] = FLOAT
    casts: dict[tuple[str, int], str] = {}
    new_nodes = []

    def cast_to(name: str, target: int) -> str:
        if (name, target) not in casts:
            out = f"{name}__as_{'fp16' if target == HALF else 'fp32'}"
            new_nodes.append(helper.make_node("Cast", [name], [out], to=target, name=out + "_cast"))
            casts[(name, target)] = out
        return casts[(name, target)]

    for node in graph.node:
        want = HALF if id(node) in half_nodes else FLOAT
        if node.op_type != "Cast":  # Cast takes any input type
            for k, name in enumerate(node.input):
                if types.get(name) == FLOAT and home.get(name, FLOAT) != want:
                    node.input[k] = cast_to(name, want)
        for attr in node.attribute:
            if want == HALF and node.op_type == "Cast" and attr.name == "to" and attr.i == FLOAT:
                attr.i = HALF
            if want == HALF and attr.type == onnx.AttributeProto.TENSOR and attr.t.data_type == FLOAT:
                arr = np.clip(numpy_helper.to_array(attr.t), -65504, 65504).astype(np.float16)
                attr.t.CopyFrom(numpy_helper.from_array(arr, attr.t.name))
        for out in node.output:
            if types.get(out) == FLOAT:
                home[out] = want
        new_nodes.append(node)
    # graph outputs back to float32 under their own names
    for value in graph.output:
        if types.get(value.name) == FLOAT and home.get(value.name) == HALF:
            inner = value.name + "__fp16"
            for node in new_nodes:
                node.output[:] = [inner if o == value.name else o for o in node.output]
                node.input[:] = [inner if i == value.name else i for i in node.input]
            new_nodes.append(helper.make_node("Cast", [inner], [value.name], to=FLOAT, name=value.name + "_cast"))
    del graph.node[:]
    graph.node.extend(new_nodes)
    del graph.value_info[:]  # stale element types; TensorRT and checkers re-infer them
    _topological_sort(graph)
    onnx.checker.check_model(model, full_check=True)
    return model.SerializeToString()


def _topological_sort(graph) -> None:
    """Reorder ``graph.node`` so every node comes after the producers of its inputs (stable, in place).

    ONNX requires it and TensorRT's parser reads nodes in file order; ONNX Runtime is lenient.
    """
    known = {i.name for i in graph.input} | {i.name for i in graph.initializer} | {""}
    pending = list(graph.node)
    ordered = []
    while pending:
        rest = []
        for node in pending:
            if all(name in known for name in node.input):
                ordered.append(node)
                known.update(node.output)
            else:
                rest.append(node)
        if len(rest) == len(pending):
            missing = sorted({n for node in rest for n in node.input if n not in known})[:5]
            raise ConfigError(f"ONNX graph has a cycle or unknown inputs: {missing}")
        pending = rest
    copies = [type(n)() for n in ordered]
    for dst, src in zip(copies, ordered):
        dst.CopyFrom(src)
    del graph.node[:]
    graph.node.extend(copies)
