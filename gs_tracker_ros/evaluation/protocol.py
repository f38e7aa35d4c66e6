"""Deciding whether a choice helps, without overfitting two videos.

badja_dev has two labelled videos and ~330 visible labelled points: a choice that raises the
pooled score can still hurt one of the videos, and differences under ~4 delta_seg points are
noise. So a choice is called ``helps`` only when it is better on *each* labelled video
separately on every score compared (and the label-free cycle check on davis_unlabeled must
not get worse; :mod:`~gs_tracker_ros.evaluation.cycle`).
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

VERDICT_KEYS: tuple[str, ...] = ("delta_seg", "delta_avg", "AJ")


def verdict(with_choice: Mapping[str, Any], without_choice: Mapping[str, Any],
            keys: Sequence[str] = VERDICT_KEYS) -> str:
    """``"helps"`` / ``"hurts"`` when ``with_choice`` is better / worse than ``without_choice`` on
    every sequence for every key of ``keys``, ``"mixed"`` otherwise. Both are
    :func:`~gs_tracker_ros.evaluation.runner.evaluate_badja` results on the same sequences."""
    diffs = []
    for name, scores in with_choice["sequences"].items():
        other = without_choice["sequences"][name]
        diffs += [scores[k] - other[k] for k in keys]
    if diffs and all(d > 0 for d in diffs):
        return "helps"
    if diffs and all(d < 0 for d in diffs):
        return "hurts"
    return "mixed"
