"""The two profiles and the parts the live default gained: occluded-state chains, the median
outlier reference, the predicted search centre."""

from __future__ import annotations

import numpy as np

from gs_tracker_ros.tracking.config import TrackerConfig, UserConfig
from gs_tracker_ros.core.integration import reject_outliers
from gs_tracker_ros.tracking.tracker import predicted_positions
from gs_tracker_ros.evaluation.runner import evaluate_badja
from gs_tracker_ros.evaluation.synthetic_gt import scene_sequence
from gs_tracker_ros.methods import ACCURATE_PROFILE, build_probabilistic_tracker, make_tracker, method_names
from gs_tracker_ros.synthetic import SceneConfig, make_scene

from test_tracker import texture, translated


def test_median_reference_ignores_one_confident_wrong_chain():
    mu_k = np.array([[[10.0, 10.0], [10.5, 10.0], [10.2, 9.8], [40.0, 40.0]]])
    v_k = np.array([[2.0, 2.0, 2.0, 0.1]])  # the wrong chain is the most certain
    valid = np.ones((1, 4), bool)
    paper = reject_outliers(mu_k, v_k, valid, 10.0, "lowest_variance")
    median = reject_outliers(mu_k, v_k, valid, 10.0, "median")
    assert paper.tolist() == [[False, False, False, True]]
    assert median.tolist() == [[True, True, True, False]]


def test_predicted_positions_use_valid_chains_else_previous():
    mu_k = np.array([[[1.0, 1.0], [3.0, 3.0], [100.0, 0.0]], [[5.0, 5.0], [6.0, 6.0], [7.0, 7.0]]])
    valid = np.array([[True, True, False], [False, False, False]])
    xy, has = predicted_positions(mu_k, valid, np.array([[0.0, 0.0], [50.0, 60.0]]))
    np.testing.assert_allclose(xy, [[2.0, 2.0], [50.0, 60.0]])
    assert has.tolist() == [True, False]


def test_chains_from_occluded_states_keep_following_a_point():
    """A frame that breaks every chain (a flash) must not stop the frame-to-frame chain for good."""
    base = texture(h=120, w=160, seed=4)
    rng = np.random.default_rng(0)
    flash = rng.integers(0, 255, base.shape, dtype=np.uint8)
    results = {}
    for on in (True, False):
        cfg = TrackerConfig().replace(**{"integration.intervals": [1], "integration.chain_from_occluded": on,
                                         "relocalize.keypoints.enabled": False, "relocalize.filter.enabled": False})
        tracker = build_probabilistic_tracker(cfg, relocalize=False)
        tracker.step(base)
        tracker.add_queries(np.array([[80.0, 60.0]]))
        tracker.step(translated(base, 1, 0))
        tracker.step(flash)
        for t in range(3, 6):
            state = tracker.step(translated(base, 1, 0))
        results[on] = state.visible[0]
    assert results[True] and not results[False]


def test_profiles_are_methods_and_differ_only_by_the_accurate_keys():
    assert {"probfuse", "probfuse-accurate", "klt", "dis-chain", "dis-chain-fast"} <= set(method_names())
    live = make_tracker("probfuse")
    accurate = make_tracker("probfuse-accurate")
    assert accurate.name == "probfuse-accurate"
    assert type(accurate.observer).__name__ == "LearnedMatchObserver"
    assert type(live.observer).__name__ == "LongTermObserver"
    assert accurate.config.replace(**{k: getattr_dotted(live.config, k) for k in ACCURATE_PROFILE}) == live.config


def test_fast_profile_is_the_live_one_with_its_schedule_keys():
    from gs_tracker_ros.methods import FAST_PROFILE

    live = make_tracker("probfuse")
    fast = make_tracker("probfuse-fast")
    assert fast.name == "probfuse-fast" and "probfuse-fast" in method_names()
    assert fast.config.schedule.stride == 2 and fast.config.integration.unfiltered_max_interval == 2
    assert fast.config.replace(**{k: getattr_dotted(live.config, k) for k in FAST_PROFILE}) == live.config
    # user settings on top keep the profile's keys
    tuned = make_tracker("probfuse-fast", TrackerConfig().replace(**{"integration.outlier_px": 8.0}))
    assert tuned.config.integration.outlier_px == 8.0 and tuned.config.schedule.stride == 2


