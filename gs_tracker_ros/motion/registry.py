"""Build the motion sources a :class:`TrackerConfig` names."""

from __future__ import annotations

from ..core.config import TrackerConfig
from ..core.errors import ConfigError
from .base import MotionSource


def build_sources(config: TrackerConfig) -> list[MotionSource]:
    sources: list[MotionSource] = []
    for name in config.sources:
        if name == "dis":
            from .dis_flow import DISFlowSource

            sources.append(DISFlowSource(config.flow))
        elif name == "lk":
            from .lucas_kanade import LucasKanadeSource

            sources.append(LucasKanadeSource(config.lk))
        elif name == "gmae":
            from .gaussian import GaussianMotionSource  # needs the shipped checkpoint

            sources.append(GaussianMotionSource.from_default_checkpoint())
        else:
            raise ConfigError(f"unknown motion source '{name}' (known: dis, lk, gmae)")
    return sources
