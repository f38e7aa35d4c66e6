"""Points picked on an earlier frame, carried to the most recent one (tracking/retrack.py), no ROS."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from gs_tracker_ros.methods import make_tracker
from gs_tracker_ros.tracking.retrack import FrameHistory, QueryCarrier

VELOCITY = np.array([2.0, 1.0])  # px / frame, content moving right and down


def _scene(num_frames: int, width: int = 128, height: int = 96, seed: int = 3) -> list[np.ndarray]:
    """A smooth random texture translated by VELOCITY per frame: a point at p on frame a is at
    exactly p + VELOCITY * (b - a) on frame b (integer shifts of one canvas)."""
    vx, vy = int(VELOCITY[0]), int(VELOCITY[1])
    rng = np.random.default_rng(seed)
    canvas = cv2.GaussianBlur(rng.random((height + vy * num_frames, width + vx * num_frames, 3)).astype(np.float32),
                              (0, 0), 2.0)
    canvas = ((canvas - canvas.min()) / (canvas.max() - canvas.min()) * 255).astype(np.uint8)
    x0, y0 = vx * num_frames, vy * num_frames
    return [np.ascontiguousarray(canvas[y0 - vy * t:y0 - vy * t + height, x0 - vx * t:x0 - vx * t + width])
            for t in range(num_frames)]


def _history(frames: list[np.ndarray], capacity: int = 30) -> FrameHistory:
    history = FrameHistory(capacity)
    for t, image in enumerate(frames):
        history.record(1_000_000_000 * (100 + t), image, meta=f"header {t}")
    return history


QUERIES = np.array([[30.0, 25.0], [60.0, 40.0], [45.5, 50.25]])


@pytest.mark.parametrize("method", ["probfuse", "klt"])
def test_a_point_picked_on_an_earlier_frame_lands_where_a_tracker_started_there_puts_it(method):
    frames = _scene(9)
    history = _history(frames)
    start = history.find(1_000_000_000 * 102)
    assert start is not None and start.meta == "header 2"
    carrier = QueryCarrier(lambda: make_tracker(method), start, QUERIES)
    carrier.follow(history.after(start.seq))
    xy, hidden = carrier.positions()
    assert carrier.steps == 6 and carrier.seq == history.latest.seq

    reference = make_tracker(method)  # a tracker that was started on frame 2 with the points
    reference.step(frames[2])
    ids = reference.add_queries(QUERIES)
    for image in frames[3:]:
        state = reference.step(image)
    np.testing.assert_array_equal(xy, state.xy[np.searchsorted(state.ids, ids)].astype(np.float64))
    # and that is where the points are: the scene's ground truth on frame 8
    np.testing.assert_allclose(xy, QUERIES + VELOCITY * 6, atol=0.5)
    assert not hidden.any()


def test_following_in_pieces_equals_following_at_once_and_skips_frames_already_followed():
    frames = _scene(8)
    history = _history(frames)
    start = history.find(1_000_000_000 * 101)
    whole = QueryCarrier(lambda: make_tracker("klt"), start, QUERIES)
    whole.follow(history.after(start.seq))
    pieces = QueryCarrier(lambda: make_tracker("klt"), start, QUERIES)
    newer = history.after(start.seq)
    pieces.follow(newer[:3])
    pieces.follow(newer)  # the first three again: skipped, not tracked twice
    assert pieces.steps == whole.steps == 6
    np.testing.assert_array_equal(pieces.positions()[0], whole.positions()[0])


def test_before_following_the_points_are_where_they_were_given():
    frames = _scene(3)
    history = _history(frames)
    carrier = QueryCarrier(lambda: make_tracker("klt"), history.latest, QUERIES)
    carrier.follow(history.after(history.latest.seq))  # nothing newer
    xy, hidden = carrier.positions()
    np.testing.assert_array_equal(xy, QUERIES)
    assert carrier.steps == 0 and not hidden.any()


def test_frame_history_keeps_the_last_frames_and_counts_clears():
    frames = _scene(6)
    history = _history(frames, capacity=4)
    assert len(history) == 4 and history.latest.seq == 6 and history.latest.shape_hw == frames[0].shape[:2]
    assert history.find(1_000_000_000 * 101) is None  # dropped: older than the last four
    assert history.find(1_000_000_000 * 103).seq == 4
    assert [f.seq for f in history.after(4)] == [5, 6]
    assert history.stamp_span() == (1_000_000_000 * 102, 1_000_000_000 * 105)
    history.clear()
    assert history.latest is None and len(history) == 0 and history.generation == 1
    assert history.stamp_span() is None
    only_latest = _history(frames, capacity=0)  # capacity 0: the most recent frame, nothing older
    assert len(only_latest) == 1 and only_latest.find(1_000_000_000 * 105).seq == 6
    assert only_latest.find(1_000_000_000 * 104) is None
    with pytest.raises(ValueError, match="capacity must be >= 0"):
        FrameHistory(-1)
