"""Debug overlay: tails along visible segments, status markers, uncertainty circles, header, legend.

Shared by the CLI and the ROS node. Input and output frames are RGB ``(H, W, 3) uint8``;
positions in px (x right, y down, origin at the centre of the top-left pixel); variance in px^2.
What is drawn depends on each point's :class:`~gs_tracker_ros.core.types.TrackStatus`: visible
points as bright dots with their recent tail, occluded points as small faint rings, out-of-view
points not at all (optionally a tick on the image border).
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
from ..core.types import TrackState, TrackStatus, track_status

_SHIFT = 4  # sub-pixel bits for cv2 drawing
_ONE = 1 << _SHIFT
_DOUBTFUL = -1  # legend / count key of visible points with a high p_lost (not a TrackStatus code)


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
        tail_len: number of recent positions drawn as a tail (the current one included); only
            segments whose both ends are visible are drawn, so a tail never bridges a hidden gap.
        dot_radius: radius of the filled dot of a visible point.
        hidden_radius: radius of the small ring of an occluded point.
        hidden_opacity: opacity of occluded markers (0 = invisible, 1 = opaque).
        max_sigma_radius: clamp for the uncertainty circle radius 2*sqrt(variance).
        min_sigma_radius: circles smaller than this are not drawn (they would hide in the dot).
        tail_bands: number of opacity steps the tail fades through (oldest = faintest).
        show_ids: draw each track's id next to its marker.
        show_uncertainty: draw the 2-sigma circle of visible points (the spread when right,
            ``core/uncertainty.py``). Off by default: on fast footage the honest circles are tens
            of px wide and crowd the picture.
        doubt_threshold: a visible point with ``p_lost`` at or above this is drawn *doubtful*:
            a faint hollow ring instead of a filled dot (the tracker sees it but may follow
            something else), and counted apart in the legend.
        doubt_opacity: opacity of the doubtful rings.
        show_hidden_uncertainty: also draw the uncertainty circle of occluded points (off: a
            long-hidden point's circle grows large and hides the picture).
        edge_markers: mark out-of-view points with a short tick on the nearest image border
            (off: they are not drawn at all).
        legend: draw the legend with the number of visible / occluded / out-of-view points
            in the bottom-left corner.
    """

    tail_len: int = 15
    dot_radius: float = 3.5
    hidden_radius: float = 2.5
    hidden_opacity: float = 0.55
    max_sigma_radius: float = 40.0
    min_sigma_radius: float = 4.0
    tail_bands: int = 4
    show_ids: bool = False
    show_uncertainty: bool = False
    show_hidden_uncertainty: bool = False
    doubt_threshold: float = 0.5
    doubt_opacity: float = 0.6
    edge_markers: bool = False
    legend: bool = True


