"""The online probabilistic tracker on frames with exactly known motion."""

import cv2
import numpy as np
import pytest

from gs_tracker_ros.core.errors import ConfigError, InputError
from gs_tracker_ros.core.types import TrackStatus
from gs_tracker_ros.evaluation.runner import evaluate_badja
from gs_tracker_ros.evaluation.synthetic_gt import scene_sequence
from gs_tracker_ros.methods import build_probabilistic_tracker, make_tracker
from gs_tracker_ros.synthetic import SceneConfig, make_scene
from gs_tracker_ros.tracking.config import TrackerConfig


def texture(h=240, w=320, seed=0):
    rng = np.random.default_rng(seed)
    img = np.zeros((h, w), np.float32)
    for sigma in (1.5, 4.0, 10.0):
        img += cv2.GaussianBlur(rng.standard_normal((h, w)).astype(np.float32), (0, 0), sigma) * sigma
    img = (img - img.min()) / (img.max() - img.min()) * 255
    return np.repeat(img.astype(np.uint8)[:, :, None], 3, axis=2)


def translated(img, dx, dy):
    m = np.float32([[1, 0, dx], [0, 1, dy]])
    return cv2.warpAffine(img, m, (img.shape[1], img.shape[0]), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_REFLECT)


def test_recovers_subpixel_translation():
    base = texture()
    v = np.array([1.3, -0.7])
    tracker = build_probabilistic_tracker(relocalize=False)
    tracker.step(base)
    q = np.array([[100.0, 100.0], [160.5, 120.25], [220.0, 150.0], [130.0, 170.0]])
    ids = tracker.add_queries(q)
    for t in range(1, 21):
        state = tracker.step(translated(base, *(v * t)))
    assert state.ids.tolist() == ids.tolist()
    err = np.linalg.norm(state.xy - (q + v * 20), axis=1)
    assert err.max() < 0.3, err
    assert state.visible.all()
    assert np.all(state.variance > 0) and np.all(np.isfinite(state.variance))


def test_point_leaving_the_image_becomes_occluded():
    base = texture(seed=1)
    tracker = build_probabilistic_tracker(relocalize=False)
    tracker.step(base)
    tracker.add_queries(np.array([[300.0, 120.0], [60.0, 120.0]]))
    for t in range(1, 16):
        state = tracker.step(translated(base, 3.0 * t, 0.0))
    # the first point is now at x = 345 > 320: out of view; the second is still inside
    assert state.visible.tolist() == [False, True]
    assert abs(state.xy[1, 0] - 105.0) < 0.5


def test_queries_at_any_frame_with_stable_ids():
    base = texture(seed=2)
    tracker = build_probabilistic_tracker(relocalize=False)
    tracker.step(base)
    a = tracker.add_queries(np.array([[50.0, 50.0], [80.0, 60.0]]))
    for t in range(1, 4):
        tracker.step(translated(base, t, 0))
    b = tracker.add_queries(np.array([[200.0, 100.0]]))
    assert b[0] > a.max()
    state = tracker.state()
    np.testing.assert_allclose(state.xy[state.ids == b[0]], [[200.0, 100.0]])
    tracker.remove_queries(a[:1])
    for t in range(4, 8):
        state = tracker.step(translated(base, t, 0))
    assert state.ids.tolist() == [a[1], b[0]]
    np.testing.assert_allclose(state.xy, [[87.0, 60.0], [204.0, 100.0]], atol=0.3)
    with pytest.raises(KeyError, match="unknown track id"):
        tracker.remove_queries(a[:1])
    tracker.reset()
    assert len(tracker.state()) == 0 and tracker.frame_index == -1


@pytest.mark.parametrize("bad, message", [
    (np.array([[np.nan, 3.0]]), "NaN"),
    (np.array([[400.0, 3.0]]), "outside"),
    (np.array([[3.0, -2.0]]), "outside"),
    (np.zeros((2, 3)), "shape"),
])
def test_bad_queries_are_rejected_with_a_reason(bad, message):
    tracker = build_probabilistic_tracker(relocalize=False)
    tracker.step(texture())
    with pytest.raises(InputError, match=message):
        tracker.add_queries(bad)
    assert len(tracker.state()) == 0


def test_no_queries_before_first_frame_and_no_resolution_change():
    tracker = build_probabilistic_tracker(relocalize=False)
    with pytest.raises(InputError, match="first frame"):
        tracker.add_queries(np.array([[1.0, 1.0]]))
    tracker.step(texture())
    with pytest.raises(InputError, match="frame size changed"):
        tracker.step(texture(h=200))


