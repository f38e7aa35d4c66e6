"""Render a finished tracking run as an overlay video and/or a contact sheet."""

from __future__ import annotations

from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from ..core.types import TrackState, track_status
from .overlay import OverlayStyle, TrackHistory, draw_tracks
from .video import OverlayOutput


def write_run_overlay(frames: Iterable[np.ndarray], ids: np.ndarray, xy: np.ndarray, visible: np.ndarray,
                      variance: np.ndarray, path: str | Path | None, fps: float = 25.0,
                      title: str | Sequence[str] | None = None, sheet_path: str | Path | None = None,
                      sheet_frames: int = 6, status: np.ndarray | None = None,
                      style: OverlayStyle | None = None, p_lost: np.ndarray | None = None) -> Path | None:
    """Draw tracks ``xy (N, T, 2)`` / ``visible (N, T)`` / ``variance (N, T)`` over ``frames``
    (with ``p_lost (N, T)``, visible points the tracker doubts are drawn faint, see
    :func:`~.overlay.draw_tracks`).

    ``status (N, T)`` holds :class:`~gs_tracker_ros.core.types.TrackStatus` codes; without it a
    hidden point outside the frame is out of view, else occluded. Points are drawn from their
    query frame on (NaN positions before it are skipped). Writes the
    video to ``path`` (None: no video) and, with ``sheet_path``, a PNG of ``sheet_frames`` evenly
    spaced frames. ``title`` is one header line for all frames or one per frame; ``style`` the
    drawing options (default :class:`OverlayStyle`). Returns the
    video's path (None without a video).
    """
    history = TrackHistory()
    with OverlayOutput(path, sheet_path, xy.shape[1], sheet_frames, fps) as out:
        for t, frame in enumerate(frames):
            live = np.isfinite(xy[:, t]).all(axis=1)
            code = (track_status(xy[live, t], visible[live, t], frame.shape[:2]) if status is None
                    else status[live, t])
            history.update(TrackState(t, ids[live], xy[live, t], np.nan_to_num(variance[live, t]), visible[live, t],
                                      code, None if p_lost is None else p_lost[live, t]))
            header = title if title is None or isinstance(title, str) else title[t]
            out.add(t, draw_tracks(frame, history, frame_index=t, extra_header=header, style=style))
    return out.video_path
