"""``gs-tracker bench``: latency, throughput and memory of every method, measured in one run.

Latency is the wall-clock time of ``step()`` per frame on 854x480 frames of a generated scene
with a grid of 256 and of 1024 points; ratios are against ``klt`` measured in the same process.
Memory is the resident set size of this process at frame 1,000 and 10,000 of a long stream
(a generated clip played forward and backward, so tracks stay in view). Image decoding: the cost
of turning one 854x480 incoming image (raw rgb8 / bgr8, compressed jpeg / png) into the tracker's
frame, what the node pays per image before tracking.
"""

from __future__ import annotations

import argparse
import gc
import json
import resource
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from ..core.config import TrackerConfig
from ..methods import DEFAULT_METHOD, make_tracker, method_names
from ..evaluation.timing import grid_points, time_tracker
from .common import load_config

WIDTH, HEIGHT = 854, 480
NEURAL_METHODS = frozenset({"probfuse-accurate", "gmae", "probfuse+gmae"})


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bench", help="benchmark latency, throughput and memory of the methods",
                       description=__doc__.split("\n\n")[0])
    p.add_argument("--json", type=Path, default=None, metavar="OUT", help="write the results as JSON")
    p.add_argument("--quick", action="store_true", help="short run (fewer frames; memory at frames 100 and 1000)")
    p.add_argument("--method", action="append", default=None, metavar="M",
                   help=f"methods to time (repeatable; default: all of {', '.join(method_names())})")
    p.add_argument("--config", type=Path, default=None, metavar="YAML", help="tracker config for our method")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", dest="overrides",
                   help="config override for our method (repeatable)")
    p.add_argument("--encoder-runs", type=int, default=None, metavar="N",
                   help="timed Gaussian-encoder calls per backend (default 20, --quick 10; 0 skips the encoder section)")
    p.add_argument("--encoder-model", type=Path, default=None, metavar="CKPT",
                   help="Video-GMAE checkpoint for the encoder section (default: the shipped one, else random init)")
    p.add_argument("--encoder-threads", type=int, default=0, metavar="N",
                   help="CPU threads of the torch / onnxruntime encoders (default 0: library default)")
    p.set_defaults(func=run)


def rss_mb() -> float:
    """Current resident set size of this process in MiB (Linux /proc)."""
    with open("/proc/self/statm") as fh:
        pages = int(fh.read().split()[1])
    return pages * resource.getpagesize() / 2**20


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def bench_frames(num_frames: int, seed: int = 0) -> list[np.ndarray]:
    from ..synthetic.config import SceneConfig
    from ..synthetic.scene import make_scene

    scene = make_scene(SceneConfig(width=WIDTH, height=HEIGHT, num_frames=num_frames, seed=seed))
    return list(scene.frames())


def time_method(method: str, config: TrackerConfig, frames: list[np.ndarray], num_points: int,
                warmup: int = 3) -> dict[str, float]:
    return time_tracker(make_tracker(method, config), frames, num_points, warmup)


def memory_run(method: str, config: TrackerConfig, frames: list[np.ndarray], checkpoints: tuple[int, int],
               num_points: int = 256) -> dict[str, float]:
    """RSS at two frame counts of a long stream (clip played forward and backward)."""
    tracker = make_tracker(method, config)
    tracker.step(frames[0])
    tracker.add_queries(grid_points(num_points, WIDTH, HEIGHT))
    cycle = frames + frames[-2:0:-1]
    out = {}
    for t in range(1, checkpoints[1] + 1):
        tracker.step(cycle[t % len(cycle)])
        if t in checkpoints:
            gc.collect()
            out[t] = rss_mb()
            print(f"  memory: frame {t}: {out[t]:.1f} MiB", file=sys.stderr, flush=True)
    return {f"rss_mb_frame_{checkpoints[0]}": out[checkpoints[0]],
            f"rss_mb_frame_{checkpoints[1]}": out[checkpoints[1]]}


def run(args: argparse.Namespace) -> int:
    config = load_config(args.config, args.overrides)
    methods = args.method or method_names()
    if "klt" not in methods:
        methods = methods + ["klt"]
    # Methods that run torch / ONNX Runtime last: once their thread pools exist they compete with
    # OpenCV's for the cores and would slow the classical methods timed after them.
    methods = sorted(methods, key=lambda m: m in NEURAL_METHODS)
    num_frames = 40 if args.quick else 120
    print(f"rendering {num_frames} frames at {WIDTH}x{HEIGHT} ...", file=sys.stderr, flush=True)
    frames = bench_frames(num_frames)
    results: dict[str, Any] = {"methods": {}, "default_method": DEFAULT_METHOD,
                               "frame_size": [WIDTH, HEIGHT], "frames_timed": num_frames - 4}
    # Memory first, in a process that has not yet run torch / ONNX Runtime (their thread pools
    # would otherwise compete with OpenCV's for the two cores).
    checkpoints = (100, 1000) if args.quick else (1000, 10000)
    print(f"memory over a {checkpoints[1]}-frame stream with {DEFAULT_METHOD} ...", file=sys.stderr, flush=True)
    mem = memory_run(DEFAULT_METHOD, config, frames, checkpoints)
    mem["peak_rss_mb"] = max(peak_rss_mb(), max(mem.values()))
    if not args.quick:
        mem = {"rss_mb_frame_1000": mem["rss_mb_frame_1000"], "rss_mb_frame_10000": mem["rss_mb_frame_10000"],
               "peak_rss_mb": mem["peak_rss_mb"]}
    results["memory"] = mem
    for method in methods:
        results["methods"][method] = {}
        for points in (256, 1024):
            r = time_method(method, config, frames, points)
            results["methods"][method][f"points_{points}"] = r
            print(f"  {method:>10} {points:5d} points: {r['latency_ms_p50']:7.2f} ms p50, "
                  f"{r['latency_ms_p95']:7.2f} ms p95, {r['fps_median']:7.1f} fps", file=sys.stderr, flush=True)
    for method, per in results["methods"].items():
        for key, r in per.items():
            base = results["methods"]["klt"][key]["latency_ms_p50"]
            r["ratio_vs_klt"] = r["latency_ms_p50"] / base  # > 1: slower than klt
    results["image_decoding"] = decode_section(frames[0], runs=20 if args.quick else 100)
    encoder_runs = args.encoder_runs if args.encoder_runs is not None else (10 if args.quick else 20)
    if encoder_runs > 0:
        results.update(encoder_section(args, frames, encoder_runs))
    print(format_bench(results))
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2))
        print(f"results -> {args.json}")
    return 0