class TrackHistory:
    """Bounded per-id history of recent ``(x, y, status)`` plus the latest variance and p_lost.

    Memory is bounded: at most ``max_len`` entries per live id; ids absent from an update are
    forgotten (they were removed from the tracker), unless ``keep_missing`` is set.
    """

    def __init__(self, max_len: int = 15, keep_missing: bool = False) -> None:
        if max_len < 1:
            raise InputError(f"TrackHistory max_len must be >= 1, got {max_len}")
        self.max_len = int(max_len)
        self.keep_missing = bool(keep_missing)
        self._tails: dict[int, deque[tuple[float, float, int]]] = {}
        self._variance: dict[int, float] = {}
        self._p_lost: dict[int, float] = {}
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
        self._p_lost.clear()
        self.frame_index = None

    def update(self, state: TrackState) -> None:
        """Append one tracker output (see :class:`~gs_tracker_ros.core.types.TrackState`)."""
        self.update_arrays(state.ids, state.xy, state.visible, state.variance, state.frame_index, state.status,
                           state.p_lost)

    def update_arrays(self, ids: Iterable[int] | np.ndarray, xy: np.ndarray, visible: np.ndarray,
                      variance: np.ndarray | None = None, frame_index: int | None = None,
                      status: np.ndarray | None = None, p_lost: np.ndarray | None = None) -> None:
        """Append positions ``xy (N, 2)`` px, ``visible (N,)``, optional ``variance (N,)`` px^2,
        optional ``status (N,)`` :class:`~gs_tracker_ros.core.types.TrackStatus` codes (default:
        from ``visible``, hidden = occluded) and optional ``p_lost (N,)`` (NaN: not estimated)."""
        ids = np.asarray(list(ids) if not isinstance(ids, np.ndarray) else ids).reshape(-1)
        xy = np.asarray(xy, np.float64).reshape(-1, 2)
        visible = np.asarray(visible, bool).reshape(-1)
        if not (len(ids) == len(xy) == len(visible)):
            raise InputError(f"ids, xy and visible lengths differ: {len(ids)}, {len(xy)}, {len(visible)}")
        var = None if variance is None else np.asarray(variance, np.float64).reshape(-1)
        if var is not None and len(var) != len(ids):
            raise InputError(f"variance has {len(var)} entries for {len(ids)} ids")
        lost = None if p_lost is None else np.asarray(p_lost, np.float64).reshape(-1)
        if lost is not None and len(lost) != len(ids):
            raise InputError(f"p_lost has {len(lost)} entries for {len(ids)} ids")
        if status is None:
            status = track_status(xy, visible, None)
        status = np.asarray(status, np.int64).reshape(-1)
        if len(status) != len(ids):
            raise InputError(f"status has {len(status)} entries for {len(ids)} ids")
        seen = set()
        for k, tid in enumerate(ids.tolist()):
            tid = int(tid)
            seen.add(tid)
            tail = self._tails.get(tid)
            if tail is None:
                tail = self._tails[tid] = deque(maxlen=self.max_len)
            tail.append((float(xy[k, 0]), float(xy[k, 1]), int(status[k])))
            if var is not None:
                self._variance[tid] = float(var[k])
            else:
                self._variance.pop(tid, None)
            if lost is not None and math.isfinite(lost[k]):
                self._p_lost[tid] = float(lost[k])
            else:
                self._p_lost.pop(tid, None)
        if not self.keep_missing:
            for tid in [t for t in self._tails if t not in seen]:
                del self._tails[tid]
                self._variance.pop(tid, None)
                self._p_lost.pop(tid, None)
        if frame_index is not None:
            self.frame_index = int(frame_index)
        elif self.frame_index is not None:
            self.frame_index += 1

    def tail(self, track_id: int) -> np.ndarray:
        """``(K, 3) float64`` rows (x, y, status code) of one id, oldest first (K <= max_len)."""
        return np.asarray(self._tails[int(track_id)], np.float64).reshape(-1, 3)

    def variance(self, track_id: int) -> float | None:
        """Latest variance (px^2) of one id, or None if none was given."""
        return self._variance.get(int(track_id))

    def p_lost(self, track_id: int) -> float | None:
        """Latest p_lost of one id, or None if none was given (or it was NaN)."""
        return self._p_lost.get(int(track_id))


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


def outlined_text(img: np.ndarray, text: str, org: tuple[int, int], scale: float, colour: tuple[int, int, int]) -> None:
    """Text with a dark outline, readable on any background.

    The outline is the same 1 px text shifted by one pixel in 8 directions: a thicker stroke would
    not do, because OpenCV 5 widens the glyph advance with the thickness, so the outline and the
    text would drift apart along the line.
    """
    font = cv2.FONT_HERSHEY_SIMPLEX
    x, y = org
    for dx, dy in ((-1, -1), (0, -1), (1, -1), (-1, 0), (1, 0), (-1, 1), (0, 1), (1, 1)):
        cv2.putText(img, text, (x + dx, y + dy), font, scale, (0, 0, 0), 1, cv2.LINE_AA)
    cv2.putText(img, text, org, font, scale, colour, 1, cv2.LINE_AA)


def _text_scale(img: np.ndarray) -> float:
    return max(0.4, min(0.7, img.shape[0] / 700))


