"""Encoder latency per backend and tracker speed with the Gaussian motion source, measured in one process.

Used by ``gs-tracker bench`` (its ``encoder`` and ``gaussian_tracking`` JSON sections). Backends
that cannot run here are reported as ``{"skipped": reason}``; ratios are against ``torch``
measured in the same run (``ratio_vs_torch`` < 1: faster than eager torch).
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from ..core.errors import TrackerError
from .settings import BACKENDS


def _median_ms(fn: Callable[[], Any], runs: int, warmup: int) -> dict[str, float]:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e3)
    ms = np.asarray(times)
    return {"ms_per_clip_median": float(np.median(ms)), "ms_per_clip_p90": float(np.percentile(ms, 90)),
            "ms_per_clip_min": float(ms.min()), "runs": int(runs), "warmup": int(warmup)}


def time_encoder(engine, runs: int = 20, warmup: int = 3, seed: int = 0) -> dict[str, float]:
    """Median wall time of ``engine(clip)`` on a random uint8 clip, after ``warmup`` calls."""
    clip = np.random.default_rng(seed).integers(0, 256, engine.input_shape, dtype=np.uint8)
    return _median_ms(lambda: engine(clip), runs, warmup)


def bench_model(model_path: str | Path | None = None):
    """``(GMAE, description)``: the checkpoint if there is one, else a randomly initialised default model."""
    from ..model.gmae import GMAE, ModelConfig
    from .base import default_checkpoint, load_checkpoint_model

    path = Path(model_path) if model_path else default_checkpoint()
    if path.is_file():
        return load_checkpoint_model(path), str(path)
    if model_path:
        load_checkpoint_model(path)  # raises the InputError naming the missing file
    import torch

    torch.manual_seed(0)
    return GMAE(ModelConfig()).eval(), f"random init, default ModelConfig (no checkpoint at {path})"


def build_bench_engines(model, backends: Sequence[str] = BACKENDS, threads: int | None = None,
                        workdir: str | Path | None = None) -> dict[str, Any]:
    """``{backend: engine or skip reason (str)}`` for one model, all on the same static clip shape."""
    from .export import export_onnx
    from .torch_engine import TorchEngine

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
                from .onnxruntime_engine import OnnxRuntimeEngine

                out[backend] = OnnxRuntimeEngine(onnx_path, threads=threads)
            elif backend == "tensorrt":
                from .tensorrt_engine import TensorRTEngine

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
        ms = np.asarray(times[backend])
        res[backend] = {"ms_per_clip_median": float(np.median(ms)), "ms_per_clip_p90": float(np.percentile(ms, 90)),
                        "ms_per_clip_min": float(ms.min()), "runs": int(runs), "warmup": int(warmup),
                        "input_shape": list(eng.input_shape), "precision": eng.precision,
                        "threads": getattr(eng, "threads", None) or "default"}
    base = res.get("torch", {}).get("ms_per_clip_median")
    if base:
        for r in res.values():
            if "ms_per_clip_median" in r:
                r["ratio_vs_torch"] = r["ms_per_clip_median"] / base
    return res


def bench_gaussian_tracking(engine, frames: Sequence[np.ndarray], num_points: int = 256, warmup: int = 3,
                            config=None) -> dict[str, float]:
    """Tracker latency with the Gaussian motion source alone on ``engine`` (one encoder pass per frame)."""
    from ..evaluation.timing import time_tracker
    from ..core.config import TrackerConfig
    from ..core.tracker import ProbabilisticTracker
    from ..motion.gaussian import GaussianMotionSource

    config = (config or TrackerConfig()).replace(sources=["gmae"])
    source = GaussianMotionSource(engine)
    tracker = ProbabilisticTracker(config, sources=[source], name="probfuse-gmae")
    result = time_tracker(tracker, frames, num_points, warmup)
    return {**result, "points": int(num_points), "encoder_calls": int(source.encoder_calls)}


def format_encoder_table(encoder: dict[str, dict[str, Any]], tracking: dict[str, dict[str, Any]] | None = None) -> str:
    lines = ["| encoder backend | ms / clip (median) | p90 | / torch | tracker fps (gmae source) |",
             "|---|---|---|---|---|"]
    for backend, r in encoder.items():
        if "skipped" in r:
            lines.append(f"| {backend} | skipped: {r['skipped'].split('. ')[0]} | | | |")
            continue
        fps = (tracking or {}).get(backend, {}).get("fps_median")
        lines.append(f"| {backend} | {r['ms_per_clip_median']:.2f} | {r['ms_per_clip_p90']:.2f} | "
                     f"{r.get('ratio_vs_torch', float('nan')):.2f} | {'' if fps is None else f'{fps:.1f}'} |")
    return "\n".join(lines)
