"""Named tracking methods: the one place that maps a method name to a tracker.

Used by ``gs-tracker track/eval/bench``, the ROS node and the bag replay, so every entry point
builds trackers the same way.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

from .core.config import TrackerConfig
from .core.errors import ConfigError
from .core.types import PointTracker

DEFAULT_METHOD = "probfuse"


def _probfuse(config: TrackerConfig | None) -> PointTracker:
    from .core.tracker import ProbabilisticTracker
    from .relocalize import build_relocalizer

    config = config or TrackerConfig()
    chain_filter, observer = build_relocalizer(config.relocalize)
    return ProbabilisticTracker(config, chain_filter=chain_filter, observer=observer, name="probfuse")


# The accurate profile: the live profile (TrackerConfig defaults) plus the dense DIS field (preset
# medium, full resolution: the best single chain measured on held-out footage) on the
# frame-to-frame chain and learned ALIKED matches on every frame. Its CPU cost is stated in the
# README; on a GPU or for offline replay it is the more accurate choice. Keys set here override
# the same keys of the given config.
ACCURATE_PROFILE: dict[str, Any] = {
    "sources": ("lk", "dis"),
    "flow.intervals": (1,),
    "relocalize.learned.enabled": True,
    "relocalize.learned.model_name": "aliked-n16",
    "relocalize.learned.backend": "onnxruntime",
    "relocalize.every": 1,
    # calibrated variance for this profile (core/uncertainty.py): 2-sigma coverage ~95 % / 80 %
    # on dog / horsejump-high
    "uncertainty.drift_per_px": 0.4,
    "uncertainty.drift_per_frame": 0.25,
}


def _probfuse_accurate(config: TrackerConfig | None) -> PointTracker:
    tracker = _probfuse((config or TrackerConfig()).replace(**ACCURATE_PROFILE))
    tracker.name = "probfuse-accurate"
    return tracker


def _gmae(config: TrackerConfig | None) -> PointTracker:
    from .core.tracker import ProbabilisticTracker

    config = (config or TrackerConfig()).replace(sources=["gmae"])
    return ProbabilisticTracker(config, name="gmae")


def _probfuse_gmae(config: TrackerConfig | None) -> PointTracker:
    config = config or TrackerConfig()
    if "gmae" not in config.sources:
        config = config.replace(sources=list(config.sources) + ["gmae"])
    tracker = _probfuse(config)
    tracker.name = "probfuse+gmae"
    return tracker


def _klt(config: TrackerConfig | None) -> PointTracker:
    from .baselines.klt import KLTTracker

    return KLTTracker((config or TrackerConfig()).klt)


def _dis_chain(config: TrackerConfig | None) -> PointTracker:
    from .baselines.dis_chain import DISChainTracker

    return DISChainTracker((config or TrackerConfig()).flow)


def _dis_chain_fast(config: TrackerConfig | None) -> PointTracker:
    from .baselines.dis_chain import DISChainTracker

    flow = dataclasses.replace((config or TrackerConfig()).flow, preset="fast", scale=0.5)
    tracker = DISChainTracker(flow)
    tracker.name = "dis-chain-fast"
    return tracker


METHODS: dict[str, tuple[Callable[[TrackerConfig | None], PointTracker], str]] = {
    "probfuse": (_probfuse, "ours, live CPU profile (default): probabilistic fusion of LK chains from "
                            "t-1, t-2, t-4, t-8 with classical re-localisation"),
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


def make_tracker(method: str = DEFAULT_METHOD, config: TrackerConfig | dict[str, Any] | None = None) -> PointTracker:
    """Build the tracker called ``method`` (see :data:`METHODS`) with an optional config."""
    if method not in METHODS:
        raise ConfigError(f"unknown method '{method}'; choose one of: {', '.join(METHODS)}")
    if isinstance(config, dict):
        config = TrackerConfig.from_dict(config)
    return METHODS[method][0](config)
