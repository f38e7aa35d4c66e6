"""The fast NaN-skipping median gives numpy's numbers exactly (the tracker's positions depend on it)."""

import warnings

import numpy as np
import pytest

from gs_tracker_ros.core.median import nanmedian


def _cases():
    rng = np.random.default_rng(7)
    for trial in range(120):
        n, k = int(rng.integers(0, 40)), int(rng.integers(1, 10))
        a = rng.normal(scale=20.0, size=(n, k, 2)).astype([np.float64, np.float32][trial % 2])
        if trial % 3 == 0:
            a = np.round(a)  # ties, and -0.0 from rounding small negatives
        if trial % 4 == 0:
            a[rng.random(a.shape) < 0.3] = -0.0
        a[rng.random(a.shape[:2]) < 0.4] = np.nan  # whole (x, y) pairs missing, as in the tracker
        if trial % 5 == 0:
            a[rng.random(a.shape) < 0.2] = np.nan  # single components missing too
        yield a


@pytest.mark.parametrize("axis", [1, -2])
def test_nanmedian_is_bit_identical_to_numpy(axis):
    checked = 0
    for a in _cases():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # numpy warns on all-NaN slices
            expected = np.nanmedian(a, axis=axis)
        got = nanmedian(a, axis=axis)
        assert got.dtype == expected.dtype and got.shape == expected.shape
        assert got.tobytes() == expected.tobytes(), (a, expected, got)  # sign of zero and NaN included
        checked += 1
    assert checked == 120


def test_nanmedian_all_nan_slice_and_even_count():
    a = np.array([[[1.0, np.nan], [3.0, np.nan], [np.nan, np.nan], [10.0, np.nan]]])  # (1, 4, 2)
    out = nanmedian(a, axis=1)
    assert out[0, 0] == 3.0 and np.isnan(out[0, 1])
    assert nanmedian(np.array([[1.0, 2.0, np.nan, 4.0]]), axis=1)[0] == 2.0
    assert nanmedian(np.array([[1.0, 2.0]]), axis=1)[0] == 1.5
    assert nanmedian(np.zeros((3, 0, 2)), axis=1).shape == (3, 2)
