"""Learned dense descriptors matched in a window: step 5 observations from ALIKED features.

See :class:`~.config.LearnedMatchConfig` for the rule. The descriptor map of a frame is
computed once (cached in the :class:`ClipBuffer` with the frame) and shared by every point:
the query descriptors are sampled from their query frame's map, and every observed frame's map
is searched for all points at once.
"""

from __future__ import annotations

import numpy as np

from ..core.clip_buffer import ClipBuffer
from ..core.integration import Observation
from .config import LearnedMatchConfig


def sample_descriptors(desc: np.ndarray, xy_map: np.ndarray) -> np.ndarray:
    """Bilinear samples of ``desc (C, h, w)`` at map pixels ``xy_map (N, 2)``, renormalised: ``(N, C)``."""
    c, h, w = desc.shape
    x = np.clip(xy_map[:, 0], 0, w - 1)
    y = np.clip(xy_map[:, 1], 0, h - 1)
    x0 = np.minimum(np.floor(x).astype(int), w - 2) if w > 1 else np.zeros(len(x), int)
    y0 = np.minimum(np.floor(y).astype(int), h - 2) if h > 1 else np.zeros(len(y), int)
    fx, fy = (x - x0)[:, None], (y - y0)[:, None]
    x1, y1 = np.minimum(x0 + 1, w - 1), np.minimum(y0 + 1, h - 1)
    out = ((1 - fx) * (1 - fy) * desc[:, y0, x0].T + fx * (1 - fy) * desc[:, y0, x1].T
           + (1 - fx) * fy * desc[:, y1, x0].T + fx * fy * desc[:, y1, x1].T)
    return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-8)


def window_peaks(desc: np.ndarray, query: np.ndarray, centre_map: np.ndarray, radius: int):
    """Best cosine match of each ``query (N, C)`` within ``radius`` map px of ``centre_map (N, 2)``.

    Returns the sub-pixel peak ``(N, 2)`` in map px (a parabola through the peak and its two
    neighbours along each axis) and its similarity ``(N,)`` (-inf where the window is empty).
    """
    c, h, w = desc.shape
    n = query.shape[0]
    off = np.arange(-radius, radius + 1)
    cx = np.rint(centre_map[:, 0]).astype(int)
    cy = np.rint(centre_map[:, 1]).astype(int)
    xx = cx[:, None] + off[None]  # (N, K)
    yy = cy[:, None] + off[None]
    inside = ((yy >= 0) & (yy < h))[:, :, None] & ((xx >= 0) & (xx < w))[:, None, :]  # (N, K, K)
    idx = np.clip(yy, 0, h - 1)[:, :, None] * w + np.clip(xx, 0, w - 1)[:, None, :]
    flat = desc.reshape(c, h * w)
    sims = np.einsum("nc,cnk->nk", query, flat[:, idx.reshape(n, -1)]).reshape(idx.shape)
    sims = np.where(inside, sims, -np.inf)
    k = 2 * radius + 1
    best = sims.reshape(n, -1).argmax(axis=1)
    by, bx = np.divmod(best, k)
    rows = np.arange(n)
    peak = sims[rows, by, bx]

    def refine(minus, centre, plus):
        with np.errstate(invalid="ignore"):  # -inf neighbours outside the window or the map
            denom = minus - 2 * centre + plus
        ok = np.isfinite(minus) & np.isfinite(plus) & np.isfinite(denom) & (denom < -1e-9)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(ok, np.clip(0.5 * (minus - plus) / np.where(ok, denom, 1.0), -0.5, 0.5), 0.0)

    def at(dy, dx):
        y, x = by + dy, bx + dx
        ok = (y >= 0) & (y < k) & (x >= 0) & (x < k)
        return np.where(ok, sims[rows, np.clip(y, 0, k - 1), np.clip(x, 0, k - 1)], -np.inf)

    sub_x = refine(at(0, -1), peak, at(0, 1))
    sub_y = refine(at(-1, 0), peak, at(1, 0))
    xy = np.stack([cx - radius + bx + sub_x, cy - radius + by + sub_y], axis=1).astype(np.float64)
    return xy, peak


