"""Long-term re-localisation: classical descriptors, a keypoint observer and a chain filter.

ProTracker-style (DESIGN.md "Long-term keypoints", integration steps 2 and 5) with classical
multi-scale patch descriptors instead of learned features: :class:`FeatureSimilarityFilter`
drops flow chains that land on a texture unlike the query's, :class:`LongTermObserver` matches
the query's descriptor in the current frame and hands the tracker an extra observation, which
also re-finds points after an occlusion. Both share one :class:`QueryBank`.
"""

from __future__ import annotations

from .bank import QueryBank
from .config import DescriptorConfig, FeatureFilterConfig, KeypointConfig, RelocalizeConfig
from .feature_filter import FeatureSimilarityFilter
from .observer import LongTermObserver

__all__ = [
    "DescriptorConfig",
    "FeatureFilterConfig",
    "FeatureSimilarityFilter",
    "KeypointConfig",
    "LongTermObserver",
    "QueryBank",
    "RelocalizeConfig",
    "build_relocalizer",
]


def build_relocalizer(config: RelocalizeConfig) -> tuple[FeatureSimilarityFilter | None, LongTermObserver | None]:
    """The ``(chain_filter, observer)`` pair for a :class:`ProbabilisticTracker`, or ``(None, None)``.

    Both are built whenever either part is enabled: the observer holds the query descriptors the
    filter needs, and the filter records the chains the observer centres its search on; a
    disabled part then passes everything through unchanged.
    """
    config.validate()
    if not config.active:
        return None, None
    if config.learned.enabled:
        from .learned import LearnedMatchObserver

        learned = LearnedMatchObserver(config.learned)  # replaces the classical filter and observer
        return (learned if config.learned.filter_threshold > -1.0 else None), learned
    bank = QueryBank(config.descriptor, extra_levels=(config.keypoints.coarse_level,))
    return FeatureSimilarityFilter(config.filter, bank), LongTermObserver(config.keypoints, bank)
