"""Named tracking methods: the one place that maps a method name to a tracker and builds its parts.

Used by ``gs-tracker track/eval/bench``, the ROS node and the bag replay, so every entry point
builds trackers the same way: :func:`build_sources` (motion sources), :func:`build_relocalizer`
(chain filter and observer) and :func:`build_probabilistic_tracker` (the two put together) are
the only places that turn a :class:`TrackerConfig` into objects.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Iterable

from .baselines.dis_chain import DISChainTracker
from .baselines.klt import KLTTracker
from .core.errors import ConfigError
from .core.evidence import EvidenceModel
from .core.types import PointTracker
from .engines.factory import engine_from_settings
from .engines.settings import EngineSettings
from .motion.base import MotionSource
from .motion.dis_flow import DISFlowSource
from .motion.lucas_kanade import LucasKanadeSource
from .relocalize import FeatureSimilarityFilter, LongTermObserver, QueryBank, RelocalizeConfig
from .relocalize.learned import LearnedMatchObserver
from .tracking.config import TrackerConfig, UserConfig
from .tracking.tracker import ChainFilter, Observer, ProbabilisticTracker

DEFAULT_METHOD = "probfuse"
SOURCE_NAMES = ("dis", "lk", "gmae")


def build_sources(config: TrackerConfig, engine=None) -> list[MotionSource]:
    """The motion sources ``config.sources`` names, in that order.

    ``engine`` chooses the encoder of the ``gmae`` source: an :class:`EngineSettings`, a dict of
    its fields, or a built :class:`~gs_tracker_ros.engines.base.EncoderEngine`. Default:
    ``config.engine`` (torch on the shipped checkpoint unless configured otherwise).
    """
    sources: list[MotionSource] = []
    for name in config.sources:
        if name == "dis":
            sources.append(DISFlowSource(config.flow))
        elif name == "lk":
            sources.append(LucasKanadeSource(config.lk))
        elif name == "gmae":
            sources.append(_gmae_source(config, engine))
        else:
            raise ConfigError(f"unknown motion source '{name}' (known: {', '.join(SOURCE_NAMES)})")
    return sources


def gmae_window_hop(config: TrackerConfig, num_frames: int) -> int:
    """Frames between encoder passes of the ``gmae`` source under ``config``.

    Alone, the source must answer every frame (its chains start from the previous frames' states,
    which it alone keeps visible): a window per frame. Fused with other sources, those carry the
    frames in between, and the encoder runs once per half clip (``num_frames // 2``), so the
    source's cost per frame is bounded by one encoder pass per ``num_frames // 2`` frames.
    """
    if tuple(config.sources) == ("gmae",):
        return 1
    return max(1, num_frames // 2)


def _gmae_source(config: TrackerConfig, engine=None) -> MotionSource:
    from .motion.gaussian import GaussianMotionSource  # torch: imported only when the source is used

    settings = config.engine if engine is None else engine
    if isinstance(settings, dict):
        settings = EngineSettings.from_dict(settings)
    encoder = engine_from_settings(settings) if isinstance(settings, EngineSettings) else settings
    return GaussianMotionSource(encoder, window_hop=gmae_window_hop(config, int(encoder.num_frames)))


def build_relocalizer(config: RelocalizeConfig) -> tuple[ChainFilter | None, Observer | None]:
    """The ``(chain_filter, observer)`` pair for a :class:`ProbabilisticTracker`, or ``(None, None)``.

    Classical: a :class:`FeatureSimilarityFilter` and a :class:`LongTermObserver` over one
    :class:`QueryBank` of query descriptors (the filter only reads it; the observer keeps it,
    including the visibility the tracker reports every frame with ``Observer.record``); both are
    built whenever either part is enabled, a disabled part passing everything through.
    Learned (``config.learned.enabled``): one :class:`LearnedMatchObserver`, also the chain filter
    when ``learned.filter_threshold`` is set.
    """
    config.validate()
    if not config.active:
        return None, None
    if config.learned.enabled:
        learned = LearnedMatchObserver(config.learned)  # replaces the classical filter and observer
        return (learned if config.learned.filter_threshold > -1.0 else None), learned
    bank = QueryBank(config.descriptor, extra_levels=(config.keypoints.coarse_level,))
    return FeatureSimilarityFilter(config.filter, bank), LongTermObserver(config.keypoints, bank)


def build_probabilistic_tracker(config: TrackerConfig | None = None, name: str = "probfuse",
                                relocalize: bool = True, engine=None,
                                track_model: EvidenceModel | None = None) -> ProbabilisticTracker:
    """A :class:`ProbabilisticTracker` with every part ``config`` names: its motion sources, its
    evidence models (``uncertainty.model``, and ``integration.chain_model`` with
    ``integration.fusion: mixture``) and, with ``relocalize``, its chain filter and observer.
    ``track_model`` replaces the configured track model (fitting a new one)."""
    config = (config or TrackerConfig()).validate()
    chain_filter, observer = build_relocalizer(config.relocalize) if relocalize else (None, None)
    return ProbabilisticTracker(config, build_sources(config, engine), chain_filter=chain_filter,
                                observer=observer, name=name, track_model=track_model)


def _probfuse(config: TrackerConfig | None) -> PointTracker:
    return build_probabilistic_tracker(config, name="probfuse")


# The accurate profile: the live profile (TrackerConfig defaults) plus the dense DIS field (preset
# medium, full resolution: the best single chain measured on held-out footage) on the
# frame-to-frame chain and learned ALIKED matches on every frame. Its CPU cost is stated in the
# README; on a GPU or for offline replay it is the more accurate choice. Applied with
# :func:`apply_profile`: a key the user changed (--set, --config, a node parameter) wins.
ACCURATE_PROFILE: dict[str, Any] = {
    "sources": ("lk", "dis"),
    "flow.intervals": (1,),
    "relocalize.learned.enabled": True,
    "relocalize.learned.model_name": "aliked-n16",
    "relocalize.learned.backend": "onnxruntime",
    "relocalize.every": 1,
    # OpenCV's minimum-eigenvalue threshold: the dense DIS chain already follows smooth regions,
    # and the live profile's 1e-5 made this profile's cycle check slightly worse (docs/accuracy.md)
    "lk.min_eig_threshold": 1.0e-4,
}


# The fast profile: the live profile for 60 Hz cameras and 1024 points. The t-1 / t-2 chains of
# visible points skip the descriptor filter, and the long chains (t-4, t-8) and the observer run
# on every 2nd frame (tracking/schedule.py). Measured 2026-12-02 (docs/performance.md): about 1.55x
# the live profile's frame rate (82.8 vs 53.6 fps at 256 points, 30.4 vs 19.6 at 1024); badja_dev pooled better on all three scores, but lower on
# horsejump-high's delta_seg and on the cycle check, which is why it is not the default.
FAST_PROFILE: dict[str, Any] = {
    "integration.unfiltered_max_interval": 2,
    "schedule.stride": 2,
}


def apply_profile(config: TrackerConfig | None, profile: dict[str, Any],
                  user_keys: Iterable[str] = ()) -> TrackerConfig:
    """``config`` with a profile's keys, except those the user set: a key in ``user_keys`` (what
    ``--set`` named) or one whose value differs from the TrackerConfig default (a config file, a
    node parameter) keeps the user's value. So ``--method probfuse-accurate --set
    relocalize.every=2`` runs the descriptor network on every 2nd frame although 2 is the
    TrackerConfig default; only ``--set`` can pin a key to its default against a profile."""
    config = config or TrackerConfig()
    forced = set(user_keys)
    given, default = config.to_dict(), TrackerConfig().to_dict()
    keep = {key: value for key, value in profile.items()
            if key not in forced and _normalised(_dotted(given, key)) == _normalised(_dotted(default, key))
            and _normalised(_dotted(given, key)) != _normalised(value)}
    return config.replace(**keep) if keep else config  # the same object when the profile adds nothing


def _dotted(data: dict[str, Any], key: str) -> Any:
    for part in key.split("."):
        data = data[part]
    return data


def _normalised(value: Any) -> Any:
    """Lists and tuples compare alike (YAML and --set give lists, the dataclasses tuples)."""
    return tuple(_normalised(v) for v in value) if isinstance(value, (list, tuple)) else value


def _probfuse_fast(config: TrackerConfig | None) -> PointTracker:
    return build_probabilistic_tracker(config, name="probfuse-fast")  # make_tracker applied FAST_PROFILE


def _probfuse_accurate(config: TrackerConfig | None) -> PointTracker:
    return build_probabilistic_tracker(config, name="probfuse-accurate")  # make_tracker applied ACCURATE_PROFILE


def _gmae(config: TrackerConfig | None) -> PointTracker:
    return build_probabilistic_tracker((config or TrackerConfig()).replace(sources=["gmae"]), name="gmae",
                                       relocalize=False)


def _probfuse_gmae(config: TrackerConfig | None) -> PointTracker:
    tracker = _probfuse(config)  # method_config added "gmae" to the sources
    tracker.name = "probfuse+gmae"
    return tracker


def _klt(config: TrackerConfig | None) -> PointTracker:
    return KLTTracker((config or TrackerConfig()).klt)


def _dis_chain(config: TrackerConfig | None) -> PointTracker:
    return DISChainTracker((config or TrackerConfig()).flow)


def _dis_chain_fast(config: TrackerConfig | None) -> PointTracker:
    flow = dataclasses.replace((config or TrackerConfig()).flow, preset="fast", scale=0.5)
    tracker = DISChainTracker(flow)
    tracker.name = "dis-chain-fast"
    return tracker


METHODS: dict[str, tuple[Callable[[TrackerConfig | None], PointTracker], str]] = {
    "probfuse": (_probfuse, "ours, live CPU profile (default): probabilistic fusion of LK chains from "
                            "t-1, t-2, t-4, t-8 with classical re-localisation"),
    "probfuse-fast": (_probfuse_fast, "ours, fast profile for 60 Hz cameras: probfuse with the long chains "
                                      "and the re-localisation every 2nd frame and unfiltered short chains"),
    "probfuse-accurate": (_probfuse_accurate, "ours, accurate profile: probfuse plus the dense DIS chain "
                                              "from t-1 and learned ALIKED matches on every frame "
                                              "(GPU / offline on a CPU)"),
    "gmae": (_gmae, "the Video-GMAE Gaussian motion source alone (zero-shot, shipped checkpoint)"),
    "probfuse+gmae": (_probfuse_gmae, "probfuse with the Gaussian motion source fused as extra chains"),
    "klt": (_klt, "OpenCV pyramidal Lucas-Kanade frame to frame; a failed 1 px forward-backward check "
                  "marks the point occluded for that frame"),
    "dis-chain": (_dis_chain, "one dense DIS optical-flow chain, frame to frame (preset medium, full resolution)"),
    "dis-chain-fast": (_dis_chain_fast, "the same DIS chain at preset fast, half resolution"),
}


def method_names() -> list[str]:
    return list(METHODS)


# The named profiles' keys on top of TrackerConfig (see :func:`apply_profile`).
PROFILES: dict[str, dict[str, Any]] = {"probfuse-fast": FAST_PROFILE, "probfuse-accurate": ACCURATE_PROFILE}


def method_config(method: str, user: UserConfig | TrackerConfig | None = None) -> TrackerConfig:
    """The config ``method``'s tracker runs with: the user's config, plus a profile's keys
    (:data:`PROFILES`) where the user did not set them (``user.keys``: the dotted keys set on the
    command line, which win even at their default value); ``probfuse+gmae`` adds the ``gmae``
    source. Returns ``user.config`` itself where the method adds nothing, so that a caller that
    keeps it (the node) changes the running tracker's settings in place."""
    if method not in METHODS:
        raise ConfigError(f"unknown method '{method}'; choose one of: {', '.join(METHODS)}")
    user = user if isinstance(user, UserConfig) else UserConfig(user or TrackerConfig())
    config = user.config
    if method in PROFILES:
        config = apply_profile(config, PROFILES[method], user.keys)
    if method == "probfuse+gmae" and "gmae" not in config.sources:
        config = config.replace(sources=list(config.sources) + ["gmae"])
    return config


def make_tracker(method: str = DEFAULT_METHOD,
                 config: UserConfig | TrackerConfig | dict[str, Any] | None = None) -> PointTracker:
    """Build the tracker called ``method`` (see :data:`METHODS`) with the config
    :func:`method_config` gives for an optional config (a :class:`UserConfig` carries the keys
    the user set, which a profile never replaces)."""
    if isinstance(config, dict):
        config = TrackerConfig.from_dict(config)
    config = method_config(method, config)  # first: it refuses an unknown method
    return METHODS[method][0](config)
