"""The query-jitter figure: how far one score moves when the queries move by a pixel.

One panel per video and one for the pool. For each method, every jittered draw's score is a small
dot, their mean a bar, and the score on the exact queries a star: a star far from its dots is a
result that rides on the exact query pixels (``evaluation/jitter.py``). Scores in percent.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

from ...viz.figure_file import save_figure


def plot_query_jitter(results: Sequence[Mapping[str, Any]], path: str | Path, key: str = "delta_seg",
                      title: str = "query jitter") -> Path:
    """Write the figure for ``results`` (``evaluate_badja`` results that carry a ``query_jitter``
    summary) to ``path`` (PNG), for score ``key``. Returns the path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    results = [r for r in results if "query_jitter" in r]
    if not results:
        raise ValueError("no result carries a query_jitter summary")
    panels = list(results[0]["query_jitter"]["sequences"]) + ["pooled"]
    path = Path(path)
    fig, axes = plt.subplots(1, len(panels), figsize=(3.2 * len(panels), 3.8), dpi=100, sharey=True)
    axes = np.atleast_1d(axes)
    for ax, panel in zip(axes, panels):
        for i, res in enumerate(results):
            jit = res["query_jitter"]
            stats = (jit["overall"] if panel == "pooled" else jit["sequences"][panel])[key]
            exact = (res["overall"] if panel == "pooled" else res["sequences"][panel])[key]
            values = 100 * np.asarray(stats["values"], np.float64)
            offsets = np.linspace(-0.15, 0.15, len(values)) if len(values) > 1 else np.zeros(1)
            colour = f"C{i % 10}"
            ax.plot(i + offsets, values, "o", ms=3, color=colour, alpha=0.7)
            ax.plot([i - 0.25, i + 0.25], [100 * stats["mean"]] * 2, "-", lw=2, color=colour)
            ax.plot(i, 100 * exact, "*", ms=11, color=colour, markeredgecolor="k", markeredgewidth=0.6)
        ax.set_xticks(range(len(results)))
        ax.set_xticklabels([r["method"] for r in results], rotation=35, ha="right", fontsize=8)
        ax.set_title(panel, fontsize=10)
        ax.grid(True, axis="y", alpha=0.3)
    amplitude = results[0]["query_jitter"]["amplitude_px"]
    runs = results[0]["query_jitter"]["runs"]
    axes[0].set_ylabel(f"{key} (%)")
    fig.suptitle(f"{title}: {key} on the exact queries (star) and on {runs} draws moved by up to "
                 f"+-{amplitude:g} px (dots, bar = mean)", fontsize=9)
    fig.tight_layout()
    return save_figure(fig, path)
