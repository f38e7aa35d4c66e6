"""A fast median over a short axis that skips NaN (the tracker's robust averages of a few chains,
neighbours or steps per point)."""

from __future__ import annotations

import numpy as np


def nanmedian(values: np.ndarray, axis: int = 1) -> np.ndarray:
    """The median along ``axis`` ignoring NaN: the same numbers as ``np.nanmedian(values, axis)``
    (the two middle values of the sorted non-NaN entries, summed and halved; NaN where an entire
    slice is NaN, without numpy's warning), several times faster for the short axes used here
    because it works on plain arrays instead of numpy's masked arrays."""
    a = np.asarray(values)
    if not np.issubdtype(a.dtype, np.floating):
        a = a.astype(np.float64)
    axis = axis % a.ndim
    if a.shape[axis] == 0:
        return np.full(np.delete(a.shape, axis), np.nan, a.dtype)
    nan = np.isnan(a)
    # numpy orders the slice by an argsort with NaN replaced by +inf; doing the same keeps even the
    # sign of a zero median identical
    order = np.argsort(np.where(nan, np.inf, a), axis=axis)
    srt = np.take_along_axis(a, order, axis=axis)  # NaN at the end
    count = np.expand_dims(np.count_nonzero(~nan, axis=axis), axis)
    half = count // 2
    low_high = np.take_along_axis(srt, np.concatenate([np.where(count % 2 == 1, half, np.maximum(half - 1, 0)), half],
                                                      axis=axis), axis=axis)
    out = np.true_divide(low_high.sum(axis=axis), 2.0, dtype=a.dtype)  # numpy's sum: same rounding, same zero sign
    return np.where(np.squeeze(count, axis=axis) > 0, out, np.array(np.nan, a.dtype))
