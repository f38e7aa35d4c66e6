"""``gs-tracker bench``: latency, throughput and memory of every method, measured in one run.

Latency is the wall-clock time of ``step()`` per frame on 854x480 frames of a generated scene
with a grid of 256 and of 1024 points; ratios are against ``klt`` measured in the same process.
Memory is the resident set size of this process at frame 1,000 and 10,000 of a long stream
(a generated clip played forward and backward, so tracks stay in view). Image decoding: the cost
of turning one 854x480 incoming image (raw rgb8 / bgr8, compressed jpeg / png) into the tracker's
frame, what the node pays per image before tracking.

``--profile`` instead times each stage of the default method's step (and the ROS node's message
build and overlay) and ``--scaling`` the default and ``klt`` over 64-4096 points at three
resolutions; both are explained in docs/performance.md.
"""

from __future__ import annotations

import argparse
import gc
import resource
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from ..tracking.config import TrackerConfig, UserConfig
from ..core.errors import ConfigError
from ..core.output import check_output, write_json
from ..core.geometry import first_grid_points
from ..methods import DEFAULT_METHOD, make_tracker, method_names
from ..evaluation.timing import time_tracker
from .common import check_methods, load_config

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
    p.add_argument("--chain-workers", type=int, default=1, metavar="N",
                   help="threads the motion chains of our method run on (default 1: one after the other; "
                        "same positions either way)")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--profile", action="store_true",
                      help="instead: time each stage of the default method's step (and the ROS message "
                           "build / overlay) at 854x480 with 256 and 1024 points, and print the table")
    mode.add_argument("--scaling", action="store_true",
                      help="instead: fps and ms/frame of the default method and klt for 64/256/1024/4096 "
                           "points at 640x480, 854x480 and 1280x720, and print the table")
    p.set_defaults(func=run)


def report(table: str, results: dict[str, Any], json_path: Path | None) -> int:
    """Print ``table``, write ``results`` to ``json_path`` (if given); the command's exit status."""
    print(table)
    if json_path is not None:
        print(f"results -> {write_json(json_path, results)}")
    return 0


def rss_mb() -> float:
    """Current resident set size of this process in MiB (Linux /proc)."""
    with open("/proc/self/statm") as fh:
        pages = int(fh.read().split()[1])
    return pages * resource.getpagesize() / 2**20


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def bench_frames(num_frames: int, seed: int = 0, width: int = WIDTH, height: int = HEIGHT) -> list[np.ndarray]:
    from ..synthetic.config import SceneConfig
    from ..synthetic.scene import make_scene

    scene = make_scene(SceneConfig(width=width, height=height, num_frames=num_frames, seed=seed))
    return list(scene.frames())


def build_tracker(method: str, config: UserConfig | TrackerConfig, chain_workers: int = 1):
    """``make_tracker(method, config)``, with ``chain_workers`` set where it is our tracker."""
    tracker = make_tracker(method, config)
    if hasattr(tracker, "chain_workers"):
        tracker.chain_workers = int(chain_workers)
    return tracker


def time_method(method: str, config: UserConfig | TrackerConfig, frames: list[np.ndarray], num_points: int,
                warmup: int = 3, chain_workers: int = 1) -> dict[str, float]:
    return time_tracker(build_tracker(method, config, chain_workers), frames, num_points, warmup)


