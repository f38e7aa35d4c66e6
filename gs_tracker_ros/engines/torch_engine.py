"""The ``torch`` backend: the checkpoint in eager PyTorch (the reference the other backends are tested against)."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from ..core.errors import ConfigError
from ..model.checkpoint import load_model
from .base import EncoderEngine, EngineUnavailableError


class TorchEngine(EncoderEngine):
    """Eager :class:`~gs_tracker_ros.model.gmae.GMAE` behind the :class:`EncoderEngine` call.

    Args:
        model: the model (put in eval mode; weights are not copied).
        device: ``"cpu"`` or ``"cuda[:i]"``.
        precision: ``fp32``; ``fp16`` runs under CUDA autocast (CUDA only).
        threads: if given, ``torch.set_num_threads(threads)`` (process-wide setting).
        size: ``(H, W)`` of the clip (default: the model's ``img_size``, a side or [height, width]).
    """

    backend = "torch"

    def __init__(self, model, device: str = "cpu", precision: str = "fp32", threads: int | None = None,
                 size: tuple[int, int] | None = None) -> None:
        dev = torch.device(device)
        if dev.type == "cuda" and not torch.cuda.is_available():
            raise EngineUnavailableError(f"torch backend on {device}: torch {torch.__version__} sees no CUDA GPU")
        if precision == "fp16" and dev.type != "cuda":
            raise ConfigError("the torch backend runs fp16 only on CUDA (autocast); use fp32 on the CPU")
        if threads:
            torch.set_num_threads(int(threads))
        self.model = model.float().to(dev).eval()
        cfg = model.cfg
        h, w = size or cfg.input_hw
        self.input_shape = (int(cfg.num_frames), int(h), int(w), 3)
        self.focal = float(cfg.focal)
        self.precision = precision
        self.device = dev
        self.source = ""
        self.threads = torch.get_num_threads()

    @classmethod
    def from_checkpoint(cls, path: str | Path, device: str = "cpu", precision: str = "fp32",
                        threads: int | None = None) -> "TorchEngine":
        eng = cls(load_model(path), device=device, precision=precision, threads=threads)
        eng.source = str(path)
        return eng

    def infer(self, clip: np.ndarray) -> Sequence[Any]:
        x = torch.from_numpy(clip).to(self.device, non_blocking=True)
        amp = (torch.autocast("cuda", dtype=torch.float16) if self.precision == "fp16"
               else contextlib.nullcontext())
        with torch.inference_mode(), amp:
            outs = self.model.forward_export(x)
        return [o.float().cpu() for o in outs]

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "device": str(self.device), "threads": torch.get_num_threads(),
                "checkpoint": self.source}
