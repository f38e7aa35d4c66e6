"""Query jitter (evaluation/jitter.py): moved queries, the truth kept, the spread summarised."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from gs_tracker_ros.core.errors import InputError
from gs_tracker_ros.evaluation.jitter import (evaluate_badja_jittered, jitter_means, jitter_queries,
                                             jittered_sequences, summarize_jitter)
from gs_tracker_ros.evaluation.protocol import verdict
from gs_tracker_ros.evaluation.runner import evaluate_badja
from gs_tracker_ros.evaluation.synthetic_gt import scene_sequence
from gs_tracker_ros.methods import make_tracker
from gs_tracker_ros.synthetic.config import SceneConfig
from gs_tracker_ros.synthetic.scene import make_scene


@pytest.fixture(scope="module")
def sequences():
    out = []
    for seed in (0, 1):
        scene = make_scene(SceneConfig(seed=seed, width=160, height=120, num_frames=8))
        out.append(scene_sequence(scene, num_points=24, seed=seed, name=f"scene{seed}"))
    return out


def test_queries_move_within_the_amplitude_and_the_truth_stays(sequences) -> None:
    seq = sequences[0]
    moved = jitter_queries(seq, 1.5, np.random.default_rng(3))
    offset = moved.query_xy - seq.query_xy
    assert np.abs(offset).max() <= 1.5 + 1e-5 and np.abs(offset).min() < 1.0 and np.abs(offset).max() > 0.5
    assert moved.tracks_xy is seq.tracks_xy and moved.visible is seq.visible and moved.frames is seq.frames
    np.testing.assert_array_equal(moved.query_frame, seq.query_frame)
    # amplitude 0 changes nothing; a query on the image border stays inside the image
    np.testing.assert_array_equal(jitter_queries(seq, 0.0, np.random.default_rng(3)).query_xy, seq.query_xy)
    corner = dataclasses.replace(seq, query_xy=np.zeros_like(seq.query_xy))
    border = jitter_queries(corner, 2.0, np.random.default_rng(0)).query_xy
    assert border.min() >= 0.0 and border.max() <= 2.0


def test_draws_are_reproducible_and_differ_from_each_other(sequences) -> None:
    a, b = jittered_sequences(sequences, 1.0, 3), jittered_sequences(sequences, 1.0, 3)
    assert len(a) == 3 and all(len(draw) == 2 for draw in a)
    for da, db in zip(a, b):
        for sa, sb in zip(da, db):
            np.testing.assert_array_equal(sa.query_xy, sb.query_xy)
    assert not np.array_equal(a[0][0].query_xy, a[1][0].query_xy)
    offsets = [a[0][i].query_xy - sequences[i].query_xy for i in (0, 1)]  # each sequence its own draw
    assert not np.allclose(offsets[0], offsets[1][: len(offsets[0])])
    assert not np.array_equal(a[0][0].query_xy, jittered_sequences(sequences, 1.0, 1, seed=1)[0][0].query_xy)


@pytest.mark.parametrize("amplitude, runs, message", [
    (-1.0, 2, "amplitude must be a finite number of px >= 0, got -1.0"),
    (float("nan"), 2, "got nan"),
    (1.0, 0, "at least 1 draw, got 0"),
])
def test_bad_settings_are_refused(sequences, amplitude, runs, message) -> None:
    with pytest.raises(InputError, match=message):
        jittered_sequences(sequences, amplitude, runs)


def test_summary_is_exact() -> None:
    def res(a, b):
        return {"sequences": {"x": {"delta_seg": a}}, "overall": {"delta_seg": b}}

    s = summarize_jitter([res(0.2, 0.5), res(0.4, 0.5), res(0.6, 0.8)], 1.0, keys=("delta_seg",))
    x = s["sequences"]["x"]["delta_seg"]
    assert x["mean"] == pytest.approx(0.4) and x["sd"] == pytest.approx(np.std([0.2, 0.4, 0.6]))
    assert (x["min"], x["max"], x["values"]) == (0.2, 0.6, [0.2, 0.4, 0.6])
    assert s["overall"]["delta_seg"]["mean"] == pytest.approx(0.6) and s["runs"] == 3
    means = jitter_means("m", s)
    assert means == {"method": "m", "sequences": {"x": {"delta_seg": pytest.approx(0.4)}},
                     "overall": {"delta_seg": pytest.approx(0.6)}}
    assert verdict(means, jitter_means("n", summarize_jitter([res(0.1, 0.1)], 1.0, keys=("delta_seg",))),
                   keys=("delta_seg",)) == "helps"
    with pytest.raises(InputError):
        summarize_jitter([], 1.0)


def test_zero_jitter_reproduces_the_exact_scores_and_one_px_spreads_them(sequences) -> None:
    exact = evaluate_badja(lambda: make_tracker("klt"), sequences, progress=False)
    same = evaluate_badja_jittered(lambda: make_tracker("klt"), sequences, 0.0, 2)
    for key in ("delta_avg", "OA", "AJ"):
        assert same["overall"][key]["values"] == [exact["overall"][key]] * 2
        for name in ("scene0", "scene1"):
            assert same["sequences"][name][key]["sd"] == 0.0
    moved = evaluate_badja_jittered(lambda: make_tracker("klt"), sequences, 1.0, 3)
    values = moved["overall"]["delta_avg"]["values"]
    assert len(values) == 3 and len(set(values)) > 1  # the draws differ...
    assert moved["overall"]["delta_avg"]["min"] <= moved["overall"]["delta_avg"]["mean"] <= max(values)
    assert json.loads(json.dumps(moved))["amplitude_px"] == 1.0  # ...and the summary is JSON


def test_jitter_figure_is_drawn_and_needs_jittered_results(tmp_path, sequences) -> None:
    import cv2

    from gs_tracker_ros.evaluation.plots.jitter import plot_query_jitter

    result = evaluate_badja(lambda: make_tracker("klt"), sequences, progress=False)
    with pytest.raises(ValueError, match="query_jitter"):
        plot_query_jitter([result], tmp_path / "none.png")
    result["query_jitter"] = evaluate_badja_jittered(lambda: make_tracker("klt"), sequences, 1.0, 2)
    path = plot_query_jitter([result], tmp_path / "j.png", key="delta_avg")
    image = cv2.imread(str(path))
    assert image is not None and image.shape[1] > 400 and image.std() > 10
