"""The evidence models (core/evidence.py), the robust mixture fusion (core/integration.fuse_mixture),
the published spread + p_lost (core/uncertainty.py, tracking/evidence.py) and where p_lost goes
(TrackState, the track npz, old bags)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from gs_tracker_ros.core.errors import InputError
from gs_tracker_ros.core.evidence import EvidenceModel, fit_mixture, load_evidence_model
from gs_tracker_ros.core.integration import MAX_VARIANCE_PX2, fuse_mixture, integrate
from gs_tracker_ros.core.uncertainty import published_variance
from gs_tracker_ros.evaluation.calibration import calibration_counts, coverage_from_counts, roc_auc
from gs_tracker_ros.methods import build_probabilistic_tracker, make_tracker
from gs_tracker_ros.tracking.config import TrackerConfig
from gs_tracker_ros.tracking.evidence import CHAIN_FEATURES, TRACK_FEATURES

from test_tracker import texture, translated


def _mixture_samples(m: int = 20000, seed: int = 0):
    """Errors drawn from a known mixture: p_out = sigmoid(1.5 a - 1), s2 = exp(0.8 b + 1)."""
    rng = np.random.default_rng(seed)
    a, b = rng.normal(size=m), rng.normal(size=m)
    p = 1 / (1 + np.exp(-(1.5 * a - 1.0)))
    s2 = np.exp(0.8 * b + 1.0)
    wrong = rng.random(m) < p
    err = np.where(wrong, 500 * np.sqrt(rng.random(m)), np.sqrt(s2 * rng.chisquare(2, m)))
    return {"a": a, "b": b}, err


def test_fit_recovers_a_known_mixture_and_round_trips_through_json(tmp_path) -> None:
    x, err = _mixture_samples()
    model = fit_mixture(x, err, ("a", "b"))
    # weights of standardised features: the draws have unit spread, so they are the true ones
    assert model.w_out == pytest.approx((1.5, 0.0, -1.0), abs=0.12)
    assert model.w_logvar == pytest.approx((0.0, 0.8, 1.0), abs=0.08)
    path = tmp_path / "m.json"
    path.write_text(model.to_json())
    again = load_evidence_model(path)
    p1, s1 = model.predict(x)
    p2, s2 = again.predict(x)
    np.testing.assert_allclose(p1, p2)
    np.testing.assert_allclose(s1, s2)
    assert again.info["samples"] == len(err)


def test_fit_with_weights_counts_samples_by_their_weight() -> None:
    x, err = _mixture_samples(8000)
    doubled = {k: np.concatenate([v, v[:4000]]) for k, v in x.items()}
    by_copy = fit_mixture(doubled, np.concatenate([err, err[:4000]]), ("a", "b"))
    by_weight = fit_mixture(x, err, ("a", "b"), weights=np.r_[np.full(4000, 2.0), np.ones(4000)])
    for a, b in zip(by_copy.predict(x), by_weight.predict(x)):  # standardised apart, same model
        np.testing.assert_allclose(a, b, rtol=2e-3, atol=2e-3)
    with pytest.raises(InputError, match="weights"):
        fit_mixture(x, err, ("a", "b"), weights=-np.ones(len(err)))


def test_model_files_give_one_line_errors(tmp_path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(InputError, match="bad.json"):
        load_evidence_model(bad)
    bad.write_text(json.dumps({"features": ["a"], "mean": [0], "scale": [0], "w_out": [0, 0], "w_logvar": [0, 0]}))
    with pytest.raises(InputError, match="scale"):
        load_evidence_model(bad)
    with pytest.raises(InputError, match="cannot read"):
        load_evidence_model(tmp_path / "missing.json")
    with pytest.raises(KeyError, match="features missing"):
        EvidenceModel.constant(("a",), 0.1, 1.0).predict({"b": np.zeros(3)})


def test_shipped_models_name_the_tracker_features_and_record_their_fit() -> None:
    cfg = TrackerConfig()
    track = load_evidence_model(cfg.uncertainty.model)
    chain = load_evidence_model(cfg.integration.chain_model)
    assert track.features == TRACK_FEATURES and chain.features == CHAIN_FEATURES
    for model in (track, chain):
        assert model.info["samples"] > 1000 and "command" in model.info


def test_mixture_rejects_a_confident_chain_that_the_evidence_doubts() -> None:
    mu_k = np.array([[[10.0, 10.0], [10.4, 10.2], [40.0, 40.0]]])
    v_k = np.array([[2.0, 2.0, 0.1]])  # the far chain claims the smallest variance
    valid = np.ones((1, 3), bool)
    p_out = np.array([[0.1, 0.1, 0.6]])  # ... but its evidence says it is often wrong
    mu, v, vis, kept, p_wrong = fuse_mixture(mu_k, v_k, valid, p_out, 0.0, 1e-6)
    assert kept.tolist() == [[True, True, False]] and vis.tolist() == [True]
    np.testing.assert_allclose(mu, [[10.2, 10.1]])
    assert p_wrong[0] == pytest.approx(0.01)
    # the inverse-variance rule with the paper's outlier gate keeps the confident wrong one
    paper = integrate(mu_k, v_k, valid, valid, np.zeros((1, 2)), np.zeros(1), outlier_px=10.0, rho=0.0,
                      occluded_variance_growth=4.0)
    assert paper.kept.tolist() == [[False, False, True]]
    # with no valid chain there is nothing to fuse and the estimate is certainly not supported
    none = fuse_mixture(mu_k, v_k, np.zeros((1, 3), bool), p_out, 0.0, 1e-6)
    assert not none[2][0] and none[4][0] == 1.0


def test_mixture_keeps_a_lone_chain_and_says_how_likely_it_is_wrong() -> None:
    mu, v, vis, kept, p_wrong = fuse_mixture(np.array([[[5.0, 6.0]]]), np.array([[1.0]]), np.ones((1, 1), bool),
                                             np.array([[0.3]]), 0.0, 1e-6)
    assert vis[0] and kept[0, 0] and p_wrong[0] == pytest.approx(0.3)
    np.testing.assert_allclose(mu, [[5.0, 6.0]])


def test_published_variance_visible_is_the_spread_hidden_grows_every_frame() -> None:
    spread = np.array([4.0, 4.0, 4.0])
    visible = np.array([True, False, False])
    out = published_variance(spread, np.array([0.0, 10.0, 1e12]), visible, np.array([9.0, 30.0, 5.0]),
                             np.array([0.0, 8.0, 0.0]))
    assert out[0] == 4.0  # a visible point publishes its spread, whatever it published before
    assert out[1] == pytest.approx(32.0)  # last frame's 30 + the 2 px^2 its hidden variance grew
    assert out[2] == MAX_VARIANCE_PX2


def _tracker_run(track_model=None, frames=6):
    base = texture(h=120, w=160, seed=2)
    tracker = build_probabilistic_tracker(TrackerConfig(), relocalize=False, track_model=track_model)
    tracker.step(base)
    tracker.add_queries(np.array([[80.0, 60.0], [40.0, 40.0]]))
    states = [tracker.step(translated(base, 2.0 * t, 0)) for t in range(1, frames)]
    return tracker, states


def test_tracker_publishes_the_track_models_spread_and_p_lost() -> None:
    constant = EvidenceModel.constant(TRACK_FEATURES, 0.2, 6.25)
    tracker, states = _tracker_run(constant)
    last = states[-1]
    assert last.visible.all()
    np.testing.assert_allclose(last.variance, 6.25, rtol=1e-6)
    np.testing.assert_allclose(last.p_lost, 0.2, rtol=1e-6)
    ev = tracker.evidence
    assert set(ev.track) == set(TRACK_FEATURES) and set(ev.chain) == set(CHAIN_FEATURES)
    assert np.all(ev.track["log_path"] > np.log1p(7.0))  # moved 2 px per frame for 5 frames
    assert ev.chain["log_interval"].shape == ev.valid.shape


def test_chain_evidence_marks_the_dense_sources_columns() -> None:
    """The ``dense`` chain feature comes from each source's ``dense`` flag: LK's columns 0, DIS's 1."""
    config = TrackerConfig.from_dict({"sources": ["lk", "dis"], "flow": {"intervals": [1]}})
    tracker = build_probabilistic_tracker(config, relocalize=False)
    assert [src.dense for src in tracker.sources] == [False, True]
    base = texture(96, 128, seed=3)
    tracker.step(base)
    tracker.add_queries(np.array([[40.0, 40.0], [70.0, 50.0]]))
    tracker.step(translated(base, 1.0, 0.0))
    dense = tracker.evidence.chain["dense"]
    columns = len(config.integration.intervals)
    assert np.all(dense[:, :columns] == 0.0) and np.all(dense[:, columns:] == 1.0)


