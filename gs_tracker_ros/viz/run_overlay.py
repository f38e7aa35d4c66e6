"""Render a finished tracking run as an overlay video."""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

import numpy as np

from ..core.types import TrackState
from .overlay import TrackHistory, draw_tracks
from .video import VideoWriter


def write_run_overlay(frames: Iterable[np.ndarray], ids: np.ndarray, xy: np.ndarray, visible: np.ndarray,
                      variance: np.ndarray, path: str | Path, fps: float = 25.0, title: str | None = None) -> Path:
    """Write ``frames`` with tracks ``xy (N, T, 2)`` / ``visible (N, T)`` / ``variance (N, T)`` drawn.

    Points are drawn from their query frame on (NaN positions before it are skipped).
    """
    history = TrackHistory()
    with VideoWriter(path, fps=fps) as writer:
        for t, frame in enumerate(frames):
            live = np.isfinite(xy[:, t]).all(axis=1)
            state = TrackState(t, ids[live], xy[live, t], np.nan_to_num(variance[live, t]), visible[live, t])
            history.update(state)
            writer.write(draw_tracks(frame, history, frame_index=t, extra_header=title))
    return Path(path)