def test_memory_is_bounded_by_buffer_and_query_frames():
    base = texture(h=96, w=128, seed=3)
    cfg = TrackerConfig().replace(**{"integration.intervals": [1, 2, 4], "integration.max_query_frames": 3})
    tracker = build_probabilistic_tracker(cfg, relocalize=False)
    for t in range(60):
        tracker.step(translated(base, 0.2 * (t % 10), 0))
        if t % 5 == 0:
            tracker.add_queries(np.array([[64.0, 48.0]]))
        assert len(tracker.buffer) <= cfg.buffer_capacity + 3
    assert tracker.points.ring_mu.shape[1] == cfg.buffer_capacity


def test_fusion_beats_single_chains_on_a_generated_scene():
    scene = make_scene(SceneConfig(width=320, height=192, num_frames=48, seed=5))
    seq = scene_sequence(scene, num_points=96, seed=1)
    scores = {m: evaluate_badja(lambda m=m: make_tracker(m), [seq], progress=False)["overall"]
              for m in ("probfuse", "klt", "dis-chain")}
    for other in ("klt", "dis-chain"):
        assert scores["probfuse"]["delta_avg"] > scores[other]["delta_avg"], scores
        assert scores["probfuse"]["AJ"] > scores[other]["AJ"], scores
    assert scores["probfuse"]["delta_avg"] > 0.6, scores


def test_backward_check_doubt_in_the_tracker_saves_backward_passes_at_the_same_accuracy():
    """lk.backward_check doubt: the tracker hands the LK source the point ids of its chains, so it
    skips the backward pass of points whose chains agree; scores stay close to checking all."""
    from gs_tracker_ros.motion import lucas_kanade

    scene = make_scene(SceneConfig(width=320, height=192, num_frames=32, seed=6))
    seq = scene_sequence(scene, num_points=96, seed=2)
    calls = []
    real = lucas_kanade.LucasKanadeSource._one_way

    def counted(self, buffer, pairs):
        calls.append(sum(len(p) for _, _, p in pairs))
        return real(self, buffer, pairs)

    scores = {}
    for mode in ("all", "doubt"):
        cfg = TrackerConfig().replace(**{"lk.backward_check": mode})
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(lucas_kanade.LucasKanadeSource, "_one_way", counted)
            scores[mode] = evaluate_badja(lambda: make_tracker("probfuse", cfg), [seq], progress=False)["overall"]
    # doubt mode: one forward call and one (smaller) backward call per frame
    forward, backward = calls[0::2], calls[1::2]
    assert len(forward) == len(backward) > 20 and sum(backward) < 0.7 * sum(forward), (sum(forward), sum(backward))
    for key in ("delta_avg", "AJ", "OA"):
        assert abs(scores["doubt"][key] - scores["all"][key]) < 0.03, (key, scores)


@pytest.mark.parametrize("override, key", [
    ({"integration.rho": 1.5}, "integration.rho"),
    ({"integration.intervals": [0, 1]}, "integration.intervals"),
    ({"lk.window": 20}, "lk.window"),
    ({"flow.scale": 0.0}, "flow.scale"),
    ({"integration.outlier_px": "wide"}, "integration.outlier_px"),
])
def test_config_values_out_of_range_name_the_key(override, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        TrackerConfig().replace(**override)


def test_config_round_trip_and_unknown_keys():
    cfg = TrackerConfig.from_dict({"integration": {"intervals": "1, 2, 4", "rho": "0.25"}, "sources": ["lk", "dis"]})
    assert cfg.integration.intervals == (1, 2, 4) and cfg.integration.rho == 0.25
    assert TrackerConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ConfigError, match="unknown config key"):
        TrackerConfig.from_dict({"integration": {"rhoo": 0.1}})
    with pytest.raises(ConfigError, match="unknown motion source"):
        build_probabilistic_tracker(TrackerConfig(sources=("magic",)), relocalize=False)


class _RejectAll:
    """A chain filter that drops every chain it is shown and remembers what it saw."""

    chain_similarity = None  # compares no appearance

    def __init__(self):
        self.shown: list[np.ndarray] = []

    def filter(self, buffer, frame, query_ids, landing, valid):
        self.shown.append(valid.copy())
        return np.zeros_like(valid)

    def refresh(self, buffer, frame, query_ids, xy, steady, chains):
        pass  # nothing to refresh: it rejects everything


