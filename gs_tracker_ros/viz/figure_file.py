"""Saving a matplotlib figure whole or not at all."""

from __future__ import annotations

import os
from pathlib import Path

from ..core.output import AtomicOutput, check_output


def save_figure(fig, path: str | os.PathLike) -> Path:
    """Write ``fig`` to ``path`` (format from the suffix, e.g. .png) through a temporary file,
    close it and return the path; an :class:`~gs_tracker_ros.core.errors.OutputError` names the
    path and the cause when it cannot be written (nothing is left behind)."""
    import matplotlib.pyplot as plt

    try:
        path = check_output(path, "figure")
        with AtomicOutput(path) as tmp:
            fig.savefig(tmp)
    finally:
        plt.close(fig)
    return path
