"""Step 5 of the integration: long-term keypoint observations from the query's descriptor."""

from __future__ import annotations

import cv2
import numpy as np

from ..core.clip_buffer import ClipBuffer
from ..core.integration import Observation
from .bank import QueryBank
from .config import KeypointConfig
from .descriptors import cosine_similarity, from_level, similarity_maps, soft_argmax, to_level


class LongTermObserver:
    """An :class:`~gs_tracker_ros.tracking.tracker.Observer` that re-finds each query's appearance.

    Per live point it keeps the descriptor of the query (taken when the query is added, in the
    shared :class:`QueryBank`) and, on every frame, matches it in a window of the current frame:

    * Centre: the tracker's predicted position ``prior_xy``: the median landing point of the
      point's valid chains of this frame (after the chain filter), without any valid chain the
      point's previous position.
    * Radius: ``search_px`` while the point has a valid chain; otherwise
      ``search_px + growth_px * frames_occluded`` (frames_occluded counts this frame too), capped
      at ``max_search_px``: the longer a point is hidden, the farther it may reappear.
    * Search: windows up to ``2 * 2^L`` px (L = ``coarse_level``) are searched at full
      resolution (a disc of the radius). Wider ones are searched on level L with
      ``cv2.matchTemplate`` (first channel: grey or L*) over the square of half-side radius; the
      ``coarse_candidates`` best separated peaks are scored with the full descriptor, the two
      best are refined at full resolution within ``2^(L-1) + 2`` px, and the winner is kept only
      if it beats the runner-up by ``uniqueness_margin``.
    * Peak: soft-argmax near the integer peak; confidence = the descriptor cosine similarity
      at that sub-pixel position. Valid when > ``threshold`` for a point with valid chains (the
      tracker fuses it with them if within its 10 px gate), > ``refind_threshold`` for a point
      without (the tracker takes it alone: re-found). Variance ``variance`` px^2, divided by the
      normalised margin above the threshold when ``confidence_scaled_variance``.

    Cost control: a point with valid chains is matched only every ``visible_every`` frames
    (spread over frames by id; never with the default 0); occluded points every frame; at most
    ``max_searches_per_frame`` searches per frame (occluded points first, taking turns when there
    are more). Unmatched points return ``valid = False`` and leave the tracker's result unchanged.
    The observer keeps ``bank.lost``, the frames each point has gone without a valid chain or a
    match: :meth:`record` counts the tracker's chains of every frame, a re-found point is visible
    again.

    Called without ``prior_visible`` (nothing known about this frame's chains), every point is
    searched around ``prior_xy`` with a radius that grows while matches keep failing, and
    ``threshold`` applies.
    """

    def __init__(self, config: KeypointConfig, bank: QueryBank) -> None:
        self.config = config
        self.config.validate()
        self.bank = bank
        self._turn = 0
        self.last_similarity: np.ndarray | None = None  # (N,) of the last observe(), NaN = not searched

    # ------------------------------------------------------------------ Observer protocol
    def add(self, buffer: ClipBuffer, frame: int, ids: np.ndarray, xy: np.ndarray) -> None:
        self.bank.add(buffer, frame, ids, xy)

    def remove(self, ids: np.ndarray) -> None:
        self.bank.remove(ids)

    def reset(self) -> None:
        self.bank.reset()
        self._turn = 0

    def record(self, frame: int, ids: np.ndarray, has_chain: np.ndarray) -> None:
        rows = self.bank.rows(np.asarray(ids, np.int64))
        self.bank.lost[rows] = np.where(has_chain, 0, self.bank.lost[rows] + 1)

    def observe(self, buffer: ClipBuffer, frame: int, ids: np.ndarray, prior_xy: np.ndarray,
                prior_visible: np.ndarray | None = None) -> Observation:
        ids = np.asarray(ids, np.int64)
        n = ids.shape[0]
        obs = Observation.none(n, self.config.variance)
        mu, var, valid = obs.mu, obs.variance, obs.valid
        self.last_similarity = np.full(n, np.nan)
        if n == 0:
            return obs
        cfg = self.config
        rows = self.bank.rows(ids)
        centre = np.array(prior_xy, np.float64, copy=True)
        # record() counted this frame in bank.lost already when the chains are known
        has_chain = None if prior_visible is None else np.asarray(prior_visible, bool)
        occluded_frames = self.bank.lost[rows]
        if not cfg.enabled:
            return obs
        radius = np.minimum(cfg.search_px + cfg.growth_px * occluded_frames, cfg.max_search_px)

        pick = self._select(ids, frame, occluded_frames > 0)
        if pick.size:
            h, w = buffer.shape
            centre[pick, 0] = np.clip(centre[pick, 0], 0, w - 1)
            centre[pick, 1] = np.clip(centre[pick, 1], 0, h - 1)
            found, sim = self.search(buffer, frame, rows[pick], centre[pick], radius[pick])
            need = np.full(pick.size, cfg.threshold)
            if has_chain is not None:  # re-localising alone (no chain to gate it) needs stronger evidence
                need = np.where(has_chain[pick], cfg.threshold, max(cfg.threshold, cfg.refind_threshold))
            ok = np.isfinite(sim) & (sim > need)
            mu[pick[ok]] = found[ok]
            valid[pick[ok]] = True
            if cfg.confidence_scaled_variance:
                # sigma_kp^2 for a perfect match, growing as the similarity approaches the threshold
                margin = np.maximum(sim[ok] - need[ok], 1e-3) / np.maximum(1.0 - need[ok], 1e-3)
                var[pick[ok]] = cfg.variance / np.minimum(margin, 1.0)
            self.last_similarity[pick] = sim

        if has_chain is None:
            self.bank.lost[rows] = np.where(valid, 0, self.bank.lost[rows] + 1)
        else:
            self.bank.lost[rows[valid]] = 0  # re-found: visible on this frame
        return obs

    # ------------------------------------------------------------------ internals
    def _select(self, ids: np.ndarray, frame: int, occluded: np.ndarray) -> np.ndarray:
        """Indices of the points to search this frame (see the class doc for the policy)."""
        every = self.config.visible_every
        due = occluded | (((ids + frame) % every == 0) if every > 0 else False)
        occ_idx = np.flatnonzero(occluded)
        vis_idx = np.flatnonzero(due & ~occluded)
        budget = self.config.max_searches_per_frame
        if budget <= 0 or occ_idx.size + vis_idx.size <= budget:
            return np.concatenate([occ_idx, vis_idx])
        if occ_idx.size > budget:
            start = self._turn % occ_idx.size
            self._turn += budget
            return np.sort(np.roll(occ_idx, -start)[:budget])
        return np.concatenate([occ_idx, vis_idx[: budget - occ_idx.size]])

    def search(self, buffer: ClipBuffer, frame: int, rows: np.ndarray, centre: np.ndarray,
               radius: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Match bank rows around ``centre (P, 2)`` within ``radius (P,)`` px on ``frame``.

        Returns the soft-argmax positions ``(P, 2)`` px and their cosine similarity ``(P,)``
        (NaN where the query has no informative level or a wide search found no unique peak).
        """
        cfg = self.config
        p = rows.shape[0]
        found = np.full((p, 2), np.nan)
        sim = np.full(p, np.nan)
        if p == 0:
            return found, sim
        step = 2**cfg.coarse_level
        radius = np.asarray(radius, np.float64)
        wide = radius > 2 * step
        local = np.flatnonzero(~wide)
        if local.size:
            found[local], sim[local] = self._refine(buffer, frame, rows[local], centre[local], radius[local])
        far = np.flatnonzero(wide)
        if far.size:
            found[far], sim[far] = self._wide(buffer, frame, rows[far], centre[far], radius[far])
        return found, sim

    def _refine(self, buffer: ClipBuffer, frame: int, rows: np.ndarray, centre: np.ndarray,
                radius: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Full-resolution similarity map within ``radius`` px, soft-argmax, similarity there."""
        cfg = self.config
        pyr = self.bank.pyramid(buffer, frame)
        q, w = self.bank.query(rows)
        r = int(np.ceil(radius.max()))
        c_int = np.rint(centre).astype(np.int64)
        maps, used = similarity_maps(pyr, q, w, c_int, r)
        off = np.arange(2 * r + 1) - r
        inside = (off[None, :, None] ** 2 + off[None, None, :] ** 2) <= radius[:, None, None] ** 2
        cell_xy, _ = soft_argmax(maps, cfg.softargmax_radius, cfg.softargmax_temperature, mask=inside)
        found = c_int + cell_xy - r
        sim = np.full(rows.shape[0], np.nan)
        ok = used & np.all(np.isfinite(found), axis=1)
        if ok.any():
            sim[ok] = cosine_similarity(q.rows(ok), w[ok], self.bank.describe(buffer, frame, found[ok]))
        return found, sim

    def _wide(self, buffer: ClipBuffer, frame: int, rows: np.ndarray, centre: np.ndarray,
              radius: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Coarse search on ``coarse_level``, refine the best separated peaks, keep a unique winner.

        The coarse map of each point is OpenCV's normalised cross-correlation
        (``cv2.matchTemplate``, ``TM_CCOEFF_NORMED``) of its level-L query patch over the window
        on the level-L image; it only proposes candidates, which are then scored with the full
        descriptor at full resolution (batched over all points and candidates).
        """
        cfg = self.config
        p = rows.shape[0]
        lvl = cfg.coarse_level
        step = 2**lvl
        # proposals on the first channel only (grey / L*): 4x cheaper than all three channels;
        # the candidates are then scored with the full descriptor
        img = buffer.cached(frame, f"reloc_coarse_f32:{self.bank.config.channels}:{lvl}",
                            lambda _rgb: self.bank.pyramid(buffer, frame)[lvl][:, :, 0].astype(np.float32))
        hl, wl = img.shape[:2]
        q, w = self.bank.query(rows, levels=(lvl,))
        ksz = self.bank.config.patch_size
        half = ksz // 2
        tmpl = q.blocks[:, 0].reshape(p, ksz, ksz, -1)
        k = cfg.coarse_candidates
        cand = np.full((p, k, 2), np.nan)
        c_l = to_level(centre, lvl)
        r_l = radius / step
        for i in range(p):  # one small OpenCV call per point: the window and template differ
            if w[i, 0] <= 0:
                continue
            x0 = max(int(np.floor(c_l[i, 0] - r_l[i])) - half, 0)
            x1 = min(int(np.ceil(c_l[i, 0] + r_l[i])) + half + 1, wl)
            y0 = max(int(np.floor(c_l[i, 1] - r_l[i])) - half, 0)
            y1 = min(int(np.ceil(c_l[i, 1] + r_l[i])) + half + 1, hl)
            if x1 - x0 < ksz or y1 - y0 < ksz:
                continue
            t = np.ascontiguousarray(tmpl[i, :, :, 0])
            if float(np.abs(t).max()) <= 0.0:
                continue
            score = cv2.matchTemplate(img[y0:y1, x0:x1], t, cv2.TM_CCOEFF_NORMED)
            np.nan_to_num(score, copy=False, nan=-2.0)
            for j in range(k):  # greedy non-maximum suppression (one level-L patch apart)
                _, best, _, (bx, by) = cv2.minMaxLoc(score)
                if best <= -1.5:
                    break
                cand[i, j] = from_level(np.array([bx + x0 + half, by + y0 + half], np.float64), lvl)
                score[max(by - half, 0):by + half + 1, max(bx - half, 0):bx + half + 1] = -2.0
        flat = cand.reshape(-1, 2)
        idx = np.flatnonzero(np.all(np.isfinite(flat), axis=1))
        if idx.size and k > 2:  # score the candidates where they lie, refine only the best two
            qf, wf = self.bank.query(np.repeat(rows, k)[idx])
            pre = np.full(p * k, -np.inf)
            pre[idx] = np.nan_to_num(cosine_similarity(qf, wf, self.bank.describe(buffer, frame, flat[idx])),
                                     nan=-np.inf)
            keep = np.zeros((p, k), bool)
            top2 = np.argsort(-pre.reshape(p, k), axis=1)[:, :2]
            np.put_along_axis(keep, top2, True, axis=1)
            idx = idx[keep.reshape(-1)[idx]]
        ref_xy = np.full((p * k, 2), np.nan)
        ref_sim = np.full(p * k, np.nan)
        if idx.size:
            ref_xy[idx], ref_sim[idx] = self._refine(buffer, frame, np.repeat(rows, k)[idx], flat[idx],
                                                     np.full(idx.size, step / 2 + 2.0))
        ref_xy = ref_xy.reshape(p, k, 2)
        ref_sim = ref_sim.reshape(p, k)
        first = np.argmax(np.where(np.isfinite(ref_sim), ref_sim, -np.inf), axis=1)
        best_xy = ref_xy[np.arange(p), first]
        best_sim = ref_sim[np.arange(p), first]
        # runner-up: the best refined peak that is not the same place as the winner
        dist = np.linalg.norm(ref_xy - best_xy[:, None], axis=2)
        rival = np.where(np.isfinite(ref_sim) & (dist > step), ref_sim, -np.inf).max(axis=1)
        unique = best_sim - rival >= cfg.uniqueness_margin
        return best_xy, np.where(unique, best_sim, np.nan)
