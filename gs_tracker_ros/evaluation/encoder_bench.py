"""Encoder latency per backend and tracker speed with the Gaussian motion source, measured in one process.

Used by ``gs-tracker bench`` (its ``encoder`` and ``gaussian_tracking`` JSON sections). Backends
that cannot run here are reported as ``{"skipped": reason}``; ratios are against ``torch``
measured in the same run (``ratio_vs_torch`` < 1: faster than eager torch).
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..core.errors import InputError, TrackerError
from ..engines.settings import BACKENDS
from ..methods import build_probabilistic_tracker
from ..tracking.config import TrackerConfig
from .timing import time_tracker


def _clip_ms_summary(times: Sequence[float], runs: int, warmup: int) -> dict[str, float]:
    """Median, p90 and minimum of per-clip wall times ``times`` (ms)."""
    ms = np.asarray(times)
    return {"ms_per_clip_median": float(np.median(ms)), "ms_per_clip_p90": float(np.percentile(ms, 90)),
            "ms_per_clip_min": float(ms.min()), "runs": int(runs), "warmup": int(warmup)}


def bench_model(model_path: str | Path | None = None):
    """``(GMAE, description)``: the checkpoint if there is one, else a randomly initialised default model."""
    from ..model.gmae import GMAE, ModelConfig
    from ..model.checkpoint import DEFAULT_CHECKPOINT, load_model

    path = Path(model_path) if model_path else DEFAULT_CHECKPOINT
    if path.is_file():
        return load_model(path), str(path)
    if model_path:
        load_model(path)  # raises the InputError naming the missing file
    import torch

    torch.manual_seed(0)
    return GMAE(ModelConfig()).eval(), f"random init, default ModelConfig (no checkpoint at {path})"


def check_bench_model(model_path: str | Path | None) -> None:
    """Refuse a ``--encoder-model`` that is missing or not a Video-GMAE checkpoint, before any
    timing: reads the file and its model config without building the model (no tensor work, so
    torch's thread pool does not exist yet while the classical methods are timed)."""
    if not model_path:
        return
    from ..model.checkpoint import load_checkpoint_blob
    from ..model.gmae import ModelConfig

    blob = load_checkpoint_blob(model_path)  # InputError naming the file
    try:
        ModelConfig.from_dict(blob["model_config"])
    except (TypeError, ValueError, KeyError) as err:
        raise InputError(f"checkpoint {model_path} does not fit the current Video-GMAE model: {err}") from None


def build_bench_engines(model, backends: Sequence[str] = BACKENDS, threads: int | None = None,
                        workdir: str | Path | None = None) -> dict[str, Any]:
    """``{backend: engine or skip reason (str)}`` for one model, all on the same static clip shape."""
    from ..engines.export import export_onnx
    from ..engines.torch_engine import TorchEngine

    out: dict[str, Any] = {}
    onnx_path = None
    for backend in backends:
        try:
            if backend == "torch":
                out[backend] = TorchEngine(model, threads=threads)
                continue
            if onnx_path is None:
                onnx_path = Path(workdir or tempfile.mkdtemp(prefix="gs_tracker_bench_")) / "encoder.onnx"
                export_onnx(model, onnx_path)
            if backend == "onnxruntime":
                from ..engines.onnxruntime_engine import OnnxRuntimeEngine

                out[backend] = OnnxRuntimeEngine(onnx_path, threads=threads)
            elif backend == "tensorrt":
                from ..engines.tensorrt_engine import TensorRTEngine

                out[backend] = TensorRTEngine(onnx_path=onnx_path, precision="fp16",
                                              cache_dir=Path(onnx_path).parent / "trt")
        except TrackerError as err:
            out[backend] = str(err)
    return out


def bench_encoders(engines: dict[str, Any], runs: int = 20, warmup: int = 3,
                   seed: int = 0) -> dict[str, dict[str, Any]]:
    """``{backend: {"ms_per_clip_median": ..., "ratio_vs_torch": ...} or {"skipped": reason}}``.

    The backends are timed round-robin (one call of each per round, same clip) so that they share
    whatever load the machine has; ratios are of medians over the same rounds.
    """
    res: dict[str, dict[str, Any]] = {}
    live = {b: e for b, e in engines.items() if not isinstance(e, str)}
    clips = {b: np.random.default_rng(seed).integers(0, 256, e.input_shape, dtype=np.uint8) for b, e in live.items()}
    for b, e in live.items():
        for _ in range(warmup):
            e(clips[b])
    times: dict[str, list[float]] = {b: [] for b in live}
    for _ in range(runs):
        for b, e in live.items():
            t0 = time.perf_counter()
            e(clips[b])
            times[b].append((time.perf_counter() - t0) * 1e3)
    for backend, eng in engines.items():
        if isinstance(eng, str):
            res[backend] = {"skipped": eng}
            continue
        res[backend] = {**_clip_ms_summary(times[backend], runs, warmup), "input_shape": list(eng.input_shape),
                        "precision": eng.precision, "threads": getattr(eng, "threads", None) or "default"}
    base = res.get("torch", {}).get("ms_per_clip_median")
    if base:
        for r in res.values():
            if "ms_per_clip_median" in r:
                r["ratio_vs_torch"] = r["ms_per_clip_median"] / base
    return res


class _TimedSource:
    """Wraps a motion source; adds up the wall time of its ``on_frame`` and ``estimate`` per frame."""

    def __init__(self, source) -> None:
        self.source, self.name = source, source.name
        # what the tracker reads of a source, as the wrapped source has it
        self.batches, self.thread_safe, self.dense = source.batches, source.thread_safe, source.dense
        self.intervals = getattr(source, "intervals", None)
        self.ms: dict[int, float] = {}  # newest frame index -> ms spent in the source for that frame

    def _add(self, frame: int, t0: float) -> None:
        self.ms[frame] = self.ms.get(frame, 0.0) + (time.perf_counter() - t0) * 1e3

    def on_frame(self, buffer, index):
        t0 = time.perf_counter()
        self.source.on_frame(buffer, index)
        self._add(index, t0)

    def estimate(self, buffer, a, b, points):
        t0 = time.perf_counter()
        out = self.source.estimate(buffer, a, b, points)
        self._add(buffer.latest, t0)
        return out

    def estimate_many(self, buffer, pairs, point_ids=None):
        t0 = time.perf_counter()
        out = self.source.estimate_many(buffer, pairs, point_ids)
        self._add(buffer.latest, t0)
        return out

    def reset(self):
        self.source.reset()


def bench_gaussian_tracking(engine, frames: Sequence[np.ndarray], num_points: int = 256, warmup: int = 3,
                            config=None) -> dict[str, dict[str, float]]:
    """Tracker speed and the Gaussian source's own cost per frame, alone and fused, on ``engine``.

    ``alone``: the tracker with the gmae source only (a window per frame, as the ``gmae`` method);
    ``fused``: probfuse + gmae (LK and the relocaliser, the encoder once per ``window_hop`` frames,
    as the ``probfuse+gmae`` method). ``source_ms_per_frame`` is the mean wall time per frame spent
    inside the Gaussian source (encoder passes, splat weights, motion) over the frames ``time_tracker``
    times (after its warm-up); a mean, not a median, because the encoder runs on every hop-th frame.
    """
    base = config or TrackerConfig()
    out: dict[str, dict[str, float]] = {}
    for variant in ("alone", "fused"):
        cfg = base.replace(sources=["gmae"] if variant == "alone" else
                           [s for s in base.sources if s != "gmae"] + ["gmae"])
        tracker = build_probabilistic_tracker(cfg, name=f"gmae-{variant}", relocalize=variant == "fused",
                                              engine=engine)
        timed = tracker.sources[-1] = _TimedSource(tracker.sources[-1])  # the gmae source, timed
        result = time_tracker(tracker, frames, num_points, warmup)
        timed_ms = [timed.ms.get(t, 0.0) for t in range(1 + warmup, len(frames))]  # frames time_tracker timed
        out[variant] = {**result, "points": int(num_points), "encoder_calls": int(timed.source.encoder_calls),
                        "window_hop": int(timed.source.window_hop), "frames": len(frames) - 1,
                        "source_ms_per_frame": float(np.mean(timed_ms)),
                        "source_ms_per_frame_p95": float(np.percentile(timed_ms, 95))}
    return out


def format_encoder_table(encoder: dict[str, dict[str, Any]], tracking: dict[str, dict[str, Any]] | None = None) -> str:
    lines = ["| encoder backend | ms / clip (median) | p90 | / torch | gmae alone: fps, source ms/frame "
             "| probfuse+gmae: fps, source ms/frame |",
             "|---|---|---|---|---|---|"]
    for backend, r in encoder.items():
        if "skipped" in r:
            lines.append(f"| {backend} | skipped: {r['skipped'].split('. ')[0]} | | | | |")
            continue
        per = (tracking or {}).get(backend, {})
        cells = []
        for variant in ("alone", "fused"):
            t = per.get(variant)
            cells.append("" if not t else f"{t['fps_median']:.1f}, {t['source_ms_per_frame']:.2f} "
                                         f"(hop {t['window_hop']})")
        lines.append(f"| {backend} | {r['ms_per_clip_median']:.2f} | {r['ms_per_clip_p90']:.2f} | "
                     f"{r.get('ratio_vs_torch', float('nan')):.2f} | {cells[0]} | {cells[1]} |")
    return "\n".join(lines)
