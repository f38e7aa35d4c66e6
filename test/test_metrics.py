"""Hand-computed cases for gs_tracker_ros.evaluation.metrics."""

from __future__ import annotations

import numpy as np
import pytest

from gs_tracker_ros.core.errors import InputError
from gs_tracker_ros.evaluation.badja import TrackingSequence
from gs_tracker_ros.evaluation.metrics import aggregate, badja_scores


def make_seq(
    tracks: np.ndarray,
    visible: np.ndarray,
    annotated: np.ndarray | None = None,
    query_frame: np.ndarray | None = None,
    image_hw: tuple[int, int] = (512, 1024),
    mask_area: float | np.ndarray = np.nan,
) -> TrackingSequence:
    n, t = visible.shape
    annotated = np.ones(t, bool) if annotated is None else annotated
    query_frame = np.zeros(n, np.int64) if query_frame is None else query_frame
    return TrackingSequence(
        name="toy",
        frames=None,
        tracks_xy=tracks.astype(np.float32),
        visible=visible.astype(bool),
        annotated=annotated.astype(bool),
        query_frame=query_frame.astype(np.int64),
        query_xy=tracks[np.arange(n), query_frame].astype(np.float32),
        mask_area=np.broadcast_to(np.asarray(mask_area, np.float64), (t,)).copy(),
        image_hw=image_hw,
        joint_ids=np.arange(n),
    )


def grid_tracks(n: int, t: int) -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.uniform(100, 400, size=(n, t, 2)).astype(np.float32)


def test_perfect_prediction() -> None:
    tracks = grid_tracks(5, 6)
    vis = np.ones((5, 6), bool)
    vis[1, 3] = False
    seq = make_seq(tracks, vis, mask_area=10000.0)
    r = badja_scores(tracks, vis, seq)
    for key in ("delta_seg", "delta_3px", "delta_avg", "OA", "AJ"):
        assert r[key] == 1.0, key
    assert r["counts"]["n_pairs"] == 5 * 5  # frame 0 is the query frame: not scored
    assert r["counts"]["n_visible"] == 5 * 5 - 1


def test_off_by_two_native_px() -> None:
    # 1024x512 image: x scales by 1/4, y by 1/2 to reach 256x256.
    tracks = grid_tracks(4, 3)
    vis = np.ones((4, 3), bool)
    pred = tracks.copy()
    pred[1, 1:, 0] += 2.0  # 2 px native -> 0.5 px at 256: within every threshold
    seq = make_seq(tracks, vis)
    r = badja_scores(pred, vis, seq)
    assert r["delta_3px"] == 1.0 and r["delta_avg"] == 1.0 and r["AJ"] == 1.0 and r["OA"] == 1.0


def test_known_fractions_tapvid_rescale() -> None:
    tracks = grid_tracks(4, 3)
    vis = np.ones((4, 3), bool)
    pred = tracks.copy()
    pred[1, :, 0] += 2.0  # 0.5 px at 256
    pred[2, :, 1] += 2.5  # 1.25 px at 256 (y scale 1/2); 2.5 px native
    pred[3, :, 0] += 20.0  # 5 px at 256; 20 px native
    seq = make_seq(tracks, vis)
    r = badja_scores(pred, vis, seq)
    # native: points 0, 1, 2 within 3 px
    assert r["delta_3px"] == pytest.approx(3 / 4)
    # thresholds 1, 2, 4, 8, 16 -> 2/4, 3/4, 3/4, 4/4, 4/4
    assert r["delta_avg"] == pytest.approx((0.5 + 0.75 + 0.75 + 1 + 1) / 5)
    # all predicted visible: Jaccard = TP / (TP + 2 * misses) per frame:
    # k=1: 2/(2+2+2); k=2,4: 3/(3+1+1); k=8,16: 1
    assert r["AJ"] == pytest.approx((1 / 3 + 3 / 5 + 3 / 5 + 1 + 1) / 5)
    assert r["OA"] == 1.0
    assert r["counts"]["within"] == [4, 6, 6, 8, 8]  # two scored frames
    assert np.isnan(r["delta_seg"])  # no mask area known


