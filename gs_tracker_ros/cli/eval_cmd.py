"""``gs-tracker eval``: score methods on labelled videos (BADJA protocol) or by cycle consistency."""

from __future__ import annotations

import argparse
import math
from pathlib import Path

from ..core.errors import InputError
from ..core.output import check_output, write_json
from ..methods import DEFAULT_METHOD, make_tracker
from ..tracking.config import UserConfig
from .common import add_method_options, check_methods, load_config

DATASET_KINDS = ("badja", "cycle", "masks")
BADJA_COLUMNS = ("delta_seg", "delta_3px", "delta_avg", "OA", "AJ", "coverage_1sigma", "coverage_2sigma",
                 "called_lost", "p_lost_auc")
CYCLE_COLUMNS = ("within_2px", "within_4px", "within_8px", "tracked")
MASK_COLUMNS = ("mask_stay", "visible_rate", "on_object")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("eval", help="score tracking methods on labelled videos or by cycle consistency",
                       description="Run methods online on every sequence and score them. badja: "
                                   "delta_seg, delta_3px, delta_avg, OA, AJ and the variance's 1/2-sigma "
                                   "coverage, per video and pooled. cycle: track a grid forward and back "
                                   "on unlabelled videos and count the points that return. masks: seed "
                                   "points on the object of frame 0 and count the frames they stay on it "
                                   "while reported visible.")
    p.add_argument("--dataset", nargs=2, metavar=("KIND", "DIR"), required=True,
                   help="dataset kind (badja, cycle or masks) and directory, e.g. --dataset badja "
                        "../shared/data/badja_dev, --dataset cycle ../shared/data/davis_unlabeled or "
                        "--dataset masks ../shared/data/davis_masks")
    p.add_argument("--mask-frames", type=Path, default=None, metavar="DIR",
                   help="masks: the folder holding each masked clip's frames (default: the sibling "
                        "davis_unlabeled folder of the masks folder)")
    p.add_argument("--json", type=Path, default=None, metavar="OUT", help="write the scores as JSON")
    p.add_argument("--plot", type=Path, default=None, metavar="PNG",
                   help="badja: write the error-vs-sigma figure of every method (pooled) to PNG")
    p.add_argument("--frames", type=int, default=48, metavar="T",
                   help="cycle: frames per clip tracked forward then back (default 48)")
    p.add_argument("--grid", type=int, default=8, metavar="G", help="cycle: G x G grid of points (default 8)")
    p.add_argument("--query-jitter", type=float, default=0.0, metavar="PX",
                   help="badja: also score every method (or ablation variant) on --jitter-runs copies of "
                        "the videos whose queries moved by uniform offsets in [-PX, PX] px per axis, and "
                        "report the mean and spread (default 0: off; 1 px shows how much a score rides "
                        "on the exact query pixels)")
    p.add_argument("--jitter-runs", type=int, default=6, metavar="K",
                   help="badja: jittered draws per method with --query-jitter (default 6; the same "
                        "draws for every method)")
    p.add_argument("--jitter-plot", type=Path, default=None, metavar="PNG",
                   help="badja with --query-jitter: write the figure of every method's delta_seg per video "
                        "and pooled (each draw, their mean, the exact-query score) to PNG")
    p.add_argument("--ablation", action="store_true",
                   help=f"run the {DEFAULT_METHOD} ablation in one process instead (badja only): each "
                        "part switched off in turn, with a verdict per part (helps only if it helps on "
                        "each video)")
    p.add_argument("--variant", action="append", default=[], metavar="NAME:KEY=VALUE[,KEY=VALUE...]",
                   help="also run the first method with these settings on top of --config / --set, scored "
                        "as 'METHOD[NAME]' and compared with it in the paired-difference table (repeatable), "
                        "e.g. --variant doubt:lk.backward_check=doubt,lk.doubt_px=0.5; a value holding a "
                        "comma is written in brackets: --variant dis12:flow.intervals=[1,2]")
    add_method_options(p, multiple=True)
    p.set_defaults(func=run)


