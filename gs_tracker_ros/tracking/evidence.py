"""The evidence the tracker gathers per chain and per point on every frame, as named features.

Two fitted :class:`~gs_tracker_ros.core.evidence.EvidenceModel` read them:

* the **chain model** (``integration.chain_model``, used with ``integration.fusion: mixture``):
  per chain (one motion source from one earlier state of one point), the probability that the
  chain is wrong and its spread when right, from :data:`CHAIN_FEATURES`;
* the **track model** (``uncertainty.model``): per point, after the fusion, the published
  ``variance`` (px^2, the spread of the estimate when it is right) and ``p_lost`` (the
  probability that it is wrong by more than that spread), from :data:`TRACK_FEATURES`.

Features (all cheap: by-products of the chains, the chain filter and the fusion):

=================  ================================================================================
chain feature      meaning
=================  ================================================================================
``log_fb``         log(1 + forward-backward residual px) of the source (NaN: the source has none)
``sim``            appearance similarity of the landing to the query (chain filter; NaN: not compared)
``log_interval``   log(frames the chain spans)
``log_dev``        log(1 + px from the landing to the median landing of the point's valid chains)
``dense``          1 for a dense source (DIS flow, the Gaussian encoder), 0 for sparse LK
``log_step``       log(1 + displacement px)
``log_source_v``   log(1 + variance px^2 of the state the chain starts from)
=================  ================================================================================

=================  ================================================================================
track feature      meaning
=================  ================================================================================
``log_path``       log(1 + px the published position travelled since the query)
``log_age``        log(1 + frames since the query)
``sim``            mean similarity of the fused chains' landings to the query (NaN: none compared)
``sim_mean``       running mean (factor 0.9 per frame) of ``sim``, 1 on the query frame
``kept_share``     fused chains / computed chains (0 when none was computed)
``log_spread``     log(1 + px from the fused position to the farthest valid chain)
``hidden``         1 when the point is not visible on this frame
``log_hidden``     log(1 + frames since the point was last visible)
``log_v``          log(1 + fusion variance px^2)
``log_step``       log(1 + px the published position moved on this frame)
``observed``       1 when a keypoint / learned match was fused or re-found the point
=================  ================================================================================

Positions in px (x right, y down), variances in px^2. NaN features count as "no evidence" (their
fitted mean) in the model.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..core.median import nanmedian

CHAIN_FEATURES: tuple[str, ...] = ("log_fb", "sim", "log_interval", "log_dev", "dense", "log_step", "log_source_v")
TRACK_FEATURES: tuple[str, ...] = ("log_path", "log_age", "sim", "sim_mean", "kept_share", "log_spread", "hidden",
                                   "log_hidden", "log_v", "log_step", "observed")
SIM_MEMORY = 0.9  # per-frame factor of the running mean of the appearance similarity


@dataclass(frozen=True)
class ChainResults:
    """Every chain of one frame, one column per (source, interval); ``N`` points x ``C`` columns.

    Attributes:
        mu: ``(N, C, 2)`` px landing points.
        v: ``(N, C)`` px^2 chain variance (source state variance + the source's own variance).
        valid: ``(N, C)`` the source vouches for the chain.
        computed: ``(N, C)`` the chain was evaluated at all.
        source_xy: ``(N, C, 2)`` px the state the chain starts from.
        source_v: ``(N, C)`` px^2 that state's variance.
        fb: ``(N, C)`` px the source's forward-backward residual (NaN: none).
        interval: ``(N, C)`` frames the chain spans.
        dense: ``(C,)`` the column's source is dense (DIS, Gaussian encoder).
    """

    mu: np.ndarray
    v: np.ndarray
    valid: np.ndarray
    computed: np.ndarray
    source_xy: np.ndarray
    source_v: np.ndarray
    fb: np.ndarray
    interval: np.ndarray
    dense: np.ndarray

    @staticmethod
    def empty(n: int, c: int, dense: np.ndarray) -> "ChainResults":
        return ChainResults(np.zeros((n, c, 2)), np.full((n, c), np.inf), np.zeros((n, c), bool),
                            np.zeros((n, c), bool), np.zeros((n, c, 2)), np.zeros((n, c)), np.full((n, c), np.nan),
                            np.zeros((n, c)), np.asarray(dense, bool))


def chain_features(chains: ChainResults, valid: np.ndarray, similarity: np.ndarray | None) -> dict[str, np.ndarray]:
    """:data:`CHAIN_FEATURES` ``(N, C)`` each for the chains ``valid`` (after the chain filter);
    ``similarity (N, C)`` from the filter (None: not compared)."""
    n, c = valid.shape
    med = nanmedian(np.where(valid[..., None], chains.mu, np.nan), axis=1) if n and c else np.zeros((n, 2))
    dev = np.linalg.norm(chains.mu - med[:, None, :], axis=2)
    step = np.linalg.norm(chains.mu - chains.source_xy, axis=2)
    with np.errstate(invalid="ignore", divide="ignore"):
        return {
            "log_fb": np.log1p(np.minimum(chains.fb, 1e6)),
            "sim": np.full((n, c), np.nan) if similarity is None else np.asarray(similarity, np.float64),
            "log_interval": np.log(np.maximum(chains.interval, 1.0)),
            "log_dev": np.where(valid.sum(axis=1, keepdims=True) > 1, np.log1p(dev), np.nan),
            "dense": np.broadcast_to(chains.dense.astype(np.float64), (n, c)),
            "log_step": np.log1p(step),
            "log_source_v": np.log1p(np.maximum(chains.source_v, 0.0)),
        }


def track_features(*, path: np.ndarray, sim_mean: np.ndarray, prev_xy: np.ndarray, xy: np.ndarray,
                   age: np.ndarray, frames_unseen: np.ndarray, visible: np.ndarray, fused_v: np.ndarray,
                   chains: ChainResults, valid: np.ndarray, kept: np.ndarray, similarity: np.ndarray | None,
                   observed: np.ndarray) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
    """:data:`TRACK_FEATURES` ``(N,)`` each after one frame's fusion, with the points' running
    ``path`` (px travelled since the query) and ``sim_mean`` (running mean similarity) updated.

    ``prev_xy`` / ``xy``: published positions on the previous and this frame (px); ``age``
    frames since the query; ``frames_unseen`` frames since last visible (0 when visible now);
    ``fused_v`` px^2; ``valid`` / ``kept`` ``(N, C)`` chains valid after the filter / fused.
    Returns ``(features, path, sim_mean)``."""
    step = np.linalg.norm(np.asarray(xy) - np.asarray(prev_xy), axis=1)
    path = np.asarray(path, np.float64) + np.nan_to_num(step)
    n = step.shape[0]
    sim = np.full(n, np.nan)
    if similarity is not None and n:
        with np.errstate(invalid="ignore"):
            s = np.where(kept, similarity, np.nan)
            has = np.isfinite(s).any(axis=1)
            sim[has] = np.nanmean(s[has], axis=1)
    sim_mean = np.where(np.isfinite(sim), SIM_MEMORY * np.asarray(sim_mean) + (1 - SIM_MEMORY) * sim, sim_mean)
    computed = chains.computed.sum(axis=1)
    spread = np.zeros(n)
    if n and valid.any():
        d = np.linalg.norm(chains.mu - np.asarray(xy)[:, None, :], axis=2)
        spread = np.where(valid.any(axis=1), np.where(valid, d, 0.0).max(axis=1), 0.0)
    features = {
        "log_path": np.log1p(path),
        "log_age": np.log1p(np.asarray(age, np.float64)),
        "sim": sim,
        "sim_mean": np.array(sim_mean, np.float64),
        "kept_share": np.where(computed > 0, kept.sum(axis=1) / np.maximum(computed, 1), 0.0),
        "log_spread": np.log1p(spread),
        "hidden": (~np.asarray(visible, bool)).astype(np.float64),
        "log_hidden": np.log1p(np.asarray(frames_unseen, np.float64)),
        "log_v": np.log1p(np.maximum(np.asarray(fused_v, np.float64), 0.0)),
        "log_step": np.log1p(np.nan_to_num(step)),
        "observed": np.asarray(observed, np.float64),
    }
    return features, path, sim_mean


@dataclass(frozen=True)
class FrameEvidence:
    """The evidence of the last frame (what the models read), kept for inspection and fitting.

    Attributes:
        frame: the frame index.
        ids: ``(N,)`` track ids, rows of everything below.
        chains: the chain results (before the filter).
        valid: ``(N, C)`` chains valid after the filter.
        chain: :data:`CHAIN_FEATURES` ``(N, C)`` each.
        track: :data:`TRACK_FEATURES` ``(N,)`` each.
    """

    frame: int
    ids: np.ndarray
    chains: ChainResults
    valid: np.ndarray
    chain: dict[str, np.ndarray]
    track: dict[str, np.ndarray]