def getattr_dotted(obj, key):
    for part in key.split("."):
        obj = getattr(obj, part)
    return obj


def test_live_profile_spread_fits_a_generated_scene():
    """On a generated scene like those the track model was fitted on (another seed): the spread of
    the points called right covers their errors about as the fit did (75.7 % within 2 sigma, see
    checkpoints/evidence/README.md), on the scale of the errors, and few points are called lost."""
    scene = make_scene(SceneConfig(width=320, height=192, num_frames=48, seed=5))
    seq = scene_sequence(scene, num_points=96, seed=1)
    res = evaluate_badja(lambda: make_tracker("probfuse"), [seq], progress=False)["overall"]
    assert 0.65 <= res["coverage_2sigma"] <= 0.97, res["coverage_2sigma"]
    assert 1 / 3 <= res["median_sigma_px"] / res["median_error_px"] <= 3, res
    assert res["called_lost"] < 0.1


def test_a_dense_source_runs_only_on_its_own_intervals():
    """``flow.intervals``: the DIS source of a fused tracker computes fields for t-1 -> t only."""
    base = texture(h=96, w=128, seed=6)
    cfg = TrackerConfig().replace(**{"sources": ["lk", "dis"], "flow.intervals": [1]})
    tracker = build_probabilistic_tracker(cfg, relocalize=False)
    dis = tracker.sources[1]
    pairs = []
    original = dis.estimate
    dis.estimate = lambda buffer, a, b, pts: (pairs.append((a, b)), original(buffer, a, b, pts))[1]
    tracker.step(base)
    tracker.add_queries(np.array([[64.0, 48.0], [30.0, 30.0]]))
    for t in range(1, 10):
        state = tracker.step(translated(base, 0.5 * t, 0))
    assert pairs and all(b - a == 1 for a, b in pairs)
    assert len(pairs) == 9
    assert np.abs(state.xy[0] - [64.0 + 4.5, 48.0]).max() < 0.3


def test_a_key_the_user_changed_wins_over_the_profile():
    """``--method probfuse-accurate --set relocalize.every=2`` must run every 2nd frame, not be
    silently replaced by the profile's value; keys the user left alone take the profile's."""
    user = TrackerConfig().replace(**{"relocalize.every": 2, "flow.intervals": [1, 2],
                                      "integration.outlier_px": 8.0})
    # a value that differs from the TrackerConfig default wins (config file, node parameter)
    accurate = make_tracker("probfuse-accurate", user)
    assert tuple(accurate.config.flow.intervals) == (1, 2)
    assert accurate.config.integration.outlier_px == 8.0
    assert tuple(accurate.config.sources) == tuple(ACCURATE_PROFILE["sources"])  # left alone: profile's
    assert accurate.config.relocalize.learned.enabled
    # relocalize.every=2 is the TrackerConfig default: only a --set key pins it against the profile
    assert accurate.config.relocalize.every == ACCURATE_PROFILE["relocalize.every"] == 1
    pinned = UserConfig(user, frozenset({"relocalize.every"}))
    assert make_tracker("probfuse-accurate", pinned).config.relocalize.every == 2
    fast = make_tracker("probfuse-fast", TrackerConfig().replace(**{"schedule.stride": 4}))
    assert fast.config.schedule.stride == 4 and fast.config.integration.unfiltered_max_interval == 2


def test_set_keys_reach_the_profile_through_the_cli():
    from gs_tracker_ros.cli.bench_cmd import build_tracker
    from gs_tracker_ros.cli.common import load_config

    sets = ["relocalize.every=2", "integration.intervals=[1, 2, 4, 8]"]
    user = load_config(None, sets)
    assert user.keys == {"relocalize.every", "integration.intervals"}
    assert user.config.relocalize.every == 2 and user.config.integration.intervals == (1, 2, 4, 8)
    tracker = build_tracker("probfuse-accurate", user, 1)
    assert tracker.config.relocalize.every == 2 and tracker.config.relocalize.learned.enabled


def test_a_set_key_through_a_setting_is_one_config_error():
    """``--set max_tracks.x=1`` names a key below a plain setting: one ConfigError naming it."""
    import pytest

    from gs_tracker_ros.cli.common import load_config
    from gs_tracker_ros.core.errors import ConfigError

    with pytest.raises(ConfigError, match="unknown config key 'max_tracks.x'"):
        load_config(None, ["max_tracks=8", "max_tracks.x=1"])
