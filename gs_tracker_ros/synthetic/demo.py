"""Render a synthetic scene with its ground-truth tracks drawn on it (video + contact sheet).

    python -m gs_tracker_ros.synthetic.demo --video /tmp/synthetic_demo.mp4 --sheet /tmp/synthetic_sheet.png
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from ..core.types import track_status
from ..viz.overlay import OverlayStyle, TrackHistory, draw_tracks
from ..viz.video import OverlayOutput
from .config import SceneConfig
from .scene import SyntheticScene, make_scene


def spread_queries(scene: SyntheticScene, n: int, frame: int = 0, min_dist_px: float = 24.0, seed: int = 0) -> np.ndarray:
    """Up to ``n`` query points ``(n, 2)`` px on frame ``frame``, at least ``min_dist_px`` apart.

    Candidates come from :meth:`SyntheticScene.sample_queries` (away from layer edges); a greedy
    pass keeps those far enough from the ones already kept, so the points cover the image.
    """
    cand = scene.sample_queries(40 * n, frame=frame, seed=seed, margin_px=3)
    kept: list[np.ndarray] = []
    for p in cand:
        if all(np.hypot(*(p - k)) >= min_dist_px for k in kept):
            kept.append(p)
            if len(kept) == n:
                break
    return np.array(kept, np.float64).reshape(-1, 2)


def render_gt_demo(scene: SyntheticScene, video_path: str | Path | None, sheet_path: str | Path | None = None,
                   num_points: int = 60, sheet_frames: int = 6, fps: float = 30.0,
                   style: OverlayStyle | None = None) -> dict[str, float]:
    """Draw ground-truth tracks of ``num_points`` frame-0 queries over every frame of ``scene``.

    Writes the video to ``video_path`` (if given) and a ``sheet_frames``-frame PNG contact
    sheet to ``sheet_path`` (if given). Returns timings in seconds.
    """
    t0 = time.perf_counter()
    q = spread_queries(scene, num_points)
    tracks, visible = scene.track(q, np.zeros(len(q), np.int64))
    ids = np.arange(len(q))
    hist = TrackHistory(max_len=(style or OverlayStyle()).tail_len)
    t_render = t_draw = 0.0
    with OverlayOutput(video_path, sheet_path, scene.num_frames, sheet_frames, fps) as out:
        for t in range(scene.num_frames):
            a = time.perf_counter()
            img = scene.render(t)
            b = time.perf_counter()
            hist.update_arrays(ids, tracks[:, t], visible[:, t], frame_index=t,
                               status=track_status(tracks[:, t], visible[:, t], img.shape[:2]))
            out.add(t, draw_tracks(img, hist, style=style, extra_header="synthetic ground truth"))
            t_render += b - a
            t_draw += time.perf_counter() - b
    return {"total_s": time.perf_counter() - t0, "render_s": t_render, "draw_s": t_draw}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--video", default="/tmp/synthetic_demo.mp4")
    ap.add_argument("--sheet", default="/tmp/synthetic_sheet.png")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--points", type=int, default=60)
    args = ap.parse_args(argv)
    scene = make_scene(SceneConfig(seed=args.seed))
    times = render_gt_demo(scene, args.video, args.sheet, num_points=args.points)
    print(f"wrote {args.video} and {args.sheet}: " + ", ".join(f"{k} {v:.2f}" for k, v in times.items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