class LearnedMatchObserver:
    """An :class:`~gs_tracker_ros.tracking.tracker.Observer` matching ALIKED query descriptors.

    ``extractor`` is anything with ``compute(rgb) -> DescriptorMap`` (see
    :class:`~gs_tracker_ros.features.extractor.DenseDescriptorExtractor`); built from the config
    when not given.
    """

    def __init__(self, config: LearnedMatchConfig, extractor=None) -> None:
        config.validate()
        self.config = config
        if extractor is None:
            from ..features.extractor import DenseDescriptorConfig, DenseDescriptorExtractor

            extractor = DenseDescriptorExtractor(DenseDescriptorConfig(
                model_name=config.model_name, scale=config.scale, threads=config.threads, backend=config.backend))
        self.extractor = extractor
        self._key = f"learned_desc_{config.model_name}_{config.scale}"
        self.reset()

    def reset(self) -> None:
        self._ids = np.zeros(0, np.int64)
        self._desc = np.zeros((0, 0), np.float32)
        self.last_similarity: np.ndarray | None = None
        self.chain_similarity: np.ndarray | None = None  # (N, C) of the last filter(), NaN = not evaluated

    def descriptor_map(self, buffer: ClipBuffer, frame: int):
        """The frame's :class:`DescriptorMap` (computed once per frame, kept with the frame)."""
        return buffer.cached(frame, self._key, self.extractor.compute)

    def add(self, buffer: ClipBuffer, frame: int, ids: np.ndarray, xy: np.ndarray) -> None:
        dmap = self.descriptor_map(buffer, frame)
        desc = sample_descriptors(dmap.descriptors, dmap.to_map(np.asarray(xy, np.float64))).astype(np.float32)
        self._desc = desc if len(self._ids) == 0 else np.concatenate([self._desc, desc])
        self._ids = np.concatenate([self._ids, np.asarray(ids, np.int64)])

    def record(self, frame: int, ids: np.ndarray, has_chain: np.ndarray) -> None:
        """Nothing to keep: the search window comes from ``observe``'s ``prior_visible``."""

    def remove(self, ids: np.ndarray) -> None:
        keep = ~np.isin(self._ids, ids)
        self._ids, self._desc = self._ids[keep], self._desc[keep]

    def _rows(self, ids: np.ndarray) -> np.ndarray:
        order = np.argsort(self._ids)
        pos = np.searchsorted(self._ids[order], ids)
        return order[np.clip(pos, 0, len(order) - 1)]

    def filter(self, buffer: ClipBuffer, frame: int, query_ids: np.ndarray, landing: np.ndarray,
               valid: np.ndarray) -> np.ndarray:
        """Step 2 with learned descriptors: drop valid chains whose landing point ``landing
        (N, C, 2)`` px has a cosine similarity to the query below ``filter_threshold`` (a pure
        function of its inputs and the frame's descriptor map; nothing is stored)."""
        thr = self.config.filter_threshold
        self.chain_similarity = np.full(valid.shape, np.nan)
        if thr <= -1.0 or not valid.any():
            return valid
        dmap = self.descriptor_map(buffer, frame)
        n, c = valid.shape
        rows = self._rows(np.asarray(query_ids, np.int64))
        pts = dmap.to_map(landing.reshape(-1, 2))
        desc = sample_descriptors(dmap.descriptors, np.nan_to_num(pts)).reshape(n, c, -1)
        sim = np.einsum("ncd,nd->nc", desc, self._desc[rows])
        self.chain_similarity = np.where(valid, sim, np.nan)
        return valid & (sim >= thr)

    def refresh(self, buffer: ClipBuffer, frame: int, query_ids: np.ndarray, xy: np.ndarray,
                steady: np.ndarray, chains: np.ndarray) -> None:
        """The learned filter keeps comparing with the query descriptors as they were taken: the
        appearance refresh was measured with the classical filter only (docs/accuracy.md)."""

    def observe(self, buffer: ClipBuffer, frame: int, ids: np.ndarray, prior_xy: np.ndarray,
                prior_visible: np.ndarray | None = None) -> Observation:
        """Matches on ``frame`` around ``prior_xy (N, 2)`` px (the tracker's predicted positions:
        the median of each point's valid chains, else its previous position); points without a
        valid chain (``prior_visible`` False) get the wider ``refind_search_px`` window."""
        ids = np.asarray(ids, np.int64)
        was_visible = np.ones(len(ids), bool) if prior_visible is None else np.asarray(prior_visible, bool)
        n = len(ids)
        obs = Observation.none(n, self.config.variance)
        mu, valid = obs.mu, obs.valid
        self.last_similarity = np.full(n, np.nan)
        if n == 0:
            return obs
        rows = self._rows(ids)
        dmap = self.descriptor_map(buffer, frame)
        s = float(np.mean(dmap.scale_xy))
        prior_map = dmap.to_map(np.asarray(prior_xy, np.float64))
        for wide in (False, True):
            pick = np.flatnonzero(was_visible != wide)
            if pick.size == 0:
                continue
            radius_px = self.config.refind_search_px if wide else self.config.search_px
            peak_map, sim = window_peaks(dmap.descriptors, self._desc[rows[pick]], prior_map[pick],
                                         max(1, int(round(radius_px * s))))
            ok = np.isfinite(sim) & (sim > self.config.threshold)
            mu[pick[ok]] = dmap.to_frame(peak_map[ok])
            valid[pick[ok]] = True
            self.last_similarity[pick] = sim
        return obs