def memory_run(method: str, config: UserConfig | TrackerConfig, frames: list[np.ndarray],
               checkpoints: tuple[int, int], num_points: int = 256) -> dict[str, float]:
    """RSS at two frame counts of a long stream (clip played forward and backward)."""
    tracker = make_tracker(method, config)
    tracker.step(frames[0])
    tracker.add_queries(first_grid_points(WIDTH, HEIGHT, num_points))
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
    from ..evaluation.encoder_bench import check_bench_model

    config = load_config(args.config, args.overrides)
    if args.chain_workers < 1:
        raise ConfigError(f"--chain-workers must be >= 1, got {args.chain_workers}")
    if args.json is not None:
        check_output(args.json, "--json")
    if not (args.profile or args.scaling) and args.encoder_runs != 0:
        check_bench_model(args.encoder_model)
    check_methods(args.method)
    if args.profile:
        return run_profile(args, config)
    if args.scaling:
        return run_scaling(args, config)
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
            r = time_method(method, config, frames, points, chain_workers=args.chain_workers)
            results["methods"][method][f"points_{points}"] = r
            print(f"  {method:>10} {points:5d} points: {r['latency_ms_p50']:7.2f} ms p50, "
                  f"{r['latency_ms_p95']:7.2f} ms p95, {r['fps_median']:7.1f} fps (median), "
                  f"{r['fps_mean']:7.1f} fps (mean)", file=sys.stderr, flush=True)
    for method, per in results["methods"].items():
        for key, r in per.items():
            base = results["methods"]["klt"][key]
            r["ratio_vs_klt"] = r["latency_ms_p50"] / base["latency_ms_p50"]  # > 1: slower than klt
            r["mean_ratio_vs_klt"] = r["latency_ms_mean"] / base["latency_ms_mean"]
    results["image_decoding"] = decode_section(frames[0], runs=20 if args.quick else 100)
    encoder_runs = args.encoder_runs if args.encoder_runs is not None else (10 if args.quick else 20)
    if encoder_runs > 0:
        results.update(encoder_section(args, frames, encoder_runs))
    return report(format_bench(results), results, args.json)


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
    from ..evaluation.encoder_bench import bench_encoders, bench_gaussian_tracking, bench_model, build_bench_engines

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
    lines = ["| method | points | fps (median) | fps (mean) | latency p50 ms | latency p95 ms | p50 / klt | mean / klt |",
             "|---|---|---|---|---|---|---|---|"]
    for method, per in results["methods"].items():
        for key, r in per.items():
            lines.append(f"| {method} | {key.split('_')[1]} | {r['fps_median']:.1f} | {r['fps_mean']:.1f} | "
                         f"{r['latency_ms_p50']:.2f} | {r['latency_ms_p95']:.2f} | {r['ratio_vs_klt']:.2f} | "
                         f"{r['mean_ratio_vs_klt']:.2f} |")
    if "encoder" in results:
        from ..evaluation.encoder_bench import format_encoder_table

        lines += ["", format_encoder_table(results["encoder"], results.get("gaussian_tracking"))]
    if "image_decoding" in results:
        lines += ["", "| image in | bytes | to RGB p50 ms | p95 ms |", "|---|---|---|---|"]
        for name, r in results["image_decoding"].items():
            lines.append(f"| {name} | {r['bytes']} | {r['ms_p50']:.2f} | {r['ms_p95']:.2f} |")
    mem = results["memory"]
    lines.append("")
    lines.append("memory (MiB): " + ", ".join(f"{k} = {v:.1f}" for k, v in mem.items()))
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------- --profile
PROFILE_POINTS = (256, 1024)


def run_profile(args: argparse.Namespace, config: UserConfig) -> int:
    """``bench --profile``: per-stage ms/frame of the default method, plus the ROS message costs."""
    from ..evaluation.profiling import lk_pyramid_share, profile_tracker
    from ..motion.lucas_kanade import lk_params

    try:
        from ..ros.profiling import profile_ros_messages
    except ImportError as err:  # ROS wheels / generated messages not installed
        skipped = f"skipped: {err}"

        def profile_ros_messages(state, frame):
            return skipped

    method = (args.method or [DEFAULT_METHOD])[0]
    if args.chain_workers != 1:
        raise ConfigError("--profile times the stages one after the other: leave --chain-workers at 1")
    num_frames = 40 if args.quick else 120
    print(f"rendering {num_frames} frames at {WIDTH}x{HEIGHT} ...", file=sys.stderr, flush=True)
    frames = bench_frames(num_frames, width=WIDTH, height=HEIGHT)
    results: dict[str, Any] = {"method": method, "frame_size": [WIDTH, HEIGHT], "points": {}}
    for points in PROFILE_POINTS:
        tracker = build_tracker(method, config, args.chain_workers)
        if not hasattr(tracker, "sources"):
            raise ConfigError(f"--profile times the stages of a ProbabilisticTracker; method '{method}' is not one")
        prof = profile_tracker(tracker, frames, points)
        lk = lk_pyramid_share(frames, points, lk_params(tracker.config.lk))
        ros = profile_ros_messages(tracker.state(), frames[-1])
        results["points"][points] = {"stages": prof.stages, "cpu_stages": prof.cpu_stages,
                                     "untimed_ms": prof.untimed_ms, "untimed_cpu_ms": prof.untimed_cpu_ms,
                                     "step_ms": prof.step_ms, "step_cpu_ms": prof.step_cpu_ms,
                                     "frames": prof.frames, "lk_pair": lk, "ros": ros}
        print(f"  {points} points: step {prof.step_ms:.2f} ms/frame ({prof.step_cpu_ms:.2f} ms CPU)",
              file=sys.stderr, flush=True)
    return report(format_profile(results), results, args.json)


