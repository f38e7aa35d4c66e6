"""The published uncertainty of a point: a spread when right, and the probability of being wrong.

The errors of a tracker on real footage are a mixture: most estimates are close, some are lost far
away. One Gaussian sigma cannot say both "precise" and "possibly lost" (with the earlier drift-grown
variance, 1 sigma held ~60 % of the errors on badja_dev against 39 % for a Gaussian, and the median
sigma was twice the median error). So every point carries two numbers on every frame:

* ``variance`` (px^2, isotropic per axis): the spread of the estimate *when it is right*;
* ``p_lost`` in [0, 1]: the probability that it is wrong by more than that spread.

Both come from the fitted *track model* (:class:`~gs_tracker_ros.core.evidence.EvidenceModel`,
file ``uncertainty.model``) applied to the point's evidence of this frame
(:mod:`~gs_tracker_ros.tracking.evidence`). A visible point's variance never exceeds the model's
``max_variance`` (its documented visible ceiling); a hidden point's adds the variance that grew
while it was hidden (:mod:`~gs_tracker_ros.core.hidden_motion`), capped at
:data:`~gs_tracker_ros.core.integration.MAX_VARIANCE_PX2`.

A robot's estimator can then gate on ``p_lost`` (e.g. drop points above 0.5) and weigh the rest
by ``1 / variance``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .errors import check_range
from .integration import MAX_VARIANCE_PX2


@dataclass
class UncertaintyConfig:
    """Where the published uncertainty comes from (module doc).

    Attributes:
        model: the fitted track model (JSON, :mod:`~gs_tracker_ros.core.evidence`), a path
            relative to the repository; it maps each point's evidence to its published
            ``variance`` and ``p_lost``. Fitted by ``gs-tracker fit-evidence`` on generated scenes
            with exact ground truth (command and data in ``checkpoints/evidence/README.md``).
    """

    model: str = "checkpoints/evidence/track.json"

    def validate(self) -> None:
        check_range(bool(self.model.strip()), "uncertainty.model", self.model, "a model file")


def published_variance(spread: np.ndarray, hidden_variance: np.ndarray, visible: np.ndarray,
                       prev_published: np.ndarray, prev_hidden_variance: np.ndarray) -> np.ndarray:
    """px^2: ``spread`` (the track model's, bounded by its visible ceiling) for visible points;
    for hidden ones ``spread + hidden_variance``, and never less than last frame's published
    variance plus this frame's growth of the hidden variance (so it grows on every hidden frame
    even when the spread shrinks); capped at ``MAX_VARIANCE_PX2``."""
    spread = np.asarray(spread, np.float64)
    hidden_variance = np.asarray(hidden_variance, np.float64)
    grown = np.asarray(prev_published, np.float64) + np.maximum(hidden_variance - prev_hidden_variance, 0.0)
    out = np.where(np.asarray(visible, bool), spread, np.maximum(spread + hidden_variance, grown))
    return np.minimum(out, MAX_VARIANCE_PX2)