def test_unfiltered_short_chains_of_visible_points_skip_the_chain_filter():
    from gs_tracker_ros.methods import build_sources
    from gs_tracker_ros.tracking.tracker import ProbabilisticTracker

    rng = np.random.default_rng(0)
    tex = cv2.GaussianBlur(rng.integers(0, 255, (120, 160, 3), dtype=np.uint8), (0, 0), 1.5)
    frames = [np.roll(tex, k, axis=1) for k in range(10)]  # +1 px per frame in x
    queries = np.array([[60.0, 50.0], [80.0, 70.0]])

    def run(max_interval):
        cfg = TrackerConfig().replace(**{"integration.unfiltered_max_interval": max_interval,
                                         "integration.filtered_visible_p_lost": 0.0})
        filt = _RejectAll()
        tracker = ProbabilisticTracker(cfg, build_sources(cfg), chain_filter=filt)
        tracker.step(frames[0])
        tracker.add_queries(queries)
        states = [tracker.step(f) for f in frames[1:]]
        return states, filt

    states, filt = run(0)
    assert not states[-1].visible.any()  # every chain filtered away: occluded
    states, filt = run(2)
    assert states[-1].visible.all()  # the t-1 / t-2 chains survive on their LK check alone
    np.testing.assert_allclose(states[-1].xy, queries + [9.0, 0.0], atol=0.2)
    # the filter was never shown the exempt chains of visible points (columns t-1, t-2), only the others
    assert not any(shown[:, :2].any() for shown in filt.shown[1:])
    assert any(shown[:, 2:].any() for shown in filt.shown)
    with pytest.raises(ConfigError, match=r"integration\.unfiltered_max_interval"):
        TrackerConfig().replace(**{"integration.unfiltered_max_interval": -1})


def test_points_only_the_appearance_filter_hid_are_published_visible_below_the_p_lost_threshold():
    """``integration.filtered_visible_p_lost`` changes what is published only: positions and p_lost
    are the same, a point is revealed exactly when its chains passed LK's check, the filter dropped
    them all and its p_lost is below the threshold, and a revealed point's variance is a visible
    point's (the spread when right, within the visible ceiling) instead of a growing hidden one."""
    from gs_tracker_ros.methods import build_sources
    from gs_tracker_ros.tracking.tracker import ProbabilisticTracker

    rng = np.random.default_rng(1)
    tex = cv2.GaussianBlur(rng.integers(0, 255, (120, 160, 3), dtype=np.uint8), (0, 0), 1.5)
    frames = [np.roll(tex, k, axis=1) for k in range(8)]  # +1 px per frame in x
    queries = np.array([[60.0, 50.0], [80.0, 70.0], [100.0, 40.0]])

    def run(threshold):
        cfg = TrackerConfig().replace(**{"integration.filtered_visible_p_lost": threshold})
        tracker = ProbabilisticTracker(cfg, build_sources(cfg), chain_filter=_RejectAll())
        tracker.step(frames[0])
        tracker.add_queries(queries)
        return [tracker.step(f) for f in frames[1:]]

    never, always = run(0.0), run(1.0)
    p_lost = np.concatenate([st.p_lost for st in never])  # grows while the points stay hidden
    threshold = float(p_lost.min() + p_lost.max()) / 2
    some = run(threshold)
    revealed = np.concatenate([st.visible for st in some])
    assert revealed.any() and not revealed.all()
    for a, b, c in zip(never, always, some):
        for other in (b, c):
            np.testing.assert_array_equal(a.xy, other.xy)
            np.testing.assert_array_equal(a.p_lost, other.p_lost)
            # a revealed point publishes the spread when right, not the hidden variance that grows
            assert (other.variance[other.visible] < a.variance[other.visible]).all()
        assert not a.visible.any()  # every chain filtered away: occluded by the paper's rule
        assert b.visible.all()  # LK followed every point: visible with any p_lost below 1
        np.testing.assert_array_equal(c.visible, c.p_lost < threshold)
        np.testing.assert_array_equal(c.status == TrackStatus.VISIBLE, c.visible)
    with pytest.raises(ConfigError, match=r"integration\.filtered_visible_p_lost"):
        TrackerConfig().replace(**{"integration.filtered_visible_p_lost": 1.5})


def test_the_readme_names_the_steps_of_a_frame_as_step_does():
    """The README's list of a frame's steps is the one in ``ProbabilisticTracker.step``'s docstring."""
    import inspect
    import re
    from pathlib import Path

    from gs_tracker_ros.tracking.tracker import ProbabilisticTracker

    doc = " ".join(inspect.getdoc(ProbabilisticTracker.step).split())
    steps = doc.split("In order: ", 1)[1]
    readme = " ".join((Path(__file__).resolve().parents[1] / "README.md").read_text().split())
    found = re.search(r"A frame's steps \(`ProbabilisticTracker.step\(\)`, in order\): (.*?\.)(?: |$)", readme)
    assert found, "README: no list of a frame's steps"
    assert found.group(1).replace("`", "") == steps.replace("`", "")

