"""Step 2 of the integration: drop flow chains that land on a different texture than the query."""

from __future__ import annotations

import numpy as np

from ..core.clip_buffer import ClipBuffer
from .bank import QueryBank
from .config import FeatureFilterConfig
from .descriptors import cosine_similarity


class FeatureSimilarityFilter:
    """A :class:`~gs_tracker_ros.tracking.tracker.ChainFilter` on descriptor similarity.

    Every valid chain's landing point is described on the current frame (one batched descriptor
    extraction for the distinct landing points of all chains of all points, on the frame's
    cached pyramid) and compared with
    its query's descriptor; chains with a cosine similarity below ``config.threshold`` become
    invalid. A point that was occluded on the previous frame is only revived by a chain whose
    similarity also exceeds ``config.revive_threshold`` (hysteresis: an old chain landing on
    something vaguely similar must not bring a hidden point back). Queries without an
    informative descriptor level are never filtered. With ``config.enabled = False`` nothing is
    dropped.

    A chain's similarity is the larger of its similarity to the query descriptor and to the
    query's refreshed descriptor, which :meth:`refresh` updates every ``config.refresh_every``
    frames from the points tracked with confidence (see :class:`~.config.FeatureFilterConfig`).

    The filter reads the :class:`QueryBank` (query descriptors, and ``lost``, which the
    :class:`~.observer.LongTermObserver` keeps) and writes only the bank's refreshed descriptors;
    :meth:`filter` itself stores nothing but ``chain_similarity``, the similarities it compared (the
    tracker reads them as evidence of each chain).
    """

    def __init__(self, config: FeatureFilterConfig, bank: QueryBank) -> None:
        self.config = config
        self.config.validate()
        self.bank = bank
        self.chain_similarity: np.ndarray | None = None  # (N, C) of the last filter(), NaN = not evaluated

    def filter(self, buffer: ClipBuffer, frame: int, query_ids: np.ndarray, landing: np.ndarray,
               valid: np.ndarray) -> np.ndarray:
        valid = np.asarray(valid, bool)
        rows = self.bank.rows(query_ids)
        self.chain_similarity = np.full(valid.shape, np.nan)
        if self.config.enabled and valid.any():
            valid = valid.copy()
            sim = self.similarity(buffer, frame, query_ids, landing, valid)
            need = np.where(self.bank.lost[rows] > 0, max(self.config.threshold, self.config.revive_threshold),
                            self.config.threshold)
            valid &= ~(sim < need[:, None])  # NaN (not evaluated / no information) keeps the chain
            self.chain_similarity = sim
        return valid

    def similarity(self, buffer: ClipBuffer, frame: int, query_ids: np.ndarray, landing: np.ndarray,
                   where: np.ndarray) -> np.ndarray:
        """``(N, C)`` cosine similarity of each chain landing to its query; NaN outside ``where``."""
        sim = np.full(where.shape, np.nan)
        n_idx, c_idx = np.nonzero(where)
        if n_idx.size == 0:
            return sim
        # chains of a point usually agree: describe each distinct landing (0.25 px grid) once
        pts = landing[n_idx, c_idx]
        first, inverse = unique_rows(np.stack([n_idx, *np.rint(pts.T * 4).astype(np.int64)], axis=1))
        rows = self.bank.rows(query_ids)[n_idx[first]]
        seen = self.bank.describe(buffer, frame, pts[first])
        uniq = cosine_similarity(*self.bank.query(rows), seen)
        if self.config.refresh_every > 0:  # NaN only where neither has an informative level
            uniq = np.fmax(uniq, cosine_similarity(*self.bank.refreshed(rows), seen))
        sim[n_idx, c_idx] = uniq[inverse]
        return sim

    def refresh(self, buffer: ClipBuffer, frame: int, query_ids: np.ndarray, xy: np.ndarray,
                steady: np.ndarray, chains: np.ndarray) -> None:
        """After the fusion of ``frame``: on every ``refresh_every``-th frame, take the descriptor
        at ``xy (N, 2)`` px of each point that is ``steady (N,)`` (visible on this frame and the
        previous one) with at least ``refresh_min_chains`` valid ``chains (N,)``, and keep it as
        its refreshed descriptor where it is still ``refresh_threshold``-similar to the query."""
        cfg = self.config
        if not cfg.enabled or cfg.refresh_every <= 0 or frame % cfg.refresh_every != 0:
            return
        pick = np.flatnonzero(np.asarray(steady, bool) & (np.asarray(chains) >= cfg.refresh_min_chains))
        if pick.size == 0:
            return
        rows = self.bank.rows(np.asarray(query_ids, np.int64)[pick])
        now = self.bank.describe(buffer, frame, np.asarray(xy, np.float64)[pick])
        similar = cosine_similarity(*self.bank.query(rows), now) >= cfg.refresh_threshold  # NaN: not similar
        self.bank.refresh(rows[similar], now.rows(similar))


def unique_rows(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(first, inverse)`` of ``np.unique(keys, axis=0, return_index=True, return_inverse=True)``
    for ``(M, D) int64`` keys, computed on one packed int64 per row (numpy's row-wise unique goes
    through a structured-array sort, several times slower). The packing keeps the rows'
    lexicographic order and the sort is stable, so the result is the same arrays."""
    keys = np.asarray(keys, np.int64)
    if keys.shape[0] == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    low = keys.min(axis=0)
    span = keys.max(axis=0) - low + 1
    if float(np.prod(span.astype(np.float64))) >= 2.0**62:  # would overflow: numpy's own way
        _, first, inverse = np.unique(keys, axis=0, return_index=True, return_inverse=True)
        return first, inverse.reshape(-1)
    packed = np.zeros(keys.shape[0], np.int64)
    for d in range(keys.shape[1]):
        packed = packed * span[d] + (keys[:, d] - low[d])
    _, first, inverse = np.unique(packed, return_index=True, return_inverse=True)
    return first, inverse.reshape(-1)
