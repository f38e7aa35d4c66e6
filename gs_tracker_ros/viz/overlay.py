"""Debug overlay: recent track tails, visible/occluded markers, uncertainty circles, a text header.

Shared by the CLI and the ROS node. Input and output frames are RGB ``(H, W, 3) uint8``;
positions in px (x right, y down, origin at the centre of the top-left pixel); variance in px^2.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from functools import lru_cache
from typing import Iterable

import cv2
import numpy as np

from ..core.errors import InputError
from ..core.types import TrackState

_SHIFT = 4  # sub-pixel bits for cv2 drawing
_ONE = 1 << _SHIFT


def _palette(n: int = 32) -> np.ndarray:
    """``(n, 3) uint8`` bright, well separated RGB colours (hues spread by the golden ratio)."""
    hues = (np.arange(n) * 0.61803398875 % 1.0) * 180
    sat = np.where(np.arange(n) % 3 == 2, 170, 255)
    val = np.where(np.arange(n) % 2 == 1, 220, 255)
    hsv = np.stack([hues, sat, val], axis=1).astype(np.uint8)[None]
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)[0]


PALETTE = _palette()


@lru_cache(maxsize=4096)
def track_colour(track_id: int) -> tuple[int, int, int]:
    """Stable RGB colour of a track id (Fibonacci hash of the id into the 32-entry :data:`PALETTE`;
    consecutive ids get well separated entries)."""
    h = (int(track_id) * 0x9E3779B1) & 0xFFFFFFFF
    c = PALETTE[h >> 27]
    return int(c[0]), int(c[1]), int(c[2])


@dataclass(frozen=True)
class OverlayStyle:
    """Drawing parameters (sizes in px of the output image).

    Attributes:
        tail_len: number of recent positions drawn as a tail (the current one included).
        dot_radius: radius of the filled dot of a visible point.
        cross_size: half-size (px) of the x marker of an occluded point.
        max_sigma_radius: clamp for the uncertainty circle radius 2*sqrt(variance).
        min_sigma_radius: circles smaller than this are not drawn (they would hide in the dot).
        tail_bands: number of opacity steps the tail fades through (oldest = faintest).
        show_ids: draw each track's id next to its marker.
        show_occluded_tail: also draw tail segments whose end is occluded (dimmed).
    """

    tail_len: int = 15
    dot_radius: float = 3.5
    cross_size: float = 5.0
    max_sigma_radius: float = 40.0
    min_sigma_radius: float = 4.0
    tail_bands: int = 4
    show_ids: bool = False
    show_occluded_tail: bool = True


class TrackHistory:
    """Bounded per-id history of recent ``(x, y, visible)`` plus the latest variance.

    Memory is bounded: at most ``max_len`` entries per live id; ids absent from an update are
    forgotten (they were removed from the tracker), unless ``keep_missing`` is set.
    """

    def __init__(self, max_len: int = 15, keep_missing: bool = False) -> None:
        if max_len < 1:
            raise InputError(f"TrackHistory max_len must be >= 1, got {max_len}")
        self.max_len = int(max_len)
        self.keep_missing = bool(keep_missing)
        self._tails: dict[int, deque[tuple[float, float, bool]]] = {}
        self._variance: dict[int, float] = {}
        self.frame_index: int | None = None

    def __len__(self) -> int:
        return len(self._tails)

    def __contains__(self, track_id: int) -> bool:
        return int(track_id) in self._tails

    def ids(self) -> list[int]:
        """Ids currently held, in insertion order."""
        return list(self._tails)

    def clear(self) -> None:
        self._tails.clear()
        self._variance.clear()
        self.frame_index = None

    def update(self, state: TrackState) -> None:
        """Append one tracker output (see :class:`~gs_tracker_ros.core.types.TrackState`)."""
        self.update_arrays(state.ids, state.xy, state.visible, state.variance, state.frame_index)

    def update_arrays(self, ids: Iterable[int] | np.ndarray, xy: np.ndarray, visible: np.ndarray,
                      variance: np.ndarray | None = None, frame_index: int | None = None) -> None:
        """Append positions ``xy (N, 2)`` px, ``visible (N,)`` and optional ``variance (N,)`` px^2."""
        ids = np.asarray(list(ids) if not isinstance(ids, np.ndarray) else ids).reshape(-1)
        xy = np.asarray(xy, np.float64).reshape(-1, 2)
        visible = np.asarray(visible, bool).reshape(-1)
        if not (len(ids) == len(xy) == len(visible)):
            raise InputError(f"ids, xy and visible lengths differ: {len(ids)}, {len(xy)}, {len(visible)}")
        var = None if variance is None else np.asarray(variance, np.float64).reshape(-1)
        if var is not None and len(var) != len(ids):
            raise InputError(f"variance has {len(var)} entries for {len(ids)} ids")
        seen = set()
        for k, tid in enumerate(ids.tolist()):
            tid = int(tid)
            seen.add(tid)
            tail = self._tails.get(tid)
            if tail is None:
                tail = self._tails[tid] = deque(maxlen=self.max_len)
            tail.append((float(xy[k, 0]), float(xy[k, 1]), bool(visible[k])))
            if var is not None:
                self._variance[tid] = float(var[k])
            else:
                self._variance.pop(tid, None)
        if not self.keep_missing:
            for tid in [t for t in self._tails if t not in seen]:
                del self._tails[tid]
                self._variance.pop(tid, None)
        if frame_index is not None:
            self.frame_index = int(frame_index)
        elif self.frame_index is not None:
            self.frame_index += 1

    def tail(self, track_id: int) -> np.ndarray:
        """``(K, 3) float64`` rows (x, y, visible) of one id, oldest first (K <= max_len)."""
        return np.asarray(self._tails[int(track_id)], np.float64).reshape(-1, 3)

    def variance(self, track_id: int) -> float | None:
        """Latest variance (px^2) of one id, or None if none was given."""
        return self._variance.get(int(track_id))


def _as_rgb(frame: np.ndarray) -> np.ndarray:
    frame = np.asarray(frame)
    if frame.dtype != np.uint8:
        raise InputError(f"overlay frame must be uint8, got {frame.dtype}")
    if frame.ndim == 2:
        return cv2.cvtColor(frame, cv2.COLOR_GRAY2RGB)
    if frame.ndim != 3 or frame.shape[2] != 3:
        raise InputError(f"overlay frame must be (H, W, 3) RGB or (H, W) grey, got shape {frame.shape}")
    return frame.copy()


def _fix(x: float, y: float) -> tuple[int, int]:
    """Sub-pixel point for cv2 drawing with ``shift=_SHIFT`` (pixel centres at integers)."""
    return int(round(x * _ONE)), int(round(y * _ONE))


@lru_cache(maxsize=256)
def _dim(colour: tuple[int, int, int], f: float) -> tuple[int, int, int]:
    return tuple(int(c * f) for c in colour)  # type: ignore[return-value]


def _text(img: np.ndarray, text: str, org: tuple[int, int], scale: float, colour: tuple[int, int, int]) -> None:
    """Text with a dark outline, readable on any background."""
    font = cv2.FONT_HERSHEY_SIMPLEX
    cv2.putText(img, text, org, font, scale, (0, 0, 0), 3, cv2.LINE_AA)
    cv2.putText(img, text, org, font, scale, colour, 1, cv2.LINE_AA)


def draw_header(img: np.ndarray, lines: list[str]) -> None:
    """Draw text lines in a translucent dark box at the top-left corner (in place)."""
    if not lines:
        return
    scale = max(0.4, min(0.7, img.shape[0] / 700))
    font = cv2.FONT_HERSHEY_SIMPLEX
    sizes = [cv2.getTextSize(s, font, scale, 1)[0] for s in lines]
    line_h = max(h for _, h in sizes) + 8
    box_w = min(img.shape[1], max(w for w, _ in sizes) + 12)
    box_h = min(img.shape[0], line_h * len(lines) + 6)
    roi = img[:box_h, :box_w]
    roi[...] = (roi.astype(np.uint16) * 2 // 5).astype(np.uint8)
    for k, s in enumerate(lines):
        _text(img, s, (6, 4 + line_h * (k + 1) - 6), scale, (255, 255, 255))


def draw_tracks(frame: np.ndarray, history: TrackHistory, *, style: OverlayStyle | None = None,
                frame_index: int | None = None, fps: float | None = None, header: bool = True,
                extra_header: str | None = None) -> np.ndarray:
    """Draw the tracks held in ``history`` onto a copy of ``frame``.

    Per track: a fading tail of its last ``style.tail_len`` positions; at its latest position a
    filled dot with a dark rim and light halo (visible) or an unfilled x (occluded), a circle of radius
    ``2 * sqrt(variance)`` px (clamped to ``style.max_sigma_radius``) for its uncertainty, and
    optionally its id. Colours are stable per id. A header shows the frame index (argument, else
    ``history.frame_index``), ``fps`` if given, the number of tracks and how many are visible.

    Args:
        frame: RGB ``(H, W, 3) uint8`` (or grey ``(H, W)``); not modified.
    Returns:
        a new RGB ``(H, W, 3) uint8`` image.
    """
    st = style or OverlayStyle()
    out = _as_rgb(frame)
    tails = {tid: history.tail(tid)[-st.tail_len:] for tid in history.ids()}

    # tails, grouped so that each (age band, colour, thickness) is one cv2.polylines call;
    # segment k joins points k and k+1, its age is (n - 2 - k) steps: older = fainter
    bands = max(1, int(st.tail_bands))
    groups: list[dict[tuple[tuple[int, int, int], int], list[np.ndarray]]] = [{} for _ in range(bands)]
    for tid, tl in tails.items():
        tl = tl[np.isfinite(tl[:, :2]).all(axis=1)]
        n = len(tl)
        if n < 2:
            continue
        colour = track_colour(tid)
        pts = np.round(tl[:, :2] * _ONE).astype(np.int32)
        vis = tl[:, 2] > 0.5
        k = np.arange(n - 1)
        band = np.minimum(bands - 1, ((n - 2 - k) / max(st.tail_len - 1, 1) * bands).astype(int))
        both = vis[:-1] & vis[1:]
        keep = vis[1:] | st.show_occluded_tail
        key = band * 4 + both * 2 + keep  # runs of equal key become one polyline
        cut = (np.flatnonzero(key[1:] != key[:-1]) + 1).tolist()
        band_l, both_l, keep_l = band.tolist(), both.tolist(), keep.tolist()
        for a, b in zip([0] + cut, cut + [n - 1]):
            if not keep_l[a]:
                continue
            c = colour if both_l[a] else _dim(colour, 0.55)
            thick = 2 if band_l[a] == 0 else 1
            groups[band_l[a]].setdefault((c, thick), []).append(pts[a : b + 1])
    for b in range(bands - 1, -1, -1):  # oldest first, newest drawn on top
        if not groups[b]:
            continue
        layer = out.copy()
        for (c, thick), lines in groups[b].items():
            cv2.polylines(layer, lines, False, c, thick, cv2.LINE_AA, _SHIFT)
        opacity = 1.0 - 0.75 * b / max(bands - 1, 1)  # newest 1.0 .. oldest 0.25
        cv2.addWeighted(layer, opacity, out, 1.0 - opacity, 0.0, dst=out)

    n_vis = 0
    for tid, tl in tails.items():
        if len(tl) == 0:
            continue
        x, y, vis = float(tl[-1, 0]), float(tl[-1, 1]), bool(tl[-1, 2])
        if not (math.isfinite(x) and math.isfinite(y)):
            continue
        colour = track_colour(tid)
        p = _fix(x, y)
        var = history.variance(tid)
        if var is not None and math.isfinite(var) and var > 0:
            r = min(2.0 * math.sqrt(var), st.max_sigma_radius)
            if r >= st.min_sigma_radius:
                cv2.circle(out, p, int(round(r * _ONE)), _dim(colour, 0.85), 1, cv2.LINE_AA, _SHIFT)
        if vis:
            n_vis += 1
            r = st.dot_radius
            cv2.circle(out, p, int(round((r + 2.5) * _ONE)), (255, 255, 255), 1, cv2.LINE_AA, _SHIFT)  # halo
            cv2.circle(out, p, int(round((r + 1.5) * _ONE)), (0, 0, 0), -1, cv2.LINE_AA, _SHIFT)  # dark rim
            cv2.circle(out, p, int(round(st.dot_radius * _ONE)), colour, -1, cv2.LINE_AA, _SHIFT)
        else:
            # an x (no fill): dark outline strokes first, then the colour strokes on top
            s = st.cross_size
            ends = [(_fix(x - s, y - s), _fix(x + s, y + s)), (_fix(x - s, y + s), _fix(x + s, y - s))]
            for a, b in ends:
                cv2.line(out, a, b, (0, 0, 0), 4, cv2.LINE_AA, _SHIFT)
            for a, b in ends:
                cv2.line(out, a, b, colour, 2, cv2.LINE_AA, _SHIFT)
        if st.show_ids:
            _text(out, str(tid), (int(x) + 6, int(y) - 6), 0.35, colour)

    if header:
        idx = frame_index if frame_index is not None else history.frame_index
        parts = [] if idx is None else [f"frame {idx}"]
        if fps is not None:
            parts.append(f"{fps:.1f} fps")
        parts.append(f"{n_vis}/{len(tails)} visible")
        lines = ["  ".join(parts)]
        if extra_header:
            lines.append(extra_header)
        draw_header(out, lines)
    return out
