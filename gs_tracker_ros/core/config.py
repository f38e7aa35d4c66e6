"""Typed tracker configuration with documented defaults and validation.

All distances are in pixels of the input frame, variances in px^2. ``TrackerConfig.from_dict``
accepts nested plain dicts (e.g. parsed YAML or ROS parameters ``flow.scale``) and rejects
unknown keys and out-of-range values with a :class:`ConfigError` naming the field.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

from ..engines.settings import EngineSettings
from ..relocalize.config import RelocalizeConfig
from .errors import ConfigError, check_range as _check
from .uncertainty import UncertaintyConfig
from .hidden_motion import HiddenMotionConfig

DIS_PRESETS = ("ultrafast", "fast", "medium")


@dataclass
class FlowConfig:
    """Dense DIS optical flow (OpenCV) with a forward-backward consistency check.

    Attributes:
        preset: DIS preset, one of ``ultrafast``, ``fast``, ``medium`` (slower, more accurate).
            Default ``medium``: the best single flow chain measured on real footage.
        scale: flow is computed on frames resized by this factor (0 < scale <= 1) for speed;
            displacements are returned in full-resolution pixels. Default 1 (full resolution).
        sigma0: base standard deviation of a flow estimate in px (``s2 = sigma0^2 + e_fb^2``).
        fb_threshold: a chain is invalid when the forward-backward error exceeds this (px).
        intervals: the chain intervals the ``dis`` source is used for when it is fused with others
            (a dense field in both directions per frame pair is costly: default the
            frame-to-frame chain only).
    """

    preset: str = "medium"
    scale: float = 1.0
    sigma0: float = 0.5
    fb_threshold: float = 2.0
    intervals: tuple[int, ...] = (1,)

    def validate(self) -> None:
        _check(self.preset in DIS_PRESETS, "flow.preset", self.preset, f"one of {DIS_PRESETS}")
        _check(0.05 <= self.scale <= 1.0, "flow.scale", self.scale, "in [0.05, 1]")
        _check(0.0 < self.sigma0 <= 50.0, "flow.sigma0", self.sigma0, "in (0, 50] px")
        _check(0.0 < self.fb_threshold <= 1000.0, "flow.fb_threshold", self.fb_threshold, "in (0, 1000] px")
        _check(len(self.intervals) >= 1 and all(1 <= int(k) <= 256 for k in self.intervals), "flow.intervals",
               self.intervals, "non-empty, each in [1, 256]")


@dataclass
class LKConfig:
    """Sparse pyramidal Lucas-Kanade at the point positions, forward-backward checked.

    Attributes:
        window: LK window side in px (odd).
        levels: pyramid levels above the full-resolution image (3, as the klt baseline and
            OpenCV's samples: 5 levels scored lower on both badja_dev videos).
        max_iterations: LK iterations per pyramid level (stops earlier at ``epsilon`` px updates).
        epsilon: LK stops iterating on a level once an update is smaller than this (px).
        min_eig_threshold: OpenCV's minimum-eigenvalue test: texture-less windows fail.
        sigma0: base standard deviation of an LK estimate in px.
        fb_threshold: a chain is invalid when the forward-backward error exceeds this (px).
    """

    window: int = 21
    levels: int = 3
    max_iterations: int = 20
    epsilon: float = 0.03
    min_eig_threshold: float = 1.0e-4
    sigma0: float = 0.5
    fb_threshold: float = 16.0

    def validate(self, section: str = "lk") -> None:
        """Raise :class:`ConfigError` naming ``section.field`` for a value out of range."""
        p = section + "."
        _check(3 <= self.window <= 101 and self.window % 2 == 1, p + "window", self.window, "odd, in [3, 101]")
        _check(0 <= self.levels <= 6, p + "levels", self.levels, "in [0, 6]")
        _check(1 <= self.max_iterations <= 100, p + "max_iterations", self.max_iterations, "in [1, 100]")
        _check(0.0 < self.epsilon <= 1.0, p + "epsilon", self.epsilon, "in (0, 1] px")
        _check(0.0 <= self.min_eig_threshold <= 1.0, p + "min_eig_threshold", self.min_eig_threshold, "in [0, 1]")
        _check(0.0 < self.sigma0 <= 50.0, p + "sigma0", self.sigma0, "in (0, 50] px")
        _check(0.0 < self.fb_threshold <= 1000.0, p + "fb_threshold", self.fb_threshold, "in (0, 1000] px")


def klt_baseline_lk() -> LKConfig:
    """LK settings of the ``klt`` baseline, as OpenCV's own samples and most users run it:
    21 px window, 3 pyramid levels, 30 iterations / 0.01 px, and the customary 1 px
    forward-backward check (a point failing it is reported occluded for that frame only)."""
    return LKConfig(window=21, levels=3, max_iterations=30, epsilon=0.01, fb_threshold=1.0)


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
        self.intervals = tuple(sorted(ks))


@dataclass
class TrackerConfig:
    """Configuration of :class:`~gs_tracker_ros.core.tracker.ProbabilisticTracker`.

    Attributes:
        sources: motion sources fused as separate chains: ``dis`` (dense DIS flow), ``lk``
            (sparse Lucas-Kanade), ``gmae`` (Gaussian encoder, needs a checkpoint).
        flow: DIS flow settings.
        lk: Lucas-Kanade settings of the ``lk`` motion source.
        klt: Lucas-Kanade settings of the ``klt`` baseline method (:func:`klt_baseline_lk`).
        integration: fusion settings.
        uncertainty: drift term of the published variance (:mod:`~gs_tracker_ros.core.uncertainty`).
        hidden: where hidden (occluded / out-of-view) points are published
            (:mod:`~gs_tracker_ros.core.hidden_motion`), e.g. ``hidden.neighbours``.
        relocalize: long-term keypoints and the feature-similarity chain filter (steps 2 and 5,
            :mod:`gs_tracker_ros.relocalize`), e.g. ``relocalize.keypoints.enabled``.
        engine: how the ``gmae`` source runs its encoder (backend torch / onnxruntime / tensorrt,
            model, ONNX and engine paths, precision, cache directory, threads).
        max_tracks: upper bound on live queries (further ``add_queries`` raise).
    """

    sources: tuple[str, ...] = ("lk",)
    flow: FlowConfig = field(default_factory=FlowConfig)
    lk: LKConfig = field(default_factory=LKConfig)
    klt: LKConfig = field(default_factory=klt_baseline_lk)
    integration: IntegrationConfig = field(default_factory=IntegrationConfig)
    uncertainty: UncertaintyConfig = field(default_factory=UncertaintyConfig)
    hidden: HiddenMotionConfig = field(default_factory=HiddenMotionConfig)
    relocalize: RelocalizeConfig = field(default_factory=RelocalizeConfig)
    engine: EngineSettings = field(default_factory=EngineSettings)
    max_tracks: int = 4096

    def validate(self) -> "TrackerConfig":
        _check(len(self.sources) >= 1, "sources", self.sources, "non-empty")
        _check(1 <= self.max_tracks <= 100_000, "max_tracks", self.max_tracks, "in [1, 100000]")
        self.flow.validate()
        self.lk.validate("lk")
        self.klt.validate("klt")
        self.integration.validate()
        self.uncertainty.validate()
        self.hidden.validate()
        self.relocalize.validate()
        self.engine.validate()
        return self

    @property
    def buffer_capacity(self) -> int:
        """Frames the rolling buffer must hold: the longest interval plus the current frame."""
        return max(self.integration.intervals) + 1

    # ------------------------------------------------------------------ (de)serialisation
    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> "TrackerConfig":
        cfg = _from_dict(cls, data or {}, prefix="")
        return cfg.validate()

    def replace(self, **overrides: Any) -> "TrackerConfig":
        """A copy with dotted-key overrides, e.g. ``replace(**{"flow.scale": 1.0})``."""
        data = self.to_dict()
        for key, value in overrides.items():
            node = data
            parts = key.split(".")
            for part in parts[:-1]:
                if part not in node or not isinstance(node[part], dict):
                    raise ConfigError(f"unknown config key '{key}'")
                node = node[part]
            if parts[-1] not in node:
                raise ConfigError(f"unknown config key '{key}'")
            node[parts[-1]] = value
        return TrackerConfig.from_dict(data)


def _from_dict(cls, data: dict[str, Any], prefix: str, defaults: Any = None):
    """Build ``cls`` from ``data``; fields missing from ``data`` keep the values of ``defaults``
    (by default ``cls()``), so a nested section with its own defaults (e.g. ``klt``) keeps them."""
    if not isinstance(data, dict):
        raise ConfigError(f"config section '{prefix.rstrip('.') or 'root'}' must be a mapping, got {data!r}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ConfigError(f"unknown config key(s) {', '.join(prefix + u for u in unknown)}; "
                          f"known: {', '.join(prefix + k for k in fields)}")
    defaults = cls() if defaults is None else defaults
    kwargs = {}
    for name, value in data.items():
        default = getattr(defaults, name)
        key = prefix + name
        if dataclasses.is_dataclass(default):
            kwargs[name] = _from_dict(type(default), value, prefix=key + ".", defaults=default)
        else:
            kwargs[name] = _coerce(key, value, default)
    return dataclasses.replace(defaults, **kwargs)


def _coerce(key: str, value: Any, default: Any) -> Any:
    try:
        if isinstance(default, bool):
            if isinstance(value, bool):
                return value
            if isinstance(value, str) and value.lower() in ("true", "false"):
                return value.lower() == "true"
            raise ValueError
        if isinstance(default, int):
            if isinstance(value, bool) or float(value) != int(float(value)):
                raise ValueError
            return int(value)
        if isinstance(default, float):
            if isinstance(value, bool):
                raise ValueError
            out = float(value)
            if math.isnan(out):
                raise ValueError
            return out
        if isinstance(default, str):
            if not isinstance(value, str):
                raise ValueError
            return value
        if isinstance(default, tuple):
            if isinstance(value, str):
                value = [v.strip() for v in value.split(",") if v.strip()]
            elif isinstance(value, (int, float)) and not isinstance(value, bool):
                value = [value]  # a one-element list written as a bare number, e.g. intervals=1
            items = list(value)
            if default and isinstance(default[0], int):
                return tuple(_coerce(key, v, 0) for v in items)
            return tuple(str(v) for v in items)
    except (TypeError, ValueError):
        pass
    raise ConfigError(f"config key '{key}' has invalid value {value!r} (expected {type(default).__name__})")
