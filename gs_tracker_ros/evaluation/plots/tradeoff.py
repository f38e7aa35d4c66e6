"""The trade-off figure: what each method or setting gains on davis_masks against what it costs on
badja_dev, both paired against the same reference method.

One point per compared entry (another ``--method`` or a ``--variant`` of ``gs-tracker eval``),
taken from the ``differences`` of two eval JSON files written with the same methods and variants:
x = its pooled mask-stay difference on davis_masks, y = its pooled difference of a badja_dev score
(one panel per ``--score``), each with its 90 % paired-bootstrap interval as error bars, in score
points (percent). A hollow marker below each point is the same entry's worst single video on that
score, since a choice is kept only when no video loses beyond the noise. A filled point's interval
excludes 0 on at least one axis. The upper-right quadrant is "better on both":

    gs-tracker eval --dataset badja ../shared/data/badja_dev --method probfuse ... --variant ... --json out/tradeoff_badja.json
    gs-tracker eval --dataset masks ../shared/data/davis_masks --method probfuse ... --variant ... --json out/tradeoff_masks.json
    python -m gs_tracker_ros.evaluation.plots.tradeoff out/tradeoff_badja.json out/tradeoff_masks.json \\
        --out docs/img/tradeoff.png
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

from ...viz.figure_file import save_figure
from ..significance import beyond_noise


@dataclass(frozen=True)
class Interval:
    """A paired difference and its bootstrap interval, in score points (percent)."""

    diff: float
    low: float
    high: float
    beyond_noise: bool  # the interval excludes 0 (significance.beyond_noise)

    @classmethod
    def from_json(cls, entry: Mapping[str, Any]) -> "Interval":
        return cls(100 * float(entry["diff"]), 100 * float(entry["low"]), 100 * float(entry["high"]),
                   beyond_noise(entry))


@dataclass(frozen=True)
class TradeoffPoint:
    """One compared entry: its mask-stay difference and, per badja score, its pooled difference
    and its worst video's (name, difference)."""

    label: str
    against: str
    mask_stay: Interval
    badja: dict[str, Interval]  # score key -> pooled difference
    worst_video: dict[str, tuple[str, Interval]]  # score key -> (video, its difference)


def _differences(payload: Mapping[str, Any], path: Path) -> dict[str, Mapping[str, Any]]:
    if "differences" not in payload or not payload["differences"]:
        raise ValueError(f"{path}: no paired differences (write it with `gs-tracker eval` comparing "
                         "two or more methods or variants, with --json)")
    return {str(d["method"]): d for d in payload["differences"]}


def tradeoff_points(badja_json: Path, masks_json: Path,
                    keys: Sequence[str] = ("delta_seg", "AJ")) -> list[TradeoffPoint]:
    """The :class:`TradeoffPoint` of every entry compared in both files, in the badja file's order.
    Both files must compare against the same reference method."""
    badja = _differences(json.loads(Path(badja_json).read_text()), Path(badja_json))
    masks = _differences(json.loads(Path(masks_json).read_text()), Path(masks_json))
    common = [name for name in badja if name in masks]
    if not common:
        raise ValueError(f"{badja_json} and {masks_json} compare no method or variant in common "
                         f"({', '.join(badja)} against {', '.join(masks)})")
    points = []
    for name in common:
        b, m = badja[name], masks[name]
        if b["against"] != m["against"]:
            raise ValueError(f"'{name}' is compared against '{b['against']}' in {badja_json} but "
                             f"against '{m['against']}' in {masks_json}")
        if "mask_stay" not in m["differences"].get("pooled", {}):
            raise ValueError(f"{masks_json}: no mask-stay difference (is it the JSON of "
                             "`gs-tracker eval --dataset masks`?)")
        videos = {v: d for v, d in b["differences"].items() if v != "pooled"}
        pooled, worst = {}, {}
        for key in keys:
            if key not in b["differences"]["pooled"]:
                raise ValueError(f"{badja_json}: no paired difference of score '{key}' "
                                 f"(it has {', '.join(b['differences']['pooled'])})")
            pooled[key] = Interval.from_json(b["differences"]["pooled"][key])
            if videos:
                video = min(videos, key=lambda v: float(videos[v][key]["diff"]))
                worst[key] = (video, Interval.from_json(videos[video][key]))
        points.append(TradeoffPoint(name, str(b["against"]),
                                    Interval.from_json(m["differences"]["pooled"]["mask_stay"]), pooled, worst))
    return points


