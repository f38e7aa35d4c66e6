"""Tests for the KLT baseline tracker on synthetic textured frames with known motion."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from gs_tracker_ros.baselines import KLTConfig, KLTTracker
from gs_tracker_ros.core.errors import ConfigError, InputError

H, W = 120, 160


def texture(seed: int = 0, h: int = H + 40, w: int = W + 40) -> np.ndarray:
    """Smoothed random RGB texture, larger than a frame so that crops can shift it."""
    rng = np.random.default_rng(seed)
    noise = rng.uniform(0, 255, size=(h, w)).astype(np.float32)
    smooth = cv2.GaussianBlur(noise, (0, 0), 1.5)
    smooth = cv2.normalize(smooth, None, 0, 255, cv2.NORM_MINMAX).astype(np.uint8)
    return np.repeat(smooth[:, :, None], 3, axis=2)


def crop(tex: np.ndarray, dx: int, dy: int) -> np.ndarray:
    """Frame whose content is ``tex`` moved by (+dx, +dy) px relative to crop(tex, 0, 0)."""
    return np.ascontiguousarray(tex[20 - dy : 20 - dy + H, 20 - dx : 20 - dx + W])


def test_integer_translation_followed() -> None:
    tex = texture()
    tracker = KLTTracker()
    assert tracker.name == "klt"
    s0 = tracker.step(crop(tex, 0, 0))
    assert len(s0) == 0 and s0.frame_index == 0
    rng = np.random.default_rng(1)
    queries = rng.uniform([30, 30], [W - 30, H - 30], size=(25, 2)).astype(np.float32)
    ids = tracker.add_queries(queries)
    np.testing.assert_array_equal(ids, np.arange(25))
    state = tracker.step(crop(tex, 3, -2))
    assert state.frame_index == 1
    np.testing.assert_array_equal(state.ids, ids)
    assert state.visible.all()
    err = np.abs(state.xy - (queries + np.array([3, -2], np.float32)))
    assert err.max() < 0.1
    assert np.all(state.variance >= tracker.config.variance_floor)
    assert np.all(state.variance < tracker.config.variance_floor + 1.0)
    # a second step keeps following
    state = tracker.step(crop(tex, 5, 1))
    assert np.abs(state.xy - (queries + np.array([5, 1], np.float32))).max() < 0.1


def test_point_leaving_image_is_lost_for_good() -> None:
    tex = texture(2)
    tracker = KLTTracker()
    tracker.step(crop(tex, 0, 0))
    ids = tracker.add_queries(np.array([[8.0, 60.0], [80.0, 60.0]], np.float32))
    state = tracker.step(crop(tex, -12, 0))  # content moves 12 px left: point 0 exits at x = -4
    assert not state.visible[0] and state.visible[1]
    assert state.variance[0] == tracker.config.lost_variance
    last = state.xy[0].copy()
    state = tracker.step(crop(tex, 0, 0))  # content comes back: a lost point stays lost
    assert not state.visible[0]
    np.testing.assert_array_equal(state.xy[0], last)
    np.testing.assert_array_equal(state.ids, ids)


def test_query_outside_image_is_invisible() -> None:
    tracker = KLTTracker()
    tracker.step(crop(texture(), 0, 0))
    tracker.add_queries(np.array([[-5.0, 10.0]]))
    assert not tracker.state().visible[0]


def test_ids_stable_after_removals_and_reset() -> None:
    tex = texture(3)
    tracker = KLTTracker()
    tracker.step(crop(tex, 0, 0))
    q = np.array([[40.0, 40.0], [60.0, 50.0], [80.0, 60.0]], np.float32)
    ids = tracker.add_queries(q)
    tracker.remove_queries(np.array([ids[1]]))
    new = tracker.add_queries(np.array([[100.0, 70.0], [50.0, 80.0]]))
    np.testing.assert_array_equal(new, [3, 4])  # ids are never reused
    state = tracker.step(crop(tex, 1, 1))
    np.testing.assert_array_equal(state.ids, [0, 2, 3, 4])
    expected = np.array([[41, 41], [81, 61], [101, 71], [51, 81]], np.float32)
    assert np.abs(state.xy - expected).max() < 0.1
    with pytest.raises(KeyError):
        tracker.remove_queries(np.array([1]))
    tracker.reset()
    assert len(tracker.state()) == 0
    tracker.step(crop(tex, 0, 0))
    np.testing.assert_array_equal(tracker.add_queries(q[:1]), [0])


def test_errors() -> None:
    tracker = KLTTracker()
    with pytest.raises(InputError, match="step"):
        tracker.add_queries(np.zeros((1, 2)))
    tracker.step(crop(texture(), 0, 0))
    with pytest.raises(InputError, match="shape"):
        tracker.add_queries(np.zeros((2, 3)))
    with pytest.raises(InputError, match="size changed"):
        tracker.step(np.zeros((H + 1, W, 3), np.uint8))
    with pytest.raises(ConfigError):
        KLTConfig(win_size=1)
