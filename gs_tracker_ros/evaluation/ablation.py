"""Ablation variants of the default tracker (ProTracker Table 3 style), run side by side."""

from __future__ import annotations

from typing import Any, Callable, Sequence

from ..tracking.config import TrackerConfig

# (label, dotted-key overrides applied on top of the configuration under test)
ABLATIONS: tuple[tuple[str, dict[str, Any]], ...] = (
    ("flow only (w/o keypoints, w/o filter)",
     {"relocalize.keypoints.enabled": False, "relocalize.filter.enabled": False}),
    ("w/o keypoints", {"relocalize.keypoints.enabled": False}),
    ("w/o feature filter", {"relocalize.filter.enabled": False}),
    ("w/o appearance refresh", {"relocalize.filter.refresh_every": 0}),
    ("w/o probabilistic", {"integration.probabilistic": False}),
    ("w/o chains from occluded states", {"integration.chain_from_occluded": False}),
    ("full", {}),
)


def ablation_configs(config: TrackerConfig | None = None) -> list[tuple[str, TrackerConfig]]:
    """``(label, config)`` per variant: ``config`` (default: the default config) with one part off.

    "w/o probabilistic" keeps only the lowest-variance chain instead of the inverse-variance
    fusion (``integration.probabilistic = False``); "full" is ``config`` unchanged.
    """
    base = config or TrackerConfig()
    return [(label, base.replace(**overrides) if overrides else base.replace()) for label, overrides in ABLATIONS]


def run_ablation(evaluate: Callable[[TrackerConfig], dict[str, Any]], config: TrackerConfig | None = None,
                 labels: Sequence[str] | None = None) -> list[dict[str, Any]]:
    """Evaluate every variant with ``evaluate(config) -> result dict``; ``result["method"]`` = label."""
    out = []
    for label, cfg in ablation_configs(config):
        if labels is not None and label not in labels:
            continue
        res = dict(evaluate(cfg))
        res["method"] = label
        out.append(res)
    return out
