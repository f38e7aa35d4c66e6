"""Per-query descriptors and occlusion counts, kept by the observer and read by the chain filter."""

from __future__ import annotations

import numpy as np

from ..core.clip_buffer import ClipBuffer
from .config import DescriptorConfig
from .descriptors import Descriptors, build_pyramid, describe, frame_pyramid, level_weights


class QueryBank:
    """Descriptors of every live query, taken once on its query frame, looked up by track id.

    The bank stores one patch per level of ``config.levels`` (the similarity levels) plus any
    ``extra_levels`` (e.g. the observer's coarse search level), and per query ``lost`` = the
    number of consecutive frames up to now in which the point had neither a valid chain nor a
    valid keypoint (0 = visible), i.e. the tracker's own visibility; the
    :class:`~.observer.LongTermObserver` keeps it (``record`` and ``observe``), the
    :class:`~.feature_filter.FeatureSimilarityFilter` reads it. Next to the query descriptor
    each query has a *refreshed* one on the similarity levels (``recent``; the query's own until
    :meth:`refresh` replaces it), which the filter keeps up to date. Memory: two ``S x k^2 x C``
    float32 descriptors and one counter per live query.
    """

    def __init__(self, config: DescriptorConfig | None = None, extra_levels: tuple[int, ...] = ()) -> None:
        self.config = config or DescriptorConfig()
        self.config.validate()
        self.levels = tuple(self.config.levels)  # similarity levels
        self.stored_levels = tuple(sorted(set(self.levels) | {int(v) for v in extra_levels}))
        self.top_level = max(self.stored_levels)
        self.reset()

    def reset(self) -> None:
        s = len(self.stored_levels)
        n = self.config.patch_size**2 * (3 if self.config.channels == "lab" else 1)
        self.ids = np.zeros(0, np.int64)  # ascending
        self.desc = Descriptors(np.zeros((0, s, n), np.float32), np.zeros((0, s), np.float32), self.stored_levels)
        self.lost = np.zeros(0, np.int64)
        self.recent = self.desc.subset(self.levels)  # refreshed descriptors, similarity levels

    def __len__(self) -> int:
        return int(self.ids.shape[0])

    # ------------------------------------------------------------------ frames
    def pyramid(self, buffer: ClipBuffer, frame: int) -> list[np.ndarray]:
        """The frame's feature pyramid (levels 0..top_level), cached in the buffer."""
        return frame_pyramid(buffer, frame, self.config.channels, self.top_level)

    def describe(self, buffer: ClipBuffer, frame: int, xy: np.ndarray,
                 levels: tuple[int, ...] | None = None) -> Descriptors:
        """Descriptors of ``xy (P, 2)`` px on a buffered frame (default: the similarity levels)."""
        return describe(self.pyramid(buffer, frame), xy, self.levels if levels is None else levels,
                        self.config.patch_size)

    # ------------------------------------------------------------------ queries
    def add(self, buffer: ClipBuffer, frame: int, ids: np.ndarray, xy: np.ndarray) -> None:
        """Describe queries ``xy (n, 2)`` px on buffered frame ``frame`` and store them under ``ids``."""
        ids = np.asarray(ids, np.int64).reshape(-1)
        if ids.size == 0:
            return
        # not through the frame cache: a query frame stays pinned while its queries live, and its
        # pyramid is not needed again once the query descriptors are taken
        pyr = build_pyramid(buffer.frame(frame), self.config.channels, self.top_level)
        d = describe(pyr, np.asarray(xy, np.float64), self.stored_levels, self.config.patch_size)
        all_ids = np.concatenate([self.ids, ids])
        order = np.argsort(all_ids, kind="stable")
        self.ids = all_ids[order]
        self.desc = _concat(self.desc, d, order)
        self.recent = _concat(self.recent, d.subset(self.levels), order)
        self.lost = np.concatenate([self.lost, np.zeros(ids.size, np.int64)])[order]

    def remove(self, ids: np.ndarray) -> np.ndarray:
        """Forget ``ids`` (unknown ids are ignored); returns the boolean keep-mask over old rows."""
        keep = ~np.isin(self.ids, np.asarray(ids, np.int64))
        self.ids = self.ids[keep]
        self.desc = self.desc.rows(keep)
        self.recent = self.recent.rows(keep)
        self.lost = self.lost[keep]
        return keep

    def refresh(self, rows: np.ndarray, descriptors: Descriptors) -> None:
        """Replace the refreshed descriptors of ``rows`` with ``descriptors`` (similarity levels)."""
        self.recent.blocks[rows] = descriptors.blocks
        self.recent.contrast[rows] = descriptors.contrast

    def rows(self, ids: np.ndarray) -> np.ndarray:
        """Row of each id ``(N,) int64``; raises ``KeyError`` for ids that were never added."""
        ids = np.asarray(ids, np.int64)
        if ids.size == 0:
            return np.zeros(0, np.int64)
        pos = np.minimum(np.searchsorted(self.ids, ids), max(len(self.ids) - 1, 0))
        if len(self.ids) == 0 or np.any(self.ids[pos] != ids):
            missing = ids if len(self.ids) == 0 else ids[self.ids[pos] != ids]
            raise KeyError(f"no query descriptor for track id(s) {missing[:10].tolist()}")
        return pos

    def query(self, rows: np.ndarray, levels: tuple[int, ...] | None = None) -> tuple[Descriptors, np.ndarray]:
        """Query descriptors of ``rows`` on ``levels`` (default: similarity levels) and their weights."""
        d = self.desc.rows(rows).subset(self.levels if levels is None else tuple(levels))
        return d, level_weights(d.contrast, self.config.min_contrast)

    def refreshed(self, rows: np.ndarray) -> tuple[Descriptors, np.ndarray]:
        """Refreshed descriptors of ``rows`` (similarity levels) and their weights."""
        d = self.recent.rows(rows)
        return d, level_weights(d.contrast, self.config.min_contrast)


def _concat(old: Descriptors, new: Descriptors, order: np.ndarray) -> Descriptors:
    """Rows of ``old`` then ``new``, permuted by ``order``."""
    return Descriptors(np.concatenate([old.blocks, new.blocks])[order],
                       np.concatenate([old.contrast, new.contrast])[order], old.levels)