def format_profile(results: dict[str, Any]) -> str:
    per = results["points"]
    cols = list(per)
    names: list[str] = []
    for p in cols:
        names += [n for n in per[p]["stages"] if n not in names]
    lines = [f"{results['method']} at {results['frame_size'][0]}x{results['frame_size'][1]}: mean exclusive time "
             f"per frame over {per[cols[0]]['frames']} frames (wall ms, process CPU ms, share of the wall time)", "",
             "| stage | " + " | ".join(f"{p} pts wall | CPU | share" for p in cols) + " |",
             "|---|" + "---|---|---|" * len(cols)]

    def row(name: str, wall: list[float | None], cpu: list[float | None]) -> str:
        cells = []
        for w, c, p in zip(wall, cpu, cols):
            cells.append("- | - | -" if w is None else f"{w:.2f} | {c:.2f} | {100 * w / per[p]['step_ms']:.0f} %")
        return f"| {name} | " + " | ".join(cells) + " |"

    for name in names:
        lines.append(row(name, [per[p]["stages"].get(name) for p in cols], [per[p]["cpu_stages"].get(name) for p in cols]))
    lines.append(row("untimed glue (ring update, drift, arrays)", [per[p]["untimed_ms"] for p in cols],
                     [per[p]["untimed_cpu_ms"] for p in cols]))
    lines.append(row("**whole step**", [per[p]["step_ms"] for p in cols], [per[p]["step_cpu_ms"] for p in cols]))
    lines.append("")
    lines.append("| one LK forward + backward pass (frame pair), wall ms | " + " | ".join(f"{p} points" for p in cols) + " |")
    lines.append("|---|" + "---|" * len(cols))
    lines.append("| all points | " + " | ".join(f"{per[p]['lk_pair']['all_points_ms']:.2f}" for p in cols) + " |")
    lines.append("| one point (about the pyramids built inside both OpenCV calls) | "
                 + " | ".join(f"{per[p]['lk_pair']['one_point_ms']:.2f}" for p in cols) + " |")
    for key, label in (("kernel_all_points_ms", "batched kernel, all points, pyramids built before (all cores)"),
                       ("kernel_one_thread_ms", "batched kernel, all points, one thread"),
                       ("pyramid_build_ms", "batched kernel: building one frame's pyramid")):
        if all(key in per[p]["lk_pair"] for p in cols):
            lines.append(f"| {label} | " + " | ".join(f"{per[p]['lk_pair'][key]:.2f}" for p in cols) + " |")
    lines.append("")
    ros = [per[p]["ros"] for p in cols]
    if isinstance(ros[0], str):
        lines.append(f"ROS message costs: {ros[0]}")
    else:
        lines.append("| ROS node, per frame (median wall ms) | " + " | ".join(f"{p} points" for p in cols) + " |")
        lines.append("|---|" + "---|" * len(cols))
        for name in ros[0]:
            lines.append(f"| {name} | " + " | ".join(f"{r[name]:.2f}" for r in ros) + " |")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------- --scaling
SCALING_POINTS = (64, 256, 1024, 4096)
SCALING_SIZES = ((640, 480), (854, 480), (1280, 720))


def run_scaling(args: argparse.Namespace, config: UserConfig) -> int:
    """``bench --scaling``: the default method and klt over points x resolution, in one process."""
    methods = args.method or [DEFAULT_METHOD]
    if "klt" not in methods:
        methods = methods + ["klt"]
    num_frames = 24 if args.quick else 60
    results: dict[str, Any] = {"frames_timed": num_frames - 4, "chain_workers": args.chain_workers, "rows": []}
    for width, height in SCALING_SIZES:
        print(f"rendering {num_frames} frames at {width}x{height} ...", file=sys.stderr, flush=True)
        frames = bench_frames(num_frames, width=width, height=height)
        for points in SCALING_POINTS:
            row: dict[str, Any] = {"width": width, "height": height, "points": points}
            for method in methods:
                row[method] = time_method(method, config, frames, points, chain_workers=args.chain_workers)
            results["rows"].append(row)
            print("  " + ", ".join(f"{m} {row[m]['fps_median']:.1f} fps" for m in methods)
                  + f" ({width}x{height}, {points} points)", file=sys.stderr, flush=True)
    results["methods"] = methods
    return report(format_scaling(results), results, args.json)


def format_scaling(results: dict[str, Any]) -> str:
    methods = results["methods"]
    head = "| resolution | points | " + " | ".join(f"{m} fps | {m} ms/frame | {m} CPU ms/frame" for m in methods)
    head += " | " + " | ".join(f"{m} / klt (ms)" for m in methods if m != "klt") + " |"
    n_ratio = sum(m != "klt" for m in methods)
    lines = [head, "|---|---|" + "---|---|---|" * len(methods) + "---|" * n_ratio]
    for row in results["rows"]:
        cells = [f"{row['width']}x{row['height']}", str(row["points"])]
        for m in methods:
            cells += [f"{row[m]['fps_median']:.1f}", f"{row[m]['latency_ms_p50']:.2f}", f"{row[m]['cpu_ms_p50']:.2f}"]
        base = row["klt"]["latency_ms_p50"]
        cells += [f"{row[m]['latency_ms_p50'] / base:.1f}" for m in methods if m != "klt"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