def parse_variant(text: str) -> tuple[str, list[str]]:
    """``NAME:KEY=VALUE[,KEY=VALUE...]`` -> ``(NAME, ["KEY=VALUE", ...])``; a comma inside brackets
    belongs to the value (``flow.intervals=[1,2]``)."""
    name, sep, body = text.partition(":")
    if not sep or not name.strip() or not body.strip():
        raise InputError(f"--variant expects NAME:KEY=VALUE[,KEY=VALUE...], got '{text}'")
    items, depth, start = [], 0, 0
    for i, ch in enumerate(body + ","):
        depth += {"[": 1, "{": 1, "]": -1, "}": -1}.get(ch, 0)
        if ch == "," and depth == 0:
            items.append(body[start:i].strip())
            start = i + 1
    if any("=" not in item for item in items):
        raise InputError(f"--variant {name.strip()}: each setting is KEY=VALUE, got '{body}'")
    return name.strip(), items


def _variant_configs(args: argparse.Namespace, method: str) -> list[tuple[str, UserConfig]]:
    """``(label, config)`` of every ``--variant`` of ``method``, checked before any work."""
    out = []
    for text in args.variant:
        name, items = parse_variant(text)
        out.append((f"{method}[{name}]", load_config(args.config, [*args.overrides, *items])))
    labels = [label for label, _ in out]
    if len(set(labels)) != len(labels):
        raise InputError(f"--variant names must differ, got {', '.join(labels)}")
    return out


def _pct(v: float) -> str:
    return "nan" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{100 * v:.1f}"


def _plain(key: str) -> bool:
    """Columns printed as they are (ms, px, counts) instead of as a percentage."""
    return key in ("ms_per_frame", "points") or key.endswith("_px")


def _label(name: str) -> str:
    """A table's video cell: the pooled row in bold."""
    return f"**{name}**" if name == "pooled" else name


def _rows(sequences: dict, overall: dict):
    """``(name, label, scores)`` per video, then the pooled row."""
    return [(name, _label(name), scores) for name, scores in [*sequences.items(), ("pooled", overall)]]


def _part_verdicts(results: list[dict], view=lambda r: r) -> dict[str, str]:
    """``{variant: "part helps / hurts / mixed"}`` of an ablation (``results[-1]`` is the full
    default), compared on ``view(result)`` (the exact scores, or the jittered means)."""
    from ..evaluation.protocol import verdict

    full = view(results[-1])
    return {r["method"]: f"part {verdict(full, view(r))}" for r in results[:-1]}


def format_table(results: list[dict], columns=BADJA_COLUMNS, verdicts: dict | None = None) -> str:
    """Markdown table: one row per method and sequence, then the pooled row."""
    extra = ["verdict"] if verdicts else []
    keys = list(columns) + ["ms_per_frame"]
    lines = ["| method | video | " + " | ".join(keys + extra) + " |", "|---" * (len(keys) + len(extra) + 2) + "|"]
    for res in results:
        for name, label, scores in _rows(res["sequences"], res["overall"]):
            cells = [f"{scores.get(k, float('nan')):.{0 if k == 'points' else 1}f}" if _plain(k)
                     else _pct(scores.get(k, float("nan")))
                     for k in keys]
            if verdicts:
                cells.append(verdicts.get(res["method"], "") if name == "pooled" else "")
            lines.append(f"| {res['method']} | {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def jitter_table(results: list[dict], keys=("delta_seg", "delta_avg", "AJ", "OA"),
                 verdicts: dict | None = None) -> str:
    """Markdown table of each result's ``query_jitter`` summary: mean and standard deviation over
    the draws per video and pooled (percent), with an optional verdict on the means."""
    extra = ["verdict on the means"] if verdicts else []
    lines = ["| method | video | " + " | ".join(f"{k} mean (sd)" for k in keys) + "".join(f" | {e}" for e in extra)
             + " |", "|---" * (len(keys) + len(extra) + 2) + "|"]
    for res in results:
        jit = res["query_jitter"]
        for name, label, per_key in _rows(jit["sequences"], jit["overall"]):
            cells = [f"{100 * per_key[k]['mean']:.1f} ({100 * per_key[k]['sd']:.1f})" for k in keys]
            if verdicts:
                cells.append(verdicts.get(res["method"], "") if name == "pooled" else "")
            lines.append(f"| {res['method']} | {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def difference_table(results: list[dict], reference: dict, kind: str = "badja",
                     sign: int = 1) -> tuple[str, list[dict]]:
    """Markdown table of paired-bootstrap score differences (``evaluation/significance.py``) of
    every result against ``reference`` (``sign=-1``: reference minus result, what an ablated part
    adds): per video and pooled for ``kind`` badja, pooled over the clips for cycle; and the JSON
    rows."""
    from ..evaluation import significance as sig

    if kind in ("cycle", "masks"):
        keys = sig.CYCLE_DIFF_KEYS if kind == "cycle" else sig.MASK_DIFF_KEYS
        pooled_difference = sig.paired_cycle_difference if kind == "cycle" else sig.paired_mask_difference

        def compare(a, b):
            return {"pooled": pooled_difference(a, b)}
    else:
        keys, compare = sig.DIFF_KEYS, sig.paired_difference
    lines = ["| method | video | " + " | ".join(f"diff {k} [90% CI]" for k in keys) + " |",
             "|---" * (len(keys) + 2) + "|"]
    rows = []
    for res in results:
        if res is reference:
            continue
        diffs = compare(res, reference) if sign > 0 else compare(reference, res)
        rows.append({"method": res["method"], "against": reference["method"], "differences": diffs})
        for video, per_key in diffs.items():
            label = _label(video)
            lines.append(f"| {res['method']} | {label} | " + " | ".join(sig.format_difference(per_key[k]) for k in keys)
                         + " |")
    return "\n".join(lines), rows


