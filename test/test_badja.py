"""BADJA loader + runner + KLT on the real badja_dev data (skipped when the data is absent)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from gs_tracker_ros.baselines import KLTTracker
from gs_tracker_ros.core.errors import InputError
from gs_tracker_ros.evaluation.badja import load_badja_dataset, load_badja_sequence
from gs_tracker_ros.evaluation.metrics import SCORE_KEYS
from gs_tracker_ros.evaluation.runner import evaluate_badja, run_tracker_on_sequence
from stand_ins import StaticTracker  # test/ is on sys.path

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "badja_dev"
needs_data = pytest.mark.skipif(not (DATA / "dog" / "gt.npz").is_file(), reason=f"BADJA dev data not found at {DATA}")


def _static_factory() -> StaticTracker:
    tracker = StaticTracker()
    tracker.reset()
    return tracker


def test_runner_query_semantics() -> None:
    frames = np.zeros((4, 32, 32, 3), np.uint8)
    q = {2: np.array([[5.0, 6.0]]), 0: np.array([[1.0, 2.0], [3.0, 4.0]])}
    run = run_tracker_on_sequence(_static_factory(), frames, q)
    assert run.method == "static" and run.xy.shape == (3, 4, 2) and run.step_ms.shape == (4,)
    np.testing.assert_array_equal(run.query_frame, [0, 0, 2])
    np.testing.assert_array_equal(run.ids, [0, 1, 2])
    assert np.isnan(run.xy[2, :2]).all() and not run.visible[2, :2].any()
    np.testing.assert_array_equal(run.xy[2, 2:], [[5, 6], [5, 6]])
    assert run.visible[:2].all() and run.variance[2, 2] == 0.0
    with pytest.raises(InputError, match="only 4 frames"):
        run_tracker_on_sequence(_static_factory(), frames, {7: np.zeros((1, 2))})


def test_loader_errors(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="does not exist"):
        load_badja_dataset(tmp_path / "missing")
    with pytest.raises(InputError, match="gt.npz"):
        load_badja_dataset(tmp_path)
    with pytest.raises(InputError, match="gt.npz"):
        load_badja_sequence(tmp_path)


@needs_data
def test_load_badja_dev() -> None:
    seqs = load_badja_dataset(DATA)
    assert [s.name for s in seqs] == ["bear", "dog", "horsejump-high", "horsejump-low"]
    dog = seqs[1]
    assert load_badja_dataset(DATA / "dog")[0].name == "dog"
    n, t = dog.tracks_xy.shape[:2]
    assert t == 60 and 0 < n <= 20 and dog.image_hw == (480, 854)
    assert dog.visible.shape == (n, t) and dog.annotated.shape == (t,)
    assert dog.query_frame.shape == (n,) and dog.query_xy.shape == (n, 2)
    assert dog.mask_area.shape == (t,) and np.all(dog.mask_area > 0)
    assert dog.frames is not None and len(dog.frames) == t and dog.frames.size == (854, 480)
    for i in range(n):
        f = dog.query_frame[i]
        assert dog.annotated[f] and dog.visible[i, f]
        assert not (dog.annotated[:f] & dog.visible[i, :f]).any()  # first visible labelled frame
        np.testing.assert_array_equal(dog.query_xy[i], dog.tracks_xy[i, f])


@needs_data
def test_klt_beats_static_on_dog() -> None:
    dog = load_badja_sequence(DATA / "dog")
    klt = evaluate_badja(KLTTracker, [dog], progress=False)
    static = evaluate_badja(_static_factory, [dog], progress=False)
    assert klt["method"] == "klt" and set(klt["sequences"]) == {"dog"}
    for key in SCORE_KEYS:
        v = klt["overall"][key]
        assert np.isfinite(v) and 0.0 <= v <= 1.0, (key, v)
    assert klt["overall"]["ms_per_frame"] > 0
    assert klt["overall"]["counts"]["n_visible"] > 50
    assert klt["overall"]["delta_avg"] > static["overall"]["delta_avg"]
