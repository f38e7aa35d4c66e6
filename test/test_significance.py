"""Paired bootstrap over points (evaluation/significance.py): exact cases built from per-point counts."""

from __future__ import annotations

import numpy as np
import pytest

from gs_tracker_ros.core.errors import InputError
from gs_tracker_ros.evaluation.metrics import badja_scores, count_matches, scored_pairs, total_counts
from gs_tracker_ros.evaluation.runner import pool_scores, score_sequence, summarize_scores
from gs_tracker_ros.evaluation.significance import beyond_noise, format_difference, paired_difference

from test_metrics import grid_tracks, make_seq


def result(method: str, predictions: dict, sequences: dict) -> dict:
    """An ``evaluate_badja``-shaped result of per-video predictions ``{name: (xy, visible)}``."""
    scores = {}
    for name, seq in sequences.items():
        xy, vis = predictions[name]
        scores[name] = score_sequence(xy, vis, np.ones(vis.shape, np.float32), seq)
    return {"method": method, "sequences": {k: summarize_scores(v, 1.0) for k, v in scores.items()},
            "overall": summarize_scores(pool_scores(list(scores.values())), 1.0)}


def videos(n: int = 20, t: int = 6) -> dict:
    out = {}
    for i, name in enumerate(("a", "b")):
        seq = make_seq(grid_tracks(n, t) + 10 * i, np.ones((n, t), bool), mask_area=400.0)  # delta_seg at 4 px
        seq.name = name
        out[name] = seq
    return out


def test_per_point_counts_sum_to_the_counts() -> None:
    seq = videos()["a"]
    rng = np.random.default_rng(1)
    pred = seq.tracks_xy + rng.normal(0, 6, seq.tracks_xy.shape).astype(np.float32)
    vis = rng.random(seq.visible.shape) > 0.2
    args = (pred, vis, seq.tracks_xy, seq.visible, scored_pairs(seq.annotated, seq.query_frame), seq.image_hw,
            seq.mask_area)
    total, per_point = count_matches(*args), count_matches(*args, per_point=True)
    assert total_counts(per_point) == total  # the totals badja_scores derives from the per-point counts
    for key, value in total.items():
        assert np.array_equal(np.asarray(per_point[key]).sum(axis=-1), np.asarray(value)), key
    assert np.asarray(per_point["within"]).shape == (5, 20)
    assert badja_scores(pred, vis, seq)["point_counts"] == per_point


def test_identical_results_differ_by_exactly_zero() -> None:
    seqs = videos()
    preds = {k: (s.tracks_xy + 3.0, np.ones(s.visible.shape, bool)) for k, s in seqs.items()}
    a, b = result("a", preds, seqs), result("b", preds, seqs)
    for per_key in paired_difference(a, b).values():
        for interval in per_key.values():
            assert interval == {"diff": 0.0, "low": 0.0, "high": 0.0}
            assert not beyond_noise(interval)


def test_every_point_better_is_beyond_noise_and_one_point_is_not() -> None:
    seqs = videos()
    exact = {k: (s.tracks_xy.copy(), np.ones(s.visible.shape, bool)) for k, s in seqs.items()}
    far = {k: (s.tracks_xy + 50.0, np.ones(s.visible.shape, bool)) for k, s in seqs.items()}
    d = paired_difference(result("exact", exact, seqs), result("far", far, seqs))
    for video in ("a", "b", "pooled"):
        assert d[video]["delta_seg"]["diff"] == pytest.approx(1.0)
        assert beyond_noise(d[video]["delta_seg"])
    assert format_difference(d["pooled"]["delta_seg"]) == "+100.0 [+100.0, +100.0]*"
    # one point of 20 tracked exactly instead of 50 px off: +5 points of delta_seg, but a
    # resample of the points may leave it out, so the interval reaches 0
    one = {k: (v[0].copy(), v[1]) for k, v in far.items()}
    one["a"][0][3] = seqs["a"].tracks_xy[3]
    d = paired_difference(result("one", one, seqs), result("far", far, seqs))
    assert d["a"]["delta_seg"]["diff"] == pytest.approx(1 / 20)
    assert d["a"]["delta_seg"]["low"] == 0.0 and not beyond_noise(d["a"]["delta_seg"])
    assert d["b"]["delta_seg"] == {"diff": 0.0, "low": 0.0, "high": 0.0}
    assert d["pooled"]["delta_seg"]["diff"] == pytest.approx(1 / 40)


def test_results_on_other_points_are_refused() -> None:
    seqs = videos()
    preds = {k: (s.tracks_xy, np.ones(s.visible.shape, bool)) for k, s in seqs.items()}
    fewer = {k: make_seq(s.tracks_xy[:10], s.visible[:10], mask_area=400.0) for k, s in seqs.items()}
    for k, s in fewer.items():
        s.name = k
    small = result("small", {k: (s.tracks_xy, np.ones(s.visible.shape, bool)) for k, s in fewer.items()}, fewer)
    with pytest.raises(InputError, match="different points"):
        paired_difference(result("full", preds, seqs), small)
    with pytest.raises(InputError, match="level"):
        paired_difference(small, small, level=1.5)
