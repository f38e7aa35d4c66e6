"""An occluded point's variance stays finite: capped at MAX_VARIANCE_PX2, also when
integration.occluded_variance_growth is inf (issue 9: the node published inf variances)."""

import numpy as np

from gs_tracker_ros.tracking.config import TrackerConfig
from gs_tracker_ros.core.integration import MAX_VARIANCE_PX2, integrate


def _occluded(growth: float, prev_v: float) -> np.ndarray:
    mu_k = np.zeros((2, 1, 2))
    v_k = np.array([[2.0], [np.inf]])
    computed = np.array([[True], [False]])  # point 1: no chain computed -> its previous state
    out = integrate(mu_k, v_k, np.zeros((2, 1), bool), computed, np.zeros((2, 2)),
                    np.array([1.0, prev_v]), outlier_px=10.0, rho=0.0, occluded_variance_growth=growth)
    v, vis = out.v, out.visible
    assert not vis.any()
    return v


def test_infinite_growth_gives_the_cap_not_inf():
    assert TrackerConfig.from_dict({"integration": {"occluded_variance_growth": float("inf")}})  # accepted
    v = _occluded(float("inf"), 5.0)
    assert np.isfinite(v).all()
    np.testing.assert_array_equal(v, [MAX_VARIANCE_PX2, MAX_VARIANCE_PX2])


def test_long_occlusions_saturate_at_the_cap():
    v = _occluded(4.0, MAX_VARIANCE_PX2)  # a point occluded for ages: growth stops at the cap
    np.testing.assert_allclose(v, [6.0, MAX_VARIANCE_PX2])
    assert np.float32(MAX_VARIANCE_PX2) == MAX_VARIANCE_PX2  # exact in PointTrack's float32