def draw_header(img: np.ndarray, lines: list[str]) -> None:
    """Draw text lines in a translucent dark box at the top-left corner (in place)."""
    if not lines:
        return
    scale = _text_scale(img)
    font = cv2.FONT_HERSHEY_SIMPLEX
    sizes = [cv2.getTextSize(s, font, scale, 1)[0] for s in lines]
    line_h = max(h for _, h in sizes) + 8
    box_w = min(img.shape[1], max(w for w, _ in sizes) + 12)
    box_h = min(img.shape[0], line_h * len(lines) + 6)
    roi = img[:box_h, :box_w]
    roi[...] = (roi.astype(np.uint16) * 2 // 5).astype(np.uint8)
    for k, s in enumerate(lines):
        outlined_text(img, s, (6, 4 + line_h * (k + 1) - 6), scale, (255, 255, 255))


_LEGEND_COLOUR = (255, 215, 0)  # sample marker colour in the legend


def _visible_dot(img: np.ndarray, p: tuple[int, int], r: float, colour: tuple[int, int, int]) -> None:
    cv2.circle(img, p, int(round((r + 2.5) * _ONE)), (255, 255, 255), 1, cv2.LINE_AA, _SHIFT)  # halo
    cv2.circle(img, p, int(round((r + 1.5) * _ONE)), (0, 0, 0), -1, cv2.LINE_AA, _SHIFT)  # dark rim
    cv2.circle(img, p, int(round(r * _ONE)), colour, -1, cv2.LINE_AA, _SHIFT)


def _hidden_ring(img: np.ndarray, p: tuple[int, int], r: float, colour: tuple[int, int, int]) -> None:
    cv2.circle(img, p, int(round(r * _ONE)), colour, 1, cv2.LINE_AA, _SHIFT)


def _edge_tick(img: np.ndarray, x: float, y: float, colour: tuple[int, int, int]) -> None:
    """A short tick on the image border nearest to an outside point ``(x, y)``, pointing at it."""
    h, w = img.shape[:2]
    cx, cy = min(max(x, 0.0), w - 1.0), min(max(y, 0.0), h - 1.0)
    dx, dy = x - cx, y - cy
    norm = math.hypot(dx, dy)
    if norm == 0:
        return
    ux, uy = dx / norm, dy / norm
    cv2.line(img, _fix(cx - 7 * ux, cy - 7 * uy), _fix(cx, cy), colour, 2, cv2.LINE_AA, _SHIFT)


def _doubt_ring(img: np.ndarray, p: tuple[int, int], radius: float, colour: tuple[int, int, int]) -> None:
    """A hollow ring (visible but doubtful: high p_lost), 2 px wide."""
    cv2.circle(img, p, int(round(radius * _ONE)), colour, 2, cv2.LINE_AA, _SHIFT)


def draw_legend(img: np.ndarray, counts: dict[int, int], style: OverlayStyle) -> None:
    """Legend with the count of points per status in a translucent box, bottom-left (in place)."""
    scale = _text_scale(img) * 0.85
    font = cv2.FONT_HERSHEY_SIMPLEX
    items = [(TrackStatus.VISIBLE, f"{counts.get(TrackStatus.VISIBLE, 0)} visible"),
             (_DOUBTFUL, f"{counts.get(_DOUBTFUL, 0)} doubtful"),
             (TrackStatus.OCCLUDED, f"{counts.get(TrackStatus.OCCLUDED, 0)} occluded"),
             (TrackStatus.OUT_OF_VIEW, f"{counts.get(TrackStatus.OUT_OF_VIEW, 0)} out of view"
              + ("" if style.edge_markers else " (not drawn)"))]
    glyph_w, gap = 16, 14
    sizes = [cv2.getTextSize(text, font, scale, 1)[0] for _, text in items]
    text_h = max(h for _, h in sizes)
    box_h = text_h + 14
    box_w = sum(glyph_w + w + gap for w, _ in sizes) + 6
    h, w = img.shape[:2]
    y0, x1 = max(0, h - box_h), min(w, box_w)
    roi = img[y0:, :x1]
    roi[...] = (roi.astype(np.uint16) * 2 // 5).astype(np.uint8)
    x = 8
    cy = y0 + box_h // 2
    for (code, text), (tw, _) in zip(items, sizes):
        centre = _fix(x + 5, cy)
        if code == TrackStatus.VISIBLE:
            _visible_dot(img, centre, style.dot_radius * 0.8, _LEGEND_COLOUR)
        elif code == TrackStatus.OCCLUDED:
            _hidden_ring(img, centre, style.hidden_radius + 0.5, _dim(_LEGEND_COLOUR, 0.8))
        elif code == _DOUBTFUL:
            _doubt_ring(img, centre, style.dot_radius * 0.8 + 0.5, _dim(_LEGEND_COLOUR, 0.8))
        else:
            cv2.line(img, _fix(x, cy), _fix(x + 9, cy), _LEGEND_COLOUR if style.edge_markers else (150, 150, 150),
                     2, cv2.LINE_AA, _SHIFT)
        outlined_text(img, text, (x + glyph_w, cy + text_h // 2), scale, (255, 255, 255))
        x += glyph_w + tw + gap


def _tail_runs(tails: dict[int, np.ndarray], bands: int, tail_len: int) -> dict[int, tuple[np.ndarray, list[tuple[int, int, int]]]]:
    """Per track id (in the order of ``tails``; tails of fewer than 2 positions left out): its
    positions ``(n, 2) int32`` in drawing fixed point and its runs ``(a, b, band)``: positions a..b
    form one polyline of age band ``band``, every segment of it between two visible positions.

    Segment k joins points k and k+1, its age is (n - 2 - k) steps (older = fainter band). The
    tails of one length are processed as one array; only tails with a hidden position need
    their own run split."""
    out: dict[int, tuple[np.ndarray, list[tuple[int, int, int]]]] = {}
    by_len: dict[int, list[int]] = {}
    for tid, tl in tails.items():
        if len(tl) >= 2:
            by_len.setdefault(len(tl), []).append(tid)
    for n, tids in by_len.items():
        tl = np.stack([tails[tid] for tid in tids])  # (G, n, 3)
        vis = (tl[..., 2] == TrackStatus.VISIBLE) & np.isfinite(tl[..., :2]).all(axis=2)
        pts = np.round(np.nan_to_num(tl[..., :2]) * _ONE).astype(np.int32)
        k = np.arange(n - 1)
        band = np.minimum(bands - 1, ((n - 2 - k) / max(tail_len - 1, 1) * bands).astype(int))
        keep = vis[:, :-1] & vis[:, 1:]  # (G, n - 1)
        all_kept = keep.all(axis=1).tolist()
        band_l = band.tolist()

        def runs_of(key: np.ndarray, keep_row: list[bool]) -> list[tuple[int, int, int]]:
            cut = (np.flatnonzero(key[1:] != key[:-1]) + 1).tolist()  # runs of equal key: one polyline
            return [(a, b, band_l[a]) for a, b in zip([0] + cut, cut + [n - 1]) if keep_row[a]]

        full = runs_of(band, [True] * (n - 1))  # a tail visible all along
        for g, tid in enumerate(tids):
            if all_kept[g]:
                out[tid] = (pts[g], full)
            else:
                out[tid] = (pts[g], runs_of(np.where(keep[g], band, -1), keep[g].tolist()))
    return {tid: out[tid] for tid in tails if tid in out}


def draw_tracks(frame: np.ndarray, history: TrackHistory, *, style: OverlayStyle | None = None,
                frame_index: int | None = None, fps: float | None = None, header: bool = True,
                extra_header: str | None = None) -> np.ndarray:
    """Draw the tracks held in ``history`` onto a copy of ``frame``.

    Per track, by its latest status: *visible* with ``p_lost`` below ``style.doubt_threshold``
    (or none given): a fading tail of its last ``style.tail_len``
    positions (only segments between two visible positions), a filled dot with a dark rim and
    light halo, a circle of radius ``2 * sqrt(variance)`` px (clamped to
    ``style.max_sigma_radius``) for its uncertainty, optionally its id; *occluded*: a small
    faint ring (its uncertainty circle only with ``style.show_hidden_uncertainty``); *visible
    but doubtful* (``p_lost`` at or above the threshold): its tail and a faint hollow ring; *out of
    view*: nothing (a tick on the border with ``style.edge_markers``). Colours are stable per id.
    With ``header``, a header (top left) shows the frame index (argument, else
    ``history.frame_index``), ``fps`` if given and ``extra_header``, and the legend (bottom left,
    ``style.legend``) counts the points per status.

    Args:
        frame: RGB ``(H, W, 3) uint8`` (or grey ``(H, W)``); not modified.
    Returns:
        a new RGB ``(H, W, 3) uint8`` image.
    """
    st = style or OverlayStyle()
    out = _as_rgb(frame)
    tails = {tid: history.tail(tid)[-st.tail_len:] for tid in history.ids()}

    # tails, grouped so that each (age band, colour, thickness) is one cv2.polylines call;
    # segment k joins points k and k+1, its age is (n - 2 - k) steps: older = fainter. Only
    # segments whose both ends are visible are drawn.
    bands = max(1, int(st.tail_bands))
    groups: list[dict[tuple[tuple[int, int, int], int], list[np.ndarray]]] = [{} for _ in range(bands)]
    for tid, (pts, runs) in _tail_runs(tails, bands, st.tail_len).items():
        colour = track_colour(tid)
        for a, b, band in runs:
            groups[band].setdefault((colour, 2 if band == 0 else 1), []).append(pts[a : b + 1])
    for b in range(bands - 1, -1, -1):  # oldest first, newest drawn on top
        if not groups[b]:
            continue
        layer = out.copy()
        for (c, thick), lines in groups[b].items():
            cv2.polylines(layer, lines, False, c, thick, cv2.LINE_AA, _SHIFT)
        opacity = 1.0 - 0.75 * b / max(bands - 1, 1)  # newest 1.0 .. oldest 0.25
        cv2.addWeighted(layer, opacity, out, 1.0 - opacity, 0.0, dst=out)

    counts = {int(code): 0 for code in TrackStatus}
    latest = []
    for tid, tl in tails.items():
        if len(tl) == 0 or not np.isfinite(tl[-1, :2]).all():
            continue
        code = int(tl[-1, 2])
        counts[code] = counts.get(code, 0) + 1
        latest.append((tid, float(tl[-1, 0]), float(tl[-1, 1]), code))

    # hidden points first, faint (blended), so that visible ones are drawn on top of them
    hidden_layer = out.copy()
    any_hidden = False
    for tid, x, y, code in latest:
        colour = track_colour(tid)
        if code == TrackStatus.OCCLUDED:
            any_hidden = True
            p = _fix(x, y)
            _hidden_ring(hidden_layer, p, st.hidden_radius, colour)
            var = history.variance(tid)
            if st.show_hidden_uncertainty and var is not None and math.isfinite(var) and var > 0:
                r = min(2.0 * math.sqrt(var), st.max_sigma_radius)
                if r >= st.min_sigma_radius:
                    cv2.circle(hidden_layer, p, int(round(r * _ONE)), colour, 1, cv2.LINE_AA, _SHIFT)
        elif code == TrackStatus.OUT_OF_VIEW and st.edge_markers:
            any_hidden = True
            _edge_tick(hidden_layer, x, y, colour)
    if any_hidden:
        cv2.addWeighted(hidden_layer, st.hidden_opacity, out, 1.0 - st.hidden_opacity, 0.0, dst=out)

    doubtful = {tid for tid, _, _, code in latest
                if code == TrackStatus.VISIBLE and (history.p_lost(tid) or 0.0) >= st.doubt_threshold}
    if doubtful:
        doubt_layer = out.copy()
        for tid, x, y, _ in latest:
            if tid in doubtful:
                _doubt_ring(doubt_layer, _fix(x, y), st.dot_radius + 0.5, track_colour(tid))
        cv2.addWeighted(doubt_layer, st.doubt_opacity, out, 1.0 - st.doubt_opacity, 0.0, dst=out)
    counts[_DOUBTFUL] = len(doubtful)
    counts[TrackStatus.VISIBLE] = counts.get(TrackStatus.VISIBLE, 0) - len(doubtful)

    for tid, x, y, code in latest:
        if code != TrackStatus.VISIBLE or tid in doubtful:
            continue
        colour = track_colour(tid)
        p = _fix(x, y)
        var = history.variance(tid)
        if st.show_uncertainty and var is not None and math.isfinite(var) and var > 0:
            r = min(2.0 * math.sqrt(var), st.max_sigma_radius)
            if r >= st.min_sigma_radius:
                cv2.circle(out, p, int(round(r * _ONE)), _dim(colour, 0.85), 1, cv2.LINE_AA, _SHIFT)
        _visible_dot(out, p, st.dot_radius, colour)
        if st.show_ids:
            outlined_text(out, str(tid), (int(x) + 6, int(y) - 6), 0.35, colour)

    if header:
        idx = frame_index if frame_index is not None else history.frame_index
        parts = [] if idx is None else [f"frame {idx}"]
        if fps is not None:
            parts.append(f"{fps:.1f} fps")
        parts.append(f"{len(latest)} tracks")
        lines = ["  ".join(parts)]
        if extra_header:
            lines.append(extra_header)
        draw_header(out, lines)
    if header and st.legend:
        draw_legend(out, counts, st)
    return out