def test_occlusion_mismatch() -> None:
    tracks = grid_tracks(2, 3)
    gt_vis = np.array([[1, 1, 1], [1, 1, 0]], bool)
    pred_vis = np.array([[1, 1, 0], [1, 1, 1]], bool)  # both wrong on frame 2
    seq = make_seq(tracks, gt_vis)
    r = badja_scores(tracks, pred_vis, seq)  # positions exact
    assert r["OA"] == pytest.approx(2 / 4)
    assert r["delta_avg"] == 1.0  # position accuracy ignores predicted visibility
    assert r["delta_3px"] == 1.0
    # TP = 2 (both on frame 1), FP = 1 (point 1 frame 2), FN = 1 (point 0 frame 2)
    assert r["AJ"] == pytest.approx(2 / (2 + 1 + 1))
    assert r["counts"]["tp"] == [2] * 5 and r["counts"]["fp"] == [1] * 5


def test_far_visible_prediction_counts_as_fp_and_fn() -> None:
    tracks = grid_tracks(1, 2)
    vis = np.ones((1, 2), bool)
    pred = tracks.copy()
    pred[0, 1, 1] += 10.0  # 5 px at 256 (y scale 1/2)
    r = badja_scores(pred, vis, make_seq(tracks, vis))
    # k=1,2,4: TP 0 -> 0; k=8,16: 1
    assert r["AJ"] == pytest.approx(2 / 5)
    assert r["counts"]["fp"] == [1, 1, 1, 0, 0]


def test_unscored_frames_are_ignored() -> None:
    tracks = grid_tracks(2, 5)
    vis = np.ones((2, 5), bool)
    annotated = np.array([1, 1, 0, 1, 0], bool)
    query = np.array([1, 0])
    pred = tracks.copy()
    pred_vis = vis.copy()
    # garbage on frames that must not be scored
    pred[0, :2] = -1000.0  # point 0: frames 0 (before query) and 1 (its query frame)
    pred_vis[0, :2] = False
    pred[:, 2] = np.nan  # unannotated
    pred[:, 4] = 5000.0
    pred_vis[:, [2, 4]] = False
    pred[1, 0] = -50.0  # point 1's query frame
    seq = make_seq(tracks, vis, annotated=annotated, query_frame=query)
    r = badja_scores(pred, pred_vis, seq)
    for key in ("delta_3px", "delta_avg", "OA", "AJ"):
        assert r[key] == 1.0, key
    # point 0: frame 3; point 1: frames 1 and 3
    assert r["counts"]["n_pairs"] == 3


def test_delta_seg_threshold_from_mask_area() -> None:
    tracks = grid_tracks(2, 2)
    vis = np.ones((2, 2), bool)
    pred = tracks.copy()
    pred[0, 1, 0] += 9.0  # threshold 0.2 * sqrt(2500) = 10 px
    pred[1, 1, 0] += 11.0
    r = badja_scores(pred, vis, make_seq(tracks, vis, mask_area=2500.0))
    assert r["delta_seg"] == pytest.approx(0.5)
    assert r["delta_3px"] == 0.0
    # a larger mask on the scored frame lets both through
    r = badja_scores(pred, vis, make_seq(tracks, vis, mask_area=np.array([1.0, 3600.0])))
    assert r["delta_seg"] == 1.0


def test_aggregate_pools_pairs() -> None:
    tracks = grid_tracks(3, 2)
    vis = np.ones((3, 2), bool)
    good = badja_scores(tracks[:1], vis[:1], make_seq(tracks[:1], vis[:1]))  # 1 pair, right
    bad_pred = tracks[1:] + 100.0
    bad = badja_scores(bad_pred, vis[1:], make_seq(tracks[1:], vis[1:]))  # 2 pairs, wrong
    pooled = aggregate([good, bad])
    assert pooled["delta_3px"] == pytest.approx(1 / 3)
    assert pooled["counts"]["n_pairs"] == 3
    assert aggregate([good, bad], mode="mean")["delta_3px"] == pytest.approx(0.5)
    with pytest.raises(InputError):
        aggregate([good], mode="median")


def test_shape_errors() -> None:
    tracks = grid_tracks(2, 3)
    vis = np.ones((2, 3), bool)
    seq = make_seq(tracks, vis)
    with pytest.raises(InputError, match="pred_xy"):
        badja_scores(tracks[:1], vis, seq)
    with pytest.raises(InputError, match="pred_visible"):
        badja_scores(tracks, vis[:, :2], seq)
