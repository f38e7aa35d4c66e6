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
    from ..engines.settings import EngineSettings
    from .gaussian import GaussianMotionSource

    settings = config.engine if engine is None else engine
    if isinstance(settings, dict):
        settings = EngineSettings.from_dict(settings)
    encoder = settings.build() if isinstance(settings, EngineSettings) else settings
    return GaussianMotionSource(encoder, window_hop=gmae_window_hop(config, int(encoder.num_frames)))
