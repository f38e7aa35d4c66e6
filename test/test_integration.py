"""Fusion math of the online probabilistic integration on hand-built Gaussians."""

import numpy as np

from gs_tracker_ros.core.integration import (
    Observation, chain, fuse, fuse_lowest_variance, fuse_observation, integrate, reject_outliers,
)


def test_chain_adds_displacement_and_variances():
    mu, v = chain(np.array([[10.0, 20.0]]), np.array([2.0]), np.array([[3.0, -4.0]]), np.array([0.5]))
    np.testing.assert_allclose(mu, [[13.0, 16.0]])
    np.testing.assert_allclose(v, [2.5])
    # |d| = 5 px, ratio 0.2 -> (0.2 * 5)^2 = 1 px^2 extra
    _, v2 = chain(np.array([[0.0, 0.0]]), np.array([2.0]), np.array([[3.0, -4.0]]), np.array([0.5]), 0.2)
    np.testing.assert_allclose(v2, [3.5])


def test_fuse_independent_is_inverse_variance():
    mu_k = np.array([[[0.0, 0.0], [4.0, 8.0]]])
    v_k = np.array([[1.0, 3.0]])
    mu, v, ok = fuse(mu_k, v_k, np.ones((1, 2), bool), rho=0.0)
    # weights 1 and 1/3 -> normalised 3/4, 1/4
    np.testing.assert_allclose(mu, [[1.0, 2.0]])
    np.testing.assert_allclose(v, [1.0 / (1.0 + 1.0 / 3.0)])
    assert ok.tolist() == [True]


def test_fuse_correlation_formula():
    mu_k = np.array([[[0.0, 0.0], [4.0, 8.0]]])
    v_k = np.array([[1.0, 4.0]])
    rho = 0.3
    mu, v, _ = fuse(mu_k, v_k, np.ones((1, 2), bool), rho=rho)
    w = np.array([1.0, 0.25]) / 1.25
    expected = (1 - rho) * np.sum(w**2 * v_k[0]) + rho * np.sum(w * np.sqrt(v_k[0])) ** 2
    np.testing.assert_allclose(v, [expected])
    np.testing.assert_allclose(mu, [w @ mu_k[0]])
    # fully correlated: fused std is the weighted mean of the stds (never below the best chain's)
    _, v1, _ = fuse(mu_k, v_k, np.ones((1, 2), bool), rho=1.0)
    np.testing.assert_allclose(np.sqrt(v1), [w @ np.sqrt(v_k[0])])
    assert v1[0] >= 1.0


def test_fuse_ignores_invalid_and_infinite_chains():
    mu_k = np.array([[[1.0, 1.0], [100.0, 100.0], [0.0, 0.0]]])
    v_k = np.array([[2.0, 0.1, np.inf]])
    valid = np.array([[True, False, False]])
    mu, v, ok = fuse(mu_k, v_k, valid, rho=0.5)
    np.testing.assert_allclose(mu, [[1.0, 1.0]])
    np.testing.assert_allclose(v, [2.0])
    assert np.isfinite(v).all() and ok[0]


def test_reject_outliers_uses_lowest_variance_reference():
    mu_k = np.array([[[0.0, 0.0], [5.0, 0.0], [30.0, 0.0], [0.0, 10.5]]])
    v_k = np.array([[1.0, 2.0, 0.5, 3.0]])
    valid = np.array([[True, True, False, True]])  # the 0.5-variance chain is invalid: not the reference
    kept = reject_outliers(mu_k, v_k, valid, outlier_px=10.0)
    assert kept.tolist() == [[True, True, False, False]]


def test_lowest_variance_ablation_picks_one_chain():
    mu_k = np.array([[[0.0, 0.0], [4.0, 0.0]]])
    mu, v, ok = fuse_lowest_variance(mu_k, np.array([[3.0, 1.0]]), np.ones((1, 2), bool))
    np.testing.assert_allclose(mu, [[4.0, 0.0]])
    np.testing.assert_allclose(v, [1.0])


def test_observation_is_product_of_gaussians():
    mu, v = fuse_observation(np.array([[0.0, 0.0]]), np.array([1.0]), np.array([[3.0, 0.0]]), np.array([2.0]))
    np.testing.assert_allclose(mu, [[1.0, 0.0]])
    np.testing.assert_allclose(v, [2.0 / 3.0])


def _integrate(mu_k, v_k, valid, computed=None, observation=None, outlier_px=10.0):
    n = mu_k.shape[0]
    out = integrate(mu_k, v_k, valid, valid if computed is None else computed,
                    prev_mu=np.full((n, 2), 7.0), prev_v=np.full(n, 5.0), outlier_px=outlier_px, rho=0.0,
                    occluded_variance_growth=4.0, observation=observation)
    return out.mu, out.v, out.visible


def test_integrate_occlusion_uses_best_computed_chain_and_grows_variance():
    mu_k = np.array([[[1.0, 1.0], [2.0, 2.0]], [[0.0, 0.0], [0.0, 0.0]]])
    v_k = np.array([[3.0, 2.0], [np.inf, np.inf]])
    valid = np.zeros((2, 2), bool)
    computed = np.array([[True, True], [False, False]])
    mu, v, vis = _integrate(mu_k, v_k, valid, computed)
    assert vis.tolist() == [False, False]
    np.testing.assert_allclose(mu[0], [2.0, 2.0])  # lowest-variance computed chain
    np.testing.assert_allclose(v[0], 2.0 + 4.0)
    np.testing.assert_allclose(mu[1], [7.0, 7.0])  # nothing computed: previous state
    np.testing.assert_allclose(v[1], 5.0 + 4.0)


def test_integrate_outlier_dropped_before_fusion():
    mu_k = np.array([[[0.0, 0.0], [1.0, 0.0], [50.0, 0.0]]])
    v_k = np.array([[1.0, 1.0, 2.0]])
    mu, v, vis = _integrate(mu_k, v_k, np.ones((1, 3), bool))
    np.testing.assert_allclose(mu, [[0.5, 0.0]])
    np.testing.assert_allclose(v, [0.5])
    assert vis[0]


def test_integrate_observation_fused_gated_and_refinds():
    mu_k = np.array([[[0.0, 0.0]], [[0.0, 0.0]], [[0.0, 0.0]]])
    v_k = np.array([[1.0], [1.0], [np.inf]])
    valid = np.array([[True], [True], [False]])
    obs = Observation(mu=np.array([[2.0, 0.0], [40.0, 0.0], [60.0, 60.0]]), variance=np.array([1.0, 1.0, 9.0]),
                      valid=np.array([True, True, True]))
    mu, v, vis = _integrate(mu_k, v_k, valid, computed=np.zeros((3, 1), bool), observation=obs)
    np.testing.assert_allclose(mu[0], [1.0, 0.0])  # near: fused
    np.testing.assert_allclose(v[0], 0.5)
    np.testing.assert_allclose(mu[1], [0.0, 0.0])  # beyond the 10 px gate: ignored
    np.testing.assert_allclose(mu[2], [60.0, 60.0])  # no valid chain: re-found by the observation
    np.testing.assert_allclose(v[2], 9.0)
    assert vis.tolist() == [True, True, True]