def plot_tradeoff(points: Sequence[TradeoffPoint], path: str | Path,
                  title: str = "mask-stay against labelled accuracy") -> Path:
    """Write one panel per badja score of ``points`` to ``path`` (PNG). Returns the path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    if not points:
        raise ValueError("no methods or variants to plot")
    keys = list(points[0].badja)
    fig, axes = plt.subplots(1, len(keys), figsize=(6.2 * len(keys), 5.0), dpi=100)
    axes = np.atleast_1d(axes)
    colours = plt.get_cmap("tab20" if len(points) > 10 else "tab10")
    for ax, key in zip(axes, keys):
        handles = []
        for i, p in enumerate(points):
            colour, marker = colours(i % colours.N), "osDP"[(i // colours.N) % 4]
            x, y = p.mask_stay, p.badja[key]
            filled = x.beyond_noise or y.beyond_noise
            handles.append(ax.errorbar(x.diff, y.diff, xerr=[[x.diff - x.low], [x.high - x.diff]],
                                       yerr=[[y.diff - y.low], [y.high - y.diff]], fmt=marker, ms=7, color=colour,
                                       mfc=colour if filled else "white", capsize=2, lw=1, label=_short(p)))
            if key in p.worst_video:
                worst = p.worst_video[key][1].diff
                ax.plot([x.diff, x.diff], [y.diff, worst], ":", color=colour, lw=1)
                ax.plot(x.diff, worst, "v", ms=6, mfc="white", color=colour)
        ax.axhline(0, color="k", lw=0.8)
        ax.axvline(0, color="k", lw=0.8)
        (x_lo, x_hi), (y_lo, y_hi) = ax.get_xlim(), ax.get_ylim()
        if x_hi > 0 and y_hi > 0:  # shade the quadrant "better on both" where it is in view
            ax.fill_between([0, x_hi], 0, y_hi, color="C2", alpha=0.08, lw=0)
        ax.set_xlim(x_lo, x_hi)
        ax.set_ylim(y_lo, y_hi)
        ax.set_xlabel("davis_masks: mask-stay difference (points)")
        ax.set_ylabel(f"badja_dev: {key} difference (points)")
        ax.grid(True, alpha=0.3)
    fig.legend(handles=handles, loc="center right", fontsize=8, frameon=False)
    fig.suptitle(f"{title}: each minus {points[0].against}, pooled (filled or open marker, 90 % "
                 "intervals) and the worst badja_dev video (triangle);\nfilled: an interval excludes 0; green: better on both", fontsize=10)
    fig.tight_layout(rect=(0, 0, 0.86 if len(keys) > 1 else 0.75, 1))
    return save_figure(fig, path)


def _short(point: TradeoffPoint) -> str:
    """A variant of the reference method by its variant name alone (``probfuse[doubt]`` -> ``[doubt]``)."""
    prefix = point.against + "["
    return point.label[len(point.against):] if point.label.startswith(prefix) else point.label


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gs_tracker_ros.evaluation.plots.tradeoff",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("badja_json", type=Path, help="JSON of `gs-tracker eval --dataset badja` with differences")
    parser.add_argument("masks_json", type=Path, help="JSON of `gs-tracker eval --dataset masks`, same methods/variants")
    parser.add_argument("--out", type=Path, required=True, metavar="PNG", help="figure to write")
    parser.add_argument("--score", action="append", metavar="KEY",
                        help="badja score of a panel (repeatable; default delta_seg and AJ)")
    parser.add_argument("--title", default="mask-stay against labelled accuracy")
    args = parser.parse_args(argv)
    keys = args.score or ["delta_seg", "AJ"]
    try:
        points = tradeoff_points(args.badja_json, args.masks_json, keys)
    except (OSError, ValueError, KeyError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    for p in points:
        scores = ", ".join(f"{k} {p.badja[k].diff:+.1f}" + (f" (worst {p.worst_video[k][0]} {p.worst_video[k][1].diff:+.1f})"
                                                           if k in p.worst_video else "") for k in keys)
        print(f"{p.label}: mask-stay {p.mask_stay.diff:+.1f}, {scores}")
    print(f"trade-off figure -> {plot_tradeoff(points, args.out, args.title)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
