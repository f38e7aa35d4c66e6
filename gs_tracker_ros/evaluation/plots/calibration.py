"""The error-vs-sigma figure: is the published variance honest?

For each method, the median and the 86.5th-percentile position error (px) of visible labelled
points, binned by the published sigma (px, ``sqrt`` of the variance). A calibrated isotropic 2-D
Gaussian puts the median at ``sqrt(2 ln 2) sigma ~ 1.18 sigma`` and the 86.5th percentile at
``2 sigma`` in every bin; the dashed and dotted lines. Points above them: the tracker is
over-confident there; below: it is too cautious.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Mapping, Sequence

from ...viz.figure_file import save_figure

RAYLEIGH_MEDIAN = math.sqrt(2.0 * math.log(2.0))  # median of |e| / sigma for a calibrated 2-D Gaussian


def plot_error_vs_sigma(curves: Mapping[str, Sequence[Mapping[str, float]]], path: str | Path,
                        title: str = "published sigma vs position error") -> Path:
    """Write the figure for ``curves`` (method -> bins of ``sigma_px``, ``median_error_px``,
    ``p86_error_px``, as :func:`~gs_tracker_ros.evaluation.calibration.error_vs_sigma` returns)
    to ``path`` (PNG). Returns the path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FixedLocator, NullFormatter, ScalarFormatter

    path = Path(path)
    fig, ax = plt.subplots(figsize=(6.4, 4.8), dpi=100)
    lo, hi = math.inf, 0.0
    for i, (name, bins) in enumerate(curves.items()):
        if not bins:
            continue
        s = [b["sigma_px"] for b in bins]
        colour = f"C{i % 10}"
        ax.plot(s, [b["median_error_px"] for b in bins], "o-", color=colour, label=f"{name}: median")
        ax.plot(s, [b["p86_error_px"] for b in bins], "^--", color=colour, alpha=0.6, label=f"{name}: 86.5 %")
        lo = min(lo, min(s))
        hi = max(hi, max(s))
    if hi > 0:
        lo = max(lo, 1e-2)
        ref = [lo, hi]
        ax.plot(ref, [RAYLEIGH_MEDIAN * x for x in ref], "k--", lw=1, label="calibrated: median 1.18 sigma")
        ax.plot(ref, [2.0 * x for x in ref], "k:", lw=1, label="calibrated: 86.5 % at 2 sigma")
        ax.set_xscale("log")
        ax.set_yscale("log")
        for axis in (ax.xaxis, ax.yaxis):  # plain numbers at 1-2-5 steps instead of 2x10^1
            axis.set_major_locator(FixedLocator([m * 10.0**e for e in range(-2, 5) for m in (1, 2, 5)]))
            axis.set_major_formatter(ScalarFormatter())
            axis.set_minor_formatter(NullFormatter())
    ax.set_xlabel("published sigma (px)")
    ax.set_ylabel("position error of visible points (px)")
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    return save_figure(fig, path)
