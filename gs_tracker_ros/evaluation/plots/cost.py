"""The accuracy/cost figure: what each variant's extra milliseconds buy on the protocol.

One point per variant (a method, or a method with ``--set`` keys): x = its mean step time at
854x480 with 256 points over that of ``klt`` in the same ``gs-tracker bench`` run (log scale; the
mean, not the median, so a stage that runs every k-th frame counts in full; a ratio, so variants
timed in different runs, or on a busier machine, stay comparable), y = its δ_seg on badja_dev (the mean
over the jittered query draws when the eval ran with ``--query-jitter``, else the exact queries;
one marker per video and one for the pool; ``--score`` picks another badja score) in the left panel, and its cycle-check fraction within
4 px on davis_unlabeled in the right panel. Scores in percent. Each variant's three numbers come
from the JSON files the three commands write, so the figure is redrawn from the runs, not typed in:

    python -m gs_tracker_ros.evaluation.plots.cost --out docs/img/accuracy_cost.png \\
        --row live out/badja_live.json out/cycle_live.json out/bench_live.json probfuse ...

A row names ``LABEL BADJA_JSON CYCLE_JSON BENCH_JSON METHOD``: the METHOD's result is taken from
each file (an eval JSON of one method, or of several under ``results``).
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

from ...viz.figure_file import save_figure
from ..jitter import jitter_means


@dataclass(frozen=True)
class CostPoint:
    """One variant on the figure. Scores are fractions in [0, 1]; ``ms_per_frame`` in ms."""

    label: str
    ms_per_frame: float  # mean step time, ms
    ratio_vs_klt: float  # ms_per_frame over klt's mean in the same bench run
    score: dict[str, float]  # video name (and "pooled") -> the badja score (δ_seg by default)
    within_4px: float
    jittered: bool  # the score is the mean over jittered query draws
    key: str = "delta_seg"


def _result(payload: Mapping[str, Any], method: str, path: Path) -> Mapping[str, Any]:
    results = payload["results"] if "results" in payload else [payload]
    for res in results:
        if res.get("method") == method:
            return res
    names = ", ".join(str(r.get("method")) for r in results)
    raise ValueError(f"{path}: no result of method '{method}' (it holds: {names})")


def cost_point(label: str, badja_json: Path, cycle_json: Path, bench_json: Path, method: str,
               points: int = 256, key: str = "delta_seg") -> CostPoint:
    """The :class:`CostPoint` of ``method`` from an eval (badja), an eval (cycle) and a bench JSON;
    ``key``: the badja score (``delta_seg``, ``delta_avg``, ``AJ``...)."""
    badja = _result(json.loads(Path(badja_json).read_text()), method, Path(badja_json))
    cycle = _result(json.loads(Path(cycle_json).read_text()), method, Path(cycle_json))
    bench = json.loads(Path(bench_json).read_text())
    try:
        ms = float(bench["methods"][method][f"points_{points}"]["latency_ms_mean"])
        klt_ms = float(bench["methods"]["klt"][f"points_{points}"]["latency_ms_mean"])
    except KeyError:
        raise ValueError(f"{bench_json}: no {points}-point mean timing of method '{method}' and of klt "
                         "(gs-tracker bench writes both)") from None
    jit = badja.get("query_jitter")
    scored = jitter_means(method, jit) if jit is not None else badja  # the means over the draws
    score = {name: float(v[key]) for name, v in scored["sequences"].items()}
    score["pooled"] = float(scored["overall"][key])
    return CostPoint(label, ms, ms / klt_ms, score, float(cycle["overall"]["within_4px"]), jit is not None, key)


def plot_accuracy_cost(rows: Sequence[CostPoint], path: str | Path, title: str = "accuracy against cost") -> Path:
    """Write the two-panel figure of ``rows`` to ``path`` (PNG). Returns the path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not rows:
        raise ValueError("no variants to plot")
    path = Path(path)
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.4), dpi=100)
    videos = [k for k in rows[0].score if k != "pooled"]
    markers = {name: m for name, m in zip(videos, "s^vD<>")}
    for i, row in enumerate(rows):
        x = row.ratio_vs_klt
        offset = (5, 4) if i % 2 == 0 else (5, -11)  # alternate, so that neighbours' labels do not overlap
        left.plot(x, 100 * row.score["pooled"], "o", color="k", ms=7)
        for name in videos:
            if name in row.score:
                left.plot(x, 100 * row.score[name], markers[name], color="0.55", ms=5)
        left.annotate(row.label, (x, 100 * row.score["pooled"]), textcoords="offset points",
                      xytext=offset, fontsize=8)
        right.plot(x, 100 * row.within_4px, "o", color="C0", ms=7)
        right.annotate(row.label, (x, 100 * row.within_4px), textcoords="offset points", xytext=offset, fontsize=8)
    kind = "mean over jittered queries" if all(r.jittered for r in rows) else "exact queries"
    left.set_ylabel(f"labelled videos: {rows[0].key} (%, {kind})")
    handles = [plt.Line2D([], [], ls="", marker="o", color="k", label="pooled")]
    handles += [plt.Line2D([], [], ls="", marker=markers[n], color="0.55", label=n) for n in videos]
    left.legend(handles=handles, fontsize=8, loc="lower right")
    right.set_ylabel("davis_unlabeled cycle check: within 4 px (%)")
    for ax in (left, right):
        ax.set_xscale("log")
        ax.set_xlabel("time per frame / klt's (same bench run; 854x480, 256 points)")
        ax.grid(True, alpha=0.3, which="both")
    fig.suptitle(title)
    fig.tight_layout()
    return save_figure(fig, path)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gs_tracker_ros.evaluation.plots.cost", description=__doc__.split("\n")[0])
    parser.add_argument("--row", nargs=5, action="append", required=True,
                        metavar=("LABEL", "BADJA_JSON", "CYCLE_JSON", "BENCH_JSON", "METHOD"),
                        help="one variant: its label, the JSON files of `gs-tracker eval --dataset badja`, "
                             "`gs-tracker eval --dataset cycle` and `gs-tracker bench`, and its method name")
    parser.add_argument("--out", type=Path, required=True, metavar="PNG", help="figure to write")
    parser.add_argument("--title", default="accuracy against cost")
    parser.add_argument("--score", default="delta_seg", metavar="KEY",
                        help="badja score of the left panel (default delta_seg; delta_avg, AJ, OA ...)")
    args = parser.parse_args(argv)
    try:
        rows = [cost_point(label, Path(b), Path(c), Path(t), method, key=args.score)
                for label, b, c, t, method in args.row]
    except (OSError, ValueError, KeyError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    for r in rows:
        print(f"{r.label}: {r.ms_per_frame:.1f} ms/frame ({r.ratio_vs_klt:.1f}x klt), {r.key} pooled {100 * r.score['pooled']:.1f}, "
              f"within 4 px {100 * r.within_4px:.1f}")
    print(f"accuracy/cost figure -> {plot_accuracy_cost(rows, args.out, args.title)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
