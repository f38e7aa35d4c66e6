"""Online forward probabilistic integration: the per-frame fusion math (pure numpy).

Every rough prediction of a point's position is an isotropic 2-D Gaussian ``(mu, v)`` with
``mu`` in pixels and ``v`` in px^2. For one new frame each point has up to C candidate chains
(one per interval / source frame / motion source); these functions turn them into one estimate.
Arrays are batched over points: ``mu_k (N, C, 2)``, ``v_k (N, C)``, ``valid (N, C)``.
"""

from __future__ import annotations

import math
import typing
import warnings
from dataclasses import dataclass
from typing import Literal

import numpy as np

from .config import check_settings, setting
from .errors import check_range as _check

_EPS_VAR = 1e-6  # px^2, guards 1/v
FusionRule = Literal["inverse_variance", "mixture"]
FUSION_RULES = typing.get_args(FusionRule)


@dataclass
class IntegrationConfig:
    """Online forward probabilistic integration (DESIGN.md steps 1-6).

    Attributes:
        intervals: chain intervals k in frames; chain k starts from frame t - k. Default
            {1, 2, 4, 8}: measured on held-out real footage (labelled BADJA videos and DAVIS
            videos outside the repository) the fusion of these LK chains helped on every set,
            while the earlier {1, 3, 9, 27} + query-chain ladder (chosen on badja_dev) did not
            carry over.
        query_chain: also chain directly from the query frame ("inf" interval). Off by default:
            it did not help on held-out footage.
        chain_from_occluded: also start chains from frames where the point was judged occluded
            (from its best-guess position, whose variance has grown meanwhile), so a point keeps
            being followed by the short chains through a failed check instead of only by chains
            from its last visible frame.
        outlier_px: chains farther than this from the reference position are dropped.
        outlier_reference: that reference: ``lowest_variance`` (the most certain chain, as in
            the paper) or ``median`` (coordinate-wise median of the valid chains).
        rho: constant correlation coefficient between chains in the fused variance, in [0, 1].
        probabilistic: inverse-variance fusion; False = lowest-variance chain only (ablation).
        occluded_variance_growth: px^2 added per frame to the variance of an occluded point.
        motion_std_ratio: extra chain standard deviation per pixel of displacement: a chain that
            moves a point by d px gains ``(motion_std_ratio * |d|)^2`` px^2 of variance, so long,
            large-motion chains weigh less than short ones. Default 0: with the {1, 2, 4, 8}
            ladder, 0.1 scored lower on both badja_dev videos (delta_seg 47 -> 53 on dog,
            35 -> 47 on horsejump-high when set to 0).
        max_query_frames: at most this many distinct query frames are kept for query chains;
            older ones are released (their points keep the interval chains). Bounds memory.
        unfiltered_max_interval: chains of at most this interval that start from a visible state
            of a point visible on the previous frame skip the chain filter (step 2): their
            forward-backward check is their only test, as in plain KLT. Default 0 (none): 2 (the
            t-1 and t-2 chains) helped dog and the cycle check on the protocol but cost
            horsejump-high 1.9 delta_seg (docs/accuracy.md), so it is not the default.
        fusion: how the valid chains of a point become one estimate (steps 3 and 4):
            ``inverse_variance`` (outliers farther than ``outlier_px`` from a reference dropped,
            the rest averaged by inverse variance: the paper's rule) or ``mixture`` (each chain
            weighed by its evidence model's probability of being wrong: the best-supported
            position is chosen and the chains that do not support it are rejected, not
            averaged; :func:`fuse_mixture`).
        filtered_visible_p_lost: a point whose chains the appearance filter (step 2) dropped
            although at least one of them passed its source's own check (LK's forward-backward
            test) and stays in view is still published visible when its ``p_lost`` is below this,
            at the same published position and with a visible point's variance (the spread when
            right); what the tracker keeps (states, chains, p_lost) is the same either way. 0 =
            never: the filter's verdict hides it (the paper's rule). Default 0.5, "more likely
            right than lost": its motion was followed, only its look changed. Measured against 0
            (docs/accuracy.md): davis_masks mask-stay +0.9 (beyond the noise), badja_dev positions
            identical and AJ +0.0, the cycle checks' still-tracked share +0.2 / +0.3.
        chain_model: the fitted evidence model of one chain (JSON, see
            :mod:`~gs_tracker_ros.core.evidence`), a path relative to the repository; used with
            ``fusion: mixture``.
    """

    intervals: tuple[int, ...] = (1, 2, 4, 8)
    query_chain: bool = False
    chain_from_occluded: bool = True
    outlier_px: float = setting(10.0, range=(0.0, math.inf), low_open=True, runtime=True, unit="px",
                                note="inf disables")
    outlier_reference: Literal["lowest_variance", "median"] = "lowest_variance"
    rho: float = setting(0.0, range=(0.0, 1.0), runtime=True)
    probabilistic: bool = setting(True, runtime=True)
    occluded_variance_growth: float = setting(4.0, range=(0.0, math.inf), runtime=True, unit="px^2")
    motion_std_ratio: float = setting(0.0, range=(0.0, 10.0), runtime=True)
    max_query_frames: int = setting(16, range=(1, 1024))
    unfiltered_max_interval: int = setting(0, range=(0, 256), runtime=True, unit="frames",
                                           note="0 = every chain is filtered")
    fusion: FusionRule = "inverse_variance"
    filtered_visible_p_lost: float = setting(0.5, range=(0.0, 1.0), runtime=True, note="0 = never")
    chain_model: str = "checkpoints/evidence/chain.json"

    def validate(self) -> None:
        ks = tuple(int(k) for k in self.intervals)
        _check(len(ks) >= 1, "integration.intervals", self.intervals, "non-empty")
        _check(all(1 <= k <= 256 for k in ks), "integration.intervals", self.intervals, "each in [1, 256]")
        _check(len(set(ks)) == len(ks), "integration.intervals", self.intervals, "without duplicates")
        check_settings(self, "integration.")
        _check(self.fusion != "mixture" or bool(self.chain_model.strip()), "integration.chain_model",
               self.chain_model, "a model file (fusion: mixture needs one)")
        self.intervals = tuple(sorted(ks))