def test_shipped_track_model_keeps_visible_points_under_the_ceiling() -> None:
    tracker, states = _tracker_run(frames=12)
    ceiling = tracker.track_model.max_variance
    for state in states:
        assert np.all((state.p_lost >= 0) & (state.p_lost <= 1))
        assert np.all(state.variance[state.visible] <= ceiling)


def test_baselines_do_not_estimate_p_lost() -> None:
    base = texture(h=120, w=160, seed=2)
    tracker = make_tracker("klt")
    tracker.reset()
    tracker.step(base)
    tracker.add_queries(np.array([[80.0, 60.0]]))
    assert np.isnan(tracker.step(translated(base, 1.0, 0)).p_lost).all()


def test_calibration_counts_the_points_called_right_and_ranks_the_lost() -> None:
    err = np.array([0.5, 1.5, 3.0, 50.0, 80.0])
    sigma = np.ones(5)
    p = np.array([0.1, 0.2, 0.3, 0.9, 0.25])
    lost = err > 20
    counts = calibration_counts(err, sigma, p, lost)
    cov = coverage_from_counts(counts)
    assert counts["n"] == 4 and counts["within_1sigma"] == 1 and counts["within_2sigma"] == 2
    assert cov["called_lost"] == pytest.approx(0.2)
    assert cov["p_lost_auc"] == pytest.approx(roc_auc(p, lost)) == pytest.approx(5 / 6)
    assert roc_auc(np.array([0.1, 0.1]), np.array([True, False])) == 0.5
    assert np.isnan(coverage_from_counts(calibration_counts(err, sigma))["p_lost_auc"])  # no p_lost
