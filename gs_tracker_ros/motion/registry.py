"""Build the motion sources a :class:`TrackerConfig` names."""

from __future__ import annotations

from ..core.config import TrackerConfig
from ..core.errors import ConfigError
from .base import MotionSource


def build_sources(config: TrackerConfig, engine=None) -> list[MotionSource]:
    """The sources ``config.sources`` names.

    ``engine`` chooses the encoder of the ``gmae`` source: an
    :class:`~gs_tracker_ros.engines.settings.EngineSettings`, a dict of its fields, or a built
    :class:`~gs_tracker_ros.engines.base.EncoderEngine`. Default: ``config.engine`` (torch on the
    shipped checkpoint unless configured otherwise).
    """
    sources: list[MotionSource] = []
    for name in config.sources:
        if name == "dis":
            from .dis_flow import DISFlowSource

            sources.append(DISFlowSource(config.flow))
        elif name == "lk":
            from .lucas_kanade import LucasKanadeSource

            sources.append(LucasKanadeSource(config.lk))
        elif name == "gmae":
            sources.append(_gmae_source(config, engine))
        else:
            raise ConfigError(f"unknown motion source '{name}' (known: dis, lk, gmae)")
    return sources


def _gmae_source(config: TrackerConfig, engine=None) -> MotionSource:
    from ..engines.settings import EngineSettings
    from .gaussian import GaussianMotionSource

    settings = config.engine if engine is None else engine
    if isinstance(settings, dict):
        settings = EngineSettings.from_dict(settings)
    encoder = settings.build() if isinstance(settings, EngineSettings) else settings
    return GaussianMotionSource(encoder)
