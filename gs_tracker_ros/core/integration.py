"""Online forward probabilistic integration: the per-frame fusion math (pure numpy).

Every rough prediction of a point's position is an isotropic 2-D Gaussian ``(mu, v)`` with
``mu`` in pixels and ``v`` in px^2. For one new frame each point has up to C candidate chains
(one per interval / source frame / motion source); these functions turn them into one estimate.
Arrays are batched over points: ``mu_k (N, C, 2)``, ``v_k (N, C)``, ``valid (N, C)``.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from .errors import check_range as _check

_EPS_VAR = 1e-6  # px^2, guards 1/v


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
    """

    intervals: tuple[int, ...] = (1, 2, 4, 8)
    query_chain: bool = False
    chain_from_occluded: bool = True
    outlier_px: float = 10.0
    outlier_reference: str = "lowest_variance"
    rho: float = 0.0
    probabilistic: bool = True
    occluded_variance_growth: float = 4.0
    motion_std_ratio: float = 0.0
    max_query_frames: int = 16
    unfiltered_max_interval: int = 0

    def validate(self) -> None:
        ks = tuple(int(k) for k in self.intervals)
        _check(len(ks) >= 1, "integration.intervals", self.intervals, "non-empty")
        _check(all(1 <= k <= 256 for k in ks), "integration.intervals", self.intervals, "each in [1, 256]")
        _check(len(set(ks)) == len(ks), "integration.intervals", self.intervals, "without duplicates")
        _check(self.outlier_px > 0, "integration.outlier_px", self.outlier_px, "> 0 (inf disables)")
        _check(self.outlier_reference in ("lowest_variance", "median"), "integration.outlier_reference",
               self.outlier_reference, "lowest_variance or median")
        _check(0.0 <= self.rho <= 1.0, "integration.rho", self.rho, "in [0, 1]")
        _check(self.occluded_variance_growth >= 0, "integration.occluded_variance_growth",
               self.occluded_variance_growth, ">= 0")
        _check(0.0 <= self.motion_std_ratio <= 10.0, "integration.motion_std_ratio", self.motion_std_ratio,
               "in [0, 10]")
        _check(1 <= self.max_query_frames <= 1024, "integration.max_query_frames", self.max_query_frames,
               "in [1, 1024]")
        _check(0 <= self.unfiltered_max_interval <= 256, "integration.unfiltered_max_interval",
               self.unfiltered_max_interval, "in [0, 256] frames (0 = every chain is filtered)")
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


OUTLIER_REFERENCES = ("lowest_variance", "median")


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
):
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

    Returns ``mu (N, 2)``, ``v (N,)``, ``visible (N,)``.
    """
    mu_k = np.asarray(mu_k, np.float64)
    v_k = np.asarray(v_k, np.float64)
    if np.isfinite(outlier_px):
        valid = reject_outliers(mu_k, v_k, valid, outlier_px, outlier_reference)
    if probabilistic:
        mu, v, visible = fuse(mu_k, v_k, valid, rho)
    else:
        mu, v, visible = fuse_lowest_variance(mu_k, v_k, valid)

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
    return mu, v, visible
