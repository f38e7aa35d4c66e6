"""The tracker's typed configuration: one dataclass composing the settings each layer owns.

All distances are in pixels of the input frame, variances in px^2. ``TrackerConfig.from_dict``
accepts nested plain dicts (e.g. parsed YAML or ROS parameters ``flow.scale``) and rejects
unknown keys and out-of-range values with a :class:`ConfigError` naming the field.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from ..core.config import check_settings, config_from_dict, setting
from ..core.errors import ConfigError, check_range as _check
from ..core.hidden_motion import HiddenMotionConfig
from ..core.integration import IntegrationConfig
from ..core.uncertainty import UncertaintyConfig
from ..engines.settings import EngineSettings
from ..motion.config import FlowConfig, LKConfig, klt_baseline_lk
from ..relocalize.config import RelocalizeConfig
from .schedule import ScheduleConfig


# Field metadata of a section whose settings are all structural, whatever they declare (``klt``:
# the baseline method's LK is built once; ``lk`` shares its LKConfig type and its run-time keys).
STRUCTURAL_SECTION = "structural_section"


@dataclass
class TrackerConfig:
    """Configuration of :class:`~gs_tracker_ros.tracking.tracker.ProbabilisticTracker`.

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
        schedule: when the long chains and the observer run: every frame (default), every k-th
            frame, or as a per-frame time budget allows (:mod:`~gs_tracker_ros.tracking.schedule`),
            e.g. ``schedule.frame_budget_ms``.
        engine: how the ``gmae`` source runs its encoder (backend torch / onnxruntime / tensorrt,
            model, ONNX and engine paths, precision, cache directory, threads).
        max_tracks: upper bound on live queries (further ``add_queries`` raise).
    """

    sources: tuple[str, ...] = ("lk",)
    flow: FlowConfig = field(default_factory=FlowConfig)
    lk: LKConfig = field(default_factory=LKConfig)
    klt: LKConfig = field(default_factory=klt_baseline_lk, metadata={STRUCTURAL_SECTION: True})
    integration: IntegrationConfig = field(default_factory=IntegrationConfig)
    uncertainty: UncertaintyConfig = field(default_factory=UncertaintyConfig)
    hidden: HiddenMotionConfig = field(default_factory=HiddenMotionConfig)
    relocalize: RelocalizeConfig = field(default_factory=RelocalizeConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    engine: EngineSettings = field(default_factory=EngineSettings)
    max_tracks: int = setting(4096, range=(1, 100_000), runtime=True)

    def validate(self) -> "TrackerConfig":
        _check(len(self.sources) >= 1, "sources", self.sources, "non-empty")
        check_settings(self, "")
        self.flow.validate()
        self.lk.validate("lk")
        self.klt.validate("klt")
        self.integration.validate()
        self.uncertainty.validate()
        self.hidden.validate()
        self.relocalize.validate()
        self.schedule.validate()
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
        cfg = config_from_dict(cls, data or {})
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


@dataclass(frozen=True)
class UserConfig:
    """A tracker config and the dotted keys its user set (``--set KEY=VALUE``), travelling as one
    value from the command line or the node to :func:`~gs_tracker_ros.methods.make_tracker`: a
    profile's keys never replace a key named here, even where its value is the default."""

    config: TrackerConfig = field(default_factory=TrackerConfig)
    keys: frozenset[str] = frozenset()
