"""Long-term re-localisation: classical descriptors, a keypoint observer and a chain filter.

ProTracker-style (DESIGN.md "Long-term keypoints", integration steps 2 and 5) with classical
multi-scale patch descriptors instead of learned features: :class:`FeatureSimilarityFilter`
drops flow chains that land on a texture unlike the query's, :class:`LongTermObserver` matches
the query's descriptor in the current frame and hands the tracker an extra observation, which
also re-finds points after an occlusion. Both share one :class:`QueryBank` (the filter reads it,
the observer keeps it). :class:`~.learned.LearnedMatchObserver` does both with learned ALIKED
descriptors. ``gs_tracker_ros.methods.build_relocalizer`` builds the pair a config names.
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
]

