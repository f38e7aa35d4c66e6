"""Where a hidden point is published: it moves with the robust local motion of its visible neighbours.

A point with no valid chain and no keypoint match (occluded, or out of view) has no measurement
on this frame. Publishing the best of its failed chains makes it jump across the image from frame
to frame (each failed chain lands somewhere else). Instead, on every frame t a hidden point takes

    mu_t = mu_{t-1} + m + decay^k (u - m),    v_t = v_{t-1} + growth + s^2

* ``m`` (px/frame): the component-wise median of the frame-to-frame motion ``mu_t - mu_{t-1}``
  of its ``neighbours`` nearest *reference* tracks (points visible on both t-1 and t, nearest by
  their position on t-1): the local scene motion (camera pan, the object around it). With fewer
  than ``min_neighbours`` reference tracks ``m = 0``.
* ``u`` (px/frame): the point's own velocity, the median of its frame-to-frame steps over its
  last visible frames (up to ``velocity_frames`` steps), ``k`` the frames since it was last
  visible. The point first keeps its own motion relative to its surroundings, which fades by
  ``decay`` per frame: a point on an object that leaves the image carries on out of it (and is
  then out of view), a point behind an occluder drifts to a stop relative to the scene. Without
  a velocity (a point seen on one frame only) ``u = m``.
* ``s^2`` (px^2): the robust spread of the neighbours' motions, ``(1.4826 MAD)^2`` averaged over
  x and y; ``growth`` px^2 per frame is ``integration.occluded_variance_growth``. The variance
  only grows while a point is hidden, so a long-hidden point is published as uncertain.

So a hidden point never jumps: each component of its step lies between the motions it has been
measured to have (its own, its neighbours'), and the step's length is capped at
twice the median speed of this frame's reference tracks for the neighbours' part ``m`` (a
few neighbours that were just re-found elsewhere cannot drag it).

This is the *published* position (``TrackState.xy``). The state the next frames' chains start
from stays the fusion's best guess, except for a point this motion takes out of the image (out of
view: no chain measures it until the re-localisation finds it) and with ``moves_state``. Units: positions in px (x right, y down), velocities
in px/frame, variances in px^2, growth in px^2 per frame. Pure numpy; no ROS.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .config import check_settings, setting
from .geometry import inside_image
from .median import nanmedian

_MAD_TO_STD = 1.4826  # MAD of a Gaussian times this = its standard deviation
_CHUNK = 512  # hidden points per distance block (bounds memory to _CHUNK x N floats)


@dataclass
class HiddenMotionConfig:
    """How hidden (occluded / out-of-view) points are moved (see the module docstring).

    Attributes:
        enabled: move hidden points with their neighbours' motion. False restores the earlier
            best guess (the lowest-variance failed chain, which may jump across the image).
        neighbours: reference tracks (visible on this and the previous frame) whose median motion
            moves a hidden point; the nearest ones on the previous frame are used.
        min_neighbours: with fewer reference tracks within reach the local motion is 0 (one or two
            tracks are no robust median: a track that was just re-found elsewhere moves by a jump);
            at most ``neighbours`` are used, so a larger value turns the local motion off.
        max_neighbour_px: reference tracks farther than this (px, on the previous frame) are not
            used. ``inf`` = any distance.
        velocity_decay: per-frame factor by which a hidden point's own motion relative to its
            neighbours fades (0 = it moves with its neighbours from the first hidden frame; 0.9
            carries it about 10 frames' worth of its relative velocity further; 1 = it keeps its
            own velocity while hidden).
        velocity_frames: the own velocity is the median of up to this many frame-to-frame steps
            before the last visible state.
        leaving_ends_chains: a visible point whose own velocity carries it out of the image on
            this frame is not measured by its motion chains (:func:`stays_in_view`); False = only
            a point already out of view is not. On badja_dev (no joint leaves the image) True
            costs ~2-4 delta_seg points on horsejump-high (noise level); on the generated exit
            scene it turns ~15 % of the leaving points from "visible on the background" into
            "out of view".
        moves_state: the neighbour-moved position is also the state the next frames' chains
            start from. False (default): it is only the published position, and chains start
            from the fusion's best guess (the lowest-variance failed chain): with the live
            profile, moving the state cost 2 (dog) and 7 (horsejump-high) delta_seg points
            on badja_dev, because most "occluded" flags on real footage are failed checks on a
            point that is still there.
    """

    enabled: bool = setting(True, runtime=True)
    neighbours: int = setting(8, range=(1, 1024), runtime=True)
    min_neighbours: int = setting(3, range=(1, 1024), runtime=True)
    max_neighbour_px: float = setting(float("inf"), range=(0.0, float("inf")), low_open=True, runtime=True,
                                      unit="px", note="inf = any")
    velocity_decay: float = setting(0.9, range=(0.0, 1.0), runtime=True)
    velocity_frames: int = setting(3, range=(1, 16), runtime=True)
    leaving_ends_chains: bool = setting(True, runtime=True)
    moves_state: bool = False

    def validate(self) -> None:
        check_settings(self, "hidden.")


@dataclass(frozen=True)
class LocalMotion:
    """Per hidden point: ``motion (M, 2)`` px this frame, ``spread (M,)`` px^2, ``support (M,)``
    number of reference tracks used (0 = none, motion 0)."""

    motion: np.ndarray
    spread: np.ndarray
    support: np.ndarray


def local_motion(hidden_xy: np.ndarray, ref_xy: np.ndarray, ref_motion: np.ndarray, neighbours: int,
                 min_neighbours: int = 1, max_neighbour_px: float = float("inf")) -> LocalMotion:
    """Robust motion at ``hidden_xy (M, 2)`` px from reference tracks at ``ref_xy (R, 2)`` px that
    moved by ``ref_motion (R, 2)`` px: the component-wise median over the ``neighbours`` nearest
    references within ``max_neighbour_px``, and the spread ``(1.4826 MAD)^2`` (px^2, mean of x and y).
    Points with fewer than ``min_neighbours`` such references get motion 0, spread 0, support 0."""
    hidden_xy = np.asarray(hidden_xy, np.float64).reshape(-1, 2)
    ref_xy = np.asarray(ref_xy, np.float64).reshape(-1, 2)
    ref_motion = np.asarray(ref_motion, np.float64).reshape(-1, 2)
    m, r = hidden_xy.shape[0], ref_xy.shape[0]
    motion = np.zeros((m, 2))
    spread = np.zeros(m)
    support = np.zeros(m, np.int64)
    if m == 0 or r == 0:
        return LocalMotion(motion, spread, support)
    k = min(int(neighbours), r)
    for a in range(0, m, _CHUNK):
        b = min(a + _CHUNK, m)
        dx = hidden_xy[a:b, 0, None] - ref_xy[None, :, 0]  # (B, R); two planes, not a sum over a
        dy = hidden_xy[a:b, 1, None] - ref_xy[None, :, 1]  # length-2 axis (several times slower)
        d2 = dx * dx + dy * dy
        near = np.argpartition(d2, k - 1, axis=1)[:, :k] if k < r else np.broadcast_to(np.arange(r), (b - a, r))
        near_d2 = np.take_along_axis(d2, near, axis=1)
        ok = near_d2 <= max_neighbour_px**2  # (B, k)
        cand = np.where(ok[..., None], ref_motion[near], np.nan)  # (B, k, 2)
        has = ok.sum(axis=1) >= min_neighbours
        if not has.any():
            continue
        med = nanmedian(cand[has], axis=1)  # (B', 2)
        mad = nanmedian(np.abs(cand[has] - med[:, None, :]), axis=1)
        rows = np.arange(a, b)[has]
        motion[rows] = med
        spread[rows] = ((_MAD_TO_STD * mad) ** 2).mean(axis=1)
        support[rows] = ok[has].sum(axis=1)
    return LocalMotion(motion, spread, support)


@dataclass(frozen=True)
class LastVisibleMotion:
    """Per point: ``velocity (N, 2)`` px/frame over its last visible frames, ``known (N,)`` whether
    there was a visible step to measure it from, ``frames_since (N,)`` frames since its last
    visible state."""

    velocity: np.ndarray
    known: np.ndarray
    frames_since: np.ndarray


def last_visible_motion(ring_mu: np.ndarray, ring_vis: np.ndarray, ring_stamp: np.ndarray, frame: int,
                        max_frames: int) -> LastVisibleMotion:
    """Velocity of each point from the ring of its past states (``ring_mu (N, R, 2)`` px,
    ``ring_vis (N, R)``, ``ring_stamp (N, R)`` frame of each slot, -1 = empty; frame f in slot
    ``f % R``): the component-wise median of its frame-to-frame steps between visible states
    within ``max_frames`` frames before its last visible state s1 < ``frame`` (a median, so one
    step that was a jump does not become the velocity)."""
    n, r = ring_vis.shape
    vis_stamps = np.where(ring_vis & (ring_stamp >= 0) & (ring_stamp < frame), ring_stamp, -1)
    if n == 0 or r == 0:
        return LastVisibleMotion(np.zeros((n, 2)), np.zeros(n, bool), np.zeros(n, np.int64))
    s1 = vis_stamps.max(axis=1)  # -1: never visible in the ring
    frames = s1[:, None] - np.arange(min(max_frames, r - 1) + 1)[None, :]  # (N, K+1): s1, s1-1, ...
    slots = np.mod(frames, r)
    seen = (np.take_along_axis(vis_stamps, slots, axis=1) == frames) & (frames >= 0)
    pos = np.take_along_axis(ring_mu, slots[..., None], axis=1)  # (N, K+1, 2)
    step_ok = seen[:, :-1] & seen[:, 1:]
    steps = np.where(step_ok[..., None], pos[:, :-1] - pos[:, 1:], np.nan)  # (N, K, 2)
    known = step_ok.any(axis=1) & (s1 >= 0)
    velocity = np.zeros((n, 2))
    if known.any():
        velocity[known] = nanmedian(steps[known], axis=1)
    frames_since = np.where(s1 >= 0, frame - s1, 0)
    return LastVisibleMotion(velocity, known, frames_since)


def stays_in_view(prev_mu: np.ndarray, prev_visible: np.ndarray, own: LastVisibleMotion,
                  shape_hw: tuple[int, int], leaving_ends_chains: bool = True) -> np.ndarray:
    """``(N,) bool``: whether a point may be measured by its motion chains on this frame.

    False for a point that was out of view on the previous frame (its chains start from states
    before it left), and for a point visible there whose own motion carries it out of the image
    (``prev_mu + velocity`` outside): when its short chains fail at the border, its long chains
    land on whatever now sits where the point was seconds ago, which is no measurement of it.
    Such a point is out of view, and only the re-localisation brings it back once it re-enters.
    ``leaving_ends_chains`` False: only the first rule applies.
    """
    leaving = np.asarray(prev_visible, bool) & own.known & bool(leaving_ends_chains)
    ahead = np.where(leaving[:, None], prev_mu + own.velocity, prev_mu)
    return inside_image(prev_mu, shape_hw) & inside_image(ahead, shape_hw)


def move_hidden_points(prev_mu: np.ndarray, prev_v: np.ndarray, prev_visible: np.ndarray, mu: np.ndarray,
                       v: np.ndarray, visible: np.ndarray, config: HiddenMotionConfig,
                       variance_growth: float, own: LastVisibleMotion | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The hidden-point step of one frame (see the module docstring).

    Args:
        prev_mu, prev_v, prev_visible: ``(N, 2)`` px, ``(N,)`` px^2, ``(N,)`` the points' state on
            the previous frame.
        mu, v, visible: ``(N, 2)``, ``(N,)``, ``(N,)`` this frame's fused result; rows with
            ``visible`` False are replaced.
        config: the policy's settings.
        variance_growth: px^2 added per frame to a hidden point's variance.
        own: each point's own last visible motion (:func:`last_visible_motion`); None = unknown
            (hidden points move with their neighbours only).

    Returns new ``mu (N, 2)`` and ``v (N,)`` (copies); visible rows are unchanged.
    """
    mu = np.array(mu, np.float64, copy=True)
    v = np.array(v, np.float64, copy=True)
    hidden = ~np.asarray(visible, bool)
    if not config.enabled or not hidden.any():
        return mu, v
    ref = np.asarray(prev_visible, bool) & ~hidden & np.isfinite(mu).all(axis=1)
    lm = local_motion(prev_mu[hidden], prev_mu[ref], mu[ref] - prev_mu[ref], config.neighbours,
                      config.min_neighbours, config.max_neighbour_px)
    step = lm.motion
    # the neighbours' part no faster than twice this frame's median reference speed
    speeds = np.linalg.norm(mu[ref] - prev_mu[ref], axis=1)
    if speeds.size >= config.min_neighbours:
        cap = 2.0 * float(np.median(speeds))
        norm = np.linalg.norm(step, axis=1)
        step = step * np.minimum(1.0, cap / np.maximum(norm, 1e-9))[:, None]
    if own is not None and config.velocity_decay > 0:
        known = own.known[hidden]
        fade = config.velocity_decay ** np.maximum(own.frames_since[hidden], 1).astype(np.float64)
        rel = np.where(known[:, None], own.velocity[hidden] - step, 0.0)  # own motion relative to m
        step = step + fade[:, None] * rel
    mu[hidden] = prev_mu[hidden] + step
    v[hidden] = prev_v[hidden] + float(variance_growth) + lm.spread
    return mu, v