def chain(mu_s: np.ndarray, v_s: np.ndarray, displacement: np.ndarray, s2: np.ndarray,
          motion_std_ratio: float = 0.0):
    """Step 1: propagate a state through one motion estimate.

    ``mu_k = mu_s + d``, ``v_k = v_s + s2 + (motion_std_ratio * |d|)^2`` (the flow Jacobian is
    taken as orthogonal, so the source variance carries over unchanged; the last term makes a
    large displacement less certain than a small one).
    """
    extra = (motion_std_ratio * np.linalg.norm(displacement, axis=-1)) ** 2
    return mu_s + displacement, v_s + s2 + extra


def lowest_variance_index(v_k: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """``(N,)`` index of the valid chain with the lowest variance (0 where none is valid)."""
    return np.argmin(np.where(valid, v_k, np.inf), axis=1)


def reject_outliers(mu_k: np.ndarray, v_k: np.ndarray, valid: np.ndarray, outlier_px: float,
                    reference: str = "lowest_variance") -> np.ndarray:
    """Step 3: keep only valid chains within ``outlier_px`` of a reference position.

    ``reference``: ``lowest_variance`` = the most certain valid chain (the paper's rule);
    ``median`` = the coordinate-wise median of the valid chains' landing points, which a
    single confidently wrong chain cannot move.
    """
    if reference == "median":
        with np.errstate(invalid="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # rows without a valid chain
            ref = np.nanmedian(np.where(valid[..., None], mu_k, np.nan), axis=1)[:, None]  # (N, 1, 2)
        dist = np.linalg.norm(mu_k - ref, axis=2)
        return valid & (dist <= outlier_px)
    best = lowest_variance_index(v_k, valid)
    ref = np.take_along_axis(mu_k, best[:, None, None], axis=1)  # (N, 1, 2)
    dist = np.linalg.norm(mu_k - ref, axis=2)  # (N, C)
    return valid & (dist <= outlier_px)


def fuse(mu_k: np.ndarray, v_k: np.ndarray, valid: np.ndarray, rho: float):
    """Step 4: inverse-variance fusion of the valid chains with a constant correlation ``rho``.

    ``w_k = 1/v_k``, ``w~ = w / sum w``, ``mu = sum w~_k mu_k`` and
    ``v = (1 - rho) * sum(w~_k^2 v_k) + rho * (sum w~_k sqrt(v_k))^2``. With ``rho = 0`` this is
    the independent ``1 / sum w``; with ``rho = 1`` the chains are fully correlated and the
    fused standard deviation is the weighted mean of theirs.

    Returns ``mu (N, 2)``, ``v (N,)`` and ``any_valid (N,)``; rows without a valid chain hold
    NaN and must be handled by the caller (see :func:`integrate`).
    """
    v_safe = np.where(valid, np.maximum(v_k, _EPS_VAR), 1.0)  # invalid columns may hold inf
    w = np.where(valid, 1.0 / v_safe, 0.0)
    wsum = w.sum(axis=1)
    any_valid = wsum > 0
    with np.errstate(invalid="ignore", divide="ignore"):
        wn = w / wsum[:, None]
        mu = np.einsum("nc,ncd->nd", wn, np.where(valid[..., None], mu_k, 0.0))
        v_ind = np.sum(wn * wn * v_safe, axis=1)
        v_cor = np.sum(wn * np.sqrt(v_safe), axis=1) ** 2
    v = (1.0 - rho) * v_ind + rho * v_cor
    return mu, v, any_valid


def fuse_mixture(mu_k: np.ndarray, v_k: np.ndarray, valid: np.ndarray, p_out: np.ndarray, rho: float,
                 outlier_density: float):
    """Steps 3-4 as a robust mixture: choose the best-supported position, reject the rest.

    Each valid chain k is right with probability ``1 - p_out[k]`` (its landing then lies within
    its isotropic variance ``v_k`` px^2 of the truth) or wrong (anywhere: a flat density
    ``outlier_density`` per px^2). Every valid chain c is a candidate position; its support is
    ``sum_j log[((1 - p_j) N2(mu_j; mu_c, v_j + v_c) + p_j U) / U]`` over the valid chains j.
    The best-supported candidate wins; chain j's posterior of supporting it is
    ``r_j = (1 - p_j) N2 / ((1 - p_j) N2 + p_j U)``, and the chains with ``r_j >= 0.5`` are fused
    by inverse variance (:func:`fuse`) while the others are rejected, however certain they claim
    to be. So a chain that disagrees with the evidence-backed majority is not averaged in, and a
    lone confident chain with a poor record loses to two that agree.

    Returns ``mu (N, 2)``, ``v (N,)``, ``any_valid (N,)``, ``kept (N, C)`` (the chains fused) and
    ``p_wrong (N,)``: the probability that every kept chain is wrong (the product of their
    ``p_out``; 1 where none is valid).
    """
    n, c = valid.shape
    if n == 0 or c == 0:
        return (np.zeros((n, 2)), np.zeros(n), np.zeros(n, bool), np.zeros((n, c), bool), np.ones(n))
    p = np.clip(np.where(valid, p_out, 1.0), 1e-6, 1.0 - 1e-6)
    var = np.maximum(np.where(valid, v_k, 1.0), _EPS_VAR)
    pair_var = var[:, :, None] + var[:, None, :]  # (N, j, c) per-axis variance of mu_j - mu_c
    diff = mu_k[:, :, None, :] - mu_k[:, None, :, :]
    d2 = np.nan_to_num(np.einsum("njcd,njcd->njc", diff, diff), nan=np.inf, posinf=np.inf)
    log_in = np.log1p(-p)[:, :, None] - np.log(2.0 * np.pi * pair_var) - 0.5 * d2 / pair_var
    log_out = (np.log(p) + np.log(outlier_density))[:, :, None]
    log_mix = np.logaddexp(log_in, log_out)
    support = np.where(valid[:, :, None], log_mix - np.log(outlier_density), 0.0).sum(axis=1)  # (N, c)
    best = np.argmax(np.where(valid, support, -np.inf), axis=1)
    rows = np.arange(n)
    resp = np.exp(log_in[rows, :, best] - log_mix[rows, :, best])  # (N, j)
    kept = valid & (resp >= 0.5)
    kept[rows, best] = valid[rows, best]  # the winner always supports itself
    mu, v, any_valid = fuse(mu_k, v_k, kept, rho)
    p_wrong = np.where(any_valid, np.prod(np.where(kept, p, 1.0), axis=1), 1.0)
    return mu, v, any_valid, kept, p_wrong


def fuse_lowest_variance(mu_k: np.ndarray, v_k: np.ndarray, valid: np.ndarray):
    """Ablation of step 4: take the single valid chain with the lowest variance."""
    best = lowest_variance_index(v_k, valid)
    mu = np.take_along_axis(mu_k, best[:, None, None], axis=1)[:, 0]
    v = np.take_along_axis(v_k, best[:, None], axis=1)[:, 0]
    any_valid = valid.any(axis=1)
    return mu, v, any_valid


def fuse_observation(mu: np.ndarray, v: np.ndarray, mu_obs: np.ndarray, v_obs: np.ndarray):
    """Product of two isotropic Gaussians (step 5, a keypoint observation fused into the track).

    ``mu' = (v_obs mu + v mu_obs) / (v + v_obs)``, ``v' = v v_obs / (v + v_obs)``.
    """
    denom = np.maximum(v + v_obs, _EPS_VAR)
    mu_new = (v_obs[:, None] * mu + v[:, None] * mu_obs) / denom[:, None]
    return mu_new, v * v_obs / denom


@dataclass(frozen=True)
class Fusion:
    """The result of one frame's integration (:func:`integrate`), one row per point.

    Attributes:
        mu: ``(N, 2)`` px fused position (the best guess where ``visible`` is False).
        v: ``(N,)`` px^2 fusion variance.
        visible: ``(N,)`` a chain or an observation vouches for the point on this frame.
        kept: ``(N, C)`` the chains that were fused (after outlier rejection).
        p_wrong: ``(N,)`` probability that every kept chain is wrong (``fusion: mixture``; 0 for
            ``inverse_variance``, which has no such model; 1 where no chain was kept).
        observed: ``(N,)`` the observation (keypoint match) was fused or taken alone.
    """

    mu: np.ndarray
    v: np.ndarray
    visible: np.ndarray
    kept: np.ndarray
    p_wrong: np.ndarray
    observed: np.ndarray


@dataclass(frozen=True)
class Observation:
    """An extra absolute position observation per point (e.g. a long-term keypoint match)."""

    mu: np.ndarray  # (N, 2) px
    variance: np.ndarray  # (N,) px^2
    valid: np.ndarray  # (N,) bool

    @staticmethod
    def none(n: int, variance: float) -> "Observation":
        """``n`` points with no observation yet (NaN positions, ``variance`` px^2, not valid); an
        observer fills the arrays in place for the points it matches."""
        return Observation(np.full((n, 2), np.nan), np.full(n, float(variance)), np.zeros(n, bool))


# Upper bound of an occluded point's variance in px^2 (sigma = 10,000 px: "anywhere in the
# image" for any camera). Keeps every published variance finite, also with
# occluded_variance_growth = inf or after a very long occlusion.
MAX_VARIANCE_PX2 = 1.0e8


def integrate(
    mu_k: np.ndarray,
    v_k: np.ndarray,
    valid: np.ndarray,
    computed: np.ndarray,
    prev_mu: np.ndarray,
    prev_v: np.ndarray,
    *,
    outlier_px: float,
    rho: float,
    occluded_variance_growth: float,
    probabilistic: bool = True,
    observation: Observation | None = None,
    observation_gate_px: float = 10.0,
    outlier_reference: str = "lowest_variance",
    p_out: np.ndarray | None = None,
    outlier_density: float = 1.0 / (np.pi * 500.0**2),
) -> Fusion:
    """Steps 3-6 for one frame: outliers, fusion, observation, occlusion.

    Args:
        mu_k, v_k, valid: candidate chains, see module doc. ``valid`` already includes the
            per-source validity and any filters (step 2).
        computed: ``(N, C)`` chains that were evaluated at all (valid or not); used for the
            best guess when nothing is valid.
        prev_mu, prev_v: ``(N, 2)``, ``(N,)`` the point's previous state, used as the best
            guess when no chain could be computed.
        outlier_px: step 3 radius in px (``inf`` disables it).
        outlier_reference: step 3 reference, see :func:`reject_outliers`.
        rho: chain correlation for step 4.
        occluded_variance_growth: px^2 added to the best-guess variance while occluded; the
            result is capped at :data:`MAX_VARIANCE_PX2` (so ``inf`` means "the cap at once").
        probabilistic: False -> lowest-variance chain only (ablation).
        observation: optional extra observation fused in step 5.
        observation_gate_px: an observation farther than this from the fused chains is ignored
            (but is taken alone when no chain is valid: re-found after occlusion).
        p_out: ``(N, C)`` each chain's probability of being wrong (its evidence model): steps 3-4
            become :func:`fuse_mixture` (``outlier_px`` and ``probabilistic`` are then unused).
        outlier_density: the mixture's flat density of a wrong chain, per px^2.

    Returns the :class:`Fusion`.
    """
    mu_k = np.asarray(mu_k, np.float64)
    v_k = np.asarray(v_k, np.float64)
    if p_out is not None:
        mu, v, visible, valid, p_wrong = fuse_mixture(mu_k, v_k, valid, np.asarray(p_out, np.float64), rho,
                                                      outlier_density)
    else:
        if np.isfinite(outlier_px):
            valid = reject_outliers(mu_k, v_k, valid, outlier_px, outlier_reference)
        if probabilistic:
            mu, v, visible = fuse(mu_k, v_k, valid, rho)
        else:
            mu, v, visible = fuse_lowest_variance(mu_k, v_k, valid)
            valid = valid & (np.arange(valid.shape[1])[None] == lowest_variance_index(v_k, valid)[:, None])
        p_wrong = np.where(visible, 0.0, 1.0)
    observed = np.zeros(visible.shape, bool)

    if observation is not None:
        obs_ok = observation.valid & np.all(np.isfinite(observation.mu), axis=1)
        near = np.linalg.norm(np.nan_to_num(mu) - observation.mu, axis=1) <= observation_gate_px
        both = visible & obs_ok & near
        if both.any():
            mu[both], v[both] = fuse_observation(mu[both], v[both], observation.mu[both], observation.variance[both])
        refound = ~visible & obs_ok
        mu[refound] = observation.mu[refound]
        v[refound] = observation.variance[refound]
        visible = visible | refound
        observed = both | refound

    # Step 6: occlusion. Best guess = lowest-variance computed chain, else the previous state.
    occluded = ~visible
    if occluded.any():
        best = lowest_variance_index(v_k[occluded], computed[occluded])
        has_any = computed[occluded].any(axis=1)
        guess_mu = np.take_along_axis(mu_k[occluded], best[:, None, None], axis=1)[:, 0]
        guess_v = np.take_along_axis(v_k[occluded], best[:, None], axis=1)[:, 0]
        guess_mu[~has_any] = prev_mu[occluded][~has_any]
        guess_v[~has_any] = prev_v[occluded][~has_any]
        mu[occluded] = guess_mu
        v[occluded] = np.minimum(guess_v + occluded_variance_growth, MAX_VARIANCE_PX2)
    return Fusion(mu, v, visible, valid, p_wrong, observed)
