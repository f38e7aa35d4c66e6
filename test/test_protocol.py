"""The evaluation protocol: cycle consistency, variance calibration, per-video verdicts, fair baselines."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from gs_tracker_ros.core.errors import InputError
from gs_tracker_ros.core.types import TrackState
from gs_tracker_ros.evaluation.calibration import (CALIBRATED_COVERAGE, calibration_counts, coverage_from_counts,
                                                   error_vs_sigma)
from gs_tracker_ros.evaluation.cycle import CycleClip, cycle_errors, evaluate_cycle, summarize_cycle
from gs_tracker_ros.evaluation.protocol import verdict
from gs_tracker_ros.tracking.config import TrackerConfig
from gs_tracker_ros.methods import build_probabilistic_tracker, make_tracker

REPO = Path(__file__).resolve().parents[1]


def translating_clip(t: int = 8, shift: int = 2, h: int = 120, w: int = 160) -> np.ndarray:
    """Frames of a smooth random texture moving right by ``shift`` px per frame (exact motion)."""
    rng = np.random.default_rng(0)
    tex = cv2.GaussianBlur(rng.uniform(0, 255, (h, w + t * shift)).astype(np.float32), (0, 0), 2.0)
    tex = cv2.normalize(tex, None, 0, 255, cv2.NORM_MINMAX).astype(np.uint8)
    frames = [np.repeat(tex[:, t * shift - i * shift: t * shift - i * shift + w, None], 3, axis=2) for i in range(t)]
    return np.ascontiguousarray(np.stack(frames))


class LosingTracker:
    """Reports every point occluded after the first frame (a tracker that loses everything)."""

    name = "loser"

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.xy = np.zeros((0, 2), np.float32)
        self.t = -1

    def step(self, frame):
        self.t += 1
        return TrackState(self.t, np.arange(len(self.xy)), self.xy, np.ones(len(self.xy), np.float32),
                          np.zeros(len(self.xy), bool))

    def add_queries(self, xy):
        self.xy = np.concatenate([self.xy, np.asarray(xy, np.float32)])
        return np.arange(len(self.xy) - len(xy), len(self.xy))

    def remove_queries(self, ids):
        raise KeyError(ids)


def test_cycle_returns_points_on_exact_motion_and_counts_losses() -> None:
    frames = translating_clip()
    err, ms = cycle_errors(make_tracker("klt"), frames, grid=4)
    assert err.shape == (16,) and ms.shape == (len(frames),)
    inner = np.isfinite(err)
    assert inner.sum() >= 8  # points near the right edge leave the view and count as lost
    assert np.all(err[inner] < 0.5)
    lost, _ = cycle_errors(LosingTracker(), frames, grid=4)
    assert np.all(np.isinf(lost))
    s = summarize_cycle(lost)
    assert s["within_8px"] == 0.0 and s["tracked"] == 0.0 and s["median_error_px"] == np.inf


def test_evaluate_cycle_pools_clips() -> None:
    clips = [CycleClip("a", translating_clip()), CycleClip("b", translating_clip(shift=1))]
    res = evaluate_cycle(lambda: make_tracker("klt"), clips, grid=3, progress=False)
    assert set(res["sequences"]) == {"a", "b"}
    assert res["overall"]["points"] == 18
    assert res["overall"]["within_2px"] >= max(s["within_2px"] for s in res["sequences"].values()) - 0.5


def test_cycle_difference_is_paired_over_grid_points() -> None:
    from gs_tracker_ros.evaluation.significance import beyond_noise, paired_cycle_difference

    def res(**clips):
        return {"method": "m", "sequences": {k: {"errors": list(v)} for k, v in clips.items()}}

    base = np.array([1.0, 3.0, 5.0, np.inf] * 16)  # 64 points per clip
    same = paired_cycle_difference(res(a=base, b=base), res(a=base, b=base))
    assert all(v == {"diff": 0.0, "low": 0.0, "high": 0.0} for v in same.values())
    better = base.copy()
    better[3::4] = 1.5  # every lost point of clip a returns within 2 px
    d = paired_cycle_difference(res(a=better, b=base), res(a=base, b=base))
    assert d["within_2px"]["diff"] == pytest.approx(16 / 128) and beyond_noise(d["within_2px"])
    assert d["tracked"]["diff"] == pytest.approx(16 / 128)
    one = base.copy()
    one[3] = 1.5  # a single point: within the noise
    d = paired_cycle_difference(res(a=one, b=base), res(a=base, b=base))
    assert d["within_4px"]["diff"] == pytest.approx(1 / 128) and not beyond_noise(d["within_4px"])
    with pytest.raises(InputError, match="different grids"):
        paired_cycle_difference(res(a=base[:9], b=base), res(a=base, b=base))


def test_coverage_of_a_calibrated_gaussian() -> None:
    rng = np.random.default_rng(1)
    sigma = rng.uniform(0.5, 20, 20000)
    err = np.linalg.norm(rng.normal(size=(20000, 2)) * sigma[:, None], axis=1)
    cov = coverage_from_counts(calibration_counts(err, sigma))
    assert abs(cov["coverage_1sigma"] - CALIBRATED_COVERAGE[1]) < 0.015
    assert abs(cov["coverage_2sigma"] - CALIBRATED_COVERAGE[2]) < 0.015
    over = coverage_from_counts(calibration_counts(err, sigma * 0.5))  # over-confident variance
    assert over["coverage_2sigma"] < 0.5
    curve = error_vs_sigma(np.stack([sigma, err], 1), bins=4)
    assert len(curve) == 4 and curve[0]["sigma_px"] < curve[-1]["sigma_px"]
    assert all(abs(c["p86_error_px"] / (2 * c["sigma_px"]) - 1) < 0.2 for c in curve)


def _result(**per_video):
    return {"sequences": {k: {"delta_seg": v, "delta_avg": v, "AJ": v} for k, v in per_video.items()}}


def test_verdict_needs_every_video() -> None:
    assert verdict(_result(dog=0.5, horse=0.5), _result(dog=0.4, horse=0.4)) == "helps"
    assert verdict(_result(dog=0.6, horse=0.3), _result(dog=0.4, horse=0.4)) == "mixed"  # pooled up, one video down
    assert verdict(_result(dog=0.3, horse=0.3), _result(dog=0.4, horse=0.4)) == "hurts"


def test_p_lost_separates_lost_points_on_badja(shared_data) -> None:
    """On labelled real footage the models never saw: p_lost ranks the points that are off by more
    than the delta_seg threshold above the others, the points it calls lost are far worse than the
    rest, and the evidence model beats a constant one (which ranks nothing)."""
    from gs_tracker_ros.core.evidence import EvidenceModel
    from gs_tracker_ros.evaluation.badja import load_badja_dataset
    from gs_tracker_ros.evaluation.runner import evaluate_badja
    from gs_tracker_ros.tracking.evidence import TRACK_FEATURES

    seqs = load_badja_dataset(shared_data / "badja_dev")
    res = evaluate_badja(lambda: make_tracker("probfuse"), seqs, progress=False)["overall"]
    assert res["p_lost_auc"] >= 0.70, res["p_lost_auc"]
    pairs = np.asarray(res["calibration"]["pairs"])
    called = pairs[:, 2] >= 0.5
    assert 0.05 <= called.mean() <= 0.5
    assert np.median(pairs[called, 1]) >= 2.0 * np.median(pairs[~called, 1])
    constant = EvidenceModel.constant(TRACK_FEATURES, 0.1, 16.0)
    flat = evaluate_badja(lambda: build_probabilistic_tracker(TrackerConfig(), track_model=constant), seqs,
                          progress=False)["overall"]
    assert flat["p_lost_auc"] == pytest.approx(0.5)


def test_eval_cli_cycle_and_per_video_table(shared_data, tmp_path) -> None:
    out = tmp_path / "cycle.json"
    proc = subprocess.run([sys.executable, "-m", "gs_tracker_ros", "eval", "--dataset", "cycle",
                           str(shared_data / "davis_unlabeled"), "--frames", "5", "--grid", "3", "--method", "klt",
                           "--method", "dis-chain-fast", "--json", str(out)],
                          cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    data = json.loads(out.read_text())
    klt = data["results"][0]
    assert klt["overall"]["points"] == 9 * len(klt["sequences"]) and len(klt["sequences"]) >= 10
    assert all(len(s["errors"]) == 9 for s in klt["sequences"].values())
    assert "| klt | **pooled** |" in proc.stdout
    # the second method minus the first, with its interval, printed and in the JSON
    (diff,) = data["differences"]
    assert diff["method"] == "dis-chain-fast" and diff["against"] == "klt" and "| dis-chain-fast | **pooled** |" in proc.stdout
    got = diff["differences"]["pooled"]["within_4px"]
    want = data["results"][1]["overall"]["within_4px"] - klt["overall"]["within_4px"]
    assert got["diff"] == pytest.approx(want) and got["low"] <= got["diff"] <= got["high"]
    bad = subprocess.run([sys.executable, "-m", "gs_tracker_ros", "eval", "--dataset", "cycle", str(tmp_path)],
                         cwd=REPO, capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "no image folders" in bad.stderr and "Traceback" not in bad.stderr


def test_eval_cli_badja_writes_the_error_vs_sigma_curve_and_figure(shared_data, tmp_path) -> None:
    out, fig = tmp_path / "badja.json", tmp_path / "calibration.png"
    proc = subprocess.run([sys.executable, "-m", "gs_tracker_ros", "eval", "--dataset", "badja",
                           str(shared_data / "badja_dev"), "--method", "probfuse", "--json", str(out),
                           "--plot", str(fig)], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    curve = json.loads(out.read_text())["overall"]["error_vs_sigma"]
    assert len(curve) == 8 and sum(b["n"] for b in curve) > 300  # every visible scored pair, 8 bins
    sig = [b["sigma_px"] for b in curve]
    assert sig == sorted(sig) and all(b["median_error_px"] <= b["p86_error_px"] for b in curve)
    import cv2

    img = cv2.imread(str(fig))
    assert img is not None and img.shape[:2] == (480, 640) and img.std() > 10  # a drawn figure, not blank
    bad = subprocess.run([sys.executable, "-m", "gs_tracker_ros", "eval", "--dataset", "cycle",
                          str(shared_data / "davis_unlabeled"), "--plot", str(fig)],
                         cwd=REPO, capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "--plot" in bad.stderr and "Traceback" not in bad.stderr