def decode_section(frame: np.ndarray, runs: int) -> dict[str, dict[str, float]]:
    """ms to turn one incoming image into the tracker's RGB frame, per transport: raw ``rgb8``
    (a zero-copy view), raw ``bgr8`` (one conversion), and ``compressed`` jpeg (quality 90) / png
    as image_transport publishes them (:func:`~gs_tracker_ros.ros.image_conversion.compressed_to_rgb`)."""
    from types import SimpleNamespace

    import cv2

    from ..ros.image_conversion import compressed_to_rgb, image_to_rgb

    h, w = frame.shape[:2]
    bgr = cv2.cvtColor(frame, cv2.COLOR_RGB2BGR)
    messages = {
        "raw rgb8": (image_to_rgb, SimpleNamespace(height=h, width=w, encoding="rgb8", is_bigendian=0,
                                                   step=w * 3, data=frame.tobytes())),
        "raw bgr8": (image_to_rgb, SimpleNamespace(height=h, width=w, encoding="bgr8", is_bigendian=0,
                                                   step=w * 3, data=bgr.tobytes())),
    }
    for fmt, ext, params in (("jpeg", ".jpg", [cv2.IMWRITE_JPEG_QUALITY, 90]), ("png", ".png", [])):
        ok, data = cv2.imencode(ext, bgr, params)
        messages[f"compressed {fmt}"] = (compressed_to_rgb, SimpleNamespace(
            format=f"rgb8; {fmt} compressed bgr8", data=data.tobytes()))
    out = {}
    for name, (convert, msg) in messages.items():
        times = []
        for _ in range(runs + 2):
            t0 = time.perf_counter()
            convert(msg)
            times.append((time.perf_counter() - t0) * 1e3)
        times = np.asarray(times[2:])
        out[name] = {"ms_p50": float(np.percentile(times, 50)), "ms_p95": float(np.percentile(times, 95)),
                     "bytes": len(msg.data)}
        print(f"  decode {name:>15}: {out[name]['ms_p50']:6.2f} ms p50 ({len(msg.data) / 1024:.0f} KiB)",
              file=sys.stderr, flush=True)
    return out


def encoder_section(args: argparse.Namespace, frames: list[np.ndarray], runs: int) -> dict[str, Any]:
    """Encoder ms per clip per backend (round-robin in this process) and tracker fps with the gmae source."""
    from ..engines.bench import bench_encoders, bench_gaussian_tracking, bench_model, build_bench_engines

    model, weights = bench_model(args.encoder_model)
    print(f"encoder backends ({weights}) ...", file=sys.stderr, flush=True)
    engines = build_bench_engines(model, threads=args.encoder_threads or None)
    encoder = bench_encoders(engines, runs=runs, warmup=3)
    tracking = {}
    for backend, eng in engines.items():
        if isinstance(eng, str):
            tracking[backend] = {"skipped": eng}
            continue
        r = encoder[backend]
        print(f"  encoder {backend:>12}: {r['ms_per_clip_median']:7.2f} ms/clip median, "
              f"{r['ratio_vs_torch']:.2f} x torch", file=sys.stderr, flush=True)
        tracking[backend] = bench_gaussian_tracking(eng, frames, num_points=256)
        for variant, t in tracking[backend].items():
            print(f"  gmae source {variant} ({backend}), 256 points: source {t['source_ms_per_frame']:.2f} ms/frame "
                  f"(encoder every {t['window_hop']} frames), tracker {t['fps_median']:.1f} fps",
                  file=sys.stderr, flush=True)
    return {"encoder": encoder, "encoder_weights": weights, "gaussian_tracking": tracking}


def format_bench(results: dict[str, Any]) -> str:
    lines = ["| method | points | fps (median) | latency p50 ms | latency p95 ms | latency / klt |",
             "|---|---|---|---|---|---|"]
    for method, per in results["methods"].items():
        for key, r in per.items():
            lines.append(f"| {method} | {key.split('_')[1]} | {r['fps_median']:.1f} | {r['latency_ms_p50']:.2f} | "
                         f"{r['latency_ms_p95']:.2f} | {r['ratio_vs_klt']:.2f} |")
    if "encoder" in results:
        from ..engines.bench import format_encoder_table

        lines += ["", format_encoder_table(results["encoder"], results.get("gaussian_tracking"))]
    if "image_decoding" in results:
        lines += ["", "| image in | bytes | to RGB p50 ms | p95 ms |", "|---|---|---|---|"]
        for name, r in results["image_decoding"].items():
            lines.append(f"| {name} | {r['bytes']} | {r['ms_p50']:.2f} | {r['ms_p95']:.2f} |")
    mem = results["memory"]
    lines.append("")
    lines.append("memory (MiB): " + ", ".join(f"{k} = {v:.1f}" for k, v in mem.items()))
    return "\n".join(lines)