def run(args: argparse.Namespace) -> int:
    kind, directory = args.dataset
    if kind not in DATASET_KINDS:
        raise InputError(f"unknown dataset kind '{kind}' (supported: {', '.join(DATASET_KINDS)})")
    if args.frames < 2 or args.grid < 1:
        raise InputError(f"--frames must be >= 2 and --grid >= 1, got {args.frames} and {args.grid}")
    if args.mask_frames is not None and kind != "masks":
        raise InputError("--mask-frames gives the frames of a mask dataset: use --dataset masks")
    if args.query_jitter != 0.0 and kind != "badja":
        raise InputError("--query-jitter moves the queries of labelled videos: use --dataset badja")
    if not (math.isfinite(args.query_jitter) and args.query_jitter >= 0.0):
        raise InputError(f"--query-jitter must be a finite number of px >= 0, got {args.query_jitter}")
    if args.jitter_plot is not None and args.query_jitter == 0.0:
        raise InputError("--jitter-plot draws the jittered scores: add --query-jitter PX (e.g. 1)")
    if args.jitter_runs < 1 or args.jitter_runs > 100:
        raise InputError(f"--jitter-runs must be in [1, 100], got {args.jitter_runs}")
    if args.plot is not None and (kind != "badja" or args.ablation):
        raise InputError("--plot draws the error-vs-sigma figure of labelled videos: use --dataset badja "
                         "without --ablation")
    config = load_config(args.config, args.overrides)
    check_methods(args.method)
    for option, path in (("--json", args.json), ("--plot", args.plot), ("--jitter-plot", args.jitter_plot)):
        if path is not None:
            check_output(path, option)
    methods = args.method or [DEFAULT_METHOD]
    verdicts = None
    if args.ablation and kind != "badja":
        raise InputError("--ablation needs labelled videos: use --dataset badja")
    if args.ablation and args.variant:
        raise InputError("--ablation runs its own variants of the default: drop --variant")
    # every run: (label or None to keep the tracker's name, method, config)
    runs = [(None, m, config) for m in methods] + [(label, methods[0], cfg)
                                                   for label, cfg in _variant_configs(args, methods[0])]

    def each_run(evaluate_one):
        """``evaluate_one(factory)`` for every method and variant, the variants relabelled."""
        results = []
        for label, method, cfg in runs:
            result = evaluate_one(lambda m=method, c=cfg: make_tracker(m, c))
            if label is not None:
                result["method"] = label
            results.append(result)
        return results

    if kind == "masks":
        from ..evaluation.masks import MaskProtocol, evaluate_masks, load_mask_dataset

        clips = load_mask_dataset(Path(directory), args.mask_frames)
        protocol = MaskProtocol()
        results = each_run(lambda factory: evaluate_masks(factory, clips, protocol))
        columns = MASK_COLUMNS + ("points",)
        note = (f"(masks: up to {protocol.max_points} seeds per clip inside the frame-0 mask eroded by "
                f"{protocol.erode_px} px; a (seed, frame) pair stays when reported visible inside the mask dilated "
                f"by {protocol.dilate_px} px; mask_stay and visible_rate are fractions of all pairs, on_object "
                "of the visible ones, in %)")
    elif kind == "cycle":
        from ..evaluation.cycle import evaluate_cycle, load_cycle_dataset

        clips = load_cycle_dataset(Path(directory), max_frames=args.frames)
        results = each_run(lambda factory: evaluate_cycle(factory, clips, grid=args.grid))
        columns = CYCLE_COLUMNS + ("median_error_px",)
        note = (f"(cycle: {args.grid}x{args.grid} grid, {args.frames} frames forward then back; fractions of all "
                "points in %, a point lost either way counts as a failure)")
    else:
        from ..evaluation.badja import load_badja_dataset
        from ..evaluation.runner import evaluate_badja

        sequences = load_badja_dataset(Path(directory))
        jitter = args.query_jitter

        def evaluate(factory):
            """The exact-query result of one method, with its jittered summary when asked."""
            result = evaluate_badja(factory, sequences, progress=True)
            if jitter > 0:
                from ..evaluation.jitter import evaluate_badja_jittered

                result["query_jitter"] = evaluate_badja_jittered(factory, sequences, jitter, args.jitter_runs,
                                                                   progress=True)
            return result

        if args.ablation:
            from ..evaluation.ablation import run_ablation

            if methods != [DEFAULT_METHOD]:
                raise InputError(f"--ablation runs variants of {DEFAULT_METHOD}; drop --method")
            results = run_ablation(lambda cfg: evaluate(lambda: make_tracker(DEFAULT_METHOD, cfg)), config.config)
            verdicts = _part_verdicts(results)
        else:
            results = each_run(evaluate)
        columns = BADJA_COLUMNS
        note = ("(scores in %; pooled = all scored (point, frame) pairs of all videos; coverage = fraction of the "
                "visible labelled points called right (p_lost < 0.5) within 1 / 2 sigma of the published variance, "
                "39.3 / 86.5 if calibrated; called_lost = share with p_lost >= 0.5; p_lost_auc = ROC AUC of p_lost "
                "for the points off by more than the delta_seg threshold, nan without p_lost)")
    if args.plot is not None:
        from ..evaluation.plots.calibration import plot_error_vs_sigma

        curves = {r["method"]: r["overall"]["error_vs_sigma"] for r in results}
        figure = plot_error_vs_sigma(curves, args.plot, title=f"{Path(directory).name}: published sigma vs error")
        print(f"error-vs-sigma figure -> {figure}")
    table = format_table(results, columns, verdicts)
    print(table)
    print(note)
    differences: list[dict] = []
    if len(results) > 1:
        reference = results[-1] if args.ablation else results[0]
        diff_table, differences = difference_table(results, reference, kind, sign=-1 if args.ablation else 1)
        what = ("what each part adds: full minus the variant" if args.ablation
                else f"each method minus {reference['method']}")
        units = {"cycle": "grid points, each clip's from that clip", "masks": "seeds, each clip's from that clip"}.get(
            kind, "labelled points")
        print(f"\nPaired differences ({what}), score points, with the 90 % interval of a bootstrap over "
              f"the {units} (same points drawn for both; * = the interval excludes 0):")
        print(diff_table)
    if results and "query_jitter" in results[0]:
        from ..evaluation.jitter import jitter_means

        jitter_verdicts = None
        if args.ablation:
            jitter_verdicts = _part_verdicts(results, lambda r: jitter_means(r["method"], r["query_jitter"]))
        print(f"\nQuery jitter: each score's mean (standard deviation) over {args.jitter_runs} draws of the "
              f"queries moved by up to +-{args.query_jitter:g} px per axis (the same draws for every method; "
              "docs/accuracy.md):")
        print(jitter_table(results, verdicts=jitter_verdicts))
        if args.jitter_plot is not None:
            from ..evaluation.plots.jitter import plot_query_jitter

            figure = plot_query_jitter(results, args.jitter_plot, title=Path(directory).name)
            print(f"query-jitter figure -> {figure}")
    if args.json is not None:
        payload = results[0] if len(results) == 1 else {"results": results, "differences": differences}
        print(f"scores -> {write_json(args.json, payload)}")
    return 0
